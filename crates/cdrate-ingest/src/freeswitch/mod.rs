//! FreeSWITCH `mod_xml_cdr` CDRs into [`CallRecord`](cdrate_core::CallRecord)s, following the mapping
//! rules of `shared/fixtures/ingest/freeswitch/NOTES.md` (rule numbers in
//! this module and its children are that file's).
//!
//! One payload goes through three steps, one submodule each:
//! - [`payload`]: finds the XML in whatever the module sent or left on disk
//!   (rule 1);
//! - [`reader`]: reads it in one streaming pass, keeping only what the
//!   mapping needs and checking the whole document is well-formed (rule 2);
//! - [`map`]: turns that into a record or a coded error (rules 3–10).
//!
//! Hot path: the reader borrows the document itself, so no DOM is built;
//! elements the mapping does not read are checked and skipped without
//! decoding their text; a value is copied only when it holds a reference, and
//! percent-decoded only when the mapping reads it and it holds a `%`. A raw
//! XML body is never copied; an encoded one costs one decode buffer. The
//! other allocations are the record's own strings.
//!
//! No input makes it panic: numbers from the payload use checked arithmetic,
//! and slices are taken with `get`.

use std::borrow::Cow;

use cdrate_core::Source;

use crate::{Adapter, ErrorKind, IngestError, Outcome, ParseContext};

mod map;
mod payload;
mod reader;

/// The FreeSWITCH source: one XML CDR per call leg.
pub struct FreeSwitch;

impl Adapter for FreeSwitch {
    fn source(&self) -> Source {
        Source::Freeswitch
    }

    fn parse(&self, payload: &[u8], ctx: &ParseContext<'_>) -> Outcome {
        let mut decoded = Vec::new();
        let record = payload::extract_document(payload, &mut decoded)
            .and_then(reader::read_cdr)
            .and_then(|cdr| map::map_record(&cdr, ctx.received_at));
        match record {
            Ok(record) => Outcome::Record(Box::new(record)),
            Err(e) => Outcome::Rejected(e),
        }
    }
}

fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

fn malformed(detail: impl Into<String>) -> IngestError {
    IngestError::new(ErrorKind::MalformedPayload, detail)
}

fn missing(detail: impl Into<String>) -> IngestError {
    IngestError::new(ErrorKind::MissingField, detail)
}

fn bad_timestamp(detail: impl Into<String>) -> IngestError {
    IngestError::new(ErrorKind::BadTimestamp, detail)
}
