//! The service over a real SQLite file in a temporary directory and the
//! shipped policy set: every refusal names what and where and changes
//! nothing; the content lifecycle with its pre-screen.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use omnigate_core::event::now_millis;
use omnigate_core::{ApprovalPolicy, ContentState, ReviewRole, Store};
use omnigate_policy::PolicyHandle;
use omnigate_service::input::{self, Batch};
use omnigate_service::{ErrorKind, Service, ServiceError};
use omnigate_store::{SqliteStore, StoreOptions};
use serde_json::{Value, json};

fn policies() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

struct Fixture {
    service: Service,
    _dir: tempfile::TempDir,
}

fn fixture_with(approval: ApprovalPolicy) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut options = StoreOptions::new(dir.path().join("data"));
    options.approval = approval;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(options).unwrap());
    let policy = Arc::new(PolicyHandle::empty());
    policy.reload(&policies()).unwrap();
    Fixture {
        service: Service::new(store, policy),
        _dir: dir,
    }
}

fn fixture() -> Fixture {
    fixture_with(ApprovalPolicy::default())
}

impl Fixture {
    fn audit_len(&self) -> u64 {
        self.service.verify_audit().unwrap().entries
    }

    fn jsonl<T>(
        &self,
        file: &str,
        lines: &[Value],
        parse: impl FnMut(Value, &omnigate_service::Location) -> omnigate_service::ServiceResult<T>,
    ) -> omnigate_service::ServiceResult<Batch<T>> {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        input::read_json_lines(text.as_bytes(), file, parse, &mut |_| {})
    }

    fn import(&self, profiles: &[Value]) {
        let batch = self.jsonl("hcps.jsonl", profiles, input::profile).unwrap();
        self.service.import_profiles("importer", &batch).unwrap();
    }

    /// Runs `f`, expects an error, and checks the audit log did not move.
    fn refused<T: std::fmt::Debug>(
        &self,
        f: impl FnOnce(&Service) -> omnigate_service::ServiceResult<T>,
    ) -> ServiceError {
        let before = self.audit_len();
        let err = f(&self.service).unwrap_err();
        assert_eq!(
            self.audit_len(),
            before,
            "a refused call changed the audit log: {err}"
        );
        err
    }
}

const T0: i64 = 1_763_900_000_000;

fn jane() -> Value {
    json!({"id": "1234567890", "name": "Dr. Jane Doe", "market": "US",
        "specialty": {"code": "207RC0000X", "label": "Cardiovascular Disease"},
        "tags": ["hypertension"], "licence": "active",
        "contact": {"email": "jane.doe@clinic.example", "phone": "+1 555 010 2030"}})
}

fn consent(hcp: &str, channel: &str, status: &str) -> Value {
    json!({"hcp": hcp, "channel": channel, "purpose": "promotional", "market": "US",
        "status": status, "source": "web-form", "recorded_at": T0, "recorded_by": "rep-7"})
}

fn open_event(id: &str, hcp: &str) -> Value {
    json!({"id": id, "hcp": hcp, "type": "email-opened", "channel": "email",
        "occurred_at": T0, "attributes": {"dispatch_id": "d1", "content_version": "v1"}})
}

const FOOTER: &str = "Important Safety Information: may cause dizziness. Please see full \
                      Prescribing Information. To unsubscribe, click here.";

fn body(text: &str) -> omnigate_core::ContentBody {
    let v = json!({
        "parts": {"subject": "Cardiozen news", "text": format!("{text} {FOOTER}")},
        "metadata": {"product": "cardiozen", "indications": ["hypertension"], "markets": ["US"],
            "channels": ["email"], "audience": "hcp", "claims": {}, "disclaimers": [],
            "isi": "Important Safety Information: may cause dizziness.", "expires_at": null}
    });
    input::content_body(v, &omnigate_service::Location::argument("body")).unwrap()
}

#[test]
fn a_profile_is_shown_with_consent_features_and_journeys_but_never_its_contact_details() {
    let f = fixture();
    f.import(&[jane()]);
    let batch = f
        .jsonl(
            "consent.jsonl",
            &[consent("1234567890", "email", "opt-in")],
            input::consent,
        )
        .unwrap();
    assert_eq!(
        f.service.record_consents("rep-7", &batch).unwrap().recorded,
        1
    );
    let events = f
        .jsonl(
            "events.jsonl",
            &[open_event("e1", "1234567890")],
            input::event,
        )
        .unwrap();
    f.service.ingest_events("adapter", "b1", &events).unwrap();

    let view = f.service.hcp("1234567890", T0).unwrap();
    assert_eq!(view.profile.name, "Dr. Jane Doe");
    assert_eq!(view.profile.contact_present, ["email", "phone"]);
    assert_eq!(view.consent.len(), 1);
    assert_eq!(view.events_total, 1);
    assert_eq!(view.features.content_seen, ["v1"]);
    let shown = serde_json::to_string(&view).unwrap();
    assert!(!shown.contains("jane.doe@"), "{shown}");
    assert!(!shown.contains("555"), "{shown}");

    let current = f
        .service
        .consent_current(
            "1234567890",
            "email",
            "promotional",
            "US",
            Some("cardiozen"),
        )
        .unwrap();
    assert!(current.allows_dispatch);
}

#[test]
fn an_unknown_hcp_is_named_with_its_line_and_nothing_is_stored() {
    let f = fixture();
    f.import(&[jane()]);
    let batch = f
        .jsonl(
            "consent.jsonl",
            &[
                consent("1234567890", "email", "opt-in"),
                consent("999", "email", "opt-in"),
            ],
            input::consent,
        )
        .unwrap();
    let err = f.refused(|s| s.record_consents("rep-7", &batch));
    assert_eq!(
        err.to_string(),
        "line 2 of consent.jsonl, at $.hcp: unknown HCP `999`"
    );
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(
        f.service
            .consent_history("1234567890")
            .unwrap()
            .records
            .is_empty()
    );

    let events = f
        .jsonl(
            "events.jsonl",
            &[open_event("e1", "1234567890"), open_event("e2", "999")],
            input::event,
        )
        .unwrap();
    let err = f.refused(|s| s.ingest_events("adapter", "b1", &events));
    assert_eq!(
        err.to_string(),
        "line 2 of events.jsonl, at $.hcp: unknown HCP `999`; nothing in the batch was stored"
    );
    let err = f.refused(|s| s.ingest_events_chunked("adapter", "b1", &events, &mut |_| {}));
    assert!(
        err.to_string()
            .starts_with("line 2 of events.jsonl, at $.hcp: unknown HCP `999`")
    );
    assert_eq!(f.service.store().event_count().unwrap(), 0);

    let err = f.refused(|s| s.hcp("999", T0));
    assert_eq!(
        (err.code(), err.to_string().as_str()),
        ("unknown-hcp", "unknown HCP `999`")
    );
}

#[test]
fn unknown_event_types_and_events_missing_fields_are_refused_before_anything_is_stored() {
    let f = fixture();
    f.import(&[jane()]);
    let before = f.audit_len();
    let mut fax = open_event("e1", "1234567890");
    fax["type"] = json!("fax-sent");
    let err = f.jsonl("events.jsonl", &[fax], input::event).unwrap_err();
    assert!(
        err.to_string().starts_with(
            "line 1 of events.jsonl, at $.type: unknown event type `fax-sent` (expected one of: "
        ),
        "{err}"
    );
    let mut missing = open_event("e2", "1234567890");
    missing["attributes"] = json!({"dispatch_id": "d1"});
    let err = f
        .jsonl(
            "events.jsonl",
            &[open_event("e1", "1234567890"), missing],
            input::event,
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 2 of events.jsonl, at $.attributes.content_version: event `e2`: a `email-opened` event needs attribute `content_version` (a non-empty string)"
    );
    let mut no_hcp = open_event("e3", "1234567890");
    no_hcp.as_object_mut().unwrap().remove("hcp");
    let err = f
        .jsonl("events.jsonl", &[no_hcp], input::event)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 1 of events.jsonl: missing field `hcp`"
    );
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert_eq!(f.audit_len(), before);
    assert_eq!(f.service.store().event_count().unwrap(), 0);
}

#[test]
fn consent_for_an_unknown_channel_is_refused_naming_the_choices() {
    let f = fixture();
    f.import(&[jane()]);
    let before = f.audit_len();
    let err = f
        .jsonl(
            "consent.jsonl",
            &[consent("1234567890", "sms2", "opt-in")],
            input::consent,
        )
        .unwrap_err();
    assert!(
        err.to_string().starts_with(
            "line 1 of consent.jsonl, at $.channel: unknown channel `sms2` (expected one of: email, sms, wechat,"
        ),
        "{err}"
    );
    assert_eq!(f.audit_len(), before);
}

#[test]
fn a_replayed_event_batch_adds_nothing_and_says_so() {
    let f = fixture();
    f.import(&[jane()]);
    let events = f
        .jsonl(
            "events.jsonl",
            &[
                open_event("e1", "1234567890"),
                open_event("e2", "1234567890"),
            ],
            input::event,
        )
        .unwrap();
    let first = f.service.ingest_events("adapter", "b1", &events).unwrap();
    assert_eq!(
        (first.accepted, first.duplicates, first.replay),
        (2, 0, false)
    );
    let before = f.audit_len();
    let again = f.service.ingest_events("adapter", "b1", &events).unwrap();
    assert_eq!(
        (again.accepted, again.duplicates, again.replay),
        (0, 2, true)
    );
    assert_eq!(f.audit_len(), before);
}

#[test]
fn no_contact_detail_ever_appears_in_an_error_message() {
    let f = fixture();
    let secrets = [
        "jane.doe@clinic.example",
        "555 010 2030",
        "5550102030",
        "0102030",
    ];
    let mut bad = Vec::new();
    for (field, value) in [
        ("licence", json!("revoked")),
        ("name", json!(42)),
        ("tags", json!("jane.doe@clinic.example")),
        ("id", json!("jane.doe@clinic.example")),
        ("id", json!("+1 555 010 2030")),
        ("contact", json!({"email": 5550102030_i64})),
        (
            "contact",
            json!({"email": "jane.doe@clinic.example", "phone": "ring 555 010 2030"}),
        ),
        ("contact", json!({"email": "jane.doe(at)clinic.example"})),
        ("contact", json!({"emial": "jane.doe@clinic.example"})),
    ] {
        let mut p = jane();
        p[field] = value;
        bad.push(p);
    }
    for p in bad {
        let err = f
            .jsonl("hcps.jsonl", &[p], input::profile)
            .unwrap_err()
            .to_string();
        for s in secrets {
            assert!(!err.contains(s), "{err}");
        }
    }
    // Errors from the store side, too.
    f.import(&[jane()]);
    for err in [
        f.service.hcp("jane.doe@clinic.example", T0).unwrap_err(),
        f.service
            .consent_current(
                "1234567890",
                "jane.doe@clinic.example",
                "promotional",
                "US",
                None,
            )
            .unwrap_err(),
        f.service
            .sign_off("rev", "jane.doe@clinic.example", "medical")
            .unwrap_err(),
        f.service
            .merge("importer", "1234567890", "+15550102030", "same person")
            .unwrap_err(),
    ] {
        let shown = err.to_string();
        for s in secrets {
            assert!(!shown.contains(s), "{shown}");
        }
    }
}

#[test]
fn the_full_lifecycle_needs_three_distinct_reviewers_who_are_not_the_author() {
    let f = fixture();
    let put = f
        .service
        .put_version(
            "alice",
            "launch-email",
            &body("Cardiozen lowers blood pressure."),
        )
        .unwrap();
    assert!(put.created);
    assert_eq!(put.state, ContentState::Draft);
    let h = put.hash.0.clone();

    let submitted = f.service.submit("alice", &h).unwrap();
    assert_eq!(submitted.state, ContentState::InReview);

    // The author is refused, with the reason, and nothing changes.
    let err = f.refused(|s| s.sign_off("alice", &h, "medical"));
    assert_eq!(err.code(), "author-cannot-review");
    assert_eq!(err.kind(), ErrorKind::Refused);
    assert_eq!(
        err.to_string(),
        format!("`alice` wrote content version `{h}` and cannot review it")
    );

    let out = f.service.sign_off("mel", &h, "medical").unwrap();
    assert_eq!(
        out.missing_roles,
        [ReviewRole::Legal, ReviewRole::Regulatory]
    );
    let err = f.refused(|s| s.sign_off("mel", &h, "legal"));
    assert_eq!(err.code(), "duplicate-sign-off");
    let err = f.refused(|s| s.sign_off("lea", &h, "approver"));
    assert_eq!(
        err.to_string(),
        "argument `role`: unknown review role `approver` (expected one of: medical, legal, regulatory)"
    );
    f.service.sign_off("lea", &h, "legal").unwrap();
    let out = f.service.sign_off("reg", &h, "regulatory").unwrap();
    assert_eq!(out.state, ContentState::Approved);

    let view = f.service.version(&h).unwrap();
    assert_eq!(view.state, ContentState::Approved);
    assert!(view.missing_roles.is_empty());
    let who: BTreeSet<&str> = view.sign_offs.iter().map(|s| s.reviewer.as_str()).collect();
    assert_eq!(who, BTreeSet::from(["mel", "lea", "reg"]));
    assert!(view.sign_offs.iter().all(|s| s.version.0 == h));

    let err = f.refused(|s| s.submit("alice", &h));
    assert_eq!(err.code(), "wrong-state");
    f.service
        .withdraw("compliance", &h, "label update")
        .unwrap();
    assert_eq!(
        f.service.version(&h).unwrap().state,
        ContentState::Withdrawn
    );
    assert!(f.service.verify_audit().unwrap().is_intact());
}

#[test]
fn the_pre_screen_findings_are_attached_at_submission_for_the_reviewers() {
    let f = fixture();
    let h = f
        .service
        .put_version(
            "alice",
            "cure-email",
            &body("Cardiozen cures hypertension."),
        )
        .unwrap()
        .hash
        .0;
    assert!(f.service.version(&h).unwrap().prescreen.is_none());
    let out = f.service.submit("alice", &h).unwrap();
    assert!(
        out.prescreen
            .blocking_rules
            .contains(&"absolute-cure".to_owned())
    );
    // Blocking findings do not prevent review.
    assert_eq!(out.state, ContentState::InReview);

    let view = f.service.version(&h).unwrap();
    let summary = view.prescreen_summary.unwrap();
    assert_eq!(summary.verdict, "block");
    assert!(summary.blocking_rules.contains(&"absolute-cure".to_owned()));
    assert_eq!(
        summary.policy_version,
        f.service.policy().version().unwrap()
    );
    let report = view.prescreen.unwrap().report;
    let finding = report["results"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["rule"] == "absolute-cure")
        .unwrap()
        .clone();
    assert_eq!(finding["part"], "text");
    assert_eq!(finding["excerpt"], "cures");
    assert_eq!(report["results"][0]["market"], "US");
    assert_eq!(report["results"][0]["channel"], "email");
}

#[test]
fn a_submission_is_screened_with_the_policy_in_force_at_that_moment() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(StoreOptions::new(dir.path())).unwrap());
    let policy = Arc::new(PolicyHandle::empty());
    let service = Service::new(store, policy.clone());
    let h1 = service
        .put_version("alice", "a", &body("Cardiozen news."))
        .unwrap()
        .hash
        .0;
    let out = service.submit("alice", &h1).unwrap();
    // Without a policy the pre-screen fails closed, nothing dropped.
    assert_eq!(out.prescreen.policy_version, "none");
    assert_eq!(out.prescreen.blocking_rules, ["no-policy"]);
    // A reload (as on SIGHUP) is seen by the next submission.
    let version = policy.reload(&policies()).unwrap();
    let h2 = service
        .put_version("alice", "b", &body("Cardiozen news, again."))
        .unwrap()
        .hash
        .0;
    assert_eq!(
        service
            .submit("alice", &h2)
            .unwrap()
            .prescreen
            .policy_version,
        version
    );
}

#[test]
fn a_role_that_is_not_required_is_refused() {
    let f = fixture_with(ApprovalPolicy {
        default_roles: ReviewRole::ALL.into_iter().collect(),
        per_market: BTreeMap::from([(
            "US".into(),
            BTreeSet::from([ReviewRole::Medical, ReviewRole::Legal]),
        )]),
    });
    let h = f
        .service
        .put_version("alice", "x", &body("Cardiozen news."))
        .unwrap()
        .hash
        .0;
    f.service.submit("alice", &h).unwrap();
    assert_eq!(
        f.service.version(&h).unwrap().required_roles,
        [ReviewRole::Medical, ReviewRole::Legal]
    );
    let err = f.refused(|s| s.sign_off("reg", &h, "regulatory"));
    assert_eq!(err.code(), "role-not-required");
    assert_eq!(
        err.to_string(),
        format!(
            "role `regulatory` is not required for content version `{h}` (required: `medical`, `legal`)"
        )
    );
    assert!(f.service.version(&h).unwrap().sign_offs.is_empty());
}

#[test]
fn approving_a_hash_that_is_not_the_current_version_is_refused() {
    let f = fixture();
    let h1 = f
        .service
        .put_version("alice", "x", &body("Cardiozen news."))
        .unwrap()
        .hash
        .0;
    f.service.submit("alice", &h1).unwrap();
    let h2 = f
        .service
        .put_version("alice", "x", &body("Cardiozen news, edited."))
        .unwrap()
        .hash
        .0;
    let err = f.refused(|s| s.sign_off("mel", &h1, "medical"));
    assert_eq!(err.code(), "not-current-version");
    assert_eq!(
        err.to_string(),
        format!("content version `{h1}` is not the current version of item `x` (current: `{h2}`)")
    );
    let err = f.refused(|s| s.sign_off("mel", &"0".repeat(64), "medical"));
    assert_eq!(err.code(), "unknown-version");
    let err = f.refused(|s| s.sign_off("mel", "abc", "medical"));
    assert_eq!(
        err.to_string(),
        "argument `hash`: not a content version hash (expected 64 lowercase hex digits, the sha256 of the version)"
    );
    let listed = f.service.versions("x").unwrap();
    assert_eq!(listed.versions.len(), 2);
    assert_eq!(listed.current.0, h2);
    assert!(listed.versions.iter().any(|v| v.hash.0 == h1 && !v.current));
}

#[test]
fn requesting_changes_needs_a_note_and_ends_the_review() {
    let f = fixture();
    let h = f
        .service
        .put_version("alice", "x", &body("Cardiozen news."))
        .unwrap()
        .hash
        .0;
    f.service.submit("alice", &h).unwrap();
    let err = f.refused(|s| s.request_changes("lea", &h, "legal", "  "));
    assert_eq!(
        err.to_string(),
        "argument `note`: the note must not be empty"
    );
    let out = f
        .service
        .request_changes("lea", &h, "legal", "cite the trial")
        .unwrap();
    assert_eq!(out.state, ContentState::ChangesRequested);
    assert_eq!(
        f.refused(|s| s.sign_off("mel", &h, "medical")).code(),
        "wrong-state"
    );
}

#[test]
fn approved_versions_expire_when_due() {
    let f = fixture();
    let mut b = body("Cardiozen news.");
    b.metadata.expires_at = Some(now_millis() + 60_000);
    let h = f.service.put_version("alice", "x", &b).unwrap().hash.0;
    f.service.submit("alice", &h).unwrap();
    for (who, role) in [("mel", "medical"), ("lea", "legal"), ("reg", "regulatory")] {
        f.service.sign_off(who, &h, role).unwrap();
    }
    assert!(
        f.service
            .expire_due("scheduler", now_millis())
            .unwrap()
            .expired
            .is_empty()
    );
    let out = f
        .service
        .expire_due("scheduler", now_millis() + 120_000)
        .unwrap();
    assert_eq!(out.expired.len(), 1);
    assert_eq!(f.service.version(&h).unwrap().state, ContentState::Expired);
}

#[test]
fn a_merge_combines_two_records_and_undoing_it_splits_them_again() {
    let f = fixture();
    let mut dup = jane();
    dup["id"] = json!("CRM-77");
    f.import(&[jane(), dup]);
    let events = f
        .jsonl("e.jsonl", &[open_event("e1", "CRM-77")], input::event)
        .unwrap();
    f.service.ingest_events("adapter", "b1", &events).unwrap();
    let m = f
        .service
        .merge("steward", "1234567890", "CRM-77", "same NPI")
        .unwrap();
    assert_eq!(f.service.hcp("1234567890", T0).unwrap().events_total, 1);
    assert_eq!(
        f.service
            .hcp("CRM-77", T0)
            .unwrap()
            .merged_into
            .unwrap()
            .as_str(),
        "1234567890"
    );
    let err = f.refused(|s| s.merge("steward", "1234567890", "CRM-77", "again"));
    assert_eq!(err.code(), "conflict");
    f.service
        .unmerge("steward", m.merge_id, "not the same")
        .unwrap();
    assert_eq!(f.service.hcp("1234567890", T0).unwrap().events_total, 0);
    let err = f.refused(|s| s.unmerge("steward", m.merge_id, "again"));
    assert_eq!(err.code(), "unknown-merge");
}

#[test]
fn a_journey_stage_set_by_decision_shows_with_its_history() {
    let f = fixture();
    f.import(&[jane()]);
    let err = f.refused(|s| s.set_journey_stage("am", "1234567890", "cardiozen", "loyalty", "x"));
    assert!(
        err.to_string()
            .starts_with("argument `stage`: unknown journey stage `loyalty`"),
        "{err}"
    );
    f.service
        .set_journey_stage(
            "am",
            "1234567890",
            "cardiozen",
            "consideration",
            "met at congress",
        )
        .unwrap();
    let view = f.service.hcp("1234567890", T0).unwrap();
    assert_eq!(view.journeys.len(), 1);
    assert_eq!(view.journeys[0].stage.as_deref(), Some("consideration"));
    assert_eq!(view.journeys[0].history.len(), 1);
}

#[test]
fn a_big_event_file_is_stored_in_chunks_with_progress() {
    let f = fixture();
    f.import(&[jane()]);
    let n = omnigate_service::CHUNK + 5;
    let lines: Vec<Value> = (0..n)
        .map(|i| open_event(&format!("e{i}"), "1234567890"))
        .collect();
    let batch = f.jsonl("events.jsonl", &lines, input::event).unwrap();
    let mut seen = Vec::new();
    let out = f
        .service
        .ingest_events_chunked("adapter", "big", &batch, &mut |done| seen.push(done))
        .unwrap();
    assert_eq!(out.accepted, n);
    assert_eq!(seen, [omnigate_service::CHUNK, n]);
    let again = f
        .service
        .ingest_events_chunked("adapter", "big", &batch, &mut |_| {})
        .unwrap();
    assert!(again.replay);
}

#[test]
fn a_version_body_built_in_code_is_checked_like_parsed_input() {
    let f = fixture();
    let mut b = body("Cardiozen news.");
    b.parts.clear();
    let err = f.refused(|s| s.put_version("alice", "x", &b));
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert_eq!(
        err.to_string(),
        "content body, at $.parts: a version needs at least one text part"
    );
    let err = f.refused(|s| s.put_version("alice", "bad item!", &body("x")));
    assert!(
        err.to_string()
            .starts_with("argument `item`: invalid content item id `bad item!`"),
        "{err}"
    );
}
