//! `/v1`: HCP data (profiles, consent, events, identity, journeys), the MLR
//! content registry and the audit trail, over [`omnigate_service::Service`].
//! Every handler parses the request, runs one service call on a blocking
//! thread and serializes the outcome; docs/api.md lists the endpoints.
//!
//! Mutating calls need the `x-omnigate-actor` header: who is acting, as
//! recorded in the audit log. It is not authenticated yet.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use omnigate_core::event::now_millis;
use omnigate_service::input::{self, Batch};
use omnigate_service::{Service, ServiceResult};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::problem::ApiError;

/// The header naming who acts.
pub const ACTOR_HEADER: &str = "x-omnigate-actor";

/// The routes under `/v1`.
pub fn routes(service: Arc<Service>) -> Router {
    Router::new()
        .route("/v1/hcps", post(import_profiles))
        .route("/v1/hcps/{id}", get(show_hcp))
        .route("/v1/hcps/{id}/events", get(hcp_events))
        .route("/v1/hcps/{id}/consent", get(hcp_consent))
        .route("/v1/hcps/{id}/journeys/{brand}", put(set_journey))
        .route("/v1/consent", post(record_consent))
        .route("/v1/consent/current", get(current_consent))
        .route("/v1/events", post(ingest_events))
        .route("/v1/merges", post(merge))
        .route("/v1/merges/{id}/undo", post(unmerge))
        .route(
            "/v1/content/items/{item}/versions",
            post(put_version).get(list_versions),
        )
        .route("/v1/content/versions/{hash}", get(show_version))
        .route("/v1/content/versions/{hash}/submit", post(submit))
        .route("/v1/content/versions/{hash}/sign-off", post(sign_off))
        .route(
            "/v1/content/versions/{hash}/request-changes",
            post(request_changes),
        )
        .route("/v1/content/versions/{hash}/withdraw", post(withdraw))
        .route("/v1/content/expire", post(expire))
        .route("/v1/audit", get(audit_entries))
        .route("/v1/audit/verify", get(audit_verify))
        .route("/v1/gate/check", post(gate_check))
        .route("/v1/decisions", get(list_decisions))
        .route("/v1/decisions/{id}", get(show_decision))
        .with_state(service)
}

type Svc = State<Arc<Service>>;

/// Runs a call on a blocking thread (the store blocks).
pub(crate) async fn blocking<S: Send + Sync + 'static, T: Send + 'static>(
    state: Arc<S>,
    f: impl FnOnce(&S) -> ServiceResult<T> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(move || f(&state))
        .await
        .map_err(|e| ApiError::Internal(format!("worker failed: {e}")))?
        .map_err(ApiError::from)
}

pub(crate) fn ok<T: Serialize>(status: StatusCode, body: T) -> Response {
    (status, Json(body)).into_response()
}

/// The actor of a mutating call, from [`ACTOR_HEADER`].
pub struct Actor(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let header_error = |detail: String| ApiError::Http {
            status: StatusCode::BAD_REQUEST,
            code: "missing-actor",
            detail,
            path: None,
            argument: Some(ACTOR_HEADER.to_owned()),
        };
        let value = parts.headers.get(ACTOR_HEADER).ok_or_else(|| {
            header_error(format!(
                "header `{ACTOR_HEADER}` is required on calls that change something: who is acting"
            ))
        })?;
        let text = value
            .to_str()
            .map_err(|_| header_error(format!("header `{ACTOR_HEADER}` must be visible ASCII")))?;
        omnigate_service::actor(text)
            .map(Actor)
            .map_err(|e| header_error(format!("header `{ACTOR_HEADER}`: {}", e.message())))
    }
}

/// A request body: a JSON object.
struct Body(Map<String, Value>);

impl Body {
    fn parse(bytes: &Bytes) -> Result<Body, ApiError> {
        if bytes.is_empty() {
            return Ok(Body(Map::new()));
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(Body(map)),
            Ok(_) => Err(ApiError::bad_body("$", "expected a JSON object")),
            // serde_json's syntax errors give a position, never the input.
            Err(e) => Err(ApiError::Http {
                status: StatusCode::BAD_REQUEST,
                code: "invalid-json",
                detail: format!("the request body is not valid JSON: {e}"),
                path: None,
                argument: None,
            }),
        }
    }

    /// Refuses fields other than `allowed`.
    fn only(&self, allowed: &[&str]) -> Result<(), ApiError> {
        if let Some(k) = self.0.keys().find(|k| !allowed.contains(&k.as_str())) {
            let shown = omnigate_core::redact::redact(k);
            return Err(ApiError::bad_body(
                &format!("$.{shown}"),
                format!("unknown field `{shown}` (expected: {})", allowed.join(", ")),
            ));
        }
        Ok(())
    }

    fn array(&mut self, field: &str) -> Result<Vec<Value>, ApiError> {
        match self.0.remove(field) {
            Some(Value::Array(items)) => Ok(items),
            Some(_) => Err(ApiError::bad_body(
                &format!("$.{field}"),
                format!("`{field}` must be an array"),
            )),
            None => Err(ApiError::bad_body(
                &format!("$.{field}"),
                format!("missing field `{field}`"),
            )),
        }
    }

    fn string(&self, field: &str) -> Result<String, ApiError> {
        match self.0.get(field) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(ApiError::bad_body(
                &format!("$.{field}"),
                format!("`{field}` must be a string"),
            )),
            None => Err(ApiError::bad_body(
                &format!("$.{field}"),
                format!("missing field `{field}`"),
            )),
        }
    }
}

/// Parses the array `field` of a body into a batch.
fn batch<T>(
    body: &mut Body,
    field: &str,
    parse: impl Fn(Value, &omnigate_service::Location) -> ServiceResult<T>,
) -> Result<Batch<T>, ApiError> {
    let items = body.array(field)?;
    if items.len() > input::MAX_BATCH_ITEMS {
        return Err(omnigate_service::ServiceError::TooLarge {
            message: format!(
                "`{field}` has {} items; a call may carry at most {}: split it",
                items.len(),
                input::MAX_BATCH_ITEMS
            ),
        }
        .into());
    }
    Ok(input::parse_array(
        "request body",
        &format!("$.{field}"),
        items,
        parse,
    )?)
}

// ---- HCPs ---------------------------------------------------------------

async fn import_profiles(
    State(s): Svc,
    Actor(actor): Actor,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let mut body = Body::parse(&bytes)?;
    body.only(&["profiles"])?;
    let batch = batch(&mut body, "profiles", input::profile)?;
    let out = blocking(s, move |s| s.import_profiles(&actor, &batch)).await?;
    Ok(ok(StatusCode::OK, out))
}

async fn show_hcp(State(s): Svc, Path(id): Path<String>) -> Result<Response, ApiError> {
    let out = blocking(s, move |s| s.hcp(&id, now_millis())).await?;
    Ok(ok(StatusCode::OK, out))
}

#[derive(Serialize)]
struct Events {
    events: Vec<omnigate_core::Event>,
}

async fn hcp_events(State(s): Svc, Path(id): Path<String>) -> Result<Response, ApiError> {
    let events = blocking(s, move |s| s.timeline(&id)).await?;
    Ok(ok(StatusCode::OK, Events { events }))
}

async fn hcp_consent(State(s): Svc, Path(id): Path<String>) -> Result<Response, ApiError> {
    let out = blocking(s, move |s| s.consent_history(&id)).await?;
    Ok(ok(StatusCode::OK, out))
}

async fn set_journey(
    State(s): Svc,
    Actor(actor): Actor,
    Path((id, brand)): Path<(String, String)>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let body = Body::parse(&bytes)?;
    body.only(&["stage", "reason"])?;
    let (stage, reason) = (body.string("stage")?, body.string("reason")?);
    let out = blocking(s, move |s| {
        s.set_journey_stage(&actor, &id, &brand, &stage, &reason)
    })
    .await?;
    Ok(ok(StatusCode::OK, out))
}

// ---- consent ------------------------------------------------------------

async fn record_consent(
    State(s): Svc,
    Actor(actor): Actor,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let mut body = Body::parse(&bytes)?;
    body.only(&["records"])?;
    let batch = batch(&mut body, "records", input::consent)?;
    let out = blocking(s, move |s| s.record_consents(&actor, &batch)).await?;
    Ok(ok(StatusCode::CREATED, out))
}

async fn current_consent(
    State(s): Svc,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let known = ["hcp", "channel", "purpose", "market", "product"];
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
    let get = |k: &str| {
        q.get(k).cloned().ok_or_else(|| ApiError::Http {
            status: StatusCode::BAD_REQUEST,
            code: "invalid-input",
            detail: format!("query parameter `{k}` is required"),
            path: None,
            argument: Some(k.to_owned()),
        })
    };
    let (hcp, channel, purpose, market) = (
        get("hcp")?,
        get("channel")?,
        get("purpose")?,
        get("market")?,
    );
    let product = q.get("product").cloned();
    let out = blocking(s, move |s| {
        s.consent_current(&hcp, &channel, &purpose, &market, product.as_deref())
    })
    .await?;
    Ok(ok(StatusCode::OK, out))
}

// ---- events -------------------------------------------------------------

async fn ingest_events(
    State(s): Svc,
    Actor(actor): Actor,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let mut body = Body::parse(&bytes)?;
    body.only(&["batch_id", "events"])?;
    let batch_id = body.string("batch_id")?;
    let batch = batch(&mut body, "events", input::event)?;
    let out = blocking(s, move |s| s.ingest_events(&actor, &batch_id, &batch)).await?;
    Ok(ok(StatusCode::OK, out))
}

// ---- identity -----------------------------------------------------------

async fn merge(State(s): Svc, Actor(actor): Actor, bytes: Bytes) -> Result<Response, ApiError> {
    let body = Body::parse(&bytes)?;
    body.only(&["survivor", "merged", "reason"])?;
    let (survivor, merged, reason) = (
        body.string("survivor")?,
        body.string("merged")?,
        body.string("reason")?,
    );
    let out = blocking(s, move |s| s.merge(&actor, &survivor, &merged, &reason)).await?;
    Ok(ok(StatusCode::CREATED, out))
}

#[derive(Serialize)]
struct Undone {
    merge_id: i64,
    undone: bool,
}

async fn unmerge(
    State(s): Svc,
    Actor(actor): Actor,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let merge_id: i64 = id.parse().map_err(|_| ApiError::Http {
        status: StatusCode::BAD_REQUEST,
        code: "invalid-input",
        detail: "argument `id`: a merge id is a number".to_owned(),
        path: None,
        argument: Some("id".to_owned()),
    })?;
    let body = Body::parse(&bytes)?;
    body.only(&["reason"])?;
    let reason = body.string("reason")?;
    blocking(s, move |s| s.unmerge(&actor, merge_id, &reason)).await?;
    Ok(ok(
        StatusCode::OK,
        Undone {
            merge_id,
            undone: true,
        },
    ))
}

// ---- content ------------------------------------------------------------

async fn put_version(
    State(s): Svc,
    Actor(actor): Actor,
    Path(item): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let Body(map) = Body::parse(&bytes)?;
    let at = omnigate_service::Location::Document {
        name: "request body".into(),
        path: "$".into(),
    };
    let body = input::content_body(Value::Object(map), &at)?;
    let out = blocking(s, move |s| s.put_version(&actor, &item, &body)).await?;
    let status = if out.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(ok(status, out))
}

async fn list_versions(State(s): Svc, Path(item): Path<String>) -> Result<Response, ApiError> {
    let out = blocking(s, move |s| s.versions(&item)).await?;
    Ok(ok(StatusCode::OK, out))
}

async fn show_version(State(s): Svc, Path(hash): Path<String>) -> Result<Response, ApiError> {
    let out = blocking(s, move |s| s.version(&hash)).await?;
    Ok(ok(StatusCode::OK, out))
}

async fn submit(
    State(s): Svc,
    Actor(actor): Actor,
    Path(hash): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    Body::parse(&bytes)?.only(&[])?;
    let out = blocking(s, move |s| s.submit(&actor, &hash)).await?;
    Ok(ok(StatusCode::OK, out))
}

async fn sign_off(
    State(s): Svc,
    Actor(actor): Actor,
    Path(hash): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let body = Body::parse(&bytes)?;
    body.only(&["role"])?;
    let role = body.string("role")?;
    let out = blocking(s, move |s| s.sign_off(&actor, &hash, &role)).await?;
    Ok(ok(StatusCode::OK, out))
}

async fn request_changes(
    State(s): Svc,
    Actor(actor): Actor,
    Path(hash): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let body = Body::parse(&bytes)?;
    body.only(&["role", "note"])?;
    let (role, note) = (body.string("role")?, body.string("note")?);
    let out = blocking(s, move |s| s.request_changes(&actor, &hash, &role, &note)).await?;
    Ok(ok(StatusCode::OK, out))
}

async fn withdraw(
    State(s): Svc,
    Actor(actor): Actor,
    Path(hash): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let body = Body::parse(&bytes)?;
    body.only(&["reason"])?;
    let reason = body.string("reason")?;
    let out = blocking(s, move |s| s.withdraw(&actor, &hash, &reason)).await?;
    Ok(ok(StatusCode::OK, out))
}

async fn expire(State(s): Svc, Actor(actor): Actor, bytes: Bytes) -> Result<Response, ApiError> {
    let body = Body::parse(&bytes)?;
    body.only(&["now"])?;
    let now = match body.0.get("now") {
        None | Some(Value::Null) => now_millis(),
        Some(v) => v.as_i64().ok_or_else(|| {
            ApiError::bad_body("$.now", "`now` must be milliseconds since the Unix epoch")
        })?,
    };
    let out = blocking(s, move |s| s.expire_due(&actor, now)).await?;
    Ok(ok(StatusCode::OK, out))
}

// ---- audit --------------------------------------------------------------

async fn audit_entries(
    State(s): Svc,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let number = |k: &str, default: i64| -> Result<i64, ApiError> {
        q.get(k).map_or(Ok(default), |v| {
            v.parse().map_err(|_| ApiError::Http {
                status: StatusCode::BAD_REQUEST,
                code: "invalid-input",
                detail: format!("query parameter `{k}` must be a whole number"),
                path: None,
                argument: Some(k.to_owned()),
            })
        })
    };
    let from = number("from", 1)?;
    let limit = usize::try_from(number("limit", 100)?.max(0)).unwrap_or(0);
    let out = blocking(s, move |s| s.audit_entries(from, limit)).await?;
    Ok(ok(StatusCode::OK, out))
}

async fn audit_verify(State(s): Svc) -> Result<Response, ApiError> {
    let out = blocking(s, |s| s.verify_audit()).await?;
    Ok(ok(StatusCode::OK, out))
}

async fn gate_check(
    State(s): Svc,
    Actor(actor): Actor,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let Body(map) = Body::parse(&bytes)?;
    let at = omnigate_service::Location::Document {
        name: "request body".into(),
        path: "$".into(),
    };
    let req = omnigate_service::gate::check_input(Value::Object(map), &at)?;
    let out = blocking(s, move |s| s.check(&actor, &req)).await?;
    Ok(ok(StatusCode::OK, out))
}

async fn list_decisions(
    State(s): Svc,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let bad = |k: &str, detail: String| ApiError::Http {
        status: StatusCode::BAD_REQUEST,
        code: "invalid-input",
        detail,
        path: None,
        argument: Some(k.to_owned()),
    };
    let mut query = omnigate_service::gate::DecisionQuery::default();
    for (k, v) in q {
        match k.as_str() {
            "campaign" => query.campaign = Some(v),
            "hcp" => query.hcp = Some(v),
            "rule" => query.rule = Some(v),
            "verdict" => query.verdict = Some(v),
            "before" => query.before = Some(v),
            "limit" => {
                query.limit = Some(v.parse().map_err(|_| {
                    bad(
                        "limit",
                        "query parameter `limit` must be a whole number".into(),
                    )
                })?);
            }
            other => {
                return Err(bad(
                    other,
                    format!(
                        "unknown query parameter `{other}` (expected campaign, hcp, rule, verdict, before, limit)"
                    ),
                ));
            }
        }
    }
    let out = blocking(s, move |s| s.decisions(&query)).await?;
    Ok(ok(StatusCode::OK, serde_json::json!({ "decisions": out })))
}

async fn show_decision(State(s): Svc, Path(id): Path<String>) -> Result<Response, ApiError> {
    let out = blocking(s, move |s| s.decision(&id)).await?;
    Ok(ok(StatusCode::OK, out))
}
