//! The API actions cdrate uses (API.md §2, §7.8) over the [`State`]: their
//! documented parameters, required-field checks and exact error strings,
//! and answers in the documented shapes (§1.7, with the [`Quirks`]).
//! Every action validates everything before it writes anything, so an
//! error answer never leaves a partial write behind.

use std::collections::BTreeMap;

use chrono::{Days, Months, NaiveDate};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};

use crate::config::{Behaviour, Quirks};
use crate::form::{truthy, Form};
use crate::state::{cents, no_datetime, Client, Invoice, Line, ModuleCall, State};

/// An action's answer: its fields (without `result`) or the error message.
pub type ActionResult = Result<Map<String, Value>, String>;

/// What an action may consult besides the state.
pub(crate) struct Ctx<'a> {
    pub behaviour: &'a Behaviour,
    pub quirks: &'a Quirks,
    pub today: NaiveDate,
}

/// Invoice statuses (API.md §2.5).
const STATUSES: &[&str] = &[
    "Draft",
    "Unpaid",
    "Paid",
    "Cancelled",
    "Refunded",
    "Collections",
    "Payment Pending",
];

/// Request parameters whose values never reach the inspection routes.
pub(crate) const SECRET_PARAMS: &[&str] = &["secret", "password", "accesskey"];

/// Runs `action` (any case). `None`: no such command.
pub(crate) fn dispatch(state: &mut State, action: &str, f: &Form, ctx: &Ctx) -> Option<ActionResult> {
    let action = action.to_ascii_lowercase();
    Some(match action.as_str() {
        "addbillableitem" => add_billable_item(state, f, ctx),
        "createinvoice" => create_invoice(state, f, ctx),
        "updateinvoice" => update_invoice(state, f, ctx),
        "getinvoice" => get_invoice(state, f, ctx),
        "getinvoices" => get_invoices(state, f, ctx),
        "getclientsdetails" => get_clients_details(state, f, ctx),
        "getclientsproducts" => get_clients_products(state, f, ctx),
        "getcurrencies" => Ok(get_currencies(state, ctx)),
        "geninvoices" => gen_invoices(state, f, ctx),
        "modulecreate" | "modulesuspend" | "moduleunsuspend" | "moduleterminate" | "modulechangepackage" => {
            module_command(state, &action, f)
        }
        _ => return None,
    })
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

impl Ctx<'_> {
    /// Money as WHMCS prints it: a 2-decimal string (or a number, quirk off).
    fn money(&self, d: Decimal) -> Value {
        self.decimal(cents(d), 2)
    }

    /// A tax rate: 3 decimals, as WHMCS's `decimal(10,3)` column.
    fn rate(&self, d: Decimal) -> Value {
        self.decimal(d, 3)
    }

    fn decimal(&self, d: Decimal, places: usize) -> Value {
        if self.quirks.money_as_strings {
            Value::String(format!("{d:.places$}"))
        } else {
            d.to_f64()
                .and_then(serde_json::Number::from_f64)
                .map_or(Value::Null, Value::Number)
        }
    }

    /// A money-like parameter: `None` when absent or empty. What PHP's
    /// `is_numeric` accepts is taken (`12.37`, ` 5`, `1e3`); anything else
    /// (thousands separators, decimal commas, currency symbols, hex) is
    /// refused, or counts as 0 with `reject_invalid_amounts` off.
    /// `[unconfirmed]` WHMCS's handling; the message is the fake's own.
    fn decimal_param(&self, name: &str, value: Option<&str>) -> Result<Option<Decimal>, String> {
        let Some(v) = value.filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        match php_numeric(v) {
            Some(d) => Ok(Some(d)),
            None if !self.behaviour.reject_invalid_amounts => Ok(Some(Decimal::ZERO)),
            None => Err(format!("Invalid {name} '{v}'")),
        }
    }
}

/// A decimal number written as PHP 8's `is_numeric` accepts it: optional
/// surrounding whitespace and sign, digits with an optional `.`, an
/// optional exponent. `None` for anything else, or beyond `Decimal`'s range.
fn php_numeric(s: &str) -> Option<Decimal> {
    let t = s.trim_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(i) => (&unsigned[..i], Some(&unsigned[i + 1..])),
        None => (unsigned, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
        return None;
    }
    let exp: i64 = match exponent {
        None => 0,
        Some(e) => {
            let e_digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if e_digits.is_empty() || !digits(e_digits) {
                return None;
            }
            e.parse().ok()?
        }
    };
    if exp.unsigned_abs() > 40 {
        return None;
    }
    // Keeps the scale as written (`0.80` stays `0.80`).
    let sign = if t.starts_with('-') { "-" } else { "" };
    let int = if int.is_empty() { "0" } else { int };
    let plain = if frac.is_empty() {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    };
    let mut d: Decimal = plain.parse().ok()?;
    for _ in 0..exp.unsigned_abs() {
        d = if exp > 0 {
            d.checked_mul(Decimal::TEN)?
        } else {
            d.checked_div(Decimal::TEN)?
        };
    }
    Some(d)
}

/// An integer id parameter; anything else counts as not given.
fn id(f: &Form, key: &str) -> Option<u64> {
    f.get(key).and_then(|v| v.trim().parse().ok())
}

/// `YYYY-mm-dd`, strictly.
fn parse_date(s: &str) -> Option<NaiveDate> {
    if s.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// A date parameter in a documented format; `None` when absent.
fn date_param(f: &Form, key: &str) -> Result<Option<NaiveDate>, String> {
    match f.get(key) {
        None => Ok(None),
        Some(s) => parse_date(s)
            .map(Some)
            .ok_or_else(|| "Invalid Date Format - Expected: 'YYYY-mm-dd'".to_owned()),
    }
}

// ---------------------------------------------------------------------------
// AddBillableItem (API.md §2.1)

fn add_billable_item(state: &mut State, f: &Form, ctx: &Ctx) -> ActionResult {
    let Some(clientid) = id(f, "clientid").filter(|c| state.clients.contains_key(c)) else {
        return Err("Client ID not Found".into());
    };
    let Some(description) = f.get("description") else {
        return Err("You must provide a description".into());
    };
    let invoiceaction = f
        .get("invoiceaction")
        .unwrap_or(ctx.behaviour.default_invoiceaction.as_str())
        .to_owned();
    if !["noinvoice", "nextcron", "nextinvoice", "duedate", "recur"].contains(&invoiceaction.as_str()) {
        return Err("Invalid Invoice Action".into());
    }
    let unit = match f.get("unit") {
        Some(u @ ("hours" | "quantity")) => u,
        None if !ctx.behaviour.require_unit => "quantity",
        _ => return Err("Invalid Unit, please specify either 'hours' or 'quantity'".into()),
    };
    let recur = id(f, "recur").filter(|r| *r > 0);
    let recurcycle = f
        .get("recurcycle")
        .filter(|c| ["Days", "Weeks", "Months", "Years"].contains(c));
    // `0` is accepted (an older wiki revision: 0 = indefinitely). [unconfirmed]
    let recurfor = id(f, "recurfor");
    if invoiceaction == "recur" && (recur.is_none() || recurcycle.is_none() || recurfor.is_none()) {
        return Err("Recurring must have a unit, cycle and limit".into());
    }
    if ["duedate", "recur"].contains(&invoiceaction.as_str()) && f.get("duedate").is_none() {
        return Err("Due date is required".into());
    }
    let duedate = date_param(f, "duedate")?;
    let amount = ctx.decimal_param("amount", f.raw("amount"))?.unwrap_or_default();
    // `hours` is the pre-8.2 name of `quantity`; both default to 0.
    let quantity = match f.get("quantity") {
        Some(q) => ctx.decimal_param("quantity", Some(q))?,
        None => ctx.decimal_param("hours", f.raw("hours"))?,
    }
    .unwrap_or_default();
    let id = state.next_billable_id();
    state.billable_items.insert(
        id,
        crate::state::BillableItem {
            id,
            clientid,
            description: description.to_owned(),
            amount: cents(amount),
            unit: unit.to_owned(),
            quantity,
            invoiceaction,
            recur: recur.unwrap_or(0),
            recurcycle: recurcycle.unwrap_or("").to_owned(),
            recurfor: recurfor.unwrap_or(0),
            duedate: duedate.map(|d| d.to_string()).unwrap_or_default(),
            invoicecount: 0,
        },
    );
    Ok(obj(json!({ "billableid": id })))
}

// ---------------------------------------------------------------------------
// CreateInvoice (API.md §2.2)

fn create_invoice(state: &mut State, f: &Form, ctx: &Ctx) -> ActionResult {
    let Some(userid) = id(f, "userid").filter(|c| state.clients.contains_key(c)) else {
        return Err("Client ID Not Found".into());
    };
    let draft = f.flag("draft");
    if draft && f.flag("sendinvoice") {
        return Err(
            "Cannot create and send a draft invoice in a single API request. Please create and send separately.".into(),
        );
    }
    // itemdescriptionN / itemamountN / itemtaxedN, in N order; gaps allowed.
    let mut numbered: Vec<(u64, &str)> = f
        .scalars
        .iter()
        .filter_map(|(k, v)| {
            let n = k.strip_prefix("itemdescription")?.parse().ok()?;
            Some((n, v.as_str())).filter(|(_, v)| !v.is_empty())
        })
        .collect();
    numbered.sort_by_key(|(n, _)| *n);
    let mut lines = Vec::new();
    for (n, description) in numbered {
        let key = format!("itemamount{n}");
        let amount = ctx.decimal_param(&key, f.raw(&key))?.unwrap_or_default();
        lines.push((description, amount, f.flag(&format!("itemtaxed{n}"))));
    }
    let taxrate = ctx.decimal_param("taxrate", f.raw("taxrate"))?;
    let taxrate2 = ctx.decimal_param("taxrate2", f.raw("taxrate2"))?;
    let status = if draft {
        "Draft"
    } else {
        f.get("status").unwrap_or("Unpaid")
    };
    let date = f.get("date").map_or_else(|| ctx.today.to_string(), str::to_owned);
    let invoiceid = state.new_invoice(Invoice {
        id: 0,
        userid,
        invoicenum: String::new(),
        status: status.to_owned(),
        // Without `duedate`, due on the invoice date (WHMCS applies a
        // configured number of days, which the fake does not model). [unconfirmed]
        duedate: f.get("duedate").map_or_else(|| date.clone(), str::to_owned),
        date,
        datepaid: no_datetime(),
        notes: f.raw("notes").unwrap_or_default().to_owned(),
        paymentmethod: f.get("paymentmethod").unwrap_or("mailin").to_owned(),
        taxrate: taxrate.unwrap_or(ctx.behaviour.default_taxrate),
        taxrate2: taxrate2.unwrap_or(ctx.behaviour.default_taxrate2),
        credit: Decimal::ZERO,
        lines: Vec::new(),
        source: "api".into(),
    });
    let lines: Vec<Line> = lines
        .into_iter()
        .map(|(d, a, t)| state.new_line("", 0, d, a, t))
        .collect();
    let exempt = state.taxexempt(userid);
    if let Some(inv) = state.invoices.get_mut(&invoiceid) {
        inv.lines = lines;
        if f.flag("autoapplycredit") {
            if let Some(client) = state.clients.get_mut(&userid) {
                let apply = client.credit.min(inv.totals(exempt).total).max(Decimal::ZERO);
                client.credit -= apply;
                inv.credit += apply;
            }
        }
    }
    // The docs' example answers the id as a string.
    let invoiceid = if ctx.quirks.create_invoice_id_as_string {
        json!(invoiceid.to_string())
    } else {
        json!(invoiceid)
    };
    Ok(obj(json!({ "invoiceid": invoiceid, "status": status })))
}

// ---------------------------------------------------------------------------
// UpdateInvoice (API.md §2.3)

fn update_invoice(state: &mut State, f: &Form, ctx: &Ctx) -> ActionResult {
    let Some(invoiceid) = id(f, "invoiceid").filter(|i| state.invoices.contains_key(i)) else {
        return Err("Invoice ID Not Found".into());
    };
    if let Some(s) = f.get("status") {
        if !STATUSES.contains(&s) {
            return Err(format!("Invalid status {s}"));
        }
    }
    // Edits of existing lines: each needs its amount and taxed flag.
    let empty = Default::default();
    let descriptions = f.array("itemdescription").unwrap_or(&empty);
    let amounts = f.array("itemamount").unwrap_or(&empty);
    let taxed = f.array("itemtaxed").unwrap_or(&empty);
    let mut edits = Vec::new();
    for (line, description) in descriptions.iter() {
        let (Some(amount), Some(t)) = (amounts.get(line), taxed.get(line)) else {
            return Err(
                "Missing Variables: itemdescription, itemamount and itemtaxed are required for each item being changed"
                    .into(),
            );
        };
        let amount = ctx
            .decimal_param(&format!("itemamount[{line}]"), Some(amount))?
            .unwrap_or_default();
        edits.push((line.to_owned(), description.to_owned(), amount, truthy(Some(t))));
    }
    let publish = f.flag("publish") || f.flag("publishandsendemail");
    if publish && state.invoices.get(&invoiceid).is_some_and(|i| i.status != "Draft") {
        return Err("Invoice must be in Draft status to be published".into());
    }
    let mut new_lines = Vec::new();
    if let Some(list) = f.array("newitemdescription") {
        let new_amounts = f.array("newitemamount");
        let new_taxed = f.array("newitemtaxed");
        for (i, description) in list.iter() {
            let key = format!("newitemamount[{i}]");
            let amount = ctx
                .decimal_param(&key, new_amounts.and_then(|a| a.get(i)))?
                .unwrap_or_default();
            new_lines.push((description, amount, truthy(new_taxed.and_then(|t| t.get(i)))));
        }
    }
    let taxrate = ctx.decimal_param("taxrate", f.raw("taxrate"))?;
    let taxrate2 = ctx.decimal_param("taxrate2", f.raw("taxrate2"))?;
    let credit = ctx.decimal_param("credit", f.raw("credit"))?;
    let deletions: Vec<u64> = f
        .array("deletelineids")
        .map(|a| a.iter().filter_map(|(_, v)| v.trim().parse().ok()).collect())
        .unwrap_or_default();

    let new_lines: Vec<Line> = new_lines
        .into_iter()
        .map(|(d, a, t)| state.new_line("", 0, d, a, t))
        .collect();
    let Some(inv) = state.invoices.get_mut(&invoiceid) else {
        return Err("Invoice ID Not Found".into());
    };
    for (line, description, amount, taxed) in edits {
        // A line id of another invoice is ignored without an error. [unconfirmed]
        if let Some(l) = inv.lines.iter_mut().find(|l| l.id.to_string() == line) {
            l.description = description;
            l.amount = cents(amount);
            l.taxed = taxed;
        }
    }
    inv.lines.extend(new_lines);
    inv.lines.retain(|l| !deletions.contains(&l.id));
    if let Some(s) = f.get("status") {
        inv.status = s.to_owned();
        if s == "Paid" && f.get("datepaid").is_none() && inv.datepaid == no_datetime() {
            inv.datepaid = format!("{} 00:00:00", ctx.today);
        }
    }
    if publish {
        inv.status = "Unpaid".into();
    }
    if let Some(p) = f.get("paymentmethod") {
        inv.paymentmethod = p.to_owned();
    }
    if let Some(r) = taxrate {
        inv.taxrate = r;
    }
    if let Some(r) = taxrate2 {
        inv.taxrate2 = r;
    }
    if let Some(c) = credit {
        inv.credit = cents(c);
    }
    if let Some(d) = f.get("date") {
        inv.date = d.to_owned();
    }
    if let Some(d) = f.get("duedate") {
        inv.duedate = d.to_owned();
    }
    if let Some(d) = f.get("datepaid") {
        inv.datepaid = format!("{d} 00:00:00");
    }
    // `notes=` (empty) clears the notes.
    if let Some(n) = f.raw("notes") {
        inv.notes = n.to_owned();
    }
    Ok(obj(json!({ "invoiceid": invoiceid })))
}

// ---------------------------------------------------------------------------
// GetInvoice / GetInvoices (API.md §2.4, §2.5)

fn get_invoice(state: &State, f: &Form, ctx: &Ctx) -> ActionResult {
    let Some(inv) = id(f, "invoiceid").and_then(|i| state.invoices.get(&i)) else {
        return Err("Invoice ID Not Found".into());
    };
    let t = inv.totals(state.taxexempt(inv.userid));
    let items: Vec<Value> = inv
        .lines
        .iter()
        .map(|l| {
            json!({
                "id": l.id, "type": l.kind, "relid": l.relid, "description": l.description,
                "amount": ctx.money(l.amount), "taxed": u8::from(l.taxed),
            })
        })
        .collect();
    let transactions = if ctx.quirks.empty_transactions_as_string {
        json!("")
    } else {
        json!({ "transaction": [] })
    };
    Ok(obj(json!({
        "invoiceid": inv.id,
        "invoicenum": inv.invoicenum,
        "userid": inv.userid,
        "date": inv.date,
        "duedate": inv.duedate,
        "datepaid": inv.datepaid,
        "lastcaptureattempt": "0000-00-00 00:00:00",
        "subtotal": ctx.money(t.subtotal),
        "credit": ctx.money(t.credit),
        "tax": ctx.money(t.tax),
        "tax2": ctx.money(t.tax2),
        "total": ctx.money(t.total),
        "balance": ctx.money(t.balance),
        "taxrate": ctx.rate(inv.taxrate),
        "taxrate2": ctx.rate(inv.taxrate2),
        "status": inv.status,
        "paymentmethod": inv.paymentmethod,
        "notes": inv.notes,
        "ccgateway": false,
        "items": { "item": items },
        "transactions": transactions,
    })))
}

/// `limitstart` / `limitnum` (default 25; API.md §6.3).
fn page_bounds(f: &Form) -> (usize, usize) {
    let start = id(f, "limitstart").unwrap_or(0);
    let limit = id(f, "limitnum").filter(|n| *n > 0).unwrap_or(25);
    (
        usize::try_from(start).unwrap_or(usize::MAX),
        usize::try_from(limit).unwrap_or(usize::MAX),
    )
}

fn get_invoices(state: &State, f: &Form, ctx: &Ctx) -> ActionResult {
    let (start, limit) = page_bounds(f);
    let today = ctx.today.to_string();
    let userid = id(f, "userid");
    let status = f.get("status");
    let mut list: Vec<(&Invoice, Decimal)> = state
        .invoices
        .values()
        .filter(|i| userid.is_none_or(|u| i.userid == u))
        .filter(|i| match status {
            None => true,
            // Overdue: unpaid and past its due date.
            Some("Overdue") => i.status == "Unpaid" && i.duedate < today,
            Some(s) => i.status == s,
        })
        .map(|i| (i, i.totals(state.taxexempt(i.userid)).total))
        .collect();
    // Ties (and unknown `orderby` values) fall back to the id.
    match f.get("orderby").unwrap_or("id") {
        "invoicenumber" => list.sort_by(|a, b| (&a.0.invoicenum, a.0.id).cmp(&(&b.0.invoicenum, b.0.id))),
        "date" => list.sort_by(|a, b| (&a.0.date, a.0.id).cmp(&(&b.0.date, b.0.id))),
        "duedate" => list.sort_by(|a, b| (&a.0.duedate, a.0.id).cmp(&(&b.0.duedate, b.0.id))),
        "total" => list.sort_by_key(|a| (a.1, a.0.id)),
        "status" => list.sort_by(|a, b| (&a.0.status, a.0.id).cmp(&(&b.0.status, b.0.id))),
        _ => list.sort_by_key(|(i, _)| i.id),
    }
    if f.get("order").is_some_and(|o| o.eq_ignore_ascii_case("desc")) {
        list.reverse();
    }
    let total = list.len();
    let page: Vec<Value> = list
        .into_iter()
        .skip(start)
        .take(limit)
        .map(|(inv, _)| {
            let client = state.clients.get(&inv.userid);
            let currency = state.currency_of(client);
            let t = inv.totals(client.is_some_and(|c| c.taxexempt));
            let name = |f: fn(&Client) -> &str| client.map_or("", f);
            json!({
                "id": inv.id,
                "userid": inv.userid,
                "firstname": name(|c| &c.firstname),
                "lastname": name(|c| &c.lastname),
                "companyname": name(|c| &c.companyname),
                "invoicenum": inv.invoicenum,
                "date": inv.date,
                "duedate": inv.duedate,
                "datepaid": inv.datepaid,
                "last_capture_attempt": "0000-00-00 00:00:00",
                "date_refunded": "0000-00-00 00:00:00",
                "date_cancelled": "0000-00-00 00:00:00",
                "subtotal": ctx.money(t.subtotal),
                "credit": ctx.money(t.credit),
                "tax": ctx.money(t.tax),
                "tax2": ctx.money(t.tax2),
                "total": ctx.money(t.total),
                "taxrate": ctx.rate(inv.taxrate),
                "taxrate2": ctx.rate(inv.taxrate2),
                "status": inv.status,
                "paymentmethod": inv.paymentmethod,
                "paymethodid": null,
                "notes": inv.notes,
                "created_at": format!("{} 00:00:00", inv.date),
                "updated_at": format!("{} 00:00:00", inv.date),
                // The client's currency; no action takes one (API.md §6.1).
                "currencycode": client.map_or_else(
                    || currency.map_or("", |c| c.code.as_str()),
                    |c| c.currency_code.as_str(),
                ),
                "currencyprefix": currency.map_or("", |c| c.prefix.as_str()),
                "currencysuffix": currency.map_or("", |c| c.suffix.as_str()),
            })
        })
        .collect();
    Ok(obj(json!({
        "totalresults": total,
        "startnumber": start,
        "numreturned": page.len(),
        "invoices": { "invoice": page },
    })))
}

// ---------------------------------------------------------------------------
// GetClientsDetails (API.md §2.6)

fn get_clients_details(state: &State, f: &Form, ctx: &Ctx) -> ActionResult {
    let client = match (f.get("clientid"), f.get("email")) {
        (Some(c), _) => c.trim().parse().ok().and_then(|c: u64| state.clients.get(&c)),
        (None, Some(e)) => state.clients.values().find(|c| c.email.eq_ignore_ascii_case(e)),
        (None, None) => return Err("Either clientid Or email Is Required".into()),
    };
    let Some(c) = client else {
        return Err("Client Not Found".into());
    };
    let fields: Vec<Value> = c
        .customfields
        .iter()
        .map(|f| json!({ "id": f.id, "value": f.value }))
        .collect();
    let details = json!({
        "id": c.id, "userid": c.id, "client_id": c.id,
        "firstname": c.firstname, "lastname": c.lastname,
        "fullname": format!("{} {}", c.firstname, c.lastname).trim(),
        "companyname": c.companyname, "email": c.email,
        "status": c.status,
        "currency": c.currency, "currency_code": c.currency_code,
        "credit": ctx.money(c.credit),
        "taxexempt": c.taxexempt,
        "groupid": 0,
        "customfields": fields,
    });
    // The deprecated top-level copy of the client's fields, then `client`.
    let mut out = obj(details.clone());
    out.insert("client".into(), details);
    if f.flag("stats") {
        let (mut unpaid, mut unpaid_sum, mut paid, mut paid_sum) = (0u64, Decimal::ZERO, 0u64, Decimal::ZERO);
        for inv in state.invoices.values().filter(|i| i.userid == c.id) {
            let t = inv.totals(c.taxexempt);
            match inv.status.as_str() {
                "Unpaid" => (unpaid, unpaid_sum) = (unpaid + 1, unpaid_sum + t.balance),
                "Paid" => (paid, paid_sum) = (paid + 1, paid_sum + t.total),
                _ => {}
            }
        }
        let currency = state.currency_of(Some(c));
        // Stats amounts carry the currency, e.g. `$5.00 USD`.
        let priced = |d: Decimal| {
            let (p, s) = currency.map_or(("", ""), |c| (c.prefix.as_str(), c.suffix.as_str()));
            format!("{p}{:.2}{s}", cents(d))
        };
        out.insert(
            "stats".into(),
            json!({
                "numunpaidinvoices": unpaid, "unpaidinvoicesamount": priced(unpaid_sum),
                "numpaidinvoices": paid, "paidinvoicesamount": priced(paid_sum),
                "creditbalance": priced(c.credit),
            }),
        );
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// GetClientsProducts (API.md §2.7)

fn get_clients_products(state: &State, f: &Form, ctx: &Ctx) -> ActionResult {
    let (start, limit) = page_bounds(f);
    let (clientid, serviceid, pid) = (id(f, "clientid"), id(f, "serviceid"), id(f, "pid"));
    let (domain, username) = (f.get("domain"), f.get("username2"));
    let list: Vec<_> = state
        .services
        .values()
        .filter(|s| clientid.is_none_or(|c| s.userid == c))
        .filter(|s| serviceid.is_none_or(|i| s.id == i))
        .filter(|s| pid.is_none_or(|p| s.pid == p))
        .filter(|s| domain.is_none_or(|d| s.domain == d))
        .filter(|s| username.is_none_or(|u| s.username == u))
        .collect();
    let date_or_zero = |d: &str| {
        if d.is_empty() {
            "0000-00-00".to_owned()
        } else {
            d.to_owned()
        }
    };
    let page: Vec<Value> = list
        .iter()
        .skip(start)
        .take(limit)
        .map(|s| {
            // {id, name, value} as open-source consumers read them; whether
            // WHMCS adds `translated_name` is [unconfirmed].
            let fields: Vec<Value> = s
                .customfields
                .iter()
                .map(|c| json!({ "id": c.id, "name": c.name, "translated_name": c.name, "value": c.value }))
                .collect();
            let options: Vec<Value> = s
                .configoptions
                .iter()
                .map(|o| json!({ "id": o.id, "option": o.option, "type": o.kind, "value": o.value }))
                .collect();
            // Two literals: one would exceed json!'s macro recursion limit.
            let mut product = obj(json!({
                "id": s.id, "qty": 1, "clientid": s.userid, "orderid": 0, "ordernumber": "",
                "pid": s.pid, "regdate": "0000-00-00", "name": s.name, "translated_name": s.name,
                "groupname": "", "translated_groupname": "", "domain": s.domain, "dedicatedip": "",
                "serverid": 0, "servername": "", "serverip": "", "serverhostname": "",
                "suspensionreason": s.suspensionreason,
            }));
            product.extend(obj(json!({
                "firstpaymentamount": ctx.money(s.recurringamount),
                "recurringamount": ctx.money(s.recurringamount),
                "paymentmethod": "mailin", "paymentmethodname": "Mail In Payment",
                "billingcycle": s.billingcycle, "nextduedate": date_or_zero(&s.nextduedate),
                "status": s.status, "username": s.username, "password": "", "subscriptionid": "",
                "promoid": 0, "overideautosuspend": "", "overidesuspenduntil": "0000-00-00",
                "ns1": "", "ns2": "", "assignedips": "", "notes": "",
                "diskusage": 0, "disklimit": 0, "bwusage": 0, "bwlimit": 0,
                "lastupdate": "0000-00-00 00:00:00",
                "customfields": { "customfield": fields },
                "configoptions": { "configoption": options },
            })));
            Value::Object(product)
        })
        .collect();
    let totalresults = if ctx.quirks.products_totalresults_as_string {
        json!(list.len().to_string())
    } else {
        json!(list.len())
    };
    Ok(obj(json!({
        // Echoes of the filters as sent, null when not given.
        "clientid": f.get("clientid"),
        "serviceid": f.get("serviceid"),
        "pid": f.get("pid"),
        "domain": domain,
        "totalresults": totalresults,
        "startnumber": start,
        "numreturned": page.len(),
        "products": { "product": page },
    })))
}

// ---------------------------------------------------------------------------
// GetCurrencies (API.md §2.9; the JSON nesting is inferred)

fn get_currencies(state: &State, ctx: &Ctx) -> Map<String, Value> {
    let list: Vec<Value> = state
        .currencies
        .iter()
        .map(|c| {
            json!({
                "id": c.id, "code": c.code, "prefix": c.prefix, "suffix": c.suffix,
                "format": c.format, "rate": ctx.decimal(c.rate, 5),
            })
        })
        .collect();
    obj(json!({ "totalresults": list.len(), "currencies": { "currency": list } }))
}

// ---------------------------------------------------------------------------
// GenInvoices (API.md §2.9, §7.8)

/// What invoicing a line changes afterwards.
enum Effect {
    Item { id: u64, next_due: Option<NaiveDate> },
    Service { id: u64, next_invoice: NaiveDate },
}

struct Pending {
    kind: &'static str,
    relid: u64,
    description: String,
    amount: Decimal,
    taxed: bool,
    due: NaiveDate,
    /// A `nextinvoice` item, which may wait for other lines.
    rides_along: bool,
    effect: Effect,
}

fn add_period(d: NaiveDate, n: u64, unit: &str) -> Option<NaiveDate> {
    let n32 = u32::try_from(n).ok()?;
    match unit {
        "Days" => d.checked_add_days(Days::new(n)),
        "Weeks" => d.checked_add_days(Days::new(n.checked_mul(7)?)),
        "Months" => d.checked_add_months(Months::new(n32)),
        "Years" => d.checked_add_months(Months::new(n32.checked_mul(12)?)),
        _ => None,
    }
}

/// Months per WHMCS billing cycle; `None` for cycles that do not recur.
fn cycle_months(cycle: &str) -> Option<u32> {
    Some(match cycle {
        "Monthly" => 1,
        "Quarterly" => 3,
        "Semi-Annually" => 6,
        "Annually" => 12,
        "Biennially" => 24,
        "Triennially" => 36,
        _ => return None,
    })
}

/// Invoices what is due, one new invoice per client (WHMCS also splits by
/// due date and gateway; the fake does not):
/// * billable items: `nextcron` and `nextinvoice` not yet invoiced;
///   `duedate` ones due within `invoice_days_in_advance`; `recur` ones
///   due within it and not yet invoiced `recurfor` times (0 = no limit),
///   their due date then moved on by `recur` `recurcycle`. A line each:
///   `type` `Item`, `relid` = the item id, the item's description.
/// * services `Active`/`Suspended` with a recurring cycle whose next
///   invoice date (else next due date) is within `invoice_days_in_advance`:
///   a `Hosting` line (`relid` = service id) for one cycle, then the next
///   invoice date moves on a cycle.
///
/// `clientid` limits it to one client (`Client ID Not Found` if unknown)
/// and adds `latestinvoiceid`; `serviceids[]` limits the services.
///
/// `[unconfirmed]`: the grouping, the line descriptions (items verbatim;
/// services `<product> - <domain> (dd/mm/YYYY - dd/mm/YYYY)` as in the
/// docs' example), the invoice's due date (the earliest line's, at least
/// today), and `recurfor` 0 meaning "no limit" (an older wiki revision).
fn gen_invoices(state: &mut State, f: &Form, ctx: &Ctx) -> ActionResult {
    let only = match f.get("clientid") {
        None => None,
        Some(c) => match c.trim().parse::<u64>().ok().filter(|c| state.clients.contains_key(c)) {
            Some(c) => Some(c),
            None => return Err("Client ID Not Found".into()),
        },
    };
    let services_wanted: Option<Vec<u64>> = f
        .array("serviceids")
        .map(|a| a.iter().filter_map(|(_, v)| v.trim().parse().ok()).collect());
    let today = ctx.today;
    let horizon = today
        .checked_add_days(Days::new(u64::from(ctx.behaviour.invoice_days_in_advance)))
        .unwrap_or(today);
    let mut due: BTreeMap<u64, Vec<Pending>> = BTreeMap::new();

    for s in state.services.values() {
        if only.is_some_and(|c| c != s.userid)
            || services_wanted.as_ref().is_some_and(|w| !w.contains(&s.id))
            || !["Active", "Suspended"].contains(&s.status.as_str())
        {
            continue;
        }
        let next = if s.nextinvoicedate.is_empty() {
            &s.nextduedate
        } else {
            &s.nextinvoicedate
        };
        let (Some(months), Some(from)) = (cycle_months(&s.billingcycle), parse_date(next)) else {
            continue;
        };
        let Some(following) = from.checked_add_months(Months::new(months)) else {
            continue;
        };
        if from > horizon {
            continue;
        }
        let to = following.pred_opt().unwrap_or(following);
        let name = if s.domain.is_empty() {
            s.name.clone()
        } else {
            format!("{} - {}", s.name, s.domain)
        };
        due.entry(s.userid).or_default().push(Pending {
            kind: "Hosting",
            relid: s.id,
            description: format!("{name} ({} - {})", from.format("%d/%m/%Y"), to.format("%d/%m/%Y")),
            amount: s.recurringamount,
            taxed: ctx.behaviour.service_lines_taxed,
            due: from,
            rides_along: false,
            effect: Effect::Service {
                id: s.id,
                next_invoice: following,
            },
        });
    }

    for item in state.billable_items.values() {
        if only.is_some_and(|c| c != item.clientid) {
            continue;
        }
        let item_due = parse_date(&item.duedate);
        let (due_on, next_due) = match item.invoiceaction.as_str() {
            "nextcron" | "nextinvoice" if item.invoicecount == 0 => (today, None),
            "duedate" if item.invoicecount == 0 => match item_due {
                Some(d) if d <= horizon => (d, None),
                _ => continue,
            },
            "recur" if item.recurfor == 0 || item.invoicecount < item.recurfor => match item_due {
                Some(d) if d <= horizon => (d, add_period(d, item.recur, &item.recurcycle)),
                _ => continue,
            },
            _ => continue,
        };
        // Whether `amount` is per unit is [unconfirmed]; by default it is
        // the line total, as the docs describe it.
        let amount = if ctx.behaviour.amount_times_quantity && item.quantity > Decimal::ZERO {
            item.amount * item.quantity
        } else {
            item.amount
        };
        due.entry(item.clientid).or_default().push(Pending {
            kind: "Item",
            relid: item.id,
            description: item.description.clone(),
            amount,
            taxed: ctx.behaviour.billable_item_lines_taxed,
            due: due_on,
            rides_along: item.invoiceaction == "nextinvoice",
            effect: Effect::Item { id: item.id, next_due },
        });
    }

    let mut created = 0u64;
    let mut latest = 0u64;
    for (client, pending) in due {
        if ctx.behaviour.nextinvoice_waits_for_other_lines && pending.iter().all(|p| p.rides_along) {
            continue;
        }
        let duedate = pending.iter().map(|p| p.due).min().unwrap_or(today).max(today);
        let invoice = state.new_invoice(Invoice {
            id: 0,
            userid: client,
            invoicenum: String::new(),
            status: "Unpaid".into(),
            date: today.to_string(),
            duedate: duedate.to_string(),
            datepaid: no_datetime(),
            notes: String::new(),
            paymentmethod: "mailin".into(),
            taxrate: ctx.behaviour.default_taxrate,
            taxrate2: ctx.behaviour.default_taxrate2,
            credit: Decimal::ZERO,
            lines: Vec::new(),
            source: "autogen".into(),
        });
        let mut lines = Vec::new();
        for p in pending {
            lines.push(state.new_line(p.kind, p.relid, &p.description, p.amount, p.taxed));
            match p.effect {
                Effect::Item { id, next_due } => {
                    if let Some(item) = state.billable_items.get_mut(&id) {
                        item.invoicecount += 1;
                        if let Some(d) = next_due {
                            item.duedate = d.to_string();
                        }
                    }
                }
                Effect::Service { id, next_invoice } => {
                    if let Some(s) = state.services.get_mut(&id) {
                        s.nextinvoicedate = next_invoice.to_string();
                    }
                }
            }
        }
        if let Some(inv) = state.invoices.get_mut(&invoice) {
            inv.lines = lines;
        }
        created += 1;
        latest = invoice;
    }
    let mut out = obj(json!({ "numcreated": created }));
    if only.is_some() {
        out.insert("latestinvoiceid".into(), json!(latest));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// ModuleCreate / Suspend / Unsuspend / Terminate / ChangePackage (API.md §2.8)

fn module_command(state: &mut State, action: &str, f: &Form) -> ActionResult {
    // `accountid` is the pre-7.7 name of `serviceid`.
    let Some(given) = f.get("serviceid").or_else(|| f.get("accountid")) else {
        return Err("Service ID is required".into());
    };
    let Some(serviceid) = given
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|s| state.services.contains_key(s))
    else {
        return Err("Service ID not found".into());
    };
    if state.services.get(&serviceid).is_some_and(|s| s.module.is_empty()) {
        return Err("Service not assigned to a module".into());
    }
    let mut params = f.scalars.clone();
    for (k, v) in params.iter_mut() {
        if SECRET_PARAMS.iter().any(|s| k.eq_ignore_ascii_case(s)) {
            *v = crate::REDACTED.into();
        }
    }
    state.module_calls.push(ModuleCall {
        action: action.to_owned(),
        serviceid,
        params,
    });
    // A scripted failure: the module function's own error text.
    let scripted = state
        .module_errors
        .get(&format!("{action}:{serviceid}"))
        .or_else(|| state.module_errors.get(action));
    if let Some(message) = scripted {
        return Err(message.clone());
    }
    if let Some(s) = state.services.get_mut(&serviceid) {
        match action {
            "modulecreate" | "moduleunsuspend" => {
                s.status = "Active".into();
                s.suspensionreason.clear();
            }
            "modulesuspend" => {
                s.status = "Suspended".into();
                s.suspensionreason = f.raw("suspendreason").unwrap_or_default().to_owned();
            }
            "moduleterminate" => s.status = "Terminated".into(),
            _ => {}
        }
    }
    Ok(Map::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_and_cycles() {
        let d = NaiveDate::from_ymd_opt(2026, 1, 31).unwrap();
        assert_eq!(add_period(d, 1, "Months").unwrap().to_string(), "2026-02-28");
        assert_eq!(add_period(d, 2, "Weeks").unwrap().to_string(), "2026-02-14");
        assert_eq!(add_period(d, 1, "Fortnights"), None);
        assert_eq!(cycle_months("Semi-Annually"), Some(6));
        assert_eq!(cycle_months("One Time"), None);
        assert_eq!(parse_date("2026-1-05"), None);
    }

    #[test]
    fn money_parameters_are_decimals() {
        let behaviour = Behaviour::default();
        let quirks = Quirks::default();
        let ctx = Ctx {
            behaviour: &behaviour,
            quirks: &quirks,
            today: NaiveDate::from_ymd_opt(2026, 5, 1).unwrap(),
        };
        assert_eq!(
            ctx.decimal_param("amount", Some("12.37")),
            Ok(Some("12.37".parse().unwrap()))
        );
        assert_eq!(ctx.decimal_param("amount", Some("")), Ok(None));
        let d = |s: &str| Some(s.parse::<Decimal>().unwrap());
        assert_eq!(php_numeric(" 1e3"), d("1000"));
        assert_eq!(php_numeric("+.5"), d("0.5"));
        assert_eq!(php_numeric("-2.50E-1"), d("-0.25"));
        assert_eq!(php_numeric("7."), d("7"));
        for bad in [
            "1,000.00", "12,37", "$5", "NaN", "12.3.4", "1_000", "0x1A", ".", "1e", "e3", "--1", "1e99",
        ] {
            assert_eq!(
                ctx.decimal_param("amount", Some(bad)),
                Err(format!("Invalid amount '{bad}'"))
            );
        }
        assert_eq!(ctx.money("0.005".parse().unwrap()), json!("0.01"));
        assert_eq!(ctx.rate(Decimal::ZERO), json!("0.000"));
    }
}
