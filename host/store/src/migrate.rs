//! Schema migrations: SQL files in `host/store/migrations/`, compiled in,
//! applied in order, each in its own transaction.
//!
//! The applied version is SQLite's `PRAGMA user_version` (one header read at
//! open); `schema_migration` records what was applied, when, and its sha256,
//! so a migration edited after release is caught instead of silently
//! diverging between databases.

use std::path::Path;

use omnigate_core::canonical::sha256_hex;
use omnigate_core::event::now_millis;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::db::OpenError;

/// One migration.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Its version, from 1, without gaps.
    pub version: i64,
    /// Its file name.
    pub name: &'static str,
    /// Its SQL.
    pub sql: &'static str,
    /// It edits the stored schema text (`PRAGMA writable_schema`): then the
    /// schema version is bumped after it, so that every connection reads
    /// the schema again, and the result is checked.
    pub rewrites_schema: bool,
}

/// Every migration this build knows, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_hcp_consent_events.sql",
        sql: include_str!("../migrations/0001_hcp_consent_events.sql"),
        rewrites_schema: false,
    },
    Migration {
        version: 2,
        name: "0002_audit_log.sql",
        sql: include_str!("../migrations/0002_audit_log.sql"),
        rewrites_schema: false,
    },
    Migration {
        version: 3,
        name: "0003_content_registry.sql",
        sql: include_str!("../migrations/0003_content_registry.sql"),
        rewrites_schema: false,
    },
    Migration {
        version: 4,
        name: "0004_journey.sql",
        sql: include_str!("../migrations/0004_journey.sql"),
        rewrites_schema: false,
    },
    Migration {
        version: 5,
        name: "0005_identity_merge.sql",
        sql: include_str!("../migrations/0005_identity_merge.sql"),
        rewrites_schema: false,
    },
    Migration {
        version: 6,
        name: "0006_gate_ledger.sql",
        sql: include_str!("../migrations/0006_gate_ledger.sql"),
        rewrites_schema: false,
    },
    Migration {
        version: 7,
        name: "0007_content_prescreen.sql",
        sql: include_str!("../migrations/0007_content_prescreen.sql"),
        rewrites_schema: false,
    },
    Migration {
        version: 8,
        name: "0008_event_log.sql",
        sql: include_str!("../migrations/0008_event_log.sql"),
        rewrites_schema: false,
    },
    Migration {
        version: 9,
        name: "0009_campaigns.sql",
        sql: include_str!("../migrations/0009_campaigns.sql"),
        rewrites_schema: false,
    },
    Migration {
        version: 10,
        name: "0010_folds_file.sql",
        sql: include_str!("../migrations/0010_folds_file.sql"),
        rewrites_schema: false,
    },
    Migration {
        version: 11,
        name: "0011_campaign_arbitration.sql",
        sql: include_str!("../migrations/0011_campaign_arbitration.sql"),
        rewrites_schema: false,
    },
    Migration {
        version: 12,
        name: "0012_journeys.sql",
        sql: include_str!("../migrations/0012_journeys.sql"),
        rewrites_schema: false,
    },
    Migration {
        version: 13,
        name: "0013_content_state_index.sql",
        sql: include_str!("../migrations/0013_content_state_index.sql"),
        rewrites_schema: false,
    },
    Migration {
        version: 14,
        name: "0014_checks_without_in_lists.sql",
        sql: include_str!("../migrations/0014_checks_without_in_lists.sql"),
        rewrites_schema: true,
    },
];

pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), OpenError> {
    apply(conn, path, MIGRATIONS)
}

/// Applies `migrations` (the first ones of [`MIGRATIONS`]) that are not
/// applied yet.
fn apply(conn: &mut Connection, path: &Path, migrations: &[Migration]) -> Result<(), OpenError> {
    let sqlite = |source| OpenError::Sqlite {
        path: path.to_owned(),
        source,
    };
    let known = MIGRATIONS.len() as i64;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migration (
             version INTEGER PRIMARY KEY, name TEXT NOT NULL,
             sha256 TEXT NOT NULL, applied_at INTEGER NOT NULL)",
    )
    .map_err(sqlite)?;
    for m in migrations {
        // IMMEDIATE takes the write lock first, so two processes opening the
        // same new file apply each migration once.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite)?;
        let version: i64 = tx
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(sqlite)?;
        if version > known {
            return Err(OpenError::TooNew {
                path: path.to_owned(),
                found: version,
                known,
            });
        }
        let built_in = sha256_hex(m.sql.as_bytes());
        if version >= m.version {
            let applied: Option<String> = tx
                .query_row(
                    "SELECT sha256 FROM schema_migration WHERE version = ?1",
                    [m.version],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sqlite)?;
            match applied {
                Some(applied) if applied != built_in => {
                    return Err(OpenError::MigrationChanged {
                        path: path.to_owned(),
                        name: m.name.to_owned(),
                        applied,
                        built_in,
                    });
                }
                _ => continue,
            }
        }
        tx.execute_batch(m.sql).map_err(sqlite)?;
        if m.rewrites_schema {
            let schema: i64 = tx
                .pragma_query_value(None, "schema_version", |r| r.get(0))
                .map_err(sqlite)?;
            tx.pragma_update(None, "schema_version", schema + 1)
                .map_err(sqlite)?;
            if let Some((name, list)) = constant_in_list(&tx).map_err(sqlite)? {
                return Err(OpenError::Migration {
                    path: path.to_owned(),
                    name: m.name.to_owned(),
                    message: format!(
                        "`{name}` still tests a list of constants ({list}); the schema is not the one this migration expects"
                    ),
                });
            }
        }
        tx.execute(
            "INSERT INTO schema_migration (version, name, sha256, applied_at) VALUES (?1, ?2, ?3, ?4)",
            params![m.version, m.name, built_in, now_millis()],
        )
        .map_err(sqlite)?;
        tx.pragma_update(None, "user_version", m.version)
            .map_err(sqlite)?;
        tx.commit().map_err(sqlite)?;
    }
    Ok(())
}

/// A table or trigger in the schema whose SQL tests `x IN (...)` against
/// more than two constants, with that list: SQLite builds a temporary table
/// for such a test at every run (see migration 0014).
pub(crate) fn constant_in_list(c: &Connection) -> rusqlite::Result<Option<(String, String)>> {
    let mut stmt = c.prepare(
        "SELECT name, sql FROM sqlite_schema WHERE type IN ('table', 'trigger') AND sql IS NOT NULL",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    for row in rows {
        let (name, sql) = row?;
        if let Some(list) = long_constant_list(&sql) {
            return Ok(Some((name, list.to_owned())));
        }
    }
    Ok(None)
}

/// The first `IN (<constants>)` of `sql` with more than two items.
fn long_constant_list(sql: &str) -> Option<&str> {
    let mut rest = sql;
    while let Some(at) = rest.find(" IN") {
        let after = &rest[at + 3..];
        // ` IN (` or ` IN` and a line break, not ` INTEGER`.
        let spaced = after.starts_with('(') || after.starts_with(char::is_whitespace);
        if spaced
            && let Some(body) = after.trim_start().strip_prefix('(')
            && let Some(end) = body.find(')')
        {
            let list = &body[..end];
            let constants = !list.to_ascii_uppercase().contains("SELECT");
            if constants && list.matches(',').count() >= 2 {
                return Some(list);
            }
        }
        rest = after;
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test")]

    use super::*;

    fn open(dir: &Path) -> Connection {
        let c = Connection::open(dir.join("t.db")).unwrap();
        c.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        c
    }

    #[test]
    fn a_list_of_more_than_two_constants_is_found() {
        assert_eq!(
            long_constant_list("CHECK (state IN ('a', 'b', 'c'))"),
            Some("'a', 'b', 'c'")
        );
        assert_eq!(
            long_constant_list("CHECK (state IN\n   ('a', 'b', 'c'))"),
            Some("'a', 'b', 'c'")
        );
        assert_eq!(long_constant_list("CHECK (verdict IN ('a', 'b'))"), None);
        assert_eq!(
            long_constant_list("num INTEGER, x IN (SELECT a, b, c FROM t)"),
            None
        );
        assert_eq!(
            long_constant_list("id INTEGER PRIMARY KEY, INDEX (a, b, c)"),
            None
        );
    }

    #[test]
    fn the_schema_tests_no_list_of_constants_in_a_check_or_trigger() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = open(dir.path());
        apply(&mut c, dir.path(), MIGRATIONS).unwrap();
        assert_eq!(constant_in_list(&c).unwrap(), None);
        // Before migration 14 there were some: the check can fail.
        let dir = tempfile::tempdir().unwrap();
        let mut c = open(dir.path());
        apply(&mut c, dir.path(), &MIGRATIONS[..13]).unwrap();
        assert!(constant_in_list(&c).unwrap().is_some());
    }

    /// A database of the schema before migration 14, with rows in the
    /// tables it changes: the rows stay, and the constraints still hold.
    #[test]
    fn rewriting_the_checks_keeps_the_rows_and_the_constraints() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = open(dir.path());
        apply(&mut c, dir.path(), &MIGRATIONS[..13]).unwrap();
        c.execute_batch(
            "INSERT INTO hcp (num, id, market, doc, updated_at) VALUES (1, 'h1', 'US', '{}', 0);
             INSERT INTO consent (hcp_id, channel, purpose, market, product, status, source,
                                  recorded_at, recorded_by)
                 VALUES ('h1', 'email', 'promotional', 'US', '', 'opt-in', 'web-form', 0, 'r');
             INSERT INTO decision (num, id, at, dispatch, hcp_num, verdict, record)
                 VALUES (1, 'x1', 0, 'd1', 1, 'allow', '{}');
             INSERT INTO dispatch (id, idempotency_key, hcp_num, channel, purpose, market,
                                   version, decision, planned_at, text_sha256, state, updated_at)
                 VALUES ('d1', 'k1', 1, 'email', 'promotional', 'US', 'v', 'x1', 0, 's',
                         'queued', 0);",
        )
        .unwrap();
        let before: i64 = c
            .pragma_query_value(None, "schema_version", |r| r.get(0))
            .unwrap();
        apply(&mut c, dir.path(), MIGRATIONS).unwrap();
        let after: i64 = c
            .pragma_query_value(None, "schema_version", |r| r.get(0))
            .unwrap();
        assert!(after > before);
        let count = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
        assert_eq!(count("SELECT count(*) FROM consent"), 1);
        assert_eq!(
            count("SELECT count(*) FROM dispatch WHERE state = 'queued'"),
            1
        );
        let ok: String = c
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
        // The same constraints: an unknown state or status is refused, a
        // state does not go back, a legal move passes.
        let refused = |sql: &str| {
            let e = c.execute(sql, []).unwrap_err().to_string();
            assert!(
                e.contains("CHECK constraint failed") || e.contains("cannot go back"),
                "{sql}: {e}"
            );
        };
        refused("UPDATE dispatch SET state = 'lost' WHERE id = 'd1'");
        refused(
            "INSERT INTO consent (hcp_id, channel, purpose, market, product, status, source,
                                  recorded_at, recorded_by)
                 VALUES ('h1', 'email', 'promotional', 'US', '', 'maybe', 'web-form', 0, 'r')",
        );
        c.execute("UPDATE dispatch SET state = 'sending' WHERE id = 'd1'", [])
            .unwrap();
        c.execute("UPDATE dispatch SET state = 'sent' WHERE id = 'd1'", [])
            .unwrap();
        refused("UPDATE dispatch SET state = 'queued' WHERE id = 'd1'");
    }
}
