//! One campaign over a large synthetic population, end to end.
//!
//! A real SQLite store with N HCPs (e-mail consent, approved content), the
//! real gate over the repository's policies, the bundled scoring model
//! (`stage-scorer`) and e-mail adapter (compiled Wasm components) against a
//! loopback provider. One campaign over everyone (10% holdout, one action:
//! the approved e-mail). Timed: resolving the audience (`Campaigns::start`)
//! and the run (`Campaigns::run`) to completion. Seeding is not timed.
//!
//! Prints decisions/s, members/s, the end-to-end time, the peak memory of
//! the process (VmHWM) and what the provider received; then checks the
//! outcome and panics if it is wrong: every member not held out dispatched,
//! and delivered exactly once at the provider; nobody in the holdout
//! reached; the audit chain intact. (A member whose scoring call ran past
//! the model's time limit, a stall on a loaded machine, is suppressed with
//! that reason and nothing is sent to it: counted and printed, not failed.)
//!
//! The provider runs in a child process (this binary again), so that the
//! figure of memory is the engine's: the loopback sink keeps every request
//! it received in memory.
//!
//! ```sh
//! cargo xtask plugins
//! cargo bench -p omnigate-engine --bench campaign                 # 100,000 HCPs
//! OMNIGATE_BENCH_HCPS=1000000 OMNIGATE_BENCH_DIR=/var/tmp/og-bench \
//!     cargo bench -p omnigate-engine --bench campaign             # the figure of record
//! ```
//!
//! - `OMNIGATE_BENCH_HCPS`: population (default 100,000).
//! - `OMNIGATE_BENCH_DIR`: keep the seeded store there (`seed-<N>/`) and
//!   run on a fresh copy of it (`run/`), so that repeated runs skip seeding.
//! - `OMNIGATE_BENCH_PAGE`: members per page (default: `RunOptions`').
//! - `OMNIGATE_BENCH_VERIFY=0`: skip verifying the audit chain at the end.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "bench"
)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use omnigate_core::campaign::{
    ActionSpec, CampaignCaps, CampaignDefinition, CampaignId, CampaignStore, Filter, Goal,
    MemberOutcome, ScoringSpec, SuggestionTiming,
};
use omnigate_core::consent::{ConsentScope, ConsentSource, ConsentStatus, NewConsent, Purpose};
use omnigate_core::content::{NewPreScreen, ReviewRole, VersionHash};
use omnigate_core::event::now_millis;
use omnigate_core::hcp::Specialty;
use omnigate_core::store::{AuditStore, ConsentStore, ContentStore, HcpStore};
use omnigate_core::template::PersonalField;
use omnigate_core::{Channel, HcpId, HcpProfile, Store};
use omnigate_engine::{Campaigns, GateInspector, RunEnd, RunOptions, Sender};
use omnigate_gate::Gate;
use omnigate_gate::egress::Clearance;
use omnigate_policy::{PolicyHandle, load_dir};
use omnigate_runtime::{Runtime, RuntimeConfig};
use omnigate_store::{SqliteStore, StoreOptions};

#[path = "../tests/common/mod.rs"]
mod common;

const CHILD: &str = "OMNIGATE_BENCH_SINK_CHILD";
const CHUNK: usize = 10_000;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

fn hcp_id(i: usize) -> HcpId {
    HcpId::new(format!("npi-{i:07}")).unwrap()
}

/// Seeds `n` HCPs with e-mail consent, and the approved content, in chunks
/// through the store's bulk APIs. Returns the approved version.
fn seed(store: &SqliteStore, n: usize, zone: &str) -> VersionHash {
    let t = Instant::now();
    for start in (0..n).step_by(CHUNK) {
        let end = (start + CHUNK).min(n);
        let profiles: Vec<HcpProfile> = (start..end)
            .map(|i| {
                let mut p = HcpProfile::new(hcp_id(i), format!("Ada Li {i}"), "US");
                p.time_zone = Some(zone.to_owned());
                p.specialty = Some(Specialty {
                    code: "207RC0000X".into(),
                    label: "Cardiovascular Disease".into(),
                });
                p.assigned_reps = vec![format!("rep-{}", i % 3000)];
                p.contact.email = Some(format!("ada{i}@hospital.example"));
                p
            })
            .collect();
        store.upsert_profiles("import", &profiles).unwrap();
        let consents: Vec<NewConsent> = (start..end)
            .map(|i| NewConsent {
                scope: ConsentScope {
                    hcp: hcp_id(i),
                    channel: Channel::Email,
                    purpose: Purpose::Promotional,
                    market: "US".into(),
                    product: None,
                },
                status: ConsentStatus::OptIn,
                source: ConsentSource::WebForm,
                recorded_at: now_millis() - 86_400_000,
                recorded_by: "rep".into(),
            })
            .collect();
        store.record_consents("import", &consents).unwrap();
        if end.is_multiple_of(100_000) || end == n {
            eprintln!("  seeded {end} HCPs ({:.0} s)", t.elapsed().as_secs_f64());
        }
    }
    let approved = store
        .put_version(
            "author",
            "cz",
            &common::body(
                "The recommended starting dose is 80 mg once daily.",
                &[Channel::Email],
            ),
        )
        .unwrap();
    let pre = NewPreScreen {
        policy_version: "bench".into(),
        report: serde_json::json!({}),
    };
    store.submit_for_review("author", &approved, &pre).unwrap();
    for (who, role) in [
        ("m", ReviewRole::Medical),
        ("l", ReviewRole::Legal),
        ("r", ReviewRole::Regulatory),
    ] {
        store.sign_off(who, &approved, role).unwrap();
    }
    approved
}

/// The local hour now in a fixed-offset zone `Etc/GMT[+-]N`.
fn local_hour(zone: &str) -> i64 {
    let utc = (now_millis() / 3_600_000) % 24;
    let offset: i64 = match zone.strip_prefix("Etc/GMT") {
        Some("") | None => 0,
        // Etc/GMT-N is UTC+N.
        Some(rest) => -rest.parse::<i64>().unwrap_or(0),
    };
    (utc + offset).rem_euclid(24)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// The data directory to run on, seeded; and the temporary directory that
/// holds it when `OMNIGATE_BENCH_DIR` is not set.
fn prepare(n: usize) -> (PathBuf, Option<tempfile::TempDir>) {
    let Some(root) = std::env::var_os("OMNIGATE_BENCH_DIR").map(PathBuf::from) else {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        eprintln!("seeding {n} HCPs into a temporary store ...");
        let store = SqliteStore::open(StoreOptions::new(&data)).unwrap();
        seed(&store, n, &common::midday_zone());
        return (data, Some(tmp));
    };
    // A seeded store is reused while its HCPs' zone is in working hours
    // (the policy's quiet hours would block every e-mail otherwise).
    let seeded = root.join(format!("seed-{n}"));
    let marker = seeded.join("zone");
    let usable = std::fs::read_to_string(&marker)
        .ok()
        .filter(|z| (9..=17).contains(&local_hour(z.trim())));
    if usable.is_none() {
        let _ = std::fs::remove_dir_all(&seeded);
        eprintln!("seeding {n} HCPs into {} ...", seeded.display());
        let zone = common::midday_zone();
        {
            let store = SqliteStore::open(StoreOptions::new(seeded.join("data"))).unwrap();
            seed(&store, n, &zone);
        }
        std::fs::write(&marker, &zone).unwrap();
    } else {
        eprintln!("reusing the seeded store in {}", seeded.display());
    }
    let run = root.join("run");
    let _ = std::fs::remove_dir_all(&run);
    copy_dir(&seeded.join("data"), &run.join("data"));
    (run.join("data"), None)
}

/// The loopback provider, in a child process: prints its endpoint, then on
/// `report <file>` writes `hcp count` lines and its peak memory, and exits.
fn sink_child() {
    let sink = omnigate_mailsink::MailSink::start().unwrap();
    println!("{}", sink.endpoint());
    std::io::stdout().flush().unwrap();
    let mut line = String::new();
    while std::io::stdin().read_line(&mut line).unwrap() > 0 {
        if let Some(path) = line.trim().strip_prefix("report ") {
            let mut out = String::new();
            for (hcp, count) in sink.per_hcp() {
                out.push_str(&format!("{hcp} {count}\n"));
            }
            std::fs::write(path, out).unwrap();
            println!("{:.0} {}", peak_rss_mib(), sink.requests());
            std::io::stdout().flush().unwrap();
            return;
        }
        line.clear();
    }
}

struct Provider {
    child: Child,
    out: BufReader<std::process::ChildStdout>,
    endpoint: String,
}

impl Provider {
    fn start() -> Provider {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(CHILD, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut endpoint = String::new();
        out.read_line(&mut endpoint).unwrap();
        Provider {
            child,
            out,
            endpoint: endpoint.trim().to_owned(),
        }
    }

    /// Deliveries per HCP, the provider's peak memory and its requests.
    fn report(mut self, dir: &Path) -> (HashMap<String, u32>, f64, u64) {
        let path = dir.join("per-hcp.txt");
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "report {}", path.display()).unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        self.out.read_line(&mut line).unwrap();
        self.child.wait().unwrap();
        let mut it = line.split_whitespace();
        let rss: f64 = it.next().unwrap().parse().unwrap();
        let requests: u64 = it.next().unwrap().parse().unwrap();
        let per_hcp = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| {
                let (h, c) = l.rsplit_once(' ').unwrap();
                (h.to_owned(), c.parse().unwrap())
            })
            .collect();
        (per_hcp, rss, requests)
    }
}

fn main() {
    if std::env::var_os(CHILD).is_some() {
        sink_child();
        return;
    }
    let n = env("OMNIGATE_BENCH_HCPS", 100_000);
    let (data, _tmp) = prepare(n);
    let rss_before = peak_rss_mib();
    let store = Arc::new(SqliteStore::open(StoreOptions::new(&data)).unwrap());
    let approved = store.current_version("cz").unwrap().unwrap();

    // The world: the gate over the repository's policies, the bundled
    // plugins, the provider.
    let provider = Provider::start();
    let plugin_dir = data.parent().unwrap().join("plugins");
    std::fs::create_dir_all(&plugin_dir).unwrap();
    let policy_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    let policy = Arc::new(PolicyHandle::new(load_dir(&policy_dir).unwrap()));
    let dyn_store: Arc<dyn Store> = store.clone();
    let clearance = Clearance::new();
    let runtime = Runtime::new(RuntimeConfig {
        egress: Arc::new(GateInspector(clearance.clone())),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let plugins = vec![
        common::plugin(
            &runtime,
            &plugin_dir,
            "email-adapter",
            &[("endpoint", &provider.endpoint)],
        ),
        common::plugin(&runtime, &plugin_dir, "stage-scorer", &[]),
    ];
    let sender = Sender::new(
        Gate::new(policy, dyn_store.clone()),
        dyn_store.clone(),
        clearance,
        "engine",
    );
    let defaults = RunOptions::default();
    let options = RunOptions {
        page: env("OMNIGATE_BENCH_PAGE", defaults.page),
        ..defaults
    };
    let page = options.page;
    let campaigns = Campaigns::new(dyn_store.clone(), options).with_sender(sender);

    let def = CampaignDefinition {
        id: CampaignId::new("bench").unwrap(),
        name: "Cardiozen dosing, everyone".into(),
        product: "cardiozen".into(),
        market: "US".into(),
        purpose: Purpose::Promotional,
        goal: Goal {
            target_stage: "adoption".into(),
            stages: Vec::new(),
        },
        audience: Filter::Everyone(true),
        actions: vec![ActionSpec {
            version: approved.clone(),
            channels: vec![Channel::Email],
            topics: vec!["dosing".into()],
            stage: Some("awareness".into()),
        }],
        channels: vec![Channel::Email],
        window: None,
        caps: CampaignCaps::default(),
        scoring: ScoringSpec {
            plugin: "stage-scorer".into(),
            min_score: None,
        },
        holdout: 0.1,
        seed: None,
        priority: 0,
        values: std::collections::BTreeMap::from([(PersonalField::Salutation, "Dr.".into())]),
        suggestions: SuggestionTiming::default(),
    };
    campaigns.create("marketer", &def).unwrap();

    eprintln!("running the campaign over {n} HCPs (pages of {page}) ...");
    let t = Instant::now();
    campaigns.start("marketer", &def.id).unwrap();
    let resolved = t.elapsed();
    let mut pages = 0u64;
    let mut last = Instant::now();
    let end = campaigns
        .run(&def.id, &plugins, &mut |s| {
            pages += 1;
            if last.elapsed() > Duration::from_secs(10) {
                last = Instant::now();
                eprintln!(
                    "  {:.0} s: {} of {} pending",
                    t.elapsed().as_secs_f64(),
                    s.pending,
                    s.audience
                );
            }
        })
        .unwrap();
    let total = t.elapsed();
    let ran = total - resolved;
    let rss = peak_rss_mib();
    assert_eq!(end, RunEnd::Completed);

    // What happened, from the store and the provider.
    let status = campaigns.status(&def.id).unwrap();
    let decisions = store.campaign_decisions(&def.id).unwrap();
    let (per_hcp, provider_rss, requests) = provider.report(data.parent().unwrap());
    let deliveries: u64 = per_hcp.values().map(|c| u64::from(*c)).sum();
    let dispatched = status.outcomes[&MemberOutcome::Dispatched];

    println!("campaign/{n}_hcps (pages of {page})");
    println!(
        "  audience:      {} members, {} held out",
        status.audience, status.holdout
    );
    println!(
        "  end to end:    {:.1} s (resolve {:.1} s, run {:.1} s)",
        total.as_secs_f64(),
        resolved.as_secs_f64(),
        ran.as_secs_f64()
    );
    println!(
        "  decisions:     {} in {:.1} s of run: {:.0}/s",
        decisions.decisions,
        ran.as_secs_f64(),
        decisions.decisions as f64 / ran.as_secs_f64()
    );
    println!(
        "  members:       {:.0}/s end to end",
        status.audience as f64 / total.as_secs_f64()
    );
    println!(
        "  peak RSS:      {rss:.0} MiB (VmHWM; {rss_before:.0} MiB before opening the store; the provider's own: {provider_rss:.0} MiB)"
    );
    println!(
        "  provider:      {deliveries} e-mails to {} HCPs in {requests} requests ({pages} progress reports)",
        per_hcp.len()
    );

    // Correctness: a wrong result fails the bench. Every member is looked
    // at: held out and untouched, or dispatched and delivered exactly once.
    // The one tolerated exception is a scoring call that ran past the
    // model's time limit (a scheduling stall on a loaded machine): that
    // member is suppressed with the reason on record, and nothing is sent.
    let timed_out = |m: &omnigate_core::campaign::Member| {
        m.outcome == MemberOutcome::Suppressed
            && !m.reasons.is_empty()
            && m.reasons
                .iter()
                .all(|r| r.rules == ["scoring-failed"] && r.message.contains("ran out of time"))
    };
    let mut after: Option<HcpId> = None;
    let mut seen = 0u64;
    let mut timeouts = 0u64;
    loop {
        let members = store
            .members(&def.id, None, after.as_ref(), 100_000)
            .unwrap();
        let Some(last) = members.last() else { break };
        after = Some(last.hcp.clone());
        for m in &members {
            seen += 1;
            let got = per_hcp.get(m.hcp.as_str()).copied().unwrap_or(0);
            if m.holdout {
                assert_eq!(m.outcome, MemberOutcome::Holdout, "{m:?}");
                assert_eq!(got, 0, "{} is held out but got an e-mail", m.hcp);
            } else if timed_out(m) {
                timeouts += 1;
                assert_eq!(got, 0, "{} was not dispatched but got an e-mail", m.hcp);
            } else {
                assert_eq!(m.outcome, MemberOutcome::Dispatched, "{m:?}");
                assert_eq!(got, 1, "{} got {got} e-mails", m.hcp);
            }
        }
    }
    assert_eq!(seen, n as u64);
    assert_eq!(status.audience, n as u64, "everyone is in the audience");
    assert_eq!(status.pending, 0, "{status:?}");
    assert_eq!(
        dispatched + timeouts,
        status.audience - status.holdout,
        "every member not held out is dispatched: {status:?}"
    );
    assert_eq!(decisions.blocked, 0, "{decisions:?}");
    assert_eq!(decisions.decisions, dispatched, "one decision per dispatch");
    assert_eq!(per_hcp.len() as u64, dispatched, "one e-mail per dispatch");
    assert_eq!(deliveries, dispatched, "nobody got two e-mails");
    if timeouts > 0 {
        println!(
            "  WARNING:       {timeouts} members not dispatched: the scoring model ran past its time limit (recorded as `scoring-failed`, nothing sent)"
        );
    }
    if env("OMNIGATE_BENCH_VERIFY", 1) != 0 {
        let t = Instant::now();
        let audit = store.verify_audit().unwrap();
        assert!(audit.is_intact(), "the audit chain is broken: {audit:?}");
        println!(
            "  checked:       every member once at the provider, holdout untouched, audit chain intact ({:.1} s to verify)",
            t.elapsed().as_secs_f64()
        );
    } else {
        println!("  checked:       every member once at the provider, holdout untouched");
    }
}
