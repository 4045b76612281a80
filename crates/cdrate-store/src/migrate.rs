//! Schema migrations: the SQL files of `schemas/sql/{sqlite,postgres}`,
//! compiled into the binary and applied in order, each in its own
//! transaction, recorded in `schema_migrations` with a checksum so an edited
//! migration is refused rather than silently diverging.

use sqlx::Row;

use crate::{Backend, Store, StoreError};

/// `(number, name, sqlite sql, postgres sql)`; both backends share numbers
/// and names.
const MIGRATIONS: &[(i64, &str, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../../schemas/sql/sqlite/0001_init.sql"),
        include_str!("../../../schemas/sql/postgres/0001_init.sql"),
    ),
    (
        2,
        "dead_letters",
        include_str!("../../../schemas/sql/sqlite/0002_dead_letters.sql"),
        include_str!("../../../schemas/sql/postgres/0002_dead_letters.sql"),
    ),
    (
        3,
        "bus_topics",
        include_str!("../../../schemas/sql/sqlite/0003_bus_topics.sql"),
        include_str!("../../../schemas/sql/postgres/0003_bus_topics.sql"),
    ),
    (
        4,
        "billing",
        include_str!("../../../schemas/sql/sqlite/0004_billing.sql"),
        include_str!("../../../schemas/sql/postgres/0004_billing.sql"),
    ),
];

pub async fn run(store: &Store) -> Result<(), StoreError> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at_ms BIGINT NOT NULL)",
    )
    .execute(&store.write)
    .await?;
    for &(version, name, sqlite, postgres) in MIGRATIONS {
        let sql = match store.backend {
            Backend::Sqlite => sqlite,
            Backend::Postgres => postgres,
        };
        let checksum = format!("{:016x}", fnv1a(sql.as_bytes()));
        let mut tx = store.write.begin().await?;
        let applied = sqlx::query("SELECT checksum FROM schema_migrations WHERE version = $1")
            .bind(version)
            .fetch_optional(&mut *tx)
            .await?;
        match applied {
            Some(row) => {
                let stored: String = row.try_get(0)?;
                if stored != checksum {
                    return Err(StoreError::MigrationChanged(format!("{version:04}_{name}")));
                }
            }
            None => {
                sqlx::raw_sql(sql).execute(&mut *tx).await?;
                sqlx::query(
                    "INSERT INTO schema_migrations (version, name, checksum, applied_at_ms) VALUES ($1, $2, $3, $4)",
                )
                .bind(version)
                .bind(name)
                .bind(checksum)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
                tracing::info!(version, name, "applied migration");
            }
        }
        tx.commit().await?;
    }
    Ok(())
}

/// FNV-1a: a stable checksum with no dependency; not for security.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
