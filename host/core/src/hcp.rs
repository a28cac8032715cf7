//! The HCP profile: who the HCP is, where they work, how to reach them.
//!
//! INVARIANT: contact details (e-mail, phone, WeChat id) never appear in
//! `Debug` output, logs, audit payloads or error messages; errors name the
//! HCP id only. [`ContactDetails`] has a redacting `Debug`, and
//! [`HcpProfile::audit_view`] is the form that goes into the audit trail.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{EngagementStats, HcpSnapshot};

/// A stable HCP id: an NPI, a national physician id or a CRM id.
///
/// 1 to 64 characters out of ASCII letters, digits, `.`, `_`, `:` and `-`, so
/// that it can be shown in errors and logs as it is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HcpId(String);

/// An HCP id that breaks the rules of [`HcpId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid HCP id `{0}` (expected 1 to 64 of A-Z a-z 0-9 . _ : -)")]
pub struct InvalidHcpId(pub String);

impl HcpId {
    /// Checks and wraps `id`.
    ///
    /// # Errors
    ///
    /// [`InvalidHcpId`] if `id` is empty, longer than 64 characters or holds
    /// another character than those allowed.
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidHcpId> {
        let id = id.into();
        let ok = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
        if ok {
            Ok(HcpId(id))
        } else {
            // Shown in the error, so keep only what is harmless: an id that
            // fails the check could be a pasted e-mail address.
            Err(InvalidHcpId(crate::redact::redact(&id).into_owned()))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for HcpId {
    type Error = InvalidHcpId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        HcpId::new(value)
    }
}

impl From<HcpId> for String {
    fn from(value: HcpId) -> Self {
        value.0
    }
}

impl fmt::Display for HcpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for HcpId {
    type Err = InvalidHcpId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HcpId::new(s)
    }
}

/// A specialty: a taxonomy code and its label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Specialty {
    /// Taxonomy code, e.g. `207RC0000X`.
    pub code: String,
    /// Label, e.g. `Cardiovascular Disease`.
    pub label: String,
}

/// Whether the HCP may currently practise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LicenceStatus {
    /// Licensed and in good standing.
    Active,
    /// Licence lapsed or retired.
    Inactive,
    /// Licence suspended or revoked.
    Suspended,
    /// Not verified yet.
    #[default]
    Unknown,
}

/// How to reach the HCP. Never logged: `Debug` shows only which details are
/// present.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactDetails {
    /// E-mail address.
    pub email: Option<String>,
    /// Mobile phone number.
    pub phone: Option<String>,
    /// WeChat open id.
    pub wechat_id: Option<String>,
}

impl ContactDetails {
    /// Which details are present, by field name, for logs and audit entries.
    pub fn present(&self) -> Vec<&'static str> {
        [
            ("email", &self.email),
            ("phone", &self.phone),
            ("wechat-id", &self.wechat_id),
        ]
        .into_iter()
        .filter_map(|(name, v)| v.as_ref().map(|_| name))
        .collect()
    }
}

impl fmt::Debug for ContactDetails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("ContactDetails")
            .field("email", &hidden(&self.email))
            .field("phone", &hidden(&self.phone))
            .field("wechat_id", &hidden(&self.wechat_id))
            .finish()
    }
}

/// Everything omnigate keeps about one HCP apart from consent and history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HcpProfile {
    /// Stable id.
    pub id: HcpId,
    /// Full name.
    pub name: String,
    /// Specialty, if known.
    pub specialty: Option<Specialty>,
    /// Institution (hospital, practice).
    pub institution: Option<String>,
    /// Market or region code, e.g. `US`, `CN`.
    pub market: String,
    /// IANA time zone, e.g. `America/New_York`.
    pub time_zone: Option<String>,
    /// Preferred language (BCP 47), e.g. `en-US`.
    pub language: Option<String>,
    /// Tags and interests.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Licence status.
    #[serde(default)]
    pub licence: LicenceStatus,
    /// Ids of the assigned field representatives.
    #[serde(default)]
    pub assigned_reps: Vec<String>,
    /// Contact details (never logged).
    #[serde(default)]
    pub contact: ContactDetails,
}

impl HcpProfile {
    /// A minimal profile: id, name and market; everything else empty.
    pub fn new(id: HcpId, name: impl Into<String>, market: impl Into<String>) -> Self {
        HcpProfile {
            id,
            name: name.into(),
            specialty: None,
            institution: None,
            market: market.into(),
            time_zone: None,
            language: None,
            tags: Vec::new(),
            licence: LicenceStatus::Unknown,
            assigned_reps: Vec::new(),
            contact: ContactDetails::default(),
        }
    }

    /// The profile as it goes into an audit entry: every field but the
    /// contact details, which are replaced by the list of those present.
    pub fn audit_view(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "specialty": self.specialty,
            "institution": self.institution,
            "market": self.market,
            "time_zone": self.time_zone,
            "language": self.language,
            "tags": self.tags,
            "licence": self.licence,
            "assigned_reps": self.assigned_reps,
            "contact_present": self.contact.present(),
        })
    }

    /// The full plugin view of this HCP, before it is scoped to a plugin's
    /// grant with [`HcpSnapshot::scoped_to`].
    pub fn snapshot(
        &self,
        engagement: Option<EngagementStats>,
        journey_stage: Option<String>,
    ) -> HcpSnapshot {
        HcpSnapshot {
            id: self.id.to_string(),
            name: Some(self.name.clone()),
            specialty_code: self.specialty.as_ref().map(|s| s.code.clone()),
            specialty: self.specialty.as_ref().map(|s| s.label.clone()),
            institution: self.institution.clone(),
            market: Some(self.market.clone()),
            time_zone: self.time_zone.clone(),
            language: self.language.clone(),
            tags: Some(self.tags.clone()),
            journey_stage,
            engagement,
            assigned_reps: Some(self.assigned_reps.clone()),
            email: self.contact.email.clone(),
            phone: self.contact.phone.clone(),
            wechat_id: self.contact.wechat_id.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jane() -> HcpProfile {
        let mut p = HcpProfile::new(HcpId::new("1234567890").unwrap(), "Dr. Jane Doe", "US");
        p.contact = ContactDetails {
            email: Some("jane@clinic.example".into()),
            phone: Some("+15550102030".into()),
            wechat_id: None,
        };
        p
    }

    #[test]
    fn debug_output_of_a_profile_hides_contact_details() {
        let shown = format!("{:?}", jane());
        assert!(!shown.contains("jane@clinic.example"), "{shown}");
        assert!(!shown.contains("+15550102030"), "{shown}");
        assert!(shown.contains("Dr. Jane Doe"));
    }

    #[test]
    fn the_audit_view_lists_which_contact_details_exist_but_not_their_values() {
        let view = jane().audit_view().to_string();
        assert!(!view.contains("jane@clinic.example"));
        assert!(
            view.contains(r#""contact_present":["email","phone"]"#),
            "{view}"
        );
    }

    #[test]
    fn an_hcp_id_rejects_odd_characters_without_echoing_an_address() {
        assert!(HcpId::new("NPI:1234567890").is_ok());
        let err = HcpId::new("jane@clinic.example").unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid HCP id `<email>` (expected 1 to 64 of A-Z a-z 0-9 . _ : -)"
        );
        assert!(HcpId::new("").is_err());
        assert!("x".repeat(65).parse::<HcpId>().is_err());
    }

    #[test]
    fn a_snapshot_built_from_a_profile_carries_its_fields() {
        let snap = jane().snapshot(None, Some("interest".into()));
        assert_eq!(snap.id, "1234567890");
        assert_eq!(snap.market.as_deref(), Some("US"));
        assert_eq!(snap.journey_stage.as_deref(), Some("interest"));
        assert_eq!(snap.email.as_deref(), Some("jane@clinic.example"));
    }
}
