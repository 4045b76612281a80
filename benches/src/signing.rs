//! Webhook signatures as the providers compute them, for the load tools and
//! the e2e tests: Twilio's `X-Twilio-Signature` and Zadarma's `Signature`.

use base64::Engine as _;
use hmac::{Hmac, Mac};

fn hmac_sha1(key: &str, parts: &[&str]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this never fails.
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key.as_bytes()).unwrap_or_else(|_| unreachable!());
    for p in parts {
        mac.update(p.as_bytes());
    }
    mac.finalize().into_bytes().to_vec()
}

/// Twilio: base64 HMAC-SHA1 over the URL followed by the form's keys and
/// values (decoded) sorted by key.
pub fn twilio(auth_token: &str, url: &str, form: &[(&str, String)]) -> String {
    let mut pairs: Vec<String> = form.iter().map(|(k, v)| format!("{k}{v}")).collect();
    pairs.sort();
    let mut parts = vec![url];
    parts.extend(pairs.iter().map(String::as_str));
    base64::engine::general_purpose::STANDARD.encode(hmac_sha1(auth_token, &parts))
}

/// Zadarma: base64 of the hex HMAC-SHA1 of the event's signed string.
pub fn zadarma(secret: &str, signed: &[&str]) -> String {
    let hex: String = hmac_sha1(secret, signed).iter().map(|b| format!("{b:02x}")).collect();
    base64::engine::general_purpose::STANDARD.encode(hex)
}

/// An `application/x-www-form-urlencoded` body (everything but unreserved
/// characters percent-encoded).
pub fn form_encode(pairs: &[(&str, String)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}
