//! `omnigate suggestions ...`: the rep's queue. List suggestions, and close
//! one as done or dismissed (with a reason); closing records the feedback
//! as an engagement event that scoring reads.
//!
//! Exit status: 0 done, 1 refused (already closed, expired), 2 bad input.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use omnigate_core::event::now_millis;
use omnigate_core::suggestion::{Suggestion, SuggestionFilter, SuggestionState};
use omnigate_service::{Location, input};

use crate::data::{Common, Failure, emit, finish};

/// `omnigate suggestions ...`.
#[derive(Debug, Args)]
pub struct SuggestionsArgs {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: SuggestionsCommand,
}

#[derive(Debug, Subcommand)]
enum SuggestionsCommand {
    /// Suggestions, due soonest first.
    List {
        /// Only this rep's.
        #[arg(long)]
        rep: Option<String>,
        /// Only this HCP's.
        #[arg(long)]
        hcp: Option<String>,
        /// Only from this campaign.
        #[arg(long)]
        campaign: Option<String>,
        /// `open`, `done`, `dismissed` or `expired`.
        #[arg(long)]
        state: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// The rep acted on it (the actor is the rep).
    Done {
        /// The suggestion id.
        id: String,
        /// A note.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// The rep will not act on it, and says why.
    Dismiss {
        /// The suggestion id.
        id: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
}

fn text(list: &[Suggestion]) -> String {
    let mut out = String::new();
    for s in list {
        out.push_str(&format!(
            "{}  {}  {} {} for {}  due {}  [{}]\n    why: {}\n",
            s.id,
            s.state.as_str(),
            s.channel,
            &s.version.0[..12.min(s.version.0.len())],
            s.hcp,
            s.due_at,
            s.rep.as_deref().unwrap_or("no rep"),
            s.rationale
        ));
        for n in &s.notes {
            out.push_str(&format!("    note: {n}\n"));
        }
    }
    out
}

/// Runs `omnigate suggestions ...`.
pub fn suggestions(args: SuggestionsArgs) -> ExitCode {
    let format = args.common.format;
    finish(format, inner(args))
}

fn inner(args: SuggestionsArgs) -> Result<(), Failure> {
    let common = &args.common;
    let store = common.store(false)?;
    let now = now_millis();
    let close = |id: &str, state, reason: &str| -> Result<(), Failure> {
        let actor = common.actor()?;
        let s = omnigate_engine::suggest::close(&*store, &actor, id, state, reason, now)
            .map_err(|e| Failure::Service(e.into()))?;
        emit(common.format, &s, |s| {
            format!("suggestion {} is {}\n", s.id, s.state.as_str())
        })
    };
    match args.command {
        SuggestionsCommand::List {
            rep,
            hcp,
            campaign,
            state,
            limit,
        } => {
            let state = state
                .map(|s| {
                    omnigate_service::orchestration::suggestion_state(
                        &s,
                        &Location::argument("state"),
                    )
                })
                .transpose()?;
            let hcp = hcp
                .map(|h| input::hcp_id(&h, &Location::argument("hcp")))
                .transpose()?;
            let list = store
                .suggestions(
                    &SuggestionFilter {
                        rep,
                        hcp,
                        campaign,
                        state,
                        limit: limit.clamp(1, 1000),
                    },
                    now,
                )
                .map_err(|e| Failure::Service(e.into()))?;
            emit(common.format, &list, |l| text(l))
        }
        SuggestionsCommand::Done { id, note } => close(&id, SuggestionState::Done, &note),
        SuggestionsCommand::Dismiss { id, reason } => {
            close(&id, SuggestionState::Dismissed, &reason)
        }
    }
}
