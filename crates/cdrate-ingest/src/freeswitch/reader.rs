//! Rule 2 of the fixture NOTES: reading the document. One streaming pass
//! keeps only what the mapping needs (the needed `<variables>`, the
//! caller-profile fields of the callflows, the root's attributes) into a
//! [`Cdr`] that borrows the document.
//!
//! The reader is a hand-written state machine over quick-xml events: the arms
//! of its `(State, Event)` match are the grammar it accepts. quick-xml checks
//! tag nesting; the reader checks the rest of XML 1.0 well-formedness itself
//! (names, attribute syntax, references, legal characters, one root), skipped
//! sections included, because a malformed CDR must become a dead letter
//! rather than a guess. There is no namespace processing (`nolocal:operator`
//! is a plain name) and no DTD (a DOCTYPE is rejected).

use std::borrow::Cow;

use quick_xml::events::attributes::Attributes;
use quick_xml::events::{BytesStart, BytesText, Event};
use quick_xml::Reader;

use super::payload::is_ws;
use super::{lossy, malformed};
use crate::IngestError;

/// Declares [`Var`] from one list, so a variable's enum, element name and
/// place in [`Cdr::vars`] cannot drift apart.
macro_rules! variables {
    ($($var:ident = $name:literal,)*) => {
        /// The channel variables the mapping reads. Only these are kept.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(super) enum Var {
            $($var,)*
        }

        impl Var {
            const COUNT: usize = [$(Var::$var),*].len();

            fn from_name(name: &[u8]) -> Option<Var> {
                match name {
                    $($name => Some(Var::$var),)*
                    _ => None,
                }
            }

            pub(super) fn name(self) -> Cow<'static, str> {
                match self {
                    $(Var::$var => lossy($name),)*
                }
            }
        }
    };
}

variables! {
    Uuid = b"uuid",
    Accountcode = b"accountcode",
    DomainName = b"domain_name",
    CallDirection = b"call_direction",
    StartUepoch = b"start_uepoch",
    StartEpoch = b"start_epoch",
    EndUepoch = b"end_uepoch",
    EndEpoch = b"end_epoch",
    AnswerUepoch = b"answer_uepoch",
    AnswerEpoch = b"answer_epoch",
    Billmsec = b"billmsec",
    Billsec = b"billsec",
    HangupCause = b"hangup_cause",
    SipGatewayName = b"sip_gateway_name",
    SipGateway = b"sip_gateway",
    LastApp = b"last_app",
    LastArg = b"last_arg",
    CallerIdNumber = b"caller_id_number",
    SipFromUser = b"sip_from_user",
    DestinationNumber = b"destination_number",
    SipReqUser = b"sip_req_user",
    SipHangupDisposition = b"sip_hangup_disposition",
    HangupCauseQ850 = b"hangup_cause_q850",
    SipCallId = b"sip_call_id",
    LastBridgeTo = b"last_bridge_to",
    OriginatingLegUuid = b"originating_leg_uuid",
}

/// The `<caller_profile>` fields the mapping reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Field {
    Uuid,
    CallerIdNumber,
    DestinationNumber,
    Context,
}

impl Field {
    const COUNT: usize = Field::Context as usize + 1;

    fn from_name(name: &[u8]) -> Option<Field> {
        Some(match name {
            b"uuid" => Field::Uuid,
            b"caller_id_number" => Field::CallerIdNumber,
            b"destination_number" => Field::DestinationNumber,
            b"context" => Field::Context,
            _ => return None,
        })
    }
}

/// Text as found in the document: references resolved, nothing else done.
/// `Some("")` is an element that was there but empty; first occurrence wins.
pub(super) type Slot<'d> = Option<Cow<'d, str>>;

/// What the mapping needs from one document; everything else was skipped.
#[derive(Default)]
pub(super) struct Cdr<'d> {
    pub(super) core_uuid: Option<String>,
    pub(super) switchname: Option<String>,
    seen_variables: bool,
    /// Indexed by `Var as usize`.
    pub(super) vars: [Slot<'d>; Var::COUNT],
    /// The callflow being read.
    current: Profile<'d>,
    pub(super) first: Option<Profile<'d>>,
    /// The last callflow when there are at least two.
    pub(super) last: Option<Profile<'d>>,
}

/// One `<callflow>`: the direct children of its first `<caller_profile>`.
#[derive(Default)]
pub(super) struct Profile<'d> {
    seen_caller_profile: bool,
    pub(super) has_originator: bool,
    /// Indexed by `Field as usize`.
    pub(super) fields: [Slot<'d>; Field::COUNT],
}

impl<'d> Cdr<'d> {
    // `Var::COUNT`/`Field::COUNT` are the variant counts, so the indexing
    // below cannot fail (and no payload value is ever used as an index).
    fn var_slot(&mut self, var: Var) -> &mut Slot<'d> {
        &mut self.vars[var as usize]
    }

    fn field_slot(&mut self, field: Field) -> &mut Slot<'d> {
        &mut self.current.fields[field as usize]
    }

    fn end_callflow(&mut self) {
        let done = std::mem::take(&mut self.current);
        if self.first.is_none() {
            self.first = Some(done);
        } else {
            self.last = Some(done);
        }
    }

    pub(super) fn last_callflow(&self) -> Option<&Profile<'d>> {
        self.last.as_ref().or(self.first.as_ref())
    }
}

/// Where the reader is, as far as the mapping cares.
#[derive(Clone, Copy, Debug)]
enum Scope {
    Cdr,
    Variables,
    Variable(Var),
    Callflow,
    CallerProfile,
    Field(Field),
}

#[derive(Clone, Copy, Debug)]
enum State {
    /// Before the root element.
    Prolog,
    Inside(Scope),
    /// Inside an element the mapping does not read, `depth` levels down from
    /// `back`. Its content is still checked, only not kept.
    Skip {
        depth: usize,
        back: Scope,
    },
    /// After the root element.
    Epilog,
}

/// Reads a document in one pass of borrowed events.
pub(super) fn read_cdr(document: &str) -> Result<Cdr<'_>, IngestError> {
    if let Some(at) = find_illegal_char(document.as_bytes()) {
        return Err(malformed(format!("byte {at}: a character XML 1.0 does not allow")));
    }
    let mut reader = Reader::from_str(document);
    reader.config_mut().check_comments = true;
    // Whitespace between tags would be an event each, a third of them all.
    // Leading whitespace is trimmed except where text is kept (below).
    reader.config_mut().trim_text_start = true;
    let mut cdr = Cdr::default();
    let mut state = State::Prolog;
    let mut at_start = true;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| malformed(format!("byte {}: {e}", reader.error_position())))?;
        state = match (state, event) {
            // Prolog and epilog: a declaration first, then only comments,
            // processing instructions and whitespace around one root.
            (State::Prolog, Event::Decl(decl)) if at_start => {
                check_decl(&decl)?;
                State::Prolog
            }
            (State::Prolog, Event::Start(e)) if e.name().as_ref() == b"cdr" => {
                cdr.read_root(&e)?;
                State::Inside(Scope::Cdr)
            }
            (State::Prolog, Event::Empty(e)) if e.name().as_ref() == b"cdr" => {
                cdr.read_root(&e)?;
                State::Epilog
            }
            (State::Prolog, Event::Start(e) | Event::Empty(e)) => {
                return Err(malformed(format!(
                    "root element is <{}>, not <cdr>",
                    lossy(e.name().as_ref())
                )));
            }
            (State::Epilog, Event::Eof) => return Ok(cdr),
            (outside @ (State::Prolog | State::Epilog), Event::Text(t)) if t.iter().all(|&b| is_ws(b)) => outside,

            // Anywhere: what XML allows but the mapping ignores, and what it
            // never allows.
            (_, Event::DocType(_)) => return Err(malformed("a DOCTYPE is not accepted")),
            (_, Event::Decl(_)) => return Err(malformed("XML declaration after the start")),
            (any, Event::Comment(c)) => {
                check_comment(&c)?;
                any
            }
            (any, Event::PI(pi)) => {
                check_pi_target(pi.target())?;
                any
            }
            (_, Event::Eof) => return Err(malformed("document ends before its root element is closed")),
            (State::Prolog | State::Epilog, _) => return Err(malformed("content outside the root element")),

            // <cdr>: the first <variables>, every <callflow>.
            (State::Inside(Scope::Cdr), Event::Start(e))
                if e.name().as_ref() == b"variables" && !cdr.seen_variables =>
            {
                check_start(&e)?;
                cdr.seen_variables = true;
                State::Inside(Scope::Variables)
            }
            (State::Inside(Scope::Cdr), Event::Empty(e)) if e.name().as_ref() == b"variables" => {
                check_start(&e)?;
                cdr.seen_variables = true;
                State::Inside(Scope::Cdr)
            }
            (State::Inside(Scope::Cdr), Event::Start(e)) if e.name().as_ref() == b"callflow" => {
                check_start(&e)?;
                State::Inside(Scope::Callflow)
            }
            (State::Inside(Scope::Cdr), Event::Empty(e)) if e.name().as_ref() == b"callflow" => {
                check_start(&e)?;
                cdr.end_callflow();
                State::Inside(Scope::Cdr)
            }

            // <variables>: the first element of each needed name.
            (State::Inside(Scope::Variables), Event::Start(e)) => {
                check_start(&e)?;
                match Var::from_name(e.name().as_ref()) {
                    Some(var) if cdr.var_slot(var).is_none() => {
                        *cdr.var_slot(var) = Some(Cow::Borrowed(""));
                        State::Inside(Scope::Variable(var))
                    }
                    _ => State::Skip {
                        depth: 1,
                        back: Scope::Variables,
                    },
                }
            }
            (State::Inside(Scope::Variables), Event::Empty(e)) => {
                check_start(&e)?;
                if let Some(var) = Var::from_name(e.name().as_ref()) {
                    cdr.var_slot(var).get_or_insert(Cow::Borrowed(""));
                }
                State::Inside(Scope::Variables)
            }

            // <callflow>: its first <caller_profile>; there, the needed
            // fields and whether an <originator> is present.
            (State::Inside(Scope::Callflow), Event::Start(e))
                if e.name().as_ref() == b"caller_profile" && !cdr.current.seen_caller_profile =>
            {
                check_start(&e)?;
                cdr.current.seen_caller_profile = true;
                State::Inside(Scope::CallerProfile)
            }
            (State::Inside(Scope::Callflow), Event::Empty(e)) if e.name().as_ref() == b"caller_profile" => {
                check_start(&e)?;
                cdr.current.seen_caller_profile = true;
                State::Inside(Scope::Callflow)
            }
            (State::Inside(Scope::CallerProfile), Event::Start(e)) if e.name().as_ref() == b"originator" => {
                check_start(&e)?;
                cdr.current.has_originator = true;
                State::Skip {
                    depth: 1,
                    back: Scope::CallerProfile,
                }
            }
            (State::Inside(Scope::CallerProfile), Event::Empty(e)) if e.name().as_ref() == b"originator" => {
                check_start(&e)?;
                cdr.current.has_originator = true;
                State::Inside(Scope::CallerProfile)
            }
            (State::Inside(Scope::CallerProfile), Event::Start(e)) => {
                check_start(&e)?;
                match Field::from_name(e.name().as_ref()) {
                    Some(field) if cdr.field_slot(field).is_none() => {
                        *cdr.field_slot(field) = Some(Cow::Borrowed(""));
                        State::Inside(Scope::Field(field))
                    }
                    _ => State::Skip {
                        depth: 1,
                        back: Scope::CallerProfile,
                    },
                }
            }
            (State::Inside(Scope::CallerProfile), Event::Empty(e)) => {
                check_start(&e)?;
                if let Some(field) = Field::from_name(e.name().as_ref()) {
                    cdr.field_slot(field).get_or_insert(Cow::Borrowed(""));
                }
                State::Inside(Scope::CallerProfile)
            }

            // The text of a needed variable or field: character data, CDATA
            // and references, in order.
            (State::Inside(scope @ Scope::Variable(var)), Event::Text(t)) => {
                append_text(cdr.var_slot(var), t)?;
                State::Inside(scope)
            }
            (State::Inside(scope @ Scope::Field(field)), Event::Text(t)) => {
                append_text(cdr.field_slot(field), t)?;
                State::Inside(scope)
            }
            (State::Inside(scope @ Scope::Variable(var)), Event::CData(c)) => {
                append_str(cdr.var_slot(var), utf8(c.into_inner())?);
                State::Inside(scope)
            }
            (State::Inside(scope @ Scope::Field(field)), Event::CData(c)) => {
                append_str(cdr.field_slot(field), utf8(c.into_inner())?);
                State::Inside(scope)
            }
            (State::Inside(scope @ Scope::Variable(var)), Event::GeneralRef(r)) => {
                push_char(cdr.var_slot(var), resolve_reference(&r)?);
                State::Inside(scope)
            }
            (State::Inside(scope @ Scope::Field(field)), Event::GeneralRef(r)) => {
                push_char(cdr.field_slot(field), resolve_reference(&r)?);
                State::Inside(scope)
            }

            // Closing a scope returns to its parent.
            (State::Inside(scope), Event::End(_)) => match scope {
                Scope::Cdr => State::Epilog,
                Scope::Variables => State::Inside(Scope::Cdr),
                Scope::Variable(_) => State::Inside(Scope::Variables),
                Scope::Callflow => {
                    cdr.end_callflow();
                    State::Inside(Scope::Cdr)
                }
                Scope::CallerProfile => State::Inside(Scope::Callflow),
                Scope::Field(_) => State::Inside(Scope::CallerProfile),
            },

            // Everything else is content the mapping skips on purpose; it is
            // checked, not kept.
            (State::Inside(scope), Event::Start(e)) => {
                check_start(&e)?;
                State::Skip { depth: 1, back: scope }
            }
            (State::Skip { depth, back }, Event::Start(e)) => {
                check_start(&e)?;
                State::Skip {
                    depth: depth.saturating_add(1),
                    back,
                }
            }
            (State::Skip { depth: 1, back }, Event::End(_)) => State::Inside(back),
            (State::Skip { depth, back }, Event::End(_)) => State::Skip {
                depth: depth.saturating_sub(1),
                back,
            },
            (inside, Event::Empty(e)) => {
                check_start(&e)?;
                inside
            }
            (inside, Event::Text(t)) => {
                check_text(&t)?;
                inside
            }
            (inside, Event::GeneralRef(r)) => {
                resolve_reference(&r)?;
                inside
            }
            (inside, Event::CData(_)) => inside,
        };
        at_start = false;
        reader.config_mut().trim_text_start = !matches!(state, State::Inside(Scope::Variable(_) | Scope::Field(_)));
    }
}

impl Cdr<'_> {
    /// Checks the root element and keeps the attributes rule 9 reports.
    fn read_root(&mut self, root: &BytesStart<'_>) -> Result<(), IngestError> {
        check_start(root)?;
        for attr in root.attributes().flatten() {
            let slot = match attr.key.as_ref() {
                b"core-uuid" => &mut self.core_uuid,
                b"switchname" => &mut self.switchname,
                _ => continue,
            };
            let value = attr_value(&attr.value)?;
            if !value.is_empty() {
                *slot = Some(value.into_owned());
            }
        }
        Ok(())
    }
}

/// Appends a text event to a slot, with line ends normalized (XML 1.0 §2.11).
fn append_text<'d>(slot: &mut Slot<'d>, text: BytesText<'d>) -> Result<(), IngestError> {
    check_text(&text)?;
    append_str(slot, utf8(text.into_inner())?);
    Ok(())
}

fn append_str<'d>(slot: &mut Slot<'d>, text: Cow<'d, str>) {
    let Some(value) = slot else { return };
    if text.contains('\r') {
        value.to_mut().push_str(&text.replace("\r\n", "\n").replace('\r', "\n"));
    } else if value.is_empty() {
        // The usual case, one piece of text: keep borrowing the document.
        *value = text;
    } else {
        value.to_mut().push_str(&text);
    }
}

fn push_char(slot: &mut Slot<'_>, c: char) {
    if let Some(value) = slot {
        value.to_mut().push(c);
    }
}

fn utf8(bytes: Cow<'_, [u8]>) -> Result<Cow<'_, str>, IngestError> {
    match bytes {
        Cow::Borrowed(b) => std::str::from_utf8(b)
            .map(Cow::Borrowed)
            .map_err(|_| malformed("text is not UTF-8")),
        Cow::Owned(b) => String::from_utf8(b)
            .map(Cow::Owned)
            .map_err(|_| malformed("text is not UTF-8")),
    }
}

/// Character data may not contain `]]>`.
fn check_text(text: &[u8]) -> Result<(), IngestError> {
    if text.contains(&b'>') && text.windows(3).any(|w| w == b"]]>") {
        return Err(malformed("`]]>` in character data"));
    }
    Ok(())
}

/// A start or empty tag: a valid name and well-formed, unique attributes.
fn check_start(e: &BytesStart<'_>) -> Result<(), IngestError> {
    let name = e.name();
    if !is_xml_name(name.as_ref()) {
        return Err(malformed(format!("<{}>: not an XML name", lossy(name.as_ref()))));
    }
    check_attributes(e.attributes_raw()).map_err(|why| malformed(format!("<{}>: {why}", lossy(name.as_ref()))))
}

/// `(S Name S? = S? AttValue)* S?`, with unique names (XML 1.0 §3.1). Checked
/// here in one pass per value rather than with quick-xml's attribute iterator,
/// which scans each value twice and allocates per element for the duplicate
/// check; every start tag of every CDR goes through this.
fn check_attributes(raw: &[u8]) -> Result<(), Cow<'static, str>> {
    // Tags rarely have more than a few attributes: their names are
    // remembered on the stack, and only a crowd spills into a Vec.
    const KEPT: usize = 8;
    let mut kept: [&[u8]; KEPT] = [&[]; KEPT];
    let mut spilled: Vec<&[u8]> = Vec::new();
    let mut count = 0usize;
    let mut rest = raw;
    loop {
        let next = trim_start_ws(rest);
        if next.is_empty() {
            return Ok(());
        }
        if next.len() == rest.len() {
            return Err("attributes must be separated by whitespace".into());
        }
        let key_len = next.iter().position(|&b| b == b'=' || is_ws(b)).unwrap_or(next.len());
        let (key, after_key) = next.split_at(key_len);
        if !is_xml_name(key) {
            return Err(format!("bad attribute name {:?}", lossy(key)).into());
        }
        if kept.iter().take(count).chain(&spilled).any(|&seen| seen == key) {
            return Err(format!("duplicate attribute {:?}", lossy(key)).into());
        }
        match kept.get_mut(count) {
            Some(slot) => *slot = key,
            None => spilled.push(key),
        }
        count = count.saturating_add(1);
        let [b'=', after_eq @ ..] = trim_start_ws(after_key) else {
            return Err(format!("attribute {:?} without `=`", lossy(key)).into());
        };
        let [quote @ (b'"' | b'\''), value @ ..] = trim_start_ws(after_eq) else {
            return Err(format!("attribute {:?} without a quoted value", lossy(key)).into());
        };
        rest = skip_attr_value(value, *quote)?;
    }
}

/// Checks an attribute value up to its closing `quote` (no `<`, references
/// that resolve) and returns what follows the quote.
fn skip_attr_value(value: &[u8], quote: u8) -> Result<&[u8], Cow<'static, str>> {
    let mut rest = value;
    loop {
        let at = rest
            .iter()
            .position(|&b| b == quote || b == b'<' || b == b'&')
            .ok_or("unterminated attribute value")?;
        let (_, tail) = rest.split_at(at);
        match tail {
            [b'<', ..] => return Err("`<` in an attribute value".into()),
            [b'&', reference @ ..] => {
                let semi = reference
                    .iter()
                    .position(|&b| b == b';')
                    .ok_or("unterminated reference in an attribute value")?;
                let (name, after) = reference.split_at(semi);
                resolve_reference(name).map_err(|e| e.detail)?;
                rest = after.get(1..).unwrap_or_default();
            }
            [_closing_quote, after @ ..] => return Ok(after),
            [] => return Err("unterminated attribute value".into()),
        }
    }
}

fn trim_start_ws(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| !is_ws(b)).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

/// An attribute value with references resolved and whitespace normalized
/// (XML 1.0 §3.3.3); a `<` or an unknown reference is malformed.
fn attr_value(raw: &[u8]) -> Result<Cow<'_, str>, IngestError> {
    let text = std::str::from_utf8(raw).map_err(|_| malformed("attribute value is not UTF-8"))?;
    let special = |b: &u8| matches!(b, b'<' | b'&' | b'\t' | b'\r' | b'\n');
    if !raw.iter().any(special) {
        return Ok(Cow::Borrowed(text));
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.as_bytes().iter().position(special) {
        out.push_str(rest.get(..at).unwrap_or_default());
        let tail = rest.get(at..).unwrap_or_default();
        rest = match tail.as_bytes() {
            [b'<', ..] => return Err(malformed("`<` in an attribute value")),
            [b'&', ..] => {
                let semi = tail
                    .find(';')
                    .ok_or_else(|| malformed("unterminated reference in an attribute value"))?;
                out.push(resolve_reference(tail.get(1..semi).unwrap_or_default().as_bytes())?);
                tail.get(semi + 1..).unwrap_or_default()
            }
            // CR LF is one line end, hence one space.
            [b'\r', b'\n', ..] => {
                out.push(' ');
                tail.get(2..).unwrap_or_default()
            }
            _ => {
                out.push(' ');
                tail.get(1..).unwrap_or_default()
            }
        };
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

/// The character a reference (`&name;` without `&` and `;`) stands for. With
/// no DTD, only the five predefined entities and character references exist.
fn resolve_reference(name: &[u8]) -> Result<char, IngestError> {
    let code = match name {
        b"lt" => return Ok('<'),
        b"gt" => return Ok('>'),
        b"amp" => return Ok('&'),
        b"apos" => return Ok('\''),
        b"quot" => return Ok('"'),
        [b'#', b'x', hex @ ..] => parse_radix(hex, 16),
        [b'#', decimal @ ..] => parse_radix(decimal, 10),
        _ => None,
    };
    code.and_then(char::from_u32)
        .filter(|&c| is_xml_char(c))
        .ok_or_else(|| malformed(format!("unknown or illegal reference &{};", lossy(name))))
}

fn parse_radix(digits: &[u8], radix: u32) -> Option<u32> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u32, |acc, &d| {
        let digit = char::from(d).to_digit(radix)?;
        acc.checked_mul(radix)?.checked_add(digit)
    })
}

/// XML 1.0 `Char`.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// The position of the first character XML 1.0 forbids: a C0 control other
/// than tab, LF and CR, or U+FFFE/U+FFFF (`EF BF BE`/`EF BF BF`). The
/// document is valid UTF-8, so no surrogate can occur.
fn find_illegal_char(doc: &[u8]) -> Option<usize> {
    const CHUNK: usize = 64;
    let suspect = |b: u8| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0xEF;
    for (n, chunk) in doc.chunks(CHUNK).enumerate() {
        // A branch-free fold the compiler vectorizes: most chunks are clean.
        if !chunk.iter().fold(false, |hit, &b| hit | suspect(b)) {
            continue;
        }
        let base = n.saturating_mul(CHUNK);
        for (i, &b) in chunk.iter().enumerate() {
            let at = base.saturating_add(i);
            let illegal = if b == 0xEF {
                matches!(
                    doc.get(at.saturating_add(1)..at.saturating_add(3)),
                    Some([0xBF, 0xBE | 0xBF])
                )
            } else {
                suspect(b)
            };
            if illegal {
                return Some(at);
            }
        }
    }
    None
}

/// XML 1.0 (fifth edition) `Name`. Colons are ordinary name characters here:
/// no namespace processing.
fn is_xml_name(name: &[u8]) -> bool {
    let Some((&first, rest)) = name.split_first() else {
        return false;
    };
    let class = |b: u8| ASCII_NAME_CLASS.get(usize::from(b)).copied().unwrap_or(0);
    if class(first) & NAME_START != 0 && rest.iter().all(|&b| class(b) & NAME_CHAR != 0) {
        return true;
    }
    // Non-ASCII names, and the rejections, take the exact route.
    let Ok(name) = std::str::from_utf8(name) else {
        return false;
    };
    let mut chars = name.chars();
    chars.next().is_some_and(is_name_start_char) && chars.all(|c| is_name_start_char(c) || is_name_char(c))
}

const NAME_START: u8 = 1;
const NAME_CHAR: u8 = 2;

/// `NameStartChar`/`NameChar` for ASCII, one table lookup per byte on the
/// hot path; bytes ≥ 0x80 are left to [`is_name_start_char`].
static ASCII_NAME_CLASS: [u8; 128] = {
    let mut table = [0u8; 128];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        if c.is_ascii_alphabetic() || c == b'_' || c == b':' {
            table[b] = NAME_START | NAME_CHAR;
        } else if c.is_ascii_digit() || c == b'-' || c == b'.' {
            table[b] = NAME_CHAR;
        }
        b += 1;
    }
    table
};

fn is_name_start_char(c: char) -> bool {
    matches!(c,
        ':' | 'A'..='Z' | '_' | 'a'..='z' | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}'
        | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}' | '\u{2070}'..='\u{218F}'
        | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}' | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}'
        | '\u{10000}'..='\u{EFFFF}')
}

fn is_name_char(c: char) -> bool {
    matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// `version="1.x"`, then optionally `encoding` (UTF-8 only: the bytes were
/// already read as UTF-8) and `standalone`, in that order.
fn check_decl(decl: &[u8]) -> Result<(), IngestError> {
    // quick-xml hands over the declaration from its name on: `xml version=…`.
    let text = std::str::from_utf8(decl).map_err(|_| malformed("XML declaration is not UTF-8"))?;
    let text = text.strip_prefix("xml").unwrap_or(text);
    let mut next_rank = 0;
    for attr in Attributes::new(text, 0) {
        let attr = attr.map_err(|e| malformed(format!("XML declaration: {e}")))?;
        let value = attr.value.as_ref();
        let (rank, ok) = match attr.key.as_ref() {
            b"version" => (0, is_xml_1_version(value)),
            b"encoding" => (1, value.eq_ignore_ascii_case(b"UTF-8")),
            b"standalone" => (2, value == b"yes" || value == b"no"),
            _ => (3, false),
        };
        if !ok || rank < next_rank || (next_rank == 0 && rank != 0) {
            return Err(malformed(format!(
                "XML declaration: bad `{}`",
                lossy(attr.key.as_ref())
            )));
        }
        next_rank = rank + 1;
    }
    if next_rank == 0 {
        return Err(malformed("XML declaration without a version"));
    }
    Ok(())
}

/// XML 1.0's `VersionNum`: `1.` and digits.
fn is_xml_1_version(value: &[u8]) -> bool {
    match value {
        [b'1', b'.', minor @ ..] => !minor.is_empty() && minor.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

/// quick-xml finds `--` inside a comment; a comment may not end in `-` either.
fn check_comment(comment: &[u8]) -> Result<(), IngestError> {
    if comment.ends_with(b"-") {
        return Err(malformed("comment ends with `-`"));
    }
    Ok(())
}

/// A processing instruction's target is a name, and not `xml` in any case.
fn check_pi_target(target: &[u8]) -> Result<(), IngestError> {
    if !is_xml_name(target) || target.eq_ignore_ascii_case(b"xml") {
        return Err(malformed(format!(
            "bad processing instruction target {:?}",
            lossy(target)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn xml_names_follow_xml_1_0_without_namespaces() {
        for good in ["cdr", "nolocal:operator", ":x", "_a-b.c9", "Bäckerei", "a·b"] {
            assert!(is_xml_name(good.as_bytes()), "{good:?}");
        }
        for bad in ["", "1234", "^^,default_language", "set api", "-a", ".a", "a/", "a<b"] {
            assert!(!is_xml_name(bad.as_bytes()), "{bad:?}");
        }
    }

    #[test]
    fn references_are_the_predefined_five_or_legal_characters() {
        assert_eq!(resolve_reference(b"amp").ok(), Some('&'));
        assert_eq!(resolve_reference(b"#xE4").ok(), Some('ä'));
        assert_eq!(resolve_reference(b"#228").ok(), Some('ä'));
        for bad in [
            &b"nbsp"[..],
            b"#x",
            b"#",
            b"#0",
            b"#x1",
            b"#xD800",
            b"#x110000",
            b"#X41",
            b"#99999999999",
        ] {
            assert_eq!(
                resolve_reference(bad).map_err(|e| e.kind),
                Err(ErrorKind::MalformedPayload),
                "{:?}",
                lossy(bad)
            );
        }
    }

    #[test]
    fn illegal_characters_are_found_across_chunk_edges() {
        assert_eq!(find_illegal_char(b"<a>\t\r\n</a>"), None);
        assert_eq!(find_illegal_char("<a>\u{FFFD}ä</a>".as_bytes()), None);
        let mut doc = vec![b' '; 63];
        doc.extend_from_slice("\u{FFFE}".as_bytes());
        assert_eq!(find_illegal_char(&doc), Some(63));
        assert_eq!(find_illegal_char(b"ab\x01"), Some(2));
    }
}
