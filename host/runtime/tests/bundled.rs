//! The bundled plugins end to end: the e-mail adapter against a loopback
//! provider, the egress hook, field scoping and the stage scorer.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use common::{email, hcp, hostile, manifest_with, packaged, runtime, runtime_with};
use omnigate_core::{ChannelStats, EngagementStats, HcpField};
use omnigate_mailsink::MailSink;
use omnigate_runtime::scoring::{CampaignGoal, CandidateAction, ChannelPerformance};
use omnigate_runtime::types::{Channel, EventKind, PluginError, WebhookRequest};
use omnigate_runtime::{EgressInspector, EgressRequest, Plugin, Runtime};
use toml_edit::value;

fn email_adapter(rt: &Runtime, dir: &std::path::Path, sink: &MailSink) -> Plugin {
    let path = manifest_with(dir, "email-adapter", "email.toml", |doc| {
        doc["config"]["endpoint"] = value(sink.endpoint());
        doc["config"]["batch_size"] = value(2);
    });
    rt.load(&path).unwrap()
}

#[test]
fn the_email_adapter_delivers_batches_with_idempotency_keys() {
    let dir = tempfile::tempdir().unwrap();
    let sink = MailSink::start().unwrap();
    let adapter = email_adapter(&runtime(), dir.path(), &sink);
    let messages = vec![
        email("d-1", "1000000001"),
        email("d-2", "1000000002"),
        email("d-3", "1000000003"),
    ];
    let out = adapter.deliver(messages.clone()).unwrap();
    let ids: Vec<_> = out
        .iter()
        .map(|r| r.as_ref().unwrap().dispatch_id.clone())
        .collect();
    assert_eq!(ids, ["d-1", "d-2", "d-3"]);
    // batch_size = 2: two requests.
    assert_eq!(sink.requests(), 2);
    let delivered = sink.delivered();
    assert_eq!(delivered.len(), 3);
    assert_eq!(delivered[0].idempotency_key, "key-d-1");
    assert_eq!(delivered[0].to, "1000000001@clinic.example");
    assert_eq!(delivered[0].text, messages[0].parts.body_text);

    // Delivering the same dispatches again (a retry after a crash) reaches the
    // provider with the same keys, and nobody gets a second e-mail.
    let again = adapter.deliver(messages).unwrap();
    assert_eq!(
        again[0].as_ref().unwrap().provider_message_id,
        out[0].as_ref().unwrap().provider_message_id
    );
    assert!(sink.per_hcp().values().all(|n| *n == 1));
}

#[test]
fn provider_failures_become_typed_upstream_errors() {
    let dir = tempfile::tempdir().unwrap();
    let sink = MailSink::start().unwrap();
    let adapter = email_adapter(&runtime(), dir.path(), &sink);
    sink.fail_next(1);
    let out = adapter.deliver(vec![email("d-1", "1")]).unwrap();
    match &out[0] {
        Err(PluginError::Upstream(e)) => {
            assert!(e.retryable, "503 is retryable");
            assert_eq!(e.retry_after_ms, Some(1_000));
            assert!(e.message.contains("503"), "{}", e.message);
        }
        other => panic!("expected an upstream error, got {other:?}"),
    }

    let mut no_address = email("d-2", "2");
    no_address.recipient.email = None;
    let out = adapter
        .deliver(vec![no_address, email("d-3", "3")])
        .unwrap();
    match &out[0] {
        Err(PluginError::InvalidInput(m)) => {
            assert!(m.contains("HCP `2` has no usable e-mail address"), "{m}")
        }
        other => panic!("expected invalid input, got {other:?}"),
    }
    assert!(out[1].is_ok(), "one bad message does not sink the batch");

    drop(sink);
    let out = adapter.deliver(vec![email("d-4", "4")]).unwrap();
    match &out[0] {
        Err(PluginError::Upstream(e)) => assert!(e.retryable, "{e:?}"),
        other => panic!("expected a retryable upstream error, got {other:?}"),
    }
}

/// What the recorder saw of one request: `METHOD URI from plugin/call`, the
/// call id, the dispatch ids and the body.
type Seen = (String, u64, Vec<String>, String);

/// Records every request and refuses bodies with a forbidden word.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<Seen>>,
}

impl EgressInspector for Recorder {
    fn inspect(&self, r: &EgressRequest<'_>) -> Result<(), String> {
        let body = String::from_utf8_lossy(r.body).into_owned();
        self.seen.lock().unwrap().push((
            format!("{} {} from {}/{}", r.method, r.uri, r.plugin, r.call),
            r.call_id,
            r.dispatch_ids.to_vec(),
            body.clone(),
        ));
        if body.contains("cures") {
            Err("the body carries text the gate did not see".into())
        } else {
            Ok(())
        }
    }
}

#[test]
fn every_outgoing_request_passes_the_egress_hook_with_its_call_and_body() {
    let dir = tempfile::tempdir().unwrap();
    let sink = MailSink::start().unwrap();
    let recorder = Arc::new(Recorder::default());
    let rt = runtime_with(recorder.clone());
    let adapter = email_adapter(&rt, dir.path(), &sink);

    adapter
        .deliver(vec![email("d-1", "1"), email("d-2", "2")])
        .unwrap();
    {
        let seen = recorder.seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        let (what, _, dispatches, body) = &seen[0];
        assert_eq!(
            what,
            &format!("POST {} from email-adapter/deliver", sink.endpoint())
        );
        assert_eq!(dispatches, &["d-1", "d-2"]);
        assert!(body.contains("62% of patients"), "{body}");
    }

    // The hook refuses a body: the adapter gets access-denied and the
    // provider gets nothing.
    let mut tampered = email("d-3", "3");
    tampered.parts.body_text = "This cures everything".into();
    let out = adapter.deliver(vec![tampered]).unwrap();
    assert!(
        matches!(&out[0], Err(PluginError::AccessDenied(_))),
        "{out:?}"
    );
    assert_eq!(sink.delivered().len(), 2);
}

#[test]
fn a_plugin_sees_only_the_hcp_fields_its_manifest_grants() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let granted = manifest_with(dir.path(), "hostile", "fields.toml", |doc| {
        doc["config"]["mode"] = value("fields");
        let mut fields = toml_edit::Array::new();
        fields.push("specialty");
        fields.push("journey-stage");
        doc["grants"]["hcp_fields"] = value(fields);
    });
    let plugin = rt.load(&granted).unwrap();
    let out = plugin.deliver(vec![email("d-1", "1")]).unwrap();
    assert_eq!(
        out[0].as_ref().unwrap().provider_message_id,
        "fields:specialty,journey-stage"
    );

    // With no grant at all it sees the id only.
    let none = hostile(dir.path(), "fields");
    let plugin = rt.load(&none).unwrap();
    let out = plugin.deliver(vec![email("d-1", "1")]).unwrap();
    assert_eq!(out[0].as_ref().unwrap().provider_message_id, "fields:");

    // The bundled scoring model is granted no contact detail.
    let scorer = rt.load(&packaged("stage-scorer")).unwrap();
    assert!(
        scorer
            .manifest()
            .hcp_fields
            .iter()
            .all(|f| !f.is_contact_detail())
    );
    assert_eq!(
        scorer.manifest().hcp_fields,
        BTreeSet::from([
            HcpField::Specialty,
            HcpField::JourneyStage,
            HcpField::Engagement,
            HcpField::Tags
        ])
    );
}

#[test]
fn the_email_adapter_parses_signed_provider_callbacks() {
    use hmac::{Hmac, Mac};
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let path = manifest_with(dir.path(), "email-adapter", "email.toml", |doc| {
        doc["config"]["webhook_secret"] = value("s3cret");
    });
    let adapter = rt.load(&path).unwrap();
    let body = br#"{"events":[
        {"id":"e1","type":"opened","timestamp_ms":1700000000000,"message_id":"msg-1","dispatch_id":"d-1"},
        {"id":"e2","type":"clicked","timestamp_ms":1700000001000,"message_id":"msg-1","url":"https://pharma.example/study"},
        {"id":"e3","type":"unsubscribed","timestamp_ms":1700000002000,"message_id":"msg-1"}]}"#;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"s3cret").unwrap();
    mac.update(body);
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let request = |sig: Option<&str>, body: &[u8]| WebhookRequest {
        method: "POST".into(),
        path: "/webhooks/email".into(),
        headers: sig
            .map(|s| vec![("x-omnigate-signature".into(), s.into())])
            .unwrap_or_default(),
        body: body.to_vec(),
    };

    let events = adapter
        .parse_webhook(request(Some(&signature), body))
        .unwrap()
        .unwrap();
    let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::Opened,
            EventKind::Clicked,
            EventKind::Unsubscribed
        ]
    );
    assert_eq!(
        events[1].detail.as_deref(),
        Some("https://pharma.example/study")
    );
    assert!(events.iter().all(|e| e.channel == Channel::Email));

    let forged = adapter
        .parse_webhook(request(Some("sha256=00"), body))
        .unwrap();
    assert!(
        matches!(forged, Err(PluginError::AccessDenied(_))),
        "{forged:?}"
    );
    let unsigned = adapter.parse_webhook(request(None, body)).unwrap();
    assert!(
        matches!(unsigned, Err(PluginError::AccessDenied(_))),
        "{unsigned:?}"
    );

    let adapter = rt.load(&packaged("email-adapter")).unwrap();
    let bad = adapter
        .parse_webhook(request(
            None,
            br#"{"events":[{"id":"e1","type":"teleported","timestamp_ms":1}]}"#,
        ))
        .unwrap();
    match bad {
        Err(PluginError::InvalidInput(m)) => {
            assert!(m.contains("unknown type `teleported`"), "{m}")
        }
        other => panic!("expected invalid input, got {other:?}"),
    }
}

fn candidate(id: &str, channel: Channel, stage: &str) -> CandidateAction {
    CandidateAction {
        action_id: id.into(),
        content_version_id: format!("cv-{id}"),
        channel,
        topics: vec!["efficacy".into()],
        stage: Some(stage.into()),
    }
}

#[test]
fn the_stage_scorer_prefers_content_for_the_hcps_stage_and_explains_why() {
    let rt = runtime();
    let scorer = rt.load(&packaged("stage-scorer")).unwrap();
    let goal = CampaignGoal {
        product: "lipidex".into(),
        target_stage: "adoption".into(),
        stages: [
            "awareness",
            "interest",
            "consideration",
            "adoption",
            "advocacy",
        ]
        .map(String::from)
        .to_vec(),
    };
    let population = vec![ChannelPerformance {
        channel: Channel::Email,
        sends: 1000,
        opens: 300,
        clicks: 50,
        progressions: 20,
    }];
    let mut doctor = hcp("1234567890");
    doctor.engagement = Some(EngagementStats {
        touches_7d: 3,
        touches_30d: 5,
        channels: vec![ChannelStats {
            channel: omnigate_core::Channel::Email,
            last_touch_at: Some(1_700_000_000),
            touches_7d: 3,
            touches_30d: 5,
            sends: 5,
            opens: 4,
            clicks: 2,
            attended: 0,
        }],
        content_seen: vec!["cv-seen".into()],
    });
    let candidates = vec![
        candidate("awareness-email", Channel::Email, "awareness"),
        candidate("interest-email", Channel::Email, "interest"),
        candidate("consideration-rep", Channel::RepVisit, "consideration"),
        CandidateAction {
            content_version_id: "cv-seen".into(),
            ..candidate("seen", Channel::Email, "interest")
        },
    ];
    let scores = scorer
        .score(&doctor, candidates, goal, population)
        .unwrap()
        .unwrap();
    assert_eq!(scores.len(), 4);
    let best = scores
        .iter()
        .max_by(|a, b| a.score.total_cmp(&b.score))
        .unwrap();
    assert_eq!(best.action_id, "interest-email");
    assert!(
        best.rationale
            .contains("written for the HCP's stage `interest`"),
        "{}",
        best.rationale
    );
    assert!(
        best.rationale
            .contains("3 e-mail touches in the last 7 days"),
        "{}",
        best.rationale
    );
    let seen = scores.iter().find(|s| s.action_id == "seen").unwrap();
    assert!(seen.score < best.score && seen.rationale.contains("already seen"));
}
