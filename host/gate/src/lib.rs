//! The compliance gate: every dispatch, from every channel adapter, passes
//! here before anything is delivered, and the answer is a decision record
//! with evidence per rule.
//!
//! [`Gate::decide`] checks, in this order, and reports every failure (not
//! only the first):
//!
//! 1. **Approval**: the version exists, is approved, not expired (by date,
//!    even before the registry marks it), meant for this market and channel,
//!    its stored body still hashes to its id, and every sign-off is of this
//!    hash.
//! 2. **Integrity and personalization**: the gate renders the approved text
//!    itself, filling only the placeholders the version declared and the
//!    policy allows on the channel (profile fields from the profile; the
//!    dispatch's own fields checked for shape). A text proposed by the
//!    caller must equal that rendering byte for byte.
//! 3. **Content rules**: the rendered text (exactly what is sent) is
//!    screened: claims, off-label, citations, patient data, required
//!    elements.
//! 4. **Consent**: a current opt-in for HCP x channel x purpose x market (x
//!    product), plus what the policy's consent rules add.
//! 5. **Contact pressure**: frequency caps, minimum gaps, quiet hours in the
//!    HCP's time zone, per-campaign caps, counting the ledger and field
//!    touches from events.
//!
//! It fails closed: no policy loaded, a store error, a panic inside a check,
//! an unknown HCP or time zone all block, with the reason.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # fn demo(store: Arc<dyn omnigate_core::Store>, policy: Arc<omnigate_policy::PolicyHandle>,
//! #         req: omnigate_gate::DispatchRequest) -> Result<(), Box<dyn std::error::Error>> {
//! use omnigate_core::ledger::LedgerStore;
//! let gate = omnigate_gate::Gate::new(policy, store.clone());
//! let decided = gate.decide(&req);
//! let dispatch = decided.dispatch("campaign-7:hcp-1:step-1");
//! store.record_decisions("engine", &[decided.record.clone()], dispatch.as_slice())?;
//! # Ok(()) }
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod contact;
pub mod egress;
pub mod fixtures;
pub mod render;
mod request;

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use omnigate_core::consent::ConsentRecord;
use omnigate_core::content::{self, ContentState, ContentVersion, SignOff, VersionHash};
use omnigate_core::event::now_millis;
use omnigate_core::hcp::HcpProfile;
use omnigate_core::ledger::{DecisionRecord, FactsQuery, Outcome, RuleOutcome, Verdict};
use omnigate_core::redact::redact;
use omnigate_core::store::{ConsentQuery, StoreError};
use omnigate_core::template::{PersonalField, first_difference};
use omnigate_core::{Channel, Store};
use omnigate_policy::{Audience, CompiledPolicy, Context, PartKind, PolicyHandle, Severity};
use serde_json::json;

pub use contact::{CONSENT_OPT_IN, counted_from_ledger};
pub use render::Rendered;
pub use request::{Decided, DispatchRequest};

use render::Prepared;
use request::Subject;

/// The compliance gate. Cheap to clone; safe to share across threads.
#[derive(Clone)]
pub struct Gate {
    policy: Arc<PolicyHandle>,
    store: Arc<dyn Store>,
    versions: Arc<Mutex<HashMap<VersionHash, Arc<Cached>>>>,
}

/// An approved (or formerly approved) version: its body and sign-offs no
/// longer change, so they are read and verified once. Its state is read
/// afresh for every decision.
struct Cached {
    version: ContentVersion,
    sign_offs: Vec<SignOff>,
    rehash: Option<VersionHash>,
    /// The body parsed for rendering, per channel, on first use: the body
    /// of a version never changes.
    prepared: Mutex<Vec<(Channel, Arc<Prepared>)>>,
    /// The evidence of `content-approved`: the version's alone.
    approved_evidence: serde_json::Value,
}

impl Cached {
    fn new(version: ContentVersion, sign_offs: Vec<SignOff>) -> Cached {
        let rehash = version.body.version_hash().ok();
        let approved_evidence = json!({
            "version": version.hash,
            "expires_at": version.body.metadata.expires_at,
            "sign_offs": sign_offs.iter().map(|s| json!({
                "role": s.role, "reviewer": s.reviewer, "signed_at": s.signed_at,
            })).collect::<Vec<_>>(),
        });
        Cached {
            version,
            sign_offs,
            rehash,
            prepared: Mutex::new(Vec::new()),
            approved_evidence,
        }
    }

    /// The body's parts on `channel`, parsed and checked.
    fn prepared(&self, channel: Channel) -> Arc<Prepared> {
        let mut list = self
            .prepared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, p)) = list.iter().find(|(c, _)| *c == channel) {
            return p.clone();
        }
        let p = Arc::new(Prepared::new(&self.version.body, channel));
        list.push((channel, p.clone()));
        p
    }
}

/// Most versions kept in the cache (it is cleared when full).
const MAX_CACHED_VERSIONS: usize = 4096;

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("policy_version", &self.policy.version())
            .finish_non_exhaustive()
    }
}

/// Everything a decision accumulates before it is sealed.
struct Draft {
    rules: Vec<RuleOutcome>,
    rendered: Option<Rendered>,
    consent: Option<ConsentRecord>,
    product: Option<String>,
    market: String,
}

impl Draft {
    fn block(&mut self, rule: &str, kind: &str, reason: String, evidence: serde_json::Value) {
        self.rules.push(RuleOutcome {
            rule: rule.to_owned(),
            kind: kind.to_owned(),
            outcome: Outcome::Block,
            reason,
            reference: None,
            evidence,
        });
    }
}

fn gate_error(e: &StoreError) -> String {
    format!("the gate could not read what it needs, so it blocks: {e}")
}

impl Gate {
    /// A gate over a policy handle (reloads take effect at the next
    /// decision) and a store.
    pub fn new(policy: Arc<PolicyHandle>, store: Arc<dyn Store>) -> Gate {
        Gate {
            policy,
            store,
            versions: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The policy handle.
    pub fn policy(&self) -> &PolicyHandle {
        &self.policy
    }

    /// Decides one dispatch. Never fails and never panics: whatever goes
    /// wrong becomes a block with its reason.
    pub fn decide(&self, req: &DispatchRequest) -> Decided {
        let policy = self.policy.current();
        let mut draft = Draft {
            rules: Vec::new(),
            rendered: None,
            consent: None,
            product: None,
            market: req.market.clone().unwrap_or_default(),
        };
        match &policy {
            None => draft.block(
                "policy-not-loaded",
                "gate",
                "no compliance policy is loaded, so nothing can be allowed".into(),
                json!({}),
            ),
            Some(p) => {
                let run = catch_unwind(AssertUnwindSafe(|| self.evaluate(p, req, &mut draft)));
                match run {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => draft.block("gate-error", "gate", gate_error(&e), json!({})),
                    Err(_) => draft.block(
                        "gate-error",
                        "gate",
                        "a check failed unexpectedly, so the gate blocks".into(),
                        json!({}),
                    ),
                }
            }
        }
        seal(req, policy.as_deref(), draft)
    }

    fn evaluate(
        &self,
        policy: &CompiledPolicy,
        req: &DispatchRequest,
        d: &mut Draft,
    ) -> Result<(), StoreError> {
        let store = &*self.store;
        let set = policy.set();
        let lookback = contact::lookback(set);
        let since = req
            .at
            .saturating_sub(i64::try_from(lookback.as_millis()).unwrap_or(i64::MAX));
        // A version seen before is known without a read: then everything
        // else comes in one snapshot.
        let known = self.cached(&req.version);
        let facts = store.gate_facts(&FactsQuery {
            hcp: req.hcp.clone(),
            version: req.version.clone(),
            item: known.as_ref().map(|c| c.version.item.clone()),
            consent: known.as_ref().map(|c| {
                (
                    req.market.clone(),
                    req.channel,
                    req.purpose,
                    Some(c.version.body.metadata.product.clone()),
                )
            }),
            contacts_since: since,
            features_at: Some(req.at),
        })?;
        let Some(profile) = facts.profile else {
            d.block(
                "hcp-unknown",
                "gate",
                format!("no HCP with id `{}` is on record", req.hcp),
                json!({}),
            );
            return Ok(());
        };
        if d.market.is_empty() {
            d.market = profile.market.clone();
        }
        let latest = known.as_ref().map(|_| facts.latest_approved.clone());
        let version = self.approval(req, facts.version_state, latest, &d.market.clone(), d)?;
        if let Some(v) = &version {
            d.product = Some(v.version.body.metadata.product.clone());
            integrity_and_content(policy, req, &profile, v, d);
        }
        let market = d.market.clone();
        let subject = Subject {
            hcp: &req.hcp,
            channel: req.channel,
            purpose: req.purpose,
            market: &market,
            product: d.product.as_deref(),
            campaign: req.campaign.as_deref(),
            at: req.at,
        };
        // The consent read with the facts asked for the product the cached
        // version promotes; otherwise (first sight of a version) read it now.
        let deciding = if known.is_some() {
            facts.consent
        } else {
            store.deciding_consent(&ConsentQuery {
                hcp: req.hcp.clone(),
                channel: req.channel,
                purpose: req.purpose,
                market: market.clone(),
                product: d.product.clone(),
            })?
        };
        let (consent_rules, consent) = contact::consent(store, set, &subject, deciding)?;
        d.rules.extend(consent_rules);
        d.consent = consent;
        // Read with the facts; a backend that left them out is read now.
        let features = match facts.features {
            Some(f) => f,
            None => store.features(&req.hcp, req.at)?,
        };
        // A dispatch put to the gate again (a retry, a resumed run) is in
        // the ledger already: it does not count against itself.
        let itself = |c: &omnigate_core::ledger::Contact| {
            c.dispatch.as_deref() == Some(req.dispatch_id.as_str())
        };
        let others: std::borrow::Cow<'_, [omnigate_core::ledger::Contact]> =
            if facts.contacts.iter().any(itself) {
                facts
                    .contacts
                    .iter()
                    .filter(|c| !itself(c))
                    .cloned()
                    .collect()
            } else {
                std::borrow::Cow::Borrowed(&facts.contacts)
            };
        d.rules
            .extend(contact::caps(set, &subject, &profile, &others, &features));
        Ok(())
    }
}

impl Gate {
    /// The cached version, if this hash was seen with a final state.
    fn cached(&self, hash: &VersionHash) -> Option<Arc<Cached>> {
        self.versions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(hash)
            .cloned()
    }

    /// The version with its sign-offs: from the cache when its state is
    /// final for sign-offs (approved, expired, withdrawn), else from the
    /// store. `state` is the state read just now.
    fn load_version(
        &self,
        hash: &VersionHash,
        state: ContentState,
    ) -> Result<Option<Arc<Cached>>, StoreError> {
        let signed = matches!(
            state,
            ContentState::Approved | ContentState::Expired | ContentState::Withdrawn
        );
        if signed && let Some(c) = self.cached(hash) {
            return Ok(Some(c));
        }
        let Some(version) = self.store.version(hash)? else {
            return Ok(None);
        };
        let sign_offs = self.store.sign_offs(hash)?;
        let cached = Arc::new(Cached::new(version, sign_offs));
        if signed {
            let mut map = self
                .versions
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if map.len() >= MAX_CACHED_VERSIONS {
                map.clear();
            }
            map.insert(hash.clone(), cached.clone());
        }
        Ok(Some(cached))
    }

    /// Approval checks; returns the version when it can be rendered
    /// (approved or not: a draft is still screened so the decision shows
    /// every reason).
    fn approval(
        &self,
        req: &DispatchRequest,
        state: Option<ContentState>,
        latest: Option<Option<VersionHash>>,
        market: &str,
        d: &mut Draft,
    ) -> Result<Option<Arc<Cached>>, StoreError> {
        let cached = match state {
            Some(state) => self.load_version(&req.version, state)?,
            None => None,
        };
        let (Some(state), Some(cached)) = (state, cached) else {
            d.block(
                "content-unknown",
                "approval",
                format!("content version `{}` is not in the registry", req.version),
                json!({ "version": req.version }),
            );
            return Ok(None);
        };
        approval_checks(&cached, state, req, market, d);
        if state == ContentState::Approved {
            let latest = match latest {
                Some(l) => l,
                None => self.store.latest_approved(&cached.version.item)?,
            };
            if let Some(latest) = latest.filter(|l| *l != req.version) {
                d.rules.retain(|r| r.rule != "content-approved");
                d.block(
                    "content-superseded",
                    "approval",
                    format!(
                        "content `{}` (version {}) was superseded by version {}, approved later",
                        cached.version.item,
                        short(&req.version.0),
                        short(&latest.0)
                    ),
                    json!({ "version": req.version, "superseded_by": latest }),
                );
            }
        }
        Ok(Some(cached))
    }
}

fn approval_checks(
    cached: &Cached,
    state: ContentState,
    req: &DispatchRequest,
    market: &str,
    d: &mut Draft,
) {
    let v = &cached.version;
    let m = &v.body.metadata;
    let mut ok = true;
    if state != ContentState::Approved {
        ok = false;
        d.block(
            "content-not-approved",
            "approval",
            format!(
                "content `{}` (version {}) is {}; only versions approved by MLR review are sent",
                v.item,
                short(&v.hash.0),
                state.as_str()
            ),
            json!({ "version": v.hash, "state": state }),
        );
    }
    if let Some(exp) = m.expires_at
        && exp <= req.at
    {
        ok = false;
        d.block(
            "content-expired",
            "approval",
            format!(
                "content `{}` (version {}) expired before the send time",
                v.item,
                short(&v.hash.0)
            ),
            json!({ "version": v.hash, "expires_at": exp, "send_at": req.at }),
        );
    }
    if !m.markets.contains(market) {
        ok = false;
        d.block(
            "content-not-for-market",
            "approval",
            format!(
                "content `{}` was approved for {} but the HCP is in {market}",
                v.item,
                list(m.markets.iter().map(String::as_str))
            ),
            json!({ "approved_markets": m.markets, "market": market }),
        );
    }
    if !m.channels.contains(&req.channel) {
        ok = false;
        d.block(
            "content-not-for-channel",
            "approval",
            format!(
                "content `{}` was approved for {}, not {}",
                v.item,
                list(m.channels.iter().map(|c| c.as_str())),
                req.channel.as_str()
            ),
            json!({ "approved_channels": m.channels, "channel": req.channel }),
        );
    }
    let rehash = &cached.rehash;
    if rehash.as_ref() != Some(&v.hash) {
        ok = false;
        d.block(
            "content-integrity",
            "approval",
            "the stored content no longer matches the version the reviewers approved".into(),
            json!({ "version": v.hash, "stored_body_sha256": rehash }),
        );
    }
    let sign_offs = &cached.sign_offs;
    if state == ContentState::Approved
        && (sign_offs.is_empty() || sign_offs.iter().any(|s| s.version != v.hash))
    {
        ok = false;
        d.block(
            "content-signature",
            "approval",
            "the sign-offs on record are not for this exact version".into(),
            json!({ "version": v.hash, "signed": sign_offs.iter().map(|s| &s.version).collect::<Vec<_>>() }),
        );
    }
    if ok {
        d.rules.push(RuleOutcome {
            rule: "content-approved".into(),
            kind: "approval".into(),
            outcome: Outcome::Pass,
            reason: format!(
                "content `{}` (version {}) is approved for {} on {}",
                v.item,
                short(&v.hash.0),
                market,
                req.channel.as_str()
            ),
            reference: None,
            evidence: cached.approved_evidence.clone(),
        });
    }
}

/// Renders the version for this HCP and channel, checks a proposed text
/// against it, and screens the result.
fn integrity_and_content(
    policy: &CompiledPolicy,
    req: &DispatchRequest,
    profile: &HcpProfile,
    cached: &Cached,
    d: &mut Draft,
) {
    let v = &cached.version;
    let set = policy.set();
    let allowed: &[PersonalField] = set
        .channels
        .get(&req.channel)
        .map(|c| c.personalization.as_slice())
        .unwrap_or(&[]);
    let mut values = req.values.clone();
    let mut supplied_profile_field = false;
    for f in PersonalField::ALL.into_iter().filter(|f| f.from_profile()) {
        if values.contains_key(&f) {
            supplied_profile_field = true;
            d.block(
                "personalization-value",
                "personalization",
                format!(
                    "`{f}` comes from the HCP's profile and cannot be supplied with the dispatch"
                ),
                json!({ "field": f }),
            );
        }
        let from_profile = match f {
            PersonalField::Name => Some(profile.name.clone()),
            PersonalField::Specialty => profile.specialty.as_ref().map(|s| s.label.clone()),
            PersonalField::Institution => profile.institution.clone(),
            _ => None,
        };
        match from_profile {
            Some(val) => {
                values.insert(f, val);
            }
            None => {
                values.remove(&f);
            }
        }
    }
    let rendered = match cached.prepared(req.channel).render(allowed, &values) {
        Ok(r) => r,
        Err(problems) => {
            for p in problems {
                d.block(p.rule(), "personalization", p.reason(), json!({}));
            }
            return;
        }
    };
    if supplied_profile_field {
        return;
    }
    if let Some(proposed) = &req.proposed {
        let mut same = true;
        let names: std::collections::BTreeSet<&String> =
            proposed.keys().chain(rendered.parts.keys()).collect();
        for name in names {
            let expected = rendered.parts.get(name).map(String::as_str).unwrap_or("");
            let actual = proposed.get(name).map(String::as_str).unwrap_or("");
            if let Some(diff) = first_difference(expected, actual) {
                same = false;
                d.block(
                    "integrity",
                    "integrity",
                    format!(
                        "part `{name}` differs from the approved text at byte {}: only declared personalization fields may change",
                        diff.at
                    ),
                    json!({
                        "part": name, "at": diff.at,
                        "approved": redact(&diff.expected), "proposed": redact(&diff.actual),
                    }),
                );
            }
        }
        if !same {
            return;
        }
    }
    // Screen exactly what is sent.
    let mut ctx = Context::new(
        d.market.clone(),
        req.channel,
        match v.body.metadata.audience {
            content::Audience::Hcp => Audience::Hcp,
            content::Audience::Patient => Audience::Patient,
        },
    )
    .with_product(v.body.metadata.product.clone());
    ctx.claims = Vec::new();
    // The rendered text itself, borrowed: what is screened is what is sent.
    let parts: Vec<(PartKind, &str)> = rendered
        .parts
        .iter()
        .map(|(name, text)| (render::part_kind(name), text.as_str()))
        .collect();
    let names: Vec<&String> = rendered.parts.keys().collect();
    match policy.screen_parts(&parts, &ctx) {
        Ok(screening) => {
            for f in &screening.findings {
                d.rules.push(RuleOutcome {
                    rule: f.rule.clone(),
                    kind: f.kind.as_str().to_owned(),
                    outcome: match f.severity {
                        Severity::Block => Outcome::Block,
                        Severity::Warn => Outcome::Warn,
                    },
                    reason: f.reason.clone(),
                    reference: f.reference.clone(),
                    evidence: json!({
                        "part": names.get(f.part).map(|s| s.as_str()),
                        "start": f.start, "end": f.end, "excerpt": redact(&f.excerpt),
                    }),
                });
            }
            if !screening
                .findings
                .iter()
                .any(|f| f.severity == Severity::Block)
            {
                d.rules.push(RuleOutcome {
                    rule: "content-rules".into(),
                    kind: "claim".into(),
                    outcome: Outcome::Pass,
                    reason: "the text passed every content rule".into(),
                    reference: None,
                    evidence: json!({ "parts": names, "findings": screening.findings.len() }),
                });
            }
        }
        Err(e) => d.block(
            "screening-context",
            "gate",
            format!("the text could not be screened, so it is blocked: {e}"),
            json!({}),
        ),
    }
    d.rendered = Some(rendered);
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

fn list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = items.collect();
    if v.is_empty() {
        "nothing".into()
    } else {
        v.join(", ")
    }
}

fn seal(req: &DispatchRequest, policy: Option<&CompiledPolicy>, mut d: Draft) -> Decided {
    let mut blocked = d.rules.iter().any(|r| r.outcome == Outcome::Block);
    if !blocked && d.rendered.is_none() {
        // Unreachable by construction; fail closed all the same.
        d.block(
            "gate-error",
            "gate",
            "no message was rendered".into(),
            json!({}),
        );
        blocked = true;
    }
    // Blocks first, then warnings, then passes; stable within each.
    d.rules.sort_by_key(|r| match r.outcome {
        Outcome::Block => 0,
        Outcome::Warn => 1,
        Outcome::Pass => 2,
    });
    let verdict = if blocked {
        Verdict::Block
    } else {
        Verdict::Allow
    };
    let summary = summary(&d, verdict);
    let record = DecisionRecord {
        id: uuid::Uuid::now_v7().to_string(),
        at: now_millis(),
        dispatch: req.dispatch_id.clone(),
        campaign: req.campaign.clone(),
        hcp: req.hcp.clone(),
        channel: req.channel,
        purpose: req.purpose,
        market: d.market.clone(),
        version: req.version.clone(),
        policy_version: policy.map(|p| p.version().to_owned()),
        verdict,
        text_sha256: d.rendered.as_ref().map(|r| r.sha256.clone()),
        consent: d.consent.as_ref().map(|c| c.id),
        rules: d.rules,
        summary,
    };
    Decided {
        record,
        rendered: if verdict == Verdict::Allow {
            d.rendered
        } else {
            None
        },
        product: d.product,
        planned_at: req.at,
    }
}

fn summary(d: &Draft, verdict: Verdict) -> String {
    let blocks: Vec<&RuleOutcome> = d
        .rules
        .iter()
        .filter(|r| r.outcome == Outcome::Block)
        .collect();
    match (verdict, blocks.as_slice()) {
        (Verdict::Allow, _) => {
            let warns = d
                .rules
                .iter()
                .filter(|r| r.outcome == Outcome::Warn)
                .count();
            if warns == 0 {
                "Allowed: approved content, consent on record, within contact limits.".into()
            } else {
                format!("Allowed with {warns} warning(s) for the reviewers.")
            }
        }
        (Verdict::Block, []) => "Blocked: the gate could not complete its checks.".into(),
        (Verdict::Block, [one]) => format!("Blocked: {}.", one.reason.trim_end_matches('.')),
        (Verdict::Block, [first, rest @ ..]) => format!(
            "Blocked: {} (and {} more reason{}).",
            first.reason.trim_end_matches('.'),
            rest.len(),
            if rest.len() == 1 { "" } else { "s" }
        ),
    }
}
