//! The MLR content registry: versions, lifecycle, sign-off rules.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use omnigate_core::content::{Audience, ContentMetadata, NewPreScreen};
use omnigate_core::store::{AuditStore, ContentStore, StoreError};
use omnigate_core::{ApprovalPolicy, Channel, ContentBody, ContentState, ReviewRole, VersionHash};
use omnigate_store::{SqliteStore, StoreOptions};

fn body(subject: &str) -> ContentBody {
    ContentBody {
        parts: BTreeMap::from([
            ("subject".into(), subject.into()),
            ("text".into(), "Hello {name}".into()),
        ]),
        variants: BTreeMap::new(),
        personalization_fields: BTreeSet::from(["name".into()]),
        metadata: ContentMetadata {
            product: "lipitex".into(),
            indications: BTreeSet::from(["hyperlipidemia".into()]),
            markets: BTreeSet::from(["US".into()]),
            channels: BTreeSet::from([Channel::Email]),
            audience: Audience::Hcp,
            claims: BTreeMap::from([("c1".into(), "NEJM 2025;392:1".into())]),
            disclaimers: vec!["Rx only".into()],
            isi: Some("Important safety information".into()),
            expires_at: Some(NOW + 30 * DAY),
        },
    }
}

fn prescreen() -> NewPreScreen {
    NewPreScreen {
        policy_version: "p".repeat(64),
        report: serde_json::json!({"verdict": "allow", "results": []}),
    }
}

fn in_review(s: &SqliteStore) -> VersionHash {
    let v = s
        .put_version("alice", "launch-email", &body("New data"))
        .unwrap();
    s.submit_for_review("alice", &v, &prescreen()).unwrap();
    v
}

fn approved(s: &SqliteStore) -> VersionHash {
    let v = in_review(s);
    s.sign_off("mel", &v, ReviewRole::Medical).unwrap();
    s.sign_off("lea", &v, ReviewRole::Legal).unwrap();
    s.sign_off("reg", &v, ReviewRole::Regulatory).unwrap();
    v
}

fn state(s: &SqliteStore, v: &VersionHash) -> ContentState {
    s.version(v).unwrap().unwrap().state
}

#[test]
fn a_version_id_is_the_sha256_of_its_canonical_body_and_storing_it_again_is_a_no_op() {
    let s = open();
    let v = s
        .put_version("alice", "launch-email", &body("New data"))
        .unwrap();
    assert_eq!(v, body("New data").version_hash().unwrap());
    assert_eq!(
        s.put_version("alice", "launch-email", &body("New data"))
            .unwrap(),
        v
    );
    let stored = s.version(&v).unwrap().unwrap();
    assert_eq!(
        (stored.state, stored.author.as_str(), stored.body),
        (ContentState::Draft, "alice", body("New data"))
    );
    assert_eq!(s.audit_entries(1, 10).unwrap().len(), 1);
}

#[test]
fn editing_makes_a_new_current_version_and_leaves_the_old_one_as_it_was() {
    let s = open();
    let v1 = s
        .put_version("alice", "launch-email", &body("New data"))
        .unwrap();
    let v2 = s
        .put_version("bob", "launch-email", &body("New data, revised"))
        .unwrap();
    assert_ne!(v1, v2);
    assert_eq!(s.current_version("launch-email").unwrap(), Some(v2));
    assert_eq!(s.version(&v1).unwrap().unwrap().body, body("New data"));
}

#[test]
fn one_sign_off_per_required_role_by_distinct_reviewers_approves() {
    let s = open();
    let v = in_review(&s);
    let out = s.sign_off("mel", &v, ReviewRole::Medical).unwrap();
    assert_eq!(
        (out.state, out.missing),
        (
            ContentState::InReview,
            vec![ReviewRole::Legal, ReviewRole::Regulatory]
        )
    );
    s.sign_off("lea", &v, ReviewRole::Legal).unwrap();
    let out = s.sign_off("reg", &v, ReviewRole::Regulatory).unwrap();
    assert_eq!(out.state, ContentState::Approved);
    assert_eq!(state(&s, &v), ContentState::Approved);
    let signed = s.sign_offs(&v).unwrap();
    assert_eq!(signed.len(), 3);
    assert!(signed.iter().all(|x| x.version == v));
    let actions: Vec<_> = s
        .audit_entries(1, 100)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        [
            "content.draft",
            "content.in-review",
            "content.sign-off",
            "content.sign-off",
            "content.sign-off",
            "content.approved"
        ]
    );
}

#[test]
fn the_author_cannot_sign_off_their_own_version() {
    let s = open();
    let v = in_review(&s);
    let err = s.sign_off("alice", &v, ReviewRole::Medical).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("`alice` wrote content version `{v}` and cannot review it")
    );
    assert!(s.sign_offs(&v).unwrap().is_empty());
}

#[test]
fn the_author_cannot_request_changes_either_and_nothing_changes() {
    let s = open();
    let v = in_review(&s);
    let err = s
        .request_changes("alice", &v, ReviewRole::Legal, "x")
        .unwrap_err();
    assert!(matches!(err, StoreError::AuthorCannotReview { .. }));
    assert_eq!(state(&s, &v), ContentState::InReview);
}

#[test]
fn one_person_cannot_sign_two_roles_and_a_role_cannot_be_signed_twice() {
    let s = open();
    let v = in_review(&s);
    s.sign_off("mel", &v, ReviewRole::Medical).unwrap();
    let err = s
        .sign_off("mel", &v, ReviewRole::Legal)
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with("`mel` already signed as `medical`; each role needs a different person"),
        "{err}"
    );
    let err = s
        .sign_off("max", &v, ReviewRole::Medical)
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with("role `medical` was already signed by `mel`"),
        "{err}"
    );
}

#[test]
fn a_role_that_the_market_does_not_require_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = StoreOptions::new(dir.path());
    options.approval = ApprovalPolicy {
        default_roles: BTreeSet::from([
            ReviewRole::Medical,
            ReviewRole::Legal,
            ReviewRole::Regulatory,
        ]),
        per_market: BTreeMap::from([(
            "US".into(),
            BTreeSet::from([ReviewRole::Medical, ReviewRole::Legal]),
        )]),
    };
    let s = SqliteStore::open(options).unwrap();
    let v = in_review(&s);
    let err = s.sign_off("reg", &v, ReviewRole::Regulatory).unwrap_err();
    assert!(matches!(err, StoreError::RoleNotRequired { .. }));
    assert!(
        err.to_string().ends_with("(required: `medical`, `legal`)"),
        "{err}"
    );
    s.sign_off("mel", &v, ReviewRole::Medical).unwrap();
    assert_eq!(
        s.sign_off("lea", &v, ReviewRole::Legal).unwrap().state,
        ContentState::Approved
    );
}

#[test]
fn signing_a_hash_that_is_not_the_current_version_is_refused() {
    let s = open();
    let v1 = in_review(&s);
    let v2 = s
        .put_version("alice", "launch-email", &body("Edited during review"))
        .unwrap();
    let err = s.sign_off("mel", &v1, ReviewRole::Medical).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "content version `{v1}` is not the current version of item `launch-email` (current: `{v2}`)"
        )
    );
    let unknown = VersionHash("0".repeat(64));
    assert!(matches!(
        s.sign_off("mel", &unknown, ReviewRole::Medical),
        Err(StoreError::UnknownVersion(_))
    ));
}

#[test]
fn a_draft_cannot_be_signed_and_an_approved_version_cannot_be_resubmitted() {
    let s = open();
    let v = s
        .put_version("alice", "launch-email", &body("New data"))
        .unwrap();
    let err = s.sign_off("mel", &v, ReviewRole::Medical).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("cannot sign off content version `{v}`: it is draft")
    );
    let v = approved(&s);
    assert!(matches!(
        s.submit_for_review("alice", &v, &prescreen()),
        Err(StoreError::NotCurrentVersion { .. }) | Err(StoreError::WrongState { .. })
    ));
}

#[test]
fn requested_changes_end_the_review_of_that_version() {
    let s = open();
    let v = in_review(&s);
    s.request_changes(
        "lea",
        &v,
        ReviewRole::Legal,
        "claim c1 needs a newer citation",
    )
    .unwrap();
    assert_eq!(state(&s, &v), ContentState::ChangesRequested);
    assert!(matches!(
        s.sign_off("mel", &v, ReviewRole::Medical),
        Err(StoreError::WrongState { .. })
    ));
    let last = s.audit_entries(1, 100).unwrap().pop().unwrap();
    assert!(last.payload.contains("newer citation"));
}

#[test]
fn approved_versions_expire_on_their_date_or_when_withdrawn() {
    let s = open();
    let v = approved(&s);
    assert!(s.expire_due("scheduler", NOW).unwrap().is_empty());
    assert_eq!(
        s.expire_due("scheduler", NOW + 30 * DAY).unwrap(),
        vec![v.clone()]
    );
    assert_eq!(state(&s, &v), ContentState::Expired);
    assert!(matches!(
        s.withdraw("alice", &v, "too late"),
        Err(StoreError::WrongState { .. })
    ));

    let v2 = s.put_version("alice", "other", &body("Other")).unwrap();
    s.submit_for_review("alice", &v2, &prescreen()).unwrap();
    for (who, role) in [
        ("mel", ReviewRole::Medical),
        ("lea", ReviewRole::Legal),
        ("reg", ReviewRole::Regulatory),
    ] {
        s.sign_off(who, &v2, role).unwrap();
    }
    s.withdraw("compliance", &v2, "label change").unwrap();
    assert_eq!(state(&s, &v2), ContentState::Withdrawn);
    assert!(s.verify_audit().unwrap().is_intact());
}

#[test]
fn a_stored_body_edited_behind_the_registry_is_detected_on_load() {
    let s = open();
    let v = s
        .put_version("alice", "launch-email", &body("New data"))
        .unwrap();
    let raw = s.raw();
    raw.execute_batch("DROP TRIGGER content_version_immutable")
        .unwrap();
    raw.execute(
        "UPDATE content_version SET body = replace(body, 'New data', 'Cures all')",
        [],
    )
    .unwrap();
    let err = s.version(&v).unwrap_err().to_string();
    assert!(err.contains("does not match its stored body"), "{err}");
    let raw2 = s.raw();
    assert!(raw2.execute("DELETE FROM content_version", []).is_err());
}

#[test]
fn bad_content_input_is_refused_and_changes_nothing() {
    let s = open();
    let mut b = body("New data");
    b.variants.insert(
        Channel::Sms,
        BTreeMap::from([("text".into(), "short".into())]),
    );
    let err = s
        .put_version("alice", "launch-email", &b)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "content item `launch-email`: a variant for channel `sms`, which metadata.channels does not list; nothing was stored"
    );
    assert_eq!(s.current_version("launch-email").unwrap(), None);
    assert!(s.audit_entries(1, 10).unwrap().is_empty());
}

#[test]
fn the_pre_screen_is_recorded_with_the_submission_and_vouched_for_in_the_audit_log() {
    let s = open();
    let v = s
        .put_version("alice", "launch-email", &body("New data"))
        .unwrap();
    assert_eq!(s.prescreen(&v).unwrap(), None);
    let report = serde_json::json!({"verdict": "block", "blocking_rules": ["absolute-cure"]});
    let ps = NewPreScreen {
        policy_version: "f".repeat(64),
        report: report.clone(),
    };
    s.submit_for_review("alice", &v, &ps).unwrap();
    let stored = s.prescreen(&v).unwrap().unwrap();
    assert_eq!(stored.report, report);
    assert_eq!(stored.policy_version, "f".repeat(64));
    assert_eq!(stored.submitted_by, "alice");
    let last = s.audit_entries(1, 100).unwrap().pop().unwrap();
    assert_eq!(last.action, "content.in-review");
    assert!(last.payload.contains(&stored.sha256), "{}", last.payload);

    // A refused submission records no pre-screen and no audit entry.
    let before = s.audit_entries(1, 100).unwrap().len();
    assert!(matches!(
        s.submit_for_review("alice", &v, &ps),
        Err(StoreError::WrongState { .. })
    ));
    assert_eq!(s.audit_entries(1, 100).unwrap().len(), before);
    assert_eq!(s.prescreen(&v).unwrap().unwrap().sha256, stored.sha256);

    // Recorded pre-screens cannot be changed behind the registry.
    let raw = s.raw();
    assert!(
        raw.execute("UPDATE content_prescreen SET report = '{}'", [])
            .is_err()
    );
    assert!(raw.execute("DELETE FROM content_prescreen", []).is_err());
}

#[test]
fn an_items_versions_are_listed_oldest_first() {
    let s = open();
    let v1 = s
        .put_version("alice", "launch-email", &body("New data"))
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2));
    let v2 = s
        .put_version("bob", "launch-email", &body("New data, revised"))
        .unwrap();
    s.put_version("alice", "other", &body("Other")).unwrap();
    let listed: Vec<VersionHash> = s
        .versions_of("launch-email")
        .unwrap()
        .into_iter()
        .map(|v| v.hash)
        .collect();
    assert_eq!(listed, [v1, v2]);
    assert!(s.versions_of("nothing").unwrap().is_empty());
}
