//! Gate decisions and the dispatch ledger on a real SQLite file.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod common;

use common::*;
use omnigate_core::Channel;
use omnigate_core::EventType;
use omnigate_core::consent::Purpose;
use omnigate_core::content::VersionHash;
use omnigate_core::ledger::{
    CancelScope, DecisionFilter, DecisionRecord, DispatchState, LedgerStore, NewDispatch, Outcome,
    RuleOutcome, SealedDecision, Verdict,
};
use omnigate_core::store::{AuditStore, EventStore, IdentityStore};

fn decision(n: u32, hcp: &str, verdict: Verdict, rule: &str) -> DecisionRecord {
    DecisionRecord {
        id: format!("dec-{n}"),
        at: NOW,
        dispatch: format!("d-{n}"),
        campaign: Some("camp".into()),
        hcp: id(hcp),
        channel: Channel::Email,
        purpose: Purpose::Promotional,
        market: "US".into(),
        version: VersionHash("ab".repeat(32)),
        policy_version: Some("p1".into()),
        verdict,
        text_sha256: Some("cd".repeat(32)),
        consent: None,
        rules: vec![RuleOutcome {
            rule: rule.into(),
            kind: "cap".into(),
            outcome: if verdict == Verdict::Allow {
                Outcome::Pass
            } else {
                Outcome::Block
            },
            reason: "because".into(),
            reference: None,
            evidence: serde_json::json!({"counted": 2}),
        }],
        summary: "s".into(),
    }
}

fn dispatch(n: u32, hcp: &str, at: i64) -> NewDispatch {
    NewDispatch {
        id: format!("d-{n}"),
        idempotency_key: format!("camp:{hcp}:{n}"),
        campaign: Some("camp".into()),
        hcp: id(hcp),
        channel: Channel::Email,
        purpose: Purpose::Promotional,
        market: "US".into(),
        product: Some("cardiozen".into()),
        version: VersionHash("ab".repeat(32)),
        decision: format!("dec-{n}"),
        planned_at: at,
        text_sha256: "cd".repeat(32),
    }
}

#[test]
fn decisions_and_dispatches_are_recorded_together_and_audited() {
    let s = with_hcps(2);
    let report = s
        .record_decisions(
            "engine",
            &[
                decision(1, "h1", Verdict::Allow, "email-weekly"),
                decision(2, "h2", Verdict::Block, "quiet-hours"),
            ],
            &[dispatch(1, "h1", NOW)],
        )
        .unwrap();
    assert_eq!((report.decisions, report.dispatches), (2, 1));
    assert_eq!(
        s.dispatch("d-1").unwrap().unwrap().state,
        DispatchState::Queued
    );
    assert_eq!(
        s.decision("dec-2").unwrap().unwrap(),
        decision(2, "h2", Verdict::Block, "quiet-hours")
    );
    let by_rule = s
        .decisions(&DecisionFilter {
            rule: Some("quiet-hours".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(by_rule.len(), 1);
    // A passing rule is not an index entry: filtering by rule finds blocks and warnings.
    assert!(
        s.decisions(&DecisionFilter {
            rule: Some("email-weekly".into()),
            ..Default::default()
        })
        .unwrap()
        .is_empty()
    );
    let actions: Vec<String> = s
        .audit_entries(1, 100)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions.iter().filter(|a| *a == "gate.decision").count(), 2);
    assert_eq!(actions.iter().filter(|a| *a == "dispatch.queue").count(), 1);
    assert!(s.verify_audit().unwrap().is_intact());
    // The decision's audit entry commits to the record as its row holds
    // it (the canonical JSON of the record) by its sha256.
    let rows: Vec<(String, String)> = s
        .raw()
        .prepare("SELECT id, record FROM decision ORDER BY num")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let entries = s.audit_entries(1, 100).unwrap();
    for (id, record) in rows {
        assert_eq!(
            record,
            omnigate_core::canonical::to_canonical_json(
                &serde_json::to_value(s.decision(&id).unwrap().unwrap()).unwrap()
            )
        );
        let e = entries
            .iter()
            .find(|e| e.action == "gate.decision" && e.subject == id)
            .unwrap();
        assert_eq!(
            e.payload,
            format!(
                "{{\"record_sha256\":\"{}\"}}",
                omnigate_core::canonical::sha256_hex(record.as_bytes())
            )
        );
    }
}

/// A decision row edited after the fact (its guard dropped first), or one
/// slipped in without an audit entry, breaks verification, which names the
/// decision; an entry written before the commitment form (the record
/// itself as payload) still verifies.
#[test]
fn sealed_decisions_are_stored_as_plain_ones_are() {
    // The same decisions, once plain and once sealed (serialized before
    // the call), into two stores: the same rows, the same audit payloads.
    let plain = with_hcps(2);
    let sealed = with_hcps(2);
    let records = [
        decision(1, "h1", Verdict::Allow, "email-weekly"),
        decision(2, "h2", Verdict::Block, "quiet-hours"),
    ];
    plain
        .record_decisions("engine", &records, &[dispatch(1, "h1", NOW)])
        .unwrap();
    let seals: Vec<SealedDecision> = records
        .iter()
        .map(|r| SealedDecision::new(r.clone()).unwrap())
        .collect();
    let report = sealed
        .record_sealed_decisions("engine", &seals, &[dispatch(1, "h1", NOW)])
        .unwrap();
    assert_eq!((report.decisions, report.dispatches), (2, 1));
    let rows = |s: &TestStore| -> Vec<(String, String)> {
        s.raw()
            .prepare("SELECT id, record FROM decision ORDER BY num")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(rows(&plain), rows(&sealed));
    let payloads = |s: &TestStore| -> Vec<(String, String)> {
        s.audit_entries(1, 100)
            .unwrap()
            .into_iter()
            .filter(|e| e.action == "gate.decision")
            .map(|e| (e.subject, e.payload.to_string()))
            .collect()
    };
    assert_eq!(payloads(&plain), payloads(&sealed));
    assert!(sealed.verify_audit().unwrap().is_intact());
    assert_eq!(sealed.decision("dec-1").unwrap().unwrap(), records[0]);
    // A dispatch of a blocked sealed decision is refused, as a plain one is.
    let err = sealed
        .record_sealed_decisions("engine", &seals[1..], &[dispatch(2, "h2", NOW)])
        .unwrap_err();
    assert!(err.to_string().contains("which blocked it"), "{err}");
}

#[test]
fn an_edited_or_unaudited_decision_is_caught_by_verify() {
    use omnigate_core::audit::ChainProblem;

    let s = with_hcps(2);
    s.record_decisions(
        "engine",
        &[
            decision(1, "h1", Verdict::Allow, "email-weekly"),
            decision(2, "h2", Verdict::Block, "quiet-hours"),
        ],
        &[],
    )
    .unwrap();
    assert!(s.verify_audit().unwrap().is_intact());
    let raw = s.raw();
    raw.execute_batch("DROP TRIGGER decision_no_update")
        .unwrap();
    let original: String = raw
        .query_row("SELECT record FROM decision WHERE id = 'dec-2'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let edited = original.replace("\"block\"", "\"allow\"");
    assert_ne!(edited, original);
    raw.execute(
        "UPDATE decision SET record = ?1, verdict = 'allow' WHERE id = 'dec-2'",
        [&edited],
    )
    .unwrap();
    let broken = s.verify_audit().unwrap().broken.unwrap();
    assert!(
        matches!(&broken.problem, ChainProblem::DecisionMismatch { decision, .. } if decision == "dec-2"),
        "{broken}"
    );
    assert!(broken.seq > 0);
    raw.execute(
        "UPDATE decision SET record = ?1, verdict = 'block' WHERE id = 'dec-2'",
        [&original],
    )
    .unwrap();
    assert!(s.verify_audit().unwrap().is_intact());
    // A decision row without an entry.
    raw.execute(
        "INSERT INTO decision (id, at, dispatch, hcp_num, verdict, record)
         SELECT 'dec-x', at, 'd-x', hcp_num, verdict, record FROM decision WHERE id = 'dec-1'",
        [],
    )
    .unwrap();
    let broken = s.verify_audit().unwrap().broken.unwrap();
    assert_eq!(broken.seq, 0);
    assert!(
        broken
            .to_string()
            .contains("`dec-x`: it has no audit entry"),
        "{broken}"
    );
    // The form before the commitment: the payload is the record itself.
    assert!(omnigate_core::audit::decision_matches(&original, &original));
    assert!(!omnigate_core::audit::decision_matches(&original, &edited));
}

#[test]
fn a_dispatch_of_a_blocked_decision_or_a_bad_batch_stores_nothing() {
    let s = with_hcps(1);
    let before = count(&s, "audit_log");
    let err = s
        .record_decisions(
            "engine",
            &[decision(1, "h1", Verdict::Block, "x")],
            &[dispatch(1, "h1", NOW)],
        )
        .unwrap_err();
    assert!(err.to_string().contains("blocked it"), "{err}");
    let err = s
        .record_decisions(
            "engine",
            &[
                decision(1, "h1", Verdict::Allow, "x"),
                decision(2, "nobody", Verdict::Allow, "x"),
            ],
            &[],
        )
        .unwrap_err();
    assert!(err.to_string().contains("nobody"), "{err}");
    assert_eq!(count(&s, "decision"), 0);
    assert_eq!(count(&s, "audit_log"), before);
}

#[test]
fn an_idempotency_key_enters_the_ledger_once() {
    let s = with_hcps(1);
    s.record_decisions(
        "e",
        &[decision(1, "h1", Verdict::Allow, "x")],
        &[dispatch(1, "h1", NOW)],
    )
    .unwrap();
    let mut again = dispatch(2, "h1", NOW);
    again.idempotency_key = dispatch(1, "h1", NOW).idempotency_key;
    let report = s
        .record_decisions("e", &[decision(2, "h1", Verdict::Allow, "x")], &[again])
        .unwrap();
    assert_eq!(report.dispatches, 0);
    assert_eq!(report.existing_keys, vec!["camp:h1:1".to_owned()]);
    assert_eq!(count(&s, "dispatch"), 1);
    assert_eq!(
        s.dispatch_by_key("camp:h1:1").unwrap().unwrap().dispatch.id,
        "d-1"
    );
}

#[test]
fn dispatch_states_only_move_forward_and_decisions_never_change() {
    let s = with_hcps(1);
    s.record_decisions(
        "e",
        &[
            decision(1, "h1", Verdict::Allow, "x"),
            decision(2, "h1", Verdict::Block, "y"),
        ],
        &[dispatch(1, "h1", NOW)],
    )
    .unwrap();
    let q = [DispatchState::Queued];
    assert!(
        s.set_dispatch_state("e", "d-1", &q, DispatchState::Sending, None)
            .unwrap()
    );
    // Not in `from`: nothing happens.
    assert!(
        !s.set_dispatch_state("e", "d-1", &q, DispatchState::Cancelled, None)
            .unwrap()
    );
    // An unknown dispatch is an error, not "did not move".
    let unknown = s
        .set_dispatch_state("e", "d-404", &q, DispatchState::Sending, None)
        .unwrap_err();
    assert!(
        unknown.to_string().contains("unknown dispatch `d-404`"),
        "{unknown}"
    );
    assert!(
        s.set_dispatch_state(
            "e",
            "d-1",
            &[DispatchState::Sending],
            DispatchState::Sent,
            Some("id 7")
        )
        .unwrap()
    );
    let err = s
        .set_dispatch_state(
            "e",
            "d-1",
            &[DispatchState::Sent],
            DispatchState::Queued,
            None,
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("cannot go from sent to queued"),
        "{err}"
    );
    let raw = s.raw();
    for sql in [
        "UPDATE decision SET verdict = 'allow' WHERE id = 'dec-1'",
        "DELETE FROM decision",
        "DELETE FROM decision_rule",
        "UPDATE dispatch SET version = 'x'",
        "UPDATE dispatch SET state = 'queued'",
        "DELETE FROM dispatch",
    ] {
        assert!(raw.execute(sql, []).is_err(), "{sql} must be refused");
    }
}

#[test]
fn contacts_follow_the_merge_group_and_cancellation_skips_what_was_sent() {
    let s = with_hcps(2);
    s.record_decisions(
        "e",
        &[
            decision(1, "h1", Verdict::Allow, "x"),
            decision(2, "h2", Verdict::Allow, "x"),
            decision(3, "h2", Verdict::Allow, "x"),
        ],
        &[
            dispatch(1, "h1", NOW - DAY),
            dispatch(2, "h2", NOW),
            dispatch(3, "h2", NOW - 40 * DAY),
        ],
    )
    .unwrap();
    assert_eq!(
        s.contacts_since(&id("h1"), NOW - 30 * DAY).unwrap().len(),
        1
    );
    s.merge_hcps("e", &id("h1"), &id("h2"), "same person")
        .unwrap();
    assert_eq!(
        s.contacts_since(&id("h1"), NOW - 30 * DAY).unwrap().len(),
        2
    );
    assert_eq!(s.contacts_since(&id("h2"), 0).unwrap().len(), 3);

    s.set_dispatch_state(
        "e",
        "d-1",
        &[DispatchState::Queued],
        DispatchState::Sending,
        None,
    )
    .unwrap();
    let cancelled = s
        .cancel_queued(
            "e",
            &CancelScope::Campaign("camp".into()),
            "campaign cancelled",
        )
        .unwrap();
    assert_eq!(cancelled, vec!["d-2".to_owned(), "d-3".to_owned()]);
    assert_eq!(
        s.dispatch("d-1").unwrap().unwrap().state,
        DispatchState::Sending
    );
    let d2 = s.dispatch("d-2").unwrap().unwrap();
    assert_eq!(d2.state, DispatchState::Cancelled);
    assert_eq!(d2.detail.as_deref(), Some("campaign cancelled"));
    // Cancelled dispatches are not contacts.
    assert_eq!(s.contacts_since(&id("h1"), 0).unwrap().len(), 1);
}

/// Guards the gate's one-snapshot read (`gate_facts`, which resolves the
/// merge group in one statement and reads wide and product consent
/// together) against the reads it replaces, one call at a time, before and
/// after merges and an unmerge.
#[test]
fn gate_facts_read_what_the_single_reads_read_across_merges() {
    use omnigate_core::consent::{ConsentScope, ConsentSource, ConsentStatus, NewConsent};
    use omnigate_core::ledger::{FactsQuery, GateFactsStore};
    use omnigate_core::store::{ConsentQuery, ConsentStore, HcpStore};

    let s = with_hcps(3);
    let consent = |hcp: &str, product: Option<&str>, status, at| NewConsent {
        scope: ConsentScope {
            hcp: id(hcp),
            channel: Channel::Email,
            purpose: Purpose::Promotional,
            market: "US".into(),
            product: product.map(str::to_owned),
        },
        status,
        source: ConsentSource::WebForm,
        recorded_at: at,
        recorded_by: "t".into(),
    };
    s.record_consents(
        "t",
        &[
            consent("h1", None, ConsentStatus::OptIn, NOW - 5 * DAY),
            consent(
                "h2",
                Some("cardiozen"),
                ConsentStatus::OptOut,
                NOW - 4 * DAY,
            ),
            consent("h3", None, ConsentStatus::OptOut, NOW - 3 * DAY),
            consent("h3", Some("cardiozen"), ConsentStatus::OptIn, NOW - 6 * DAY),
        ],
    )
    .unwrap();
    s.record_decisions(
        "e",
        &[
            decision(1, "h1", Verdict::Allow, "x"),
            decision(2, "h2", Verdict::Allow, "x"),
            decision(3, "h3", Verdict::Allow, "x"),
        ],
        &[
            dispatch(1, "h1", NOW - DAY),
            dispatch(2, "h2", NOW - 2 * DAY),
            dispatch(3, "h3", NOW - 40 * DAY),
        ],
    )
    .unwrap();
    // Engagement on both sides of the later merge: the features of the
    // group add up, part of them still in the hot tier.
    s.ingest(
        "t",
        "b1",
        &[
            event("e1", "h1", EventType::EmailOpened, NOW - 2 * DAY),
            event("e2", "h2", EventType::EmailClicked, NOW - DAY),
            event("e3", "h3", EventType::EmailOpened, NOW - 3 * DAY),
        ],
    )
    .unwrap();
    let check = |when: &str| {
        for hcp in ["h1", "h2", "h3", "nobody"] {
            for product in [None, Some("cardiozen")] {
                let q = FactsQuery {
                    hcp: id(hcp),
                    version: VersionHash("ab".repeat(32)),
                    item: Some("item".into()),
                    consent: Some((
                        None,
                        Channel::Email,
                        Purpose::Promotional,
                        product.map(str::to_owned),
                    )),
                    contacts_since: NOW - 30 * DAY,
                    features_at: Some(NOW),
                };
                let facts = s.gate_facts(&q).unwrap();
                assert_eq!(facts.profile, s.profile(&id(hcp)).unwrap(), "{when} {hcp}");
                if facts.profile.is_none() {
                    assert!(facts.consent.is_none() && facts.contacts.is_empty());
                    assert!(facts.features.is_none());
                    continue;
                }
                let features = s.features(&id(hcp), NOW).unwrap();
                assert!(
                    features.channels.iter().any(|c| c.opens + c.clicks > 0),
                    "{when} {hcp}"
                );
                assert_eq!(facts.features, Some(features), "{when} {hcp}");
                let single = s
                    .deciding_consent(&ConsentQuery {
                        hcp: id(hcp),
                        channel: Channel::Email,
                        purpose: Purpose::Promotional,
                        market: "US".into(),
                        product: product.map(str::to_owned),
                    })
                    .unwrap();
                assert_eq!(facts.consent, single, "{when} {hcp} {product:?}");
                assert_eq!(
                    facts.contacts,
                    s.contacts_since(&id(hcp), NOW - 30 * DAY).unwrap(),
                    "{when} {hcp}"
                );
            }
        }
    };
    check("apart");
    let m2 = s.merge_hcps("e", &id("h1"), &id("h2"), "same").unwrap();
    s.merge_hcps("e", &id("h1"), &id("h3"), "same").unwrap();
    check("merged");
    let facts = s
        .gate_facts(&FactsQuery {
            hcp: id("h3"),
            version: VersionHash("ab".repeat(32)),
            item: None,
            consent: Some((None, Channel::Email, Purpose::Promotional, None)),
            contacts_since: NOW - 30 * DAY,
            features_at: None,
        })
        .unwrap();
    assert!(facts.features.is_none());
    // The group's contacts: h1's and h2's (h3's is older than 30 days).
    assert_eq!(facts.contacts.len(), 2);
    s.unmerge_hcps("e", m2, "not the same").unwrap();
    check("unmerged");
}

/// A page's member facts (one snapshot) read what the single reads read:
/// profile, features, journey stage and dispatch, across a merge and for
/// an unknown HCP.
#[test]
fn member_facts_read_what_the_single_reads_read() {
    use omnigate_core::campaign::{MemberFactsStore, MemberQuery};
    use omnigate_core::store::{HcpStore, JourneyStore};

    let s = with_hcps(3);
    s.ingest(
        "t",
        "b1",
        &[
            event("e1", "h1", EventType::EmailOpened, NOW - 2 * DAY),
            event("e2", "h2", EventType::EmailClicked, NOW - DAY),
        ],
    )
    .unwrap();
    s.set_journey_stage("t", &id("h2"), "cardiozen", "interest", "test")
        .unwrap();
    s.record_decisions(
        "e",
        &[decision(1, "h1", Verdict::Allow, "x")],
        &[dispatch(1, "h1", NOW - DAY)],
    )
    .unwrap();
    let key = s.dispatch("d-1").unwrap().unwrap().dispatch.idempotency_key;
    let check = |when: &str| {
        let hcps = [id("h1"), id("h2"), id("h3"), id("nobody")];
        let keys = [key.clone(), "k-2".into(), "k-3".into(), "k-4".into()];
        let queries: Vec<MemberQuery<'_>> = hcps
            .iter()
            .zip(&keys)
            .enumerate()
            .map(|(i, (hcp, key))| MemberQuery {
                hcp,
                // One member names its dispatch, the others go by key.
                dispatch: (i == 2).then_some("d-1"),
                key,
            })
            .collect();
        let facts = s.member_facts("cardiozen", NOW, &queries).unwrap();
        assert_eq!(facts.len(), 4);
        for (q, f) in queries.iter().zip(&facts) {
            assert_eq!(f.profile, s.profile(q.hcp).unwrap(), "{when} {}", q.hcp);
            if f.profile.is_some() {
                assert_eq!(
                    f.features,
                    s.features(q.hcp, NOW).unwrap(),
                    "{when} {}",
                    q.hcp
                );
                assert_eq!(
                    f.stage,
                    s.journey_stage(q.hcp, "cardiozen").unwrap(),
                    "{when} {}",
                    q.hcp
                );
            } else {
                assert_eq!(f.stage, None);
            }
            let single = match q.dispatch {
                Some(d) => s.dispatch(d).unwrap(),
                None => s.dispatch_by_key(q.key).unwrap(),
            };
            assert_eq!(f.dispatch, single, "{when} {}", q.hcp);
        }
        assert!(facts[0].dispatch.is_some() && facts[2].dispatch.is_some());
        assert!(facts[1].dispatch.is_none() && facts[3].profile.is_none());
        facts
    };
    let apart = check("apart");
    assert_eq!(apart[1].stage.as_deref(), Some("interest"));
    s.merge_hcps("e", &id("h1"), &id("h2"), "same").unwrap();
    let merged = check("merged");
    // The survivor now carries the merged record's stage and engagement.
    assert_eq!(merged[0].stage.as_deref(), Some("interest"));
    assert_ne!(merged[0].features, apart[0].features);
}
