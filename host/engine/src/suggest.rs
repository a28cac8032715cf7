//! Rep feedback on suggestions: closing one records an engagement event
//! (`suggestion-done` or `suggestion-dismissed`), which feeds the features
//! that scoring reads, and closes the suggestion.

use omnigate_core::Store;
use omnigate_core::event::{EventType, NewEvent, UnixMillis};
use omnigate_core::store::StoreResult;
use omnigate_core::suggestion::{Suggestion, SuggestionState};

/// Closes an open suggestion as `done` or `dismissed` (a dismissal needs a
/// reason).
///
/// The event is stored first, under an id derived from the suggestion, so
/// a close interrupted between the two steps is completed by trying again
/// (the event is not stored twice).
///
/// # Errors
///
/// Unknown or already closed suggestion, a state other than done or
/// dismissed, a dismissal without a reason, or a store failure.
pub fn close(
    store: &dyn Store,
    actor: &str,
    id: &str,
    state: SuggestionState,
    reason: &str,
    at: UnixMillis,
) -> StoreResult<Suggestion> {
    let s = store.suggestion(id, at)?.ok_or_else(|| {
        omnigate_core::StoreError::InvalidInput(format!("unknown suggestion `{id}`"))
    })?;
    state
        .check_close(reason)
        .map_err(omnigate_core::StoreError::InvalidInput)?;
    let kind = if state == SuggestionState::Done {
        EventType::SuggestionDone
    } else {
        EventType::SuggestionDismissed
    };
    if s.state != SuggestionState::Open {
        return Err(omnigate_core::StoreError::InvalidInput(format!(
            "suggestion `{id}` is {} and cannot be closed",
            s.state.as_str()
        )));
    }
    let mut attributes = serde_json::Map::new();
    attributes.insert("suggestion_id".into(), id.into());
    attributes.insert("rep_id".into(), actor.into());
    attributes.insert("dispatch_id".into(), id.into());
    attributes.insert("content_version".into(), s.version.0.clone().into());
    if !reason.is_empty() {
        attributes.insert("reason".into(), reason.into());
    }
    let event = NewEvent {
        id: format!("suggestion/{id}/{}", kind.as_str()),
        hcp: s.hcp.clone(),
        event_type: kind,
        channel: s.channel,
        occurred_at: at,
        attributes,
    };
    store.ingest(actor, &format!("suggestion/{id}"), &[event])?;
    store.close_suggestion(actor, id, state, reason, at)
}
