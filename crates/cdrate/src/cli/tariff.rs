//! `cdrate tariff check DIR`: load a tariff directory and print either a
//! summary per plan or every validation problem (exit 1).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use cdrate_rating::{load_dir, TariffSet};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum TariffCommand {
    /// Validate a tariff directory; print a summary or every problem found.
    Check {
        /// Directory holding plans.csv, rates.csv and (optionally) bands.csv.
        dir: PathBuf,
    },
    /// Validate a tariff directory and store it as the new version in force;
    /// running workers use it for calls rated from their next batch on.
    Import {
        /// Directory holding plans.csv, rates.csv and (optionally) bands.csv.
        dir: PathBuf,
    },
}

/// The subcommands that need the store.
pub async fn run_with_store(cmd: TariffCommand, config: &crate::config::Config) -> anyhow::Result<ExitCode> {
    match cmd {
        TariffCommand::Check { dir } => check(&dir),
        TariffCommand::Import { dir } => {
            let store = crate::serve::open_store(config).await?;
            let (version, new) = crate::imports::import_tariffs(&store, &dir).await?;
            store.close().await;
            if new {
                println!("imported {} as tariff version {version}", dir.display());
            } else {
                println!(
                    "{} is identical to tariff version {version}; nothing imported",
                    dir.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub fn check(dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match load_dir(dir) {
        Ok(set) => {
            write_summary(&mut out, &dir.display().to_string(), &set)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            for e in errors.iter() {
                writeln!(out, "{}", e)?;
            }
            writeln!(
                out,
                "{}: {} problem(s), tariffs not loaded",
                dir.display(),
                errors.len()
            )?;
            Ok(ExitCode::from(1))
        }
    }
}

pub fn write_summary(out: &mut impl Write, name: &str, set: &TariffSet) -> std::io::Result<()> {
    writeln!(
        out,
        "{name}: OK, {} plans, {} bands, {} rates",
        set.plans().len(),
        set.band_count(),
        set.rate_count()
    )?;
    writeln!(
        out,
        "{:<16} {:<8} {:<24} {:>8} {:<10} {:<16} {:>5} {:>8} {:>8}",
        "plan", "currency", "timezone", "decimals", "rounding", "fallback", "bands", "rates", "prefixes"
    )?;
    for p in set.plans() {
        let fallback = p.fallback.map_or("-", |f| &*set.plan(f).name);
        writeln!(
            out,
            "{:<16} {:<8} {:<24} {:>8} {:<10} {:<16} {:>5} {:>8} {:>8}",
            p.name,
            p.currency,
            p.timezone.name(),
            p.decimals,
            p.rounding.as_str(),
            fallback,
            p.bands.len(),
            p.rates().len(),
            p.prefix_count()
        )?;
    }
    Ok(())
}
