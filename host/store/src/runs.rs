//! The folded per-event indexes as sorted runs: each fold writes its event
//! ids (`event_id_run`) and its per-HCP timelines (`event_hcp_run`) as one
//! new run, packed in chunks, at the end of those tables' key space, so a
//! fold appends a few pages per thousand events instead of rewriting a
//! random page per event of one big index. Two runs of similar size are
//! merged into one (a sequential copy), so a store of `N` events has about
//! `log2(N / fold size)` runs, and each event is copied that many times.
//!
//! Reads visit every run: an id is looked up only when the filter of
//! folded ids (`filter.rs`) says it may be there, and a timeline is a
//! handful of index lookups.

use rusqlite::{Connection, OptionalExtension, params};

/// Bytes at which a chunk of `event_id_run` is closed. A row of a `WITHOUT
/// ROWID` table longer than about 1,000 bytes (4 KiB pages) spills into an
/// overflow page of its own; chunks of 16 to 40 ids stay within.
const CHUNK_BYTES: usize = 640;
/// Ids per chunk, about.
const IDS_PER_CHUNK: usize = 32;

/// One run: its number and how many events it holds. Runs are numbered in
/// the order of the events they hold (a merged run takes a new number, and
/// only the two newest runs are ever merged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Run {
    pub(crate) run: i64,
    pub(crate) events: i64,
}

/// The runs, oldest first.
pub(crate) fn runs(c: &Connection) -> rusqlite::Result<Vec<Run>> {
    let mut stmt = c.prepare_cached("SELECT run, events FROM event_run ORDER BY run")?;
    let rows = stmt.query_map([], |r| {
        Ok(Run {
            run: r.get(0)?,
            events: r.get(1)?,
        })
    })?;
    rows.collect()
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint(buf: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        v |= u64::from(b & 0x7F) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

/// A chunk that does not decode: the file was edited.
fn bad_chunk() -> rusqlite::Error {
    rusqlite::Error::InvalidColumnType(0, "run chunk".into(), rusqlite::types::Type::Blob)
}

/// The ids of a chunk, without copying them.
pub(crate) fn chunk_ids(mut buf: &[u8]) -> rusqlite::Result<Vec<&str>> {
    let mut out = Vec::with_capacity(IDS_PER_CHUNK);
    while !buf.is_empty() {
        let len = varint(&mut buf).ok_or_else(bad_chunk)?;
        let len = usize::try_from(len).map_err(|_| bad_chunk())?;
        if len > buf.len() {
            return Err(bad_chunk());
        }
        let (id, rest) = buf.split_at(len);
        buf = rest;
        out.push(std::str::from_utf8(id).map_err(|_| bad_chunk())?);
        varint(&mut buf).ok_or_else(bad_chunk)?;
    }
    Ok(out)
}

/// Ascending `seq`s, delta-encoded.
fn encode_seqs(seqs: &[i64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(seqs.len() * 3);
    let mut prev = 0i64;
    for &s in seqs {
        put_varint(&mut out, (s - prev).unsigned_abs());
        prev = s;
    }
    out
}

/// The `seq`s of a timeline row.
pub(crate) fn decode_seqs(mut buf: &[u8]) -> rusqlite::Result<Vec<i64>> {
    let mut out = Vec::new();
    let mut prev = 0i64;
    while !buf.is_empty() {
        let d = varint(&mut buf).ok_or_else(bad_chunk)?;
        prev += i64::try_from(d).map_err(|_| bad_chunk())?;
        out.push(prev);
    }
    Ok(out)
}

/// Writes chunks of `(id, seq)` pairs, sorted by id, as they come.
struct IdWriter<'c> {
    stmt: rusqlite::CachedStatement<'c>,
    run: i64,
    chunk: Vec<u8>,
    /// The greatest id so far, the chunk's key.
    last: Vec<u8>,
    n: usize,
}

impl<'c> IdWriter<'c> {
    fn new(tx: &'c Connection, run: i64) -> rusqlite::Result<Self> {
        Ok(IdWriter {
            stmt: tx.prepare_cached(
                "INSERT INTO event_id_run (run, last_id, chunk) VALUES (?1, ?2, ?3)",
            )?,
            run,
            chunk: Vec::with_capacity(CHUNK_BYTES + 160),
            last: Vec::new(),
            n: 0,
        })
    }

    /// Adds an id (the bytes of a `str`, from a chunk or a batch).
    fn push(&mut self, id: &[u8], seq: i64) -> rusqlite::Result<()> {
        put_varint(&mut self.chunk, id.len() as u64);
        self.chunk.extend_from_slice(id);
        put_varint(&mut self.chunk, seq.unsigned_abs());
        self.last.clear();
        self.last.extend_from_slice(id);
        self.n += 1;
        if self.chunk.len() >= CHUNK_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> rusqlite::Result<()> {
        if self.n > 0 {
            // The bytes came from `str`s: valid UTF-8, stored as TEXT so
            // that chunks compare with ids.
            let last = std::str::from_utf8(&self.last).map_err(|_| bad_chunk())?;
            self.stmt.execute(params![self.run, last, self.chunk])?;
            self.chunk.clear();
            self.n = 0;
        }
        Ok(())
    }
}

/// Runs merged at once: four runs of one size class become one of the
/// next, so each event is copied about `log4(N / fold size)` times.
const MERGE_WIDTH: usize = 4;

/// The size class of a run: its event count's base-4 logarithm.
fn level(events: i64) -> u32 {
    (63 - events.max(1).leading_zeros()) / 2
}

/// Adds a run of `ids` (sorted by id) and `by_hcp` (sorted by HCP key, then
/// `seq`), then merges runs while four are in one size class.
pub(crate) fn add_run(
    tx: &Connection,
    ids: &[(&str, i64)],
    by_hcp: &[(i64, i64)],
) -> rusqlite::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let run = next_run(tx)?;
    let mut w = IdWriter::new(tx, run)?;
    for &(id, seq) in ids {
        w.push(id.as_bytes(), seq)?;
    }
    w.flush()?;
    let mut stmt =
        tx.prepare_cached("INSERT INTO event_hcp_run (run, hcp_num, seqs) VALUES (?1, ?2, ?3)")?;
    for group in by_hcp.chunk_by(|a, b| a.0 == b.0) {
        let seqs: Vec<i64> = group.iter().map(|&(_, s)| s).collect();
        stmt.execute(params![run, group[0].0, encode_seqs(&seqs)])?;
    }
    tx.prepare_cached("INSERT INTO event_run (run, events) VALUES (?1, ?2)")?
        .execute(params![run, ids.len() as i64])?;
    loop {
        let all = runs(tx)?;
        let mut by_level: std::collections::BTreeMap<u32, Vec<Run>> = Default::default();
        for r in all {
            by_level.entry(level(r.events)).or_default().push(r);
        }
        match by_level.into_values().find(|rs| rs.len() >= MERGE_WIDTH) {
            Some(rs) => merge(tx, &rs[..MERGE_WIDTH])?,
            None => return Ok(()),
        }
    }
}

fn next_run(tx: &Connection) -> rusqlite::Result<i64> {
    tx.query_row("SELECT coalesce(max(run), 0) + 1 FROM event_run", [], |r| {
        r.get(0)
    })
}

/// One run's chunks of ids, read in key order, one chunk copied at a time.
struct IdSource<'s> {
    rows: rusqlite::Rows<'s>,
    chunk: Vec<u8>,
    pos: usize,
    /// The current entry: its id's byte range in `chunk`, and its `seq`.
    current: Option<(std::ops::Range<usize>, i64)>,
}

impl IdSource<'_> {
    fn advance(&mut self) -> rusqlite::Result<()> {
        loop {
            if self.pos < self.chunk.len() {
                let mut buf = &self.chunk[self.pos..];
                let before = buf.len();
                let len = varint(&mut buf).ok_or_else(bad_chunk)?;
                let len = usize::try_from(len).map_err(|_| bad_chunk())?;
                let start = self.pos + (before - buf.len());
                if len > buf.len() {
                    return Err(bad_chunk());
                }
                buf = &buf[len..];
                let seq = varint(&mut buf).ok_or_else(bad_chunk)?;
                self.pos = self.chunk.len() - buf.len();
                self.current = Some((
                    start..start + len,
                    i64::try_from(seq).map_err(|_| bad_chunk())?,
                ));
                return Ok(());
            }
            match self.rows.next()? {
                Some(r) => {
                    self.chunk.clear();
                    self.chunk.extend_from_slice(r.get_ref(0)?.as_blob()?);
                    self.pos = 0;
                }
                None => {
                    self.current = None;
                    return Ok(());
                }
            }
        }
    }

    fn id(&self) -> Option<&[u8]> {
        self.current.as_ref().map(|(r, _)| &self.chunk[r.clone()])
    }
}

/// Merges runs into a new one, streaming them in key order.
fn merge(tx: &Connection, old: &[Run]) -> rusqlite::Result<()> {
    let run = next_run(tx)?;
    {
        let mut stmts = old
            .iter()
            .map(|_| tx.prepare("SELECT chunk FROM event_id_run WHERE run = ?1 ORDER BY last_id"))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut sources = Vec::with_capacity(old.len());
        for (stmt, r) in stmts.iter_mut().zip(old) {
            let mut s = IdSource {
                rows: stmt.query([r.run])?,
                chunk: Vec::new(),
                pos: 0,
                current: None,
            };
            s.advance()?;
            sources.push(s);
        }
        let mut w = IdWriter::new(tx, run)?;
        loop {
            // The smallest current id (ids are unique across runs).
            let mut min: Option<usize> = None;
            for (i, s) in sources.iter().enumerate() {
                if let Some(id) = s.id()
                    && min
                        .and_then(|m| sources[m].id())
                        .is_none_or(|best| id < best)
                {
                    min = Some(i);
                }
            }
            let Some(i) = min else { break };
            let s = &mut sources[i];
            if let Some((range, seq)) = s.current.clone() {
                w.push(&s.chunk[range], seq)?;
            }
            s.advance()?;
        }
        w.flush()?;
    }
    {
        let mut stmts = old
            .iter()
            .map(|_| {
                tx.prepare(
                    "SELECT hcp_num, seqs FROM event_hcp_run WHERE run = ?1 ORDER BY hcp_num",
                )
            })
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut rows = Vec::with_capacity(old.len());
        for (stmt, r) in stmts.iter_mut().zip(old) {
            rows.push(stmt.query([r.run])?);
        }
        let next = |rows: &mut rusqlite::Rows<'_>| -> rusqlite::Result<Option<(i64, Vec<i64>)>> {
            Ok(match rows.next()? {
                Some(r) => Some((r.get(0)?, decode_seqs(r.get_ref(1)?.as_blob()?)?)),
                None => None,
            })
        };
        let mut current = rows
            .iter_mut()
            .map(next)
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut insert = tx
            .prepare_cached("INSERT INTO event_hcp_run (run, hcp_num, seqs) VALUES (?1, ?2, ?3)")?;
        while let Some(hcp) = current.iter().flatten().map(|(h, _)| *h).min() {
            let mut seqs = Vec::new();
            for (c, r) in current.iter_mut().zip(rows.iter_mut()) {
                if c.as_ref().is_some_and(|(h, _)| *h == hcp) {
                    if let Some((_, s)) = c.take() {
                        seqs.extend(s);
                    }
                    *c = next(r)?;
                }
            }
            seqs.sort_unstable();
            insert.execute(params![run, hcp, encode_seqs(&seqs)])?;
        }
    }
    for r in old {
        tx.prepare_cached("DELETE FROM event_id_run WHERE run = ?1")?
            .execute([r.run])?;
        tx.prepare_cached("DELETE FROM event_hcp_run WHERE run = ?1")?
            .execute([r.run])?;
        tx.prepare_cached("DELETE FROM event_run WHERE run = ?1")?
            .execute([r.run])?;
    }
    let events: i64 = old.iter().map(|r| r.events).sum();
    tx.prepare_cached("INSERT INTO event_run (run, events) VALUES (?1, ?2)")?
        .execute(params![run, events])?;
    Ok(())
}

/// Whether a folded event has this id.
pub(crate) fn contains_id(c: &Connection, runs: &[Run], id: &str) -> rusqlite::Result<bool> {
    let mut stmt = c.prepare_cached(
        "SELECT chunk FROM event_id_run WHERE run = ?1 AND last_id >= ?2 ORDER BY last_id LIMIT 1",
    )?;
    for r in runs {
        let chunk: Option<Vec<u8>> = stmt
            .query_row(params![r.run, id], |r| r.get(0))
            .optional()?;
        if let Some(chunk) = chunk
            && chunk_ids(&chunk)?.contains(&id)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The folded events of an HCP, by `seq`.
pub(crate) fn seqs_of(c: &Connection, runs: &[Run], hcp_num: i64) -> rusqlite::Result<Vec<i64>> {
    let mut stmt =
        c.prepare_cached("SELECT seqs FROM event_hcp_run WHERE run = ?1 AND hcp_num = ?2")?;
    let mut out = Vec::new();
    for r in runs {
        let seqs: Option<Vec<u8>> = stmt
            .query_row(params![r.run, hcp_num], |r| r.get(0))
            .optional()?;
        if let Some(seqs) = seqs {
            out.extend(decode_seqs(&seqs)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn db() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE event_run (run INTEGER PRIMARY KEY, events INTEGER NOT NULL);
             CREATE TABLE event_id_run (run INTEGER NOT NULL, last_id TEXT NOT NULL,
                 chunk BLOB NOT NULL, PRIMARY KEY (run, last_id)) WITHOUT ROWID;
             CREATE TABLE event_hcp_run (run INTEGER NOT NULL, hcp_num INTEGER NOT NULL,
                 seqs BLOB NOT NULL, PRIMARY KEY (run, hcp_num)) WITHOUT ROWID;",
        )
        .unwrap();
        c
    }

    /// Folds events `from..to` (id `e{seq}`, HCP `seq % 7`) as one run.
    fn fold(c: &Connection, from: i64, to: i64) {
        let names: Vec<String> = (from..to).map(|s| format!("e{s}")).collect();
        let mut ids: Vec<(&str, i64)> = names.iter().map(String::as_str).zip(from..to).collect();
        ids.sort_unstable();
        let mut by_hcp: Vec<(i64, i64)> = (from..to).map(|s| (s % 7, s)).collect();
        by_hcp.sort_unstable();
        add_run(c, &ids, &by_hcp).unwrap();
    }

    #[test]
    fn runs_of_one_size_class_merge_and_every_id_and_timeline_stays_findable() {
        let c = db();
        let mut end = 1;
        for size in [300, 300, 100, 50, 400, 1000, 7, 300, 300, 300, 40, 350] {
            fold(&c, end, end + size);
            end += size;
        }
        let all = runs(&c).unwrap();
        // Fewer than four runs per size class, and merges happened.
        for l in 0..32 {
            assert!(
                all.iter().filter(|r| level(r.events) == l).count() < 4,
                "{all:?}"
            );
        }
        assert!(all.len() < 12, "{all:?}");
        assert_eq!(all.iter().map(|r| r.events).sum::<i64>(), end - 1);
        for s in 1..end {
            assert!(contains_id(&c, &all, &format!("e{s}")).unwrap(), "e{s}");
        }
        assert!(!contains_id(&c, &all, "e0").unwrap());
        assert!(!contains_id(&c, &all, &format!("e{end}")).unwrap());
        assert!(!contains_id(&c, &all, "zzz").unwrap());
        for h in 0..7 {
            let mut seqs = seqs_of(&c, &all, h).unwrap();
            seqs.sort_unstable();
            let expected: Vec<i64> = (1..end).filter(|s| s % 7 == h).collect();
            assert_eq!(seqs, expected);
        }
    }

    #[test]
    fn seqs_and_varints_round_trip() {
        let seqs = [1, 2, 130, 20_000, 1 << 40];
        assert_eq!(decode_seqs(&encode_seqs(&seqs)).unwrap(), seqs);
        assert!(chunk_ids(&[5, b'a']).is_err());
    }
}
