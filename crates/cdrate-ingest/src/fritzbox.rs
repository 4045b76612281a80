//! Fritz!Box CallMonitor: the per-box state machine that turns the event lines
//! a box sends on TCP port 1012 into `CallRecord`s (fixture `NOTES.md` is the
//! specification).
//!
//! The protocol: one event per line, every field terminated by `;`, times in
//! the box's local wall-clock (`dd.mm.yy HH:MM:SS`, no offset):
//!
//! ```text
//! time;RING;ConnectionID;CallerNumber;CalledNumber;Line;        an inbound call rings
//! time;CALL;ConnectionID;Extension;OwnNumber;CalledNumber;Line; a phone dials out
//! time;CONNECT;ConnectionID;Extension;Number;                   the call is connected
//! time;DISCONNECT;ConnectionID;DurationSeconds;                 the call has ended
//! ```
//!
//! RING and CALL open a call on a connection id, CONNECT answers it, and the
//! DISCONNECT that closes it yields the call's one record. The box reuses
//! connection ids, so a record's id also carries the start instant.
//!
//! This module owns line parsing, the local time → UTC conversion (DST-safe:
//! the repeated autumn hour follows the box's clock, the skipped spring hour
//! is read with the offset before the change) and the open calls per
//! connection id, the latest instant read and the last lines (to recognize a
//! resend), which [`MonitorState`] lets the caller persist. It does no I/O and reads no clock: framing lines at
//! LF, reconnecting, persisting the state and logging dropped calls belong to
//! the binary.

use std::collections::{BTreeMap, VecDeque};

use cdrate_core::call::CALL_SCHEMA;
use cdrate_core::{CallRecord, Direction, Disposition, Source};
use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::{ErrorKind, IngestError, Outcome};

/// `Outcome::Ignored` reason of a DISCONNECT for a connection id that is not
/// open (cdrate joined mid-call, missed the start in a reconnect gap, or the
/// line was repeated).
pub const ORPHAN_EVENT: &str = "orphan_event";

/// An open call whose DISCONNECT has not come this long after its start is
/// dropped without a record: its DISCONNECT was lost (a reconnect gap), and
/// NOTES.md suggests about a day. Counted against the box's own clock (the
/// instant of each line) in [`CallMonitor::feed`], or against a caller's clock
/// in [`CallMonitor::expire_open_calls`].
pub const MAX_OPEN_CALL_HOURS: i64 = 24;

/// At most this many calls are kept open per box; opening one more drops the
/// one that started first. A box has a handful of lines, so this only bounds
/// the state a misbehaving peer can make us hold.
pub const MAX_OPEN_CALLS: usize = 256;

/// A well-formed line identical to one of the last this many is a resend
/// (the box never sends the same event twice: time, id and fields all equal)
/// and changes nothing. Without this, a resent DISCONNECT of a closed call
/// would close a newer call on the reused connection id, and a resent
/// CONNECT would answer it.
pub const REPEAT_WINDOW_LINES: usize = 64;

/// One box's CallMonitor state: the calls open on each connection id and the
/// latest instant read from the box.
///
/// **No call twice.** A record is produced only by the DISCONNECT that closes
/// an open call, and that DISCONNECT removes it, so a repeated DISCONNECT is
/// an orphan; a line repeated within [`REPEAT_WINDOW_LINES`] changes nothing
/// (a repeated DISCONNECT still yields its orphan outcome). A record's `id` is `fritz:<box>:<connection id>:<start epoch>`
/// and its `version` is always 1: both come only from what the box sent, never
/// from when or how often cdrate read it. If the same call is produced twice
/// anyway (lines resent beyond the window, a state restored from a snapshot
/// older than the last record, a retried bus append), both copies are the
/// same record with the same `(id, version)`, and the store, idempotent on
/// that pair, keeps one.
///
/// **Reconnects.** The state belongs to the box, not to the TCP connection:
/// keep the same `CallMonitor` across reconnects. A call open when the
/// connection dropped is completed by its DISCONNECT after the reconnect, and
/// recorded once. Lines sent while disconnected are lost (the box resends
/// nothing): a call that started in the gap yields an orphan DISCONNECT, and a
/// call whose DISCONNECT fell into the gap stays open until its connection id
/// is reused by a new RING/CALL, until a line arrives more than
/// [`MAX_OPEN_CALL_HOURS`] after its start, or until
/// [`CallMonitor::expire_open_calls`] drops it. All three drop it without a
/// record and report it in [`LineEffects::dropped`] so it can be logged.
///
/// **Restarts.** [`CallMonitor::snapshot`] gives the open calls and the latest
/// instant as a serializable [`MonitorState`]; [`CallMonitor::restore`] starts
/// from one. Persist a snapshot after each line that changed it, and after the
/// record that line produced is durably appended, never before: a crash
/// between the two then leaves the call open (the box never resends its
/// DISCONNECT, so it is later dropped, not recorded again) instead of losing
/// it. Without a snapshot, calls open at a restart become orphans, never
/// duplicates.
#[derive(Debug, Clone)]
pub struct CallMonitor {
    box_id: String,
    timezone: Tz,
    open: BTreeMap<u32, OpenCall>,
    latest: Option<DateTime<Utc>>,
    /// The last well-formed lines, oldest first, to recognize resends.
    recent: VecDeque<String>,
}

/// A call the box has opened (RING or CALL) and not yet disconnected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenCall {
    pub connection_id: u32,
    /// `inbound` for RING, `outbound` for CALL.
    pub direction: Direction,
    pub start_at: DateTime<Utc>,
    /// The instant of the call's first CONNECT; `None` until one is seen.
    pub answer_at: Option<DateTime<Utc>>,
    pub caller: String,
    pub callee: String,
    /// The external line (`SIP0`, `POTS`, `ISDN`, …).
    pub line: String,
    /// The box's internal port: from CALL, else from the first CONNECT.
    pub extension: Option<String>,
}

/// What a restarted cdrate needs to resume a box without producing a call
/// twice: see [`CallMonitor`]. Plain data; any value restores.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorState {
    /// The open calls, in connection-id order.
    pub open_calls: Vec<OpenCall>,
    /// The latest instant read from the box (the repeated autumn hour is
    /// resolved against it).
    pub latest_instant: Option<DateTime<Utc>>,
    /// The last well-formed lines (without CR), oldest first: a resend of
    /// one of them after the restart changes nothing.
    #[serde(default)]
    pub recent_lines: Vec<String>,
}

/// Everything one line did: the outcome it completed, if any, and the open
/// calls it dropped without a record (for the binary to log and count).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LineEffects {
    pub outcome: Option<Outcome>,
    pub dropped: Vec<DroppedCall>,
}

/// An open call given up without a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedCall {
    /// The id its record would have had.
    pub call_id: String,
    pub reason: DropReason,
}

/// Why an open call was given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// A new RING or CALL came on its connection id: its DISCONNECT was lost.
    Replaced,
    /// Open longer than [`MAX_OPEN_CALL_HOURS`].
    Expired,
    /// [`MAX_OPEN_CALLS`] were open and it had started first.
    Evicted,
}

impl DropReason {
    /// Stable snake_case code, for logs and metric labels.
    pub fn code(self) -> &'static str {
        match self {
            DropReason::Replaced => "replaced",
            DropReason::Expired => "expired",
            DropReason::Evicted => "evicted",
        }
    }
}

impl CallMonitor {
    /// A monitor with no open calls and no earlier instant.
    pub fn new(box_id: impl Into<String>, timezone: Tz) -> CallMonitor {
        CallMonitor::restore(box_id, timezone, MonitorState::default())
    }

    /// A monitor that resumes from a [`CallMonitor::snapshot`]. Of two open
    /// calls with the same connection id the later in `open_calls` wins, and
    /// at most [`MAX_OPEN_CALLS`] are kept.
    pub fn restore(box_id: impl Into<String>, timezone: Tz, state: MonitorState) -> CallMonitor {
        let mut monitor = CallMonitor {
            box_id: box_id.into(),
            timezone,
            open: BTreeMap::new(),
            latest: state.latest_instant,
            recent: state.recent_lines.into(),
        };
        while monitor.recent.len() > REPEAT_WINDOW_LINES {
            monitor.recent.pop_front();
        }
        for call in state.open_calls {
            monitor.open.insert(call.connection_id, call);
        }
        while monitor.open.len() > MAX_OPEN_CALLS {
            if monitor.evict_first_started().is_none() {
                break;
            }
        }
        monitor
    }

    /// The open calls and the latest instant, to persist.
    pub fn snapshot(&self) -> MonitorState {
        MonitorState {
            open_calls: self.open.values().cloned().collect(),
            latest_instant: self.latest,
            recent_lines: self.recent.iter().cloned().collect(),
        }
    }

    /// Feeds one line the box sent (without its LF; one trailing CR is
    /// removed); returns the outcome it completes, if any. A line completes
    /// at most one outcome: a record or an orphan for a DISCONNECT, an error
    /// for a malformed line, nothing for RING, CALL, CONNECT and empty lines.
    pub fn feed(&mut self, line: &str, received_at: DateTime<Utc>) -> Option<Outcome> {
        self.feed_detailed(line, received_at).outcome
    }

    /// [`CallMonitor::feed`], also reporting the open calls the line dropped
    /// (a reused connection id, or calls open too long by the box's clock).
    pub fn feed_detailed(&mut self, line: &str, received_at: DateTime<Utc>) -> LineEffects {
        let text = line.strip_suffix('\r').unwrap_or(line);
        if text.is_empty() {
            return LineEffects::default();
        }
        let parsed = match parse_line(text) {
            Ok(parsed) => parsed,
            Err(err) => return rejected(err),
        };
        let Some(wall) = to_wall_instants(self.timezone, parsed.local) else {
            return rejected(malformed("the time cannot be placed in the box's zone"));
        };
        if self.recent.iter().any(|seen| seen == text) {
            let is_disconnect = matches!(parsed.event, Event::Disconnect { .. });
            return LineEffects {
                outcome: is_disconnect.then_some(Outcome::Ignored(ORPHAN_EVENT)),
                dropped: Vec::new(),
            };
        }
        if self.recent.len() >= REPEAT_WINDOW_LINES {
            self.recent.pop_front();
        }
        self.recent.push_back(text.to_owned());
        let id = parsed.connection_id;
        let mut effects = LineEffects::default();
        let at = match parsed.event {
            Event::Ring { caller, callee, line } => {
                let at = self.follow_clock(wall);
                let call = OpenCall::new(id, Direction::Inbound, at, caller, callee, line, None);
                self.open_call(call, &mut effects.dropped);
                at
            }
            Event::Call {
                extension,
                own,
                callee,
                line,
            } => {
                let at = self.follow_clock(wall);
                let call = OpenCall::new(id, Direction::Outbound, at, own, callee, line, Some(extension));
                self.open_call(call, &mut effects.dropped);
                at
            }
            Event::Connect { extension } => {
                let at = self.follow_clock(wall);
                // Only a call's first CONNECT counts; one for an id that is
                // not open is dropped without output (NOTES "Events").
                if let Some(call) = self.open.get_mut(&id).filter(|c| c.answer_at.is_none()) {
                    call.answer_at = Some(at);
                    if call.extension.is_none() && !extension.is_empty() {
                        call.extension = Some(extension.to_owned());
                    }
                }
                at
            }
            Event::Disconnect { duration_seconds } => match self.open.remove(&id) {
                Some(call) => {
                    let at = self.place_disconnect(wall, &call, duration_seconds);
                    let record = self.close(call, at, duration_seconds, received_at);
                    effects.outcome = Some(Outcome::Record(Box::new(record)));
                    at
                }
                None => {
                    effects.outcome = Some(Outcome::Ignored(ORPHAN_EVENT));
                    self.follow_clock(wall)
                }
            },
        };
        self.latest = Some(self.latest.map_or(at, |latest| latest.max(at)));
        // Measured from this line's instant, not the latest one: after the
        // box's clock steps back, new calls are not mistaken for old ones.
        self.drop_started_before(at, &mut effects.dropped);
        effects
    }

    /// Drops the calls open more than [`MAX_OPEN_CALL_HOURS`] before `now`
    /// (the caller's clock), for a box that stays silent: `feed` only expires
    /// calls when a line comes. Only call it if the box's clock is trusted to
    /// be close to `now`.
    pub fn expire_open_calls(&mut self, now: DateTime<Utc>) -> Vec<DroppedCall> {
        let mut dropped = Vec::new();
        self.drop_started_before(now, &mut dropped);
        dropped
    }

    /// Rule 2 of NOTES "Time": the first occurrence of a repeated time,
    /// unless it is earlier than the latest instant already read.
    fn follow_clock(&self, wall: WallInstants) -> DateTime<Utc> {
        match wall {
            WallInstants::Once(at) => at,
            WallInstants::Twice { first, second } => match self.latest {
                Some(latest) if first < latest => second,
                _ => first,
            },
        }
    }

    /// Rule 1 of NOTES "Time": a DISCONNECT of a call answered by a CONNECT
    /// takes the occurrence nearer to the answer plus the box's duration (the
    /// first on a tie); anything else follows the clock.
    fn place_disconnect(&self, wall: WallInstants, call: &OpenCall, duration_seconds: u64) -> DateTime<Utc> {
        let WallInstants::Twice { first, second } = wall else {
            return self.follow_clock(wall);
        };
        let expected_end = call
            .answer_at
            .and_then(|answer| answer.checked_add_signed(seconds(duration_seconds)?));
        match expected_end {
            Some(end) if (second - end).abs() < (first - end).abs() => second,
            Some(_) => first,
            None => self.follow_clock(wall),
        }
    }

    fn open_call(&mut self, call: OpenCall, dropped: &mut Vec<DroppedCall>) {
        if let Some(old) = self.open.get(&call.connection_id) {
            // The same RING/CALL again (a resent line) reopens the same call:
            // keep what is known of it, drop nothing.
            if old.start_at == call.start_at && old.direction == call.direction {
                return;
            }
            dropped.push(self.dropped(old, DropReason::Replaced));
        } else if self.open.len() >= MAX_OPEN_CALLS {
            if let Some(evicted) = self.evict_first_started() {
                dropped.push(evicted);
            }
        }
        self.open.insert(call.connection_id, call);
    }

    fn evict_first_started(&mut self) -> Option<DroppedCall> {
        let id = self.open.values().min_by_key(|c| c.start_at)?.connection_id;
        let call = self.open.remove(&id)?;
        Some(self.dropped(&call, DropReason::Evicted))
    }

    fn drop_started_before(&mut self, now: DateTime<Utc>, dropped: &mut Vec<DroppedCall>) {
        let Some(cutoff) = TimeDelta::try_hours(MAX_OPEN_CALL_HOURS).and_then(|age| now.checked_sub_signed(age)) else {
            return;
        };
        let stale: Vec<u32> = self
            .open
            .values()
            .filter(|c| c.start_at < cutoff)
            .map(|c| c.connection_id)
            .collect();
        for id in stale {
            if let Some(call) = self.open.remove(&id) {
                dropped.push(self.dropped(&call, DropReason::Expired));
            }
        }
    }

    fn dropped(&self, call: &OpenCall, reason: DropReason) -> DroppedCall {
        DroppedCall {
            call_id: self.call_id(call),
            reason,
        }
    }

    fn call_id(&self, call: &OpenCall) -> String {
        format!(
            "fritz:{}:{}:{}",
            self.box_id,
            call.connection_id,
            call.start_at.timestamp()
        )
    }

    /// The record of `call`, ended at `end_at` after `duration_seconds` of
    /// connected time by the box's count (NOTES "Fields").
    fn close(
        &self,
        call: OpenCall,
        end_at: DateTime<Utc>,
        duration_seconds: u64,
        received_at: DateTime<Utc>,
    ) -> CallRecord {
        // A lost CONNECT with a positive duration still means the box
        // connected the call; its answer is reconstructed from the end.
        let answer_at = call.answer_at.or_else(|| {
            (duration_seconds > 0).then(|| {
                seconds(duration_seconds)
                    .and_then(|connected| end_at.checked_sub_signed(connected))
                    .map_or(call.start_at, |answer| answer.max(call.start_at))
            })
        });
        let disposition = match (answer_at, call.direction) {
            (Some(_), _) => Disposition::Answered,
            (None, Direction::Inbound) => Disposition::Missed,
            (None, _) => Disposition::NoAnswer,
        };
        let billable_ms = if answer_at.is_some() {
            duration_seconds.saturating_mul(1000)
        } else {
            0
        };
        // Negative when the box's clock stepped back during the call.
        let duration_ms = u64::try_from(end_at.signed_duration_since(call.start_at).num_milliseconds()).unwrap_or(0);
        let id = self.call_id(&call);
        let account_key = format!("{}:{}", self.box_id, call.line);
        let attrs = call
            .extension
            .map(|extension| ("extension".to_owned(), extension))
            .into_iter()
            .collect();
        CallRecord {
            schema: CALL_SCHEMA.to_owned(),
            id,
            version: 1,
            source: Source::Fritzbox,
            account_key,
            direction: call.direction,
            caller: call.caller,
            callee: call.callee,
            callee_e164: None,
            start_at: call.start_at,
            answer_at,
            end_at,
            duration_ms,
            billable_ms,
            disposition,
            hangup_cause: None,
            trunk: Some(call.line),
            attrs,
            received_at,
        }
    }
}

impl OpenCall {
    fn new(
        connection_id: u32,
        direction: Direction,
        start_at: DateTime<Utc>,
        caller: &str,
        callee: &str,
        line: &str,
        extension: Option<&str>,
    ) -> OpenCall {
        OpenCall {
            connection_id,
            direction,
            start_at,
            answer_at: None,
            caller: caller.to_owned(),
            callee: callee.to_owned(),
            line: line.to_owned(),
            extension: extension.filter(|e| !e.is_empty()).map(str::to_owned),
        }
    }
}

fn rejected(err: IngestError) -> LineEffects {
    LineEffects {
        outcome: Some(Outcome::Rejected(err)),
        dropped: Vec::new(),
    }
}

fn malformed(detail: impl Into<String>) -> IngestError {
    IngestError::new(ErrorKind::MalformedPayload, detail)
}

fn seconds(n: u64) -> Option<TimeDelta> {
    TimeDelta::try_seconds(i64::try_from(n).ok()?)
}

/// One well-formed line; the strings borrow from it.
#[derive(Debug)]
struct Line<'a> {
    local: NaiveDateTime,
    connection_id: u32,
    event: Event<'a>,
}

#[derive(Debug)]
enum Event<'a> {
    Ring {
        caller: &'a str,
        callee: &'a str,
        line: &'a str,
    },
    Call {
        extension: &'a str,
        own: &'a str,
        callee: &'a str,
        line: &'a str,
    },
    Connect {
        extension: &'a str,
    },
    Disconnect {
        duration_seconds: u64,
    },
}

/// Parses one line (without CR LF) per NOTES "Robustness".
fn parse_line(text: &str) -> Result<Line<'_>, IngestError> {
    // Every field ends with `;`, the last one too. Text after the last `;`
    // is not a complete field (a line cut short, or a later firmware's extra
    // field), so it never counts: `…;DISCONNECT;0;45` is malformed rather
    // than read as 45 seconds.
    let Some(terminated) = text.rfind(';').and_then(|end| text.get(..end)) else {
        return Err(malformed("no `;`-terminated field"));
    };
    let mut fields = terminated.split(';');
    let time = fields.next().unwrap_or_default();
    let Some(event) = fields.next() else {
        return Err(malformed("no event field"));
    };
    let need = match event {
        "RING" => 6,
        "CALL" => 7,
        "CONNECT" => 5,
        "DISCONNECT" => 4,
        _ => return Err(malformed("the event is not RING, CALL, CONNECT or DISCONNECT")),
    };
    // Time and event are read; `need - 2` fields remain. Later ones are ignored.
    let mut rest = [""; 5];
    for (index, slot) in rest.iter_mut().take(need - 2).enumerate() {
        *slot = fields
            .next()
            .ok_or_else(|| malformed(format!("{event} needs {need} fields, the line has {}", index + 2)))?;
    }
    let local = parse_local_time(time).ok_or_else(|| malformed("the time is not a valid dd.mm.yy HH:MM:SS"))?;
    let [connection_id, a, b, c, d] = rest;
    let connection_id = decimal(connection_id).ok_or_else(|| malformed("the ConnectionID is not a decimal number"))?;
    let event = match event {
        "RING" => Event::Ring {
            caller: a,
            callee: b,
            line: non_empty_line(c)?,
        },
        "CALL" => Event::Call {
            extension: a,
            own: b,
            callee: c,
            line: non_empty_line(d)?,
        },
        "CONNECT" => Event::Connect { extension: a },
        _ => Event::Disconnect {
            duration_seconds: decimal(a).ok_or_else(|| malformed("DurationSeconds is not a decimal number"))?,
        },
    };
    Ok(Line {
        local,
        connection_id,
        event,
    })
}

fn non_empty_line(line: &str) -> Result<&str, IngestError> {
    if line.is_empty() {
        Err(malformed("the Line field is empty"))
    } else {
        Ok(line)
    }
}

/// ASCII digits only (no sign, no spaces); `None` also when the value does
/// not fit `T`.
fn decimal<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `dd.mm.yy HH:MM:SS`, exactly, with year 2000 + yy.
fn parse_local_time(s: &str) -> Option<NaiveDateTime> {
    let (date, time) = s.split_once(' ')?;
    let [day, month, year] = three_parts(date, '.')?;
    let [hour, minute, second] = three_parts(time, ':')?;
    let date = NaiveDate::from_ymd_opt(2000_i32.checked_add_unsigned(year)?, month, day)?;
    Some(date.and_time(NaiveTime::from_hms_opt(hour, minute, second)?))
}

fn three_parts(s: &str, separator: char) -> Option<[u32; 3]> {
    let mut parts = s.split(separator).map(two_digits);
    let three = [parts.next()??, parts.next()??, parts.next()??];
    parts.next().is_none().then_some(three)
}

fn two_digits(s: &str) -> Option<u32> {
    let &[tens, ones] = s.as_bytes() else {
        return None;
    };
    let digit = |b: u8| char::from(b).to_digit(10);
    Some(digit(tens)? * 10 + digit(ones)?)
}

/// The instants a local wall-clock time can name.
#[derive(Debug, Clone, Copy)]
enum WallInstants {
    Once(DateTime<Utc>),
    /// The repeated autumn hour: `first` is the earlier instant.
    Twice {
        first: DateTime<Utc>,
        second: DateTime<Utc>,
    },
}

fn to_wall_instants(tz: Tz, local: NaiveDateTime) -> Option<WallInstants> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(at) => Some(WallInstants::Once(at.with_timezone(&Utc))),
        LocalResult::Ambiguous(a, b) => {
            let (a, b) = (a.with_timezone(&Utc), b.with_timezone(&Utc));
            Some(WallInstants::Twice {
                first: a.min(b),
                second: a.max(b),
            })
        }
        LocalResult::None => read_with_offset_before_gap(tz, local).map(WallInstants::Once),
    }
}

/// A time in a skipped hour (a box clock that did not jump) is read with the
/// offset in force before the change: the offset of the nearest earlier
/// whole hour that exists. Gaps are an hour or less in practice; two days
/// bounds the search.
fn read_with_offset_before_gap(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    (1..=48).find_map(|hours| {
        let before = local.checked_sub_signed(TimeDelta::try_hours(hours)?)?;
        let offset = tz.offset_from_local_datetime(&before).latest()?.fix();
        let to_utc = TimeDelta::try_seconds(i64::from(offset.local_minus_utc()))?;
        Some(local.checked_sub_signed(to_utc)?.and_utc())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_event_and_ignores_extra_fields() {
        let line = parse_line("16.11.26 09:14:03;RING;0;06990009245;03023125100;SIP0;extra;").unwrap();
        assert_eq!(line.connection_id, 0);
        assert!(matches!(
            line.event,
            Event::Ring {
                caller: "06990009245",
                callee: "03023125100",
                line: "SIP0"
            }
        ));
        let line = parse_line("16.11.26 09:21:47;DISCONNECT;12;456;").unwrap();
        assert_eq!(line.connection_id, 12);
        assert!(matches!(line.event, Event::Disconnect { duration_seconds: 456 }));
        let line = parse_line("20.11.26 13:08:02;CONNECT;0;10;;").unwrap();
        assert!(matches!(line.event, Event::Connect { extension: "10" }));
    }

    #[test]
    fn rejects_what_notes_call_malformed() {
        for text in [
            "18.11.26 11:05:49;CONN",
            "16.11.26 09:21:47;DISCONNECT;0;456",
            "16.11.26 09:21:47;DISCONNECT;0;;",
            "16.11.26 09:21:47;DISCONNECT;0;4 5;",
            "16.11.26 09:21:47;DISCONNECT;+1;45;",
            "16.11.26 09:21:47;disconnect;0;45;",
            "16.11.26 9:21:47;DISCONNECT;0;45;",
            " 16.11.26 09:21:47;DISCONNECT;0;45;",
            "31.02.26 09:21:47;DISCONNECT;0;45;",
            "16.11.26 24:00:00;DISCONNECT;0;45;",
            "16.11.26 09:14:03;RING;0;06990009245;03023125100;;",
            "16.11.26 09:14:03;CALL;0;10;03023125100;06990009245;;",
            "16.11.26 09:14:03;CONNECT;99999999999;10;;",
            "16.11.26 09:14:03;DISCONNECT;0;99999999999999999999999;",
        ] {
            let err = parse_line(text).err();
            assert_eq!(err.map(|e| e.code()), Some("malformed_payload"), "{text:?}");
        }
    }

    #[test]
    fn local_time_is_strict_and_in_this_century() {
        let at = parse_local_time("29.02.28 23:59:59").unwrap();
        assert_eq!(at.to_string(), "2028-02-29 23:59:59");
        assert_eq!(parse_local_time("29.02.27 23:59:59"), None);
        assert_eq!(parse_local_time("16.11.2026 09:14:03"), None);
        assert_eq!(parse_local_time("16.11.26T09:14:03"), None);
        assert_eq!(parse_local_time("16.11.26 09:14:03:00"), None);
    }
}
