//! HTML reduced to the text a reader sees, as a stream of characters with
//! the byte span of the original each came from.
//!
//! Inline tags vanish without a trace, so `c<b>ure</b>` reads `cure` as the
//! reader sees it; block tags become a line break. Entities are decoded
//! (`cur&#101;`). Alt text of images counts as visible; script, style, head
//! and comments do not. `<sup>` content becomes a bracketed marker, so a
//! superscript reference reads as a citation (`<sup>1</sup>` -> `[1]`).
//! Hidden elements are screened anyway: screening more than the reader sees
//! can only block more, never less.

/// A piece of visible text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Text copied from the input, starting at the given byte.
    Text(&'a str, usize),
    /// A character that stands for the original span `[start, end)` (a
    /// decoded entity, a line break for a block tag, a citation bracket).
    Char(char, usize, usize),
}

/// Calls `out` for each piece of visible text, in order.
pub fn visible_text<'a>(input: &'a str, mut out: impl FnMut(Piece<'a>)) {
    let bytes = input.as_bytes();
    let mut i = 0;
    while i < input.len() {
        let b = bytes[i];
        if b == b'<' {
            if input[i..].starts_with("<!--") {
                i = memchr::memmem::find(&bytes[i + 4..], b"-->")
                    .map_or(input.len(), |j| i + 4 + j + 3);
                continue;
            }
            let next = bytes.get(i + 1).copied().unwrap_or(b' ');
            if next.is_ascii_alphabetic() || next == b'/' || next == b'!' || next == b'?' {
                i = tag(input, i, &mut out);
                continue;
            }
        }
        if b == b'&'
            && let Some(end) = entity(input, i, &mut out)
        {
            i = end;
            continue;
        }
        // Plain text up to the next tag or entity goes through in one
        // piece (the normalizer's fast path); a lone `<` or `&` is text.
        let from = if b == b'<' || b == b'&' { i + 1 } else { i };
        let j = memchr::memchr2(b'<', b'&', &bytes[from..]).map_or(input.len(), |k| from + k);
        out(Piece::Text(&input[i..j], i));
        i = j;
    }
}

/// Decodes the entity at `i`, if there is one, and returns its end.
fn entity<'a>(input: &'a str, i: usize, out: &mut impl FnMut(Piece<'a>)) -> Option<usize> {
    let rest = &input[i..];
    let semi = rest.as_bytes().iter().take(33).position(|&b| b == b';')?;
    let raw = &rest[..=semi];
    if !raw[1..semi]
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'#')
    {
        return None;
    }
    let decoded = html_escape::decode_html_entities(raw);
    if decoded == raw {
        return None;
    }
    let end = i + raw.len();
    for c in decoded.chars() {
        out(Piece::Char(c, i, end));
    }
    Some(end)
}

/// A tag name of up to eight bytes as a number, to compare names without
/// a call per candidate (`0` for a longer one).
const fn key(name: &[u8]) -> u64 {
    if name.len() > 8 {
        return 0;
    }
    let mut k = 0u64;
    let mut i = 0;
    while i < name.len() {
        k |= (name[i] as u64) << (8 * i);
        i += 1;
    }
    k
}

const BLOCK: [u64; 33] = [
    key(b"address"),
    key(b"article"),
    key(b"aside"),
    key(b"center"),
    key(b"dd"),
    key(b"div"),
    key(b"dl"),
    key(b"dt"),
    key(b"footer"),
    key(b"form"),
    key(b"h1"),
    key(b"h2"),
    key(b"h3"),
    key(b"h4"),
    key(b"h5"),
    key(b"h6"),
    key(b"header"),
    key(b"hr"),
    key(b"li"),
    key(b"main"),
    key(b"nav"),
    key(b"ol"),
    key(b"p"),
    key(b"pre"),
    key(b"section"),
    key(b"table"),
    key(b"tbody"),
    key(b"td"),
    key(b"tfoot"),
    key(b"th"),
    key(b"thead"),
    key(b"tr"),
    key(b"ul"),
];

/// Tags that end a paragraph (`br` only a line).
fn is_block(name: &[u8]) -> bool {
    name == b"blockquote" || (!name.is_empty() && BLOCK.contains(&key(name)))
}

/// Elements whose content no reader sees.
fn is_invisible(name: &[u8]) -> bool {
    const INVISIBLE: [u64; 6] = [
        key(b"head"),
        key(b"script"),
        key(b"style"),
        key(b"template"),
        key(b"title"),
        key(b"noscript"),
    ];
    !name.is_empty() && INVISIBLE.contains(&key(name))
}

/// Handles the tag at `i` and returns where the text resumes.
fn tag<'a>(input: &'a str, i: usize, out: &mut impl FnMut(Piece<'a>)) -> usize {
    let mut emit = |c, s, e| out(Piece::Char(c, s, e));
    let end = tag_end(input, i);
    let inner = &input.as_bytes()[i + 1..end.saturating_sub(1).max(i + 1)];
    let closing = inner.first() == Some(&b'/');
    let raw = &inner[inner.iter().position(|&b| b != b'/').unwrap_or(inner.len())..];
    let raw = &raw[..raw
        .iter()
        .position(|b| !b.is_ascii_alphanumeric())
        .unwrap_or(raw.len())];
    // Known names are short; a longer one is an unknown tag.
    let mut buf = [0u8; 12];
    let name: &[u8] = match buf.get_mut(..raw.len()) {
        Some(dst) => {
            dst.copy_from_slice(raw);
            dst.make_ascii_lowercase();
            dst
        }
        None => b"",
    };
    if !closing && is_invisible(name) && inner.last() != Some(&b'/') {
        // Skip to the matching close tag; none means the rest is invisible.
        return close_tag(input, end, name).map_or(input.len(), |j| tag_end(input, j));
    }
    if name == b"br" {
        emit('\n', i, end);
    } else if is_block(name) {
        // A block ends a paragraph: two line breaks, as the normalizer
        // reads a blank line.
        emit('\n', i, end);
        emit('\n', i, end);
    } else if name == b"sup" {
        emit(if closing { ']' } else { '[' }, i, end);
    } else if (name == b"img" || name == b"area" || name == b"input")
        && !closing
        && let Some((s, e)) = attribute(input, i + 1, end, "alt")
    {
        out(Piece::Char(' ', i, s));
        attribute_text(input, s, e, out);
        out(Piece::Char(' ', e, end));
    }
    end
}

/// Where the first `</name` (any case) at or after `from` starts.
fn close_tag(input: &str, from: usize, name: &[u8]) -> Option<usize> {
    let bytes = input.as_bytes();
    let mut at = from;
    while let Some(k) = memchr::memmem::find(&bytes[at..], b"</") {
        let j = at + k;
        let rest = &bytes[j + 2..];
        if rest.len() >= name.len() && rest[..name.len()].eq_ignore_ascii_case(name) {
            return Some(j);
        }
        at = j + 2;
    }
    None
}

/// Emits an attribute value, decoding entities.
fn attribute_text<'a>(input: &'a str, s: usize, e: usize, out: &mut impl FnMut(Piece<'a>)) {
    let mut i = s;
    while i < e {
        if input.as_bytes()[i] == b'&'
            && let Some(end) = entity(&input[..e], i, out)
        {
            i = end;
            continue;
        }
        let from = if input.as_bytes()[i] == b'&' {
            i + 1
        } else {
            i
        };
        let j = input[from..e].find('&').map_or(e, |k| from + k);
        out(Piece::Text(&input[i..j], i));
        i = j;
    }
}

/// The byte after the `>` that closes the tag at `i`, honouring quotes.
fn tag_end(input: &str, i: usize) -> usize {
    let bytes = input.as_bytes();
    let mut at = i;
    while let Some(k) = memchr::memchr3(b'>', b'"', b'\'', &bytes[at..]) {
        let j = at + k;
        let q = bytes[j];
        if q == b'>' {
            return j + 1;
        }
        match memchr::memchr(q, &bytes[j + 1..]) {
            Some(c) => at = j + 1 + c + 1,
            None => return input.len(),
        }
    }
    input.len()
}

/// The span of the value of attribute `name` inside the tag `[s, e)`.
fn attribute(input: &str, s: usize, e: usize, name: &str) -> Option<(usize, usize)> {
    // ASCII lower-casing keeps byte offsets.
    let lower = input[s..e].to_ascii_lowercase();
    let b = lower.as_bytes();
    let skip_ws = |mut j: usize| {
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        j
    };
    let mut from = 0;
    while let Some(k) = lower[from..].find(name) {
        let at = from + k;
        from = at + name.len();
        if at == 0 || !b[at - 1].is_ascii_whitespace() {
            continue;
        }
        let mut j = skip_ws(from);
        if b.get(j) != Some(&b'=') {
            continue;
        }
        j = skip_ws(j + 1);
        return match b.get(j) {
            Some(&q @ (b'"' | b'\'')) => {
                let close = lower[j + 1..]
                    .find(q as char)
                    .map_or(b.len(), |c| j + 1 + c);
                Some((s + j + 1, s + close))
            }
            _ => {
                let len = lower[j..]
                    .find(|c: char| c.is_ascii_whitespace() || c == '>')
                    .unwrap_or(b.len() - j);
                Some((s + j, s + j + len))
            }
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(input: &str) -> String {
        let mut out = String::new();
        visible_text(input, |p| match p {
            Piece::Text(t, _) => out.push_str(t),
            Piece::Char(c, _, _) => out.push(c),
        });
        out
    }

    #[test]
    fn inline_tags_join_and_block_tags_break() {
        assert_eq!(text("c<b>ure</b><p>next</p>"), "cure\n\nnext\n\n");
    }

    #[test]
    fn entities_are_decoded_with_the_entity_as_span() {
        let input = "cur&#101; &amp; more";
        let mut pieces = Vec::new();
        visible_text(input, |p| pieces.push(p));
        assert_eq!(pieces[0], Piece::Text("cur", 0));
        assert_eq!(pieces[1], Piece::Char('e', 3, 9));
        assert_eq!(text(input), "cure & more");
    }

    #[test]
    fn alt_text_is_visible_and_scripts_are_not() {
        assert_eq!(
            text(r#"<img src="x.png" alt="Cures &amp; more"><script>var cure;</script>ok"#),
            " Cures & more ok"
        );
        assert_eq!(text("<style>p{}</style><!-- cure -->a"), "a");
    }

    #[test]
    fn superscripts_read_as_citation_markers() {
        assert_eq!(text("placebo<sup>1,2</sup>."), "placebo[1,2].");
    }
}
