//! Journey stages derived from events by configured rules.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use omnigate_core::journey::{JourneyConfig, JourneyRule};
use omnigate_core::store::{AuditStore, EventStore, HcpStore, JourneyStore};
use omnigate_core::{EventType, NewEvent};
use omnigate_store::{OpenError, SqliteStore, StoreOptions};
use serde_json::json;

fn click(event_id: &str, hcp: &str, brand: &str, topic: &str) -> NewEvent {
    let mut e = event(event_id, hcp, EventType::EmailClicked, NOW);
    e.attributes.insert("brand".into(), json!(brand));
    e.attributes.insert("topic".into(), json!(topic));
    e
}

#[test]
fn two_clicks_on_efficacy_content_move_an_hcp_to_interest_with_the_cause_recorded() {
    let s = with_hcps(1);
    s.ingest("esp", "b1", &[click("c1", "h1", "lipitex", "efficacy")])
        .unwrap();
    assert_eq!(s.journey_stage(&id("h1"), "lipitex").unwrap(), None);
    s.ingest(
        "esp",
        "b2",
        &[
            click("c2", "h1", "lipitex", "safety"),
            click("c3", "h1", "lipitex", "efficacy"),
        ],
    )
    .unwrap();
    assert_eq!(
        s.journey_stage(&id("h1"), "lipitex").unwrap().as_deref(),
        Some("interest")
    );
    let history = s.journey_history(&id("h1"), "lipitex").unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        (
            history[0].from.as_deref(),
            history[0].to.as_str(),
            history[0].cause.as_str(),
            history[0].event.as_deref()
        ),
        (None, "interest", "efficacy-clicks", Some("c3"))
    );
    // Another brand is another ladder.
    assert_eq!(s.journey_stage(&id("h1"), "cardiva").unwrap(), None);
    let last = s.audit_entries(1, 100).unwrap().pop().unwrap();
    assert_eq!(
        (last.action.as_str(), last.subject.as_str()),
        ("journey.move", "h1")
    );
}

#[test]
fn rules_only_move_an_hcp_up_the_ladder() {
    let s = with_hcps(1);
    let mut attended = event("w1", "h1", EventType::WebinarAttended, NOW);
    attended.attributes.insert("brand".into(), json!("lipitex"));
    s.ingest("lms", "b1", &[attended]).unwrap();
    assert_eq!(
        s.journey_stage(&id("h1"), "lipitex").unwrap().as_deref(),
        Some("consideration")
    );
    s.ingest(
        "esp",
        "b2",
        &[
            click("c1", "h1", "lipitex", "efficacy"),
            click("c2", "h1", "lipitex", "efficacy"),
        ],
    )
    .unwrap();
    assert_eq!(
        s.journey_stage(&id("h1"), "lipitex").unwrap().as_deref(),
        Some("consideration")
    );
    assert_eq!(s.journey_history(&id("h1"), "lipitex").unwrap().len(), 1);
}

#[test]
fn a_replayed_batch_does_not_count_twice() {
    let s = with_hcps(1);
    let batch = [click("c1", "h1", "lipitex", "efficacy")];
    s.ingest("esp", "b1", &batch).unwrap();
    s.ingest("esp", "b1", &batch).unwrap();
    assert_eq!(s.journey_stage(&id("h1"), "lipitex").unwrap(), None);
}

#[test]
fn a_manual_move_can_go_down_and_names_its_reason() {
    let s = with_hcps(1);
    s.set_journey_stage(
        "kam-3",
        &id("h1"),
        "lipitex",
        "adoption",
        "first prescriptions reported",
    )
    .unwrap();
    s.set_journey_stage("kam-3", &id("h1"), "lipitex", "interest", "switched back")
        .unwrap();
    let history = s.journey_history(&id("h1"), "lipitex").unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].from.as_deref(), Some("adoption"));
    assert_eq!(history[1].cause, "manual: switched back");
    let err = s
        .set_journey_stage("kam-3", &id("h1"), "lipitex", "loyal", "x")
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("unknown journey stage `loyal` (expected one of: awareness, interest")
    );
    assert_eq!(
        s.set_journey_stage("kam-3", &id("h9"), "lipitex", "interest", "x")
            .unwrap_err()
            .to_string(),
        "unknown HCP `h9`"
    );
    assert!(s.verify_audit().unwrap().is_intact());
}

#[test]
fn a_custom_ladder_and_rule_are_used_and_a_bad_one_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = StoreOptions::new(dir.path());
    options.journey = JourneyConfig {
        ladder: vec!["cold".into(), "warm".into()],
        rules: vec![JourneyRule {
            id: "visit".into(),
            event_type: EventType::RepVisit,
            topic: None,
            min_count: 1,
            to: "warm".into(),
        }],
    };
    let s = SqliteStore::open(options.clone()).unwrap();
    s.upsert_profiles("importer", &[profile("h1")]).unwrap();
    let mut visit = event("v1", "h1", EventType::RepVisit, NOW);
    visit.attributes.insert("brand".into(), json!("lipitex"));
    s.ingest("crm", "b1", &[visit]).unwrap();
    assert_eq!(
        s.journey_stage(&id("h1"), "lipitex").unwrap().as_deref(),
        Some("warm")
    );
    drop(s);

    options.journey.rules[0].to = "hot".into();
    let err = SqliteStore::open(options).unwrap_err();
    assert!(matches!(err, OpenError::Journey(_)));
    assert_eq!(
        err.to_string(),
        "invalid journey configuration: journey rule `visit` leads to stage `hot`, which is not on the ladder"
    );
}

#[test]
fn a_snapshot_combines_the_profile_features_and_journey_stage() {
    let s = with_hcps(1);
    s.ingest(
        "esp",
        "b1",
        &[
            click("c1", "h1", "lipitex", "efficacy"),
            click("c2", "h1", "lipitex", "efficacy"),
        ],
    )
    .unwrap();
    let p = s.profile(&id("h1")).unwrap().unwrap();
    let snap = p.snapshot(
        Some(s.features(&id("h1"), NOW).unwrap()),
        s.journey_stage(&id("h1"), "lipitex").unwrap(),
    );
    assert_eq!(snap.journey_stage.as_deref(), Some("interest"));
    assert_eq!(snap.engagement.unwrap().channels[0].clicks, 2);
    assert!(!format!("{:?}", p).contains("clinic.example"));
}

#[test]
fn a_merged_group_has_one_journey_the_furthest_stage_its_records_reached() {
    use omnigate_core::store::IdentityStore;
    let s = with_hcps(2);
    s.set_journey_stage(
        "rep",
        &id("h1"),
        "cardiozen",
        "interest",
        "asked about dosing",
    )
    .unwrap();
    s.set_journey_stage(
        "rep",
        &id("h2"),
        "cardiozen",
        "consideration",
        "trial started",
    )
    .unwrap();
    let merge = s
        .merge_hcps("crm", &id("h1"), &id("h2"), "same NPI")
        .unwrap();
    for who in ["h1", "h2"] {
        assert_eq!(
            s.journey_stage(&id(who), "cardiozen").unwrap().as_deref(),
            Some("consideration")
        );
        assert_eq!(s.journey_history(&id(who), "cardiozen").unwrap().len(), 2);
        assert_eq!(
            s.journey_brands(&id(who)).unwrap(),
            vec!["cardiozen".to_owned()]
        );
    }
    s.unmerge_hcps("crm", merge, "different people").unwrap();
    assert_eq!(
        s.journey_stage(&id("h1"), "cardiozen").unwrap().as_deref(),
        Some("interest")
    );
    assert_eq!(s.journey_history(&id("h1"), "cardiozen").unwrap().len(), 1);
}
