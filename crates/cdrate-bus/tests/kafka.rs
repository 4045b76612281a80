//! Kafka backend against a real Kafka-protocol broker: durability of publish,
//! key-to-partition order, committed offsets, at-least-once redelivery,
//! group balancing, topic creation and lag.
//!
//! The broker comes from `CDRATE_TEST_KAFKA_BROKERS` (start one with
//! `scripts/services/tansu start 19092 DIR`). Without it every test skips,
//! unless `CDRATE_TEST_REQUIRE_SERVICES=1` turns the skip into a failure.
//! Topic and group names are unique per run, so reruns against a long-lived
//! broker do not see each other's records.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cdrate_bus::kafka::{KafkaBus, KafkaConsumer, KafkaSettings};
use cdrate_bus::{Delivery, Outgoing};

const BROKERS_VAR: &str = "CDRATE_TEST_KAFKA_BROKERS";
/// Guard on every wait; the assertions never depend on it.
const GUARD: Duration = Duration::from_secs(120);
const POLL_WAIT: Duration = Duration::from_millis(500);

/// The broker address, or `None` (after printing why) when the test should
/// skip. Panics when services are required but the variable is missing.
fn brokers() -> Option<String> {
    match std::env::var(BROKERS_VAR) {
        Ok(brokers) if !brokers.trim().is_empty() => Some(brokers),
        _ => {
            let required = std::env::var("CDRATE_TEST_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
            assert!(!required, "{BROKERS_VAR} not set but CDRATE_TEST_REQUIRE_SERVICES=1");
            println!("skipped: {BROKERS_VAR} not set");
            None
        }
    }
}

/// A name no other test or earlier run has used.
fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("cdrate-test-{prefix}-{}-{nanos}-{n}", std::process::id())
}

fn connect(brokers: &str) -> KafkaBus {
    let settings = KafkaSettings {
        brokers: brokers.to_owned(),
        client_id: "cdrate-bus-tests".to_owned(),
        ..KafkaSettings::default()
    };
    KafkaBus::connect(&settings).expect("producer config is valid")
}

/// Records `first..first + count`, spread over `keys` keys; the payload names
/// the record so every one is distinguishable.
fn records(first: usize, count: usize, keys: usize) -> Vec<Outgoing> {
    (first..first + count)
        .map(|i| Outgoing {
            key: format!("account-{}", i % keys),
            payload: format!("record-{i}").into_bytes(),
        })
        .collect()
}

fn payload(delivery: &Delivery) -> String {
    String::from_utf8(delivery.payload.clone()).expect("test payloads are utf-8")
}

fn record_number(delivery: &Delivery) -> usize {
    payload(delivery)
        .strip_prefix("record-")
        .and_then(|n| n.parse().ok())
        .expect("payload is record-N")
}

/// Polls until `count` deliveries arrived (more may come: returned too).
async fn consume_at_least(consumer: &mut KafkaConsumer, count: usize) -> Vec<Delivery> {
    let mut got = Vec::new();
    tokio::time::timeout(GUARD, async {
        while got.len() < count {
            got.extend(consumer.poll(500, POLL_WAIT).await.expect("poll succeeds"));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("guard expired: got {} of {count} records", got.len()));
    got
}

#[tokio::test(flavor = "multi_thread")]
async fn publish_then_consume_keeps_every_record_once_and_in_key_order() {
    let Some(brokers) = brokers() else { return };
    let bus = connect(&brokers);
    let topic = unique("order");
    bus.create_topics(&[&topic], 4).await.expect("topic created");

    let published = records(0, 1_000, 37);
    tokio::time::timeout(GUARD, bus.publish(&topic, &published))
        .await
        .expect("guard")
        .expect("publish acknowledged");

    let mut consumer = bus.subscribe(&topic, &unique("group")).expect("subscribed");
    let got = consume_at_least(&mut consumer, published.len()).await;

    let numbers: Vec<usize> = got.iter().map(record_number).collect();
    let distinct: BTreeSet<usize> = numbers.iter().copied().collect();
    assert_eq!(numbers.len(), published.len(), "every record exactly once");
    assert_eq!(distinct, (0..1_000).collect(), "no record missing");

    let mut partition_of_key: HashMap<&str, i32> = HashMap::new();
    let mut numbers_of_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for delivery in &got {
        assert_eq!(delivery.topic, topic);
        let partition = *partition_of_key
            .entry(delivery.key.as_str())
            .or_insert(delivery.partition);
        assert_eq!(
            partition, delivery.partition,
            "key {} is on one partition",
            delivery.key
        );
        numbers_of_key
            .entry(delivery.key.as_str())
            .or_default()
            .push(record_number(delivery));
    }
    for (key, numbers) in &numbers_of_key {
        assert!(
            numbers.windows(2).all(|w| w[0] < w[1]),
            "key {key} delivered in publish order: {numbers:?}"
        );
    }
    let partitions: BTreeSet<i32> = partition_of_key.values().copied().collect();
    assert!(
        partitions.len() > 1,
        "37 keys spread over more than one of 4 partitions: {partitions:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_consumer_resumes_after_commits_and_gets_uncommitted_records_again() {
    let Some(brokers) = brokers() else { return };
    let bus = connect(&brokers);
    let topic = unique("resume");
    let group = unique("group");
    bus.create_topics(&[&topic], 2).await.expect("topic created");

    bus.publish(&topic, &records(0, 100, 5))
        .await
        .expect("first batch acknowledged");
    let mut first = bus.subscribe(&topic, &group).expect("subscribed");
    let got = consume_at_least(&mut first, 100).await;
    assert_eq!(got.len(), 100);
    first.commit(&got).await.expect("committed");

    // Delivered to the same member but never committed: must come back.
    bus.publish(&topic, &records(100, 50, 5))
        .await
        .expect("second batch acknowledged");
    let uncommitted = consume_at_least(&mut first, 50).await;
    let uncommitted: BTreeSet<usize> = uncommitted.iter().map(record_number).collect();
    assert_eq!(uncommitted, (100..150).collect());
    drop(first);

    // A partition replays from its committed offset, so a committed record
    // coming back would arrive before the uncommitted ones and show up in
    // the first 50 deliveries.
    let mut second = bus.subscribe(&topic, &group).expect("subscribed again");
    let again = consume_at_least(&mut second, 50).await;
    let again_numbers: Vec<usize> = again.iter().map(record_number).collect();
    let again_set: BTreeSet<usize> = again_numbers.iter().copied().collect();
    assert_eq!(
        again_set,
        (100..150).collect(),
        "only the uncommitted records, committed ones never again"
    );
    assert_eq!(again_numbers.len(), 50, "each uncommitted record redelivered once");
    second.commit(&again).await.expect("committed");
    drop(second);

    bus.publish(&topic, &records(150, 10, 5))
        .await
        .expect("third batch acknowledged");
    let mut third = bus.subscribe(&topic, &group).expect("subscribed a third time");
    let rest: Vec<usize> = consume_at_least(&mut third, 10)
        .await
        .iter()
        .map(record_number)
        .collect();
    assert_eq!(rest.len(), 10);
    assert_eq!(
        rest.into_iter().collect::<BTreeSet<_>>(),
        (150..160).collect(),
        "resumes after the committed offsets"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_members_share_the_partitions_and_lose_nothing() {
    let Some(brokers) = brokers() else { return };
    let bus = connect(&brokers);
    let topic = unique("group-balance");
    let group = unique("group");
    bus.create_topics(&[&topic], 4).await.expect("topic created");

    let mut a = bus.subscribe(&topic, &group).expect("a subscribed");
    let mut b = bus.subscribe(&topic, &group).expect("b subscribed");
    // Both must be members before anything is published, otherwise the
    // first one takes every partition. Polling drives the join; an empty
    // topic returns nothing, so wait until each one owns some partitions.
    tokio::time::timeout(GUARD, async {
        while !(owns_partitions(&a) && owns_partitions(&b)) {
            assert!(a.poll(10, Duration::from_millis(100)).await.expect("poll a").is_empty());
            assert!(b.poll(10, Duration::from_millis(100)).await.expect("poll b").is_empty());
        }
    })
    .await
    .expect("guard expired: the group never gave both members partitions");

    let published = records(0, 400, 40);
    bus.publish(&topic, &published).await.expect("publish acknowledged");

    let mut got_a = Vec::new();
    let mut got_b = Vec::new();
    tokio::time::timeout(GUARD, async {
        while got_a.len() + got_b.len() < published.len() {
            let batch = a.poll(100, Duration::from_millis(200)).await.expect("poll a");
            a.commit(&batch).await.expect("a commits what it got");
            got_a.extend(batch);
            let batch = b.poll(100, Duration::from_millis(200)).await.expect("poll b");
            b.commit(&batch).await.expect("b commits what it got");
            got_b.extend(batch);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("guard expired: got {} + {}", got_a.len(), got_b.len()));

    assert!(
        !got_a.is_empty() && !got_b.is_empty(),
        "both members got records: {} and {}",
        got_a.len(),
        got_b.len()
    );
    let partitions_a: BTreeSet<i32> = got_a.iter().map(|d| d.partition).collect();
    let partitions_b: BTreeSet<i32> = got_b.iter().map(|d| d.partition).collect();
    assert!(
        partitions_a.is_disjoint(&partitions_b),
        "a partition has one owner: {partitions_a:?} {partitions_b:?}"
    );

    let all: Vec<usize> = got_a.iter().chain(&got_b).map(record_number).collect();
    let distinct: BTreeSet<usize> = all.iter().copied().collect();
    assert_eq!(distinct, (0..400).collect(), "no record lost");
    // Both joined before the publish, so no rebalance could replay a record.
    let duplicates = all.len() - distinct.len();
    assert_eq!(duplicates, 0, "no duplicates without a rebalance");
    assert_eq!(
        bus.lag(&topic, &group).await.expect("lag"),
        Some(0),
        "everything committed"
    );
}

fn owns_partitions(consumer: &KafkaConsumer) -> bool {
    consumer.assigned_partitions().is_ok_and(|n| n > 0)
}

#[tokio::test(flavor = "multi_thread")]
async fn create_topics_is_idempotent_and_lag_counts_uncommitted_records() {
    let Some(brokers) = brokers() else { return };
    let bus = connect(&brokers);
    let topic = unique("lag");
    let group = unique("group");
    bus.create_topics(&[&topic], 3).await.expect("created");
    bus.create_topics(&[&topic], 3)
        .await
        .expect("creating an existing topic is fine");

    assert_eq!(bus.lag(&topic, &group).await.expect("lag"), Some(0), "empty topic");
    // One record per publish, so each lands in a batch of its own: Tansu
    // 0.6 answers "latest offset" with the last batch's base offset + 1,
    // which is the true high watermark only for one-record batches. Kafka
    // gets the same answer either way.
    for record in records(0, 30, 7) {
        bus.publish(&topic, &[record]).await.expect("publish acknowledged");
    }
    assert_eq!(
        bus.lag(&topic, &group).await.expect("lag"),
        Some(30),
        "nothing committed yet"
    );

    let mut consumer = bus.subscribe(&topic, &group).expect("subscribed");
    let got = consume_at_least(&mut consumer, 30).await;
    // Within a partition deliveries come in offset order, so committing
    // the first 12 deliveries covers exactly 12 records.
    consumer.commit(&got[..12]).await.expect("committed");
    assert_eq!(bus.lag(&topic, &group).await.expect("lag"), Some(18));

    consumer.commit(&got).await.expect("committed the rest");
    assert_eq!(bus.lag(&topic, &group).await.expect("lag"), Some(0));
}

/// Regression: restarting members resume exactly at the committed offset
/// even when it lies inside a produce batch (Tansu 0.6 skipped the rest of
/// that batch; see the `kafka` module doc).
#[tokio::test(flavor = "multi_thread")]
async fn members_restarting_mid_batch_resume_at_the_committed_offset() {
    let Some(brokers) = brokers() else { return };
    let bus = connect(&brokers);
    let topic = unique("resume");
    bus.create_topics(&[&topic], 4).await.expect("topic created");
    let group = unique("group");
    const TOTAL: usize = 20_000;
    // 250-record publishes: produce batches of ~60 records per partition,
    // so the 700-record polls below end mid-batch.
    for first in (0..TOTAL).step_by(250) {
        bus.publish(&topic, &records(first, 250, 20)).await.expect("published");
    }
    let mut seen = BTreeSet::new();
    let mut next_offset: BTreeMap<i32, i64> = BTreeMap::new();
    tokio::time::timeout(GUARD, async {
        while seen.len() < TOTAL {
            // A new member each round: it must start where the last stopped.
            let mut consumer = bus.subscribe(&topic, &group).expect("subscribed");
            let mut taken = 0;
            while taken < 3_000 && seen.len() < TOTAL {
                let batch = consumer.poll(700, POLL_WAIT).await.expect("poll succeeds");
                for d in &batch {
                    let expected = next_offset.get(&d.partition).copied().unwrap_or(0);
                    assert_eq!(
                        d.offset, expected,
                        "partition {} resumed at the wrong offset",
                        d.partition
                    );
                    next_offset.insert(d.partition, d.offset + 1);
                    assert!(
                        seen.insert(record_number(d)),
                        "record {} delivered twice",
                        record_number(d)
                    );
                }
                taken += batch.len();
                consumer.commit(&batch).await.expect("commit succeeds");
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("guard expired: {} of {TOTAL} records", seen.len()));
    assert_eq!(seen, (0..TOTAL).collect());
}
