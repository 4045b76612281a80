//! [`E164`]: a phone number as international digits without the `+`.
//!
//! This is the only form rating sees. Turning what a PBX sent (`0207…`,
//! `00 44 …`, `118118`) into it needs the account's numbering plan and lives
//! in `cdrate-rating`; this type only guarantees the result is 1 to 15 ASCII
//! digits, the E.164 maximum.

use std::fmt;

use serde::{Deserialize, Serialize};

/// International digits of a number, e.g. `442071234567`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct E164(String);

/// Longest number E.164 allows.
pub const E164_MAX_DIGITS: usize = 15;

/// Why a number could not be read as E.164.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{raw:?} is not an E.164 number: {reason}")]
pub struct E164Error {
    pub raw: String,
    pub reason: &'static str,
}

impl E164Error {
    pub fn code(&self) -> &'static str {
        "bad_number"
    }
}

impl E164 {
    /// Accepts digits only (1..=15), as produced by normalization.
    pub fn from_digits(digits: &str) -> Result<E164, E164Error> {
        let err = |reason| E164Error {
            raw: digits.to_owned(),
            reason,
        };
        if digits.is_empty() {
            return Err(err("empty"));
        }
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("contains a character that is not a digit"));
        }
        if digits.len() > E164_MAX_DIGITS {
            return Err(err("longer than 15 digits"));
        }
        Ok(E164(digits.to_owned()))
    }

    /// Reads a number already in international form: `+44 20 7123-4567`,
    /// `(44) 2071234567`, `442071234567`. Spaces, `-`, `(`, `)` and `.` are
    /// dropped, then one leading `+`.
    pub fn parse_international(raw: &str) -> Result<E164, E164Error> {
        let cleaned: String = raw
            .trim()
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
            .collect();
        let digits = cleaned.strip_prefix('+').unwrap_or(&cleaned);
        E164::from_digits(digits).map_err(|e| E164Error {
            raw: raw.to_owned(),
            reason: e.reason,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for E164 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        E164::from_digits(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "E164({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn international_forms_reduce_to_digits() {
        for (raw, want) in [
            ("+12125551234", "12125551234"),
            ("+44 20 7123-4567", "442071234567"),
            ("(44) 20.7123.4567", "442071234567"),
            ("254712345678", "254712345678"),
            (" +1 ", "1"),
        ] {
            assert_eq!(E164::parse_international(raw).unwrap().as_str(), want, "{raw}");
        }
    }

    #[test]
    fn non_numbers_are_bad_number() {
        for raw in ["", "+", "++44", "44x1", "sip:100@pbx", "1234567890123456", "+٣٣"] {
            let err = E164::parse_international(raw).unwrap_err();
            assert_eq!(err.code(), "bad_number", "{raw}");
        }
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics_and_output_is_digits(raw in "\\PC{0,24}") {
            if let Ok(n) = E164::parse_international(&raw) {
                proptest::prop_assert!(n.as_str().bytes().all(|b| b.is_ascii_digit()));
                proptest::prop_assert!((1..=E164_MAX_DIGITS).contains(&n.as_str().len()));
            }
        }
    }
}
