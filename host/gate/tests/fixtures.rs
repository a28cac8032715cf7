//! The shipped dispatch fixtures (`policies/tests/dispatch/`) pass on a
//! real SQLite store, and a broken fixture fails with its reason.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::path::Path;
use std::sync::Arc;

use omnigate_core::Store;
use omnigate_gate::fixtures::run_dispatch_cases;
use omnigate_policy::{PolicyHandle, load_dir};
use omnigate_store::{SqliteStore, StoreOptions};

fn policies() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

fn sqlite(dir: &Path) -> Result<Arc<dyn Store>, String> {
    let store = SqliteStore::open(StoreOptions::new(dir)).map_err(|e| e.to_string())?;
    Ok(Arc::new(store))
}

#[test]
fn the_shipped_dispatch_fixtures_pass() {
    let policy = Arc::new(PolicyHandle::new(load_dir(&policies()).unwrap()));
    let cases = run_dispatch_cases(&policy, &policies().join("tests/dispatch"), &sqlite).unwrap();
    assert!(cases.len() >= 20, "{}", cases.len());
    let failed: Vec<String> = cases
        .iter()
        .filter(|c| !c.passed)
        .map(|c| {
            format!(
                "{} / {}: expected {:?} {:?}, got {:?} {:?} {:?}",
                c.file, c.name, c.expected, c.expected_rules, c.actual, c.actual_rules, c.error
            )
        })
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
    // Every consent and cap rule of the shipped policy is exercised.
    let set = policy.current().unwrap();
    let covered: Vec<&str> = cases
        .iter()
        .flat_map(|c| c.expected_rules.iter().map(String::as_str))
        .collect();
    for id in set
        .set()
        .consent
        .iter()
        .map(|r| &r.meta.id)
        .chain(set.set().caps.iter().map(|c| &c.meta.id))
    {
        assert!(
            covered.contains(&id.as_str()),
            "no dispatch case exercises `{id}`"
        );
    }
}

#[test]
fn a_fixture_that_expects_the_wrong_thing_fails_with_the_actual_rules() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wrong.toml"),
        r#"
[defaults]
market = "US"
channel = "email"
product = "cardiozen"
time_zone = "America/New_York"
at = "2026-11-24T15:00:00-05:00"
text = "Cardiozen cures hypertension. Important Safety Information. Please see full Prescribing Information. Unsubscribe."

[[case]]
name = "wrongly expected to pass"
consent = [{ channel = "email", status = "opt-in", at = "2026-10-01T12:00:00Z" }]
expect = "allow"

[[case]]
name = "a bad time"
at = "tomorrow"
expect = "block"
"#,
    )
    .unwrap();
    let policy = Arc::new(PolicyHandle::new(load_dir(&policies()).unwrap()));
    let cases = run_dispatch_cases(&policy, dir.path(), &sqlite).unwrap();
    assert!(!cases[0].passed);
    assert!(cases[0].actual_rules.contains(&"absolute-cure".to_owned()));
    assert!(!cases[1].passed);
    assert!(cases[1].error.as_deref().unwrap().contains("tomorrow"));
    std::fs::write(dir.path().join("broken.toml"), "[[case]]\nname = 1\n").unwrap();
    let err = run_dispatch_cases(&policy, dir.path(), &sqlite).unwrap_err();
    assert!(err.contains("broken.toml"), "{err}");
}
