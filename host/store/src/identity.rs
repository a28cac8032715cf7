//! Identity merges: a survivor and the records linked to it read as one HCP.

use omnigate_core::audit::NewAuditEntry;
use omnigate_core::hcp::HcpId;
use omnigate_core::store::{IdentityStore, MergeId, StoreError, StoreResult};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::json;

use crate::db::{During, SqliteStore, corrupt};
use crate::hcp;

const OP: &str = "resolve an HCP's identity";

/// The active survivor of `num`, if it is merged into one.
fn survivor_num(c: &Connection, num: i64) -> rusqlite::Result<Option<i64>> {
    c.prepare_cached(
        "SELECT survivor_num FROM hcp_merge WHERE merged_num = ?1 AND reverted_at IS NULL",
    )?
    .query_row([num], |r| r.get(0))
    .optional()
}

/// The group `num` belongs to: its survivor first, then every record merged
/// into that survivor. A record never merged is a group of one.
pub(crate) fn group(c: &Connection, num: i64) -> rusqlite::Result<Vec<i64>> {
    let survivor = survivor_num(c, num)?.unwrap_or(num);
    let mut members = vec![survivor];
    let mut stmt = c.prepare_cached(
        "SELECT merged_num FROM hcp_merge WHERE survivor_num = ?1 AND reverted_at IS NULL ORDER BY id",
    )?;
    for m in stmt.query_map([survivor], |r| r.get(0))? {
        members.push(m?);
    }
    Ok(members)
}

/// The ids of some internal keys, in the same order.
pub(crate) fn ids_of(c: &Connection, nums: &[i64]) -> StoreResult<Vec<HcpId>> {
    let mut stmt = c
        .prepare_cached("SELECT id FROM hcp WHERE num = ?1")
        .during(OP)?;
    nums.iter()
        .map(|&n| {
            let id: String = stmt.query_row([n], |r| r.get(0)).during(OP)?;
            HcpId::new(id.as_str()).map_err(|_| corrupt(OP, "HCP id", &id))
        })
        .collect()
}

/// The group of the HCP with this id, or the unknown-HCP error.
pub(crate) fn group_of(c: &Connection, id: &HcpId) -> StoreResult<Vec<i64>> {
    let n = hcp::num(c, id)
        .during(OP)?
        .ok_or_else(|| StoreError::UnknownHcp(id.clone()))?;
    group(c, n).during(OP)
}

impl IdentityStore for SqliteStore {
    fn merge_hcps(
        &self,
        actor: &str,
        survivor: &HcpId,
        merged: &HcpId,
        reason: &str,
    ) -> StoreResult<MergeId> {
        const OP: &str = "merge HCP records";
        if survivor == merged {
            return Err(StoreError::InvalidInput(format!(
                "cannot merge HCP `{survivor}` into itself"
            )));
        }
        self.write(OP, |tx, audit| {
            let s = hcp::num(tx, survivor)
                .during(OP)?
                .ok_or_else(|| StoreError::UnknownHcp(survivor.clone()))?;
            let m = hcp::num(tx, merged)
                .during(OP)?
                .ok_or_else(|| StoreError::UnknownHcp(merged.clone()))?;
            // One level only: a survivor is never merged, a merged record
            // never a survivor, so a group is always one survivor and its
            // direct links.
            if let Some(other) = survivor_num(tx, m).during(OP)? {
                let other = ids_of(tx, &[other])?.remove(0);
                return Err(StoreError::InvalidInput(format!(
                    "HCP `{merged}` is already merged into `{other}`; undo that merge first"
                )));
            }
            if survivor_num(tx, s).during(OP)?.is_some() {
                return Err(StoreError::InvalidInput(format!(
                    "HCP `{survivor}` is itself merged into another record; merge into that one"
                )));
            }
            if group(tx, m).during(OP)?.len() > 1 {
                return Err(StoreError::InvalidInput(format!(
                    "HCP `{merged}` has records merged into it; it cannot be merged in turn"
                )));
            }
            tx.execute(
                "INSERT INTO hcp_merge (survivor_num, merged_num, reason, merged_by, merged_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![s, m, reason, actor, audit.now()],
            )
            .during(OP)?;
            let id = MergeId(tx.last_insert_rowid());
            let payload =
                json!({"merge": id.0, "survivor": survivor, "merged": merged, "reason": reason});
            audit.append(
                tx,
                NewAuditEntry::new(actor, "hcp.merge", survivor.as_str(), payload),
            )?;
            Ok(id)
        })
    }

    fn unmerge_hcps(&self, actor: &str, merge: MergeId, reason: &str) -> StoreResult<()> {
        const OP: &str = "undo an HCP merge";
        self.write(OP, |tx, audit| {
            let row: Option<(i64, i64)> = tx
                .query_row(
                    "SELECT survivor_num, merged_num FROM hcp_merge WHERE id = ?1 AND reverted_at IS NULL",
                    [merge.0],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .during(OP)?;
            let Some((s, m)) = row else {
                return Err(StoreError::InvalidInput(format!(
                    "no active HCP merge with id `{}`",
                    merge.0
                )));
            };
            tx.execute(
                "UPDATE hcp_merge SET reverted_by = ?2, reverted_at = ?3 WHERE id = ?1",
                params![merge.0, actor, audit.now()],
            )
            .during(OP)?;
            let ids = ids_of(tx, &[s, m])?;
            let payload = json!({"merge": merge.0, "survivor": ids[0], "merged": ids[1], "reason": reason});
            audit.append(tx, NewAuditEntry::new(actor, "hcp.unmerge", ids[0].as_str(), payload))
        })
    }

    fn survivor_of(&self, hcp: &HcpId) -> StoreResult<HcpId> {
        self.read(OP, |c| {
            let members = group_of(c, hcp)?;
            Ok(ids_of(c, &members[..1])?.remove(0))
        })
    }
}
