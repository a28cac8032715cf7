#![allow(clippy::all, missing_docs)]
#[path = "support/corpus.rs"]
mod corpus;
use std::hint::black_box;
use std::time::{Duration, Instant};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind, StartKind, Input, Anchored};
use omnigate_policy::{load_dir, PartKind, normalize::{normalize, normalize_html}};
use regex::{Regex, RegexSetBuilder};
use regex_syntax::hir::literal::{Extractor, ExtractKind};

fn oncpu() -> f64 { std::fs::read_to_string("/proc/thread-self/schedstat").unwrap().split_whitespace().next().unwrap().parse::<f64>().unwrap() / 1e9 }
fn tp(bytes: usize, mut f: impl FnMut()) -> f64 {
    f();
    let start = Instant::now();
    let c0 = oncpu();
    let mut n = 0;
    while start.elapsed() < Duration::from_millis(1500) { f(); n += 1; }
    bytes as f64 * n as f64 / (oncpu() - c0) / 1e6
}

fn rewrite(source: &str) -> String {
    let mut out = String::new();
    let mut chars = source.chars();
    while let Some(c) = chars.next() {
        if c != '\\' { out.push(c); continue; }
        match chars.next() {
            Some('b') => out.push_str("(?-u:\\b)"),
            Some('B') => out.push_str("(?-u:\\B)"),
            Some('d') => out.push_str("[0-9]"),
            Some('D') => out.push_str("[^0-9]"),
            Some('s') => out.push_str("[ \\n]"),
            Some('S') => out.push_str("[^ \\n]"),
            Some(n) => { out.push('\\'); out.push(n); }
            None => out.push('\\'),
        }
    }
    out
}

fn main() {
    let policy = load_dir(&std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../policies")).unwrap();
    let set = policy.set();
    omnigate_policy::compile::debug_atoms_tmp(&policy);
    if std::env::var_os("ONLY_ATOMS").is_some() { return; }
    if std::env::var_os("AC_COUNTS").is_some() {
        let corpus = corpus::corpus(20);
        let texts: Vec<String> = corpus.iter().flat_map(|s| s.message.parts.iter().map(|p| match p.kind { PartKind::Html => normalize_html(&p.text).text, _ => normalize(&p.text).text })).collect();
        omnigate_policy::compile::debug_ac_counts_tmp(&policy, &texts);
        return;
    }
    let corpus = corpus::corpus(20);
    let bytes: usize = corpus.iter().map(|s| s.bytes()).sum();
    let mut terms: Vec<String> = Vec::new();
    for r in &set.claims { terms.extend(r.terms.iter().cloned()); }
    for i in set.indications.values() { terms.extend(i.terms.iter().cloned()); }
    for p in set.products.values() { terms.extend(p.aliases.iter().cloned()); }
    for m in set.markets.values() { for r in &m.require { terms.extend(r.any_of.iter().cloned()); } }
    terms.sort(); terms.dedup();
    let pats: Vec<String> = set.claims.iter().flat_map(|r| r.patterns.iter().map(|p| rewrite(&p.source))).collect();
    println!("{} terms, {} patterns, corpus {} bytes", terms.len(), pats.len(), bytes);
    let norms: Vec<String> = corpus.iter().flat_map(|s| s.message.parts.iter().map(|p| match p.kind { PartKind::Html => normalize_html(&p.text).text, _ => normalize(&p.text).text })).collect();
    let nbytes: usize = norms.iter().map(|t| t.len()).sum();
    println!("normalized bytes {nbytes}");
    for kind in corpus::Kind::ALL {
        let sub: Vec<&corpus::Sample> = corpus.iter().filter(|s| s.kind == kind).collect();
        let b: usize = sub.iter().map(|s| s.bytes()).sum();
        println!("normalize {}: {:.1}", kind.name(), tp(b, || for s in &sub { for p in &s.message.parts { black_box(match p.kind { PartKind::Html => normalize_html(&p.text), _ => normalize(&p.text) }); } }));
    }
    if std::env::var_os("ONLY_NORM").is_some() { let t = Instant::now(); while t.elapsed() < Duration::from_secs(5) { for s in &corpus { for p in &s.message.parts { black_box(match p.kind { PartKind::Html => normalize_html(&p.text), _ => normalize(&p.text) }); } } } return; }
    println!("normalize: {:.1}", tp(bytes, || for s in &corpus { for p in &s.message.parts { black_box(match p.kind { PartKind::Html => normalize_html(&p.text), _ => normalize(&p.text) }); } }));
    // literal extraction
    let mut atoms_total = 0;
    for p in &pats {
        let hir = regex_syntax::parse(p).unwrap();
        let mut pre = Extractor::new().kind(ExtractKind::Prefix).extract(&hir);
        let mut suf = Extractor::new().kind(ExtractKind::Suffix).extract(&hir);
        pre.optimize_for_prefix_by_preference();
        suf.optimize_for_suffix_by_preference();
        let show = |s: &regex_syntax::hir::literal::Seq| match s.literals() { None => "INF".to_string(), Some(l) => format!("{}:{:?}", l.len(), l.iter().take(6).map(|x| String::from_utf8_lossy(x.as_bytes()).to_string()).collect::<Vec<_>>()) };
        println!("{p}\n   pre {}  suf {}", show(&pre), show(&suf));
        atoms_total += pre.len().unwrap_or(0);
    }
    println!("atoms {atoms_total}");
    // current AC
    let ll = AhoCorasickBuilder::new().match_kind(MatchKind::LeftmostLongest).start_kind(StartKind::Both).kind(Some(AhoCorasickKind::DFA)).build(&terms).unwrap();
    let cur = |t: &str| { let mut hits = 0; let mut pos = 0; while pos < t.len() { let Some(first) = ll.find(Input::new(t).span(pos..t.len())) else { break }; let start = first.start(); let mut found = Some(first); while let Some(m) = found { hits += 1; found = (m.end() > start + 1).then(|| ll.find(Input::new(t).span(start..m.end()-1).anchored(Anchored::Yes))).flatten(); } pos = start + t[start..].chars().next().map_or(1, char::len_utf8); } hits };
    println!("AC current: {:.1}", tp(bytes, || for t in &norms { black_box(cur(t)); }));
    for pf in [true, false] {
        for kind in [AhoCorasickKind::DFA, AhoCorasickKind::ContiguousNFA] {
        let std = AhoCorasickBuilder::new().match_kind(MatchKind::Standard).prefilter(pf).kind(Some(kind)).build(&terms).unwrap();
        let mut hits = 0; for t in &norms { hits += std.find_overlapping_iter(t).count(); }
        println!("AC std overlapping pf={pf} {kind:?}: {:.1}  hits {hits} mem {}", tp(bytes, || for t in &norms { black_box(std.find_overlapping_iter(t).count()); }), std.memory_usage());
        }
    }
    let rs = RegexSetBuilder::new(&pats).size_limit(256<<20).dfa_size_limit(256<<20).build().unwrap();
    println!("regexset patterns over norm: {:.1}", tp(bytes, || for t in &norms { black_box(rs.matches(t)); }));
    let res: Vec<Regex> = pats.iter().map(|p| Regex::new(p).unwrap()).collect();
    let mut per: Vec<(f64, String, usize)> = Vec::new();
    for (i, re) in res.iter().enumerate() {
        let n: usize = norms.iter().map(|t| re.find_iter(t).count()).sum();
        per.push((tp(bytes, || for t in &norms { black_box(re.find_iter(t).count()); }), pats[i].clone(), n));
    }
    per.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
    for (t, p, n) in &per { println!("{t:10.1} MB/s  {n:5} matches  {p}"); }
    let all = RegexSetBuilder::new(policy.pattern_sources()).size_limit(256<<20).dfa_size_limit(256<<20).build().unwrap();
    println!("bare exact over raw: {:.1}", tp(bytes, || for s in &corpus { for p in &s.message.parts { black_box(all.matches(&p.text)); } }));
}
