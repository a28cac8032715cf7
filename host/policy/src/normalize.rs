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
//! dropped (`治 愈`, `根·治`, `治.愈` -> `治愈`). Last, letter-spaced Latin
//! words are joined: three or more single letters with the same spacer
//! between each (`c u r e s`, `c.u.r.e.s`, `c-u-r-e-s`) read as one word
//! (`cures`), while two (`U.S.`, `e.g.`) stay as they are; a wider gap in
//! a spaced-out heading separates its words. The text as it was before the
//! joining stays available to screening, which matches both. HTML is
//! reduced to the text a reader sees first (see [`crate::html`]).
//!
//! Speed matters here: every screened byte passes through this module. Runs
//! of printable ASCII and of CJK ideographs are copied in one go, only the
//! rest goes character by character, and the way back to the original is a
//! list of segments (one per copied run or folded character) rather than an
//! entry per byte.

use std::ops::Range;

use unicode_normalization::char::{decompose_compatible, is_combining_mark};

/// Text after normalization, with the way back to the original.
#[derive(Debug, Clone, Default)]
pub struct Normalized {
    /// The normalized text that rules match.
    pub text: String,
    // Sorted by `norm`; the first starts at 0 and each runs to the next.
    segs: Vec<Seg>,
    // The letter-spaced words that were joined, as ranges of `text`.
    joined: Vec<Range<usize>>,
    // The text as it was before joining them, when there were any.
    unjoined: Option<Box<Normalized>>,
}

/// Where a stretch of normalized text came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seg {
    /// First normalized byte of the segment.
    norm: u32,
    /// The original span `[orig, end)` it came from.
    orig: u32,
    end: u32,
    /// Byte for byte: normalized byte `norm + k` came from original byte
    /// `orig + k` (a copied or case-folded run). Otherwise every byte of the
    /// segment stands for the whole original span (an entity, a folded or
    /// decomposed character, a collapsed run of spaces).
    copy: bool,
}

impl Normalized {
    /// The span of the original text that produced `range` of the
    /// normalized text.
    pub fn original_span(&self, range: Range<usize>) -> Range<usize> {
        if self.text.is_empty() || range.start >= self.text.len() {
            return 0..0;
        }
        let last = range.end.clamp(range.start + 1, self.text.len()) - 1;
        self.unit(range.start).start..self.unit(last).end
    }

    /// The letter-spaced words that were joined (`c u r e s` -> `cures`), as
    /// ranges of the text. Inside one, every position is a word boundary:
    /// the spacing hid where the words of the run begin and end.
    pub(crate) fn joined(&self) -> &[Range<usize>] {
        &self.joined
    }

    /// The text as it was before letter-spaced words were joined, if any
    /// were: screening matches it too, so joining can only add findings.
    pub(crate) fn take_unjoined(&mut self) -> Option<Normalized> {
        self.unjoined.take().map(|n| *n)
    }

    /// The original span of the unit normalized byte `k` belongs to.
    fn unit(&self, k: usize) -> Range<usize> {
        let i = self
            .segs
            .partition_point(|s| s.norm as usize <= k)
            .saturating_sub(1);
        match self.segs.get(i) {
            Some(s) if s.copy => {
                let o = s.orig as usize + (k - s.norm as usize);
                o..o + 1
            }
            Some(s) => s.orig as usize..s.end as usize,
            None => 0..0,
        }
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
    // Markup and styles vanish: the visible text is usually well under
    // half of an HTML e-mail.
    let mut f = Folder::with_capacity(input.len() / 2);
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

/// Punctuation used to pad the characters of a CJK term apart (after
/// NFKC, so full-width forms arrive as ASCII). Clause punctuation (`，`,
/// `、`, `。`, `；`, `：`, dashes, ellipses) is not: it separates real words,
/// and dropping it would join the end of one word and the start of the
/// next into a term (`病根、治疗` must not read `根治`).
fn is_cjk_filler(c: char) -> bool {
    matches!(
        c,
        '·' | '•'
            | '‧'
            | '・'
            | '∙'
            | '⋅'
            | '*'
            | '_'
            | '-'
            | '~'
            | '.'
            | '/'
            | '\\'
            | '|'
            | '+'
            | '='
            | '^'
            | '#'
            | '＊'
            | '－'
            | '～'
            | '＿'
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

/// Printable ASCII other than the space.
#[inline(always)]
fn graphic(b: u8) -> bool {
    b.wrapping_sub(0x21) < 0x5E
}

/// Where a run of printable ASCII starting at `i` ends; single spaces
/// between printable bytes belong to the run, anything else (runs of
/// spaces, line breaks, control and non-ASCII bytes) ends it.
#[inline]
fn ascii_run_end(bytes: &[u8], i: usize) -> usize {
    let mut j = i;
    // Eight bytes at a time while none of them needs a closer look: all
    // printable or spaces, no two spaces in a row, and the byte after the
    // word printable too (so a final space is followed by a printable one).
    while j + 9 <= bytes.len() {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[j..j + 8]);
        let x = u64::from_le_bytes(w);
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGH: u64 = 0x8080_8080_8080_8080;
        // A byte below 0x20, or above 0x7E.
        let low = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
        let high = (x.wrapping_add(ONES) | x) & HIGH;
        // A space (may flag a byte after a space too, which only sends
        // the word down the byte-by-byte path).
        let y = x ^ (ONES * 0x20);
        let space = y.wrapping_sub(ONES) & !y & HIGH;
        if low | high | (space & (space >> 8)) != 0 || (space >> 56 != 0 && !graphic(bytes[j + 8]))
        {
            break;
        }
        j += 8;
    }
    while j < bytes.len() {
        let b = bytes[j];
        if graphic(b) {
            j += 1;
        } else if b == b' ' && bytes.get(j + 1).copied().is_some_and(graphic) {
            j += 2;
        } else {
            break;
        }
    }
    j
}

struct Folder {
    text: String,
    segs: Vec<Seg>,
    // Separators seen right after a CJK character: dropped if another CJK
    // character follows, emitted otherwise.
    held: Vec<(char, usize, usize)>,
    last_cjk: bool,
    // Line breaks in the current whitespace run: one is a soft wrap (a
    // space), two or more a paragraph break (kept, it ends a sentence).
    newlines: u8,
    mapped: Vec<char>,
    // Spaces of `text` that stand for several whitespace characters:
    // (position, how many).
    wide: Vec<(u32, u8)>,
    // Whether a non-ASCII spacer (`·`, `•`, ...) was seen: the quick test
    // for letter spacing looks at ASCII spacers only.
    dots: bool,
}

impl Folder {
    fn with_capacity(n: usize) -> Self {
        Folder {
            text: String::with_capacity(n),
            segs: Vec::with_capacity(n / 16 + 16),
            held: Vec::new(),
            last_cjk: false,
            newlines: 0,
            mapped: Vec::new(),
            wide: Vec::new(),
            dots: false,
        }
    }

    /// Records that the last `len` bytes of `text` came from the original
    /// span `[s, e)`, extending the last segment when it continues it.
    #[inline]
    fn map(&mut self, len: usize, s: usize, e: usize) {
        // Offsets fit in u32: inputs are bounded by the policy's
        // `max_input_bytes`, far below 4 GiB.
        let (s, e) = (s as u32, e as u32);
        let copy = len as u32 == e - s;
        if let Some(last) = self.segs.last_mut() {
            if copy && last.copy && last.end == s {
                last.end = e;
                return;
            }
            if !last.copy && last.orig == s && last.end == e {
                return;
            }
        }
        self.segs.push(Seg {
            norm: (self.text.len() - len) as u32,
            orig: s,
            end: e,
            copy,
        });
    }

    /// Pushes `text`, which starts at byte `base` of the original.
    fn push_text(&mut self, text: &str, base: usize) {
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if b < 0x80 {
                if !self.last_cjk && graphic(b) {
                    i = self.ascii_run(text, i, base);
                } else {
                    self.ascii_at(b, base + i, base + i + 1);
                    i += 1;
                }
                continue;
            }
            if self.held.is_empty() {
                let run = self.cjk_run(text, i, base);
                if run > i {
                    i = run;
                    continue;
                }
            }
            let c = text[i..].chars().next().unwrap_or('\u{FFFD}');
            self.push_source(c, base + i, base + i + c.len_utf8());
            i += c.len_utf8();
        }
    }

    /// A run of CJK ideographs and punctuation from `i`, copied as is.
    fn cjk_run(&mut self, text: &str, i: usize, base: usize) -> usize {
        let mut j = i;
        let mut last = None;
        for c in text[i..].chars() {
            if !is_plain_cjk(c as u32) {
                break;
            }
            j += c.len_utf8();
            last = Some(c);
        }
        if let Some(c) = last {
            self.text.push_str(&text[i..j]);
            self.map(j - i, base + i, base + j);
            self.last_cjk = is_cjk(c);
            self.newlines = 0;
        }
        j
    }

    /// The hot path: a run of printable ASCII from `i` (single spaces
    /// between words included), copied lower-cased in one go.
    fn ascii_run(&mut self, input: &str, i: usize, base: usize) -> usize {
        let j = ascii_run_end(input.as_bytes(), i);
        let start = self.text.len();
        self.text.push_str(&input[i..j]);
        self.text[start..].make_ascii_lowercase();
        self.map(j - i, base + i, base + j);
        self.newlines = 0;
        j
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
        decompose_compatible(c, |d| {
            for l in d.to_lowercase() {
                self.folded(l, s, e);
            }
        });
    }

    /// One character of a decomposed, lower-cased source character.
    fn folded(&mut self, d: char, s: usize, e: usize) {
        if is_combining_mark(d) || is_ignorable(d) {
            return;
        }
        self.dots |= !d.is_ascii() && is_letter_spacer(d);
        if d.is_whitespace() {
            self.separator(if d == '\u{2028}' { '\n' } else { ' ' }, s, e);
            return;
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
            // A paragraph break is kept even between CJK characters, and
            // so is a full stop right after one and before a space: both
            // separate sentences (`根 . 治` is padding, `根. 治` is not).
            let keep = !cjk
                || held.iter().filter(|h| h.0 == '\n').count() >= 2
                || (held[0].0 == '.' && held.get(1).is_some_and(|h| matches!(h.0, ' ' | '\n')));
            if keep {
                for &(h, hs, he) in &held {
                    if h == ' ' || h == '\n' {
                        self.space(h, hs, he);
                    } else {
                        self.emit(h, hs, he);
                    }
                }
            }
            self.held = held;
            self.held.clear();
        }
        self.emit(c, s, e);
        self.last_cjk = cjk;
    }

    fn space(&mut self, c: char, s: usize, e: usize) {
        if c == '\n' {
            self.newlines = self.newlines.saturating_add(1);
        }
        let paragraph = self.newlines >= 2;
        match self.text.as_bytes().last() {
            None | Some(b'\n') => {}
            Some(b' ') => {
                if paragraph {
                    // Upgrade the collapsed run to a paragraph break.
                    self.text.pop();
                    self.text.push('\n');
                } else {
                    let at = (self.text.len() - 1) as u32;
                    match self.wide.last_mut() {
                        Some((p, n)) if *p == at => *n = n.saturating_add(1),
                        _ => self.wide.push((at, 2)),
                    }
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
        self.text.push(c);
        self.map(c.len_utf8(), s, e);
    }

    fn finish(mut self) -> Normalized {
        for (h, s, e) in std::mem::take(&mut self.held) {
            if h == ' ' || h == '\n' {
                self.space(h, s, e);
            } else {
                self.emit(h, s, e);
            }
        }
        let out = Normalized {
            text: self.text,
            segs: self.segs,
            joined: Vec::new(),
            unjoined: None,
        };
        let (spacers, runs) = if self.dots || maybe_letter_spaced(out.text.as_bytes()) {
            letter_spacers(&out.text, &self.wide)
        } else {
            (Vec::new(), Vec::new())
        };
        if spacers.is_empty() {
            out
        } else {
            drop_spacers(out, &spacers, &runs)
        }
    }
}

/// Separators between the letters of a letter-spaced Latin word.
fn is_letter_spacer(c: char) -> bool {
    matches!(
        c,
        ' ' | '.' | '-' | '_' | '*' | '~' | '/' | '|' | '+' | '·' | '•' | '‧' | '・' | '∙' | '⋅'
    )
}

/// Byte classes for the scan for letter spacing.
const SPACER: u8 = 1;
const LETTER: u8 = 2;

/// `SPACER` for bytes that can belong to a spacer: the ASCII ones, and the
/// bytes of the UTF-8 encodings of the dots (`·` is C2 B7, `•` E2 80 A2,
/// ...); `LETTER` for ASCII letters.
const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let spacers = b" .-_*~/|+\xC2\xB7\xE2\x80\xA2\xA7\xE3\x83\xBB\x88\x99\x8B\x85";
    let mut i = 0;
    while i < spacers.len() {
        t[spacers[i] as usize] = SPACER;
        i += 1;
    }
    let mut c = b'a';
    while c <= b'z' {
        t[c as usize] = LETTER;
        t[c.to_ascii_uppercase() as usize] = LETTER;
        c += 1;
    }
    t
};

/// Whether `b` may hold a letter-spaced word with an ASCII spacer: three
/// single ASCII letters with the same spacer between each (`c.u.r`). Run
/// on every text, so it works on eight bytes at a time and looks closer
/// only where a byte equals the byte two after it and is a spacer: ` a `
/// in prose, which the closer look then turns down.
fn maybe_letter_spaced(b: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    // The high bit of bytes 0 to 5 of a word: those have a byte two after
    // them in the same word.
    const FIRST6: u64 = 0x0000_8080_8080_8080;
    let candidate =
        |k: usize| ascii_spacer(b[k]) == 1 && letter(b[k + 1]) == 1 && spaced_letter_at(b, k + 1);
    let mut k = 0;
    while k + 8 <= b.len() {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[k..k + 8]);
        let x = u64::from_le_bytes(w);
        // Zero where a byte equals the one two after it (a false alarm
        // now and then above a true one: only a closer look).
        let y = x ^ (x >> 16);
        let mut same = y.wrapping_sub(ONES) & !y & FIRST6;
        while same != 0 {
            let i = (same.trailing_zeros() / 8) as usize;
            if candidate(k + i) {
                return true;
            }
            same &= same - 1;
        }
        k += 6;
    }
    (k..b.len().saturating_sub(2)).any(|k| b[k] == b[k + 2] && candidate(k))
}

/// Whether the ASCII letter at `j`, between two equal spacer bytes, has a
/// single letter on each side: the middle of a letter-spaced word.
fn spaced_letter_at(b: &[u8], j: usize) -> bool {
    let word = |k: Option<&u8>| k.is_some_and(u8::is_ascii_alphanumeric);
    j >= 2
        && letter(b[j - 2]) == 1
        && !word(j.checked_sub(3).and_then(|k| b.get(k)))
        && b.get(j + 2).is_some_and(|&x| letter(x) == 1)
        && !word(b.get(j + 3))
}

/// 1 for an ASCII spacer byte. Comparisons joined with `|`, not `||`: no
/// branches, so that loops over it run on vectors.
#[inline(always)]
fn ascii_spacer(b: u8) -> u8 {
    u8::from(b == b' ')
        | u8::from(b == b'.')
        | u8::from(b == b'-')
        | u8::from(b == b'_')
        | u8::from(b == b'*')
        | u8::from(b == b'~')
        | u8::from(b == b'/')
        | u8::from(b == b'|')
        | u8::from(b == b'+')
}

/// 1 for a spacer byte, any byte of a non-ASCII character included.
#[inline(always)]
fn loose_spacer(b: u8) -> u8 {
    ascii_spacer(b) | u8::from(b >= 0x80)
}

/// 1 for an ASCII letter.
#[inline(always)]
fn letter(b: u8) -> u8 {
    u8::from((b | 0x20).wrapping_sub(b'a') < 26)
}

/// The spacers to drop from the letter-spaced words of `t`, as byte
/// ranges in order, and the words they join. Cheap enough for every text:
/// a letter with spacer bytes on both sides (` u `, `.u.`, `·u·`) is rare
/// in prose (` a `), so a branch-free scan rules out whole blocks and only
/// the rare candidate is looked at closely. `wide` lists the spaces that
/// stand for several whitespace characters (see [`spaced_run`]).
fn letter_spacers(t: &str, wide: &[(u32, u8)]) -> (Vec<Range<usize>>, Vec<Range<usize>>) {
    let b = t.as_bytes();
    let (mut drop, mut runs) = (Vec::new(), Vec::new());
    let mut j = 1;
    while j + 1 < b.len() {
        let end = (j + 16).min(b.len() - 1);
        // Comparisons only, over three shifted views of the block, so that
        // the compiler can run it on whole vectors of bytes. Any non-ASCII
        // byte counts as a spacer here (the dots are); the close look
        // sorts it out.
        let m = end - j;
        let (l, c, r) = (&b[j - 1..j - 1 + m], &b[j..j + m], &b[j + 1..j + 1 + m]);
        let any = l.iter().zip(c).zip(r).fold(0u8, |any, ((&x, &y), &z)| {
            any | (loose_spacer(x) & letter(y) & loose_spacer(z))
        });
        if any == 0 {
            j = end;
            continue;
        }
        while j < end {
            let c = CLASS[b[j] as usize];
            if c == LETTER
                && CLASS[b[j - 1] as usize] == SPACER
                && CLASS[b[j + 1] as usize] == SPACER
            {
                // `j` is an ASCII letter, so `j` and `j + 1` are character
                // boundaries.
                if let Some(run_end) = spaced_run(t, j, wide, &mut drop, &mut runs) {
                    j = run_end;
                    continue;
                }
            }
            j += 1;
        }
    }
    (drop, runs)
}

/// If the letter at `j` is inside a letter-spaced word of three letters or
/// more, records its spacers and the word, and returns where it ends.
///
/// Letter-spaced headings (`B E S T   W I S H E S`) set words apart with
/// wider gaps than letters: a gap of spaces wider than the narrowest gap of
/// the run separates two words and stays.
fn spaced_run(
    t: &str,
    j: usize,
    wide: &[(u32, u8)],
    drop: &mut Vec<Range<usize>>,
    runs: &mut Vec<Range<usize>>,
) -> Option<usize> {
    // Going left, then right, from a single letter: a spacer (the same
    // one each time), a single letter (nothing word-like beyond it), and
    // again.
    let mut spacers = Vec::new();
    let mut first = j;
    let mut spacer = None;
    while let Some((r, c, letter)) = spaced_letter(t, first, false)
        && spacer.is_none_or(|s| s == c)
    {
        spacers.push(r);
        spacer = Some(c);
        first = letter;
    }
    if spacers.is_empty() {
        return None;
    }
    spacers.reverse();
    let mut last = j;
    let left = spacers.len();
    while let Some((r, c, letter)) = spaced_letter(t, last, true)
        && spacer == Some(c)
    {
        spacers.push(r);
        last = letter;
    }
    if spacers.len() == left {
        return None;
    }
    let width = |r: &Range<usize>| {
        wide.binary_search_by_key(&(r.start as u32), |w| w.0)
            .map_or(1, |k| wide[k].1)
    };
    let narrowest = spacers.iter().map(width).min().unwrap_or(1);
    let mut word = first;
    for r in spacers {
        if width(&r) > narrowest {
            runs.push(word..r.start);
            word = r.end;
        } else {
            drop.push(r);
        }
    }
    runs.push(word..last + 1);
    Some(last + 1)
}

/// From the single ASCII letter at `at`, the spacer (its span and itself)
/// and the single letter next to it (to the right when `forward`), if
/// there are.
fn spaced_letter(t: &str, at: usize, forward: bool) -> Option<(Range<usize>, char, usize)> {
    if forward {
        let s = t[at + 1..]
            .chars()
            .next()
            .filter(|&c| is_letter_spacer(c))?;
        let l = at + 1 + s.len_utf8();
        let ok = t.as_bytes().get(l).is_some_and(u8::is_ascii_alphabetic)
            && !t[l + 1..].chars().next().is_some_and(is_word);
        ok.then_some((at + 1..l, s, l))
    } else {
        let s = t[..at]
            .chars()
            .next_back()
            .filter(|&c| is_letter_spacer(c))?;
        let l = (at - s.len_utf8()).checked_sub(1)?;
        let ok = t.as_bytes()[l].is_ascii_alphabetic()
            && !t[..l].chars().next_back().is_some_and(is_word);
        ok.then_some((l + 1..at, s, l))
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() && !is_cjk(c)
}

/// Drops the `spacers` (sorted byte ranges, each inside one segment) from
/// the text; every other byte keeps its original span, so a match on the
/// joined word covers the whole spaced-out original. `runs` are the joined
/// words, before dropping.
fn drop_spacers(n: Normalized, spacers: &[Range<usize>], runs: &[Range<usize>]) -> Normalized {
    let mut text = String::with_capacity(n.text.len());
    let mut at = 0;
    for r in spacers {
        text.push_str(&n.text[at..r.start]);
        at = r.end;
    }
    text.push_str(&n.text[at..]);
    let mut segs = Vec::with_capacity(n.segs.len() + spacers.len());
    let mut removed = 0;
    let mut next = spacers.iter().peekable();
    for (i, s) in n.segs.iter().enumerate() {
        let (ns, ne) = (
            s.norm as usize,
            n.segs.get(i + 1).map_or(n.text.len(), |x| x.norm as usize),
        );
        let mut piece = |a: usize, b: usize, removed: usize| {
            if b > a {
                let (orig, end) = if s.copy {
                    (s.orig + (a - ns) as u32, s.orig + (b - ns) as u32)
                } else {
                    (s.orig, s.end)
                };
                segs.push(Seg {
                    norm: (a - removed) as u32,
                    orig,
                    end,
                    copy: s.copy,
                });
            }
        };
        let mut a = ns;
        while let Some(r) = next.next_if(|r| r.start < ne) {
            piece(a, r.start, removed);
            removed += r.len();
            a = r.end;
        }
        piece(a, ne, removed);
    }
    // Where a position of the old text is in the new one.
    let moved = |x: usize| {
        let k = spacers.partition_point(|r| r.end <= x);
        x - spacers[..k].iter().map(Range::len).sum::<usize>()
    };
    let joined = runs
        .iter()
        .filter(|r| r.len() > 1)
        .map(|r| moved(r.start)..moved(r.end))
        .collect();
    Normalized {
        text,
        segs,
        joined,
        unjoined: Some(Box::new(n)),
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
        let input = "is ＣＵＲＥＳ now";
        assert_eq!(original(input, &normalize(input), "cures"), "ＣＵＲＥＳ");
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
    fn punctuation_padding_inside_chinese_terms_is_removed() {
        for padded in [
            "根·治",
            "根•治",
            "根.治",
            "根．治",
            "根/治",
            "根|治",
            "根 - 治",
            "根_治",
            "根 . 治",
            "根*治",
            "根~治",
            "根\\治",
            "根+治",
        ] {
            assert_eq!(fold(padded), "根治", "{padded}");
        }
        let input = "可以根 . 治高血压";
        assert_eq!(original(input, &normalize(input), "根治"), "根 . 治");
    }

    #[test]
    fn clause_punctuation_between_chinese_words_stays() {
        // Joining these would make `根治` out of two words.
        assert_eq!(fold("病根、治疗"), "病根、治疗");
        assert_eq!(fold("病根，治疗"), "病根,治疗");
        assert_eq!(fold("病根。治疗"), "病根。治疗");
        // An ASCII full stop before a space ends a sentence, as in
        // `text::sentence`.
        assert_eq!(fold("病根. 治疗"), "病根. 治疗");
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

    #[test]
    fn letter_spaced_words_are_joined_and_spans_cover_the_spacing() {
        for (input, word) in [
            ("it c u r e s all", "cures"),
            ("it c.u.r.e.s all", "cures"),
            ("it c-u-r-e-s all", "cures"),
            ("it c_u_r_e_s all", "cures"),
            ("it c·u·r·e·s all", "cures"),
            ("is g u a r a n t e e d.", "guaranteed"),
            ("is G U A R A N T E E D", "guaranteed"),
            ("it c  u \tr  e\n s", "cures"),
            ("it ｃ ｕ ｒ ｅ ｓ", "cures"),
            ("it c\u{200B} u r e s", "cures"),
        ] {
            let n = normalize(input);
            let spaced = original(input, &n, word);
            assert!(
                spaced.len() > word.len() && !spaced.ends_with(' '),
                "{input}: {spaced}"
            );
            assert!(n.text.contains(&format!(" {word}")), "{input}: {}", n.text);
        }
        let input = "it c u r e s all";
        assert_eq!(original(input, &normalize(input), "cures"), "c u r e s");
    }

    #[test]
    fn wider_gaps_in_a_letter_spaced_heading_separate_its_words() {
        assert_eq!(fold("B E S T   W I S H E S"), "best wishes");
        assert_eq!(fold("C U R E S  A L L"), "cures all");
        // A stray letter joins the word; screening then matches inside it.
        let n = normalize("x c u r e s  a l l");
        assert_eq!(n.text, "xcures all");
        assert_eq!(n.joined(), [0..6, 7..10]);
        let before = n.clone().take_unjoined().map(|u| u.text);
        assert_eq!(before.as_deref(), Some("x c u r e s a l l"));
    }

    #[test]
    fn abbreviations_and_short_letter_lists_stay_as_written() {
        assert_eq!(
            fold("the U.S. and e.g. i.e. a b"),
            "the u.s. and e.g. i.e. a b"
        );
        assert_eq!(fold("a cure in 1 2 3 steps"), "a cure in 1 2 3 steps");
        assert_eq!(fold("secure x-ray, T-cell"), "secure x-ray, t-cell");
        // Three or more single letters are joined: harmless for lists.
        assert_eq!(fold("options a b c"), "options abc");
        assert_eq!(fold("U.S.A. today"), "usa. today");
    }

    #[test]
    fn the_segment_map_gives_the_same_spans_as_a_byte_map() {
        let input = "Ｃａｒｄｉｏｚｅｎ  ｃ\u{200B}ＵＲＥＳ   it¹ 治 愈 cur&#101; done\n\nnext";
        let n = normalize(input);
        // Every normalized character maps inside the original, in order.
        let mut prev = 0;
        for (i, c) in n.text.char_indices() {
            let span = n.original_span(i..i + c.len_utf8());
            assert!(span.start >= prev && span.end <= input.len() && span.start < span.end);
            assert!(input.is_char_boundary(span.start) && input.is_char_boundary(span.end));
            prev = span.start;
        }
        assert_eq!(original(input, &n, "cures"), "ｃ\u{200B}ＵＲＥＳ");
        assert_eq!(original(input, &n, "治愈"), "治 愈");
    }

    #[test]
    fn long_ascii_runs_take_the_word_at_a_time_path_with_the_same_result() {
        let input = "Cardiozen lowered SBP by 14.2 mmHg (p<0.001) [2].  Two  spaces\tand\r\nbreaks \u{0}x end ";
        assert_eq!(
            fold(input),
            "cardiozen lowered sbp by 14.2 mmhg (p<0.001) [2]. two spaces and breaks x end "
        );
    }
}
