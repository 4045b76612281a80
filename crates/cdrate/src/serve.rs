//! `cdrate serve`: every worker in one process. Opens the store and the
//! bus, imports configured tariffs/accounts if they changed, then runs the
//! HTTP API, the ingest appender, the rating worker and housekeeping until
//! SIGTERM/SIGINT.
//!
//! Shutdown drains in order: stop accepting requests (in-flight ones finish
//! and get their answers), then let the worker finish its batch and commit,
//! all bounded by `server.shutdown_grace_seconds`.

use std::time::Duration;

use anyhow::Context;
use cdrate_bus::embedded::EmbeddedBus;
use cdrate_bus::kafka::{KafkaBus, KafkaSettings};
use cdrate_bus::{Bus, Names};
use cdrate_store::{Store, StoreSettings};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::appender::Appender;
use crate::config::{BusKind, Config};
use crate::http::{self, AppState};
use crate::metrics::Metrics;
use crate::{imports, worker};

/// How often lag and quarantine gauges are refreshed and the embedded log pruned.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(5);
/// Rated messages the embedded log keeps for downstream readers.
const EMBEDDED_RATED_RETENTION: i64 = 1_000_000;

pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let mut s = StoreSettings::new(config.store.url.clone());
    s.max_connections = config.store.max_connections;
    s.sqlite_sync_full = config.store.sqlite_sync_full;
    Store::open(&s)
        .await
        .with_context(|| format!("opening the store at {}", redact(&config.store.url)))
}

pub async fn open_bus(config: &Config) -> anyhow::Result<Bus> {
    Ok(match config.bus.kind {
        BusKind::Embedded => {
            let mut s = StoreSettings::new(config.bus.embedded_url.clone());
            s.sqlite_sync_full = config.store.sqlite_sync_full;
            // The log only appends at its end and reads recent pages.
            s.sqlite_writer_cache_kib = 8_192;
            Bus::Embedded(EmbeddedBus::open(&s).await.context("opening the embedded bus log")?)
        }
        BusKind::Kafka => Bus::Kafka(
            KafkaBus::connect(&KafkaSettings {
                brokers: config.bus.kafka_brokers.clone(),
                client_id: config.bus.kafka_client_id.clone(),
                // librdkafka names use dots, which environment variable
                // names cannot carry; `_` stands for `.` there.
                properties: config
                    .bus
                    .kafka_properties
                    .iter()
                    .map(|(k, v)| (k.replace('_', "."), v.clone()))
                    .collect(),
            })
            .context("connecting to Kafka")?,
        ),
    })
}

/// A URL with any password replaced, for logs and errors.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    let bus = open_bus(&config).await?;
    let names = Names::new(&config.bus.namespace);
    bus.create_topics(&names, config.bus.partitions)
        .await
        .context("creating bus topics")?;
    imports::import_configured(&store, &config.import).await?;
    let metrics = Metrics::new();

    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let appender = Appender::start(
        bus.clone(),
        names.calls.clone(),
        config.ingest.append_queue_requests,
        config.ingest.append_batch_max_records,
        config.ingest.append_concurrency,
        metrics.clone(),
        &tracker,
    );
    let worker_cancel = cancel.child_token();
    let workers = if config.rating.enabled {
        config.rating.workers
    } else {
        0
    };
    for n in 0..workers {
        let (store, bus, names, rating, metrics, token) = (
            store.clone(),
            bus.clone(),
            names.clone(),
            config.rating.clone(),
            metrics.clone(),
            worker_cancel.clone(),
        );
        let span = tracing::info_span!("rating_worker", worker = n);
        tracker.spawn(
            async move {
                if let Err(e) = worker::run(store, bus, names, rating, metrics, token).await {
                    tracing::error!(error = %format!("{e:#}"), "rating worker failed");
                }
            }
            .instrument(span),
        );
    }
    {
        let (store, bus, names, metrics, token) = (
            store.clone(),
            bus.clone(),
            names.clone(),
            metrics.clone(),
            cancel.child_token(),
        );
        tracker.spawn(async move { housekeeping(store, bus, names, metrics, token).await });
    }

    if config.billing.enabled {
        let invoicer = crate::invoicer::Invoicer {
            store: store.clone(),
            bus: bus.clone(),
            names: names.clone(),
            config: config.billing.clone(),
            metrics: metrics.clone(),
        };
        let token = cancel.child_token();
        tracker.spawn(async move {
            if let Err(e) = invoicer.run(token).await {
                tracing::error!(error = %format!("{e:#}"), "invoicer stopped");
            }
        });
    }

    for fritzbox in &config.fritzbox {
        let client = crate::fritzbox::FritzboxClient {
            config: fritzbox.clone(),
            store: store.clone(),
            appender: appender.clone(),
            metrics: metrics.clone(),
        };
        let (token, box_id) = (cancel.child_token(), fritzbox.box_id.clone());
        tracker.spawn(async move {
            if let Err(e) = client.run(token).await {
                tracing::error!(box_id, error = %format!("{e:#}"), "Fritz!Box client stopped");
            }
        });
    }

    let listener = tokio::net::TcpListener::bind(&config.server.listen)
        .await
        .with_context(|| format!("binding {}", config.server.listen))?;
    tracing::info!(listen = %listener.local_addr()?, store = %redact(&config.store.url), bus = ?config.bus.kind, "cdrate serving");
    let state = AppState {
        store: store.clone(),
        bus: bus.clone(),
        names,
        appender,
        metrics,
        request_timeout: Duration::from_secs(config.server.request_timeout_seconds.max(1)),
        body_limit_bytes: config.server.request_body_limit_bytes,
        sources: std::sync::Arc::new(http::Sources::from_config(&config.ingest)?),
        books: Default::default(),
        default_billing: cdrate_rating::BillingMode::parse(&config.billing.default_mode)
            .unwrap_or(cdrate_rating::BillingMode::None),
        allowlists: std::sync::Arc::new(http::access::Allowlists::from_config(&config.access.allow)?),
    };
    let app = http::router(state, config.server.request_body_limit_bytes);
    let http_cancel = cancel.clone();
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move { http_cancel.cancelled().await });

    let grace = Duration::from_secs(config.server.shutdown_grace_seconds);
    let signal_cancel = cancel.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: draining requests, then the rating batch in flight");
        signal_cancel.cancel();
    });
    server.await.context("HTTP server")?;
    // The server has stopped and answered every request it accepted; the
    // appender ends when its queue is empty, the worker after its batch.
    tracker.close();
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        tracing::warn!(
            grace_seconds = grace.as_secs(),
            "shutdown grace elapsed; exiting with work in flight (it will be replayed)"
        );
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

async fn housekeeping(store: Store, bus: Bus, names: Names, metrics: Metrics, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(HOUSEKEEPING_INTERVAL);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tick.tick() => {}
        }
        if let Ok(Some(lag)) = bus.lag(&names.calls, &names.rater_group).await {
            metrics
                .bus_consumer_lag
                .with_label_values(&[cdrate_bus::CALLS_TOPIC])
                .set(i64::try_from(lag).unwrap_or(i64::MAX));
        }
        if let Ok(counts) = store.quarantine_counts().await {
            metrics.quarantine_calls.reset();
            for (reason, n) in counts {
                metrics.quarantine_calls.with_label_values(&[reason.as_str()]).set(n);
            }
        }
        if let Bus::Embedded(b) = &bus {
            let log = b.log();
            if let Ok(committed) = log.committed(&names.rater_group, &names.calls).await {
                let _ = log.prune(&names.calls, committed).await;
            }
            if let Ok(end) = log.end(&names.rated).await {
                let _ = log.prune(&names.rated, end - EMBEDDED_RATED_RETENTION).await;
            }
        }
    }
}
