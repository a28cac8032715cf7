//! The active policy of a running host, swapped atomically on reload.
//!
//! Screening takes a snapshot (`Arc`) of the active policy, so a reload
//! never disturbs a screening in flight, and requests are not dropped. A
//! reload swaps only when the new set loads completely; otherwise the
//! previous policy stays active and the diagnostics say why.

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwapOption;

use crate::compile::CompiledPolicy;
use crate::diag::Diagnostics;
use crate::load::load_dir;
use crate::message::{Context, Message, Screening};

/// Holds the active compiled policy.
#[derive(Debug, Default)]
pub struct PolicyHandle {
    active: ArcSwapOption<CompiledPolicy>,
}

impl PolicyHandle {
    /// A handle with no policy: every screening blocks until one loads.
    pub fn empty() -> Self {
        PolicyHandle::default()
    }

    /// A handle with `policy` active.
    pub fn new(policy: CompiledPolicy) -> Self {
        PolicyHandle {
            active: ArcSwapOption::from_pointee(policy),
        }
    }

    /// The active policy, if one has loaded.
    pub fn current(&self) -> Option<Arc<CompiledPolicy>> {
        self.active.load_full()
    }

    /// The active policy's version.
    pub fn version(&self) -> Option<String> {
        self.current().map(|p| p.version().to_owned())
    }

    /// Loads `dir` and makes it active; on any error keeps the previous
    /// policy and returns the diagnostics. Returns the new version.
    pub fn reload(&self, dir: &Path) -> Result<String, Diagnostics> {
        let policy = load_dir(dir)?;
        let version = policy.version().to_owned();
        self.active.store(Some(Arc::new(policy)));
        Ok(version)
    }

    /// Screens with the active policy, failing closed: without a policy, or
    /// in a context the policy cannot screen, the message blocks with the
    /// reason.
    pub fn screen(&self, message: &Message, ctx: &Context) -> Screening {
        let Some(policy) = self.current() else {
            return Screening::fail_closed(
                "none",
                "no-policy",
                "no policy is loaded, so nothing can be allowed".to_owned(),
            );
        };
        policy.screen(message, ctx).unwrap_or_else(|e| {
            Screening::fail_closed(policy.version(), "context-error", e.to_string())
        })
    }
}
