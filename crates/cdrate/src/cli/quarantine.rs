//! `cdrate quarantine list|retry`: see what the rating worker could not
//! price and why, and put it back on the bus once the cause is fixed.

use std::process::ExitCode;

use clap::Subcommand;

use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// List quarantined records with their reason (a stable code).
    List {
        /// Only this reason, e.g. unknown_account, no_route, bad_number.
        #[arg(long)]
        reason: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Re-queue quarantined records for rating (all, or one reason).
    Retry {
        #[arg(long)]
        reason: Option<String>,
    },
}

pub async fn run(cmd: QuarantineCommand, config: &Config) -> anyhow::Result<ExitCode> {
    let store = crate::serve::open_store(config).await?;
    match cmd {
        QuarantineCommand::List { reason, limit, json } => {
            let entries = store.quarantine_list(reason.as_deref(), None, limit).await?;
            if !json {
                println!("{:<40} {:>3} {:<18} {:>8}  detail", "id", "ver", "reason", "attempts");
            }
            for e in &entries {
                if json {
                    let line = serde_json::json!({
                        "id": e.id, "version": e.version, "reason": e.reason, "detail": e.detail,
                        "account_key": e.account_key, "attempts": e.attempts,
                        "first_seen_at": crate::cli::rerate::rfc3339(e.first_seen_at_ms),
                        "last_tried_at": crate::cli::rerate::rfc3339(e.last_tried_at_ms),
                        "payload": String::from_utf8_lossy(&e.payload),
                    });
                    println!("{line}");
                } else {
                    println!(
                        "{:<40} {:>3} {:<18} {:>8}  {}",
                        e.id, e.version, e.reason, e.attempts, e.detail
                    );
                }
            }
            if !json {
                let counts = store.quarantine_counts().await?;
                let summary: Vec<String> = counts.iter().map(|(r, n)| format!("{r}: {n}")).collect();
                println!(
                    "total by reason: {}",
                    if summary.is_empty() {
                        "none".into()
                    } else {
                        summary.join(", ")
                    }
                );
            }
        }
        QuarantineCommand::Retry { reason } => {
            let bus = crate::serve::open_bus(config).await?;
            let names = cdrate_bus::Names::new(&config.bus.namespace);
            let n = crate::worker::requeue_quarantine(&store, &bus, &names, reason.as_deref()).await?;
            println!("re-queued {n} record(s); the rating worker rates them or quarantines them again");
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}
