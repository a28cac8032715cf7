//! Engagement events from every channel, and the schema each type must meet.
//!
//! Events are append-only and idempotent by id: storing a batch twice adds
//! nothing the second time. [`NewEvent::validate`] checks an event against
//! the schema of its type before anything is written.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Channel, HcpId};

/// A point in time: milliseconds since the Unix epoch, UTC.
pub type UnixMillis = i64;

/// Milliseconds in one day, the width of a feature bucket.
pub const DAY_MILLIS: i64 = 86_400_000;

/// The current time.
pub fn now_millis() -> UnixMillis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

macro_rules! event_types {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal,
        channels: [$($ch:ident),*], required: [$($field:literal),*], effect: $effect:expr; )*) => {
        /// What happened.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum EventType { $( $(#[$doc])* $variant, )* }

        impl EventType {
            /// Every event type, in a stable order.
            pub const ALL: &'static [EventType] = &[$(EventType::$variant),*];

            /// The stable, kebab-case name.
            pub fn as_str(self) -> &'static str {
                match self { $(EventType::$variant => $name,)* }
            }

            /// The channels an event of this type can come from; empty means any.
            pub fn channels(self) -> &'static [Channel] {
                match self { $(EventType::$variant => &[$(Channel::$ch),*],)* }
            }

            /// The attributes an event of this type must carry, as non-empty
            /// strings.
            pub fn required_attributes(self) -> &'static [&'static str] {
                match self { $(EventType::$variant => &[$($field),*],)* }
            }

            /// How an event of this type moves the derived features.
            pub fn effect(self) -> Effect {
                match self { $(EventType::$variant => $effect,)* }
            }
        }
    };
}

/// How one event moves the derived features of its HCP on its channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Effect {
    /// A contact with the HCP: counts towards last touch and 7/30-day touches.
    pub touch: bool,
    /// A send (or visit, or invitation): the denominator of responsiveness.
    pub send: bool,
    /// An open.
    pub open: bool,
    /// A click.
    pub click: bool,
    /// An attendance.
    pub attend: bool,
    /// The HCP saw the content version named by the `content_version`
    /// attribute, if any.
    pub sees_content: bool,
}

const NONE: Effect = Effect {
    touch: false,
    send: false,
    open: false,
    click: false,
    attend: false,
    sees_content: false,
};
const CONTACT: Effect = Effect {
    touch: true,
    send: true,
    sees_content: true,
    ..NONE
};

event_types! {
    /// A face-to-face visit by a rep.
    RepVisit = "rep-visit", channels: [RepVisit], required: ["rep_id"], effect: CONTACT;
    /// A remote detailing call.
    RemoteCall = "remote-call", channels: [RemoteCall], required: ["rep_id"], effect: CONTACT;
    /// A phone call.
    PhoneCall = "phone-call", channels: [PhoneCall], required: ["rep_id"], effect: CONTACT;
    /// A message reached the inbox.
    EmailDelivered = "email-delivered", channels: [Email], required: ["dispatch_id", "content_version"],
        effect: Effect { touch: true, send: true, ..NONE };
    /// A message was opened.
    EmailOpened = "email-opened", channels: [Email], required: ["dispatch_id", "content_version"],
        effect: Effect { open: true, sees_content: true, ..NONE };
    /// A link in a message was clicked.
    EmailClicked = "email-clicked", channels: [Email], required: ["dispatch_id", "content_version", "url"],
        effect: Effect { click: true, sees_content: true, ..NONE };
    /// A message bounced.
    EmailBounced = "email-bounced", channels: [Email], required: ["dispatch_id", "bounce_kind"], effect: NONE;
    /// The HCP unsubscribed from a message.
    EmailUnsubscribed = "email-unsubscribed", channels: [Email], required: ["dispatch_id"], effect: NONE;
    /// Registered for a webinar (the invitation accepted).
    WebinarRegistered = "webinar-registered", channels: [Webinar], required: ["webinar_id"],
        effect: Effect { send: true, ..NONE };
    /// Attended a webinar.
    WebinarAttended = "webinar-attended", channels: [Webinar], required: ["webinar_id"],
        effect: Effect { touch: true, attend: true, sees_content: true, ..NONE };
    /// Visited a congress booth.
    CongressBoothVisit = "congress-booth-visit", channels: [Congress], required: ["congress_id"], effect: CONTACT;
    /// A hospital or department meeting.
    HospitalMeeting = "hospital-meeting", channels: [HospitalMeeting], required: ["rep_id"],
        effect: Effect { attend: true, ..CONTACT };
    /// A visit to the HCP portal.
    WebVisit = "web-visit", channels: [Web], required: ["url"],
        effect: Effect { sees_content: true, ..NONE };
    /// Downloaded a piece of content.
    ContentDownload = "content-download", channels: [], required: ["content_version"],
        effect: Effect { click: true, sees_content: true, ..NONE };
    /// Answered a survey.
    SurveyAnswered = "survey-answered", channels: [], required: ["survey_id"], effect: NONE;
    /// A rep acted on a suggestion.
    SuggestionDone = "suggestion-done", channels: [RepVisit, RemoteCall, PhoneCall, HospitalMeeting],
        required: ["suggestion_id", "rep_id"], effect: NONE;
    /// A rep dismissed a suggestion.
    SuggestionDismissed = "suggestion-dismissed", channels: [RepVisit, RemoteCall, PhoneCall, HospitalMeeting],
        required: ["suggestion_id", "rep_id"], effect: NONE;
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event type name that omnigate does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type `{0}`")]
pub struct UnknownEventType(pub String);

impl std::str::FromStr for EventType {
    type Err = UnknownEventType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .iter()
            .copied()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownEventType(s.to_owned()))
    }
}

/// An engagement event as a channel reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    /// Globally unique id given by the source (provider message id, CRM call
    /// id): the idempotency key.
    pub id: String,
    /// The HCP.
    pub hcp: HcpId,
    /// What happened.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// Where it happened.
    pub channel: Channel,
    /// When it happened.
    pub occurred_at: UnixMillis,
    /// Type-specific attributes (see [`EventType::required_attributes`]);
    /// never contact details.
    #[serde(default)]
    pub attributes: Map<String, Value>,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The event as reported.
    #[serde(flatten)]
    pub event: NewEvent,
    /// When omnigate stored it.
    pub received_at: UnixMillis,
}

/// Why an event does not meet the schema of its type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The id is empty or too long.
    #[error("event id must be 1 to 128 characters")]
    BadId,
    /// The channel does not fit the type.
    #[error("a `{event_type}` event cannot come from channel `{channel}` (expected {expected})")]
    WrongChannel {
        /// The type.
        event_type: EventType,
        /// The channel given.
        channel: Channel,
        /// The channels allowed.
        expected: String,
    },
    /// An attribute holds an e-mail address (invariant 7: contact details
    /// are never stored outside the HCP profile).
    #[error(
        "attribute `{attribute}` holds an e-mail address; strip contact details before sending events"
    )]
    ContactDetail {
        /// The attribute.
        attribute: String,
    },
    /// A required attribute is missing, empty or not a string.
    #[error("a `{event_type}` event needs attribute `{attribute}` (a non-empty string)")]
    MissingAttribute {
        /// The type.
        event_type: EventType,
        /// The attribute.
        attribute: &'static str,
    },
}

/// Whether a JSON value holds an e-mail address anywhere.
fn holds_email(v: &Value) -> bool {
    match v {
        Value::String(s) => {
            (s.contains('@') || s.contains("%40")) && crate::redact::redact(s).contains("<email>")
        }
        Value::Array(items) => items.iter().any(holds_email),
        Value::Object(map) => map.values().any(holds_email),
        _ => false,
    }
}

impl NewEvent {
    /// Checks the event against the schema of its type.
    ///
    /// # Errors
    ///
    /// The first rule the event breaks.
    pub fn validate(&self) -> Result<(), EventError> {
        if self.id.is_empty() || self.id.len() > 128 {
            return Err(EventError::BadId);
        }
        let t = self.event_type;
        let channels = t.channels();
        if !channels.is_empty() && !channels.contains(&self.channel) {
            return Err(EventError::WrongChannel {
                event_type: t,
                channel: self.channel,
                expected: channels
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(" or "),
            });
        }
        // INVARIANT: no contact details in the event log. Tracking links
        // often carry the recipient's address; the adapter must strip it.
        if let Some((name, _)) = self.attributes.iter().find(|(_, v)| holds_email(v)) {
            return Err(EventError::ContactDetail {
                attribute: name.clone(),
            });
        }
        for &attribute in t.required_attributes() {
            match self.attributes.get(attribute) {
                Some(Value::String(s)) if !s.is_empty() => {}
                _ => {
                    return Err(EventError::MissingAttribute {
                        event_type: t,
                        attribute,
                    });
                }
            }
        }
        Ok(())
    }

    /// The content version the HCP saw through this event, if any.
    pub fn content_seen(&self) -> Option<&str> {
        if !self.event_type.effect().sees_content {
            return None;
        }
        self.attributes
            .get("content_version")
            .and_then(Value::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn open(attrs: Value) -> NewEvent {
        NewEvent {
            id: "evt-1".into(),
            hcp: HcpId::new("h1").unwrap(),
            event_type: EventType::EmailOpened,
            channel: Channel::Email,
            occurred_at: 0,
            attributes: attrs.as_object().unwrap().clone(),
        }
    }

    #[test]
    fn every_event_type_round_trips_through_its_name() {
        for &t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>(), Ok(t));
            assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{t}\""));
        }
        assert_eq!(EventType::ALL.len(), 17);
    }

    #[test]
    fn an_event_missing_a_required_attribute_is_rejected_naming_it() {
        let err = open(json!({"dispatch_id": "d1"})).validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "a `email-opened` event needs attribute `content_version` (a non-empty string)"
        );
        assert!(
            open(json!({"dispatch_id": "d1", "content_version": "v"}))
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn an_event_carrying_an_email_address_is_rejected_without_echoing_it() {
        let e = open(json!({
            "dispatch_id": "d1", "content_version": "v",
            "extra": {"link": "https://t.example/c?to=jane%40clinic.example"},
        }));
        let err = e.validate().unwrap_err().to_string();
        assert_eq!(
            err,
            "attribute `extra` holds an e-mail address; strip contact details before sending events"
        );
        assert!(
            open(json!({"dispatch_id": "d1@batch", "content_version": "v"}))
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn an_event_from_the_wrong_channel_is_rejected() {
        let mut e = open(json!({"dispatch_id": "d1", "content_version": "v"}));
        e.channel = Channel::Sms;
        assert_eq!(
            e.validate().unwrap_err().to_string(),
            "a `email-opened` event cannot come from channel `sms` (expected `email`)"
        );
    }

    #[test]
    fn an_unknown_event_type_is_rejected_when_parsed() {
        let raw = json!({"id": "e", "hcp": "h1", "type": "fax-sent", "channel": "email", "occurred_at": 0});
        let err = serde_json::from_value::<NewEvent>(raw)
            .unwrap_err()
            .to_string();
        assert!(err.contains("fax-sent"), "{err}");
    }
}
