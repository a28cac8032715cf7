//! How fast an event reaches a journey, and how fast the journey's action
//! goes out, with the worker running as in `omnigate serve`.
//!
//! A real SQLite store with HCPs, consent and approved content; the real
//! gate over the repository's policies; the bundled e-mail adapter (a
//! compiled Wasm component) against a loopback provider. One journey: "a rep
//! visit -> the dosing e-mail at once". A producer stores visits in batches
//! at a steady rate while the worker runs on its own thread; at the end the
//! figures are read back from the store:
//!
//! - event stored -> journey fired (the action scheduled): p50, p99, max;
//! - event stored -> action settled (delivered by the provider, or
//!   suppressed by the gate): p50, p99, max;
//! - and a check that every HCP with e-mail consent got exactly one e-mail.
//!
//! `cargo xtask plugins && cargo bench -p omnigate-engine --bench journeys`
//! (`OMNIGATE_BENCH_EVENTS`, default 3,000; `OMNIGATE_BENCH_BATCH`, default
//! 50 events per batch, one batch every 100 ms).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "bench"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use omnigate_core::campaign::ActionSpec;
use omnigate_core::consent::Purpose;
use omnigate_core::event::now_millis;
use omnigate_core::journeys::{ActionState, JourneyAction, JourneyDefinition, JourneyId, Trigger};
use omnigate_core::{Channel, EventType, HcpId, NewEvent};
use omnigate_engine::{JourneyOptions, Journeys};

#[path = "../tests/common/mod.rs"]
mod common;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[i64], q: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    let events = env("OMNIGATE_BENCH_EVENTS", 3_000);
    let batch = env("OMNIGATE_BENCH_BATCH", 50).max(1);
    eprintln!("seeding {events} HCPs ...");
    let w = common::base(events);
    let store = w.dyn_store.clone();
    let journeys =
        Journeys::new(store.clone(), JourneyOptions::default()).with_sender(w.sender.clone());
    let id = JourneyId::new("visit-email").unwrap();
    journeys
        .create(
            "bench",
            &JourneyDefinition {
                id: id.clone(),
                name: "A visit -> the dosing e-mail".into(),
                product: "cardiozen".into(),
                market: "US".into(),
                purpose: Purpose::Promotional,
                when: Trigger {
                    event: EventType::RepVisit,
                    attributes: Default::default(),
                    count: 1,
                    within: None,
                    audience: None,
                },
                after: None,
                action: JourneyAction::Send {
                    options: vec![ActionSpec {
                        version: w.approved.clone(),
                        channels: vec![Channel::Email],
                        topics: Vec::new(),
                        stage: None,
                    }],
                    rationale: "followed up a visit".into(),
                    values: [(
                        omnigate_core::template::PersonalField::Salutation,
                        "Dr.".to_owned(),
                    )]
                    .into_iter()
                    .collect(),
                    expires: None,
                },
                unless: None,
                refire_after: None,
            },
        )
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let journeys = journeys.clone();
        let stop = stop.clone();
        let plugins = w.plugins.clone();
        std::thread::spawn(move || journeys.run(&|| plugins.clone(), &stop))
    };

    eprintln!("storing {events} visits, {batch} every 100 ms, the worker running ...");
    let started = Instant::now();
    let mut next = Instant::now();
    for (b, chunk) in (0..events).collect::<Vec<_>>().chunks(batch).enumerate() {
        let now = now_millis();
        let visits: Vec<NewEvent> = chunk
            .iter()
            .map(|i| NewEvent {
                id: format!("visit-{i}"),
                hcp: HcpId::new(format!("npi-{i:05}")).unwrap(),
                event_type: EventType::RepVisit,
                channel: Channel::RepVisit,
                occurred_at: now,
                attributes: [("rep_id".to_owned(), serde_json::Value::from("rep-1"))]
                    .into_iter()
                    .collect(),
            })
            .collect();
        store.ingest("crm", &format!("b{b}"), &visits).unwrap();
        next += Duration::from_millis(100);
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    let produced = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let c = store.journey_counts(&id, now_millis()).unwrap();
        let total: u64 = c.by_state.values().sum();
        let pending = c.by_state.get(&ActionState::Pending).copied().unwrap_or(0);
        if total as usize == events && pending == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the worker did not keep up: {c:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let drained = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    worker.join().unwrap();

    let actions = store.journey_actions(&id, None, events + 10).unwrap();
    assert_eq!(actions.len(), events, "one action per visit");
    let mut fired: Vec<i64> = actions
        .iter()
        .map(|a| a.action.fired_at - a.action.event_received_at)
        .collect();
    let mut settled: Vec<i64> = actions
        .iter()
        .map(|a| a.updated_at - a.action.event_received_at)
        .collect();
    fired.sort_unstable();
    settled.sort_unstable();
    let dispatched = actions
        .iter()
        .filter(|a| a.state == ActionState::Dispatched)
        .count();
    let per_hcp = w.sink.per_hcp();
    assert_eq!(
        per_hcp.len(),
        dispatched,
        "one e-mail per dispatched action"
    );
    assert!(per_hcp.values().all(|n| *n == 1), "nobody got two e-mails");
    // HCPs with e-mail consent: 3 in 5 (see the fixture).
    let consenting = (0..events).filter(|i| common::kind(*i) == "email").count();
    if let Some(a) = actions.iter().find(|a| {
        a.state != ActionState::Dispatched
            && common::kind(a.action.hcp.as_str()[4..].parse().unwrap()) == "email"
    }) {
        panic!(
            "a consenting HCP did not get the e-mail: {} {:?}",
            a.state, a.reasons
        );
    }
    assert_eq!(
        dispatched, consenting,
        "every consenting HCP got the e-mail"
    );

    println!(
        "journeys: {events} visits in {:.1} s ({:.0}/s), all settled {:.1} s after the first",
        produced.as_secs_f64(),
        events as f64 / produced.as_secs_f64(),
        drained.as_secs_f64()
    );
    println!(
        "  event stored -> journey fired:  p50 {} ms, p99 {} ms, max {} ms",
        percentile(&fired, 0.5),
        percentile(&fired, 0.99),
        fired.last().copied().unwrap_or(0)
    );
    println!(
        "  event stored -> action settled: p50 {} ms, p99 {} ms, max {} ms ({dispatched} e-mails delivered, {} suppressed by the gate)",
        percentile(&settled, 0.5),
        percentile(&settled, 0.99),
        settled.last().copied().unwrap_or(0),
        events - dispatched
    );
}
