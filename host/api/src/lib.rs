//! omnigate's HTTP API: `GET /health` (the loaded plugins and the active
//! policy version) and, when the state holds a [`Service`], the `/v1` API
//! for HCP data, consent, events, identity merges, the MLR content registry
//! and the audit trail ([`v1`], docs/api.md), and, when it holds an
//! [`orchestration::Orchestration`], the campaign, journey and rep
//! suggestion endpoints ([`orchestration`]). Errors are problem documents
//! ([`problem`]). Handlers are thin: they parse the request and run one
//! service call on a blocking thread.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use omnigate_api::{AppState, router};
//! use omnigate_runtime::{Runtime, RuntimeConfig};
//!
//! let state = AppState::new(Runtime::new(RuntimeConfig::default())?, None);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, router(state)).await?;
//! # Ok(()) }
//! ```

pub mod orchestration;
pub mod problem;
pub mod v1;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use omnigate_runtime::Runtime;
use omnigate_service::Service;
use serde::Serialize;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// Largest request body the API accepts: room for a batch of
/// [`omnigate_service::input::MAX_BATCH_ITEMS`] events.
pub const MAX_BODY_BYTES: usize = 8 << 20;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    runtime: Runtime,
    policy_version: Arc<RwLock<Option<String>>>,
    service: Option<Arc<Service>>,
    orchestration: Option<Arc<orchestration::Orchestration>>,
}

impl AppState {
    /// State over a runtime and, if loaded, the active policy version.
    pub fn new(runtime: Runtime, policy_version: Option<String>) -> AppState {
        AppState {
            runtime,
            policy_version: Arc::new(RwLock::new(policy_version)),
            service: None,
            orchestration: None,
        }
    }

    /// Serves `/v1/campaigns`, `/v1/journeys` and `/v1/suggestions`.
    pub fn with_orchestration(mut self, o: Arc<orchestration::Orchestration>) -> AppState {
        self.orchestration = Some(o);
        self
    }

    /// Serves the `/v1` API over `service`.
    pub fn with_service(mut self, service: Arc<Service>) -> AppState {
        self.service = Some(service);
        self
    }

    /// Records the policy version now in force.
    pub fn set_policy_version(&self, version: Option<String>) {
        match self.policy_version.write() {
            Ok(mut v) => *v = version,
            Err(poisoned) => *poisoned.into_inner() = version,
        }
    }

    fn policy_version(&self) -> Option<String> {
        match self.policy_version.read() {
            Ok(v) => v.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// The router with every route and the shared layers (body limit, timeout,
/// request tracing, problem documents for the layers' bare errors).
pub fn router(state: AppState) -> Router {
    let service = state.service.clone();
    let orchestration = state.orchestration.clone();
    let mut app = Router::new()
        .route("/health", get(health))
        .with_state(state);
    if let Some(service) = service {
        app = app.merge(v1::routes(service));
    }
    if let Some(o) = orchestration {
        app = app.merge(orchestration::routes(o));
    }
    app.fallback(no_route)
        .layer(TraceLayer::new_for_http())
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response(
            problem::problems_for_bare_errors,
        ))
}

async fn no_route() -> problem::ApiError {
    problem::ApiError::Http {
        status: axum::http::StatusCode::NOT_FOUND,
        code: "no-route",
        detail: "no such endpoint (docs/api.md lists them)".to_owned(),
        path: None,
        argument: None,
    }
}

/// `GET /health`.
#[derive(Debug, Serialize)]
pub struct Health {
    /// Always `ok` when the host answers.
    pub status: &'static str,
    /// The host's version.
    pub version: &'static str,
    /// sha256 of the policy set in force, if one is loaded.
    pub policy_version: Option<String>,
    /// The plugins being served.
    pub plugins: Vec<PluginSummary>,
}

/// One served plugin.
#[derive(Debug, Serialize)]
pub struct PluginSummary {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// `channel-adapter` or `scoring-model`.
    pub kind: String,
    /// sha256 of its component.
    pub sha256: String,
}

async fn health(State(state): State<AppState>) -> Json<Health> {
    let plugins = state
        .runtime
        .registry()
        .list()
        .iter()
        .map(|p| {
            let m = p.manifest();
            PluginSummary {
                name: m.name.clone(),
                version: m.version.clone(),
                kind: m.kind.to_string(),
                sha256: m.sha256.clone(),
            }
        })
        .collect();
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        policy_version: state.policy_version(),
        plugins,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use omnigate_runtime::RuntimeConfig;
    use tower::ServiceExt;

    #[tokio::test]
    async fn health_reports_the_policy_version_and_no_plugins_when_none_are_loaded() {
        let state = AppState::new(
            Runtime::new(RuntimeConfig::default()).unwrap(),
            Some("abc".into()),
        );
        let response = router(state)
            .oneshot(Request::get("/health").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["status"], "ok");
        assert_eq!(json["policy_version"], "abc");
        assert_eq!(json["plugins"], serde_json::json!([]));
    }
}
