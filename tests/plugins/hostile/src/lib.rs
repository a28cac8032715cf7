//! A channel adapter that misbehaves on purpose, for the sandbox tests. Its
//! `deliver` does what the `mode` config key says:
//!
//! - `good`: answers every message with a receipt;
//! - `loop`: spins forever;
//! - `alloc`: allocates 64 MiB at a time until it has 4 GiB;
//! - `recursion`: recurses without end;
//! - `panic`: panics, with the recipient's e-mail address in the message;
//! - `egress`: sends an HTTP request to the `target` config URL (a host its
//!   manifest does not allow);
//! - `file`: tries to read `/etc/passwd` and any preopened directory;
//! - `env`: tries to read environment variables and arguments;
//! - `slow`: busy-waits `delay_ms` then answers like `good`;
//! - `fields`: reports which recipient fields it was given;
//! - `wrong-count`: returns one result fewer than it was given.
//!
//! Anything the sandbox lets through is reported back in the receipt's
//! provider message id, so a test sees it.

#[allow(
    missing_docs,
    unsafe_code,
    reason = "generated from the WIT, which is documented"
)]
mod wit {
    wit_bindgen::generate!({
        path: "../../../wit",
        world: "omnigate:plugin/channel-adapter",
    });
}

use wasip2::http::types::{ErrorCode, Fields, Method, OutgoingRequest, Scheme};
use wit::exports::omnigate::plugin::delivery::Guest;
use wit::omnigate::plugin::config;
use wit::omnigate::plugin::types::{
    Channel, DeliveryReceipt, EngagementEvent, Message, PluginError, PluginInfo, WebhookRequest,
};

struct Hostile;

fn receipts(messages: &[Message], note: &str) -> Vec<Result<DeliveryReceipt, PluginError>> {
    messages
        .iter()
        .map(|m| {
            Ok(DeliveryReceipt {
                dispatch_id: m.dispatch_id.clone(),
                provider_message_id: format!("{note}:{}", m.dispatch_id),
            })
        })
        .collect()
}

fn all_err(messages: &[Message], e: PluginError) -> Vec<Result<DeliveryReceipt, PluginError>> {
    messages.iter().map(|_| Err(e.clone())).collect()
}

#[inline(never)]
#[allow(unconditional_recursion, reason = "runaway recursion is the point")]
fn recurse(depth: u64, pad: &mut [u8; 256]) -> u64 {
    pad[(depth % 256) as usize] = depth as u8;
    let mut next = *pad;
    recurse(depth + 1, &mut next).wrapping_add(u64::from(next[0]))
}

impl Guest for Hostile {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "hostile".into(),
            version: "0.1.0".into(),
            description: "misbehaves on purpose".into(),
            channels: vec![Channel::Email],
        }
    }

    fn deliver(messages: Vec<Message>) -> Vec<Result<DeliveryReceipt, PluginError>> {
        let mode = config::get("mode").unwrap_or_default();
        match mode.as_str() {
            "good" => receipts(&messages, "ok"),
            "loop" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                for _ in 0..64 {
                    let chunk = vec![1u8; 64 << 20];
                    hoard.push(std::hint::black_box(chunk));
                }
                receipts(&messages, &format!("allocated {} chunks", hoard.len()))
            }
            "recursion" => {
                let mut pad = [0u8; 256];
                let n = recurse(0, &mut pad);
                receipts(&messages, &n.to_string())
            }
            "panic" => {
                let address = messages
                    .first()
                    .and_then(|m| m.recipient.email.clone())
                    .unwrap_or_default();
                #[allow(clippy::panic, reason = "panicking is this mode's misbehaviour")]
                {
                    panic!("cannot deliver to {address}");
                }
            }
            "egress" => {
                let target = config::get("target").unwrap_or_default();
                match get(&target) {
                    Ok(status) => receipts(&messages, &format!("reached with status {status}")),
                    Err(ErrorCode::HttpRequestDenied) => all_err(
                        &messages,
                        PluginError::AccessDenied(format!("request to {target} denied")),
                    ),
                    Err(other) => {
                        all_err(&messages, PluginError::InvalidInput(format!("{other:?}")))
                    }
                }
            }
            "file" => {
                let mut leaked = Vec::new();
                if let Ok(text) = std::fs::read_to_string("/etc/passwd") {
                    leaked.push(format!("passwd:{}", text.len()));
                }
                for (_, path) in wasip2::filesystem::preopens::get_directories() {
                    leaked.push(format!("preopen:{path}"));
                }
                if leaked.is_empty() {
                    all_err(&messages, PluginError::AccessDenied("no filesystem".into()))
                } else {
                    receipts(&messages, &leaked.join(","))
                }
            }
            "env" => {
                let vars: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
                let args: Vec<String> = std::env::args().collect();
                if vars.is_empty() && args.is_empty() {
                    all_err(
                        &messages,
                        PluginError::AccessDenied("no environment".into()),
                    )
                } else {
                    receipts(&messages, &format!("vars:{vars:?} args:{args:?}"))
                }
            }
            "slow" => {
                let ms: u64 = config::get("delay_ms")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(200);
                let start = wasip2::clocks::monotonic_clock::now();
                while wasip2::clocks::monotonic_clock::now() - start < ms * 1_000_000 {
                    std::hint::spin_loop();
                }
                receipts(&messages, "slow")
            }
            "fields" => messages
                .iter()
                .map(|m| {
                    let r = &m.recipient;
                    let present = [
                        ("name", r.name.is_some()),
                        (
                            "specialty",
                            r.specialty.is_some() || r.specialty_code.is_some(),
                        ),
                        ("institution", r.institution.is_some()),
                        ("market", r.market.is_some()),
                        ("time-zone", r.time_zone.is_some()),
                        ("language", r.language.is_some()),
                        ("tags", r.tags.is_some()),
                        ("journey-stage", r.journey_stage.is_some()),
                        ("engagement", r.engagement.is_some()),
                        ("assigned-reps", r.assigned_reps.is_some()),
                        ("email", r.email.is_some()),
                        ("phone", r.phone.is_some()),
                        ("wechat-id", r.wechat_id.is_some()),
                    ];
                    let seen: Vec<&str> = present
                        .iter()
                        .filter(|(_, p)| *p)
                        .map(|(n, _)| *n)
                        .collect();
                    Ok(DeliveryReceipt {
                        dispatch_id: m.dispatch_id.clone(),
                        provider_message_id: format!("fields:{}", seen.join(",")),
                    })
                })
                .collect(),
            "wrong-count" => {
                let mut r = receipts(&messages, "ok");
                r.pop();
                r
            }
            other => all_err(
                &messages,
                PluginError::InvalidInput(format!("unknown mode `{other}`")),
            ),
        }
    }

    fn parse_webhook(_request: WebhookRequest) -> Result<Vec<EngagementEvent>, PluginError> {
        Ok(Vec::new())
    }
}

/// GET `url`; the status, or the error code.
fn get(url: &str) -> Result<u16, ErrorCode> {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    let _ = request.set_method(&Method::Get);
    let _ = request.set_scheme(Some(if scheme == "https" {
        &Scheme::Https
    } else {
        &Scheme::Http
    }));
    let _ = request.set_authority(Some(authority));
    let _ = request.set_path_with_query(Some(path));
    let pending = wasip2::http::outgoing_handler::handle(request, None)?;
    pending.subscribe().block();
    match pending.get() {
        Some(Ok(Ok(response))) => Ok(response.status()),
        Some(Ok(Err(code))) => Err(code),
        _ => Err(ErrorCode::InternalError(Some("lost".into()))),
    }
}

#[allow(unsafe_code, reason = "the export glue that wit-bindgen generates")]
mod export {
    use super::Hostile;
    crate::wit::export!(Hostile with_types_in crate::wit);
}
