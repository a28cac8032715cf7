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
}

/// Every migration this build knows, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_hcp_consent_events.sql",
        sql: include_str!("../migrations/0001_hcp_consent_events.sql"),
    },
    Migration {
        version: 2,
        name: "0002_audit_log.sql",
        sql: include_str!("../migrations/0002_audit_log.sql"),
    },
    Migration {
        version: 3,
        name: "0003_content_registry.sql",
        sql: include_str!("../migrations/0003_content_registry.sql"),
    },
    Migration {
        version: 4,
        name: "0004_journey.sql",
        sql: include_str!("../migrations/0004_journey.sql"),
    },
    Migration {
        version: 5,
        name: "0005_identity_merge.sql",
        sql: include_str!("../migrations/0005_identity_merge.sql"),
    },
    Migration {
        version: 6,
        name: "0006_gate_ledger.sql",
        sql: include_str!("../migrations/0006_gate_ledger.sql"),
    },
    Migration {
        version: 7,
        name: "0007_content_prescreen.sql",
        sql: include_str!("../migrations/0007_content_prescreen.sql"),
    },
    Migration {
        version: 8,
        name: "0008_event_log.sql",
        sql: include_str!("../migrations/0008_event_log.sql"),
    },
    Migration {
        version: 9,
        name: "0009_campaigns.sql",
        sql: include_str!("../migrations/0009_campaigns.sql"),
    },
    Migration {
        version: 10,
        name: "0010_folds_file.sql",
        sql: include_str!("../migrations/0010_folds_file.sql"),
    },
    Migration {
        version: 11,
        name: "0011_campaign_arbitration.sql",
        sql: include_str!("../migrations/0011_campaign_arbitration.sql"),
    },
    Migration {
        version: 12,
        name: "0012_journeys.sql",
        sql: include_str!("../migrations/0012_journeys.sql"),
    },
    Migration {
        version: 13,
        name: "0013_content_state_index.sql",
        sql: include_str!("../migrations/0013_content_state_index.sql"),
    },
];

pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), OpenError> {
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
    for m in MIGRATIONS {
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
