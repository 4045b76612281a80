//! Storage for cdrate: the only crate that knows SQL.
//!
//! - [`Store`]: a connection to SQLite (embedded default, WAL) or PostgreSQL
//!   through sqlx's `Any` driver, so one set of queries serves both; the few
//!   statements that must differ branch on [`Backend`].
//! - [`migrate`]: the schema migrations of `schemas/sql/{sqlite,postgres}`,
//!   compiled in and applied at open.
//! - [`bus_log`]: [`BusLog`], the embedded bus's append-only log and group
//!   offsets.
//! - [`versions`]: imported tariff and account versions, kept whole.
//! - [`rated`]: rated calls and usage totals, written together, idempotently.
//! - [`quarantine`]: records the rating worker could not price.
//! - [`dead_letters`]: payloads ingest rejected, and Fritz!Box monitor state.
//! - [`billing`]: closed cycles, line items and their WHMCS delivery ledger,
//!   usage alerts.
//! - [`tokens`]: API tokens (hashes only).
//!
//! Conventions: instants are epoch milliseconds, money is an exact decimal
//! (TEXT in SQLite, NUMERIC in PostgreSQL, always read back as text).
//! SQLite gets a single writer connection, so write transactions never race
//! for the lock; readers use their own pool.

pub mod billing;
pub mod bus_log;
pub mod dead_letters;
pub mod migrate;
pub mod quarantine;
pub mod rated;
pub mod tokens;
pub mod versions;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

pub use billing::{AckOutcome, ClosedCycle, CycleClose, Delivery, ItemFilter, LineItemRow, Transition, UnbilledCall};
pub use bus_log::{BusLog, LogEntry};
pub use dead_letters::DeadLetter;
pub use quarantine::QuarantineEntry;
pub use rated::{BatchOutcome, CallFilter, RatedRow, UsageTotal};
pub use tokens::ApiToken;
pub use versions::{AccountTexts, StoredVersion, TariffTexts};

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("unsupported store url {0:?} (use sqlite://PATH or postgres://…)")]
    BadUrl(String),
    #[error("cannot create {path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("stored value is corrupt: {0}")]
    Corrupt(String),
    #[error("migration {0} was changed after it was applied")]
    MigrationChanged(String),
    #[error("call {0} was written by a concurrent transaction")]
    WriteConflict(String),
}

impl StoreError {
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Database(_) => "store_unavailable",
            StoreError::BadUrl(_) => "bad_store_url",
            StoreError::Io { .. } => "store_io",
            StoreError::Corrupt(_) => "store_corrupt",
            StoreError::MigrationChanged(_) => "migration_changed",
            StoreError::WriteConflict(_) => "write_conflict",
        }
    }

    /// A conflict with a concurrent writer that a fresh attempt resolves:
    /// a detected [`StoreError::WriteConflict`], or PostgreSQL's deadlock
    /// (40P01) and serialization failure (40001).
    pub fn is_write_conflict(&self) -> bool {
        match self {
            StoreError::WriteConflict(_) => true,
            StoreError::Database(sqlx::Error::Database(e)) => {
                matches!(e.code().as_deref(), Some("40P01" | "40001"))
            }
            _ => false,
        }
    }
}

/// Connection settings of a store.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// `sqlite://path/to/file.db` or `postgres://user@host:port/db`.
    pub url: String,
    /// Read connections (and, for PostgreSQL, write connections too).
    pub max_connections: u32,
    /// SQLite only: fsync every commit (`synchronous=FULL`) so an
    /// acknowledged write survives power loss, not just a crash.
    pub sqlite_sync_full: bool,
    /// SQLite: the write connection's page cache in KiB. A large cache keeps
    /// the indexes a rating batch updates in memory.
    pub sqlite_writer_cache_kib: u32,
}

impl StoreSettings {
    pub fn new(url: impl Into<String>) -> StoreSettings {
        StoreSettings {
            url: url.into(),
            max_connections: 8,
            sqlite_sync_full: true,
            sqlite_writer_cache_kib: 65_536,
        }
    }
}

/// A handle on the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Backend,
    write: AnyPool,
    read: AnyPool,
}

impl Store {
    /// Connects (creating an SQLite file and its directory if needed) and
    /// applies pending migrations.
    pub async fn open(settings: &StoreSettings) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let url = settings.url.as_str();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::BadUrl(settings.url.clone()));
        };
        let store = match backend {
            Backend::Sqlite => {
                let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
                let path = path.split('?').next().unwrap_or(path);
                if let Some(dir) = std::path::Path::new(path)
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                {
                    std::fs::create_dir_all(dir).map_err(|error| StoreError::Io {
                        path: dir.display().to_string(),
                        error,
                    })?;
                }
                let url = if url.contains('?') {
                    url.to_owned()
                } else {
                    format!("{url}?mode=rwc")
                };
                let options = AnyConnectOptions::from_str(&url)?;
                let sync = if settings.sqlite_sync_full { "FULL" } else { "NORMAL" };
                // Checkpointing every 16 MiB of WAL instead of every 4 MiB
                // halves the copying of hot pages into the main file.
                let pragmas = format!(
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous={sync}; PRAGMA busy_timeout=10000; \
                     PRAGMA foreign_keys=ON; PRAGMA wal_autocheckpoint=4000; PRAGMA temp_store=MEMORY;"
                );
                // The writer's page cache (64 MiB by default) keeps the indexes
                // it updates in memory, which made rating 30% faster; readers
                // keep SQLite's 2 MiB default, since every connection has its own.
                let pool = |max: u32, cache_kib: u32| {
                    let pragmas = format!("{pragmas} PRAGMA cache_size=-{cache_kib};");
                    AnyPoolOptions::new()
                        .max_connections(max)
                        .acquire_timeout(Duration::from_secs(30))
                        .after_connect(move |conn, _| {
                            let pragmas = pragmas.clone();
                            Box::pin(async move {
                                conn.execute(sqlx::raw_sql(&pragmas)).await?;
                                Ok(())
                            })
                        })
                        .connect_with(options.clone())
                };
                // One writer: SQLite has one write lock anyway, and queueing
                // here avoids SQLITE_BUSY between our own transactions.
                let write = pool(1, settings.sqlite_writer_cache_kib).await?;
                let read = pool(settings.max_connections.max(1), 2_000).await?;
                Store { backend, write, read }
            }
            Backend::Postgres => {
                let options = AnyConnectOptions::from_str(url)?;
                let pool = AnyPoolOptions::new()
                    .max_connections(settings.max_connections.max(2))
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(options)
                    .await?;
                Store {
                    backend,
                    write: pool.clone(),
                    read: pool,
                }
            }
        };
        migrate::run(&store).await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A cheap query proving the database answers (for `/ready`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    /// SQLite only: writes a consistent copy of the whole database to
    /// `path` (`VACUUM INTO`), safe while others read and write. `path`
    /// must not exist.
    pub async fn backup_to(&self, path: &std::path::Path) -> Result<(), StoreError> {
        if self.backend != Backend::Sqlite {
            return Err(StoreError::BadUrl(
                "backup copies SQLite stores; back up PostgreSQL with pg_dump".to_owned(),
            ));
        }
        sqlx::query("VACUUM INTO ?")
            .bind(path.display().to_string())
            .execute(&self.read)
            .await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }

    /// The `n`th (1-based) parameter of a statement whose parameters are
    /// bound in order and used once. SQLite gets an anonymous `?`: sqlx
    /// resolves a `$n` by name and SQLite finds a name by scanning, which
    /// made a 5,200-parameter insert cost O(n²) and took 59% of the engine's
    /// CPU under load.
    fn placeholder(&self, n: usize) -> String {
        match self.backend {
            Backend::Sqlite => "?".to_owned(),
            Backend::Postgres => format!("${n}"),
        }
    }

    /// [`Store::placeholder`] for an exact decimal, as the backend stores money.
    fn money_param(&self, n: usize) -> String {
        match self.backend {
            Backend::Sqlite => "?".to_owned(),
            Backend::Postgres => format!("CAST(${n} AS NUMERIC)"),
        }
    }

    /// `p1,p2,…` for `count` parameters starting after `offset`.
    fn placeholders(&self, offset: usize, count: usize) -> String {
        (1..=count)
            .map(|i| self.placeholder(offset + i))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Milliseconds since the epoch of a UTC instant.
pub fn to_ms(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_millis()
}

/// The UTC instant of epoch milliseconds read from the database.
pub fn from_ms(ms: i64) -> Result<chrono::DateTime<chrono::Utc>, StoreError> {
    chrono::DateTime::from_timestamp_millis(ms).ok_or_else(|| StoreError::Corrupt(format!("timestamp {ms} ms")))
}

fn parse_decimal(s: &str) -> Result<rust_decimal::Decimal, StoreError> {
    // PostgreSQL prints NUMERIC in plain notation; SQLite gives back our text.
    rust_decimal::Decimal::from_str(s.trim()).map_err(|_| StoreError::Corrupt(format!("decimal {s:?}")))
}
