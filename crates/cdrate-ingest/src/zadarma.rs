//! zadarma adapter (being written).

use cdrate_core::Source;

use crate::{Adapter, ErrorKind, IngestError, Outcome, ParseContext};

/// The zadarma source.
pub struct Zadarma;

impl Adapter for Zadarma {
    fn source(&self) -> Source {
        Source::Zadarma
    }

    fn parse(&self, _payload: &[u8], _ctx: &ParseContext<'_>) -> Outcome {
        IngestError::new(ErrorKind::MalformedPayload, "not implemented yet").into()
    }
}
