//! The bus between ingest and rating: publish a batch and wait until it is
//! durable; consume batches as a member of a group; commit what was handled.
//!
//! - [`embedded`]: the default. A durable append-only log inside the
//!   embedded SQLite store (`cdrate-store`'s `BusLog`), one partition per
//!   topic, committed offsets per group. Survives `kill -9`.
//! - [`kafka`]: rdkafka with its bundled librdkafka; idempotent producer with
//!   `acks=all`, consumer groups, offsets committed only when asked.
//!
//! [`Bus`] and [`Consumer`] are enums over the two backends rather than trait
//! objects: there are exactly two, and enum dispatch keeps `async fn` simple.
//! Delivery is at least once; consumers are idempotent on the record id.

pub mod embedded;
pub mod kafka;

use std::time::Duration;

/// Topic of normalized call records (`call.v1`), keyed by account key.
pub const CALLS_TOPIC: &str = "cdrate.calls.v1";
/// Topic of rated calls, keyed by account key.
pub const RATED_TOPIC: &str = "cdrate.rated.v1";
/// Topic of usage alerts.
pub const ALERTS_TOPIC: &str = "cdrate.alerts.v1";
/// Consumer group of the rating workers.
pub const RATER_GROUP: &str = "cdrate-rater";

/// The topic and group names of one cdrate deployment. A namespace prefix
/// lets several deployments (or test runs) share one Kafka cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub calls: String,
    pub rated: String,
    pub alerts: String,
    pub rater_group: String,
}

impl Names {
    pub fn new(namespace: &str) -> Names {
        Names {
            calls: format!("{namespace}{CALLS_TOPIC}"),
            rated: format!("{namespace}{RATED_TOPIC}"),
            alerts: format!("{namespace}{ALERTS_TOPIC}"),
            rater_group: format!("{namespace}{RATER_GROUP}"),
        }
    }
}

/// A message to publish. The key decides the partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub key: String,
    pub payload: Vec<u8>,
}

/// A consumed message and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: String,
    pub payload: Vec<u8>,
}

/// Why a bus operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("kafka: {0}")]
    Kafka(String),
    #[error("embedded log: {0}")]
    Store(#[from] cdrate_store::StoreError),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
}

impl BusError {
    pub fn code(&self) -> &'static str {
        match self {
            BusError::Kafka(_) => "bus_kafka",
            BusError::Store(_) => "bus_store",
            BusError::Timeout(_) => "bus_timeout",
        }
    }
}

/// A bus backend.
#[derive(Clone)]
pub enum Bus {
    Embedded(embedded::EmbeddedBus),
    Kafka(kafka::KafkaBus),
}

impl Bus {
    /// Appends `records` to `topic` and returns once every one is durable
    /// (committed to the log / acknowledged by all in-sync replicas). On
    /// error some records may have been written: callers retry the whole
    /// batch and consumers de-duplicate.
    pub async fn publish(&self, topic: &str, records: &[Outgoing]) -> Result<(), BusError> {
        match self {
            Bus::Embedded(b) => b.publish(topic, records).await,
            Bus::Kafka(b) => b.publish(topic, records).await,
        }
    }

    /// Joins `group` on `topic`. Consumption resumes after the group's last
    /// committed offset, or from the beginning of the topic.
    pub async fn subscribe(&self, topic: &str, group: &str) -> Result<Consumer, BusError> {
        match self {
            Bus::Embedded(b) => Ok(Consumer::Embedded(b.subscribe(topic, group).await?)),
            Bus::Kafka(b) => Ok(Consumer::Kafka(b.subscribe(topic, group)?)),
        }
    }

    /// Creates the cdrate topics if missing (Kafka: with `partitions`).
    pub async fn create_topics(&self, names: &Names, partitions: i32) -> Result<(), BusError> {
        match self {
            Bus::Embedded(_) => Ok(()),
            Bus::Kafka(b) => {
                b.create_topics(&[&names.calls, &names.rated, &names.alerts], partitions)
                    .await
            }
        }
    }

    /// How many messages of `topic` the group has not committed yet, summed
    /// over partitions; `None` when the backend cannot tell cheaply.
    pub async fn lag(&self, topic: &str, group: &str) -> Result<Option<u64>, BusError> {
        match self {
            Bus::Embedded(b) => b.lag(topic, group).await.map(Some),
            Bus::Kafka(b) => b.lag(topic, group).await,
        }
    }
}

/// One member of a consumer group on one topic.
pub enum Consumer {
    Embedded(embedded::EmbeddedConsumer),
    Kafka(kafka::KafkaConsumer),
}

impl Consumer {
    /// Waits up to `wait` for the first message, then returns it with any
    /// others already available, at most `max`. An empty batch means nothing
    /// arrived in time. Cancel-safe: nothing is lost if the future is dropped.
    pub async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivery>, BusError> {
        match self {
            Consumer::Embedded(c) => c.poll(max, wait).await,
            Consumer::Kafka(c) => c.poll(max, wait).await,
        }
    }

    /// True when this member should leave its group and join again: on
    /// Kafka, it has held no partitions for a while as the group sat idle
    /// with records waiting (see [`kafka::StallWatch`]). Never on the
    /// embedded log, whose single member reads everything.
    pub async fn stalled(&mut self) -> Result<bool, BusError> {
        match self {
            Consumer::Embedded(_) => Ok(false),
            Consumer::Kafka(c) => c.stalled().await,
        }
    }

    /// Commits every delivery in `batch` (and everything before it on the
    /// same partition) for this group. Call only after the effects of the
    /// batch are durable.
    pub async fn commit(&mut self, batch: &[Delivery]) -> Result<(), BusError> {
        match self {
            Consumer::Embedded(c) => c.commit(batch).await,
            Consumer::Kafka(c) => c.commit(batch).await,
        }
    }
}
