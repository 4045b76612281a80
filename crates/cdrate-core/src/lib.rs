//! Domain types shared by every cdrate crate. No I/O, no clock, no async.
//!
//! - [`money`]: [`Currency`] and [`Money`], exact decimal amounts that refuse
//!   to mix currencies.
//! - [`number`]: [`E164`], a dialled number reduced to its international digits.
//! - [`call`]: [`CallRecord`] (the `call.v1` bus message) and its enums
//!   [`Source`], [`Direction`], [`Disposition`].
//! - [`rated`]: [`RatedCall`] (the `rated.v1` message), a call with its price.
//!
//! Everything here is a value: constructors validate, so a value that exists
//! is valid, and the rest of cdrate parses once and never re-checks.

pub mod call;
pub mod money;
pub mod number;
pub mod rated;

pub use call::{CallRecord, Direction, Disposition, Source, CALL_SCHEMA};
pub use money::{Currency, CurrencyError, Money, MoneyError};
pub use number::{E164Error, E164};
pub use rated::RatedCall;
