//! Rep suggestions.

use omnigate_core::Channel;
use omnigate_core::audit::NewAuditEntry;
use omnigate_core::content::VersionHash;
use omnigate_core::event::UnixMillis;
use omnigate_core::hcp::HcpId;
use omnigate_core::store::{StoreError, StoreResult};
use omnigate_core::suggestion::{Suggestion, SuggestionFilter, SuggestionState, SuggestionStore};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::json;

use crate::db::{During, SqliteStore, corrupt};

const COLUMNS: &str = "id, hcp, rep, campaign, version, channel, rationale, notes, created_at, \
                       due_at, expires_at, state, closed_by, closed_at, close_reason";

struct Raw {
    id: String,
    hcp: String,
    rep: Option<String>,
    campaign: Option<String>,
    version: String,
    channel: String,
    rationale: String,
    notes: String,
    created_at: i64,
    due_at: i64,
    expires_at: i64,
    state: String,
    closed_by: Option<String>,
    closed_at: Option<i64>,
    close_reason: Option<String>,
}

fn raw(r: &Row<'_>) -> rusqlite::Result<Raw> {
    Ok(Raw {
        id: r.get(0)?,
        hcp: r.get(1)?,
        rep: r.get(2)?,
        campaign: r.get(3)?,
        version: r.get(4)?,
        channel: r.get(5)?,
        rationale: r.get(6)?,
        notes: r.get(7)?,
        created_at: r.get(8)?,
        due_at: r.get(9)?,
        expires_at: r.get(10)?,
        state: r.get(11)?,
        closed_by: r.get(12)?,
        closed_at: r.get(13)?,
        close_reason: r.get(14)?,
    })
}

fn cook(op: &'static str, r: Raw, now: UnixMillis) -> StoreResult<Suggestion> {
    let mut state = SuggestionState::parse(&r.state)
        .ok_or_else(|| corrupt(op, "suggestion state", &r.state))?;
    if state == SuggestionState::Open && r.expires_at <= now {
        state = SuggestionState::Expired;
    }
    Ok(Suggestion {
        hcp: HcpId::new(r.hcp.clone()).map_err(|_| corrupt(op, "HCP id", &r.hcp))?,
        id: r.id,
        rep: r.rep,
        campaign: r.campaign,
        version: VersionHash(r.version),
        channel: r
            .channel
            .parse::<Channel>()
            .map_err(|_| corrupt(op, "channel", &r.channel))?,
        rationale: r.rationale,
        notes: serde_json::from_str(&r.notes).during(op)?,
        created_at: r.created_at,
        due_at: r.due_at,
        expires_at: r.expires_at,
        state,
        closed: match (r.closed_by, r.closed_at) {
            (Some(by), Some(at)) => Some((by, at, r.close_reason.unwrap_or_default())),
            _ => None,
        },
    })
}

fn load(
    conn: &Connection,
    op: &'static str,
    id: &str,
    now: UnixMillis,
) -> StoreResult<Option<Suggestion>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM suggestion WHERE id = ?1"))
        .during(op)?
        .query_row([id], raw)
        .optional()
        .during(op)?
        .map(|r| cook(op, r, now))
        .transpose()
}

impl SuggestionStore for SqliteStore {
    fn deliver_suggestions(&self, actor: &str, suggestions: &[Suggestion]) -> StoreResult<()> {
        const OP: &str = "deliver rep suggestions";
        if suggestions.is_empty() {
            return Ok(());
        }
        self.write(OP, |tx, audit| {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO suggestion (id, hcp, rep, campaign, version, channel, rationale,
                         notes, created_at, due_at, expires_at, state)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'open')",
                )
                .during(OP)?;
            let mut sent = tx
                .prepare_cached(
                    "UPDATE dispatch SET state = 'sent', detail = 'in the rep''s queue',
                         updated_at = ?2
                     WHERE id = ?1 AND state = 'sending'",
                )
                .during(OP)?;
            for s in suggestions {
                if sent.execute(params![s.id, audit.now()]).during(OP)? != 1 {
                    return Err(StoreError::InvalidInput(format!(
                        "dispatch `{}` is not being sent; no suggestion was delivered",
                        s.id
                    )));
                }
                let notes = serde_json::to_string(&s.notes).during(OP)?;
                insert
                    .execute(params![
                        s.id,
                        s.hcp.as_str(),
                        s.rep,
                        s.campaign,
                        s.version.0,
                        s.channel.as_str(),
                        s.rationale,
                        notes,
                        s.created_at,
                        s.due_at,
                        s.expires_at
                    ])
                    .during(OP)?;
                audit.append(
                    tx,
                    NewAuditEntry::new(
                        actor,
                        "dispatch.sent",
                        &s.id,
                        json!({"from": "sending", "detail": "in the rep's queue",
                               "suggestion": {"hcp": s.hcp.as_str(), "rep": s.rep,
                                   "version": s.version.0, "channel": s.channel,
                                   "due_at": s.due_at, "expires_at": s.expires_at}}),
                    ),
                )?;
            }
            Ok(())
        })
    }

    fn suggestion(&self, id: &str, now: UnixMillis) -> StoreResult<Option<Suggestion>> {
        const OP: &str = "read a suggestion";
        self.read(OP, |c| load(c, OP, id, now))
    }

    fn suggestions(
        &self,
        filter: &SuggestionFilter,
        now: UnixMillis,
    ) -> StoreResult<Vec<Suggestion>> {
        const OP: &str = "list suggestions";
        let mut sql = format!("SELECT {COLUMNS} FROM suggestion WHERE 1 = 1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(rep) = &filter.rep {
            args.push(rep.clone().into());
            sql.push_str(&format!(" AND rep = ?{}", args.len()));
        }
        if let Some(campaign) = &filter.campaign {
            args.push(campaign.clone().into());
            sql.push_str(&format!(" AND campaign = ?{}", args.len()));
        }
        if let Some(hcp) = &filter.hcp {
            args.push(hcp.as_str().to_owned().into());
            sql.push_str(&format!(" AND hcp = ?{}", args.len()));
        }
        match filter.state {
            None => {}
            Some(SuggestionState::Expired) => {
                args.push(now.into());
                sql.push_str(&format!(
                    " AND state = 'open' AND expires_at <= ?{}",
                    args.len()
                ));
            }
            Some(SuggestionState::Open) => {
                args.push(now.into());
                sql.push_str(&format!(
                    " AND state = 'open' AND expires_at > ?{}",
                    args.len()
                ));
            }
            Some(s) => {
                args.push(s.as_str().to_owned().into());
                sql.push_str(&format!(" AND state = ?{}", args.len()));
            }
        }
        let limit = if filter.limit == 0 {
            100
        } else {
            filter.limit.min(100_000)
        };
        sql.push_str(&format!(" ORDER BY due_at, id LIMIT {limit}"));
        self.read(OP, |c| {
            let mut stmt = c.prepare(&sql).during(OP)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(args), raw)
                .during(OP)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .during(OP)?;
            rows.into_iter().map(|r| cook(OP, r, now)).collect()
        })
    }

    fn close_suggestion(
        &self,
        actor: &str,
        id: &str,
        state: SuggestionState,
        reason: &str,
        at: UnixMillis,
    ) -> StoreResult<Suggestion> {
        const OP: &str = "close a suggestion";
        state
            .check_close(reason)
            .map_err(StoreError::InvalidInput)?;
        self.write(OP, |tx, audit| {
            let current = load(tx, OP, id, at)?
                .ok_or_else(|| StoreError::InvalidInput(format!("unknown suggestion `{id}`")))?;
            if current.state != SuggestionState::Open {
                return Err(StoreError::InvalidInput(format!(
                    "suggestion `{id}` is {} and cannot be closed",
                    current.state.as_str()
                )));
            }
            tx.prepare_cached(
                "UPDATE suggestion SET state = ?2, closed_by = ?3, closed_at = ?4,
                     close_reason = ?5 WHERE id = ?1",
            )
            .during(OP)?
            .execute(params![id, state.as_str(), actor, at, reason])
            .during(OP)?;
            audit.append(
                tx,
                NewAuditEntry::new(
                    actor,
                    format!("suggestion.{}", state.as_str()),
                    id,
                    json!({"hcp": current.hcp.as_str(), "reason": reason}),
                ),
            )?;
            load(tx, OP, id, at)?
                .ok_or_else(|| StoreError::InvalidInput(format!("unknown suggestion `{id}`")))
        })
    }
}
