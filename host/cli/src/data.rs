//! The data commands: `omnigate hcp`, `consent`, `events` and `content`,
//! straight on a data directory, over the same [`Service`] as the HTTP API.
//!
//! Exit status: 0 done; 1 refused by a rule (wrong state, the author
//! signing, a role not required, a version that is not current, a merge
//! conflict); 2 bad input or usage (unparsable or invalid input, an unknown
//! HCP, version or item, a missing actor, no store, a policy set that does
//! not load, a storage failure). With `--format json` the outcome is one
//! JSON object on standard output, the same as the API's response body, and
//! an error is one JSON object on standard error (docs/api.md).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use omnigate_core::Store;
use omnigate_core::event::{UnixMillis, now_millis};
use omnigate_policy::PolicyHandle;
use omnigate_service::views::{HcpView, VersionView};
use omnigate_service::{ErrorKind, Location, Service, ServiceError, input};
use omnigate_store::{SqliteStore, StoreOptions};
use serde::Serialize;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// One JSON object (stable, documented in docs/api.md).
    Json,
}

/// Options every data command takes.
#[derive(Debug, Args)]
pub struct Common {
    /// Data directory of the host.
    #[arg(
        long,
        env = "OMNIGATE_DATA_DIR",
        default_value = "omnigate-data",
        global = true
    )]
    pub(crate) data_dir: PathBuf,
    /// Who is acting, as recorded in the audit log (required by commands
    /// that change something).
    #[arg(long, env = "OMNIGATE_ACTOR", global = true)]
    pub(crate) actor: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text, global = true)]
    pub(crate) format: Format,
}

/// `omnigate hcp ...`.
#[derive(Debug, Args)]
pub struct HcpArgs {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: HcpCommand,
}

#[derive(Debug, Subcommand)]
enum HcpCommand {
    /// Insert or replace HCP profiles from JSON lines (one profile per line;
    /// `-` reads standard input).
    Import {
        /// The file, or `-`.
        file: String,
    },
    /// One HCP: profile (contact details only by name), consent, features,
    /// journeys, latest events.
    Show {
        /// The HCP id.
        id: String,
    },
    /// Link two records of the same person (reversible).
    Merge {
        /// The record that stays.
        survivor: String,
        /// The record merged into it.
        merged: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Undo a merge.
    Unmerge {
        /// The merge id `merge` printed.
        merge_id: i64,
        /// Why.
        #[arg(long)]
        reason: String,
    },
}

/// `omnigate consent ...`.
#[derive(Debug, Args)]
pub struct ConsentArgs {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: ConsentCommand,
}

#[derive(Debug, Subcommand)]
enum ConsentCommand {
    /// Append consent records from JSON lines, all or none (`-` reads
    /// standard input).
    Record {
        /// The file, or `-`.
        file: String,
    },
    /// The consent history of an HCP, oldest first.
    Show {
        /// The HCP id.
        id: String,
    },
}

/// `omnigate events ...`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: EventsCommand,
}

#[derive(Debug, Subcommand)]
enum EventsCommand {
    /// Store engagement events from JSON lines (`-` reads standard input).
    /// The whole input is checked first; it is stored in transactions of
    /// 10,000 events, and events are idempotent by id, so an interrupted
    /// run can be repeated.
    Ingest {
        /// The file, or `-`.
        file: String,
        /// The batch id (default: the file name and the sha256 of its
        /// content, so the same file is the same batch).
        #[arg(long)]
        batch_id: Option<String>,
    },
}

/// `omnigate content ...`.
#[derive(Debug, Args)]
pub struct ContentArgs {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: ContentCommand,
}

#[derive(Debug, Subcommand)]
enum ContentCommand {
    /// Store a JSON file (`-`: standard input) as the new current version of
    /// an item, in draft; prints its hash.
    Put {
        /// The content item id.
        item: String,
        /// The version body, or `-`.
        file: String,
    },
    /// A version: state, sign-offs, missing roles, pre-screen.
    Show {
        /// The version hash.
        hash: String,
    },
    /// An item's versions.
    List {
        /// The content item id.
        item: String,
    },
    /// Submit a draft for review; prints the pre-screen.
    Submit {
        /// The version hash.
        hash: String,
        /// The policy directory to pre-screen with.
        #[arg(long, env = "OMNIGATE_POLICIES", default_value = "policies")]
        policies: PathBuf,
    },
    /// Sign off one role (the actor is the reviewer). The roles each market
    /// requires come from the policy files (`review_roles` in markets.toml).
    SignOff {
        /// The version hash.
        hash: String,
        /// `medical`, `legal` or `regulatory`.
        #[arg(long)]
        role: String,
        /// The policy directory (which roles each market requires).
        #[arg(long, env = "OMNIGATE_POLICIES", default_value = "policies")]
        policies: PathBuf,
    },
    /// Send a version back to its author.
    RequestChanges {
        /// The version hash.
        hash: String,
        /// The reviewer's role.
        #[arg(long)]
        role: String,
        /// What to change.
        #[arg(long)]
        note: String,
        /// The policy directory (which roles each market requires).
        #[arg(long, env = "OMNIGATE_POLICIES", default_value = "policies")]
        policies: PathBuf,
    },
    /// Take an approved version out of use.
    Withdraw {
        /// The version hash.
        hash: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Expire every approved version whose expiry date has come.
    Expire {
        /// The time to expire at, in milliseconds since the Unix epoch
        /// (default: now).
        #[arg(long)]
        now: Option<UnixMillis>,
    },
}

/// A failure of a data command, with its exit status.
pub(crate) enum Failure {
    Service(ServiceError),
    Usage(String),
}

impl From<ServiceError> for Failure {
    fn from(e: ServiceError) -> Self {
        Failure::Service(e)
    }
}

pub(crate) type Outcome = Result<(), Failure>;

#[derive(Serialize)]
struct ErrorOut<'a> {
    code: &'a str,
    message: String,
    location: Option<&'a Location>,
}

pub(crate) fn finish(format: Format, outcome: Outcome) -> ExitCode {
    let (code, message, location, status) = match &outcome {
        Ok(()) => return ExitCode::SUCCESS,
        Err(Failure::Usage(m)) => ("usage", m.clone(), None, 2),
        Err(Failure::Service(e)) => {
            let status = if e.kind() == ErrorKind::Refused { 1 } else { 2 };
            (e.code(), e.to_string(), e.location(), status)
        }
    };
    match format {
        Format::Text => eprintln!("error: {message}"),
        Format::Json => {
            let out = ErrorOut {
                code,
                message,
                location,
            };
            eprintln!(
                "{}",
                serde_json::to_string(&out).unwrap_or_else(|_| "{}".into())
            );
        }
    }
    ExitCode::from(status)
}

/// Writes to standard output; a closed pipe is not an error.
fn print_out(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

pub(crate) fn emit<T: Serialize>(
    format: Format,
    value: &T,
    text: impl FnOnce(&T) -> String,
) -> Outcome {
    match format {
        Format::Json => {
            let json = serde_json::to_string_pretty(value)
                .map_err(|e| Failure::Usage(format!("cannot encode the output: {e}")))?;
            print_out(&format!("{json}\n"));
        }
        Format::Text => print_out(&text(value)),
    }
    Ok(())
}

impl Common {
    pub(crate) fn actor(&self) -> Result<String, Failure> {
        match &self.actor {
            Some(a) => Ok(omnigate_service::actor(a)?),
            None => Err(Failure::Usage(
                "this command changes something: say who is acting with --actor NAME or OMNIGATE_ACTOR"
                    .into(),
            )),
        }
    }

    /// The service over the store in `--data-dir` (see [`Common::store`]).
    pub(crate) fn service(
        &self,
        create: bool,
        policy: Arc<PolicyHandle>,
    ) -> Result<Service, Failure> {
        let store = self.sqlite(create)?;
        // The roles each market requires come from the policy files.
        if let Some(p) = policy.current() {
            store.set_approval_policy(p.set().approval.clone());
        }
        Ok(Service::new(Arc::new(store), policy))
    }

    /// The store in `--data-dir`. `create`: a command that writes may
    /// create the store; one that only reads needs it to exist.
    pub(crate) fn store(&self, create: bool) -> Result<Arc<dyn Store>, Failure> {
        Ok(Arc::new(self.sqlite(create)?))
    }

    fn sqlite(&self, create: bool) -> Result<SqliteStore, Failure> {
        if !create && !self.data_dir.join("omnigate.db").is_file() {
            return Err(Failure::Usage(format!(
                "no omnigate store in `{}` (set --data-dir or OMNIGATE_DATA_DIR)",
                self.data_dir.display()
            )));
        }
        let store = SqliteStore::open(StoreOptions::new(&self.data_dir)).map_err(|e| {
            Failure::Usage(format!(
                "cannot open the store in `{}`: {e}",
                self.data_dir.display()
            ))
        })?;
        Ok(store)
    }
}

/// Reads a JSON definition (a campaign's, a journey's) from a file or `-`,
/// checked by `parse`; errors name the file and the JSON path.
pub(crate) fn read_definition<T>(
    file: &str,
    parse: impl FnOnce(serde_json::Value, &Location) -> omnigate_service::ServiceResult<T>,
) -> Result<T, Failure> {
    let mut input = open_input(file)?;
    let mut text = String::new();
    input
        .reader
        .read_to_string(&mut text)
        .map_err(|e| Failure::Usage(format!("cannot read `{file}`: {e}")))?;
    let at = Location::Document {
        name: input.name.clone(),
        path: "$".into(),
    };
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Failure::Service(ServiceError::invalid(
            at.clone(),
            format!("not JSON: {e} (line {}, column {})", e.line(), e.column()),
        ))
    })?;
    Ok(parse(value, &at)?)
}

/// Loads the policy set in `dir`; `consequence` ends the message when it
/// does not load (e.g. ", so the version cannot be pre-screened").
pub(crate) fn load_policy(dir: &Path, consequence: &str) -> Result<Arc<PolicyHandle>, Failure> {
    let policy = Arc::new(PolicyHandle::empty());
    policy.reload(dir).map_err(|d| {
        Failure::Usage(format!(
            "the policies in `{}` do not load{consequence}:\n{}",
            dir.display(),
            d.render()
        ))
    })?;
    Ok(policy)
}

/// An input named on the command line: a file or `-`.
pub(crate) struct Input {
    pub(crate) name: String,
    pub(crate) reader: Box<dyn BufRead>,
    len: Option<u64>,
}

pub(crate) fn open_input(file: &str) -> Result<Input, Failure> {
    if file == "-" {
        return Ok(Input {
            name: "standard input".into(),
            reader: Box::new(BufReader::new(std::io::stdin())),
            len: None,
        });
    }
    let f = File::open(file).map_err(|e| Failure::Usage(format!("cannot open `{file}`: {e}")))?;
    let len = f.metadata().ok().map(|m| m.len());
    Ok(Input {
        name: file.to_owned(),
        reader: Box::new(BufReader::new(f)),
        len,
    })
}

/// A progress bar on standard error, shown only on a terminal.
fn bar(len: Option<u64>, what: &str) -> ProgressBar {
    let pb = match len {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    let template = if len.is_some() {
        "{msg:>10} [{bar:30}] {percent:>3}% {elapsed_precise}"
    } else {
        "{msg:>10} {spinner} {pos} {elapsed_precise}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(what.to_owned());
    pb
}

/// Reads JSON lines with a progress bar over the bytes read.
fn read_lines<T>(
    input: Input,
    parse: impl FnMut(serde_json::Value, &Location) -> omnigate_service::ServiceResult<T>,
) -> Result<input::Batch<T>, Failure> {
    let pb = bar(input.len, "reading");
    let batch = input::read_json_lines(input.reader, &input.name, parse, &mut |bytes| {
        pb.set_position(bytes);
    });
    pb.finish_and_clear();
    Ok(batch?)
}

/// Runs `omnigate hcp ...`.
pub fn hcp(args: HcpArgs) -> ExitCode {
    let c = &args.common;
    let outcome = (|| -> Outcome {
        let none = Arc::new(PolicyHandle::empty());
        match &args.command {
            HcpCommand::Import { file } => {
                let actor = c.actor()?;
                let input = open_input(file)?;
                let name = input.name.clone();
                let batch = read_lines(input, input::profile)?;
                let service = c.service(true, none)?;
                let pb = bar(Some(batch.len() as u64), "storing");
                let out = service.import_profiles_chunked(&actor, &batch, &mut |n| {
                    pb.set_position(n as u64);
                });
                pb.finish_and_clear();
                let out = out?;
                emit(c.format, &out, |o| {
                    format!(
                        "imported {} profiles from {name}: {} new, {} changed, {} unchanged\n",
                        batch.len(),
                        o.inserted,
                        o.updated,
                        o.unchanged
                    )
                })
            }
            HcpCommand::Show { id } => {
                let out = c.service(false, none)?.hcp(id, now_millis())?;
                emit(c.format, &out, show_hcp)
            }
            HcpCommand::Merge {
                survivor,
                merged,
                reason,
            } => {
                let actor = c.actor()?;
                let out = c
                    .service(false, none)?
                    .merge(&actor, survivor, merged, reason)?;
                emit(c.format, &out, |o| {
                    format!(
                        "merged `{merged}` into `{survivor}` (merge {}; undo with `omnigate hcp unmerge {}`)\n",
                        o.merge_id, o.merge_id
                    )
                })
            }
            HcpCommand::Unmerge { merge_id, reason } => {
                let actor = c.actor()?;
                c.service(false, none)?.unmerge(&actor, *merge_id, reason)?;
                let out = serde_json::json!({"merge_id": merge_id, "undone": true});
                emit(c.format, &out, |_| format!("merge {merge_id} undone\n"))
            }
        }
    })();
    finish(c.format, outcome)
}

/// Runs `omnigate consent ...`.
pub fn consent(args: ConsentArgs) -> ExitCode {
    let c = &args.common;
    let outcome = (|| -> Outcome {
        let none = Arc::new(PolicyHandle::empty());
        match &args.command {
            ConsentCommand::Record { file } => {
                let actor = c.actor()?;
                let input = open_input(file)?;
                let name = input.name.clone();
                let batch = read_lines(input, input::consent)?;
                let out = c.service(false, none)?.record_consents(&actor, &batch)?;
                emit(c.format, &out, |o| {
                    format!("recorded {} consent records from {name}\n", o.recorded)
                })
            }
            ConsentCommand::Show { id } => {
                let out = c.service(false, none)?.consent_history(id)?;
                emit(c.format, &out, |o| {
                    let mut s = format!(
                        "consent of `{id}`, current per scope ({}):\n",
                        o.current.len()
                    );
                    for r in &o.current {
                        s.push_str(&consent_line(r));
                    }
                    s.push_str(&format!(
                        "history ({} records, oldest first):\n",
                        o.records.len()
                    ));
                    for r in &o.records {
                        s.push_str(&consent_line(r));
                    }
                    s
                })
            }
        }
    })();
    finish(c.format, outcome)
}

/// Runs `omnigate events ...`.
pub fn events(args: EventsArgs) -> ExitCode {
    let c = &args.common;
    let outcome = (|| -> Outcome {
        let EventsCommand::Ingest { file, batch_id } = &args.command;
        let actor = c.actor()?;
        let mut input = open_input(file)?;
        // The default batch id is the content's: read it whole first.
        let (batch, default_id) = {
            let mut text = Vec::new();
            input
                .reader
                .read_to_end(&mut text)
                .map_err(|e| Failure::Usage(format!("cannot read `{}`: {e}", input.name)))?;
            let id = format!(
                "{}:{}",
                Path::new(&input.name)
                    .file_name()
                    .map_or_else(|| input.name.clone(), |n| n.to_string_lossy().into_owned()),
                &omnigate_core::canonical::sha256_hex(&text)[..16]
            );
            let len = text.len() as u64;
            let reader = Input {
                name: input.name.clone(),
                reader: Box::new(std::io::Cursor::new(text)),
                len: Some(len),
            };
            (read_lines(reader, input::event)?, id)
        };
        let batch_id = batch_id.clone().unwrap_or(default_id);
        let service = c.service(false, Arc::new(PolicyHandle::empty()))?;
        let pb = bar(Some(batch.len() as u64), "storing");
        let out = service.ingest_events_chunked(&actor, &batch_id, &batch, &mut |n| {
            pb.set_position(n as u64);
        });
        pb.finish_and_clear();
        let out = out?;
        emit(c.format, &out, |o| {
            if o.replay {
                format!(
                    "batch `{}` was stored before: nothing added ({} events already stored)\n",
                    o.batch_id, o.duplicates
                )
            } else {
                format!(
                    "batch `{}`: {} events stored, {} already stored\n",
                    o.batch_id, o.accepted, o.duplicates
                )
            }
        })
    })();
    finish(c.format, outcome)
}

/// Runs `omnigate content ...`.
pub fn content(args: ContentArgs) -> ExitCode {
    let c = &args.common;
    let outcome = (|| -> Outcome {
        let none = || Arc::new(PolicyHandle::empty());
        match &args.command {
            ContentCommand::Put { item, file } => {
                let actor = c.actor()?;
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
                let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                    ServiceError::invalid(at.clone(), format!("not valid JSON: {e}"))
                })?;
                let body = input::content_body(value, &at)?;
                let out = c.service(true, none())?.put_version(&actor, item, &body)?;
                emit(c.format, &out, |o| {
                    let what = if o.created {
                        "stored"
                    } else {
                        "already stored"
                    };
                    format!("{}\n{what}: version of `{}`, {}\n", o.hash, o.item, o.state)
                })
            }
            ContentCommand::Show { hash } => {
                let out = c.service(false, none())?.version(hash)?;
                emit(c.format, &out, show_version)
            }
            ContentCommand::List { item } => {
                let out = c.service(false, none())?.versions(item)?;
                emit(c.format, &out, |o| {
                    let mut s = format!("versions of `{}`, oldest first\n", o.item);
                    for v in &o.versions {
                        s.push_str(&format!(
                            "{} {:<17} {} by {}{}\n",
                            v.hash,
                            v.state.as_str(),
                            utc(v.created_at),
                            v.author,
                            if v.current { " (current)" } else { "" }
                        ));
                    }
                    s
                })
            }
            ContentCommand::Submit { hash, policies } => {
                let actor = c.actor()?;
                let policy = load_policy(policies, ", so the version cannot be pre-screened")?;
                let out = c.service(false, policy)?.submit(&actor, hash)?;
                emit(c.format, &out, |o| {
                    let report = serde_json::to_value(&o.prescreen).unwrap_or_default();
                    format!(
                        "submitted {} for review ({})\n{}",
                        o.hash,
                        o.state,
                        prescreen_text(&report, &o.prescreen.policy_version)
                    )
                })
            }
            ContentCommand::SignOff {
                hash,
                role,
                policies,
            } => {
                let actor = c.actor()?;
                let policy = load_policy(policies, ", so the roles to sign are not known")?;
                let out = c.service(false, policy)?.sign_off(&actor, hash, role)?;
                emit(c.format, &out, |o| {
                    let missing: Vec<&str> = o.missing_roles.iter().map(|r| r.as_str()).collect();
                    if missing.is_empty() {
                        format!("signed `{role}` as `{actor}`: {} is {}\n", o.hash, o.state)
                    } else {
                        format!(
                            "signed `{role}` as `{actor}`: {} is {}; still to sign: {}\n",
                            o.hash,
                            o.state,
                            missing.join(", ")
                        )
                    }
                })
            }
            ContentCommand::RequestChanges {
                hash,
                role,
                note,
                policies,
            } => {
                let actor = c.actor()?;
                let policy = load_policy(policies, ", so the roles to sign are not known")?;
                let out = c
                    .service(false, policy)?
                    .request_changes(&actor, hash, role, note)?;
                emit(c.format, &out, |o| {
                    format!("{} is {}: sent back to its author\n", o.hash, o.state)
                })
            }
            ContentCommand::Withdraw { hash, reason } => {
                let actor = c.actor()?;
                let out = c.service(false, none())?.withdraw(&actor, hash, reason)?;
                emit(c.format, &out, |o| format!("{} is {}\n", o.hash, o.state))
            }
            ContentCommand::Expire { now } => {
                let actor = c.actor()?;
                let now = now.unwrap_or_else(now_millis);
                let out = c.service(false, none())?.expire_due(&actor, now)?;
                emit(c.format, &out, |o| {
                    let mut s = format!("{} versions expired\n", o.expired.len());
                    for h in &o.expired {
                        s.push_str(&format!("{h}\n"));
                    }
                    s
                })
            }
        }
    })();
    finish(c.format, outcome)
}

/// A UTC time for people: `2026-11-23 14:05:09Z`.
pub(crate) fn utc(ms: UnixMillis) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn consent_line(r: &omnigate_service::views::ConsentView) -> String {
    format!(
        "  `{}` {} {} {} {}: {} at {} ({}, recorded by {}, consent {})\n",
        r.hcp,
        r.channel,
        r.purpose,
        r.market,
        r.product.as_deref().unwrap_or("(every product)"),
        r.status,
        utc(r.recorded_at),
        r.source,
        r.recorded_by,
        r.id,
    )
}

fn show_hcp(v: &HcpView) -> String {
    let p = &v.profile;
    let mut s = format!(
        "HCP `{}`: {} ({}), licence {}\n",
        p.id,
        p.name,
        p.market,
        serde_json::to_value(p.licence)
            .ok()
            .and_then(|l| l.as_str().map(str::to_owned))
            .unwrap_or_default()
    );
    if let Some(sp) = &p.specialty {
        s.push_str(&format!("  specialty: {} ({})\n", sp.label, sp.code));
    }
    if let Some(i) = &p.institution {
        s.push_str(&format!("  institution: {i}\n"));
    }
    if !p.tags.is_empty() {
        s.push_str(&format!("  tags: {}\n", p.tags.join(", ")));
    }
    let contact = if p.contact_present.is_empty() {
        "none".to_owned()
    } else {
        p.contact_present.join(", ")
    };
    s.push_str(&format!("  contact details on file: {contact}\n"));
    if let Some(m) = &v.merged_into {
        s.push_str(&format!(
            "  merged into `{m}`: reads combine both records\n"
        ));
    }
    s.push_str(&format!(
        "consent, current per scope ({}):\n",
        v.consent.len()
    ));
    for r in &v.consent {
        s.push_str(&consent_line(r));
    }
    let f = &v.features;
    s.push_str(&format!(
        "features: {} touches in 7 days, {} in 30 days, {} content versions seen\n",
        f.touches_7d,
        f.touches_30d,
        f.content_seen.len()
    ));
    for ch in &f.channels {
        s.push_str(&format!(
            "  {}: sends {}, opens {}, clicks {}, attended {}\n",
            ch.channel, ch.sends, ch.opens, ch.clicks, ch.attended
        ));
    }
    for j in &v.journeys {
        s.push_str(&format!(
            "journey {}: {} ({} moves)\n",
            j.brand,
            j.stage.as_deref().unwrap_or("-"),
            j.history.len()
        ));
    }
    s.push_str(&format!(
        "events: {} (latest {} shown)\n",
        v.events_total,
        v.timeline.len()
    ));
    for e in &v.timeline {
        s.push_str(&format!(
            "  {} {} {} `{}`\n",
            utc(e.event.occurred_at),
            e.event.event_type,
            e.event.channel,
            e.event.id
        ));
    }
    s
}

/// The pre-screen for people: the verdict first, then each blocking result.
fn prescreen_text(report: &serde_json::Value, policy_version: &str) -> String {
    let verdict = report["verdict"].as_str().unwrap_or("block");
    let blocking = report["blocking"].as_u64().unwrap_or_default();
    let warnings = report["warnings"].as_u64().unwrap_or_default();
    let mut s = format!(
        "PRE-SCREEN: {} ({blocking} blocking, {warnings} warnings; policy {})\n",
        verdict.to_uppercase(),
        &policy_version[..policy_version.len().min(12)]
    );
    if blocking > 0 {
        s.push_str("  reviewers decide: blocking findings do not stop the review\n");
    }
    for r in report["results"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "  {} {}: {}\n",
            r["market"].as_str().unwrap_or(""),
            r["channel"].as_str().unwrap_or(""),
            r["verdict"].as_str().unwrap_or("")
        ));
        for f in r["findings"].as_array().into_iter().flatten() {
            s.push_str(&format!(
                "    {} {} [{}] {} {}..{} \"{}\": {}\n",
                f["severity"].as_str().unwrap_or(""),
                f["rule"].as_str().unwrap_or(""),
                f["kind"].as_str().unwrap_or(""),
                f["part"].as_str().unwrap_or(""),
                f["start"],
                f["end"],
                f["excerpt"].as_str().unwrap_or(""),
                f["reason"].as_str().unwrap_or("")
            ));
        }
    }
    s
}

fn show_version(v: &VersionView) -> String {
    let mut s = format!(
        "content version {}\n  item `{}`{}, by {} at {}: {}\n",
        v.hash,
        v.item,
        if v.current { " (current)" } else { "" },
        v.author,
        utc(v.created_at),
        v.state
    );
    let roles = |rs: &[omnigate_core::ReviewRole]| {
        rs.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
    };
    s.push_str(&format!("  required roles: {}\n", roles(&v.required_roles)));
    for so in &v.sign_offs {
        s.push_str(&format!(
            "  signed {} by {} at {} (hash {})\n",
            so.role,
            so.reviewer,
            utc(so.signed_at),
            so.version
        ));
    }
    if !v.missing_roles.is_empty() {
        s.push_str(&format!("  still to sign: {}\n", roles(&v.missing_roles)));
    }
    match &v.prescreen {
        Some(p) => s.push_str(&prescreen_text(&p.report, &p.policy_version)),
        None => s.push_str("PRE-SCREEN: none yet (the version is screened when submitted)\n"),
    }
    let m = &v.body.metadata;
    s.push_str(&format!(
        "  product {}, markets {}, channels {}\n",
        m.product,
        m.markets.iter().cloned().collect::<Vec<_>>().join(", "),
        m.channels
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    for (name, text) in &v.body.parts {
        s.push_str(&format!("  [{name}] {text}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn times_are_shown_in_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00Z");
        assert_eq!(utc(1_763_906_709_000), "2025-11-23 14:05:09Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00Z");
    }
}
