//! Per-dispatch gate latency, consent and cap checks included, on a real
//! SQLite store: `cargo bench -p omnigate-gate --bench gate`.
//!
//! Builds a store with `OMNIGATE_BENCH_HCPS` HCPs (default 10,000), each
//! with an e-mail opt-in and one e-mail already in the ledger, one approved
//! e-mail of realistic size (subject, 2 KB text with ISI), then decides
//! `OMNIGATE_BENCH_DECISIONS` dispatches (default 20,000) for random HCPs
//! and prints percentiles. For comparison it also times screening alone on
//! the same rendered message, so the cost of the store reads shows.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    reason = "bench"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use omnigate_core::consent::{ConsentScope, ConsentSource, ConsentStatus, NewConsent, Purpose};
use omnigate_core::content::{Audience, ContentBody, ContentMetadata, NewPreScreen, ReviewRole};
use omnigate_core::ledger::LedgerStore;
use omnigate_core::store::{ConsentStore, ContentStore, HcpStore};
use omnigate_core::template::PersonalField;
use omnigate_core::{Channel, HcpId, HcpProfile, Store};
use omnigate_gate::{DispatchRequest, Gate};
use omnigate_policy::{Audience as PAudience, Context, PolicyHandle, load_dir};
use omnigate_store::{SqliteStore, StoreOptions};

const AFTERNOON: i64 = 1_795_550_400_000;
const DAY: i64 = 86_400_000;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pct(sorted: &[u128], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn report(name: &str, mut ns: Vec<u128>) {
    ns.sort_unstable();
    println!(
        "{name:<34} n={:<6} p50={:>7.1} us  p90={:>7.1} us  p99={:>7.1} us  max={:>8.1} us",
        ns.len(),
        pct(&ns, 0.5),
        pct(&ns, 0.9),
        pct(&ns, 0.99),
        pct(&ns, 1.0)
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing
    // useful either: run a tiny round then so the bench stays compiled.
    let quick = !std::env::args().any(|a| a == "--bench");
    let hcps = if quick {
        50
    } else {
        env("OMNIGATE_BENCH_HCPS", 10_000)
    };
    let decisions = if quick {
        50
    } else {
        env("OMNIGATE_BENCH_DECISIONS", 20_000)
    };
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(StoreOptions::new(dir.path().join("data"))).unwrap());
    let policy_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    let policy = Arc::new(PolicyHandle::new(load_dir(&policy_dir).unwrap()));

    let t = Instant::now();
    let ids: Vec<HcpId> = (0..hcps)
        .map(|i| HcpId::new(format!("npi-{i:010}")).unwrap())
        .collect();
    for chunk in ids.chunks(5_000) {
        let profiles: Vec<HcpProfile> = chunk
            .iter()
            .map(|id| {
                let mut p = HcpProfile::new(id.clone(), format!("Ada Li {}", id.as_str()), "US");
                p.time_zone = Some("America/New_York".into());
                p
            })
            .collect();
        store.upsert_profiles("bench", &profiles).unwrap();
        let consents: Vec<NewConsent> = chunk
            .iter()
            .map(|id| NewConsent {
                scope: ConsentScope {
                    hcp: id.clone(),
                    channel: Channel::Email,
                    purpose: Purpose::Promotional,
                    market: "US".into(),
                    product: None,
                },
                status: ConsentStatus::OptIn,
                source: ConsentSource::WebForm,
                recorded_at: AFTERNOON - 90 * DAY,
                recorded_by: "bench".into(),
            })
            .collect();
        store.record_consents("bench", &consents).unwrap();
    }
    let isi = "Important Safety Information: Cardiozen can cause fetal toxicity; discontinue when pregnancy is detected. Hypotension, hyperkalemia and renal impairment can occur. Monitor potassium and renal function periodically, especially in patients with heart failure or renal impairment. The most common adverse reactions in clinical trials were dizziness and headache. Please see full Prescribing Information.";
    let text = format!(
        "{{{{salutation}}}} {{{{name}}}},\n\nAt week 8, mean systolic blood pressure fell by 14.2 mmHg with Cardiozen 160 mg vs 5.1 mmHg with placebo (p<0.001) [1]. Blood pressure goal (<140/90 mmHg) was reached by 58.3% of patients at week 12 [2]. The recommended starting dose is 80 mg once daily; it may be increased to 160 mg after 2 weeks.\n\nJoin our webinar on managing resistant hypertension on 14 May at 7 pm ET.\n\n{isi}\n\n{isi}\n\nReferences: 1. Smith J, et al. Lancet 2021;397:1120-9. 2. Data on file.\n\nTo unsubscribe, click here."
    );
    let body = ContentBody {
        parts: BTreeMap::from([
            (
                "subject".into(),
                "New blood pressure data for Cardiozen".into(),
            ),
            ("preheader".into(), "Week-8 results from ZEN-1".into()),
            ("text".into(), text),
        ]),
        variants: BTreeMap::new(),
        personalization_fields: BTreeSet::from(["salutation".into(), "name".into()]),
        metadata: ContentMetadata {
            product: "cardiozen".into(),
            indications: BTreeSet::from(["hypertension".into()]),
            markets: BTreeSet::from(["US".into()]),
            channels: BTreeSet::from([Channel::Email]),
            audience: Audience::Hcp,
            claims: BTreeMap::new(),
            disclaimers: Vec::new(),
            isi: None,
            expires_at: None,
        },
    };
    let version = store.put_version("author", "cz-bp", &body).unwrap();
    let pre = NewPreScreen {
        policy_version: "bench".into(),
        report: serde_json::json!({}),
    };
    store.submit_for_review("author", &version, &pre).unwrap();
    for (who, role) in [
        ("m", ReviewRole::Medical),
        ("l", ReviewRole::Legal),
        ("r", ReviewRole::Regulatory),
    ] {
        store.sign_off(who, &version, role).unwrap();
    }
    let dyn_store: Arc<dyn Store> = store.clone();
    let gate = Gate::new(policy.clone(), dyn_store);
    let request = |i: usize, at: i64| DispatchRequest {
        dispatch_id: format!("d-{i}-{at}"),
        campaign: Some("bench".into()),
        hcp: ids[i % hcps].clone(),
        version: version.clone(),
        channel: Channel::Email,
        purpose: Purpose::Promotional,
        market: None,
        values: BTreeMap::from([(PersonalField::Salutation, "Dr.".to_owned())]),
        proposed: None,
        at,
    };
    // One e-mail per HCP already in the ledger, four days ago.
    for chunk in (0..hcps).collect::<Vec<_>>().chunks(2_000) {
        let mut recs = Vec::new();
        let mut disp = Vec::new();
        for &i in chunk {
            let d = gate.decide(&request(i, AFTERNOON - 4 * DAY));
            assert!(d.allowed(), "{:#?}", d.record.rules);
            disp.push(d.dispatch(&format!("seed-{i}")).unwrap());
            recs.push(d.record);
        }
        store.record_decisions("bench", &recs, &disp).unwrap();
    }
    println!(
        "set-up: {hcps} HCPs with consent and one ledger entry each in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // Random HCPs (a fixed LCG so runs compare).
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (x >> 33) as usize
    };
    for i in 0..200 {
        let _ = gate.decide(&request(next(), AFTERNOON + i));
    }
    let mut decide = Vec::with_capacity(decisions);
    let mut allowed = 0usize;
    for i in 0..decisions {
        let req = request(next(), AFTERNOON);
        let t = Instant::now();
        let d = gate.decide(&req);
        decide.push(t.elapsed().as_nanos());
        allowed += usize::from(d.allowed());
        if i == 0 {
            std::hint::black_box(&d);
        }
    }
    assert_eq!(allowed, decisions, "every bench dispatch should be allowed");
    report("gate decide (consent + caps + screen)", decide);

    // Each store read the gate makes, alone.
    {
        use omnigate_core::ledger::LedgerStore as _;
        use omnigate_core::store::{ConsentQuery, EventStore};
        let n = decisions.min(5_000);
        let mut t_profile = Vec::new();
        let mut t_state = Vec::new();
        let mut t_consent = Vec::new();
        let mut t_contacts = Vec::new();
        let mut t_features = Vec::new();
        for _ in 0..n {
            let id = &ids[next() % hcps];
            let t = Instant::now();
            std::hint::black_box(store.profile(id).unwrap());
            t_profile.push(t.elapsed().as_nanos());
            let t = Instant::now();
            std::hint::black_box(store.version_state(&version).unwrap());
            t_state.push(t.elapsed().as_nanos());
            let q = ConsentQuery {
                hcp: id.clone(),
                channel: Channel::Email,
                purpose: Purpose::Promotional,
                market: "US".into(),
                product: Some("cardiozen".into()),
            };
            let t = Instant::now();
            std::hint::black_box(store.deciding_consent(&q).unwrap());
            t_consent.push(t.elapsed().as_nanos());
            let t = Instant::now();
            std::hint::black_box(store.contacts_since(id, AFTERNOON - 30 * DAY).unwrap());
            t_contacts.push(t.elapsed().as_nanos());
            let t = Instant::now();
            std::hint::black_box(store.features(id, AFTERNOON).unwrap());
            t_features.push(t.elapsed().as_nanos());
        }
        report("  store: profile", t_profile);
        report("  store: version state", t_state);
        report("  store: deciding consent", t_consent);
        report("  store: contacts since", t_contacts);
        report("  store: features", t_features);
    }

    let rendered = gate.decide(&request(0, AFTERNOON)).rendered.unwrap();
    let message = rendered.message();
    let ctx = Context::new("US", Channel::Email, PAudience::Hcp).with_product("cardiozen");
    let p = policy.current().unwrap();
    let mut screen = Vec::with_capacity(decisions);
    for _ in 0..decisions {
        let t = Instant::now();
        std::hint::black_box(p.screen(&message, &ctx).unwrap());
        screen.push(t.elapsed().as_nanos());
    }
    report("screening alone (same message)", screen);
    let bytes: usize = rendered.parts.values().map(String::len).sum();
    println!(
        "message size: {bytes} bytes in {} parts",
        rendered.parts.len()
    );

    // Recording: decisions + ledger entries in batches of 500, durable.
    let batch = 500;
    let rounds = if quick { 1 } else { (decisions / batch).max(1) };
    let mut per = Vec::new();
    for r in 0..rounds {
        let mut recs = Vec::new();
        let mut disp = Vec::new();
        for j in 0..batch {
            let i = r * batch + j;
            let d = gate.decide(&request(i, AFTERNOON + 1));
            if let Some(n) = d.dispatch(&format!("rec-{i}")) {
                disp.push(n);
            }
            recs.push(d.record);
        }
        let t = Instant::now();
        store.record_decisions("bench", &recs, &disp).unwrap();
        per.push(t.elapsed().as_nanos() / batch as u128);
    }
    report("record decision + ledger (per item)", per);
}
