//! `cdrate backup` while the engine serves and calls keep arriving: the copy
//! opens as a working store and bus, and an engine started on it holds
//! every call accepted before the backup, rated once, totals adding up.

use std::time::Duration;

use cdrate_benches::calls::batch_json;
use cdrate_store::{Store, StoreSettings};

use crate::harness::{eventually, Backend, World};

const SEED: u64 = 11;

fn post(engine: &crate::harness::Engine, prefix: &str, range: std::ops::Range<u64>, keys: &[String]) {
    let body = batch_json(prefix, range, 1, keys, SEED);
    for _ in 0..200 {
        match engine.client().post_json("/ingest/calls", body.as_bytes()) {
            Ok(r) if r.status == 202 => return,
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    panic!("not accepted");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_online_backup_restores_every_accepted_call() {
    let world = World::new("backup", &Backend::Embedded).await;
    let engine = world.start();
    let keys = world.keys.clone();
    tokio::task::block_in_place(|| {
        for b in 0..8u64 {
            post(&engine, "b-", b * 250..(b + 1) * 250, &keys);
        }
    });
    let dir = world.dir.join("backup-1");
    // Calls keep arriving while the backup runs.
    let (addr_keys, stop) = (
        keys.clone(),
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
    );
    let engine_addr = engine.addr;
    let stopper = stop.clone();
    let writer = std::thread::spawn(move || {
        let mut i = 0u64;
        while !stopper.load(std::sync::atomic::Ordering::SeqCst) {
            let body = batch_json("late-", i * 50..(i + 1) * 50, 1, &addr_keys, SEED);
            let _ = cdrate_benches::http::Client::new(engine_addr).post_json("/ingest/calls", body.as_bytes());
            i += 1;
        }
    });
    let out = world.cli(&["backup", dir.to_str().unwrap()]);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    writer.join().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dir.join("cdrate.db").exists() && dir.join("bus.db").exists());
    assert!(
        !world.cli(&["backup", dir.to_str().unwrap()]).status.success(),
        "never overwrites"
    );
    engine.stop();

    // An engine on the copy rates whatever the copy's bus still holds.
    let engine = world.start_with(&[
        ("CDRATE_STORE__URL", &format!("sqlite://{}/cdrate.db", dir.display())),
        (
            "CDRATE_BUS__EMBEDDED_URL",
            &format!("sqlite://{}/bus.db", dir.display()),
        ),
    ]);
    let restored = Store::open(&StoreSettings::new(format!("sqlite://{}/cdrate.db", dir.display())))
        .await
        .unwrap();
    eventually(
        "the first 2000 calls rated in the copy",
        Duration::from_secs(120),
        || async {
            let mut missing = 0;
            for i in (0..2000).step_by(97) {
                if restored
                    .find_call(&format!("b-{i}"))
                    .await
                    .map_err(|e| e.to_string())?
                    .is_none()
                {
                    missing += 1;
                }
            }
            let n = restored.count_calls().await.map_err(|e| e.to_string())?;
            if missing == 0 && n >= 2000 {
                Ok(())
            } else {
                Err(format!("{missing} sampled missing, {n} calls"))
            }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        restored.usage_totals().await.unwrap(),
        restored.recomputed_totals().await.unwrap()
    );
    assert!(restored.quarantine_list(None, None, 10).await.unwrap().is_empty());
    engine.stop();
}
