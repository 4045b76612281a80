//! The fake against the contract of API.md §1-§2 and §7, over real HTTP:
//! every action's happy path and documented errors, authentication and
//! roles, paging, bracket keys, each fault, inspection and redaction.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use serde_json::{json, Value};
use whmcs_fake::state::{Client, Seed, Service};
use whmcs_fake::{Credential, FakeConfig, FakeHandle, Fault, FaultKind};

const ID: &str = "cdrate-test-identifier";
const SECRET: &str = "cdrate-test-secret";

/// `(status, body)`, or `None` when the connection closed without an answer.
fn post(addr: SocketAddr, path: &str, body: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).unwrap();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

fn api(fake: &FakeHandle, params: &[(&str, &str)]) -> (u16, Value) {
    let mut all = vec![("identifier", ID), ("secret", SECRET), ("responsetype", "json")];
    all.extend_from_slice(params);
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(all)
        .finish();
    let (status, body) = post(fake.addr, "/includes/api.php", &body).expect("an answer");
    (status, serde_json::from_str(&body).unwrap_or(Value::String(body)))
}

fn seed() -> Seed {
    let client = |id, code: &str| Client {
        id,
        status: "Active".into(),
        currency: if code == "USD" { 1 } else { 2 },
        currency_code: code.into(),
        credit: Default::default(),
        taxexempt: false,
        firstname: "Ada".into(),
        lastname: "Line".into(),
        companyname: "Example Telecom".into(),
        email: format!("c{id}@example.net"),
        customfields: vec![],
    };
    Seed {
        clients: vec![client(17, "USD"), client(18, "EUR")],
        services: vec![Service {
            id: 88,
            userid: 17,
            pid: 3,
            name: "VoIP Trunk".into(),
            status: "Active".into(),
            domain: "acme.example".into(),
            username: "acme".into(),
            nextduedate: "2026-12-01".into(),
            billingcycle: "Monthly".into(),
            recurringamount: "20.00".parse().unwrap(),
            customfields: vec![],
            configoptions: vec![],
            module: "cdrate".into(),
        }],
        ..Seed::default()
    }
}

async fn fake(config: FakeConfig) -> FakeHandle {
    let f = whmcs_fake::start(config).await.unwrap();
    f.seed(seed());
    f
}

fn error_of(v: &Value) -> &str {
    assert_eq!(v["result"], "error", "{v}");
    v["message"].as_str().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn billable_items_and_their_errors() {
    let f = fake(FakeConfig::default()).await;
    let g = f.clone();
    tokio::task::spawn_blocking(move || {
        let (status, v) = api(
            &g,
            &[
                ("action", "AddBillableItem"),
                ("clientid", "17"),
                ("description", "Calls [cdrate:li-1]"),
                ("amount", "12.37"),
                ("unit", "quantity"),
                ("quantity", "1"),
                ("invoiceaction", "nextinvoice"),
            ],
        );
        assert_eq!((status, v["result"].as_str()), (200, Some("success")));
        assert_eq!(v["billableid"], 1);
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("clientid", "99"), ("description", "x"), ("unit", "quantity")],
                "Client ID not Found",
            ),
            (
                &[("clientid", "17"), ("unit", "quantity")],
                "You must provide a description",
            ),
            (
                &[
                    ("clientid", "17"),
                    ("description", "x"),
                    ("unit", "quantity"),
                    ("invoiceaction", "sometime"),
                ],
                "Invalid Invoice Action",
            ),
            (
                &[
                    ("clientid", "17"),
                    ("description", "x"),
                    ("unit", "quantity"),
                    ("invoiceaction", "recur"),
                ],
                "Recurring must have a unit, cycle and limit",
            ),
            (
                &[
                    ("clientid", "17"),
                    ("description", "x"),
                    ("unit", "quantity"),
                    ("invoiceaction", "duedate"),
                ],
                "Due date is required",
            ),
            (
                &[("clientid", "17"), ("description", "x"), ("unit", "days")],
                "Invalid Unit, please specify either 'hours' or 'quantity'",
            ),
            (
                &[
                    ("clientid", "17"),
                    ("description", "x"),
                    ("unit", "quantity"),
                    ("invoiceaction", "duedate"),
                    ("duedate", "01/12/2026"),
                ],
                "Invalid Date Format - Expected: 'YYYY-mm-dd'",
            ),
        ];
        for (params, message) in cases {
            let mut p = vec![("action", "addbillableitem")];
            p.extend_from_slice(params);
            let (status, v) = api(&g, &p);
            assert_eq!((status, error_of(&v)), (200, *message));
        }
    })
    .await
    .unwrap();
    assert_eq!(f.billable_items().len(), 1, "errors write nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn invoices_create_update_get_and_page() {
    let f = fake(FakeConfig::default()).await;
    let g = f.clone();
    tokio::task::spawn_blocking(move || {
        let (_, v) = api(
            &g,
            &[
                ("action", "CreateInvoice"),
                ("userid", "17"),
                ("notes", "cdrate usage [cdrate:li-1]"),
                ("itemdescription1", "Calls [cdrate:li-1]"),
                ("itemamount1", "12.37"),
                ("itemtaxed1", "1"),
            ],
        );
        assert_eq!(v["result"], "success");
        assert_eq!(v["invoiceid"], "1", "CreateInvoice's id is a string");
        assert_eq!(
            error_of(&api(&g, &[("action", "CreateInvoice"), ("userid", "99")]).1),
            "Client ID Not Found"
        );
        assert_eq!(
            error_of(
                &api(
                    &g,
                    &[
                        ("action", "CreateInvoice"),
                        ("userid", "17"),
                        ("draft", "1"),
                        ("sendinvoice", "1")
                    ]
                )
                .1
            ),
            "Cannot create and send a draft invoice in a single API request. Please create and send separately."
        );
        // Bracket keys, percent-encoded or not.
        let (_, v) = api(
            &g,
            &[
                ("action", "UpdateInvoice"),
                ("invoiceid", "1"),
                ("newitemdescription[0]", "SMS [cdrate:li-2]"),
                ("newitemamount[0]", "0.80"),
                ("newitemtaxed[0]", "1"),
            ],
        );
        assert_eq!(v["result"], "success");
        assert_eq!(
            error_of(
                &api(
                    &g,
                    &[
                        ("action", "UpdateInvoice"),
                        ("invoiceid", "1"),
                        ("itemdescription[1]", "x")
                    ]
                )
                .1
            ),
            "Missing Variables: itemdescription, itemamount and itemtaxed are required for each item being changed"
        );
        assert_eq!(
            error_of(
                &api(
                    &g,
                    &[("action", "UpdateInvoice"), ("invoiceid", "1"), ("status", "Lost")]
                )
                .1
            ),
            "Invalid status Lost"
        );
        assert_eq!(
            error_of(&api(&g, &[("action", "UpdateInvoice"), ("invoiceid", "1"), ("publish", "1")]).1),
            "Invoice must be in Draft status to be published"
        );
        assert_eq!(
            error_of(&api(&g, &[("action", "UpdateInvoice"), ("invoiceid", "9")]).1),
            "Invoice ID Not Found"
        );
        let (_, inv) = api(&g, &[("action", "GetInvoice"), ("invoiceid", "1")]);
        assert_eq!(inv["total"], "13.17");
        assert_eq!(inv["transactions"], "");
        let lines = inv["items"]["item"].as_array().unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["description"], "SMS [cdrate:li-2]");
        assert_eq!(lines[1]["amount"], "0.80");
        assert_eq!(
            error_of(&api(&g, &[("action", "GetInvoice"), ("invoiceid", "9")]).1),
            "Invoice ID Not Found"
        );
        // Paging: 60 invoices, default page 25, newest first on request.
        for _ in 0..59 {
            api(&g, &[("action", "CreateInvoice"), ("userid", "17")]);
        }
        let (_, page) = api(&g, &[("action", "GetInvoices"), ("userid", "17")]);
        assert_eq!(
            (page["totalresults"].as_u64(), page["numreturned"].as_u64()),
            (Some(60), Some(25))
        );
        let (_, last) = api(
            &g,
            &[
                ("action", "GetInvoices"),
                ("userid", "17"),
                ("limitstart", "50"),
                ("orderby", "id"),
                ("order", "desc"),
            ],
        );
        let ids: Vec<u64> = last["invoices"]["invoice"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, (1..=10).rev().collect::<Vec<_>>());
        assert_eq!(last["invoices"]["invoice"][0]["currencycode"], "USD");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_products_currencies_modules_and_geninvoices() {
    let f = fake(FakeConfig::default()).await;
    let g = f.clone();
    tokio::task::spawn_blocking(move || {
        let (_, c) = api(&g, &[("action", "GetClientsDetails"), ("clientid", "18")]);
        assert_eq!(
            (c["client"]["currency_code"].as_str(), c["currency_code"].as_str()),
            (Some("EUR"), Some("EUR"))
        );
        assert_eq!(
            error_of(&api(&g, &[("action", "GetClientsDetails")]).1),
            "Either clientid Or email Is Required"
        );
        assert_eq!(
            error_of(&api(&g, &[("action", "GetClientsDetails"), ("clientid", "5")]).1),
            "Client Not Found"
        );
        let (_, p) = api(&g, &[("action", "GetClientsProducts"), ("clientid", "17")]);
        assert_eq!(p["products"]["product"][0]["id"], 88);
        assert_eq!(p["products"]["product"][0]["customfields"]["customfield"], json!([]));
        let (_, cur) = api(&g, &[("action", "GetCurrencies")]);
        assert_eq!(cur["currencies"]["currency"][0]["code"], "USD");
        assert_eq!(
            api(&g, &[("action", "ModuleSuspend"), ("serviceid", "88")]).1["result"],
            "success"
        );
        assert_eq!(
            error_of(&api(&g, &[("action", "ModuleSuspend")]).1),
            "Service ID is required"
        );
        assert_eq!(
            error_of(&api(&g, &[("action", "ModuleSuspend"), ("serviceid", "9")]).1),
            "Service ID not found"
        );
        // Billable items become an invoice with a line each.
        for amount in ["1.00", "2.50"] {
            api(
                &g,
                &[
                    ("action", "AddBillableItem"),
                    ("clientid", "17"),
                    ("description", "Calls"),
                    ("amount", amount),
                    ("unit", "quantity"),
                    ("invoiceaction", "nextinvoice"),
                ],
            );
        }
        let (_, gen) = api(&g, &[("action", "GenInvoices"), ("clientid", "17")]);
        assert_eq!(gen["numcreated"], 1);
        let (_, inv) = api(
            &g,
            &[
                ("action", "GetInvoice"),
                ("invoiceid", &gen["latestinvoiceid"].to_string()),
            ],
        );
        assert_eq!(inv["total"], "3.50");
        assert_eq!(inv["items"]["item"][0]["type"], "Item");
        assert_eq!(
            api(&g, &[("action", "GenInvoices"), ("clientid", "17")]).1["numcreated"],
            0,
            "invoiced once"
        );
    })
    .await
    .unwrap();
    assert_eq!(f.module_calls().len(), 1);
    assert_eq!(f.snapshot()["services"]["88"]["status"], "Suspended");
}

#[tokio::test(flavor = "multi_thread")]
async fn authentication_roles_and_envelope() {
    let config = FakeConfig {
        credentials: vec![
            Credential {
                identifier: ID.into(),
                secret: SECRET.into(),
                allowed_actions: None,
            },
            Credential {
                identifier: "reader".into(),
                secret: "r".into(),
                allowed_actions: Some(["getinvoice".to_owned()].into()),
            },
        ],
        admins: vec![("admin".into(), "hunter2".into())],
        ..FakeConfig::default()
    };
    let f = fake(config).await;
    let addr = f.addr;
    tokio::task::spawn_blocking(move || {
        let call = |body: &str| {
            let (s, b) = post(addr, "/includes/api.php", body).unwrap();
            (s, serde_json::from_str::<Value>(&b).unwrap())
        };
        let (s, v) = call("action=GetCurrencies&identifier=cdrate-test-identifier&secret=wrong&responsetype=json");
        assert_eq!((s, error_of(&v)), (403, "Authentication Failed"));
        let (s, v) =
            call("action=GetCurrencies&username=cdrate-test-identifier&password=cdrate-test-secret&responsetype=json");
        assert_eq!(
            (s, v["result"].as_str()),
            (200, Some("success")),
            "credential in username/password"
        );
        // Legacy admin login: the MD5 of the password.
        let (_, v) =
            call("action=GetCurrencies&username=admin&password=2ab96390c7dbe3439de74d0c9b0b1767&responsetype=json");
        assert_eq!(v["result"], "success");
        let (_, v) = call("action=GetInvoices&identifier=reader&secret=r&responsetype=json");
        assert_eq!(
            error_of(&v),
            "Invalid Permissions: API action \"getinvoices\" is not allowed"
        );
        let (_, v) =
            call("action=NoSuchThing&identifier=cdrate-test-identifier&secret=cdrate-test-secret&responsetype=json");
        assert_eq!(error_of(&v), "Command Not Found");
        let (_, v) =
            call("action=GetCurrencies&identifier=cdrate-test-identifier&secret=cdrate-test-secret&responsetype=xml");
        assert_eq!(error_of(&v), "Unsupported response type");
        assert_eq!(post(addr, "/api.php", "").unwrap().0, 404);
    })
    .await
    .unwrap();
    let reqs = f.requests();
    assert!(reqs.iter().all(|r| r.params.get("secret").is_none_or(|s| s == "***")));
    assert!(reqs.iter().all(|r| r.params.get("password").is_none_or(|s| s == "***")));
}

#[tokio::test(flavor = "multi_thread")]
async fn ip_allowlist_and_access_key() {
    let config = FakeConfig {
        allowed_ips: Some(vec!["203.0.113.7".into()]),
        access_key: Some("k3y!".into()),
        ..FakeConfig::default()
    };
    let f = fake(config).await;
    let g = f.clone();
    tokio::task::spawn_blocking(move || {
        let (s, v) = api(&g, &[("action", "GetCurrencies")]);
        assert_eq!((s, error_of(&v)), (403, "Invalid IP 127.0.0.1"));
        let (s, v) = api(&g, &[("action", "GetCurrencies"), ("accesskey", "k3y!")]);
        assert_eq!((s, v["result"].as_str()), (200, Some("success")));
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn faults() {
    let f = fake(FakeConfig {
        quirk_status_instead_of_result: true,
        ..FakeConfig::default()
    })
    .await;
    let add = [
        ("action", "AddBillableItem"),
        ("clientid", "17"),
        ("description", "x"),
        ("amount", "1"),
        ("unit", "quantity"),
    ];
    let fault = |kind| Fault {
        action: "addbillableitem".into(),
        fault: kind,
        times: 1,
        delay_ms: 10,
    };
    let g = f.clone();
    tokio::task::spawn_blocking(move || {
        // The documented quirk: `status` instead of `result`.
        let (_, v) = api(&g, &add);
        assert_eq!((v["status"].as_str(), v.get("result")), (Some("success"), None));
        g.add_fault(fault(FaultKind::Http500));
        assert_eq!(api(&g, &add).0, 500);
        g.add_fault(fault(FaultKind::ForbiddenJson));
        assert_eq!(error_of(&api(&g, &add).1), "Invalid IP 127.0.0.1");
        g.add_fault(fault(FaultKind::HtmlBody));
        assert!(api(&g, &add).1.is_string(), "HTML, not JSON");
        g.add_fault(fault(FaultKind::TruncatedBody));
        assert!(api(&g, &add).1.is_string(), "cut JSON does not parse");
        g.add_fault(fault(FaultKind::DelayMs));
        assert_eq!(api(&g, &add).1["status"], "success");
        g.add_fault(fault(FaultKind::DropAfterCommit));
        let body = "action=AddBillableItem&identifier=cdrate-test-identifier&secret=cdrate-test-secret&responsetype=json&clientid=17&description=x&amount=1&unit=quantity";
        assert_eq!(post(g.addr, "/includes/api.php", body), None, "closed without an answer");
    })
    .await
    .unwrap();
    // Written: the first call, html, truncated, delayed, dropped; not the 500/403.
    assert_eq!(f.billable_items().len(), 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn inspection_routes() {
    let f = fake(FakeConfig::default()).await;
    let addr = f.addr;
    tokio::task::spawn_blocking(move || {
        let seed = r#"{"clients":[{"id":40,"currency_code":"GBP","currency":3}]}"#;
        let answer = post(addr, "/_fake/seed", seed).unwrap();
        assert_eq!(answer.0, 200, "{}", answer.1);
        let fault = r#"{"action":"*","fault":"http_500"}"#;
        assert_eq!(post(addr, "/_fake/faults", fault).unwrap().0, 200);
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /_fake/state HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert!(out.contains("\"GBP\""), "{out}");
        assert_eq!(post(addr, "/_fake/reset", "").unwrap().0, 200);
    })
    .await
    .unwrap();
    assert!(f.snapshot()["clients"].as_object().unwrap().is_empty());
}
