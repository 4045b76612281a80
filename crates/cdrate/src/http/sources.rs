//! What every provider endpoint shares: read the body within the size
//! limit, run the source's adapter, append a record durably before
//! answering 2xx, and keep every rejected payload as a dead letter (raw
//! bytes, headers with secrets redacted, reason, receive time) before
//! answering 4xx with `{code, message}`. A source only decides how to
//! authenticate and which adapter settings apply.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cdrate_bus::Outgoing;
use cdrate_core::Source;
use cdrate_ingest::{Outcome, ParseContext};
use cdrate_store::DeadLetter;
use chrono::Utc;
use http_body_util::BodyExt;

use super::{ApiError, AppState};

/// Headers never stored: credentials and session material.
const REDACTED_HEADERS: &[&str] = &["authorization", "proxy-authorization", "cookie", "set-cookie"];

/// One request as a provider endpoint sees it.
pub struct Incoming {
    pub source: Source,
    pub remote: SocketAddr,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// The body was longer than the limit and was cut there.
    /// Why the body is incomplete, if it is.
    pub cut: Option<BodyCut>,
}

/// Why a body was not read to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyCut {
    /// Longer than the size limit.
    TooLarge,
    /// Not finished within the request timeout (a slow or stalled sender).
    TimedOut,
}

/// Reads at most `limit` bytes of `body` within `timeout`. A longer or
/// slower body is cut and flagged, so what arrived can still be kept as a
/// dead letter.
pub async fn read_body(
    mut body: Body,
    limit: usize,
    timeout: Duration,
) -> Result<(Vec<u8>, Option<BodyCut>), ApiError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut out = Vec::new();
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Ok((out, Some(BodyCut::TimedOut))),
            Ok(None) => return Ok((out, None)),
            Ok(Some(frame)) => frame,
        };
        let frame = frame.map_err(|e| ApiError::bad_request("malformed_payload", format!("reading the body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            let room = limit.saturating_sub(out.len());
            if data.len() > room {
                out.extend_from_slice(&data[..room]);
                return Ok((out, Some(BodyCut::TooLarge)));
            }
            out.extend_from_slice(&data);
        }
    }
}

impl Incoming {
    pub fn headers_json(&self) -> String {
        let map: serde_json::Map<String, serde_json::Value> = self
            .headers
            .iter()
            .map(|(k, v)| {
                let name = k.as_str().to_ascii_lowercase();
                let value = if REDACTED_HEADERS.contains(&name.as_str()) {
                    "***".to_owned()
                } else {
                    String::from_utf8_lossy(v.as_bytes()).into_owned()
                };
                (name, serde_json::Value::String(value))
            })
            .collect();
        serde_json::Value::Object(map).to_string()
    }

    /// Keeps the request as a dead letter and builds the 4xx answer. If the
    /// dead letter cannot be stored the sender gets a 503 and retries, so
    /// the payload is still not lost.
    pub async fn reject(&self, state: &AppState, status: StatusCode, code: &'static str, message: String) -> Response {
        let letter = DeadLetter {
            id: 0,
            source: self.source.as_str().to_owned(),
            received_at_ms: Utc::now().timestamp_millis(),
            reason: code.to_owned(),
            detail: if self.cut.is_some() {
                format!("{message} (body cut at the size limit)")
            } else {
                message.clone()
            },
            remote_addr: self.remote.to_string(),
            headers: self.headers_json(),
            uri: self.uri.to_string(),
            body: self.body.clone(),
            retried_at_ms: None,
            retry_outcome: None,
        };
        let source = self.source.as_str();
        state
            .metrics
            .ingest_records
            .with_label_values(&[source, "rejected"])
            .inc();
        state.metrics.dead_letters.with_label_values(&[source, code]).inc();
        match state.store.insert_dead_letter(&letter).await {
            Ok(id) => {
                tracing::warn!(source, code, dead_letter = id, remote = %self.remote, "payload rejected: {message}");
                ApiError::new(status, code, message).into_response()
            }
            Err(e) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "cannot keep the payload; retry",
            )
            .with_log(e)
            .into_response(),
        }
    }

    /// The answer to a body that was not read to its end (too large, or too
    /// slow), after keeping what arrived as a dead letter.
    pub async fn reject_if_cut(&self, state: &AppState) -> Option<Response> {
        let (status, code, message) = match self.cut? {
            BodyCut::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the body exceeds {} bytes", self.body.len()),
            ),
            BodyCut::TimedOut => (
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "the body did not arrive within the request timeout".to_owned(),
            ),
        };
        Some(self.reject(state, status, code, message).await)
    }

    /// Maps the body with the source's adapter and answers: 200 after a
    /// durable append, 200 for an ignorable event, 4xx + dead letter for a
    /// payload that cannot become a record.
    pub async fn accept(self, state: &AppState, ctx: &ParseContext<'_>) -> Response {
        let started = Instant::now();
        let source = self.source.as_str();
        if let Some(response) = self.reject_if_cut(state).await {
            return response;
        }
        let adapter = match cdrate_ingest::adapter(self.source) {
            Some(a) => a,
            None => return ApiError::internal("no_adapter", source).into_response(),
        };
        let response = match adapter.parse(&self.body, ctx) {
            Outcome::Record(call) => {
                let span = tracing::info_span!("call", call_id = %call.id, source);
                let _enter = span.enter();
                let payload = match serde_json::to_vec(&call) {
                    Ok(p) => p,
                    Err(e) => return ApiError::internal("encode_failed", e).into_response(),
                };
                let append = state.appender.append(vec![Outgoing {
                    key: call.account_key.clone(),
                    payload,
                }]);
                match tokio::time::timeout(state.request_timeout, append).await {
                    Ok(Ok(())) => {
                        tracing::debug!("call accepted");
                        state
                            .metrics
                            .ingest_records
                            .with_label_values(&[source, "accepted"])
                            .inc();
                        (
                            StatusCode::OK,
                            Json(serde_json::json!({"status": "accepted", "id": call.id})),
                        )
                            .into_response()
                    }
                    Ok(Err(e)) => {
                        state
                            .metrics
                            .ingest_records
                            .with_label_values(&[source, "unavailable"])
                            .inc();
                        ApiError::from(e).into_response()
                    }
                    Err(_) => {
                        state
                            .metrics
                            .ingest_records
                            .with_label_values(&[source, "unavailable"])
                            .inc();
                        ApiError::new(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "append_timeout",
                            "the bus did not confirm in time; retry",
                        )
                        .into_response()
                    }
                }
            }
            Outcome::Ignored(reason) => {
                state
                    .metrics
                    .ingest_records
                    .with_label_values(&[source, "ignored"])
                    .inc();
                (
                    StatusCode::OK,
                    Json(serde_json::json!({"status": "ignored", "reason": reason})),
                )
                    .into_response()
            }
            Outcome::Rejected(e) => {
                let status = match e.kind {
                    cdrate_ingest::ErrorKind::BadSignature => StatusCode::FORBIDDEN,
                    _ => StatusCode::BAD_REQUEST,
                };
                self.reject(state, status, e.code(), e.detail.clone()).await
            }
        };
        state
            .metrics
            .ingest_request_duration
            .with_label_values(&[source])
            .observe(started.elapsed().as_secs_f64());
        response
    }
}

/// Equality that takes the same time wherever the inputs differ (the length
/// of the expected secret is not hidden, its content is).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secrets"));
        assert!(constant_time_eq(b"", b""));
    }
}
