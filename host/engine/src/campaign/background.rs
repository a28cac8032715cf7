//! Started campaigns, run in the background: what `omnigate serve` does
//! with a campaign started through the API (or with `campaign start
//! --no-run`), and with one whose run died with its process.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use omnigate_core::campaign::{CampaignId, CampaignState};
use omnigate_core::event::now_millis;
use omnigate_runtime::Plugin;

use super::{CampaignError, Campaigns};

impl Campaigns {
    /// The campaigns a background runner should run now: running, or
    /// scheduled with their window open, and not held by another live run.
    ///
    /// # Errors
    ///
    /// A store failure.
    pub fn due(&self) -> Result<Vec<CampaignId>, CampaignError> {
        let now = now_millis();
        Ok(self
            .store
            .campaigns()?
            .into_iter()
            .filter(|r| match r.state {
                CampaignState::Running => true,
                CampaignState::Scheduled => r
                    .definition
                    .window
                    .and_then(|w| w.start)
                    .is_none_or(|s| s <= now),
                _ => false,
            })
            .filter(|r| {
                r.lease
                    .as_ref()
                    .is_none_or(|l| l.until <= now || l.owner == self.options.owner)
            })
            .map(|r| r.definition.id)
            .collect())
    }

    /// Runs each due campaign ([`Campaigns::due`]) to its end, one after
    /// another, until `stop` is set; `poll` apart when there was nothing to
    /// run. A campaign that keeps failing (its
    /// scoring model is not loaded, say) is tried every pass and logged
    /// once per distinct error.
    pub fn run_background(
        &self,
        plugins: &dyn Fn() -> Vec<Arc<Plugin>>,
        stop: &AtomicBool,
        poll: Duration,
    ) {
        let mut last_error: BTreeMap<CampaignId, String> = BTreeMap::new();
        while !stop.load(Ordering::Relaxed) {
            let ran = match self.due() {
                Ok(ids) if ids.is_empty() => false,
                Ok(ids) => {
                    let plugins = plugins();
                    let mut progressed = false;
                    for id in ids {
                        match self.run(&id, &plugins, &mut |_| {}) {
                            Ok(end) => {
                                last_error.remove(&id);
                                progressed = true;
                                tracing::info!(campaign = %id, end = ?end, "background run ended");
                            }
                            Err(e) => {
                                let text = e.to_string();
                                if last_error.get(&id) != Some(&text) {
                                    tracing::warn!(campaign = %id, error = %text, "background run failed");
                                    last_error.insert(id, text);
                                }
                            }
                        }
                    }
                    progressed
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot list the campaigns to run");
                    false
                }
            };
            if !ran {
                std::thread::sleep(poll);
            }
        }
    }
}
