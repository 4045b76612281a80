//! The Fritz!Box CallMonitor client against the fixtures' `replay.py`, which
//! plays transcripts the way a box does and drops the connection where told
//! (and resends lines after reconnecting, which a box never does): every
//! call is recorded once, across drops, resets and a `kill -9` restart.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cdrate_store::Store;

use crate::harness::{eventually, free_port, Backend, World};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/ingest/fritzbox")
}

/// Starts replay.py serving `transcript` (a fixture name or a path) on
/// `port` with extra flags.
fn replay(port: u16, transcript: impl AsRef<std::path::Path>, flags: &[&str]) -> Child {
    Command::new("python3")
        .arg(fixtures().join("replay.py"))
        .arg(port.to_string())
        .arg(fixtures().join(transcript))
        .args(["--delay", "0.02", "--timeout", "60"])
        .args(flags)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 runs replay.py")
}

/// Waits (bounded) for replay.py to have sent its whole transcript.
async fn finished(mut child: Child) {
    eventually("replay.py finished", Duration::from_secs(90), || {
        let done = child.try_wait().unwrap();
        async move {
            match done {
                Some(status) if status.success() => Ok(()),
                Some(status) => panic!("replay.py failed: {status}"),
                None => Err("still sending".into()),
            }
        }
    })
    .await;
}

async fn calls_rated(store: &Store, n: i64) {
    eventually(&format!("{n} calls rated"), Duration::from_secs(60), || async {
        let got = store.count_calls().await.map_err(|e| e.to_string())?;
        if got == n {
            Ok(())
        } else {
            Err(format!("{got} rated"))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn callmonitor_records_each_call_once_across_drops_and_restarts() {
    let world = World::new("fritz", &Backend::Embedded).await;
    let port = free_port();
    world.write_config(&format!(
        "[[fritzbox]]\nbox = \"office\"\nhost = \"127.0.0.1\"\nport = {port}\ntimezone = \"Europe/Berlin\"\n"
    ));
    world.add_identities(&[
        "fritzbox,office:SIP0,acct0",
        "fritzbox,office:SIP1,acct1",
        "fritzbox,office:SIP2,acct2",
    ]);
    let store = world.store().await;

    // The transcripts are played in the order of their dates (16, 17, 20
    // November), as one box's clock would run.
    // A call open when cdrate is killed: the restarted engine resumes it from
    // the saved state and records it when the DISCONNECT comes. The box
    // sends the start, cdrate dies, then the box sends the end.
    let lines: Vec<String> = std::fs::read_to_string(fixtures().join("answered-inbound.log"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    std::fs::write(world.dir.join("start.log"), format!("{}\n{}\n", lines[0], lines[1])).unwrap();
    std::fs::write(world.dir.join("end.log"), format!("{}\n", lines[2])).unwrap();
    let start = replay(port, world.dir.join("start.log"), &[]);
    let engine = world.start();
    finished(start).await;
    eventually("the call is open and answered", Duration::from_secs(60), || async {
        let state = store
            .fritzbox_state("office")
            .await
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&state).map_err(|e| e.to_string())?;
        let open = v["open_calls"].as_array().cloned().unwrap_or_default();
        if open
            .iter()
            .any(|c| c["connection_id"] == 0 && !c["answer_at"].is_null())
        {
            Ok(())
        } else {
            Err(state)
        }
    })
    .await;
    engine.kill();
    let end = replay(port, world.dir.join("end.log"), &[]);
    let engine = world.start();
    finished(end).await;
    calls_rated(&store, 1).await;

    // Connection ids reused; dropped twice, two lines resent after each reconnect.
    let first = replay(
        port,
        "connection-id-reuse.log",
        &["--drop-after", "2", "--drop-after", "5", "--repeat", "2"],
    );
    finished(first).await;
    calls_rated(&store, 4).await;

    // Overlapping calls; reset (RST) mid-call, three lines resent.
    let second = replay(
        port,
        "overlapping-calls.log",
        &["--drop-after", "3", "--reset", "--repeat", "3"],
    );
    finished(second).await;
    calls_rated(&store, 6).await;

    let totals = store.usage_totals().await.unwrap();
    assert_eq!(totals, store.recomputed_totals().await.unwrap());
    assert_eq!(totals.iter().map(|t| t.calls).sum::<i64>(), 6, "each call once");
    for id in ["fritz:office:1:1795167810", "fritz:office:0:1795167665"] {
        assert!(store.find_call(id).await.unwrap().is_some(), "{id} recorded");
    }
    engine.stop();
}
