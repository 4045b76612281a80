//! Billing cycles: `[start, end)` where `start` is local midnight of
//! `cycle_day` (1..=28, so every month has it) in the account's plan time
//! zone. Computed on instants, not dates, so DST changes are exact: a
//! cycle spanning a change is an hour shorter or longer in UTC, and a
//! midnight that does not exist (zones that switch at 00:00) starts the
//! cycle at the first instant that does.

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::BillingError;

/// One billing cycle, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Cycle {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// The cycle that contains `at`.
pub fn cycle_containing(at: DateTime<Utc>, cycle_day: u8, tz: Tz) -> Result<Cycle, BillingError> {
    check_day(cycle_day)?;
    let local = at.with_timezone(&tz);
    let (y, m) = (local.year(), local.month());
    let this = start_of(y, m, cycle_day, tz)?;
    let (start_ym, end_ym) = if at >= this {
        ((y, m), next_month(y, m))
    } else {
        (prev_month(y, m), (y, m))
    };
    Ok(Cycle {
        start: start_of(start_ym.0, start_ym.1, cycle_day, tz)?,
        end: start_of(end_ym.0, end_ym.1, cycle_day, tz)?,
    })
}

impl Cycle {
    /// The cycle right after this one.
    pub fn next(&self, cycle_day: u8, tz: Tz) -> Result<Cycle, BillingError> {
        cycle_containing(self.end, cycle_day, tz)
    }

    /// The cycle right before this one.
    pub fn previous(&self, cycle_day: u8, tz: Tz) -> Result<Cycle, BillingError> {
        cycle_containing(self.start - Duration::milliseconds(1), cycle_day, tz)
    }

    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.start <= at && at < self.end
    }

    /// Local dates, end shown inclusive: `2026-11-01 – 2026-11-30`.
    pub fn label(&self, tz: Tz) -> String {
        let first = self.start.with_timezone(&tz).date_naive();
        let last = (self.end - Duration::milliseconds(1)).with_timezone(&tz).date_naive();
        format!("{first} – {last}")
    }
}

fn check_day(cycle_day: u8) -> Result<(), BillingError> {
    if (1..=28).contains(&cycle_day) {
        Ok(())
    } else {
        Err(BillingError::BadCycleDay(cycle_day))
    }
}

fn next_month(y: i32, m: u32) -> (i32, u32) {
    if m == 12 {
        (y + 1, 1)
    } else {
        (y, m + 1)
    }
}

fn prev_month(y: i32, m: u32) -> (i32, u32) {
    if m == 1 {
        (y - 1, 12)
    } else {
        (y, m - 1)
    }
}

/// Local midnight of day `d` of `y-m` in `tz`, as an instant.
fn start_of(y: i32, m: u32, d: u8, tz: Tz) -> Result<DateTime<Utc>, BillingError> {
    let out_of_range = || BillingError::OutOfRange(format!("{y:04}-{m:02}-{d:02}"));
    let midnight = NaiveDate::from_ymd_opt(y, m, u32::from(d))
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .ok_or_else(out_of_range)?;
    // A gap is at most a few hours; look for the first local time that
    // exists, minute by minute (gaps start and end on whole minutes).
    for minutes in 0..=24 * 60 {
        match tz.from_local_datetime(&(midnight + Duration::minutes(minutes))) {
            LocalResult::Single(t) => return Ok(t.with_timezone(&Utc)),
            // Ambiguous: the earlier instant, so no time falls between cycles.
            LocalResult::Ambiguous(earlier, _) => return Ok(earlier.with_timezone(&Utc)),
            LocalResult::None => continue,
        }
    }
    Err(out_of_range())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn cycle(at: &str, day: u8, tz: Tz) -> (String, String) {
        let c = cycle_containing(t(at), day, tz).unwrap();
        (c.start.to_rfc3339(), c.end.to_rfc3339())
    }

    #[test]
    fn table() {
        use chrono_tz::{America::New_York, America::Santiago, Europe::London, UTC};
        let cases: &[(&str, u8, Tz, &str, &str)] = &[
            // Month ends and cycle day 1.
            (
                "2026-01-31T23:59:59Z",
                1,
                UTC,
                "2026-01-01T00:00:00+00:00",
                "2026-02-01T00:00:00+00:00",
            ),
            (
                "2026-02-01T00:00:00Z",
                1,
                UTC,
                "2026-02-01T00:00:00+00:00",
                "2026-03-01T00:00:00+00:00",
            ),
            // Day 28 across February, leap and not.
            (
                "2028-02-29T12:00:00Z",
                28,
                UTC,
                "2028-02-28T00:00:00+00:00",
                "2028-03-28T00:00:00+00:00",
            ),
            (
                "2027-02-27T12:00:00Z",
                28,
                UTC,
                "2027-01-28T00:00:00+00:00",
                "2027-02-28T00:00:00+00:00",
            ),
            (
                "2026-12-31T23:00:00Z",
                28,
                UTC,
                "2026-12-28T00:00:00+00:00",
                "2027-01-28T00:00:00+00:00",
            ),
            // A call on the 31st with cycles from the 15th.
            (
                "2026-03-31T10:00:00Z",
                15,
                UTC,
                "2026-03-15T00:00:00+00:00",
                "2026-04-15T00:00:00+00:00",
            ),
            // Europe/London: BST starts 2026-03-29, ends 2026-10-25.
            (
                "2026-03-15T00:00:00Z",
                1,
                London,
                "2026-03-01T00:00:00+00:00",
                "2026-03-31T23:00:00+00:00",
            ),
            (
                "2026-10-15T00:00:00Z",
                1,
                London,
                "2026-09-30T23:00:00+00:00",
                "2026-11-01T00:00:00+00:00",
            ),
            // New York local midnight is 04:00 or 05:00 UTC.
            (
                "2026-11-01T03:59:59Z",
                1,
                New_York,
                "2026-10-01T04:00:00+00:00",
                "2026-11-01T04:00:00+00:00",
            ),
            (
                "2026-11-01T04:00:00Z",
                1,
                New_York,
                "2026-11-01T04:00:00+00:00",
                "2026-12-01T05:00:00+00:00",
            ),
            // Santiago: 2022-09-11 00:00 did not exist (clocks went to 01:00 -03).
            (
                "2022-09-20T12:00:00Z",
                11,
                Santiago,
                "2022-09-11T04:00:00+00:00",
                "2022-10-11T03:00:00+00:00",
            ),
            (
                "2022-09-11T03:59:59Z",
                11,
                Santiago,
                "2022-08-11T04:00:00+00:00",
                "2022-09-11T04:00:00+00:00",
            ),
        ];
        for &(at, day, tz, start, end) in cases {
            assert_eq!(
                cycle(at, day, tz),
                (start.to_owned(), end.to_owned()),
                "{at} day {day} {tz}"
            );
        }
    }

    #[test]
    fn bad_cycle_days_are_refused() {
        for day in [0, 29, 31] {
            assert_eq!(
                cycle_containing(t("2026-01-01T00:00:00Z"), day, chrono_tz::UTC)
                    .unwrap_err()
                    .code(),
                "bad_cycle_day"
            );
        }
    }

    #[test]
    fn labels_show_local_dates_inclusive() {
        let c = cycle_containing(t("2026-11-22T10:00:00Z"), 1, chrono_tz::America::Chicago).unwrap();
        assert_eq!(c.label(chrono_tz::America::Chicago), "2026-11-01 – 2026-11-30");
    }

    proptest! {
        #[test]
        fn cycles_tile_time(secs in 0i64..4_000_000_000, day in 1u8..=28, zone in 0usize..5) {
            let tz = [chrono_tz::UTC, chrono_tz::Europe::London, chrono_tz::America::New_York,
                chrono_tz::America::Santiago, chrono_tz::Australia::Lord_Howe][zone];
            let at = DateTime::from_timestamp(secs, 0).unwrap();
            let c = cycle_containing(at, day, tz).unwrap();
            prop_assert!(c.contains(at));
            prop_assert_eq!(c.next(day, tz).unwrap().start, c.end);
            prop_assert_eq!(c.previous(day, tz).unwrap().end, c.start);
            // 28 to 31 local days, give or take a DST shift of up to 2 h.
            let minutes = (c.end - c.start).num_minutes();
            prop_assert!((28 * 24 * 60 - 120..=31 * 24 * 60 + 120).contains(&minutes), "{minutes} min");
        }
    }
}
