//! The fake's in-memory WHMCS (API.md §7.7): clients, services, billable
//! items, invoices with their lines, currencies, and the module commands
//! received, plus the seed format that fills them. Ids auto-increment past
//! every seeded id. Money is `Decimal`, stored at 2 decimals as WHMCS's
//! `decimal(16,2)` columns keep it; invoice totals are always derived from
//! the lines ([`Invoice::totals`]), never stored.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Rounds to cents half away from zero, as MySQL stores a `decimal(…,2)`.
pub fn cents(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// A client (only the fields cdrate reads; API.md §2.6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Client {
    pub id: u64,
    #[serde(default = "active")]
    pub status: String,
    /// The currency's id in [`State::currencies`].
    #[serde(default = "one")]
    pub currency: u64,
    #[serde(default = "usd")]
    pub currency_code: String,
    #[serde(default)]
    pub credit: Decimal,
    #[serde(default, deserialize_with = "php_bool")]
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomField {
    pub id: u64,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub value: String,
}

/// A configurable option of a service (`configoptions.configoption[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigOption {
    pub id: u64,
    pub option: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub value: String,
}

/// A service (tblhosting row; API.md §2.7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    pub id: u64,
    pub userid: u64,
    #[serde(default)]
    pub pid: u64,
    /// The product name.
    #[serde(default)]
    pub name: String,
    #[serde(default = "active")]
    pub status: String,
    #[serde(default)]
    pub domain: String,
    #[serde(default)]
    pub username: String,
    /// `YYYY-mm-dd`; empty = none.
    #[serde(default)]
    pub nextduedate: String,
    #[serde(default = "monthly")]
    pub billingcycle: String,
    #[serde(default)]
    pub recurringamount: Decimal,
    #[serde(default)]
    pub customfields: Vec<CustomField>,
    #[serde(default)]
    pub configoptions: Vec<ConfigOption>,
    /// The provisioning module; empty = none assigned.
    #[serde(default)]
    pub module: String,
    /// When GenInvoices next invoices the service (`YYYY-mm-dd`); empty =
    /// `nextduedate`. Advanced by a cycle each time it is invoiced.
    #[serde(default)]
    pub nextinvoicedate: String,
    /// Set by ModuleSuspend's `suspendreason`.
    #[serde(default)]
    pub suspensionreason: String,
}

/// A billable item (API.md §2.1); the API can only create them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BillableItem {
    pub id: u64,
    pub clientid: u64,
    pub description: String,
    pub amount: Decimal,
    pub unit: String,
    pub quantity: Decimal,
    pub invoiceaction: String,
    #[serde(default)]
    pub recur: u64,
    #[serde(default)]
    pub recurcycle: String,
    #[serde(default)]
    pub recurfor: u64,
    /// `YYYY-mm-dd` or empty; a `recur` item's is advanced per invoice.
    #[serde(default)]
    pub duedate: String,
    /// How many invoices the item has been put on.
    #[serde(default)]
    pub invoicecount: u64,
}

/// An invoice line (`items.item[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// 0 in a seed = assign one.
    #[serde(default)]
    pub id: u64,
    /// `Hosting` (relid = service id), `Item` (relid = billable item id),
    /// or `""` for lines added through the API (their type is `[unconfirmed]`).
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub relid: u64,
    pub description: String,
    pub amount: Decimal,
    #[serde(default, deserialize_with = "php_bool")]
    pub taxed: bool,
}

/// An invoice; its money totals come from [`Invoice::totals`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invoice {
    pub id: u64,
    pub userid: u64,
    #[serde(default)]
    pub invoicenum: String,
    #[serde(default = "unpaid")]
    pub status: String,
    /// `YYYY-mm-dd`; empty in a seed = today.
    #[serde(default)]
    pub date: String,
    /// `YYYY-mm-dd`; empty in a seed = the date.
    #[serde(default)]
    pub duedate: String,
    #[serde(default = "no_datetime")]
    pub datepaid: String,
    #[serde(default)]
    pub notes: String,
    #[serde(default = "mailin")]
    pub paymentmethod: String,
    #[serde(default)]
    pub taxrate: Decimal,
    #[serde(default)]
    pub taxrate2: Decimal,
    /// Credit applied to the invoice.
    #[serde(default)]
    pub credit: Decimal,
    #[serde(default)]
    pub lines: Vec<Line>,
    /// How it was made: `api` (CreateInvoice), `autogen` (GenInvoices), or
    /// `seed`; what the PHP harness passes to `InvoiceCreation` as `source`.
    #[serde(default = "seeded")]
    pub source: String,
}

/// An invoice's money, derived from its lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub subtotal: Decimal,
    pub tax: Decimal,
    pub tax2: Decimal,
    pub credit: Decimal,
    pub total: Decimal,
    pub balance: Decimal,
}

impl Invoice {
    /// Subtotal of the lines; tax and tax2 each rounded to cents on the
    /// taxed lines (0 for a tax-exempt client; no compound tax); total =
    /// subtotal + taxes − credit; balance = total, or 0 once Paid (the fake
    /// keeps no transactions). How WHMCS nets credit is `[unconfirmed]`.
    pub fn totals(&self, taxexempt: bool) -> Totals {
        let subtotal: Decimal = self.lines.iter().map(|l| l.amount).sum();
        let taxable: Decimal = self.lines.iter().filter(|l| l.taxed).map(|l| l.amount).sum();
        let tax_at = |rate: Decimal| {
            if taxexempt {
                Decimal::ZERO
            } else {
                cents(taxable * rate / Decimal::ONE_HUNDRED)
            }
        };
        let (tax, tax2) = (tax_at(self.taxrate), tax_at(self.taxrate2));
        let total = subtotal + tax + tax2 - self.credit;
        let balance = if self.status == "Paid" { Decimal::ZERO } else { total };
        Totals {
            subtotal,
            tax,
            tax2,
            credit: self.credit,
            total,
            balance,
        }
    }
}

/// A currency (`currencies.currency[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Currency {
    pub id: u64,
    pub code: String,
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub suffix: String,
    #[serde(default = "one")]
    pub format: u64,
    #[serde(default = "rate_one")]
    pub rate: Decimal,
}

/// A Module* command the fake carried out (or failed as scripted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModuleCall {
    /// Lower case, e.g. `modulesuspend`.
    pub action: String,
    pub serviceid: u64,
    /// The request's scalars, credentials redacted.
    pub params: BTreeMap<String, String>,
}

/// Seed data (`POST /_fake/seed`, the binary's `--seed FILE`), added to
/// the state: records with an id already present replace it, and later
/// auto-increment ids go past every seeded one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Seed {
    pub clients: Vec<Client>,
    pub services: Vec<Service>,
    pub invoices: Vec<Invoice>,
    pub billable_items: Vec<BillableItem>,
    /// Replaces the currency list when not empty (default: USD, id 1).
    pub currencies: Vec<Currency>,
    /// Scripted module failures: `modulesuspend` (every service) or
    /// `modulesuspend:88` (one service) → the error text the module returns.
    pub module_errors: BTreeMap<String, String>,
}

/// Everything the fake holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct State {
    pub clients: BTreeMap<u64, Client>,
    pub services: BTreeMap<u64, Service>,
    pub billable_items: BTreeMap<u64, BillableItem>,
    pub invoices: BTreeMap<u64, Invoice>,
    pub currencies: Vec<Currency>,
    pub module_calls: Vec<ModuleCall>,
    pub module_errors: BTreeMap<String, String>,
    #[serde(skip)]
    next_billable: u64,
    #[serde(skip)]
    next_invoice: u64,
    #[serde(skip)]
    next_line: u64,
}

impl Default for State {
    fn default() -> Self {
        State::new()
    }
}

impl State {
    pub fn new() -> State {
        State {
            clients: BTreeMap::new(),
            services: BTreeMap::new(),
            billable_items: BTreeMap::new(),
            invoices: BTreeMap::new(),
            currencies: vec![Currency {
                id: 1,
                code: "USD".into(),
                prefix: "$".into(),
                suffix: " USD".into(),
                format: 1,
                rate: Decimal::ONE,
            }],
            module_calls: Vec::new(),
            module_errors: BTreeMap::new(),
            next_billable: 1,
            next_invoice: 1,
            next_line: 1,
        }
    }

    /// Adds `seed`; `today` fills invoices' missing dates.
    pub fn seed(&mut self, seed: Seed, today: NaiveDate) {
        for c in seed.clients {
            self.clients.insert(c.id, c);
        }
        for s in seed.services {
            self.services.insert(s.id, s);
        }
        for b in seed.billable_items {
            self.next_billable = self.next_billable.max(b.id.saturating_add(1));
            self.billable_items.insert(b.id, b);
        }
        for mut inv in seed.invoices {
            self.next_invoice = self.next_invoice.max(inv.id.saturating_add(1));
            if inv.date.is_empty() {
                inv.date = today.to_string();
            }
            if inv.duedate.is_empty() {
                inv.duedate = inv.date.clone();
            }
            for l in &mut inv.lines {
                l.amount = cents(l.amount);
                self.next_line = self.next_line.max(l.id.saturating_add(1));
            }
            self.invoices.insert(inv.id, inv);
        }
        // Lines seeded without an id get one past every seeded id.
        let mut next = self.next_line;
        for inv in self.invoices.values_mut() {
            for l in inv.lines.iter_mut().filter(|l| l.id == 0) {
                l.id = next;
                next += 1;
            }
        }
        self.next_line = next;
        if !seed.currencies.is_empty() {
            self.currencies = seed.currencies;
        }
        self.module_errors.extend(seed.module_errors);
    }

    pub(crate) fn next_billable_id(&mut self) -> u64 {
        let id = self.next_billable;
        self.next_billable += 1;
        id
    }

    /// A new, empty invoice; returns its id.
    pub(crate) fn new_invoice(&mut self, mut invoice: Invoice) -> u64 {
        let id = self.next_invoice;
        self.next_invoice += 1;
        invoice.id = id;
        self.invoices.insert(id, invoice);
        id
    }

    /// A line for `invoice` with a fresh id (not yet attached).
    pub(crate) fn new_line(&mut self, kind: &str, relid: u64, description: &str, amount: Decimal, taxed: bool) -> Line {
        let id = self.next_line;
        self.next_line += 1;
        Line {
            id,
            kind: kind.to_owned(),
            relid,
            description: description.to_owned(),
            amount: cents(amount),
            taxed,
        }
    }

    pub(crate) fn taxexempt(&self, client: u64) -> bool {
        self.clients.get(&client).is_some_and(|c| c.taxexempt)
    }

    /// The client's currency: by id, else by code, else the first one.
    pub(crate) fn currency_of(&self, client: Option<&Client>) -> Option<&Currency> {
        let by_id = client.and_then(|c| self.currencies.iter().find(|cur| cur.id == c.currency));
        let by_code = || client.and_then(|c| self.currencies.iter().find(|cur| cur.code == c.currency_code));
        by_id.or_else(by_code).or(self.currencies.first())
    }

    /// The state as JSON (`GET /_fake/state`), each invoice with its
    /// derived `totals`.
    pub fn dump(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Some(invoices) = v.get_mut("invoices").and_then(Value::as_object_mut) {
            for (id, inv) in invoices.iter_mut() {
                let totals = id
                    .parse::<u64>()
                    .ok()
                    .and_then(|id| self.invoices.get(&id))
                    .map(|i| i.totals(self.taxexempt(i.userid)));
                if let (Some(obj), Some(t)) = (inv.as_object_mut(), totals) {
                    obj.insert("totals".into(), serde_json::to_value(t).unwrap_or(Value::Null));
                }
            }
        }
        v
    }
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
fn seeded() -> String {
    "seed".into()
}
fn rate_one() -> Decimal {
    Decimal::ONE
}
pub(crate) fn no_datetime() -> String {
    "0000-00-00 00:00:00".into()
}

/// A flag from seed JSON: `true`/`false`, `0`/`1`, or `"0"`/`"1"`/`""`.
fn php_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Int(i64),
        Text(String),
    }
    Ok(match Flag::deserialize(d)? {
        Flag::Bool(b) => b,
        Flag::Int(i) => i != 0,
        Flag::Text(s) => crate::form::truthy(Some(&s)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_keep_ids_and_fill_the_gaps() {
        let seed: Seed = serde_json::from_str(
            r#"{"clients":[{"id":17}],
                "invoices":[{"id":7001,"userid":17,"lines":[
                    {"id":70010,"type":"Hosting","relid":88,"description":"VoIP Trunk","amount":"20.00","taxed":false},
                    {"description":"Setup","amount":5,"taxed":1}]}]}"#,
        )
        .unwrap();
        let mut s = State::new();
        let today = NaiveDate::from_ymd_opt(2026, 5, 1).unwrap();
        s.seed(seed, today);
        let inv = &s.invoices[&7001];
        assert_eq!((inv.date.as_str(), inv.status.as_str()), ("2026-05-01", "Unpaid"));
        assert_eq!(inv.lines[1].id, 70011);
        assert!(inv.lines[1].taxed && !inv.lines[0].taxed);
        assert_eq!(s.new_invoice(inv.clone()), 7002);
        assert_eq!(s.clients[&17].currency_code, "USD");
    }

    #[test]
    fn totals_round_each_tax_and_net_the_credit() {
        let line = |amount: &str, taxed| Line {
            id: 1,
            kind: String::new(),
            relid: 0,
            description: "x".into(),
            amount: amount.parse().unwrap(),
            taxed,
        };
        let inv = Invoice {
            id: 1,
            userid: 1,
            invoicenum: String::new(),
            status: "Unpaid".into(),
            date: String::new(),
            duedate: String::new(),
            datepaid: no_datetime(),
            notes: String::new(),
            paymentmethod: mailin(),
            taxrate: "19".parse().unwrap(),
            taxrate2: "2.5".parse().unwrap(),
            credit: "1.00".parse().unwrap(),
            lines: vec![line("10.05", true), line("3.00", false)],
            source: seeded(),
        };
        let t = inv.totals(false);
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        // 10.05 × 19 % = 1.9095 → 1.91; × 2.5 % = 0.25125 → 0.25.
        assert_eq!((t.subtotal, t.tax, t.tax2), (d("13.05"), d("1.91"), d("0.25")));
        assert_eq!((t.total, t.balance), (d("14.21"), d("14.21")));
        assert_eq!(inv.totals(true).total, d("12.05"));
    }
}
