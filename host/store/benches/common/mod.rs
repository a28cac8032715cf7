//! Data shared by the benchmarks: synthetic HCPs and events.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use omnigate_core::hcp::{ContactDetails, LicenceStatus, Specialty};
use omnigate_core::{EventType, HcpId, HcpProfile, NewEvent};
use serde_json::{Map, json};

/// 2026-11-23T12:00:00Z.
pub const NOW: i64 = 1_795_435_200_000;

/// HCP count for the large benchmarks: `OMNIGATE_BENCH_HCPS` (e.g. 1000000),
/// else `default`.
pub fn hcps(default: usize) -> usize {
    std::env::var("OMNIGATE_BENCH_HCPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn hcp_id(i: usize) -> HcpId {
    HcpId::new(format!("{:010}", 1_000_000_000 + i)).unwrap()
}

/// A profile with every field filled, as a CRM import would bring.
pub fn profile(i: usize) -> HcpProfile {
    let mut p = HcpProfile::new(
        hcp_id(i),
        format!("Dr. Given{i} Family{i}"),
        if i.is_multiple_of(5) { "CN" } else { "US" },
    );
    p.specialty = Some(Specialty {
        code: "207RC0000X".into(),
        label: "Cardiovascular Disease".into(),
    });
    p.institution = Some(format!("General Hospital {}", i % 5000));
    p.time_zone = Some("America/New_York".into());
    p.language = Some("en-US".into());
    p.tags = vec!["lipids".into(), "hypertension".into()];
    p.licence = LicenceStatus::Active;
    p.assigned_reps = vec![format!("rep-{}", i % 3000)];
    p.contact = ContactDetails {
        email: Some(format!("hcp{i}@clinic.example")),
        phone: Some(format!("+1555{:07}", i % 10_000_000)),
        wechat_id: None,
    };
    p
}

/// Event number `n` of a realistic mix over `hcps` HCPs.
pub fn event(n: u64, hcps: usize) -> NewEvent {
    const TYPES: [EventType; 6] = [
        EventType::EmailDelivered,
        EventType::EmailDelivered,
        EventType::EmailOpened,
        EventType::EmailClicked,
        EventType::RepVisit,
        EventType::WebVisit,
    ];
    let mix = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let t = TYPES[(mix >> 32) as usize % TYPES.len()];
    let mut attributes = Map::new();
    for &name in t.required_attributes() {
        attributes.insert(name.into(), json!(format!("{name}-{}", n % 97)));
    }
    NewEvent {
        id: format!("evt-{n}"),
        hcp: hcp_id((mix >> 8) as usize % hcps),
        event_type: t,
        channel: t.channels()[0],
        occurred_at: NOW - (n % 40) as i64 * 86_400_000,
        attributes,
    }
}

/// Peak resident memory of this process so far, from `/proc/self/status`.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
