//! The HTTP API: the router, the shared state every handler gets, and the
//! one error type every 4xx/5xx goes through (`{"code","message"}`).
//!
//! - [`ingest`]: `POST /ingest/calls`, the generic source.
//! - [`sources`]: what every provider endpoint shares (body limit, adapter,
//!   durable append, dead letters); [`freeswitch`], [`twilio`] and
//!   [`zadarma`] are the provider endpoints.
//! - [`allow`]: CIDR allowlists; [`access`]: the allowlist per route group
//!   and the API token per route, both before any handler runs.
//! - [`calls`]: `GET /v1/calls`, rated calls.
//! - [`accounts`]: `/v1/accounts/…`, provisioning for the WHMCS module.
//! - [`simulate`]: `POST /v1/simulate`, a priced hypothetical call.
//! - [`usage`]: `GET /v1/usage`, `POST /v1/usage/ack`, the WHMCS pull side.
//! - [`ops`]: `/health`, `/ready`, `/metrics`.

pub mod access;
pub mod accounts;
pub mod allow;
pub mod calls;
pub mod freeswitch;
pub mod ingest;
pub mod ops;
pub mod simulate;
pub mod sources;
pub mod twilio;
pub mod usage;
pub mod zadarma;

use std::time::Duration;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cdrate_bus::{Bus, Names};
use cdrate_store::Store;

use crate::appender::{AppendError, Appender};
use crate::metrics::Metrics;

/// Everything a handler needs; cloned per request (all fields are handles).
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub bus: Bus,
    pub names: Names,
    pub appender: Appender,
    pub metrics: Metrics,
    pub request_timeout: Duration,
    pub body_limit_bytes: usize,
    /// Per-source authentication and parsing settings.
    pub sources: std::sync::Arc<Sources>,
    /// Accounts and tariffs in force, reloaded when a newer version is stored.
    pub books: std::sync::Arc<tokio::sync::Mutex<crate::worker::RatingState>>,
    /// Delivery of accounts with an empty `billing` column.
    pub default_billing: cdrate_rating::BillingMode,
    /// `[access.allow]`, parsed.
    pub allowlists: std::sync::Arc<access::Allowlists>,
}

impl AppState {
    /// The tariffs in force (a cheap version check per call).
    pub async fn tariffs(&self) -> Result<std::sync::Arc<cdrate_rating::TariffSet>, ApiError> {
        let mut books = self.books.lock().await;
        books
            .refresh(&self.store)
            .await
            .map_err(|e| ApiError::internal("store_unavailable", format!("{e:#}")))?;
        books
            .tariffs
            .as_ref()
            .map(|(_, t)| t.clone())
            .ok_or_else(|| ApiError::new(StatusCode::CONFLICT, "no_tariffs", "no tariffs imported yet"))
    }

    /// The accounts book in force (a cheap version check per call).
    pub async fn account_book(&self) -> Result<std::sync::Arc<cdrate_rating::AccountBook>, ApiError> {
        let mut books = self.books.lock().await;
        books
            .refresh(&self.store)
            .await
            .map_err(|e| ApiError::internal("store_unavailable", format!("{e:#}")))?;
        // 409 like no_tariffs: the state of the data, not an outage to retry.
        books
            .accounts
            .as_ref()
            .map(|(_, b)| b.clone())
            .ok_or_else(|| ApiError::new(StatusCode::CONFLICT, "no_accounts", "no accounts imported yet"))
    }
}

/// Provider settings, parsed once at start-up.
#[derive(Debug, Default)]
pub struct Sources {
    pub freeswitch: Vec<freeswitch::Pbx>,
    pub twilio: twilio::TwilioSource,
    pub zadarma: zadarma::ZadarmaSource,
}

impl Sources {
    pub fn from_config(c: &crate::config::IngestConfig) -> anyhow::Result<Sources> {
        Ok(Sources {
            freeswitch: c
                .freeswitch
                .pbx
                .iter()
                .map(freeswitch::Pbx::from_config)
                .collect::<anyhow::Result<_>>()?,
            twilio: twilio::TwilioSource::from_config(&c.twilio),
            zadarma: zadarma::ZadarmaSource::from_config(&c.zadarma)?,
        })
    }
}

pub fn router(state: AppState, body_limit_bytes: usize) -> Router {
    use access::Group;
    use axum::middleware::from_fn_with_state;
    // A token check per route, run before the handler reads the body.
    let scope = |s: &'static str| from_fn_with_state((state.clone(), s), access::require_scope);
    let group = |g: Group| from_fn_with_state((state.clone(), g), access::allow_group);
    let ingest = Router::new()
        .route("/ingest/calls", post(ingest::post_calls).route_layer(scope("ingest")))
        .route("/ingest/freeswitch", post(freeswitch::post))
        .route("/ingest/twilio", post(twilio::post))
        .route("/ingest/zadarma", get(zadarma::echo).post(zadarma::post))
        .layer(group(Group::Ingest));
    let api = Router::new()
        .route("/v1/calls", get(calls::list).route_layer(scope("read")))
        .route("/v1/simulate", post(simulate::post).route_layer(scope("read")))
        .route("/v1/usage", get(usage::list).route_layer(scope("billing")))
        .route("/v1/usage/ack", post(usage::ack).route_layer(scope("billing")))
        .route(
            "/v1/accounts/{id}",
            get(accounts::get)
                .route_layer(scope("read"))
                .merge(axum::routing::put(accounts::put).route_layer(scope("admin"))),
        )
        .route(
            "/v1/accounts/{id}/{action}",
            post(accounts::set_status).route_layer(scope("admin")),
        )
        .layer(group(Group::Api));
    let ops = Router::new()
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .layer(group(Group::Ops));
    Router::new()
        .merge(ingest)
        .merge(api)
        .merge(ops)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .layer(DefaultBodyLimit::max(body_limit_bytes))
        .with_state(state)
}

/// An error answer: HTTP status, stable code, human message.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// Logs `detail` with this error's code (for errors whose cause must
    /// not reach the client).
    pub fn with_log(self, detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(code = self.code, error = %detail, "request failed");
        self
    }

    /// A 5xx whose detail goes to the log, not to the client.
    pub fn internal(code: &'static str, detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(code, error = %detail, "request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            code,
            "internal error; see the cdrate log",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (
            self.status,
            Json(serde_json::json!({"code": self.code, "message": self.message})),
        )
            .into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            res.headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from_static("1"));
        }
        res
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        match r {
            JsonRejection::BytesRejection(_) => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", r.body_text())
            }
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                r.body_text(),
            ),
            _ => ApiError::bad_request("malformed_payload", r.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> ApiError {
        ApiError::bad_request("bad_query", r.body_text())
    }
}

impl From<AppendError> for ApiError {
    fn from(e: AppendError) -> ApiError {
        match e {
            AppendError::Busy => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "ingest queue is full; retry later",
            ),
            AppendError::Failed(code) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "bus_unavailable",
                format!("the bus did not accept the records ({code}); retry later"),
            ),
        }
    }
}

impl From<cdrate_store::StoreError> for ApiError {
    fn from(e: cdrate_store::StoreError) -> ApiError {
        ApiError::internal(e.code(), e)
    }
}

#[cfg(test)]
mod contract_tests {
    //! The router and `schemas/openapi.yaml` list the same routes and
    //! methods: a route served but undocumented, or documented but not
    //! served, fails here.

    use std::collections::BTreeSet;

    /// `(METHOD, path)` of every `.route(…)` in `router`'s source.
    fn served() -> BTreeSet<(String, String)> {
        let src = include_str!("mod.rs");
        let start = src.find("pub fn router(").expect("router is defined here");
        let body = &src[start..src[start..].find("\n}\n").map_or(src.len(), |e| start + e)];
        let mut out = BTreeSet::new();
        for chunk in body.split(".route(").skip(1) {
            let path = chunk.split('"').nth(1).expect("a route path literal").to_owned();
            // The handlers of this route: up to the next route.
            for method in ["get", "post", "put", "delete", "patch"] {
                let needle = format!("{method}(");
                let found = chunk.match_indices(&needle).any(|(i, _)| {
                    i == 0 || !chunk.as_bytes()[i - 1].is_ascii_alphanumeric() && chunk.as_bytes()[i - 1] != b'_'
                });
                if found {
                    out.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
        out
    }

    /// `(METHOD, path)` of every operation in the spec (its own layout:
    /// paths at two spaces, methods at four).
    fn documented() -> BTreeSet<(String, String)> {
        let spec = include_str!("../../../../schemas/openapi.yaml");
        let mut out = BTreeSet::new();
        let mut in_paths = false;
        let mut path = String::new();
        for line in spec.lines() {
            if line == "paths:" {
                in_paths = true;
                continue;
            }
            if !in_paths {
                continue;
            }
            if let Some(p) = line.strip_prefix("  /").and_then(|l| l.strip_suffix(':')) {
                path = format!("/{p}");
            } else if let Some(m) = line.strip_prefix("    ").and_then(|l| l.strip_suffix(':')) {
                if ["get", "post", "put", "delete", "patch"].contains(&m) {
                    out.insert((m.to_uppercase(), path.clone()));
                }
            }
        }
        out
    }

    #[test]
    fn every_served_route_is_documented_and_every_documented_route_served() {
        let (served, documented) = (served(), documented());
        assert!(served.len() >= 15, "{served:?}");
        let undocumented: Vec<_> = served.difference(&documented).collect();
        let unserved: Vec<_> = documented.difference(&served).collect();
        assert!(
            undocumented.is_empty(),
            "served but not in schemas/openapi.yaml: {undocumented:?}"
        );
        assert!(
            unserved.is_empty(),
            "in schemas/openapi.yaml but not served: {unserved:?}"
        );
    }
}
