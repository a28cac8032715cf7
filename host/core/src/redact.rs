//! Removal of contact details from text bound for logs and error messages.
//!
//! INVARIANT: HCP contact details never appear in logs, decision records or
//! error messages. Text that may carry them (a plugin's panic message, an
//! upstream provider's error body) passes through [`redact`] first.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

#[expect(
    clippy::expect_used,
    reason = "constant patterns, checked by the tests below"
)]
static PATTERNS: LazyLock<[(Regex, &'static str); 2]> = LazyLock::new(|| {
    [
        // An e-mail address, also URL-encoded (`%40`).
        (
            Regex::new(r"(?i)[a-z0-9._%+\-]+(?:@|%40)[a-z0-9\-]+(?:\.[a-z0-9\-]+)+")
                .expect("valid e-mail pattern"),
            "<email>",
        ),
        // A phone number: 7 or more digits, optionally with a leading + and
        // spaces, dots, dashes or parentheses between them.
        (
            Regex::new(r"\+?\(?\d(?:[\s.\-()]*\d){6,}").expect("valid phone pattern"),
            "<phone>",
        ),
    ]
});

/// Replaces e-mail addresses and phone numbers in `text` by `<email>` and
/// `<phone>`.
pub fn redact(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    for (pattern, replacement) in PATTERNS.iter() {
        if pattern.is_match(&out) {
            out = Cow::Owned(pattern.replace_all(&out, *replacement).into_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn removes_email_addresses_plain_and_url_encoded() {
        assert_eq!(
            redact("bounce for dr.jane.doe+x@clinic.example.org today"),
            "bounce for <email> today"
        );
        assert_eq!(redact("to=jane%40clinic.example"), "to=<email>");
    }

    #[test]
    fn removes_phone_numbers_in_common_notations() {
        assert_eq!(redact("call +1 (555) 010-2030 now"), "call <phone> now");
        assert_eq!(redact("手机 13800138000"), "手机 <phone>");
    }

    #[test]
    fn leaves_ordinary_text_alone() {
        let text = "deliver failed after 3 attempts: status 503 in 1200 ms";
        assert!(matches!(redact(text), std::borrow::Cow::Borrowed(_)));
    }
}
