//! Event-triggered journeys: "when event E happens for an HCP (with
//! conditions), after delay D do action A, unless condition C".
//!
//! Not to be confused with journey *stages* ([`crate::journey`]): a journey
//! here is a standing rule a marketer defines; each time an event fires it
//! for an HCP, a *journey action* is scheduled. Actions are stored before
//! anything is done with them, so a delayed action survives a restart, and
//! each one goes out through the same path as a campaign dispatch: gate ->
//! ledger -> adapter (or the rep's queue).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::campaign::{ActionSpec, Filter, Problem, Reason, Span};
use crate::channel::Channel;
use crate::consent::Purpose;
use crate::event::{EventType, NewEvent, UnixMillis};
use crate::hcp::HcpId;
use crate::store::StoreResult;
use crate::template::Values;

/// A journey's id: 1 to 64 lowercase letters, digits, `-`, `_` or `.`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct JourneyId(String);

impl JourneyId {
    /// Checks the shape.
    ///
    /// # Errors
    ///
    /// Says what is wrong with `id`.
    pub fn new(id: impl Into<String>) -> Result<JourneyId, String> {
        crate::campaign::check_id("journey", id.into()).map(JourneyId)
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What the ledger, the gate's per-campaign caps and decisions name as
    /// the sender: `journey:<id>` (campaign ids cannot hold a `:`).
    pub fn sender(&self) -> String {
        format!("journey:{}", self.0)
    }
}

impl fmt::Display for JourneyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for JourneyId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        JourneyId::new(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// What fires the journey.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Trigger {
    /// The event type, e.g. `rep-visit`.
    pub event: EventType,
    /// Attributes the event must carry with exactly these string values,
    /// e.g. `{"topic": "dosing"}`.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// How many such events it takes (this one included), e.g. 2 for "clicks
    /// efficacy content twice". Default 1.
    #[serde(default = "one")]
    pub count: u32,
    /// Over how long the `count` events are counted (needed when `count` >
    /// 1).
    #[serde(default)]
    pub within: Option<Span>,
    /// Conditions on the HCP at the time of the event (the campaign audience
    /// language: specialty, tag, stage, feature, ...). Everyone when absent.
    #[serde(default)]
    pub audience: Option<Filter>,
}

fn one() -> u32 {
    1
}

impl Trigger {
    /// Whether `event` is of the trigger's kind (type and attributes); the
    /// count and the audience are checked by the engine.
    pub fn matches(&self, event: &NewEvent) -> bool {
        event.event_type == self.event
            && self.attributes.iter().all(|(k, v)| {
                event.attributes.get(k).and_then(serde_json::Value::as_str) == Some(v.as_str())
            })
    }
}

/// What the journey does when it fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub enum JourneyAction {
    /// Send approved content: the options are tried in order, each version
    /// on each of its channels, and the first the gate allows goes out. A
    /// field channel (`rep-visit`, ...) makes a rep suggestion carrying the
    /// `rationale`.
    Send {
        /// The options, preferred first.
        options: Vec<ActionSpec>,
        /// Why: shown to the rep on a suggestion, kept on the action.
        rationale: String,
        /// Values of the personalization fields.
        #[serde(default)]
        values: Values,
        /// How long a rep suggestion stays open (default 14 days).
        #[serde(default)]
        expires: Option<Span>,
    },
    /// Cancel every journey action pending for the HCP on these channels
    /// (all channels when empty), and close open rep suggestions on them.
    CancelPending {
        /// The channels.
        #[serde(default)]
        channels: Vec<Channel>,
    },
}

impl JourneyAction {
    /// The channels an action may go out on (empty for a cancel).
    pub fn channels(&self) -> Vec<Channel> {
        match self {
            JourneyAction::Send { options, .. } => {
                let mut out: Vec<Channel> = Vec::new();
                for o in options {
                    for c in &o.channels {
                        if !out.contains(c) {
                            out.push(*c);
                        }
                    }
                }
                out
            }
            JourneyAction::CancelPending { .. } => Vec::new(),
        }
    }
}

/// A journey as a marketer writes it (a JSON file, kebab-case keys).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct JourneyDefinition {
    /// Stable id.
    pub id: JourneyId,
    /// What people call it.
    pub name: String,
    /// The brand or product.
    pub product: String,
    /// The market; only HCPs of this market.
    pub market: String,
    /// Why messages are sent (consent is per purpose).
    #[serde(default = "promotional")]
    pub purpose: Purpose,
    /// When it fires.
    pub when: Trigger,
    /// How long after the event the action is due (at once when absent).
    #[serde(default)]
    pub after: Option<Span>,
    /// What it does.
    #[serde(rename = "do")]
    pub action: JourneyAction,
    /// Checked when the action is due: if it holds, the action is cancelled
    /// (e.g. the HCP already opened the e-mail).
    #[serde(default)]
    pub unless: Option<Filter>,
    /// How soon it may fire again for the same HCP; once per HCP when absent.
    #[serde(default)]
    pub refire_after: Option<Span>,
}

fn promotional() -> Purpose {
    Purpose::Promotional
}

/// The longest delay: a year.
pub const MAX_DELAY_MS: i64 = 366 * 86_400_000;

impl JourneyDefinition {
    /// Checks what the types cannot; every problem, with its path.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut bad = |path: &str, message: String| {
            out.push(Problem {
                path: path.to_owned(),
                message,
            });
        };
        for (path, value) in [
            ("name", &self.name),
            ("product", &self.product),
            ("market", &self.market),
        ] {
            if value.trim().is_empty() {
                bad(path, format!("the {path} is empty"));
            }
        }
        if self.when.count == 0 {
            bad(
                "when.count",
                "a count of 0 never fires: give 1 or more".into(),
            );
        }
        if self.when.count > 1 && self.when.within.is_none() {
            bad(
                "when.within",
                format!(
                    "a count of {} needs a period to count over, e.g. `\"within\": \"30d\"`",
                    self.when.count
                ),
            );
        }
        if self.after.is_some_and(|a| a.millis > MAX_DELAY_MS) {
            bad("after", "a delay is at most a year".into());
        }
        match &self.action {
            JourneyAction::Send {
                options, rationale, ..
            } => {
                if options.is_empty() {
                    bad("do.send.options", "no option: list at least one".into());
                }
                if rationale.trim().is_empty() {
                    bad(
                        "do.send.rationale",
                        "say why (reps see it on suggestions)".into(),
                    );
                }
                let mut seen = std::collections::BTreeSet::new();
                for (i, o) in options.iter().enumerate() {
                    if o.channels.is_empty() {
                        bad(
                            &format!("do.send.options[{i}].channels"),
                            "no channel".into(),
                        );
                    }
                    for (j, c) in o.channels.iter().enumerate() {
                        if !seen.insert((o.version.clone(), *c)) {
                            bad(
                                &format!("do.send.options[{i}].channels[{j}]"),
                                format!("version `{}` on `{c}` is listed twice", o.version),
                            );
                        }
                    }
                }
            }
            JourneyAction::CancelPending { .. } => {
                if self.after.is_some() {
                    bad("after", "a cancel acts at once: remove the delay".into());
                }
            }
        }
        out
    }
}

/// A journey's lifecycle: `active` <-> `paused`, then `retired` (final).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JourneyState {
    /// Fires on events; its due actions go out.
    Active,
    /// Neither fires nor sends; due actions wait.
    Paused,
    /// Stopped for good; its pending actions were cancelled.
    Retired,
}

impl JourneyState {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            JourneyState::Active => "active",
            JourneyState::Paused => "paused",
            JourneyState::Retired => "retired",
        }
    }

    /// Whether a journey may move from `self` to `to`.
    pub fn can_move_to(self, to: JourneyState) -> bool {
        matches!(
            (self, to),
            (JourneyState::Active, JourneyState::Paused)
                | (JourneyState::Paused, JourneyState::Active)
                | (
                    JourneyState::Active | JourneyState::Paused,
                    JourneyState::Retired
                )
        )
    }
}

impl fmt::Display for JourneyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for JourneyState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(JourneyState::Active),
            "paused" => Ok(JourneyState::Paused),
            "retired" => Ok(JourneyState::Retired),
            _ => Err(format!(
                "unknown journey state `{s}`: active, paused or retired"
            )),
        }
    }
}

/// A stored journey.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JourneyRecord {
    /// The definition, as created.
    pub definition: JourneyDefinition,
    /// sha256 of its canonical JSON.
    pub definition_sha256: String,
    /// Its state.
    pub state: JourneyState,
    /// Only events stored after this position of the event log fire it.
    pub from_seq: i64,
    /// Who created it.
    pub created_by: String,
    /// When.
    pub created_at: UnixMillis,
    /// When the state last changed.
    pub updated_at: UnixMillis,
}

/// Where a journey action stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionState {
    /// Waiting for its time (or a retry).
    Pending,
    /// Went out (delivered, or a rep suggestion was created).
    Dispatched,
    /// No option passed the gate; every reason is kept.
    Suppressed,
    /// The adapter refused it for good, or retries ran out.
    Failed,
    /// Cancelled: its `unless` held, an event cancelled it, or the journey
    /// was retired.
    Cancelled,
    /// A cancel action that ran.
    Done,
}

impl ActionState {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionState::Pending => "pending",
            ActionState::Dispatched => "dispatched",
            ActionState::Suppressed => "suppressed",
            ActionState::Failed => "failed",
            ActionState::Cancelled => "cancelled",
            ActionState::Done => "done",
        }
    }

    /// Every state.
    pub const ALL: [ActionState; 6] = [
        ActionState::Pending,
        ActionState::Dispatched,
        ActionState::Suppressed,
        ActionState::Failed,
        ActionState::Cancelled,
        ActionState::Done,
    ];
}

impl fmt::Display for ActionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ActionState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ActionState::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                format!("unknown action state `{s}`: pending, dispatched, suppressed, failed, cancelled or done")
            })
    }
}

/// An action a journey scheduled when an event fired it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewJourneyAction {
    /// The journey.
    pub journey: JourneyId,
    /// The HCP (the survivor, if the event named a merged-away id).
    pub hcp: HcpId,
    /// The event that fired it.
    pub event: String,
    /// The event's position in the event log.
    pub event_seq: i64,
    /// When omnigate stored the event.
    pub event_received_at: UnixMillis,
    /// When the journey fired.
    pub fired_at: UnixMillis,
    /// When the action is due.
    pub due_at: UnixMillis,
    /// The channels it may go out on (for cancels by channel).
    pub channels: Vec<Channel>,
}

/// A stored journey action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JourneyActionRecord {
    /// Its number (the dispatch's idempotency key is
    /// `journey/<journey>/<num>`).
    pub num: i64,
    /// What was scheduled.
    #[serde(flatten)]
    pub action: NewJourneyAction,
    /// Where it stands.
    pub state: ActionState,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// The dispatch, once one was entered in the ledger.
    pub dispatch: Option<String>,
    /// The channel it went out on.
    pub channel: Option<Channel>,
    /// Why it is where it is (every reason for a suppression).
    pub reasons: Vec<Reason>,
    /// When it last changed.
    pub updated_at: UnixMillis,
}

/// How an action moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionUpdate {
    /// The action.
    pub num: i64,
    /// Its new state (`pending` with a new `due_at` for a retry).
    pub state: ActionState,
    /// The next attempt's time, for `pending`.
    pub due_at: Option<UnixMillis>,
    /// Attempts so far.
    pub attempts: u32,
    /// The dispatch entered, if any.
    pub dispatch: Option<String>,
    /// The channel.
    pub channel: Option<Channel>,
    /// Why.
    pub reasons: Vec<Reason>,
}

/// How fast events reach journeys: event stored -> action scheduled, over
/// every action a journey scheduled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FireLatency {
    /// Actions measured.
    pub actions: u64,
    /// Median, in milliseconds.
    pub p50_ms: i64,
    /// 99th percentile, in milliseconds.
    pub p99_ms: i64,
    /// Slowest, in milliseconds.
    pub max_ms: i64,
}

/// A journey's counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JourneyCounts {
    /// Actions by state.
    pub by_state: BTreeMap<ActionState, u64>,
    /// Dispatched actions by channel.
    pub by_channel: BTreeMap<Channel, u64>,
    /// The next pending action's due time.
    pub next_due: Option<UnixMillis>,
    /// Event stored -> action scheduled.
    pub latency: FireLatency,
}

/// Storage of journeys (the event-triggered rules) and their actions.
pub trait JourneyRuleStore {
    /// Stores a new journey (active), audited; the same definition again is
    /// a no-op (`false`). Only events stored from now on fire it.
    fn create_journey(
        &self,
        actor: &str,
        definition: &JourneyDefinition,
        at: UnixMillis,
    ) -> StoreResult<(JourneyRecord, bool)>;
    /// One journey.
    fn journey(&self, id: &JourneyId) -> StoreResult<Option<JourneyRecord>>;
    /// Every journey, oldest first.
    fn journeys(&self) -> StoreResult<Vec<JourneyRecord>>;
    /// Moves a journey, audited with the reason. Retiring cancels its pending
    /// actions in the same transaction.
    fn set_journey_state(
        &self,
        actor: &str,
        id: &JourneyId,
        to: JourneyState,
        reason: &str,
        at: UnixMillis,
    ) -> StoreResult<JourneyRecord>;
    /// How far journeys have read the event log.
    fn journey_cursor(&self) -> StoreResult<i64>;
    /// Events stored after position `after`, oldest first, at most `limit`,
    /// each with its position.
    fn events_after(
        &self,
        after: i64,
        limit: usize,
    ) -> StoreResult<Vec<(i64, crate::event::Event)>>;
    /// Stores the actions fired by the events up to position `cursor` and
    /// moves the cursor there, in one transaction (an action already stored
    /// for the same journey, HCP and event is skipped). Returns how many
    /// were stored.
    fn schedule_actions(
        &self,
        actor: &str,
        cursor: i64,
        actions: &[NewJourneyAction],
    ) -> StoreResult<usize>;
    /// When the journey last fired for the HCP.
    fn last_fired(&self, journey: &JourneyId, hcp: &HcpId) -> StoreResult<Option<UnixMillis>>;
    /// Pending actions due by `now`, earliest first.
    fn due_actions(&self, now: UnixMillis, limit: usize) -> StoreResult<Vec<JourneyActionRecord>>;
    /// One action.
    fn journey_action(&self, num: i64) -> StoreResult<Option<JourneyActionRecord>>;
    /// Moves actions (only pending ones move), audited, in one transaction.
    fn settle_actions(
        &self,
        actor: &str,
        updates: &[ActionUpdate],
        at: UnixMillis,
    ) -> StoreResult<()>;
    /// Cancels the HCP's pending actions that may go out only on `channels`
    /// (any when empty), with the reason; returns the numbers cancelled.
    /// Cancel actions themselves (no channel) are never cancelled.
    fn cancel_pending_actions(
        &self,
        actor: &str,
        hcp: &HcpId,
        channels: &[Channel],
        reason: &Reason,
        at: UnixMillis,
    ) -> StoreResult<Vec<i64>>;
    /// A journey's actions, newest first, optionally of one state.
    fn journey_actions(
        &self,
        id: &JourneyId,
        state: Option<ActionState>,
        limit: usize,
    ) -> StoreResult<Vec<JourneyActionRecord>>;
    /// A journey's counts.
    fn journey_counts(&self, id: &JourneyId, now: UnixMillis) -> StoreResult<JourneyCounts>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definition(json: serde_json::Value) -> Result<JourneyDefinition, String> {
        serde_json::from_value(json).map_err(|e| e.to_string())
    }

    #[test]
    fn a_journey_reads_from_kebab_case_json_and_says_what_is_wrong() {
        let v = "a".repeat(64);
        let d = definition(serde_json::json!({
            "id": "dosing-followup",
            "name": "Dosing question -> dosing e-mail",
            "product": "cardiozen",
            "market": "US",
            "when": {"event": "rep-visit", "attributes": {"topic": "dosing"}},
            "after": "1h",
            "do": {"send": {"options": [{"version": v, "channels": ["email"]}],
                            "rationale": "asked about dosing"}},
            "unless": {"seen": v}
        }))
        .unwrap();
        assert!(d.problems().is_empty(), "{:?}", d.problems());
        assert_eq!(d.after.unwrap().millis, 3_600_000);
        assert_eq!(d.action.channels(), vec![Channel::Email]);

        let d = definition(serde_json::json!({
            "id": "clicks",
            "name": " ",
            "product": "cardiozen",
            "market": "US",
            "when": {"event": "email-clicked", "count": 2},
            "do": {"send": {"options": [], "rationale": ""}}
        }))
        .unwrap();
        let paths: Vec<_> = d.problems().into_iter().map(|p| p.path).collect();
        assert_eq!(
            paths,
            vec![
                "name",
                "when.within",
                "do.send.options",
                "do.send.rationale"
            ]
        );

        let e = definition(serde_json::json!({
            "id": "Bad Id", "name": "x", "product": "p", "market": "US",
            "when": {"event": "rep-visit"}, "do": {"cancel-pending": {}}
        }))
        .unwrap_err();
        assert!(e.contains("invalid journey id `Bad Id`"), "{e}");
        let e = definition(serde_json::json!({
            "id": "x", "name": "x", "product": "p", "market": "US",
            "when": {"event": "rep-visit", "colour": 1}, "do": {"cancel-pending": {}}
        }))
        .unwrap_err();
        assert!(e.contains("unknown field `colour`"), "{e}");
    }

    #[test]
    fn a_trigger_matches_type_and_attributes() {
        let t = Trigger {
            event: EventType::RepVisit,
            attributes: BTreeMap::from([("topic".into(), "dosing".into())]),
            count: 1,
            within: None,
            audience: None,
        };
        let mut e = NewEvent {
            id: "e1".into(),
            hcp: HcpId::new("npi-1").unwrap(),
            event_type: EventType::RepVisit,
            channel: Channel::RepVisit,
            occurred_at: 0,
            attributes: serde_json::Map::new(),
        };
        assert!(!t.matches(&e));
        e.attributes.insert("topic".into(), "dosing".into());
        assert!(t.matches(&e));
        e.attributes.insert("topic".into(), "efficacy".into());
        assert!(!t.matches(&e));
        e.event_type = EventType::PhoneCall;
        e.attributes.insert("topic".into(), "dosing".into());
        assert!(!t.matches(&e));
    }

    #[test]
    fn journey_states_move_only_as_the_lifecycle_allows() {
        use JourneyState::*;
        assert!(Active.can_move_to(Paused));
        assert!(Paused.can_move_to(Active));
        assert!(Paused.can_move_to(Retired));
        assert!(!Retired.can_move_to(Active));
        assert!(!Active.can_move_to(Active));
    }
}
