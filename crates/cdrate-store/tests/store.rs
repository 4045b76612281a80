//! The store's repositories against SQLite always, and against PostgreSQL
//! when `CDRATE_TEST_POSTGRES_URL` is set (each test gets a fresh database).

use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};

use cdrate_core::{CallRecord, Direction, Disposition, RatedCall, Source};
use cdrate_store::{BusLog, CallFilter, QuarantineEntry, Store, StoreSettings, TariffTexts};
use rust_decimal::Decimal;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Fresh stores to run a test against: SQLite, plus PostgreSQL if configured.
async fn stores(name: &str) -> Vec<Store> {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("cdrate-store-test-{}-{name}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut out = vec![
        Store::open(&StoreSettings::new(format!("sqlite://{}/cdrate.db", dir.display())))
            .await
            .unwrap(),
    ];
    match std::env::var("CDRATE_TEST_POSTGRES_URL") {
        Ok(url) => out.push(fresh_postgres(&url, &format!("cdrate_t{}_{n}", std::process::id())).await),
        Err(_) if std::env::var("CDRATE_TEST_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("CDRATE_TEST_REQUIRE_SERVICES=1 but CDRATE_TEST_POSTGRES_URL is not set")
        }
        Err(_) => println!("skipped postgres: CDRATE_TEST_POSTGRES_URL not set"),
    }
    out
}

/// Creates database `db` on the server of `url` and opens a store on it.
pub async fn fresh_postgres(url: &str, db: &str) -> Store {
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(url).await.expect("postgres reachable");
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {db}"))
        .execute(&admin)
        .await
        .unwrap();
    sqlx::raw_sql(&format!("CREATE DATABASE {db}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let base = url.rsplit_once('/').map_or(url, |(b, _)| b);
    Store::open(&StoreSettings::new(format!("{base}/{db}"))).await.unwrap()
}

fn call(id: &str, version: u32, account_key: &str) -> CallRecord {
    CallRecord {
        schema: "call.v1".into(),
        id: id.into(),
        version,
        source: Source::Generic,
        account_key: account_key.into(),
        direction: Direction::Outbound,
        caller: "1001".into(),
        callee: "+442071234567".into(),
        callee_e164: Some("442071234567".into()),
        start_at: "2026-11-18T15:00:00Z".parse().unwrap(),
        answer_at: Some("2026-11-18T15:00:05Z".parse().unwrap()),
        end_at: "2026-11-18T15:01:06Z".parse().unwrap(),
        duration_ms: 66_000,
        billable_ms: 61_000,
        disposition: Disposition::Answered,
        hangup_cause: None,
        trunk: None,
        attrs: Default::default(),
        received_at: "2026-11-18T15:01:07Z".parse().unwrap(),
    }
}

fn rated(id: &str, version: u32, rating_version: u32, account: &str, cost: &str) -> RatedCall {
    RatedCall {
        call: call(id, version, account),
        account_id: account.into(),
        plan: Some("retail".into()),
        prefix: Some("44".into()),
        destination: Some("United Kingdom".into()),
        band: None,
        charged_seconds: 61,
        cost: Decimal::from_str(cost).unwrap(),
        currency: "USD".parse().unwrap(),
        note: None,
        account_status: None,
        tariff_version: 1,
        rating_version,
        rated_at: "2026-11-18T15:01:08Z".parse().unwrap(),
    }
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

async fn assert_totals_consistent(store: &Store) {
    assert_eq!(
        store.usage_totals().await.unwrap(),
        store.recomputed_totals().await.unwrap()
    );
}

#[tokio::test]
async fn migrations_are_idempotent() {
    for store in stores("migrate").await {
        // Opening again re-runs the migrator against an up-to-date schema.
        cdrate_store::migrate::run(&store).await.unwrap();
        store.ping().await.unwrap();
    }
}

/// Two writers rating versions of the same new calls at once (on Kafka:
/// two workers, when a sender changed a call's key between versions): each
/// call ends at its highest version and the totals count it once. Only
/// PostgreSQL has concurrent writers; SQLite runs the same for coverage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_of_one_new_call_keep_totals_exact() {
    for store in stores("race").await {
        for round in 0..12 {
            let ids: Vec<String> = (0..300).map(|i| format!("race-{round}-{i}")).collect();
            let low: Vec<RatedCall> = ids.iter().map(|id| rated(id, 1, 1, "acme", "1.00")).collect();
            // Same order: the second writer waits on the first's new rows,
            // then finds them there. Opposite order: a deadlock.
            let mut high: Vec<RatedCall> = ids.iter().map(|id| rated(id, 2, 1, "zeta", "2.50")).collect();
            if round % 2 == 1 {
                high.reverse();
            }
            let (a, b) = (store.clone(), store.clone());
            let first = tokio::spawn(async move { a.apply_rating_batch(&low, &[], 1).await });
            let second = tokio::spawn(async move { b.apply_rating_batch(&high, &[], 1).await });
            first.await.unwrap().unwrap();
            second.await.unwrap().unwrap();
        }
        // A total emptied by a replacement stays as a zero row.
        let mut totals = store.usage_totals().await.unwrap();
        totals.retain(|t| t.calls != 0 || !t.cost.is_zero());
        assert_eq!(totals, store.recomputed_totals().await.unwrap());
        assert_eq!(totals.len(), 1, "every call ends at version 2: {totals:?}");
        assert_eq!((totals[0].account_id.as_str(), totals[0].calls), ("zeta", 12 * 300));
    }
}

#[tokio::test]
async fn rating_batches_are_idempotent_and_keep_totals() {
    for store in stores("rating").await {
        let batch = [
            rated("a", 1, 1, "acme", "0.0320"),
            rated("b", 1, 1, "acme", "1.10"),
            rated("c", 1, 1, "zeta", "7.00"),
        ];
        let out = store.apply_rating_batch(&batch, &[], 1).await.unwrap();
        assert_eq!((out.inserted, out.replaced, out.unchanged), (3, 0, 0));
        // Redelivery: nothing changes.
        let out = store.apply_rating_batch(&batch, &[], 2).await.unwrap();
        assert_eq!((out.inserted, out.replaced, out.unchanged), (0, 0, 3));
        let totals = store.usage_totals().await.unwrap();
        assert_eq!(totals[0].cost, dec("1.132"));
        assert_eq!(totals[0].calls, 2);
        // A corrected version replaces and moves the totals by the difference,
        // even to another account; a stale version is ignored.
        let out = store
            .apply_rating_batch(
                &[rated("a", 2, 1, "zeta", "0.5000"), rated("b", 0, 1, "acme", "99")],
                &[],
                3,
            )
            .await
            .unwrap();
        assert_eq!((out.inserted, out.replaced, out.unchanged), (0, 1, 1));
        assert_eq!(out.written, [true, false]);
        let totals = store.usage_totals().await.unwrap();
        assert_eq!((totals[0].calls, totals[0].cost), (1, dec("1.10")));
        assert_eq!((totals[1].calls, totals[1].cost), (2, dec("7.5")));
        assert_totals_consistent(&store).await;
        // A re-rating (higher rating_version) replaces too.
        let out = store
            .apply_rating_batch(&[rated("c", 1, 2, "zeta", "6.00")], &[], 4)
            .await
            .unwrap();
        assert_eq!(out.replaced, 1);
        assert_eq!(store.find_call("c").await.unwrap().unwrap().cost.to_string(), "6.00");
        assert_totals_consistent(&store).await;
        // Two versions of one call in one batch: the higher wins, once.
        let out = store
            .apply_rating_batch(&[rated("d", 1, 1, "acme", "1"), rated("d", 2, 1, "acme", "2")], &[], 5)
            .await
            .unwrap();
        assert_eq!(out.written, [false, true]);
        assert_eq!(store.find_call("d").await.unwrap().unwrap().cost.to_string(), "2");
        assert_totals_consistent(&store).await;
        assert_eq!(store.count_calls().await.unwrap(), 4);
    }
}

#[tokio::test]
async fn quarantine_is_kept_until_rated() {
    for store in stores("quarantine").await {
        let q = QuarantineEntry {
            id: "x".into(),
            version: 1,
            reason: "unknown_account".into(),
            detail: "no identity generic/ghost".into(),
            account_key: "ghost".into(),
            payload: b"{\"raw\":true}".to_vec(),
            first_seen_at_ms: 0,
            last_tried_at_ms: 0,
            attempts: 0,
        };
        store
            .apply_rating_batch(&[], std::slice::from_ref(&q), 10)
            .await
            .unwrap();
        store
            .apply_rating_batch(&[], std::slice::from_ref(&q), 20)
            .await
            .unwrap();
        let list = store.quarantine_list(None, None, 10).await.unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(
            (list[0].attempts, list[0].first_seen_at_ms, list[0].last_tried_at_ms),
            (2, 10, 20)
        );
        assert_eq!(list[0].payload, q.payload);
        assert_eq!(
            store.quarantine_counts().await.unwrap(),
            [("unknown_account".to_owned(), 1)]
        );
        assert!(store
            .quarantine_list(Some("no_route"), None, 10)
            .await
            .unwrap()
            .is_empty());
        store
            .apply_rating_batch(&[rated("x", 1, 1, "acme", "1")], &[], 30)
            .await
            .unwrap();
        assert!(store.quarantine_list(None, None, 10).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn listing_filters_by_account_and_time() {
    for store in stores("list").await {
        let mut rows = Vec::new();
        for i in 0..10 {
            let mut r = rated(
                &format!("id{i:02}"),
                1,
                1,
                if i % 2 == 0 { "even" } else { "odd" },
                "0.01",
            );
            r.call.start_at += chrono::Duration::minutes(i);
            r.call.answer_at = r.call.answer_at.map(|a| a + chrono::Duration::minutes(i));
            rows.push(r);
        }
        store.apply_rating_batch(&rows, &[], 1).await.unwrap();
        let all = store
            .list_calls(&CallFilter {
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(all.len(), 10);
        assert_eq!(all[3], rows[3]);
        let even = store
            .list_calls(&CallFilter {
                account: Some("even".into()),
                from_ms: Some(rows[2].call.start_at.timestamp_millis()),
                to_ms: Some(rows[8].call.start_at.timestamp_millis()),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            even.iter().map(|c| c.call.id.as_str()).collect::<Vec<_>>(),
            ["id02", "id04", "id06"]
        );
        let answered = store
            .list_calls(&CallFilter {
                answer_from_ms: rows[2].call.answer_at.map(|t| t.timestamp_millis()),
                answer_to_ms: rows[4].call.answer_at.map(|t| t.timestamp_millis()),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            answered.iter().map(|c| c.call.id.as_str()).collect::<Vec<_>>(),
            ["id02", "id03"]
        );
        let page = store
            .list_calls(&CallFilter {
                after_id: Some("id07".into()),
                limit: 5,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(page.len(), 2);
    }
}

#[tokio::test]
async fn versions_are_numbered_and_deduplicated() {
    for store in stores("versions").await {
        assert_eq!(store.tariff_version().await.unwrap(), None);
        let t = TariffTexts {
            plans: "p".into(),
            bands: String::new(),
            rates: "r".into(),
        };
        assert_eq!(store.import_tariffs(&t, "dir", 1).await.unwrap(), (1, true));
        assert_eq!(store.import_tariffs(&t, "dir", 2).await.unwrap(), (1, false));
        let t2 = TariffTexts {
            rates: "r2".into(),
            ..t.clone()
        };
        assert_eq!(store.import_tariffs(&t2, "dir", 3).await.unwrap(), (2, true));
        let latest = store.latest_tariffs().await.unwrap().unwrap();
        assert_eq!((latest.version, latest.texts), (2, t2));
    }
}

#[tokio::test]
async fn bus_log_appends_reads_and_commits() {
    for store in stores("buslog").await {
        let log = BusLog::new(store);
        let records: Vec<(String, Vec<u8>)> = (0..1200)
            .map(|i| (format!("k{}", i % 7), format!("m{i}").into_bytes()))
            .collect();
        let refs: Vec<(&str, &[u8])> = records.iter().map(|(k, p)| (k.as_str(), p.as_slice())).collect();
        assert_eq!(log.append("t", &refs, 1).await.unwrap(), 1200);
        assert_eq!(log.append("t", &refs[..3], 2).await.unwrap(), 1203);
        assert_eq!(log.end("t").await.unwrap(), 1203);
        assert_eq!(log.end("other").await.unwrap(), 0);
        let got = log.read("t", 1198, 4).await.unwrap();
        assert_eq!(
            got.iter().map(|e| e.offset).collect::<Vec<_>>(),
            [1198, 1199, 1200, 1201]
        );
        assert_eq!(got[2].payload, b"m0");
        assert_eq!(log.committed("g", "t").await.unwrap(), 0);
        log.commit("g", "t", 500).await.unwrap();
        log.commit("g", "t", 400).await.unwrap(); // never backwards
        assert_eq!(log.committed("g", "t").await.unwrap(), 500);
        assert_eq!(log.prune("t", 500).await.unwrap(), 500);
        assert_eq!(log.read("t", 0, 1).await.unwrap()[0].offset, 500);
        assert_eq!(log.end("t").await.unwrap(), 1203);
        // Pruning everything must not let offsets start again (a consumer
        // waiting at 1203 would never see the next message).
        assert_eq!(log.prune("t", 1203).await.unwrap(), 703);
        assert_eq!(log.end("t").await.unwrap(), 1203);
        assert_eq!(log.append("t", &refs[..1], 3).await.unwrap(), 1204);
        assert_eq!(log.read("t", 1203, 10).await.unwrap()[0].offset, 1203);
    }
}

#[tokio::test]
async fn dead_letters_keep_the_bytes() {
    for store in stores("deadletters").await {
        let mut d = cdrate_store::DeadLetter {
            id: 0,
            source: "twilio".into(),
            received_at_ms: 5,
            reason: "bad_signature".into(),
            detail: "signature does not verify".into(),
            remote_addr: "127.0.0.1:5555".into(),
            headers: r#"{"x-twilio-signature":"***"}"#.into(),
            uri: "/ingest/twilio?x=1".into(),
            body: vec![0, 159, 146, 150, b'a'],
            retried_at_ms: None,
            retry_outcome: None,
        };
        let first = store.insert_dead_letter(&d).await.unwrap();
        d.source = "freeswitch".into();
        d.reason = "malformed_payload".into();
        let second = store.insert_dead_letter(&d).await.unwrap();
        assert!(second > first);
        let all = store.list_dead_letters(None, None, None, 10).await.unwrap();
        assert_eq!(all.iter().map(|d| d.id).collect::<Vec<_>>(), [second, first]);
        let tw = store.list_dead_letters(Some("twilio"), None, None, 10).await.unwrap();
        assert_eq!(tw.len(), 1);
        assert_eq!(tw[0].body, d.body);
        store.mark_dead_letter_retried(first, "accepted", 9).await.unwrap();
        let got = store.find_dead_letter(first).await.unwrap().unwrap();
        assert_eq!(
            (got.retried_at_ms, got.retry_outcome.as_deref()),
            (Some(9), Some("accepted"))
        );
        assert_eq!(store.dead_letter_counts().await.unwrap().len(), 2);
        store.save_fritzbox_state("office", "{}", 1).await.unwrap();
        store.save_fritzbox_state("office", "{\"open\":[]}", 2).await.unwrap();
        assert_eq!(
            store.fritzbox_state("office").await.unwrap().as_deref(),
            Some("{\"open\":[]}")
        );
    }
}

fn item(id: &str, account: &str, delivery: &str, state: &str, amount: &str) -> cdrate_store::LineItemRow {
    cdrate_store::LineItemRow {
        id: id.into(),
        account_id: account.into(),
        cycle_start_ms: 1_000,
        cycle_end_ms: 2_000,
        kind: "usage".into(),
        destination: "United Kingdom".into(),
        calls: 1,
        billed_seconds: 61,
        amount: dec(amount),
        currency: "USD".into(),
        description: format!("Calls to United Kingdom [cdrate:{id}]"),
        delivery: delivery.into(),
        state: state.into(),
        whmcs_client_id: Some(17),
        whmcs_ref: None,
        invoice_id: None,
        attempts: 0,
        next_attempt_at_ms: 0,
        last_error: None,
        created_at_ms: 5,
        updated_at_ms: 5,
    }
}

fn close(
    account: &str,
    items: Vec<cdrate_store::LineItemRow>,
    billed: Vec<(&str, &str, Option<&str>)>,
) -> cdrate_store::CycleClose {
    let total = items.iter().map(|i| i.amount).sum();
    cdrate_store::CycleClose {
        cycle: cdrate_store::ClosedCycle {
            account_id: account.into(),
            cycle_start_ms: 1_000,
            cycle_end_ms: 2_000,
            currency: "USD".into(),
            total,
            items: items.len() as i64,
            closed_at_ms: 3_000,
        },
        items,
        billed: billed
            .into_iter()
            .map(|(id, cost, item)| (id.to_owned(), dec(cost), item.map(str::to_owned)))
            .collect(),
    }
}

#[tokio::test]
async fn a_closed_call_is_not_billed_again_until_its_cost_changes() {
    for store in stores("billing-close").await {
        store
            .apply_rating_batch(&[rated("c1", 1, 1, "a", "0.10"), rated("c2", 1, 1, "a", "0.2")], &[], 1)
            .await
            .unwrap();
        let answer_ms = rated("c1", 1, 1, "a", "0").call.answer_at.unwrap().timestamp_millis();
        let unbilled = store.unbilled_calls("a", answer_ms + 1).await.unwrap();
        assert_eq!(unbilled.len(), 2);
        assert_eq!(unbilled[0].billed_cost, None);
        assert!(
            store.unbilled_calls("a", answer_ms).await.unwrap().is_empty(),
            "end is exclusive"
        );
        assert_eq!(
            store.accounts_with_unbilled_calls(answer_ms + 1).await.unwrap(),
            vec!["a".to_owned()]
        );

        let c = close(
            "a",
            vec![item("li-1", "a", "push", "pending", "0.30")],
            vec![("c1", "0.1", Some("li-1")), ("c2", "0.2", Some("li-1"))],
        );
        assert!(store.close_cycle(&c).await.unwrap());
        assert!(
            !store.close_cycle(&c).await.unwrap(),
            "a second close of the cycle writes nothing"
        );
        // "0.1" billed against a stored "0.10": equal as money, nothing left.
        assert!(store.unbilled_calls("a", i64::MAX).await.unwrap().is_empty());
        assert!(store.accounts_with_unbilled_calls(i64::MAX).await.unwrap().is_empty());
        let cycles = store.closed_cycles(Some("a"), 10).await.unwrap();
        assert_eq!(cycles.len(), 1);
        assert_eq!(cycles[0].total, dec("0.30"));
        assert!(store.closed_cycle("a", 1_000).await.unwrap().is_some());

        // A re-rating that changes the cost makes the call billable again,
        // with what was billed so far.
        store
            .apply_rating_batch(&[rated("c2", 1, 2, "a", "0.25")], &[], 2)
            .await
            .unwrap();
        let again = store.unbilled_calls("a", i64::MAX).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!((again[0].cost, again[0].billed_cost), (dec("0.25"), Some(dec("0.2"))));
        // The re-rating kept what the close recorded on the row.
        assert_totals_consistent(&store).await;
    }
}

#[tokio::test]
async fn line_item_transitions_are_compare_and_set_and_logged() {
    for store in stores("billing-items").await {
        let c = close(
            "a",
            vec![
                item("li-1", "a", "push", "pending", "1.00"),
                item("li-2", "a", "pull", "pending", "2.00"),
            ],
            vec![],
        );
        store.close_cycle(&c).await.unwrap();
        let due = store.push_items_due(&["pending", "failed"], 10, 10).await.unwrap();
        assert_eq!(due.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), vec!["li-1"]);

        let sending = cdrate_store::Transition {
            from: &["pending", "failed"],
            to: "sending",
            detail: "AddBillableItem",
            attempt: true,
            now_ms: 20,
            ..Default::default()
        };
        assert!(store.transition_item("li-1", &sending).await.unwrap());
        assert!(
            !store.transition_item("li-1", &sending).await.unwrap(),
            "only one worker wins"
        );
        let sent = cdrate_store::Transition {
            from: &["sending"],
            to: "sent",
            detail: "billableid 311",
            whmcs_ref: Some("311"),
            now_ms: 21,
            ..Default::default()
        };
        assert!(store.transition_item("li-1", &sent).await.unwrap());
        let got = store.line_item("li-1").await.unwrap().unwrap();
        assert_eq!(
            (got.state.as_str(), got.whmcs_ref.as_deref(), got.attempts),
            ("sent", Some("311"), 1)
        );
        let events = store.line_item_events("li-1").await.unwrap();
        let states: Vec<&str> = events.iter().map(|e| e.1.as_str()).collect();
        assert_eq!(states, vec!["pending", "sending", "sent"]);

        let filter = cdrate_store::ItemFilter {
            account: Some("a".into()),
            delivery: Some("pull".into()),
            limit: 10,
            ..Default::default()
        };
        assert_eq!(store.line_items(&filter).await.unwrap().len(), 1);
        let states = store.line_item_states().await.unwrap();
        assert!(states.contains(&("push".into(), "sent".into(), 1)), "{states:?}");

        // Acknowledging a pulled item is idempotent per invoice.
        let ids = vec!["li-2".to_owned(), "li-1".to_owned(), "li-x".to_owned()];
        let ack = store.ack_items(&ids, 1042, 30).await.unwrap();
        assert_eq!(ack.acked, vec!["li-2".to_owned()]);
        assert_eq!(ack.conflicts, vec!["li-1".to_owned()], "a push item cannot be acked");
        assert_eq!(ack.unknown, vec!["li-x".to_owned()]);
        let again = store.ack_items(&ids[..1], 1042, 31).await.unwrap();
        assert_eq!(again.already, vec!["li-2".to_owned()]);
        let other = store.ack_items(&ids[..1], 1043, 32).await.unwrap();
        assert_eq!(other.conflicts, vec!["li-2".to_owned()]);
        assert_eq!(store.line_item("li-2").await.unwrap().unwrap().invoice_id, Some(1042));
    }
}

#[tokio::test]
async fn alerts_fire_once_and_tokens_keep_only_hashes() {
    for store in stores("billing-alerts").await {
        assert!(store
            .record_alert("a", 1_000, dec("0.80"), dec("8.5"), dec("10"), 1)
            .await
            .unwrap());
        assert!(!store
            .record_alert("a", 1_000, dec("0.8"), dec("9"), dec("10"), 2)
            .await
            .unwrap());
        assert!(store
            .record_alert("a", 2_000, dec("0.8"), dec("9"), dec("10"), 3)
            .await
            .unwrap());
        assert_eq!(store.fired_alerts("a", 1_000).await.unwrap(), vec![dec("0.8")]);

        store
            .apply_rating_batch(
                &[rated("c1", 1, 1, "a", "0.10"), rated("c2", 1, 1, "a", "0.25")],
                &[],
                1,
            )
            .await
            .unwrap();
        assert_eq!(store.usage_between("a", 0, i64::MAX).await.unwrap(), (2, dec("0.35")));
        assert_eq!(store.usage_between("a", 0, 1).await.unwrap(), (0, Decimal::ZERO));

        let token = cdrate_store::ApiToken {
            id: "tok_1".into(),
            name: "whmcs".into(),
            scopes: "billing".into(),
            secret_sha256: "ab".repeat(32),
            created_at_ms: 1,
            revoked_at_ms: None,
        };
        store.insert_token(&token).await.unwrap();
        assert_eq!(
            store.token_by_hash(&"ab".repeat(32)).await.unwrap(),
            Some(token.clone())
        );
        assert!(store.revoke_token("whmcs", 5).await.unwrap());
        assert!(!store.revoke_token("whmcs", 6).await.unwrap());
        assert_eq!(store.list_tokens().await.unwrap()[0].revoked_at_ms, Some(5));
    }
}
