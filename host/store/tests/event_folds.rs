//! Events in the hot tier and folded into the tables read the same: folds
//! (often, here), reopening, a second store on the same file, and an
//! upgrade from the schema before the event log change nothing that
//! `ingest`, `events_of`, `event_count` or `features` show.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use omnigate_core::store::{AuditStore, EventStore, HcpStore, IdentityStore, JourneyStore};
use omnigate_core::{EngagementStats, Event, EventType, NewEvent};
use omnigate_store::{MIGRATIONS, SqliteStore, StoreOptions};
use serde_json::json;

fn store_at(dir: &std::path::Path, fold_events: usize) -> SqliteStore {
    let mut options = StoreOptions::new(dir);
    options.fold_events = fold_events;
    SqliteStore::open(options).unwrap()
}

/// Batch `b` of a mix over HCPs `h1`..`h5`: every kind of effect, content
/// versions, journey rule hits, and events replayed from earlier batches.
fn batch(b: i64) -> Vec<NewEvent> {
    const TYPES: [EventType; 8] = [
        EventType::EmailDelivered,
        EventType::EmailOpened,
        EventType::EmailClicked,
        EventType::RepVisit,
        EventType::WebinarAttended,
        EventType::WebVisit,
        EventType::ContentDownload,
        EventType::EmailBounced,
    ];
    let mut out = Vec::new();
    for i in 0..7 {
        let n = b * 7 + i;
        let t = TYPES[(n % 8) as usize];
        let mut e = event(
            &format!("e{n}"),
            &format!("h{}", 1 + n % 5),
            t,
            NOW - (n % 45) * DAY + n,
        );
        if e.attributes.contains_key("content_version") {
            e.attributes
                .insert("content_version".into(), json!(format!("v{}", n % 4)));
        }
        if t == EventType::EmailClicked || t == EventType::WebinarAttended {
            e.attributes.insert("brand".into(), json!("lipitex"));
            e.attributes.insert("topic".into(), json!("efficacy"));
        }
        out.push(e);
    }
    if b >= 2 {
        // A replay of an event two batches back (folded by now when folds
        // are frequent), and a duplicate within the batch.
        out.push(batch(b - 2)[3].clone());
        out.push(out[0].clone());
    }
    out
}

fn hcps() -> Vec<omnigate_core::HcpProfile> {
    (1..=5).map(|i| profile(&format!("h{i}"))).collect()
}

/// Everything the traits show about the events of HCPs `h1`..`h5`: the
/// event count, their timelines, their features at three moments, their
/// journey stages.
type Snapshot = (
    u64,
    Vec<Vec<Event>>,
    Vec<EngagementStats>,
    Vec<Option<String>>,
);

fn snapshot(s: &SqliteStore) -> Snapshot {
    let ids: Vec<_> = (1..=5).map(|i| id(&format!("h{i}"))).collect();
    let events = ids.iter().map(|h| s.events_of(h).unwrap()).collect();
    let mut features = Vec::new();
    for h in &ids {
        for now in [NOW - 20 * DAY, NOW, NOW + 2 * DAY] {
            features.push(s.features(h, now).unwrap());
        }
    }
    let stages = ids
        .iter()
        .map(|h| s.journey_stage(h, "lipitex").unwrap())
        .collect();
    (s.event_count().unwrap(), events, features, stages)
}

/// `received_at` differs between stores; the rest must not.
fn without_received_at(mut x: Snapshot) -> Snapshot {
    for e in x.1.iter_mut().flatten() {
        e.received_at = 0;
    }
    x
}

#[test]
fn frequent_folds_change_nothing_that_reads_show() {
    let never = tempfile::tempdir().unwrap();
    let often = tempfile::tempdir().unwrap();
    let a = store_at(never.path(), 1_000_000);
    let b = store_at(often.path(), 3);
    a.upsert_profiles("importer", &hcps()).unwrap();
    b.upsert_profiles("importer", &hcps()).unwrap();
    a.merge_hcps("steward", &id("h1"), &id("h2"), "same person")
        .unwrap();
    b.merge_hcps("steward", &id("h1"), &id("h2"), "same person")
        .unwrap();
    for n in 0..12 {
        let ra = a.ingest("esp", &format!("b{n}"), &batch(n)).unwrap();
        let rb = b.ingest("esp", &format!("b{n}"), &batch(n)).unwrap();
        assert_eq!(ra, rb, "batch {n}");
        if n >= 2 {
            assert_eq!(rb.duplicates, 2, "batch {n}");
        }
        assert_eq!(
            without_received_at(snapshot(&a)),
            without_received_at(snapshot(&b)),
            "after batch {n}"
        );
    }
    // The audit entries vouch for the same events.
    let payloads = |s: &SqliteStore| -> Vec<String> {
        s.audit_entries(1, 1000)
            .unwrap()
            .into_iter()
            .filter(|e| e.action == "events.ingest")
            .map(|e| e.payload)
            .collect()
    };
    assert_eq!(payloads(&a), payloads(&b));
    assert!(b.verify_audit().unwrap().is_intact());
    // And so does a reopened store, with everything folded.
    let before = snapshot(&b);
    drop(b);
    let b = store_at(often.path(), 3);
    assert_eq!(snapshot(&b), before);
}

#[test]
fn a_replay_after_a_fold_and_a_reopen_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = store_at(dir.path(), 2);
    s.upsert_profiles("importer", &hcps()).unwrap();
    for n in 0..4 {
        s.ingest("esp", &format!("b{n}"), &batch(n)).unwrap();
    }
    let audit = s.audit_entries(1, 1000).unwrap().len();
    let before = snapshot(&s);
    let replay = |s: &SqliteStore| {
        for n in 0..4 {
            let r = s.ingest("esp", &format!("b{n}"), &batch(n)).unwrap();
            assert_eq!(r.accepted, 0, "batch {n}");
        }
    };
    replay(&s);
    drop(s);
    let s = store_at(dir.path(), 2);
    replay(&s);
    assert_eq!(s.audit_entries(1, 1000).unwrap().len(), audit);
    assert_eq!(snapshot(&s), before);
}

#[test]
fn two_stores_on_one_file_see_and_respect_each_others_events() {
    let dir = tempfile::tempdir().unwrap();
    let a = store_at(dir.path(), 1_000_000);
    let b = store_at(dir.path(), 5);
    a.upsert_profiles("importer", &hcps()).unwrap();
    for n in 0..8 {
        let (writer, other) = if n % 2 == 0 { (&a, &b) } else { (&b, &a) };
        writer.ingest("esp", &format!("b{n}"), &batch(n)).unwrap();
        // The other one reads the new events, and refuses them again.
        assert_eq!(snapshot(other), snapshot(writer), "after batch {n}");
        assert_eq!(
            other
                .ingest("esp", &format!("b{n}"), &batch(n))
                .unwrap()
                .accepted,
            0
        );
    }
    let single = tempfile::tempdir().unwrap();
    let c = store_at(single.path(), 1_000_000);
    c.upsert_profiles("importer", &hcps()).unwrap();
    for n in 0..8 {
        c.ingest("esp", &format!("b{n}"), &batch(n)).unwrap();
    }
    assert_eq!(
        without_received_at(snapshot(&a)),
        without_received_at(snapshot(&c))
    );
}

#[test]
fn a_rejected_batch_leaves_the_hot_tier_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let s = store_at(dir.path(), 1_000_000);
    s.upsert_profiles("importer", &hcps()).unwrap();
    s.ingest("esp", "b0", &batch(0)).unwrap();
    let before = snapshot(&s);
    let mut bad = batch(1);
    bad.push(event("x1", "h404", EventType::RepVisit, NOW));
    assert!(s.ingest("esp", "b1", &bad).is_err());
    assert_eq!(snapshot(&s), before);
    // The events of the rejected batch are new afterwards.
    assert_eq!(s.ingest("esp", "b1", &batch(1)).unwrap().accepted, 7);
}

/// Creates a database as the build before the event log left it (schema
/// version 7), holding events and the features derived from them.
fn old_database(dir: &std::path::Path) {
    std::fs::create_dir_all(dir).unwrap();
    let c = rusqlite::Connection::open(dir.join("omnigate.db")).unwrap();
    c.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE schema_migration (version INTEGER PRIMARY KEY, name TEXT NOT NULL,
             sha256 TEXT NOT NULL, applied_at INTEGER NOT NULL);",
    )
    .unwrap();
    for m in &MIGRATIONS[..7] {
        c.execute_batch(m.sql).unwrap();
        c.execute(
            "INSERT INTO schema_migration VALUES (?1, ?2, ?3, 0)",
            rusqlite::params![
                m.version,
                m.name,
                omnigate_core::canonical::sha256_hex(m.sql.as_bytes())
            ],
        )
        .unwrap();
    }
    c.execute_batch("PRAGMA user_version = 7").unwrap();
    for i in 1..=5 {
        c.execute(
            "INSERT INTO hcp (num, id, market, doc, updated_at) VALUES (?1, ?2, 'US', '{}', 0)",
            rusqlite::params![i, format!("h{i}")],
        )
        .unwrap();
    }
    // Events of batches 0..6 as the old ingest stored them, with features
    // that are not what the events say: the upgrade rebuilds them.
    for n in 0..6 {
        for e in batch(n) {
            let num: i64 = e.hcp.as_str()[1..].parse().unwrap();
            c.execute(
                "INSERT INTO event (id, hcp_num, type, channel, occurred_at, received_at, attributes, batch_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7) ON CONFLICT (id) DO NOTHING",
                rusqlite::params![
                    e.id,
                    num,
                    e.event_type.as_str(),
                    e.channel.as_str(),
                    e.occurred_at,
                    omnigate_core::canonical::map_to_canonical_json(&e.attributes),
                    format!("b{n}")
                ],
            )
            .unwrap();
        }
    }
    c.execute(
        "INSERT INTO feature_channel (hcp_num, channel, sends, ring) VALUES (1, 'email', 99, x'')",
        [],
    )
    .unwrap();
}

#[test]
fn an_old_database_is_upgraded_with_its_events_and_their_features_rebuilt() {
    let old = tempfile::tempdir().unwrap();
    old_database(old.path());
    let upgraded = store_at(old.path(), 10);
    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh = store_at(fresh_dir.path(), 1_000_000);
    fresh
        .upsert_profiles(
            "importer",
            &(1..=5)
                .map(|i| omnigate_core::HcpProfile::new(id(&format!("h{i}")), "x", "US"))
                .collect::<Vec<_>>(),
        )
        .unwrap();
    for n in 0..6 {
        fresh.ingest("esp", &format!("b{n}"), &batch(n)).unwrap();
    }
    let (count, events, features, _) = snapshot(&upgraded);
    let (fresh_count, fresh_events, fresh_features, _) = without_received_at(snapshot(&fresh));
    assert_eq!(count, fresh_count);
    assert_eq!(features, fresh_features);
    let events: Vec<Vec<Event>> = events
        .into_iter()
        .map(|es| {
            es.into_iter()
                .map(|mut e| {
                    assert_eq!(e.received_at, 1);
                    e.received_at = 0;
                    e
                })
                .collect()
        })
        .collect();
    assert_eq!(events, fresh_events);
    // Events stored before the upgrade are still duplicates.
    assert_eq!(upgraded.ingest("esp", "b5", &batch(5)).unwrap().accepted, 0);
    assert_eq!(upgraded.ingest("esp", "b6", &batch(6)).unwrap().accepted, 7);
}

#[test]
fn the_folds_file_is_a_cache_that_is_rebuilt_when_missing_or_foreign() {
    let dir = tempfile::tempdir().unwrap();
    let s = store_at(dir.path(), 5);
    s.upsert_profiles("importer", &hcps()).unwrap();
    for n in 0..8 {
        s.ingest("esp", &format!("b{n}"), &batch(n)).unwrap();
    }
    let before = snapshot(&s);
    let folds = s.folds_path().to_owned();
    drop(s);
    let remove = |path: &std::path::Path| {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    };
    // Deleted: rebuilt from the log, replays still refused.
    remove(&folds);
    let s = store_at(dir.path(), 5);
    assert_eq!(snapshot(&s), before);
    assert_eq!(s.ingest("esp", "b7", &batch(7)).unwrap().accepted, 0);
    drop(s);
    // Another log's: emptied and rebuilt.
    let other = tempfile::tempdir().unwrap();
    let o = store_at(other.path(), 2);
    o.upsert_profiles("importer", &hcps()).unwrap();
    for n in 20..30 {
        o.ingest("esp", &format!("b{n}"), &batch(n)).unwrap();
    }
    let foreign = o.folds_path().to_owned();
    drop(o);
    remove(&folds);
    std::fs::copy(&foreign, &folds).unwrap();
    let s = store_at(dir.path(), 5);
    assert_eq!(snapshot(&s), before);
    assert_eq!(s.ingest("esp", "b7", &batch(7)).unwrap().accepted, 0);
}
