//! The world the engine's tests run in: a real SQLite store with HCPs,
//! consent and content, the real gate with the repository's policies, the
//! bundled plugins (compiled Wasm components) and a loopback provider.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use omnigate_core::consent::{ConsentScope, ConsentSource, ConsentStatus, NewConsent, Purpose};
use omnigate_core::content::{
    Audience, ContentBody, ContentMetadata, NewPreScreen, ReviewRole, VersionHash,
};
use omnigate_core::event::now_millis;
use omnigate_core::hcp::Specialty;
use omnigate_core::store::{ConsentStore, ContentStore, HcpStore};
use omnigate_core::{Channel, HcpId, HcpProfile, Store};
use omnigate_engine::{GateInspector, Sender};
use omnigate_gate::Gate;
use omnigate_gate::egress::Clearance;
use omnigate_mailsink::MailSink;
use omnigate_policy::{PolicyHandle, load_dir};
use omnigate_runtime::{Plugin, Runtime, RuntimeConfig};
use omnigate_store::{SqliteStore, StoreOptions};
use toml_edit::{DocumentMut, value};

pub const FOOTER: &str = "Important Safety Information: Cardiozen can cause fetal toxicity. Hypotension and hyperkalemia can occur. Please see full Prescribing Information. To unsubscribe, click here.";

pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
    }
}

/// A packaged bundled plugin, its config edited.
pub fn plugin(runtime: &Runtime, dir: &Path, name: &str, config: &[(&str, &str)]) -> Arc<Plugin> {
    let source = target_dir().join(format!("plugins/{name}.toml"));
    assert!(
        source.is_file(),
        "{name} is not built: run `cargo xtask plugins`"
    );
    let mut doc: DocumentMut = std::fs::read_to_string(&source).unwrap().parse().unwrap();
    let wasm = source
        .parent()
        .unwrap()
        .join(doc["component"]["path"].as_str().unwrap());
    doc["component"]["path"] = value(wasm.display().to_string());
    for (k, v) in config {
        doc["config"][*k] = value(*v);
    }
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, doc.to_string()).unwrap();
    Arc::new(runtime.load(&path).unwrap())
}

/// A fixed-offset zone where it is about midday now, so that quiet hours
/// never decide these tests whatever the clock says.
pub fn midday_zone() -> String {
    let hour = (now_millis() / 3_600_000) % 24;
    // Etc/GMT-N is UTC+N.
    let offset = 12 - hour; // -11 ..= 12
    match offset {
        0 => "Etc/GMT".into(),
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    }
}

/// A fixed-offset zone where it is about 23:00 now: inside the policy's
/// quiet hours for e-mail (20:00-08:00) whatever the clock says.
pub fn night_zone() -> (String, i64) {
    let hour = (now_millis() / 3_600_000) % 24;
    // Local = UTC + offset, offset in -11 ..= 12 (Etc/GMT-N is UTC+N).
    let mut offset = 23 - hour;
    if offset > 12 {
        offset -= 24;
    }
    let zone = match offset {
        0 => "Etc/GMT".into(),
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    };
    (zone, offset)
}

/// A store with HCPs, consent and content, the gate over the repository's
/// policies, the bundled plugins and a loopback provider.
pub struct Base {
    pub dir: tempfile::TempDir,
    pub store: Arc<SqliteStore>,
    pub dyn_store: Arc<dyn Store>,
    pub plugins: Vec<Arc<Plugin>>,
    pub sink: MailSink,
    pub approved: VersionHash,
    pub draft: VersionHash,
    pub sender: Sender,
    pub _runtime: Runtime,
}

/// How each HCP is set up, by index.
pub fn kind(i: usize) -> &'static str {
    match i % 5 {
        0..=2 => "email", // e-mail and rep-visit opt-in
        3 => "rep-only",  // rep-visit opt-in, e-mail opt-out
        _ => "none",      // nothing on record
    }
}

pub fn body(text: &str, channels: &[Channel]) -> ContentBody {
    ContentBody {
        parts: BTreeMap::from([
            ("subject".into(), "New blood pressure data".into()),
            (
                "text".into(),
                format!("{{{{salutation}}}} {{{{name}}}},\n\n{text}"),
            ),
            ("isi".into(), FOOTER.into()),
        ]),
        variants: BTreeMap::new(),
        personalization_fields: BTreeSet::from(["salutation".into(), "name".into()]),
        metadata: ContentMetadata {
            product: "cardiozen".into(),
            indications: BTreeSet::from(["hypertension".into()]),
            markets: BTreeSet::from(["US".into()]),
            channels: channels.iter().copied().collect(),
            audience: Audience::Hcp,
            claims: BTreeMap::new(),
            disclaimers: Vec::new(),
            isi: None,
            expires_at: None,
        },
    }
}

pub fn base(hcps: usize) -> Base {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(StoreOptions::new(dir.path().join("data"))).unwrap());
    let zone = midday_zone();
    let mut profiles = Vec::new();
    let mut consents = Vec::new();
    let consent = |id: &HcpId, channel, status| NewConsent {
        scope: ConsentScope {
            hcp: id.clone(),
            channel,
            purpose: Purpose::Promotional,
            market: "US".into(),
            product: None,
        },
        status,
        source: ConsentSource::WebForm,
        recorded_at: now_millis() - 86_400_000,
        recorded_by: "rep".into(),
    };
    for i in 0..hcps {
        let id = HcpId::new(format!("npi-{i:05}")).unwrap();
        let mut p = HcpProfile::new(id.clone(), format!("Ada Li {i}"), "US");
        p.time_zone = Some(zone.clone());
        p.specialty = Some(Specialty {
            code: if i % 7 == 6 {
                "208D00000X"
            } else {
                "207RC0000X"
            }
            .into(),
            label: "Cardiovascular Disease".into(),
        });
        if i % 7 == 6 {
            p.specialty = Some(Specialty {
                code: "208D00000X".into(),
                label: "General Practice".into(),
            });
        }
        p.assigned_reps = vec![format!("rep-{}", i % 3)];
        p.contact.email = Some(format!("ada{i}@hospital.example"));
        profiles.push(p);
        match kind(i) {
            "email" => {
                consents.push(consent(&id, Channel::Email, ConsentStatus::OptIn));
                consents.push(consent(&id, Channel::RepVisit, ConsentStatus::OptIn));
            }
            "rep-only" => {
                consents.push(consent(&id, Channel::Email, ConsentStatus::OptOut));
                consents.push(consent(&id, Channel::RepVisit, ConsentStatus::OptIn));
            }
            _ => {}
        }
    }
    store.upsert_profiles("import", &profiles).unwrap();
    store.record_consents("import", &consents).unwrap();
    let approved = store
        .put_version(
            "author",
            "cz",
            &body(
                "The recommended starting dose is 80 mg once daily.",
                &[Channel::Email, Channel::RepVisit],
            ),
        )
        .unwrap();
    let pre = NewPreScreen {
        policy_version: "test".into(),
        report: serde_json::json!({}),
    };
    store.submit_for_review("author", &approved, &pre).unwrap();
    for (who, role) in [
        ("m", ReviewRole::Medical),
        ("l", ReviewRole::Legal),
        ("r", ReviewRole::Regulatory),
    ] {
        store.sign_off(who, &approved, role).unwrap();
    }
    let draft = store
        .put_version(
            "author",
            "cz-draft",
            &body("Cardiozen cures hypertension.", &[Channel::Email]),
        )
        .unwrap();
    let policy_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    let policy = Arc::new(PolicyHandle::new(load_dir(&policy_dir).unwrap()));
    let dyn_store: Arc<dyn Store> = store.clone();
    let clearance = Clearance::new();
    let runtime = Runtime::new(RuntimeConfig {
        egress: Arc::new(GateInspector(clearance.clone())),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let sink = MailSink::start().unwrap();
    let plugins = vec![
        plugin(
            &runtime,
            dir.path(),
            "email-adapter",
            &[("endpoint", &sink.endpoint())],
        ),
        plugin(&runtime, dir.path(), "stage-scorer", &[]),
    ];
    let gate = Gate::new(policy, dyn_store.clone());
    let sender = Sender::new(gate, dyn_store.clone(), clearance, "engine-test");
    Base {
        dir,
        store,
        dyn_store,
        plugins,
        sink,
        approved,
        draft,
        sender,
        _runtime: runtime,
    }
}
