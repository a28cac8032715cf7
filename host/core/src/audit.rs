//! The audit trail: an append-only, hash-chained log of every change.
//!
//! Entry `n` carries `hash = sha256(prev_hash || canonical(entry))`, where
//! `prev_hash` is the hash of entry `n - 1` (64 zeros for the first) and the
//! canonical form is the canonical JSON of `{seq, at, actor, action, subject,
//! payload}` with the payload as stored. Editing, deleting or reordering an
//! entry breaks the chain at that entry; [`verify_chain`] finds the first
//! break. Cutting entries off the end leaves a valid but shorter chain: keep
//! the [`AuditHead`] somewhere else and compare (see [`AuditReport::head`]).
//!
//! INVARIANT: payloads never hold contact details; they name HCPs by id.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::canonical::{sha256_hex, to_canonical_json};
use crate::event::UnixMillis;

/// The `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A change to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEntry {
    /// Who made the change (user id, system name).
    pub actor: String,
    /// What kind of change, e.g. `consent.record`.
    pub action: String,
    /// What it was made to, e.g. an HCP id or a content version hash.
    pub subject: String,
    /// Details, without contact details.
    pub payload: Value,
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// When it was appended.
    pub at: UnixMillis,
    /// Who made the change.
    pub actor: String,
    /// What kind of change.
    pub action: String,
    /// What it was made to.
    pub subject: String,
    /// Details: canonical JSON text, as hashed.
    pub payload: String,
    /// Hash of the previous entry.
    pub prev_hash: String,
    /// Hash of this entry.
    pub hash: String,
}

/// The hash of an entry with these fields. `payload` is the canonical JSON
/// text as stored.
pub fn entry_hash(
    prev_hash: &str,
    seq: i64,
    at: UnixMillis,
    actor: &str,
    action: &str,
    subject: &str,
    payload: &str,
) -> String {
    // The payload is spliced in as text so that the hash covers exactly the
    // stored bytes; the other fields go through the canonical writer.
    let head = to_canonical_json(&serde_json::json!({
        "action": action, "actor": actor, "at": at, "seq": seq, "subject": subject,
    }));
    let mut canonical = String::with_capacity(prev_hash.len() + head.len() + payload.len() + 12);
    canonical.push_str(prev_hash);
    canonical.push_str(&head[..head.len() - 1]);
    canonical.push_str(",\"payload\":");
    canonical.push_str(payload);
    canonical.push('}');
    sha256_hex(canonical.as_bytes())
}

/// The payload of a gate decision's audit entry: the sha256 of the
/// decision's record, whose canonical JSON is stored in the decision's own
/// row. The chain commits to the record without holding a second copy of
/// it; [`decision_matches`] checks a row against its entry.
pub fn decision_commitment(record_json: &str) -> String {
    // One key and a hex value: this is its canonical JSON.
    format!(
        "{{\"record_sha256\":\"{}\"}}",
        sha256_hex(record_json.as_bytes())
    )
}

/// Whether a decision's stored record is the one its audit entry recorded:
/// the entry holds the record's sha256 ([`decision_commitment`]) or, for
/// entries written before that form, the record itself.
pub fn decision_matches(payload: &str, record_json: &str) -> bool {
    payload == decision_commitment(record_json) || payload == record_json
}

impl NewAuditEntry {
    /// A new entry.
    pub fn new(
        actor: impl Into<String>,
        action: impl Into<String>,
        subject: impl Into<String>,
        payload: Value,
    ) -> Self {
        NewAuditEntry {
            actor: actor.into(),
            action: action.into(),
            subject: subject.into(),
            payload,
        }
    }

    /// The stored entry that follows `prev` (`None` for the first entry).
    pub fn seal(self, prev: Option<&AuditHead>, at: UnixMillis) -> AuditEntry {
        let (seq, prev_hash) = match prev {
            Some(head) => (head.seq + 1, head.hash.clone()),
            None => (1, GENESIS_HASH.to_owned()),
        };
        let payload = to_canonical_json(&self.payload);
        let hash = entry_hash(
            &prev_hash,
            seq,
            at,
            &self.actor,
            &self.action,
            &self.subject,
            &payload,
        );
        AuditEntry {
            seq,
            at,
            actor: self.actor,
            action: self.action,
            subject: self.subject,
            payload,
            prev_hash,
            hash,
        }
    }
}

/// The last entry of a chain: keep it elsewhere to detect a cut-off tail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    /// Its seq.
    pub seq: i64,
    /// Its hash.
    pub hash: String,
}

/// What is wrong at the first broken entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum ChainProblem {
    /// An entry is missing or out of place.
    #[error("expected entry {expected} here, found entry {found}")]
    SeqGap {
        /// The seq that should come next.
        expected: i64,
        /// The seq found.
        found: i64,
    },
    /// The entry does not point at the hash of the one before it.
    #[error("prev_hash `{found}` is not the hash of the previous entry `{expected}`")]
    PrevHashMismatch {
        /// The previous entry's hash.
        expected: String,
        /// The entry's prev_hash.
        found: String,
    },
    /// The entry's content does not match its hash.
    #[error("content does not match its hash: stored `{stored}`, computed `{computed}`")]
    HashMismatch {
        /// The stored hash.
        stored: String,
        /// The hash of the stored content.
        computed: String,
    },
    /// A gate decision's stored record is not the one its audit entry
    /// recorded, or the decision has no audit entry (then the break's `seq`
    /// is 0).
    #[error("gate decision `{decision}`: {reason}")]
    DecisionMismatch {
        /// The decision's id.
        decision: String,
        /// What does not match.
        reason: String,
    },
}

/// The first broken entry of a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("audit chain broken at entry {seq}: {problem}")]
pub struct ChainBreak {
    /// The seq of the row where the break shows (for a gap, the row after it).
    pub seq: i64,
    /// What is wrong.
    pub problem: ChainProblem,
}

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditReport {
    /// Entries checked.
    pub entries: u64,
    /// The last entry checked, if any.
    pub head: Option<AuditHead>,
    /// The first break, if any; checking stops there.
    pub broken: Option<ChainBreak>,
}

impl AuditReport {
    /// Whether the chain is intact.
    pub fn is_intact(&self) -> bool {
        self.broken.is_none()
    }
}

/// Checks entries in stored order (ascending seq).
pub struct ChainVerifier {
    report: AuditReport,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainVerifier {
    /// A verifier at the start of the chain.
    pub fn new() -> Self {
        ChainVerifier {
            report: AuditReport {
                entries: 0,
                head: None,
                broken: None,
            },
        }
    }

    /// Checks the next entry; returns `false` once the chain is broken (stop
    /// feeding then).
    pub fn push(&mut self, e: &AuditEntry) -> bool {
        if self.report.broken.is_some() {
            return false;
        }
        let (expected_seq, expected_prev) = match &self.report.head {
            Some(h) => (h.seq + 1, h.hash.as_str()),
            None => (1, GENESIS_HASH),
        };
        let problem = if e.seq != expected_seq {
            Some(ChainProblem::SeqGap {
                expected: expected_seq,
                found: e.seq,
            })
        } else if e.prev_hash != expected_prev {
            Some(ChainProblem::PrevHashMismatch {
                expected: expected_prev.to_owned(),
                found: e.prev_hash.clone(),
            })
        } else {
            let computed = entry_hash(
                &e.prev_hash,
                e.seq,
                e.at,
                &e.actor,
                &e.action,
                &e.subject,
                &e.payload,
            );
            (computed != e.hash).then(|| ChainProblem::HashMismatch {
                stored: e.hash.clone(),
                computed,
            })
        };
        if let Some(problem) = problem {
            self.report.broken = Some(ChainBreak {
                seq: e.seq,
                problem,
            });
            return false;
        }
        self.report.entries += 1;
        self.report.head = Some(AuditHead {
            seq: e.seq,
            hash: e.hash.clone(),
        });
        true
    }

    /// The outcome so far.
    pub fn finish(self) -> AuditReport {
        self.report
    }
}

/// Checks a whole chain held in memory.
pub fn verify_chain<'a>(entries: impl IntoIterator<Item = &'a AuditEntry>) -> AuditReport {
    let mut v = ChainVerifier::new();
    for e in entries {
        if !v.push(e) {
            break;
        }
    }
    v.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chain(n: i64) -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = Vec::new();
        for i in 0..n {
            let head = out.last().map(|e| AuditHead {
                seq: e.seq,
                hash: e.hash.clone(),
            });
            let entry = NewAuditEntry::new("u1", "test.step", format!("s{i}"), json!({"i": i}));
            out.push(entry.seal(head.as_ref(), 1_000 + i));
        }
        out
    }

    #[test]
    fn an_untouched_chain_verifies_and_reports_its_head() {
        let c = chain(5);
        let r = verify_chain(&c);
        assert!(r.is_intact());
        assert_eq!(r.entries, 5);
        assert_eq!(r.head.unwrap().hash, c[4].hash);
    }

    #[test]
    fn an_edited_payload_breaks_the_chain_at_that_entry() {
        let mut c = chain(5);
        c[2].payload = r#"{"i":99}"#.into();
        let broken = verify_chain(&c).broken.unwrap();
        assert_eq!(broken.seq, 3);
        assert!(matches!(broken.problem, ChainProblem::HashMismatch { .. }));
    }

    #[test]
    fn a_deleted_entry_shows_as_a_gap_at_the_next_one() {
        let mut c = chain(5);
        c.remove(1);
        let broken = verify_chain(&c).broken.unwrap();
        assert_eq!(broken.seq, 3);
        assert_eq!(
            broken.problem,
            ChainProblem::SeqGap {
                expected: 2,
                found: 3
            }
        );
        assert!(
            broken
                .to_string()
                .starts_with("audit chain broken at entry 3: expected entry 2")
        );
    }
}
