//! Call reports: one row per call with what a customer disputes a bill
//! with — times in the plan's zone, numbers, destination, durations,
//! charged seconds, cost — as CSV or JSON. Shared by `GET /v1/calls` and
//! `cdrate export calls`.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use cdrate_core::RatedCall;

pub const CSV_COLUMNS: &[&str] = &[
    "call_id",
    "account",
    "start_local",
    "answer_local",
    "timezone",
    "direction",
    "caller",
    "callee",
    "number",
    "destination",
    "duration_s",
    "billable_s",
    "charged_seconds",
    "cost",
    "currency",
    "disposition",
    "note",
];

/// A report row; also the JSON shape of `format=json` reports.
#[derive(Debug, Serialize)]
pub struct ReportRow<'a> {
    pub call_id: &'a str,
    pub account: &'a str,
    pub start_local: String,
    pub answer_local: String,
    pub timezone: String,
    pub direction: &'static str,
    pub caller: &'a str,
    pub callee: &'a str,
    pub number: &'a str,
    pub destination: &'a str,
    /// Whole seconds, rounded up as billing does.
    pub duration_s: u64,
    pub billable_s: u64,
    pub charged_seconds: u64,
    pub cost: String,
    pub currency: String,
    pub disposition: &'static str,
    pub note: &'a str,
}

fn local(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string()
}

pub fn row(c: &RatedCall, tz: Tz) -> ReportRow<'_> {
    ReportRow {
        call_id: &c.call.id,
        account: &c.account_id,
        start_local: local(c.call.start_at, tz),
        answer_local: c.call.answer_at.map(|a| local(a, tz)).unwrap_or_default(),
        timezone: tz.name().to_owned(),
        direction: c.call.direction.as_str(),
        caller: &c.call.caller,
        callee: &c.call.callee,
        number: c.call.callee_e164.as_deref().unwrap_or(""),
        destination: c.destination.as_deref().unwrap_or(""),
        duration_s: c.call.duration_ms.div_ceil(1000),
        billable_s: c.call.billable_ms.div_ceil(1000),
        charged_seconds: c.charged_seconds,
        cost: c.cost.to_string(),
        currency: c.currency.to_string(),
        disposition: c.call.disposition.as_str(),
        note: c.note.as_deref().unwrap_or(""),
    }
}

/// CSV text of `calls` with a header line.
pub fn csv(calls: &[RatedCall], tz: Tz) -> Result<String, csv::Error> {
    let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    w.write_record(CSV_COLUMNS)?;
    for c in calls {
        w.serialize(row(c, tz))?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Most calls one report holds.
pub const MAX_REPORT: usize = 1_000_000;
const PAGE: usize = 1000;

/// The cycle a report names: `current`, `previous`, or the one containing
/// an RFC 3339 instant.
pub fn cycle_of(spec: &str, cycle_day: u8, tz: Tz, now: DateTime<Utc>) -> Result<cdrate_billing::Cycle, String> {
    let at = match spec {
        "current" => now,
        "previous" => {
            let current = cdrate_billing::cycle_containing(now, cycle_day, tz).map_err(|e| e.to_string())?;
            current.start - chrono::Duration::milliseconds(1)
        }
        other => other
            .parse::<DateTime<Utc>>()
            .map_err(|_| "cycle must be current, previous or an RFC 3339 instant".to_owned())?,
    };
    cdrate_billing::cycle_containing(at, cycle_day, tz).map_err(|e| e.to_string())
}

/// Every call of `account` answered in `[from, to)` (open ends allowed),
/// in time order, up to [`MAX_REPORT`].
pub async fn collect(
    store: &cdrate_store::Store,
    account: &str,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<Vec<RatedCall>, cdrate_store::StoreError> {
    let mut calls = Vec::new();
    let mut after = String::new();
    loop {
        let page = store
            .list_calls(&cdrate_store::CallFilter {
                account: Some(account.to_owned()),
                answer_from_ms: from.map(|t| t.timestamp_millis()),
                answer_to_ms: to.map(|t| t.timestamp_millis()),
                after_id: Some(after.clone()),
                limit: PAGE,
                ..Default::default()
            })
            .await?;
        let full = page.len() == PAGE;
        if let Some(last) = page.last() {
            after = last.call.id.clone();
        }
        calls.extend(page);
        if !full || calls.len() >= MAX_REPORT {
            break;
        }
    }
    calls.sort_by(|a, b| (a.call.start_at, &a.call.id).cmp(&(b.call.start_at, &b.call.id)));
    Ok(calls)
}
