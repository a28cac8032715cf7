//! `omnigate demo`: a sample world in a data directory, one campaign run
//! end to end through the real bundled plugins against a loopback e-mail
//! provider, simulated engagement fed back, the campaign report, and one
//! journey that the engagement fires (webinar attendees get a rep
//! follow-up).
//!
//! On a data directory that holds the demo already, nothing is seeded
//! again: an unfinished demo campaign is resumed, a finished one reported.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use omnigate_core::campaign::{
    ActionSpec, CampaignCaps, CampaignDefinition, CampaignId, CampaignState, Filter, Goal,
    MemberOutcome, ScoringSpec, SuggestionTiming,
};
use omnigate_core::consent::{ConsentScope, ConsentSource, ConsentStatus, NewConsent, Purpose};
use omnigate_core::content::{Audience, ContentBody, ContentMetadata, ReviewRole};
use omnigate_core::event::{EventType, NewEvent, UnixMillis, now_millis};
use omnigate_core::hcp::Specialty;
use omnigate_core::journeys::{JourneyAction, JourneyDefinition, JourneyId, Trigger};
use omnigate_core::template::PersonalField;
use omnigate_core::{Channel, HcpId, HcpProfile, Store, VersionHash};
use omnigate_engine::journeys::JourneyStatus;
use omnigate_engine::report::{Report, report};
use omnigate_engine::{JourneyOptions, Journeys, RunOptions};
use omnigate_mailsink::MailSink;
use omnigate_store::{SqliteStore, StoreOptions};
use serde::Serialize;

use crate::campaign::{EngineDirs, engine, failure, run_bar, show};
use crate::data::{Failure, Format, emit, finish, load_policy};

/// The demo campaign's id.
pub const DEMO_CAMPAIGN: &str = "demo-cardiozen-dosing";
/// The demo journey's id.
pub const DEMO_JOURNEY: &str = "demo-webinar-follow-up";
const ACTOR: &str = "demo";
const DAY: i64 = 86_400_000;

/// `omnigate demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// HCPs in the sample world.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(10..=1_000_000))]
    hcps: u64,
    /// Data directory (default: a fresh one under the system's temporary
    /// directory). A directory that holds the demo already is reused.
    #[arg(long, env = "OMNIGATE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    dirs: EngineDirs,
    /// Port of the loopback e-mail provider (0: any free port).
    #[arg(long, default_value_t = 0)]
    provider_port: u16,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Serialize)]
struct DemoOut {
    data_dir: String,
    seeded: bool,
    hcps: u64,
    delivered_to_provider: usize,
    engagement_events: usize,
    report: Report,
    journey: JourneyStatus,
}

/// Runs `omnigate demo`.
pub fn demo(args: DemoArgs) -> ExitCode {
    let format = args.format;
    finish(format, run(args))
}

fn run(args: DemoArgs) -> Result<(), Failure> {
    let format = args.format;
    let data_dir = match &args.data_dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("omnigate-demo-{}", now_millis())),
    };
    std::fs::create_dir_all(&data_dir)
        .map_err(|e| Failure::Usage(format!("cannot create `{}`: {e}", data_dir.display())))?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(StoreOptions::new(&data_dir)).map_err(
        |e| {
            Failure::Usage(format!(
                "cannot open the store in `{}`: {e}",
                data_dir.display()
            ))
        },
    )?);
    let sink = MailSink::start_on(args.provider_port)
        .map_err(|e| Failure::Usage(format!("cannot start the loopback provider: {e}")))?;
    // The bundled plugins, the e-mail adapter pointed at the provider.
    let plugins = data_dir.join("demo-plugins");
    point_adapter(&args.dirs.plugins, &plugins, &sink.endpoint())?;
    let dirs = EngineDirs {
        plugins,
        policies: args.dirs.policies.clone(),
    };
    let id = CampaignId::new(DEMO_CAMPAIGN).map_err(Failure::Usage)?;
    let existing = store
        .campaign(&id)
        .map_err(|e| Failure::Service(e.into()))?;
    let seeded = existing.is_none();
    if seeded {
        if format == Format::Text {
            eprintln!(
                "seeding a sample world of {} HCPs in {}",
                args.hcps,
                data_dir.display()
            );
        }
        let versions = seed(&store, &args.dirs.policies, args.hcps as usize)?;
        let def = campaign(&versions);
        store
            .create_campaign(ACTOR, &def, now_millis())
            .map_err(|e| Failure::Service(e.into()))?;
        // Before the engagement comes back, so that it fires.
        Journeys::new(store.clone(), JourneyOptions::default())
            .create(ACTOR, &journey(&versions))
            .map_err(crate::journey::failure)?;
    }
    let hcps = store.hcp_count().map_err(|e| Failure::Service(e.into()))?;
    let record = store
        .campaign(&id)
        .map_err(|e| Failure::Service(e.into()))?
        .ok_or_else(|| Failure::Usage("the demo campaign is missing".into()))?;
    let mut events = 0;
    if !record.state.is_final() {
        let engine = engine(
            store.clone(),
            &data_dir,
            &dirs,
            ACTOR,
            RunOptions {
                actor: ACTOR.into(),
                lease: std::time::Duration::from_secs(5),
                ..RunOptions::default()
            },
        )?;
        if record.state != CampaignState::Running {
            engine.campaigns.start(ACTOR, &id).map_err(failure)?;
        }
        let pb = run_bar(format);
        let end = engine
            .campaigns
            .run(&id, &engine.plugins, &mut |s| show(&pb, s))
            .map_err(failure);
        pb.finish_and_clear();
        end?;
        events = feed_back(&*store, &id, &sink)?;
        // The journey worker, as `serve` runs it, until it has nothing to do.
        let journeys = Journeys::new(
            store.clone(),
            JourneyOptions {
                actor: ACTOR.into(),
                ..JourneyOptions::default()
            },
        )
        .with_sender(engine.sender.clone());
        while !journeys
            .tick(&engine.plugins)
            .map_err(crate::journey::failure)?
            .idle()
        {}
    }
    let report = report(&*store, &id).map_err(failure)?;
    let journey = Journeys::new(store.clone(), JourneyOptions::default())
        .status(&JourneyId::new(DEMO_JOURNEY).map_err(Failure::Usage)?)
        .map_err(crate::journey::failure)?;
    let out = DemoOut {
        data_dir: data_dir.display().to_string(),
        seeded,
        hcps,
        delivered_to_provider: sink.delivered().len(),
        engagement_events: events,
        report,
        journey,
    };
    emit(format, &out, |o| {
        let by_state = |k| o.journey.counts.by_state.get(&k).copied().unwrap_or(0);
        use omnigate_core::journeys::ActionState;
        format!(
            "{}\n{} HCPs in {}; the provider received {} e-mails this run; {} engagement events fed back\n\
             journey {DEMO_JOURNEY} (webinar attended -> rep follow-up): {} rep suggestions, {} suppressed by the gate, {} cancelled\n\n\
             Next, on the same data directory:\n  \
             omnigate serve --data-dir {dir}\n  \
             omnigate campaign create my-campaign.json --data-dir {dir} --actor you\n  \
             omnigate campaign start my-campaign --data-dir {dir} --actor you\n  \
             omnigate report my-campaign --data-dir {dir}\n  \
             omnigate journey status {DEMO_JOURNEY} --data-dir {dir}\n\
             (docs/campaigns.md and docs/journeys.md have definitions to start from; `{DEMO_CAMPAIGN}` is the demo's.)\n",
            o.report.text(),
            o.hcps,
            o.data_dir,
            o.delivered_to_provider,
            o.engagement_events,
            by_state(ActionState::Dispatched),
            by_state(ActionState::Suppressed),
            by_state(ActionState::Cancelled),
            dir = o.data_dir,
        )
    })
}

/// Copies the packaged plugins to `to`, with the e-mail adapter's endpoint
/// set to the loopback provider.
fn point_adapter(from: &Path, to: &Path, endpoint: &str) -> Result<(), Failure> {
    let fail = |e: std::io::Error| {
        Failure::Usage(format!(
            "cannot prepare the plugins from `{}` (build them with `cargo xtask plugins`): {e}",
            from.display()
        ))
    };
    std::fs::create_dir_all(to).map_err(fail)?;
    for entry in std::fs::read_dir(from).map_err(fail)? {
        let path = entry.map_err(fail)?.path();
        let Some(name) = path.file_name() else {
            continue;
        };
        match path.extension().and_then(|e| e.to_str()) {
            Some("wasm") => {
                std::fs::copy(&path, to.join(name)).map_err(fail)?;
            }
            Some("toml") => {
                let text = std::fs::read_to_string(&path).map_err(fail)?;
                let text: String = text
                    .lines()
                    .map(|l| {
                        if l.starts_with("endpoint =") && name == "email-adapter.toml" {
                            format!("endpoint = \"{endpoint}\"\n")
                        } else {
                            format!("{l}\n")
                        }
                    })
                    .collect();
                std::fs::write(to.join(name), text).map_err(fail)?;
            }
            _ => {}
        }
    }
    Ok(())
}

const SPECIALTIES: [(&str, &str, u32); 5] = [
    ("207RC0000X", "Cardiovascular Disease", 35),
    ("208D00000X", "General Practice", 30),
    ("207RE0101X", "Endocrinology, Diabetes & Metabolism", 15),
    ("207RN0300X", "Nephrology", 10),
    ("207R00000X", "Internal Medicine", 10),
];
const ZONES: [(&str, u32); 8] = [
    ("America/New_York", 45),
    ("America/Chicago", 25),
    ("America/Denver", 10),
    ("America/Los_Angeles", 20),
    ("America/Puerto_Rico", 3),
    ("America/Anchorage", 2),
    ("Pacific/Honolulu", 2),
    ("Pacific/Guam", 2),
];

/// The time zones of the sample world's HCPs: those of [`ZONES`] where it
/// is working hours now. The demo runs its campaign to completion at once,
/// and the policy's quiet hours (20:00-08:00 local) would hold every
/// e-mail to an HCP whose evening it is; the demo shows them working. When
/// it is night in all of them, one zone where it is midday.
fn working_zones(now: UnixMillis) -> Vec<(String, u32)> {
    let at = jiff::Timestamp::from_millisecond(now).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let open = |zone: &str| {
        jiff::tz::TimeZone::get(zone)
            .is_ok_and(|tz| (9..17).contains(&at.to_zoned_datetime(tz).hour()))
    };
    let zones: Vec<(String, u32)> = ZONES
        .iter()
        .filter(|(zone, _)| open(zone))
        .map(|(zone, w)| ((*zone).to_owned(), *w))
        .collect();
    if !zones.is_empty() {
        return zones;
    }
    // `Etc/GMT-N` is N hours east of UTC.
    let hour = i32::from(jiff::tz::Offset::UTC.to_datetime(at).hour());
    let east = (12 - hour + 36) % 24 - 12;
    let sign = if east > 0 { '-' } else { '+' };
    vec![(format!("Etc/GMT{sign}{}", east.abs()), 1)]
}
const FIRST: [&str; 12] = [
    "Ada", "Ben", "Chen", "Dana", "Eli", "Farah", "Grace", "Hiro", "Ines", "Jon", "Kemi", "Lena",
];
const LAST: [&str; 12] = [
    "Li", "Okafor", "Smith", "Garcia", "Nguyen", "Patel", "Kim", "Rossi", "Cohen", "Haddad",
    "Novak", "Silva",
];
const FOOTER: &str = "Important Safety Information: Cardiozen can cause fetal toxicity. \
    Hypotension and hyperkalemia can occur. Please see full Prescribing Information. \
    To unsubscribe, click here.";

fn pick<'a, T>(rng: &mut fastrand::Rng, table: &'a [(T, u32)]) -> &'a T {
    let total: u32 = table.iter().map(|(_, w)| w).sum();
    let mut x = rng.u32(0..total);
    for (v, w) in table {
        if x < *w {
            return v;
        }
        x -= w;
    }
    &table[0].0
}

/// The versions of the sample world.
struct Versions {
    dosing: VersionHash,
    webinar: VersionHash,
    expired: VersionHash,
    draft: VersionHash,
}

fn body(text: &str, channels: &[Channel], expires_at: Option<UnixMillis>) -> ContentBody {
    ContentBody {
        parts: BTreeMap::from([
            (
                "subject".into(),
                "Cardiozen: for your patients with hypertension".into(),
            ),
            (
                "text".into(),
                format!("{{{{salutation}}}} {{{{name}}}},\n\n{text}"),
            ),
            ("isi".into(), FOOTER.into()),
        ]),
        variants: BTreeMap::new(),
        personalization_fields: BTreeSet::from(["salutation".into(), "name".into()]),
        metadata: ContentMetadata {
            product: "cardiozen".into(),
            indications: BTreeSet::from(["hypertension".into()]),
            markets: BTreeSet::from(["US".into()]),
            channels: channels.iter().copied().collect(),
            audience: Audience::Hcp,
            claims: BTreeMap::new(),
            disclaimers: Vec::new(),
            isi: None,
            expires_at,
        },
    }
}

fn seed(store_arc: &Arc<dyn Store>, policies: &Path, n: usize) -> Result<Versions, Failure> {
    let store: &dyn Store = &**store_arc;
    let err = |e: omnigate_core::StoreError| Failure::Service(e.into());
    let now = now_millis();
    let mut rng = fastrand::Rng::with_seed(20_261_123);
    let zones = working_zones(now_millis());
    let mut profiles = Vec::with_capacity(n);
    let mut consents = Vec::new();
    let mut events = Vec::new();
    for i in 0..n {
        let id = HcpId::new(format!("1{i:09}")).map_err(|e| Failure::Usage(e.0))?;
        let name = format!(
            "{} {}",
            FIRST[rng.usize(0..FIRST.len())],
            LAST[rng.usize(0..LAST.len())]
        );
        let mut p = HcpProfile::new(id.clone(), name, "US");
        let (code, label) = *pick(&mut rng, &SPECIALTIES.map(|(c, l, w)| ((c, l), w)));
        p.specialty = Some(Specialty {
            code: code.into(),
            label: label.into(),
        });
        p.time_zone = Some(pick(&mut rng, &zones).clone());
        p.language = Some("en-US".into());
        p.institution = Some(format!("St. Example Hospital {}", i % 150));
        p.assigned_reps = vec![format!("rep-{:02}", i % 40)];
        p.tags = if rng.u32(0..100) < 30 {
            vec!["hypertension-kol".into()]
        } else {
            Vec::new()
        };
        p.contact.email = Some(format!("dr{i}@clinic.example"));
        profiles.push(p);
        let statement = |channel, status, recorded_at| NewConsent {
            scope: ConsentScope {
                hcp: id.clone(),
                channel,
                purpose: Purpose::Promotional,
                market: "US".into(),
                product: None,
            },
            status,
            source: ConsentSource::WebForm,
            recorded_at,
            recorded_by: "crm-import".into(),
        };
        let at = now - rng.i64(30..400) * DAY;
        match rng.u32(0..100) {
            0..70 => consents.push(statement(Channel::Email, ConsentStatus::OptIn, at)),
            70..80 => consents.push(statement(Channel::Email, ConsentStatus::OptOut, at)),
            _ => {}
        }
        if rng.u32(0..100) < 60 {
            consents.push(statement(Channel::RepVisit, ConsentStatus::OptIn, at));
        }
        // History: earlier e-mails, opens, clicks on efficacy content,
        // webinars, rep visits.
        let attrs = |pairs: &[(&str, String)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String(v.clone())))
                .collect::<serde_json::Map<_, _>>()
        };
        for k in 0..rng.usize(0..4) {
            let at = now - rng.i64(3..60) * DAY;
            let dispatch = format!("hist-{i}-{k}");
            let version = "history".to_owned();
            let mut push = |kind: EventType, channel, at, extra: &[(&str, String)]| {
                events.push(NewEvent {
                    id: format!("{dispatch}-{}", kind.as_str()),
                    hcp: id.clone(),
                    event_type: kind,
                    channel,
                    occurred_at: at,
                    attributes: attrs(extra),
                });
            };
            let base = [
                ("dispatch_id", dispatch.clone()),
                ("content_version", version.clone()),
            ];
            push(EventType::EmailDelivered, Channel::Email, at, &base);
            if rng.u32(0..100) < 40 {
                push(
                    EventType::EmailOpened,
                    Channel::Email,
                    at + 3_600_000,
                    &base,
                );
                if rng.u32(0..100) < 35 {
                    let mut click = base.to_vec();
                    click.push(("url", "https://cardiozen.example/efficacy".into()));
                    click.push(("topic", "efficacy".into()));
                    click.push(("brand", "cardiozen".into()));
                    push(
                        EventType::EmailClicked,
                        Channel::Email,
                        at + 7_200_000,
                        &click,
                    );
                }
            }
        }
        if rng.u32(0..100) < 12 {
            events.push(NewEvent {
                id: format!("hist-{i}-webinar"),
                hcp: id.clone(),
                event_type: EventType::WebinarAttended,
                channel: Channel::Webinar,
                occurred_at: now - rng.i64(2..40) * DAY,
                attributes: attrs(&[
                    ("webinar_id", "resistant-htn-2026".into()),
                    ("brand", "cardiozen".into()),
                ]),
            });
        }
        if rng.u32(0..100) < 25 {
            events.push(NewEvent {
                id: format!("hist-{i}-visit"),
                hcp: id.clone(),
                event_type: EventType::RepVisit,
                channel: Channel::RepVisit,
                occurred_at: now - rng.i64(8..90) * DAY,
                attributes: attrs(&[("rep_id", format!("rep-{:02}", i % 40))]),
            });
        }
    }
    for chunk in profiles.chunks(10_000) {
        store.upsert_profiles(ACTOR, chunk).map_err(err)?;
    }
    for chunk in consents.chunks(10_000) {
        store.record_consents(ACTOR, chunk).map_err(err)?;
    }
    for (k, chunk) in events.chunks(10_000).enumerate() {
        store
            .ingest(ACTOR, &format!("demo-history-{k}"), chunk)
            .map_err(err)?;
    }

    // Content: two approved versions, one approved and expired, one draft
    // with an absolute claim that MLR has not approved.
    let policy = load_policy(policies, ", so the demo content cannot be pre-screened")?;
    // Submission goes through the service: it attaches the pre-screen.
    let service = omnigate_service::Service::new(store_arc.clone(), policy);
    let submit = |hash: &VersionHash| -> Result<(), Failure> {
        service.submit("brand-team", &hash.0)?;
        Ok(())
    };
    let approve = |item: &str, b: &ContentBody| -> Result<VersionHash, Failure> {
        let hash = store.put_version("brand-team", item, b).map_err(err)?;
        submit(&hash)?;
        for (who, role) in [
            ("dr-medical", ReviewRole::Medical),
            ("legal-counsel", ReviewRole::Legal),
            ("regulatory-lead", ReviewRole::Regulatory),
        ] {
            store.sign_off(who, &hash, role).map_err(err)?;
        }
        Ok(hash)
    };
    let dosing = approve(
        "cz-dosing",
        &body(
            "The recommended starting dose of Cardiozen is 80 mg once daily, with or without food. \
             Ask your representative for the dosing guide.",
            &[Channel::Email, Channel::RepVisit],
            Some(now + 180 * DAY),
        ),
    )?;
    let webinar = approve(
        "cz-webinar",
        &body(
            "Join our live webinar on managing hypertension in adults, with time for your questions.",
            &[Channel::Email],
            Some(now + 90 * DAY),
        ),
    )?;
    let expired = approve(
        "cz-2025-summary",
        &body(
            "A summary of the 2025 prescribing information update for Cardiozen.",
            &[Channel::Email],
            Some(now + 1000),
        ),
    )?;
    // Let the 2025 summary lapse.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    store.expire_due(ACTOR, now_millis()).map_err(err)?;
    let draft_body = body(
        "Cardiozen cures hypertension and is 100% safe.",
        &[Channel::Email],
        None,
    );
    let draft = store
        .put_version("brand-team", "cz-bold-claims", &draft_body)
        .map_err(err)?;
    submit(&draft)?;
    Ok(Versions {
        dosing,
        webinar,
        expired,
        draft,
    })
}

fn campaign(v: &Versions) -> CampaignDefinition {
    let action =
        |version: &VersionHash, channels: &[Channel], topic: &str, stage: &str| ActionSpec {
            version: version.clone(),
            channels: channels.to_vec(),
            topics: vec![topic.into()],
            stage: Some(stage.into()),
        };
    CampaignDefinition {
        id: CampaignId::new(DEMO_CAMPAIGN).unwrap_or_else(|_| unreachable!()),
        name: "Cardiozen dosing, cardiologists and GPs".into(),
        product: "cardiozen".into(),
        market: "US".into(),
        purpose: Purpose::Promotional,
        goal: Goal {
            target_stage: "adoption".into(),
            stages: Vec::new(),
        },
        audience: Filter::Specialty(vec!["207RC0000X".into(), "208D00000X".into()]),
        actions: vec![
            action(&v.draft, &[Channel::Email], "efficacy", "awareness"),
            action(&v.expired, &[Channel::Email], "dosing", "awareness"),
            action(
                &v.dosing,
                &[Channel::Email, Channel::RepVisit],
                "dosing",
                "interest",
            ),
            action(&v.webinar, &[Channel::Email], "education", "consideration"),
        ],
        channels: vec![Channel::Email, Channel::RepVisit],
        window: None,
        caps: CampaignCaps::default(),
        scoring: ScoringSpec {
            plugin: "stage-scorer".into(),
            min_score: None,
        },
        holdout: 0.1,
        seed: Some("demo".into()),
        priority: 0,
        values: BTreeMap::from([(PersonalField::Salutation, "Dear Dr.".into())]),
        suggestions: SuggestionTiming::default(),
    }
}

/// The demo journey: a webinar attendee gets a rep follow-up on dosing,
/// unless they have seen the dosing content already.
fn journey(v: &Versions) -> JourneyDefinition {
    JourneyDefinition {
        id: JourneyId::new(DEMO_JOURNEY).unwrap_or_else(|_| unreachable!()),
        name: "Webinar attendees: the rep follows up on dosing".into(),
        product: "cardiozen".into(),
        market: "US".into(),
        purpose: Purpose::Promotional,
        when: Trigger {
            event: EventType::WebinarAttended,
            attributes: BTreeMap::new(),
            count: 1,
            within: None,
            audience: None,
        },
        after: None,
        action: JourneyAction::Send {
            options: vec![ActionSpec {
                version: v.dosing.clone(),
                channels: vec![Channel::RepVisit],
                topics: vec!["dosing".into()],
                stage: None,
            }],
            rationale: "attended the Cardiozen webinar: discuss dosing".into(),
            values: BTreeMap::from([(PersonalField::Salutation, "Dear Dr.".into())]),
            expires: None,
        },
        unless: Some(Filter::Seen(v.dosing.clone())),
        refire_after: None,
    }
}

/// Simulated engagement: opens and clicks on delivered e-mails, reps acting
/// on most suggestions. Returns how many events were stored.
fn feed_back(store: &dyn Store, id: &CampaignId, sink: &MailSink) -> Result<usize, Failure> {
    let err = |e: omnigate_core::StoreError| Failure::Service(e.into());
    let mut rng = fastrand::Rng::with_seed(7);
    let now = now_millis();
    let mut closed = 0;
    let mut events = Vec::new();
    for d in sink.delivered() {
        let Ok(hcp) = HcpId::new(d.hcp_id.clone()) else {
            continue;
        };
        let Some(dispatch) = store.dispatch(&d.dispatch_id).map_err(err)? else {
            continue;
        };
        let attrs = |extra: &[(&str, &str)]| {
            let mut m = serde_json::Map::new();
            m.insert("dispatch_id".into(), d.dispatch_id.clone().into());
            m.insert(
                "content_version".into(),
                dispatch.dispatch.version.0.clone().into(),
            );
            m.insert("provider_message_id".into(), d.message_id.clone().into());
            for (k, v) in extra {
                m.insert((*k).into(), (*v).into());
            }
            m
        };
        let mut push = |kind: EventType, at, a| {
            events.push(NewEvent {
                id: format!("{}-{}", d.message_id, kind.as_str()),
                hcp: hcp.clone(),
                event_type: kind,
                channel: Channel::Email,
                occurred_at: at,
                attributes: a,
            });
        };
        push(EventType::EmailDelivered, now, attrs(&[]));
        if rng.u32(0..100) < 45 {
            push(EventType::EmailOpened, now + 60_000, attrs(&[]));
            if rng.u32(0..100) < 30 {
                push(
                    EventType::EmailClicked,
                    now + 120_000,
                    attrs(&[
                        ("url", "https://cardiozen.example/dosing"),
                        ("topic", "dosing"),
                        ("brand", "cardiozen"),
                    ]),
                );
            }
        }
    }
    // Reps act on about two thirds of their suggestions.
    let members = store
        .members(id, Some(MemberOutcome::Dispatched), None, 100_000)
        .map_err(err)?;
    for m in members
        .iter()
        .filter(|m| m.channel == Some(Channel::RepVisit))
    {
        let Some(sid) = &m.dispatch else { continue };
        let Some(s) = store.suggestion(sid, now).map_err(err)? else {
            continue;
        };
        if s.state != omnigate_core::suggestion::SuggestionState::Open {
            continue;
        }
        let rep = s.rep.clone().unwrap_or_else(|| "rep-00".into());
        let (state, reason) = if rng.u32(0..100) < 67 {
            (
                omnigate_core::suggestion::SuggestionState::Done,
                "discussed the dosing guide",
            )
        } else {
            (
                omnigate_core::suggestion::SuggestionState::Dismissed,
                "HCP on leave",
            )
        };
        // The rep's feedback: an event (counted below) and the close.
        omnigate_engine::suggest::close(store, &rep, sid, state, reason, now).map_err(err)?;
        closed += 1;
    }
    // Webinar attendance (which moves HCPs to `consideration`): some
    // attend on their own, treated HCPs who got something more often. A
    // simulation, so that the report's lift has something to measure.
    let mut after = None;
    loop {
        let page = store.members(id, None, after.as_ref(), 1000).map_err(err)?;
        let Some(last) = page.last() else { break };
        after = Some(last.hcp.clone());
        for m in &page {
            let reached = m.outcome == MemberOutcome::Dispatched;
            let p = if reached { 14 } else { 4 };
            if rng.u32(0..100) < p {
                let mut a = serde_json::Map::new();
                a.insert("webinar_id".into(), "cardiozen-dosing-live".into());
                a.insert("brand".into(), "cardiozen".into());
                if let Some(d) = &m.dispatch {
                    a.insert("dispatch_id".into(), d.clone().into());
                }
                events.push(NewEvent {
                    id: format!("demo-webinar-{}", m.hcp),
                    hcp: m.hcp.clone(),
                    event_type: EventType::WebinarAttended,
                    channel: Channel::Webinar,
                    // Just now: the demo journey follows webinar attendees up.
                    occurred_at: now,
                    attributes: a,
                });
            }
        }
    }
    let n = events.len() + closed;
    for (k, chunk) in events.chunks(10_000).enumerate() {
        store
            .ingest(ACTOR, &format!("demo-engagement-{k}"), chunk)
            .map_err(err)?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::working_zones;

    #[test]
    fn the_sample_world_is_at_work_whatever_the_hour() {
        // 2026-12-08 00:00 UTC, then every hour of the day (and one in
        // summer time).
        for start in [1_796_688_000_000_i64, 1_783_296_000_000] {
            for h in 0..24 {
                let now = start + h * 3_600_000;
                let zones = working_zones(now);
                assert!(!zones.is_empty(), "hour {h}");
                let at = jiff::Timestamp::from_millisecond(now).unwrap();
                for (zone, _) in &zones {
                    let tz = jiff::tz::TimeZone::get(zone).unwrap();
                    let local = at.to_zoned_datetime(tz).hour();
                    assert!(
                        (9..17).contains(&local),
                        "{zone} at {local}:00, UTC hour {h}"
                    );
                }
            }
        }
        // US zones when it is a working day there: 15:00 UTC is 10:00 in
        // New York in December.
        let zones = working_zones(1_796_688_000_000 + 15 * 3_600_000);
        assert!(
            zones.iter().any(|(z, _)| z == "America/New_York"),
            "{zones:?}"
        );
    }
}
