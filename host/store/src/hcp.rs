//! HCP profiles.

use omnigate_core::audit::NewAuditEntry;
use omnigate_core::canonical::to_canonical_json;
use omnigate_core::hcp::{ContactDetails, HcpId, HcpProfile};
use omnigate_core::store::{HcpStore, StoreError, StoreResult, UpsertReport};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};

use crate::db::{During, SqliteStore};

/// A profile as stored: the non-contact document and the contact columns.
#[derive(PartialEq)]
struct Row {
    doc: String,
    email: Option<String>,
    phone: Option<String>,
    wechat_id: Option<String>,
}

fn to_row(p: &HcpProfile) -> StoreResult<Row> {
    let mut doc = serde_json::to_value(p).during("encode an HCP profile")?;
    if let Value::Object(map) = &mut doc {
        map.remove("contact");
    }
    Ok(Row {
        doc: to_canonical_json(&doc),
        email: p.contact.email.clone(),
        phone: p.contact.phone.clone(),
        wechat_id: p.contact.wechat_id.clone(),
    })
}

fn check(p: &HcpProfile) -> StoreResult<()> {
    let empty = if p.name.trim().is_empty() {
        Some("name")
    } else if p.market.trim().is_empty() {
        Some("market")
    } else {
        None
    };
    match empty {
        Some(field) => Err(StoreError::InvalidInput(format!(
            "HCP `{}`: {field} must not be empty; nothing was stored",
            p.id
        ))),
        None => Ok(()),
    }
}

/// The internal key of an HCP, if it exists.
pub(crate) fn num(conn: &Connection, id: &HcpId) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT num FROM hcp WHERE id = ?1")?
        .query_row([id.as_str()], |r| r.get(0))
        .optional()
}

/// Whether an HCP exists.
pub(crate) fn exists(conn: &Connection, id: &HcpId) -> rusqlite::Result<bool> {
    num(conn, id).map(|n| n.is_some())
}

/// Loads one profile.
pub(crate) fn load(conn: &Connection, id: &HcpId) -> StoreResult<Option<HcpProfile>> {
    const OP: &str = "read an HCP profile";
    let row = conn
        .prepare_cached("SELECT doc, email, phone, wechat_id FROM hcp WHERE id = ?1")
        .during(OP)?
        .query_row([id.as_str()], |r| {
            Ok(Row {
                doc: r.get(0)?,
                email: r.get(1)?,
                phone: r.get(2)?,
                wechat_id: r.get(3)?,
            })
        })
        .optional()
        .during(OP)?;
    let Some(row) = row else { return Ok(None) };
    from_row(OP, row).map(Some)
}

fn from_row(op: &'static str, row: Row) -> StoreResult<HcpProfile> {
    let mut profile: HcpProfile = serde_json::from_str(&row.doc).during(op)?;
    profile.contact = ContactDetails {
        email: row.email,
        phone: row.phone,
        wechat_id: row.wechat_id,
    };
    Ok(profile)
}

impl HcpStore for SqliteStore {
    fn upsert_profiles(&self, actor: &str, profiles: &[HcpProfile]) -> StoreResult<UpsertReport> {
        const OP: &str = "store HCP profiles";
        for p in profiles {
            check(p)?;
        }
        self.write(OP, |tx, audit| {
            let mut report = UpsertReport::default();
            let mut select = tx
                .prepare_cached("SELECT doc, email, phone, wechat_id FROM hcp WHERE id = ?1")
                .during(OP)?;
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO hcp (id, market, doc, email, phone, wechat_id, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (id) DO UPDATE SET market = excluded.market, doc = excluded.doc,
                         email = excluded.email, phone = excluded.phone,
                         wechat_id = excluded.wechat_id, updated_at = excluded.updated_at",
                )
                .during(OP)?;
            for p in profiles {
                let new = to_row(p)?;
                let old = select
                    .query_row([p.id.as_str()], |r| {
                        Ok(Row {
                            doc: r.get(0)?,
                            email: r.get(1)?,
                            phone: r.get(2)?,
                            wechat_id: r.get(3)?,
                        })
                    })
                    .optional()
                    .during(OP)?;
                let action = match &old {
                    Some(old) if *old == new => {
                        report.unchanged += 1;
                        continue;
                    }
                    Some(_) => {
                        report.updated += 1;
                        "hcp.update"
                    }
                    None => {
                        report.inserted += 1;
                        "hcp.insert"
                    }
                };
                upsert
                    .execute(params![
                        p.id.as_str(),
                        p.market,
                        new.doc,
                        new.email,
                        new.phone,
                        new.wechat_id,
                        audit.now()
                    ])
                    .during(OP)?;
                // Which contact details changed, by name only (invariant 7).
                let contact_changed: Vec<&str> = old
                    .as_ref()
                    .map(|o| {
                        [
                            ("email", o.email != new.email),
                            ("phone", o.phone != new.phone),
                            ("wechat-id", o.wechat_id != new.wechat_id),
                        ]
                        .into_iter()
                        .filter_map(|(n, changed)| changed.then_some(n))
                        .collect()
                    })
                    .unwrap_or_default();
                let payload =
                    json!({"profile": p.audit_view(), "contact_changed": contact_changed});
                audit.append(
                    tx,
                    NewAuditEntry::new(actor, action, p.id.as_str(), payload),
                )?;
            }
            Ok(report)
        })
    }

    fn profile(&self, id: &HcpId) -> StoreResult<Option<HcpProfile>> {
        self.read("read an HCP profile", |c| load(c, id))
    }

    fn profiles_after(
        &self,
        market: Option<&str>,
        after: Option<&HcpId>,
        limit: usize,
    ) -> StoreResult<Vec<HcpProfile>> {
        const OP: &str = "list HCP profiles";
        let after = after.map_or("", HcpId::as_str);
        let limit = limit.min(100_000) as i64;
        self.read(OP, |c| {
            let (sql, args): (&str, Vec<&dyn rusqlite::ToSql>) = match &market {
                Some(m) => (
                    "SELECT doc, email, phone, wechat_id FROM hcp
                     WHERE market = ?1 AND id > ?2 ORDER BY market, id LIMIT ?3",
                    vec![m, &after, &limit],
                ),
                None => (
                    "SELECT doc, email, phone, wechat_id FROM hcp
                     WHERE id > ?1 ORDER BY id LIMIT ?2",
                    vec![&after, &limit],
                ),
            };
            let mut stmt = c.prepare_cached(sql).during(OP)?;
            let rows = stmt
                .query_map(args.as_slice(), |r| {
                    Ok(Row {
                        doc: r.get(0)?,
                        email: r.get(1)?,
                        phone: r.get(2)?,
                        wechat_id: r.get(3)?,
                    })
                })
                .during(OP)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .during(OP)?;
            rows.into_iter().map(|row| from_row(OP, row)).collect()
        })
    }

    fn hcp_count(&self) -> StoreResult<u64> {
        const OP: &str = "count HCPs";
        self.read(OP, |c| {
            c.query_row("SELECT count(*) FROM hcp", [], |r| r.get::<_, i64>(0))
                .during(OP)
                .map(|n| n.unsigned_abs())
        })
    }
}
