//! freeswitch adapter (being written).

use cdrate_core::Source;

use crate::{Adapter, ErrorKind, IngestError, Outcome, ParseContext};

/// The freeswitch source.
pub struct FreeSwitch;

impl Adapter for FreeSwitch {
    fn source(&self) -> Source {
        Source::Freeswitch
    }

    fn parse(&self, _payload: &[u8], _ctx: &ParseContext<'_>) -> Outcome {
        IngestError::new(ErrorKind::MalformedPayload, "not implemented yet").into()
    }
}
