//! Reads a tariff directory (`plans.csv`, `bands.csv`, `rates.csv`) into a
//! [`TariffSet`], validating everything and reporting *every* problem at
//! once with its file, line, column and stable code.
//!
//! [`load_dir`] is the only function here that touches the file system;
//! [`parse_tariffs`] does the work on strings so tests need no files.
//! Columns are matched by header name (any order); unknown columns are
//! rejected. A `bands.csv` that does not exist means "no bands".

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;

use cdrate_core::Currency;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;

use crate::band::{parse_time_of_day, Band, DaySet, MINUTES_PER_DAY};
use crate::csv_sheet::{parse_plain_decimal, read_sheet, Field, RowCheck, SheetError, SheetProblem};
use crate::error::{TariffError, TariffErrorKind as K, TariffErrors, TariffFile};
use crate::prefix_index::PrefixIndex;
use crate::tariff::{BandId, Plan, PlanId, Rate, Rounding, TariffSet};

const PLAN_COLUMNS: &[&str] = &["plan", "currency", "timezone", "decimals", "rounding", "fallback"];
const BAND_COLUMNS: &[&str] = &["plan", "band", "days", "start", "end"];
const RATE_COLUMNS: &[&str] = &[
    "plan",
    "prefix",
    "destination",
    "band",
    "connect_fee",
    "rate_per_min",
    "min_seconds",
    "initial_increment",
    "next_increment",
    "effective_from",
    "effective_to",
];

/// Largest `decimals` a plan may ask for.
pub const MAX_DECIMALS: u32 = 10;

/// Loads and validates the tariff directory at `dir`.
pub fn load_dir(dir: &Path) -> Result<TariffSet, TariffErrors> {
    let mut errors = Vec::new();
    let mut read = |file: TariffFile, optional: bool| -> Option<String> {
        let path = dir.join(file.file_name());
        match std::fs::read(&path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => Some(text),
                Err(e) => {
                    errors.push(at(file, 0, 0, K::BadCsv(format!("not UTF-8: {e}"))));
                    None
                }
            },
            Err(e) if optional && e.kind() == std::io::ErrorKind::NotFound => Some(String::new()),
            Err(e) => {
                errors.push(at(file, 0, 0, K::MissingFile(format!("{}: {e}", path.display()))));
                None
            }
        }
    };
    let plans = read(TariffFile::Plans, false);
    let bands = read(TariffFile::Bands, true);
    let rates = read(TariffFile::Rates, false);
    match (plans, bands, rates) {
        (Some(p), Some(b), Some(r)) if errors.is_empty() => parse_tariffs(&p, &b, &r),
        _ => Err(TariffErrors(errors)),
    }
}

/// Validates the three files' contents and builds the set. An empty `bands`
/// string means the directory has no bands.
pub fn parse_tariffs(plans: &str, bands: &str, rates: &str) -> Result<TariffSet, TariffErrors> {
    let mut errors = Vec::new();
    let plan_rows = read_plans(plans, &mut errors);
    let plans_readable = plan_rows.is_some();
    let plan_rows = plan_rows.unwrap_or_default();
    let band_rows = if bands.trim().is_empty() {
        Vec::new()
    } else {
        read_bands(bands, &mut errors)
    };
    let rate_rows = read_rates(rates, &mut errors);
    if !plans_readable {
        // Without plans every band and rate would be "unknown_plan": noise.
        return Err(sorted(errors));
    }

    let plan_index = index_plans(&plan_rows, &mut errors);
    check_fallbacks(&plan_rows, &plan_index, &mut errors);
    let plan_bands = group_bands(&band_rows, &plan_index, plan_rows.len(), &mut errors);
    let plan_rates = group_rates(rate_rows, &plan_index, &plan_bands, plan_rows.len(), &mut errors);

    if !errors.is_empty() {
        return Err(sorted(errors));
    }
    build(plan_rows, plan_index, plan_bands, plan_rates).map_err(|e| TariffErrors(vec![e]))
}

/// Files first, then by position, so the report reads top to bottom.
fn sorted(mut errors: Vec<TariffError>) -> TariffErrors {
    errors.sort_by_key(|e| (e.file as u8, e.line, e.column));
    TariffErrors(errors)
}

fn at(file: TariffFile, line: u64, column: usize, kind: K) -> TariffError {
    TariffError {
        file,
        line,
        column,
        kind,
    }
}

impl SheetError for TariffError {
    type File = TariffFile;
    type Kind = K;

    fn at(file: TariffFile, line: u64, column: usize, kind: K) -> TariffError {
        at(file, line, column, kind)
    }

    fn from_sheet_problem(problem: SheetProblem) -> K {
        match problem {
            SheetProblem::BadCsv(e) => K::BadCsv(e),
            SheetProblem::UnknownColumn(c) => K::UnknownColumn(c),
            SheetProblem::MissingColumn(c) => K::MissingColumn(c),
            SheetProblem::DuplicateColumn(c) => K::DuplicateColumn(c),
            SheetProblem::BadRow { got, want } => K::BadRow { got, want },
        }
    }
}

struct PlanRow {
    line: u64,
    name: String,
    currency: Currency,
    timezone: Tz,
    decimals: u32,
    rounding: Rounding,
    fallback: Option<(String, usize)>,
}

fn read_plans(text: &str, errors: &mut Vec<TariffError>) -> Option<Vec<PlanRow>> {
    let sheet = read_sheet(TariffFile::Plans, text, PLAN_COLUMNS, &[], errors)?;
    let mut out = Vec::new();
    for (line, rec) in &sheet.rows {
        let f = |c| sheet.field(*line, rec, c);
        let mut row = RowCheck::new(sheet.file, errors);
        let (name, cur, tz, dec, rnd, fb) = (f(0), f(1), f(2), f(3), f(4), f(5));
        let name_ok = row.check(&name, required(&name, "plan"));
        let currency = row.check(
            &cur,
            Currency::from_str(cur.value).map_err(|_| K::BadCurrency(cur.value.into())),
        );
        let timezone = row.check(&tz, Tz::from_str(tz.value).map_err(|_| K::BadTimezone(tz.value.into())));
        let decimals = row.check(
            &dec,
            dec.value
                .parse::<u32>()
                .ok()
                .filter(|d| *d <= MAX_DECIMALS && dec.value.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| K::BadDecimals(dec.value.into())),
        );
        let rounding = row.check(
            &rnd,
            Rounding::parse(rnd.value).ok_or_else(|| K::BadRounding(rnd.value.into())),
        );
        if let (Some(_), Some(currency), Some(timezone), Some(decimals), Some(rounding), false) =
            (name_ok, currency, timezone, decimals, rounding, row.failed)
        {
            out.push(PlanRow {
                line: *line,
                name: name.value.to_owned(),
                currency,
                timezone,
                decimals,
                rounding,
                fallback: (!fb.value.is_empty()).then(|| (fb.value.to_owned(), fb.column)),
            });
        }
    }
    Some(out)
}

fn required(f: &Field, name: &'static str) -> Result<(), K> {
    if f.value.is_empty() {
        Err(K::MissingValue(name))
    } else {
        Ok(())
    }
}

struct BandRow {
    line: u64,
    plan: String,
    plan_column: usize,
    name_column: usize,
    days_column: usize,
    band: Band,
}

fn read_bands(text: &str, errors: &mut Vec<TariffError>) -> Vec<BandRow> {
    let Some(sheet) = read_sheet(TariffFile::Bands, text, BAND_COLUMNS, &[], errors) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (line, rec) in &sheet.rows {
        let f = |c| sheet.field(*line, rec, c);
        let mut row = RowCheck::new(sheet.file, errors);
        let (plan, name, days, start, end) = (f(0), f(1), f(2), f(3), f(4));
        row.check(&plan, required(&plan, "plan"));
        row.check(&name, required(&name, "band"));
        let day_set = row.check(&days, DaySet::parse(days.value).map_err(K::BadDays));
        let start_minute = row.check(&start, parse_time_of_day(start.value).map_err(K::BadTimeOfDay));
        let end_minute = row.check(&end, parse_time_of_day(end.value).map_err(K::BadTimeOfDay));
        if let (Some(days_set), Some(start_minute), Some(end_minute), false) =
            (day_set, start_minute, end_minute, row.failed)
        {
            out.push(BandRow {
                line: *line,
                plan: plan.value.to_owned(),
                plan_column: plan.column,
                name_column: name.column,
                days_column: days.column,
                band: Band {
                    name: name.value.into(),
                    days: days_set,
                    start_minute,
                    end_minute,
                },
            });
        }
    }
    out
}

struct RateRow {
    line: u64,
    plan: String,
    plan_column: usize,
    band: Option<(String, usize)>,
    from_column: usize,
    destination: String,
    rate: Rate,
}

fn read_rates(text: &str, errors: &mut Vec<TariffError>) -> Vec<RateRow> {
    let Some(sheet) = read_sheet(TariffFile::Rates, text, RATE_COLUMNS, &[], errors) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (line, rec) in &sheet.rows {
        let f = |c| sheet.field(*line, rec, c);
        let mut row = RowCheck::new(sheet.file, errors);
        let plan = f(0);
        row.check(&plan, required(&plan, "plan"));
        let prefix = f(1);
        let prefix_ok = prefix.value.len() <= cdrate_core::number::E164_MAX_DIGITS
            && prefix.value.bytes().all(|b| b.is_ascii_digit());
        row.check(
            &prefix,
            if prefix_ok {
                Ok(())
            } else {
                Err(K::BadPrefix(prefix.value.into()))
            },
        );
        let (fee, per_min) = (f(4), f(5));
        let connect_fee = row.check(&fee, amount(fee.value, "connect_fee"));
        let rate_per_min = row.check(&per_min, amount(per_min.value, "rate_per_min"));
        let (min, ini, next) = (f(6), f(7), f(8));
        let min_seconds = row.check(&min, seconds(min.value, "min_seconds", false));
        let initial_increment = row.check(&ini, seconds(ini.value, "initial_increment", true));
        let next_increment = row.check(&next, seconds(next.value, "next_increment", true));
        let (from, to) = (f(9), f(10));
        let effective_from = row.check(&from, timestamp(from.value));
        let effective_to = row.check(&to, timestamp(to.value));
        if let (Some(Some(a)), Some(Some(b))) = (effective_from, effective_to) {
            if b <= a {
                row.check::<()>(&to, Err(K::EmptyPeriod));
            }
        }
        let band = f(3);
        if let (
            Some(connect_fee),
            Some(rate_per_min),
            Some(min_seconds),
            Some(initial_increment),
            Some(next_increment),
            Some(effective_from),
            Some(effective_to),
            false,
        ) = (
            connect_fee,
            rate_per_min,
            min_seconds,
            initial_increment,
            next_increment,
            effective_from,
            effective_to,
            row.failed,
        ) {
            out.push(RateRow {
                line: *line,
                plan: plan.value.to_owned(),
                plan_column: plan.column,
                band: (!band.value.is_empty()).then(|| (band.value.to_owned(), band.column)),
                from_column: from.column,
                destination: f(2).value.to_owned(),
                rate: Rate {
                    prefix: prefix.value.into(),
                    destination: 0,
                    band: None,
                    connect_fee,
                    rate_per_min,
                    min_seconds,
                    initial_increment,
                    next_increment,
                    effective_from,
                    effective_to,
                    line: *line,
                },
            });
        }
    }
    out
}

/// A non-negative decimal written plainly (a negative one gets its own code).
fn amount(s: &str, field: &'static str) -> Result<Decimal, K> {
    match parse_plain_decimal(s) {
        None => Err(K::BadDecimal(s.into())),
        Some(v) if v.is_sign_negative() && !v.is_zero() => Err(K::NegativeAmount { field, value: s.into() }),
        Some(v) => Ok(v),
    }
}

/// A whole number of seconds; increments must be at least 1.
fn seconds(s: &str, field: &'static str, is_increment: bool) -> Result<u32, K> {
    let signed = s.strip_prefix('-');
    let digits = signed.unwrap_or(s);
    let parsed = if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse::<u32>().ok()
    } else {
        None
    };
    match (parsed, signed.is_some()) {
        (Some(v), false) if is_increment && v == 0 => Err(K::BadIncrement { field, value: s.into() }),
        (Some(v), false) => Ok(v),
        (Some(_), true) if is_increment => Err(K::BadIncrement { field, value: s.into() }),
        _ => Err(K::BadInteger { field, value: s.into() }),
    }
}

/// An RFC 3339 instant; empty means an open end.
fn timestamp(s: &str) -> Result<Option<DateTime<Utc>>, K> {
    if s.is_empty() {
        return Ok(None);
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|_| K::BadTimestamp(s.into()))
}

fn index_plans(plans: &[PlanRow], errors: &mut Vec<TariffError>) -> HashMap<String, usize> {
    let mut index = HashMap::new();
    for (i, p) in plans.iter().enumerate() {
        if let Some(&first) = index.get(&p.name) {
            let first: &PlanRow = &plans[first];
            errors.push(at(
                TariffFile::Plans,
                p.line,
                1,
                K::DuplicatePlan(p.name.clone(), first.line),
            ));
        } else {
            index.insert(p.name.clone(), i);
        }
    }
    index
}

fn check_fallbacks(plans: &[PlanRow], index: &HashMap<String, usize>, errors: &mut Vec<TariffError>) {
    let mut in_reported_cycle = HashSet::new();
    for p in plans {
        let Some((fb, column)) = &p.fallback else { continue };
        let Some(&target) = index.get(fb) else {
            errors.push(at(TariffFile::Plans, p.line, *column, K::UnknownFallback(fb.clone())));
            continue;
        };
        let t = &plans[target];
        if t.currency != p.currency {
            errors.push(at(
                TariffFile::Plans,
                p.line,
                *column,
                K::FallbackCurrencyMismatch {
                    fallback: fb.clone(),
                    currency: p.currency.to_string(),
                    fallback_currency: t.currency.to_string(),
                },
            ));
        }
        // Follow the chain; if it comes back to this plan, report the loop once.
        let mut chain = vec![p.name.as_str()];
        let mut cur = Some(target);
        while let Some(i) = cur {
            let q = &plans[i];
            chain.push(&q.name);
            if q.name == p.name {
                if chain.iter().all(|n| !in_reported_cycle.contains(*n)) {
                    in_reported_cycle.extend(chain.iter().map(|n| n.to_string()));
                    errors.push(at(
                        TariffFile::Plans,
                        p.line,
                        *column,
                        K::FallbackCycle(chain.join(" -> ")),
                    ));
                }
                break;
            }
            if chain.len() > plans.len() + 1 {
                break; // A loop not through `p`; reported from its own members.
            }
            cur = q.fallback.as_ref().and_then(|(n, _)| index.get(n).copied());
        }
    }
}

fn group_bands(
    bands: &[BandRow],
    plan_index: &HashMap<String, usize>,
    plan_count: usize,
    errors: &mut Vec<TariffError>,
) -> Vec<Vec<(u64, Band)>> {
    let mut per_plan: Vec<Vec<(u64, Band)>> = vec![Vec::new(); plan_count];
    // Which band owns each minute of the week, per plan, for overlap checks.
    let mut owners: HashMap<usize, Vec<u16>> = HashMap::new();
    let week = 7 * usize::from(MINUTES_PER_DAY);
    for b in bands {
        let Some(&plan) = plan_index.get(&b.plan) else {
            errors.push(at(
                TariffFile::Bands,
                b.line,
                b.plan_column,
                K::UnknownPlan(b.plan.clone()),
            ));
            continue;
        };
        let list = &mut per_plan[plan];
        if let Some((first, _)) = list.iter().find(|(_, x)| x.name == b.band.name) {
            errors.push(at(
                TariffFile::Bands,
                b.line,
                b.name_column,
                K::DuplicateBand(b.band.name.to_string(), *first),
            ));
            continue;
        }
        let owner = owners.entry(plan).or_insert_with(|| vec![0; week]);
        let me = u16::try_from(list.len() + 1).unwrap_or(u16::MAX);
        let mut clash = None;
        for slot in b.band.week_minutes() {
            match owner[slot] {
                0 => owner[slot] = me,
                other => {
                    clash.get_or_insert((slot, other));
                }
            }
        }
        if let Some((slot, other)) = clash {
            let (other_line, other_band) = &list[usize::from(other) - 1];
            let minute = slot % usize::from(MINUTES_PER_DAY);
            errors.push(at(
                TariffFile::Bands,
                b.line,
                b.days_column,
                K::OverlappingBands {
                    band: b.band.name.to_string(),
                    other: other_band.name.to_string(),
                    other_line: *other_line,
                    day: ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][slot / usize::from(MINUTES_PER_DAY)],
                    time: format!("{:02}:{:02}", minute / 60, minute % 60),
                },
            ));
        }
        list.push((b.line, b.band.clone()));
    }
    per_plan
}

/// An effective period of one rate row: from, to, line, column of `effective_from`.
type Period = (Option<DateTime<Utc>>, Option<DateTime<Utc>>, u64, usize);

fn group_rates(
    rates: Vec<RateRow>,
    plan_index: &HashMap<String, usize>,
    plan_bands: &[Vec<(u64, Band)>],
    plan_count: usize,
    errors: &mut Vec<TariffError>,
) -> Vec<Vec<(String, Rate)>> {
    let mut per_plan: Vec<Vec<(String, Rate)>> = (0..plan_count).map(|_| Vec::new()).collect();
    let mut periods: HashMap<(usize, Box<str>, Option<u16>), Vec<Period>> = HashMap::new();
    for mut r in rates {
        let Some(&plan) = plan_index.get(&r.plan) else {
            errors.push(at(
                TariffFile::Rates,
                r.line,
                r.plan_column,
                K::UnknownPlan(r.plan.clone()),
            ));
            continue;
        };
        if let Some((band, column)) = &r.band {
            match plan_bands[plan].iter().position(|(_, b)| &*b.name == band) {
                Some(i) => r.rate.band = Some(BandId(u16::try_from(i).unwrap_or(u16::MAX))),
                None => {
                    errors.push(at(
                        TariffFile::Rates,
                        r.line,
                        *column,
                        K::UnknownBand {
                            plan: r.plan.clone(),
                            band: band.clone(),
                        },
                    ));
                    continue;
                }
            }
        }
        periods
            .entry((plan, r.rate.prefix.clone(), r.rate.band.map(|b| b.0)))
            .or_default()
            .push((r.rate.effective_from, r.rate.effective_to, r.line, r.from_column));
        per_plan[plan].push((r.destination, r.rate));
    }
    for list in periods.values_mut() {
        // Open starts sort first (None < Some).
        list.sort_by_key(|(from, _, line, _)| (*from, *line));
        for pair in list.windows(2) {
            let (_, prev_to, prev_line, _) = pair[0];
            let (next_from, _, line, column) = pair[1];
            let overlaps = match (prev_to, next_from) {
                (None, _) | (_, None) => true,
                (Some(to), Some(from)) => to > from,
            };
            if overlaps {
                errors.push(at(TariffFile::Rates, line, column, K::OverlappingRates(prev_line)));
            }
        }
    }
    per_plan
}

fn build(
    plan_rows: Vec<PlanRow>,
    plan_index: HashMap<String, usize>,
    plan_bands: Vec<Vec<(u64, Band)>>,
    plan_rates: Vec<Vec<(String, Rate)>>,
) -> Result<TariffSet, TariffError> {
    let id = |i: usize| PlanId(u32::try_from(i).unwrap_or(u32::MAX));
    let mut destinations: Vec<Box<str>> = Vec::new();
    let mut destination_ids: HashMap<String, u32> = HashMap::new();
    let mut plans = Vec::with_capacity(plan_rows.len());
    for ((row, bands), rates) in plan_rows.into_iter().zip(plan_bands).zip(plan_rates) {
        let mut rates: Vec<Rate> = rates
            .into_iter()
            .map(|(dest, mut rate)| {
                let next = u32::try_from(destinations.len()).unwrap_or(u32::MAX);
                rate.destination = *destination_ids.entry(dest).or_insert_with_key(|d| {
                    destinations.push(d.as_str().into());
                    next
                });
                rate
            })
            .collect();
        rates.sort_by(|a, b| a.prefix.cmp(&b.prefix).then(a.line.cmp(&b.line)));
        let index = PrefixIndex::build(rates.iter().map(|r| &*r.prefix)).map_err(|e| {
            at(
                TariffFile::Rates,
                0,
                0,
                K::BadCsv(format!("cannot index prefixes: {e:?}")),
            )
        })?;
        plans.push(Plan {
            name: row.name.into(),
            currency: row.currency,
            timezone: row.timezone,
            decimals: row.decimals,
            rounding: row.rounding,
            fallback: row.fallback.and_then(|(n, _)| plan_index.get(&n).copied()).map(id),
            bands: bands.into_iter().map(|(_, b)| b).collect(),
            rates,
            index,
        });
    }
    let by_name = plans.iter().enumerate().map(|(i, p)| (p.name.clone(), id(i))).collect();
    Ok(TariffSet {
        plans,
        by_name,
        destinations,
    })
}
