//! [`BusLog`]: the embedded bus's durable append-only log. One partition per
//! topic; offsets are dense integers from 0 that never go back, even after
//! the log is pruned (the next offset lives in `bus_topics`); each consumer
//! group keeps the next offset it has not committed. Appends are one transaction per batch,
//! so a batch is durable (and visible) all at once or not at all.

use sqlx::Row;

use crate::{Store, StoreError};

/// One message of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub offset: i64,
    pub key: String,
    pub payload: Vec<u8>,
}

/// Rows per INSERT statement: well under SQLite's 32,766 parameters.
const ROWS_PER_STATEMENT: usize = 500;

/// The log repository over a [`Store`].
#[derive(Clone, Debug)]
pub struct BusLog {
    store: Store,
}

impl BusLog {
    pub fn new(store: Store) -> BusLog {
        BusLog { store }
    }

    /// Appends `(key, payload)` pairs to `topic` in one transaction and
    /// returns the offset after the last one (the new end of the log).
    pub async fn append(&self, topic: &str, records: &[(&str, &[u8])], now_ms: i64) -> Result<i64, StoreError> {
        let mut tx = self.store.write.begin().await?;
        let next: i64 = sqlx::query("SELECT next_offset FROM bus_topics WHERE topic = $1")
            .bind(topic)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?
            .unwrap_or(0);
        let mut offset = next;
        for chunk in records.chunks(ROWS_PER_STATEMENT) {
            let mut sql = String::from("INSERT INTO bus_log (topic, \"offset\", key, payload, appended_at_ms) VALUES ");
            for i in 0..chunk.len() {
                let p = i * 5;
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!("({})", self.store.placeholders(p, 5)));
            }
            let mut q = sqlx::query(&sql);
            for (key, payload) in chunk {
                q = q
                    .bind(topic)
                    .bind(offset)
                    .bind(*key)
                    .bind(payload.to_vec())
                    .bind(now_ms);
                offset += 1;
            }
            q.execute(&mut *tx).await?;
        }
        sqlx::query(
            "INSERT INTO bus_topics (topic, next_offset) VALUES ($1, $2) \
             ON CONFLICT (topic) DO UPDATE SET next_offset = excluded.next_offset",
        )
        .bind(topic)
        .bind(offset)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(offset)
    }

    /// Up to `max` entries of `topic` from `from` on, in offset order.
    pub async fn read(&self, topic: &str, from: i64, max: usize) -> Result<Vec<LogEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT \"offset\", key, payload FROM bus_log WHERE topic = $1 AND \"offset\" >= $2 ORDER BY \"offset\" LIMIT $3",
        )
        .bind(topic)
        .bind(from)
        .bind(i64::try_from(max).unwrap_or(i64::MAX))
        .fetch_all(&self.store.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LogEntry {
                    offset: r.try_get(0)?,
                    key: r.try_get(1)?,
                    payload: r.try_get(2)?,
                })
            })
            .collect()
    }

    /// The offset the next message of `topic` will get (0 for a new topic).
    pub async fn end(&self, topic: &str) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT next_offset FROM bus_topics WHERE topic = $1")
            .bind(topic)
            .fetch_optional(&self.store.read)
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?.unwrap_or(0))
    }

    /// The next offset `group` has not committed on `topic` (0 if none).
    pub async fn committed(&self, group: &str, topic: &str) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT next_offset FROM bus_offsets WHERE grp = $1 AND topic = $2")
            .bind(group)
            .bind(topic)
            .fetch_optional(&self.store.read)
            .await?;
        Ok(match row {
            Some(r) => r.try_get(0)?,
            None => 0,
        })
    }

    /// Records that `group` has handled `topic` up to (not including)
    /// `next_offset`. Never moves backwards.
    pub async fn commit(&self, group: &str, topic: &str, next_offset: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO bus_offsets (grp, topic, next_offset) VALUES ($1, $2, $3) \
             ON CONFLICT (grp, topic) DO UPDATE SET next_offset = excluded.next_offset \
             WHERE excluded.next_offset > bus_offsets.next_offset",
        )
        .bind(group)
        .bind(topic)
        .bind(next_offset)
        .execute(&self.store.write)
        .await?;
        Ok(())
    }

    /// Deletes entries of `topic` below `offset` (all groups have passed
    /// them); returns how many were removed.
    pub async fn prune(&self, topic: &str, below: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM bus_log WHERE topic = $1 AND \"offset\" < $2")
            .bind(topic)
            .bind(below)
            .execute(&self.store.write)
            .await?;
        Ok(done.rows_affected())
    }
}
