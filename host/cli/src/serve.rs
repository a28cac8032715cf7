//! `omnigate serve`: the host process: the HTTP API, and on their own
//! threads the journey worker and the campaign runner (which runs the
//! campaigns started through the API or with `campaign start --no-run`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use omnigate_api::orchestration::Orchestration;
use omnigate_api::{AppState, router};
use omnigate_core::store::AuditStore;
use omnigate_engine::{Campaigns, JourneyOptions, Journeys, RunOptions, Runner, Sender};
use omnigate_gate::Gate;
use omnigate_policy::PolicyHandle;
use omnigate_runtime::{Runtime, RuntimeConfig};
use omnigate_store::{SqliteStore, StoreOptions};
use tracing::{error, info, warn};

/// Options of `omnigate serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the chosen address is
    /// printed on standard output).
    #[arg(long, env = "OMNIGATE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Data directory (created if missing): the store and the compile cache.
    #[arg(long, env = "OMNIGATE_DATA_DIR", default_value = "omnigate-data")]
    data_dir: PathBuf,
    /// Folder of packaged plugins: `<name>.toml` manifests beside their `.wasm`.
    #[arg(long, env = "OMNIGATE_PLUGINS", default_value = "target/plugins")]
    plugins: PathBuf,
    /// Folder of policy files.
    #[arg(long, env = "OMNIGATE_POLICIES", default_value = "policies")]
    policies: PathBuf,
    /// Log format on standard error.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Runs the host until SIGINT or SIGTERM. SIGHUP reloads plugins and
/// policies; a failed reload keeps what runs and logs why.
pub fn run(args: ServeArgs) -> Result<()> {
    init_logging(args.log_format);
    std::fs::create_dir_all(&args.data_dir).with_context(|| {
        format!(
            "cannot create the data directory `{}`",
            args.data_dir.display()
        )
    })?;

    // The embedded store: created and migrated on first start.
    let sqlite = Arc::new(
        SqliteStore::open(StoreOptions::new(&args.data_dir))
            .with_context(|| format!("cannot open the store in `{}`", args.data_dir.display()))?,
    );
    let store = sqlite.clone();
    let audit = store.verify_audit().context("cannot read the audit log")?;
    match &audit.broken {
        None => info!(entries = audit.entries, "store open, audit chain intact"),
        Some(b) => {
            warn!(seq = b.seq, problem = %b.problem, "store open, AUDIT CHAIN BROKEN: run `omnigate audit verify`")
        }
    }

    // INVARIANT: an adapter's HTTP request leaves only for a dispatch the
    // gate cleared, carrying only the texts it screened.
    let clearance = omnigate_gate::egress::Clearance::new();
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(args.data_dir.join("cache")),
        egress: Arc::new(omnigate_engine::GateInspector(clearance.clone())),
        ..RuntimeConfig::default()
    })
    .context("cannot start the plugin runtime")?;
    let plugins = runtime
        .registry()
        .load_dir(&args.plugins)
        .with_context(|| {
            format!(
                "cannot load the plugins in `{}` (build them with `cargo xtask plugins`)",
                args.plugins.display()
            )
        })?;
    for p in &plugins {
        let m = p.manifest();
        info!(plugin = %m.name, version = %m.version, kind = %m.kind, "plugin ready");
    }

    let policy = Arc::new(PolicyHandle::empty());
    let version = policy.reload(&args.policies).map_err(|diagnostics| {
        anyhow::anyhow!(
            "the policies in `{}` do not load:\n{diagnostics}",
            args.policies.display()
        )
    })?;
    info!(policy_version = %version, "policies loaded");
    apply_review_roles(&policy, &sqlite);
    // The service shares the policy handle that SIGHUP reloads, so a
    // submission is pre-screened with the policy in force at that moment.
    let store: Arc<dyn omnigate_core::Store> = store;
    let service = Arc::new(omnigate_service::Service::new(
        store.clone(),
        policy.clone(),
    ));

    // The journey worker: fires journeys on new events (from the API, the
    // CLI, webhooks) and sends their due actions through the gate.
    let sender = Sender::new(
        Gate::new(policy.clone(), store.clone()),
        store.clone(),
        clearance.clone(),
        "journeys",
    );
    let journeys =
        Journeys::new(store.clone(), JourneyOptions::default()).with_sender(sender.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let (runtime, stop, journeys) = (runtime.clone(), stop.clone(), journeys.clone());
        std::thread::Builder::new()
            .name("journeys".into())
            .spawn(move || journeys.run(&|| runtime.registry().list(), &stop))
            .context("cannot start the journey worker")?
    };
    // The campaign runner: runs campaigns started through the API (woken at
    // once) or with `campaign start --no-run`, and resumes one whose process
    // died once its lease lapses. It is not joined on shutdown: a run
    // stopped anywhere resumes safely. Its dispatches go through the gate
    // and the same egress clearance, recorded under its own actor.
    let sender = Sender::new(
        Gate::new(policy.clone(), store.clone()),
        store.clone(),
        clearance,
        "campaigns",
    );
    let campaigns = Campaigns::new(
        store.clone(),
        RunOptions {
            actor: "campaigns".into(),
            ..RunOptions::default()
        },
    )
    .with_sender(sender);
    let runner = Runner::new(campaigns.clone());
    let waker = runner.waker();
    {
        let (runtime, stop) = (runtime.clone(), stop.clone());
        std::thread::Builder::new()
            .name("campaigns".into())
            .spawn(move || {
                runner.run(
                    &|| runtime.registry().list(),
                    &stop,
                    std::time::Duration::from_secs(1),
                );
            })
            .context("cannot start the campaign runner")?;
    }
    let state = AppState::new(runtime.clone(), Some(version))
        .with_service(service)
        .with_orchestration(Arc::new(Orchestration {
            campaigns: Arc::new(campaigns),
            journeys: Arc::new(journeys),
            runner: Some(waker.clone()),
        }));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        info!(%addr, data_dir = %args.data_dir.display(), "omnigate serving");
        // Machine-readable: tests and scripts read the address from here.
        println!("omnigate listening on http://{addr}");

        tokio::spawn(reload_on_hangup(
            runtime,
            policy,
            sqlite,
            state.clone(),
            args.plugins.clone(),
            args.policies.clone(),
        ));
        axum::serve(listener, router(state))
            .with_graceful_shutdown(shutdown())
            .await
            .context("the HTTP server failed")?;
        Ok::<(), anyhow::Error>(())
    })?;
    stop.store(true, Ordering::Relaxed);
    waker.wake();
    let _ = worker.join();
    info!("omnigate stopped");
    Ok(())
}

/// The MLR review roles per market, from the policy in force, for the
/// store's sign-offs.
fn apply_review_roles(policy: &PolicyHandle, store: &SqliteStore) {
    if let Some(p) = policy.current() {
        store.set_approval_policy(p.set().approval.clone());
    }
}

async fn shutdown() {
    use tokio::signal::unix::{SignalKind, signal};
    let terminate = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => info!("SIGINT: shutting down"),
        () = terminate => info!("SIGTERM: shutting down"),
    }
}

async fn reload_on_hangup(
    runtime: Runtime,
    policy: Arc<PolicyHandle>,
    store: Arc<SqliteStore>,
    state: AppState,
    plugins: PathBuf,
    policies: PathBuf,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        warn!("cannot listen for SIGHUP: reload by restart only");
        return;
    };
    while hangups.recv().await.is_some() {
        let (runtime, policy, store, state, plugins, policies) = (
            runtime.clone(),
            policy.clone(),
            store.clone(),
            state.clone(),
            plugins.clone(),
            policies.clone(),
        );
        // Loading compiles components: keep it off the async workers.
        let _ = tokio::task::spawn_blocking(move || {
            reload(&runtime, &policy, &store, &state, &plugins, &policies)
        })
        .await;
    }
}

fn reload(
    runtime: &Runtime,
    policy: &PolicyHandle,
    store: &SqliteStore,
    state: &AppState,
    plugins: &Path,
    policies: &Path,
) {
    match runtime.registry().sync_dir(plugins) {
        Ok((loaded, unloaded)) => info!(?loaded, ?unloaded, "SIGHUP: plugins reloaded"),
        Err(e) => error!(error = %e, "SIGHUP: plugin reload failed; the running plugins stay"),
    }
    match policy.reload(policies) {
        Ok(version) => {
            info!(policy_version = %version, "SIGHUP: policies reloaded");
            apply_review_roles(policy, store);
            state.set_policy_version(Some(version));
        }
        Err(diagnostics) => {
            error!(%diagnostics, "SIGHUP: policy reload failed; the previous policy stays in force")
        }
    }
}
