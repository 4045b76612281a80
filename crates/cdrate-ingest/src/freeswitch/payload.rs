//! Rule 1 of the fixture NOTES: getting the XML document out of whatever
//! `mod_xml_cdr` sent or left on disk. A raw body or a `cdr=` plaintext form
//! is borrowed as is; a percent-encoded or base64 body is decoded into one
//! caller-owned buffer. Knows nothing about XML beyond "starts with `<`".

use base64::Engine as _;

use super::malformed;
use crate::IngestError;

/// Returns the document, borrowed from `payload` when it was sent as is, else
/// from `decoded`.
pub(super) fn extract_document<'a>(payload: &'a [u8], decoded: &'a mut Vec<u8>) -> Result<&'a str, IngestError> {
    let text = std::str::from_utf8(payload)
        .map_err(|e| malformed(format!("payload is not UTF-8 (byte {})", e.valid_up_to())))?;
    let text = trim_ws(text);
    if text.is_empty() {
        return Err(malformed("empty payload"));
    }
    if text.starts_with('<') {
        return Ok(text);
    }
    if let Some(value) = text.strip_prefix("cdr=") {
        if value.starts_with('<') {
            // encode=false: the document follows unescaped, `&amp;` and all,
            // so it must not go through a form decoder.
            return Ok(value);
        }
        if value.starts_with('%') {
            // encode=true. The body starts with `cdr=`, so the first field
            // named `cdr` is the first field: everything up to the first `&`.
            let field = value.split_once('&').map_or(value, |(field, _)| field);
            percent_decode(field.as_bytes(), Plus::Space, decoded);
        } else {
            decode_base64(value, decoded)?;
        }
    } else if text.starts_with('%') {
        // An err-log-dir file of encode=true: the POST body without `cdr=`.
        percent_decode(text.as_bytes(), Plus::Space, decoded);
    } else {
        // An err-log-dir file of encode=base64.
        decode_base64(text, decoded)?;
    }
    let decoded: &'a [u8] = decoded;
    let document = std::str::from_utf8(decoded)
        .map_err(|e| malformed(format!("decoded document is not UTF-8 (byte {})", e.valid_up_to())))?;
    Ok(trim_ws(document))
}

/// Whitespace as rule 1 counts it (XML's S; no form feed).
pub(super) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn trim_ws(s: &str) -> &str {
    s.trim_matches([' ', '\t', '\r', '\n'])
}

/// What a `+` means to [`percent_decode`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Plus {
    /// Form encoding (payloads): `+` is a space.
    Space,
    /// `switch_url_encode` (variable values): `+` is itself.
    Literal,
}

/// Appends `input` to `out` with each `%` + two hex digits (either case)
/// turned into that byte; any other `%` stays as it is.
pub(super) fn percent_decode(input: &[u8], plus: Plus, out: &mut Vec<u8>) {
    out.reserve(input.len());
    let mut rest = input;
    // One byte out per step: an encode=true body is mostly escapes, so
    // looking ahead for runs of plain bytes would not pay.
    while let Some((&b, tail)) = rest.split_first() {
        let (byte, after) = match (b, tail) {
            (b'%', [hi, lo, after @ ..]) => match (hex_value(*hi), hex_value(*lo)) {
                (Some(hi), Some(lo)) => (hi << 4 | lo, after),
                _ => (b'%', tail),
            },
            (b'+', _) if plus == Plus::Space => (b' ', tail),
            _ => (b, tail),
        };
        out.push(byte);
        rest = after;
    }
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// Standard-alphabet base64 with padding; ASCII whitespace (line breaks in a
/// hand-wrapped file) is ignored.
fn decode_base64(text: &str, out: &mut Vec<u8>) -> Result<(), IngestError> {
    let engine = &base64::engine::general_purpose::STANDARD;
    // What FreeSWITCH writes has no whitespace: try it as is before copying.
    if engine.decode_vec(text, out).is_ok() {
        return Ok(());
    }
    out.clear();
    let compact: Vec<u8> = text.bytes().filter(|&b| !is_ws(b)).collect();
    engine
        .decode_vec(&compact, out)
        .map_err(|e| malformed(format!("payload is neither XML, a cdr= form nor base64: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(input: &str, plus: Plus) -> Vec<u8> {
        let mut out = Vec::new();
        percent_decode(input.as_bytes(), plus, &mut out);
        out
    }

    #[test]
    fn percent_decode_keeps_what_is_not_an_escape() {
        assert_eq!(decode("a%20b", Plus::Literal), b"a b");
        assert_eq!(decode("%2b%2B", Plus::Literal), b"++");
        assert_eq!(decode("a+b", Plus::Literal), b"a+b");
        assert_eq!(decode("a+b", Plus::Space), b"a b");
        assert_eq!(decode("%", Plus::Literal), b"%");
        assert_eq!(decode("x%4", Plus::Literal), b"x%4");
        assert_eq!(decode("%zz%4g", Plus::Literal), b"%zz%4g");
        assert_eq!(decode("%%41", Plus::Literal), b"%A");
        assert_eq!(decode("%2541", Plus::Literal), b"%41");
    }
}
