//! Dispatch fixtures: policy test cases that run the whole gate (approval,
//! consent, caps, quiet hours, content rules) on a fresh store built from
//! the case, so compliance officers can test consent and cap rules the way
//! they test claim rules. Files: `policies/tests/dispatch/*.toml`.
//!
//! ```toml
//! [defaults]
//! market = "US"
//! channel = "email"
//! purpose = "promotional"
//! product = "cardiozen"
//! time_zone = "America/New_York"
//! at = "2026-11-24T15:00:00-05:00"      # the send time
//! text = "..."                          # the approved text (`subject` too)
//!
//! [[case]]
//! name = "an opted-out HCP is not e-mailed"
//! consent = [{ channel = "email", status = "opt-in", at = "2026-10-01T00:00:00Z" },
//!            { channel = "email", status = "opt-out", at = "2026-11-01T00:00:00Z" }]
//! contacts = [{ channel = "email", at = "2026-11-22T10:00:00Z" }]   # dispatches in the ledger
//! touches = [{ type = "rep-visit", at = "2026-11-20T10:00:00Z" }]   # engagement events
//! expect = "block"
//! rules = ["consent-opt-in", "us-email-optin"]                      # blocking and warning rules
//! ```
//!
//! Every key of `[defaults]` can be set per case. `consent` entries may
//! also name `purpose`, `market`, `product` and `source`; `contacts` a
//! `campaign`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use omnigate_core::consent::{ConsentScope, ConsentSource, ConsentStatus, NewConsent, Purpose};
use omnigate_core::content::{Audience, ContentBody, ContentMetadata, NewPreScreen, ReviewRole};
use omnigate_core::event::{EventType, NewEvent};
use omnigate_core::ledger::{DecisionRecord, NewDispatch, Outcome, Verdict};
use omnigate_core::template::PersonalField;
use omnigate_core::{Channel, HcpId, HcpProfile, Store};
use omnigate_policy::{CaseOutcome, PolicyHandle, Verdict as PVerdict};
use serde::Deserialize;

use crate::{DispatchRequest, Gate};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    market: Option<String>,
    channel: Option<Channel>,
    purpose: Option<Purpose>,
    product: Option<String>,
    time_zone: Option<String>,
    at: Option<String>,
    subject: Option<String>,
    text: Option<String>,
    campaign: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsentEntry {
    channel: Channel,
    status: ConsentStatus,
    at: String,
    purpose: Option<Purpose>,
    market: Option<String>,
    product: Option<String>,
    source: Option<ConsentSource>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactEntry {
    channel: Channel,
    at: String,
    campaign: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TouchEntry {
    #[serde(rename = "type")]
    event_type: String,
    at: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    #[serde(flatten)]
    settings: Settings,
    #[serde(default)]
    consent: Vec<ConsentEntry>,
    #[serde(default)]
    contacts: Vec<ContactEntry>,
    #[serde(default)]
    touches: Vec<TouchEntry>,
    expect: String,
    #[serde(default)]
    rules: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    #[serde(default)]
    defaults: Settings,
    #[serde(default, rename = "case")]
    cases: Vec<Case>,
}

/// Makes an empty store in a directory (the caller picks the backend).
pub type StoreFactory<'a> = dyn Fn(&Path) -> Result<Arc<dyn Store>, String> + 'a;

fn time(s: &str, what: &str) -> Result<i64, String> {
    s.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|e| {
            format!("{what} `{s}` is not an RFC 3339 time like 2026-11-24T15:00:00-05:00: {e}")
        })
}

/// Runs every `*.toml` fixture in `dir` (sorted), each case on a fresh
/// store made by `make_store` in its own temporary directory.
///
/// # Errors
///
/// A file that cannot be read or parsed (named, with the parser's line and
/// column). A case that cannot be set up is a failed case with its reason.
pub fn run_dispatch_cases(
    policy: &Arc<PolicyHandle>,
    dir: &Path,
    make_store: &StoreFactory<'_>,
) -> Result<Vec<CaseOutcome>, String> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read `{}`: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let shown = path.display().to_string();
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("cannot read `{shown}`: {e}"))?;
        let file: CaseFile = toml::from_str(&text).map_err(|e| format!("{shown}: {e}"))?;
        for case in &file.cases {
            let scratch =
                tempfile::tempdir().map_err(|e| format!("cannot make a scratch directory: {e}"))?;
            let (expected, rules) = (
                if case.expect == "allow" {
                    PVerdict::Allow
                } else {
                    PVerdict::Block
                },
                {
                    let mut r = case.rules.clone();
                    r.sort();
                    r.dedup();
                    r
                },
            );
            let result = if case.expect != "allow" && case.expect != "block" {
                Err(format!(
                    "`expect` must be `allow` or `block`, not `{}`",
                    case.expect
                ))
            } else {
                make_store(scratch.path())
                    .and_then(|store| run_case(policy, store, &file.defaults, case))
            };
            out.push(match result {
                Ok(d) => {
                    let mut actual: Vec<String> = d
                        .rules
                        .iter()
                        .filter(|r| r.outcome != Outcome::Pass)
                        .map(|r| r.rule.clone())
                        .collect();
                    actual.sort();
                    actual.dedup();
                    let verdict = match d.verdict {
                        Verdict::Allow => PVerdict::Allow,
                        Verdict::Block => PVerdict::Block,
                    };
                    CaseOutcome {
                        file: shown.clone(),
                        name: case.name.clone(),
                        passed: verdict == expected && actual == rules,
                        expected,
                        actual: verdict,
                        expected_rules: rules,
                        actual_rules: actual,
                        error: None,
                    }
                }
                Err(e) => CaseOutcome {
                    file: shown.clone(),
                    name: case.name.clone(),
                    passed: false,
                    expected,
                    actual: PVerdict::Block,
                    expected_rules: rules,
                    actual_rules: Vec::new(),
                    error: Some(e),
                },
            });
        }
    }
    Ok(out)
}

fn pick<T: Clone>(case: &Option<T>, default: &Option<T>) -> Option<T> {
    case.clone().or_else(|| default.clone())
}

fn run_case(
    policy: &Arc<PolicyHandle>,
    store: Arc<dyn Store>,
    d: &Settings,
    case: &Case,
) -> Result<DecisionRecord, String> {
    let s = &case.settings;
    let market = pick(&s.market, &d.market).ok_or("no `market`")?;
    let channel = pick(&s.channel, &d.channel).ok_or("no `channel`")?;
    let purpose = pick(&s.purpose, &d.purpose).unwrap_or(Purpose::Promotional);
    let product = pick(&s.product, &d.product).ok_or("no `product`")?;
    let at = time(&pick(&s.at, &d.at).ok_or("no `at`")?, "`at`")?;
    let text = pick(&s.text, &d.text).ok_or("no `text`")?;
    let campaign = pick(&s.campaign, &d.campaign);
    let err = |e: omnigate_core::StoreError| e.to_string();
    let hcp = HcpId::new("fixture-hcp").map_err(|e| e.to_string())?;
    let mut profile = HcpProfile::new(hcp.clone(), "Test HCP", market.clone());
    profile.time_zone = pick(&s.time_zone, &d.time_zone);
    store.upsert_profiles("fixture", &[profile]).map_err(err)?;

    let consents = case
        .consent
        .iter()
        .map(|c| {
            Ok(NewConsent {
                scope: ConsentScope {
                    hcp: hcp.clone(),
                    channel: c.channel,
                    purpose: c.purpose.unwrap_or(purpose),
                    market: c.market.clone().unwrap_or_else(|| market.clone()),
                    product: c.product.clone(),
                },
                status: c.status,
                source: c.source.unwrap_or(ConsentSource::WebForm),
                recorded_at: time(&c.at, "consent `at`")?,
                recorded_by: "fixture".into(),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    store.record_consents("fixture", &consents).map_err(err)?;

    let mut parts = BTreeMap::from([("text".to_owned(), text)]);
    if let Some(subject) = pick(&s.subject, &d.subject) {
        parts.insert("subject".into(), subject);
    }
    let body = ContentBody {
        parts,
        variants: BTreeMap::new(),
        personalization_fields: BTreeSet::from(["name".to_owned()]),
        metadata: ContentMetadata {
            product,
            indications: BTreeSet::new(),
            markets: BTreeSet::from([market.clone()]),
            channels: BTreeSet::from([channel]),
            audience: Audience::Hcp,
            claims: BTreeMap::new(),
            disclaimers: Vec::new(),
            isi: None,
            expires_at: None,
        },
    };
    let version = store
        .put_version("fixture-author", "fixture", &body)
        .map_err(err)?;
    let pre = NewPreScreen {
        policy_version: "fixture".into(),
        report: serde_json::json!({}),
    };
    store
        .submit_for_review("fixture-author", &version, &pre)
        .map_err(err)?;
    let required = store.approval_policy().required_roles([&market]);
    for (i, role) in ReviewRole::ALL
        .into_iter()
        .filter(|r| required.contains(r))
        .enumerate()
    {
        store
            .sign_off(&format!("fixture-reviewer-{i}"), &version, role)
            .map_err(err)?;
    }

    // Earlier dispatches, entered as the engine would.
    let mut decisions = Vec::new();
    let mut ledger = Vec::new();
    for (i, c) in case.contacts.iter().enumerate() {
        let when = time(&c.at, "contact `at`")?;
        let id = format!("fixture-{i}");
        decisions.push(DecisionRecord {
            id: id.clone(),
            at: when,
            dispatch: id.clone(),
            campaign: c.campaign.clone(),
            hcp: hcp.clone(),
            channel: c.channel,
            purpose,
            market: market.clone(),
            version: version.clone(),
            policy_version: None,
            verdict: Verdict::Allow,
            text_sha256: None,
            consent: None,
            rules: Vec::new(),
            summary: "fixture contact".into(),
        });
        ledger.push(NewDispatch {
            id: id.clone(),
            idempotency_key: id.clone(),
            campaign: c.campaign.clone(),
            hcp: hcp.clone(),
            channel: c.channel,
            purpose,
            market: market.clone(),
            product: None,
            version: version.clone(),
            decision: id,
            planned_at: when,
            text_sha256: String::new(),
        });
    }
    store
        .record_decisions("fixture", &decisions, &ledger)
        .map_err(err)?;

    let events = case
        .touches
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let event_type: EventType = t
                .event_type
                .parse()
                .map_err(|e: omnigate_core::event::UnknownEventType| e.to_string())?;
            let channel = *event_type
                .channels()
                .first()
                .ok_or_else(|| format!("event type `{}` has no channel", t.event_type))?;
            let attributes = event_type
                .required_attributes()
                .iter()
                .map(|a| {
                    (
                        (*a).to_owned(),
                        serde_json::Value::from(format!("fixture-{a}")),
                    )
                })
                .collect();
            Ok(NewEvent {
                id: format!("fixture-touch-{i}"),
                hcp: hcp.clone(),
                event_type,
                channel,
                occurred_at: time(&t.at, "touch `at`")?,
                attributes,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    if !events.is_empty() {
        store
            .ingest("fixture", "fixture-touches", &events)
            .map_err(err)?;
    }

    let gate = Gate::new(policy.clone(), store);
    let decided = gate.decide(&DispatchRequest {
        dispatch_id: "fixture-dispatch".into(),
        campaign,
        hcp,
        version,
        channel,
        purpose,
        market: Some(market),
        values: BTreeMap::<PersonalField, String>::new(),
        proposed: None,
        at,
    });
    Ok(decided.record)
}
