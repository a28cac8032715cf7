//! Gate -> ledger -> the real e-mail adapter -> a loopback provider, with
//! the egress hook holding the adapter to what the gate screened.

#![allow(
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
use omnigate_core::ledger::{DispatchState, LedgerStore};
use omnigate_core::store::{ConsentStore, ContentStore, HcpStore};
use omnigate_core::template::PersonalField;
use omnigate_core::{Channel, HcpId, HcpProfile, Store};
use omnigate_engine::{GateInspector, Item, Sender, Sent, message_parts};
use omnigate_gate::egress::Clearance;
use omnigate_gate::{DispatchRequest, Gate};
use omnigate_mailsink::MailSink;
use omnigate_policy::{PolicyHandle, load_dir};
use omnigate_runtime::{Outgoing, Plugin, Runtime, RuntimeConfig};
use omnigate_store::{SqliteStore, StoreOptions};
use toml_edit::{DocumentMut, value};

/// 2026-11-24 15:00 in New York.
const AFTERNOON: i64 = 1_795_550_400_000;
const FOOTER: &str = "Important Safety Information: Cardiozen can cause fetal toxicity. Hypotension and hyperkalemia can occur. Please see full Prescribing Information. To unsubscribe, click here.";

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
    }
}

/// The packaged e-mail adapter, pointed at `endpoint`.
fn adapter(runtime: &Runtime, dir: &Path, endpoint: &str) -> Plugin {
    let source = target_dir().join("plugins/email-adapter.toml");
    assert!(
        source.is_file(),
        "the e-mail adapter is not built: run `cargo xtask plugins`"
    );
    let mut doc: DocumentMut = std::fs::read_to_string(&source).unwrap().parse().unwrap();
    let wasm = source
        .parent()
        .unwrap()
        .join(doc["component"]["path"].as_str().unwrap());
    doc["component"]["path"] = value(wasm.display().to_string());
    doc["config"]["endpoint"] = value(endpoint);
    let path = dir.join("email-adapter.toml");
    std::fs::write(&path, doc.to_string()).unwrap();
    runtime.load(&path).unwrap()
}

struct World {
    dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    sender: Sender,
    clearance: Arc<Clearance>,
    runtime: Runtime,
    approved: VersionHash,
    draft: VersionHash,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(StoreOptions::new(dir.path().join("data"))).unwrap());
    let mut profiles = Vec::new();
    let mut consents = Vec::new();
    for i in 0..3 {
        let id = HcpId::new(format!("npi-{i}")).unwrap();
        let mut p = HcpProfile::new(id.clone(), format!("Ada Li {i}"), "US");
        p.time_zone = Some("America/New_York".into());
        p.contact.email = Some(format!("ada{i}@hospital.example"));
        profiles.push(p);
        consents.push(NewConsent {
            scope: ConsentScope {
                hcp: id,
                channel: Channel::Email,
                purpose: Purpose::Promotional,
                market: "US".into(),
                product: None,
            },
            // npi-2 opted out.
            status: if i == 2 {
                ConsentStatus::OptOut
            } else {
                ConsentStatus::OptIn
            },
            source: ConsentSource::WebForm,
            recorded_at: AFTERNOON - 86_400_000,
            recorded_by: "rep".into(),
        });
    }
    store.upsert_profiles("import", &profiles).unwrap();
    store.record_consents("import", &consents).unwrap();
    let body = |text: &str| ContentBody {
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
            channels: BTreeSet::from([Channel::Email]),
            audience: Audience::Hcp,
            claims: BTreeMap::new(),
            disclaimers: Vec::new(),
            isi: None,
            expires_at: None,
        },
    };
    let approved = store
        .put_version(
            "author",
            "cz",
            &body("The recommended starting dose is 80 mg once daily."),
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
        .put_version("author", "cz-draft", &body("Cardiozen cures hypertension."))
        .unwrap();
    let policy_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    let policy = Arc::new(PolicyHandle::new(load_dir(&policy_dir).unwrap()));
    let dyn_store: Arc<dyn Store> = store.clone();
    let gate = Gate::new(policy, dyn_store.clone());
    let clearance = Clearance::new();
    let runtime = Runtime::new(RuntimeConfig {
        egress: Arc::new(GateInspector(clearance.clone())),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let sender = Sender::new(gate, dyn_store, clearance.clone(), "engine-test");
    World {
        dir,
        store,
        sender,
        clearance,
        runtime,
        approved,
        draft,
    }
}

fn item(hcp: &str, version: &VersionHash, n: u32) -> Item {
    Item {
        request: DispatchRequest {
            dispatch_id: format!("d-{hcp}-{n}"),
            campaign: Some("bp".into()),
            hcp: HcpId::new(hcp).unwrap(),
            version: version.clone(),
            channel: Channel::Email,
            purpose: Purpose::Promotional,
            market: None,
            values: BTreeMap::from([(PersonalField::Salutation, "Dr.".into())]),
            proposed: None,
            at: AFTERNOON,
        },
        idempotency_key: format!("bp:{hcp}:{n}"),
    }
}

#[test]
fn only_what_the_gate_allowed_reaches_the_provider_exactly_as_screened() {
    let w = world();
    let sink = MailSink::start().unwrap();
    let email = adapter(&w.runtime, w.dir.path(), &sink.endpoint());
    let items = vec![
        item("npi-0", &w.approved, 1),
        item("npi-1", &w.draft, 1),    // unapproved, absolute claim
        item("npi-2", &w.approved, 1), // opted out
    ];
    let out = w.sender.send(&email, &items).unwrap();
    assert!(matches!(out[0], Sent::Delivered { .. }), "{:?}", out[0]);
    let Sent::Blocked { decision } = &out[1] else {
        panic!("{:?}", out[1])
    };
    assert!(decision.blocking_rules().any(|r| r == "absolute-cure"));
    let Sent::Blocked { decision } = &out[2] else {
        panic!("{:?}", out[2])
    };
    assert_eq!(
        decision.blocking_rules().collect::<Vec<_>>(),
        vec!["consent-opt-in", "us-email-optin"]
    );

    // The provider got one message, with the text the gate screened.
    let bodies = sink.bodies();
    assert_eq!(bodies.len(), 1);
    let m = &bodies[0]["messages"][0];
    assert_eq!(m["idempotency_key"], "bp:npi-0:1");
    assert_eq!(
        m["text"],
        "Dr. Ada Li 0,\n\nThe recommended starting dose is 80 mg once daily."
    );
    assert_eq!(m["disclaimers"][0], FOOTER);
    let d = w.store.dispatch("d-npi-0-1").unwrap().unwrap();
    assert_eq!(d.state, DispatchState::Sent);
    assert!(w.store.dispatch("d-npi-1-1").unwrap().is_none());
    assert_eq!(w.clearance.cleared_count(), 0);

    // Sent again with the same keys: nothing new reaches the provider.
    let again = w.sender.send(&email, &items[..1]).unwrap();
    assert!(matches!(
        again[0],
        Sent::AlreadyInLedger {
            state: DispatchState::Sent,
            ..
        }
    ));
    assert_eq!(sink.bodies().len(), 1);
}

#[test]
fn the_egress_hook_refuses_what_the_gate_did_not_clear() {
    let w = world();
    let sink = MailSink::start().unwrap();
    let email = adapter(&w.runtime, w.dir.path(), &sink.endpoint());
    // An adapter called directly, bypassing the gate: nothing is cleared.
    let profile = w
        .store
        .profile(&HcpId::new("npi-0").unwrap())
        .unwrap()
        .unwrap();
    let gate_free = Outgoing {
        dispatch_id: "rogue-1".into(),
        idempotency_key: "rogue-1".into(),
        recipient: profile.snapshot(None, None),
        content_version_id: w.approved.0.clone(),
        content_sha256: w.approved.0.clone(),
        channel: Channel::Email,
        parts: omnigate_runtime::types::MessageParts {
            subject: Some("Hello".into()),
            preheader: None,
            body_text: "Cardiozen cures hypertension.".into(),
            body_html: None,
            call_to_action: None,
            disclaimers: Vec::new(),
        },
    };
    let r = email.deliver(vec![gate_free.clone()]).unwrap();
    assert!(r[0].is_err(), "{r:?}");
    assert_eq!(sink.requests(), 0, "no byte may reach the provider");

    // Cleared, but the text handed over is not the text the gate screened.
    let allowed = gate_of(&w).decide(&item("npi-0", &w.approved, 9).request);
    let rendered = allowed.rendered.unwrap();
    w.clearance.clear([omnigate_gate::egress::Cleared {
        dispatch_id: "rogue-1".into(),
        idempotency_key: "rogue-1".into(),
        texts: rendered.texts().map(str::to_owned).collect(),
        values: vec![
            "npi-0".into(),
            "Ada Li 0".into(),
            "ada0@hospital.example".into(),
        ],
    }]);
    let mut tampered = gate_free;
    tampered.parts = message_parts(&rendered);
    tampered.parts.body_text.push_str(" Guaranteed results.");
    let r = email.deliver(vec![tampered]).unwrap();
    assert!(r[0].is_err(), "{r:?}");
    assert_eq!(sink.requests(), 0);
}

fn gate_of(w: &World) -> Gate {
    let policy_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    let dyn_store: Arc<dyn Store> = w.store.clone();
    Gate::new(
        Arc::new(PolicyHandle::new(load_dir(&policy_dir).unwrap())),
        dyn_store,
    )
}
