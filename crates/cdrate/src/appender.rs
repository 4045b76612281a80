//! Group commit for ingest: concurrent requests hand their records to one
//! appender task, which drains whatever is queued (up to a limit) into a
//! single durable bus append and then answers every request. Durability
//! thus costs one commit per batch, not one per call, and a request is only
//! answered after its records are durable.
//!
//! The queue is bounded: when it is full the caller gets `Busy` at once and
//! answers 503, so the PBX retries later instead of us queueing without end.

use std::time::Instant;

use cdrate_bus::{Bus, Outgoing};
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;

/// Why an append did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendError {
    /// The queue is full or the appender has stopped.
    Busy,
    /// The bus refused the batch; nothing in it may be assumed durable.
    Failed(String),
}

struct Pending {
    records: Vec<Outgoing>,
    done: oneshot::Sender<Result<(), AppendError>>,
}

/// Handle used by request handlers; cheap to clone.
#[derive(Clone)]
pub struct Appender {
    queue: mpsc::Sender<Pending>,
}

impl Appender {
    /// Starts `concurrency` appender tasks on `topic` and returns the handle.
    /// The tasks end once every handle is dropped and the queue is drained.
    pub fn start(
        bus: Bus,
        topic: String,
        queue_requests: usize,
        batch_max_records: usize,
        concurrency: usize,
        metrics: Metrics,
        tracker: &tokio_util::task::TaskTracker,
    ) -> Appender {
        let (tx, rx) = mpsc::channel::<Pending>(queue_requests);
        // Several appenders share one receiver; the lock is held only while
        // taking requests off the queue, never across the append itself.
        let rx = std::sync::Arc::new(tokio::sync::Mutex::new(rx));
        for _ in 0..concurrency {
            let (bus, rx, metrics, topic) = (bus.clone(), rx.clone(), metrics.clone(), topic.clone());
            tracker.spawn(async move {
                loop {
                    let batch = {
                        let mut rx = rx.lock().await;
                        let Some(first) = rx.recv().await else { break };
                        let mut batch = vec![first];
                        let mut count = batch[0].records.len();
                        while count < batch_max_records {
                            match rx.try_recv() {
                                Ok(p) => {
                                    count += p.records.len();
                                    batch.push(p);
                                }
                                Err(_) => break,
                            }
                        }
                        batch
                    };
                    append(&bus, &topic, batch, &metrics).await;
                }
            });
        }
        Appender { queue: tx }
    }

    /// Appends `records` durably, sharing the commit with concurrent callers.
    pub async fn append(&self, records: Vec<Outgoing>) -> Result<(), AppendError> {
        if records.is_empty() {
            return Ok(());
        }
        let (done, answer) = oneshot::channel();
        self.queue
            .try_send(Pending { records, done })
            .map_err(|_| AppendError::Busy)?;
        answer.await.unwrap_or(Err(AppendError::Busy))
    }
}

async fn append(bus: &Bus, topic: &str, batch: Vec<Pending>, metrics: &Metrics) {
    let started = Instant::now();
    let mut records = Vec::with_capacity(batch.iter().map(|p| p.records.len()).sum());
    let mut waiters = Vec::with_capacity(batch.len());
    for p in batch {
        records.extend(p.records);
        waiters.push(p.done);
    }
    let result = bus.publish(topic, &records).await.map_err(|e| {
        tracing::error!(error = %e, code = e.code(), records = records.len(), "bus append failed");
        AppendError::Failed(e.code().to_owned())
    });
    metrics
        .bus_append_records
        .with_label_values(&[topic])
        .observe(records.len() as f64);
    metrics
        .bus_append_duration
        .with_label_values(&[topic])
        .observe(started.elapsed().as_secs_f64());
    for w in waiters {
        // A caller that timed out no longer listens; its records are durable anyway.
        let _ = w.send(result.clone());
    }
}
