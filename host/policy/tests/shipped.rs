//! Runs the shipped policy tests in `policies/tests/` against the shipped
//! policy set: every case must pass, every content rule must be exercised,
//! and no compliant case may be blocked.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use omnigate_policy::{load_dir, run_tests};

fn policies() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

#[test]
fn the_shipped_policy_set_passes_its_own_tests_with_full_coverage() {
    let policy = load_dir(&policies()).unwrap_or_else(|d| panic!("{}", d.render()));
    let report =
        run_tests(&policy, &policies().join("tests")).unwrap_or_else(|d| panic!("{}", d.render()));
    eprintln!("{}", report.render());
    assert!(report.passed(), "failing cases:\n{}", report.render());
    assert!(
        report.uncovered.is_empty(),
        "rules without a case: {:?}",
        report.uncovered
    );
    assert_eq!(report.false_blocks, 0);
    assert!(
        report.compliant >= 30,
        "too few compliant cases: {}",
        report.compliant
    );
}

#[test]
fn review_roles_come_from_the_markets_file_per_market() {
    use omnigate_core::ReviewRole;
    let policy = load_dir(&policies()).unwrap_or_else(|d| panic!("{}", d.render()));
    let approval = &policy.set().approval;
    assert_eq!(
        approval.default_roles,
        ReviewRole::ALL.into_iter().collect()
    );
    // A market of its own: only the roles it lists.
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(policies()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    let markets = dir.path().join("markets.toml");
    let text = std::fs::read_to_string(&markets).unwrap().replacen(
        "name = \"United States\"",
        "name = \"United States\"\nreview_roles = [\"medical\", \"regulatory\"]",
        1,
    );
    std::fs::write(&markets, text).unwrap();
    let policy = load_dir(dir.path()).unwrap_or_else(|d| panic!("{}", d.render()));
    let approval = &policy.set().approval;
    let us = [String::from("US")];
    assert_eq!(
        approval.required_roles(&us),
        [ReviewRole::Medical, ReviewRole::Regulatory]
            .into_iter()
            .collect()
    );
    let both = [String::from("US"), String::from("CN")];
    assert_eq!(
        approval.required_roles(&both).len(),
        3,
        "the strictest market sets the bar"
    );
}
