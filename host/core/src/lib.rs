//! Domain types shared by every omnigate host crate: channels, the HCP fields a
//! plugin can be granted, the HCP snapshot handed to plugins, and the redaction
//! of contact details before anything reaches a log or an error. Also the
//! storage interface ([`store`]) and what it stores: HCP profiles, the consent
//! ledger, engagement events, journeys, the MLR content registry and the
//! hash-chained audit trail (see `docs/store.md`).
//!
//! ```
//! use omnigate_core::{Channel, HcpField};
//!
//! let channel: Channel = "email".parse().unwrap();
//! assert_eq!(channel, Channel::Email);
//! assert!(HcpField::Email.is_contact_detail());
//! ```

// Tests may unwrap: a panic there is a failed test, not a crash.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod audit;
pub mod campaign;
pub mod canonical;
mod canonical_writer;
pub mod channel;
pub mod consent;
pub mod content;
pub mod event;
pub mod field;
pub mod hcp;
pub mod journey;
pub mod journeys;
pub mod ledger;
pub mod redact;
pub mod snapshot;
pub mod store;
pub mod suggestion;
pub mod template;

pub use channel::Channel;
pub use field::HcpField;
pub use snapshot::{ChannelStats, EngagementStats, HcpSnapshot};

pub use audit::{AuditEntry, AuditReport, ChainBreak};
pub use consent::{
    ConsentId, ConsentRecord, ConsentScope, ConsentSource, ConsentStatus, NewConsent, Purpose,
};
pub use content::{
    ApprovalPolicy, ContentBody, ContentState, ContentVersion, ReviewRole, VersionHash,
};
pub use event::{Event, EventType, NewEvent, UnixMillis};
pub use hcp::{ContactDetails, HcpId, HcpProfile};
pub use store::{Store, StoreError, StoreResult};
