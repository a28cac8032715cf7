//! The integrity check on plugin egress: what a channel adapter puts into
//! its outgoing HTTP request must belong to a dispatch the gate allowed and
//! carry no human-visible text the gate did not see.
//!
//! Before calling an adapter's `deliver`, the host *clears* each dispatch of
//! the batch here with the exact texts the gate screened, the recipient
//! fields the adapter was given and the dispatch's ids. The runtime's egress
//! hook then calls [`Clearance::check`] for every request the plugin makes:
//!
//! - only `deliver` may send a body, and only for dispatches cleared here;
//! - the request must name at least one of the batch's dispatches (its id or
//!   idempotency key), so it belongs to an allowed dispatch;
//! - every string it carries (JSON strings and keys, form fields, query
//!   parameters, non-transport headers, or the whole body when it is
//!   neither JSON nor a form) must be one of: a screened text or a piece of
//!   one, a recipient field or id of the batch, a value of the plugin's own
//!   configuration (reviewed by the operator), or an opaque token (no
//!   spaces, at most 128 bytes, a digit in it, no run of more than eight
//!   letters: ids, hashes, timestamps).
//!
//! Anything else is refused before a byte leaves, and the plugin sees the
//! request denied. The refusal names the offending field by position, never
//! its value (it may hold contact details).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

/// One dispatch the gate allowed, as the adapter will see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cleared {
    /// The dispatch id.
    pub dispatch_id: String,
    /// Its idempotency key.
    pub idempotency_key: String,
    /// The texts the gate screened (every part, exactly as sent).
    pub texts: Vec<String>,
    /// Other values the adapter was handed for it: HCP id, the granted
    /// recipient fields, content version id and hash, channel.
    pub values: Vec<String>,
}

/// Dispatches cleared for delivery, and each plugin's configuration values.
#[derive(Debug, Default)]
pub struct Clearance {
    cleared: Mutex<HashMap<String, Arc<Cleared>>>,
    plugin_values: RwLock<HashMap<String, HashSet<String>>>,
}

/// Transport headers whose values carry no message text.
const TRANSPORT_HEADERS: [&str; 12] = [
    "accept",
    "accept-encoding",
    "authorization",
    "connection",
    "content-length",
    "content-type",
    "host",
    "idempotency-key",
    "transfer-encoding",
    "user-agent",
    "x-idempotency-key",
    "x-request-id",
];

fn is_opaque(s: &str) -> bool {
    if s.len() > 128 || s.chars().any(char::is_whitespace) || !s.chars().any(|c| c.is_ascii_digit())
    {
        return false;
    }
    let mut run = 0;
    for c in s.chars() {
        if c.is_alphabetic() {
            run += 1;
            if run > 8 {
                return false;
            }
        } else {
            run = 0;
        }
    }
    true
}

/// Whether `piece` occurs in `text` with word boundaries on both sides
/// (so "cures" is not a piece of "secures").
fn contains_piece(text: &str, piece: &str) -> bool {
    let alnum_at = |i: usize, before: bool| {
        let c = if before {
            text[..i].chars().next_back()
        } else {
            text[i..].chars().next()
        };
        c.is_some_and(char::is_alphanumeric)
    };
    let first = piece.chars().next().is_some_and(char::is_alphanumeric);
    let last = piece.chars().next_back().is_some_and(char::is_alphanumeric);
    text.match_indices(piece)
        .any(|(i, _)| !(first && alnum_at(i, true) || last && alnum_at(i + piece.len(), false)))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The pieces of a request to check.
#[derive(Debug, Clone, Copy)]
pub struct Outbound<'a> {
    /// The plugin sending it.
    pub plugin: &'a str,
    /// The exported function running (`deliver`, `parse-webhook`, ...).
    pub call: &'a str,
    /// The dispatch ids of the batch being delivered.
    pub dispatch_ids: &'a [String],
    /// The query string, if any (without `?`).
    pub query: Option<&'a str>,
    /// The headers, as name and value.
    pub headers: &'a [(&'a str, &'a [u8])],
    /// The body.
    pub body: &'a [u8],
}

impl Clearance {
    /// An empty clearance: nothing may be sent.
    pub fn new() -> Arc<Clearance> {
        Arc::new(Clearance::default())
    }

    /// Clears dispatches for delivery.
    pub fn clear(&self, dispatches: impl IntoIterator<Item = Cleared>) {
        let mut map = lock(&self.cleared);
        for d in dispatches {
            map.insert(d.dispatch_id.clone(), Arc::new(d));
        }
    }

    /// Withdraws clearance (after the adapter returned).
    pub fn release<'a>(&self, dispatch_ids: impl IntoIterator<Item = &'a str>) {
        let mut map = lock(&self.cleared);
        for id in dispatch_ids {
            map.remove(id);
        }
    }

    /// How many dispatches are cleared now.
    pub fn cleared_count(&self) -> usize {
        lock(&self.cleared).len()
    }

    /// Records a plugin's configuration values (strings an operator wrote
    /// into its manifest: sender name, endpoint, keys).
    pub fn set_plugin_values(&self, plugin: &str, values: impl IntoIterator<Item = String>) {
        let mut map = self
            .plugin_values
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.insert(plugin.to_owned(), values.into_iter().collect());
    }

    /// Checks one outgoing request; `Err` says why it may not leave.
    ///
    /// # Errors
    ///
    /// The reason, naming the offending field by its position and never
    /// quoting its value.
    pub fn check(&self, out: &Outbound<'_>) -> Result<(), String> {
        if out.call != "deliver" {
            if out.body.is_empty() && out.query.is_none_or(str::is_empty) {
                return Ok(());
            }
            return Err(format!(
                "only `deliver` may send data; `{}` tried to send a body or query",
                out.call
            ));
        }
        if out.dispatch_ids.is_empty() {
            return Err("the request belongs to no dispatch".into());
        }
        let batch: Vec<Arc<Cleared>> = {
            let map = lock(&self.cleared);
            let mut batch = Vec::new();
            for id in out.dispatch_ids {
                match map.get(id) {
                    Some(c) => batch.push(c.clone()),
                    None => {
                        return Err(format!("dispatch `{id}` was not allowed by the gate"));
                    }
                }
            }
            batch
        };
        let config = self
            .plugin_values
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(out.plugin)
            .cloned()
            .unwrap_or_default();
        // Hashed with foldhash: the set holds whole message texts, and
        // SipHash over them was most of the check's time.
        let exact: HashSet<&str, FastHash> = batch
            .iter()
            .flat_map(|c| {
                c.values
                    .iter()
                    .chain(c.texts.iter())
                    .map(String::as_str)
                    .chain([c.dispatch_id.as_str(), c.idempotency_key.as_str()])
            })
            .chain(config.iter().map(String::as_str))
            .collect();
        let ids: HashSet<&str, FastHash> = batch
            .iter()
            .flat_map(|c| [c.dispatch_id.as_str(), c.idempotency_key.as_str()])
            .collect();
        let texts: Vec<&str> = batch
            .iter()
            .flat_map(|c| c.texts.iter().map(String::as_str))
            .collect();
        let allowed = |s: &str| {
            s.is_empty()
                || exact.contains(s)
                || is_opaque(s)
                || texts.iter().any(|t| contains_piece(t, s))
                || config.iter().any(|c| contains_piece(c, s))
        };
        // Every string the request carries, in order: whether one names a
        // dispatch of the batch, and the first one not allowed (its place
        // is put into words only then).
        let mut belongs = false;
        let mut refused: Option<String> = None;
        let mut visit = |place: &dyn Fn() -> String, s: &str| {
            belongs = belongs || ids.contains(s);
            if refused.is_none() && !allowed(s) {
                refused = Some(format!(
                    "{} carries text the gate did not screen ({} characters)",
                    place(),
                    s.chars().count()
                ));
            }
        };
        let body = std::str::from_utf8(out.body)
            .map_err(|_| "the body is not UTF-8 text, so it cannot be checked".to_owned())?;
        let content_type = out
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| String::from_utf8_lossy(v).to_ascii_lowercase())
            .unwrap_or_default();
        if !body.is_empty() {
            if let Ok(json) = serde_json::from_str::<serde_json::Value>(body) {
                walk_json(&json, &mut Vec::new(), &mut visit);
            } else if content_type.starts_with("application/x-www-form-urlencoded") {
                for (k, v) in form_urlencoded::parse(body.as_bytes()) {
                    visit(&|| format!("form field `{k}` (name)"), &k);
                    visit(&|| format!("form field `{k}`"), &v);
                }
            } else {
                visit(&|| "body".into(), body);
            }
        }
        if let Some(q) = out.query {
            for (k, v) in form_urlencoded::parse(q.as_bytes()) {
                visit(&|| format!("query parameter `{k}` (name)"), &k);
                visit(&|| format!("query parameter `{k}`"), &v);
            }
        }
        for (name, value) in out.headers {
            if TRANSPORT_HEADERS
                .iter()
                .any(|h| name.eq_ignore_ascii_case(h))
            {
                continue;
            }
            let v = String::from_utf8_lossy(value);
            visit(&|| format!("header `{name}`"), &v);
        }
        let belongs = belongs
            || out
                .headers
                .iter()
                .any(|(_, v)| std::str::from_utf8(v).is_ok_and(|v| ids.contains(v)));
        if !belongs {
            return Err("the request names none of the dispatches the gate allowed".into());
        }
        match refused {
            Some(reason) => Err(reason),
            None => Ok(()),
        }
    }
}

type FastHash = foldhash::fast::RandomState;

/// A step of a path into a JSON document.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

fn json_path(path: &[Step<'_>]) -> String {
    let mut out = String::from("body");
    for step in path {
        match step {
            Step::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Visits every string of a JSON document (values, and keys that are not
/// plain identifiers) with its place, in document order.
fn walk_json<'a>(
    v: &'a serde_json::Value,
    path: &mut Vec<Step<'a>>,
    visit: &mut dyn FnMut(&dyn Fn() -> String, &str),
) {
    match v {
        serde_json::Value::String(s) => {
            visit(&|| format!("JSON value at `{}`", json_path(path)), s);
        }
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                path.push(Step::Index(i));
                walk_json(x, path, visit);
                path.pop();
            }
        }
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                let key_ok = k.len() <= 64
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
                if !key_ok {
                    visit(&|| format!("JSON key at `{}`", json_path(path)), k);
                }
                path.push(Step::Key(k));
                walk_json(x, path, visit);
                path.pop();
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clearance() -> Arc<Clearance> {
        let c = Clearance::new();
        c.clear([Cleared {
            dispatch_id: "d-1".into(),
            idempotency_key: "camp-1:hcp-1:1".into(),
            texts: vec!["Dear Dr. Li, new data [1].".into(), "New data".into()],
            values: vec!["hcp-1".into(), "li@example.org".into()],
        }]);
        c.set_plugin_values("email", ["Cardiozen Medical <med@example.com>".to_owned()]);
        c
    }

    fn out<'a>(body: &'a str, ids: &'a [String]) -> Outbound<'a> {
        Outbound {
            plugin: "email",
            call: "deliver",
            dispatch_ids: ids,
            query: None,
            headers: &[("content-type", b"application/json")],
            body: body.as_bytes(),
        }
    }

    #[test]
    fn a_body_made_of_cleared_texts_ids_and_config_passes() {
        let c = clearance();
        let ids = vec!["d-1".to_owned()];
        let body = r#"{"messages":[{"idempotency_key":"camp-1:hcp-1:1","to":"li@example.org",
            "from":"Cardiozen Medical <med@example.com>","subject":"New data",
            "text":"Dear Dr. Li, new data [1].","html":null,"n":3,
            "metadata":{"dispatch_id":"d-1","hcp_id":"hcp-1","sent_at":"1700000000000"}}]}"#;
        assert_eq!(c.check(&out(body, &ids)), Ok(()));
    }

    #[test]
    fn added_text_is_refused_without_quoting_it() {
        let c = clearance();
        let ids = vec!["d-1".to_owned()];
        let body = r#"{"idempotency_key":"camp-1:hcp-1:1","text":"Dear Dr. Li, new data [1]. Cures everything!"}"#;
        let err = c.check(&out(body, &ids)).unwrap_err();
        assert!(err.contains("body.text"), "{err}");
        assert!(!err.contains("Cures"), "{err}");
        // A single word is text too.
        let body = r#"{"idempotency_key":"camp-1:hcp-1:1","footer":"guaranteed"}"#;
        assert!(c.check(&out(body, &ids)).is_err());
    }

    #[test]
    fn uncleared_dispatches_and_unrelated_requests_are_refused() {
        let c = clearance();
        let other = vec!["d-2".to_owned()];
        assert!(c.check(&out("{}", &other)).unwrap_err().contains("d-2"));
        let ids = vec!["d-1".to_owned()];
        let err = c
            .check(&out(r#"{"subject":"New data"}"#, &ids))
            .unwrap_err();
        assert!(err.contains("names none"), "{err}");
        c.release(["d-1"]);
        let body = r#"{"idempotency_key":"camp-1:hcp-1:1"}"#;
        assert!(c.check(&out(body, &ids)).is_err());
    }

    #[test]
    fn plain_bodies_headers_and_queries_are_checked_too() {
        let c = clearance();
        let ids = vec!["d-1".to_owned()];
        let mut o = out("Dear Dr. Li, new data [1].", &ids);
        o.headers = &[("content-type", b"text/plain"), ("x-dispatch", b"d-1")];
        assert_eq!(c.check(&o), Ok(()));
        o.headers = &[("x-dispatch", b"d-1"), ("x-note", b"100% effective")];
        assert!(c.check(&o).unwrap_err().contains("x-note"));
        o.headers = &[("x-dispatch", b"d-1")];
        o.query = Some("promo=best+in+class");
        assert!(c.check(&o).unwrap_err().contains("promo"));
    }

    #[test]
    fn the_first_refused_string_is_named_by_its_place() {
        let c = clearance();
        let ids = vec!["d-1".to_owned()];
        // Nested arrays and objects (keys in order); the second bad string
        // is not named.
        let body = r#"{"messages":[{"idempotency_key":"camp-1:hcp-1:1","text":"New data"},
            {"parts":["New data","best in class"],"z":"no side effects"}]}"#;
        assert_eq!(
            c.check(&out(body, &ids)).unwrap_err(),
            "JSON value at `body.messages[1].parts[1]` carries text the gate did not screen (13 characters)"
        );
        // A key that is not an identifier is text too, named by its parent.
        let body = r#"{"idempotency_key":"camp-1:hcp-1:1","m":{"cures all":1}}"#;
        assert_eq!(
            c.check(&out(body, &ids)).unwrap_err(),
            "JSON key at `body.m` carries text the gate did not screen (9 characters)"
        );
        // A request naming no dispatch is refused as such, before any text.
        let body = r#"{"text":"best in class"}"#;
        assert!(
            c.check(&out(body, &ids))
                .unwrap_err()
                .contains("names none")
        );
    }

    #[test]
    fn calls_other_than_deliver_may_not_send_data() {
        let c = clearance();
        let mut o = out("{\"x\":1}", &[]);
        o.call = "parse-webhook";
        assert!(c.check(&o).is_err());
        o.body = b"";
        assert_eq!(c.check(&o), Ok(()));
    }

    #[test]
    fn pieces_of_screened_text_must_be_whole_words() {
        assert!(contains_piece("It secures the dose.", "the dose"));
        assert!(!contains_piece("It secures the dose.", "cures"));
        assert!(contains_piece("Dear Dr. Li,", "Dr. Li"));
    }

    #[test]
    fn opaque_tokens_are_ids_not_words() {
        assert!(is_opaque("0195f3a2-7c1d-7b3e-9f00-1a2b3c4d5e6f"));
        assert!(is_opaque("1700000000000"));
        assert!(!is_opaque("guaranteed"));
        assert!(!is_opaque("cure all"));
        assert!(!is_opaque("effective100"));
    }
}
