//! Loading HCP profiles with one consent record each, in batches of 10,000:
//! prints the time and the peak memory (VmHWM) of the process.
//!
//! `cargo bench -p omnigate-store --bench load` loads 100,000;
//! `OMNIGATE_BENCH_HCPS=1000000` the figure of record.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "common/mod.rs"]
mod common;

use std::time::Instant;

use omnigate_core::store::{ConsentStore, HcpStore};
use omnigate_core::{Channel, ConsentScope, ConsentSource, ConsentStatus, NewConsent, Purpose};
use omnigate_store::{SqliteStore, StoreOptions};

fn main() {
    let n = common::hcps(100_000);
    let tmp = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(StoreOptions::new(tmp.path())).unwrap();
    let rss_before = common::peak_rss_mib().unwrap_or(0.0);

    let t = Instant::now();
    for start in (0..n).step_by(10_000) {
        let chunk: Vec<_> = (start..(start + 10_000).min(n))
            .map(common::profile)
            .collect();
        store.upsert_profiles("bench", &chunk).unwrap();
    }
    let profiles = t.elapsed();

    let t = Instant::now();
    for start in (0..n).step_by(10_000) {
        let chunk: Vec<_> = (start..(start + 10_000).min(n))
            .map(|i| NewConsent {
                scope: ConsentScope {
                    hcp: common::hcp_id(i),
                    channel: Channel::Email,
                    purpose: Purpose::Promotional,
                    market: if i.is_multiple_of(5) {
                        "CN".into()
                    } else {
                        "US".into()
                    },
                    product: None,
                },
                status: ConsentStatus::OptIn,
                source: ConsentSource::Import,
                recorded_at: common::NOW,
                recorded_by: "crm-import".into(),
            })
            .collect();
        store.record_consents("bench", &chunk).unwrap();
    }
    let consent = t.elapsed();

    let size: u64 = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    let total = profiles + consent;
    println!("load/{n}_hcps_with_consent");
    println!(
        "  profiles:   {profiles:.2?} ({:.0}/s)",
        n as f64 / profiles.as_secs_f64()
    );
    println!(
        "  consent:    {consent:.2?} ({:.0}/s)",
        n as f64 / consent.as_secs_f64()
    );
    println!("  total:      {total:.2?}");
    println!(
        "  peak RSS:   {:.0} MiB (VmHWM; {:.0} MiB before loading)",
        common::peak_rss_mib().unwrap_or(0.0),
        rss_before
    );
    println!(
        "  files:      {:.0} MiB on disk (database, WAL)",
        size as f64 / 1_048_576.0
    );
}
