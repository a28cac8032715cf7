//! One wasmtime engine, one linker per world, the epoch ticker that enforces
//! time limits, and the plugin registry.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine};

use crate::bindings::adapter::omnigate::plugin::config;
use crate::egress::{AllowListed, EgressInspector};
use crate::error::{LoadError, StartError};
use crate::manifest::Manifest;
use crate::plugin::Plugin;
use crate::registry::Registry;
use crate::state::PluginState;

/// How the runtime is set up.
#[derive(Clone)]
pub struct RuntimeConfig {
    /// Where compiled components are cached by sha256; `None` compiles on
    /// every load.
    pub cache_dir: Option<PathBuf>,
    /// Sees every outgoing HTTP request that passed the host allow-list.
    pub egress: Arc<dyn EgressInspector>,
    /// Granularity of time limits.
    pub epoch_tick: Duration,
    /// Idle instances kept per plugin for reuse.
    pub max_idle_instances: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: None,
            egress: Arc::new(AllowListed),
            epoch_tick: Duration::from_millis(5),
            max_idle_instances: 8,
        }
    }
}

impl std::fmt::Debug for RuntimeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeConfig")
            .field("cache_dir", &self.cache_dir)
            .field("epoch_tick", &self.epoch_tick)
            .field("max_idle_instances", &self.max_idle_instances)
            .finish_non_exhaustive()
    }
}

/// What every plugin of one runtime shares.
pub(crate) struct Shared {
    pub engine: Engine,
    pub adapter_linker: Linker<PluginState>,
    pub scorer_linker: Linker<PluginState>,
    pub config: RuntimeConfig,
    /// Dropped with the runtime, which stops the epoch ticker.
    _alive: Arc<()>,
}

/// The plugin runtime. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    shared: Arc<Shared>,
    registry: Arc<Registry>,
}

impl Runtime {
    /// Creates the engine and linkers and starts the epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Runtime, StartError> {
        Runtime::build(config).map_err(|e| StartError(format!("{e:#}")))
    }

    fn build(config: RuntimeConfig) -> Result<Runtime, wasmtime::Error> {
        let mut wasm = Config::new();
        wasm.wasm_component_model(true);
        // Time limits: epoch interruption costs ~10% on a short call where
        // fuel metering can double it (README, Performance).
        wasm.epoch_interruption(true);
        wasm.parallel_compilation(true);
        let engine = Engine::new(&wasm)?;

        let mut adapter_linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut adapter_linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut adapter_linker)?;
        config::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut adapter_linker, |s| s)?;

        // A scoring model is pure: no wasi:http in its linker at all.
        let mut scorer_linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut scorer_linker)?;
        config::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut scorer_linker, |s| s)?;

        let alive = Arc::new(());
        start_ticker(engine.clone(), Arc::downgrade(&alive), config.epoch_tick)?;

        let shared = Arc::new(Shared {
            engine,
            adapter_linker,
            scorer_linker,
            config,
            _alive: alive,
        });
        let registry = Arc::new(Registry::new(shared.clone()));
        Ok(Runtime { shared, registry })
    }

    /// The plugins loaded into this runtime.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Loads the plugin of the manifest at `path` without registering it.
    pub fn load(&self, path: &Path) -> Result<Plugin, LoadError> {
        let manifest = Manifest::load(path)?;
        Plugin::load(&self.shared, manifest)
    }

    /// Compiles `wasm` and reads its imports and exports, without running it.
    pub fn shape_of(&self, wasm: &[u8]) -> Result<crate::inspect::ComponentShape, wasmtime::Error> {
        let component = wasmtime::component::Component::new(&self.shared.engine, wasm)?;
        Ok(crate::inspect::ComponentShape::of(
            &self.shared.engine,
            &component,
        ))
    }

    /// The wasmtime engine (for inspection and benchmarks).
    pub fn engine(&self) -> &Engine {
        &self.shared.engine
    }
}

/// Advances the engine's epoch every `tick`, until the runtime is dropped.
fn start_ticker(engine: Engine, alive: Weak<()>, tick: Duration) -> Result<(), wasmtime::Error> {
    std::thread::Builder::new()
        .name("omnigate-epoch".into())
        .spawn(move || {
            while alive.strong_count() > 0 {
                std::thread::sleep(tick);
                engine.increment_epoch();
            }
        })
        .map_err(|e| wasmtime::Error::msg(format!("cannot start the epoch ticker: {e}")))?;
    Ok(())
}
