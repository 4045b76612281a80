//! The environment that points a `cdrate serve` started by a benchmark at
//! its data: the tariffs, the accounts and identities files the caller
//! wrote in the run's directory, and a store and bus of its own (embedded
//! files in that directory, or a fresh PostgreSQL database and a bus
//! namespace on a Kafka broker).

use std::path::Path;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Where the engine keeps its calls.
#[derive(Debug, Clone, Copy)]
pub enum Storage<'a> {
    /// SQLite store and bus log in the run's directory.
    Embedded,
    /// A fresh database `cdrate_<run>` on `postgres` (a server URL) and the
    /// namespace `<run>.` on `brokers`.
    Kafka { postgres: &'a str, brokers: &'a str },
}

/// What [`prepare`] made.
#[derive(Debug, Clone)]
pub struct EngineEnv {
    /// `CDRATE_…` settings for the engine and its CLI commands.
    pub env: Vec<(String, String)>,
    pub store_url: String,
    /// The PostgreSQL database created for the run, if any: (server, name).
    pub database: Option<(String, String)>,
}

/// Builds the environment for a run named `run` (a database and namespace
/// name: ASCII letters and digits) in `dir`, which holds `accounts.csv` and
/// `identities.csv`; creates the run's database on Kafka.
pub async fn prepare(dir: &Path, tariffs: &Path, run: &str, storage: Storage<'_>) -> Result<EngineEnv, Error> {
    let tariffs = tariffs
        .canonicalize()
        .map_err(|e| format!("tariffs directory {}: {e}", tariffs.display()))?;
    let path = |name: &str| dir.join(name).display().to_string();
    let mut env: Vec<(String, String)> = vec![
        ("CDRATE_IMPORT__TARIFFS_DIR".into(), tariffs.display().to_string()),
        ("CDRATE_IMPORT__ACCOUNTS_FILE".into(), path("accounts.csv")),
        ("CDRATE_IMPORT__IDENTITIES_FILE".into(), path("identities.csv")),
        ("CDRATE_LOG__LEVEL".into(), "warn".into()),
    ];
    let (store_url, database) = match storage {
        Storage::Embedded => {
            env.push(("CDRATE_BUS__KIND".into(), "embedded".into()));
            env.push((
                "CDRATE_BUS__EMBEDDED_URL".into(),
                format!("sqlite://{}", path("bus.db")),
            ));
            (format!("sqlite://{}", path("cdrate.db")), None)
        }
        Storage::Kafka { postgres, brokers } => {
            let db = format!("cdrate_{run}");
            crate::pg::create_database(postgres, &db).await?;
            env.push(("CDRATE_BUS__KIND".into(), "kafka".into()));
            env.push(("CDRATE_BUS__KAFKA_BROKERS".into(), brokers.to_owned()));
            env.push(("CDRATE_BUS__NAMESPACE".into(), format!("{run}.")));
            let base = postgres.rsplit_once('/').map_or(postgres, |(b, _)| b);
            (format!("{base}/{db}"), Some((postgres.to_owned(), db)))
        }
    };
    env.push(("CDRATE_STORE__URL".into(), store_url.clone()));
    Ok(EngineEnv {
        env,
        store_url,
        database,
    })
}
