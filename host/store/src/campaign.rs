//! Campaigns, their members and the lease of the process running each.

use std::collections::{BTreeMap, BTreeSet};

use omnigate_core::Channel;
use omnigate_core::EngagementStats;
use omnigate_core::audit::NewAuditEntry;
use omnigate_core::campaign::{
    CampaignDefinition, CampaignId, CampaignRecord, CampaignState, CampaignStore, DecisionCounts,
    EngagementCount, Lease, Member, MemberCounts, MemberFacts, MemberFactsStore, MemberOutcome,
    MemberQuery, MemberTimeline, MemberUpdate, Reason, Touch,
};
use omnigate_core::canonical::{canonical_json_of, sha256_hex};
use omnigate_core::content::VersionHash;
use omnigate_core::event::UnixMillis;
use omnigate_core::hcp::HcpId;
use omnigate_core::journey::JourneyTransition;
use omnigate_core::ledger::CancelScope;
use omnigate_core::store::{StoreError, StoreResult};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::json;

use crate::db::{During, SqliteStore, corrupt};
use crate::ledger::cancel_in;

const CAMPAIGN_COLUMNS: &str = "num, definition, definition_sha256, state, created_by, created_at, \
     updated_at, resolved_at, lease_owner, lease_until";

fn campaign_row(r: &Row<'_>) -> rusqlite::Result<CampaignRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
    ))
}

type CampaignRow = (
    i64,
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    Option<i64>,
);

fn to_record(op: &'static str, row: CampaignRow) -> StoreResult<(i64, CampaignRecord)> {
    let (num, def, sha, state, by, created, updated, resolved, owner, until) = row;
    let definition: CampaignDefinition = serde_json::from_str(&def).during(op)?;
    let state =
        CampaignState::parse(&state).ok_or_else(|| corrupt(op, "campaign state", &state))?;
    Ok((
        num,
        CampaignRecord {
            definition,
            definition_sha256: sha,
            state,
            created_by: by,
            created_at: created,
            updated_at: updated,
            resolved_at: resolved,
            lease: match (owner, until) {
                (Some(owner), Some(until)) => Some(Lease { owner, until }),
                _ => None,
            },
        },
    ))
}

fn load(
    conn: &Connection,
    op: &'static str,
    id: &CampaignId,
) -> StoreResult<Option<(i64, CampaignRecord)>> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaign WHERE id = ?1"
        ))
        .during(op)?
        .query_row([id.as_str()], campaign_row)
        .optional()
        .during(op)?;
    row.map(|r| to_record(op, r)).transpose()
}

fn load_num(conn: &Connection, op: &'static str, id: &CampaignId) -> StoreResult<i64> {
    conn.prepare_cached("SELECT num FROM campaign WHERE id = ?1")
        .during(op)?
        .query_row([id.as_str()], |r| r.get(0))
        .optional()
        .during(op)?
        .ok_or_else(|| StoreError::UnknownCampaign(id.to_string()))
}

const MEMBER_COLUMNS: &str = "hcp, holdout, outcome, dispatch, channel, version, attempts, retry_at, reasons, rationale, updated_at";

type MemberRow = (
    String,
    bool,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    u32,
    Option<i64>,
    String,
    Option<String>,
    i64,
);

fn member_row(r: &Row<'_>) -> rusqlite::Result<MemberRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
    ))
}

fn to_member(op: &'static str, row: MemberRow) -> StoreResult<Member> {
    let (
        hcp,
        holdout,
        outcome,
        dispatch,
        channel,
        version,
        attempts,
        retry_at,
        reasons,
        rationale,
        at,
    ) = row;
    Ok(Member {
        hcp: HcpId::new(hcp.clone()).map_err(|_| corrupt(op, "HCP id", &hcp))?,
        holdout,
        outcome: MemberOutcome::parse(&outcome)
            .ok_or_else(|| corrupt(op, "member outcome", &outcome))?,
        dispatch,
        channel: channel
            .map(|c| c.parse::<Channel>().map_err(|_| corrupt(op, "channel", &c)))
            .transpose()?,
        version: version.map(VersionHash),
        attempts,
        retry_at,
        reasons: serde_json::from_str(&reasons).during(op)?,
        rationale,
        updated_at: at,
    })
}

fn query_members(
    conn: &Connection,
    op: &'static str,
    sql: &str,
    args: &[&dyn rusqlite::ToSql],
) -> StoreResult<Vec<Member>> {
    let mut stmt = conn.prepare_cached(sql).during(op)?;
    let rows = stmt
        .query_map(args, member_row)
        .during(op)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .during(op)?;
    rows.into_iter().map(|r| to_member(op, r)).collect()
}

impl CampaignStore for SqliteStore {
    fn create_campaign(
        &self,
        actor: &str,
        definition: &CampaignDefinition,
        at: UnixMillis,
    ) -> StoreResult<(CampaignRecord, bool)> {
        const OP: &str = "create a campaign";
        let problems = definition.problems();
        if let Some(p) = problems.first() {
            return Err(StoreError::InvalidInput(format!(
                "campaign `{}`: {}: {}; nothing was stored",
                definition.id, p.path, p.message
            )));
        }
        let canonical = canonical_json_of(definition).during(OP)?;
        let sha = sha256_hex(canonical.as_bytes());
        self.write(OP, |tx, audit| {
            if let Some((_, existing)) = load(tx, OP, &definition.id)? {
                if existing.definition_sha256 == sha {
                    return Ok((existing, false));
                }
                return Err(StoreError::CampaignExists(definition.id.to_string()));
            }
            tx.prepare_cached(
                "INSERT INTO campaign (id, definition, definition_sha256, priority, state,
                     created_by, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, 'draft', ?5, ?6, ?6)",
            )
            .during(OP)?
            .execute(params![
                definition.id.as_str(),
                canonical,
                sha,
                definition.priority,
                actor,
                at
            ])
            .during(OP)?;
            audit.append(
                tx,
                NewAuditEntry::new(
                    actor,
                    "campaign.create",
                    definition.id.as_str(),
                    json!({"definition_sha256": sha, "definition": definition}),
                ),
            )?;
            let (_, record) = load(tx, OP, &definition.id)?
                .ok_or_else(|| StoreError::UnknownCampaign(definition.id.to_string()))?;
            Ok((record, true))
        })
    }

    fn campaign(&self, id: &CampaignId) -> StoreResult<Option<CampaignRecord>> {
        const OP: &str = "read a campaign";
        self.read(OP, |c| Ok(load(c, OP, id)?.map(|(_, r)| r)))
    }

    fn campaigns(&self) -> StoreResult<Vec<CampaignRecord>> {
        const OP: &str = "list campaigns";
        self.read(OP, |c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {CAMPAIGN_COLUMNS} FROM campaign ORDER BY num"
                ))
                .during(OP)?;
            let rows = stmt
                .query_map([], campaign_row)
                .during(OP)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .during(OP)?;
            rows.into_iter()
                .map(|r| to_record(OP, r).map(|(_, r)| r))
                .collect()
        })
    }

    fn set_campaign_state(
        &self,
        actor: &str,
        id: &CampaignId,
        to: CampaignState,
        note: &str,
        at: UnixMillis,
    ) -> StoreResult<CampaignRecord> {
        const OP: &str = "change a campaign's state";
        self.write(OP, |tx, audit| {
            let (num, record) =
                load(tx, OP, id)?.ok_or_else(|| StoreError::UnknownCampaign(id.to_string()))?;
            let from = record.state;
            if from == to {
                return Ok(record);
            }
            if !from.can_become(to) {
                return Err(StoreError::CampaignState {
                    id: id.to_string(),
                    from,
                    to,
                });
            }
            tx.prepare_cached("UPDATE campaign SET state = ?1, updated_at = ?2 WHERE num = ?3")
                .during(OP)?
                .execute(params![to.as_str(), at, num])
                .during(OP)?;
            let mut cancelled = Vec::new();
            let mut unreached = 0;
            if to == CampaignState::Cancelled {
                cancelled = cancel_in(
                    tx,
                    audit,
                    actor,
                    &CancelScope::Campaign(id.to_string()),
                    "the campaign was cancelled",
                )?;
                let reasons = serde_json::to_string(&[Reason {
                    version: None,
                    channel: None,
                    rules: vec!["campaign-cancelled".into()],
                    decision: None,
                    message: format!("the campaign was cancelled: {note}"),
                }])
                .during(OP)?;
                unreached = tx
                    .prepare_cached(
                        "UPDATE campaign_member SET outcome = 'unreached', reasons = ?1,
                             updated_at = ?2
                         WHERE campaign_num = ?3 AND outcome = 'pending'",
                    )
                    .during(OP)?
                    .execute(params![reasons, at, num])
                    .during(OP)?;
            }
            audit.append(
                tx,
                NewAuditEntry::new(
                    actor,
                    "campaign.state",
                    id.as_str(),
                    json!({"from": from, "to": to, "note": note,
                           "cancelled_dispatches": cancelled.len(), "unreached": unreached}),
                ),
            )?;
            Ok(CampaignRecord {
                state: to,
                updated_at: at,
                ..record
            })
        })
    }

    fn claim_campaign(
        &self,
        id: &CampaignId,
        owner: &str,
        now: UnixMillis,
        until: UnixMillis,
    ) -> StoreResult<Result<(), Lease>> {
        const OP: &str = "claim a campaign's run";
        self.write(OP, |tx, _| {
            let (num, holder, held_until): (i64, Option<String>, Option<i64>) = tx
                .prepare_cached("SELECT num, lease_owner, lease_until FROM campaign WHERE id = ?1")
                .during(OP)?
                .query_row([id.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
                .during(OP)?
                .ok_or_else(|| StoreError::UnknownCampaign(id.to_string()))?;
            if let (Some(h), Some(u)) = (holder, held_until)
                && h != owner
                && u > now
            {
                return Ok(Err(Lease { owner: h, until: u }));
            }
            tx.prepare_cached(
                "UPDATE campaign SET lease_owner = ?1, lease_until = ?2 WHERE num = ?3",
            )
            .during(OP)?
            .execute(params![owner, until, num])
            .during(OP)?;
            Ok(Ok(()))
        })
    }

    fn release_campaign(&self, id: &CampaignId, owner: &str) -> StoreResult<()> {
        const OP: &str = "release a campaign's run";
        self.write(OP, |tx, _| {
            tx.prepare_cached(
                "UPDATE campaign SET lease_owner = NULL, lease_until = NULL
                 WHERE id = ?1 AND lease_owner = ?2",
            )
            .during(OP)?
            .execute(params![id.as_str(), owner])
            .during(OP)?;
            Ok(())
        })
    }

    fn add_members(
        &self,
        id: &CampaignId,
        members: &[(HcpId, bool)],
        last: bool,
        at: UnixMillis,
    ) -> StoreResult<()> {
        const OP: &str = "add campaign members";
        self.write(OP, |tx, audit| {
            let num = load_num(tx, OP, id)?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO campaign_member (campaign_num, hcp, holdout, outcome, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                )
                .during(OP)?;
            for (hcp, holdout) in members {
                let outcome = if *holdout { "holdout" } else { "pending" };
                insert
                    .execute(params![num, hcp.as_str(), holdout, outcome, at])
                    .during(OP)?;
            }
            if last {
                let (audience, holdout): (i64, i64) = tx
                    .prepare_cached(
                        "SELECT count(*), coalesce(sum(holdout), 0) FROM campaign_member
                         WHERE campaign_num = ?1",
                    )
                    .during(OP)?
                    .query_row([num], |r| Ok((r.get(0)?, r.get(1)?)))
                    .during(OP)?;
                tx.prepare_cached("UPDATE campaign SET resolved_at = ?1 WHERE num = ?2")
                    .during(OP)?
                    .execute(params![at, num])
                    .during(OP)?;
                audit.append(
                    tx,
                    NewAuditEntry::new(
                        "engine",
                        "campaign.audience",
                        id.as_str(),
                        json!({"audience": audience, "holdout": holdout}),
                    ),
                )?;
            }
            Ok(())
        })
    }

    fn pending_members(
        &self,
        id: &CampaignId,
        after: Option<&HcpId>,
        limit: usize,
        now: UnixMillis,
    ) -> StoreResult<Vec<Member>> {
        const OP: &str = "read pending campaign members";
        self.read(OP, |c| {
            let num = load_num(c, OP, id)?;
            let after = after.map_or("", HcpId::as_str);
            query_members(
                c,
                OP,
                &format!(
                    "SELECT {MEMBER_COLUMNS} FROM campaign_member
                     WHERE campaign_num = ?1 AND outcome = 'pending' AND hcp > ?2
                       AND (retry_at IS NULL OR retry_at <= ?3)
                     ORDER BY hcp LIMIT ?4"
                ),
                &[&num, &after, &now, &(limit.min(100_000) as i64)],
            )
        })
    }

    fn members(
        &self,
        id: &CampaignId,
        outcome: Option<MemberOutcome>,
        after: Option<&HcpId>,
        limit: usize,
    ) -> StoreResult<Vec<Member>> {
        const OP: &str = "read campaign members";
        self.read(OP, |c| {
            let num = load_num(c, OP, id)?;
            let after = after.map_or("", HcpId::as_str);
            let limit = limit.min(100_000) as i64;
            match outcome {
                Some(o) => query_members(
                    c,
                    OP,
                    &format!(
                        "SELECT {MEMBER_COLUMNS} FROM campaign_member
                         WHERE campaign_num = ?1 AND outcome = ?2 AND hcp > ?3
                         ORDER BY hcp LIMIT ?4"
                    ),
                    &[&num, &o.as_str(), &after, &limit],
                ),
                None => query_members(
                    c,
                    OP,
                    &format!(
                        "SELECT {MEMBER_COLUMNS} FROM campaign_member
                         WHERE campaign_num = ?1 AND hcp > ?2 ORDER BY hcp LIMIT ?3"
                    ),
                    &[&num, &after, &limit],
                ),
            }
        })
    }

    fn member(&self, id: &CampaignId, hcp: &HcpId) -> StoreResult<Option<Member>> {
        const OP: &str = "read a campaign member";
        self.read(OP, |c| {
            let num = load_num(c, OP, id)?;
            Ok(query_members(
                c,
                OP,
                &format!(
                    "SELECT {MEMBER_COLUMNS} FROM campaign_member
                     WHERE campaign_num = ?1 AND hcp = ?2"
                ),
                &[&num, &hcp.as_str()],
            )?
            .pop())
        })
    }

    fn update_members(
        &self,
        actor: &str,
        id: &CampaignId,
        updates: &[MemberUpdate],
        at: UnixMillis,
    ) -> StoreResult<()> {
        const OP: &str = "record campaign outcomes";
        if updates.is_empty() {
            return Ok(());
        }
        self.write(OP, |tx, audit| {
            let num = load_num(tx, OP, id)?;
            let mut stmt = tx
                .prepare_cached(
                    "UPDATE campaign_member SET outcome = ?1, dispatch = ?2, channel = ?3,
                         version = ?4, attempts = ?5, retry_at = ?6, reasons = ?7,
                         rationale = ?8, updated_at = ?9
                     WHERE campaign_num = ?10 AND hcp = ?11 AND outcome = 'pending'",
                )
                .during(OP)?;
            let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
            for u in updates {
                let reasons = serde_json::to_string(&u.reasons).during(OP)?;
                let n = stmt
                    .execute(params![
                        u.outcome.as_str(),
                        u.dispatch,
                        u.channel.map(Channel::as_str),
                        u.version.as_ref().map(|v| v.0.as_str()),
                        u.attempts,
                        u.retry_at,
                        reasons,
                        u.rationale,
                        at,
                        num,
                        u.hcp.as_str()
                    ])
                    .during(OP)?;
                if n == 0 {
                    return Err(StoreError::InvalidInput(format!(
                        "campaign `{id}`: HCP `{}` is not a pending member; no outcome was recorded",
                        u.hcp
                    )));
                }
                *counts.entry(u.outcome.as_str()).or_default() += 1;
            }
            audit.append(
                tx,
                NewAuditEntry::new(
                    actor,
                    "campaign.outcomes",
                    id.as_str(),
                    json!({"outcomes": counts,
                           "hcps": updates.iter().map(|u| u.hcp.as_str()).collect::<Vec<_>>()}),
                ),
            )?;
            Ok(())
        })
    }

    fn campaign_decisions(&self, id: &CampaignId) -> StoreResult<DecisionCounts> {
        const OP: &str = "count a campaign's decisions";
        self.read(OP, |c| {
            let mut out = DecisionCounts::default();
            let (all, blocked): (i64, i64) = c
                .prepare_cached(
                    "SELECT count(*), coalesce(sum(verdict = 'block'), 0) FROM decision
                     WHERE campaign = ?1",
                )
                .during(OP)?
                .query_row([id.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
                .during(OP)?;
            out.decisions = all.unsigned_abs();
            out.blocked = blocked.unsigned_abs();
            let mut stmt = c
                .prepare_cached(
                    "SELECT json_extract(record, '$.channel'), count(*) FROM decision
                     WHERE campaign = ?1 AND verdict = 'block' GROUP BY 1",
                )
                .during(OP)?;
            let rows = stmt
                .query_map([id.as_str()], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })
                .during(OP)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .during(OP)?;
            for (ch, n) in rows {
                let ch = ch
                    .parse::<Channel>()
                    .map_err(|_| corrupt(OP, "channel", &ch))?;
                out.blocked_by_channel.insert(ch, n.unsigned_abs());
            }
            let mut stmt = c
                .prepare_cached(
                    "SELECT json_extract(r.value, '$.rule'), count(*)
                     FROM decision AS d, json_each(d.record, '$.rules') AS r
                     WHERE d.campaign = ?1 AND d.verdict = 'block'
                       AND json_extract(r.value, '$.outcome') = 'block'
                     GROUP BY 1",
                )
                .during(OP)?;
            let rows = stmt
                .query_map([id.as_str()], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })
                .during(OP)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .during(OP)?;
            for (rule, n) in rows {
                out.blocked_by_rule.insert(rule, n.unsigned_abs());
            }
            Ok(out)
        })
    }

    fn outranked_by(
        &self,
        hcp: &HcpId,
        priority: i32,
        except: &CampaignId,
    ) -> StoreResult<Option<CampaignId>> {
        const OP: &str = "arbitrate between campaigns";
        self.read(OP, |c| {
            let id: Option<String> = c
                .prepare_cached(
                    "SELECT c.id FROM campaign_member AS m JOIN campaign AS c ON c.num = m.campaign_num
                     WHERE m.hcp = ?1 AND m.outcome = 'pending' AND c.priority > ?2 AND c.id <> ?3
                       AND (c.state = 'running' OR c.state = 'scheduled')
                     ORDER BY c.priority DESC, c.num LIMIT 1",
                )
                .during(OP)?
                .query_row(params![hcp.as_str(), priority, except.as_str()], |r| r.get(0))
                .optional()
                .during(OP)?;
            id.map(|i| CampaignId::new(i.clone()).map_err(|_| corrupt(OP, "campaign id", &i)))
                .transpose()
        })
    }

    fn campaign_engagement(&self, id: &CampaignId) -> StoreResult<Vec<EngagementCount>> {
        const OP: &str = "count a campaign's engagement";
        self.read(OP, |c| {
            // The campaign's dispatches, then the events naming them: one
            // pass over the log (events carry the dispatch id only in their
            // attributes).
            let mut stmt = c
                .prepare_cached(
                    "SELECT d.channel, d.version, t.name, count(*), count(DISTINCT e.hcp_num)
                     FROM event AS e
                     JOIN event_type_code AS t ON t.code = e.type
                     JOIN dispatch AS d ON d.id = json_extract(e.attributes, '$.dispatch_id')
                     WHERE d.campaign = ?1
                     GROUP BY d.channel, d.version, t.name
                     ORDER BY d.channel, d.version, t.name",
                )
                .during(OP)?;
            let rows = stmt
                .query_map([id.as_str()], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                })
                .during(OP)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .during(OP)?;
            rows.into_iter()
                .map(|(channel, version, event, n, hcps)| {
                    Ok(EngagementCount {
                        channel: channel
                            .parse()
                            .map_err(|_| corrupt(OP, "channel", &channel))?,
                        version: VersionHash(version),
                        event: serde_json::from_value(serde_json::Value::String(event.clone()))
                            .map_err(|_| corrupt(OP, "event type", &event))?,
                        events: n.unsigned_abs(),
                        hcps: hcps.unsigned_abs(),
                    })
                })
                .collect()
        })
    }

    fn member_counts(&self, id: &CampaignId, now: UnixMillis) -> StoreResult<MemberCounts> {
        const OP: &str = "count campaign members";
        self.read(OP, |c| {
            let num = load_num(c, OP, id)?;
            let mut counts = MemberCounts::default();
            let mut stmt = c
                .prepare_cached(
                    "SELECT outcome, channel, holdout, count(*) FROM campaign_member
                     WHERE campaign_num = ?1 GROUP BY outcome, channel, holdout",
                )
                .during(OP)?;
            let rows = stmt
                .query_map([num], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, bool>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                })
                .during(OP)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .during(OP)?;
            for (outcome, channel, holdout, n) in rows {
                let n = n.unsigned_abs();
                let outcome = MemberOutcome::parse(&outcome)
                    .ok_or_else(|| corrupt(OP, "member outcome", &outcome))?;
                counts.audience += n;
                if holdout {
                    counts.holdout += n;
                }
                *counts.by_outcome.entry(outcome).or_default() += n;
                let channel = channel
                    .map(|c| c.parse::<Channel>().map_err(|_| corrupt(OP, "channel", &c)))
                    .transpose()?;
                match (outcome, channel) {
                    (MemberOutcome::Dispatched, Some(ch)) => {
                        *counts.dispatched_by_channel.entry(ch).or_default() += n;
                    }
                    (MemberOutcome::Failed, Some(ch)) => {
                        *counts.failed_by_channel.entry(ch).or_default() += n;
                    }
                    _ => {}
                }
            }
            let mut stmt = c
                .prepare_cached(
                    "SELECT reasons FROM campaign_member
                     WHERE campaign_num = ?1 AND outcome = 'suppressed'",
                )
                .during(OP)?;
            let mut rows = stmt.query([num]).during(OP)?;
            while let Some(row) = rows.next().during(OP)? {
                let text: String = row.get(0).during(OP)?;
                let reasons: Vec<Reason> = serde_json::from_str(&text).during(OP)?;
                let rules: BTreeSet<&str> = reasons
                    .iter()
                    .flat_map(|r| r.rules.iter().map(String::as_str))
                    .collect();
                for rule in rules {
                    *counts
                        .suppressed_by_rule
                        .entry(rule.to_owned())
                        .or_default() += 1;
                }
            }
            counts.settled_last_minute = c
                .prepare_cached(
                    "SELECT count(*) FROM campaign_member
                     WHERE campaign_num = ?1 AND outcome <> 'pending' AND outcome <> 'holdout'
                       AND updated_at > ?2",
                )
                .during(OP)?
                .query_row(params![num, now - 60_000], |r| r.get::<_, i64>(0))
                .during(OP)?
                .unsigned_abs();
            Ok(counts)
        })
    }

    fn campaign_timelines(
        &self,
        id: &CampaignId,
        since: UnixMillis,
        visit: &mut dyn FnMut(MemberTimeline) -> StoreResult<()>,
    ) -> StoreResult<()> {
        const OP: &str = "read a campaign's touches";
        self.read(OP, |c| {
            let (num, record) =
                load(c, OP, id)?.ok_or_else(|| StoreError::UnknownCampaign(id.to_string()))?;
            let brand = record.definition.product;
            let mut touches = c.prepare_cached(&touches_sql()).during(OP)?;
            let mut touches = touches.query(params![num, since]).during(OP)?;
            let mut moves = c
                .prepare_cached(&format!(
                    "{TREATED_GROUPS}
                     SELECT grp.hcp, t.from_stage, t.to_stage, t.cause, t.event_id, t.at
                     FROM grp JOIN journey_transition AS t
                       ON t.hcp_num = grp.num AND t.brand = ?3
                     WHERE t.at >= ?2
                     ORDER BY grp.hcp, t.at, t.id"
                ))
                .during(OP)?;
            let mut moves = moves.query(params![num, since, brand]).during(OP)?;
            let touch_of = |r: &Row<'_>| -> StoreResult<(String, Touch)> {
                let channel: String = r.get(1).during(OP)?;
                Ok((
                    r.get(0).during(OP)?,
                    Touch {
                        channel: channel
                            .parse()
                            .map_err(|_| corrupt(OP, "channel", &channel))?,
                        at: r.get(2).during(OP)?,
                    },
                ))
            };
            let move_of = |r: &Row<'_>| -> StoreResult<(String, JourneyTransition)> {
                Ok((
                    r.get(0).during(OP)?,
                    JourneyTransition {
                        brand: brand.clone(),
                        from: r.get(1).during(OP)?,
                        to: r.get(2).during(OP)?,
                        cause: r.get(3).during(OP)?,
                        event: r.get(4).during(OP)?,
                        at: r.get(5).during(OP)?,
                    },
                ))
            };
            // Both streams are in HCP order: a merge join, one member in
            // memory at a time.
            let mut touch = touches.next().during(OP)?.map(touch_of).transpose()?;
            let mut next_move = moves.next().during(OP)?.map(move_of).transpose()?;
            while let Some((hcp, first)) = touch.take() {
                let mut timeline = MemberTimeline {
                    hcp: HcpId::new(hcp.as_str()).map_err(|_| corrupt(OP, "HCP id", &hcp))?,
                    touches: vec![first],
                    moves: Vec::new(),
                };
                loop {
                    match touches.next().during(OP)?.map(touch_of).transpose()? {
                        Some((h, t)) if h == hcp => timeline.touches.push(t),
                        other => {
                            touch = other;
                            break;
                        }
                    }
                }
                while let Some((h, m)) = next_move.take() {
                    if h > hcp {
                        next_move = Some((h, m));
                        break;
                    }
                    if h == hcp {
                        timeline.moves.push(m);
                    }
                    next_move = moves.next().during(OP)?.map(move_of).transpose()?;
                }
                visit(timeline)?;
            }
            Ok(())
        })
    }
}

/// The treated members of campaign `?1` and every record of each one's
/// merge group (the survivor and the records merged into it), as
/// `grp(hcp, num)`: the member's id, a record's internal key.
const TREATED_GROUPS: &str = "
    WITH root(hcp, num) AS (
        SELECT m.hcp, coalesce(
            (SELECT g.survivor_num FROM hcp_merge AS g
             WHERE g.merged_num = h.num AND g.reverted_at IS NULL),
            h.num)
        FROM campaign_member AS m JOIN hcp AS h ON h.id = m.hcp
        WHERE m.campaign_num = ?1 AND m.holdout = 0
    ),
    grp(hcp, num) AS MATERIALIZED (
        SELECT hcp, num FROM root
        UNION ALL
        SELECT r.hcp, g.merged_num FROM root AS r
        JOIN hcp_merge AS g ON g.survivor_num = r.num AND g.reverted_at IS NULL
    )";

/// The touches of campaign `?1`'s treated members at or after `?2`, as
/// `(hcp, channel, at)` in HCP, time and channel order: sent dispatches
/// that did not become rep suggestions (through the ledger's per-HCP
/// index), and field events. The log has no index by HCP or type (an index
/// there would tax every ingest), so the events are one pass over it, each
/// field event since `?2` matched to a member through primary keys and the
/// merge indexes: its record's survivor, or a record merged into that
/// survivor, is a treated member. (The cross joins fix that order; the
/// planner would otherwise build a transient index over the log.)
fn touches_sql() -> String {
    let field = Touch::FIELD_EVENTS
        .iter()
        .map(|t| format!("'{}'", t.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let root = "coalesce((SELECT g.survivor_num FROM hcp_merge AS g
                          WHERE g.merged_num = e.hcp_num AND g.reverted_at IS NULL),
                         e.hcp_num)";
    format!(
        "{TREATED_GROUPS}
         SELECT grp.hcp, d.channel, d.updated_at
         FROM grp JOIN dispatch AS d ON d.hcp_num = grp.num AND d.planned_at >= ?2
         WHERE d.state = 'sent' AND d.updated_at >= ?2
           AND NOT EXISTS (SELECT 1 FROM suggestion AS s WHERE s.id = d.id)
         UNION ALL
         SELECT m.hcp, ch.name, e.occurred_at
         FROM event AS e
         CROSS JOIN hcp AS r
         CROSS JOIN campaign_member AS m
         CROSS JOIN channel_code AS ch
         WHERE e.type IN (SELECT code FROM event_type_code WHERE name IN ({field}))
           AND e.occurred_at >= ?2
           AND (r.num = {root}
                OR r.num IN (SELECT g.merged_num FROM hcp_merge AS g
                             WHERE g.survivor_num = {root} AND g.reverted_at IS NULL))
           AND m.campaign_num = ?1 AND m.hcp = r.id AND m.holdout = 0
           AND ch.code = e.channel
         ORDER BY 1, 3, 2"
    )
}

impl MemberFactsStore for SqliteStore {
    fn member_facts(
        &self,
        brand: &str,
        at: UnixMillis,
        members: &[MemberQuery<'_>],
    ) -> StoreResult<Vec<MemberFacts>> {
        const OP: &str = "read a page of campaign members";
        self.read(OP, |c| {
            // The snapshot starts with its first statement, taken while the
            // hot tier is held (as for any features read, see `hot_view`);
            // every member's view of the tier is taken then.
            let tier = self.hot();
            let marks = crate::hot::marks(c).during(OP)?;
            let mut groups = Vec::with_capacity(members.len());
            for m in members {
                groups.push(match crate::identity::group_of(c, m.hcp) {
                    Ok(g) => {
                        let view = tier.view(&g, marks);
                        Some((g, view))
                    }
                    Err(StoreError::UnknownHcp(_)) => None,
                    Err(e) => return Err(e),
                });
            }
            drop(tier);
            members
                .iter()
                .zip(groups)
                .map(|(m, group)| {
                    let (profile, features, stage) = match group {
                        Some((g, view)) => (
                            crate::hcp::load(c, m.hcp)?,
                            crate::events::features_of_group(c, &g, view, at)?,
                            self.stage_of_group(c, &g, brand)?,
                        ),
                        None => (None, EngagementStats::default(), None),
                    };
                    let dispatch = match m.dispatch {
                        Some(d) => crate::ledger::dispatch_in(c, d)?,
                        None => crate::ledger::dispatch_by_key_in(c, m.key)?,
                    };
                    Ok(MemberFacts {
                        profile,
                        features,
                        stage,
                        dispatch,
                    })
                })
                .collect()
        })
    }
}
