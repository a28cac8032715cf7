//! `omnigate campaign ...` and `omnigate report`: create, start (and run),
//! pause, cancel, watch and report campaigns, over the engine's
//! [`Campaigns`], the same implementation the HTTP API uses.
//!
//! Exit status: 0 on success, 1 when a rule refused the change (a state the
//! lifecycle does not allow, a campaign run by another process), 2 on bad
//! input or usage.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use omnigate_core::Store;
use omnigate_core::campaign::{CampaignId, CampaignRecord};
use omnigate_engine::report::{Report, report};
use omnigate_engine::{
    CampaignError, Campaigns, GateInspector, RunEnd, RunOptions, Sender, Status,
};
use omnigate_gate::Gate;
use omnigate_gate::egress::Clearance;
use omnigate_runtime::{Plugin, Runtime, RuntimeConfig};
use omnigate_service::{Location, input};
use serde::Serialize;

use crate::data::{Common, Failure, Format, emit, finish, load_policy, read_definition};

/// `omnigate campaign ...`.
#[derive(Debug, Args)]
pub struct CampaignArgs {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: CampaignCommand,
}

/// Where the plugins and policies a run needs are.
#[derive(Debug, Args)]
pub(crate) struct EngineDirs {
    /// Folder of packaged plugins (the scoring model and channel adapters).
    #[arg(long, env = "OMNIGATE_PLUGINS", default_value = "target/plugins")]
    pub(crate) plugins: PathBuf,
    /// Folder of policy files.
    #[arg(long, env = "OMNIGATE_POLICIES", default_value = "policies")]
    pub(crate) policies: PathBuf,
}

#[derive(Debug, Subcommand)]
enum CampaignCommand {
    /// Store a campaign definition (a JSON file, or `-`) as a draft.
    Create {
        /// The JSON file, or `-` for standard input.
        file: String,
    },
    /// Start (or resume) a campaign and run it here until it completes or
    /// is paused or cancelled, showing progress.
    Start {
        /// The campaign id.
        id: String,
        #[command(flatten)]
        dirs: EngineDirs,
        /// Only mark it started; do not run it in this process.
        #[arg(long)]
        no_run: bool,
        /// How long this run's claim lasts without renewal: after a crash,
        /// the next `start` waits this long before it takes over.
        #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
        lease_seconds: u64,
    },
    /// Pause a campaign: its run stops before its next page (within a
    /// second). `start` resumes it.
    Pause {
        /// The campaign id.
        id: String,
    },
    /// Cancel a campaign for good: queued dispatches are cancelled.
    Cancel {
        /// The campaign id.
        id: String,
        /// Why (recorded in the audit trail).
        #[arg(long)]
        reason: String,
    },
    /// State, counts per outcome, rate and ETA.
    Status {
        /// The campaign id.
        id: String,
    },
    /// Every campaign.
    List,
    /// Members of a campaign, with their outcome and reasons.
    Members {
        /// The campaign id.
        id: String,
        /// Only this outcome (`pending`, `holdout`, `dispatched`,
        /// `suppressed`, `failed`, `unreached`).
        #[arg(long)]
        outcome: Option<String>,
        /// Only after this HCP id (paging).
        #[arg(long)]
        after: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
}

/// `omnigate report ...`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    common: Common,
    /// The campaign id.
    campaign: String,
}

fn campaign_id(id: &str) -> Result<CampaignId, Failure> {
    Ok(omnigate_service::orchestration::campaign_id(
        id,
        &Location::argument("id"),
    )?)
}

/// Maps an engine error to a failure with a stable code.
pub(crate) fn failure(e: CampaignError) -> Failure {
    Failure::Service(omnigate_service::orchestration::campaign_error(e))
}

fn open_store(common: &Common, create: bool) -> Result<Arc<dyn Store>, Failure> {
    common.store(create)
}

/// What a run needs: the store, the gate with its policy, the plugin
/// runtime with the egress hook, the loaded plugins.
pub(crate) struct Engine {
    pub(crate) campaigns: Campaigns,
    pub(crate) sender: Sender,
    pub(crate) plugins: Vec<Arc<Plugin>>,
    // Keeps the plugin runtime (its epoch ticker) alive.
    _runtime: Runtime,
}

pub(crate) fn engine(
    store: Arc<dyn Store>,
    data_dir: &Path,
    dirs: &EngineDirs,
    actor: &str,
    options: RunOptions,
) -> Result<Engine, Failure> {
    let policy = load_policy(&dirs.policies, ", so no dispatch can be gated")?;
    let clearance = Clearance::new();
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(data_dir.join("cache")),
        egress: Arc::new(GateInspector(clearance.clone())),
        ..RuntimeConfig::default()
    })
    .map_err(|e| Failure::Usage(format!("cannot start the plugin runtime: {e}")))?;
    let plugins = runtime.registry().load_dir(&dirs.plugins).map_err(|e| {
        Failure::Usage(format!(
            "cannot load the plugins in `{}` (build them with `cargo xtask plugins`): {e}",
            dirs.plugins.display()
        ))
    })?;
    let gate = Gate::new(policy, store.clone());
    let sender = Sender::new(gate, store.clone(), clearance, actor);
    Ok(Engine {
        campaigns: Campaigns::new(store, options).with_sender(sender.clone()),
        sender,
        plugins,
        _runtime: runtime,
    })
}

/// A progress bar for a run on standard error (drawn only on a terminal).
pub(crate) fn run_bar(format: Format) -> ProgressBar {
    let pb = if format == Format::Json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    if let Ok(style) = ProgressStyle::with_template(
        "{msg:>12} [{bar:30}] {pos}/{len} members  {per_sec}  eta {eta}",
    ) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message("campaign");
    pb
}

/// Moves the bar to a status.
pub(crate) fn show(pb: &ProgressBar, s: &Status) {
    let to_run = s.audience - s.holdout;
    pb.set_length(to_run);
    pb.set_position(to_run.saturating_sub(s.pending));
}

fn status_text(s: &Status) -> String {
    let mut out = format!("campaign {}: {}\n", s.id, s.state);
    if !s.resolved {
        out.push_str("  audience not resolved yet\n");
        return out;
    }
    out.push_str(&format!(
        "  audience {} (holdout {})\n",
        s.audience, s.holdout
    ));
    for (o, n) in &s.outcomes {
        out.push_str(&format!("  {:<11} {n}\n", o.as_str()));
    }
    out.push_str(&format!("  rate        {} members/min", s.rate_per_minute));
    match s.eta_seconds {
        Some(eta) if s.pending > 0 => out.push_str(&format!(", about {eta} s to go\n")),
        _ => out.push('\n'),
    }
    if let Some(l) = &s.runner {
        out.push_str(&format!(
            "  run by      {} (lease until {})\n",
            l.owner, l.until
        ));
    }
    out
}

#[derive(Serialize)]
struct Created<'a> {
    created: bool,
    campaign: &'a CampaignRecord,
}

/// Runs `omnigate campaign ...`.
pub fn campaign(args: CampaignArgs) -> ExitCode {
    let format = args.common.format;
    finish(format, campaign_inner(args))
}

fn campaign_inner(args: CampaignArgs) -> Result<(), Failure> {
    let common = &args.common;
    let format = common.format;
    let options = |actor: &str| RunOptions {
        actor: actor.to_owned(),
        ..RunOptions::default()
    };
    match args.command {
        CampaignCommand::Create { file } => {
            let actor = common.actor()?;
            let def = read_definition(&file, input::campaign_definition)?;
            let store = open_store(common, true)?;
            let campaigns = Campaigns::new(store, options(&actor));
            let (record, created) = campaigns.create(&actor, &def).map_err(failure)?;
            emit(
                format,
                &Created {
                    created,
                    campaign: &record,
                },
                |c| {
                    if c.created {
                        format!(
                            "created campaign {} ({}); start it with `omnigate campaign start {}`\n",
                            c.campaign.definition.id, c.campaign.state, c.campaign.definition.id
                        )
                    } else {
                        format!(
                            "campaign {} already exists with this definition ({}); nothing changed\n",
                            c.campaign.definition.id, c.campaign.state
                        )
                    }
                },
            )
        }
        CampaignCommand::Start {
            id,
            dirs,
            no_run,
            lease_seconds,
        } => {
            let actor = common.actor()?;
            let id = campaign_id(&id)?;
            let store = open_store(common, false)?;
            if no_run {
                let campaigns = Campaigns::new(store, options(&actor));
                let record = campaigns.start(&actor, &id).map_err(failure)?;
                return emit(format, &record, |r| {
                    format!("campaign {} is {}\n", r.definition.id, r.state)
                });
            }
            let run_options = RunOptions {
                lease: std::time::Duration::from_secs(lease_seconds),
                ..options(&actor)
            };
            let engine = engine(store, &common.data_dir, &dirs, &actor, run_options)?;
            let campaigns = &engine.campaigns;
            campaigns.start(&actor, &id).map_err(failure)?;
            let pb = run_bar(format);
            let end = run_waiting(campaigns, &id, &engine.plugins, &pb);
            pb.finish_and_clear();
            let end = end?;
            let status = campaigns.status(&id).map_err(failure)?;
            #[derive(Serialize)]
            struct Ran {
                end: RunEnd,
                status: Status,
            }
            emit(format, &Ran { end, status }, |r| {
                let how = match r.end {
                    RunEnd::Completed => "completed",
                    RunEnd::Paused => "paused (resume with `omnigate campaign start`)",
                    RunEnd::Cancelled => "cancelled",
                };
                format!("run {how}\n{}", status_text(&r.status))
            })
        }
        CampaignCommand::Pause { id } => {
            let actor = common.actor()?;
            let id = campaign_id(&id)?;
            let campaigns = Campaigns::new(open_store(common, false)?, options(&actor));
            let record = campaigns.pause(&actor, &id).map_err(failure)?;
            emit(format, &record, |r| {
                format!("campaign {} is {}\n", r.definition.id, r.state)
            })
        }
        CampaignCommand::Cancel { id, reason } => {
            let actor = common.actor()?;
            let id = campaign_id(&id)?;
            let campaigns = Campaigns::new(open_store(common, false)?, options(&actor));
            let record = campaigns.cancel(&actor, &id, &reason).map_err(failure)?;
            emit(format, &record, |r| {
                format!("campaign {} is {}\n", r.definition.id, r.state)
            })
        }
        CampaignCommand::Status { id } => {
            let id = campaign_id(&id)?;
            let campaigns = Campaigns::new(open_store(common, false)?, options("reader"));
            let status = campaigns.status(&id).map_err(failure)?;
            emit(format, &status, status_text)
        }
        CampaignCommand::List => {
            let store = open_store(common, false)?;
            let list = store.campaigns().map_err(|e| Failure::Service(e.into()))?;
            emit(format, &list, |l| {
                l.iter()
                    .map(|c| {
                        format!(
                            "{:<32} {:<10} {} ({}, {})\n",
                            c.definition.id,
                            c.state.as_str(),
                            c.definition.name,
                            c.definition.product,
                            c.definition.market
                        )
                    })
                    .collect()
            })
        }
        CampaignCommand::Members {
            id,
            outcome,
            after,
            limit,
        } => {
            let id = campaign_id(&id)?;
            let outcome = outcome
                .map(|o| {
                    omnigate_service::orchestration::member_outcome(
                        &o,
                        &Location::argument("outcome"),
                    )
                })
                .transpose()?;
            let after = after
                .map(|a| input::hcp_id(&a, &Location::argument("after")))
                .transpose()?;
            let store = open_store(common, false)?;
            let members = store
                .members(&id, outcome, after.as_ref(), limit.clamp(1, 1000))
                .map_err(|e| Failure::Service(e.into()))?;
            emit(format, &members, |ms| {
                ms.iter()
                    .map(|m| {
                        let mut line = format!(
                            "{:<20} {:<11} {}",
                            m.hcp,
                            m.outcome.as_str(),
                            m.channel.map(|c| c.as_str()).unwrap_or("-")
                        );
                        for r in &m.reasons {
                            line.push_str(&format!(
                                "\n    {}{}: {}",
                                r.channel.map(|c| format!("{c} ")).unwrap_or_default(),
                                r.rules.join(", "),
                                r.message
                            ));
                        }
                        line.push('\n');
                        line
                    })
                    .collect()
            })
        }
    }
}

/// Runs a campaign. When another runner holds it, waits for its claim to
/// lapse (a crashed run's does); a runner that renews its claim meanwhile is
/// alive, and this run gives way.
fn run_waiting(
    campaigns: &Campaigns,
    id: &CampaignId,
    plugins: &[Arc<Plugin>],
    pb: &ProgressBar,
) -> Result<RunEnd, Failure> {
    let mut seen: Option<omnigate_core::campaign::Lease> = None;
    loop {
        match campaigns.run(id, plugins, &mut |s| show(pb, s)) {
            Err(CampaignError::Busy { lease, id: cid }) => {
                if let Some(before) = &seen
                    && before.owner == lease.owner
                    && lease.until > before.until
                {
                    // Renewed: that runner is alive.
                    return Err(failure(CampaignError::Busy { id: cid, lease }));
                }
                pb.println(format!(
                    "campaign {id} is claimed by {} until {}; waiting for the claim to lapse",
                    lease.owner, lease.until
                ));
                std::thread::sleep(std::time::Duration::from_millis(
                    (lease.until - omnigate_core::event::now_millis() + 50).clamp(50, 3_600_000)
                        as u64,
                ));
                seen = Some(lease);
            }
            other => return other.map_err(failure),
        }
    }
}

/// Runs `omnigate report <campaign>`.
pub fn run_report(args: ReportArgs) -> ExitCode {
    let format = args.common.format;
    let outcome = (|| {
        let id = campaign_id(&args.campaign)?;
        let store = open_store(&args.common, false)?;
        let r: Report = report(&*store, &id).map_err(failure)?;
        emit(format, &r, Report::text)
    })();
    finish(format, outcome)
}
