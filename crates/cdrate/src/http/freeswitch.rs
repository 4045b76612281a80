//! `POST /ingest/freeswitch`: CDRs from `mod_xml_cdr` — a raw XML body, or
//! `cdr=` form bodies (URL-encoded, base64 or plaintext); the adapter reads
//! the payload by content. The sender must match a configured PBX: HTTP
//! Basic credentials (`cred` in xml_cdr.conf.xml) and/or a CIDR allowlist.
//! A re-sent CDR (FreeSWITCH retries on any non-2xx) gets 2xx again and is
//! rated once: its id is the leg's uuid.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use base64::Engine;
use cdrate_core::Source;
use cdrate_ingest::ParseContext;
use chrono::Utc;

use super::allow::AllowList;
use super::sources::{constant_time_eq, read_body, Incoming};
use super::AppState;
use crate::config::{PbxConfig, Secret};

/// A configured PBX, ready to check requests against.
#[derive(Debug, Clone)]
pub struct Pbx {
    pub name: String,
    pub credentials: Option<(String, Secret)>,
    pub allow: AllowList,
}

impl Pbx {
    pub fn from_config(c: &PbxConfig) -> anyhow::Result<Pbx> {
        Ok(Pbx {
            name: c.name.clone(),
            credentials: c.username.clone().zip(c.password.clone()),
            allow: AllowList::parse(&c.allow)?,
        })
    }

    fn admits(&self, ip: std::net::IpAddr, basic: Option<(&str, &str)>) -> bool {
        let address_ok = self.allow.permits(ip);
        let credentials_ok = match (&self.credentials, basic) {
            (None, _) => true,
            (Some((user, pass)), Some((u, p))) => {
                // Evaluate both comparisons: no early exit on the user name.
                let a = constant_time_eq(user.as_bytes(), u.as_bytes());
                let b = constant_time_eq(pass.expose().as_bytes(), p.as_bytes());
                a & b
            }
            (Some(_), None) => false,
        };
        address_ok && credentials_ok
    }
}

/// `user:password` of an `Authorization: Basic …` header.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
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
        Err(e) => return axum::response::IntoResponse::into_response(e),
    };
    let incoming = Incoming {
        source: Source::Freeswitch,
        remote,
        uri,
        headers,
        body,
        cut,
    };
    let basic = basic_credentials(&incoming.headers);
    let basic_ref = basic.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
    let pbxs = &state.sources.freeswitch;
    let Some(pbx) = pbxs.iter().find(|p| p.admits(remote.ip(), basic_ref)) else {
        let (status, code, message) = if pbxs.is_empty() {
            (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "no FreeSWITCH PBX is configured ([[ingest.freeswitch.pbx]])",
            )
        } else if basic.is_none()
            && pbxs
                .iter()
                .any(|p| p.credentials.is_some() && p.allow.permits(remote.ip()))
        {
            (StatusCode::UNAUTHORIZED, "unauthorized", "credentials required")
        } else if pbxs.iter().all(|p| !p.allow.permits(remote.ip())) {
            (
                StatusCode::FORBIDDEN,
                "forbidden_address",
                "the source address is not allowed",
            )
        } else {
            (StatusCode::UNAUTHORIZED, "unauthorized", "wrong credentials")
        };
        let mut response = incoming.reject(&state, status, code, message.to_owned()).await;
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                "www-authenticate",
                axum::http::HeaderValue::from_static("Basic realm=\"cdrate\""),
            );
        }
        return response;
    };
    tracing::debug!(pbx = %pbx.name, remote = %remote, "CDR from a configured PBX");
    let ctx = ParseContext {
        received_at: Utc::now(),
        timezone: None,
        box_id: None,
    };
    incoming.accept(&state, &ctx).await
}
