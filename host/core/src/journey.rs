//! Journey stages per HCP per brand: a configurable ladder, and rules that
//! move an HCP up it when events arrive.
//!
//! A rule counts the events of one type (optionally with one topic) that an
//! HCP produced for a brand; when the count reaches `min_count` the HCP moves
//! to the rule's stage, if that is higher than the current one. Rules never
//! move an HCP down: that takes an explicit, audited decision.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::{EventType, NewEvent, UnixMillis};

/// The event attribute naming the brand an event is about.
pub const BRAND_ATTRIBUTE: &str = "brand";
/// The event attribute naming the content topic (e.g. `efficacy`).
pub const TOPIC_ATTRIBUTE: &str = "topic";

/// One rule: `min_count` events of `event_type` (with `topic`, if given) for
/// a brand move the HCP to `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JourneyRule {
    /// Stable id, named in the transition history.
    pub id: String,
    /// The event type counted.
    pub event_type: EventType,
    /// The topic the event must carry, if any.
    #[serde(default)]
    pub topic: Option<String>,
    /// How many such events it takes.
    pub min_count: u32,
    /// The stage reached.
    pub to: String,
}

impl JourneyRule {
    /// Whether `event` counts for this rule.
    pub fn matches(&self, event: &NewEvent) -> bool {
        event.event_type == self.event_type
            && self.topic.as_deref().is_none_or(|t| {
                event
                    .attributes
                    .get(TOPIC_ATTRIBUTE)
                    .and_then(Value::as_str)
                    == Some(t)
            })
    }
}

/// The ladder and the rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JourneyConfig {
    /// Stages, lowest first.
    pub ladder: Vec<String>,
    /// Rules, checked in order.
    #[serde(default)]
    pub rules: Vec<JourneyRule>,
}

impl Default for JourneyConfig {
    /// The default ladder, and two clicks on efficacy content -> interest,
    /// one webinar attended -> consideration.
    fn default() -> Self {
        JourneyConfig {
            ladder: [
                "awareness",
                "interest",
                "consideration",
                "adoption",
                "advocacy",
            ]
            .map(str::to_owned)
            .to_vec(),
            rules: vec![
                JourneyRule {
                    id: "efficacy-clicks".into(),
                    event_type: EventType::EmailClicked,
                    topic: Some("efficacy".into()),
                    min_count: 2,
                    to: "interest".into(),
                },
                JourneyRule {
                    id: "webinar-attended".into(),
                    event_type: EventType::WebinarAttended,
                    topic: None,
                    min_count: 1,
                    to: "consideration".into(),
                },
            ],
        }
    }
}

/// A journey configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JourneyConfigError {
    /// The ladder is empty or repeats a stage.
    #[error("the journey ladder must list at least one stage, each once")]
    BadLadder,
    /// A rule leads to a stage not on the ladder.
    #[error("journey rule `{rule}` leads to stage `{stage}`, which is not on the ladder")]
    UnknownStage {
        /// The rule.
        rule: String,
        /// Its stage.
        stage: String,
    },
    /// Two rules share an id, or a rule needs no event.
    #[error("journey rule `{0}` is repeated or has a min_count of 0")]
    BadRule(String),
}

impl JourneyConfig {
    /// Checks that every rule leads somewhere on the ladder.
    ///
    /// # Errors
    ///
    /// The first problem found.
    pub fn validate(&self) -> Result<(), JourneyConfigError> {
        let stages: BTreeSet<&str> = self.ladder.iter().map(String::as_str).collect();
        if stages.is_empty() || stages.len() != self.ladder.len() {
            return Err(JourneyConfigError::BadLadder);
        }
        let mut ids = BTreeSet::new();
        for r in &self.rules {
            if !ids.insert(r.id.as_str()) || r.min_count == 0 {
                return Err(JourneyConfigError::BadRule(r.id.clone()));
            }
            if !stages.contains(r.to.as_str()) {
                return Err(JourneyConfigError::UnknownStage {
                    rule: r.id.clone(),
                    stage: r.to.clone(),
                });
            }
        }
        Ok(())
    }

    /// The position of `stage` on the ladder.
    pub fn rank(&self, stage: &str) -> Option<usize> {
        self.ladder.iter().position(|s| s == stage)
    }
}

/// One move of an HCP on a brand's ladder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JourneyTransition {
    /// The brand.
    pub brand: String,
    /// The stage before (none for the first).
    pub from: Option<String>,
    /// The stage after.
    pub to: String,
    /// What moved it: a rule id, or `manual`.
    pub cause: String,
    /// The event that completed the rule, if any.
    pub event: Option<String>,
    /// When.
    pub at: UnixMillis,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_configuration_is_valid() {
        assert_eq!(JourneyConfig::default().validate(), Ok(()));
    }

    #[test]
    fn a_rule_to_a_stage_off_the_ladder_is_refused() {
        let mut c = JourneyConfig::default();
        c.rules[0].to = "loyalty".into();
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "journey rule `efficacy-clicks` leads to stage `loyalty`, which is not on the ladder"
        );
    }
}
