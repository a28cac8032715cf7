//! The input and output of screening: a message's human-visible parts, the
//! context it goes out in, and the findings with the verdict.

use std::collections::BTreeSet;

use omnigate_core::Channel;
use serde::Serialize;

use crate::model::{Audience, FindingKind, Severity};

/// Which part of a message a text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartKind {
    /// E-mail subject.
    Subject,
    /// E-mail preheader.
    Preheader,
    /// Plain-text body.
    Body,
    /// HTML body, reduced to what a reader sees (text, link text, alt text).
    Html,
    /// SMS or chat text.
    Sms,
}

/// One human-visible part of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Which part.
    pub kind: PartKind,
    /// Its text, exactly as sent.
    pub text: String,
}

/// The human-visible parts of a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// The parts, in the order a reader meets them.
    pub parts: Vec<Part>,
}

impl Message {
    /// A message of one plain-text body.
    pub fn text(body: impl Into<String>) -> Self {
        Message::default().with(PartKind::Body, body)
    }

    /// A message of one HTML body.
    pub fn html(body: impl Into<String>) -> Self {
        Message::default().with(PartKind::Html, body)
    }

    /// Adds a part.
    pub fn with(mut self, kind: PartKind, text: impl Into<String>) -> Self {
        self.parts.push(Part {
            kind,
            text: text.into(),
        });
        self
    }
}

/// A claim from the content version's claims library, approved by MLR
/// review, with its citations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibraryClaim {
    /// Claim id in the library.
    pub id: String,
    /// The claim's text as approved.
    pub text: String,
    /// References supporting it; a claim without one is not evidence.
    pub citations: Vec<String>,
}

/// Where and to whom the message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// Market code (`US`, `EU`, `UK`, `CN`).
    pub market: String,
    /// Channel.
    pub channel: Channel,
    /// Product the message promotes, if any.
    pub product: Option<String>,
    /// Audience.
    pub audience: Audience,
    /// The content version's claims library.
    pub claims: Vec<LibraryClaim>,
}

impl Context {
    /// A context without product or claims library.
    pub fn new(market: impl Into<String>, channel: Channel, audience: Audience) -> Self {
        Context {
            market: market.into(),
            channel,
            product: None,
            audience,
            claims: Vec::new(),
        }
    }

    /// Sets the product.
    pub fn with_product(mut self, product: impl Into<String>) -> Self {
        self.product = Some(product.into());
        self
    }
}

/// One thing screening found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The rule's id.
    pub rule: String,
    /// What kind of problem.
    pub kind: FindingKind,
    /// Block or warn.
    pub severity: Severity,
    /// Index of the part in the message.
    pub part: usize,
    /// Byte span in that part's original text (a missing required element
    /// points at the end of the last part).
    pub start: usize,
    /// End of the span (exclusive).
    pub end: usize,
    /// The original text of the span.
    pub excerpt: String,
    /// Why this is a problem, in plain words.
    pub reason: String,
    /// Regulation or code section.
    pub reference: Option<String>,
}

/// The outcome of screening.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Nothing blocks.
    Allow,
    /// At least one finding blocks.
    Block,
}

/// Findings, verdict and the policy version they were reached under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Screening {
    /// Allow or block.
    pub verdict: Verdict,
    /// sha256 of the policy set.
    pub policy_version: String,
    /// What was found, by part and position.
    pub findings: Vec<Finding>,
}

impl Screening {
    /// A screening that could not run: blocks, with the reason (fail closed).
    pub fn fail_closed(policy_version: &str, rule: &str, reason: String) -> Self {
        Screening {
            verdict: Verdict::Block,
            policy_version: policy_version.to_owned(),
            findings: vec![Finding {
                rule: rule.to_owned(),
                kind: FindingKind::Error,
                severity: Severity::Block,
                part: 0,
                start: 0,
                end: 0,
                excerpt: String::new(),
                reason,
                reference: None,
            }],
        }
    }

    /// Ids of the rules that produced findings, sorted, without repeats.
    pub fn rule_ids(&self) -> Vec<String> {
        let set: BTreeSet<&str> = self.findings.iter().map(|f| f.rule.as_str()).collect();
        set.into_iter().map(str::to_owned).collect()
    }
}

/// A context the policy cannot screen in: a usage error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScreenError {
    /// The market is not in `markets.toml`.
    #[error("unknown market `{0}` (markets.toml defines: {1})")]
    UnknownMarket(String, String),
    /// The product is not in `products.toml`.
    #[error("unknown product `{0}` (products.toml defines: {1})")]
    UnknownProduct(String, String),
    /// The channel is not configured in `channels.toml`.
    #[error("channel `{0}` is not configured in channels.toml")]
    UnknownChannel(Channel),
    /// The channel may not address this audience.
    #[error("channel `{0}` may not address audience `{1}`")]
    AudienceNotAllowed(Channel, &'static str),
}
