//! Event-triggered journeys end to end: real events in a real SQLite store
//! fire journeys, whose actions go through the real gate, the ledger and the
//! bundled e-mail adapter (a compiled Wasm component) to a loopback
//! provider, or to a rep's queue.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use omnigate_core::campaign::{ActionSpec, Filter, Span};
use omnigate_core::consent::Purpose;
use omnigate_core::event::now_millis;
use omnigate_core::journeys::{
    ActionState, JourneyAction, JourneyDefinition, JourneyId, JourneyState, Trigger,
};
use omnigate_core::suggestion::{SuggestionFilter, SuggestionState};
use omnigate_core::template::PersonalField;
use omnigate_core::{Channel, EventType, HcpId, NewEvent, Store};
use omnigate_engine::journeys::Tick;
use omnigate_engine::{JourneyError, JourneyOptions, Journeys};
use omnigate_store::{SqliteStore, StoreOptions};

mod common;

fn journeys(store: Arc<dyn Store>, sender: omnigate_engine::Sender) -> Journeys {
    Journeys::new(
        store,
        JourneyOptions {
            backoff: Duration::from_millis(20),
            ..JourneyOptions::default()
        },
    )
    .with_sender(sender)
}

fn hcp(i: usize) -> HcpId {
    HcpId::new(format!("npi-{i:05}")).unwrap()
}

fn event(id: &str, i: usize, t: EventType, ago_ms: i64, attrs: &[(&str, &str)]) -> NewEvent {
    let channel = match t {
        EventType::RepVisit => Channel::RepVisit,
        EventType::WebinarAttended => Channel::Webinar,
        _ => Channel::Email,
    };
    NewEvent {
        id: id.into(),
        hcp: hcp(i),
        event_type: t,
        channel,
        occurred_at: now_millis() - ago_ms,
        attributes: attrs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
            .collect(),
    }
}

fn send_journey(
    id: &str,
    when: Trigger,
    after: Option<&str>,
    version: &omnigate_core::content::VersionHash,
    channels: &[Channel],
    rationale: &str,
) -> JourneyDefinition {
    JourneyDefinition {
        id: JourneyId::new(id).unwrap(),
        name: format!("journey {id}"),
        product: "cardiozen".into(),
        market: "US".into(),
        purpose: Purpose::Promotional,
        when,
        after: after.map(|a| Span::parse(a).unwrap()),
        action: JourneyAction::Send {
            options: vec![ActionSpec {
                version: version.clone(),
                channels: channels.to_vec(),
                topics: Vec::new(),
                stage: None,
            }],
            rationale: rationale.into(),
            values: BTreeMap::from([(PersonalField::Salutation, "Dr.".into())]),
            expires: None,
        },
        unless: None,
        refire_after: None,
    }
}

fn on(event: EventType, attrs: &[(&str, &str)]) -> Trigger {
    Trigger {
        event,
        attributes: attrs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        count: 1,
        within: None,
        audience: None,
    }
}

fn ingest(store: &dyn Store, batch: &str, events: &[NewEvent]) {
    store.ingest("crm", batch, events).unwrap();
}

#[test]
fn a_dosing_question_at_a_visit_sends_the_dosing_email_once_through_the_gate() {
    let w = common::base(10);
    let store = w.dyn_store.clone();
    let j = journeys(store.clone(), w.sender.clone());
    // A visit logged before the journey exists never fires it.
    ingest(
        &*store,
        "before",
        &[event(
            "v-old",
            1,
            EventType::RepVisit,
            1000,
            &[("rep_id", "rep-1"), ("topic", "dosing")],
        )],
    );
    let def = send_journey(
        "dosing-followup",
        on(EventType::RepVisit, &[("topic", "dosing")]),
        None,
        &w.approved,
        &[Channel::Email],
        "asked about dosing at a visit",
    );
    let (record, created) = j.create("marketer", &def).unwrap();
    assert!(created);
    assert_eq!(record.state, JourneyState::Active);
    // The same definition again: nothing new.
    assert!(!j.create("marketer", &def).unwrap().1);

    ingest(
        &*store,
        "b1",
        &[
            // HCP 0: e-mail opt-in -> the dosing e-mail.
            event(
                "v0",
                0,
                EventType::RepVisit,
                1000,
                &[("rep_id", "rep-0"), ("topic", "dosing")],
            ),
            // HCP 3: e-mail opt-out -> suppressed by consent.
            event(
                "v3",
                3,
                EventType::RepVisit,
                1000,
                &[("rep_id", "rep-0"), ("topic", "dosing")],
            ),
            // Another topic, another type: no fire.
            event(
                "v1",
                1,
                EventType::RepVisit,
                1000,
                &[("rep_id", "rep-1"), ("topic", "efficacy")],
            ),
            event(
                "o2",
                2,
                EventType::EmailOpened,
                1000,
                &[("dispatch_id", "d"), ("content_version", "x")],
            ),
        ],
    );
    let t = j.tick(&w.plugins).unwrap();
    assert_eq!(
        t,
        Tick {
            // The old visit is read too, and passed by.
            events: 5,
            scheduled: 2,
            acted: 2,
            dispatched: 1
        }
    );
    let per_hcp = w.sink.per_hcp();
    assert_eq!(per_hcp.get("npi-00000"), Some(&1));
    assert_eq!(per_hcp.len(), 1, "{per_hcp:?}");
    // Exactly the approved text went out, personalized.
    let sent = &w.sink.delivered()[0];
    assert!(sent.text.starts_with("Dr. Ada Li 0,"), "{}", sent.text);
    assert!(sent.text.contains("80 mg once daily"));

    let actions = j.actions(&def.id, None, 10).unwrap();
    let by_hcp = |i: usize| actions.iter().find(|a| a.action.hcp == hcp(i)).unwrap();
    assert_eq!(by_hcp(0).state, ActionState::Dispatched);
    assert_eq!(by_hcp(0).channel, Some(Channel::Email));
    let d = store
        .dispatch(by_hcp(0).dispatch.as_ref().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(
        d.dispatch.idempotency_key,
        format!("journey/dosing-followup/{}", by_hcp(0).num)
    );
    assert_eq!(
        d.dispatch.campaign.as_deref(),
        Some("journey:dosing-followup")
    );
    let suppressed = by_hcp(3);
    assert_eq!(suppressed.state, ActionState::Suppressed);
    assert!(
        suppressed.reasons.iter().any(|r| r.decision.is_some()
            && r.channel == Some(Channel::Email)
            && r.rules.iter().any(|x| x.contains("consent"))),
        "{:?}",
        suppressed.reasons
    );

    // Once per HCP: another dosing visit does not fire again.
    ingest(
        &*store,
        "b2",
        &[event(
            "v0b",
            0,
            EventType::RepVisit,
            500,
            &[("rep_id", "rep-0"), ("topic", "dosing")],
        )],
    );
    let t = j.tick(&w.plugins).unwrap();
    assert_eq!((t.events, t.scheduled, t.acted), (1, 0, 0));
    assert_eq!(w.sink.delivered().len(), 1);
    // Nothing new: an idle pass.
    assert!(j.tick(&w.plugins).unwrap().idle());

    let status = j.status(&def.id).unwrap();
    assert_eq!(
        status.counts.by_state.get(&ActionState::Dispatched),
        Some(&1)
    );
    assert_eq!(
        status.counts.by_state.get(&ActionState::Suppressed),
        Some(&1)
    );
    assert_eq!(status.counts.by_channel.get(&Channel::Email), Some(&1));
    assert_eq!(status.counts.latency.actions, 2);
    // Every firing and every outcome is in the audit chain.
    let audit = store.audit_entries(0, 10_000).unwrap();
    for action in ["journey.create", "journey.fire", "journey.settle"] {
        assert!(audit.iter().any(|e| e.action == action), "{action}");
    }
    assert!(store.verify_audit().unwrap().broken.is_none());
}

#[test]
fn a_delayed_action_waits_survives_a_restart_and_is_cancelled_when_unless_holds() {
    let w = common::base(10);
    let data = w.dir.path().join("data");
    {
        let store = w.dyn_store.clone();
        let j = journeys(store.clone(), w.sender.clone());
        let mut def = send_journey(
            "webinar-recording",
            on(EventType::WebinarAttended, &[]),
            Some("1h"),
            &w.approved,
            &[Channel::Email],
            "attended the webinar",
        );
        // Not if the HCP has already seen the content.
        def.unless = Some(Filter::Seen(w.approved.clone()));
        j.create("marketer", &def).unwrap();
        ingest(
            &*store,
            "web",
            &[
                // Due in two seconds.
                event(
                    "w0",
                    0,
                    EventType::WebinarAttended,
                    3_598_000,
                    &[("webinar_id", "wb-1")],
                ),
                // Due long ago, but HCP 1 already opened that content.
                event(
                    "o1",
                    1,
                    EventType::EmailOpened,
                    7_300_000,
                    &[("dispatch_id", "d"), ("content_version", &w.approved.0)],
                ),
                event(
                    "w1",
                    1,
                    EventType::WebinarAttended,
                    7_200_000,
                    &[("webinar_id", "wb-1")],
                ),
                // Due in an hour.
                event(
                    "w2",
                    2,
                    EventType::WebinarAttended,
                    0,
                    &[("webinar_id", "wb-1")],
                ),
            ],
        );
        let t = j.tick(&w.plugins).unwrap();
        assert_eq!((t.scheduled, t.acted, t.dispatched), (3, 1, 0));
        let a1 = j
            .actions(&def.id, Some(ActionState::Cancelled), 10)
            .unwrap();
        assert_eq!(a1.len(), 1);
        assert_eq!(a1[0].action.hcp, hcp(1));
        assert_eq!(a1[0].reasons[0].rules, vec!["unless".to_owned()]);
        assert!(w.sink.delivered().is_empty());
        let pending = j.actions(&def.id, Some(ActionState::Pending), 10).unwrap();
        assert_eq!(pending.len(), 2);
        // "Restart": everything in memory goes.
    }
    drop(w.sender.clone());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(StoreOptions::new(&data)).unwrap());
    let j = journeys(store.clone(), w.sender.clone());
    let id = JourneyId::new("webinar-recording").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while w.sink.delivered().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the delayed action never went out"
        );
        j.tick(&w.plugins).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    let per_hcp = w.sink.per_hcp();
    assert_eq!(per_hcp.get("npi-00000"), Some(&1));
    assert_eq!(per_hcp.len(), 1);
    // The one due in an hour still waits.
    let pending = j.actions(&id, Some(ActionState::Pending), 10).unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].action.hcp, hcp(2));
    let status = j.status(&id).unwrap();
    assert!(status.counts.next_due.unwrap() > now_millis() + 3_000_000);
}

#[test]
fn two_efficacy_clicks_make_a_rep_suggestion_with_the_rationale() {
    let w = common::base(10);
    let store = w.dyn_store.clone();
    let j = journeys(store.clone(), w.sender.clone());
    let mut when = on(EventType::EmailClicked, &[("topic", "efficacy")]);
    when.count = 2;
    when.within = Some(Span::parse("30d").unwrap());
    let def = send_journey(
        "efficacy-clicks",
        when,
        None,
        &w.approved,
        &[Channel::RepVisit],
        "clicked efficacy content twice: discuss study X",
    );
    j.create("marketer", &def).unwrap();
    let click = |id: &str| {
        event(
            id,
            0,
            EventType::EmailClicked,
            1000,
            &[
                ("dispatch_id", "d"),
                ("content_version", "x"),
                ("url", "https://cardiozen.example/efficacy"),
                ("topic", "efficacy"),
            ],
        )
    };
    ingest(&*store, "c1", &[click("c1")]);
    assert_eq!(j.tick(&w.plugins).unwrap().scheduled, 0);
    ingest(&*store, "c2", &[click("c2")]);
    let t = j.tick(&w.plugins).unwrap();
    assert_eq!((t.scheduled, t.dispatched), (1, 1));
    ingest(&*store, "c3", &[click("c3")]);
    assert_eq!(j.tick(&w.plugins).unwrap().scheduled, 0);

    let open = store
        .suggestions(
            &SuggestionFilter {
                hcp: Some(hcp(0)),
                ..SuggestionFilter::default()
            },
            now_millis(),
        )
        .unwrap();
    assert_eq!(open.len(), 1);
    let s = &open[0];
    assert_eq!(s.state, SuggestionState::Open);
    assert_eq!(s.rep.as_deref(), Some("rep-0"));
    assert_eq!(s.channel, Channel::RepVisit);
    assert!(s.rationale.contains("discuss study X"), "{}", s.rationale);
    assert!(s.rationale.contains("c2"), "{}", s.rationale);
    assert!(s.expires_at > now_millis() + 13 * 86_400_000);
    // Nothing went to the e-mail provider.
    assert!(w.sink.delivered().is_empty());
}

#[test]
fn an_unsubscribe_cancels_what_is_pending_on_that_channel() {
    let w = common::base(10);
    let store = w.dyn_store.clone();
    let j = journeys(store.clone(), w.sender.clone());
    let email = send_journey(
        "visit-email",
        on(EventType::RepVisit, &[]),
        Some("1d"),
        &w.approved,
        &[Channel::Email],
        "follow the visit up",
    );
    let rep = send_journey(
        "visit-rep",
        on(EventType::RepVisit, &[]),
        Some("1d"),
        &w.approved,
        &[Channel::RepVisit],
        "visit again",
    );
    let cancel = JourneyDefinition {
        id: JourneyId::new("unsubscribe-stops-email").unwrap(),
        name: "An unsubscribe stops pending e-mail".into(),
        product: "cardiozen".into(),
        market: "US".into(),
        purpose: Purpose::Promotional,
        when: on(EventType::EmailUnsubscribed, &[]),
        after: None,
        action: JourneyAction::CancelPending {
            channels: vec![Channel::Email],
        },
        unless: None,
        refire_after: Some(Span::parse("1m").unwrap()),
    };
    for d in [&email, &rep, &cancel] {
        j.create("marketer", d).unwrap();
    }
    ingest(
        &*store,
        "visits",
        &[
            event("v0", 0, EventType::RepVisit, 0, &[("rep_id", "rep-0")]),
            event("v1", 1, EventType::RepVisit, 0, &[("rep_id", "rep-1")]),
        ],
    );
    assert_eq!(j.tick(&w.plugins).unwrap().scheduled, 4);
    ingest(
        &*store,
        "unsub",
        &[event(
            "u0",
            0,
            EventType::EmailUnsubscribed,
            0,
            &[("dispatch_id", "d")],
        )],
    );
    let t = j.tick(&w.plugins).unwrap();
    assert_eq!((t.scheduled, t.acted), (1, 1));
    let state_of = |id: &JourneyDefinition, i: usize| {
        j.actions(&id.id, None, 10)
            .unwrap()
            .into_iter()
            .find(|a| a.action.hcp == hcp(i))
            .unwrap()
    };
    let cancelled = state_of(&email, 0);
    assert_eq!(cancelled.state, ActionState::Cancelled);
    assert!(cancelled.reasons[0].message.contains("u0"));
    // The rep follow-up, and the other HCP's e-mail, still wait.
    assert_eq!(state_of(&rep, 0).state, ActionState::Pending);
    assert_eq!(state_of(&email, 1).state, ActionState::Pending);
    assert_eq!(state_of(&cancel, 0).state, ActionState::Done);
}

#[test]
fn bad_journeys_are_refused_with_their_path_and_the_lifecycle_holds() {
    let w = common::base(5);
    let store = w.dyn_store.clone();
    let j = journeys(store.clone(), w.sender.clone());
    let unknown = omnigate_core::content::VersionHash("0".repeat(64));
    let def = send_journey(
        "bad",
        on(EventType::RepVisit, &[]),
        None,
        &unknown,
        &[Channel::Email],
        "x",
    );
    match j.create("marketer", &def) {
        Err(JourneyError::Invalid(p)) => {
            assert_eq!(p[0].path, "do.send.options[0].version");
            assert!(p[0].message.contains("unknown content version"));
        }
        other => panic!("{other:?}"),
    }
    assert!(store.journeys().unwrap().is_empty(), "nothing was stored");

    let def = send_journey(
        "paused",
        on(EventType::RepVisit, &[]),
        Some("1h"),
        &w.approved,
        &[Channel::Email],
        "x",
    );
    j.create("marketer", &def).unwrap();
    j.set_state("marketer", &def.id, JourneyState::Paused, "review")
        .unwrap();
    ingest(
        &*store,
        "p",
        &[event(
            "v0",
            0,
            EventType::RepVisit,
            0,
            &[("rep_id", "rep-0")],
        )],
    );
    // Paused: the event passes it by.
    assert_eq!(j.tick(&w.plugins).unwrap().scheduled, 0);
    j.set_state("marketer", &def.id, JourneyState::Active, "ok")
        .unwrap();
    ingest(
        &*store,
        "q",
        &[event(
            "v1",
            1,
            EventType::RepVisit,
            0,
            &[("rep_id", "rep-1")],
        )],
    );
    assert_eq!(j.tick(&w.plugins).unwrap().scheduled, 1);
    // Retiring cancels what is pending, and is final.
    j.set_state("marketer", &def.id, JourneyState::Retired, "campaign over")
        .unwrap();
    let cancelled = j
        .actions(&def.id, Some(ActionState::Cancelled), 10)
        .unwrap();
    assert_eq!(cancelled.len(), 1);
    assert_eq!(
        cancelled[0].reasons[0].rules,
        vec!["journey-retired".to_owned()]
    );
    let e = j
        .set_state("marketer", &def.id, JourneyState::Active, "again")
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot move journey `paused` from retired to active"
    );
    assert!(matches!(
        j.status(&JourneyId::new("nope").unwrap()),
        Err(JourneyError::Unknown(_))
    ));
}

#[test]
fn a_provider_failure_is_retried_and_delivers_once() {
    let w = common::base(5);
    let store = w.dyn_store.clone();
    let j = journeys(store.clone(), w.sender.clone());
    let def = send_journey(
        "retry",
        on(EventType::RepVisit, &[]),
        None,
        &w.approved,
        &[Channel::Email],
        "x",
    );
    j.create("marketer", &def).unwrap();
    w.sink.fail_next(1);
    ingest(
        &*store,
        "r",
        &[event(
            "v0",
            0,
            EventType::RepVisit,
            0,
            &[("rep_id", "rep-0")],
        )],
    );
    let t = j.tick(&w.plugins).unwrap();
    assert_eq!((t.acted, t.dispatched), (1, 0));
    let a = &j.actions(&def.id, None, 1).unwrap()[0];
    assert_eq!((a.state, a.attempts), (ActionState::Pending, 1));
    let deadline = Instant::now() + Duration::from_secs(30);
    while w.sink.delivered().is_empty() {
        assert!(Instant::now() < deadline, "never retried");
        std::thread::sleep(Duration::from_millis(30));
        j.tick(&w.plugins).unwrap();
    }
    let a = &j.actions(&def.id, None, 1).unwrap()[0];
    assert_eq!(a.state, ActionState::Dispatched);
    assert_eq!(w.sink.per_hcp().get("npi-00000"), Some(&1));
}

#[test]
fn two_journeys_due_at_once_for_one_hcp_still_respect_the_contact_caps() {
    let w = common::base(10);
    let store = w.dyn_store.clone();
    let j = journeys(store.clone(), w.sender.clone());
    for id in ["first", "second"] {
        let def = send_journey(
            id,
            on(EventType::RepVisit, &[]),
            None,
            &w.approved,
            &[Channel::Email],
            "x",
        );
        j.create("marketer", &def).unwrap();
    }
    ingest(
        &*store,
        "v",
        &[
            event("v0", 0, EventType::RepVisit, 0, &[("rep_id", "rep-0")]),
            event("v1", 1, EventType::RepVisit, 0, &[("rep_id", "rep-1")]),
        ],
    );
    let t = j.tick(&w.plugins).unwrap();
    assert_eq!((t.scheduled, t.acted), (4, 4));
    // One e-mail each: the second journey's is held back by the gap
    // between e-mails, though both were due in the same pass.
    let per_hcp = w.sink.per_hcp();
    assert_eq!(per_hcp.get("npi-00000"), Some(&1), "{per_hcp:?}");
    assert_eq!(per_hcp.get("npi-00001"), Some(&1), "{per_hcp:?}");
    let second = j
        .actions(&JourneyId::new("second").unwrap(), None, 10)
        .unwrap();
    let first = j
        .actions(&JourneyId::new("first").unwrap(), None, 10)
        .unwrap();
    let suppressed: Vec<_> = first
        .iter()
        .chain(&second)
        .filter(|a| a.state == ActionState::Suppressed)
        .collect();
    assert_eq!(suppressed.len(), 2);
    assert!(suppressed.iter().all(|a| {
        a.reasons
            .iter()
            .any(|r| r.rules.iter().any(|x| x.contains("gap")))
    }));
}

#[test]
fn an_action_due_in_quiet_hours_waits_for_them_to_end() {
    let w = common::base(10);
    let store = w.dyn_store.clone();
    let j = journeys(store.clone(), w.sender.clone());
    // HCP 0 (e-mail opt-in) is where it is night now.
    let (zone, offset) = common::night_zone();
    let mut p = store.profile(&hcp(0)).unwrap().unwrap();
    p.time_zone = Some(zone);
    store.upsert_profiles("test", &[p]).unwrap();
    let def = send_journey(
        "dosing-followup",
        on(EventType::RepVisit, &[("topic", "dosing")]),
        None,
        &w.approved,
        &[Channel::Email],
        "asked about dosing at a visit",
    );
    j.create("marketer", &def).unwrap();
    ingest(
        &*store,
        "b1",
        &[event(
            "v0",
            0,
            EventType::RepVisit,
            1000,
            &[("rep_id", "rep-0"), ("topic", "dosing")],
        )],
    );
    let t = j.tick(&w.plugins).unwrap();
    assert_eq!((t.scheduled, t.acted, t.dispatched), (1, 1, 0));
    assert!(w.sink.delivered().is_empty());
    // Not suppressed: pending until 08:00 local, with the reasons.
    let pending = j.actions(&def.id, Some(ActionState::Pending), 10).unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    let rules: Vec<&str> = pending[0]
        .reasons
        .iter()
        .flat_map(|r| r.rules.iter().map(String::as_str))
        .collect();
    assert!(rules.contains(&"quiet-hours"), "{rules:?}");
    assert!(rules.contains(&"deferred-quiet-hours"), "{rules:?}");
    // 08:00 local is the next 08:00 of UTC + offset: between 8 and 10
    // hours from 23:xx local.
    let next_due = j.status(&def.id).unwrap().counts.next_due.unwrap();
    let local_ms = next_due + offset * 3_600_000;
    assert_eq!(local_ms % 86_400_000, 8 * 3_600_000, "{next_due}");
    let ahead = next_due - now_millis();
    assert!(
        (7 * 3_600_000..=10 * 3_600_000).contains(&ahead),
        "{ahead} ms ahead"
    );
    // Ticking again before then sends nothing.
    let t = j.tick(&w.plugins).unwrap();
    assert_eq!(t.dispatched, 0);
    assert!(w.sink.delivered().is_empty());
}
