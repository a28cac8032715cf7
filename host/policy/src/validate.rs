//! Step 2, validate: syntax trees -> the typed [`PolicySet`], checked
//! against what the host knows (channels, HCP fields) and against itself
//! (markets, products, indications, label facts, unique rule ids). All
//! problems are collected, not just the first.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use omnigate_core::template::PersonalField;
use omnigate_core::{ApprovalPolicy, Channel, HcpField, Purpose};

use crate::checks::{V, channel_list, rule_of};
use crate::diag::Diagnostic;
use crate::model::*;
use crate::normalize::fold;
use crate::syntax::*;

/// The parsed files of a policy set, with their sources.
pub struct Parsed {
    /// sha256 version of the files.
    pub version: String,
    /// `claims.toml`.
    pub claims: (SourceFile, ClaimsFile),
    /// `products.toml`.
    pub products: (SourceFile, ProductsFile),
    /// `markets.toml`.
    pub markets: (SourceFile, MarketsFile),
    /// `channels.toml`.
    pub channels: (SourceFile, ChannelsFile),
    /// `consent.toml`.
    pub consent: (SourceFile, ConsentFile),
    /// `caps.toml`.
    pub caps: (SourceFile, CapsFile),
}

/// Validates parsed files into a policy set, or returns every problem.
pub fn validate(p: Parsed) -> Result<PolicySet, Vec<Diagnostic>> {
    let mut v = V {
        diags: Vec::new(),
        ids: HashMap::new(),
        markets: Vec::new(),
        limits: Limits::default(),
    };
    let (cf, claims) = &p.claims;
    let l = &claims.limits;
    for (val, slot) in [
        (&l.max_pattern_bytes, &mut v.limits.max_pattern_bytes),
        (&l.max_regex_size, &mut v.limits.max_regex_size),
        (&l.max_input_bytes, &mut v.limits.max_input_bytes),
    ] {
        if let Some(x) = val {
            *slot = usize::try_from(*x.get_ref()).unwrap_or(usize::MAX);
        }
    }

    // Markets first: every other file refers to them.
    let (mf, markets_file) = &p.markets;
    v.markets = markets_file
        .markets
        .keys()
        .map(|k| k.get_ref().clone())
        .collect();
    for k in markets_file.markets.keys() {
        let code = k.get_ref();
        if code.len() < 2 || code.len() > 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            v.err(
                mf,
                k,
                format!("market code `{code}` is not 2-3 upper-case letters"),
                Some("use `US`, `EU`, `UK`, `CN`, ...".into()),
            );
        }
    }

    let label_facts: Vec<String> = claims
        .label_facts
        .iter()
        .map(|s| s.get_ref().clone())
        .collect();
    let citation_markers = v.patterns(cf, &claims.citation_markers, "`citation_markers`");
    let mut claim_rules = Vec::new();
    for r in &claims.rules {
        let meta = v.meta(cf, &r.id, &r.severity, &r.reason, &r.reference);
        let id = r.id.get_ref().clone();
        let kind = match r.kind.get_ref().as_str() {
            "claim" => Some(FindingKind::Claim),
            "citation" => Some(FindingKind::Citation),
            "pii" => Some(FindingKind::Pii),
            other => {
                let msg = format!("unknown kind `{other}` in rule `{id}`");
                v.err(cf, &r.kind, msg, Some("expected `claim`, `citation` or `pii` (off-label rules live in products.toml)".into()));
                None
            }
        };
        let scope = Scope {
            markets: v.markets(cf, &r.markets, &rule_of(&id)),
            channels: v.channels(cf, &r.channels, &rule_of(&id)),
            audiences: r
                .audiences
                .as_ref()
                .map(|a| v.audiences(cf, a, &rule_of(&id))),
        };
        let terms = v.terms(cf, &r.terms, &rule_of(&id));
        let patterns = v.patterns(cf, &r.patterns, &rule_of(&id));
        if r.terms.is_empty() && r.patterns.is_empty() {
            v.err(
                cf,
                &r.id,
                format!("rule `{id}` has neither `terms` nor `patterns`"),
                Some("add at least one term or pattern".into()),
            );
        }
        let evidence = r.evidence.as_ref().map(|e| {
            if let Some(fact) = &e.label_fact
                && !label_facts.contains(fact.get_ref())
            {
                let help = format!(
                    "claims.toml `label_facts` declares: {}",
                    label_facts.join(", ")
                );
                v.err(
                    cf,
                    fact,
                    format!("unknown label fact `{}` in rule `{id}`", fact.get_ref()),
                    Some(help),
                );
            }
            Evidence {
                citation: e.citation,
                label_fact: e.label_fact.as_ref().map(|s| s.get_ref().clone()),
                sentence_has: v.terms(cf, &e.sentence_has, &rule_of(&id)),
            }
        });
        let negations = v.terms(cf, &r.negations, &rule_of(&id));
        let except = v.terms(cf, &r.except, &rule_of(&id));
        let only_near = v.terms(cf, &r.only_near, &rule_of(&id));
        if let (Some(meta), Some(kind)) = (meta, kind) {
            claim_rules.push(ClaimRule {
                meta,
                kind,
                scope,
                terms,
                patterns,
                negations,
                except,
                only_near,
                evidence,
            });
        }
    }

    // Products and indications.
    let (pf, products_file) = &p.products;
    let fixed = |r: &FixedRuleSyntax, v: &mut V| {
        let meta = v.meta(pf, &r.id, &r.severity, &r.reason, &r.reference);
        let negations = v.terms(pf, &r.negations, &rule_of(r.id.get_ref()));
        meta.map(|meta| FixedRule { meta, negations })
    };
    let off_label = fixed(&products_file.off_label, &mut v);
    let not_marketed = fixed(&products_file.not_marketed, &mut v);
    let mut indications = BTreeMap::new();
    for (k, ind) in &products_file.indications {
        let terms = v.terms(pf, &ind.terms, &format!("indication `{}`", k.get_ref()));
        indications.insert(
            k.get_ref().clone(),
            Indication {
                id: k.get_ref().clone(),
                name: ind.name.get_ref().clone(),
                terms,
            },
        );
    }
    let mut products = BTreeMap::new();
    for (k, prod) in &products_file.products {
        let id = k.get_ref().clone();
        let markets = v
            .markets(pf, &Some(prod.markets.clone()), &format!("product `{id}`"))
            .unwrap_or_default();
        for i in &prod.indications {
            if !indications.contains_key(i.get_ref()) {
                let known: Vec<&str> = indications.keys().map(String::as_str).collect();
                let help = format!("products.toml [indications] defines: {}", known.join(", "));
                v.err(
                    pf,
                    i,
                    format!("unknown indication `{}` in product `{id}`", i.get_ref()),
                    Some(help),
                );
            }
        }
        let mut facts = BTreeMap::new();
        for (fact, source) in &prod.label_facts {
            if !label_facts.contains(fact.get_ref()) {
                let help = format!(
                    "claims.toml `label_facts` declares: {}",
                    label_facts.join(", ")
                );
                v.err(
                    pf,
                    fact,
                    format!("unknown label fact `{}` in product `{id}`", fact.get_ref()),
                    Some(help),
                );
            }
            facts.insert(fact.get_ref().clone(), source.get_ref().clone());
        }
        let mut aliases = v.terms(pf, &prod.aliases, &format!("product `{id}`"));
        aliases.push(fold(prod.name.get_ref()));
        aliases.dedup();
        products.insert(
            id.clone(),
            Product {
                id,
                name: prod.name.get_ref().clone(),
                aliases,
                markets,
                indications: prod
                    .indications
                    .iter()
                    .map(|s| s.get_ref().clone())
                    .collect(),
                label_facts: facts,
            },
        );
    }

    // Required elements.
    let mut markets = BTreeMap::new();
    for (k, m) in &markets_file.markets {
        let code = k.get_ref().clone();
        let mut require = Vec::new();
        for r in &m.require {
            let meta = v.meta(mf, &r.id, &r.severity, &r.reason, &r.reference);
            let id = r.id.get_ref().clone();
            let when_product = match r.when.as_ref().map(|w| w.get_ref().as_str()) {
                None | Some("always") => false,
                Some("product") => true,
                Some(other) => {
                    let msg = format!("unknown `when` value `{other}` in rule `{id}`");
                    v.err(
                        mf,
                        r.when.as_ref().unwrap_or(&r.id),
                        msg,
                        Some("expected `always` or `product`".into()),
                    );
                    false
                }
            };
            let scope = Scope {
                markets: Some(vec![code.clone()]),
                channels: v.channels(mf, &r.channels, &rule_of(&id)),
                audiences: r
                    .audiences
                    .as_ref()
                    .map(|a| v.audiences(mf, a, &rule_of(&id))),
            };
            let any_of = v.terms(mf, &r.any_of, &rule_of(&id));
            if any_of.is_empty() {
                v.err(
                    mf,
                    &r.id,
                    format!("required element `{id}` has an empty `any_of`"),
                    None,
                );
            }
            if let Some(meta) = meta {
                require.push(RequiredElement {
                    meta,
                    scope,
                    when_product,
                    any_of,
                });
            }
        }
        let review_roles = m
            .review_roles
            .as_ref()
            .map(|r| v.review_roles(mf, r, &format!("market `{code}`")));
        markets.insert(
            code.clone(),
            Market {
                code,
                name: m.name.get_ref().clone(),
                review_roles,
                require,
            },
        );
    }
    let approval = ApprovalPolicy {
        default_roles: markets_file
            .default_review_roles
            .as_ref()
            .map(|r| v.review_roles(mf, r, "`default_review_roles`"))
            .unwrap_or_else(|| ApprovalPolicy::default().default_roles),
        per_market: markets
            .values()
            .filter_map(|m| m.review_roles.clone().map(|r| (m.code.clone(), r)))
            .collect(),
    };

    // Channels.
    let (chf, channels_file) = &p.channels;
    let mut channels = BTreeMap::new();
    for (k, c) in &channels_file.channels {
        let Ok(channel) = Channel::from_str(k.get_ref()) else {
            v.err(
                chf,
                k,
                format!("unknown channel `{}` in channels.toml", k.get_ref()),
                Some(format!("expected one of: {}", channel_list())),
            );
            continue;
        };
        let mut personalization = Vec::new();
        for field in &c.personalization {
            match PersonalField::from_str(field.get_ref()) {
                Ok(pf) => personalization.push(pf),
                Err(_)
                    if HcpField::from_str(field.get_ref()).is_ok_and(|f| f.is_contact_detail()) =>
                {
                    v.err(
                        chf,
                        field,
                        format!(
                            "contact detail `{}` cannot be filled into a message on `{channel}`",
                            field.get_ref()
                        ),
                        Some("contact details never appear in message text".into()),
                    )
                }
                Err(_) => v.err(
                    chf,
                    field,
                    format!(
                        "unknown personalization field `{}` on channel `{channel}`",
                        field.get_ref()
                    ),
                    Some(format!(
                        "expected one of: {}",
                        PersonalField::ALL.map(PersonalField::as_str).join(", ")
                    )),
                ),
            }
        }
        let audiences = v.audiences(chf, &c.audiences, &format!("channel `{channel}`"));
        channels.insert(
            channel,
            ChannelPolicy {
                screened: c.screened,
                audiences,
                personalization,
            },
        );
    }

    // Consent.
    let (cof, consent_file) = &p.consent;
    // The purposes a policy may name are the host's (a dispatch carries one
    // of them); the file lists the ones it uses, each checked here.
    let mut purposes: Vec<Purpose> = Vec::new();
    for pu in &consent_file.purposes {
        match pu.get_ref().parse::<Purpose>() {
            Ok(known) => purposes.push(known),
            Err(e) => v.err(cof, pu, e.to_string(), None),
        }
    }
    let mut consent = Vec::new();
    for r in &consent_file.rules {
        let meta = v.meta(cof, &r.id, &r.severity, &r.reason, &r.reference);
        let id = r.id.get_ref().clone();
        let scope = Scope {
            markets: v.markets(cof, &r.markets, &rule_of(&id)),
            channels: v.channels(cof, &r.channels, &rule_of(&id)),
            audiences: None,
        };
        if let Some(list) = &r.purposes {
            let declared = |name: &str| purposes.iter().any(|p| p.as_str() == name);
            for pu in list.iter().filter(|pu| !declared(pu.get_ref())) {
                let names: Vec<&str> = purposes.iter().map(|p| p.as_str()).collect();
                let help = format!("consent.toml `purposes` declares: {}", names.join(", "));
                v.err(
                    cof,
                    pu,
                    format!("unknown purpose `{}` in rule `{id}`", pu.get_ref()),
                    Some(help),
                );
            }
        }
        let requires = match r.requires.get_ref().as_str() {
            "opt-in" => Some(ConsentLevel::OptIn),
            "double-opt-in" => Some(ConsentLevel::DoubleOptIn),
            other => {
                v.err(
                    cof,
                    &r.requires,
                    format!("unknown consent level `{other}` in rule `{id}`"),
                    Some("expected `opt-in` or `double-opt-in`".into()),
                );
                None
            }
        };
        let max_age = r
            .max_age
            .as_ref()
            .and_then(|a| v.duration(cof, a, &rule_of(&id)));
        if let (Some(meta), Some(requires)) = (meta, requires) {
            consent.push(ConsentRule {
                meta,
                scope,
                purposes: r.purposes.as_ref().map(|l| {
                    l.iter()
                        .filter_map(|s| s.get_ref().parse::<Purpose>().ok())
                        .collect()
                }),
                requires,
                per_product: r.per_product,
                max_age,
            });
        }
    }

    // Caps.
    let (caf, caps_file) = &p.caps;
    let mut caps = Vec::new();
    for c in &caps_file.caps {
        let meta = v.meta(caf, &c.id, &c.severity, &c.reason, &c.reference);
        let id = c.id.get_ref().clone();
        let markets = v.markets(caf, &c.markets, &rule_of(&id));
        let channels = v.channels(caf, &c.channels, &rule_of(&id));
        let kind_name = c.kind.get_ref().as_str();
        let max = c
            .max
            .as_ref()
            .map(|m| u32::try_from(*m.get_ref()).unwrap_or(u32::MAX));
        let window = c
            .window
            .as_ref()
            .and_then(|w| v.duration(caf, w, &rule_of(&id)));
        let kind = match kind_name {
            "frequency" | "campaign" => {
                if max.is_none() {
                    v.missing(caf, &c.id, "max", kind_name);
                }
                if c.window.is_none() {
                    v.missing(caf, &c.id, "window", kind_name);
                }
                match (max, window, kind_name) {
                    (Some(max), Some(window), "frequency") => {
                        Some(CapKind::Frequency { max, window })
                    }
                    (Some(max), Some(window), _) => Some(CapKind::Campaign { max, window }),
                    _ => None,
                }
            }
            "min-gap" => match &c.gap {
                Some(g) => v
                    .duration(caf, g, &rule_of(&id))
                    .map(|gap| CapKind::MinGap { gap }),
                None => {
                    v.missing(caf, &c.id, "gap", kind_name);
                    None
                }
            },
            "quiet-hours" => match (&c.start, &c.end) {
                (Some(s), Some(e)) => match (
                    v.clock(caf, s, &rule_of(&id)),
                    v.clock(caf, e, &rule_of(&id)),
                ) {
                    (Some(start), Some(end)) => Some(CapKind::QuietHours { start, end }),
                    _ => None,
                },
                _ => {
                    v.missing(caf, &c.id, "start` and `end", kind_name);
                    None
                }
            },
            other => {
                v.err(
                    caf,
                    &c.kind,
                    format!("unknown cap kind `{other}` in rule `{id}`"),
                    Some("expected `frequency`, `min-gap`, `quiet-hours` or `campaign`".into()),
                );
                None
            }
        };
        if let (Some(meta), Some(kind)) = (meta, kind) {
            caps.push(CapRule {
                meta,
                markets,
                channels,
                kind,
            });
        }
    }

    match (off_label, not_marketed) {
        (Some(off_label), Some(not_marketed)) if v.diags.is_empty() => Ok(PolicySet {
            version: p.version,
            limits: v.limits,
            label_facts,
            citation_markers,
            claims: claim_rules,
            off_label,
            not_marketed,
            indications,
            products,
            markets,
            approval,
            channels,
            purposes,
            consent,
            caps,
        }),
        _ => Err(v.diags),
    }
}
