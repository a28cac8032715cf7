//! `omnigate journey ...`: event-triggered journeys. Create one from a JSON
//! definition, pause, resume or retire it, watch its actions, and run the
//! worker that fires and acts (`omnigate serve` runs the same worker).
//!
//! Exit status: 0 on success, 1 when a rule refused the change (a move the
//! lifecycle does not allow), 2 on bad input or usage.

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use clap::{Args, Subcommand};
use omnigate_core::event::now_millis;
use omnigate_core::journeys::{
    ActionState, JourneyActionRecord, JourneyId, JourneyRecord, JourneyState,
};
use omnigate_engine::journeys::{JourneyStatus, Tick};
use omnigate_engine::{JourneyError, JourneyOptions, Journeys, RunOptions};
use omnigate_service::{Location, input, orchestration};
use serde::Serialize;

use crate::campaign::{EngineDirs, engine};
use crate::data::{Common, Failure, emit, finish, read_definition, utc};

/// `omnigate journey ...`.
#[derive(Debug, Args)]
pub struct JourneyArgs {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: JourneyCommand,
}

#[derive(Debug, Subcommand)]
enum JourneyCommand {
    /// Store a journey definition (a JSON file, or `-`); it is active at
    /// once: events stored from now on fire it.
    Create {
        /// The JSON file, or `-` for standard input.
        file: String,
    },
    /// Every journey with its counts.
    List,
    /// A journey: definition, state, actions by state and channel, the next
    /// due action, and how fast events reached it.
    Status {
        /// The journey id.
        id: String,
    },
    /// Pause a journey: events pass it by and its due actions wait.
    Pause {
        /// The journey id.
        id: String,
        /// Why (recorded in the audit trail).
        #[arg(long)]
        reason: String,
    },
    /// Resume a paused journey.
    Resume {
        /// The journey id.
        id: String,
        /// Why (recorded in the audit trail).
        #[arg(long)]
        reason: String,
    },
    /// Retire a journey for good: its pending actions are cancelled.
    Retire {
        /// The journey id.
        id: String,
        /// Why (recorded in the audit trail).
        #[arg(long)]
        reason: String,
    },
    /// A journey's actions, newest first, with their reasons.
    Actions {
        /// The journey id.
        id: String,
        /// Only this state (`pending`, `dispatched`, `suppressed`, `failed`,
        /// `cancelled`, `done`).
        #[arg(long)]
        state: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Run the journey worker here: fire journeys on new events and act on
    /// due actions, until interrupted (or, with `--until-idle`, until a pass
    /// finds nothing to do).
    Run {
        #[command(flatten)]
        dirs: EngineDirs,
        /// Stop at the first pass with nothing to do.
        #[arg(long)]
        until_idle: bool,
    },
}

fn journey_id(id: &str) -> Result<JourneyId, Failure> {
    Ok(orchestration::journey_id(id, &Location::argument("id"))?)
}

/// Maps an engine error to a failure with a stable code.
pub(crate) fn failure(e: JourneyError) -> Failure {
    Failure::Service(orchestration::journey_error(e))
}

pub fn journey(args: JourneyArgs) -> ExitCode {
    let format = args.common.format;
    finish(format, journey_inner(args))
}

#[derive(Serialize)]
struct Created<'a> {
    created: bool,
    journey: &'a JourneyRecord,
}

fn journey_inner(args: JourneyArgs) -> Result<(), Failure> {
    let common = &args.common;
    let format = common.format;
    let options = |actor: &str| JourneyOptions {
        actor: actor.to_owned(),
        ..JourneyOptions::default()
    };
    match args.command {
        JourneyCommand::Create { file } => {
            let actor = common.actor()?;
            let def = read_definition(&file, input::journey_definition)?;
            let journeys = Journeys::new(common.store(true)?, options(&actor));
            let (record, created) = journeys.create(&actor, &def).map_err(failure)?;
            emit(
                format,
                &Created {
                    created,
                    journey: &record,
                },
                |c| {
                    if c.created {
                        format!(
                            "created journey {} (active): events stored from now on fire it; \
                             `omnigate serve` or `omnigate journey run` acts on them\n",
                            c.journey.definition.id
                        )
                    } else {
                        format!(
                            "journey {} already exists with this definition ({}); nothing changed\n",
                            c.journey.definition.id, c.journey.state
                        )
                    }
                },
            )
        }
        JourneyCommand::List => {
            let journeys = Journeys::new(common.store(false)?, options("reader"));
            let list = journeys.list().map_err(failure)?;
            emit(format, &list, |l| {
                if l.is_empty() {
                    return "no journeys; create one with `omnigate journey create FILE`\n".into();
                }
                l.iter().map(status_line).collect()
            })
        }
        JourneyCommand::Status { id } => {
            let id = journey_id(&id)?;
            let journeys = Journeys::new(common.store(false)?, options("reader"));
            let s = journeys.status(&id).map_err(failure)?;
            emit(format, &s, status_text)
        }
        JourneyCommand::Pause { id, reason } => move_to(common, &id, JourneyState::Paused, &reason),
        JourneyCommand::Resume { id, reason } => {
            move_to(common, &id, JourneyState::Active, &reason)
        }
        JourneyCommand::Retire { id, reason } => {
            move_to(common, &id, JourneyState::Retired, &reason)
        }
        JourneyCommand::Actions { id, state, limit } => {
            let id = journey_id(&id)?;
            let state = state
                .map(|s| orchestration::action_state(&s, &Location::argument("state")))
                .transpose()?;
            let journeys = Journeys::new(common.store(false)?, options("reader"));
            let actions = journeys.actions(&id, state, limit).map_err(failure)?;
            emit(format, &actions, |a| a.iter().map(action_line).collect())
        }
        JourneyCommand::Run { dirs, until_idle } => {
            let actor = common.actor()?;
            let store = common.store(true)?;
            let e = engine(
                store.clone(),
                &common.data_dir,
                &dirs,
                &actor,
                RunOptions::default(),
            )?;
            let journeys = Journeys::new(store, options(&actor)).with_sender(e.sender.clone());
            let mut total = Tick::default();
            if until_idle {
                loop {
                    let t = journeys.tick(&e.plugins).map_err(failure)?;
                    total.events += t.events;
                    total.scheduled += t.scheduled;
                    total.acted += t.acted;
                    total.dispatched += t.dispatched;
                    if t.idle() {
                        break;
                    }
                }
            } else {
                // Never set: Ctrl-C ends the process, which is safe at any
                // moment (every step is durable before the next).
                let stop = AtomicBool::new(false);
                let plugins = e.plugins.clone();
                eprintln!("journey worker running; Ctrl-C stops it");
                journeys.run(&|| plugins.clone(), &stop);
            }
            emit(format, &total, |t| {
                format!(
                    "read {} event(s), scheduled {} action(s), acted on {}, {} went out\n",
                    t.events, t.scheduled, t.acted, t.dispatched
                )
            })
        }
    }
}

fn move_to(common: &Common, id: &str, to: JourneyState, reason: &str) -> Result<(), Failure> {
    let actor = common.actor()?;
    let id = journey_id(id)?;
    let journeys = Journeys::new(
        common.store(false)?,
        JourneyOptions {
            actor: actor.clone(),
            ..JourneyOptions::default()
        },
    );
    let record = journeys
        .set_state(&actor, &id, to, reason)
        .map_err(failure)?;
    emit(common.format, &record, |r| {
        format!("journey {} is {}\n", r.definition.id, r.state)
    })
}

fn status_line(s: &JourneyStatus) -> String {
    let c = &s.counts.by_state;
    let n = |k: ActionState| c.get(&k).copied().unwrap_or(0);
    format!(
        "{:<28} {:<8} on {:<22} pending {:>5}  dispatched {:>5}  suppressed {:>5}  cancelled {:>5}\n",
        s.record.definition.id,
        s.record.state,
        s.record.definition.when.event,
        n(ActionState::Pending),
        n(ActionState::Dispatched),
        n(ActionState::Suppressed),
        n(ActionState::Cancelled)
    )
}

fn status_text(s: &JourneyStatus) -> String {
    let d = &s.record.definition;
    let mut out = format!(
        "journey {} ({}): {}\n  when {}{}{}\n",
        d.id,
        s.record.state,
        d.name,
        d.when.event,
        if d.when.attributes.is_empty() {
            String::new()
        } else {
            format!(" with {:?}", d.when.attributes)
        },
        match d.after {
            Some(a) => format!(", after {a}"),
            None => ", at once".into(),
        }
    );
    out.push_str("  actions:");
    for (state, n) in &s.counts.by_state {
        out.push_str(&format!(" {state} {n}"));
    }
    out.push('\n');
    if !s.counts.by_channel.is_empty() {
        out.push_str("  dispatched by channel:");
        for (c, n) in &s.counts.by_channel {
            out.push_str(&format!(" {c} {n}"));
        }
        out.push('\n');
    }
    if let Some(due) = s.counts.next_due {
        let secs = (due - now_millis()) / 1000;
        out.push_str(&format!("  next action due in {secs} s\n"));
    }
    let l = &s.counts.latency;
    if l.actions > 0 {
        out.push_str(&format!(
            "  event stored -> journey fired: p50 {} ms, p99 {} ms, max {} ms over {} action(s)\n",
            l.p50_ms, l.p99_ms, l.max_ms, l.actions
        ));
    }
    out
}

fn action_line(a: &JourneyActionRecord) -> String {
    let mut line = format!(
        "#{:<6} {:<12} {:<11} event {:<20} due {} {}",
        a.num,
        a.action.hcp,
        a.state,
        a.action.event,
        utc(a.action.due_at),
        a.channel.map(|c| c.to_string()).unwrap_or_default()
    );
    for r in &a.reasons {
        line.push_str(&format!("\n        {}: {}", r.rules.join(", "), r.message));
    }
    line.push('\n');
    line
}
