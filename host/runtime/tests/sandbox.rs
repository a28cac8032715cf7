//! Hostile plugins, built from `tests/plugins/hostile`, against the real
//! runtime: each misbehaviour ends in its typed error within its limit, and
//! a well-behaved plugin's next call succeeds.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod common;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{email, hostile, manifest_with, runtime};
use omnigate_runtime::types::PluginError;
use omnigate_runtime::{CallFailure, Plugin, Runtime};
use toml_edit::value;

/// The well-behaved plugin still works: the failure stayed in its call.
fn good_plugin_still_serves(rt: &Runtime, dir: &std::path::Path) {
    let good = rt.load(&hostile(dir, "good")).unwrap();
    let out = good.deliver(vec![email("d-after", "1111111111")]).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].as_ref().unwrap().provider_message_id, "ok:d-after");
}

fn failing_call(plugin: &Plugin) -> (CallFailure, Duration) {
    let start = Instant::now();
    let err = plugin
        .deliver(vec![email("d-1", "1234567890")])
        .expect_err("the hostile call must fail");
    assert_eq!(err.plugin, "hostile");
    assert_eq!(err.call, "deliver");
    (err.cause, start.elapsed())
}

#[test]
fn an_infinite_loop_is_interrupted_at_its_time_limit() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let path = manifest_with(dir.path(), "hostile", "loop.toml", |doc| {
        doc["config"]["mode"] = value("loop");
        doc["limits"]["time_ms"] = value(200);
    });
    let plugin = rt.load(&path).unwrap();
    let (cause, elapsed) = failing_call(&plugin);
    assert_eq!(
        cause,
        CallFailure::Timeout {
            limit: Duration::from_millis(200)
        }
    );
    assert!(
        elapsed >= Duration::from_millis(200),
        "stopped early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_millis(1_500),
        "stopped late: {elapsed:?}"
    );
    // The same plugin serves again, on a fresh instance.
    let (again, _) = failing_call(&plugin);
    assert!(matches!(again, CallFailure::Timeout { .. }));
    good_plugin_still_serves(&rt, dir.path());
}

#[test]
fn a_four_gib_allocation_hits_the_memory_limit() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let plugin = rt.load(&hostile(dir.path(), "alloc")).unwrap();
    let (cause, _) = failing_call(&plugin);
    assert_eq!(cause, CallFailure::MemoryLimit { limit_mib: 32 });
    good_plugin_still_serves(&rt, dir.path());
}

#[test]
fn unbounded_recursion_ends_in_a_trap() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let plugin = rt.load(&hostile(dir.path(), "recursion")).unwrap();
    let (cause, _) = failing_call(&plugin);
    // Rust keeps its frames on a shadow stack in linear memory: running
    // off it is an out-of-bounds access, or wasmtime's own stack overflow.
    match &cause {
        CallFailure::StackOverflow => {}
        CallFailure::Trap { message } => assert!(message.contains("out of bounds"), "{message}"),
        other => panic!("unexpected cause: {other:?}"),
    }
    good_plugin_still_serves(&rt, dir.path());
}

#[test]
fn a_panic_is_reported_with_its_message_and_without_contact_details() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    // Granted the address, so that it has one to leak.
    let path = manifest_with(dir.path(), "hostile", "panic.toml", |doc| {
        doc["config"]["mode"] = value("panic");
        let mut fields = toml_edit::Array::new();
        fields.push("email");
        doc["grants"]["hcp_fields"] = value(fields);
    });
    let plugin = rt.load(&path).unwrap();
    let err = plugin
        .deliver(vec![email("d-1", "1234567890")])
        .unwrap_err();
    let CallFailure::Panic { message } = &err.cause else {
        panic!("expected a panic, got {:?}", err.cause);
    };
    assert!(message.contains("cannot deliver to"), "{message}");
    // INVARIANT 7: the address the plugin put in its panic never reaches an
    // error message.
    let shown = err.to_string();
    assert!(!shown.contains("1234567890@clinic.example"), "{shown}");
    assert!(shown.contains("<email>"), "{shown}");
    good_plugin_still_serves(&rt, dir.path());
}

#[test]
fn an_http_call_to_a_host_not_in_the_manifest_is_denied_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    // A real listener the plugin tries to reach; the manifest allows only
    // another port.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let target = format!("http://{}/steal", listener.local_addr().unwrap());
    let path = manifest_with(dir.path(), "hostile", "egress.toml", |doc| {
        doc["config"]["mode"] = value("egress");
        doc["config"]["target"] = value(target.as_str());
        let mut hosts = toml_edit::Array::new();
        hosts.push("http://127.0.0.1:9");
        doc["grants"]["allowed_outbound_hosts"] = value(hosts);
    });
    let plugin = rt.load(&path).unwrap();
    let out = plugin.deliver(vec![email("d-1", "1234567890")]).unwrap();
    match &out[0] {
        Err(PluginError::AccessDenied(reason)) => assert!(reason.contains("denied"), "{reason}"),
        other => panic!("expected access denied, got {other:?}"),
    }
    assert!(
        listener.accept().is_err(),
        "the denied request must not open a connection"
    );
    good_plugin_still_serves(&rt, dir.path());
}

#[test]
fn a_plugin_cannot_read_files_or_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    for mode in ["file", "env"] {
        let plugin = rt.load(&hostile(dir.path(), mode)).unwrap();
        let out = plugin.deliver(vec![email("d-1", "1234567890")]).unwrap();
        match &out[0] {
            Err(PluginError::AccessDenied(_)) => {}
            other => panic!("mode `{mode}`: the sandbox let something through: {other:?}"),
        }
    }
    good_plugin_still_serves(&rt, dir.path());
}

#[test]
fn output_that_breaks_the_contract_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let plugin = rt.load(&hostile(dir.path(), "wrong-count")).unwrap();
    let err = plugin
        .deliver(vec![email("d-1", "1"), email("d-2", "2")])
        .unwrap_err();
    assert_eq!(
        err.cause,
        CallFailure::InvalidOutput {
            message: "1 results for 2 messages".into()
        }
    );
}

#[test]
fn concurrent_calls_on_one_plugin_are_isolated() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let good = Arc::new(rt.load(&hostile(dir.path(), "good")).unwrap());
    let looping = {
        let path = manifest_with(dir.path(), "hostile", "loop.toml", |doc| {
            doc["config"]["mode"] = value("loop");
            doc["limits"]["time_ms"] = value(300);
        });
        Arc::new(rt.load(&path).unwrap())
    };
    let spinner = {
        let looping = looping.clone();
        std::thread::spawn(move || looping.deliver(vec![email("d-x", "9")]))
    };
    // While one plugin spins, the other answers.
    for i in 0..20 {
        let out = good.deliver(vec![email(&format!("d-{i}"), "1")]).unwrap();
        assert!(out[0].is_ok());
    }
    assert!(matches!(
        spinner.join().unwrap().unwrap_err().cause,
        CallFailure::Timeout { .. }
    ));
}
