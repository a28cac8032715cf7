//! What a plugin's store holds: its WASI context (empty), its HTTP hooks, its
//! limits and its configuration.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::bindings::adapter::omnigate::plugin::config;
use crate::egress::EgressHooks;
use crate::limits::Limiter;

/// Bytes of stderr kept per instance, for panic messages. An instance that
/// has written half of it is replaced after its call, so that a chatty
/// plugin never sees a closed stderr.
pub(crate) const STDERR_CAPACITY: usize = 64 * 1024;

pub(crate) struct PluginState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    pub hooks: EgressHooks,
    pub limiter: Limiter,
    pub config: Arc<BTreeMap<String, String>>,
    pub stderr: MemoryOutputPipe,
}

impl PluginState {
    pub fn new(
        hooks: EgressHooks,
        limiter: Limiter,
        config: Arc<BTreeMap<String, String>>,
    ) -> PluginState {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        // INVARIANT: deny by default. No preopened directories, no
        // environment, no arguments, stdin closed, stdout discarded, no
        // sockets and no name lookup. HTTP goes only through `hooks`.
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        PluginState {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks,
            limiter,
            config,
            stderr,
        }
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for PluginState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl config::Host for PluginState {
    fn get(&mut self, key: String) -> Option<String> {
        self.config.get(&key).cloned()
    }
}
