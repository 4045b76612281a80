//! `GET /ingest/zadarma?zd_echo=…` answers Zadarma's URL check with the echo
//! string; `POST /ingest/zadarma` takes `NOTIFY_*` webhooks, verified with
//! the `Signature` header (base64 of the hex HMAC-SHA1 of the event's signed
//! fields, keyed with the API secret) and, optionally, a source-address
//! allowlist. Zadarma sends local times: the configured time zone converts
//! them.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use cdrate_core::Source;
use cdrate_ingest::{zadarma, ParseContext};
use chrono::Utc;
use chrono_tz::Tz;

use super::allow::AllowList;
use super::sources::{read_body, Incoming};
use super::{ApiError, AppState};
use crate::config::{Secret, ZadarmaConfig};

/// Zadarma settings, parsed once.
#[derive(Debug)]
pub struct ZadarmaSource {
    pub secret: Option<Secret>,
    pub pbx_id: Option<String>,
    pub timezone: Tz,
    pub allow: AllowList,
}

impl ZadarmaSource {
    pub fn from_config(c: &ZadarmaConfig) -> anyhow::Result<ZadarmaSource> {
        Ok(ZadarmaSource {
            secret: c.secret.clone(),
            pbx_id: c.pbx_id.clone(),
            timezone: c
                .timezone
                .parse()
                .map_err(|_| anyhow::anyhow!("ingest.zadarma.timezone {:?}", c.timezone))?,
            allow: AllowList::parse(&c.allow)?,
        })
    }
}

impl Default for ZadarmaSource {
    fn default() -> Self {
        ZadarmaSource {
            secret: None,
            pbx_id: None,
            timezone: Tz::UTC,
            allow: AllowList::default(),
        }
    }
}

pub async fn echo(uri: Uri) -> Response {
    match zadarma::echo_response(uri.query().unwrap_or("")) {
        Some(echo) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], echo).into_response(),
        None => ApiError::bad_request("missing_field", "zd_echo is missing from the query").into_response(),
    }
}

pub async fn post(
    State(state): State<AppState>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (body, cut) = match read_body(body, state.body_limit_bytes, state.request_timeout).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let incoming = Incoming {
        source: Source::Zadarma,
        remote,
        uri,
        headers,
        body,
        cut,
    };
    let source = &state.sources.zadarma;
    if !source.allow.permits(remote.ip()) {
        return incoming
            .reject(
                &state,
                StatusCode::FORBIDDEN,
                "forbidden_address",
                "the source address is not allowed".into(),
            )
            .await;
    }
    if incoming.cut.is_none() {
        let Some(secret) = &source.secret else {
            return incoming
                .reject(
                    &state,
                    StatusCode::FORBIDDEN,
                    "bad_signature",
                    "no API secret is configured ([ingest.zadarma] secret)".into(),
                )
                .await;
        };
        // A body with no signed string (no or unknown event) is rejected by
        // the mapping with its own code; anything else must verify first.
        if zadarma::signed_string(&incoming.body).is_some() {
            let signature = incoming
                .headers
                .get("signature")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !zadarma::verify_signature(&incoming.body, signature, secret.expose()) {
                return incoming
                    .reject(
                        &state,
                        StatusCode::FORBIDDEN,
                        "bad_signature",
                        "Signature does not verify".into(),
                    )
                    .await;
            }
        }
    }
    let ctx = ParseContext {
        received_at: Utc::now(),
        timezone: Some(source.timezone),
        box_id: source.pbx_id.as_deref(),
    };
    incoming.accept(&state, &ctx).await
}
