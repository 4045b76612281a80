//! Billing state: closed cycles, invoice line items with their WHMCS
//! delivery ledger (every state change kept in `line_item_events`), what
//! each call was billed at, and usage alerts already fired.
//!
//! A cycle close is one transaction: the cycle row, its items and the
//! `billed_cost` of every call it consumed. The cycle's primary key makes a
//! second close of the same cycle a no-op, and a call is "still to bill"
//! exactly while `billed_cost` is null or differs from its current cost, so
//! a call is never billed twice and a re-rated one is billed the difference.

use rust_decimal::Decimal;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::{parse_decimal, Backend, Store, StoreError};

/// A rated call a close may bill: never billed, or re-rated since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnbilledCall {
    pub id: String,
    pub answer_at_ms: i64,
    /// `None` for calls rated without a route (internal, inbound free).
    pub destination: Option<String>,
    pub charged_seconds: i64,
    pub cost: Decimal,
    pub billed_cost: Option<Decimal>,
}

/// How an item reaches the customer's invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// cdrate pushes it through the WHMCS API.
    Push,
    /// The WHMCS hook pulls it from `/v1/usage` and acknowledges it.
    Pull,
    /// Kept for reports and export only.
    None,
}

impl Delivery {
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Push => "push",
            Delivery::Pull => "pull",
            Delivery::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Delivery> {
        match s {
            "push" => Some(Delivery::Push),
            "pull" => Some(Delivery::Pull),
            "none" => Some(Delivery::None),
            _ => None,
        }
    }
}

/// Where a line item stands. Push: `pending → sending → sent`, or `failed`
/// (WHMCS said no; retried later), `uncertain` (the outcome is unknown and
/// reconciliation could not settle it: never re-sent blindly), `refused`
/// (cdrate will not push it, e.g. a currency mismatch). Pull: `pending →
/// acked`. Delivery none: `held`.
pub mod state {
    pub const PENDING: &str = "pending";
    pub const SENDING: &str = "sending";
    pub const SENT: &str = "sent";
    pub const FAILED: &str = "failed";
    pub const UNCERTAIN: &str = "uncertain";
    pub const REFUSED: &str = "refused";
    pub const ACKED: &str = "acked";
    pub const HELD: &str = "held";
}

/// A line item as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineItemRow {
    pub id: String,
    pub account_id: String,
    pub cycle_start_ms: i64,
    pub cycle_end_ms: i64,
    /// `usage`, `late` or `adjustment`.
    pub kind: String,
    pub destination: String,
    pub calls: i64,
    pub billed_seconds: i64,
    pub amount: Decimal,
    pub currency: String,
    pub description: String,
    pub delivery: String,
    pub state: String,
    pub whmcs_client_id: Option<i64>,
    /// WHMCS's id for what the push created (billable item or invoice).
    pub whmcs_ref: Option<String>,
    /// The WHMCS invoice the item is on, once known.
    pub invoice_id: Option<i64>,
    pub attempts: i64,
    pub next_attempt_at_ms: i64,
    pub last_error: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// A closed cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedCycle {
    pub account_id: String,
    pub cycle_start_ms: i64,
    pub cycle_end_ms: i64,
    pub currency: String,
    pub total: Decimal,
    pub items: i64,
    pub closed_at_ms: i64,
}

/// Everything one cycle close writes.
#[derive(Debug, Clone)]
pub struct CycleClose {
    pub cycle: ClosedCycle,
    /// New items; `state`, `attempts` etc. as they should start.
    pub items: Vec<LineItemRow>,
    /// `(call id, cost billed so far, item id)` for every consumed call.
    pub billed: Vec<(String, Decimal, Option<String>)>,
}

/// A filter for listing line items; `None` fields match everything.
#[derive(Debug, Clone, Default)]
pub struct ItemFilter {
    pub account: Option<String>,
    pub state: Option<String>,
    pub delivery: Option<String>,
    pub cycle_start_ms: Option<i64>,
    /// Only items of cycles ending at or before this instant.
    pub cycle_end_until_ms: Option<i64>,
    pub limit: usize,
}

/// A state change of one item, applied only if the item is in one of
/// `from` (compare-and-set, so two workers cannot both push it).
#[derive(Debug, Clone, Default)]
pub struct Transition<'a> {
    pub from: &'a [&'a str],
    pub to: &'a str,
    pub detail: &'a str,
    pub whmcs_ref: Option<&'a str>,
    pub invoice_id: Option<i64>,
    pub last_error: Option<&'a str>,
    /// Count this as a push attempt.
    pub attempt: bool,
    pub next_attempt_at_ms: Option<i64>,
    pub now_ms: i64,
}

/// What acknowledging pulled items did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AckOutcome {
    /// Newly acknowledged.
    pub acked: Vec<String>,
    /// Already acknowledged with this invoice: nothing to do.
    pub already: Vec<String>,
    /// Acknowledged with another invoice, or not pull items: refused.
    pub conflicts: Vec<String>,
    pub unknown: Vec<String>,
}

const ITEM_COLUMNS: &str = "id, account_id, cycle_start_ms, cycle_end_ms, kind, destination, calls, billed_seconds, \
    CAST(amount AS TEXT), currency, description, delivery, state, whmcs_client_id, whmcs_ref, invoice_id, attempts, \
    next_attempt_at_ms, last_error, created_at_ms, updated_at_ms";

fn decode_item(r: &AnyRow) -> Result<LineItemRow, StoreError> {
    let amount: String = r.try_get(8)?;
    Ok(LineItemRow {
        id: r.try_get(0)?,
        account_id: r.try_get(1)?,
        cycle_start_ms: r.try_get(2)?,
        cycle_end_ms: r.try_get(3)?,
        kind: r.try_get(4)?,
        destination: r.try_get(5)?,
        calls: r.try_get(6)?,
        billed_seconds: r.try_get(7)?,
        amount: parse_decimal(&amount)?,
        currency: r.try_get(9)?,
        description: r.try_get(10)?,
        delivery: r.try_get(11)?,
        state: r.try_get(12)?,
        whmcs_client_id: r.try_get(13)?,
        whmcs_ref: r.try_get(14)?,
        invoice_id: r.try_get(15)?,
        attempts: r.try_get(16)?,
        next_attempt_at_ms: r.try_get(17)?,
        last_error: r.try_get(18)?,
        created_at_ms: r.try_get(19)?,
        updated_at_ms: r.try_get(20)?,
    })
}

fn decode_cycle(r: &AnyRow) -> Result<ClosedCycle, StoreError> {
    let total: String = r.try_get(4)?;
    Ok(ClosedCycle {
        account_id: r.try_get(0)?,
        cycle_start_ms: r.try_get(1)?,
        cycle_end_ms: r.try_get(2)?,
        currency: r.try_get(3)?,
        total: parse_decimal(&total)?,
        items: r.try_get(5)?,
        closed_at_ms: r.try_get(6)?,
    })
}

const CYCLE_COLUMNS: &str =
    "account_id, cycle_start_ms, cycle_end_ms, currency, CAST(total AS TEXT), items, closed_at_ms";

impl Store {
    /// Calls of `account` answered before `before_ms` that a close must
    /// bill: never billed, or billed at a cost that is no longer theirs.
    pub async fn unbilled_calls(&self, account: &str, before_ms: i64) -> Result<Vec<UnbilledCall>, StoreError> {
        // The predicate repeats the partial index's so PostgreSQL uses it.
        let rows = sqlx::query(
            "SELECT id, answer_at_ms, destination, charged_seconds, CAST(cost AS TEXT), CAST(billed_cost AS TEXT) \
             FROM rated_calls WHERE account_id = $1 AND answer_at_ms IS NOT NULL AND answer_at_ms < $2 \
             AND (billed_cost IS NULL OR billed_cost <> cost) ORDER BY answer_at_ms, id",
        )
        .bind(account)
        .bind(before_ms)
        .fetch_all(&self.read)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let cost: String = r.try_get(4)?;
            let billed: Option<String> = r.try_get(5)?;
            let call = UnbilledCall {
                id: r.try_get(0)?,
                answer_at_ms: r.try_get(1)?,
                destination: r.try_get(2)?,
                charged_seconds: r.try_get(3)?,
                cost: parse_decimal(&cost)?,
                billed_cost: billed.as_deref().map(parse_decimal).transpose()?,
            };
            // SQLite compares the money texts: "0.10" and "0.1" differ there
            // but not here, and such a call has nothing left to bill.
            if call.billed_cost != Some(call.cost) {
                out.push(call);
            }
        }
        Ok(out)
    }

    /// Accounts that have calls still to bill answered before `before_ms`.
    pub async fn accounts_with_unbilled_calls(&self, before_ms: i64) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT account_id, CAST(cost AS TEXT), CAST(billed_cost AS TEXT) FROM rated_calls \
             WHERE answer_at_ms IS NOT NULL AND answer_at_ms < $1 AND (billed_cost IS NULL OR billed_cost <> cost)",
        )
        .bind(before_ms)
        .fetch_all(&self.read)
        .await?;
        let mut out = std::collections::BTreeSet::new();
        for r in &rows {
            let (cost, billed): (String, Option<String>) = (r.try_get(1)?, r.try_get(2)?);
            // Money equality, not text equality (see `unbilled_calls`).
            if billed.as_deref().map(parse_decimal).transpose()? != Some(parse_decimal(&cost)?) {
                out.insert(r.try_get::<String, _>(0)?);
            }
        }
        Ok(out.into_iter().collect())
    }

    /// Writes a cycle close in one transaction. Returns `false` (and writes
    /// nothing) when that cycle was already closed.
    pub async fn close_cycle(&self, close: &CycleClose) -> Result<bool, StoreError> {
        let mut tx = self.write.begin().await?;
        let c = &close.cycle;
        let inserted = sqlx::query(&format!(
            "INSERT INTO billing_cycles (account_id, cycle_start_ms, cycle_end_ms, currency, total, items, closed_at_ms) \
             VALUES ($1, $2, $3, $4, {}, $6, $7) ON CONFLICT (account_id, cycle_start_ms) DO NOTHING",
            self.money_sql(5)
        ))
        .bind(c.account_id.as_str())
        .bind(c.cycle_start_ms)
        .bind(c.cycle_end_ms)
        .bind(c.currency.as_str())
        .bind(c.total.to_string())
        .bind(c.items)
        .bind(c.closed_at_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        for item in &close.items {
            self.insert_item(&mut tx, item).await?;
            self.add_event(&mut tx, &item.id, c.closed_at_ms, &item.state, "created by cycle close")
                .await?;
        }
        let update = format!(
            "UPDATE rated_calls SET billed_cost = {}, billed_item = $2 WHERE id = $3",
            self.money_sql(1)
        );
        for (id, cost, item) in &close.billed {
            sqlx::query(&update)
                .bind(cost.to_string())
                .bind(item.clone())
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn insert_item(&self, tx: &mut Transaction<'static, Any>, i: &LineItemRow) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO line_items (id, account_id, cycle_start_ms, cycle_end_ms, kind, destination, calls, billed_seconds, \
             amount, currency, description, delivery, state, whmcs_client_id, whmcs_ref, invoice_id, attempts, \
             next_attempt_at_ms, last_error, created_at_ms, updated_at_ms) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,{},$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21)",
            self.money_sql(9)
        ))
        .bind(i.id.as_str())
        .bind(i.account_id.as_str())
        .bind(i.cycle_start_ms)
        .bind(i.cycle_end_ms)
        .bind(i.kind.as_str())
        .bind(i.destination.as_str())
        .bind(i.calls)
        .bind(i.billed_seconds)
        .bind(i.amount.to_string())
        .bind(i.currency.as_str())
        .bind(i.description.as_str())
        .bind(i.delivery.as_str())
        .bind(i.state.as_str())
        .bind(i.whmcs_client_id)
        .bind(i.whmcs_ref.clone())
        .bind(i.invoice_id)
        .bind(i.attempts)
        .bind(i.next_attempt_at_ms)
        .bind(i.last_error.clone())
        .bind(i.created_at_ms)
        .bind(i.updated_at_ms)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn add_event(
        &self,
        tx: &mut Transaction<'static, Any>,
        item: &str,
        at_ms: i64,
        state: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO line_item_events (item_id, seq, at_ms, state, detail) \
             VALUES ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM line_item_events WHERE item_id = $2), $3, $4, $5)",
        )
        .bind(item)
        .bind(item)
        .bind(at_ms)
        .bind(state)
        .bind(detail)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// `CAST($n AS NUMERIC)` on PostgreSQL, `$n` on SQLite.
    fn money_sql(&self, n: usize) -> String {
        match self.backend {
            Backend::Sqlite => format!("${n}"),
            Backend::Postgres => format!("CAST(${n} AS NUMERIC)"),
        }
    }

    /// Closed cycles, newest first (of one account, or all).
    pub async fn closed_cycles(&self, account: Option<&str>, limit: usize) -> Result<Vec<ClosedCycle>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {CYCLE_COLUMNS} FROM billing_cycles WHERE ($1 = '' OR account_id = $1) \
             ORDER BY cycle_start_ms DESC, account_id LIMIT $2"
        ))
        .bind(account.unwrap_or(""))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(decode_cycle).collect()
    }

    /// The closed cycle of `account` starting at `start_ms`, if closed.
    pub async fn closed_cycle(&self, account: &str, start_ms: i64) -> Result<Option<ClosedCycle>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {CYCLE_COLUMNS} FROM billing_cycles WHERE account_id = $1 AND cycle_start_ms = $2"
        ))
        .bind(account)
        .bind(start_ms)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(decode_cycle).transpose()
    }

    /// Line items matching `filter`, oldest cycle first.
    pub async fn line_items(&self, filter: &ItemFilter) -> Result<Vec<LineItemRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {ITEM_COLUMNS} FROM line_items WHERE ($1 = '' OR account_id = $1) AND ($2 = '' OR state = $2) \
             AND ($3 = '' OR delivery = $3) AND ($4 < 0 OR cycle_start_ms = $4) AND cycle_end_ms <= $5 \
             ORDER BY cycle_start_ms, account_id, id LIMIT $6"
        ))
        .bind(filter.account.clone().unwrap_or_default())
        .bind(filter.state.clone().unwrap_or_default())
        .bind(filter.delivery.clone().unwrap_or_default())
        .bind(filter.cycle_start_ms.unwrap_or(-1))
        .bind(filter.cycle_end_until_ms.unwrap_or(i64::MAX))
        .bind(i64::try_from(filter.limit).unwrap_or(i64::MAX))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(decode_item).collect()
    }

    pub async fn line_item(&self, id: &str) -> Result<Option<LineItemRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {ITEM_COLUMNS} FROM line_items WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(decode_item).transpose()
    }

    /// Push items in `states` whose next attempt is due, oldest first.
    pub async fn push_items_due(
        &self,
        states: &[&str],
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<LineItemRow>, StoreError> {
        let list = (0..states.len())
            .map(|i| format!("${}", i + 3))
            .collect::<Vec<_>>()
            .join(",");
        let sql = format!(
            "SELECT {ITEM_COLUMNS} FROM line_items WHERE delivery = 'push' AND next_attempt_at_ms <= $1 \
             AND state IN ({list}) ORDER BY created_at_ms, id LIMIT $2"
        );
        let mut q = sqlx::query(&sql)
            .bind(now_ms)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX));
        for s in states {
            q = q.bind(*s);
        }
        q.fetch_all(&self.read).await?.iter().map(decode_item).collect()
    }

    /// Applies `t` to item `id` if it is in one of `t.from`, recording the
    /// event. Returns whether it applied.
    pub async fn transition_item(&self, id: &str, t: &Transition<'_>) -> Result<bool, StoreError> {
        let mut tx = self.write.begin().await?;
        let list = (0..t.from.len())
            .map(|i| format!("${}", i + 9))
            .collect::<Vec<_>>()
            .join(",");
        let sql = format!(
            "UPDATE line_items SET state = $1, whmcs_ref = COALESCE($2, whmcs_ref), invoice_id = COALESCE($3, invoice_id), \
             last_error = $4, attempts = attempts + $5, next_attempt_at_ms = COALESCE($6, next_attempt_at_ms), \
             updated_at_ms = $7 WHERE id = $8 AND state IN ({list})"
        );
        let mut q = sqlx::query(&sql)
            .bind(t.to)
            .bind(t.whmcs_ref)
            .bind(t.invoice_id)
            .bind(t.last_error)
            .bind(i64::from(t.attempt))
            .bind(t.next_attempt_at_ms)
            .bind(t.now_ms)
            .bind(id);
        for s in t.from {
            q = q.bind(*s);
        }
        let applied = q.execute(&mut *tx).await?.rows_affected() > 0;
        if applied {
            self.add_event(&mut tx, id, t.now_ms, t.to, t.detail).await?;
        }
        tx.commit().await?;
        Ok(applied)
    }

    /// The recorded state changes of one item: `(at_ms, state, detail)`.
    pub async fn line_item_events(&self, id: &str) -> Result<Vec<(i64, String, String)>, StoreError> {
        let rows = sqlx::query("SELECT at_ms, state, detail FROM line_item_events WHERE item_id = $1 ORDER BY seq")
            .bind(id)
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }

    /// Counts of line items per `(delivery, state)`.
    pub async fn line_item_states(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT delivery, state, COUNT(*) FROM line_items GROUP BY delivery, state ORDER BY delivery, state",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }

    /// Acknowledges pulled items as added to WHMCS invoice `invoice_id`.
    /// Idempotent per (item, invoice); an item acked with another invoice
    /// is a conflict and stays as it was.
    pub async fn ack_items(&self, ids: &[String], invoice_id: i64, now_ms: i64) -> Result<AckOutcome, StoreError> {
        let mut out = AckOutcome::default();
        let mut tx = self.write.begin().await?;
        for id in ids {
            let row = sqlx::query("SELECT delivery, state, invoice_id FROM line_items WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            let Some(row) = row else {
                out.unknown.push(id.clone());
                continue;
            };
            let (delivery, st, invoice): (String, String, Option<i64>) =
                (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
            if delivery != Delivery::Pull.as_str() {
                out.conflicts.push(id.clone());
            } else if st == state::ACKED {
                if invoice == Some(invoice_id) {
                    out.already.push(id.clone());
                } else {
                    out.conflicts.push(id.clone());
                }
            } else {
                sqlx::query("UPDATE line_items SET state = $1, invoice_id = $2, updated_at_ms = $3 WHERE id = $4")
                    .bind(state::ACKED)
                    .bind(invoice_id)
                    .bind(now_ms)
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await?;
                self.add_event(
                    &mut tx,
                    id,
                    now_ms,
                    state::ACKED,
                    &format!("acknowledged on invoice {invoice_id}"),
                )
                .await?;
                out.acked.push(id.clone());
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Cost of the calls of `account` answered in `[from_ms, to_ms)`, and
    /// how many, summed exactly.
    pub async fn usage_between(&self, account: &str, from_ms: i64, to_ms: i64) -> Result<(i64, Decimal), StoreError> {
        let rows = sqlx::query(
            "SELECT CAST(cost AS TEXT) FROM rated_calls WHERE account_id = $1 AND answer_at_ms >= $2 AND answer_at_ms < $3",
        )
        .bind(account)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.read)
        .await?;
        let mut sum = Decimal::ZERO;
        for r in &rows {
            let cost: String = r.try_get(0)?;
            sum += parse_decimal(&cost)?;
        }
        Ok((i64::try_from(rows.len()).unwrap_or(i64::MAX), sum))
    }

    /// Fractions of the credit limit already alerted for this cycle.
    pub async fn fired_alerts(&self, account: &str, cycle_start_ms: i64) -> Result<Vec<Decimal>, StoreError> {
        let rows = sqlx::query("SELECT fraction FROM usage_alerts WHERE account_id = $1 AND cycle_start_ms = $2")
            .bind(account)
            .bind(cycle_start_ms)
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| {
                let f: String = r.try_get(0)?;
                parse_decimal(&f)
            })
            .collect()
    }

    /// Records an alert; `false` if this one was already recorded (so it
    /// fires once per account, cycle and fraction even across processes).
    pub async fn record_alert(
        &self,
        account: &str,
        cycle_start_ms: i64,
        fraction: Decimal,
        usage: Decimal,
        credit_limit: Decimal,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "INSERT INTO usage_alerts (account_id, cycle_start_ms, fraction, usage, credit_limit, fired_at_ms) \
             VALUES ($1, $2, $3, {}, {}, $6) ON CONFLICT (account_id, cycle_start_ms, fraction) DO NOTHING",
            self.money_sql(4),
            self.money_sql(5)
        );
        let n = sqlx::query(&sql)
            .bind(account)
            .bind(cycle_start_ms)
            .bind(fraction.normalize().to_string())
            .bind(usage.to_string())
            .bind(credit_limit.to_string())
            .bind(now_ms)
            .execute(&self.write)
            .await?
            .rows_affected();
        Ok(n > 0)
    }
}
