//! Build tasks that cargo alone does not do.
//!
//! `cargo xtask plugins` builds every plugin (`plugins/*`) and every test
//! plugin (`tests/plugins/*`) for `wasm32-wasip2` in release mode, then
//! packages each: the component goes to `target/plugins/<name>.wasm` (test
//! plugins: `target/test-plugins/`), and its manifest template
//! (`plugin.toml`) is written beside it as `<name>.toml` with the
//! `[component]` table filled in: the file name and its sha256.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use toml_edit::{DocumentMut, Item, Table, value};

const TARGET: &str = "wasm32-wasip2";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("plugins") => build_plugins(),
        _ => {
            eprintln!("usage: cargo xtask plugins");
            eprintln!();
            eprintln!("  plugins   build and package every plugin for {TARGET}");
            std::process::exit(2);
        }
    }
}

/// A plugin crate and where its package goes.
struct PluginCrate {
    dir: PathBuf,
    package: String,
    out_dir: PathBuf,
}

fn build_plugins() -> Result<()> {
    let root = workspace_root();
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|d| if d.is_absolute() { d } else { root.join(d) })
        .unwrap_or_else(|| root.join("target"));
    ensure_target()?;

    let mut crates = Vec::new();
    for (folder, out) in [("plugins", "plugins"), ("tests/plugins", "test-plugins")] {
        for dir in subdirs(&root.join(folder))? {
            if dir.join("plugin.toml").is_file() {
                crates.push(PluginCrate {
                    package: package_name(&dir)?,
                    dir,
                    out_dir: target_dir.join(out),
                });
            }
        }
    }
    if crates.is_empty() {
        bail!("no plugin crates (folders with a plugin.toml) under plugins/ or tests/plugins/");
    }

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .current_dir(&root)
        .args(["build", "--release", "--target", TARGET]);
    for c in &crates {
        build.args(["--package", &c.package]);
    }
    eprintln!("building {} plugins for {TARGET}", crates.len());
    let status = build.status().context("running cargo build")?;
    if !status.success() {
        bail!("cargo build for {TARGET} failed");
    }

    for c in &crates {
        let wasm = target_dir
            .join(TARGET)
            .join("release")
            .join(format!("{}.wasm", c.package.replace('-', "_")));
        let (name, sha) = package(c, &wasm)?;
        eprintln!(
            "packaged {name}: {} (sha256 {})",
            c.out_dir.join(format!("{name}.wasm")).display(),
            &sha[..16]
        );
    }
    Ok(())
}

/// Copies the component next to its finished manifest; returns the plugin
/// name and the component's sha256.
fn package(c: &PluginCrate, wasm: &Path) -> Result<(String, String)> {
    let template_path = c.dir.join("plugin.toml");
    let template = std::fs::read_to_string(&template_path)
        .with_context(|| format!("reading {}", template_path.display()))?;
    let mut doc: DocumentMut = template
        .parse()
        .with_context(|| format!("parsing {}", template_path.display()))?;
    let name = doc["plugin"]["name"]
        .as_str()
        .with_context(|| format!("{} has no plugin.name", template_path.display()))?
        .to_owned();
    if doc.contains_key("component") {
        bail!(
            "{} must not have a [component] table: packaging writes it",
            template_path.display()
        );
    }

    let bytes = std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let sha = hex::encode(Sha256::digest(&bytes));
    std::fs::create_dir_all(&c.out_dir)
        .with_context(|| format!("creating {}", c.out_dir.display()))?;
    let file = format!("{name}.wasm");
    std::fs::write(c.out_dir.join(&file), &bytes)?;

    let mut component = Table::new();
    component["path"] = value(file);
    component["sha256"] = value(sha.clone());
    doc["component"] = Item::Table(component);
    std::fs::write(c.out_dir.join(format!("{name}.toml")), doc.to_string())?;
    Ok((name, sha))
}

fn ensure_target() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    match installed {
        Ok(out)
            if String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.trim() == TARGET) =>
        {
            Ok(())
        }
        Ok(_) => {
            eprintln!("installing the {TARGET} target (rustup target add {TARGET})");
            let status = Command::new("rustup")
                .args(["target", "add", TARGET])
                .status()?;
            if status.success() {
                Ok(())
            } else {
                bail!("`rustup target add {TARGET}` failed")
            }
        }
        // No rustup: let cargo say whether the target is there.
        Err(_) => Ok(()),
    }
}

fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(Path::to_path_buf).unwrap_or(here)
}

fn subdirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            dirs.push(path);
        }
    }
    dirs.sort();
    Ok(dirs)
}

fn package_name(dir: &Path) -> Result<String> {
    let path = dir.join("Cargo.toml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let doc: DocumentMut = text
        .parse()
        .with_context(|| format!("parsing {}", path.display()))?;
    Ok(doc["package"]["name"]
        .as_str()
        .with_context(|| format!("{} has no package.name", path.display()))?
        .to_owned())
}
