//! `cdrate rerate --from --to [--account A]`: re-price stored calls with
//! the tariffs and accounts in force. Each re-rated call gets the next
//! `rating_version`; totals move by the difference in the same transaction,
//! so they stay equal to the sum of the current costs.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use cdrate_store::CallFilter;

use crate::config::Config;
use crate::worker::RatingState;

#[derive(Debug, Args)]
pub struct RerateArgs {
    /// Calls started at or after this instant (RFC 3339).
    #[arg(long)]
    pub from: DateTime<Utc>,
    /// Calls started before this instant (RFC 3339).
    #[arg(long)]
    pub to: DateTime<Utc>,
    /// Only this billing account.
    #[arg(long)]
    pub account: Option<String>,
}

const PAGE: usize = 1000;

pub fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).map_or_else(|| ms.to_string(), |t| t.to_rfc3339())
}

pub async fn run(args: RerateArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let store = crate::serve::open_store(config).await?;
    let mut state = RatingState::default();
    state.refresh(&store).await?;
    let (Some((tariff_version, tariffs)), Some((_, accounts))) = (&state.tariffs, &state.accounts) else {
        anyhow::bail!("import tariffs and accounts first");
    };
    let mut filter = CallFilter {
        account: args.account.clone(),
        from_ms: Some(args.from.timestamp_millis()),
        to_ms: Some(args.to.timestamp_millis()),
        after_id: Some(String::new()),
        limit: PAGE,
        ..Default::default()
    };
    let total = store.count_calls_matching(&filter).await?;
    let bar = ProgressBar::new(u64::try_from(total).unwrap_or(0));
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} calls re-rated ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (mut rerated, mut changed, mut failed) = (0usize, 0usize, 0usize);
    loop {
        let page = store.list_calls(&filter).await?;
        let Some(last) = page.last() else { break };
        filter.after_id = Some(last.call.id.clone());
        let now = Utc::now();
        let mut rows = Vec::with_capacity(page.len());
        for old in &page {
            match cdrate_rating::rate::rate_call(old.call.clone(), accounts, tariffs, *tariff_version, now) {
                Ok(mut new) => {
                    new.rating_version = old.rating_version + 1;
                    if new.cost != old.cost || new.currency != old.currency {
                        changed += 1;
                    }
                    rows.push(new);
                }
                Err(e) => {
                    failed += 1;
                    bar.suspend(|| eprintln!("{}: not re-rated: {}: {e}", old.call.id, e.code()));
                }
            }
        }
        store.apply_rating_batch(&rows, &[], now.timestamp_millis()).await?;
        rerated += rows.len();
        bar.inc(page.len() as u64);
    }
    bar.finish_and_clear();
    let consistent = store.usage_totals().await? == store.recomputed_totals().await?;
    store.close().await;
    println!(
        "re-rated {rerated} call(s) with tariff version {tariff_version}: {changed} changed price, {failed} could not be rated (kept as they were); totals {}",
        if consistent { "match the rated calls" } else { "DO NOT match the rated calls" }
    );
    Ok(if consistent && failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
