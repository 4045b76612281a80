//! The Fritz!Box CallMonitor against the shared fixtures (every case of
//! `fritzbox/expected.jsonl`, one monitor per transcript, checked by one
//! `check` that gathers all mismatches), the DST edges, snapshot/restore,
//! resent lines after a reconnect, dropped calls, and never panicking on
//! arbitrary or mutated lines.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cdrate_core::{CallRecord, Direction, Disposition, Source};
use cdrate_ingest::fritzbox::{
    CallMonitor, DropReason, DroppedCall, MonitorState, MAX_OPEN_CALLS, MAX_OPEN_CALL_HOURS, ORPHAN_EVENT,
};
use cdrate_ingest::Outcome;
use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Value};

/// The settings the fixture cases assume (`fritzbox/ARGS`).
const BOX_ID: &str = "office";
const TZ: Tz = chrono_tz::Europe::Berlin;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/ingest/fritzbox")
}

fn received_at() -> DateTime<Utc> {
    instant("2026-12-01T00:00:00Z")
}

fn instant(text: &str) -> DateTime<Utc> {
    text.parse().expect("test instants are valid RFC 3339")
}

/// Each `.log` transcript by file name, in name order, split into lines.
fn transcripts() -> Vec<(String, Vec<String>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("the fritzbox fixtures folder exists")
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path.file_name().expect("a file name").to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).expect("a readable transcript");
            (name, text.lines().map(str::to_owned).collect())
        })
        .collect()
}

fn transcript(name: &str) -> Vec<String> {
    transcripts()
        .into_iter()
        .find(|(file, _)| file == name)
        .map(|(_, lines)| lines)
        .expect("the transcript exists")
}

fn feed_all<S: AsRef<str>>(monitor: &mut CallMonitor, lines: &[S]) -> Vec<Outcome> {
    lines
        .iter()
        .filter_map(|line| monitor.feed(line.as_ref(), received_at()))
        .collect()
}

/// One fresh monitor fed the whole stream, as `cdrate ingest parse` does.
fn run<S: AsRef<str>>(lines: &[S]) -> Vec<Outcome> {
    feed_all(&mut CallMonitor::new(BOX_ID, TZ), lines)
}

fn records(outcomes: &[Outcome]) -> Vec<CallRecord> {
    outcomes
        .iter()
        .filter_map(|outcome| match outcome {
            Outcome::Record(record) => Some((**record).clone()),
            _ => None,
        })
        .collect()
}

/// An outcome in the shape of `expected.jsonl` (and of `ingest parse`).
fn to_json(outcome: &Outcome) -> Value {
    match outcome {
        Outcome::Record(record) => json!({ "record": record }),
        Outcome::Ignored(reason) => json!({ "ignored": reason }),
        Outcome::Rejected(err) => json!({ "error": err.code() }),
    }
}

#[test]
fn fixture_settings_are_the_ones_these_tests_assume() {
    let args = std::fs::read_to_string(fixtures().join("ARGS")).expect("fritzbox/ARGS exists");
    assert_eq!(args.trim(), "--tz Europe/Berlin --box office");
}

#[test]
fn every_expected_case() {
    let text = std::fs::read_to_string(fixtures().join("expected.jsonl")).expect("expected.jsonl exists");
    let mut expected: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).expect("expected.jsonl holds JSON lines");
        let file = case["file"].as_str().expect("every case names its file").to_owned();
        expected.entry(file).or_default().push(case);
    }
    let mut mismatches = Vec::new();
    let mut checked = 0;
    for (file, lines) in transcripts() {
        let wants = expected.remove(&file).unwrap_or_default();
        // The box sends CR LF; the transcripts are stored with LF.
        let with_cr: Vec<String> = lines.iter().map(|l| format!("{l}\r")).collect();
        for (framing, stream) in [("LF", &lines), ("CR LF", &with_cr)] {
            let gots: Vec<Value> = run(stream).iter().map(to_json).collect();
            checked += check(&format!("{file} ({framing})"), &wants, &gots, &mut mismatches);
        }
    }
    for (file, _) in expected {
        mismatches.push(format!("{file}: has expectations but no transcript"));
    }
    let cases = text.lines().filter(|l| !l.trim().is_empty()).count();
    assert_eq!(checked, 2 * cases, "every case is checked under both framings");
    assert!(
        mismatches.is_empty(),
        "{} mismatch(es):\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// Compares one transcript's outcomes with its expectations the way
/// `shared/tools/compare_ingest.py` does (given fields must match, `*_at` as
/// instants, `attrs` by the keys given, errors by code), plus the ignored
/// reason; returns how many expectations it checked.
fn check(case: &str, wants: &[Value], gots: &[Value], mismatches: &mut Vec<String>) -> usize {
    for (n, want) in wants.iter().enumerate() {
        let at = format!("{case}#{}", n + 1);
        let Some(got) = gots.get(n) else {
            mismatches.push(format!("{at}: missing, want {want}"));
            continue;
        };
        if let Some(want_record) = want.get("record").and_then(Value::as_object) {
            let Some(got_record) = got.get("record") else {
                mismatches.push(format!("{at}: want a record, got {got}"));
                continue;
            };
            for (key, want_value) in want_record {
                let got_value = got_record.get(key).unwrap_or(&Value::Null);
                if !same(key, want_value, got_value) {
                    mismatches.push(format!("{at}: {key}: want {want_value}, got {got_value}"));
                }
            }
        } else if let Some(code) = want.get("error") {
            let code = code.get("code").unwrap_or(code);
            if got.get("error") != Some(code) {
                mismatches.push(format!("{at}: want error {code}, got {got}"));
            }
        } else if let Some(reason) = want.get("ignored") {
            if got.get("ignored") != Some(reason) {
                mismatches.push(format!("{at}: want ignored {reason}, got {got}"));
            }
        } else {
            mismatches.push(format!("{at}: expectation has no record, error or ignored: {want}"));
        }
    }
    if gots.len() > wants.len() {
        let extra: Vec<String> = gots.iter().skip(wants.len()).map(Value::to_string).collect();
        mismatches.push(format!("{case}: unexpected extra outcome(s): {}", extra.join(", ")));
    }
    wants.len()
}

fn same(key: &str, want: &Value, got: &Value) -> bool {
    if key == "attrs" {
        return want.as_object().is_some_and(|keys| {
            keys.iter()
                .all(|(k, v)| scalar_text(got.get(k)) == scalar_text(Some(v)))
        });
    }
    if key.ends_with("_at") {
        let as_instant = |v: &Value| v.as_str().and_then(|s| s.parse::<DateTime<Utc>>().ok());
        return match (want, got) {
            (Value::Null, Value::Null) => true,
            _ => as_instant(want).is_some() && as_instant(want) == as_instant(got),
        };
    }
    want == got || (!want.is_null() && !got.is_null() && scalar_text(Some(want)) == scalar_text(Some(got)))
}

/// A JSON scalar as Python's `str()` would print it (`1` and `"1"` agree).
fn scalar_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The one record of `lines`, or a panic naming what came instead.
fn only_record(lines: &[&str]) -> CallRecord {
    let outcomes = run(lines);
    match outcomes.as_slice() {
        [Outcome::Record(record)] => (**record).clone(),
        other => panic!("want exactly one record, got {other:?}"),
    }
}

#[test]
fn dst_spring_gap_is_read_with_the_offset_before_the_change() {
    // 2026-03-29: 02:00 CET jumps to 03:00 CEST. A call across the change
    // lasts 15 minutes, not 1 h 15 min.
    let record = only_record(&[
        "29.03.26 01:50:00;CALL;0;10;03023125100;04066969310;SIP0;",
        "29.03.26 01:50:05;CONNECT;0;10;04066969310;",
        "29.03.26 03:05:00;DISCONNECT;0;895;",
    ]);
    assert_eq!(record.id, "fritz:office:0:1774745400");
    assert_eq!(record.start_at, instant("2026-03-29T00:50:00Z"));
    assert_eq!(record.answer_at, Some(instant("2026-03-29T00:50:05Z")));
    assert_eq!(record.end_at, instant("2026-03-29T01:05:00Z"));
    assert_eq!((record.duration_ms, record.billable_ms), (900_000, 895_000));

    // A time inside the skipped hour (a box clock that did not jump) is read
    // at +01:00: 02:30 is 01:30Z, a minute before 03:31 CEST.
    let record = only_record(&[
        "29.03.26 02:30:00;RING;0;02214710388;03023125100;SIP0;",
        "29.03.26 03:31:00;DISCONNECT;0;0;",
    ]);
    assert_eq!(record.id, "fritz:office:0:1774747800");
    assert_eq!(record.start_at, instant("2026-03-29T01:30:00Z"));
    assert_eq!(record.end_at, instant("2026-03-29T01:31:00Z"));
    assert_eq!(record.duration_ms, 60_000);
    assert_eq!(record.disposition, Disposition::Missed);
}

#[test]
fn dst_autumn_repeated_hour_without_earlier_line_is_the_first_occurrence() {
    let record = only_record(&[
        "25.10.26 02:30:00;RING;0;02214710388;03023125100;SIP0;",
        "25.10.26 02:31:00;DISCONNECT;0;0;",
    ]);
    assert_eq!(record.id, "fritz:office:0:1792888200");
    assert_eq!(record.start_at, instant("2026-10-25T00:30:00Z"));
    assert_eq!(record.end_at, instant("2026-10-25T00:31:00Z"));
}

#[test]
fn dst_autumn_repeated_hour_follows_the_clock_through_the_change() {
    // Rule 2: 02:10 after 02:50 (first occurrence) is the second 02:10.
    let record = only_record(&[
        "25.10.26 02:50:00;CALL;0;10;03023125100;04066969310;SIP0;",
        "25.10.26 02:10:00;DISCONNECT;0;0;",
    ]);
    assert_eq!(record.id, "fritz:office:0:1792889400");
    assert_eq!(record.start_at, instant("2026-10-25T00:50:00Z"));
    assert_eq!(record.end_at, instant("2026-10-25T01:10:00Z"));
    assert_eq!(record.duration_ms, 20 * 60 * 1000);
    assert_eq!(record.disposition, Disposition::NoAnswer);
}

#[test]
fn dst_autumn_disconnect_of_an_answered_call_is_placed_by_its_duration() {
    // Rule 1 before rule 2: the orphan at 02:15:11 moved the latest instant
    // past the first 02:15:10, but the answered call's own duration puts its
    // end at the first occurrence.
    let outcomes = run(&[
        "25.10.26 02:05:00;CALL;0;10;03023125100;04066969310;SIP0;",
        "25.10.26 02:05:10;CONNECT;0;10;04066969310;",
        "25.10.26 02:15:11;DISCONNECT;1;0;",
        "25.10.26 02:15:10;DISCONNECT;0;600;",
    ]);
    assert_eq!(outcomes.first(), Some(&Outcome::Ignored(ORPHAN_EVENT)));
    let record = records(&outcomes).pop().expect("the call's record");
    assert_eq!(record.id, "fritz:office:0:1792886700");
    assert_eq!(record.end_at, instant("2026-10-25T00:15:10Z"));
    assert_eq!((record.duration_ms, record.billable_ms), (610_000, 600_000));
}

#[test]
fn snapshot_and_restore_at_any_line_gives_the_uninterrupted_outcomes() {
    let mut mismatches = Vec::new();
    for (file, lines) in transcripts() {
        let uninterrupted = run(&lines);
        for split in 0..=lines.len() {
            let (before, after) = lines.split_at(split);
            let mut first = CallMonitor::new(BOX_ID, TZ);
            let mut outcomes = feed_all(&mut first, before);
            let saved = serde_json::to_string(&first.snapshot()).expect("a state serializes");
            let state: MonitorState = serde_json::from_str(&saved).expect("a saved state deserializes");
            if state != first.snapshot() {
                mismatches.push(format!(
                    "{file} after line {split}: the state changed in a JSON round trip"
                ));
            }
            let mut resumed = CallMonitor::restore(BOX_ID, TZ, state);
            outcomes.extend(feed_all(&mut resumed, after));
            if outcomes != uninterrupted {
                mismatches.push(format!(
                    "{file} restored after line {split}:\n  want {uninterrupted:?}\n  got  {outcomes:?}"
                ));
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn a_transcript_that_ends_mid_call_keeps_the_call_open_in_its_snapshot() {
    let mut monitor = CallMonitor::new(BOX_ID, TZ);
    feed_all(&mut monitor, &transcript("joined-mid-call.log"));
    let state = monitor.snapshot();
    assert_eq!(state.open_calls.len(), 1);
    let open = state.open_calls.first().expect("one open call");
    assert_eq!((open.connection_id, open.direction), (0, Direction::Outbound));
    assert_eq!(open.start_at, instant("2026-11-19T13:52:09Z"));
    assert_eq!(state.latest_instant, Some(instant("2026-11-19T13:52:09Z")));

    // The DISCONNECT that comes after a restart completes it.
    let mut resumed = CallMonitor::restore(BOX_ID, TZ, state);
    let outcome = resumed.feed("19.11.26 14:58:00;DISCONNECT;0;300;", received_at());
    let Some(Outcome::Record(record)) = outcome else {
        panic!("want the call's record, got {outcome:?}");
    };
    assert_eq!(record.id, "fritz:office:0:1795096329");
    assert_eq!(record.disposition, Disposition::Answered);
    assert_eq!(record.answer_at, Some(instant("2026-11-19T13:53:00Z")));
    assert!(resumed.snapshot().open_calls.is_empty());
}

#[test]
fn a_repeated_disconnect_after_restore_is_an_orphan() {
    let lines = transcript("overlapping-calls.log");
    let mut monitor = CallMonitor::new(BOX_ID, TZ);
    assert_eq!(records(&feed_all(&mut monitor, &lines)).len(), 2);
    let mut resumed = CallMonitor::restore(BOX_ID, TZ, monitor.snapshot());
    let again = feed_all(&mut resumed, &lines[lines.len() - 2..]);
    assert_eq!(
        again,
        vec![Outcome::Ignored(ORPHAN_EVENT), Outcome::Ignored(ORPHAN_EVENT)]
    );
}

/// `replay.py --drop-after D --repeat K`: after the reconnect the last K lines
/// come again. Every call still comes out exactly once, as without the
/// resend, and no open call is dropped: a resent DISCONNECT must not close the
/// newer call on a reused connection id, nor a resent CONNECT answer it.
/// `dst-autumn.log` is left out, as NOTES.md says.
#[test]
fn resent_lines_after_a_reconnect_produce_no_new_call() {
    let mut mismatches = Vec::new();
    for (file, lines) in transcripts().into_iter().filter(|(f, _)| f != "dst-autumn.log") {
        let want: BTreeMap<String, CallRecord> = records(&run(&lines)).into_iter().map(|r| (r.id.clone(), r)).collect();
        for drop_after in 1..lines.len() {
            for repeat in 1..=drop_after {
                let stream: Vec<&String> = lines[..drop_after]
                    .iter()
                    .chain(&lines[drop_after - repeat..drop_after])
                    .chain(&lines[drop_after..])
                    .collect();
                let mut monitor = CallMonitor::new(BOX_ID, TZ);
                let mut got = Vec::new();
                let case = format!("{file} --drop-after {drop_after} --repeat {repeat}");
                for line in stream {
                    let effects = monitor.feed_detailed(line, received_at());
                    if !effects.dropped.is_empty() {
                        mismatches.push(format!("{case}: dropped {:?}", effects.dropped));
                    }
                    got.extend(effects.outcome);
                }
                let got = records(&got);
                if got.len() != want.len() {
                    mismatches.push(format!("{case}: {} records, want {}", got.len(), want.len()));
                }
                for record in &got {
                    if want.get(&record.id) != Some(record) {
                        mismatches.push(format!("{case}: unexpected record {}", record.id));
                    }
                }
                for id in want.keys() {
                    if !got.iter().any(|r| &r.id == id) {
                        mismatches.push(format!("{case}: lost {id}"));
                    }
                }
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn a_reused_connection_id_drops_the_open_call_without_a_record() {
    let mut monitor = CallMonitor::new(BOX_ID, TZ);
    let ring = "17.11.26 08:47:12;RING;0;02214710388;03023125100;SIP0;";
    assert_eq!(monitor.feed_detailed(ring, received_at()).dropped, vec![]);
    // The same RING again (resent) is the same call: nothing dropped.
    assert_eq!(monitor.feed_detailed(ring, received_at()).dropped, vec![]);
    let effects = monitor.feed_detailed(
        "17.11.26 09:00:00;CALL;0;10;03023125100;04066969310;SIP0;",
        received_at(),
    );
    assert_eq!(effects.outcome, None);
    assert_eq!(
        effects.dropped,
        vec![DroppedCall {
            call_id: "fritz:office:0:1794901632".into(),
            reason: DropReason::Replaced
        }]
    );
    let record = records(&feed_all(&mut monitor, &["17.11.26 09:01:00;DISCONNECT;0;0;"]))
        .pop()
        .expect("the new call's record");
    assert_eq!(record.direction, Direction::Outbound);
}

#[test]
fn a_call_open_longer_than_the_limit_is_dropped() {
    let mut monitor = CallMonitor::new(BOX_ID, TZ);
    monitor.feed("17.11.26 08:47:12;RING;3;02214710388;03023125100;SIP0;", received_at());
    // A line within the limit keeps it; the box's clock decides.
    let effects = monitor.feed_detailed("18.11.26 08:47:12;RING;0;02214710388;03023125100;SIP0;", received_at());
    assert_eq!(effects.dropped, vec![]);
    let effects = monitor.feed_detailed("18.11.26 08:47:13;DISCONNECT;0;0;", received_at());
    assert_eq!(
        effects.dropped,
        vec![DroppedCall {
            call_id: "fritz:office:3:1794901632".into(),
            reason: DropReason::Expired
        }]
    );
    assert!(matches!(effects.outcome, Some(Outcome::Record(_))));
    assert_eq!(
        monitor.feed("18.11.26 08:50:00;DISCONNECT;3;60;", received_at()),
        Some(Outcome::Ignored(ORPHAN_EVENT))
    );

    // The caller's clock, for a box that stays silent.
    monitor.feed(
        "18.11.26 09:00:00;CALL;1;10;03023125100;04066969310;SIP0;",
        received_at(),
    );
    let limit = TimeDelta::hours(MAX_OPEN_CALL_HOURS);
    assert_eq!(
        monitor.expire_open_calls(instant("2026-11-18T08:00:00Z") + limit),
        vec![]
    );
    let dropped = monitor.expire_open_calls(instant("2026-11-18T08:00:01Z") + limit);
    assert_eq!(
        dropped.iter().map(|d| d.reason).collect::<Vec<_>>(),
        vec![DropReason::Expired]
    );
    assert!(monitor.snapshot().open_calls.is_empty());
}

#[test]
fn open_calls_are_bounded() {
    let mut monitor = CallMonitor::new(BOX_ID, TZ);
    for id in 0..MAX_OPEN_CALLS {
        let line = format!(
            "20.11.26 10:{:02}:{:02};RING;{id};02214710388;03023125100;SIP0;",
            id / 60,
            id % 60
        );
        assert_eq!(monitor.feed_detailed(&line, received_at()).dropped, vec![]);
    }
    let effects = monitor.feed_detailed(
        "20.11.26 11:00:00;RING;9999;02214710388;03023125100;SIP0;",
        received_at(),
    );
    assert_eq!(
        effects
            .dropped
            .iter()
            .map(|d| (d.call_id.as_str(), d.reason))
            .collect::<Vec<_>>(),
        vec![("fritz:office:0:1795165200", DropReason::Evicted)]
    );
    assert_eq!(monitor.snapshot().open_calls.len(), MAX_OPEN_CALLS);
}

#[test]
fn garbled_line_rejection_names_the_code_and_changes_no_state() {
    let mut monitor = CallMonitor::new(BOX_ID, TZ);
    monitor.feed("18.11.26 11:05:42;RING;0;08999998412;03023125100;SIP0;", received_at());
    let before = monitor.snapshot();
    let outcome = monitor.feed("18.11.26 11:05:49;CONN", received_at());
    assert!(
        matches!(&outcome, Some(Outcome::Rejected(e)) if e.code() == "malformed_payload"),
        "{outcome:?}"
    );
    assert_eq!(monitor.snapshot(), before);
    assert_eq!(monitor.feed("", received_at()), None);
    assert_eq!(monitor.feed("\r", received_at()), None);
}

/// What any outcome of this source must look like, whatever the input.
fn check_outcome(outcome: &Outcome) -> Result<(), TestCaseError> {
    match outcome {
        Outcome::Rejected(err) => prop_assert_eq!(err.code(), "malformed_payload"),
        Outcome::Ignored(reason) => prop_assert_eq!(*reason, ORPHAN_EVENT),
        Outcome::Record(record) => {
            prop_assert_eq!(record.source, Source::Fritzbox);
            prop_assert_eq!(record.version, 1);
            let id_end = format!(":{}", record.start_at.timestamp());
            prop_assert!(record.id.starts_with("fritz:office:") && record.id.ends_with(&id_end));
            let trunk = record.trunk.as_deref().unwrap_or_default();
            prop_assert!(!trunk.is_empty());
            prop_assert_eq!(&record.account_key, &format!("office:{trunk}"));
            let answered = record.disposition == Disposition::Answered;
            prop_assert_eq!(record.answer_at.is_some(), answered);
            prop_assert!(answered || record.billable_ms == 0);
            let unanswered = match record.direction {
                Direction::Inbound => Disposition::Missed,
                _ => Disposition::NoAnswer,
            };
            prop_assert!(answered || record.disposition == unanswered);
            prop_assert_eq!(record.received_at, received_at());
        }
    }
    Ok(())
}

/// Lines shaped like the box's, around the DST changes and on ordinary days.
fn plausible_line() -> impl Strategy<Value = String> {
    "(25\\.10\\.26 0[1-3]|29\\.03\\.26 0[1-3]|[0-3][0-9]\\.[01][0-9]\\.[0-9]{2} [0-2][0-9]):[0-5][0-9]:[0-6][0-9];\
     (RING|CALL|CONNECT|DISCONNECT|ring);[0-9]{1,2};[0-9#]{0,6};[0-9]{0,4};([0-9]{0,4};)?(SIP[01]|POTS|)?;?"
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete,
    Insert(char),
    Replace(char),
    Truncate,
    Duplicate,
    SwapWithNext,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let ch = prop_oneof![Just(';'), Just('\r'), Just(' '), Just('9'), any::<char>()];
    prop_oneof![
        Just(Mutation::Delete),
        ch.clone().prop_map(Mutation::Insert),
        ch.prop_map(Mutation::Replace),
        Just(Mutation::Truncate),
        Just(Mutation::Duplicate),
        Just(Mutation::SwapWithNext),
    ]
}

fn mutate(lines: &mut Vec<String>, at: usize, position: Index, mutation: &Mutation) {
    let Some(line) = lines.get(at).cloned() else {
        return;
    };
    let mut chars: Vec<char> = line.chars().collect();
    let pos = position.index(chars.len() + 1);
    match mutation {
        Mutation::Delete => {
            if pos < chars.len() {
                chars.remove(pos);
            }
        }
        Mutation::Insert(c) => chars.insert(pos, *c),
        Mutation::Replace(c) => {
            if let Some(slot) = chars.get_mut(pos) {
                *slot = *c;
            }
        }
        Mutation::Truncate => chars.truncate(pos),
        Mutation::Duplicate => lines.insert(at, line.clone()),
        Mutation::SwapWithNext => {
            if at + 1 < lines.len() {
                lines.swap(at, at + 1);
            }
        }
    }
    if matches!(
        mutation,
        Mutation::Delete | Mutation::Insert(_) | Mutation::Replace(_) | Mutation::Truncate
    ) {
        lines[at] = chars.into_iter().collect();
    }
}

#[test]
fn arbitrary_lines_never_panic_and_give_only_known_outcomes() {
    // Start with calls open, so arbitrary CONNECTs and DISCONNECTs can hit them.
    let opening = transcript("overlapping-calls.log");
    proptest!(ProptestConfig::with_cases(512), |(
        noise in prop::collection::vec(any::<String>(), 0..4),
        shaped in prop::collection::vec(plausible_line(), 0..12),
        order in any::<bool>(),
    )| {
        let mut monitor = CallMonitor::new(BOX_ID, TZ);
        feed_all(&mut monitor, &opening[..4]);
        let stream: Vec<&String> = if order {
            noise.iter().chain(&shaped).collect()
        } else {
            shaped.iter().chain(&noise).collect()
        };
        for line in stream {
            if let Some(outcome) = monitor.feed(line, received_at()) {
                check_outcome(&outcome)?;
            }
        }
    });
}

#[test]
fn mutated_transcripts_never_panic_and_give_only_known_outcomes() {
    let all = transcripts();
    proptest!(ProptestConfig::with_cases(1024), |(
        file in any::<Index>(),
        edits in prop::collection::vec((any::<Index>(), any::<Index>(), mutation()), 1..4),
    )| {
        let (_, lines) = file.get(&all);
        let mut lines = lines.clone();
        for (at, position, mutation) in &edits {
            let at = at.index(lines.len());
            mutate(&mut lines, at, *position, mutation);
        }
        let mut monitor = CallMonitor::new(BOX_ID, TZ);
        for line in &lines {
            if let Some(outcome) = monitor.feed(line, received_at()) {
                check_outcome(&outcome)?;
            }
        }
        // The state a mutated stream leaves behind still persists and restores.
        let state = monitor.snapshot();
        let saved = serde_json::to_string(&state).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back: MonitorState = serde_json::from_str(&saved).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, state);
    });
}
