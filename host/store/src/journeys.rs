//! Event-triggered journeys, the actions they schedule, and how far they
//! have read the event log.

use std::collections::BTreeMap;

use omnigate_core::Channel;
use omnigate_core::audit::NewAuditEntry;
use omnigate_core::campaign::Reason;
use omnigate_core::canonical::{canonical_json_of, sha256_hex};
use omnigate_core::event::{Event, NewEvent, UnixMillis};
use omnigate_core::hcp::HcpId;
use omnigate_core::journeys::{
    ActionState, ActionUpdate, FireLatency, JourneyActionRecord, JourneyCounts, JourneyDefinition,
    JourneyId, JourneyRecord, JourneyRuleStore, JourneyState, NewJourneyAction,
};
use omnigate_core::ledger::CancelScope;
use omnigate_core::store::{StoreError, StoreResult};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::json;

use crate::db::{During, SqliteStore, corrupt};
use crate::ledger::cancel_in;

const JOURNEY_COLUMNS: &str =
    "num, definition, definition_sha256, state, from_seq, created_by, created_at, updated_at";

fn load(
    c: &Connection,
    op: &'static str,
    id: &JourneyId,
) -> StoreResult<Option<(i64, JourneyRecord)>> {
    let row = c
        .prepare_cached(&format!(
            "SELECT {JOURNEY_COLUMNS} FROM journey_rule WHERE id = ?1"
        ))
        .during(op)?
        .query_row([id.as_str()], journey_row)
        .optional()
        .during(op)?;
    row.map(|r| cook_journey(op, r)).transpose()
}

type JourneyRow = (i64, String, String, String, i64, String, i64, i64);

fn journey_row(r: &Row<'_>) -> rusqlite::Result<JourneyRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

fn cook_journey(op: &'static str, r: JourneyRow) -> StoreResult<(i64, JourneyRecord)> {
    let (num, definition, sha, state, from_seq, created_by, created_at, updated_at) = r;
    Ok((
        num,
        JourneyRecord {
            definition: serde_json::from_str(&definition).during(op)?,
            definition_sha256: sha,
            state: state
                .parse()
                .map_err(|_| corrupt(op, "journey state", &state))?,
            from_seq,
            created_by,
            created_at,
            updated_at,
        },
    ))
}

const ACTION_COLUMNS: &str = "a.num, j.id, a.hcp, a.event, a.event_seq, a.event_received_at, \
     a.fired_at, a.due_at, a.channels, a.state, a.attempts, a.dispatch, a.channel, a.reasons, \
     a.updated_at";

struct ActionRow {
    num: i64,
    journey: String,
    hcp: String,
    event: String,
    event_seq: i64,
    event_received_at: i64,
    fired_at: i64,
    due_at: i64,
    channels: String,
    state: String,
    attempts: u32,
    dispatch: Option<String>,
    channel: Option<String>,
    reasons: String,
    updated_at: i64,
}

fn action_row(r: &Row<'_>) -> rusqlite::Result<ActionRow> {
    Ok(ActionRow {
        num: r.get(0)?,
        journey: r.get(1)?,
        hcp: r.get(2)?,
        event: r.get(3)?,
        event_seq: r.get(4)?,
        event_received_at: r.get(5)?,
        fired_at: r.get(6)?,
        due_at: r.get(7)?,
        channels: r.get(8)?,
        state: r.get(9)?,
        attempts: r.get(10)?,
        dispatch: r.get(11)?,
        channel: r.get(12)?,
        reasons: r.get(13)?,
        updated_at: r.get(14)?,
    })
}

fn cook_action(op: &'static str, r: ActionRow) -> StoreResult<JourneyActionRecord> {
    Ok(JourneyActionRecord {
        num: r.num,
        action: NewJourneyAction {
            journey: JourneyId::new(r.journey.clone())
                .map_err(|_| corrupt(op, "journey id", &r.journey))?,
            hcp: HcpId::new(r.hcp.clone()).map_err(|_| corrupt(op, "HCP id", &r.hcp))?,
            event: r.event,
            event_seq: r.event_seq,
            event_received_at: r.event_received_at,
            fired_at: r.fired_at,
            due_at: r.due_at,
            channels: serde_json::from_str(&r.channels).during(op)?,
        },
        state: r
            .state
            .parse()
            .map_err(|_| corrupt(op, "journey action state", &r.state))?,
        attempts: r.attempts,
        dispatch: r.dispatch,
        channel: r
            .channel
            .map(|c| c.parse::<Channel>().map_err(|_| corrupt(op, "channel", &c)))
            .transpose()?,
        reasons: serde_json::from_str(&r.reasons).during(op)?,
        updated_at: r.updated_at,
    })
}

fn query_actions(
    c: &Connection,
    op: &'static str,
    sql_where: &str,
    params: impl rusqlite::Params,
) -> StoreResult<Vec<JourneyActionRecord>> {
    let mut stmt = c
        .prepare_cached(&format!(
            "SELECT {ACTION_COLUMNS} FROM journey_action a JOIN journey_rule j ON j.num = a.journey_num {sql_where}"
        ))
        .during(op)?;
    let rows = stmt.query_map(params, action_row).during(op)?;
    let mut out = Vec::new();
    for r in rows {
        out.push(cook_action(op, r.during(op)?)?);
    }
    Ok(out)
}

fn journey_num(c: &Connection, op: &'static str, id: &JourneyId) -> StoreResult<i64> {
    c.prepare_cached("SELECT num FROM journey_rule WHERE id = ?1")
        .during(op)?
        .query_row([id.as_str()], |r| r.get(0))
        .optional()
        .during(op)?
        .ok_or_else(|| StoreError::UnknownJourney(id.to_string()))
}

impl JourneyRuleStore for SqliteStore {
    fn create_journey(
        &self,
        actor: &str,
        definition: &JourneyDefinition,
        at: UnixMillis,
    ) -> StoreResult<(JourneyRecord, bool)> {
        const OP: &str = "create a journey";
        if let Some(p) = definition.problems().first() {
            return Err(StoreError::InvalidInput(format!(
                "journey `{}`: {}: {}; nothing was stored",
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
                return Err(StoreError::JourneyExists(definition.id.to_string()));
            }
            let from_seq: i64 = tx
                .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM event")
                .during(OP)?
                .query_row([], |r| r.get(0))
                .during(OP)?;
            tx.prepare_cached(
                "INSERT INTO journey_rule (id, definition, definition_sha256, state, from_seq,
                     created_by, created_at, updated_at)
                 VALUES (?1, ?2, ?3, 'active', ?4, ?5, ?6, ?6)",
            )
            .during(OP)?
            .execute(params![
                definition.id.as_str(),
                canonical,
                sha,
                from_seq,
                actor,
                at
            ])
            .during(OP)?;
            audit.append(
                tx,
                NewAuditEntry::new(
                    actor,
                    "journey.create",
                    definition.id.as_str(),
                    json!({"definition_sha256": sha, "definition": definition, "from_seq": from_seq}),
                ),
            )?;
            let (_, record) = load(tx, OP, &definition.id)?
                .ok_or_else(|| StoreError::UnknownJourney(definition.id.to_string()))?;
            Ok((record, true))
        })
    }

    fn journey(&self, id: &JourneyId) -> StoreResult<Option<JourneyRecord>> {
        const OP: &str = "read a journey";
        self.read(OP, |c| Ok(load(c, OP, id)?.map(|(_, r)| r)))
    }

    fn journeys(&self) -> StoreResult<Vec<JourneyRecord>> {
        const OP: &str = "list journeys";
        self.read(OP, |c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {JOURNEY_COLUMNS} FROM journey_rule ORDER BY num"
                ))
                .during(OP)?;
            let rows = stmt.query_map([], journey_row).during(OP)?;
            let mut out = Vec::new();
            for r in rows {
                out.push(cook_journey(OP, r.during(OP)?)?.1);
            }
            Ok(out)
        })
    }

    fn set_journey_state(
        &self,
        actor: &str,
        id: &JourneyId,
        to: JourneyState,
        reason: &str,
        at: UnixMillis,
    ) -> StoreResult<JourneyRecord> {
        const OP: &str = "change a journey's state";
        self.write(OP, |tx, audit| {
            let (num, record) =
                load(tx, OP, id)?.ok_or_else(|| StoreError::UnknownJourney(id.to_string()))?;
            let from = record.state;
            if from == to {
                return Ok(record);
            }
            if !from.can_move_to(to) {
                return Err(StoreError::JourneyState {
                    id: id.to_string(),
                    from,
                    to,
                });
            }
            tx.prepare_cached("UPDATE journey_rule SET state = ?1, updated_at = ?2 WHERE num = ?3")
                .during(OP)?
                .execute(params![to.as_str(), at, num])
                .during(OP)?;
            let mut cancelled_actions = 0;
            let mut cancelled_dispatches = 0;
            if to == JourneyState::Retired {
                let reasons = serde_json::to_string(&[Reason {
                    version: None,
                    channel: None,
                    rules: vec!["journey-retired".into()],
                    decision: None,
                    message: format!("the journey was retired: {reason}"),
                }])
                .during(OP)?;
                cancelled_actions = tx
                    .prepare_cached(
                        "UPDATE journey_action SET state = 'cancelled', reasons = ?1, updated_at = ?2
                         WHERE journey_num = ?3 AND state = 'pending'",
                    )
                    .during(OP)?
                    .execute(params![reasons, at, num])
                    .during(OP)?;
                cancelled_dispatches = cancel_in(
                    tx,
                    audit,
                    actor,
                    &CancelScope::Campaign(id.sender()),
                    "the journey was retired",
                )?
                .len();
            }
            audit.append(
                tx,
                NewAuditEntry::new(
                    actor,
                    "journey.state",
                    id.as_str(),
                    json!({"from": from, "to": to, "reason": reason,
                           "cancelled_actions": cancelled_actions,
                           "cancelled_dispatches": cancelled_dispatches}),
                ),
            )?;
            Ok(JourneyRecord {
                state: to,
                updated_at: at,
                ..record
            })
        })
    }

    fn journey_cursor(&self) -> StoreResult<i64> {
        const OP: &str = "read the journey cursor";
        self.read(OP, |c| {
            c.prepare_cached("SELECT seq FROM journey_cursor WHERE id = 1")
                .during(OP)?
                .query_row([], |r| r.get(0))
                .optional()
                .during(OP)
                .map(Option::unwrap_or_default)
        })
    }

    fn events_after(&self, after: i64, limit: usize) -> StoreResult<Vec<(i64, Event)>> {
        const OP: &str = "read new events";
        self.read(OP, |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT e.seq, e.id, h.id, e.type, e.channel, e.occurred_at, e.received_at,
                            e.attributes
                     FROM event_named e JOIN hcp h ON h.num = e.hcp_num
                     WHERE e.seq > ?1 ORDER BY e.seq LIMIT ?2",
                )
                .during(OP)?;
            let rows = stmt
                .query_map(params![after, limit as i64], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, i64>(5)?,
                        r.get::<_, i64>(6)?,
                        r.get::<_, String>(7)?,
                    ))
                })
                .during(OP)?;
            let mut out = Vec::new();
            for r in rows {
                let (seq, id, hcp, t, ch, occurred_at, received_at, attrs) = r.during(OP)?;
                out.push((
                    seq,
                    Event {
                        event: NewEvent {
                            id,
                            hcp: HcpId::new(hcp.clone())
                                .map_err(|_| corrupt(OP, "HCP id", &hcp))?,
                            event_type: t.parse().map_err(|_| corrupt(OP, "event type", &t))?,
                            channel: ch.parse().map_err(|_| corrupt(OP, "channel", &ch))?,
                            occurred_at,
                            attributes: serde_json::from_str(&attrs).during(OP)?,
                        },
                        received_at,
                    },
                ));
            }
            Ok(out)
        })
    }

    fn schedule_actions(
        &self,
        actor: &str,
        cursor: i64,
        actions: &[NewJourneyAction],
    ) -> StoreResult<usize> {
        const OP: &str = "schedule journey actions";
        self.write(OP, |tx, audit| {
            let current: i64 = tx
                .prepare_cached("SELECT seq FROM journey_cursor WHERE id = 1")
                .during(OP)?
                .query_row([], |r| r.get(0))
                .during(OP)?;
            if cursor < current {
                // Another worker got there first: what it scheduled stands.
                return Ok(0);
            }
            let mut nums: BTreeMap<JourneyId, i64> = BTreeMap::new();
            let mut stored = Vec::new();
            for a in actions {
                let num = match nums.get(&a.journey) {
                    Some(n) => *n,
                    None => {
                        let n = journey_num(tx, OP, &a.journey)?;
                        nums.insert(a.journey.clone(), n);
                        n
                    }
                };
                let channels = serde_json::to_string(&a.channels).during(OP)?;
                let inserted = tx
                    .prepare_cached(
                        "INSERT INTO journey_action (journey_num, hcp, event, event_seq,
                             event_received_at, fired_at, due_at, channels, state, updated_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?6)
                         ON CONFLICT (journey_num, hcp, event) DO NOTHING",
                    )
                    .during(OP)?
                    .execute(params![
                        num,
                        a.hcp.as_str(),
                        a.event,
                        a.event_seq,
                        a.event_received_at,
                        a.fired_at,
                        a.due_at,
                        channels
                    ])
                    .during(OP)?;
                if inserted == 1 {
                    stored.push(
                        json!({"action": tx.last_insert_rowid(), "journey": a.journey,
                                       "hcp": a.hcp, "event": a.event, "due_at": a.due_at}),
                    );
                }
            }
            tx.prepare_cached("UPDATE journey_cursor SET seq = ?1 WHERE id = 1")
                .during(OP)?
                .execute([cursor])
                .during(OP)?;
            if !stored.is_empty() {
                audit.append(
                    tx,
                    NewAuditEntry::new(
                        actor,
                        "journey.fire",
                        format!("event-log:{cursor}"),
                        json!({"scheduled": stored}),
                    ),
                )?;
            }
            Ok(stored.len())
        })
    }

    fn last_fired(&self, journey: &JourneyId, hcp: &HcpId) -> StoreResult<Option<UnixMillis>> {
        const OP: &str = "read when a journey last fired";
        self.read(OP, |c| {
            c.prepare_cached(
                "SELECT MAX(a.fired_at) FROM journey_action a
                 JOIN journey_rule j ON j.num = a.journey_num
                 WHERE j.id = ?1 AND a.hcp = ?2",
            )
            .during(OP)?
            .query_row(params![journey.as_str(), hcp.as_str()], |r| r.get(0))
            .during(OP)
        })
    }

    fn due_actions(&self, now: UnixMillis, limit: usize) -> StoreResult<Vec<JourneyActionRecord>> {
        const OP: &str = "read due journey actions";
        self.read(OP, |c| {
            query_actions(
                c,
                OP,
                "WHERE a.state = 'pending' AND a.due_at <= ?1 AND j.state = 'active'
                 ORDER BY a.due_at, a.num LIMIT ?2",
                params![now, limit as i64],
            )
        })
    }

    fn journey_action(&self, num: i64) -> StoreResult<Option<JourneyActionRecord>> {
        const OP: &str = "read a journey action";
        self.read(OP, |c| {
            Ok(query_actions(c, OP, "WHERE a.num = ?1", [num])?
                .into_iter()
                .next())
        })
    }

    fn settle_actions(
        &self,
        actor: &str,
        updates: &[ActionUpdate],
        at: UnixMillis,
    ) -> StoreResult<()> {
        const OP: &str = "settle journey actions";
        if updates.is_empty() {
            return Ok(());
        }
        self.write(OP, |tx, audit| {
            let mut settled = Vec::new();
            for u in updates {
                let reasons = serde_json::to_string(&u.reasons).during(OP)?;
                let moved = tx
                    .prepare_cached(
                        "UPDATE journey_action SET state = ?1, due_at = COALESCE(?2, due_at),
                             attempts = ?3, dispatch = COALESCE(?4, dispatch),
                             channel = COALESCE(?5, channel), reasons = ?6, updated_at = ?7
                         WHERE num = ?8 AND state = 'pending'",
                    )
                    .during(OP)?
                    .execute(params![
                        u.state.as_str(),
                        u.due_at,
                        u.attempts,
                        u.dispatch,
                        u.channel.map(|c| c.as_str()),
                        reasons,
                        at,
                        u.num
                    ])
                    .during(OP)?;
                if moved == 1 && u.state != ActionState::Pending {
                    settled.push(json!({"action": u.num, "state": u.state,
                                        "dispatch": u.dispatch, "channel": u.channel,
                                        "reasons": u.reasons}));
                }
            }
            if !settled.is_empty() {
                audit.append(
                    tx,
                    NewAuditEntry::new(
                        actor,
                        "journey.settle",
                        "journey-actions",
                        json!({"settled": settled}),
                    ),
                )?;
            }
            Ok(())
        })
    }

    fn cancel_pending_actions(
        &self,
        actor: &str,
        hcp: &HcpId,
        channels: &[Channel],
        reason: &Reason,
        at: UnixMillis,
    ) -> StoreResult<Vec<i64>> {
        const OP: &str = "cancel pending journey actions";
        self.write(OP, |tx, audit| {
            let pending = query_actions(
                tx,
                OP,
                "WHERE a.hcp = ?1 AND a.state = 'pending' ORDER BY a.num",
                [hcp.as_str()],
            )?;
            let reasons = serde_json::to_string(&[reason]).during(OP)?;
            let mut cancelled = Vec::new();
            for a in pending {
                // A cancel action has no channel and is never cancelled.
                let only_there = !a.action.channels.is_empty()
                    && (channels.is_empty()
                        || a.action.channels.iter().all(|c| channels.contains(c)));
                if !only_there {
                    continue;
                }
                tx.prepare_cached(
                    "UPDATE journey_action SET state = 'cancelled', reasons = ?1, updated_at = ?2
                     WHERE num = ?3 AND state = 'pending'",
                )
                .during(OP)?
                .execute(params![reasons, at, a.num])
                .during(OP)?;
                cancelled.push(a.num);
            }
            if !cancelled.is_empty() {
                audit.append(
                    tx,
                    NewAuditEntry::new(
                        actor,
                        "journey.cancel",
                        hcp.as_str(),
                        json!({"actions": cancelled, "channels": channels, "reason": reason}),
                    ),
                )?;
            }
            Ok(cancelled)
        })
    }

    fn journey_actions(
        &self,
        id: &JourneyId,
        state: Option<ActionState>,
        limit: usize,
    ) -> StoreResult<Vec<JourneyActionRecord>> {
        const OP: &str = "list journey actions";
        self.read(OP, |c| {
            let num = journey_num(c, OP, id)?;
            match state {
                Some(s) => query_actions(
                    c,
                    OP,
                    "WHERE a.journey_num = ?1 AND a.state = ?2 ORDER BY a.num DESC LIMIT ?3",
                    params![num, s.as_str(), limit as i64],
                ),
                None => query_actions(
                    c,
                    OP,
                    "WHERE a.journey_num = ?1 ORDER BY a.num DESC LIMIT ?2",
                    params![num, limit as i64],
                ),
            }
        })
    }

    fn journey_counts(&self, id: &JourneyId, _now: UnixMillis) -> StoreResult<JourneyCounts> {
        const OP: &str = "count a journey's actions";
        self.read(OP, |c| {
            let num = journey_num(c, OP, id)?;
            let mut out = JourneyCounts::default();
            let mut stmt = c
                .prepare_cached(
                    "SELECT state, channel, COUNT(*) FROM journey_action
                     WHERE journey_num = ?1 GROUP BY state, channel",
                )
                .during(OP)?;
            let rows = stmt
                .query_map([num], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })
                .during(OP)?;
            for r in rows {
                let (state, channel, n) = r.during(OP)?;
                let state: ActionState = state
                    .parse()
                    .map_err(|_| corrupt(OP, "journey action state", &state))?;
                let n = n.max(0) as u64;
                *out.by_state.entry(state).or_default() += n;
                if state == ActionState::Dispatched
                    && let Some(ch) = channel
                {
                    let ch: Channel = ch.parse().map_err(|_| corrupt(OP, "channel", &ch))?;
                    *out.by_channel.entry(ch).or_default() += n;
                }
            }
            out.next_due = c
                .prepare_cached(
                    "SELECT MIN(due_at) FROM journey_action WHERE journey_num = ?1 AND state = 'pending'",
                )
                .during(OP)?
                .query_row([num], |r| r.get(0))
                .during(OP)?;
            let mut stmt = c
                .prepare_cached(
                    "SELECT MAX(fired_at - event_received_at, 0) AS lag FROM journey_action
                     WHERE journey_num = ?1 ORDER BY lag",
                )
                .during(OP)?;
            let lags: Vec<i64> = stmt
                .query_map([num], |r| r.get(0))
                .during(OP)?
                .collect::<Result<_, _>>()
                .during(OP)?;
            if let Some(max) = lags.last() {
                let at = |q: f64| lags[((lags.len() - 1) as f64 * q).round() as usize];
                out.latency = FireLatency {
                    actions: lags.len() as u64,
                    p50_ms: at(0.5),
                    p99_ms: at(0.99),
                    max_ms: *max,
                };
            }
            Ok(out)
        })
    }
}
