//! twilio adapter (being written).

use cdrate_core::Source;

use crate::{Adapter, ErrorKind, IngestError, Outcome, ParseContext};

/// The twilio source.
pub struct Twilio;

impl Adapter for Twilio {
    fn source(&self) -> Source {
        Source::Twilio
    }

    fn parse(&self, _payload: &[u8], _ctx: &ParseContext<'_>) -> Outcome {
        IngestError::new(ErrorKind::MalformedPayload, "not implemented yet").into()
    }
}
