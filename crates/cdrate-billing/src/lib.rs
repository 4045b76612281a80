//! Billing for cdrate (DESIGN §7), pure: no I/O, no clock.
//!
//! - [`cycle`]: billing cycles per account (`cycle_day`, plan time zone,
//!   DST-safe).
//! - [`aggregate`]: closing a cycle into invoice line items per destination,
//!   with late-usage and adjustment lines, and the `[cdrate:<id>]` tag.
//! - [`alerts`]: which credit-limit fractions a usage change crosses, and
//!   the webhook signature.
//! - [`whmcs`]: building WHMCS API requests and judging their answers
//!   (success, definite failure, or an outcome nobody can know).

pub mod aggregate;
pub mod alerts;
pub mod cycle;
pub mod whmcs;

pub use aggregate::{find_tag, plan_close, tag, BillableCall, BilledCall, ClosePlan, CloseRequest, ItemKind, LineItem};
pub use cycle::{cycle_containing, Cycle};

/// Why a billing computation refused its input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BillingError {
    #[error("cycle_day {0} is not a day from 1 to 28")]
    BadCycleDay(u8),
    #[error("no billing cycle exists around {0} (date out of range)")]
    OutOfRange(String),
    #[error("call {id} was answered at {answer_at}, after the cycle being closed ends ({end})")]
    CallAfterCycle { id: String, answer_at: String, end: String },
    #[error("amount {0} cannot be sent to WHMCS")]
    BadAmount(String),
}

impl BillingError {
    /// Stable code of the error.
    pub fn code(&self) -> &'static str {
        match self {
            BillingError::BadCycleDay(_) => "bad_cycle_day",
            BillingError::OutOfRange(_) => "out_of_range",
            BillingError::CallAfterCycle { .. } => "call_after_cycle",
            BillingError::BadAmount(_) => "bad_amount",
        }
    }
}
