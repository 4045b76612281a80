//! A synthetic tariff deck shaped like a real wholesale deck: `n` distinct
//! prefixes of 2 to 9 digits, about a fifth of them banded (peak, offpeak,
//! weekend) and a third with a price change mid-year, on a plan with a
//! catch-all fallback. The same seed always gives the same deck and calls.

use std::fmt::Write;

use chrono::{DateTime, Duration, Utc};

use crate::Rng;

/// The three CSV files of a tariff directory.
pub struct DeckFiles {
    pub plans: String,
    pub bands: String,
    pub rates: String,
    /// Distinct prefixes in the deck, for picking numbers that hit them.
    pub prefixes: Vec<String>,
}

pub const PLAN: &str = "bench";

pub fn generate(prefix_count: usize, seed: u64) -> DeckFiles {
    let mut rng = Rng::new(seed);
    let plans = format!(
        "plan,currency,timezone,decimals,rounding,fallback\n{PLAN},EUR,Europe/Berlin,4,half_up,bench-world\nbench-world,EUR,UTC,4,up,\n"
    );
    let bands = format!(
        "plan,band,days,start,end\n{PLAN},peak,mon-fri,08:00,18:00\n{PLAN},offpeak,mon-fri,18:00,08:00\n{PLAN},weekend,sat-sun,00:00,00:00\n"
    );
    let mut rates = String::from(
        "plan,prefix,destination,band,connect_fee,rate_per_min,min_seconds,initial_increment,next_increment,effective_from,effective_to\n",
    );
    rates.push_str("bench-world,,World,,0.0500,0.4500,0,60,60,2026-01-01T00:00:00Z,\n");
    let mut seen = std::collections::HashSet::with_capacity(prefix_count);
    let mut prefixes = Vec::with_capacity(prefix_count);
    while prefixes.len() < prefix_count {
        let len = 2 + rng.below(8) as usize;
        let mut p = String::with_capacity(len);
        p.push(char::from(b'1' + rng.below(9) as u8));
        for _ in 1..len {
            p.push(char::from(b'0' + rng.below(10) as u8));
        }
        if !seen.insert(p.clone()) {
            continue;
        }
        let rate = 1 + rng.below(30_000);
        let dest = format!("Destination {}", rng.below(2_000));
        match rng.below(10) {
            0 | 1 => {
                for (band, permille) in [("peak", 1000), ("offpeak", 700), ("weekend", 500)] {
                    let _ = writeln!(
                        rates,
                        "{PLAN},{p},{dest},{band},0,0.{:05},0,60,60,2026-01-01T00:00:00Z,",
                        rate * permille / 1000
                    );
                }
            }
            2..=4 => {
                let _ = writeln!(
                    rates,
                    "{PLAN},{p},{dest},,0,0.{rate:05},0,30,6,2026-01-01T00:00:00Z,2026-07-01T00:00:00Z"
                );
                let _ = writeln!(
                    rates,
                    "{PLAN},{p},{dest},,0,0.{:05},0,30,6,2026-07-01T00:00:00Z,",
                    rate * 9 / 10
                );
            }
            _ => {
                let _ = writeln!(
                    rates,
                    "{PLAN},{p},{dest},,0.0100,0.{rate:05},0,1,1,2026-01-01T00:00:00Z,"
                );
            }
        }
        prefixes.push(p);
    }
    DeckFiles {
        plans,
        bands,
        rates,
        prefixes,
    }
}

/// One call to price: international digits, rating instant, billable seconds.
#[derive(Debug, Clone)]
pub struct SampleCall {
    pub number: String,
    pub at: DateTime<Utc>,
    pub billable_seconds: u64,
}

/// `count` calls: most to numbers under a deck prefix, some to numbers no
/// prefix covers (priced by the fallback), spread over 2026.
pub fn calls(deck: &DeckFiles, count: usize, seed: u64) -> Vec<SampleCall> {
    let mut rng = Rng::new(seed ^ 0x5eed);
    let start: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default();
    (0..count)
        .map(|_| {
            let mut number = if rng.below(10) == 0 || deck.prefixes.is_empty() {
                String::from("0")
            } else {
                deck.prefixes[rng.below(deck.prefixes.len() as u64) as usize].clone()
            };
            while number.len() < 11 {
                number.push(char::from(b'0' + rng.below(10) as u8));
            }
            SampleCall {
                number,
                at: start + Duration::seconds(rng.below(365 * 86_400) as i64),
                billable_seconds: rng.below(600),
            }
        })
        .collect()
}
