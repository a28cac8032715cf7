//! HCP data and the MLR content registry through the real binary: the `/v1`
//! API of `omnigate serve` on a loopback port, and the data commands of the
//! command line on a data directory.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use omnigate_tests::{Server, repo};
use serde_json::{Value, json};

const T0: i64 = 1_763_900_000_000;
const EMAIL: &str = "jane.doe@clinic.example";
const PHONE: &str = "+1 555 010 2030";

fn jane() -> Value {
    json!({"id": "1234567890", "name": "Dr. Jane Doe", "market": "US", "licence": "active",
        "contact": {"email": EMAIL, "phone": PHONE}})
}

fn consent(hcp: &str, channel: &str) -> Value {
    json!({"hcp": hcp, "channel": channel, "purpose": "promotional", "market": "US",
        "status": "opt-in", "source": "rep-tablet", "recorded_at": T0, "recorded_by": "rep-7"})
}

fn open_event(id: &str) -> Value {
    json!({"id": id, "hcp": "1234567890", "type": "email-opened", "channel": "email",
        "occurred_at": T0, "attributes": {"dispatch_id": "d1", "content_version": "v1"}})
}

fn version_body(text: &str) -> Value {
    json!({
        "parts": {"subject": "Cardiozen news", "text": format!(
            "{text} Important Safety Information: may cause dizziness. Please see full \
             Prescribing Information. To unsubscribe, click here.")},
        "metadata": {"product": "cardiozen", "indications": ["hypertension"], "markets": ["US"],
            "channels": ["email"], "audience": "hcp", "claims": {}, "disclaimers": [],
            "isi": null, "expires_at": null}
    })
}

/// Asserts that no contact detail of Jane's shows in `text`.
fn no_contact(text: &str) {
    for secret in [EMAIL, "jane.doe", PHONE, "555", "0102030"] {
        assert!(!text.contains(secret), "contact detail in: {text}");
    }
}

struct Client {
    server: Server,
    http: reqwest::blocking::Client,
}

impl Client {
    fn send(
        &self,
        method: &str,
        path: &str,
        actor: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.server.base);
        let mut req = self
            .http
            .request(method.parse().unwrap(), url)
            .timeout(Duration::from_secs(30));
        if let Some(a) = actor {
            req = req.header("x-omnigate-actor", a);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let response = req.send().unwrap();
        let status = response.status().as_u16();
        if status >= 400 {
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json",
                "{method} {path}"
            );
        }
        (status, response.json().unwrap_or(Value::Null))
    }

    fn get(&self, path: &str) -> (u16, Value) {
        self.send("GET", path, None, None)
    }

    fn post(&self, path: &str, actor: &str, body: Value) -> (u16, Value) {
        self.send("POST", path, Some(actor), Some(body))
    }

    fn audit_len(&self) -> u64 {
        self.get("/v1/audit/verify").1["entries"].as_u64().unwrap()
    }

    /// A call that must be refused with `status` and `code`, changing nothing.
    fn refused(&self, path: &str, actor: &str, body: Value, status: u16, code: &str) -> Value {
        let before = self.audit_len();
        let (got, problem) = self.post(path, actor, body);
        assert_eq!(
            (got, problem["code"].as_str()),
            (status, Some(code)),
            "{problem}"
        );
        assert_eq!(
            self.audit_len(),
            before,
            "a refused call changed the audit log"
        );
        no_contact(&problem.to_string());
        problem
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn serve_exposes_hcp_data_and_the_content_registry_over_http() {
    let work = tempfile::tempdir().unwrap();
    let plugins = work.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let policies = work.path().join("policies");
    copy_dir(&repo().join("policies"), &policies);
    let data = work.path().join("data");
    let server = Server::start(&[
        "--data-dir",
        data.to_str().unwrap(),
        "--plugins",
        plugins.to_str().unwrap(),
        "--policies",
        policies.to_str().unwrap(),
    ])
    .unwrap();
    let c = Client {
        server,
        http: reqwest::blocking::Client::new(),
    };

    // HCPs, consent, events.
    let (status, out) = c.post("/v1/hcps", "importer", json!({"profiles": [jane()]}));
    assert_eq!((status, out["inserted"].as_u64()), (200, Some(1)), "{out}");
    let p = c.refused(
        "/v1/consent",
        "rep-7",
        json!({"records": [consent("1234567890", "sms2")]}),
        400,
        "invalid-input",
    );
    assert_eq!(p["path"], "$.records[0].channel");
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("unknown channel `sms2` (expected one of: email, sms,")
    );
    let p = c.refused(
        "/v1/consent",
        "rep-7",
        json!({"records": [consent("1234567890", "email"), consent("0000000001", "email")]}),
        404,
        "unknown-hcp",
    );
    assert_eq!(p["path"], "$.records[1].hcp");
    let (status, _) = c.post(
        "/v1/consent",
        "rep-7",
        json!({"records": [consent("1234567890", "email")]}),
    );
    assert_eq!(status, 201);

    let mut fax = open_event("e9");
    fax["type"] = json!("fax-sent");
    let p = c.refused(
        "/v1/events",
        "adapter",
        json!({"batch_id": "b0", "events": [open_event("e0"), fax]}),
        400,
        "invalid-input",
    );
    assert_eq!(p["path"], "$.events[1].type");
    let mut short = open_event("e9");
    short["attributes"] = json!({"content_version": "v1"});
    let p = c.refused(
        "/v1/events",
        "adapter",
        json!({"batch_id": "b0", "events": [short]}),
        400,
        "invalid-input",
    );
    assert_eq!(p["path"], "$.events[0].attributes.dispatch_id");
    let batch = json!({"batch_id": "b1", "events": [open_event("e1"), open_event("e2")]});
    let (_, first) = c.post("/v1/events", "adapter", batch.clone());
    assert_eq!(
        (first["accepted"].as_u64(), first["replay"].as_bool()),
        (Some(2), Some(false))
    );
    let (_, again) = c.post("/v1/events", "adapter", batch);
    assert_eq!(
        (again["accepted"].as_u64(), again["replay"].as_bool()),
        (Some(0), Some(true))
    );

    let (status, view) = c.get("/v1/hcps/1234567890");
    assert_eq!(status, 200);
    assert_eq!(view["consent"][0]["status"], "opt-in");
    assert_eq!(view["events_total"], 2);
    assert_eq!(
        view["profile"]["contact_present"],
        json!(["email", "phone"])
    );
    no_contact(&view.to_string());
    let (status, p) = c.get("/v1/hcps/jane.doe@clinic.example");
    assert_eq!(status, 400);
    no_contact(&p.to_string());

    // The content lifecycle: a draft with a cure claim, its pre-screen, three reviewers.
    let (status, put) = c.post(
        "/v1/content/items/launch/versions",
        "alice",
        version_body("Cardiozen cures hypertension."),
    );
    assert_eq!(status, 201, "{put}");
    let h = put["hash"].as_str().unwrap().to_owned();
    let base = format!("/v1/content/versions/{h}");
    let (status, submitted) = c.post(&format!("{base}/submit"), "alice", json!({}));
    assert_eq!(
        (status, submitted["state"].as_str()),
        (200, Some("in-review")),
        "{submitted}"
    );
    let (_, shown) = c.get(&base);
    let summary = &shown["prescreen_summary"];
    assert_eq!(summary["verdict"], "block", "{shown}");
    assert!(
        summary["blocking_rules"]
            .as_array()
            .unwrap()
            .contains(&json!("absolute-cure"))
    );
    let findings = shown["prescreen"]["report"]["results"][0]["findings"]
        .as_array()
        .unwrap();
    assert!(
        findings
            .iter()
            .any(|f| f["rule"] == "absolute-cure" && f["excerpt"] == "cures"),
        "{shown}"
    );

    let p = c.refused(
        &format!("{base}/sign-off"),
        "alice",
        json!({"role": "medical"}),
        409,
        "author-cannot-review",
    );
    assert_eq!(
        p["detail"],
        format!("`alice` wrote content version `{h}` and cannot review it")
    );
    for (who, role) in [("mel", "medical"), ("lea", "legal"), ("reg", "regulatory")] {
        let (status, out) = c.post(&format!("{base}/sign-off"), who, json!({"role": role}));
        assert_eq!(status, 200, "{out}");
    }
    let (_, shown) = c.get(&base);
    assert_eq!(shown["state"], "approved");
    assert_eq!(shown["sign_offs"].as_array().unwrap().len(), 3);
    assert!(
        shown["sign_offs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["version"] == h.as_str())
    );

    // A hash that is no longer the current version cannot be approved.
    let (_, a) = c.post(
        "/v1/content/items/second/versions",
        "alice",
        version_body("Cardiozen news."),
    );
    let h1 = a["hash"].as_str().unwrap().to_owned();
    c.post(
        &format!("/v1/content/versions/{h1}/submit"),
        "alice",
        json!({}),
    );
    c.post(
        "/v1/content/items/second/versions",
        "alice",
        version_body("Cardiozen news, edited."),
    );
    c.refused(
        &format!("/v1/content/versions/{h1}/sign-off"),
        "mel",
        json!({"role": "medical"}),
        409,
        "not-current-version",
    );

    // A policy reload (SIGHUP) is what the next submission is screened with.
    let (_, health) = c.get("/health");
    let before = health["policy_version"].as_str().unwrap().to_owned();
    let mut claims = std::fs::OpenOptions::new()
        .append(true)
        .open(policies.join("claims.toml"))
        .unwrap();
    writeln!(claims, "# reviewed again").unwrap();
    c.server.signal("HUP");
    assert!(
        c.server.wait_for("/health", Duration::from_secs(20), |h| {
            h["policy_version"].as_str().is_some_and(|v| v != before)
        }),
        "the policy was not reloaded"
    );
    let after = c.get("/health").1["policy_version"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, put) = c.post(
        "/v1/content/items/third/versions",
        "alice",
        version_body("Cardiozen news again."),
    );
    let h3 = put["hash"].as_str().unwrap().to_owned();
    let (_, submitted) = c.post(
        &format!("/v1/content/versions/{h3}/submit"),
        "alice",
        json!({}),
    );
    assert_eq!(
        submitted["prescreen"]["policy_version"],
        after.as_str(),
        "{submitted}"
    );

    let (_, report) = c.get("/v1/audit/verify");
    assert_eq!(report["broken"], Value::Null, "{report}");
}

fn cli(data: &Path, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let r = omnigate_tests::run_cli(data, args, stdin);
    (r.code, r.stdout, r.stderr)
}

fn audit_entries(data: &Path) -> u64 {
    let (code, out, err) = cli(data, &["audit", "verify", "--format", "json"], None);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str::<Value>(&out).unwrap()["entries"]
        .as_u64()
        .unwrap()
}

fn lines(values: &[Value]) -> String {
    values.iter().map(|v| format!("{v}\n")).collect()
}

#[test]
fn the_data_commands_work_on_a_data_directory_with_documented_exit_codes() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let hcps = work.path().join("hcps.jsonl");
    let mut suspended = jane();
    suspended["id"] = json!("CRM-2");
    suspended["licence"] = json!("revokedd");
    std::fs::write(&hcps, lines(&[jane(), suspended])).unwrap();

    // No actor: a usage error.
    let (code, _, err) = cli(&data, &["hcp", "import", hcps.to_str().unwrap()], None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--actor"), "{err}");
    // A bad line: named, nothing stored.
    let (code, _, err) = cli(
        &data,
        &[
            "hcp",
            "import",
            hcps.to_str().unwrap(),
            "--actor",
            "importer",
        ],
        None,
    );
    assert_eq!(code, 2);
    assert!(err.contains("line 2 of"), "{err}");
    assert!(
        err.contains("at $.licence: unknown licence status `revokedd`"),
        "{err}"
    );
    no_contact(&err);
    std::fs::write(&hcps, lines(&[jane()])).unwrap();
    let (code, out, err) = cli(
        &data,
        &[
            "hcp",
            "import",
            hcps.to_str().unwrap(),
            "--actor",
            "importer",
            "--format",
            "json",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["inserted"], 1);
    let entries = audit_entries(&data);

    // Consent from standard input: an unknown channel and an unknown HCP.
    let (code, _, err) = cli(
        &data,
        &["consent", "record", "-", "--actor", "rep-7"],
        Some(&lines(&[
            consent("1234567890", "email"),
            consent("1234567890", "sms2"),
        ])),
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("line 2 of standard input, at $.channel: unknown channel `sms2` (expected one of: email, sms,"),
        "{err}"
    );
    let (code, _, err) = cli(
        &data,
        &[
            "consent", "record", "-", "--actor", "rep-7", "--format", "json",
        ],
        Some(&lines(&[consent("404", "email")])),
    );
    assert_eq!(code, 2);
    let problem: Value = serde_json::from_str(err.trim()).unwrap();
    assert_eq!(problem["code"], "unknown-hcp");
    assert_eq!(problem["location"]["line"], 1);
    assert_eq!(problem["location"]["path"], "$.hcp");
    assert_eq!(
        audit_entries(&data),
        entries,
        "refused input changed the audit log"
    );
    let (code, _, err) = cli(
        &data,
        &["consent", "record", "-", "--actor", "rep-7"],
        Some(&lines(&[consent("1234567890", "email")])),
    );
    assert_eq!(code, 0, "{err}");

    // Events: an unknown type, a missing field; then a batch and its replay.
    let mut fax = open_event("e3");
    fax["type"] = json!("fax-sent");
    let (code, _, err) = cli(
        &data,
        &["events", "ingest", "-", "--actor", "adapter"],
        Some(&lines(&[open_event("e1"), fax])),
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("line 2 of standard input, at $.type: unknown event type `fax-sent`"),
        "{err}"
    );
    let mut nohcp = open_event("e3");
    nohcp.as_object_mut().unwrap().remove("hcp");
    let (code, _, err) = cli(
        &data,
        &["events", "ingest", "-", "--actor", "adapter"],
        Some(&lines(&[nohcp])),
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("line 1 of standard input: missing field `hcp`"),
        "{err}"
    );
    let events = work.path().join("events.jsonl");
    std::fs::write(&events, lines(&[open_event("e1"), open_event("e2")])).unwrap();
    let ingest = [
        "events",
        "ingest",
        events.to_str().unwrap(),
        "--actor",
        "adapter",
        "--format",
        "json",
    ];
    let (code, out, err) = cli(&data, &ingest, None);
    assert_eq!(code, 0, "{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["accepted"], 2);
    let (_, out, _) = cli(&data, &ingest, None);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["replay"],
        true,
        "{out}"
    );

    let (code, out, _) = cli(&data, &["hcp", "show", "1234567890"], None);
    assert_eq!(code, 0);
    assert!(
        out.contains("contact details on file: email, phone"),
        "{out}"
    );
    no_contact(&out);
    let (code, _, err) = cli(&data, &["hcp", "show", "404"], None);
    assert_eq!((code, err.trim()), (2, "error: unknown HCP `404`"));

    // Content: put, submit (pre-screen printed), the author refused, three reviewers.
    let draft = work.path().join("draft.json");
    std::fs::write(
        &draft,
        version_body("Cardiozen cures hypertension.").to_string(),
    )
    .unwrap();
    let (code, out, err) = cli(
        &data,
        &[
            "content",
            "put",
            "launch",
            draft.to_str().unwrap(),
            "--actor",
            "alice",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let h = out.lines().next().unwrap().to_owned();
    assert_eq!(h.len(), 64);
    let (code, out, err) = cli(&data, &["content", "submit", &h, "--actor", "alice"], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("PRE-SCREEN: BLOCK"), "{out}");
    assert!(out.contains("absolute-cure"), "{out}");
    let entries = audit_entries(&data);
    let (code, _, err) = cli(
        &data,
        &[
            "content", "sign-off", &h, "--role", "medical", "--actor", "alice",
        ],
        None,
    );
    assert_eq!(code, 1, "refused by a rule: {err}");
    assert!(err.contains("`alice` wrote content version"), "{err}");
    let (code, _, err) = cli(
        &data,
        &[
            "content", "sign-off", &h, "--role", "approver", "--actor", "mel",
        ],
        None,
    );
    assert_eq!(code, 2);
    assert!(err.contains("unknown review role `approver`"), "{err}");
    assert_eq!(audit_entries(&data), entries);
    for (who, role) in [("mel", "medical"), ("lea", "legal"), ("reg", "regulatory")] {
        let (code, _, err) = cli(
            &data,
            &["content", "sign-off", &h, "--role", role, "--actor", who],
            None,
        );
        assert_eq!(code, 0, "{err}");
    }
    let (code, out, _) = cli(&data, &["content", "show", &h, "--format", "json"], None);
    assert_eq!(code, 0);
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["state"], "approved");
    assert!(
        shown["prescreen_summary"]["blocking_rules"]
            .as_array()
            .unwrap()
            .contains(&json!("absolute-cure"))
    );
    let (code, _, err) = cli(&data, &["content", "submit", &h, "--actor", "alice"], None);
    assert_eq!(code, 1, "{err}");
    let (code, out, _) = cli(
        &data,
        &[
            "content",
            "withdraw",
            &h,
            "--reason",
            "label change",
            "--actor",
            "compliance",
        ],
        None,
    );
    assert_eq!(code, 0);
    assert!(out.contains("withdrawn"), "{out}");
    let (code, out, _) = cli(
        &data,
        &[
            "content",
            "expire",
            "--actor",
            "scheduler",
            "--format",
            "json",
        ],
        None,
    );
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["expired"],
        json!([])
    );

    let (code, out, _) = cli(&data, &["audit", "verify"], None);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn the_roles_each_market_requires_come_from_the_policy_files() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    // A policy set where the US needs a medical sign-off only.
    let policies = work.path().join("policies");
    copy_dir(&repo().join("policies"), &policies);
    let markets = policies.join("markets.toml");
    let text = std::fs::read_to_string(&markets).unwrap().replacen(
        "name = \"United States\"",
        "name = \"United States\"\nreview_roles = [\"medical\"]",
        1,
    );
    std::fs::write(&markets, text).unwrap();
    let put = |item: &str, text: &str| {
        let file = work.path().join(format!("{item}.json"));
        std::fs::write(&file, version_body(text).to_string()).unwrap();
        let (code, out, err) = cli(
            &data,
            &[
                "content",
                "put",
                item,
                file.to_str().unwrap(),
                "--actor",
                "alice",
            ],
            None,
        );
        assert_eq!(code, 0, "{err}");
        let h = out.lines().next().unwrap().to_owned();
        let (code, _, err) = cli(&data, &["content", "submit", &h, "--actor", "alice"], None);
        assert_eq!(code, 0, "{err}");
        h
    };
    let state = |h: &str| {
        let (_, out, _) = cli(&data, &["content", "show", h, "--format", "json"], None);
        serde_json::from_str::<Value>(&out).unwrap()["state"].clone()
    };
    let a = put("one-role", "Cardiozen lowers blood pressure.");
    let (code, out, err) = cli(
        &data,
        &[
            "content",
            "sign-off",
            &a,
            "--role",
            "medical",
            "--actor",
            "mel",
            "--policies",
            policies.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("is approved"), "{out}");
    assert_eq!(state(&a), json!("approved"));
    // A role the market does not require is refused, and says so.
    let b = put("two", "Cardiozen is taken once daily.");
    let (code, _, err) = cli(
        &data,
        &[
            "content",
            "sign-off",
            &b,
            "--role",
            "legal",
            "--actor",
            "lea",
            "--policies",
            policies.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("legal"), "{err}");
    // The shipped policy set: medical, legal and regulatory.
    let (code, out, err) = cli(
        &data,
        &[
            "content", "sign-off", &b, "--role", "medical", "--actor", "mel",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("still to sign: legal, regulatory"), "{out}");
    assert_eq!(state(&b), json!("in-review"));
}
