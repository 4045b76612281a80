//! The embedded bus: topics are `BusLog` tables in an SQLite file of their
//! own (so ingest appends never wait on rating writes), one partition each.
//!
//! `publish` returns after the batch's transaction commits, which with
//! `synchronous=FULL` means it is on disk. Consumers read from their group's
//! committed offset; an in-process `Notify` wakes them on append, and a short
//! re-check interval covers appends made by another process (`cdrate
//! replay`, a second `serve`).

use std::sync::Arc;
use std::time::Duration;

use cdrate_store::{BusLog, Store, StoreSettings};
use tokio::sync::Notify;

use crate::{BusError, Delivery, Outgoing};

/// How often an idle consumer looks for appends made by other processes.
const RECHECK: Duration = Duration::from_millis(100);

/// The embedded backend; cheap to clone.
#[derive(Clone)]
pub struct EmbeddedBus {
    log: BusLog,
    appended: Arc<Notify>,
}

impl EmbeddedBus {
    /// Opens (or creates) the log database, e.g. `sqlite://data/bus.db`.
    pub async fn open(settings: &StoreSettings) -> Result<EmbeddedBus, BusError> {
        let store = Store::open(settings).await?;
        Ok(EmbeddedBus::with_store(store))
    }

    pub fn with_store(store: Store) -> EmbeddedBus {
        EmbeddedBus {
            log: BusLog::new(store),
            appended: Arc::new(Notify::new()),
        }
    }

    pub fn log(&self) -> &BusLog {
        &self.log
    }

    pub async fn publish(&self, topic: &str, records: &[Outgoing]) -> Result<(), BusError> {
        if records.is_empty() {
            return Ok(());
        }
        let refs: Vec<(&str, &[u8])> = records.iter().map(|r| (r.key.as_str(), r.payload.as_slice())).collect();
        self.log.append(topic, &refs, now_ms()).await?;
        self.appended.notify_waiters();
        Ok(())
    }

    pub async fn subscribe(&self, topic: &str, group: &str) -> Result<EmbeddedConsumer, BusError> {
        let next = self.log.committed(group, topic).await?;
        Ok(EmbeddedConsumer {
            bus: self.clone(),
            topic: topic.to_owned(),
            group: group.to_owned(),
            next,
        })
    }

    pub async fn lag(&self, topic: &str, group: &str) -> Result<u64, BusError> {
        let end = self.log.end(topic).await?;
        let committed = self.log.committed(group, topic).await?;
        Ok(u64::try_from(end - committed).unwrap_or(0))
    }
}

/// The single member of a group on an embedded topic. It reads ahead of the
/// committed offset; a new consumer of the group starts again from the
/// committed offset, which is what makes delivery at least once.
pub struct EmbeddedConsumer {
    bus: EmbeddedBus,
    topic: String,
    group: String,
    /// Next offset to read (ahead of or at the committed one).
    next: i64,
}

impl EmbeddedConsumer {
    pub async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivery>, BusError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Register interest before reading, so an append between the
            // read and the wait is not missed.
            let appended = self.bus.appended.notified();
            let entries = self.bus.log.read(&self.topic, self.next, max).await?;
            if let Some(last) = entries.last() {
                self.next = last.offset + 1;
                return Ok(entries
                    .into_iter()
                    .map(|e| Delivery {
                        topic: self.topic.clone(),
                        partition: 0,
                        offset: e.offset,
                        key: e.key,
                        payload: e.payload,
                    })
                    .collect());
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let nap = (deadline - now).min(RECHECK);
            let _ = tokio::time::timeout(nap, appended).await;
        }
    }

    pub async fn commit(&mut self, batch: &[Delivery]) -> Result<(), BusError> {
        if let Some(max) = batch.iter().filter(|d| d.topic == self.topic).map(|d| d.offset).max() {
            self.bus.log.commit(&self.group, &self.topic, max + 1).await?;
        }
        Ok(())
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
