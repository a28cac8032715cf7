//! The consent ledger: every consent statement an HCP made, kept forever; the
//! current state is derived from it, never stored as a flag.
//!
//! A record's scope is HCP x channel x purpose x market, optionally narrowed
//! to one product. Which record decides a question is fixed by
//! [`resolve`]: the latest record at a scope wins, a product-specific record
//! beats a product-wide one, except that a product-wide opt-out newer than the
//! product-specific record stops it too (an opt-out stops everything not yet
//! sent). Only an [`ConsentStatus::OptIn`] allows a dispatch.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::event::UnixMillis;
use crate::{Channel, HcpId};

/// Why a message is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Purpose {
    /// Promotion of a product.
    Promotional,
    /// Medical information (non-promotional).
    Medical,
    /// Service messages (event logistics, account).
    Service,
}

impl Purpose {
    /// Every purpose, in a stable order.
    pub const ALL: [Purpose; 3] = [Purpose::Promotional, Purpose::Medical, Purpose::Service];

    /// The stable, kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Promotional => "promotional",
            Purpose::Medical => "medical",
            Purpose::Service => "service",
        }
    }
}

/// What the HCP said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConsentStatus {
    /// Agreed to be contacted.
    OptIn,
    /// Refused, or withdrew consent.
    OptOut,
    /// Agreed, but has not confirmed yet (double opt-in): not an opt-in.
    DoubleOptInPending,
}

impl ConsentStatus {
    /// Every status, in a stable order.
    pub const ALL: [ConsentStatus; 3] = [
        ConsentStatus::OptIn,
        ConsentStatus::OptOut,
        ConsentStatus::DoubleOptInPending,
    ];

    /// The stable, kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentStatus::OptIn => "opt-in",
            ConsentStatus::OptOut => "opt-out",
            ConsentStatus::DoubleOptInPending => "double-opt-in-pending",
        }
    }
}

/// Where a consent statement came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConsentSource {
    /// Captured by a rep on a tablet, usually with a signature.
    RepTablet,
    /// A web form on an HCP portal.
    WebForm,
    /// A link in an e-mail (confirm, unsubscribe).
    EmailLink,
    /// The HCP replied STOP (SMS, WeChat).
    ReplyStop,
    /// A call centre agent.
    CallCentre,
    /// Imported from another system of record.
    Import,
}

impl ConsentSource {
    /// Every source, in a stable order.
    pub const ALL: [ConsentSource; 6] = [
        ConsentSource::RepTablet,
        ConsentSource::WebForm,
        ConsentSource::EmailLink,
        ConsentSource::ReplyStop,
        ConsentSource::CallCentre,
        ConsentSource::Import,
    ];

    /// The stable, kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentSource::RepTablet => "rep-tablet",
            ConsentSource::WebForm => "web-form",
            ConsentSource::EmailLink => "email-link",
            ConsentSource::ReplyStop => "reply-stop",
            ConsentSource::CallCentre => "call-centre",
            ConsentSource::Import => "import",
        }
    }
}

macro_rules! parse_by_name {
    ($ty:ty, $what:literal) => {
        impl std::str::FromStr for $ty {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                <$ty>::ALL
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| UnknownName {
                        what: $what,
                        name: s.to_owned(),
                        expected: <$ty>::ALL.map(<$ty>::as_str).join(", "),
                    })
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
parse_by_name!(Purpose, "consent purpose");
parse_by_name!(ConsentStatus, "consent status");
parse_by_name!(ConsentSource, "consent source");

/// A name (purpose, status, source) that omnigate does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{name}` (expected one of: {expected})")]
pub struct UnknownName {
    /// What kind of name it was.
    pub what: &'static str,
    /// The name given.
    pub name: String,
    /// The names allowed.
    pub expected: String,
}

/// What a consent record is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConsentScope {
    /// The HCP.
    pub hcp: HcpId,
    /// The channel.
    pub channel: Channel,
    /// The purpose.
    pub purpose: Purpose,
    /// Market or region code.
    pub market: String,
    /// One product, or every product when absent.
    pub product: Option<String>,
}

/// A consent statement to append to the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewConsent {
    /// What it is about.
    pub scope: ConsentScope,
    /// What the HCP said.
    pub status: ConsentStatus,
    /// Where it came from.
    pub source: ConsentSource,
    /// When the HCP said it.
    pub recorded_at: UnixMillis,
    /// Who recorded it (rep id, system name).
    pub recorded_by: String,
}

/// The id of a stored consent record: what a dispatch cites as the consent it
/// relied on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ConsentId(pub i64);

impl fmt::Display for ConsentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "consent-{}", self.0)
    }
}

/// A stored consent record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRecord {
    /// Its id; ids grow with insertion order.
    pub id: ConsentId,
    /// The statement.
    #[serde(flatten)]
    pub consent: NewConsent,
}

/// Orders records at one scope: later `recorded_at` wins, then the later
/// insertion (a correction recorded for the same instant).
fn is_later(a: &ConsentRecord, b: &ConsentRecord) -> bool {
    (a.consent.recorded_at, a.id) > (b.consent.recorded_at, b.id)
}

/// The latest record at one exact scope, out of records at that scope.
pub fn latest<'a>(
    records: impl IntoIterator<Item = &'a ConsentRecord>,
) -> Option<&'a ConsentRecord> {
    records.into_iter().fold(None, |best, r| match best {
        Some(b) if !is_later(r, b) => Some(b),
        _ => Some(r),
    })
}

/// The record that decides a question about one product, given the latest
/// product-specific record and the latest product-wide record.
///
/// INVARIANT: a product-wide opt-in never overrides a product-specific
/// opt-out, and a product-wide opt-out newer than the product-specific record
/// always wins: when in doubt, no consent.
pub fn resolve<'a>(
    product_specific: Option<&'a ConsentRecord>,
    product_wide: Option<&'a ConsentRecord>,
) -> Option<&'a ConsentRecord> {
    match (product_specific, product_wide) {
        (Some(specific), Some(wide))
            if wide.consent.status != ConsentStatus::OptIn && is_later(wide, specific) =>
        {
            Some(wide)
        }
        (Some(specific), _) => Some(specific),
        (None, wide) => wide,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: i64, at: i64, status: ConsentStatus, product: Option<&str>) -> ConsentRecord {
        ConsentRecord {
            id: ConsentId(id),
            consent: NewConsent {
                scope: ConsentScope {
                    hcp: HcpId::new("h1").unwrap(),
                    channel: Channel::Email,
                    purpose: Purpose::Promotional,
                    market: "US".into(),
                    product: product.map(str::to_owned),
                },
                status,
                source: ConsentSource::WebForm,
                recorded_at: at,
                recorded_by: "rep-1".into(),
            },
        }
    }

    #[test]
    fn the_latest_record_wins_and_ties_go_to_the_later_insertion() {
        let a = rec(1, 100, ConsentStatus::OptIn, None);
        let b = rec(2, 50, ConsentStatus::OptOut, None);
        let c = rec(3, 100, ConsentStatus::OptOut, None);
        assert_eq!(latest([&a, &b]).unwrap().id, ConsentId(1));
        assert_eq!(latest([&c, &a, &b]).unwrap().id, ConsentId(3));
    }

    #[test]
    fn a_product_specific_record_beats_a_product_wide_opt_in() {
        let specific = rec(1, 100, ConsentStatus::OptOut, Some("lipitex"));
        let wide = rec(2, 200, ConsentStatus::OptIn, None);
        assert_eq!(
            resolve(Some(&specific), Some(&wide)).unwrap().id,
            ConsentId(1)
        );
    }

    #[test]
    fn a_newer_product_wide_opt_out_stops_a_product_opt_in() {
        let specific = rec(1, 100, ConsentStatus::OptIn, Some("lipitex"));
        let wide = rec(2, 200, ConsentStatus::OptOut, None);
        assert_eq!(
            resolve(Some(&specific), Some(&wide)).unwrap().id,
            ConsentId(2)
        );
        let older_wide = rec(3, 50, ConsentStatus::OptOut, None);
        assert_eq!(
            resolve(Some(&specific), Some(&older_wide)).unwrap().id,
            ConsentId(1)
        );
    }

    #[test]
    fn unknown_names_list_the_choices() {
        let err = "maybe".parse::<ConsentStatus>().unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown consent status `maybe` (expected one of: opt-in, opt-out, double-opt-in-pending)"
        );
    }
}
