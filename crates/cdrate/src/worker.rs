//! The rating worker: consume a batch of `call.v1` records → account →
//! normalize → price → write rated calls, totals and quarantine entries in
//! one store transaction → publish to `cdrate.rated.v1` → commit offsets.
//!
//! Offsets are committed only after the store commit, and the store is
//! idempotent on (id, version), so a crash anywhere replays at most one batch
//! and changes nothing twice. The tariffs and accounts in force are checked
//! once per batch; when either changes, quarantined records are re-queued.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use cdrate_bus::{Bus, Consumer, Delivery, Names, Outgoing};
use cdrate_core::{CallRecord, RatedCall};
use cdrate_rating::accounts::AccountBook;
use cdrate_rating::rate::{rate_call, RateError};
use cdrate_rating::TariffSet;
use cdrate_store::{QuarantineEntry, Store};
use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::config::RatingConfig;
use crate::metrics::Metrics;

/// Tariffs and accounts in force, with the versions they came from.
#[derive(Clone, Default)]
pub struct RatingState {
    pub tariffs: Option<(i64, Arc<TariffSet>)>,
    pub accounts: Option<(i64, Arc<AccountBook>)>,
}

impl RatingState {
    /// Reloads whatever has a newer version in the store; returns whether
    /// anything changed. Parsing runs off the async threads.
    pub async fn refresh(&mut self, store: &Store) -> anyhow::Result<bool> {
        let mut changed = false;
        let tv = store.tariff_version().await?;
        if tv.is_some() && tv != self.tariffs.as_ref().map(|t| t.0) {
            if let Some(v) = store.latest_tariffs().await? {
                let texts = v.texts;
                let set = tokio::task::spawn_blocking(move || {
                    cdrate_rating::parse_tariffs(&texts.plans, &texts.bands, &texts.rates)
                })
                .await?
                .map_err(|e| anyhow::anyhow!("stored tariff version {} does not load:\n{e}", v.version))?;
                tracing::info!(
                    version = v.version,
                    plans = set.plans().len(),
                    rates = set.rate_count(),
                    "tariffs in force"
                );
                self.tariffs = Some((v.version, Arc::new(set)));
                changed = true;
            }
        }
        let av = store.account_version().await?;
        if av.is_some() && av != self.accounts.as_ref().map(|a| a.0) {
            if let Some(v) = store.latest_accounts().await? {
                let texts = v.texts;
                let book = tokio::task::spawn_blocking(move || {
                    cdrate_rating::accounts::parse_accounts(&texts.accounts, &texts.identities)
                })
                .await?
                .map_err(|e| anyhow::anyhow!("stored accounts version {} does not load:\n{e}", v.version))?;
                tracing::info!(
                    version = v.version,
                    accounts = book.accounts().len(),
                    "accounts in force"
                );
                self.accounts = Some((v.version, Arc::new(book)));
                changed = true;
            }
        }
        Ok(changed)
    }
}

/// Rates one batch of deliveries: the rated calls and the quarantine
/// entries, in input order. Pure apart from the clock reading passed in.
pub fn rate_batch(
    state: &RatingState,
    batch: &[Delivery],
    now: chrono::DateTime<Utc>,
) -> (Vec<RatedCall>, Vec<QuarantineEntry>) {
    let now_ms = now.timestamp_millis();
    let mut rated = Vec::with_capacity(batch.len());
    let mut quarantined = Vec::new();
    for d in batch {
        let call: CallRecord = match serde_json::from_slice(&d.payload) {
            Ok(c) => c,
            Err(e) => {
                quarantined.push(QuarantineEntry {
                    id: format!("raw:{}:{}:{}", d.topic, d.partition, d.offset),
                    version: 0,
                    reason: "malformed_record".into(),
                    detail: e.to_string(),
                    account_key: d.key.clone(),
                    payload: d.payload.clone(),
                    first_seen_at_ms: now_ms,
                    last_tried_at_ms: now_ms,
                    attempts: 1,
                });
                continue;
            }
        };
        let span = tracing::debug_span!("call", call_id = %call.id, source = call.source.as_str());
        let _enter = span.enter();
        let outcome = match (&state.tariffs, &state.accounts) {
            (Some((tv, tariffs)), Some((_, accounts))) => rate_call(call.clone(), accounts, tariffs, *tv, now),
            (None, _) => Err(RateError::NoTariffs),
            (_, None) => Err(RateError::UnknownAccount {
                origin: call.source.as_str().to_owned(),
                account_key: call.account_key.clone(),
            }),
        };
        match outcome {
            Ok(r) => {
                tracing::debug!(cost = %r.cost, account = %r.account_id, "call rated");
                rated.push(r);
            }
            Err(e) => {
                tracing::warn!(call_id = %call.id, code = e.code(), error = %e, "quarantined call");
                quarantined.push(QuarantineEntry {
                    id: call.id.clone(),
                    version: i64::from(call.version),
                    reason: e.code().to_owned(),
                    detail: e.to_string(),
                    account_key: call.account_key.clone(),
                    payload: d.payload.clone(),
                    first_seen_at_ms: now_ms,
                    last_tried_at_ms: now_ms,
                    attempts: 1,
                });
            }
        }
    }
    (rated, quarantined)
}

/// A polled batch, rated and waiting to be written.
struct Rated {
    batch: Vec<Delivery>,
    rated: Vec<RatedCall>,
    /// `rated[i]` as JSON: the store's `record` column and the rated
    /// topic's payload, encoded once on the rating thread.
    encoded: Vec<String>,
    quarantined: Vec<QuarantineEntry>,
    now: chrono::DateTime<Utc>,
    started: Instant,
}

/// Runs the worker until `cancel`; a batch in flight is finished first.
///
/// Two stages overlap: while batch N is written (store transaction and the
/// rated publish, concurrently), batch N+1 is polled and rated on a blocking
/// thread. N's offsets are committed once its writes are durable and before
/// N+1 is written, so a crash still replays at most what was not committed.
pub async fn run(
    store: Store,
    bus: Bus,
    names: Names,
    config: RatingConfig,
    metrics: Metrics,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let mut state = RatingState::default();
    let wait = Duration::from_millis(config.batch_wait_ms.max(1));
    let backoff = Duration::from_millis(config.retry_backoff_ms.max(1));
    let publish_rated = config.publish_rated.unwrap_or(matches!(bus, Bus::Kafka(_)));
    'subscribe: while !cancel.is_cancelled() {
        let mut consumer = match bus.subscribe(&names.calls, &names.rater_group).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot join the rating group; retrying");
                pause(&cancel, backoff).await;
                continue;
            }
        };
        let mut ready: Option<Rated> = None;
        loop {
            if cancel.is_cancelled() && ready.is_none() {
                break 'subscribe;
            }
            // Idle with nothing assigned while work waits: leave and join
            // again (dropping the consumer leaves the group).
            if ready.is_none() {
                match consumer.stalled().await {
                    Ok(true) => {
                        metrics
                            .rating_batch_failures
                            .with_label_values(&["group_rejoined"])
                            .inc();
                        continue 'subscribe;
                    }
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "checking the rating group's progress failed"),
                }
            }
            let write = async {
                match &ready {
                    Some(r) => write_batch(&store, &bus, &names, publish_rated, r, &metrics)
                        .await
                        .map(Some),
                    None => Ok(None),
                }
            };
            let next = next_batch(
                &store,
                &bus,
                &names,
                &mut consumer,
                &mut state,
                &config,
                wait,
                &metrics,
                &cancel,
            );
            let (written, next) = tokio::join!(write, next);
            let result = match written {
                Ok(Some(())) => match ready.take() {
                    Some(r) => consumer.commit(&r.batch).await.map_err(anyhow::Error::from),
                    None => Ok(()),
                },
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            }
            .and_then(|()| next.map(|n| ready = n));
            if let Err(e) = result {
                metrics.rating_batch_failures.with_label_values(&["batch_failed"]).inc();
                tracing::error!(error = %format!("{e:#}"), "rating batch failed; it will be read again");
                pause(&cancel, backoff).await;
                // Re-subscribing rewinds to the committed offset.
                continue 'subscribe;
            }
        }
    }
    tracing::info!("rating worker stopped");
    Ok(())
}

async fn pause(cancel: &CancellationToken, d: Duration) {
    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = tokio::time::sleep(d) => {}
    }
}

/// Polls the next batch (none once cancelled) and rates it off the async
/// threads. Reloads tariffs and accounts first when a new version exists.
#[allow(clippy::too_many_arguments)]
async fn next_batch(
    store: &Store,
    bus: &Bus,
    names: &Names,
    consumer: &mut Consumer,
    state: &mut RatingState,
    config: &RatingConfig,
    wait: Duration,
    metrics: &Metrics,
    cancel: &CancellationToken,
) -> anyhow::Result<Option<Rated>> {
    // poll is cancel-safe; nothing after it races the token.
    let batch = tokio::select! {
        _ = cancel.cancelled() => return Ok(None),
        b = consumer.poll(config.batch_max_records, wait) => b?,
    };
    if state.refresh(store).await.context("loading tariffs and accounts")? {
        publish_versions(state, metrics);
        let n = requeue_quarantine(store, bus, names, None).await?;
        if n > 0 {
            tracing::info!(
                records = n,
                "tariffs or accounts changed: quarantined records re-queued"
            );
        }
    }
    if batch.is_empty() {
        return Ok(None);
    }
    let started = Instant::now();
    let now = Utc::now();
    let snapshot = state.clone();
    let rated = tokio::task::spawn_blocking(move || -> anyhow::Result<Rated> {
        let (rated, quarantined) = rate_batch(&snapshot, &batch, now);
        let encoded = rated
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<String>, _>>()
            .context("encoding rated calls")?;
        Ok(Rated {
            batch,
            rated,
            encoded,
            quarantined,
            now,
            started,
        })
    })
    .await??;
    Ok(Some(rated))
}

/// Stores a rated batch and publishes its rated calls, concurrently. At
/// least once downstream: a crash after the store commit re-publishes on
/// replay, and consumers de-duplicate by (id, version, rating_version).
async fn write_batch(
    store: &Store,
    bus: &Bus,
    names: &Names,
    publish_rated: bool,
    r: &Rated,
    metrics: &Metrics,
) -> anyhow::Result<()> {
    let messages: Vec<Outgoing> = if !publish_rated {
        Vec::new()
    } else {
        r.rated
            .iter()
            .zip(&r.encoded)
            .map(|(c, json)| Outgoing {
                key: c.call.account_key.clone(),
                payload: json.as_bytes().to_vec(),
            })
            .collect()
    };
    let publish = async {
        match publish_rated {
            true => bus.publish(&names.rated, &messages).await,
            false => Ok(()),
        }
    };
    let (stored, published) = tokio::join!(
        store.apply_encoded_rating_batch(&r.rated, &r.encoded, &r.quarantined, r.now.timestamp_millis()),
        publish
    );
    let out = stored?;
    published?;
    metrics
        .rating_calls
        .with_label_values(&["rated"])
        .inc_by(out.inserted as u64);
    metrics
        .rating_calls
        .with_label_values(&["replaced"])
        .inc_by(out.replaced as u64);
    metrics
        .rating_calls
        .with_label_values(&["duplicate"])
        .inc_by(out.unchanged as u64);
    metrics
        .rating_calls
        .with_label_values(&["quarantined"])
        .inc_by(out.quarantined as u64);
    metrics
        .rating_batch_duration
        .with_label_values::<&str>(&[])
        .observe(r.started.elapsed().as_secs_f64());
    tracing::debug!(
        records = r.batch.len(),
        inserted = out.inserted,
        quarantined = out.quarantined,
        "batch rated"
    );
    Ok(())
}

fn publish_versions(state: &RatingState, metrics: &Metrics) {
    if let Some((v, _)) = &state.tariffs {
        metrics.config_version.with_label_values(&["tariffs"]).set(*v);
    }
    if let Some((v, _)) = &state.accounts {
        metrics.config_version.with_label_values(&["accounts"]).set(*v);
    }
}

/// Puts quarantined records (optionally of one reason) back on the calls
/// topic, to be rated again; malformed payloads stay where they are.
pub async fn requeue_quarantine(
    store: &Store,
    bus: &Bus,
    names: &Names,
    reason: Option<&str>,
) -> anyhow::Result<usize> {
    let mut after: Option<(String, i64)> = None;
    let mut total = 0;
    loop {
        let page = store
            .quarantine_list(reason, after.as_ref().map(|(i, v)| (i.as_str(), *v)), 1000)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some((last.id.clone(), last.version));
        let records: Vec<Outgoing> = page
            .iter()
            .filter(|e| e.reason != "malformed_record")
            .map(|e| Outgoing {
                key: e.account_key.clone(),
                payload: e.payload.clone(),
            })
            .collect();
        total += records.len();
        bus.publish(&names.calls, &records).await?;
    }
    Ok(total)
}
