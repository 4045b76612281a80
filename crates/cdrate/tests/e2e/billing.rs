//! Billing end to end (issue 6): posted calls → cycle close → line items →
//! WHMCS, against the WHMCS contract fake (`crates/whmcs-fake`).
//!
//! - push: every item reaches WHMCS exactly once, on both backends, also
//!   across restarts and repeated closes;
//! - an engine killed while WHMCS is answering a push, and a connection
//!   dropped after WHMCS wrote: never re-sent, reconciled by tag once the
//!   item shows up on an invoice;
//! - pull: `/v1/usage` and `/v1/usage/ack` with tokens and scopes;
//! - a call arriving after its cycle closed is billed in the next cycle as
//!   a late line, a corrected call as an adjustment line;
//! - a WHMCS client in another currency is refused, not billed;
//! - usage alerts: signed webhook, once per fraction;
//! - the accounts API and call reports.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cdrate_benches::calls::batch_json;
use cdrate_benches::http::Client;
use cdrate_store::billing::state;
use cdrate_store::{ItemFilter, LineItemRow, Store};
use rust_decimal::Decimal;
use serde_json::Value;
use whmcs_fake::state::{Client as WhmcsClient, Seed};
use whmcs_fake::{FakeConfig, FakeHandle, Fault, FaultKind};

use crate::harness::{backends, eventually, Backend, Engine, World};

const SEED: u64 = 77;
const CLIENT: u64 = 17;
/// After every cycle the generated calls (November-December 2026) fall in.
const CLOSE_ALL: &str = "2027-02-01T00:00:00Z";

pub(crate) async fn fake(currency: &str) -> FakeHandle {
    let f = whmcs_fake::start(FakeConfig::default()).await.unwrap();
    let client = |id: u64, code: &str| WhmcsClient {
        id,
        status: "Active".into(),
        currency: 1,
        currency_code: code.into(),
        credit: Decimal::ZERO,
        taxexempt: false,
        firstname: "Ada".into(),
        lastname: "Line".into(),
        companyname: String::new(),
        email: String::new(),
        customfields: vec![],
    };
    f.seed(Seed {
        clients: vec![client(CLIENT, currency)],
        ..Seed::default()
    });
    f
}

/// A world whose ten accounts bill WHMCS client 17 (service 100 + n) by
/// `mode`, with `extra` account columns, and an invoicer that runs every
/// second against `fake`.
pub(crate) async fn billing_world(name: &str, backend: &Backend, modes: &[&str], fake: &FakeHandle) -> World {
    let mut world = World::new(name, backend).await;
    let mut accounts = String::from(
        "account,plan,currency,country_code,national_prefix,international_prefix,whmcs_client_id,whmcs_service_id,cycle_day,credit_limit,billing\n",
    );
    for a in 0..10 {
        let mode = modes[a % modes.len()];
        accounts.push_str(&format!(
            "acct{a},business,USD,1,1,011,{CLIENT},{},1,,{mode}\n",
            100 + a
        ));
    }
    std::fs::write(world.dir.join("accounts.csv"), accounts).unwrap();
    for (k, v) in [
        ("CDRATE_BILLING__WHMCS__URL", fake.url()),
        ("CDRATE_BILLING__WHMCS__IDENTIFIER", "cdrate-test-identifier".into()),
        ("CDRATE_BILLING__WHMCS__SECRET", "cdrate-test-secret".into()),
        ("CDRATE_BILLING__WHMCS__TIMEOUT_SECONDS", "20".into()),
        ("CDRATE_BILLING__WHMCS__UNCERTAIN_RECHECK_SECONDS", "1".into()),
        ("CDRATE_BILLING__WHMCS__RETRY_INITIAL_SECONDS", "1".into()),
        ("CDRATE_BILLING__INTERVAL_SECONDS", "1".into()),
        ("CDRATE_BILLING__GRACE_HOURS", "0".into()),
    ] {
        world.env.push((k.into(), v));
    }
    world
}

fn post_calls(engine: &Engine, prefix: &str, range: std::ops::Range<u64>, keys: &[String]) {
    let body = batch_json(prefix, range, 1, keys, SEED);
    post_body(engine, body.as_bytes());
}

pub(crate) fn post_body(engine: &Engine, body: &[u8]) {
    let mut c = engine.client();
    for _ in 0..200 {
        match c.post_json("/ingest/calls", body) {
            Ok(r) if r.status == 202 => return,
            Ok(r) if r.status == 503 => {}
            Ok(r) => panic!("rejected: {} {}", r.status, r.text()),
            Err(_) => {}
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("never accepted");
}

pub(crate) async fn wait_rated(store: &Store, n: i64) {
    eventually("calls rated", Duration::from_secs(120), || async {
        let got = store.count_calls().await.map_err(|e| e.to_string())?;
        if got == n {
            Ok(())
        } else {
            Err(format!("{got} of {n}"))
        }
    })
    .await;
}

/// Runs `cdrate cycle close --as-of`; returns how many cycles it closed.
pub(crate) fn close_cycles(world: &World, as_of: &str) -> usize {
    let out = world.cli(&["cycle", "close", "--as-of", as_of]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    stderr
        .lines()
        .find_map(|l| {
            l.split_once(" cycle(s) closed")
                .and_then(|(n, _)| n.trim().parse().ok())
        })
        .unwrap_or_else(|| panic!("no summary in {stderr}"))
}

async fn items(store: &Store) -> Vec<LineItemRow> {
    store
        .line_items(&ItemFilter {
            limit: 100_000,
            ..Default::default()
        })
        .await
        .unwrap()
}

async fn wait_states(store: &Store, what: &str, done: impl Fn(&[LineItemRow]) -> bool) -> Vec<LineItemRow> {
    eventually(what, Duration::from_secs(60), || async {
        let all = items(store).await;
        if done(&all) {
            Ok(())
        } else {
            let mut states: BTreeMap<String, usize> = BTreeMap::new();
            for i in &all {
                *states.entry(i.state.clone()).or_default() += 1;
            }
            Err(format!("{states:?}"))
        }
    })
    .await;
    items(store).await
}

/// Every item pushed is in WHMCS exactly once, with its amount.
fn assert_once_in_whmcs(items: &[LineItemRow], fake: &FakeHandle) {
    let pushed = fake.billable_items();
    let mut by_tag: BTreeMap<String, Vec<Decimal>> = BTreeMap::new();
    for b in &pushed {
        let tag = cdrate_billing::find_tag(&b.description).expect("every description is tagged");
        by_tag.entry(tag.to_owned()).or_default().push(b.amount);
        assert_eq!(b.clientid, CLIENT);
        assert_eq!((b.unit.as_str(), b.invoiceaction.as_str()), ("quantity", "nextinvoice"));
    }
    for item in items.iter().filter(|i| i.delivery == "push") {
        assert_eq!(
            by_tag.get(&item.id).map(Vec::as_slice),
            Some(&[item.amount.round_dp(2)][..]),
            "item {} in WHMCS once with its amount",
            item.id
        );
    }
    assert_eq!(pushed.len(), items.iter().filter(|i| i.delivery == "push").count());
}

#[tokio::test(flavor = "multi_thread")]
async fn closed_cycles_reach_whmcs_once() {
    for backend in backends() {
        let fake = fake("USD").await;
        let world = billing_world("bill_push", &backend, &["push"], &fake).await;
        let engine = world.start();
        let keys = world.keys.clone();
        tokio::task::block_in_place(|| post_calls(&engine, "p-", 0..300, &keys));
        let store = world.store().await;
        wait_rated(&store, 300).await;
        assert!(close_cycles(&world, CLOSE_ALL) > 0);
        let all = wait_states(&store, "every item sent", |all| {
            !all.is_empty() && all.iter().all(|i| i.state == state::SENT)
        })
        .await;
        assert_once_in_whmcs(&all, &fake);
        // Every priced call is billed: nothing left to bill anywhere.
        assert!(store.accounts_with_unbilled_calls(i64::MAX).await.unwrap().is_empty());
        // The billed amounts are the calls' costs, rounded once per line.
        let total_cost: Decimal = store.usage_totals().await.unwrap().iter().map(|t| t.cost).sum();
        let billed: Decimal = all.iter().map(|i| i.amount).sum();
        let tolerance = Decimal::new(5, 3) * Decimal::from(all.len());
        assert!((total_cost - billed).abs() <= tolerance, "{total_cost} vs {billed}");

        // Closing again and restarting change nothing.
        assert_eq!(close_cycles(&world, CLOSE_ALL), 0);
        engine.stop();
        let engine = world.start();
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_once_in_whmcs(&items(&store).await, &fake);
        let status = world.cli(&["billing", "status"]);
        assert!(String::from_utf8_lossy(&status.stdout).contains("push\tsent\t"));
        engine.stop();
    }
}

/// GenInvoices in the fake: what WHMCS's daily cron does with billable items.
fn whmcs_cron(fake: &FakeHandle) {
    let body = format!(
        "action=GenInvoices&identifier=cdrate-test-identifier&secret=cdrate-test-secret&responsetype=json&clientid={CLIENT}"
    );
    let mut c = Client::new(fake.addr);
    let r = c
        .request(
            "POST",
            "/includes/api.php",
            Some("application/x-www-form-urlencoded"),
            body.as_bytes(),
        )
        .unwrap();
    assert!(r.text().contains("success"), "{}", r.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_push_outcomes_are_reconciled_never_resent() {
    let fake = fake("USD").await;
    let world = billing_world("bill_uncertain", &Backend::Embedded, &["push"], &fake).await;
    // WHMCS writes the first item, then takes 8 s to answer: the engine is
    // killed while it waits, with the item marked `sending`.
    fake.add_fault(Fault {
        action: "AddBillableItem".into(),
        fault: FaultKind::DelayMs,
        times: 1,
        delay_ms: 8_000,
    });
    let engine = world.start();
    let keys = world.keys.clone();
    tokio::task::block_in_place(|| post_calls(&engine, "u-", 0..100, &keys));
    let store = world.store().await;
    wait_rated(&store, 100).await;
    close_cycles(&world, CLOSE_ALL);
    eventually("the first push written", Duration::from_secs(30), || async {
        if fake.billable_items().is_empty() {
            Err("none yet".into())
        } else {
            Ok(())
        }
    })
    .await;
    engine.kill();
    let orphan = items(&store)
        .await
        .into_iter()
        .find(|i| i.state == state::SENDING)
        .expect("the killed push is left sending");

    // The next push after the restart loses its answer after WHMCS wrote.
    fake.add_fault(Fault {
        action: "AddBillableItem".into(),
        fault: FaultKind::DropAfterCommit,
        times: 1,
        delay_ms: 0,
    });
    let engine = world.start();
    let all = wait_states(&store, "all settled, two uncertain", |all| {
        all.iter().filter(|i| i.state == state::UNCERTAIN).count() == 2
            && all
                .iter()
                .all(|i| [state::SENT, state::UNCERTAIN].contains(&i.state.as_str()))
    })
    .await;
    assert!(all.iter().any(|i| i.id == orphan.id && i.state == state::UNCERTAIN));
    // Nothing was sent twice while its outcome was unknown.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_once_in_whmcs(&items(&store).await, &fake);

    // WHMCS's cron invoices the billable items; reconciliation finds both.
    tokio::task::block_in_place(|| whmcs_cron(&fake));
    let all = wait_states(&store, "uncertain items reconciled", |all| {
        all.iter().all(|i| i.state == state::SENT)
    })
    .await;
    assert!(all.iter().filter(|i| i.invoice_id.is_some()).count() >= 2);
    assert_once_in_whmcs(&all, &fake);
    let events = store.line_item_events(&orphan.id).await.unwrap();
    let mut states: Vec<&str> = events.iter().map(|e| e.1.as_str()).collect();
    // Each recheck that does not find it yet is recorded too.
    states.dedup();
    assert_eq!(states, vec!["pending", "sending", "uncertain", "sent"], "{events:?}");
    engine.stop();
}

/// Sends a request with a bearer token; `(status, json)`.
fn call(engine: &Engine, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> (u16, Value) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    let ct = body.map(|_| "application/json");
    // Without a token of its own, the request goes out with none at all.
    let mut client = if token.is_some() {
        engine.client()
    } else {
        Client::bare(engine.addr)
    };
    let r = client.request_with(method, path, ct, &headers, &bytes).unwrap();
    (
        r.status,
        serde_json::from_str(&r.text()).unwrap_or(Value::String(r.text())),
    )
}

pub(crate) fn token(world: &World, scopes: &[&str], name: &str) -> String {
    let mut args = vec!["token", "create", "--name", name];
    for s in scopes {
        args.extend(["--scope", s]);
    }
    let out = world.cli(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn pulled_usage_is_acknowledged_once() {
    let fake = fake("USD").await;
    // acct0 (service 100) is pulled, acct1 (service 101) pushed.
    let world = billing_world("bill_pull", &Backend::Embedded, &["pull", "push"], &fake).await;
    let engine = world.start();
    let keys = world.keys.clone();
    tokio::task::block_in_place(|| post_calls(&engine, "l-", 0..100, &keys));
    let store = world.store().await;
    wait_rated(&store, 100).await;
    close_cycles(&world, CLOSE_ALL);
    let billing = token(&world, &["billing"], "whmcs-hook");
    let reader = token(&world, &["read"], "reports");
    // The generated calls fall in cycles ending after today.
    let usage = "/v1/usage?whmcs_service_id=100&to=2027-03-01T00:00:00Z";

    tokio::task::block_in_place(|| {
        assert_eq!(call(&engine, "GET", usage, None, None).1["code"], "missing_token");
        assert_eq!(
            call(&engine, "GET", usage, Some("cdr_nope"), None).1["code"],
            "bad_token"
        );
        let (s, v) = call(&engine, "GET", usage, Some(&reader), None);
        assert_eq!((s, v["code"].as_str()), (403, Some("insufficient_scope")));
        let (s, v) = call(&engine, "GET", "/v1/usage?whmcs_service_id=101", Some(&billing), None);
        assert_eq!(
            (s, v["code"].as_str()),
            (409, Some("wrong_billing_mode")),
            "push accounts are never pulled"
        );

        let (s, v) = call(&engine, "GET", usage, Some(&billing), None);
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["account"], "acct0");
        let listed: Vec<String> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect();
        assert!(!listed.is_empty());
        for i in v["items"].as_array().unwrap() {
            let d = i["description"].as_str().unwrap();
            assert_eq!(cdrate_billing::find_tag(d), i["id"].as_str());
        }
        let total: Decimal = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| Decimal::from_str(i["amount"].as_str().unwrap()).unwrap())
            .sum();
        assert_eq!(Decimal::from_str(v["total"].as_str().unwrap()).unwrap(), total);

        let ack = serde_json::json!({"invoice_id": 1042, "items": listed});
        let (s, v) = call(&engine, "POST", "/v1/usage/ack", Some(&billing), Some(&ack));
        assert_eq!((s, v["acked"].as_array().unwrap().len()), (200, listed.len()));
        // A second pull, for another invoice, returns nothing already billed.
        let (_, v) = call(&engine, "GET", usage, Some(&billing), None);
        assert_eq!(v["items"], serde_json::json!([]));
        let (s, v) = call(&engine, "POST", "/v1/usage/ack", Some(&billing), Some(&ack));
        assert_eq!(
            (s, v["already"].as_array().unwrap().len()),
            (200, listed.len()),
            "acks are idempotent"
        );
        let other = serde_json::json!({"invoice_id": 1043, "items": listed});
        let (s, v) = call(&engine, "POST", "/v1/usage/ack", Some(&billing), Some(&other));
        assert_eq!((s, v["code"].as_str()), (409, Some("ack_conflict")));
    });
    // Pull items never went to WHMCS by push.
    let pushed_tags: Vec<String> = fake
        .billable_items()
        .iter()
        .filter_map(|b| cdrate_billing::find_tag(&b.description).map(str::to_owned))
        .collect();
    let pulled: Vec<LineItemRow> = items(&store)
        .await
        .into_iter()
        .filter(|i| i.delivery == "pull")
        .collect();
    assert!(pulled
        .iter()
        .filter(|i| i.account_id == "acct0")
        .all(|i| i.state == state::ACKED && i.invoice_id == Some(1042)));
    assert!(pulled
        .iter()
        .filter(|i| i.account_id != "acct0")
        .all(|i| i.state == state::PENDING));
    assert!(pulled.iter().all(|i| !pushed_tags.contains(&i.id)));
    assert!(world.cli(&["token", "revoke", "whmcs-hook"]).status.success());
    tokio::task::block_in_place(|| {
        assert_eq!(
            call(&engine, "GET", usage, Some(&billing), None).1["code"],
            "revoked_token"
        );
    });
    engine.stop();
}

/// One generic call of account key `k0` (acct0) to a UK mobile, answered at `answer`.
pub(crate) fn one_call(id: &str, version: u32, answer: &str, talk_s: i64) -> String {
    call_to(id, version, answer, talk_s, "011447700900123")
}

/// [`one_call`] to `callee` (as dialled from a NANP account).
pub(crate) fn call_to(id: &str, version: u32, answer: &str, talk_s: i64, callee: &str) -> String {
    let start: chrono::DateTime<chrono::Utc> = answer.parse().unwrap();
    let end = start + chrono::Duration::seconds(talk_s);
    format!(
        r#"{{"id":"{id}","version":{version},"source":"generic","account_key":"k0","direction":"outbound","caller":"1001","callee":"{callee}","start_at":"{}","answer_at":"{}","end_at":"{}","duration_ms":{},"billable_ms":{},"disposition":"answered"}}"#,
        start.to_rfc3339(),
        start.to_rfc3339(),
        end.to_rfc3339(),
        talk_s * 1000,
        talk_s * 1000
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn late_calls_and_corrections_land_in_the_next_cycle() {
    let fake = fake("USD").await;
    let world = billing_world("bill_late", &Backend::Embedded, &["none"], &fake).await;
    let engine = world.start();
    let store = world.store().await;
    tokio::task::block_in_place(|| post_body(&engine, one_call("late-a", 1, "2026-11-10T15:00:00Z", 60).as_bytes()));
    wait_rated(&store, 1).await;
    // November (America/Chicago) ends 2026-12-01T06:00Z.
    close_cycles(&world, "2026-12-01T06:00:00Z");
    let first = items(&store).await;
    assert_eq!(first.len(), 1);
    assert_eq!(
        (first[0].kind.as_str(), first[0].state.as_str()),
        ("usage", state::HELD)
    );
    assert!(
        first[0]
            .description
            .starts_with("Calls to United Kingdom Mobile — 1 call, 1:00 min"),
        "{}",
        first[0].description
    );

    // A call of November arrives after November closed, and the first call
    // is corrected (longer).
    tokio::task::block_in_place(|| {
        post_body(&engine, one_call("late-b", 1, "2026-11-20T15:00:00Z", 120).as_bytes());
        post_body(&engine, one_call("late-a", 2, "2026-11-10T15:00:00Z", 90).as_bytes());
    });
    wait_rated(&store, 2).await;
    eventually("the correction rated", Duration::from_secs(30), || async {
        match store.find_call("late-a").await.map_err(|e| e.to_string())? {
            Some(c) if c.call.version == 2 => Ok(()),
            _ => Err("version 1".into()),
        }
    })
    .await;
    close_cycles(&world, "2027-01-01T06:00:00Z");
    let all = items(&store).await;
    let december: Vec<&LineItemRow> = all
        .iter()
        .filter(|i| i.cycle_start_ms != first[0].cycle_start_ms)
        .collect();
    let kinds: Vec<&str> = december.iter().map(|i| i.kind.as_str()).collect();
    assert_eq!(kinds, vec!["late", "adjustment"], "{december:?}");
    let late_b = store.find_call("late-b").await.unwrap().unwrap();
    assert_eq!(december[0].amount, late_b.cost.round_dp(2));
    assert!(december[0]
        .description
        .starts_with("Late calls to United Kingdom Mobile (before 2026-12-01)"));
    assert!(december[1].amount > Decimal::ZERO);
    // Billed once in total: every call's cost is accounted for.
    assert!(store.accounts_with_unbilled_calls(i64::MAX).await.unwrap().is_empty());
    engine.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_in_another_currency_is_refused() {
    let fake = fake("EUR").await;
    let world = billing_world("bill_currency", &Backend::Embedded, &["push"], &fake).await;
    let engine = world.start();
    let keys = world.keys.clone();
    tokio::task::block_in_place(|| post_calls(&engine, "c-", 0..20, &keys));
    let store = world.store().await;
    wait_rated(&store, 20).await;
    close_cycles(&world, CLOSE_ALL);
    let all = wait_states(&store, "items refused", |all| {
        !all.is_empty() && all.iter().all(|i| i.state == state::REFUSED)
    })
    .await;
    assert!(all[0]
        .last_error
        .as_deref()
        .unwrap_or("")
        .starts_with("currency_mismatch"));
    assert!(fake.billable_items().is_empty());
    let status = world.cli(&["billing", "status"]);
    assert!(String::from_utf8_lossy(&status.stdout).contains("currency_mismatch"));
    // The operator fixes the client's currency and pushes the items again.
    let mut fixed = whmcs_fake::state::Seed::default();
    let mut client = fake.clients().into_iter().find(|c| c.id == CLIENT).unwrap();
    client.currency_code = "USD".into();
    fixed.clients.push(client);
    fake.seed(fixed);
    for item in &all {
        let out = world.cli(&["billing", "resolve", &item.id, "--not-sent"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let all = wait_states(&store, "items sent after the fix", |all| {
        all.iter().all(|i| i.state == state::SENT)
    })
    .await;
    assert_once_in_whmcs(&all, &fake);
    engine.stop();
}

/// A tiny HTTP server that keeps every request body and headers.
async fn webhook_sink() -> (std::net::SocketAddr, Arc<Mutex<Vec<(String, Vec<u8>)>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let sink = sink.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = s.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        sink.lock().unwrap().push((head, buf[end + 4..end + 4 + len].to_vec()));
                        let _ = s
                            .write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                            .await;
                        return;
                    }
                }
            });
        }
    });
    (addr, got)
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_alerts_fire_once_per_fraction_signed() {
    let fake = fake("USD").await;
    let mut world = billing_world("bill_alerts", &Backend::Embedded, &["none"], &fake).await;
    let accounts = std::fs::read_to_string(world.dir.join("accounts.csv"))
        .unwrap()
        .replace(
            "acct0,business,USD,1,1,011,17,100,1,,none",
            "acct0,business,USD,1,1,011,17,100,1,0.05,none",
        );
    std::fs::write(world.dir.join("accounts.csv"), accounts).unwrap();
    let (addr, got) = webhook_sink().await;
    world.env.push((
        "CDRATE_BILLING__ALERTS__WEBHOOK_URL".into(),
        format!("http://{addr}/alerts"),
    ));
    world
        .env
        .push(("CDRATE_BILLING__ALERTS__WEBHOOK_SECRET".into(), "hook-secret".into()));
    let engine = world.start();
    // Calls answered now: the current cycle.
    let now = chrono::Utc::now() - chrono::Duration::minutes(10);
    tokio::task::block_in_place(|| {
        for i in 0..5 {
            let at = (now + chrono::Duration::seconds(i)).to_rfc3339();
            post_body(&engine, one_call(&format!("al-{i}"), 1, &at, 600).as_bytes());
        }
    });
    eventually("two alerts", Duration::from_secs(60), || async {
        let n = got.lock().unwrap().len();
        if n >= 2 {
            Ok(())
        } else {
            Err(format!("{n} alerts"))
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let alerts = got.lock().unwrap().clone();
    assert_eq!(alerts.len(), 2, "0.8 and 1.0, once each");
    let mut fractions = Vec::new();
    for (head, body) in &alerts {
        let header = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}:")).map(|v| v.trim().to_owned()))
                .unwrap()
        };
        let ts: i64 = header("x-cdrate-timestamp").parse().unwrap();
        let want = cdrate_billing::alerts::alert_signature(b"hook-secret", ts, body);
        assert_eq!(header("x-cdrate-signature"), format!("sha256={want}"));
        let v: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(
            (v["schema"].as_str(), v["account"].as_str()),
            (Some("alert.v1"), Some("acct0"))
        );
        fractions.push(v["fraction"].as_str().unwrap().to_owned());
    }
    fractions.sort();
    assert_eq!(fractions, vec!["0.8", "1"]);
    assert_eq!(engine.metric("cdrate_usage_alerts_total", ""), 2.0);
    engine.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn accounts_api_provisions_and_reports() {
    let fake = fake("USD").await;
    let world = billing_world("bill_accounts", &Backend::Embedded, &["pull"], &fake).await;
    let engine = world.start();
    let admin = token(&world, &["admin"], "whmcs-module");
    let store = world.store().await;
    tokio::task::block_in_place(|| {
        let body = serde_json::json!({
            "plan": "home", "currency": "USD", "country_code": "1", "national_prefix": "1",
            "international_prefix": "011", "whmcs_client_id": 17, "whmcs_service_id": 500,
            "billing": "pull", "identities": [{"source": "generic", "account_key": "whmcs-500-key"}],
        });
        let (s, v) = call(&engine, "PUT", "/v1/accounts/whmcs-500", Some(&admin), Some(&body));
        assert_eq!(s, 201, "{v}");
        let (s, _) = call(&engine, "PUT", "/v1/accounts/whmcs-500", Some(&admin), Some(&body));
        assert_eq!(s, 200, "the same again changes nothing");
        let bad = serde_json::json!({"plan": "nosuchplan"});
        assert_eq!(
            call(&engine, "PUT", "/v1/accounts/whmcs-500", Some(&admin), Some(&bad)).1["code"],
            "unknown_plan"
        );
        let (s, v) = call(
            &engine,
            "POST",
            "/v1/accounts/whmcs-500/suspend",
            Some(&admin),
            Some(&serde_json::json!({"reason": "overdue"})),
        );
        assert_eq!(s, 200, "{v}");
        let (_, v) = call(&engine, "GET", "/v1/accounts/whmcs-500", Some(&admin), None);
        assert_eq!(
            (v["status"].as_str(), v["plan"].as_str()),
            (Some("suspended"), Some("home"))
        );
        assert_eq!(v["identities"][0]["account_key"], "whmcs-500-key");
        assert_eq!(
            call(&engine, "GET", "/v1/accounts/nobody", Some(&admin), None).1["code"],
            "unknown_account"
        );
    });
    // A suspended account's call is rated all the same, and flagged.
    let at = (chrono::Utc::now() - chrono::Duration::minutes(5)).to_rfc3339();
    let body = one_call("acc-1", 1, &at, 60).replace("\"k0\"", "\"whmcs-500-key\"");
    tokio::task::block_in_place(|| post_body(&engine, body.as_bytes()));
    wait_rated(&store, 1).await;
    let rated = store.find_call("acc-1").await.unwrap().unwrap();
    assert_eq!(
        (rated.account_id.as_str(), rated.account_status.as_deref()),
        ("whmcs-500", Some("suspended"))
    );
    tokio::task::block_in_place(|| {
        // A plan change applies to calls answered after it.
        let change = serde_json::json!({"plan": "business"});
        assert_eq!(
            call(&engine, "PUT", "/v1/accounts/whmcs-500", Some(&admin), Some(&change)).0,
            200
        );
        let (_, v) = call(&engine, "GET", "/v1/accounts/whmcs-500", Some(&admin), None);
        assert_eq!(v["plan"], "business");
        assert_eq!(v["usage"]["calls"], 1);
        let r = engine
            .client()
            .get("/v1/calls?account=whmcs-500&cycle=current&format=csv")
            .unwrap();
        let csv = r.text();
        assert!(csv.starts_with("call_id,account,start_local"), "{csv}");
        assert!(
            csv.contains("acc-1,whmcs-500,") && csv.contains("America/Chicago"),
            "{csv}"
        );
    });
    let out = world.cli(&["export", "calls", "--account", "whmcs-500", "--cycle", "current"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).lines().count() == 2);
    engine.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_invoicer_closes_ended_cycles_and_retries_refused_pushes() {
    let fake = fake("USD").await;
    let world = billing_world("bill_auto", &Backend::Embedded, &["push"], &fake).await;
    // WHMCS refuses the first push outright (nothing written): retried.
    fake.add_fault(Fault {
        action: "AddBillableItem".into(),
        fault: FaultKind::ForbiddenJson,
        times: 1,
        delay_ms: 0,
    });
    let engine = world.start();
    let store = world.store().await;
    // A call of October 2026: its cycle has ended, grace is 0, so the
    // invoicer closes it by itself.
    tokio::task::block_in_place(|| post_body(&engine, one_call("auto-1", 1, "2026-10-07T12:00:00Z", 60).as_bytes()));
    wait_rated(&store, 1).await;
    let all = wait_states(&store, "closed and sent by the invoicer", |all| {
        all.len() == 1 && all[0].state == state::SENT
    })
    .await;
    let mut states: Vec<String> = store
        .line_item_events(&all[0].id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.1)
        .collect();
    states.dedup();
    assert_eq!(states, vec!["pending", "sending", "failed", "sending", "sent"]);
    assert_eq!(all[0].attempts, 2);
    assert_once_in_whmcs(&all, &fake);
    assert!(engine.metric("cdrate_whmcs_requests_total", "outcome=\"failed\"") >= 1.0);
    assert!(engine.metric("cdrate_billing_cycles_closed_total", "USD") >= 1.0);
    engine.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn invoice_mode_reconciles_lost_answers_by_tag() {
    let fake = fake("USD").await;
    let mut world = billing_world("bill_invoice", &Backend::Embedded, &["push"], &fake).await;
    world
        .env
        .push(("CDRATE_BILLING__WHMCS__PUSH_AS".into(), "invoice".into()));
    // First CreateInvoice: WHMCS writes it, the answer is lost (found by tag,
    // not re-sent). Second: a 500 before writing (not found, so sent again).
    fake.add_fault(Fault {
        action: "CreateInvoice".into(),
        fault: FaultKind::DropAfterCommit,
        times: 1,
        delay_ms: 0,
    });
    fake.add_fault(Fault {
        action: "CreateInvoice".into(),
        fault: FaultKind::Http500,
        times: 1,
        delay_ms: 0,
    });
    let engine = world.start();
    let store = world.store().await;
    tokio::task::block_in_place(|| {
        post_body(&engine, one_call("inv-1", 1, "2026-10-07T12:00:00Z", 60).as_bytes());
        post_body(&engine, one_call("inv-2", 1, "2026-09-07T12:00:00Z", 60).as_bytes());
    });
    wait_rated(&store, 2).await;
    let all = wait_states(&store, "both cycles invoiced", |all| {
        all.len() == 2 && all.iter().all(|i| i.state == state::SENT)
    })
    .await;
    // Exactly one invoice line per item, on invoices of client 17.
    let invoices = fake.invoices();
    let mut tags: Vec<String> = invoices
        .iter()
        .flat_map(|inv| inv.lines.iter())
        .filter_map(|l| cdrate_billing::find_tag(&l.description).map(str::to_owned))
        .collect();
    tags.sort();
    let mut ids: Vec<String> = all.iter().map(|i| i.id.clone()).collect();
    ids.sort();
    assert_eq!(tags, ids, "{invoices:?}");
    assert!(invoices
        .iter()
        .all(|i| i.userid == CLIENT && i.notes.contains("[cdrate:")));
    assert!(all.iter().all(|i| i.invoice_id.is_some()));
    engine.stop();
}
