//! Editing an accounts book as text: the accounts API (what the WHMCS
//! server module calls) changes one account by rewriting the newest
//! `accounts.csv` / `identities.csv` texts, so API changes and file imports
//! are the same kind of versioned, validated, auditable thing.
//!
//! [`edit`] only rewrites cells; the caller validates the result with
//! [`crate::parse_accounts`] (and the plans against the tariffs) exactly as
//! an import would. Pure: no I/O, the clock is passed in.

use chrono::{DateTime, SecondsFormat, Utc};

/// What to change on one account. `None` leaves a field as it is (or at its
/// default when the account is created).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountChange {
    pub plan: Option<String>,
    /// When a plan change takes effect (default: now). Calls answered
    /// before it keep the old plan.
    pub plan_effective_at: Option<DateTime<Utc>>,
    pub inbound_plan: Option<String>,
    pub currency: Option<String>,
    pub country_code: Option<String>,
    pub national_prefix: Option<String>,
    pub international_prefix: Option<String>,
    pub whmcs_client_id: Option<String>,
    pub whmcs_service_id: Option<String>,
    pub cycle_day: Option<String>,
    pub credit_limit: Option<String>,
    pub billing: Option<String>,
    pub status: Option<String>,
    /// `(source, account_key)` pairs that replace the account's identities.
    pub identities: Option<Vec<(String, String)>>,
}

/// The edited texts and what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edited {
    pub accounts: String,
    pub identities: String,
    pub created: bool,
    /// False when the change left both texts as they were.
    pub changed: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EditError {
    #[error("the stored accounts text is not CSV: {0}")]
    BadCsv(String),
    #[error("creating account {0:?} needs {1}")]
    MissingForCreate(String, &'static str),
    #[error("plan_effective_at {0} is not after the account's last plan change ({1})")]
    PlanChangeOutOfOrder(String, String),
    #[error("value of {0} contains a line break")]
    BadValue(&'static str),
}

impl EditError {
    pub fn code(&self) -> &'static str {
        match self {
            EditError::BadCsv(_) => "bad_csv",
            EditError::MissingForCreate(..) => "missing_value",
            EditError::PlanChangeOutOfOrder(..) => "bad_previous_plans",
            EditError::BadValue(_) => "bad_value",
        }
    }
}

/// A CSV sheet as header + rows of cells.
struct Sheet {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Sheet {
    fn parse(text: &str) -> Result<Sheet, EditError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(text.as_bytes());
        let header = reader
            .headers()
            .map_err(|e| EditError::BadCsv(e.to_string()))?
            .iter()
            .map(|h| h.trim().to_owned())
            .collect::<Vec<_>>();
        let mut rows = Vec::new();
        for rec in reader.records() {
            let rec = rec.map_err(|e| EditError::BadCsv(e.to_string()))?;
            let mut row: Vec<String> = rec.iter().map(|c| c.trim().to_owned()).collect();
            row.resize(header.len(), String::new());
            rows.push(row);
        }
        Ok(Sheet { header, rows })
    }

    /// Index of `column`, adding it (empty in every row) if missing.
    fn column(&mut self, column: &str) -> usize {
        if let Some(i) = self.header.iter().position(|h| h == column) {
            return i;
        }
        self.header.push(column.to_owned());
        for row in &mut self.rows {
            row.push(String::new());
        }
        self.header.len() - 1
    }

    fn render(&self) -> Result<String, EditError> {
        let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
        w.write_record(&self.header)
            .map_err(|e| EditError::BadCsv(e.to_string()))?;
        for row in &self.rows {
            w.write_record(row).map_err(|e| EditError::BadCsv(e.to_string()))?;
        }
        let bytes = w.into_inner().map_err(|e| EditError::BadCsv(e.to_string()))?;
        String::from_utf8(bytes).map_err(|e| EditError::BadCsv(e.to_string()))
    }
}

/// Applies `change` to account `id` (creating it if absent) in the two
/// texts.
pub fn edit(
    accounts: &str,
    identities: &str,
    id: &str,
    change: &AccountChange,
    now: DateTime<Utc>,
) -> Result<Edited, EditError> {
    let mut sheet = Sheet::parse(accounts)?;
    let id_col = sheet.column("account");
    let existing = sheet.rows.iter().position(|r| r[id_col] == id);
    let created = existing.is_none();
    let row = match existing {
        Some(i) => i,
        None => {
            for (value, name) in [
                (&change.plan, "plan"),
                (&change.currency, "currency"),
                (&change.country_code, "country_code"),
            ] {
                if value.as_deref().is_none_or(str::is_empty) {
                    return Err(EditError::MissingForCreate(id.to_owned(), name));
                }
            }
            let mut row = vec![String::new(); sheet.header.len()];
            row[id_col] = id.to_owned();
            sheet.rows.push(row);
            sheet.rows.len() - 1
        }
    };
    let set = |sheet: &mut Sheet, column: &'static str, value: &Option<String>| -> Result<(), EditError> {
        if let Some(v) = value {
            if v.contains(['\n', '\r']) {
                return Err(EditError::BadValue(column));
            }
            let c = sheet.column(column);
            sheet.rows[row][c] = v.trim().to_owned();
        }
        Ok(())
    };
    // A plan change of an existing account keeps the old plan for calls
    // answered before it takes effect.
    if let (false, Some(new_plan)) = (created, &change.plan) {
        let plan_col = sheet.column("plan");
        let old = sheet.rows[row][plan_col].clone();
        if &old != new_plan && !old.is_empty() {
            let at = change.plan_effective_at.unwrap_or(now);
            let prev_col = sheet.column("previous_plans");
            let history = sheet.rows[row][prev_col].clone();
            if let Some(last) = history.rsplit('|').next().and_then(|e| e.rsplit_once('@')) {
                if let Ok(last_at) = DateTime::parse_from_rfc3339(last.1.trim()) {
                    if last_at.with_timezone(&Utc) >= at {
                        return Err(EditError::PlanChangeOutOfOrder(
                            at.to_rfc3339_opts(SecondsFormat::Secs, true),
                            last.1.to_owned(),
                        ));
                    }
                }
            }
            let entry = format!("{old}@{}", at.to_rfc3339_opts(SecondsFormat::Millis, true));
            sheet.rows[row][prev_col] = if history.is_empty() {
                entry
            } else {
                format!("{history}|{entry}")
            };
        }
    }
    set(&mut sheet, "plan", &change.plan)?;
    set(&mut sheet, "inbound_plan", &change.inbound_plan)?;
    set(&mut sheet, "currency", &change.currency)?;
    set(&mut sheet, "country_code", &change.country_code)?;
    set(&mut sheet, "whmcs_client_id", &change.whmcs_client_id)?;
    set(&mut sheet, "whmcs_service_id", &change.whmcs_service_id)?;
    set(&mut sheet, "credit_limit", &change.credit_limit)?;
    set(&mut sheet, "billing", &change.billing)?;
    set(&mut sheet, "status", &change.status)?;
    if created {
        // Defaults of a new account: ITU prefixes and cycles from the 1st.
        let defaults = [
            (
                "national_prefix",
                change.national_prefix.clone().unwrap_or_else(|| "0".into()),
            ),
            (
                "international_prefix",
                change.international_prefix.clone().unwrap_or_else(|| "00".into()),
            ),
            ("cycle_day", change.cycle_day.clone().unwrap_or_else(|| "1".into())),
        ];
        for (column, value) in defaults {
            set(&mut sheet, column, &Some(value))?;
        }
    } else {
        set(&mut sheet, "national_prefix", &change.national_prefix)?;
        set(&mut sheet, "international_prefix", &change.international_prefix)?;
        set(&mut sheet, "cycle_day", &change.cycle_day)?;
    }
    let new_accounts = sheet.render()?;

    let mut ids = Sheet::parse(identities)?;
    if let Some(list) = &change.identities {
        let (src, key, acct) = (ids.column("source"), ids.column("account_key"), ids.column("account"));
        let width = ids.header.len();
        ids.rows.retain(|r| r[acct] != id);
        for (source, account_key) in list {
            if source.contains(['\n', '\r']) || account_key.contains(['\n', '\r']) {
                return Err(EditError::BadValue("identities"));
            }
            let mut r = vec![String::new(); width];
            r[src] = source.trim().to_owned();
            r[key] = account_key.trim().to_owned();
            r[acct] = id.to_owned();
            ids.rows.push(r);
        }
    }
    let new_identities = ids.render()?;
    let changed = created
        || Sheet::parse(accounts)?.render()? != new_accounts
        || Sheet::parse(identities)?.render()? != new_identities;
    Ok(Edited {
        accounts: new_accounts,
        identities: new_identities,
        created,
        changed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::{AccountStatus, BillingMode};
    use crate::parse_accounts;

    const ACCOUNTS: &str = "account,plan,currency,country_code,national_prefix,international_prefix,whmcs_client_id,whmcs_service_id,cycle_day,credit_limit\n\
        acme,business,USD,1,1,011,17,88,1,100\n";
    const IDENTITIES: &str = "source,account_key,account\nfreeswitch,acme.example,acme\n";

    fn now() -> DateTime<Utc> {
        "2026-11-22T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn creating_an_account_fills_defaults_and_identities() {
        let change = AccountChange {
            plan: Some("home".into()),
            currency: Some("USD".into()),
            country_code: Some("1".into()),
            whmcs_client_id: Some("18".into()),
            whmcs_service_id: Some("90".into()),
            billing: Some("pull".into()),
            identities: Some(vec![("freeswitch".into(), "beta.example".into())]),
            ..Default::default()
        };
        let e = edit(ACCOUNTS, IDENTITIES, "beta", &change, now()).unwrap();
        assert!(e.created && e.changed);
        let book = parse_accounts(&e.accounts, &e.identities).unwrap();
        let beta = book.account("beta").unwrap();
        assert_eq!(
            (beta.plan.as_str(), beta.cycle_day, beta.whmcs_service_id),
            ("home", 1, Some(90))
        );
        assert_eq!(beta.billing, Some(BillingMode::Pull));
        assert_eq!(
            book.lookup(cdrate_core::Source::Freeswitch, "beta.example")
                .map(|a| a.id.as_str()),
            Some("beta")
        );
        assert!(book.account("acme").is_some(), "other accounts untouched");
    }

    #[test]
    fn creating_needs_plan_currency_and_country() {
        let e = edit(ACCOUNTS, IDENTITIES, "beta", &AccountChange::default(), now()).unwrap_err();
        assert_eq!(e.code(), "missing_value");
    }

    #[test]
    fn a_plan_change_records_the_old_plan_until_it_takes_effect() {
        let change = AccountChange {
            plan: Some("home".into()),
            ..Default::default()
        };
        let e = edit(ACCOUNTS, IDENTITIES, "acme", &change, now()).unwrap();
        assert!(!e.created && e.changed);
        let book = parse_accounts(&e.accounts, &e.identities).unwrap();
        let acme = book.account("acme").unwrap();
        assert_eq!(acme.plan_at("2026-11-22T09:59:59Z".parse().unwrap()), "business");
        assert_eq!(acme.plan_at(now()), "home");
        // A second change must come later than the first.
        let back = AccountChange {
            plan: Some("business".into()),
            plan_effective_at: Some("2026-11-01T00:00:00Z".parse().unwrap()),
            ..Default::default()
        };
        assert_eq!(
            edit(&e.accounts, &e.identities, "acme", &back, now())
                .unwrap_err()
                .code(),
            "bad_previous_plans"
        );
        // The same plan again changes nothing.
        let same = edit(&e.accounts, &e.identities, "acme", &change, now()).unwrap();
        assert!(!same.changed);
    }

    #[test]
    fn status_and_identity_replacement() {
        let change = AccountChange {
            status: Some("suspended".into()),
            identities: Some(vec![("twilio".into(), "AC123".into())]),
            ..Default::default()
        };
        let e = edit(ACCOUNTS, IDENTITIES, "acme", &change, now()).unwrap();
        let book = parse_accounts(&e.accounts, &e.identities).unwrap();
        assert_eq!(book.account("acme").unwrap().status, AccountStatus::Suspended);
        assert!(book.lookup(cdrate_core::Source::Freeswitch, "acme.example").is_none());
        assert!(book.lookup(cdrate_core::Source::Twilio, "AC123").is_some());
    }

    #[test]
    fn line_breaks_cannot_smuggle_rows() {
        let change = AccountChange {
            plan: Some("home\nevil,home,USD,1,1,011,,,1,".into()),
            ..Default::default()
        };
        assert_eq!(
            edit(ACCOUNTS, IDENTITIES, "acme", &change, now()).unwrap_err().code(),
            "bad_value"
        );
    }
}
