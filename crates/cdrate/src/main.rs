//! `cdrate`: one binary, many subcommands (DESIGN §9).
//!
//! - [`cli::tariff`]: `cdrate tariff check DIR`, validate a tariff directory.
//! - [`cli::simulate`]: `cdrate simulate`, price one call or a CSV batch.
//!
//! The binary owns wiring and presentation only; business rules live in the
//! library crates. Exit codes: 0 success, 1 the input was rejected (invalid
//! tariffs, an unpriceable single call), 2 usage or I/O errors.

mod cli;

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
