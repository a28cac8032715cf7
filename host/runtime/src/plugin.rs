//! One loaded plugin: its verified, compiled component, a pool of idle
//! instances, and the calls of its world with limits set afresh each time.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use omnigate_core::redact::redact;
use omnigate_core::{Channel, HcpSnapshot};
use sha2::{Digest, Sha256};
use tracing::{debug, warn};
use wasmtime::component::Component;
use wasmtime::{Store, Trap};

use crate::bindings::adapter::{ChannelAdapter, ChannelAdapterPre};
use crate::bindings::scorer::{ScoringModel, ScoringModelPre};
use crate::bindings::{scoring, snapshot_to_wit, types};
use crate::cache;
use crate::egress::{CallInfo, EgressHooks};
use crate::error::{CallError, CallFailure, LoadError};
use crate::inspect::{self, ComponentShape};
use crate::limits::{Limiter, MemoryLimitHit};
use crate::manifest::{Manifest, PluginKind};
use crate::runtime::Shared;
use crate::state::{PluginState, STDERR_CAPACITY};

/// Ids of calls, unique within the process, for logs and the egress hook.
static NEXT_CALL: AtomicU64 = AtomicU64::new(1);

/// Longest rationale or error text a plugin may return, in bytes.
const MAX_TEXT: usize = 4_096;

/// A message to deliver, before the runtime scopes its recipient to the
/// adapter's grant.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The host's id for this dispatch.
    pub dispatch_id: String,
    /// The idempotency key the adapter passes to the provider.
    pub idempotency_key: String,
    /// The recipient, unscoped: [`Plugin::deliver`] scopes it.
    pub recipient: HcpSnapshot,
    /// Id of the approved content version.
    pub content_version_id: String,
    /// Hex sha256 of the approved content version.
    pub content_sha256: String,
    /// The channel.
    pub channel: Channel,
    /// The rendered, gated parts.
    pub parts: types::MessageParts,
}

enum Pre {
    Adapter(ChannelAdapterPre<PluginState>),
    Scorer(ScoringModelPre<PluginState>),
}

enum Bindings {
    Adapter(ChannelAdapter),
    Scorer(ScoringModel),
}

struct Instance {
    store: Store<PluginState>,
    bindings: Bindings,
}

/// A loaded plugin. Calls may run concurrently; each uses its own instance.
pub struct Plugin {
    manifest: Manifest,
    shape: ComponentShape,
    info: types::PluginInfo,
    from_cache: bool,
    shared: Arc<Shared>,
    pre: Pre,
    idle: Mutex<Vec<Instance>>,
    deadline_ticks: u64,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.manifest.name)
            .field("version", &self.manifest.version)
            .field("kind", &self.manifest.kind)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// Verifies, compiles (or loads from the cache) and pre-instantiates the
    /// component of `manifest`, then checks that it describes itself as the
    /// manifest says.
    pub(crate) fn load(shared: &Arc<Shared>, manifest: Manifest) -> Result<Plugin, LoadError> {
        let path = manifest.component_path.clone();
        let wasm = std::fs::read(&path).map_err(|source| LoadError::Io {
            path: path.clone(),
            source,
        })?;
        // INVARIANT: a component whose bytes differ from the manifest's pin
        // never runs, and is not even parsed.
        let actual = hex::encode(Sha256::digest(&wasm));
        if actual != manifest.sha256 {
            return Err(LoadError::HashMismatch {
                manifest: manifest.path.clone(),
                component: path,
                expected: manifest.sha256.clone(),
                actual,
            });
        }
        inspect::check_is_component(&path, &wasm)?;

        let compile_error = |e: wasmtime::Error| LoadError::Compile {
            path: path.clone(),
            message: format!("{e:#}"),
        };
        let (component, from_cache) = cache::compile(
            &shared.engine,
            &wasm,
            &manifest.sha256,
            shared.config.cache_dir.as_deref(),
        )
        .map_err(compile_error)?;
        let shape = ComponentShape::of(&shared.engine, &component);
        shape.check_world(&path, manifest.kind, &manifest.wit)?;

        let pre = match manifest.kind {
            PluginKind::ChannelAdapter => Pre::Adapter(
                ChannelAdapterPre::new(
                    instantiate_pre(shared, &component, manifest.kind).map_err(compile_error)?,
                )
                .map_err(compile_error)?,
            ),
            PluginKind::ScoringModel => Pre::Scorer(
                ScoringModelPre::new(
                    instantiate_pre(shared, &component, manifest.kind).map_err(compile_error)?,
                )
                .map_err(compile_error)?,
            ),
        };
        let tick = shared.config.epoch_tick.as_nanos().max(1);
        let deadline_ticks = u64::try_from(manifest.limits.time.as_nanos().div_ceil(tick))
            .unwrap_or(u64::MAX)
            .saturating_add(1);

        let mut plugin = Plugin {
            manifest,
            shape,
            info: types::PluginInfo {
                name: String::new(),
                version: String::new(),
                description: String::new(),
                channels: Vec::new(),
            },
            from_cache,
            shared: shared.clone(),
            pre,
            idle: Mutex::new(Vec::new()),
            deadline_ticks,
        };
        let describe_error = |message: String| LoadError::Describe {
            plugin: plugin.manifest.name.clone(),
            message,
        };
        let info = plugin
            .describe()
            .map_err(|e| describe_error(e.cause.to_string()))?;
        if info.name != plugin.manifest.name || info.version != plugin.manifest.version {
            return Err(describe_error(format!(
                "it calls itself `{}` {} but its manifest says `{}` {}",
                info.name, info.version, plugin.manifest.name, plugin.manifest.version
            )));
        }
        plugin.info = info;
        debug!(plugin = %plugin.manifest.name, from_cache, "loaded plugin");
        Ok(plugin)
    }

    /// The validated manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// What the plugin says about itself.
    pub fn info(&self) -> &types::PluginInfo {
        &self.info
    }

    /// The component's imports and exports.
    pub fn shape(&self) -> &ComponentShape {
        &self.shape
    }

    /// Whether the compiled component came from the on-disk cache.
    pub fn from_cache(&self) -> bool {
        self.from_cache
    }

    /// Calls `describe`.
    pub fn describe(&self) -> Result<types::PluginInfo, CallError> {
        self.call(
            "describe",
            Arc::from([]),
            |store, bindings| match bindings {
                Bindings::Adapter(b) => b.omnigate_plugin_delivery().call_describe(store),
                Bindings::Scorer(b) => b.omnigate_plugin_scoring().call_describe(store),
            },
        )
    }

    /// Delivers a batch. Each recipient is scoped to the adapter's granted
    /// fields first. Returns one result per message, in order.
    pub fn deliver(
        &self,
        messages: Vec<Outgoing>,
    ) -> Result<Vec<Result<types::DeliveryReceipt, types::PluginError>>, CallError> {
        let dispatch_ids: Arc<[String]> = messages.iter().map(|m| m.dispatch_id.clone()).collect();
        let wit: Vec<types::Message> = messages
            .into_iter()
            .map(|m| types::Message {
                dispatch_id: m.dispatch_id,
                idempotency_key: m.idempotency_key,
                // INVARIANT: the adapter sees only the fields it declares.
                recipient: snapshot_to_wit(m.recipient.scoped_to(&self.manifest.hcp_fields)),
                content_version_id: m.content_version_id,
                content_sha256: m.content_sha256,
                channel: m.channel.into(),
                parts: m.parts,
            })
            .collect();
        let results = self.call(
            "deliver",
            dispatch_ids.clone(),
            |store, bindings| match bindings {
                Bindings::Adapter(b) => b.omnigate_plugin_delivery().call_deliver(store, &wit),
                Bindings::Scorer(_) => Err(wasmtime::Error::msg("not a channel adapter")),
            },
        )?;
        self.check_receipts(&dispatch_ids, &results)
            .map_err(|message| self.invalid("deliver", message))?;
        Ok(results)
    }

    /// Turns a provider callback into engagement events.
    pub fn parse_webhook(
        &self,
        request: types::WebhookRequest,
    ) -> Result<Result<Vec<types::EngagementEvent>, types::PluginError>, CallError> {
        let result = self.call(
            "parse-webhook",
            Arc::from([]),
            |store, bindings| match bindings {
                Bindings::Adapter(b) => b
                    .omnigate_plugin_delivery()
                    .call_parse_webhook(store, &request),
                Bindings::Scorer(_) => Err(wasmtime::Error::msg("not a channel adapter")),
            },
        )?;
        if let Ok(events) = &result {
            for (i, e) in events.iter().enumerate() {
                if e.event_id.is_empty() || e.event_id.len() > 256 {
                    return Err(self.invalid(
                        "parse-webhook",
                        format!(
                            "event {i} has an event id of {} bytes (1 to 256 allowed)",
                            e.event_id.len()
                        ),
                    ));
                }
            }
        }
        Ok(result)
    }

    /// Scores candidate actions for one HCP, scoped to the model's grant.
    pub fn score(
        &self,
        hcp: &HcpSnapshot,
        candidates: Vec<scoring::CandidateAction>,
        goal: scoring::CampaignGoal,
        population: Vec<scoring::ChannelPerformance>,
    ) -> Result<Result<Vec<scoring::ScoredAction>, types::PluginError>, CallError> {
        let ids: HashSet<String> = candidates.iter().map(|c| c.action_id.clone()).collect();
        let request = scoring::ScoreRequest {
            // INVARIANT: the model sees only the fields it declares.
            hcp: snapshot_to_wit(hcp.scoped_to(&self.manifest.hcp_fields)),
            candidates,
            goal,
            population,
        };
        let result = self.call("score", Arc::from([]), |store, bindings| match bindings {
            Bindings::Scorer(b) => b.omnigate_plugin_scoring().call_score(store, &request),
            Bindings::Adapter(_) => Err(wasmtime::Error::msg("not a scoring model")),
        })?;
        if let Ok(scores) = &result {
            check_scores(&ids, scores).map_err(|message| self.invalid("score", message))?;
        }
        Ok(result)
    }

    fn invalid(&self, call: &'static str, message: String) -> CallError {
        warn!(plugin = %self.manifest.name, call, %message, "invalid plugin output");
        CallError {
            plugin: self.manifest.name.clone(),
            call,
            cause: CallFailure::InvalidOutput { message },
        }
    }

    fn check_receipts(
        &self,
        dispatch_ids: &[String],
        results: &[Result<types::DeliveryReceipt, types::PluginError>],
    ) -> Result<(), String> {
        if results.len() != dispatch_ids.len() {
            return Err(format!(
                "{} results for {} messages",
                results.len(),
                dispatch_ids.len()
            ));
        }
        for (i, (result, id)) in results.iter().zip(dispatch_ids).enumerate() {
            if let Ok(receipt) = result {
                if receipt.dispatch_id != *id {
                    return Err(format!(
                        "result {i} is for dispatch `{}` but message {i} is dispatch `{id}`",
                        receipt.dispatch_id
                    ));
                }
                if receipt.provider_message_id.is_empty() || receipt.provider_message_id.len() > 256
                {
                    return Err(format!(
                        "result {i} has a provider message id of {} bytes (1 to 256 allowed)",
                        receipt.provider_message_id.len()
                    ));
                }
            }
        }
        Ok(())
    }

    /// Runs `f` on an idle instance (or a fresh one) under the call limits.
    /// An instance that trapped is dropped, never reused.
    fn call<R>(
        &self,
        call: &'static str,
        dispatch_ids: Arc<[String]>,
        f: impl FnOnce(&mut Store<PluginState>, &Bindings) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        let id = NEXT_CALL.fetch_add(1, Ordering::Relaxed);
        let idle = self.idle.lock().map(|mut idle| idle.pop()).unwrap_or(None);
        let mut instance = match idle {
            Some(instance) => instance,
            None => self.instantiate().map_err(|e| CallError {
                plugin: self.manifest.name.clone(),
                call,
                cause: self.classify(e, ""),
            })?,
        };
        let stderr_before = instance.store.data().stderr.contents().len();
        instance.store.data_mut().hooks.call = CallInfo {
            name: call,
            id,
            dispatch_ids,
        };
        instance.store.set_epoch_deadline(self.deadline_ticks);

        match f(&mut instance.store, &instance.bindings) {
            Ok(value) => {
                let stderr_used = instance.store.data().stderr.contents().len();
                // A healthy instance goes back to the pool, unless its
                // stderr is half full (so a chatty plugin never finds it
                // closed) or the pool is full.
                if stderr_used < STDERR_CAPACITY / 2
                    && let Ok(mut idle) = self.idle.lock()
                    && idle.len() < self.shared.config.max_idle_instances
                {
                    idle.push(instance);
                }
                Ok(value)
            }
            Err(error) => {
                let stderr = instance.store.data().stderr.contents();
                let text = String::from_utf8_lossy(stderr.get(stderr_before..).unwrap_or_default());
                let cause = self.classify(error, &text);
                warn!(plugin = %self.manifest.name, call, call_id = id, %cause, "plugin call failed");
                Err(CallError {
                    plugin: self.manifest.name.clone(),
                    call,
                    cause,
                })
            }
        }
    }

    fn instantiate(&self) -> wasmtime::Result<Instance> {
        let m = &self.manifest;
        let hooks = EgressHooks {
            plugin: Arc::from(m.name.as_str()),
            allowed: Arc::from(m.allowed_outbound_hosts.as_slice()),
            limits: m.limits,
            inspector: self.shared.config.egress.clone(),
            call: CallInfo::default(),
        };
        let limiter = Limiter {
            memory_limit: m.limits.memory_bytes(),
            limit_mib: m.limits.memory_mib,
        };
        let state = PluginState::new(hooks, limiter, Arc::new(m.config.clone()));
        let mut store = Store::new(&self.shared.engine, state);
        store.limiter(|s| &mut s.limiter);
        // Start-up code runs under the same time limit as a call.
        store.set_epoch_deadline(self.deadline_ticks);
        let bindings = match &self.pre {
            Pre::Adapter(pre) => Bindings::Adapter(pre.instantiate(&mut store)?),
            Pre::Scorer(pre) => Bindings::Scorer(pre.instantiate(&mut store)?),
        };
        Ok(Instance { store, bindings })
    }

    /// Turns a wasmtime error into a cause a person can act on.
    fn classify(&self, error: wasmtime::Error, stderr: &str) -> CallFailure {
        if let Some(hit) = error.downcast_ref::<MemoryLimitHit>() {
            return CallFailure::MemoryLimit {
                limit_mib: hit.limit_mib,
            };
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => CallFailure::Timeout {
                limit: self.manifest.limits.time,
            },
            Some(Trap::StackOverflow) => CallFailure::StackOverflow,
            Some(trap) => match panic_message(stderr) {
                Some(message) => CallFailure::Panic { message },
                None => CallFailure::Trap {
                    message: redact(&trap.to_string()).into_owned(),
                },
            },
            None => CallFailure::Trap {
                message: redact(&format!("{error:#}")).into_owned(),
            },
        }
    }
}

fn instantiate_pre(
    shared: &Shared,
    component: &Component,
    kind: PluginKind,
) -> wasmtime::Result<wasmtime::component::InstancePre<PluginState>> {
    match kind {
        PluginKind::ChannelAdapter => shared.adapter_linker.instantiate_pre(component),
        PluginKind::ScoringModel => shared.scorer_linker.instantiate_pre(component),
    }
}

/// The message of a Rust panic as the guest's default hook prints it:
/// `thread '...' panicked at src/lib.rs:1:2:\nthe message`.
fn panic_message(stderr: &str) -> Option<String> {
    let start = stderr.find("panicked at")?;
    let text: String = stderr[start..]
        .lines()
        .filter(|l| !l.starts_with("note: run with `RUST_BACKTRACE"))
        .collect::<Vec<_>>()
        .join(" ");
    let text = redact(text.trim()).into_owned();
    Some(truncate(text, 500))
}

fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

fn check_scores(ids: &HashSet<String>, scores: &[scoring::ScoredAction]) -> Result<(), String> {
    let mut seen = HashSet::new();
    for s in scores {
        if !ids.contains(&s.action_id) {
            return Err(format!(
                "a score for unknown action `{}`",
                truncate(s.action_id.clone(), 64)
            ));
        }
        if !seen.insert(&s.action_id) {
            return Err(format!("two scores for action `{}`", s.action_id));
        }
        if !s.score.is_finite() {
            return Err(format!(
                "score {} for action `{}` is not a finite number",
                s.score, s.action_id
            ));
        }
        if s.rationale.len() > MAX_TEXT {
            return Err(format!(
                "the rationale for action `{}` has {} bytes (at most {MAX_TEXT})",
                s.action_id,
                s.rationale.len()
            ));
        }
    }
    Ok(())
}
