//! `POST /ingest/twilio`: Voice status callbacks. Each is verified with
//! `X-Twilio-Signature` before it is mapped: the auth token is the one of the
//! account (or subaccount) the body names in `AccountSid`, and the signed
//! URL is the configured public callback URL with the request's path and
//! raw query. A bad or missing signature is a 403 `bad_signature` and a dead
//! letter. Intermediate statuses (ringing, in-progress) are answered 200 and
//! produce nothing; the final one produces the call.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use cdrate_core::Source;
use cdrate_ingest::{twilio, ParseContext};
use chrono::Utc;

use super::sources::{read_body, Incoming};
use super::AppState;
use crate::config::{Secret, TwilioConfig};

/// Twilio settings, parsed once.
#[derive(Debug, Default)]
pub struct TwilioSource {
    pub public_url: Option<String>,
    /// Auth token per AccountSid.
    pub tokens: HashMap<String, Secret>,
}

impl TwilioSource {
    pub fn from_config(c: &TwilioConfig) -> TwilioSource {
        TwilioSource {
            public_url: c.public_url.clone(),
            tokens: c
                .accounts
                .iter()
                .map(|a| (a.account_sid.clone(), a.auth_token.clone()))
                .collect(),
        }
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
        source: Source::Twilio,
        remote,
        uri,
        headers,
        body,
        cut,
    };
    if incoming.cut.is_none() {
        if let Err(why) = verify(&state.sources.twilio, &incoming) {
            return incoming
                .reject(&state, StatusCode::FORBIDDEN, "bad_signature", why.to_owned())
                .await;
        }
    }
    let ctx = ParseContext {
        received_at: Utc::now(),
        timezone: None,
        box_id: None,
    };
    incoming.accept(&state, &ctx).await
}

fn verify(source: &TwilioSource, incoming: &Incoming) -> Result<(), &'static str> {
    let sid = twilio::account_sid(&incoming.body).ok_or("the body names no AccountSid")?;
    let token = source
        .tokens
        .get(&sid)
        .ok_or("no auth token is configured for this AccountSid")?;
    let path_and_query = incoming.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = match &source.public_url {
        Some(public) => twilio::signed_url(public, path_and_query),
        // Without a configured URL, rebuild it from what the proxy passed on.
        None => {
            let header = |name: &str| incoming.headers.get(name).and_then(|v| v.to_str().ok());
            let scheme = header("x-forwarded-proto").unwrap_or("https");
            let host = header("x-forwarded-host")
                .or_else(|| header("host"))
                .unwrap_or("localhost");
            format!("{scheme}://{host}{path_and_query}")
        }
    };
    let signature = incoming
        .headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if twilio::verify_signature(&url, &incoming.body, signature, token.expose()) {
        Ok(())
    } else {
        Err("X-Twilio-Signature does not verify")
    }
}
