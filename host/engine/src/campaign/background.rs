//! Which started campaigns a background runner ([`super::runner::Runner`],
//! in `omnigate serve`) should run now.

use omnigate_core::campaign::{CampaignId, CampaignState};
use omnigate_core::event::now_millis;

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
}
