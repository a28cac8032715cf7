//! `/v1/campaigns`, `/v1/journeys` and `/v1/suggestions`: the marketer's
//! and the rep's operations over the engine's [`Campaigns`] and
//! [`Journeys`], the same implementation the CLI uses
//! (`omnigate campaign|report|journey|suggestions`). docs/api.md lists the
//! endpoints.
//!
//! A campaign started here is run by the host's background runner
//! (`omnigate serve`, [`omnigate_engine::Runner`]), woken at once through
//! [`Orchestration::runner`]; a journey is worked by its journey worker.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use omnigate_core::event::now_millis;
use omnigate_core::journeys::JourneyState;
use omnigate_core::suggestion::{SuggestionFilter, SuggestionState};
use omnigate_engine::report::report;
use omnigate_engine::{Campaigns, Journeys, Waker};
use omnigate_service::orchestration::{
    action_state, campaign_error, campaign_id, journey_error, journey_id, member_outcome,
    suggestion_state,
};
use omnigate_service::{Location, ServiceError, ServiceResult, input};
use serde::Serialize;
use serde_json::Value;

use crate::problem::{ApiError, FieldProblem};
use crate::v1::{Actor, blocking, ok};

/// What the orchestration endpoints work on.
#[derive(Debug, Clone)]
pub struct Orchestration {
    /// Campaign operations (runs happen in the background runner).
    pub campaigns: Arc<Campaigns>,
    /// Journey operations (the worker runs beside).
    pub journeys: Arc<Journeys>,
    /// Wakes the background campaign runner after a start, if one runs in
    /// this process (without it, a started campaign waits for a runner's
    /// next poll, or for `omnigate campaign start`).
    pub runner: Option<Waker>,
}

type St = State<Arc<Orchestration>>;

/// The routes.
pub fn routes(o: Arc<Orchestration>) -> Router {
    Router::new()
        .route("/v1/campaigns", post(create_campaign).get(list_campaigns))
        .route("/v1/campaigns/{id}", get(campaign_status))
        .route("/v1/campaigns/{id}/members", get(campaign_members))
        .route("/v1/campaigns/{id}/report", get(campaign_report))
        .route("/v1/campaigns/{id}/start", post(start_campaign))
        .route("/v1/campaigns/{id}/pause", post(pause_campaign))
        .route("/v1/campaigns/{id}/cancel", post(cancel_campaign))
        .route("/v1/journeys", post(create_journey).get(list_journeys))
        .route("/v1/journeys/{id}", get(journey_status))
        .route("/v1/journeys/{id}/actions", get(journey_actions))
        .route("/v1/journeys/{id}/pause", post(pause_journey))
        .route("/v1/journeys/{id}/resume", post(resume_journey))
        .route("/v1/journeys/{id}/retire", post(retire_journey))
        .route("/v1/suggestions", get(list_suggestions))
        .route("/v1/suggestions/{id}/done", post(suggestion_done))
        .route("/v1/suggestions/{id}/dismiss", post(suggestion_dismiss))
        .with_state(o)
}

fn path_arg(name: &str) -> Location {
    Location::argument(name)
}

/// The whole body as a JSON value (a definition).
fn json_body(bytes: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::Http {
        status: StatusCode::BAD_REQUEST,
        code: "invalid-json",
        detail: format!("the request body is not valid JSON: {e}"),
        path: None,
        argument: None,
    })
}

/// A body of only string fields, each listed in `allowed`; `required` must
/// be present and not blank.
fn fields(
    bytes: &Bytes,
    allowed: &[&str],
    required: &[&str],
) -> Result<HashMap<String, String>, ApiError> {
    let value = if bytes.is_empty() {
        Value::Object(serde_json::Map::new())
    } else {
        json_body(bytes)?
    };
    let Value::Object(map) = value else {
        return Err(ApiError::bad_body("$", "expected a JSON object"));
    };
    let mut out = HashMap::new();
    for (k, v) in map {
        if !allowed.contains(&k.as_str()) {
            let shown = omnigate_core::redact::redact(&k);
            return Err(ApiError::bad_body(
                &format!("$.{shown}"),
                format!("unknown field `{shown}` (expected: {})", allowed.join(", ")),
            ));
        }
        let Value::String(s) = v else {
            return Err(ApiError::bad_body(
                &format!("$.{k}"),
                format!("`{k}` must be a string"),
            ));
        };
        out.insert(k, s);
    }
    for r in required {
        if out.get(*r).is_none_or(|s| s.trim().is_empty()) {
            return Err(ApiError::bad_body(
                &format!("$.{r}"),
                format!("missing field `{r}`: say why"),
            ));
        }
    }
    Ok(out)
}

/// Query parameters, each listed in `known`.
fn query(q: &HashMap<String, String>, known: &[&str]) -> Result<(), ApiError> {
    if let Some(k) = q.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(ApiError::Http {
            status: StatusCode::BAD_REQUEST,
            code: "invalid-input",
            detail: format!(
                "unknown query parameter `{}` (expected: {})",
                omnigate_core::redact::redact(k),
                known.join(", ")
            ),
            path: None,
            argument: Some(k.clone()),
        });
    }
    Ok(())
}

fn limit(q: &HashMap<String, String>, default: usize) -> Result<usize, ApiError> {
    q.get("limit").map_or(Ok(default), |v| {
        v.parse::<usize>()
            .map(|n| n.clamp(1, 1000))
            .map_err(|_| ApiError::Http {
                status: StatusCode::BAD_REQUEST,
                code: "invalid-input",
                detail: "query parameter `limit` must be a whole number from 1 to 1000".into(),
                path: None,
                argument: Some("limit".into()),
            })
    })
}

fn body_location() -> Location {
    Location::Document {
        name: "request body".into(),
        path: "$".into(),
    }
}

/// A definition from a request body: the service's reading (the error names
/// the first problem's JSON path) and, when the document has the
/// definition's shape, every problem of it (`problems` in the problem
/// document).
fn definition<T: serde::de::DeserializeOwned>(
    value: Value,
    read: impl FnOnce(Value, &Location) -> ServiceResult<T>,
    problems: impl FnOnce(&T) -> Vec<omnigate_core::campaign::Problem>,
) -> Result<T, ApiError> {
    read(value.clone(), &body_location()).map_err(|e| {
        let all: Vec<FieldProblem> = serde_json::from_value::<T>(value)
            .map(|d| problems(&d))
            .unwrap_or_default()
            .into_iter()
            .map(|p| FieldProblem {
                path: if p.path.starts_with('[') {
                    format!("${}", p.path)
                } else {
                    format!("$.{}", p.path)
                },
                // Messages may quote what was written: never contact details.
                detail: omnigate_core::redact::redact(&p.message).into_owned(),
            })
            .collect();
        // Only when the error is the first of them (not a shape error).
        let first = all.first().map(|p| p.path.as_str());
        if first.is_some() && first == e.location().and_then(Location::json_path) {
            ApiError::Problems(e, all)
        } else {
            ApiError::Service(e)
        }
    })
}

#[derive(Serialize)]
struct Created<T> {
    created: bool,
    #[serde(flatten)]
    record: T,
}

// ---- campaigns ----------------------------------------------------------

async fn create_campaign(
    State(o): St,
    Actor(actor): Actor,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let def = definition(
        json_body(&bytes)?,
        input::campaign_definition,
        omnigate_core::campaign::CampaignDefinition::problems,
    )?;
    let (record, created) = blocking(o, move |o| {
        o.campaigns.create(&actor, &def).map_err(campaign_error)
    })
    .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(ok(status, Created { created, record }))
}

async fn list_campaigns(State(o): St) -> Result<Response, ApiError> {
    let out = blocking(o, |o| {
        let mut list = Vec::new();
        for r in o.campaigns.store().campaigns()? {
            list.push(
                o.campaigns
                    .status(&r.definition.id)
                    .map_err(campaign_error)?,
            );
        }
        Ok(list)
    })
    .await?;
    Ok(ok(StatusCode::OK, out))
}

async fn campaign_status(State(o): St, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = campaign_id(&id, &path_arg("id"))?;
    let out = blocking(o, move |o| o.campaigns.status(&id).map_err(campaign_error)).await?;
    Ok(ok(StatusCode::OK, out))
}

async fn campaign_members(
    State(o): St,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    query(&q, &["outcome", "after", "limit"])?;
    let id = campaign_id(&id, &path_arg("id"))?;
    let outcome = q
        .get("outcome")
        .map(|s| member_outcome(s, &path_arg("outcome")))
        .transpose()?;
    let after = q
        .get("after")
        .map(|s| input::hcp_id(s, &path_arg("after")))
        .transpose()?;
    let limit = limit(&q, 100)?;
    let out = blocking(o, move |o| {
        // An unknown campaign is a 404, not an empty page.
        o.campaigns.status(&id).map_err(campaign_error)?;
        Ok(o.campaigns
            .store()
            .members(&id, outcome, after.as_ref(), limit)?)
    })
    .await?;
    Ok(ok(StatusCode::OK, out))
}

async fn campaign_report(State(o): St, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = campaign_id(&id, &path_arg("id"))?;
    let out = blocking(o, move |o| {
        report(&**o.campaigns.store(), &id).map_err(campaign_error)
    })
    .await?;
    Ok(ok(StatusCode::OK, out))
}

async fn start_campaign(
    State(o): St,
    Actor(actor): Actor,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    fields(&bytes, &[], &[])?;
    let id = campaign_id(&id, &path_arg("id"))?;
    let out = blocking(o.clone(), move |o| {
        o.campaigns.start(&actor, &id).map_err(campaign_error)
    })
    .await?;
    // Run it now rather than at the runner's next poll.
    if let Some(runner) = &o.runner {
        runner.wake();
    }
    Ok(ok(StatusCode::OK, out))
}

async fn pause_campaign(
    State(o): St,
    Actor(actor): Actor,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    fields(&bytes, &[], &[])?;
    let id = campaign_id(&id, &path_arg("id"))?;
    let out = blocking(o, move |o| {
        o.campaigns.pause(&actor, &id).map_err(campaign_error)
    })
    .await?;
    Ok(ok(StatusCode::OK, out))
}

async fn cancel_campaign(
    State(o): St,
    Actor(actor): Actor,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let f = fields(&bytes, &["reason"], &["reason"])?;
    let reason = input::short_text(
        &f["reason"],
        &Location::argument("reason"),
        "the reason",
        4096,
    )?;
    let id = campaign_id(&id, &path_arg("id"))?;
    let out = blocking(o, move |o| {
        o.campaigns
            .cancel(&actor, &id, &reason)
            .map_err(campaign_error)
    })
    .await?;
    Ok(ok(StatusCode::OK, out))
}

// ---- journeys -----------------------------------------------------------

async fn create_journey(
    State(o): St,
    Actor(actor): Actor,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let def = definition(
        json_body(&bytes)?,
        input::journey_definition,
        omnigate_core::journeys::JourneyDefinition::problems,
    )?;
    let (record, created) = blocking(o, move |o| {
        o.journeys.create(&actor, &def).map_err(journey_error)
    })
    .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(ok(status, Created { created, record }))
}

async fn list_journeys(State(o): St) -> Result<Response, ApiError> {
    let out = blocking(o, |o| o.journeys.list().map_err(journey_error)).await?;
    Ok(ok(StatusCode::OK, out))
}

async fn journey_status(State(o): St, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = journey_id(&id, &path_arg("id"))?;
    let out = blocking(o, move |o| o.journeys.status(&id).map_err(journey_error)).await?;
    Ok(ok(StatusCode::OK, out))
}

async fn journey_actions(
    State(o): St,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    query(&q, &["state", "limit"])?;
    let id = journey_id(&id, &path_arg("id"))?;
    let state = q
        .get("state")
        .map(|s| action_state(s, &path_arg("state")))
        .transpose()?;
    let limit = limit(&q, 100)?;
    let out = blocking(o, move |o| {
        o.journeys.actions(&id, state, limit).map_err(journey_error)
    })
    .await?;
    Ok(ok(StatusCode::OK, out))
}

async fn move_journey(
    o: Arc<Orchestration>,
    actor: String,
    id: String,
    bytes: Bytes,
    to: JourneyState,
) -> Result<Response, ApiError> {
    let f = fields(&bytes, &["reason"], &["reason"])?;
    let reason = input::short_text(
        &f["reason"],
        &Location::argument("reason"),
        "the reason",
        4096,
    )?;
    let id = journey_id(&id, &path_arg("id"))?;
    let out = blocking(o, move |o| {
        o.journeys
            .set_state(&actor, &id, to, &reason)
            .map_err(journey_error)
    })
    .await?;
    Ok(ok(StatusCode::OK, out))
}

async fn pause_journey(
    State(o): St,
    Actor(a): Actor,
    Path(id): Path<String>,
    b: Bytes,
) -> Result<Response, ApiError> {
    move_journey(o, a, id, b, JourneyState::Paused).await
}

async fn resume_journey(
    State(o): St,
    Actor(a): Actor,
    Path(id): Path<String>,
    b: Bytes,
) -> Result<Response, ApiError> {
    move_journey(o, a, id, b, JourneyState::Active).await
}

async fn retire_journey(
    State(o): St,
    Actor(a): Actor,
    Path(id): Path<String>,
    b: Bytes,
) -> Result<Response, ApiError> {
    move_journey(o, a, id, b, JourneyState::Retired).await
}

// ---- suggestions --------------------------------------------------------

async fn list_suggestions(
    State(o): St,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    query(&q, &["rep", "hcp", "campaign", "state", "limit"])?;
    let filter = SuggestionFilter {
        rep: q.get("rep").cloned(),
        hcp: q
            .get("hcp")
            .map(|h| input::hcp_id(h, &path_arg("hcp")))
            .transpose()?,
        campaign: q.get("campaign").cloned(),
        state: q
            .get("state")
            .map(|s| suggestion_state(s, &path_arg("state")))
            .transpose()?,
        limit: limit(&q, 100)?,
    };
    let out = blocking(o, move |o| {
        Ok(o.campaigns.store().suggestions(&filter, now_millis())?)
    })
    .await?;
    Ok(ok(StatusCode::OK, out))
}

async fn close_suggestion(
    o: Arc<Orchestration>,
    actor: String,
    id: String,
    bytes: Bytes,
    state: SuggestionState,
) -> Result<Response, ApiError> {
    let (field, required): (&str, &[&str]) = match state {
        SuggestionState::Dismissed => ("reason", &["reason"]),
        _ => ("note", &[]),
    };
    let f = fields(&bytes, &[field], required)?;
    let text = f.get(field).cloned().unwrap_or_default();
    state
        .check_close(&text)
        .map_err(|m| ServiceError::invalid(Location::argument(field), m))?;
    let out = blocking(o, move |o| {
        let store = &**o.campaigns.store();
        let now = now_millis();
        // An unknown id is a 404, not a refusal.
        if store.suggestion(&id, now)?.is_none() {
            return Err(ServiceError::NotFound {
                code: "unknown-suggestion",
                message: format!(
                    "unknown suggestion `{}`",
                    omnigate_core::redact::redact(&id)
                ),
                at: None,
            });
        }
        omnigate_engine::suggest::close(store, &actor, &id, state, &text, now)
            .map_err(ServiceError::from)
    })
    .await?;
    Ok(ok(StatusCode::OK, out))
}

async fn suggestion_done(
    State(o): St,
    Actor(a): Actor,
    Path(id): Path<String>,
    b: Bytes,
) -> Result<Response, ApiError> {
    close_suggestion(o, a, id, b, SuggestionState::Done).await
}

async fn suggestion_dismiss(
    State(o): St,
    Actor(a): Actor,
    Path(id): Path<String>,
    b: Bytes,
) -> Result<Response, ApiError> {
    close_suggestion(o, a, id, b, SuggestionState::Dismissed).await
}
