//! Resolving a campaign's audience: the filter, and the holdout draw.

use omnigate_core::campaign::{EventTest, FeatureTest, Filter, Metric};
use omnigate_core::event::{Event, UnixMillis};
use omnigate_core::hcp::HcpProfile;
use omnigate_core::store::StoreResult;
use omnigate_core::{EngagementStats, Store};
use sha2::{Digest, Sha256};

/// What the filter is evaluated against; the journey stage and the event
/// history are read only if a condition asks for them.
pub(crate) struct Subject<'a> {
    pub profile: &'a HcpProfile,
    pub features: &'a EngagementStats,
    pub product: &'a str,
    pub now: UnixMillis,
    pub store: &'a dyn Store,
    stage: Option<Option<String>>,
    events: Option<Vec<Event>>,
}

impl<'a> Subject<'a> {
    pub(crate) fn new(
        profile: &'a HcpProfile,
        features: &'a EngagementStats,
        product: &'a str,
        now: UnixMillis,
        store: &'a dyn Store,
    ) -> Subject<'a> {
        Subject {
            profile,
            features,
            product,
            now,
            store,
            stage: None,
            events: None,
        }
    }

    /// The HCP's journey stage for the campaign's product (read once).
    pub(crate) fn stage(&mut self) -> StoreResult<Option<String>> {
        if self.stage.is_none() {
            self.stage = Some(self.store.journey_stage(&self.profile.id, self.product)?);
        }
        Ok(self.stage.clone().flatten())
    }

    fn events(&mut self) -> StoreResult<&[Event]> {
        if self.events.is_none() {
            self.events = Some(self.store.events_of(&self.profile.id)?);
        }
        Ok(self.events.as_deref().unwrap_or_default())
    }

    /// Whether the HCP is in the audience.
    pub(crate) fn matches(&mut self, filter: &Filter) -> StoreResult<bool> {
        let p = self.profile;
        let any_of = |list: &[String], value: &str| list.iter().any(|x| x == value);
        Ok(match filter {
            Filter::Everyone(b) => *b,
            Filter::All(list) => {
                for f in list {
                    if !self.matches(f)? {
                        return Ok(false);
                    }
                }
                true
            }
            Filter::Any(list) => {
                for f in list {
                    if self.matches(f)? {
                        return Ok(true);
                    }
                }
                false
            }
            Filter::Not(f) => !self.matches(f)?,
            Filter::Specialty(list) => p
                .specialty
                .as_ref()
                .is_some_and(|s| any_of(list, &s.code) || any_of(list, &s.label)),
            Filter::Tag(list) => p.tags.iter().any(|t| any_of(list, t)),
            Filter::Institution(list) => p.institution.as_deref().is_some_and(|i| any_of(list, i)),
            Filter::Language(list) => p.language.as_deref().is_some_and(|l| {
                list.iter().any(|x| {
                    l.eq_ignore_ascii_case(x)
                        || (l.len() > x.len()
                            && l[..x.len()].eq_ignore_ascii_case(x)
                            && l.as_bytes()[x.len()] == b'-')
                })
            }),
            Filter::Stage(list) => {
                let stage = self.stage()?;
                match stage {
                    Some(s) => any_of(list, &s),
                    None => any_of(list, "none"),
                }
            }
            Filter::Rep(list) => p.assigned_reps.iter().any(|r| any_of(list, r)),
            Filter::Feature(test) => feature_matches(test, self.features, self.now),
            Filter::Event(test) => {
                let now = self.now;
                let events = self.events()?;
                event_matches(test, events, now)
            }
            Filter::Seen(version) => self.features.content_seen.contains(&version.0),
        })
    }
}

fn feature_matches(test: &FeatureTest, f: &EngagementStats, now: UnixMillis) -> bool {
    let stats: Vec<_> = f
        .channels
        .iter()
        .filter(|c| test.channel.is_none_or(|ch| ch == c.channel))
        .collect();
    let value: Option<f64> = match test.metric {
        Metric::Touches7d => Some(match test.channel {
            None => f64::from(f.touches_7d),
            Some(_) => stats.iter().map(|c| f64::from(c.touches_7d)).sum(),
        }),
        Metric::Touches30d => Some(match test.channel {
            None => f64::from(f.touches_30d),
            Some(_) => stats.iter().map(|c| f64::from(c.touches_30d)).sum(),
        }),
        Metric::Sends => Some(stats.iter().map(|c| f64::from(c.sends)).sum()),
        Metric::Opens => Some(stats.iter().map(|c| f64::from(c.opens)).sum()),
        Metric::Clicks => Some(stats.iter().map(|c| f64::from(c.clicks)).sum()),
        Metric::Attended => Some(stats.iter().map(|c| f64::from(c.attended)).sum()),
        Metric::DaysSinceTouch => stats
            .iter()
            .filter_map(|c| c.last_touch_at)
            .max()
            // last_touch_at is in seconds.
            .map(|secs| ((now / 1000 - secs) / 86_400) as f64),
    };
    match value {
        Some(v) => test.min.is_none_or(|m| v >= m) && test.max.is_none_or(|m| v <= m),
        // Never touched: as if infinitely long ago.
        None => test.max.is_none(),
    }
}

fn event_matches(test: &EventTest, events: &[Event], now: UnixMillis) -> bool {
    let since = now - test.within.millis;
    let n = events
        .iter()
        .filter(|e| e.event.event_type == test.kind && e.event.occurred_at >= since)
        .count();
    n >= test.min as usize
}

/// Whether the HCP is in the holdout: a seeded, stable draw per HCP and
/// campaign (sha256 of seed, campaign and HCP id, read as a fraction).
pub fn in_holdout(seed: &str, campaign: &str, hcp: &str, share: f64) -> bool {
    if share <= 0.0 {
        return false;
    }
    let mut h = Sha256::new();
    for part in [seed, campaign, hcp] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // 53 bits: exact in an f64.
    let x = (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64;
    x < share
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holdout_draw_is_stable_and_close_to_its_share() {
        let n = 20_000;
        let held = (0..n)
            .filter(|i| in_holdout("s", "c", &format!("hcp-{i}"), 0.1))
            .count();
        let share = held as f64 / f64::from(n);
        assert!((0.09..0.11).contains(&share), "{share}");
        assert_eq!(
            in_holdout("s", "c", "hcp-7", 0.1),
            in_holdout("s", "c", "hcp-7", 0.1)
        );
        // Another seed draws another holdout.
        let moved = (0..1000)
            .filter(|i| {
                let h = format!("hcp-{i}");
                in_holdout("s", "c", &h, 0.1) != in_holdout("t", "c", &h, 0.1)
            })
            .count();
        assert!(moved > 50, "{moved}");
        assert!(!in_holdout("s", "c", "x", 0.0));
    }
}
