//! Screening behaviour that case files cannot express: spans into the
//! original text, failing closed, reload semantics, versions.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use omnigate_core::Channel;
use omnigate_policy::{
    Audience, Context, FindingKind, Message, PolicyHandle, Severity, Verdict, load_dir,
};

fn policies() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

fn us_email() -> Context {
    Context::new("US", Channel::Email, Audience::Hcp)
}

fn copy_policies(to: &Path) {
    for entry in std::fs::read_dir(policies()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
}

#[test]
fn spans_point_into_the_original_text_after_normalization() {
    let policy = load_dir(&policies()).unwrap();
    let text = "Ｃａｒｄｉｏｚｅｎ ｃ\u{200B}ＵＲＥＳ it";
    let s = policy.screen(&Message::text(text), &us_email()).unwrap();
    let f = s
        .findings
        .iter()
        .find(|f| f.rule == "absolute-cure")
        .unwrap();
    assert_eq!(&text[f.start..f.end], "ｃ\u{200B}ＵＲＥＳ");
    assert_eq!(f.excerpt, "ｃ\u{200B}ＵＲＥＳ");
    assert_eq!(f.kind, FindingKind::Claim);
    assert_eq!(f.severity, Severity::Block);
}

#[test]
fn spans_in_html_cover_the_tags_that_split_a_word() {
    let policy = load_dir(&policies()).unwrap();
    let html = "<p>It c<b>ure</b>s.</p>";
    let s = policy.screen(&Message::html(html), &us_email()).unwrap();
    let f = s
        .findings
        .iter()
        .find(|f| f.rule == "absolute-cure")
        .unwrap();
    assert_eq!(f.excerpt, "c<b>ure</b>s");
}

#[test]
fn a_missing_required_element_points_at_the_end_of_the_message() {
    let policy = load_dir(&policies()).unwrap();
    let text = "Webinar on 14 May.";
    let s = policy.screen(&Message::text(text), &us_email()).unwrap();
    let f = s
        .findings
        .iter()
        .find(|f| f.rule == "us-email-unsubscribe")
        .unwrap();
    assert_eq!((f.start, f.end), (text.len(), text.len()));
    assert_eq!(f.kind, FindingKind::RequiredElement);
}

#[test]
fn an_input_over_the_size_limit_blocks_with_the_reason() {
    let policy = load_dir(&policies()).unwrap();
    let big = "harmless text. ".repeat(20_000);
    let s = policy.screen(&Message::text(big), &us_email()).unwrap();
    assert_eq!(s.verdict, Verdict::Block);
    assert_eq!(s.findings[0].kind, FindingKind::Error);
    assert!(
        s.findings[0].reason.contains("over the 262144 bytes"),
        "{}",
        s.findings[0].reason
    );
}

#[test]
fn an_unknown_product_is_a_usage_error_and_the_handle_blocks_on_it() {
    let policy = load_dir(&policies()).unwrap();
    let ctx = us_email().with_product("nosuchdrug");
    let err = policy.screen(&Message::text("hello"), &ctx).unwrap_err();
    assert!(
        err.to_string().starts_with("unknown product `nosuchdrug`"),
        "{err}"
    );
    let handle = PolicyHandle::new(policy);
    let s = handle.screen(&Message::text("hello"), &ctx);
    assert_eq!(s.verdict, Verdict::Block);
}

#[test]
fn a_handle_without_a_policy_blocks_everything() {
    let handle = PolicyHandle::empty();
    let s = handle.screen(
        &Message::text("Hello doctor, unsubscribe here."),
        &us_email(),
    );
    assert_eq!(s.verdict, Verdict::Block);
    assert_eq!(s.findings[0].rule, "no-policy");
}

/// Rewrites `from` to `to` in the copied `claims.toml`, as a compliance
/// officer editing the file would.
fn edit_claims(dir: &std::path::Path, from: &str, to: &str) {
    let claims = dir.join("claims.toml");
    let text = std::fs::read_to_string(&claims).unwrap();
    assert!(text.contains(from), "`{from}` is not in claims.toml");
    std::fs::write(&claims, text.replace(from, to)).unwrap();
}

#[test]
fn a_failed_reload_keeps_the_previous_policy_and_reports_why() {
    let dir = tempfile::tempdir().unwrap();
    copy_policies(dir.path());
    let handle = PolicyHandle::empty();
    let v1 = handle.reload(dir.path()).unwrap();
    edit_claims(dir.path(), "severity = \"block\"", "severity = \"blok\"");
    let err = handle.reload(dir.path()).unwrap_err();
    assert!(
        err.to_string().starts_with("unknown severity `blok`"),
        "{err}"
    );
    assert_eq!(handle.version().as_deref(), Some(v1.as_str()));
    let s = handle.screen(&Message::text("It cures. Unsubscribe here."), &us_email());
    assert_eq!(s.policy_version, v1);
    assert_eq!(s.verdict, Verdict::Block);
}

#[test]
fn a_good_reload_takes_effect_with_a_new_version() {
    let dir = tempfile::tempdir().unwrap();
    copy_policies(dir.path());
    let handle = PolicyHandle::empty();
    let v1 = handle.reload(dir.path()).unwrap();
    edit_claims(
        dir.path(),
        "\"harmless\",",
        "\"harmless\", \"gentle as water\",",
    );
    let v2 = handle.reload(dir.path()).unwrap();
    assert_ne!(v1, v2);
    let s = handle.screen(
        &Message::text("Gentle as water. Unsubscribe here."),
        &us_email(),
    );
    assert_eq!(s.rule_ids(), vec!["absolute-safety".to_owned()]);
    assert_eq!(s.policy_version, v2);
}

#[test]
fn the_version_is_the_same_for_the_same_files() {
    let a = load_dir(&policies()).unwrap();
    let b = load_dir(&policies()).unwrap();
    assert_eq!(a.version(), b.version());
    assert_eq!(a.version().len(), 64);
}

#[test]
fn a_pattern_over_the_size_limit_does_not_load_so_the_gate_blocks() {
    let dir = tempfile::tempdir().unwrap();
    copy_policies(dir.path());
    let claims = dir.path().join("claims.toml");
    let text = std::fs::read_to_string(&claims).unwrap();
    let text = text.replace(
        "patterns = ['\\d+(\\.\\d+)?\\s?%'",
        "patterns = ['\\w{2000}\\s?%'",
    );
    std::fs::write(&claims, text).unwrap();
    let handle = PolicyHandle::empty();
    let err = handle.reload(dir.path()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("pattern in rule `uncited-percentage` compiles to more than"),
        "{err}"
    );
    let s = handle.screen(&Message::text("Hello. Unsubscribe here."), &us_email());
    assert_eq!(s.verdict, Verdict::Block);
}

#[test]
fn terms_of_different_rules_starting_at_the_same_place_are_all_found() {
    let dir = tempfile::tempdir().unwrap();
    copy_policies(dir.path());
    let claims = dir.path().join("claims.toml");
    let mut text = std::fs::read_to_string(&claims).unwrap();
    text.push_str(
        "\n[[rule]]\nid = \"no-side\"\nkind = \"claim\"\nseverity = \"warn\"\nreason = \"test\"\nterms = [\"no side\"]\n\
         \n[[rule]]\nid = \"side-effects\"\nkind = \"claim\"\nseverity = \"warn\"\nreason = \"test\"\nterms = [\"side effects\"]\n",
    );
    std::fs::write(&claims, text).unwrap();
    let policy = load_dir(dir.path()).unwrap();
    let s = policy
        .screen(
            &Message::text("A tablet with no side effects. Unsubscribe here."),
            &us_email(),
        )
        .unwrap();
    let found: Vec<(&str, usize, usize)> = s
        .findings
        .iter()
        .map(|f| (f.rule.as_str(), f.start, f.end))
        .collect();
    assert_eq!(
        found,
        vec![
            ("absolute-safety", 14, 29),
            ("no-side", 14, 21),
            ("side-effects", 17, 29)
        ]
    );
}
