//! Compliance policy for omnigate: the policy files in `policies/` become a
//! validated, compiled rule set, and messages are screened against it
//! before anything reaches an HCP.
//!
//! Three steps with their own types, as in Cedar: parse ([`syntax`]: text
//! -> syntax trees, every error with file:line:column), validate
//! ([`validate`]: against the channels, HCP fields, markets, products and
//! label facts the host and the policy know), compile ([`compile`]: terms
//! and the literal atoms of the regular expressions into one Aho-Corasick
//! automaton, each expression run only where one of its atoms occurs, under
//! size limits). Screening ([`screen`]) normalizes first ([`normalize`]) so that
//! obfuscated claims stay blocked, and reports spans in the original text.
//! Everything fails closed: a policy that does not load blocks, an input
//! too large to screen blocks, an unknown context blocks.
//!
//! ```
//! use omnigate_core::Channel;
//! use omnigate_policy::{Audience, Context, Message, Verdict, load_dir};
//!
//! let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
//! let policy = load_dir(&dir).unwrap();
//! let ctx = Context::new("US", Channel::Email, Audience::Hcp);
//! let screening = policy
//!     .screen(&Message::text("Cardiozen cures hypertension."), &ctx)
//!     .unwrap();
//! assert_eq!(screening.verdict, Verdict::Block);
//! assert!(screening.rule_ids().contains(&"absolute-cure".to_owned()));
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod cases;
mod checks;
pub mod compile;
pub mod content;
pub mod diag;
pub mod handle;
pub mod html;
pub mod load;
pub mod message;
pub mod model;
pub mod normalize;
pub mod screen;
pub mod syntax;
mod text;
pub mod validate;

pub use cases::{CaseOutcome, TestReport, run_tests};
pub use compile::CompiledPolicy;
pub use diag::{Diagnostic, Diagnostics};
pub use handle::PolicyHandle;
pub use load::{POLICY_FILES, load_dir, load_sources, version_of};
pub use message::{
    Context, Finding, LibraryClaim, Message, Part, PartKind, ScreenError, Screening, Verdict,
};
pub use model::{Audience, FindingKind, PolicySet, Severity};
