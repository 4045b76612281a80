//! Time bands: which weekdays and which local times of day a banded rate
//! applies to (DESIGN §5).
//!
//! An instant is in a band iff the weekday of the instant's *own* local date
//! is in the band's days and its local time of day is in `[start, end)`; an
//! interval with `end < start` wraps midnight on that same date, and
//! `start == end` is the whole day. Parsing of the `days`, `start` and `end`
//! columns lives here too, so the grammar and its meaning stay together.

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;

/// Minutes in a day; times of day are minutes since local midnight.
pub const MINUTES_PER_DAY: u16 = 24 * 60;

/// A set of weekdays, bit 0 = Monday … bit 6 = Sunday.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DaySet(u8);

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl DaySet {
    pub fn contains(self, weekday: u8) -> bool {
        weekday < 7 && self.0 & (1 << weekday) != 0
    }

    pub fn iter(self) -> impl Iterator<Item = u8> {
        (0..7).filter(move |d| self.contains(*d))
    }

    /// Parses `mon`, `mon-fri`, wrapping `fri-mon`, and lists `mon|wed|fri`.
    /// Day names are case-insensitive.
    pub fn parse(spec: &str) -> Result<DaySet, String> {
        let mut set = 0u8;
        for part in spec.split('|') {
            let part = part.trim();
            let (from, to) = match part.split_once('-') {
                Some((a, b)) => (day_index(a)?, day_index(b)?),
                None => {
                    let d = day_index(part)?;
                    (d, d)
                }
            };
            let mut d = from;
            loop {
                set |= 1 << d;
                if d == to {
                    break;
                }
                d = (d + 1) % 7;
            }
        }
        Ok(DaySet(set))
    }
}

fn day_index(name: &str) -> Result<u8, String> {
    let name = name.trim().to_ascii_lowercase();
    DAY_NAMES
        .iter()
        .position(|d| *d == name)
        .and_then(|i| u8::try_from(i).ok())
        .ok_or_else(|| {
            if name.is_empty() {
                "empty day name".to_owned()
            } else {
                format!("{name:?} is not a day (mon, tue, wed, thu, fri, sat, sun)")
            }
        })
}

/// Parses `HH:MM` (00:00 to 23:59, and `24:00` meaning midnight at the end of
/// the day) into minutes since midnight.
pub fn parse_time_of_day(s: &str) -> Result<u16, String> {
    let bad = || format!("{s:?} is not a time of day HH:MM");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 || !(h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit())) {
        return Err(bad());
    }
    let h: u16 = h.parse().map_err(|_| bad())?;
    let m: u16 = m.parse().map_err(|_| bad())?;
    match (h, m) {
        (24, 0) => Ok(0),
        (0..=23, 0..=59) => Ok(h * 60 + m),
        _ => Err(bad()),
    }
}

/// One band of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Band {
    pub name: Box<str>,
    pub days: DaySet,
    /// Minutes since local midnight, inclusive.
    pub start_minute: u16,
    /// Minutes since local midnight, exclusive; `< start` wraps, `== start`
    /// is the whole day.
    pub end_minute: u16,
}

impl Band {
    pub fn covers_time_of_day(&self, minute: u16) -> bool {
        let (s, e) = (self.start_minute, self.end_minute);
        if s == e {
            true
        } else if s < e {
            s <= minute && minute < e
        } else {
            minute >= s || minute < e
        }
    }

    pub fn contains(&self, local: LocalMoment) -> bool {
        self.days.contains(local.weekday) && self.covers_time_of_day(local.minute)
    }

    /// Every (weekday, minute) slot of the week the band covers, as indexes
    /// `weekday * 1440 + minute`; used once at load to detect overlaps.
    pub fn week_minutes(&self) -> impl Iterator<Item = usize> + '_ {
        self.days.iter().flat_map(move |d| {
            (0..MINUTES_PER_DAY)
                .filter(move |m| self.covers_time_of_day(*m))
                .map(move |m| usize::from(d) * usize::from(MINUTES_PER_DAY) + usize::from(m))
        })
    }
}

/// An instant seen on a plan's wall clock: local weekday (0 = Monday) and
/// minute of the local day. Seconds do not matter because band edges are
/// whole minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalMoment {
    pub weekday: u8,
    pub minute: u16,
}

impl LocalMoment {
    pub fn of(at: DateTime<Utc>, tz: Tz) -> LocalMoment {
        let local = at.with_timezone(&tz);
        // Both values are bounded by chrono (weekday < 7, hour < 24, minute < 60).
        let weekday = local.weekday().num_days_from_monday() as u8;
        let minute = (local.hour() * 60 + local.minute()) as u16;
        LocalMoment { weekday, minute }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn days(s: &str) -> Vec<u8> {
        DaySet::parse(s).unwrap().iter().collect()
    }

    #[test]
    fn day_specs() {
        assert_eq!(days("mon"), [0]);
        assert_eq!(days("mon-fri"), [0, 1, 2, 3, 4]);
        assert_eq!(days("fri-mon"), [0, 4, 5, 6]);
        assert_eq!(days("mon|wed|fri"), [0, 2, 4]);
        assert_eq!(days("Sat-Sun"), [5, 6]);
        assert_eq!(days("mon-tue|sat"), [0, 1, 5]);
        for bad in ["", "monday", "mon-", "mon||fri", "mon-fri-sat", "x"] {
            assert!(DaySet::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn times_of_day() {
        assert_eq!(parse_time_of_day("00:00"), Ok(0));
        assert_eq!(parse_time_of_day("08:30"), Ok(510));
        assert_eq!(parse_time_of_day("23:59"), Ok(1439));
        assert_eq!(parse_time_of_day("24:00"), Ok(0));
        for bad in ["8:00", "24:01", "12:60", "12-00", "", "ab:cd", "+1:00", "123:00"] {
            assert!(parse_time_of_day(bad).is_err(), "{bad}");
        }
    }

    fn band(days: &str, start: &str, end: &str) -> Band {
        Band {
            name: "b".into(),
            days: DaySet::parse(days).unwrap(),
            start_minute: parse_time_of_day(start).unwrap(),
            end_minute: parse_time_of_day(end).unwrap(),
        }
    }

    #[test]
    fn wrapping_interval_stays_on_the_instants_own_date() {
        // DESIGN §5: with fri-mon 23:00-01:30, Tuesday 01:00 is not in the band.
        let b = band("fri-mon", "23:00", "01:30");
        let at = |weekday, minute| LocalMoment { weekday, minute };
        assert!(b.contains(at(0, 60)), "Monday 01:00");
        assert!(b.contains(at(0, 23 * 60)), "Monday 23:00");
        assert!(!b.contains(at(1, 60)), "Tuesday 01:00");
        assert!(!b.contains(at(4, 90)), "Friday 01:30 is the exclusive end");
        assert!(b.contains(at(4, 89)), "Friday 01:29");
        assert!(!b.contains(at(4, 12 * 60)), "Friday noon");
    }

    #[test]
    fn equal_start_and_end_is_the_whole_day() {
        let b = band("sat-sun", "00:00", "00:00");
        assert_eq!(b.week_minutes().count(), 2 * 1440);
        let b = band("mon", "18:00", "24:00");
        assert_eq!(b.week_minutes().count(), 6 * 60);
    }

    #[test]
    fn local_moment_follows_dst() {
        let ny: Tz = "America/New_York".parse().unwrap();
        // 12:30Z is 08:30 EDT in July and 07:30 EST in November.
        let summer = LocalMoment::of("2026-07-15T12:30:00Z".parse().unwrap(), ny);
        assert_eq!(
            summer,
            LocalMoment {
                weekday: 2,
                minute: 8 * 60 + 30
            }
        );
        let winter = LocalMoment::of("2026-11-18T12:30:00Z".parse().unwrap(), ny);
        assert_eq!(
            winter,
            LocalMoment {
                weekday: 2,
                minute: 7 * 60 + 30
            }
        );
        // 2026-11-01 is the autumn change: 05:30Z is 01:30 EDT, 06:30Z is 01:30 EST.
        let first = LocalMoment::of("2026-11-01T05:30:00Z".parse().unwrap(), ny);
        let second = LocalMoment::of("2026-11-01T06:30:00Z".parse().unwrap(), ny);
        assert_eq!(first, second);
        assert_eq!(first, LocalMoment { weekday: 6, minute: 90 });
        // Spring forward, 2026-03-08: 06:59Z is 01:59 EST, 07:00Z is 03:00 EDT.
        let before = LocalMoment::of("2026-03-08T06:59:00Z".parse().unwrap(), ny);
        let after = LocalMoment::of("2026-03-08T07:00:00Z".parse().unwrap(), ny);
        assert_eq!((before.minute, after.minute), (119, 180));
    }
}
