//! The compliance gate through the real binary: `omnigate gate check` and
//! `omnigate decisions` on a data directory, and `/v1/gate/check` and
//! `/v1/decisions` of `omnigate serve` on a loopback port.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::path::Path;
use std::time::Duration;

use omnigate_tests::Server;
use serde_json::{Value, json};

/// 2026-11-24 15:00 in New York.
const AFTERNOON: i64 = 1_795_550_400_000;
const EMAIL: &str = "ada.li@hospital.example";

fn cli(data: &Path, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let r = omnigate_tests::run_cli(data, args, stdin);
    (r.code, r.stdout, r.stderr)
}

fn ok(data: &Path, args: &[&str], stdin: Option<&str>) -> Value {
    let (code, out, err) = cli(data, args, stdin);
    assert_eq!(code, 0, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap_or(Value::Null)
}

fn version(text: &str) -> String {
    json!({
        "parts": {
            "subject": "New blood pressure data",
            "text": format!("{{{{salutation}}}} {{{{name}}}},\n\n{text}\n\nImportant Safety Information: \
                Cardiozen can cause fetal toxicity. Please see full Prescribing Information. \
                To unsubscribe, click here."),
        },
        "personalization_fields": ["salutation", "name"],
        "metadata": {"product": "cardiozen", "indications": ["hypertension"], "markets": ["US"],
            "channels": ["email"], "audience": "hcp", "claims": {}, "disclaimers": [],
            "isi": null, "expires_at": null}
    })
    .to_string()
}

/// A data directory with one HCP (opted in to e-mail), one approved version
/// and one draft with an absolute claim. Returns their hashes.
fn seed(data: &Path) -> (String, String) {
    let hcp = json!({"id": "npi-1", "name": "Ada Li", "market": "US",
        "time_zone": "America/New_York", "contact": {"email": EMAIL}});
    ok(
        data,
        &["hcp", "import", "-", "--actor", "import"],
        Some(&hcp.to_string()),
    );
    let consent = json!({"hcp": "npi-1", "channel": "email", "purpose": "promotional",
        "market": "US", "status": "opt-in", "source": "web-form",
        "recorded_at": AFTERNOON - 86_400_000, "recorded_by": "web"});
    ok(
        data,
        &["consent", "record", "-", "--actor", "web"],
        Some(&consent.to_string()),
    );
    let dir = tempfile::tempdir().unwrap();
    let put = |item: &str, text: &str| {
        let f = dir.path().join(format!("{item}.json"));
        std::fs::write(&f, version(text)).unwrap();
        let out = ok(
            data,
            &[
                "content",
                "put",
                item,
                f.to_str().unwrap(),
                "--actor",
                "author",
                "--format",
                "json",
            ],
            None,
        );
        out["hash"].as_str().unwrap().to_owned()
    };
    let approved = put(
        "cz-dose",
        "The recommended starting dose is 80 mg once daily.",
    );
    ok(
        data,
        &["content", "submit", &approved, "--actor", "author"],
        None,
    );
    for (who, role) in [
        ("dr-med", "medical"),
        ("lawyer", "legal"),
        ("reg", "regulatory"),
    ] {
        ok(
            data,
            &[
                "content", "sign-off", &approved, "--role", role, "--actor", who,
            ],
            None,
        );
    }
    let draft = put("cz-draft", "Cardiozen cures hypertension.");
    (approved, draft)
}

fn request(version: &str, dispatch: &str) -> String {
    json!({"dispatch_id": dispatch, "campaign": "bp", "hcp": "npi-1", "version": version,
        "channel": "email", "purpose": "promotional", "values": {"salutation": "Dr."},
        "at": AFTERNOON})
    .to_string()
}

#[test]
fn gate_check_and_decisions_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (approved, draft) = seed(&data);

    let (code, out, err) = cli(
        &data,
        &["gate", "check", "-", "--actor", "mkt", "--format", "json"],
        Some(&request(&approved, "d-1")),
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verdict"], "allow");
    assert!(
        v["message"]["text"]
            .as_str()
            .unwrap()
            .starts_with("Dr. Ada Li,")
    );
    assert!(!out.contains(EMAIL));

    let (code, out, _) = cli(
        &data,
        &["gate", "check", "-", "--actor", "mkt"],
        Some(&request(&draft, "d-2")),
    );
    assert_eq!(code, 1, "a block exits 1");
    assert!(out.contains("BLOCK content-not-approved"), "{out}");
    assert!(out.contains("BLOCK absolute-cure"), "{out}");

    // Bad input: named, exit 2, nothing recorded.
    let (code, _, err) = cli(
        &data,
        &["gate", "check", "-", "--actor", "mkt"],
        Some(
            r#"{"hcp": "npi-1", "version": "abc", "channel": "pigeon", "purpose": "promotional"}"#,
        ),
    );
    assert_eq!(code, 2);
    assert!(err.contains("channel") && err.contains("pigeon"), "{err}");

    let list = ok(
        &data,
        &[
            "decisions",
            "list",
            "--verdict",
            "block",
            "--format",
            "json",
        ],
        None,
    );
    let ds = list["decisions"].as_array().unwrap();
    assert_eq!(ds.len(), 1);
    assert_eq!(ds[0]["dispatch"], "d-2");
    let id = ds[0]["id"].as_str().unwrap();
    let by_rule = ok(
        &data,
        &[
            "decisions",
            "list",
            "--rule",
            "absolute-cure",
            "--format",
            "json",
        ],
        None,
    );
    assert_eq!(by_rule["decisions"][0]["id"], id);
    let one = ok(&data, &["decisions", "show", id, "--format", "json"], None);
    assert_eq!(one["verdict"], "block");
    let all = ok(
        &data,
        &["decisions", "list", "--campaign", "bp", "--format", "json"],
        None,
    );
    assert_eq!(all["decisions"].as_array().unwrap().len(), 2);
    let (code, _, err) = cli(&data, &["decisions", "list", "--verdict", "maybe"], None);
    assert_eq!(code, 2);
    assert!(err.contains("maybe"), "{err}");
    // Every decision is in the audit chain, which still verifies.
    let (code, out, _) = cli(&data, &["audit", "verify", "--format", "json"], None);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn gate_check_and_decisions_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (approved, _) = seed(&data);
    let plugins = dir.path().join("no-plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let server = Server::start(&[
        "--data-dir",
        data.to_str().unwrap(),
        "--plugins",
        plugins.to_str().unwrap(),
    ])
    .unwrap();
    let http = reqwest::blocking::Client::new();
    let post = |body: String, actor: Option<&str>| {
        let mut r = http
            .post(format!("{}/v1/gate/check", server.base))
            .header("content-type", "application/json")
            .timeout(Duration::from_secs(30))
            .body(body);
        if let Some(a) = actor {
            r = r.header("x-omnigate-actor", a);
        }
        let resp = r.send().unwrap();
        (resp.status().as_u16(), resp.json::<Value>().unwrap())
    };
    let (status, v) = post(request(&approved, "d-http-1"), Some("mkt"));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["verdict"], "allow");
    let mut late = serde_json::from_str::<Value>(&request(&approved, "d-http-2")).unwrap();
    late["at"] = json!(AFTERNOON + 7 * 3_600_000);
    let (_, v) = post(late.to_string(), Some("mkt"));
    assert_eq!(v["verdict"], "block");
    assert_eq!(v["decision"]["rules"][0]["rule"], "quiet-hours");
    let (status, _) = post(request(&approved, "d-http-3"), None);
    assert_eq!(status, 400, "the actor header is required");

    let got = |path: &str| {
        let r = http.get(format!("{}{path}", server.base)).send().unwrap();
        (r.status().as_u16(), r.json::<Value>().unwrap())
    };
    let (status, list) = got("/v1/decisions?rule=quiet-hours");
    assert_eq!(status, 200);
    assert_eq!(list["decisions"][0]["dispatch"], "d-http-2");
    let id = list["decisions"][0]["id"].as_str().unwrap().to_owned();
    let (status, one) = got(&format!("/v1/decisions/{id}"));
    assert_eq!(status, 200);
    assert_eq!(one["id"], id.as_str());
    let (status, p) = got("/v1/decisions?colour=red");
    assert_eq!(status, 400);
    assert!(p.to_string().contains("colour"));
    let (status, _) = got("/v1/decisions/nope");
    assert_eq!(status, 404);
}
