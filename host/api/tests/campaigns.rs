//! `/v1/campaigns` and `/v1/suggestions` driven through the router
//! (`tower::ServiceExt::oneshot`) over a real SQLite store, the real gate
//! with the repository's policies, the bundled scoring model (a compiled
//! Wasm component from `target/plugins`) and the engine's background
//! runner, as `omnigate serve` wires them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use omnigate_api::orchestration::Orchestration;
use omnigate_api::{AppState, router};
use omnigate_core::campaign::CampaignId;
use omnigate_core::consent::{ConsentScope, ConsentSource, ConsentStatus, NewConsent, Purpose};
use omnigate_core::content::{
    Audience, ContentBody, ContentMetadata, NewPreScreen, ReviewRole, VersionHash,
};
use omnigate_core::event::now_millis;
use omnigate_core::hcp::Specialty;
use omnigate_core::store::{ConsentStore, ContentStore, HcpStore};
use omnigate_core::{Channel, HcpId, HcpProfile, Store};
use omnigate_engine::{
    Campaigns, GateInspector, JourneyOptions, Journeys, RunOptions, Runner, Sender, Waker,
};
use omnigate_gate::Gate;
use omnigate_gate::egress::Clearance;
use omnigate_policy::PolicyHandle;
use omnigate_runtime::{Runtime, RuntimeConfig};
use omnigate_service::Service;
use omnigate_store::{SqliteStore, StoreOptions};
use serde_json::{Value, json};
use tower::ServiceExt;

const FOOTER: &str = "Important Safety Information: Cardiozen can cause fetal toxicity. Hypotension and hyperkalemia can occur. Please see full Prescribing Information. To unsubscribe, click here.";

/// HCPs `npi-00000` ..: cardiologists but every seventh; a rep-visit
/// opt-in for all but every fourth, who has no consent on record.
const HCPS: usize = 24;

fn has_consent(i: usize) -> bool {
    i % 4 != 3
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    )
}

/// A fixed-offset zone where it is about midday now, so that quiet hours
/// never decide these tests whatever the clock says.
fn midday_zone() -> String {
    let hour = (now_millis() / 3_600_000) % 24;
    match 12 - hour {
        0 => "Etc/GMT".into(),
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    }
}

fn body(text: &str) -> ContentBody {
    ContentBody {
        parts: BTreeMap::from([
            ("subject".into(), "New blood pressure data".into()),
            (
                "text".into(),
                format!("{{{{salutation}}}} {{{{name}}}},\n\n{text}"),
            ),
            ("isi".into(), FOOTER.into()),
        ]),
        variants: BTreeMap::new(),
        personalization_fields: BTreeSet::from(["salutation".into(), "name".into()]),
        metadata: ContentMetadata {
            product: "cardiozen".into(),
            indications: BTreeSet::from(["hypertension".into()]),
            markets: BTreeSet::from(["US".into()]),
            channels: BTreeSet::from([Channel::Email, Channel::RepVisit]),
            audience: Audience::Hcp,
            claims: BTreeMap::new(),
            disclaimers: Vec::new(),
            isi: None,
            expires_at: None,
        },
    }
}

struct Api {
    app: Router,
    store: Arc<SqliteStore>,
    approved: VersionHash,
    draft: VersionHash,
    /// Set when the world has a background runner: stops it on drop.
    stop: Option<(Arc<AtomicBool>, Waker)>,
    _runtime: Runtime,
    _dir: tempfile::TempDir,
}

impl Drop for Api {
    fn drop(&mut self) {
        if let Some((stop, waker)) = &self.stop {
            stop.store(true, Ordering::Relaxed);
            waker.wake();
        }
    }
}

/// The API over a seeded store. With `runner`, the bundled scoring model
/// is loaded and the engine's runner runs in the background as in
/// `omnigate serve`, polling only every 10 minutes: a started campaign is
/// run at once only because the start wakes it.
fn api(runner: bool) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(StoreOptions::new(dir.path().join("data"))).unwrap());
    let zone = midday_zone();
    let mut profiles = Vec::new();
    let mut consents = Vec::new();
    for i in 0..HCPS {
        let id = HcpId::new(format!("npi-{i:05}")).unwrap();
        let mut p = HcpProfile::new(id.clone(), format!("Ada Li {i}"), "US");
        p.time_zone = Some(zone.clone());
        p.specialty = Some(Specialty {
            code: if i % 7 == 6 {
                "208D00000X"
            } else {
                "207RC0000X"
            }
            .into(),
            label: "Cardiology".into(),
        });
        p.assigned_reps = vec![format!("rep-{}", i % 2)];
        p.contact.email = Some(format!("ada{i}@hospital.example"));
        profiles.push(p);
        if has_consent(i) {
            consents.push(NewConsent {
                scope: ConsentScope {
                    hcp: id,
                    channel: Channel::RepVisit,
                    purpose: Purpose::Promotional,
                    market: "US".into(),
                    product: None,
                },
                status: ConsentStatus::OptIn,
                source: ConsentSource::WebForm,
                recorded_at: now_millis() - 86_400_000,
                recorded_by: "rep".into(),
            });
        }
    }
    store.upsert_profiles("import", &profiles).unwrap();
    store.record_consents("import", &consents).unwrap();
    let approved = store
        .put_version(
            "author",
            "cz",
            &body("The recommended starting dose is 80 mg once daily."),
        )
        .unwrap();
    let pre = NewPreScreen {
        policy_version: "test".into(),
        report: json!({}),
    };
    store.submit_for_review("author", &approved, &pre).unwrap();
    for (who, role) in [
        ("m", ReviewRole::Medical),
        ("l", ReviewRole::Legal),
        ("r", ReviewRole::Regulatory),
    ] {
        store.sign_off(who, &approved, role).unwrap();
    }
    let draft = store
        .put_version("author", "cz-draft", &body("Cardiozen cures hypertension."))
        .unwrap();

    let dyn_store: Arc<dyn Store> = store.clone();
    let policy = Arc::new(PolicyHandle::empty());
    let version = policy
        .reload(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies"))
        .unwrap();
    let clearance = Clearance::new();
    let runtime = Runtime::new(RuntimeConfig {
        egress: Arc::new(GateInspector(clearance.clone())),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let sender = Sender::new(
        Gate::new(policy.clone(), dyn_store.clone()),
        dyn_store.clone(),
        clearance,
        "campaigns",
    );
    let campaigns = Campaigns::new(
        dyn_store.clone(),
        RunOptions {
            page: 5,
            owner: "api-test".into(),
            actor: "campaigns".into(),
            ..RunOptions::default()
        },
    )
    .with_sender(sender);
    let mut stop = None;
    if runner {
        let scorer = target_dir().join("plugins/stage-scorer.toml");
        assert!(
            scorer.is_file(),
            "{} is not built: run `cargo xtask plugins`",
            scorer.display()
        );
        runtime.registry().load(&scorer).unwrap();
        let runner = Runner::new(campaigns.clone());
        let flag = Arc::new(AtomicBool::new(false));
        stop = Some((flag.clone(), runner.waker()));
        let runtime = runtime.clone();
        std::thread::spawn(move || {
            runner.run(
                &|| runtime.registry().list(),
                &flag,
                Duration::from_secs(600),
            );
        });
    }
    let journeys = Journeys::new(dyn_store.clone(), JourneyOptions::default());
    let state = AppState::new(runtime.clone(), Some(version))
        .with_service(Arc::new(Service::new(dyn_store, policy)))
        .with_orchestration(Arc::new(Orchestration {
            campaigns: Arc::new(campaigns),
            journeys: Arc::new(journeys),
            runner: stop.as_ref().map(|(_, w)| w.clone()),
        }));
    Api {
        app: router(state),
        store,
        approved,
        draft,
        stop,
        _runtime: runtime,
        _dir: dir,
    }
}

impl Api {
    async fn call(
        &self,
        method: &str,
        uri: &str,
        actor: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(a) = actor {
            req = req.header("x-omnigate-actor", a);
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let response = self
            .app
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let problem = response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v == "application/problem+json");
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert_eq!(
            problem,
            status.is_client_error() || status.is_server_error(),
            "errors, and only errors, are problem documents: {status} {json}"
        );
        (status, json)
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.call("GET", uri, None, None).await
    }

    async fn post(&self, uri: &str, actor: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call("POST", uri, Some(actor), body).await
    }

    /// A call that must fail with `status` and `code`: the problem.
    async fn refused(
        &self,
        method: &str,
        uri: &str,
        body: Option<Value>,
        status: u16,
        code: &str,
    ) -> Value {
        let (got, problem) = self.call(method, uri, Some("marketer"), body).await;
        assert_eq!(
            (got.as_u16(), problem["code"].as_str()),
            (status, Some(code)),
            "{method} {uri}: {problem}"
        );
        assert_eq!(problem["status"], status);
        problem
    }

    fn definition(&self, id: &str) -> Value {
        json!({
            "id": id,
            "name": "Cardiozen dosing",
            "product": "cardiozen",
            "market": "US",
            "goal": {"target-stage": "adoption"},
            "audience": {"specialty": ["207RC0000X"]},
            // The unapproved draft first: the gate blocks it wherever the
            // model ranks it, and the walk falls back to the approved one.
            "actions": [
                {"version": self.draft.0, "channels": ["rep-visit"], "topics": ["efficacy"], "stage": "awareness"},
                {"version": self.approved.0, "channels": ["rep-visit"], "topics": ["dosing"], "stage": "awareness"}
            ],
            "channels": ["rep-visit"],
            "scoring": {"plugin": "stage-scorer"},
            "holdout": 0.1,
            "values": {"salutation": "Dr."},
            "suggestions": {"due": "3d", "expires": "14d"}
        })
    }

    /// Waits for the campaign to reach `state` with no run holding it (the
    /// background runner marks it completed, then gives its lease back).
    async fn wait_for_state(&self, id: &str, state: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, s) = self.get(&format!("/v1/campaigns/{id}")).await;
            assert_eq!(status, 200, "{s}");
            if s["state"] == json!(state) && s["runner"].is_null() {
                return s;
            }
            assert!(Instant::now() < deadline, "never {state}: {s}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test]
async fn definitions_are_checked_and_every_problem_is_named_by_its_json_path() {
    let api = api(false);
    let def = api.definition("cz-web");
    let (status, out) = api
        .post("/v1/campaigns", "marketer", Some(def.clone()))
        .await;
    assert_eq!(status, 201, "{out}");
    assert_eq!(out["created"], json!(true));
    assert_eq!(out["state"], json!("draft"));
    assert_eq!(out["definition"]["id"], json!("cz-web"));
    assert_eq!(out["created_by"], json!("marketer"));
    // The same definition again changes nothing; another one under the id
    // is refused.
    let (status, out) = api
        .post("/v1/campaigns", "marketer", Some(def.clone()))
        .await;
    assert_eq!((status.as_u16(), &out["created"]), (200, &json!(false)));
    let mut other = def.clone();
    other["name"] = json!("something else");
    api.refused("POST", "/v1/campaigns", Some(other), 409, "conflict")
        .await;

    // Several problems: each is listed at its path; nothing is stored.
    let mut bad = api.definition("cz-bad");
    bad["holdout"] = json!(0.9);
    bad["actions"][1]["channels"] = json!(["rep-visit", "sms"]);
    bad["goal"]["target-stage"] = json!("nirvana");
    let problem = api
        .refused("POST", "/v1/campaigns", Some(bad), 400, "invalid-input")
        .await;
    assert_eq!(problem["path"], json!("$.holdout"), "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .starts_with("request body, at $.holdout: holdout share 0.9 is out of range"),
        "{problem}"
    );
    let paths: Vec<&str> = problem["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "$.holdout",
            "$.goal.target-stage",
            "$.actions[1].channels[1]"
        ],
        "{problem}"
    );
    assert!(
        problem["problems"][2]["detail"]
            .as_str()
            .unwrap()
            .contains("`sms` is not among the campaign's channels"),
        "{problem}"
    );
    // A shape error (an unknown field) names its path too.
    let mut typo = api.definition("cz-typo");
    typo["holdot"] = json!(0.1);
    let problem = api
        .refused("POST", "/v1/campaigns", Some(typo), 400, "invalid-input")
        .await;
    assert!(
        problem["detail"].as_str().unwrap().contains("holdot"),
        "{problem}"
    );
    api.refused("POST", "/v1/campaigns", None, 400, "invalid-json")
        .await;
    // No actor: refused before anything is read.
    let (status, problem) = api
        .call(
            "POST",
            "/v1/campaigns",
            None,
            Some(api.definition("cz-anon")),
        )
        .await;
    assert_eq!(
        (status.as_u16(), &problem["code"]),
        (400, &json!("missing-actor"))
    );

    let (status, list) = api.get("/v1/campaigns").await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["cz-web"], "nothing else was stored");
}

#[tokio::test]
async fn the_lifecycle_over_http_refuses_illegal_moves_and_unknown_campaigns() {
    let api = api(false);
    // A window that opens tomorrow: started, it is scheduled.
    let mut def = api.definition("cz-later");
    let tomorrow = now_millis() + 86_400_000;
    def["window"] = json!({"start": tomorrow, "end": tomorrow + 86_400_000});
    let (status, out) = api.post("/v1/campaigns", "marketer", Some(def)).await;
    assert_eq!(status, 201, "{out}");

    // Not started yet: a draft cannot be paused.
    let problem = api
        .refused(
            "POST",
            "/v1/campaigns/cz-later/pause",
            None,
            409,
            "wrong-state",
        )
        .await;
    assert!(
        problem["detail"].as_str().unwrap().contains("cz-later"),
        "{problem}"
    );
    let (status, out) = api
        .post("/v1/campaigns/cz-later/start", "marketer", None)
        .await;
    assert_eq!(
        (status.as_u16(), &out["state"]),
        (200, &json!("scheduled")),
        "{out}"
    );
    let (status, out) = api
        .post("/v1/campaigns/cz-later/pause", "marketer", None)
        .await;
    assert_eq!(
        (status.as_u16(), &out["state"]),
        (200, &json!("paused")),
        "{out}"
    );
    let (status, out) = api
        .post("/v1/campaigns/cz-later/start", "marketer", None)
        .await;
    assert_eq!(
        (status.as_u16(), &out["state"]),
        (200, &json!("scheduled")),
        "{out}"
    );

    // Cancel needs a reason, in the body.
    let problem = api
        .refused(
            "POST",
            "/v1/campaigns/cz-later/cancel",
            Some(json!({})),
            400,
            "invalid-input",
        )
        .await;
    assert_eq!(problem["path"], json!("$.reason"));
    let problem = api
        .refused(
            "POST",
            "/v1/campaigns/cz-later/cancel",
            Some(json!({"reason": "x", "colour": "red"})),
            400,
            "invalid-input",
        )
        .await;
    assert_eq!(problem["path"], json!("$.colour"));
    let (status, out) = api
        .post(
            "/v1/campaigns/cz-later/cancel",
            "marketer",
            Some(json!({"reason": "brand plan changed"})),
        )
        .await;
    assert_eq!(
        (status.as_u16(), &out["state"]),
        (200, &json!("cancelled")),
        "{out}"
    );
    // Final.
    for action in ["start", "pause"] {
        api.refused(
            "POST",
            &format!("/v1/campaigns/cz-later/{action}"),
            None,
            409,
            "wrong-state",
        )
        .await;
    }
    // Cancelling again is a no-op, like any move to the state it is in.
    let (status, out) = api
        .post(
            "/v1/campaigns/cz-later/cancel",
            "marketer",
            Some(json!({"reason": "again"})),
        )
        .await;
    assert_eq!(
        (status.as_u16(), &out["state"]),
        (200, &json!("cancelled")),
        "{out}"
    );

    // The status of a campaign that never ran.
    let (status, s) = api.get("/v1/campaigns/cz-later").await;
    assert_eq!(status, 200);
    assert_eq!(s["state"], json!("cancelled"));
    for key in [
        "audience",
        "holdout",
        "outcomes",
        "pending",
        "rate_per_minute",
        "eta_seconds",
        "runner",
        "resolved",
    ] {
        assert!(s.get(key).is_some(), "status has `{key}`: {s}");
    }

    // An unknown campaign: 404 with a stable code, everywhere.
    for (method, uri, body) in [
        ("GET", "/v1/campaigns/nope", None),
        ("GET", "/v1/campaigns/nope/members", None),
        ("GET", "/v1/campaigns/nope/report", None),
        ("POST", "/v1/campaigns/nope/start", None),
        ("POST", "/v1/campaigns/nope/pause", None),
        (
            "POST",
            "/v1/campaigns/nope/cancel",
            Some(json!({"reason": "r"})),
        ),
    ] {
        api.refused(method, uri, body, 404, "unknown-campaign")
            .await;
    }
    // A malformed id is bad input, named as the path segment.
    let problem = api
        .refused(
            "GET",
            "/v1/campaigns/NOT%20AN%20ID",
            None,
            400,
            "invalid-input",
        )
        .await;
    assert_eq!(problem["argument"], json!("id"), "{problem}");
    // Unknown query parameters and filters are refused.
    let problem = api
        .refused(
            "GET",
            "/v1/campaigns/cz-later/members?colour=red",
            None,
            400,
            "invalid-input",
        )
        .await;
    assert_eq!(problem["argument"], json!("colour"));
    let problem = api
        .refused(
            "GET",
            "/v1/campaigns/cz-later/members?outcome=lost",
            None,
            400,
            "invalid-input",
        )
        .await;
    assert_eq!(problem["argument"], json!("outcome"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_started_over_http_is_run_by_the_runner_and_its_suggestions_are_worked() {
    let api = api(true);
    let (status, out) = api
        .post(
            "/v1/campaigns",
            "marketer",
            Some(api.definition("cz-field")),
        )
        .await;
    assert_eq!(status, 201, "{out}");
    let (status, out) = api
        .post("/v1/campaigns/cz-field/start", "marketer", None)
        .await;
    assert_eq!(
        (status.as_u16(), &out["state"]),
        (200, &json!("running")),
        "{out}"
    );
    // The runner polls every 10 minutes: the start woke it.
    let s = api.wait_for_state("cz-field", "completed").await;
    let cardiologists = (0..HCPS).filter(|i| i % 7 != 6).count() as u64;
    assert_eq!(s["audience"], json!(cardiologists), "{s}");
    assert_eq!(s["pending"], json!(0));
    let outcomes = &s["outcomes"];
    let dispatched = outcomes["dispatched"].as_u64().unwrap();
    let suppressed = outcomes["suppressed"].as_u64().unwrap();
    let holdout = outcomes["holdout"].as_u64().unwrap();
    assert_eq!(dispatched + suppressed + holdout, cardiologists, "{s}");
    assert!(dispatched > 0 && suppressed > 0, "{s}");

    // Members, filtered by outcome, with their reasons.
    let (status, members) = api
        .get("/v1/campaigns/cz-field/members?outcome=suppressed&limit=1000")
        .await;
    assert_eq!(status, 200);
    let members = members.as_array().unwrap();
    assert_eq!(members.len() as u64, suppressed);
    for m in members {
        assert_eq!(m["outcome"], json!("suppressed"));
        let i: usize = m["hcp"].as_str().unwrap()[4..].parse().unwrap();
        assert!(!has_consent(i), "{m}");
        assert!(m["reasons"].to_string().contains("consent-opt-in"), "{m}");
    }
    let (_, page) = api.get("/v1/campaigns/cz-field/members?limit=2").await;
    assert_eq!(page.as_array().unwrap().len(), 2);

    // The report: the JSON of `omnigate report --format json`.
    let (status, report) = api.get("/v1/campaigns/cz-field/report").await;
    assert_eq!(status, 200, "{report}");
    let expected =
        omnigate_engine::report::report(&*api.store, &CampaignId::new("cz-field").unwrap())
            .unwrap();
    assert_eq!(report, serde_json::to_value(&expected).unwrap());
    assert_eq!(report["outcomes"]["dispatched"], json!(dispatched));
    assert_eq!(report["outcomes"]["suppressed"], json!(suppressed));
    let blocked = report["blocked_by_rule"].as_object().unwrap();
    assert!(blocked.contains_key("content-not-approved"), "{report}");
    assert!(blocked.contains_key("consent-opt-in"), "{report}");
    assert_eq!(report["suggestions"]["open"], json!(dispatched));

    // The list shows its status.
    let (_, list) = api.get("/v1/campaigns").await;
    assert_eq!(list[0]["id"], json!("cz-field"));
    assert_eq!(list[0]["state"], json!("completed"));

    // The reps' queues: every dispatch is a suggestion of the approved
    // version for the HCP's rep.
    let (status, open) = api
        .get("/v1/suggestions?campaign=cz-field&state=open&limit=1000")
        .await;
    assert_eq!(status, 200);
    let open = open.as_array().unwrap().clone();
    assert_eq!(open.len() as u64, dispatched);
    for s in &open {
        assert_eq!(s["version"], json!(api.approved.0));
        assert_eq!(s["channel"], json!("rep-visit"));
        assert!(s["due_at"].as_i64() < s["expires_at"].as_i64());
    }
    let (_, rep0) = api.get("/v1/suggestions?rep=rep-0&limit=1000").await;
    let rep0 = rep0.as_array().unwrap();
    assert!(!rep0.is_empty() && rep0.len() < open.len());
    assert!(rep0.iter().all(|s| s["rep"] == json!("rep-0")));
    let first_hcp = open[0]["hcp"].as_str().unwrap().to_owned();
    let (_, of_hcp) = api.get(&format!("/v1/suggestions?hcp={first_hcp}")).await;
    assert!(
        of_hcp
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["hcp"] == json!(first_hcp))
    );
    api.refused(
        "GET",
        "/v1/suggestions?state=later",
        None,
        400,
        "invalid-input",
    )
    .await;
    api.refused(
        "GET",
        "/v1/suggestions?colour=red",
        None,
        400,
        "invalid-input",
    )
    .await;

    // Done, with a note: closed, and the feedback is an event of the HCP.
    let done_id = open[0]["id"].as_str().unwrap().to_owned();
    let (status, out) = api
        .post(
            &format!("/v1/suggestions/{done_id}/done"),
            "rep-0",
            Some(json!({"note": "discussed the dosing guide"})),
        )
        .await;
    assert_eq!(
        (status.as_u16(), &out["state"]),
        (200, &json!("done")),
        "{out}"
    );
    let (_, events) = api.get(&format!("/v1/hcps/{first_hcp}/events")).await;
    assert!(
        events["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == json!("suggestion-done")),
        "{events}"
    );
    // Closed: it cannot be closed again.
    api.refused(
        "POST",
        &format!("/v1/suggestions/{done_id}/dismiss"),
        Some(json!({"reason": "changed my mind"})),
        409,
        "conflict",
    )
    .await;

    // Dismiss needs a reason.
    let dismiss_id = open[1]["id"].as_str().unwrap().to_owned();
    let uri = format!("/v1/suggestions/{dismiss_id}/dismiss");
    let problem = api
        .refused("POST", &uri, Some(json!({})), 400, "invalid-input")
        .await;
    assert_eq!(problem["path"], json!("$.reason"));
    api.refused(
        "POST",
        &uri,
        Some(json!({"reason": "  "})),
        400,
        "invalid-input",
    )
    .await;
    let (status, out) = api
        .post(&uri, "rep-1", Some(json!({"reason": "HCP on leave"})))
        .await;
    assert_eq!(
        (status.as_u16(), &out["state"]),
        (200, &json!("dismissed")),
        "{out}"
    );
    assert_eq!(out["closed"][2], json!("HCP on leave"));

    // Unknown: 404.
    api.refused(
        "POST",
        "/v1/suggestions/no-such-suggestion/done",
        Some(json!({})),
        404,
        "unknown-suggestion",
    )
    .await;

    let (_, closed) = api
        .get("/v1/suggestions?campaign=cz-field&state=done")
        .await;
    let closed = closed.as_array().unwrap();
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0]["id"], json!(done_id));
    let (_, report) = api.get("/v1/campaigns/cz-field/report").await;
    assert_eq!(report["suggestions"]["done"], json!(1));
    assert_eq!(report["suggestions"]["dismissed"], json!(1));
    assert_eq!(report["suggestions"]["open"], json!(dispatched - 2));
}
