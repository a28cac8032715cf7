//! Identity merges: events and consent follow the survivor; undoing a merge
//! splits them back.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use omnigate_core::store::{
    AuditStore, ConsentQuery, ConsentStore, EventStore, IdentityStore, MergeId,
};
use omnigate_core::{
    Channel, ConsentScope, ConsentSource, ConsentStatus, EventType, NewConsent, Purpose,
};

fn opt(hcp: &str, status: ConsentStatus, at: i64) -> NewConsent {
    NewConsent {
        scope: ConsentScope {
            hcp: id(hcp),
            channel: Channel::Email,
            purpose: Purpose::Promotional,
            market: "US".into(),
            product: None,
        },
        status,
        source: ConsentSource::EmailLink,
        recorded_at: at,
        recorded_by: "esp".into(),
    }
}

fn query(hcp: &str) -> ConsentQuery {
    ConsentQuery {
        hcp: id(hcp),
        channel: Channel::Email,
        purpose: Purpose::Promotional,
        market: "US".into(),
        product: None,
    }
}

/// `crm-1` (the CRM record) and `esp-1` (the e-mail provider's) are one HCP.
fn two_records() -> TestStore {
    let s = open();
    omnigate_core::store::HcpStore::upsert_profiles(
        &*s,
        "importer",
        &[profile("crm-1"), profile("esp-1")],
    )
    .unwrap();
    s.ingest(
        "crm",
        "b1",
        &[event("v1", "crm-1", EventType::RepVisit, NOW - DAY)],
    )
    .unwrap();
    s.ingest(
        "esp",
        "b2",
        &[
            event("d1", "esp-1", EventType::EmailDelivered, NOW),
            event("o1", "esp-1", EventType::EmailOpened, NOW),
        ],
    )
    .unwrap();
    s
}

#[test]
fn after_a_merge_the_survivor_reads_the_events_and_features_of_both_records() {
    let s = two_records();
    s.merge_hcps("steward", &id("crm-1"), &id("esp-1"), "same NPI")
        .unwrap();
    let f = s.features(&id("crm-1"), NOW).unwrap();
    assert_eq!(f.touches_7d, 2);
    assert_eq!(f.channels.len(), 2);
    let events: Vec<_> = s
        .events_of(&id("crm-1"))
        .unwrap()
        .into_iter()
        .map(|e| e.event.id)
        .collect();
    assert_eq!(events, ["v1", "d1", "o1"]);
    // Either id reads the same group; new events under the merged id join it.
    assert_eq!(s.survivor_of(&id("esp-1")).unwrap(), id("crm-1"));
    s.ingest(
        "esp",
        "b3",
        &[event("d2", "esp-1", EventType::EmailDelivered, NOW)],
    )
    .unwrap();
    assert_eq!(s.features(&id("esp-1"), NOW).unwrap().touches_7d, 3);
}

#[test]
fn consent_follows_the_survivor_and_the_latest_statement_of_the_group_wins() {
    let s = two_records();
    let ids = s
        .record_consents("crm", &[opt("crm-1", ConsentStatus::OptIn, NOW - 2 * DAY)])
        .unwrap();
    let stop = s
        .record_consents("esp", &[opt("esp-1", ConsentStatus::OptOut, NOW - DAY)])
        .unwrap();
    assert_eq!(s.current_opt_in(&query("crm-1")).unwrap(), Some(ids[0]));
    let merge = s
        .merge_hcps("steward", &id("crm-1"), &id("esp-1"), "same NPI")
        .unwrap();
    assert_eq!(s.current_opt_in(&query("crm-1")).unwrap(), None);
    assert_eq!(
        s.deciding_consent(&query("crm-1")).unwrap().unwrap().id,
        stop[0]
    );
    assert_eq!(s.consent_history(&id("crm-1")).unwrap().len(), 2);

    s.unmerge_hcps("steward", merge, "different people after all")
        .unwrap();
    assert_eq!(s.current_opt_in(&query("crm-1")).unwrap(), Some(ids[0]));
    assert_eq!(s.events_of(&id("crm-1")).unwrap().len(), 1);
    assert_eq!(s.survivor_of(&id("esp-1")).unwrap(), id("esp-1"));
    let actions: Vec<_> = s
        .audit_entries(1, 100)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert!(
        actions.ends_with(&["hcp.merge".to_owned(), "hcp.unmerge".to_owned()]),
        "{actions:?}"
    );
    assert!(s.verify_audit().unwrap().is_intact());
}

#[test]
fn merges_are_one_level_deep_and_refuse_bad_input() {
    let s = two_records();
    omnigate_core::store::HcpStore::upsert_profiles(&*s, "importer", &[profile("web-1")]).unwrap();
    assert_eq!(
        s.merge_hcps("steward", &id("crm-1"), &id("crm-1"), "x")
            .unwrap_err()
            .to_string(),
        "cannot merge HCP `crm-1` into itself"
    );
    assert_eq!(
        s.merge_hcps("steward", &id("crm-1"), &id("nope"), "x")
            .unwrap_err()
            .to_string(),
        "unknown HCP `nope`"
    );
    s.merge_hcps("steward", &id("crm-1"), &id("esp-1"), "same NPI")
        .unwrap();
    let err = s
        .merge_hcps("steward", &id("web-1"), &id("esp-1"), "x")
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "HCP `esp-1` is already merged into `crm-1`; undo that merge first"
    );
    assert!(
        s.merge_hcps("steward", &id("esp-1"), &id("web-1"), "x")
            .is_err()
    );
    assert!(
        s.merge_hcps("steward", &id("web-1"), &id("crm-1"), "x")
            .is_err()
    );
    assert!(s.unmerge_hcps("steward", MergeId(99), "x").is_err());
}
