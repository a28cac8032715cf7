//! Step 1, parse: the text of each policy file becomes its syntax tree.
//! Unknown keys are errors; every value that validation checks against
//! something else keeps its span so the error can point at it.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use crate::diag::{Diagnostic, Location};

/// A string with its byte span in the file.
pub type Str = Spanned<String>;

/// `claims.toml`: the claim, citation and patient-data rules.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimsFile {
    /// The label-fact kinds a product may declare and a rule may ask for.
    #[serde(default)]
    pub label_facts: Vec<Str>,
    /// Regular expressions that count as a citation next to a claim.
    #[serde(default)]
    pub citation_markers: Vec<Str>,
    /// Resource limits; over a limit the policy does not load or the
    /// message blocks.
    #[serde(default)]
    pub limits: LimitsSyntax,
    /// The rules.
    #[serde(default, rename = "rule")]
    pub rules: Vec<ClaimRuleSyntax>,
}

/// `[limits]` in `claims.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSyntax {
    /// Longest term or regular expression source, in bytes.
    pub max_pattern_bytes: Option<Spanned<u64>>,
    /// Largest compiled regular expression, in bytes.
    pub max_regex_size: Option<Spanned<u64>>,
    /// Largest message that can be screened, in bytes.
    pub max_input_bytes: Option<Spanned<u64>>,
}

/// The fields every rule shares.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRuleSyntax {
    /// Unique id across the policy set.
    pub id: Str,
    /// `claim`, `citation` or `pii`.
    pub kind: Str,
    /// `block` or `warn`.
    pub severity: Str,
    /// Plain-language reason shown to marketers and reviewers.
    pub reason: Str,
    /// Regulation or code section.
    pub reference: Option<Str>,
    /// Literal phrases, matched on normalized text at word boundaries.
    #[serde(default)]
    pub terms: Vec<Str>,
    /// Regular expressions over the normalized text.
    #[serde(default)]
    pub patterns: Vec<Str>,
    /// Markets the rule applies in (default: all).
    pub markets: Option<Vec<Str>>,
    /// Channels the rule applies to (default: all).
    pub channels: Option<Vec<Str>>,
    /// Audiences the rule applies to (default: all).
    pub audiences: Option<Vec<Str>>,
    /// Words that, right before a match in the same sentence, negate it.
    #[serde(default)]
    pub negations: Vec<Str>,
    /// Phrases in which a match is not a claim (`best regards`).
    #[serde(default)]
    pub except: Vec<Str>,
    /// The rule applies only when the sentence contains one of these.
    #[serde(default)]
    pub only_near: Vec<Str>,
    /// Evidence that clears a match when all of it is present.
    pub evidence: Option<EvidenceSyntax>,
}

/// `evidence = { ... }` on a rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceSyntax {
    /// A citation marker in the sentence, or the claims library.
    #[serde(default)]
    pub citation: bool,
    /// The product in context declares this label fact.
    pub label_fact: Option<Str>,
    /// The sentence contains one of these words.
    #[serde(default)]
    pub sentence_has: Vec<Str>,
}

/// `products.toml`: indications, products and the off-label rules.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductsFile {
    /// Naming an indication the product is not approved for.
    pub off_label: FixedRuleSyntax,
    /// Promoting a product in a market where it is not approved.
    pub not_marketed: FixedRuleSyntax,
    /// Indications, by id.
    #[serde(default)]
    pub indications: BTreeMap<Str, IndicationSyntax>,
    /// Products, by id.
    #[serde(default)]
    pub products: BTreeMap<Str, ProductSyntax>,
}

/// A built-in rule whose matching is fixed but whose id, wording and
/// severity are the compliance officer's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedRuleSyntax {
    /// Unique id.
    pub id: Str,
    /// `block` or `warn`.
    pub severity: Str,
    /// Plain-language reason.
    pub reason: Str,
    /// Regulation or code section.
    pub reference: Option<Str>,
    /// Words that, before the match in its sentence, negate it.
    #[serde(default)]
    pub negations: Vec<Str>,
}

/// `[indications.<id>]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndicationSyntax {
    /// Display name.
    pub name: Str,
    /// Phrases that name the indication, in every language.
    pub terms: Vec<Str>,
}

/// `[products.<id>]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductSyntax {
    /// Brand name.
    pub name: Str,
    /// Names that refer to the product in text (brand, generic, local).
    #[serde(default)]
    pub aliases: Vec<Str>,
    /// Markets where the product is approved.
    pub markets: Vec<Str>,
    /// Approved indications (ids from `[indications]`).
    pub indications: Vec<Str>,
    /// Label facts: fact kind -> where the label says it.
    #[serde(default)]
    pub label_facts: BTreeMap<Str, Str>,
}

/// `markets.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketsFile {
    /// MLR roles that must sign off content for a market that names none
    /// (default: medical, legal and regulatory).
    pub default_review_roles: Option<Spanned<Vec<Str>>>,
    /// Markets, by code.
    pub markets: BTreeMap<Str, MarketSyntax>,
}

/// `[markets.<code>]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketSyntax {
    /// Display name.
    pub name: Str,
    /// MLR roles that must sign off content meant for this market.
    pub review_roles: Option<Spanned<Vec<Str>>>,
    /// Required elements.
    #[serde(default)]
    pub require: Vec<RequireSyntax>,
}

/// `[[markets.<code>.require]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequireSyntax {
    /// Unique id.
    pub id: Str,
    /// `block` or `warn`.
    pub severity: Str,
    /// Plain-language reason.
    pub reason: Str,
    /// Regulation or code section.
    pub reference: Option<Str>,
    /// Channels (default: all).
    pub channels: Option<Vec<Str>>,
    /// Audiences (default: all).
    pub audiences: Option<Vec<Str>>,
    /// `always` (default) or `product` (only when a product is promoted).
    pub when: Option<Str>,
    /// The element is present when the message contains any of these.
    pub any_of: Vec<Str>,
}

/// `channels.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelsFile {
    /// Channels, by name.
    pub channels: BTreeMap<Str, ChannelSyntax>,
}

/// `[channels.<name>]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSyntax {
    /// Whether messages on this channel carry text the gate screens.
    pub screened: bool,
    /// Audiences the channel may address.
    pub audiences: Vec<Str>,
    /// HCP fields that may be filled into an approved text.
    #[serde(default)]
    pub personalization: Vec<Str>,
}

/// `consent.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentFile {
    /// Purposes a consent record can be given for.
    pub purposes: Vec<Str>,
    /// The rules.
    #[serde(default, rename = "rule")]
    pub rules: Vec<ConsentRuleSyntax>,
}

/// `[[rule]]` in `consent.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentRuleSyntax {
    /// Unique id.
    pub id: Str,
    /// `block` or `warn`.
    pub severity: Str,
    /// Plain-language reason.
    pub reason: Str,
    /// Regulation or code section.
    pub reference: Option<Str>,
    /// Markets (default: all).
    pub markets: Option<Vec<Str>>,
    /// Channels (default: all).
    pub channels: Option<Vec<Str>>,
    /// Purposes (default: all).
    pub purposes: Option<Vec<Str>>,
    /// `opt-in` or `double-opt-in`.
    pub requires: Str,
    /// Consent must name the product.
    #[serde(default)]
    pub per_product: bool,
    /// A consent older than this (e.g. `730d`) no longer counts.
    pub max_age: Option<Str>,
}

/// `caps.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapsFile {
    /// The caps.
    #[serde(default, rename = "cap")]
    pub caps: Vec<CapSyntax>,
}

/// `[[cap]]`: one flat table; which keys are needed depends on `kind`,
/// and validation says which is missing.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapSyntax {
    /// Unique id.
    pub id: Str,
    /// `frequency`, `min-gap`, `quiet-hours` or `campaign`.
    pub kind: Str,
    /// `block` or `warn`.
    pub severity: Str,
    /// Plain-language reason.
    pub reason: Str,
    /// Regulation or code section.
    pub reference: Option<Str>,
    /// Markets (default: all).
    pub markets: Option<Vec<Str>>,
    /// Channels counted together; absent means across all channels.
    pub channels: Option<Vec<Str>>,
    /// Most touches in the window (`frequency`, `campaign`).
    pub max: Option<Spanned<u64>>,
    /// Sliding window, e.g. `7d` (`frequency`, `campaign`).
    pub window: Option<Str>,
    /// Least time between two touches, e.g. `48h` (`min-gap`).
    pub gap: Option<Str>,
    /// Start of quiet hours, `HH:MM` in the HCP's time zone.
    pub start: Option<Str>,
    /// End of quiet hours, `HH:MM`.
    pub end: Option<Str>,
}

/// One policy file's text and name.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The name shown in diagnostics (e.g. `policies/claims.toml`).
    pub name: String,
    /// The text.
    pub text: Arc<String>,
}

impl SourceFile {
    /// A location in this file.
    pub fn loc(&self, span: std::ops::Range<usize>) -> Location {
        Location::new(&self.name, &self.text, span)
    }

    /// Parses the whole file as `T`.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, Diagnostic> {
        toml::from_str(&self.text).map_err(|e| self.toml_error(&e))
    }

    fn toml_error(&self, e: &toml::de::Error) -> Diagnostic {
        let message = clean_toml_message(e.message());
        match e.span() {
            Some(span) => Diagnostic::at(message, self.loc(span)),
            None => Diagnostic::bare(format!("{message} ({})", self.name)),
        }
    }
}

/// toml's messages are close to ours; trim the trailing newline and period.
fn clean_toml_message(m: &str) -> String {
    m.trim().trim_end_matches('.').replace('\n', "; ")
}
