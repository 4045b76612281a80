//! The loaded tariff model: a [`TariffSet`] of [`Plan`]s, each with its
//! [`Band`]s and [`Rate`]s indexed by prefix.
//!
//! A `TariffSet` is immutable once built by the loader (which is the only
//! way to make one, so every set that exists has passed validation); a reload
//! builds a new set and the caller swaps it in. Pricing lives in `price`.

use std::collections::HashMap;

use cdrate_core::Currency;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rust_decimal::{Decimal, RoundingStrategy};

use crate::band::Band;
use crate::prefix_index::PrefixIndex;

/// How a plan rounds each call's cost, once, at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounding {
    HalfUp,
    HalfEven,
    /// Away from zero.
    Up,
    /// Toward zero.
    Down,
}

impl Rounding {
    pub fn parse(s: &str) -> Option<Rounding> {
        match s {
            "half_up" => Some(Rounding::HalfUp),
            "half_even" => Some(Rounding::HalfEven),
            "up" => Some(Rounding::Up),
            "down" => Some(Rounding::Down),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Rounding::HalfUp => "half_up",
            Rounding::HalfEven => "half_even",
            Rounding::Up => "up",
            Rounding::Down => "down",
        }
    }

    pub fn strategy(self) -> RoundingStrategy {
        match self {
            Rounding::HalfUp => RoundingStrategy::MidpointAwayFromZero,
            Rounding::HalfEven => RoundingStrategy::MidpointNearestEven,
            Rounding::Up => RoundingStrategy::AwayFromZero,
            Rounding::Down => RoundingStrategy::ToZero,
        }
    }
}

/// Index of a plan inside its [`TariffSet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PlanId(pub(crate) u32);

/// Index of a band inside its [`Plan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BandId(pub(crate) u16);

/// One row of `rates.csv`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rate {
    pub prefix: Box<str>,
    pub(crate) destination: u32,
    pub band: Option<BandId>,
    pub connect_fee: Decimal,
    pub rate_per_min: Decimal,
    pub min_seconds: u32,
    pub initial_increment: u32,
    pub next_increment: u32,
    pub effective_from: Option<DateTime<Utc>>,
    pub effective_to: Option<DateTime<Utc>>,
    /// Line in `rates.csv`, so an explanation can point at the row.
    pub line: u64,
}

impl Rate {
    /// `effective_from <= at < effective_to`, open ends unbounded.
    pub fn is_effective(&self, at: DateTime<Utc>) -> bool {
        self.effective_from.is_none_or(|from| from <= at) && self.effective_to.is_none_or(|to| at < to)
    }
}

/// One plan with everything needed to price on it.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: Box<str>,
    pub currency: Currency,
    pub timezone: Tz,
    pub decimals: u32,
    pub rounding: Rounding,
    pub fallback: Option<PlanId>,
    pub bands: Vec<Band>,
    /// Sorted by prefix, so each prefix's rows are one range of the index.
    pub(crate) rates: Vec<Rate>,
    pub(crate) index: PrefixIndex,
}

impl Plan {
    pub fn rates(&self) -> &[Rate] {
        &self.rates
    }

    pub fn band(&self, id: BandId) -> Option<&Band> {
        self.bands.get(usize::from(id.0))
    }

    pub fn prefix_count(&self) -> usize {
        self.index.prefix_count()
    }
}

/// A validated tariff directory, ready to price against.
#[derive(Debug, Clone)]
pub struct TariffSet {
    pub(crate) plans: Vec<Plan>,
    pub(crate) by_name: HashMap<Box<str>, PlanId>,
    /// Destination names, shared by every rate that uses them.
    pub(crate) destinations: Vec<Box<str>>,
}

impl TariffSet {
    pub fn plan_id(&self, name: &str) -> Option<PlanId> {
        self.by_name.get(name).copied()
    }

    /// The time zone of plan `name`, if the set has it (an account's
    /// billing cycles are counted in its plan's zone).
    pub fn plan_timezone(&self, name: &str) -> Option<Tz> {
        self.plan_id(name).map(|p| self.plan(p).timezone)
    }

    pub fn plan(&self, id: PlanId) -> &Plan {
        // PlanIds are only handed out by this set, so the index is in range.
        &self.plans[id.0 as usize]
    }

    /// Plans in `plans.csv` order.
    pub fn plans(&self) -> &[Plan] {
        &self.plans
    }

    pub fn destination(&self, rate: &Rate) -> &str {
        self.destinations.get(rate.destination as usize).map_or("", |d| d)
    }

    pub fn rate_count(&self) -> usize {
        self.plans.iter().map(|p| p.rates.len()).sum()
    }

    pub fn band_count(&self) -> usize {
        self.plans.iter().map(|p| p.bands.len()).sum()
    }
}
