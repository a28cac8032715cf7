//! The gate against a real SQLite store and the shipped policy set.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use omnigate_core::consent::{ConsentScope, ConsentSource, ConsentStatus, NewConsent, Purpose};
use omnigate_core::content::{
    Audience, ContentBody, ContentMetadata, NewPreScreen, ReviewRole, VersionHash,
};
use omnigate_core::event::{EventType, NewEvent};
use omnigate_core::ledger::{DecisionFilter, DispatchState, LedgerStore, Outcome, Verdict};
use omnigate_core::store::{AuditStore, ConsentStore, ContentStore, EventStore, HcpStore};
use omnigate_core::template::PersonalField;
use omnigate_core::{Channel, HcpId, HcpProfile, Store};
use omnigate_gate::{Decided, DispatchRequest, Gate};
use omnigate_policy::{PolicyHandle, load_dir};
use omnigate_store::{SqliteStore, StoreOptions};

/// 2026-11-24 15:00 in New York (20:00 UTC).
const AFTERNOON: i64 = 1_795_550_400_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

const FOOTER: &str = "Important Safety Information: Cardiozen can cause fetal toxicity; discontinue when pregnancy is detected. Hypotension, hyperkalemia and renal impairment can occur. Please see full Prescribing Information. To unsubscribe, click here.";

struct World {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    gate: Gate,
    hcp: HcpId,
    approved: VersionHash,
}

fn policy() -> Arc<PolicyHandle> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    Arc::new(PolicyHandle::new(load_dir(&dir).unwrap()))
}

fn body(text: &str) -> ContentBody {
    ContentBody {
        parts: BTreeMap::from([
            ("subject".into(), "New blood pressure data".into()),
            (
                "text".into(),
                format!("{{{{salutation}}}} {{{{name}}}},\n\n{text}\n\n{FOOTER}"),
            ),
        ]),
        variants: BTreeMap::new(),
        personalization_fields: BTreeSet::from(["salutation".into(), "name".into()]),
        metadata: ContentMetadata {
            product: "cardiozen".into(),
            indications: BTreeSet::from(["hypertension".into()]),
            markets: BTreeSet::from(["US".into()]),
            channels: BTreeSet::from([Channel::Email]),
            audience: Audience::Hcp,
            claims: BTreeMap::from([("bp-week-8".into(), "Data on file, ZEN-1".into())]),
            disclaimers: Vec::new(),
            isi: None,
            expires_at: None,
        },
    }
}

fn approve(store: &SqliteStore, item: &str, b: &ContentBody) -> VersionHash {
    let h = store.put_version("author", item, b).unwrap();
    let prescreen = NewPreScreen {
        policy_version: "test".into(),
        report: serde_json::json!({}),
    };
    store.submit_for_review("author", &h, &prescreen).unwrap();
    for (who, role) in [
        ("dr-med", ReviewRole::Medical),
        ("lawyer", ReviewRole::Legal),
        ("reg", ReviewRole::Regulatory),
    ] {
        store.sign_off(who, &h, role).unwrap();
    }
    h
}

fn opt(store: &SqliteStore, hcp: &HcpId, channel: Channel, status: ConsentStatus, at: i64) {
    store
        .record_consents(
            "rep-1",
            &[NewConsent {
                scope: ConsentScope {
                    hcp: hcp.clone(),
                    channel,
                    purpose: Purpose::Promotional,
                    market: "US".into(),
                    product: None,
                },
                status,
                source: ConsentSource::WebForm,
                recorded_at: at,
                recorded_by: "rep-1".into(),
            }],
        )
        .unwrap();
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(StoreOptions::new(dir.path().join("data"))).unwrap());
    let hcp = HcpId::new("npi-1234567890").unwrap();
    let mut p = HcpProfile::new(hcp.clone(), "Ada Li", "US");
    p.time_zone = Some("America/New_York".into());
    p.contact.email = Some("ada.li@hospital.example".into());
    store.upsert_profiles("import", &[p]).unwrap();
    let approved = approve(
        &store,
        "cz-bp-email",
        &body(
            "At week 8, mean systolic blood pressure fell by 14.2 mmHg with Cardiozen 160 mg vs 5.1 mmHg with placebo (p<0.001) [1].",
        ),
    );
    opt(
        &store,
        &hcp,
        Channel::Email,
        ConsentStatus::OptIn,
        AFTERNOON - 30 * DAY,
    );
    let dyn_store: Arc<dyn Store> = store.clone();
    let gate = Gate::new(policy(), dyn_store);
    World {
        _dir: dir,
        store,
        gate,
        hcp,
        approved,
    }
}

fn request(w: &World, id: &str) -> DispatchRequest {
    DispatchRequest {
        dispatch_id: id.into(),
        campaign: Some("bp-launch".into()),
        hcp: w.hcp.clone(),
        version: w.approved.clone(),
        channel: Channel::Email,
        purpose: Purpose::Promotional,
        market: None,
        values: BTreeMap::from([(PersonalField::Salutation, "Dr.".into())]),
        proposed: None,
        at: AFTERNOON,
    }
}

fn s(x: &str) -> String {
    x.to_owned()
}

fn blocking(d: &Decided) -> Vec<String> {
    d.record.blocking_rules().map(str::to_owned).collect()
}

/// Decides and records, as the engine does; returns the decision.
fn send(w: &World, req: &DispatchRequest) -> Decided {
    let d = w.gate.decide(req);
    let key = format!("{}:key", req.dispatch_id);
    let dispatch = d.dispatch(&key);
    w.store
        .record_decisions("test", std::slice::from_ref(&d.record), dispatch.as_slice())
        .unwrap();
    d
}

#[test]
fn allows_approved_consented_content_and_records_the_evidence() {
    let w = world();
    let d = send(&w, &request(&w, "d-1"));
    assert_eq!(d.record.verdict, Verdict::Allow, "{:#?}", d.record.rules);
    let text = &d.rendered.as_ref().unwrap().parts["text"];
    assert!(text.starts_with("Dr. Ada Li,\n\nAt week 8"), "{text}");
    let r = &d.record;
    assert_eq!(r.market, "US");
    assert!(r.consent.is_some());
    assert_eq!(r.policy_version, w.gate.policy().version());
    assert_eq!(
        r.text_sha256.as_deref(),
        Some(d.rendered.as_ref().unwrap().sha256.as_str())
    );
    let approval = r
        .rules
        .iter()
        .find(|x| x.rule == "content-approved")
        .unwrap();
    assert_eq!(approval.evidence["sign_offs"].as_array().unwrap().len(), 3);
    let cap = r.rules.iter().find(|x| x.rule == "email-weekly").unwrap();
    assert_eq!(cap.outcome, Outcome::Pass);
    assert_eq!(cap.evidence["counted"], 0);
    // Recorded: listed, in the ledger, in the audit chain, without contact details.
    let listed = w
        .store
        .decisions(&DecisionFilter {
            hcp: Some(w.hcp.clone()),
            ..DecisionFilter::default()
        })
        .unwrap();
    assert_eq!(listed, vec![d.record.clone()]);
    let disp = w.store.dispatch("d-1").unwrap().unwrap();
    assert_eq!(disp.state, DispatchState::Queued);
    assert_eq!(disp.dispatch.decision, d.record.id);
    let report = w.store.verify_audit().unwrap();
    assert!(report.is_intact());
    let entries = w.store.audit_entries(1, 1000).unwrap();
    let decision_entry = entries
        .iter()
        .find(|e| e.action == "gate.decision")
        .unwrap();
    assert!(!decision_entry.payload.contains("hospital.example"));
    assert!(entries.iter().any(|e| e.action == "dispatch.queue"));
}

#[test]
fn a_draft_with_an_absolute_claim_is_blocked_with_every_reason() {
    let w = world();
    let draft = w
        .store
        .put_version("author", "cz-draft", &body("Cardiozen cures hypertension."))
        .unwrap();
    let mut req = request(&w, "d-2");
    req.version = draft;
    let d = w.gate.decide(&req);
    assert_eq!(d.record.verdict, Verdict::Block);
    let rules = blocking(&d);
    assert!(rules.contains(&s("content-not-approved")), "{rules:?}");
    assert!(rules.contains(&s("absolute-cure")), "{rules:?}");
    assert!(d.rendered.is_none());
    assert!(d.dispatch("k").is_none());
    assert!(
        d.record.summary.starts_with("Blocked: content `cz-draft`"),
        "{}",
        d.record.summary
    );
    let claim = d
        .record
        .rules
        .iter()
        .find(|r| r.rule == "absolute-cure")
        .unwrap();
    assert_eq!(claim.evidence["part"], "text");
    assert!(
        claim.evidence["excerpt"]
            .as_str()
            .unwrap()
            .contains("cures")
    );
}

#[test]
fn withdrawn_expired_unknown_and_misdirected_content_is_blocked() {
    let w = world();
    // Queued dispatches of a version are cancelled when it is withdrawn.
    send(&w, &request(&w, "d-3"));
    w.store
        .withdraw("reg", &w.approved, "new safety data")
        .unwrap();
    assert_eq!(
        w.store.dispatch("d-3").unwrap().unwrap().state,
        DispatchState::Cancelled
    );
    let d = w.gate.decide(&request(&w, "d-4"));
    assert_eq!(blocking(&d), vec!["content-not-approved"]);

    let mut b = body("The recommended starting dose is 80 mg once daily.");
    b.metadata.expires_at = Some(AFTERNOON - HOUR);
    let expiring = approve(&w.store, "cz-dose", &b);
    let mut req = request(&w, "d-5");
    req.version = expiring;
    assert!(blocking(&w.gate.decide(&req)).contains(&s("content-expired")));

    req.version = VersionHash("00".repeat(32));
    assert_eq!(blocking(&w.gate.decide(&req)), vec!["content-unknown"]);

    let mut b = body("The recommended starting dose is 80 mg once daily.");
    b.metadata.markets = BTreeSet::from(["UK".into()]);
    let uk = approve(&w.store, "cz-uk", &b);
    req.version = uk;
    req.channel = Channel::Sms;
    let rules = blocking(&w.gate.decide(&req)).join(" ");
    assert!(rules.contains("content-not-for-market"), "{rules}");
    assert!(rules.contains("content-not-for-channel"), "{rules}");
}

#[test]
fn a_proposed_text_must_equal_the_approved_rendering() {
    let w = world();
    let allowed = w.gate.decide(&request(&w, "d-6"));
    let mut parts = allowed.rendered.unwrap().parts;
    let mut req = request(&w, "d-7");
    req.proposed = Some(parts.clone());
    assert_eq!(w.gate.decide(&req).record.verdict, Verdict::Allow);
    parts.insert(
        "text".into(),
        parts["text"].replace("[1].", "[1]. Best in class."),
    );
    req.proposed = Some(parts.clone());
    let d = w.gate.decide(&req);
    assert_eq!(blocking(&d), vec!["integrity"]);
    assert_eq!(d.record.rules[0].evidence["part"], "text");
    // An extra part is a difference too.
    parts = w.gate.decide(&request(&w, "d-8")).rendered.unwrap().parts;
    parts.insert("preheader".into(), "Act now".into());
    req.proposed = Some(parts);
    assert_eq!(blocking(&w.gate.decide(&req)), vec!["integrity"]);
}

#[test]
fn personalization_is_limited_to_declared_fields_with_checked_values() {
    let w = world();
    let mut req = request(&w, "d-9");
    req.values
        .insert(PersonalField::Salutation, "Dr.\nCardiozen cures".into());
    assert_eq!(
        blocking(&w.gate.decide(&req)),
        vec!["personalization-value"]
    );
    req.values.clear();
    assert_eq!(
        blocking(&w.gate.decide(&req)),
        vec!["personalization-missing"]
    );
    req.values.insert(PersonalField::Salutation, "Dr.".into());
    req.values.insert(PersonalField::Name, "Anyone".into());
    assert!(blocking(&w.gate.decide(&req)).contains(&s("personalization-value")));

    let mut b = body("Your rep {{rep-name}} will call.");
    b.personalization_fields.remove("name");
    let undeclared = approve(&w.store, "cz-rep", &b);
    let mut req = request(&w, "d-10");
    req.version = undeclared;
    req.values.insert(PersonalField::RepName, "Sam".into());
    let rules = blocking(&w.gate.decide(&req));
    assert!(
        rules.contains(&s("personalization-undeclared")),
        "{rules:?}"
    );
}

#[test]
fn consent_is_required_and_an_opt_out_stops_queued_dispatches() {
    let w = world();
    send(&w, &request(&w, "d-11"));
    opt(
        &w.store,
        &w.hcp,
        Channel::Email,
        ConsentStatus::OptOut,
        AFTERNOON - HOUR,
    );
    assert_eq!(
        w.store.dispatch("d-11").unwrap().unwrap().state,
        DispatchState::Cancelled
    );
    let d = w.gate.decide(&request(&w, "d-12"));
    assert_eq!(blocking(&d), vec!["consent-opt-in", "us-email-optin"]);
    assert!(d.record.summary.contains("opt-out"), "{}", d.record.summary);
    assert_eq!(d.record.consent, None);

    let mut b = body("The recommended starting dose is 80 mg once daily.");
    b.metadata.channels.insert(Channel::Sms);
    let sms = approve(&w.store, "cz-sms", &b);
    let mut req = request(&w, "d-13");
    req.version = sms;
    req.channel = Channel::Sms;
    let rules = blocking(&w.gate.decide(&req));
    assert!(rules.contains(&s("consent-opt-in")), "{rules:?}");
    assert!(rules.contains(&s("us-sms-optin")), "{rules:?}");
}

#[test]
fn caps_count_the_ledger_and_field_touches_and_block() {
    let w = world();
    // Two e-mails this week (three days apart, respecting the 48 h gap).
    let mut first = request(&w, "d-14");
    first.at = AFTERNOON - 5 * DAY;
    assert_eq!(send(&w, &first).record.verdict, Verdict::Allow);
    let mut second = request(&w, "d-15");
    second.at = AFTERNOON - 2 * DAY - HOUR;
    assert_eq!(send(&w, &second).record.verdict, Verdict::Allow);
    let d = w.gate.decide(&request(&w, "d-16"));
    assert_eq!(blocking(&d), vec!["email-weekly"]);
    let cap = &d.record.rules[0];
    assert_eq!(cap.evidence["counted"], 2);
    assert_eq!(cap.evidence["max"], 2);

    // Within 48 h of a queued e-mail: the minimum gap blocks.
    let w = world();
    let mut first = request(&w, "d-17");
    first.at = AFTERNOON - 20 * HOUR;
    send(&w, &first);
    assert_eq!(
        blocking(&w.gate.decide(&request(&w, "d-18"))),
        vec!["email-min-gap"]
    );

    // Field visits from events count towards the all-channel cap.
    let w = world();
    let visits: Vec<NewEvent> = (0..5)
        .map(|i| NewEvent {
            id: format!("visit-{i}"),
            hcp: w.hcp.clone(),
            event_type: EventType::RepVisit,
            channel: Channel::RepVisit,
            occurred_at: AFTERNOON - (i + 1) * DAY / 2,
            attributes: serde_json::Map::from_iter([("rep_id".to_owned(), "rep-1".into())]),
        })
        .collect();
    w.store.ingest("crm", "visits", &visits).unwrap();
    let d = w.gate.decide(&request(&w, "d-19"));
    assert!(
        blocking(&d).contains(&s("all-channels-weekly")),
        "{:#?}",
        d.record.rules
    );
}

#[test]
fn quiet_hours_use_the_hcps_time_zone_and_an_unknown_zone_blocks() {
    let w = world();
    let mut req = request(&w, "d-20");
    req.at = AFTERNOON + 7 * HOUR; // 22:00 in New York
    let d = w.gate.decide(&req);
    assert_eq!(blocking(&d), vec!["quiet-hours"]);
    assert_eq!(d.record.rules[0].evidence["local_time"], "22:00");

    let mut p = w.store.profile(&w.hcp).unwrap().unwrap();
    p.time_zone = Some("Mars/Olympus_Mons".into());
    w.store.upsert_profiles("import", &[p]).unwrap();
    let d = w.gate.decide(&request(&w, "d-21"));
    assert_eq!(blocking(&d), vec!["quiet-hours"]);
    assert!(d.record.rules[0].reason.contains("unknown"));
}

#[test]
fn the_gate_fails_closed() {
    let w = world();
    let store: Arc<dyn Store> = w.store.clone();
    let no_policy = Gate::new(Arc::new(PolicyHandle::empty()), store);
    let d = no_policy.decide(&request(&w, "d-22"));
    assert_eq!(blocking(&d), vec!["policy-not-loaded"]);
    assert_eq!(d.record.policy_version, None);
    assert!(d.dispatch("k").is_none());

    let mut req = request(&w, "d-23");
    req.hcp = HcpId::new("nobody").unwrap();
    assert_eq!(blocking(&w.gate.decide(&req)), vec!["hcp-unknown"]);

    // A market the policy does not know cannot be screened.
    let mut req = request(&w, "d-24");
    req.market = Some("BR".into());
    let rules = blocking(&w.gate.decide(&req));
    assert!(rules.contains(&s("content-not-for-market")), "{rules:?}");
}

#[test]
fn decisions_are_listed_by_campaign_rule_and_verdict() {
    let w = world();
    send(&w, &request(&w, "d-25"));
    let mut other = request(&w, "d-26");
    other.campaign = Some("other".into());
    other.at = AFTERNOON + 7 * HOUR;
    send(&w, &other);
    let by = |f: DecisionFilter| {
        w.store
            .decisions(&f)
            .unwrap()
            .into_iter()
            .map(|d| d.dispatch)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        by(DecisionFilter {
            rule: Some("quiet-hours".into()),
            ..Default::default()
        }),
        vec!["d-26"]
    );
    assert_eq!(
        by(DecisionFilter {
            verdict: Some(Verdict::Allow),
            ..Default::default()
        }),
        vec!["d-25"]
    );
    assert_eq!(
        by(DecisionFilter {
            campaign: Some("bp-launch".into()),
            ..Default::default()
        }),
        vec!["d-25"]
    );
    assert_eq!(by(DecisionFilter::default()), vec!["d-26", "d-25"]);
    let newest = w.store.decisions(&DecisionFilter::default()).unwrap()[0]
        .id
        .clone();
    assert_eq!(
        by(DecisionFilter {
            before: Some(newest),
            ..Default::default()
        }),
        vec!["d-25"]
    );
}

#[test]
fn a_newer_approved_version_supersedes_the_older_one() {
    let w = world();
    send(&w, &request(&w, "d-30"));
    // A draft of a new version does not stop the approved one.
    let v2 = body(
        "At week 8, mean systolic blood pressure fell by 14.5 mmHg with Cardiozen 160 mg vs 5.1 mmHg with placebo (p<0.001) [1].",
    );
    let h2 = w.store.put_version("author", "cz-bp-email", &v2).unwrap();
    let mut later = request(&w, "d-31");
    later.at = AFTERNOON + 3 * DAY;
    let d = w.gate.decide(&later);
    assert_eq!(d.record.verdict, Verdict::Allow, "{:?}", blocking(&d));
    // Once it is approved, the old one is superseded and its queue cancelled.
    let prescreen = NewPreScreen {
        policy_version: "test".into(),
        report: serde_json::json!({}),
    };
    w.store
        .submit_for_review("author", &h2, &prescreen)
        .unwrap();
    for (who, role) in [
        ("dr-med", ReviewRole::Medical),
        ("lawyer", ReviewRole::Legal),
        ("reg", ReviewRole::Regulatory),
    ] {
        w.store.sign_off(who, &h2, role).unwrap();
    }
    assert_eq!(
        w.store.dispatch("d-30").unwrap().unwrap().state,
        DispatchState::Cancelled
    );
    let d = w.gate.decide(&request(&w, "d-32"));
    assert_eq!(blocking(&d), vec!["content-superseded"]);
    let mut req = request(&w, "d-33");
    req.version = h2;
    req.at = AFTERNOON + 3 * DAY;
    let d = w.gate.decide(&req);
    assert_eq!(d.record.verdict, Verdict::Allow, "{:?}", blocking(&d));
}
