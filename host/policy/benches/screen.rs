//! Screening throughput on realistic HCP e-mails (EN and ZH, a few KB each,
//! mostly compliant), against a bare `regex::RegexSet` scan of the same
//! patterns over the same text.
//!
//! `cargo bench -p omnigate-policy --bench screen` prints both figures and
//! the ratio first (a plain timing loop), then runs the criterion groups.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_main};
use omnigate_core::Channel;
use omnigate_policy::{Audience, CompiledPolicy, Context, Message, load_dir};
use regex::RegexSetBuilder;

/// A tiny deterministic generator, so every run screens the same corpus.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const EN_BODY: &[&str] = &[
    "In the phase 3 ZEN-1 trial, 62% of patients reached the primary endpoint vs 41% on placebo [1].",
    "At week 8, mean systolic blood pressure fell by 14.2 mmHg with Cardiozen 160 mg vs 5.1 mmHg with placebo (p<0.001) [2].",
    "The recommended starting dose is 80 mg once daily; it may be increased to 160 mg after 2 weeks.",
    "Blood pressure goal (<140/90 mmHg) was reached by 58.3% of patients at week 12 [3].",
    "Discontinuation due to adverse events was 2.3% with Cardiozen and 2.0% with placebo [1].",
    "The 2023 ESH guidelines recommend combination therapy for most patients with hypertension (Mancia G, et al. J Hypertens 2023;41:1874).",
    "Join our webinar on managing resistant hypertension on 14 May at 7 pm ET, with Prof. Anna Weiss from the University Hospital.",
    "Our medical information team answers questions within one business day, and samples can be ordered through your representative.",
    "Home blood pressure monitoring helps identify white-coat and masked hypertension, and supports titration decisions between visits.",
    "Case study: a 54-year-old man with hypertension uncontrolled on two agents started Cardiozen and was reviewed after four weeks.",
];

const EN_RISKY: &[&str] = &[
    "Cardiozen cures hypertension.",
    "The best ARB for your patients, with no side effects.",
    "Cardiozen works in minutes.",
    "Patients were 3-fold more likely to reach target.",
];

const EN_ISI: &str = "IMPORTANT SAFETY INFORMATION\n\nWARNING: FETAL TOXICITY. When pregnancy is detected, discontinue Cardiozen as soon as possible. Drugs that act directly on the renin-angiotensin system can cause injury and death to the developing fetus.\n\nDo not coadminister aliskiren with Cardiozen in patients with diabetes. Hypotension: correct volume or salt depletion before starting therapy. Impaired renal function: monitor renal function periodically in patients at risk. Hyperkalemia: monitor serum potassium. The most common adverse reactions were dizziness, headache and fatigue.\n\nPlease see full Prescribing Information, including Boxed Warning.";

const ZH_BODY: &[&str] = &[
    "在III期临床试验中，卡迪泽组62%的患者达到主要终点，安慰剂组为41%[1]。",
    "ZEN-CN研究显示，治疗8周后卡迪泽组收缩压较基线下降14.2 mmHg，安慰剂组下降5.1 mmHg（P<0.001）[2]。",
    "推荐起始剂量为每日一次80 mg，2周后可增至160 mg。",
    "诚邀您参加5月14日晚7点的高血压诊疗进展线上会议，届时将由心内科专家分享最新指南解读。",
    "家庭血压监测有助于识别白大衣高血压和隐匿性高血压，并为剂量调整提供依据。",
    "常见不良反应包括头晕和头痛。用药期间应监测血钾和肾功能。",
    "如需了解更多产品信息，请联系您的医药代表或致电医学信息部。",
];

const ZH_RISKY: &[&str] = &[
    "卡迪泽可以治愈高血压。",
    "本品安全无毒，副作用小。",
    "卡迪泽起效快。",
];

const ZH_FOOTER: &str = "\n\n重要安全性信息：妊娠期妇女禁用。低血压、肾功能损害及高钾血症患者慎用。详细信息请参阅药品说明书。\n本资料仅供医疗卫生专业人士参考。如需退订，请回复退订。";

fn en_email(rng: &mut Rng, html: bool) -> String {
    let mut paragraphs = vec!["Dear Dr. Patel,".to_owned()];
    for _ in 0..6 {
        let mut p = String::new();
        for _ in 0..3 {
            let s = if rng.chance(1) {
                rng.pick(EN_RISKY)
            } else {
                rng.pick(EN_BODY)
            };
            p.push_str(s);
            p.push(' ');
        }
        paragraphs.push(p.trim_end().to_owned());
    }
    paragraphs.push(EN_ISI.to_owned());
    paragraphs.push("Best regards,\nThe Cardiozen medical affairs team\n\nTo unsubscribe from these e-mails, click here.".to_owned());
    if html {
        let body: Vec<String> = paragraphs
            .iter()
            .map(|p| {
                format!(
                    "<p style=\"margin:0 0 12px\">{}</p>",
                    p.replace('%', "&#37;")
                )
            })
            .collect();
        format!(
            "<html><head><style>p{{font-family:Arial}}</style></head><body><table><tr><td>{}<img src=\"logo.png\" alt=\"Cardiozen logo\"><a href=\"https://example.com/pi\">Full Prescribing Information</a></td></tr></table></body></html>",
            body.join("")
        )
    } else {
        paragraphs.join("\n\n")
    }
}

fn zh_email(rng: &mut Rng) -> String {
    let mut out = "尊敬的王医生：\n\n".to_owned();
    for _ in 0..8 {
        for _ in 0..3 {
            out.push_str(if rng.chance(1) {
                rng.pick(ZH_RISKY)
            } else {
                rng.pick(ZH_BODY)
            });
        }
        out.push_str("\n\n");
    }
    out.push_str(ZH_FOOTER);
    out
}

/// The corpus: (message, context, bytes, the raw text for the baseline).
fn corpus() -> Vec<(Message, Context, String)> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut out = Vec::new();
    for i in 0..60 {
        let (msg, ctx, raw) = match i % 3 {
            0 => {
                let t = en_email(&mut rng, false);
                (Message::text(t.clone()), us(), t)
            }
            1 => {
                let t = en_email(&mut rng, true);
                (Message::html(t.clone()), us(), t)
            }
            _ => {
                let t = zh_email(&mut rng);
                let ctx =
                    Context::new("CN", Channel::Email, Audience::Hcp).with_product("cardiozen");
                (Message::text(t.clone()), ctx, t)
            }
        };
        out.push((msg, ctx, raw));
    }
    out
}

fn us() -> Context {
    Context::new("US", Channel::Email, Audience::Hcp).with_product("cardiozen")
}

fn policy() -> CompiledPolicy {
    load_dir(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../policies")).unwrap()
}

/// Runs `f` over the corpus repeatedly for about `budget`; returns MB/s.
fn throughput(bytes: usize, budget: Duration, mut f: impl FnMut()) -> f64 {
    f();
    let start = Instant::now();
    let mut rounds = 0u32;
    while start.elapsed() < budget {
        f();
        rounds += 1;
    }
    (bytes as f64 * f64::from(rounds)) / start.elapsed().as_secs_f64() / 1e6
}

fn summary() {
    let policy = policy();
    let corpus = corpus();
    let bytes: usize = corpus.iter().map(|c| c.2.len()).sum();
    let set = RegexSetBuilder::new(policy.pattern_sources())
        .case_insensitive(true)
        .size_limit(256 << 20)
        .dfa_size_limit(256 << 20)
        .build()
        .unwrap();
    let blocked = corpus
        .iter()
        .filter(|(m, c, _)| policy.screen(m, c).unwrap().verdict == omnigate_policy::Verdict::Block)
        .count();
    let budget = Duration::from_secs(3);
    if std::env::var_os("SCREEN_BREAKDOWN").is_some() {
        let norm = throughput(bytes, budget, || {
            for (m, _, _) in &corpus {
                for p in &m.parts {
                    black_box(match p.kind {
                        omnigate_policy::PartKind::Html => {
                            omnigate_policy::normalize::normalize_html(&p.text)
                        }
                        _ => omnigate_policy::normalize::normalize(&p.text),
                    });
                }
            }
        });
        let texts: Vec<String> = corpus
            .iter()
            .map(|(m, _, _)| omnigate_policy::normalize::normalize(&m.parts[0].text).text)
            .collect();
        let bare_norm = throughput(bytes, budget, || {
            for t in &texts {
                black_box(set.matches(t));
            }
        });
        eprintln!("normalize only: {norm:.1} MB/s; set over normalized: {bare_norm:.1} MB/s");
    }
    let screen = throughput(bytes, budget, || {
        for (m, c, _) in &corpus {
            black_box(policy.screen(m, c).unwrap());
        }
    });
    let bare = throughput(bytes, budget, || {
        for (_, _, raw) in &corpus {
            black_box(set.matches(raw));
        }
    });
    // For reference only: without case folding the bare scan is faster but
    // misses `CURES`; it is not a functional equivalent.
    let exact = RegexSetBuilder::new(policy.pattern_sources())
        .size_limit(256 << 20)
        .dfa_size_limit(256 << 20)
        .build()
        .unwrap();
    let bare_exact = throughput(bytes, budget, || {
        for (_, _, raw) in &corpus {
            black_box(exact.matches(raw));
        }
    });
    eprintln!(
        "corpus: {} messages, {} bytes (avg {} B), {} patterns, {} blocked\n\
         screen (normalize + match + context): {screen:.1} MB/s\n\
         bare RegexSet over the same text:      {bare:.1} MB/s\n\
         (bare RegexSet without case folding:   {bare_exact:.1} MB/s)\n\
         ratio screen / bare: {:.2}x",
        corpus.len(),
        bytes,
        bytes / corpus.len(),
        policy.pattern_sources().len(),
        blocked,
        screen / bare
    );
}

fn bench(c: &mut Criterion) {
    if std::env::var_os("SCREEN_NO_SUMMARY").is_none() {
        summary();
    }
    let policy = policy();
    let corpus = corpus();
    let bytes: usize = corpus.iter().map(|c| c.2.len()).sum();
    let set = RegexSetBuilder::new(policy.pattern_sources())
        .case_insensitive(true)
        .size_limit(256 << 20)
        .dfa_size_limit(256 << 20)
        .build()
        .unwrap();
    let mut g = c.benchmark_group("screening");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("screen", |b| {
        b.iter(|| {
            for (m, ctx, _) in &corpus {
                black_box(policy.screen(m, ctx).unwrap());
            }
        })
    });
    g.bench_function("bare-regexset", |b| {
        b.iter(|| {
            for (_, _, raw) in &corpus {
                black_box(set.matches(raw));
            }
        })
    });
    g.finish();
}

// The macro generates an undocumented `pub fn benches`.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench);
}
use group::benches;
criterion_main!(benches);
