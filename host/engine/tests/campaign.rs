//! Campaign runs end to end: a real SQLite store, the real gate with the
//! repository's policies, the bundled scoring model and e-mail adapter
//! (compiled Wasm components) and a loopback provider.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use omnigate_core::campaign::{
    ActionSpec, CampaignCaps, CampaignDefinition, CampaignId, CampaignState, CampaignStore, Filter,
    Goal, MemberOutcome, ScoringSpec, SuggestionTiming,
};
use omnigate_core::consent::Purpose;
use omnigate_core::event::now_millis;
use omnigate_core::ledger::{DispatchState, LedgerStore};
use omnigate_core::suggestion::{SuggestionFilter, SuggestionStore};
use omnigate_core::template::PersonalField;
use omnigate_core::{Channel, Store};
use omnigate_engine::report::report;
use omnigate_engine::{CampaignError, Campaigns, RunEnd, RunOptions};

mod common;

struct World {
    base: common::Base,
    campaigns: Campaigns,
}

impl std::ops::Deref for World {
    type Target = common::Base;
    fn deref(&self) -> &common::Base {
        &self.base
    }
}

fn world(hcps: usize, options: RunOptions) -> World {
    let base = common::base(hcps);
    let campaigns =
        Campaigns::new(base.dyn_store.clone(), options).with_sender(base.sender.clone());
    World { base, campaigns }
}

fn definition(w: &World, id: &str) -> CampaignDefinition {
    CampaignDefinition {
        id: CampaignId::new(id).unwrap(),
        name: "Cardiozen dosing".into(),
        product: "cardiozen".into(),
        market: "US".into(),
        purpose: Purpose::Promotional,
        goal: Goal {
            target_stage: "adoption".into(),
            stages: Vec::new(),
        },
        audience: Filter::Specialty(vec!["207RC0000X".into()]),
        actions: vec![
            // The unapproved draft with an absolute claim, offered first on
            // e-mail: the gate must block it wherever the model ranks it.
            ActionSpec {
                version: w.draft.clone(),
                channels: vec![Channel::Email],
                topics: vec!["efficacy".into()],
                stage: Some("awareness".into()),
            },
            ActionSpec {
                version: w.approved.clone(),
                channels: vec![Channel::Email, Channel::RepVisit],
                topics: vec!["dosing".into()],
                stage: Some("awareness".into()),
            },
        ],
        channels: vec![Channel::Email, Channel::RepVisit],
        window: None,
        caps: CampaignCaps::default(),
        scoring: ScoringSpec {
            plugin: "stage-scorer".into(),
            min_score: None,
        },
        holdout: 0.1,
        seed: None,
        priority: 0,
        values: BTreeMap::from([(PersonalField::Salutation, "Dr.".into())]),
        suggestions: SuggestionTiming::default(),
    }
}

fn options() -> RunOptions {
    RunOptions {
        page: 25,
        backoff: Duration::from_millis(20),
        lease: Duration::from_secs(5),
        ..RunOptions::default()
    }
}

#[test]
fn a_campaign_walks_each_ranking_through_the_gate_and_records_every_outcome() {
    let w = world(100, options());
    let def = definition(&w, "cz-dosing");
    let (record, created) = w.campaigns.create("marketer", &def).unwrap();
    assert!(created);
    assert_eq!(record.state, CampaignState::Draft);
    // Creating the same definition again changes nothing.
    assert!(!w.campaigns.create("marketer", &def).unwrap().1);
    w.campaigns.start("marketer", &def.id).unwrap();
    let mut calls = 0;
    let end = w
        .campaigns
        .run(&def.id, &w.plugins, &mut |_| calls += 1)
        .unwrap();
    assert_eq!(end, RunEnd::Completed);
    assert!(calls >= 3, "progress is reported per page ({calls})");

    let members = w.store.members(&def.id, None, None, 1000).unwrap();
    // The audience: cardiologists only.
    let expected: BTreeSet<String> = (0..100)
        .filter(|i| i % 7 != 6)
        .map(|i| format!("npi-{i:05}"))
        .collect();
    let got: BTreeSet<String> = members.iter().map(|m| m.hcp.to_string()).collect();
    assert_eq!(got, expected);
    let per_hcp = w.sink.per_hcp();
    let suggestions = w
        .store
        .suggestions(
            &SuggestionFilter {
                limit: 1000,
                ..SuggestionFilter::default()
            },
            now_millis(),
        )
        .unwrap();
    let suggested: BTreeMap<String, _> =
        suggestions.iter().map(|s| (s.hcp.to_string(), s)).collect();
    let mut holdout = 0;
    for m in &members {
        let i: usize = m.hcp.as_str()[4..].parse().unwrap();
        let emails = per_hcp.get(m.hcp.as_str()).copied().unwrap_or(0);
        if m.holdout {
            holdout += 1;
            assert_eq!(m.outcome, MemberOutcome::Holdout);
            assert_eq!(emails, 0, "{} is held out", m.hcp);
            assert!(!suggested.contains_key(m.hcp.as_str()));
            continue;
        }
        match common::kind(i) {
            "email" => {
                assert_eq!(m.outcome, MemberOutcome::Dispatched, "{m:?}");
                assert_eq!(m.channel, Some(Channel::Email));
                assert_eq!(m.version.as_ref(), Some(&w.approved));
                assert_eq!(emails, 1, "{} got {emails} e-mails", m.hcp);
                // The draft was tried (or ranked lower) and blocked.
                assert!(m.rationale.is_some());
                let d = w
                    .store
                    .dispatch(m.dispatch.as_ref().unwrap())
                    .unwrap()
                    .unwrap();
                assert_eq!(d.state, DispatchState::Sent);
                assert_eq!(
                    d.dispatch.idempotency_key,
                    format!("campaign/cz-dosing/{}/1", m.hcp)
                );
            }
            "rep-only" => {
                // E-mail is opted out: the walk fell back to a rep visit.
                assert_eq!(m.outcome, MemberOutcome::Dispatched, "{m:?}");
                assert_eq!(m.channel, Some(Channel::RepVisit));
                assert_eq!(emails, 0);
                let s = suggested[m.hcp.as_str()];
                assert_eq!(s.rep.as_deref(), Some(format!("rep-{}", i % 3).as_str()));
                assert_eq!(s.version, w.approved);
                assert!(
                    s.notes.iter().any(|n| n.contains("consent-opt-in")),
                    "the rep sees why e-mail was suppressed: {:?}",
                    s.notes
                );
                assert!(!s.rationale.is_empty());
                assert!(s.due_at < s.expires_at);
            }
            _ => {
                assert_eq!(m.outcome, MemberOutcome::Suppressed, "{m:?}");
                assert_eq!(emails, 0);
                let rules: BTreeSet<&str> = m
                    .reasons
                    .iter()
                    .flat_map(|r| r.rules.iter().map(String::as_str))
                    .collect();
                assert!(rules.contains("consent-opt-in"), "{rules:?}");
            }
        }
    }
    assert!(holdout > 0, "a 10% holdout of 86 HCPs holds someone out");
    // Nothing the provider got came from the draft.
    assert!(w.sink.delivered().iter().all(|d| !d.text.contains("cures")));

    let r = report(&*w.campaigns_store(), &def.id).unwrap();
    assert_eq!(r.audience, members.len() as u64);
    assert_eq!(r.outcomes["holdout"], holdout);
    assert_eq!(r.outcomes["pending"], 0);
    assert!(
        r.blocked_by_rule.contains_key("content-not-approved"),
        "{r:?}"
    );
    assert!(r.blocked_by_rule.contains_key("consent-opt-in"), "{r:?}");
    assert_eq!(
        r.outcomes["dispatched"],
        r.channels.values().map(|c| c.dispatched).sum::<u64>()
    );
    assert!(r.suppressed_by_rule.contains_key("consent-opt-in"));

    // Closed loop: the provider reports opens; some treated HCPs attend a
    // webinar (a journey move), no held-out one does.
    let mut events = Vec::new();
    let mut attended = 0u64;
    for m in &members {
        let (Some(d), Some(Channel::Email)) = (&m.dispatch, m.channel) else {
            continue;
        };
        let attrs = |extra: &[(&str, &str)]| {
            let mut a = serde_json::Map::new();
            a.insert("dispatch_id".into(), d.clone().into());
            a.insert("content_version".into(), w.approved.0.clone().into());
            for (k, v) in extra {
                a.insert((*k).into(), (*v).into());
            }
            a
        };
        events.push(omnigate_core::NewEvent {
            id: format!("open-{d}"),
            hcp: m.hcp.clone(),
            event_type: omnigate_core::EventType::EmailOpened,
            channel: Channel::Email,
            occurred_at: now_millis(),
            attributes: attrs(&[]),
        });
        if attended < 10 {
            attended += 1;
            events.push(omnigate_core::NewEvent {
                id: format!("webinar-{d}"),
                hcp: m.hcp.clone(),
                event_type: omnigate_core::EventType::WebinarAttended,
                channel: Channel::Webinar,
                occurred_at: now_millis(),
                attributes: attrs(&[("webinar_id", "w1"), ("brand", "cardiozen")]),
            });
        }
    }
    let opens = events.len() as u64 - attended;
    omnigate_core::store::EventStore::ingest(&*w.store, "provider", "b1", &events).unwrap();
    let r = report(&*w.campaigns_store(), &def.id).unwrap();
    assert_eq!(r.engagement[&Channel::Email]["email-opened"], opens);
    assert_eq!(r.content[&w.approved.0]["email-opened"], opens);
    assert_eq!(r.lift.treated.hcps, members.len() as u64 - holdout);
    assert_eq!(r.lift.treated.met, attended);
    assert_eq!(r.lift.holdout.hcps, holdout);
    assert_eq!(r.lift.holdout.met, 0);
    let d = r.lift.difference.unwrap();
    assert!((d - attended as f64 / r.lift.treated.hcps as f64).abs() < 1e-9);
    let [lo, hi] = r.lift.ci95.unwrap();
    assert!(lo < d && d < hi);
    assert_eq!(r.stage_progression["none->consideration"], attended);
    // Channel sequences: the e-mails that went out are the only touches (a
    // rep suggestion is not one until the rep acts), so no pair yet; the
    // webinar moves came after them.
    let emailed = members
        .iter()
        .filter(|m| m.outcome == MemberOutcome::Dispatched && m.channel == Some(Channel::Email))
        .count() as u64;
    assert_eq!(r.sequences.touched.hcps, emailed);
    assert_eq!(r.sequences.touched.progressed, attended);
    assert!(r.sequences.pairs.is_empty(), "{:?}", r.sequences.pairs);
    assert_eq!(
        r.suggestions["open"],
        suggestions.len() as u64,
        "every suggestion is open"
    );

    // The rep's feedback: closing a suggestion records an event.
    let s = &suggestions[0];
    let closed = omnigate_engine::suggest::close(
        &*w.campaigns_store(),
        "rep-1",
        &s.id,
        omnigate_core::suggestion::SuggestionState::Done,
        "discussed the dosing guide",
        now_millis(),
    )
    .unwrap();
    assert_eq!(
        closed.state,
        omnigate_core::suggestion::SuggestionState::Done
    );
    let events = omnigate_core::store::EventStore::events_of(&*w.store, &s.hcp).unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.event.event_type == omnigate_core::EventType::SuggestionDone)
    );
    let again = omnigate_engine::suggest::close(
        &*w.campaigns_store(),
        "rep-1",
        &s.id,
        omnigate_core::suggestion::SuggestionState::Dismissed,
        "changed my mind",
        now_millis(),
    );
    assert!(again.is_err(), "a closed suggestion stays closed");
    let other = &suggestions[1];
    assert!(
        omnigate_engine::suggest::close(
            &*w.campaigns_store(),
            "rep-1",
            &other.id,
            omnigate_core::suggestion::SuggestionState::Dismissed,
            " ",
            now_millis(),
        )
        .is_err(),
        "a dismissal needs a reason"
    );

    // A completed campaign does not run again.
    let again = w.campaigns.start("marketer", &def.id).unwrap_err();
    assert!(
        matches!(again, CampaignError::NotRunnable { .. }),
        "{again}"
    );
    assert!(
        omnigate_core::store::AuditStore::verify_audit(&*w.store)
            .unwrap()
            .is_intact()
    );
}

impl World {
    fn campaigns_store(&self) -> Arc<dyn Store> {
        self.campaigns.store().clone()
    }
}

#[test]
fn a_paused_run_stops_between_pages_and_resumes_without_sending_twice() {
    let w = world(120, options());
    let def = definition(&w, "cz-pause");
    w.campaigns.create("marketer", &def).unwrap();
    w.campaigns.start("marketer", &def.id).unwrap();
    let campaigns = w.campaigns.clone();
    let id = def.id.clone();
    let mut pages = 0;
    let end = w
        .campaigns
        .run(&def.id, &w.plugins, &mut |s| {
            pages += 1;
            if pages == 2 {
                campaigns.pause("marketer", &id).unwrap();
            }
            assert!(s.audience > 0);
        })
        .unwrap();
    assert_eq!(end, RunEnd::Paused);
    let status = w.campaigns.status(&def.id).unwrap();
    assert_eq!(status.state, CampaignState::Paused);
    assert!(status.pending > 0, "paused before the end: {status:?}");
    let delivered_at_pause = w.sink.delivered().len();
    assert!(delivered_at_pause > 0);
    // Paused: a run does nothing.
    assert_eq!(
        w.campaigns.run(&def.id, &w.plugins, &mut |_| {}).unwrap(),
        RunEnd::Paused
    );
    assert_eq!(w.sink.delivered().len(), delivered_at_pause);

    w.campaigns.start("marketer", &def.id).unwrap();
    let end = w.campaigns.run(&def.id, &w.plugins, &mut |_| {}).unwrap();
    assert_eq!(end, RunEnd::Completed);
    assert!(w.sink.per_hcp().values().all(|n| *n == 1));
    let status = w.campaigns.status(&def.id).unwrap();
    assert_eq!(status.pending, 0);
    assert_eq!(
        status.outcomes[&MemberOutcome::Dispatched],
        (w.sink.delivered().len()
            + w.store
                .suggestions(
                    &SuggestionFilter {
                        limit: 1000,
                        ..SuggestionFilter::default()
                    },
                    now_millis()
                )
                .unwrap()
                .len()) as u64
    );
}

#[test]
fn retryable_provider_failures_are_retried_with_backoff_and_a_dead_provider_fails_members() {
    // The provider answers 503 to its first three requests: the members of
    // those batches are retried and delivered.
    let w = world(40, options());
    let def = definition(&w, "cz-retry");
    w.campaigns.create("marketer", &def).unwrap();
    w.campaigns.start("marketer", &def.id).unwrap();
    w.sink.fail_next(3);
    assert_eq!(
        w.campaigns.run(&def.id, &w.plugins, &mut |_| {}).unwrap(),
        RunEnd::Completed
    );
    let members = w.store.members(&def.id, None, None, 1000).unwrap();
    let emailed: Vec<_> = members
        .iter()
        .filter(|m| m.channel == Some(Channel::Email))
        .collect();
    assert!(!emailed.is_empty());
    for m in &emailed {
        assert_eq!(m.outcome, MemberOutcome::Dispatched, "{m:?}");
    }
    assert!(emailed.iter().any(|m| m.attempts > 1), "some were retried");
    assert!(w.sink.per_hcp().values().all(|n| *n == 1));

    // A provider that never answers well: members fail after the last
    // attempt, the rest of the run (rep visits) goes on.
    let def = definition(&w, "cz-dead");
    w.campaigns.create("marketer", &def).unwrap();
    w.campaigns.start("marketer", &def.id).unwrap();
    w.sink.fail_next(1_000);
    let before = w.sink.delivered().len();
    assert_eq!(
        w.campaigns.run(&def.id, &w.plugins, &mut |_| {}).unwrap(),
        RunEnd::Completed
    );
    assert_eq!(w.sink.delivered().len(), before);
    let members = w.store.members(&def.id, None, None, 1000).unwrap();
    let failed: Vec<_> = members
        .iter()
        .filter(|m| m.outcome == MemberOutcome::Failed)
        .collect();
    assert!(!failed.is_empty());
    for m in &failed {
        assert_eq!(m.attempts, options().max_attempts);
        let d = w
            .store
            .dispatch(m.dispatch.as_ref().unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(d.state, DispatchState::Failed);
    }
    assert!(
        members
            .iter()
            .any(|m| m.outcome == MemberOutcome::Dispatched && m.channel == Some(Channel::RepVisit)),
        "the failing e-mail channel did not stop rep suggestions"
    );
    let _ = &w.dir;
}

#[test]
fn bad_definitions_are_refused_with_their_path_and_cancel_is_final() {
    let w = world(10, options());
    let mut def = definition(&w, "cz-bad");
    def.holdout = 0.9;
    def.actions[1].channels.push(Channel::Sms);
    let e = w.campaigns.create("marketer", &def).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("holdout"), "{text}");
    assert!(text.contains("actions[1].channels[2]"), "{text}");
    assert!(w.store.campaigns().unwrap().is_empty(), "nothing stored");

    let def = definition(&w, "cz-cancel");
    w.campaigns.create("marketer", &def).unwrap();
    // A different definition under the same id is refused.
    let mut other = def.clone();
    other.name = "something else".into();
    assert!(w.campaigns.create("marketer", &other).is_err());
    let e = w
        .campaigns
        .run(&def.id, &w.plugins, &mut |_| {})
        .unwrap_err();
    assert!(matches!(e, CampaignError::NotRunnable { .. }), "draft: {e}");
    w.campaigns
        .cancel("marketer", &def.id, "brand plan changed")
        .unwrap();
    assert!(w.campaigns.start("marketer", &def.id).is_err());
    assert_eq!(
        w.campaigns.run(&def.id, &w.plugins, &mut |_| {}).unwrap(),
        RunEnd::Cancelled
    );
    assert!(w.sink.delivered().is_empty());
}

#[test]
fn when_campaigns_compete_for_an_hcp_the_higher_priority_gets_the_slot() {
    let w = world(30, options());
    // Two campaigns over the same audience, e-mail only: the policy's
    // e-mail minimum gap (48 h) leaves one e-mail per HCP between them.
    let mut high = definition(&w, "cz-high");
    high.priority = 10;
    high.holdout = 0.0;
    high.actions.truncate(0);
    high.actions.push(ActionSpec {
        version: w.approved.clone(),
        channels: vec![Channel::Email],
        topics: vec!["dosing".into()],
        stage: None,
    });
    high.channels = vec![Channel::Email];
    let mut low = high.clone();
    low.id = CampaignId::new("cz-low").unwrap();
    low.priority = 0;
    for def in [&high, &low] {
        w.campaigns.create("marketer", def).unwrap();
        w.campaigns.start("marketer", &def.id).unwrap();
    }
    // The low-priority run starts first, in its own thread: it must defer
    // every HCP the high-priority campaign still has pending.
    let low_run = {
        let campaigns = w.campaigns.clone();
        let plugins = w.plugins.clone();
        let id = low.id.clone();
        std::thread::spawn(move || campaigns.run(&id, &plugins, &mut |_| {}))
    };
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        w.campaigns.run(&high.id, &w.plugins, &mut |_| {}).unwrap(),
        RunEnd::Completed
    );
    assert_eq!(low_run.join().unwrap().unwrap(), RunEnd::Completed);

    let high_members = w.store.members(&high.id, None, None, 1000).unwrap();
    let low_members = w.store.members(&low.id, None, None, 1000).unwrap();
    let mut deferred = 0;
    for (h, l) in high_members.iter().zip(&low_members) {
        assert_eq!(h.hcp, l.hcp);
        if h.outcome == MemberOutcome::Dispatched {
            // The slot went to the high-priority campaign; the low one was
            // then blocked by the shared cap.
            assert_ne!(l.outcome, MemberOutcome::Dispatched, "{l:?}");
            let rules: BTreeSet<&str> = l
                .reasons
                .iter()
                .flat_map(|r| r.rules.iter().map(String::as_str))
                .collect();
            assert!(rules.contains("email-min-gap"), "{rules:?}");
        }
        if l.reasons
            .iter()
            .any(|r| r.rules.iter().any(|x| x == "deferred-to-priority"))
        {
            deferred += 1;
        }
    }
    assert!(
        high_members
            .iter()
            .any(|m| m.outcome == MemberOutcome::Dispatched)
    );
    assert!(
        w.sink.per_hcp().values().all(|n| *n == 1),
        "one e-mail each"
    );
    // Deferrals are not kept as final reasons: a deferred member was looked
    // at again and settled on its own merits.
    assert_eq!(deferred, 0);
}

/// With `defer-quiet-hours`, a member whose only option is blocked by the
/// HCP's quiet hours waits for their end (pending, with the time); without
/// it, it is suppressed. Nothing is sent either way.
#[test]
fn quiet_hours_defer_a_member_when_the_campaign_asks_for_it() {
    use omnigate_core::store::HcpStore;

    let w = world(14, options());
    let (zone, offset) = common::night_zone();
    let night: Vec<_> = (0..14)
        .map(|i| {
            let id = omnigate_core::HcpId::new(format!("npi-{i:05}")).unwrap();
            let mut p = w.store.profile(&id).unwrap().unwrap();
            p.time_zone = Some(zone.clone());
            p
        })
        .collect();
    w.store.upsert_profiles("test", &night).unwrap();
    let mut def = definition(&w, "cz-night");
    // The approved e-mail only: no rep-visit fallback.
    def.actions.retain(|a| a.version == w.approved);
    def.actions[0].channels = vec![Channel::Email];
    def.channels = vec![Channel::Email];
    def.holdout = 0.0;
    def.caps.defer_quiet_hours = true;
    let mut plain = def.clone();
    plain.id = CampaignId::new("cz-night-plain").unwrap();
    plain.caps.defer_quiet_hours = false;

    // Without deferral: suppressed with the rule, and the run completes.
    w.campaigns.create("marketer", &plain).unwrap();
    w.campaigns.start("marketer", &plain.id).unwrap();
    let end = w.campaigns.run(&plain.id, &w.plugins, &mut |_| {}).unwrap();
    assert_eq!(end, RunEnd::Completed);
    let suppressed = w
        .store
        .members(&plain.id, Some(MemberOutcome::Suppressed), None, 100)
        .unwrap();
    assert!(!suppressed.is_empty());
    assert!(suppressed.iter().all(|m| {
        m.reasons
            .iter()
            .any(|r| r.rules.contains(&"quiet-hours".to_owned()))
    }));

    // With it: pending until 08:00 local; the run is paused after the page.
    w.campaigns.create("marketer", &def).unwrap();
    w.campaigns.start("marketer", &def.id).unwrap();
    let campaigns = w.campaigns.clone();
    let id = def.id.clone();
    let mut reports = 0;
    let end = w
        .campaigns
        .run(&def.id, &w.plugins, &mut |_| {
            // The first report comes before any page, the second after it.
            reports += 1;
            if reports == 2 {
                campaigns.pause("marketer", &id).unwrap();
            }
        })
        .unwrap();
    assert_eq!(end, RunEnd::Paused);
    let pending = w
        .store
        .members(&def.id, Some(MemberOutcome::Pending), None, 100)
        .unwrap();
    // Those blocked by quiet hours alone wait; those also blocked by
    // something else (an e-mail opt-out) are suppressed as before.
    let quiet_only = suppressed
        .iter()
        .filter(|m| m.reasons.iter().all(|r| r.rules == ["quiet-hours"]))
        .count();
    assert!(quiet_only > 0 && quiet_only < suppressed.len());
    assert_eq!(pending.len(), quiet_only, "{pending:?}");
    let still_suppressed = w
        .store
        .members(&def.id, Some(MemberOutcome::Suppressed), None, 100)
        .unwrap();
    assert_eq!(still_suppressed.len(), suppressed.len() - quiet_only);
    assert!(still_suppressed.iter().all(|m| {
        m.reasons.iter().any(|r| {
            r.rules
                .iter()
                .any(|x| x.starts_with("consent") || x.ends_with("optin"))
        })
    }));
    for m in &pending {
        let at = m.retry_at.unwrap();
        assert_eq!((at + offset * 3_600_000) % 86_400_000, 8 * 3_600_000);
        assert!(at > now_millis() + 6 * 3_600_000);
        assert!(
            m.reasons
                .iter()
                .any(|r| r.rules.contains(&"deferred-quiet-hours".to_owned())),
            "{m:?}"
        );
    }
    assert!(w.sink.delivered().is_empty());
}
