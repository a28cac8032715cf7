//! The `omnigate` binary: `omnigate serve` runs the host; the other
//! subcommands are the command line for operators, compliance officers and
//! plugin partners.

mod audit;
mod campaign;
mod data;
mod demo;
mod gate;
mod journey;
mod plugins;
mod policy;
mod serve;
mod suggestions;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// omnigate: compliant omnichannel engagement with healthcare professionals.
#[derive(Debug, Parser)]
#[command(name = "omnigate", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the host: load plugins and policies, serve the HTTP API.
    Serve(serve::ServeArgs),
    /// Inspect and list plugins.
    #[command(subcommand)]
    Plugins(plugins::PluginsCommand),
    /// The tamper-evident audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Compliance policy files: screen a text, run the policy tests, check the files.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// HCP profiles: import, show, merge records of the same person.
    Hcp(data::HcpArgs),
    /// The consent ledger: record statements, show an HCP's history.
    Consent(data::ConsentArgs),
    /// Engagement events: ingest JSON lines.
    Events(data::EventsArgs),
    /// The MLR content registry: versions, submission with pre-screen, sign-off.
    Content(data::ContentArgs),
    /// The compliance gate: put a dispatch to it (recorded, nothing sent).
    Gate(gate::GateArgs),
    /// Gate decisions: list and filter (campaign, HCP, rule, verdict), show one.
    Decisions(gate::DecisionsArgs),
    /// Campaigns: create from a JSON definition, start (and run), pause,
    /// cancel, status, members.
    Campaign(campaign::CampaignArgs),
    /// A campaign's report: outcomes, blocks by rule, suppressions, channels.
    Report(campaign::ReportArgs),
    /// Rep suggestions: list a rep's queue, mark one done or dismissed
    /// (the feedback is recorded as an event that scoring reads).
    Suggestions(suggestions::SuggestionsArgs),
    /// Event-triggered journeys: "when E happens for an HCP, after D do A,
    /// unless C". Create, pause, resume, retire, watch, run the worker.
    Journey(journey::JourneyArgs),
    /// The main job on a sample world: seed synthetic HCPs and content, run
    /// a campaign through the bundled plugins against a loopback provider,
    /// feed back engagement, print the report.
    Demo(demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => report(serve::run(args)),
        Command::Plugins(cmd) => plugins::run(cmd),
        Command::Policy(cmd) => policy::run(cmd),
        Command::Audit(cmd) => audit::run(cmd),
        Command::Hcp(args) => data::hcp(args),
        Command::Consent(args) => data::consent(args),
        Command::Events(args) => data::events(args),
        Command::Content(args) => data::content(args),
        Command::Gate(args) => gate::gate(args),
        Command::Decisions(args) => gate::decisions(args),
        Command::Campaign(args) => campaign::campaign(args),
        Command::Report(args) => campaign::run_report(args),
        Command::Demo(args) => demo::demo(args),
        Command::Suggestions(args) => suggestions::suggestions(args),
        Command::Journey(args) => journey::journey(args),
    }
}

/// Prints an error with its whole cause chain; exit status 1.
fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
