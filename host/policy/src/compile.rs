//! Step 3, compile: every term of the policy set goes into one Aho-Corasick
//! automaton and every regular expression into one `RegexSet`, each under
//! the size limit of the policy. A pattern that does not compile, or
//! compiles over the limit, is a load error: the policy does not load, and
//! the gate keeps the previous one or, without one, blocks.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind, StartKind};
use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

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

/// A validated policy set, compiled and ready to screen messages.
#[derive(Debug)]
pub struct CompiledPolicy {
    pub(crate) set: PolicySet,
    pub(crate) ac: AhoCorasick,
    pub(crate) terms: Vec<Term>,
    /// Index of the claim rule each regex belongs to.
    pub(crate) regex_owner: Vec<usize>,
    pub(crate) regexes: Vec<Regex>,
    pub(crate) regex_set: RegexSet,
    pub(crate) citation: Option<Regex>,
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
    /// escaped, regexes as written. The benchmark scans these with a bare
    /// `RegexSet` as the baseline.
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

/// Compiles a validated policy set.
pub fn compile(set: PolicySet) -> Result<CompiledPolicy, Vec<Diagnostic>> {
    let limit = set.limits.max_regex_size;
    let mut diags = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut terms: Vec<Term> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut add = |owner: Owner, text: &str| match index.get(text) {
        Some(&k) => {
            let owners: &mut Vec<Owner> = &mut terms[k].owners;
            if !owners.contains(&owner) {
                owners.push(owner);
            }
        }
        None => {
            index.insert(text.to_owned(), words.len());
            terms.push(term(owner, text));
            words.push(text.to_owned());
        }
    };
    for (i, r) in set.claims.iter().enumerate() {
        r.terms.iter().for_each(|t| add(Owner::Claim(i), t));
    }
    let indication_ids: Vec<String> = set.indications.keys().cloned().collect();
    for (i, ind) in set.indications.values().enumerate() {
        ind.terms.iter().for_each(|t| add(Owner::Indication(i), t));
    }
    let product_ids: Vec<String> = set.products.keys().cloned().collect();
    for (i, p) in set.products.values().enumerate() {
        p.aliases.iter().for_each(|t| add(Owner::Product(i), t));
    }
    let mut required = Vec::new();
    for m in set.markets.values() {
        for (j, r) in m.require.iter().enumerate() {
            let k = required.len();
            required.push((m.code.clone(), j));
            r.any_of.iter().for_each(|t| add(Owner::Required(k), t));
        }
    }
    // Leftmost-longest finds where the next term starts (with a
    // prefilter, faster than an overlapping scan); anchored searches then
    // list every term starting there (see `screen::scan`). A full DFA: the
    // few hundred terms of a policy make a small one.
    let ac = AhoCorasickBuilder::new()
        .match_kind(MatchKind::LeftmostLongest)
        .start_kind(StartKind::Both)
        .kind(Some(AhoCorasickKind::DFA))
        .build(&words)
        .map_err(|e| {
            vec![Diagnostic::bare(format!(
                "the policy's terms do not compile: {e}"
            ))]
        })?;

    let mut regexes = Vec::new();
    let mut regex_owner = Vec::new();
    let mut sources = Vec::new();
    for (i, r) in set.claims.iter().enumerate() {
        for p in &r.patterns {
            match build_regex(p, &r.meta.id, limit) {
                Ok(re) => {
                    regexes.push(re);
                    regex_owner.push(i);
                    sources.push(rewrite(&p.source));
                }
                Err(d) => diags.push(d),
            }
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
    // The set runs every pattern at once; its budget grows with the count
    // but stays bounded.
    let set_limit = limit.saturating_mul(sources.len().max(1)).min(256 << 20);
    let regex_set = RegexSetBuilder::new(&sources)
        .size_limit(set_limit)
        .dfa_size_limit(set_limit)
        .build()
        .map_err(|e| {
            vec![Diagnostic::bare(format!(
                "the policy's patterns together do not compile: {e}"
            ))]
        })?;
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
    Ok(CompiledPolicy {
        set,
        ac,
        terms,
        regex_owner,
        regexes,
        regex_set,
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
