//! Campaign and journey failures as [`ServiceError`]s with stable codes,
//! and the checks of their ids and filters: one mapping behind the CLI
//! (`omnigate campaign|journey|suggestions`) and the HTTP API
//! (`/v1/campaigns`, `/v1/journeys`, `/v1/suggestions`).

use omnigate_core::campaign::{CampaignId, MemberOutcome};
use omnigate_core::journeys::{ActionState, JourneyId};
use omnigate_core::suggestion::SuggestionState;
use omnigate_engine::{CampaignError, JourneyError};

use crate::error::{Location, ServiceError, ServiceResult};

/// A campaign failure, with its code: `unknown-campaign` (404),
/// `campaign-busy` and `wrong-state` (409), `invalid-input` (400).
pub fn campaign_error(e: CampaignError) -> ServiceError {
    let message = e.to_string();
    match e {
        CampaignError::Store(s) => ServiceError::from(s),
        CampaignError::Unknown(_) => ServiceError::NotFound {
            code: "unknown-campaign",
            message,
            at: None,
        },
        CampaignError::Invalid(_) => {
            ServiceError::invalid(Location::argument("definition"), message)
        }
        CampaignError::Busy { .. } => ServiceError::Refused {
            code: "campaign-busy",
            message,
        },
        CampaignError::NotRunnable { .. } => ServiceError::Refused {
            code: "wrong-state",
            message,
        },
        CampaignError::NoScorer { .. } | CampaignError::NoSender => {
            ServiceError::invalid(Location::argument("plugins"), message)
        }
    }
}

/// A journey failure, with its code: `unknown-journey` (404),
/// `wrong-state` (409), `invalid-input` (400).
pub fn journey_error(e: JourneyError) -> ServiceError {
    let message = e.to_string();
    match e {
        JourneyError::Store(s) => ServiceError::from(s),
        JourneyError::Unknown(_) => ServiceError::NotFound {
            code: "unknown-journey",
            message,
            at: None,
        },
        JourneyError::Invalid(_) => {
            ServiceError::invalid(Location::argument("definition"), message)
        }
        JourneyError::NoSender => ServiceError::invalid(Location::argument("plugins"), message),
    }
}

/// Checks a campaign id given as `at`.
///
/// # Errors
///
/// What is wrong with it.
pub fn campaign_id(id: &str, at: &Location) -> ServiceResult<CampaignId> {
    CampaignId::new(id).map_err(|m| ServiceError::invalid(at.clone(), m))
}

/// Checks a journey id given as `at`.
///
/// # Errors
///
/// What is wrong with it.
pub fn journey_id(id: &str, at: &Location) -> ServiceResult<JourneyId> {
    JourneyId::new(id).map_err(|m| ServiceError::invalid(at.clone(), m))
}

/// Reads a member outcome filter.
///
/// # Errors
///
/// An unknown outcome, with the choices.
pub fn member_outcome(s: &str, at: &Location) -> ServiceResult<MemberOutcome> {
    MemberOutcome::parse(s).ok_or_else(|| {
        ServiceError::invalid(
            at.clone(),
            format!(
                "unknown outcome `{s}` (expected one of: {})",
                MemberOutcome::ALL.map(MemberOutcome::as_str).join(", ")
            ),
        )
    })
}

/// Reads a journey action state filter.
///
/// # Errors
///
/// An unknown state, with the choices.
pub fn action_state(s: &str, at: &Location) -> ServiceResult<ActionState> {
    s.parse::<ActionState>()
        .map_err(|m| ServiceError::invalid(at.clone(), m))
}

/// Reads a suggestion state filter.
///
/// # Errors
///
/// An unknown state, with the choices.
pub fn suggestion_state(s: &str, at: &Location) -> ServiceResult<SuggestionState> {
    SuggestionState::parse(s).ok_or_else(|| {
        ServiceError::invalid(
            at.clone(),
            format!("unknown state `{s}` (expected open, done, dismissed or expired)"),
        )
    })
}
