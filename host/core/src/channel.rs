//! The channels through which omnigate reaches an HCP.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A way of reaching an HCP. Field channels (rep visit, remote call, phone
/// call) and digital channels are one list: they share consent, caps and
/// journeys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Channel {
    /// Approved e-mail.
    Email,
    /// Text message.
    Sms,
    /// WeChat (official account or Work WeChat).
    Wechat,
    /// Face-to-face visit by a field representative.
    RepVisit,
    /// Remote detailing call (video).
    RemoteCall,
    /// Phone call.
    PhoneCall,
    /// Webinar invitation or attendance.
    Webinar,
    /// Congress booth or symposium.
    Congress,
    /// Hospital or department meeting.
    HospitalMeeting,
    /// Web (HCP portal, banner).
    Web,
}

impl Channel {
    /// Every channel, in a stable order.
    pub const ALL: [Channel; 10] = [
        Channel::Email,
        Channel::Sms,
        Channel::Wechat,
        Channel::RepVisit,
        Channel::RemoteCall,
        Channel::PhoneCall,
        Channel::Webinar,
        Channel::Congress,
        Channel::HospitalMeeting,
        Channel::Web,
    ];

    /// The stable, kebab-case name used in files, the API and the WIT.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Wechat => "wechat",
            Channel::RepVisit => "rep-visit",
            Channel::RemoteCall => "remote-call",
            Channel::PhoneCall => "phone-call",
            Channel::Webinar => "webinar",
            Channel::Congress => "congress",
            Channel::HospitalMeeting => "hospital-meeting",
            Channel::Web => "web",
        }
    }

    /// Whether a field representative carries out the touch.
    pub fn is_field(self) -> bool {
        matches!(
            self,
            Channel::RepVisit | Channel::RemoteCall | Channel::PhoneCall
        )
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A channel name that omnigate does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown channel `{0}` (expected one of: {list})", list = Channel::ALL.map(Channel::as_str).join(", "))]
pub struct UnknownChannel(pub String);

impl FromStr for Channel {
    type Err = UnknownChannel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownChannel(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_channel_round_trips_through_its_name() {
        for c in Channel::ALL {
            assert_eq!(c.as_str().parse::<Channel>(), Ok(c));
            assert_eq!(
                serde_json::to_string(&c).unwrap(),
                format!("\"{}\"", c.as_str())
            );
        }
    }

    #[test]
    fn an_unknown_channel_names_the_input_and_the_choices() {
        let err = "sms2".parse::<Channel>().unwrap_err().to_string();
        assert!(err.starts_with("unknown channel `sms2` (expected one of: email, sms"));
    }
}
