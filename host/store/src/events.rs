//! Event ingest and the derived features it keeps current.
//!
//! A batch is one transaction: every event is validated first, every HCP
//! checked, duplicates (by id: already stored, or earlier in the batch)
//! skipped, and the new events appended to the `event` log in commit order
//! (`seq`), with one audit entry. The per-event indexes (by id, by HCP) and
//! the feature tables (`feature_channel`, `content_seen`) are not written
//! per batch: their pages are spread over the whole file, and writing them
//! cost several random pages per event. Events stay in the hot tier
//! (`hot.rs`, in memory) until a *fold* writes a few hundred thousand of
//! them at once: the indexes as a new sorted run (`runs.rs`), the feature
//! rows in key order. Readers combine the folded tables with the hot tier,
//! so every read is exact at every moment.

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
use crate::hot::{self, ChannelRow, Features, FoldPlan, Hot, HotEvent, HotView, Marks};
use crate::window::DayRing;
use crate::{hcp, identity, journey, runs};

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
    let read = hot
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if read.matches(m) && !read.filter_behind(m) {
        return Ok(());
    }
    drop(read);
    let mut tier = hot
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !tier.matches(m) {
        tier.reload(c, m, m.last).map_err(|e| e.during(op))?;
    }
    tier.catch_up_filter(c, m).during(op)
}

/// Folds the hot tier into the tables, in one transaction on the write
/// connection: the event ids and timelines as a new run (`runs.rs`), the
/// feature rows in key order, so each page is written once per fold.
///
/// With `slice`, folds at most that many events from the log (the hot tier
/// is reloaded with them), for folding a long log in bounded memory at
/// open. Returns whether unfolded events remain.
pub(crate) fn fold(
    conn: &mut Connection,
    hot: &RwLock<Hot>,
    slice: Option<usize>,
) -> StoreResult<bool> {
    const OP: &str = "fold events";
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .during(OP)?;
    let m = hot::marks(&tx).during(OP)?;
    match slice {
        Some(n) => {
            let mut tier = hot
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let upto = m
                .folded
                .saturating_add(i64::try_from(n).unwrap_or(i64::MAX));
            tier.reload(&tx, m, upto).map_err(|e| e.during(OP))?;
            tier.catch_up_filter(&tx, m).during(OP)?;
        }
        None => sync_hot(&tx, hot, m, OP)?,
    }
    let upto = {
        // Readers may go on meanwhile; only this writer changes the tier.
        let tier = hot
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if tier.last() == m.folded {
            return Ok(false);
        }
        let plan = tier.fold_plan();
        runs::add_run(&tx, &plan.ids, &plan.by_hcp).during(OP)?;
        write_features(&tx, &plan).during(OP)?;
        let moved = tx
            .execute(
                "UPDATE event_fold SET folded_seq = ?1 WHERE folded_seq = ?2",
                params![tier.last(), tier.folded()],
            )
            .during(OP)?;
        if moved != 1 {
            return Err(StoreError::Backend {
                op: OP,
                message: "the fold mark moved during a fold".into(),
            });
        }
        tier.last()
    };
    tx.commit().during(OP)?;
    hot.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .folded_to(upto);
    Ok(upto < m.last)
}

/// Rows per statement in bulk writes: one statement per row costs more
/// than the row itself.
const ROWS_PER_STATEMENT: usize = 50;

/// Runs `{head}{row},{row},...{tail}` over `items`, binding each item's
/// parameters with `bind(statement, index before its first, item)`. Uses
/// statements of 50, 10 and 1 rows, so three are prepared once.
fn insert_rows<T>(
    tx: &Connection,
    head: &str,
    row: &str,
    tail: &str,
    items: &[T],
    bind: impl Fn(&mut rusqlite::Statement<'_>, usize, &T) -> rusqlite::Result<()>,
) -> rusqlite::Result<()> {
    let per_row = row.matches('?').count();
    let mut rest = items;
    while !rest.is_empty() {
        let n = [ROWS_PER_STATEMENT, 10, 1]
            .into_iter()
            .find(|&n| rest.len() >= n)
            .unwrap_or(1);
        let (chunk, tail_items) = rest.split_at(n.min(rest.len()));
        rest = tail_items;
        let sql = format!("{head}{}{tail}", vec![row; chunk.len()].join(","));
        let mut stmt = tx.prepare_cached(&sql)?;
        for (k, item) in chunk.iter().enumerate() {
            bind(&mut stmt, k * per_row, item)?;
        }
        stmt.raw_execute()?;
    }
    Ok(())
}

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
    // No `seq`: SQLite gives each row the largest one plus one, which lets
    // it append without looking for a conflicting key first.
    insert_rows(
        tx,
        "INSERT INTO event (id, hcp_num, type, channel, occurred_at, received_at, attributes, batch_id) VALUES ",
        "(?,?,?,?,?,?,?,?)",
        "",
        stored,
        |s, p, &i| {
            let e = &events[i];
            s.raw_bind_parameter(p + 1, &e.id)?;
            s.raw_bind_parameter(p + 2, hcp_nums[i])?;
            s.raw_bind_parameter(p + 3, e.event_type.as_str())?;
            s.raw_bind_parameter(p + 4, e.channel.as_str())?;
            s.raw_bind_parameter(p + 5, e.occurred_at)?;
            s.raw_bind_parameter(p + 6, received_at)?;
            s.raw_bind_parameter(p + 7, &attributes[i])?;
            s.raw_bind_parameter(p + 8, batch_id)
        },
    )?;
    // INVARIANT: the rows got `after + 1 ..= after + n`, the numbers the
    // hot tier records (the log is append-only: its largest `seq` only
    // grows, and this transaction holds the write lock).
    let n = i64::try_from(stored.len()).unwrap_or(i64::MAX);
    if !stored.is_empty() && tx.last_insert_rowid() != after + n {
        return Err(rusqlite::Error::StatementChangedRows(0));
    }
    Ok(())
}

/// Merges feature deltas into the stored rows, in key order: the rows of
/// the (HCP, channel) pairs touched, by one index lookup each or, when a
/// fold touches a good part of the table, by one scan of it; then one
/// upsert per pair and one per (HCP, content version).
fn write_features(tx: &Connection, plan: &FoldPlan<'_>) -> rusqlite::Result<()> {
    const COLUMNS: &str = "last_touch_at, sends, opens, clicks, attended, ring_day, ring";
    let mut rows: Vec<ChannelRow> = Vec::with_capacity(plan.channels.len());
    let hcps: i64 = tx.query_row("SELECT coalesce(max(num), 0) FROM hcp", [], |r| r.get(0))?;
    if plan.channels.len() as i64 * 2 >= hcps {
        // A merge of two lists in the same order.
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT hcp_num, channel, {COLUMNS} FROM feature_channel ORDER BY hcp_num, channel"
        ))?;
        let mut stored = stmt.query([])?;
        let mut current = stored.next()?;
        for &((n, ch), _) in &plan.channels {
            let mut found = None;
            while let Some(r) = current {
                let key: (i64, &str) = (r.get(0)?, r.get_ref(1)?.as_str()?);
                if key < (n, ch) {
                    current = stored.next()?;
                    continue;
                }
                if key == (n, ch) {
                    found = Some(channel_row_at(r, 2)?);
                }
                break;
            }
            rows.push(found.unwrap_or_default());
        }
    } else {
        let mut read = tx.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM feature_channel WHERE hcp_num = ?1 AND channel = ?2"
        ))?;
        for &((n, ch), _) in &plan.channels {
            rows.push(
                read.query_row(params![n, ch], |r| channel_row_at(r, 0))
                    .optional()?
                    .unwrap_or_default(),
            );
        }
    }
    for (row, (_, d)) in rows.iter_mut().zip(&plan.channels) {
        row.apply(d);
    }
    let items: Vec<_> = plan.channels.iter().map(|(k, _)| k).zip(&rows).collect();
    insert_rows(
        tx,
        "INSERT INTO feature_channel
             (hcp_num, channel, last_touch_at, sends, opens, clicks, attended, ring_day, ring)
         VALUES ",
        "(?,?,?,?,?,?,?,?,?)",
        " ON CONFLICT (hcp_num, channel) DO UPDATE SET
             last_touch_at = excluded.last_touch_at, sends = excluded.sends,
             opens = excluded.opens, clicks = excluded.clicks, attended = excluded.attended,
             ring_day = excluded.ring_day, ring = excluded.ring",
        &items,
        |s, p, &(&(n, ch), row)| {
            let (ring_day, blob) = row.ring.to_parts();
            s.raw_bind_parameter(p + 1, n)?;
            s.raw_bind_parameter(p + 2, ch)?;
            s.raw_bind_parameter(p + 3, row.last_touch_at)?;
            s.raw_bind_parameter(p + 4, row.sends)?;
            s.raw_bind_parameter(p + 5, row.opens)?;
            s.raw_bind_parameter(p + 6, row.clicks)?;
            s.raw_bind_parameter(p + 7, row.attended)?;
            s.raw_bind_parameter(p + 8, ring_day)?;
            s.raw_bind_parameter(p + 9, blob)
        },
    )?;
    insert_rows(
        tx,
        "INSERT INTO content_seen (hcp_num, content_version, first_seen_at) VALUES ",
        "(?,?,?)",
        " ON CONFLICT (hcp_num, content_version) DO UPDATE
             SET first_seen_at = min(first_seen_at, excluded.first_seen_at)",
        &plan.seen,
        |s, p, &((n, version), at)| {
            s.raw_bind_parameter(p + 1, n)?;
            s.raw_bind_parameter(p + 2, version)?;
            s.raw_bind_parameter(p + 3, at)
        },
    )
}

/// A `feature_channel` row from `last_touch_at, sends, opens, clicks,
/// attended, ring_day, ring` starting at column `at`.
fn channel_row_at(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<ChannelRow> {
    Ok(ChannelRow {
        last_touch_at: r.get(at)?,
        sends: r.get(at + 1)?,
        opens: r.get(at + 2)?,
        clicks: r.get(at + 3)?,
        attended: r.get(at + 4)?,
        ring: DayRing::from_parts(r.get(at + 5)?, r.get_ref(at + 6)?.as_blob()?),
    })
}

impl SqliteStore {
    /// The records of `hcp`'s group and their events in the hot part of
    /// the current read transaction's snapshot, with the `seq` ranges the
    /// hot tier does not cover (to be read from the log).
    ///
    /// Called before anything else reads in the transaction, so that its
    /// snapshot starts while the tier is held: then the tier covers the
    /// snapshot's hot part, except for a batch committed but not yet added
    /// to the tier (any other case is still read right, from the log).
    fn hot_view(
        &self,
        c: &Connection,
        hcp: &HcpId,
        op: &'static str,
    ) -> StoreResult<(Vec<i64>, HotView)> {
        let tier = self.hot();
        // The first read of the transaction: the snapshot starts here.
        let members = identity::group_of(c, hcp)?;
        let m = hot::marks(c).during(op)?;
        let view = tier.view(&members, m);
        drop(tier);
        Ok((members, view))
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
        let mut conn = self.writer();
        if self.hot().len() >= FOLD_BACKLOG * self.fold_events {
            // Folding failed after the last batches; refuse this one (it
            // changed nothing) unless folding works now.
            fold(&mut conn, self.hot_lock(), None)?;
        }
        let (report, fresh) = transact(&mut conn, OP, |tx, audit| {
            let m = hot::marks(tx).during(OP)?;
            sync_hot(tx, self.hot_lock(), m, OP)?;
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
            // The filter says "maybe" for about 1% of new ids, and for
            // replays: only those are looked up.
            if !maybe_folded.is_empty() {
                let runs = runs::runs(tx).during(OP)?;
                for i in maybe_folded {
                    if runs::contains_id(tx, &runs, &events[i].id).during(OP)? {
                        new[i] = false;
                    }
                }
            }
            let stored: Vec<usize> = (0..events.len()).filter(|&i| new[i]).collect();
            insert_events(
                tx,
                m.last,
                &stored,
                events,
                &hcp_nums,
                &attributes,
                audit.now(),
                batch_id,
            )
            .during(OP)?;
            let mut fresh = Vec::new();
            let mut rule_hits = Vec::new();
            let mut digest = Sha256::new();
            let mut report = IngestReport::default();
            for (seq, &i) in (m.last + 1..).zip(&stored) {
                let (e, attrs, n) = (&events[i], &attributes[i], hcp_nums[i]);
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
                for part in [
                    e.id.as_str(),
                    e.hcp.as_str(),
                    e.event_type.as_str(),
                    e.channel.as_str(),
                ] {
                    digest.update(part.as_bytes());
                    digest.update(b"\t");
                }
                digest.update(e.occurred_at.to_string().as_bytes());
                digest.update(b"\t");
                digest.update(attrs.as_bytes());
                digest.update(b"\n");
            }
            report.duplicates = events.len() - report.accepted;
            // INVARIANT: a replayed batch adds nothing, not even an audit entry.
            if report.accepted > 0 {
                let payload = json!({
                    "accepted": report.accepted, "duplicates": report.duplicates,
                    "events_sha256": hex::encode(digest.finalize()),
                });
                audit.append(
                    tx,
                    NewAuditEntry::new(actor, "events.ingest", batch_id, payload),
                )?;
                journey::apply(tx, audit, actor, &self.journey, &rule_hits)?;
            }
            Ok((report, fresh))
        })?;
        self.committed();
        // Committed: the hot tier learns of the batch before any other
        // write (this thread still holds the write connection).
        if !fresh.is_empty() {
            self.hot_mut().extend(fresh);
        }
        if self.hot().len() >= self.fold_events {
            // The batch is stored whatever happens here; a failed fold is
            // retried after the next batch (and refuses batches once the
            // backlog is too long, see above).
            let _ = fold(&mut conn, self.hot_lock(), None);
            self.committed();
        }
        Ok(report)
    }

    fn events_of(&self, hcp: &HcpId) -> StoreResult<Vec<Event>> {
        const OP: &str = "read events";
        self.read(OP, |c| {
            let (members, view) = self.hot_view(c, hcp, OP)?;
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
            // The folded part from the runs, the hot part from the tier and
            // the log for the ranges it does not cover.
            let runs = runs::runs(c).during(OP)?;
            let mut hot: Vec<(i64, i64)> = view.events.iter().map(|(n, e)| (*n, e.seq)).collect();
            for &n in &members {
                for seq in runs::seqs_of(c, &runs, n).during(OP)? {
                    hot.push((n, seq));
                }
            }
            let mut scan = c
                .prepare_cached("SELECT seq, hcp_num FROM event WHERE seq > ?1 AND seq <= ?2")
                .during(OP)?;
            for &(from, to) in &view.missing {
                for r in scan
                    .query_map([from, to], |r| {
                        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(0)?))
                    })
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
            let mut rows = Vec::with_capacity(hot.len());
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
            // The runs count the folded events; the others are the log's
            // tail.
            c.query_row(
                "SELECT (SELECT coalesce(sum(events), 0) FROM event_run)
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
            let (members, view) = self.hot_view(c, hcp, OP)?;
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
            rows.insert(r.get(7).during(OP)?, channel_row_at(r, 0).during(OP)?);
        }
        for (&(_, ch), d) in delta
            .channels
            .range((num, "")..)
            .take_while(|((n, _), _)| *n == num)
        {
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
