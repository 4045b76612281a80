//! `cdrate export calls`: one account's calls of a billing cycle (or a
//! time range, by answer time) as CSV or JSON, times in the plan's zone —
//! the same report as `GET /v1/calls?format=csv`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};

use crate::config::Config;
use crate::worker::RatingState;

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Export rated calls of one account.
    Calls(CallsArgs),
}

#[derive(Debug, Args)]
pub struct CallsArgs {
    #[arg(long)]
    account: String,
    /// `current`, `previous`, or an RFC 3339 instant inside the cycle.
    #[arg(long, conflicts_with_all = ["from", "to"])]
    cycle: Option<String>,
    /// Answered at or after (RFC 3339).
    #[arg(long)]
    from: Option<DateTime<Utc>>,
    /// Answered before (RFC 3339).
    #[arg(long)]
    to: Option<DateTime<Utc>>,
    /// csv or json.
    #[arg(long, default_value = "csv")]
    format: String,
    /// Write here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub async fn run(cmd: ExportCommand, config: &Config) -> anyhow::Result<ExitCode> {
    let ExportCommand::Calls(args) = cmd;
    if !["csv", "json"].contains(&args.format.as_str()) {
        anyhow::bail!("--format must be csv or json");
    }
    let store = crate::serve::open_store(config).await?;
    let mut books = RatingState::default();
    books.refresh(&store).await?;
    let (Some((_, tariffs)), Some((_, accounts))) = (&books.tariffs, &books.accounts) else {
        anyhow::bail!("import tariffs and accounts first");
    };
    let account = accounts
        .account(&args.account)
        .ok_or_else(|| anyhow::anyhow!("no account {:?}", args.account))?;
    let tz = tariffs.plan_timezone(&account.plan).unwrap_or(chrono_tz::UTC);
    let (from, to) = match &args.cycle {
        Some(spec) => {
            let c = crate::reports::cycle_of(spec, account.cycle_day, tz, Utc::now()).map_err(anyhow::Error::msg)?;
            (Some(c.start), Some(c.end))
        }
        None => (args.from, args.to),
    };
    let calls = crate::reports::collect(&store, &account.id, from, to).await?;
    let text = if args.format == "csv" {
        crate::reports::csv(&calls, tz)?
    } else {
        let rows: Vec<_> = calls.iter().map(|c| crate::reports::row(c, tz)).collect();
        serde_json::to_string_pretty(&serde_json::json!({
            "account": account.id, "timezone": tz.name(), "from": from, "to": to, "calls": rows,
        }))? + "\n"
    };
    match &args.out {
        Some(path) => std::fs::write(path, text)?,
        None => std::io::stdout().write_all(text.as_bytes())?,
    }
    eprintln!("{} call(s) exported", calls.len());
    store.close().await;
    Ok(ExitCode::SUCCESS)
}
