//! A loopback stand-in for an e-mail provider, for tests, benchmarks and the
//! demo. It speaks the wire format of the bundled e-mail adapter
//! (`plugins/email-adapter/README.md`): `POST /v1/messages` with a batch,
//! one result per message. Like a real provider it deduplicates by
//! idempotency key: a message whose key it has seen is answered with the
//! first message id and not delivered again. It counts what it delivered per
//! HCP, so a test can check that nobody got a message twice.
//!
//! It binds 127.0.0.1 only.
//!
//! ```no_run
//! let sink = omnigate_mailsink::MailSink::start()?;
//! println!("provider endpoint: {}", sink.endpoint());
//! sink.fail_next(2); // the next two requests get HTTP 503
//! # Ok::<(), std::io::Error>(())
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// One message the sink accepted and delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivered {
    /// The provider message id the sink gave it.
    pub message_id: String,
    /// The idempotency key the adapter sent.
    pub idempotency_key: String,
    /// `metadata.hcp_id`.
    pub hcp_id: String,
    /// `metadata.dispatch_id`.
    pub dispatch_id: String,
    /// The recipient address.
    pub to: String,
    /// The subject, if any.
    pub subject: Option<String>,
    /// The plain-text body.
    pub text: String,
}

#[derive(Default)]
struct Sink {
    delivered: Mutex<Vec<Delivered>>,
    by_key: Mutex<HashMap<String, String>>,
    requests: AtomicU64,
    fail_next: AtomicU32,
    bodies: Mutex<Vec<Value>>,
    next_id: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running sink. Dropping it stops the server.
pub struct MailSink {
    addr: SocketAddr,
    sink: Arc<Sink>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MailSink {
    /// Starts a sink on a free port of 127.0.0.1, on its own thread.
    pub fn start() -> std::io::Result<MailSink> {
        MailSink::start_on(0)
    }

    /// Starts a sink on `port` of 127.0.0.1 (0 picks a free one).
    pub fn start_on(port: u16) -> std::io::Result<MailSink> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let sink = Arc::new(Sink::default());
        let (stop, stopped) = oneshot::channel::<()>();
        let app = Router::new()
            .route("/v1/messages", post(messages))
            .with_state(sink.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("mailsink".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ = stopped.await;
                        })
                        .await;
                });
            })?;
        Ok(MailSink {
            addr,
            sink,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL to configure as the e-mail adapter's `endpoint`.
    pub fn endpoint(&self) -> String {
        format!("http://{}/v1/messages", self.addr)
    }

    /// Answers the next `n` requests with HTTP 503 and `Retry-After: 1`.
    pub fn fail_next(&self, n: u32) {
        self.sink.fail_next.store(n, Ordering::SeqCst);
    }

    /// Requests received, failed ones included.
    pub fn requests(&self) -> u64 {
        self.sink.requests.load(Ordering::SeqCst)
    }

    /// Every message delivered, in order. Replays of a known idempotency key
    /// are not in it.
    pub fn delivered(&self) -> Vec<Delivered> {
        lock(&self.sink.delivered).clone()
    }

    /// How many messages each HCP received.
    pub fn per_hcp(&self) -> HashMap<String, u32> {
        let mut counts = HashMap::new();
        for d in lock(&self.sink.delivered).iter() {
            *counts.entry(d.hcp_id.clone()).or_insert(0) += 1;
        }
        counts
    }

    /// The raw JSON bodies of the requests, in order.
    pub fn bodies(&self) -> Vec<Value> {
        lock(&self.sink.bodies).clone()
    }
}

impl Drop for MailSink {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[derive(Deserialize)]
struct Batch {
    messages: Vec<Incoming>,
}

#[derive(Deserialize)]
struct Incoming {
    idempotency_key: String,
    to: String,
    subject: Option<String>,
    text: String,
    #[serde(default)]
    metadata: Metadata,
}

#[derive(Deserialize, Default)]
struct Metadata {
    #[serde(default)]
    hcp_id: String,
    #[serde(default)]
    dispatch_id: String,
}

async fn messages(
    State(sink): State<Arc<Sink>>,
    _headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    sink.requests.fetch_add(1, Ordering::SeqCst);
    let failing = sink
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [("retry-after", "1")],
            "try again later",
        )
            .into_response();
    }
    let raw: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("invalid JSON: {e}")).into_response(),
    };
    lock(&sink.bodies).push(raw.clone());
    let batch: Batch = match serde_json::from_value(raw) {
        Ok(b) => b,
        Err(e) => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("invalid batch: {e}"),
            )
                .into_response();
        }
    };
    let mut results = Vec::with_capacity(batch.messages.len());
    for m in batch.messages {
        if !m.to.contains('@') {
            results.push(json!({
                "idempotency_key": m.idempotency_key,
                "status": "rejected",
                "error": "invalid recipient address",
                "retryable": false,
            }));
            continue;
        }
        let mut by_key = lock(&sink.by_key);
        let message_id = match by_key.get(&m.idempotency_key) {
            Some(id) => id.clone(),
            None => {
                let id = format!("msg-{}", sink.next_id.fetch_add(1, Ordering::SeqCst) + 1);
                by_key.insert(m.idempotency_key.clone(), id.clone());
                lock(&sink.delivered).push(Delivered {
                    message_id: id.clone(),
                    idempotency_key: m.idempotency_key.clone(),
                    hcp_id: m.metadata.hcp_id,
                    dispatch_id: m.metadata.dispatch_id,
                    to: m.to,
                    subject: m.subject,
                    text: m.text,
                });
                id
            }
        };
        results.push(json!({
            "idempotency_key": m.idempotency_key,
            "status": "accepted",
            "message_id": message_id,
        }));
    }
    Json(json!({ "results": results })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(sink: &MailSink, body: Value) -> (u16, Value) {
        let r = reqwest::blocking::Client::new()
            .post(sink.endpoint())
            .json(&body)
            .send()
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }

    fn message(key: &str, hcp: &str) -> Value {
        json!({"idempotency_key": key, "to": "dr@clinic.example", "text": "hello",
               "metadata": {"hcp_id": hcp, "dispatch_id": key}})
    }

    #[test]
    fn a_replayed_idempotency_key_is_answered_but_not_delivered_again() {
        let sink = MailSink::start().unwrap();
        let (s1, r1) = post(
            &sink,
            json!({"messages": [message("k1", "h1"), message("k2", "h2")]}),
        );
        let (s2, r2) = post(&sink, json!({"messages": [message("k1", "h1")]}));
        assert_eq!((s1, s2), (200, 200));
        assert_eq!(
            r1["results"][0]["message_id"],
            r2["results"][0]["message_id"]
        );
        assert_eq!(sink.delivered().len(), 2);
        assert_eq!(sink.per_hcp()["h1"], 1);
    }

    #[test]
    fn failing_requests_get_503_then_service_resumes() {
        let sink = MailSink::start().unwrap();
        sink.fail_next(1);
        assert_eq!(
            post(&sink, json!({"messages": [message("k1", "h1")]})).0,
            503
        );
        assert_eq!(
            post(&sink, json!({"messages": [message("k1", "h1")]})).0,
            200
        );
        assert_eq!(sink.requests(), 2);
        assert_eq!(sink.delivered().len(), 1);
    }
}
