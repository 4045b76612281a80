//! Dead letters: every payload ingest rejected, kept byte for byte with the
//! request's headers (secrets already redacted by the caller), source,
//! reason code and receive time, so nothing a sender handed us is lost and
//! an operator can inspect or retry it. Also the Fritz!Box monitors' saved
//! state, a small key-value of its own.

use sqlx::Row;

use crate::{Store, StoreError};

/// A rejected payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Assigned by the store; 0 for a letter not stored yet.
    pub id: i64,
    pub source: String,
    pub received_at_ms: i64,
    /// Stable code: `malformed_payload`, `bad_signature`, `unauthorized`, ….
    pub reason: String,
    pub detail: String,
    pub remote_addr: String,
    /// JSON object of header name → value, secrets redacted.
    pub headers: String,
    /// Path and query as received.
    pub uri: String,
    pub body: Vec<u8>,
    pub retried_at_ms: Option<i64>,
    pub retry_outcome: Option<String>,
}

const COLUMNS: &str =
    "id, source, received_at_ms, reason, detail, remote_addr, headers, uri, body, retried_at_ms, retry_outcome";

fn decode(r: &sqlx::any::AnyRow) -> Result<DeadLetter, StoreError> {
    Ok(DeadLetter {
        id: r.try_get(0)?,
        source: r.try_get(1)?,
        received_at_ms: r.try_get(2)?,
        reason: r.try_get(3)?,
        detail: r.try_get(4)?,
        remote_addr: r.try_get(5)?,
        headers: r.try_get(6)?,
        uri: r.try_get(7)?,
        body: r.try_get(8)?,
        retried_at_ms: r.try_get(9)?,
        retry_outcome: r.try_get(10)?,
    })
}

impl Store {
    /// Keeps a rejected payload; returns its id.
    pub async fn insert_dead_letter(&self, d: &DeadLetter) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO dead_letters (source, received_at_ms, reason, detail, remote_addr, headers, uri, body) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(d.source.as_str())
        .bind(d.received_at_ms)
        .bind(d.reason.as_str())
        .bind(d.detail.as_str())
        .bind(d.remote_addr.as_str())
        .bind(d.headers.as_str())
        .bind(d.uri.as_str())
        .bind(d.body.clone())
        .fetch_one(&self.write)
        .await?;
        Ok(row.try_get(0)?)
    }

    /// Dead letters newest first, optionally of one source and/or reason,
    /// with ids below `before` (paging).
    pub async fn list_dead_letters(
        &self,
        source: Option<&str>,
        reason: Option<&str>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM dead_letters WHERE ($1 = '' OR source = $1) AND ($2 = '' OR reason = $2) \
             AND id < $3 ORDER BY id DESC LIMIT $4"
        ))
        .bind(source.unwrap_or(""))
        .bind(reason.unwrap_or(""))
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(decode).collect()
    }

    pub async fn find_dead_letter(&self, id: i64) -> Result<Option<DeadLetter>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM dead_letters WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(decode).transpose()
    }

    /// Records the outcome of retrying a dead letter.
    pub async fn mark_dead_letter_retried(&self, id: i64, outcome: &str, now_ms: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE dead_letters SET retried_at_ms = $1, retry_outcome = $2 WHERE id = $3")
            .bind(now_ms)
            .bind(outcome)
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Dead letters per source and reason.
    pub async fn dead_letter_counts(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT source, reason, COUNT(*) FROM dead_letters GROUP BY source, reason ORDER BY source, reason",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }

    /// The saved state of a Fritz!Box monitor (opaque JSON).
    pub async fn fritzbox_state(&self, box_id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT state FROM fritzbox_state WHERE box_id = $1")
            .bind(box_id)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    pub async fn save_fritzbox_state(&self, box_id: &str, state: &str, now_ms: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO fritzbox_state (box_id, state, updated_at_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (box_id) DO UPDATE SET state = excluded.state, updated_at_ms = excluded.updated_at_ms",
        )
        .bind(box_id)
        .bind(state)
        .bind(now_ms)
        .execute(&self.write)
        .await?;
        Ok(())
    }
}
