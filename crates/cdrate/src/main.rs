//! `cdrate`: one binary, many subcommands (DESIGN §9).
//!
//! - [`cli`]: the command line; one module per subcommand group.
//! - [`config`]: `cdrate.toml` with `CDRATE_…` overrides.
//! - [`serve`]: `cdrate serve` wiring and shutdown.
//! - [`http`]: the HTTP API (ingest, rated calls, health, metrics).
//! - [`appender`]: group commit of ingested records onto the bus.
//! - [`worker`]: the rating worker.
//! - [`fritzbox`]: the Fritz!Box CallMonitor client.
//! - [`imports`]: tariff and account imports into the store.
//! - [`metrics`], [`logging`]: telemetry.
//!
//! The binary owns wiring and presentation only; business rules live in the
//! library crates. Exit codes: 0 success, 1 the input was rejected (invalid
//! tariffs, an unpriceable single call), 2 usage or I/O errors.

mod appender;
mod auth;
mod cli;
mod config;
mod config_reference;
mod fritzbox;
mod http;
mod imports;
mod invoicer;
mod logging;
mod metrics;
mod reports;
mod serve;
mod worker;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
