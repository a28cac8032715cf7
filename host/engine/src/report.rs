//! The campaign report: what a marketer asks first (who got what, who was
//! blocked or suppressed and why), per channel.

use std::collections::BTreeMap;

use omnigate_core::campaign::{CampaignId, MemberOutcome};
use omnigate_core::event::now_millis;
use omnigate_core::{Channel, Store};
use serde::Serialize;

use crate::campaign::CampaignError;

/// Per channel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ChannelReport {
    /// Members whose dispatch went out on it.
    pub dispatched: u64,
    /// Gate decisions on it that blocked.
    pub blocked: u64,
    /// Members whose dispatch on it failed.
    pub failed: u64,
}

/// A campaign's report. Stable JSON (`omnigate report --format json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The campaign id.
    pub campaign: String,
    /// Its name.
    pub name: String,
    /// The product.
    pub product: String,
    /// The market.
    pub market: String,
    /// Its state.
    pub state: String,
    /// Audience size, holdout included.
    pub audience: u64,
    /// Holdout size.
    pub holdout: u64,
    /// Counts by outcome. `dispatched`, `suppressed`, `failed`, `holdout`,
    /// `pending`, `unreached` count members (each member has one);
    /// `blocked` counts gate decisions that blocked (a member whose first
    /// choice was blocked may still be dispatched on a fallback).
    pub outcomes: BTreeMap<String, u64>,
    /// Blocking decisions by rule id (a decision counts once for each rule
    /// that blocked it).
    pub blocked_by_rule: BTreeMap<String, u64>,
    /// Suppressed members by rule id (a member counts once per rule among
    /// its reasons).
    pub suppressed_by_rule: BTreeMap<String, u64>,
    /// Per channel.
    pub channels: BTreeMap<Channel, ChannelReport>,
    /// Gate decisions in all.
    pub decisions: u64,
}

/// Builds the report of a campaign.
///
/// # Errors
///
/// Unknown campaign, or the store failed.
pub fn report(store: &dyn Store, id: &CampaignId) -> Result<Report, CampaignError> {
    let record = store
        .campaign(id)?
        .ok_or_else(|| CampaignError::Unknown(id.to_string()))?;
    let counts = store.member_counts(id, now_millis())?;
    let decisions = store.campaign_decisions(id)?;
    let mut outcomes: BTreeMap<String, u64> = MemberOutcome::ALL
        .into_iter()
        .map(|o| {
            (
                o.as_str().to_owned(),
                counts.by_outcome.get(&o).copied().unwrap_or(0),
            )
        })
        .collect();
    outcomes.insert("blocked".into(), decisions.blocked);
    let mut channels: BTreeMap<Channel, ChannelReport> = BTreeMap::new();
    for (c, n) in &counts.dispatched_by_channel {
        channels.entry(*c).or_default().dispatched = *n;
    }
    for (c, n) in &counts.failed_by_channel {
        channels.entry(*c).or_default().failed = *n;
    }
    for (c, n) in &decisions.blocked_by_channel {
        channels.entry(*c).or_default().blocked = *n;
    }
    let def = &record.definition;
    Ok(Report {
        campaign: def.id.to_string(),
        name: def.name.clone(),
        product: def.product.clone(),
        market: def.market.clone(),
        state: record.state.as_str().to_owned(),
        audience: counts.audience,
        holdout: counts.holdout,
        outcomes,
        blocked_by_rule: decisions.blocked_by_rule,
        suppressed_by_rule: counts.suppressed_by_rule,
        channels,
        decisions: decisions.decisions,
    })
}

impl Report {
    /// The report for a terminal.
    pub fn text(&self) -> String {
        let mut out = format!(
            "campaign {} ({}): {} in {}, {}\n",
            self.campaign, self.name, self.product, self.market, self.state
        );
        out.push_str(&format!(
            "audience {} (holdout {})\n\noutcomes\n",
            self.audience, self.holdout
        ));
        for (k, v) in &self.outcomes {
            out.push_str(&format!("  {k:<11} {v}\n"));
        }
        if !self.blocked_by_rule.is_empty() {
            out.push_str("\nblocked by rule (gate decisions)\n");
            for (k, v) in &self.blocked_by_rule {
                out.push_str(&format!("  {k:<32} {v}\n"));
            }
        }
        if !self.suppressed_by_rule.is_empty() {
            out.push_str("\nsuppressed by reason (members)\n");
            for (k, v) in &self.suppressed_by_rule {
                out.push_str(&format!("  {k:<32} {v}\n"));
            }
        }
        if !self.channels.is_empty() {
            out.push_str("\nper channel      dispatched    blocked     failed\n");
            for (c, r) in &self.channels {
                out.push_str(&format!(
                    "  {:<14} {:>10} {:>10} {:>10}\n",
                    c.as_str(),
                    r.dispatched,
                    r.blocked,
                    r.failed
                ));
            }
        }
        out
    }
}
