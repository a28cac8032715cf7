//! The journey-stage scoring model, a `scoring-model` plugin.
//!
//! For each candidate (content version x channel) it adds up:
//! - **stage fit**: content written for the HCP's current stage scores
//!   highest, content for the next stage a little less, content for stages
//!   already passed or far ahead much less;
//! - **channel responsiveness**: the HCP's own opens, clicks and attendance
//!   per send on that channel, shrunk towards the audience's rate when the HCP
//!   has little history (so one lucky open is not over-read);
//! - **channel effect**: how often a touch on the channel preceded a stage
//!   progression across the audience;
//! - **fatigue**: a penalty per touch on the same channel in the last 7 days,
//!   and one for content the HCP has already seen.
//!
//! Every score comes with a rationale a rep or marketer can read. The model is
//! pure: it sees only what the host passes, and its manifest grants no
//! contact details and no network.

#[allow(
    missing_docs,
    unsafe_code,
    reason = "generated from the WIT, which is documented"
)]
mod wit {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "omnigate:plugin/scoring-model",
    });
}

use wit::exports::omnigate::plugin::scoring::{
    CandidateAction, ChannelPerformance, Guest, ScoreRequest, ScoredAction,
};
use wit::omnigate::plugin::config;
use wit::omnigate::plugin::types::{Channel, EngagementStats, PluginError, PluginInfo};

/// How many sends of the HCP's own history weigh as much as the audience rate.
const PRIOR_SENDS: f64 = 4.0;

struct StageScorer;

impl Guest for StageScorer {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "stage-scorer".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Ranks content x channel by journey-stage fit, channel responsiveness and contact fatigue".into(),
            channels: Vec::new(),
        }
    }

    fn score(request: ScoreRequest) -> Result<Vec<ScoredAction>, PluginError> {
        let settings = Settings::from_config()?;
        if request.goal.stages.is_empty() {
            return Err(PluginError::InvalidInput(
                "the campaign goal has no journey stages".into(),
            ));
        }
        let stages = &request.goal.stages;
        let current = request
            .hcp
            .journey_stage
            .as_deref()
            .and_then(|s| stages.iter().position(|x| x == s));
        let engagement = request.hcp.engagement.as_ref();
        Ok(request
            .candidates
            .iter()
            .map(|c| {
                score_one(
                    c,
                    stages,
                    current,
                    engagement,
                    &request.population,
                    &settings,
                )
            })
            .collect())
    }
}

struct Settings {
    fatigue_per_touch: f64,
    seen_penalty: f64,
}

impl Settings {
    fn from_config() -> Result<Settings, PluginError> {
        let number = |key: &str, default: f64| -> Result<f64, PluginError> {
            match config::get(key) {
                None => Ok(default),
                Some(v) => v
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && *x >= 0.0)
                    .ok_or_else(|| {
                        PluginError::InvalidInput(format!(
                            "config `{key}` = `{v}` is not a non-negative number"
                        ))
                    }),
            }
        };
        Ok(Settings {
            fatigue_per_touch: number("fatigue_per_touch", 0.15)?,
            seen_penalty: number("seen_penalty", 0.5)?,
        })
    }
}

fn score_one(
    c: &CandidateAction,
    stages: &[String],
    current: Option<usize>,
    engagement: Option<&EngagementStats>,
    population: &[ChannelPerformance],
    settings: &Settings,
) -> ScoredAction {
    let mut reasons = Vec::new();

    let target = c
        .stage
        .as_deref()
        .and_then(|s| stages.iter().position(|x| x == s));
    let fit = match (current, target) {
        (Some(cur), Some(t)) if t == cur => {
            reasons.push(format!("written for the HCP's stage `{}`", stages[cur]));
            1.0
        }
        (Some(cur), Some(t)) if t == cur + 1 => {
            reasons.push(format!(
                "leads from `{}` to the next stage `{}`",
                stages[cur], stages[t]
            ));
            0.8
        }
        (Some(cur), Some(t)) if t < cur => {
            reasons.push(format!(
                "written for `{}`, a stage the HCP has passed",
                stages[t]
            ));
            0.2
        }
        (Some(cur), Some(t)) => {
            reasons.push(format!(
                "written for `{}`, {} stages ahead of the HCP",
                stages[t],
                t - cur
            ));
            0.3
        }
        (None, _) => {
            reasons.push("HCP stage unknown".into());
            0.5
        }
        (Some(_), None) => {
            reasons.push("content not tied to a stage".into());
            0.5
        }
    };

    let perf = population.iter().find(|p| p.channel == c.channel);
    let audience_rate = perf.map_or(0.1, |p| rate(p.opens + p.clicks, p.sends));
    let own = engagement.and_then(|e| e.channels.iter().find(|s| s.channel == c.channel));
    let responsiveness = match own {
        Some(s) if s.sends > 0 => {
            let responses = f64::from(s.opens + s.clicks + s.attended);
            let shrunk =
                (responses + PRIOR_SENDS * audience_rate) / (f64::from(s.sends) + PRIOR_SENDS);
            reasons.push(format!(
                "responds on {} {} of {} times (audience {:.0}%)",
                channel_name(c.channel),
                s.opens + s.clicks + s.attended,
                s.sends,
                audience_rate * 100.0
            ));
            shrunk
        }
        _ => audience_rate,
    };
    let effect = perf.map_or(0.0, |p| rate(p.progressions, p.sends));
    if effect > 0.0 {
        reasons.push(format!(
            "{:.1}% of {} touches preceded a stage move",
            effect * 100.0,
            channel_name(c.channel)
        ));
    }

    let recent = own.map_or(0, |s| s.touches_7d);
    let fatigue = settings.fatigue_per_touch * f64::from(recent);
    if recent > 0 {
        reasons.push(format!(
            "{recent} {} touches in the last 7 days",
            channel_name(c.channel)
        ));
    }
    let seen = engagement.is_some_and(|e| e.content_seen.contains(&c.content_version_id));
    if seen {
        reasons.push("already seen".into());
    }

    let score = fit + responsiveness.min(1.0) + 2.0 * effect.min(0.5)
        - fatigue
        - if seen { settings.seen_penalty } else { 0.0 };
    ScoredAction {
        action_id: c.action_id.clone(),
        score,
        rationale: reasons.join("; "),
    }
}

fn rate(hits: u64, sends: u64) -> f64 {
    if sends == 0 {
        0.0
    } else {
        hits as f64 / sends as f64
    }
}

fn channel_name(c: Channel) -> &'static str {
    match c {
        Channel::Email => "e-mail",
        Channel::Sms => "SMS",
        Channel::Wechat => "WeChat",
        Channel::RepVisit => "rep visit",
        Channel::RemoteCall => "remote call",
        Channel::PhoneCall => "phone call",
        Channel::Webinar => "webinar",
        Channel::Congress => "congress",
        Channel::HospitalMeeting => "hospital meeting",
        Channel::Web => "web",
    }
}

#[allow(unsafe_code, reason = "the export glue that wit-bindgen generates")]
mod export {
    use super::StageScorer;
    crate::wit::export!(StageScorer with_types_in crate::wit);
}
