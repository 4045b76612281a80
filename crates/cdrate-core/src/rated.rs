//! [`RatedCall`]: a [`CallRecord`] with its price, the `rated.v1` message on
//! the bus and a row of the store's `rated_calls` (DESIGN §4).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::call::CallRecord;
use crate::money::Currency;

/// Message schema id carried in every `rated.v1` message.
pub const RATED_SCHEMA: &str = "rated.v1";

/// A priced call. `cost` is exact and serialized as a string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RatedCall {
    /// The call as received, with `callee_e164` filled in by rating.
    #[serde(flatten)]
    pub call: CallRecord,
    pub account_id: String,
    /// Plan that priced the call (a fallback plan when one did); `None` for
    /// calls stored at zero cost without pricing (internal, b-leg, inbound
    /// without an inbound plan).
    pub plan: Option<String>,
    pub prefix: Option<String>,
    pub destination: Option<String>,
    pub band: Option<String>,
    pub charged_seconds: u64,
    #[serde(with = "rust_decimal::serde::str")]
    pub cost: Decimal,
    pub currency: Currency,
    /// Why a call costs nothing without being priced: `internal`, `b_leg`,
    /// `inbound_free`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// `suspended` or `terminated` when the account was not active when the
    /// call was rated: the call is kept and priced all the same, flagged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_status: Option<String>,
    /// Tariff version that priced it.
    pub tariff_version: i64,
    /// 1 when first rated; bumped by every re-rating.
    pub rating_version: u32,
    pub rated_at: DateTime<Utc>,
}
