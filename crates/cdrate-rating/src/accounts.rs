//! The accounts book (DESIGN §6): who pays for a call. `accounts.csv` holds
//! each billing [`Account`] (plans, currency, numbering plan, WHMCS ids,
//! cycle day, credit limit); `identities.csv` maps what a source sends as
//! `account_key` to one of them.
//!
//! Loading validates everything and reports *every* problem at once with its
//! file, line, column and stable code, like the tariff loader (they share
//! `csv_sheet`). [`load_accounts`] is the only function that reads files.
//! An [`AccountBook`] is immutable once built; [`AccountBook::lookup`] is on
//! the rating hot path and never allocates. Whether the plans an account
//! names exist is checked separately by [`AccountBook::check_plans`],
//! because accounts and tariffs are loaded and reloaded independently.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use cdrate_core::{Currency, Source};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::csv_sheet::{parse_plain_decimal, read_sheet, Field, RowCheck, SheetError, SheetProblem};
use crate::error::{AccountError, AccountErrorKind as K, AccountErrors, AccountFile};
use crate::normalize::{NumberingPlan, DEFAULT_EXTENSION_LENGTH};
use crate::tariff::TariffSet;

const ACCOUNT_COLUMNS: &[&str] = &[
    "account",
    "plan",
    "currency",
    "country_code",
    "national_prefix",
    "international_prefix",
    "whmcs_client_id",
    "whmcs_service_id",
    "cycle_day",
    "credit_limit",
];
/// Columns an `accounts.csv` may leave out of its header.
const ACCOUNT_OPTIONAL_COLUMNS: &[&str] = &[
    "inbound_plan",
    "extension_length",
    "billing",
    "status",
    "previous_plans",
];
const IDENTITY_COLUMNS: &[&str] = &["source", "account_key", "account"];

/// Longest `extension_length` an account may set. From 8 digits on a number
/// is a subscriber number (DESIGN §6 short-number rule), so a longer
/// "extension" would swallow real calls as free internal ones.
pub const MAX_EXTENSION_LENGTH: usize = 7;

/// Last allowed `cycle_day`, so every month has the day.
pub const MAX_CYCLE_DAY: u8 = 28;

/// One billing account, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    /// Prices outbound calls.
    pub plan: String,
    /// Prices inbound calls; `None` = inbound calls are not charged.
    pub inbound_plan: Option<String>,
    pub currency: Currency,
    pub numbering: NumberingPlan,
    pub whmcs_client_id: Option<u64>,
    pub whmcs_service_id: Option<u64>,
    /// 1..=28; the billing cycle starts on this day of the month.
    pub cycle_day: u8,
    pub credit_limit: Option<Decimal>,
    /// How closed cycles reach WHMCS; `None` = the configured default.
    pub billing: Option<BillingMode>,
    /// Suspended and terminated accounts' calls are still rated (nothing a
    /// PBX sends is lost) and flagged on the rated call.
    pub status: AccountStatus,
    /// Plans the account had before `plan`, oldest first: a call answered
    /// before a period's `until` is priced with that period's plan, so a
    /// plan change applies to calls answered after it, even late CDRs.
    pub previous_plans: Vec<PlanPeriod>,
}

/// An earlier plan of an account and when it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanPeriod {
    pub plan: String,
    pub until: DateTime<Utc>,
}

impl Account {
    /// The outbound plan in force at `at` (a call's answer time).
    pub fn plan_at(&self, at: DateTime<Utc>) -> &str {
        self.previous_plans
            .iter()
            .find(|p| at < p.until)
            .map_or(self.plan.as_str(), |p| p.plan.as_str())
    }
}

/// Lifecycle state of an account (the optional `status` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccountStatus {
    #[default]
    Active,
    Suspended,
    Terminated,
}

impl AccountStatus {
    pub fn parse(s: &str) -> Option<AccountStatus> {
        match s {
            "" | "active" => Some(AccountStatus::Active),
            "suspended" => Some(AccountStatus::Suspended),
            "terminated" => Some(AccountStatus::Terminated),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Suspended => "suspended",
            AccountStatus::Terminated => "terminated",
        }
    }
}

/// How an account's line items reach its WHMCS invoice (the optional
/// `billing` column). One mode per account, so push and pull can never
/// both bill the same usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillingMode {
    /// cdrate pushes items through the WHMCS API.
    Push,
    /// The WHMCS hook pulls items from `/v1/usage`.
    Pull,
    /// Items are kept for reports only.
    None,
}

impl BillingMode {
    pub fn parse(s: &str) -> Option<BillingMode> {
        match s {
            "push" => Some(BillingMode::Push),
            "pull" => Some(BillingMode::Pull),
            "none" => Some(BillingMode::None),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BillingMode::Push => "push",
            BillingMode::Pull => "pull",
            BillingMode::None => "none",
        }
    }
}

/// Every account and every source identity that maps to one.
#[derive(Debug, Clone)]
pub struct AccountBook {
    accounts: Vec<Account>,
    /// Parallel to `accounts`.
    origins: Vec<Origin>,
    by_id: HashMap<Box<str>, usize>,
    /// One map per [`Source`] (see `source_slot`), keyed by `account_key`,
    /// so a lookup borrows the key instead of building a `(Source, String)`.
    by_key: [HashMap<Box<str>, usize>; SOURCE_COUNT],
}

/// Where an account's row is in `accounts.csv`, for later checks.
#[derive(Debug, Clone, Copy)]
struct Origin {
    line: u64,
    plan_column: usize,
    inbound_plan_column: usize,
    previous_plans_column: usize,
}

impl AccountBook {
    /// The account `source` knows as `account_key`.
    pub fn lookup(&self, source: Source, account_key: &str) -> Option<&Account> {
        let i = *self.by_key.get(source_slot(source))?.get(account_key)?;
        self.accounts.get(i)
    }

    /// The account with this `account` id.
    pub fn account(&self, id: &str) -> Option<&Account> {
        self.accounts.get(*self.by_id.get(id)?)
    }

    /// Accounts in `accounts.csv` order.
    pub fn accounts(&self) -> &[Account] {
        &self.accounts
    }

    /// Every `(source, account_key)` that maps to account `id`, sorted.
    pub fn identities_of(&self, id: &str) -> Vec<(Source, &str)> {
        let Some(&i) = self.by_id.get(id) else {
            return Vec::new();
        };
        let sources = [
            Source::Freeswitch,
            Source::Twilio,
            Source::Zadarma,
            Source::Fritzbox,
            Source::Generic,
        ];
        let mut out: Vec<(Source, &str)> = sources
            .into_iter()
            .flat_map(|s| {
                self.by_key[source_slot(s)]
                    .iter()
                    .filter(move |(_, &v)| v == i)
                    .map(move |(k, _)| (s, k.as_ref()))
            })
            .collect();
        out.sort_by(|a, b| (a.0.as_str(), a.1).cmp(&(b.0.as_str(), b.1)));
        out
    }

    /// How many `(source, account_key)` pairs map to an account.
    pub fn identity_count(&self) -> usize {
        self.by_key.iter().map(HashMap::len).sum()
    }

    /// Checks the accounts against a tariff set: each `plan` and
    /// `inbound_plan` must exist (`unknown_plan`) and be in the account's
    /// currency (`plan_currency_mismatch`), reported at its `accounts.csv`
    /// line and column. Empty means every account can be priced.
    pub fn check_plans(&self, tariffs: &TariffSet) -> Vec<AccountError> {
        let mut errors = Vec::new();
        for (account, origin) in self.accounts.iter().zip(&self.origins) {
            let mut plans = vec![
                ("plan", Some(&account.plan), origin.plan_column),
                (
                    "inbound_plan",
                    account.inbound_plan.as_ref(),
                    origin.inbound_plan_column,
                ),
            ];
            for p in &account.previous_plans {
                plans.push(("previous_plans", Some(&p.plan), origin.previous_plans_column));
            }
            for (field, plan, column) in plans {
                let Some(plan) = plan else { continue };
                let kind = match tariffs.plan_id(plan).map(|id| tariffs.plan(id)) {
                    None => K::UnknownPlan {
                        field,
                        plan: plan.clone(),
                    },
                    Some(p) if p.currency != account.currency => K::PlanCurrencyMismatch {
                        field,
                        plan: plan.clone(),
                        plan_currency: p.currency.to_string(),
                        currency: account.currency.to_string(),
                    },
                    Some(_) => continue,
                };
                errors.push(at(AccountFile::Accounts, origin.line, column, kind));
            }
        }
        errors
    }
}

const SOURCE_COUNT: usize = 5;

fn source_slot(source: Source) -> usize {
    match source {
        Source::Freeswitch => 0,
        Source::Twilio => 1,
        Source::Zadarma => 2,
        Source::Fritzbox => 3,
        Source::Generic => 4,
    }
}

/// Loads and validates `accounts.csv` and `identities.csv`. Both files are
/// required: without identities no call can find its account.
pub fn load_accounts(accounts: &Path, identities: &Path) -> Result<AccountBook, AccountErrors> {
    let mut errors = Vec::new();
    let mut read = |file: AccountFile, path: &Path| -> Option<String> {
        match std::fs::read(path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => Some(text),
                Err(e) => {
                    errors.push(at(file, 0, 0, K::BadCsv(format!("not UTF-8: {e}"))));
                    None
                }
            },
            Err(e) => {
                errors.push(at(file, 0, 0, K::MissingFile(format!("{}: {e}", path.display()))));
                None
            }
        }
    };
    let accounts = read(AccountFile::Accounts, accounts);
    let identities = read(AccountFile::Identities, identities);
    match (accounts, identities) {
        (Some(a), Some(i)) if errors.is_empty() => parse_accounts(&a, &i),
        _ => Err(AccountErrors(errors)),
    }
}

/// Validates the two files' contents and builds the book.
pub fn parse_accounts(accounts_csv: &str, identities_csv: &str) -> Result<AccountBook, AccountErrors> {
    let mut errors = Vec::new();
    let accounts = read_accounts(accounts_csv, &mut errors);
    let identities = read_identities(identities_csv, &mut errors);
    let Some(accounts) = accounts else {
        // Without accounts every identity would be "unknown_account": noise.
        return Err(sorted(errors));
    };

    let mut by_id = HashMap::with_capacity(accounts.valid.len());
    for (i, (account, _)) in accounts.valid.iter().enumerate() {
        by_id.insert(account.id.as_str().into(), i);
    }
    let mut by_key: [HashMap<Box<str>, usize>; SOURCE_COUNT] = Default::default();
    for identity in identities {
        match by_id.get(identity.account.as_str()) {
            Some(&i) => {
                if let Some(map) = by_key.get_mut(source_slot(identity.source)) {
                    map.insert(identity.key.into(), i);
                }
            }
            // An account whose row had errors: those are reported already.
            None if accounts.named.contains_key(&identity.account) => {}
            None => errors.push(at(
                AccountFile::Identities,
                identity.line,
                identity.account_column,
                K::UnknownAccount(identity.account),
            )),
        }
    }
    if !errors.is_empty() {
        return Err(sorted(errors));
    }
    let (accounts, origins) = accounts.valid.into_iter().unzip();
    Ok(AccountBook {
        accounts,
        origins,
        by_id,
        by_key,
    })
}

/// Files first, then by position, so the report reads top to bottom.
fn sorted(mut errors: Vec<AccountError>) -> AccountErrors {
    errors.sort_by_key(|e| (e.file as u8, e.line, e.column));
    AccountErrors(errors)
}

fn at(file: AccountFile, line: u64, column: usize, kind: K) -> AccountError {
    AccountError {
        file,
        line,
        column,
        kind,
    }
}

impl SheetError for AccountError {
    type File = AccountFile;
    type Kind = K;

    fn at(file: AccountFile, line: u64, column: usize, kind: K) -> AccountError {
        at(file, line, column, kind)
    }

    fn from_sheet_problem(problem: SheetProblem) -> K {
        match problem {
            SheetProblem::BadCsv(e) => K::BadCsv(e),
            SheetProblem::UnknownColumn(c) => K::UnknownColumn(c),
            SheetProblem::MissingColumn(c) => K::MissingColumn(c),
            SheetProblem::DuplicateColumn(c) => K::DuplicateColumn(c),
            SheetProblem::BadRow { got, want } => K::BadRow { got, want },
        }
    }
}

struct AccountRows {
    /// Rows without problems, in file order.
    valid: Vec<(Account, Origin)>,
    /// Every account id that appears, valid row or not, with its first line.
    named: HashMap<String, u64>,
}

fn read_accounts(text: &str, errors: &mut Vec<AccountError>) -> Option<AccountRows> {
    let sheet = read_sheet(
        AccountFile::Accounts,
        text,
        ACCOUNT_COLUMNS,
        ACCOUNT_OPTIONAL_COLUMNS,
        errors,
    )?;
    let mut out = AccountRows {
        valid: Vec::new(),
        named: HashMap::new(),
    };
    for (line, rec) in &sheet.rows {
        let f = |c| sheet.field(*line, rec, c);
        let mut row = RowCheck::new(sheet.file, errors);
        let (id, plan, cur, cc, national, international) = (f(0), f(1), f(2), f(3), f(4), f(5));
        let (client, service, day, limit, inbound, ext) = (f(6), f(7), f(8), f(9), f(10), f(11));
        let (mode, status_field, previous) = (f(12), f(13), f(14));
        if row.check(&id, required(&id, "account")).is_some() {
            match out.named.get(id.value) {
                Some(&first) => {
                    row.check::<()>(&id, Err(K::DuplicateAccount(id.value.to_owned(), first)));
                }
                None => {
                    out.named.insert(id.value.to_owned(), *line);
                }
            }
        }
        row.check(&plan, required(&plan, "plan"));
        let currency = row.check(&cur, currency(cur.value));
        let country_code = row.check(&cc, country_code(cc.value));
        let national_prefix = row.check(&national, prefix(national.value, "national_prefix"));
        let international_prefix = row.check(&international, prefix(international.value, "international_prefix"));
        if let (Some(n), Some(i)) = (&national_prefix, &international_prefix) {
            // International is tried first, so this national prefix could never match.
            if !n.is_empty() && !i.is_empty() && n.starts_with(i.as_str()) {
                row.check::<()>(
                    &national,
                    Err(K::BadPrefix {
                        field: "national_prefix",
                        value: n.clone(),
                        reason: "begins with international_prefix, so it would never match",
                    }),
                );
            }
        }
        let whmcs_client_id = row.check(&client, whmcs_id(client.value, "whmcs_client_id"));
        let whmcs_service_id = row.check(&service, whmcs_id(service.value, "whmcs_service_id"));
        let cycle_day = row.check(&day, cycle_day(day.value));
        let credit_limit = row.check(&limit, credit_limit(limit.value));
        let extension_length = row.check(&ext, extension_length(ext.value));
        let billing = row.check(&mode, billing_mode(mode.value));
        let status = row.check(
            &status_field,
            AccountStatus::parse(status_field.value).ok_or_else(|| K::BadStatus(status_field.value.to_owned())),
        );
        let previous_plans = row.check(&previous, previous_plans(previous.value));
        if let (
            Some(currency),
            Some(country_code),
            Some(national_prefix),
            Some(international_prefix),
            Some(whmcs_client_id),
            Some(whmcs_service_id),
            Some(cycle_day),
            Some(credit_limit),
            Some(extension_length),
            Some(billing),
            Some(status),
            Some(previous_plans),
            false,
        ) = (
            currency,
            country_code,
            national_prefix,
            international_prefix,
            whmcs_client_id,
            whmcs_service_id,
            cycle_day,
            credit_limit,
            extension_length,
            billing,
            status,
            previous_plans,
            row.failed,
        ) {
            let account = Account {
                id: id.value.to_owned(),
                plan: plan.value.to_owned(),
                inbound_plan: (!inbound.value.is_empty()).then(|| inbound.value.to_owned()),
                currency,
                numbering: NumberingPlan {
                    country_code,
                    national_prefix,
                    international_prefix,
                    extension_length,
                },
                whmcs_client_id,
                whmcs_service_id,
                cycle_day,
                credit_limit,
                billing,
                status,
                previous_plans,
            };
            let origin = Origin {
                line: *line,
                plan_column: plan.column,
                inbound_plan_column: inbound.column,
                previous_plans_column: previous.column,
            };
            out.valid.push((account, origin));
        }
    }
    Some(out)
}

fn required(f: &Field, name: &'static str) -> Result<(), K> {
    if f.value.is_empty() {
        Err(K::MissingValue(name))
    } else {
        Ok(())
    }
}

fn is_digits(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

fn currency(s: &str) -> Result<Currency, K> {
    if s.is_empty() {
        return Err(K::MissingValue("currency"));
    }
    Currency::from_str(s).map_err(|_| K::BadCurrency(s.into()))
}

/// 1 to 3 digits; no E.164 country code begins with 0.
fn country_code(s: &str) -> Result<String, K> {
    if s.is_empty() {
        return Err(K::MissingValue("country_code"));
    }
    if s.len() <= 3 && is_digits(s) && !s.starts_with('0') {
        Ok(s.to_owned())
    } else {
        Err(K::BadCountryCode(s.into()))
    }
}

fn prefix(s: &str, field: &'static str) -> Result<String, K> {
    if is_digits(s) {
        Ok(s.to_owned())
    } else {
        Err(K::BadPrefix {
            field,
            value: s.into(),
            reason: "must be digits only",
        })
    }
}

/// Empty = none; WHMCS ids start at 1.
fn whmcs_id(s: &str, field: &'static str) -> Result<Option<u64>, K> {
    if s.is_empty() {
        return Ok(None);
    }
    match s.parse::<u64>() {
        Ok(id) if id > 0 && is_digits(s) => Ok(Some(id)),
        _ => Err(K::BadInteger { field, value: s.into() }),
    }
}

/// Empty = 1.
fn cycle_day(s: &str) -> Result<u8, K> {
    if s.is_empty() {
        return Ok(1);
    }
    match s.parse::<u8>() {
        Ok(day) if (1..=MAX_CYCLE_DAY).contains(&day) && is_digits(s) => Ok(day),
        _ => Err(K::BadCycleDay(s.into())),
    }
}

/// Empty = no limit.
fn credit_limit(s: &str) -> Result<Option<Decimal>, K> {
    if s.is_empty() {
        return Ok(None);
    }
    match parse_plain_decimal(s) {
        None => Err(K::BadDecimal(s.into())),
        Some(v) if v.is_sign_negative() && !v.is_zero() => Err(K::NegativeAmount {
            field: "credit_limit",
            value: s.into(),
        }),
        Some(v) => Ok(Some(v)),
    }
}

/// Empty (or the column absent) = the default.
/// `plan@RFC3339|plan@RFC3339`, instants strictly increasing.
fn previous_plans(s: &str) -> Result<Vec<PlanPeriod>, K> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    let bad = || K::BadPreviousPlans(s.to_owned());
    let mut out: Vec<PlanPeriod> = Vec::new();
    for entry in s.split('|') {
        let (plan, until) = entry.trim().rsplit_once('@').ok_or_else(bad)?;
        let until = DateTime::parse_from_rfc3339(until.trim())
            .map_err(|_| bad())?
            .with_timezone(&Utc);
        if plan.trim().is_empty() || out.last().is_some_and(|p| p.until >= until) {
            return Err(bad());
        }
        out.push(PlanPeriod {
            plan: plan.trim().to_owned(),
            until,
        });
    }
    Ok(out)
}

fn billing_mode(s: &str) -> Result<Option<BillingMode>, K> {
    if s.is_empty() {
        return Ok(None);
    }
    BillingMode::parse(s)
        .map(Some)
        .ok_or_else(|| K::BadBillingMode(s.to_owned()))
}

fn extension_length(s: &str) -> Result<usize, K> {
    if s.is_empty() {
        return Ok(DEFAULT_EXTENSION_LENGTH);
    }
    match s.parse::<usize>() {
        Ok(n) if n <= MAX_EXTENSION_LENGTH && is_digits(s) => Ok(n),
        _ => Err(K::BadExtensionLength(s.into())),
    }
}

struct IdentityRow {
    line: u64,
    source: Source,
    key: String,
    account: String,
    account_column: usize,
}

fn read_identities(text: &str, errors: &mut Vec<AccountError>) -> Vec<IdentityRow> {
    let Some(sheet) = read_sheet(AccountFile::Identities, text, IDENTITY_COLUMNS, &[], errors) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut first_line: HashMap<(Source, &str), u64> = HashMap::new();
    for (line, rec) in &sheet.rows {
        let f = |c| sheet.field(*line, rec, c);
        let mut row = RowCheck::new(sheet.file, errors);
        let (src, key, account) = (f(0), f(1), f(2));
        let source = row.check(
            &src,
            match src.value {
                "" => Err(K::MissingValue("source")),
                s => Source::parse(s).ok_or_else(|| K::UnknownSource(s.into())),
            },
        );
        let key_ok = row.check(&key, required(&key, "account_key"));
        row.check(&account, required(&account, "account"));
        if let (Some(source), Some(())) = (source, key_ok) {
            match first_line.get(&(source, key.value)) {
                Some(&first) => {
                    row.check::<()>(
                        &key,
                        Err(K::DuplicateIdentity {
                            source_name: source.as_str(),
                            key: key.value.to_owned(),
                            first_line: first,
                        }),
                    );
                }
                None => {
                    first_line.insert((source, key.value), *line);
                }
            }
            if !row.failed {
                out.push(IdentityRow {
                    line: *line,
                    source,
                    key: key.value.to_owned(),
                    account: account.value.to_owned(),
                    account_column: account.column,
                });
            }
        }
    }
    out
}
