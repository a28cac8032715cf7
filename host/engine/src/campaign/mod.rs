//! Campaign runs: resolve the audience, draw the holdout, rank actions with
//! the scoring model, walk the ranking through the gate, deliver, record.
//!
//! One implementation behind the CLI and the HTTP API: [`Campaigns`].
//!
//! A run is resumable at any point. Its progress lives in the store: the
//! members (resolved once, each with a stable holdout draw), the ledger
//! (every allowed dispatch is durable, keyed `campaign/hcp/step`, before
//! its adapter is called) and each member's outcome. After a crash the next
//! run skips settled members, finds a dispatch already in the ledger by its
//! key, asks the gate again (consent may have changed) and hands it to the
//! adapter with the same idempotency key, so the provider never delivers it
//! twice.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use omnigate_core::Channel;
use omnigate_core::Store;
use omnigate_core::campaign::{
    CampaignDefinition, CampaignId, CampaignRecord, CampaignState, Lease, MemberCounts,
    MemberOutcome,
};
use omnigate_core::event::now_millis;
use omnigate_core::store::StoreError;
use omnigate_runtime::{Plugin, PluginKind};
use serde::Serialize;

use crate::send::Sender;

mod background;
mod run;
pub mod runner;

pub(crate) use run::{blocked_reason, engine_reason};

/// The channels whose delivery is a rep suggestion, in the host.
pub const FIELD_CHANNELS: [Channel; 4] = [
    Channel::RepVisit,
    Channel::RemoteCall,
    Channel::PhoneCall,
    Channel::HospitalMeeting,
];

/// What can stop a campaign operation.
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No campaign with this id.
    #[error("unknown campaign `{0}`")]
    Unknown(String),
    /// The definition does not hold together.
    #[error("campaign definition is invalid: {}", .0.iter().map(|p| format!("{}: {}", p.path, p.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<omnigate_core::campaign::Problem>),
    /// Another process runs it.
    #[error("campaign `{id}` is being run by {} until {}; try again after that", .lease.owner, .lease.until)]
    Busy {
        /// The campaign.
        id: String,
        /// Who holds it.
        lease: Lease,
    },
    /// Its scoring model is not loaded.
    #[error("campaign `{id}` needs the scoring model `{plugin}`, which is not loaded")]
    NoScorer {
        /// The campaign.
        id: String,
        /// The plugin named.
        plugin: String,
    },
    /// Built without a sender ([`Campaigns::with_sender`]): cannot run.
    #[error("this host was not set up to run campaigns (no gate and adapters)")]
    NoSender,
    /// The run cannot start in this state.
    #[error("campaign `{id}` is {state}: {hint}")]
    NotRunnable {
        /// The campaign.
        id: String,
        /// Its state.
        state: CampaignState,
        /// What to do.
        hint: &'static str,
    },
}

/// How runs behave.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Members per page (a pause takes effect between pages). 500 by
    /// default: as fast as larger pages (100k HCPs: 20.2 s with 500, 20.7
    /// to 21.5 s with 1,000, 23.1 s with 200), at half the work in flight.
    pub page: usize,
    /// How long a run's lease lasts without renewal.
    pub lease: Duration,
    /// Delivery attempts per dispatch before it fails for good.
    pub max_attempts: u32,
    /// First retry delay; doubled each attempt, plus up to 50% jitter.
    pub backoff: Duration,
    /// Who runs (process and host), for the lease.
    pub owner: String,
    /// Who is recorded as the actor.
    pub actor: String,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            page: 500,
            lease: Duration::from_secs(15),
            max_attempts: 4,
            backoff: Duration::from_secs(2),
            owner: format!("pid {}", std::process::id()),
            actor: "engine".into(),
        }
    }
}

/// Where a campaign stands, for a marketer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    /// The campaign.
    pub id: String,
    /// Its state.
    pub state: CampaignState,
    /// Audience size (holdout included), once resolved.
    pub audience: u64,
    /// Holdout size.
    pub holdout: u64,
    /// Members by outcome.
    pub outcomes: BTreeMap<MemberOutcome, u64>,
    /// Members not settled yet.
    pub pending: u64,
    /// Members settled per minute, over the last minute.
    pub rate_per_minute: u64,
    /// Seconds to go at that rate, when it is known.
    pub eta_seconds: Option<u64>,
    /// Who runs it now, if anyone.
    pub runner: Option<Lease>,
    /// Whether the audience is resolved.
    pub resolved: bool,
}

impl Status {
    fn new(record: &CampaignRecord, counts: &MemberCounts, runner: Option<Lease>) -> Status {
        let pending = counts
            .by_outcome
            .get(&MemberOutcome::Pending)
            .copied()
            .unwrap_or(0);
        let rate = counts.settled_last_minute;
        Status {
            id: record.definition.id.to_string(),
            state: record.state,
            audience: counts.audience,
            holdout: counts.holdout,
            outcomes: MemberOutcome::ALL
                .into_iter()
                .map(|o| (o, counts.by_outcome.get(&o).copied().unwrap_or(0)))
                .collect(),
            pending,
            rate_per_minute: rate,
            eta_seconds: (rate > 0).then(|| pending * 60 / rate),
            runner,
            resolved: record.resolved_at.is_some(),
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunEnd {
    /// Every member settled.
    Completed,
    /// A user paused it.
    Paused,
    /// A user cancelled it.
    Cancelled,
}

/// Campaign operations, for the CLI and the API alike.
#[derive(Clone)]
pub struct Campaigns {
    sender: Option<Sender>,
    store: Arc<dyn Store>,
    options: RunOptions,
}

impl std::fmt::Debug for Campaigns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Campaigns")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The idempotency key of a campaign's dispatch to an HCP.
pub fn dispatch_key(campaign: &CampaignId, hcp: &str, step: u32) -> String {
    format!("campaign/{campaign}/{hcp}/{step}")
}

impl Campaigns {
    /// Campaign operations over a store; [`Campaigns::with_sender`] adds
    /// what runs need (the gate, the egress clearance).
    pub fn new(store: Arc<dyn Store>, options: RunOptions) -> Campaigns {
        Campaigns {
            store,
            sender: None,
            options,
        }
    }

    /// The same, able to run campaigns through `sender`.
    pub fn with_sender(mut self, sender: Sender) -> Campaigns {
        self.store = sender.store().clone();
        self.sender = Some(sender);
        self
    }

    fn sender(&self) -> Result<&Sender, CampaignError> {
        self.sender.as_ref().ok_or(CampaignError::NoSender)
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    fn record(&self, id: &CampaignId) -> Result<CampaignRecord, CampaignError> {
        self.store
            .campaign(id)?
            .ok_or_else(|| CampaignError::Unknown(id.to_string()))
    }

    /// Stores a definition (in `draft`). The same definition again is a
    /// no-op (`false`).
    ///
    /// # Errors
    ///
    /// Every problem of the definition, or a different definition under the
    /// same id.
    pub fn create(
        &self,
        actor: &str,
        definition: &CampaignDefinition,
    ) -> Result<(CampaignRecord, bool), CampaignError> {
        let problems = definition.problems();
        if !problems.is_empty() {
            return Err(CampaignError::Invalid(problems));
        }
        Ok(self
            .store
            .create_campaign(actor, definition, now_millis())?)
    }

    /// Draft or paused -> running (scheduled while its window has not
    /// opened), resolving the audience of a running campaign. Running
    /// already: unchanged (a crashed run is resumed by [`Campaigns::run`]).
    ///
    /// # Errors
    ///
    /// Unknown, or completed / cancelled.
    pub fn start(&self, actor: &str, id: &CampaignId) -> Result<CampaignRecord, CampaignError> {
        let record = self.record(id)?;
        let now = now_millis();
        let waiting = record
            .definition
            .window
            .and_then(|w| w.start)
            .is_some_and(|s| s > now);
        let to = if waiting {
            CampaignState::Scheduled
        } else {
            CampaignState::Running
        };
        if record.state == CampaignState::Running {
            return Ok(record);
        }
        if record.state.is_final() {
            return Err(CampaignError::NotRunnable {
                id: id.to_string(),
                state: record.state,
                hint: "a completed or cancelled campaign cannot run again; create a new one",
            });
        }
        let record = self
            .store
            .set_campaign_state(actor, id, to, "started", now)?;
        // A running campaign competes for its HCPs at once: its audience is
        // resolved now (a scheduled one's when its window opens).
        if to == CampaignState::Running && record.resolved_at.is_none() {
            self.resolve(&record.definition)?;
            return self.record(id);
        }
        Ok(record)
    }

    /// Running or scheduled -> paused: the run stops before its next page.
    ///
    /// # Errors
    ///
    /// Unknown, or not running.
    pub fn pause(&self, actor: &str, id: &CampaignId) -> Result<CampaignRecord, CampaignError> {
        Ok(self.store.set_campaign_state(
            actor,
            id,
            CampaignState::Paused,
            "paused",
            now_millis(),
        )?)
    }

    /// -> cancelled: queued dispatches are cancelled, pending members become
    /// `unreached`.
    ///
    /// # Errors
    ///
    /// Unknown, or already final.
    pub fn cancel(
        &self,
        actor: &str,
        id: &CampaignId,
        note: &str,
    ) -> Result<CampaignRecord, CampaignError> {
        Ok(self.store.set_campaign_state(
            actor,
            id,
            CampaignState::Cancelled,
            note,
            now_millis(),
        )?)
    }

    /// Counts, rate and ETA.
    ///
    /// # Errors
    ///
    /// Unknown campaign, or the store failed.
    pub fn status(&self, id: &CampaignId) -> Result<Status, CampaignError> {
        let record = self.record(id)?;
        let now = now_millis();
        let counts = self.store.member_counts(id, now)?;
        let runner = record.lease.clone().filter(|l| l.until > now);
        Ok(Status::new(&record, &counts, runner))
    }

    /// Runs a started campaign until it completes, is paused or cancelled.
    /// `plugins` are the loaded plugins (the scoring model and the channel
    /// adapters); `progress` is called after every page.
    ///
    /// # Errors
    ///
    /// Not started, run by another process, no scoring model, or a store
    /// failure (the run can be resumed).
    pub fn run(
        &self,
        id: &CampaignId,
        plugins: &[Arc<Plugin>],
        progress: &mut dyn FnMut(&Status),
    ) -> Result<RunEnd, CampaignError> {
        self.sender()?;
        let record = self.record(id)?;
        match record.state {
            CampaignState::Draft => {
                return Err(CampaignError::NotRunnable {
                    id: id.to_string(),
                    state: record.state,
                    hint: "start it first",
                });
            }
            CampaignState::Paused => return Ok(RunEnd::Paused),
            CampaignState::Cancelled => return Ok(RunEnd::Cancelled),
            CampaignState::Completed => return Ok(RunEnd::Completed),
            CampaignState::Running | CampaignState::Scheduled => {}
        }
        let def = record.definition.clone();
        let scorer = plugins
            .iter()
            .find(|p| {
                p.manifest().name == def.scoring.plugin
                    && p.manifest().kind == PluginKind::ScoringModel
            })
            .cloned()
            .ok_or_else(|| CampaignError::NoScorer {
                id: id.to_string(),
                plugin: def.scoring.plugin.clone(),
            })?;
        self.claim(id)?;
        let result = self.run_claimed(&def, &scorer, plugins, progress);
        // A failed release leaves the lease to lapse on its own.
        let _ = self.store.release_campaign(id, &self.options.owner);
        result
    }

    fn claim(&self, id: &CampaignId) -> Result<(), CampaignError> {
        let now = now_millis();
        let until = now + self.options.lease.as_millis() as i64;
        match self
            .store
            .claim_campaign(id, &self.options.owner, now, until)?
        {
            Ok(()) => Ok(()),
            Err(lease) => Err(CampaignError::Busy {
                id: id.to_string(),
                lease,
            }),
        }
    }

    /// The state now; `None` while it may go on.
    fn stop_reason(&self, id: &CampaignId) -> Result<Option<RunEnd>, CampaignError> {
        Ok(match self.record(id)?.state {
            CampaignState::Paused => Some(RunEnd::Paused),
            CampaignState::Cancelled => Some(RunEnd::Cancelled),
            CampaignState::Completed => Some(RunEnd::Completed),
            _ => None,
        })
    }
}
