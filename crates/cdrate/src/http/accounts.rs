//! `/v1/accounts`: what the WHMCS server module calls to provision VoIP
//! accounts (create, suspend, unsuspend, terminate, change plan) and to
//! show a customer this cycle's usage.
//!
//! A change is a new accounts version: the newest texts edited
//! (`cdrate_rating::accounts_edit`), validated like an import (plans
//! against the tariffs in force), stored only on top of the version it was
//! made from. Running workers pick it up like any import. Reads need scope
//! `read`, changes scope `admin`.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use cdrate_billing::cycle_containing;
use cdrate_rating::accounts_edit::{edit, AccountChange};
use cdrate_store::AccountTexts;

use super::{ApiError, AppState};

/// Retries when another change stored a version first.
const EDIT_ATTEMPTS: usize = 5;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountBody {
    plan: Option<String>,
    /// When a plan change takes effect (default: now).
    plan_effective_at: Option<DateTime<Utc>>,
    inbound_plan: Option<String>,
    currency: Option<String>,
    country_code: Option<String>,
    national_prefix: Option<String>,
    international_prefix: Option<String>,
    whmcs_client_id: Option<u64>,
    whmcs_service_id: Option<u64>,
    cycle_day: Option<u8>,
    /// Decimal string.
    credit_limit: Option<String>,
    billing: Option<String>,
    identities: Option<Vec<Identity>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    source: String,
    account_key: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusBody {
    /// Why (kept in the version's origin, e.g. WHMCS's suspend reason).
    reason: Option<String>,
}

/// `PUT /v1/accounts/{id}`: creates the account or changes the given fields.
pub async fn put(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<AccountBody>, JsonRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let Json(b) = body?;
    let change = AccountChange {
        plan: b.plan,
        plan_effective_at: b.plan_effective_at,
        inbound_plan: b.inbound_plan,
        currency: b.currency,
        country_code: b.country_code,
        national_prefix: b.national_prefix,
        international_prefix: b.international_prefix,
        whmcs_client_id: b.whmcs_client_id.map(|v| v.to_string()),
        whmcs_service_id: b.whmcs_service_id.map(|v| v.to_string()),
        cycle_day: b.cycle_day.map(|v| v.to_string()),
        credit_limit: b.credit_limit,
        billing: b.billing,
        status: None,
        identities: b
            .identities
            .map(|l| l.into_iter().map(|i| (i.source, i.account_key)).collect()),
    };
    apply(&state, &id, &change, &format!("api: PUT /v1/accounts/{id}")).await
}

/// `POST /v1/accounts/{id}/{suspend|unsuspend|terminate}`.
pub async fn set_status(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    body: Option<Json<StatusBody>>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let status = match action.as_str() {
        "suspend" => "suspended",
        "unsuspend" => "active",
        "terminate" => "terminated",
        _ => return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")),
    };
    let book = state.account_book().await?;
    if book.account(&id).is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_account",
            "no such account",
        ));
    }
    let reason = body.and_then(|Json(b)| b.reason).unwrap_or_default();
    let change = AccountChange {
        status: Some(status.to_owned()),
        ..Default::default()
    };
    let origin = format!("api: {action} {id} {}", reason.replace(['\n', '\r'], " "));
    apply(&state, &id, &change, origin.trim_end()).await
}

async fn apply(
    state: &AppState,
    id: &str,
    change: &AccountChange,
    origin: &str,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    if id.is_empty() || id.len() > 128 || id.contains([',', '"', '\n', '\r']) {
        return Err(ApiError::bad_request(
            "bad_account_id",
            "account ids are 1-128 characters without , \" or line breaks",
        ));
    }
    for _ in 0..EDIT_ATTEMPTS {
        let latest = state.store.latest_accounts().await?.ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "no_accounts",
                "import accounts once before using the API",
            )
        })?;
        let edited = edit(&latest.texts.accounts, &latest.texts.identities, id, change, Utc::now())
            .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string()))?;
        if !edited.changed {
            return Ok((
                StatusCode::OK,
                Json(serde_json::json!({"account": id, "version": latest.version, "changed": false})),
            ));
        }
        validate(state, &edited.accounts, &edited.identities).await?;
        let texts = AccountTexts {
            accounts: edited.accounts,
            identities: edited.identities,
        };
        if let Some(version) = state
            .store
            .edit_accounts(latest.version, &texts, origin, Utc::now().timestamp_millis())
            .await?
        {
            tracing::info!(account = id, version, origin, "accounts changed through the API");
            let status = if edited.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            return Ok((
                status,
                Json(serde_json::json!({"account": id, "version": version, "changed": true})),
            ));
        }
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "concurrent_change",
        "the accounts changed under this request several times; retry",
    ))
}

/// Validates edited texts like an import: every problem, with its code.
async fn validate(state: &AppState, accounts: &str, identities: &str) -> Result<(), ApiError> {
    let book = cdrate_rating::parse_accounts(accounts, identities)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_account", e.to_string()))?;
    let mut books = state.books.lock().await;
    books
        .refresh(&state.store)
        .await
        .map_err(|e| ApiError::internal("store_unavailable", format!("{e:#}")))?;
    let Some((_, tariffs)) = &books.tariffs else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_tariffs",
            "import tariffs first",
        ));
    };
    let problems = book.check_plans(tariffs);
    if let Some(first) = problems.first() {
        let all: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            first.code(),
            all.join("; "),
        ));
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetQuery {
    /// Usage of the cycle containing this instant (default now).
    at: Option<DateTime<Utc>>,
}

/// `GET /v1/accounts/{id}`: the account and its usage in the cycle so far.
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<GetQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = query?;
    let book = state.account_book().await?;
    let account = book
        .account(&id)
        .cloned()
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "unknown_account", "no such account"))?;
    let tz = state.tariffs().await?.plan_timezone(&account.plan).ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "no_tariffs",
            "the account's plan is not in the tariffs",
        )
    })?;
    let at = q.at.unwrap_or_else(Utc::now);
    let cycle = cycle_containing(at, account.cycle_day, tz).map_err(|e| ApiError::internal("cycle", e))?;
    let (calls, amount) = state
        .store
        .usage_between(
            &account.id,
            cycle.start.timestamp_millis(),
            cycle.end.timestamp_millis(),
        )
        .await?;
    let identities: Vec<serde_json::Value> = book
        .identities_of(&account.id)
        .into_iter()
        .map(|(source, key)| serde_json::json!({"source": source.as_str(), "account_key": key}))
        .collect();
    Ok(Json(serde_json::json!({
        "account": account.id,
        "plan": account.plan,
        "inbound_plan": account.inbound_plan,
        "status": account.status.as_str(),
        "currency": account.currency.to_string(),
        "whmcs_client_id": account.whmcs_client_id,
        "whmcs_service_id": account.whmcs_service_id,
        "cycle_day": account.cycle_day,
        "credit_limit": account.credit_limit,
        "billing": account.billing.unwrap_or(state.default_billing).as_str(),
        "identities": identities,
        "cycle": {
            "start": cycle.start,
            "end": cycle.end,
            "label": cycle.label(tz),
        },
        "usage": {"calls": calls, "amount": amount, "currency": account.currency.to_string()},
    })))
}
