//! Access control in front of the handlers (issue 7): per route group, the
//! peer address must be in that group's CIDR allowlist (`[access.allow]`),
//! checked before anything else; per protected route, the request must
//! carry an API token with the route's scope, checked before any body is
//! read. A refusal is a 401/403 with a stable code and touches nothing.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::allow::Cidr;
use super::{ApiError, AppState};
use crate::config::AllowConfig;

/// A group of routes sharing an address allowlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Ingest,
    Api,
    Ops,
}

/// The parsed `[access.allow]` lists.
#[derive(Debug, Default)]
pub struct Allowlists {
    ingest: Vec<Cidr>,
    api: Vec<Cidr>,
    ops: Vec<Cidr>,
}

impl Allowlists {
    pub fn from_config(c: &AllowConfig) -> anyhow::Result<Allowlists> {
        let parse = |l: &[String]| l.iter().map(|c| Cidr::parse(c)).collect::<anyhow::Result<Vec<_>>>();
        Ok(Allowlists {
            ingest: parse(&c.ingest)?,
            api: parse(&c.api)?,
            ops: parse(&c.ops)?,
        })
    }

    fn allows(&self, group: Group, peer: SocketAddr) -> bool {
        let list = match group {
            Group::Ingest => &self.ingest,
            Group::Api => &self.api,
            Group::Ops => &self.ops,
        };
        list.is_empty() || list.iter().any(|c| c.contains(peer.ip()))
    }
}

/// Refuses peers outside `group`'s allowlist.
pub async fn allow_group(
    State((state, group)): State<(AppState, Group)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    if state.allowlists.allows(group, peer) {
        next.run(req).await
    } else {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden_address",
            format!("{} may not use these routes", peer.ip()),
        )
        .into_response()
    }
}

/// Refuses requests without a token of `scope` (or `admin`).
pub async fn require_scope(
    State((state, scope)): State<(AppState, &'static str)>,
    req: Request,
    next: Next,
) -> Response {
    match crate::auth::authorize(&state.store, req.headers(), scope).await {
        Ok(_) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}
