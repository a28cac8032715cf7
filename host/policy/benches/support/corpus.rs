//! A generated corpus of realistic HCP messages for the screening
//! benchmark: plain-text and HTML e-mails of 2 to 6 KB with a subject and
//! an Important Safety Information block, and SMS, in English (US) and
//! Chinese (CN). About one message in six carries a violation, some of them
//! obfuscated; the rest is compliant, evidence-based copy with citations,
//! numbers, phone lines and names that screening has to look at and clear.

use omnigate_core::Channel;
use omnigate_policy::{Audience, Context, Message, PartKind};

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
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }
}

/// The kinds of message the benchmark reports separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    EnText,
    EnHtml,
    ZhText,
    ZhHtml,
    EnSms,
    ZhSms,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::EnText,
        Kind::EnHtml,
        Kind::ZhText,
        Kind::ZhHtml,
        Kind::EnSms,
        Kind::ZhSms,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::EnText => "en-text-email",
            Kind::EnHtml => "en-html-email",
            Kind::ZhText => "zh-text-email",
            Kind::ZhHtml => "zh-html-email",
            Kind::EnSms => "en-sms",
            Kind::ZhSms => "zh-sms",
        }
    }
}

/// One message of the corpus.
pub struct Sample {
    pub kind: Kind,
    pub message: Message,
    pub ctx: Context,
}

impl Sample {
    /// Bytes screened: every part, as sent.
    pub fn bytes(&self) -> usize {
        self.message.parts.iter().map(|p| p.text.len()).sum()
    }
}

const NAMES: &[&str] = &[
    "Patel", "Nguyen", "Okafor", "Schmidt", "Rossi", "Kowalski", "Haddad",
];

const EN_SUBJECTS: &[&str] = &[
    "New ZEN-1 data: blood pressure control with Cardiozen",
    "Webinar invitation: managing resistant hypertension",
    "Cardiozen dosing and titration at a glance",
    "Your requested information on Cardiozen",
];

const EN_BODY: &[&str] = &[
    "In the phase 3 ZEN-1 trial, 62% of patients reached the primary endpoint vs 41% on placebo [1].",
    "At week 8, mean systolic blood pressure fell by 14.2 mmHg with Cardiozen 160 mg vs 5.1 mmHg with placebo (p<0.001) [2].",
    "The recommended starting dose is 80 mg once daily; it may be increased to 160 mg after 2 weeks.",
    "Blood pressure goal (<140/90 mmHg) was reached by 58.3% of patients at week 12 [3].",
    "Discontinuation due to adverse events was 2.3% with Cardiozen and 2.0% with placebo [1].",
    "The 2023 ESH guidelines recommend combination therapy for most patients with hypertension (Mancia G, et al. J Hypertens 2023;41:1874).",
    "Join our webinar on managing resistant hypertension on 14 May at 7 pm ET, with Prof. Anna Weiss from the University Hospital.",
    "Our medical information team answers questions within one business day at 1-800-555-0199, and samples can be ordered through your representative.",
    "Home blood pressure monitoring helps identify white-coat and masked hypertension, and supports titration decisions between visits.",
    "Case study: a 54-year-old man with hypertension uncontrolled on two agents started Cardiozen and was reviewed after four weeks.",
    "Cardiozen can be taken with or without food, and no dose adjustment is needed in elderly patients.",
    "In patients with mild to moderate renal impairment, no initial dose adjustment is required; monitor renal function and potassium.",
    "About 1 in 2 adults in the US has hypertension, and only about 1 in 4 of them has it under control (CDC data, 2023).",
    "Ambulatory monitoring in ZEN-ABPM showed a consistent 24-hour effect, including the early morning hours [4].",
    "Please talk to your patients about adherence: missed doses were the most common reason for loss of control in the extension study.",
    "Download the patient starter kit, including a blood pressure diary and dosing card, from the HCP portal.",
];

/// Violations, some of them obfuscated.
const EN_RISKY: &[&str] = &[
    "Cardiozen cures hypertension.",
    "The best ARB for your patients, with no side effects.",
    "Cardiozen works in minutes.",
    "Patients were 3-fold more likely to reach target.",
    "Blood pressure control is g u a r a n t e e d.",
    "Cardiozen c.u.r.e.s hypertension.",
    "Completely s\u{200B}afe for every patient.",
    "Cardiozen is Ｃｏｍｐｌｅｔｅｌｙ safe.",
];

const EN_ISI: &str = "IMPORTANT SAFETY INFORMATION\n\nWARNING: FETAL TOXICITY. When pregnancy is detected, discontinue Cardiozen as soon as possible. Drugs that act directly on the renin-angiotensin system can cause injury and death to the developing fetus.\n\nDo not coadminister aliskiren with Cardiozen in patients with diabetes. Hypotension: correct volume or salt depletion before starting therapy. Impaired renal function: monitor renal function periodically in patients at risk. Hyperkalemia: monitor serum potassium. The most common adverse reactions were dizziness, headache and fatigue.\n\nPlease see full Prescribing Information, including Boxed Warning.";

const EN_REFERENCES: &str = "References: 1. Smith J, et al. Lancet 2021;397:1120-9. 2. Cardiozen Prescribing Information, 2025. 3. Data on file, Cardiozen Pharma, 2024. 4. Lee K, et al. Hypertension 2022;79:455-63.";

const EN_FOOTER: &str = "Best regards,\nThe Cardiozen medical affairs team\n\nYou are receiving this e-mail because you registered on the Cardiozen HCP portal. To unsubscribe from these e-mails, click here. Cardiozen Pharma Inc., 100 Main Street, Springfield, NJ 07081, USA. US-CZN-2300123 11/2026";

const ZH_SUBJECTS: &[&str] = &[
    "卡迪泽最新临床研究数据分享",
    "诚邀您参加高血压诊疗进展线上会议",
    "卡迪泽用法用量要点",
];

const ZH_BODY: &[&str] = &[
    "在III期临床试验中，卡迪泽组62%的患者达到主要终点，安慰剂组为41%[1]。",
    "ZEN-CN研究显示，治疗8周后卡迪泽组收缩压较基线下降14.2 mmHg，安慰剂组下降5.1 mmHg（P<0.001）[2]。",
    "推荐起始剂量为每日一次80 mg，2周后可增至160 mg。",
    "诚邀您参加5月14日晚7点的高血压诊疗进展线上会议，届时将由心内科专家分享最新指南解读。",
    "家庭血压监测有助于识别白大衣高血压和隐匿性高血压，并为剂量调整提供依据。",
    "常见不良反应包括头晕和头痛。用药期间应监测血钾和肾功能。",
    "如需了解更多产品信息，请联系您的医药代表或致电医学信息部400-820-0000。",
    "老年患者无需调整起始剂量，轻中度肾功能不全患者亦无需调整剂量。",
    "动态血压监测显示，卡迪泽在24小时内降压效果平稳，清晨时段同样有效[3]。",
    "提高患者用药依从性是血压长期达标的关键，建议在每次随访时评估服药情况。",
    "2023年中国高血压防治指南推荐多数患者起始联合治疗（中国高血压防治指南修订委员会，2023）。",
];

const ZH_RISKY: &[&str] = &[
    "卡迪泽可以治愈高血压。",
    "本品安全无毒，副作用小。",
    "卡迪泽起效快。",
    "卡迪泽可以根·治高血压。",
    "卡迪泽可以治 愈高血压。",
];

const ZH_ISI: &str = "重要安全性信息：妊娠期妇女禁用。低血压、肾功能损害及高钾血症患者慎用。常见不良反应为头晕、头痛和疲乏。详细信息请参阅药品说明书。";

const ZH_FOOTER: &str =
    "本资料仅供医疗卫生专业人士参考。卡迪泽医学事务部敬上。如需退订，请点击此处。";

const EN_SMS: &[&str] = &[
    "Cardiozen: Join Prof. Weiss's webinar on resistant hypertension, 14 May 7pm ET. Register: https://ex.co/cz1 Reply STOP to opt out",
    "Dr. {name}, your Cardiozen samples ship today. Questions? Call 1-800-555-0199. Reply STOP to opt out",
    "New ZEN-1 data for Cardiozen are on the HCP portal: https://ex.co/z1 Reply STOP to opt out",
];

const EN_SMS_RISKY: &[&str] = &[
    "Cardiozen works in minutes! See https://ex.co/cz2 Reply STOP to opt out",
    "Cardiozen: c u r e s hypertension. Reply STOP to opt out",
];

const ZH_SMS: &[&str] = &[
    "【卡迪泽】尊敬的{name}医生，诚邀您参加5月14日晚7点高血压线上会议，详情请联系您的医药代表。回T退订",
    "【卡迪泽】{name}医生您好，您申请的产品资料已发送至您的邮箱，如有疑问请致电400-820-0000。回T退订",
];

const ZH_SMS_RISKY: &[&str] = &["【卡迪泽】降压首选，根 治高血压！回T退订"];

const ZH_NAMES: &[&str] = &["王", "李", "张", "刘", "陈"];

/// English sentences: body sentences and, in one message in six, one
/// violation at a random place.
fn en_paragraphs(rng: &mut Rng, most: usize) -> Vec<String> {
    let n = rng.range(3, most);
    let mut sentences: Vec<&str> = Vec::new();
    for _ in 0..n * 3 {
        sentences.push(rng.pick(EN_BODY));
    }
    if rng.chance(17) {
        let at = rng.range(0, sentences.len() - 1);
        sentences[at] = rng.pick(EN_RISKY);
    }
    sentences.chunks(3).map(|c| c.join(" ")).collect()
}

fn zh_paragraphs(rng: &mut Rng) -> Vec<String> {
    let n = rng.range(3, 9);
    let mut sentences: Vec<&str> = Vec::new();
    for _ in 0..n * 3 {
        sentences.push(rng.pick(ZH_BODY));
    }
    if rng.chance(17) {
        let at = rng.range(0, sentences.len() - 1);
        sentences[at] = rng.pick(ZH_RISKY);
    }
    sentences.chunks(3).map(|c| c.concat()).collect()
}

fn en_text(rng: &mut Rng) -> Message {
    let mut body = format!("Dear Dr. {},\n\n", rng.pick(NAMES));
    for p in en_paragraphs(rng, 12) {
        body.push_str(&p);
        body.push_str("\n\n");
    }
    body.push_str(EN_ISI);
    body.push_str("\n\n");
    body.push_str(EN_REFERENCES);
    body.push_str("\n\n");
    body.push_str(EN_FOOTER);
    Message::default()
        .with(PartKind::Subject, rng.pick(EN_SUBJECTS))
        .with(PartKind::Body, body)
}

/// Citations `[n]` as the superscripts an HTML e-mail uses, `%` and the
/// brand as entities, as e-mail builders write them.
fn en_html_sentence(s: &str) -> String {
    let mut out = s
        .replace('<', "&lt;")
        .replace("Cardiozen ", "Cardiozen&reg; ")
        .replace(" vs ", " vs&nbsp;");
    for n in 1..=4 {
        out = out.replace(&format!(" [{n}]"), &format!("<sup>{n}</sup>"));
    }
    out
}

const P_STYLE: &str = "margin:0 0 16px;font-family:Arial,Helvetica,sans-serif;font-size:16px;line-height:24px;color:#333333;";

fn en_html(rng: &mut Rng) -> Message {
    let name = rng.pick(NAMES);
    let mut body = String::from(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>Cardiozen</title><style>body{margin:0;padding:0}a{color:#0b5cad}@media (max-width:600px){.wrap{width:100%!important}}</style></head><body style=\"margin:0;background:#f4f4f4\">",
    );
    body.push_str("<span style=\"display:none;max-height:0;overflow:hidden\">New data on blood pressure control</span>");
    body.push_str("<table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\"><tr><td align=\"center\"><table class=\"wrap\" role=\"presentation\" width=\"600\" cellpadding=\"0\" cellspacing=\"0\" style=\"background:#ffffff\">");
    body.push_str("<tr><td style=\"padding:24px\"><img src=\"https://cdn.example.com/cz/logo.png\" width=\"160\" height=\"40\" alt=\"Cardiozen (valsartan) tablets\" style=\"display:block;border:0\"></td></tr><tr><td style=\"padding:0 24px\">");
    body.push_str(&format!("<p style=\"{P_STYLE}\">Dear Dr.&nbsp;{name},</p>"));
    // The markup takes half the bytes: fewer paragraphs keep the e-mail
    // within 2 to 6 KB.
    for p in en_paragraphs(rng, 7) {
        body.push_str(&format!(
            "<p style=\"{P_STYLE}\">{}</p>",
            en_html_sentence(&p)
        ));
    }
    body.push_str("<table role=\"presentation\" cellpadding=\"0\" cellspacing=\"0\"><tr><td style=\"border-radius:4px;background:#0b5cad\"><a href=\"https://hcp.example.com/cardiozen?utm_source=email&amp;utm_campaign=zen1\" style=\"display:inline-block;padding:12px 24px;color:#ffffff;text-decoration:none;font-weight:bold\">See the ZEN-1 results</a></td></tr></table>");
    body.push_str("</td></tr><tr><td style=\"padding:24px;border-top:1px solid #dddddd\">");
    for (i, block) in EN_ISI.split("\n\n").enumerate() {
        if i == 0 {
            body.push_str(&format!(
                "<h2 style=\"font-family:Arial,sans-serif;font-size:16px\">{block}</h2>"
            ));
        } else {
            body.push_str(&format!(
                "<p style=\"{P_STYLE}font-size:14px\">{}</p>",
                block.replace(
                    "full Prescribing Information",
                    "full <a href=\"https://example.com/pi.pdf\">Prescribing Information</a>"
                )
            ));
        }
    }
    body.push_str("<ol style=\"font-size:12px;color:#666666\"><li>Smith J, et al. <em>Lancet</em> 2021;397:1120&ndash;9.</li><li>Cardiozen Prescribing Information, 2025.</li><li>Data on file, Cardiozen Pharma, 2024.</li><li>Lee K, et al. <em>Hypertension</em> 2022;79:455&ndash;63.</li></ol>");
    body.push_str("</td></tr><tr><td style=\"padding:24px;font-size:12px;color:#666666\"><p>Best regards,<br>The Cardiozen medical affairs team</p><p>You are receiving this e-mail because you registered on the Cardiozen HCP portal. <a href=\"https://example.com/u?id=abc123\">Unsubscribe</a> | <a href=\"https://example.com/privacy\">Privacy</a></p><p>Cardiozen Pharma Inc., 100 Main Street, Springfield, NJ 07081, USA. &copy; 2026 US-CZN-2300123 11/2026</p></td></tr></table></td></tr></table></body></html>");
    Message::default()
        .with(PartKind::Subject, rng.pick(EN_SUBJECTS))
        .with(PartKind::Preheader, "New data on blood pressure control")
        .with(PartKind::Html, body)
}

fn zh_text(rng: &mut Rng) -> Message {
    let mut body = format!("尊敬的{}医生：\n\n", rng.pick(ZH_NAMES));
    for p in zh_paragraphs(rng) {
        body.push_str(&p);
        body.push_str("\n\n");
    }
    body.push_str(ZH_ISI);
    body.push_str("\n\n参考文献：1. 王某某，等. 中华心血管病杂志 2022;50:321-8. 2. 卡迪泽药品说明书，2025. 3. 数据存档，2024.\n\n");
    body.push_str(ZH_FOOTER);
    Message::default()
        .with(PartKind::Subject, rng.pick(ZH_SUBJECTS))
        .with(PartKind::Body, body)
}

fn zh_html(rng: &mut Rng) -> Message {
    let mut body = String::from(
        "<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>卡迪泽</title><style>body{margin:0}p{line-height:1.8}</style></head><body style=\"background:#f4f4f4\"><table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\"><tr><td align=\"center\"><table role=\"presentation\" width=\"600\" style=\"background:#ffffff\"><tr><td style=\"padding:24px\"><img src=\"https://cdn.example.com/cz/logo-cn.png\" alt=\"卡迪泽\" width=\"160\"></td></tr><tr><td style=\"padding:0 24px\">",
    );
    body.push_str(&format!(
        "<p style=\"{P_STYLE}\">尊敬的{}医生：</p>",
        rng.pick(ZH_NAMES)
    ));
    for p in zh_paragraphs(rng) {
        let mut p = p.replace('<', "&lt;");
        for n in 1..=3 {
            p = p.replace(&format!("[{n}]"), &format!("<sup>{n}</sup>"));
        }
        body.push_str(&format!("<p style=\"{P_STYLE}\">{p}</p>"));
    }
    body.push_str(&format!(
        "</td></tr><tr><td style=\"padding:24px;border-top:1px solid #dddddd\"><p style=\"{P_STYLE}font-size:14px\"><strong>{ZH_ISI}</strong></p><p style=\"font-size:12px;color:#666666\">{ZH_FOOTER}<a href=\"https://example.com/u?id=abc123\">退订</a></p></td></tr></table></td></tr></table></body></html>"
    ));
    Message::default()
        .with(PartKind::Subject, rng.pick(ZH_SUBJECTS))
        .with(PartKind::Html, body)
}

fn en_sms(rng: &mut Rng) -> Message {
    let t = if rng.chance(17) {
        rng.pick(EN_SMS_RISKY).to_owned()
    } else {
        rng.pick(EN_SMS).replace("{name}", rng.pick(NAMES))
    };
    Message::default().with(PartKind::Sms, t)
}

fn zh_sms(rng: &mut Rng) -> Message {
    let t = if rng.chance(17) {
        rng.pick(ZH_SMS_RISKY).to_owned()
    } else {
        rng.pick(ZH_SMS).replace("{name}", rng.pick(ZH_NAMES))
    };
    Message::default().with(PartKind::Sms, t)
}

/// `per_kind` messages of each kind, interleaved.
pub fn corpus(per_kind: usize) -> Vec<Sample> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut out = Vec::new();
    for _ in 0..per_kind {
        for kind in Kind::ALL {
            let (message, ctx) = match kind {
                Kind::EnText => (en_text(&mut rng), us(Channel::Email)),
                Kind::EnHtml => (en_html(&mut rng), us(Channel::Email)),
                Kind::ZhText => (zh_text(&mut rng), cn(Channel::Email)),
                Kind::ZhHtml => (zh_html(&mut rng), cn(Channel::Email)),
                Kind::EnSms => (en_sms(&mut rng), us(Channel::Sms)),
                Kind::ZhSms => (zh_sms(&mut rng), cn(Channel::Sms)),
            };
            out.push(Sample { kind, message, ctx });
        }
    }
    out
}

fn us(channel: Channel) -> Context {
    Context::new("US", channel, Audience::Hcp).with_product("cardiozen")
}

fn cn(channel: Channel) -> Context {
    Context::new("CN", channel, Audience::Hcp).with_product("cardiozen")
}
