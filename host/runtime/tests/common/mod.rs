//! Helpers shared by the runtime's integration tests: the packaged plugins
//! (built by `cargo xtask plugins`) and manifests derived from them.

#![allow(dead_code, reason = "each test file uses a different subset")]
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test support fails by panicking"
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use omnigate_core::{Channel, HcpSnapshot};
use omnigate_runtime::types::MessageParts;
use omnigate_runtime::{EgressInspector, Outgoing, Runtime, RuntimeConfig};
use toml_edit::{DocumentMut, value};

/// `target/` of the workspace (or `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
    }
}

/// The packaged manifest of a bundled (`plugins/`) or test plugin.
pub fn packaged(name: &str) -> PathBuf {
    for folder in ["plugins", "test-plugins"] {
        let path = target_dir().join(folder).join(format!("{name}.toml"));
        if path.is_file() {
            return path;
        }
    }
    panic!(
        "plugin `{name}` is not built: run `cargo xtask plugins` (looked in {})",
        target_dir().display()
    );
}

/// Writes a copy of the packaged manifest of `name` into `dir` (as
/// `file`), with the component path made absolute and `edit` applied.
pub fn manifest_with(
    dir: &Path,
    name: &str,
    file: &str,
    edit: impl FnOnce(&mut DocumentMut),
) -> PathBuf {
    let source = packaged(name);
    let mut doc: DocumentMut = std::fs::read_to_string(&source).unwrap().parse().unwrap();
    let wasm = source
        .parent()
        .unwrap()
        .join(doc["component"]["path"].as_str().unwrap());
    doc["component"]["path"] = value(wasm.display().to_string());
    edit(&mut doc);
    let path = dir.join(file);
    std::fs::write(&path, doc.to_string()).unwrap();
    path
}

/// A manifest of the hostile plugin in `mode`.
pub fn hostile(dir: &Path, mode: &str) -> PathBuf {
    manifest_with(dir, "hostile", &format!("hostile-{mode}.toml"), |doc| {
        doc["config"]["mode"] = value(mode);
    })
}

pub fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig::default()).unwrap()
}

pub fn runtime_with(egress: Arc<dyn EgressInspector>) -> Runtime {
    Runtime::new(RuntimeConfig {
        egress,
        ..RuntimeConfig::default()
    })
    .unwrap()
}

/// An HCP with every field set.
pub fn hcp(id: &str) -> HcpSnapshot {
    HcpSnapshot {
        id: id.into(),
        name: Some("Dr. Jane Doe".into()),
        specialty_code: Some("207RC0000X".into()),
        specialty: Some("Cardiovascular Disease".into()),
        institution: Some("General Hospital".into()),
        market: Some("US".into()),
        time_zone: Some("America/New_York".into()),
        language: Some("en-US".into()),
        tags: Some(vec!["lipids".into()]),
        journey_stage: Some("interest".into()),
        engagement: None,
        assigned_reps: Some(vec!["rep-7".into()]),
        email: Some(format!("{id}@clinic.example")),
        phone: Some("+15550102030".into()),
        wechat_id: Some("wx-abc".into()),
    }
}

/// An e-mail for `hcp_id` with dispatch id `dispatch`.
pub fn email(dispatch: &str, hcp_id: &str) -> Outgoing {
    Outgoing {
        dispatch_id: dispatch.into(),
        idempotency_key: format!("key-{dispatch}"),
        recipient: hcp(hcp_id),
        content_version_id: "cv-1".into(),
        content_sha256: "ab".repeat(32),
        channel: Channel::Email,
        parts: MessageParts {
            subject: Some("New data on lipid management".into()),
            preheader: None,
            body_text: "In the phase 3 trial, 62% of patients reached the primary endpoint [1]."
                .into(),
            body_html: None,
            call_to_action: None,
            disclaimers: vec!["Important safety information: ...".into()],
        },
    }
}
