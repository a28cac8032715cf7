//! Screening: the human-visible parts of a message, in context, against the
//! compiled content rules (claims, citations, patient data, off-label,
//! required elements). Matching runs on normalized text; every finding's
//! span points into the original part.

use std::collections::HashSet;
use std::ops::Range;

use aho_corasick::{Anchored, Input};

use crate::compile::{CompiledPolicy, Owner};
use crate::message::{Context, Finding, Message, Part, PartKind, ScreenError, Screening, Verdict};
use crate::model::{ClaimRule, FindingKind, Severity};
use crate::normalize::{Normalized, fold, normalize, normalize_html};
use crate::text;

/// A normalized part and what the automaton found in it.
struct Scanned<'a> {
    original: &'a str,
    norm: Normalized,
    hits: Vec<(Owner, Range<usize>)>,
    /// Normalized spans of cited claims-library entries.
    cited: Vec<Range<usize>>,
}

impl Scanned<'_> {
    fn sentence(&self, m: &Range<usize>) -> Range<usize> {
        text::sentence(&self.norm.text, m.start, m.end)
    }
}

impl CompiledPolicy {
    /// Screens a message. An `Err` is a usage error (unknown market,
    /// product, channel); the gate treats it as a block.
    pub fn screen(&self, message: &Message, ctx: &Context) -> Result<Screening, ScreenError> {
        let set = &self.set;
        if !set.markets.contains_key(&ctx.market) {
            let known: Vec<&str> = set.markets.keys().map(String::as_str).collect();
            return Err(ScreenError::UnknownMarket(
                ctx.market.clone(),
                known.join(", "),
            ));
        }
        if let Some(p) = &ctx.product
            && !set.products.contains_key(p)
        {
            let known: Vec<&str> = set.products.keys().map(String::as_str).collect();
            return Err(ScreenError::UnknownProduct(p.clone(), known.join(", ")));
        }
        let channel = set
            .channels
            .get(&ctx.channel)
            .ok_or(ScreenError::UnknownChannel(ctx.channel))?;
        if !channel.audiences.contains(&ctx.audience) {
            return Err(ScreenError::AudienceNotAllowed(
                ctx.channel,
                ctx.audience.as_str(),
            ));
        }
        let size: usize = message.parts.iter().map(|p| p.text.len()).sum();
        if size > set.limits.max_input_bytes {
            return Ok(Screening::fail_closed(
                &set.version,
                "input-too-large",
                format!(
                    "the message is {size} bytes, over the {} bytes the policy can screen; nothing this large is sent unscreened",
                    set.limits.max_input_bytes
                ),
            ));
        }

        let library: Vec<(String, bool)> = ctx
            .claims
            .iter()
            .map(|c| {
                let t = fold(&c.text);
                let t = t.trim().trim_end_matches(['.', '。']).to_owned();
                (t, !c.citations.is_empty())
            })
            .filter(|(t, _)| !t.is_empty())
            .collect();
        let scanned: Vec<Scanned<'_>> = message
            .parts
            .iter()
            .map(|p| self.scan(p, &library))
            .collect();

        // The products in play: the one in context, else those named.
        let mut products: Vec<usize> = Vec::new();
        if let Some(p) = &ctx.product {
            products.extend(self.product_ids.iter().position(|x| x == p));
        } else {
            for s in &scanned {
                for (o, _) in &s.hits {
                    if let Owner::Product(i) = o
                        && !products.contains(i)
                    {
                        products.push(*i);
                    }
                }
            }
        }
        let facts: HashSet<&str> = products
            .iter()
            .filter_map(|i| set.products.get(&self.product_ids[*i]))
            .flat_map(|p| p.label_facts.keys().map(String::as_str))
            .collect();

        let mut findings = Vec::new();
        for (pi, s) in scanned.iter().enumerate() {
            let mut candidates: Vec<(usize, Range<usize>)> = s
                .hits
                .iter()
                .filter_map(|(o, r)| match o {
                    Owner::Claim(i) => Some((*i, r.clone())),
                    _ => None,
                })
                .collect();
            for idx in self.regex_set.matches(&s.norm.text).iter() {
                let rule = self.regex_owner[idx];
                for m in self.regexes[idx].find_iter(&s.norm.text) {
                    candidates.push((rule, m.range()));
                }
            }
            candidates.sort_by_key(|(r, m)| (*r, m.start, usize::MAX - m.end));
            let mut last: Option<(usize, usize)> = None;
            for (ri, m) in candidates {
                if last.is_some_and(|(r, end)| r == ri && m.start < end) {
                    continue;
                }
                let rule = &set.claims[ri];
                if !rule.scope.applies(&ctx.market, ctx.channel, ctx.audience)
                    || self.cleared(rule, s, &m, &facts)
                {
                    continue;
                }
                last = Some((ri, m.end));
                findings.push(finding(s, pi, &m, &rule.meta, rule.kind, None));
            }
            self.off_label(ctx, s, pi, &products, &mut findings);
        }
        self.not_marketed(ctx, &scanned, &products, &mut findings);
        self.required(ctx, &scanned, !products.is_empty(), &mut findings);

        findings.sort_by(|a, b| (a.part, a.start, &a.rule).cmp(&(b.part, b.start, &b.rule)));
        let block = findings.iter().any(|f| f.severity == Severity::Block);
        Ok(Screening {
            verdict: if block {
                Verdict::Block
            } else {
                Verdict::Allow
            },
            policy_version: set.version.clone(),
            findings,
        })
    }

    /// Every occurrence of every term, overlapping ones included: the
    /// leftmost-longest search finds where the next term starts, then
    /// anchored searches with a shrinking end list the shorter terms that
    /// start at the same place (`prescribing information` inside `full
    /// prescribing information` starts elsewhere and is found in turn).
    fn terms_in(&self, t: &str) -> Vec<(Owner, Range<usize>)> {
        let mut hits = Vec::new();
        let mut pos = 0;
        while pos < t.len() {
            let Some(first) = self.ac.find(Input::new(t).span(pos..t.len())) else {
                break;
            };
            let start = first.start();
            let mut found = Some(first);
            while let Some(m) = found {
                let term = &self.terms[m.pattern().as_usize()];
                if text::at_word_boundary(t, m.start(), m.end(), term.word_start, term.word_end) {
                    hits.extend(term.owners.iter().map(|o| (*o, m.range())));
                }
                found = (m.end() > start + 1)
                    .then(|| {
                        let input = Input::new(t)
                            .span(start..m.end() - 1)
                            .anchored(Anchored::Yes);
                        self.ac.find(input)
                    })
                    .flatten();
            }
            pos = start + t[start..].chars().next().map_or(1, char::len_utf8);
        }
        hits
    }

    fn scan<'a>(&self, part: &'a Part, library: &[(String, bool)]) -> Scanned<'a> {
        let norm = match part.kind {
            PartKind::Html => normalize_html(&part.text),
            _ => normalize(&part.text),
        };
        let t = &norm.text;
        let hits = self.terms_in(t);
        let mut cited = Vec::new();
        for (claim, has_citation) in library {
            if *has_citation {
                cited.extend(t.match_indices(claim.as_str()).map(|(i, c)| i..i + c.len()));
            }
        }
        Scanned {
            original: &part.text,
            norm,
            hits,
            cited,
        }
    }

    /// Whether context clears a match: an exception phrase, a negation, the
    /// rule's proximity condition, or all of its evidence.
    fn cleared(
        &self,
        rule: &ClaimRule,
        s: &Scanned<'_>,
        m: &Range<usize>,
        facts: &HashSet<&str>,
    ) -> bool {
        let t = &s.norm.text;
        if rule.except.iter().any(|e| text::inside_phrase(t, m, e)) {
            return true;
        }
        if rule.negations.is_empty() && rule.only_near.is_empty() && rule.evidence.is_none() {
            return false;
        }
        let sentence = s.sentence(m);
        if rule
            .negations
            .iter()
            .any(|n| text::negated(t, sentence.start, m.start, n, 2))
        {
            return true;
        }
        let body = &t[sentence.clone()];
        if !rule.only_near.is_empty()
            && !rule.only_near.iter().any(|w| text::contains_word(body, w))
        {
            return true;
        }
        let Some(ev) = &rule.evidence else {
            return false;
        };
        let cited = || {
            s.cited.iter().any(|c| c.start <= m.start && m.end <= c.end)
                || self.citation.as_ref().is_some_and(|re| {
                    re.is_match(&t[text::with_trailing_markers(t, sentence.clone())])
                })
        };
        (!ev.citation || cited())
            && ev
                .label_fact
                .as_ref()
                .is_none_or(|f| facts.contains(f.as_str()))
            && (ev.sentence_has.is_empty()
                || ev.sentence_has.iter().any(|w| text::contains_word(body, w)))
    }

    fn off_label(
        &self,
        ctx: &Context,
        s: &Scanned<'_>,
        pi: usize,
        products: &[usize],
        out: &mut Vec<Finding>,
    ) {
        if products.is_empty() {
            return;
        }
        let rule = &self.set.off_label;
        let t = &s.norm.text;
        for (o, m) in &s.hits {
            let Owner::Indication(i) = o else { continue };
            let ind = &self.indication_ids[*i];
            let approved = products.iter().any(|p| {
                self.set
                    .products
                    .get(&self.product_ids[*p])
                    .is_some_and(|p| p.indications.contains(ind))
            });
            if approved {
                continue;
            }
            let sentence = s.sentence(m);
            if rule
                .negations
                .iter()
                .any(|n| text::negated(t, sentence.start, m.start, n, 5))
            {
                continue;
            }
            let names: Vec<&str> = products
                .iter()
                .filter_map(|p| self.set.products.get(&self.product_ids[*p]))
                .map(|p| p.name.as_str())
                .collect();
            let name = self
                .set
                .indications
                .get(ind)
                .map_or(ind.as_str(), |x| x.name.as_str());
            let why = format!(
                "{}: `{name}` is not an approved indication of {} in {}",
                rule.meta.reason,
                names.join(", "),
                ctx.market
            );
            if !out.iter().any(|f| {
                f.rule == rule.meta.id
                    && f.part == pi
                    && f.start == s.norm.original_span(m.clone()).start
            }) {
                out.push(finding(
                    s,
                    pi,
                    m,
                    &rule.meta,
                    FindingKind::OffLabel,
                    Some(why),
                ));
            }
        }
    }

    fn not_marketed(
        &self,
        ctx: &Context,
        scanned: &[Scanned<'_>],
        products: &[usize],
        out: &mut Vec<Finding>,
    ) {
        let rule = &self.set.not_marketed;
        for &p in products {
            let Some(prod) = self.set.products.get(&self.product_ids[p]) else {
                continue;
            };
            if prod.markets.contains(&ctx.market) {
                continue;
            }
            let why = format!(
                "{}: {} is not approved in {}",
                rule.meta.reason, prod.name, ctx.market
            );
            // Point at the first mention, or at the start when the product
            // comes from the context only.
            let mention = scanned.iter().enumerate().find_map(|(pi, s)| {
                s.hits
                    .iter()
                    .find(|(o, _)| *o == Owner::Product(p))
                    .map(|(_, m)| (pi, s, m.clone()))
            });
            match mention {
                Some((pi, s, m)) => out.push(finding(
                    s,
                    pi,
                    &m,
                    &rule.meta,
                    FindingKind::OffLabel,
                    Some(why),
                )),
                None => out.push(Finding {
                    rule: rule.meta.id.clone(),
                    kind: FindingKind::OffLabel,
                    severity: rule.meta.severity,
                    part: 0,
                    start: 0,
                    end: 0,
                    excerpt: String::new(),
                    reason: why,
                    reference: rule.meta.reference.clone(),
                }),
            }
        }
    }

    fn required(
        &self,
        ctx: &Context,
        scanned: &[Scanned<'_>],
        promoted: bool,
        out: &mut Vec<Finding>,
    ) {
        let Some(market) = self.set.markets.get(&ctx.market) else {
            return;
        };
        let present: HashSet<usize> = scanned
            .iter()
            .flat_map(|s| s.hits.iter())
            .filter_map(|(o, _)| match o {
                Owner::Required(k) => Some(*k),
                _ => None,
            })
            .collect();
        let (last_part, end) = scanned
            .iter()
            .enumerate()
            .next_back()
            .map_or((0, 0), |(i, s)| (i, s.original.len()));
        for (j, r) in market.require.iter().enumerate() {
            if !r.scope.applies(&ctx.market, ctx.channel, ctx.audience)
                || (r.when_product && !promoted)
            {
                continue;
            }
            let k = self
                .required
                .iter()
                .position(|(c, x)| *c == market.code && *x == j);
            if k.is_some_and(|k| present.contains(&k)) {
                continue;
            }
            let expected: Vec<String> = r.any_of.iter().map(|a| format!("`{a}`")).collect();
            out.push(Finding {
                rule: r.meta.id.clone(),
                kind: FindingKind::RequiredElement,
                severity: r.meta.severity,
                part: last_part,
                start: end,
                end,
                excerpt: String::new(),
                reason: format!(
                    "{} (expected one of: {})",
                    r.meta.reason,
                    expected.join(", ")
                ),
                reference: r.meta.reference.clone(),
            });
        }
    }
}

fn finding(
    s: &Scanned<'_>,
    part: usize,
    m: &Range<usize>,
    meta: &crate::model::RuleMeta,
    kind: FindingKind,
    reason: Option<String>,
) -> Finding {
    let span = s.norm.original_span(m.clone());
    Finding {
        rule: meta.id.clone(),
        kind,
        severity: meta.severity,
        part,
        start: span.start,
        end: span.end,
        excerpt: s.original.get(span.clone()).unwrap_or_default().to_owned(),
        reason: reason.unwrap_or_else(|| meta.reason.clone()),
        reference: meta.reference.clone(),
    }
}
