//! Touches per UTC day over the last 32 days, in one small blob per HCP and
//! channel: what makes 7- and 30-day counts exact at read time without a
//! range scan or a per-day row.
//!
//! Slot `day % 32` holds the touches of `day`, for the 32 days ending at
//! `newest` (the latest day with a touch). Counts for a window ending
//! `today` are exact as long as `newest <= today + 2`, that is, unless an
//! event is dated more than two days after the moment of reading.

use omnigate_core::event::DAY_MILLIS;

/// Days kept.
pub(crate) const SLOTS: i64 = 32;

/// Touches per day for the 32 days ending at `newest`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct DayRing {
    newest: Option<i64>,
    counts: [u16; SLOTS as usize],
}

fn slot(day: i64) -> usize {
    // rem_euclid of a positive modulus is in 0..SLOTS.
    usize::try_from(day.rem_euclid(SLOTS)).unwrap_or(0)
}

impl DayRing {
    /// Adds `n` touches on the day of `at` (Unix ms). Touches older than the
    /// ring's span are not counted: no window read now can include them.
    pub(crate) fn add(&mut self, at: i64, n: u16) {
        let day = at.div_euclid(DAY_MILLIS);
        let newest = match self.newest {
            None => {
                self.newest = Some(day);
                day
            }
            Some(newest) if day > newest => {
                // Clear the slots of the days between, at most all of them.
                for d in (newest + 1)..=(day.min(newest + SLOTS)) {
                    self.counts[slot(d)] = 0;
                }
                if day - newest > SLOTS {
                    self.counts = [0; SLOTS as usize];
                }
                self.newest = Some(day);
                day
            }
            Some(newest) => newest,
        };
        if day > newest - SLOTS {
            let c = &mut self.counts[slot(day)];
            *c = c.saturating_add(n);
        }
    }

    /// Touches on the `days` days ending on the day of `now` (Unix ms).
    pub(crate) fn last_days(&self, now: i64, days: i64) -> u32 {
        let Some(newest) = self.newest else { return 0 };
        let today = now.div_euclid(DAY_MILLIS);
        let from = (today - days + 1).max(newest - SLOTS + 1);
        let to = today.min(newest);
        (from..=to).map(|d| u32::from(self.counts[slot(d)])).sum()
    }

    /// The stored form: newest day, then 32 little-endian u16 counts.
    pub(crate) fn to_parts(&self) -> (Option<i64>, Vec<u8>) {
        (
            self.newest,
            self.counts.iter().flat_map(|c| c.to_le_bytes()).collect(),
        )
    }

    /// Back from the stored form; a blob of the wrong size reads as empty
    /// counts rather than failing a read.
    pub(crate) fn from_parts(newest: Option<i64>, blob: &[u8]) -> Self {
        let mut counts = [0u16; SLOTS as usize];
        if blob.len() == counts.len() * 2 {
            for (c, b) in counts.iter_mut().zip(blob.chunks_exact(2)) {
                *c = u16::from_le_bytes([b[0], b[1]]);
            }
        }
        DayRing { newest, counts }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const D: i64 = DAY_MILLIS;
    const T: i64 = 20_000 * D + 5; // a day boundary plus a bit

    #[test]
    fn counts_fall_into_exact_7_and_30_day_windows() {
        let mut r = DayRing::default();
        for back in [0, 6, 7, 29, 30, 31] {
            r.add(T - back * D, 1);
        }
        assert_eq!(r.last_days(T, 7), 2);
        assert_eq!(r.last_days(T, 30), 4);
        assert_eq!(r.last_days(T + D, 7), 1);
        assert_eq!(r.last_days(T + 40 * D, 30), 0);
    }

    #[test]
    fn moving_forward_clears_the_days_it_passes() {
        let mut r = DayRing::default();
        r.add(T, 3);
        r.add(T + SLOTS * D, 1); // slot of T reused
        assert_eq!(r.last_days(T + SLOTS * D, 30), 1);
        r.add(T + 100 * D, 2);
        assert_eq!(r.last_days(T + 100 * D, 30), 2);
    }

    #[test]
    fn late_events_within_the_span_count_and_older_ones_do_not() {
        let mut r = DayRing::default();
        r.add(T, 1);
        r.add(T - 10 * D, 1);
        r.add(T - 40 * D, 1);
        assert_eq!(r.last_days(T, 30), 2);
    }

    #[test]
    fn the_stored_form_round_trips() {
        let mut r = DayRing::default();
        r.add(T, 300);
        r.add(T - 3 * D, 2);
        let (newest, blob) = r.to_parts();
        assert_eq!(DayRing::from_parts(newest, &blob), r);
    }
}
