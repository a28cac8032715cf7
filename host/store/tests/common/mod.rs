//! Helpers shared by the store's integration tests: real SQLite files in
//! temporary directories, never mocks.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use omnigate_core::event::DAY_MILLIS;
use omnigate_core::store::HcpStore;
use omnigate_core::{Channel, ContactDetails, EventType, HcpId, HcpProfile, NewEvent};
use omnigate_store::{SqliteStore, StoreOptions};
use serde_json::{Map, Value, json};
use tempfile::TempDir;

/// A fixed "now": 2026-11-23T12:00:00Z.
pub const NOW: i64 = 1_795_435_200_000;
/// One day in milliseconds.
pub const DAY: i64 = DAY_MILLIS;

pub struct TestStore {
    pub dir: TempDir,
    pub store: SqliteStore,
}

impl std::ops::Deref for TestStore {
    type Target = SqliteStore;
    fn deref(&self) -> &SqliteStore {
        &self.store
    }
}

impl TestStore {
    pub fn reopen(self) -> TestStore {
        let TestStore { dir, store } = self;
        drop(store);
        let store = SqliteStore::open(StoreOptions::new(dir.path().join("data"))).unwrap();
        TestStore { dir, store }
    }

    /// A second, raw connection to the same file, as a tamperer would use,
    /// with the folds file attached (its tables are named without schema).
    pub fn raw(&self) -> rusqlite::Connection {
        let c = rusqlite::Connection::open(self.store.path()).unwrap();
        c.execute(
            "ATTACH DATABASE ?1 AS folds",
            [self.store.folds_path().to_str().unwrap()],
        )
        .unwrap();
        c
    }
}

pub fn open() -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(StoreOptions::new(dir.path().join("data"))).unwrap();
    TestStore { dir, store }
}

pub fn id(s: &str) -> HcpId {
    HcpId::new(s).unwrap()
}

pub fn profile(hcp: &str) -> HcpProfile {
    let mut p = HcpProfile::new(id(hcp), format!("Dr. {hcp}"), "US");
    p.contact = ContactDetails {
        email: Some(format!("{hcp}@clinic.example")),
        phone: Some("+15550102030".into()),
        wechat_id: None,
    };
    p
}

/// A store holding HCPs `h1` to `h{n}`.
pub fn with_hcps(n: usize) -> TestStore {
    let s = open();
    let profiles: Vec<_> = (1..=n).map(|i| profile(&format!("h{i}"))).collect();
    s.upsert_profiles("importer", &profiles).unwrap();
    s
}

pub fn attrs(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// A valid event of type `t` with every required attribute filled in.
pub fn event(event_id: &str, hcp: &str, t: EventType, at: i64) -> NewEvent {
    let channel = t.channels().first().copied().unwrap_or(Channel::Web);
    let mut a = Map::new();
    for &name in t.required_attributes() {
        a.insert(name.into(), json!(format!("{name}-1")));
    }
    NewEvent {
        id: event_id.into(),
        hcp: id(hcp),
        event_type: t,
        channel,
        occurred_at: at,
        attributes: a,
    }
}

/// The same event naming a content version.
pub fn with_content(mut e: NewEvent, version: &str) -> NewEvent {
    e.attributes
        .insert("content_version".into(), json!(version));
    e
}

/// Counts rows of a table through a raw connection.
pub fn count(s: &TestStore, table: &str) -> i64 {
    s.raw()
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}
