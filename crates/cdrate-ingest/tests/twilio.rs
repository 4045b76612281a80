//! The Twilio adapter against the shared fixtures (`fixtures/ingest/twilio`):
//! every `expected.jsonl` case through one `check`, every `signatures.jsonl`
//! line through `verify_signature`, and proptests that no body, mutated or
//! arbitrary, makes the adapter or the signature check panic.

use std::path::PathBuf;
use std::sync::OnceLock;

use cdrate_ingest::twilio::{self, Twilio};
use cdrate_ingest::{Adapter, Outcome, ParseContext};
use chrono::{DateTime, FixedOffset};
use proptest::prelude::*;
use serde_json::Value;

/// Auth tokens per account, from the NOTES' settings table.
const TOKENS: &[(&str, &str)] = &[
    ("ACfa2a6398ef9d3e22da00b287346004d6", "cc600b58a903e6ce74ac1232005d3034"),
    ("AC5930ee3c27f50c1dc78923ab4f5c33e5", "b79d1ac28d091599923196ec39e21517"),
];

/// Every code the Twilio mapping may answer with (NOTES, "From a callback").
const MAPPING_CODES: &[&str] = &["malformed_payload", "missing_field"];

fn fixture_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/ingest/twilio"
    ))
}

fn read_fixture(name: &str) -> Vec<u8> {
    let path = fixture_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn jsonl(name: &str) -> Vec<Value> {
    String::from_utf8(read_fixture(name))
        .expect("fixture is UTF-8")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: {e}: {l}")))
        .collect()
}

fn payload_files() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixture_dir())
        .expect("fixture dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".form"))
        .collect();
    names.sort();
    names
}

fn ctx() -> ParseContext<'static> {
    ParseContext {
        received_at: "2026-11-21T00:00:00Z".parse().expect("literal instant"),
        timezone: None,
        box_id: None,
    }
}

#[test]
fn expected_cases() {
    let cases = jsonl("expected.jsonl");
    let mut mismatches = Vec::new();
    for case in &cases {
        check(case, &mut mismatches);
    }
    let covered: Vec<&str> = cases.iter().filter_map(|c| c["file"].as_str()).collect();
    for file in payload_files() {
        if !covered.contains(&file.as_str()) {
            mismatches.push(format!("{file}: payload has no expected outcome"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatch(es) over {} cases:\n{}",
        mismatches.len(),
        cases.len(),
        mismatches.join("\n")
    );
}

/// Runs one `expected.jsonl` case and records every difference, the way
/// `tools/compare_ingest.py` compares (fields given must match, `*_at` as
/// instants, `attrs` only the keys given, errors by code).
fn check(case: &Value, mismatches: &mut Vec<String>) {
    let file = case["file"].as_str().unwrap_or("?");
    let ctx = ctx();
    let outcome = Twilio.parse(&read_fixture(file), &ctx);
    let mut miss = |what: String| mismatches.push(format!("{file}: {what}"));
    match (&outcome, case) {
        (Outcome::Record(got), Value::Object(c)) if c.contains_key("record") => {
            let got_json = serde_json::to_value(got.as_ref()).expect("CallRecord serializes");
            for (key, want) in case["record"].as_object().into_iter().flatten() {
                let got_value = got_json.get(key).unwrap_or(&Value::Null);
                if !same(key, want, got_value) {
                    miss(format!("{key}: want {want}, got {got_value}"));
                }
            }
            if got.schema != "call.v1" || got.received_at != ctx.received_at || got.callee_e164.is_some() {
                miss(format!(
                    "schema/received_at/callee_e164: got {:?} {} {:?}",
                    got.schema, got.received_at, got.callee_e164
                ));
            }
        }
        (Outcome::Rejected(err), Value::Object(c)) if c.contains_key("error") => {
            if Some(err.code()) != case["error"].as_str() {
                miss(format!(
                    "want error {}, got error {} ({})",
                    case["error"],
                    err.code(),
                    err.detail
                ));
            }
        }
        (Outcome::Ignored(reason), Value::Object(c)) if c.contains_key("ignored") => {
            if Some(*reason) != case["ignored"].as_str() {
                miss(format!("want ignored {}, got ignored {reason}", case["ignored"]));
            }
        }
        (got, want) => miss(format!("want {want}, got {got:?}")),
    }
}

fn same(key: &str, want: &Value, got: &Value) -> bool {
    if key == "attrs" {
        return want
            .as_object()
            .into_iter()
            .flatten()
            .all(|(k, v)| got.get(k).map(text) == Some(text(v)));
    }
    if key.ends_with("_at") {
        return instant(want) == instant(got);
    }
    want == got || (!want.is_null() && !got.is_null() && text(want) == text(got))
}

fn instant(v: &Value) -> Option<DateTime<FixedOffset>> {
    v.as_str().and_then(|s| DateTime::parse_from_rfc3339(s).ok())
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[test]
fn signature_cases() {
    let mut mismatches = Vec::new();
    for (n, line) in jsonl("signatures.jsonl").iter().enumerate() {
        let url = line["url"].as_str().expect("url");
        let file = line["body_file"].as_str().expect("body_file");
        let valid = line["valid"].as_bool().expect("valid");
        let signature = header(line, "X-Twilio-Signature").unwrap_or_default();
        let body = read_fixture(file);
        // The token is chosen by the body's AccountSid, as the binary does.
        let got = twilio::account_sid(&body)
            .and_then(|sid| TOKENS.iter().find(|(s, _)| *s == sid).map(|(_, t)| *t))
            .is_some_and(|token| twilio::verify_signature(url, &body, signature, token));
        if got != valid {
            mismatches.push(format!(
                "signatures.jsonl:{} {file} at {url}: want valid={valid}, got {got}",
                n + 1
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// A header of a `signatures.jsonl` line, its name matched case-insensitively.
fn header<'a>(line: &'a Value, name: &str) -> Option<&'a str> {
    line["headers"]
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
}

/// What must hold for any outcome: a known code, a known ignore reason, or a
/// record whose times and durations agree with each other.
fn assert_sound(outcome: &Outcome) -> Result<(), TestCaseError> {
    match outcome {
        Outcome::Rejected(e) => prop_assert!(MAPPING_CODES.contains(&e.code()), "code {}", e.code()),
        Outcome::Ignored(reason) => prop_assert_eq!(*reason, "not_final"),
        Outcome::Record(r) => {
            prop_assert_eq!(r.schema.as_str(), "call.v1");
            prop_assert!(r.id.starts_with("twilio:"));
            let span_ms = (r.end_at - r.start_at).num_milliseconds();
            prop_assert_eq!(u64::try_from(span_ms).ok(), Some(r.duration_ms));
            prop_assert!(r.billable_ms <= r.duration_ms);
            prop_assert!(r.answer_at.is_none() || r.answer_at == Some(r.start_at));
            prop_assert_eq!(r.received_at, ctx().received_at);
        }
    }
    Ok(())
}

/// The fixture bodies, read once for all proptest cases.
fn fixture_payloads() -> &'static [Vec<u8>] {
    static PAYLOADS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    PAYLOADS.get_or_init(|| payload_files().iter().map(|f| read_fixture(f)).collect())
}

/// Flip, insert or delete bytes of a fixture at arbitrary places.
fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    for &(at, op, byte) in edits {
        let at = if bytes.is_empty() { 0 } else { at % bytes.len() };
        match op {
            0 if !bytes.is_empty() => bytes[at] = byte,
            1 => bytes.insert(at, byte),
            _ if !bytes.is_empty() => {
                bytes.remove(at);
            }
            _ => {}
        }
    }
    bytes
}

/// Interesting values for the parameters the mapping reads.
fn param_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("completed".to_owned()),
        Just("in-progress".to_owned()),
        Just("busy".to_owned()),
        Just("outbound-dial".to_owned()),
        Just("18446744073709551615".to_owned()),
        Just("Sat, 01 Jan 0000 00:00:00 +0000".to_owned()),
        Just("Fri, 31 Dec 9999 23:59:59 -2359".to_owned()),
        "[0-9]{1,20}",
        ".{0,40}",
    ]
}

const READ_PARAMS: &[&str] = &[
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

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..600)) {
        assert_sound(&Twilio.parse(&body, &ctx()))?;
    }

    #[test]
    fn mutated_fixtures_never_panic(
        file in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<usize>(), 0u8..3, any::<u8>()), 1..10),
    ) {
        let payloads = fixture_payloads();
        let body = mutate(file.get(payloads).clone(), &edits);
        assert_sound(&Twilio.parse(&body, &ctx()))?;
    }

    /// Rewrites, repeats or drops the parameters the mapping reads, so the
    /// later checks (durations, timestamps, overflow) are reached too.
    #[test]
    fn fixtures_with_changed_params_never_panic(
        file in any::<prop::sample::Index>(),
        changes in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..3, param_value()), 1..6),
    ) {
        let payloads = fixture_payloads();
        let mut pairs: Vec<(String, String)> =
            form_urlencoded::parse(file.get(payloads).as_slice()).into_owned().collect();
        for (param, op, value) in changes {
            let name = *param.get(READ_PARAMS);
            match op {
                0 => pairs.retain(|(n, _)| n != name),
                1 => pairs.push((name.to_owned(), value)),
                _ => {
                    pairs.retain(|(n, _)| n != name);
                    pairs.push((name.to_owned(), value));
                }
            }
        }
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(&pairs).finish();
        assert_sound(&Twilio.parse(body.as_bytes(), &ctx()))?;
    }

    #[test]
    fn signature_check_never_panics(
        url in ".{0,80}",
        body in proptest::collection::vec(any::<u8>(), 0..300),
        signature in ".{0,40}",
        token in ".{0,40}",
    ) {
        let candidates = twilio::candidate_urls(&url);
        prop_assert_eq!(candidates.first(), Some(&url));
        prop_assert!(candidates.len() <= 2);
        // Forging HMAC-SHA1 by chance has probability 2^-160.
        prop_assert!(!twilio::verify_signature(&url, &body, &signature, &token));
        if let Some(sid) = twilio::account_sid(&body) {
            prop_assert!(!sid.is_empty());
        }
        prop_assert!(twilio::signed_url(&url, &signature).ends_with(&signature));
    }
}
