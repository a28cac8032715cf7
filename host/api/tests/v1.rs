//! The `/v1` API driven through the router (`tower::ServiceExt::oneshot`)
//! over a real SQLite store and the shipped policies: status codes, problem
//! documents with their code and JSON path, nothing changed on refusal.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use omnigate_api::{AppState, router};
use omnigate_core::{ApprovalPolicy, ReviewRole, Store};
use omnigate_policy::PolicyHandle;
use omnigate_runtime::{Runtime, RuntimeConfig};
use omnigate_service::Service;
use omnigate_store::{SqliteStore, StoreOptions};
use serde_json::{Value, json};
use tower::ServiceExt;

struct Api {
    app: Router,
    dir: tempfile::TempDir,
}

fn api_with(approval: ApprovalPolicy) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let mut options = StoreOptions::new(dir.path().join("data"));
    options.approval = approval;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(options).unwrap());
    let policy = Arc::new(PolicyHandle::empty());
    let policies = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    let version = policy.reload(&policies).unwrap();
    let state = AppState::new(
        Runtime::new(RuntimeConfig::default()).unwrap(),
        Some(version),
    )
    .with_service(Arc::new(Service::new(store, policy)));
    Api {
        app: router(state),
        dir,
    }
}

fn api() -> Api {
    api_with(ApprovalPolicy::default())
}

impl Api {
    async fn raw(&self, req: Request<Body>) -> (StatusCode, Option<String>, Value) {
        let response = self.app.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let ctype = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, ctype, json)
    }

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
        let (status, _, json) = self.raw(req.body(body).unwrap()).await;
        (status, json)
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.call("GET", uri, None, None).await
    }

    async fn post(&self, uri: &str, actor: &str, body: Value) -> (StatusCode, Value) {
        self.call("POST", uri, Some(actor), Some(body)).await
    }

    async fn audit_len(&self) -> u64 {
        let (status, report) = self.get("/v1/audit/verify").await;
        assert_eq!(status, 200);
        report["entries"].as_u64().unwrap()
    }

    /// Sends a call that must be refused and checks the audit log did not
    /// move; returns the problem document.
    async fn refused(
        &self,
        method: &str,
        uri: &str,
        actor: Option<&str>,
        body: Option<Value>,
        status: u16,
        code: &str,
    ) -> Value {
        let before = self.audit_len().await;
        let (got, problem) = self.call(method, uri, actor, body).await;
        assert_eq!(
            (got.as_u16(), problem["code"].as_str()),
            (status, Some(code)),
            "{problem}"
        );
        assert_eq!(problem["status"], status);
        assert_eq!(
            self.audit_len().await,
            before,
            "a refused call changed the audit log"
        );
        problem
    }

    async fn with_jane(&self) {
        let (status, out) = self
            .post("/v1/hcps", "importer", json!({"profiles": [jane()]}))
            .await;
        assert_eq!(status, 200, "{out}");
    }
}

const T0: i64 = 1_763_900_000_000;

fn jane() -> Value {
    json!({"id": "1234567890", "name": "Dr. Jane Doe", "market": "US", "licence": "active",
        "contact": {"email": "jane.doe@clinic.example", "phone": "+1 555 010 2030"}})
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

async fn put(api: &Api, item: &str, text: &str) -> String {
    let (status, out) = api
        .post(
            &format!("/v1/content/items/{item}/versions"),
            "alice",
            version_body(text),
        )
        .await;
    assert_eq!(status, 201, "{out}");
    out["hash"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_hcp_is_imported_and_shown_without_its_contact_details() {
    let api = api();
    api.with_jane().await;
    let (status, out) = api
        .post(
            "/v1/consent",
            "rep-7",
            json!({"records": [consent("1234567890", "email")]}),
        )
        .await;
    assert_eq!(
        (status.as_u16(), out["recorded"].as_u64()),
        (201, Some(1)),
        "{out}"
    );
    let (status, view) = api.get("/v1/hcps/1234567890").await;
    assert_eq!(status, 200);
    assert_eq!(view["profile"]["name"], "Dr. Jane Doe");
    assert_eq!(
        view["profile"]["contact_present"],
        json!(["email", "phone"])
    );
    assert_eq!(view["consent"][0]["status"], "opt-in");
    let text = view.to_string();
    assert!(
        !text.contains("jane.doe@") && !text.contains("555"),
        "{text}"
    );
    let (_, current) = api
        .get("/v1/consent/current?hcp=1234567890&channel=email&purpose=promotional&market=US")
        .await;
    assert_eq!(current["allows_dispatch"], true, "{current}");
    let (_, history) = api.get("/v1/hcps/1234567890/consent").await;
    assert_eq!(history["records"].as_array().unwrap().len(), 1);
    assert_eq!(history["current"][0]["status"], "opt-in");
}

#[tokio::test]
async fn an_unknown_hcp_is_a_404_naming_where_it_was_given() {
    let api = api();
    api.with_jane().await;
    let p = api
        .refused(
            "POST",
            "/v1/consent",
            Some("rep-7"),
            Some(json!({"records": [consent("1234567890", "email"), consent("999", "email")]})),
            404,
            "unknown-hcp",
        )
        .await;
    assert_eq!(p["path"], "$.records[1].hcp");
    assert_eq!(
        p["detail"],
        "request body, at $.records[1].hcp: unknown HCP `999`"
    );
    let p = api
        .refused("GET", "/v1/hcps/999", None, None, 404, "unknown-hcp")
        .await;
    assert_eq!(p["detail"], "unknown HCP `999`");
    let mut e = open_event("e1");
    e["hcp"] = json!("999");
    let p = api
        .refused(
            "POST",
            "/v1/events",
            Some("adapter"),
            Some(json!({"batch_id": "b1", "events": [open_event("e0"), e]})),
            404,
            "unknown-hcp",
        )
        .await;
    assert_eq!(p["path"], "$.events[1].hcp");
}

#[tokio::test]
async fn bad_events_are_400s_with_the_json_path_of_the_bad_field() {
    let api = api();
    api.with_jane().await;
    let mut fax = open_event("e1");
    fax["type"] = json!("fax-sent");
    let p = api
        .refused(
            "POST",
            "/v1/events",
            Some("adapter"),
            Some(json!({"batch_id": "b1", "events": [fax]})),
            400,
            "invalid-input",
        )
        .await;
    assert_eq!(p["path"], "$.events[0].type");
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("unknown event type `fax-sent` (expected one of: rep-visit,"),
        "{p}"
    );
    let mut missing = open_event("e1");
    missing["attributes"] = json!({"dispatch_id": "d1"});
    let p = api
        .refused(
            "POST",
            "/v1/events",
            Some("adapter"),
            Some(json!({"batch_id": "b1", "events": [missing]})),
            400,
            "invalid-input",
        )
        .await;
    assert_eq!(p["path"], "$.events[0].attributes.content_version");
    let mut no_time = open_event("e1");
    no_time.as_object_mut().unwrap().remove("occurred_at");
    let p = api
        .refused(
            "POST",
            "/v1/events",
            Some("adapter"),
            Some(json!({"batch_id": "b1", "events": [no_time]})),
            400,
            "invalid-input",
        )
        .await;
    assert_eq!(p["path"], "$.events[0]");
    assert_eq!(
        p["detail"],
        "request body, at $.events[0]: missing field `occurred_at`"
    );
    let p = api
        .refused(
            "POST",
            "/v1/events",
            Some("adapter"),
            Some(json!({"events": []})),
            400,
            "invalid-input",
        )
        .await;
    assert_eq!(p["path"], "$.batch_id");
}

#[tokio::test]
async fn consent_for_an_unknown_channel_is_a_400_listing_the_channels() {
    let api = api();
    api.with_jane().await;
    let p = api
        .refused(
            "POST",
            "/v1/consent",
            Some("rep-7"),
            Some(json!({"records": [consent("1234567890", "sms2")]})),
            400,
            "invalid-input",
        )
        .await;
    assert_eq!(p["path"], "$.records[0].channel");
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .ends_with("unknown channel `sms2` (expected one of: email, sms, wechat, rep-visit, remote-call, phone-call, webinar, congress, hospital-meeting, web)"),
        "{p}"
    );
}

#[tokio::test]
async fn a_replayed_batch_adds_nothing_and_says_so() {
    let api = api();
    api.with_jane().await;
    let body = json!({"batch_id": "b1", "events": [open_event("e1"), open_event("e2")]});
    let (status, first) = api.post("/v1/events", "adapter", body.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(
        (first["accepted"].as_u64(), first["replay"].as_bool()),
        (Some(2), Some(false))
    );
    let before = api.audit_len().await;
    let (_, again) = api.post("/v1/events", "adapter", body).await;
    assert_eq!(again["replay"], true, "{again}");
    assert_eq!(again["duplicates"], 2);
    assert_eq!(api.audit_len().await, before);
    let (_, events) = api.get("/v1/hcps/1234567890/events").await;
    assert_eq!(events["events"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn the_content_lifecycle_needs_three_distinct_reviewers_and_shows_the_pre_screen() {
    let api = api();
    let h = put(&api, "cure-email", "Cardiozen cures hypertension.").await;
    let base = format!("/v1/content/versions/{h}");
    let (status, submitted) = api
        .post(&format!("{base}/submit"), "alice", json!({}))
        .await;
    assert_eq!(status, 200, "{submitted}");
    assert_eq!(submitted["state"], "in-review");
    assert_eq!(submitted["prescreen"]["verdict"], "block");

    // Reviewers see the findings first.
    let (_, view) = api.get(&base).await;
    assert_eq!(view["prescreen_summary"]["verdict"], "block");
    let rules = view["prescreen_summary"]["blocking_rules"]
        .as_array()
        .unwrap();
    assert!(rules.contains(&json!("absolute-cure")), "{view}");
    let findings = view["prescreen"]["report"]["results"][0]["findings"]
        .as_array()
        .unwrap();
    assert!(
        findings
            .iter()
            .any(|f| f["rule"] == "absolute-cure" && f["excerpt"] == "cures")
    );

    let p = api
        .refused(
            "POST",
            &format!("{base}/sign-off"),
            Some("alice"),
            Some(json!({"role": "medical"})),
            409,
            "author-cannot-review",
        )
        .await;
    assert_eq!(
        p["detail"],
        format!("`alice` wrote content version `{h}` and cannot review it")
    );
    for (who, role, state) in [
        ("mel", "medical", "in-review"),
        ("lea", "legal", "in-review"),
        ("reg", "regulatory", "approved"),
    ] {
        let (status, out) = api
            .post(&format!("{base}/sign-off"), who, json!({"role": role}))
            .await;
        assert_eq!(
            (status.as_u16(), out["state"].as_str()),
            (200, Some(state)),
            "{out}"
        );
    }
    let (_, view) = api.get(&base).await;
    assert_eq!(view["state"], "approved");
    let signers: BTreeSet<&str> = view["sign_offs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["reviewer"].as_str().unwrap())
        .collect();
    assert_eq!(signers, BTreeSet::from(["mel", "lea", "reg"]));
    assert!(
        view["sign_offs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["version"] == h.as_str())
    );

    let p = api
        .refused(
            "POST",
            &format!("{base}/submit"),
            Some("alice"),
            Some(json!({})),
            409,
            "wrong-state",
        )
        .await;
    assert!(
        p["detail"].as_str().unwrap().contains("it is approved"),
        "{p}"
    );
    let (status, out) = api
        .post(
            &format!("{base}/withdraw"),
            "compliance",
            json!({"reason": "label change"}),
        )
        .await;
    assert_eq!(
        (status.as_u16(), out["state"].as_str()),
        (200, Some("withdrawn"))
    );
    let (_, listed) = api.get("/v1/content/items/cure-email/versions").await;
    assert_eq!(listed["versions"][0]["state"], "withdrawn");
}

#[tokio::test]
async fn a_role_that_is_not_required_is_a_409() {
    let api = api_with(ApprovalPolicy {
        default_roles: ReviewRole::ALL.into_iter().collect(),
        per_market: BTreeMap::from([(
            "US".into(),
            BTreeSet::from([ReviewRole::Medical, ReviewRole::Legal]),
        )]),
    });
    let h = put(&api, "x", "Cardiozen news.").await;
    let base = format!("/v1/content/versions/{h}");
    api.post(&format!("{base}/submit"), "alice", json!({}))
        .await;
    let p = api
        .refused(
            "POST",
            &format!("{base}/sign-off"),
            Some("reg"),
            Some(json!({"role": "regulatory"})),
            409,
            "role-not-required",
        )
        .await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .ends_with("(required: `medical`, `legal`)"),
        "{p}"
    );
    let p = api
        .refused(
            "POST",
            &format!("{base}/sign-off"),
            Some("reg"),
            Some(json!({"role": "approver"})),
            400,
            "invalid-input",
        )
        .await;
    assert_eq!(p["argument"], "role");
}

#[tokio::test]
async fn approving_a_hash_that_is_not_the_current_version_is_a_409() {
    let api = api();
    let h1 = put(&api, "x", "Cardiozen news.").await;
    api.post(
        &format!("/v1/content/versions/{h1}/submit"),
        "alice",
        json!({}),
    )
    .await;
    let h2 = put(&api, "x", "Cardiozen news, edited.").await;
    let p = api
        .refused(
            "POST",
            &format!("/v1/content/versions/{h1}/sign-off"),
            Some("mel"),
            Some(json!({"role": "medical"})),
            409,
            "not-current-version",
        )
        .await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .ends_with(&format!("(current: `{h2}`)")),
        "{p}"
    );
    api.refused(
        "POST",
        &format!("/v1/content/versions/{}/sign-off", "0".repeat(64)),
        Some("mel"),
        Some(json!({"role": "medical"})),
        404,
        "unknown-version",
    )
    .await;
    let p = api
        .refused(
            "POST",
            "/v1/content/versions/not-a-hash/sign-off",
            Some("mel"),
            Some(json!({"role": "medical"})),
            400,
            "invalid-input",
        )
        .await;
    assert_eq!(p["argument"], "hash");
}

#[tokio::test]
async fn a_bad_content_body_names_the_field() {
    let api = api();
    let mut body = version_body("x");
    body["metadata"]["channels"] = json!(["email", "sms2"]);
    let p = api
        .refused(
            "POST",
            "/v1/content/items/x/versions",
            Some("alice"),
            Some(body),
            400,
            "invalid-input",
        )
        .await;
    assert_eq!(p["path"], "$.metadata.channels[1]");
}

#[tokio::test]
async fn mutating_calls_need_an_actor_and_bodies_must_be_json() {
    let api = api();
    let p = api
        .refused(
            "POST",
            "/v1/hcps",
            None,
            Some(json!({"profiles": [jane()]})),
            400,
            "missing-actor",
        )
        .await;
    assert_eq!(p["argument"], "x-omnigate-actor");
    let req = Request::post("/v1/hcps")
        .header("x-omnigate-actor", "importer")
        .body(Body::from("{\"profiles\": [jane"))
        .unwrap();
    let (status, ctype, p) = api.raw(req).await;
    assert_eq!(
        (status.as_u16(), p["code"].as_str()),
        (400, Some("invalid-json")),
        "{p}"
    );
    assert_eq!(ctype.as_deref(), Some("application/problem+json"));
    let p = api
        .refused(
            "POST",
            "/v1/hcps",
            Some("importer"),
            Some(json!({"profile": [jane()]})),
            400,
            "invalid-input",
        )
        .await;
    assert_eq!(p["path"], "$.profile");
}

#[tokio::test]
async fn no_contact_detail_appears_in_an_error() {
    let api = api();
    for (field, value) in [
        ("licence", json!("revoked")),
        ("id", json!("jane.doe@clinic.example")),
        (
            "contact",
            json!({"email": "jane.doe@clinic.example", "phone": 15550102030_i64}),
        ),
        (
            "contact",
            json!({"email": "jane.doe(at)clinic.example", "phone": "+1 555 010 2030"}),
        ),
        ("contact", json!({"mail": "jane.doe@clinic.example"})),
    ] {
        let mut p = jane();
        p[field] = value;
        let problem = api
            .refused(
                "POST",
                "/v1/hcps",
                Some("importer"),
                Some(json!({"profiles": [p]})),
                400,
                "invalid-input",
            )
            .await
            .to_string();
        for secret in ["jane.doe", "555", "0102030"] {
            assert!(!problem.contains(secret), "{problem}");
        }
    }
    let (_, p) = api.get("/v1/hcps/jane.doe@clinic.example").await;
    assert!(!p.to_string().contains("jane.doe"), "{p}");
}

#[tokio::test]
async fn oversized_requests_are_413_problems() {
    let api = api();
    let many: Vec<Value> = (0..=omnigate_service::input::MAX_BATCH_ITEMS)
        .map(|i| json!({"id": format!("h{i}")}))
        .collect();
    api.refused(
        "POST",
        "/v1/hcps",
        Some("importer"),
        Some(json!({"profiles": many})),
        413,
        "too-large",
    )
    .await;
    let huge = "x".repeat(omnigate_api::MAX_BODY_BYTES + 1);
    let req = Request::post("/v1/hcps")
        .header("x-omnigate-actor", "importer")
        .header(header::CONTENT_LENGTH, huge.len())
        .body(Body::from(huge))
        .unwrap();
    let (status, ctype, p) = api.raw(req).await;
    assert_eq!(
        (status.as_u16(), p["code"].as_str()),
        (413, Some("too-large")),
        "{p}"
    );
    assert_eq!(ctype.as_deref(), Some("application/problem+json"));
}

#[tokio::test]
async fn a_storage_failure_is_a_500_that_reveals_nothing_internal() {
    let api = api();
    let h = put(&api, "x", "Cardiozen news.").await;
    // Break the store behind its back, as a full disk or a bad file would.
    let raw = rusqlite::Connection::open(api.dir.path().join("data/omnigate.db")).unwrap();
    raw.execute_batch("DROP TRIGGER content_prescreen_no_delete; DROP TABLE content_prescreen")
        .unwrap();
    let (status, p) = api
        .post(
            &format!("/v1/content/versions/{h}/submit"),
            "alice",
            json!({}),
        )
        .await;
    assert_eq!(
        (status.as_u16(), p["code"].as_str()),
        (500, Some("internal")),
        "{p}"
    );
    let text = p.to_string();
    assert!(
        !text.contains("content_prescreen") && !text.contains("SQL"),
        "{text}"
    );
    assert!(p["request_id"].is_string());
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems_and_health_is_unchanged() {
    let api = api();
    let (status, p) = api.get("/v1/nothing").await;
    assert_eq!(
        (status.as_u16(), p["code"].as_str()),
        (404, Some("no-route"))
    );
    let (status, p) = api
        .call("DELETE", "/v1/hcps/1234567890", Some("x"), None)
        .await;
    assert_eq!(
        (status.as_u16(), p["code"].as_str()),
        (405, Some("method-not-allowed"))
    );
    let (status, health) = api.get("/health").await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");
}

#[tokio::test]
async fn the_audit_log_is_paged_and_verifies() {
    let api = api();
    api.with_jane().await;
    put(&api, "x", "Cardiozen news.").await;
    let (_, page) = api.get("/v1/audit?from=1&limit=1").await;
    assert_eq!(page["entries"][0]["seq"], 1);
    assert_eq!(page["next"], 2);
    let (_, page) = api.get("/v1/audit?from=2&limit=100").await;
    assert_eq!(page["entries"][0]["action"], "content.draft");
    assert_eq!(page["next"], Value::Null);
    let (_, report) = api.get("/v1/audit/verify").await;
    assert_eq!(
        (report["entries"].as_u64(), &report["broken"]),
        (Some(2), &Value::Null)
    );
    let (status, p) = api.get("/v1/audit?limit=5000").await;
    assert_eq!(
        (status.as_u16(), p["argument"].as_str()),
        (400, Some("limit"))
    );
}

#[tokio::test]
async fn identity_merges_and_journeys_are_reachable() {
    let api = api();
    let mut dup = jane();
    dup["id"] = json!("CRM-1");
    api.post("/v1/hcps", "importer", json!({"profiles": [jane(), dup]}))
        .await;
    let (status, m) = api
        .post(
            "/v1/merges",
            "steward",
            json!({"survivor": "1234567890", "merged": "CRM-1", "reason": "same NPI"}),
        )
        .await;
    assert_eq!(status, 201, "{m}");
    let (_, view) = api.get("/v1/hcps/CRM-1").await;
    assert_eq!(view["merged_into"], "1234567890");
    let id = m["merge_id"].as_i64().unwrap();
    let (status, _) = api
        .post(
            &format!("/v1/merges/{id}/undo"),
            "steward",
            json!({"reason": "different people"}),
        )
        .await;
    assert_eq!(status, 200);
    api.refused(
        "POST",
        &format!("/v1/merges/{id}/undo"),
        Some("steward"),
        Some(json!({"reason": "again"})),
        404,
        "unknown-merge",
    )
    .await;
    let (status, j) = api
        .call(
            "PUT",
            "/v1/hcps/1234567890/journeys/cardiozen",
            Some("am"),
            Some(json!({"stage": "interest", "reason": "asked for data"})),
        )
        .await;
    assert_eq!(
        (status.as_u16(), j["stage"].as_str()),
        (200, Some("interest")),
        "{j}"
    );
}
