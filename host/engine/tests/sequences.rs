//! The report's per-channel-sequence analysis on a real SQLite store: which
//! ordered pairs of touches (e-mail -> rep visit, rep visit -> e-mail)
//! precede a move up the journey ladder.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::sync::Arc;
use std::time::Duration;

use omnigate_core::campaign::{CampaignDefinition, CampaignId, CampaignStore};
use omnigate_core::consent::Purpose;
use omnigate_core::content::VersionHash;
use omnigate_core::event::{UnixMillis, now_millis};
use omnigate_core::ledger::{DecisionRecord, DispatchState, LedgerStore, NewDispatch, Verdict};
use omnigate_core::store::{EventStore, HcpStore, IdentityStore, JourneyStore};
use omnigate_core::suggestion::{Suggestion, SuggestionState, SuggestionStore};
use omnigate_core::{Channel, EventType, HcpId, HcpProfile, NewEvent, Store};
use omnigate_engine::report::{SequenceStat, report};
use omnigate_store::{SqliteStore, StoreOptions};
use serde_json::json;

struct World {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    n: u32,
}

fn hcp(s: &str) -> HcpId {
    HcpId::new(s).unwrap()
}

/// A wall-clock instant strictly after every earlier one: the store stamps
/// dispatches and journey moves with the wall clock.
fn tick() -> UnixMillis {
    std::thread::sleep(Duration::from_millis(3));
    now_millis()
}

impl World {
    fn new(hcps: &[&str]) -> World {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Arc::new(SqliteStore::open(StoreOptions::new(dir.path().join("data"))).unwrap());
        let profiles: Vec<_> = hcps
            .iter()
            .map(|h| HcpProfile::new(hcp(h), format!("Dr. {h}"), "US"))
            .collect();
        store.upsert_profiles("importer", &profiles).unwrap();
        World {
            _dir: dir,
            store,
            n: 0,
        }
    }

    /// A dispatch to `h` on `channel`, entered in the ledger and moved to
    /// `to` (`Sent` through `Sending`); returns its id.
    fn dispatch(&mut self, h: &str, channel: Channel, to: DispatchState) -> String {
        self.n += 1;
        let n = self.n;
        let at = tick();
        let decision = DecisionRecord {
            id: format!("dec-{n}"),
            at,
            dispatch: format!("d-{n}"),
            campaign: Some("other".into()),
            hcp: hcp(h),
            channel,
            purpose: Purpose::Promotional,
            market: "US".into(),
            version: VersionHash("ab".repeat(32)),
            policy_version: None,
            verdict: Verdict::Allow,
            text_sha256: Some("cd".repeat(32)),
            consent: None,
            rules: Vec::new(),
            summary: "allowed".into(),
        };
        let dispatch = NewDispatch {
            id: format!("d-{n}"),
            idempotency_key: format!("test/{n}"),
            campaign: Some("other".into()),
            hcp: hcp(h),
            channel,
            purpose: Purpose::Promotional,
            market: "US".into(),
            product: Some("cardiozen".into()),
            version: VersionHash("ab".repeat(32)),
            decision: format!("dec-{n}"),
            planned_at: at,
            text_sha256: "cd".repeat(32),
        };
        self.store
            .record_decisions("engine", &[decision], &[dispatch])
            .unwrap();
        let id = format!("d-{n}");
        if to != DispatchState::Queued {
            assert!(
                self.store
                    .set_dispatch_state(
                        "engine",
                        &id,
                        &[DispatchState::Queued],
                        DispatchState::Sending,
                        None
                    )
                    .unwrap()
            );
        }
        if to == DispatchState::Sent {
            assert!(
                self.store
                    .set_dispatch_state(
                        "engine",
                        &id,
                        &[DispatchState::Sending],
                        DispatchState::Sent,
                        Some("provider-1")
                    )
                    .unwrap()
            );
        }
        id
    }

    /// An e-mail that went out now.
    fn email(&mut self, h: &str) {
        self.dispatch(h, Channel::Email, DispatchState::Sent);
    }

    /// A field contact logged now (or at `at`).
    fn field(&mut self, h: &str, t: EventType, at: Option<UnixMillis>) {
        self.n += 1;
        let e = NewEvent {
            id: format!("ev-{}", self.n),
            hcp: hcp(h),
            event_type: t,
            channel: t.channels()[0],
            occurred_at: at.unwrap_or_else(tick),
            attributes: json!({"rep_id": "rep-7"}).as_object().unwrap().clone(),
        };
        self.store
            .ingest("crm", &format!("batch-{}", self.n), &[e])
            .unwrap();
    }

    fn visit(&mut self, h: &str) {
        self.field(h, EventType::RepVisit, None);
    }

    fn stage(&self, h: &str, stage: &str) {
        tick();
        self.store
            .set_journey_stage("marketer", &hcp(h), "cardiozen", stage, "test")
            .unwrap();
    }
}

fn definition() -> CampaignDefinition {
    serde_json::from_value(json!({
        "id": "cz-seq",
        "name": "Cardiozen sequences",
        "product": "cardiozen",
        "market": "US",
        "goal": {"target-stage": "adoption"},
        "audience": {"everyone": true},
        "actions": [{"version": "ab".repeat(32), "channels": ["email", "rep-visit"]}],
        "channels": ["email", "rep-visit"],
        "scoring": {"plugin": "stage-scorer"}
    }))
    .unwrap()
}

fn stat(hcps: u64, progressed: u64) -> SequenceStat {
    SequenceStat {
        hcps,
        progressed,
        rate: progressed as f64 / hcps as f64,
    }
}

#[test]
fn ordered_pairs_of_touches_are_counted_with_the_moves_that_follow_them() {
    let names = ["h1", "h2", "h3", "h4", "h5", "h6", "h7", "h8", "h9", "h10"];
    let mut w = World::new(&names);
    let def = definition();
    let id: CampaignId = def.id.clone();
    w.store
        .create_campaign("marketer", &def, now_millis())
        .unwrap();
    // The audience was resolved an hour ago: h1..h7 treated, h8 held out;
    // h9 is not a member; h10 is a second record of h5.
    let since = now_millis() - 3_600_000;
    let members: Vec<(HcpId, bool)> = names[..8].iter().map(|h| (hcp(h), *h == "h8")).collect();
    w.store.add_members(&id, &members, true, since).unwrap();
    w.store
        .merge_hcps("steward", &hcp("h5"), &hcp("h10"), "same NPI")
        .unwrap();

    // h4 reaches consideration before any touch.
    w.stage("h4", "consideration");
    // h7: a visit before the audience was resolved (not in the period).
    w.field("h7", EventType::RepVisit, Some(since - 60_000));

    // h1: e-mail -> rep visit.
    w.email("h1");
    w.visit("h1");
    // h2: rep visit -> e-mail.
    w.visit("h2");
    w.email("h2");
    // h3: rep visit, a move up, then e-mail: the move precedes the pair.
    w.visit("h3");
    w.stage("h3", "interest");
    w.email("h3");
    // h4: e-mail, e-mail (one touch), rep visit, e-mail.
    w.email("h4");
    w.email("h4");
    w.visit("h4");
    w.email("h4");
    // h5: a phone call, then a rep visit logged on its merged record.
    w.field("h5", EventType::PhoneCall, None);
    w.field("h10", EventType::RepVisit, None);
    // h6: only a queued e-mail and a rep suggestion: no touch.
    w.dispatch("h6", Channel::Email, DispatchState::Queued);
    let s = w.dispatch("h6", Channel::RepVisit, DispatchState::Sending);
    let at = now_millis();
    w.store
        .deliver_suggestions(
            "engine",
            &[Suggestion {
                id: s,
                hcp: hcp("h6"),
                rep: Some("rep-7".into()),
                campaign: Some("other".into()),
                version: VersionHash("ab".repeat(32)),
                channel: Channel::RepVisit,
                rationale: "r".into(),
                notes: Vec::new(),
                created_at: at,
                due_at: at + 86_400_000,
                expires_at: at + 2 * 86_400_000,
                state: SuggestionState::Open,
                closed: None,
            }],
        )
        .unwrap();
    // h7: one e-mail in the period.
    w.email("h7");
    // h8 (holdout) and h9 (not a member): both orders, and moves.
    w.email("h8");
    w.visit("h8");
    w.email("h8");
    w.email("h9");
    w.visit("h9");

    // Moves after every touch: up for h1, h2, h6, h7, h8, h9; down for h4.
    for h in ["h1", "h2", "h6", "h7", "h8", "h9"] {
        w.stage(h, "interest");
    }
    w.stage("h4", "awareness");

    let store: Arc<dyn Store> = w.store.clone();
    let r = report(&*store, &id).unwrap();
    let s = &r.sequences;
    // Touched: h1, h2, h3, h4, h5, h7; moved up after the first touch: h1,
    // h2, h3 (after its visit), h7.
    assert_eq!(s.touched, stat(6, 4));
    let pairs: Vec<(&str, &SequenceStat)> = s.pairs.iter().map(|(k, v)| (k.as_str(), v)).collect();
    assert_eq!(
        pairs,
        vec![
            // h1 (moved up after), h4 (moved down).
            ("email->rep-visit", &stat(2, 1)),
            // h5 (no move).
            ("phone-call->rep-visit", &stat(1, 0)),
            // h2 (moved up after), h3 (moved before the e-mail), h4.
            ("rep-visit->email", &stat(3, 1)),
        ]
    );

    // The JSON shape.
    let j = serde_json::to_value(&r).unwrap();
    assert_eq!(
        j["sequences"]["pairs"]["rep-visit->email"],
        json!({"hcps": 3, "progressed": 1, "rate": 1.0 / 3.0})
    );
    assert_eq!(
        j["sequences"]["touched"],
        json!({"hcps": 6, "progressed": 4, "rate": 4.0 / 6.0})
    );
    let text = r.text();
    assert!(text.contains("channel sequences"), "{text}");
    assert!(text.contains("rep-visit->email"), "{text}");

    // The stream itself: treated members with a touch, in HCP order, the
    // merged record's touch with its survivor's.
    let mut seen = Vec::new();
    w.store
        .campaign_timelines(&id, since, &mut |t| {
            seen.push((
                t.hcp.to_string(),
                t.touches.iter().map(|t| t.channel).collect::<Vec<_>>(),
            ));
            Ok(())
        })
        .unwrap();
    use Channel::{Email, PhoneCall, RepVisit};
    assert_eq!(
        seen,
        vec![
            ("h1".into(), vec![Email, RepVisit]),
            ("h2".into(), vec![RepVisit, Email]),
            ("h3".into(), vec![RepVisit, Email]),
            ("h4".into(), vec![Email, Email, RepVisit, Email]),
            ("h5".into(), vec![PhoneCall, RepVisit]),
            ("h7".into(), vec![Email]),
        ]
    );
}

#[test]
fn a_campaign_without_touches_has_an_empty_analysis() {
    let w = World::new(&["h1"]);
    let def = definition();
    w.store
        .create_campaign("marketer", &def, now_millis())
        .unwrap();
    w.store
        .add_members(&def.id, &[(hcp("h1"), false)], true, now_millis())
        .unwrap();
    let store: Arc<dyn Store> = w.store.clone();
    let r = report(&*store, &def.id).unwrap();
    assert_eq!(r.sequences.touched, SequenceStat::default());
    assert!(r.sequences.pairs.is_empty());
    let j = serde_json::to_value(&r).unwrap();
    assert_eq!(
        j["sequences"],
        json!({"touched": {"hcps": 0, "progressed": 0, "rate": 0.0}, "pairs": {}})
    );
    assert!(!r.text().contains("channel sequences"));
}
