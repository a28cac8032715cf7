//! Campaigns through the real binary: `omnigate campaign create|start|
//! status|members` and `omnigate report`, with the bundled plugins against a
//! loopback provider that counts deliveries per HCP; and the crash test: a
//! 50k-HCP run killed with SIGKILL in the middle, restarted, and checked
//! for exactly one delivery per eligible HCP.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use omnigate_mailsink::MailSink;
use omnigate_tests::{copy_plugins, midday_zone, omnigate, packaged_plugins, repo, run_cli};
use serde_json::{Value, json};

fn ok(data: &Path, args: &[&str], stdin: Option<&str>) -> Value {
    let r = run_cli(data, args, stdin);
    assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
    serde_json::from_str(&r.stdout).unwrap_or(Value::Null)
}

/// Plugins pointed at the sink.
fn plugins(dir: &Path, sink: &MailSink) -> PathBuf {
    let to = dir.join("plugins");
    copy_plugins(&packaged_plugins(), &to);
    let manifest = to.join("email-adapter.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let edited: String = text
        .lines()
        .map(|l| {
            if l.starts_with("endpoint =") {
                format!("endpoint = \"{}\"", sink.endpoint())
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&manifest, edited + "\n").unwrap();
    to
}

/// `n` HCPs; every tenth has no e-mail consent. Returns the approved
/// version's hash.
fn seed(data: &Path, n: usize) -> String {
    let zone = midday_zone();
    let dir = tempfile::tempdir().unwrap();
    let mut hcps = std::fs::File::create(dir.path().join("hcps.jsonl")).unwrap();
    let mut consents = std::fs::File::create(dir.path().join("consent.jsonl")).unwrap();
    let at = omnigate_core_now() - 86_400_000;
    for i in 0..n {
        let id = format!("npi-{i:06}");
        let hcp = json!({"id": id, "name": format!("Ada Li {i}"), "market": "US",
            "time_zone": zone, "specialty": {"code": "207RC0000X", "label": "Cardiovascular Disease"},
            "contact": {"email": format!("ada{i}@hospital.example")}});
        writeln!(hcps, "{hcp}").unwrap();
        if i % 10 != 9 {
            let c = json!({"hcp": id, "channel": "email", "purpose": "promotional",
                "market": "US", "status": "opt-in", "source": "web-form",
                "recorded_at": at, "recorded_by": "web"});
            writeln!(consents, "{c}").unwrap();
        }
    }
    drop((hcps, consents));
    let path = |f: &str| dir.path().join(f).display().to_string();
    ok(
        data,
        &["hcp", "import", &path("hcps.jsonl"), "--actor", "import"],
        None,
    );
    ok(
        data,
        &[
            "consent",
            "record",
            &path("consent.jsonl"),
            "--actor",
            "web",
        ],
        None,
    );
    let body = json!({
        "parts": {
            "subject": "New blood pressure data",
            "text": "{{salutation}} {{name}},\n\nThe recommended starting dose is 80 mg once daily.\n\n\
                Important Safety Information: Cardiozen can cause fetal toxicity. Please see full \
                Prescribing Information. To unsubscribe, click here.",
        },
        "personalization_fields": ["salutation", "name"],
        "metadata": {"product": "cardiozen", "indications": ["hypertension"], "markets": ["US"],
            "channels": ["email"], "audience": "hcp", "claims": {}, "disclaimers": [],
            "isi": null, "expires_at": null}
    });
    std::fs::write(dir.path().join("v.json"), body.to_string()).unwrap();
    let out = ok(
        data,
        &[
            "content",
            "put",
            "cz-dose",
            &path("v.json"),
            "--actor",
            "author",
            "--format",
            "json",
        ],
        None,
    );
    let hash = out["hash"].as_str().unwrap().to_owned();
    ok(
        data,
        &["content", "submit", &hash, "--actor", "author"],
        None,
    );
    for (who, role) in [
        ("dr-med", "medical"),
        ("lawyer", "legal"),
        ("reg", "regulatory"),
    ] {
        ok(
            data,
            &["content", "sign-off", &hash, "--role", role, "--actor", who],
            None,
        );
    }
    hash
}

fn omnigate_core_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn definition(id: &str, version: &str) -> String {
    json!({
        "id": id,
        "name": "Cardiozen dosing",
        "product": "cardiozen",
        "market": "US",
        "goal": {"target-stage": "adoption"},
        "audience": {"specialty": ["207RC0000X"]},
        "actions": [{"version": version, "channels": ["email"], "topics": ["dosing"]}],
        "channels": ["email"],
        "scoring": {"plugin": "stage-scorer"},
        "holdout": 0.1,
        "values": {"salutation": "Dr."}
    })
    .to_string()
}

/// Every member, paging through `campaign members`.
fn members(data: &Path, id: &str) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    loop {
        let mut args = vec![
            "campaign", "members", id, "--limit", "1000", "--format", "json",
        ];
        let after;
        if let Some(last) = out.last() {
            after = last["hcp"].as_str().unwrap().to_owned();
            args.extend(["--after", after.as_str()]);
        }
        let page = ok(data, &args, None);
        let page = page.as_array().unwrap().clone();
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

#[test]
fn a_campaign_runs_from_the_command_line_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sink = MailSink::start().unwrap();
    let plugins = plugins(dir.path(), &sink);
    let version = seed(&data, 200);
    let def = dir.path().join("campaign.json");
    std::fs::write(&def, definition("cz-cli", &version)).unwrap();

    // Bad input: a clear message with the JSON path, nothing stored.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, definition("cz-bad", &version).replace("0.1", "0.9")).unwrap();
    let r = run_cli(
        &data,
        &["campaign", "create", bad.to_str().unwrap(), "--actor", "m"],
        None,
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("$.holdout"), "{}", r.stderr);
    let r = run_cli(&data, &["campaign", "status", "cz-bad"], None);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("unknown campaign"), "{}", r.stderr);

    let out = ok(
        &data,
        &[
            "campaign",
            "create",
            def.to_str().unwrap(),
            "--actor",
            "marketer",
            "--format",
            "json",
        ],
        None,
    );
    assert_eq!(out["created"], true);
    assert_eq!(out["campaign"]["state"], "draft");
    let out = ok(
        &data,
        &[
            "campaign",
            "start",
            "cz-cli",
            "--actor",
            "marketer",
            "--plugins",
            plugins.to_str().unwrap(),
            "--format",
            "json",
        ],
        None,
    );
    assert_eq!(out["end"], "completed");
    assert_eq!(out["status"]["state"], "completed");
    let report = ok(&data, &["report", "cz-cli", "--format", "json"], None);
    let outcomes = &report["outcomes"];
    let holdout = outcomes["holdout"].as_u64().unwrap();
    let dispatched = outcomes["dispatched"].as_u64().unwrap();
    let suppressed = outcomes["suppressed"].as_u64().unwrap();
    assert_eq!(report["audience"], 200);
    assert_eq!(holdout + dispatched + suppressed, 200);
    assert_eq!(dispatched as usize, sink.delivered().len());
    assert!(holdout > 5 && holdout < 40, "{holdout}");
    assert!(
        report["blocked_by_rule"]["consent-opt-in"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(outcomes["blocked"].as_u64().unwrap() >= suppressed);
    for key in ["dispatched", "blocked", "suppressed", "failed", "holdout"] {
        assert!(outcomes[key].is_u64(), "{key} in {report}");
    }
    let text = run_cli(&data, &["report", "cz-cli"], None);
    assert!(text.stdout.contains("blocked by rule"), "{}", text.stdout);
}

#[test]
fn a_run_killed_with_sigkill_resumes_and_delivers_exactly_once() {
    let n: usize = std::env::var("OMNIGATE_CRASH_HCPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sink = MailSink::start().unwrap();
    let plugins = plugins(dir.path(), &sink);
    let version = seed(&data, n);
    let def = dir.path().join("campaign.json");
    std::fs::write(&def, definition("cz-crash", &version)).unwrap();
    ok(
        &data,
        &[
            "campaign",
            "create",
            def.to_str().unwrap(),
            "--actor",
            "marketer",
        ],
        None,
    );
    let start_args = |data: &Path| {
        let mut c = Command::new(omnigate());
        c.args([
            "campaign",
            "start",
            "cz-crash",
            "--actor",
            "marketer",
            "--lease-seconds",
            "2",
        ])
        .arg("--plugins")
        .arg(&plugins)
        .arg("--data-dir")
        .arg(data)
        .current_dir(repo())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        c
    };
    let mut child = start_args(&data).spawn().unwrap();
    // Kill it once a good part of the audience has been delivered to.
    let target = n / 5;
    let started = Instant::now();
    while sink.delivered().len() < target {
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "no progress: {} delivered",
            sink.delivered().len()
        );
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the run ended before the kill: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let at_kill = sink.delivered().len();
    assert!(at_kill < n, "killed in the middle ({at_kill})");

    // Restarted: it waits out the dead run's lease and resumes.
    let out = start_args(&data).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let members = members(&data, "cz-crash");
    assert_eq!(members.len(), n);
    let per_hcp = sink.per_hcp();
    assert!(
        per_hcp.values().all(|c| *c == 1),
        "somebody got two messages"
    );
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut eligible = BTreeSet::new();
    for m in &members {
        let hcp = m["hcp"].as_str().unwrap();
        let outcome = m["outcome"].as_str().unwrap();
        *outcomes.entry(outcome.to_owned()).or_default() += 1;
        let i: usize = hcp[4..].parse().unwrap();
        let consented = i % 10 != 9;
        let held = m["holdout"].as_bool().unwrap();
        if consented && !held {
            eligible.insert(hcp.to_owned());
            assert_eq!(outcome, "dispatched", "{m}");
        } else {
            assert!(!per_hcp.contains_key(hcp), "{hcp} must get nothing: {m}");
        }
    }
    let delivered: BTreeSet<String> = per_hcp.keys().cloned().collect();
    assert_eq!(
        delivered, eligible,
        "every eligible HCP got exactly one message"
    );
    assert_eq!(outcomes.get("pending"), None, "{outcomes:?}");
    eprintln!(
        "{n} HCPs: {} eligible, {at_kill} delivered before SIGKILL, {} provider requests",
        eligible.len(),
        sink.requests()
    );
    // The audit chain is intact after the crash.
    let r = run_cli(&data, &["audit", "verify"], None);
    assert_eq!(r.code, 0, "{}", r.stdout);
}

/// `omnigate demo --hcps N --format json` on `data`; its JSON output.
fn demo(data: &Path, hcps: u32) -> Value {
    let out = Command::new(omnigate())
        .args([
            "demo",
            "--hcps",
            &hcps.to_string(),
            "--format",
            "json",
            "--plugins",
        ])
        .arg(packaged_plugins())
        .arg("--data-dir")
        .arg(data)
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout).unwrap()
}

#[test]
fn the_demo_runs_the_main_job_end_to_end_and_is_idempotent_on_its_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let demo = |data: &Path| demo(data, 300);
    let first = demo(&data);
    assert_eq!(first["seeded"], true);
    assert_eq!(first["hcps"], 300);
    let report = &first["report"];
    assert_eq!(report["state"], "completed");
    let outcomes = &report["outcomes"];
    for key in ["dispatched", "blocked", "suppressed", "failed", "holdout"] {
        assert!(outcomes[key].is_u64(), "{key} in {report}");
    }
    assert!(outcomes["dispatched"].as_u64().unwrap() > 0);
    assert!(outcomes["holdout"].as_u64().unwrap() > 0);
    assert_eq!(outcomes["pending"], 0);
    // The unapproved draft with absolute claims and the expired version
    // were blocked wherever the model ranked them; consent gaps too.
    let blocked = &report["blocked_by_rule"];
    for rule in ["content-not-approved", "content-expired", "consent-opt-in"] {
        assert!(
            blocked[rule].as_u64().unwrap_or(0) > 0,
            "{rule} in {blocked}"
        );
    }
    assert_eq!(
        first["delivered_to_provider"].as_u64().unwrap(),
        report["channels"]["email"]["dispatched"].as_u64().unwrap()
    );
    assert!(first["engagement_events"].as_u64().unwrap() > 0);
    // The closed loop: engagement with the dispatches, rep follow-up, lift.
    assert!(
        report["engagement"]["email"]["email-opened"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(report["suggestions"]["done"].is_u64());
    let lift = &report["lift"];
    assert!(lift["treated"]["hcps"].as_u64().unwrap() > 0);
    assert_eq!(lift["holdout"]["hcps"], outcomes["holdout"]);
    assert_eq!(lift["ci95"].as_array().unwrap().len(), 2);

    // A second run on the same directory seeds nothing and sends nothing.
    let second = demo(&data);
    assert_eq!(second["seeded"], false);
    assert_eq!(second["hcps"], 300);
    assert_eq!(second["delivered_to_provider"], 0);
    assert_eq!(second["report"]["outcomes"], first["report"]["outcomes"]);
    let r = run_cli(&data, &["audit", "verify"], None);
    assert_eq!(r.code, 0, "{}", r.stdout);
}

#[test]
fn a_rep_works_the_suggestion_queue_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    demo(&data, 120);
    // The demo's reps closed their suggestions: each is done or dismissed.
    let done = ok(
        &data,
        &[
            "suggestions",
            "list",
            "--campaign",
            "demo-cardiozen-dosing",
            "--state",
            "done",
            "--format",
            "json",
        ],
        None,
    );
    let done = done.as_array().unwrap();
    assert!(!done.is_empty());
    let id = done[0]["id"].as_str().unwrap();
    assert!(!done[0]["rationale"].as_str().unwrap().is_empty());
    // Closing again is refused (exit 1); a dismissal without a reason is a
    // usage error (exit 2).
    let r = run_cli(
        &data,
        &[
            "suggestions",
            "dismiss",
            id,
            "--reason",
            "no",
            "--actor",
            "rep-01",
        ],
        None,
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("cannot be closed"), "{}", r.stderr);
    let r = run_cli(
        &data,
        &["suggestions", "dismiss", id, "--actor", "rep-01"],
        None,
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = run_cli(&data, &["suggestions", "list", "--state", "later"], None);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("unknown state"), "{}", r.stderr);
}

fn post_events(server: &omnigate_tests::Server, batch: &str, events: Value) -> Value {
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/v1/events", server.base))
        .header("x-omnigate-actor", "crm-sync")
        .json(&json!({"batch_id": batch, "events": events}))
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    r.json().unwrap()
}

fn journey_actions(data: &Path, id: &str) -> Vec<Value> {
    ok(data, &["journey", "actions", id, "--format", "json"], None)
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn a_journey_fires_in_serve_on_an_api_event_and_its_delayed_action_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sink = MailSink::start().unwrap();
    let plugins = plugins(dir.path(), &sink);
    let version = seed(&data, 20);
    let journey = |id: &str, event: &str, after: Option<&str>| {
        let mut j = json!({
            "id": id, "name": id, "product": "cardiozen", "market": "US",
            "when": {"event": event},
            "do": {"send": {"options": [{"version": version, "channels": ["email"]}],
                            "rationale": "follow-up", "values": {"salutation": "Dr."}}}
        });
        if let Some(a) = after {
            j["after"] = json!(a);
        }
        let out = ok(
            &data,
            &[
                "journey", "create", "-", "--actor", "marketer", "--format", "json",
            ],
            Some(&j.to_string()),
        );
        assert_eq!(out["created"], json!(true));
    };
    journey("visit-email", "rep-visit", None);
    journey("webinar-email", "webinar-attended", Some("15s"));
    let policies = repo().join("policies");
    let args = [
        "--data-dir",
        data.to_str().unwrap(),
        "--plugins",
        plugins.to_str().unwrap(),
        "--policies",
        policies.to_str().unwrap(),
    ];
    let server = omnigate_tests::Server::start(&args).unwrap();
    let now = omnigate_core_now();
    // A visit through the API: the journey sends at once.
    let posted = Instant::now();
    post_events(
        &server,
        "crm-1",
        json!([{"id": "visit-1", "hcp": "npi-000001", "type": "rep-visit", "channel": "rep-visit",
                "occurred_at": now, "attributes": {"rep_id": "rep-1"}}]),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while !sink.per_hcp().contains_key("npi-000001") {
        assert!(Instant::now() < deadline, "the journey never sent");
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "API event -> e-mail at the provider: {} ms",
        posted.elapsed().as_millis()
    );
    // A webinar attendance: due in 15 s. Kill the host once it is scheduled.
    post_events(
        &server,
        "webinar-1",
        json!([{"id": "webinar-1", "hcp": "npi-000002", "type": "webinar-attended",
                "channel": "webinar", "occurred_at": omnigate_core_now(),
                "attributes": {"webinar_id": "wb-1"}}]),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while journey_actions(&data, "webinar-email").is_empty() {
        assert!(
            Instant::now() < deadline,
            "the webinar never fired the journey"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut server = server;
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    let pending = journey_actions(&data, "webinar-email");
    assert_eq!(pending[0]["state"], json!("pending"), "{pending:?}");
    assert!(!sink.per_hcp().contains_key("npi-000002"));

    // Restarted, the host sends it when due, once.
    let server = omnigate_tests::Server::start(&args).unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    while !sink.per_hcp().contains_key("npi-000002") {
        assert!(Instant::now() < deadline, "the delayed action was lost");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    drop(server);
    let per_hcp = sink.per_hcp();
    assert_eq!(per_hcp.get("npi-000001"), Some(&1));
    assert_eq!(per_hcp.get("npi-000002"), Some(&1));
    assert_eq!(per_hcp.len(), 2);
    let done = journey_actions(&data, "webinar-email");
    assert_eq!(done[0]["state"], json!("dispatched"));
    let status = ok(
        &data,
        &["journey", "status", "visit-email", "--format", "json"],
        None,
    );
    assert_eq!(status["counts"]["by_state"]["dispatched"], json!(1));
    assert_eq!(status["counts"]["latency"]["actions"], json!(1));
}

fn call(
    server: &omnigate_tests::Server,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let client = reqwest::blocking::Client::new();
    let url = format!("{}{path}", server.base);
    let req = match method {
        "POST" => client.post(url).header("x-omnigate-actor", "marketer"),
        _ => client.get(url),
    };
    let req = match body {
        Some(b) => req.json(&b),
        None => req,
    };
    let r = req.send().unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

#[test]
fn campaigns_journeys_and_suggestions_work_over_http_and_serve_runs_what_is_started() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sink = MailSink::start().unwrap();
    let plugins = plugins(dir.path(), &sink);
    let version = seed(&data, 30);
    let policies = repo().join("policies");
    let server = omnigate_tests::Server::start(&[
        "--data-dir",
        data.to_str().unwrap(),
        "--plugins",
        plugins.to_str().unwrap(),
        "--policies",
        policies.to_str().unwrap(),
    ])
    .unwrap();
    let def: Value = serde_json::from_str(&definition("web-campaign", &version)).unwrap();

    // Create: 201, the same again 200, a bad one 400 with its path.
    let (status, out) = call(&server, "POST", "/v1/campaigns", Some(def.clone()));
    assert_eq!(status, 201, "{out}");
    assert_eq!(out["created"], json!(true));
    assert_eq!(out["state"], json!("draft"));
    let (status, out) = call(&server, "POST", "/v1/campaigns", Some(def.clone()));
    assert_eq!((status, &out["created"]), (200, &json!(false)));
    let mut bad = def.clone();
    bad["id"] = json!("bad");
    bad["holdout"] = json!(0.9);
    let (status, out) = call(&server, "POST", "/v1/campaigns", Some(bad));
    assert_eq!(status, 400, "{out}");
    assert_eq!(out["path"], json!("$.holdout"), "{out}");
    let (status, out) = call(&server, "GET", "/v1/campaigns/nope", None);
    assert_eq!((status, &out["code"]), (404, &json!("unknown-campaign")));

    // Started through the API, run by serve's runner to completion.
    let (status, out) = call(&server, "POST", "/v1/campaigns/web-campaign/start", None);
    assert_eq!(status, 200, "{out}");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, s) = call(&server, "GET", "/v1/campaigns/web-campaign", None);
        if s["state"] == json!("completed") {
            break;
        }
        assert!(Instant::now() < deadline, "never completed: {s}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, report) = call(&server, "GET", "/v1/campaigns/web-campaign/report", None);
    assert_eq!(status, 200);
    let dispatched = report["outcomes"]["dispatched"].as_u64().unwrap();
    assert!(dispatched > 0, "{report}");
    assert_eq!(sink.delivered().len() as u64, dispatched);
    assert!(report["blocked_by_rule"].is_object());
    let (status, members) = call(
        &server,
        "GET",
        "/v1/campaigns/web-campaign/members?outcome=holdout&limit=100",
        None,
    );
    assert_eq!(status, 200);
    assert!(
        members
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["outcome"] == json!("holdout"))
    );
    let (status, out) = call(
        &server,
        "GET",
        "/v1/campaigns/web-campaign/members?colour=red",
        None,
    );
    assert_eq!((status, &out["argument"]), (400, &json!("colour")));
    // A completed campaign neither pauses nor cancels; a cancel needs a reason.
    let (status, out) = call(&server, "POST", "/v1/campaigns/web-campaign/pause", None);
    assert_eq!(
        (status, &out["code"]),
        (409, &json!("wrong-state")),
        "{out}"
    );
    let (status, out) = call(
        &server,
        "POST",
        "/v1/campaigns/web-campaign/cancel",
        Some(json!({})),
    );
    assert_eq!((status, &out["path"]), (400, &json!("$.reason")), "{out}");

    // Journeys.
    let journey = json!({
        "id": "web-journey", "name": "visit -> e-mail", "product": "cardiozen", "market": "US",
        "when": {"event": "rep-visit"}, "after": "1d",
        "do": {"send": {"options": [{"version": version, "channels": ["email"]}],
                        "rationale": "follow-up"}}
    });
    let (status, out) = call(&server, "POST", "/v1/journeys", Some(journey));
    assert_eq!(status, 201, "{out}");
    let (status, out) = call(
        &server,
        "POST",
        "/v1/journeys",
        Some(
            json!({"id": "x", "name": "x", "product": "p", "market": "US",
                    "when": {"event": "rep-visit", "count": 2}, "do": {"cancel-pending": {}}}),
        ),
    );
    assert_eq!(
        (status, &out["path"]),
        (400, &json!("$.when.within")),
        "{out}"
    );
    let (status, out) = call(
        &server,
        "POST",
        "/v1/journeys/web-journey/pause",
        Some(json!({"reason": "review"})),
    );
    assert_eq!((status, &out["state"]), (200, &json!("paused")), "{out}");
    let (status, out) = call(
        &server,
        "POST",
        "/v1/journeys/web-journey/retire",
        Some(json!({"reason": "done"})),
    );
    assert_eq!((status, &out["state"]), (200, &json!("retired")), "{out}");
    let (status, out) = call(
        &server,
        "POST",
        "/v1/journeys/web-journey/resume",
        Some(json!({"reason": "again"})),
    );
    assert_eq!(
        (status, &out["code"]),
        (409, &json!("wrong-state")),
        "{out}"
    );
    let (status, out) = call(&server, "GET", "/v1/journeys/web-journey", None);
    assert_eq!(status, 200);
    assert_eq!(out["definition"]["id"], json!("web-journey"));
    let (status, list) = call(&server, "GET", "/v1/journeys", None);
    assert_eq!((status, list.as_array().unwrap().len()), (200, 1));
    let (status, out) = call(
        &server,
        "GET",
        "/v1/journeys/web-journey/actions?state=pending",
        None,
    );
    assert_eq!((status, out), (200, json!([])));

    // Suggestions: filters are checked.
    let (status, out) = call(&server, "GET", "/v1/suggestions?state=open", None);
    assert_eq!((status, out.is_array()), (200, true));
    let (status, out) = call(&server, "GET", "/v1/suggestions?state=later", None);
    assert_eq!(status, 400, "{out}");
    assert!(
        out["detail"].as_str().unwrap().contains("unknown state"),
        "{out}"
    );
}
