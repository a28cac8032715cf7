//! The audit chain against a tamperer with direct access to the file, and
//! the migrations.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use omnigate_core::EventType;
use omnigate_core::audit::ChainProblem;
use omnigate_core::store::{AuditStore, EventStore};
use omnigate_store::{MIGRATIONS, OpenError, SqliteStore, StoreOptions};

/// A store with 5 audit entries: 3 profile inserts, 2 ingests.
fn five_entries() -> TestStore {
    let s = with_hcps(3);
    s.ingest(
        "esp",
        "b1",
        &[event("e1", "h1", EventType::EmailDelivered, NOW)],
    )
    .unwrap();
    s.ingest(
        "esp",
        "b2",
        &[event("e2", "h2", EventType::EmailDelivered, NOW)],
    )
    .unwrap();
    assert_eq!(s.verify_audit().unwrap().entries, 5);
    s
}

/// What a tamperer does first: the triggers would stop them otherwise.
fn drop_guards(raw: &rusqlite::Connection) {
    raw.execute_batch("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;")
        .unwrap();
}

#[test]
fn an_intact_chain_verifies_and_reports_its_head() {
    let s = five_entries();
    let report = s.verify_audit().unwrap();
    assert!(report.is_intact());
    let head = report.head.unwrap();
    assert_eq!(head.seq, 5);
    assert_eq!(head.hash, s.audit_entries(5, 1).unwrap()[0].hash);
}

#[test]
fn the_audit_table_refuses_updates_and_deletes() {
    let s = five_entries();
    let raw = s.raw();
    let err = raw
        .execute(
            "UPDATE audit_log SET actor = 'someone-else' WHERE seq = 2",
            [],
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("audit entries are append-only"),
        "{err}"
    );
    let err = raw
        .execute("DELETE FROM audit_log WHERE seq = 5", [])
        .unwrap_err();
    assert!(
        err.to_string().contains("audit entries are append-only"),
        "{err}"
    );
    assert!(s.verify_audit().unwrap().is_intact());
}

#[test]
fn an_edited_payload_is_caught_at_its_entry() {
    let s = five_entries();
    let raw = s.raw();
    drop_guards(&raw);
    raw.execute("UPDATE audit_log SET payload = replace(payload, '\"accepted\":1', '\"accepted\":0') WHERE seq = 4", [])
        .unwrap();
    let broken = s.verify_audit().unwrap().broken.unwrap();
    assert_eq!(broken.seq, 4);
    assert!(
        matches!(broken.problem, ChainProblem::HashMismatch { .. }),
        "{broken}"
    );
    assert!(
        broken
            .to_string()
            .starts_with("audit chain broken at entry 4: content does not match its hash")
    );
}

#[test]
fn an_edit_that_also_rewrites_the_hash_is_caught_at_the_next_entry() {
    let s = five_entries();
    let raw = s.raw();
    drop_guards(&raw);
    raw.execute(
        "UPDATE audit_log SET actor = 'mallory', hash = 'ff' || substr(hash, 3) WHERE seq = 2",
        [],
    )
    .unwrap();
    let broken = s.verify_audit().unwrap().broken.unwrap();
    assert_eq!(broken.seq, 2); // its own hash no longer matches either
    // Recomputing entry 2's hash properly moves the break to entry 3.
    let e = &s.audit_entries(2, 1).unwrap()[0];
    let fixed = omnigate_core::audit::entry_hash(
        &e.prev_hash,
        e.seq,
        e.at,
        &e.actor,
        &e.action,
        &e.subject,
        &e.payload,
    );
    raw.execute("UPDATE audit_log SET hash = ?1 WHERE seq = 2", [&fixed])
        .unwrap();
    let broken = s.verify_audit().unwrap().broken.unwrap();
    assert_eq!(broken.seq, 3);
    assert!(
        matches!(broken.problem, ChainProblem::PrevHashMismatch { .. }),
        "{broken}"
    );
}

#[test]
fn a_deleted_entry_is_caught_at_the_entry_after_it() {
    let s = five_entries();
    let raw = s.raw();
    drop_guards(&raw);
    raw.execute("DELETE FROM audit_log WHERE seq = 3", [])
        .unwrap();
    let report = s.verify_audit().unwrap();
    let broken = report.broken.unwrap();
    assert_eq!(broken.seq, 4);
    assert_eq!(
        broken.problem,
        ChainProblem::SeqGap {
            expected: 3,
            found: 4
        }
    );
    assert_eq!(report.entries, 2);
}

#[test]
fn reordered_entries_are_caught_at_the_first_moved_one() {
    let s = five_entries();
    let raw = s.raw();
    drop_guards(&raw);
    // Swap the contents of entries 2 and 3, keeping seq in place.
    raw.execute_batch(
        "UPDATE audit_log SET seq = -2 WHERE seq = 2;
         UPDATE audit_log SET seq = 2 WHERE seq = 3;
         UPDATE audit_log SET seq = 3 WHERE seq = -2;",
    )
    .unwrap();
    let broken = s.verify_audit().unwrap().broken.unwrap();
    assert_eq!(broken.seq, 2);
    assert!(
        matches!(broken.problem, ChainProblem::PrevHashMismatch { .. }),
        "{broken}"
    );
}

#[test]
fn a_cut_off_tail_is_caught_by_comparing_with_a_head_kept_elsewhere() {
    let s = five_entries();
    let kept = s.verify_audit().unwrap().head.unwrap();
    let raw = s.raw();
    drop_guards(&raw);
    raw.execute("DELETE FROM audit_log WHERE seq = 5", [])
        .unwrap();
    let report = s.verify_audit().unwrap();
    assert!(report.is_intact(), "a shorter chain is still a chain");
    assert_ne!(report.head.unwrap(), kept);
}

#[test]
fn writing_after_a_reopen_continues_the_same_chain() {
    let s = five_entries().reopen();
    s.ingest(
        "esp",
        "b3",
        &[event("e3", "h3", EventType::EmailDelivered, NOW)],
    )
    .unwrap();
    let report = s.verify_audit().unwrap();
    assert!(report.is_intact());
    assert_eq!(report.entries, 6);
}

#[test]
fn opening_creates_the_data_directory_and_applies_every_migration_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested/data");
    let store = SqliteStore::open(StoreOptions::new(&data)).unwrap();
    assert!(data.join("omnigate.db").exists());
    drop(store);
    let store = SqliteStore::open(StoreOptions::new(&data)).unwrap();
    let raw = rusqlite::Connection::open(store.path()).unwrap();
    let version: i64 = raw
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, MIGRATIONS.len() as i64);
    let applied: i64 = raw
        .query_row("SELECT count(*) FROM schema_migration", [], |r| r.get(0))
        .unwrap();
    assert_eq!(applied, MIGRATIONS.len() as i64);
    let mode: String = raw
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_database_from_a_newer_build_is_refused() {
    let s = open();
    s.raw().execute_batch("PRAGMA user_version = 99").unwrap();
    let dir = s.dir;
    drop(s.store);
    let err = SqliteStore::open(StoreOptions::new(dir.path().join("data"))).unwrap_err();
    assert!(matches!(err, OpenError::TooNew { found: 99, .. }));
    assert!(
        err.to_string().contains(&format!(
            "schema version 99, newer than this build knows ({})",
            MIGRATIONS.len()
        )),
        "{err}"
    );
}

#[test]
fn a_migration_changed_after_it_was_applied_is_refused() {
    let s = open();
    s.raw()
        .execute(
            "UPDATE schema_migration SET sha256 = 'abc' WHERE version = 2",
            [],
        )
        .unwrap();
    let dir = s.dir;
    drop(s.store);
    let err = SqliteStore::open(StoreOptions::new(dir.path().join("data"))).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("migration `0002_audit_log.sql` in database"),
        "{err}"
    );
}

#[test]
fn an_unusable_data_directory_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("occupied");
    std::fs::write(&file, b"not a directory").unwrap();
    let err = SqliteStore::open(StoreOptions::new(file.join("data"))).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot create data directory `"),
        "{err}"
    );
}
