//! The hot tier of the event store: events committed since the last fold,
//! indexed in memory.
//!
//! Ingest appends events to the `event` log (ordered by `seq`, so a batch
//! writes a few consecutive pages) and records them here; it does not touch
//! the folded indexes (`event_id_run`, `event_hcp_run`, see `runs.rs`) nor
//! the feature tables, whose pages are spread over the whole file. A *fold*
//! moves everything in this tier into those tables in one transaction,
//! sorted by key, so that each page is written once per fold rather than
//! once per event. The `event_fold` row says up to which `seq` the tables
//! are complete.
//!
//! This tier is a cache of the log, never the only copy: it covers the
//! `seq` range `(folded, last]`, is rebuilt from the log when that range does
//! not match the file (at open, after another process wrote, after a panic),
//! and readers read any part of the range they need that it does not cover
//! from the log itself. It also keeps the filter of folded ids
//! (`filter.rs`) that lets ingest skip looking most new ids up.

use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::sync::Arc;

use omnigate_core::event::UnixMillis;
use omnigate_core::{Channel, EventType};
use rusqlite::Connection;
use serde_json::{Map, Value};

use crate::db::corrupt;
use crate::filter::IdFilter;
use crate::window::DayRing;

/// A hash map with a fast hasher (foldhash, randomly seeded per map): ids
/// come from outside, and SipHash was a tenth of ingest's time.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
/// A hash set with the same hasher.
pub(crate) type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
type HashMap<K, V> = FastMap<K, V>;

/// What the derived features need of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HotEvent {
    pub(crate) seq: i64,
    pub(crate) occurred_at: UnixMillis,
    pub(crate) event_type: EventType,
    pub(crate) channel: Channel,
    /// The content version seen through it, if any (shared by the events
    /// of a segment that name it).
    pub(crate) content: Option<Arc<str>>,
}

/// A committed event, as ingest hands it to the tier.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewHot<'a> {
    pub(crate) id: &'a str,
    /// `Hot::hash_id(id)`.
    pub(crate) hash: u64,
    pub(crate) hcp: i64,
    pub(crate) seq: i64,
    pub(crate) occurred_at: UnixMillis,
    pub(crate) event_type: EventType,
    pub(crate) channel: Channel,
    pub(crate) content: Option<&'a str>,
}

/// Events with `seq` in a range, by event id and by HCP.
#[derive(Debug, Default)]
pub(crate) struct Segment {
    /// The range `(from, to]` this segment holds, every event of it.
    pub(crate) from: i64,
    pub(crate) to: i64,
    /// The ids of events `from + 1, from + 2, ...`, one after the other
    /// (no allocation per id), ending at `id_ends`.
    id_text: String,
    id_ends: Vec<usize>,
    /// Event index (`seq - from - 1`) by the hash of its id; an id whose
    /// hash another id of the segment has is in `spill`.
    by_hash: FastMap<u64, u32>,
    spill: FastMap<Box<str>, u32>,
    by_hcp: HashMap<i64, Vec<HotEvent>>,
    /// The content versions named, each stored once.
    contents: FastSet<Arc<str>>,
}

impl Segment {
    fn starting_after(seq: i64) -> Self {
        Segment {
            from: seq,
            to: seq,
            ..Segment::default()
        }
    }

    /// Events held.
    pub(crate) fn len(&self) -> usize {
        self.id_ends.len()
    }

    fn id_at(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.id_ends[i - 1] };
        &self.id_text[start..self.id_ends[i]]
    }

    /// Whether an id (with hash `h`) is held.
    fn contains(&self, id: &str, h: u64) -> bool {
        match self.by_hash.get(&h) {
            Some(&i) if self.id_at(i as usize) == id => true,
            Some(_) => self.spill.contains_key(id),
            None => false,
        }
    }

    /// Every id held, with its `seq`.
    pub(crate) fn ids(&self) -> impl Iterator<Item = (&str, i64)> {
        (0..self.len()).map(|i| (self.id_at(i), self.from + 1 + i as i64))
    }

    /// Adds the event following `to`. INVARIANT: its id is not held.
    fn push(&mut self, e: &NewHot<'_>) {
        let i = u32::try_from(self.len()).unwrap_or(u32::MAX);
        self.id_text.push_str(e.id);
        self.id_ends.push(self.id_text.len());
        if let Some(&other) = self.by_hash.get(&e.hash) {
            if self.id_at(other as usize) != e.id {
                self.spill.insert(Box::from(e.id), i);
            }
        } else {
            self.by_hash.insert(e.hash, i);
        }
        let content = e.content.map(|v| match self.contents.get(v) {
            Some(shared) => Arc::clone(shared),
            None => {
                let shared: Arc<str> = Arc::from(v);
                self.contents.insert(Arc::clone(&shared));
                shared
            }
        });
        self.to = e.seq;
        self.by_hcp.entry(e.hcp).or_default().push(HotEvent {
            seq: e.seq,
            occurred_at: e.occurred_at,
            event_type: e.event_type,
            channel: e.channel,
            content,
        });
    }
}

/// Events committed after the last fold, by event id and by HCP: the ones
/// being folded (frozen) and the ones committed since.
#[derive(Debug, Default)]
pub(crate) struct Hot {
    /// Events up to this `seq` are in the folded tables.
    folded: i64,
    /// The newest `seq` known here. INVARIANT: when `valid`, this tier holds
    /// exactly the events with `seq` in `(folded, last]`: those of `frozen`
    /// (if any, `(folded, frozen.to]`), then those of `open`.
    last: i64,
    /// False until loaded, and after an update was interrupted or a fold
    /// failed: then it covers nothing and the next write reloads it.
    valid: bool,
    /// The events a fold is writing into the folded tables, if one is.
    frozen: Option<Arc<Segment>>,
    /// The events after those.
    open: Segment,
    /// The ids of the folded events, as a filter. INVARIANT: it holds every
    /// id with `seq <= filter_mark` (and may hold more).
    filter: IdFilter,
    filter_mark: i64,
    /// Hashes ids for the segments and the filter: randomly seeded (ids
    /// come from outside; crafted collisions could only cost lookups).
    hasher: foldhash::fast::RandomState,
}

/// The `seq` watermarks of a database snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Marks {
    /// Every event up to here is in the folded tables, none after.
    pub(crate) folded: i64,
    /// The newest event.
    pub(crate) last: i64,
}

/// Reads the watermarks in the current transaction.
pub(crate) fn marks(c: &Connection) -> rusqlite::Result<Marks> {
    c.prepare_cached(
        "SELECT folded_seq, (SELECT coalesce(max(seq), 0) FROM event) FROM event_fold",
    )?
    .query_row([], |r| {
        Ok(Marks {
            folded: r.get(0)?,
            last: r.get(1)?,
        })
    })
}

/// One HCP's events in the hot part of a snapshot, and the `seq` ranges that
/// the caller must read from the log because this tier does not cover them.
#[derive(Debug, Default)]
pub(crate) struct HotView {
    pub(crate) events: Vec<(i64, HotEvent)>,
    pub(crate) missing: Vec<(i64, i64)>,
}

impl Hot {
    /// Whether this tier is exactly the unfolded part of a database with
    /// these watermarks.
    pub(crate) fn matches(&self, m: Marks) -> bool {
        self.valid && self.folded == m.folded && self.last == m.last
    }

    /// Events held.
    pub(crate) fn len(&self) -> usize {
        self.open.len() + self.frozen.as_ref().map_or(0, |f| f.len())
    }

    /// Events held that no fold is writing yet.
    pub(crate) fn unfrozen(&self) -> usize {
        self.open.len()
    }

    /// The hash of an id, for [`Hot::contains`], [`Hot::may_be_folded`]
    /// and [`NewHot`].
    pub(crate) fn hash_id(&self, id: &str) -> u64 {
        self.hasher.hash_one(id)
    }

    /// Whether an event id (with hash `h`) is held.
    pub(crate) fn contains(&self, id: &str, h: u64) -> bool {
        self.open.contains(id, h) || self.frozen.as_ref().is_some_and(|f| f.contains(id, h))
    }

    /// Hands the events held to a fold: they stay readable here until
    /// [`Hot::frozen_folded`] says they are in the tables. None if a fold is
    /// already under way, nothing is held, or the tier must be reloaded.
    pub(crate) fn freeze(&mut self) -> Option<Arc<Segment>> {
        if !self.valid || self.frozen.is_some() || self.open.len() == 0 {
            return None;
        }
        let seg = Arc::new(std::mem::replace(
            &mut self.open,
            Segment::starting_after(self.last),
        ));
        self.frozen = Some(Arc::clone(&seg));
        Some(seg)
    }

    /// The fold of `seg` (from [`Hot::freeze`]) committed: its events are in
    /// the tables, their ids go to the filter.
    pub(crate) fn frozen_folded(&mut self, seg: &Arc<Segment>) {
        let ours = self.frozen.as_ref().is_some_and(|f| Arc::ptr_eq(f, seg));
        if !(self.valid && ours && self.folded == seg.from) {
            // Reloaded meanwhile: the next write reloads it again.
            self.valid = false;
            return;
        }
        if self.filter_mark == self.folded {
            for (id, _) in seg.ids() {
                self.filter.insert(self.hasher.hash_one(id));
            }
            self.filter_mark = seg.to;
        }
        self.folded = seg.to;
        self.frozen = None;
    }

    /// The fold of `seg` failed: the tier is reloaded from the log by the
    /// next write.
    pub(crate) fn fold_failed(&mut self) {
        self.valid = false;
    }

    /// Whether the filter lacks ids folded up to `m.folded`.
    pub(crate) fn filter_behind(&self, m: Marks) -> bool {
        self.filter_mark < m.folded
    }

    /// False if no folded event has this id; true if one may have it.
    /// Exact only once [`Hot::catch_up_filter`] ran in this transaction.
    pub(crate) fn may_be_folded(&self, h: u64) -> bool {
        self.filter.may_contain(h)
    }

    /// Adds to the filter the ids folded since it was last updated (all of
    /// them at first, from the runs; else from the log), so that it holds
    /// every id with `seq <= m.folded`.
    pub(crate) fn catch_up_filter(&mut self, c: &Connection, m: Marks) -> rusqlite::Result<()> {
        if self.filter_mark >= m.folded {
            return Ok(());
        }
        if self.filter_mark == 0 {
            let capacity = usize::try_from(m.folded).unwrap_or(0);
            self.filter = IdFilter::with_capacity(capacity + capacity / 2);
            let mut stmt = c.prepare("SELECT chunk FROM event_id_run")?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                for id in crate::runs::chunk_ids(r.get_ref(0)?.as_blob()?)? {
                    self.filter.insert(self.hasher.hash_one(id));
                }
            }
        } else {
            let mut stmt = c.prepare_cached("SELECT id FROM event WHERE seq > ?1 AND seq <= ?2")?;
            let mut rows = stmt.query([self.filter_mark, m.folded])?;
            while let Some(r) = rows.next()? {
                self.filter
                    .insert(self.hasher.hash_one(r.get_ref(0)?.as_str()?));
            }
        }
        self.filter_mark = m.folded;
        Ok(())
    }

    /// Adds freshly committed events, which directly follow `last`. Events
    /// that do not (a caller's bug) leave the tier invalid, to be reloaded.
    pub(crate) fn extend(&mut self, events: &[NewHot<'_>]) {
        let valid = self.valid;
        // Invalid while half-updated: a panic here leaves it invalid.
        self.valid = false;
        let mut follows = true;
        self.open.id_ends.reserve(events.len());
        self.open.by_hash.reserve(events.len());
        for e in events {
            follows &= e.seq == self.last + 1;
            if !follows {
                break;
            }
            self.last = e.seq;
            self.open.push(e);
        }
        self.valid = valid && follows;
    }

    /// Everything up to `folded`, which is `last`, was folded: the tier is
    /// empty and valid whatever it was before.
    #[cfg(test)]
    pub(crate) fn folded_to(&mut self, folded: i64) {
        if self.valid && self.filter_mark == self.folded {
            for seg in self.frozen.iter().map(|f| &**f).chain([&self.open]) {
                for (id, _) in seg.ids() {
                    self.filter.insert(self.hasher.hash_one(id));
                }
            }
            self.filter_mark = folded;
        }
        self.folded = folded;
        self.last = folded;
        self.frozen = None;
        self.open = Segment::starting_after(folded);
        self.valid = true;
    }

    /// Makes this tier unusable until reloaded.
    #[cfg(test)]
    pub(crate) fn invalidate(&mut self) {
        self.valid = false;
    }

    /// Rebuilds the tier from the log of the current transaction: the
    /// events with `seq` in `(m.folded, upto]` (`upto` at most `m.last`).
    pub(crate) fn reload(&mut self, c: &Connection, m: Marks, upto: i64) -> Result<(), LogError> {
        let upto = upto.min(m.last);
        self.valid = false;
        self.frozen = None;
        self.open = Segment::starting_after(m.folded);
        self.folded = m.folded;
        self.last = m.folded;
        for row in scan_log(c, m.folded, upto)? {
            if row.event.seq != self.last + 1 {
                return Err(LogError::Corrupt("event log has gaps"));
            }
            self.last = row.event.seq;
            self.open.push(&NewHot {
                id: &row.id,
                hash: self.hasher.hash_one(&*row.id),
                hcp: row.hcp_num,
                seq: row.event.seq,
                occurred_at: row.event.occurred_at,
                event_type: row.event.event_type,
                channel: row.event.channel,
                content: row.event.content.as_deref(),
            });
        }
        if self.last != upto {
            return Err(LogError::Corrupt("event log has gaps"));
        }
        self.valid = true;
        Ok(())
    }

    /// The events of `members` in the hot part of a snapshot with watermarks
    /// `m`, that is with `seq` in `(m.folded, m.last]`.
    pub(crate) fn view(&self, members: &[i64], m: Marks) -> HotView {
        let mut view = HotView::default();
        // What this tier covers; nothing when invalid.
        let (lo, hi) = if self.valid {
            (self.folded, self.last)
        } else {
            (i64::MAX, i64::MAX)
        };
        for &n in members.iter().filter(|_| self.valid) {
            for seg in self.frozen.iter().map(|f| &**f).chain([&self.open]) {
                for e in seg.by_hcp.get(&n).into_iter().flatten() {
                    if e.seq > m.folded && e.seq <= m.last {
                        view.events.push((n, e.clone()));
                    }
                }
            }
        }
        // The snapshot's hot range minus what this tier covers.
        if m.folded < lo.min(m.last) {
            view.missing.push((m.folded, lo.min(m.last)));
        }
        if hi.max(m.folded) < m.last && hi < i64::MAX {
            view.missing.push((hi.max(m.folded), m.last));
        }
        view
    }
}

impl Segment {
    /// What a fold writes: every held event, sorted by the key of each
    /// table it goes to.
    pub(crate) fn fold_plan(&self) -> FoldPlan<'_> {
        let mut ids: Vec<(&str, i64)> = self.ids().collect();
        ids.sort_unstable();
        let mut hcps: Vec<(i64, &[HotEvent])> = self
            .by_hcp
            .iter()
            .map(|(&n, e)| (n, e.as_slice()))
            .collect();
        hcps.sort_unstable_by_key(|&(n, _)| n);
        let mut plan = FoldPlan {
            ids,
            by_hcp: Vec::with_capacity(self.len()),
            channels: Vec::with_capacity(hcps.len() * 2),
            seen: Vec::new(),
        };
        // Per HCP (in key order), its channels and content versions, each
        // sorted: the lists come out in table key order without a map.
        for (n, events) in hcps {
            let channels_from = plan.channels.len();
            let seen_from = plan.seen.len();
            for e in events {
                // The hot tier appends in `seq` order.
                plan.by_hcp.push((n, e.seq));
                let ch = e.channel.as_str();
                let i = match plan.channels[channels_from..]
                    .iter()
                    .position(|((_, c), _)| *c == ch)
                {
                    Some(i) => channels_from + i,
                    None => {
                        plan.channels.push(((n, ch), ChannelDelta::default()));
                        plan.channels.len() - 1
                    }
                };
                plan.channels[i].1.add(e);
                if let Some(version) = e.content.as_deref() {
                    match plan.seen[seen_from..]
                        .iter_mut()
                        .find(|((_, v), _)| *v == version)
                    {
                        Some((_, first)) => *first = (*first).min(e.occurred_at),
                        None => plan.seen.push(((n, version), e.occurred_at)),
                    }
                }
            }
            plan.channels[channels_from..].sort_unstable_by(|a, b| a.0.cmp(&b.0));
            plan.seen[seen_from..].sort_unstable_by(|a, b| a.0.cmp(&b.0));
        }
        plan
    }
}

/// The derived-feature changes of a set of events, by key in table order.
#[derive(Debug, Default)]
pub(crate) struct Features<'a> {
    /// Per HCP and channel (name, as stored): the change to its row.
    pub(crate) channels: BTreeMap<(i64, &'static str), ChannelDelta>,
    /// Per HCP and content version: the first time seen.
    pub(crate) seen: BTreeMap<(i64, &'a str), UnixMillis>,
}

/// The change of one (HCP, channel) feature row.
#[derive(Debug, Default, Clone)]
pub(crate) struct ChannelDelta {
    /// Touch times, in `seq` order.
    pub(crate) touches: Vec<UnixMillis>,
    pub(crate) sends: i64,
    pub(crate) opens: i64,
    pub(crate) clicks: i64,
    pub(crate) attended: i64,
}

impl ChannelDelta {
    /// Counts one event of this HCP and channel.
    fn add(&mut self, e: &HotEvent) {
        let fx = e.event_type.effect();
        self.sends += i64::from(fx.send);
        self.opens += i64::from(fx.open);
        self.clicks += i64::from(fx.click);
        self.attended += i64::from(fx.attend);
        if fx.touch {
            self.touches.push(e.occurred_at);
        }
    }
}

impl<'a> Features<'a> {
    pub(crate) fn add(&mut self, hcp: i64, e: &'a HotEvent) {
        self.channels
            .entry((hcp, e.channel.as_str()))
            .or_default()
            .add(e);
        if let Some(version) = e.content.as_deref() {
            let first = self.seen.entry((hcp, version)).or_insert(e.occurred_at);
            *first = (*first).min(e.occurred_at);
        }
    }
}

/// A stored feature row with a delta applied.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ChannelRow {
    pub(crate) last_touch_at: Option<UnixMillis>,
    pub(crate) sends: i64,
    pub(crate) opens: i64,
    pub(crate) clicks: i64,
    pub(crate) attended: i64,
    pub(crate) ring: DayRing,
}

impl ChannelRow {
    /// Adds a delta. Every part commutes (sums, maximum, the day ring keeps
    /// the days in the span of its newest day), so the order in which
    /// deltas arrive does not matter.
    pub(crate) fn apply(&mut self, d: &ChannelDelta) {
        for &at in &d.touches {
            self.last_touch_at = Some(self.last_touch_at.map_or(at, |l| l.max(at)));
            self.ring.add(at, 1);
        }
        self.sends += d.sends;
        self.opens += d.opens;
        self.clicks += d.clicks;
        self.attended += d.attended;
    }
}

/// Rows for the folded tables, each list sorted by its table's key.
#[derive(Debug)]
pub(crate) struct FoldPlan<'a> {
    /// `event_id`: (id, seq).
    pub(crate) ids: Vec<(&'a str, i64)>,
    /// `event_hcp`: (HCP key, seq).
    pub(crate) by_hcp: Vec<(i64, i64)>,
    /// `feature_channel`: (HCP key, channel) and the change to the row.
    pub(crate) channels: Vec<((i64, &'static str), ChannelDelta)>,
    /// `content_seen`: (HCP key, content version) and the first time seen.
    pub(crate) seen: Vec<((i64, &'a str), UnixMillis)>,
}

/// Why the log could not be read back.
#[derive(Debug)]
pub(crate) enum LogError {
    Sqlite(rusqlite::Error),
    Corrupt(&'static str),
    Value(&'static str, String),
}

impl From<rusqlite::Error> for LogError {
    fn from(e: rusqlite::Error) -> Self {
        LogError::Sqlite(e)
    }
}

impl LogError {
    pub(crate) fn during(self, op: &'static str) -> omnigate_core::store::StoreError {
        match self {
            LogError::Sqlite(e) => omnigate_core::store::StoreError::Backend {
                op,
                message: e.to_string(),
            },
            LogError::Corrupt(what) => omnigate_core::store::StoreError::Backend {
                op,
                message: what.to_owned(),
            },
            LogError::Value(what, value) => corrupt(op, what, &value),
        }
    }
}

/// One event of the log, as the hot tier needs it.
pub(crate) struct LogRow {
    pub(crate) id: Box<str>,
    pub(crate) hcp_num: i64,
    pub(crate) event: HotEvent,
}

/// The content version an event of type `t` with these stored attributes
/// made its HCP see (as `NewEvent::content_seen`).
fn content_of(t: EventType, attributes: &str) -> Result<Option<Arc<str>>, LogError> {
    if !t.effect().sees_content {
        return Ok(None);
    }
    let map: Map<String, Value> = serde_json::from_str(attributes)
        .map_err(|_| LogError::Corrupt("stored event attributes are unreadable"))?;
    Ok(map
        .get("content_version")
        .and_then(Value::as_str)
        .map(Arc::from))
}

/// The events with `seq` in `(from, to]`, in `seq` order.
pub(crate) fn scan_log(c: &Connection, from: i64, to: i64) -> Result<Vec<LogRow>, LogError> {
    let mut stmt = c.prepare_cached(
        "SELECT e.seq, e.id, e.hcp_num, t.name, c.name, e.occurred_at, e.attributes
         FROM event e
         JOIN event_type_code t ON t.code = e.type
         JOIN channel_code c ON c.code = e.channel
         WHERE e.seq > ?1 AND e.seq <= ?2 ORDER BY e.seq",
    )?;
    let mut rows = stmt.query([from, to])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let t: String = r.get(3)?;
        let ch: String = r.get(4)?;
        let event_type: EventType = t.parse().map_err(|_| LogError::Value("event type", t))?;
        let channel: Channel = ch.parse().map_err(|_| LogError::Value("channel", ch))?;
        let attributes: String = r.get(6)?;
        out.push(LogRow {
            id: r.get::<_, String>(1)?.into_boxed_str(),
            hcp_num: r.get(2)?,
            event: HotEvent {
                seq: r.get(0)?,
                occurred_at: r.get(5)?,
                event_type,
                channel,
                content: content_of(event_type, &attributes)?,
            },
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ev(seq: i64) -> HotEvent {
        HotEvent {
            seq,
            occurred_at: 0,
            event_type: EventType::RepVisit,
            channel: Channel::RepVisit,
            content: None,
        }
    }

    fn hot(folded: i64, seqs: &[i64]) -> Hot {
        let mut h = Hot::default();
        h.folded_to(folded);
        let ids: Vec<String> = seqs.iter().map(|s| format!("e{s}")).collect();
        let events: Vec<NewHot<'_>> = seqs
            .iter()
            .zip(&ids)
            .map(|(&s, id)| {
                let e = ev(s);
                NewHot {
                    id,
                    hash: h.hash_id(id),
                    hcp: 7,
                    seq: s,
                    occurred_at: e.occurred_at,
                    event_type: e.event_type,
                    channel: e.channel,
                    content: None,
                }
            })
            .collect();
        h.extend(&events);
        h
    }

    #[test]
    fn a_view_of_a_covered_snapshot_needs_no_log_reads() {
        let h = hot(10, &[11, 12, 13]);
        let v = h.view(
            &[7],
            Marks {
                folded: 10,
                last: 13,
            },
        );
        assert_eq!(v.events.len(), 3);
        assert!(v.missing.is_empty());
        // An older snapshot sees only its own events.
        let v = h.view(
            &[7],
            Marks {
                folded: 10,
                last: 12,
            },
        );
        assert_eq!(v.events.len(), 2);
        assert!(v.missing.is_empty());
    }

    #[test]
    fn a_view_names_the_ranges_it_does_not_cover() {
        let h = hot(10, &[11, 12]);
        // Committed after this tier was updated.
        let v = h.view(
            &[7],
            Marks {
                folded: 10,
                last: 15,
            },
        );
        assert_eq!(v.missing, [(12, 15)]);
        // Folded by another process up to 11, then more written.
        let v = h.view(
            &[7],
            Marks {
                folded: 11,
                last: 15,
            },
        );
        assert_eq!(v.events.len(), 1);
        assert_eq!(v.missing, [(12, 15)]);
        // A snapshot older than this tier's fold.
        let h = hot(20, &[21]);
        let v = h.view(
            &[7],
            Marks {
                folded: 10,
                last: 21,
            },
        );
        assert_eq!(v.missing, [(10, 20)]);
        assert_eq!(v.events.len(), 1);
        // An invalid tier covers nothing.
        let mut h = hot(10, &[11]);
        h.invalidate();
        let v = h.view(
            &[7],
            Marks {
                folded: 10,
                last: 11,
            },
        );
        assert!(v.events.is_empty());
        assert_eq!(v.missing, [(10, 11)]);
    }
}
