//! What operations return: the JSON shapes of the HTTP API and of the
//! command line's `--format json` (docs/api.md). Fields may be added in a
//! later version; none will be renamed or removed.
//!
//! INVARIANT: no view carries an HCP's contact details: a profile shows
//! which contact details exist (`contact_present`), never their values.

use omnigate_core::audit::{AuditEntry, AuditReport};
use omnigate_core::consent::{ConsentRecord, ConsentSource, ConsentStatus, Purpose};
use omnigate_core::content::{
    ContentBody, ContentState, PreScreenRecord, ReviewRole, SignOff, VersionHash,
};
use omnigate_core::event::{Event, UnixMillis};
use omnigate_core::hcp::{LicenceStatus, Specialty};
use omnigate_core::journey::JourneyTransition;
use omnigate_core::{Channel, EngagementStats, HcpId, HcpProfile};
use omnigate_policy::content::PreScreen;
use serde::Serialize;

/// An HCP profile without contact details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProfileView {
    /// Stable id.
    pub id: HcpId,
    /// Full name.
    pub name: String,
    /// Specialty.
    pub specialty: Option<Specialty>,
    /// Institution.
    pub institution: Option<String>,
    /// Market.
    pub market: String,
    /// IANA time zone.
    pub time_zone: Option<String>,
    /// Language (BCP 47).
    pub language: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Licence status.
    pub licence: LicenceStatus,
    /// Assigned representatives.
    pub assigned_reps: Vec<String>,
    /// Which contact details are on file (`email`, `phone`, `wechat-id`),
    /// never their values.
    pub contact_present: Vec<&'static str>,
}

impl From<HcpProfile> for ProfileView {
    fn from(p: HcpProfile) -> Self {
        ProfileView {
            contact_present: p.contact.present(),
            id: p.id,
            name: p.name,
            specialty: p.specialty,
            institution: p.institution,
            market: p.market,
            time_zone: p.time_zone,
            language: p.language,
            tags: p.tags,
            licence: p.licence,
            assigned_reps: p.assigned_reps,
        }
    }
}

/// One consent record, flat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsentView {
    /// Record id (what a dispatch cites).
    pub id: i64,
    /// The HCP id it was recorded under (a merged record keeps its own id).
    pub hcp: HcpId,
    /// Channel.
    pub channel: Channel,
    /// Purpose.
    pub purpose: Purpose,
    /// Market.
    pub market: String,
    /// Product, or none for every product.
    pub product: Option<String>,
    /// What the HCP said.
    pub status: ConsentStatus,
    /// Where it came from.
    pub source: ConsentSource,
    /// When the HCP said it (ms).
    pub recorded_at: UnixMillis,
    /// Who recorded it.
    pub recorded_by: String,
}

impl From<ConsentRecord> for ConsentView {
    fn from(r: ConsentRecord) -> Self {
        let c = r.consent;
        ConsentView {
            id: r.id.0,
            hcp: c.scope.hcp,
            channel: c.scope.channel,
            purpose: c.scope.purpose,
            market: c.scope.market,
            product: c.scope.product,
            status: c.status,
            source: c.source,
            recorded_at: c.recorded_at,
            recorded_by: c.recorded_by,
        }
    }
}

/// An HCP's consent: every record and the current state per scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsentOverview {
    /// Every record of the HCP's merge group, oldest first.
    pub records: Vec<ConsentView>,
    /// The latest record at each exact scope (channel, purpose, market,
    /// product).
    pub current: Vec<ConsentView>,
}

/// The journey of an HCP on one brand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JourneyView {
    /// The brand.
    pub brand: String,
    /// The current stage.
    pub stage: Option<String>,
    /// Every move, oldest first.
    pub history: Vec<JourneyTransition>,
}

/// Events shown with an HCP.
pub const TIMELINE_IN_VIEW: usize = 50;

/// Everything about one HCP.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HcpView {
    /// The profile, without contact details.
    pub profile: ProfileView,
    /// The record this one is merged into, if it is; reads combine the group.
    pub merged_into: Option<HcpId>,
    /// The current consent state: the latest record at each exact scope
    /// (channel, purpose, market, product) over the HCP's merge group.
    pub consent: Vec<ConsentView>,
    /// Derived engagement features as of the request.
    pub features: EngagementStats,
    /// Journey stage and history per brand.
    pub journeys: Vec<JourneyView>,
    /// The latest events, oldest first (at most [`TIMELINE_IN_VIEW`]; the
    /// whole timeline is a separate call).
    pub timeline: Vec<Event>,
    /// How many events the HCP has.
    pub events_total: usize,
}

/// What an upsert of profiles did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ImportOutcome {
    /// New profiles.
    pub inserted: usize,
    /// Changed profiles.
    pub updated: usize,
    /// Profiles already stored as given.
    pub unchanged: usize,
}

/// What recording consent did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordOutcome {
    /// How many records were appended.
    pub recorded: usize,
    /// Their ids, in input order.
    pub ids: Vec<i64>,
}

/// The answer to a consent question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CurrentConsent {
    /// The record that decides, whatever its status.
    pub deciding: Option<ConsentView>,
    /// Whether a dispatch may rely on it (only an opt-in allows).
    pub allows_dispatch: bool,
}

/// What ingesting a batch did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IngestOutcome {
    /// The batch id.
    pub batch_id: String,
    /// Events stored now.
    pub accepted: usize,
    /// Events already stored (same id), ignored.
    pub duplicates: usize,
    /// The whole batch was stored before: nothing was added.
    pub replay: bool,
}

/// What a merge did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MergeOutcome {
    /// The merge's id (to undo it).
    pub merge_id: i64,
}

/// What storing a version did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PutOutcome {
    /// The version's id.
    pub hash: VersionHash,
    /// Its item.
    pub item: String,
    /// Its state.
    pub state: ContentState,
    /// Whether it is new (false: the same body was stored before).
    pub created: bool,
}

/// The headline of a pre-screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PreScreenSummary {
    /// `allow` or `block`.
    pub verdict: String,
    /// Blocking findings.
    pub blocking: u64,
    /// Warnings.
    pub warnings: u64,
    /// Rules that blocked.
    pub blocking_rules: Vec<String>,
    /// The policy version screened with.
    pub policy_version: String,
}

impl PreScreenSummary {
    /// The summary of a stored pre-screen report.
    pub fn of(record: &PreScreenRecord) -> Self {
        let r = &record.report;
        PreScreenSummary {
            verdict: r["verdict"].as_str().unwrap_or("block").to_owned(),
            blocking: r["blocking"].as_u64().unwrap_or_default(),
            warnings: r["warnings"].as_u64().unwrap_or_default(),
            blocking_rules: r["blocking_rules"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            policy_version: record.policy_version.clone(),
        }
    }
}

/// One version with its review state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionView {
    /// Its id.
    pub hash: VersionHash,
    /// Its item.
    pub item: String,
    /// Who wrote it.
    pub author: String,
    /// When (ms).
    pub created_at: UnixMillis,
    /// Where it stands.
    pub state: ContentState,
    /// Whether it is its item's current version.
    pub current: bool,
    /// The headline of the pre-screen, shown first (absent before
    /// submission).
    pub prescreen_summary: Option<PreScreenSummary>,
    /// Roles that must sign off.
    pub required_roles: Vec<ReviewRole>,
    /// Sign-offs so far: who, when, role, the hash signed.
    pub sign_offs: Vec<SignOff>,
    /// Required roles not signed yet.
    pub missing_roles: Vec<ReviewRole>,
    /// The full pre-screen recorded at submission.
    pub prescreen: Option<PreScreenRecord>,
    /// The content.
    pub body: ContentBody,
}

/// One version in a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionSummary {
    /// Its id.
    pub hash: VersionHash,
    /// Who wrote it.
    pub author: String,
    /// When (ms).
    pub created_at: UnixMillis,
    /// Where it stands.
    pub state: ContentState,
    /// Whether it is the item's current version.
    pub current: bool,
}

/// An item's versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemVersions {
    /// The item.
    pub item: String,
    /// Its current version.
    pub current: VersionHash,
    /// Every version, oldest first.
    pub versions: Vec<VersionSummary>,
}

/// What a submission did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubmitOutcome {
    /// The version.
    pub hash: VersionHash,
    /// Its state now (`in-review`).
    pub state: ContentState,
    /// The pre-screen recorded with it. Blocking findings do not prevent
    /// review: the reviewers decide.
    pub prescreen: PreScreen,
}

/// What a review action did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReviewOutcome {
    /// The version.
    pub hash: VersionHash,
    /// Its state now.
    pub state: ContentState,
    /// Required roles not signed yet.
    pub missing_roles: Vec<ReviewRole>,
}

/// What expiring did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpireOutcome {
    /// The versions that expired now.
    pub expired: Vec<VersionHash>,
}

/// A page of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditPage {
    /// Entries in order.
    pub entries: Vec<AuditEntry>,
    /// The `from` of the next page, if there may be one.
    pub next: Option<i64>,
}

/// The outcome of `audit verify`.
pub type AuditVerify = AuditReport;
