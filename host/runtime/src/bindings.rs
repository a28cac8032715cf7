//! Host bindings generated from `wit/`, and conversions from the core types.

#![allow(missing_docs, reason = "generated from the WIT, which is documented")]

use omnigate_core::{Channel, HcpSnapshot};

/// Bindings of the `channel-adapter` world (and of the shared interfaces).
pub mod adapter {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "omnigate:plugin/channel-adapter",
    });
}

/// Bindings of the `scoring-model` world; the shared interfaces are those of
/// [`adapter`].
pub mod scorer {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "omnigate:plugin/scoring-model",
        with: {
            "omnigate:plugin/types": super::adapter::omnigate::plugin::types,
            "omnigate:plugin/config": super::adapter::omnigate::plugin::config,
        },
    });
}

/// The WIT types of `omnigate:plugin/types`.
pub use adapter::omnigate::plugin::types;
/// The WIT types of `omnigate:plugin/scoring`.
pub use scorer::exports::omnigate::plugin::scoring;

impl From<Channel> for types::Channel {
    fn from(c: Channel) -> Self {
        match c {
            Channel::Email => types::Channel::Email,
            Channel::Sms => types::Channel::Sms,
            Channel::Wechat => types::Channel::Wechat,
            Channel::RepVisit => types::Channel::RepVisit,
            Channel::RemoteCall => types::Channel::RemoteCall,
            Channel::PhoneCall => types::Channel::PhoneCall,
            Channel::Webinar => types::Channel::Webinar,
            Channel::Congress => types::Channel::Congress,
            Channel::HospitalMeeting => types::Channel::HospitalMeeting,
            Channel::Web => types::Channel::Web,
        }
    }
}

impl From<types::Channel> for Channel {
    fn from(c: types::Channel) -> Self {
        match c {
            types::Channel::Email => Channel::Email,
            types::Channel::Sms => Channel::Sms,
            types::Channel::Wechat => Channel::Wechat,
            types::Channel::RepVisit => Channel::RepVisit,
            types::Channel::RemoteCall => Channel::RemoteCall,
            types::Channel::PhoneCall => Channel::PhoneCall,
            types::Channel::Webinar => Channel::Webinar,
            types::Channel::Congress => Channel::Congress,
            types::Channel::HospitalMeeting => Channel::HospitalMeeting,
            types::Channel::Web => Channel::Web,
        }
    }
}

/// The WIT form of a snapshot. Callers scope it first
/// ([`HcpSnapshot::scoped_to`]); [`crate::Plugin`] does so on every call.
pub fn snapshot_to_wit(s: HcpSnapshot) -> types::HcpSnapshot {
    types::HcpSnapshot {
        id: s.id,
        name: s.name,
        specialty_code: s.specialty_code,
        specialty: s.specialty,
        institution: s.institution,
        market: s.market,
        time_zone: s.time_zone,
        language: s.language,
        tags: s.tags,
        journey_stage: s.journey_stage,
        engagement: s.engagement.map(|e| types::EngagementStats {
            touches_7d: e.touches_7d,
            touches_30d: e.touches_30d,
            channels: e
                .channels
                .into_iter()
                .map(|c| types::ChannelStats {
                    channel: c.channel.into(),
                    last_touch_at: c.last_touch_at,
                    touches_7d: c.touches_7d,
                    touches_30d: c.touches_30d,
                    sends: c.sends,
                    opens: c.opens,
                    clicks: c.clicks,
                    attended: c.attended,
                })
                .collect(),
            content_seen: e.content_seen,
        }),
        assigned_reps: s.assigned_reps,
        email: s.email,
        phone: s.phone,
        wechat_id: s.wechat_id,
    }
}
