//! The pipeline's promises: every accepted record is rated exactly once,
//! duplicates and redeliveries change nothing, a `kill -9` loses nothing,
//! Kafka consumer-group members split the work, quarantined records are
//! rated once their cause is fixed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cdrate_benches::calls::{batch_json, call_json};
use cdrate_benches::http::Client;
use cdrate_store::Store;

use crate::harness::{backends, eventually, kafka_backend, World};

const SEED: u64 = 42;

/// Posts records `range` as one request, retrying (bounded) until accepted.
fn post_batch(client: &mut Client, prefix: &str, range: std::ops::Range<u64>, version: u32, keys: &[String]) {
    let body = batch_json(prefix, range.clone(), version, keys, SEED);
    for attempt in 0..600 {
        match client.post_json("/ingest/calls", body.as_bytes()) {
            Ok(r) if r.status == 202 => return,
            Ok(r) if r.status == 503 => {}
            Ok(r) => panic!("records {range:?} rejected: {} {}", r.status, r.text()),
            Err(_) => {}
        }
        std::thread::sleep(Duration::from_millis(if attempt < 10 { 20 } else { 100 }));
    }
    panic!("records {range:?} never accepted");
}

/// Waits until `n` calls are stored, then checks the running totals equal
/// the sum of the rated calls, and that every call was counted once.
async fn assert_rated_exactly_once(store: &Store, n: i64) {
    eventually("all records rated", Duration::from_secs(300), || async {
        let got = store.count_calls().await.map_err(|e| e.to_string())?;
        if got == n {
            Ok(())
        } else {
            Err(format!("{got} of {n} rated"))
        }
    })
    .await;
    let totals = store.usage_totals().await.unwrap();
    assert_eq!(
        totals,
        store.recomputed_totals().await.unwrap(),
        "running totals differ from the rated calls"
    );
    assert_eq!(
        totals.iter().map(|t| t.calls).sum::<i64>(),
        n,
        "a call was counted twice or not at all"
    );
    assert!(
        store.quarantine_list(None, None, 10).await.unwrap().is_empty(),
        "unexpected quarantine"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_record_is_rated_once_and_duplicates_change_nothing() {
    for backend in backends() {
        let world = World::new("dups", &backend).await;
        let engine = world.start();
        let keys = world.keys.clone();
        let addr = engine.addr;
        tokio::task::spawn_blocking(move || {
            let mut c = Client::new(addr);
            for b in 0..20 {
                post_batch(&mut c, "d-", b * 100..(b + 1) * 100, 1, &keys);
                // Every batch again: a PBX retrying after a lost answer.
                post_batch(&mut c, "d-", b * 100..(b + 1) * 100, 1, &keys);
            }
        })
        .await
        .unwrap();
        let store = world.store().await;
        assert_rated_exactly_once(&store, 2000).await;
        let before = store.usage_totals().await.unwrap();
        let first = store.find_call("d-7").await.unwrap().unwrap();

        // The same records once more, singly and in a batch: nothing moves.
        let keys = world.keys.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = Client::new(addr);
            for i in 0..50 {
                let one = call_json("d-", i, 1, &keys, SEED);
                assert_eq!(c.post_json("/ingest/calls", one.as_bytes()).unwrap().status, 202);
            }
            post_batch(&mut c, "d-", 0..2000, 1, &keys);
        })
        .await
        .unwrap();
        eventually("duplicates consumed", Duration::from_secs(120), || async {
            let dup = engine.metric("cdrate_rating_calls_total", "outcome=\"duplicate\"");
            if dup >= 2050.0 + 2000.0 {
                Ok(())
            } else {
                Err(format!("{dup} duplicates seen"))
            }
        })
        .await;
        assert_eq!(store.usage_totals().await.unwrap(), before);
        assert_eq!(store.find_call("d-7").await.unwrap().unwrap(), first);

        // A corrected record (version 2) replaces the first and moves totals.
        let keys = world.keys.clone();
        tokio::task::spawn_blocking(move || post_batch(&mut Client::new(addr), "d-", 0..10, 2, &keys))
            .await
            .unwrap();
        eventually("corrections rated", Duration::from_secs(120), || async {
            let c = store.find_call("d-7").await.map_err(|e| e.to_string())?.ok_or("gone")?;
            if c.call.version == 2 {
                Ok(())
            } else {
                Err("still version 1".into())
            }
        })
        .await;
        assert_rated_exactly_once(&store, 2000).await;
        engine.stop();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_mid_stream_loses_nothing_and_rates_once() {
    const TOTAL: u64 = 50_000;
    const PER_REQUEST: u64 = 250;
    for backend in backends() {
        // On Kafka this also covers a tansu 0.6 coordinator race that left the
        // restarted member with an empty assignment for good; the consumer's
        // stall watch rejoins (cdrate_bus::kafka::StallWatch).
        let world = World::new("kill", &backend).await;
        let engine = world.start();
        let accepted = Arc::new(AtomicU64::new(0));
        let addr = Arc::new(std::sync::Mutex::new(engine.addr));
        // Two posters share the stream; each retries until its batch is accepted.
        let mut posters = Vec::new();
        for p in 0..2u64 {
            let (keys, accepted, addr) = (world.keys.clone(), accepted.clone(), addr.clone());
            posters.push(std::thread::spawn(move || {
                let mut b = p;
                while b * PER_REQUEST < TOTAL {
                    let range = b * PER_REQUEST..((b + 1) * PER_REQUEST).min(TOTAL);
                    let body = batch_json("k-", range.clone(), 1, &keys, SEED);
                    loop {
                        let target = *addr.lock().unwrap();
                        if let Ok(r) = Client::new(target).post_json("/ingest/calls", body.as_bytes()) {
                            if r.status == 202 {
                                break;
                            }
                            assert_eq!(r.status, 503, "{}", r.text());
                        }
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    accepted.fetch_add(range.end - range.start, Ordering::SeqCst);
                    b += 2;
                }
            }));
        }
        // Kill the engine once a third of the stream is in, mid-batch.
        eventually("a third accepted", Duration::from_secs(300), || async {
            let n = accepted.load(Ordering::SeqCst);
            if n >= TOTAL / 3 {
                Ok(())
            } else {
                Err(format!("{n} accepted"))
            }
        })
        .await;
        engine.kill();
        let restarted = world.start();
        *addr.lock().unwrap() = restarted.addr;
        for p in posters {
            p.join().unwrap();
        }
        assert_eq!(accepted.load(Ordering::SeqCst), TOTAL);
        let store = world.store().await;
        assert_rated_exactly_once(&store, TOTAL as i64).await;
        restarted.stop();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn quarantined_records_are_rated_after_the_account_is_imported() {
    for backend in backends() {
        let world = World::new("quarantine", &backend).await;
        let engine = world.start();
        let stranger = vec!["newco-key".to_owned()];
        let addr = engine.addr;
        let body = batch_json("q-", 0..5, 1, &stranger, SEED);
        let r = tokio::task::spawn_blocking(move || Client::new(addr).post_json("/ingest/calls", body.as_bytes()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.status, 202);
        let store = world.store().await;
        eventually("records quarantined", Duration::from_secs(60), || async {
            let q = store
                .quarantine_list(Some("unknown_account"), None, 10)
                .await
                .map_err(|e| e.to_string())?;
            if q.len() == 5 {
                Ok(())
            } else {
                Err(format!("{} quarantined", q.len()))
            }
        })
        .await;
        assert_eq!(store.count_calls().await.unwrap(), 0);
        let listed = world.cli(&["quarantine", "list"]);
        assert!(
            String::from_utf8_lossy(&listed.stdout).contains("unknown_account: 5"),
            "{listed:?}"
        );

        // The operator adds the account; the running worker notices the new
        // version and re-queues the quarantine by itself.
        let accounts =
            std::fs::read_to_string(world.dir.join("accounts.csv")).unwrap() + "newco,home,USD,1,1,011,,,1,\n";
        let identities =
            std::fs::read_to_string(world.dir.join("identities.csv")).unwrap() + "generic,newco-key,newco\n";
        std::fs::write(world.dir.join("accounts2.csv"), accounts).unwrap();
        std::fs::write(world.dir.join("identities2.csv"), identities).unwrap();
        let out = world.cli(&["accounts", "import", "accounts2.csv", "identities2.csv"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        // Something must arrive for the worker to look at the new version.
        let keys = world.keys.clone();
        tokio::task::spawn_blocking(move || post_batch(&mut Client::new(addr), "q-other-", 0..1, 1, &keys))
            .await
            .unwrap();
        assert_rated_exactly_once(&store, 6).await;
        let rated = store.find_call("q-3").await.unwrap().unwrap();
        assert_eq!(rated.account_id, "newco");
        engine.stop();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_kafka_workers_split_the_partitions() {
    let Some(backend) = kafka_backend() else { return };
    let world = World::new("group", &backend).await;
    // Three members of one group over four partitions: two workers in
    // process a (rating.workers = 2), one in process b.
    let a = world.start_with(&[("CDRATE_RATING__WORKERS", "2")]);
    let b = world.start();
    let addr = a.addr;
    let keys = world.keys.clone();
    tokio::task::spawn_blocking(move || {
        let mut c = Client::new(addr);
        for i in 0..20 {
            post_batch(&mut c, "g-", i * 250..(i + 1) * 250, 1, &keys);
        }
    })
    .await
    .unwrap();
    let store = world.store().await;
    assert_rated_exactly_once(&store, 5000).await;
    let (ra, rb) = (
        a.metric("cdrate_rating_calls_total", "outcome=\"rated\""),
        b.metric("cdrate_rating_calls_total", "outcome=\"rated\""),
    );
    assert!(ra > 0.0 && rb > 0.0, "both members rate: {ra} and {rb}");
    assert_eq!(ra + rb, 5000.0, "each call rated by exactly one member");
    a.stop();
    b.stop();
}
