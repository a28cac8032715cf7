//! Golden tests for invalid-policy diagnostics: each breaks one thing in a
//! copy of the shipped policy set and snapshots what a compliance officer
//! sees (message with file:line:column, the line, the underline, the help).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use omnigate_policy::load_dir;

fn policies() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

/// Copies the shipped set, applies `(file, from, to)` edits (each `from`
/// must occur), loads it and renders the diagnostics with the temporary
/// directory shown as `policies`.
fn diagnostics(edits: &[(&str, &str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(policies()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    for (file, from, to) in edits {
        let path = dir.path().join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "`{from}` not in {file}");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    }
    render(dir.path())
}

fn render(dir: &Path) -> String {
    let err = load_dir(dir).expect_err("the broken policy set loaded");
    err.render().replace(&dir.display().to_string(), "policies")
}

#[test]
fn an_unknown_channel_names_the_rule_the_file_line_and_column() {
    insta::assert_snapshot!(diagnostics(&[(
        "consent.toml",
        "channels = [\"email\"]\npurposes",
        "channels = [\"sms2\"]\npurposes",
    )]));
}

#[test]
fn an_unknown_key_is_an_error() {
    insta::assert_snapshot!(diagnostics(&[(
        "claims.toml",
        "id = \"absolute-cure\"\n",
        "id = \"absolute-cure\"\nseverty = \"block\"\n",
    )]));
}

#[test]
fn an_invalid_regular_expression_points_at_the_pattern() {
    insta::assert_snapshot!(diagnostics(&[(
        "claims.toml",
        r"'\bsuperior to\b',",
        r"'\bsuperior to(\b',",
    )]));
}

#[test]
fn a_pattern_compiling_over_the_size_limit_is_a_load_error() {
    insta::assert_snapshot!(diagnostics(&[(
        "claims.toml",
        r"'\bsuperior to\b',",
        r"'\w{2000}',",
    )]));
}

#[test]
fn a_pattern_longer_than_the_byte_limit_is_a_load_error() {
    let long = format!("'{}',", "a".repeat(600));
    insta::assert_snapshot!(diagnostics(&[(
        "claims.toml",
        r"'\bsuperior to\b',",
        &long
    )]));
}

#[test]
fn a_duplicate_rule_id_points_at_both_definitions() {
    insta::assert_snapshot!(diagnostics(&[(
        "claims.toml",
        "id = \"absolute-guarantee\"",
        "id = \"absolute-cure\"",
    )]));
}

#[test]
fn unknown_markets_indications_and_label_facts_are_reported_together() {
    insta::assert_snapshot!(diagnostics(&[
        (
            "products.toml",
            "markets = [\"US\", \"EU\", \"UK\"]",
            "markets = [\"US\", \"EU\", \"UK\", \"JP\"]"
        ),
        (
            "products.toml",
            "indications = [\"type-2-diabetes\"]",
            "indications = [\"type-3-diabetes\"]"
        ),
        (
            "claims.toml",
            "label_fact = \"rapid-onset\"",
            "label_fact = \"rapid-onst\""
        ),
    ]));
}

#[test]
fn an_invalid_duration_and_time_in_caps_say_how_to_write_them() {
    insta::assert_snapshot!(diagnostics(&[
        ("caps.toml", "window = \"7d\"", "window = \"7 days\""),
        ("caps.toml", "start = \"20:00\"", "start = \"8pm\""),
    ]));
}

#[test]
fn a_contact_detail_cannot_be_a_personalization_field() {
    insta::assert_snapshot!(diagnostics(&[(
        "channels.toml",
        "personalization = [\"salutation\", \"name\", \"specialty\", \"institution\"",
        "personalization = [\"name\", \"email\", \"favourite-color\"",
    )]));
}

#[test]
fn an_unknown_severity_lists_the_choices() {
    insta::assert_snapshot!(diagnostics(&[(
        "markets.toml",
        "severity = \"block\"",
        "severity = \"blocker\""
    )]));
}

#[test]
fn a_toml_syntax_error_has_a_location() {
    insta::assert_snapshot!(diagnostics(&[(
        "markets.toml",
        "name = \"United States\"",
        "name = \"United States"
    )]));
}

#[test]
fn a_missing_file_and_a_stray_file_are_both_reported() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(policies()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() && !path.ends_with("caps.toml") {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::write(dir.path().join("claim.toml"), "").unwrap();
    insta::assert_snapshot!(render(dir.path()));
}

#[test]
fn an_unknown_or_missing_review_role_is_named_with_the_choices() {
    insta::assert_snapshot!(diagnostics(&[
        (
            "markets.toml",
            "default_review_roles = [\"medical\", \"legal\", \"regulatory\"]",
            "default_review_roles = [\"medical\", \"marketing\"]",
        ),
        (
            "markets.toml",
            "name = \"United States\"",
            "name = \"United States\"\nreview_roles = []",
        ),
    ]));
}
