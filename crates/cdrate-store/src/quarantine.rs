//! Records the rating worker could not price, kept with the raw bytes it
//! was given and the reason (a stable code), until a retry rates them.
//! Keyed by (id, version): quarantining the same record again only counts
//! the attempt.

use sqlx::{Any, Row, Transaction};

use crate::{Store, StoreError};

/// One quarantined record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineEntry {
    /// The record's id, or `raw:<topic>:<partition>:<offset>` when the
    /// payload could not even be read.
    pub id: String,
    pub version: i64,
    /// Stable code: `unknown_account`, `no_route`, `bad_number`, ….
    pub reason: String,
    pub detail: String,
    pub account_key: String,
    pub payload: Vec<u8>,
    pub first_seen_at_ms: i64,
    pub last_tried_at_ms: i64,
    pub attempts: i64,
}

pub(crate) async fn insert(
    tx: &mut Transaction<'static, Any>,
    entries: &[QuarantineEntry],
    now_ms: i64,
) -> Result<usize, StoreError> {
    for e in entries {
        sqlx::query(
            "INSERT INTO quarantine (id, version, reason, detail, account_key, payload, first_seen_at_ms, last_tried_at_ms, attempts) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7, 1) ON CONFLICT (id, version) DO UPDATE SET \
             reason = excluded.reason, detail = excluded.detail, last_tried_at_ms = excluded.last_tried_at_ms, \
             attempts = quarantine.attempts + 1",
        )
        .bind(e.id.as_str())
        .bind(e.version)
        .bind(e.reason.as_str())
        .bind(e.detail.as_str())
        .bind(e.account_key.as_str())
        .bind(e.payload.clone())
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
    }
    Ok(entries.len())
}

fn decode(r: &sqlx::any::AnyRow) -> Result<QuarantineEntry, StoreError> {
    Ok(QuarantineEntry {
        id: r.try_get(0)?,
        version: r.try_get(1)?,
        reason: r.try_get(2)?,
        detail: r.try_get(3)?,
        account_key: r.try_get(4)?,
        payload: r.try_get(5)?,
        first_seen_at_ms: r.try_get(6)?,
        last_tried_at_ms: r.try_get(7)?,
        attempts: r.try_get(8)?,
    })
}

impl Store {
    /// Quarantined records, oldest first, optionally of one reason; at most
    /// `limit`, after `(after_id, after_version)` for paging.
    pub async fn quarantine_list(
        &self,
        reason: Option<&str>,
        after: Option<(&str, i64)>,
        limit: usize,
    ) -> Result<Vec<QuarantineEntry>, StoreError> {
        let (a_id, a_ver) = after.unwrap_or(("", -1));
        let rows = sqlx::query(
            "SELECT id, version, reason, detail, account_key, payload, first_seen_at_ms, last_tried_at_ms, attempts \
             FROM quarantine WHERE ($1 = '' OR reason = $1) AND (id > $2 OR (id = $2 AND version > $3)) \
             ORDER BY id, version LIMIT $4",
        )
        .bind(reason.unwrap_or(""))
        .bind(a_id)
        .bind(a_ver)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(decode).collect()
    }

    /// Quarantined records per reason.
    pub async fn quarantine_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT reason, COUNT(*) FROM quarantine GROUP BY reason ORDER BY reason")
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
    }
}
