//! API tokens (DESIGN §8): bearer secrets with scopes, stored only as a
//! SHA-256. `cdrate token create` makes one and prints the secret once;
//! [`authorize`] checks a request's `Authorization: Bearer …` header.

use std::io::Read;

use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use cdrate_store::{ApiToken, Store};
use sha2::{Digest, Sha256};

use crate::http::ApiError;

/// Every scope a token can carry. `admin` satisfies any of them.
pub const SCOPES: &[&str] = &["ingest", "read", "billing", "admin"];
/// Prefix of every secret, so a leaked one is recognisable in a scan.
const SECRET_PREFIX: &str = "cdr_";

/// A new token: its stored form and the secret to show once.
pub fn new_token(name: &str, scopes: &[String], now_ms: i64) -> anyhow::Result<(ApiToken, String)> {
    for s in scopes {
        if !SCOPES.contains(&s.as_str()) {
            anyhow::bail!("unknown scope {s:?} (scopes: {})", SCOPES.join(", "));
        }
    }
    if scopes.is_empty() {
        anyhow::bail!("give at least one --scope ({})", SCOPES.join(", "));
    }
    let mut random = [0u8; 36];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut random)?;
    let id = format!("tok_{}", hex(&random[..6]));
    let secret = format!(
        "{SECRET_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&random[6..])
    );
    let token = ApiToken {
        id,
        name: name.to_owned(),
        scopes: scopes.join(" "),
        secret_sha256: hash(&secret),
        created_at_ms: now_ms,
        revoked_at_ms: None,
    };
    Ok((token, secret))
}

/// Hex SHA-256 of a secret, as stored.
pub fn hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The token of a request if it may use `scope`; otherwise the 401/403
/// the client gets. Lookup is by hash, so no stored secret is ever
/// compared byte by byte.
pub async fn authorize(store: &Store, headers: &HeaderMap, scope: &str) -> Result<ApiToken, ApiError> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing_token",
            "this route needs an Authorization: Bearer token",
        ));
    };
    let secret = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "malformed_token",
                "the Authorization header must be \"Bearer <token>\"",
            )
        })?;
    let token = store
        .token_by_hash(&hash(secret))
        .await
        .map_err(|e| ApiError::internal("store_unavailable", e))?
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "bad_token", "unknown token"))?;
    if token.revoked_at_ms.is_some() {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "revoked_token",
            "this token was revoked",
        ));
    }
    if !token.scopes.split(' ').any(|s| s == scope || s == "admin") {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            format!("this route needs a token with scope {scope}"),
        ));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_stored_as_hashes() {
        let (a, secret_a) = new_token("whmcs", &["billing".to_owned()], 1).unwrap();
        let (b, secret_b) = new_token("whmcs", &["billing".to_owned()], 1).unwrap();
        assert_ne!(secret_a, secret_b);
        assert_ne!(a.id, b.id);
        assert!(secret_a.starts_with("cdr_") && secret_a.len() > 40);
        assert_eq!(a.secret_sha256, hash(&secret_a));
        assert!(!a.secret_sha256.contains(&secret_a[4..]));
        assert!(new_token("x", &["root".to_owned()], 1).is_err());
        assert!(new_token("x", &[], 1).is_err());
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
