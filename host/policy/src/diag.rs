//! Diagnostics for policy files: what went wrong, where (file:line:column),
//! the offending text and a help line, like a compiler's.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

/// One problem found while loading a policy set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// One line, lowercase, user input in backticks, no location.
    pub message: String,
    /// Where it is, when it is in a file (boxed: diagnostics travel in
    /// `Result`s and should stay small).
    pub location: Option<Box<Location>>,
    /// What to do about it.
    pub help: Option<String>,
}

/// A place in a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file as the user named it (e.g. `policies/consent.toml`).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Byte span in the file.
    pub span: Range<usize>,
    /// The whole line the span starts on, for the underline.
    pub source_line: String,
    /// The file's text, shared between the diagnostics of one file, so
    /// that miette can render any of them.
    source: Arc<String>,
}

impl Location {
    /// Computes line and column of `span` in `source`.
    pub fn new(file: &str, source: &Arc<String>, span: Range<usize>) -> Self {
        let start = floor_char_boundary(source, span.start.min(source.len()));
        let end = floor_char_boundary(source, span.end.clamp(start, source.len()));
        let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[start..]
            .find('\n')
            .map_or(source.len(), |i| start + i);
        let line = source[..start].matches('\n').count() + 1;
        let column = source[line_start..start].chars().count() + 1;
        Location {
            file: file.to_owned(),
            line,
            column,
            span: start..end,
            source_line: source[line_start..line_end]
                .trim_end_matches('\r')
                .to_owned(),
            source: Arc::clone(source),
        }
    }

    /// The text the span covers.
    pub fn excerpt(&self) -> &str {
        &self.source[self.span.clone()]
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl Diagnostic {
    /// A diagnostic without a place (a missing file, an unreadable directory).
    pub fn bare(message: impl Into<String>) -> Self {
        Diagnostic {
            message: message.into(),
            location: None,
            help: None,
        }
    }

    /// A diagnostic at a span of a file.
    pub fn at(message: impl Into<String>, location: Location) -> Self {
        Diagnostic {
            message: message.into(),
            location: Some(Box::new(location)),
            help: None,
        }
    }

    /// Adds a help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Renders like a compiler: message, location, the line with the span
    /// underlined, the help line. Plain text, stable (golden-tested).
    pub fn render(&self) -> String {
        let mut out = format!("error: {self}\n");
        if let Some(loc) = &self.location {
            let gutter = loc.line.to_string().len();
            let pad = " ".repeat(gutter);
            out.push_str(&format!(
                "{pad}--> {}:{}:{}\n",
                loc.file, loc.line, loc.column
            ));
            out.push_str(&format!("{pad} |\n"));
            // Long lines (a 600-byte pattern) are cut so the snippet stays
            // readable; the underline is cut with them.
            const WIDTH: usize = 100;
            let line: String = loc.source_line.chars().take(WIDTH).collect();
            let cut = if loc.source_line.chars().count() > WIDTH {
                " ..."
            } else {
                ""
            };
            out.push_str(&format!("{} | {line}{cut}\n", loc.line));
            let first_line_len = loc
                .excerpt()
                .lines()
                .next()
                .map_or(0, |l| l.chars().count());
            let room = WIDTH.saturating_sub(loc.column - 1).max(1);
            out.push_str(&format!(
                "{pad} | {}{}\n",
                " ".repeat(loc.column - 1),
                "^".repeat(first_line_len.clamp(1, room))
            ));
        }
        if let Some(help) = &self.help {
            let pad = self
                .location
                .as_ref()
                .map_or(String::new(), |l| " ".repeat(l.line.to_string().len()));
            out.push_str(&format!("{pad} = help: {help}\n"));
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(loc) = &self.location {
            write!(f, " ({}:{}:{})", loc.file, loc.line, loc.column)?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

// miette integration, so that callers who render with miette get the
// underlined source for free.
impl miette::Diagnostic for Diagnostic {
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.location
            .as_ref()
            .map(|l| l.source.as_ref() as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        let loc = self.location.as_ref()?;
        let span = miette::LabeledSpan::new_with_span(None, loc.span.clone());
        Some(Box::new(std::iter::once(span)))
    }
}

/// Every problem found while loading a policy set; loading reports all of
/// them at once rather than stopping at the first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", summary(.0))]
pub struct Diagnostics(pub Vec<Diagnostic>);

fn summary(all: &[Diagnostic]) -> String {
    match all {
        [] => "the policy set did not load".to_owned(),
        [one] => one.to_string(),
        [first, rest @ ..] => format!("{first} (and {} more)", rest.len()),
    }
}

impl Diagnostics {
    /// Renders every diagnostic, separated by blank lines.
    pub fn render(&self) -> String {
        self.0
            .iter()
            .map(Diagnostic::render)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_location_counts_lines_and_character_columns() {
        let src = Arc::new("a = 1\n名 = \"sms2\"\n".to_owned());
        let start = src.find("\"sms2").unwrap_or(0);
        let loc = Location::new("p.toml", &src, start..start + 6);
        assert_eq!((loc.line, loc.column), (2, 5));
        assert_eq!(loc.excerpt(), "\"sms2\"");
    }

    #[test]
    fn display_appends_the_location_in_parentheses() {
        let src = Arc::new("x\n".to_owned());
        let d = Diagnostic::at(
            "unknown channel `sms2`",
            Location::new("c.toml", &src, 0..1),
        );
        assert_eq!(d.to_string(), "unknown channel `sms2` (c.toml:1:1)");
    }
}
