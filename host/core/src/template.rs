//! Personalization of approved content: `{{field}}` placeholders.
//!
//! An approved text may contain placeholders for the personalization fields
//! its version declares (`{{salutation}} {{name}},`). Nothing else in the
//! text may change between approval and sending: the gate renders the text
//! itself from the approved version and the values, and compares what is
//! about to be sent with that rendering byte for byte.
//!
//! The fields are a closed set. Three come from the HCP's profile and are
//! filled by the host, never by a caller (`name`, `specialty`,
//! `institution`); four come with the dispatch (`salutation`, `rep-name`,
//! `event-date`, `unsubscribe-url`) and are checked for shape. Contact
//! details cannot be placeholders: there is no name for them.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A field an approved text may be personalized with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PersonalField {
    /// "Dr.", "Prof.", "尊敬的": from the dispatch.
    Salutation,
    /// The HCP's name, from the profile.
    Name,
    /// The HCP's specialty label, from the profile.
    Specialty,
    /// The HCP's institution, from the profile.
    Institution,
    /// The assigned rep's name, from the dispatch.
    RepName,
    /// The date of the event the message is about, from the dispatch.
    EventDate,
    /// The recipient's unsubscribe link (an `https` URL), from the dispatch.
    UnsubscribeUrl,
}

impl PersonalField {
    /// Every field, in a stable order.
    pub const ALL: [PersonalField; 7] = [
        PersonalField::Salutation,
        PersonalField::Name,
        PersonalField::Specialty,
        PersonalField::Institution,
        PersonalField::RepName,
        PersonalField::EventDate,
        PersonalField::UnsubscribeUrl,
    ];

    /// The name used in placeholders and files.
    pub fn as_str(self) -> &'static str {
        match self {
            PersonalField::Salutation => "salutation",
            PersonalField::Name => "name",
            PersonalField::Specialty => "specialty",
            PersonalField::Institution => "institution",
            PersonalField::RepName => "rep-name",
            PersonalField::EventDate => "event-date",
            PersonalField::UnsubscribeUrl => "unsubscribe-url",
        }
    }

    /// Whether the host fills it from the HCP's profile (a caller cannot
    /// supply it).
    pub fn from_profile(self) -> bool {
        matches!(
            self,
            PersonalField::Name | PersonalField::Specialty | PersonalField::Institution
        )
    }

    /// Checks a value's shape: one line, bounded, no markup; URLs are
    /// `https`; dates are `YYYY-MM-DD`.
    ///
    /// # Errors
    ///
    /// What is wrong with the value (never the value itself: it may be
    /// anything a caller sent).
    pub fn check_value(self, value: &str) -> Result<(), String> {
        const MAX: usize = 200;
        if value.len() > MAX {
            return Err(format!("is {} bytes long (at most {MAX})", value.len()));
        }
        if value.chars().any(|c| c.is_control()) {
            return Err("contains a line break or control character".into());
        }
        if value.contains(['<', '>', '{', '}']) {
            return Err("contains `<`, `>`, `{` or `}`".into());
        }
        match self {
            PersonalField::UnsubscribeUrl => {
                if !value.starts_with("https://") || value.contains(char::is_whitespace) {
                    return Err("is not an https URL".into());
                }
            }
            PersonalField::EventDate => {
                let b = value.as_bytes();
                let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
                if b.len() != 10 || b[4] != b'-' || b[7] != b'-' || !digits(0..4) {
                    return Err("is not a date like 2026-05-14".into());
                }
                if !digits(5..7) || !digits(8..10) {
                    return Err("is not a date like 2026-05-14".into());
                }
            }
            _ => {
                if value.trim().is_empty() {
                    return Err("is empty".into());
                }
            }
        }
        Ok(())
    }
}

impl fmt::Display for PersonalField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A personalization field name omnigate does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown personalization field `{0}` (expected one of: {list})", list = PersonalField::ALL.map(PersonalField::as_str).join(", "))]
pub struct UnknownPersonalField(pub String);

impl FromStr for PersonalField {
    type Err = UnknownPersonalField;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PersonalField::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| UnknownPersonalField(s.to_owned()))
    }
}

/// The values to fill in.
pub type Values = BTreeMap<PersonalField, String>;

/// What is wrong with a template or a rendering.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{{` without `}}`.
    #[error("placeholder opened at byte {at} is never closed with `}}}}`")]
    Unclosed {
        /// Byte offset of the `{{`.
        at: usize,
    },
    /// A placeholder names no known field.
    #[error("{source} at byte {at}")]
    Unknown {
        /// Byte offset of the `{{`.
        at: usize,
        /// The name.
        source: UnknownPersonalField,
    },
    /// A value for a placeholder is missing.
    #[error("no value for personalization field `{0}`")]
    Missing(PersonalField),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Field(PersonalField),
}

/// A parsed text: literal runs and placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    segments: Vec<Segment>,
}

/// How values are written into the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// As they are (plain text, SMS).
    None,
    /// HTML-escaped (`<`, `>`, `&`, quotes), for HTML parts.
    Html,
}

impl Template {
    /// Parses `{{field}}` placeholders (spaces inside the braces allowed).
    ///
    /// # Errors
    ///
    /// An unclosed placeholder or an unknown field name, with its offset.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut segments = Vec::new();
        let mut rest = text;
        let mut offset = 0;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                segments.push(Segment::Literal(rest[..open].to_owned()));
            }
            let at = offset + open;
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or(TemplateError::Unclosed { at })?;
            let name = after[..close].trim();
            let field = name
                .parse::<PersonalField>()
                .map_err(|source| TemplateError::Unknown { at, source })?;
            segments.push(Segment::Field(field));
            let consumed = open + 2 + close + 2;
            rest = &rest[consumed..];
            offset += consumed;
        }
        if !rest.is_empty() {
            segments.push(Segment::Literal(rest.to_owned()));
        }
        Ok(Template { segments })
    }

    /// The fields the text uses, in order of first use.
    pub fn fields(&self) -> Vec<PersonalField> {
        let mut out: Vec<PersonalField> = Vec::new();
        for s in &self.segments {
            if let Segment::Field(f) = s
                && !out.contains(f)
            {
                out.push(*f);
            }
        }
        out
    }

    /// Fills the placeholders.
    ///
    /// # Errors
    ///
    /// [`TemplateError::Missing`] if a used field has no value.
    pub fn render(&self, values: &Values, escape: Escape) -> Result<String, TemplateError> {
        let mut out = String::new();
        for s in &self.segments {
            match s {
                Segment::Literal(l) => out.push_str(l),
                Segment::Field(f) => {
                    let v = values.get(f).ok_or(TemplateError::Missing(*f))?;
                    match escape {
                        Escape::None => out.push_str(v),
                        Escape::Html => {
                            out.push_str(&html_escape::encode_quoted_attribute(v));
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Where two texts first differ: the byte offset (on a character boundary
/// of both) and short excerpts of each from there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// Byte offset of the first difference.
    pub at: usize,
    /// The expected text from there (at most 40 characters).
    pub expected: String,
    /// The actual text from there (at most 40 characters).
    pub actual: String,
}

/// Compares two texts; `None` if they are equal byte for byte.
pub fn first_difference(expected: &str, actual: &str) -> Option<Difference> {
    if expected == actual {
        return None;
    }
    let mut at = 0;
    for ((i, a), b) in expected.char_indices().zip(actual.chars()) {
        if a != b {
            at = i;
            break;
        }
        at = i + a.len_utf8();
    }
    let excerpt = |s: &str| {
        s.get(at..)
            .unwrap_or("")
            .chars()
            .take(40)
            .collect::<String>()
    };
    Some(Difference {
        at,
        expected: excerpt(expected),
        actual: excerpt(actual),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Values {
        Values::from([
            (PersonalField::Salutation, "Dr.".to_owned()),
            (PersonalField::Name, "Ada <Li>".to_owned()),
        ])
    }

    #[test]
    fn renders_placeholders_and_escapes_html_values() {
        let t = Template::parse("Dear {{salutation}} {{ name }}, hello").unwrap();
        assert_eq!(
            t.fields(),
            vec![PersonalField::Salutation, PersonalField::Name]
        );
        assert_eq!(
            t.render(&values(), Escape::None).unwrap(),
            "Dear Dr. Ada <Li>, hello"
        );
        assert_eq!(
            t.render(&values(), Escape::Html).unwrap(),
            "Dear Dr. Ada &lt;Li&gt;, hello"
        );
    }

    #[test]
    fn refuses_unknown_fields_unclosed_braces_and_missing_values() {
        assert!(matches!(
            Template::parse("Hi {{email}}"),
            Err(TemplateError::Unknown { at: 3, .. })
        ));
        assert_eq!(
            Template::parse("Hi {{name"),
            Err(TemplateError::Unclosed { at: 3 })
        );
        let t = Template::parse("{{rep-name}}").unwrap();
        assert_eq!(
            t.render(&values(), Escape::None),
            Err(TemplateError::Missing(PersonalField::RepName))
        );
    }

    #[test]
    fn checks_value_shapes() {
        assert!(
            PersonalField::UnsubscribeUrl
                .check_value("https://x.example/u/1")
                .is_ok()
        );
        assert!(
            PersonalField::UnsubscribeUrl
                .check_value("javascript:alert(1)")
                .is_err()
        );
        assert!(PersonalField::EventDate.check_value("2026-05-14").is_ok());
        assert!(PersonalField::EventDate.check_value("tomorrow").is_err());
        assert!(
            PersonalField::Salutation
                .check_value("Dr.\nCures all")
                .is_err()
        );
        assert!(PersonalField::RepName.check_value("<b>x</b>").is_err());
        assert!(PersonalField::Name.check_value(&"x".repeat(201)).is_err());
    }

    #[test]
    fn finds_the_first_difference() {
        assert_eq!(first_difference("abc", "abc"), None);
        let d = first_difference("Dear Dr. Li, see", "Dear Dr. Li, cures").unwrap();
        assert_eq!(d.at, 13);
        assert_eq!(d.actual, "cures");
        let d = first_difference("治疗", "治愈").unwrap();
        assert_eq!(d.at, 3);
        assert_eq!(first_difference("ab", "abc").unwrap().at, 2);
    }
}
