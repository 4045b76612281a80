//! Group commit for ingest: concurrent requests hand their records to one
//! appender task, which drains whatever is queued (up to a limit) into a
//! single durable bus append and then answers every request. Durability
//! thus costs one commit per batch, not one per call, and a request is only
//! answered after its records are durable.
//!
//! The queue is bounded: when it is full the caller gets `Busy` at once and
//! answers 503, so the PBX retries later instead of us queueing without end.
//! How long the oldest append has been in flight feeds readiness: an
//! instance whose bus does not take appends in time is not ready.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    in_flight: Arc<InFlight>,
}

/// Per appender task, when its current append started, and when the
/// latest append failed if the latest outcome was a failure (milliseconds
/// since `epoch`, plus one; 0 = none).
struct InFlight {
    epoch: Instant,
    since: Vec<AtomicU64>,
    failed_at: AtomicU64,
}

impl InFlight {
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1
    }

    fn begin(&self, task: usize) {
        self.since[task].store(self.now(), Ordering::Relaxed);
    }

    fn end(&self, task: usize, ok: bool) {
        self.since[task].store(0, Ordering::Relaxed);
        self.failed_at.store(if ok { 0 } else { self.now() }, Ordering::Relaxed);
    }

    fn age(&self, mark: u64) -> Option<Duration> {
        (mark > 0).then(|| self.epoch.elapsed().saturating_sub(Duration::from_millis(mark - 1)))
    }
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
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let in_flight = Arc::new(InFlight {
            epoch: Instant::now(),
            since: (0..concurrency).map(|_| AtomicU64::new(0)).collect(),
            failed_at: AtomicU64::new(0),
        });
        for task in 0..concurrency {
            let (bus, rx, metrics, topic) = (bus.clone(), rx.clone(), metrics.clone(), topic.clone());
            let in_flight = in_flight.clone();
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
                    in_flight.begin(task);
                    let ok = append(&bus, &topic, batch, &metrics).await;
                    in_flight.end(task, ok);
                }
            });
        }
        Appender { queue: tx, in_flight }
    }

    /// How long the oldest append now in flight has been waiting for the
    /// bus; `None` when none is.
    pub fn oldest_in_flight(&self) -> Option<Duration> {
        let f = &self.in_flight;
        f.since.iter().filter_map(|s| f.age(s.load(Ordering::Relaxed))).max()
    }

    /// How long ago the latest append failed, when the latest append (of
    /// any task) failed; `None` once one succeeds.
    pub fn failing_since(&self) -> Option<Duration> {
        self.in_flight.age(self.in_flight.failed_at.load(Ordering::Relaxed))
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

/// Appends one batch and answers its callers; true when it is durable.
async fn append(bus: &Bus, topic: &str, batch: Vec<Pending>, metrics: &Metrics) -> bool {
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
    let ok = result.is_ok();
    for w in waiters {
        // A caller that timed out no longer listens; its records are durable anyway.
        let _ = w.send(result.clone());
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdrate_bus::embedded::EmbeddedBus;
    use cdrate_store::StoreSettings;

    async fn bus(name: &str) -> Bus {
        let dir = std::env::temp_dir().join(format!("cdrate-appender-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let settings = StoreSettings::new(format!("sqlite://{}/bus.db", dir.display()));
        Bus::Embedded(EmbeddedBus::open(&settings).await.unwrap())
    }

    fn one(i: usize) -> Vec<Outgoing> {
        vec![Outgoing {
            key: format!("k{i}"),
            payload: format!("{i}").into_bytes(),
        }]
    }

    // On a current-thread runtime every request task queues its records
    // before the appender runs again, so all of them share one commit.
    #[tokio::test(flavor = "current_thread")]
    async fn concurrent_requests_share_one_durable_append() {
        let bus = bus("group").await;
        let metrics = Metrics::new();
        let tracker = tokio_util::task::TaskTracker::new();
        let appender = Appender::start(bus.clone(), "t".into(), 100, 10_000, 1, metrics.clone(), &tracker);
        let mut requests = tokio::task::JoinSet::new();
        for i in 0..50 {
            let a = appender.clone();
            requests.spawn(async move { a.append(one(i)).await });
        }
        while let Some(r) = requests.join_next().await {
            assert_eq!(r.unwrap(), Ok(()));
        }
        assert_eq!(bus.lag("t", "g").await.unwrap(), Some(50), "every record is on the log");
        let appends = metrics.bus_append_records.with_label_values(&["t"]).get_sample_count();
        assert_eq!(appends, 1, "50 concurrent requests, one durable write");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_full_queue_answers_busy_at_once() {
        let bus = bus("busy").await;
        let tracker = tokio_util::task::TaskTracker::new();
        // A queue of one request: the second caller must not wait.
        let appender = Appender::start(bus, "t".into(), 1, 10_000, 1, Metrics::new(), &tracker);
        let (a, b) = (appender.clone(), appender.clone());
        let first = tokio::spawn(async move { a.append(one(1)).await });
        let second = tokio::spawn(async move { b.append(one(2)).await });
        let (first, second) = (first.await.unwrap(), second.await.unwrap());
        assert_eq!(first, Ok(()));
        assert_eq!(second, Err(AppendError::Busy));
        assert_eq!(appender.oldest_in_flight(), None, "idle once the append is done");
    }
}
