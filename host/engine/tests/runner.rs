//! The background campaign runner (what `omnigate serve` runs): a real
//! SQLite store, the real gate with the repository's policies, the bundled
//! scoring model and e-mail adapter (compiled Wasm components) and a
//! loopback provider.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use omnigate_core::Channel;
use omnigate_core::campaign::{
    ActionSpec, CampaignCaps, CampaignDefinition, CampaignId, CampaignState, CampaignStore, Filter,
    Goal, MemberOutcome, ScoringSpec, SuggestionTiming,
};
use omnigate_core::consent::Purpose;
use omnigate_core::event::now_millis;
use omnigate_core::template::PersonalField;
use omnigate_engine::{Campaigns, RunEnd, RunOptions, Runner, Status};

mod common;

fn options() -> RunOptions {
    RunOptions {
        page: 10,
        backoff: Duration::from_millis(20),
        lease: Duration::from_secs(5),
        owner: "runner-test".into(),
        ..RunOptions::default()
    }
}

fn definition(base: &common::Base, id: &str) -> CampaignDefinition {
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
        actions: vec![ActionSpec {
            version: base.approved.clone(),
            channels: vec![Channel::Email, Channel::RepVisit],
            topics: vec!["dosing".into()],
            stage: Some("awareness".into()),
        }],
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

fn campaigns(base: &common::Base) -> Campaigns {
    Campaigns::new(base.dyn_store.clone(), options()).with_sender(base.sender.clone())
}

fn status(c: &Campaigns, id: &CampaignId) -> Status {
    c.status(id).unwrap()
}

fn count(s: &Status, o: MemberOutcome) -> u64 {
    s.outcomes.get(&o).copied().unwrap_or(0)
}

/// Waits up to `secs` for `done`, checking every 50 ms.
fn wait_for(secs: u64, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_campaign_started_without_a_run_is_run_to_completion_by_the_runner() {
    let base = common::base(60);
    let c = campaigns(&base);
    let def = definition(&base, "cz-background");
    c.create("marketer", &def).unwrap();
    let draft = definition(&base, "cz-still-draft");
    c.create("marketer", &draft).unwrap();
    // `campaign start --no-run`: started, nobody runs it.
    let record = c.start("marketer", &def.id).unwrap();
    assert_eq!(record.state, CampaignState::Running);
    let before = status(&c, &def.id);
    assert!(before.pending > 0, "{before:?}");
    assert!(before.runner.is_none());
    assert!(base.sink.delivered().is_empty());

    let runner = Runner::new(c.clone());
    let ran = runner.run_due(&base.plugins).unwrap();
    assert_eq!(ran.len(), 1, "only the started campaign is due: {ran:?}");
    assert_eq!(ran[0].0, def.id);
    assert_eq!(*ran[0].1.as_ref().unwrap(), RunEnd::Completed);

    let after = status(&c, &def.id);
    assert_eq!(after.state, CampaignState::Completed);
    assert_eq!(after.pending, 0);
    assert!(after.runner.is_none(), "the lease was given back");
    let dispatched = count(&after, MemberOutcome::Dispatched);
    assert!(dispatched > 0, "{after:?}");
    let emailed = base
        .store
        .members(&def.id, Some(MemberOutcome::Dispatched), None, 1000)
        .unwrap()
        .iter()
        .filter(|m| m.channel == Some(Channel::Email))
        .count();
    assert_eq!(base.sink.delivered().len(), emailed);
    assert!(base.sink.per_hcp().values().all(|n| *n == 1));
    // The draft was left alone, and nothing is due any more.
    assert_eq!(status(&c, &draft.id).state, CampaignState::Draft);
    assert!(runner.run_due(&base.plugins).unwrap().is_empty());
}

#[test]
fn the_runner_waits_for_a_live_lease_and_takes_over_an_expired_one() {
    let base = common::base(30);
    let c = campaigns(&base);
    let def = definition(&base, "cz-lease");
    c.create("marketer", &def).unwrap();
    c.start("marketer", &def.id).unwrap();
    let now = now_millis();
    // Another process runs it: not due.
    base.store
        .claim_campaign(&def.id, "pid 999999 elsewhere", now, now + 60_000)
        .unwrap()
        .unwrap();
    let runner = Runner::new(c.clone());
    assert!(c.due().unwrap().is_empty());
    assert!(runner.run_due(&base.plugins).unwrap().is_empty());
    assert!(base.sink.delivered().is_empty());
    assert_eq!(status(&c, &def.id).state, CampaignState::Running);

    // That process died: once its lease lapses, the runner takes over.
    base.store
        .release_campaign(&def.id, "pid 999999 elsewhere")
        .unwrap();
    base.store
        .claim_campaign(&def.id, "pid 999999 elsewhere", now - 10_000, now - 1)
        .unwrap()
        .unwrap();
    let ran = runner.run_due(&base.plugins).unwrap();
    assert_eq!(ran.len(), 1);
    assert_eq!(*ran[0].1.as_ref().unwrap(), RunEnd::Completed);
    assert_eq!(status(&c, &def.id).pending, 0);
}

#[test]
fn the_background_loop_runs_a_start_at_once_when_woken_and_a_pause_stops_it_within_a_second() {
    let base = common::base(60);
    let c = campaigns(&base);
    // A send rate of 3 a minute keeps the run going for minutes.
    let mut def = definition(&base, "cz-slow");
    def.caps.per_minute = Some(3);
    c.create("marketer", &def).unwrap();

    let runner = Runner::new(c.clone());
    let waker = runner.waker();
    let stop = Arc::new(AtomicBool::new(false));
    let plugins = base.plugins.clone();
    let thread = {
        let stop = stop.clone();
        // A poll far longer than the test: only the wake-up runs it.
        std::thread::spawn(move || runner.run(&|| plugins.clone(), &stop, Duration::from_secs(600)))
    };
    // Let the first pass find nothing (the campaign is a draft).
    std::thread::sleep(Duration::from_millis(300));
    assert!(status(&c, &def.id).runner.is_none());

    c.start("marketer", &def.id).unwrap();
    waker.wake();
    wait_for(20, "the woken runner to dispatch", || {
        let s = status(&c, &def.id);
        s.runner.is_some() && count(&s, MemberOutcome::Dispatched) > 0
    });

    c.pause("marketer", &def.id).unwrap();
    let paused_at = Instant::now();
    wait_for(5, "the run to stop", || {
        status(&c, &def.id).runner.is_none()
    });
    let took = paused_at.elapsed();
    assert!(
        took < Duration::from_millis(1_500),
        "the run stopped {took:?} after the pause"
    );
    let s = status(&c, &def.id);
    assert_eq!(s.state, CampaignState::Paused);
    assert!(s.pending > 0, "paused before the end: {s:?}");
    let delivered = base.sink.delivered().len();
    std::thread::sleep(Duration::from_millis(1_200));
    assert_eq!(
        base.sink.delivered().len(),
        delivered,
        "nothing after the pause"
    );

    // Cancelled while paused: final, and the runner leaves it alone.
    c.cancel("marketer", &def.id, "brand plan changed").unwrap();
    waker.wake();
    std::thread::sleep(Duration::from_millis(300));
    let s = status(&c, &def.id);
    assert_eq!(s.state, CampaignState::Cancelled);
    assert_eq!(s.pending, 0);
    assert!(count(&s, MemberOutcome::Unreached) > 0);

    stop.store(true, Ordering::Relaxed);
    waker.wake();
    let stopped = Instant::now();
    thread.join().unwrap();
    assert!(stopped.elapsed() < Duration::from_secs(2));
}
