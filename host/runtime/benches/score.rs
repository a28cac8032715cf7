//! The bundled stage scorer's `score`, through the runtime with every limit
//! on, against the same call on a bare wasmtime setup (same engine features,
//! no epoch deadline, no resource limiter, no field scoping, one reused
//! instance).
//!
//! Run: `cargo xtask plugins && cargo bench -p omnigate-runtime --bench score`

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "benchmark"
)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use omnigate_core::{Channel, ChannelStats, EngagementStats, HcpSnapshot};
use omnigate_runtime::bindings::adapter::omnigate::plugin::config;
use omnigate_runtime::bindings::scorer::ScoringModel;
use omnigate_runtime::bindings::snapshot_to_wit;
use omnigate_runtime::scoring::{CampaignGoal, CandidateAction, ChannelPerformance, ScoreRequest};
use omnigate_runtime::types;
use omnigate_runtime::{Runtime, RuntimeConfig};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

fn packaged(file: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let path = target.join("plugins").join(file);
    assert!(
        path.exists(),
        "{} is missing: run `cargo xtask plugins`",
        path.display()
    );
    path
}

fn goal() -> CampaignGoal {
    CampaignGoal {
        product: "lipidex".into(),
        target_stage: "adoption".into(),
        stages: [
            "awareness",
            "interest",
            "consideration",
            "adoption",
            "advocacy",
        ]
        .map(String::from)
        .to_vec(),
    }
}

/// Six candidate actions: three contents on two channels.
fn candidates() -> Vec<CandidateAction> {
    let mut out = Vec::new();
    for (i, stage) in ["awareness", "interest", "consideration"]
        .iter()
        .enumerate()
    {
        for channel in [types::Channel::Email, types::Channel::RepVisit] {
            out.push(CandidateAction {
                action_id: format!("a{i}-{channel:?}"),
                content_version_id: format!("cv-{i}"),
                channel,
                topics: vec!["efficacy".into()],
                stage: Some((*stage).into()),
            });
        }
    }
    out
}

fn population() -> Vec<ChannelPerformance> {
    vec![
        ChannelPerformance {
            channel: types::Channel::Email,
            sends: 10_000,
            opens: 3_000,
            clicks: 400,
            progressions: 150,
        },
        ChannelPerformance {
            channel: types::Channel::RepVisit,
            sends: 2_000,
            opens: 0,
            clicks: 0,
            progressions: 120,
        },
    ]
}

fn hcp() -> HcpSnapshot {
    HcpSnapshot {
        id: "1234567890".into(),
        name: Some("Dr. Jane Doe".into()),
        specialty: Some("Cardiovascular Disease".into()),
        specialty_code: Some("207RC0000X".into()),
        journey_stage: Some("interest".into()),
        tags: Some(vec!["lipids".into()]),
        email: Some("jane@clinic.example".into()),
        engagement: Some(EngagementStats {
            touches_7d: 2,
            touches_30d: 5,
            channels: vec![ChannelStats {
                channel: Channel::Email,
                last_touch_at: Some(1_700_000_000),
                touches_7d: 2,
                touches_30d: 5,
                sends: 5,
                opens: 3,
                clicks: 1,
                attended: 0,
            }],
            content_seen: vec!["cv-0".into()],
        }),
        ..HcpSnapshot::default()
    }
}

/// The bare setup's store data: WASI with nothing granted, config from the
/// manifest, nothing else.
struct Bare {
    wasi: WasiCtx,
    table: ResourceTable,
    config: BTreeMap<String, String>,
}

impl WasiView for Bare {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl config::Host for Bare {
    fn get(&mut self, key: String) -> Option<String> {
        self.config.get(&key).cloned()
    }
}

fn bench(c: &mut Criterion) {
    let manifest = packaged("stage-scorer.toml");

    // Through the runtime: pooled instance, fresh epoch deadline, resource
    // limiter, field scoping and output checks on every call.
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let plugin = runtime.load(&manifest).unwrap();
    let snapshot = hcp();
    let mut group = c.benchmark_group("score (6 candidates)");
    group.bench_function("omnigate runtime, all limits on", |b| {
        b.iter(|| {
            plugin
                .score(&snapshot, candidates(), goal(), population())
                .unwrap()
                .unwrap()
        })
    });

    // Bare: the same engine features, no limits.
    let engine = Engine::new(Config::new().wasm_component_model(true)).unwrap();
    let component = Component::from_file(&engine, packaged("stage-scorer.wasm")).unwrap();
    let mut linker = Linker::<Bare>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
    config::add_to_linker::<Bare, HasSelf<Bare>>(&mut linker, |s| s).unwrap();
    let mut store = Store::new(
        &engine,
        Bare {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            config: plugin.manifest().config.clone(),
        },
    );
    let bindings = ScoringModel::instantiate(&mut store, &component, &linker).unwrap();
    // The same fields the manifest grants, converted once outside the loop.
    let wit_hcp = snapshot_to_wit(hcp().scoped_to(&plugin.manifest().hcp_fields));
    group.bench_function("bare wasmtime, no limits", |b| {
        b.iter(|| {
            let request = ScoreRequest {
                hcp: wit_hcp.clone(),
                candidates: candidates(),
                goal: goal(),
                population: population(),
            };
            bindings
                .omnigate_plugin_scoring()
                .call_score(&mut store, &request)
                .unwrap()
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
