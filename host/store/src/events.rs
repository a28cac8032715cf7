//! Event ingest and the derived features it keeps current.
//!
//! A batch is one transaction: every event is validated first, every HCP
//! checked, duplicates (by id: already stored, or earlier in the batch)
//! skipped, and the new events appended to the `event` log in commit order
//! (`seq`), with one audit entry. The per-event indexes (`event_id`,
//! `event_hcp`) and the feature tables (`feature_channel`, `content_seen`)
//! are not written per batch: their pages are spread over the whole file,
//! and writing them per event cost several random pages each. Events are
//! kept in the hot tier (`hot.rs`, in memory) until a *fold* writes them
//! all to those tables at once, sorted by key. Readers combine the folded
//! tables with the hot tier, so every read is exact at every moment.

use std::collections::{BTreeMap, HashSet};
use std::sync::RwLock;

use omnigate_core::audit::NewAuditEntry;
use omnigate_core::canonical::map_to_canonical_json;
use omnigate_core::event::{Event, NewEvent, UnixMillis};
use omnigate_core::hcp::HcpId;
use omnigate_core::store::{EventStore, IngestReport, StoreError, StoreResult};
use omnigate_core::{ChannelStats, EngagementStats};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::db::{During, SqliteStore, corrupt, transact};
use crate::hot::{self, ChannelRow, Features, Hot, HotEvent, HotView, Marks};
use crate::window::DayRing;
use crate::{hcp, identity, journey};

// PROBE
pub(crate) mod probe {
    use std::sync::atomic::{AtomicU64, Ordering};
    pub(crate) static T: [AtomicU64; 12] = [const { AtomicU64::new(0) }; 12];
    pub(crate) fn now() -> u64 {
        std::fs::read_to_string("/proc/thread-self/schedstat").ok().and_then(|s| s.split_whitespace().next()?.parse().ok()).unwrap_or(0)
    }
    pub(crate) struct P(u64);
    impl P { pub(crate) fn new() -> P { P(now()) } pub(crate) fn lap(&mut self, i: usize) { let n = now(); T[i].fetch_add(n - self.0, Ordering::Relaxed); self.0 = n; } }
    pub(crate) fn dump() -> String { let names = ["validate","canon","begin+sync","hcp","hotdedup","exists","insert","audit","commit","extend","fold","x"]; names.iter().zip(&T).map(|(n,t)| format!("{n}={:.2}s", t.load(Ordering::Relaxed) as f64/1e9)).collect::<Vec<_>>().join(" ") }
}
/// Probe dump.
pub fn probe_dump() -> String { probe::dump() }

/// A hot tier this many times larger than a fold means folding keeps
/// failing: ingest then refuses batches rather than grow it without bound.
const FOLD_BACKLOG: usize = 4;

/// HCP ids and their internal keys, as looked up by ingest: a batch of 1,000
/// events names up to 1,000 HCPs, and a lookup in `hcp` costs more than the
/// rest of an event's ingest.
///
/// INVARIANT: an entry is an HCP that exists. No code path deletes an HCP
/// or changes its key, and any change made by another connection clears
/// the cache (SQLite's `data_version` moves), so an entry cannot outlive
/// its row.
#[derive(Debug, Default)]
pub(crate) struct HcpNums {
    data_version: Option<i64>,
    nums: std::collections::HashMap<String, i64>,
}

/// Entries kept at most (about 60 bytes each); beyond, the cache restarts.
const HCP_NUMS_MAX: usize = 1 << 20;

impl HcpNums {
    /// Empties the cache if another connection changed the database since
    /// the last call on this (write) connection.
    fn check(&mut self, c: &Connection) -> rusqlite::Result<()> {
        let v: i64 = c
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?;
        if self.data_version != Some(v) || self.nums.len() > HCP_NUMS_MAX {
            self.nums.clear();
            self.data_version = Some(v);
        }
        Ok(())
    }
}

/// Makes the hot tier match the file's watermarks, reloading it from the
/// log if another process wrote, or after an interrupted update.
pub(crate) fn sync_hot(
    c: &Connection,
    hot: &RwLock<Hot>,
    m: Marks,
    op: &'static str,
) -> StoreResult<()> {
    let read = hot.read().unwrap_or_else(std::sync::PoisonError::into_inner);
    if read.matches(m) && !read.filter_behind(m) {
        return Ok(());
    }
    drop(read);
    let mut tier = hot.write().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !tier.matches(m) {
        tier.reload(c, m).map_err(|e| e.during(op))?;
    }
    tier.catch_up_filter(c, m).during(op)
}

/// Folds the hot tier into the tables, in one transaction on the write
/// connection: each table's rows sorted by its key, so each page is read
/// and written once per fold.
pub(crate) fn fold(conn: &mut Connection, hot: &RwLock<Hot>) -> StoreResult<()> {
    const OP: &str = "fold events";
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .during(OP)?;
    let m = hot::marks(&tx).during(OP)?;
    sync_hot(&tx, hot, m, OP)?;
    if m.last == m.folded {
        return Ok(());
    }
    let probe_t = std::time::Instant::now(); // PROBE
    let mut probe = Vec::new(); // PROBE
    {
        // Readers may go on meanwhile; only this writer changes the tier.
        let tier = hot.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let plan = tier.fold_plan();
        probe.push(("plan", probe_t.elapsed())); // PROBE
        let mut by_id = tx
            .prepare_cached("INSERT INTO event_id (id, seq) VALUES (?1, ?2)")
            .during(OP)?;
        for (id, seq) in &plan.ids {
            by_id.execute(params![id, seq]).during(OP)?;
        }
        probe.push(("ids", probe_t.elapsed())); // PROBE
        let mut by_hcp = tx
            .prepare_cached("INSERT INTO event_hcp (hcp_num, seq) VALUES (?1, ?2)")
            .during(OP)?;
        for (n, seq) in &plan.by_hcp {
            by_hcp.execute(params![n, seq]).during(OP)?;
        }
        probe.push(("hcp", probe_t.elapsed())); // PROBE
        write_features(&tx, &plan.features).during(OP)?;
        probe.push(("features", probe_t.elapsed())); // PROBE
        let moved = tx
            .execute(
                "UPDATE event_fold SET folded_seq = ?1 WHERE folded_seq = ?2",
                params![m.last, m.folded],
            )
            .during(OP)?;
        if moved != 1 {
            return Err(StoreError::Backend {
                op: OP,
                message: "the fold mark moved during a fold".into(),
            });
        }
    }
    tx.commit().during(OP)?;
    probe.push(("commit", probe_t.elapsed())); // PROBE
    if std::env::var_os("OG_PROBE").is_some() { eprintln!("fold {} events: {:?}", m.last - m.folded, probe); } // PROBE
    hot.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .folded_to(m.last);
    Ok(())
}

/// Rows per `INSERT` statement when appending events: one statement per
/// row cost more than the row itself.
const ROWS_PER_INSERT: usize = 50;

/// Appends `events[i]` for each `i` of `stored`, in order, with `seq` from
/// `after + 1`.
#[expect(clippy::too_many_arguments, reason = "one call site, all columns")]
fn insert_events(
    tx: &Connection,
    after: i64,
    stored: &[usize],
    events: &[NewEvent],
    hcp_nums: &[i64],
    attributes: &[String],
    received_at: i64,
    batch_id: &str,
) -> rusqlite::Result<()> {
    // No `seq`: SQLite gives each row the largest one plus one, which
    // lets it append without looking for a conflicting key first.
    const COLUMNS: &str =
        "INSERT INTO event (id, hcp_num, type, channel, occurred_at, received_at, attributes, batch_id) VALUES ";
    const ROW: &str = "(?,?,?,?,?,?,?,?)";
    let sql = |rows: usize| format!("{COLUMNS}{}", vec![ROW; rows].join(","));
    let mut seq = after;
    // Statements of 50, 10 and 1 rows: three statements to prepare once.
    let mut rest = stored;
    let chunks = std::iter::from_fn(|| {
        let n = [ROWS_PER_INSERT, 10, 1]
            .into_iter()
            .find(|&n| rest.len() >= n)?;
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        Some(chunk)
    });
    for chunk in chunks {
        let mut stmt = tx.prepare_cached(&sql(chunk.len()))?;
        let mut p = 0;
        for &i in chunk {
            let e = &events[i];
            stmt.raw_bind_parameter(p + 1, &e.id)?;
            stmt.raw_bind_parameter(p + 2, hcp_nums[i])?;
            stmt.raw_bind_parameter(p + 3, e.event_type.as_str())?;
            stmt.raw_bind_parameter(p + 4, e.channel.as_str())?;
            stmt.raw_bind_parameter(p + 5, e.occurred_at)?;
            stmt.raw_bind_parameter(p + 6, received_at)?;
            stmt.raw_bind_parameter(p + 7, &attributes[i])?;
            stmt.raw_bind_parameter(p + 8, batch_id)?;
            p += 8;
        }
        stmt.raw_execute()?;
        seq += chunk.len() as i64;
    }
    // INVARIANT: the rows got `after + 1 ..= seq`, the numbers the hot tier
    // records (the log is append-only, so the largest `seq` only grows).
    if tx.last_insert_rowid() != seq && !stored.is_empty() {
        return Err(rusqlite::Error::StatementChangedRows(0));
    }
    Ok(())
}

/// Merges feature deltas into the stored rows: one read and one write per
/// (HCP, channel), one upsert per (HCP, content version), in key order.
fn write_features(tx: &Connection, features: &Features<'_>) -> rusqlite::Result<()> {
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
    for (&(hcp, ch), d) in &features.channels {
        let mut row = read
            .query_row(params![hcp, ch], channel_row)
            .optional()?
            .unwrap_or_default();
        row.apply(d);
        let (ring_day, blob) = row.ring.to_parts();
        write.execute(params![
            hcp,
            ch,
            row.last_touch_at,
            row.sends,
            row.opens,
            row.clicks,
            row.attended,
            ring_day,
            blob
        ])?;
    }
    let mut seen = tx.prepare_cached(
        "INSERT INTO content_seen (hcp_num, content_version, first_seen_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (hcp_num, content_version) DO UPDATE
             SET first_seen_at = min(first_seen_at, excluded.first_seen_at)",
    )?;
    for (&(hcp, version), at) in &features.seen {
        seen.execute(params![hcp, version, at])?;
    }
    Ok(())
}

/// A `feature_channel` row from `last_touch_at, sends, opens, clicks,
/// attended, ring_day, ring`.
fn channel_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ChannelRow> {
    Ok(ChannelRow {
        last_touch_at: r.get(0)?,
        sends: r.get(1)?,
        opens: r.get(2)?,
        clicks: r.get(3)?,
        attended: r.get(4)?,
        ring: DayRing::from_parts(r.get(5)?, &r.get::<_, Vec<u8>>(6)?),
    })
}

impl SqliteStore {
    /// The hot events of `members` in the current read transaction's
    /// snapshot, reading from the log whatever the hot tier does not cover.
    /// Must be called before anything else reads in that transaction, so
    /// that the snapshot starts while the tier is held.
    fn hot_view(
        &self,
        c: &Connection,
        hcp: &HcpId,
        op: &'static str,
    ) -> StoreResult<(Vec<i64>, Marks, HotView)> {
        let tier = self.hot();
        // The first read of the transaction: the snapshot starts here.
        let members = identity::group_of(c, hcp)?;
        let m = hot::marks(c).during(op)?;
        let view = tier.view(&members, m);
        drop(tier);
        Ok((members, m, view))
    }
}

impl EventStore for SqliteStore {
    fn ingest(
        &self,
        actor: &str,
        batch_id: &str,
        events: &[NewEvent],
    ) -> StoreResult<IngestReport> {
        const OP: &str = "ingest events";
        let mut pr = probe::P::new();
        for e in events {
            e.validate().map_err(|reason| StoreError::InvalidEvent {
                event: e.id.clone(),
                reason,
            })?;
        }
        pr.lap(0);
        let attributes: Vec<String> = events
            .iter()
            .map(|e| map_to_canonical_json(&e.attributes))
            .collect();
        pr.lap(1);
        let mut conn = self.writer();
        if self.hot().len() >= FOLD_BACKLOG * self.fold_events {
            // Folding failed after the last batches; refuse this one (it
            // changed nothing) unless folding works now.
            fold(&mut conn, self.hot_lock())?;
        }
        let (report, fresh) = transact(&mut conn, OP, |tx, audit| {
            let m = hot::marks(tx).during(OP)?;
            sync_hot(tx, self.hot_lock(), m, OP)?;
            pr.lap(2);
            // Every HCP exists: known to the cache, else looked up in this
            // transaction.
            let mut nums = self
                .hcp_nums
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            nums.check(tx).during(OP)?;
            let mut hcp_nums = Vec::with_capacity(events.len());
            for e in events {
                let n = match nums.nums.get(e.hcp.as_str()) {
                    Some(&n) => n,
                    None => {
                        let n = hcp::num(tx, &e.hcp).during(OP)?.ok_or_else(|| {
                            StoreError::EventForUnknownHcp {
                                event: e.id.clone(),
                                hcp: e.hcp.clone(),
                            }
                        })?;
                        nums.nums.insert(e.hcp.as_str().to_owned(), n);
                        n
                    }
                };
                hcp_nums.push(n);
            }
            drop(nums);
            pr.lap(3);
            // INVARIANT: the id is the idempotency key. An event is new if
            // no earlier event of the batch, of the hot tier or of the
            // folded index has its id.
            let mut new = Vec::with_capacity(events.len());
            let mut maybe_folded = Vec::new();
            {
                let tier = self.hot();
                let mut in_batch = HashSet::with_capacity(events.len());
                for (i, e) in events.iter().enumerate() {
                    let fresh = !tier.contains(&e.id) && in_batch.insert(e.id.as_str());
                    if fresh && tier.may_be_folded(&e.id) {
                        maybe_folded.push(i);
                    }
                    new.push(fresh);
                }
            }
            pr.lap(4);
            // The filter says "maybe" for about 1% of new ids, and for
            // replays: only those are looked up.
            let mut folded = tx
                .prepare_cached("SELECT 1 FROM event_id WHERE id = ?1")
                .during(OP)?;
            for i in maybe_folded {
                if folded.exists([&events[i].id]).during(OP)? {
                    new[i] = false;
                }
            }
            pr.lap(5);
            let stored: Vec<usize> = (0..events.len()).filter(|&i| new[i]).collect();
            insert_events(tx, m.last, &stored, events, &hcp_nums, &attributes, audit.now(), batch_id)
                .during(OP)?;
            let mut seq = m.last;
            let mut fresh = Vec::new();
            let mut rule_hits = Vec::new();
            let mut digest = Sha256::new();
            let mut report = IngestReport::default();
            for (((e, attrs), &n), _) in events
                .iter()
                .zip(&attributes)
                .zip(&hcp_nums)
                .zip(&new)
                .filter(|(_, new)| **new)
            {
                seq += 1;
                report.accepted += 1;
                fresh.push((
                    Box::from(e.id.as_str()),
                    n,
                    HotEvent {
                        seq,
                        occurred_at: e.occurred_at,
                        event_type: e.event_type,
                        channel: e.channel,
                        content: e.content_seen().map(Box::from),
                    },
                ));
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
            report.duplicates = events.len() - report.accepted;
            pr.lap(6);
            // INVARIANT: a replayed batch adds nothing, not even an audit entry.
            if report.accepted > 0 {
                let payload = json!({
                    "accepted": report.accepted, "duplicates": report.duplicates,
                    "events_sha256": hex::encode(digest.finalize()),
                });
                audit.append(tx, NewAuditEntry::new(actor, "events.ingest", batch_id, payload))?;
                journey::apply(tx, audit, actor, &self.journey, &rule_hits)?;
            }
            pr.lap(7);
            Ok((report, fresh))
        })?;
        pr.lap(8);
        self.committed();
        // Committed: the hot tier learns of the batch before any other
        // write (this thread still holds the write connection).
        if !fresh.is_empty() {
            self.hot_mut().extend(fresh);
        }
        pr.lap(9);
        if self.hot().len() >= self.fold_events {
            // The batch is stored whatever happens here; a failed fold is
            // retried after the next batch (and refuses batches once the
            // backlog is too long, see above).
            let _ = fold(&mut conn, self.hot_lock());
            self.committed();
            pr.lap(10);
        }
        Ok(report)
    }

    fn events_of(&self, hcp: &HcpId) -> StoreResult<Vec<Event>> {
        const OP: &str = "read events";
        self.read(OP, |c| {
            let (members, _, view) = self.hot_view(c, hcp, OP)?;
            let ids = identity::ids_of(c, &members)?;
            let row = |r: &rusqlite::Row<'_>| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, String>(5)?,
                ))
            };
            let mut rows = Vec::new();
            let mut folded = c
                .prepare_cached(
                    "SELECT e.id, e.type, e.channel, e.occurred_at, e.received_at, e.attributes
                     FROM event_hcp h JOIN event e ON e.seq = h.seq WHERE h.hcp_num = ?1",
                )
                .during(OP)?;
            for (&n, member) in members.iter().zip(&ids) {
                for r in folded.query_map([n], row).during(OP)? {
                    rows.push((member, r.during(OP)?));
                }
            }
            // The hot part: the tier's events, and the log for the ranges
            // it does not cover.
            let mut hot: Vec<(i64, i64)> = view.events.iter().map(|(n, e)| (*n, e.seq)).collect();
            let mut scan = c
                .prepare_cached("SELECT seq, hcp_num FROM event WHERE seq > ?1 AND seq <= ?2")
                .during(OP)?;
            for &(from, to) in &view.missing {
                for r in scan
                    .query_map([from, to], |r| Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(0)?)))
                    .during(OP)?
                {
                    let (n, seq) = r.during(OP)?;
                    if members.contains(&n) {
                        hot.push((n, seq));
                    }
                }
            }
            let mut by_seq = c
                .prepare_cached(
                    "SELECT id, type, channel, occurred_at, received_at, attributes
                     FROM event WHERE seq = ?1",
                )
                .during(OP)?;
            for (n, seq) in hot {
                let Some(member) = members.iter().position(|&m| m == n).map(|i| &ids[i]) else {
                    continue;
                };
                rows.push((member, by_seq.query_row([seq], row).during(OP)?));
            }
            let mut out = Vec::with_capacity(rows.len());
            for (member, (id, t, ch, occurred_at, received_at, attrs)) in rows {
                out.push(Event {
                    event: NewEvent {
                        id,
                        hcp: member.clone(),
                        event_type: t.parse().map_err(|_| corrupt(OP, "event type", &t))?,
                        channel: ch.parse().map_err(|_| corrupt(OP, "channel", &ch))?,
                        occurred_at,
                        attributes: serde_json::from_str(&attrs).during(OP)?,
                    },
                    received_at,
                });
            }
            out.sort_by(|a, b| {
                (a.event.occurred_at, &a.event.id).cmp(&(b.event.occurred_at, &b.event.id))
            });
            Ok(out)
        })
    }

    fn event_count(&self) -> StoreResult<u64> {
        const OP: &str = "count events";
        self.read(OP, |c| {
            // Folded events have one `event_hcp` row each (its narrowest
            // table); the others are the log's tail.
            c.query_row(
                "SELECT (SELECT count(*) FROM event_hcp)
                      + (SELECT count(*) FROM event WHERE seq > (SELECT folded_seq FROM event_fold))",
                [],
                |r| r.get::<_, i64>(0),
            )
            .during(OP)
            .map(|n| n.unsigned_abs())
        })
    }

    fn features(&self, hcp: &HcpId, now: UnixMillis) -> StoreResult<EngagementStats> {
        const OP: &str = "read features";
        self.read(OP, |c| {
            let (members, _, view) = self.hot_view(c, hcp, OP)?;
            let mut hot = view.events;
            for &(from, to) in &view.missing {
                for r in hot::scan_log(c, from, to).map_err(|e| e.during(OP))? {
                    if members.contains(&r.hcp_num) {
                        hot.push((r.hcp_num, r.event));
                    }
                }
            }
            read_features(c, &members, &hot, now)
        })
    }
}

fn to_u32(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

/// A few index lookups whatever the history's length: the HCP's per-channel
/// rows (with their day rings) and the content it has seen, plus its events
/// not folded yet.
fn read_features(
    c: &Connection,
    members: &[i64],
    hot: &[(i64, HotEvent)],
    now: UnixMillis,
) -> StoreResult<EngagementStats> {
    const OP: &str = "read features";
    let mut delta = Features::default();
    for (n, e) in hot {
        delta.add(*n, e);
    }
    let mut stats = EngagementStats::default();
    let mut stmt = c
        .prepare_cached(
            "SELECT last_touch_at, sends, opens, clicks, attended, ring_day, ring, channel
             FROM feature_channel WHERE hcp_num = ?1",
        )
        .during(OP)?;
    for &num in members {
        // Channel rows in name order, as the table's key orders them.
        let mut rows: BTreeMap<String, ChannelRow> = BTreeMap::new();
        let mut stored = stmt.query([num]).during(OP)?;
        while let Some(r) = stored.next().during(OP)? {
            rows.insert(r.get(7).during(OP)?, channel_row(r).during(OP)?);
        }
        for (&(_, ch), d) in delta.channels.range((num, "")..).take_while(|((n, _), _)| *n == num) {
            rows.entry(ch.to_owned()).or_default().apply(d);
        }
        for (ch, row) in rows {
            let s = ChannelStats {
                channel: ch.parse().map_err(|_| corrupt(OP, "channel", &ch))?,
                last_touch_at: row.last_touch_at.map(|ms| ms.div_euclid(1000)),
                touches_7d: row.ring.last_days(now, 7),
                touches_30d: row.ring.last_days(now, 30),
                sends: to_u32(row.sends),
                opens: to_u32(row.opens),
                clicks: to_u32(row.clicks),
                attended: to_u32(row.attended),
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
    for &num in members {
        let seen = stmt
            .query_map([num], |r| r.get::<_, String>(0))
            .during(OP)?;
        for v in seen {
            stats.content_seen.push(v.during(OP)?);
        }
    }
    stats
        .content_seen
        .extend(delta.seen.keys().map(|(_, v)| (*v).to_owned()));
    stats.content_seen.sort();
    stats.content_seen.dedup();
    Ok(stats)
}
