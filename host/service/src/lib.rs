//! omnigate's operations on HCP data and the MLR content registry, once:
//! the HTTP API (`omnigate-api`) and the command line (`omnigate hcp ...`,
//! `omnigate content ...`) are thin wrappers over [`Service`].
//!
//! The service parses and checks what users send ([`input`]: every problem
//! named with its line or JSON path), calls the store (one transaction per
//! call, audit entries included), pre-screens content versions at
//! submission with the active policy, and maps every failure to a
//! [`ServiceError`] with a stable code. Methods are synchronous: async
//! callers use `spawn_blocking`.
//!
//! ```
//! use std::sync::Arc;
//! use omnigate_core::Store;
//! use omnigate_policy::PolicyHandle;
//! use omnigate_service::{Service, input};
//! use omnigate_store::{SqliteStore, StoreOptions};
//!
//! let dir = tempfile::tempdir()?;
//! let store: Arc<dyn Store> = Arc::new(SqliteStore::open(StoreOptions::new(dir.path()))?);
//! let service = Service::new(store, Arc::new(PolicyHandle::empty()));
//! let lines = r#"{"id": "1234567890", "name": "Dr. Jane Doe", "market": "US"}"#;
//! let batch = input::read_json_lines(lines.as_bytes(), "hcps.jsonl", input::profile, &mut |_| {})?;
//! let outcome = service.import_profiles("importer", &batch)?;
//! assert_eq!(outcome.inserted, 1);
//! let err = service.hcp("0000000000", 0).unwrap_err();
//! assert_eq!(err.to_string(), "unknown HCP `0000000000`");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod error;
pub mod gate;
pub mod input;
pub mod orchestration;
pub mod views;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use omnigate_core::consent::{self, ConsentRecord, NewConsent};
use omnigate_core::content::{ContentBody, NewPreScreen};
use omnigate_core::event::{NewEvent, UnixMillis};
use omnigate_core::store::ConsentQuery;
use omnigate_core::{HcpId, HcpProfile, Store, VersionHash};
use omnigate_policy::PolicyHandle;
use omnigate_policy::content::{PreScreen, prescreen};

pub use error::{ErrorKind, Location, ServiceError, ServiceResult};
pub use input::Batch;
use views::*;

/// Longest actor name, reason or note accepted, in bytes.
pub const MAX_TEXT_BYTES: usize = 4096;

/// Records stored per transaction by the `*_chunked` methods.
pub const CHUNK: usize = 10_000;

/// The operations, over a store and the active policy.
///
/// The policy handle is shared with whoever reloads it (`omnigate serve`
/// on SIGHUP), so a submission is always pre-screened with the policy in
/// force at that moment.
#[derive(Clone)]
pub struct Service {
    store: Arc<dyn Store>,
    policy: Arc<PolicyHandle>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("policy_version", &self.policy.version())
            .finish_non_exhaustive()
    }
}

fn arg(name: &str) -> Location {
    Location::argument(name)
}

/// Checks an actor name: who is acting, as recorded in the audit log.
///
/// # Errors
///
/// An empty, overlong or control-character name.
pub fn actor(name: &str) -> ServiceResult<String> {
    input::short_text(name, &arg("actor"), "the actor", 128)
}

impl Service {
    /// A service over `store`, pre-screening with the policy `policy` holds.
    pub fn new(store: Arc<dyn Store>, policy: Arc<PolicyHandle>) -> Self {
        Service { store, policy }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The policy handle.
    pub fn policy(&self) -> &Arc<PolicyHandle> {
        &self.policy
    }

    // ---- HCPs -----------------------------------------------------------

    /// Inserts or replaces profiles, in one transaction.
    ///
    /// # Errors
    ///
    /// A store failure (the input was checked when parsed).
    pub fn import_profiles(
        &self,
        actor: &str,
        batch: &Batch<HcpProfile>,
    ) -> ServiceResult<ImportOutcome> {
        let actor = self::actor(actor)?;
        let r = self.store.upsert_profiles(&actor, batch.items())?;
        Ok(ImportOutcome {
            inserted: r.inserted,
            updated: r.updated,
            unchanged: r.unchanged,
        })
    }

    /// Inserts or replaces profiles in transactions of [`CHUNK`], for files
    /// of any length; `progress` gets the profiles stored so far. Upserts
    /// are idempotent, so a file interrupted midway can be run again.
    ///
    /// # Errors
    ///
    /// A store failure; the chunks before it stay stored.
    pub fn import_profiles_chunked(
        &self,
        actor: &str,
        batch: &Batch<HcpProfile>,
        progress: &mut dyn FnMut(usize),
    ) -> ServiceResult<ImportOutcome> {
        let actor = self::actor(actor)?;
        let mut out = ImportOutcome {
            inserted: 0,
            updated: 0,
            unchanged: 0,
        };
        let mut done = 0;
        for chunk in batch.items().chunks(CHUNK) {
            let r = self.store.upsert_profiles(&actor, chunk)?;
            out.inserted += r.inserted;
            out.updated += r.updated;
            out.unchanged += r.unchanged;
            done += chunk.len();
            progress(done);
        }
        Ok(out)
    }

    fn hcp_arg(&self, id: &str, name: &str) -> ServiceResult<HcpId> {
        input::hcp_id(id, &arg(name))
    }

    /// Fails with the unknown-HCP error unless `id` exists.
    fn existing(&self, id: &HcpId) -> ServiceResult<HcpProfile> {
        self.store
            .profile(id)?
            .ok_or_else(|| ServiceError::unknown_hcp(id, None))
    }

    /// One HCP: profile (without contact details), consent state, features
    /// as of `now`, journeys, latest events.
    ///
    /// # Errors
    ///
    /// An invalid or unknown id.
    pub fn hcp(&self, id: &str, now: UnixMillis) -> ServiceResult<HcpView> {
        let id = self.hcp_arg(id, "id")?;
        let profile = self.existing(&id)?;
        let survivor = self.store.survivor_of(&id)?;
        let history = self.store.consent_history(&id)?;
        let events = self.store.events_of(&id)?;
        let events_total = events.len();
        let timeline = events
            .into_iter()
            .skip(events_total.saturating_sub(TIMELINE_IN_VIEW))
            .collect();
        let mut journeys = Vec::new();
        for brand in self.store.journey_brands(&id)? {
            journeys.push(JourneyView {
                stage: self.store.journey_stage(&id, &brand)?,
                history: self.store.journey_history(&id, &brand)?,
                brand,
            });
        }
        Ok(HcpView {
            profile: profile.into(),
            merged_into: (survivor != id).then_some(survivor),
            consent: current_per_scope(history),
            features: self.store.features(&id, now)?,
            journeys,
            timeline,
            events_total,
        })
    }

    /// Every event of an HCP (and of the records merged with it), oldest
    /// first.
    ///
    /// # Errors
    ///
    /// An invalid or unknown id.
    pub fn timeline(&self, id: &str) -> ServiceResult<Vec<omnigate_core::Event>> {
        let id = self.hcp_arg(id, "id")?;
        Ok(self.store.events_of(&id)?)
    }

    /// Links `merged` to `survivor` (reversible).
    ///
    /// # Errors
    ///
    /// Invalid or unknown ids, an empty reason, a merge the rules refuse
    /// (`conflict`).
    pub fn merge(
        &self,
        actor: &str,
        survivor: &str,
        merged: &str,
        reason: &str,
    ) -> ServiceResult<MergeOutcome> {
        let actor = self::actor(actor)?;
        let s = self.hcp_arg(survivor, "survivor")?;
        let m = self.hcp_arg(merged, "merged")?;
        let reason = input::short_text(reason, &arg("reason"), "the reason", MAX_TEXT_BYTES)?;
        if s == m {
            return Err(ServiceError::invalid(
                arg("merged"),
                format!("cannot merge HCP `{s}` into itself"),
            ));
        }
        for (id, name) in [(&s, "survivor"), (&m, "merged")] {
            if self.store.profile(id)?.is_none() {
                return Err(ServiceError::unknown_hcp(id, Some(arg(name))));
            }
        }
        let id = self.store.merge_hcps(&actor, &s, &m, &reason)?;
        Ok(MergeOutcome { merge_id: id.0 })
    }

    /// Undoes a merge.
    ///
    /// # Errors
    ///
    /// An unknown or already undone merge, an empty reason.
    pub fn unmerge(&self, actor: &str, merge_id: i64, reason: &str) -> ServiceResult<()> {
        let actor = self::actor(actor)?;
        let reason = input::short_text(reason, &arg("reason"), "the reason", MAX_TEXT_BYTES)?;
        Ok(self
            .store
            .unmerge_hcps(&actor, omnigate_core::store::MergeId(merge_id), &reason)?)
    }

    /// Puts an HCP on a journey stage by decision.
    ///
    /// # Errors
    ///
    /// An unknown HCP or stage, an empty brand or reason.
    pub fn set_journey_stage(
        &self,
        actor: &str,
        hcp: &str,
        brand: &str,
        stage: &str,
        reason: &str,
    ) -> ServiceResult<JourneyView> {
        let actor = self::actor(actor)?;
        let id = self.hcp_arg(hcp, "id")?;
        let brand = input::short_text(brand, &arg("brand"), "the brand", 128)?;
        let reason = input::short_text(reason, &arg("reason"), "the reason", MAX_TEXT_BYTES)?;
        self.existing(&id)?;
        self.store
            .set_journey_stage(&actor, &id, &brand, stage, &reason)
            .map_err(|e| match e {
                omnigate_core::StoreError::InvalidInput(m) => {
                    ServiceError::invalid_value(arg("stage"), &m)
                }
                other => other.into(),
            })?;
        Ok(JourneyView {
            stage: self.store.journey_stage(&id, &brand)?,
            history: self.store.journey_history(&id, &brand)?,
            brand,
        })
    }

    // ---- consent --------------------------------------------------------

    /// Appends consent records, all or none, in one transaction.
    ///
    /// # Errors
    ///
    /// An unknown HCP, named with its line or JSON path; nothing is stored.
    pub fn record_consents(
        &self,
        actor: &str,
        batch: &Batch<NewConsent>,
    ) -> ServiceResult<RecordOutcome> {
        let actor = self::actor(actor)?;
        let ids = self
            .store
            .record_consents(&actor, batch.items())
            .map_err(|e| match e {
                omnigate_core::StoreError::UnknownHcp(id) => {
                    let at = batch
                        .locate_first(|c| c.scope.hcp == id)
                        .map(|l| l.child("hcp"));
                    ServiceError::unknown_hcp(&id, at)
                }
                other => other.into(),
            })?;
        Ok(RecordOutcome {
            recorded: ids.len(),
            ids: ids.into_iter().map(|i| i.0).collect(),
        })
    }

    /// Every consent record of an HCP's merge group, oldest first, and the
    /// current state per scope.
    ///
    /// # Errors
    ///
    /// An invalid or unknown id.
    pub fn consent_history(&self, id: &str) -> ServiceResult<ConsentOverview> {
        let id = self.hcp_arg(id, "id")?;
        let history = self.store.consent_history(&id)?;
        Ok(ConsentOverview {
            current: current_per_scope(history.clone()),
            records: history.into_iter().map(ConsentView::from).collect(),
        })
    }

    /// The record that decides a consent question, and whether it allows a
    /// dispatch.
    ///
    /// # Errors
    ///
    /// Invalid arguments (each named), an unknown HCP.
    pub fn consent_current(
        &self,
        hcp: &str,
        channel: &str,
        purpose: &str,
        market: &str,
        product: Option<&str>,
    ) -> ServiceResult<CurrentConsent> {
        let hcp = self.hcp_arg(hcp, "hcp")?;
        let channel = channel
            .parse()
            .map_err(|e: omnigate_core::channel::UnknownChannel| {
                ServiceError::invalid_value(arg("channel"), &e.to_string())
            })?;
        let purpose = purpose.parse().map_err(|e: consent::UnknownName| {
            ServiceError::invalid_value(arg("purpose"), &e.to_string())
        })?;
        let market = input::short_text(market, &arg("market"), "the market", 32)?;
        let product = match product {
            Some(p) => Some(input::short_text(p, &arg("product"), "the product", 128)?),
            None => None,
        };
        let q = ConsentQuery {
            hcp,
            channel,
            purpose,
            market,
            product,
        };
        let deciding = self.store.deciding_consent(&q)?;
        Ok(CurrentConsent {
            allows_dispatch: deciding
                .as_ref()
                .is_some_and(|r| r.consent.status == consent::ConsentStatus::OptIn),
            deciding: deciding.map(ConsentView::from),
        })
    }

    // ---- events ---------------------------------------------------------

    fn batch_id(batch_id: &str) -> ServiceResult<String> {
        input::short_text(batch_id, &arg("batch_id"), "the batch id", 128)
    }

    fn map_ingest_error(batch: &Batch<NewEvent>, e: omnigate_core::StoreError) -> ServiceError {
        match e {
            omnigate_core::StoreError::EventForUnknownHcp { event, hcp } => {
                let at = batch
                    .locate_first(|x| x.id == event)
                    .map(|l| l.child("hcp"));
                ServiceError::NotFound {
                    code: "unknown-hcp",
                    message: format!("unknown HCP `{hcp}`; nothing in the batch was stored"),
                    at,
                }
            }
            other => other.into(),
        }
    }

    /// Stores a batch of events in one transaction; events already stored
    /// (same id) are skipped, and a batch stored before adds nothing and
    /// says so (`replay`).
    ///
    /// # Errors
    ///
    /// An unknown HCP (with its line or JSON path); nothing is stored.
    pub fn ingest_events(
        &self,
        actor: &str,
        batch_id: &str,
        batch: &Batch<NewEvent>,
    ) -> ServiceResult<IngestOutcome> {
        let actor = self::actor(actor)?;
        let batch_id = Self::batch_id(batch_id)?;
        let r = self
            .store
            .ingest(&actor, &batch_id, batch.items())
            .map_err(|e| Self::map_ingest_error(batch, e))?;
        Ok(IngestOutcome {
            replay: r.accepted == 0 && r.duplicates > 0,
            batch_id,
            accepted: r.accepted,
            duplicates: r.duplicates,
        })
    }

    /// Stores a batch of any length in transactions of [`CHUNK`] events
    /// (batch ids `<batch_id>/1`, `<batch_id>/2`, ... when there is more
    /// than one). Every HCP is checked first, so an unknown HCP anywhere
    /// stores nothing; events are idempotent, so a run interrupted midway
    /// can be repeated. `progress` gets the events handled so far.
    ///
    /// # Errors
    ///
    /// An unknown HCP (nothing stored), a store failure (earlier chunks stay).
    pub fn ingest_events_chunked(
        &self,
        actor: &str,
        batch_id: &str,
        batch: &Batch<NewEvent>,
        progress: &mut dyn FnMut(usize),
    ) -> ServiceResult<IngestOutcome> {
        let actor = self::actor(actor)?;
        let batch_id = Self::batch_id(batch_id)?;
        let mut seen: HashSet<&HcpId> = HashSet::new();
        for (i, e) in batch.items().iter().enumerate() {
            if seen.insert(&e.hcp) && self.store.profile(&e.hcp)?.is_none() {
                return Err(ServiceError::NotFound {
                    code: "unknown-hcp",
                    message: format!("unknown HCP `{}`; nothing was stored", e.hcp),
                    at: Some(batch.locate(i).child("hcp")),
                });
            }
        }
        let chunks = batch.len().div_ceil(CHUNK).max(1);
        let mut out = IngestOutcome {
            batch_id: batch_id.clone(),
            accepted: 0,
            duplicates: 0,
            replay: false,
        };
        let mut done = 0;
        for (n, chunk) in batch.items().chunks(CHUNK).enumerate() {
            let id = if chunks == 1 {
                batch_id.clone()
            } else {
                format!("{batch_id}/{}", n + 1)
            };
            let r = self
                .store
                .ingest(&actor, &id, chunk)
                .map_err(|e| Self::map_ingest_error(batch, e))?;
            out.accepted += r.accepted;
            out.duplicates += r.duplicates;
            done += chunk.len();
            progress(done);
        }
        out.replay = out.accepted == 0 && out.duplicates > 0;
        Ok(out)
    }

    // ---- content --------------------------------------------------------

    fn hash_arg(hash: &str) -> ServiceResult<VersionHash> {
        input::version_hash(hash, &arg("hash"))
    }

    fn load_version(&self, hash: &VersionHash) -> ServiceResult<omnigate_core::ContentVersion> {
        self.store
            .version(hash)?
            .ok_or_else(|| ServiceError::NotFound {
                code: "unknown-version",
                message: format!("unknown content version `{hash}`"),
                at: None,
            })
    }

    /// Stores `body` as the new current version of `item`, in draft (the
    /// same body again changes nothing).
    ///
    /// # Errors
    ///
    /// An invalid item id, a body that belongs to another item or is an
    /// earlier version of this one.
    pub fn put_version(
        &self,
        actor: &str,
        item: &str,
        body: &ContentBody,
    ) -> ServiceResult<PutOutcome> {
        let actor = self::actor(actor)?;
        let item = input::item_id(item, &arg("item"))?;
        // Bodies parsed by `input::content_body` passed this already; one
        // built in code gets the same located message.
        let at = Location::Document {
            name: "content body".into(),
            path: "$".into(),
        };
        input::check_body(body, &at)?;
        let existed = match body.version_hash() {
            Ok(h) => self.store.version(&h)?.is_some(),
            Err(_) => false,
        };
        let hash = self.store.put_version(&actor, &item, body)?;
        let v = self.load_version(&hash)?;
        Ok(PutOutcome {
            hash,
            item,
            state: v.state,
            created: !existed,
        })
    }

    /// One version with its state, sign-offs, required and missing roles and
    /// its pre-screen.
    ///
    /// # Errors
    ///
    /// An invalid or unknown hash.
    pub fn version(&self, hash: &str) -> ServiceResult<VersionView> {
        let hash = Self::hash_arg(hash)?;
        let v = self.load_version(&hash)?;
        let current = self.store.current_version(&v.item)?;
        let required = self
            .store
            .approval_policy()
            .required_roles(&v.body.metadata.markets);
        let sign_offs = self.store.sign_offs(&hash)?;
        let signed: BTreeSet<_> = sign_offs.iter().map(|s| s.role).collect();
        let prescreen = self.store.prescreen(&hash)?;
        Ok(VersionView {
            current: current.as_ref() == Some(&hash),
            prescreen_summary: prescreen.as_ref().map(PreScreenSummary::of),
            missing_roles: required.difference(&signed).copied().collect(),
            required_roles: required.into_iter().collect(),
            sign_offs,
            prescreen,
            hash,
            item: v.item,
            author: v.author,
            created_at: v.created_at,
            state: v.state,
            body: v.body,
        })
    }

    /// An item's versions, oldest first.
    ///
    /// # Errors
    ///
    /// An invalid or unknown item.
    pub fn versions(&self, item: &str) -> ServiceResult<ItemVersions> {
        let item = input::item_id(item, &arg("item"))?;
        let Some(current) = self.store.current_version(&item)? else {
            return Err(ServiceError::NotFound {
                code: "unknown-item",
                message: format!("unknown content item `{item}`"),
                at: None,
            });
        };
        let versions = self
            .store
            .versions_of(&item)?
            .into_iter()
            .map(|v| VersionSummary {
                current: v.hash == current,
                hash: v.hash,
                author: v.author,
                created_at: v.created_at,
                state: v.state,
            })
            .collect();
        Ok(ItemVersions {
            item,
            current,
            versions,
        })
    }

    /// Draft -> in review. The version is pre-screened with the policy in
    /// force on every market and channel it declares; the pre-screen is
    /// recorded with the submission (same transaction) for the reviewers.
    /// Blocking findings do not prevent submission.
    ///
    /// # Errors
    ///
    /// An invalid or unknown hash, a version that is not the current draft.
    pub fn submit(&self, actor: &str, hash: &str) -> ServiceResult<SubmitOutcome> {
        let actor = self::actor(actor)?;
        let hash = Self::hash_arg(hash)?;
        let v = self.load_version(&hash)?;
        if v.state != omnigate_core::ContentState::Draft {
            return Err(omnigate_core::StoreError::WrongState {
                action: "submit",
                version: hash,
                state: v.state,
            }
            .into());
        }
        let report = match self.policy.current() {
            Some(p) => prescreen(&p, p.version(), &v.body),
            None => PreScreen::without_policy(&v.body),
        };
        let record = NewPreScreen {
            policy_version: report.policy_version.clone(),
            report: serde_json::to_value(&report).map_err(|e| ServiceError::Internal {
                message: format!("cannot encode the pre-screen: {e}"),
            })?,
        };
        self.store.submit_for_review(&actor, &hash, &record)?;
        Ok(SubmitOutcome {
            hash,
            state: omnigate_core::ContentState::InReview,
            prescreen: report,
        })
    }

    /// Signs one role off; the last required role approves.
    ///
    /// # Errors
    ///
    /// An invalid hash or role, an unknown version; refusals: the author,
    /// a role not required, a role already signed, a person who signed
    /// another role, a version that is not current or not in review.
    pub fn sign_off(&self, reviewer: &str, hash: &str, role: &str) -> ServiceResult<ReviewOutcome> {
        let reviewer = self::actor(reviewer)?;
        let hash = Self::hash_arg(hash)?;
        let role = input::review_role(role, &arg("role"))?;
        let out = self.store.sign_off(&reviewer, &hash, role)?;
        Ok(ReviewOutcome {
            hash,
            state: out.state,
            missing_roles: out.missing,
        })
    }

    /// In review -> changes requested, with a note for the author.
    ///
    /// # Errors
    ///
    /// As [`Service::sign_off`], and an empty note.
    pub fn request_changes(
        &self,
        reviewer: &str,
        hash: &str,
        role: &str,
        note: &str,
    ) -> ServiceResult<ReviewOutcome> {
        let reviewer = self::actor(reviewer)?;
        let hash = Self::hash_arg(hash)?;
        let role = input::review_role(role, &arg("role"))?;
        let note = input::short_text(note, &arg("note"), "the note", MAX_TEXT_BYTES)?;
        self.store.request_changes(&reviewer, &hash, role, &note)?;
        Ok(ReviewOutcome {
            hash,
            state: omnigate_core::ContentState::ChangesRequested,
            missing_roles: Vec::new(),
        })
    }

    /// Approved -> withdrawn.
    ///
    /// # Errors
    ///
    /// An invalid or unknown hash, an empty reason, a version not approved.
    pub fn withdraw(&self, actor: &str, hash: &str, reason: &str) -> ServiceResult<ReviewOutcome> {
        let actor = self::actor(actor)?;
        let hash = Self::hash_arg(hash)?;
        let reason = input::short_text(reason, &arg("reason"), "the reason", MAX_TEXT_BYTES)?;
        self.store.withdraw(&actor, &hash, &reason)?;
        Ok(ReviewOutcome {
            hash,
            state: omnigate_core::ContentState::Withdrawn,
            missing_roles: Vec::new(),
        })
    }

    /// Expires every approved version whose expiry is at or before `now`.
    ///
    /// # Errors
    ///
    /// A store failure.
    pub fn expire_due(&self, actor: &str, now: UnixMillis) -> ServiceResult<ExpireOutcome> {
        let actor = self::actor(actor)?;
        Ok(ExpireOutcome {
            expired: self.store.expire_due(&actor, now)?,
        })
    }

    // ---- audit ----------------------------------------------------------

    /// Audit entries from `from` (from 1), at most `limit` (1 to 1000).
    ///
    /// # Errors
    ///
    /// A limit out of range.
    pub fn audit_entries(&self, from: i64, limit: usize) -> ServiceResult<AuditPage> {
        if !(1..=1000).contains(&limit) {
            return Err(ServiceError::invalid(
                arg("limit"),
                format!("`limit` is {limit}; it must be 1 to 1000"),
            ));
        }
        let entries = self.store.audit_entries(from.max(1), limit)?;
        let next = (entries.len() == limit)
            .then(|| entries.last().map(|e| e.seq + 1))
            .flatten();
        Ok(AuditPage { entries, next })
    }

    /// Walks the audit chain.
    ///
    /// # Errors
    ///
    /// A store failure.
    pub fn verify_audit(&self) -> ServiceResult<AuditVerify> {
        Ok(self.store.verify_audit()?)
    }
}

/// The latest record at each exact scope: the current state per scope.
fn current_per_scope(history: Vec<ConsentRecord>) -> Vec<ConsentView> {
    let mut scopes: BTreeMap<(String, String, String, String), Vec<ConsentRecord>> =
        BTreeMap::new();
    for r in history {
        let s = &r.consent.scope;
        let key = (
            s.channel.to_string(),
            s.purpose.to_string(),
            s.market.clone(),
            s.product.clone().unwrap_or_default(),
        );
        scopes.entry(key).or_default().push(r);
    }
    scopes
        .values()
        .filter_map(|records| consent::latest(records).cloned())
        .map(ConsentView::from)
        .collect()
}
