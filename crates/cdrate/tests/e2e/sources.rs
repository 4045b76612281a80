//! Provider endpoints over real HTTP: every fixture payload posted the way
//! its sender posts it; wrong credentials, disallowed addresses, garbage and
//! oversized bodies each get a 4xx with a stable code and a dead letter
//! holding the bytes, and change nothing else; a re-sent CDR is rated once.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use cdrate_benches::http::{Client, Response};
use cdrate_store::Store;

use crate::harness::{eventually, Backend, World};

pub(crate) fn fixtures(source: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/ingest")
        .join(source)
}

/// The expected outcome per payload file, from the fixture's expected.jsonl.
fn expected(source: &str) -> Vec<(String, serde_json::Value)> {
    std::fs::read_to_string(fixtures(source).join("expected.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["file"].as_str().unwrap().to_owned(), v)
        })
        .collect()
}

const FS_CONFIG: &str = r#"
[[ingest.freeswitch.pbx]]
name = "fusion"
username = "freeswitch"
password = "Tq8-cdr-51xV"

[[ingest.freeswitch.pbx]]
name = "office-lan"
allow = ["10.0.0.0/8"]
"#;

/// A refused request: what it is, credentials, body, expected status and code.
type Refusal<'a> = (&'a str, Option<String>, &'a [u8], u16, &'a str);

/// A bad webhook request: what, path, headers, body, expected status and code.
type Hook<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, &'a [u8], u16, &'a str);

fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

/// POSTs a FreeSWITCH payload the way mod_xml_cdr would for its kind.
fn post_cdr(client: &mut Client, file: &str, body: &[u8], auth: Option<&str>) -> Response {
    let text = String::from_utf8_lossy(body);
    let ct = if !file.ends_with(".form") {
        "text/xml"
    } else if text.starts_with("cdr=%") || text.starts_with("cdr=<") {
        "application/x-www-form-urlencoded"
    } else {
        "application/x-www-form-base64-encoded"
    };
    let auth_header = auth.map(|a| ("authorization", a));
    let headers: Vec<(&str, &str)> = auth_header.into_iter().collect();
    client
        .request_with("POST", "/ingest/freeswitch?uuid=a_test", Some(ct), &headers, body)
        .unwrap()
}

async fn dead_letters(store: &Store) -> Vec<cdrate_store::DeadLetter> {
    store.list_dead_letters(None, None, None, 1000).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn freeswitch_cdrs_over_http() {
    let world = World::new("fs_http", &Backend::Embedded).await;
    world.write_config(FS_CONFIG);
    world.add_identities(&["freeswitch,acme-ltd,acct0", "freeswitch,acme.pbx.example.net,acct1"]);
    let engine = world.start_with(&[("CDRATE_SERVER__REQUEST_BODY_LIMIT_BYTES", "65536")]);
    let store = world.store().await;
    let auth = basic("freeswitch", "Tq8-cdr-51xV");
    let mut client = engine.client();

    // Every fixture, as FreeSWITCH sends it: 2xx for a record, the code for an error.
    let mut expected_dead = 0;
    for (file, want) in expected("freeswitch") {
        let body = std::fs::read(fixtures("freeswitch").join(&file)).unwrap();
        let r = post_cdr(&mut client, &file, &body, Some(&auth));
        if let Some(code) = want.get("error").and_then(|e| e.as_str()) {
            expected_dead += 1;
            assert_eq!(r.status, 400, "{file}: {}", r.text());
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(v["code"], code, "{file}");
            let kept = &dead_letters(&store).await[0];
            assert_eq!(
                (kept.reason.as_str(), kept.body.as_slice()),
                (code, body.as_slice()),
                "{file}: raw bytes kept"
            );
        } else {
            assert_eq!(r.status, 200, "{file}: {}", r.text());
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(v["id"], want["record"]["id"], "{file}");
        }
    }
    assert_eq!(dead_letters(&store).await.len(), expected_dead);

    // A CDR re-sent (FreeSWITCH retries when it misses our 2xx) is rated once.
    let body = std::fs::read(fixtures("freeswitch").join("answered-outbound-gateway.xml")).unwrap();
    for _ in 0..3 {
        assert_eq!(
            post_cdr(&mut client, "answered-outbound-gateway.xml", &body, Some(&auth)).status,
            200
        );
    }
    eventually("the gateway call rated", Duration::from_secs(60), || async {
        let n = store.count_calls().await.map_err(|e| e.to_string())?;
        let c = store
            .find_call("fs:37161530-07dd-4c5f-b4ef-017e949146fb")
            .await
            .map_err(|e| e.to_string())?;
        if c.is_some() && n >= 1 {
            Ok(())
        } else {
            Err(format!("{n} rated"))
        }
    })
    .await;
    let rated_before = store.count_calls().await.unwrap();
    let totals_before = store.usage_totals().await.unwrap();
    let accepted_before = engine.metric("cdrate_ingest_records_total", "outcome=\"accepted\"");

    // Refusals: each a 4xx with a stable code and a dead letter, nothing else.
    let cases: Vec<Refusal> = vec![
        ("no credentials", None, &body[..], 401, "unauthorized"),
        (
            "wrong password",
            Some(basic("freeswitch", "guess")),
            &body[..],
            401,
            "unauthorized",
        ),
        (
            "wrong user",
            Some(basic("admin", "Tq8-cdr-51xV")),
            &body[..],
            401,
            "unauthorized",
        ),
        (
            "not basic",
            Some("Bearer Tq8-cdr-51xV".to_owned()),
            &body[..],
            401,
            "unauthorized",
        ),
        (
            "garbage",
            Some(auth.clone()),
            b"\x00\xff garbage <cdr",
            400,
            "malformed_payload",
        ),
        ("empty", Some(auth.clone()), b"", 400, "malformed_payload"),
    ];
    for (what, auth, payload, status, code) in cases {
        let before = dead_letters(&store).await.len();
        let r = post_cdr(&mut client, "x.xml", payload, auth.as_deref());
        assert_eq!(r.status, status, "{what}: {}", r.text());
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        assert_eq!(v["code"], code, "{what}");
        let after = dead_letters(&store).await;
        assert_eq!(after.len(), before + 1, "{what}: one dead letter");
        assert_eq!(after[0].body, payload, "{what}: raw bytes kept");
        assert!(!after[0].headers.contains("Tq8-cdr-51xV"), "{what}: secrets redacted");
    }
    // Oversized: refused before it is all read, kept cut at the limit.
    let big = vec![b'<'; 200_000];
    let r = post_cdr(&mut client, "big.xml", &big, Some(&auth));
    assert_eq!(r.status, 413, "{}", r.text());
    let kept = &dead_letters(&store).await[0];
    assert_eq!((kept.reason.as_str(), kept.body.len()), ("body_too_large", 65536));

    // Nothing reached the bus (appends are counted before the answer) or the store.
    assert_eq!(
        engine.metric("cdrate_ingest_records_total", "outcome=\"accepted\""),
        accepted_before
    );
    assert_eq!(store.count_calls().await.unwrap(), rated_before);
    assert_eq!(store.usage_totals().await.unwrap(), totals_before);
    engine.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn freeswitch_address_allowlist() {
    let world = World::new("fs_allow", &Backend::Embedded).await;
    world
        .write_config("[[ingest.freeswitch.pbx]]\nname = \"elsewhere\"\nallow = [\"10.0.0.0/8\", \"2001:db8::/32\"]\n");
    let engine = world.start();
    let store = world.store().await;
    let body = std::fs::read(fixtures("freeswitch").join("busy.xml")).unwrap();
    let r = post_cdr(&mut engine.client(), "busy.xml", &body, None);
    assert_eq!(r.status, 403, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["code"], "forbidden_address");
    assert_eq!(dead_letters(&store).await[0].reason, "forbidden_address");
    engine.stop();

    // The same PBX allowed from loopback is accepted without credentials.
    world.write_config("[[ingest.freeswitch.pbx]]\nname = \"local\"\nallow = [\"127.0.0.0/8\", \"::1\"]\n");
    let engine = world.start();
    assert_eq!(post_cdr(&mut engine.client(), "busy.xml", &body, None).status, 200);
    engine.stop();
}

/// Splits `scheme://host[:port]/path?query` into its parts.
fn split_url(url: &str) -> (String, String, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let slash = rest.find('/').unwrap_or(rest.len());
    let path = if slash < rest.len() {
        rest[slash..].to_owned()
    } else {
        "/".to_owned()
    };
    (scheme.to_owned(), rest[..slash].to_owned(), path)
}

/// Posts every `signatures.jsonl` case of `source` as the provider would:
/// valid ones are not refused for their signature, invalid ones get 403
/// `bad_signature` and a dead letter with the bytes.
async fn signatures_over_http(source: &str, config: &str) {
    let world = World::new(&format!("{source}_sig"), &Backend::Embedded).await;
    world.write_config(config);
    let engine = world.start();
    let store = world.store().await;
    let mut client = engine.client();
    let cases = std::fs::read_to_string(fixtures(source).join("signatures.jsonl")).unwrap();
    let mut checked = 0;
    for line in cases.lines().filter(|l| !l.trim().is_empty()) {
        let case: serde_json::Value = serde_json::from_str(line).unwrap();
        let body = std::fs::read(fixtures(source).join(case["body_file"].as_str().unwrap())).unwrap();
        let (scheme, host, path) = split_url(case["url"].as_str().unwrap());
        let mut headers: Vec<(String, String)> =
            vec![("x-forwarded-proto".into(), scheme), ("x-forwarded-host".into(), host)];
        for (k, v) in case["headers"].as_object().unwrap() {
            headers.push((k.clone(), v.as_str().unwrap().to_owned()));
        }
        let refs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let before = dead_letters(&store).await.len();
        let r = client
            .request_with("POST", &path, Some("application/x-www-form-urlencoded"), &refs, &body)
            .unwrap();
        let code = serde_json::from_slice::<serde_json::Value>(&r.body).unwrap_or_default()["code"].clone();
        if case["valid"] == true {
            assert_ne!(code, "bad_signature", "{line}: {}", r.text());
            assert!(r.status == 200 || r.status == 400, "{line}: {}", r.text());
        } else {
            assert_eq!(
                (r.status, code.as_str()),
                (403, Some("bad_signature")),
                "{line}: {}",
                r.text()
            );
            let after = dead_letters(&store).await;
            assert_eq!(after.len(), before + 1, "{line}: a dead letter");
            assert_eq!(after[0].body, body, "{line}: raw bytes kept");
        }
        checked += 1;
    }
    assert!(checked >= 5, "{source}: only {checked} signature cases");
    engine.stop();
}

pub(crate) const TWILIO_CONFIG: &str = r#"
[[ingest.twilio.accounts]]
account_sid = "ACfa2a6398ef9d3e22da00b287346004d6"
auth_token = "cc600b58a903e6ce74ac1232005d3034"

[[ingest.twilio.accounts]]
account_sid = "AC5930ee3c27f50c1dc78923ab4f5c33e5"
auth_token = "b79d1ac28d091599923196ec39e21517"
"#;

pub(crate) const ZADARMA_CONFIG: &str = r#"
[ingest.zadarma]
secret = "0740b2afced14c9ffd48"
pbx_id = "318722"
timezone = "Europe/Madrid"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn twilio_signatures_over_http() {
    signatures_over_http("twilio", TWILIO_CONFIG).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn zadarma_signatures_over_http() {
    signatures_over_http("zadarma", ZADARMA_CONFIG).await;
}

/// Garbage, oversized, unsigned and wrongly signed requests to the webhook
/// endpoints: each a 4xx with a code and a dead letter, nothing appended.
#[tokio::test(flavor = "multi_thread")]
async fn webhooks_refuse_bad_requests() {
    let world = World::new("hooks_bad", &Backend::Embedded).await;
    world.write_config(&format!("{TWILIO_CONFIG}\n{ZADARMA_CONFIG}"));
    let engine = world.start_with(&[("CDRATE_SERVER__REQUEST_BODY_LIMIT_BYTES", "4096")]);
    let store = world.store().await;
    let mut client = engine.client();
    let form = Some("application/x-www-form-urlencoded");
    let twilio_body = std::fs::read(fixtures("twilio").join("completed-outbound-api.form")).unwrap();
    let zadarma_body = std::fs::read(fixtures("zadarma").join("notify-end-answered.form")).unwrap();
    let big = vec![b'a'; 10_000];
    let cases: Vec<Hook> = vec![
        (
            "twilio unsigned",
            "/ingest/twilio",
            vec![],
            &twilio_body,
            403,
            "bad_signature",
        ),
        (
            "twilio forged",
            "/ingest/twilio",
            vec![("x-twilio-signature", "ehfHex9tkN8Er7yyvqtuaACljEc=")],
            &twilio_body,
            403,
            "bad_signature",
        ),
        (
            "twilio garbage",
            "/ingest/twilio",
            vec![],
            b"\xff\xfe%%%",
            403,
            "bad_signature",
        ),
        (
            "twilio oversized",
            "/ingest/twilio",
            vec![],
            &big,
            413,
            "body_too_large",
        ),
        (
            "zadarma unsigned",
            "/ingest/zadarma",
            vec![],
            &zadarma_body,
            403,
            "bad_signature",
        ),
        (
            "zadarma forged",
            "/ingest/zadarma",
            vec![("signature", "bm90IGEgc2lnbmF0dXJl")],
            &zadarma_body,
            403,
            "bad_signature",
        ),
        (
            "zadarma garbage",
            "/ingest/zadarma",
            vec![],
            b"\x00garbage",
            400,
            "missing_field",
        ),
        (
            "zadarma oversized",
            "/ingest/zadarma",
            vec![],
            &big,
            413,
            "body_too_large",
        ),
        // The generic JSON source keeps its bad input too.
        (
            "generic garbage",
            "/ingest/calls",
            vec![],
            b"not json",
            400,
            "malformed_payload",
        ),
        (
            "generic invalid",
            "/ingest/calls",
            vec![],
            br#"{"id":"","version":1}"#,
            422,
            "invalid_record",
        ),
        ("generic empty", "/ingest/calls", vec![], b"[]", 400, "empty_batch"),
        (
            "generic oversized",
            "/ingest/calls",
            vec![],
            &big,
            413,
            "body_too_large",
        ),
    ];
    for (what, path, headers, body, status, code) in cases {
        let before = dead_letters(&store).await.len();
        let r = client.request_with("POST", path, form, &headers, body).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        assert_eq!(
            (r.status, v["code"].as_str()),
            (status, Some(code)),
            "{what}: {}",
            r.text()
        );
        let after = dead_letters(&store).await;
        assert_eq!(after.len(), before + 1, "{what}: one dead letter");
        assert_eq!(after[0].reason, code, "{what}");
    }
    assert_eq!(
        engine.metric("cdrate_ingest_records_total", "outcome=\"accepted\""),
        0.0
    );

    // Zadarma's URL check.
    let r = client.get("/ingest/zadarma?zd_echo=a1b2%20c3").unwrap();
    assert_eq!((r.status, r.text()), (200, "a1b2 c3".to_owned()));
    assert_eq!(client.get("/ingest/zadarma").unwrap().status, 400);
    // The dead letter CLI shows what was kept.
    let out = world.cli(&["deadletter", "list", "--source", "twilio"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("twilio/bad_signature: 3") && text.contains("twilio/body_too_large: 1"),
        "{text}"
    );
    engine.stop();
}

/// `cdrate replay` over a directory of saved FreeSWITCH CDRs (what
/// err-log-dir holds): records appended, errors kept as dead letters, and a
/// second run finds only duplicates.
#[tokio::test(flavor = "multi_thread")]
async fn replay_twice_is_safe() {
    let world = World::new("replay", &Backend::Embedded).await;
    world.add_identities(&["freeswitch,acme-ltd,acct0", "freeswitch,acme.pbx.example.net,acct1"]);
    let dir = world.dir.join("xml_cdr_failed");
    std::fs::create_dir_all(&dir).unwrap();
    let cases = expected("freeswitch");
    for (file, _) in &cases {
        std::fs::copy(fixtures("freeswitch").join(file), dir.join(file)).unwrap();
    }
    let records = cases.iter().filter(|(_, v)| v.get("record").is_some()).count();
    let errors = cases.len() - records;
    let engine = world.start();
    let store = world.store().await;

    let out = world.cli(&["replay", "--source", "freeswitch", dir.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        text.contains(&format!("{} file(s): {records} accepted, 0 duplicates", cases.len())),
        "{text}"
    );
    assert!(text.contains(&format!("{errors} rejected")), "{text}");
    assert_eq!(dead_letters(&store).await.len(), errors);

    // Once the records of known accounts are rated, a second run appends
    // none of them again (the others wait in quarantine and are re-queued).
    let known = ["acme-ltd", "acme.pbx.example.net"];
    let rateable = cases
        .iter()
        .filter(|(_, v)| v["record"]["account_key"].as_str().is_some_and(|k| known.contains(&k)))
        .count() as i64;
    assert!(rateable >= 2);
    eventually(
        "the replayed calls of known accounts rated",
        Duration::from_secs(60),
        || async {
            let n = store.count_calls().await.map_err(|e| e.to_string())?;
            if n == rateable {
                Ok(())
            } else {
                Err(format!("{n} of {rateable}"))
            }
        },
    )
    .await;
    let rated = store.count_calls().await.unwrap();
    let out = world.cli(&["replay", "--source", "freeswitch", dir.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("{rated} duplicates")), "{text}");
    assert_eq!(store.count_calls().await.unwrap(), rated);
    engine.stop();
}

/// A sender that stalls half way through its body is cut off at the request
/// timeout: 408 `request_timeout`, and what it sent is kept.
#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_upload_times_out_and_is_kept() {
    use std::io::{Read, Write};
    let world = World::new("fs_slow", &Backend::Embedded).await;
    world.write_config("[[ingest.freeswitch.pbx]]\nname = \"local\"\nallow = [\"127.0.0.0/8\", \"::1\"]\n");
    let engine = world.start_with(&[("CDRATE_SERVER__REQUEST_TIMEOUT_SECONDS", "1")]);
    let store = world.store().await;
    let addr = engine.addr;
    let answer = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        // Promise 1,000 bytes, send 11, then say nothing more.
        s.write_all(b"POST /ingest/freeswitch HTTP/1.1\r\nhost: x\r\ncontent-type: text/xml\r\ncontent-length: 1000\r\n\r\n<cdr><varia")
            .unwrap();
        let mut buf = vec![0u8; 4096];
        let n = s.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    let kept = &dead_letters(&store).await[0];
    assert_eq!(
        (kept.reason.as_str(), kept.body.as_slice()),
        ("request_timeout", &b"<cdr><varia"[..])
    );
    engine.stop();
}
