//! Closing billing cycles: for each account, every cycle that has ended
//! by `as_of` and is not closed yet, oldest first, becomes line items
//! (`cdrate_billing::plan_close`) written in one store transaction.
//!
//! Calls billed by no close are found by the store (never billed, or
//! re-rated since), so a call that arrives for a cycle already closed is
//! billed by the next close as a late-usage line, and a re-rated one as an
//! adjustment — never lost, never twice.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use cdrate_billing::{cycle_containing, plan_close, BillableCall, CloseRequest, Cycle};
use cdrate_rating::{Account, AccountBook, BillingMode, TariffSet};
use cdrate_store::billing::state;
use cdrate_store::{ClosedCycle, CycleClose, LineItemRow, Store};

use crate::metrics::Metrics;

/// What a close needs besides the data.
#[derive(Debug, Clone, Copy)]
pub struct CloseSettings {
    /// Decimal places of item amounts.
    pub decimals: u32,
    /// Delivery of accounts with an empty `billing` column.
    pub default_mode: BillingMode,
}

/// One cycle closed by this run.
#[derive(Debug, Clone)]
pub struct Closed {
    pub account: String,
    pub cycle: Cycle,
    pub items: usize,
    pub total: Decimal,
    pub currency: String,
}

/// Closes, for every account (or only `only`), each cycle that ended at or
/// before `as_of` and holds calls still to bill. Returns what it closed.
pub async fn close_due(
    store: &Store,
    accounts: &AccountBook,
    tariffs: &TariffSet,
    as_of: DateTime<Utc>,
    only: Option<&str>,
    settings: CloseSettings,
    metrics: Option<&Metrics>,
) -> anyhow::Result<Vec<Closed>> {
    let mut closed = Vec::new();
    for id in store.accounts_with_unbilled_calls(as_of.timestamp_millis()).await? {
        if only.is_some_and(|o| o != id) {
            continue;
        }
        let Some(account) = accounts.account(&id) else {
            tracing::warn!(account = %id, "calls to bill for an account no longer in the accounts book; left open");
            continue;
        };
        let Some(tz) = tariffs.plan_timezone(&account.plan) else {
            tracing::warn!(account = %id, plan = %account.plan, "the account's plan is not in the tariffs; cycle left open");
            continue;
        };
        for c in close_account(store, account, tz, as_of, settings).await? {
            if let Some(m) = metrics {
                m.billing_cycles_closed.with_label_values(&[&c.currency]).inc();
                // Exact integer minor units; a close that nets to a credit
                // cannot lower a counter and is not counted.
                let minor = (c.total * Decimal::from(10u64.pow(settings.decimals))).trunc();
                if let Some(minor) = minor.to_u64() {
                    m.billing_amount.with_label_values(&[&c.currency]).inc_by(minor);
                }
            }
            closed.push(c);
        }
    }
    Ok(closed)
}

async fn close_account(
    store: &Store,
    account: &Account,
    tz: Tz,
    as_of: DateTime<Utc>,
    settings: CloseSettings,
) -> anyhow::Result<Vec<Closed>> {
    let mut out = Vec::new();
    // The newest cycle that has ended by `as_of`.
    let last_due = cycle_containing(as_of, account.cycle_day, tz)?.previous(account.cycle_day, tz)?;
    let pending = store
        .unbilled_calls(&account.id, last_due.end.timestamp_millis())
        .await?;
    let Some(first) = pending.first() else {
        return Ok(out);
    };
    let mut cycle = cycle_containing(ms_to_utc(first.answer_at_ms)?, account.cycle_day, tz)?;
    while cycle.start <= last_due.start {
        if store
            .closed_cycle(&account.id, cycle.start.timestamp_millis())
            .await?
            .is_none()
        {
            if let Some(c) = close_one(store, account, tz, &cycle, settings).await? {
                out.push(c);
            }
        }
        cycle = cycle.next(account.cycle_day, tz)?;
    }
    Ok(out)
}

/// Closes one cycle of one account; `None` if it had nothing to bill or
/// another process closed it first.
async fn close_one(
    store: &Store,
    account: &Account,
    tz: Tz,
    cycle: &Cycle,
    settings: CloseSettings,
) -> anyhow::Result<Option<Closed>> {
    let unbilled = store.unbilled_calls(&account.id, cycle.end.timestamp_millis()).await?;
    if unbilled.is_empty() {
        return Ok(None);
    }
    // Free calls never billed (internal, inbound, b-legs) are marked billed
    // without a line: an invoice line of zeros helps nobody. If one is
    // re-rated to a price later, it comes back as an adjustment.
    let mut billed: Vec<(String, Decimal, Option<String>)> = Vec::new();
    let mut calls = Vec::with_capacity(unbilled.len());
    for u in unbilled {
        if u.billed_cost.is_none() && u.cost.is_zero() {
            billed.push((u.id, Decimal::ZERO, None));
            continue;
        }
        calls.push(BillableCall {
            id: u.id,
            answer_at: ms_to_utc(u.answer_at_ms)?,
            destination: u.destination.unwrap_or_else(|| "Other".to_owned()),
            charged_seconds: u.charged_seconds,
            cost: u.cost,
            billed_cost: u.billed_cost,
        });
    }
    let plan = plan_close(&CloseRequest {
        account: &account.id,
        currency: account.currency,
        cycle: *cycle,
        tz,
        calls: &calls,
        decimals: settings.decimals,
    })?;
    let mode = account.billing.unwrap_or(settings.default_mode);
    let now = Utc::now().timestamp_millis();
    let (delivery, initial, refusal) = delivery_of(account, mode);
    let items: Vec<LineItemRow> = plan
        .items
        .iter()
        .map(|i| LineItemRow {
            id: i.id.clone(),
            account_id: account.id.clone(),
            cycle_start_ms: i.cycle_start.timestamp_millis(),
            cycle_end_ms: i.cycle_end.timestamp_millis(),
            kind: i.kind.as_str().to_owned(),
            destination: i.destination.clone(),
            calls: i64::try_from(i.calls).unwrap_or(i64::MAX),
            billed_seconds: i.billed_seconds,
            amount: i.amount,
            currency: i.currency.clone(),
            description: i.description.clone(),
            delivery: delivery.to_owned(),
            state: initial.to_owned(),
            whmcs_client_id: account.whmcs_client_id.and_then(|c| i64::try_from(c).ok()),
            whmcs_ref: None,
            invoice_id: None,
            attempts: 0,
            next_attempt_at_ms: now,
            last_error: refusal.clone(),
            created_at_ms: now,
            updated_at_ms: now,
        })
        .collect();
    billed.extend(
        plan.billed
            .iter()
            .map(|b| (b.call_id.clone(), b.billed_cost, b.item_id.clone())),
    );
    let close = CycleClose {
        cycle: ClosedCycle {
            account_id: account.id.clone(),
            cycle_start_ms: cycle.start.timestamp_millis(),
            cycle_end_ms: cycle.end.timestamp_millis(),
            currency: account.currency.to_string(),
            total: plan.total,
            items: i64::try_from(items.len()).unwrap_or(i64::MAX),
            closed_at_ms: now,
        },
        items,
        billed,
    };
    if !store.close_cycle(&close).await? {
        return Ok(None);
    }
    for (id, billed, item) in &close.billed {
        tracing::debug!(call_id = %id, item = item.as_deref().unwrap_or(""), billed = %billed, "call billed");
    }
    tracing::info!(
        account = %account.id,
        cycle = %cycle.label(tz),
        items = close.items.len(),
        total = %plan.total,
        delivery,
        "billing cycle closed"
    );
    Ok(Some(Closed {
        account: account.id.clone(),
        cycle: *cycle,
        items: close.items.len(),
        total: plan.total,
        currency: account.currency.to_string(),
    }))
}

/// Delivery, initial state and, when the account cannot be delivered the
/// way it is configured, why.
fn delivery_of(account: &Account, mode: BillingMode) -> (&'static str, &'static str, Option<String>) {
    match mode {
        BillingMode::None => ("none", state::HELD, None),
        BillingMode::Push if account.whmcs_client_id.is_none() => (
            "push",
            state::REFUSED,
            Some("no_whmcs_client: the account has no whmcs_client_id".to_owned()),
        ),
        BillingMode::Push => ("push", state::PENDING, None),
        BillingMode::Pull if account.whmcs_service_id.is_none() && account.whmcs_client_id.is_none() => (
            "pull",
            state::REFUSED,
            Some("no_whmcs_service: the account has neither whmcs_service_id nor whmcs_client_id".to_owned()),
        ),
        BillingMode::Pull => ("pull", state::PENDING, None),
    }
}

pub fn ms_to_utc(ms: i64) -> anyhow::Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| anyhow::anyhow!("stored instant {ms} ms is out of range"))
}
