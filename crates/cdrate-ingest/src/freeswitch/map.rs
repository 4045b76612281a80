//! Rules 3-10 of the fixture NOTES: what the reader extracted becomes a
//! [`CallRecord`] or a coded error. Variables are percent-decoded here, and
//! only the ones a rule reads; no XML is seen here.

use std::borrow::Cow;
use std::collections::BTreeMap;

use cdrate_core::{CallRecord, Direction, Disposition, Source, CALL_SCHEMA};
use chrono::{DateTime, Utc};

use super::payload::{percent_decode, Plus};
use super::reader::{Cdr, Field, Profile, Var};
use super::{bad_timestamp, missing};
use crate::IngestError;

pub(super) fn map_record(cdr: &Cdr<'_>, received_at: DateTime<Utc>) -> Result<CallRecord, IngestError> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
