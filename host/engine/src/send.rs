//! One path for every dispatch: gate -> ledger -> adapter -> ledger.
//!
//! [`Sender::send`] takes a batch of intended dispatches for one channel
//! adapter and, in order:
//!
//! 1. skips any whose idempotency key is already in the ledger (a resumed
//!    run never delivers twice);
//! 2. asks the gate about each, and records every decision and the allowed
//!    dispatches (state `queued`) in one durable transaction *before* the
//!    adapter is called;
//! 3. moves the allowed ones to `sending`, clears them for egress with the
//!    exact texts the gate screened, and calls the adapter once for the
//!    batch;
//! 4. records each outcome: `sent` with the provider's id, `failed` for a
//!    permanent error, back to `queued` for a retryable one. If the call
//!    itself failed (trap, timeout), the dispatches stay `sending`: whether
//!    the provider got them is unknown, and a retry with the same
//!    idempotency key is safe.

use std::sync::Arc;

use omnigate_core::HcpField;
use omnigate_core::hcp::HcpProfile;
use omnigate_core::ledger::{DecisionRecord, DispatchState, StateChange};
use omnigate_core::store::StoreError;
use omnigate_core::{HcpSnapshot, Store};
use omnigate_gate::egress::{Clearance, Cleared};
use omnigate_gate::{DispatchRequest, Gate, Rendered};
use omnigate_runtime::types::{Link, MessageParts, PluginError};
use omnigate_runtime::{CallError, Outgoing, Plugin};
use serde::Serialize;

/// One intended dispatch.
#[derive(Debug, Clone)]
pub struct Item {
    /// What to ask the gate.
    pub request: DispatchRequest,
    /// Unique per intended delivery; the adapter passes it to the provider.
    pub idempotency_key: String,
}

/// An allowed dispatch, entered in the ledger, ready for its adapter.
#[derive(Debug, Clone)]
pub struct Ready {
    /// What the gate allowed.
    pub request: DispatchRequest,
    /// The ledger's idempotency key.
    pub idempotency_key: String,
    /// The message exactly as the gate screened it.
    pub rendered: Rendered,
    /// The recipient.
    pub profile: HcpProfile,
    /// The decision that allowed it.
    pub decision_id: String,
}

/// What became of one item.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Sent {
    /// The gate blocked it; nothing was sent.
    Blocked {
        /// The decision, with every reason.
        decision: Box<DecisionRecord>,
    },
    /// The adapter accepted it.
    Delivered {
        /// The decision that allowed it.
        decision_id: String,
        /// The provider's message id.
        provider_id: String,
    },
    /// The adapter refused it.
    Failed {
        /// The decision that allowed it.
        decision_id: String,
        /// Why (from the adapter; never contact details).
        reason: String,
        /// Whether a later retry may succeed (the dispatch is queued again).
        retryable: bool,
    },
    /// The adapter call failed as a whole; the dispatch stays `sending`.
    Unknown {
        /// The decision that allowed it.
        decision_id: String,
        /// Why.
        reason: String,
    },
    /// Its idempotency key is already in the ledger: not sent again.
    AlreadyInLedger {
        /// The dispatch id on record.
        dispatch_id: String,
        /// Its state.
        state: DispatchState,
    },
}

/// What can stop a batch before any delivery.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The store failed; nothing was handed to the adapter.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Runs batches through gate, ledger and adapter.
#[derive(Clone)]
pub struct Sender {
    gate: Gate,
    store: Arc<dyn Store>,
    clearance: Arc<Clearance>,
    actor: String,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("gate", &self.gate)
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

/// The message parts an adapter receives, from the gate's rendering.
pub fn message_parts(r: &Rendered) -> MessageParts {
    let get = |k: &str| r.parts.get(k).cloned();
    let mut disclaimers: Vec<String> = Vec::new();
    disclaimers.extend(get("isi"));
    disclaimers.extend(get("disclaimer"));
    disclaimers.extend(
        r.parts
            .iter()
            .filter(|(k, _)| k.starts_with("disclaimer-"))
            .map(|(_, v)| v.clone()),
    );
    MessageParts {
        subject: get("subject"),
        preheader: get("preheader"),
        body_text: get("text").unwrap_or_default(),
        body_html: get("html"),
        call_to_action: match (get("cta-text"), get("cta-url")) {
            (Some(text), Some(url)) => Some(Link { text, url }),
            _ => None,
        },
        disclaimers,
    }
}

/// One result per item; an item nothing was decided for (which a bug would
/// cause) is reported as unknown rather than dropped.
fn unprocessed_as_unknown(out: Vec<Option<Sent>>) -> Vec<Sent> {
    out.into_iter()
        .map(|o| {
            o.unwrap_or(Sent::Unknown {
                decision_id: String::new(),
                reason: "not processed".into(),
            })
        })
        .collect()
}

/// The values of a recipient snapshot, for the egress check.
fn snapshot_values(s: &HcpSnapshot) -> Vec<String> {
    let mut v = vec![s.id.clone()];
    for x in [
        &s.name,
        &s.specialty_code,
        &s.specialty,
        &s.institution,
        &s.market,
        &s.time_zone,
        &s.language,
        &s.journey_stage,
        &s.email,
        &s.phone,
        &s.wechat_id,
    ]
    .into_iter()
    .flatten()
    {
        v.push(x.clone());
    }
    v.extend(s.tags.iter().flatten().cloned());
    v.extend(s.assigned_reps.iter().flatten().cloned());
    v
}

impl Sender {
    /// A sender over a gate, its store, and the clearance the runtime's
    /// egress hook checks (see [`crate::GateInspector`]).
    pub fn new(
        gate: Gate,
        store: Arc<dyn Store>,
        clearance: Arc<Clearance>,
        actor: &str,
    ) -> Sender {
        Sender {
            gate,
            store,
            clearance,
            actor: actor.to_owned(),
        }
    }

    /// The gate this sender asks.
    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// The store it records in.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Who it records as.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// Takes a dispatch the gate blocked when it was resumed out of the
    /// ledger: `queued` becomes `cancelled` (it never left), `sending`
    /// becomes `failed` (whether the provider got it is unknown).
    ///
    /// # Errors
    ///
    /// A store failure.
    pub fn withdraw_blocked(
        &self,
        d: &omnigate_core::ledger::DispatchRecord,
    ) -> Result<(), StoreError> {
        let to = if d.state == DispatchState::Queued {
            DispatchState::Cancelled
        } else {
            DispatchState::Failed
        };
        self.store.set_dispatch_state(
            &self.actor,
            &d.dispatch.id,
            &[d.state],
            to,
            Some("the gate blocked it on resume"),
        )?;
        Ok(())
    }

    /// Sends a batch through one adapter; one result per item, in order.
    ///
    /// # Errors
    ///
    /// A store failure before the adapter was called (nothing was sent).
    /// Failures after it are per item ([`Sent::Unknown`]) and logged.
    pub fn send(&self, adapter: &Plugin, items: &[Item]) -> Result<Vec<Sent>, SendError> {
        let mut out: Vec<Option<Sent>> = vec![None; items.len()];
        let mut records = Vec::new();
        let mut ledger = Vec::new();
        // (item index, ready)
        let mut allowed: Vec<(usize, Ready)> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            if let Some(existing) = self.store.dispatch_by_key(&item.idempotency_key)? {
                out[i] = Some(Sent::AlreadyInLedger {
                    dispatch_id: existing.dispatch.id,
                    state: existing.state,
                });
                continue;
            }
            let decided = self.gate.decide(&item.request);
            match (decided.dispatch(&item.idempotency_key), &decided.rendered) {
                (Some(d), Some(rendered)) => {
                    let Some(profile) = self.store.profile(&item.request.hcp)? else {
                        return Err(StoreError::UnknownHcp(item.request.hcp.clone()).into());
                    };
                    allowed.push((
                        i,
                        Ready {
                            request: item.request.clone(),
                            idempotency_key: item.idempotency_key.clone(),
                            rendered: rendered.clone(),
                            profile,
                            decision_id: decided.record.id.clone(),
                        },
                    ));
                    ledger.push(d);
                }
                _ => {
                    out[i] = Some(Sent::Blocked {
                        decision: Box::new(decided.record.clone()),
                    });
                }
            }
            records.push(decided.record);
        }
        // INVARIANT: every decision and every allowed dispatch is durable
        // before the adapter sees anything.
        let report = self
            .store
            .record_decisions(&self.actor, &records, &ledger)?;
        if !report.existing_keys.is_empty() {
            // Another sender entered the same keys meanwhile: leave them to it.
            allowed.retain(|(_, r)| !report.existing_keys.contains(&r.idempotency_key));
            for (i, item) in items.iter().enumerate() {
                if out[i].is_none() && report.existing_keys.contains(&item.idempotency_key) {
                    out[i] = Some(Sent::AlreadyInLedger {
                        dispatch_id: item.request.dispatch_id.clone(),
                        state: DispatchState::Queued,
                    });
                }
            }
        }
        let (index, ready): (Vec<usize>, Vec<Ready>) = allowed.into_iter().unzip();
        for (i, sent) in index.into_iter().zip(self.deliver(adapter, &ready)?) {
            out[i] = Some(sent);
        }
        Ok(unprocessed_as_unknown(out))
    }

    /// Delivers dispatches that are already in the ledger (`queued`, or
    /// `sending` after a crash) through one adapter: one result per item, in
    /// order. The provider receives each dispatch's idempotency key, so a
    /// dispatch that reached it before a crash is not delivered twice. The
    /// batch moves to `sending` in one transaction before the adapter is
    /// called, and its outcomes are recorded in one transaction after.
    ///
    /// # Errors
    ///
    /// A store failure. Before the adapter call nothing was sent; after it
    /// the batch's dispatches stay `sending` (a retry with the same
    /// idempotency keys is safe).
    pub fn deliver(&self, adapter: &Plugin, ready: &[Ready]) -> Result<Vec<Sent>, StoreError> {
        let mut out: Vec<Option<Sent>> = vec![None; ready.len()];
        let mut outgoing = Vec::new();
        let mut cleared = Vec::new();
        let mut live = Vec::new();
        // Every dispatch of the batch to `sending`, in one transaction (one
        // durable commit), before the adapter is called.
        let to_sending = [DispatchState::Queued, DispatchState::Sending];
        let changes: Vec<StateChange<'_>> = ready
            .iter()
            .map(|r| StateChange {
                id: &r.request.dispatch_id,
                from: &to_sending,
                to: DispatchState::Sending,
                detail: None,
            })
            .collect();
        let moved = self.store.set_dispatch_states(&self.actor, &changes)?;
        // The recipient's engagement figures are read only for an adapter
        // that is granted them.
        let engagement = adapter
            .manifest()
            .hcp_fields
            .contains(&HcpField::Engagement);
        for ((i, r), moved) in ready.iter().enumerate().zip(moved) {
            let req = &r.request;
            let id = &req.dispatch_id;
            if !moved {
                // Cancelled (an opt-out, a withdrawal) or settled meanwhile.
                let state = self
                    .store
                    .dispatch(id)?
                    .map_or(DispatchState::Cancelled, |d| d.state);
                out[i] = Some(Sent::AlreadyInLedger {
                    dispatch_id: id.clone(),
                    state,
                });
                continue;
            }
            live.push(i);
            let features = if engagement {
                self.store.features(&req.hcp, req.at).ok()
            } else {
                None
            };
            let recipient = r.profile.snapshot(features, None);
            let scoped = recipient.scoped_to(&adapter.manifest().hcp_fields);
            let mut values = snapshot_values(&scoped);
            values.extend([
                req.version.0.clone(),
                req.channel.as_str().to_owned(),
                r.rendered.sha256.clone(),
            ]);
            cleared.push(Cleared {
                dispatch_id: id.clone(),
                idempotency_key: r.idempotency_key.clone(),
                texts: r.rendered.texts().map(str::to_owned).collect(),
                values,
            });
            outgoing.push(Outgoing {
                dispatch_id: id.clone(),
                idempotency_key: r.idempotency_key.clone(),
                recipient,
                content_version_id: req.version.0.clone(),
                content_sha256: req.version.0.clone(),
                channel: req.channel,
                parts: message_parts(&r.rendered),
            });
        }
        if !outgoing.is_empty() {
            self.clearance.set_plugin_values(
                &adapter.manifest().name,
                adapter.manifest().config.values().cloned(),
            );
            self.clearance.clear(cleared);
            let result = adapter.deliver(outgoing);
            self.clearance
                .release(live.iter().map(|i| ready[*i].request.dispatch_id.as_str()));
            self.settle(ready, &live, result, &mut out)?;
        }
        Ok(unprocessed_as_unknown(out))
    }

    fn settle(
        &self,
        ready: &[Ready],
        live: &[usize],
        result: Result<
            Vec<Result<omnigate_runtime::types::DeliveryReceipt, PluginError>>,
            CallError,
        >,
        out: &mut [Option<Sent>],
    ) -> Result<(), StoreError> {
        match result {
            Err(e) => {
                tracing::warn!(error = %e, "adapter call failed; dispatches stay `sending`");
                for i in live {
                    out[*i] = Some(Sent::Unknown {
                        decision_id: ready[*i].decision_id.clone(),
                        reason: e.to_string(),
                    });
                }
            }
            Ok(results) => {
                // Every outcome of the batch in one transaction.
                let sending = [DispatchState::Sending];
                let mut details: Vec<(usize, DispatchState, String)> = Vec::new();
                for (i, r) in live.iter().zip(results) {
                    let decision_id = &ready[*i].decision_id;
                    match r {
                        Ok(receipt) => {
                            details.push((
                                *i,
                                DispatchState::Sent,
                                format!("provider id {}", receipt.provider_message_id),
                            ));
                            out[*i] = Some(Sent::Delivered {
                                decision_id: decision_id.clone(),
                                provider_id: receipt.provider_message_id,
                            });
                        }
                        Err(e) => {
                            let (reason, retryable) = match e {
                                PluginError::AccessDenied(m) => {
                                    (format!("access denied: {m}"), false)
                                }
                                PluginError::InvalidInput(m) => {
                                    (format!("invalid input: {m}"), false)
                                }
                                PluginError::Upstream(u) => (u.message, u.retryable),
                            };
                            let to = if retryable {
                                DispatchState::Queued
                            } else {
                                DispatchState::Failed
                            };
                            details.push((*i, to, reason.clone()));
                            out[*i] = Some(Sent::Failed {
                                decision_id: decision_id.clone(),
                                reason,
                                retryable,
                            });
                        }
                    }
                }
                let changes: Vec<StateChange<'_>> = details
                    .iter()
                    .map(|(i, to, detail)| StateChange {
                        id: &ready[*i].request.dispatch_id,
                        from: &sending,
                        to: *to,
                        detail: Some(detail),
                    })
                    .collect();
                self.store.set_dispatch_states(&self.actor, &changes)?;
            }
        }
        Ok(())
    }
}
