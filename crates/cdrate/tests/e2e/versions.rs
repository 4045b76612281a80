//! Tariff versions in a running engine: an import takes effect for calls
//! rated after it without a restart, re-queues what had no route, and
//! `cdrate rerate` re-prices stored calls with a new `rating_version` while
//! totals stay equal to the sum of current costs.

use std::path::Path;
use std::time::Duration;

use cdrate_benches::http::Client;
use cdrate_store::Store;

use crate::harness::{backends, eventually, World};

fn copy_tariffs(to: &Path) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/tariffs");
    std::fs::create_dir_all(to).unwrap();
    for f in ["plans.csv", "bands.csv", "rates.csv"] {
        std::fs::copy(from.join(f), to.join(f)).unwrap();
    }
}

fn call(id: &str, callee: &str) -> String {
    call_for("k0", id, callee)
}

fn call_for(key: &str, id: &str, callee: &str) -> String {
    format!(
        r#"{{"id":"{id}","version":1,"source":"generic","account_key":"{key}","direction":"outbound","caller":"1001","callee":"{callee}","start_at":"2026-11-18T15:00:00Z","answer_at":"2026-11-18T15:00:05Z","end_at":"2026-11-18T15:02:05Z","duration_ms":125000,"billable_ms":120000,"disposition":"answered"}}"#
    )
}

async fn post(addr: std::net::SocketAddr, body: String) {
    let r = tokio::task::spawn_blocking(move || Client::new(addr).post_json("/ingest/calls", body.as_bytes()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.status, 202, "{}", r.text());
}

/// `"<cost> v<tariff version> r<rating version>"` of a call, once rated.
async fn rated_cost(store: &Store, id: &str) -> String {
    eventually(&format!("{id} rated"), Duration::from_secs(60), || async {
        match store.find_call(id).await.map_err(|e| e.to_string())? {
            Some(_) => Ok(()),
            None => Err("not yet".into()),
        }
    })
    .await;
    let c = store.find_call(id).await.unwrap().unwrap();
    format!("{} v{} r{}", c.cost, c.tariff_version, c.rating_version)
}

#[tokio::test(flavor = "multi_thread")]
async fn tariff_import_applies_without_restart_and_rerate_reprices() {
    for backend in backends() {
        let world = World::new("versions", &backend).await;
        // One more account, on a plan without fallback, so a number can lack a route.
        let accounts =
            std::fs::read_to_string(world.dir.join("accounts.csv")).unwrap() + "tf,tollfree-in,USD,1,1,011,,,1,\n";
        let identities = std::fs::read_to_string(world.dir.join("identities.csv")).unwrap() + "generic,k-tf,tf\n";
        std::fs::write(world.dir.join("accounts.csv"), accounts).unwrap();
        std::fs::write(world.dir.join("identities.csv"), identities).unwrap();
        let engine = world.start();
        let store = world.store().await;

        // Business plan, UK London: 0.0150/min in 6 s steps; 120 s → 0.0300.
        post(engine.addr, call("v-1", "+442079460000")).await;
        assert_eq!(rated_cost(&store, "v-1").await, "0.0300 v1 r1");
        // tollfree-in has no rate for Antarctica (672) and no fallback: no_route.
        post(engine.addr, call_for("k-tf", "v-aq", "+6721234567")).await;
        eventually("no_route quarantined", Duration::from_secs(60), || async {
            let q = store
                .quarantine_list(Some("no_route"), None, 10)
                .await
                .map_err(|e| e.to_string())?;
            if q.len() == 1 {
                Ok(())
            } else {
                Err(format!("{} quarantined", q.len()))
            }
        })
        .await;

        // New version: London doubles, and Antarctica gets a route.
        let dir = world.dir.join("tariffs-v2");
        copy_tariffs(&dir);
        let rates = std::fs::read_to_string(dir.join("rates.csv")).unwrap().replace(
            "business,4420,United Kingdom London,,0,0.0150,",
            "business,4420,United Kingdom London,,0,0.0300,",
        ) + "tollfree-in,672,Antarctica,,0,1.0000,0,60,60,2026-01-01T00:00:00Z,\n";
        std::fs::write(dir.join("rates.csv"), rates).unwrap();
        let out = world.cli(&["tariff", "import", dir.to_str().unwrap()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("tariff version 2"));

        // Calls rated after the import use it; the quarantined call is re-queued.
        post(engine.addr, call("v-2", "+442079460000")).await;
        assert_eq!(rated_cost(&store, "v-2").await, "0.0600 v2 r1");
        assert_eq!(rated_cost(&store, "v-aq").await, "2.0000 v2 r1");
        assert_eq!(
            rated_cost(&store, "v-1").await,
            "0.0300 v1 r1",
            "stored calls keep their price"
        );

        // rerate brings the old call to the new version, once.
        let out = world.cli(&[
            "rerate",
            "--from",
            "2026-11-01T00:00:00Z",
            "--to",
            "2026-12-01T00:00:00Z",
        ]);
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("re-rated 3 call(s) with tariff version 2: 1 changed price"),
            "{text}"
        );
        assert!(text.contains("totals match the rated calls"), "{text}");
        assert_eq!(rated_cost(&store, "v-1").await, "0.0600 v2 r2");
        assert_eq!(rated_cost(&store, "v-2").await, "0.0600 v2 r2");
        assert_eq!(
            store.usage_totals().await.unwrap(),
            store.recomputed_totals().await.unwrap()
        );

        // A redelivered original (rating_version 1) cannot undo the re-rating.
        post(engine.addr, call("v-1", "+442079460000")).await;
        post(engine.addr, call("v-3", "+442079460000")).await;
        assert_eq!(rated_cost(&store, "v-3").await, "0.0600 v2 r1");
        assert_eq!(rated_cost(&store, "v-1").await, "0.0600 v2 r2");
        engine.stop();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn quarantine_retry_command_requeues() {
    let world = World::new("qretry", &crate::harness::Backend::Embedded).await;
    // No worker: records stay on the bus until a worker runs.
    let engine = world.start();
    let store = world.store().await;
    post(engine.addr, call("r-1", "not a number")).await;
    eventually("bad_number quarantined", Duration::from_secs(60), || async {
        let q = store
            .quarantine_list(Some("bad_number"), None, 10)
            .await
            .map_err(|e| e.to_string())?;
        if q.first().map(|e| e.attempts) == Some(1) {
            Ok(())
        } else {
            Err(format!("{q:?}"))
        }
    })
    .await;
    let out = world.cli(&["quarantine", "retry", "--reason", "bad_number"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("re-queued 1 record(s)"),
        "{out:?}"
    );
    // Still not a number: quarantined again, the attempt counted.
    eventually("retried", Duration::from_secs(60), || async {
        let q = store
            .quarantine_list(Some("bad_number"), None, 10)
            .await
            .map_err(|e| e.to_string())?;
        if q.first().map(|e| e.attempts) == Some(2) {
            Ok(())
        } else {
            Err(format!("{q:?}"))
        }
    })
    .await;
    engine.stop();
}
