//! Reading what users send into the domain types, with every problem located:
//! JSON lines (files, standard input) for the command line, arrays inside a
//! JSON request body for the HTTP API.
//!
//! Each item is checked completely here, before anything is stored: field
//! types and names (unknown fields are refused, so a misspelt field is never
//! silently dropped), enumerations (`channel`, `status`, event `type`, ...)
//! with the allowed values listed, and the schema of each event type.
//!
//! INVARIANT: messages never echo contact details: contact fields are never
//! echoed, and any other echoed value passes through
//! [`omnigate_core::redact::redact`].

use std::io::BufRead;
use std::str::FromStr;

use omnigate_core::consent::{ConsentScope, ConsentSource, ConsentStatus, NewConsent, Purpose};
use omnigate_core::content::ContentBody;
use omnigate_core::event::{EventError, EventType, NewEvent, UnixMillis, now_millis};
use omnigate_core::hcp::{ContactDetails, LicenceStatus, Specialty};
use omnigate_core::redact::redact;
use omnigate_core::template::{PersonalField, Template};
use omnigate_core::{Channel, HcpField, HcpId, HcpProfile};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::{Location, ServiceError, ServiceResult};

/// Items one call may carry. The command line splits longer files itself.
pub const MAX_BATCH_ITEMS: usize = 10_000;

/// The earliest time accepted (2000-01-01T00:00:00Z, in milliseconds): an
/// earlier value is almost always seconds given where milliseconds are
/// expected.
pub const EARLIEST_MILLIS: UnixMillis = 946_684_800_000;

/// How far in the future a time may lie (clock skew between systems): one
/// day. A consent statement dated later would override newer ones for that
/// long.
pub const FUTURE_SLACK_MILLIS: UnixMillis = 86_400_000;

/// Where the items of a batch came from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    Lines { file: String, lines: Vec<usize> },
    Array { document: String, path: String },
}

/// Parsed items with where each came from, so that a problem found later
/// (an unknown HCP, found by the store) still names its line or JSON path.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch<T> {
    items: Vec<T>,
    origin: Origin,
}

impl<T> Batch<T> {
    /// The items, in input order.
    pub fn items(&self) -> &[T] {
        &self.items
    }

    /// How many items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Where item `index` came from.
    pub fn locate(&self, index: usize) -> Location {
        match &self.origin {
            Origin::Lines { file, lines } => Location::Line {
                file: file.clone(),
                line: lines.get(index).copied().unwrap_or_default(),
                path: "$".into(),
            },
            Origin::Array { document, path } => Location::Document {
                name: document.clone(),
                path: format!("{path}[{index}]"),
            },
        }
    }

    /// Where the first item for which `pred` holds came from.
    pub(crate) fn locate_first(&self, pred: impl Fn(&T) -> bool) -> Option<Location> {
        self.items.iter().position(pred).map(|i| self.locate(i))
    }

    /// Refuses a batch longer than [`MAX_BATCH_ITEMS`].
    pub fn check_size(&self) -> ServiceResult<()> {
        if self.items.len() > MAX_BATCH_ITEMS {
            return Err(ServiceError::TooLarge {
                message: format!(
                    "a batch may carry at most {MAX_BATCH_ITEMS} items, this one has {}; split it",
                    self.items.len()
                ),
            });
        }
        Ok(())
    }
}

/// Parses the items of a JSON array found at `path` (e.g. `$.records`) in
/// `document` (e.g. `request body`).
///
/// # Errors
///
/// The first item that does not parse, located by its JSON path.
pub fn parse_array<T>(
    document: &str,
    path: &str,
    items: Vec<Value>,
    parse: impl Fn(Value, &Location) -> ServiceResult<T>,
) -> ServiceResult<Batch<T>> {
    let mut batch = Batch {
        items: Vec::with_capacity(items.len()),
        origin: Origin::Array {
            document: document.to_owned(),
            path: path.to_owned(),
        },
    };
    for (i, v) in items.into_iter().enumerate() {
        let at = batch.locate(i);
        batch.items.push(parse(v, &at)?);
    }
    Ok(batch)
}

/// Reads JSON lines: one JSON object per line, blank lines skipped.
/// `progress` is called with the bytes read so far after each line.
///
/// # Errors
///
/// The first line that cannot be read or parsed, by its number.
pub fn read_json_lines<T>(
    reader: impl BufRead,
    file: &str,
    mut parse: impl FnMut(Value, &Location) -> ServiceResult<T>,
    progress: &mut dyn FnMut(u64),
) -> ServiceResult<Batch<T>> {
    let mut items = Vec::new();
    let mut lines = Vec::new();
    let mut read = 0u64;
    for (i, line) in reader.lines().enumerate() {
        let n = i + 1;
        let at = Location::Line {
            file: file.to_owned(),
            line: n,
            path: "$".into(),
        };
        let line =
            line.map_err(|e| ServiceError::invalid(at.clone(), format!("cannot read: {e}")))?;
        read += line.len() as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(&line).map_err(|e| {
            // serde_json's syntax errors name a position, not the input.
            ServiceError::invalid(at.clone(), format!("not valid JSON: {e}"))
        })?;
        items.push(parse(value, &at)?);
        lines.push(n);
        progress(read);
    }
    Ok(Batch {
        items,
        origin: Origin::Lines {
            file: file.to_owned(),
            lines,
        },
    })
}

/// The JSON path of a serde error's position, relative (`.contact.email`,
/// `[2]`; empty at the top).
fn path_of(p: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in p.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => {
                let plain = !key.is_empty()
                    && key
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if plain {
                    out.push('.');
                    out.push_str(key);
                } else {
                    out.push_str(&format!("[{:?}]", redact(key)));
                }
            }
            Segment::Enum { variant } => {
                out.push('.');
                out.push_str(variant);
            }
            Segment::Unknown => out.push_str(".?"),
        }
    }
    out
}

/// Deserializes `v` as `T`, naming the JSON path of the first problem.
fn typed<T: DeserializeOwned>(v: Value, at: &Location) -> ServiceResult<T> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let at = at.child(&path_of(e.path()));
        ServiceError::invalid_value(at, &e.into_inner().to_string())
    })
}

/// Refuses a JSON value that is not an object, before field-by-field
/// parsing gives a less helpful message.
fn object(v: &Value, at: &Location, what: &str) -> ServiceResult<()> {
    if v.is_object() {
        Ok(())
    } else {
        Err(ServiceError::invalid(
            at.clone(),
            format!("expected {what} (a JSON object)"),
        ))
    }
}

fn not_blank(s: &str, at: &Location, field: &str) -> ServiceResult<()> {
    if s.trim().is_empty() {
        return Err(ServiceError::invalid(
            at.child(field),
            format!("`{field}` must not be empty"),
        ));
    }
    Ok(())
}

/// Parses a name with its `FromStr`, whose error lists the allowed values.
fn name<T: FromStr>(s: &str, at: &Location, field: &str) -> ServiceResult<T>
where
    T::Err: std::fmt::Display,
{
    s.parse()
        .map_err(|e: T::Err| ServiceError::invalid_value(at.child(field), &e.to_string()))
}

/// Checks a time in milliseconds.
fn time(ms: UnixMillis, at: &Location, field: &str) -> ServiceResult<UnixMillis> {
    if ms < EARLIEST_MILLIS {
        return Err(ServiceError::invalid(
            at.child(field),
            format!(
                "`{field}` is {ms}, before 2000-01-01; times are milliseconds since the Unix epoch (seconds given?)"
            ),
        ));
    }
    if ms > now_millis() + FUTURE_SLACK_MILLIS {
        return Err(ServiceError::invalid(
            at.child(field),
            format!("`{field}` is {ms}, more than a day in the future"),
        ));
    }
    Ok(ms)
}

/// An HCP id, echoed only redacted (it may be a pasted e-mail address).
pub fn hcp_id(s: &str, at: &Location) -> ServiceResult<HcpId> {
    HcpId::new(s).map_err(|e| ServiceError::invalid(at.clone(), e.to_string()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecialtyIn {
    code: String,
    label: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ContactIn {
    email: Option<String>,
    phone: Option<String>,
    wechat_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileIn {
    id: String,
    name: String,
    specialty: Option<SpecialtyIn>,
    institution: Option<String>,
    market: String,
    time_zone: Option<String>,
    language: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    licence: Option<String>,
    #[serde(default)]
    assigned_reps: Vec<String>,
    contact: Option<ContactIn>,
}

fn licence(s: &str, at: &Location) -> ServiceResult<LicenceStatus> {
    match s {
        "active" => Ok(LicenceStatus::Active),
        "inactive" => Ok(LicenceStatus::Inactive),
        "suspended" => Ok(LicenceStatus::Suspended),
        "unknown" => Ok(LicenceStatus::Unknown),
        other => Err(ServiceError::invalid_value(
            at.child("licence"),
            &format!(
                "unknown licence status `{other}` (expected one of: active, inactive, suspended, unknown)"
            ),
        )),
    }
}

/// Checks the shape of the contact details without ever echoing them.
fn contact(c: ContactIn, at: &Location) -> ServiceResult<ContactDetails> {
    let at = at.child("contact");
    if let Some(e) = &c.email {
        let (local, domain) = e.split_once('@').unwrap_or_default();
        if local.is_empty() || !domain.contains('.') || e.chars().any(char::is_whitespace) {
            return Err(ServiceError::invalid(
                at.child("email"),
                "`email` is not an e-mail address (the value is not shown)",
            ));
        }
    }
    if let Some(p) = &c.phone {
        let digits = p.chars().filter(char::is_ascii_digit).count();
        let shape = p
            .chars()
            .all(|ch| ch.is_ascii_digit() || " +-().".contains(ch));
        if !shape || !(6..=15).contains(&digits) {
            return Err(ServiceError::invalid(
                at.child("phone"),
                "`phone` is not a phone number: 6 to 15 digits with + - . ( ) and spaces (the value is not shown)",
            ));
        }
    }
    if c.wechat_id.as_deref().is_some_and(|w| w.trim().is_empty()) {
        return Err(ServiceError::invalid(
            at.child("wechat_id"),
            "`wechat_id` must not be empty (leave it out)",
        ));
    }
    Ok(ContactDetails {
        email: c.email,
        phone: c.phone,
        wechat_id: c.wechat_id,
    })
}

/// One HCP profile.
///
/// # Errors
///
/// The first problem, located.
pub fn profile(v: Value, at: &Location) -> ServiceResult<HcpProfile> {
    object(&v, at, "an HCP profile")?;
    let p: ProfileIn = typed(v, at)?;
    let id = hcp_id(&p.id, &at.child("id"))?;
    not_blank(&p.name, at, "name")?;
    not_blank(&p.market, at, "market")?;
    Ok(HcpProfile {
        id,
        name: p.name,
        specialty: p.specialty.map(|s| Specialty {
            code: s.code,
            label: s.label,
        }),
        institution: p.institution,
        market: p.market,
        time_zone: p.time_zone,
        language: p.language,
        tags: p.tags,
        licence: p
            .licence
            .as_deref()
            .map_or(Ok(LicenceStatus::Unknown), |l| licence(l, at))?,
        assigned_reps: p.assigned_reps,
        contact: contact(p.contact.unwrap_or_default(), at)?,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsentIn {
    hcp: String,
    channel: String,
    purpose: String,
    market: String,
    product: Option<String>,
    status: String,
    source: String,
    recorded_at: i64,
    recorded_by: String,
}

/// One consent statement, flat: `hcp`, `channel`, `purpose`, `market`,
/// optional `product`, `status`, `source`, `recorded_at` (ms), `recorded_by`.
///
/// # Errors
///
/// The first problem, located.
pub fn consent(v: Value, at: &Location) -> ServiceResult<NewConsent> {
    object(&v, at, "a consent record")?;
    let c: ConsentIn = typed(v, at)?;
    let hcp = hcp_id(&c.hcp, &at.child("hcp"))?;
    let channel: Channel = name(&c.channel, at, "channel")?;
    let purpose: Purpose = name(&c.purpose, at, "purpose")?;
    not_blank(&c.market, at, "market")?;
    if c.product.as_deref().is_some_and(|p| p.trim().is_empty()) {
        return Err(ServiceError::invalid(
            at.child("product"),
            "`product` must not be empty (leave it out for consent to every product)",
        ));
    }
    let status: ConsentStatus = name(&c.status, at, "status")?;
    let source: ConsentSource = name(&c.source, at, "source")?;
    let recorded_at = time(c.recorded_at, at, "recorded_at")?;
    not_blank(&c.recorded_by, at, "recorded_by")?;
    Ok(NewConsent {
        scope: ConsentScope {
            hcp,
            channel,
            purpose,
            market: c.market,
            product: c.product,
        },
        status,
        source,
        recorded_at,
        recorded_by: c.recorded_by,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventIn {
    id: String,
    hcp: String,
    #[serde(rename = "type")]
    event_type: String,
    channel: String,
    occurred_at: i64,
    #[serde(default)]
    attributes: Map<String, Value>,
}

/// The location of an event-schema problem.
fn event_error_at(e: &EventError, at: &Location) -> Location {
    match e {
        EventError::BadId => at.child("id"),
        EventError::WrongChannel { .. } => at.child("channel"),
        EventError::ContactDetail { attribute } => at.child("attributes").child(attribute),
        EventError::MissingAttribute { attribute, .. } => at.child("attributes").child(attribute),
    }
}

/// One engagement event: `id`, `hcp`, `type`, `channel`, `occurred_at`
/// (ms), `attributes`; checked against the schema of its type.
///
/// # Errors
///
/// The first problem, located.
pub fn event(v: Value, at: &Location) -> ServiceResult<NewEvent> {
    object(&v, at, "an event")?;
    let e: EventIn = typed(v, at)?;
    let event_type = EventType::from_str(&e.event_type).map_err(|_| {
        let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        ServiceError::invalid_value(
            at.child("type"),
            &format!(
                "unknown event type `{}` (expected one of: {})",
                e.event_type,
                known.join(", ")
            ),
        )
    })?;
    let event = NewEvent {
        hcp: hcp_id(&e.hcp, &at.child("hcp"))?,
        channel: name(&e.channel, at, "channel")?,
        occurred_at: time(e.occurred_at, at, "occurred_at")?,
        event_type,
        attributes: e.attributes,
        id: e.id,
    };
    event.validate().map_err(|err| {
        let shown = redact(&event.id);
        ServiceError::invalid_value(event_error_at(&err, at), &format!("event `{shown}`: {err}"))
    })?;
    Ok(event)
}

const BODY_KEYS: &[&str] = &["parts", "variants", "personalization_fields", "metadata"];
const METADATA_KEYS: &[&str] = &[
    "product",
    "indications",
    "markets",
    "channels",
    "audience",
    "claims",
    "disclaimers",
    "isi",
    "expires_at",
];

fn known_keys(v: &Value, keys: &[&str], at: &Location) -> ServiceResult<()> {
    if let Value::Object(map) = v
        && let Some(k) = map.keys().find(|k| !keys.contains(&k.as_str()))
    {
        return Err(ServiceError::invalid_value(
            at.child(k),
            &format!("unknown field `{k}` (expected one of: {})", keys.join(", ")),
        ));
    }
    Ok(())
}

/// A content version's body: `parts`, `variants` (channel -> part ->
/// text), `personalization_fields`, `metadata`.
///
/// # Errors
///
/// The first problem, located.
pub fn content_body(v: Value, at: &Location) -> ServiceResult<ContentBody> {
    object(&v, at, "a content version body")?;
    known_keys(&v, BODY_KEYS, at)?;
    let meta_at = at.child("metadata");
    if let Some(meta) = v.get("metadata") {
        object(meta, &meta_at, "the metadata")?;
        known_keys(meta, METADATA_KEYS, &meta_at)?;
        // Channel names with their list, before serde's terser message.
        if let Some(Value::Array(chs)) = meta.get("channels") {
            for (i, ch) in chs.iter().enumerate() {
                if let Value::String(s) = ch {
                    name::<Channel>(s, &meta_at.child("channels"), &format!("[{i}]"))?;
                }
            }
        }
    }
    if let Some(Value::Object(variants)) = v.get("variants") {
        for k in variants.keys() {
            name::<Channel>(k, &at.child("variants"), k)?;
        }
    }
    let body: ContentBody = typed(v, at)?;
    check_body(&body, at)?;
    Ok(body)
}

/// The rules of a version body beyond its types (the store checks them
/// too, without the JSON path).
pub(crate) fn check_body(b: &ContentBody, at: &Location) -> ServiceResult<()> {
    let m = &b.metadata;
    let meta = at.child("metadata");
    if b.parts.is_empty() {
        return Err(ServiceError::invalid(
            at.child("parts"),
            "a version needs at least one text part",
        ));
    }
    if m.product.trim().is_empty() {
        return Err(ServiceError::invalid(
            meta.child("product"),
            "`product` must not be empty",
        ));
    }
    if m.markets.is_empty() {
        return Err(ServiceError::invalid(
            meta.child("markets"),
            "list at least one market",
        ));
    }
    if m.channels.is_empty() {
        return Err(ServiceError::invalid(
            meta.child("channels"),
            "list at least one channel",
        ));
    }
    if let Some(ch) = b.variants.keys().find(|ch| !m.channels.contains(ch)) {
        return Err(ServiceError::invalid(
            at.child("variants").child(ch.as_str()),
            format!("a variant for channel `{ch}`, which metadata.channels does not list"),
        ));
    }
    for f in &b.personalization_fields {
        let field = at.child("personalization_fields");
        if f.parse::<HcpField>().is_ok_and(HcpField::is_contact_detail) {
            return Err(ServiceError::invalid(
                field,
                format!("`{f}` is a contact detail and cannot be filled into content"),
            ));
        }
        if let Err(e) = f.parse::<PersonalField>() {
            return Err(ServiceError::invalid_value(field, &e.to_string()));
        }
    }
    // Every placeholder parses and names a declared field, in every part of
    // every variant: the gate would block the version otherwise.
    let parts = b.parts.iter().map(|(k, v)| (at.child("parts").child(k), v));
    let variants = b.variants.iter().flat_map(|(ch, ps)| {
        ps.iter()
            .map(move |(k, v)| (at.child("variants").child(ch.as_str()).child(k), v))
    });
    for (place, text) in parts.chain(variants) {
        let template = Template::parse(text)
            .map_err(|e| ServiceError::invalid(place.clone(), e.to_string()))?;
        if let Some(f) = template
            .fields()
            .into_iter()
            .find(|f| !b.personalization_fields.contains(f.as_str()))
        {
            return Err(ServiceError::invalid(
                place,
                format!("the placeholder `{{{{{f}}}}}` is not declared in personalization_fields"),
            ));
        }
    }
    Ok(())
}

/// A content item id: 1 to 128 of `A-Z a-z 0-9 . _ : -`.
pub fn item_id(s: &str, at: &Location) -> ServiceResult<String> {
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(ServiceError::invalid_value(
            at.clone(),
            &format!("invalid content item id `{s}` (expected 1 to 128 of A-Z a-z 0-9 . _ : -)"),
        ))
    }
}

/// A content version hash: 64 lowercase hex digits.
pub fn version_hash(s: &str, at: &Location) -> ServiceResult<omnigate_core::VersionHash> {
    if s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(omnigate_core::VersionHash(s.to_owned()))
    } else {
        // Not echoed: it is not a hash, and redaction would mangle a near-hash.
        Err(ServiceError::invalid(
            at.clone(),
            "not a content version hash (expected 64 lowercase hex digits, the sha256 of the version)",
        ))
    }
}

/// A review role: `medical`, `legal` or `regulatory`.
pub fn review_role(s: &str, at: &Location) -> ServiceResult<omnigate_core::ReviewRole> {
    s.parse().map_err(|e: String| {
        ServiceError::invalid_value(
            at.clone(),
            &format!("{e} (expected one of: medical, legal, regulatory)"),
        )
    })
}

/// A short free text (a reason, a note, a batch id, an actor): trimmed, not
/// empty, at most `max` bytes, no control characters.
pub fn short_text(s: &str, at: &Location, what: &str, max: usize) -> ServiceResult<String> {
    let t = s.trim();
    if t.is_empty() {
        return Err(ServiceError::invalid(
            at.clone(),
            format!("{what} must not be empty"),
        ));
    }
    if t.len() > max {
        return Err(ServiceError::invalid(
            at.clone(),
            format!("{what} is {} bytes, longer than {max}", t.len()),
        ));
    }
    if t.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(ServiceError::invalid(
            at.clone(),
            format!("{what} must not contain control characters"),
        ));
    }
    Ok(t.to_owned())
}

/// A campaign definition (a JSON document): parsed field by field, then
/// checked as a whole; the first problem is reported with its JSON path.
///
/// # Errors
///
/// What is wrong, and where.
pub fn campaign_definition(
    v: Value,
    at: &Location,
) -> ServiceResult<omnigate_core::campaign::CampaignDefinition> {
    definition(
        v,
        at,
        "a campaign definition",
        |d: &omnigate_core::campaign::CampaignDefinition| d.problems(),
    )
}

/// Reads a journey definition (the JSON a marketer writes), checking what
/// the types cannot.
///
/// # Errors
///
/// What is wrong, and where.
pub fn journey_definition(
    v: Value,
    at: &Location,
) -> ServiceResult<omnigate_core::journeys::JourneyDefinition> {
    definition(
        v,
        at,
        "a journey definition",
        |d: &omnigate_core::journeys::JourneyDefinition| d.problems(),
    )
}

fn definition<T: DeserializeOwned>(
    v: Value,
    at: &Location,
    what: &str,
    problems: impl Fn(&T) -> Vec<omnigate_core::campaign::Problem>,
) -> ServiceResult<T> {
    object(&v, at, what)?;
    let def: T = typed(v, at)?;
    match problems(&def).into_iter().next() {
        None => Ok(def),
        Some(p) => {
            let path = if p.path.starts_with('[') {
                p.path
            } else {
                format!(".{}", p.path)
            };
            Err(ServiceError::invalid(at.child(&path), p.message))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn at() -> Location {
        Location::Line {
            file: "in.jsonl".into(),
            line: 3,
            path: "$".into(),
        }
    }

    fn err<T: std::fmt::Debug>(r: ServiceResult<T>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn an_unknown_channel_is_named_with_the_choices_and_its_place() {
        let v = json!({"hcp": "h1", "channel": "sms2", "purpose": "promotional", "market": "US",
            "status": "opt-in", "source": "web-form", "recorded_at": 1_700_000_000_000_i64,
            "recorded_by": "rep-1"});
        let e = err(consent(v, &at()));
        assert!(
            e.starts_with("line 3 of in.jsonl, at $.channel: unknown channel `sms2` (expected one of: email, sms,"),
            "{e}"
        );
    }

    #[test]
    fn a_missing_field_and_a_misspelt_field_are_named() {
        let v = json!({"id": "e1", "hcp": "h1", "channel": "email", "occurred_at": 1_700_000_000_000_i64});
        assert_eq!(
            err(event(v, &at())),
            "line 3 of in.jsonl: missing field `type`"
        );
        let v = json!({"id": "h1", "name": "Dr. A", "market": "US", "licnce": "active"});
        let e = err(profile(v, &at()));
        assert!(e.contains("unknown field `licnce`"), "{e}");
    }

    #[test]
    fn an_event_missing_a_required_attribute_points_at_it() {
        let v = json!({"id": "e1", "hcp": "h1", "type": "email-opened", "channel": "email",
            "occurred_at": 1_700_000_000_000_i64, "attributes": {"dispatch_id": "d1"}});
        assert_eq!(
            err(event(v, &at())),
            "line 3 of in.jsonl, at $.attributes.content_version: event `e1`: a `email-opened` event needs attribute `content_version` (a non-empty string)"
        );
    }

    #[test]
    fn an_unknown_event_type_lists_the_known_ones() {
        let v = json!({"id": "e1", "hcp": "h1", "type": "fax-sent", "channel": "email",
            "occurred_at": 1_700_000_000_000_i64});
        let e = err(event(v, &at()));
        assert!(
            e.starts_with("line 3 of in.jsonl, at $.type: unknown event type `fax-sent` (expected one of: rep-visit,"),
            "{e}"
        );
    }

    #[test]
    fn contact_details_are_never_echoed() {
        let cases = [
            json!({"id": "h1", "name": "A", "market": "US", "contact": {"email": "jane at clinic.example", "phone": "+1 555 010 2030"}}),
            json!({"id": "h1", "name": "A", "market": "US", "contact": {"email": "jane@clinic.example", "phone": "call +1 555 010 2030"}}),
            json!({"id": "h1", "name": "A", "market": "US", "contact": {"email": "jane@clinic.example", "phone": 15550102030_i64}}),
            json!({"id": "jane@clinic.example", "name": "A", "market": "US"}),
            json!({"id": "h1", "name": 7, "market": "US", "contact": {"email": "jane@clinic.example"}}),
        ];
        for v in cases {
            let e = err(profile(v, &at()));
            for secret in ["jane", "555", "0102030"] {
                assert!(!e.contains(secret), "{e}");
            }
        }
    }

    #[test]
    fn seconds_given_for_milliseconds_are_refused() {
        let v = json!({"id": "e1", "hcp": "h1", "type": "web-visit", "channel": "web",
            "occurred_at": 1_700_000_000_i64, "attributes": {"url": "https://x.example/"}});
        let e = err(event(v, &at()));
        assert!(e.contains("seconds given?"), "{e}");
    }

    #[test]
    fn a_content_body_names_its_bad_channel_and_unknown_keys() {
        let v = json!({"parts": {"text": "x"}, "metadata": {"product": "p", "indications": [],
            "markets": ["US"], "channels": ["email", "sms2"], "audience": "hcp", "claims": {},
            "disclaimers": [], "isi": null, "expires_at": null}});
        let e = err(content_body(
            v,
            &Location::Document {
                name: "v.json".into(),
                path: "$".into(),
            },
        ));
        assert!(
            e.starts_with("v.json, at $.metadata.channels[1]: unknown channel `sms2`"),
            "{e}"
        );
        let v = json!({"parts": {"text": "x"}, "disclaimer": []});
        let e = err(content_body(
            v,
            &Location::Document {
                name: "v.json".into(),
                path: "$".into(),
            },
        ));
        assert!(
            e.starts_with("v.json, at $.disclaimer: unknown field `disclaimer`"),
            "{e}"
        );
    }

    #[test]
    fn json_lines_name_the_line_of_a_syntax_error() {
        let text = "{\"id\": \"h1\", \"name\": \"A\", \"market\": \"US\"}\n\n{oops\n";
        let e = read_json_lines(text.as_bytes(), "hcps.jsonl", profile, &mut |_| {}).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("line 3 of hcps.jsonl: not valid JSON"),
            "{e}"
        );
    }
}
