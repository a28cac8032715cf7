//! Compiled components cached on disk by the sha256 of their `.wasm`, so a
//! restart does not recompile.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use tracing::{debug, warn};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where the compiled form of the component with `sha256` lives. The engine's
/// compatibility hash is part of the name: another wasmtime version or
/// configuration never reads this file.
fn entry(dir: &Path, engine: &Engine, sha256: &str) -> PathBuf {
    let mut h = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    dir.join(format!("{sha256}-{:016x}.cwasm", h.finish()))
}

/// Compiles `wasm` (whose sha256 the caller has verified) or loads it from
/// the cache. Returns the component and whether it came from the cache.
pub(crate) fn compile(
    engine: &Engine,
    wasm: &[u8],
    sha256: &str,
    dir: Option<&Path>,
) -> wasmtime::Result<(Component, bool)> {
    let Some(dir) = dir else {
        return Ok((Component::new(engine, wasm)?, false));
    };
    let path = entry(dir, engine, sha256);
    if path.exists() {
        match load(engine, &path) {
            Ok(component) => return Ok((component, true)),
            // A damaged entry is compiled again and overwritten.
            Err(e) => warn!(path = %path.display(), error = %e, "ignoring unreadable cache entry"),
        }
    }
    let component = Component::new(engine, wasm)?;
    if let Err(e) = store(&component, dir, &path) {
        warn!(path = %path.display(), error = %e, "could not write the compile cache");
    } else {
        debug!(path = %path.display(), "cached compiled component");
    }
    Ok((component, false))
}

#[expect(
    unsafe_code,
    reason = "deserializing runs native code: the file is one this host wrote, named by the \
              sha256 of a .wasm whose hash was checked, in a cache folder only this host writes"
)]
fn load(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // Read into memory rather than map the file: a cache file truncated
    // under a mapping would crash the host (SIGBUS).
    let bytes = std::fs::read(path)?;
    // SAFETY: see the reason above; wasmtime also checks that the bytes were
    // produced by a compatible engine and refuses them otherwise.
    unsafe { Component::deserialize(engine, bytes) }
}

fn store(component: &Component, dir: &Path, path: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let bytes = component
        .serialize()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    // Write then rename: a crash never leaves a half-written entry behind.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
