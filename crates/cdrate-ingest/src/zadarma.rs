//! Zadarma PBX call notifications (`NOTIFY_*`): the `Signature` check, the
//! `zd_echo` URL check and the mapping of one form body to a [`CallRecord`]
//! (fixtures `zadarma/NOTES.md`).
//!
//! Signature: each event signs two or three form-decoded fields concatenated
//! with nothing between them (an absent field is the empty string; the event
//! name is not signed); the header is base64 of the 40 lower-case hex
//! characters of HMAC-SHA1 keyed with the API secret, compared in constant
//! time. Only `NOTIFY_END` and `NOTIFY_OUT_END` become records; the other
//! events are `Ignored("not_final")`. Zadarma sends `call_start` as local
//! wall-clock time without an offset and one `duration`: the time is
//! converted to UTC with the configured zone (a repeated hour takes its first
//! occurrence, a skipped hour the offset before the gap), an answered call is
//! taken as answered at `call_start`, and every call ends at
//! `call_start + duration`, computed in UTC. Calls no extension took are keyed
//! by the configured PBX id. No I/O here: the HTTP layer answers `zd_echo`
//! with [`echo_response`], checks [`verify_signature`] (or, when
//! [`signed_string`] is `None`, rejects with the mapping's code), then parses.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use cdrate_core::call::CALL_SCHEMA;
use cdrate_core::{CallRecord, Direction, Disposition, Source};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::form::{decode_form, malformed, parse_seconds, single_value, Params};
use crate::{Adapter, ErrorKind, IngestError, Outcome, ParseContext};

/// The Zadarma source. Reads `ctx.timezone` (the PBX's zone; UTC when
/// `None`, as in the configuration's default) and `ctx.box_id` (the PBX id,
/// the `account_key` of incoming calls no extension took).
pub struct Zadarma;

impl Adapter for Zadarma {
    fn source(&self) -> Source {
        Source::Zadarma
    }

    fn parse(&self, payload: &[u8], ctx: &ParseContext<'_>) -> Outcome {
        map_notification(payload, ctx).unwrap_or_else(Outcome::Rejected)
    }
}

/// Checks the `Signature` header of a notification body with the API
/// secret. A missing header is `signature = ""`, which never verifies; so
/// does a body with no [`signed_string`]. Never panics; the digest
/// comparison is constant-time.
pub fn verify_signature(body: &[u8], signature: &str, secret: &str) -> bool {
    let Some(message) = signed_string(body) else {
        return false;
    };
    let Some(expected) = decode_signature(signature) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(message.as_bytes());
    mac.verify_slice(&expected).is_ok()
}

/// The string a notification's signature covers, or `None` when the body
/// has none: `event` absent, empty, unknown or sent twice with different
/// values, or a signed field sent twice with different values. Such a body
/// can only be rejected by the mapping (`missing_field` or
/// `malformed_payload`), so the HTTP layer answers with the code of
/// [`Zadarma`]'s `parse` instead of `bad_signature`.
pub fn signed_string(body: &[u8]) -> Option<String> {
    let pairs = decode_form(body);
    let event = single_value(&pairs, "event").ok()??;
    let event = Event::parse(event)?;
    let mut out = String::new();
    for field in event.signed_fields() {
        out.push_str(single_value(&pairs, field).ok()?.unwrap_or_default());
    }
    Some(out)
}

/// The answer to Zadarma's URL check `GET <url>?zd_echo=<string>`: the
/// form-decoded value of the first `zd_echo` in the raw query string (a
/// leading `?` is allowed), to be sent back as a `text/plain` 200 body with
/// nothing checked. `None` (answer 400) when the query has no `zd_echo`.
pub fn echo_response(query: &str) -> Option<String> {
    let query = query.strip_prefix('?').unwrap_or(query);
    form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "zd_echo")
        .map(|(_, value)| value.into_owned())
}

/// Base64 of 40 lower-case hex characters, decoded to the 20 digest bytes.
/// Base64 of the raw digest, bare hex and upper-case hex are all rejected.
fn decode_signature(signature: &str) -> Option<Vec<u8>> {
    let hex = BASE64.decode(signature).ok()?;
    if hex.len() != 40 {
        return None;
    }
    hex.chunks_exact(2)
        .map(|pair| match pair {
            [hi, lo] => Some(hex_digit(*hi)?.checked_mul(16)?.checked_add(hex_digit(*lo)?)?),
            _ => None,
        })
        .collect()
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => b.checked_sub(b'0'),
        b'a'..=b'f' => b.checked_sub(b'a')?.checked_add(10),
        _ => None,
    }
}

/// The notifications Zadarma sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Start,
    Ivr,
    Internal,
    Answer,
    End,
    OutStart,
    OutEnd,
    Record,
}

impl Event {
    fn parse(name: &str) -> Option<Event> {
        Some(match name {
            "NOTIFY_START" => Event::Start,
            "NOTIFY_IVR" => Event::Ivr,
            "NOTIFY_INTERNAL" => Event::Internal,
            "NOTIFY_ANSWER" => Event::Answer,
            "NOTIFY_END" => Event::End,
            "NOTIFY_OUT_START" => Event::OutStart,
            "NOTIFY_OUT_END" => Event::OutEnd,
            "NOTIFY_RECORD" => Event::Record,
            _ => return None,
        })
    }

    /// The fields whose values, concatenated in this order, are signed.
    fn signed_fields(self) -> &'static [&'static str] {
        match self {
            Event::Start | Event::Ivr | Event::Internal | Event::End => &["caller_id", "called_did", "call_start"],
            Event::Answer => &["caller_id", "destination", "call_start"],
            Event::OutStart | Event::OutEnd => &["internal", "destination", "call_start"],
            Event::Record => &["pbx_call_id", "call_id_with_rec"],
        }
    }
}

/// Parameters the mapping reads; a conflicting repeat of any of these is
/// `malformed_payload`, repeats of anything else are ignored.
const READ: &[&str] = &[
    "event",
    "call_start",
    "pbx_call_id",
    "caller_id",
    "called_did",
    "internal",
    "last_internal",
    "destination",
    "duration",
    "disposition",
    "status_code",
    "is_recorded",
    "call_id_with_rec",
];

fn map_notification(payload: &[u8], ctx: &ParseContext<'_>) -> Result<Outcome, IngestError> {
    let pairs = decode_form(payload);
    let params = Params::read(&pairs, READ)?;
    let event = params.require("event")?;
    let direction = match Event::parse(event) {
        Some(Event::End) => Direction::Inbound,
        Some(Event::OutEnd) => Direction::Outbound,
        // The record comes with the end event, which also carries the
        // recording fields, so NOTIFY_RECORD adds nothing either.
        Some(_) => return Ok(Outcome::Ignored("not_final")),
        None => return Err(malformed(format!("event {event:?} is not a Zadarma notification"))),
    };

    let pbx_call_id = params.require("pbx_call_id")?;
    let call_start = params.require("call_start")?;
    let (caller, callee) = match direction {
        Direction::Inbound => (params.require("caller_id")?, params.require("called_did")?),
        _ => (params.require("internal")?, params.require("destination")?),
    };
    let duration = params.require("duration")?;
    let disposition = params.require("disposition")?;

    let start_local = parse_call_start(call_start)
        .ok_or_else(|| malformed(format!("call_start {call_start:?} is not a real YYYY-MM-DD HH:MM:SS")))?;
    let duration_s = parse_seconds(duration)
        .ok_or_else(|| malformed(format!("duration {duration:?} is not a non-negative integer")))?;
    let disposition =
        parse_disposition(disposition).ok_or_else(|| malformed(format!("disposition {disposition:?} is not known")))?;

    let start_at = local_to_utc(start_local, ctx.timezone.unwrap_or(Tz::UTC))
        .ok_or_else(|| malformed("call_start is out of the representable time range"))?;
    let end_at = i64::try_from(duration_s)
        .ok()
        .and_then(TimeDelta::try_seconds)
        .and_then(|d| start_at.checked_add_signed(d))
        .ok_or_else(|| malformed("duration is too large"))?;
    let duration_ms = duration_s
        .checked_mul(1000)
        .ok_or_else(|| malformed("duration is too large"))?;
    let answered = disposition == Disposition::Answered;

    let account_key = match direction {
        // The extension that had the call last identifies the customer's
        // user; a call no extension took falls back to the PBX id.
        Direction::Inbound => params
            .non_empty("last_internal")
            .or_else(|| params.non_empty("internal"))
            .or(ctx.box_id.filter(|b| !b.is_empty()))
            .ok_or_else(|| {
                IngestError::new(
                    ErrorKind::MissingField,
                    "no last_internal or internal, and no PBX id is configured",
                )
            })?,
        _ => caller,
    };

    let mut attrs = BTreeMap::new();
    if params.non_empty("is_recorded") == Some("1") {
        if let Some(rec) = params.non_empty("call_id_with_rec") {
            attrs.insert("call_id_with_rec".to_owned(), rec.to_owned());
        }
    }
    Ok(Outcome::Record(Box::new(CallRecord {
        schema: CALL_SCHEMA.to_owned(),
        id: format!("zadarma:{pbx_call_id}"),
        version: 1,
        source: Source::Zadarma,
        account_key: account_key.to_owned(),
        direction,
        caller: caller.to_owned(),
        callee: callee.to_owned(),
        callee_e164: None,
        start_at,
        answer_at: answered.then_some(start_at),
        end_at,
        duration_ms,
        billable_ms: if answered { duration_ms } else { 0 },
        disposition,
        hangup_cause: params.non_empty("status_code").map(str::to_owned),
        trunk: None,
        attrs,
        received_at: ctx.received_at,
    })))
}

/// Exactly `YYYY-MM-DD HH:MM:SS` and a real date and time (no leap second).
/// Checked by hand because chrono's `%Y` also takes signs and extra digits.
fn parse_call_start(raw: &str) -> Option<NaiveDateTime> {
    let b = raw.as_bytes();
    let shape_ok = b.len() == 19
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b' ',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        });
    if !shape_ok {
        return None;
    }
    let num = |range: std::ops::Range<usize>| raw.get(range)?.parse::<u32>().ok();
    let date = NaiveDate::from_ymd_opt(i32::try_from(num(0..4)?).ok()?, num(5..7)?, num(8..10)?)?;
    date.and_hms_opt(num(11..13)?, num(14..16)?, num(17..19)?)
}

/// Zadarma's dispositions, trimmed and compared case-insensitively. Every
/// refusal by the network or the account (money, limits, bad number) is a
/// failed call.
fn parse_disposition(raw: &str) -> Option<Disposition> {
    const TABLE: &[(&str, Disposition)] = &[
        ("answered", Disposition::Answered),
        ("busy", Disposition::Busy),
        ("cancel", Disposition::Cancelled),
        ("no answer", Disposition::NoAnswer),
        ("failed", Disposition::Failed),
        ("no money", Disposition::Failed),
        ("unallocated number", Disposition::Failed),
        ("no limit", Disposition::Failed),
        ("no day limit", Disposition::Failed),
        ("line limit", Disposition::Failed),
        ("no money, no limit", Disposition::Failed),
    ];
    let raw = raw.trim();
    TABLE
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(raw))
        .map(|(_, d)| *d)
}

/// A local wall-clock time of `tz` as a UTC instant. A time that occurs
/// twice takes its first occurrence (the earlier instant); a time in a gap
/// is read with the offset in force before the gap. `None` only at the edges
/// of chrono's range.
fn local_to_utc(local: NaiveDateTime, tz: Tz) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        chrono::LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        chrono::LocalResult::Ambiguous(a, b) => Some(a.min(b).with_timezone(&Utc)),
        chrono::LocalResult::None => {
            // The gap's transition instant T lies after `local` read as UTC
            // minus a day (offsets stay within ±1 day), so the offset at that
            // instant is the one in force before the gap, unless the zone
            // changed offset twice within a day, which no zone does.
            let before = local.checked_sub_signed(TimeDelta::days(1))?.and_utc();
            let offset = tz.offset_from_utc_datetime(&before.naive_utc()).fix();
            let shift = TimeDelta::try_seconds(i64::from(offset.local_minus_utc()))?;
            Some(local.checked_sub_signed(shift)?.and_utc())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0740b2afced14c9ffd48";

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn madrid(local: &str) -> DateTime<Utc> {
        local_to_utc(parse_call_start(local).unwrap(), chrono_tz::Europe::Madrid).unwrap()
    }

    #[test]
    fn local_time_plain_and_dst_edges() {
        assert_eq!(madrid("2026-11-18 15:04:05"), utc("2026-11-18T14:04:05Z"));
        assert_eq!(madrid("2026-07-01 12:00:00"), utc("2026-07-01T10:00:00Z"));
        // Clocks go back: 02:45 happens twice; the first (summer) one wins.
        assert_eq!(madrid("2026-10-25 02:45:00"), utc("2026-10-25T00:45:00Z"));
        assert_eq!(madrid("2026-10-25 03:00:00"), utc("2026-10-25T02:00:00Z"));
        // Clocks go forward: 02:40 does not exist; read with the winter offset.
        assert_eq!(madrid("2026-03-29 02:40:00"), utc("2026-03-29T01:40:00Z"));
        assert_eq!(madrid("2026-03-29 01:59:59"), utc("2026-03-29T00:59:59Z"));
        assert_eq!(madrid("2026-03-29 03:00:00"), utc("2026-03-29T01:00:00Z"));
    }

    #[test]
    fn call_duration_across_a_dst_change_is_utc_arithmetic() {
        let body = b"event=NOTIFY_END&call_start=2026-10-25+02%3A30%3A00&pbx_call_id=in_x&caller_id=1&called_did=2&duration=3600&disposition=answered";
        let ctx = ParseContext {
            received_at: utc("2026-10-25T03:00:00Z"),
            timezone: Some(chrono_tz::Europe::Madrid),
            box_id: Some("318722"),
        };
        let Outcome::Record(r) = Zadarma.parse(body, &ctx) else {
            panic!("no record")
        };
        assert_eq!(r.start_at, utc("2026-10-25T00:30:00Z"));
        assert_eq!(r.end_at, utc("2026-10-25T01:30:00Z"));
        assert_eq!(r.account_key, "318722");
    }

    #[test]
    fn call_start_shape_is_strict() {
        for bad in [
            "2026-11-18T15:04:05",
            "2026-11-18 15:04",
            "2026-02-30 10:00:00",
            "2026-11-18 24:00:00",
            "2026-11-18 23:59:60",
            "+026-11-18 15:04:05",
            "2026-11-18 15:04:05 ",
            "２026-11-18 15:04:0",
        ] {
            assert_eq!(parse_call_start(bad), None, "{bad:?}");
        }
        assert!(parse_call_start("2028-02-29 23:59:59").is_some());
    }

    #[test]
    fn worked_examples_from_notes() {
        let cases: &[(&[u8], &str)] = &[
            (
                b"event=NOTIFY_END&caller_id=447700900123&called_did=442079460123&call_start=2026-11-18+15%3A04%3A05",
                "NTU5N2NkMGM3ZjhmZDhkM2IzMzc0MzYwZjBlMDEwNDQwYWM5YzM2OA==",
            ),
            (
                b"event=NOTIFY_OUT_END&internal=102&destination=442079460958&call_start=2026-11-18+16%3A20%3A00",
                "MTJkNWMzN2RmMGFiZGE1MDk0ZWU5YmVhZmNkMjU5NTVmM2IxNjQ2Yg==",
            ),
            (
                b"event=NOTIFY_RECORD&call_id_with_rec=1795010645.2207163&pbx_call_id=in_b1511899c0c6f97dd6af373bd7bc359bd956e56b",
                "MGQyYmU0MWIzNjViM2YwYTM3ODJjMmRjYjExMTBmYjA2NmIzOWFiYw==",
            ),
        ];
        for (body, sig) in cases {
            assert!(verify_signature(body, sig, SECRET), "{}", String::from_utf8_lossy(body));
            assert!(!verify_signature(body, sig, "other secret"));
        }
        let (end, _) = cases[0];
        assert_eq!(
            signed_string(end).as_deref(),
            Some("4477009001234420794601232026-11-18 15:04:05")
        );
        // Raw-digest base64, bare hex and upper-case hex are all wrong.
        assert!(!verify_signature(end, "VZfNDH+P2NOzN0Ng8OAQRArJw2g=", SECRET));
        assert!(!verify_signature(
            end,
            "5597cd0c7f8fd8d3b3374360f0e010440ac9c368",
            SECRET
        ));
        let upper = BASE64.encode("5597CD0C7F8FD8D3B3374360F0E010440AC9C368");
        assert!(!verify_signature(end, &upper, SECRET));
    }

    #[test]
    fn bodies_without_a_signed_string_are_rejected_by_the_mapping() {
        let ctx = ParseContext {
            received_at: utc("2026-11-18T15:00:00Z"),
            timezone: None,
            box_id: None,
        };
        for body in [
            &b"caller_id=1"[..],
            b"event=",
            b"event=NOTIFY_SOMETHING",
            b"event=NOTIFY_END&event=NOTIFY_START",
            b"event=NOTIFY_START&caller_id=1&caller_id=2",
        ] {
            assert_eq!(signed_string(body), None, "{}", String::from_utf8_lossy(body));
            assert!(
                matches!(Zadarma.parse(body, &ctx), Outcome::Rejected(_)),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        // Absent signed fields are empty strings, not a missing signed string.
        assert_eq!(signed_string(b"event=NOTIFY_START").as_deref(), Some(""));
    }

    #[test]
    fn echo_returns_the_decoded_zd_echo() {
        assert_eq!(echo_response("zd_echo=abc123").as_deref(), Some("abc123"));
        assert_eq!(echo_response("?x=1&zd_echo=a%20b+c").as_deref(), Some("a b c"));
        assert_eq!(echo_response("zd_echo=").as_deref(), Some(""));
        assert_eq!(echo_response("x=1"), None);
        assert_eq!(echo_response(""), None);
    }

    #[test]
    fn dispositions_trim_and_ignore_case() {
        assert_eq!(parse_disposition(" No Answer "), Some(Disposition::NoAnswer));
        assert_eq!(parse_disposition("NO MONEY, NO LIMIT"), Some(Disposition::Failed));
        assert_eq!(parse_disposition("cancel"), Some(Disposition::Cancelled));
        assert_eq!(parse_disposition("missed"), None);
    }
}
