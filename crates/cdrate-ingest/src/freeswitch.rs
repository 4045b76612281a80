//! FreeSWITCH `mod_xml_cdr` CDRs into [`CallRecord`]s, following the mapping
//! rules of `shared/fixtures/ingest/freeswitch/NOTES.md` (rule numbers below
//! are that file's).
//!
//! One payload goes through three steps: `extract_document` finds the XML
//! in whatever the module sent or left on disk (rule 1), `read_cdr` reads it
//! in one streaming pass and keeps only what the mapping needs (rule 2), and
//! `map_record` turns that into a record or a coded error (rules 3–10).
//!
//! The reader is a hand-written state machine over quick-xml events: the arms
//! of its `(State, Event)` match are the grammar it accepts. quick-xml checks
//! tag nesting; the reader checks the rest of XML 1.0 well-formedness itself
//! (names, attribute syntax, references, legal characters, one root), because
//! a malformed CDR must become a dead letter rather than a guess. There is no
//! namespace processing (`nolocal:operator` is a plain name) and no DTD (a
//! DOCTYPE is rejected).
//!
//! Hot path: events borrow the document itself (quick-xml's slice reader), so
//! no event buffer is filled and no DOM is built; elements the mapping does not
//! read are skipped without decoding their text; a value is copied only when
//! it holds a reference, and percent-decoded only when the mapping reads it and
//! it holds a `%`. A raw XML body is never copied; an encoded one costs one
//! decode buffer. The other allocations are the record's own strings.
//!
//! No input makes it panic: numbers from the payload use checked arithmetic,
//! and slices are taken with `get`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use base64::Engine as _;
use cdrate_core::{CallRecord, Direction, Disposition, Source, CALL_SCHEMA};
use chrono::{DateTime, Utc};
use quick_xml::events::attributes::Attributes;
use quick_xml::events::{BytesStart, BytesText, Event};
use quick_xml::Reader;

use crate::{Adapter, ErrorKind, IngestError, Outcome, ParseContext};

/// The FreeSWITCH source: one XML CDR per call leg.
pub struct FreeSwitch;

impl Adapter for FreeSwitch {
    fn source(&self) -> Source {
        Source::Freeswitch
    }

    fn parse(&self, payload: &[u8], ctx: &ParseContext<'_>) -> Outcome {
        let mut decoded = Vec::new();
        let record = extract_document(payload, &mut decoded)
            .and_then(read_cdr)
            .and_then(|cdr| map_record(&cdr, ctx.received_at));
        match record {
            Ok(record) => Outcome::Record(Box::new(record)),
            Err(e) => Outcome::Rejected(e),
        }
    }
}

// ---------------------------------------------------------------------------
// Rule 1: getting the document out of a payload.

/// Returns the document, borrowed from `payload` when it was sent as is, else
/// from `decoded`.
fn extract_document<'a>(payload: &'a [u8], decoded: &'a mut Vec<u8>) -> Result<&'a str, IngestError> {
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
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn trim_ws(s: &str) -> &str {
    s.trim_matches([' ', '\t', '\r', '\n'])
}

/// What a `+` means to [`percent_decode`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Plus {
    /// Form encoding (payloads): `+` is a space.
    Space,
    /// `switch_url_encode` (variable values): `+` is itself.
    Literal,
}

/// Appends `input` to `out` with each `%` + two hex digits (either case)
/// turned into that byte; any other `%` stays as it is.
fn percent_decode(input: &[u8], plus: Plus, out: &mut Vec<u8>) {
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

// ---------------------------------------------------------------------------
// Rule 2: reading the document.

/// Declares [`Var`] from one list, so a variable's enum, element name and
/// place in [`Cdr::vars`] cannot drift apart.
macro_rules! variables {
    ($($var:ident = $name:literal,)*) => {
        /// The channel variables the mapping reads. Only these are kept.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        enum Var {
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

            fn name(self) -> Cow<'static, str> {
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
enum Field {
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
type Slot<'d> = Option<Cow<'d, str>>;

/// What the mapping needs from one document; everything else was skipped.
#[derive(Default)]
struct Cdr<'d> {
    core_uuid: Option<String>,
    switchname: Option<String>,
    seen_variables: bool,
    /// Indexed by `Var as usize`.
    vars: [Slot<'d>; Var::COUNT],
    /// The callflow being read.
    current: Profile<'d>,
    first: Option<Profile<'d>>,
    /// The last callflow when there are at least two.
    last: Option<Profile<'d>>,
}

/// One `<callflow>`: the direct children of its first `<caller_profile>`.
#[derive(Default)]
struct Profile<'d> {
    seen_caller_profile: bool,
    has_originator: bool,
    /// Indexed by `Field as usize`.
    fields: [Slot<'d>; Field::COUNT],
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

    fn last_callflow(&self) -> Option<&Profile<'d>> {
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
fn read_cdr(document: &str) -> Result<Cdr<'_>, IngestError> {
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

fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

// ---------------------------------------------------------------------------
// Rules 3–10: the record.

fn map_record(cdr: &Cdr<'_>, received_at: DateTime<Utc>) -> Result<CallRecord, IngestError> {
    // Rule 3. `call_uuid` is not read: on a b-leg it can name the a-leg.
    let uuid = cdr
        .var(Var::Uuid)
        .or_else(|| cdr.first_field(Field::Uuid))
        .ok_or_else(|| missing("no uuid variable and no uuid in the first callflow"))?;
    let account_key = cdr
        .var(Var::Accountcode)
        .or_else(|| cdr.var(Var::DomainName))
        .ok_or_else(|| missing("neither accountcode nor domain_name"))?;

    // Rule 4.
    let start = cdr
        .micros(Var::StartUepoch, Var::StartEpoch)?
        .ok_or_else(|| missing("neither start_uepoch nor start_epoch"))?;
    let end = cdr
        .micros(Var::EndUepoch, Var::EndEpoch)?
        .ok_or_else(|| missing("neither end_uepoch nor end_epoch"))?;
    let answer = cdr.micros(Var::AnswerUepoch, Var::AnswerEpoch)?;
    let answer_us = answer.map_or(0, |a| a.micros);
    if start.micros == 0 {
        return Err(bad_timestamp("start is 0"));
    }
    if end.micros < start.micros {
        return Err(bad_timestamp("end before start"));
    }
    if answer_us != 0 && !(start.micros..=end.micros).contains(&answer_us) {
        return Err(bad_timestamp("answer outside [start, end]"));
    }
    // Both sides cut to whole milliseconds first: FreeSWITCH's own convention.
    let duration_ms = (end.micros / 1000).saturating_sub(start.micros / 1000);
    let billable_ms = if answer_us == 0 {
        0
    } else if let Some(ms) = cdr.integer(Var::Billmsec)? {
        ms
    } else if let Some(s) = cdr.integer(Var::Billsec)? {
        s.checked_mul(1000).ok_or_else(|| bad_timestamp("billsec overflows"))?
    } else {
        (end.micros / 1000).saturating_sub(answer_us / 1000)
    };
    let answered = answer_us > 0 && billable_ms > 0;

    // Rule 5.
    let hangup_cause = cdr.var(Var::HangupCause);
    let disposition = match hangup_cause.as_deref() {
        _ if answered => Disposition::Answered,
        Some("USER_BUSY") => Disposition::Busy,
        Some("NO_ANSWER" | "NO_USER_RESPONSE") => Disposition::NoAnswer,
        Some("ORIGINATOR_CANCEL" | "LOSE_RACE" | "PICKED_OFF") => Disposition::Cancelled,
        _ => Disposition::Failed,
    };

    // Rules 6 and 7.
    let trunk = cdr.trunk();
    let direction = match cdr.var(Var::CallDirection).as_deref().map(str::trim) {
        Some(d) if d.eq_ignore_ascii_case("outbound") => Direction::Outbound,
        Some(d) if d.eq_ignore_ascii_case("inbound") => Direction::Inbound,
        Some(d) if d.eq_ignore_ascii_case("local") || d.eq_ignore_ascii_case("internal") => Direction::Internal,
        _ => match &trunk {
            Some((_, TrunkFrom::GatewayName | TrunkFrom::BridgeArg)) => Direction::Outbound,
            _ if cdr.var(Var::SipGateway).is_some() || cdr.last_field(Field::Context).as_deref() == Some("public") => {
                Direction::Inbound
            }
            _ => Direction::Internal,
        },
    };

    // Rule 8: the last callflow is the leg's original profile.
    let caller = cdr
        .last_field(Field::CallerIdNumber)
        .or_else(|| cdr.var(Var::CallerIdNumber))
        .or_else(|| cdr.var(Var::SipFromUser))
        .unwrap_or_default();
    let callee = cdr
        .last_field(Field::DestinationNumber)
        .or_else(|| cdr.var(Var::DestinationNumber))
        .or_else(|| cdr.var(Var::SipReqUser))
        .unwrap_or_default();

    // Rule 9.
    let is_b_leg = cdr.first.as_ref().is_some_and(|p| p.has_originator);
    let mut attrs = BTreeMap::new();
    attrs.insert("leg".to_owned(), if is_b_leg { "b" } else { "a" }.to_owned());
    if let Some(name) = &cdr.switchname {
        attrs.insert("switchname".to_owned(), name.clone());
    }
    if let Some(core) = &cdr.core_uuid {
        attrs.insert("core_uuid".to_owned(), core.clone());
    }
    for (key, var) in [
        ("domain_name", Var::DomainName),
        ("sip_hangup_disposition", Var::SipHangupDisposition),
        ("hangup_cause_q850", Var::HangupCauseQ850),
        ("sip_call_id", Var::SipCallId),
        ("last_bridge_to", Var::LastBridgeTo),
        ("originating_leg_uuid", Var::OriginatingLegUuid),
    ] {
        if let Some(value) = cdr.var(var) {
            attrs.insert(key.to_owned(), value.into_owned());
        }
    }

    Ok(CallRecord {
        schema: CALL_SCHEMA.to_owned(),
        id: format!("fs:{uuid}"),
        version: 1,
        source: Source::Freeswitch,
        account_key: account_key.into_owned(),
        direction,
        caller: caller.into_owned(),
        callee: callee.into_owned(),
        callee_e164: None,
        start_at: start.at,
        answer_at: answer.filter(|_| answered).map(|a| a.at),
        end_at: end.at,
        duration_ms,
        billable_ms: if answered { billable_ms } else { 0 },
        disposition,
        hangup_cause: hangup_cause.map(Cow::into_owned),
        trunk: trunk.map(|(name, _)| name.into_owned()),
        attrs,
        received_at,
    })
}

/// Which step of rule 6 found the trunk; rule 7 treats steps 1 and 2 as
/// "went out through a gateway".
enum TrunkFrom {
    GatewayName,
    BridgeArg,
    ArrivalGateway,
}

/// A time in µs since 1970 that is known to fit a `DateTime<Utc>`.
#[derive(Clone, Copy)]
struct Stamp {
    micros: u64,
    at: DateTime<Utc>,
}

impl Cdr<'_> {
    /// A variable's value, percent-decoded (rule 2); empty is absent.
    fn var(&self, var: Var) -> Option<Cow<'_, str>> {
        let raw = self.vars.get(var as usize)?.as_deref()?;
        let value = percent_decode_value(raw);
        (!value.is_empty()).then_some(value)
    }

    /// A profile field of the first callflow: not percent-decoded, empty is
    /// absent.
    fn first_field(&self, field: Field) -> Option<Cow<'_, str>> {
        profile_field(self.first.as_ref()?, field)
    }

    fn last_field(&self, field: Field) -> Option<Cow<'_, str>> {
        profile_field(self.last_callflow()?, field)
    }

    /// A variable that must be `^[0-9]+$` when present.
    fn integer(&self, var: Var) -> Result<Option<u64>, IngestError> {
        let Some(value) = self.var(var) else {
            return Ok(None);
        };
        parse_decimal(&value)
            .map(Some)
            .ok_or_else(|| bad_timestamp(format!("{} is not a non-negative integer: {value:?}", var.name())))
    }

    /// A time from its `_uepoch` variable, else its `_epoch` twin in seconds.
    fn micros(&self, uepoch: Var, epoch: Var) -> Result<Option<Stamp>, IngestError> {
        let micros = match self.integer(uepoch)? {
            Some(us) => us,
            None => match self.integer(epoch)? {
                Some(s) => s
                    .checked_mul(1_000_000)
                    .ok_or_else(|| bad_timestamp(format!("{} overflows", epoch.name())))?,
                None => return Ok(None),
            },
        };
        let at = i64::try_from(micros)
            .ok()
            .and_then(DateTime::from_timestamp_micros)
            .ok_or_else(|| bad_timestamp(format!("{micros} µs is out of range")))?;
        Ok(Some(Stamp { micros, at }))
    }

    /// Rule 6.
    fn trunk(&self) -> Option<(Cow<'_, str>, TrunkFrom)> {
        if let Some(gateway) = self.var(Var::SipGatewayName) {
            return Some((gateway, TrunkFrom::GatewayName));
        }
        if self.var(Var::LastApp).as_deref() == Some("bridge") {
            if let Some(name) = self.var(Var::LastArg).as_deref().and_then(gateway_in_dial_string) {
                return Some((Cow::Owned(name.to_owned()), TrunkFrom::BridgeArg));
            }
        }
        self.var(Var::SipGateway).map(|g| (g, TrunkFrom::ArrivalGateway))
    }
}

/// `NAME` of the first `sofia/gateway/NAME/…` in a bridge argument.
fn gateway_in_dial_string(arg: &str) -> Option<&str> {
    const MARK: &str = "sofia/gateway/";
    let (_, after) = arg.split_once(MARK)?;
    let (name, _) = after.split_once('/')?;
    (!name.is_empty()).then_some(name)
}

fn profile_field<'a>(profile: &'a Profile<'_>, field: Field) -> Option<Cow<'a, str>> {
    let value = profile.fields.get(field as usize)?.as_deref()?;
    (!value.is_empty()).then_some(Cow::Borrowed(value))
}

/// Rule 2: `%XX` (either case) becomes that byte, everything else stays (a
/// `+` too); bytes that are not UTF-8 become U+FFFD.
fn percent_decode_value(raw: &str) -> Cow<'_, str> {
    if !raw.contains('%') {
        return Cow::Borrowed(raw);
    }
    let mut bytes = Vec::with_capacity(raw.len());
    percent_decode(raw.as_bytes(), Plus::Literal, &mut bytes);
    match String::from_utf8(bytes) {
        Ok(text) => Cow::Owned(text),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

/// `^[0-9]+$` as a u64; `None` for anything else, an overflow included.
fn parse_decimal(text: &str) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    text.bytes().try_fold(0u64, |acc, b| {
        let digit = char::from(b).to_digit(10)?;
        acc.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

fn malformed(detail: impl Into<String>) -> IngestError {
    IngestError::new(ErrorKind::MalformedPayload, detail)
}

fn missing(detail: impl Into<String>) -> IngestError {
    IngestError::new(ErrorKind::MissingField, detail)
}

fn bad_timestamp(detail: impl Into<String>) -> IngestError {
    IngestError::new(ErrorKind::BadTimestamp, detail)
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

    #[test]
    fn decimal_is_digits_only_and_never_overflows() {
        assert_eq!(parse_decimal("0"), Some(0));
        assert_eq!(parse_decimal("007"), Some(7));
        assert_eq!(parse_decimal("18446744073709551615"), Some(u64::MAX));
        for bad in ["", "18446744073709551616", "-1", "+1", "1.5", " 1", "1 ", "١"] {
            assert_eq!(parse_decimal(bad), None, "{bad:?}");
        }
    }

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

    #[test]
    fn gateway_is_the_text_between_sofia_gateway_and_the_next_slash() {
        assert_eq!(gateway_in_dial_string("sofia/gateway/gw1/0201"), Some("gw1"));
        assert_eq!(
            gateway_in_dial_string("{x=1}sofia/gateway/a/1|sofia/gateway/b/1"),
            Some("a")
        );
        assert_eq!(gateway_in_dial_string("sofia/gateway//0201"), None);
        assert_eq!(gateway_in_dial_string("sofia/gateway/gw1"), None);
        assert_eq!(gateway_in_dial_string("user/1001@example.net"), None);
    }
}
