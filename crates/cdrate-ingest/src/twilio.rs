//! Twilio Voice status callbacks: the `X-Twilio-Signature` check and the
//! mapping of one form body to a [`CallRecord`] (fixtures `twilio/NOTES.md`).
//!
//! Signature: the URL Twilio requested, exactly as Twilio wrote it (still
//! percent-encoded), followed by every form-decoded POST parameter sorted
//! byte-wise by name, each name immediately followed by its value (a repeated
//! name contributes each distinct value, values sorted byte-wise); HMAC-SHA1
//! of that string keyed with the auth token of the account in the body's
//! `AccountSid`, base64-encoded, compared in constant time. Twilio is not
//! consistent about the default port, so the URL is also tried with the port
//! added (`:443`/`:80` when it has none) or removed (when it has one).
//!
//! Mapping: only final statuses (`completed`, `busy`, `no-answer`, `failed`,
//! `canceled`) become records; intermediate ones are `Ignored("not_final")`.
//! A callback does not say when ringing began, so a completed call starts
//! when it was answered (`Timestamp` − `CallDuration`) and an unanswered one
//! starts and ends at `Timestamp`. This module does no I/O and picks no
//! token: the HTTP layer looks the token up with [`account_sid`], rebuilds
//! the URL with [`signed_url`] and calls [`verify_signature`] before
//! [`Twilio`]'s `parse`.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use cdrate_core::call::CALL_SCHEMA;
use cdrate_core::{CallRecord, Direction, Disposition, Source};
use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::form::{decode_form, malformed, parse_seconds, single_value, Params};
use crate::{Adapter, IngestError, Outcome, ParseContext};

/// The Twilio source. Needs no setting from [`ParseContext`] besides
/// `received_at`.
pub struct Twilio;

impl Adapter for Twilio {
    fn source(&self) -> Source {
        Source::Twilio
    }

    fn parse(&self, payload: &[u8], ctx: &ParseContext<'_>) -> Outcome {
        map_callback(payload, ctx).unwrap_or_else(Outcome::Rejected)
    }
}

/// Checks `X-Twilio-Signature` over a form body.
///
/// `url` is the URL Twilio requested, as Twilio wrote it (see
/// [`signed_url`]); it is tried as given and in its other port form (see
/// [`candidate_urls`]). `auth_token` is the token of the account named by the
/// body's `AccountSid` (see [`account_sid`]); a subaccount signs with its own
/// token. A missing header is `signature = ""`, which never verifies. Never
/// panics; the digest comparison is constant-time.
pub fn verify_signature(url: &str, body: &[u8], signature: &str, auth_token: &str) -> bool {
    // A header that is not canonical base64 of 20 bytes cannot match; what
    // leaks by rejecting it early is only what the sender already knows.
    let Ok(expected) = BASE64.decode(signature) else {
        return false;
    };
    let Ok(keyed) = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()) else {
        return false;
    };
    let params = signed_params(body);
    candidate_urls(url).iter().any(|candidate| {
        let mut mac = keyed.clone();
        mac.update(candidate.as_bytes());
        mac.update(&params);
        mac.verify_slice(&expected).is_ok()
    })
}

/// The `AccountSid` of a (not yet trusted) body: which account's auth token
/// to verify it with. `None` when it is absent, empty, or sent twice with
/// different values; the HTTP layer then answers `bad_signature`, as for an
/// account with no configured token, since there is no key to check with.
pub fn account_sid(body: &[u8]) -> Option<String> {
    let pairs = decode_form(body);
    single_value(&pairs, "AccountSid")
        .ok()?
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// The URL Twilio requested, rebuilt behind a proxy: the scheme,
/// `user:password@`, host and port of the configured `public_url` (the
/// callback URL as set in Twilio), followed by the request's path and raw
/// query exactly as received (`path_and_query`, e.g.
/// `/ingest/twilio?tenant=acme%20voip`; nothing decoded or re-ordered).
pub fn signed_url(public_url: &str, path_and_query: &str) -> String {
    let origin = match split_origin(public_url) {
        Some((origin, _)) => origin,
        None => public_url.trim_end_matches('/'),
    };
    let mut url = String::with_capacity(origin.len().saturating_add(path_and_query.len()).saturating_add(1));
    url.push_str(origin);
    if !path_and_query.starts_with('/') && !path_and_query.is_empty() {
        url.push('/');
    }
    url.push_str(path_and_query);
    url
}

/// The URLs a signature may have been computed over: `url` itself first,
/// then its other port form. Without a port, `https` gets `:443` and `http`
/// gets `:80` added; with a port (any), the port is removed. Nothing else is
/// tried: no scheme change, no other port, no decoding. A URL that does not
/// look like `scheme://authority…` is tried only as given.
pub fn candidate_urls(url: &str) -> Vec<String> {
    let mut out = vec![url.to_owned()];
    let Some((origin, rest)) = split_origin(url) else {
        return out;
    };
    let Some((scheme, authority)) = origin.split_once("://") else {
        return out;
    };
    // The host starts after any `user:password@`.
    let host_start = authority.rfind('@').map_or(0, |at| at.saturating_add(1));
    let host_port = authority.get(host_start..).unwrap_or_default();
    // An IPv6 literal has colons of its own; a port can only follow its `]`.
    let after_host = match host_port.rfind(']') {
        Some(close) => close.saturating_add(1),
        None => 0,
    };
    let port_colon = host_port
        .get(after_host..)
        .and_then(|tail| tail.rfind(':'))
        .map(|i| i.saturating_add(after_host));
    match port_colon {
        Some(colon) => {
            let port = host_port.get(colon.saturating_add(1)..).unwrap_or_default();
            if !port.bytes().all(|b| b.is_ascii_digit()) {
                return out;
            }
            let head = origin.len().saturating_sub(authority.len()).saturating_add(host_start);
            let without = format!(
                "{}{}{}",
                origin.get(..head).unwrap_or_default(),
                host_port.get(..colon).unwrap_or_default(),
                rest
            );
            out.push(without);
        }
        None => {
            let default_port = if scheme.eq_ignore_ascii_case("https") {
                "443"
            } else if scheme.eq_ignore_ascii_case("http") {
                "80"
            } else {
                return out;
            };
            out.push(format!("{origin}:{default_port}{rest}"));
        }
    }
    out
}

/// Splits `scheme://authority` from the path, query and fragment that
/// follow it. `None` when there is no `://`.
fn split_origin(url: &str) -> Option<(&str, &str)> {
    let authority_start = url.find("://")?.saturating_add(3);
    let tail = url.get(authority_start..)?;
    let end = tail
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| i.saturating_add(authority_start));
    Some((url.get(..end)?, url.get(end..)?))
}

/// The parameter part of the signed string: names sorted byte-wise, each
/// followed by its distinct values, sorted byte-wise.
fn signed_params(body: &[u8]) -> Vec<u8> {
    let mut pairs = decode_form(body);
    // Tuple order is exactly "by name, then by value", and `str` orders
    // byte-wise; `dedup` then keeps each distinct value of a name once.
    pairs.sort_unstable();
    pairs.dedup();
    let len = pairs
        .iter()
        .fold(0usize, |n, (k, v)| n.saturating_add(k.len()).saturating_add(v.len()));
    let mut out = Vec::with_capacity(len);
    for (name, value) in &pairs {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    out
}

/// Parameters the mapping reads; a conflicting repeat of any of these is
/// `malformed_payload`, repeats of anything else are ignored.
const READ: &[&str] = &[
    "AccountSid",
    "CallSid",
    "CallStatus",
    "Direction",
    "From",
    "To",
    "Timestamp",
    "CallDuration",
    "SipResponseCode",
    "ParentCallSid",
];

fn map_callback(payload: &[u8], ctx: &ParseContext<'_>) -> Result<Outcome, IngestError> {
    let pairs = decode_form(payload);
    let params = Params::read(&pairs, READ)?;
    let account_sid = params.require("AccountSid")?;
    let call_sid = params.require("CallSid")?;
    let status = params.require("CallStatus")?;
    let disposition = match status {
        "queued" | "initiated" | "ringing" | "in-progress" => return Ok(Outcome::Ignored("not_final")),
        "completed" => Disposition::Answered,
        "busy" => Disposition::Busy,
        "no-answer" => Disposition::NoAnswer,
        "failed" => Disposition::Failed,
        "canceled" => Disposition::Cancelled,
        other => return Err(malformed(format!("CallStatus {other:?} is not a Twilio call status"))),
    };
    let answered = disposition == Disposition::Answered;

    let direction = params.require("Direction")?;
    let from = params.require("From")?;
    let to = params.require("To")?;
    let timestamp = params.require("Timestamp")?;
    // `CallDuration` counts only for completed calls; elsewhere it is `0` or
    // absent and is not read, so a bad value there is not an error.
    let call_duration = if answered {
        Some(params.require("CallDuration")?)
    } else {
        None
    };

    let direction = match direction {
        "inbound" => Direction::Inbound,
        "outbound-api" | "outbound-dial" => Direction::Outbound,
        other => {
            return Err(malformed(format!(
                "Direction {other:?} is not inbound/outbound-api/outbound-dial"
            )))
        }
    };
    let end_at = parse_timestamp(timestamp)
        .ok_or_else(|| malformed(format!("Timestamp {timestamp:?} is not RFC 2822 with a numeric zone")))?;
    let connected_s = match call_duration {
        Some(raw) => parse_seconds(raw)
            .ok_or_else(|| malformed(format!("CallDuration {raw:?} is not a non-negative integer")))?,
        None => 0,
    };
    let connected_ms = connected_s
        .checked_mul(1000)
        .ok_or_else(|| malformed("CallDuration is too large"))?;
    let start_at = i64::try_from(connected_s)
        .ok()
        .and_then(TimeDelta::try_seconds)
        .and_then(|d| end_at.checked_sub_signed(d))
        .ok_or_else(|| malformed("CallDuration reaches before the representable time range"))?;

    let mut attrs = BTreeMap::new();
    if let Some(parent) = params.non_empty("ParentCallSid") {
        attrs.insert("parent_call_sid".to_owned(), parent.to_owned());
    }
    Ok(Outcome::Record(Box::new(CallRecord {
        schema: CALL_SCHEMA.to_owned(),
        id: format!("twilio:{call_sid}"),
        version: 1,
        source: Source::Twilio,
        account_key: account_sid.to_owned(),
        direction,
        caller: from.to_owned(),
        callee: to.to_owned(),
        callee_e164: None,
        start_at,
        answer_at: answered.then_some(start_at),
        end_at,
        duration_ms: connected_ms,
        billable_ms: connected_ms,
        disposition,
        hangup_cause: params.non_empty("SipResponseCode").map(str::to_owned),
        trunk: None,
        attrs,
        received_at: ctx.received_at,
    })))
}

/// RFC 2822 with a numeric zone only: chrono also accepts the obsolete zone
/// names (`GMT`, `EST`, military letters), which Twilio never sends.
fn parse_timestamp(raw: &str) -> Option<DateTime<Utc>> {
    let zone = raw.split_ascii_whitespace().next_back()?.as_bytes();
    let numeric =
        zone.len() == 5 && matches!(zone.first(), Some(b'+' | b'-')) && zone.iter().skip(1).all(u8::is_ascii_digit);
    if !numeric {
        return None;
    }
    DateTime::parse_from_rfc2822(raw).ok().map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(url: &str, body: &[u8], token: &str) -> String {
        let mut mac = Hmac::<Sha1>::new_from_slice(token.as_bytes()).unwrap();
        mac.update(url.as_bytes());
        mac.update(&signed_params(body));
        BASE64.encode(mac.finalize().into_bytes())
    }

    const EXAMPLE_BODY: &[u8] = b"To=%2B442079460958&CallStatus=completed&From=%2B14155550123&CallSid=CAe099d3e4b0852a08d30ff929fd4292ee&AccountSid=ACfa2a6398ef9d3e22da00b287346004d6&CallDuration=125&Timestamp=Wed%2C+18+Nov+2026+15%3A04%3A05+%2B0000";
    const MAIN_TOKEN: &str = "cc600b58a903e6ce74ac1232005d3034";

    #[test]
    fn worked_example_from_notes() {
        let url = "https://cdrate.example.net/ingest/twilio";
        let expected_string = "AccountSidACfa2a6398ef9d3e22da00b287346004d6CallDuration125CallSidCAe099d3e4b0852a08d30ff929fd4292eeCallStatuscompletedFrom+14155550123TimestampWed, 18 Nov 2026 15:04:05 +0000To+442079460958";
        assert_eq!(String::from_utf8(signed_params(EXAMPLE_BODY)).unwrap(), expected_string);
        assert_eq!(sign(url, EXAMPLE_BODY, MAIN_TOKEN), "WjViEtRe90bFRUUKW9WLUAgQXq4=");
        assert!(verify_signature(
            url,
            EXAMPLE_BODY,
            "WjViEtRe90bFRUUKW9WLUAgQXq4=",
            MAIN_TOKEN
        ));
        // Signed over the `:443` form; the request came to the port-less URL.
        assert!(verify_signature(
            url,
            EXAMPLE_BODY,
            "szU1+upffOL4Xw2dCubLPR0i430=",
            MAIN_TOKEN
        ));
        assert!(!verify_signature(
            url,
            EXAMPLE_BODY,
            "WjViEtRe90bFRUUKW9WLUAgQXq4=",
            "wrong"
        ));
        assert!(!verify_signature(url, EXAMPLE_BODY, "", MAIN_TOKEN));
    }

    #[test]
    fn official_validator_vectors() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let body = b"CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212";
        assert!(verify_signature(url, body, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", "12345"));
        assert_eq!(
            sign("https://mycompany.com:443/myapp.php?foo=1&bar=2", body, "12345"),
            "kvajT1Ptam85bY51eRf/AJRuM3w="
        );
        assert!(verify_signature(url, body, "kvajT1Ptam85bY51eRf/AJRuM3w=", "12345"));
        let repeated = b"Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234&Digits=1234";
        assert!(verify_signature(url, repeated, "IK+Dwps556ElfBT0I3Rgjkr1wJU=", "12345"));
    }

    #[test]
    fn candidate_urls_add_or_remove_the_port_only() {
        let cases: &[(&str, &[&str])] = &[
            ("https://h/p", &["https://h/p", "https://h:443/p"]),
            ("http://h/p?q=%20", &["http://h/p?q=%20", "http://h:80/p?q=%20"]),
            ("https://h:8443/p", &["https://h:8443/p", "https://h/p"]),
            ("https://u:pw@h/p", &["https://u:pw@h/p", "https://u:pw@h:443/p"]),
            ("https://u:pw@h:443/p", &["https://u:pw@h:443/p", "https://u:pw@h/p"]),
            ("https://[::1]:8443/p", &["https://[::1]:8443/p", "https://[::1]/p"]),
            ("https://[::1]", &["https://[::1]", "https://[::1]:443"]),
            ("https://h?x=1", &["https://h?x=1", "https://h:443?x=1"]),
            ("ftp://h/p", &["ftp://h/p"]),
            ("https://h:x/p", &["https://h:x/p"]),
            ("no scheme", &["no scheme"]),
        ];
        for (url, want) in cases {
            assert_eq!(candidate_urls(url), *want, "{url}");
        }
    }

    #[test]
    fn signed_url_keeps_origin_and_raw_request_target() {
        let base = "https://user:pw@cdrate.example.net:8443/ingest/twilio";
        assert_eq!(
            signed_url(base, "/ingest/twilio?tenant=acme%20voip"),
            "https://user:pw@cdrate.example.net:8443/ingest/twilio?tenant=acme%20voip"
        );
        assert_eq!(signed_url("https://h", "/x"), "https://h/x");
    }

    #[test]
    fn account_sid_is_unambiguous_and_non_empty() {
        assert_eq!(account_sid(b"AccountSid=AC1&x=1").as_deref(), Some("AC1"));
        assert_eq!(account_sid(b"AccountSid=AC1&AccountSid=AC1").as_deref(), Some("AC1"));
        assert_eq!(account_sid(b"AccountSid=AC1&AccountSid=AC2"), None);
        assert_eq!(account_sid(b"AccountSid="), None);
        assert_eq!(account_sid(b"CallSid=CA1"), None);
    }

    #[test]
    fn timestamp_needs_a_numeric_zone() {
        assert!(parse_timestamp("Wed, 18 Nov 2026 15:04:05 +0000").is_some());
        assert!(
            parse_timestamp("Wed, 18 Nov 2026 16:04:05 +0100") == parse_timestamp("Wed, 18 Nov 2026 15:04:05 +0000")
        );
        assert!(parse_timestamp("Wed, 18 Nov 2026 15:04:05 GMT").is_none());
        assert!(parse_timestamp("2026-11-18T15:04:05Z").is_none());
    }

    #[test]
    fn call_duration_is_digits_only() {
        for bad in ["65s", "-5", "12.5", "+5", "", " 5", "99999999999999999999999"] {
            assert_eq!(parse_seconds(bad), None, "{bad:?}");
        }
        assert_eq!(parse_seconds("007"), Some(7));
    }
}
