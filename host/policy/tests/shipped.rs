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
