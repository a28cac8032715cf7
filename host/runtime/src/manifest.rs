//! The plugin manifest: a TOML file beside the `.wasm` that holds the whole
//! grant. Parsed with unknown keys rejected, validated before anything loads.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use omnigate_core::HcpField;
use serde::Deserialize;

use crate::error::LoadError;
use crate::hosts::HostPattern;

/// The WIT package versions this host can load.
pub const SUPPORTED_WIT: &[&str] = &["omnigate:plugin@0.1.0"];

/// Memory limit when the manifest sets none, in MiB.
pub const DEFAULT_MEMORY_MIB: u32 = 64;
/// Time limit per call when the manifest sets none, in milliseconds.
pub const DEFAULT_TIME_MS: u32 = 1_000;
/// Largest memory limit a manifest may ask for, in MiB.
pub const MAX_MEMORY_MIB: u32 = 4_096;
/// Largest time limit per call a manifest may ask for, in milliseconds.
pub const MAX_TIME_MS: u32 = 300_000;

/// What a plugin is for; one WIT world each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginKind {
    /// Delivers messages and parses provider callbacks (world `channel-adapter`).
    ChannelAdapter,
    /// Ranks candidate actions (world `scoring-model`).
    ScoringModel,
}

impl PluginKind {
    /// The WIT world name.
    pub fn world(self) -> &'static str {
        match self {
            PluginKind::ChannelAdapter => "channel-adapter",
            PluginKind::ScoringModel => "scoring-model",
        }
    }

    /// The interface the component must export, without the version.
    pub fn export_interface(self) -> &'static str {
        match self {
            PluginKind::ChannelAdapter => "omnigate:plugin/delivery",
            PluginKind::ScoringModel => "omnigate:plugin/scoring",
        }
    }
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.world())
    }
}

/// A validated manifest.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Manifest {
    /// The file it was read from.
    pub path: PathBuf,
    /// Unique plugin name, e.g. `email-adapter`.
    pub name: String,
    /// The plugin's version.
    pub version: String,
    /// What the plugin is for.
    pub kind: PluginKind,
    /// The WIT package version it was built against.
    pub wit: String,
    /// One line on what the plugin does.
    pub description: String,
    /// The component file, resolved against the manifest's folder.
    pub component_path: PathBuf,
    /// Expected hex sha256 of the component file.
    pub sha256: String,
    /// Hosts the plugin may send HTTP requests to.
    pub allowed_outbound_hosts: Vec<HostPattern>,
    /// HCP fields the plugin may see.
    pub hcp_fields: BTreeSet<HcpField>,
    /// Per-call limits.
    pub limits: Limits,
    /// Free-form configuration handed to the plugin through `config.get`.
    pub config: BTreeMap<String, String>,
}

/// Limits applied to every call of a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Limits {
    /// Linear memory, tables and instances together, in MiB.
    pub memory_mib: u32,
    /// Wall-clock time per call, host calls (HTTP) included.
    pub time: Duration,
    /// Largest outgoing HTTP request body, in bytes.
    pub max_request_bytes: u64,
    /// Largest incoming HTTP response body, in bytes.
    pub max_response_bytes: u64,
    /// Timeout of one outgoing HTTP request (connect, first byte, between
    /// bytes and in total); never more than `time`.
    pub http_timeout: Duration,
}

impl Limits {
    /// Memory limit in bytes.
    pub fn memory_bytes(&self) -> usize {
        usize::try_from(u64::from(self.memory_mib) << 20).unwrap_or(usize::MAX)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    plugin: RawPlugin,
    component: RawComponent,
    #[serde(default)]
    grants: RawGrants,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    config: BTreeMap<String, toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugin {
    name: String,
    version: String,
    kind: PluginKind,
    wit: String,
    #[serde(default)]
    description: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComponent {
    path: PathBuf,
    sha256: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawGrants {
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    hcp_fields: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    memory_mib: Option<u32>,
    time_ms: Option<u32>,
    max_request_bytes: Option<u64>,
    max_response_bytes: Option<u64>,
    http_timeout_ms: Option<u32>,
}

impl Manifest {
    /// Reads and validates the manifest at `path`.
    pub fn load(path: &Path) -> Result<Manifest, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
            path: path.to_owned(),
            source,
        })?;
        Manifest::parse(path, &text)
    }

    /// Validates manifest `text`, read from `path` (used for messages and to
    /// resolve the component path).
    pub fn parse(path: &Path, text: &str) -> Result<Manifest, LoadError> {
        let invalid = |message: String| LoadError::Manifest {
            path: path.to_owned(),
            message,
        };
        let raw: RawManifest = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|span| {
                    let (line, col) = line_col(text, span.start);
                    format!(":{line}:{col}")
                })
                .unwrap_or_default();
            LoadError::Manifest {
                path: PathBuf::from(format!("{}{at}", path.display())),
                message: e.message().trim_end_matches('\n').to_owned(),
            }
        })?;

        let RawManifest {
            plugin,
            component,
            grants,
            limits,
            config,
        } = raw;

        if !is_name(&plugin.name) {
            return Err(invalid(format!(
                "plugin name `{}` must be 1 to 64 lowercase letters, digits or dashes, starting with a letter",
                plugin.name
            )));
        }
        if plugin.version.trim().is_empty() {
            return Err(invalid("plugin version must not be empty".into()));
        }
        if !SUPPORTED_WIT.contains(&plugin.wit.as_str()) {
            return Err(invalid(format!(
                "unsupported wit `{}` (this host loads: {})",
                plugin.wit,
                SUPPORTED_WIT.join(", ")
            )));
        }

        let sha256 = component.sha256.to_ascii_lowercase();
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid(format!(
                "component sha256 `{}` must be 64 hex digits",
                component.sha256
            )));
        }
        let component_path = match path.parent() {
            Some(dir) => dir.join(&component.path),
            None => component.path.clone(),
        };

        let mut allowed_outbound_hosts = Vec::new();
        for pattern in &grants.allowed_outbound_hosts {
            let parsed = pattern.parse::<HostPattern>().map_err(|e| {
                invalid(format!(
                    "invalid entry `{pattern}` in grants.allowed_outbound_hosts: {e}"
                ))
            })?;
            allowed_outbound_hosts.push(parsed);
        }
        if plugin.kind == PluginKind::ScoringModel && !allowed_outbound_hosts.is_empty() {
            return Err(invalid(
                "a scoring-model is pure: grants.allowed_outbound_hosts must be empty".into(),
            ));
        }

        let mut hcp_fields = BTreeSet::new();
        for name in &grants.hcp_fields {
            let field = name
                .parse::<HcpField>()
                .map_err(|e| invalid(format!("in grants.hcp_fields: {e}")))?;
            if !hcp_fields.insert(field) {
                return Err(invalid(format!(
                    "HCP field `{name}` is listed twice in grants.hcp_fields"
                )));
            }
        }
        if plugin.kind == PluginKind::ScoringModel
            && let Some(field) = hcp_fields.iter().find(|f| f.is_contact_detail())
        {
            return Err(invalid(format!(
                "a scoring-model may not be granted the contact detail `{field}`"
            )));
        }

        let limits = validate_limits(&limits).map_err(invalid)?;

        let mut flat = BTreeMap::new();
        for (key, value) in config {
            let value = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(invalid(format!(
                        "config key `{key}` must be a string, number or boolean, not {}",
                        other.type_str()
                    )));
                }
            };
            flat.insert(key, value);
        }

        Ok(Manifest {
            path: path.to_owned(),
            name: plugin.name,
            version: plugin.version,
            kind: plugin.kind,
            wit: plugin.wit,
            description: plugin.description,
            component_path,
            sha256,
            allowed_outbound_hosts,
            hcp_fields,
            limits,
            config: flat,
        })
    }
}

fn validate_limits(raw: &RawLimits) -> Result<Limits, String> {
    let memory_mib = raw.memory_mib.unwrap_or(DEFAULT_MEMORY_MIB);
    if !(1..=MAX_MEMORY_MIB).contains(&memory_mib) {
        return Err(format!(
            "limits.memory_mib is {memory_mib}; it must be between 1 and {MAX_MEMORY_MIB}"
        ));
    }
    let time_ms = raw.time_ms.unwrap_or(DEFAULT_TIME_MS);
    if !(1..=MAX_TIME_MS).contains(&time_ms) {
        return Err(format!(
            "limits.time_ms is {time_ms}; it must be between 1 and {MAX_TIME_MS}"
        ));
    }
    let http_timeout_ms = raw.http_timeout_ms.unwrap_or(time_ms).min(time_ms);
    if http_timeout_ms == 0 {
        return Err("limits.http_timeout_ms must be at least 1".into());
    }
    Ok(Limits {
        memory_mib,
        time: Duration::from_millis(u64::from(time_ms)),
        max_request_bytes: raw.max_request_bytes.unwrap_or(4 << 20),
        max_response_bytes: raw.max_response_bytes.unwrap_or(1 << 20),
        http_timeout: Duration::from_millis(u64::from(http_timeout_ms)),
    })
}

fn is_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && name.len() <= 64
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'))
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[plugin]
name = "email-adapter"
version = "0.1.0"
kind = "channel-adapter"
wit = "omnigate:plugin@0.1.0"
description = "sends e-mail"

[component]
path = "email.wasm"
sha256 = "ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789"

[grants]
allowed_outbound_hosts = ["https://api.mail.example:443"]
hcp_fields = ["name", "email"]

[limits]
memory_mib = 32
time_ms = 5000
http_timeout_ms = 2000

[config]
endpoint = "https://api.mail.example/v1/send"
batch_size = 50
"#;

    fn parse(text: &str) -> Result<Manifest, String> {
        Manifest::parse(Path::new("/plugins/email/plugin.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_complete_manifest_is_read_with_every_grant() {
        let m = parse(GOOD).unwrap();
        assert_eq!(m.name, "email-adapter");
        assert_eq!(m.kind, PluginKind::ChannelAdapter);
        assert_eq!(m.component_path, Path::new("/plugins/email/email.wasm"));
        assert_eq!(
            m.sha256,
            "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
        );
        assert_eq!(
            m.hcp_fields,
            BTreeSet::from([HcpField::Name, HcpField::Email])
        );
        assert_eq!(m.limits.memory_mib, 32);
        assert_eq!(m.limits.time, Duration::from_secs(5));
        assert_eq!(m.limits.http_timeout, Duration::from_secs(2));
        assert_eq!(m.config["batch_size"], "50");
    }

    #[test]
    fn an_unknown_key_is_an_error_that_names_the_key_and_the_line() {
        let text = GOOD.replace("time_ms = 5000", "time_ms = 5000\ncpu_ms = 3");
        let err = parse(&text).unwrap_err();
        assert!(err.contains("plugin.toml:20:1"), "{err}");
        assert!(err.contains("unknown field `cpu_ms`"), "{err}");
    }

    #[test]
    fn a_scoring_model_may_not_reach_the_network_or_see_contact_details() {
        let text = GOOD.replace("channel-adapter", "scoring-model");
        assert!(
            parse(&text)
                .unwrap_err()
                .contains("a scoring-model is pure")
        );
        let text = text.replace(r#"["https://api.mail.example:443"]"#, "[]");
        assert!(
            parse(&text)
                .unwrap_err()
                .contains("may not be granted the contact detail `email`")
        );
    }

    #[test]
    fn bad_values_are_refused_with_what_was_expected() {
        let cases = [
            (
                "name = \"email-adapter\"",
                "name = \"Email Adapter\"",
                "plugin name `Email Adapter`",
            ),
            (
                "omnigate:plugin@0.1.0",
                "omnigate:plugin@9.0.0",
                "unsupported wit `omnigate:plugin@9.0.0`",
            ),
            (
                "sha256 = \"ABCDEF",
                "sha256 = \"XYZ",
                "must be 64 hex digits",
            ),
            (
                "\"name\", \"email\"",
                "\"name\", \"ssn\"",
                "unknown HCP field `ssn`",
            ),
            ("\"name\", \"email\"", "\"name\", \"name\"", "listed twice"),
            (
                "memory_mib = 32",
                "memory_mib = 0",
                "limits.memory_mib is 0",
            ),
            (
                "time_ms = 5000",
                "time_ms = 999999",
                "limits.time_ms is 999999",
            ),
            (
                "https://api.mail.example:443",
                "ftp://x:21",
                "invalid entry `ftp://x:21`",
            ),
            (
                "batch_size = 50",
                "batch_size = [1]",
                "config key `batch_size` must be a string",
            ),
        ];
        for (from, to, expected) in cases {
            let text = GOOD.replace(from, to);
            assert_ne!(text, GOOD, "case `{to}` did not change the manifest");
            let err = parse(&text).unwrap_err();
            assert!(err.contains(expected), "`{to}` gave: {err}");
        }
    }

    #[test]
    fn the_http_timeout_never_exceeds_the_call_time() {
        let text = GOOD.replace("http_timeout_ms = 2000", "http_timeout_ms = 60000");
        assert_eq!(
            parse(&text).unwrap().limits.http_timeout,
            Duration::from_secs(5)
        );
    }
}
