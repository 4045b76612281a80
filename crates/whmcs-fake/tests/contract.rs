//! The fake against the contract of API.md §1-§2 and §7, over real HTTP
//! with a tiny client on a TCP socket: every action's happy path and its
//! documented errors, authentication, roles and access checks, bracket
//! keys, paging, GenInvoices, each fault, inspection and redaction, and
//! the binary.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use whmcs_fake::state::{ConfigOption, CustomField};
use whmcs_fake::{
    Admin, CheckOrder, Client, Credential, FakeConfig, FakeHandle, Fault, FaultKind, Seed, Service,
    DEFAULT_IDENTIFIER as ID, DEFAULT_SECRET as SECRET,
};

const TODAY: &str = "2026-06-01";

/// One HTTP exchange: `(status, body)`, or `None` when the connection
/// closed without a byte of answer.
async fn exchange(addr: SocketAddr, raw: &[u8]) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(raw).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.ok()?;
    if out.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(&out).into_owned();
    // Skip interim 100 Continue answers.
    let mut rest = text.as_str();
    loop {
        let (head, body) = rest.split_once("\r\n\r\n")?;
        let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
        if status != 100 {
            return Some((status, body.to_owned()));
        }
        rest = body;
    }
}

async fn request(addr: SocketAddr, method: &str, path: &str, content_type: &str, body: &str) -> Option<(u16, String)> {
    let raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: whmcs.test\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    exchange(addr, raw.as_bytes()).await
}

const FORM: &str = "application/x-www-form-urlencoded";

fn encode(params: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

/// A form POST to the API: `(status, JSON or the raw text as a string)`.
async fn post_form(addr: SocketAddr, body: &str) -> (u16, Value) {
    let (status, text) = request(addr, "POST", "/includes/api.php", FORM, body)
        .await
        .expect("an answer");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// An API call with the default credentials and `responsetype=json`.
async fn api(f: &FakeHandle, params: &[(&str, &str)]) -> (u16, Value) {
    let mut all = vec![("identifier", ID), ("secret", SECRET), ("responsetype", "json")];
    all.extend_from_slice(params);
    post_form(f.addr, &encode(&all)).await
}

/// The answer of a call that must succeed.
async fn ok(f: &FakeHandle, params: &[(&str, &str)]) -> Value {
    let (status, v) = api(f, params).await;
    assert_eq!((status, &v["result"]), (200, &json!("success")), "{params:?} → {v}");
    v
}

/// The message of a call that must fail with HTTP 200.
async fn err(f: &FakeHandle, params: &[(&str, &str)]) -> String {
    let (status, v) = api(f, params).await;
    assert_eq!((status, &v["result"]), (200, &json!("error")), "{params:?} → {v}");
    v["message"].as_str().unwrap().to_owned()
}

fn client(id: u64, currency: u64, code: &str) -> Client {
    Client {
        id,
        status: "Active".into(),
        currency,
        currency_code: code.into(),
        credit: "5.00".parse().unwrap(),
        taxexempt: false,
        firstname: "Ada".into(),
        lastname: "Line".into(),
        companyname: "Example Telecom".into(),
        email: format!("c{id}@example.net"),
        customfields: vec![CustomField {
            id: 4,
            name: "cdrate account".into(),
            value: format!("acct-{id}"),
        }],
    }
}

fn service(id: u64, userid: u64, pid: u64, domain: &str, module: &str) -> Service {
    Service {
        id,
        userid,
        pid,
        name: "VoIP Trunk".into(),
        status: "Active".into(),
        domain: domain.into(),
        username: format!("user{id}"),
        nextduedate: String::new(),
        billingcycle: "Monthly".into(),
        recurringamount: "20.00".parse().unwrap(),
        customfields: vec![CustomField {
            id: 9,
            name: "Trunk".into(),
            value: "t-1".into(),
        }],
        configoptions: vec![ConfigOption {
            id: 1,
            option: "Channels".into(),
            kind: "quantity".into(),
            value: "4".into(),
        }],
        module: module.into(),
        nextinvoicedate: String::new(),
        suspensionreason: String::new(),
    }
}

fn seed() -> Seed {
    let currencies = serde_json::from_value(json!([
        {"id": 1, "code": "USD", "prefix": "$", "suffix": " USD"},
        {"id": 2, "code": "EUR", "prefix": "€", "suffix": " EUR", "rate": "0.9"},
    ]))
    .unwrap();
    Seed {
        clients: vec![client(17, 1, "USD"), client(18, 2, "EUR")],
        services: vec![
            service(88, 17, 3, "pbx.example.net", "cdrate"),
            service(89, 17, 4, "fax.example.net", "cdrate"),
            service(90, 18, 3, "eu.example.net", ""),
        ],
        currencies,
        ..Seed::default()
    }
}

fn config() -> FakeConfig {
    let mut c = FakeConfig::default();
    c.behaviour.today = Some(TODAY.into());
    c
}

async fn fake_with(config: FakeConfig) -> FakeHandle {
    let f = whmcs_fake::start(config).await.unwrap();
    f.seed(seed());
    f
}

async fn fake() -> FakeHandle {
    fake_with(config()).await
}

const ADD: &[(&str, &str)] = &[
    ("action", "AddBillableItem"),
    ("clientid", "17"),
    ("description", "Calls 2026-05 [cdrate:li-1]"),
    ("amount", "12.37"),
    ("unit", "quantity"),
    ("quantity", "1"),
    ("invoiceaction", "nextinvoice"),
];

fn with<'a>(base: &[(&'a str, &'a str)], extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut all: Vec<_> = base
        .iter()
        .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
        .copied()
        .collect();
    all.extend_from_slice(extra);
    all
}

// ---------------------------------------------------------------------------

#[tokio::test]
async fn add_billable_item_and_its_errors() {
    let f = fake().await;
    let v = ok(&f, ADD).await;
    assert_eq!(v["billableid"], json!(1), "an int");
    let items = f.billable_items();
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert_eq!(
        (item.clientid, item.description.as_str(), item.amount.to_string()),
        (17, "Calls 2026-05 [cdrate:li-1]", "12.37".to_owned())
    );
    assert_eq!(
        (
            item.unit.as_str(),
            item.quantity.to_string(),
            item.invoiceaction.as_str()
        ),
        ("quantity", "1".into(), "nextinvoice")
    );
    let recur = ok(
        &f,
        &with(
            ADD,
            &[
                ("invoiceaction", "recur"),
                ("recur", "1"),
                ("recurcycle", "Months"),
                ("recurfor", "12"),
                ("duedate", "2026-07-01"),
                ("unit", "hours"),
                ("quantity", ""),
                ("hours", "2.5"),
            ],
        ),
    )
    .await;
    assert_eq!(recur["billableid"], 2);
    let item = &f.billable_items()[1];
    assert_eq!(
        (
            item.recur,
            item.recurcycle.as_str(),
            item.recurfor,
            item.duedate.as_str()
        ),
        (1, "Months", 12, "2026-07-01")
    );
    assert_eq!(
        (item.unit.as_str(), item.quantity.to_string()),
        ("hours", "2.5".to_owned())
    );

    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("clientid", "99")], "Client ID not Found"),
        (&[("clientid", "")], "Client ID not Found"),
        (&[("description", "")], "You must provide a description"),
        (&[("invoiceaction", "sometime")], "Invalid Invoice Action"),
        (
            &[("invoiceaction", "recur"), ("duedate", "2026-07-01")],
            "Recurring must have a unit, cycle and limit",
        ),
        (
            &[
                ("invoiceaction", "recur"),
                ("recur", "1"),
                ("recurcycle", "Fortnights"),
                ("recurfor", "2"),
                ("duedate", "2026-07-01"),
            ],
            "Recurring must have a unit, cycle and limit",
        ),
        (&[("invoiceaction", "duedate")], "Due date is required"),
        (
            &[("unit", "days")],
            "Invalid Unit, please specify either 'hours' or 'quantity'",
        ),
        (
            &[("unit", "")],
            "Invalid Unit, please specify either 'hours' or 'quantity'",
        ),
        (
            &[("invoiceaction", "duedate"), ("duedate", "01/12/2026")],
            "Invalid Date Format - Expected: 'YYYY-mm-dd'",
        ),
        (&[("amount", "12,37")], "Invalid amount '12,37'"),
        (&[("amount", "$12.37")], "Invalid amount '$12.37'"),
        (&[("quantity", "one")], "Invalid quantity 'one'"),
    ];
    for (params, message) in cases {
        assert_eq!(err(&f, &with(ADD, params)).await, *message, "{params:?}");
    }
    assert_eq!(f.billable_items().len(), 2, "errors write nothing");

    // Lenient: a missing unit is taken as quantity; a wrong one still fails.
    f.configure(|c| c.behaviour.require_unit = false);
    let no_unit: Vec<_> = ADD.iter().filter(|(k, _)| *k != "unit").copied().collect();
    ok(&f, &no_unit).await;
    assert_eq!(f.billable_items()[2].unit, "quantity");
    assert_eq!(
        err(&f, &with(ADD, &[("unit", "days")])).await,
        "Invalid Unit, please specify either 'hours' or 'quantity'"
    );

    // The documented quirk: the outcome under `status`, errors included.
    f.configure(|c| c.quirks.add_billable_item_status_key = true);
    let (_, v) = api(&f, ADD).await;
    assert_eq!((v["status"].as_str(), v.get("result")), (Some("success"), None), "{v}");
    let (_, v) = api(&f, &with(ADD, &[("clientid", "99")])).await;
    assert_eq!(
        (v["status"].as_str(), v["message"].as_str()),
        (Some("error"), Some("Client ID not Found"))
    );
}

#[tokio::test]
async fn create_invoice_and_its_errors() {
    let f = fake().await;
    let v = ok(
        &f,
        &[
            ("action", "CreateInvoice"),
            ("userid", "17"),
            ("notes", "cdrate usage [cdrate:inv-1]"),
            ("taxrate", "10"),
            ("itemdescription1", "Calls [cdrate:li-1]"),
            ("itemamount1", "12.37"),
            ("itemtaxed1", "1"),
            ("itemdescription3", "SMS [cdrate:li-2]"),
            ("itemamount3", "0.80"),
            ("itemtaxed3", "0"),
            ("paymentmethod", "banktransfer"),
            ("date", "2026-06-01"),
            ("duedate", "2026-06-15"),
        ],
    )
    .await;
    assert_eq!(
        (&v["invoiceid"], &v["status"]),
        (&json!("1"), &json!("Unpaid")),
        "the id is a string"
    );
    let inv = f.invoice(1).unwrap();
    assert_eq!(
        (inv.source.as_str(), inv.notes.as_str(), inv.paymentmethod.as_str()),
        ("api", "cdrate usage [cdrate:inv-1]", "banktransfer")
    );
    let lines: Vec<_> = inv
        .lines
        .iter()
        .map(|l| (l.description.as_str(), l.amount.to_string(), l.taxed))
        .collect();
    assert_eq!(
        lines,
        vec![
            ("Calls [cdrate:li-1]", "12.37".into(), true),
            ("SMS [cdrate:li-2]", "0.80".into(), false)
        ]
    );
    let got = ok(&f, &[("action", "GetInvoice"), ("invoiceid", "1")]).await;
    // 12.37 × 10 % = 1.237 → 1.24.
    assert_eq!(
        (&got["subtotal"], &got["tax"], &got["total"], &got["taxrate"]),
        (&json!("13.17"), &json!("1.24"), &json!("14.41"), &json!("10.000"))
    );

    let draft = ok(&f, &[("action", "CreateInvoice"), ("userid", "17"), ("draft", "1")]).await;
    assert_eq!(draft["status"], "Draft");
    // Auto-applied credit: client 17 holds 5.00.
    ok(
        &f,
        &[
            ("action", "CreateInvoice"),
            ("userid", "17"),
            ("itemdescription1", "x"),
            ("itemamount1", "3.00"),
            ("autoapplycredit", "1"),
        ],
    )
    .await;
    let got = ok(&f, &[("action", "GetInvoice"), ("invoiceid", "3")]).await;
    assert_eq!(
        (&got["credit"], &got["total"], &got["balance"]),
        (&json!("3.00"), &json!("0.00"), &json!("0.00"))
    );

    assert_eq!(
        err(&f, &[("action", "CreateInvoice"), ("userid", "99")]).await,
        "Client ID Not Found"
    );
    assert_eq!(err(&f, &[("action", "CreateInvoice")]).await, "Client ID Not Found");
    assert_eq!(
        err(
            &f,
            &[
                ("action", "CreateInvoice"),
                ("userid", "17"),
                ("draft", "1"),
                ("sendinvoice", "1")
            ]
        )
        .await,
        "Cannot create and send a draft invoice in a single API request. Please create and send separately."
    );
    assert_eq!(
        err(
            &f,
            &[
                ("action", "CreateInvoice"),
                ("userid", "17"),
                ("itemdescription1", "x"),
                ("itemamount1", "1.2.3")
            ]
        )
        .await,
        "Invalid itemamount1 '1.2.3'"
    );
    assert_eq!(f.invoices().len(), 3, "errors write nothing");

    f.configure(|c| c.quirks.create_invoice_id_as_string = false);
    assert_eq!(
        ok(&f, &[("action", "CreateInvoice"), ("userid", "17")]).await["invoiceid"],
        json!(4)
    );
}

#[tokio::test]
async fn update_invoice_with_bracket_keys_and_its_errors() {
    let f = fake().await;
    ok(
        &f,
        &[
            ("action", "CreateInvoice"),
            ("userid", "17"),
            ("itemdescription1", "Trunk"),
            ("itemamount1", "20.00"),
            ("itemtaxed1", "0"),
        ],
    )
    .await;
    let auth = format!("identifier={ID}&secret={SECRET}&responsetype=json");
    // Raw brackets, percent-encoded brackets and `[]` in one body.
    let body = format!(
        "{auth}&action=UpdateInvoice&invoiceid=1\
         &newitemdescription[0]=Calls+May+2026+%5Bcdrate%3Ab-91%5D&newitemamount[0]=12.37&newitemtaxed[0]=1\
         &newitemdescription%5B1%5D=SMS+May+2026+%5Bcdrate%3Ab-92%5D&newitemamount%5B1%5D=0.80&newitemtaxed%5B1%5D=0\
         &newitemdescription[]=Fax&newitemamount[]=1.00&newitemtaxed[]=0"
    );
    let (status, v) = post_form(f.addr, &body).await;
    assert_eq!(
        (status, &v["result"], &v["invoiceid"]),
        (200, &json!("success"), &json!(1)),
        "{v}"
    );
    let inv = f.invoice(1).unwrap();
    let lines: Vec<_> = inv
        .lines
        .iter()
        .map(|l| (l.id, l.description.as_str(), l.amount.to_string(), l.taxed))
        .collect();
    assert_eq!(
        lines,
        vec![
            (1, "Trunk", "20.00".into(), false),
            (2, "Calls May 2026 [cdrate:b-91]", "12.37".into(), true),
            (3, "SMS May 2026 [cdrate:b-92]", "0.80".into(), false),
            (4, "Fax", "1.00".into(), false),
        ]
    );
    let request = f.requests().pop().unwrap();
    assert_eq!(
        request.arrays["newitemdescription"].get("2"),
        Some("Fax"),
        "`[]` appends after index 1"
    );

    // Edit line 1, delete line 4, change status and notes.
    ok(
        &f,
        &[
            ("action", "updateinvoice"),
            ("invoiceid", "1"),
            ("itemdescription[1]", "VoIP Trunk (01/06/2026 - 30/06/2026)"),
            ("itemamount[1]", "25.00"),
            ("itemtaxed[1]", "1"),
            ("deletelineids[0]", "4"),
            ("status", "Payment Pending"),
            ("notes", "checked"),
            ("taxrate", "20"),
        ],
    )
    .await;
    let got = ok(&f, &[("action", "GetInvoice"), ("invoiceid", "1")]).await;
    let items = got["items"]["item"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(
        (&items[0]["description"], &items[0]["amount"], &items[0]["taxed"]),
        (
            &json!("VoIP Trunk (01/06/2026 - 30/06/2026)"),
            &json!("25.00"),
            &json!(1)
        )
    );
    // (25.00 + 12.37) × 20 % = 7.474 → 7.47; 38.17 + 7.47.
    assert_eq!(
        (&got["subtotal"], &got["tax"], &got["total"]),
        (&json!("38.17"), &json!("7.47"), &json!("45.64"))
    );
    assert_eq!(
        (&got["status"], &got["notes"]),
        (&json!("Payment Pending"), &json!("checked"))
    );

    let missing =
        "Missing Variables: itemdescription, itemamount and itemtaxed are required for each item being changed";
    assert_eq!(
        err(
            &f,
            &[
                ("action", "UpdateInvoice"),
                ("invoiceid", "1"),
                ("itemdescription[1]", "x")
            ]
        )
        .await,
        missing
    );
    assert_eq!(
        err(
            &f,
            &[
                ("action", "UpdateInvoice"),
                ("invoiceid", "1"),
                ("itemdescription[1]", "x"),
                ("itemamount[1]", "1.00")
            ]
        )
        .await,
        missing
    );
    assert_eq!(
        err(
            &f,
            &[("action", "UpdateInvoice"), ("invoiceid", "1"), ("status", "Lost")]
        )
        .await,
        "Invalid status Lost"
    );
    assert_eq!(
        err(&f, &[("action", "UpdateInvoice"), ("invoiceid", "1"), ("publish", "1")]).await,
        "Invoice must be in Draft status to be published"
    );
    assert_eq!(
        err(&f, &[("action", "UpdateInvoice"), ("invoiceid", "9")]).await,
        "Invoice ID Not Found"
    );
    assert_eq!(err(&f, &[("action", "UpdateInvoice")]).await, "Invoice ID Not Found");
    assert_eq!(
        err(
            &f,
            &[
                ("action", "UpdateInvoice"),
                ("invoiceid", "1"),
                ("newitemdescription[0]", "y"),
                ("newitemamount[0]", "abc")
            ]
        )
        .await,
        "Invalid newitemamount[0] 'abc'"
    );
    assert_eq!(f.invoice(1).unwrap().lines.len(), 3, "errors write nothing");

    // A draft can be published.
    ok(&f, &[("action", "CreateInvoice"), ("userid", "17"), ("draft", "1")]).await;
    ok(&f, &[("action", "UpdateInvoice"), ("invoiceid", "2"), ("publish", "1")]).await;
    assert_eq!(f.invoice(2).unwrap().status, "Unpaid");
}

#[tokio::test]
async fn get_invoice_has_the_documented_fields() {
    let f = fake().await;
    let seeded: Seed = serde_json::from_value(json!({"invoices": [{
        "id": 1042, "userid": 17, "date": "2026-06-01", "duedate": "2026-06-15", "notes": "n",
        "lines": [
            {"id": 5001, "type": "Hosting", "relid": 88, "description": "VoIP Trunk (01/06/2026 - 30/06/2026)", "amount": "20.00", "taxed": 0},
            {"id": 5002, "description": "Calls May 2026 [cdrate:b-91]", "amount": 12.37, "taxed": true}
        ]}]}))
    .unwrap();
    f.seed(seeded);
    let v = ok(&f, &[("action", "GetInvoice"), ("invoiceid", "1042")]).await;
    let expected = json!({
        "result": "success", "invoiceid": 1042, "invoicenum": "", "userid": 17,
        "date": "2026-06-01", "duedate": "2026-06-15", "datepaid": "0000-00-00 00:00:00",
        "lastcaptureattempt": "0000-00-00 00:00:00",
        "subtotal": "32.37", "credit": "0.00", "tax": "0.00", "tax2": "0.00",
        "total": "32.37", "balance": "32.37", "taxrate": "0.000", "taxrate2": "0.000",
        "status": "Unpaid", "paymentmethod": "mailin", "notes": "n", "ccgateway": false,
        "items": {"item": [
            {"id": 5001, "type": "Hosting", "relid": 88, "description": "VoIP Trunk (01/06/2026 - 30/06/2026)", "amount": "20.00", "taxed": 0},
            {"id": 5002, "type": "", "relid": 0, "description": "Calls May 2026 [cdrate:b-91]", "amount": "12.37", "taxed": 1}
        ]},
        "transactions": ""
    });
    assert_eq!(v, expected);
    assert_eq!(
        err(&f, &[("action", "GetInvoice"), ("invoiceid", "9")]).await,
        "Invoice ID Not Found"
    );
    assert_eq!(err(&f, &[("action", "GetInvoice")]).await, "Invoice ID Not Found");

    // The quirks switched off: numbers for money, a wrapped empty list.
    f.configure(|c| {
        c.quirks.money_as_strings = false;
        c.quirks.empty_transactions_as_string = false;
    });
    let v = ok(&f, &[("action", "GetInvoice"), ("invoiceid", "1042")]).await;
    assert_eq!(
        (&v["total"], &v["transactions"]),
        (&json!(32.37), &json!({"transaction": []}))
    );
    // Every number a string, as the docs' flattened examples show them.
    f.configure(|c| {
        c.quirks = Default::default();
        c.quirks.all_numbers_as_strings = true;
    });
    let v = ok(&f, &[("action", "GetInvoice"), ("invoiceid", "1042")]).await;
    assert_eq!(
        (&v["invoiceid"], &v["items"]["item"][0]["relid"]),
        (&json!("1042"), &json!("88"))
    );
}

#[tokio::test]
async fn get_invoices_pages_filters_and_orders() {
    let f = fake().await;
    for n in 0..60 {
        let (user, amount) = if n % 10 == 9 { ("18", "1.00") } else { ("17", "2.00") };
        let amount = if n == 30 { "99.00" } else { amount };
        let notes = format!("batch {n}");
        ok(
            &f,
            &[
                ("action", "CreateInvoice"),
                ("userid", user),
                ("notes", &notes),
                ("itemdescription1", "x"),
                ("itemamount1", amount),
                ("duedate", "2026-05-01"),
            ],
        )
        .await;
    }
    // Default page: 25 of 60.
    let page = ok(&f, &[("action", "GetInvoices")]).await;
    assert_eq!(
        (&page["totalresults"], &page["startnumber"], &page["numreturned"]),
        (&json!(60), &json!(0), &json!(25))
    );
    // Paging through everything.
    let mut seen = Vec::new();
    let mut start = 0;
    loop {
        let s = start.to_string();
        let p = ok(&f, &[("action", "GetInvoices"), ("limitstart", &s), ("limitnum", "25")]).await;
        let n = p["numreturned"].as_u64().unwrap() as usize;
        seen.extend(
            p["invoices"]["invoice"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_u64().unwrap()),
        );
        assert_eq!(p["startnumber"], json!(start));
        if n == 0 || start + n >= 60 {
            assert_eq!(n, 10, "the last page");
            break;
        }
        start += n;
    }
    assert_eq!(seen, (1..=60).collect::<Vec<_>>());

    // Newest first, one client.
    let p = ok(
        &f,
        &[
            ("action", "GetInvoices"),
            ("userid", "18"),
            ("orderby", "id"),
            ("order", "desc"),
        ],
    )
    .await;
    let ids: Vec<u64> = p["invoices"]["invoice"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, vec![60, 50, 40, 30, 20, 10]);
    let first = &p["invoices"]["invoice"][0];
    assert_eq!(
        (
            &first["currencycode"],
            &first["currencyprefix"],
            &first["currencysuffix"]
        ),
        (&json!("EUR"), &json!("€"), &json!(" EUR"))
    );
    assert_eq!(
        (&first["notes"], &first["total"], &first["firstname"]),
        (&json!("batch 59"), &json!("1.00"), &json!("Ada"))
    );
    let p = ok(
        &f,
        &[
            ("action", "GetInvoices"),
            ("orderby", "total"),
            ("order", "desc"),
            ("limitnum", "1"),
        ],
    )
    .await;
    assert_eq!(p["invoices"]["invoice"][0]["id"], 31);
    assert_eq!(
        ok(&f, &[("action", "GetInvoices"), ("userid", "17")]).await["invoices"]["invoice"][0]["currencycode"],
        "USD"
    );

    // Status filters, including Overdue (unpaid, due before today).
    ok(
        &f,
        &[("action", "UpdateInvoice"), ("invoiceid", "1"), ("status", "Paid")],
    )
    .await;
    ok(
        &f,
        &[
            ("action", "UpdateInvoice"),
            ("invoiceid", "2"),
            ("duedate", "2026-12-01"),
        ],
    )
    .await;
    let paid = ok(&f, &[("action", "GetInvoices"), ("status", "Paid")]).await;
    assert_eq!(
        (&paid["totalresults"], &paid["invoices"]["invoice"][0]["id"]),
        (&json!(1), &json!(1))
    );
    assert_eq!(
        ok(&f, &[("action", "GetInvoices"), ("status", "Overdue")]).await["totalresults"],
        58
    );
    let none = ok(&f, &[("action", "GetInvoices"), ("userid", "99")]).await;
    assert_eq!(
        (
            &none["totalresults"],
            &none["numreturned"],
            &none["invoices"]["invoice"]
        ),
        (&json!(0), &json!(0), &json!([]))
    );
}

#[tokio::test]
async fn clients_products_and_currencies() {
    let f = fake().await;
    let v = ok(&f, &[("action", "GetClientsDetails"), ("clientid", "18")]).await;
    let c = &v["client"];
    assert_eq!(
        (&c["id"], &c["userid"], &c["client_id"]),
        (&json!(18), &json!(18), &json!(18))
    );
    assert_eq!(
        (&c["currency"], &c["currency_code"], &c["credit"], &c["taxexempt"]),
        (&json!(2), &json!("EUR"), &json!("5.00"), &json!(false))
    );
    assert_eq!(c["customfields"], json!([{"id": 4, "value": "acct-18"}]));
    assert_eq!(
        (&v["currency_code"], &v["id"]),
        (&json!("EUR"), &json!(18)),
        "the deprecated top-level copy"
    );
    let by_mail = ok(
        &f,
        &[
            ("action", "GetClientsDetails"),
            ("email", "C17@example.net"),
            ("stats", "1"),
        ],
    )
    .await;
    assert_eq!(by_mail["client"]["id"], 17);
    assert_eq!(by_mail["stats"]["creditbalance"], "$5.00 USD");
    assert_eq!(
        err(&f, &[("action", "GetClientsDetails")]).await,
        "Either clientid Or email Is Required"
    );
    assert_eq!(
        err(&f, &[("action", "GetClientsDetails"), ("clientid", "5")]).await,
        "Client Not Found"
    );
    assert_eq!(
        err(&f, &[("action", "GetClientsDetails"), ("email", "nobody@example.net")]).await,
        "Client Not Found"
    );

    let p = ok(&f, &[("action", "GetClientsProducts"), ("clientid", "17")]).await;
    assert_eq!(
        (&p["clientid"], &p["serviceid"], &p["pid"], &p["domain"]),
        (&json!("17"), &Value::Null, &Value::Null, &Value::Null)
    );
    assert_eq!(
        (&p["totalresults"], &p["startnumber"], &p["numreturned"]),
        (&json!("2"), &json!(0), &json!(2))
    );
    let first = &p["products"]["product"][0];
    assert_eq!(
        (
            &first["id"],
            &first["pid"],
            &first["recurringamount"],
            &first["nextduedate"]
        ),
        (&json!(88), &json!(3), &json!("20.00"), &json!("0000-00-00"))
    );
    assert_eq!(
        first["customfields"],
        json!({"customfield": [{"id": 9, "name": "Trunk", "translated_name": "Trunk", "value": "t-1"}]})
    );
    assert_eq!(
        first["configoptions"],
        json!({"configoption": [{"id": 1, "option": "Channels", "type": "quantity", "value": "4"}]})
    );
    for (filter, value, ids) in [
        ("serviceid", "89", vec![89]),
        ("pid", "3", vec![88, 90]),
        ("domain", "eu.example.net", vec![90]),
        ("username2", "user88", vec![88]),
        ("clientid", "99", vec![]),
    ] {
        let p = ok(&f, &[("action", "GetClientsProducts"), (filter, value)]).await;
        let got: Vec<u64> = p["products"]["product"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_u64().unwrap())
            .collect();
        assert_eq!(got, ids, "{filter}={value}");
    }
    let p = ok(
        &f,
        &[("action", "GetClientsProducts"), ("limitstart", "1"), ("limitnum", "1")],
    )
    .await;
    assert_eq!(
        (
            &p["totalresults"],
            &p["startnumber"],
            &p["numreturned"],
            &p["products"]["product"][0]["id"]
        ),
        (&json!("3"), &json!(1), &json!(1), &json!(89))
    );

    let cur = ok(&f, &[("action", "GetCurrencies")]).await;
    assert_eq!(cur["totalresults"], 2);
    assert_eq!(
        cur["currencies"]["currency"][1],
        json!({"id": 2, "code": "EUR", "prefix": "€", "suffix": " EUR", "format": 1, "rate": "0.90000"})
    );
}

#[tokio::test]
async fn module_commands() {
    let f = fake().await;
    for (action, status) in [
        ("ModuleCreate", "Active"),
        ("ModuleSuspend", "Suspended"),
        ("ModuleUnsuspend", "Active"),
        ("ModuleChangePackage", "Active"),
        ("ModuleTerminate", "Terminated"),
    ] {
        let v = ok(
            &f,
            &[
                ("action", action),
                ("serviceid", "88"),
                ("suspendreason", "Credit limit"),
            ],
        )
        .await;
        assert_eq!(v, json!({"result": "success"}));
        assert_eq!(f.services()[0].status, status, "{action}");
    }
    ok(
        &f,
        &[
            ("action", "ModuleSuspend"),
            ("accountid", "89"),
            ("suspendreason", "Credit limit"),
        ],
    )
    .await;
    assert_eq!(
        (
            f.services()[1].status.as_str(),
            f.services()[1].suspensionreason.as_str()
        ),
        ("Suspended", "Credit limit")
    );
    assert_eq!(err(&f, &[("action", "ModuleSuspend")]).await, "Service ID is required");
    assert_eq!(
        err(&f, &[("action", "ModuleSuspend"), ("serviceid", "9")]).await,
        "Service ID not found"
    );
    assert_eq!(
        err(&f, &[("action", "ModuleSuspend"), ("serviceid", "90")]).await,
        "Service not assigned to a module"
    );

    // Scripted module failures: for every service, or for one.
    f.set_module_error("ModuleUnsuspend", Some("Trunk is locked"));
    assert_eq!(
        err(&f, &[("action", "ModuleUnsuspend"), ("serviceid", "89")]).await,
        "Trunk is locked"
    );
    assert_eq!(f.services()[1].status, "Suspended", "a failed command changes nothing");
    f.set_module_error("ModuleUnsuspend", None);
    f.seed(serde_json::from_value(json!({"module_errors": {"modulecreate:89": "No capacity"}})).unwrap());
    assert_eq!(
        err(&f, &[("action", "ModuleCreate"), ("serviceid", "89")]).await,
        "No capacity"
    );
    ok(&f, &[("action", "ModuleCreate"), ("serviceid", "88")]).await;

    let calls = f.module_calls();
    let names: Vec<_> = calls.iter().map(|c| (c.action.as_str(), c.serviceid)).collect();
    assert_eq!(
        names,
        vec![
            ("modulecreate", 88),
            ("modulesuspend", 88),
            ("moduleunsuspend", 88),
            ("modulechangepackage", 88),
            ("moduleterminate", 88),
            ("modulesuspend", 89),
            ("moduleunsuspend", 89),
            ("modulecreate", 89),
            ("modulecreate", 88),
        ]
    );
    assert_eq!(calls[0].params["secret"], "[redacted]");
    assert_eq!(calls[0].params["suspendreason"], "Credit limit");
}

#[tokio::test]
async fn gen_invoices_turns_billable_items_and_due_services_into_invoices() {
    let f = fake().await;
    let add = |description: &'static str, amount: &'static str, action: &'static str, due: &'static str| {
        let f = f.clone();
        async move {
            let mut p = with(
                ADD,
                &[
                    ("description", description),
                    ("amount", amount),
                    ("invoiceaction", action),
                ],
            );
            if !due.is_empty() {
                p.push(("duedate", due));
            }
            ok(&f, &p).await["billableid"].as_u64().unwrap()
        }
    };
    let a = add("Calls May [cdrate:li-1]", "1.00", "nextinvoice", "").await;
    let b = add("SMS May [cdrate:li-2]", "2.50", "nextcron", "").await;
    let c = add("Port-in fee", "10.00", "duedate", "2026-06-10").await;
    add("Not yet", "4.00", "duedate", "2026-09-01").await;
    add("Stays on the account", "7.00", "noinvoice", "").await;
    let mut recur = with(
        ADD,
        &[
            ("description", "DID rental"),
            ("amount", "3.00"),
            ("invoiceaction", "recur"),
        ],
    );
    recur.extend([
        ("recur", "1"),
        ("recurcycle", "Months"),
        ("recurfor", "2"),
        ("duedate", "2026-06-05"),
    ]);
    let d = ok(&f, &recur).await["billableid"].as_u64().unwrap();
    // Service 88 is due on the 10th (within the 14 days); 89 later.
    f.seed(Seed {
        services: vec![
            Service {
                nextduedate: "2026-06-10".into(),
                ..service(88, 17, 3, "pbx.example.net", "cdrate")
            },
            Service {
                nextduedate: "2026-08-01".into(),
                ..service(89, 17, 4, "fax.example.net", "cdrate")
            },
        ],
        ..Seed::default()
    });

    let v = ok(&f, &[("action", "GenInvoices"), ("clientid", "17")]).await;
    assert_eq!(v["numcreated"], 1);
    let id = v["latestinvoiceid"].as_u64().unwrap();
    let inv = ok(&f, &[("action", "GetInvoice"), ("invoiceid", &id.to_string())]).await;
    let lines: Vec<(String, u64, String, String)> = inv["items"]["item"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["type"].as_str().unwrap().to_owned(),
                l["relid"].as_u64().unwrap(),
                l["description"].as_str().unwrap().to_owned(),
                l["amount"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let line = |t: &str, relid, d: &str, a: &str| (t.to_owned(), relid, d.to_owned(), a.to_owned());
    assert_eq!(
        lines,
        vec![
            line(
                "Hosting",
                88,
                "VoIP Trunk - pbx.example.net (10/06/2026 - 09/07/2026)",
                "20.00"
            ),
            line("Item", a, "Calls May [cdrate:li-1]", "1.00"),
            line("Item", b, "SMS May [cdrate:li-2]", "2.50"),
            line("Item", c, "Port-in fee", "10.00"),
            line("Item", d, "DID rental", "3.00"),
        ]
    );
    assert_eq!(
        (&inv["total"], &inv["userid"], &inv["status"], &inv["duedate"]),
        (&json!("36.50"), &json!(17), &json!("Unpaid"), &json!("2026-06-01"))
    );
    assert_eq!(f.invoice(id).unwrap().source, "autogen");
    let counts: Vec<u64> = f.billable_items().iter().map(|i| i.invoicecount).collect();
    assert_eq!(counts, vec![1, 1, 1, 0, 0, 1]);
    assert_eq!(
        f.billable_items()[5].duedate,
        "2026-07-05",
        "a recurring item moves on a cycle"
    );
    assert_eq!(f.services()[0].nextinvoicedate, "2026-07-10");

    // Nothing is invoiced twice; the next cycles come when they are due.
    assert_eq!(
        ok(&f, &[("action", "GenInvoices"), ("clientid", "17")]).await,
        json!({"result": "success", "numcreated": 0, "latestinvoiceid": 0})
    );
    f.configure(|c| c.behaviour.today = Some("2026-06-27".into()));
    let v = ok(&f, &[("action", "GenInvoices")]).await;
    assert_eq!(
        v,
        json!({"result": "success", "numcreated": 1}),
        "no clientid, no latestinvoiceid"
    );
    let last = f.invoices().pop().unwrap();
    let kinds: Vec<_> = last.lines.iter().map(|l| (l.kind.as_str(), l.relid)).collect();
    assert_eq!(kinds, vec![("Hosting", 88), ("Item", d)]);
    assert_eq!(
        err(&f, &[("action", "GenInvoices"), ("clientid", "99")]).await,
        "Client ID Not Found"
    );

    // nextinvoice items can be made to wait for another line.
    f.configure(|c| c.behaviour.nextinvoice_waits_for_other_lines = true);
    ok(&f, &with(ADD, &[("clientid", "18")])).await;
    assert_eq!(
        ok(&f, &[("action", "GenInvoices"), ("clientid", "18")]).await["numcreated"],
        0
    );
    let mut cron = with(
        ADD,
        &[
            ("clientid", "18"),
            ("invoiceaction", "nextcron"),
            ("description", "Setup"),
        ],
    );
    cron.retain(|(k, _)| *k != "quantity");
    ok(&f, &cron).await;
    let v = ok(&f, &[("action", "GenInvoices"), ("clientid", "18")]).await;
    assert_eq!(
        f.invoice(v["latestinvoiceid"].as_u64().unwrap()).unwrap().lines.len(),
        2
    );
}

#[tokio::test]
async fn authentication_roles_and_the_envelope() {
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
                allowed_actions: Some(["GetInvoice".to_owned(), "getcurrencies".to_owned()].into()),
            },
        ],
        admins: vec![Admin {
            username: "admin".into(),
            password: "hunter2".into(),
        }],
        ..config()
    };
    let f = fake_with(config).await;
    let call = |body: &'static str| post_form(f.addr, body);
    let (s, v) = call("action=GetCurrencies&identifier=cdrate-test-identifier&secret=wrong&responsetype=json").await;
    assert_eq!(
        (s, v),
        (403, json!({"result": "error", "message": "Authentication Failed"}))
    );
    let (s, v) = call("action=GetCurrencies&responsetype=json").await;
    assert_eq!((s, &v["message"]), (403, &json!("Authentication Failed")));
    let (s, v) =
        call("action=GetCurrencies&username=cdrate-test-identifier&password=cdrate-test-secret&responsetype=json")
            .await;
    assert_eq!(
        (s, &v["result"]),
        (200, &json!("success")),
        "the credential pair in username/password"
    );
    // Legacy admin login: the MD5 hex of the password, not the password.
    let (s, v) =
        call("action=GetCurrencies&username=admin&password=2ab96390c7dbe3439de74d0c9b0b1767&responsetype=json").await;
    assert_eq!((s, &v["result"]), (200, &json!("success")));
    let (s, _) = call("action=GetCurrencies&username=admin&password=hunter2&responsetype=json").await;
    assert_eq!(s, 403);
    // Roles: matched ignoring case; the refusal echoes the action in lower case.
    let (s, v) = call("action=getinvoice&identifier=reader&secret=r&invoiceid=1&responsetype=json").await;
    assert_eq!((s, &v["message"]), (200, &json!("Invoice ID Not Found")));
    let (s, v) = call("action=GetInvoices&identifier=reader&secret=r&responsetype=json").await;
    assert_eq!(
        (s, v["message"].as_str()),
        (
            403,
            Some("Invalid Permissions: API action \"getinvoices\" is not allowed")
        )
    );
    // Dispatch ignores case; unknown actions are HTTP 200.
    let (s, v) =
        call("action=gEtCuRrEnCiEs&identifier=cdrate-test-identifier&secret=cdrate-test-secret&responsetype=json")
            .await;
    assert_eq!((s, &v["result"]), (200, &json!("success")));
    let (s, v) =
        call("action=NoSuchThing&identifier=cdrate-test-identifier&secret=cdrate-test-secret&responsetype=json").await;
    assert_eq!(
        (s, v),
        (200, json!({"result": "error", "message": "Command Not Found"}))
    );
    let (s, v) = call("identifier=cdrate-test-identifier&secret=cdrate-test-secret&responsetype=json").await;
    assert_eq!((s, &v["message"]), (200, &json!("Command Not Found")));
    // Only JSON; an omitted responsetype counts as JSON unless configured.
    let (_, v) =
        call("action=GetCurrencies&identifier=cdrate-test-identifier&secret=cdrate-test-secret&responsetype=xml").await;
    assert_eq!(v, json!({"result": "error", "message": "Unsupported response type"}));
    let (_, v) = call("action=GetCurrencies&identifier=cdrate-test-identifier&secret=cdrate-test-secret").await;
    assert_eq!(v["result"], "success");
    f.configure(|c| c.omitted_responsetype_is_json = false);
    let (_, v) = call("action=GetCurrencies&identifier=cdrate-test-identifier&secret=cdrate-test-secret").await;
    assert_eq!(v["message"], "Unsupported response type");
    // Configurable refusal statuses.
    f.configure(|c| {
        c.omitted_responsetype_is_json = true;
        c.auth_failure_status = 401;
        c.permission_failure_status = 200;
    });
    assert_eq!(
        call("action=GetCurrencies&identifier=x&secret=y&responsetype=json")
            .await
            .0,
        401
    );
    assert_eq!(
        call("action=GetInvoices&identifier=reader&secret=r&responsetype=json")
            .await
            .0,
        200
    );

    // Routing: POST /includes/api.php only.
    let body = "action=GetCurrencies&identifier=cdrate-test-identifier&secret=cdrate-test-secret&responsetype=json";
    assert_eq!(
        request(f.addr, "GET", "/includes/api.php", FORM, "").await.unwrap().0,
        404
    );
    assert_eq!(request(f.addr, "POST", "/api.php", FORM, body).await.unwrap().0, 404);
    assert_eq!(
        request(f.addr, "POST", "/includes/api.php?x=1", FORM, body)
            .await
            .unwrap()
            .0,
        200
    );
    // PHP reads no parameters from a body that is not form-encoded.
    let (s, text) = request(
        f.addr,
        "POST",
        "/includes/api.php",
        "application/json",
        r#"{"action":"GetCurrencies"}"#,
    )
    .await
    .unwrap();
    assert_eq!((s, text.contains("Authentication Failed")), (401, true));
}

#[tokio::test]
async fn ip_allow_list_access_key_and_check_order() {
    let config = FakeConfig {
        allowed_ips: Some(vec!["203.0.113.7".into()]),
        access_key: Some("k3y!(x)".into()),
        ..config()
    };
    let f = fake_with(config).await;
    let (s, v) = api(&f, &[("action", "GetCurrencies")]).await;
    assert_eq!(
        (s, v),
        (403, json!({"result": "error", "message": "Invalid IP 127.0.0.1"}))
    );
    let (s, v) = api(&f, &[("action", "GetCurrencies"), ("accesskey", "k3y!(x)")]).await;
    assert_eq!((s, &v["result"]), (200, &json!("success")));
    let (s, v) = api(&f, &[("action", "GetCurrencies"), ("accesskey", "wrong")]).await;
    assert_eq!((s, &v["message"]), (403, &json!("Invalid IP 127.0.0.1")));
    // Bad IP and bad credentials: the configured order decides.
    let bad = "action=GetCurrencies&identifier=x&secret=y&responsetype=json";
    assert_eq!(post_form(f.addr, bad).await.1["message"], "Invalid IP 127.0.0.1");
    f.configure(|c| {
        c.check_order = CheckOrder::CredentialsFirst;
        c.ip_failure_status = 401;
    });
    assert_eq!(post_form(f.addr, bad).await.1["message"], "Authentication Failed");
    assert_eq!(api(&f, &[("action", "GetCurrencies")]).await.0, 401);
    f.configure(|c| c.allowed_ips = Some(vec!["127.0.0.1".into()]));
    assert_eq!(api(&f, &[("action", "GetCurrencies")]).await.0, 200);
}

#[tokio::test]
async fn faults_spoil_answers_before_or_after_the_commit() {
    let f = fake().await;
    let fault = |kind, times| Fault {
        action: "addbillableitem".into(),
        fault: kind,
        times,
        delay_ms: 0,
    };
    let items = || f.billable_items().len();

    f.add_fault(fault(FaultKind::Http500, 1));
    let (s, v) = api(&f, ADD).await;
    assert_eq!((s, v.is_string()), (500, true), "an HTML page");
    assert_eq!(items(), 0, "nothing written");

    f.add_fault(fault(FaultKind::ForbiddenJson, 1));
    assert_eq!(
        api(&f, ADD).await,
        (403, json!({"result": "error", "message": "Invalid IP 127.0.0.1"}))
    );
    assert_eq!(items(), 0, "nothing written");

    f.add_fault(fault(FaultKind::HtmlBody, 1));
    let (s, v) = api(&f, ADD).await;
    assert!(s == 200 && v.as_str().is_some_and(|t| t.contains("<html>")), "{v}");
    assert_eq!(items(), 1, "written");

    f.add_fault(fault(FaultKind::TruncatedBody, 1));
    let (s, v) = api(&f, ADD).await;
    assert!(
        s == 200 && v.as_str().is_some_and(|t| t.starts_with('{')),
        "cut JSON does not parse: {v}"
    );
    assert_eq!(items(), 2, "written");

    f.add_fault(fault(FaultKind::DropAfterCommit, 1));
    let mut all = vec![("identifier", ID), ("secret", SECRET), ("responsetype", "json")];
    all.extend_from_slice(ADD);
    let body = encode(&all);
    assert_eq!(
        request(f.addr, "POST", "/includes/api.php", FORM, &body).await,
        None,
        "closed without an answer"
    );
    assert_eq!(items(), 3, "yet written");

    // A delay longer than the client waits: a timeout after the commit.
    f.add_fault(Fault {
        delay_ms: 400,
        ..fault(FaultKind::DelayMs, 1)
    });
    let late = tokio::time::timeout(Duration::from_millis(100), api(&f, ADD)).await;
    assert!(late.is_err(), "the client gave up");
    assert_eq!(items(), 4, "written before the answer");
    f.add_fault(Fault {
        delay_ms: 50,
        ..fault(FaultKind::DelayMs, 1)
    });
    assert_eq!(ok(&f, ADD).await["billableid"], 5, "a short delay answers normally");

    // Other actions are untouched; `*` matches them all; times counts down.
    f.add_fault(fault(FaultKind::Http500, 2));
    ok(&f, &[("action", "GetCurrencies")]).await;
    assert_eq!(api(&f, ADD).await.0, 500);
    assert_eq!(api(&f, ADD).await.0, 500);
    ok(&f, ADD).await;
    f.add_fault(Fault {
        action: "*".into(),
        ..fault(FaultKind::ForbiddenJson, 0)
    });
    for _ in 0..3 {
        assert_eq!(
            api(&f, &[("action", "GetCurrencies")]).await.0,
            403,
            "times 0: until cleared"
        );
    }
    assert_eq!(f.faults().len(), 1);
    f.clear_faults();
    ok(&f, &[("action", "GetCurrencies")]).await;

    // The request log shows what each fault did.
    let log: Vec<_> = f.requests().iter().map(|r| (r.status, r.fault)).collect();
    assert_eq!(
        log[..6].to_vec(),
        vec![
            (Some(500), Some(FaultKind::Http500)),
            (Some(403), Some(FaultKind::ForbiddenJson)),
            (Some(200), Some(FaultKind::HtmlBody)),
            (Some(200), Some(FaultKind::TruncatedBody)),
            (None, Some(FaultKind::DropAfterCommit)),
            (Some(200), Some(FaultKind::DelayMs)),
        ]
    );
}

#[tokio::test]
async fn faults_over_http() {
    let f = fake().await;
    let post = |path: &'static str, body: &'static str| request(f.addr, "POST", path, "application/json", body);
    let (s, _) = post(
        "/_fake/faults",
        r#"{"action": "AddBillableItem", "fault": "drop_after_commit"}"#,
    )
    .await
    .unwrap();
    assert_eq!(s, 200);
    let (s, _) = post(
        "/_fake/faults",
        r#"[{"action": "CreateInvoice", "fault": "delay_ms", "times": 2, "delay_ms": 10}, {"action": "*", "fault": "html_body"}]"#,
    )
    .await
    .unwrap();
    assert_eq!(s, 200);
    let (s, text) = post("/_fake/faults", r#"{"action": "x", "fault": "explode"}"#)
        .await
        .unwrap();
    assert_eq!(s, 400, "{text}");
    let (_, listed) = request(f.addr, "GET", "/_fake/faults", FORM, "").await.unwrap();
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 3);
    assert_eq!(
        listed[1],
        json!({"action": "CreateInvoice", "fault": "delay_ms", "times": 2, "delay_ms": 10})
    );
    assert_eq!(listed[0]["times"], 1, "times defaults to 1");

    let mut all = vec![("identifier", ID), ("secret", SECRET), ("responsetype", "json")];
    all.extend_from_slice(ADD);
    assert_eq!(
        request(f.addr, "POST", "/includes/api.php", FORM, &encode(&all)).await,
        None
    );
    assert_eq!(f.billable_items().len(), 1, "written, answer lost");
    assert_eq!(
        request(f.addr, "DELETE", "/_fake/faults", FORM, "").await.unwrap().0,
        200
    );
    assert!(f.faults().is_empty());
}

#[tokio::test]
async fn inspection_routes_and_redaction() {
    let config = FakeConfig {
        admins: vec![Admin {
            username: "admin".into(),
            password: "hunter2".into(),
        }],
        access_key: Some("the-access-key".into()),
        ..config()
    };
    let f = fake_with(config).await;
    let json_post = |path: &'static str, body: &'static str| request(f.addr, "POST", path, "application/json", body);
    let seed = r#"{"clients": [{"id": 40, "currency": 3, "currency_code": "GBP"}],
                   "services": [{"id": 400, "userid": 40, "module": "cdrate"}],
                   "invoices": [{"id": 7001, "userid": 40, "status": "Unpaid",
                                 "lines": [{"id": 70010, "type": "Hosting", "relid": 400, "description": "VoIP Trunk", "amount": "20.00", "taxed": false}]}]}"#;
    let (s, text) = json_post("/_fake/seed", seed).await.unwrap();
    assert_eq!(s, 200, "{text}");
    let (s, text) = json_post("/_fake/seed", r#"{"clients": [{"id": 1}], "bogus": 1}"#)
        .await
        .unwrap();
    assert_eq!(s, 400, "unknown seed keys are refused: {text}");
    // The next invoice id goes past the seeded one.
    assert_eq!(
        ok(&f, &[("action", "CreateInvoice"), ("userid", "40")]).await["invoiceid"],
        "7002"
    );

    let (s, state) = request(f.addr, "GET", "/_fake/state", FORM, "").await.unwrap();
    assert_eq!(s, 200);
    let state: Value = serde_json::from_str(&state).unwrap();
    assert_eq!(state["clients"]["40"]["currency_code"], "GBP");
    assert_eq!(state["services"]["400"]["status"], "Active");
    assert_eq!(state["invoices"]["7001"]["lines"][0]["relid"], 400);
    assert_eq!(state["invoices"]["7001"]["totals"]["total"], "20.00");
    assert_eq!(state, f.snapshot());

    // Credentials never show: not the secret, the MD5 password or the key.
    post_form(f.addr, "action=GetCurrencies&username=admin&password=2ab96390c7dbe3439de74d0c9b0b1767&accesskey=the-access-key&responsetype=json").await;
    let (_, log) = request(f.addr, "GET", "/_fake/requests", FORM, "").await.unwrap();
    for secret in [SECRET, "2ab96390c7dbe3439de74d0c9b0b1767", "the-access-key"] {
        assert!(!log.contains(secret), "{secret} leaked: {log}");
    }
    let log: Value = serde_json::from_str(&log).unwrap();
    let last = &log[1];
    assert_eq!(
        (&last["seq"], &last["action"], &last["params"]["username"]),
        (&json!(2), &json!("GetCurrencies"), &json!("admin"))
    );
    assert_eq!(
        (&last["params"]["password"], &last["params"]["accesskey"]),
        (&json!("[redacted]"), &json!("[redacted]"))
    );
    assert_eq!(log[0]["params"]["secret"], "[redacted]");
    assert_eq!(f.requests().len(), 2, "inspection calls are not logged");
    assert_eq!(
        request(f.addr, "DELETE", "/_fake/requests", FORM, "").await.unwrap().0,
        200
    );
    assert!(f.requests().is_empty());

    assert_eq!(request(f.addr, "GET", "/_fake/nothing", FORM, "").await.unwrap().0, 404);
    assert_eq!(json_post("/_fake/reset", "").await.unwrap().0, 200);
    let state = f.snapshot();
    assert!(state["clients"].as_object().unwrap().is_empty() && state["invoices"].as_object().unwrap().is_empty());
    assert_eq!(
        f.config().access_key.as_deref(),
        Some("the-access-key"),
        "reset keeps the config"
    );
}

#[tokio::test]
async fn http_edges() {
    let f = fake_with(FakeConfig {
        max_body_bytes: 1024,
        ..config()
    })
    .await;
    // curl's Expect: 100-continue is answered, then the body is read.
    let body = "action=GetCurrencies&identifier=cdrate-test-identifier&secret=cdrate-test-secret&responsetype=json";
    let mut s = TcpStream::connect(f.addr).await.unwrap();
    let head = format!(
        "POST /includes/api.php HTTP/1.1\r\nHost: x\r\nContent-Type: {FORM}\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut interim = [0u8; 25];
    s.read_exact(&mut interim).await.unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(body.as_bytes()).await.unwrap();
    let mut rest = String::new();
    s.read_to_string(&mut rest).await.unwrap();
    assert!(
        rest.starts_with("HTTP/1.1 200 OK\r\n") && rest.contains("Connection: close"),
        "{rest}"
    );
    // Bounded bodies.
    let big = "a=".to_owned() + &"x".repeat(2000);
    assert_eq!(
        request(f.addr, "POST", "/includes/api.php", FORM, &big)
            .await
            .unwrap()
            .0,
        413
    );
    let chunked = b"POST /includes/api.php HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    assert_eq!(exchange(f.addr, chunked).await.unwrap().0, 411);
    assert!(f.requests().len() == 1, "refused requests never reach the API");
    f.shutdown();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(TcpStream::connect(f.addr).await.is_err(), "shut down");
}

#[tokio::test]
async fn the_binary_prints_its_url_and_serves_the_seed() {
    use std::io::BufRead;
    let dir = std::env::temp_dir().join(format!("whmcs-fake-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let seed = dir.join("seed.json");
    std::fs::write(
        &seed,
        r#"{"clients": [{"id": 17, "currency": 2, "currency_code": "EUR"}]}"#,
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_whmcs-fake"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--identifier",
            "bin-id",
            "--secret",
            "bin-secret",
            "--today",
            TODAY,
        ])
        .arg("--seed")
        .arg(&seed)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let url = first.trim();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let addr: SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    let (s, v) = post_form(
        addr,
        "action=GetClientsDetails&identifier=bin-id&secret=bin-secret&clientid=17&responsetype=json",
    )
    .await;
    assert_eq!((s, &v["client"]["currency_code"]), (200, &json!("EUR")));
    let (s, _) = post_form(
        addr,
        &format!("action=GetCurrencies&identifier={ID}&secret={SECRET}&responsetype=json"),
    )
    .await;
    assert_eq!(s, 403, "the default credential is replaced");
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
