//! Step 3, compile: every term of the policy set goes into one Aho-Corasick
//! automaton, and every regular expression is built on its own, each under
//! the size limit of the policy. A pattern that does not compile, or
//! compiles over the limit, is a load error: the policy does not load, and
//! the gate keeps the previous one or, without one, blocks.
//!
//! Screening makes one pass over a text. Besides the terms, the automaton
//! holds the *atoms* of the patterns: literals one of which every match of
//! the pattern starts with, ends with or contains (`superior to`; `倍` for
//! `\d+\s?倍`), found by the literal extraction of `regex-syntax`. A
//! pattern runs only on a text where one of its atoms occurred, as in
//! RE2's FilteredRE2, and where possible only there: anchored at each atom
//! that starts a match, or from a reverse search at each atom that ends
//! one (`Search`). The few patterns without good atoms (digit shapes such
//! as `\b\d{3}-\d{2}-\d{4}\b`) become one small dense DFA that steps beside
//! the automaton in the same pass, with a `regex-automata` set behind it
//! should the DFA not build or give up.

use std::collections::HashMap;

use aho_corasick::{MatchKind, StartKind, dfa::DFA};
use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use regex_automata::dfa::{self, StartKind as DfaStart, dense};
use regex_automata::meta;
use regex_syntax::hir::literal::{ExtractKind, Extractor, Seq};

use crate::diag::Diagnostic;
use crate::model::{Pattern, PolicySet};
use crate::normalize::is_cjk;

/// What an Aho-Corasick term stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// A term of `claims[i]`.
    Claim(usize),
    /// A term of the indication with this index in `indications`.
    Indication(usize),
    /// An alias of the product with this index in `products`.
    Product(usize),
    /// A phrase of `required[i]`.
    Required(usize),
}

/// A term in the automaton.
#[derive(Debug, Clone)]
pub(crate) struct Term {
    /// Everything the term stands for: the same phrase can be, say, the
    /// unsubscribe element of four markets.
    pub owners: Vec<Owner>,
    /// A word character starts / ends the term, so the match must sit at a
    /// word boundary there (`cure` must not match inside `secure`).
    pub word_start: bool,
    pub word_end: bool,
}

/// A literal in the automaton: a term, the atom of some patterns, or both.
#[derive(Debug, Clone, Default)]
pub(crate) struct Word {
    pub term: Option<Term>,
    /// The patterns (indices into `regexes`) this literal is an atom of:
    /// they run on a text where it occurs, anchored at each occurrence when
    /// their `anchored` form exists.
    pub triggers: Vec<usize>,
}

/// How a pattern is searched on a text where one of its atoms occurred.
#[derive(Debug)]
pub(crate) enum Search {
    /// Every match starts with an atom: anchored searches at each atom,
    /// with a DFA (a meta regex when the DFA would be too large).
    Start(Box<StartSearch>),
    /// Every match ends with an atom: a reverse search from each atom end
    /// finds where matches start, then forward as from `Start`.
    End(Box<dfa::regex::Regex>),
    /// Over the whole text (`regexes`).
    Whole,
}

/// A rule's context words (`only_near`, `sentence_has`) in one automaton:
/// one pass over the sentence instead of one search per word.
#[derive(Debug)]
pub(crate) struct WordSet {
    ac: aho_corasick::AhoCorasick,
    /// Per word: whether it must start and end at a word boundary.
    bounds: Vec<(bool, bool)>,
}

impl WordSet {
    /// `None` for no words (and, should the automaton not build, so that
    /// the caller looks for each word on its own).
    fn new(words: &[String]) -> Option<WordSet> {
        if words.is_empty() {
            return None;
        }
        let ac = aho_corasick::AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(words)
            .ok()?;
        let bounds = words
            .iter()
            .map(|w| {
                let t = term(Owner::Claim(0), w);
                (t.word_start, t.word_end)
            })
            .collect();
        Some(WordSet { ac, bounds })
    }

    /// Whether `body` contains one of the words at word boundaries.
    pub(crate) fn any_in(&self, body: &str) -> bool {
        self.ac.find_overlapping_iter(body).any(|m| {
            let (s, e) = self.bounds[m.pattern().as_usize()];
            crate::text::at_word_boundary(body, m.start(), m.end(), s, e)
        })
    }
}

/// The anchored search of a [`Search::Start`] pattern.
#[derive(Debug)]
pub(crate) enum StartSearch {
    Dfa(Box<dense::DFA<Vec<u32>>>),
    Meta(meta::Regex),
}

/// A validated policy set, compiled and ready to screen messages.
#[derive(Debug)]
pub struct CompiledPolicy {
    pub(crate) set: PolicySet,
    /// Terms and atoms, pattern ids indexing `words`: a DFA with standard
    /// (overlapping) match semantics, searched with one pass per text.
    pub(crate) ac: DFA,
    pub(crate) words: Vec<Word>,
    /// The same for texts without CJK (no byte from 0xE3 up): only the
    /// literals that could occur in them, with the index into `words` of
    /// each. A smaller automaton (half the alphabet, a fraction of the
    /// states) is a faster one: the pass waits on its table at every byte.
    pub(crate) narrow: Option<(DFA, Vec<usize>)>,
    /// Index of the claim rule each regex belongs to.
    pub(crate) regex_owner: Vec<usize>,
    pub(crate) regexes: Vec<Regex>,
    /// How each pattern is searched once one of its atoms occurred.
    pub(crate) search: Vec<Search>,
    /// The patterns without atoms, run on every text: their indices into
    /// `regexes`, and together as one set (`None` when there are none).
    pub(crate) unfiltered: Vec<usize>,
    pub(crate) unfiltered_set: Option<meta::Regex>,
    /// The same as a full DFA, when it builds under the size limit: it runs
    /// in the automaton's pass (see `screen`), byte for byte beside it.
    pub(crate) unfiltered_dfa: Option<dense::DFA<Vec<u32>>>,
    /// The longest match any unfiltered pattern can have, if bounded: the
    /// pass may then split a text in two and run both halves at once.
    pub(crate) unfiltered_max_len: Option<usize>,
    pub(crate) citation: Option<Regex>,
    /// Per claim rule, its `only_near` and `sentence_has` words.
    pub(crate) near: Vec<Option<WordSet>>,
    pub(crate) has: Vec<Option<WordSet>>,
    /// Ids in the order `Owner::Indication` / `Owner::Product` index them.
    pub(crate) indication_ids: Vec<String>,
    pub(crate) product_ids: Vec<String>,
    /// (market, index in that market's `require`) per `Owner::Required`.
    pub(crate) required: Vec<(String, usize)>,
}

impl CompiledPolicy {
    /// The validated policy set.
    pub fn set(&self) -> &PolicySet {
        &self.set
    }

    /// The policy version: sha256 over the files.
    pub fn version(&self) -> &str {
        &self.set.version
    }

    /// Every pattern screening uses, as regular-expression sources: terms
    /// escaped, regexes as screening compiles them. The benchmark scans
    /// these with a bare `RegexSet` as the baseline.
    pub fn pattern_sources(&self) -> Vec<String> {
        let mut out = Vec::new();
        for r in &self.set.claims {
            out.extend(r.terms.iter().map(|t| regex::escape(t)));
            out.extend(r.patterns.iter().map(|p| rewrite(&p.source)));
        }
        for i in self.set.indications.values() {
            out.extend(i.terms.iter().map(|t| regex::escape(t)));
        }
        for p in self.set.products.values() {
            out.extend(p.aliases.iter().map(|t| regex::escape(t)));
        }
        for m in self.set.markets.values() {
            for r in &m.require {
                out.extend(r.any_of.iter().map(|t| regex::escape(t)));
            }
        }
        out.extend(self.set.citation_markers.iter().map(|p| rewrite(&p.source)));
        out
    }

    /// [`Self::pattern_sources`] as one `RegexSet`, built the way screening
    /// builds its own sets (same builder, same size limits): the baseline
    /// of the screening benchmark.
    pub fn baseline_set(&self) -> Result<RegexSet, regex::Error> {
        let sources = self.pattern_sources();
        set_builder(&sources, self.set.limits.max_regex_size).build()
    }
}

/// How screening builds a `RegexSet`: its budget grows with the number of
/// patterns but stays bounded.
fn set_builder(sources: &[String], limit: usize) -> RegexSetBuilder {
    let set_limit = limit.saturating_mul(sources.len().max(1)).min(256 << 20);
    let mut b = RegexSetBuilder::new(sources);
    b.size_limit(set_limit).dfa_size_limit(set_limit);
    b
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() && !is_cjk(c)
}

fn term(owner: Owner, text: &str) -> Term {
    Term {
        owners: vec![owner],
        word_start: text.chars().next().is_some_and(is_word),
        word_end: text.chars().next_back().is_some_and(is_word),
    }
}

/// Rewrites a pattern for the normalized text it runs on: `\b` and `\B`
/// become ASCII boundaries (Latin words are ASCII after normalization, and
/// an ASCII boundary treats CJK characters as non-word, so
/// `\b1[3-9]\d{9}\b` finds a phone number right after Chinese text); `\d`
/// becomes `[0-9]` (digits are ASCII after NFKC) and `\s` becomes `[ \n]`
/// (the only whitespace normalization leaves). The smaller automata keep
/// the regex engine on its fast DFA path over Chinese text.
pub(crate) fn rewrite(source: &str) -> String {
    let mut out = String::with_capacity(source.len() + 16);
    let mut chars = source.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('b') => out.push_str("(?-u:\\b)"),
            Some('B') => out.push_str("(?-u:\\B)"),
            Some('d') => out.push_str("[0-9]"),
            Some('D') => out.push_str("[^0-9]"),
            Some('s') => out.push_str("[ \\n]"),
            Some('S') => out.push_str("[^ \\n]"),
            Some(n) => {
                out.push('\\');
                out.push(n);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// The first upper-case letter of a pattern outside escapes (`\P{Han}`):
/// patterns run on lower-case text, so it could never match.
fn upper_case_letter(source: &str) -> Option<char> {
    let mut chars = source.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some('p' | 'P') = chars.next() {
                // Skip a `{...}` class name; a one-letter name is skipped
                // by the `next` above only when braces are absent.
                let mut rest = chars.clone();
                if rest.next() == Some('{') {
                    for r in chars.by_ref() {
                        if r == '}' {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            continue;
        }
        if c.is_uppercase() {
            return Some(c);
        }
    }
    None
}

fn build_regex(p: &Pattern, rule: &str, limit: usize) -> Result<Regex, Diagnostic> {
    if let Some(c) = upper_case_letter(&p.source) {
        return Err(Diagnostic::at(
            format!("pattern in rule `{rule}` has the upper-case letter `{c}`"),
            p.location.clone(),
        )
        .with_help("patterns match normalized, lower-case text: write letters in lower case"));
    }
    let built = RegexBuilder::new(&rewrite(&p.source))
        .size_limit(limit)
        .dfa_size_limit(limit)
        .build();
    match built {
        Ok(re) if re.is_match("") => Err(Diagnostic::at(
            format!("pattern in rule `{rule}` matches empty text"),
            p.location.clone(),
        )
        .with_help("a pattern must need at least one character to match")),
        Ok(re) => Ok(re),
        Err(regex::Error::CompiledTooBig(n)) => Err(Diagnostic::at(
            format!("pattern in rule `{rule}` compiles to more than {n} bytes"),
            p.location.clone(),
        )
        .with_help(
            "simplify it (bounded repetitions like `{1,500}` grow fast) or raise `max_regex_size` in claims.toml [limits]",
        )),
        Err(e) => {
            let detail = e.to_string();
            let last = detail.lines().last().unwrap_or("").trim();
            let last = last.strip_prefix("error: ").unwrap_or(last);
            Err(Diagnostic::at(format!("invalid pattern in rule `{rule}`: {last}"), p.location.clone())
                .with_help("patterns are Rust regular expressions matched on normalized, lower-case text"))
        }
    }
}

/// Where a pattern's atoms sit in each of its matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Every match starts with an atom.
    Start,
    /// Every match ends with an atom.
    End,
    /// Every match contains an atom.
    Inside,
}

/// The atoms of a pattern: literals one of which occurs in every match.
struct Atoms {
    literals: Vec<Vec<u8>>,
    place: Place,
}

/// Whether a literal is too common to be worth an atom: empty, a single
/// letter, digit or space, or only digits, spaces and number punctuation
/// (`12`, ` 3`, `-4`), which nearly every message has. A rarer single byte
/// (`%`) is a fine atom.
fn weak(literal: &[u8]) -> bool {
    let common = |b: &u8| b.is_ascii_digit() || b" .,:;-/()\n".contains(b);
    match literal {
        [] => true,
        [b] => b.is_ascii_alphanumeric() || common(b) || !b.is_ascii(),
        _ => literal.iter().all(common),
    }
}

/// The literals of a `Seq`, without the ones implied by a shorter one
/// where it sits (a prefix of it for `Start`, a suffix for `End`, anywhere
/// for `Inside`); `None` when infinite or weak.
fn usable(seq: &Seq, place: Place) -> Option<Vec<Vec<u8>>> {
    // Longer atoms select little better and only grow the automaton
    // (every byte of every literal is a state): cut them, keeping the end
    // that sits where the match starts or ends.
    const KEEP: usize = 5;
    let mut lits: Vec<Vec<u8>> = seq
        .literals()?
        .iter()
        .map(|l| {
            let b = l.as_bytes();
            let cut = b.len().saturating_sub(KEEP);
            match place {
                // Not from inside a character: every literal then holds the
                // first byte of each character it has (see `narrow`).
                Place::End => {
                    let from = (cut..b.len())
                        .find(|&i| !(0x80..0xC0).contains(&b[i]))
                        .unwrap_or(b.len());
                    b[from..].to_vec()
                }
                Place::Start | Place::Inside => b[..b.len() - cut].to_vec(),
            }
        })
        .collect();
    lits.sort_by_key(Vec::len);
    lits.dedup();
    let implied = |l: &[u8], k: &[u8]| match place {
        Place::Start => l.starts_with(k),
        Place::End => l.ends_with(k),
        Place::Inside => memchr::memmem::find(l, k).is_some(),
    };
    let mut kept: Vec<Vec<u8>> = Vec::new();
    for l in lits {
        if !kept.iter().any(|k| implied(&l, k)) {
            kept.push(l);
        }
    }
    (!kept.is_empty() && !kept.iter().any(|l| weak(l))).then_some(kept)
}

/// How selective a set of atoms is: longer literals, then fewer.
fn score(lits: &[Vec<u8>]) -> (usize, usize) {
    let min = lits.iter().map(Vec::len).min().unwrap_or(0);
    (min.min(8), usize::MAX - lits.len())
}

/// The atoms of a pattern, found with the literal extraction of
/// `regex-syntax`: the literals every match starts with, or ends with, or
/// (for a concatenation) the ones a part of every match starts with
/// (`fold more` in `\d+[- ]?(fold|times) (more|...)`). A usable set of
/// prefixes wins, since then the pattern only needs trying anchored at
/// each atom; otherwise the most selective set. `None` when no set is
/// selective enough: the pattern runs on every text. Sound for any
/// pattern: look-arounds extract as empty, so they only ever make the
/// literals shorter.
fn atoms(source: &str) -> Option<Atoms> {
    use regex_syntax::hir::{Hir, HirKind};
    let hir = regex_syntax::ParserBuilder::new()
        .build()
        .parse(source)
        .ok()?;
    let extract = |kind, h: &Hir, place| usable(&Extractor::new().kind(kind).extract(h), place);
    if let Some(literals) = extract(ExtractKind::Prefix, &hir, Place::Start) {
        return Some(Atoms {
            literals,
            place: Place::Start,
        });
    }
    let mut best: Option<Atoms> = None;
    let mut consider = |lits: Option<Vec<Vec<u8>>>, place| {
        if let Some(l) = lits
            && best.as_ref().is_none_or(|b| score(&l) > score(&b.literals))
        {
            best = Some(Atoms { literals: l, place });
        }
    };
    consider(extract(ExtractKind::Suffix, &hir, Place::End), Place::End);
    let mut top = &hir;
    while let HirKind::Capture(c) = top.kind() {
        top = &c.sub;
    }
    if let HirKind::Concat(parts) = top.kind() {
        for i in 1..parts.len() {
            let rest = Hir::concat(parts[i..].to_vec());
            consider(
                extract(ExtractKind::Prefix, &rest, Place::Inside),
                Place::Inside,
            );
        }
    }
    best
}

/// An anchored search from where matches start: a forward DFA, or a meta
/// regex when the DFA does not build under the limit.
fn start_search(source: &str, limit: usize) -> Search {
    let dfa = dense::Builder::new()
        .configure(
            dense::Config::new()
                .start_kind(DfaStart::Anchored)
                .dfa_size_limit(Some(limit))
                .determinize_size_limit(Some(limit)),
        )
        .build(source);
    if let Ok(dfa) = dfa {
        return Search::Start(Box::new(StartSearch::Dfa(Box::new(dfa))));
    }
    meta::Builder::new()
        .configure(
            meta::Config::new()
                .nfa_size_limit(Some(limit))
                .hybrid_cache_capacity(limit),
        )
        .build(source)
        .map_or(Search::Whole, |re| {
            Search::Start(Box::new(StartSearch::Meta(re)))
        })
}

/// A search from where matches end: forward and reverse DFAs, when they
/// build under the limit.
fn end_search(source: &str, limit: usize) -> Search {
    dfa::regex::Builder::new()
        .dense(
            dense::Config::new()
                .dfa_size_limit(Some(limit))
                .determinize_size_limit(Some(limit)),
        )
        .build(source)
        .map_or(Search::Whole, |re| Search::End(Box::new(re)))
}

/// Texts whose bytes are all below this can use the narrow automaton.
pub(crate) const NARROW: u8 = 0xE3;

/// The literals of the automaton, each once, with what they stand for.
#[derive(Default)]
struct Literals {
    index: HashMap<Vec<u8>, usize>,
    literals: Vec<Vec<u8>>,
    words: Vec<Word>,
}

impl Literals {
    fn entry(&mut self, text: &[u8]) -> usize {
        if let Some(&k) = self.index.get(text) {
            return k;
        }
        self.index.insert(text.to_vec(), self.literals.len());
        self.literals.push(text.to_vec());
        self.words.push(Word::default());
        self.literals.len() - 1
    }
}

/// Compiles a validated policy set.
pub fn compile(set: PolicySet) -> Result<CompiledPolicy, Vec<Diagnostic>> {
    let limit = set.limits.max_regex_size;
    let mut diags = Vec::new();
    let mut lits = Literals::default();
    let mut terms: Vec<(Owner, String)> = Vec::new();
    for (i, r) in set.claims.iter().enumerate() {
        terms.extend(r.terms.iter().map(|t| (Owner::Claim(i), t.clone())));
    }
    let indication_ids: Vec<String> = set.indications.keys().cloned().collect();
    for (i, ind) in set.indications.values().enumerate() {
        terms.extend(ind.terms.iter().map(|t| (Owner::Indication(i), t.clone())));
    }
    let product_ids: Vec<String> = set.products.keys().cloned().collect();
    for (i, p) in set.products.values().enumerate() {
        terms.extend(p.aliases.iter().map(|t| (Owner::Product(i), t.clone())));
    }
    let mut required = Vec::new();
    for m in set.markets.values() {
        for (j, r) in m.require.iter().enumerate() {
            let k = required.len();
            required.push((m.code.clone(), j));
            terms.extend(r.any_of.iter().map(|t| (Owner::Required(k), t.clone())));
        }
    }
    for (owner, text) in &terms {
        let k = lits.entry(text.as_bytes());
        match &mut lits.words[k].term {
            Some(t) => {
                if !t.owners.contains(owner) {
                    t.owners.push(*owner);
                }
            }
            slot @ None => *slot = Some(term(*owner, text)),
        }
    }

    let mut regexes = Vec::new();
    let mut regex_owner = Vec::new();
    let mut searches = Vec::new();
    let mut unfiltered = Vec::new();
    let mut unfiltered_sources = Vec::new();
    for (i, r) in set.claims.iter().enumerate() {
        for p in &r.patterns {
            let re = match build_regex(p, &r.meta.id, limit) {
                Ok(re) => re,
                Err(d) => {
                    diags.push(d);
                    continue;
                }
            };
            let at = regexes.len();
            let source = rewrite(&p.source);
            // Built like `re`, which compiled under the same limits; if
            // these did not build, the pattern would run over the whole
            // text instead.
            let search = match atoms(&source) {
                Some(a) => {
                    for l in &a.literals {
                        let k = lits.entry(l);
                        lits.words[k].triggers.push(at);
                    }
                    match a.place {
                        Place::Start => start_search(&source, limit),
                        Place::End => end_search(&source, limit),
                        Place::Inside => Search::Whole,
                    }
                }
                None => {
                    // The unfiltered DFA tells where their matches end.
                    unfiltered.push(at);
                    let search = end_search(&source, limit);
                    unfiltered_sources.push(source);
                    search
                }
            };
            regexes.push(re);
            regex_owner.push(i);
            searches.push(search);
        }
    }
    let mut markers = Vec::new();
    for p in &set.citation_markers {
        match build_regex(p, "citation_markers", limit) {
            Ok(_) => markers.push(format!("(?:{})", rewrite(&p.source))),
            Err(d) => diags.push(d),
        }
    }
    if !diags.is_empty() {
        return Err(diags);
    }
    // One pass finds every occurrence of every term and atom, overlapping
    // ones included. A full DFA: the few hundred literals of a policy make
    // a small one, and it is the fastest to search.
    let ac = DFA::builder()
        .match_kind(MatchKind::Standard)
        .start_kind(StartKind::Unanchored)
        .prefilter(false)
        .build(&lits.literals)
        .map_err(|e| {
            vec![Diagnostic::bare(format!(
                "the policy's terms do not compile: {e}"
            ))]
        })?;
    // A literal with a byte from 0xE3 up cannot occur in a text without
    // one (CJK lead bytes are E3 to E9, full-width forms EF).
    let (narrow_ids, narrow_lits): (Vec<usize>, Vec<&Vec<u8>>) = lits
        .literals
        .iter()
        .enumerate()
        .filter(|(_, l)| l.iter().all(|&b| b < NARROW))
        .unzip();
    let narrow = DFA::builder()
        .match_kind(MatchKind::Standard)
        .start_kind(StartKind::Unanchored)
        .prefilter(false)
        .build(&narrow_lits)
        .ok()
        .map(|dfa| (dfa, narrow_ids));
    // The unfiltered patterns run together, as one set. Without a
    // prefilter: their literals are digits, which are everywhere, and a
    // prefilter would only interrupt the automaton at each one.
    let unfiltered_set = if unfiltered_sources.is_empty() {
        None
    } else {
        let set_limit = limit
            .saturating_mul(unfiltered_sources.len())
            .min(256 << 20);
        Some(
            meta::Builder::new()
                .configure(
                    meta::Config::new()
                        .match_kind(regex_automata::MatchKind::All)
                        .auto_prefilter(false)
                        .nfa_size_limit(Some(set_limit))
                        .hybrid_cache_capacity(set_limit),
                )
                .build_many(&unfiltered_sources)
                .map_err(|e| {
                    vec![Diagnostic::bare(format!(
                        "the policy's patterns together do not compile: {e}"
                    ))]
                })?,
        )
    };
    let unfiltered_max_len = unfiltered_sources.iter().try_fold(0, |max, s| {
        let hir = regex_syntax::ParserBuilder::new().build().parse(s).ok()?;
        Some(hir.properties().maximum_len()?.max(max))
    });
    let unfiltered_dfa = (!unfiltered_sources.is_empty())
        .then(|| {
            dense::Builder::new()
                .configure(
                    dense::Config::new()
                        .match_kind(regex_automata::MatchKind::All)
                        .start_kind(DfaStart::Unanchored)
                        .starts_for_each_pattern(false)
                        .accelerate(false)
                        .dfa_size_limit(Some(limit))
                        .determinize_size_limit(Some(limit)),
                )
                .build_many(&unfiltered_sources)
                .ok()
        })
        .flatten();
    // As before: the budget of the citation markers together grows with the
    // number of patterns, bounded.
    let set_limit = limit.saturating_mul(regexes.len().max(1)).min(256 << 20);
    let citation = if markers.is_empty() {
        None
    } else {
        let joined = markers.join("|");
        Some(
            RegexBuilder::new(&joined)
                .size_limit(set_limit)
                .build()
                .map_err(|e| {
                    vec![Diagnostic::bare(format!(
                        "citation markers together do not compile: {e}"
                    ))]
                })?,
        )
    };
    let near = set
        .claims
        .iter()
        .map(|r| WordSet::new(&r.only_near))
        .collect();
    let has = set
        .claims
        .iter()
        .map(|r| {
            r.evidence
                .as_ref()
                .and_then(|e| WordSet::new(&e.sentence_has))
        })
        .collect();
    Ok(CompiledPolicy {
        near,
        has,
        set,
        ac,
        narrow,
        words: lits.words,
        regex_owner,
        regexes,
        search: searches,
        unfiltered,
        unfiltered_set,
        unfiltered_dfa,
        unfiltered_max_len,
        citation,
        indication_ids,
        product_ids,
        required,
    })
}

#[cfg(test)]
mod tests {
    use super::{rewrite, upper_case_letter};

    #[test]
    fn boundaries_digits_and_spaces_are_rewritten_and_other_escapes_stay() {
        assert_eq!(rewrite(r"\bx\B\d\\b\w"), r"(?-u:\b)x(?-u:\B)[0-9]\\b\w");
        assert_eq!(rewrite(r"[^.\s]"), "[^.[ \\n]]");
    }

    #[test]
    fn upper_case_letters_are_found_outside_escapes_only() {
        assert_eq!(upper_case_letter(r"\p{Han}\PL\D[a-z]"), None);
        assert_eq!(upper_case_letter(r"\bCure"), Some('C'));
    }
}
