//! The policy-test runner itself: failures, coverage and the false-block
//! rate are reported, not hidden.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use omnigate_policy::{load_dir, run_tests};

fn policies() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

#[test]
fn a_wrong_expectation_fails_and_uncovered_rules_and_false_blocks_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("one.toml"),
        r#"
[defaults]
market = "US"
channel = "email"

[[case]]
name = "compliant but blocked for want of an unsubscribe line"
text = "Hello doctor."
expect = "allow"

[[case]]
name = "right verdict, wrong rule"
text = "It cures. Unsubscribe here."
expect = "block"
rules = ["absolute-guarantee"]

[[case]]
name = "right on both counts"
text = "It cures. Unsubscribe here."
expect = "block"
rules = ["absolute-cure"]
"#,
    )
    .unwrap();
    let policy = load_dir(&policies()).unwrap();
    let report = run_tests(&policy, dir.path()).unwrap();
    assert!(!report.passed());
    let failed: Vec<&str> = report.failures().map(|c| c.name.as_str()).collect();
    assert_eq!(
        failed,
        [
            "compliant but blocked for want of an unsubscribe line",
            "right verdict, wrong rule"
        ]
    );
    assert_eq!((report.false_blocks, report.compliant), (1, 1));
    assert!((report.false_block_rate() - 1.0).abs() < f64::EPSILON);
    assert!(!report.uncovered.contains(&"absolute-cure".to_owned()));
    assert!(report.uncovered.contains(&"absolute-guarantee".to_owned()));
    let text = report.render();
    assert!(text.contains("1 passed, 2 failed"), "{text}");
    assert!(
        text.contains("false-block rate: 1/1 compliant cases blocked (100.0%)"),
        "{text}"
    );
}

#[test]
fn a_case_file_with_an_unknown_key_is_an_error_with_a_location() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        "[[case]]\nname = \"x\"\ntext = \"y\"\nexpect = \"allow\"\nrule = [\"a\"]\n",
    )
    .unwrap();
    let policy = load_dir(&policies()).unwrap();
    let err = run_tests(&policy, dir.path()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("unknown field `rule`"), "{msg}");
    assert!(msg.ends_with("bad.toml:5:1)"), "{msg}");
}
