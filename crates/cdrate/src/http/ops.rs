//! Operational routes: liveness, readiness (the store and the bus answer,
//! and the bus takes appends in time) and the Prometheus exposition.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;

use super::{ApiError, AppState};

/// How long a failed append keeps the instance not ready.
const FAILURE_HOLD: std::time::Duration = std::time::Duration::from_secs(10);

pub async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

pub async fn ready(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    // A bus that refuses appends, or holds one longer than a request may
    // wait, means ingest answers 503 now: out of rotation until an append
    // succeeds, or for FAILURE_HOLD after the last failure so that an
    // instance nobody sends to can come back and try again.
    if let Some(ago) = state.appender.failing_since().filter(|a| *a < FAILURE_HOLD) {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "bus_unavailable",
            format!("the latest bus append failed {} ms ago", ago.as_millis()),
        ));
    }
    if let Some(age) = state.appender.oldest_in_flight().filter(|a| *a > state.request_timeout) {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "append_stalled",
            format!("a bus append has been in flight for {} ms", age.as_millis()),
        ));
    }
    state
        .store
        .ping()
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", e.to_string()))?;
    state
        .bus
        .lag(&state.names.calls, &state.names.rater_group)
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "bus_unavailable", e.to_string()))?;
    Ok(Json(serde_json::json!({"status": "ready"})))
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
