//! Form bodies (`application/x-www-form-urlencoded`) as the webhook sources
//! send them, and the reading rules both share: a parameter the mapping
//! reads may be repeated only with the same value, an empty value counts as
//! absent, and numbers are plain digits.

use std::borrow::Cow;

use crate::{ErrorKind, IngestError};

/// `application/x-www-form-urlencoded` per WHATWG: `+` is a space, a name
/// without `=` has an empty value, invalid UTF-8 becomes U+FFFD.
pub(crate) fn decode_form(body: &[u8]) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
    form_urlencoded::parse(body).collect()
}

/// The value of `name` if it is sent (once, or repeatedly with one value);
/// `Err` when it is sent with different values.
pub(crate) fn single_value<'p>(pairs: &'p [(Cow<'p, str>, Cow<'p, str>)], name: &str) -> Result<Option<&'p str>, ()> {
    let mut found = None;
    for (n, v) in pairs {
        if n == name {
            match found {
                Some(seen) if seen != v.as_ref() => return Err(()),
                _ => found = Some(v.as_ref()),
            }
        }
    }
    Ok(found)
}

/// The one value of each parameter the mapping reads.
pub(crate) struct Params<'p>(Vec<(&'static str, &'p str)>);

impl<'p> Params<'p> {
    /// Collects `names` from `pairs`; a name sent twice with different
    /// values is `malformed_payload` (the same value twice is fine).
    pub(crate) fn read(
        pairs: &'p [(Cow<'p, str>, Cow<'p, str>)],
        names: &[&'static str],
    ) -> Result<Params<'p>, IngestError> {
        let mut found = Vec::with_capacity(names.len());
        for &name in names {
            match single_value(pairs, name) {
                Ok(Some(value)) => found.push((name, value)),
                Ok(None) => {}
                Err(()) => return Err(malformed(format!("{name} is sent twice with different values"))),
            }
        }
        Ok(Params(found))
    }

    pub(crate) fn non_empty(&self, name: &str) -> Option<&'p str> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .filter(|v| !v.is_empty())
    }

    /// A present and non-empty value, else `missing_field`.
    pub(crate) fn require(&self, name: &str) -> Result<&'p str, IngestError> {
        self.non_empty(name)
            .ok_or_else(|| IngestError::new(ErrorKind::MissingField, format!("{name} is absent or empty")))
    }
}

/// A non-negative base-10 integer: digits only (`u64::from_str` would also
/// take a leading `+`).
pub(crate) fn parse_seconds(raw: &str) -> Option<u64> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse().ok()
}

/// A `malformed_payload` rejection.
pub(crate) fn malformed(detail: impl Into<String>) -> IngestError {
    IngestError::new(ErrorKind::MalformedPayload, detail)
}
