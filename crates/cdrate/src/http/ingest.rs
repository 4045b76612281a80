//! `POST /ingest/calls`: CallRecord JSON, one object or an array — the
//! generic source any provider or script can use. Every record is checked
//! before any is appended; the answer is 202 only after all of them are
//! durable on the bus.

use std::net::SocketAddr;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cdrate_bus::Outgoing;
use cdrate_core::call::CALL_SCHEMA;
use cdrate_core::{CallRecord, Source};
use chrono::{SecondsFormat, Utc};

use super::sources::{read_body, Incoming};
use super::{ApiError, AppState};

/// Longest id accepted; ids are keys everywhere downstream.
const MAX_ID_BYTES: usize = 256;

/// Bad input is answered 4xx with its code and kept as a dead letter
/// (source `generic`), like every provider's.
pub async fn post_calls(
    State(state): State<AppState>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let (body, cut) = match read_body(body, state.body_limit_bytes, state.request_timeout).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let incoming = Incoming {
        source: Source::Generic,
        remote,
        uri,
        headers,
        body,
        cut,
    };
    let response = match incoming.reject_if_cut(&state).await {
        Some(response) => response,
        None => match accept(&state, &incoming.body).await {
            Ok(n) => {
                state
                    .metrics
                    .ingest_records
                    .with_label_values(&["generic", "accepted"])
                    .inc_by(n as u64);
                (StatusCode::ACCEPTED, Json(serde_json::json!({"accepted": n}))).into_response()
            }
            Err(e) if e.status == StatusCode::SERVICE_UNAVAILABLE => {
                state
                    .metrics
                    .ingest_records
                    .with_label_values(&["generic", "unavailable"])
                    .inc();
                e.into_response()
            }
            Err(e) => incoming.reject(&state, e.status, e.code, e.message).await,
        },
    };
    state
        .metrics
        .ingest_request_duration
        .with_label_values(&["generic"])
        .observe(started.elapsed().as_secs_f64());
    response
}

async fn accept(state: &AppState, body: &[u8]) -> Result<usize, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("malformed_payload", format!("not JSON: {e}")))?;
    let items = match value {
        serde_json::Value::Array(items) => items,
        one => vec![one],
    };
    if items.is_empty() {
        return Err(ApiError::bad_request("empty_batch", "no records in the body"));
    }
    let received_at = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    let mut records = Vec::with_capacity(items.len());
    // Ids for the debug log (a call followed by id from ingest to billing);
    // not collected unless debug logging is on.
    let trace = tracing::enabled!(tracing::Level::DEBUG);
    let mut ids = Vec::new();
    for (i, mut item) in items.into_iter().enumerate() {
        let call = parse_record(&mut item, &received_at).map_err(|m| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_record",
                format!("record {i}: {m}"),
            )
        })?;
        let payload = serde_json::to_vec(&call).map_err(|e| ApiError::internal("encode_failed", e))?;
        if trace {
            ids.push(call.id.clone());
        }
        records.push(Outgoing {
            key: call.account_key,
            payload,
        });
    }
    let n = records.len();
    tokio::time::timeout(state.request_timeout, state.appender.append(records))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "append_timeout",
                "the bus did not confirm in time; retry",
            )
        })??;
    for id in &ids {
        tracing::debug!(call_id = %id, source = "generic", "call accepted");
    }
    Ok(n)
}

/// Fills what ingest owns (`schema`, `received_at`) and checks the rest.
fn parse_record(item: &mut serde_json::Value, received_at: &str) -> Result<CallRecord, String> {
    let obj = item.as_object_mut().ok_or("not a JSON object")?;
    obj.entry("schema").or_insert_with(|| CALL_SCHEMA.into());
    obj.entry("received_at").or_insert_with(|| received_at.into());
    let call: CallRecord = serde_json::from_value(item.take()).map_err(|e| e.to_string())?;
    if call.schema != CALL_SCHEMA {
        return Err(format!("schema must be {CALL_SCHEMA:?}"));
    }
    if call.id.is_empty() || call.id.len() > MAX_ID_BYTES {
        return Err(format!("id must be 1 to {MAX_ID_BYTES} bytes"));
    }
    if call.version == 0 {
        return Err("version starts at 1".into());
    }
    if call.account_key.is_empty() {
        return Err("account_key must not be empty".into());
    }
    if call.end_at < call.start_at {
        return Err("end_at is before start_at".into());
    }
    Ok(call)
}
