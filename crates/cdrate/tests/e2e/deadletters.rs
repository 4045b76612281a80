//! `cdrate deadletter retry` after the operator fixes the configuration.
//!
//! Retry maps a kept payload again with the source's adapter and the
//! settings in force *now*, then appends the record. For Zadarma those
//! settings are the PBX id and time zone (`[ingest.zadarma]`): an incoming
//! call no extension took has no account key but the PBX id, so without one
//! it is rejected (`missing_field`) and kept. Configuring `pbx_id` and
//! retrying rates it exactly once; retrying again only re-delivers a
//! duplicate; a payload that is still bad stays a dead letter.

use std::path::PathBuf;
use std::time::Duration;

use cdrate_benches::http::Client;
use cdrate_store::Store;

use crate::harness::{eventually, Backend, World};

fn zadarma_fixture(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/ingest/zadarma")
        .join(file)
}

/// The `Signature` the fixtures give as valid for `body_file`.
fn valid_signature(body_file: &str) -> String {
    let cases = std::fs::read_to_string(zadarma_fixture("signatures.jsonl")).unwrap();
    cases
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|c| c["body_file"] == body_file && c["valid"] == true)
        .and_then(|c| c["headers"]["Signature"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("no valid signature for {body_file}"))
}

/// The fixtures' Zadarma account, before the operator set the PBX id.
const CONFIG_WITHOUT_PBX_ID: &str = r#"
[ingest.zadarma]
secret = "0740b2afced14c9ffd48"
timezone = "Europe/Madrid"
"#;

const PBX_ID: &str = "318722";

/// Posts a signed notification; returns (status, code).
fn post_notification(client: &mut Client, body: &[u8], signature: &str) -> (u16, String) {
    let r = client
        .request_with(
            "POST",
            "/ingest/zadarma",
            Some("application/x-www-form-urlencoded"),
            &[("signature", signature)],
            body,
        )
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
    (r.status, v["code"].as_str().unwrap_or_default().to_owned())
}

async fn dead_letters(store: &Store) -> Vec<cdrate_store::DeadLetter> {
    store.list_dead_letters(None, None, None, 1000).await.unwrap()
}

/// Runs `cdrate deadletter retry ARGS…`; returns its stdout.
fn retry(world: &World, args: &[&str]) -> String {
    let mut all = vec!["deadletter", "retry"];
    all.extend_from_slice(args);
    let out = world.cli(&all);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{all:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_after_configuring_the_pbx_id_rates_once() {
    let world = World::new("dl_retry", &Backend::Embedded).await;
    world.add_identities(&[&format!("zadarma,{PBX_ID},acct3")]);
    world.write_config(CONFIG_WITHOUT_PBX_ID);
    let engine = world.start();
    let store = world.store().await;
    let mut client = engine.client();

    // An incoming call the IVR answered and no extension took: the answered
    // fixture without `internal`. The field is not signed, so Zadarma's
    // signature still verifies; without a PBX id there is no account key.
    let answered = std::fs::read_to_string(zadarma_fixture("notify-end-answered.form")).unwrap();
    let no_extension = answered.replace("&internal=101", "");
    assert_ne!(no_extension, answered);
    let (status, code) = post_notification(
        &mut client,
        no_extension.as_bytes(),
        &valid_signature("notify-end-answered.form"),
    );
    assert_eq!((status, code.as_str()), (400, "missing_field"));
    // A correctly signed notification whose duration is not a number: no
    // setting fixes it.
    let bad_duration = std::fs::read(zadarma_fixture("notify-out-end-bad-duration.form")).unwrap();
    let (status, code) = post_notification(
        &mut client,
        &bad_duration,
        &valid_signature("notify-out-end-bad-duration.form"),
    );
    assert_eq!((status, code.as_str()), (400, "malformed_payload"));
    let kept = dead_letters(&store).await;
    assert_eq!(kept.len(), 2);
    let (bad_id, fixable_id) = (kept[0].id, kept[1].id);
    assert_eq!(kept[1].body, no_extension.as_bytes());

    // Retried before the fix, it is rejected again for the same reason.
    let text = retry(&world, &[&fixable_id.to_string()]);
    assert!(text.contains(&format!("{fixable_id} rejected missing_field")), "{text}");
    assert!(text.contains("0 of 1 appended"), "{text}");

    // The operator sets the PBX id (and restarts serve, so new webhooks get
    // it too); retry reads the same file.
    engine.stop();
    world.write_config(&format!("{CONFIG_WITHOUT_PBX_ID}pbx_id = \"{PBX_ID}\"\n"));
    let engine = world.start();
    let id = "zadarma:in_b1511899c0c6f97dd6af373bd7bc359bd956e56b";
    let text = retry(&world, &["--source", "zadarma"]);
    assert!(text.contains(&format!("{fixable_id} accepted {id}")), "{text}");
    assert!(text.contains(&format!("{bad_id} rejected malformed_payload")), "{text}");
    assert!(text.contains("1 of 2 appended"), "{text}");
    eventually("the retried call rated", Duration::from_secs(60), || async {
        match store.find_call(id).await.map_err(|e| e.to_string())? {
            Some(_) => Ok(()),
            None => Err("not rated yet".into()),
        }
    })
    .await;
    let call = store.find_call(id).await.unwrap().unwrap();
    assert_eq!(
        (call.account_id.as_str(), call.call.account_key.as_str()),
        ("acct3", PBX_ID)
    );
    // 15:04:05 in Madrid: the configured time zone applied on retry too.
    assert_eq!(call.call.start_at.to_rfc3339(), "2026-11-18T14:04:05+00:00");
    assert_eq!(call.call.billable_ms, 187_000);
    assert_eq!(call.rating_version, 1);
    assert_eq!(store.count_calls().await.unwrap(), 1);
    let totals = store.usage_totals().await.unwrap();
    assert_eq!(
        totals
            .iter()
            .map(|t| (t.account_id.as_str(), t.calls))
            .collect::<Vec<_>>(),
        [("acct3", 1)]
    );
    assert_eq!(engine.metric("cdrate_rating_calls_total", "outcome=\"rated\""), 1.0);

    // Retrying again re-delivers the same record (id, version): the worker
    // sees a duplicate and nothing changes.
    let text = retry(&world, &["--source", "zadarma"]);
    assert!(text.contains(&format!("{fixable_id} accepted {id}")), "{text}");
    eventually(
        "the second delivery seen as a duplicate",
        Duration::from_secs(60),
        || async {
            let n = engine.metric("cdrate_rating_calls_total", "outcome=\"duplicate\"");
            if n >= 1.0 {
                Ok(())
            } else {
                Err(format!("{n} duplicates"))
            }
        },
    )
    .await;
    assert_eq!(store.count_calls().await.unwrap(), 1);
    assert_eq!(store.usage_totals().await.unwrap(), totals);
    assert_eq!(store.find_call(id).await.unwrap().unwrap(), call);
    assert_eq!(engine.metric("cdrate_rating_calls_total", "outcome=\"rated\""), 1.0);
    assert_eq!(
        engine.metric("cdrate_rating_calls_total", "outcome=\"quarantined\""),
        0.0
    );

    // Both stay dead letters with their original reason and bytes; the
    // retry outcome says which one now maps.
    let kept = dead_letters(&store).await;
    assert_eq!(kept.len(), 2);
    let bad = kept.iter().find(|d| d.id == bad_id).unwrap();
    assert_eq!(
        (bad.reason.as_str(), bad.retry_outcome.as_deref(), bad.body.as_slice()),
        (
            "malformed_payload",
            Some("rejected malformed_payload"),
            bad_duration.as_slice()
        )
    );
    let fixed = kept.iter().find(|d| d.id == fixable_id).unwrap();
    assert_eq!(fixed.reason, "missing_field");
    assert_eq!(fixed.retry_outcome.as_deref(), Some(format!("accepted {id}").as_str()));
    engine.stop();
}
