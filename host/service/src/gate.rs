//! The compliance gate's operations: checking a dispatch, and listing and
//! reading decisions.

use omnigate_core::event::now_millis;
use omnigate_core::ledger::{DecisionFilter, DecisionRecord, Verdict};
use omnigate_gate::{DispatchRequest, Gate};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Location, ServiceError, ServiceResult};
use crate::{Service, actor, input};

/// A dispatch to check, as users write it (`omnigate gate check`,
/// `POST /v1/gate/check`). `at` defaults to now, `dispatch_id` to a new id.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckInput {
    #[serde(default)]
    dispatch_id: Option<String>,
    #[serde(default)]
    campaign: Option<String>,
    hcp: String,
    version: String,
    channel: omnigate_core::Channel,
    purpose: omnigate_core::consent::Purpose,
    #[serde(default)]
    market: Option<String>,
    #[serde(default)]
    values: omnigate_core::template::Values,
    #[serde(default)]
    proposed: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default)]
    at: Option<i64>,
}

/// The answer to a check: the recorded decision and, when allowed, the
/// exact message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckOutcome {
    /// `allow` or `block`.
    pub verdict: Verdict,
    /// The decision as recorded (in the audit trail too).
    pub decision: DecisionRecord,
    /// The parts exactly as they would be sent, when allowed.
    pub message: Option<std::collections::BTreeMap<String, String>>,
}

/// Parses a dispatch to check from JSON.
///
/// # Errors
///
/// What is wrong and at which JSON path.
pub fn check_input(v: Value, at: &Location) -> ServiceResult<DispatchRequest> {
    let c: CheckInput = serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        ServiceError::invalid_value(at.child(&path), &e.into_inner().to_string())
    })?;
    let hcp = input::hcp_id(&c.hcp, &at.child("hcp"))?;
    let version = input::version_hash(&c.version, &at.child("version"))?;
    let now = now_millis();
    Ok(DispatchRequest {
        dispatch_id: c
            .dispatch_id
            .unwrap_or_else(|| format!("check-{}", uuid_like(now))),
        campaign: c.campaign,
        hcp,
        version,
        channel: c.channel,
        purpose: c.purpose,
        market: c.market,
        values: c.values,
        proposed: c.proposed,
        at: c.at.unwrap_or(now),
    })
}

fn uuid_like(now: i64) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{now:x}-{:x}", N.fetch_add(1, Ordering::Relaxed))
}

/// Filters for listing decisions, as strings from a query or the command
/// line.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionQuery {
    /// Only this campaign.
    #[serde(default)]
    pub campaign: Option<String>,
    /// Only this HCP.
    #[serde(default)]
    pub hcp: Option<String>,
    /// Only decisions where this rule blocked or warned.
    #[serde(default)]
    pub rule: Option<String>,
    /// `allow` or `block`.
    #[serde(default)]
    pub verdict: Option<String>,
    /// Only decisions older than this one (paging).
    #[serde(default)]
    pub before: Option<String>,
    /// At most this many (default 100, at most 1,000).
    #[serde(default)]
    pub limit: Option<usize>,
}

impl Service {
    /// The gate, over this service's store and policy.
    pub fn gate(&self) -> Gate {
        Gate::new(self.policy.clone(), self.store.clone())
    }

    /// Puts a dispatch to the gate and records the decision (audited). No
    /// ledger entry is made: nothing is sent.
    ///
    /// # Errors
    ///
    /// A bad actor, or a store failure while recording.
    pub fn check(&self, actor_name: &str, req: &DispatchRequest) -> ServiceResult<CheckOutcome> {
        let actor = actor(actor_name)?;
        let decided = self.gate().decide(req);
        self.store
            .record_decisions(&actor, std::slice::from_ref(&decided.record), &[])?;
        Ok(CheckOutcome {
            verdict: decided.record.verdict,
            message: decided.rendered.map(|r| r.parts),
            decision: decided.record,
        })
    }

    /// Decisions matching `q`, newest first.
    ///
    /// # Errors
    ///
    /// A bad filter value (named), or a store failure.
    pub fn decisions(&self, q: &DecisionQuery) -> ServiceResult<Vec<DecisionRecord>> {
        let verdict = match q.verdict.as_deref() {
            None => None,
            Some("allow") => Some(Verdict::Allow),
            Some("block") => Some(Verdict::Block),
            Some(other) => {
                return Err(ServiceError::invalid_value(
                    Location::argument("verdict"),
                    &format!("unknown verdict `{other}` (expected `allow` or `block`)"),
                ));
            }
        };
        let hcp = q
            .hcp
            .as_deref()
            .map(|h| input::hcp_id(h, &Location::argument("hcp")))
            .transpose()?;
        let limit = q.limit.unwrap_or(100);
        if limit == 0 || limit > 1000 {
            return Err(ServiceError::invalid(
                Location::argument("limit"),
                format!("`limit` must be 1 to 1000, not {limit}"),
            ));
        }
        Ok(self.store.decisions(&DecisionFilter {
            campaign: q.campaign.clone(),
            hcp,
            rule: q.rule.clone(),
            verdict,
            before: q.before.clone(),
            limit,
        })?)
    }

    /// One decision.
    ///
    /// # Errors
    ///
    /// An unknown id, or a store failure.
    pub fn decision(&self, id: &str) -> ServiceResult<DecisionRecord> {
        self.store
            .decision(id)?
            .ok_or_else(|| ServiceError::NotFound {
                code: "unknown-decision",
                message: format!("unknown decision `{}`", omnigate_core::redact::redact(id)),
                at: None,
            })
    }
}
