//! The sandboxed WebAssembly plugin runtime.
//!
//! Plugins are components of the worlds in `wit/` (`channel-adapter`,
//! `scoring-model`), each with a manifest that holds its whole grant. The
//! runtime refuses a component whose sha256 differs from its manifest, gives
//! it no filesystem, environment, sockets or standard input, lets a channel
//! adapter send HTTP only to the hosts its manifest allows (through one hook
//! that also sees every request body), bounds memory and time on every call,
//! and turns any trap into a typed [`CallError`].
//!
//! ```no_run
//! use omnigate_runtime::{Runtime, RuntimeConfig};
//!
//! let runtime = Runtime::new(RuntimeConfig::default())?;
//! let registry = runtime.registry();
//! registry.load_dir(std::path::Path::new("target/plugins"))?;
//! for plugin in registry.list() {
//!     println!("{} {} ({})", plugin.manifest().name, plugin.manifest().version, plugin.manifest().kind);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod bindings;
mod cache;
pub mod egress;
pub mod error;
pub mod hosts;
pub mod inspect;
mod limits;
pub mod manifest;
mod plugin;
pub mod registry;
mod runtime;
mod state;

pub use bindings::{scoring, types};
pub use egress::{AllowListed, EgressInspector, EgressRequest};
pub use error::{CallError, CallFailure, LoadError, StartError};
pub use manifest::{Limits, Manifest, PluginKind};
pub use plugin::{Outgoing, Plugin};
pub use registry::Registry;
pub use runtime::{Runtime, RuntimeConfig};
