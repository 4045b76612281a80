//! Pushing line items to WHMCS exactly once, although WHMCS offers no
//! idempotency (API.md §6.4).
//!
//! Every push is bracketed by the ledger: the item moves to `sending`
//! (compare-and-set, counted as an attempt) *before* the request and to
//! `sent` / `failed` / `uncertain` after it. Each description carries the
//! item's `[cdrate:<id>]` tag. An item whose outcome is unknown — the
//! answer was lost, or the process died while `sending` — is never sent
//! again blindly: reconciliation looks for its tag on the client's
//! invoices first. Found: `sent`. Not found: with CreateInvoice that
//! proves it was not created, so it is pending again; a billable item is
//! invisible to the API until it is invoiced, so it stays `uncertain` for
//! later reconciliation or an operator's `cdrate billing resolve`.

use std::collections::{BTreeMap, HashMap};

use cdrate_billing::whmcs::{self as api, Outcome};
use cdrate_store::billing::state;
use cdrate_store::{LineItemRow, Store, Transition};
use chrono::Utc;

use super::whmcs::WhmcsClient;
use crate::config::WhmcsConfig;

/// Items handled per pass.
const BATCH: usize = 200;
/// A `sending` item older than this is an orphan of a crashed push.
const ORPHAN_AFTER_MS: i64 = 5 * 60 * 1000;

/// What one pass did, for logs and `cdrate billing push`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PassReport {
    pub sent: usize,
    pub failed: usize,
    pub uncertain: usize,
    pub refused: usize,
    pub reconciled: usize,
}

pub struct Pusher<'a> {
    pub store: &'a Store,
    pub client: &'a WhmcsClient,
    pub config: &'a WhmcsConfig,
}

impl Pusher<'_> {
    /// One pass: settle orphans and uncertain items, then push what is due.
    /// `startup` treats every `sending` item as an orphan (nothing else can
    /// be pushing it when this process has just started).
    pub async fn pass(&self, startup: bool) -> anyhow::Result<PassReport> {
        let mut report = PassReport::default();
        let now = Utc::now().timestamp_millis();
        let orphans: Vec<LineItemRow> = self
            .store
            .push_items_due(&[state::SENDING], i64::MAX, BATCH)
            .await?
            .into_iter()
            .filter(|i| startup || i.updated_at_ms < now - ORPHAN_AFTER_MS)
            .collect();
        let uncertain = self.store.push_items_due(&[state::UNCERTAIN], now, BATCH).await?;
        if !orphans.is_empty() || !uncertain.is_empty() {
            self.reconcile(orphans.iter().chain(&uncertain), &mut report).await?;
        }
        let due = self
            .store
            .push_items_due(&[state::PENDING, state::FAILED], now, BATCH)
            .await?;
        if due.is_empty() {
            return Ok(report);
        }
        let mut currency_ok: HashMap<i64, Result<(), String>> = HashMap::new();
        let mut ready = Vec::new();
        for item in due {
            let Some(client) = item.whmcs_client_id else {
                self.refuse(
                    &item,
                    "no_whmcs_client: the account has no whmcs_client_id",
                    &mut report,
                )
                .await?;
                continue;
            };
            if let std::collections::hash_map::Entry::Vacant(e) = currency_ok.entry(client) {
                e.insert(self.client_currency(client, &item.currency).await);
            }
            match currency_ok.get(&client) {
                Some(Ok(())) => ready.push(item),
                Some(Err(reason)) if reason.starts_with("currency_mismatch") => {
                    self.refuse(&item, reason, &mut report).await?
                }
                Some(Err(reason)) => self.fail(&item, reason, &mut report).await?,
                None => {}
            }
        }
        if self.config.push_as == "invoice" {
            let mut by_cycle: BTreeMap<(i64, i64), Vec<LineItemRow>> = BTreeMap::new();
            for item in ready {
                by_cycle
                    .entry((item.whmcs_client_id.unwrap_or_default(), item.cycle_start_ms))
                    .or_default()
                    .push(item);
            }
            for ((client, _), items) in by_cycle {
                self.push_invoice(client, &items, &mut report).await?;
            }
        } else {
            for item in ready {
                self.push_billable_item(&item, &mut report).await?;
            }
        }
        Ok(report)
    }

    /// `Ok` when WHMCS client `client` is billed in `currency`; otherwise
    /// why not (`currency_mismatch: …` is final, anything else transient).
    async fn client_currency(&self, client: i64, currency: &str) -> Result<(), String> {
        let outcome = self
            .client
            .call("GetClientsDetails", vec![("clientid".into(), client.to_string())])
            .await;
        match outcome {
            Outcome::Success(body) => match api::ClientDetails::from_response(&body) {
                Some(details) if details.currency_code.eq_ignore_ascii_case(currency) => Ok(()),
                Some(details) => Err(format!(
                    "currency_mismatch: WHMCS client {client} is billed in {}, the items are in {currency}",
                    details.currency_code
                )),
                None => Err(format!(
                    "GetClientsDetails for client {client}: no currency in the answer"
                )),
            },
            Outcome::Failed { message } => Err(format!("GetClientsDetails for client {client}: {message}")),
            Outcome::Ambiguous { reason } => Err(format!("GetClientsDetails for client {client}: {reason}")),
        }
    }

    async fn push_billable_item(&self, item: &LineItemRow, report: &mut PassReport) -> anyhow::Result<()> {
        if !self.begin(item, "AddBillableItem").await? {
            return Ok(());
        }
        let params = api::add_billable_item(
            u64::try_from(item.whmcs_client_id.unwrap_or_default()).unwrap_or_default(),
            &cdrate_billing::tag(&item.description, &item.id),
            item.amount,
            &self.config.invoice_action,
        )?;
        match self.client.call("AddBillableItem", params).await {
            Outcome::Success(body) => {
                let id = body.get("billableid").and_then(api::id_of).map(|i| i.to_string());
                self.settle(
                    item,
                    state::SENT,
                    &format!("billableid {}", id.as_deref().unwrap_or("?")),
                    id.as_deref(),
                    None,
                )
                .await?;
                report.sent += 1;
            }
            Outcome::Failed { message } => self.fail(item, &message, report).await?,
            Outcome::Ambiguous { reason } => self.unknown(item, &reason, report).await?,
        }
        Ok(())
    }

    /// One CreateInvoice holding `items` (one client, one cycle).
    async fn push_invoice(&self, client: i64, items: &[LineItemRow], report: &mut PassReport) -> anyhow::Result<()> {
        let mut started = Vec::new();
        for item in items {
            if self.begin(item, "CreateInvoice").await? {
                started.push(item.clone());
            }
        }
        if started.is_empty() {
            return Ok(());
        }
        let lines: Vec<(String, rust_decimal::Decimal)> = started
            .iter()
            .map(|i| (cdrate_billing::tag(&i.description, &i.id), i.amount))
            .collect();
        let notes = format!(
            "cdrate usage {}",
            started
                .iter()
                .map(|i| format!("[cdrate:{}]", i.id))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let params = api::create_invoice(u64::try_from(client).unwrap_or_default(), &lines, &notes)?;
        match self.client.call("CreateInvoice", params).await {
            Outcome::Success(body) => {
                let invoice = body.get("invoiceid").and_then(api::id_of);
                for item in &started {
                    let detail = format!("invoice {}", invoice.map_or("?".to_owned(), |i| i.to_string()));
                    let invoice = invoice.and_then(|i| i64::try_from(i).ok());
                    self.settle(item, state::SENT, &detail, None, invoice).await?;
                    report.sent += 1;
                }
            }
            Outcome::Failed { message } => {
                for item in &started {
                    self.fail(item, &message, report).await?;
                }
            }
            Outcome::Ambiguous { reason } => {
                for item in &started {
                    self.unknown(item, &reason, report).await?;
                }
            }
        }
        Ok(())
    }

    /// Looks for each item's tag on its client's newest invoices.
    async fn reconcile<'i>(
        &self,
        items: impl Iterator<Item = &'i LineItemRow>,
        report: &mut PassReport,
    ) -> anyhow::Result<()> {
        let mut by_client: BTreeMap<i64, Vec<&LineItemRow>> = BTreeMap::new();
        for item in items {
            by_client
                .entry(item.whmcs_client_id.unwrap_or_default())
                .or_default()
                .push(item);
        }
        for (client, items) in by_client {
            let found = match self.tags_on_invoices(client).await {
                Ok(found) => found,
                Err(reason) => {
                    tracing::warn!(client, reason, "reconciliation could not read the client's invoices");
                    for item in items {
                        self.leave_uncertain(item, &format!("reconciliation failed: {reason}"))
                            .await?;
                    }
                    continue;
                }
            };
            for item in items {
                if let Some(invoice) = found.get(&item.id) {
                    let from = [state::SENDING, state::UNCERTAIN];
                    let t = Transition {
                        from: &from,
                        to: state::SENT,
                        detail: &format!("reconciled: found on invoice {invoice}"),
                        invoice_id: Some(*invoice),
                        now_ms: Utc::now().timestamp_millis(),
                        ..Default::default()
                    };
                    if self.store.transition_item(&item.id, &t).await? {
                        report.reconciled += 1;
                    }
                } else if self.config.push_as == "invoice" {
                    // CreateInvoice is visible at once: not found = not created.
                    let from = [state::SENDING, state::UNCERTAIN];
                    let t = Transition {
                        from: &from,
                        to: state::PENDING,
                        detail: "reconciled: on no invoice, so never created; will push again",
                        now_ms: Utc::now().timestamp_millis(),
                        ..Default::default()
                    };
                    self.store.transition_item(&item.id, &t).await?;
                } else {
                    self.leave_uncertain(
                        item,
                        "not on any invoice yet (a billable item is invisible until invoiced)",
                    )
                    .await?;
                    report.uncertain += 1;
                }
            }
        }
        Ok(())
    }

    /// `item id → invoice id` for every cdrate tag on the newest invoices of
    /// `client`, up to `reconcile_invoices` of them.
    async fn tags_on_invoices(&self, client: i64) -> Result<HashMap<String, i64>, String> {
        let mut found = HashMap::new();
        let mut start = 0u64;
        let mut seen = 0u32;
        while seen < self.config.reconcile_invoices {
            let page = match self
                .client
                .call(
                    "GetInvoices",
                    api::get_invoices(u64::try_from(client).unwrap_or_default(), start, 25),
                )
                .await
            {
                Outcome::Success(body) => body,
                Outcome::Failed { message } => return Err(message),
                Outcome::Ambiguous { reason } => return Err(reason),
            };
            let summaries = api::InvoiceSummary::list_from_response(&page);
            for summary in &summaries {
                seen += 1;
                let invoice = match self
                    .client
                    .call("GetInvoice", vec![("invoiceid".into(), summary.id.to_string())])
                    .await
                {
                    Outcome::Success(body) => api::Invoice::from_response(&body).ok_or("unreadable invoice")?,
                    Outcome::Failed { message } => return Err(message),
                    Outcome::Ambiguous { reason } => return Err(reason),
                };
                let id = i64::try_from(invoice.id).map_err(|_| "invoice id out of range")?;
                for line in &invoice.lines {
                    if let Some(tag) = cdrate_billing::find_tag(&line.description) {
                        found.insert(tag.to_owned(), id);
                    }
                }
                if seen >= self.config.reconcile_invoices {
                    break;
                }
            }
            match api::next_page_start(&page) {
                Some(next) if !summaries.is_empty() => start = next,
                _ => break,
            }
        }
        Ok(found)
    }

    /// Marks `item` as being sent; `false` if another pass got it first.
    async fn begin(&self, item: &LineItemRow, action: &str) -> anyhow::Result<bool> {
        let from = [state::PENDING, state::FAILED];
        let t = Transition {
            from: &from,
            to: state::SENDING,
            detail: action,
            attempt: true,
            now_ms: Utc::now().timestamp_millis(),
            ..Default::default()
        };
        Ok(self.store.transition_item(&item.id, &t).await?)
    }

    async fn settle(
        &self,
        item: &LineItemRow,
        to: &str,
        detail: &str,
        whmcs_ref: Option<&str>,
        invoice_id: Option<i64>,
    ) -> anyhow::Result<()> {
        let from = [state::SENDING];
        let t = Transition {
            from: &from,
            to,
            detail,
            whmcs_ref,
            invoice_id,
            now_ms: Utc::now().timestamp_millis(),
            ..Default::default()
        };
        self.store.transition_item(&item.id, &t).await?;
        Ok(())
    }

    /// WHMCS said no (or could not be reached): nothing was created, so the
    /// item is retried after a back-off that doubles per attempt.
    async fn fail(&self, item: &LineItemRow, message: &str, report: &mut PassReport) -> anyhow::Result<()> {
        let now = Utc::now().timestamp_millis();
        let attempts = u32::try_from(item.attempts.max(0)).unwrap_or(u32::MAX).min(20);
        let backoff_s = self
            .config
            .retry_initial_seconds
            .max(1)
            .saturating_mul(1u64 << attempts.min(16))
            .min(self.config.retry_max_seconds.max(1));
        let from = [state::PENDING, state::FAILED, state::SENDING];
        let t = Transition {
            from: &from,
            to: state::FAILED,
            detail: message,
            last_error: Some(message),
            next_attempt_at_ms: Some(now.saturating_add(i64::try_from(backoff_s * 1000).unwrap_or(i64::MAX))),
            now_ms: now,
            ..Default::default()
        };
        self.store.transition_item(&item.id, &t).await?;
        tracing::warn!(item = %item.id, error = message, retry_in_s = backoff_s, "WHMCS push failed");
        report.failed += 1;
        Ok(())
    }

    /// The request may or may not have created something: never resend it
    /// blindly. Reconciliation will look for it.
    async fn unknown(&self, item: &LineItemRow, reason: &str, report: &mut PassReport) -> anyhow::Result<()> {
        let from = [state::SENDING];
        let now = Utc::now().timestamp_millis();
        let t = Transition {
            from: &from,
            to: state::UNCERTAIN,
            detail: reason,
            last_error: Some(reason),
            // Look for it on the next pass already: often it is found at once.
            next_attempt_at_ms: Some(now),
            now_ms: now,
            ..Default::default()
        };
        self.store.transition_item(&item.id, &t).await?;
        tracing::warn!(item = %item.id, reason, "WHMCS push outcome unknown; will reconcile by tag");
        report.uncertain += 1;
        Ok(())
    }

    async fn leave_uncertain(&self, item: &LineItemRow, reason: &str) -> anyhow::Result<()> {
        let from = [state::SENDING, state::UNCERTAIN];
        let now = Utc::now().timestamp_millis();
        let t = Transition {
            from: &from,
            to: state::UNCERTAIN,
            detail: reason,
            last_error: Some(reason),
            next_attempt_at_ms: Some(now.saturating_add(
                i64::try_from(self.config.uncertain_recheck_seconds.saturating_mul(1000)).unwrap_or(i64::MAX),
            )),
            now_ms: now,
            ..Default::default()
        };
        self.store.transition_item(&item.id, &t).await?;
        Ok(())
    }

    async fn refuse(&self, item: &LineItemRow, reason: &str, report: &mut PassReport) -> anyhow::Result<()> {
        let from = [state::PENDING, state::FAILED];
        let t = Transition {
            from: &from,
            to: state::REFUSED,
            detail: reason,
            last_error: Some(reason),
            now_ms: Utc::now().timestamp_millis(),
            ..Default::default()
        };
        self.store.transition_item(&item.id, &t).await?;
        tracing::error!(item = %item.id, reason, "line item refused; not pushed");
        report.refused += 1;
        Ok(())
    }
}
