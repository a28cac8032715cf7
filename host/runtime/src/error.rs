//! Errors of loading and calling plugins.

use std::path::PathBuf;
use std::time::Duration;

/// A plugin could not be loaded. Nothing was changed: a plugin that fails to
/// load never replaces one that is running.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file could not be read.
    #[error("cannot read `{}`: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The manifest is malformed or asks for something not allowed.
    #[error("invalid plugin manifest `{}`: {message}", path.display())]
    Manifest {
        /// The manifest, with `:line:column` when known.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The component file is not the one the manifest pins.
    #[error(
        "sha256 of `{}` is {actual} but the manifest `{}` pins {expected}; refusing to load",
        component.display(),
        manifest.display()
    )]
    HashMismatch {
        /// The manifest.
        manifest: PathBuf,
        /// The component file.
        component: PathBuf,
        /// The sha256 in the manifest.
        expected: String,
        /// The sha256 of the file.
        actual: String,
    },
    /// The file is not WebAssembly at all.
    #[error("`{}` is not a WebAssembly file (it does not start with `\\0asm`)", path.display())]
    NotWasm {
        /// The file.
        path: PathBuf,
    },
    /// The file is a core module, not a component.
    #[error(
        "`{}` is a core WebAssembly module, not a component: build the plugin for the `wasm32-wasip2` target",
        path.display()
    )]
    CoreModule {
        /// The file.
        path: PathBuf,
    },
    /// The component does not fit the world its manifest names.
    #[error("`{}` is not a {world} plugin: {message}", path.display())]
    WrongWorld {
        /// The component file.
        path: PathBuf,
        /// The world the manifest names.
        world: &'static str,
        /// What does not fit.
        message: String,
    },
    /// Wasmtime could not compile or instantiate the component.
    #[error("cannot load `{}`: {message}", path.display())]
    Compile {
        /// The component file.
        path: PathBuf,
        /// Wasmtime's explanation.
        message: String,
    },
    /// The plugin failed its first call (`describe`) or describes itself
    /// differently from its manifest.
    #[error("plugin `{plugin}` failed its self-description: {message}")]
    Describe {
        /// The manifest's plugin name.
        plugin: String,
        /// What went wrong.
        message: String,
    },
    /// Two manifests in one folder name the same plugin.
    #[error("plugin `{plugin}` is defined twice: `{}` and `{}`", first.display(), second.display())]
    Duplicate {
        /// The plugin name.
        plugin: String,
        /// The first manifest.
        first: PathBuf,
        /// The second manifest.
        second: PathBuf,
    },
}

/// A call into a plugin failed. Only that call is affected: the host, the
/// plugin's other calls and every other plugin keep serving.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("plugin `{plugin}` failed in `{call}`: {cause}")]
pub struct CallError {
    /// The plugin's name.
    pub plugin: String,
    /// The exported function that was called.
    pub call: &'static str,
    /// What happened.
    pub cause: CallFailure,
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallFailure {
    /// The call ran past its time limit and was interrupted.
    #[error("ran out of time (limit {} ms)", limit.as_millis())]
    Timeout {
        /// The manifest's limit.
        limit: Duration,
    },
    /// The plugin tried to use more memory than its limit.
    #[error("exceeded its memory limit of {limit_mib} MiB")]
    MemoryLimit {
        /// The manifest's limit.
        limit_mib: u32,
    },
    /// The plugin overflowed its call stack (runaway recursion).
    #[error("overflowed its stack")]
    StackOverflow,
    /// The plugin panicked. The message has contact details removed.
    #[error("panicked: {message}")]
    Panic {
        /// The panic message the plugin wrote to stderr, redacted.
        message: String,
    },
    /// Any other trap (an out-of-bounds access, an unreachable, ...).
    #[error("trapped: {message}")]
    Trap {
        /// Wasmtime's description, redacted.
        message: String,
    },
    /// The plugin returned something the contract does not allow.
    #[error("returned invalid output: {message}")]
    InvalidOutput {
        /// What was wrong.
        message: String,
    },
    /// A fresh instance could not be created.
    #[error("could not be instantiated: {message}")]
    Instantiate {
        /// Wasmtime's description.
        message: String,
    },
}

/// The runtime could not start (engine, linker or epoch ticker).
#[derive(Debug, thiserror::Error)]
#[error("cannot start the plugin runtime: {0}")]
pub struct StartError(pub String);
