//! The view of one HCP that the host hands to a plugin.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Channel, HcpField};

/// What a plugin may know about one HCP. Every field but `id` is optional:
/// the host fills in only what the plugin's manifest grants (see
/// [`HcpSnapshot::scoped_to`]).
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HcpSnapshot {
    /// The HCP's stable id (an NPI or a national physician id).
    pub id: String,
    /// Full name.
    pub name: Option<String>,
    /// Specialty taxonomy code, e.g. `207RC0000X`.
    pub specialty_code: Option<String>,
    /// Specialty label, e.g. `Cardiovascular Disease`.
    pub specialty: Option<String>,
    /// Institution.
    pub institution: Option<String>,
    /// Market or region code.
    pub market: Option<String>,
    /// IANA time zone.
    pub time_zone: Option<String>,
    /// Preferred language (BCP 47).
    pub language: Option<String>,
    /// Tags and interests.
    pub tags: Option<Vec<String>>,
    /// Journey stage for the brand in question.
    pub journey_stage: Option<String>,
    /// Aggregate engagement statistics.
    pub engagement: Option<EngagementStats>,
    /// Ids of the assigned field representatives.
    pub assigned_reps: Option<Vec<String>>,
    /// E-mail address.
    pub email: Option<String>,
    /// Mobile phone number.
    pub phone: Option<String>,
    /// WeChat open id.
    pub wechat_id: Option<String>,
}

/// Engagement of one HCP, summed up so that a plugin never scans history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EngagementStats {
    /// Touches over all channels (rep visits included) in the last 7 days.
    pub touches_7d: u32,
    /// Touches over all channels in the last 30 days.
    pub touches_30d: u32,
    /// Per-channel figures, one entry per channel with any history.
    pub channels: Vec<ChannelStats>,
    /// Content version ids the HCP has already seen.
    pub content_seen: Vec<String>,
}

/// Engagement of one HCP on one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelStats {
    /// The channel.
    pub channel: Channel,
    /// Last touch, in Unix seconds.
    pub last_touch_at: Option<i64>,
    /// Touches in the last 7 days.
    pub touches_7d: u32,
    /// Touches in the last 30 days.
    pub touches_30d: u32,
    /// Sends (or visits) counted for responsiveness.
    pub sends: u32,
    /// Opens (e-mail) or equivalent.
    pub opens: u32,
    /// Clicks or equivalent.
    pub clicks: u32,
    /// Webinar or meeting attendance.
    pub attended: u32,
}

impl HcpSnapshot {
    /// A copy holding only `id` and the `granted` fields.
    ///
    /// INVARIANT: plugins see only the fields their manifest declares; every
    /// snapshot crosses into a plugin through this function.
    pub fn scoped_to(&self, granted: &BTreeSet<HcpField>) -> HcpSnapshot {
        let keep = |field: HcpField| granted.contains(&field);
        let HcpSnapshot {
            id,
            name,
            specialty_code,
            specialty,
            institution,
            market,
            time_zone,
            language,
            tags,
            journey_stage,
            engagement,
            assigned_reps,
            email,
            phone,
            wechat_id,
        } = self;
        HcpSnapshot {
            id: id.clone(),
            name: name.clone().filter(|_| keep(HcpField::Name)),
            specialty_code: specialty_code.clone().filter(|_| keep(HcpField::Specialty)),
            specialty: specialty.clone().filter(|_| keep(HcpField::Specialty)),
            institution: institution.clone().filter(|_| keep(HcpField::Institution)),
            market: market.clone().filter(|_| keep(HcpField::Market)),
            time_zone: time_zone.clone().filter(|_| keep(HcpField::TimeZone)),
            language: language.clone().filter(|_| keep(HcpField::Language)),
            tags: tags.clone().filter(|_| keep(HcpField::Tags)),
            journey_stage: journey_stage
                .clone()
                .filter(|_| keep(HcpField::JourneyStage)),
            engagement: engagement.clone().filter(|_| keep(HcpField::Engagement)),
            assigned_reps: assigned_reps
                .clone()
                .filter(|_| keep(HcpField::AssignedReps)),
            email: email.clone().filter(|_| keep(HcpField::Email)),
            phone: phone.clone().filter(|_| keep(HcpField::Phone)),
            wechat_id: wechat_id.clone().filter(|_| keep(HcpField::WechatId)),
        }
    }
}

/// Contact details are shown as `<redacted>` so that a snapshot can be
/// logged with `{:?}` without leaking them.
impl fmt::Debug for HcpSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("HcpSnapshot")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("specialty_code", &self.specialty_code)
            .field("specialty", &self.specialty)
            .field("institution", &self.institution)
            .field("market", &self.market)
            .field("time_zone", &self.time_zone)
            .field("language", &self.language)
            .field("tags", &self.tags)
            .field("journey_stage", &self.journey_stage)
            .field("engagement", &self.engagement)
            .field("assigned_reps", &self.assigned_reps)
            .field("email", &hidden(&self.email))
            .field("phone", &hidden(&self.phone))
            .field("wechat_id", &hidden(&self.wechat_id))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> HcpSnapshot {
        HcpSnapshot {
            id: "1234567890".into(),
            name: Some("Dr. Jane Doe".into()),
            specialty_code: Some("207RC0000X".into()),
            specialty: Some("Cardiovascular Disease".into()),
            institution: Some("General Hospital".into()),
            market: Some("US".into()),
            time_zone: Some("America/New_York".into()),
            language: Some("en-US".into()),
            tags: Some(vec!["lipids".into()]),
            journey_stage: Some("interest".into()),
            engagement: Some(EngagementStats::default()),
            assigned_reps: Some(vec!["rep-7".into()]),
            email: Some("jane@clinic.example".into()),
            phone: Some("+15550102030".into()),
            wechat_id: Some("wx-abc".into()),
        }
    }

    #[test]
    fn a_scoped_snapshot_keeps_only_the_granted_fields_and_the_id() {
        let granted = BTreeSet::from([HcpField::Specialty, HcpField::JourneyStage]);
        let scoped = full().scoped_to(&granted);
        assert_eq!(
            scoped,
            HcpSnapshot {
                id: "1234567890".into(),
                specialty_code: Some("207RC0000X".into()),
                specialty: Some("Cardiovascular Disease".into()),
                journey_stage: Some("interest".into()),
                ..HcpSnapshot::default()
            }
        );
    }

    #[test]
    fn every_field_is_kept_when_every_field_is_granted() {
        let all = BTreeSet::from(HcpField::ALL);
        assert_eq!(full().scoped_to(&all), full());
    }

    #[test]
    fn debug_output_hides_contact_details() {
        let shown = format!("{:?}", full());
        assert!(!shown.contains("jane@clinic.example"));
        assert!(!shown.contains("+15550102030"));
        assert!(!shown.contains("wx-abc"));
        assert!(shown.contains("Dr. Jane Doe"));
    }
}
