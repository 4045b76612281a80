//! Source adapters: turn what a PBX or provider sent into a normalized
//! [`CallRecord`], an ignorable intermediate event, or a coded error.
//!
//! - [`freeswitch`]: `mod_xml_cdr` XML CDRs (raw, `cdr=` form, base64,
//!   `err-log-dir` files), read as a stream of borrowed `quick-xml` events.
//! - [`twilio`]: Voice status callbacks and `X-Twilio-Signature`.
//! - [`zadarma`]: `NOTIFY_*` webhooks and their `Signature`.
//! - `form`: the form-body reading rules Twilio and Zadarma share.
//! - [`fritzbox`]: the CallMonitor line protocol, a per-box state machine
//!   ([`fritzbox::CallMonitor`]) fed one line at a time.
//!
//! Everything here is pure: no I/O, no clock (the receive time is passed
//! in), no async. Sockets, HTTP, authentication settings, dead letters and
//! the bus live in the binary. Adding a source is one module and one line in
//! [`ADAPTERS`].

mod form;
pub mod freeswitch;
pub mod fritzbox;
pub mod twilio;
pub mod zadarma;

use cdrate_core::{CallRecord, Source};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// What a source's configuration contributes to parsing.
#[derive(Debug, Clone, Copy)]
pub struct ParseContext<'a> {
    /// When ingest received the payload; becomes `received_at`.
    pub received_at: DateTime<Utc>,
    /// Zone of a source that sends local wall-clock times (Zadarma,
    /// Fritz!Box).
    pub timezone: Option<Tz>,
    /// The configured box or PBX id (Fritz!Box box id, Zadarma PBX id).
    pub box_id: Option<&'a str>,
}

/// The result of one payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A final call record.
    Record(Box<CallRecord>),
    /// A valid event that produces no record (e.g. `not_final`: ringing or
    /// answered; the record comes with the final event). Answered 2xx.
    Ignored(&'static str),
    /// A payload that cannot become a record. Answered 4xx and kept as a
    /// dead letter.
    Rejected(IngestError),
}

/// Why a payload was rejected. The code is part of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Not decodable/parsable in the source's format.
    MalformedPayload,
    /// A field the mapping needs is absent or empty.
    MissingField,
    /// A time value is not a valid timestamp or the times are out of order.
    BadTimestamp,
    /// A value has the wrong shape (a duration that is not a number, …).
    BadValue,
    /// The request's signature does not verify.
    BadSignature,
    /// An event type the source does not send or cdrate does not know.
    UnknownEvent,
}

impl ErrorKind {
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::MalformedPayload => "malformed_payload",
            ErrorKind::MissingField => "missing_field",
            ErrorKind::BadTimestamp => "bad_timestamp",
            ErrorKind::BadValue => "bad_value",
            ErrorKind::BadSignature => "bad_signature",
            ErrorKind::UnknownEvent => "unknown_event",
        }
    }
}

/// A rejection with its code and a human detail (never secrets).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {detail}", kind.code())]
pub struct IngestError {
    pub kind: ErrorKind,
    pub detail: String,
}

impl IngestError {
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> IngestError {
        IngestError {
            kind,
            detail: detail.into(),
        }
    }

    pub fn code(&self) -> &'static str {
        self.kind.code()
    }
}

impl From<IngestError> for Outcome {
    fn from(e: IngestError) -> Outcome {
        Outcome::Rejected(e)
    }
}

/// A source whose payloads each stand alone (one HTTP request, one file).
pub trait Adapter: Sync {
    fn source(&self) -> Source;
    /// Maps one raw payload. Never panics, whatever the bytes.
    fn parse(&self, payload: &[u8], ctx: &ParseContext<'_>) -> Outcome;
}

/// Every payload source, one line each.
pub static ADAPTERS: &[&dyn Adapter] = &[&freeswitch::FreeSwitch, &twilio::Twilio, &zadarma::Zadarma];

/// The adapter of `source`, if it is a payload source (Fritz!Box is a line
/// protocol: see [`fritzbox::CallMonitor`]).
pub fn adapter(source: Source) -> Option<&'static dyn Adapter> {
    ADAPTERS.iter().copied().find(|a| a.source() == source)
}
