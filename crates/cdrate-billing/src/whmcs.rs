//! The pure half of the WHMCS External API client (`../shared/whmcs/API.md`):
//! request parameters, form encoding, and judging answers.
//!
//! WHMCS's envelope is loose (API.md §1.4, §1.6): the outcome is `result`,
//! or `status` when `result` is missing; errors come back with HTTP 200;
//! ids are numbers or strings; money is strings. [`classify`] turns any
//! answer into one of three outcomes, and the third matters most: for a
//! write, a 5xx, a timeout or an unreadable body means the item *may* have
//! been created, and it must be reconciled, never blindly sent again.

use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Map, Value};

use crate::BillingError;

/// What a WHMCS call came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// 2xx and `result` (or `status`) is `success`; the whole answer.
    Success(Map<String, Value>),
    /// WHMCS answered and did not do it (or was never reached).
    Failed { message: String },
    /// Nobody can tell whether it was done.
    Ambiguous { reason: String },
}

/// `application/x-www-form-urlencoded` body; PHP bracket keys
/// (`newitemamount[0]`) are percent-encoded like any other key, which PHP
/// decodes before parsing brackets.
pub fn encode_form(params: &[(String, String)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    s.finish()
}

/// Judges an answer by its parsed body, never by the status alone.
pub fn classify(status: u16, body: &[u8]) -> Outcome {
    let object = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    };
    let Some(m) = object else {
        // An HTML error page or a cut-off body: from a 4xx (an IP filter,
        // a WAF) nothing was done; from a 2xx or 5xx it may have been.
        return if (400..500).contains(&status) {
            Outcome::Failed {
                message: format!("HTTP {status} without a JSON answer"),
            }
        } else {
            Outcome::Ambiguous {
                reason: format!("HTTP {status}: the answer is not a JSON object"),
            }
        };
    };
    if status >= 500 {
        return Outcome::Ambiguous {
            reason: format!("HTTP {status}: {}", message_of(&m)),
        };
    }
    let outcome = m.get("result").or_else(|| m.get("status")).and_then(Value::as_str);
    if (200..300).contains(&status) && outcome == Some("success") {
        Outcome::Success(m)
    } else {
        Outcome::Failed {
            message: message_of(&m),
        }
    }
}

fn message_of(m: &Map<String, Value>) -> String {
    for key in ["message", "warning"] {
        if let Some(Value::String(s)) = m.get(key) {
            return s.clone();
        }
    }
    "WHMCS did not report success".to_owned()
}

/// An id that WHMCS sends as a number or a numeric string.
pub fn id_of(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Money as WHMCS sends it (a string, sometimes a number), read exactly:
/// a JSON number is taken from its text, never through a float.
pub fn money_of(v: &Value) -> Option<Decimal> {
    match v {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.to_string().parse().ok(),
        _ => None,
    }
}

/// The entries of a wrapped list (`{"invoice": [...]}`): accepts `""`,
/// null, a missing key, `{}`, an empty or full list, and a single object.
pub fn list_of<'v>(wrapper: Option<&'v Value>, key: &str) -> Vec<&'v Value> {
    match wrapper.and_then(|w| w.get(key)) {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(obj @ Value::Object(_)) => vec![obj],
        _ => Vec::new(),
    }
}

/// `^-?\d+\.\d{2}$`, rounded half away from zero: what WHMCS money
/// parameters accept (API.md §6.1).
pub fn format_amount(amount: Decimal) -> Result<String, BillingError> {
    let r = amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    let s = format!("{r:.2}");
    let digits = s.strip_prefix('-').unwrap_or(&s);
    match digits.split_once('.') {
        Some((int, frac)) if !int.is_empty() && int.bytes().all(|b| b.is_ascii_digit()) && frac.len() == 2 => Ok(s),
        _ => Err(BillingError::BadAmount(amount.to_string())),
    }
}

fn param(k: &str, v: impl ToString) -> (String, String) {
    (k.to_owned(), v.to_string())
}

/// AddBillableItem: `unit=quantity`, `quantity=1`, `amount` = the total,
/// so both readings of `amount` give the same line (API.md §2.1).
pub fn add_billable_item(
    client_id: u64,
    description: &str,
    amount: Decimal,
    invoice_action: &str,
) -> Result<Vec<(String, String)>, BillingError> {
    Ok(vec![
        param("clientid", client_id),
        param("description", description),
        param("amount", format_amount(amount)?),
        param("unit", "quantity"),
        param("quantity", 1),
        param("invoiceaction", invoice_action),
    ])
}

/// CreateInvoice with one taxed line per `(description, amount)` and the
/// items' tags in `notes`, so reconciliation can find it.
pub fn create_invoice(
    user_id: u64,
    lines: &[(String, Decimal)],
    notes: &str,
) -> Result<Vec<(String, String)>, BillingError> {
    let mut p = vec![param("userid", user_id), param("notes", notes)];
    for (n, (description, amount)) in lines.iter().enumerate() {
        let n = n + 1;
        p.push(param(&format!("itemdescription{n}"), description));
        p.push(param(&format!("itemamount{n}"), format_amount(*amount)?));
        p.push(param(&format!("itemtaxed{n}"), 1));
    }
    Ok(p)
}

/// GetInvoices of one client, newest first, one page.
pub fn get_invoices(user_id: u64, start: u64, limit: u64) -> Vec<(String, String)> {
    vec![
        param("userid", user_id),
        param("limitstart", start),
        param("limitnum", limit),
        param("orderby", "id"),
        param("order", "desc"),
    ]
}

/// Where the next page starts, if the answer says there is one (API.md §6.3).
pub fn next_page_start(page: &Map<String, Value>) -> Option<u64> {
    let start = page.get("startnumber").and_then(id_of).unwrap_or(0);
    let returned = page.get("numreturned").and_then(id_of)?;
    let total = page.get("totalresults").and_then(id_of)?;
    (returned > 0 && start + returned < total).then_some(start + returned)
}

/// An invoice as GetInvoices lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceSummary {
    pub id: u64,
    pub userid: Option<u64>,
    pub status: String,
    pub notes: String,
    pub currencycode: String,
}

impl InvoiceSummary {
    pub fn list_from_response(page: &Map<String, Value>) -> Vec<InvoiceSummary> {
        list_of(page.get("invoices"), "invoice")
            .into_iter()
            .filter_map(|v| {
                Some(InvoiceSummary {
                    id: v.get("id").and_then(id_of)?,
                    userid: v.get("userid").and_then(id_of),
                    status: str_of(v, "status"),
                    notes: str_of(v, "notes"),
                    currencycode: str_of(v, "currencycode"),
                })
            })
            .collect()
    }
}

/// One line of an invoice (GetInvoice `items.item[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceLine {
    pub id: Option<u64>,
    pub kind: String,
    pub relid: Option<u64>,
    pub description: String,
    pub amount: Option<Decimal>,
}

/// An invoice as GetInvoice returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    pub id: u64,
    pub userid: Option<u64>,
    pub status: String,
    pub notes: String,
    pub lines: Vec<InvoiceLine>,
}

impl Invoice {
    pub fn from_response(body: &Map<String, Value>) -> Option<Invoice> {
        let v = Value::Object(body.clone());
        Some(Invoice {
            id: body.get("invoiceid").and_then(id_of)?,
            userid: body.get("userid").and_then(id_of),
            status: str_of(&v, "status"),
            notes: str_of(&v, "notes"),
            lines: list_of(body.get("items"), "item")
                .into_iter()
                .map(|l| InvoiceLine {
                    id: l.get("id").and_then(id_of),
                    kind: str_of(l, "type"),
                    relid: l.get("relid").and_then(id_of),
                    description: str_of(l, "description"),
                    amount: l.get("amount").and_then(money_of),
                })
                .collect(),
        })
    }
}

/// What cdrate reads of a client (GetClientsDetails).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientDetails {
    pub id: Option<u64>,
    pub currency_code: String,
    pub status: String,
}

impl ClientDetails {
    /// Reads `client`, falling back to the deprecated top-level copy.
    pub fn from_response(body: &Map<String, Value>) -> Option<ClientDetails> {
        let top = Value::Object(body.clone());
        let client = body.get("client").filter(|c| c.is_object()).unwrap_or(&top);
        let currency_code = str_of(client, "currency_code");
        if currency_code.is_empty() {
            return None;
        }
        Some(ClientDetails {
            id: client.get("id").or_else(|| client.get("userid")).and_then(id_of),
            currency_code,
            status: str_of(client, "status"),
        })
    }
}

fn str_of(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn outcome(status: u16, body: &str) -> Outcome {
        classify(status, body.as_bytes())
    }

    #[test]
    fn envelope_rules() {
        assert!(matches!(
            outcome(200, r#"{"result":"success","billableid":311}"#),
            Outcome::Success(_)
        ));
        // The docs' own AddBillableItem example uses `status`.
        assert!(matches!(
            outcome(200, r#"{"status":"success","billableid":1}"#),
            Outcome::Success(_)
        ));
        assert_eq!(
            outcome(200, r#"{"result":"error","message":"Client ID not Found"}"#),
            Outcome::Failed {
                message: "Client ID not Found".into()
            }
        );
        // A warning and no outcome: the operation did not happen.
        assert_eq!(
            outcome(200, r#"{"warning":"Something went wrong"}"#),
            Outcome::Failed {
                message: "Something went wrong".into()
            }
        );
        assert!(matches!(
            outcome(403, r#"{"result":"error","message":"Invalid IP 203.0.113.7"}"#),
            Outcome::Failed { .. }
        ));
        assert!(matches!(outcome(403, "<html>Forbidden</html>"), Outcome::Failed { .. }));
        // Success claimed with a 5xx, an HTML 200, a cut body: unknown.
        assert!(matches!(
            outcome(500, r#"{"result":"success"}"#),
            Outcome::Ambiguous { .. }
        ));
        assert!(matches!(
            outcome(200, "<html>maintenance</html>"),
            Outcome::Ambiguous { .. }
        ));
        assert!(matches!(outcome(200, r#"{"result":"succ"#), Outcome::Ambiguous { .. }));
        assert!(matches!(outcome(502, ""), Outcome::Ambiguous { .. }));
        assert!(matches!(outcome(200, r#"["success"]"#), Outcome::Ambiguous { .. }));
    }

    #[test]
    fn lenient_values() {
        assert_eq!(id_of(&serde_json::json!(1043)), Some(1043));
        assert_eq!(id_of(&serde_json::json!("1043")), Some(1043));
        assert_eq!(id_of(&serde_json::json!("x")), None);
        assert_eq!(money_of(&serde_json::json!("15.95")), Decimal::from_str("15.95").ok());
        assert_eq!(money_of(&serde_json::json!(0.1)), Decimal::from_str("0.1").ok());
        for empty in [r#""""#, "null", "{}", r#"{"invoice":[]}"#] {
            let v: Value = serde_json::from_str(empty).unwrap();
            assert!(list_of(Some(&v), "invoice").is_empty(), "{empty}");
        }
        assert!(list_of(None, "invoice").is_empty());
        let one: Value = serde_json::from_str(r#"{"invoice":{"id":1}}"#).unwrap();
        assert_eq!(list_of(Some(&one), "invoice").len(), 1);
    }

    #[test]
    fn amounts_have_two_decimals() {
        for (input, want) in [
            ("12.37", "12.37"),
            ("0.005", "0.01"),
            ("-0.005", "-0.01"),
            ("7", "7.00"),
            ("1234567.891", "1234567.89"),
        ] {
            assert_eq!(format_amount(Decimal::from_str(input).unwrap()).unwrap(), want);
        }
    }

    #[test]
    fn requests() {
        let p = add_billable_item(
            17,
            "Calls [cdrate:li-1]",
            Decimal::from_str("12.374").unwrap(),
            "nextinvoice",
        )
        .unwrap();
        let body = encode_form(&p);
        assert_eq!(
            body,
            "clientid=17&description=Calls+%5Bcdrate%3Ali-1%5D&amount=12.37&unit=quantity&quantity=1&invoiceaction=nextinvoice"
        );
        let p = create_invoice(17, &[("A".into(), Decimal::ONE), ("B".into(), Decimal::TWO)], "n").unwrap();
        assert!(encode_form(&p).contains("itemdescription2=B&itemamount2=2.00&itemtaxed2=1"));
    }

    #[test]
    fn invoices_and_clients_from_the_docs_examples() {
        let inv: Map<String, Value> = serde_json::from_str(
            r#"{"result":"success","invoiceid":1042,"userid":17,"status":"Unpaid","notes":"",
               "items":{"item":[{"id":5001,"type":"Hosting","relid":88,"description":"VoIP Trunk","amount":"20.00","taxed":0},
                                {"id":5002,"type":"","relid":0,"description":"Calls May 2025 [cdrate:b-91]","amount":"12.37","taxed":1}]},
               "transactions":""}"#,
        )
        .unwrap();
        let invoice = Invoice::from_response(&inv).unwrap();
        assert_eq!(invoice.id, 1042);
        assert_eq!(invoice.lines[0].relid, Some(88));
        assert_eq!(crate::find_tag(&invoice.lines[1].description), Some("b-91"));
        let page: Map<String, Value> = serde_json::from_str(
            r#"{"result":"success","totalresults":"60","startnumber":0,"numreturned":25,
               "invoices":{"invoice":[{"id":"1043","userid":17,"status":"Unpaid","notes":"x","currencycode":"USD"}]}}"#,
        )
        .unwrap();
        assert_eq!(InvoiceSummary::list_from_response(&page)[0].id, 1043);
        assert_eq!(next_page_start(&page), Some(25));
        let client: Map<String, Value> = serde_json::from_str(
            r#"{"result":"success","client":{"id":17,"status":"Active","currency":2,"currency_code":"EUR"}}"#,
        )
        .unwrap();
        assert_eq!(ClientDetails::from_response(&client).unwrap().currency_code, "EUR");
    }

    proptest! {
        #[test]
        fn classify_never_panics(status in 0u16..1000, body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = classify(status, &body);
        }
    }
}
