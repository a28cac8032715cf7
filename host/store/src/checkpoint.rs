//! WAL checkpoints on a thread of their own, so that the writer does not
//! copy pages back into the database file inside its commits.
//!
//! The thread holds its own connection and runs `PRAGMA
//! wal_checkpoint(PASSIVE)` shortly after writes: a passive checkpoint never
//! waits for and never blocks the writer or the readers. Its connection uses
//! `synchronous=FULL` like the writer, so the database file is synced before
//! the WAL frames it copied count as checkpointed. The writer keeps its own
//! automatic checkpoint as a backstop: once this thread has copied most
//! frames, the writer's finishes the rest cheaply and the WAL restarts from
//! its beginning.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

/// Writes arriving within this time share one checkpoint (and one fsync of
/// the database file).
const COALESCE: Duration = Duration::from_millis(50);

#[derive(Debug, Default)]
struct Flags {
    pending: bool,
    stop: bool,
}

#[derive(Debug, Default)]
struct Shared {
    flags: Mutex<Flags>,
    wake: Condvar,
}

impl Shared {
    fn flags(&self) -> MutexGuard<'_, Flags> {
        // The flags are two booleans: always consistent.
        self.flags
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The checkpoint thread; stopped (and joined) when dropped.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread on `conn`, a read-write connection to the database
    /// configured like the writer.
    pub(crate) fn start(conn: Connection) -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("omnigate-checkpoint".into())
                .spawn(move || run(&conn, &shared))?
        };
        Ok(Checkpointer {
            shared,
            thread: Some(thread),
        })
    }

    /// Says that a write committed.
    pub(crate) fn poke(&self) {
        let mut flags = self.shared.flags();
        if !flags.pending {
            flags.pending = true;
            self.shared.wake.notify_one();
        }
    }
}

fn run(conn: &Connection, shared: &Shared) {
    loop {
        let mut flags = shared.flags();
        while !flags.pending && !flags.stop {
            flags = shared
                .wake
                .wait(flags)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        if flags.stop {
            return;
        }
        drop(flags);
        std::thread::sleep(COALESCE);
        shared.flags().pending = false;
        // A failure (the file is busy being checkpointed by the writer, or
        // an I/O error) leaves the frames in the WAL, where they are as
        // durable; the writer's own checkpoint or the next pass copies them.
        let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.shared.flags().stop = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            // The thread only runs SQLite calls; if it panicked there is
            // nothing left to stop.
            let _ = t.join();
        }
    }
}
