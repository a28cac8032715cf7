//! The checks validation applies to single values: rule metadata and ids,
//! references to markets, channels and audiences, terms and patterns under
//! their limits, durations and clock times. Each records a diagnostic with
//! the value's span and returns what it could make of the value.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use omnigate_core::Channel;

use crate::diag::{Diagnostic, Location};
use crate::model::{Audience, Limits, Pattern, RuleMeta, Severity};
use crate::normalize::fold;
use crate::syntax::{SourceFile, Str};

/// Collects diagnostics and what validation has seen so far.
pub(crate) struct V {
    pub(crate) diags: Vec<Diagnostic>,
    pub(crate) ids: HashMap<String, Location>,
    pub(crate) markets: Vec<String>,
    pub(crate) limits: Limits,
}

/// How a diagnostic names the rule it is about.
pub(crate) fn rule_of(id: &str) -> String {
    format!("rule `{id}`")
}

pub(crate) fn channel_list() -> String {
    Channel::ALL.map(Channel::as_str).join(", ")
}

impl V {
    pub(crate) fn err(&mut self, f: &SourceFile, s: &Str, message: String, help: Option<String>) {
        let mut d = Diagnostic::at(message, f.loc(s.span()));
        d.help = help;
        self.diags.push(d);
    }

    pub(crate) fn meta(
        &mut self,
        f: &SourceFile,
        id: &Str,
        severity: &Str,
        reason: &Str,
        reference: &Option<Str>,
    ) -> Option<RuleMeta> {
        let name = id.get_ref();
        let mut ok = true;
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            self.err(
                f,
                id,
                format!("rule id `{name}` is not lowercase-kebab-case"),
                Some("use lowercase letters, digits and `-`, e.g. `us-email-optin`".into()),
            );
            ok = false;
        }
        let here = f.loc(id.span());
        if let Some(first) = self.ids.get(name) {
            let help = format!(
                "first defined at {}:{}:{}",
                first.file, first.line, first.column
            );
            self.err(f, id, format!("duplicate rule id `{name}`"), Some(help));
            ok = false;
        } else {
            self.ids.insert(name.clone(), here);
        }
        let severity = match severity.get_ref().as_str() {
            "block" => Severity::Block,
            "warn" => Severity::Warn,
            other => {
                self.err(
                    f,
                    severity,
                    format!("unknown severity `{other}` in rule `{name}`"),
                    Some("expected `block` or `warn`".into()),
                );
                return None;
            }
        };
        if reason.get_ref().trim().is_empty() {
            self.err(
                f,
                reason,
                format!("empty reason in rule `{name}`"),
                Some("say in plain words why the rule exists".into()),
            );
            ok = false;
        }
        ok.then(|| RuleMeta {
            id: name.clone(),
            severity,
            reason: reason.get_ref().trim().to_owned(),
            reference: reference.as_ref().map(|r| r.get_ref().clone()),
        })
    }

    pub(crate) fn markets(
        &mut self,
        f: &SourceFile,
        list: &Option<Vec<Str>>,
        rule: &str,
    ) -> Option<Vec<String>> {
        let list = list.as_ref()?;
        let mut out = Vec::new();
        for m in list {
            if self.markets.contains(m.get_ref()) {
                out.push(m.get_ref().clone());
            } else {
                let help = format!("markets.toml defines: {}", self.markets.join(", "));
                self.err(
                    f,
                    m,
                    format!("unknown market `{}` in {rule}", m.get_ref()),
                    Some(help),
                );
            }
        }
        Some(out)
    }

    pub(crate) fn channels(
        &mut self,
        f: &SourceFile,
        list: &Option<Vec<Str>>,
        rule: &str,
    ) -> Option<Vec<Channel>> {
        let list = list.as_ref()?;
        let mut out = Vec::new();
        for c in list {
            match Channel::from_str(c.get_ref()) {
                Ok(ch) => out.push(ch),
                Err(_) => self.err(
                    f,
                    c,
                    format!("unknown channel `{}` in {rule}", c.get_ref()),
                    Some(format!("expected one of: {}", channel_list())),
                ),
            }
        }
        Some(out)
    }

    /// MLR review roles: known names, at least one.
    pub(crate) fn review_roles(
        &mut self,
        f: &SourceFile,
        list: &toml::Spanned<Vec<Str>>,
        place: &str,
    ) -> std::collections::BTreeSet<omnigate_core::ReviewRole> {
        let mut out = std::collections::BTreeSet::new();
        for r in list.get_ref() {
            match r.get_ref().parse::<omnigate_core::ReviewRole>() {
                Ok(role) => {
                    out.insert(role);
                }
                Err(_) => self.err(
                    f,
                    r,
                    format!("unknown review role `{}` in {place}", r.get_ref()),
                    Some("expected `medical`, `legal` or `regulatory`".into()),
                ),
            }
        }
        if list.get_ref().is_empty() {
            let mut d = Diagnostic::at(
                format!("no review role in {place}: content would be approved without review"),
                f.loc(list.span()),
            );
            d.help = Some("list at least one of `medical`, `legal`, `regulatory`".into());
            self.diags.push(d);
        }
        out
    }

    pub(crate) fn audiences(&mut self, f: &SourceFile, list: &[Str], rule: &str) -> Vec<Audience> {
        let mut out = Vec::new();
        for a in list {
            match Audience::parse(a.get_ref()) {
                Some(x) => out.push(x),
                None => self.err(
                    f,
                    a,
                    format!("unknown audience `{}` in {rule}", a.get_ref()),
                    Some("expected `hcp` or `patient`".into()),
                ),
            }
        }
        out
    }

    pub(crate) fn terms(&mut self, f: &SourceFile, list: &[Str], rule: &str) -> Vec<String> {
        let mut out = Vec::new();
        for t in list {
            let folded = fold(t.get_ref());
            if folded.trim().is_empty() {
                self.err(f, t, format!("empty term in {rule}"), None);
            } else if t.get_ref().len() > self.limits.max_pattern_bytes {
                self.over_limit(f, t, rule);
            } else {
                out.push(folded.trim().to_owned());
            }
        }
        out
    }

    pub(crate) fn over_limit(&mut self, f: &SourceFile, s: &Str, rule: &str) {
        let help = format!(
            "the limit is `max_pattern_bytes = {}` in claims.toml [limits]; split the pattern",
            self.limits.max_pattern_bytes
        );
        let msg = format!(
            "pattern in {rule} is {} bytes, over the limit",
            s.get_ref().len()
        );
        self.err(f, s, msg, Some(help));
    }

    pub(crate) fn patterns(&mut self, f: &SourceFile, list: &[Str], rule: &str) -> Vec<Pattern> {
        let mut out = Vec::new();
        for p in list {
            if p.get_ref().len() > self.limits.max_pattern_bytes {
                self.over_limit(f, p, rule);
            } else {
                out.push(Pattern {
                    source: p.get_ref().clone(),
                    location: f.loc(p.span()),
                });
            }
        }
        out
    }

    pub(crate) fn duration(&mut self, f: &SourceFile, s: &Str, rule: &str) -> Option<Duration> {
        let text = s.get_ref().trim();
        let (num, unit) = text.split_at(
            text.find(|c: char| !c.is_ascii_digit())
                .unwrap_or(text.len()),
        );
        let secs = match unit {
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 604_800,
            _ => 0,
        };
        match num.parse::<u64>() {
            Ok(n) if secs > 0 && n > 0 => Some(Duration::from_secs(n * secs)),
            _ => {
                let msg = format!("invalid duration `{text}` in {rule}");
                self.err(
                    f,
                    s,
                    msg,
                    Some("write a number and a unit: `30m`, `48h`, `7d`, `4w`".into()),
                );
                None
            }
        }
    }

    pub(crate) fn clock(&mut self, f: &SourceFile, s: &Str, rule: &str) -> Option<u16> {
        let parsed = s.get_ref().split_once(':').and_then(|(h, m)| {
            let (h, m) = (h.parse::<u16>().ok()?, m.parse::<u16>().ok()?);
            (h < 24 && m < 60 && s.get_ref().len() == 5).then_some(h * 60 + m)
        });
        if parsed.is_none() {
            let msg = format!("invalid time `{}` in {rule}", s.get_ref());
            self.err(
                f,
                s,
                msg,
                Some("write 24-hour `HH:MM`, e.g. `20:00`".into()),
            );
        }
        parsed
    }

    pub(crate) fn missing(&mut self, f: &SourceFile, id: &Str, key: &str, kind: &str) {
        let msg = format!("cap `{}` of kind `{kind}` needs `{key}`", id.get_ref());
        self.err(f, id, msg, None);
    }
}
