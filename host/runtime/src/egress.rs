//! The one door out: every HTTP request a plugin sends passes through
//! [`EgressHooks::send_request`], which knows the plugin and the call.
//!
//! In order, a request is:
//! 1. refused unless its scheme, host and port match the manifest's
//!    `allowed_outbound_hosts` (before any connection is opened);
//! 2. buffered, up to `limits.max_request_bytes`;
//! 3. shown to the [`EgressInspector`] with its body (the compliance gate
//!    installs one that checks the body belongs to a dispatch it allowed);
//! 4. sent with every timeout clamped to `limits.http_timeout`, the response
//!    body capped at `limits.max_response_bytes`.
//!
//! A refusal reaches the plugin as the `HTTP-request-denied` error code, which
//! it can handle; it is never a trap.

use std::sync::Arc;

use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use omnigate_core::redact::redact;
use tracing::{debug, warn};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::hosts::HostPattern;
use crate::manifest::Limits;

/// One outgoing request, as the inspector sees it.
#[derive(Debug)]
pub struct EgressRequest<'a> {
    /// The plugin that sends it.
    pub plugin: &'a str,
    /// The exported function being run (`deliver`, `parse-webhook`, ...).
    pub call: &'static str,
    /// Unique id of the call within this host process.
    pub call_id: u64,
    /// For `deliver`, the dispatch ids of the batch being delivered.
    pub dispatch_ids: &'a [String],
    /// The method.
    pub method: &'a http::Method,
    /// The full URI.
    pub uri: &'a http::Uri,
    /// The headers.
    pub headers: &'a http::HeaderMap,
    /// The whole body.
    pub body: &'a [u8],
}

/// Decides whether a request that passed the host allow-list may leave.
pub trait EgressInspector: Send + Sync + 'static {
    /// `Err(reason)` refuses the request; the reason is logged, and the plugin
    /// sees `HTTP-request-denied`.
    fn inspect(&self, request: &EgressRequest<'_>) -> Result<(), String>;
}

/// An inspector that adds nothing to the host allow-list. The compliance gate
/// replaces it with one that checks every body against the dispatches it
/// allowed.
#[derive(Debug, Default, Clone, Copy)]
pub struct AllowListed;

impl EgressInspector for AllowListed {
    fn inspect(&self, _request: &EgressRequest<'_>) -> Result<(), String> {
        Ok(())
    }
}

/// The call a store is running, set before each call.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallInfo {
    pub name: &'static str,
    pub id: u64,
    pub dispatch_ids: Arc<[String]>,
}

/// Per-store HTTP hooks.
pub(crate) struct EgressHooks {
    pub plugin: Arc<str>,
    pub allowed: Arc<[HostPattern]>,
    pub limits: Limits,
    pub inspector: Arc<dyn EgressInspector>,
    pub call: CallInfo,
}

type ResponseFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

impl WasiHttpHooks for EgressHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> ResponseFuture {
        drop(fut);
        let plugin = self.plugin.clone();
        let allowed = self.allowed.clone();
        let limits = self.limits;
        let inspector = self.inspector.clone();
        let call = self.call.clone();
        Box::new(async move {
            let (parts, body) = request.into_parts();
            let uri = &parts.uri;
            let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
            let host = uri.host().unwrap_or_default().trim_matches(['[', ']']);
            let port = uri
                .port_u16()
                .unwrap_or(if scheme == "http" { 80 } else { 443 });
            // INVARIANT: deny by default; nothing is connected before this check.
            if !allowed.iter().any(|p| p.allows(&scheme, host, port)) {
                warn!(
                    plugin = %plugin, call = call.name, call_id = call.id,
                    destination = %format!("{scheme}://{host}:{port}"),
                    "denied outbound host not in the manifest"
                );
                return Err(HttpError::HttpRequestDenied);
            }

            let body = Limited::new(
                body,
                usize::try_from(limits.max_request_bytes).unwrap_or(usize::MAX),
            )
            .collect()
            .await
            .map_err(|e| match e.downcast::<HttpError>() {
                Ok(inner) => *inner,
                Err(_) => HttpError::HttpRequestBodySize(Some(limits.max_request_bytes)),
            })?
            .to_bytes();

            let verdict = inspector.inspect(&EgressRequest {
                plugin: &plugin,
                call: call.name,
                call_id: call.id,
                dispatch_ids: &call.dispatch_ids,
                method: &parts.method,
                uri: &parts.uri,
                headers: &parts.headers,
                body: &body,
            });
            if let Err(reason) = verdict {
                warn!(
                    plugin = %plugin, call = call.name, call_id = call.id,
                    reason = %redact(&reason), "egress inspector refused the request"
                );
                return Err(HttpError::HttpRequestDenied);
            }
            debug!(
                plugin = %plugin, call = call.name, call_id = call.id,
                method = %parts.method, destination = %format!("{scheme}://{host}:{port}"),
                bytes = body.len(), "outbound request"
            );

            let request = http::Request::from_parts(parts, Full::new(body).map_err(|e| match e {}));
            let timeout = limits.http_timeout;
            let clamp =
                |d: Option<std::time::Duration>| Some(d.map_or(timeout, |d| d.min(timeout)));
            let options = RequestOptions {
                connect_timeout: clamp(options.and_then(|o| o.connect_timeout)),
                first_byte_timeout: clamp(options.and_then(|o| o.first_byte_timeout)),
                between_bytes_timeout: clamp(options.and_then(|o| o.between_bytes_timeout)),
            };
            let (response, io) = tokio::time::timeout(
                timeout,
                wasmtime_wasi_http::default_send_request(request, Some(options)),
            )
            .await
            .map_err(|_| HttpError::HttpResponseTimeout)??;

            let max = limits.max_response_bytes;
            let response = response.map(move |body| {
                Limited::new(body, usize::try_from(max).unwrap_or(usize::MAX))
                    .map_err(move |e| {
                        if e.is::<LengthLimitError>() {
                            HttpError::HttpResponseBodySize(Some(max))
                        } else {
                            match e.downcast::<HttpError>() {
                                Ok(inner) => *inner,
                                Err(other) => HttpError::InternalError(Some(other.to_string())),
                            }
                        }
                    })
                    .boxed_unsync()
            });
            Ok((
                response,
                Box::new(io) as Box<dyn Future<Output = Result<(), HttpError>> + Send>,
            ))
        })
    }
}
