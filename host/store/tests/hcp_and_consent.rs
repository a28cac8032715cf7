//! HCP profiles and the consent ledger.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use omnigate_core::store::{
    AuditStore, ConsentQuery, ConsentStore, HcpStore, StoreError, UpsertReport,
};
use omnigate_core::{
    Channel, ConsentId, ConsentScope, ConsentSource, ConsentStatus, NewConsent, Purpose,
};

fn consent(hcp: &str, product: Option<&str>, status: ConsentStatus, at: i64) -> NewConsent {
    NewConsent {
        scope: ConsentScope {
            hcp: id(hcp),
            channel: Channel::Email,
            purpose: Purpose::Promotional,
            market: "US".into(),
            product: product.map(str::to_owned),
        },
        status,
        source: ConsentSource::WebForm,
        recorded_at: at,
        recorded_by: "portal".into(),
    }
}

fn query(hcp: &str, product: Option<&str>) -> ConsentQuery {
    ConsentQuery {
        hcp: id(hcp),
        channel: Channel::Email,
        purpose: Purpose::Promotional,
        market: "US".into(),
        product: product.map(str::to_owned),
    }
}

#[test]
fn a_profile_round_trips_with_its_contact_details() {
    let s = with_hcps(1);
    let back = s.profile(&id("h1")).unwrap().unwrap();
    assert_eq!(back, profile("h1"));
    assert_eq!(s.profile(&id("nobody")).unwrap(), None);
    assert_eq!(s.hcp_count().unwrap(), 1);
}

#[test]
fn upserting_reports_inserts_updates_and_unchanged_profiles_and_audits_only_changes() {
    let s = with_hcps(2);
    let mut changed = profile("h1");
    changed.contact.email = Some("new@clinic.example".into());
    let report = s
        .upsert_profiles("crm-sync", &[changed, profile("h2"), profile("h3")])
        .unwrap();
    assert_eq!(
        report,
        UpsertReport {
            inserted: 1,
            updated: 1,
            unchanged: 1
        }
    );
    let entries = s.audit_entries(1, 100).unwrap();
    let actions: Vec<_> = entries
        .iter()
        .map(|e| (e.action.as_str(), e.subject.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("hcp.insert", "h1"),
            ("hcp.insert", "h2"),
            ("hcp.update", "h1"),
            ("hcp.insert", "h3")
        ]
    );
    assert!(
        entries[2]
            .payload
            .contains(r#""contact_changed":["email"]"#),
        "{}",
        entries[2].payload
    );
}

#[test]
fn contact_details_never_reach_the_audit_log() {
    let s = with_hcps(3);
    let raw = s.raw();
    let leaked: i64 = raw
        .query_row(
            "SELECT count(*) FROM audit_log WHERE payload LIKE '%clinic.example%' OR payload LIKE '%5550102030%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(leaked, 0);
}

#[test]
fn a_profile_without_a_market_is_rejected_and_nothing_of_the_batch_is_stored() {
    let s = open();
    let mut bad = profile("h2");
    bad.market = " ".into();
    let err = s
        .upsert_profiles("importer", &[profile("h1"), bad])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "HCP `h2`: market must not be empty; nothing was stored"
    );
    assert!(!format!("{err:?}").contains("clinic.example"));
    assert_eq!(s.hcp_count().unwrap(), 0);
    assert_eq!(count(&s, "audit_log"), 0);
}

#[test]
fn the_latest_consent_record_decides_and_history_is_kept() {
    let s = with_hcps(1);
    let ids = s
        .record_consents(
            "portal",
            &[
                consent("h1", None, ConsentStatus::OptIn, NOW - 3 * DAY),
                consent("h1", None, ConsentStatus::OptOut, NOW - DAY),
                // Recorded later but about an earlier moment: does not win.
                consent("h1", None, ConsentStatus::OptIn, NOW - 2 * DAY),
            ],
        )
        .unwrap();
    assert_eq!(s.consent_history(&id("h1")).unwrap().len(), 3);
    let deciding = s.deciding_consent(&query("h1", None)).unwrap().unwrap();
    assert_eq!(deciding.id, ids[1]);
    assert_eq!(s.current_opt_in(&query("h1", None)).unwrap(), None);

    let again = s
        .record_consents("portal", &[consent("h1", None, ConsentStatus::OptIn, NOW)])
        .unwrap();
    assert_eq!(
        s.current_opt_in(&query("h1", None)).unwrap(),
        Some(again[0])
    );
}

#[test]
fn a_product_opt_out_beats_a_general_opt_in_and_a_newer_general_opt_out_beats_a_product_opt_in() {
    let s = with_hcps(1);
    let ids = s
        .record_consents(
            "portal",
            &[
                consent("h1", None, ConsentStatus::OptIn, NOW - 5 * DAY),
                consent("h1", Some("lipitex"), ConsentStatus::OptOut, NOW - 6 * DAY),
                consent("h1", Some("cardiva"), ConsentStatus::OptIn, NOW - 4 * DAY),
            ],
        )
        .unwrap();
    assert_eq!(
        s.current_opt_in(&query("h1", Some("lipitex"))).unwrap(),
        None
    );
    assert_eq!(
        s.current_opt_in(&query("h1", Some("other"))).unwrap(),
        Some(ids[0])
    );
    assert_eq!(
        s.current_opt_in(&query("h1", Some("cardiva"))).unwrap(),
        Some(ids[2])
    );

    let stop = s
        .record_consents(
            "sms-gw",
            &[consent("h1", None, ConsentStatus::OptOut, NOW - DAY)],
        )
        .unwrap();
    assert_eq!(
        s.current_opt_in(&query("h1", Some("cardiva"))).unwrap(),
        None
    );
    assert_eq!(
        s.deciding_consent(&query("h1", Some("cardiva")))
            .unwrap()
            .unwrap()
            .id,
        stop[0]
    );
}

#[test]
fn a_pending_double_opt_in_is_not_an_opt_in() {
    let s = with_hcps(1);
    s.record_consents(
        "portal",
        &[consent("h1", None, ConsentStatus::DoubleOptInPending, NOW)],
    )
    .unwrap();
    assert_eq!(s.current_opt_in(&query("h1", None)).unwrap(), None);
    assert_eq!(
        s.current_opt_in(&query("h1", Some("lipitex"))).unwrap(),
        None
    );
}

#[test]
fn consent_for_another_channel_purpose_or_market_does_not_count() {
    let s = with_hcps(1);
    s.record_consents("portal", &[consent("h1", None, ConsentStatus::OptIn, NOW)])
        .unwrap();
    let mut q = query("h1", None);
    q.channel = Channel::Sms;
    assert_eq!(s.current_opt_in(&q).unwrap(), None);
    let mut q = query("h1", None);
    q.purpose = Purpose::Medical;
    assert_eq!(s.current_opt_in(&q).unwrap(), None);
    let mut q = query("h1", None);
    q.market = "CN".into();
    assert_eq!(s.current_opt_in(&q).unwrap(), None);
    assert_eq!(
        s.current_opt_in(&query("h1", None)).unwrap(),
        Some(ConsentId(1))
    );
}

#[test]
fn consent_for_an_unknown_hcp_is_rejected_and_the_whole_batch_is_dropped() {
    let s = with_hcps(1);
    let err = s
        .record_consents(
            "portal",
            &[
                consent("h1", None, ConsentStatus::OptIn, NOW),
                consent("h9", None, ConsentStatus::OptIn, NOW),
            ],
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownHcp(_)));
    assert_eq!(err.to_string(), "unknown HCP `h9`");
    assert!(s.consent_history(&id("h1")).unwrap().is_empty());
    assert!(matches!(
        s.current_opt_in(&query("h9", None)),
        Err(StoreError::UnknownHcp(_))
    ));
}

#[test]
fn consent_for_an_unknown_channel_is_rejected_when_parsed() {
    let raw = serde_json::json!({
        "scope": {"hcp": "h1", "channel": "fax", "purpose": "promotional", "market": "US", "product": null},
        "status": "opt-in", "source": "web-form", "recorded_at": 0, "recorded_by": "x",
    });
    let err = serde_json::from_value::<NewConsent>(raw)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown variant `fax`"), "{err}");
}

#[test]
fn consent_records_cannot_be_updated_or_deleted_through_sql() {
    let s = with_hcps(1);
    s.record_consents("portal", &[consent("h1", None, ConsentStatus::OptOut, NOW)])
        .unwrap();
    let raw = s.raw();
    let err = raw
        .execute("UPDATE consent SET status = 'opt-in'", [])
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    assert!(raw.execute("DELETE FROM consent", []).is_err());
}

#[test]
fn every_consent_record_is_audited_in_its_transaction() {
    let s = with_hcps(1);
    s.record_consents(
        "rep-7",
        &[consent("h1", Some("lipitex"), ConsentStatus::OptIn, NOW)],
    )
    .unwrap();
    let last = s.audit_entries(2, 10).unwrap();
    assert_eq!(last.len(), 1);
    assert_eq!(
        (last[0].actor.as_str(), last[0].action.as_str()),
        ("rep-7", "consent.record")
    );
    assert!(last[0].payload.contains(r#""product":"lipitex""#));
    assert!(s.verify_audit().unwrap().is_intact());
}
