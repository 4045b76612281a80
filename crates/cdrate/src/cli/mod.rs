//! Command-line surface: the clap definitions and the dispatch to each
//! subcommand's module.

pub mod simulate;
pub mod tariff;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// CDR rating and billing engine for VoIP operators.
#[derive(Debug, Parser)]
#[command(name = "cdrate", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Work with tariff directories (plans.csv, bands.csv, rates.csv).
    #[command(subcommand)]
    Tariff(tariff::TariffCommand),
    /// Price a hypothetical call, or a CSV batch of them, and explain it.
    Simulate(simulate::SimulateArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Tariff(cmd) => tariff::run(cmd),
        Command::Simulate(args) => simulate::run(args),
    }
}
