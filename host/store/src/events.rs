//! Event ingest and the derived features it keeps current.
//!
//! A batch is one transaction: every event is validated first, every HCP
//! checked, then events are inserted with `ON CONFLICT DO NOTHING` (the id is
//! the idempotency key) and only the newly stored ones move the features.
//! Feature deltas are summed in memory per batch, so each (HCP, channel) row
//! is read and written once per batch however many events touch it.

use std::collections::HashMap;

use omnigate_core::audit::NewAuditEntry;
use omnigate_core::canonical::map_to_canonical_json;
use omnigate_core::event::{Event, NewEvent, UnixMillis};
use omnigate_core::hcp::HcpId;
use omnigate_core::store::{EventStore, StoreError, StoreResult};
use omnigate_core::{Channel, ChannelStats, EngagementStats};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::db::{During, SqliteStore, corrupt};
use crate::window::DayRing;
use crate::{hcp, identity, journey};

#[derive(Default)]
struct ChannelDelta {
    touches: Vec<i64>,
    sends: i64,
    opens: i64,
    clicks: i64,
    attended: i64,
}

#[derive(Default)]
struct Deltas<'a> {
    channel: HashMap<(i64, Channel), ChannelDelta>,
    seen: HashMap<(i64, &'a str), i64>,
}

impl<'a> Deltas<'a> {
    fn add(&mut self, hcp: i64, e: &'a NewEvent) {
        let fx = e.event_type.effect();
        let d = self.channel.entry((hcp, e.channel)).or_default();
        d.sends += i64::from(fx.send);
        d.opens += i64::from(fx.open);
        d.clicks += i64::from(fx.click);
        d.attended += i64::from(fx.attend);
        if fx.touch {
            d.touches.push(e.occurred_at);
        }
        if let Some(version) = e.content_seen() {
            let first = self.seen.entry((hcp, version)).or_insert(e.occurred_at);
            *first = (*first).min(e.occurred_at);
        }
    }
}

/// Merges a batch's deltas into the stored rows: one read and one write per
/// (HCP, channel) touched, whatever the number of events.
fn write_deltas(tx: &Connection, deltas: &Deltas<'_>) -> rusqlite::Result<()> {
    let mut read = tx.prepare_cached(
        "SELECT last_touch_at, sends, opens, clicks, attended, ring_day, ring
         FROM feature_channel WHERE hcp_num = ?1 AND channel = ?2",
    )?;
    let mut write = tx.prepare_cached(
        "INSERT INTO feature_channel
             (hcp_num, channel, last_touch_at, sends, opens, clicks, attended, ring_day, ring)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (hcp_num, channel) DO UPDATE SET
             last_touch_at = excluded.last_touch_at, sends = excluded.sends,
             opens = excluded.opens, clicks = excluded.clicks, attended = excluded.attended,
             ring_day = excluded.ring_day, ring = excluded.ring",
    )?;
    for ((hcp, ch), d) in &deltas.channel {
        let old = read
            .query_row(params![hcp, ch.as_str()], |r| {
                Ok((
                    r.get::<_, Option<i64>>(0)?,
                    [r.get::<_, i64>(1)?, r.get(2)?, r.get(3)?, r.get(4)?],
                    DayRing::from_parts(r.get(5)?, &r.get::<_, Vec<u8>>(6)?),
                ))
            })
            .optional()?;
        let (mut last, counts, mut ring) = old.unwrap_or_default();
        for &at in &d.touches {
            last = Some(last.map_or(at, |l| l.max(at)));
            ring.add(at, 1);
        }
        let (ring_day, blob) = ring.to_parts();
        write.execute(params![
            hcp,
            ch.as_str(),
            last,
            counts[0] + d.sends,
            counts[1] + d.opens,
            counts[2] + d.clicks,
            counts[3] + d.attended,
            ring_day,
            blob
        ])?;
    }
    let mut seen = tx.prepare_cached(
        "INSERT INTO content_seen (hcp_num, content_version, first_seen_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (hcp_num, content_version) DO UPDATE
             SET first_seen_at = min(first_seen_at, excluded.first_seen_at)",
    )?;
    for ((hcp, version), at) in &deltas.seen {
        seen.execute(params![hcp, version, at])?;
    }
    Ok(())
}

impl EventStore for SqliteStore {
    fn ingest(
        &self,
        actor: &str,
        batch_id: &str,
        events: &[NewEvent],
    ) -> StoreResult<IngestReport> {
        const OP: &str = "ingest events";
        for e in events {
            e.validate().map_err(|reason| StoreError::InvalidEvent {
                event: e.id.clone(),
                reason,
            })?;
        }
        let attributes: Vec<String> = events
            .iter()
            .map(|e| map_to_canonical_json(&e.attributes))
            .collect();
        self.write(OP, |tx, audit| {
            // One lookup per distinct HCP, in this transaction: no event
            // can land on an HCP that does not exist.
            let mut nums: HashMap<&str, i64> = HashMap::new();
            let mut hcp_nums = Vec::with_capacity(events.len());
            for e in events {
                let n = match nums.get(e.hcp.as_str()) {
                    Some(&n) => n,
                    None => {
                        let n = hcp::num(tx, &e.hcp).during(OP)?.ok_or_else(|| {
                            StoreError::EventForUnknownHcp {
                                event: e.id.clone(),
                                hcp: e.hcp.clone(),
                            }
                        })?;
                        nums.insert(e.hcp.as_str(), n);
                        n
                    }
                };
                hcp_nums.push(n);
            }
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO event (id, hcp_num, type, channel, occurred_at, received_at, attributes, batch_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (id) DO NOTHING",
                )
                .during(OP)?;
            let mut deltas = Deltas::default();
            let mut rule_hits = Vec::new();
            let mut digest = Sha256::new();
            let mut report = IngestReport::default();
            for ((e, attrs), &n) in events.iter().zip(&attributes).zip(&hcp_nums) {
                let stored = insert
                    .execute(params![
                        e.id,
                        n,
                        e.event_type.as_str(),
                        e.channel.as_str(),
                        e.occurred_at,
                        audit.now(),
                        attrs,
                        batch_id
                    ])
                    .during(OP)?;
                if stored == 0 {
                    report.duplicates += 1;
                    continue;
                }
                report.accepted += 1;
                deltas.add(n, e);
                journey::hits(&self.journey, n, e, &mut rule_hits);
                // What the audit entry vouches for: every stored event, in
                // batch order, one line each.
                for part in [e.id.as_str(), e.hcp.as_str(), e.event_type.as_str(), e.channel.as_str()] {
                    digest.update(part.as_bytes());
                    digest.update(b"\t");
                }
                digest.update(e.occurred_at.to_string().as_bytes());
                digest.update(b"\t");
                digest.update(attrs.as_bytes());
                digest.update(b"\n");
            }
            // INVARIANT: a replayed batch adds nothing, not even an audit entry.
            if report.accepted > 0 {
                write_deltas(tx, &deltas).during(OP)?;
                let payload = json!({
                    "accepted": report.accepted, "duplicates": report.duplicates,
                    "events_sha256": hex::encode(digest.finalize()),
                });
                audit.append(tx, NewAuditEntry::new(actor, "events.ingest", batch_id, payload))?;
                journey::apply(tx, audit, actor, &self.journey, &rule_hits)?;
            }
            Ok(report)
        })
    }

    fn events_of(&self, hcp: &HcpId) -> StoreResult<Vec<Event>> {
        const OP: &str = "read events";
        self.read(OP, |c| {
            let members = identity::group_of(c, hcp)?;
            let ids = identity::ids_of(c, &members)?;
            let mut stmt = c
                .prepare_cached(
                    "SELECT id, type, channel, occurred_at, received_at, attributes FROM event
                     WHERE hcp_num = ?1 ORDER BY occurred_at, id",
                )
                .during(OP)?;
            let mut out = Vec::new();
            for (&n, member) in members.iter().zip(&ids) {
                let mut rows = stmt.query([n]).during(OP)?;
                while let Some(r) = rows.next().during(OP)? {
                    let t: String = r.get(1).during(OP)?;
                    let ch: String = r.get(2).during(OP)?;
                    let attrs: String = r.get(5).during(OP)?;
                    out.push(Event {
                        event: NewEvent {
                            id: r.get(0).during(OP)?,
                            hcp: member.clone(),
                            event_type: t.parse().map_err(|_| corrupt(OP, "event type", &t))?,
                            channel: ch.parse().map_err(|_| corrupt(OP, "channel", &ch))?,
                            occurred_at: r.get(3).during(OP)?,
                            attributes: serde_json::from_str(&attrs).during(OP)?,
                        },
                        received_at: r.get(4).during(OP)?,
                    });
                }
            }
            // Each record arrives sorted; a group interleaves them.
            out.sort_by(|a, b| {
                (a.event.occurred_at, &a.event.id).cmp(&(b.event.occurred_at, &b.event.id))
            });
            Ok(out)
        })
    }

    fn event_count(&self) -> StoreResult<u64> {
        const OP: &str = "count events";
        self.read(OP, |c| {
            c.query_row("SELECT count(*) FROM event", [], |r| r.get::<_, i64>(0))
                .during(OP)
                .map(|n| n.unsigned_abs())
        })
    }

    fn features(&self, hcp: &HcpId, now: UnixMillis) -> StoreResult<EngagementStats> {
        self.read("read features", |c| read_features(c, hcp, now))
    }
}

use omnigate_core::store::IngestReport;

fn to_u32(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

/// A few index lookups whatever the history's length: the HCP's key and
/// merge links, its per-channel rows (with their day rings), the content it
/// has seen.
fn read_features(c: &Connection, hcp: &HcpId, now: UnixMillis) -> StoreResult<EngagementStats> {
    const OP: &str = "read features";
    // A merged HCP reads as its whole group (usually a group of one).
    let members = identity::group_of(c, hcp)?;
    let mut stats = EngagementStats::default();
    let mut stmt = c
        .prepare_cached(
            "SELECT channel, last_touch_at, sends, opens, clicks, attended, ring_day, ring
             FROM feature_channel WHERE hcp_num = ?1",
        )
        .during(OP)?;
    for &num in &members {
        let mut rows = stmt.query([num]).during(OP)?;
        while let Some(r) = rows.next().during(OP)? {
            let ch: String = r.get(0).during(OP)?;
            let ring =
                DayRing::from_parts(r.get(6).during(OP)?, &r.get::<_, Vec<u8>>(7).during(OP)?);
            let s = ChannelStats {
                channel: ch.parse().map_err(|_| corrupt(OP, "channel", &ch))?,
                last_touch_at: r
                    .get::<_, Option<i64>>(1)
                    .during(OP)?
                    .map(|ms| ms.div_euclid(1000)),
                touches_7d: ring.last_days(now, 7),
                touches_30d: ring.last_days(now, 30),
                sends: to_u32(r.get(2).during(OP)?),
                opens: to_u32(r.get(3).during(OP)?),
                clicks: to_u32(r.get(4).during(OP)?),
                attended: to_u32(r.get(5).during(OP)?),
            };
            stats.touches_7d += s.touches_7d;
            stats.touches_30d += s.touches_30d;
            match stats.channels.iter_mut().find(|x| x.channel == s.channel) {
                Some(x) => {
                    x.last_touch_at = x.last_touch_at.max(s.last_touch_at);
                    x.touches_7d += s.touches_7d;
                    x.touches_30d += s.touches_30d;
                    x.sends += s.sends;
                    x.opens += s.opens;
                    x.clicks += s.clicks;
                    x.attended += s.attended;
                }
                None => stats.channels.push(s),
            }
        }
    }
    let mut stmt = c
        .prepare_cached("SELECT content_version FROM content_seen WHERE hcp_num = ?1")
        .during(OP)?;
    for &num in &members {
        let seen = stmt
            .query_map([num], |r| r.get::<_, String>(0))
            .during(OP)?;
        for v in seen {
            stats.content_seen.push(v.during(OP)?);
        }
    }
    if members.len() > 1 {
        stats.content_seen.sort();
        stats.content_seen.dedup();
    }
    Ok(stats)
}
