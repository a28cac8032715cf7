//! `omnigate serve` as a real process on a loopback port.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use std::time::Duration;

use omnigate_tests::{Server, copy_plugins, omnigate, packaged_plugins, repo, target_dir};

fn plugin_names(health: &serde_json::Value) -> Vec<String> {
    health["plugins"]
        .as_array()
        .map(|p| {
            p.iter()
                .filter_map(|x| x["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn serve_loads_plugins_and_policies_reloads_on_sighup_and_stops_on_sigterm() {
    let work = tempfile::tempdir().unwrap();
    let plugins = work.path().join("plugins");
    copy_plugins(&packaged_plugins(), &plugins);
    let data = work.path().join("data");
    let policies = repo().join("policies");
    let args = [
        "--data-dir",
        data.to_str().unwrap(),
        "--plugins",
        plugins.to_str().unwrap(),
        "--policies",
        policies.to_str().unwrap(),
    ];
    let mut server = Server::start(&args).unwrap();

    let health = server.get("/health");
    assert_eq!(health["status"], "ok");
    assert_eq!(plugin_names(&health), ["email-adapter", "stage-scorer"]);
    assert_eq!(
        health["policy_version"].as_str().map(str::len),
        Some(64),
        "{health}"
    );
    // The compile cache was written into the data directory.
    assert_eq!(std::fs::read_dir(data.join("cache")).unwrap().count(), 2);

    // A new plugin dropped into the folder is served after SIGHUP.
    copy_plugins(&target_dir().join("test-plugins"), &plugins);
    server.signal("HUP");
    assert!(
        server.wait_for("/health", Duration::from_secs(20), |h| plugin_names(h)
            .len()
            == 3),
        "the hostile test plugin was not loaded on SIGHUP"
    );

    // A broken plugin dropped in: the reload fails and the served set stays.
    std::fs::write(plugins.join("broken.toml"), "[plugin]\nname = \"broken\"\n").unwrap();
    server.signal("HUP");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(plugin_names(&server.get("/health")).len(), 3);

    server.signal("TERM");
    let status = server.child.wait().unwrap();
    assert!(status.success(), "graceful stop, got {status}");

    // The store it created verifies.
    let out = std::process::Command::new(omnigate())
        .args([
            "audit",
            "verify",
            "--format",
            "json",
            "--data-dir",
            data.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["broken"], serde_json::Value::Null, "{report}");
}

#[test]
fn audit_verify_without_a_store_says_so_with_exit_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(omnigate())
        .args([
            "audit",
            "verify",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no omnigate store in"), "{stderr}");
}

#[test]
fn serve_refuses_to_start_with_a_component_that_does_not_match_its_pin() {
    let work = tempfile::tempdir().unwrap();
    let plugins = work.path().join("plugins");
    copy_plugins(&packaged_plugins(), &plugins);
    let wasm = plugins.join("stage-scorer.wasm");
    let mut bytes = std::fs::read(&wasm).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&wasm, bytes).unwrap();
    let data = work.path().join("data");
    let err = Server::start(&[
        "--data-dir",
        data.to_str().unwrap(),
        "--plugins",
        plugins.to_str().unwrap(),
    ])
    .err()
    .expect("the host must refuse to start");
    assert!(err.contains("refusing to load"), "{err}");
    assert!(err.contains("stage-scorer.wasm"), "{err}");
}
