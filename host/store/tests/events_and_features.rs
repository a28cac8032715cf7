//! Event ingest (validation, idempotency, atomicity) and derived features.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use omnigate_core::store::{AuditStore, EventStore, IngestReport, StoreError};
use omnigate_core::{Channel, EventType};
use serde_json::json;

#[test]
fn a_batch_is_stored_with_received_at_and_its_attributes() {
    let s = with_hcps(1);
    let e = event("e1", "h1", EventType::RepVisit, NOW - DAY);
    let report = s.ingest("crm", "b1", std::slice::from_ref(&e)).unwrap();
    assert_eq!(
        report,
        IngestReport {
            accepted: 1,
            duplicates: 0
        }
    );
    let stored = s.events_of(&id("h1")).unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].event, e);
    assert!(stored[0].received_at > 0);
}

#[test]
fn a_replayed_batch_adds_nothing_not_even_an_audit_entry() {
    let s = with_hcps(2);
    let batch = vec![
        event("e1", "h1", EventType::EmailDelivered, NOW),
        event("e2", "h2", EventType::EmailOpened, NOW),
        event("e2", "h2", EventType::EmailOpened, NOW), // a duplicate inside the batch too
    ];
    assert_eq!(
        s.ingest("esp", "b1", &batch).unwrap(),
        IngestReport {
            accepted: 2,
            duplicates: 1
        }
    );
    let audit_len = s.audit_entries(1, 1000).unwrap().len();
    let before = s.features(&id("h1"), NOW).unwrap();
    assert_eq!(
        s.ingest("esp", "b1", &batch).unwrap(),
        IngestReport {
            accepted: 0,
            duplicates: 3
        }
    );
    assert_eq!(s.event_count().unwrap(), 2);
    assert_eq!(s.audit_entries(1, 1000).unwrap().len(), audit_len);
    assert_eq!(s.features(&id("h1"), NOW).unwrap(), before);
}

#[test]
fn an_event_missing_a_field_rejects_the_whole_batch_naming_the_event_and_field() {
    let s = with_hcps(1);
    let mut bad = event("e2", "h1", EventType::EmailClicked, NOW);
    bad.attributes.remove("url");
    let err = s
        .ingest(
            "esp",
            "b1",
            &[event("e1", "h1", EventType::EmailDelivered, NOW), bad],
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidEvent { .. }));
    assert_eq!(
        err.to_string(),
        "event `e2` is invalid: a `email-clicked` event needs attribute `url` (a non-empty string); \
         nothing in the batch was stored"
    );
    assert_eq!(s.event_count().unwrap(), 0);
    assert_eq!(count(&s, "feature_channel"), 0);
}

#[test]
fn an_event_for_an_unknown_hcp_rejects_the_whole_batch() {
    let s = with_hcps(1);
    let err = s
        .ingest(
            "esp",
            "b1",
            &[
                event("e1", "h1", EventType::EmailDelivered, NOW),
                event("e2", "h404", EventType::WebVisit, NOW),
            ],
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "event `e2` refers to unknown HCP `h404`; nothing in the batch was stored"
    );
    assert_eq!(s.event_count().unwrap(), 0);
    assert_eq!(s.audit_entries(1, 100).unwrap().len(), 1); // the profile insert only
}

#[test]
fn an_unknown_event_type_or_channel_cannot_be_expressed() {
    let raw =
        json!({"id": "e", "hcp": "h1", "type": "fax-sent", "channel": "email", "occurred_at": 0});
    assert!(serde_json::from_value::<omnigate_core::NewEvent>(raw).is_err());
    let mut e = event("e1", "h1", EventType::RepVisit, NOW);
    e.channel = Channel::Email;
    let s = with_hcps(1);
    let err = s.ingest("crm", "b1", &[e]).unwrap_err().to_string();
    assert!(err.contains("cannot come from channel `email`"), "{err}");
}

#[test]
fn events_are_append_only_in_sql() {
    let s = with_hcps(1);
    s.ingest("crm", "b1", &[event("e1", "h1", EventType::RepVisit, NOW)])
        .unwrap();
    let raw = s.raw();
    assert!(
        raw.execute("UPDATE event SET type = 'web-visit'", [])
            .is_err()
    );
    assert!(raw.execute("DELETE FROM event", []).is_err());
}

#[test]
fn touches_are_counted_per_channel_over_exact_7_and_30_day_windows() {
    let s = with_hcps(1);
    let today = NOW - NOW.rem_euclid(DAY); // midnight UTC
    let batch = vec![
        event("v1", "h1", EventType::RepVisit, today + 1), // today
        event("v2", "h1", EventType::RepVisit, today - 6 * DAY), // 6 days back: in 7d
        event("v3", "h1", EventType::RepVisit, today - 7 * DAY), // 7 days back: 30d only
        event("m1", "h1", EventType::EmailDelivered, today - 29 * DAY), // in 30d
        event("m2", "h1", EventType::EmailDelivered, today - 30 * DAY), // out of both
        event("o1", "h1", EventType::EmailOpened, today - 29 * DAY), // not a touch
    ];
    s.ingest("crm", "b1", &batch).unwrap();
    let f = s.features(&id("h1"), NOW).unwrap();
    assert_eq!((f.touches_7d, f.touches_30d), (2, 4));
    let visits = f
        .channels
        .iter()
        .find(|c| c.channel == Channel::RepVisit)
        .unwrap();
    assert_eq!((visits.touches_7d, visits.touches_30d), (2, 3));
    assert_eq!(visits.last_touch_at, Some((today + 1) / 1000));
    let email = f
        .channels
        .iter()
        .find(|c| c.channel == Channel::Email)
        .unwrap();
    assert_eq!((email.touches_7d, email.touches_30d), (0, 1));
    assert_eq!(email.last_touch_at, Some((today - 29 * DAY) / 1000));

    // A day later the window slides without any write.
    let f = s.features(&id("h1"), NOW + DAY).unwrap();
    assert_eq!((f.touches_7d, f.touches_30d), (1, 3));
}

#[test]
fn responsiveness_counts_sends_opens_clicks_and_attendance_across_batches() {
    let s = with_hcps(1);
    s.ingest(
        "esp",
        "b1",
        &[
            event("d1", "h1", EventType::EmailDelivered, NOW - 3 * DAY),
            event("d2", "h1", EventType::EmailDelivered, NOW - 2 * DAY),
            event("o1", "h1", EventType::EmailOpened, NOW - 2 * DAY),
        ],
    )
    .unwrap();
    s.ingest(
        "esp",
        "b2",
        &[
            event("c1", "h1", EventType::EmailClicked, NOW - DAY),
            event("w1", "h1", EventType::WebinarRegistered, NOW - 5 * DAY),
            event("w2", "h1", EventType::WebinarAttended, NOW - 4 * DAY),
            event("x1", "h1", EventType::EmailBounced, NOW - DAY),
        ],
    )
    .unwrap();
    let f = s.features(&id("h1"), NOW).unwrap();
    let email = f
        .channels
        .iter()
        .find(|c| c.channel == Channel::Email)
        .unwrap();
    assert_eq!((email.sends, email.opens, email.clicks), (2, 1, 1));
    assert_eq!(email.last_touch_at, Some((NOW - 2 * DAY) / 1000));
    let webinar = f
        .channels
        .iter()
        .find(|c| c.channel == Channel::Webinar)
        .unwrap();
    assert_eq!((webinar.sends, webinar.attended), (1, 1));
}

#[test]
fn content_seen_lists_versions_opened_clicked_or_downloaded_but_not_merely_delivered() {
    let s = with_hcps(1);
    s.ingest(
        "esp",
        "b1",
        &[
            with_content(
                event("d1", "h1", EventType::EmailDelivered, NOW),
                "v-delivered",
            ),
            with_content(event("o1", "h1", EventType::EmailOpened, NOW), "v-opened"),
            with_content(event("o2", "h1", EventType::EmailOpened, NOW), "v-opened"),
            with_content(
                event("k1", "h1", EventType::ContentDownload, NOW),
                "v-download",
            ),
        ],
    )
    .unwrap();
    let mut seen = s.features(&id("h1"), NOW).unwrap().content_seen;
    seen.sort();
    assert_eq!(seen, ["v-download", "v-opened"]);
}

#[test]
fn features_of_an_hcp_without_history_are_empty_and_of_an_unknown_hcp_an_error() {
    let s = with_hcps(1);
    assert_eq!(s.features(&id("h1"), NOW).unwrap(), Default::default());
    assert_eq!(
        s.features(&id("h2"), NOW).unwrap_err().to_string(),
        "unknown HCP `h2`"
    );
}

#[test]
fn features_survive_a_reopen() {
    let s = with_hcps(1);
    s.ingest("crm", "b1", &[event("v1", "h1", EventType::RepVisit, NOW)])
        .unwrap();
    let before = s.features(&id("h1"), NOW).unwrap();
    let s = s.reopen();
    assert_eq!(s.features(&id("h1"), NOW).unwrap(), before);
    assert!(s.verify_audit().unwrap().is_intact());
}

#[test]
fn a_batch_gets_one_audit_entry_vouching_for_its_events() {
    let s = with_hcps(1);
    s.ingest(
        "esp",
        "batch-42",
        &[event("e1", "h1", EventType::EmailDelivered, NOW)],
    )
    .unwrap();
    let last = s.audit_entries(2, 10).unwrap();
    assert_eq!(
        (last[0].action.as_str(), last[0].subject.as_str()),
        ("events.ingest", "batch-42")
    );
    assert!(last[0].payload.contains(r#""accepted":1"#));
    assert!(last[0].payload.contains("events_sha256"));
}

#[test]
fn one_store_serves_readers_and_a_writer_on_several_threads() {
    use omnigate_core::Store;
    use std::sync::Arc;

    let s = with_hcps(4);
    let TestStore { dir: _dir, store } = s;
    let store: Arc<dyn Store> = Arc::new(store);
    let writer = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || {
            for b in 0..20 {
                let batch: Vec<_> = (0..50)
                    .map(|i| {
                        event(
                            &format!("e{b}-{i}"),
                            &format!("h{}", 1 + i % 4),
                            EventType::RepVisit,
                            NOW,
                        )
                    })
                    .collect();
                store.ingest("crm", &format!("b{b}"), &batch).unwrap();
            }
        })
    };
    let readers: Vec<_> = (0..3)
        .map(|r| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                let mut last = 0;
                for _ in 0..200 {
                    let f = store.features(&id(&format!("h{}", 1 + r)), NOW).unwrap();
                    // Each read sees a committed state: counts only grow.
                    assert!(f.touches_7d >= last);
                    last = f.touches_7d;
                }
            })
        })
        .collect();
    writer.join().unwrap();
    for r in readers {
        r.join().unwrap();
    }
    assert_eq!(store.event_count().unwrap(), 1000);
    // h1 gets i = 0, 4, ..., 48 of each batch: 13 of 50.
    assert_eq!(store.features(&id("h1"), NOW).unwrap().touches_7d, 20 * 13);
    assert!(store.verify_audit().unwrap().is_intact());
}
