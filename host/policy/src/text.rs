//! Small judgements on normalized text that screening uses for context:
//! word boundaries, the sentence around a match, negation, exception
//! phrases.

use std::ops::Range;

use crate::normalize::is_cjk;

fn is_word(c: char) -> bool {
    c.is_alphanumeric() && !is_cjk(c)
}

/// Whether `[s, e)` sits on word boundaries where the term needs them.
pub fn at_word_boundary(t: &str, s: usize, e: usize, start: bool, end: bool) -> bool {
    let before_ok = !start || !t[..s].chars().next_back().is_some_and(is_word);
    let after_ok = !end || !t[e..].chars().next().is_some_and(is_word);
    before_ok && after_ok
}

#[cfg(test)]
fn ends_sentence(t: &str, i: usize, c: char) -> bool {
    match c {
        '\n' | '!' | '?' | '。' | '！' | '？' => true,
        // A full stop ends a sentence only before a space or the end, so
        // that `p<0.05` and `2.5 mg` stay whole.
        '.' => t[i + 1..].chars().next().is_none_or(char::is_whitespace),
        _ => false,
    }
}

/// Whether a sentence ends with the byte at `j` (the last byte of the
/// terminator): `\n`, `!`, `?`, `。`, `！`, `？`, or a `.` before whitespace
/// or the end. Works on bytes: screening asks for the sentence around every
/// match, and this is the hot part of it.
fn ends_at(b: &[u8], j: usize) -> bool {
    match b[j] {
        b'\n' | b'!' | b'?' => true,
        b'.' => b.get(j + 1).is_none_or(|n| n.is_ascii_whitespace()),
        // 。 is E3 80 82; ！ is EF BC 81; ？ is EF BC 9F.
        0x82 => j >= 2 && b[j - 2] == 0xE3 && b[j - 1] == 0x80,
        0x81 | 0x9F => j >= 2 && b[j - 2] == 0xEF && b[j - 1] == 0xBC,
        _ => false,
    }
}

/// The sentence containing `[s, e)`: from after the previous terminator to
/// just after the next one. Screening asks for the sentence around most
/// matches, so the terminators are looked for with `memchr`, the frequent
/// ones first, each next search limited by what the last one found.
pub fn sentence(t: &str, s: usize, e: usize) -> Range<usize> {
    let b = t.as_bytes();
    let start = last_end_before(b, s).map_or(0, |j| j + 1);
    let end = first_end_from(b, e).map_or(b.len(), |j| j + 1);
    start..end
}

/// The last terminator byte before `s`.
fn last_end_before(b: &[u8], s: usize) -> Option<usize> {
    let mut lo = memchr::memrchr3(b'\n', b'!', b'?', &b[..s]).map_or(0, |j| j + 1);
    if let Some(j) = memchr::memrchr_iter(b'.', &b[lo..s])
        .map(|j| lo + j)
        .find(|&j| ends_at(b, j))
    {
        lo = j + 1;
    }
    // 。 ends in 0x82, ！ in 0x81, ？ in 0x9F.
    if let Some(j) = memchr::memrchr3_iter(0x82, 0x81, 0x9F, &b[lo..s])
        .map(|j| lo + j)
        .find(|&j| ends_at(b, j))
    {
        lo = j + 1;
    }
    lo.checked_sub(1)
}

/// The first terminator byte at or after `e`.
fn first_end_from(b: &[u8], e: usize) -> Option<usize> {
    let mut hi = memchr::memchr3(b'\n', b'!', b'?', &b[e..]).map_or(b.len(), |j| e + j);
    if let Some(j) = memchr::memchr_iter(b'.', &b[e..hi])
        .map(|j| e + j)
        .find(|&j| ends_at(b, j))
    {
        hi = j;
    }
    if let Some(j) = memchr::memchr3_iter(0x82, 0x81, 0x9F, &b[e..hi])
        .map(|j| e + j)
        .find(|&j| ends_at(b, j))
    {
        hi = j;
    }
    (hi < b.len()).then_some(hi)
}

/// The same, char by char: the reference the byte scan is tested against.
#[cfg(test)]
fn sentence_reference(t: &str, s: usize, e: usize) -> Range<usize> {
    let start = t[..s]
        .char_indices()
        .rev()
        .find(|&(i, c)| ends_sentence(t, i, c))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let end = t[e..]
        .char_indices()
        .find(|&(i, c)| ends_sentence(t, e + i, c))
        .map_or(t.len(), |(i, c)| e + i + c.len_utf8());
    start..end
}

/// The sentence plus citation markers right after it (`... placebo. [1]`,
/// `...安慰剂。[1]`).
pub fn with_trailing_markers(t: &str, sentence: Range<usize>) -> Range<usize> {
    let tail = t[sentence.end..]
        .char_indices()
        .find(|&(_, c)| !(c == ' ' || c.is_ascii_digit() || "[](),-–".contains(c)))
        .map_or(t.len() - sentence.end, |(i, _)| i);
    sentence.start..sentence.end + tail
}

/// Whether the negation `neg` stands shortly before `at` in the same
/// sentence (`there is no cure`, `is not a cure`, `不能根治`), with at most
/// `max_words` words between, none of them "only" (`not only cures` is no
/// negation).
pub fn negated(t: &str, sentence_start: usize, at: usize, neg: &str, max_words: usize) -> bool {
    let mut from = at.saturating_sub(64).max(sentence_start);
    while !t.is_char_boundary(from) {
        from += 1;
    }
    let window = &t[from..at];
    let starts_word = neg.chars().next().is_some_and(is_word);
    let ends_word = neg.chars().next_back().is_some_and(is_word);
    window.rmatch_indices(neg).any(|(k, _)| {
        let abs = from + k;
        if starts_word && t[..abs].chars().next_back().is_some_and(is_word) {
            return false;
        }
        let gap = &window[k + neg.len()..];
        if ends_word && gap.chars().next().is_some_and(is_word) {
            return false;
        }
        let words: Vec<&str> = gap.split_whitespace().collect();
        let cjk_gap = gap.chars().filter(|c| is_cjk(*c)).count();
        words.len() <= max_words
            && cjk_gap <= 2 * max_words
            && !words.iter().any(|w| *w == "only" || *w == "just")
    })
}

/// Whether `[m]` lies inside an occurrence of `phrase` (`best` inside
/// `best regards`).
pub fn inside_phrase(t: &str, m: &Range<usize>, phrase: &str) -> bool {
    let mut lo = m.end.saturating_sub(phrase.len());
    while !t.is_char_boundary(lo) {
        lo -= 1;
    }
    let mut hi = (m.start + phrase.len()).min(t.len());
    while !t.is_char_boundary(hi) {
        hi += 1;
    }
    t[lo..hi]
        .match_indices(phrase)
        .any(|(i, p)| lo + i <= m.start && m.end <= lo + i + p.len())
}

/// Whether `body` contains `word` at word boundaries.
pub fn contains_word(body: &str, word: &str) -> bool {
    let ws = word.chars().next().is_some_and(is_word);
    let we = word.chars().next_back().is_some_and(is_word);
    body.match_indices(word)
        .any(|(i, w)| at_word_boundary(body, i, i + w.len(), ws, we))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sentence_ends_at_a_full_stop_but_not_inside_a_number() {
        let t = "first one. p<0.05 here [1]. next";
        let at = t.find("0.05").unwrap_or(0);
        assert_eq!(&t[sentence(t, at, at + 4)], " p<0.05 here [1].");
    }

    #[test]
    fn the_byte_scan_finds_the_same_sentences_as_a_char_scan() {
        let t = "first one. p<0.05 here [1]. next! 第二句。end！x？y.\nz. 2.5 mg.\n\n末。";
        for (s, _) in t.char_indices() {
            let e = s + t[s..].chars().next().map_or(0, char::len_utf8);
            assert_eq!(sentence(t, s, e), sentence_reference(t, s, e), "at {s}");
        }
    }

    #[test]
    fn citation_markers_after_the_full_stop_belong_to_the_sentence() {
        let t = "62% vs 41%. [1] next";
        let s = sentence(t, 0, 3);
        assert_eq!(&t[with_trailing_markers(t, s)], "62% vs 41%. [1] ");
    }

    #[test]
    fn negations_count_only_when_close_and_not_followed_by_only() {
        let t = "there is no known cure";
        let at = t.find("cure").unwrap_or(0);
        assert!(negated(t, 0, at, "no", 2));
        let t = "it not only cures";
        assert!(!negated(t, 0, t.find("cures").unwrap_or(0), "not", 2));
        let t = "目前不能根治";
        assert!(negated(t, 0, t.find("根治").unwrap_or(0), "不能", 2));
        let t = "nobody says cure";
        assert!(!negated(t, 0, t.find("cure").unwrap_or(0), "no", 2));
    }

    #[test]
    fn a_match_inside_an_exception_phrase_is_found() {
        let t = "with best regards, the team";
        let at = t.find("best").unwrap_or(0);
        assert!(inside_phrase(t, &(at..at + 4), "best regards"));
        assert!(!inside_phrase(t, &(at..at + 4), "best wishes"));
    }
}
