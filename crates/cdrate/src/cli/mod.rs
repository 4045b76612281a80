//! Command-line surface: the clap definitions and the dispatch to each
//! subcommand's module.

pub mod accounts;
pub mod backup;
pub mod billing;
pub mod deadletter;
pub mod export;
pub mod ingest;
pub mod quarantine;
pub mod ready;
pub mod replay;
pub mod rerate;
pub mod simulate;
pub mod tariff;
pub mod token;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, LogFormat};

/// CDR rating and billing engine for VoIP operators.
#[derive(Debug, Parser)]
#[command(name = "cdrate", version, about)]
pub struct Cli {
    /// Configuration file (default: ./cdrate.toml if present). Every key can
    /// be overridden with CDRATE_<SECTION>__<KEY>.
    #[arg(long, global = true, env = "CDRATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format: text or json (overrides log.format).
    #[arg(long, global = true)]
    pub log_format: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the engine: HTTP ingest and API, the bus appender and the rating worker.
    Serve,
    /// Apply store migrations and create bus topics, then exit.
    Migrate,
    /// Work with tariff directories (plans.csv, bands.csv, rates.csv).
    #[command(subcommand)]
    Tariff(tariff::TariffCommand),
    /// Import billing accounts and source identities.
    #[command(subcommand)]
    Accounts(accounts::AccountsCommand),
    /// Price a hypothetical call, or a CSV batch of them, and explain it.
    Simulate(simulate::SimulateArgs),
    /// Run source adapters over saved payloads (no server).
    #[command(subcommand)]
    Ingest(ingest::IngestCommand),
    /// List or retry records the rating worker could not price.
    #[command(subcommand)]
    Quarantine(quarantine::QuarantineCommand),
    /// Inspect, show or retry payloads ingest rejected.
    #[command(subcommand)]
    Deadletter(deadletter::DeadLetterCommand),
    /// Feed saved payloads (e.g. FreeSWITCH's err-log-dir) through ingest.
    Replay(replay::ReplayArgs),
    /// Re-price stored calls with the tariffs in force.
    Rerate(rerate::RerateArgs),
    /// Close billing cycles into invoice line items.
    #[command(subcommand)]
    Cycle(billing::CycleCommand),
    /// Line items on their way to WHMCS: status, resolve, push.
    #[command(subcommand)]
    Billing(billing::BillingCommand),
    /// Call reports: one row per call, times in the plan's zone.
    #[command(subcommand)]
    Export(export::ExportCommand),
    /// Copy the embedded store and bus log to a directory, while serving.
    Backup(backup::BackupArgs),
    /// Print every configuration key with its default and environment override (Markdown).
    ConfigReference,
    /// API tokens: create, list, revoke.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Ask the running engine (server.listen) whether it is ready: exit 0
    /// on 200 from /ready, 1 otherwise (for container health checks).
    Ready,
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // Commands that need no configuration run without loading it.
    match cli.command {
        Command::Simulate(args) => return simulate::run(args),
        Command::Ingest(cmd) => return ingest::run(cmd),
        Command::Tariff(tariff::TariffCommand::Check { dir }) => return tariff::check(&dir),
        Command::ConfigReference => {
            print!("{}", crate::config_reference::markdown());
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(f) = &cli.log_format {
        config.log.format = match f.as_str() {
            "json" => LogFormat::Json,
            "text" => LogFormat::Text,
            other => anyhow::bail!("--log-format {other:?} is not text or json"),
        };
    }
    if let Command::Ready = cli.command {
        return ready::run(&config);
    }
    crate::logging::init(&config.log);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve => crate::serve::run(config).await.map(|_| ExitCode::SUCCESS),
            Command::Migrate => {
                let store = crate::serve::open_store(&config).await?;
                let bus = crate::serve::open_bus(&config).await?;
                bus.create_topics(&cdrate_bus::Names::new(&config.bus.namespace), config.bus.partitions)
                    .await?;
                store.close().await;
                println!("store migrated; bus topics ready");
                Ok(ExitCode::SUCCESS)
            }
            Command::Tariff(cmd) => tariff::run_with_store(cmd, &config).await,
            Command::Accounts(cmd) => accounts::run(cmd, &config).await,
            Command::Quarantine(cmd) => quarantine::run(cmd, &config).await,
            Command::Cycle(cmd) => billing::cycle(cmd, &config).await,
            Command::Billing(cmd) => billing::billing(cmd, &config).await,
            Command::Token(cmd) => token::run(cmd, &config).await,
            Command::Export(cmd) => export::run(cmd, &config).await,
            Command::Backup(args) => backup::run(args, &config).await,
            Command::ConfigReference => Ok(ExitCode::SUCCESS),
            Command::Rerate(args) => rerate::run(args, &config).await,
            Command::Deadletter(cmd) => deadletter::run(cmd, &config).await,
            Command::Replay(args) => replay::run(args, &config).await,
            Command::Simulate(_) | Command::Ingest(_) | Command::Ready => Ok(ExitCode::SUCCESS),
        }
    })
}
