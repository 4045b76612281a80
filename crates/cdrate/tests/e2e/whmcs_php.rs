//! The PHP we ship for WHMCS — the pull hook and the server module — run
//! under Debian's php-cli by `tests/php/run`, against this real cdrate and
//! the WHMCS contract fake: account lifecycle through the module, usage
//! pulled onto a cron invoice once and acknowledged.

use std::process::Command;
use std::time::Duration;

use crate::billing::{billing_world, close_cycles, fake, one_call, post_body, token, wait_rated};
use crate::harness::{Backend, World};

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
    // Calls of October 2026: a cycle that has ended, so the hook may bill it.
    tokio::task::block_in_place(|| {
        for (i, at) in ["2026-10-05T15:00:00Z", "2026-10-12T09:30:00Z", "2026-10-20T18:45:00Z"]
            .iter()
            .enumerate()
        {
            post_body(
                &engine,
                one_call(&format!("php-{i}"), 1, at, 60 + 30 * i as i64).as_bytes(),
            );
        }
    });
    wait_rated(&store, 3).await;
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
    engine.stop();
}
