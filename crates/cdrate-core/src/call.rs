//! [`CallRecord`]: the normalized call every source is turned into, and the
//! `call.v1` message on the bus (DESIGN §4).
//!
//! Ingest builds it, rating prices it, the store keeps it. Instants are UTC;
//! local time never appears here.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a call came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Freeswitch,
    Twilio,
    Zadarma,
    Fritzbox,
    /// `POST /ingest/calls`: a CallRecord sent as is.
    Generic,
}

impl Source {
    pub fn as_str(&self) -> &'static str {
        match self {
            Source::Freeswitch => "freeswitch",
            Source::Twilio => "twilio",
            Source::Zadarma => "zadarma",
            Source::Fritzbox => "fritzbox",
            Source::Generic => "generic",
        }
    }

    /// The inverse of [`Source::as_str`]: exactly the snake_case name, as
    /// written in `identities.csv` and on the wire.
    pub fn parse(s: &str) -> Option<Source> {
        match s {
            "freeswitch" => Some(Source::Freeswitch),
            "twilio" => Some(Source::Twilio),
            "zadarma" => Some(Source::Zadarma),
            "fritzbox" => Some(Source::Fritzbox),
            "generic" => Some(Source::Generic),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Outbound,
    Inbound,
    Internal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    Answered,
    NoAnswer,
    Busy,
    Failed,
    Cancelled,
    Missed,
}

impl Direction {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
            Direction::Internal => "internal",
        }
    }
}

impl Disposition {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Answered => "answered",
            Disposition::NoAnswer => "no_answer",
            Disposition::Busy => "busy",
            Disposition::Failed => "failed",
            Disposition::Cancelled => "cancelled",
            Disposition::Missed => "missed",
        }
    }
}

/// Message schema id carried in every `call.v1` record.
pub const CALL_SCHEMA: &str = "call.v1";

/// One call as a source reported it, normalized (DESIGN §4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallRecord {
    pub schema: String,
    /// Stable across retries: `fs:<uuid>`, `twilio:<CallSid>`, ….
    pub id: String,
    /// 1 for the first final record; a source's correction bumps it.
    pub version: u32,
    pub source: Source,
    pub account_key: String,
    pub direction: Direction,
    pub caller: String,
    pub callee: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callee_e164: Option<String>,
    pub start_at: DateTime<Utc>,
    pub answer_at: Option<DateTime<Utc>>,
    pub end_at: DateTime<Utc>,
    pub duration_ms: u64,
    pub billable_ms: u64,
    pub disposition: Disposition,
    #[serde(default)]
    pub hangup_cause: Option<String>,
    #[serde(default)]
    pub trunk: Option<String>,
    #[serde(default)]
    pub attrs: BTreeMap<String, String>,
    pub received_at: DateTime<Utc>,
}

impl CallRecord {
    /// The instant a call is rated at: answer time, else start time.
    pub fn rating_instant(&self) -> DateTime<Utc> {
        self.answer_at.unwrap_or(self.start_at)
    }

    /// Billable seconds, rounded up from milliseconds (DESIGN §5).
    pub fn billable_seconds(&self) -> u64 {
        billable_seconds(self.billable_ms)
    }
}

/// `ms` rounded up to whole seconds.
pub fn billable_seconds(ms: u64) -> u64 {
    ms.div_ceil(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CallRecord {
        CallRecord {
            schema: CALL_SCHEMA.into(),
            id: "fs:4f0c".into(),
            version: 1,
            source: Source::Freeswitch,
            account_key: "acme".into(),
            direction: Direction::Outbound,
            caller: "1001".into(),
            callee: "+442071234567".into(),
            callee_e164: None,
            start_at: "2026-11-18T15:00:00Z".parse().unwrap(),
            answer_at: Some("2026-11-18T15:00:05Z".parse().unwrap()),
            end_at: "2026-11-18T15:01:06Z".parse().unwrap(),
            duration_ms: 66_000,
            billable_ms: 61_001,
            disposition: Disposition::Answered,
            hangup_cause: Some("NORMAL_CLEARING".into()),
            trunk: None,
            attrs: BTreeMap::new(),
            received_at: "2026-11-18T15:01:07Z".parse().unwrap(),
        }
    }

    #[test]
    fn call_record_json_round_trip() {
        let rec = sample();
        let json = serde_json::to_string(&rec).unwrap();
        assert!(json.contains(r#""source":"freeswitch""#));
        assert!(json.contains(r#""disposition":"answered""#));
        assert_eq!(serde_json::from_str::<CallRecord>(&json).unwrap(), rec);
    }

    #[test]
    fn billable_ms_rounds_up_to_seconds() {
        assert_eq!(billable_seconds(0), 0);
        assert_eq!(billable_seconds(1), 1);
        assert_eq!(billable_seconds(1000), 1);
        assert_eq!(billable_seconds(61_001), 62);
        assert_eq!(sample().billable_seconds(), 62);
        assert_eq!(billable_seconds(u64::MAX), u64::MAX / 1000 + 1);
    }

    #[test]
    fn source_parse_inverts_as_str_and_matches_serde() {
        for source in [
            Source::Freeswitch,
            Source::Twilio,
            Source::Zadarma,
            Source::Fritzbox,
            Source::Generic,
        ] {
            assert_eq!(Source::parse(source.as_str()), Some(source));
            let json = serde_json::to_string(&source).unwrap();
            assert_eq!(json, format!("\"{}\"", source.as_str()));
        }
        for unknown in ["", "FreeSWITCH", "fritz", " twilio", "generic "] {
            assert_eq!(Source::parse(unknown), None, "{unknown:?}");
        }
    }

    #[test]
    fn enum_names_match_the_wire() {
        for d in [Direction::Outbound, Direction::Inbound, Direction::Internal] {
            assert_eq!(serde_json::to_value(d).unwrap(), d.as_str());
        }
        for d in [
            Disposition::Answered,
            Disposition::NoAnswer,
            Disposition::Busy,
            Disposition::Failed,
            Disposition::Cancelled,
            Disposition::Missed,
        ] {
            assert_eq!(serde_json::to_value(d).unwrap(), d.as_str());
        }
    }

    #[test]
    fn rating_instant_is_answer_else_start() {
        let mut rec = sample();
        assert_eq!(rec.rating_instant(), rec.answer_at.unwrap());
        rec.answer_at = None;
        assert_eq!(rec.rating_instant(), rec.start_at);
    }
}
