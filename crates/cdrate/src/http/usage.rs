//! The WHMCS pull side (DESIGN §7, §8): `GET /v1/usage` lists an
//! account's line items of closed cycles not yet on an invoice, and
//! `POST /v1/usage/ack` records the invoice they were added to, so a second
//! pull (for another invoice) returns nothing already billed. Both need a
//! token with scope `billing`. Only accounts billed by `pull` are served:
//! a push account's usage reaches WHMCS through the API, never twice.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use cdrate_rating::{Account, BillingMode};
use cdrate_store::billing::state as item_state;
use cdrate_store::ItemFilter;

use super::{ApiError, AppState};

/// Most items one pull returns; WHMCS invoices are not meant to be longer.
const MAX_ITEMS: usize = 1000;
/// Most items one acknowledgement may name.
const MAX_ACK: usize = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    account: Option<String>,
    whmcs_service_id: Option<u64>,
    whmcs_client_id: Option<u64>,
    /// Only cycles starting at or after this instant.
    from: Option<DateTime<Utc>>,
    /// Only cycles ending at or before this instant (default: now).
    to: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize)]
pub struct UsageItem {
    pub id: String,
    pub kind: String,
    pub destination: String,
    pub calls: i64,
    pub billed_seconds: i64,
    pub amount: Decimal,
    pub currency: String,
    /// Ready for the invoice line, tag included.
    pub description: String,
    pub cycle_start: DateTime<Utc>,
    pub cycle_end: DateTime<Utc>,
}

pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<UsageQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = query?;
    let account = find_account(&state, &q).await?;
    let to = q.to.unwrap_or_else(Utc::now);
    let items = state
        .store
        .line_items(&ItemFilter {
            account: Some(account.id.clone()),
            state: Some(item_state::PENDING.to_owned()),
            delivery: Some("pull".to_owned()),
            cycle_end_until_ms: Some(to.timestamp_millis()),
            limit: MAX_ITEMS,
            ..Default::default()
        })
        .await?;
    let from_ms = q.from.map_or(i64::MIN, |f| f.timestamp_millis());
    let mut out = Vec::with_capacity(items.len());
    for i in items.into_iter().filter(|i| i.cycle_start_ms >= from_ms) {
        out.push(UsageItem {
            description: cdrate_billing::tag(&i.description, &i.id),
            cycle_start: ms(i.cycle_start_ms)?,
            cycle_end: ms(i.cycle_end_ms)?,
            id: i.id,
            kind: i.kind,
            destination: i.destination,
            calls: i.calls,
            billed_seconds: i.billed_seconds,
            amount: i.amount,
            currency: i.currency,
        });
    }
    let total: Decimal = out.iter().map(|i| i.amount).sum();
    Ok(Json(serde_json::json!({
        "account": account.id,
        "whmcs_client_id": account.whmcs_client_id,
        "whmcs_service_id": account.whmcs_service_id,
        "currency": account.currency.to_string(),
        "items": out,
        "total": total,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckBody {
    /// The WHMCS invoice the items were added to.
    invoice_id: u64,
    items: Vec<String>,
}

pub async fn ack(
    State(state): State<AppState>,
    body: Result<Json<AckBody>, JsonRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let Json(body) = body?;
    if body.items.is_empty() || body.items.len() > MAX_ACK {
        return Err(ApiError::bad_request(
            "bad_body",
            format!("items must name 1 to {MAX_ACK} line items"),
        ));
    }
    let invoice =
        i64::try_from(body.invoice_id).map_err(|_| ApiError::bad_request("bad_body", "invoice_id is out of range"))?;
    let outcome = state
        .store
        .ack_items(&body.items, invoice, Utc::now().timestamp_millis())
        .await?;
    let status = if outcome.conflicts.is_empty() && outcome.unknown.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    let mut json = serde_json::json!({
        "invoice_id": body.invoice_id,
        "acked": outcome.acked,
        "already": outcome.already,
        "conflicts": outcome.conflicts,
        "unknown": outcome.unknown,
    });
    if status == StatusCode::CONFLICT {
        // The error shape every 4xx has, plus the details.
        json["code"] = "ack_conflict".into();
        json["message"] =
            "some items are unknown, not pull items, or already on another invoice; the others were acknowledged"
                .into();
    }
    Ok((status, Json(json)))
}

/// The pull account a query names, by id or WHMCS service/client id.
async fn find_account(state: &AppState, q: &UsageQuery) -> Result<Account, ApiError> {
    let book = state.account_book().await?;
    let found = if let Some(id) = &q.account {
        book.account(id).cloned()
    } else if let Some(service) = q.whmcs_service_id {
        book.accounts()
            .iter()
            .find(|a| a.whmcs_service_id == Some(service))
            .cloned()
    } else if let Some(client) = q.whmcs_client_id {
        let mut matching = book.accounts().iter().filter(|a| a.whmcs_client_id == Some(client));
        match (matching.next(), matching.next()) {
            (Some(a), None) => Some(a.clone()),
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request(
                    "ambiguous_account",
                    format!("WHMCS client {client} has several accounts; ask by whmcs_service_id or account"),
                ))
            }
            _ => None,
        }
    } else {
        return Err(ApiError::bad_request(
            "bad_query",
            "give account, whmcs_service_id or whmcs_client_id",
        ));
    };
    let account = found.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "unknown_account", "no such account"))?;
    let mode = account.billing.unwrap_or(state.default_billing);
    if mode != BillingMode::Pull {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "wrong_billing_mode",
            format!(
                "account {} is billed by {}, not pull; its usage never goes through this route",
                account.id,
                mode.as_str()
            ),
        ));
    }
    Ok(account)
}

fn ms(ms: i64) -> Result<DateTime<Utc>, ApiError> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| ApiError::internal("store_corrupt", format!("instant {ms}")))
}
