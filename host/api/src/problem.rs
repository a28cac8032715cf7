//! Errors as HTTP problem documents (RFC 9457): one type, [`ApiError`], that
//! every handler returns and that becomes the response.
//!
//! ```json
//! {"type": "about:blank", "title": "Bad Request", "status": 400,
//!  "code": "invalid-input", "path": "$.records[2].channel",
//!  "detail": "request body, at $.records[2].channel: unknown channel `sms2` (expected one of: ...)"}
//! ```
//!
//! INVARIANT: a 5xx body reveals nothing internal: the cause is logged with
//! the request id that the body quotes.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use omnigate_service::{ErrorKind, Location, ServiceError};
use serde::Serialize;
use tracing::error;

/// The media type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Always `about:blank`: `code` says what happened.
    #[serde(rename = "type")]
    pub type_: &'static str,
    /// The status's reason phrase.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// Stable, kebab-case: what to branch on.
    pub code: String,
    /// The message, for people.
    pub detail: String,
    /// JSON path of the bad value in the request body, if there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The path segment, query parameter or header at fault, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub argument: Option<String>,
    /// Quoted in server errors: the server log has the cause under it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Every problem of a document (a campaign or journey definition), each
    /// at its JSON path; `path` and `detail` are the first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<FieldProblem>,
}

/// One problem of a request body, at its JSON path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    /// JSON path in the request body (`$.actions[1].channels[2]`).
    pub path: String,
    /// What is wrong there.
    pub detail: String,
}

/// Everything a handler can fail with.
#[derive(Debug)]
pub enum ApiError {
    /// A service error.
    Service(ServiceError),
    /// A problem found by the HTTP layer itself (malformed JSON, a missing
    /// header, an unknown route).
    Http {
        /// The status.
        status: StatusCode,
        /// The code.
        code: &'static str,
        /// The message.
        detail: String,
        /// The JSON path, if in the body.
        path: Option<String>,
        /// The argument, if one.
        argument: Option<String>,
    },
    /// A bug or a crashed worker: logged, not shown.
    Internal(String),
    /// A document with several problems: the error of the first, and every
    /// one listed (`problems` in the problem document).
    Problems(ServiceError, Vec<FieldProblem>),
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        ApiError::Service(e)
    }
}

impl ApiError {
    /// Bad input found by the HTTP layer, at a JSON path of the body.
    pub fn bad_body(path: &str, detail: impl Into<String>) -> Self {
        ApiError::Http {
            status: StatusCode::BAD_REQUEST,
            code: "invalid-input",
            detail: format!("request body, at {path}: {}", detail.into()),
            path: Some(path.to_owned()),
            argument: None,
        }
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// A request id for a server error: unique within the process, and across
/// restarts thanks to the start time.
fn request_id() -> String {
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let start = omnigate_core::event::now_millis();
    format!("{start:x}-{n}")
}

/// Builds a problem response.
pub fn problem_response(status: StatusCode, problem: &Problem) -> Response {
    let mut response = (status, Json(problem)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response
}

fn title(status: StatusCode) -> String {
    status.canonical_reason().unwrap_or("Error").to_owned()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, problem) = self.problem();
        problem_response(status, &problem)
    }
}

impl ApiError {
    /// The status and the problem document (a server error's cause is
    /// logged here, under the request id the document quotes).
    fn problem(self) -> (StatusCode, Problem) {
        let (status, code, detail, path, argument, request_id) = match self {
            ApiError::Problems(e, problems) => {
                let (status, mut problem) = ApiError::Service(e).problem();
                // Never beside a server error: those show nothing.
                if !status.is_server_error() {
                    problem.problems = problems;
                }
                return (status, problem);
            }
            ApiError::Service(e) => {
                let status = match e.kind() {
                    ErrorKind::Invalid => StatusCode::BAD_REQUEST,
                    ErrorKind::NotFound => StatusCode::NOT_FOUND,
                    ErrorKind::Refused => StatusCode::CONFLICT,
                    ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                };
                if status.is_server_error() {
                    let id = request_id();
                    // Store messages name the operation, never stored values.
                    error!(request_id = %id, code = e.code(), error = %e, "request failed");
                    (
                        status,
                        "internal".to_owned(),
                        format!(
                            "internal error; the server log has the cause under request id {id}"
                        ),
                        None,
                        None,
                        Some(id),
                    )
                } else {
                    let (path, argument) = match e.location() {
                        Some(Location::Argument { name }) => (None, Some(name.clone())),
                        Some(l) => (l.json_path().map(str::to_owned), None),
                        None => (None, None),
                    };
                    (
                        status,
                        e.code().to_owned(),
                        e.to_string(),
                        path,
                        argument,
                        None,
                    )
                }
            }
            ApiError::Http {
                status,
                code,
                detail,
                path,
                argument,
            } => (status, code.to_owned(), detail, path, argument, None),
            ApiError::Internal(cause) => {
                let id = request_id();
                error!(request_id = %id, error = %cause, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal".to_owned(),
                    format!("internal error; the server log has the cause under request id {id}"),
                    None,
                    None,
                    Some(id),
                )
            }
        };
        (
            status,
            Problem {
                type_: "about:blank",
                title: title(status),
                status: status.as_u16(),
                code,
                detail,
                path,
                argument,
                request_id,
                problems: Vec::new(),
            },
        )
    }
}

/// Turns the bare error responses of the layers and of axum (413 from the
/// body limit, 408 from the timeout, 405, 415) into problem documents.
pub async fn problems_for_bare_errors(response: Response) -> Response {
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == PROBLEM_JSON.as_bytes());
    if is_problem || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (code, detail) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => (
            "too-large",
            format!(
                "the request body is larger than {} bytes; split the batch",
                crate::MAX_BODY_BYTES
            ),
        ),
        StatusCode::REQUEST_TIMEOUT => (
            "timeout",
            "the request took too long and was abandoned".to_owned(),
        ),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method-not-allowed",
            "this method is not allowed on this path".to_owned(),
        ),
        StatusCode::NOT_FOUND => ("no-route", "no such endpoint".to_owned()),
        s if s.is_server_error() => ("internal", "internal error; see the server log".to_owned()),
        _ => ("bad-request", title(status)),
    };
    let mut out = problem_response(
        status,
        &Problem {
            type_: "about:blank",
            title: title(status),
            status: status.as_u16(),
            code: code.to_owned(),
            detail,
            path: None,
            argument: None,
            request_id: None,
            problems: Vec::new(),
        },
    );
    // Keep `Allow` on a 405.
    if let Some(allow) = response.headers().get(header::ALLOW) {
        out.headers_mut().insert(header::ALLOW, allow.clone());
    }
    out
}
