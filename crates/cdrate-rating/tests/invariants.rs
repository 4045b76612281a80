//! Property tests of the pricing rules on random tariffs: the engine agrees
//! with a naive linear-scan reading of DESIGN §5, and the invariants the
//! rules imply hold (monotonic cost, charged seconds on the increment grid,
//! banded beats unbanded, fallback only when the plan has no applicable row,
//! rounding applied once).

use std::collections::HashSet;
use std::fmt::Write;
use std::str::FromStr;

use cdrate_rating::band::LocalMoment;
use cdrate_rating::{parse_tariffs, Rate, TariffSet, E164};
use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use rust_decimal::Decimal;

const ZONES: &[&str] = &[
    "UTC",
    "America/New_York",
    "Europe/London",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
];
const ROUNDINGS: &[&str] = &["half_up", "half_even", "up", "down"];
const BANDS: &[&str] = &["", "day", "night", "weekend"];
const PERIOD_EDGES: &[&str] = &[
    "",
    "2026-01-01T00:00:00Z",
    "2026-03-29T01:00:00Z",
    "2026-07-01T00:00:00Z",
    "2026-11-01T06:00:00Z",
];

#[derive(Debug, Clone)]
struct RateSpec {
    plan: usize,
    prefix: String,
    band: usize,
    fee: u32,
    per_min: u32,
    min: u32,
    initial: u32,
    next: u32,
    from: usize,
    to: usize,
}

fn rate_spec() -> impl Strategy<Value = RateSpec> {
    (
        0..2usize,
        "[1-3]{0,3}",
        0..4usize,
        0..500u32,
        0..200_000u32,
        0..90u32,
        1..90u32,
        1..90u32,
        0..5usize,
        0..5usize,
    )
        .prop_map(
            |(plan, prefix, band, fee, per_min, min, initial, next, from, to)| RateSpec {
                plan,
                prefix,
                band,
                fee,
                per_min,
                min,
                initial,
                next,
                from,
                to,
            },
        )
}

#[derive(Debug, Clone)]
struct Deck {
    zone: usize,
    decimals: [u32; 2],
    rounding: [usize; 2],
    day_start: u32,
    day_end: u32,
    rates: Vec<RateSpec>,
}

fn deck() -> impl Strategy<Value = Deck> {
    (
        0..ZONES.len(),
        [0..=6u32, 0..=6u32],
        [0..4usize, 0..4usize],
        0..23u32,
        1..24u32,
        proptest::collection::vec(rate_spec(), 1..25),
    )
        .prop_map(|(zone, decimals, rounding, a, b, rates)| Deck {
            zone,
            decimals,
            rounding,
            day_start: a.min(b),
            day_end: a.max(b).max(a.min(b) + 1),
            rates,
        })
}

/// Plan `p` falls back to `f`; `p` has three bands that never overlap.
fn render(d: &Deck) -> Option<TariffSet> {
    let mut plans = String::from("plan,currency,timezone,decimals,rounding,fallback\n");
    let _ = writeln!(
        plans,
        "p,USD,{},{},{},f",
        ZONES[d.zone], d.decimals[0], ROUNDINGS[d.rounding[0]]
    );
    let _ = writeln!(plans, "f,USD,UTC,{},{},", d.decimals[1], ROUNDINGS[d.rounding[1]]);
    let (s, e) = (d.day_start, d.day_end);
    let bands = format!(
        "plan,band,days,start,end\np,day,mon-fri,{s:02}:00,{e:02}:00\np,night,mon-fri,{e:02}:00,{s:02}:00\np,weekend,sat-sun,00:00,00:00\n"
    );
    let mut rates = String::from(
        "plan,prefix,destination,band,connect_fee,rate_per_min,min_seconds,initial_increment,next_increment,effective_from,effective_to\n",
    );
    let mut keys = HashSet::new();
    for r in &d.rates {
        // One row per plan+prefix+band keeps the periods from overlapping;
        // plan f has no bands.
        let band = if r.plan == 1 { 0 } else { r.band };
        if !keys.insert((r.plan, r.prefix.clone(), band)) {
            continue;
        }
        let (from, to) = match (PERIOD_EDGES[r.from], PERIOD_EDGES[r.to]) {
            (a, b) if !a.is_empty() && !b.is_empty() && a >= b => (b, a),
            pair => pair,
        };
        let to = if from == to { "" } else { to };
        let _ = writeln!(
            rates,
            "{},{},dest-{},{},{},{},{},{},{},{from},{to}",
            ["p", "f"][r.plan],
            r.prefix,
            r.prefix,
            BANDS[band],
            Decimal::new(i64::from(r.fee), 4),
            Decimal::new(i64::from(r.per_min), 5),
            r.min,
            r.initial,
            r.next
        );
    }
    parse_tariffs(&plans, &bands, &rates).ok()
}

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    // 2025-12-01 .. 2027-01-01, minute resolution plus odd seconds.
    (0..(396 * 24 * 60i64), 0..60i64).prop_map(|(m, s)| {
        DateTime::parse_from_rfc3339("2025-12-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
            + Duration::minutes(m)
            + Duration::seconds(s)
    })
}

/// Does `rate` of `plan` apply to `number` at `at`? Read straight off §5.
fn applies(set: &TariffSet, plan: usize, rate: &Rate, number: &str, at: DateTime<Utc>) -> bool {
    let p = &set.plans()[plan];
    let in_band = rate
        .band
        .is_none_or(|b| p.band(b).unwrap().contains(LocalMoment::of(at, p.timezone)));
    number.starts_with(&*rate.prefix) && rate.is_effective(at) && in_band
}

/// The naive §5 choice: scan every row, longest prefix, banded over unbanded.
fn reference_rate<'t>(set: &'t TariffSet, plan: usize, number: &str, at: DateTime<Utc>) -> Option<&'t Rate> {
    set.plans()[plan]
        .rates()
        .iter()
        .filter(|r| applies(set, plan, r, number, at))
        .max_by_key(|r| (r.prefix.len(), r.band.is_some()))
}

fn exact_cost(rate: &Rate, charged: u64) -> Decimal {
    if charged == 0 {
        return Decimal::ZERO;
    }
    (rate.connect_fee * Decimal::from(60) + rate.rate_per_min * Decimal::from(charged)) / Decimal::from(60)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn engine_agrees_with_naive_reading(d in deck(), number in "[1-3]{1,6}", at in instant(), billsec in 0..4000u64) {
        let Some(set) = render(&d) else { return Err(TestCaseError::reject("deck rejected")) };
        let n = E164::from_digits(&number).unwrap();
        let got = set.price_on("p", &n, at, billsec);
        let primary = reference_rate(&set, 0, &number, at);
        let want = primary.map(|r| (0, r)).or_else(|| reference_rate(&set, 1, &number, at).map(|r| (1, r)));
        match (want, got) {
            (None, Err(e)) => prop_assert_eq!(e.code(), "no_route"),
            (None, Ok(q)) => prop_assert!(false, "engine priced {} on {} but no row applies", q.cost, q.plan.name),
            (Some(_), Err(e)) => prop_assert!(false, "engine said {} but a row applies", e.code()),
            (Some((plan, rate)), Ok(q)) => {
                // Fallback only when the primary plan has no applicable row.
                prop_assert_eq!(&*q.plan.name, ["p", "f"][plan]);
                prop_assert_eq!((&q.rate.prefix, q.rate.band.is_some()), (&rate.prefix, rate.band.is_some()));
                // Banded beats unbanded of the same prefix.
                if q.rate.band.is_none() {
                    let banded_applies = q.plan.rates().iter().any(|r| r.prefix == q.rate.prefix && r.band.is_some() && applies(&set, plan, r, &number, at));
                    prop_assert!(!banded_applies);
                }
                // Charged seconds: at least billable and min_seconds, on the grid.
                let (c, r) = (q.charged_seconds, q.rate);
                if billsec == 0 {
                    prop_assert_eq!(c, 0);
                    prop_assert!(q.cost.is_zero());
                } else {
                    prop_assert!(c >= billsec && c >= u64::from(r.min_seconds));
                    prop_assert!(c == u64::from(r.initial_increment) || (c > u64::from(r.initial_increment) && (c - u64::from(r.initial_increment)) % u64::from(r.next_increment) == 0));
                    prop_assert!(c < billsec.max(u64::from(r.min_seconds)).max(u64::from(r.initial_increment)) + u64::from(r.next_increment));
                }
                // Rounding is applied once, to the exact cost, with the pricing plan's settings.
                let exact = exact_cost(r, c);
                let once = exact.round_dp_with_strategy(q.plan.decimals, q.plan.rounding.strategy());
                prop_assert_eq!(q.cost, once);
                prop_assert_eq!(q.cost.scale(), q.plan.decimals);
                prop_assert!((q.cost - exact).abs() < Decimal::new(1, q.plan.decimals));
            }
        }
    }

    #[test]
    fn cost_never_decreases_as_billsec_grows(d in deck(), number in "[1-3]{1,6}", at in instant(), b in 0..4000u64, extra in 0..4000u64) {
        let Some(set) = render(&d) else { return Err(TestCaseError::reject("deck rejected")) };
        let n = E164::from_digits(&number).unwrap();
        if let (Ok(short), Ok(long)) = (set.price_on("p", &n, at, b), set.price_on("p", &n, at, b + extra)) {
            prop_assert!(long.charged_seconds >= short.charged_seconds);
            prop_assert!(long.cost >= short.cost, "{} s cost {}, {} s cost {}", b, short.cost, b + extra, long.cost);
        }
    }
}

#[test]
fn half_rounding_ties_follow_the_plan() {
    // 0.0333 + 0.1111 × 30 / 60 = 0.08885 exactly: a tie at 4 decimals.
    let plans = "plan,currency,timezone,decimals,rounding,fallback\nhu,USD,UTC,4,half_up,\nhe,USD,UTC,4,half_even,\nup,USD,UTC,4,up,\ndn,USD,UTC,4,down,\n";
    let mut rates = String::from("plan,prefix,destination,band,connect_fee,rate_per_min,min_seconds,initial_increment,next_increment,effective_from,effective_to\n");
    for p in ["hu", "he", "up", "dn"] {
        let _ = writeln!(rates, "{p},254,Kenya,,0.0333,0.1111,0,1,1,,");
    }
    let set = parse_tariffs(plans, "", &rates).unwrap();
    let n = E164::from_digits("254712345678").unwrap();
    let at: DateTime<Utc> = "2026-11-18T15:00:00Z".parse().unwrap();
    let cost = |p| set.price_on(p, &n, at, 30).unwrap().cost.to_string();
    assert_eq!(
        [cost("hu"), cost("he"), cost("up"), cost("dn")],
        ["0.0889", "0.0888", "0.0889", "0.0888"]
    );
    // A third of a unit is no tie: 0.0001 × 1 / 60 rounds by its value.
    assert_eq!(
        Decimal::from_str("0.0000016").unwrap().round_dp(4).to_string(),
        "0.0000"
    );
}
