//! The embedded bus: durable publish, group offsets, at-least-once delivery.

use std::time::Duration;

use cdrate_bus::embedded::EmbeddedBus;
use cdrate_bus::{Bus, Outgoing};
use cdrate_store::StoreSettings;

async fn bus(name: &str) -> Bus {
    let dir = std::env::temp_dir().join(format!("cdrate-bus-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let settings = StoreSettings::new(format!("sqlite://{}/bus.db", dir.display()));
    Bus::Embedded(EmbeddedBus::open(&settings).await.unwrap())
}

fn records(range: std::ops::Range<usize>) -> Vec<Outgoing> {
    range
        .map(|i| Outgoing {
            key: format!("acct{}", i % 3),
            payload: format!("m{i}").into_bytes(),
        })
        .collect()
}

#[tokio::test]
async fn consumers_resume_after_the_committed_offset() {
    let bus = bus("resume").await;
    bus.publish("t", &records(0..10)).await.unwrap();
    let mut c = bus.subscribe("t", "g").await.unwrap();
    let first = c.poll(4, Duration::from_secs(1)).await.unwrap();
    assert_eq!(first.iter().map(|d| d.offset).collect::<Vec<_>>(), [0, 1, 2, 3]);
    c.commit(&first).await.unwrap();
    // Read but not committed: a new member of the group gets them again.
    let second = c.poll(3, Duration::from_secs(1)).await.unwrap();
    assert_eq!(second[0].offset, 4);
    drop(c);
    let mut c = bus.subscribe("t", "g").await.unwrap();
    let again = c.poll(100, Duration::from_secs(1)).await.unwrap();
    assert_eq!(again.first().map(|d| d.offset), Some(4));
    assert_eq!(again.len(), 6);
    assert_eq!(again[0].payload, b"m4");
    c.commit(&again).await.unwrap();
    assert_eq!(bus.lag("t", "g").await.unwrap(), Some(0));
    // Another group starts from the beginning.
    let mut other = bus.subscribe("t", "other").await.unwrap();
    assert_eq!(other.poll(100, Duration::from_secs(1)).await.unwrap().len(), 10);
    assert_eq!(bus.lag("t", "other").await.unwrap(), Some(10));
}

#[tokio::test]
async fn a_waiting_consumer_wakes_on_publish() {
    let bus = bus("wake").await;
    let mut c = bus.subscribe("t", "g").await.unwrap();
    let waiter = tokio::spawn(async move { c.poll(10, Duration::from_secs(30)).await });
    tokio::task::yield_now().await;
    bus.publish("t", &records(0..2)).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(got.len(), 2);
}

#[tokio::test]
async fn an_empty_poll_returns_after_the_wait() {
    let bus = bus("empty").await;
    let mut c = bus.subscribe("t", "g").await.unwrap();
    assert!(c.poll(10, Duration::from_millis(50)).await.unwrap().is_empty());
}
