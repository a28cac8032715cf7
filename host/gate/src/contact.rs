//! Consent and contact pressure: may this HCP be contacted on this channel,
//! for this purpose, now?

use std::time::Duration;

use omnigate_core::consent::{ConsentRecord, ConsentStatus};
use omnigate_core::event::UnixMillis;
use omnigate_core::hcp::HcpProfile;
use omnigate_core::ledger::{Contact, Outcome, RuleOutcome};
use omnigate_core::store::StoreResult;
use omnigate_core::{Channel, EngagementStats, Store};
use omnigate_policy::model::{CapKind, ConsentLevel, PolicySet, RuleMeta, Severity};
use serde_json::json;

use crate::request::Subject;

/// The built-in rule behind invariant 3: no dispatch without a current
/// opt-in for the HCP x channel x purpose x market (x product).
pub const CONSENT_OPT_IN: &str = "consent-opt-in";

/// Channels whose contacts the ledger knows (omnigate sends them). Contacts
/// on the others (field visits, calls, meetings, webinars) are counted from
/// engagement events.
pub fn counted_from_ledger(channel: Channel) -> bool {
    matches!(channel, Channel::Email | Channel::Sms | Channel::Wechat)
}

fn outcome_of(meta: &RuleMeta, ok: bool) -> Outcome {
    match (ok, meta.severity) {
        (true, _) => Outcome::Pass,
        (false, Severity::Warn) => Outcome::Warn,
        (false, Severity::Block) => Outcome::Block,
    }
}

fn rule(
    meta: &RuleMeta,
    kind: &str,
    ok: bool,
    reason: String,
    evidence: serde_json::Value,
) -> RuleOutcome {
    RuleOutcome {
        rule: meta.id.clone(),
        kind: kind.to_owned(),
        outcome: outcome_of(meta, ok),
        reason,
        reference: meta.reference.clone(),
        evidence,
    }
}

fn day(ms: UnixMillis) -> String {
    let Ok(t) = jiff::Timestamp::from_millisecond(ms) else {
        return ms.to_string();
    };
    let d = jiff::tz::Offset::UTC.to_datetime(t);
    if (0..=9999).contains(&d.year()) {
        // What the strftime below writes, without parsing its format on
        // every decision.
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            d.year(),
            d.month(),
            d.day(),
            d.hour(),
            d.minute()
        )
    } else {
        t.strftime("%Y-%m-%d %H:%M UTC").to_string()
    }
}

fn human(d: Duration) -> String {
    let h = d.as_secs() / 3600;
    if h >= 24 && h.is_multiple_of(24) {
        format!("{} days", h / 24)
    } else if h > 0 {
        format!("{h} hours")
    } else {
        format!("{} minutes", d.as_secs() / 60)
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Evaluates consent: the built-in opt-in rule, then every policy rule that
/// applies. Returns the outcomes and the consent record relied on.
pub(crate) fn consent(
    store: &dyn Store,
    set: &PolicySet,
    s: &Subject<'_>,
    deciding: Option<ConsentRecord>,
) -> StoreResult<(Vec<RuleOutcome>, Option<ConsentRecord>)> {
    let mut out = Vec::new();
    let what = format!(
        "{} on {} in {}",
        s.purpose.as_str(),
        s.channel.as_str(),
        s.market
    );
    let evidence = |r: &ConsentRecord| {
        json!({
            "consent_id": r.id.0,
            "status": r.consent.status,
            "source": r.consent.source,
            "recorded_at": r.consent.recorded_at,
            "recorded_by": r.consent.recorded_by,
            "product": r.consent.scope.product,
        })
    };
    let opted_in = deciding
        .as_ref()
        .filter(|r| r.consent.status == ConsentStatus::OptIn);
    // Built once: every rule that relies on the record shows the same.
    let deciding_evidence = deciding.as_ref().map(evidence).unwrap_or_default();
    out.push(RuleOutcome {
        rule: CONSENT_OPT_IN.into(),
        kind: "consent".into(),
        outcome: if opted_in.is_some() {
            Outcome::Pass
        } else {
            Outcome::Block
        },
        reason: match &deciding {
            Some(r) if r.consent.status == ConsentStatus::OptIn => {
                format!(
                    "the HCP opted in to {what} on {}",
                    day(r.consent.recorded_at)
                )
            }
            Some(r) => format!(
                "the HCP's consent to {what} is {} since {} ({})",
                r.consent.status.as_str(),
                day(r.consent.recorded_at),
                r.consent.source.as_str()
            ),
            None => format!("no consent to {what} is on record"),
        },
        reference: None,
        evidence: deciding_evidence.clone(),
    });
    let applying = set.consent.iter().filter(|r| {
        r.scope
            .markets
            .as_ref()
            .is_none_or(|m| m.iter().any(|x| x == s.market))
            && r.scope
                .channels
                .as_ref()
                .is_none_or(|c| c.contains(&s.channel))
            && r.purposes.as_ref().is_none_or(|p| p.contains(&s.purpose))
    });
    let mut history: Option<Vec<ConsentRecord>> = None;
    for r in applying {
        let Some(rec) = opted_in else {
            out.push(rule(
                &r.meta,
                "consent",
                false,
                format!("{}: no current opt-in", r.meta.reason),
                json!({}),
            ));
            continue;
        };
        if r.requires == ConsentLevel::DoubleOptIn {
            let hist = match &history {
                Some(h) => h,
                None => history.insert(store.consent_history(s.hcp)?),
            };
            let sc = &rec.consent.scope;
            let confirmed = hist.iter().any(|h| {
                h.consent.status == ConsentStatus::DoubleOptInPending
                    && h.consent.scope.channel == sc.channel
                    && h.consent.scope.purpose == sc.purpose
                    && h.consent.scope.market == sc.market
                    && h.consent.scope.product == sc.product
                    && (h.consent.recorded_at, h.id) < (rec.consent.recorded_at, rec.id)
            });
            out.push(rule(
                &r.meta,
                "consent",
                confirmed,
                if confirmed {
                    "the opt-in was confirmed (double opt-in)".into()
                } else {
                    format!("{}: the opt-in was never confirmed", r.meta.reason)
                },
                deciding_evidence.clone(),
            ));
        }
        if r.per_product {
            let named = rec.consent.scope.product.is_some()
                && rec.consent.scope.product.as_deref() == s.product;
            out.push(rule(
                &r.meta,
                "consent",
                named,
                if named {
                    "the consent names the product".into()
                } else {
                    format!(
                        "{}: the opt-in does not name {}",
                        r.meta.reason,
                        s.product.unwrap_or("the product")
                    )
                },
                deciding_evidence.clone(),
            ));
        }
        if let Some(max_age) = r.max_age {
            let fresh = s.at.saturating_sub(rec.consent.recorded_at) <= ms(max_age);
            out.push(rule(
                &r.meta,
                "consent",
                fresh,
                if fresh {
                    format!("the opt-in is less than {} old", human(max_age))
                } else {
                    format!(
                        "{}: the opt-in from {} is older than {}",
                        r.meta.reason,
                        day(rec.consent.recorded_at),
                        human(max_age)
                    )
                },
                deciding_evidence.clone(),
            ));
        }
        if r.requires == ConsentLevel::OptIn && !r.per_product && r.max_age.is_none() {
            out.push(rule(
                &r.meta,
                "consent",
                true,
                "a current opt-in is on record".into(),
                deciding_evidence.clone(),
            ));
        }
    }
    Ok((out, opted_in.cloned()))
}

/// The longest look-back any cap needs.
pub(crate) fn lookback(set: &PolicySet) -> Duration {
    set.caps
        .iter()
        .map(|c| match &c.kind {
            CapKind::Frequency { window, .. } | CapKind::Campaign { window, .. } => *window,
            CapKind::MinGap { gap } => *gap,
            CapKind::QuietHours { .. } => Duration::ZERO,
        })
        .max()
        .unwrap_or(Duration::ZERO)
}

/// Touches on `channel` from events within `window` ending at the reading,
/// at day granularity: 7-day counts for windows up to 7 days, 30-day counts
/// beyond (a superset, so a cap errs on the side of blocking).
fn event_touches(features: &EngagementStats, channel: Channel, window: Duration) -> u32 {
    features
        .channels
        .iter()
        .filter(|c| c.channel == channel)
        .map(|c| {
            if window <= Duration::from_secs(7 * 86_400) {
                c.touches_7d
            } else {
                c.touches_30d
            }
        })
        .sum()
}

/// Evaluates every cap that applies to the dispatch.
pub(crate) fn caps(
    set: &PolicySet,
    s: &Subject<'_>,
    profile: &HcpProfile,
    contacts: &[Contact],
    features: &EngagementStats,
) -> Vec<RuleOutcome> {
    let mut out = Vec::new();
    for cap in &set.caps {
        if cap
            .markets
            .as_ref()
            .is_some_and(|m| !m.iter().any(|x| x == s.market))
        {
            continue;
        }
        if cap
            .channels
            .as_ref()
            .is_some_and(|c| !c.contains(&s.channel))
        {
            continue;
        }
        let on = |ch: Channel| cap.channels.as_ref().is_none_or(|c| c.contains(&ch));
        let all_channels = || Channel::ALL.into_iter().filter(|c| on(*c));
        match &cap.kind {
            CapKind::Frequency { max, window } | CapKind::Campaign { max, window } => {
                let campaign_cap = matches!(cap.kind, CapKind::Campaign { .. });
                if campaign_cap && s.campaign.is_none() {
                    continue;
                }
                let since = s.at.saturating_sub(ms(*window));
                let from_ledger = contacts
                    .iter()
                    .filter(|c| c.at > since && c.at <= s.at && on(c.channel))
                    .filter(|c| !campaign_cap || c.campaign.as_deref() == s.campaign)
                    .count();
                let from_events: u32 = if campaign_cap {
                    0
                } else {
                    all_channels()
                        .filter(|c| !counted_from_ledger(*c))
                        .map(|c| event_touches(features, c, *window))
                        .sum()
                };
                let counted = u32::try_from(from_ledger)
                    .unwrap_or(u32::MAX)
                    .saturating_add(from_events);
                let ok = counted < *max;
                let scope = if campaign_cap {
                    "from this campaign "
                } else {
                    ""
                };
                out.push(rule(
                    &cap.meta,
                    "cap",
                    ok,
                    if ok {
                        format!(
                            "{counted} of {max} contacts {scope}in {} used",
                            human(*window)
                        )
                    } else {
                        format!(
                            "{}: already {counted} contacts {scope}in the last {} (limit {max})",
                            cap.meta.reason,
                            human(*window)
                        )
                    },
                    json!({
                        "counted": counted, "max": max, "window_hours": window.as_secs() / 3600,
                        "from_ledger": from_ledger, "from_events": from_events,
                        "campaign": if campaign_cap { s.campaign } else { None },
                    }),
                ));
            }
            CapKind::MinGap { gap } => {
                let g = ms(*gap);
                let ledger_near = contacts
                    .iter()
                    .filter(|c| on(c.channel) && (c.at - s.at).abs() < g)
                    .map(|c| c.at)
                    .max();
                let event_last = features
                    .channels
                    .iter()
                    .filter(|c| on(c.channel) && !counted_from_ledger(c.channel))
                    // Features give the last touch in Unix seconds.
                    .filter_map(|c| c.last_touch_at.map(|secs| secs.saturating_mul(1000)))
                    .filter(|t| (s.at - t).abs() < g)
                    .max();
                let near = ledger_near.max(event_last);
                let ok = near.is_none();
                out.push(rule(
                    &cap.meta,
                    "cap",
                    ok,
                    match near {
                        None => format!("no other contact within {}", human(*gap)),
                        Some(t) => format!(
                            "{}: another contact at {} is less than {} away",
                            cap.meta.reason,
                            day(t),
                            human(*gap)
                        ),
                    },
                    json!({ "gap_hours": gap.as_secs() / 3600, "nearest_contact_at": near }),
                ));
            }
            CapKind::QuietHours { start, end } => {
                let tz_name = profile.time_zone.as_deref();
                let local = tz_name.and_then(|n| {
                    let tz = jiff::tz::TimeZone::get(n).ok()?;
                    let ts = jiff::Timestamp::from_millisecond(s.at).ok()?;
                    Some(ts.to_zoned_datetime(tz))
                });
                let Some(local) = local else {
                    out.push(rule(
                        &cap.meta,
                        "cap",
                        false,
                        match tz_name {
                            None => "the HCP has no time zone on record, so quiet hours cannot be checked".into(),
                            Some(n) => format!("the HCP's time zone `{n}` is unknown, so quiet hours cannot be checked"),
                        },
                        json!({ "time_zone": tz_name }),
                    ));
                    continue;
                };
                let minute =
                    u16::try_from(i32::from(local.hour()) * 60 + i32::from(local.minute()))
                        .unwrap_or(0);
                let quiet = if start <= end {
                    minute >= *start && minute < *end
                } else {
                    minute >= *start || minute < *end
                };
                let hhmm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
                // When quiet: the end of the quiet period, for whoever wants
                // to send then instead (journeys defer to it).
                let resume_at = quiet.then(|| quiet_end(&local, *end)).flatten();
                out.push(rule(
                    &cap.meta,
                    "cap",
                    !quiet,
                    if quiet {
                        format!(
                            "{}: it is {} for the HCP ({}), inside quiet hours {}-{}",
                            cap.meta.reason,
                            hhmm(minute),
                            local.time_zone().iana_name().unwrap_or("local"),
                            hhmm(*start),
                            hhmm(*end)
                        )
                    } else {
                        format!("{} local time is outside quiet hours", hhmm(minute))
                    },
                    match resume_at {
                        Some(at) => json!({ "local_time": hhmm(minute), "time_zone": tz_name, "quiet_start": hhmm(*start), "quiet_end": hhmm(*end), "resume_at": at }),
                        None => json!({ "local_time": hhmm(minute), "time_zone": tz_name, "quiet_start": hhmm(*start), "quiet_end": hhmm(*end) }),
                    },
                ));
            }
        }
    }
    out
}

/// The next time the local clock of `local` reads `end` (minutes after
/// midnight), in Unix milliseconds: today's if it is still ahead, else
/// tomorrow's (a gap or fold of a DST change resolves as `jiff` does).
fn quiet_end(local: &jiff::ZonedDateTime, end: u16) -> Option<i64> {
    let (h, m) = (i8::try_from(end / 60).ok()?, i8::try_from(end % 60).ok()?);
    let tz = local.time_zone().clone();
    let today = local
        .date()
        .at(h, m, 0, 0)
        .to_zoned_datetime(tz.clone())
        .ok()?;
    let next = if today.timestamp() > local.timestamp() {
        today
    } else {
        local
            .date()
            .tomorrow()
            .ok()?
            .at(h, m, 0, 0)
            .to_zoned_datetime(tz)
            .ok()?
    };
    Some(next.timestamp().as_millisecond())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_hours_end_at_the_next_local_end_time() {
        let tz = jiff::tz::TimeZone::get("America/New_York").unwrap();
        let at = |s: &str| {
            s.parse::<jiff::civil::DateTime>()
                .unwrap()
                .to_zoned_datetime(tz.clone())
                .unwrap()
        };
        let ms = |s: &str| at(s).timestamp().as_millisecond();
        // Late evening: the next morning; after midnight: the same morning.
        assert_eq!(
            quiet_end(&at("2026-03-02T23:30"), 8 * 60),
            Some(ms("2026-03-03T08:00"))
        );
        assert_eq!(
            quiet_end(&at("2026-03-03T02:15"), 8 * 60),
            Some(ms("2026-03-03T08:00"))
        );
        // Across the spring-forward night: 08:00 local is 12:00 UTC.
        let end = quiet_end(&at("2026-03-07T22:00"), 8 * 60).unwrap();
        assert_eq!(end, ms("2026-03-08T08:00"));
        assert_eq!((end / 3_600_000) % 24, 12);
    }

    #[test]
    fn day_reads_as_strftime_would_write_it() {
        for ms in [
            0,
            1_795_550_400_000,
            1_795_550_459_999,
            -86_400_000,
            253_402_207_200_000,
            -377_705_023_201_000,
        ] {
            let t = jiff::Timestamp::from_millisecond(ms).unwrap();
            assert_eq!(
                day(ms),
                t.strftime("%Y-%m-%d %H:%M UTC").to_string(),
                "{ms}"
            );
        }
    }
}
