//! `cdrate cycle close` and `cdrate billing status|resolve|push`: closing
//! billing cycles by hand, and seeing and settling where line items stand
//! on their way to WHMCS.

use std::process::ExitCode;

use cdrate_store::billing::state;
use cdrate_store::{ItemFilter, Transition};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};

use crate::config::Config;
use crate::imports::now_ms;
use crate::invoicer::{close, push, whmcs::WhmcsClient};
use crate::metrics::Metrics;
use crate::worker::RatingState;

#[derive(Debug, Subcommand)]
pub enum CycleCommand {
    /// Close every billing cycle that ended by --as-of (default now) and
    /// still has calls to bill. Safe to repeat: a closed cycle stays closed.
    Close(CloseArgs),
}

#[derive(Debug, Args)]
pub struct CloseArgs {
    /// Close cycles that ended at or before this instant (RFC 3339).
    #[arg(long)]
    as_of: Option<DateTime<Utc>>,
    /// Only this account.
    #[arg(long)]
    account: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum BillingCommand {
    /// Line items by delivery and state, and every item needing attention.
    Status,
    /// Settle an item whose WHMCS outcome is uncertain, after checking WHMCS
    /// (or, with --not-sent, push a refused item again once its cause is fixed).
    Resolve {
        item: String,
        /// It is in WHMCS: mark it sent (optionally with its invoice).
        #[arg(long, conflicts_with = "not_sent")]
        sent: bool,
        /// It is not in WHMCS: push it again.
        #[arg(long)]
        not_sent: bool,
        #[arg(long)]
        invoice: Option<i64>,
    },
    /// Run one WHMCS push and reconciliation pass now.
    Push,
}

pub async fn cycle(cmd: CycleCommand, config: &Config) -> anyhow::Result<ExitCode> {
    let CycleCommand::Close(args) = cmd;
    let store = crate::serve::open_store(config).await?;
    let mut books = RatingState::default();
    books.refresh(&store).await?;
    let (Some((_, tariffs)), Some((_, accounts))) = (&books.tariffs, &books.accounts) else {
        anyhow::bail!("import tariffs and accounts first");
    };
    let as_of = args.as_of.unwrap_or_else(Utc::now);
    let closed = close::close_due(
        &store,
        accounts,
        tariffs,
        as_of,
        args.account.as_deref(),
        crate::invoicer::close_settings(&config.billing),
        None,
    )
    .await?;
    for c in &closed {
        println!(
            "{}\t{} – {}\t{} items\t{} {}",
            c.account,
            c.cycle.start.to_rfc3339(),
            c.cycle.end.to_rfc3339(),
            c.items,
            c.total,
            c.currency
        );
    }
    eprintln!("{} cycle(s) closed as of {}", closed.len(), as_of.to_rfc3339());
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

pub async fn billing(cmd: BillingCommand, config: &Config) -> anyhow::Result<ExitCode> {
    let store = crate::serve::open_store(config).await?;
    let code = match cmd {
        BillingCommand::Status => {
            println!("delivery\tstate\titems");
            for (delivery, st, n) in store.line_item_states().await? {
                println!("{delivery}\t{st}\t{n}");
            }
            let mut attention = Vec::new();
            for st in [state::UNCERTAIN, state::FAILED, state::REFUSED, state::SENDING] {
                attention.extend(
                    store
                        .line_items(&ItemFilter {
                            state: Some(st.to_owned()),
                            limit: 1000,
                            ..Default::default()
                        })
                        .await?,
                );
            }
            if !attention.is_empty() {
                println!("\nneeding attention:");
                for i in attention {
                    println!(
                        "{}\t{}\t{}\t{} {}\tattempts {}\t{}",
                        i.id,
                        i.account_id,
                        i.state,
                        i.amount,
                        i.currency,
                        i.attempts,
                        i.last_error.unwrap_or_default()
                    );
                }
            }
            ExitCode::SUCCESS
        }
        BillingCommand::Resolve {
            item,
            sent,
            not_sent,
            invoice,
        } => {
            if sent == not_sent {
                anyhow::bail!("say either --sent or --not-sent");
            }
            // A refused item (e.g. a currency mismatch, since fixed) may be
            // pushed again; only an uncertain one can be declared sent.
            let (from, to, detail): (&[&str], _, _) = if sent {
                (
                    &[state::UNCERTAIN, state::SENDING],
                    state::SENT,
                    "resolved by operator: in WHMCS",
                )
            } else {
                (
                    &[state::UNCERTAIN, state::SENDING, state::REFUSED],
                    state::PENDING,
                    "resolved by operator: not in WHMCS, push again",
                )
            };
            let t = Transition {
                from,
                to,
                detail,
                invoice_id: invoice,
                next_attempt_at_ms: Some(now_ms()),
                now_ms: now_ms(),
                ..Default::default()
            };
            if store.transition_item(&item, &t).await? {
                println!("{item}: {to}");
                ExitCode::SUCCESS
            } else {
                eprintln!("{item} is not an uncertain (or, for --not-sent, refused) item");
                ExitCode::from(1)
            }
        }
        BillingCommand::Push => {
            let Some(client) = WhmcsClient::new(&config.billing.whmcs, Metrics::new()) else {
                anyhow::bail!("billing.whmcs.url is not configured");
            };
            let pusher = push::Pusher {
                store: &store,
                client: &client,
                config: &config.billing.whmcs,
            };
            // Not a startup pass: a running engine may be mid-push.
            let report = pusher.pass(false).await?;
            println!(
                "sent {}, failed {}, uncertain {}, refused {}, reconciled {}",
                report.sent, report.failed, report.uncertain, report.refused, report.reconciled
            );
            ExitCode::SUCCESS
        }
    };
    store.close().await;
    Ok(code)
}
