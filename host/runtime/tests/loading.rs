//! Loading, refusing, caching, replacing and unloading real components.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{email, hostile, manifest_with, packaged, runtime};
use omnigate_runtime::{LoadError, Runtime, RuntimeConfig};
use toml_edit::value;

#[test]
fn the_bundled_plugins_load_and_describe_themselves() {
    let rt = runtime();
    let loaded = rt
        .registry()
        .load_dir(packaged("email-adapter").parent().unwrap())
        .unwrap();
    let names: Vec<_> = loaded.iter().map(|p| p.manifest().name.clone()).collect();
    assert_eq!(names, ["email-adapter", "stage-scorer"]);
    let email = rt.registry().get("email-adapter").unwrap();
    assert_eq!(email.info().channels.len(), 1);
    assert!(email.shape().uses_http());
    let scorer = rt.registry().get("stage-scorer").unwrap();
    assert!(
        !scorer.shape().uses_http(),
        "a scoring model must not import wasi:http"
    );
}

#[test]
fn a_component_whose_sha256_differs_from_the_manifest_is_refused_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let wrong = "0".repeat(64);
    let path = manifest_with(dir.path(), "stage-scorer", "scorer.toml", |doc| {
        doc["component"]["sha256"] = value(wrong.as_str());
    });
    let err = runtime().load(&path).unwrap_err();
    let LoadError::HashMismatch {
        expected, actual, ..
    } = &err
    else {
        panic!("expected a hash mismatch, got {err}");
    };
    assert_eq!(expected, &wrong);
    let text = err.to_string();
    assert!(
        text.contains(&wrong) && text.contains(actual.as_str()),
        "{text}"
    );
    assert!(text.contains("refusing to load"), "{text}");
}

/// A manifest in `dir` pointing at `bytes`, with the right hash.
fn manifest_for_bytes(dir: &std::path::Path, kind: &str, bytes: &[u8]) -> std::path::PathBuf {
    use sha2::Digest;
    std::fs::write(dir.join("thing.wasm"), bytes).unwrap();
    let sha = hex::encode(sha2::Sha256::digest(bytes));
    let text = format!(
        "[plugin]\nname = \"thing\"\nversion = \"0.1.0\"\nkind = \"{kind}\"\nwit = \"omnigate:plugin@0.1.0\"\n\n\
         [component]\npath = \"thing.wasm\"\nsha256 = \"{sha}\"\n"
    );
    let path = dir.join("thing.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn garbage_core_modules_and_components_of_the_wrong_world_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();

    let garbage = manifest_for_bytes(dir.path(), "channel-adapter", b"#!/bin/sh\necho hi\n");
    let err = rt.load(&garbage).unwrap_err().to_string();
    assert!(err.contains("is not a WebAssembly file"), "{err}");

    let core = wat::parse_str("(module (func (export \"deliver\")))").unwrap();
    let err = rt
        .load(&manifest_for_bytes(dir.path(), "channel-adapter", &core))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("is a core WebAssembly module, not a component"),
        "{err}"
    );

    let empty_component = wat::parse_str("(component)").unwrap();
    let err = rt
        .load(&manifest_for_bytes(
            dir.path(),
            "scoring-model",
            &empty_component,
        ))
        .unwrap_err()
        .to_string();
    assert!(err.contains("is not a scoring-model plugin"), "{err}");
    assert!(
        err.contains("does not export `omnigate:plugin/scoring@0.1.0`"),
        "{err}"
    );

    // The scoring model, loaded as a channel adapter.
    let scorer_as_adapter = manifest_with(dir.path(), "stage-scorer", "wrong.toml", |doc| {
        doc["plugin"]["kind"] = value("channel-adapter");
    });
    let err = rt.load(&scorer_as_adapter).unwrap_err().to_string();
    assert!(err.contains("it is a scoring-model plugin"), "{err}");

    // A truncated component.
    let wasm = std::fs::read(packaged("stage-scorer").with_extension("wasm")).unwrap();
    let err = rt
        .load(&manifest_for_bytes(
            dir.path(),
            "scoring-model",
            &wasm[..wasm.len() / 2],
        ))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("cannot load"), "{err}");
}

#[test]
fn a_plugin_that_names_itself_differently_from_its_manifest_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = manifest_with(dir.path(), "stage-scorer", "renamed.toml", |doc| {
        doc["plugin"]["name"] = value("other-scorer");
    });
    let err = runtime().load(&path).unwrap_err().to_string();
    assert!(
        err.contains("it calls itself `stage-scorer` 0.1.0 but its manifest says `other-scorer`"),
        "{err}"
    );
}

#[test]
fn a_restart_loads_compiled_components_from_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let config = RuntimeConfig {
        cache_dir: Some(cache.path().to_owned()),
        ..RuntimeConfig::default()
    };
    let first = Runtime::new(config.clone()).unwrap();
    let plugin = first.load(&packaged("stage-scorer")).unwrap();
    assert!(!plugin.from_cache());
    let entries = std::fs::read_dir(cache.path()).unwrap().count();
    assert_eq!(entries, 1);

    let second = Runtime::new(config).unwrap();
    let plugin = second.load(&packaged("stage-scorer")).unwrap();
    assert!(plugin.from_cache(), "the second runtime must not recompile");

    // A damaged entry is recompiled, not trusted.
    let entry = std::fs::read_dir(cache.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&entry, b"damaged").unwrap();
    let third = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.path().to_owned()),
        ..RuntimeConfig::default()
    })
    .unwrap();
    assert!(!third.load(&packaged("stage-scorer")).unwrap().from_cache());
}

#[test]
fn replacing_a_plugin_while_a_call_runs_lets_that_call_finish() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let slow = manifest_with(dir.path(), "hostile", "slow.toml", |doc| {
        doc["config"]["mode"] = value("slow");
        doc["config"]["delay_ms"] = value("300");
    });
    rt.registry().load(&slow).unwrap();
    let in_flight = {
        let plugin = rt.registry().get("hostile").unwrap();
        std::thread::spawn(move || plugin.deliver(vec![email("d-slow", "1")]))
    };
    std::thread::sleep(Duration::from_millis(50));
    // Replace it by the good mode, under the same name.
    let replaced = rt.registry().load(&hostile(dir.path(), "good")).unwrap();
    assert!(replaced.is_some());
    let now = rt.registry().get("hostile").unwrap();
    assert_eq!(
        now.deliver(vec![email("d-new", "1")]).unwrap()[0]
            .as_ref()
            .unwrap()
            .provider_message_id,
        "ok:d-new"
    );
    let old = in_flight.join().unwrap().unwrap();
    assert_eq!(old[0].as_ref().unwrap().provider_message_id, "slow:d-slow");

    // Unloading works the same way: held references keep working.
    let held = rt.registry().get("hostile").unwrap();
    assert!(rt.registry().unload("hostile").is_some());
    assert!(rt.registry().get("hostile").is_none());
    assert!(held.deliver(vec![email("d-held", "1")]).is_ok());
}

#[test]
fn a_failed_reload_keeps_the_running_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    rt.registry().load(&hostile(dir.path(), "good")).unwrap();
    let broken = manifest_with(dir.path(), "hostile", "broken.toml", |doc| {
        doc["component"]["sha256"] = value("f".repeat(64));
    });
    assert!(rt.registry().load(&broken).is_err());
    let plugin: Arc<_> = rt.registry().get("hostile").unwrap();
    assert!(plugin.deliver(vec![email("d-1", "1")]).is_ok());
}

#[test]
fn a_folder_with_two_plugins_of_one_name_loads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    hostile(dir.path(), "good");
    hostile(dir.path(), "slow");
    let err = rt.registry().load_dir(dir.path()).unwrap_err().to_string();
    assert!(err.contains("plugin `hostile` is defined twice"), "{err}");
    assert!(rt.registry().list().is_empty());
}
