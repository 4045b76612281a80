//! `GET /v1/calls`: rated calls, filtered by account and start time, as
//! JSON, paged by id.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
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
}

pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<CallsQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = query?;
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
    };
    let calls = state.store.list_calls(&filter).await?;
    let next = (calls.len() == limit)
        .then(|| calls.last().map(|c| c.call.id.clone()))
        .flatten();
    Ok(Json(serde_json::json!({"calls": calls, "next": next})))
}
