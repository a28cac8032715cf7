//! Reading a policy directory: the six files, their version hash, and the
//! three steps (parse, validate, compile) in order.

use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::compile::{CompiledPolicy, compile};
use crate::diag::{Diagnostic, Diagnostics};
use crate::syntax::SourceFile;
use crate::validate::{Parsed, validate};

/// The files a policy set consists of, by concern.
pub const POLICY_FILES: [&str; 6] = [
    "caps.toml",
    "channels.toml",
    "claims.toml",
    "consent.toml",
    "markets.toml",
    "products.toml",
];

/// The version of a set of files: sha256 over the files sorted by path,
/// each contributing its path, a NUL, its length in decimal, a NUL, and its
/// content, so that no two different sets hash alike.
pub fn version_of(files: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = files.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut h = Sha256::new();
    for (path, content) in sorted {
        h.update(path.as_bytes());
        h.update([0]);
        h.update(content.len().to_string().as_bytes());
        h.update([0]);
        h.update(content.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Loads, validates and compiles the policy set in `dir`.
pub fn load_dir(dir: &Path) -> Result<CompiledPolicy, Diagnostics> {
    let mut files = Vec::new();
    let mut diags = Vec::new();
    // A stray .toml file is most likely a misspelt policy file that would
    // otherwise be silently ignored.
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".toml") && !POLICY_FILES.contains(&n.as_str()))
            .collect();
        names.sort();
        for n in names {
            diags.push(
                Diagnostic::bare(format!(
                    "unexpected policy file `{}`",
                    dir.join(&n).display()
                ))
                .with_help(format!(
                    "a policy set has exactly: {}",
                    POLICY_FILES.join(", ")
                )),
            );
        }
    }
    for name in POLICY_FILES {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => files.push((name.to_owned(), path.display().to_string(), text)),
            Err(e) => diags.push(Diagnostic::bare(format!(
                "cannot read `{}`: {}",
                path.display(),
                e.to_string().to_lowercase()
            ))),
        }
    }
    if !diags.is_empty() {
        return Err(Diagnostics(diags));
    }
    load_sources(files)
}

/// Loads a policy set from in-memory files: `(file name, name shown in
/// diagnostics, text)`, one per entry of [`POLICY_FILES`].
pub fn load_sources(files: Vec<(String, String, String)>) -> Result<CompiledPolicy, Diagnostics> {
    let version = version_of(
        &files
            .iter()
            .map(|(k, _, t)| (k.clone(), t.clone()))
            .collect::<Vec<_>>(),
    );
    let get = |name: &str| {
        files
            .iter()
            .find(|(k, _, _)| k == name)
            .map(|(_, shown, text)| SourceFile {
                name: shown.clone(),
                text: Arc::new(text.clone()),
            })
            .ok_or_else(|| Diagnostic::bare(format!("missing policy file `{name}`")))
    };
    let mut diags = Vec::new();
    macro_rules! parse {
        ($name:literal) => {
            match get($name).and_then(|f| f.parse().map(|x| (f, x))) {
                Ok(x) => Some(x),
                Err(d) => {
                    diags.push(d);
                    None
                }
            }
        };
    }
    let claims = parse!("claims.toml");
    let products = parse!("products.toml");
    let markets = parse!("markets.toml");
    let channels = parse!("channels.toml");
    let consent = parse!("consent.toml");
    let caps = parse!("caps.toml");
    let (Some(claims), Some(products), Some(markets), Some(channels), Some(consent), Some(caps)) =
        (claims, products, markets, channels, consent, caps)
    else {
        return Err(Diagnostics(diags));
    };
    let set = validate(Parsed {
        version,
        claims,
        products,
        markets,
        channels,
        consent,
        caps,
    })
    .map_err(Diagnostics)?;
    compile(set).map_err(Diagnostics)
}
