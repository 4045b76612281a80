//! The HTTP contract, live (issue 7): a tour of running engines that
//! produces every status `schemas/openapi.yaml` documents for every route.
//! It fails on a documented status no scenario produces, on a status a
//! scenario produced that the spec does not document, and on any 4xx/5xx
//! without a JSON error `code`. (`http::contract_tests` checks the other
//! direction statically: every route the router serves is in the spec.)

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use base64::Engine as _;
use cdrate_benches::calls::batch_json;
use cdrate_benches::http::Client;
use sqlx::Connection;

use crate::harness::{Backend, World, E2E_TOKEN};
use crate::sources::{TWILIO_CONFIG, ZADARMA_CONFIG};

/// `(METHOD, route template, status)`.
type Key = (String, String, u16);

fn spec_text() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas/openapi.yaml")).unwrap()
}

/// Every documented `(method, route, status)`, read from the spec's own
/// layout: paths at two spaces, methods at four, statuses at eight.
fn documented() -> BTreeSet<Key> {
    let text = spec_text();
    let paths = text
        .split("\npaths:\n")
        .nth(1)
        .and_then(|rest| rest.split("\ncomponents:").next())
        .expect("the spec has paths and components");
    let (mut path, mut method, mut out) = (String::new(), String::new(), BTreeSet::new());
    for line in paths.lines() {
        let indent = line.len() - line.trim_start().len();
        let t = line.trim();
        match indent {
            2 if t.starts_with('/') => path = t.trim_end_matches(':').to_owned(),
            4 if t.ends_with(':') => method = t.trim_end_matches(':').to_ascii_uppercase(),
            8 if t.starts_with('"') => {
                let status = t[1..4].parse().expect("a quoted status code");
                out.insert((method.clone(), path.clone(), status));
            }
            _ => {}
        }
    }
    out
}

/// The requests of a tour and what they produced.
struct Tour {
    addr: SocketAddr,
    seen: BTreeSet<Key>,
}

/// An answer, from the shared client or from a raw socket.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl Tour {
    fn new(addr: SocketAddr) -> Tour {
        Tour {
            addr,
            seen: BTreeSet::new(),
        }
    }

    /// Sends one request (no default token: `headers` carry any) and
    /// requires `want`.
    #[allow(clippy::too_many_arguments)]
    fn check(
        &mut self,
        method: &str,
        route: &str,
        path: &str,
        content_type: Option<&str>,
        headers: &[(&str, &str)],
        body: &[u8],
        want: u16,
    ) {
        let r = Client::bare(self.addr)
            .request_with(method, path, content_type, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        self.record(
            method,
            route,
            path,
            want,
            Answer {
                status: r.status,
                body: r.body,
            },
        );
    }

    fn record(&mut self, method: &str, route: &str, path: &str, want: u16, a: Answer) {
        let text = String::from_utf8_lossy(&a.body).into_owned();
        assert_eq!(a.status, want, "{method} {path}: {text}");
        if a.status >= 400 {
            let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap_or_default();
            assert!(
                v["code"].as_str().is_some_and(|c| !c.is_empty()) && v["message"].is_string(),
                "{method} {path} {}: the error body has no code and message: {text}",
                a.status
            );
        }
        self.seen.insert((method.to_owned(), route.to_owned(), a.status));
    }
}

/// One HTTP/1.1 exchange on a fresh connection, optionally from another
/// loopback address, with the request written as given (so a body can
/// stop short). Reads until the server closes or the answer is complete.
async fn raw(addr: SocketAddr, from: Option<IpAddr>, request: Vec<u8>) -> Answer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    if let Some(ip) = from {
        socket.bind(SocketAddr::new(ip, 0)).unwrap();
    }
    let mut stream = socket.connect(addr).await.unwrap();
    stream.write_all(&request).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(60), stream.read(&mut chunk))
            .await
            .expect("an answer within a minute")
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(answer) = complete(&buf) {
            return answer;
        }
    }
    complete(&buf).unwrap_or_else(|| panic!("no complete answer: {}", String::from_utf8_lossy(&buf)))
}

/// The answer in `buf` once its headers and `content-length` body are in.
fn complete(buf: &[u8]) -> Option<Answer> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let body = buf.get(end + 4..end + 4 + length)?.to_vec();
    Some(Answer { status, body })
}

fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8], declared: usize) -> Vec<u8> {
    let mut r =
        format!("{method} {path} HTTP/1.1\r\nhost: tour\r\nconnection: close\r\ncontent-length: {declared}\r\n");
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    let mut bytes = r.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn fixture(source: &str, file: &str) -> Vec<u8> {
    std::fs::read(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures/ingest/").to_owned() + source + "/" + file,
    )
    .unwrap()
}

/// The signature header a fixture's `signatures.jsonl` gives `file` at the
/// canonical URL `https://cdrate.example.net/ingest/<source>`.
fn fixture_signature(source: &str, file: &str) -> String {
    let cases = String::from_utf8(fixture(source, "signatures.jsonl")).unwrap();
    cases
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|c| {
            c["valid"] == true
                && c["body_file"] == file
                && c["url"] == format!("https://cdrate.example.net/ingest/{source}")
        })
        .and_then(|c| c["headers"].as_object()?.values().next()?.as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("{source}/{file} has a valid signature case"))
}

/// The providers of `sources`, one FreeSWITCH PBX with credentials, and
/// every route group fenced to 127.0.0.1 (the tour's 403s come from .2).
fn config() -> String {
    format!(
        "{TWILIO_CONFIG}\n{ZADARMA_CONFIG}\n[[ingest.freeswitch.pbx]]\nname = \"fusion\"\nusername = \"freeswitch\"\npassword = \"Tq8-cdr-51xV\"\n\n\
         [access.allow]\ningest = [\"127.0.0.1/32\"]\napi = [\"127.0.0.1/32\"]\nops = [\"127.0.0.1/32\"]\n"
    )
}

const FORWARDED: [(&str, &str); 2] = [
    ("x-forwarded-proto", "https"),
    ("x-forwarded-host", "cdrate.example.net"),
];

fn token(world: &World, scope: &str) -> String {
    let out = world.cli(&["token", "create", "--scope", scope, "--name", &format!("tour-{scope}")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    format!("Bearer {}", String::from_utf8_lossy(&out.stdout).trim())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_documented_status_is_produced() {
    let world = World::new("contract", &Backend::Embedded).await;
    world.write_config(&config());
    let engine = world.start_with(&[
        ("CDRATE_SERVER__REQUEST_BODY_LIMIT_BYTES", "65536"),
        ("CDRATE_SERVER__REQUEST_TIMEOUT_SECONDS", "1"),
    ]);
    let addr = engine.addr;
    let admin = format!("Bearer {E2E_TOKEN}");
    let (reader, ingester) = (token(&world, "read"), token(&world, "ingest"));
    let json = Some("application/json");
    let form = Some("application/x-www-form-urlencoded");
    let xml = Some("text/xml");
    let big = vec![b'a'; 100_000];
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("freeswitch:Tq8-cdr-51xV")
    );
    let wrong_basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("freeswitch:guess")
    );
    let mut tour = Tour::new(addr);

    tokio::task::block_in_place(|| {
        let ing = [("authorization", ingester.as_str())];
        let rd = [("authorization", reader.as_str())];
        let adm = [("authorization", admin.as_str())];
        let none: Vec<(&str, &str)> = Vec::new();

        // POST /ingest/calls
        let r = "/ingest/calls";
        let one = batch_json("tour-", 0..1, 1, &world.keys, 7);
        tour.check("POST", r, r, json, &ing, one.as_bytes(), 202);
        tour.check("POST", r, r, json, &ing, b"not json", 400);
        tour.check("POST", r, r, json, &none, one.as_bytes(), 401);
        tour.check("POST", r, r, json, &rd, one.as_bytes(), 403);
        tour.check("POST", r, r, json, &ing, &big, 413);
        tour.check("POST", r, r, json, &ing, br#"{"id":"","version":1}"#, 422);

        // POST /ingest/freeswitch
        let r = "/ingest/freeswitch";
        let fs = [("authorization", basic.as_str())];
        let cdr = fixture("freeswitch", "answered-outbound-gateway.xml");
        tour.check("POST", r, r, xml, &fs, &cdr, 200);
        tour.check("POST", r, r, xml, &fs, b"<cdr><unclosed", 400);
        tour.check("POST", r, r, xml, &[("authorization", wrong_basic.as_str())], &cdr, 401);
        tour.check("POST", r, r, xml, &fs, &big, 413);

        // POST /ingest/twilio
        let r = "/ingest/twilio";
        let file = "completed-outbound-api.form";
        let sig = fixture_signature("twilio", file);
        let signed = [FORWARDED[0], FORWARDED[1], ("x-twilio-signature", sig.as_str())];
        tour.check("POST", r, r, form, &signed, &fixture("twilio", file), 200);
        let partial = [
            ("AccountSid", "ACfa2a6398ef9d3e22da00b287346004d6".to_owned()),
            ("CallSid", "CAtour0000000000000000000000000001".to_owned()),
            ("CallStatus", "completed".to_owned()),
        ];
        let body = cdrate_benches::signing::form_encode(&partial);
        let sig = cdrate_benches::signing::twilio(
            "cc600b58a903e6ce74ac1232005d3034",
            "https://cdrate.example.net/ingest/twilio",
            &partial,
        );
        let signed = [FORWARDED[0], FORWARDED[1], ("x-twilio-signature", sig.as_str())];
        tour.check("POST", r, r, form, &signed, body.as_bytes(), 400);
        tour.check("POST", r, r, form, &FORWARDED, &fixture("twilio", file), 403);
        tour.check("POST", r, r, form, &FORWARDED, &big, 413);

        // GET and POST /ingest/zadarma
        let r = "/ingest/zadarma";
        tour.check("GET", r, "/ingest/zadarma?zd_echo=tour", None, &none, b"", 200);
        tour.check("GET", r, r, None, &none, b"", 400);
        let file = "notify-end-answered.form";
        let sig = fixture_signature("zadarma", file);
        let signed = [FORWARDED[0], FORWARDED[1], ("signature", sig.as_str())];
        tour.check("POST", r, r, form, &signed, &fixture("zadarma", file), 200);
        tour.check("POST", r, r, form, &none, b"\x00garbage", 400);
        tour.check("POST", r, r, form, &none, &fixture("zadarma", file), 403);
        tour.check("POST", r, r, form, &none, &big, 413);

        // GET /v1/calls
        let r = "/v1/calls";
        tour.check("GET", r, r, None, &rd, b"", 200);
        tour.check("GET", r, "/v1/calls?from=yesterday", None, &rd, b"", 400);
        tour.check("GET", r, r, None, &none, b"", 401);
        tour.check("GET", r, r, None, &ing, b"", 403);
        tour.check("GET", r, "/v1/calls?account=nobody&format=json", None, &rd, b"", 404);

        // POST /v1/simulate
        let r = "/v1/simulate";
        let sim = br#"{"plan":"home","to":"+442079460000","seconds":60}"#;
        tour.check("POST", r, r, json, &rd, sim, 200);
        tour.check("POST", r, r, json, &rd, b"{", 400);
        tour.check("POST", r, r, json, &none, sim, 401);
        tour.check("POST", r, r, json, &ing, sim, 403);
        tour.check(
            "POST",
            r,
            r,
            json,
            &rd,
            br#"{"plan":"nosuchplan","to":"+442079460000","seconds":60}"#,
            404,
        );
        tour.check(
            "POST",
            r,
            r,
            json,
            &rd,
            br#"{"plan":"home","to":"+44 20 abc","seconds":60}"#,
            422,
        );

        // PUT /v1/accounts/{id}
        let r = "/v1/accounts/{id}";
        let new = serde_json::json!({
            "plan": "home", "currency": "USD", "country_code": "1", "national_prefix": "1",
            "international_prefix": "011", "billing": "push",
        })
        .to_string();
        tour.check("PUT", r, "/v1/accounts/tour-push", json, &adm, new.as_bytes(), 201);
        tour.check(
            "PUT",
            r,
            "/v1/accounts/acct0",
            json,
            &adm,
            br#"{"billing":"pull","whmcs_service_id":100}"#,
            200,
        );
        tour.check("PUT", r, "/v1/accounts/acct0", json, &adm, b"{", 400);
        tour.check("PUT", r, "/v1/accounts/acct0", json, &none, b"{}", 401);
        tour.check("PUT", r, "/v1/accounts/acct0", json, &rd, b"{}", 403);
        tour.check(
            "PUT",
            r,
            "/v1/accounts/acct0",
            json,
            &adm,
            br#"{"plan":"nosuchplan"}"#,
            422,
        );

        // GET /v1/accounts/{id}
        tour.check("GET", r, "/v1/accounts/acct0", None, &rd, b"", 200);
        tour.check("GET", r, "/v1/accounts/acct0", None, &none, b"", 401);
        tour.check("GET", r, "/v1/accounts/acct0", None, &ing, b"", 403);
        tour.check("GET", r, "/v1/accounts/nobody", None, &rd, b"", 404);

        // POST /v1/accounts/{id}/{action}
        let r = "/v1/accounts/{id}/{action}";
        tour.check("POST", r, "/v1/accounts/acct2/suspend", json, &adm, b"{}", 200);
        tour.check("POST", r, "/v1/accounts/acct2/unsuspend", json, &none, b"{}", 401);
        tour.check("POST", r, "/v1/accounts/acct2/unsuspend", json, &rd, b"{}", 403);
        tour.check("POST", r, "/v1/accounts/nobody/suspend", json, &adm, b"{}", 404);

        // GET /v1/usage and POST /v1/usage/ack
        let r = "/v1/usage";
        tour.check("GET", r, "/v1/usage?account=acct0", None, &adm, b"", 200);
        tour.check("GET", r, r, None, &adm, b"", 400);
        tour.check("GET", r, "/v1/usage?account=acct0", None, &none, b"", 401);
        tour.check("GET", r, "/v1/usage?account=acct0", None, &rd, b"", 403);
        tour.check("GET", r, "/v1/usage?account=nobody", None, &adm, b"", 404);
        tour.check("GET", r, "/v1/usage?account=tour-push", None, &adm, b"", 409);
        let r = "/v1/usage/ack";
        let ack = br#"{"invoice_id":1,"items":["li-none"]}"#;
        tour.check("POST", r, r, json, &adm, br#"{"invoice_id":1,"items":[]}"#, 400);
        tour.check("POST", r, r, json, &none, ack, 401);
        tour.check("POST", r, r, json, &rd, ack, 403);
        tour.check("POST", r, r, json, &adm, ack, 409);

        // Operations
        for r in ["/health", "/ready", "/metrics"] {
            tour.check("GET", r, r, None, &none, b"", 200);
        }
    });

    // A pulled line item acknowledged: calls of acct0 (billed by pull
    // since the PUT above) rated, their cycle closed, the item acked.
    let calls = batch_json("tour-bill-", 0..40, 1, &world.keys, 11);
    tokio::task::block_in_place(|| {
        let ing = [("authorization", ingester.as_str())];
        tour.check(
            "POST",
            "/ingest/calls",
            "/ingest/calls",
            json,
            &ing,
            calls.as_bytes(),
            202,
        );
    });
    let store = world.store().await;
    crate::harness::eventually("41 calls rated", Duration::from_secs(120), || async {
        match store.count_calls().await {
            Ok(n) if n >= 41 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert!(crate::billing::close_cycles(&world, "2027-03-01T00:00:00Z") > 0);
    tokio::task::block_in_place(|| {
        let r = Client::bare(addr)
            .request_with(
                "GET",
                "/v1/usage?account=acct0&to=2027-03-01T00:00:00Z",
                None,
                &[("authorization", admin.as_str())],
                b"",
            )
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let item = v["items"][0]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("acct0 has a pulled item: {v}"));
        let ack = format!(r#"{{"invoice_id":41,"items":["{item}"]}}"#);
        let adm = [("authorization", admin.as_str())];
        tour.check(
            "POST",
            "/v1/usage/ack",
            "/v1/usage/ack",
            json,
            &adm,
            ack.as_bytes(),
            200,
        );
    });

    // Stalled bodies: 408 after the request timeout.
    for (route, headers) in [
        (
            "/ingest/calls",
            vec![
                ("authorization", ingester.as_str()),
                ("content-type", "application/json"),
            ],
        ),
        (
            "/ingest/freeswitch",
            vec![("authorization", basic.as_str()), ("content-type", "text/xml")],
        ),
    ] {
        let a = raw(addr, None, request("POST", route, &headers, b"[{\"id\"", 1000)).await;
        tour.record("POST", route, route, 408, a);
    }

    // From an address outside every allowlist: 403 on every route.
    let other: IpAddr = "127.0.0.2".parse().unwrap();
    for (method, route, path) in [
        ("POST", "/ingest/calls", "/ingest/calls"),
        ("POST", "/ingest/freeswitch", "/ingest/freeswitch"),
        ("POST", "/ingest/twilio", "/ingest/twilio"),
        ("GET", "/ingest/zadarma", "/ingest/zadarma?zd_echo=x"),
        ("POST", "/ingest/zadarma", "/ingest/zadarma"),
        ("GET", "/v1/calls", "/v1/calls"),
        ("POST", "/v1/simulate", "/v1/simulate"),
        ("GET", "/v1/usage", "/v1/usage?account=acct0"),
        ("POST", "/v1/usage/ack", "/v1/usage/ack"),
        ("GET", "/v1/accounts/{id}", "/v1/accounts/acct0"),
        ("PUT", "/v1/accounts/{id}", "/v1/accounts/acct0"),
        ("POST", "/v1/accounts/{id}/{action}", "/v1/accounts/acct0/suspend"),
        ("GET", "/health", "/health"),
        ("GET", "/ready", "/ready"),
        ("GET", "/metrics", "/metrics"),
    ] {
        let a = raw(
            addr,
            Some(other),
            request(method, path, &[("authorization", &admin)], b"", 0),
        )
        .await;
        let code = serde_json::from_slice::<serde_json::Value>(&a.body).unwrap_or_default()["code"].clone();
        assert_eq!(code, "forbidden_address", "{method} {path}");
        tour.record(method, route, path, 403, a);
    }

    // The bus stops taking appends (another writer holds the embedded log's
    // write lock): ingest answers 503 and readiness goes with it.
    let bus_url = format!("sqlite://{}/bus.db", world.dir.display());
    let mut lock = sqlx::SqliteConnection::connect(&bus_url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE").execute(&mut lock).await.unwrap();
    tokio::task::block_in_place(|| {
        let ing = [("authorization", ingester.as_str())];
        let r = "/ingest/calls";
        let one = batch_json("tour-locked-", 0..1, 1, &world.keys, 7);
        tour.check("POST", r, r, json, &ing, one.as_bytes(), 503);
        let r = "/ingest/freeswitch";
        let fs = [("authorization", basic.as_str())];
        tour.check(
            "POST",
            r,
            r,
            xml,
            &fs,
            &fixture("freeswitch", "answered-inbound-did.xml"),
            503,
        );
        let r = "/ingest/twilio";
        let file = "completed-inbound.form";
        let sig = fixture_signature("twilio", file);
        let signed = [FORWARDED[0], FORWARDED[1], ("x-twilio-signature", sig.as_str())];
        tour.check("POST", r, r, form, &signed, &fixture("twilio", file), 503);
        let r = "/ingest/zadarma";
        let file = "notify-out-end-answered.form";
        let sig = fixture_signature("zadarma", file);
        let signed = [FORWARDED[0], FORWARDED[1], ("signature", sig.as_str())];
        tour.check("POST", r, r, form, &signed, &fixture("zadarma", file), 503);
        tour.check("GET", "/ready", "/ready", None, &[], b"", 503);
    });
    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
    drop(lock);
    engine.stop();

    // An engine with nothing imported yet: 409 where tariffs or accounts
    // are needed.
    let mut blank = World::new("contract_blank", &Backend::Embedded).await;
    blank.env.retain(|(k, _)| !k.starts_with("CDRATE_IMPORT__"));
    let engine = blank.start();
    tour.addr = engine.addr;
    tokio::task::block_in_place(|| {
        let adm = [("authorization", admin.as_str())];
        let sim = br#"{"plan":"home","to":"+442079460000","seconds":60}"#;
        tour.check("POST", "/v1/simulate", "/v1/simulate", json, &adm, sim, 409);
        let r = "/v1/accounts/{id}";
        tour.check("PUT", r, "/v1/accounts/a1", json, &adm, br#"{"plan":"home"}"#, 409);
        tour.check("GET", r, "/v1/accounts/a1", None, &adm, b"", 409);
        let r = "/v1/accounts/{id}/{action}";
        tour.check("POST", r, "/v1/accounts/a1/suspend", json, &adm, b"{}", 409);
        tour.check(
            "GET",
            "/v1/calls",
            "/v1/calls?account=a1&format=json",
            None,
            &adm,
            b"",
            409,
        );
    });
    engine.stop();

    let documented = documented();
    let missing: Vec<&Key> = documented.difference(&tour.seen).collect();
    let undocumented: Vec<&Key> = tour.seen.difference(&documented).collect();
    assert!(
        missing.is_empty() && undocumented.is_empty(),
        "documented but never produced: {missing:?}\nproduced but not documented: {undocumented:?}"
    );
}
