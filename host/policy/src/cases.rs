//! Policy tests: case files in `policies/tests/*.toml`, each case a message
//! and its context with the expected verdict and rule ids. The runner
//! reports pass/fail per case, the content rules no case exercises, and
//! the false-block rate of the corpus (compliant cases wrongly blocked
//! over compliant cases).

use std::collections::BTreeSet;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use omnigate_core::Channel;
use serde::{Deserialize, Serialize};

use crate::compile::CompiledPolicy;
use crate::diag::{Diagnostic, Diagnostics};
use crate::message::{Context, LibraryClaim, Message, PartKind, Verdict};
use crate::model::Audience;
use crate::syntax::SourceFile;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    #[serde(default)]
    defaults: CaseFields,
    #[serde(default, rename = "case")]
    cases: Vec<CaseSyntax>,
}

/// Context fields a case may set and a file may default.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFields {
    market: Option<String>,
    channel: Option<String>,
    audience: Option<String>,
    /// `""` means no product.
    product: Option<String>,
    /// Appended to the body (plain or HTML), e.g. the fair-balance block
    /// and the unsubscribe line, so claim cases need not repeat them.
    footer: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseSyntax {
    name: String,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    preheader: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    html: Option<String>,
    #[serde(default)]
    sms: Option<String>,
    #[serde(default)]
    claims: Vec<ClaimSyntax>,
    expect: String,
    #[serde(default)]
    rules: Vec<String>,
    market: Option<String>,
    channel: Option<String>,
    audience: Option<String>,
    product: Option<String>,
    footer: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimSyntax {
    id: String,
    text: String,
    #[serde(default)]
    citations: Vec<String>,
}

/// The result of one case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseOutcome {
    /// Case file.
    pub file: String,
    /// Case name.
    pub name: String,
    /// Whether verdict and rule ids came out as expected.
    pub passed: bool,
    /// Expected verdict.
    pub expected: Verdict,
    /// Actual verdict (block when the case could not run).
    pub actual: Verdict,
    /// Expected rule ids.
    pub expected_rules: Vec<String>,
    /// Rule ids that produced findings.
    pub actual_rules: Vec<String>,
    /// Why the case could not run, if it could not.
    pub error: Option<String>,
}

/// The result of a test run.
#[derive(Debug, Clone, Serialize)]
pub struct TestReport {
    /// The policy version tested.
    pub policy_version: String,
    /// Every case.
    pub cases: Vec<CaseOutcome>,
    /// Content rules that no passing case expects.
    pub uncovered: Vec<String>,
    /// Cases expected to be allowed.
    pub compliant: usize,
    /// Of those, how many were blocked.
    pub false_blocks: usize,
}

impl TestReport {
    /// Whether every case passed.
    pub fn passed(&self) -> bool {
        !self.cases.is_empty() && self.cases.iter().all(|c| c.passed)
    }

    /// Failed cases.
    pub fn failures(&self) -> impl Iterator<Item = &CaseOutcome> {
        self.cases.iter().filter(|c| !c.passed)
    }

    /// Compliant cases wrongly blocked / compliant cases (0 when none).
    pub fn false_block_rate(&self) -> f64 {
        if self.compliant == 0 {
            0.0
        } else {
            self.false_blocks as f64 / self.compliant as f64
        }
    }

    /// A human-readable summary.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for c in self.failures() {
            out.push_str(&format!("FAIL {}: {}\n", c.file, c.name));
            if let Some(e) = &c.error {
                out.push_str(&format!("  error: {e}\n"));
            }
            out.push_str(&format!(
                "  expected {} {:?}\n  got      {} {:?}\n",
                verdict_str(c.expected),
                c.expected_rules,
                verdict_str(c.actual),
                c.actual_rules
            ));
        }
        let passed = self.cases.iter().filter(|c| c.passed).count();
        out.push_str(&format!(
            "{passed} passed, {} failed\n",
            self.cases.len() - passed
        ));
        if self.uncovered.is_empty() {
            out.push_str("coverage: every rule is exercised\n");
        } else {
            out.push_str(&format!(
                "coverage: {} rule(s) exercised by no case: {}\n",
                self.uncovered.len(),
                self.uncovered.join(", ")
            ));
        }
        out.push_str(&format!(
            "false-block rate: {}/{} compliant cases blocked ({:.1}%)\n",
            self.false_blocks,
            self.compliant,
            self.false_block_rate() * 100.0
        ));
        out
    }
}

fn verdict_str(v: Verdict) -> &'static str {
    match v {
        Verdict::Allow => "allow",
        Verdict::Block => "block",
    }
}

/// Runs every case file in `dir` (`*.toml`, sorted) against `policy`.
pub fn run_tests(policy: &CompiledPolicy, dir: &Path) -> Result<TestReport, Diagnostics> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Diagnostics(vec![Diagnostic::bare(format!(
            "cannot read `{}`: {}",
            dir.display(),
            e.to_string().to_lowercase()
        ))])
    })?;
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    let mut cases = Vec::new();
    let mut diags = Vec::new();
    for path in paths {
        let shown = path.display().to_string();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                diags.push(Diagnostic::bare(format!("cannot read `{shown}`: {e}")));
                continue;
            }
        };
        let source = SourceFile {
            name: shown.clone(),
            text: Arc::new(text),
        };
        match source.parse::<CaseFile>() {
            Ok(file) => {
                for case in &file.cases {
                    cases.push(run_case(policy, &shown, &file.defaults, case));
                }
            }
            Err(d) => diags.push(d),
        }
    }
    if !diags.is_empty() {
        return Err(Diagnostics(diags));
    }
    let covered: BTreeSet<&str> = cases
        .iter()
        .filter(|c| c.passed)
        .flat_map(|c| c.expected_rules.iter().map(String::as_str))
        .collect();
    let uncovered = policy
        .set()
        .content_rule_ids()
        .into_iter()
        .filter(|id| !covered.contains(id.as_str()))
        .collect();
    let compliant = cases
        .iter()
        .filter(|c| c.expected == Verdict::Allow)
        .count();
    let false_blocks = cases
        .iter()
        .filter(|c| c.expected == Verdict::Allow && c.actual == Verdict::Block)
        .count();
    Ok(TestReport {
        policy_version: policy.version().to_owned(),
        cases,
        uncovered,
        compliant,
        false_blocks,
    })
}

fn run_case(policy: &CompiledPolicy, file: &str, d: &CaseFields, c: &CaseSyntax) -> CaseOutcome {
    let expected_rules: Vec<String> = {
        let set: BTreeSet<&String> = c.rules.iter().collect();
        set.into_iter().cloned().collect()
    };
    let mut outcome = CaseOutcome {
        file: file.to_owned(),
        name: c.name.clone(),
        passed: false,
        expected: Verdict::Block,
        actual: Verdict::Block,
        expected_rules,
        actual_rules: Vec::new(),
        error: None,
    };
    match prepare(d, c) {
        Err(e) => outcome.error = Some(e),
        Ok((expected, message, ctx)) => {
            outcome.expected = expected;
            match policy.screen(&message, &ctx) {
                Ok(s) => {
                    outcome.actual = s.verdict;
                    outcome.actual_rules = s.rule_ids();
                    outcome.passed =
                        s.verdict == expected && outcome.actual_rules == outcome.expected_rules;
                }
                Err(e) => outcome.error = Some(e.to_string()),
            }
        }
    }
    outcome
}

fn prepare(d: &CaseFields, c: &CaseSyntax) -> Result<(Verdict, Message, Context), String> {
    let expected = match c.expect.as_str() {
        "allow" => Verdict::Allow,
        "block" => Verdict::Block,
        other => {
            return Err(format!(
                "unknown expect `{other}` (expected `allow` or `block`)"
            ));
        }
    };
    let pick = |own: &Option<String>, def: &Option<String>| own.clone().or_else(|| def.clone());
    let market =
        pick(&c.market, &d.market).ok_or("no market (set it in the case or [defaults])")?;
    let channel =
        pick(&c.channel, &d.channel).ok_or("no channel (set it in the case or [defaults])")?;
    let channel = Channel::from_str(&channel).map_err(|e| e.to_string())?;
    let audience = pick(&c.audience, &d.audience).unwrap_or_else(|| "hcp".to_owned());
    let audience = Audience::parse(&audience)
        .ok_or_else(|| format!("unknown audience `{audience}` (expected `hcp` or `patient`)"))?;
    let product = pick(&c.product, &d.product).filter(|p| !p.is_empty());
    let footer = pick(&c.footer, &d.footer).filter(|f| !f.is_empty());

    let mut message = Message::default();
    if let Some(s) = &c.subject {
        message = message.with(PartKind::Subject, s);
    }
    if let Some(s) = &c.preheader {
        message = message.with(PartKind::Preheader, s);
    }
    if let Some(s) = &c.sms {
        message = message.with(PartKind::Sms, with_footer(s, &footer, false));
    }
    if let Some(s) = &c.text {
        message = message.with(PartKind::Body, with_footer(s, &footer, false));
    }
    if let Some(s) = &c.html {
        message = message.with(PartKind::Html, with_footer(s, &footer, true));
    }
    if message.parts.is_empty() {
        return Err("the case has no `text`, `html`, `sms`, `subject` or `preheader`".to_owned());
    }
    let mut ctx = Context::new(market, channel, audience);
    ctx.product = product;
    ctx.claims = c
        .claims
        .iter()
        .map(|l| LibraryClaim {
            id: l.id.clone(),
            text: l.text.clone(),
            citations: l.citations.clone(),
        })
        .collect();
    Ok((expected, message, ctx))
}

fn with_footer(body: &str, footer: &Option<String>, html: bool) -> String {
    match footer {
        None => body.to_owned(),
        Some(f) if html => format!("{body}<p>{f}</p>"),
        Some(f) => format!("{body}\n\n{f}"),
    }
}
