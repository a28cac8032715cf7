//! Memory, table and instance limits of one store.

use wasmtime::ResourceLimiter;

/// A memory growth past the limit, carried as the trap's error so that the
/// host can tell it from other traps.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit_mib} MiB reached")]
pub(crate) struct MemoryLimitHit {
    pub limit_mib: u32,
}

/// Bounds the plugin's linear memory (all memories together), its tables and
/// the number of instances, memories and tables it may create.
pub(crate) struct Limiter {
    pub memory_limit: usize,
    pub limit_mib: u32,
}

/// Largest table a plugin may grow (function references, resources).
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            // An error, not `Ok(false)`: a failed grow would let the guest
            // carry on and abort later with an unrelated trap.
            return Err(wasmtime::Error::new(MemoryLimitHit {
                limit_mib: self.limit_mib,
            }));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        // A component made by wit-bindgen has a handful of core instances.
        64
    }

    fn tables(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        8
    }
}
