//! The run loop of a campaign: pages of members through scoring, the gate,
//! the ledger, the adapters and the rep queues, with retries.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use omnigate_core::campaign::{
    CampaignDefinition, CampaignId, CampaignState, Filter, Member, MemberFacts, MemberOutcome,
    MemberQuery, MemberUpdate, Reason,
};
use omnigate_core::event::{UnixMillis, now_millis};
use omnigate_core::ledger::{
    DecisionRecord, DispatchRecord, DispatchState, NewDispatch, Outcome, SealedDecision,
    StateChange,
};
use omnigate_core::store::StoreError;
use omnigate_core::suggestion::{Suggestion, SuggestionState};
use omnigate_core::{Channel, EngagementStats, HcpProfile};
use omnigate_gate::DispatchRequest;
use omnigate_runtime::scoring::{CampaignGoal, CandidateAction, ChannelPerformance};
use omnigate_runtime::{Plugin, PluginKind};
use sha2::{Digest, Sha256};

use super::{CampaignError, Campaigns, FIELD_CHANNELS, RunEnd, RunOptions, Status, dispatch_key};
use crate::audience::{Subject, in_holdout};
use crate::send::{Ready, Sent};

/// A page ranked and gated, not recorded yet.
struct Decided {
    /// Serialized on the deciding thread: the committing one only writes.
    records: Vec<SealedDecision>,
    entries: Vec<NewDispatch>,
    work: Vec<Work>,
    /// Dispatches it enters.
    entered: u32,
}

/// A committed page's records, entries, work and updates: freeing them is
/// left to the thread that waits.
struct Spent {
    _records: Vec<SealedDecision>,
    _entries: Vec<NewDispatch>,
    _work: Vec<Work>,
    _updates: Vec<MemberUpdate>,
}

/// One member being worked on in a page.
struct Work {
    member: Member,
    profile: Option<HcpProfile>,
    reasons: Vec<Reason>,
    rationale: Option<String>,
    /// The dispatch to deliver: (ready, is it a field channel).
    ready: Option<Ready>,
    /// Settled without delivery.
    settled: Option<MemberUpdate>,
    attempts: u32,
}

impl Campaigns {
    pub(super) fn run_claimed(
        &self,
        def: &CampaignDefinition,
        scorer: &Arc<Plugin>,
        plugins: &[Arc<Plugin>],
        progress: &mut dyn FnMut(&Status),
    ) -> Result<RunEnd, CampaignError> {
        let id = &def.id;
        let actor = self.options.actor.as_str();
        // Wait for the window.
        loop {
            if let Some(end) = self.stop_reason(id)? {
                return Ok(end);
            }
            let now = now_millis();
            match def.window.and_then(|w| w.start) {
                Some(start) if start > now => {
                    self.claim(id)?;
                    std::thread::sleep(Duration::from_millis((start - now).clamp(1, 1000) as u64));
                }
                _ => break,
            }
        }
        let record = self.record(id)?;
        if record.state == CampaignState::Scheduled {
            self.store.set_campaign_state(
                actor,
                id,
                CampaignState::Running,
                "the window opened",
                now_millis(),
            )?;
        }
        if record.resolved_at.is_none() {
            self.resolve(def)?;
        }
        let mut shown = Shown::read(self, id)?;
        progress(&shown.status);
        let adapters: BTreeMap<Channel, Arc<Plugin>> = plugins
            .iter()
            .filter(|p| p.manifest().kind == PluginKind::ChannelAdapter)
            .flat_map(|p| {
                p.info()
                    .channels
                    .iter()
                    .map(|c| (Channel::from(*c), p.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let counts = self.store.member_counts(id, now_millis())?;
        let mut dispatched = counts
            .by_outcome
            .get(&MemberOutcome::Dispatched)
            .copied()
            .unwrap_or(0);
        let mut population: BTreeMap<Channel, ChannelPerformance> = BTreeMap::new();
        let mut minute = (now_millis() / 60_000, 0u32);
        let mut after: Option<omnigate_core::HcpId> = None;
        // Pipelined over two threads: a page is decided (ranked and gated)
        // while the page before it is recorded, delivered and settled.
        // `inflight` is a decided page waiting for that. Pages hold
        // different HCPs, so deciding one does not depend on the other's
        // writes; every read of the members from the start (a wrap-around,
        // the end) waits for it. A paused run finishes it; a cancelled one
        // (or a closed window) drops it: nothing of it is recorded or sent.
        let mut inflight: Option<Decided> = None;
        loop {
            if let Some(end) = self.stop_reason(id)? {
                if end == RunEnd::Paused
                    && let Some(decided) = inflight.take()
                {
                    let (outcomes, _spent) = self.commit_page(def, &adapters, decided)?;
                    progress(shown.after_page(self, id, &outcomes)?);
                }
                return Ok(end);
            }
            self.claim(id)?;
            let now = now_millis();
            if def.window.and_then(|w| w.end).is_some_and(|end| now > end) {
                inflight = None;
                self.close_window(def)?;
                continue;
            }
            if after.is_none()
                && let Some(decided) = inflight.take()
            {
                let (outcomes, _spent) = self.commit_page(def, &adapters, decided)?;
                progress(shown.after_page(self, id, &outcomes)?);
                continue;
            }
            let page = self
                .store
                .pending_members(id, after.as_ref(), self.options.page, now)?;
            if page.is_empty() {
                if after.is_some() {
                    // Wrap around: members waiting for a retry come back.
                    after = None;
                    continue;
                }
                let left = self
                    .store
                    .members(id, Some(MemberOutcome::Pending), None, 1)?;
                if left.is_empty() {
                    self.store.set_campaign_state(
                        actor,
                        id,
                        CampaignState::Completed,
                        "every member settled",
                        now_millis(),
                    )?;
                    progress(&self.status(id)?);
                    return Ok(RunEnd::Completed);
                }
                // Only retries are left, not due yet.
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
            after = page.last().map(|m| m.hcp.clone());
            let mut page = page;
            if let Some(per_minute) = def.caps.per_minute {
                let this = now_millis() / 60_000;
                if this != minute.0 {
                    minute = (this, 0);
                }
                let room = per_minute.saturating_sub(minute.1) as usize;
                if room == 0 {
                    let wait = (this + 1) * 60_000 - now_millis();
                    std::thread::sleep(Duration::from_millis(wait.clamp(1, 1000) as u64));
                    after = None;
                    continue;
                }
                page.truncate(room);
                after = page.last().map(|m| m.hcp.clone());
            }
            let (decided, committed) = std::thread::scope(|s| {
                let committing = inflight.take().map(|previous| {
                    let adapters = &adapters;
                    s.spawn(move || self.commit_page(def, adapters, previous))
                });
                let decided = self.decide_page(
                    def,
                    scorer,
                    &adapters,
                    page,
                    &mut population,
                    &mut dispatched,
                );
                (decided, committing.map(|h| h.join()))
            });
            if let Some(committed) = committed {
                // What the page held is freed here, on the deciding
                // thread, which waits for the committing one anyway.
                let (outcomes, spent) =
                    committed.unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
                progress(shown.after_page(self, id, &outcomes)?);
                drop(spent);
            }
            let decided = decided?;
            minute.1 += decided.entered;
            inflight = Some(decided);
        }
    }

    fn close_window(&self, def: &CampaignDefinition) -> Result<(), CampaignError> {
        let id = &def.id;
        loop {
            let page = self
                .store
                .members(id, Some(MemberOutcome::Pending), None, 1000)?;
            if page.is_empty() {
                return Ok(());
            }
            let updates: Vec<MemberUpdate> = page
                .into_iter()
                .map(|m| MemberUpdate {
                    hcp: m.hcp,
                    outcome: MemberOutcome::Unreached,
                    dispatch: m.dispatch,
                    channel: m.channel,
                    version: m.version,
                    attempts: m.attempts,
                    retry_at: None,
                    reasons: vec![Reason {
                        version: None,
                        channel: None,
                        rules: vec!["window-closed".into()],
                        decision: None,
                        message: "the campaign's window closed first".into(),
                    }],
                    rationale: m.rationale,
                })
                .collect();
            for u in &updates {
                if let Some(d) = &u.dispatch {
                    self.store.set_dispatch_state(
                        &self.options.actor,
                        d,
                        &[DispatchState::Queued],
                        DispatchState::Cancelled,
                        Some("the campaign's window closed"),
                    )?;
                }
            }
            self.store
                .update_members(&self.options.actor, id, &updates, now_millis())?;
        }
    }

    /// Resolves the audience into members, with the holdout drawn.
    pub(super) fn resolve(&self, def: &CampaignDefinition) -> Result<(), CampaignError> {
        let now = now_millis();
        let mut after = None;
        loop {
            let profiles =
                self.store
                    .profiles_after(Some(&def.market), after.as_ref(), RESOLVE_PAGE)?;
            let last = profiles.len() < RESOLVE_PAGE;
            let mut members = Vec::new();
            // The derived features are read only for a filter that tests them.
            let reads_features = reads_features(&def.audience);
            for p in &profiles {
                let features = if reads_features {
                    self.store.features(&p.id, now)?
                } else {
                    EngagementStats::default()
                };
                let mut subject = Subject::new(p, &features, &def.product, now, &*self.store);
                if subject.matches(&def.audience)? {
                    let held = in_holdout(def.seed(), def.id.as_str(), p.id.as_str(), def.holdout);
                    members.push((p.id.clone(), held));
                }
            }
            after = profiles.last().map(|p| p.id.clone());
            self.store.add_members(&def.id, &members, last, now)?;
            if last {
                return Ok(());
            }
        }
    }

    /// The first half of a page: rank and gate each member (nothing is
    /// recorded or sent yet, but for a resumed dispatch the gate now
    /// blocks, which is cancelled at once).
    fn decide_page(
        &self,
        def: &CampaignDefinition,
        scorer: &Plugin,
        adapters: &BTreeMap<Channel, Arc<Plugin>>,
        page: Vec<Member>,
        population: &mut BTreeMap<Channel, ChannelPerformance>,
        dispatched: &mut u64,
    ) -> Result<Decided, CampaignError> {
        let now = now_millis();
        let mut records: Vec<SealedDecision> = Vec::new();
        let mut entries: Vec<NewDispatch> = Vec::new();
        let mut work: Vec<Work> = Vec::new();
        let mut entered = 0;
        // Arbitration is asked per member only while a campaign of higher
        // priority is running or scheduled.
        let outranked = self.store.campaigns()?.iter().any(|c| {
            c.definition.id != def.id
                && c.definition.priority > def.priority
                && matches!(c.state, CampaignState::Running | CampaignState::Scheduled)
        });
        // What the store knows of the page's members, in one read.
        let keys: Vec<String> = page
            .iter()
            .map(|m| dispatch_key(&def.id, m.hcp.as_str(), 1))
            .collect();
        let queries: Vec<MemberQuery<'_>> = page
            .iter()
            .zip(&keys)
            .map(|(m, key)| MemberQuery {
                hcp: &m.hcp,
                dispatch: m.dispatch.as_deref(),
                key,
            })
            .collect();
        let facts = self.store.member_facts(&def.product, now, &queries)?;
        drop(queries);
        for ((member, key), facts) in page.into_iter().zip(keys).zip(facts) {
            let MemberFacts {
                profile,
                features,
                stage,
                dispatch: existing,
            } = facts;
            let attempts = member.attempts;
            let mut w = Work {
                member,
                profile: None,
                reasons: Vec::new(),
                rationale: None,
                ready: None,
                settled: None,
                attempts,
            };
            let outranked_by = match (&existing, outranked) {
                (None, true) => self
                    .store
                    .outranked_by(&w.member.hcp, def.priority, &def.id)?,
                _ => None,
            };
            if let Some(d) = existing {
                self.resume(def, &mut w, d, &mut records)?;
            } else if let Some(other) = outranked_by {
                // Arbitration: a campaign of higher priority has this HCP
                // pending; it takes the slot first (caps are shared, so
                // what it sends counts when this one comes back).
                w.reasons.push(engine_reason(
                    "deferred-to-priority",
                    &format!("campaign `{other}` has a higher priority and has this HCP pending"),
                ));
                w.settled = Some(settle(&w, MemberOutcome::Pending, Some(now + DEFER_MS)));
            } else if def
                .caps
                .max_dispatches
                .is_some_and(|max| *dispatched >= max)
            {
                w.reasons.push(engine_reason(
                    "campaign-budget",
                    "the campaign's dispatch budget is spent",
                ));
                w.settled = Some(settle(&w, MemberOutcome::Suppressed, None));
            } else {
                self.walk(
                    def,
                    scorer,
                    adapters,
                    &mut w,
                    (profile, features, stage),
                    &key,
                    now,
                    population,
                    &mut records,
                    &mut entries,
                )?;
                if w.ready.is_some() {
                    *dispatched += 1;
                    entered += 1;
                }
            }
            work.push(w);
        }
        Ok(Decided {
            records,
            entries,
            work,
            entered,
        })
    }

    /// The second half of a page: record, deliver, settle. Returns the
    /// outcome recorded for each member, and the page, spent, for the
    /// caller to free.
    fn commit_page(
        &self,
        def: &CampaignDefinition,
        adapters: &BTreeMap<Channel, Arc<Plugin>>,
        decided: Decided,
    ) -> Result<(Vec<MemberOutcome>, Spent), CampaignError> {
        let Decided {
            records,
            entries,
            mut work,
            ..
        } = decided;
        let now = now_millis();
        // INVARIANT: decisions and ledger entries are durable before any
        // adapter or rep queue sees a dispatch.
        let report = self
            .store
            .record_sealed_decisions(&self.options.actor, &records, &entries)?;
        for w in &mut work {
            if let Some(r) = &w.ready
                && report.existing_keys.contains(&r.idempotency_key)
            {
                // Another runner entered it meanwhile; the next pass settles it.
                w.ready = None;
            }
        }
        self.deliver(def, adapters, &mut work, now)?;
        let updates: Vec<MemberUpdate> = work.iter_mut().filter_map(|w| w.settled.take()).collect();
        self.store
            .update_members(&self.options.actor, &def.id, &updates, now_millis())?;
        let outcomes = updates.iter().map(|u| u.outcome).collect();
        Ok((
            outcomes,
            Spent {
                _records: records,
                _entries: entries,
                _work: work,
                _updates: updates,
            },
        ))
    }

    /// A member whose dispatch is already in the ledger.
    fn resume(
        &self,
        def: &CampaignDefinition,
        w: &mut Work,
        d: DispatchRecord,
        records: &mut Vec<SealedDecision>,
    ) -> Result<(), CampaignError> {
        w.member.dispatch = Some(d.dispatch.id.clone());
        w.member.channel = Some(d.dispatch.channel);
        w.member.version = Some(d.dispatch.version.clone());
        match d.state {
            DispatchState::Sent => {
                w.settled = Some(settle(w, MemberOutcome::Dispatched, None));
            }
            DispatchState::Failed => {
                w.reasons.push(engine_reason(
                    "delivery-failed",
                    d.detail.as_deref().unwrap_or("the delivery failed"),
                ));
                w.settled = Some(settle(w, MemberOutcome::Failed, None));
            }
            DispatchState::Cancelled => {
                w.reasons.push(engine_reason(
                    "dispatch-cancelled",
                    d.detail
                        .as_deref()
                        .unwrap_or("the dispatch was cancelled before it went out"),
                ));
                w.settled = Some(settle(w, MemberOutcome::Suppressed, None));
            }
            DispatchState::Queued | DispatchState::Sending => {
                // Ask the gate again: consent, caps or approval may have
                // changed since the dispatch was entered.
                let request = DispatchRequest {
                    dispatch_id: d.dispatch.id.clone(),
                    campaign: Some(def.id.to_string()),
                    hcp: d.dispatch.hcp.clone(),
                    version: d.dispatch.version.clone(),
                    channel: d.dispatch.channel,
                    purpose: d.dispatch.purpose,
                    market: Some(d.dispatch.market.clone()),
                    values: def.values.clone(),
                    proposed: None,
                    at: now_millis(),
                };
                let decided = self.sender()?.gate().decide(&request);
                let profile = self.store.profile(&request.hcp)?;
                match (decided.rendered.clone(), profile, decided.allowed()) {
                    (Some(rendered), Some(profile), true) => {
                        w.ready = Some(Ready {
                            request,
                            idempotency_key: d.dispatch.idempotency_key.clone(),
                            rendered,
                            profile,
                            decision_id: decided.record.id.clone(),
                        });
                    }
                    _ => {
                        self.sender()?.withdraw_blocked(&d)?;
                        w.reasons.push(blocked_reason(&decided.record));
                        w.settled = Some(settle(w, MemberOutcome::Suppressed, None));
                    }
                }
                records.push(seal(decided.record)?);
            }
        }
        Ok(())
    }

    /// A fresh member: score, then walk the ranking through the gate.
    #[allow(clippy::too_many_arguments, reason = "one page's shared state")]
    fn walk(
        &self,
        def: &CampaignDefinition,
        scorer: &Plugin,
        adapters: &BTreeMap<Channel, Arc<Plugin>>,
        w: &mut Work,
        (profile, features, stage): (Option<HcpProfile>, EngagementStats, Option<String>),
        key: &str,
        now: UnixMillis,
        population: &mut BTreeMap<Channel, ChannelPerformance>,
        records: &mut Vec<SealedDecision>,
        entries: &mut Vec<NewDispatch>,
    ) -> Result<(), CampaignError> {
        let Some(profile) = profile else {
            w.reasons
                .push(engine_reason("hcp-unknown", "the HCP's profile is gone"));
            w.settled = Some(settle(w, MemberOutcome::Suppressed, None));
            return Ok(());
        };
        add_population(population, &features);
        // The candidates: every action on every channel something delivers.
        let mut candidates = Vec::new();
        let mut by_id: BTreeMap<String, (usize, Channel)> = BTreeMap::new();
        for (i, a) in def.actions.iter().enumerate() {
            for c in &a.channels {
                if !FIELD_CHANNELS.contains(c) && !adapters.contains_key(c) {
                    w.reasons.push(Reason {
                        version: Some(a.version.clone()),
                        channel: Some(*c),
                        rules: vec!["no-adapter".into()],
                        decision: None,
                        message: format!("no channel adapter for `{c}` is loaded"),
                    });
                    continue;
                }
                let action_id = format!("{i}:{c}");
                by_id.insert(action_id.clone(), (i, *c));
                candidates.push(CandidateAction {
                    action_id,
                    content_version_id: a.version.0.clone(),
                    channel: (*c).into(),
                    topics: a.topics.clone(),
                    stage: a.stage.clone(),
                });
            }
        }
        let snapshot = profile.snapshot(Some(features), stage);
        let goal = CampaignGoal {
            product: def.product.clone(),
            target_stage: def.goal.target_stage.clone(),
            stages: def.goal.ladder(),
        };
        let scored = match scorer.score(
            &snapshot,
            candidates,
            goal,
            population.values().cloned().collect(),
        ) {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                w.reasons.push(engine_reason(
                    "scoring-failed",
                    &format!("the scoring model refused: {e:?}"),
                ));
                w.settled = Some(settle(w, MemberOutcome::Suppressed, None));
                return Ok(());
            }
            Err(e) => {
                tracing::warn!(campaign = %def.id, hcp = %profile.id, error = %e, "scoring failed");
                w.reasons.push(engine_reason(
                    "scoring-failed",
                    &format!("the scoring model failed: {e}"),
                ));
                w.settled = Some(settle(w, MemberOutcome::Suppressed, None));
                return Ok(());
            }
        };
        let mut ranked: Vec<_> = scored
            .into_iter()
            .filter_map(|s| by_id.remove(&s.action_id).map(|a| (s, a)))
            .collect();
        // Highest score first; ties keep the definition's order.
        ranked.sort_by(|(a, (ai, _)), (b, (bi, _))| b.score.total_cmp(&a.score).then(ai.cmp(bi)));
        for (_, (i, c)) in by_id {
            w.reasons.push(Reason {
                version: Some(def.actions[i].version.clone()),
                channel: Some(c),
                rules: vec!["not-ranked".into()],
                decision: None,
                message: "the scoring model did not score this action".into(),
            });
        }
        // The soonest an option blocked only by time could go.
        let mut defer_to: Option<UnixMillis> = None;
        for (s, (i, channel)) in ranked {
            let version = def.actions[i].version.clone();
            if let Some(min) = def.scoring.min_score
                && s.score < min.0
            {
                w.reasons.push(Reason {
                    version: Some(version),
                    channel: Some(channel),
                    rules: vec!["below-min-score".into()],
                    decision: None,
                    message: format!("score {:.3} is below the minimum {}", s.score, min.0),
                });
                continue;
            }
            let request = DispatchRequest {
                dispatch_id: uuid::Uuid::now_v7().to_string(),
                campaign: Some(def.id.to_string()),
                hcp: profile.id.clone(),
                version,
                channel,
                purpose: def.purpose,
                market: Some(def.market.clone()),
                values: def.values.clone(),
                proposed: None,
                at: now,
            };
            let decided = self.sender()?.gate().decide(&request);
            let entry = decided.dispatch(key);
            match (entry, decided.rendered.clone()) {
                (Some(entry), Some(rendered)) => {
                    w.rationale = Some(s.rationale.clone());
                    w.member.dispatch = Some(request.dispatch_id.clone());
                    w.member.channel = Some(channel);
                    w.member.version = Some(request.version.clone());
                    w.ready = Some(Ready {
                        request,
                        idempotency_key: key.to_owned(),
                        rendered,
                        profile: profile.clone(),
                        decision_id: decided.record.id.clone(),
                    });
                    entries.push(entry);
                    records.push(seal(decided.record)?);
                    break;
                }
                _ => {
                    if let Some(at) = decided.record.deferrable_until() {
                        defer_to = Some(defer_to.map_or(at, |d: UnixMillis| d.min(at)));
                    }
                    w.reasons.push(blocked_reason(&decided.record));
                    records.push(seal(decided.record)?);
                }
            }
        }
        w.profile = Some(profile);
        if w.ready.is_none() {
            if w.reasons.is_empty() {
                w.reasons.push(engine_reason(
                    "no-action",
                    "the campaign has no action for this HCP",
                ));
            }
            // Nothing can go now; when the campaign asks for it, an option
            // blocked only by the HCP's quiet hours waits for them to end
            // (within the window), as for a retry.
            let in_window =
                |at: UnixMillis| def.window.and_then(|w| w.end).is_none_or(|end| at < end);
            match defer_to.filter(|at| def.caps.defer_quiet_hours && in_window(*at)) {
                Some(at) => {
                    w.reasons.push(engine_reason(
                        "deferred-quiet-hours",
                        "deferred to the end of the HCP's quiet hours",
                    ));
                    w.settled = Some(settle(w, MemberOutcome::Pending, Some(at)));
                }
                None => w.settled = Some(settle(w, MemberOutcome::Suppressed, None)),
            }
        }
        Ok(())
    }

    /// Hands the page's dispatches to adapters (one batch per adapter) and
    /// rep queues, and settles each member.
    fn deliver(
        &self,
        def: &CampaignDefinition,
        adapters: &BTreeMap<Channel, Arc<Plugin>>,
        work: &mut [Work],
        now: UnixMillis,
    ) -> Result<(), CampaignError> {
        // Field channels: rep suggestions.
        let mut suggestions = Vec::new();
        let mut suggested = Vec::new();
        let field: Vec<usize> = work
            .iter()
            .enumerate()
            .filter(|(_, w)| {
                w.ready
                    .as_ref()
                    .is_some_and(|r| FIELD_CHANNELS.contains(&r.request.channel))
            })
            .map(|(i, _)| i)
            .collect();
        // Every field dispatch of the page to `sending` in one transaction.
        let from = [DispatchState::Queued, DispatchState::Sending];
        let changes: Vec<StateChange<'_>> = field
            .iter()
            .filter_map(|i| work[*i].ready.as_ref())
            .map(|r| StateChange {
                id: &r.request.dispatch_id,
                from: &from,
                to: DispatchState::Sending,
                detail: None,
            })
            .collect();
        let moved = self
            .store
            .set_dispatch_states(&self.options.actor, &changes)?;
        for (i, moved) in field.into_iter().zip(moved) {
            let w = &work[i];
            let Some(r) = &w.ready else { continue };
            if !moved {
                continue;
            }
            suggestions.push(Suggestion {
                id: r.request.dispatch_id.clone(),
                hcp: r.request.hcp.clone(),
                rep: r.profile.assigned_reps.first().cloned(),
                campaign: Some(def.id.to_string()),
                version: r.request.version.clone(),
                channel: r.request.channel,
                rationale: w
                    .rationale
                    .clone()
                    .unwrap_or_else(|| "resumed campaign dispatch".into()),
                notes: w.reasons.iter().map(Reason::note).collect(),
                created_at: now,
                due_at: now + def.suggestions.due.millis,
                expires_at: now + def.suggestions.expires.millis,
                state: SuggestionState::Open,
                closed: None,
            });
            suggested.push(i);
        }
        self.store
            .deliver_suggestions(&self.options.actor, &suggestions)?;
        for i in suggested {
            let w = &mut work[i];
            w.attempts += 1;
            w.settled = Some(settle(w, MemberOutcome::Dispatched, None));
        }
        // Adapters: one batch each.
        let mut groups: BTreeMap<String, (Arc<Plugin>, Vec<usize>)> = BTreeMap::new();
        for (i, w) in work.iter().enumerate() {
            let Some(r) = &w.ready else { continue };
            if w.settled.is_some() || FIELD_CHANNELS.contains(&r.request.channel) {
                continue;
            }
            if let Some(p) = adapters.get(&r.request.channel) {
                groups
                    .entry(p.manifest().name.clone())
                    .or_insert_with(|| (p.clone(), Vec::new()))
                    .1
                    .push(i);
            }
        }
        for (_, (adapter, index)) in groups {
            let ready: Vec<Ready> = index
                .iter()
                .filter_map(|i| work[*i].ready.clone())
                .collect();
            let sent = self.sender()?.deliver(&adapter, &ready)?;
            for (i, s) in index.into_iter().zip(sent) {
                self.settle_delivery(&mut work[i], s, now)?;
            }
        }
        Ok(())
    }

    fn settle_delivery(&self, w: &mut Work, sent: Sent, now: UnixMillis) -> Result<(), StoreError> {
        w.attempts += 1;
        let retry = |w: &mut Work, reason: String| -> Result<(), StoreError> {
            w.reasons.push(engine_reason("delivery-retry", &reason));
            if w.attempts >= self.options.max_attempts {
                if let Some(d) = &w.member.dispatch {
                    self.store.set_dispatch_state(
                        &self.options.actor,
                        d,
                        &[DispatchState::Queued, DispatchState::Sending],
                        DispatchState::Failed,
                        Some(&format!("gave up after {} attempts: {reason}", w.attempts)),
                    )?;
                }
                w.reasons.push(engine_reason(
                    "delivery-failed",
                    &format!("gave up after {} attempts", w.attempts),
                ));
                w.settled = Some(settle(w, MemberOutcome::Failed, None));
            } else {
                let at = now + backoff(&self.options, w);
                w.settled = Some(settle(w, MemberOutcome::Pending, Some(at)));
            }
            Ok(())
        };
        match sent {
            Sent::Delivered { .. } => {
                w.settled = Some(settle(w, MemberOutcome::Dispatched, None));
            }
            Sent::Failed {
                reason,
                retryable: false,
                ..
            } => {
                w.reasons.push(engine_reason("delivery-failed", &reason));
                w.settled = Some(settle(w, MemberOutcome::Failed, None));
            }
            Sent::Failed {
                reason,
                retryable: true,
                ..
            }
            | Sent::Unknown { reason, .. } => retry(w, reason)?,
            Sent::AlreadyInLedger { state, .. } => {
                w.attempts -= 1;
                let outcome = match state {
                    DispatchState::Sent => MemberOutcome::Dispatched,
                    DispatchState::Failed => MemberOutcome::Failed,
                    DispatchState::Cancelled => {
                        w.reasons.push(engine_reason(
                            "dispatch-cancelled",
                            "the dispatch was cancelled before it went out (an opt-out, a withdrawal or an expiry)",
                        ));
                        MemberOutcome::Suppressed
                    }
                    DispatchState::Queued | DispatchState::Sending => MemberOutcome::Pending,
                };
                w.settled = Some(settle(w, outcome, None));
            }
            Sent::Blocked { decision } => {
                w.reasons.push(blocked_reason(&decision));
                w.settled = Some(settle(w, MemberOutcome::Suppressed, None));
            }
        }
        Ok(())
    }
}

/// HCP profiles read per audience page (one transaction adds their members).
const RESOLVE_PAGE: usize = 5_000;

/// Whether the filter tests the derived features (`feature`, `seen`).
fn reads_features(filter: &Filter) -> bool {
    match filter {
        Filter::All(list) | Filter::Any(list) => list.iter().any(reads_features),
        Filter::Not(f) => reads_features(f),
        Filter::Feature(_) | Filter::Seen(_) => true,
        _ => false,
    }
}

/// How long a member deferred to a higher-priority campaign waits before
/// it is looked at again.
const DEFER_MS: i64 = 1_000;

/// The delay before the next attempt: `backoff * 2^(attempts-1)`, plus up
/// to 50% jitter drawn from the dispatch id (spread, and stable).
fn backoff(options: &RunOptions, w: &Work) -> i64 {
    let base = options.backoff.as_millis() as i64;
    let exp = base.saturating_mul(1 << w.attempts.saturating_sub(1).min(16));
    let seed = format!(
        "{}/{}",
        w.member.dispatch.as_deref().unwrap_or(""),
        w.attempts
    );
    let digest = Sha256::digest(seed.as_bytes());
    let jitter = i64::from(u16::from_be_bytes([digest[0], digest[1]])) * exp / 2 / 65_536;
    exp + jitter
}

fn settle(w: &Work, outcome: MemberOutcome, retry_at: Option<UnixMillis>) -> MemberUpdate {
    MemberUpdate {
        hcp: w.member.hcp.clone(),
        outcome,
        dispatch: w.member.dispatch.clone(),
        channel: w.member.channel,
        version: w.member.version.clone(),
        attempts: w.attempts,
        retry_at,
        reasons: w.reasons.clone(),
        rationale: w.rationale.clone().or_else(|| w.member.rationale.clone()),
    }
}

pub(crate) fn engine_reason(rule: &str, message: &str) -> Reason {
    Reason {
        version: None,
        channel: None,
        rules: vec![rule.to_owned()],
        decision: None,
        message: message.to_owned(),
    }
}

pub(crate) fn blocked_reason(d: &DecisionRecord) -> Reason {
    let blocking: Vec<_> = d
        .rules
        .iter()
        .filter(|r| r.outcome == Outcome::Block)
        .collect();
    Reason {
        version: Some(d.version.clone()),
        channel: Some(d.channel),
        rules: blocking.iter().map(|r| r.rule.clone()).collect(),
        decision: Some(d.id.clone()),
        message: blocking
            .iter()
            .map(|r| r.reason.clone())
            .collect::<Vec<_>>()
            .join("; "),
    }
}

fn add_population(population: &mut BTreeMap<Channel, ChannelPerformance>, f: &EngagementStats) {
    for c in &f.channels {
        let p = population
            .entry(c.channel)
            .or_insert_with(|| ChannelPerformance {
                channel: c.channel.into(),
                sends: 0,
                opens: 0,
                clicks: 0,
                progressions: 0,
            });
        p.sends += u64::from(c.sends);
        p.opens += u64::from(c.opens);
        p.clicks += u64::from(c.clicks);
    }
}

/// The status shown after each page. Counting every member is a scan of
/// the campaign (a large fraction of a second for a million members), so
/// it is read again only when that costs at most a tenth of the time since
/// the last reading (and at least a second has passed); in between, the
/// pages' outcomes are added to the last reading.
struct Shown {
    status: Status,
    read_at: std::time::Instant,
    took: Duration,
}

impl Shown {
    fn read(campaigns: &Campaigns, id: &CampaignId) -> Result<Shown, CampaignError> {
        let start = std::time::Instant::now();
        let status = campaigns.status(id)?;
        Ok(Shown {
            status,
            read_at: std::time::Instant::now(),
            took: start.elapsed(),
        })
    }

    fn after_page(
        &mut self,
        campaigns: &Campaigns,
        id: &CampaignId,
        outcomes: &[MemberOutcome],
    ) -> Result<&Status, CampaignError> {
        // The counts are kept up to date from each page's outcomes; reading
        // them again (a count over every member) only catches what other
        // writers changed, so it takes at most 2% of the run.
        if self.read_at.elapsed() >= (self.took * 50).max(Duration::from_secs(1)) {
            *self = Shown::read(campaigns, id)?;
            return Ok(&self.status);
        }
        let s = &mut self.status;
        for o in outcomes.iter().filter(|o| **o != MemberOutcome::Pending) {
            s.pending = s.pending.saturating_sub(1);
            if let Some(p) = s.outcomes.get_mut(&MemberOutcome::Pending) {
                *p = p.saturating_sub(1);
            }
            *s.outcomes.entry(*o).or_default() += 1;
        }
        s.eta_seconds = (s.rate_per_minute > 0).then(|| s.pending * 60 / s.rate_per_minute);
        Ok(&self.status)
    }
}

/// A decision with its canonical JSON, for the ledger.
fn seal(record: DecisionRecord) -> Result<SealedDecision, CampaignError> {
    SealedDecision::new(record).map_err(|e| {
        CampaignError::Store(StoreError::Backend {
            op: "serialize a gate decision",
            message: e.to_string(),
        })
    })
}
