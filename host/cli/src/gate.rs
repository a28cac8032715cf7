//! `omnigate gate check` and `omnigate decisions`: put a dispatch to the
//! compliance gate, and read the decisions it made, over the same
//! [`omnigate_service::Service`] as the HTTP API.
//!
//! `gate check` exits 0 when the gate allows, 1 when it blocks, 2 on bad
//! input or usage; the decision is recorded in the audit trail either way
//! (nothing is sent). `decisions list|show` exit 0, or 2 on bad input.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use omnigate_core::ledger::{DecisionRecord, Outcome as RuleOutcome, Verdict};
use omnigate_policy::PolicyHandle;
use omnigate_service::Location;
use omnigate_service::gate::{DecisionQuery, check_input};

use crate::data::{Common, Failure, emit, finish, load_policy, open_input};

/// `omnigate gate ...`.
#[derive(Debug, Args)]
pub struct GateArgs {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: GateCommand,
}

#[derive(Debug, Subcommand)]
enum GateCommand {
    /// Put one dispatch (JSON: hcp, version, channel, purpose, and optionally
    /// dispatch_id, campaign, market, values, proposed, at) to the gate.
    Check {
        /// The JSON file, or `-` for standard input.
        file: String,
        /// The policy set to decide with.
        #[arg(long, env = "OMNIGATE_POLICIES", default_value = "policies")]
        policies: PathBuf,
    },
}

/// `omnigate decisions ...`.
#[derive(Debug, Args)]
pub struct DecisionsArgs {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: DecisionsCommand,
}

#[derive(Debug, Subcommand)]
enum DecisionsCommand {
    /// Gate decisions, newest first.
    List {
        /// Only this campaign.
        #[arg(long)]
        campaign: Option<String>,
        /// Only this HCP (with the records merged with it).
        #[arg(long)]
        hcp: Option<String>,
        /// Only decisions where this rule blocked or warned.
        #[arg(long)]
        rule: Option<String>,
        /// `allow` or `block`.
        #[arg(long)]
        verdict: Option<String>,
        /// Only decisions older than this decision id (paging).
        #[arg(long)]
        before: Option<String>,
        /// At most this many (1 to 1000).
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// One decision with its evidence.
    Show {
        /// The decision id.
        id: String,
    },
}

fn describe(d: &DecisionRecord) -> String {
    let mut out = format!(
        "{}  {}  {}  hcp {}  {} ({})  version {}\n  {}\n",
        d.id,
        d.verdict.as_str().to_uppercase(),
        d.dispatch,
        d.hcp,
        d.channel.as_str(),
        d.market,
        d.version.0.get(..12).unwrap_or(&d.version.0),
        d.summary
    );
    for r in &d.rules {
        let mark = match r.outcome {
            RuleOutcome::Block => "BLOCK",
            RuleOutcome::Warn => "warn ",
            RuleOutcome::Pass => "pass ",
        };
        out.push_str(&format!("    {mark} {:<32} {}\n", r.rule, r.reason));
    }
    out
}

/// Runs `omnigate gate ...`.
pub fn gate(args: GateArgs) -> ExitCode {
    let c = &args.common;
    let mut blocked = false;
    let outcome = (|| -> Result<(), Failure> {
        match &args.command {
            GateCommand::Check { file, policies } => {
                let actor = c.actor()?;
                let policy = load_policy(policies, "")?;
                let mut input = open_input(file)?;
                let mut text = String::new();
                input
                    .reader
                    .read_to_string(&mut text)
                    .map_err(|e| Failure::Usage(format!("cannot read `{}`: {e}", input.name)))?;
                let at = Location::Document {
                    name: input.name.clone(),
                    path: "$".into(),
                };
                let value: serde_json::Value = serde_json::from_str(&text)
                    .map_err(|e| Failure::Usage(format!("`{}` is not JSON: {e}", input.name)))?;
                let req = check_input(value, &at)?;
                let service = c.service(false, policy)?;
                let out = service.check(&actor, &req)?;
                blocked = out.verdict == Verdict::Block;
                emit(c.format, &out, |o| {
                    let mut t = describe(&o.decision);
                    if let Some(m) = &o.message {
                        t.push_str("  message as it would be sent:\n");
                        for (part, text) in m {
                            t.push_str(&format!("    [{part}] {text}\n"));
                        }
                    }
                    t
                })
            }
        }
    })();
    if outcome.is_ok() && blocked {
        return ExitCode::from(1);
    }
    finish(c.format, outcome)
}

/// Runs `omnigate decisions ...`.
pub fn decisions(args: DecisionsArgs) -> ExitCode {
    let c = &args.common;
    let outcome = (|| -> Result<(), Failure> {
        let service = c.service(false, Arc::new(PolicyHandle::empty()))?;
        match &args.command {
            DecisionsCommand::List {
                campaign,
                hcp,
                rule,
                verdict,
                before,
                limit,
            } => {
                let q = DecisionQuery {
                    campaign: campaign.clone(),
                    hcp: hcp.clone(),
                    rule: rule.clone(),
                    verdict: verdict.clone(),
                    before: before.clone(),
                    limit: Some(*limit),
                };
                let list = service.decisions(&q)?;
                let wrapped = serde_json::json!({ "decisions": list });
                emit(c.format, &wrapped, |_| {
                    if list.is_empty() {
                        "no decisions match\n".into()
                    } else {
                        list.iter().map(describe).collect()
                    }
                })
            }
            DecisionsCommand::Show { id } => {
                let d = service.decision(id)?;
                emit(c.format, &d, describe)
            }
        }
    })();
    finish(c.format, outcome)
}
