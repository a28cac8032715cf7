//! Gate decisions and the dispatch ledger (see `omnigate_core::ledger`).

use std::collections::HashMap;

use omnigate_core::audit::{NewAuditEntry, decision_commitment};
use omnigate_core::canonical::canonical_json_of;
use omnigate_core::content::{ContentState, VersionHash};
use omnigate_core::hcp::HcpId;
use omnigate_core::ledger::{
    CancelScope, Contact, DecisionFilter, DecisionRecord, DispatchRecord, DispatchState,
    FactsQuery, GateFacts, GateFactsStore, LedgerStore, NewDispatch, Outcome, RecordReport,
    SealedDecision, StateChange,
};
use omnigate_core::store::ConsentQuery;
use omnigate_core::store::{StoreError, StoreResult};
use rusqlite::{Connection, OptionalExtension, Transaction, params, params_from_iter};
use serde_json::json;

use crate::audit::AuditWriter;
use crate::db::{During, SqliteStore, corrupt};
use crate::{hcp, hot, identity};

/// Most decisions one listing returns.
pub const MAX_LISTING: usize = 1000;

const DISPATCH_COLUMNS: &str = "d.id, d.idempotency_key, d.campaign, h.id, d.channel, d.purpose, \
     d.market, d.product, d.version, d.decision, d.planned_at, d.text_sha256, d.state, d.detail, \
     d.updated_at";

fn row_to_dispatch(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoreResult<DispatchRecord>> {
    const OP: &str = "read a dispatch";
    let hcp: String = r.get(3)?;
    let channel: String = r.get(4)?;
    let purpose: String = r.get(5)?;
    let state: String = r.get(12)?;
    let version: String = r.get(8)?;
    let base = (
        r.get::<_, String>(0)?,
        r.get::<_, String>(1)?,
        r.get::<_, Option<String>>(2)?,
        r.get::<_, String>(6)?,
        r.get::<_, Option<String>>(7)?,
        r.get::<_, String>(9)?,
        r.get::<_, i64>(10)?,
        r.get::<_, String>(11)?,
        r.get::<_, Option<String>>(13)?,
        r.get::<_, i64>(14)?,
    );
    Ok((|| {
        let (id, key, campaign, market, product, decision, planned_at, text, detail, updated) =
            base;
        Ok(DispatchRecord {
            dispatch: NewDispatch {
                id,
                idempotency_key: key,
                campaign,
                hcp: HcpId::new(hcp.as_str()).map_err(|_| corrupt(OP, "HCP id", &hcp))?,
                channel: channel
                    .parse()
                    .map_err(|_| corrupt(OP, "channel", &channel))?,
                purpose: purpose
                    .parse()
                    .map_err(|_| corrupt(OP, "purpose", &purpose))?,
                market,
                product,
                version: omnigate_core::content::VersionHash(version),
                decision,
                planned_at,
                text_sha256: text,
            },
            state: state
                .parse()
                .map_err(|_| corrupt(OP, "dispatch state", &state))?,
            detail,
            updated_at: updated,
        })
    })())
}

fn parse_record(op: &'static str, json: &str) -> StoreResult<DecisionRecord> {
    serde_json::from_str(json).during(op)
}

/// Cancels queued dispatches inside a write transaction; used by withdrawal,
/// expiry and opt-out so that the cancellation commits with its cause.
pub(crate) fn cancel_in(
    tx: &Transaction<'_>,
    audit: &mut AuditWriter,
    actor: &str,
    scope: &CancelScope,
    reason: &str,
) -> StoreResult<Vec<String>> {
    const OP: &str = "cancel queued dispatches";
    let (sql, arg): (&str, Vec<rusqlite::types::Value>) = match scope {
        CancelScope::Version(v) => (
            "SELECT num, id FROM dispatch WHERE version = ?1 AND state = 'queued' ORDER BY num",
            vec![v.0.clone().into()],
        ),
        CancelScope::Campaign(c) => (
            "SELECT num, id FROM dispatch WHERE campaign = ?1 AND state = 'queued' ORDER BY num",
            vec![c.clone().into()],
        ),
        CancelScope::HcpChannel(h, ch) => {
            let group = identity::group_of(tx, h)?;
            let list = group
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            // The group is integers from the database, not input.
            let sql = format!(
                "SELECT num, id FROM dispatch WHERE hcp_num IN ({list}) AND channel = ?1 \
                 AND state = 'queued' ORDER BY num"
            );
            return cancel_rows(
                tx,
                audit,
                actor,
                &sql,
                vec![ch.as_str().to_owned().into()],
                scope,
                reason,
            );
        }
    };
    cancel_rows(tx, audit, actor, sql, arg, scope, reason).map_err(|e| match e {
        StoreError::Backend { message, .. } => StoreError::Backend { op: OP, message },
        other => other,
    })
}

fn cancel_rows(
    tx: &Transaction<'_>,
    audit: &mut AuditWriter,
    actor: &str,
    sql: &str,
    args: Vec<rusqlite::types::Value>,
    scope: &CancelScope,
    reason: &str,
) -> StoreResult<Vec<String>> {
    const OP: &str = "cancel queued dispatches";
    let rows: Vec<(i64, String)> = tx
        .prepare(sql)
        .and_then(|mut s| {
            s.query_map(params_from_iter(args), |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
        .during(OP)?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let now = audit.now();
    let mut upd = tx
        .prepare_cached(
            "UPDATE dispatch SET state = 'cancelled', detail = ?2, updated_at = ?3 WHERE num = ?1",
        )
        .during(OP)?;
    for (num, _) in &rows {
        upd.execute(params![num, reason, now]).during(OP)?;
    }
    let ids: Vec<String> = rows.into_iter().map(|(_, id)| id).collect();
    audit.append(
        tx,
        NewAuditEntry::new(
            actor,
            "dispatch.cancel",
            scope_subject(scope),
            json!({ "reason": reason, "dispatches": ids }),
        ),
    )?;
    Ok(ids)
}

fn scope_subject(scope: &CancelScope) -> String {
    match scope {
        CancelScope::Version(v) => format!("version:{v}"),
        CancelScope::HcpChannel(h, c) => format!("hcp:{h}:{c}"),
        CancelScope::Campaign(c) => format!("campaign:{c}"),
    }
}

fn hcp_num(c: &Connection, id: &HcpId) -> StoreResult<i64> {
    hcp::num(c, id)
        .during("look up an HCP")?
        .ok_or_else(|| StoreError::UnknownHcp(id.clone()))
}

impl LedgerStore for SqliteStore {
    fn record_decisions(
        &self,
        actor: &str,
        decisions: &[DecisionRecord],
        dispatches: &[NewDispatch],
    ) -> StoreResult<RecordReport> {
        // Serialized before the write transaction, not inside it.
        let texts: Vec<(String, String)> = decisions
            .iter()
            .map(|d| {
                let json = canonical_json_of(d).during(RECORD_OP)?;
                let commitment = decision_commitment(&json);
                Ok((json, commitment))
            })
            .collect::<StoreResult<_>>()?;
        let rows: Vec<DecisionRow<'_>> = decisions
            .iter()
            .zip(&texts)
            .map(|(d, (json, commitment))| (d, json.as_str(), commitment.as_str()))
            .collect();
        self.record_in(actor, &rows, dispatches)
    }

    fn record_sealed_decisions(
        &self,
        actor: &str,
        decisions: &[SealedDecision],
        dispatches: &[NewDispatch],
    ) -> StoreResult<RecordReport> {
        let rows: Vec<DecisionRow<'_>> = decisions
            .iter()
            .map(|d| (d.record(), d.json(), d.commitment()))
            .collect();
        self.record_in(actor, &rows, dispatches)
    }

    fn decision(&self, id: &str) -> StoreResult<Option<DecisionRecord>> {
        const OP: &str = "read a decision";
        self.read(OP, |c| {
            let json: Option<String> = c
                .prepare_cached("SELECT record FROM decision WHERE id = ?1")
                .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
                .during(OP)?;
            json.map(|j| parse_record(OP, &j)).transpose()
        })
    }

    fn decisions(&self, filter: &DecisionFilter) -> StoreResult<Vec<DecisionRecord>> {
        const OP: &str = "list decisions";
        self.read(OP, |c| {
            let mut sql = String::from("SELECT d.record FROM decision d");
            let mut args: Vec<rusqlite::types::Value> = Vec::new();
            let mut conds: Vec<String> = Vec::new();
            if let Some(rule) = &filter.rule {
                sql.push_str(" JOIN decision_rule r ON r.decision_num = d.num AND r.rule = ?");
                args.push(rule.clone().into());
            }
            if let Some(h) = &filter.hcp {
                let group = identity::group_of(c, h)?;
                conds.push(format!(
                    "d.hcp_num IN ({})",
                    group
                        .iter()
                        .map(i64::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                ));
            }
            if let Some(campaign) = &filter.campaign {
                conds.push("d.campaign = ?".into());
                args.push(campaign.clone().into());
            }
            if let Some(v) = filter.verdict {
                conds.push("d.verdict = ?".into());
                args.push(v.as_str().to_owned().into());
            }
            if let Some(before) = &filter.before {
                conds.push("d.num < (SELECT num FROM decision WHERE id = ?)".into());
                args.push(before.clone().into());
            }
            if !conds.is_empty() {
                sql.push_str(" WHERE ");
                sql.push_str(&conds.join(" AND "));
            }
            let limit = if filter.limit == 0 {
                100
            } else {
                filter.limit.min(MAX_LISTING)
            };
            sql.push_str(&format!(" ORDER BY d.num DESC LIMIT {limit}"));
            let rows: Vec<String> = c
                .prepare(&sql)
                .and_then(|mut s| s.query_map(params_from_iter(args), |r| r.get(0))?.collect())
                .during(OP)?;
            rows.iter().map(|j| parse_record(OP, j)).collect()
        })
    }

    fn dispatch(&self, id: &str) -> StoreResult<Option<DispatchRecord>> {
        self.read(DISPATCH_OP, |c| dispatch_in(c, id))
    }

    fn dispatch_by_key(&self, key: &str) -> StoreResult<Option<DispatchRecord>> {
        self.read(DISPATCH_OP, |c| dispatch_by_key_in(c, key))
    }

    fn set_dispatch_state(
        &self,
        actor: &str,
        id: &str,
        from: &[DispatchState],
        to: DispatchState,
        detail: Option<&str>,
    ) -> StoreResult<bool> {
        self.write(STATE_OP, |tx, audit| {
            set_state_in(tx, audit, actor, id, from, to, detail)
        })
    }

    fn set_dispatch_states(
        &self,
        actor: &str,
        changes: &[StateChange<'_>],
    ) -> StoreResult<Vec<bool>> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        // One transaction, one durable commit for the batch.
        self.write(STATE_OP, |tx, audit| {
            changes
                .iter()
                .map(|c| set_state_in(tx, audit, actor, c.id, c.from, c.to, c.detail))
                .collect()
        })
    }

    fn cancel_queued(
        &self,
        actor: &str,
        scope: &CancelScope,
        reason: &str,
    ) -> StoreResult<Vec<String>> {
        self.write("cancel queued dispatches", |tx, audit| {
            cancel_in(tx, audit, actor, scope, reason)
        })
    }

    fn contacts_since(&self, hcp_id: &HcpId, since: i64) -> StoreResult<Vec<Contact>> {
        self.read("read an HCP's contacts", |c| contacts_in(c, hcp_id, since))
    }
}

impl SqliteStore {
    /// Stores decisions (each with its canonical JSON) and enters the
    /// allowed dispatches, in one transaction.
    fn record_in(
        &self,
        actor: &str,
        decisions: &[DecisionRow<'_>],
        dispatches: &[NewDispatch],
    ) -> StoreResult<RecordReport> {
        const OP: &str = RECORD_OP;
        for d in dispatches {
            let allowed = decisions
                .iter()
                .find(|(r, _, _)| r.id == d.decision)
                .map(|(r, _, _)| r.verdict == omnigate_core::ledger::Verdict::Allow);
            if allowed == Some(false) {
                return Err(StoreError::InvalidInput(format!(
                    "dispatch `{}` refers to decision `{}`, which blocked it",
                    d.id, d.decision
                )));
            }
        }
        self.write(OP, |tx, audit| {
            let mut report = RecordReport::default();
            // A batch names the same HCPs in its decisions and dispatches.
            let mut nums: HashMap<String, i64> = HashMap::new();
            let mut num_of = |tx: &Transaction<'_>, id: &HcpId| -> StoreResult<i64> {
                if let Some(&n) = nums.get(id.as_str()) {
                    return Ok(n);
                }
                let n = hcp_num(tx, id)?;
                nums.insert(id.as_str().to_owned(), n);
                Ok(n)
            };
            for &(d, record, commitment) in decisions {
                let num = num_of(tx, &d.hcp)?;
                tx.prepare_cached(
                    "INSERT INTO decision (id, at, dispatch, campaign, hcp_num, verdict, record)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        d.id,
                        d.at,
                        d.dispatch,
                        d.campaign,
                        num,
                        d.verdict.as_str(),
                        record
                    ])
                })
                .map_err(|e| match e {
                    rusqlite::Error::SqliteFailure(f, _)
                        if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                    {
                        StoreError::InvalidInput(format!("decision `{}` is already recorded", d.id))
                    }
                    other => StoreError::Backend {
                        op: OP,
                        message: other.to_string(),
                    },
                })?;
                let dnum = tx.last_insert_rowid();
                let mut rules: Vec<&str> = d
                    .rules
                    .iter()
                    .filter(|r| r.outcome != Outcome::Pass)
                    .map(|r| r.rule.as_str())
                    .collect();
                rules.sort_unstable();
                rules.dedup();
                for rule in rules {
                    tx.prepare_cached(
                        "INSERT INTO decision_rule (rule, decision_num) VALUES (?1, ?2)",
                    )
                    .and_then(|mut s| s.execute(params![rule, dnum]))
                    .during(OP)?;
                }
                // The audit entry commits to the record by its sha256; the
                // record itself is stored once, in its row (`audit verify`
                // checks the row against the entry).
                audit.append_canonical(
                    tx,
                    actor,
                    "gate.decision",
                    &d.id,
                    commitment.to_owned(),
                )?;
                report.decisions += 1;
            }
            for d in dispatches {
                let num = match num_of(tx, &d.hcp) {
                    Ok(n) => n,
                    // As before the insert below skipped its look-up: a key
                    // in the ledger already is reported, whatever its HCP.
                    Err(e) => {
                        let exists: Option<String> = tx
                            .prepare_cached("SELECT id FROM dispatch WHERE idempotency_key = ?1")
                            .and_then(|mut s| {
                                s.query_row([&d.idempotency_key], |r| r.get(0)).optional()
                            })
                            .during(OP)?;
                        if exists.is_none() {
                            return Err(e);
                        }
                        report.existing_keys.push(d.idempotency_key.clone());
                        continue;
                    }
                };
                // A key in the ledger already inserts nothing (one statement
                // instead of a look-up and an insert); any other conflict
                // is still an error.
                let inserted = tx
                    .prepare_cached(
                        "INSERT INTO dispatch (id, idempotency_key, campaign, hcp_num, channel, purpose,
                        market, product, version, decision, planned_at, text_sha256, state, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 'queued', ?13)
                     ON CONFLICT (idempotency_key) DO NOTHING",
                    )
                .and_then(|mut s| {
                    s.execute(params![
                        d.id,
                        d.idempotency_key,
                        d.campaign,
                        num,
                        d.channel.as_str(),
                        d.purpose.as_str(),
                        d.market,
                        d.product,
                        d.version.0,
                        d.decision,
                        d.planned_at,
                        d.text_sha256,
                        audit.now()
                    ])
                })
                .map_err(|e| match e {
                    rusqlite::Error::SqliteFailure(f, _)
                        if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                    {
                        StoreError::InvalidInput(format!(
                            "dispatch `{}` is already in the ledger, or its decision `{}` is not recorded",
                            d.id, d.decision
                        ))
                    }
                    other => StoreError::Backend {
                        op: OP,
                        message: other.to_string(),
                    },
                })?;
                if inserted == 0 {
                    report.existing_keys.push(d.idempotency_key.clone());
                    continue;
                }
                audit.append(
                    tx,
                    NewAuditEntry::new(
                        actor,
                        "dispatch.queue",
                        &d.id,
                        serde_json::to_value(d).during(OP)?,
                    ),
                )?;
                report.dispatches += 1;
            }
            Ok(report)
        })
    }
}

const RECORD_OP: &str = "record gate decisions";

/// A decision to store: the record, its canonical JSON and what its audit
/// entry commits to.
type DecisionRow<'a> = (&'a DecisionRecord, &'a str, &'a str);

const DISPATCH_OP: &str = "read a dispatch";

/// The dispatch with this id, inside a read.
pub(crate) fn dispatch_in(c: &Connection, id: &str) -> StoreResult<Option<DispatchRecord>> {
    c.prepare_cached(&format!(
        "SELECT {DISPATCH_COLUMNS} FROM dispatch d JOIN hcp h ON h.num = d.hcp_num WHERE d.id = ?1"
    ))
    .and_then(|mut s| s.query_row([id], row_to_dispatch).optional())
    .during(DISPATCH_OP)?
    .transpose()
}

/// The dispatch with this idempotency key, inside a read.
pub(crate) fn dispatch_by_key_in(c: &Connection, key: &str) -> StoreResult<Option<DispatchRecord>> {
    c.prepare_cached(&format!(
        "SELECT {DISPATCH_COLUMNS} FROM dispatch d JOIN hcp h ON h.num = d.hcp_num \
         WHERE d.idempotency_key = ?1"
    ))
    .and_then(|mut s| s.query_row([key], row_to_dispatch).optional())
    .during(DISPATCH_OP)?
    .transpose()
}

const STATE_OP: &str = "change a dispatch's state";

/// Moves dispatch `id` to `to` if it is in one of `from`, inside a write
/// transaction, with its audit entry; returns whether it moved.
fn set_state_in(
    tx: &Transaction<'_>,
    audit: &mut AuditWriter,
    actor: &str,
    id: &str,
    from: &[DispatchState],
    to: DispatchState,
    detail: Option<&str>,
) -> StoreResult<bool> {
    const OP: &str = STATE_OP;
    // The usual case, one state to move from (queued -> sending, sending ->
    // sent): one conditional UPDATE. Only when it moves nothing is the row
    // read, to tell an unknown dispatch from one in another state.
    if let [only] = from
        && move_state(tx, audit, actor, id, *only, to, detail)?
    {
        return Ok(true);
    }
    let state: Option<String> = tx
        .prepare_cached("SELECT state FROM dispatch WHERE id = ?1")
        .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
        .during(OP)?;
    let Some(state) = state else {
        return Err(StoreError::InvalidInput(format!("unknown dispatch `{id}`")));
    };
    let current: DispatchState = state
        .parse()
        .map_err(|_| corrupt(OP, "dispatch state", &state))?;
    if !from.contains(&current) {
        return Ok(false);
    }
    move_state(tx, audit, actor, id, current, to, detail)
}

/// Moves dispatch `id` from `current` to `to` if it is in `current`, with
/// its audit entry; returns whether it moved.
fn move_state(
    tx: &Transaction<'_>,
    audit: &mut AuditWriter,
    actor: &str,
    id: &str,
    current: DispatchState,
    to: DispatchState,
    detail: Option<&str>,
) -> StoreResult<bool> {
    let moved = tx
        .prepare_cached(
            "UPDATE dispatch SET state = ?2, detail = ?3, updated_at = ?4
             WHERE id = ?1 AND state = ?5",
        )
        .and_then(|mut s| {
            s.execute(params![
                id,
                to.as_str(),
                detail,
                audit.now(),
                current.as_str()
            ])
        })
        .map_err(|e| {
            StoreError::InvalidInput(format!(
                "dispatch `{id}` cannot go from {} to {}: {e}",
                current.as_str(),
                to.as_str()
            ))
        })?;
    if moved == 0 {
        return Ok(false);
    }
    audit.append(
        tx,
        NewAuditEntry::new(
            actor,
            format!("dispatch.{}", to.as_str()),
            id,
            json!({ "from": current.as_str(), "detail": detail }),
        ),
    )?;
    Ok(true)
}

/// The contacts of `hcp_id`'s merge group since `since`, inside a read.
fn contacts_in(c: &Connection, hcp_id: &HcpId, since: i64) -> StoreResult<Vec<Contact>> {
    let group = identity::group_of(c, hcp_id)?;
    contacts_in_group(c, &group, since)
}

/// [`contacts_in`] for a merge group read already.
fn contacts_in_group(c: &Connection, group: &[i64], since: i64) -> StoreResult<Vec<Contact>> {
    const OP: &str = "read an HCP's contacts";
    let mut out = Vec::new();
    let mut stmt = c
        .prepare_cached(
            "SELECT planned_at, channel, campaign, id FROM dispatch
             WHERE hcp_num = ?1 AND planned_at >= ?2
               AND (state = 'queued' OR state = 'sending' OR state = 'sent')",
            // (Not `state IN (...)`: SQLite builds a temporary table for a
            // constant IN list at every run of the statement.)
        )
        .during(OP)?;
    for &num in group {
        let rows = stmt
            .query_map(params![num, since], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .during(OP)?;
        for row in rows {
            let (at, channel, campaign, id) = row.during(OP)?;
            out.push(Contact {
                at,
                channel: channel
                    .parse()
                    .map_err(|_| corrupt(OP, "channel", &channel))?,
                campaign,
                dispatch: Some(id),
            });
        }
    }
    out.sort_by_key(|c| c.at);
    Ok(out)
}

impl GateFactsStore for SqliteStore {
    fn gate_facts(&self, q: &FactsQuery) -> StoreResult<GateFacts> {
        const OP: &str = "read the gate's facts";
        // One read transaction: every fact from the same snapshot.
        self.read(OP, |c| {
            // The first read of the transaction starts its snapshot: taken
            // while the hot tier is held, as for any features read (see
            // `hot_view`).
            let tier = self.hot();
            let group = match identity::group_of(c, &q.hcp) {
                Ok(g) => Some(g),
                Err(StoreError::UnknownHcp(_)) => None,
                Err(e) => return Err(e),
            };
            let view = match (&group, q.features_at) {
                (Some(g), Some(_)) => Some(tier.view(g, hot::marks(c).during(OP)?)),
                _ => None,
            };
            drop(tier);
            let profile = match &group {
                Some(_) => hcp::load(c, &q.hcp)?,
                None => None,
            };
            // The version's state and, when the item is known, the item's
            // latest approved version: one statement, one row either way.
            let (version_state, latest_approved): (Option<String>, Option<String>) = c
                .prepare_cached(
                    "SELECT (SELECT state FROM content_version INDEXED BY content_version_state
                             WHERE hash = ?1),
                            (SELECT hash FROM content_version INDEXED BY content_version_item_state
                             WHERE ?2 IS NOT NULL AND item_id = ?2
                               AND (state = 'approved' OR state = 'expired' OR state = 'withdrawn')
                             ORDER BY created_at DESC, hash DESC LIMIT 1)",
                )
                .and_then(|mut s| {
                    s.query_row(params![q.version.0, q.item], |r| Ok((r.get(0)?, r.get(1)?)))
                })
                .during(OP)?;
            let version_state = version_state
                .map(|s| {
                    ContentState::ALL
                        .into_iter()
                        .find(|k| k.as_str() == s)
                        .ok_or_else(|| corrupt(OP, "content state", &s))
                })
                .transpose()?;
            let latest_approved = latest_approved.map(VersionHash);
            let (consent, contacts, features) = match (&profile, group) {
                (Some(p), Some(group)) => {
                    // One merge-group lookup serves consent, contacts and
                    // features.
                    let consent = match &q.consent {
                        None => None,
                        Some((market, channel, purpose, product)) => {
                            crate::consent::deciding_in_group(
                                c,
                                &ConsentQuery {
                                    hcp: q.hcp.clone(),
                                    channel: *channel,
                                    purpose: *purpose,
                                    market: market.clone().unwrap_or_else(|| p.market.clone()),
                                    product: product.clone(),
                                },
                                &group,
                            )?
                        }
                    };
                    let contacts = contacts_in_group(c, &group, q.contacts_since)?;
                    let features = match (view, q.features_at) {
                        (Some(view), Some(at)) => {
                            Some(crate::events::features_of_group(c, &group, view, at)?)
                        }
                        _ => None,
                    };
                    (consent, contacts, features)
                }
                _ => (None, Vec::new(), None),
            };
            Ok(GateFacts {
                profile,
                version_state,
                latest_approved,
                consent,
                contacts,
                features,
            })
        })
    }
}
