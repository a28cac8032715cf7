//! Appending to and verifying the hash-chained audit log.

use omnigate_core::audit::{
    AuditEntry, AuditHead, AuditReport, ChainBreak, ChainProblem, ChainVerifier, GENESIS_HASH,
    NewAuditEntry, decision_matches, entry_hash,
};
use omnigate_core::event::now_millis;
use omnigate_core::store::{AuditStore, StoreResult};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::db::{During, SqliteStore};

/// Appends entries inside one write transaction, chaining each to the last.
pub(crate) struct AuditWriter {
    head: Option<AuditHead>,
    at: i64,
}

impl AuditWriter {
    /// Reads the chain's head. Called after `BEGIN IMMEDIATE`, so no other
    /// writer can append until this transaction ends.
    pub(crate) fn at_head(tx: &Transaction<'_>) -> rusqlite::Result<Self> {
        let head = tx
            .prepare_cached("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")?
            .query_row([], |r| {
                Ok(AuditHead {
                    seq: r.get(0)?,
                    hash: r.get(1)?,
                })
            })
            .optional()?;
        Ok(AuditWriter {
            head,
            at: now_millis(),
        })
    }

    /// The time of this transaction's changes (one clock reading per
    /// transaction, so entries of one change share it).
    pub(crate) fn now(&self) -> i64 {
        self.at
    }

    /// Appends one entry.
    pub(crate) fn append(&mut self, tx: &Connection, entry: NewAuditEntry) -> StoreResult<()> {
        let e = entry.seal(self.head.as_ref(), self.at);
        self.insert(tx, e)
    }

    /// Appends one entry whose payload the caller has as canonical JSON
    /// text already (`omnigate_core::canonical`), so that it is not
    /// serialized twice. The entry is the one [`Self::append`] would write
    /// for the same payload: same stored bytes, same hash.
    pub(crate) fn append_canonical(
        &mut self,
        tx: &Connection,
        actor: &str,
        action: &str,
        subject: &str,
        payload: String,
    ) -> StoreResult<()> {
        let (seq, prev_hash) = match &self.head {
            Some(head) => (head.seq + 1, head.hash.clone()),
            None => (1, GENESIS_HASH.to_owned()),
        };
        let hash = entry_hash(&prev_hash, seq, self.at, actor, action, subject, &payload);
        let e = AuditEntry {
            seq,
            at: self.at,
            actor: actor.to_owned(),
            action: action.to_owned(),
            subject: subject.to_owned(),
            payload,
            prev_hash,
            hash,
        };
        self.insert(tx, e)
    }

    fn insert(&mut self, tx: &Connection, e: AuditEntry) -> StoreResult<()> {
        tx.prepare_cached(
            "INSERT INTO audit_log (seq, at, actor, action, subject, payload, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .and_then(|mut s| {
            s.execute(params![
                e.seq,
                e.at,
                e.actor,
                e.action,
                e.subject,
                e.payload,
                e.prev_hash,
                e.hash
            ])
        })
        .during("append to the audit log")?;
        self.head = Some(AuditHead {
            seq: e.seq,
            hash: e.hash,
        });
        Ok(())
    }
}

fn row_to_entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        seq: r.get(0)?,
        at: r.get(1)?,
        actor: r.get(2)?,
        action: r.get(3)?,
        subject: r.get(4)?,
        payload: r.get(5)?,
        prev_hash: r.get(6)?,
        hash: r.get(7)?,
    })
}

const SELECT: &str =
    "SELECT seq, at, actor, action, subject, payload, prev_hash, hash FROM audit_log";

/// Walks the whole chain in seq order on `conn`, stopping at the first
/// break; then, the chain intact, checks every gate decision's stored record
/// against the sha256 its entry committed to.
pub(crate) fn verify(conn: &Connection) -> rusqlite::Result<AuditReport> {
    let mut stmt = conn.prepare(&format!("{SELECT} ORDER BY seq"))?;
    let mut rows = stmt.query([])?;
    let mut v = ChainVerifier::new();
    while let Some(row) = rows.next()? {
        if !v.push(&row_to_entry(row)?) {
            break;
        }
    }
    let mut report = v.finish();
    if report.is_intact() {
        report.broken = check_decisions(conn)?;
    }
    Ok(report)
}

/// The first gate decision whose row does not match its audit entry, or
/// that has none.
fn check_decisions(conn: &Connection) -> rusqlite::Result<Option<ChainBreak>> {
    let mut stmt = conn.prepare(
        "SELECT d.id, d.record, a.seq, a.payload FROM decision d
         LEFT JOIN audit_log a ON a.subject = d.id AND a.action = 'gate.decision'
         ORDER BY d.num",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let decision: String = row.get(0)?;
        let record: String = row.get(1)?;
        let entry: Option<(i64, String)> = match row.get::<_, Option<i64>>(2)? {
            Some(seq) => Some((seq, row.get(3)?)),
            None => None,
        };
        let broken = |seq: i64, reason: &str| ChainBreak {
            seq,
            problem: ChainProblem::DecisionMismatch {
                decision: decision.clone(),
                reason: reason.to_owned(),
            },
        };
        match entry {
            None => return Ok(Some(broken(0, "it has no audit entry"))),
            Some((seq, payload)) if !decision_matches(&payload, &record) => {
                return Ok(Some(broken(
                    seq,
                    "its stored record is not the one its audit entry recorded",
                )));
            }
            Some(_) => {}
        }
    }
    Ok(None)
}

impl AuditStore for SqliteStore {
    fn audit_entries(&self, from: i64, limit: usize) -> StoreResult<Vec<AuditEntry>> {
        const OP: &str = "read audit entries";
        self.read(OP, |c| {
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let mut stmt = c
                .prepare_cached(&format!("{SELECT} WHERE seq >= ?1 ORDER BY seq LIMIT ?2"))
                .during(OP)?;
            let rows = stmt
                .query_map(params![from, limit], row_to_entry)
                .during(OP)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().during(OP)
        })
    }

    fn verify_audit(&self) -> StoreResult<AuditReport> {
        const OP: &str = "verify the audit log";
        self.read(OP, |c| verify(c).during(OP))
    }
}
