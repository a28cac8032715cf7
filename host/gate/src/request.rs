//! What the gate is asked, and what it answers.

use omnigate_core::Channel;
use omnigate_core::consent::Purpose;
use omnigate_core::content::VersionHash;
use omnigate_core::event::UnixMillis;
use omnigate_core::hcp::HcpId;
use omnigate_core::ledger::{DecisionRecord, NewDispatch, Verdict};
use omnigate_core::template::Values;
use serde::{Deserialize, Serialize};

use crate::render::Rendered;
use std::collections::BTreeMap;

/// One intended dispatch, put to the gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchRequest {
    /// The dispatch id (unique per attempt to reach this HCP with this
    /// content; the ledger keys it).
    pub dispatch_id: String,
    /// The campaign or journey asking, if any (per-campaign caps use it).
    #[serde(default)]
    pub campaign: Option<String>,
    /// The HCP.
    pub hcp: HcpId,
    /// The approved content version to send.
    pub version: VersionHash,
    /// The channel.
    pub channel: Channel,
    /// Why it is sent (consent is per purpose).
    pub purpose: Purpose,
    /// The market; the HCP's market when absent.
    #[serde(default)]
    pub market: Option<String>,
    /// Values for the dispatch's personalization fields (`salutation`,
    /// `rep-name`, `event-date`, `unsubscribe-url`). Profile fields (`name`,
    /// `specialty`, `institution`) come from the HCP's profile and may not be
    /// given here.
    #[serde(default)]
    pub values: Values,
    /// The exact parts the caller means to send, if it rendered them
    /// itself: they must equal the gate's rendering byte for byte. When
    /// absent, the gate's rendering is what is sent.
    #[serde(default)]
    pub proposed: Option<BTreeMap<String, String>>,
    /// When it is to go out (caps and quiet hours are judged at this time).
    pub at: UnixMillis,
}

/// The facts of a request the consent and cap checks need.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Subject<'a> {
    pub hcp: &'a HcpId,
    pub channel: Channel,
    pub purpose: Purpose,
    pub market: &'a str,
    pub product: Option<&'a str>,
    pub campaign: Option<&'a str>,
    pub at: UnixMillis,
}

/// The gate's answer: the decision record and, if allowed, the exact
/// message to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    /// The decision, to be recorded.
    pub record: DecisionRecord,
    /// The message exactly as screened; present when allowed (and when it
    /// could be rendered, for a block).
    pub rendered: Option<Rendered>,
    /// The product the content promotes, when the version was found.
    pub product: Option<String>,
    /// When the dispatch is to go out (the request's `at`).
    pub planned_at: UnixMillis,
}

impl Decided {
    /// Whether the dispatch may go out.
    pub fn allowed(&self) -> bool {
        self.record.verdict == Verdict::Allow && self.rendered.is_some()
    }

    /// The ledger entry for an allowed dispatch; `None` for a block.
    pub fn dispatch(&self, idempotency_key: &str) -> Option<NewDispatch> {
        if !self.allowed() {
            return None;
        }
        let r = &self.record;
        Some(NewDispatch {
            id: r.dispatch.clone(),
            idempotency_key: idempotency_key.to_owned(),
            campaign: r.campaign.clone(),
            hcp: r.hcp.clone(),
            channel: r.channel,
            purpose: r.purpose,
            market: r.market.clone(),
            product: self.product.clone(),
            version: r.version.clone(),
            decision: r.id.clone(),
            planned_at: self.planned_at,
            text_sha256: self.rendered.as_ref().map(|m| m.sha256.clone())?,
        })
    }
}
