//! Seeded CallRecord JSON for `POST /ingest/calls`: realistic answered,
//! unanswered and inbound calls to destinations the demo tariffs price,
//! spread over accounts. Record `i` of a seed is always the same record, so
//! a retry or a duplicate post sends identical bytes.

use std::fmt::Write;

use crate::Rng;

/// Numbers the demo tariff deck prices (US, UK, Germany, Mexico, India…).
pub const CALLEES: &[&str] = &[
    "+12125550147",
    "+13105550123",
    "+442079460000",
    "+447700900123",
    "+4930123456",
    "+4915112345678",
    "+33142685300",
    "+5215512345678",
    "+912212345678",
    "+61212345678",
    "+254712345678",
    "+81312345678",
    "+18005550100",
    "+12425550100",
];

/// One call record as JSON. `account_keys` are `generic` identities the
/// receiving cdrate knows; `version` lets tests send corrections.
pub fn call_json(prefix: &str, i: u64, version: u32, account_keys: &[String], seed: u64) -> String {
    let mut rng = Rng::new(seed.wrapping_mul(1_000_003).wrapping_add(i));
    let key = &account_keys[(rng.below(account_keys.len() as u64)) as usize];
    let callee = CALLEES[rng.below(CALLEES.len() as u64) as usize];
    let start = 1_795_000_000 + rng.below(30 * 86_400) as i64; // November 2026
    let answered = rng.below(10) < 8;
    let ring_ms = 1_000 + rng.below(15_000);
    let talk_ms = if answered {
        1 + rng.below(900_000) + u64::from(version - 1) * 1_000
    } else {
        0
    };
    let fmt = |s: i64, ms: u64| {
        chrono::DateTime::from_timestamp(s + (ms / 1000) as i64, ((ms % 1000) * 1_000_000) as u32)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default()
    };
    let direction = if rng.below(10) == 0 { "inbound" } else { "outbound" };
    let mut s = String::with_capacity(400);
    let _ = write!(
        s,
        r#"{{"id":"{prefix}{i}","version":{version},"source":"generic","account_key":"{key}","direction":"{direction}","caller":"1001","callee":"{callee}","start_at":"{}","answer_at":{},"end_at":"{}","duration_ms":{},"billable_ms":{talk_ms},"disposition":"{}","hangup_cause":"NORMAL_CLEARING"}}"#,
        fmt(start, 0),
        if answered {
            format!("\"{}\"", fmt(start, ring_ms))
        } else {
            "null".into()
        },
        fmt(start, ring_ms + talk_ms),
        ring_ms + talk_ms,
        if answered { "answered" } else { "no_answer" },
    );
    s
}

/// A JSON array of the records `range` of a seed.
pub fn batch_json(
    prefix: &str,
    range: std::ops::Range<u64>,
    version: u32,
    account_keys: &[String],
    seed: u64,
) -> String {
    let mut s = String::from("[");
    for i in range {
        if s.len() > 1 {
            s.push(',');
        }
        s.push_str(&call_json(prefix, i, version, account_keys, seed));
    }
    s.push(']');
    s
}
