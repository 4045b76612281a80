//! `cdrate backup DIR`: an online copy of the embedded databases, safe
//! while `cdrate serve` runs (SQLite `VACUUM INTO`, a read transaction).
//!
//! The bus log is copied first, the store second. Restoring both gives a
//! store at least as new as the bus's committed offsets, so the worker
//! replays (idempotently) rather than skips anything; records accepted
//! after the bus copy are not in the backup. PostgreSQL stores and a
//! Kafka bus are backed up with their own tools (pg_dump, Kafka
//! replication); this command refuses them.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use cdrate_store::{Store, StoreSettings};
use clap::Args;

use crate::config::{BusKind, Config};

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Directory to create; receives cdrate.db (and bus.db on the embedded bus).
    dir: PathBuf,
}

pub async fn run(args: BackupArgs, config: &Config) -> anyhow::Result<ExitCode> {
    if !config.store.url.starts_with("sqlite:") {
        anyhow::bail!("the store is PostgreSQL: back it up with pg_dump (see README, Backup)");
    }
    if args.dir.exists() {
        anyhow::bail!("{} exists; give a new directory", args.dir.display());
    }
    std::fs::create_dir_all(&args.dir).with_context(|| format!("creating {}", args.dir.display()))?;
    let dir = std::fs::canonicalize(&args.dir)?;
    if config.bus.kind == BusKind::Embedded {
        let bus = Store::open(&StoreSettings::new(config.bus.embedded_url.clone())).await?;
        bus.backup_to(&dir.join("bus.db"))
            .await
            .context("copying the bus log")?;
        bus.close().await;
        println!("{}", dir.join("bus.db").display());
    }
    let store = crate::serve::open_store(config).await?;
    store
        .backup_to(&dir.join("cdrate.db"))
        .await
        .context("copying the store")?;
    store.close().await;
    println!("{}", dir.join("cdrate.db").display());
    eprintln!("backup written to {}", dir.display());
    Ok(ExitCode::SUCCESS)
}
