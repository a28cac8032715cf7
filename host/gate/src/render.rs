//! Rendering an approved version for one channel, and the integrity check.
//!
//! The parts of a version on a channel are its `parts` with the channel's
//! variant laid over them. Part names are fixed, because each one maps to a
//! field of what the adapter sends (`wit/plugin.wit`, `message-parts`):
//!
//! | part | sent as |
//! | --- | --- |
//! | `subject` | subject |
//! | `preheader` | preheader |
//! | `text` | plain-text body (for SMS and chat, the whole message) |
//! | `html` | HTML body (values are HTML-escaped) |
//! | `cta-text`, `cta-url` | call to action: visible text and target |
//! | `isi`, `disclaimer`, `disclaimer-*` | disclaimers, in this order |
//!
//! A version with any other part name is blocked: the gate would not know
//! how it is sent.

use std::collections::BTreeMap;

use omnigate_core::Channel;
use omnigate_core::content::ContentBody;
use omnigate_core::template::{Escape, PersonalField, Template, TemplateError, Values};
use omnigate_policy::{Message, PartKind};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The part names a version may use (plus `disclaimer-*`).
pub const PART_NAMES: [&str; 8] = [
    "subject",
    "preheader",
    "text",
    "html",
    "cta-text",
    "cta-url",
    "isi",
    "disclaimer",
];

/// Whether `name` is a part the gate knows how it is sent.
pub fn known_part(name: &str) -> bool {
    PART_NAMES.contains(&name) || name.starts_with("disclaimer-")
}

/// How a part is screened.
pub fn part_kind(name: &str) -> PartKind {
    match name {
        "subject" => PartKind::Subject,
        "preheader" => PartKind::Preheader,
        "html" => PartKind::Html,
        _ => PartKind::Body,
    }
}

/// The parts of a version on one channel: `parts` with the channel's
/// variant laid over them, by name.
pub fn channel_parts(body: &ContentBody, channel: Channel) -> BTreeMap<String, String> {
    let mut parts = body.parts.clone();
    if let Some(variant) = body.variants.get(&channel) {
        for (k, v) in variant {
            parts.insert(k.clone(), v.clone());
        }
    }
    parts
}

/// A message exactly as it will be sent: part name -> text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rendered {
    /// The parts, by name.
    pub parts: BTreeMap<String, String>,
    /// sha256 over `name\0text\0` of every part in name order.
    pub sha256: String,
}

impl Rendered {
    /// Wraps parts and computes their hash.
    pub fn new(parts: BTreeMap<String, String>) -> Rendered {
        let sha256 = text_sha256(&parts);
        Rendered { parts, sha256 }
    }

    /// The human-visible parts, for screening (the CTA target URL is
    /// screened too: fail safe).
    pub fn message(&self) -> Message {
        let mut m = Message::default();
        for (name, text) in &self.parts {
            m = m.with(part_kind(name), text.clone());
        }
        m
    }

    /// Every text, in name order (for the egress check).
    pub fn texts(&self) -> impl Iterator<Item = &str> {
        self.parts.values().map(String::as_str)
    }
}

/// sha256 over `name\0text\0` of every part in name order.
pub fn text_sha256(parts: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    for (name, text) in parts {
        h.update(name.as_bytes());
        h.update([0]);
        h.update(text.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())
}

/// Why a version cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenderProblem {
    /// A part name the gate does not know how to send.
    UnknownPart(String),
    /// A placeholder is malformed or names no field.
    Template(String, TemplateError),
    /// A placeholder the version did not declare at approval.
    Undeclared(String, PersonalField),
    /// A field the policy does not allow on this channel.
    NotOnChannel(PersonalField),
    /// A field with no value (missing from the profile or the dispatch).
    Missing(PersonalField),
    /// A value the caller may not supply, or of the wrong shape.
    BadValue(PersonalField, String),
}

impl RenderProblem {
    /// The gate's rule id for it.
    pub fn rule(&self) -> &'static str {
        match self {
            RenderProblem::UnknownPart(_) | RenderProblem::Template(..) => "content-malformed",
            RenderProblem::Undeclared(..) => "personalization-undeclared",
            RenderProblem::NotOnChannel(_) => "personalization-not-on-channel",
            RenderProblem::Missing(_) => "personalization-missing",
            RenderProblem::BadValue(..) => "personalization-value",
        }
    }

    /// In plain words.
    pub fn reason(&self) -> String {
        match self {
            RenderProblem::UnknownPart(p) => format!(
                "the content has a part `{p}` that no channel sends (expected: {}, disclaimer-*)",
                PART_NAMES.join(", ")
            ),
            RenderProblem::Template(p, e) => format!("part `{p}`: {e}"),
            RenderProblem::Undeclared(p, f) => format!(
                "part `{p}` uses `{{{{{f}}}}}`, which was not declared as a personalization field when the version was approved"
            ),
            RenderProblem::NotOnChannel(f) => {
                format!(
                    "the policy does not allow `{f}` to be filled into messages on this channel"
                )
            }
            RenderProblem::Missing(f) => format!("no value for `{f}`"),
            RenderProblem::BadValue(f, why) => format!("the value for `{f}` {why}"),
        }
    }
}

/// A version's parts on one channel, parsed and checked against what the
/// version declared: everything about rendering that depends on the body
/// alone. Versions are immutable (keyed by their hash), so the gate keeps
/// one per version and channel instead of parsing the text per dispatch.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The parsed parts, in name order.
    templates: Vec<(String, Template)>,
    /// The body's own problems (unknown parts, malformed or undeclared
    /// placeholders), in the order [`render`] reports them.
    problems: Vec<RenderProblem>,
    /// The fields the parts use, in order of first use.
    used: Vec<PersonalField>,
}

impl Prepared {
    /// Parses and checks the parts of `body` on `channel`.
    pub fn new(body: &ContentBody, channel: Channel) -> Prepared {
        let mut problems = Vec::new();
        let parts = channel_parts(body, channel);
        let mut templates = Vec::new();
        for (name, text) in parts {
            if !known_part(&name) {
                problems.push(RenderProblem::UnknownPart(name));
                continue;
            }
            match Template::parse(&text) {
                Ok(t) => templates.push((name, t)),
                Err(e) => problems.push(RenderProblem::Template(name, e)),
            }
        }
        let mut used: Vec<PersonalField> = Vec::new();
        for (name, t) in &templates {
            for f in t.fields() {
                if !body.personalization_fields.contains(f.as_str()) {
                    problems.push(RenderProblem::Undeclared(name.clone(), f));
                }
                if !used.contains(&f) {
                    used.push(f);
                }
            }
        }
        Prepared {
            templates,
            problems,
            used,
        }
    }

    /// Renders the parts: checks the fields used against the channel's
    /// allowed fields and the values' shapes, and fills them in
    /// (HTML-escaped in `html`). Reports every problem, not the first.
    pub fn render(
        &self,
        allowed_on_channel: &[PersonalField],
        values: &Values,
    ) -> Result<Rendered, Vec<RenderProblem>> {
        let mut problems = self.problems.clone();
        for f in &self.used {
            if !allowed_on_channel.contains(f) {
                problems.push(RenderProblem::NotOnChannel(*f));
            }
            match values.get(f) {
                None => problems.push(RenderProblem::Missing(*f)),
                Some(v) => {
                    if let Err(why) = f.check_value(v) {
                        problems.push(RenderProblem::BadValue(*f, why));
                    }
                }
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut out = BTreeMap::new();
        for (name, t) in &self.templates {
            let escape = if name == "html" {
                Escape::Html
            } else {
                Escape::None
            };
            match t.render(values, escape) {
                Ok(text) => {
                    out.insert(name.clone(), text);
                }
                Err(e) => problems.push(RenderProblem::Template(name.clone(), e)),
            }
        }
        if problems.is_empty() {
            Ok(Rendered::new(out))
        } else {
            Err(problems)
        }
    }
}

/// Renders `body` for `channel`: checks part names, placeholders against the
/// declared fields and the channel's allowed fields, value shapes, and fills
/// them in (HTML-escaped in `html`). Reports every problem, not the first.
pub fn render(
    body: &ContentBody,
    channel: Channel,
    allowed_on_channel: &[PersonalField],
    values: &Values,
) -> Result<Rendered, Vec<RenderProblem>> {
    Prepared::new(body, channel).render(allowed_on_channel, values)
}
