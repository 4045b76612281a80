//! Usage alerts: which fractions of a credit limit a cycle's usage has
//! reached, and the signature of the alert webhook.

use hmac::{Hmac, Mac};
use rust_decimal::Decimal;
use sha2::Sha256;

/// Fractions newly reached when usage goes from `before` to `after`
/// (`usage >= fraction × limit`), minus those `already_fired`, ascending.
/// Nothing for a limit of zero or less.
pub fn crossed(
    fractions: &[Decimal],
    credit_limit: Decimal,
    before: Decimal,
    after: Decimal,
    already_fired: &[Decimal],
) -> Vec<Decimal> {
    if credit_limit <= Decimal::ZERO {
        return Vec::new();
    }
    let mut out: Vec<Decimal> = fractions
        .iter()
        .copied()
        .filter(|f| *f > Decimal::ZERO)
        .filter(|f| {
            let threshold = *f * credit_limit;
            before < threshold && after >= threshold
        })
        .filter(|f| !already_fired.iter().any(|a| a == f))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Hex HMAC-SHA256 of `"<timestamp>.<body>"`: the webhook's
/// `X-Cdrate-Signature` (as `sha256=<hex>`). The timestamp is signed too,
/// so a receiver can refuse replays.
pub fn alert_signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn fractions_fire_once_each() {
        let f = [d("0.8"), d("1.0")];
        assert_eq!(crossed(&f, d("100"), d("0"), d("79.99"), &[]), Vec::<Decimal>::new());
        assert_eq!(crossed(&f, d("100"), d("0"), d("80"), &[]), vec![d("0.8")]);
        assert_eq!(crossed(&f, d("100"), d("0"), d("150"), &[]), vec![d("0.8"), d("1.0")]);
        assert_eq!(crossed(&f, d("100"), d("0"), d("150"), &[d("0.8")]), vec![d("1.0")]);
        assert_eq!(
            crossed(&f, d("100"), d("85"), d("90"), &[]),
            Vec::<Decimal>::new(),
            "already above before"
        );
        assert!(crossed(&f, d("0"), d("0"), d("5"), &[]).is_empty());
    }

    #[test]
    fn signature_matches_a_known_vector() {
        // python3: hmac.new(b"s3cret", b"1700000000.{\"a\":1}", hashlib.sha256).hexdigest()
        assert_eq!(
            alert_signature(b"s3cret", 1_700_000_000, br#"{"a":1}"#),
            "1698a50bc74d1ff1db85c4e0a5297c2ad9fdba245d5737cdb789e4cc6e098940"
        );
    }
}
