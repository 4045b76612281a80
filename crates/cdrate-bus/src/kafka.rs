//! Kafka backend of the bus, on rdkafka with its bundled librdkafka.
//!
//! Owns the producer (idempotent, `acks=all`: a `publish` that returns `Ok`
//! means every record is on all in-sync replicas), one `StreamConsumer` per
//! group member (offsets are stored and committed only by an explicit
//! [`KafkaConsumer::commit`], never automatically), topic creation and lag.
//! It adds no retries beyond librdkafka's own: callers retry a failed
//! publish as a whole, and consumers de-duplicate on the record id. librdkafka's blocking calls
//! (commit, metadata, watermarks) run on tokio's blocking pool so they never
//! stall a runtime worker.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};

use crate::{BusError, Delivery, Outgoing};

/// How long one metadata, watermark or offset request may take in `lag`.
const ADMIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Most records in one produce batch of one partition, and so how far
/// before its committed offset a consumer starts after an assignment (see
/// the module doc).
pub const RESUME_WINDOW: i64 = 1000;

/// Where the brokers are and how this process names itself to them.
#[derive(Debug, Clone, Default)]
pub struct KafkaSettings {
    /// Comma-separated `host:port` list (`bootstrap.servers`).
    pub brokers: String,
    /// `client.id`, shown in broker logs and metrics.
    pub client_id: String,
    /// Extra librdkafka properties (`security.protocol`, `sasl.*`, `ssl.*`,
    /// `debug`, …) for every client. The settings exactly-once depends on
    /// (idempotence, `acks`, manual offsets) are set after them and win.
    pub properties: BTreeMap<String, String>,
}

/// Sends librdkafka's own log lines and errors into `tracing`, so a broker
/// that refuses us or a group that will not settle shows up in cdrate's log.
#[derive(Default)]
struct LogContext;

impl ClientContext for LogContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log_to_tracing(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(error = %error, reason, "librdkafka error");
    }
}

impl ConsumerContext for LogContext {}

fn log_to_tracing(level: RDKafkaLogLevel, facility: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
            tracing::error!(target: "librdkafka", facility, "{message}")
        }
        RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", facility, "{message}"),
        // librdkafka emits debug lines only when the `debug` property asks
        // for them, so they are wanted: logged at info, not hidden.
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info | RDKafkaLogLevel::Debug => {
            tracing::info!(target: "librdkafka", facility, "{message}")
        }
    }
}

/// A handle to the cluster. Cheap to clone: clones share one producer.
#[derive(Clone)]
pub struct KafkaBus {
    producer: FutureProducer<LogContext>,
    settings: KafkaSettings,
    /// One lag probe per group, kept for the life of the bus: `/ready` and
    /// the gauge refresh ask every few seconds, and a new client per call
    /// would cost a connection and a metadata round trip each time.
    probes: Arc<Mutex<HashMap<String, Arc<BaseConsumer<LogContext>>>>>,
}

/// One member of a consumer group on one topic. Dropping it leaves the
/// group (a short blocking call) and commits nothing.
pub struct KafkaConsumer {
    // Shared with blocking-pool tasks (commit), which need an owned handle.
    consumer: Arc<StreamConsumer<ResumeContext>>,
    topic: String,
    watch: StallWatch,
    /// The stall watch's clock starts at subscription.
    epoch: std::time::Instant,
    last_check: Option<std::time::Instant>,
}

/// How long a member may hold no partitions while its group has records
/// waiting and commits nothing before it leaves and joins again.
pub const STALL_WINDOW: Duration = Duration::from_secs(30);
/// How often [`KafkaConsumer::stalled`] asks the broker.
const STALL_CHECK_EVERY: Duration = Duration::from_secs(5);

/// Decides when a member with no partitions should rejoin its group.
///
/// Tansu 0.6's group coordinator can settle a rebalance with an empty
/// assignment: when the previous leader's session expires between a
/// follower's JoinGroup and its SyncGroup, the follower's SyncGroup (which
/// carries no assignments) completes the generation, and every member then
/// holds nothing while heartbeats succeed. A real cluster never does this,
/// but an idle group with work waiting is wrong whatever the cause, and
/// leaving and joining again starts a fresh rebalance. A member of a group
/// with more members than partitions also holds nothing; the others commit,
/// so it is left alone.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StallWatch {
    /// Since when this member has held nothing while records waited, and
    /// the group's committed total then.
    since: Option<(Duration, i64)>,
}

impl StallWatch {
    /// One observation at `now` (any monotonic clock): partitions held,
    /// records waiting, sum of the group's committed offsets. True when the
    /// member should rejoin.
    pub fn observe(&mut self, now: Duration, assigned: usize, lag: u64, committed: i64) -> bool {
        if assigned > 0 || lag == 0 {
            self.since = None;
            return false;
        }
        match self.since {
            Some((_, at_start)) if committed != at_start => {
                self.since = Some((now, committed));
                false
            }
            Some((start, _)) => now.saturating_sub(start) >= STALL_WINDOW,
            None => {
                self.since = Some((now, committed));
                false
            }
        }
    }
}

/// Per assigned partition, the committed offset the consumer resumed from;
/// deliveries below it were already processed and are dropped. An entry
/// goes once the partition delivers at or past it.
type ResumeFrom = HashMap<(String, i32), i64>;

/// Consumer context that starts each assigned partition [`RESUME_WINDOW`]
/// offsets before its committed offset.
#[derive(Default)]
struct ResumeContext {
    resume_from: Mutex<ResumeFrom>,
}

impl ClientContext for ResumeContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log_to_tracing(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(error = %error, reason, "librdkafka error");
    }
}

impl ConsumerContext for ResumeContext {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let mut resume_from = self.resume_from.lock().unwrap_or_else(PoisonError::into_inner);
        resume_from.clear();
        if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS {
            if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS {
                tracing::warn!(error = ?err, "Kafka rebalance error; dropping the assignment");
            }
            if let Err(e) = consumer.unassign() {
                tracing::warn!(error = %e, "Kafka unassign failed");
            }
            return;
        }
        // Runs on the thread polling the consumer, once per rebalance.
        tracing::info!(
            partitions = tpl.count(),
            "Kafka partitions assigned; reading committed offsets"
        );
        match consumer.committed_offsets(tpl.clone(), ADMIN_REQUEST_TIMEOUT) {
            Ok(committed) => {
                for element in committed.elements() {
                    let Offset::Offset(at) = element.offset() else {
                        continue; // nothing committed: auto.offset.reset (earliest)
                    };
                    let start = at.saturating_sub(RESUME_WINDOW).max(0);
                    let set = tpl.set_partition_offset(element.topic(), element.partition(), Offset::Offset(start));
                    if set.is_ok() && start < at {
                        resume_from.insert((element.topic().to_owned(), element.partition()), at);
                    }
                }
            }
            // Without the committed offsets librdkafka resumes at them itself;
            // only a broker that drops mid-batch records would then skip some.
            Err(e) => tracing::warn!(error = %e, "reading committed offsets on assignment failed; resuming at them"),
        }
        if let Err(e) = consumer.assign(tpl) {
            tracing::warn!(error = %e, "Kafka assign failed");
        }
        tracing::info!(resume_from = ?*resume_from, "Kafka assignment applied");
    }
}

impl KafkaBus {
    /// Creates the producer. librdkafka connects lazily, so an unreachable
    /// broker shows up on the first publish, not here.
    pub fn connect(settings: &KafkaSettings) -> Result<KafkaBus, BusError> {
        let producer: FutureProducer<LogContext> = base_config(settings)
            // Idempotence keeps per-partition order and drops duplicates when
            // librdkafka retries internally; it requires acks=all anyway.
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "30000")
            .set("batch.num.messages", RESUME_WINDOW.to_string())
            .create_with_context(LogContext)
            .map_err(|e| kafka_error("creating producer", &e))?;
        Ok(KafkaBus {
            producer,
            settings: settings.clone(),
            probes: Arc::default(),
        })
    }

    /// Sends every record and returns once all are acknowledged. Records are
    /// enqueued back to back and awaited together, so a batch costs about one
    /// round trip rather than one per record.
    pub async fn publish(&self, topic: &str, records: &[Outgoing]) -> Result<(), BusError> {
        let mut in_flight: VecDeque<DeliveryFuture> = VecDeque::with_capacity(records.len());
        for record in records {
            let mut message = FutureRecord::to(topic)
                .key(record.key.as_str())
                .payload(record.payload.as_slice());
            loop {
                match self.producer.send_result(message) {
                    Ok(delivery) => {
                        in_flight.push_back(delivery);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                        // The local queue is full: waiting for the oldest
                        // delivery frees room without a blind sleep.
                        message = returned;
                        match in_flight.pop_front() {
                            Some(oldest) => await_delivery(topic, oldest).await?,
                            None => return Err(BusError::Kafka(format!("publishing to {topic}: producer queue full"))),
                        }
                    }
                    Err((e, _)) => return Err(kafka_error(&format!("publishing to {topic}"), &e)),
                }
            }
        }
        for delivery in in_flight {
            await_delivery(topic, delivery).await?;
        }
        Ok(())
    }

    /// Joins `group` on `topic`. Without a committed offset the group starts
    /// at the beginning of the topic, so nothing published before the first
    /// worker started is skipped.
    pub fn subscribe(&self, topic: &str, group: &str) -> Result<KafkaConsumer, BusError> {
        let consumer: StreamConsumer<ResumeContext> = base_config(&self.settings)
            .set("group.id", group)
            // Offsets move only in `commit`, after the caller's store commit.
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            // Short enough that a dead worker's partitions move on quickly.
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000")
            .create_with_context(ResumeContext::default())
            .map_err(|e| kafka_error("creating consumer", &e))?;
        consumer
            .subscribe(&[topic])
            .map_err(|e| kafka_error(&format!("subscribing to {topic} as {group}"), &e))?;
        Ok(KafkaConsumer {
            consumer: Arc::new(consumer),
            topic: topic.to_owned(),
            watch: StallWatch::default(),
            epoch: std::time::Instant::now(),
            last_check: None,
        })
    }

    /// Creates each topic with `partitions` partitions and replication 1.
    /// A topic that already exists counts as created (its partition count is
    /// left as it is).
    pub async fn create_topics(&self, topics: &[&str], partitions: i32) -> Result<(), BusError> {
        let admin: AdminClient<LogContext> = base_config(&self.settings)
            .create_with_context(LogContext)
            .map_err(|e| kafka_error("creating admin client", &e))?;
        let new_topics: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|name| NewTopic::new(name, partitions, TopicReplication::Fixed(1)))
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(ADMIN_REQUEST_TIMEOUT));
        let results = admin
            .create_topics(&new_topics, &options)
            .await
            .map_err(|e| kafka_error("creating topics", &e))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => return Err(BusError::Kafka(format!("creating topic {name}: {code}"))),
            }
        }
        Ok(())
    }

    /// Messages of `topic` not yet committed by `group`, summed over
    /// partitions. A partition the group never committed counts from its low
    /// watermark, matching `auto.offset.reset=earliest`. Tansu 0.6 answers
    /// the high-watermark query with its last batch's base offset + 1, so
    /// there lag is under-counted while that batch holds several records.
    pub async fn lag(&self, topic: &str, group: &str) -> Result<Option<u64>, BusError> {
        let probe = self.probe(group)?;
        let topic = topic.to_owned();
        tokio::task::spawn_blocking(move || {
            // Serves queued client events (errors after a broker restart)
            // so an idle probe's queue does not grow; no subscription, so
            // it never returns a message.
            let _ = probe.poll(Duration::ZERO);
            progress_blocking(&*probe, &topic).map(|p| p.lag)
        })
        .await
        .map_err(|e| BusError::Kafka(format!("lag task failed: {e}")))?
        .map(Some)
    }

    /// The group's lag probe, created on first use. A consumer that never
    /// subscribes does not join the group, so asking for the group's
    /// offsets through it cannot trigger a rebalance.
    fn probe(&self, group: &str) -> Result<Arc<BaseConsumer<LogContext>>, BusError> {
        let mut probes = self.probes.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(probe) = probes.get(group) {
            return Ok(Arc::clone(probe));
        }
        let probe: Arc<BaseConsumer<LogContext>> = Arc::new(
            base_config(&self.settings)
                .set("group.id", group)
                .set("enable.auto.commit", "false")
                .create_with_context(LogContext)
                .map_err(|e| kafka_error("creating lag probe", &e))?,
        );
        probes.insert(group.to_owned(), Arc::clone(&probe));
        Ok(probe)
    }
}

impl KafkaConsumer {
    /// Waits up to `wait` for the first message, then takes whatever else is
    /// already fetched, up to `max`. Cancel-safe: the only await is the first
    /// `recv`, which is itself cancel-safe; everything after it runs without
    /// yielding, so a dropped future cannot strand received messages.
    pub async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivery>, BusError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let first = match tokio::time::timeout(wait, self.consumer.recv()).await {
            Err(_elapsed) => return Ok(Vec::new()),
            Ok(Err(e)) => return Err(kafka_error("receiving", &e)),
            Ok(Ok(message)) => to_delivery(&message),
        };
        let mut batch = Vec::with_capacity(max.min(1024));
        batch.push(first);
        while batch.len() < max {
            match recv_ready(&self.consumer) {
                Some(Ok(message)) => batch.push(to_delivery(&message)),
                // The error is librdkafka's to recover from (it reconnects on
                // its own); ending the batch here keeps what was received,
                // and the next poll reports the error if it persists.
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "Kafka error after a partial batch; returning the batch");
                    break;
                }
                None => break,
            }
        }
        self.drop_already_processed(&mut batch);
        Ok(batch)
    }

    /// Drops deliveries below the committed offset the partition resumed
    /// from (the re-read window of [`ResumeContext`]).
    fn drop_already_processed(&self, batch: &mut Vec<Delivery>) {
        let mut resume_from = self
            .consumer
            .context()
            .resume_from
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if resume_from.is_empty() {
            return;
        }
        batch.retain(|d| {
            let key = (d.topic.clone(), d.partition);
            match resume_from.get(&key) {
                Some(&at) if d.offset < at => false,
                Some(_) => {
                    resume_from.remove(&key);
                    true
                }
                None => true,
            }
        });
    }

    /// How many partitions the group currently gives this member; 0 until
    /// the first rebalance after joining (which `poll` drives).
    pub fn assigned_partitions(&self) -> Result<usize, BusError> {
        self.consumer
            .assignment()
            .map(|a| a.count())
            .map_err(|e| kafka_error("reading assignment", &e))
    }

    /// Whether this member should leave the group and join again (see
    /// [`StallWatch`]). Asks the broker at most every few seconds; in
    /// between it answers false at once.
    pub async fn stalled(&mut self) -> Result<bool, BusError> {
        let now = std::time::Instant::now();
        if self
            .last_check
            .is_some_and(|t| now.duration_since(t) < STALL_CHECK_EVERY)
        {
            return Ok(false);
        }
        self.last_check = Some(now);
        let elapsed = now.duration_since(self.epoch);
        let assigned = self.assigned_partitions()?;
        if assigned > 0 {
            return Ok(self.watch.observe(elapsed, assigned, 0, 0));
        }
        let (consumer, topic) = (Arc::clone(&self.consumer), self.topic.clone());
        let progress = tokio::task::spawn_blocking(move || progress_blocking(&*consumer, &topic))
            .await
            .map_err(|e| BusError::Kafka(format!("progress task failed: {e}")))??;
        tracing::debug!(topic = %self.topic, lag = progress.lag, committed = progress.committed, "rating group progress with no partitions held");
        let stalled = self.watch.observe(elapsed, 0, progress.lag, progress.committed);
        if stalled {
            tracing::warn!(
                topic = %self.topic,
                waiting = progress.lag,
                "this member has held no partitions for {}s while the group has records waiting and commits nothing; rejoining",
                STALL_WINDOW.as_secs()
            );
        }
        Ok(stalled)
    }

    /// Commits, per partition in `batch`, the offset after its highest
    /// delivery, and waits for the broker to confirm. Committing a partition
    /// this member no longer owns fails; its records are then redelivered to
    /// the new owner, which is the at-least-once contract.
    pub async fn commit(&mut self, batch: &[Delivery]) -> Result<(), BusError> {
        let mut next_offsets: HashMap<(&str, i32), i64> = HashMap::new();
        for delivery in batch {
            let next = delivery
                .offset
                .checked_add(1)
                .ok_or_else(|| BusError::Kafka(format!("offset {} out of range", delivery.offset)))?;
            let entry = next_offsets
                .entry((delivery.topic.as_str(), delivery.partition))
                .or_insert(next);
            *entry = (*entry).max(next);
        }
        if next_offsets.is_empty() {
            return Ok(());
        }
        let mut offsets = TopicPartitionList::with_capacity(next_offsets.len());
        for ((topic, partition), next) in next_offsets {
            offsets
                .add_partition_offset(topic, partition, Offset::Offset(next))
                .map_err(|e| kafka_error("building commit", &e))?;
        }
        let consumer = Arc::clone(&self.consumer);
        // The blocking task runs to completion even if this future is
        // dropped, so a commit is never half-cancelled.
        tokio::task::spawn_blocking(move || consumer.commit(&offsets, CommitMode::Sync))
            .await
            .map_err(|e| BusError::Kafka(format!("commit task failed: {e}")))?
            .map_err(|e| kafka_error("committing offsets", &e))
    }
}

fn base_config(settings: &KafkaSettings) -> ClientConfig {
    let mut config = ClientConfig::new();
    for (key, value) in &settings.properties {
        config.set(key, value);
    }
    config
        .set("bootstrap.servers", &settings.brokers)
        .set("client.id", &settings.client_id);
    config
}

fn kafka_error(context: &str, error: &KafkaError) -> BusError {
    BusError::Kafka(format!("{context}: {error}"))
}

async fn await_delivery(topic: &str, delivery: DeliveryFuture) -> Result<(), BusError> {
    match delivery.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _message))) => Err(kafka_error(&format!("delivering to {topic}"), &e)),
        // The producer outlives every delivery future we hold, so this means
        // librdkafka dropped the message without reporting an outcome.
        Err(_canceled) => Err(BusError::Kafka(format!("delivering to {topic}: delivery report lost"))),
    }
}

/// Takes the next message only if it is already in the local queue: one poll
/// of `recv` with a waker that is never woken.
fn recv_ready(consumer: &StreamConsumer<ResumeContext>) -> Option<Result<BorrowedMessage<'_>, KafkaError>> {
    let mut recv = pin!(consumer.recv());
    match recv.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(result) => Some(result),
        Poll::Pending => None,
    }
}

fn to_delivery(message: &BorrowedMessage<'_>) -> Delivery {
    Delivery {
        topic: message.topic().to_owned(),
        partition: message.partition(),
        offset: message.offset(),
        key: message
            .key()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .unwrap_or_default(),
        payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
    }
}

/// Where a group stands on a topic.
struct Progress {
    /// Records not yet committed.
    lag: u64,
    /// Sum of the committed offsets: grows whenever the group commits.
    committed: i64,
}

fn progress_blocking<X: ConsumerContext, K: Consumer<X>>(probe: &K, topic: &str) -> Result<Progress, BusError> {
    let metadata = probe
        .fetch_metadata(Some(topic), ADMIN_REQUEST_TIMEOUT)
        .map_err(|e| kafka_error(&format!("fetching metadata of {topic}"), &e))?;
    let Some(topic_metadata) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Ok(Progress { lag: 0, committed: 0 });
    };
    if let Some(code) = topic_metadata.error() {
        // A topic nobody created yet has no lag.
        if RDKafkaErrorCode::from(code) == RDKafkaErrorCode::UnknownTopicOrPartition {
            return Ok(Progress { lag: 0, committed: 0 });
        }
        return Err(BusError::Kafka(format!(
            "metadata of {topic}: {}",
            RDKafkaErrorCode::from(code)
        )));
    }
    let mut partitions = TopicPartitionList::new();
    let mut low_high = HashMap::new();
    for partition in topic_metadata.partitions() {
        let id = partition.id();
        let watermarks = probe
            .fetch_watermarks(topic, id, ADMIN_REQUEST_TIMEOUT)
            .map_err(|e| kafka_error(&format!("fetching watermarks of {topic}/{id}"), &e))?;
        low_high.insert(id, watermarks);
        partitions.add_partition(topic, id);
    }
    let committed = probe
        .committed_offsets(partitions, ADMIN_REQUEST_TIMEOUT)
        .map_err(|e| kafka_error(&format!("fetching committed offsets of {topic}"), &e))?;
    let (mut lag, mut total): (u64, i64) = (0, 0);
    for element in committed.elements_for_topic(topic) {
        let Some(&(low, high)) = low_high.get(&element.partition()) else {
            continue;
        };
        let from = match element.offset() {
            Offset::Offset(committed) => {
                total = total.saturating_add(committed);
                committed.max(low)
            }
            _ => low,
        };
        let behind = u64::try_from(high.saturating_sub(from)).unwrap_or(0);
        lag = lag.saturating_add(behind);
    }
    Ok(Progress { lag, committed: total })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn a_member_rejoins_only_when_it_holds_nothing_and_the_group_is_idle_with_work_waiting() {
        // (seconds, partitions held, records waiting, committed total, rejoin?)
        type Step = (u64, usize, u64, i64, bool);
        let cases: &[(&str, &[Step])] = &[
            (
                "stalled: nothing held, work waiting, nothing committed for the window",
                &[(0, 0, 500, 10, false), (15, 0, 600, 10, false), (30, 0, 700, 10, true)],
            ),
            (
                "holding partitions is never a stall",
                &[(0, 4, 500, 10, false), (30, 4, 900, 10, false), (60, 4, 900, 10, false)],
            ),
            (
                "nothing waiting: an idle group is fine",
                &[(0, 0, 0, 10, false), (30, 0, 0, 10, false), (90, 0, 0, 10, false)],
            ),
            (
                "other members commit: an extra member of a busy group stays",
                &[
                    (0, 0, 500, 10, false),
                    (25, 0, 500, 20, false),
                    (50, 0, 500, 30, false),
                    (75, 0, 500, 30, false),
                ],
            ),
            (
                "the window restarts after progress and after an assignment",
                &[
                    (0, 0, 500, 10, false),
                    (20, 2, 500, 10, false),
                    (25, 0, 500, 10, false),
                    (50, 0, 500, 10, false),
                    (55, 0, 500, 10, true),
                ],
            ),
        ];
        for (what, steps) in cases {
            let mut watch = StallWatch::default();
            for &(at, held, waiting, committed, want) in *steps {
                assert_eq!(watch.observe(s(at), held, waiting, committed), want, "{what}: at {at}s");
            }
        }
    }

    /// librdkafka checks a property's value when a client is created, so a
    /// build without OpenSSL or zlib fails here, not on a customer's broker.
    #[test]
    fn tls_sasl_and_compression_settings_are_accepted() {
        let properties: BTreeMap<String, String> = [
            ("security.protocol", "sasl_ssl"),
            ("sasl.mechanisms", "SCRAM-SHA-512"),
            ("sasl.username", "cdrate"),
            ("sasl.password", "secret"),
            ("ssl.endpoint.identification.algorithm", "https"),
            ("compression.type", "gzip"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let settings = KafkaSettings {
            brokers: "127.0.0.1:1".into(),
            client_id: "test".into(),
            properties,
        };
        if let Err(e) = KafkaBus::connect(&settings) {
            panic!("{e}");
        }
        let mut bad = settings.clone();
        bad.properties
            .insert("security.protocol".into(), "carrier_pigeon".into());
        assert!(KafkaBus::connect(&bad).is_err(), "an unknown value is refused");
    }
}
