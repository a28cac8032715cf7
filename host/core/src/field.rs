//! The HCP fields a plugin can be granted in its manifest.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One field of an HCP that a plugin manifest may list under
/// `grants.hcp_fields`. A plugin sees only the fields it was granted; the HCP
/// id is always present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HcpField {
    /// Full name, for salutations.
    Name,
    /// Specialty taxonomy code and label.
    Specialty,
    /// Institution (hospital, practice).
    Institution,
    /// Market or region code, e.g. `US`, `CN`.
    Market,
    /// IANA time zone, e.g. `America/New_York`.
    TimeZone,
    /// Preferred language (BCP 47), e.g. `en-US`.
    Language,
    /// Tags and interests.
    Tags,
    /// Journey stage for the brand in question.
    JourneyStage,
    /// Aggregate engagement statistics per channel.
    Engagement,
    /// Ids of the assigned field representatives.
    AssignedReps,
    /// E-mail address (contact detail).
    Email,
    /// Mobile phone number (contact detail).
    Phone,
    /// WeChat open id (contact detail).
    WechatId,
}

impl HcpField {
    /// Every field, in a stable order.
    pub const ALL: [HcpField; 13] = [
        HcpField::Name,
        HcpField::Specialty,
        HcpField::Institution,
        HcpField::Market,
        HcpField::TimeZone,
        HcpField::Language,
        HcpField::Tags,
        HcpField::JourneyStage,
        HcpField::Engagement,
        HcpField::AssignedReps,
        HcpField::Email,
        HcpField::Phone,
        HcpField::WechatId,
    ];

    /// The stable, kebab-case name used in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            HcpField::Name => "name",
            HcpField::Specialty => "specialty",
            HcpField::Institution => "institution",
            HcpField::Market => "market",
            HcpField::TimeZone => "time-zone",
            HcpField::Language => "language",
            HcpField::Tags => "tags",
            HcpField::JourneyStage => "journey-stage",
            HcpField::Engagement => "engagement",
            HcpField::AssignedReps => "assigned-reps",
            HcpField::Email => "email",
            HcpField::Phone => "phone",
            HcpField::WechatId => "wechat-id",
        }
    }

    /// Contact details never appear in logs, decision records or errors.
    pub fn is_contact_detail(self) -> bool {
        matches!(self, HcpField::Email | HcpField::Phone | HcpField::WechatId)
    }
}

impl fmt::Display for HcpField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A field name that no plugin can be granted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown HCP field `{0}` (expected one of: {list})", list = HcpField::ALL.map(HcpField::as_str).join(", "))]
pub struct UnknownField(pub String);

impl FromStr for HcpField {
    type Err = UnknownField;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HcpField::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| UnknownField(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_round_trips_through_its_name() {
        for f in HcpField::ALL {
            assert_eq!(f.as_str().parse::<HcpField>(), Ok(f));
        }
    }

    #[test]
    fn only_email_phone_and_wechat_are_contact_details() {
        let contact: Vec<_> = HcpField::ALL
            .into_iter()
            .filter(|f| f.is_contact_detail())
            .collect();
        assert_eq!(
            contact,
            [HcpField::Email, HcpField::Phone, HcpField::WechatId]
        );
    }
}
