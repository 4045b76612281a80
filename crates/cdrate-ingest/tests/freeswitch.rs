//! The FreeSWITCH adapter from the outside: every case of the shared fixtures
//! (an independent oracle, never regenerated from our output) through one
//! `check`; arbitrary and mutated bytes, which must always give an outcome
//! with a known code and never a panic; and tables for the payload and value
//! decoders and the mapping rules of `fixtures/ingest/freeswitch/NOTES.md`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::OnceLock;

use base64::Engine as _;
use cdrate_core::{CallRecord, Direction, Disposition};
use cdrate_ingest::freeswitch::FreeSwitch;
use cdrate_ingest::{Adapter, ErrorKind, Outcome, ParseContext};
use chrono::{DateTime, Utc};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::Value;

fn fixture_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/ingest/freeswitch"
    ))
}

fn parse(payload: &[u8]) -> Outcome {
    let ctx = ParseContext {
        received_at: "2026-12-31T23:59:59Z".parse().expect("a valid instant"),
        timezone: None,
        box_id: None,
    };
    FreeSwitch.parse(payload, &ctx)
}

// ---------------------------------------------------------------------------
// The fixtures.

/// One line of `expected.jsonl`.
struct Case {
    file: String,
    want: Value,
}

fn cases() -> Vec<Case> {
    let path = fixture_dir().join("expected.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let want: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            let file = want["file"].as_str().expect("every case names its file").to_owned();
            Case { file, want }
        })
        .collect()
}

/// The payload files of the fixture folder, sorted by name.
fn payload_files() -> Vec<(String, Vec<u8>)> {
    let dir = fixture_dir();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "xml" || ext == "form"))
        .map(|path| {
            let name = path.file_name().expect("a file name").to_string_lossy().into_owned();
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (name, bytes)
        })
        .collect();
    files.sort();
    files
}

/// Every mismatch between one case and what the adapter makes of its file,
/// compared like `shared/tools/compare_ingest.py`: each field the case gives
/// must match, `*_at` as instants, `attrs` only the keys given, errors by code.
fn check(case: &Case) -> Vec<String> {
    let path = fixture_dir().join(&case.file);
    let payload = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) => return vec![format!("{}: {e}", case.file)],
    };
    let outcome = parse(&payload);
    let mut problems = Vec::new();
    let mut mismatch = |what: String| problems.push(format!("{}: {what}", case.file));
    match (&outcome, &case.want) {
        (Outcome::Record(got), want) if want.get("record").is_some() => {
            let got = serde_json::to_value(got).expect("a CallRecord serializes");
            let want = want["record"].as_object().expect("`record` is an object");
            for (key, want) in want {
                let got = got.get(key).unwrap_or(&Value::Null);
                let same = match key.as_str() {
                    "attrs" => want
                        .as_object()
                        .expect("`attrs` is an object")
                        .iter()
                        .all(|(k, v)| got.get(k) == Some(v)),
                    k if k.ends_with("_at") => instant(want) == instant(got),
                    _ => want == got,
                };
                if !same {
                    mismatch(format!("{key}: want {want} got {got}"));
                }
            }
        }
        (Outcome::Rejected(err), want) if want.get("error").is_some() => {
            if want["error"].as_str() != Some(err.code()) {
                mismatch(format!(
                    "want error {} got error {} ({})",
                    want["error"],
                    err.code(),
                    err.detail
                ));
            }
        }
        (Outcome::Ignored(reason), want) if want.get("ignored").is_some() => {
            if want["ignored"].as_str() != Some(reason) {
                mismatch(format!("want ignored {} got ignored {reason}", want["ignored"]));
            }
        }
        (got, want) => {
            let want = want
                .as_object()
                .map(|o| o.keys().cloned().collect::<Vec<_>>().join(","));
            mismatch(format!("want {want:?} got {}", describe(got)));
        }
    }
    problems
}

/// An instant from an RFC 3339 string, `None` for null; anything else stays
/// itself so that it can only equal the same text.
fn instant(v: &Value) -> Result<Option<DateTime<Utc>>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => s.parse::<DateTime<Utc>>().map(Some).map_err(|_| s.clone()),
        other => Err(other.to_string()),
    }
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Record(r) => format!("record {}", r.id),
        Outcome::Ignored(reason) => format!("ignored {reason}"),
        Outcome::Rejected(e) => format!("error {} ({})", e.code(), e.detail),
    }
}

#[test]
fn every_fixture_case_matches() {
    let cases = cases();
    let mut problems: Vec<String> = cases.iter().flat_map(check).collect();
    // Every payload in the folder has a case, so none goes unchecked.
    for (name, _) in payload_files() {
        if !cases.iter().any(|c| c.file == name) {
            problems.push(format!("{name}: payload without a case in expected.jsonl"));
        }
    }
    assert_eq!(
        cases.len(),
        16,
        "expected.jsonl changed size; update this count on purpose"
    );
    assert!(
        problems.is_empty(),
        "{} mismatches across {} fixture cases:\n  {}",
        problems.len(),
        cases.len(),
        problems.join("\n  ")
    );
}

// ---------------------------------------------------------------------------
// Never a panic: arbitrary and mutated bytes.

/// What any outcome must satisfy, whatever the input.
fn assert_sane(outcome: &Outcome) -> Result<(), TestCaseError> {
    match outcome {
        Outcome::Record(r) => {
            prop_assert!(r.id.len() > 3 && r.id.starts_with("fs:"), "{}", r.id);
            prop_assert!(!r.account_key.is_empty());
            prop_assert!(r.start_at <= r.end_at);
            prop_assert_eq!(r.answer_at.is_some(), r.billable_ms > 0);
            prop_assert_eq!(r.answer_at.is_some(), r.disposition == Disposition::Answered);
            if let Some(answer) = r.answer_at {
                prop_assert!(r.start_at <= answer && answer <= r.end_at);
            }
            prop_assert!(matches!(r.attrs.get("leg").map(String::as_str), Some("a" | "b")));
        }
        Outcome::Rejected(e) => prop_assert!(
            matches!(
                e.kind,
                ErrorKind::MalformedPayload | ErrorKind::MissingField | ErrorKind::BadTimestamp
            ),
            "unexpected code {}",
            e.code()
        ),
        Outcome::Ignored(reason) => prop_assert!(false, "FreeSWITCH payloads are never ignored ({reason})"),
    }
    Ok(())
}

/// The fixture payloads, read once.
fn fixtures() -> &'static [(String, Vec<u8>)] {
    static FIXTURES: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    FIXTURES.get_or_init(payload_files)
}

/// Pieces of markup and encoding that steer mutations into the parser's
/// corners.
const TOKENS: &[&str] = &[
    "<",
    ">",
    "</",
    "/>",
    "&",
    "&amp;",
    "&#x0;",
    "&#xE4;",
    "&#99999999999;",
    "&nbsp;",
    "<!--",
    "-->",
    "<![CDATA[",
    "]]>",
    "<?pi x?>",
    "<?xml version=\"1.0\"?>",
    "<!DOCTYPE cdr>",
    "%",
    "%2",
    "%zz",
    "%3C",
    "+",
    "=",
    "\"",
    "'",
    "\r",
    "\u{1}",
    "\u{FFFE}",
    "ä",
    "<cdr>",
    "</cdr>",
    "<variables>",
    "</variables>",
    "<callflow>",
    "</callflow>",
    "<caller_profile>",
    "</caller_profile>",
    "<originator/>",
    "<uuid>",
    "</uuid>",
    "<start_uepoch>",
    "</start_uepoch>",
    "0",
    "18446744073709551616",
    "<1234>",
    "<a b>",
    "<a b='1' b='2'/>",
];

fn token_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 1..8),
        prop::sample::select(TOKENS).prop_map(|t| t.as_bytes().to_vec()),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: Index, bits: u8 },
    Truncate { at: Index },
    Insert { at: Index, bytes: Vec<u8> },
    Delete { at: Index, len: usize },
    Duplicate { from: Index, len: usize, to: Index },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 1..=255u8).prop_map(|(at, bits)| Mutation::Flip { at, bits }),
        any::<Index>().prop_map(|at| Mutation::Truncate { at }),
        (any::<Index>(), token_bytes()).prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<Index>(), 1..64usize).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<Index>(), 1..512usize, any::<Index>()).prop_map(|(from, len, to)| Mutation::Duplicate { from, len, to }),
    ]
}

fn apply(payload: &mut Vec<u8>, mutation: &Mutation) {
    if payload.is_empty() {
        return;
    }
    match mutation {
        Mutation::Flip { at, bits } => {
            let i = at.index(payload.len());
            payload[i] ^= bits;
        }
        Mutation::Truncate { at } => payload.truncate(at.index(payload.len())),
        Mutation::Insert { at, bytes } => {
            let i = at.index(payload.len() + 1);
            payload.splice(i..i, bytes.iter().copied());
        }
        Mutation::Delete { at, len } => {
            let i = at.index(payload.len());
            payload.drain(i..(i + len).min(payload.len()));
        }
        Mutation::Duplicate { from, len, to } => {
            let start = from.index(payload.len());
            let chunk = payload[start..(start + len).min(payload.len())].to_vec();
            let i = to.index(payload.len() + 1);
            payload.splice(i..i, chunk);
        }
    }
}

/// How a (mutated) document is wrapped before it is parsed, so mutations
/// reach the XML reader through every payload encoding.
#[derive(Debug, Clone, Copy)]
enum Wrap {
    Raw,
    FormPlain,
    FormPercent,
    FormBase64,
    FilePercent,
    FileBase64,
}

fn wrap(doc: &[u8], how: Wrap) -> Vec<u8> {
    let b64 = || base64::engine::general_purpose::STANDARD.encode(doc).into_bytes();
    match how {
        Wrap::Raw => doc.to_vec(),
        Wrap::FormPlain => [b"cdr=".as_slice(), doc].concat(),
        Wrap::FormPercent => [b"cdr=".to_vec(), url_encode(doc, true).into_bytes()].concat(),
        Wrap::FormBase64 => [b"cdr=".to_vec(), b64()].concat(),
        Wrap::FilePercent => url_encode(doc, true).into_bytes(),
        Wrap::FileBase64 => b64(),
    }
}

fn any_wrap() -> impl Strategy<Value = Wrap> {
    prop::sample::select(vec![
        Wrap::Raw,
        Wrap::FormPlain,
        Wrap::FormPercent,
        Wrap::FormBase64,
        Wrap::FilePercent,
        Wrap::FileBase64,
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_give_an_outcome(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        assert_sane(&parse(&bytes))?;
    }

    #[test]
    fn arbitrary_bytes_after_each_payload_kind_give_an_outcome(
        prefix in prop::sample::select(&["<", "cdr=", "cdr=<", "cdr=%", "%", "<cdr>", "<cdr><variables><uuid>"][..]),
        bytes in prop::collection::vec(any::<u8>(), 0..1024),
    ) {
        assert_sane(&parse(&[prefix.as_bytes(), &bytes].concat()))?;
    }

    #[test]
    fn token_soup_gives_an_outcome(
        tokens in prop::collection::vec(prop::sample::select(TOKENS), 0..64),
        how in any_wrap(),
    ) {
        let doc = format!("<cdr>{}</cdr>", tokens.concat());
        assert_sane(&parse(&wrap(doc.as_bytes(), how)))?;
    }

    #[test]
    fn mutated_fixture_payloads_give_an_outcome(
        which in any::<Index>(),
        mutations in prop::collection::vec(mutation(), 1..5),
    ) {
        let (_, original) = which.get(fixtures());
        let mut payload = original.clone();
        for m in &mutations {
            apply(&mut payload, m);
        }
        assert_sane(&parse(&payload))?;
    }

    #[test]
    fn mutated_documents_in_every_encoding_give_an_outcome(
        which in any::<Index>(),
        mutations in prop::collection::vec(mutation(), 1..5),
        how in any_wrap(),
    ) {
        let documents: Vec<_> = fixtures().iter().filter(|(_, bytes)| bytes.starts_with(b"<")).collect();
        let (_, original) = which.get(&documents);
        let mut doc = original.clone();
        for m in &mutations {
            apply(&mut doc, m);
        }
        assert_sane(&parse(&wrap(&doc, how)))?;
    }
}

// ---------------------------------------------------------------------------
// Decoders and mapping rules, case by case, on a minimal document.

/// The variables of a plain answered outbound leg; tables change a few.
const BASE: &[(&str, &str)] = &[
    ("uuid", "u-1"),
    ("accountcode", "acme"),
    ("start_uepoch", "1700000000000000"),
    ("answer_uepoch", "1700000002000000"),
    ("end_uepoch", "1700000062500000"),
    ("hangup_cause", "NORMAL_CLEARING"),
];

/// [`BASE`] with `changes` applied: a `None` value removes the variable.
fn vars<'a>(changes: &[(&'a str, Option<&'a str>)]) -> Vec<(&'a str, &'a str)> {
    let mut out: Vec<(&str, &str)> = BASE.to_vec();
    for &(name, value) in changes {
        out.retain(|(n, _)| *n != name);
        if let Some(value) = value {
            out.push((name, value));
        }
    }
    out
}

/// A document; each variable value and callflow is inserted verbatim.
fn cdr(vars: &[(&str, &str)], callflows: &[String]) -> String {
    let mut doc =
        String::from("<?xml version=\"1.0\"?>\n<cdr core-uuid=\"core-1\" switchname=\"fs-1\">\n  <variables>\n");
    for (name, value) in vars {
        writeln!(doc, "    <{name}>{value}</{name}>").expect("writing to a String");
    }
    doc.push_str("  </variables>\n");
    for callflow in callflows {
        doc.push_str(callflow);
    }
    doc.push_str("</cdr>\n");
    doc
}

/// A `<callflow>` whose `<caller_profile>` has `fields` and then `extra`.
fn callflow(fields: &[(&str, &str)], extra: &str) -> String {
    let mut out = String::from("  <callflow>\n    <caller_profile>\n");
    for (name, value) in fields {
        writeln!(out, "      <{name}>{value}</{name}>").expect("writing to a String");
    }
    write!(out, "      {extra}\n    </caller_profile>\n  </callflow>\n").expect("writing to a String");
    out
}

/// `mod_xml_cdr`'s `encode=true`: the listed bytes become `%XX`.
fn url_encode(bytes: &[u8], upper: bool) -> String {
    let mut out = String::new();
    for &b in bytes {
        if !(0x20..=0x7E).contains(&b) || b" #%&+:;<=>?@[\\]^`{|}\"".contains(&b) {
            if upper {
                write!(out, "%{b:02X}")
            } else {
                write!(out, "%{b:02x}")
            }
            .expect("writing to a String");
        } else {
            out.push(char::from(b));
        }
    }
    out
}

fn record(payload: impl AsRef<[u8]>) -> CallRecord {
    match parse(payload.as_ref()) {
        Outcome::Record(r) => *r,
        other => panic!("expected a record, got {}", describe(&other)),
    }
}

/// `"record"` or the error code.
fn outcome_code(payload: impl AsRef<[u8]>) -> String {
    match parse(payload.as_ref()) {
        Outcome::Record(_) => "record".to_owned(),
        other @ Outcome::Ignored(_) => describe(&other),
        Outcome::Rejected(e) => e.code().to_owned(),
    }
}

#[test]
fn variable_values_are_percent_decoded_once_after_references() {
    let table = [
        ("acme", "acme"),
        ("a%", "a%"),
        ("%zz", "%zz"),
        ("%4", "%4"),
        ("%2b", "+"),
        ("%2B", "+"),
        ("a+b", "a+b"),
        ("%2540", "%40"),
        ("B%C3%A4cker", "Bäcker"),
        ("B%c3%a4cker", "Bäcker"),
        ("cut%C3", "cut\u{FFFD}"),
        ("%FF%FE", "\u{FFFD}\u{FFFD}"),
        ("A &amp; B", "A & B"),
        ("Gr&#xFC;n", "Grün"),
        ("&#x25;41", "A"),
        ("<![CDATA[x%41&y]]>", "xA&y"),
        ("a<!-- note -->b", "ab"),
        ("  spaced  ", "  spaced  "),
    ];
    for (raw, want) in table {
        let got = record(cdr(&vars(&[("accountcode", Some(raw))]), &[])).account_key;
        assert_eq!(got, want, "accountcode {raw:?}");
    }
}

#[test]
fn every_payload_encoding_gives_the_same_record() {
    let doc = cdr(&vars(&[("accountcode", Some("A%20%26%20B"))]), &[]);
    let want = record(&doc);
    assert_eq!(want.account_key, "A & B");
    let b64 = base64::engine::general_purpose::STANDARD.encode(&doc);
    let wrapped: String = b64
        .as_bytes()
        .chunks(76)
        .map(|line| format!("{}\r\n ", String::from_utf8_lossy(line)))
        .collect();
    let table = [
        ("raw", doc.clone()),
        ("raw with surrounding whitespace", format!("\r\n\t {doc} \n")),
        ("cdr= plaintext", format!("cdr={doc}")),
        (
            "cdr= percent upper",
            format!("cdr={}", url_encode(doc.as_bytes(), true)),
        ),
        (
            "cdr= percent lower",
            format!("cdr={}", url_encode(doc.as_bytes(), false)),
        ),
        (
            "cdr= percent, more fields",
            format!("cdr={}&uuid=a_u-1&x=%3C", url_encode(doc.as_bytes(), true)),
        ),
        ("cdr= base64", format!("cdr={b64}")),
        ("cdr= base64 with whitespace", format!("cdr={wrapped}")),
        ("err-log-dir percent", url_encode(doc.as_bytes(), true)),
        ("err-log-dir base64", b64.clone()),
        ("err-log-dir base64 with whitespace", wrapped.clone()),
    ];
    for (name, payload) in table {
        assert_eq!(record(&payload), want, "{name}");
    }
}

#[test]
fn percent_encoded_form_bodies_decode_like_a_form() {
    // The accountcode goes into the body as written here, the rest of the
    // document percent-encoded: two decodings apply, the form's then the
    // variable's.
    let doc = cdr(&vars(&[("accountcode", Some("@@"))]), &[]);
    let (before, after) = doc.split_once("@@").expect("the placeholder is there");
    let table = [
        ("a+b", "a b"),
        ("a%2bb", "a+b"),
        ("a%2Bb", "a+b"),
        ("x%zz", "x%zz"),
        ("x%", "x%"),
        ("x%2", "x%2"),
        ("%2525", "%"),
    ];
    for (piece, want) in table {
        let body = format!(
            "cdr={}{piece}{}",
            url_encode(before.as_bytes(), true),
            url_encode(after.as_bytes(), true)
        );
        assert_eq!(record(&body).account_key, want, "{piece:?}");
    }
    // A `%` that ends the body is kept, and is then text after the root.
    let body = format!("cdr={}%", url_encode(doc.as_bytes(), true));
    assert_eq!(outcome_code(body), "malformed_payload");
}

#[test]
fn plaintext_form_bodies_keep_their_ampersands() {
    let doc = cdr(&vars(&[("accountcode", Some("A &amp; B+C"))]), &[]);
    assert_eq!(record(format!("cdr={doc}")).account_key, "A & B+C");
}

#[test]
fn rejections_carry_their_code() {
    let doc = |changes: &[(&str, Option<&str>)]| cdr(&vars(changes), &[]);
    let table: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", b"".to_vec(), "malformed_payload"),
        ("only whitespace", b" \r\n\t".to_vec(), "malformed_payload"),
        ("not UTF-8", b"<cdr>\xff</cdr>".to_vec(), "malformed_payload"),
        ("bad base64", b"cdr=***".to_vec(), "malformed_payload"),
        ("base64 of non-UTF-8", b"cdr=/w==".to_vec(), "malformed_payload"),
        (
            "percent-decoded non-UTF-8",
            b"%3Ccdr%3E%FF%3C/cdr%3E".to_vec(),
            "malformed_payload",
        ),
        ("unclosed root", b"<cdr><variables>".to_vec(), "malformed_payload"),
        ("other root", b"<xml_cdr/>".to_vec(), "malformed_payload"),
        ("two roots", b"<cdr/><cdr/>".to_vec(), "malformed_payload"),
        ("text after the root", b"<cdr/>x".to_vec(), "malformed_payload"),
        ("doctype", b"<!DOCTYPE cdr><cdr/>".to_vec(), "malformed_payload"),
        (
            "doctype with an entity",
            b"<!DOCTYPE cdr [<!ENTITY a \"b\">]><cdr>&a;</cdr>".to_vec(),
            "malformed_payload",
        ),
        (
            "unknown entity",
            doc(&[("accountcode", Some("&nbsp;"))]).into_bytes(),
            "malformed_payload",
        ),
        (
            "illegal char reference",
            doc(&[("accountcode", Some("&#x1;"))]).into_bytes(),
            "malformed_payload",
        ),
        (
            "control character",
            doc(&[("accountcode", Some("a\u{1}"))]).into_bytes(),
            "malformed_payload",
        ),
        (
            "digit element name",
            doc(&[("1234", Some("x"))]).into_bytes(),
            "malformed_payload",
        ),
        (
            "name with a space",
            b"<cdr><variables><set api_hangup_hook>x</set api_hangup_hook></variables></cdr>".to_vec(),
            "malformed_payload",
        ),
        (
            "duplicate attribute",
            b"<cdr a='1' a='2'/>".to_vec(),
            "malformed_payload",
        ),
        (
            "mismatched end tag",
            b"<cdr><a></b></cdr>".to_vec(),
            "malformed_payload",
        ),
        (
            "declaration later",
            b"<cdr><?xml version=\"1.0\"?></cdr>".to_vec(),
            "malformed_payload",
        ),
        (
            "latin-1 declaration",
            b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><cdr/>".to_vec(),
            "malformed_payload",
        ),
        ("empty cdr", b"<cdr/>".to_vec(), "missing_field"),
        ("no uuid", doc(&[("uuid", None)]).into_bytes(), "missing_field"),
        ("empty uuid", doc(&[("uuid", Some(""))]).into_bytes(), "missing_field"),
        (
            "no account",
            doc(&[("accountcode", None)]).into_bytes(),
            "missing_field",
        ),
        ("no start", doc(&[("start_uepoch", None)]).into_bytes(), "missing_field"),
        ("no end", doc(&[("end_uepoch", None)]).into_bytes(), "missing_field"),
        (
            "no uuid beats a bad start",
            doc(&[("uuid", None), ("start_uepoch", Some("x"))]).into_bytes(),
            "missing_field",
        ),
        (
            "date as start",
            doc(&[("start_uepoch", Some("2026-03-18%2009%3A22%3A05"))]).into_bytes(),
            "bad_timestamp",
        ),
        (
            "signed start",
            doc(&[("start_uepoch", Some("+1700000000000000"))]).into_bytes(),
            "bad_timestamp",
        ),
        (
            "start with a space",
            doc(&[("start_uepoch", Some("1700000000000000 "))]).into_bytes(),
            "bad_timestamp",
        ),
        (
            "start beyond u64",
            doc(&[("start_uepoch", Some("18446744073709551616"))]).into_bytes(),
            "bad_timestamp",
        ),
        (
            "start beyond chrono",
            doc(&[("start_uepoch", Some("18446744073709551615"))]).into_bytes(),
            "bad_timestamp",
        ),
        (
            "start_epoch overflows in µs",
            doc(&[("start_uepoch", None), ("start_epoch", Some("18446744073710"))]).into_bytes(),
            "bad_timestamp",
        ),
        (
            "start 0",
            doc(&[("start_uepoch", Some("0"))]).into_bytes(),
            "bad_timestamp",
        ),
        (
            "end before start",
            doc(&[("end_uepoch", Some("1699999999999999"))]).into_bytes(),
            "bad_timestamp",
        ),
        (
            "answer after end",
            doc(&[("answer_uepoch", Some("1700000062500001"))]).into_bytes(),
            "bad_timestamp",
        ),
        (
            "answer before start",
            doc(&[("answer_uepoch", Some("1"))]).into_bytes(),
            "bad_timestamp",
        ),
        (
            "bad answer",
            doc(&[("answer_uepoch", Some("soon"))]).into_bytes(),
            "bad_timestamp",
        ),
        (
            "bad billmsec",
            doc(&[("billmsec", Some("1.5"))]).into_bytes(),
            "bad_timestamp",
        ),
        (
            "bad billsec",
            doc(&[("billsec", Some("-3"))]).into_bytes(),
            "bad_timestamp",
        ),
        // Values that are never read cannot be wrong.
        (
            "bad billmsec, unanswered",
            doc(&[("answer_uepoch", Some("0")), ("billmsec", Some("x"))]).into_bytes(),
            "record",
        ),
        (
            "bad start_epoch beside start_uepoch",
            doc(&[("start_epoch", Some("x"))]).into_bytes(),
            "record",
        ),
    ];
    let mut problems = Vec::new();
    for (name, payload, want) in &table {
        let got = outcome_code(payload);
        if got != *want {
            problems.push(format!("{name}: want {want} got {got}"));
        }
    }
    assert!(problems.is_empty(), "\n  {}", problems.join("\n  "));
}

#[test]
fn times_keep_microseconds_and_whole_millisecond_differences() {
    let r = record(cdr(
        &vars(&[
            ("start_uepoch", Some("1700000000999600")),
            ("answer_uepoch", Some("1700000000999900")),
            ("end_uepoch", Some("1700000001000400")),
        ]),
        &[],
    ));
    assert_eq!(r.start_at.to_rfc3339(), "2023-11-14T22:13:20.999600+00:00");
    assert_eq!(
        r.answer_at.map(|a| a.to_rfc3339()).as_deref(),
        Some("2023-11-14T22:13:20.999900+00:00")
    );
    assert_eq!(r.end_at.to_rfc3339(), "2023-11-14T22:13:21.000400+00:00");
    // ⌊end/1000⌋ − ⌊start/1000⌋, not ⌊(end − start)/1000⌋ = 0.
    assert_eq!(r.duration_ms, 1);
    // No billmsec or billsec: ⌊end/1000⌋ − ⌊answer/1000⌋, so 500 µs bill 1 ms.
    assert_eq!((r.billable_ms, r.disposition), (1, Disposition::Answered));

    let epochs = record(cdr(
        &vars(&[
            ("start_uepoch", None),
            ("answer_uepoch", None),
            ("end_uepoch", Some("")),
            ("start_epoch", Some("1700000000")),
            ("answer_epoch", Some("1700000002")),
            ("end_epoch", Some("1700000060")),
            ("billsec", Some("58")),
        ]),
        &[],
    ));
    assert_eq!((epochs.duration_ms, epochs.billable_ms), (60_000, 58_000));

    let from_billmsec = record(cdr(&vars(&[("billmsec", Some("400")), ("billsec", Some("x"))]), &[]));
    assert_eq!(from_billmsec.billable_ms, 400);
    assert_eq!(from_billmsec.disposition, Disposition::Answered);

    // Answered for no billable millisecond is not answered.
    let zero = record(cdr(
        &vars(&[("billmsec", Some("0")), ("hangup_cause", Some("NO_ANSWER"))]),
        &[],
    ));
    assert_eq!(
        (zero.answer_at, zero.billable_ms, zero.disposition),
        (None, 0, Disposition::NoAnswer)
    );
}

#[test]
fn disposition_follows_the_hangup_cause_of_unanswered_legs() {
    let table = [
        (Some("USER_BUSY"), Disposition::Busy),
        (Some("NO_ANSWER"), Disposition::NoAnswer),
        (Some("NO_USER_RESPONSE"), Disposition::NoAnswer),
        (Some("ORIGINATOR_CANCEL"), Disposition::Cancelled),
        (Some("LOSE_RACE"), Disposition::Cancelled),
        (Some("PICKED_OFF"), Disposition::Cancelled),
        (Some("NORMAL_CLEARING"), Disposition::Failed),
        (Some("CALL_REJECTED"), Disposition::Failed),
        (Some("user_busy"), Disposition::Failed),
        (None, Disposition::Failed),
    ];
    for (cause, want) in table {
        let r = record(cdr(
            &vars(&[("answer_uepoch", Some("0")), ("hangup_cause", cause)]),
            &[],
        ));
        assert_eq!(r.disposition, want, "{cause:?}");
        assert_eq!(r.hangup_cause.as_deref(), cause);
    }
    let answered = record(cdr(&vars(&[("hangup_cause", Some("USER_BUSY"))]), &[]));
    assert_eq!(answered.disposition, Disposition::Answered);
}

#[test]
fn trunk_and_direction() {
    let bridge = ("last_app", Some("bridge"));
    let public = callflow(&[("context", "public")], "");
    /// Name, variable changes, callflows, then the trunk and direction wanted.
    type Row<'a> = (
        &'a str,
        Vec<(&'a str, Option<&'a str>)>,
        Vec<String>,
        Option<&'a str>,
        Direction,
    );
    let table: Vec<Row> = vec![
        ("nothing", vec![], vec![], None, Direction::Internal),
        (
            "gateway name",
            vec![("sip_gateway_name", Some("gw-a"))],
            vec![],
            Some("gw-a"),
            Direction::Outbound,
        ),
        (
            "gateway name beats the bridge",
            vec![
                ("sip_gateway_name", Some("gw-a")),
                bridge,
                ("last_arg", Some("sofia/gateway/gw-b/1")),
            ],
            vec![],
            Some("gw-a"),
            Direction::Outbound,
        ),
        (
            "bridge to a gateway",
            vec![bridge, ("last_arg", Some("%7Bx%3D1%7Dsofia/gateway/gw-b/0201"))],
            vec![],
            Some("gw-b"),
            Direction::Outbound,
        ),
        (
            "bridge to a user",
            vec![bridge, ("last_arg", Some("user/1001"))],
            vec![],
            None,
            Direction::Internal,
        ),
        (
            "not a bridge",
            vec![("last_app", Some("Bridge")), ("last_arg", Some("sofia/gateway/gw-b/1"))],
            vec![],
            None,
            Direction::Internal,
        ),
        (
            "empty gateway in the bridge: arrival gateway",
            vec![
                bridge,
                ("last_arg", Some("sofia/gateway//1")),
                ("sip_gateway", Some("carrier")),
            ],
            vec![],
            Some("carrier"),
            Direction::Inbound,
        ),
        (
            "arrival gateway",
            vec![("sip_gateway", Some("carrier"))],
            vec![],
            Some("carrier"),
            Direction::Inbound,
        ),
        ("public context", vec![], vec![public.clone()], None, Direction::Inbound),
        (
            "public context only counts on the last callflow",
            vec![],
            vec![public.clone(), callflow(&[("context", "default")], "")],
            None,
            Direction::Internal,
        ),
        (
            "call_direction wins",
            vec![
                ("call_direction", Some("%20OutBound%0A")),
                ("sip_gateway", Some("carrier")),
            ],
            vec![],
            Some("carrier"),
            Direction::Outbound,
        ),
        (
            "local",
            vec![("call_direction", Some("LOCAL"))],
            vec![public.clone()],
            None,
            Direction::Internal,
        ),
        (
            "internal",
            vec![("call_direction", Some("internal"))],
            vec![],
            None,
            Direction::Internal,
        ),
        (
            "inbound",
            vec![("call_direction", Some("inbound"))],
            vec![],
            None,
            Direction::Inbound,
        ),
        (
            "unknown call_direction is derived",
            vec![("call_direction", Some("sideways"))],
            vec![public],
            None,
            Direction::Inbound,
        ),
    ];
    for (name, changes, callflows, trunk, direction) in table {
        let r = record(cdr(&vars(&changes), &callflows));
        assert_eq!((r.trunk.as_deref(), r.direction), (trunk, direction), "{name}");
    }
}

#[test]
fn caller_callee_and_leg_come_from_the_right_callflow() {
    let profile_vars = vars(&[
        ("caller_id_number", Some("var-caller")),
        ("sip_from_user", Some("from-user")),
        ("destination_number", Some("var-callee")),
        ("sip_req_user", Some("req-user")),
        ("originating_leg_uuid", Some("a-leg")),
        ("domain_name", Some("pbx.example.net")),
    ]);
    let current = callflow(
        &[
            ("caller_id_number", "1002"),
            ("destination_number", "1002"),
            ("uuid", "u-1"),
        ],
        concat!(
            "<originatee><originatee_caller_profile><caller_id_number>x</caller_id_number>",
            "</originatee_caller_profile></originatee>"
        ),
    );
    let original = callflow(
        &[
            ("caller_id_number", "+447700900461"),
            ("destination_number", "442079460155"),
        ],
        "",
    );
    let r = record(cdr(&profile_vars, &[current, original]));
    assert_eq!(
        (r.caller.as_str(), r.callee.as_str()),
        ("+447700900461", "442079460155")
    );
    assert_eq!(r.attrs.get("leg").map(String::as_str), Some("a"));
    assert_eq!(r.attrs.get("originating_leg_uuid").map(String::as_str), Some("a-leg"));
    assert_eq!(r.attrs.get("switchname").map(String::as_str), Some("fs-1"));
    assert_eq!(r.attrs.get("core_uuid").map(String::as_str), Some("core-1"));

    // Profile fields are not percent-decoded; empty ones fall back to the
    // variables, and the variables to sip_from_user / sip_req_user.
    let raw = callflow(&[("caller_id_number", "%2B44"), ("destination_number", "")], "");
    let r = record(cdr(&profile_vars, &[raw]));
    assert_eq!((r.caller.as_str(), r.callee.as_str()), ("%2B44", "var-callee"));
    let r = record(cdr(
        &vars(&[("sip_from_user", Some("f")), ("sip_req_user", Some("q"))]),
        &[],
    ));
    assert_eq!((r.caller.as_str(), r.callee.as_str()), ("f", "q"));
    let r = record(cdr(&vars(&[]), &[]));
    assert_eq!((r.caller.as_str(), r.callee.as_str()), ("", ""));

    // A b-leg: <originator> in the first callflow's own caller_profile.
    let b_leg = callflow(&[], "<originator><originator_caller_profile/></originator>");
    let r = record(cdr(&vars(&[]), &[b_leg.clone(), callflow(&[], "")]));
    assert_eq!(r.attrs.get("leg").map(String::as_str), Some("b"));
    let r = record(cdr(&vars(&[]), &[callflow(&[], ""), b_leg]));
    assert_eq!(r.attrs.get("leg").map(String::as_str), Some("a"));

    // The uuid of the first callflow stands in for a missing variable.
    let r = record(cdr(
        &vars(&[("uuid", None)]),
        &[
            callflow(&[("uuid", "from-profile")], ""),
            callflow(&[("uuid", "older")], ""),
        ],
    ));
    assert_eq!(r.id, "fs:from-profile");
}

#[test]
fn first_occurrence_wins_and_namespaced_names_are_plain() {
    let mut v = vars(&[]);
    v.insert(0, ("nolocal:operator", "x"));
    v.push(("accountcode", "second"));
    v.push(("uuid", "u-2"));
    let r = record(cdr(&v, &[]));
    assert_eq!((r.id.as_str(), r.account_key.as_str()), ("fs:u-1", "acme"));
    // Only the first <variables> counts.
    let doc = cdr(&vars(&[]), &[]).replace(
        "</variables>\n",
        "</variables>\n<variables><accountcode>other</accountcode></variables>\n",
    );
    assert_eq!(record(doc).account_key, "acme");
    // A variable nested deeper is not a variable.
    let doc = cdr(&vars(&[("accountcode", None)]), &[]).replace(
        "<variables>\n",
        "<variables>\n<wrapper><accountcode>nested</accountcode></wrapper>\n<domain_name>d</domain_name>\n",
    );
    assert_eq!(record(doc).account_key, "d");
}
