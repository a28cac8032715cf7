//! Gate decisions and the dispatch ledger.
//!
//! Every question put to the compliance gate ends in a [`DecisionRecord`]:
//! what was asked (dispatch, HCP, channel, content version), under which
//! policy version, the verdict, and per rule the evidence. An allowed
//! dispatch is then entered in the ledger ([`NewDispatch`]) with its
//! idempotency key before any adapter is called; the ledger is also what
//! contact-pressure caps count.
//!
//! INVARIANT: decision records never hold contact details (they name the
//! HCP by id; excerpts are redacted).

use serde::{Deserialize, Serialize};

use crate::Channel;
use crate::consent::{ConsentId, Purpose};
use crate::content::VersionHash;
use crate::event::UnixMillis;
use crate::hcp::HcpId;
use crate::store::StoreResult;

/// The gate's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The dispatch may go out.
    Allow,
    /// It may not.
    Block,
}

impl Verdict {
    /// `allow` or `block`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Block => "block",
        }
    }
}

/// What one rule concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Checked and satisfied.
    Pass,
    /// Not satisfied, severity warn: recorded, does not block.
    Warn,
    /// Not satisfied: blocks the dispatch.
    Block,
}

/// One rule's part in a decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleOutcome {
    /// The rule's id (policy rule ids, or the gate's built-in ones such as
    /// `content-not-approved`, `consent-opt-in`, `integrity`).
    pub rule: String,
    /// What it checks: `approval`, `integrity`, `personalization`, `claim`,
    /// `off-label`, `citation`, `pii`, `required-element`, `consent`, `cap`
    /// or `gate` (the gate could not decide).
    pub kind: String,
    /// What it concluded.
    pub outcome: Outcome,
    /// In words a marketer understands.
    pub reason: String,
    /// The regulation or code section, if the rule names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The facts behind it: spans and excerpts, cap counts, the consent
    /// record relied on.
    #[serde(default)]
    pub evidence: serde_json::Value,
}

/// A gate decision, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// The decision's id.
    pub id: String,
    /// When it was made.
    pub at: UnixMillis,
    /// The dispatch it is about.
    pub dispatch: String,
    /// The campaign or journey that asked, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    /// The HCP.
    pub hcp: HcpId,
    /// The channel.
    pub channel: Channel,
    /// Why the message is sent.
    pub purpose: Purpose,
    /// The market the message goes out in.
    pub market: String,
    /// The content version asked for.
    pub version: VersionHash,
    /// The policy version in force; `None` if no policy was loaded (the
    /// decision is then a block).
    pub policy_version: Option<String>,
    /// The answer.
    pub verdict: Verdict,
    /// sha256 of the exact text the gate screened (its parts in order, as
    /// `name\0text\0`), when it got that far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_sha256: Option<String>,
    /// The consent record the dispatch relies on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<ConsentId>,
    /// Per rule: outcome and evidence. Blocks first.
    pub rules: Vec<RuleOutcome>,
    /// One sentence for a marketer.
    pub summary: String,
}

impl DecisionRecord {
    /// When a blocked dispatch could pass if nothing else changed: the
    /// latest `resume_at` of its blocking rules, when every one of them has
    /// one (quiet hours say when they end); `None` when it was allowed or a
    /// blocking rule is not a matter of time.
    pub fn deferrable_until(&self) -> Option<UnixMillis> {
        let mut until = None;
        for r in self.rules.iter().filter(|r| r.outcome == Outcome::Block) {
            let at = r
                .evidence
                .get("resume_at")
                .and_then(serde_json::Value::as_i64)?;
            until = Some(until.map_or(at, |u: UnixMillis| u.max(at)));
        }
        until
    }

    /// The ids of the rules that blocked.
    pub fn blocking_rules(&self) -> impl Iterator<Item = &str> {
        self.rules
            .iter()
            .filter(|r| r.outcome == Outcome::Block)
            .map(|r| r.rule.as_str())
    }
}

/// Where a dispatch stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DispatchState {
    /// Allowed and recorded; not handed to the adapter yet.
    Queued,
    /// Handed to the adapter; the outcome is not known yet.
    Sending,
    /// The adapter accepted it.
    Sent,
    /// The adapter failed it for good.
    Failed,
    /// Stopped before sending (opt-out, content withdrawn or expired, a
    /// campaign cancelled).
    Cancelled,
}

impl DispatchState {
    /// Every state.
    pub const ALL: [DispatchState; 5] = [
        DispatchState::Queued,
        DispatchState::Sending,
        DispatchState::Sent,
        DispatchState::Failed,
        DispatchState::Cancelled,
    ];

    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            DispatchState::Queued => "queued",
            DispatchState::Sending => "sending",
            DispatchState::Sent => "sent",
            DispatchState::Failed => "failed",
            DispatchState::Cancelled => "cancelled",
        }
    }

    /// Whether it counts as a contact for caps (it went out, or may still).
    pub fn counts_as_contact(self) -> bool {
        matches!(
            self,
            DispatchState::Queued | DispatchState::Sending | DispatchState::Sent
        )
    }
}

impl std::str::FromStr for DispatchState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DispatchState::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| format!("unknown dispatch state `{s}`"))
    }
}

/// An allowed dispatch, entered in the ledger before delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewDispatch {
    /// The dispatch id.
    pub id: String,
    /// Unique per intended delivery (e.g. campaign, HCP, step); the adapter
    /// receives it and the provider dedups on it.
    pub idempotency_key: String,
    /// The campaign or journey, if any.
    pub campaign: Option<String>,
    /// The HCP.
    pub hcp: HcpId,
    /// The channel.
    pub channel: Channel,
    /// The purpose.
    pub purpose: Purpose,
    /// The market.
    pub market: String,
    /// The product, if the content promotes one.
    pub product: Option<String>,
    /// The approved content version.
    pub version: VersionHash,
    /// The decision that allowed it.
    pub decision: String,
    /// When it is to go out.
    pub planned_at: UnixMillis,
    /// sha256 of the text the gate saw.
    pub text_sha256: String,
}

/// A dispatch as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchRecord {
    /// What was entered.
    #[serde(flatten)]
    pub dispatch: NewDispatch,
    /// Where it stands.
    pub state: DispatchState,
    /// Why it failed or was cancelled.
    pub detail: Option<String>,
    /// Last change.
    pub updated_at: UnixMillis,
}

/// A past or pending contact with an HCP, as caps count it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// When (planned or done).
    pub at: UnixMillis,
    /// The channel.
    pub channel: Channel,
    /// The campaign, if it came from one.
    pub campaign: Option<String>,
    /// The dispatch (so that a dispatch put to the gate again is not
    /// counted against itself).
    #[serde(default)]
    pub dispatch: Option<String>,
}

/// Which decisions to list. Empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionFilter {
    /// Only this campaign.
    pub campaign: Option<String>,
    /// Only this HCP (its whole merge group).
    pub hcp: Option<HcpId>,
    /// Only decisions where this rule blocked or warned.
    pub rule: Option<String>,
    /// Only this verdict.
    pub verdict: Option<Verdict>,
    /// Only decisions made before this one (by id, for paging; newest first).
    pub before: Option<String>,
    /// At most this many (the store caps it at 1,000).
    pub limit: usize,
}

/// What recording a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordReport {
    /// Decisions stored.
    pub decisions: usize,
    /// Dispatches entered.
    pub dispatches: usize,
    /// Idempotency keys already in the ledger: those dispatches were not
    /// entered again (a resumed run).
    pub existing_keys: Vec<String>,
}

/// One state change of a batch ([`LedgerStore::set_dispatch_states`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange<'a> {
    /// The dispatch.
    pub id: &'a str,
    /// It moves only from one of these states.
    pub from: &'a [DispatchState],
    /// To this one.
    pub to: DispatchState,
    /// Why (a provider id, an error).
    pub detail: Option<&'a str>,
}

/// Which queued dispatches to cancel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CancelScope {
    /// Every queued dispatch of a content version.
    Version(VersionHash),
    /// Every queued dispatch to an HCP on a channel (its merge group).
    HcpChannel(HcpId, Channel),
    /// Every queued dispatch of a campaign.
    Campaign(String),
}

/// A decision with its canonical JSON, written once: the text the ledger
/// stores and the audit entry commits to. A campaign seals each decision
/// on the thread that decides, so that the thread that writes the ledger
/// only writes.
#[derive(Debug, Clone, PartialEq)]
pub struct SealedDecision {
    record: DecisionRecord,
    json: String,
    commitment: String,
}

impl SealedDecision {
    /// Serializes `record` (canonical JSON).
    pub fn new(record: DecisionRecord) -> Result<SealedDecision, serde_json::Error> {
        let json = crate::canonical::canonical_json_of(&record)?;
        let commitment = crate::audit::decision_commitment(&json);
        Ok(SealedDecision {
            record,
            json,
            commitment,
        })
    }

    /// The decision.
    pub fn record(&self) -> &DecisionRecord {
        &self.record
    }

    /// Its canonical JSON.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// What its audit entry holds: the sha256 of the JSON
    /// ([`crate::audit::decision_commitment`]).
    pub fn commitment(&self) -> &str {
        &self.commitment
    }
}

/// Gate decisions and the dispatch ledger.
pub trait LedgerStore {
    /// Stores decisions and enters the allowed dispatches, in one
    /// transaction with one audit entry per decision. A dispatch whose
    /// idempotency key is already in the ledger is not entered again.
    fn record_decisions(
        &self,
        actor: &str,
        decisions: &[DecisionRecord],
        dispatches: &[NewDispatch],
    ) -> StoreResult<RecordReport>;
    /// [`LedgerStore::record_decisions`] for decisions serialized already:
    /// the same rows and audit entries. The default serializes them again.
    fn record_sealed_decisions(
        &self,
        actor: &str,
        decisions: &[SealedDecision],
        dispatches: &[NewDispatch],
    ) -> StoreResult<RecordReport> {
        let records: Vec<DecisionRecord> = decisions.iter().map(|d| d.record.clone()).collect();
        self.record_decisions(actor, &records, dispatches)
    }
    /// One decision.
    fn decision(&self, id: &str) -> StoreResult<Option<DecisionRecord>>;
    /// Decisions matching `filter`, newest first.
    fn decisions(&self, filter: &DecisionFilter) -> StoreResult<Vec<DecisionRecord>>;
    /// One dispatch, by id.
    fn dispatch(&self, id: &str) -> StoreResult<Option<DispatchRecord>>;
    /// One dispatch, by idempotency key.
    fn dispatch_by_key(&self, key: &str) -> StoreResult<Option<DispatchRecord>>;
    /// Moves a dispatch to `to` if it is in one of `from`; returns whether it
    /// moved. Audited.
    fn set_dispatch_state(
        &self,
        actor: &str,
        id: &str,
        from: &[DispatchState],
        to: DispatchState,
        detail: Option<&str>,
    ) -> StoreResult<bool>;
    /// [`LedgerStore::set_dispatch_state`] for several dispatches: whether
    /// each moved, in order, with one audit entry per dispatch moved. A
    /// backend that can makes the batch one transaction (all or nothing,
    /// one durable commit); the default moves them one at a time.
    fn set_dispatch_states(
        &self,
        actor: &str,
        changes: &[StateChange<'_>],
    ) -> StoreResult<Vec<bool>> {
        changes
            .iter()
            .map(|c| self.set_dispatch_state(actor, c.id, c.from, c.to, c.detail))
            .collect()
    }
    /// Cancels queued dispatches; returns their ids. Audited.
    fn cancel_queued(
        &self,
        actor: &str,
        scope: &CancelScope,
        reason: &str,
    ) -> StoreResult<Vec<String>>;
    /// The HCP's (merge group's) contacts from the ledger planned at or
    /// after `since`, that went out or may still.
    fn contacts_since(&self, hcp: &HcpId, since: UnixMillis) -> StoreResult<Vec<Contact>>;
}

/// What the gate reads about one dispatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactsQuery {
    /// The HCP.
    pub hcp: HcpId,
    /// The content version.
    pub version: VersionHash,
    /// The version's item, when the caller knows it: then the item's latest
    /// approved version is read too.
    pub item: Option<String>,
    /// The consent to look up, when the caller knows the product: market
    /// (`None`: the HCP's), channel, purpose, product.
    pub consent: Option<(Option<String>, Channel, Purpose, Option<String>)>,
    /// Contacts planned at or after this time are read.
    pub contacts_since: UnixMillis,
    /// When set, the HCP's engagement features as of this time are read
    /// too (the contact caps that depend on engagement need them).
    pub features_at: Option<UnixMillis>,
}

/// The answers, read in one snapshot where the backend can.
#[derive(Debug, Clone, PartialEq)]
pub struct GateFacts {
    /// The HCP's profile.
    pub profile: Option<crate::hcp::HcpProfile>,
    /// The version's state.
    pub version_state: Option<crate::content::ContentState>,
    /// The item's latest approved version (when the item was given).
    pub latest_approved: Option<VersionHash>,
    /// The deciding consent record (when the consent was asked for and the
    /// HCP exists).
    pub consent: Option<crate::consent::ConsentRecord>,
    /// The HCP's contacts since the time asked (empty for an unknown HCP).
    pub contacts: Vec<Contact>,
    /// The HCP's engagement features (when asked for and the HCP exists).
    pub features: Option<crate::snapshot::EngagementStats>,
}

/// One read for the gate's facts about a dispatch. The default reads them
/// one call at a time; a backend overrides it to read them in one
/// snapshot (consistent, and cheaper).
pub trait GateFactsStore:
    crate::store::HcpStore
    + crate::store::ConsentStore
    + crate::store::ContentStore
    + crate::store::EventStore
    + LedgerStore
{
    /// The facts for `q`.
    fn gate_facts(&self, q: &FactsQuery) -> StoreResult<GateFacts> {
        let profile = self.profile(&q.hcp)?;
        let version_state = self.version_state(&q.version)?;
        let latest_approved = match &q.item {
            Some(item) => self.latest_approved(item)?,
            None => None,
        };
        let (consent, contacts, features) = match &profile {
            None => (None, Vec::new(), None),
            Some(p) => {
                let consent = match &q.consent {
                    None => None,
                    Some((market, channel, purpose, product)) => {
                        self.deciding_consent(&crate::store::ConsentQuery {
                            hcp: q.hcp.clone(),
                            channel: *channel,
                            purpose: *purpose,
                            market: market.clone().unwrap_or_else(|| p.market.clone()),
                            product: product.clone(),
                        })?
                    }
                };
                let features = match q.features_at {
                    Some(at) => Some(self.features(&q.hcp, at)?),
                    None => None,
                };
                (
                    consent,
                    self.contacts_since(&q.hcp, q.contacts_since)?,
                    features,
                )
            }
        };
        Ok(GateFacts {
            profile,
            version_state,
            latest_approved,
            consent,
            contacts,
            features,
        })
    }
}
