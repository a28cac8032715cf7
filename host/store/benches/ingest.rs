//! Event ingest throughput with durability on (WAL, `synchronous=FULL`: one
//! WAL fsync per batch), into a store that already holds data: 100,000 HCPs
//! and 1,000,000 events by default.
//!
//! `cargo bench -p omnigate-store --bench ingest`
//!
//! First, the figure of record: `sustained/durable_batch_of_*` ingests
//! 2,000,000 events per batch size in a row and prints events per second of
//! wall time and per CPU-second, so that the work done every so many
//! batches (folds, checkpoints) counts in proportion. Then criterion's
//! groups: `ingest/durable_*` (wall time) and `ingest_cpu/*` (CPU time);
//! their samples are short, so a fold lands in few of them.
//!
//! CPU time is the on-CPU time of every thread of the process
//! (`/proc/self/task/*/schedstat`): the checkpoint and fold threads' work
//! counts. Making and freeing the events is the caller's work and is not
//! counted (the calling thread's CPU time while it does that; the store's
//! threads go on meanwhile, and theirs counts).
//! Event ids look like provider message ids (random hex), so the id index
//! gets random keys, as in production. Settings:
//!
//! - `OMNIGATE_BENCH_HCPS` (default 100,000) and `OMNIGATE_BENCH_EVENTS`
//!   (default 1,000,000): the HCPs and events stored before measuring;
//! - `OMNIGATE_BENCH_DIR=<dir>` keeps the database between runs (each run
//!   adds the events it measures);
//! - `OMNIGATE_BENCH_SUSTAINED=<n>` events per sustained run (0: none);
//!   `OMNIGATE_BENCH_NO_CRITERION=1` skips criterion's groups;
//! - `OMNIGATE_BENCH_FOLD=<n>` sets `StoreOptions::fold_events`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "common/mod.rs"]
mod common;

use std::cell::Cell;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use omnigate_core::NewEvent;
use omnigate_core::store::{EventStore, HcpStore};
use omnigate_store::{SqliteStore, StoreOptions};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Event `n` of the mix, with a random-looking id (a bijection of `n`).
fn event(n: u64, hcps: usize) -> NewEvent {
    let mut e = common::event(n, hcps);
    e.id = format!("evt-{:016x}", n.wrapping_mul(0xD6E8_FEB8_6659_FD93));
    e
}

fn batch(start: u64, size: u64, hcps: usize) -> Vec<NewEvent> {
    (start..start + size).map(|n| event(n, hcps)).collect()
}

fn db_size(store: &SqliteStore) -> f64 {
    let dir = store.path().parent().unwrap();
    let bytes: u64 = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    bytes as f64 / (1024.0 * 1024.0)
}

/// Opens (and fills, the first time) the store; returns it with the number
/// of events already stored, the next event number to use.
fn setup() -> (Option<tempfile::TempDir>, SqliteStore, usize, u64) {
    let hcps = env_or("OMNIGATE_BENCH_HCPS", 100_000) as usize;
    let events = env_or("OMNIGATE_BENCH_EVENTS", 1_000_000);
    let (tmp, dir) = match std::env::var("OMNIGATE_BENCH_DIR") {
        Ok(d) => (
            None,
            std::path::PathBuf::from(d).join(format!("ingest-{hcps}-{events}")),
        ),
        Err(_) => {
            let t = tempfile::tempdir().unwrap();
            let d = t.path().to_owned();
            (Some(t), d)
        }
    };
    let t = Instant::now();
    let mut options = StoreOptions::new(&dir);
    if let Ok(n) = std::env::var("OMNIGATE_BENCH_FOLD") {
        options.fold_events = n.parse().unwrap();
    }
    let store = SqliteStore::open(options).unwrap();
    eprintln!("open: {:.1?}", t.elapsed());
    let t = Instant::now();
    let have = store.hcp_count().unwrap() as usize;
    for start in (have..hcps).step_by(10_000) {
        let chunk: Vec<_> = (start..(start + 10_000).min(hcps))
            .map(common::profile)
            .collect();
        store.upsert_profiles("bench", &chunk).unwrap();
    }
    let stored = store.event_count().unwrap();
    for start in (stored..events).step_by(10_000) {
        let b = batch(start, 10_000.min(events - start), hcps);
        store
            .ingest("bench", &format!("setup-{start}"), &b)
            .unwrap();
    }
    let stored = store.event_count().unwrap();
    eprintln!(
        "set-up: {hcps} HCPs, {stored} events, {:.0} MiB on disk, in {:.1?}",
        db_size(&store),
        t.elapsed()
    );
    (tmp, store, hcps, stored)
}

fn ingest(c: &mut Criterion) {
    let (_tmp, store, hcps, stored) = setup();
    // Measured events are numbered from 2^40 + the events stored, so that a
    // kept database never sees a number twice: every measured event is new.
    let next = Cell::new((1 << 40) + stored);
    let take = |size: u64| {
        let start = next.get();
        next.set(start + size);
        (format!("bench-{start}"), batch(start, size, hcps))
    };
    // The figure of record: many batches in a row, so that the work done
    // every so many batches (folds, checkpoints) is counted in proportion.
    let sustained = env_or("OMNIGATE_BENCH_SUSTAINED", 2_000_000);
    for size in [1_000u64, 10_000] {
        if sustained == 0 {
            break;
        }
        let threads0 = thread_times();
        let (wall0, cpu0) = (Instant::now(), cpu_time());
        let (mut gen_wall, mut gen_cpu) = (Duration::ZERO, Duration::ZERO);
        let mut n = 0;
        while n < sustained {
            // The calling thread's CPU only: the store's threads go on
            // meanwhile, and their work counts.
            let (t, c) = (Instant::now(), thread_cpu_time());
            let (id, batch) = take(size);
            gen_wall += t.elapsed();
            gen_cpu += thread_cpu_time().saturating_sub(c);
            store.ingest("bench", &id, &batch).unwrap();
            // Freeing the caller's events is the caller's cost, as making
            // them was.
            let (t, c) = (Instant::now(), thread_cpu_time());
            drop(batch);
            gen_wall += t.elapsed();
            gen_cpu += thread_cpu_time().saturating_sub(c);
            n += size;
        }
        let wall = wall0.elapsed().saturating_sub(gen_wall).as_secs_f64();
        let cpu = cpu_time()
            .saturating_sub(cpu0)
            .saturating_sub(gen_cpu)
            .as_secs_f64();
        eprintln!(
            "sustained/durable_batch_of_{size}: {n} events, {wall:.2} s wall = {:.1}k events/s, \
             {cpu:.2} s CPU = {:.1}k events/CPU-s; now {} events, {:.0} MiB on disk",
            n as f64 / wall / 1e3,
            n as f64 / cpu / 1e3,
            store.event_count().unwrap(),
            db_size(&store)
        );
        // Per thread: on CPU, and runnable but waiting for a CPU (the
        // machine's other load), in seconds.
        let threads1 = thread_times();
        let mut line = format!(
            "  threads (CPU s / waiting for a CPU s; making and freeing the events took {:.2} s CPU):",
            gen_cpu.as_secs_f64()
        );
        for (name, (cpu, wait)) in &threads1 {
            let (c0, w0) = threads0.get(name).copied().unwrap_or_default();
            line += &format!(
                " {name} {:.2}/{:.2}",
                (cpu - c0) as f64 / 1e9,
                (wait - w0) as f64 / 1e9
            );
        }
        eprintln!("{line}");
    }
    if std::env::var_os("OMNIGATE_BENCH_NO_CRITERION").is_some() {
        return;
    }
    let mut group = c.benchmark_group("ingest");
    group
        .measurement_time(Duration::from_secs(10))
        .sample_size(20);
    for size in [1_000u64, 10_000] {
        group.throughput(Throughput::Elements(size));
        group.bench_function(format!("durable_batch_of_{size}"), |b| {
            b.iter_batched(
                || take(size),
                |(id, batch)| {
                    let r = store.ingest("bench", &id, &batch).unwrap();
                    assert_eq!(r.accepted as u64, size);
                    // Dropped by criterion, outside the measurement.
                    batch
                },
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
                    let (id, batch) = take(size);
                    let before = cpu_time();
                    store.ingest("bench", &id, &batch).unwrap();
                    spent += cpu_time().saturating_sub(before);
                }
                spent
            });
        });
    }
    group.finish();
    eprintln!(
        "after: {} events, {:.0} MiB on disk",
        store.event_count().unwrap(),
        db_size(&store)
    );
}

/// Per thread name: nanoseconds on CPU and waiting on a run queue
/// (`/proc/self/task/*/schedstat`, summed over threads of one name).
fn thread_times() -> std::collections::BTreeMap<String, (u64, u64)> {
    let mut out = std::collections::BTreeMap::new();
    for t in std::fs::read_dir("/proc/self/task").into_iter().flatten() {
        let Ok(t) = t else { continue };
        let name = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        let Ok(stat) = std::fs::read_to_string(t.path().join("schedstat")) else {
            continue;
        };
        let mut f = stat
            .split_whitespace()
            .map(|x| x.parse::<u64>().unwrap_or(0));
        let (cpu, wait) = (f.next().unwrap_or(0), f.next().unwrap_or(0));
        let e: &mut (u64, u64) = out.entry(name.trim().to_owned()).or_default();
        e.0 += cpu;
        e.1 += wait;
    }
    out
}

/// CPU time of the calling thread so far (`/proc/thread-self/schedstat`).
fn thread_cpu_time() -> Duration {
    let ns = std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

/// CPU time of this process so far: the on-CPU time of every live thread
/// (first field of `/proc/self/task/*/schedstat`, in nanoseconds), so a
/// background checkpointer's work is counted too.
fn cpu_time() -> Duration {
    let ns: u64 = std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .filter_map(|t| {
            let s = std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok()?;
            s.split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum();
    Duration::from_nanos(ns)
}

criterion_group!(benches, ingest);
criterion_main!(benches);
