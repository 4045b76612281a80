//! The Zadarma adapter against the shared fixtures (`fixtures/ingest/zadarma`,
//! with the settings of its `ARGS`: `--tz Europe/Madrid --box 318722`):
//! every `expected.jsonl` case through one `check`, every `signatures.jsonl`
//! line through `verify_signature`, and proptests that no body, mutated or
//! arbitrary, makes the adapter, the signature check or `zd_echo` panic.

use std::path::PathBuf;
use std::sync::OnceLock;

use cdrate_ingest::zadarma::{self, Zadarma};
use cdrate_ingest::{Adapter, Outcome, ParseContext};
use chrono::{DateTime, FixedOffset};
use proptest::prelude::*;
use serde_json::Value;

/// The API secret, from the NOTES' settings table.
const SECRET: &str = "0740b2afced14c9ffd48";

/// Every code the Zadarma mapping may answer with (NOTES, "From a notification").
const MAPPING_CODES: &[&str] = &["malformed_payload", "missing_field"];

fn fixture_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/ingest/zadarma"
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
        timezone: Some(chrono_tz::Europe::Madrid),
        box_id: Some("318722"),
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
    let outcome = Zadarma.parse(&read_fixture(file), &ctx);
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
        let signature = header(line, "Signature").unwrap_or_default();
        let got = zadarma::verify_signature(&read_fixture(file), signature, SECRET);
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
            prop_assert!(r.id.starts_with("zadarma:"));
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
        Just("NOTIFY_END".to_owned()),
        Just("NOTIFY_OUT_END".to_owned()),
        Just("NOTIFY_START".to_owned()),
        Just(" No Answer ".to_owned()),
        Just("1".to_owned()),
        Just("18446744073709551615".to_owned()),
        Just("9223372036854775".to_owned()),
        Just("0000-01-01 00:00:00".to_owned()),
        Just("9999-12-31 23:59:59".to_owned()),
        Just("2026-03-29 02:30:00".to_owned()),
        Just("2026-10-25 02:30:00".to_owned()),
        "[0-9]{1,20}",
        ".{0,40}",
    ]
}

const READ_PARAMS: &[&str] = &[
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

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..600)) {
        assert_sound(&Zadarma.parse(&body, &ctx()))?;
    }

    #[test]
    fn mutated_fixtures_never_panic(
        file in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<usize>(), 0u8..3, any::<u8>()), 1..10),
    ) {
        let payloads = fixture_payloads();
        let body = mutate(file.get(payloads).clone(), &edits);
        assert_sound(&Zadarma.parse(&body, &ctx()))?;
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
        assert_sound(&Zadarma.parse(body.as_bytes(), &ctx()))?;
    }

    #[test]
    fn signature_check_never_panics(
        body in proptest::collection::vec(any::<u8>(), 0..300),
        signature in ".{0,60}",
        secret in ".{0,40}",
    ) {
        // Forging HMAC-SHA1 by chance has probability 2^-160.
        prop_assert!(!zadarma::verify_signature(&body, &signature, &secret));
        // A body with no signed string can only be rejected by the mapping.
        if zadarma::signed_string(&body).is_none() {
            prop_assert!(matches!(Zadarma.parse(&body, &ctx()), Outcome::Rejected(_)));
        }
    }

    #[test]
    fn echo_never_panics(query in ".{0,80}") {
        if let Some(echo) = zadarma::echo_response(&query) {
            prop_assert!(query.contains("zd_echo"));
            prop_assert!(echo.len() <= query.len());
        }
    }
}
