//! `omnigate audit verify`: check the hash chain of the audit log.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use omnigate_core::store::AuditStore;
use omnigate_store::{SqliteStore, StoreOptions};

use crate::plugins::Format;

/// Audit subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the whole audit chain and name the first broken entry. Exit
    /// status 0 if intact, 1 if broken, 2 if the store cannot be read.
    Verify {
        /// Data directory of the host.
        #[arg(long, env = "OMNIGATE_DATA_DIR", default_value = "omnigate-data")]
        data_dir: PathBuf,
        /// Output format; JSON is `{"entries", "head": {"seq", "hash"} | null, "broken": {"seq", "problem"} | null}`.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

/// Runs an audit subcommand.
pub fn run(cmd: AuditCommand) -> ExitCode {
    let AuditCommand::Verify { data_dir, format } = cmd;
    if !data_dir.join("omnigate.db").is_file() {
        eprintln!("error: no omnigate store in `{}`", data_dir.display());
        return ExitCode::from(2);
    }
    let report = match SqliteStore::open(StoreOptions::new(&data_dir))
        .map_err(|e| e.to_string())
        .and_then(|s| s.verify_audit().map_err(|e| e.to_string()))
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "error: cannot verify the audit log in `{}`: {e}",
                data_dir.display()
            );
            return ExitCode::from(2);
        }
    };
    match format {
        Format::Json => match serde_json::to_string_pretty(&report) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        Format::Text => match (&report.broken, &report.head) {
            (None, Some(head)) => println!(
                "audit chain intact: {} entries, head {} {}",
                report.entries, head.seq, head.hash
            ),
            (None, None) => println!("audit chain intact: empty"),
            (Some(b), _) => println!(
                "audit chain BROKEN at entry {}: {} ({} entries checked)",
                b.seq, b.problem, report.entries
            ),
        },
    }
    if report.is_intact() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
