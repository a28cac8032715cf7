//! `omnigate plugins inspect|list`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Subcommand, ValueEnum};
use omnigate_runtime::inspect::{ComponentShape, check_is_component};
use omnigate_runtime::registry::manifests_in;
use omnigate_runtime::{Manifest, PluginKind, Runtime, RuntimeConfig};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Plugin subcommands.
#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// Show what a plugin is: its world, imports and exports, manifest, hash
    /// check and grants. Exit status 1 if it would not load.
    Inspect {
        /// A plugin manifest (`.toml`) or a component (`.wasm`).
        path: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// List the plugins of a folder, each with whether it would load.
    List {
        /// Folder of packaged plugins.
        #[arg(long, env = "OMNIGATE_PLUGINS", default_value = "target/plugins")]
        plugins: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// One JSON object, documented in docs/plugins.md.
    Json,
}

/// Runs a plugins subcommand.
pub fn run(cmd: PluginsCommand) -> ExitCode {
    let result = match cmd {
        PluginsCommand::Inspect { path, format } => inspect(&path, format),
        PluginsCommand::List { plugins, format } => list(&plugins, format),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// What `inspect` reports; also the `--format json` schema.
#[derive(Debug, Serialize)]
struct Report {
    /// The file inspected.
    path: PathBuf,
    /// `true` when the plugin would load.
    ok: bool,
    /// Why it would not load.
    error: Option<String>,
    /// sha256 of the component file.
    sha256: Option<String>,
    /// The world the component's exports fit, if any.
    world: Option<PluginKind>,
    /// The component's imports and exports.
    component: Option<ComponentShape>,
    /// The validated manifest, for a `.toml`.
    manifest: Option<ManifestView>,
}

#[derive(Debug, Serialize)]
struct ManifestView {
    name: String,
    version: String,
    kind: PluginKind,
    wit: String,
    description: String,
    component: PathBuf,
    sha256: String,
    allowed_outbound_hosts: Vec<String>,
    hcp_fields: Vec<String>,
    memory_mib: u32,
    time_ms: u128,
    http_timeout_ms: u128,
    max_request_bytes: u64,
    max_response_bytes: u64,
    /// Config values; those whose key looks secret are shown as `***`.
    config: std::collections::BTreeMap<String, String>,
}

impl From<&Manifest> for ManifestView {
    fn from(m: &Manifest) -> Self {
        let secret = |k: &str| {
            ["key", "secret", "token", "password"]
                .iter()
                .any(|s| k.to_ascii_lowercase().contains(s))
        };
        ManifestView {
            name: m.name.clone(),
            version: m.version.clone(),
            kind: m.kind,
            wit: m.wit.clone(),
            description: m.description.clone(),
            component: m.component_path.clone(),
            sha256: m.sha256.clone(),
            allowed_outbound_hosts: m
                .allowed_outbound_hosts
                .iter()
                .map(ToString::to_string)
                .collect(),
            hcp_fields: m.hcp_fields.iter().map(ToString::to_string).collect(),
            memory_mib: m.limits.memory_mib,
            time_ms: m.limits.time.as_millis(),
            http_timeout_ms: m.limits.http_timeout.as_millis(),
            max_request_bytes: m.limits.max_request_bytes,
            max_response_bytes: m.limits.max_response_bytes,
            config: m
                .config
                .iter()
                .map(|(k, v)| (k.clone(), if secret(k) { "***".into() } else { v.clone() }))
                .collect(),
        }
    }
}

fn inspect(path: &Path, format: Format) -> Result<bool> {
    let runtime =
        Runtime::new(RuntimeConfig::default()).context("cannot start the plugin runtime")?;
    let report = inspect_one(&runtime, path);
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Text => print_report(&report),
    }
    Ok(report.ok)
}

fn inspect_one(runtime: &Runtime, path: &Path) -> Report {
    let mut report = Report {
        path: path.to_owned(),
        ok: false,
        error: None,
        sha256: None,
        world: None,
        component: None,
        manifest: None,
    };
    let is_manifest = path.extension().is_some_and(|e| e == "toml");
    let wasm_path = if is_manifest {
        match Manifest::load(path) {
            Ok(m) => {
                let wasm = m.component_path.clone();
                report.manifest = Some(ManifestView::from(&m));
                wasm
            }
            Err(e) => {
                report.error = Some(e.to_string());
                return report;
            }
        }
    } else {
        path.to_owned()
    };
    let bytes = match std::fs::read(&wasm_path) {
        Ok(b) => b,
        Err(e) => {
            report.error = Some(format!("cannot read `{}`: {e}", wasm_path.display()));
            return report;
        }
    };
    report.sha256 = Some(hex::encode(Sha256::digest(&bytes)));
    if let Err(e) = check_is_component(&wasm_path, &bytes) {
        report.error = Some(e.to_string());
        return report;
    }
    match runtime.shape_of(&bytes) {
        Ok(shape) => {
            report.world = shape.world();
            report.component = Some(shape);
        }
        Err(e) => {
            report.error = Some(format!("cannot compile `{}`: {e}", wasm_path.display()));
            return report;
        }
    }
    if is_manifest {
        // The full load: hash pin, world, imports, self-description.
        match runtime.load(path) {
            Ok(_) => report.ok = true,
            Err(e) => report.error = Some(e.to_string()),
        }
    } else {
        report.ok = report.world.is_some();
        if !report.ok {
            report.error = Some(
                "it exports neither `omnigate:plugin/delivery` nor `omnigate:plugin/scoring`"
                    .into(),
            );
        }
    }
    report
}

fn print_report(r: &Report) {
    println!("{}", r.path.display());
    if let Some(m) = &r.manifest {
        println!("  plugin       {} {} ({})", m.name, m.version, m.kind);
        println!("  wit          {}", m.wit);
        if !m.description.is_empty() {
            println!("  description  {}", m.description);
        }
        println!("  component    {}", m.component.display());
        println!("  pinned hash  {}", m.sha256);
    }
    if let Some(sha) = &r.sha256 {
        let check = match &r.manifest {
            Some(m) if m.sha256 == *sha => " (matches the manifest)",
            Some(_) => " (DOES NOT match the manifest)",
            None => "",
        };
        println!("  file hash    {sha}{check}");
    }
    if let Some(world) = r.world {
        println!("  world        {world}");
    }
    if let Some(m) = &r.manifest {
        println!("  grants");
        println!("    outbound   {}", list_or_none(&m.allowed_outbound_hosts));
        println!("    hcp fields {}", list_or_none(&m.hcp_fields));
        println!(
            "  limits       {} MiB, {} ms per call, HTTP {} ms, request {} B, response {} B",
            m.memory_mib, m.time_ms, m.http_timeout_ms, m.max_request_bytes, m.max_response_bytes
        );
        if !m.config.is_empty() {
            println!("  config");
            for (k, v) in &m.config {
                println!("    {k} = {v}");
            }
        }
    }
    if let Some(c) = &r.component {
        println!("  imports");
        for i in &c.imports {
            println!("    {i}");
        }
        println!("  exports");
        for e in &c.exports {
            println!("    {e}");
        }
    }
    match &r.error {
        None => println!("  status       ok: loads"),
        Some(e) => println!("  status       REFUSED: {e}"),
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".into()
    } else {
        items.join(", ")
    }
}

/// One row of `list`; also the `--format json` schema.
#[derive(Debug, Serialize)]
struct Row {
    manifest: PathBuf,
    name: Option<String>,
    version: Option<String>,
    kind: Option<PluginKind>,
    sha256: Option<String>,
    ok: bool,
    error: Option<String>,
}

fn list(dir: &Path, format: Format) -> Result<bool> {
    let runtime =
        Runtime::new(RuntimeConfig::default()).context("cannot start the plugin runtime")?;
    let manifests =
        manifests_in(dir).with_context(|| format!("cannot list `{}`", dir.display()))?;
    let rows: Vec<Row> = manifests
        .iter()
        .map(|path| {
            let manifest = Manifest::load(path).ok();
            let loaded = runtime.load(path);
            Row {
                manifest: path.clone(),
                name: manifest.as_ref().map(|m| m.name.clone()),
                version: manifest.as_ref().map(|m| m.version.clone()),
                kind: manifest.as_ref().map(|m| m.kind),
                sha256: manifest.as_ref().map(|m| m.sha256.clone()),
                ok: loaded.is_ok(),
                error: loaded.err().map(|e| e.to_string()),
            }
        })
        .collect();
    let all_ok = rows.iter().all(|r| r.ok);
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "plugins": rows }))?
        ),
        Format::Text => {
            if rows.is_empty() {
                println!("no plugin manifests in `{}`", dir.display());
            }
            for r in &rows {
                let name = r.name.as_deref().unwrap_or("?");
                let version = r.version.as_deref().unwrap_or("?");
                let kind = r.kind.map_or("?".to_owned(), |k| k.to_string());
                match &r.error {
                    None => println!("{name:<20} {version:<8} {kind:<16} ok"),
                    Some(e) => println!("{name:<20} {version:<8} {kind:<16} REFUSED: {e}"),
                }
            }
        }
    }
    Ok(all_ok)
}
