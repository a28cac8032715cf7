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
//! rows in key order. Folds run on a thread of their own ([`Folder`]) and
//! write a file of their own (`db::FOLDS_FILE`, a cache of the log), so
//! that ingest goes on meanwhile. Readers combine the folded tables with
//! the hot tier, so every read is exact at every moment.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, RwLock};

use omnigate_core::audit::NewAuditEntry;
use omnigate_core::canonical::to_canonical_json;
use omnigate_core::event::{Event, NewEvent, UnixMillis};
use omnigate_core::hcp::HcpId;
use omnigate_core::store::{EventStore, IngestReport, StoreError, StoreResult};
use omnigate_core::{Channel, ChannelStats, EngagementStats, EventType};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::db::{During, SqliteStore, corrupt, transact};
use crate::hot::{
    self, ChannelRow, FastMap, FastSet, Features, FoldPlan, Hot, HotEvent, HotView, Marks, NewHot,
    Segment,
};
use crate::window::DayRing;
use crate::{hcp, identity, journey, runs};

/// A hot tier this many times larger than a fold means folding does not
/// keep up: ingest then waits for the fold thread, and refuses batches while
/// folds fail, rather than let the tier grow without bound.
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
    nums: FastMap<String, i64>,
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

/// The schema of the folds file (`db::FOLDS_FILE`), its `user_version`.
const FOLDS_SCHEMA: i64 = 1;

/// The tables folds write, in a file of their own so that the fold thread
/// writes them while ingest appends to the log (SQLite locks each file
/// separately). A cache of the log: nothing here is the only copy of
/// anything, and a fold is one transaction that moves the mark.
const FOLDS_TABLES: &str = "
    CREATE TABLE IF NOT EXISTS feature_channel (
        hcp_num       INTEGER NOT NULL,
        channel       TEXT NOT NULL,
        last_touch_at INTEGER,
        sends         INTEGER NOT NULL DEFAULT 0,
        opens         INTEGER NOT NULL DEFAULT 0,
        clicks        INTEGER NOT NULL DEFAULT 0,
        attended      INTEGER NOT NULL DEFAULT 0,
        ring_day      INTEGER,
        ring          BLOB NOT NULL,
        PRIMARY KEY (hcp_num, channel)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS content_seen (
        hcp_num         INTEGER NOT NULL,
        content_version TEXT NOT NULL,
        first_seen_at   INTEGER NOT NULL,
        PRIMARY KEY (hcp_num, content_version)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS event_run (
        run    INTEGER PRIMARY KEY,
        events INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS event_id_run (
        run     INTEGER NOT NULL,
        last_id TEXT NOT NULL,
        chunk   BLOB NOT NULL,
        PRIMARY KEY (run, last_id)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS event_hcp_run (
        run     INTEGER NOT NULL,
        hcp_num INTEGER NOT NULL,
        seqs    BLOB NOT NULL,
        PRIMARY KEY (run, hcp_num)
    ) WITHOUT ROWID;
    -- One row: every event up to `folded_seq` is in the tables above, none
    -- after; `last_id` is the id of event `folded_seq`, which ties this file
    -- to its log.
    CREATE TABLE IF NOT EXISTS event_fold (
        one        INTEGER PRIMARY KEY CHECK (one = 1),
        folded_seq INTEGER NOT NULL,
        last_id    TEXT
    );
    INSERT OR IGNORE INTO event_fold (one, folded_seq, last_id) VALUES (1, 0, NULL);
";

/// Why the folds file could not be opened.
#[derive(Debug)]
pub(crate) enum FoldsOpenError {
    Sqlite(rusqlite::Error),
    /// Its schema is newer than this build's: (found, known).
    TooNew(i64, i64),
}

impl From<rusqlite::Error> for FoldsOpenError {
    fn from(e: rusqlite::Error) -> Self {
        FoldsOpenError::Sqlite(e)
    }
}

/// Opens (creating it if needed) the folds file, with the log `log_path`
/// attached read-only as `log` for the folds of [`fold_slice`] (see
/// [`detach_log`]). Tables that do not belong to this log (their mark is
/// past its end, or on another event: the log was restored from a backup,
/// say) are emptied, to be rebuilt from it.
pub(crate) fn open_folds(
    path: &std::path::Path,
    log_path: &std::path::Path,
    cache_mib: u32,
) -> Result<Connection, FoldsOpenError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    conn.set_prepared_statement_cache_capacity(64);
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::InvalidQuery.into());
    }
    // A cache of the log: a power cut may take its last folds away (WAL
    // keeps it consistent), and the next open folds those events again.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "cache_size", -(i64::from(cache_mib) * 1024))?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Checkpointed by the fold thread after each fold, outside the commit
    // (which holds the writer).
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    {
        let tx = rusqlite::Transaction::new_unchecked(&conn, TransactionBehavior::Immediate)?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > FOLDS_SCHEMA {
            return Err(FoldsOpenError::TooNew(version, FOLDS_SCHEMA));
        }
        tx.execute_batch(FOLDS_TABLES)?;
        tx.pragma_update(None, "user_version", FOLDS_SCHEMA)?;
        tx.commit()?;
    }
    crate::db::attach(&conn, log_path, "log", true)?;
    {
        let tx = rusqlite::Transaction::new_unchecked(&conn, TransactionBehavior::Immediate)?;
        let (mark, last_id): (i64, Option<String>) =
            tx.query_row("SELECT folded_seq, last_id FROM event_fold", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        let logged: Option<String> = tx
            .query_row("SELECT id FROM log.event WHERE seq = ?1", [mark], |r| {
                r.get(0)
            })
            .optional()?;
        if mark > 0 && (logged.is_none() || logged != last_id) {
            tx.execute_batch(
                "DELETE FROM feature_channel; DELETE FROM content_seen; DELETE FROM event_run;
                 DELETE FROM event_id_run; DELETE FROM event_hcp_run;
                 UPDATE event_fold SET folded_seq = 0, last_id = NULL;",
            )?;
        }
        tx.commit()?;
    }
    Ok(conn)
}

/// Detaches the log from the folds connection once the folds at open are
/// done: the fold thread folds from memory, and should not hold a snapshot
/// of the log (which would keep its WAL from being reset).
pub(crate) fn detach_log(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch("DETACH DATABASE log")
}

/// Writes the events of `seg` into the folded tables of the folds
/// connection's transaction: the ids and timelines as a new run
/// (`runs.rs`), the feature rows in key order (each page written once per
/// fold), and moves the mark from `seg.from` to `seg.to`.
fn write_fold(tx: &Connection, seg: &Segment, op: &'static str) -> StoreResult<()> {
    let plan = seg.fold_plan();
    runs::add_run(tx, &plan.ids, &plan.by_hcp).during(op)?;
    write_features(tx, &plan).during(op)?;
    let last_id = plan
        .ids
        .iter()
        .find(|&&(_, seq)| seq == seg.to)
        .map(|&(id, _)| id);
    let moved = tx
        .execute(
            "UPDATE event_fold SET folded_seq = ?1, last_id = ?2 WHERE folded_seq = ?3",
            params![seg.to, last_id, seg.from],
        )
        .during(op)?;
    if moved != 1 {
        return Err(StoreError::Backend {
            op,
            message: "the fold mark moved during a fold".into(),
        });
    }
    Ok(())
}

/// Folds up to `n` events of the log past the mark, at open (the folds
/// connection still has the log attached): the hot tier is reloaded with
/// them, so a long log is folded in bounded memory. Returns whether
/// unfolded events remain.
pub(crate) fn fold_slice(conn: &mut Connection, hot: &RwLock<Hot>, n: usize) -> StoreResult<bool> {
    const OP: &str = "fold events";
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .during(OP)?;
    let m = hot::marks(&tx).during(OP)?;
    let seg = {
        let mut tier = hot
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let upto = m
            .folded
            .saturating_add(i64::try_from(n).unwrap_or(i64::MAX));
        tier.reload(&tx, m, upto).map_err(|e| e.during(OP))?;
        tier.catch_up_filter(&tx, m).during(OP)?;
        tier.freeze()
    };
    let Some(seg) = seg else {
        tx.commit().during(OP)?;
        return Ok(false);
    };
    write_fold(&tx, &seg, OP)?;
    tx.commit().during(OP)?;
    hot.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .frozen_folded(&seg);
    // A rebuild folds many slices: keep the WAL short.
    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    Ok(seg.to < m.last)
}

/// Folds the frozen segment `seg` on the fold thread: everything but the
/// commit runs while ingest goes on; the commit and the hot tier's update
/// happen together while holding the writer, so that a write never sees
/// the tables and the tier disagree.
fn fold_frozen(
    conn: &mut Connection,
    writer: &Mutex<Connection>,
    hot: &RwLock<Hot>,
    seg: &Arc<Segment>,
) -> StoreResult<()> {
    const OP: &str = "fold events";
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .during(OP)?;
    write_fold(&tx, seg, OP)?;
    let _writer = writer
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    tx.commit().during(OP)?;
    hot.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .frozen_folded(seg);
    Ok(())
}

#[derive(Debug, Default)]
struct FoldState {
    /// Ingest asked for a fold.
    pending: bool,
    stop: bool,
    /// Why the last fold failed, if it did.
    error: Option<String>,
    /// Folds attempted, to wait for the next one.
    attempts: u64,
}

#[derive(Debug, Default)]
struct FoldShared {
    state: Mutex<FoldState>,
    /// Wakes the thread.
    wake: Condvar,
    /// Wakes those waiting for a fold to end.
    done: Condvar,
}

impl FoldShared {
    fn state(&self) -> MutexGuard<'_, FoldState> {
        // Plain flags and a message: always consistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The fold thread: folds the hot tier into the folds file whenever ingest
/// says it holds enough (`StoreOptions::fold_events`), on the second core
/// while ingest goes on. Stopped (after the fold under way) when dropped.
#[derive(Debug)]
pub(crate) struct Folder {
    shared: Arc<FoldShared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Folder {
    /// Starts the thread on `conn`, the folds file's connection.
    pub(crate) fn start(
        conn: Connection,
        writer: Arc<Mutex<Connection>>,
        hot: Arc<RwLock<Hot>>,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(FoldShared::default());
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("omnigate-fold".into())
                .spawn(move || run_folds(conn, &writer, &hot, &shared))?
        };
        Ok(Folder {
            shared,
            thread: Some(thread),
        })
    }

    /// Asks for a fold.
    pub(crate) fn poke(&self) {
        let mut state = self.shared.state();
        if !state.pending {
            state.pending = true;
            self.shared.wake.notify_one();
        }
    }

    /// Waits until the hot tier holds fewer than `limit` events; fails if
    /// the last fold failed (the batch is then refused, as it changed
    /// nothing, rather than let the tier grow without bound).
    fn wait_below(&self, hot: &RwLock<Hot>, limit: usize) -> StoreResult<()> {
        let held = || {
            hot.read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .len()
        };
        while held() >= limit {
            if self.thread.as_ref().is_none_or(|t| t.is_finished()) {
                return Err(StoreError::Backend {
                    op: "fold events",
                    message: "the fold thread stopped".into(),
                });
            }
            let mut state = self.shared.state();
            if let Some(message) = &state.error {
                return Err(StoreError::Backend {
                    op: "fold events",
                    message: message.clone(),
                });
            }
            let attempts = state.attempts;
            state.pending = true;
            self.shared.wake.notify_one();
            while state.attempts == attempts && state.error.is_none() {
                state = self
                    .shared
                    .done
                    .wait_timeout(state, std::time::Duration::from_millis(100))
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0;
            }
        }
        Ok(())
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        self.shared.state().stop = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            // A panic in the thread left the tier invalid at worst (it is
            // reloaded from the log); nothing is left to stop.
            let _ = t.join();
        }
    }
}

/// Copies the fold just committed from the folds file's WAL into the file
/// itself. Until every frame is copied, readers read the pages a fold
/// rewrote from the WAL (a `pread` and a copy each) instead of the mapped
/// file, so a checkpoint that a reader kept from finishing is retried for a
/// while, unless a fold is asked for meanwhile (its own checkpoint follows).
fn checkpoint_folds(conn: &Connection, shared: &FoldShared) {
    for _ in 0..40 {
        let done = conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok(r.get::<_, i64>(1)? == r.get::<_, i64>(2)?)
            })
            .unwrap_or(false);
        let state = shared.state();
        if done || state.pending || state.stop {
            return;
        }
        drop(state);
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
}

fn run_folds(
    mut conn: Connection,
    writer: &Mutex<Connection>,
    hot: &RwLock<Hot>,
    shared: &FoldShared,
) {
    loop {
        {
            let mut state = shared.state();
            while !state.pending && !state.stop {
                state = shared
                    .wake
                    .wait(state)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            if state.stop {
                // Leave the folds file without a WAL to replay.
                drop(state);
                let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
                return;
            }
            state.pending = false;
        }
        let seg = hot
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .freeze();
        let result = match &seg {
            Some(seg) => fold_frozen(&mut conn, writer, hot, seg),
            None => Ok(()),
        };
        if let Err(e) = &result {
            // The tier is reloaded from the log by the next write, and
            // the next fold retries.
            hot.write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .fold_failed();
            shared.state().error = Some(e.to_string());
        } else if seg.is_some() {
            shared.state().error = None;
        }
        {
            let mut state = shared.state();
            state.attempts += 1;
            shared.done.notify_all();
        }
        if seg.is_some() {
            // Outside the commit, so that ingest does not wait for it.
            checkpoint_folds(&conn, shared);
        }
        if result.is_err() {
            // Not in a loop: a fold fails again at once if, say, the disk
            // is full.
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}

/// A multi-row statement, `{head}{row},{row},...{tail}`, in a few sizes
/// (one statement per row costs more than the row itself). Parameters are
/// numbered: `?1..=?shared` are bound once per statement (the batch's
/// `received_at` and id, say), then each row's `per_row`. The SQL is built
/// once per process; each size is prepared once per connection.
struct Bulk {
    per_row: usize,
    shared: usize,
    /// (rows, SQL), largest first; the last has one row.
    sqls: Vec<(usize, String)>,
}

/// Statement sizes, in rows: a batch of 1,000 events is 3 x 256 + 3 x 64 +
/// 2 x 16 + 2 x 4.
const BULK_SIZES: [usize; 5] = [256, 64, 16, 4, 1];

impl Bulk {
    /// `row` lists the row's columns, `?` standing for each of its
    /// parameters and `?S` for the shared ones (`?S1` .. `?S9`).
    fn new(head: &str, row: &str, tail: &str, shared: usize) -> Self {
        let per_row = row.matches('?').count() - row.matches("?S").count();
        let sqls = BULK_SIZES
            .iter()
            .map(|&n| {
                let mut sql = String::with_capacity(head.len() + tail.len() + n * row.len() * 2);
                sql.push_str(head);
                for k in 0..n {
                    if k > 0 {
                        sql.push(',');
                    }
                    let mut next = shared + k * per_row;
                    let mut rest = row;
                    while let Some(at) = rest.find('?') {
                        sql.push_str(&rest[..at]);
                        rest = &rest[at + 1..];
                        if let Some(after) = rest.strip_prefix('S') {
                            // `?S<digit>`: a shared parameter.
                            sql.push('?');
                            sql.push_str(&after[..1]);
                            rest = &after[1..];
                        } else {
                            next += 1;
                            sql.push('?');
                            sql.push_str(&next.to_string());
                        }
                    }
                    sql.push_str(rest);
                }
                sql.push_str(tail);
                (n, sql)
            })
            .collect();
        Bulk {
            per_row,
            shared,
            sqls,
        }
    }

    /// Inserts `items`, binding the shared parameters with `shared` and each
    /// item's with `bind(statement, number of its first parameter, item)`.
    fn run<T>(
        &self,
        tx: &Connection,
        items: &[T],
        shared: impl Fn(&mut rusqlite::Statement<'_>) -> rusqlite::Result<()>,
        bind: impl Fn(&mut rusqlite::Statement<'_>, usize, &T) -> rusqlite::Result<()>,
    ) -> rusqlite::Result<()> {
        let mut rest = items;
        while !rest.is_empty() {
            let Some((n, sql)) = self.sqls.iter().find(|(n, _)| rest.len() >= *n) else {
                break;
            };
            let (chunk, tail_items) = rest.split_at(*n);
            rest = tail_items;
            let mut stmt = tx.prepare_cached(sql)?;
            if self.shared > 0 {
                shared(&mut stmt)?;
            }
            for (k, item) in chunk.iter().enumerate() {
                bind(&mut stmt, self.shared + k * self.per_row + 1, item)?;
            }
            stmt.raw_execute()?;
        }
        Ok(())
    }
}

/// The canonical JSON of an event's attributes (as
/// `omnigate_core::canonical::map_to_canonical_json`), appended to `out`
/// without a `String` per key and value: attributes are almost always
/// strings, written with `serde_json`'s escaping; anything else goes
/// through the canonical writer itself.
fn write_attributes(map: &Map<String, Value>, out: &mut Vec<u8>) {
    fn entry(out: &mut Vec<u8>, first: bool, key: &str, value: &Value) {
        if !first {
            out.push(b',');
        }
        // Writing a `str` into a `Vec` cannot fail.
        let _ = serde_json::to_writer(&mut *out, key);
        out.push(b':');
        match value {
            Value::String(s) => {
                let _ = serde_json::to_writer(&mut *out, s);
            }
            other => out.extend_from_slice(to_canonical_json(other).as_bytes()),
        }
    }
    out.push(b'{');
    // serde_json's map is sorted by key unless its `preserve_order`
    // feature is on somewhere in the build.
    if map.keys().is_sorted_by(|a, b| a.as_bytes() <= b.as_bytes()) {
        for (i, (k, v)) in map.iter().enumerate() {
            entry(out, i == 0, k, v);
        }
    } else {
        let mut entries: Vec<_> = map.iter().collect();
        entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        for (i, (k, v)) in entries.into_iter().enumerate() {
            entry(out, i == 0, k, v);
        }
    }
    out.push(b'}');
}

/// The statement appending events to the log: the batch (its row in
/// `event_batch`) once per statement. No `seq`: SQLite gives each row the
/// largest one plus one, which lets it append without looking for a
/// conflicting key first.
fn event_insert() -> &'static Bulk {
    static SQL: OnceLock<Bulk> = OnceLock::new();
    SQL.get_or_init(|| {
        Bulk::new(
            "INSERT INTO event (id, hcp_num, type, channel, occurred_at, attributes, batch) VALUES ",
            "(?,?,?,?,?,?,?S1)",
            "",
            1,
        )
    })
}

/// The codes under which the log stores event types and channels (tables
/// `event_type_code` and `channel_code`).
#[derive(Debug, Clone)]
pub(crate) struct Codes {
    types: Vec<(EventType, i64)>,
    channels: Vec<(Channel, i64)>,
}

impl Codes {
    fn of_type(&self, t: EventType) -> rusqlite::Result<i64> {
        self.types
            .iter()
            .find(|(x, _)| *x == t)
            .map(|&(_, c)| c)
            .ok_or(rusqlite::Error::InvalidQuery)
    }

    fn of_channel(&self, ch: Channel) -> rusqlite::Result<i64> {
        self.channels
            .iter()
            .find(|(x, _)| *x == ch)
            .map(|&(_, c)| c)
            .ok_or(rusqlite::Error::InvalidQuery)
    }
}

/// Gives every event type and channel this build knows a code (a name
/// keeps the code it has), and reads them back.
pub(crate) fn load_codes(conn: &mut Connection) -> rusqlite::Result<Codes> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut codes = Codes {
        types: Vec::new(),
        channels: Vec::new(),
    };
    for &t in EventType::ALL {
        tx.execute(
            "INSERT OR IGNORE INTO event_type_code (name) VALUES (?1)",
            [t.as_str()],
        )?;
        let code = tx.query_row(
            "SELECT code FROM event_type_code WHERE name = ?1",
            [t.as_str()],
            |r| r.get(0),
        )?;
        codes.types.push((t, code));
    }
    for ch in Channel::ALL {
        tx.execute(
            "INSERT OR IGNORE INTO channel_code (name) VALUES (?1)",
            [ch.as_str()],
        )?;
        let code = tx.query_row(
            "SELECT code FROM channel_code WHERE name = ?1",
            [ch.as_str()],
            |r| r.get(0),
        )?;
        codes.channels.push((ch, code));
    }
    tx.commit()?;
    Ok(codes)
}

/// Appends `events[i]` for each `i` of `stored`, in order, with `seq` from
/// `after + 1`, and their batch; `attributes[i]` is event `i`'s canonical
/// attributes.
#[expect(clippy::too_many_arguments, reason = "one call site, all columns")]
fn insert_events(
    tx: &Connection,
    codes: &Codes,
    after: i64,
    stored: &[usize],
    events: &[NewEvent],
    hcp_nums: &[i64],
    attributes: &[&str],
    (received_at, batch_id): (i64, &str),
) -> rusqlite::Result<()> {
    if stored.is_empty() {
        return Ok(());
    }
    tx.prepare_cached("INSERT INTO event_batch (batch_id, received_at) VALUES (?1, ?2)")?
        .execute(params![batch_id, received_at])?;
    let batch = tx.last_insert_rowid();
    event_insert().run(
        tx,
        stored,
        |s| s.raw_bind_parameter(1, batch),
        |s, p, &i| {
            let e = &events[i];
            s.raw_bind_parameter(p, &e.id)?;
            s.raw_bind_parameter(p + 1, hcp_nums[i])?;
            s.raw_bind_parameter(p + 2, codes.of_type(e.event_type)?)?;
            s.raw_bind_parameter(p + 3, codes.of_channel(e.channel)?)?;
            s.raw_bind_parameter(p + 4, e.occurred_at)?;
            s.raw_bind_parameter(p + 5, attributes[i])
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
    // HCP keys are dense: the largest with features is about how many
    // HCPs have rows.
    let hcps: i64 = tx.query_row(
        "SELECT coalesce(max(hcp_num), 0) FROM feature_channel",
        [],
        |r| r.get(0),
    )?;
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
    static CHANNELS: OnceLock<Bulk> = OnceLock::new();
    let channels = CHANNELS.get_or_init(|| {
        Bulk::new(
            "INSERT INTO feature_channel
                 (hcp_num, channel, last_touch_at, sends, opens, clicks, attended, ring_day, ring)
             VALUES ",
            "(?,?,?,?,?,?,?,?,?)",
            " ON CONFLICT (hcp_num, channel) DO UPDATE SET
                 last_touch_at = excluded.last_touch_at, sends = excluded.sends,
                 opens = excluded.opens, clicks = excluded.clicks, attended = excluded.attended,
                 ring_day = excluded.ring_day, ring = excluded.ring",
            0,
        )
    });
    channels.run(
        tx,
        &items,
        |_| Ok(()),
        |s, p, &(&(n, ch), row)| {
            let (ring_day, blob) = row.ring.to_parts();
            s.raw_bind_parameter(p, n)?;
            s.raw_bind_parameter(p + 1, ch)?;
            s.raw_bind_parameter(p + 2, row.last_touch_at)?;
            s.raw_bind_parameter(p + 3, row.sends)?;
            s.raw_bind_parameter(p + 4, row.opens)?;
            s.raw_bind_parameter(p + 5, row.clicks)?;
            s.raw_bind_parameter(p + 6, row.attended)?;
            s.raw_bind_parameter(p + 7, ring_day)?;
            s.raw_bind_parameter(p + 8, blob)
        },
    )?;
    static SEEN: OnceLock<Bulk> = OnceLock::new();
    let seen = SEEN.get_or_init(|| {
        Bulk::new(
            "INSERT INTO content_seen (hcp_num, content_version, first_seen_at) VALUES ",
            "(?,?,?)",
            " ON CONFLICT (hcp_num, content_version) DO UPDATE
                 SET first_seen_at = min(first_seen_at, excluded.first_seen_at)",
            0,
        )
    });
    seen.run(
        tx,
        &plan.seen,
        |_| Ok(()),
        |s, p, &((n, version), at)| {
            s.raw_bind_parameter(p, n)?;
            s.raw_bind_parameter(p + 1, version)?;
            s.raw_bind_parameter(p + 2, at)
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
        // Validated, and their canonical attributes in one buffer.
        let mut buf = Vec::with_capacity(events.len() * 96);
        let mut ends = Vec::with_capacity(events.len());
        for e in events {
            e.validate().map_err(|reason| StoreError::InvalidEvent {
                event: e.id.clone(),
                reason,
            })?;
            write_attributes(&e.attributes, &mut buf);
            ends.push(buf.len());
        }
        let buf = String::from_utf8(buf).map_err(|_| StoreError::Backend {
            op: OP,
            message: "attributes are not UTF-8".into(),
        })?;
        let attributes: Vec<&str> = ends
            .iter()
            .scan(0, |start, &end| {
                let s = &buf[*start..end];
                *start = end;
                Some(s)
            })
            .collect();
        // Folds keep up unless they fail: then this batch (which changed
        // nothing yet) is refused.
        self.folder()
            .wait_below(self.hot_lock(), FOLD_BACKLOG * self.fold_events)?;
        let mut conn = self.writer();
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
            let mut hashes = Vec::with_capacity(events.len());
            let mut maybe_folded = Vec::new();
            {
                let tier = self.hot();
                // First index of each id hash in the batch; ids sharing a
                // hash with another (almost never) are checked by value.
                let mut in_batch: FastMap<u64, usize> =
                    FastMap::with_capacity_and_hasher(events.len(), Default::default());
                let mut spill: FastSet<&str> = FastSet::default();
                for (i, e) in events.iter().enumerate() {
                    let h = tier.hash_id(&e.id);
                    hashes.push(h);
                    let first = match in_batch.entry(h) {
                        std::collections::hash_map::Entry::Vacant(v) => {
                            v.insert(i);
                            true
                        }
                        std::collections::hash_map::Entry::Occupied(o) => {
                            events[*o.get()].id != e.id && spill.insert(e.id.as_str())
                        }
                    };
                    let fresh = first && !tier.contains(&e.id, h);
                    if fresh && tier.may_be_folded(h) {
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
                &self.codes,
                m.last,
                &stored,
                events,
                &hcp_nums,
                &attributes,
                (audit.now(), batch_id),
            )
            .during(OP)?;
            let mut fresh = Vec::with_capacity(stored.len());
            let mut at = String::new();
            let mut rule_hits = Vec::new();
            let mut digest = Sha256::new();
            let mut report = IngestReport::default();
            for (seq, &i) in (m.last + 1..).zip(&stored) {
                let (e, attrs, n) = (&events[i], attributes[i], hcp_nums[i]);
                report.accepted += 1;
                fresh.push(NewHot {
                    id: &e.id,
                    hash: hashes[i],
                    hcp: n,
                    seq,
                    occurred_at: e.occurred_at,
                    event_type: e.event_type,
                    channel: e.channel,
                    content: e.content_seen(),
                });
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
                at.clear();
                let _ = write!(at, "{}", e.occurred_at);
                digest.update(at.as_bytes());
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
            self.hot_mut().extend(&fresh);
        }
        drop(conn);
        if self.hot().unfrozen() >= self.fold_events {
            // The fold thread folds them while the next batches come.
            self.folder().poke();
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
                     FROM event_named WHERE seq = ?1",
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
            features_of_group(c, &members, view, now)
        })
    }
}

fn to_u32(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

/// The features of an identity group (`members`) in the snapshot `view`
/// was taken for: the hot tier's events plus those the tier missed, read
/// from the log.
pub(crate) fn features_of_group(
    c: &Connection,
    members: &[i64],
    view: HotView,
    now: UnixMillis,
) -> StoreResult<EngagementStats> {
    const OP: &str = "read features";
    let mut hot = view.events;
    for &(from, to) in &view.missing {
        for r in hot::scan_log(c, from, to).map_err(|e| e.during(OP))? {
            if members.contains(&r.hcp_num) {
                hot.push((r.hcp_num, r.event));
            }
        }
    }
    read_features(c, members, &hot, now)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use omnigate_core::canonical::map_to_canonical_json;

    #[test]
    fn attributes_are_written_in_canonical_json() {
        let cases = [
            json!({}),
            json!({"url": "https://x.example/a?b=c&d=\"e\"", "dispatch_id": "d-1"}),
            json!({"b": "\u{1F600} \n\t\\ \u{0001}", "a": "é", "B": "upper first"}),
            json!({"n": 3, "f": 1.5, "t": true, "z": null, "arr": [2, "x", {"k": "v", "a": 1}]}),
            json!({"nested": {"z": 1, "a": {"y": [], "b": {}}}}),
        ];
        for v in cases {
            let map = v.as_object().unwrap();
            let mut out = Vec::new();
            write_attributes(map, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), map_to_canonical_json(map));
        }
    }

    #[test]
    fn bulk_statements_number_shared_and_row_parameters() {
        let b = Bulk::new(
            "INSERT INTO t (a, b, c) VALUES ",
            "(?,?,?S1)",
            " ON CONFLICT DO NOTHING",
            1,
        );
        assert_eq!(b.per_row, 2);
        let (n, sql) = b.sqls.last().unwrap();
        assert_eq!(*n, 1);
        assert_eq!(
            sql,
            "INSERT INTO t (a, b, c) VALUES (?2,?3,?1) ON CONFLICT DO NOTHING"
        );
        let (n, sql) = &b.sqls[b.sqls.len() - 2];
        assert_eq!(*n, 4);
        assert!(
            sql.ends_with("(?2,?3,?1),(?4,?5,?1),(?6,?7,?1),(?8,?9,?1) ON CONFLICT DO NOTHING")
        );
    }
}
