//! Access control (issue 7): every protected route refuses a request with
//! no token, a malformed `Authorization`, a token without the route's
//! scope, or a revoked token, with a 401/403 and a stable code; a peer
//! outside a route group's allowlist gets 403 before anything else; and
//! none of these refusals reaches the store.

use cdrate_benches::http::Client;
use serde_json::Value;

use crate::harness::{Backend, Engine, World};

/// `(method, path, body, scope)` of every token-protected route.
const ROUTES: &[(&str, &str, &str, &str)] = &[
    ("POST", "/ingest/calls", "[]", "ingest"),
    ("GET", "/v1/calls", "", "read"),
    (
        "POST",
        "/v1/simulate",
        r#"{"plan":"home","to":"+442079460000","seconds":60}"#,
        "read",
    ),
    ("GET", "/v1/usage?account=acct0", "", "billing"),
    (
        "POST",
        "/v1/usage/ack",
        r#"{"invoice_id":1,"items":["li-x"]}"#,
        "billing",
    ),
    ("GET", "/v1/accounts/acct0", "", "read"),
    ("PUT", "/v1/accounts/acct0", r#"{"plan":"home"}"#, "admin"),
    ("POST", "/v1/accounts/acct0/suspend", "{}", "admin"),
];

fn send(engine: &Engine, method: &str, path: &str, body: &str, auth: Option<&str>) -> (u16, String) {
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", *a)).collect();
    let ct = (!body.is_empty()).then_some("application/json");
    let r = Client::bare(engine.addr)
        .request_with(method, path, ct, &headers, body.as_bytes())
        .unwrap();
    let code = serde_json::from_slice::<Value>(&r.body)
        .ok()
        .and_then(|v| v["code"].as_str().map(str::to_owned))
        .unwrap_or_default();
    (r.status, code)
}

fn token(world: &World, scope: &str, name: &str) -> String {
    let out = world.cli(&["token", "create", "--scope", scope, "--name", name]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn protected_routes_refuse_missing_bad_and_revoked_tokens() {
    let world = World::new("access_tokens", &Backend::Embedded).await;
    let engine = world.start();
    let store = world.store().await;
    let version = store.account_version().await.unwrap();
    let (reader, ingester) = (token(&world, "read", "reader"), token(&world, "ingest", "ingester"));
    let revoked = token(&world, "admin", "gone");
    assert!(world.cli(&["token", "revoke", "gone"]).status.success());
    tokio::task::block_in_place(|| {
        for &(method, path, body, scope) in ROUTES {
            let wrong = if scope == "read" { &ingester } else { &reader };
            let cases = [
                (None, 401, "missing_token"),
                (Some("Basic YTpi".to_owned()), 401, "malformed_token"),
                (Some("Bearer".to_owned()), 401, "malformed_token"),
                (Some("Bearer cdr_not-a-token".to_owned()), 401, "bad_token"),
                (Some(format!("Bearer {wrong}")), 403, "insufficient_scope"),
                (Some(format!("Bearer {revoked}")), 401, "revoked_token"),
            ];
            for (auth, status, code) in cases {
                let got = send(&engine, method, path, body, auth.as_deref());
                assert_eq!(got, (status, code.to_owned()), "{method} {path} with {auth:?}");
            }
        }
    });
    // Nothing a refused request carried reached the store.
    assert_eq!(store.count_calls().await.unwrap(), 0);
    assert_eq!(store.account_version().await.unwrap(), version);
    assert!(store.list_dead_letters(None, None, None, 10).await.unwrap().is_empty());
    // The right scope passes (admin passes everywhere, as the harness shows).
    tokio::task::block_in_place(|| {
        let (status, _) = send(&engine, "GET", "/v1/calls", "", Some(&format!("Bearer {reader}")));
        assert_eq!(status, 200);
        let call = cdrate_benches::calls::batch_json("acc-", 0..1, 1, &world.keys, 5);
        let (status, _) = send(
            &engine,
            "POST",
            "/ingest/calls",
            &call,
            Some(&format!("Bearer {ingester}")),
        );
        assert_eq!(status, 202);
    });
    engine.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn route_groups_refuse_addresses_outside_their_allowlists() {
    let world = World::new("access_cidr", &Backend::Embedded).await;
    // Loopback may reach /health etc., but neither the API nor ingest.
    world.write_config(
        "[access.allow]\napi = [\"10.0.0.0/8\", \"2001:db8::/32\"]\ningest = [\"192.0.2.7\"]\nops = [\"127.0.0.0/8\", \"::1\"]\n",
    );
    let engine = world.start();
    let store = world.store().await;
    tokio::task::block_in_place(|| {
        let admin = format!("Bearer {}", crate::harness::E2E_TOKEN);
        for &(method, path, body, _) in ROUTES {
            let got = send(&engine, method, path, body, Some(&admin));
            assert_eq!(got, (403, "forbidden_address".to_owned()), "{method} {path}");
        }
        for path in ["/ingest/freeswitch", "/ingest/twilio", "/ingest/zadarma"] {
            let got = send(&engine, "POST", path, "x", None);
            assert_eq!(got, (403, "forbidden_address".to_owned()), "{path}");
        }
        assert_eq!(send(&engine, "GET", "/health", "", None).0, 200);
    });
    assert_eq!(store.count_calls().await.unwrap(), 0);
    assert!(
        store.list_dead_letters(None, None, None, 10).await.unwrap().is_empty(),
        "refused before the provider endpoints could keep anything"
    );
    let bad = World::new("access_badcidr", &Backend::Embedded).await;
    bad.write_config("[access.allow]\napi = [\"10.0.0.0/33\"]\n");
    let out = bad.cli(&["migrate"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("access.allow.api"));
    engine.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn simulate_prices_by_plan_or_by_account() {
    let world = World::new("simulate", &Backend::Embedded).await;
    let engine = world.start();
    let reader = format!("Bearer {}", token(&world, "read", "sim"));
    tokio::task::block_in_place(|| {
        let post = |body: &str| {
            let r = Client::bare(engine.addr)
                .request_with(
                    "POST",
                    "/v1/simulate",
                    Some("application/json"),
                    &[("Authorization", &reader)],
                    body.as_bytes(),
                )
                .unwrap();
            (r.status, serde_json::from_slice::<Value>(&r.body).unwrap())
        };
        // The README's example: 125 s to London on home at 18:30 UTC.
        let (s, v) = post(r#"{"plan":"business","to":"+44 20 7946 0000","at":"2026-11-20T18:30:04Z","seconds":125}"#);
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            (v["destination"].as_str(), v["cost"].as_str()),
            (Some("United Kingdom London"), Some("0.0315"))
        );
        // By account: the number as acct0's users dial it (NANP, 011).
        let (s, v) = post(r#"{"account":"acct0","to":"011442079460000","at":"2026-11-20T18:30:04Z","seconds":125}"#);
        assert_eq!(
            (s, v["plan"].as_str(), v["cost"].as_str()),
            (200, Some("business"), Some("0.0315")),
            "{v}"
        );
        for (body, status, code) in [
            (
                r#"{"plan":"nosuch","to":"+442079460000","seconds":1}"#,
                404,
                "unknown_plan",
            ),
            (
                r#"{"account":"nobody","to":"+442079460000","seconds":1}"#,
                404,
                "unknown_account",
            ),
            (r#"{"plan":"home","to":"call me","seconds":1}"#, 422, "bad_number"),
            (
                r#"{"plan":"home","account":"acct0","to":"+1","seconds":1}"#,
                400,
                "bad_body",
            ),
            // tollfree-in has no fallback plan, so a foreign number has no route.
            (
                r#"{"plan":"tollfree-in","to":"+442079460000","seconds":1}"#,
                422,
                "no_route",
            ),
        ] {
            let (s, v) = post(body);
            assert_eq!((s, v["code"].as_str()), (status, Some(code)), "{body}: {v}");
        }
    });
    engine.stop();
}
