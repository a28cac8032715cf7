//! Screening: the human-visible parts of a message, in context, against the
//! compiled content rules (claims, citations, patient data, off-label,
//! required elements). Matching runs on normalized text; every finding's
//! span points into the original part.

use std::collections::HashSet;
use std::ops::Range;

use aho_corasick::Anchored;
use aho_corasick::automaton::Automaton;
use regex_automata::dfa::{self, Automaton as _, dense};

use crate::compile::{CompiledPolicy, Owner, Search, StartSearch, WordSet};
use crate::message::{Context, Finding, Message, PartKind, ScreenError, Screening, Verdict};
use crate::model::{ClaimRule, FindingKind, Severity};
use crate::normalize::{Normalized, fold, normalize, normalize_html};
use crate::text;

/// A normalized part and what the automaton found in it.
struct Scanned<'a> {
    /// Index of the part in the message.
    part: usize,
    original: &'a str,
    norm: Normalized,
    /// Term occurrences at word boundaries, by start (longest first).
    hits: Vec<(Owner, Range<usize>)>,
    /// Pattern matches: (claim rule, normalized span), by pattern.
    matches: Vec<(usize, Range<usize>)>,
    /// Normalized spans of cited claims-library entries.
    cited: Vec<Range<usize>>,
    /// Whether a citation marker is in or right after a sentence: several
    /// matches often share one.
    citations: std::cell::RefCell<Vec<(Range<usize>, bool)>>,
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
        let parts: Vec<(PartKind, &str)> = message
            .parts
            .iter()
            .map(|p| (p.kind, p.text.as_str()))
            .collect();
        self.screen_parts(&parts, ctx)
    }

    /// [`Self::screen`] over borrowed parts `(kind, text exactly as
    /// sent)`, in the order a reader meets them: the gate screens the
    /// rendered text in place instead of copying it into a [`Message`].
    pub fn screen_parts(
        &self,
        parts: &[(PartKind, &str)],
        ctx: &Context,
    ) -> Result<Screening, ScreenError> {
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
        let size: usize = parts.iter().map(|(_, t)| t.len()).sum();
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
        let mut scanned: Vec<Scanned<'_>> = Vec::with_capacity(parts.len());
        for (pi, &(kind, text)) in parts.iter().enumerate() {
            self.scan(pi, kind, text, &library, &mut scanned);
        }
        let twice = scanned.len() > parts.len();

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
        let facts: Vec<&str> = products
            .iter()
            .filter_map(|i| set.products.get(&self.product_ids[*i]))
            .flat_map(|p| p.label_facts.keys().map(String::as_str))
            .collect();

        let mut findings = Vec::new();
        for s in &scanned {
            let pi = s.part;
            let mut candidates: Vec<(usize, Range<usize>)> = s
                .hits
                .iter()
                .filter_map(|(o, r)| match o {
                    Owner::Claim(i) => Some((*i, r.clone())),
                    _ => None,
                })
                .collect();
            candidates.extend(s.matches.iter().cloned());
            candidates.sort_by_key(|(r, m)| (*r, m.start, usize::MAX - m.end));
            let mut last: Option<(usize, usize)> = None;
            for (ri, m) in candidates {
                if last.is_some_and(|(r, end)| r == ri && m.start < end) {
                    continue;
                }
                let rule = &set.claims[ri];
                if !rule.scope.applies(&ctx.market, ctx.channel, ctx.audience)
                    || self.cleared(ri, rule, s, &m, &facts)
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
        if twice {
            // A part screened with and without joined letter spacing finds
            // most things twice.
            let mut seen = HashSet::new();
            findings.retain(|f| seen.insert((f.part, f.start, f.end, f.rule.clone())));
        }
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

    /// One pass of the automaton over `t`: every occurrence of every term
    /// at word boundaries (overlapping ones included), and which patterns
    /// to run: `triggered` for those to run over the whole text, `at`
    /// (pattern, position) for those searched from where their atoms start
    /// or end. The unfiltered patterns' DFA steps beside the automaton; if
    /// it ever gives up, their set runs over the text afterwards.
    ///
    /// The pass is one chain of table lookups per byte, each waiting for
    /// the last. A text of some length is therefore cut in two and both
    /// halves run in the same loop: the second half starts early enough
    /// (the longest literal or unfiltered match) to see every match that
    /// ends in it, and reports only those.
    fn terms_in(
        &self,
        t: &str,
        joined: &[Range<usize>],
        triggered: &mut [bool],
        at: &mut Vec<(usize, usize)>,
    ) -> Vec<(Owner, Range<usize>)> {
        // Sized for typical copy (a term or atom every few dozen bytes), so
        // that collecting them seldom reallocates.
        let mut hits = Vec::with_capacity(t.len() / 8 + 16);
        let bytes = t.as_bytes();
        let n = bytes.len();
        let wide = bytes.iter().fold(0u8, |m, &b| m.max(b)) >= crate::compile::NARROW;
        let (ac, ids) = match &self.narrow {
            Some((ac, ids)) if !wide => (ac, Some(ids.as_slice())),
            _ => (&self.ac, None),
        };
        let Ok(start) = ac.start_state(Anchored::No) else {
            return hits;
        };
        let dfa_start = |from: usize| {
            let input = regex_automata::Input::new(t).range(from..);
            self.unfiltered_dfa
                .as_ref()
                .and_then(|d| d.start_state_forward(&input).ok())
        };
        let mut dfa = self.unfiltered_dfa.as_ref();
        let mut run_set = dfa.is_none();
        let mut chains = [Chain::new(start, dfa_start(0), 0, n, 0), Chain::idle()];
        let back = ac
            .max_pattern_len()
            .max(self.unfiltered_max_len.unwrap_or(0));
        if n >= 4 * back.max(64) && (dfa.is_none() || self.unfiltered_max_len.is_some()) {
            let mid = n / 2;
            let from = mid - back;
            chains[0].end = mid;
            chains[1] = Chain::new(start, dfa_start(from), from, n, mid);
        }
        if dfa.is_some() && chains.iter().any(|c| c.active() && c.d.is_none()) {
            dfa = None;
            run_set = true;
        }
        let mut ctx = PassCtx {
            policy: self,
            ac,
            ids,
            t,
            joined,
            triggered,
            at,
            hits: &mut hits,
        };
        loop {
            let [a, b] = &mut chains;
            let moved = match (a.active(), b.active(), dfa) {
                (true, true, Some(dfa_ref)) => {
                    if !step2_both(ac, dfa_ref, a, b, bytes) {
                        // A chain without a DFA state: the set decides.
                        dfa = None;
                        run_set = true;
                    }
                    [true, true]
                }
                (true, true, None) => {
                    step2(ac, a, b, bytes);
                    [true, true]
                }
                (true, false, _) | (false, true, _) => {
                    let first = a.active();
                    let c = if first { &mut *a } else { &mut *b };
                    let part = &bytes[..c.end.min(n)];
                    match (dfa, c.d) {
                        (Some(dfa), Some(d)) => {
                            let (sid, d, i) = advance_both(ac, c.sid, dfa, d, part, c.i);
                            (c.sid, c.d, c.i) = (sid, Some(d), i);
                        }
                        (d, _) => {
                            if d.is_some() {
                                // No DFA state to step: the set decides.
                                dfa = None;
                                run_set = true;
                            }
                            (c.sid, c.i) = advance(ac, c.sid, part, c.i);
                        }
                    }
                    [first, !first]
                }
                (false, false, _) => break,
            };
            for (k, c) in chains.iter().enumerate() {
                if !moved[k] {
                    continue;
                }
                if ac.is_match(c.sid) && c.i > c.after {
                    ctx.literal_matches(c.sid, c.i);
                }
                if let (Some(d), Some(dfa_ref)) = (c.d, dfa)
                    && dfa_ref.is_special_state(d)
                {
                    if dfa_ref.is_match_state(d) {
                        // A DFA sees a match one byte late.
                        if c.i > c.after {
                            note_dfa_matches(dfa_ref, d, c.i - 1, self, ctx.triggered, ctx.at);
                        }
                    } else {
                        // It gave up, or nothing more can match: the set
                        // decides instead.
                        dfa = None;
                        run_set = true;
                    }
                }
            }
        }
        // The chain that ran to the end of the text sees matches at its end.
        if let Some(dfa) = dfa
            && let Some(c) = chains.iter().find(|c| c.end == n)
            && let Some(d) = c.d
        {
            let eoi = dfa.next_eoi_state(d);
            if dfa.is_match_state(eoi) {
                note_dfa_matches(dfa, eoi, n, self, ctx.triggered, ctx.at);
            }
        }
        if run_set && let Some(set) = &self.unfiltered_set {
            let mut found = regex_automata::PatternSet::new(set.pattern_len());
            set.which_overlapping_matches(&regex_automata::Input::new(t), &mut found);
            for k in found.iter() {
                if let Some(&r) = self.unfiltered.get(k.as_usize()) {
                    ctx.triggered[r] = true;
                }
            }
        }
        // By start, longest first, as a reader meets them.
        hits.sort_by_key(|(_, r)| (r.start, usize::MAX - r.end));
        hits
    }

    /// The matches of every pattern that may match `t`, pattern by
    /// pattern, each as `find_iter` would list them. `at` holds, for the
    /// patterns searched from their atoms, where an atom started (`Start`)
    /// or ended (`End`).
    fn patterns_in(
        &self,
        t: &str,
        triggered: &[bool],
        at: &mut Vec<(usize, usize)>,
    ) -> Vec<(usize, Range<usize>)> {
        let mut matches = Vec::new();
        at.sort_unstable();
        at.dedup();
        // Only a pattern triggered or with an atom in the text can match:
        // visiting just those (in pattern order, as the loop over all did)
        // keeps a short text from paying for every pattern of the policy.
        let mut todo: Vec<usize> = at.iter().map(|&(r, _)| r).collect();
        todo.extend(
            triggered
                .iter()
                .enumerate()
                .filter_map(|(r, &on)| on.then_some(r)),
        );
        todo.sort_unstable();
        todo.dedup();
        let mut at = at.iter().peekable();
        let mut here = Vec::new();
        for r in todo {
            here.clear();
            while let Some(&(_, x)) = at.next_if(|(p, _)| *p == r) {
                here.push(x);
            }
            let (Some(re), Some(&rule)) = (self.regexes.get(r), self.regex_owner.get(r)) else {
                continue;
            };
            // The whole text when the pattern was found some other way than
            // by its atoms, has too many ends to try one by one, or a DFA
            // gave up.
            let whole = match self.search.get(r) {
                Some(Search::Start(s)) => {
                    triggered[r] || !from_starts(t, s, &here, rule, &mut matches)
                }
                Some(Search::End(e)) => {
                    triggered[r]
                        || (!here.is_empty()
                            && (here.len() > 64 || !from_ends(t, e, &here, rule, &mut matches)))
                }
                _ => triggered[r],
            };
            if whole {
                matches.extend(re.find_iter(t).map(|m| (rule, m.range())));
            }
        }
        matches
    }

    /// Normalizes and scans a part. When letter-spaced words were joined,
    /// the text as it was before is scanned too: joining may swallow a
    /// letter a pattern needs (`c u r e s p < 0.05`) or move a negation
    /// closer, and must only ever add findings.
    fn scan<'a>(
        &self,
        pi: usize,
        kind: PartKind,
        text: &'a str,
        library: &[(String, bool)],
        out: &mut Vec<Scanned<'a>>,
    ) {
        let mut norm = match kind {
            PartKind::Html => normalize_html(text),
            _ => normalize(text),
        };
        let unjoined = norm.take_unjoined();
        out.push(self.scan_text(pi, text, norm, library));
        if let Some(n) = unjoined {
            out.push(self.scan_text(pi, text, n, library));
        }
    }

    fn scan_text<'a>(
        &self,
        pi: usize,
        original: &'a str,
        norm: Normalized,
        library: &[(String, bool)],
    ) -> Scanned<'a> {
        let t = &norm.text;
        let mut triggered = vec![false; self.regexes.len()];
        let mut starts = Vec::with_capacity(t.len() / 8 + 16);
        let hits = self.terms_in(t, norm.joined(), &mut triggered, &mut starts);
        let matches = self.patterns_in(t, &triggered, &mut starts);
        let mut cited = Vec::new();
        for (claim, has_citation) in library {
            if *has_citation {
                cited.extend(t.match_indices(claim.as_str()).map(|(i, c)| i..i + c.len()));
            }
        }
        Scanned {
            part: pi,
            original,
            norm,
            hits,
            matches,
            cited,
            citations: std::cell::RefCell::new(Vec::new()),
        }
    }

    /// Whether context clears a match: an exception phrase, a negation, the
    /// rule's proximity condition, or all of its evidence.
    fn cleared(
        &self,
        ri: usize,
        rule: &ClaimRule,
        s: &Scanned<'_>,
        m: &Range<usize>,
        facts: &[&str],
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
        let any_word = |set: Option<&Option<WordSet>>, words: &[String]| match set {
            Some(Some(set)) => set.any_in(body),
            _ => words.iter().any(|w| text::contains_word(body, w)),
        };
        if !rule.only_near.is_empty() && !any_word(self.near.get(ri), &rule.only_near) {
            return true;
        }
        let Some(ev) = &rule.evidence else {
            return false;
        };
        let cited = || {
            s.cited.iter().any(|c| c.start <= m.start && m.end <= c.end)
                || self.citation.as_ref().is_some_and(|re| {
                    let known = s
                        .citations
                        .borrow()
                        .iter()
                        .find(|c| c.0 == sentence)
                        .map(|c| c.1);
                    known.unwrap_or_else(|| {
                        let found =
                            re.is_match(&t[text::with_trailing_markers(t, sentence.clone())]);
                        s.citations.borrow_mut().push((sentence.clone(), found));
                        found
                    })
                })
        };
        // Cheapest first: all three must hold, and the citation markers
        // are a regex over the sentence.
        ev.label_fact
            .as_ref()
            .is_none_or(|f| facts.contains(&f.as_str()))
            && (ev.sentence_has.is_empty() || any_word(self.has.get(ri), &ev.sentence_has))
            && (!ev.citation || cited())
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
            let mention = scanned.iter().find_map(|s| {
                s.hits
                    .iter()
                    .find(|(o, _)| *o == Owner::Product(p))
                    .map(|(_, m)| (s.part, s, m.clone()))
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
        let mut present = vec![false; self.required.len()];
        for s in scanned {
            for (o, _) in &s.hits {
                if let Owner::Required(k) = o
                    && let Some(p) = present.get_mut(*k)
                {
                    *p = true;
                }
            }
        }
        let (last_part, end) = scanned
            .iter()
            .max_by_key(|s| s.part)
            .map_or((0, 0), |s| (s.part, s.original.len()));
        // A market's elements are numbered one after the other.
        let base = self.required.iter().position(|(c, _)| *c == market.code);
        for (j, r) in market.require.iter().enumerate() {
            if !r.scope.applies(&ctx.market, ctx.channel, ctx.audience)
                || (r.when_product && !promoted)
            {
                continue;
            }
            let k = base
                .map(|b| b + j)
                .filter(|&k| self.required.get(k).is_some_and(|x| x.1 == j));
            if k.is_some_and(|k| present[k]) {
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

/// Where one chain of the pass is: the automaton's state, the unfiltered
/// DFA's (`None` when it does not run), the next byte, the end of its
/// part of the text, and the end a match must be past to be its to report.
#[derive(Debug, Clone, Copy)]
struct Chain {
    sid: aho_corasick::automaton::StateID,
    d: Option<regex_automata::util::primitives::StateID>,
    i: usize,
    end: usize,
    after: usize,
}

impl Chain {
    fn new(
        sid: aho_corasick::automaton::StateID,
        d: Option<regex_automata::util::primitives::StateID>,
        i: usize,
        end: usize,
        after: usize,
    ) -> Chain {
        Chain {
            sid,
            d,
            i,
            end,
            after,
        }
    }

    fn idle() -> Chain {
        Chain::new(aho_corasick::automaton::StateID::ZERO, None, 0, 0, 0)
    }

    fn active(&self) -> bool {
        self.i < self.end
    }
}

/// What the pass collects.
struct PassCtx<'p, 't> {
    policy: &'p CompiledPolicy,
    /// The automaton of the pass, and what its pattern ids index in
    /// `words` (`None`: the same index).
    ac: &'p aho_corasick::dfa::DFA,
    ids: Option<&'p [usize]>,
    t: &'t str,
    joined: &'p [Range<usize>],
    triggered: &'p mut [bool],
    at: &'p mut Vec<(usize, usize)>,
    hits: &'p mut Vec<(Owner, Range<usize>)>,
}

impl PassCtx<'_, '_> {
    /// The literals that end at `end`, in automaton state `sid`.
    fn literal_matches(&mut self, sid: aho_corasick::automaton::StateID, end: usize) {
        let p = self.policy;
        let ac = self.ac;
        for k in 0..ac.match_len(sid) {
            let pid = ac.match_pattern(sid, k);
            let begin = end - ac.pattern_len(pid);
            let index = match self.ids {
                Some(ids) => ids.get(pid.as_usize()).copied(),
                None => Some(pid.as_usize()),
            };
            let Some(word) = index.and_then(|i| p.words.get(i)) else {
                continue;
            };
            for &r in &word.triggers {
                match p.search.get(r) {
                    Some(Search::Start(_)) => self.at.push((r, begin)),
                    Some(Search::End(_)) => self.at.push((r, end)),
                    _ => {
                        if let Some(x) = self.triggered.get_mut(r) {
                            *x = true;
                        }
                    }
                }
            }
            // Inside a joined letter-spaced word, any position may be
            // where a word began or ended.
            let inside = |x: usize| self.joined.iter().any(|r| r.start < x && x < r.end);
            if let Some(term) = &word.term
                && text::at_word_boundary(
                    self.t,
                    begin,
                    end,
                    term.word_start && !inside(begin),
                    term.word_end && !inside(end),
                )
            {
                self.hits
                    .extend(term.owners.iter().map(|o| (*o, begin..end)));
            }
        }
    }
}

/// Two chains of the automaton in one loop, until either reaches a match
/// state or the end of its part.
#[inline(never)]
fn step2(ac: &aho_corasick::dfa::DFA, a: &mut Chain, b: &mut Chain, bytes: &[u8]) {
    let (mut sa, mut ia, ea) = (a.sid, a.i, a.end.min(bytes.len()));
    let (mut sb, mut ib, eb) = (b.sid, b.i, b.end.min(bytes.len()));
    while ia < ea && ib < eb {
        sa = ac.next_state(Anchored::No, sa, bytes[ia]);
        sb = ac.next_state(Anchored::No, sb, bytes[ib]);
        ia += 1;
        ib += 1;
        if ac.is_special(sa) | ac.is_special(sb) {
            break;
        }
    }
    (a.sid, a.i, b.sid, b.i) = (sa, ia, sb, ib);
}

/// [`step2`] with the unfiltered DFA stepping in each chain too: four
/// independent chains of lookups in one loop. `false` if a chain had no
/// DFA state (then only the automaton stepped).
#[inline(never)]
fn step2_both(
    ac: &aho_corasick::dfa::DFA,
    dfa: &dense::DFA<Vec<u32>>,
    a: &mut Chain,
    b: &mut Chain,
    bytes: &[u8],
) -> bool {
    let (Some(mut da), Some(mut db)) = (a.d, b.d) else {
        step2(ac, a, b, bytes);
        return false;
    };
    let (mut sa, mut ia, ea) = (a.sid, a.i, a.end.min(bytes.len()));
    let (mut sb, mut ib, eb) = (b.sid, b.i, b.end.min(bytes.len()));
    while ia < ea && ib < eb {
        let (x, y) = (bytes[ia], bytes[ib]);
        sa = ac.next_state(Anchored::No, sa, x);
        da = dfa.next_state(da, x);
        sb = ac.next_state(Anchored::No, sb, y);
        db = dfa.next_state(db, y);
        ia += 1;
        ib += 1;
        if ac.is_special(sa)
            | ac.is_special(sb)
            | dfa.is_special_state(da)
            | dfa.is_special_state(db)
        {
            break;
        }
    }
    (a.sid, a.d, a.i) = (sa, Some(da), ia);
    (b.sid, b.d, b.i) = (sb, Some(db), ib);
    true
}

/// Runs the automaton from state `sid` at byte `i` up to the next match
/// state or the end of the text; returns the state and the byte after it.
/// A loop of its own, so that it stays in registers: this is the one loop
/// over every byte of every text.
#[inline(never)]
fn advance(
    ac: &aho_corasick::dfa::DFA,
    mut sid: aho_corasick::automaton::StateID,
    bytes: &[u8],
    mut i: usize,
) -> (aho_corasick::automaton::StateID, usize) {
    while let Some(&b) = bytes.get(i) {
        sid = ac.next_state(Anchored::No, sid, b);
        i += 1;
        if ac.is_special(sid) {
            break;
        }
    }
    (sid, i)
}

/// The matches of a pattern every match of which starts with an atom,
/// given where atoms start: trying each in turn, anchored, from where the
/// last match ended, lists the same matches as `find_iter` over the text.
/// `false` if the DFA gave up (then the caller searches the whole text).
fn from_starts(
    t: &str,
    re: &StartSearch,
    starts: &[usize],
    rule: usize,
    out: &mut Vec<(usize, Range<usize>)>,
) -> bool {
    let mut found = Vec::new();
    let mut from = 0;
    for &s in starts {
        if s < from {
            continue;
        }
        let input = regex_automata::Input::new(t)
            .range(s..)
            .anchored(regex_automata::Anchored::Yes);
        let end = match re {
            // A forward DFA knows where the match ends; it starts at `s`.
            StartSearch::Dfa(dfa) => match dfa.as_ref().try_search_fwd(&input) {
                Ok(m) => m.map(|m| m.offset()),
                Err(_) => return false,
            },
            StartSearch::Meta(re) => re.search(&input).map(|m| m.end()),
        };
        if let Some(e) = end {
            found.push((rule, s..e));
            from = e.max(s + 1);
        }
    }
    out.extend(found);
    true
}

/// The matches of a pattern every match of which ends with an atom, given
/// where atoms end: from each, a reverse search finds the leftmost start of
/// a match ending there; the leftmost of those starts is where `find_iter`
/// finds the next match, and an anchored forward search there finds it.
/// `false` if the DFAs gave up (then the caller searches the whole text).
fn from_ends(
    t: &str,
    re: &dfa::regex::Regex,
    ends: &[usize],
    rule: usize,
    out: &mut Vec<(usize, Range<usize>)>,
) -> bool {
    // The leftmost start of a match ending at each end, from `from` on:
    // found once, and again only when a match found since covers it.
    let rev = |from: usize, e: usize| {
        let input = regex_automata::Input::new(t)
            .range(from..e)
            .anchored(regex_automata::Anchored::Yes);
        re.reverse()
            .try_search_rev(&input)
            .map(|h| h.map(|h| h.offset()))
    };
    let mut first: Vec<Option<usize>> = Vec::with_capacity(ends.len());
    for &e in ends {
        match rev(0, e) {
            Ok(s) => first.push(s),
            Err(_) => return false,
        }
    }
    let mut found = Vec::new();
    let mut from = 0;
    loop {
        let mut best: Option<usize> = None;
        for (k, &e) in ends.iter().enumerate() {
            if e <= from {
                continue;
            }
            if first[k].is_some_and(|s| s < from) {
                first[k] = match rev(from, e) {
                    Ok(s) => s,
                    Err(_) => return false,
                };
            }
            if let Some(s) = first[k] {
                best = Some(best.map_or(s, |b| b.min(s)));
            }
        }
        let Some(s) = best else { break };
        let input = regex_automata::Input::new(t)
            .range(s..)
            .anchored(regex_automata::Anchored::Yes);
        match re.try_search(&input) {
            Ok(Some(m)) if m.end() > s => {
                found.push((rule, m.range()));
                from = m.end();
            }
            _ => return false,
        }
    }
    out.extend(found);
    true
}

/// [`advance`] with the unfiltered patterns' DFA stepping beside the
/// automaton: two independent chains of table lookups in one loop cost
/// little more than one. Stops when either reaches a special state.
#[inline(never)]
fn advance_both(
    ac: &aho_corasick::dfa::DFA,
    mut sid: aho_corasick::automaton::StateID,
    dfa: &dense::DFA<Vec<u32>>,
    mut d: regex_automata::util::primitives::StateID,
    bytes: &[u8],
    mut i: usize,
) -> (
    aho_corasick::automaton::StateID,
    regex_automata::util::primitives::StateID,
    usize,
) {
    while let Some(&b) = bytes.get(i) {
        sid = ac.next_state(Anchored::No, sid, b);
        d = dfa.next_state(d, b);
        i += 1;
        if ac.is_special(sid) | dfa.is_special_state(d) {
            break;
        }
    }
    (sid, d, i)
}

/// Notes the unfiltered patterns that match in DFA state `d`, reached
/// with a match ending at `end`: where it ends, or that it matched.
fn note_dfa_matches(
    dfa: &dense::DFA<Vec<u32>>,
    d: regex_automata::util::primitives::StateID,
    end: usize,
    policy: &CompiledPolicy,
    triggered: &mut [bool],
    at: &mut Vec<(usize, usize)>,
) {
    for k in 0..dfa.match_len(d) {
        let Some(&r) = policy.unfiltered.get(dfa.match_pattern(d, k).as_usize()) else {
            continue;
        };
        match policy.search.get(r) {
            Some(Search::End(_)) => at.push((r, end)),
            _ => {
                if let Some(x) = triggered.get_mut(r) {
                    *x = true;
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use regex_automata::meta;

    /// Every position where one of `atoms` starts or ends in `t`.
    fn positions(t: &str, atoms: &[&str], end: bool) -> Vec<usize> {
        let mut out: Vec<usize> = atoms
            .iter()
            .flat_map(|a| {
                t.match_indices(a)
                    .map(|(i, m)| if end { i + m.len() } else { i })
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    fn policy() -> CompiledPolicy {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
        crate::load_dir(&dir).unwrap()
    }

    fn us() -> Context {
        Context::new("US", omnigate_core::Channel::Email, crate::Audience::Hcp)
    }

    #[test]
    fn letter_spaced_claims_block_with_spans_over_the_spaced_out_original() {
        let policy = policy();
        for (text, spaced) in [
            ("It c u r e s it. Unsubscribe.", "c u r e s"),
            ("It c.u.r.e.s it. Unsubscribe.", "c.u.r.e.s"),
            ("It c-u-r-e-s it. Unsubscribe.", "c-u-r-e-s"),
            ("It c_u_r_e_s it. Unsubscribe.", "c_u_r_e_s"),
            (
                "It is g u a r a n t e e d. Unsubscribe.",
                "g u a r a n t e e d",
            ),
        ] {
            let s = policy.screen(&Message::text(text), &us()).unwrap();
            assert_eq!(s.verdict, Verdict::Block, "{text}");
            assert!(
                s.findings
                    .iter()
                    .any(|f| f.excerpt == spaced && &text[f.start..f.end] == spaced),
                "{text}: {:?}",
                s.findings
            );
        }
    }

    #[test]
    fn joining_letters_loses_nothing_found_without_joining() {
        // Joined, `s p` reads `sp`: the p-value is found in the text as
        // written, the claim in the joined one.
        let policy = policy();
        let s = policy
            .screen(
                &Message::text("It c u r e s p < 0.05 too. Unsubscribe."),
                &us(),
            )
            .unwrap();
        let rules = s.rule_ids();
        assert!(rules.contains(&"absolute-cure".to_owned()), "{rules:?}");
        assert!(rules.contains(&"uncited-statistic".to_owned()), "{rules:?}");
        // Found in both, reported once.
        let cures = s
            .findings
            .iter()
            .filter(|f| f.rule == "absolute-cure")
            .count();
        assert_eq!(cures, 1);
    }

    #[test]
    fn long_texts_screened_in_two_halves_find_matches_at_the_seam() {
        // The pass cuts long texts in two: a claim, a phone number and a
        // percentage placed at every offset around the middle are found
        // exactly as often as in a short text.
        let policy = policy();
        let filler = "Blood pressure was measured at each visit. ".repeat(20);
        for shift in 0..12 {
            let text = format!(
                "{}{}Cardiozen cures it, patient line 555-201-3344, 62% [1]. {filler}Unsubscribe.",
                &filler[..filler.len() - shift],
                " ".repeat(shift)
            );
            let s = policy.screen(&Message::text(text.clone()), &us()).unwrap();
            let rules = s.rule_ids();
            for r in ["absolute-cure", "pii-phone-in-case"] {
                assert!(rules.contains(&r.to_owned()), "{shift}: {rules:?}");
            }
            let short = policy
                .screen(
                    &Message::text(
                        "Cardiozen cures it, patient line 555-201-3344, 62% [1]. Unsubscribe.",
                    ),
                    &us(),
                )
                .unwrap();
            assert_eq!(s.findings.len(), short.findings.len(), "{shift}");
        }
    }

    #[test]
    fn searches_from_atoms_find_what_a_whole_text_search_finds() {
        let texts = [
            "62% vs 41% on placebo, 3.5 % and 100%% and %5 and 7.%",
            "a 2.5-fold higher and 3 times more, 10 fold less; 4fold better",
            "p<0.05 and p = .01, p<0.001 [2] p< .5 xp<0.3",
        ];
        let cases: [(&str, &[&str], bool); 3] = [
            (r"[0-9]+(\.[0-9]+)?[ \n]?%", &["%"], true),
            (
                r"(?-u:\b)[0-9]+(\.[0-9]+)?[- ]?(fold|times) (more|higher|less|better)(?-u:\b)",
                &[
                    "fold more",
                    "fold higher",
                    "fold less",
                    "fold better",
                    "times more",
                ],
                true,
            ),
            (
                r"(?-u:\b)p[ \n]?[<=≤][ \n]?0?\.[0-9]+",
                &["p<", "p=", "p <", "p =", "p< "],
                false,
            ),
        ];
        for (pattern, atoms, end) in cases {
            let whole = regex::Regex::new(pattern).unwrap();
            for t in texts {
                let expected: Vec<Range<usize>> = whole.find_iter(t).map(|m| m.range()).collect();
                let mut got = Vec::new();
                let at = positions(t, atoms, end);
                if end {
                    let re = dfa::regex::Regex::new(pattern).unwrap();
                    assert!(from_ends(t, &re, &at, 0, &mut got));
                } else {
                    let re = StartSearch::Meta(meta::Regex::new(pattern).unwrap());
                    assert!(from_starts(t, &re, &at, 0, &mut got));
                    let mut by_dfa = Vec::new();
                    let dfa = dense::Builder::new()
                        .configure(
                            dense::Config::new()
                                .start_kind(regex_automata::dfa::StartKind::Anchored),
                        )
                        .build(pattern)
                        .unwrap();
                    let dfa = StartSearch::Dfa(Box::new(dfa));
                    assert!(from_starts(t, &dfa, &at, 0, &mut by_dfa));
                    assert_eq!(by_dfa, got);
                }
                let got: Vec<Range<usize>> = got.into_iter().map(|(_, r)| r).collect();
                assert_eq!(got, expected, "{pattern} in {t}");
            }
        }
    }
}
