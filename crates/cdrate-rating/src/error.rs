//! Errors of the rating crate, each with a stable snake_case `code()`.
//!
//! [`TariffError`] is one problem found while loading a tariff directory,
//! with the file, line and column it was found at; the loader collects all of
//! them into [`TariffErrors`] before failing. [`PriceError`] is why one call
//! could not be priced. Codes are part of the contract: they appear in CLI
//! output, quarantine reasons and metric labels, so renaming one is a
//! breaking change. [`AccountError`] is the same for an accounts book
//! (`accounts.csv` + `identities.csv`), reusing the tariff codes where the
//! meaning is the same.

use std::fmt;

/// The three files of a tariff directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TariffFile {
    Plans,
    Bands,
    Rates,
}

impl TariffFile {
    pub fn file_name(self) -> &'static str {
        match self {
            TariffFile::Plans => "plans.csv",
            TariffFile::Bands => "bands.csv",
            TariffFile::Rates => "rates.csv",
        }
    }
}

/// What is wrong, without where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TariffErrorKind {
    #[error("cannot read the file: {0}")]
    MissingFile(String),
    #[error("not valid CSV: {0}")]
    BadCsv(String),
    #[error("unknown column {0:?}")]
    UnknownColumn(String),
    #[error("missing column {0:?}")]
    MissingColumn(&'static str),
    #[error("column {0:?} appears twice")]
    DuplicateColumn(String),
    #[error("row has {got} fields, the header has {want}")]
    BadRow { got: usize, want: usize },
    #[error("{0} must not be empty")]
    MissingValue(&'static str),
    #[error("plan {0:?} is defined twice (first on line {1})")]
    DuplicatePlan(String, u64),
    #[error("{0:?} is not an ISO 4217 currency code")]
    BadCurrency(String),
    #[error("{0:?} is not an IANA time zone")]
    BadTimezone(String),
    #[error("decimals {0:?} is not a whole number from 0 to 10")]
    BadDecimals(String),
    #[error("rounding {0:?} is not one of half_up, half_even, up, down")]
    BadRounding(String),
    #[error("plan {0:?} is not defined in plans.csv")]
    UnknownPlan(String),
    #[error("band {0:?} is defined twice for this plan (first on line {1})")]
    DuplicateBand(String, u64),
    #[error("{0}")]
    BadDays(String),
    #[error("{0}")]
    BadTimeOfDay(String),
    #[error("band {band:?} overlaps band {other:?} (line {other_line}) on {day} at {time}")]
    OverlappingBands {
        band: String,
        other: String,
        other_line: u64,
        day: &'static str,
        time: String,
    },
    #[error("prefix {0:?} must be at most 15 digits and nothing else")]
    BadPrefix(String),
    #[error("{0:?} is not a decimal number")]
    BadDecimal(String),
    #[error("{field} is negative ({value})")]
    NegativeAmount { field: &'static str, value: String },
    #[error("{field} {value:?} is not a whole number of seconds")]
    BadInteger { field: &'static str, value: String },
    #[error("{field} is {value}, it must be at least 1 second")]
    BadIncrement { field: &'static str, value: String },
    #[error("{0:?} is not an RFC 3339 timestamp (e.g. 2026-01-01T00:00:00Z)")]
    BadTimestamp(String),
    #[error("effective_to is not after effective_from")]
    EmptyPeriod,
    #[error("band {band:?} is not defined for plan {plan:?} in bands.csv")]
    UnknownBand { plan: String, band: String },
    #[error("effective period overlaps the row on line {0} with the same plan, prefix and band")]
    OverlappingRates(u64),
    #[error("fallback plan {0:?} is not defined")]
    UnknownFallback(String),
    #[error("fallback chain loops: {0}")]
    FallbackCycle(String),
    #[error("fallback plan {fallback:?} is in {fallback_currency}, this plan is in {currency}")]
    FallbackCurrencyMismatch {
        fallback: String,
        currency: String,
        fallback_currency: String,
    },
}

impl TariffErrorKind {
    pub fn code(&self) -> &'static str {
        use TariffErrorKind::*;
        match self {
            MissingFile(_) => "missing_file",
            BadCsv(_) => "bad_csv",
            UnknownColumn(_) => "unknown_column",
            MissingColumn(_) => "missing_column",
            DuplicateColumn(_) => "duplicate_column",
            BadRow { .. } => "bad_row",
            MissingValue(_) => "missing_value",
            DuplicatePlan(..) => "duplicate_plan",
            BadCurrency(_) => "bad_currency",
            BadTimezone(_) => "bad_timezone",
            BadDecimals(_) => "bad_decimals",
            BadRounding(_) => "bad_rounding",
            UnknownPlan(_) => "unknown_plan",
            DuplicateBand(..) => "duplicate_band",
            BadDays(_) => "bad_days",
            BadTimeOfDay(_) => "bad_time_of_day",
            OverlappingBands { .. } => "overlapping_bands",
            BadPrefix(_) => "bad_prefix",
            BadDecimal(_) => "bad_decimal",
            NegativeAmount { .. } => "negative_amount",
            BadInteger { .. } => "bad_integer",
            BadIncrement { .. } => "bad_increment",
            BadTimestamp(_) => "bad_timestamp",
            EmptyPeriod => "empty_period",
            UnknownBand { .. } => "unknown_band",
            OverlappingRates(_) => "overlapping_rates",
            UnknownFallback(_) => "unknown_fallback",
            FallbackCycle(_) => "fallback_cycle",
            FallbackCurrencyMismatch { .. } => "fallback_currency_mismatch",
        }
    }
}

/// One problem in a tariff directory and where it is. `line` and `column`
/// are 1-based; 0 means the whole file or the whole row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{column}: {}: {kind}", file.file_name(), kind.code())]
pub struct TariffError {
    pub file: TariffFile,
    pub line: u64,
    pub column: usize,
    pub kind: TariffErrorKind,
}

impl TariffError {
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }
}

/// Every problem found in one load, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TariffErrors(pub Vec<TariffError>);

impl TariffErrors {
    pub fn iter(&self) -> impl Iterator<Item = &TariffError> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for TariffErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for TariffErrors {}

/// Why a call could not be priced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    #[error("plan {0:?} does not exist")]
    UnknownPlan(String),
    #[error("no rate of plan {plan:?} (or its fallbacks) applies to {number} at that time")]
    NoRoute { plan: String, number: String },
    #[error("the cost does not fit in a decimal")]
    Overflow,
}

impl PriceError {
    pub fn code(&self) -> &'static str {
        match self {
            PriceError::UnknownPlan(_) => "unknown_plan",
            PriceError::NoRoute { .. } => "no_route",
            PriceError::Overflow => "amount_overflow",
        }
    }
}

/// The two files of an accounts book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountFile {
    Accounts,
    Identities,
}

impl AccountFile {
    pub fn file_name(self) -> &'static str {
        match self {
            AccountFile::Accounts => "accounts.csv",
            AccountFile::Identities => "identities.csv",
        }
    }
}

/// What is wrong with an accounts book, without where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountErrorKind {
    #[error("cannot read the file: {0}")]
    MissingFile(String),
    #[error("not valid CSV: {0}")]
    BadCsv(String),
    #[error("unknown column {0:?}")]
    UnknownColumn(String),
    #[error("missing column {0:?}")]
    MissingColumn(&'static str),
    #[error("column {0:?} appears twice")]
    DuplicateColumn(String),
    #[error("row has {got} fields, the header has {want}")]
    BadRow { got: usize, want: usize },
    #[error("{0} must not be empty")]
    MissingValue(&'static str),
    #[error("account {0:?} is defined twice (first on line {1})")]
    DuplicateAccount(String, u64),
    #[error("{0:?} is not an ISO 4217 currency code")]
    BadCurrency(String),
    #[error("country_code {0:?} must be 1 to 3 digits, not starting with 0")]
    BadCountryCode(String),
    #[error("{field} {value:?} {reason}")]
    BadPrefix {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("cycle_day {0:?} is not a day from 1 to 28")]
    BadCycleDay(String),
    #[error("{0:?} is not a decimal number")]
    BadDecimal(String),
    #[error("{field} is negative ({value})")]
    NegativeAmount { field: &'static str, value: String },
    #[error("{field} {value:?} is not a positive whole number")]
    BadInteger { field: &'static str, value: String },
    #[error("extension_length {0:?} is not a whole number from 0 to 7")]
    BadExtensionLength(String),
    #[error("billing {0:?} is not one of push, pull, none (or empty for the configured default)")]
    BadBillingMode(String),
    #[error("status {0:?} is not one of active, suspended, terminated")]
    BadStatus(String),
    #[error("previous_plans {0:?} must be plan@RFC3339 entries separated by |, instants increasing")]
    BadPreviousPlans(String),
    #[error("source {0:?} is not one of freeswitch, twilio, zadarma, fritzbox, generic")]
    UnknownSource(String),
    #[error("account {0:?} is not defined in accounts.csv")]
    UnknownAccount(String),
    #[error("{source_name} key {key:?} is mapped twice (first on line {first_line})")]
    DuplicateIdentity {
        source_name: &'static str,
        key: String,
        first_line: u64,
    },
    #[error("{field} {plan:?} is not a plan of the tariff set")]
    UnknownPlan { field: &'static str, plan: String },
    #[error("{field} {plan:?} is in {plan_currency}, the account is in {currency}")]
    PlanCurrencyMismatch {
        field: &'static str,
        plan: String,
        plan_currency: String,
        currency: String,
    },
}

impl AccountErrorKind {
    pub fn code(&self) -> &'static str {
        use AccountErrorKind::*;
        match self {
            MissingFile(_) => "missing_file",
            BadCsv(_) => "bad_csv",
            UnknownColumn(_) => "unknown_column",
            MissingColumn(_) => "missing_column",
            DuplicateColumn(_) => "duplicate_column",
            BadRow { .. } => "bad_row",
            MissingValue(_) => "missing_value",
            DuplicateAccount(..) => "duplicate_account",
            BadCurrency(_) => "bad_currency",
            BadCountryCode(_) => "bad_country_code",
            BadPrefix { .. } => "bad_prefix",
            BadCycleDay(_) => "bad_cycle_day",
            BadDecimal(_) => "bad_decimal",
            NegativeAmount { .. } => "negative_amount",
            BadInteger { .. } => "bad_integer",
            BadExtensionLength(_) => "bad_extension_length",
            BadBillingMode(_) => "bad_billing_mode",
            BadStatus(_) => "bad_status",
            BadPreviousPlans(_) => "bad_previous_plans",
            UnknownSource(_) => "unknown_source",
            UnknownAccount(_) => "unknown_account",
            DuplicateIdentity { .. } => "duplicate_identity",
            UnknownPlan { .. } => "unknown_plan",
            PlanCurrencyMismatch { .. } => "plan_currency_mismatch",
        }
    }
}

/// One problem in an accounts book and where it is. `line` and `column` are
/// 1-based; 0 means the whole file or the whole row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{column}: {}: {kind}", file.file_name(), kind.code())]
pub struct AccountError {
    pub file: AccountFile,
    pub line: u64,
    pub column: usize,
    pub kind: AccountErrorKind,
}

impl AccountError {
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }
}

/// Every problem found in one load of an accounts book, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountErrors(pub Vec<AccountError>);

impl AccountErrors {
    pub fn iter(&self) -> impl Iterator<Item = &AccountError> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for AccountErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for AccountErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    /// The account codes are a contract: each is snake_case, the list is the
    /// documented one, and structural problems share the tariff codes.
    #[test]
    fn account_codes_are_the_documented_snake_case_set() {
        use AccountErrorKind::*;
        let s = String::new;
        let kinds = [
            MissingFile(s()),
            BadCsv(s()),
            UnknownColumn(s()),
            MissingColumn("x"),
            DuplicateColumn(s()),
            BadRow { got: 1, want: 2 },
            MissingValue("x"),
            DuplicateAccount(s(), 1),
            BadCurrency(s()),
            BadCountryCode(s()),
            BadPrefix {
                field: "x",
                value: s(),
                reason: "x",
            },
            BadCycleDay(s()),
            BadDecimal(s()),
            NegativeAmount { field: "x", value: s() },
            BadInteger { field: "x", value: s() },
            BadExtensionLength(s()),
            UnknownSource(s()),
            UnknownAccount(s()),
            DuplicateIdentity {
                source_name: "x",
                key: s(),
                first_line: 1,
            },
            UnknownPlan { field: "x", plan: s() },
            PlanCurrencyMismatch {
                field: "x",
                plan: s(),
                plan_currency: s(),
                currency: s(),
            },
        ];
        let codes: Vec<&str> = kinds.iter().map(|k| k.code()).collect();
        assert_eq!(
            codes,
            [
                "missing_file",
                "bad_csv",
                "unknown_column",
                "missing_column",
                "duplicate_column",
                "bad_row",
                "missing_value",
                "duplicate_account",
                "bad_currency",
                "bad_country_code",
                "bad_prefix",
                "bad_cycle_day",
                "bad_decimal",
                "negative_amount",
                "bad_integer",
                "bad_extension_length",
                "unknown_source",
                "unknown_account",
                "duplicate_identity",
                "unknown_plan",
                "plan_currency_mismatch",
            ]
        );
        let unique: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), codes.len());
        for code in codes {
            assert!(
                code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') && !code.starts_with('_'),
                "{code}"
            );
        }
        let tariff_structural = [
            TariffErrorKind::MissingFile(s()).code(),
            TariffErrorKind::BadCsv(s()).code(),
            TariffErrorKind::UnknownColumn(s()).code(),
            TariffErrorKind::MissingColumn("x").code(),
            TariffErrorKind::DuplicateColumn(s()).code(),
            TariffErrorKind::BadRow { got: 1, want: 2 }.code(),
            TariffErrorKind::MissingValue("x").code(),
        ];
        assert_eq!(
            tariff_structural,
            kinds.iter().take(7).map(|k| k.code()).collect::<Vec<_>>()[..]
        );
    }
}
