//! The consent ledger: append, history, and the record that decides a query.

use omnigate_core::audit::NewAuditEntry;
use omnigate_core::consent::{self, ConsentId, ConsentRecord, ConsentScope, NewConsent};
use omnigate_core::hcp::HcpId;
use omnigate_core::store::{ConsentQuery, ConsentStore, StoreError, StoreResult};
use rusqlite::{Connection, params};
use serde_json::json;

use crate::db::{During, SqliteStore, corrupt};
use crate::{hcp, identity};

const COLUMNS: &str =
    "id, hcp_id, channel, purpose, market, product, status, source, recorded_at, recorded_by";

fn row_to_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<ConsentRecord, StoreError>> {
    const OP: &str = "read consent";
    let hcp: String = r.get(1)?;
    let channel: String = r.get(2)?;
    let purpose: String = r.get(3)?;
    let product: String = r.get(5)?;
    let status: String = r.get(6)?;
    let source: String = r.get(7)?;
    let parsed = (|| {
        Ok(ConsentRecord {
            id: ConsentId(
                r.get(0)
                    .map_err(|e| corrupt(OP, "consent id", &e.to_string()))?,
            ),
            consent: NewConsent {
                scope: ConsentScope {
                    hcp: HcpId::new(hcp.as_str()).map_err(|_| corrupt(OP, "HCP id", &hcp))?,
                    channel: channel
                        .parse()
                        .map_err(|_| corrupt(OP, "channel", &channel))?,
                    purpose: purpose
                        .parse()
                        .map_err(|_| corrupt(OP, "purpose", &purpose))?,
                    market: r
                        .get(4)
                        .map_err(|e| corrupt(OP, "market", &e.to_string()))?,
                    product: (!product.is_empty()).then_some(product.clone()),
                },
                status: status
                    .parse()
                    .map_err(|_| corrupt(OP, "consent status", &status))?,
                source: source
                    .parse()
                    .map_err(|_| corrupt(OP, "consent source", &source))?,
                recorded_at: r.get(8).map_err(|e| corrupt(OP, "time", &e.to_string()))?,
                recorded_by: r
                    .get(9)
                    .map_err(|e| corrupt(OP, "recorder", &e.to_string()))?,
            },
        })
    })();
    Ok(parsed)
}

fn check(c: &NewConsent) -> StoreResult<()> {
    let who = &c.scope.hcp;
    let bad = if c.scope.market.trim().is_empty() {
        Some("market must not be empty")
    } else if c
        .scope
        .product
        .as_deref()
        .is_some_and(|p| p.trim().is_empty())
    {
        Some("product must be absent or non-empty")
    } else if c.recorded_by.trim().is_empty() {
        Some("recorded_by must not be empty")
    } else {
        None
    };
    match bad {
        Some(why) => Err(StoreError::InvalidInput(format!(
            "consent for HCP `{who}`: {why}; nothing was stored"
        ))),
        None => Ok(()),
    }
}

/// The latest product-wide record (`product` '') and the latest record for
/// `product` (when given and not empty) over the records of every id in
/// `group` (an HCP and the records merged with it).
fn latest_in_group(
    conn: &Connection,
    group: &[HcpId],
    q: &ConsentQuery,
    product: Option<&str>,
) -> StoreResult<(Option<ConsentRecord>, Option<ConsentRecord>)> {
    let mut wide = Vec::new();
    let mut specific = Vec::new();
    for member in group {
        let (w, s) = latest_at(conn, member, q, product)?;
        wide.extend(w);
        specific.extend(s);
    }
    Ok((
        consent::latest(&wide).cloned(),
        consent::latest(&specific).cloned(),
    ))
}

/// [`latest_at`]'s statement: the latest row of each of two exact scopes,
/// product-wide (`?5` = '') and product-specific (`?6`), in one statement.
/// Each half is a seek to the end of its scope in the consent_scope index.
const LATEST_SQL: &str = "SELECT * FROM (
         SELECT id, hcp_id, channel, purpose, market, product, status, source, recorded_at,
                recorded_by
         FROM consent
         WHERE hcp_id = ?1 AND channel = ?2 AND purpose = ?3 AND market = ?4 AND product = ?5
         ORDER BY recorded_at DESC, id DESC LIMIT 1)
     UNION ALL
     SELECT * FROM (
         SELECT id, hcp_id, channel, purpose, market, product, status, source, recorded_at,
                recorded_by
         FROM consent
         WHERE hcp_id = ?1 AND channel = ?2 AND purpose = ?3 AND market = ?4 AND product = ?6
           AND ?6 <> ''
         ORDER BY recorded_at DESC, id DESC LIMIT 1)";

/// The latest product-wide record and the latest record for `product` for
/// one id.
fn latest_at(
    conn: &Connection,
    hcp: &HcpId,
    q: &ConsentQuery,
    product: Option<&str>,
) -> StoreResult<(Option<ConsentRecord>, Option<ConsentRecord>)> {
    const OP: &str = "read consent";
    let product = product.unwrap_or("");
    let mut stmt = conn.prepare_cached(LATEST_SQL).during(OP)?;
    let mut rows = stmt
        .query(params![
            hcp.as_str(),
            q.channel.as_str(),
            q.purpose.as_str(),
            q.market,
            "",
            product
        ])
        .during(OP)?;
    let (mut wide, mut specific) = (None, None);
    while let Some(row) = rows.next().during(OP)? {
        let rec = row_to_record(row).during(OP)??;
        if rec.consent.scope.product.is_none() {
            wide = Some(rec);
        } else {
            specific = Some(rec);
        }
    }
    Ok((wide, specific))
}

/// The record that decides `q`, inside a read.
pub(crate) fn deciding_in(c: &Connection, q: &ConsentQuery) -> StoreResult<Option<ConsentRecord>> {
    let group = identity::group_of(c, &q.hcp)?;
    deciding_in_group(c, q, &group)
}

/// [`deciding_in`] for a caller that has read the HCP's merge group
/// (`identity::group_of`) in the same read already.
pub(crate) fn deciding_in_group(
    c: &Connection,
    q: &ConsentQuery,
    group: &[i64],
) -> StoreResult<Option<ConsentRecord>> {
    // Consent follows the survivor: a merged HCP's statements count for the
    // whole group, the latest wins. A group of one is the HCP itself (a
    // merged record's group holds its survivor too): no id to look up.
    let group = if group.len() == 1 {
        vec![q.hcp.clone()]
    } else {
        identity::ids_of(c, group)?
    };
    let (wide, specific) = latest_in_group(c, &group, q, q.product.as_deref())?;
    Ok(consent::resolve(specific.as_ref(), wide.as_ref()).cloned())
}

impl ConsentStore for SqliteStore {
    fn record_consents(&self, actor: &str, records: &[NewConsent]) -> StoreResult<Vec<ConsentId>> {
        const OP: &str = "record consent";
        for c in records {
            check(c)?;
        }
        self.write(OP, |tx, audit| {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO consent (hcp_id, channel, purpose, market, product, status, source,
                                          recorded_at, recorded_by)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .during(OP)?;
            let mut ids = Vec::with_capacity(records.len());
            for c in records {
                let s = &c.scope;
                if !hcp::exists(tx, &s.hcp).during(OP)? {
                    return Err(StoreError::UnknownHcp(s.hcp.clone()));
                }
                insert
                    .execute(params![
                        s.hcp.as_str(),
                        s.channel.as_str(),
                        s.purpose.as_str(),
                        s.market,
                        s.product.as_deref().unwrap_or(""),
                        c.status.as_str(),
                        c.source.as_str(),
                        c.recorded_at,
                        c.recorded_by
                    ])
                    .during(OP)?;
                let id = ConsentId(tx.last_insert_rowid());
                ids.push(id);
                let payload = json!({
                    "consent_id": id.0, "channel": s.channel, "purpose": s.purpose,
                    "market": s.market, "product": s.product, "status": c.status,
                    "source": c.source, "recorded_at": c.recorded_at, "recorded_by": c.recorded_by,
                });
                audit.append(
                    tx,
                    NewAuditEntry::new(actor, "consent.record", s.hcp.as_str(), payload),
                )?;
                // An opt-out (or a consent back to pending) stops everything
                // not yet sent on that channel, whatever its purpose or
                // product: the gate re-checks at send time anyway.
                if c.status != consent::ConsentStatus::OptIn {
                    let scope =
                        omnigate_core::ledger::CancelScope::HcpChannel(s.hcp.clone(), s.channel);
                    let reason = format!("consent is now {}", c.status.as_str());
                    crate::ledger::cancel_in(tx, audit, actor, &scope, &reason)?;
                }
            }
            Ok(ids)
        })
    }

    fn consent_history(&self, hcp: &HcpId) -> StoreResult<Vec<ConsentRecord>> {
        const OP: &str = "read consent history";
        self.read(OP, |c| {
            let group = identity::ids_of(c, &identity::group_of(c, hcp)?)?;
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM consent WHERE hcp_id = ?1 ORDER BY id"
                ))
                .during(OP)?;
            let mut out = Vec::new();
            for member in &group {
                for row in stmt
                    .query_map([member.as_str()], row_to_record)
                    .during(OP)?
                {
                    out.push(row.during(OP)??);
                }
            }
            out.sort_by_key(|r| r.id);
            Ok(out)
        })
    }

    fn deciding_consent(&self, q: &ConsentQuery) -> StoreResult<Option<ConsentRecord>> {
        self.read("read consent", |c| deciding_in(c, q))
    }
}
