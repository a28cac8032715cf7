//! The plugin commands of the real binary, and their JSON output.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use std::process::Command;

use omnigate_tests::{omnigate, packaged_plugins};

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(omnigate()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn plugins_inspect_reports_world_grants_and_hash_as_json() {
    let manifest = packaged_plugins().join("email-adapter.toml");
    let (code, stdout, stderr) = run(&[
        "plugins",
        "inspect",
        manifest.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["ok"], true);
    assert_eq!(json["world"], "channel-adapter");
    assert_eq!(json["manifest"]["name"], "email-adapter");
    assert_eq!(json["manifest"]["sha256"], json["sha256"]);
    assert_eq!(
        json["manifest"]["allowed_outbound_hosts"][0],
        "http://127.0.0.1:*"
    );
    let exports = json["component"]["exports"].as_array().unwrap();
    assert_eq!(exports[0], "omnigate:plugin/delivery@0.1.0");
}

#[test]
fn plugins_inspect_refuses_garbage_with_exit_status_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.wasm");
    std::fs::write(&path, b"not wasm").unwrap();
    let (code, stdout, _) = run(&["plugins", "inspect", path.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(stdout.contains("REFUSED: `"), "{stdout}");
    assert!(stdout.contains("is not a WebAssembly file"), "{stdout}");
}

#[test]
fn plugins_list_shows_each_bundled_plugin_as_loadable() {
    let dir = packaged_plugins();
    let (code, stdout, stderr) = run(&[
        "plugins",
        "list",
        "--plugins",
        dir.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let rows = json["plugins"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r["ok"] == true), "{stdout}");
}
