//! Normalization before matching, so that obfuscated spellings of a claim
//! match the same rule, with every normalized byte mapped back to the span
//! of the original text it came from.
//!
//! Per character, in this order: default-ignorable characters (zero-width
//! spaces and joiners, soft hyphens, bidi controls, variation selectors) are
//! dropped; superscript digits become a citation marker (`¹` -> `[1]`);
//! compatibility decomposition (the "K" of NFKC: full-width letters, ligatures,
//! circled digits) with combining marks dropped, so accents cannot split a
//! word; lower-casing; Cyrillic and Greek look-alikes mapped to the Latin
//! letter they imitate (Unicode confusables, UTS #39); whitespace runs
//! collapsed; and whitespace or filler punctuation between two CJK characters
//! dropped (`治 愈` -> `治愈`). HTML is reduced to the text a reader sees
//! first (see [`crate::html`]).

use std::ops::Range;

use unicode_normalization::char::{decompose_compatible, is_combining_mark};

/// Text after normalization, with the way back to the original.
#[derive(Debug, Clone, Default)]
pub struct Normalized {
    /// The normalized text that rules match.
    pub text: String,
    // Per byte of `text`: the original span of the unit it came from.
    map: Vec<(u32, u32)>,
}

impl Normalized {
    /// The span of the original text that produced `range` of the
    /// normalized text.
    pub fn original_span(&self, range: Range<usize>) -> Range<usize> {
        if self.text.is_empty() || range.start >= self.map.len() {
            return 0..0;
        }
        let last = range.end.clamp(range.start + 1, self.map.len()) - 1;
        self.map[range.start].0 as usize..self.map[last].1 as usize
    }
}

/// Normalizes plain text.
pub fn normalize(input: &str) -> Normalized {
    let mut f = Folder::with_capacity(input.len());
    f.push_text(input, 0);
    f.finish()
}

/// Normalizes HTML: reduces it to the visible text, then as [`normalize`].
pub fn normalize_html(input: &str) -> Normalized {
    let mut f = Folder::with_capacity(input.len());
    crate::html::visible_text(input, |piece| match piece {
        crate::html::Piece::Text(text, base) => f.push_text(text, base),
        crate::html::Piece::Char(c, s, e) => f.push_source(c, s, e),
    });
    f.finish()
}

/// CJK ideographs and the CJK punctuation without decompositions: they
/// pass through normalization unchanged.
fn is_plain_cjk(u: u32) -> bool {
    (0x4E00..=0x9FFF).contains(&u)
        || (0x3400..=0x4DBF).contains(&u)
        || (0x3001..=0x3029).contains(&u)
}

/// Normalizes a policy term the same way as screened text, so that terms
/// are written naturally and still match.
pub fn fold(term: &str) -> String {
    normalize(term).text
}

/// Whether `c` is a CJK ideograph or kana, where words are not separated by
/// spaces.
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// Default-ignorable code points: invisible, so they can hide inside a word.
fn is_ignorable(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x034F | 0x061C | 0x115F | 0x1160 | 0x17B4 | 0x17B5 | 0x180B..=0x180F
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F
        | 0xFEFF | 0xFFA0 | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A | 0xE0000..=0xE0FFF)
}

/// Punctuation used to pad the characters of a CJK term apart.
fn is_cjk_filler(c: char) -> bool {
    matches!(
        c,
        '·' | '•' | '‧' | '・' | '*' | '_' | '-' | '~' | '＊' | '－' | '～' | '＿'
    )
}

fn superscript_digit(c: char) -> Option<char> {
    match c {
        '¹' => Some('1'),
        '²' => Some('2'),
        '³' => Some('3'),
        '⁰' => Some('0'),
        '⁴'..='⁹' => char::from_u32(c as u32 - 0x2074 + '4' as u32),
        _ => None,
    }
}

/// Maps a look-alike letter to the ASCII letter it imitates, when there is
/// exactly one. Only letters below the CJK blocks are looked up: Cyrillic,
/// Greek, Latin extensions, Armenian, Cherokee and the like.
fn confusable(c: char, out: &mut Vec<char>) -> bool {
    if c.is_ascii() || (c as u32) >= 0x2E80 || !c.is_alphabetic() {
        return false;
    }
    let mut buf = [0u8; 4];
    let start = out.len();
    for s in unicode_security::skeleton(c.encode_utf8(&mut buf)) {
        if !s.is_ascii_alphanumeric() {
            out.truncate(start);
            return false;
        }
        out.push(s.to_ascii_lowercase());
    }
    out.len() > start
}

struct Folder {
    out: Normalized,
    // Separators seen right after a CJK character: dropped if another CJK
    // character follows, emitted otherwise.
    held: Vec<(char, usize, usize)>,
    last_cjk: bool,
    // Line breaks in the current whitespace run: one is a soft wrap (a
    // space), two or more a paragraph break (kept, it ends a sentence).
    newlines: u8,
    scratch: Vec<char>,
    mapped: Vec<char>,
}

impl Folder {
    fn with_capacity(n: usize) -> Self {
        Folder {
            out: Normalized {
                text: String::with_capacity(n),
                map: Vec::with_capacity(n),
            },
            held: Vec::new(),
            last_cjk: false,
            newlines: 0,
            scratch: Vec::new(),
            mapped: Vec::new(),
        }
    }

    /// Pushes `text`, which starts at byte `base` of the original.
    fn push_text(&mut self, text: &str, base: usize) {
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i].is_ascii() {
                let run = self.ascii_run(text, i, base);
                if run > i {
                    i = run;
                } else {
                    self.ascii(bytes[i], base + i);
                    i += 1;
                }
            } else {
                let run = self.cjk_run(text, i, base);
                if run > i {
                    i = run;
                    continue;
                }
                let c = text[i..].chars().next().unwrap_or('\u{FFFD}');
                self.push_source(c, base + i, base + i + c.len_utf8());
                i += c.len_utf8();
            }
        }
    }

    /// A run of CJK ideographs and punctuation from `i`, copied as is.
    fn cjk_run(&mut self, text: &str, i: usize, base: usize) -> usize {
        if !self.held.is_empty() {
            return i;
        }
        let mut j = i;
        let mut last = None;
        for c in text[i..].chars() {
            if !is_plain_cjk(c as u32) {
                break;
            }
            let span = ((base + j) as u32, (base + j + c.len_utf8()) as u32);
            for _ in 0..c.len_utf8() {
                self.out.map.push(span);
            }
            j += c.len_utf8();
            last = Some(c);
        }
        if let Some(c) = last {
            self.out.text.push_str(&text[i..j]);
            self.last_cjk = is_cjk(c);
            self.newlines = 0;
        }
        j
    }

    /// The hot path: a run of printable ASCII from `i` (single spaces
    /// between words included), copied lower-cased in one go. Returns where
    /// the run ends; `i` itself when the byte needs the general path.
    fn ascii_run(&mut self, input: &str, i: usize, base: usize) -> usize {
        if self.last_cjk {
            return i;
        }
        let bytes = input.as_bytes();
        let graphic = |b: u8| (0x21..=0x7E).contains(&b);
        if !graphic(bytes[i]) {
            return i;
        }
        let mut j = i;
        while j < bytes.len() {
            let b = bytes[j];
            // A single space followed by a printable byte stays in the run;
            // anything else (runs of spaces, line breaks) takes the general
            // path, which collapses them.
            if graphic(b) || (b == b' ' && bytes.get(j + 1).copied().is_some_and(graphic)) {
                j += 1;
            } else {
                break;
            }
        }
        let start = self.out.text.len();
        self.out.text.push_str(&input[i..j]);
        self.out.text[start..].make_ascii_lowercase();
        // Offsets fit in u32: inputs are bounded by `max_input_bytes`.
        self.out
            .map
            .extend((base + i..base + j).map(|k| (k as u32, k as u32 + 1)));
        self.newlines = 0;
        j
    }

    /// One ASCII byte at `i`.
    #[inline]
    fn ascii(&mut self, b: u8, i: usize) {
        self.ascii_at(b, i, i + 1);
    }

    #[inline]
    fn ascii_at(&mut self, b: u8, s: usize, e: usize) {
        if b.is_ascii_whitespace() {
            self.separator(if b == b'\n' { '\n' } else { ' ' }, s, e);
        } else if !b.is_ascii_control() {
            self.visible(char::from(b.to_ascii_lowercase()), s, e);
        }
    }

    fn push_source(&mut self, c: char, s: usize, e: usize) {
        let u = c as u32;
        if u < 0x80 {
            self.ascii_at(u as u8, s, e);
            return;
        }
        // Fast paths, same result as the general path below: CJK
        // ideographs have no decomposition and no case; full-width ASCII
        // maps to ASCII (NFKC); CJK punctuation up to U+3029 has no
        // decomposition.
        if is_plain_cjk(u) {
            self.visible(c, s, e);
            return;
        }
        if (0xFF01..=0xFF5E).contains(&u) {
            self.ascii_at((u - 0xFEE0) as u8, s, e);
            return;
        }
        if is_ignorable(c) {
            return;
        }
        if let Some(d) = superscript_digit(c) {
            for m in ['[', d, ']'] {
                self.visible(m, s, e);
            }
            return;
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        decompose_compatible(c, |d| scratch.extend(d.to_lowercase()));
        for &d in &scratch {
            if is_combining_mark(d) || is_ignorable(d) {
                continue;
            }
            if d.is_whitespace() {
                self.separator(if d == '\u{2028}' { '\n' } else { ' ' }, s, e);
                continue;
            }
            let mut mapped = std::mem::take(&mut self.mapped);
            mapped.clear();
            if confusable(d, &mut mapped) {
                for &m in &mapped {
                    self.visible(m, s, e);
                }
            } else {
                self.visible(d, s, e);
            }
            self.mapped = mapped;
        }
        self.scratch = scratch;
    }

    fn separator(&mut self, c: char, s: usize, e: usize) {
        if self.last_cjk {
            self.held.push((c, s, e));
        } else {
            self.space(c, s, e);
        }
    }

    #[inline]
    fn visible(&mut self, c: char, s: usize, e: usize) {
        if !self.last_cjk {
            // Nothing is held unless the last character was CJK.
            self.emit(c, s, e);
            self.last_cjk = is_cjk(c);
            return;
        }
        if is_cjk_filler(c) {
            self.held.push((c, s, e));
            return;
        }
        let cjk = is_cjk(c);
        if !self.held.is_empty() {
            let held = std::mem::take(&mut self.held);
            // A paragraph break is kept even between CJK characters: it
            // separates sentences.
            let keep = !cjk || held.iter().filter(|h| h.0 == '\n').count() >= 2;
            if keep {
                for &(h, hs, he) in &held {
                    if h == ' ' || h == '\n' {
                        self.space(h, hs, he);
                    } else {
                        self.emit(h, hs, he);
                    }
                }
            }
        }
        self.emit(c, s, e);
        self.last_cjk = cjk;
    }

    fn space(&mut self, c: char, s: usize, e: usize) {
        if c == '\n' {
            self.newlines = self.newlines.saturating_add(1);
        }
        let paragraph = self.newlines >= 2;
        match self.out.text.as_bytes().last() {
            None | Some(b'\n') => {}
            Some(b' ') => {
                if paragraph {
                    // Upgrade the collapsed run to a paragraph break.
                    self.out.text.pop();
                    self.out.text.push('\n');
                }
            }
            Some(_) => self.emit(if paragraph { '\n' } else { ' ' }, s, e),
        }
        self.last_cjk = false;
    }

    #[inline]
    fn emit(&mut self, c: char, s: usize, e: usize) {
        if c != ' ' && c != '\n' {
            self.newlines = 0;
        }
        let n = c.len_utf8();
        self.out.text.push(c);
        // Offsets fit in u32: inputs are bounded by the policy's
        // `max_input_bytes`, far below 4 GiB.
        let (s, e) = (s as u32, e as u32);
        for _ in 0..n {
            self.out.map.push((s, e));
        }
    }

    fn finish(mut self) -> Normalized {
        for (h, s, e) in std::mem::take(&mut self.held) {
            if h == ' ' || h == '\n' {
                self.space(h, s, e);
            } else {
                self.emit(h, s, e);
            }
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn original<'a>(input: &'a str, n: &Normalized, needle: &str) -> &'a str {
        let at = n.text.find(needle).unwrap_or(usize::MAX);
        assert_ne!(at, usize::MAX, "`{needle}` not in `{}`", n.text);
        &input[n.original_span(at..at + needle.len())]
    }

    #[test]
    fn case_is_folded_and_spans_point_into_the_original() {
        let input = "This CURES it";
        let n = normalize(input);
        assert_eq!(n.text, "this cures it");
        assert_eq!(original(input, &n, "cures"), "CURES");
    }

    #[test]
    fn zero_width_characters_and_soft_hyphens_disappear() {
        let input = "c\u{200B}u\u{00AD}r\u{FEFF}e";
        let n = normalize(input);
        assert_eq!(n.text, "cure");
        assert_eq!(original(input, &n, "cure"), input);
    }

    #[test]
    fn full_width_letters_and_digits_become_ascii() {
        assert_eq!(fold("ＣＵＲＥ １００％"), "cure 100%");
    }

    #[test]
    fn cyrillic_and_greek_look_alikes_become_latin() {
        // Cyrillic с, у, р, е and Greek ο, ν.
        assert_eq!(fold("\u{0441}\u{0443}\u{0440}\u{0435}"), "cype");
        assert_eq!(fold("\u{0421}ure"), "cure");
        assert_eq!(fold("pr\u{03BF}ven"), "proven");
    }

    #[test]
    fn accents_cannot_split_a_word() {
        assert_eq!(fold("cu\u{0301}re"), "cure");
        assert_eq!(fold("cüre"), "cure");
    }

    #[test]
    fn spacing_and_fillers_inside_chinese_terms_are_removed() {
        assert_eq!(fold("可以 治 · 愈"), "可以治愈");
        assert_eq!(fold("治\u{3000}愈"), "治愈");
        assert_eq!(fold("高血压 and 糖尿病"), "高血压 and 糖尿病");
    }

    #[test]
    fn whitespace_runs_collapse_and_paragraphs_survive() {
        assert_eq!(fold("a  \t b\n\n c"), "a b\nc");
        assert_eq!(fold("no side\n effects"), "no side effects");
    }

    #[test]
    fn superscript_digits_become_citation_markers() {
        assert_eq!(fold("placebo¹²"), "placebo[1][2]");
    }
}
