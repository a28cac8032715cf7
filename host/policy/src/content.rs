//! The pre-screen of a content version: what MLR reviewers see next to a
//! version submitted for review.
//!
//! A version is screened once per market and channel it declares, with the
//! product, audience and claims library of its metadata, exactly as it would
//! be sent: the parts of its body with the channel's variant laid over them.
//! Nothing is appended (no ISI, no disclaimers): the text screened is the text
//! sent, so what the version lacks shows up as a missing required element.
//!
//! ```
//! use std::collections::{BTreeMap, BTreeSet};
//! use omnigate_core::Channel;
//! use omnigate_core::content::{Audience, ContentBody, ContentMetadata};
//! use omnigate_policy::content::prescreen;
//!
//! let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
//! let policy = omnigate_policy::load_dir(&dir).unwrap();
//! let body = ContentBody {
//!     parts: BTreeMap::from([("text".into(), "Cardiozen cures hypertension.".into())]),
//!     variants: BTreeMap::new(),
//!     personalization_fields: BTreeSet::new(),
//!     metadata: ContentMetadata {
//!         product: "cardiozen".into(),
//!         indications: BTreeSet::new(),
//!         markets: BTreeSet::from(["US".into()]),
//!         channels: BTreeSet::from([Channel::Email]),
//!         audience: Audience::Hcp,
//!         claims: BTreeMap::new(),
//!         disclaimers: Vec::new(),
//!         isi: None,
//!         expires_at: None,
//!     },
//! };
//! let report = prescreen(&policy, policy.version(), &body);
//! assert!(report.blocking > 0);
//! assert!(report.results[0].findings.iter().any(|f| f.rule == "absolute-cure"));
//! ```

use std::collections::BTreeMap;

use omnigate_core::Channel;
use omnigate_core::content::{self, ContentBody};
use serde::Serialize;

use crate::compile::CompiledPolicy;
use crate::message::{Context, LibraryClaim, Message, Part, PartKind, Screening, Verdict};
use crate::model::{Audience, FindingKind, Severity};

/// The screening kind of a part, by its name in a content body. Names that
/// are not e-mail or SMS parts of their own (`text`, `body`, `link-text`,
/// `alt`, anything unknown) are screened as body text: nothing a reader can
/// see escapes screening because of its name.
pub fn part_kind(name: &str) -> PartKind {
    match name {
        "subject" => PartKind::Subject,
        "preheader" => PartKind::Preheader,
        "html" => PartKind::Html,
        "sms" => PartKind::Sms,
        _ => PartKind::Body,
    }
}

/// The named parts a version sends on `channel`: its parts, with the
/// channel's variant replacing the parts of the same name and adding the
/// others. In name order.
pub fn parts_for(body: &ContentBody, channel: Channel) -> Vec<(&str, &str)> {
    let mut parts: BTreeMap<&str, &str> = body
        .parts
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    if let Some(variant) = body.variants.get(&channel) {
        for (n, t) in variant {
            parts.insert(n.as_str(), t.as_str());
        }
    }
    parts.into_iter().collect()
}

/// The human-visible parts of a version on one channel, as they are sent
/// (see [`parts_for`] and [`part_kind`]).
pub fn message_for(body: &ContentBody, channel: Channel) -> Message {
    Message {
        parts: parts_for(body, channel)
            .into_iter()
            .map(|(name, text)| Part {
                kind: part_kind(name),
                text: text.to_owned(),
            })
            .collect(),
    }
}

/// The screening context of a version on one market and channel: product,
/// audience and claims library from its metadata.
///
/// The claims library maps a claim id to its citation; the id is also taken
/// as the claim's wording, so a library entry whose key is the claim as
/// written clears a citation requirement where that wording appears, while
/// an opaque id (`GLU-C-014`) matches no text.
pub fn context_for(body: &ContentBody, market: &str, channel: Channel) -> Context {
    let m = &body.metadata;
    let audience = match m.audience {
        content::Audience::Hcp => Audience::Hcp,
        content::Audience::Patient => Audience::Patient,
    };
    let mut ctx = Context::new(market, channel, audience);
    if !m.product.trim().is_empty() {
        ctx = ctx.with_product(m.product.clone());
    }
    ctx.claims = m
        .claims
        .iter()
        .map(|(id, citation)| LibraryClaim {
            id: id.clone(),
            text: id.clone(),
            citations: if citation.trim().is_empty() {
                Vec::new()
            } else {
                vec![citation.clone()]
            },
        })
        .collect();
    ctx
}

/// One finding of a pre-screen, located by part name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PreScreenFinding {
    /// The rule's id.
    pub rule: String,
    /// What kind of problem.
    pub kind: FindingKind,
    /// `block` or `warn`.
    pub severity: Severity,
    /// The name of the part (`subject`, `html`, ...) the span is in; empty
    /// when the screen could not run.
    pub part: String,
    /// Byte span in that part's text as sent on this channel.
    pub start: usize,
    /// End of the span (exclusive).
    pub end: usize,
    /// The text of the span.
    pub excerpt: String,
    /// Why this is a problem, in plain words.
    pub reason: String,
    /// Regulation or code section.
    pub reference: Option<String>,
}

/// The screening of a version on one market and channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PreScreenResult {
    /// Market code.
    pub market: String,
    /// Channel.
    pub channel: Channel,
    /// `allow` or `block`.
    pub verdict: Verdict,
    /// Why screening could not run, if it could not (the result then blocks).
    pub error: Option<String>,
    /// What was found, by part and position.
    pub findings: Vec<PreScreenFinding>,
}

/// The pre-screen of a version: one result per market and channel it
/// declares, and the totals reviewers see first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PreScreen {
    /// sha256 of the policy set screened with (`none` without a policy).
    pub policy_version: String,
    /// `block` if any result blocks.
    pub verdict: Verdict,
    /// Blocking findings over all results.
    pub blocking: usize,
    /// Warnings over all results.
    pub warnings: usize,
    /// The ids of the rules that blocked, sorted, without repeats.
    pub blocking_rules: Vec<String>,
    /// One result per (market, channel), markets then channels in order.
    pub results: Vec<PreScreenResult>,
}

impl PreScreen {
    fn from_results(policy_version: &str, results: Vec<PreScreenResult>) -> Self {
        let all = || results.iter().flat_map(|r| &r.findings);
        let blocking = all().filter(|f| f.severity == Severity::Block).count();
        let warnings = all().filter(|f| f.severity == Severity::Warn).count();
        let mut blocking_rules: Vec<String> = all()
            .filter(|f| f.severity == Severity::Block)
            .map(|f| f.rule.clone())
            .collect();
        blocking_rules.sort();
        blocking_rules.dedup();
        let verdict = if results.iter().any(|r| r.verdict == Verdict::Block) {
            Verdict::Block
        } else {
            Verdict::Allow
        };
        PreScreen {
            policy_version: policy_version.to_owned(),
            verdict,
            blocking,
            warnings,
            blocking_rules,
            results,
        }
    }

    /// The pre-screen when no policy is loaded: every market and channel
    /// blocks with the reason (fail closed), nothing is dropped.
    pub fn without_policy(body: &ContentBody) -> Self {
        let results = combinations(body)
            .map(|(market, channel)| {
                let reason = "no policy is loaded, so nothing can be allowed".to_owned();
                let s = Screening::fail_closed("none", "no-policy", reason.clone());
                result_of(market, channel, &[], s, Some(reason))
            })
            .collect();
        PreScreen::from_results("none", results)
    }
}

fn combinations(body: &ContentBody) -> impl Iterator<Item = (&str, Channel)> {
    let m = &body.metadata;
    m.markets
        .iter()
        .flat_map(|market| m.channels.iter().map(move |&ch| (market.as_str(), ch)))
}

fn result_of(
    market: &str,
    channel: Channel,
    names: &[(&str, &str)],
    s: Screening,
    error: Option<String>,
) -> PreScreenResult {
    let findings = s
        .findings
        .into_iter()
        .map(|f| PreScreenFinding {
            part: if f.kind == FindingKind::Error {
                String::new()
            } else {
                names
                    .get(f.part)
                    .map(|(n, _)| (*n).to_owned())
                    .unwrap_or_default()
            },
            rule: f.rule,
            kind: f.kind,
            severity: f.severity,
            start: f.start,
            end: f.end,
            excerpt: f.excerpt,
            reason: f.reason,
            reference: f.reference,
        })
        .collect();
    PreScreenResult {
        market: market.to_owned(),
        channel,
        verdict: s.verdict,
        error,
        findings,
    }
}

/// Screens `body` on every channel of its metadata, for every market of its
/// metadata, with its product, audience and claims library.
///
/// INVARIANT: a screening that cannot run (unknown market, product or
/// channel, input too large) is a blocking result carrying its reason; it is
/// never dropped.
pub fn prescreen(policy: &CompiledPolicy, policy_version: &str, body: &ContentBody) -> PreScreen {
    let results = combinations(body)
        .map(|(market, channel)| {
            let names = parts_for(body, channel);
            let message = message_for(body, channel);
            let ctx = context_for(body, market, channel);
            match policy.screen(&message, &ctx) {
                Ok(s) => {
                    let error = s
                        .findings
                        .iter()
                        .find(|f| f.kind == FindingKind::Error)
                        .map(|f| f.reason.clone());
                    result_of(market, channel, &names, s, error)
                }
                Err(e) => {
                    let reason = e.to_string();
                    let s = Screening::fail_closed(policy_version, "context-error", reason.clone());
                    result_of(market, channel, &names, s, Some(reason))
                }
            }
        })
        .collect();
    PreScreen::from_results(policy_version, results)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use omnigate_core::content::ContentMetadata;

    use super::*;

    fn policy() -> CompiledPolicy {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
        crate::load_dir(&dir).unwrap()
    }

    const FOOTER: &str = "Important Safety Information: may cause dizziness. Please see full \
                          Prescribing Information. To unsubscribe, click here.";

    fn body(parts: &[(&str, &str)]) -> ContentBody {
        ContentBody {
            parts: parts
                .iter()
                .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
                .collect(),
            variants: BTreeMap::new(),
            personalization_fields: BTreeSet::new(),
            metadata: ContentMetadata {
                product: "cardiozen".into(),
                indications: BTreeSet::new(),
                markets: BTreeSet::from(["US".into()]),
                channels: BTreeSet::from([Channel::Email]),
                audience: content::Audience::Hcp,
                claims: BTreeMap::new(),
                disclaimers: vec!["Rx only".into()],
                isi: Some("Important Safety Information: ...".into()),
                expires_at: None,
            },
        }
    }

    #[test]
    fn a_variant_part_replaces_the_part_of_the_same_name_on_its_channel_only() {
        let mut b = body(&[("subject", "News"), ("text", "Hello")]);
        b.variants.insert(
            Channel::Sms,
            BTreeMap::from([("text".into(), "Hi".into()), ("sms".into(), "STOP".into())]),
        );
        let email = message_for(&b, Channel::Email);
        assert_eq!(
            email
                .parts
                .iter()
                .map(|p| p.text.as_str())
                .collect::<Vec<_>>(),
            ["News", "Hello"]
        );
        let sms = message_for(&b, Channel::Sms);
        let got: Vec<(PartKind, &str)> = sms
            .parts
            .iter()
            .map(|p| (p.kind, p.text.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (PartKind::Sms, "STOP"),
                (PartKind::Subject, "News"),
                (PartKind::Body, "Hi")
            ]
        );
    }

    #[test]
    fn unknown_part_names_are_screened_as_body_text() {
        for name in ["text", "body", "link-text", "alt", "footnote-7"] {
            assert_eq!(part_kind(name), PartKind::Body, "{name}");
        }
        assert_eq!(part_kind("html"), PartKind::Html);
        let b = body(&[("footnote-7", "Cardiozen cures hypertension.")]);
        let report = prescreen(&policy(), "v", &b);
        let f = &report.results[0].findings;
        assert!(
            f.iter()
                .any(|f| f.rule == "absolute-cure" && f.part == "footnote-7"),
            "{f:?}"
        );
    }

    #[test]
    fn the_isi_and_disclaimers_of_the_metadata_are_not_appended_to_what_is_screened() {
        let b = body(&[("text", "Cardiozen lowers blood pressure.")]);
        let text: String = message_for(&b, Channel::Email)
            .parts
            .iter()
            .map(|p| p.text.clone())
            .collect();
        assert_eq!(text, "Cardiozen lowers blood pressure.");
        // The missing elements show as findings instead.
        let report = prescreen(&policy(), "v", &b);
        assert!(
            report.results[0]
                .findings
                .iter()
                .any(|f| f.kind == FindingKind::RequiredElement),
            "{report:?}"
        );
    }

    #[test]
    fn every_market_and_channel_is_screened_and_a_context_error_blocks_with_its_reason() {
        let mut b = body(&[("text", &format!("Cardiozen cures hypertension. {FOOTER}"))]);
        b.metadata.markets = BTreeSet::from(["US".into(), "XX".into()]);
        b.metadata.channels = BTreeSet::from([Channel::Email, Channel::Web]);
        let report = prescreen(&policy(), "v1", &b);
        let keys: Vec<(&str, Channel)> = report
            .results
            .iter()
            .map(|r| (r.market.as_str(), r.channel))
            .collect();
        assert_eq!(
            keys,
            [
                ("US", Channel::Email),
                ("US", Channel::Web),
                ("XX", Channel::Email),
                ("XX", Channel::Web)
            ]
        );
        let xx = &report.results[2];
        assert_eq!(xx.verdict, Verdict::Block);
        assert!(
            xx.error.as_deref().unwrap().contains("unknown market `XX`"),
            "{xx:?}"
        );
        assert_eq!(xx.findings[0].rule, "context-error");
        assert_eq!(report.verdict, Verdict::Block);
        assert!(report.blocking_rules.contains(&"absolute-cure".to_owned()));
        assert!(report.blocking_rules.contains(&"context-error".to_owned()));
        assert_eq!(report.policy_version, "v1");
    }

    #[test]
    fn a_compliant_version_passes_its_pre_screen() {
        let b = body(&[
            ("subject", "Cardiozen: new prescribing information"),
            (
                "text",
                &format!("Cardiozen is indicated for hypertension. {FOOTER}"),
            ),
        ]);
        let report = prescreen(&policy(), "v", &b);
        assert_eq!(report.verdict, Verdict::Allow, "{report:#?}");
        assert_eq!(report.blocking, 0);
    }

    #[test]
    fn without_a_policy_every_result_blocks() {
        let report = PreScreen::without_policy(&body(&[("text", "x")]));
        assert_eq!(report.verdict, Verdict::Block);
        assert_eq!(report.results.len(), 1);
        assert_eq!(report.blocking_rules, ["no-policy"]);
    }
}
