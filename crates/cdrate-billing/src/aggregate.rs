//! Closing a cycle: the calls an account still has to be billed for become
//! invoice line items, one per (kind, destination).
//!
//! - **usage**: never billed, answered inside the cycle;
//! - **late**: never billed, answered before the cycle (the CDR arrived
//!   after its own cycle was closed) — billed now, never lost;
//! - **adjustment**: billed before at a different cost (re-rated or a
//!   corrected CDR): the difference, which may be negative.
//!
//! Amounts: the close's exact total is rounded once (half away from zero)
//! to the invoice's decimals, and that total is shared out over the lines
//! by largest remainder: each line is within one unit (a cent) of its exact
//! sum, and the lines add up to the rounded total exactly, so an invoice
//! matches the sum of its rated calls to the cent. (Rounding each call
//! would drift by up to half a cent per call; rounding each line by up to
//! half a cent per line.) Item ids are a hash of what the item is, so
//! planning the same close twice gives the same ids.

use std::collections::BTreeMap;

use cdrate_core::Currency;
use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use crate::cycle::Cycle;
use crate::BillingError;

/// A call a close may bill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillableCall {
    pub id: String,
    pub answer_at: DateTime<Utc>,
    pub destination: String,
    pub charged_seconds: i64,
    pub cost: Decimal,
    /// What an earlier close billed for this call, if one did.
    pub billed_cost: Option<Decimal>,
}

pub struct CloseRequest<'a> {
    pub account: &'a str,
    pub currency: Currency,
    pub cycle: Cycle,
    /// The plan's zone, for human-readable dates in descriptions.
    pub tz: Tz,
    pub calls: &'a [BillableCall],
    /// Decimal places of line amounts.
    pub decimals: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    Usage,
    Late,
    Adjustment,
}

impl ItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Usage => "usage",
            ItemKind::Late => "late",
            ItemKind::Adjustment => "adjustment",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineItem {
    pub id: String,
    pub account: String,
    pub cycle_start: DateTime<Utc>,
    pub cycle_end: DateTime<Utc>,
    pub kind: ItemKind,
    pub destination: String,
    pub calls: u64,
    pub billed_seconds: i64,
    pub amount: Decimal,
    pub currency: String,
    pub description: String,
}

/// A call consumed by the close: what it is now billed at, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BilledCall {
    pub call_id: String,
    pub billed_cost: Decimal,
    /// `None` when its line came to nothing (an adjustment netting to zero).
    pub item_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosePlan {
    pub items: Vec<LineItem>,
    pub billed: Vec<BilledCall>,
    pub total: Decimal,
}

#[derive(Default)]
struct Group<'c> {
    calls: Vec<&'c BillableCall>,
    seconds: i64,
    exact: Decimal,
}

/// Plans the close of `req.cycle`: its line items and what each call is
/// billed at afterwards. Calls whose billed cost equals their cost have
/// nothing to bill and are left out.
pub fn plan_close(req: &CloseRequest) -> Result<ClosePlan, BillingError> {
    let mut groups: BTreeMap<(ItemKind, &str), Group> = BTreeMap::new();
    for call in req.calls {
        if call.answer_at >= req.cycle.end {
            return Err(BillingError::CallAfterCycle {
                id: call.id.clone(),
                answer_at: call.answer_at.to_rfc3339(),
                end: req.cycle.end.to_rfc3339(),
            });
        }
        let (kind, amount) = match call.billed_cost {
            None if call.answer_at >= req.cycle.start => (ItemKind::Usage, call.cost),
            None => (ItemKind::Late, call.cost),
            Some(b) if b == call.cost => continue,
            Some(b) => (ItemKind::Adjustment, call.cost - b),
        };
        let g = groups.entry((kind, call.destination.as_str())).or_default();
        g.calls.push(call);
        g.seconds = g.seconds.saturating_add(call.charged_seconds);
        g.exact += amount;
    }
    let mut plan = ClosePlan {
        items: Vec::new(),
        billed: Vec::new(),
        total: Decimal::ZERO,
    };
    let amounts = allocate(groups.values().map(|g| g.exact), req.decimals);
    for (((kind, destination), g), amount) in groups.into_iter().zip(amounts) {
        // A re-rating that nets to nothing is not worth an invoice line.
        let item_id = if kind == ItemKind::Adjustment && amount.is_zero() {
            None
        } else {
            let id = item_id(req.account, req.cycle.start, kind, destination);
            plan.items.push(LineItem {
                id: id.clone(),
                account: req.account.to_owned(),
                cycle_start: req.cycle.start,
                cycle_end: req.cycle.end,
                kind,
                destination: destination.to_owned(),
                calls: g.calls.len() as u64,
                billed_seconds: g.seconds,
                amount,
                currency: req.currency.to_string(),
                description: describe(kind, destination, g.calls.len(), g.seconds, req),
            });
            plan.total += amount;
            Some(id)
        };
        plan.billed.extend(g.calls.iter().map(|c| BilledCall {
            call_id: c.id.clone(),
            billed_cost: c.cost,
            item_id: item_id.clone(),
        }));
    }
    Ok(plan)
}

/// Rounds `exact` amounts to `decimals` so that they add up to their exact
/// total rounded once: every amount starts at its floor, and the units still
/// missing go to the largest remainders (ties: first come).
pub fn allocate(exact: impl Iterator<Item = Decimal>, decimals: u32) -> Vec<Decimal> {
    let exact: Vec<Decimal> = exact.collect();
    let total = exact
        .iter()
        .copied()
        .sum::<Decimal>()
        .round_dp_with_strategy(decimals, RoundingStrategy::MidpointAwayFromZero);
    let mut out: Vec<Decimal> = exact
        .iter()
        .map(|e| e.round_dp_with_strategy(decimals, RoundingStrategy::ToNegativeInfinity))
        .collect();
    let unit = Decimal::new(1, decimals);
    let floors: Decimal = out.iter().copied().sum();
    // Between 0 and exact.len() units: floors lose less than one unit each,
    // and rounding the total moves it by at most half a unit.
    let mut missing = ((total - floors) / unit).round();
    let mut order: Vec<usize> = (0..exact.len()).collect();
    order.sort_by(|&a, &b| (exact[b] - out[b]).cmp(&(exact[a] - out[a])).then(a.cmp(&b)));
    for i in order {
        if missing <= Decimal::ZERO {
            break;
        }
        out[i] += unit;
        missing -= Decimal::ONE;
    }
    for a in &mut out {
        a.rescale(decimals);
    }
    out
}

fn item_id(account: &str, cycle_start: DateTime<Utc>, kind: ItemKind, destination: &str) -> String {
    let mut h = Sha1::new();
    for part in [
        account,
        &cycle_start.to_rfc3339_opts(SecondsFormat::Secs, true),
        kind.as_str(),
        destination,
    ] {
        h.update(part.as_bytes());
        h.update([0x1f]);
    }
    let digest = h.finalize();
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("li-{hex}")
}

/// `m:ss` of a number of seconds (hours shown as minutes: `125:03`).
fn minutes(seconds: i64) -> String {
    let s = seconds.max(0);
    format!("{}:{:02}", s / 60, s % 60)
}

fn describe(kind: ItemKind, destination: &str, calls: usize, seconds: i64, req: &CloseRequest) -> String {
    let n = if calls == 1 {
        "1 call".to_owned()
    } else {
        format!("{calls} calls")
    };
    match kind {
        ItemKind::Usage => format!("Calls to {destination} — {n}, {} min", minutes(seconds)),
        ItemKind::Late => format!(
            "Late calls to {destination} (before {}) — {n}, {} min",
            req.cycle.start.with_timezone(&req.tz).date_naive(),
            minutes(seconds)
        ),
        ItemKind::Adjustment => format!("Adjustment for re-rated calls to {destination} — {n}"),
    }
}

/// `description [cdrate:<id>]`: the tag that finds an item on an invoice.
pub fn tag(description: &str, id: &str) -> String {
    format!("{description} [cdrate:{id}]")
}

/// The item id in the last `[cdrate:…]` tag of a description.
pub fn find_tag(description: &str) -> Option<&str> {
    let start = description.rfind("[cdrate:")? + "[cdrate:".len();
    let rest = &description[start..];
    let end = rest.find(']')?;
    let id = &rest[..end];
    (!id.is_empty()).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn cycle() -> Cycle {
        Cycle {
            start: "2026-11-01T00:00:00Z".parse().unwrap(),
            end: "2026-12-01T00:00:00Z".parse().unwrap(),
        }
    }

    fn call(id: &str, at: &str, dest: &str, secs: i64, cost: &str, billed: Option<&str>) -> BillableCall {
        BillableCall {
            id: id.into(),
            answer_at: at.parse().unwrap(),
            destination: dest.into(),
            charged_seconds: secs,
            cost: d(cost),
            billed_cost: billed.map(d),
        }
    }

    fn plan(calls: &[BillableCall]) -> ClosePlan {
        plan_close(&CloseRequest {
            account: "acme",
            currency: "USD".parse().unwrap(),
            cycle: cycle(),
            tz: chrono_tz::UTC,
            calls,
            decimals: 2,
        })
        .unwrap()
    }

    #[test]
    fn usage_late_and_adjustment_lines() {
        let calls = [
            call("a", "2026-11-03T10:00:00Z", "United Kingdom", 61, "0.0250", None),
            call("b", "2026-11-04T10:00:00Z", "United Kingdom", 1990, "0.8125", None),
            call("c", "2026-10-31T23:59:59Z", "United Kingdom", 60, "0.0250", None),
            call("e", "2026-10-15T10:00:00Z", "Germany", 120, "0.0500", Some("0.0400")),
            call("f", "2026-10-15T11:00:00Z", "Germany", 120, "0.0400", Some("0.0400")),
        ];
        let p = plan(&calls);
        let lines: Vec<(ItemKind, &str, u64, Decimal)> = p
            .items
            .iter()
            .map(|i| (i.kind, i.destination.as_str(), i.calls, i.amount))
            .collect();
        assert_eq!(
            lines,
            vec![
                (ItemKind::Usage, "United Kingdom", 2, d("0.84")),
                // 0.8375 + 0.0250 + 0.0100 = 0.8725 → 0.87: the usage line's
                // larger remainder gets the cent, the late line stays at its floor.
                (ItemKind::Late, "United Kingdom", 1, d("0.02")),
                (ItemKind::Adjustment, "Germany", 1, d("0.01")),
            ]
        );
        assert_eq!(p.items[0].description, "Calls to United Kingdom — 2 calls, 34:11 min");
        assert_eq!(
            p.items[1].description,
            "Late calls to United Kingdom (before 2026-11-01) — 1 call, 1:00 min"
        );
        assert_eq!(
            p.items[2].description,
            "Adjustment for re-rated calls to Germany — 1 call"
        );
        assert_eq!(p.total, d("0.87"));
        // `f` has nothing to bill; every other call is billed once.
        let ids: Vec<&str> = p.billed.iter().map(|b| b.call_id.as_str()).collect();
        assert_eq!(ids, vec!["a", "b", "c", "e"]);
        assert_eq!(p.billed[3].billed_cost, d("0.0500"));
    }

    #[test]
    fn sum_first_then_round_once() {
        // Three calls at 0.0049: rounding each would bill 0.00; the line is 0.01.
        let calls: Vec<_> = (0..3)
            .map(|i| call(&format!("c{i}"), "2026-11-02T00:00:00Z", "X", 6, "0.0049", None))
            .collect();
        assert_eq!(plan(&calls).items[0].amount, d("0.01"));
        // Half away from zero, also for credits.
        let neg = [call("n", "2026-11-02T00:00:00Z", "X", 6, "0.010", Some("0.015"))];
        assert_eq!(plan(&neg).items[0].amount, d("-0.01"));
    }

    #[test]
    fn lines_add_up_to_the_total_rounded_once() {
        // Three lines of 0.005 each: rounding each gives 0.03, the calls sum
        // to 0.015 → 0.02; the cent goes to the first line with the largest remainder.
        let calls: Vec<_> = ["A", "B", "C"]
            .iter()
            .map(|dest| call(dest, "2026-11-02T00:00:00Z", dest, 6, "0.005", None))
            .collect();
        let p = plan(&calls);
        let amounts: Vec<Decimal> = p.items.iter().map(|i| i.amount).collect();
        assert_eq!(amounts, vec![d("0.01"), d("0.01"), d("0.00")]);
        assert_eq!(p.total, d("0.02"));
        // 2.508 → 2.51: the one missing cent goes to the first of the tied remainders.
        let a = allocate([d("1.004"), d("2.004"), d("-0.5")].into_iter(), 2);
        assert_eq!(a, vec![d("1.01"), d("2.00"), d("-0.50")]);
        assert_eq!(a[2].to_string(), "-0.50", "amounts carry the invoice's decimals");
        assert_eq!(allocate(std::iter::empty(), 2), Vec::<Decimal>::new());
    }

    #[test]
    fn an_adjustment_netting_to_zero_has_no_line_but_updates_the_call() {
        let calls = [call("z", "2026-10-02T00:00:00Z", "X", 6, "0.0101", Some("0.0100"))];
        let p = plan(&calls);
        assert!(p.items.is_empty());
        assert_eq!(
            p.billed,
            vec![BilledCall {
                call_id: "z".into(),
                billed_cost: d("0.0101"),
                item_id: None
            }]
        );
    }

    #[test]
    fn a_call_after_the_cycle_is_a_caller_bug() {
        let calls = [call("x", "2026-12-01T00:00:00Z", "X", 6, "1", None)];
        let e = plan_close(&CloseRequest {
            account: "acme",
            currency: "USD".parse().unwrap(),
            cycle: cycle(),
            tz: chrono_tz::UTC,
            calls: &calls,
            decimals: 2,
        })
        .unwrap_err();
        assert_eq!(e.code(), "call_after_cycle");
    }

    #[test]
    fn ids_are_deterministic_and_tags_round_trip() {
        let calls = [call("a", "2026-11-03T10:00:00Z", "United Kingdom", 61, "0.0250", None)];
        let (p1, p2) = (plan(&calls), plan(&calls));
        assert_eq!(p1.items[0].id, p2.items[0].id);
        assert!(p1.items[0].id.starts_with("li-") && p1.items[0].id.len() == 19);
        let tagged = tag(&p1.items[0].description, &p1.items[0].id);
        assert_eq!(find_tag(&tagged), Some(p1.items[0].id.as_str()));
        assert_eq!(find_tag("VoIP trunk (01/06/2025 - 30/06/2025)"), None);
        assert_eq!(find_tag("[cdrate:]"), None);
        assert_eq!(find_tag("x [cdrate:old] y [cdrate:li-1]"), Some("li-1"));
    }

    fn arb_call() -> impl Strategy<Value = BillableCall> {
        (
            0u32..1000,
            0i64..(61 * 86_400),
            0usize..3,
            0i64..10_000,
            0i64..100_000,
            proptest::option::of(0i64..100_000),
        )
            .prop_map(|(n, offset, dest, secs, cost, billed)| BillableCall {
                id: format!("c{n}-{offset}"),
                // From a month before the cycle until its end.
                answer_at: "2026-10-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap() + chrono::Duration::seconds(offset),
                destination: ["A", "B", "C"][dest].into(),
                charged_seconds: secs,
                cost: Decimal::new(cost, 4),
                billed_cost: billed.map(|b| Decimal::new(b, 4)),
            })
    }

    proptest! {
        #[test]
        fn invariants(mut calls in proptest::collection::vec(arb_call(), 0..60)) {
            calls.dedup_by(|a, b| a.id == b.id);
            let p = plan(&calls);
            prop_assert_eq!(p.total, p.items.iter().map(|i| i.amount).sum::<Decimal>());
            let to_bill: Vec<&BillableCall> = calls.iter().filter(|c| c.billed_cost != Some(c.cost)).collect();
            prop_assert_eq!(p.billed.len(), to_bill.len());
            let billed_sum: Decimal = p.billed.iter().map(|b| b.billed_cost).sum();
            prop_assert_eq!(billed_sum, to_bill.iter().map(|c| c.cost).sum::<Decimal>());
            // The lines add up to the exact total rounded once (a zero
            // adjustment line dropped changes nothing), each within a cent.
            let exact_total: Decimal = to_bill.iter().map(|c| c.cost - c.billed_cost.unwrap_or_default()).sum();
            prop_assert_eq!(p.total, exact_total.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero));
            for item in &p.items {
                let exact: Decimal = calls
                    .iter()
                    .filter(|c| c.destination == item.destination)
                    .filter(|c| match item.kind {
                        ItemKind::Usage => c.billed_cost.is_none() && c.answer_at >= cycle().start,
                        ItemKind::Late => c.billed_cost.is_none() && c.answer_at < cycle().start,
                        ItemKind::Adjustment => c.billed_cost.is_some_and(|b| b != c.cost),
                    })
                    .map(|c| c.cost - c.billed_cost.unwrap_or_default())
                    .sum();
                prop_assert!((item.amount - exact).abs() < Decimal::new(1, 2), "{} vs {}", item.amount, exact);
            }
        }
    }
}
