//! `POST /v1/simulate` (DESIGN §8): price a hypothetical call with the
//! tariffs in force and explain the price — by plan with an international
//! number, or by account with the number as that account's users dial it.
//! Needs a token with scope `read`. Nothing is stored.

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use cdrate_core::E164;
use cdrate_rating::{normalize_number, Dialled};

use super::{ApiError, AppState};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulateBody {
    /// Price with this plan; `to` must then be international (`+…`).
    plan: Option<String>,
    /// Or with this account's plan in force at `at`, normalizing `to` with
    /// its numbering plan.
    account: Option<String>,
    to: String,
    /// Answer time (default now).
    at: Option<DateTime<Utc>>,
    /// Billable seconds.
    seconds: u64,
}

pub async fn post(
    State(state): State<AppState>,
    body: Result<Json<SimulateBody>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(b) = body?;
    let at = b.at.unwrap_or_else(Utc::now);
    let unprocessable = |code, message: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message);
    let (plan, number) = match (&b.plan, &b.account) {
        (Some(plan), None) => {
            let number = E164::parse_international(&b.to)
                .map_err(|_| unprocessable("bad_number", format!("{:?} is not an international number", b.to)))?;
            (plan.clone(), number)
        }
        (None, Some(account)) => {
            let book = state.account_book().await?;
            let a = book
                .account(account)
                .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "unknown_account", "no such account"))?;
            match normalize_number(&b.to, &a.numbering) {
                Ok(Dialled::E164(n)) => (a.plan_at(at).to_owned(), n),
                Ok(Dialled::Internal(_)) => {
                    return Err(unprocessable(
                        "internal_number",
                        format!("{:?} is an internal extension", b.to),
                    ))
                }
                Err(e) => return Err(unprocessable("bad_number", e.to_string())),
            }
        }
        _ => {
            return Err(ApiError::bad_request(
                "bad_body",
                "give exactly one of plan and account",
            ))
        }
    };
    let tariffs = state.tariffs().await?;
    let quote = tariffs.price_on(&plan, &number, at, b.seconds).map_err(|e| match e {
        cdrate_rating::PriceError::UnknownPlan(_) => ApiError::new(StatusCode::NOT_FOUND, e.code(), e.to_string()),
        _ => unprocessable(e.code(), e.to_string()),
    })?;
    Ok(Json(crate::cli::simulate::explain_json(
        &plan, &b.to, at, b.seconds, &quote,
    )))
}
