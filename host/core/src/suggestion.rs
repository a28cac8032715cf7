//! Rep suggestions: what the field channels (rep visit, remote call, phone
//! call, hospital meeting) get from a campaign or journey. A suggestion is a
//! dispatch like any other (gated, in the ledger); its "delivery" puts it in
//! the rep's queue, with who, what, why, by when and until when. The rep's
//! feedback (done, or dismissed with a reason) comes back as an event.

use serde::{Deserialize, Serialize};

use crate::Channel;
use crate::content::VersionHash;
use crate::event::UnixMillis;
use crate::hcp::HcpId;
use crate::store::StoreResult;

/// Where a suggestion stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SuggestionState {
    /// Waiting for the rep.
    Open,
    /// The rep acted on it.
    Done,
    /// The rep dismissed it (with a reason).
    Dismissed,
    /// Not acted on before it expired.
    Expired,
}

impl SuggestionState {
    /// The stable, kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            SuggestionState::Open => "open",
            SuggestionState::Done => "done",
            SuggestionState::Dismissed => "dismissed",
            SuggestionState::Expired => "expired",
        }
    }

    /// Whether a suggestion may be closed into `self` with `reason`: only
    /// as done, or dismissed with a reason.
    ///
    /// # Errors
    ///
    /// What is wrong, in words.
    pub fn check_close(self, reason: &str) -> Result<(), String> {
        match self {
            SuggestionState::Done => Ok(()),
            SuggestionState::Dismissed if reason.trim().is_empty() => {
                Err("dismissing a suggestion needs a reason".into())
            }
            SuggestionState::Dismissed => Ok(()),
            other => Err(format!(
                "a suggestion is closed as `done` or `dismissed`, not `{}`",
                other.as_str()
            )),
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<SuggestionState> {
        [
            SuggestionState::Open,
            SuggestionState::Done,
            SuggestionState::Dismissed,
            SuggestionState::Expired,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// A suggestion for a rep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suggestion {
    /// Its id: the id of its dispatch.
    pub id: String,
    /// The HCP to see or call.
    pub hcp: HcpId,
    /// The rep it is for (the HCP's first assigned rep), if any.
    pub rep: Option<String>,
    /// The campaign or journey it came from.
    pub campaign: Option<String>,
    /// The approved content to discuss or leave behind.
    pub version: VersionHash,
    /// The field channel.
    pub channel: Channel,
    /// Why: the scoring model's rationale.
    pub rationale: String,
    /// Compliance notes: what was suppressed on other channels, and why.
    pub notes: Vec<String>,
    /// When it was made.
    pub created_at: UnixMillis,
    /// Act by then.
    pub due_at: UnixMillis,
    /// It lapses then.
    pub expires_at: UnixMillis,
    /// Where it stands (`expired` is derived when read after `expires_at`).
    pub state: SuggestionState,
    /// Who closed it, when, and the reason given.
    pub closed: Option<(String, UnixMillis, String)>,
}

/// Which suggestions to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuggestionFilter {
    /// Only this rep's.
    pub rep: Option<String>,
    /// Only this HCP's.
    pub hcp: Option<HcpId>,
    /// Only from this campaign or journey.
    #[serde(default)]
    pub campaign: Option<String>,
    /// Only in this state.
    pub state: Option<SuggestionState>,
    /// At most this many (capped at 100,000; 0: 100).
    pub limit: usize,
}

/// Rep suggestions.
pub trait SuggestionStore {
    /// Puts suggestions in their reps' queues and marks their dispatches
    /// (which must be `sending`) `sent`, in one transaction.
    fn deliver_suggestions(&self, actor: &str, suggestions: &[Suggestion]) -> StoreResult<()>;
    /// One suggestion.
    fn suggestion(&self, id: &str, now: UnixMillis) -> StoreResult<Option<Suggestion>>;
    /// Suggestions matching `filter`, due soonest first.
    fn suggestions(
        &self,
        filter: &SuggestionFilter,
        now: UnixMillis,
    ) -> StoreResult<Vec<Suggestion>>;
    /// Closes an open suggestion as done or dismissed. Audited.
    fn close_suggestion(
        &self,
        actor: &str,
        id: &str,
        state: SuggestionState,
        reason: &str,
        at: UnixMillis,
    ) -> StoreResult<Suggestion>;
}
