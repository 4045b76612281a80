//! Pricing one call on one plan, exactly as DESIGN §5 says.
//!
//! Pure and allocation-free on success: the prefix walk lives on the stack,
//! the local time for bands is computed at most once per plan tried, and the
//! result borrows from the [`TariffSet`]. All arithmetic is `Decimal` or
//! checked integers, and the cost is rounded exactly once, at the end, with
//! the rounding of the plan that priced the call.

use cdrate_core::E164;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::band::{Band, LocalMoment};
use crate::error::PriceError;
use crate::tariff::{Plan, PlanId, Rate, TariffSet};

/// The price of one call and how it was found.
#[derive(Debug, Clone)]
pub struct Quote<'t> {
    /// The plan that priced the call: the requested one or a fallback.
    pub plan: &'t Plan,
    pub rate: &'t Rate,
    pub destination: &'t str,
    pub charged_seconds: u64,
    /// Rounded to the plan's decimals, and carrying exactly that scale.
    pub cost: Decimal,
}

impl<'t> Quote<'t> {
    pub fn band(&self) -> Option<&'t Band> {
        self.rate.band.and_then(|b| self.plan.band(b))
    }
}

/// Charged seconds for `billable` seconds on a rate (DESIGN §5 step 4);
/// `None` on overflow. Zero billable seconds charge nothing.
pub fn charged_seconds(billable: u64, min_seconds: u32, initial: u32, next: u32) -> Option<u64> {
    if billable == 0 {
        return Some(0);
    }
    let d = billable.max(u64::from(min_seconds));
    let (i, n) = (u64::from(initial), u64::from(next.max(1)));
    if d <= i {
        return Some(i);
    }
    (d - i).div_ceil(n).checked_mul(n)?.checked_add(i)
}

impl TariffSet {
    /// Prices a call by plan name; see [`TariffSet::price`].
    pub fn price_on(
        &self,
        plan: &str,
        number: &E164,
        at: DateTime<Utc>,
        billable_seconds: u64,
    ) -> Result<Quote<'_>, PriceError> {
        let id = self
            .plan_id(plan)
            .ok_or_else(|| PriceError::UnknownPlan(plan.to_owned()))?;
        self.price(id, number, at, billable_seconds)
    }

    /// Prices a call to `number` answered (or started, if unanswered) at `at`
    /// with `billable_seconds` (already rounded up from milliseconds), trying
    /// the plan's fallback chain when the plan has no applicable rate.
    pub fn price(
        &self,
        plan: PlanId,
        number: &E164,
        at: DateTime<Utc>,
        billable_seconds: u64,
    ) -> Result<Quote<'_>, PriceError> {
        let mut id = plan;
        // Cycles are rejected at load; the bound is a second line of defence.
        for _ in 0..=self.plans.len() {
            let p = self.plan(id);
            if let Some(rate) = find_rate(p, number.as_str(), at) {
                return quote(self, p, rate, billable_seconds);
            }
            match p.fallback {
                Some(next) => id = next,
                None => break,
            }
        }
        Err(PriceError::NoRoute {
            plan: self.plan(plan).name.to_string(),
            number: number.to_string(),
        })
    }
}

/// The applicable rate with the longest prefix; on an equal prefix a banded
/// row beats an unbanded one (DESIGN §5 steps 1-2).
fn find_rate<'p>(plan: &'p Plan, digits: &str, at: DateTime<Utc>) -> Option<&'p Rate> {
    let mut local: Option<LocalMoment> = None;
    for range in plan.index.matches(digits) {
        let mut unbanded = None;
        for rate in plan.rates.get(range)? {
            if !rate.is_effective(at) {
                continue;
            }
            match rate.band.and_then(|b| plan.band(b)) {
                None => {
                    unbanded.get_or_insert(rate);
                }
                Some(band) => {
                    let now = *local.get_or_insert_with(|| LocalMoment::of(at, plan.timezone));
                    // Bands of a plan never overlap and periods of one
                    // prefix+band never overlap, so the first hit is the only one.
                    if band.contains(now) {
                        return Some(rate);
                    }
                }
            }
        }
        if unbanded.is_some() {
            return unbanded;
        }
    }
    None
}

fn quote<'t>(set: &'t TariffSet, plan: &'t Plan, rate: &'t Rate, billable: u64) -> Result<Quote<'t>, PriceError> {
    let charged = charged_seconds(billable, rate.min_seconds, rate.initial_increment, rate.next_increment)
        .ok_or(PriceError::Overflow)?;
    let exact = if charged == 0 {
        Decimal::ZERO
    } else {
        rate.rate_per_min
            .checked_mul(Decimal::from(charged))
            .and_then(|x| x.checked_div(Decimal::from(60)))
            .and_then(|x| x.checked_add(rate.connect_fee))
            .ok_or(PriceError::Overflow)?
    };
    let mut cost = exact.round_dp_with_strategy(plan.decimals, plan.rounding.strategy());
    cost.rescale(plan.decimals);
    Ok(Quote {
        plan,
        rate,
        destination: set.destination(rate),
        charged_seconds: charged,
        cost,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charged_seconds_table() {
        // (billable, min, initial, next) -> charged
        for (b, m, i, n, want) in [
            (0, 30, 30, 6, 0),
            (1, 0, 60, 6, 60),
            (60, 0, 60, 6, 60),
            (61, 0, 60, 6, 66),
            (66, 0, 60, 6, 66),
            (67, 0, 60, 6, 72),
            (10, 30, 30, 6, 30),
            (31, 30, 30, 6, 36),
            (7, 10, 1, 1, 10),
            (61, 0, 60, 60, 120),
            (1, 0, 1, 1, 1),
        ] {
            assert_eq!(charged_seconds(b, m, i, n), Some(want), "{b} {m} {i} {n}");
        }
        assert_eq!(charged_seconds(u64::MAX, 0, 2, 2), None);
    }
}
