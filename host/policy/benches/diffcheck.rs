#![allow(clippy::all, missing_docs, dead_code)]
#[path = "support/corpus.rs"]
mod corpus;
#[path = "/tmp/scratch/old/old_norm.rs"]
mod old_norm;
#[path = "/tmp/scratch/old/old_html.rs"]
mod old_html;
use omnigate_policy::{PartKind, normalize::{normalize, normalize_html}};

static OLD_PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static EXPECTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
struct Rng(u64);
impl Rng { fn next(&mut self) -> u64 { self.0 ^= self.0 << 13; self.0 ^= self.0 >> 7; self.0 ^= self.0 << 17; self.0 } }

fn compare(input: &str, html: bool, report: &mut usize) {
    let o = match std::panic::catch_unwind(|| if html { old_norm::normalize_html(input) } else { old_norm::normalize(input) }) { Ok(o) => o, Err(_) => { OLD_PANICS.fetch_add(1, std::sync::atomic::Ordering::Relaxed); let _ = if html { normalize_html(input) } else { normalize(input) }; return; } };
    let n = if html { normalize_html(input) } else { normalize(input) };
    if n.text != o.text {
        // Expected: the new text drops spacers (letter spacing, fillers between CJK).
        let mut it = o.text.chars();
        let sub = n.text.chars().all(|c| loop { match it.next() { Some(x) if x == c => break true, Some(x) if " .-_*~/|+·•\\=^#\n".contains(x) => continue, _ => break false } }) && it.all(|x| " .-_*~/|+·•\n".contains(x));
        if sub { if EXPECTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < 3 || (EXPECTED.load(std::sync::atomic::Ordering::Relaxed) % 100 == 0) { println!("expected diff: old {:?} new {:?}", o.text, n.text); } return; }
        *report += 1;
        if *report < 15 { println!("TEXT DIFF html={html}\n in : {input:?}\n old: {:?}\n new: {:?}", o.text, n.text); }
        return;
    }
    for (i, c) in n.text.char_indices() {
        let r = i..i + c.len_utf8();
        if n.original_span(r.clone()) != o.original_span(r.clone()) {
            *report += 1;
            if *report < 15 { println!("SPAN DIFF at {i} {c:?} in {input:?}: old {:?} new {:?}", o.original_span(r.clone()), n.original_span(r)); }
            return;
        }
    }
    // also multi-char ranges
    let idx: Vec<usize> = n.text.char_indices().map(|(i, _)| i).chain([n.text.len()]).collect();
    for w in idx.windows(2).step_by(3) { let r = w[0]..n.text.len().min(w[1] + 7); if n.text.is_char_boundary(r.end) && n.original_span(r.clone()) != o.original_span(r.clone()) { *report += 1; if *report < 15 { println!("RANGE DIFF {r:?} in {input:?}"); } return; } }
}

fn main() {
    std::panic::set_hook(Box::new(|_| {}));
    let mut diffs = 0;
    for s in corpus::corpus(30) { for p in &s.message.parts { compare(&p.text, p.kind == PartKind::Html, &mut diffs); } }
    println!("corpus diffs: {diffs}");
    let pieces = ["a", "B", "cure", "CURES", " ", "  ", "\n", "\n\n", "\t", "\r\n", "治", "愈", "·", "，", "。", "Ｃ", "１", "\u{200B}", "\u{00AD}", "é", "e\u{301}", "¹", "²", "\u{0441}", "&amp;", "&#101;", "&nbsp;", "<b>", "</b>", "<p>", "</p>", "<br>", "<sup>", "</sup>", "<style>x</style>", "<img alt=\"Cu&amp;res\">", "<!-- c -->", ".", "-", "ﬁ", "㎏", "\u{3000}", "x", "y", "1", "%", "<", "&", ";", "'", "\"", "\u{0}", "\u{7f}", "ß", "Σ", "İ", "ǅ", "①", "™", "\u{2028}", "、", "_", "*", "~", "ab", "z", " q ", "·a·"];
    let mut rng = Rng(12345);
    let mut fuzz = 0;
    for round in 0..200000 {
        let n = (rng.next() % 14) as usize + 1;
        let mut s = String::new();
        for _ in 0..n { s.push_str(pieces[(rng.next() % pieces.len() as u64) as usize]); }
        if round % 2 == 0 { let b = s.as_bytes(); let mut bad = false; if let Some(k) = s.rfind('<') { if !s[k..].contains('>') { bad = true; } } let _ = b; if bad { continue; } }
        compare(&s, round % 2 == 0, &mut fuzz);
    }
    println!("old panics {}", OLD_PANICS.load(std::sync::atomic::Ordering::Relaxed));
    println!("fuzz diffs: {fuzz}, expected {}", EXPECTED.load(std::sync::atomic::Ordering::Relaxed));
}
