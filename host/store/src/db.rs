//! Opening the database file, connection settings, and the transaction
//! discipline every write follows.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use omnigate_core::ApprovalPolicy;
use omnigate_core::journey::{JourneyConfig, JourneyConfigError};
use omnigate_core::store::{StoreError, StoreResult};
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::audit::AuditWriter;
use crate::checkpoint::Checkpointer;
use crate::hot::Hot;
use crate::{events, migrate};

/// The database file's name inside the data directory.
pub const DB_FILE: &str = "omnigate.db";
/// The file of the tables folds derive from the event log, beside
/// [`DB_FILE`]: a cache of the log, rebuilt from it if missing.
pub const FOLDS_FILE: &str = "omnigate-folds.db";

/// How to open a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// The data directory; created if missing. The database is
    /// `<data_dir>/omnigate.db` (plus its `-wal` and `-shm` files).
    pub data_dir: PathBuf,
    /// Read connections kept open (readers never wait for the writer in WAL
    /// mode). At least 1.
    pub readers: usize,
    /// Which roles must sign off content, per market.
    pub approval: ApprovalPolicy,
    /// The journey ladder and the rules that move HCPs on it.
    pub journey: JourneyConfig,
    /// Page cache per connection, in MiB.
    pub cache_mib: u32,
    /// How much of the file read connections map into memory, in MiB (0:
    /// none). Reads of one HCP touch a few random pages of a file far
    /// larger than the page cache; mapped, a miss costs a memory access
    /// instead of a `pread` and a copy. (Mapping the writer too measured no
    /// gain for ingest.)
    pub mmap_mib: u32,
    /// Events kept in the hot tier before the fold thread folds them into
    /// the per-event indexes and the feature tables (see `docs/store.md`,
    /// "Events and derived features"); ingest goes on meanwhile, so the
    /// tier holds up to about twice this. Larger folds write each page of
    /// those tables for more events at once (less work per event) but hold
    /// more in memory (about 100 bytes per event). At least 1.
    pub fold_events: usize,
}

impl StoreOptions {
    /// Defaults: 4 readers, the default approval policy and journey, 64 MiB
    /// cache, up to 4 GiB mapped by readers, folds of 250,000 events.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        StoreOptions {
            data_dir: data_dir.into(),
            readers: 4,
            approval: ApprovalPolicy::default(),
            journey: JourneyConfig::default(),
            cache_mib: 64,
            mmap_mib: 4096,
            fold_events: 250_000,
        }
    }
}

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The journey configuration is unusable.
    #[error("invalid journey configuration: {0}")]
    Journey(#[from] JourneyConfigError),
    /// The data directory could not be created.
    #[error("cannot create data directory `{path}`")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// SQLite refused the file or a setting.
    #[error("cannot open database `{path}`")]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },
    /// The file was written by a newer omnigate.
    #[error(
        "database `{path}` has schema version {found}, newer than this build knows ({known}); upgrade omnigate"
    )]
    TooNew {
        /// The file.
        path: PathBuf,
        /// Its schema version.
        found: i64,
        /// The newest this build knows.
        known: i64,
    },
    /// The checkpoint or the fold thread could not be started.
    #[error("cannot start the checkpoint or the fold thread")]
    Thread(#[source] std::io::Error),
    /// The events committed since the last fold could not be folded.
    #[error("cannot fold the event log of database `{path}`")]
    Events {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: StoreError,
    },
    /// A migration that was applied differs from the one in this build.
    #[error(
        "migration `{name}` in database `{path}` differs from the one in this build (applied sha256 `{applied}`, built-in `{built_in}`)"
    )]
    MigrationChanged {
        /// The file.
        path: PathBuf,
        /// The migration.
        name: String,
        /// Hash of what was applied.
        applied: String,
        /// Hash of what this build has.
        built_in: String,
    },
    /// A migration ran but left the schema other than it should be; it
    /// was rolled back.
    #[error("migration `{name}` of database `{path}` failed: {message}")]
    Migration {
        /// The file.
        path: PathBuf,
        /// The migration.
        name: String,
        /// What is wrong.
        message: String,
    },
}

/// The SQLite implementation of [`omnigate_core::Store`].
///
/// One write connection behind a mutex (SQLite has one writer at a time
/// anyway) and a few read connections that never block on it.
pub struct SqliteStore {
    /// Stopped first when the store drops (it finishes the fold under way).
    folder: events::Folder,
    path: PathBuf,
    folds_path: PathBuf,
    /// Also taken by the fold thread to commit a fold and update the hot
    /// tier together, between two writes.
    writer: Arc<Mutex<Connection>>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    /// Events committed since the last fold (see `hot.rs`).
    hot: Arc<RwLock<Hot>>,
    /// HCP ids and their internal keys, as ingest found them (see
    /// `events::HcpNums`).
    pub(crate) hcp_nums: Mutex<events::HcpNums>,
    pub(crate) fold_events: usize,
    /// How the log stores event types and channels.
    pub(crate) codes: events::Codes,
    /// Which roles must sign off, per market; replaced when the policy
    /// files are reloaded ([`SqliteStore::set_approval_policy`]).
    pub(crate) approval: RwLock<Arc<ApprovalPolicy>>,
    pub(crate) journey: JourneyConfig,
    checkpointer: Checkpointer,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic while holding the lock rolled its transaction back when the
    // `Transaction` dropped, so the connection is still usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Settings every connection shares.
fn common(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(10))?;
    // The query planner stability guarantee: a plan does not depend on the
    // values bound. Without it (SQLite is built with STAT4), a statement
    // whose plan could depend on a bound value is marked expired when
    // rusqlite clears its bindings on return to the statement cache, and
    // is parsed and planned again on every use: that was most of the cost
    // of a consent or identity read.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

/// A `file:` URI for `path` with `mode` (`ro`, `rw`), for `ATTACH`.
fn file_uri(path: &Path, mode: &str) -> String {
    let mut uri = String::from("file:");
    for &b in path.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"/._-~".contains(&b) {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri.push_str("?mode=");
    uri.push_str(mode);
    uri
}

/// Attaches the file at `path` to `conn` as `schema`, read-only or not.
/// Statements name the tables of either file without a schema: no name is
/// in both.
pub(crate) fn attach(
    conn: &Connection,
    path: &Path,
    schema: &str,
    read_only: bool,
) -> rusqlite::Result<()> {
    conn.execute(
        &format!("ATTACH DATABASE ?1 AS {schema}"),
        [file_uri(path, if read_only { "ro" } else { "rw" })],
    )
    .map(|_| ())
}

fn configure(conn: &Connection, cache_mib: u32) -> rusqlite::Result<()> {
    common(conn)?;
    // Every statement is prepared once per connection; the default cache of
    // 16 is smaller than the set of statements the writer uses.
    conn.set_prepared_statement_cache_capacity(64);
    // WAL: readers and the writer do not block each other. synchronous=FULL
    // in WAL fsyncs the log at every commit, so a committed transaction
    // survives a power cut, not only a process crash (NORMAL would risk the
    // last commits on power loss: invariant 4 says an accepted write is
    // never lost).
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::InvalidQuery);
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "cache_size", -(i64::from(cache_mib) * 1024))?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // The checkpoint thread (checkpoint.rs) copies the WAL back shortly
    // after each write; this automatic checkpoint, run by the writer inside
    // its commit, is the backstop if it falls behind (a fold writes tens of
    // thousands of pages at once). Bounded: ~200 MiB of WAL.
    conn.pragma_update(None, "wal_autocheckpoint", 50_000)?;
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `options.data_dir` and applies
    /// pending migrations.
    ///
    /// # Errors
    ///
    /// [`OpenError`] if the directory or file cannot be created or opened,
    /// or the schema is newer than this build or was tampered with.
    pub fn open(options: StoreOptions) -> Result<Self, OpenError> {
        options.journey.validate()?;
        std::fs::create_dir_all(&options.data_dir).map_err(|source| OpenError::DataDir {
            path: options.data_dir.clone(),
            source,
        })?;
        let path = options.data_dir.join(DB_FILE);
        let sqlite = |source| OpenError::Sqlite {
            path: path.clone(),
            source,
        };
        let mut writer = Connection::open(&path).map_err(sqlite)?;
        configure(&writer, options.cache_mib).map_err(sqlite)?;
        migrate::migrate(&mut writer, &path)?;
        let codes = events::load_codes(&mut writer).map_err(sqlite)?;
        // The folded tables, in their own file (created, or reset if it
        // does not belong to this log).
        let folds_path = options.data_dir.join(FOLDS_FILE);
        let folds_err = |source| OpenError::Sqlite {
            path: folds_path.clone(),
            source,
        };
        let mut folds =
            events::open_folds(&folds_path, &path, options.cache_mib).map_err(|e| match e {
                events::FoldsOpenError::Sqlite(source) => folds_err(source),
                events::FoldsOpenError::TooNew(found, known) => OpenError::TooNew {
                    path: folds_path.clone(),
                    found,
                    known,
                },
            })?;
        // Whatever a previous process left in its hot tier is in the log:
        // fold it, so the tables are complete whenever no store is open.
        let hot = Arc::new(RwLock::new(Hot::default()));
        while events::fold_slice(&mut folds, &hot, options.fold_events.max(1)).map_err(
            |source| OpenError::Events {
                path: path.clone(),
                source,
            },
        )? {}
        events::detach_log(&folds).map_err(folds_err)?;
        attach(&writer, &folds_path, "folds", true).map_err(sqlite)?;
        let checkpoints = Connection::open(&path).map_err(sqlite)?;
        configure(&checkpoints, 2).map_err(sqlite)?;
        let checkpointer = Checkpointer::start(checkpoints).map_err(OpenError::Thread)?;
        let mut readers = Vec::new();
        for _ in 0..options.readers.max(1) {
            let conn = Connection::open_with_flags(
                &path,
                OpenFlags::SQLITE_OPEN_READ_ONLY
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX
                    | OpenFlags::SQLITE_OPEN_URI,
            )
            .map_err(sqlite)?;
            common(&conn).map_err(sqlite)?;
            conn.set_prepared_statement_cache_capacity(64);
            conn.pragma_update(None, "cache_size", -(i64::from(options.cache_mib) * 1024))
                .map_err(sqlite)?;
            conn.pragma_update(None, "mmap_size", i64::from(options.mmap_mib) * 1024 * 1024)
                .map_err(sqlite)?;
            attach(&conn, &folds_path, "folds", true).map_err(sqlite)?;
            conn.pragma_update(
                Some("folds"),
                "cache_size",
                -(i64::from(options.cache_mib) * 1024),
            )
            .map_err(sqlite)?;
            conn.pragma_update(
                Some("folds"),
                "mmap_size",
                i64::from(options.mmap_mib) * 1024 * 1024,
            )
            .map_err(sqlite)?;
            readers.push(Mutex::new(conn));
        }
        let writer = Arc::new(Mutex::new(writer));
        let fold_events = options.fold_events.max(1);
        let folder = events::Folder::start(folds, Arc::clone(&writer), Arc::clone(&hot))
            .map_err(OpenError::Thread)?;
        Ok(SqliteStore {
            folder,
            path,
            folds_path,
            writer,
            readers,
            next_reader: AtomicUsize::new(0),
            hot,
            hcp_nums: Mutex::default(),
            fold_events,
            codes,
            approval: RwLock::new(Arc::new(options.approval)),
            journey: options.journey,
            checkpointer,
        })
    }

    /// The file of the folded tables (`FOLDS_FILE` beside the database).
    pub fn folds_path(&self) -> &Path {
        &self.folds_path
    }

    /// The fold thread.
    pub(crate) fn folder(&self) -> &events::Folder {
        &self.folder
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in one write transaction (`BEGIN IMMEDIATE`) with an audit
    /// writer positioned at the chain's head; commits if `f` succeeds.
    ///
    /// INVARIANT: a change and its audit entries commit together or not at
    /// all; an `Err` from `f` rolls everything back.
    pub(crate) fn write<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Transaction<'_>, &mut AuditWriter) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let out = transact(&mut self.writer(), op, f)?;
        self.checkpointer.poke();
        Ok(out)
    }

    /// Says that a write committed, for the checkpoint thread.
    pub(crate) fn committed(&self) {
        self.checkpointer.poke();
    }

    /// The write connection, for a caller that does more than one
    /// transaction (or more after its transaction) without another writer
    /// in between.
    /// The approval policy in force.
    pub(crate) fn approval_policy_now(&self) -> Arc<ApprovalPolicy> {
        self.approval
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the approval policy (which roles must sign off, per
    /// market): `serve` calls it when the policy files load or reload.
    /// Sign-offs already recorded stand; the next sign-off is judged by the
    /// new policy.
    pub fn set_approval_policy(&self, policy: ApprovalPolicy) {
        *self
            .approval
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(policy);
    }

    pub(crate) fn writer(&self) -> MutexGuard<'_, Connection> {
        lock(&self.writer)
    }

    /// The hot tier, for reading.
    pub(crate) fn hot(&self) -> RwLockReadGuard<'_, Hot> {
        // A panic while updating it left it marked invalid (see `Hot`), so
        // a poisoned lock is still safe to use.
        self.hot
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The hot tier, for updating (by the holder of the write connection).
    pub(crate) fn hot_mut(&self) -> RwLockWriteGuard<'_, Hot> {
        self.hot
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The hot tier's lock itself.
    pub(crate) fn hot_lock(&self) -> &RwLock<Hot> {
        &self.hot
    }

    /// Runs `f` on a read connection, in one read transaction so that it
    /// sees a single snapshot.
    pub(crate) fn read<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Connection) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let n = self.readers.len();
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        // Take a free reader if there is one, else wait for ours.
        let guard = (0..n)
            .find_map(|i| self.readers[(start + i) % n].try_lock().ok())
            .unwrap_or_else(|| lock(&self.readers[start % n]));
        // Prepared once per connection: reads are hot (features, consent).
        let run = |sql: &str| guard.prepare_cached(sql).and_then(|mut s| s.execute([]));
        run("BEGIN DEFERRED").during(op)?;
        let out = f(&guard);
        // Ending a read transaction cannot lose anything; report the first
        // error only.
        let end = run("COMMIT").during(op);
        let out = out?;
        end?;
        Ok(out)
    }
}

/// Runs `f` in one write transaction on `conn`; see [`SqliteStore::write`].
pub(crate) fn transact<T>(
    conn: &mut Connection,
    op: &'static str,
    f: impl FnOnce(&Transaction<'_>, &mut AuditWriter) -> StoreResult<T>,
) -> StoreResult<T> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .during(op)?;
    let mut audit = AuditWriter::at_head(&tx).during(op)?;
    let out = f(&tx, &mut audit)?;
    tx.commit().during(op)?;
    Ok(out)
}

/// Maps a backend error to [`StoreError::Backend`] naming the operation.
pub(crate) trait During<T> {
    fn during(self, op: &'static str) -> StoreResult<T>;
}

impl<T> During<T> for rusqlite::Result<T> {
    fn during(self, op: &'static str) -> StoreResult<T> {
        self.map_err(|e| StoreError::Backend {
            op,
            message: e.to_string(),
        })
    }
}

impl<T> During<T> for serde_json::Result<T> {
    fn during(self, op: &'static str) -> StoreResult<T> {
        self.map_err(|e| StoreError::Backend {
            op,
            message: format!("stored JSON is unreadable: {e}"),
        })
    }
}

/// A stored name (channel, status, ...) that does not parse: the file was
/// edited or written by a newer build.
pub(crate) fn corrupt(op: &'static str, what: &str, value: &str) -> StoreError {
    StoreError::Backend {
        op,
        message: format!("stored {what} `{value}` is not known to this build"),
    }
}
