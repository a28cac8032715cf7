//! Step 2's output: the validated policy, in typed form. Every name in it
//! refers to something that exists (a channel, market, product, indication,
//! HCP field, label fact), and every term is already normalized.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use omnigate_core::template::PersonalField;
use omnigate_core::{ApprovalPolicy, Channel, Purpose, ReviewRole};
use serde::Serialize;

use crate::diag::Location;

/// How much a finding weighs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Reported; does not block.
    Warn,
    /// Blocks the message.
    Block,
}

impl Severity {
    /// `block` or `warn`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Block => "block",
            Severity::Warn => "warn",
        }
    }
}

/// Who a message addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Audience {
    /// Healthcare professionals.
    Hcp,
    /// Patients and the public (consumer-facing).
    Patient,
}

impl Audience {
    /// `hcp` or `patient`.
    pub fn as_str(self) -> &'static str {
        match self {
            Audience::Hcp => "hcp",
            Audience::Patient => "patient",
        }
    }

    /// Parses `hcp` or `patient`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "hcp" => Some(Audience::Hcp),
            "patient" => Some(Audience::Patient),
            _ => None,
        }
    }
}

/// What kind of problem a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// An absolute, overstated or unsupported claim.
    Claim,
    /// An indication the product is not approved for, or a market where it
    /// is not approved.
    OffLabel,
    /// A numeric claim or comparison without a citation.
    Citation,
    /// Patient-identifying details.
    Pii,
    /// A required element (fair balance, opt-out text) is missing.
    RequiredElement,
    /// The screen could not decide and blocks (fail closed).
    Error,
}

impl FindingKind {
    /// The stable name used in files and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Claim => "claim",
            FindingKind::OffLabel => "off-label",
            FindingKind::Citation => "citation",
            FindingKind::Pii => "pii",
            FindingKind::RequiredElement => "required-element",
            FindingKind::Error => "error",
        }
    }
}

/// What every rule carries.
#[derive(Debug, Clone)]
pub struct RuleMeta {
    /// Unique id across the policy set.
    pub id: String,
    /// Block or warn.
    pub severity: Severity,
    /// Plain-language reason.
    pub reason: String,
    /// Regulation or code section.
    pub reference: Option<String>,
}

/// Where a rule applies; `None` means everywhere.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Market codes.
    pub markets: Option<Vec<String>>,
    /// Channels.
    pub channels: Option<Vec<Channel>>,
    /// Audiences.
    pub audiences: Option<Vec<Audience>>,
}

impl Scope {
    /// Whether the rule applies in this context.
    pub fn applies(&self, market: &str, channel: Channel, audience: Audience) -> bool {
        self.markets
            .as_ref()
            .is_none_or(|m| m.iter().any(|x| x == market))
            && self.channels.as_ref().is_none_or(|c| c.contains(&channel))
            && self
                .audiences
                .as_ref()
                .is_none_or(|a| a.contains(&audience))
    }
}

/// A regular expression with where it was written.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The source.
    pub source: String,
    /// Where it is, for compile errors.
    pub location: Location,
}

/// Evidence that clears a match when all of it is present.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    /// A citation marker in the sentence, or a cited claims-library entry.
    pub citation: bool,
    /// The product in context declares this label fact.
    pub label_fact: Option<String>,
    /// The sentence contains one of these (normalized).
    pub sentence_has: Vec<String>,
}

/// A claim, citation or patient-data rule from `claims.toml`.
#[derive(Debug, Clone)]
pub struct ClaimRule {
    /// Id, severity, reason, reference.
    pub meta: RuleMeta,
    /// `claim`, `citation` or `pii`.
    pub kind: FindingKind,
    /// Where it applies.
    pub scope: Scope,
    /// Normalized literal phrases.
    pub terms: Vec<String>,
    /// Regular expressions over normalized text.
    pub patterns: Vec<Pattern>,
    /// Normalized negating words.
    pub negations: Vec<String>,
    /// Normalized phrases in which a match is not a claim.
    pub except: Vec<String>,
    /// Normalized words one of which the sentence must contain.
    pub only_near: Vec<String>,
    /// What clears a match.
    pub evidence: Option<Evidence>,
}

/// A built-in rule (off-label, not marketed).
#[derive(Debug, Clone)]
pub struct FixedRule {
    /// Id, severity, reason, reference.
    pub meta: RuleMeta,
    /// Normalized negating phrases.
    pub negations: Vec<String>,
}

/// An indication.
#[derive(Debug, Clone)]
pub struct Indication {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Normalized phrases naming it.
    pub terms: Vec<String>,
}

/// A product.
#[derive(Debug, Clone)]
pub struct Product {
    /// Id.
    pub id: String,
    /// Brand name.
    pub name: String,
    /// Normalized names referring to it (the name included).
    pub aliases: Vec<String>,
    /// Markets where it is approved.
    pub markets: Vec<String>,
    /// Approved indication ids.
    pub indications: Vec<String>,
    /// Label fact kind -> where the label says it.
    pub label_facts: BTreeMap<String, String>,
}

/// A required element of a market.
#[derive(Debug, Clone)]
pub struct RequiredElement {
    /// Id, severity, reason, reference.
    pub meta: RuleMeta,
    /// Where it applies (the market is always set).
    pub scope: Scope,
    /// Only when a product is promoted.
    pub when_product: bool,
    /// Normalized phrases, any of which satisfies it.
    pub any_of: Vec<String>,
}

/// A market.
#[derive(Debug, Clone)]
pub struct Market {
    /// Code (`US`, `EU`, `UK`, `CN`).
    pub code: String,
    /// Display name.
    pub name: String,
    /// MLR roles that must sign off content meant for it (the default roles
    /// when it names none).
    pub review_roles: Option<BTreeSet<ReviewRole>>,
    /// Required elements.
    pub require: Vec<RequiredElement>,
}

/// Channel settings.
#[derive(Debug, Clone)]
pub struct ChannelPolicy {
    /// Whether messages on it carry text to screen.
    pub screened: bool,
    /// Audiences it may address.
    pub audiences: Vec<Audience>,
    /// Personalization fields that may be filled into an approved text
    /// (contact details cannot be expressed).
    pub personalization: Vec<PersonalField>,
}

/// The consent a rule requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentLevel {
    /// A recorded opt-in.
    OptIn,
    /// An opt-in confirmed a second time (e.g. a confirmation e-mail).
    DoubleOptIn,
}

/// A consent rule from `consent.toml`; the gate evaluates it against the
/// HCP's consent records.
#[derive(Debug, Clone)]
pub struct ConsentRule {
    /// Id, severity, reason, reference.
    pub meta: RuleMeta,
    /// Markets and channels (audience unused).
    pub scope: Scope,
    /// Purposes; `None` means all.
    pub purposes: Option<Vec<Purpose>>,
    /// What must be on record.
    pub requires: ConsentLevel,
    /// The consent must name the product.
    pub per_product: bool,
    /// Consents older than this do not count.
    pub max_age: Option<Duration>,
}

/// What a cap limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CapKind {
    /// At most `max` touches in any sliding `window`.
    Frequency {
        /// Most touches.
        max: u32,
        /// Window length.
        window: Duration,
    },
    /// At least `gap` between two touches.
    MinGap {
        /// Least gap.
        gap: Duration,
    },
    /// No touches between `start` and `end` (minutes after midnight, HCP's
    /// time zone; `start > end` wraps past midnight).
    QuietHours {
        /// Start minute.
        start: u16,
        /// End minute.
        end: u16,
    },
    /// At most `max` touches per HCP from one campaign in any `window`.
    Campaign {
        /// Most touches.
        max: u32,
        /// Window length.
        window: Duration,
    },
}

/// A contact-pressure rule from `caps.toml`.
#[derive(Debug, Clone)]
pub struct CapRule {
    /// Id, severity, reason, reference.
    pub meta: RuleMeta,
    /// Markets; `None` means all.
    pub markets: Option<Vec<String>>,
    /// Channels counted together; `None` means all channels together
    /// (rep visits included).
    pub channels: Option<Vec<Channel>>,
    /// What it limits.
    pub kind: CapKind,
}

/// Resource limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest term or pattern source, in bytes.
    pub max_pattern_bytes: usize,
    /// Largest compiled regular expression, in bytes.
    pub max_regex_size: usize,
    /// Largest message that can be screened, in bytes.
    pub max_input_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pattern_bytes: 512,
            max_regex_size: 1 << 20,
            max_input_bytes: 256 << 10,
        }
    }
}

/// A validated policy set.
#[derive(Debug, Clone)]
pub struct PolicySet {
    /// sha256 over the files.
    pub version: String,
    /// Resource limits.
    pub limits: Limits,
    /// Label fact kinds.
    pub label_facts: Vec<String>,
    /// Citation marker regexes.
    pub citation_markers: Vec<Pattern>,
    /// Claim, citation and patient-data rules.
    pub claims: Vec<ClaimRule>,
    /// Off-label rule.
    pub off_label: FixedRule,
    /// Not-marketed rule.
    pub not_marketed: FixedRule,
    /// Indications by id.
    pub indications: BTreeMap<String, Indication>,
    /// Products by id.
    pub products: BTreeMap<String, Product>,
    /// Markets by code.
    pub markets: BTreeMap<String, Market>,
    /// Which MLR roles must sign off content, per market.
    pub approval: ApprovalPolicy,
    /// Channel settings.
    pub channels: BTreeMap<Channel, ChannelPolicy>,
    /// Consent purposes the policy uses.
    pub purposes: Vec<Purpose>,
    /// Consent rules.
    pub consent: Vec<ConsentRule>,
    /// Caps.
    pub caps: Vec<CapRule>,
}

impl PolicySet {
    /// Ids of the rules screening evaluates (claims, off-label, required
    /// elements), for coverage.
    pub fn content_rule_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.claims.iter().map(|r| r.meta.id.clone()).collect();
        ids.push(self.off_label.meta.id.clone());
        ids.push(self.not_marketed.meta.id.clone());
        for m in self.markets.values() {
            ids.extend(m.require.iter().map(|r| r.meta.id.clone()));
        }
        ids
    }
}
