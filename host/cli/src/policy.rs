//! `omnigate policy ...`: screen a text at the desk, run the policy tests,
//! check the policy files. Exit status: 0 when nothing blocks (or all
//! passes), 1 when something blocks (a finding, a failing case, an invalid
//! policy set under `check`), 2 on a usage error or a policy that does not
//! load.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use omnigate_core::Channel;
use omnigate_policy::{
    Audience, CompiledPolicy, Context, Message, PartKind, Screening, Verdict, load_dir, run_tests,
};
use serde::Serialize;

/// Policy subcommands.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Screen a text against the content rules and print the findings.
    Screen(ScreenArgs),
    /// Run the policy tests in `<policies>/tests`: cases, coverage, false-block rate.
    Test(TestArgs),
    /// Validate the policy files without running anything.
    Check(CheckArgs),
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// One JSON object (stable, documented in docs/policy.md).
    Json,
}

/// Audience of the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AudienceArg {
    /// Healthcare professionals.
    Hcp,
    /// Patients and the public.
    Patient,
}

/// `omnigate policy screen`.
#[derive(Debug, Args)]
pub struct ScreenArgs {
    /// The policy directory.
    #[arg(long, default_value = "policies")]
    policies: PathBuf,
    /// Market code, e.g. `US`, `EU`, `UK`, `CN`.
    #[arg(long)]
    market: String,
    /// Channel, e.g. `email`, `sms`, `wechat`.
    #[arg(long)]
    channel: String,
    /// Product id the text promotes.
    #[arg(long)]
    product: Option<String>,
    /// Audience.
    #[arg(long, value_enum, default_value = "hcp")]
    audience: AudienceArg,
    /// The text is HTML: screen what a reader sees (text, link text, alt text).
    #[arg(long)]
    html: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// The text to screen, or `-` to read it from standard input.
    text: String,
}

/// `omnigate policy test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// The policy directory (cases are read from its `tests/`).
    #[arg(long, default_value = "policies")]
    policies: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

/// `omnigate policy check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The policy directory.
    #[arg(long, default_value = "policies")]
    policies: PathBuf,
}

/// Runs a policy subcommand.
pub fn run(cmd: PolicyCommand) -> ExitCode {
    match cmd {
        PolicyCommand::Screen(args) => screen(args),
        PolicyCommand::Test(args) => test(args),
        PolicyCommand::Check(args) => check(args),
    }
}

fn load(dir: &Path) -> Option<CompiledPolicy> {
    match load_dir(dir) {
        Ok(p) => Some(p),
        Err(d) => {
            eprint!("{}", d.render());
            eprintln!(
                "error: the policy set in `{}` did not load ({} problem(s))",
                dir.display(),
                d.0.len()
            );
            None
        }
    }
}

/// Writes to standard output. A closed pipe (`| head`) is not an error:
/// the exit status still tells the verdict.
fn print_out(text: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("error: cannot write to standard output: {e}");
    }
}

fn usage(message: String) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

fn screen(args: ScreenArgs) -> ExitCode {
    let channel: Channel = match args.channel.parse() {
        Ok(c) => c,
        Err(e) => return usage(format!("{e}")),
    };
    let text = if args.text == "-" {
        let mut buf = String::new();
        if let Err(e) = std::io::stdin().read_to_string(&mut buf) {
            return usage(format!("cannot read standard input: {e}"));
        }
        buf
    } else {
        args.text
    };
    let Some(policy) = load(&args.policies) else {
        return ExitCode::from(2);
    };
    let audience = match args.audience {
        AudienceArg::Hcp => Audience::Hcp,
        AudienceArg::Patient => Audience::Patient,
    };
    let kind = match (args.html, channel) {
        (true, _) => PartKind::Html,
        (false, Channel::Sms) => PartKind::Sms,
        (false, _) => PartKind::Body,
    };
    let mut ctx = Context::new(args.market, channel, audience);
    ctx.product = args.product;
    let screening = match policy.screen(&Message::default().with(kind, text), &ctx) {
        Ok(s) => s,
        Err(e) => return usage(e.to_string()),
    };
    match args.format {
        Format::Json => match serde_json::to_string_pretty(&JsonScreening::from(&screening)) {
            Ok(json) => print_out(&format!("{json}\n")),
            Err(e) => return usage(format!("cannot write JSON: {e}")),
        },
        Format::Text => print_out(&render_screening(&screening)),
    }
    match screening.verdict {
        Verdict::Allow => ExitCode::SUCCESS,
        Verdict::Block => ExitCode::from(1),
    }
}

/// The documented JSON shape of `policy screen --format json`.
#[derive(Serialize)]
struct JsonScreening<'a> {
    verdict: &'static str,
    policy_version: &'a str,
    findings: Vec<JsonFinding<'a>>,
}

#[derive(Serialize)]
struct JsonFinding<'a> {
    rule: &'a str,
    kind: &'static str,
    severity: &'static str,
    start: usize,
    end: usize,
    excerpt: &'a str,
    reason: &'a str,
}

impl<'a> From<&'a Screening> for JsonScreening<'a> {
    fn from(s: &'a Screening) -> Self {
        JsonScreening {
            verdict: verdict_str(s.verdict),
            policy_version: &s.policy_version,
            findings: s
                .findings
                .iter()
                .map(|f| JsonFinding {
                    rule: &f.rule,
                    kind: f.kind.as_str(),
                    severity: f.severity.as_str(),
                    start: f.start,
                    end: f.end,
                    excerpt: &f.excerpt,
                    reason: &f.reason,
                })
                .collect(),
        }
    }
}

fn verdict_str(v: Verdict) -> &'static str {
    match v {
        Verdict::Allow => "allow",
        Verdict::Block => "block",
    }
}

fn render_screening(s: &Screening) -> String {
    let mut out = format!(
        "{} ({} finding(s), policy {})\n",
        verdict_str(s.verdict),
        s.findings.len(),
        s.policy_version.get(..12).unwrap_or(&s.policy_version)
    );
    for f in &s.findings {
        let excerpt = if f.excerpt.is_empty() {
            "(missing)".to_owned()
        } else {
            format!("`{}`", f.excerpt.replace('\n', " "))
        };
        out.push_str(&format!(
            "  {:<5} {} [{}] {}..{} {}\n        {}\n",
            f.severity.as_str(),
            f.rule,
            f.kind.as_str(),
            f.start,
            f.end,
            excerpt,
            f.reason
        ));
        if let Some(r) = &f.reference {
            out.push_str(&format!("        see {r}\n"));
        }
    }
    out
}

fn test(args: TestArgs) -> ExitCode {
    let Some(policy) = load(&args.policies) else {
        return ExitCode::from(2);
    };
    let tests = args.policies.join("tests");
    let mut report = match run_tests(&policy, &tests) {
        Ok(r) => r,
        Err(d) => {
            eprint!("{}", d.render());
            return ExitCode::from(2);
        }
    };
    // Whole-gate cases (consent, caps) run on a scratch store each.
    let dispatch = tests.join("dispatch");
    if dispatch.is_dir() {
        let consent_and_caps: Vec<String> = policy
            .set()
            .consent
            .iter()
            .map(|r| r.meta.id.clone())
            .chain(policy.set().caps.iter().map(|c| c.meta.id.clone()))
            .collect();
        let handle = std::sync::Arc::new(omnigate_policy::PolicyHandle::new(policy));
        let sqlite = |dir: &Path| -> Result<std::sync::Arc<dyn omnigate_core::Store>, String> {
            let store = omnigate_store::SqliteStore::open(omnigate_store::StoreOptions::new(dir))
                .map_err(|e| e.to_string())?;
            Ok(std::sync::Arc::new(store))
        };
        match omnigate_gate::fixtures::run_dispatch_cases(&handle, &dispatch, &sqlite) {
            Ok(cases) => report.cases.extend(cases),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
        let covered: std::collections::BTreeSet<&str> = report
            .cases
            .iter()
            .filter(|c| c.passed)
            .flat_map(|c| c.expected_rules.iter().map(String::as_str))
            .collect();
        let missing: Vec<String> = consent_and_caps
            .into_iter()
            .filter(|id| !covered.contains(id.as_str()))
            .collect();
        report.uncovered.extend(missing);
    }
    match args.format {
        Format::Json => {
            let value = serde_json::json!({
                "passed": report.passed(),
                "policy_version": report.policy_version,
                "cases": report.cases,
                "uncovered": report.uncovered,
                "compliant": report.compliant,
                "false_blocks": report.false_blocks,
                "false_block_rate": report.false_block_rate(),
            });
            match serde_json::to_string_pretty(&value) {
                Ok(json) => print_out(&format!("{json}\n")),
                Err(e) => return usage(format!("cannot write JSON: {e}")),
            }
        }
        Format::Text => print_out(&report.render()),
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn check(args: CheckArgs) -> ExitCode {
    let Some(policy) = load(&args.policies) else {
        return ExitCode::from(1);
    };
    let set = policy.set();
    print_out(&format!(
        "ok: `{}` is valid (version {}): {} content rules, {} products, {} markets, {} consent rules, {} caps\n",
        args.policies.display(),
        policy.version(),
        set.content_rule_ids().len(),
        set.products.len(),
        set.markets.len(),
        set.consent.len(),
        set.caps.len()
    ));
    ExitCode::SUCCESS
}
