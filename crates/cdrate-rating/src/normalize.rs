//! Number normalization (DESIGN §6): what a PBX or provider sent as the
//! callee, turned into E.164 digits with the account's [`NumberingPlan`], or
//! recognised as an internal extension.
//!
//! Pure and allocation-light; it never looks at tariffs, so whether a
//! normalized number has a route is the pricer's question, not this one.
//! It does not decide a call's direction either: [`Dialled::Internal`] is
//! what the number looks like, and the rating worker combines it with what
//! the source reported.

use cdrate_core::{E164Error, E164};

/// `extension_length` when an account does not set one.
pub const DEFAULT_EXTENSION_LENGTH: usize = 5;

/// A number that took no prefix rule and has fewer digits than this is a
/// national short number (`118118`) and gets the country code.
const SHORT_NUMBER_DIGITS: usize = 8;

/// How one account's users dial: what its PBX sends in place of `+` and of
/// the country code, and how long its extensions are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberingPlan {
    /// Digits only, e.g. `44`.
    pub country_code: String,
    /// Replaced by the country code, e.g. `0`; empty = none.
    pub national_prefix: String,
    /// Stands for `+`, e.g. `00` or `011`; empty = none.
    pub international_prefix: String,
    /// Cleaned numbers this long or shorter are extensions.
    pub extension_length: usize,
}

/// A callee after normalization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dialled {
    /// A number outside the PBX, in international digits.
    E164(E164),
    /// An extension (or feature code) of the account's own PBX, as cleaned.
    Internal(String),
}

/// Normalizes `raw` with `plan` (DESIGN §6). Errors have code `bad_number`.
///
/// 1. Spaces, `-`, `(`, `)` and `.` are dropped (and surrounding whitespace).
/// 2. **Extensions first.** If what is left is at most `extension_length`
///    characters, all digits, `*` or `#`, and not empty, it is
///    [`Dialled::Internal`]. The check runs on the cleaned number *before*
///    any prefix rule, because extensions routinely begin with a prefix
///    digit: in North America the national prefix is `1` and FusionPBX
///    numbers extensions `1000`, `1001`, …; applying the rules first would
///    turn `1001` into the E.164 number `1001`. A leading `+` is never an
///    extension: `+1001` says "international" in so many words, so it
///    becomes E.164 `1001` and rating decides whether it has a route. `*`
///    and `#` are allowed because feature codes (`*97` voicemail) are
///    dialled on the PBX and never leave it; quarantining them as
///    `bad_number` would be noise the operator cannot fix.
/// 3. The first matching rule of: a leading `+` is dropped; a leading
///    `international_prefix` is dropped; a leading `national_prefix` is
///    replaced by `country_code`. An empty prefix never matches. The order
///    matters where one prefix begins with the other: `0044…` with
///    international `00` and national `0` is international.
/// 4. A number that took none of the rules and has fewer than 8 characters
///    is a national short number (`118118`) and gets the country code.
/// 5. The result must be 1 to 15 digits, else `bad_number`.
pub fn normalize_number(raw: &str, plan: &NumberingPlan) -> Result<Dialled, E164Error> {
    let bad = |reason| E164Error {
        raw: raw.to_owned(),
        reason,
    };
    let cleaned: String = raw
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
        .collect();
    if cleaned.is_empty() {
        return Err(bad("empty"));
    }
    if is_extension(&cleaned, plan.extension_length) {
        return Ok(Dialled::Internal(cleaned));
    }
    let digits = if let Some(rest) = cleaned.strip_prefix('+') {
        rest.to_owned()
    } else if let Some(rest) = strip_prefix_nonempty(&cleaned, &plan.international_prefix) {
        rest.to_owned()
    } else if let Some(rest) = strip_prefix_nonempty(&cleaned, &plan.national_prefix) {
        format!("{}{rest}", plan.country_code)
    } else if cleaned.len() < SHORT_NUMBER_DIGITS {
        format!("{}{cleaned}", plan.country_code)
    } else {
        cleaned
    };
    E164::from_digits(&digits).map(Dialled::E164).map_err(|e| bad(e.reason))
}

fn is_extension(cleaned: &str, extension_length: usize) -> bool {
    cleaned.len() <= extension_length && cleaned.bytes().all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
}

/// `s` without `prefix`, if `prefix` is not empty and begins `s`; an empty
/// prefix must not "match" every number.
fn strip_prefix_nonempty<'s>(s: &'s str, prefix: &str) -> Option<&'s str> {
    if prefix.is_empty() {
        None
    } else {
        s.strip_prefix(prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(country_code: &str, national: &str, international: &str, extension_length: usize) -> NumberingPlan {
        NumberingPlan {
            country_code: country_code.into(),
            national_prefix: national.into(),
            international_prefix: international.into(),
            extension_length,
        }
    }

    fn uk() -> NumberingPlan {
        plan("44", "0", "00", DEFAULT_EXTENSION_LENGTH)
    }

    fn nanp() -> NumberingPlan {
        plan("1", "1", "011", 4)
    }

    enum Want {
        E164(&'static str),
        Internal(&'static str),
        Bad,
    }

    /// Runs every case and fails once, listing all mismatches.
    fn check(plan: &NumberingPlan, cases: &[(&str, Want)]) {
        let mut wrong = Vec::new();
        for (raw, want) in cases {
            let got = normalize_number(raw, plan);
            let ok = match (want, &got) {
                (Want::E164(w), Ok(Dialled::E164(n))) => n.as_str() == *w,
                (Want::Internal(w), Ok(Dialled::Internal(n))) => n == w,
                (Want::Bad, Err(e)) => e.code() == "bad_number" && e.raw == *raw,
                _ => false,
            };
            if !ok {
                wrong.push(format!("{raw:?}: got {got:?}"));
            }
        }
        assert!(wrong.is_empty(), "{plan:?}\n{}", wrong.join("\n"));
    }

    #[test]
    fn uk_plan_applies_each_rule_in_order() {
        use Want::*;
        check(
            &uk(),
            &[
                // Cleaning.
                ("+44 (20) 7946-0123", E164("442079460123")),
                ("020.7946.0123", E164("442079460123")),
                ("  02079460123\t", E164("442079460123")),
                // `+` is dropped once.
                ("+447700900461", E164("447700900461")),
                ("++447700900461", Bad),
                // International before national: `00` wins over `0`.
                ("00442079460123", E164("442079460123")),
                ("0012125550147", E164("12125550147")),
                ("+0044207", E164("0044207")),
                // National prefix becomes the country code.
                ("02079460123", E164("442079460123")),
                ("07700900912", E164("447700900912")),
                // Short national numbers get the country code; 8 digits do not.
                ("118118", E164("44118118")),
                ("1234567", E164("441234567")),
                ("12345678", E164("12345678")),
                ("442079460155", E164("442079460155")),
                // Extensions: at most 5 characters, checked before the rules.
                ("1001", Internal("1001")),
                ("10 01", Internal("1001")),
                ("20021", Internal("20021")),
                ("01234", Internal("01234")),
                ("00", Internal("00")),
                ("*97", Internal("*97")),
                ("#21#", Internal("#21#")),
                ("+1001", E164("1001")),
                ("+44", E164("44")),
                // Rejected.
                ("", Bad),
                ("  ", Bad),
                ("+", Bad),
                ("()-.", Bad),
                ("sip:100@pbx", Bad),
                ("ab", Bad),
                ("0800 CALL NOW", Bad),
                ("08999998412#", Bad),
                ("+4420794601234567", Bad),
                ("0207946012345678", Bad),
                ("+٣٣٣٣٣٣٣٣", Bad),
            ],
        );
    }

    #[test]
    fn nanp_international_011_beats_national_1() {
        use Want::*;
        check(
            &nanp(),
            &[
                ("011 44 20 7946 0123", E164("442079460123")),
                ("01144", E164("44")),
                ("1 (212) 555-0147", E164("12125550147")),
                ("18005550199", E164("18005550199")),
                ("+1 646 555 0172", E164("16465550172")),
                // 4-digit extensions, even those starting with the national prefix.
                ("1001", Internal("1001")),
                ("911", Internal("911")),
                ("10010", E164("10010")),
                ("5550147", E164("15550147")),
                ("2125550147", E164("2125550147")),
            ],
        );
    }

    #[test]
    fn empty_prefixes_never_match() {
        use Want::*;
        // A plan with neither prefix (e.g. a trunk that always sends `+`).
        check(
            &plan("49", "", "", 0),
            &[
                ("+4930231255", E164("4930231255")),
                ("004930231255", E164("004930231255")),
                ("030231255", E164("030231255")),
                ("118", E164("49118")),
                ("1", E164("491")),
            ],
        );
        // Only an international prefix: `0…` is not national.
        check(&plan("49", "", "00", 3), &[("0301234567", E164("0301234567"))]);
        // Only a national prefix.
        check(&plan("49", "0", "", 3), &[("00441234567", E164("490441234567"))]);
    }

    #[test]
    fn extension_length_zero_means_no_extensions() {
        use Want::*;
        check(
            &plan("44", "0", "00", 0),
            &[("1001", E164("441001")), ("00", Bad), ("*97", Bad)],
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_results_are_well_formed(
            raw in proptest::prop_oneof!["\\PC{0,24}", "[+0-9 ()\\-.*#]{0,20}"],
            extension_length in 0usize..8,
            national in "[0-9]{0,2}",
            international in "[0-9]{0,3}",
        ) {
            let plan = plan("44", &national, &international, extension_length);
            match normalize_number(&raw, &plan) {
                Ok(Dialled::E164(n)) => {
                    proptest::prop_assert!(n.as_str().bytes().all(|b| b.is_ascii_digit()));
                    proptest::prop_assert!((1..=15).contains(&n.as_str().len()));
                }
                Ok(Dialled::Internal(ext)) => {
                    proptest::prop_assert!(!ext.is_empty() && ext.len() <= extension_length);
                    proptest::prop_assert!(!ext.starts_with('+'));
                }
                Err(e) => proptest::prop_assert_eq!(e.code(), "bad_number"),
            }
        }
    }
}
