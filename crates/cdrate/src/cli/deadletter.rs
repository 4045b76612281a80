//! `cdrate deadletter list|show|retry`: the payloads ingest rejected, kept
//! byte for byte. `retry` runs a stored payload through its source's adapter
//! again (after a fix: a new adapter version, a corrected setting) and
//! appends the record if it now maps. It does not re-check the sender's
//! credentials or signature: the operator asking for the retry vouches for
//! the payload.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Context};
use cdrate_bus::{Names, Outgoing};
use cdrate_core::Source;
use cdrate_ingest::{Outcome, ParseContext};
use clap::Subcommand;

use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum DeadLetterCommand {
    /// List dead letters, newest first.
    List {
        #[arg(long)]
        source: Option<String>,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Show one dead letter: headers, reason, and the raw body.
    Show {
        id: i64,
        /// Write only the raw body to stdout (byte for byte).
        #[arg(long)]
        raw: bool,
    },
    /// Map dead letters again and append those that now become records.
    Retry {
        /// Dead letter ids.
        ids: Vec<i64>,
        /// Retry every dead letter of this reason (with --source, of that source).
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        source: Option<String>,
    },
}

pub async fn run(cmd: DeadLetterCommand, config: &Config) -> anyhow::Result<ExitCode> {
    let store = crate::serve::open_store(config).await?;
    let code = match cmd {
        DeadLetterCommand::List { source, reason, limit } => {
            let letters = store
                .list_dead_letters(source.as_deref(), reason.as_deref(), None, limit)
                .await?;
            println!(
                "{:>6} {:<24} {:<10} {:<18} {:>8} {:<10} detail",
                "id", "received", "source", "reason", "bytes", "retried"
            );
            for d in &letters {
                println!(
                    "{:>6} {:<24} {:<10} {:<18} {:>8} {:<10} {}",
                    d.id,
                    crate::cli::rerate::rfc3339(d.received_at_ms),
                    d.source,
                    d.reason,
                    d.body.len(),
                    d.retry_outcome.as_deref().unwrap_or("-"),
                    d.detail
                );
            }
            let counts = store.dead_letter_counts().await?;
            let summary: Vec<String> = counts.iter().map(|(s, r, n)| format!("{s}/{r}: {n}")).collect();
            println!(
                "total: {}",
                if summary.is_empty() {
                    "none".into()
                } else {
                    summary.join(", ")
                }
            );
            ExitCode::SUCCESS
        }
        DeadLetterCommand::Show { id, raw } => {
            let d = store
                .find_dead_letter(id)
                .await?
                .with_context(|| format!("no dead letter {id}"))?;
            let mut out = std::io::stdout().lock();
            if raw {
                out.write_all(&d.body)?;
            } else {
                writeln!(out, "id          {}", d.id)?;
                writeln!(out, "received    {}", crate::cli::rerate::rfc3339(d.received_at_ms))?;
                writeln!(out, "source      {}", d.source)?;
                writeln!(out, "reason      {} ({})", d.reason, d.detail)?;
                writeln!(out, "from        {} {}", d.remote_addr, d.uri)?;
                writeln!(out, "headers     {}", d.headers)?;
                if let Some(o) = &d.retry_outcome {
                    writeln!(out, "retried     {o}")?;
                }
                writeln!(out, "body ({} bytes):", d.body.len())?;
                writeln!(out, "{}", String::from_utf8_lossy(&d.body))?;
            }
            ExitCode::SUCCESS
        }
        DeadLetterCommand::Retry { ids, reason, source } => {
            let mut letters = Vec::new();
            for id in &ids {
                letters.push(
                    store
                        .find_dead_letter(*id)
                        .await?
                        .with_context(|| format!("no dead letter {id}"))?,
                );
            }
            if reason.is_some() || source.is_some() {
                letters.extend(
                    store
                        .list_dead_letters(source.as_deref(), reason.as_deref(), None, usize::MAX)
                        .await?,
                );
            }
            if letters.is_empty() {
                bail!("name dead letter ids, or --reason / --source");
            }
            let bus = crate::serve::open_bus(config).await?;
            let names = Names::new(&config.bus.namespace);
            let now = chrono::Utc::now();
            let mut accepted = 0;
            for d in &letters {
                let outcome = retry_one(config, d, now);
                let label = match &outcome {
                    Ok(Outcome::Record(call)) => {
                        let payload = serde_json::to_vec(call)?;
                        bus.publish(
                            &names.calls,
                            &[Outgoing {
                                key: call.account_key.clone(),
                                payload,
                            }],
                        )
                        .await?;
                        accepted += 1;
                        format!("accepted {}", call.id)
                    }
                    Ok(Outcome::Ignored(r)) => format!("ignored {r}"),
                    Ok(Outcome::Rejected(e)) => format!("rejected {}", e.code()),
                    Err(why) => format!("not retryable: {why}"),
                };
                println!("{:>6} {label}", d.id);
                store
                    .mark_dead_letter_retried(d.id, &label, now.timestamp_millis())
                    .await?;
            }
            println!("{accepted} of {} appended to the bus", letters.len());
            ExitCode::SUCCESS
        }
    };
    store.close().await;
    Ok(code)
}

fn retry_one(
    config: &Config,
    d: &cdrate_store::DeadLetter,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Outcome, String> {
    let source = Source::parse(&d.source).ok_or("unknown source")?;
    let adapter = cdrate_ingest::adapter(source).ok_or("a line of a CallMonitor stream cannot be retried alone")?;
    let tz = match source {
        Source::Zadarma => config.ingest.zadarma.timezone.parse().ok(),
        _ => None,
    };
    let box_id = match source {
        Source::Zadarma => config.ingest.zadarma.pbx_id.as_deref(),
        _ => None,
    };
    Ok(adapter.parse(
        &d.body,
        &ParseContext {
            received_at: now,
            timezone: tz,
            box_id,
        },
    ))
}
