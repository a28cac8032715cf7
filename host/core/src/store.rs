//! The storage interface: what the rest of the host may ask of a store.
//!
//! Callers hold an `Arc<dyn Store>` and never see the backend (embedded
//! SQLite today, a PostgreSQL server shared by several hosts next). The
//! traits are synchronous; async callers wrap calls in `spawn_blocking`.
//!
//! Every method that changes something appends its audit entries in the same
//! transaction as the change, and a method that fails changes nothing.

use serde::{Deserialize, Serialize};

use crate::audit::{AuditEntry, AuditReport};
use crate::consent::{ConsentId, ConsentRecord, NewConsent, Purpose};
use crate::content::{
    ContentBody, ContentState, ContentVersion, NewPreScreen, PreScreenRecord, ReviewRole, SignOff,
    VersionHash,
};
use crate::event::{Event, EventError, NewEvent, UnixMillis};
use crate::hcp::{HcpId, HcpProfile};
use crate::journey::JourneyTransition;
use crate::{Channel, EngagementStats};

/// What a store call can fail with.
///
/// INVARIANT: messages name HCPs by id and never carry contact details.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No HCP with this id.
    #[error("unknown HCP `{0}`")]
    UnknownHcp(HcpId),
    /// An event in a batch names an HCP that does not exist.
    #[error("event `{event}` refers to unknown HCP `{hcp}`; nothing in the batch was stored")]
    EventForUnknownHcp {
        /// The event id.
        event: String,
        /// The HCP id.
        hcp: HcpId,
    },
    /// An event in a batch breaks the schema of its type.
    #[error("event `{event}` is invalid: {reason}; nothing in the batch was stored")]
    InvalidEvent {
        /// The event id.
        event: String,
        /// The broken rule.
        reason: EventError,
    },
    /// No campaign with this id.
    #[error("unknown campaign `{0}`")]
    UnknownCampaign(String),
    /// A campaign id is taken by a different definition.
    #[error(
        "campaign `{0}` already exists with a different definition; give the new one another id"
    )]
    CampaignExists(String),
    /// The campaign lifecycle does not allow the change.
    #[error("cannot move campaign `{id}` from {from} to {to}")]
    CampaignState {
        /// The campaign.
        id: String,
        /// Its state.
        from: crate::campaign::CampaignState,
        /// The state asked for.
        to: crate::campaign::CampaignState,
    },
    /// No journey with this id.
    #[error("unknown journey `{0}`")]
    UnknownJourney(String),
    /// A journey id is taken by a different definition.
    #[error(
        "journey `{0}` already exists with a different definition; give the new one another id"
    )]
    JourneyExists(String),
    /// The journey lifecycle does not allow the change.
    #[error("cannot move journey `{id}` from {from} to {to}")]
    JourneyState {
        /// The journey.
        id: String,
        /// Its state.
        from: crate::journeys::JourneyState,
        /// The state asked for.
        to: crate::journeys::JourneyState,
    },
    /// Input that is malformed in another way.
    #[error("{0}")]
    InvalidInput(String),
    /// No content version with this hash.
    #[error("unknown content version `{0}`")]
    UnknownVersion(VersionHash),
    /// The body already exists as a version of another item.
    #[error("content version `{version}` already belongs to item `{item}`")]
    VersionOfOtherItem {
        /// The version.
        version: VersionHash,
        /// The item it belongs to.
        item: String,
    },
    /// The version was superseded by a newer one of its item.
    #[error(
        "content version `{version}` is not the current version of item `{item}` (current: `{current}`)"
    )]
    NotCurrentVersion {
        /// The version acted on.
        version: VersionHash,
        /// Its item.
        item: String,
        /// The item's current version.
        current: VersionHash,
    },
    /// The lifecycle does not allow the action in the version's state.
    #[error("cannot {action} content version `{version}`: it is {state}")]
    WrongState {
        /// What was attempted.
        action: &'static str,
        /// The version.
        version: VersionHash,
        /// Its state.
        state: ContentState,
    },
    /// The author tried to review their own version.
    #[error("`{reviewer}` wrote content version `{version}` and cannot review it")]
    AuthorCannotReview {
        /// The version.
        version: VersionHash,
        /// The reviewer (its author).
        reviewer: String,
    },
    /// The role is not among those required for the version's markets.
    #[error("role `{role}` is not required for content version `{version}` (required: {required})")]
    RoleNotRequired {
        /// The version.
        version: VersionHash,
        /// The role given.
        role: ReviewRole,
        /// The roles required.
        required: String,
    },
    /// Someone already signed this role, or this person signed another role.
    #[error("content version `{version}`: {reason}")]
    DuplicateSignOff {
        /// The version.
        version: VersionHash,
        /// What was duplicated.
        reason: String,
    },
    /// The backend failed (I/O, corruption, a bug); the change was rolled back.
    #[error("storage failed while trying to {op}: {message}")]
    Backend {
        /// What was being done.
        op: &'static str,
        /// The backend's message (never holds stored values).
        message: String,
    },
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

/// What an upsert did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpsertReport {
    /// New profiles.
    pub inserted: usize,
    /// Changed profiles.
    pub updated: usize,
    /// Profiles that were already stored as given (no audit entry).
    pub unchanged: usize,
}

/// HCP profiles.
pub trait HcpStore {
    /// Inserts or replaces profiles, in one transaction.
    fn upsert_profiles(&self, actor: &str, profiles: &[HcpProfile]) -> StoreResult<UpsertReport>;
    /// One profile.
    fn profile(&self, id: &HcpId) -> StoreResult<Option<HcpProfile>>;
    /// How many profiles are stored.
    fn hcp_count(&self) -> StoreResult<u64>;
    /// Profiles in id order after `after` (from the first when `None`), at
    /// most `limit`, of one market when `market` is given.
    fn profiles_after(
        &self,
        market: Option<&str>,
        after: Option<&HcpId>,
        limit: usize,
    ) -> StoreResult<Vec<HcpProfile>>;
}

/// A question to the consent ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentQuery {
    /// The HCP.
    pub hcp: HcpId,
    /// The channel.
    pub channel: Channel,
    /// The purpose.
    pub purpose: Purpose,
    /// The market.
    pub market: String,
    /// The product, if the message is about one.
    pub product: Option<String>,
}

/// The consent ledger.
pub trait ConsentStore {
    /// Appends records, in one transaction; returns their ids in order.
    fn record_consents(&self, actor: &str, records: &[NewConsent]) -> StoreResult<Vec<ConsentId>>;
    /// Every record of one HCP, oldest first.
    fn consent_history(&self, hcp: &HcpId) -> StoreResult<Vec<ConsentRecord>>;
    /// The record that decides `query` (see [`crate::consent::resolve`]),
    /// whatever its status.
    fn deciding_consent(&self, query: &ConsentQuery) -> StoreResult<Option<ConsentRecord>>;
    /// The opt-in a dispatch for `query` may rely on, if there is one now.
    fn current_opt_in(&self, query: &ConsentQuery) -> StoreResult<Option<ConsentId>> {
        Ok(self
            .deciding_consent(query)?
            .filter(|r| r.consent.status == crate::consent::ConsentStatus::OptIn)
            .map(|r| r.id))
    }
}

/// What an ingest did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestReport {
    /// Events stored now.
    pub accepted: usize,
    /// Events already stored (same id), ignored.
    pub duplicates: usize,
}

/// Engagement events and the features derived from them.
pub trait EventStore {
    /// Stores a batch in one transaction: all of it (minus events already
    /// stored) or, on any invalid event, none of it.
    fn ingest(&self, actor: &str, batch_id: &str, events: &[NewEvent])
    -> StoreResult<IngestReport>;
    /// One HCP's events, oldest first.
    fn events_of(&self, hcp: &HcpId) -> StoreResult<Vec<Event>>;
    /// How many events are stored.
    fn event_count(&self) -> StoreResult<u64>;
    /// One HCP's derived features as of `now`, read without scanning history.
    fn features(&self, hcp: &HcpId, now: UnixMillis) -> StoreResult<EngagementStats>;
}

/// What a sign-off did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignOffOutcome {
    /// The version's state afterwards.
    pub state: ContentState,
    /// Roles still to sign.
    pub missing: Vec<ReviewRole>,
}

/// The MLR content registry.
pub trait ContentStore {
    /// Stores `body` as the new current version of `item` (created on first
    /// use, with `actor` as author), in draft. Storing the current version's
    /// body again changes nothing.
    fn put_version(&self, actor: &str, item: &str, body: &ContentBody) -> StoreResult<VersionHash>;
    /// One version.
    fn version(&self, hash: &VersionHash) -> StoreResult<Option<ContentVersion>>;
    /// The current version of an item.
    fn current_version(&self, item: &str) -> StoreResult<Option<VersionHash>>;
    /// Draft -> in review, recording the version's pre-screen in the same
    /// transaction as the state change and its audit entry.
    fn submit_for_review(
        &self,
        actor: &str,
        hash: &VersionHash,
        prescreen: &NewPreScreen,
    ) -> StoreResult<()>;
    /// The pre-screen recorded when the version was submitted, if it was.
    fn prescreen(&self, hash: &VersionHash) -> StoreResult<Option<PreScreenRecord>>;
    /// Every version of an item, oldest first (empty for an unknown item).
    fn versions_of(&self, item: &str) -> StoreResult<Vec<ContentVersion>>;
    /// Which roles must sign off, by market.
    fn approval_policy(&self) -> crate::ApprovalPolicy;
    /// Records one role's sign-off; the last required one approves.
    fn sign_off(
        &self,
        reviewer: &str,
        hash: &VersionHash,
        role: ReviewRole,
    ) -> StoreResult<SignOffOutcome>;
    /// In review -> changes requested.
    fn request_changes(
        &self,
        reviewer: &str,
        hash: &VersionHash,
        role: ReviewRole,
        note: &str,
    ) -> StoreResult<()>;
    /// Approved -> withdrawn.
    fn withdraw(&self, actor: &str, hash: &VersionHash, reason: &str) -> StoreResult<()>;
    /// Approved versions whose expiry is at or before `now` -> expired.
    fn expire_due(&self, actor: &str, now: UnixMillis) -> StoreResult<Vec<VersionHash>>;
    /// Sign-offs of one version, in order.
    fn sign_offs(&self, hash: &VersionHash) -> StoreResult<Vec<SignOff>>;
    /// The newest version of an item that was ever approved (now approved,
    /// expired or withdrawn): the one an older approved version is
    /// superseded by.
    fn latest_approved(&self, item: &str) -> StoreResult<Option<VersionHash>> {
        Ok(self
            .versions_of(item)?
            .into_iter()
            .rev()
            .find(|v| {
                matches!(
                    v.state,
                    ContentState::Approved | ContentState::Expired | ContentState::Withdrawn
                )
            })
            .map(|v| v.hash))
    }
    /// Only the state of a version (a cheap read for callers that cache
    /// the immutable body).
    fn version_state(&self, hash: &VersionHash) -> StoreResult<Option<ContentState>> {
        Ok(self.version(hash)?.map(|v| v.state))
    }
}

/// Journey stages per HCP per brand.
pub trait JourneyStore {
    /// The current stage of an HCP for a brand, if it has one.
    fn journey_stage(&self, hcp: &HcpId, brand: &str) -> StoreResult<Option<String>>;
    /// Every move of an HCP on a brand's ladder, oldest first.
    fn journey_history(&self, hcp: &HcpId, brand: &str) -> StoreResult<Vec<JourneyTransition>>;
    /// The brands an HCP has a journey stage for, sorted.
    fn journey_brands(&self, hcp: &HcpId) -> StoreResult<Vec<String>>;
    /// Puts an HCP on a stage by decision (up or down), with the reason.
    fn set_journey_stage(
        &self,
        actor: &str,
        hcp: &HcpId,
        brand: &str,
        stage: &str,
        reason: &str,
    ) -> StoreResult<()>;
}

/// The id of an identity merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MergeId(pub i64);

/// Links between HCP records that are the same person.
///
/// A merge is a link, not a rewrite: every event, feature and consent record
/// stays under the id it came in with, and reads of the survivor (or of the
/// merged id) combine the whole group. Undoing a merge removes the link and
/// splits everything back exactly.
pub trait IdentityStore {
    /// Links `merged` to `survivor`; returns the merge's id.
    fn merge_hcps(
        &self,
        actor: &str,
        survivor: &HcpId,
        merged: &HcpId,
        reason: &str,
    ) -> StoreResult<MergeId>;
    /// Undoes a merge.
    fn unmerge_hcps(&self, actor: &str, merge: MergeId, reason: &str) -> StoreResult<()>;
    /// The id that represents `hcp` now: its survivor if merged, else itself.
    fn survivor_of(&self, hcp: &HcpId) -> StoreResult<HcpId>;
}

/// The audit trail.
pub trait AuditStore {
    /// Entries with `seq >= from`, at most `limit`, in order.
    fn audit_entries(&self, from: i64, limit: usize) -> StoreResult<Vec<AuditEntry>>;
    /// Walks the whole chain; names the first broken entry.
    fn verify_audit(&self) -> StoreResult<AuditReport>;
}

/// Everything a host needs from storage.
pub trait Store:
    HcpStore
    + ConsentStore
    + EventStore
    + JourneyStore
    + IdentityStore
    + ContentStore
    + AuditStore
    + crate::ledger::LedgerStore
    + crate::ledger::GateFactsStore
    + crate::campaign::CampaignStore
    + crate::campaign::MemberFactsStore
    + crate::suggestion::SuggestionStore
    + crate::journeys::JourneyRuleStore
    + Send
    + Sync
{
}

impl<T> Store for T where
    T: HcpStore
        + ConsentStore
        + EventStore
        + JourneyStore
        + IdentityStore
        + ContentStore
        + AuditStore
        + crate::ledger::LedgerStore
        + crate::ledger::GateFactsStore
        + crate::campaign::CampaignStore
        + crate::campaign::MemberFactsStore
        + crate::suggestion::SuggestionStore
        + crate::journeys::JourneyRuleStore
        + Send
        + Sync
{
}
