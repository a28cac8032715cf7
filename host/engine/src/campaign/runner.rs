//! The background campaign runner of `omnigate serve`: runs the campaigns
//! started through the API (or with `campaign start --no-run`), and resumes
//! a run whose process died once its lease has lapsed.
//!
//! Every `poll` (a second in `serve`), and at once when woken through its
//! [`Waker`] (the API wakes it after a start), the runner looks for due
//! campaigns ([`Campaigns::due`]: running, or scheduled with the window
//! open, and not held by another live run) and runs them to their end with
//! [`Campaigns::run`], one after another. A pause or cancel stops a run
//! before its next page: the run itself checks the state every page.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use omnigate_core::campaign::{CampaignId, MemberOutcome};
use omnigate_runtime::Plugin;

use super::{CampaignError, Campaigns, RunEnd};

/// Wakes a [`Runner`] before its next poll. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Waker(Arc<(Mutex<bool>, Condvar)>);

impl Waker {
    fn flag(&self) -> MutexGuard<'_, bool> {
        match self.0.0.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Asks the runner to look for due campaigns now.
    pub fn wake(&self) {
        *self.flag() = true;
        self.0.1.notify_all();
    }

    /// Waits until woken or until `timeout` has passed; clears the wake-up.
    fn wait(&self, timeout: Duration) {
        let guard = self.flag();
        let mut guard = match self.0.1.wait_timeout_while(guard, timeout, |woken| !*woken) {
            Ok((g, _)) => g,
            Err(poisoned) => poisoned.into_inner().0,
        };
        *guard = false;
    }
}

/// How one campaign of a pass ended.
pub type RunResult = (CampaignId, Result<RunEnd, CampaignError>);

/// Runs due campaigns in the background.
#[derive(Debug)]
pub struct Runner {
    campaigns: Campaigns,
    waker: Waker,
    /// The last error per failing campaign: logged once, not every pass.
    failing: Mutex<BTreeMap<CampaignId, String>>,
}

impl Runner {
    /// A runner over `campaigns`, which must have a sender
    /// ([`Campaigns::with_sender`]).
    pub fn new(campaigns: Campaigns) -> Runner {
        Runner {
            campaigns,
            waker: Waker::default(),
            failing: Mutex::new(BTreeMap::new()),
        }
    }

    /// Its waker: [`Waker::wake`] makes it look for due campaigns at once.
    pub fn waker(&self) -> Waker {
        self.waker.clone()
    }

    /// The campaign operations it runs with.
    pub fn campaigns(&self) -> &Campaigns {
        &self.campaigns
    }

    /// One pass: runs each due campaign ([`Campaigns::due`]) to its end
    /// (completed, paused or cancelled), one after another, and logs the
    /// start and the end of each run (ids and counts only: no HCP data).
    ///
    /// # Errors
    ///
    /// A store failure listing the campaigns; each run's own outcome is in
    /// the list.
    pub fn run_due(&self, plugins: &[Arc<Plugin>]) -> Result<Vec<RunResult>, CampaignError> {
        let mut out = Vec::new();
        for id in self.campaigns.due()? {
            let result = self.run_one(&id, plugins);
            out.push((id, result));
        }
        Ok(out)
    }

    fn run_one(&self, id: &CampaignId, plugins: &[Arc<Plugin>]) -> Result<RunEnd, CampaignError> {
        let started = Instant::now();
        tracing::info!(campaign = %id, "campaign run starts");
        let result = self.campaigns.run(id, plugins, &mut |_| {});
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let mut failing = match self.failing.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        match &result {
            Ok(end) => {
                failing.remove(id);
                let count =
                    |s: &super::Status, o: MemberOutcome| s.outcomes.get(&o).copied().unwrap_or(0);
                match self.campaigns.status(id) {
                    Ok(s) => tracing::info!(
                        campaign = %id,
                        end = ?end,
                        elapsed_ms,
                        state = %s.state,
                        dispatched = count(&s, MemberOutcome::Dispatched),
                        suppressed = count(&s, MemberOutcome::Suppressed),
                        failed = count(&s, MemberOutcome::Failed),
                        unreached = count(&s, MemberOutcome::Unreached),
                        pending = s.pending,
                        "campaign run ended"
                    ),
                    Err(_) => {
                        tracing::info!(campaign = %id, end = ?end, elapsed_ms, "campaign run ended");
                    }
                }
            }
            // Another process took it between the listing and the claim:
            // it is alive and runs it; nothing to report.
            Err(CampaignError::Busy { lease, .. }) => {
                tracing::debug!(campaign = %id, owner = %lease.owner, "campaign run given way: another runner holds it");
            }
            Err(e) => {
                let text = e.to_string();
                if failing.get(id) != Some(&text) {
                    tracing::warn!(campaign = %id, elapsed_ms, error = %text, "campaign run failed; retried every pass");
                    failing.insert(id.clone(), text);
                }
            }
        }
        result
    }

    /// Passes of [`Runner::run_due`] until `stop` is set: the next pass
    /// follows at once when a run ended, else after `poll` or a wake-up.
    /// `plugins` gives the plugins loaded now (a SIGHUP may reload them).
    /// Set `stop`, then [`Waker::wake`], to end it.
    pub fn run(&self, plugins: &dyn Fn() -> Vec<Arc<Plugin>>, stop: &AtomicBool, poll: Duration) {
        while !stop.load(Ordering::Relaxed) {
            let ran = match self.run_due(&plugins()) {
                Ok(list) => list.iter().any(|(_, r)| r.is_ok()),
                Err(e) => {
                    tracing::error!(error = %e, "cannot list the campaigns to run");
                    false
                }
            };
            if !ran && !stop.load(Ordering::Relaxed) {
                self.waker.wait(poll);
            }
        }
    }
}
