//! omnigate's embedded store: HCP profiles, the consent ledger, engagement
//! events with their derived features, the MLR content registry and the
//! hash-chained audit trail, in one SQLite file.
//!
//! [`SqliteStore`] implements the storage traits of [`omnigate_core::store`];
//! callers hold it as an `Arc<dyn Store>` and never see SQLite. Every change
//! and its audit entry commit in one transaction, with WAL and
//! `synchronous=FULL`: a call that returned `Ok` survives a crash or a power
//! cut, and a call that failed changed nothing.
//!
//! ```
//! use omnigate_core::store::{ConsentQuery, ConsentStore, HcpStore};
//! use omnigate_core::{Channel, ConsentScope, ConsentSource, ConsentStatus, HcpId, HcpProfile, NewConsent, Purpose};
//! use omnigate_store::{SqliteStore, StoreOptions};
//!
//! let dir = tempfile::tempdir()?;
//! let store = SqliteStore::open(StoreOptions::new(dir.path().join("data")))?;
//! let id = HcpId::new("1234567890")?;
//! store.upsert_profiles("importer", &[HcpProfile::new(id.clone(), "Dr. Jane Doe", "US")])?;
//! let scope = ConsentScope {
//!     hcp: id.clone(), channel: Channel::Email, purpose: Purpose::Promotional,
//!     market: "US".into(), product: None,
//! };
//! let ids = store.record_consents("rep-7", &[NewConsent {
//!     scope, status: ConsentStatus::OptIn, source: ConsentSource::RepTablet,
//!     recorded_at: 1_700_000_000_000, recorded_by: "rep-7".into(),
//! }])?;
//! let query = ConsentQuery {
//!     hcp: id, channel: Channel::Email, purpose: Purpose::Promotional,
//!     market: "US".into(), product: Some("lipitex".into()),
//! };
//! assert_eq!(store.current_opt_in(&query)?, Some(ids[0]));
//! assert!(omnigate_core::store::AuditStore::verify_audit(&store)?.is_intact());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod audit;
mod campaign;
mod checkpoint;
mod consent;
mod content;
mod db;
mod events;
mod filter;
mod hcp;
mod hot;
mod identity;
mod journey;
mod journeys;
mod ledger;
mod migrate;
mod runs;
mod suggestion;
mod window;

pub use db::{OpenError, SqliteStore, StoreOptions};
pub use migrate::MIGRATIONS;

// INVARIANT: the SQLite backend is a complete `Store`, usable as
// `Arc<dyn Store>` from any thread.
const _: fn() = || {
    fn is_store<T: omnigate_core::Store + 'static>() {}
    is_store::<SqliteStore>();
};
