//! Event-triggered journeys: events in, journey actions out, through the
//! same path as every dispatch (gate -> ledger -> adapter, or the rep's
//! queue).
//!
//! A worker ([`Journeys::run`], in `omnigate serve`) does two things, on
//! two threads (one pass of both: [`Journeys::tick`]):
//!
//! 1. **fire**: reads the events stored since its cursor, matches them
//!    against the active journeys (type, attributes, count over a period,
//!    the HCP's audience conditions, once per HCP or a refire interval),
//!    and stores the actions they schedule *together with the new cursor*
//!    in one transaction, so an event fires a journey exactly once, and a
//!    delayed action survives any restart;
//! 2. **act**: takes the actions that are due. `unless` is checked first
//!    (cancelled if it holds); a send walks its options in order through
//!    the gate and the first allowed goes out under the idempotency key
//!    `journey/<journey>/<action>`, so a crash never sends it twice; a
//!    cancel cancels the HCP's pending actions (and open rep suggestions)
//!    on its channels.
//!
//! The worker polls every 100 ms by default: an event reaches journeys
//! well within a second of being stored, whichever process stored it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use omnigate_core::campaign::Reason;
use omnigate_core::event::{Event, UnixMillis, now_millis};
use omnigate_core::journeys::{
    ActionState, ActionUpdate, JourneyAction, JourneyActionRecord, JourneyCounts,
    JourneyDefinition, JourneyId, JourneyRecord, JourneyState, NewJourneyAction,
};
use omnigate_core::ledger::{DispatchRecord, DispatchState};
use omnigate_core::store::StoreError;
use omnigate_core::suggestion::{Suggestion, SuggestionFilter, SuggestionState};
use omnigate_core::{Channel, HcpProfile, Store, VersionHash};
use omnigate_gate::DispatchRequest;
use omnigate_runtime::{Plugin, PluginKind};
use serde::Serialize;

use crate::audience::Subject;
use crate::campaign::{FIELD_CHANNELS, blocked_reason, engine_reason};
use crate::send::{Item, Ready, Sender, Sent};

/// What can stop a journey operation.
#[derive(Debug, thiserror::Error)]
pub enum JourneyError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No journey with this id.
    #[error("unknown journey `{0}`")]
    Unknown(String),
    /// The definition does not hold together.
    #[error("journey definition is invalid: {}", .0.iter().map(|p| format!("{}: {}", p.path, p.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<omnigate_core::campaign::Problem>),
    /// Built without a sender ([`Journeys::with_sender`]): cannot act.
    #[error("this host was not set up to run journeys (no gate and adapters)")]
    NoSender,
}

/// How the worker behaves.
#[derive(Debug, Clone)]
pub struct JourneyOptions {
    /// Who is recorded as the actor.
    pub actor: String,
    /// Events read per pass.
    pub events_per_pass: usize,
    /// Due actions taken per pass.
    pub actions_per_pass: usize,
    /// Delivery attempts per action before it fails for good.
    pub max_attempts: u32,
    /// First retry delay; doubled each attempt.
    pub backoff: Duration,
    /// How long the worker sleeps when there is nothing to do.
    pub poll: Duration,
}

impl Default for JourneyOptions {
    fn default() -> Self {
        JourneyOptions {
            actor: "journeys".into(),
            events_per_pass: 1000,
            actions_per_pass: 200,
            max_attempts: 4,
            backoff: Duration::from_secs(2),
            poll: Duration::from_millis(100),
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tick {
    /// Events read.
    pub events: usize,
    /// Actions scheduled.
    pub scheduled: usize,
    /// Due actions taken.
    pub acted: usize,
    /// Of which went out.
    pub dispatched: usize,
}

impl Tick {
    /// Whether it found nothing to do.
    pub fn idle(&self) -> bool {
        self.events == 0 && self.acted == 0
    }
}

/// A journey with its counts, for a marketer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JourneyStatus {
    /// The journey.
    #[serde(flatten)]
    pub record: JourneyRecord,
    /// Its actions.
    pub counts: JourneyCounts,
}

/// Journeys over a store; with a sender, the worker that fires and acts.
#[derive(Clone)]
pub struct Journeys {
    store: Arc<dyn Store>,
    sender: Option<Sender>,
    options: JourneyOptions,
}

impl std::fmt::Debug for Journeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journeys")
            .field("sender", &self.sender)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The idempotency key of an action's dispatch.
pub fn action_key(journey: &JourneyId, num: i64) -> String {
    format!("journey/{journey}/{num}")
}

impl Journeys {
    /// Journeys over `store` (create, pause, status; no worker).
    pub fn new(store: Arc<dyn Store>, options: JourneyOptions) -> Journeys {
        Journeys {
            store,
            sender: None,
            options,
        }
    }

    /// With the sender the worker dispatches through.
    pub fn with_sender(mut self, sender: Sender) -> Journeys {
        self.sender = Some(sender);
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Stores a new journey, active at once; only events stored from now on
    /// fire it. The same definition again is a no-op (`false`).
    ///
    /// # Errors
    ///
    /// Every problem with the definition, with its path; a content version
    /// the registry does not know; the id taken by another definition.
    pub fn create(
        &self,
        actor: &str,
        definition: &JourneyDefinition,
    ) -> Result<(JourneyRecord, bool), JourneyError> {
        let mut problems = definition.problems();
        if let JourneyAction::Send { options, .. } = &definition.action {
            for (i, o) in options.iter().enumerate() {
                if self.store.version(&o.version)?.is_none() {
                    problems.push(omnigate_core::campaign::Problem {
                        path: format!("do.send.options[{i}].version"),
                        message: format!("unknown content version `{}`", o.version),
                    });
                }
            }
        }
        if !problems.is_empty() {
            return Err(JourneyError::Invalid(problems));
        }
        Ok(self.store.create_journey(actor, definition, now_millis())?)
    }

    /// Moves a journey: `active` <-> `paused`, or `retired` (cancels what it
    /// has pending).
    ///
    /// # Errors
    ///
    /// An unknown journey or a move the lifecycle does not allow.
    pub fn set_state(
        &self,
        actor: &str,
        id: &JourneyId,
        to: JourneyState,
        reason: &str,
    ) -> Result<JourneyRecord, JourneyError> {
        match self
            .store
            .set_journey_state(actor, id, to, reason, now_millis())
        {
            Err(StoreError::UnknownJourney(id)) => Err(JourneyError::Unknown(id)),
            other => Ok(other?),
        }
    }

    /// A journey and its counts.
    ///
    /// # Errors
    ///
    /// An unknown journey, a store failure.
    pub fn status(&self, id: &JourneyId) -> Result<JourneyStatus, JourneyError> {
        let record = self
            .store
            .journey(id)?
            .ok_or_else(|| JourneyError::Unknown(id.to_string()))?;
        let counts = self.store.journey_counts(id, now_millis())?;
        Ok(JourneyStatus { record, counts })
    }

    /// Every journey with its counts.
    ///
    /// # Errors
    ///
    /// A store failure.
    pub fn list(&self) -> Result<Vec<JourneyStatus>, JourneyError> {
        let mut out = Vec::new();
        for record in self.store.journeys()? {
            let counts = self
                .store
                .journey_counts(&record.definition.id, now_millis())?;
            out.push(JourneyStatus { record, counts });
        }
        Ok(out)
    }

    /// A journey's actions, newest first.
    ///
    /// # Errors
    ///
    /// An unknown journey, a store failure.
    pub fn actions(
        &self,
        id: &JourneyId,
        state: Option<ActionState>,
        limit: usize,
    ) -> Result<Vec<JourneyActionRecord>, JourneyError> {
        match self.store.journey_actions(id, state, limit) {
            Err(StoreError::UnknownJourney(id)) => Err(JourneyError::Unknown(id)),
            other => Ok(other?),
        }
    }

    fn sender(&self) -> Result<&Sender, JourneyError> {
        self.sender.as_ref().ok_or(JourneyError::NoSender)
    }

    /// Runs the worker until `stop` is set: one thread fires journeys on new
    /// events, this one acts on due actions, so that a slow provider never
    /// delays the firing. Each sleeps [`JourneyOptions::poll`] when it found
    /// nothing to do. A failed pass is logged and tried again after a pause
    /// (a store that is briefly busy does not stop the worker).
    pub fn run(&self, plugins: &(dyn Fn() -> Vec<Arc<Plugin>> + Sync), stop: &AtomicBool) {
        std::thread::scope(|scope| {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let mut tick = Tick::default();
                    match self.fire(&mut tick) {
                        Ok(()) if tick.events == 0 => std::thread::sleep(self.options.poll),
                        Ok(()) => tracing::debug!(
                            events = tick.events,
                            scheduled = tick.scheduled,
                            "journeys fired"
                        ),
                        Err(e) => {
                            tracing::error!(error = %e, "firing journeys failed; trying again in a second");
                            std::thread::sleep(Duration::from_secs(1));
                        }
                    }
                }
            });
            while !stop.load(Ordering::Relaxed) {
                let mut tick = Tick::default();
                match self.act(&plugins(), &mut tick) {
                    Ok(()) if tick.acted == 0 => std::thread::sleep(self.options.poll),
                    Ok(()) => tracing::debug!(
                        acted = tick.acted,
                        dispatched = tick.dispatched,
                        "journey actions"
                    ),
                    Err(e) => {
                        tracing::error!(error = %e, "journey actions failed; trying again in a second");
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
            }
        });
    }

    /// One pass: fire on new events, then act on what is due.
    ///
    /// # Errors
    ///
    /// A store failure; what was stored before it stays stored.
    pub fn tick(&self, plugins: &[Arc<Plugin>]) -> Result<Tick, JourneyError> {
        let mut tick = Tick::default();
        self.fire(&mut tick)?;
        self.act(plugins, &mut tick)?;
        Ok(tick)
    }

    /// Reads new events and schedules the actions they fire.
    fn fire(&self, tick: &mut Tick) -> Result<(), JourneyError> {
        let cursor = self.store.journey_cursor()?;
        let events = self
            .store
            .events_after(cursor, self.options.events_per_pass)?;
        let Some(&(last, _)) = events.last() else {
            return Ok(());
        };
        tick.events = events.len();
        let journeys: Vec<JourneyRecord> = self
            .store
            .journeys()?
            .into_iter()
            .filter(|j| j.state == JourneyState::Active)
            .collect();
        let now = now_millis();
        let mut scheduled: Vec<NewJourneyAction> = Vec::new();
        for (seq, event) in &events {
            for j in &journeys {
                if *seq <= j.from_seq || !j.definition.when.matches(&event.event) {
                    continue;
                }
                if let Some(a) = self.fires(j, *seq, event, now, &scheduled)? {
                    scheduled.push(a);
                }
            }
        }
        tick.scheduled = self
            .store
            .schedule_actions(&self.options.actor, last, &scheduled)?;
        Ok(())
    }

    /// Whether `event` (already of the trigger's kind) fires journey `j`.
    fn fires(
        &self,
        j: &JourneyRecord,
        seq: i64,
        event: &Event,
        now: UnixMillis,
        batch: &[NewJourneyAction],
    ) -> Result<Option<NewJourneyAction>, JourneyError> {
        let def = &j.definition;
        let hcp = self.store.survivor_of(&event.event.hcp)?;
        let Some(profile) = self.store.profile(&hcp)? else {
            return Ok(None);
        };
        if profile.market != def.market {
            return Ok(None);
        }
        // Once per HCP, or not again within the refire interval.
        let last = batch
            .iter()
            .filter(|a| a.journey == def.id && a.hcp == hcp)
            .map(|a| a.fired_at)
            .max()
            .or(self.store.last_fired(&def.id, &hcp)?);
        if let Some(last) = last {
            match def.refire_after {
                None => return Ok(None),
                Some(every) if now - last < every.millis => return Ok(None),
                Some(_) => {}
            }
        }
        let trigger = &def.when;
        if trigger.count > 1 {
            let at = event.event.occurred_at;
            let since = at - trigger.within.map_or(0, |w| w.millis);
            let n = self
                .store
                .events_of(&hcp)?
                .iter()
                .filter(|e| {
                    trigger.matches(&e.event)
                        && e.event.occurred_at >= since
                        && e.event.occurred_at <= at
                })
                .count();
            if n < trigger.count as usize {
                return Ok(None);
            }
        }
        if let Some(filter) = &trigger.audience {
            let features = self.store.features(&hcp, now)?;
            let mut subject = Subject::new(&profile, &features, &def.product, now, &*self.store);
            if !subject.matches(filter)? {
                return Ok(None);
            }
        }
        Ok(Some(NewJourneyAction {
            journey: def.id.clone(),
            hcp,
            event: event.event.id.clone(),
            event_seq: seq,
            event_received_at: event.received_at,
            fired_at: now,
            due_at: event.event.occurred_at + def.after.map_or(0, |a| a.millis),
            channels: def.action.channels(),
        }))
    }

    /// Takes the due actions.
    fn act(&self, plugins: &[Arc<Plugin>], tick: &mut Tick) -> Result<(), JourneyError> {
        let due = self
            .store
            .due_actions(now_millis(), self.options.actions_per_pass)?;
        if due.is_empty() {
            return Ok(());
        }
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
        let mut definitions: BTreeMap<JourneyId, Arc<JourneyDefinition>> = BTreeMap::new();
        let mut updates = Vec::new();
        let mut walks = Vec::new();
        for a in due {
            let def = match definitions.get(&a.action.journey) {
                Some(d) => d.clone(),
                None => {
                    let Some(j) = self.store.journey(&a.action.journey)? else {
                        continue;
                    };
                    let d = Arc::new(j.definition);
                    definitions.insert(a.action.journey.clone(), d.clone());
                    d
                }
            };
            tick.acted += 1;
            match self.prepare(def, a, &adapters)? {
                Step::Settled(u) => updates.push(u),
                Step::Walk(w) => walks.push(*w),
            }
        }
        self.walk(&mut walks, &adapters)?;
        updates.extend(walks.into_iter().map(|w| w.update));
        tick.dispatched += updates
            .iter()
            .filter(|u| u.state == ActionState::Dispatched)
            .count();
        self.store
            .settle_actions(&self.options.actor, &updates, now_millis())?;
        Ok(())
    }

    /// What can be settled without the gate (a cancel, a resumed dispatch,
    /// `unless`), or the walk through the action's options.
    fn prepare(
        &self,
        def: Arc<JourneyDefinition>,
        a: JourneyActionRecord,
        adapters: &BTreeMap<Channel, Arc<Plugin>>,
    ) -> Result<Step, JourneyError> {
        let mut update = ActionUpdate {
            num: a.num,
            state: ActionState::Pending,
            due_at: None,
            attempts: a.attempts,
            dispatch: None,
            channel: None,
            reasons: Vec::new(),
        };
        let now = now_millis();
        match &def.action {
            JourneyAction::CancelPending { channels } => {
                let reason = engine_reason(
                    "journey-cancel",
                    &format!(
                        "journey `{}` cancelled it: event `{}`",
                        def.id, a.action.event
                    ),
                );
                let cancelled = self.store.cancel_pending_actions(
                    &self.options.actor,
                    &a.action.hcp,
                    channels,
                    &reason,
                    now,
                )?;
                let closed = self.close_suggestions(&def, &a, channels, now)?;
                update.state = ActionState::Done;
                update.reasons.push(engine_reason(
                    "journey-cancel",
                    &format!(
                        "cancelled {} pending action(s) and closed {closed} open rep suggestion(s)",
                        cancelled.len()
                    ),
                ));
                Ok(Step::Settled(update))
            }
            JourneyAction::Send {
                options, values, ..
            } => {
                let key = action_key(&def.id, a.num);
                if let Some(d) = self.store.dispatch_by_key(&key)? {
                    return Ok(Step::Settled(
                        self.resume(&def, &a, d, values, adapters, update)?,
                    ));
                }
                let Some(profile) = self.store.profile(&a.action.hcp)? else {
                    update.state = ActionState::Suppressed;
                    update
                        .reasons
                        .push(engine_reason("hcp-unknown", "the HCP's profile is gone"));
                    return Ok(Step::Settled(update));
                };
                if let Some(unless) = &def.unless {
                    let features = self.store.features(&profile.id, now)?;
                    let mut subject =
                        Subject::new(&profile, &features, &def.product, now, &*self.store);
                    if subject.matches(unless)? {
                        update.state = ActionState::Cancelled;
                        update.reasons.push(engine_reason(
                            "unless",
                            "the journey's `unless` condition held when the action was due",
                        ));
                        return Ok(Step::Settled(update));
                    }
                }
                let candidates: Vec<(VersionHash, Channel)> = options
                    .iter()
                    .flat_map(|o| o.channels.iter().map(|c| (o.version.clone(), *c)))
                    .collect();
                Ok(Step::Walk(Box::new(Walk {
                    def: def.clone(),
                    action: a,
                    profile,
                    key,
                    candidates: candidates.into_iter(),
                    update,
                    done: false,
                    defer_to: None,
                })))
            }
        }
    }

    /// Walks the actions' options in rounds: each round puts every
    /// unsettled action's next option to the gate, digital ones in one batch
    /// per adapter (one ledger transaction, one adapter call), field ones to
    /// the rep's queue; an action whose option was blocked tries its next
    /// one in the next round.
    fn walk(
        &self,
        walks: &mut [Walk],
        adapters: &BTreeMap<Channel, Arc<Plugin>>,
    ) -> Result<(), JourneyError> {
        let now = now_millis();
        loop {
            // adapter name -> (adapter, [(walk, item)])
            let mut groups: Batches = BTreeMap::new();
            let mut tried = false;
            // One dispatch per HCP per round: the gate counts the ledger, so
            // a second one for the same HCP waits for the first to be in
            // it (contact caps hold within a batch too).
            let mut hcps: std::collections::HashSet<omnigate_core::HcpId> = Default::default();
            for (i, w) in walks.iter_mut().enumerate() {
                if w.done {
                    continue;
                }
                if hcps.contains(&w.profile.id) {
                    tried = true;
                    continue;
                }
                let Some((version, channel)) = w.next_candidate(adapters) else {
                    w.done = true;
                    if let Some(at) = w.defer_to {
                        // Nothing can go now, but an option blocked only by
                        // quiet hours can when they end: wait for that.
                        w.update.state = ActionState::Pending;
                        w.update.due_at = Some(at);
                        w.update.reasons.push(engine_reason(
                            "deferred-quiet-hours",
                            &format!(
                                "deferred to the end of the HCP's quiet hours ({})",
                                jiff::Timestamp::from_millisecond(at).map_or_else(
                                    |_| at.to_string(),
                                    |t| t.strftime("%Y-%m-%d %H:%M UTC").to_string()
                                )
                            ),
                        ));
                        continue;
                    }
                    w.update.state = ActionState::Suppressed;
                    if w.update.reasons.is_empty() {
                        w.update
                            .reasons
                            .push(engine_reason("no-action", "no option could be tried"));
                    }
                    continue;
                };
                tried = true;
                hcps.insert(w.profile.id.clone());
                let JourneyAction::Send {
                    rationale,
                    values,
                    expires,
                    ..
                } = &w.def.action
                else {
                    w.done = true;
                    continue;
                };
                let request = DispatchRequest {
                    dispatch_id: uuid::Uuid::now_v7().to_string(),
                    campaign: Some(w.def.id.sender()),
                    hcp: w.profile.id.clone(),
                    version,
                    channel,
                    purpose: w.def.purpose,
                    market: Some(w.def.market.clone()),
                    values: values.clone(),
                    proposed: None,
                    at: now,
                };
                if FIELD_CHANNELS.contains(&channel) {
                    let dispatch_id = request.dispatch_id.clone();
                    let sent = self.suggest(
                        &w.def,
                        &w.action,
                        &w.key,
                        request,
                        &w.profile,
                        rationale,
                        expires,
                        &w.update.reasons,
                    )?;
                    self.apply(w, sent, dispatch_id, channel, now)?;
                } else if let Some(adapter) = adapters.get(&channel) {
                    groups
                        .entry(adapter.manifest().name.clone())
                        .or_insert_with(|| (adapter.clone(), Vec::new()))
                        .1
                        .push((
                            i,
                            Item {
                                request,
                                idempotency_key: w.key.clone(),
                            },
                        ));
                }
            }
            for (_, (adapter, batch)) in groups {
                let (index, items): (Vec<usize>, Vec<Item>) = batch.into_iter().unzip();
                let sent = self.sender()?.send(&adapter, &items).map_err(|e| match e {
                    crate::send::SendError::Store(s) => JourneyError::Store(s),
                })?;
                for ((i, item), s) in index.into_iter().zip(items).zip(sent) {
                    let channel = item.request.channel;
                    self.apply(
                        &mut walks[i],
                        Some(s),
                        item.request.dispatch_id,
                        channel,
                        now,
                    )?;
                }
            }
            if !tried {
                return Ok(());
            }
        }
    }

    /// What one option's outcome makes of its walk.
    fn apply(
        &self,
        w: &mut Walk,
        sent: Option<Sent>,
        dispatch_id: String,
        channel: Channel,
        now: UnixMillis,
    ) -> Result<(), JourneyError> {
        match sent {
            Some(Sent::Blocked { decision }) => {
                if let Some(at) = decision.deferrable_until() {
                    w.defer_to = Some(w.defer_to.map_or(at, |d| d.min(at)));
                }
                w.update.reasons.push(blocked_reason(&decision));
            }
            Some(s) => {
                w.update.dispatch = Some(dispatch_id);
                w.update.channel = Some(channel);
                let key = w.key.clone();
                self.settle(&mut w.update, s, &key, now)?;
                w.done = true;
            }
            // Entered by another worker meanwhile: the next pass resumes it.
            None => w.done = true,
        }
        Ok(())
    }

    /// A field channel: the gate, then the ledger, then the rep's queue.
    #[allow(clippy::too_many_arguments, reason = "one action's state")]
    fn suggest(
        &self,
        def: &JourneyDefinition,
        a: &JourneyActionRecord,
        key: &str,
        request: DispatchRequest,
        profile: &HcpProfile,
        rationale: &str,
        expires: &Option<omnigate_core::campaign::Span>,
        reasons: &[Reason],
    ) -> Result<Option<Sent>, JourneyError> {
        let sender = self.sender()?;
        let decided = sender.gate().decide(&request);
        let Some(entry) = decided.dispatch(key) else {
            self.store.record_decisions(
                &self.options.actor,
                std::slice::from_ref(&decided.record),
                &[],
            )?;
            return Ok(Some(Sent::Blocked {
                decision: Box::new(decided.record),
            }));
        };
        let report = self.store.record_decisions(
            &self.options.actor,
            std::slice::from_ref(&decided.record),
            &[entry],
        )?;
        if report.existing_keys.iter().any(|k| k == key) {
            // Another worker entered it meanwhile: the next pass resumes it.
            return Ok(None);
        }
        self.queue_suggestion(def, a, &request, profile, rationale, expires, reasons)?;
        Ok(Some(Sent::Delivered {
            decision_id: decided.record.id,
            provider_id: request.dispatch_id,
        }))
    }

    #[allow(clippy::too_many_arguments, reason = "one action's state")]
    fn queue_suggestion(
        &self,
        def: &JourneyDefinition,
        a: &JourneyActionRecord,
        request: &DispatchRequest,
        profile: &HcpProfile,
        rationale: &str,
        expires: &Option<omnigate_core::campaign::Span>,
        reasons: &[Reason],
    ) -> Result<(), JourneyError> {
        let now = now_millis();
        let moved = self.store.set_dispatch_state(
            &self.options.actor,
            &request.dispatch_id,
            &[DispatchState::Queued, DispatchState::Sending],
            DispatchState::Sending,
            None,
        )?;
        if !moved || self.store.suggestion(&request.dispatch_id, now)?.is_some() {
            return Ok(());
        }
        let expires = expires.map_or(14 * 86_400_000, |s| s.millis);
        self.store.deliver_suggestions(
            &self.options.actor,
            &[Suggestion {
                id: request.dispatch_id.clone(),
                hcp: request.hcp.clone(),
                rep: profile.assigned_reps.first().cloned(),
                campaign: Some(def.id.sender()),
                version: request.version.clone(),
                channel: request.channel,
                rationale: format!(
                    "{rationale} (journey `{}`, after event `{}`)",
                    def.id, a.action.event
                ),
                notes: reasons.iter().map(Reason::note).collect(),
                created_at: now,
                due_at: now + expires.min(86_400_000),
                expires_at: now + expires,
                state: SuggestionState::Open,
                closed: None,
            }],
        )?;
        Ok(())
    }

    /// An action whose dispatch is already in the ledger (a retry, or a
    /// crash after it was entered).
    fn resume(
        &self,
        def: &JourneyDefinition,
        a: &JourneyActionRecord,
        d: DispatchRecord,
        values: &omnigate_core::template::Values,
        adapters: &BTreeMap<Channel, Arc<Plugin>>,
        mut update: ActionUpdate,
    ) -> Result<ActionUpdate, JourneyError> {
        let key = d.dispatch.idempotency_key.clone();
        update.dispatch = Some(d.dispatch.id.clone());
        update.channel = Some(d.dispatch.channel);
        let now = now_millis();
        match d.state {
            DispatchState::Sent => update.state = ActionState::Dispatched,
            DispatchState::Failed => {
                update.state = ActionState::Failed;
                update.reasons.push(engine_reason(
                    "delivery-failed",
                    d.detail.as_deref().unwrap_or("the delivery failed"),
                ));
            }
            DispatchState::Cancelled => {
                update.state = ActionState::Cancelled;
                update.reasons.push(engine_reason(
                    "dispatch-cancelled",
                    d.detail
                        .as_deref()
                        .unwrap_or("the dispatch was cancelled before it went out"),
                ));
            }
            DispatchState::Queued | DispatchState::Sending => {
                // Ask the gate again: consent, caps or approval may have
                // changed since the dispatch was entered.
                let request = DispatchRequest {
                    dispatch_id: d.dispatch.id.clone(),
                    campaign: Some(def.id.sender()),
                    hcp: d.dispatch.hcp.clone(),
                    version: d.dispatch.version.clone(),
                    channel: d.dispatch.channel,
                    purpose: d.dispatch.purpose,
                    market: Some(d.dispatch.market.clone()),
                    values: values.clone(),
                    proposed: None,
                    at: now,
                };
                let sender = self.sender()?;
                let decided = sender.gate().decide(&request);
                self.store.record_decisions(
                    &self.options.actor,
                    std::slice::from_ref(&decided.record),
                    &[],
                )?;
                let profile = self.store.profile(&request.hcp)?;
                match (decided.rendered.clone(), profile, decided.allowed()) {
                    (Some(rendered), Some(profile), true) => {
                        if FIELD_CHANNELS.contains(&request.channel) {
                            let JourneyAction::Send {
                                rationale, expires, ..
                            } = &def.action
                            else {
                                return Ok(update);
                            };
                            self.queue_suggestion(
                                def,
                                a,
                                &request,
                                &profile,
                                rationale,
                                expires,
                                &[],
                            )?;
                            update.state = ActionState::Dispatched;
                        } else if let Some(adapter) = adapters.get(&request.channel) {
                            let ready = Ready {
                                request,
                                idempotency_key: key.clone(),
                                rendered,
                                profile,
                                decision_id: decided.record.id.clone(),
                            };
                            let sent = sender.deliver(adapter, &[ready])?;
                            if let Some(s) = sent.into_iter().next() {
                                self.settle(&mut update, s, &key, now)?;
                            }
                        } else {
                            // No adapter now: wait for one.
                            update.due_at = Some(now + self.options.backoff.as_millis() as i64);
                            update.reasons.push(engine_reason(
                                "no-adapter",
                                &format!("no channel adapter for `{}` is loaded", request.channel),
                            ));
                        }
                    }
                    _ => {
                        self.sender()?.withdraw_blocked(&d)?;
                        update.state = ActionState::Suppressed;
                        update.reasons.push(blocked_reason(&decided.record));
                    }
                }
            }
        }
        Ok(update)
    }

    /// What a delivery result makes of the action.
    fn settle(
        &self,
        update: &mut ActionUpdate,
        sent: Sent,
        key: &str,
        now: UnixMillis,
    ) -> Result<(), JourneyError> {
        match sent {
            Sent::Delivered { .. } => update.state = ActionState::Dispatched,
            Sent::Blocked { decision } => {
                update.state = ActionState::Suppressed;
                update.reasons.push(blocked_reason(&decision));
            }
            Sent::Failed {
                reason,
                retryable: false,
                ..
            } => {
                update.state = ActionState::Failed;
                update
                    .reasons
                    .push(engine_reason("delivery-failed", &reason));
            }
            Sent::Failed { reason, .. } | Sent::Unknown { reason, .. } => {
                update.attempts += 1;
                update
                    .reasons
                    .push(engine_reason("delivery-retry", &reason));
                if update.attempts >= self.options.max_attempts {
                    if let Some(d) = self.store.dispatch_by_key(key)? {
                        self.store.set_dispatch_state(
                            &self.options.actor,
                            &d.dispatch.id,
                            &[DispatchState::Queued, DispatchState::Sending],
                            DispatchState::Failed,
                            Some(&format!(
                                "gave up after {} attempts: {reason}",
                                update.attempts
                            )),
                        )?;
                    }
                    update.state = ActionState::Failed;
                } else {
                    let base = self.options.backoff.as_millis() as i64;
                    let wait = base.saturating_mul(1 << update.attempts.saturating_sub(1).min(16));
                    update.due_at = Some(now + wait);
                }
            }
            Sent::AlreadyInLedger { .. } => {
                // Entered by another worker: the next pass resumes it.
            }
        }
        Ok(())
    }

    /// Closes the HCP's open rep suggestions on `channels` (all when empty)
    /// for a cancel action; returns how many.
    fn close_suggestions(
        &self,
        def: &JourneyDefinition,
        a: &JourneyActionRecord,
        channels: &[Channel],
        now: UnixMillis,
    ) -> Result<usize, JourneyError> {
        if !channels.is_empty() && !channels.iter().any(|c| FIELD_CHANNELS.contains(c)) {
            return Ok(0);
        }
        let open = self.store.suggestions(
            &SuggestionFilter {
                hcp: Some(a.action.hcp.clone()),
                state: Some(SuggestionState::Open),
                ..SuggestionFilter::default()
            },
            now,
        )?;
        let mut closed = 0;
        for s in open {
            if channels.is_empty() || channels.contains(&s.channel) {
                self.store.close_suggestion(
                    &self.options.actor,
                    &s.id,
                    SuggestionState::Dismissed,
                    &format!(
                        "cancelled by journey `{}` after event `{}`",
                        def.id, a.action.event
                    ),
                    now,
                )?;
                closed += 1;
            }
        }
        Ok(closed)
    }
}

/// Items per adapter name: the adapter, and (walk, item) pairs.
type Batches = BTreeMap<String, (Arc<Plugin>, Vec<(usize, Item)>)>;

/// A due send action walking its options.
struct Walk {
    def: Arc<JourneyDefinition>,
    action: JourneyActionRecord,
    profile: HcpProfile,
    key: String,
    candidates: std::vec::IntoIter<(VersionHash, Channel)>,
    update: ActionUpdate,
    done: bool,
    /// The soonest an option blocked only by time (quiet hours) could go.
    defer_to: Option<UnixMillis>,
}

impl Walk {
    /// The next option something can deliver; the others are recorded.
    fn next_candidate(
        &mut self,
        adapters: &BTreeMap<Channel, Arc<Plugin>>,
    ) -> Option<(VersionHash, Channel)> {
        for (version, channel) in self.candidates.by_ref() {
            if FIELD_CHANNELS.contains(&channel) || adapters.contains_key(&channel) {
                return Some((version, channel));
            }
            self.update.reasons.push(Reason {
                version: Some(version),
                channel: Some(channel),
                rules: vec!["no-adapter".into()],
                decision: None,
                message: format!("no channel adapter for `{channel}` is loaded"),
            });
        }
        None
    }
}

/// What [`Journeys::prepare`] made of a due action.
enum Step {
    Settled(ActionUpdate),
    Walk(Box<Walk>),
}
