//! `GET /v1/calls`: rated calls, filtered by account and start time, as
//! JSON, paged by id; or, with `account` and `cycle`, the report of one
//! billing cycle (calls by answer time) as JSON or CSV
//! (`format=csv`), times in the account's plan zone.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cdrate_store::CallFilter;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{ApiError, AppState};

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallsQuery {
    account: Option<String>,
    /// Start time from (inclusive), RFC 3339.
    from: Option<DateTime<Utc>>,
    /// Start time to (exclusive), RFC 3339.
    to: Option<DateTime<Utc>>,
    limit: Option<usize>,
    /// Return calls with an id after this one (the previous page's `next`).
    after: Option<String>,
    /// The billing cycle containing this instant (RFC 3339), or `current`
    /// or `previous`; needs `account`.
    cycle: Option<String>,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<CallsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query?;
    if q.cycle.is_some() || q.format.is_some() {
        return report(state, q).await;
    }
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_request(
            "bad_query",
            format!("limit must be 1 to {MAX_LIMIT}"),
        ));
    }
    let filter = CallFilter {
        account: q.account,
        from_ms: q.from.map(|t| t.timestamp_millis()),
        to_ms: q.to.map(|t| t.timestamp_millis()),
        // Paging is by id; the first page is by id too so `next` works.
        after_id: Some(q.after.unwrap_or_default()),
        limit,
        ..Default::default()
    };
    let calls = state.store.list_calls(&filter).await?;
    let next = (calls.len() == limit)
        .then(|| calls.last().map(|c| c.call.id.clone()))
        .flatten();
    Ok(Json(serde_json::json!({"calls": calls, "next": next})).into_response())
}

/// One account's calls of one cycle (or of `from`..`to` by answer time) as
/// a report.
async fn report(state: AppState, q: CallsQuery) -> Result<Response, ApiError> {
    let format = q.format.as_deref().unwrap_or("json");
    if !["json", "csv"].contains(&format) {
        return Err(ApiError::bad_request("bad_query", "format must be json or csv"));
    }
    let Some(account_id) = q.account.clone() else {
        return Err(ApiError::bad_request("bad_query", "a report needs account"));
    };
    let book = state.account_book().await?;
    let account = book
        .account(&account_id)
        .cloned()
        .ok_or_else(|| ApiError::new(axum::http::StatusCode::NOT_FOUND, "unknown_account", "no such account"))?;
    let tz = state
        .tariffs()
        .await?
        .plan_timezone(&account.plan)
        .unwrap_or(chrono_tz::UTC);
    let (from, to) = match q.cycle.as_deref() {
        Some(spec) => {
            let cycle = crate::reports::cycle_of(spec, account.cycle_day, tz, Utc::now())
                .map_err(|m| ApiError::bad_request("bad_query", m))?;
            (Some(cycle.start), Some(cycle.end))
        }
        None => (q.from, q.to),
    };
    let calls = crate::reports::collect(&state.store, &account.id, from, to).await?;
    if format == "csv" {
        let text = crate::reports::csv(&calls, tz).map_err(|e| ApiError::internal("report", e))?;
        let name = format!(
            "attachment; filename=\"calls-{}.csv\"",
            account.id.replace(['"', '\\'], "_")
        );
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (header::CONTENT_DISPOSITION, name),
            ],
            text,
        )
            .into_response());
    }
    let rows: Vec<_> = calls.iter().map(|c| crate::reports::row(c, tz)).collect();
    Ok(Json(serde_json::json!({
        "account": account.id,
        "timezone": tz.name(),
        "from": from,
        "to": to,
        "calls": rows,
    }))
    .into_response())
}
