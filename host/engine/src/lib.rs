//! omnigate's orchestration. Today: the single path every dispatch takes
//! (gate -> ledger -> adapter -> ledger, [`Sender`]) and the egress hook
//! that holds adapters to what the gate screened ([`GateInspector`]).
//! Campaigns and journeys build on these.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod audience;
pub mod campaign;
pub mod journeys;
pub mod report;
mod send;
pub mod suggest;

use std::sync::Arc;

use omnigate_gate::egress::{Clearance, Outbound};
use omnigate_runtime::{EgressInspector, EgressRequest};

pub use audience::in_holdout;
pub use campaign::runner::{Runner, Waker};
pub use campaign::{CampaignError, Campaigns, RunEnd, RunOptions, Status};
pub use journeys::{JourneyError, JourneyOptions, Journeys};
pub use send::{Item, Ready, SendError, Sender, Sent, message_parts};

/// The runtime's egress hook, backed by the gate's [`Clearance`]: a channel
/// adapter's request leaves only if it belongs to a dispatch the gate
/// allowed and carries no text the gate did not screen.
#[derive(Debug, Clone)]
pub struct GateInspector(pub Arc<Clearance>);

impl EgressInspector for GateInspector {
    fn inspect(&self, request: &EgressRequest<'_>) -> Result<(), String> {
        let headers: Vec<(&str, &[u8])> = request
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes()))
            .collect();
        self.0.check(&Outbound {
            plugin: request.plugin,
            call: request.call,
            dispatch_ids: request.dispatch_ids,
            query: request.uri.query(),
            headers: &headers,
            body: request.body,
        })
    }
}
