//! Test helper for the crash-safety test: ingests batches of e-mail
//! deliveries in a loop, printing `begin <batch-id>` before each batch and
//! `committed <batch-id>` after its commit, until killed.
//!
//! ```text
//! store-writer <data-dir> <first-batch-number> <events-per-batch> [<fold-events>]
//! ```
//!
//! With `<fold-events>`, the store folds its hot tier that often, so that
//! kills also land inside folds.

use std::io::Write;

use omnigate_core::store::{EventStore, HcpStore};
use omnigate_core::{EventType, HcpId, HcpProfile, NewEvent};
use omnigate_store::{SqliteStore, StoreOptions};
use serde_json::{Map, json};

const HCPS: usize = 200;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (dir, first, size, fold) = match args.as_slice() {
        [_, dir, first, size] => (dir, first, size, None),
        [_, dir, first, size, fold] => (dir, first, size, Some(fold)),
        _ => {
            return Err(
                "usage: store-writer <data-dir> <first-batch-number> <events-per-batch> [<fold-events>]"
                    .into(),
            );
        }
    };
    let first: u64 = first.parse()?;
    let size: usize = size.parse()?;
    let mut options = StoreOptions::new(dir);
    if let Some(fold) = fold {
        options.fold_events = fold.parse()?;
    }
    let store = SqliteStore::open(options)?;
    let profiles = (0..HCPS)
        .map(|i| {
            Ok(HcpProfile::new(
                HcpId::new(format!("hcp-{i}"))?,
                format!("Dr. {i}"),
                "US",
            ))
        })
        .collect::<Result<Vec<_>, omnigate_core::hcp::InvalidHcpId>>()?;
    store.upsert_profiles("store-writer", &profiles)?;
    let mut out = std::io::stdout().lock();
    for n in first.. {
        let batch_id = format!("b{n}");
        let events = (0..size)
            .map(|i| {
                let mut attributes = Map::new();
                attributes.insert("dispatch_id".into(), json!(format!("d{n}-{i}")));
                attributes.insert("content_version".into(), json!("v1"));
                Ok(NewEvent {
                    id: format!("{batch_id}-e{i}"),
                    hcp: HcpId::new(format!("hcp-{}", (n as usize * 7 + i) % HCPS))?,
                    event_type: EventType::EmailDelivered,
                    channel: omnigate_core::Channel::Email,
                    occurred_at: 1_795_435_200_000,
                    attributes,
                })
            })
            .collect::<Result<Vec<_>, omnigate_core::hcp::InvalidHcpId>>()?;
        writeln!(out, "begin {batch_id}")?;
        out.flush()?;
        store.ingest("store-writer", &batch_id, &events)?;
        // INVARIANT: the acknowledgement is printed only after the commit
        // returned, so every id printed must survive a kill.
        writeln!(out, "committed {batch_id}")?;
        out.flush()?;
    }
    Ok(())
}
