//! The e-mail channel adapter, a `channel-adapter` plugin.
//!
//! `deliver` POSTs approved, gated messages as JSON to the provider endpoint
//! of its configuration, in batches of `batch_size`, each message with its
//! idempotency key. `parse-webhook` turns the provider's event callbacks into
//! engagement events, checking their HMAC signature when a `webhook_secret`
//! is configured. The wire format is in `plugins/email-adapter/README.md`.

mod http;

#[allow(
    missing_docs,
    unsafe_code,
    reason = "generated from the WIT, which is documented"
)]
mod wit {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "omnigate:plugin/channel-adapter",
    });
}

use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;
use wasip2::http::types::Method;

use wit::exports::omnigate::plugin::delivery::Guest;
use wit::omnigate::plugin::config;
use wit::omnigate::plugin::types::{
    Channel, DeliveryReceipt, EngagementEvent, EventKind, Message, PluginError, PluginInfo,
    UpstreamError, WebhookRequest,
};

const DEFAULT_BATCH: usize = 100;
const MAX_BATCH: usize = 1_000;

struct EmailAdapter;

type Outcome = Result<DeliveryReceipt, PluginError>;

impl Guest for EmailAdapter {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "email-adapter".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Delivers approved e-mail by HTTP POST (JSON) to a provider and parses its event callbacks".into(),
            channels: vec![Channel::Email],
        }
    }

    fn deliver(messages: Vec<Message>) -> Vec<Outcome> {
        let settings = match Settings::from_config() {
            Ok(s) => s,
            Err(e) => return messages.iter().map(|_| Err(e.clone())).collect(),
        };
        let mut outcomes: Vec<Option<Outcome>> = vec![None; messages.len()];
        // Messages that cannot go out are answered at once; the rest are sent
        // in batches.
        let mut sendable = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            match payload(m, &settings) {
                Ok(p) => sendable.push((i, p)),
                Err(e) => outcomes[i] = Some(Err(e)),
            }
        }
        for chunk in sendable.chunks(settings.batch_size) {
            let results = post_batch(&settings, chunk, &messages);
            for ((i, _), outcome) in chunk.iter().zip(results) {
                outcomes[*i] = Some(outcome);
            }
        }
        outcomes
            .into_iter()
            .map(|o| {
                o.unwrap_or_else(|| {
                    Err(PluginError::InvalidInput(
                        "message was not processed".into(),
                    ))
                })
            })
            .collect()
    }

    fn parse_webhook(request: WebhookRequest) -> Result<Vec<EngagementEvent>, PluginError> {
        if let Some(secret) = config::get("webhook_secret") {
            verify_signature(&secret, &request)?;
        }
        let body: WebhookBody = serde_json::from_slice(&request.body).map_err(|e| {
            PluginError::InvalidInput(format!("webhook body is not the expected JSON: {e}"))
        })?;
        body.events
            .into_iter()
            .enumerate()
            .map(|(i, e)| e.into_event(i))
            .collect()
    }
}

struct Settings {
    endpoint: http::Url,
    api_key: Option<String>,
    from: Option<String>,
    batch_size: usize,
}

impl Settings {
    fn from_config() -> Result<Settings, PluginError> {
        let endpoint = config::get("endpoint")
            .ok_or_else(|| PluginError::InvalidInput("config `endpoint` is not set".into()))?;
        let endpoint = http::Url::parse(&endpoint)
            .map_err(|e| PluginError::InvalidInput(format!("config `endpoint`: {e}")))?;
        let batch_size = match config::get("batch_size") {
            None => DEFAULT_BATCH,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_BATCH).contains(n))
                .ok_or_else(|| {
                    PluginError::InvalidInput(format!(
                        "config `batch_size` = `{v}` is not a number from 1 to {MAX_BATCH}"
                    ))
                })?,
        };
        Ok(Settings {
            endpoint,
            api_key: config::get("api_key"),
            from: config::get("from"),
            batch_size,
        })
    }
}

/// The provider's JSON for one message.
fn payload(m: &Message, settings: &Settings) -> Result<Value, PluginError> {
    if m.channel != Channel::Email {
        return Err(PluginError::InvalidInput(format!(
            "dispatch `{}` is for channel {:?}, not e-mail",
            m.dispatch_id, m.channel
        )));
    }
    // Never echo the address itself in an error: the host logs errors.
    let to = m
        .recipient
        .email
        .as_deref()
        .filter(|a| a.contains('@'))
        .ok_or_else(|| {
            PluginError::InvalidInput(format!(
                "HCP `{}` has no usable e-mail address (is `email` granted and on file?)",
                m.recipient.id
            ))
        })?;
    let p = &m.parts;
    Ok(json!({
        "idempotency_key": m.idempotency_key,
        "to": to,
        "from": settings.from,
        "subject": p.subject,
        "preheader": p.preheader,
        "text": p.body_text,
        "html": p.body_html,
        "cta": p.call_to_action.as_ref().map(|l| json!({"text": l.text, "url": l.url})),
        "disclaimers": p.disclaimers,
        "metadata": {
            "dispatch_id": m.dispatch_id,
            "hcp_id": m.recipient.id,
            "content_version_id": m.content_version_id,
            "content_sha256": m.content_sha256,
        },
    }))
}

#[derive(Deserialize)]
struct BatchResponse {
    results: Vec<ProviderResult>,
}

#[derive(Deserialize)]
struct ProviderResult {
    idempotency_key: String,
    status: String,
    message_id: Option<String>,
    error: Option<String>,
    #[serde(default)]
    retryable: bool,
}

fn upstream(message: String, retryable: bool, retry_after_ms: Option<u32>) -> PluginError {
    PluginError::Upstream(UpstreamError {
        message,
        retryable,
        retry_after_ms,
    })
}

/// Sends one batch; returns one outcome per message of `chunk`.
fn post_batch(settings: &Settings, chunk: &[(usize, Value)], messages: &[Message]) -> Vec<Outcome> {
    let all = |e: PluginError| chunk.iter().map(|_| Err(e.clone())).collect::<Vec<_>>();
    let body = json!({ "messages": chunk.iter().map(|(_, p)| p).collect::<Vec<_>>() }).to_string();
    let auth = settings.api_key.as_ref().map(|k| format!("Bearer {k}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(auth) = &auth {
        headers.push(("authorization", auth.as_str()));
    }
    let response = match http::send(Method::Post, &settings.endpoint, &headers, body.as_bytes()) {
        Ok(r) => r,
        Err(http::Failure::Denied) => {
            return all(PluginError::AccessDenied(
                "the host refused the request to the provider endpoint (is it in allowed_outbound_hosts?)".into(),
            ));
        }
        Err(http::Failure::Transport { message, retryable }) => {
            return all(upstream(
                format!("provider unreachable: {message}"),
                retryable,
                None,
            ));
        }
    };
    if !(200..300).contains(&response.status) {
        let retryable = response.status == 429 || response.status >= 500;
        let retry_after_ms = response
            .header("retry-after")
            .and_then(|s| s.trim().parse::<u32>().ok())
            .map(|secs| secs.saturating_mul(1000));
        return all(upstream(
            format!("provider answered HTTP {}", response.status),
            retryable,
            retry_after_ms,
        ));
    }
    let parsed: BatchResponse = match serde_json::from_slice(&response.body) {
        Ok(p) => p,
        Err(e) => {
            return all(upstream(
                format!("provider response is not the expected JSON: {e}"),
                false,
                None,
            ));
        }
    };
    chunk
        .iter()
        .map(|(i, _)| {
            let m = &messages[*i];
            match parsed
                .results
                .iter()
                .find(|r| r.idempotency_key == m.idempotency_key)
            {
                None => Err(upstream(
                    format!(
                        "provider returned no result for dispatch `{}`",
                        m.dispatch_id
                    ),
                    true,
                    None,
                )),
                Some(r) if r.status == "accepted" => match &r.message_id {
                    Some(id) if !id.is_empty() => Ok(DeliveryReceipt {
                        dispatch_id: m.dispatch_id.clone(),
                        provider_message_id: id.clone(),
                    }),
                    _ => Err(upstream(
                        "provider accepted without a message id".into(),
                        false,
                        None,
                    )),
                },
                Some(r) => Err(upstream(
                    format!(
                        "provider rejected dispatch `{}`: {}",
                        m.dispatch_id,
                        r.error.as_deref().unwrap_or(&r.status)
                    ),
                    r.retryable,
                    None,
                )),
            }
        })
        .collect()
}

fn verify_signature(secret: &str, request: &WebhookRequest) -> Result<(), PluginError> {
    let given = request
        .headers
        .iter()
        .find(|(n, _)| n == "x-omnigate-signature")
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| {
            PluginError::AccessDenied("webhook has no x-omnigate-signature header".into())
        })?;
    let hex_sig = given.strip_prefix("sha256=").unwrap_or(given);
    let sig = hex::decode(hex_sig)
        .map_err(|_| PluginError::AccessDenied("webhook signature is not hex".into()))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|_| PluginError::InvalidInput("config `webhook_secret` is unusable".into()))?;
    mac.update(&request.body);
    mac.verify_slice(&sig)
        .map_err(|_| PluginError::AccessDenied("webhook signature does not match".into()))
}

#[derive(Deserialize)]
struct WebhookBody {
    events: Vec<ProviderEvent>,
}

#[derive(Deserialize)]
struct ProviderEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    timestamp_ms: i64,
    message_id: Option<String>,
    dispatch_id: Option<String>,
    hcp_id: Option<String>,
    url: Option<String>,
    reason: Option<String>,
}

impl ProviderEvent {
    fn into_event(self, index: usize) -> Result<EngagementEvent, PluginError> {
        let kind = match self.kind.as_str() {
            "delivered" => EventKind::Delivered,
            "opened" | "open" => EventKind::Opened,
            "clicked" | "click" => EventKind::Clicked,
            "bounced" | "bounce" => EventKind::Bounced,
            "unsubscribed" | "unsubscribe" => EventKind::Unsubscribed,
            "complained" | "spam" => EventKind::Complained,
            other => {
                return Err(PluginError::InvalidInput(format!(
                    "event {index} has unknown type `{other}` (expected delivered, opened, clicked, bounced, unsubscribed or complained)"
                )));
            }
        };
        if self.id.is_empty() {
            return Err(PluginError::InvalidInput(format!(
                "event {index} has an empty id"
            )));
        }
        Ok(EngagementEvent {
            event_id: self.id,
            kind,
            channel: Channel::Email,
            occurred_at_ms: self.timestamp_ms,
            provider_message_id: self.message_id,
            dispatch_id: self.dispatch_id,
            hcp_id: self.hcp_id,
            detail: self.url.or(self.reason),
        })
    }
}

#[allow(unsafe_code, reason = "the export glue that wit-bindgen generates")]
mod export {
    use super::EmailAdapter;
    crate::wit::export!(EmailAdapter with_types_in crate::wit);
}
