//! Rating one call record: the billing account its source identity maps to,
//! the callee normalized with that account's numbering plan, and the price
//! on the account's plan (DESIGN §6). Pure: the caller passes the tariffs,
//! the accounts and the instant it rates at.
//!
//! What is priced: `outbound` calls on the account's `plan`; `inbound` calls
//! on its `inbound_plan`, or stored at cost 0 without one; `internal` calls
//! and numbers no longer than an extension cost 0 and need no route; a
//! FreeSWITCH b-leg (`attrs.leg = "b"`) costs 0 because its a-leg carries the
//! call. An unanswered call whose number has no route costs 0 as well
//! (note `unanswered_no_route`): there is nothing to bill, and quarantining
//! every failed call to a mistyped number would bury the real problems.

use cdrate_core::rated::RATED_SCHEMA;
use cdrate_core::{CallRecord, Direction, RatedCall};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::accounts::{Account, AccountBook, AccountStatus};
use crate::normalize::{normalize_number, Dialled};
use crate::{PriceError, TariffSet};

/// Why a record could not be rated; its code is the quarantine reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateError {
    #[error("no account for {origin} identity {account_key:?}")]
    UnknownAccount { origin: String, account_key: String },
    #[error("callee {0:?} is not a number")]
    BadNumber(String),
    #[error("{0}")]
    Price(PriceError),
    #[error("no tariffs imported yet")]
    NoTariffs,
}

impl RateError {
    pub fn code(&self) -> &'static str {
        match self {
            RateError::UnknownAccount { .. } => "unknown_account",
            RateError::BadNumber(_) => "bad_number",
            RateError::Price(e) => e.code(),
            RateError::NoTariffs => "no_tariffs",
        }
    }
}

/// Rates `call` for the account its identity maps to. `tariff_version` is
/// recorded on the result; `rated_at` is the caller's clock.
pub fn rate_call(
    mut call: CallRecord,
    accounts: &AccountBook,
    tariffs: &TariffSet,
    tariff_version: i64,
    rated_at: DateTime<Utc>,
) -> Result<RatedCall, RateError> {
    let account = accounts
        .lookup(call.source, &call.account_key)
        .ok_or_else(|| RateError::UnknownAccount {
            origin: call.source.as_str().to_owned(),
            account_key: call.account_key.clone(),
        })?;
    // The result is a rated.v1 message; the schema id says so.
    call.schema = RATED_SCHEMA.to_owned();
    let dialled = normalize_number(&call.callee, &account.numbering);
    if let Ok(Dialled::E164(n)) = &dialled {
        call.callee_e164 = Some(n.as_str().to_owned());
    }
    let free = |call: CallRecord, note: &str| unpriced(call, account, note, tariff_version, rated_at);

    if call.attrs.get("leg").is_some_and(|l| l == "b") {
        return Ok(free(call, "b_leg"));
    }
    if call.direction == Direction::Internal {
        return Ok(free(call, "internal"));
    }
    let number = match dialled {
        Ok(Dialled::E164(n)) => n,
        Ok(Dialled::Internal(_)) => return Ok(free(call, "internal")),
        Err(_) => return Err(RateError::BadNumber(call.callee.clone())),
    };
    let plan = match call.direction {
        Direction::Inbound => match &account.inbound_plan {
            Some(p) => p,
            None => return Ok(free(call, "inbound_free")),
        },
        _ => account.plan_at(call.rating_instant()),
    };
    let billable = call.billable_seconds();
    let quote = match tariffs.price_on(plan, &number, call.rating_instant(), billable) {
        Ok(q) => q,
        Err(PriceError::NoRoute { .. }) if billable == 0 => return Ok(free(call, "unanswered_no_route")),
        Err(e) => return Err(RateError::Price(e)),
    };
    Ok(RatedCall {
        account_id: account.id.clone(),
        plan: Some(quote.plan.name.to_string()),
        prefix: Some(quote.rate.prefix.to_string()),
        destination: Some(quote.destination.to_owned()),
        band: quote.band().map(|b| b.name.to_string()),
        charged_seconds: quote.charged_seconds,
        cost: quote.cost,
        currency: quote.plan.currency,
        note: None,
        account_status: flag(account),
        tariff_version,
        rating_version: 1,
        rated_at,
        call,
    })
}

/// `account_status` of a rated call: set only when the account is not active.
fn flag(account: &Account) -> Option<String> {
    (account.status != AccountStatus::Active).then(|| account.status.as_str().to_owned())
}

fn unpriced(
    call: CallRecord,
    account: &Account,
    note: &str,
    tariff_version: i64,
    rated_at: DateTime<Utc>,
) -> RatedCall {
    RatedCall {
        account_id: account.id.clone(),
        plan: None,
        prefix: None,
        destination: None,
        band: None,
        charged_seconds: 0,
        cost: Decimal::ZERO,
        currency: account.currency,
        note: Some(note.to_owned()),
        account_status: flag(account),
        tariff_version,
        rating_version: 1,
        rated_at,
        call,
    }
}
