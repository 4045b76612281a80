//! The fake's in-memory WHMCS: clients, services, billable items and
//! invoices with auto-increment ids, and the actions of API.md §2 with
//! their documented parameters and exact error strings. Money is
//! `Decimal` and leaves as 2-decimal strings; some ids leave as strings,
//! as the docs' examples show.

use std::collections::BTreeMap;

use chrono::Utc;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::form::Form;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Client {
    pub id: u64,
    #[serde(default = "active")]
    pub status: String,
    #[serde(default = "one")]
    pub currency: u64,
    #[serde(default = "usd")]
    pub currency_code: String,
    #[serde(default)]
    pub credit: Decimal,
    #[serde(default)]
    pub taxexempt: bool,
    #[serde(default)]
    pub firstname: String,
    #[serde(default)]
    pub lastname: String,
    #[serde(default)]
    pub companyname: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub customfields: Vec<CustomField>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CustomField {
    pub id: u64,
    #[serde(default)]
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Service {
    pub id: u64,
    pub userid: u64,
    #[serde(default)]
    pub pid: u64,
    #[serde(default)]
    pub name: String,
    #[serde(default = "active")]
    pub status: String,
    #[serde(default)]
    pub domain: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub nextduedate: String,
    #[serde(default = "monthly")]
    pub billingcycle: String,
    #[serde(default)]
    pub recurringamount: Decimal,
    #[serde(default)]
    pub customfields: Vec<CustomField>,
    #[serde(default)]
    pub configoptions: Vec<Value>,
    /// The provisioning module; empty = none assigned.
    #[serde(default)]
    pub module: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BillableItem {
    pub id: u64,
    pub clientid: u64,
    pub description: String,
    pub amount: Decimal,
    pub unit: String,
    pub quantity: Decimal,
    pub invoiceaction: String,
    pub recur: u64,
    pub recurcycle: String,
    pub recurfor: u64,
    pub duedate: String,
    pub invoicecount: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Line {
    pub id: u64,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub relid: u64,
    pub description: String,
    pub amount: Decimal,
    #[serde(default)]
    pub taxed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Invoice {
    pub id: u64,
    pub userid: u64,
    #[serde(default = "unpaid")]
    pub status: String,
    #[serde(default = "today")]
    pub date: String,
    #[serde(default = "today")]
    pub duedate: String,
    #[serde(default)]
    pub notes: String,
    #[serde(default = "mailin")]
    pub paymentmethod: String,
    #[serde(default)]
    pub taxrate: Decimal,
    #[serde(default)]
    pub taxrate2: Decimal,
    #[serde(default)]
    pub lines: Vec<Line>,
}

fn active() -> String {
    "Active".into()
}
fn one() -> u64 {
    1
}
fn usd() -> String {
    "USD".into()
}
fn monthly() -> String {
    "Monthly".into()
}
fn unpaid() -> String {
    "Unpaid".into()
}
fn mailin() -> String {
    "mailin".into()
}
fn today() -> String {
    Utc::now().format("%Y-%m-%d").to_string()
}

/// Seed data (`POST /_fake/seed`, `--seed FILE`): added to the state;
/// ids given are kept, later auto-increment ids go past them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Seed {
    pub clients: Vec<Client>,
    pub services: Vec<Service>,
    pub invoices: Vec<Invoice>,
    /// Currencies `{id, code, prefix, suffix, format, rate}`; USD id 1 by default.
    pub currencies: Vec<Value>,
    /// `action (lower case) → error text` a Module* command returns.
    pub module_errors: BTreeMap<String, String>,
}

/// A Module* command the fake received.
#[derive(Debug, Clone, Serialize)]
pub struct ModuleCall {
    pub action: String,
    pub serviceid: u64,
    pub params: BTreeMap<String, String>,
}

#[derive(Debug, Default, Serialize)]
pub struct State {
    pub clients: BTreeMap<u64, Client>,
    pub services: BTreeMap<u64, Service>,
    pub billable_items: BTreeMap<u64, BillableItem>,
    pub invoices: BTreeMap<u64, Invoice>,
    pub currencies: Vec<Value>,
    pub module_calls: Vec<ModuleCall>,
    pub module_errors: BTreeMap<String, String>,
    next_billable: u64,
    next_invoice: u64,
    next_line: u64,
}

/// An action's answer: its JSON fields (without `result`) or an error text.
pub type ActionResult = Result<Map<String, Value>, String>;

fn money(d: Decimal) -> String {
    format!(
        "{:.2}",
        d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
    )
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn is_date(s: &str) -> bool {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
}

/// A money parameter; WHMCS's own validation of non-numeric amounts is
/// [unconfirmed], the fake refuses them so cdrate's bugs show.
fn amount(f: &Form, key: &str) -> Result<Decimal, String> {
    match f.get(key) {
        None => Ok(Decimal::ZERO),
        Some(s) => s.trim().parse().map_err(|_| format!("Invalid amount {s:?}")),
    }
}

fn id(f: &Form, key: &str) -> Option<u64> {
    f.get(key).and_then(|v| v.trim().parse().ok())
}

impl State {
    pub fn new() -> State {
        let mut s = State {
            next_billable: 1,
            next_invoice: 1,
            next_line: 1,
            ..State::default()
        };
        s.currencies =
            vec![json!({"id": 1, "code": "USD", "prefix": "$", "suffix": " USD", "format": 1, "rate": "1.00000"})];
        s
    }

    pub fn seed(&mut self, seed: Seed) {
        for c in seed.clients {
            self.clients.insert(c.id, c);
        }
        for s in seed.services {
            self.services.insert(s.id, s);
        }
        for i in seed.invoices {
            self.next_invoice = self.next_invoice.max(i.id + 1);
            for l in &i.lines {
                self.next_line = self.next_line.max(l.id + 1);
            }
            self.invoices.insert(i.id, i);
        }
        if !seed.currencies.is_empty() {
            self.currencies = seed.currencies;
        }
        self.module_errors.extend(seed.module_errors);
    }

    /// Runs `action` (already lower-cased). `None`: no such command.
    pub fn dispatch(&mut self, action: &str, f: &Form, quirk_status: bool) -> Option<ActionResult> {
        Some(match action {
            "addbillableitem" => self.add_billable_item(f),
            "createinvoice" => self.create_invoice(f),
            "updateinvoice" => self.update_invoice(f),
            "getinvoice" => self.get_invoice(f),
            "getinvoices" => self.get_invoices(f),
            "getclientsdetails" => self.get_clients_details(f),
            "getclientsproducts" => self.get_clients_products(f),
            "getcurrencies" => Ok(obj(json!({
                "totalresults": self.currencies.len(),
                "currencies": {"currency": self.currencies},
            }))),
            "geninvoices" => self.gen_invoices(f),
            "modulecreate" | "modulesuspend" | "moduleunsuspend" | "moduleterminate" | "modulechangepackage" => {
                self.module(action, f)
            }
            _ => return None,
        })
        .map(|r| {
            // The docs' AddBillableItem example answers with `status`.
            if quirk_status && action == "addbillableitem" {
                r.map(|mut m| {
                    m.insert("__status_quirk".into(), Value::Bool(true));
                    m
                })
            } else {
                r
            }
        })
    }

    fn add_billable_item(&mut self, f: &Form) -> ActionResult {
        let clientid = id(f, "clientid").filter(|c| self.clients.contains_key(c));
        let Some(clientid) = clientid else {
            return Err("Client ID not Found".into());
        };
        let Some(description) = f.get("description") else {
            return Err("You must provide a description".into());
        };
        let invoiceaction = f.get("invoiceaction").unwrap_or("noinvoice");
        if !["noinvoice", "nextcron", "nextinvoice", "duedate", "recur"].contains(&invoiceaction) {
            return Err("Invalid Invoice Action".into());
        }
        let unit = match f.get("unit") {
            Some(u @ ("hours" | "quantity")) => u,
            _ => return Err("Invalid Unit, please specify either 'hours' or 'quantity'".into()),
        };
        let (recur, recurcycle, recurfor) = (id(f, "recur"), f.get("recurcycle"), id(f, "recurfor"));
        if invoiceaction == "recur" && (recur.is_none() || recurcycle.is_none() || recurfor.is_none()) {
            return Err("Recurring must have a unit, cycle and limit".into());
        }
        let duedate = f.get("duedate").unwrap_or("");
        if ["duedate", "recur"].contains(&invoiceaction) && duedate.is_empty() {
            return Err("Due date is required".into());
        }
        if !duedate.is_empty() && !is_date(duedate) {
            return Err("Invalid Date Format - Expected: 'YYYY-mm-dd'".into());
        }
        let quantity = match f.get("quantity").or(f.get("hours")) {
            None => Decimal::ZERO,
            Some(q) => q.trim().parse().map_err(|_| format!("Invalid quantity {q:?}"))?,
        };
        let item = BillableItem {
            id: self.next_billable,
            clientid,
            description: description.to_owned(),
            amount: amount(f, "amount")?,
            unit: unit.to_owned(),
            quantity,
            invoiceaction: invoiceaction.to_owned(),
            recur: recur.unwrap_or(0),
            recurcycle: recurcycle.unwrap_or("").to_owned(),
            recurfor: recurfor.unwrap_or(0),
            duedate: duedate.to_owned(),
            invoicecount: 0,
        };
        self.next_billable += 1;
        let billableid = item.id;
        self.billable_items.insert(item.id, item);
        Ok(obj(json!({"billableid": billableid})))
    }

    fn new_invoice(&mut self, userid: u64, status: &str, notes: &str) -> u64 {
        let id = self.next_invoice;
        self.next_invoice += 1;
        self.invoices.insert(
            id,
            Invoice {
                id,
                userid,
                status: status.to_owned(),
                date: today(),
                duedate: today(),
                notes: notes.to_owned(),
                paymentmethod: mailin(),
                taxrate: Decimal::ZERO,
                taxrate2: Decimal::ZERO,
                lines: Vec::new(),
            },
        );
        id
    }

    fn add_line(&mut self, invoice: u64, kind: &str, relid: u64, description: &str, amount: Decimal, taxed: bool) {
        let line = Line {
            id: self.next_line,
            kind: kind.to_owned(),
            relid,
            description: description.to_owned(),
            amount,
            taxed,
        };
        self.next_line += 1;
        if let Some(inv) = self.invoices.get_mut(&invoice) {
            inv.lines.push(line);
        }
    }

    fn create_invoice(&mut self, f: &Form) -> ActionResult {
        let Some(userid) = id(f, "userid").filter(|c| self.clients.contains_key(c)) else {
            return Err("Client ID Not Found".into());
        };
        if f.flag("draft") && f.flag("sendinvoice") {
            return Err(
                "Cannot create and send a draft invoice in a single API request. Please create and send separately."
                    .into(),
            );
        }
        // Validate every line before writing anything.
        let mut lines = Vec::new();
        for n in 1.. {
            let Some(description) = f.get(&format!("itemdescription{n}")) else {
                break;
            };
            lines.push((
                description.to_owned(),
                amount(f, &format!("itemamount{n}"))?,
                f.flag(&format!("itemtaxed{n}")),
            ));
        }
        let status = if f.flag("draft") {
            "Draft"
        } else {
            f.get("status").unwrap_or("Unpaid")
        };
        let id = self.new_invoice(userid, status, f.get("notes").unwrap_or(""));
        if let Some(inv) = self.invoices.get_mut(&id) {
            if let Some(d) = f.get("date") {
                inv.date = d.to_owned();
            }
            if let Some(d) = f.get("duedate") {
                inv.duedate = d.to_owned();
            }
            if let Some(p) = f.get("paymentmethod") {
                inv.paymentmethod = p.to_owned();
            }
            inv.taxrate = amount(f, "taxrate")?;
            inv.taxrate2 = amount(f, "taxrate2")?;
        }
        for (description, amount, taxed) in lines {
            self.add_line(id, "", 0, &description, amount, taxed);
        }
        // The docs' example returns the id as a string.
        Ok(obj(json!({"invoiceid": id.to_string(), "status": status})))
    }

    fn update_invoice(&mut self, f: &Form) -> ActionResult {
        let Some(invoiceid) = id(f, "invoiceid").filter(|i| self.invoices.contains_key(i)) else {
            return Err("Invoice ID Not Found".into());
        };
        const STATUSES: &[&str] = &[
            "Draft",
            "Unpaid",
            "Paid",
            "Cancelled",
            "Refunded",
            "Collections",
            "Payment Pending",
        ];
        if let Some(s) = f.get("status") {
            if !STATUSES.contains(&s) {
                return Err(format!("Invalid status {s}"));
            }
        }
        let (descs, amounts, taxed) = (f.array("itemdescription"), f.array("itemamount"), f.array("itemtaxed"));
        let find = |list: &[(String, String)], k: &str| list.iter().find(|(i, _)| i == k).map(|(_, v)| v.clone());
        let mut edits = Vec::new();
        for (line, description) in descs {
            match (find(amounts, line), find(taxed, line)) {
                (Some(a), Some(t)) => edits.push((line.clone(), description.clone(), a, t)),
                _ => {
                    return Err(
                        "Missing Variables: itemdescription, itemamount and itemtaxed are required for each item being changed"
                            .into(),
                    )
                }
            }
        }
        let publish = f.flag("publish") || f.flag("publishandsendemail");
        if publish && self.invoices.get(&invoiceid).is_some_and(|i| i.status != "Draft") {
            return Err("Invoice must be in Draft status to be published".into());
        }
        let mut new_lines = Vec::new();
        for (index, description) in f.array("newitemdescription") {
            let a = find(f.array("newitemamount"), index).unwrap_or_default();
            let a: Decimal = if a.is_empty() {
                Decimal::ZERO
            } else {
                a.trim().parse().map_err(|_| format!("Invalid amount {a:?}"))?
            };
            let t = find(f.array("newitemtaxed"), index).is_some_and(|t| t == "1" || t == "true");
            new_lines.push((description.clone(), a, t));
        }
        let mut parsed_edits = Vec::new();
        for (line, description, a, t) in edits {
            let a: Decimal = a.trim().parse().map_err(|_| format!("Invalid amount {a:?}"))?;
            parsed_edits.push((line, description, a, t == "1" || t == "true"));
        }
        for (description, a, t) in new_lines {
            self.add_line(invoiceid, "", 0, &description, a, t);
        }
        let deletions: Vec<u64> = f
            .array("deletelineids")
            .iter()
            .filter_map(|(_, v)| v.parse().ok())
            .collect();
        if let Some(inv) = self.invoices.get_mut(&invoiceid) {
            for (line, description, a, t) in parsed_edits {
                if let Some(l) = inv.lines.iter_mut().find(|l| l.id.to_string() == line) {
                    l.description = description;
                    l.amount = a;
                    l.taxed = t;
                }
            }
            inv.lines.retain(|l| !deletions.contains(&l.id));
            if let Some(s) = f.get("status") {
                inv.status = s.to_owned();
            }
            if publish {
                inv.status = "Unpaid".into();
            }
            if let Some(n) = f.scalars.get("notes") {
                inv.notes = n.clone();
            }
        }
        Ok(obj(json!({"invoiceid": invoiceid})))
    }

    fn totals(inv: &Invoice, taxexempt: bool) -> (Decimal, Decimal, Decimal, Decimal) {
        let subtotal: Decimal = inv.lines.iter().map(|l| l.amount).sum();
        let taxable: Decimal = inv.lines.iter().filter(|l| l.taxed).map(|l| l.amount).sum();
        let (tax, tax2) = if taxexempt {
            (Decimal::ZERO, Decimal::ZERO)
        } else {
            (
                taxable * inv.taxrate / Decimal::ONE_HUNDRED,
                taxable * inv.taxrate2 / Decimal::ONE_HUNDRED,
            )
        };
        (subtotal, tax, tax2, subtotal + tax + tax2)
    }

    fn get_invoice(&self, f: &Form) -> ActionResult {
        let Some(inv) = id(f, "invoiceid").and_then(|i| self.invoices.get(&i)) else {
            return Err("Invoice ID Not Found".into());
        };
        let exempt = self.clients.get(&inv.userid).is_some_and(|c| c.taxexempt);
        let (subtotal, tax, tax2, total) = Self::totals(inv, exempt);
        let items: Vec<Value> = inv
            .lines
            .iter()
            .map(|l| json!({"id": l.id, "type": l.kind, "relid": l.relid, "description": l.description, "amount": money(l.amount), "taxed": u8::from(l.taxed)}))
            .collect();
        Ok(obj(json!({
            "invoiceid": inv.id, "invoicenum": "", "userid": inv.userid, "date": inv.date, "duedate": inv.duedate,
            "datepaid": "0000-00-00 00:00:00", "lastcaptureattempt": "0000-00-00 00:00:00",
            "subtotal": money(subtotal), "credit": "0.00", "tax": money(tax), "tax2": money(tax2),
            "total": money(total), "balance": money(total), "taxrate": format!("{:.3}", inv.taxrate),
            "taxrate2": format!("{:.3}", inv.taxrate2), "status": inv.status, "paymentmethod": inv.paymentmethod,
            "notes": inv.notes, "ccgateway": false, "items": {"item": items}, "transactions": "",
        })))
    }

    fn get_invoices(&self, f: &Form) -> ActionResult {
        let start = id(f, "limitstart").unwrap_or(0) as usize;
        let limit = id(f, "limitnum").unwrap_or(25) as usize;
        let mut list: Vec<&Invoice> = self
            .invoices
            .values()
            .filter(|i| id(f, "userid").is_none_or(|u| i.userid == u))
            .filter(|i| f.get("status").is_none_or(|s| i.status == s))
            .collect();
        let desc = f.get("order").is_some_and(|o| o.eq_ignore_ascii_case("desc"));
        match f.get("orderby").unwrap_or("id") {
            "date" => list.sort_by(|a, b| (&a.date, a.id).cmp(&(&b.date, b.id))),
            "duedate" => list.sort_by(|a, b| (&a.duedate, a.id).cmp(&(&b.duedate, b.id))),
            "status" => list.sort_by(|a, b| (&a.status, a.id).cmp(&(&b.status, b.id))),
            _ => list.sort_by_key(|i| i.id),
        }
        if desc {
            list.reverse();
        }
        let total = list.len();
        let page: Vec<Value> = list
            .into_iter()
            .skip(start)
            .take(limit)
            .map(|inv| {
                let client = self.clients.get(&inv.userid);
                let exempt = client.is_some_and(|c| c.taxexempt);
                let (subtotal, tax, tax2, total) = Self::totals(inv, exempt);
                json!({
                    "id": inv.id, "userid": inv.userid,
                    "firstname": client.map_or("", |c| c.firstname.as_str()),
                    "lastname": client.map_or("", |c| c.lastname.as_str()),
                    "companyname": client.map_or("", |c| c.companyname.as_str()),
                    "invoicenum": "", "date": inv.date, "duedate": inv.duedate,
                    "datepaid": "0000-00-00 00:00:00", "last_capture_attempt": "0000-00-00 00:00:00",
                    "date_refunded": "0000-00-00 00:00:00", "date_cancelled": "0000-00-00 00:00:00",
                    "subtotal": money(subtotal), "credit": "0.00", "tax": money(tax), "tax2": money(tax2),
                    "total": money(total), "taxrate": format!("{:.3}", inv.taxrate), "taxrate2": format!("{:.3}", inv.taxrate2),
                    "status": inv.status, "paymentmethod": inv.paymentmethod, "paymethodid": null, "notes": inv.notes,
                    "created_at": inv.date, "updated_at": inv.date,
                    "currencycode": client.map_or("USD", |c| c.currency_code.as_str()),
                    "currencyprefix": "", "currencysuffix": "",
                })
            })
            .collect();
        Ok(obj(json!({
            "totalresults": total, "startnumber": start, "numreturned": page.len(),
            "invoices": {"invoice": page},
        })))
    }

    fn get_clients_details(&self, f: &Form) -> ActionResult {
        let client = match (id(f, "clientid"), f.get("email")) {
            (Some(c), _) => self.clients.get(&c),
            (None, Some(e)) => self.clients.values().find(|c| c.email.eq_ignore_ascii_case(e)),
            (None, None) => return Err("Either clientid Or email Is Required".into()),
        };
        let Some(c) = client else {
            return Err("Client Not Found".into());
        };
        let fields: Vec<Value> = c
            .customfields
            .iter()
            .map(|f| json!({"id": f.id, "value": f.value}))
            .collect();
        let client = json!({
            "id": c.id, "userid": c.id, "client_id": c.id, "firstname": c.firstname, "lastname": c.lastname,
            "companyname": c.companyname, "email": c.email, "status": c.status, "currency": c.currency,
            "currency_code": c.currency_code, "credit": money(c.credit), "taxexempt": c.taxexempt, "groupid": 0,
            "customfields": fields,
        });
        // The deprecated top-level copy of the client fields.
        let mut out = obj(client.clone());
        out.insert("client".into(), client);
        Ok(out)
    }

    fn get_clients_products(&self, f: &Form) -> ActionResult {
        let start = id(f, "limitstart").unwrap_or(0) as usize;
        let limit = id(f, "limitnum").unwrap_or(25) as usize;
        let list: Vec<&Service> = self
            .services
            .values()
            .filter(|s| id(f, "clientid").is_none_or(|c| s.userid == c))
            .filter(|s| id(f, "serviceid").is_none_or(|i| s.id == i))
            .filter(|s| id(f, "pid").is_none_or(|p| s.pid == p))
            .filter(|s| f.get("domain").is_none_or(|d| s.domain == d))
            .filter(|s| f.get("username2").is_none_or(|u| s.username == u))
            .collect();
        let page: Vec<Value> = list
            .iter()
            .skip(start)
            .take(limit)
            .map(|s| {
                let fields: Vec<Value> = s
                    .customfields
                    .iter()
                    .map(|c| json!({"id": c.id, "name": c.name, "translated_name": c.name, "value": c.value}))
                    .collect();
                json!({
                    "id": s.id, "qty": 1, "clientid": s.userid, "orderid": 0, "ordernumber": "", "pid": s.pid,
                    "regdate": "", "name": s.name, "translated_name": s.name, "groupname": "", "translated_groupname": "",
                    "domain": s.domain, "dedicatedip": "", "serverid": 0, "servername": "", "serverip": "",
                    "serverhostname": "", "suspensionreason": "", "firstpaymentamount": money(s.recurringamount),
                    "recurringamount": money(s.recurringamount), "paymentmethod": "mailin", "paymentmethodname": "Mail In Payment",
                    "billingcycle": s.billingcycle, "nextduedate": if s.nextduedate.is_empty() { "0000-00-00" } else { s.nextduedate.as_str() },
                    "status": s.status, "username": s.username, "password": "", "subscriptionid": "", "promoid": 0,
                    "overideautosuspend": "", "overidesuspenduntil": "0000-00-00", "ns1": "", "ns2": "",
                    "assignedips": "", "notes": "", "diskusage": 0, "disklimit": 0, "bwusage": 0, "bwlimit": 0,
                    "lastupdate": "0000-00-00 00:00:00",
                    "customfields": {"customfield": fields},
                    "configoptions": {"configoption": s.configoptions},
                })
            })
            .collect();
        Ok(obj(json!({
            "clientid": id(f, "clientid"), "serviceid": id(f, "serviceid"), "pid": id(f, "pid"),
            "domain": f.get("domain"), "totalresults": list.len(), "startnumber": start,
            "numreturned": page.len(), "products": {"product": page},
        })))
    }

    /// Invoices the client's (or every client's) billable items that are
    /// due (nextcron, nextinvoice, duedate) and not invoiced yet: one
    /// invoice per client, a line per item (`type` Item, `relid` = item id).
    fn gen_invoices(&mut self, f: &Form) -> ActionResult {
        let only = id(f, "clientid");
        let mut by_client: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for item in self.billable_items.values() {
            let due =
                ["nextcron", "nextinvoice", "duedate"].contains(&item.invoiceaction.as_str()) && item.invoicecount == 0;
            if due && only.is_none_or(|c| c == item.clientid) {
                by_client.entry(item.clientid).or_default().push(item.id);
            }
        }
        let mut created = 0;
        let mut latest = None;
        for (client, items) in by_client {
            let invoice = self.new_invoice(client, "Unpaid", "");
            for item_id in items {
                if let Some(item) = self.billable_items.get(&item_id).cloned() {
                    self.add_line(invoice, "Item", item.id, &item.description, item.amount, true);
                    if let Some(i) = self.billable_items.get_mut(&item_id) {
                        i.invoicecount += 1;
                    }
                }
            }
            created += 1;
            latest = Some(invoice);
        }
        let mut out = obj(json!({"numcreated": created}));
        if only.is_some() {
            out.insert("latestinvoiceid".into(), json!(latest.unwrap_or(0)));
        }
        Ok(out)
    }

    fn module(&mut self, action: &str, f: &Form) -> ActionResult {
        let Some(serviceid) = id(f, "serviceid").or_else(|| id(f, "accountid")) else {
            return Err("Service ID is required".into());
        };
        let Some(service) = self.services.get_mut(&serviceid) else {
            return Err("Service ID not found".into());
        };
        if service.module.is_empty() {
            return Err("Service not assigned to a module".into());
        }
        self.module_calls.push(ModuleCall {
            action: action.to_owned(),
            serviceid,
            params: f.scalars.clone(),
        });
        if let Some(e) = self.module_errors.get(action) {
            return Err(e.clone());
        }
        service.status = match action {
            "modulecreate" | "moduleunsuspend" => "Active".into(),
            "modulesuspend" => "Suspended".into(),
            "moduleterminate" => "Terminated".into(),
            _ => service.status.clone(),
        };
        Ok(Map::new())
    }
}
