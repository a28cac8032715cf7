//! The MLR content registry's types: content items, their immutable versions,
//! the review lifecycle and the sign-off rules.
//!
//! A version's id is the sha256 of the canonical JSON of its [`ContentBody`]
//! (every text part, per-channel variant, declared personalization field and
//! all metadata), so the same body always has the same id and any edit makes
//! a new version.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Channel;
use crate::canonical::{canonical_json_of, sha256_hex};
use crate::event::UnixMillis;

/// The id of a content version: lowercase hex sha256 of its canonical form.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct VersionHash(pub String);

impl fmt::Display for VersionHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who a piece of content is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Audience {
    /// Healthcare professionals.
    Hcp,
    /// Patients.
    Patient,
}

/// What a version says about itself; part of the hashed form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentMetadata {
    /// The product it promotes or informs about.
    pub product: String,
    /// The indication(s) it speaks to.
    pub indications: BTreeSet<String>,
    /// Markets it may be used in.
    pub markets: BTreeSet<String>,
    /// Channels it may be sent through.
    pub channels: BTreeSet<Channel>,
    /// Who it is for.
    pub audience: Audience,
    /// The claims it makes: claim id -> citation.
    pub claims: BTreeMap<String, String>,
    /// Required disclaimers.
    pub disclaimers: Vec<String>,
    /// Important safety information block, if required.
    pub isi: Option<String>,
    /// When approval lapses.
    pub expires_at: Option<UnixMillis>,
}

/// The full content of a version: what is hashed, reviewed and signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentBody {
    /// Text parts by name (`subject`, `html`, `text`, ...).
    pub parts: BTreeMap<String, String>,
    /// Per-channel variants: channel -> part name -> text.
    #[serde(default)]
    pub variants: BTreeMap<Channel, BTreeMap<String, String>>,
    /// The personalization fields the text may use (e.g. `name`).
    #[serde(default)]
    pub personalization_fields: BTreeSet<String>,
    /// Metadata.
    pub metadata: ContentMetadata,
}

impl ContentBody {
    /// The version id of this body.
    ///
    /// # Errors
    ///
    /// Fails only if the body cannot be represented as JSON, which the types
    /// above rule out.
    pub fn version_hash(&self) -> Result<VersionHash, serde_json::Error> {
        Ok(VersionHash(sha256_hex(canonical_json_of(self)?.as_bytes())))
    }
}

/// Where a version stands in review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContentState {
    /// Being written.
    Draft,
    /// Submitted to MLR review.
    InReview,
    /// Every required role signed off.
    Approved,
    /// A reviewer asked for changes: edit it into a new version.
    ChangesRequested,
    /// Approval lapsed on its expiry date.
    Expired,
    /// Taken out of use.
    Withdrawn,
}

impl ContentState {
    /// Every state, in a stable order.
    pub const ALL: [ContentState; 6] = [
        ContentState::Draft,
        ContentState::InReview,
        ContentState::Approved,
        ContentState::ChangesRequested,
        ContentState::Expired,
        ContentState::Withdrawn,
    ];

    /// The stable, kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ContentState::Draft => "draft",
            ContentState::InReview => "in-review",
            ContentState::Approved => "approved",
            ContentState::ChangesRequested => "changes-requested",
            ContentState::Expired => "expired",
            ContentState::Withdrawn => "withdrawn",
        }
    }

    /// Whether the lifecycle allows going from `self` to `to`.
    pub fn can_become(self, to: ContentState) -> bool {
        use ContentState::*;
        matches!(
            (self, to),
            (Draft, InReview)
                | (InReview, Approved)
                | (InReview, ChangesRequested)
                | (Approved, Expired)
                | (Approved, Withdrawn)
        )
    }
}

impl fmt::Display for ContentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ContentState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ContentState::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown content state `{s}`"))
    }
}

/// A reviewing role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReviewRole {
    /// Medical review.
    Medical,
    /// Legal review.
    Legal,
    /// Regulatory review.
    Regulatory,
}

impl ReviewRole {
    /// Every role, in a stable order.
    pub const ALL: [ReviewRole; 3] = [
        ReviewRole::Medical,
        ReviewRole::Legal,
        ReviewRole::Regulatory,
    ];

    /// The stable, kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewRole::Medical => "medical",
            ReviewRole::Legal => "legal",
            ReviewRole::Regulatory => "regulatory",
        }
    }
}

impl fmt::Display for ReviewRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ReviewRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ReviewRole::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown review role `{s}`"))
    }
}

/// Which roles must sign off, by market.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalPolicy {
    /// Roles for markets not listed in `per_market`.
    pub default_roles: BTreeSet<ReviewRole>,
    /// Roles per market code.
    #[serde(default)]
    pub per_market: BTreeMap<String, BTreeSet<ReviewRole>>,
}

impl Default for ApprovalPolicy {
    /// Medical, legal and regulatory everywhere.
    fn default() -> Self {
        ApprovalPolicy {
            default_roles: ReviewRole::ALL.into_iter().collect(),
            per_market: BTreeMap::new(),
        }
    }
}

impl ApprovalPolicy {
    /// The roles that must sign off a version meant for `markets`: the union
    /// over those markets (the strictest market sets the bar).
    pub fn required_roles<'a>(
        &self,
        markets: impl IntoIterator<Item = &'a String>,
    ) -> BTreeSet<ReviewRole> {
        let mut roles = BTreeSet::new();
        let mut any = false;
        for m in markets {
            any = true;
            roles.extend(self.per_market.get(m).unwrap_or(&self.default_roles));
        }
        if !any {
            roles.extend(&self.default_roles);
        }
        roles
    }
}

/// A stored version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentVersion {
    /// Its id.
    pub hash: VersionHash,
    /// The content item it belongs to.
    pub item: String,
    /// Who wrote it.
    pub author: String,
    /// When it was created.
    pub created_at: UnixMillis,
    /// Where it stands.
    pub state: ContentState,
    /// Its content.
    pub body: ContentBody,
}

/// One reviewer's sign-off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignOff {
    /// The version signed (the hash the reviewer saw).
    pub version: VersionHash,
    /// The role signed for.
    pub role: ReviewRole,
    /// Who signed.
    pub reviewer: String,
    /// When.
    pub signed_at: UnixMillis,
}

/// The pre-screen of a version, recorded with its submission for review.
///
/// The report is the compliance gate's screening of the version on each of
/// its markets and channels (its shape belongs to the policy crate); the
/// store keeps it as canonical JSON and vouches for it in the audit entry of
/// the submission with its sha256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPreScreen {
    /// sha256 of the policy set the version was screened with.
    pub policy_version: String,
    /// The report.
    pub report: serde_json::Value,
}

/// A stored pre-screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreScreenRecord {
    /// The version screened.
    pub version: VersionHash,
    /// sha256 of the policy set it was screened with.
    pub policy_version: String,
    /// Who submitted the version.
    pub submitted_by: String,
    /// When it was submitted (and screened).
    pub submitted_at: UnixMillis,
    /// sha256 of the report's canonical JSON, as in the audit entry.
    pub sha256: String,
    /// The report.
    pub report: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn body() -> ContentBody {
        ContentBody {
            parts: BTreeMap::from([("subject".into(), "New data".into())]),
            variants: BTreeMap::new(),
            personalization_fields: BTreeSet::from(["name".into()]),
            metadata: ContentMetadata {
                product: "lipitex".into(),
                indications: BTreeSet::from(["hyperlipidemia".into()]),
                markets: BTreeSet::from(["US".into()]),
                channels: BTreeSet::from([Channel::Email]),
                audience: Audience::Hcp,
                claims: BTreeMap::from([("c1".into(), "NEJM 2025;1:1".into())]),
                disclaimers: vec!["Rx only".into()],
                isi: Some("ISI".into()),
                expires_at: None,
            },
        }
    }

    #[test]
    fn the_version_hash_is_stable_and_changes_with_any_field() {
        let a = body().version_hash().unwrap();
        assert_eq!(a, body().version_hash().unwrap());
        assert_eq!(a.0.len(), 64);
        let mut edited = body();
        edited.metadata.claims.insert("c2".into(), "Lancet".into());
        assert_ne!(a, edited.version_hash().unwrap());
    }

    #[test]
    fn the_lifecycle_allows_only_its_transitions() {
        use ContentState::*;
        assert!(Draft.can_become(InReview));
        assert!(InReview.can_become(Approved));
        assert!(Approved.can_become(Withdrawn));
        assert!(!Draft.can_become(Approved));
        assert!(!Withdrawn.can_become(Approved));
        assert!(!Expired.can_become(Approved));
    }

    #[test]
    fn required_roles_are_the_union_over_markets() {
        let policy = ApprovalPolicy {
            default_roles: BTreeSet::from([ReviewRole::Medical, ReviewRole::Legal]),
            per_market: BTreeMap::from([("CN".into(), BTreeSet::from([ReviewRole::Regulatory]))]),
        };
        let markets = ["US".to_string(), "CN".to_string()];
        assert_eq!(policy.required_roles(&markets).len(), 3);
        assert_eq!(
            policy.required_roles(&["CN".to_string()]),
            BTreeSet::from([ReviewRole::Regulatory])
        );
    }
}
