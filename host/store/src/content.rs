//! The MLR content registry: immutable versions, review and sign-off.
//!
//! INVARIANT: a version's body never changes (a trigger forbids it) and is
//! checked against its hash every time it is loaded, so what reviewers
//! signed is what the gate later sees.

use std::collections::BTreeSet;

use omnigate_core::audit::NewAuditEntry;
use omnigate_core::canonical::{canonical_json_of, sha256_hex, to_canonical_json};
use omnigate_core::content::{
    ContentBody, ContentState, ContentVersion, NewPreScreen, PreScreenRecord, ReviewRole, SignOff,
    VersionHash,
};
use omnigate_core::event::UnixMillis;
use omnigate_core::store::{ContentStore, SignOffOutcome, StoreError, StoreResult};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::json;

use crate::audit::AuditWriter;
use crate::db::{During, SqliteStore, corrupt};

const OP_READ: &str = "read a content version";

fn check_body(item: &str, body: &ContentBody) -> StoreResult<()> {
    let m = &body.metadata;
    let bad = if item.trim().is_empty() {
        Some("the item id must not be empty".to_owned())
    } else if body.parts.is_empty() {
        Some("a version needs at least one text part".to_owned())
    } else if m.product.trim().is_empty() {
        Some("metadata.product must not be empty".to_owned())
    } else if m.markets.is_empty() || m.channels.is_empty() {
        Some("metadata.markets and metadata.channels must not be empty".to_owned())
    } else {
        body.variants
            .keys()
            .find(|ch| !m.channels.contains(ch))
            .map(|ch| {
                format!("a variant for channel `{ch}`, which metadata.channels does not list")
            })
    };
    match bad {
        Some(why) => Err(StoreError::InvalidInput(format!(
            "content item `{item}`: {why}; nothing was stored"
        ))),
        None => Ok(()),
    }
}

/// One version, with the hash of its stored body checked.
fn load(c: &Connection, hash: &VersionHash) -> StoreResult<Option<ContentVersion>> {
    let row = c
        .prepare_cached(
            "SELECT item_id, author, created_at, body, state FROM content_version WHERE hash = ?1",
        )
        .during(OP_READ)?
        .query_row([&hash.0], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })
        .optional()
        .during(OP_READ)?;
    let Some((item, author, created_at, body, state)) = row else {
        return Ok(None);
    };
    // The stored body is the canonical form, so its sha256 is the id.
    let computed = sha256_hex(body.as_bytes());
    if computed != hash.0 {
        return Err(StoreError::Backend {
            op: OP_READ,
            message: format!(
                "content version `{hash}` does not match its stored body (sha256 `{computed}`)"
            ),
        });
    }
    Ok(Some(ContentVersion {
        hash: hash.clone(),
        item,
        author,
        created_at,
        state: state
            .parse()
            .map_err(|_| corrupt(OP_READ, "content state", &state))?,
        body: serde_json::from_str(&body).during(OP_READ)?,
    }))
}

fn current_of(c: &Connection, item: &str) -> StoreResult<Option<(VersionHash, String)>> {
    c.prepare_cached("SELECT current, author FROM content_item WHERE id = ?1")
        .during(OP_READ)?
        .query_row([item], |r| Ok((VersionHash(r.get(0)?), r.get(1)?)))
        .optional()
        .during(OP_READ)
}

/// Loads a version for an action: it must exist, be its item's current
/// version and be in `from`. Returns it with its item's author.
fn for_action(
    c: &Connection,
    hash: &VersionHash,
    action: &'static str,
    from: ContentState,
) -> StoreResult<(ContentVersion, String)> {
    let v = load(c, hash)?.ok_or_else(|| StoreError::UnknownVersion(hash.clone()))?;
    let (current, item_author) =
        current_of(c, &v.item)?.ok_or_else(|| StoreError::UnknownVersion(hash.clone()))?;
    if current != *hash && from != ContentState::Approved {
        return Err(StoreError::NotCurrentVersion {
            version: hash.clone(),
            item: v.item,
            current,
        });
    }
    if v.state != from {
        return Err(StoreError::WrongState {
            action,
            version: hash.clone(),
            state: v.state,
        });
    }
    Ok((v, item_author))
}

fn set_state(
    tx: &Connection,
    audit: &mut AuditWriter,
    actor: &str,
    v: &ContentVersion,
    to: ContentState,
    extra: serde_json::Value,
) -> StoreResult<()> {
    debug_assert!(v.state.can_become(to));
    tx.prepare_cached("UPDATE content_version SET state = ?2 WHERE hash = ?1")
        .and_then(|mut s| s.execute(params![v.hash.0, to.as_str()]))
        .during("change a content version's state")?;
    let payload = json!({"item": v.item, "from": v.state, "to": to, "details": extra});
    audit.append(
        tx,
        NewAuditEntry::new(actor, format!("content.{to}"), &v.hash.0, payload),
    )
}

/// Checks a reviewer against the version's author(s) and required roles.
fn check_reviewer(
    store: &SqliteStore,
    v: &ContentVersion,
    item_author: &str,
    reviewer: &str,
    role: ReviewRole,
) -> StoreResult<BTreeSet<ReviewRole>> {
    if reviewer == v.author || reviewer == item_author {
        return Err(StoreError::AuthorCannotReview {
            version: v.hash.clone(),
            reviewer: reviewer.to_owned(),
        });
    }
    let required = store
        .approval_policy_now()
        .required_roles(&v.body.metadata.markets);
    if !required.contains(&role) {
        return Err(StoreError::RoleNotRequired {
            version: v.hash.clone(),
            role,
            required: required
                .iter()
                .map(|r| format!("`{r}`"))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(required)
}

fn sign_offs_of(c: &Connection, hash: &VersionHash) -> StoreResult<Vec<SignOff>> {
    const OP: &str = "read sign-offs";
    let mut stmt = c
        .prepare_cached("SELECT role, reviewer, signed_at FROM sign_off WHERE version = ?1 ORDER BY signed_at, role")
        .during(OP)?;
    let mut rows = stmt.query([&hash.0]).during(OP)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().during(OP)? {
        let role: String = r.get(0).during(OP)?;
        out.push(SignOff {
            version: hash.clone(),
            role: role
                .parse()
                .map_err(|_| corrupt(OP, "review role", &role))?,
            reviewer: r.get(1).during(OP)?,
            signed_at: r.get(2).during(OP)?,
        });
    }
    Ok(out)
}

impl ContentStore for SqliteStore {
    fn put_version(&self, actor: &str, item: &str, body: &ContentBody) -> StoreResult<VersionHash> {
        const OP: &str = "store a content version";
        check_body(item, body)?;
        let canonical = canonical_json_of(body).during(OP)?;
        let hash = VersionHash(sha256_hex(canonical.as_bytes()));
        self.write(OP, |tx, audit| {
            let current = current_of(tx, item)?;
            if let Some(existing) = load(tx, &hash)? {
                return match current {
                    _ if existing.item != item => Err(StoreError::VersionOfOtherItem {
                        version: hash.clone(),
                        item: existing.item,
                    }),
                    Some((cur, _)) if cur == hash => Ok(hash.clone()),
                    _ => Err(StoreError::InvalidInput(format!(
                        "content version `{hash}` is an earlier version of item `{item}`; \
                         edit it into a new version instead"
                    ))),
                };
            }
            let now = audit.now();
            if current.is_none() {
                tx.execute(
                    "INSERT INTO content_item (id, author, created_at, current) VALUES (?1, ?2, ?3, ?4)",
                    params![item, actor, now, hash.0],
                )
                .during(OP)?;
            }
            tx.execute(
                "INSERT INTO content_version (hash, item_id, author, created_at, body, expires_at, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'draft')",
                params![hash.0, item, actor, now, canonical, body.metadata.expires_at],
            )
            .during(OP)?;
            tx.execute("UPDATE content_item SET current = ?2 WHERE id = ?1", params![item, hash.0])
                .during(OP)?;
            let m = &body.metadata;
            let payload = json!({
                "item": item, "previous": current.map(|(h, _)| h.0), "product": m.product,
                "markets": m.markets, "channels": m.channels, "expires_at": m.expires_at,
            });
            audit.append(tx, NewAuditEntry::new(actor, "content.draft", &hash.0, payload))?;
            Ok(hash.clone())
        })
    }

    fn version(&self, hash: &VersionHash) -> StoreResult<Option<ContentVersion>> {
        self.read(OP_READ, |c| load(c, hash))
    }

    fn current_version(&self, item: &str) -> StoreResult<Option<VersionHash>> {
        self.read(OP_READ, |c| Ok(current_of(c, item)?.map(|(h, _)| h)))
    }

    fn submit_for_review(
        &self,
        actor: &str,
        hash: &VersionHash,
        prescreen: &NewPreScreen,
    ) -> StoreResult<()> {
        const OP: &str = "submit a content version";
        let report = to_canonical_json(&prescreen.report);
        let sha256 = sha256_hex(report.as_bytes());
        self.write(OP, |tx, audit| {
            let (v, _) = for_action(tx, hash, "submit", ContentState::Draft)?;
            // INVARIANT: the pre-screen, the state change and the audit
            // entry vouching for the pre-screen commit together.
            tx.prepare_cached(
                "INSERT INTO content_prescreen
                     (version, policy_version, submitted_by, submitted_at, report, sha256)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    hash.0,
                    prescreen.policy_version,
                    actor,
                    audit.now(),
                    report,
                    sha256
                ])
            })
            .during(OP)?;
            let details = json!({
                "prescreen": {"policy_version": prescreen.policy_version, "sha256": sha256},
            });
            set_state(tx, audit, actor, &v, ContentState::InReview, details)
        })
    }

    fn prescreen(&self, hash: &VersionHash) -> StoreResult<Option<PreScreenRecord>> {
        const OP: &str = "read a pre-screen";
        self.read(OP, |c| {
            let row = c
                .prepare_cached(
                    "SELECT policy_version, submitted_by, submitted_at, report, sha256
                     FROM content_prescreen WHERE version = ?1",
                )
                .during(OP)?
                .query_row([&hash.0], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                })
                .optional()
                .during(OP)?;
            let Some((policy_version, submitted_by, submitted_at, report, sha256)) = row else {
                return Ok(None);
            };
            let computed = sha256_hex(report.as_bytes());
            if computed != sha256 {
                return Err(StoreError::Backend {
                    op: OP,
                    message: format!(
                        "the pre-screen of content version `{hash}` does not match its sha256"
                    ),
                });
            }
            Ok(Some(PreScreenRecord {
                version: hash.clone(),
                policy_version,
                submitted_by,
                submitted_at,
                sha256,
                report: serde_json::from_str(&report).during(OP)?,
            }))
        })
    }

    fn approval_policy(&self) -> omnigate_core::ApprovalPolicy {
        (*self.approval_policy_now()).clone()
    }

    fn versions_of(&self, item: &str) -> StoreResult<Vec<ContentVersion>> {
        self.read(OP_READ, |c| {
            let hashes: Vec<VersionHash> = c
                .prepare_cached(
                    "SELECT hash FROM content_version WHERE item_id = ?1 ORDER BY created_at, hash",
                )
                .during(OP_READ)?
                .query_map([item], |r| Ok(VersionHash(r.get(0)?)))
                .during(OP_READ)?
                .collect::<rusqlite::Result<_>>()
                .during(OP_READ)?;
            let mut out = Vec::with_capacity(hashes.len());
            for h in &hashes {
                out.extend(load(c, h)?);
            }
            Ok(out)
        })
    }

    fn sign_off(
        &self,
        reviewer: &str,
        hash: &VersionHash,
        role: ReviewRole,
    ) -> StoreResult<SignOffOutcome> {
        const OP: &str = "sign off a content version";
        self.write(OP, |tx, audit| {
            let (v, item_author) = for_action(tx, hash, "sign off", ContentState::InReview)?;
            let required = check_reviewer(self, &v, &item_author, reviewer, role)?;
            let signed = sign_offs_of(tx, hash)?;
            if let Some(s) = signed.iter().find(|s| s.role == role || s.reviewer == reviewer) {
                let reason = if s.role == role {
                    format!("role `{role}` was already signed by `{}`", s.reviewer)
                } else {
                    format!("`{reviewer}` already signed as `{}`; each role needs a different person", s.role)
                };
                return Err(StoreError::DuplicateSignOff {
                    version: hash.clone(),
                    reason,
                });
            }
            tx.execute(
                "INSERT INTO sign_off (version, role, reviewer, signed_at) VALUES (?1, ?2, ?3, ?4)",
                params![hash.0, role.as_str(), reviewer, audit.now()],
            )
            .during(OP)?;
            let payload = json!({"item": v.item, "role": role, "reviewer": reviewer, "version_signed": hash.0});
            audit.append(tx, NewAuditEntry::new(reviewer, "content.sign-off", &hash.0, payload))?;
            let done: BTreeSet<ReviewRole> = signed.iter().map(|s| s.role).chain([role]).collect();
            let missing: Vec<ReviewRole> = required.difference(&done).copied().collect();
            let state = if missing.is_empty() {
                set_state(tx, audit, reviewer, &v, ContentState::Approved, json!({"roles": done}))?;
                // The new approved version supersedes the item's older ones:
                // what is still queued with them is not sent.
                let older: Vec<String> = tx
                    .prepare_cached(
                        "SELECT hash FROM content_version
                         WHERE item_id = ?1 AND hash <> ?2 AND state = 'approved'",
                    )
                    .and_then(|mut s| {
                        s.query_map(params![v.item, hash.0], |r| r.get(0))?
                            .collect()
                    })
                    .during(OP)?;
                for old in older {
                    let scope = omnigate_core::ledger::CancelScope::Version(VersionHash(old));
                    let reason = format!("superseded by version {}", hash.0);
                    crate::ledger::cancel_in(tx, audit, reviewer, &scope, &reason)?;
                }
                ContentState::Approved
            } else {
                ContentState::InReview
            };
            Ok(SignOffOutcome { state, missing })
        })
    }

    fn request_changes(
        &self,
        reviewer: &str,
        hash: &VersionHash,
        role: ReviewRole,
        note: &str,
    ) -> StoreResult<()> {
        self.write("request changes to a content version", |tx, audit| {
            let (v, item_author) =
                for_action(tx, hash, "request changes to", ContentState::InReview)?;
            check_reviewer(self, &v, &item_author, reviewer, role)?;
            let details = json!({"role": role, "note": note});
            set_state(
                tx,
                audit,
                reviewer,
                &v,
                ContentState::ChangesRequested,
                details,
            )
        })
    }

    fn withdraw(&self, actor: &str, hash: &VersionHash, reason: &str) -> StoreResult<()> {
        self.write("withdraw a content version", |tx, audit| {
            let (v, _) = for_action(tx, hash, "withdraw", ContentState::Approved)?;
            set_state(
                tx,
                audit,
                actor,
                &v,
                ContentState::Withdrawn,
                json!({"reason": reason}),
            )?;
            // Withdrawal reaches the channels: nothing queued goes out.
            let scope = omnigate_core::ledger::CancelScope::Version(hash.clone());
            crate::ledger::cancel_in(tx, audit, actor, &scope, "content version withdrawn")?;
            Ok(())
        })
    }

    fn expire_due(&self, actor: &str, now: UnixMillis) -> StoreResult<Vec<VersionHash>> {
        const OP: &str = "expire content versions";
        self.write(OP, |tx, audit| {
            let due: Vec<VersionHash> = tx
                .prepare_cached(
                    "SELECT hash FROM content_version
                     WHERE state = 'approved' AND expires_at <= ?1 ORDER BY expires_at, hash",
                )
                .during(OP)?
                .query_map([now], |r| Ok(VersionHash(r.get(0)?)))
                .during(OP)?
                .collect::<rusqlite::Result<_>>()
                .during(OP)?;
            for hash in &due {
                let (v, _) = for_action(tx, hash, "expire", ContentState::Approved)?;
                set_state(
                    tx,
                    audit,
                    actor,
                    &v,
                    ContentState::Expired,
                    json!({"as_of": now}),
                )?;
                let scope = omnigate_core::ledger::CancelScope::Version(hash.clone());
                crate::ledger::cancel_in(tx, audit, actor, &scope, "content version expired")?;
            }
            Ok(due)
        })
    }

    fn sign_offs(&self, hash: &VersionHash) -> StoreResult<Vec<SignOff>> {
        self.read("read sign-offs", |c| sign_offs_of(c, hash))
    }

    fn latest_approved(&self, item: &str) -> StoreResult<Option<VersionHash>> {
        const OP: &str = "read an item's latest approved version";
        self.read(OP, |c| {
            c.prepare_cached(
                "SELECT hash FROM content_version INDEXED BY content_version_item_state
                 WHERE item_id = ?1 AND (state = 'approved' OR state = 'expired' OR state = 'withdrawn')
                 ORDER BY created_at DESC, hash DESC LIMIT 1",
            )
            .and_then(|mut s| {
                s.query_row([item], |r| Ok(VersionHash(r.get(0)?)))
                    .optional()
            })
            .during(OP)
        })
    }

    fn version_state(&self, hash: &VersionHash) -> StoreResult<Option<ContentState>> {
        const OP: &str = "read a content version's state";
        self.read(OP, |c| {
            let state: Option<String> = c
                .prepare_cached(
                    "SELECT state FROM content_version INDEXED BY content_version_state
                     WHERE hash = ?1",
                )
                .and_then(|mut s| s.query_row([&hash.0], |r| r.get(0)).optional())
                .during(OP)?;
            state
                .map(|s| {
                    ContentState::ALL
                        .into_iter()
                        .find(|k| k.as_str() == s)
                        .ok_or_else(|| crate::db::corrupt(OP, "content state", &s))
                })
                .transpose()
        })
    }
}
