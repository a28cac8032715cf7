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

/// `(id, seq)` pairs of a chunk.
fn decode_ids(mut buf: &[u8]) -> rusqlite::Result<Vec<(String, i64)>> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let len = varint(&mut buf).ok_or_else(bad_chunk)?;
        let len = usize::try_from(len).map_err(|_| bad_chunk())?;
        if len > buf.len() {
            return Err(bad_chunk());
        }
        let (id, rest) = buf.split_at(len);
        buf = rest;
        let id = std::str::from_utf8(id).map_err(|_| bad_chunk())?;
        let seq = varint(&mut buf).ok_or_else(bad_chunk)?;
        out.push((id.to_owned(), i64::try_from(seq).map_err(|_| bad_chunk())?));
    }
    Ok(out)
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
    last: String,
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
            last: String::new(),
            n: 0,
        })
    }

    fn push(&mut self, id: &str, seq: i64) -> rusqlite::Result<()> {
        put_varint(&mut self.chunk, id.len() as u64);
        self.chunk.extend_from_slice(id.as_bytes());
        put_varint(&mut self.chunk, seq.unsigned_abs());
        self.last.clear();
        self.last.push_str(id);
        self.n += 1;
        if self.chunk.len() >= CHUNK_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> rusqlite::Result<()> {
        if self.n > 0 {
            self.stmt
                .execute(params![self.run, self.last, self.chunk])?;
            self.chunk.clear();
            self.n = 0;
        }
        Ok(())
    }
}

/// Adds a run of `ids` (sorted by id) and `by_hcp` (sorted by HCP key, then
/// `seq`), then merges runs until no two newest ones are of similar size.
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
        w.push(id, seq)?;
    }
    w.flush()?;
    let mut stmt = tx
        .prepare_cached("INSERT INTO event_hcp_run (run, hcp_num, seqs) VALUES (?1, ?2, ?3)")?;
    for group in by_hcp.chunk_by(|a, b| a.0 == b.0) {
        let seqs: Vec<i64> = group.iter().map(|&(_, s)| s).collect();
        stmt.execute(params![run, group[0].0, encode_seqs(&seqs)])?;
    }
    tx.prepare_cached("INSERT INTO event_run (run, events) VALUES (?1, ?2)")?
        .execute(params![run, ids.len() as i64])?;
    loop {
        let all = runs(tx)?;
        match all.as_slice() {
            [.., older, newer] if older.events <= 2 * newer.events => {
                merge(tx, *older, *newer)?;
            }
            _ => return Ok(()),
        }
    }
}

fn next_run(tx: &Connection) -> rusqlite::Result<i64> {
    tx.query_row("SELECT coalesce(max(run), 0) + 1 FROM event_run", [], |r| {
        r.get(0)
    })
}

/// Merges two runs into a new one, streaming both in key order.
fn merge(tx: &Connection, a: Run, b: Run) -> rusqlite::Result<()> {
    let t0 = std::time::Instant::now(); // PROBE
    let run = next_run(tx)?;
    {
        let mut sa = tx.prepare("SELECT chunk FROM event_id_run WHERE run = ?1 ORDER BY last_id")?;
        let mut sb = tx.prepare("SELECT chunk FROM event_id_run WHERE run = ?1 ORDER BY last_id")?;
        let mut ra = sa.query([a.run])?;
        let mut rb = sb.query([b.run])?;
        let next = |rows: &mut rusqlite::Rows<'_>| -> rusqlite::Result<Vec<(String, i64)>> {
            Ok(match rows.next()? {
                Some(r) => decode_ids(r.get_ref(0)?.as_blob()?)?,
                None => Vec::new(),
            })
        };
        let (mut ca, mut cb) = (next(&mut ra)?.into_iter(), next(&mut rb)?.into_iter());
        let (mut xa, mut xb) = (ca.next(), cb.next());
        let mut w = IdWriter::new(tx, run)?;
        loop {
            let take_a = match (&xa, &xb) {
                (Some(x), Some(y)) => x.0 <= y.0,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            if take_a {
                if let Some((id, seq)) = xa.take() {
                    w.push(&id, seq)?;
                }
                xa = ca.next();
                if xa.is_none() {
                    ca = next(&mut ra)?.into_iter();
                    xa = ca.next();
                }
            } else {
                if let Some((id, seq)) = xb.take() {
                    w.push(&id, seq)?;
                }
                xb = cb.next();
                if xb.is_none() {
                    cb = next(&mut rb)?.into_iter();
                    xb = cb.next();
                }
            }
        }
        w.flush()?;
    }
    let t1 = t0.elapsed(); // PROBE
    {
        let mut sa =
            tx.prepare("SELECT hcp_num, seqs FROM event_hcp_run WHERE run = ?1 ORDER BY hcp_num")?;
        let mut sb =
            tx.prepare("SELECT hcp_num, seqs FROM event_hcp_run WHERE run = ?1 ORDER BY hcp_num")?;
        let mut ra = sa.query([a.run])?;
        let mut rb = sb.query([b.run])?;
        let next = |rows: &mut rusqlite::Rows<'_>| -> rusqlite::Result<Option<(i64, Vec<i64>)>> {
            Ok(match rows.next()? {
                Some(r) => Some((r.get(0)?, decode_seqs(r.get_ref(1)?.as_blob()?)?)),
                None => None,
            })
        };
        let mut insert = tx
            .prepare_cached("INSERT INTO event_hcp_run (run, hcp_num, seqs) VALUES (?1, ?2, ?3)")?;
        let (mut xa, mut xb) = (next(&mut ra)?, next(&mut rb)?);
        loop {
            let row = match (xa.take(), xb.take()) {
                (Some(x), Some(y)) if x.0 == y.0 => {
                    let mut seqs = x.1;
                    seqs.extend(y.1);
                    seqs.sort_unstable();
                    xa = next(&mut ra)?;
                    xb = next(&mut rb)?;
                    (x.0, seqs)
                }
                (Some(x), Some(y)) if x.0 < y.0 => {
                    xb = Some(y);
                    xa = next(&mut ra)?;
                    x
                }
                (Some(x), Some(y)) => {
                    xa = Some(x);
                    xb = next(&mut rb)?;
                    y
                }
                (Some(x), None) => {
                    xa = next(&mut ra)?;
                    x
                }
                (None, Some(y)) => {
                    xb = next(&mut rb)?;
                    y
                }
                (None, None) => break,
            };
            insert.execute(params![run, row.0, encode_seqs(&row.1)])?;
        }
    }
    let t2 = t0.elapsed(); // PROBE
    for old in [a.run, b.run] {
        tx.prepare_cached("DELETE FROM event_id_run WHERE run = ?1")?
            .execute([old])?;
        tx.prepare_cached("DELETE FROM event_hcp_run WHERE run = ?1")?
            .execute([old])?;
        tx.prepare_cached("DELETE FROM event_run WHERE run = ?1")?
            .execute([old])?;
    }
    tx.prepare_cached("INSERT INTO event_run (run, events) VALUES (?1, ?2)")?
        .execute(params![run, a.events + b.events])?;
    if std::env::var_os("OG_PROBE").is_some() { eprintln!("merge {}+{}: ids {:?} hcp {:?} total {:?}", a.events, b.events, t1, t2, t0.elapsed()); } // PROBE
    Ok(())
}

/// Whether a folded event has this id.
pub(crate) fn contains_id(c: &Connection, runs: &[Run], id: &str) -> rusqlite::Result<bool> {
    let mut stmt = c.prepare_cached(
        "SELECT chunk FROM event_id_run WHERE run = ?1 AND last_id >= ?2 ORDER BY last_id LIMIT 1",
    )?;
    for r in runs {
        let chunk: Option<Vec<u8>> = stmt.query_row(params![r.run, id], |r| r.get(0)).optional()?;
        if let Some(chunk) = chunk
            && decode_ids(&chunk)?.iter().any(|(x, _)| x == id)
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
    fn runs_of_similar_size_merge_and_every_id_and_timeline_stays_findable() {
        let c = db();
        let mut end = 1;
        for size in [300, 300, 100, 50, 400, 1000, 7] {
            fold(&c, end, end + size);
            end += size;
        }
        let all = runs(&c).unwrap();
        // Sizes decrease by more than half from oldest to newest.
        for w in all.windows(2) {
            assert!(w[0].events > 2 * w[1].events, "{all:?}");
        }
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
        assert!(decode_ids(&[5, b'a']).is_err());
    }
}
