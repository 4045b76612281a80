//! The PHP we ship for WHMCS — the pull hook and the server module — run
//! under Debian's php-cli by `tests/php/run`, against this real cdrate and
//! the WHMCS contract fake: account lifecycle through the module, usage
//! pulled onto a cron invoice once and acknowledged.

use std::process::Command;
use std::time::Duration;

use cdrate_store::CallFilter;
use rust_decimal::Decimal;

use crate::billing::{billing_world, call_to, close_cycles, fake, post_body, token, wait_rated};
use crate::harness::{Backend, World};

const CALLS: u64 = 40;

fn php_available() -> bool {
    Command::new("php").arg("-v").output().is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread")]
async fn whmcs_hook_and_module_run_against_cdrate() {
    if !php_available() {
        let required = std::env::var("CDRATE_TEST_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "php-cli is required (CDRATE_TEST_REQUIRE_SERVICES=1) but not installed"
        );
        println!("skipped: php-cli not installed");
        return;
    }
    let fake = fake("USD").await;
    // acct0 (WHMCS client 17, service 100) is billed by pull.
    let world: World = billing_world("bill_php", &Backend::Embedded, &["pull"], &fake).await;
    let engine = world.start();
    let store = world.store().await;
    // Calls of October 2026 (a cycle that has ended, so the hook may bill
    // it) to seven destinations, with durations that leave sub-cent costs.
    const CALLEES: [&str; 7] = [
        "011447700900123", // United Kingdom Mobile
        "011442071234567", // United Kingdom London
        "2125550123",      // USA/Canada
        "01149301234567",  // Germany
        "011491701234567", // Germany Mobile
        "01133612345678",  // France Mobile
        "01191981234567",  // India
    ];
    tokio::task::block_in_place(|| {
        let mut body = String::from("[");
        for i in 0..CALLS {
            let at = format!("2026-10-{:02}T{:02}:{:02}:07Z", 2 + i % 27, 8 + i % 11, (i * 7) % 60);
            let callee = CALLEES[(i % 7) as usize];
            if i > 0 {
                body.push(',');
            }
            body.push_str(&call_to(&format!("php-{i}"), 1, &at, 7 + (i as i64 * 37) % 611, callee));
        }
        body.push(']');
        post_body(&engine, body.as_bytes());
    });
    wait_rated(&store, CALLS as i64).await;
    assert!(close_cycles(&world, &chrono::Utc::now().to_rfc3339()) >= 1);
    let admin = token(&world, &["admin"], "php-tests");
    let repo = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut cmd = Command::new(repo.join("tests/php/run"));
    cmd.env("CDRATE_URL", format!("http://{}", engine.addr))
        .env("CDRATE_TOKEN", &admin)
        .env("WHMCS_FAKE_URL", fake.url())
        .env("WHMCS_FAKE_IDENTIFIER", "cdrate-test-identifier")
        .env("WHMCS_FAKE_SECRET", "cdrate-test-secret")
        .env("CDRATE_PULL_SERVICE_ID", "100")
        .env("CDRATE_PULL_CLIENT_ID", "17");
    // The fake serves on this runtime, so the script runs on a blocking thread.
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::task::spawn_blocking(move || cmd.output()),
    )
    .await
    .expect("the PHP tests finish")
    .unwrap()
    .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{report}");
    assert!(out.status.success(), "PHP tests failed:\n{report}");
    assert!(!report.contains("skipped"), "{report}");

    // The invoice the hook built matches the sum of the rated calls to the cent.
    let rated = store
        .list_calls(&CallFilter {
            account: Some("acct0".into()),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rated.len(), CALLS as usize);
    let exact: Decimal = rated.iter().map(|c| c.cost).sum();
    let invoice = fake
        .invoices()
        .into_iter()
        .find(|i| i.id == 7001)
        .expect("the hook's invoice");
    let usage: Vec<_> = invoice
        .lines
        .iter()
        .filter(|l| l.description.contains("[cdrate:"))
        .collect();
    assert!(usage.len() >= 7, "a line per destination: {usage:?}");
    let billed: Decimal = usage.iter().map(|l| l.amount).sum();
    assert_eq!(
        billed,
        exact.round_dp(2),
        "invoice usage {billed} vs rated calls {exact}"
    );
    engine.stop();
}
