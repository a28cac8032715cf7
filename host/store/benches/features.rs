//! Reading one HCP's derived features, with many HCPs stored.
//!
//! `cargo bench -p omnigate-store --bench features` uses 10,000 HCPs;
//! `OMNIGATE_BENCH_HCPS=1000000` the figure of record (set-up takes a few
//! minutes: 1M profiles and 3M events). `OMNIGATE_BENCH_DIR` keeps the
//! database between runs.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "common/mod.rs"]
mod common;

use std::cell::Cell;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use omnigate_core::store::{EventStore, HcpStore};
use omnigate_store::{SqliteStore, StoreOptions};

fn setup(n: usize) -> (Option<tempfile::TempDir>, SqliteStore) {
    let (tmp, dir) = match std::env::var("OMNIGATE_BENCH_DIR") {
        Ok(d) => (
            None,
            std::path::PathBuf::from(d).join(format!("features-{n}")),
        ),
        Err(_) => {
            let t = tempfile::tempdir().unwrap();
            let d = t.path().to_owned();
            (Some(t), d)
        }
    };
    let store = SqliteStore::open(StoreOptions::new(&dir)).unwrap();
    if store.hcp_count().unwrap() as usize >= n {
        return (tmp, store);
    }
    let t = Instant::now();
    for start in (0..n).step_by(10_000) {
        let chunk: Vec<_> = (start..(start + 10_000).min(n))
            .map(common::profile)
            .collect();
        store.upsert_profiles("bench", &chunk).unwrap();
    }
    let events = 3 * n as u64;
    for start in (0..events).step_by(10_000) {
        let batch: Vec<_> = (start..(start + 10_000).min(events))
            .map(|i| common::event(i, n))
            .collect();
        store.ingest("bench", "setup", &batch).unwrap();
    }
    eprintln!(
        "set-up: {n} HCPs and {events} events in {:.1?}",
        t.elapsed()
    );
    // Reopened, so that no fold runs in the background while reads are
    // measured (the fold thread would compete for the CPU): a store at
    // rest. Opening folds whatever the last folds left.
    drop(store);
    let store = SqliteStore::open(StoreOptions::new(&dir)).unwrap();
    (tmp, store)
}

fn features(c: &mut Criterion) {
    let n = common::hcps(10_000);
    let (_tmp, store) = setup(n);
    let i = Cell::new(0usize);
    c.bench_function(&format!("features/one_hcp_of_{n}"), |b| {
        b.iter(|| {
            // A different HCP each time, spread over the id space.
            let k = i.get().wrapping_mul(2_654_435_761) % n;
            i.set(i.get() + 1);
            store.features(&common::hcp_id(k), common::NOW).unwrap()
        });
    });
}

criterion_group!(benches, features);
criterion_main!(benches);
