//! Event ingest throughput with durability on (WAL, `synchronous=FULL`: one
//! WAL fsync per batch), into a store of 10,000 HCPs.
//!
//! `cargo bench -p omnigate-store --bench ingest`
//!
//! `ingest/durable_*` is wall time. `ingest_cpu/*` counts the CPU time the
//! process spent instead (from `/proc/self/schedstat`), which is what the
//! writer costs on a machine that is not shared.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "common/mod.rs"]
mod common;

use std::cell::Cell;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use omnigate_core::store::{EventStore, HcpStore};
use omnigate_store::{SqliteStore, StoreOptions};

const HCPS: usize = 10_000;

fn ingest(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(StoreOptions::new(dir.path())).unwrap();
    let profiles: Vec<_> = (0..HCPS).map(common::profile).collect();
    store.upsert_profiles("bench", &profiles).unwrap();
    let next = Cell::new(0u64);
    let mut group = c.benchmark_group("ingest");
    group
        .measurement_time(Duration::from_secs(10))
        .sample_size(20);
    for size in [1_000u64, 10_000] {
        group.throughput(Throughput::Elements(size));
        group.bench_function(format!("durable_batch_of_{size}"), |b| {
            b.iter_batched(
                || {
                    let start = next.get();
                    next.set(start + size);
                    (start..start + size)
                        .map(|n| common::event(n, HCPS))
                        .collect::<Vec<_>>()
                },
                |batch| store.ingest("bench", "b", &batch).unwrap(),
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();

    let mut group = c.benchmark_group("ingest_cpu");
    group
        .measurement_time(Duration::from_secs(10))
        .sample_size(20);
    for size in [1_000u64, 10_000] {
        group.throughput(Throughput::Elements(size));
        group.bench_function(format!("durable_batch_of_{size}"), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    let start = next.get();
                    next.set(start + size);
                    let batch: Vec<_> = (start..start + size)
                        .map(|n| common::event(n, HCPS))
                        .collect();
                    let before = cpu_time();
                    store.ingest("bench", "b", &batch).unwrap();
                    spent += cpu_time().saturating_sub(before);
                }
                spent
            });
        });
    }
    group.finish();
}

/// CPU time of this process so far (on-CPU time, first field of
/// `/proc/self/schedstat`, in nanoseconds).
fn cpu_time() -> Duration {
    let ns = std::fs::read_to_string("/proc/self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

criterion_group!(benches, ingest);
criterion_main!(benches);
