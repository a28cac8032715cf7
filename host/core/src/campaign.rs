//! Campaigns: what a marketer defines (a JSON file, [`CampaignDefinition`]),
//! the lifecycle a campaign moves through ([`CampaignState`]), and what
//! became of each HCP of its audience ([`Member`]).
//!
//! The definition is data only; the engine resolves the audience, assigns the
//! holdout, asks the scoring model, walks its ranking through the gate and
//! records one outcome per HCP. See `docs/campaigns.md`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Channel;
use crate::consent::Purpose;
use crate::content::VersionHash;
use crate::event::{EventType, UnixMillis};
use crate::hcp::HcpId;
use crate::journey::JourneyConfig;
use crate::store::StoreResult;
use crate::template::Values;

/// Checks the shape of a campaign or journey id: 1 to 64 lowercase
/// letters, digits, `-`, `_` or `.`, starting with a letter or digit.
///
/// # Errors
///
/// Says what is wrong, naming the `kind` of id.
pub(crate) fn check_id(kind: &str, id: String) -> Result<String, String> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c);
    let first_ok = id
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if id.is_empty() || id.len() > 64 || !first_ok || !id.chars().all(ok_char) {
        return Err(format!(
            "invalid {kind} id `{id}`: use 1 to 64 lowercase letters, digits, `-`, `_` or `.`, starting with a letter or digit"
        ));
    }
    Ok(id)
}

/// A campaign's id: 1 to 64 characters, lowercase letters, digits, `-`,
/// `_` and `.`, starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct CampaignId(String);

impl CampaignId {
    /// Checks the shape.
    ///
    /// # Errors
    ///
    /// Says what is wrong with `id`.
    pub fn new(id: impl Into<String>) -> Result<CampaignId, String> {
        check_id("campaign", id.into()).map(CampaignId)
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CampaignId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for CampaignId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        CampaignId::new(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A duration written `30s`, `30m`, `48h`, `7d` or `4w`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    /// In milliseconds.
    pub millis: i64,
}

impl Span {
    /// Parses `30s`, `30m`, `48h`, `7d`, `4w`.
    ///
    /// # Errors
    ///
    /// Says what is wrong.
    pub fn parse(text: &str) -> Result<Span, String> {
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (num, unit) = text.split_at(split);
        let unit_ms: i64 = match unit {
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            _ => 0,
        };
        match num.parse::<i64>() {
            Ok(n) if unit_ms > 0 && n > 0 && n <= 100_000 => Ok(Span {
                millis: n * unit_ms,
            }),
            _ => Err(format!(
                "invalid duration `{text}`: write a number and a unit: `30s`, `30m`, `48h`, `7d`, `4w`"
            )),
        }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.millis;
        for (unit, ms) in [("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000)] {
            if m % ms == 0 {
                return write!(f, "{}{unit}", m / ms);
            }
        }
        if m % 60_000 == 0 {
            return write!(f, "{}m", m / 60_000);
        }
        write!(f, "{}s", m / 1_000)
    }
}

impl Serialize for Span {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Span::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// What the campaign wants HCPs to reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Goal {
    /// The journey stage the campaign moves HCPs towards, e.g. `adoption`.
    pub target_stage: String,
    /// The ladder, first stage first; the store's default ladder when empty.
    #[serde(default)]
    pub stages: Vec<String>,
}

impl Goal {
    /// The ladder in force.
    pub fn ladder(&self) -> Vec<String> {
        if self.stages.is_empty() {
            JourneyConfig::default().ladder
        } else {
            self.stages.clone()
        }
    }
}

/// One content version the campaign may send, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ActionSpec {
    /// The approved content version.
    pub version: VersionHash,
    /// The channels it may go out on (each must also be in the campaign's
    /// `channels`).
    pub channels: Vec<Channel>,
    /// Topic tags, for the scoring model (`efficacy`, `dosing`, ...).
    #[serde(default)]
    pub topics: Vec<String>,
    /// The journey stage the content is written for.
    #[serde(default)]
    pub stage: Option<String>,
}

/// A metric of the derived engagement features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Metric {
    /// Touches in the last 7 days.
    Touches7d,
    /// Touches in the last 30 days.
    Touches30d,
    /// Sends (or visits, invitations) ever.
    Sends,
    /// Opens ever.
    Opens,
    /// Clicks ever.
    Clicks,
    /// Attendances ever.
    Attended,
    /// Whole days since the last touch (no touch: never matches `max`,
    /// always matches `min`).
    DaysSinceTouch,
}

/// A test on one derived feature: `min <= value <= max`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FeatureTest {
    /// Which figure.
    pub metric: Metric,
    /// On one channel; all channels together when absent.
    #[serde(default)]
    pub channel: Option<Channel>,
    /// Lower bound, inclusive.
    #[serde(default)]
    pub min: Option<f64>,
    /// Upper bound, inclusive.
    #[serde(default)]
    pub max: Option<f64>,
}

/// A test on the HCP's event history: at least `min` events of a type in the
/// last `within`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EventTest {
    /// The event type, e.g. `webinar-attended`.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// How far back.
    pub within: Span,
    /// How many at least (default 1).
    #[serde(default = "one")]
    pub min: u32,
}

fn one() -> u32 {
    1
}

/// The audience: a filter over profile fields, tags, journey stage and
/// engagement. Lists mean "any of".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub enum Filter {
    /// Every HCP of the campaign's market.
    Everyone(bool),
    /// All of these hold.
    All(Vec<Filter>),
    /// At least one holds.
    Any(Vec<Filter>),
    /// This does not hold.
    Not(Box<Filter>),
    /// Specialty taxonomy code or label, any of.
    Specialty(Vec<String>),
    /// Tag or interest, any of.
    Tag(Vec<String>),
    /// Institution, any of.
    Institution(Vec<String>),
    /// Language (BCP 47; `en` also matches `en-US`), any of.
    Language(Vec<String>),
    /// Journey stage for the campaign's product, any of (`none`: no stage
    /// yet).
    Stage(Vec<String>),
    /// Assigned to one of these reps.
    Rep(Vec<String>),
    /// A derived engagement figure.
    Feature(FeatureTest),
    /// Recent events (reads the HCP's history: slower than `feature`).
    Event(EventTest),
    /// Has already seen this content version.
    Seen(VersionHash),
}

impl Filter {
    /// Whether the filter reads journey stages, event history.
    pub fn needs(&self) -> (bool, bool) {
        match self {
            Filter::All(v) | Filter::Any(v) => v.iter().fold((false, false), |a, f| {
                let n = f.needs();
                (a.0 || n.0, a.1 || n.1)
            }),
            Filter::Not(f) => f.needs(),
            Filter::Stage(_) => (true, false),
            Filter::Event(_) => (false, true),
            _ => (false, false),
        }
    }
}

/// When the campaign may dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Window {
    /// Not before (Unix milliseconds).
    #[serde(default)]
    pub start: Option<UnixMillis>,
    /// Not after (Unix milliseconds): HCPs not reached by then are
    /// recorded `unreached`.
    #[serde(default)]
    pub end: Option<UnixMillis>,
}

/// The campaign's own limits (the policy's caps apply on top).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CampaignCaps {
    /// At most this many dispatches in all; the rest are `suppressed` with
    /// reason `campaign-budget`.
    #[serde(default)]
    pub max_dispatches: Option<u64>,
    /// At most this many dispatches per minute (a send rate for providers
    /// with quotas).
    #[serde(default)]
    pub per_minute: Option<u32>,
    /// A member whose every option the gate blocked only because of the
    /// HCP's quiet hours waits for them to end (within the window) instead
    /// of being suppressed. Off by default: a run then lasts until the last
    /// such member's quiet hours are over.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub defer_quiet_hours: bool,
}

/// The scoring model and its settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ScoringSpec {
    /// The scoring-model plugin's name.
    pub plugin: String,
    /// Only actions scoring at least this are taken.
    #[serde(default)]
    pub min_score: Option<OrderedScore>,
}

/// A score threshold (an `f64` that is finite).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderedScore(pub f64);

impl Eq for OrderedScore {}

/// How rep suggestions from this campaign are timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SuggestionTiming {
    /// The rep should act within this.
    #[serde(default = "three_days")]
    pub due: Span,
    /// The suggestion lapses after this.
    #[serde(default = "two_weeks")]
    pub expires: Span,
}

fn three_days() -> Span {
    Span {
        millis: 3 * 86_400_000,
    }
}

fn two_weeks() -> Span {
    Span {
        millis: 14 * 86_400_000,
    }
}

impl Default for SuggestionTiming {
    fn default() -> Self {
        SuggestionTiming {
            due: three_days(),
            expires: two_weeks(),
        }
    }
}

/// A campaign as a marketer writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CampaignDefinition {
    /// Stable id.
    pub id: CampaignId,
    /// What people call it.
    pub name: String,
    /// The brand or product.
    pub product: String,
    /// The market (`US`, `CN`, `EU-UK`, ...); only HCPs of this market.
    pub market: String,
    /// Why the messages are sent (consent is per purpose).
    #[serde(default = "promotional")]
    pub purpose: Purpose,
    /// What it wants to achieve.
    pub goal: Goal,
    /// Who it is for.
    pub audience: Filter,
    /// What it may send.
    pub actions: Vec<ActionSpec>,
    /// The channels it may use.
    pub channels: Vec<Channel>,
    /// When it may dispatch.
    #[serde(default)]
    pub window: Option<Window>,
    /// Its own limits.
    #[serde(default)]
    pub caps: CampaignCaps,
    /// The scoring model.
    pub scoring: ScoringSpec,
    /// Share of the audience held out (gets nothing from this campaign), from
    /// 0 to 0.5.
    #[serde(default)]
    pub holdout: f64,
    /// Seed of the holdout draw; the campaign id when absent.
    #[serde(default)]
    pub seed: Option<String>,
    /// Higher wins when campaigns compete for the same HCP.
    #[serde(default)]
    pub priority: i32,
    /// Values of the dispatch's personalization fields (`salutation`,
    /// `unsubscribe-url`, ...).
    #[serde(default)]
    pub values: Values,
    /// How rep suggestions are timed.
    #[serde(default)]
    pub suggestions: SuggestionTiming,
}

fn promotional() -> Purpose {
    Purpose::Promotional
}

/// One thing wrong with a definition, with where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// JSON path of the offending value, e.g. `actions[1].channels[0]`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl CampaignDefinition {
    /// Checks what the types cannot; every problem, with its path.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut bad = |path: String, message: String| out.push(Problem { path, message });
        if self.name.trim().is_empty() {
            bad("name".into(), "the name is empty".into());
        }
        if self.product.trim().is_empty() {
            bad("product".into(), "the product is empty".into());
        }
        if self.market.trim().is_empty() {
            bad("market".into(), "the market is empty".into());
        }
        if !(0.0..=0.5).contains(&self.holdout) || self.holdout.is_nan() {
            bad(
                "holdout".into(),
                format!(
                    "holdout share {} is out of range: give a share from 0 to 0.5",
                    self.holdout
                ),
            );
        }
        let ladder = self.goal.ladder();
        if !ladder.contains(&self.goal.target_stage) {
            bad(
                "goal.target-stage".into(),
                format!(
                    "stage `{}` is not on the ladder ({})",
                    self.goal.target_stage,
                    ladder.join(", ")
                ),
            );
        }
        if self.channels.is_empty() {
            bad("channels".into(), "no channel: list at least one".into());
        }
        if self.actions.is_empty() {
            bad("actions".into(), "no action: list at least one".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, a) in self.actions.iter().enumerate() {
            if a.channels.is_empty() {
                bad(format!("actions[{i}].channels"), "no channel".into());
            }
            for (j, c) in a.channels.iter().enumerate() {
                if !self.channels.contains(c) {
                    bad(
                        format!("actions[{i}].channels[{j}]"),
                        format!("channel `{c}` is not among the campaign's channels"),
                    );
                }
                if !seen.insert((a.version.clone(), *c)) {
                    bad(
                        format!("actions[{i}].channels[{j}]"),
                        format!("version `{}` on `{c}` is listed twice", a.version),
                    );
                }
            }
            if let Some(stage) = &a.stage
                && !ladder.contains(stage)
            {
                bad(
                    format!("actions[{i}].stage"),
                    format!("stage `{stage}` is not on the ladder"),
                );
            }
        }
        if let Some(Window {
            start: Some(s),
            end: Some(e),
        }) = self.window
            && e <= s
        {
            bad(
                "window.end".into(),
                "the window ends before it starts".into(),
            );
        }
        if self.caps.max_dispatches == Some(0) {
            bad(
                "caps.max-dispatches".into(),
                "a budget of 0 sends nothing".into(),
            );
        }
        if self.caps.per_minute == Some(0) {
            bad("caps.per-minute".into(), "a rate of 0 sends nothing".into());
        }
        if let Some(OrderedScore(s)) = self.scoring.min_score
            && !s.is_finite()
        {
            bad(
                "scoring.min-score".into(),
                "the minimum score is not a number".into(),
            );
        }
        if self.suggestions.expires < self.suggestions.due {
            bad(
                "suggestions.expires".into(),
                "suggestions would expire before they are due".into(),
            );
        }
        out
    }

    /// The holdout draw's seed.
    pub fn seed(&self) -> &str {
        self.seed.as_deref().unwrap_or(self.id.as_str())
    }
}

/// Where a campaign stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CampaignState {
    /// Created, not started.
    Draft,
    /// Started, waiting for its window.
    Scheduled,
    /// Dispatching.
    Running,
    /// Stopped by a user; can be resumed.
    Paused,
    /// Every member has an outcome.
    Completed,
    /// Stopped for good; queued dispatches were cancelled.
    Cancelled,
}

impl CampaignState {
    /// The stable, kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignState::Draft => "draft",
            CampaignState::Scheduled => "scheduled",
            CampaignState::Running => "running",
            CampaignState::Paused => "paused",
            CampaignState::Completed => "completed",
            CampaignState::Cancelled => "cancelled",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<CampaignState> {
        [
            CampaignState::Draft,
            CampaignState::Scheduled,
            CampaignState::Running,
            CampaignState::Paused,
            CampaignState::Completed,
            CampaignState::Cancelled,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }

    /// Whether the lifecycle allows going from `self` to `to`.
    pub fn can_become(self, to: CampaignState) -> bool {
        use CampaignState::*;
        matches!(
            (self, to),
            (Draft, Scheduled | Running | Cancelled)
                | (Scheduled, Running | Paused | Cancelled)
                | (Running, Paused | Completed | Cancelled)
                | (Paused, Scheduled | Running | Cancelled)
        )
    }

    /// Completed or cancelled.
    pub fn is_final(self) -> bool {
        matches!(self, CampaignState::Completed | CampaignState::Cancelled)
    }
}

impl fmt::Display for CampaignState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignRecord {
    /// As written.
    pub definition: CampaignDefinition,
    /// sha256 of the definition's canonical JSON.
    pub definition_sha256: String,
    /// Its state.
    pub state: CampaignState,
    /// Who created it.
    pub created_by: String,
    /// When.
    pub created_at: UnixMillis,
    /// Last state change.
    pub updated_at: UnixMillis,
    /// When its audience was resolved (members recorded), if it was.
    pub resolved_at: Option<UnixMillis>,
    /// The last lease taken on its run (expired when `until` has passed).
    #[serde(default)]
    pub lease: Option<Lease>,
}

/// What became of one HCP of a campaign's audience.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MemberOutcome {
    /// Not processed yet (or a dispatch awaits a retry).
    Pending,
    /// In the holdout: gets nothing from this campaign.
    Holdout,
    /// One action went out.
    Dispatched,
    /// No action passed the gate (or none was ranked); the reasons say why.
    Suppressed,
    /// The adapter refused the dispatch for good, or retries ran out.
    Failed,
    /// The window closed, or the campaign was cancelled, first.
    Unreached,
}

impl MemberOutcome {
    /// Every outcome, in a stable order.
    pub const ALL: [MemberOutcome; 6] = [
        MemberOutcome::Pending,
        MemberOutcome::Holdout,
        MemberOutcome::Dispatched,
        MemberOutcome::Suppressed,
        MemberOutcome::Failed,
        MemberOutcome::Unreached,
    ];

    /// The stable, kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberOutcome::Pending => "pending",
            MemberOutcome::Holdout => "holdout",
            MemberOutcome::Dispatched => "dispatched",
            MemberOutcome::Suppressed => "suppressed",
            MemberOutcome::Failed => "failed",
            MemberOutcome::Unreached => "unreached",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<MemberOutcome> {
        MemberOutcome::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Why one action was not taken for an HCP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// The content version, if the reason is about an action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<VersionHash>,
    /// The channel, if the reason is about an action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    /// Rule ids (gate rules, or the engine's: `not-ranked`, `below-min-score`,
    /// `no-adapter`, `campaign-budget`, `scoring-failed`).
    pub rules: Vec<String>,
    /// The gate decision, if the gate was asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    /// In words.
    pub message: String,
}

impl Reason {
    /// One line for a rep's suggestion notes: `email: consent-opt-in (no
    /// consent ...)`.
    pub fn note(&self) -> String {
        match self.channel {
            Some(c) => format!("{c}: {} ({})", self.rules.join(", "), self.message),
            None => format!("{} ({})", self.rules.join(", "), self.message),
        }
    }
}

/// One HCP of a campaign's audience.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// The HCP.
    pub hcp: HcpId,
    /// In the holdout.
    pub holdout: bool,
    /// What became of it.
    pub outcome: MemberOutcome,
    /// The dispatch, once one was entered in the ledger.
    pub dispatch: Option<String>,
    /// Its channel.
    pub channel: Option<Channel>,
    /// Its content version.
    pub version: Option<VersionHash>,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// Not before this time again (a retry's backoff).
    pub retry_at: Option<UnixMillis>,
    /// Why actions were not taken (every blocked or skipped action), and a
    /// failure's reason.
    pub reasons: Vec<Reason>,
    /// The scoring model's rationale for the action taken.
    pub rationale: Option<String>,
    /// Last change.
    pub updated_at: UnixMillis,
}

/// A change to one member, from the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberUpdate {
    /// The HCP.
    pub hcp: HcpId,
    /// The new outcome.
    pub outcome: MemberOutcome,
    /// The dispatch entered for it, if any.
    pub dispatch: Option<String>,
    /// Its channel.
    pub channel: Option<Channel>,
    /// Its version.
    pub version: Option<VersionHash>,
    /// Attempts so far.
    pub attempts: u32,
    /// Backoff.
    pub retry_at: Option<UnixMillis>,
    /// Reasons.
    pub reasons: Vec<Reason>,
    /// Rationale.
    pub rationale: Option<String>,
}

/// Counts of a campaign's members.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberCounts {
    /// Members in all.
    pub audience: u64,
    /// Of which in the holdout.
    pub holdout: u64,
    /// By outcome.
    pub by_outcome: BTreeMap<MemberOutcome, u64>,
    /// Dispatched members by channel.
    pub dispatched_by_channel: BTreeMap<Channel, u64>,
    /// Failed members by channel.
    pub failed_by_channel: BTreeMap<Channel, u64>,
    /// Suppressed members by the rules of their reasons (a member counts
    /// once per distinct rule).
    pub suppressed_by_rule: BTreeMap<String, u64>,
    /// Members settled (not pending) in the last minute, for the rate.
    pub settled_last_minute: u64,
}

/// Who holds a campaign's run, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The runner (process and host).
    pub owner: String,
    /// Until then (renewed as the run goes).
    pub until: UnixMillis,
}

/// One member of a page, as a run asks about it.
#[derive(Debug, Clone, Copy)]
pub struct MemberQuery<'a> {
    /// The HCP.
    pub hcp: &'a HcpId,
    /// The member's dispatch, when it has one; else its dispatch is looked
    /// up by `key`.
    pub dispatch: Option<&'a str>,
    /// The idempotency key its first dispatch would have.
    pub key: &'a str,
}

/// What a run reads about a member before ranking it.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberFacts {
    /// The HCP's profile (`None`: no such HCP any more).
    pub profile: Option<crate::hcp::HcpProfile>,
    /// Its engagement features (empty for an unknown HCP).
    pub features: crate::snapshot::EngagementStats,
    /// Its journey stage for the brand.
    pub stage: Option<String>,
    /// Its dispatch in the ledger, if any.
    pub dispatch: Option<crate::ledger::DispatchRecord>,
}

/// The facts of a page of members in one read. The default reads them one
/// call at a time; a backend overrides it to read them in one snapshot
/// (one transaction for the page instead of four per member).
pub trait MemberFactsStore:
    crate::store::HcpStore
    + crate::store::EventStore
    + crate::store::JourneyStore
    + crate::ledger::LedgerStore
{
    /// The facts of `members`, in their order, for `brand` as of `at`.
    fn member_facts(
        &self,
        brand: &str,
        at: UnixMillis,
        members: &[MemberQuery<'_>],
    ) -> StoreResult<Vec<MemberFacts>> {
        members
            .iter()
            .map(|m| {
                let profile = self.profile(m.hcp)?;
                let (features, stage) = match &profile {
                    Some(_) => (self.features(m.hcp, at)?, self.journey_stage(m.hcp, brand)?),
                    None => (crate::snapshot::EngagementStats::default(), None),
                };
                let dispatch = match m.dispatch {
                    Some(d) => self.dispatch(d)?,
                    None => self.dispatch_by_key(m.key)?,
                };
                Ok(MemberFacts {
                    profile,
                    features,
                    stage,
                    dispatch,
                })
            })
            .collect()
    }
}

/// Campaigns, their members and their runs' leases.
pub trait CampaignStore {
    /// Stores a new campaign in `draft`. Creating the same definition again
    /// returns the stored one (`false`: not new); a different definition
    /// under an existing id is refused.
    fn create_campaign(
        &self,
        actor: &str,
        definition: &CampaignDefinition,
        at: UnixMillis,
    ) -> StoreResult<(CampaignRecord, bool)>;
    /// One campaign.
    fn campaign(&self, id: &CampaignId) -> StoreResult<Option<CampaignRecord>>;
    /// Every campaign, oldest first.
    fn campaigns(&self) -> StoreResult<Vec<CampaignRecord>>;
    /// Moves a campaign to `to` if its lifecycle allows it. Cancelling also
    /// cancels its queued dispatches and marks its pending members
    /// `unreached`, in the same transaction. Audited.
    fn set_campaign_state(
        &self,
        actor: &str,
        id: &CampaignId,
        to: CampaignState,
        note: &str,
        at: UnixMillis,
    ) -> StoreResult<CampaignRecord>;
    /// Takes (or renews) the right to run a campaign until `until`. Returns
    /// the current holder instead when another owner holds an unexpired
    /// lease.
    fn claim_campaign(
        &self,
        id: &CampaignId,
        owner: &str,
        now: UnixMillis,
        until: UnixMillis,
    ) -> StoreResult<Result<(), Lease>>;
    /// Gives the lease up (if `owner` holds it).
    fn release_campaign(&self, id: &CampaignId, owner: &str) -> StoreResult<()>;
    /// Adds audience members (`holdout` flag each); members already added
    /// are left as they are. `last` marks the audience resolved.
    fn add_members(
        &self,
        id: &CampaignId,
        members: &[(HcpId, bool)],
        last: bool,
        at: UnixMillis,
    ) -> StoreResult<()>;
    /// Pending members after `after` (by HCP id), at most `limit`, whose
    /// retry time (if any) has come by `now`.
    fn pending_members(
        &self,
        id: &CampaignId,
        after: Option<&HcpId>,
        limit: usize,
        now: UnixMillis,
    ) -> StoreResult<Vec<Member>>;
    /// Members with an outcome (any when `None`), after `after`, at most
    /// `limit`.
    fn members(
        &self,
        id: &CampaignId,
        outcome: Option<MemberOutcome>,
        after: Option<&HcpId>,
        limit: usize,
    ) -> StoreResult<Vec<Member>>;
    /// One member.
    fn member(&self, id: &CampaignId, hcp: &HcpId) -> StoreResult<Option<Member>>;
    /// Records what became of members, in one transaction with one audit
    /// entry for the batch.
    fn update_members(
        &self,
        actor: &str,
        id: &CampaignId,
        updates: &[MemberUpdate],
        at: UnixMillis,
    ) -> StoreResult<()>;
    /// A running or scheduled campaign other than `except`, of priority
    /// above `priority`, that still has `hcp` pending: it gets the HCP's
    /// slot first.
    fn outranked_by(
        &self,
        hcp: &HcpId,
        priority: i32,
        except: &CampaignId,
    ) -> StoreResult<Option<CampaignId>>;
    /// Counts by outcome, channel and suppression rule.
    fn member_counts(&self, id: &CampaignId, now: UnixMillis) -> StoreResult<MemberCounts>;
    /// The gate's decisions for the campaign, counted.
    fn campaign_decisions(&self, id: &CampaignId) -> StoreResult<DecisionCounts>;
    /// Engagement events that name one of the campaign's dispatches (in
    /// their `dispatch_id` attribute), counted by channel, content version
    /// and event type.
    fn campaign_engagement(&self, id: &CampaignId) -> StoreResult<Vec<EngagementCount>>;
    /// The touches ([`Touch`]) and the moves on the campaign product's
    /// journey ladder, at or after `since`, of the campaign's treated
    /// members (not the holdout), each member's merge group together: one
    /// [`MemberTimeline`] per member with at least one touch, in HCP id
    /// order, handed to `visit` as it is read (a large campaign is never
    /// held in memory). An error from `visit` stops the walk and is
    /// returned.
    fn campaign_timelines(
        &self,
        id: &CampaignId,
        since: UnixMillis,
        visit: &mut dyn FnMut(MemberTimeline) -> StoreResult<()>,
    ) -> StoreResult<()>;
}

/// One touch of an HCP on a channel, from any campaign or none: a dispatch
/// that went out (state `sent`; a dispatch handed to a rep as a suggestion
/// is not a touch, the rep's visit is), or a field contact logged as an
/// event of one of [`Touch::FIELD_EVENTS`], on the event's channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Touch {
    /// The channel.
    pub channel: Channel,
    /// When: the time the dispatch was sent, or the event occurred.
    pub at: UnixMillis,
}

impl Touch {
    /// The event types that record a field touch: a rep's visit or call, a
    /// hospital meeting, a suggestion the rep acted on.
    pub const FIELD_EVENTS: [EventType; 5] = [
        EventType::RepVisit,
        EventType::RemoteCall,
        EventType::PhoneCall,
        EventType::HospitalMeeting,
        EventType::SuggestionDone,
    ];
}

/// A treated campaign member's touches and journey moves since a time
/// ([`CampaignStore::campaign_timelines`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberTimeline {
    /// The member.
    pub hcp: HcpId,
    /// Its touches, oldest first (touches at the same instant by channel).
    pub touches: Vec<Touch>,
    /// Its moves on the campaign product's ladder, oldest first.
    pub moves: Vec<crate::journey::JourneyTransition>,
}

/// Engagement with a campaign's dispatches, counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngagementCount {
    /// The channel of the dispatch.
    pub channel: Channel,
    /// Its content version.
    pub version: VersionHash,
    /// What happened.
    pub event: EventType,
    /// How many events.
    pub events: u64,
    /// How many distinct HCPs.
    pub hcps: u64,
}

/// A campaign's gate decisions, counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionCounts {
    /// Decisions in all.
    pub decisions: u64,
    /// Of which blocks.
    pub blocked: u64,
    /// Blocks by channel.
    pub blocked_by_channel: BTreeMap<Channel, u64>,
    /// Blocks by rule (a block counts once for each rule that blocked it).
    pub blocked_by_rule: BTreeMap<String, u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_parse_and_print() {
        assert_eq!(Span::parse("30d").unwrap().millis, 30 * 86_400_000);
        assert_eq!(Span::parse("48h").unwrap().to_string(), "2d");
        assert!(Span::parse("3x").is_err());
        assert!(Span::parse("0d").is_err());
        assert!(Span::parse("d").is_err());
    }

    #[test]
    fn ids_are_checked() {
        assert!(CampaignId::new("q4-cardio.launch_1").is_ok());
        assert!(CampaignId::new("").is_err());
        assert!(CampaignId::new("-x").is_err());
        assert!(CampaignId::new("Big").is_err());
        assert!(CampaignId::new("a".repeat(65)).is_err());
    }

    #[test]
    fn lifecycle() {
        use CampaignState::*;
        assert!(Draft.can_become(Running));
        assert!(Running.can_become(Paused));
        assert!(Paused.can_become(Running));
        assert!(!Completed.can_become(Running));
        assert!(!Cancelled.can_become(Running));
        assert!(!Draft.can_become(Completed));
    }
}
