//! Rated calls and usage totals, always written together in one transaction.
//!
//! Idempotency is by key, not by read-then-hope: a row replaces the stored
//! one only if its `(version, rating_version)` is higher (a source's
//! correction, or a re-rating). A redelivered record therefore changes
//! nothing, and totals move by exactly the difference between the old and
//! the new row, so they always equal the sum of the stored costs.

use std::collections::HashMap;

use cdrate_core::RatedCall;
use rust_decimal::Decimal;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::quarantine::QuarantineEntry;
use crate::{parse_decimal, to_ms, Backend, Store, StoreError};

/// A rated call to store.
pub type RatedRow = RatedCall;

/// What one batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Calls stored for the first time.
    pub inserted: usize,
    /// Calls whose stored row was replaced by a higher version or rating.
    pub replaced: usize,
    /// Rows that changed nothing (redeliveries, stale versions).
    pub unchanged: usize,
    /// Per input row: whether it was written.
    pub written: Vec<bool>,
    pub quarantined: usize,
}

/// Filter for listing rated calls.
#[derive(Debug, Clone, Default)]
pub struct CallFilter {
    pub account: Option<String>,
    /// Start time, inclusive, epoch ms.
    pub from_ms: Option<i64>,
    /// Start time, exclusive, epoch ms.
    pub to_ms: Option<i64>,
    /// Only ids greater than this (keyset paging).
    pub after_id: Option<String>,
    /// Answer time from (inclusive) / to (exclusive), epoch ms: the calls
    /// of a billing cycle. Unanswered calls never match.
    pub answer_from_ms: Option<i64>,
    pub answer_to_ms: Option<i64>,
    pub limit: usize,
}

/// Running totals of one account in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageTotal {
    pub account_id: String,
    pub currency: String,
    pub calls: i64,
    pub charged_seconds: i64,
    pub cost: Decimal,
}

const COLUMNS: &str = "id, version, account_id, source, account_key, direction, caller, callee, callee_e164, \
    start_at_ms, answer_at_ms, end_at_ms, billable_ms, disposition, plan, prefix, destination, band, \
    charged_seconds, cost, currency, note, tariff_version, rating_version, rated_at_ms, record";
const COLUMN_COUNT: usize = 26;
const COST_COLUMN: usize = 19; // 0-based position of `cost` in COLUMNS
const ROWS_PER_STATEMENT: usize = 200;

/// What is stored for one id, as far as totals are concerned.
#[derive(Debug, Clone)]
struct Stored {
    version: i64,
    rating_version: i64,
    account_id: String,
    currency: String,
    charged_seconds: i64,
    cost: Decimal,
}

#[derive(Default)]
struct Delta {
    calls: i64,
    charged_seconds: i64,
    cost: Decimal,
}

fn wire<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// How often a rating batch is tried when it meets a concurrent writer.
const WRITE_ATTEMPTS: u32 = 5;

fn seconds_i64(s: u64) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX)
}

impl Store {
    /// Writes a rating batch in one transaction: rated calls (idempotently),
    /// the usage totals they change, quarantine entries, and the removal of
    /// quarantine entries the batch has now rated.
    pub async fn apply_rating_batch(
        &self,
        rated: &[RatedRow],
        quarantined: &[QuarantineEntry],
        now_ms: i64,
    ) -> Result<BatchOutcome, StoreError> {
        let records = rated
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<String>, _>>()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.apply_encoded_rating_batch(rated, &records, quarantined, now_ms)
            .await
    }

    /// [`Store::apply_rating_batch`] with each rated call already encoded
    /// as JSON (`records[i]` is `rated[i]`, the `record` column), so a
    /// caller that also publishes the calls encodes them once, off the
    /// write path.
    ///
    /// On PostgreSQL, writers may overlap (several rating workers). A batch
    /// that meets another transaction's uncommitted version of one of its
    /// calls (a write that did not do what the batch planned) or a
    /// deadlock is rolled back and tried again from a fresh read, so the
    /// totals never count a call twice.
    pub async fn apply_encoded_rating_batch(
        &self,
        rated: &[RatedRow],
        records: &[String],
        quarantined: &[QuarantineEntry],
        now_ms: i64,
    ) -> Result<BatchOutcome, StoreError> {
        if records.len() != rated.len() {
            return Err(StoreError::Corrupt(format!(
                "{} rated calls but {} encoded records",
                rated.len(),
                records.len()
            )));
        }
        let mut attempt = 1;
        loop {
            match self.try_rating_batch(rated, records, quarantined, now_ms).await {
                Err(e) if e.is_write_conflict() && attempt < WRITE_ATTEMPTS => {
                    tracing::debug!(error = %e, attempt, "rating batch met a concurrent writer; trying again");
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    async fn try_rating_batch(
        &self,
        rated: &[RatedRow],
        records: &[String],
        quarantined: &[QuarantineEntry],
        now_ms: i64,
    ) -> Result<BatchOutcome, StoreError> {
        let mut out = BatchOutcome {
            written: vec![false; rated.len()],
            ..BatchOutcome::default()
        };
        let mut tx = self.write.begin().await?;

        // The stored state of every id in the batch.
        let ids: Vec<&str> = rated.iter().map(|r| r.call.id.as_str()).collect();
        let mut state = self.load_stored(&mut tx, &ids).await?;
        let existed: std::collections::HashSet<String> = state.keys().cloned().collect();

        // Decide per row, in batch order, so a batch holding two versions of
        // one call ends with the higher one. Keep the last winner per id.
        let mut winners: HashMap<&str, usize> = HashMap::new();
        let mut deltas: HashMap<(String, String), Delta> = HashMap::new();
        for (i, row) in rated.iter().enumerate() {
            let id = row.call.id.as_str();
            let new_key = (i64::from(row.call.version), i64::from(row.rating_version));
            let old = state.get(id);
            if let Some(old) = old {
                if new_key <= (old.version, old.rating_version) {
                    out.unchanged += 1;
                    continue;
                }
                let d = deltas
                    .entry((old.account_id.clone(), old.currency.clone()))
                    .or_default();
                d.calls -= 1;
                d.charged_seconds -= old.charged_seconds;
                d.cost -= old.cost;
            }
            let d = deltas
                .entry((row.account_id.clone(), row.currency.to_string()))
                .or_default();
            d.calls += 1;
            d.charged_seconds += seconds_i64(row.charged_seconds);
            d.cost += row.cost;
            if let Some(prev) = winners.insert(id, i) {
                out.written[prev] = false;
            }
            out.written[i] = true;
            state.insert(
                id.to_owned(),
                Stored {
                    version: new_key.0,
                    rating_version: new_key.1,
                    account_id: row.account_id.clone(),
                    currency: row.currency.to_string(),
                    charged_seconds: seconds_i64(row.charged_seconds),
                    cost: row.cost,
                },
            );
        }
        let mut to_write: Vec<usize> = winners.into_values().collect();
        to_write.sort_unstable();
        for i in &to_write {
            if existed.contains(rated[*i].call.id.as_str()) {
                out.replaced += 1;
            } else {
                out.inserted += 1;
            }
        }
        out.unchanged = rated.len() - to_write.len();

        for chunk in to_write.chunks(ROWS_PER_STATEMENT) {
            let written = self
                .upsert_rows(&mut tx, chunk.iter().map(|i| (&rated[*i], records[*i].as_str())))
                .await?;
            // PostgreSQL reports each row the upsert wrote and whether it
            // was new. Rows being replaced are locked by load_stored; a
            // planned insert can still meet another writer's row for the
            // same new id, and then the deltas above are wrong.
            if let Some(written) = written {
                for i in chunk {
                    let id = rated[*i].call.id.as_str();
                    let planned_insert = !existed.contains(id);
                    if written.get(id) != Some(&planned_insert) {
                        return Err(StoreError::WriteConflict(id.to_owned()));
                    }
                }
            }
        }
        self.apply_deltas(&mut tx, deltas).await?;
        // A call rated now no longer needs its quarantine entries: one
        // lookup per chunk, a delete only for the few that exist.
        for chunk in to_write.chunks(ROWS_PER_STATEMENT * 4) {
            let sql = format!(
                "SELECT id, version FROM quarantine WHERE id IN ({})",
                self.placeholders(0, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for i in chunk {
                q = q.bind(rated[*i].call.id.as_str());
            }
            let rated_version: HashMap<&str, i64> = chunk
                .iter()
                .map(|i| (rated[*i].call.id.as_str(), i64::from(rated[*i].call.version)))
                .collect();
            for row in q.fetch_all(&mut *tx).await? {
                let (id, version): (String, i64) = (row.try_get(0)?, row.try_get(1)?);
                if rated_version.get(id.as_str()).is_some_and(|v| version <= *v) {
                    sqlx::query("DELETE FROM quarantine WHERE id = $1 AND version = $2")
                        .bind(id)
                        .bind(version)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        out.quarantined = crate::quarantine::insert(&mut tx, quarantined, now_ms).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn load_stored(
        &self,
        tx: &mut Transaction<'static, Any>,
        ids: &[&str],
    ) -> Result<HashMap<String, Stored>, StoreError> {
        let mut state = HashMap::with_capacity(ids.len());
        let lock = match self.backend {
            // Rows being replaced are locked so a concurrent writer waits.
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        for chunk in ids.chunks(ROWS_PER_STATEMENT * 4) {
            let sql = format!(
                "SELECT id, version, rating_version, account_id, currency, charged_seconds, CAST(cost AS TEXT) \
                 FROM rated_calls WHERE id IN ({}){lock}",
                self.placeholders(0, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            for row in q.fetch_all(&mut **tx).await? {
                let cost: String = row.try_get(6)?;
                state.insert(
                    row.try_get(0)?,
                    Stored {
                        version: row.try_get(1)?,
                        rating_version: row.try_get(2)?,
                        account_id: row.try_get(3)?,
                        currency: row.try_get(4)?,
                        charged_seconds: row.try_get(5)?,
                        cost: parse_decimal(&cost)?,
                    },
                );
            }
        }
        Ok(state)
    }

    async fn upsert_rows<'r>(
        &self,
        tx: &mut Transaction<'static, Any>,
        rows: impl ExactSizeIterator<Item = (&'r RatedRow, &'r str)>,
    ) -> Result<Option<HashMap<String, bool>>, StoreError> {
        let n = rows.len();
        if n == 0 {
            return Ok(None);
        }
        let mut sql = format!("INSERT INTO rated_calls ({COLUMNS}) VALUES ");
        for r in 0..n {
            sql.push_str(if r == 0 { "(" } else { ",(" });
            for c in 0..COLUMN_COUNT {
                let p = r * COLUMN_COUNT + c + 1;
                if c > 0 {
                    sql.push(',');
                }
                if c == COST_COLUMN {
                    sql.push_str(&self.money_param(p));
                } else {
                    sql.push_str(&self.placeholder(p));
                }
            }
            sql.push(')');
        }
        let updates: Vec<String> = COLUMNS
            .split(", ")
            .filter(|c| *c != "id")
            .map(|c| format!("{c} = excluded.{c}"))
            .collect();
        sql.push_str(&format!(
            " ON CONFLICT (id) DO UPDATE SET {} WHERE excluded.version > rated_calls.version \
             OR (excluded.version = rated_calls.version AND excluded.rating_version > rated_calls.rating_version)",
            updates.join(", ")
        ));
        if self.backend == Backend::Postgres {
            // xmax is 0 on a row this statement inserted.
            sql.push_str(" RETURNING id, (xmax = 0) AS inserted");
        }
        let mut q = sqlx::query(&sql);
        for (r, record) in rows {
            let c = &r.call;
            q = q
                .bind(c.id.clone())
                .bind(i64::from(c.version))
                .bind(r.account_id.clone())
                .bind(c.source.as_str())
                .bind(c.account_key.clone())
                .bind(wire(&c.direction))
                .bind(c.caller.clone())
                .bind(c.callee.clone())
                .bind(c.callee_e164.clone())
                .bind(to_ms(c.start_at))
                .bind(c.answer_at.map(to_ms))
                .bind(to_ms(c.end_at))
                .bind(i64::try_from(c.billable_ms).unwrap_or(i64::MAX))
                .bind(wire(&c.disposition))
                .bind(r.plan.clone())
                .bind(r.prefix.clone())
                .bind(r.destination.clone())
                .bind(r.band.clone())
                .bind(seconds_i64(r.charged_seconds))
                .bind(r.cost.to_string())
                .bind(r.currency.to_string())
                .bind(r.note.clone())
                .bind(r.tariff_version)
                .bind(i64::from(r.rating_version))
                .bind(to_ms(r.rated_at))
                .bind(record);
        }
        match self.backend {
            Backend::Postgres => {
                let mut written = HashMap::with_capacity(n);
                for row in q.fetch_all(&mut **tx).await? {
                    written.insert(row.try_get::<String, _>(0)?, row.try_get::<bool, _>(1)?);
                }
                Ok(Some(written))
            }
            // One writer connection: nothing else writes between the read
            // and the upsert.
            Backend::Sqlite => {
                q.execute(&mut **tx).await?;
                Ok(None)
            }
        }
    }

    async fn apply_deltas(
        &self,
        tx: &mut Transaction<'static, Any>,
        deltas: HashMap<(String, String), Delta>,
    ) -> Result<(), StoreError> {
        // In key order: concurrent writers (two rating workers, on
        // PostgreSQL) then lock total rows in one order and cannot deadlock.
        let mut deltas: Vec<((String, String), Delta)> = deltas.into_iter().collect();
        deltas.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for ((account, currency), d) in deltas {
            if d.calls == 0 && d.charged_seconds == 0 && d.cost.is_zero() {
                continue;
            }
            match self.backend {
                // NUMERIC arithmetic in the database is exact and atomic.
                Backend::Postgres => {
                    sqlx::query(
                        "INSERT INTO usage_totals (account_id, currency, calls, charged_seconds, cost) \
                         VALUES ($1, $2, $3, $4, CAST($5 AS NUMERIC)) ON CONFLICT (account_id, currency) DO UPDATE SET \
                         calls = usage_totals.calls + excluded.calls, \
                         charged_seconds = usage_totals.charged_seconds + excluded.charged_seconds, \
                         cost = usage_totals.cost + excluded.cost",
                    )
                    .bind(account)
                    .bind(currency)
                    .bind(d.calls)
                    .bind(d.charged_seconds)
                    .bind(d.cost.to_string())
                    .execute(&mut **tx)
                    .await?;
                }
                // SQLite has no exact decimal arithmetic: add in Rust. The
                // single writer connection makes read-modify-write safe.
                Backend::Sqlite => {
                    let row = sqlx::query(
                        "SELECT calls, charged_seconds, cost FROM usage_totals WHERE account_id = $1 AND currency = $2",
                    )
                    .bind(account.as_str())
                    .bind(currency.as_str())
                    .fetch_optional(&mut **tx)
                    .await?;
                    let (calls, secs, cost) = match row {
                        Some(r) => {
                            let cost: String = r.try_get(2)?;
                            (r.try_get::<i64, _>(0)?, r.try_get::<i64, _>(1)?, parse_decimal(&cost)?)
                        }
                        None => (0, 0, Decimal::ZERO),
                    };
                    sqlx::query(
                        "INSERT INTO usage_totals (account_id, currency, calls, charged_seconds, cost) VALUES ($1, $2, $3, $4, $5) \
                         ON CONFLICT (account_id, currency) DO UPDATE SET calls = excluded.calls, \
                         charged_seconds = excluded.charged_seconds, cost = excluded.cost",
                    )
                    .bind(account)
                    .bind(currency)
                    .bind(calls + d.calls)
                    .bind(secs + d.charged_seconds)
                    .bind((cost + d.cost).to_string())
                    .execute(&mut **tx)
                    .await?;
                }
            }
        }
        Ok(())
    }

    /// Rated calls matching `filter`, ordered by id (for paging) when
    /// `after_id` is set, else by start time.
    pub async fn list_calls(&self, filter: &CallFilter) -> Result<Vec<RatedCall>, StoreError> {
        let mut sql = String::from("SELECT record FROM rated_calls WHERE 1=1");
        let mut n = 0;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        if filter.account.is_some() {
            sql.push_str(&format!(" AND account_id = {}", next()));
        }
        if filter.from_ms.is_some() {
            sql.push_str(&format!(" AND start_at_ms >= {}", next()));
        }
        if filter.to_ms.is_some() {
            sql.push_str(&format!(" AND start_at_ms < {}", next()));
        }
        if filter.answer_from_ms.is_some() {
            sql.push_str(&format!(" AND answer_at_ms >= {}", next()));
        }
        if filter.answer_to_ms.is_some() {
            sql.push_str(&format!(" AND answer_at_ms < {}", next()));
        }
        if filter.after_id.is_some() {
            sql.push_str(&format!(" AND id > {} ORDER BY id", next()));
        } else {
            sql.push_str(" ORDER BY start_at_ms, id");
        }
        sql.push_str(&format!(" LIMIT {}", next()));
        let mut q = sqlx::query(&sql);
        if let Some(a) = &filter.account {
            q = q.bind(a.clone());
        }
        if let Some(f) = filter.from_ms {
            q = q.bind(f);
        }
        if let Some(t) = filter.to_ms {
            q = q.bind(t);
        }
        if let Some(f) = filter.answer_from_ms {
            q = q.bind(f);
        }
        if let Some(t) = filter.answer_to_ms {
            q = q.bind(t);
        }
        if let Some(a) = &filter.after_id {
            q = q.bind(a.clone());
        }
        q = q.bind(i64::try_from(filter.limit).unwrap_or(i64::MAX));
        q.fetch_all(&self.read).await?.iter().map(decode_record).collect()
    }

    /// The stored rating of one call.
    pub async fn find_call(&self, id: &str) -> Result<Option<RatedCall>, StoreError> {
        let row = sqlx::query("SELECT record FROM rated_calls WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(decode_record).transpose()
    }

    /// Running totals of every account.
    pub async fn usage_totals(&self) -> Result<Vec<UsageTotal>, StoreError> {
        let rows = sqlx::query(
            "SELECT account_id, currency, calls, charged_seconds, CAST(cost AS TEXT) FROM usage_totals ORDER BY account_id, currency",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                let cost: String = r.try_get(4)?;
                Ok(UsageTotal {
                    account_id: r.try_get(0)?,
                    currency: r.try_get(1)?,
                    calls: r.try_get(2)?,
                    charged_seconds: r.try_get(3)?,
                    cost: parse_decimal(&cost)?,
                })
            })
            .collect()
    }

    /// Totals recomputed from the rated calls themselves, to check the
    /// running totals against (tests, `cdrate rerate`).
    pub async fn recomputed_totals(&self) -> Result<Vec<UsageTotal>, StoreError> {
        let rows = sqlx::query("SELECT account_id, currency, charged_seconds, CAST(cost AS TEXT) FROM rated_calls")
            .fetch_all(&self.read)
            .await?;
        let mut sums: std::collections::BTreeMap<(String, String), (i64, i64, Decimal)> = Default::default();
        for r in &rows {
            let cost: String = r.try_get(3)?;
            let e = sums.entry((r.try_get(0)?, r.try_get(1)?)).or_default();
            e.0 += 1;
            e.1 += r.try_get::<i64, _>(2)?;
            e.2 += parse_decimal(&cost)?;
        }
        Ok(sums
            .into_iter()
            .map(|((account_id, currency), (calls, charged_seconds, cost))| UsageTotal {
                account_id,
                currency,
                calls,
                charged_seconds,
                cost,
            })
            .collect())
    }

    /// Number of rated calls matching `filter` (its paging fields ignored).
    pub async fn count_calls_matching(&self, filter: &CallFilter) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) FROM rated_calls WHERE ($1 = '' OR account_id = $1) AND start_at_ms >= $2 AND start_at_ms < $3",
        )
        .bind(filter.account.clone().unwrap_or_default())
        .bind(filter.from_ms.unwrap_or(i64::MIN))
        .bind(filter.to_ms.unwrap_or(i64::MAX))
        .fetch_one(&self.read)
        .await?;
        Ok(row.try_get(0)?)
    }

    /// The stored version of each of `ids` that is rated (absent ids are
    /// not in the map).
    pub async fn stored_versions(&self, ids: &[&str]) -> Result<HashMap<String, i64>, StoreError> {
        let mut out = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(ROWS_PER_STATEMENT * 4) {
            let sql = format!(
                "SELECT id, version FROM rated_calls WHERE id IN ({})",
                self.placeholders(0, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            for row in q.fetch_all(&self.read).await? {
                out.insert(row.try_get(0)?, row.try_get(1)?);
            }
        }
        Ok(out)
    }

    /// Number of rated calls stored.
    pub async fn count_calls(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) FROM rated_calls")
            .fetch_one(&self.read)
            .await?
            .try_get(0)?)
    }
}

fn decode_record(row: &AnyRow) -> Result<RatedCall, StoreError> {
    let json: String = row.try_get(0)?;
    serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(format!("rated call record: {e}")))
}
