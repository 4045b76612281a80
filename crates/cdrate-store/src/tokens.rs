//! API tokens: a name, scopes and the SHA-256 of the secret. The secret
//! itself is never stored; hashing and comparison belong to the caller.

use sqlx::Row;

use crate::{Store, StoreError};

/// A stored token (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    /// Space-separated scopes, e.g. `billing read`.
    pub scopes: String,
    pub secret_sha256: String,
    pub created_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
}

const COLUMNS: &str = "id, name, scopes, secret_sha256, created_at_ms, revoked_at_ms";

fn decode(r: &sqlx::any::AnyRow) -> Result<ApiToken, StoreError> {
    Ok(ApiToken {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        scopes: r.try_get(2)?,
        secret_sha256: r.try_get(3)?,
        created_at_ms: r.try_get(4)?,
        revoked_at_ms: r.try_get(5)?,
    })
}

impl Store {
    pub async fn insert_token(&self, t: &ApiToken) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO api_tokens ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
        ))
        .bind(t.id.as_str())
        .bind(t.name.as_str())
        .bind(t.scopes.as_str())
        .bind(t.secret_sha256.as_str())
        .bind(t.created_at_ms)
        .bind(t.revoked_at_ms)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Every token, oldest first.
    pub async fn list_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM api_tokens ORDER BY created_at_ms, id"))
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(decode).collect()
    }

    /// The token whose secret hashes to `sha256_hex`, revoked or not.
    pub async fn token_by_hash(&self, sha256_hex: &str) -> Result<Option<ApiToken>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM api_tokens WHERE secret_sha256 = $1"))
            .bind(sha256_hex)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(decode).transpose()
    }

    /// Revokes a token by id or name; `false` when none was active.
    pub async fn revoke_token(&self, id_or_name: &str, now_ms: i64) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE api_tokens SET revoked_at_ms = $1 WHERE (id = $2 OR name = $2) AND revoked_at_ms IS NULL",
        )
        .bind(now_ms)
        .bind(id_or_name)
        .execute(&self.write)
        .await?
        .rows_affected();
        Ok(n > 0)
    }
}
