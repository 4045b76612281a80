//! cdrate's pricing core: tariffs and accounts in, exact prices out. No
//! clock, no network; the only I/O is [`load_dir`] reading a tariff
//! directory and [`load_accounts`] reading an accounts book.
//!
//! - [`loader`]: reads `plans.csv`, `bands.csv`, `rates.csv`, validates them
//!   and reports every problem with file, line, column and a stable code.
//! - [`accounts`]: reads `accounts.csv` and `identities.csv` the same way
//!   into an [`AccountBook`]: source identity → billing [`Account`].
//! - [`normalize`]: DESIGN §6 number normalization with an account's
//!   [`NumberingPlan`], giving E.164 digits or an internal extension.
//! - [`tariff`]: the loaded model, [`TariffSet`] → [`Plan`] → [`Rate`].
//! - [`band`]: weekday/time-of-day bands in the plan's time zone.
//! - [`prefix_index`]: the digit trie behind longest-prefix lookup.
//! - [`price`]: DESIGN §5 pricing, returning a [`Quote`] or a [`PriceError`].
//! - [`rate`]: one call record → account → normalized number → price.
//! - [`error`]: [`TariffError`], [`AccountError`] and [`PriceError`] with
//!   their codes.
//!
//! The CSV plumbing both loaders share (header checks, located field errors)
//! is the private `csv_sheet` module.
//!
//! ```
//! use cdrate_rating::{parse_tariffs, E164};
//!
//! let tariffs = parse_tariffs(
//!     "plan,currency,timezone,decimals,rounding,fallback\nretail,USD,UTC,4,half_up,\n",
//!     "",
//!     "plan,prefix,destination,band,connect_fee,rate_per_min,min_seconds,initial_increment,next_increment,effective_from,effective_to\n\
//!      retail,44,United Kingdom,,0,0.0250,0,1,1,2026-01-01T00:00:00Z,\n",
//! )
//! .unwrap();
//! let to = E164::parse_international("+44 20 7123 4567").unwrap();
//! let quote = tariffs
//!     .price_on("retail", &to, "2026-03-10T10:00:00Z".parse().unwrap(), 100)
//!     .unwrap();
//! assert_eq!(quote.cost.to_string(), "0.0417");
//! assert_eq!(quote.destination, "United Kingdom");
//! ```

pub mod accounts;
pub mod accounts_edit;
pub mod band;
mod csv_sheet;
pub mod error;
pub mod loader;
pub mod normalize;
pub mod prefix_index;
pub mod price;
pub mod rate;
pub mod tariff;

pub use accounts::{load_accounts, parse_accounts, Account, AccountBook, AccountStatus, BillingMode, PlanPeriod};
pub use cdrate_core::E164;
pub use error::{
    AccountError, AccountErrorKind, AccountErrors, AccountFile, PriceError, TariffError, TariffErrorKind, TariffErrors,
    TariffFile,
};
pub use loader::{load_dir, parse_tariffs};
pub use normalize::{normalize_number, Dialled, NumberingPlan};
pub use price::{charged_seconds, Quote};
pub use tariff::{Plan, PlanId, Rate, Rounding, TariffSet};
