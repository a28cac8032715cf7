//! The campaign report: what a marketer asks first (who got what, who was
//! blocked or suppressed and why), per channel.

use std::collections::BTreeMap;

use omnigate_core::campaign::{CampaignId, MemberOutcome, MemberTimeline};
use omnigate_core::event::{UnixMillis, now_millis};
use omnigate_core::journey::JourneyTransition;
use omnigate_core::suggestion::SuggestionFilter;
use omnigate_core::{Channel, Store};
use serde::Serialize;

use crate::campaign::CampaignError;

/// Per channel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ChannelReport {
    /// Members whose dispatch went out on it.
    pub dispatched: u64,
    /// Gate decisions on it that blocked.
    pub blocked: u64,
    /// Members whose dispatch on it failed.
    pub failed: u64,
}

/// A campaign's report. Stable JSON (`omnigate report --format json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The campaign id.
    pub campaign: String,
    /// Its name.
    pub name: String,
    /// The product.
    pub product: String,
    /// The market.
    pub market: String,
    /// Its state.
    pub state: String,
    /// Audience size, holdout included.
    pub audience: u64,
    /// Holdout size.
    pub holdout: u64,
    /// Counts by outcome. `dispatched`, `suppressed`, `failed`, `holdout`,
    /// `pending`, `unreached` count members (each member has one);
    /// `blocked` counts gate decisions that blocked (a member whose first
    /// choice was blocked may still be dispatched on a fallback).
    pub outcomes: BTreeMap<String, u64>,
    /// Blocking decisions by rule id (a decision counts once for each rule
    /// that blocked it).
    pub blocked_by_rule: BTreeMap<String, u64>,
    /// Suppressed members by rule id (a member counts once per rule among
    /// its reasons).
    pub suppressed_by_rule: BTreeMap<String, u64>,
    /// Per channel.
    pub channels: BTreeMap<Channel, ChannelReport>,
    /// Gate decisions in all.
    pub decisions: u64,
    /// Engagement with the campaign's dispatches per channel: event type ->
    /// events.
    pub engagement: BTreeMap<Channel, BTreeMap<String, u64>>,
    /// The same per content version.
    pub content: BTreeMap<String, BTreeMap<String, u64>>,
    /// Rep suggestions by state (`open`, `done`, `dismissed`, `expired`):
    /// the rep follow-up.
    pub suggestions: BTreeMap<String, u64>,
    /// Journey moves of treated members since the audience was resolved,
    /// keyed `from->to` (`none` for no stage yet).
    pub stage_progression: BTreeMap<String, u64>,
    /// Treated vs holdout on the goal metric.
    pub lift: Lift,
    /// Which ordered pairs of touches (rep visit -> e-mail, e-mail -> rep
    /// visit, ...) precede progression on the journey ladder.
    pub sequences: Sequences,
}

/// How the members of one group progressed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SequenceStat {
    /// Members in the group.
    pub hcps: u64,
    /// Of which moved up the product's ladder at or after the group's
    /// defining touch.
    pub progressed: u64,
    /// `progressed / hcps` (0 for an empty group).
    pub rate: f64,
}

impl SequenceStat {
    fn of(hcps: u64, progressed: u64) -> SequenceStat {
        SequenceStat {
            hcps,
            progressed,
            rate: if hcps == 0 {
                0.0
            } else {
                progressed as f64 / hcps as f64
            },
        }
    }
}

/// The per-channel-sequence analysis. Each treated member's touches since
/// the audience was resolved (dispatches that went out, from any campaign
/// or none, and field contacts logged as events: rep visits, calls,
/// hospital meetings, suggestions done), in time order, with consecutive
/// touches on one channel collapsed into one.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Sequences {
    /// The baseline: treated members with at least one touch, and those who
    /// moved up at or after their first touch.
    pub touched: SequenceStat,
    /// Per ordered pair of consecutive channels, keyed `a->b` (`email->rep-visit`):
    /// the members whose touches had that pair, and those who moved up at
    /// or after the pair's second touch (its first occurrence, for a
    /// member who had it more than once).
    pub pairs: BTreeMap<String, SequenceStat>,
}

/// Accumulates [`Sequences`] one member at a time.
#[derive(Default)]
struct SequenceTally {
    touched: (u64, u64),
    pairs: BTreeMap<(Channel, Channel), (u64, u64)>,
}

impl SequenceTally {
    /// Adds one member; `up` says whether a move goes up the ladder.
    fn add(&mut self, t: &MemberTimeline, up: impl Fn(&JourneyTransition) -> bool) {
        let Some(first) = t.touches.first() else {
            return;
        };
        // The last move up: a move at or after a time exists iff it is.
        let last_up: Option<UnixMillis> = t.moves.iter().filter(|m| up(m)).map(|m| m.at).max();
        let after = |at: UnixMillis| last_up.is_some_and(|u| u >= at);
        self.touched.0 += 1;
        self.touched.1 += u64::from(after(first.at));
        // Each pair of this member once, at its first occurrence.
        let mut seen: BTreeMap<(Channel, Channel), UnixMillis> = BTreeMap::new();
        let mut previous = first.channel;
        for touch in t.touches.iter().skip(1) {
            if touch.channel != previous {
                seen.entry((previous, touch.channel)).or_insert(touch.at);
                previous = touch.channel;
            }
        }
        for (pair, at) in seen {
            let n = self.pairs.entry(pair).or_default();
            n.0 += 1;
            n.1 += u64::from(after(at));
        }
    }

    fn finish(self) -> Sequences {
        Sequences {
            touched: SequenceStat::of(self.touched.0, self.touched.1),
            pairs: self
                .pairs
                .into_iter()
                .map(|((a, b), (n, p))| (format!("{a}->{b}"), SequenceStat::of(n, p)))
                .collect(),
        }
    }
}

/// One arm of the comparison.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Arm {
    /// Members in the arm.
    pub hcps: u64,
    /// Of which met the metric.
    pub met: u64,
    /// `met / hcps` (0 for an empty arm).
    pub rate: f64,
}

/// Treated vs holdout.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lift {
    /// What is compared.
    pub metric: String,
    /// Every member not held out (intention to treat: suppressed and failed
    /// members count too).
    pub treated: Arm,
    /// The holdout.
    pub holdout: Arm,
    /// Treated rate minus holdout rate (absolute), when both arms have
    /// members.
    pub difference: Option<f64>,
    /// Its 95% confidence interval (normal approximation for a difference
    /// of two proportions).
    pub ci95: Option<[f64; 2]>,
    /// Whether the interval excludes 0.
    pub significant: bool,
}

impl Lift {
    fn of(metric: &str, treated: Arm, holdout: Arm) -> Lift {
        let (difference, ci95) = if treated.hcps > 0 && holdout.hcps > 0 {
            let (pt, ph) = (treated.rate, holdout.rate);
            let se = (pt * (1.0 - pt) / treated.hcps as f64
                + ph * (1.0 - ph) / holdout.hcps as f64)
                .sqrt();
            let d = pt - ph;
            (Some(d), Some([d - 1.96 * se, d + 1.96 * se]))
        } else {
            (None, None)
        };
        Lift {
            metric: metric.to_owned(),
            significant: ci95.is_some_and(|[lo, hi]| lo > 0.0 || hi < 0.0),
            treated,
            holdout,
            difference,
            ci95,
        }
    }
}

fn arm(hcps: u64, met: u64) -> Arm {
    Arm {
        hcps,
        met,
        rate: if hcps == 0 {
            0.0
        } else {
            met as f64 / hcps as f64
        },
    }
}

/// Builds the report of a campaign.
///
/// # Errors
///
/// Unknown campaign, or the store failed.
pub fn report(store: &dyn Store, id: &CampaignId) -> Result<Report, CampaignError> {
    let record = store
        .campaign(id)?
        .ok_or_else(|| CampaignError::Unknown(id.to_string()))?;
    let counts = store.member_counts(id, now_millis())?;
    let decisions = store.campaign_decisions(id)?;
    let mut outcomes: BTreeMap<String, u64> = MemberOutcome::ALL
        .into_iter()
        .map(|o| {
            (
                o.as_str().to_owned(),
                counts.by_outcome.get(&o).copied().unwrap_or(0),
            )
        })
        .collect();
    outcomes.insert("blocked".into(), decisions.blocked);
    let mut channels: BTreeMap<Channel, ChannelReport> = BTreeMap::new();
    for (c, n) in &counts.dispatched_by_channel {
        channels.entry(*c).or_default().dispatched = *n;
    }
    for (c, n) in &counts.failed_by_channel {
        channels.entry(*c).or_default().failed = *n;
    }
    for (c, n) in &decisions.blocked_by_channel {
        channels.entry(*c).or_default().blocked = *n;
    }
    let def = &record.definition;
    let mut engagement: BTreeMap<Channel, BTreeMap<String, u64>> = BTreeMap::new();
    let mut content: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for e in store.campaign_engagement(id)? {
        *engagement
            .entry(e.channel)
            .or_default()
            .entry(e.event.as_str().to_owned())
            .or_default() += e.events;
        *content
            .entry(e.version.0.clone())
            .or_default()
            .entry(e.event.as_str().to_owned())
            .or_default() += e.events;
    }
    let mut suggestions: BTreeMap<String, u64> = ["open", "done", "dismissed", "expired"]
        .into_iter()
        .map(|k| (k.to_owned(), 0))
        .collect();
    for s in store.suggestions(
        &SuggestionFilter {
            campaign: Some(def.id.to_string()),
            limit: 100_000,
            ..SuggestionFilter::default()
        },
        now_millis(),
    )? {
        *suggestions.entry(s.state.as_str().to_owned()).or_default() += 1;
    }
    // Journey progression, member by member.
    let ladder = def.goal.ladder();
    let rank = |s: &Option<String>| {
        s.as_ref()
            .and_then(|s| ladder.iter().position(|x| x == s))
            .map_or(-1, |p| p as i64)
    };
    let since = record.resolved_at.unwrap_or(record.created_at);
    let mut stage_progression: BTreeMap<String, u64> = BTreeMap::new();
    let (mut treated, mut held) = ((0u64, 0u64), (0u64, 0u64));
    let mut after = None;
    loop {
        let page = store.members(id, None, after.as_ref(), 1000)?;
        let Some(last) = page.last() else { break };
        after = Some(last.hcp.clone());
        for m in &page {
            let moves: Vec<_> = store
                .journey_history(&m.hcp, &def.product)?
                .into_iter()
                .filter(|t| t.at >= since && rank(&Some(t.to.clone())) > rank(&t.from))
                .collect();
            let arm = if m.holdout { &mut held } else { &mut treated };
            arm.0 += 1;
            if !moves.is_empty() {
                arm.1 += 1;
            }
            if !m.holdout {
                for t in moves {
                    let key = format!("{}->{}", t.from.as_deref().unwrap_or("none"), t.to);
                    *stage_progression.entry(key).or_default() += 1;
                }
            }
        }
    }
    let mut tally = SequenceTally::default();
    store.campaign_timelines(id, since, &mut |t| {
        tally.add(&t, |m| rank(&Some(m.to.clone())) > rank(&m.from));
        Ok(())
    })?;
    let sequences = tally.finish();
    let lift = Lift::of(
        "moved at least one stage up the product's journey ladder since the audience was resolved",
        arm(treated.0, treated.1),
        arm(held.0, held.1),
    );
    Ok(Report {
        campaign: def.id.to_string(),
        name: def.name.clone(),
        product: def.product.clone(),
        market: def.market.clone(),
        state: record.state.as_str().to_owned(),
        audience: counts.audience,
        holdout: counts.holdout,
        outcomes,
        blocked_by_rule: decisions.blocked_by_rule,
        suppressed_by_rule: counts.suppressed_by_rule,
        channels,
        decisions: decisions.decisions,
        engagement,
        content,
        suggestions,
        stage_progression,
        lift,
        sequences,
    })
}

impl Report {
    /// The report for a terminal.
    pub fn text(&self) -> String {
        let mut out = format!(
            "campaign {} ({}): {} in {}, {}\n",
            self.campaign, self.name, self.product, self.market, self.state
        );
        out.push_str(&format!(
            "audience {} (holdout {})\n\noutcomes\n",
            self.audience, self.holdout
        ));
        for (k, v) in &self.outcomes {
            out.push_str(&format!("  {k:<11} {v}\n"));
        }
        if !self.blocked_by_rule.is_empty() {
            out.push_str("\nblocked by rule (gate decisions)\n");
            for (k, v) in &self.blocked_by_rule {
                out.push_str(&format!("  {k:<32} {v}\n"));
            }
        }
        if !self.suppressed_by_rule.is_empty() {
            out.push_str("\nsuppressed by reason (members)\n");
            for (k, v) in &self.suppressed_by_rule {
                out.push_str(&format!("  {k:<32} {v}\n"));
            }
        }
        if !self.engagement.is_empty() {
            out.push_str("\nengagement with the campaign's dispatches\n");
            for (c, kinds) in &self.engagement {
                let list: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
                out.push_str(&format!("  {:<14} {}\n", c.as_str(), list.join(", ")));
            }
        }
        out.push_str(&format!(
            "\nrep suggestions: {}\n",
            self.suggestions
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        if !self.stage_progression.is_empty() {
            out.push_str("\njourney moves of treated members\n");
            for (k, n) in &self.stage_progression {
                out.push_str(&format!("  {k:<32} {n}\n"));
            }
        }
        let l = &self.lift;
        out.push_str(&format!(
            "\nlift ({})\n  treated {}/{} ({:.1}%), holdout {}/{} ({:.1}%)\n",
            l.metric,
            l.treated.met,
            l.treated.hcps,
            100.0 * l.treated.rate,
            l.holdout.met,
            l.holdout.hcps,
            100.0 * l.holdout.rate
        ));
        match (l.difference, l.ci95) {
            (Some(d), Some([lo, hi])) => out.push_str(&format!(
                "  difference {:+.1} points, 95% CI [{:+.1}, {:+.1}]{}\n",
                100.0 * d,
                100.0 * lo,
                100.0 * hi,
                if l.significant {
                    ""
                } else {
                    " (not significant)"
                }
            )),
            _ => out.push_str("  no comparison: an arm is empty\n"),
        }
        let s = &self.sequences;
        if s.touched.hcps > 0 {
            out.push_str(
                "\nchannel sequences (treated members; moved up at or after the pair's second touch)\n",
            );
            let line = |k: &str, v: &SequenceStat| {
                format!(
                    "  {k:<32} {:>7} hcps {:>7} moved up ({:.1}%)\n",
                    v.hcps,
                    v.progressed,
                    100.0 * v.rate
                )
            };
            out.push_str(&line("any touch (baseline)", &s.touched));
            for (k, v) in &s.pairs {
                out.push_str(&line(k, v));
            }
        }
        if !self.channels.is_empty() {
            out.push_str("\nper channel      dispatched    blocked     failed\n");
            for (c, r) in &self.channels {
                out.push_str(&format!(
                    "  {:<14} {:>10} {:>10} {:>10}\n",
                    c.as_str(),
                    r.dispatched,
                    r.blocked,
                    r.failed
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use omnigate_core::HcpId;
    use omnigate_core::campaign::Touch;

    use super::*;

    fn timeline(
        touches: &[(Channel, UnixMillis)],
        moves: &[(Option<&str>, &str, UnixMillis)],
    ) -> MemberTimeline {
        MemberTimeline {
            hcp: HcpId::new("h1").unwrap(),
            touches: touches
                .iter()
                .map(|&(channel, at)| Touch { channel, at })
                .collect(),
            moves: moves
                .iter()
                .map(|&(from, to, at)| JourneyTransition {
                    brand: "b".into(),
                    from: from.map(str::to_owned),
                    to: to.into(),
                    cause: "manual".into(),
                    event: None,
                    at,
                })
                .collect(),
        }
    }

    fn up(m: &JourneyTransition) -> bool {
        let rank = |s: Option<&str>| {
            s.and_then(|s| ["a", "b", "c"].iter().position(|x| *x == s))
                .map_or(-1, |p| p as i64)
        };
        rank(Some(&m.to)) > rank(m.from.as_deref())
    }

    #[test]
    fn runs_on_one_channel_collapse_and_each_pair_counts_once_per_member() {
        use Channel::{Email, RepVisit, Webinar};
        let mut t = SequenceTally::default();
        // email email rep email rep: email->rep twice (counted once, at
        // 20), rep->email once (at 30); the move up at 35 follows both.
        t.add(
            &timeline(
                &[
                    (Email, 10),
                    (Email, 15),
                    (RepVisit, 20),
                    (Email, 30),
                    (RepVisit, 40),
                ],
                &[(None, "a", 35)],
            ),
            up,
        );
        // rep -> webinar, then a move down only.
        t.add(
            &timeline(
                &[(RepVisit, 5), (Webinar, 6)],
                &[(None, "c", 1), (Some("c"), "a", 9)],
            ),
            up,
        );
        // Same instant counts as after.
        t.add(
            &timeline(&[(RepVisit, 5), (Email, 7)], &[(None, "b", 7)]),
            up,
        );
        let s = t.finish();
        assert_eq!(s.touched, SequenceStat::of(3, 2));
        let got: Vec<(&str, u64, u64)> = s
            .pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.hcps, v.progressed))
            .collect();
        assert_eq!(
            got,
            vec![
                ("email->rep-visit", 1, 1),
                ("rep-visit->email", 2, 2),
                ("rep-visit->webinar", 1, 0),
            ]
        );
    }
}
