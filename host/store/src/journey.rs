//! Journey stages: rule counters advanced on ingest, transitions recorded
//! with their cause, manual moves by decision.

use omnigate_core::NewEvent;
use omnigate_core::audit::NewAuditEntry;
use omnigate_core::hcp::HcpId;
use omnigate_core::journey::{BRAND_ATTRIBUTE, JourneyConfig, JourneyTransition};
use omnigate_core::store::{JourneyStore, StoreError, StoreResult};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};

use crate::audit::AuditWriter;
use crate::db::{During, SqliteStore};
use crate::{hcp, identity};

const OP: &str = "update journey stages";

/// An event that counts for a rule, in batch order.
pub(crate) struct RuleHit<'a> {
    pub(crate) hcp_num: i64,
    pub(crate) event: &'a NewEvent,
    pub(crate) brand: &'a str,
    pub(crate) rule: usize,
}

/// The rules `event` counts for (none without a brand attribute).
pub(crate) fn hits<'a>(
    config: &JourneyConfig,
    hcp_num: i64,
    event: &'a NewEvent,
    out: &mut Vec<RuleHit<'a>>,
) {
    let Some(brand) = event
        .attributes
        .get(BRAND_ATTRIBUTE)
        .and_then(Value::as_str)
    else {
        return;
    };
    for (rule, r) in config.rules.iter().enumerate() {
        if r.matches(event) {
            out.push(RuleHit {
                hcp_num,
                event,
                brand,
                rule,
            });
        }
    }
}

fn current(c: &Connection, hcp_num: i64, brand: &str) -> rusqlite::Result<Option<String>> {
    c.prepare_cached("SELECT stage FROM journey_stage WHERE hcp_num = ?1 AND brand = ?2")?
        .query_row(params![hcp_num, brand], |r| r.get(0))
        .optional()
}

/// One move on a brand's ladder.
struct Move<'a> {
    hcp: &'a HcpId,
    hcp_num: i64,
    brand: &'a str,
    from: Option<&'a str>,
    to: &'a str,
    cause: &'a str,
    event: Option<&'a str>,
}

/// Moves an HCP and records the move, in the caller's transaction.
fn move_to(tx: &Connection, audit: &mut AuditWriter, actor: &str, m: &Move<'_>) -> StoreResult<()> {
    tx.prepare_cached(
        "INSERT INTO journey_stage (hcp_num, brand, stage) VALUES (?1, ?2, ?3)
         ON CONFLICT (hcp_num, brand) DO UPDATE SET stage = excluded.stage",
    )
    .and_then(|mut s| s.execute(params![m.hcp_num, m.brand, m.to]))
    .during(OP)?;
    tx.prepare_cached(
        "INSERT INTO journey_transition (hcp_num, brand, from_stage, to_stage, cause, event_id, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut s| {
        s.execute(params![
            m.hcp_num,
            m.brand,
            m.from,
            m.to,
            m.cause,
            m.event,
            audit.now()
        ])
    })
    .during(OP)?;
    let payload = json!({
        "brand": m.brand, "from": m.from, "to": m.to, "cause": m.cause, "event": m.event,
    });
    audit.append(
        tx,
        NewAuditEntry::new(actor, "journey.move", m.hcp.as_str(), payload),
    )
}

/// Counts the hits and moves HCPs whose rules fire, upwards only.
pub(crate) fn apply(
    tx: &Connection,
    audit: &mut AuditWriter,
    actor: &str,
    config: &JourneyConfig,
    hits: &[RuleHit<'_>],
) -> StoreResult<()> {
    for h in hits {
        let rule = &config.rules[h.rule];
        let count: i64 = tx
            .prepare_cached(
                "INSERT INTO journey_counter (hcp_num, brand, rule_id, count) VALUES (?1, ?2, ?3, 1)
                 ON CONFLICT (hcp_num, brand, rule_id) DO UPDATE SET count = count + 1
                 RETURNING count",
            )
            .and_then(|mut s| s.query_row(params![h.hcp_num, h.brand, rule.id], |r| r.get(0)))
            .during(OP)?;
        if count < i64::from(rule.min_count) {
            continue;
        }
        let from = current(tx, h.hcp_num, h.brand).during(OP)?;
        let up = match from.as_deref() {
            None => true,
            Some(f) => config.rank(&rule.to) > config.rank(f),
        };
        if up {
            let m = Move {
                hcp: &h.event.hcp,
                hcp_num: h.hcp_num,
                brand: h.brand,
                from: from.as_deref(),
                to: &rule.to,
                cause: &rule.id,
                event: Some(&h.event.id),
            };
            move_to(tx, audit, actor, &m)?;
        }
    }
    Ok(())
}

/// One record's moves on a brand's ladder, in order.
fn history_of(c: &Connection, n: i64, brand: &str) -> StoreResult<Vec<JourneyTransition>> {
    let mut stmt = c
        .prepare_cached(
            "SELECT from_stage, to_stage, cause, event_id, at FROM journey_transition
             WHERE hcp_num = ?1 AND brand = ?2 ORDER BY id",
        )
        .during(OP)?;
    let rows = stmt
        .query_map(params![n, brand], |r| {
            Ok(JourneyTransition {
                brand: brand.to_owned(),
                from: r.get(0)?,
                to: r.get(1)?,
                cause: r.get(2)?,
                event: r.get(3)?,
                at: r.get(4)?,
            })
        })
        .during(OP)?;
    rows.collect::<rusqlite::Result<_>>().during(OP)
}

impl JourneyStore for SqliteStore {
    fn journey_stage(&self, hcp: &HcpId, brand: &str) -> StoreResult<Option<String>> {
        // A merged group is one HCP: its stage is the furthest any of its
        // records reached.
        self.read("read a journey stage", |c| {
            self.stage_of_group(c, &identity::group_of(c, hcp)?, brand)
        })
    }

    fn journey_history(&self, hcp: &HcpId, brand: &str) -> StoreResult<Vec<JourneyTransition>> {
        self.read("read journey history", |c| {
            let mut all: Vec<JourneyTransition> = Vec::new();
            for n in identity::group_of(c, hcp)? {
                all.extend(history_of(c, n, brand)?);
            }
            // Each record's moves are in order; the group's by time.
            all.sort_by_key(|t| t.at);
            Ok(all)
        })
    }

    fn journey_brands(&self, hcp: &HcpId) -> StoreResult<Vec<String>> {
        self.read("read journey brands", |c| {
            let mut brands: Vec<String> = Vec::new();
            for n in identity::group_of(c, hcp)? {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT brand FROM journey_stage WHERE hcp_num = ?1 ORDER BY brand",
                    )
                    .during(OP)?;
                let rows = stmt.query_map([n], |r| r.get(0)).during(OP)?;
                for b in rows {
                    brands.push(b.during(OP)?);
                }
            }
            brands.sort();
            brands.dedup();
            Ok(brands)
        })
    }

    fn set_journey_stage(
        &self,
        actor: &str,
        hcp: &HcpId,
        brand: &str,
        stage: &str,
        reason: &str,
    ) -> StoreResult<()> {
        if self.journey.rank(stage).is_none() {
            return Err(StoreError::InvalidInput(format!(
                "unknown journey stage `{stage}` (expected one of: {})",
                self.journey.ladder.join(", ")
            )));
        }
        if brand.trim().is_empty() {
            return Err(StoreError::InvalidInput(
                "the brand must not be empty".into(),
            ));
        }
        self.write("set a journey stage", |tx, audit| {
            let n = hcp::num(tx, hcp)
                .during(OP)?
                .ok_or_else(|| StoreError::UnknownHcp(hcp.clone()))?;
            let from = current(tx, n, brand).during(OP)?;
            if from.as_deref() == Some(stage) {
                return Ok(());
            }
            let cause = format!("manual: {reason}");
            let m = Move {
                hcp,
                hcp_num: n,
                brand,
                from: from.as_deref(),
                to: stage,
                cause: &cause,
                event: None,
            };
            move_to(tx, audit, actor, &m)
        })
    }
}

impl SqliteStore {
    /// The stage of an identity group (`group`) for `brand`: the furthest
    /// any of its records reached.
    pub(crate) fn stage_of_group(
        &self,
        c: &Connection,
        group: &[i64],
        brand: &str,
    ) -> StoreResult<Option<String>> {
        let mut best: Option<String> = None;
        for &n in group {
            if let Some(stage) = current(c, n, brand).during(OP)? {
                let better = match &best {
                    None => true,
                    Some(b) => self.journey.rank(&stage) > self.journey.rank(b),
                };
                if better {
                    best = Some(stage);
                }
            }
        }
        Ok(best)
    }
}
