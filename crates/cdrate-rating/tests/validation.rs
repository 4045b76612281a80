//! One test per tariff validation code: a minimal directory with exactly that
//! problem, checked for the code and the file:line:column it is reported at.

use std::path::PathBuf;

use cdrate_rating::{load_dir, parse_tariffs, TariffError, TariffFile};

const PLANS: &str = "plan,currency,timezone,decimals,rounding,fallback\nretail,USD,UTC,4,half_up,\n";
const BANDS: &str = "plan,band,days,start,end\nretail,peak,mon-fri,08:00,18:00\n";
const RATES_HEADER: &str = "plan,prefix,destination,band,connect_fee,rate_per_min,min_seconds,initial_increment,next_increment,effective_from,effective_to\n";
const RATE: &str = "retail,44,UK,,0,0.02,0,1,1,2026-01-01T00:00:00Z,\n";

fn rates(rows: &[&str]) -> String {
    let mut s = RATES_HEADER.to_owned();
    for r in rows {
        s.push_str(r);
        s.push('\n');
    }
    s
}

/// Loads the three texts and expects exactly one problem, with this code and
/// location.
fn check(plans: &str, bands: &str, rates: &str, code: &str, file: TariffFile, line: u64, column: usize) -> TariffError {
    let errors = match parse_tariffs(plans, bands, rates) {
        Ok(_) => panic!("expected {code}, but the tariffs loaded"),
        Err(e) => e,
    };
    assert_eq!(errors.len(), 1, "expected only {code}, got:\n{errors}");
    let e = errors.0.into_iter().next().unwrap();
    assert_eq!((e.code(), e.file, e.line, e.column), (code, file, line, column), "{e}");
    e
}

#[test]
fn the_baseline_is_valid() {
    let set = parse_tariffs(PLANS, BANDS, &rates(&[RATE])).unwrap();
    assert_eq!((set.plans().len(), set.band_count(), set.rate_count()), (1, 1, 1));
}

#[test]
fn missing_file() {
    let dir = temp_dir("missing_file");
    std::fs::write(dir.join("plans.csv"), PLANS).unwrap();
    let errors = load_dir(&dir).unwrap_err();
    let codes: Vec<_> = errors.iter().map(|e| (e.code(), e.file)).collect();
    assert_eq!(codes, [("missing_file", TariffFile::Rates)]);
    // bands.csv is optional: with rates.csv present the directory loads.
    std::fs::write(dir.join("rates.csv"), rates(&[RATE])).unwrap();
    assert_eq!(load_dir(&dir).unwrap().band_count(), 0);
}

#[test]
fn bad_csv() {
    let dir = temp_dir("bad_csv");
    std::fs::write(dir.join("plans.csv"), b"plan,currency\n\xff\xfe,USD\n").unwrap();
    std::fs::write(dir.join("rates.csv"), rates(&[RATE])).unwrap();
    let errors = load_dir(&dir).unwrap_err();
    assert_eq!(errors.iter().map(|e| e.code()).collect::<Vec<_>>(), ["bad_csv"]);
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cdrate-validation-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn unknown_column() {
    let plans = "plan,currency,timezone,decimals,rounding,fallback,notes\nretail,USD,UTC,4,half_up,,x\n";
    check(plans, BANDS, &rates(&[RATE]), "unknown_column", TariffFile::Plans, 1, 7);
}

#[test]
fn missing_column() {
    let r = "plan,prefix,destination,connect_fee,rate_per_min,min_seconds,initial_increment,next_increment,effective_from,effective_to\n";
    check(PLANS, BANDS, r, "missing_column", TariffFile::Rates, 1, 0);
}

#[test]
fn duplicate_column() {
    let b = "plan,band,days,start,end,band\nretail,peak,mon-fri,08:00,18:00,peak\n";
    check(PLANS, b, &rates(&[RATE]), "duplicate_column", TariffFile::Bands, 1, 6);
}

#[test]
fn bad_row() {
    check(
        PLANS,
        BANDS,
        &rates(&[RATE, "retail,33,France,,0,0.02"]),
        "bad_row",
        TariffFile::Rates,
        3,
        0,
    );
}

#[test]
fn missing_value() {
    check(
        PLANS,
        BANDS,
        &rates(&[RATE, ",33,France,,0,0.02,0,1,1,2026-01-01T00:00:00Z,"]),
        "missing_value",
        TariffFile::Rates,
        3,
        1,
    );
}

#[test]
fn duplicate_plan() {
    let plans = format!("{PLANS}retail,EUR,UTC,2,half_up,\n");
    check(
        &plans,
        BANDS,
        &rates(&[RATE]),
        "duplicate_plan",
        TariffFile::Plans,
        3,
        1,
    );
}

#[test]
fn bad_currency() {
    let plans = format!("{PLANS}other,usd,UTC,2,half_up,\n");
    check(&plans, BANDS, &rates(&[RATE]), "bad_currency", TariffFile::Plans, 3, 2);
}

#[test]
fn bad_timezone() {
    let plans = format!("{PLANS}other,USD,Mars/Olympus_Mons,2,half_up,\n");
    check(&plans, BANDS, &rates(&[RATE]), "bad_timezone", TariffFile::Plans, 3, 3);
}

#[test]
fn bad_decimals() {
    let plans = format!("{PLANS}other,USD,UTC,11,half_up,\n");
    check(&plans, BANDS, &rates(&[RATE]), "bad_decimals", TariffFile::Plans, 3, 4);
}

#[test]
fn bad_rounding() {
    let plans = format!("{PLANS}other,USD,UTC,2,nearest,\n");
    check(&plans, BANDS, &rates(&[RATE]), "bad_rounding", TariffFile::Plans, 3, 5);
}

#[test]
fn unknown_plan() {
    check(
        PLANS,
        BANDS,
        &rates(&[RATE, "ghost,33,France,,0,0.02,0,1,1,2026-01-01T00:00:00Z,"]),
        "unknown_plan",
        TariffFile::Rates,
        3,
        1,
    );
    let b = format!("{BANDS}ghost,night,mon,00:00,06:00\n");
    check(PLANS, &b, &rates(&[RATE]), "unknown_plan", TariffFile::Bands, 3, 1);
}

#[test]
fn duplicate_band() {
    let b = format!("{BANDS}retail,peak,sat,08:00,18:00\n");
    check(PLANS, &b, &rates(&[RATE]), "duplicate_band", TariffFile::Bands, 3, 2);
}

#[test]
fn bad_days() {
    let b = "plan,band,days,start,end\nretail,peak,mon-funday,08:00,18:00\n";
    check(PLANS, b, &rates(&[RATE]), "bad_days", TariffFile::Bands, 2, 3);
}

#[test]
fn bad_time_of_day() {
    let b = "plan,band,days,start,end\nretail,peak,mon-fri,8:00,18:00\n";
    check(PLANS, b, &rates(&[RATE]), "bad_time_of_day", TariffFile::Bands, 2, 4);
}

#[test]
fn overlapping_bands() {
    let b = format!("{BANDS}retail,lunch,mon,12:00,13:00\n");
    let e = check(PLANS, &b, &rates(&[RATE]), "overlapping_bands", TariffFile::Bands, 3, 3);
    assert!(e.to_string().contains("\"peak\" (line 2) on mon at 12:00"), "{e}");
    // A wrapping band that meets another exactly at its edge is fine.
    let b = format!("{BANDS}retail,night,mon-fri,18:00,08:00\n");
    assert!(parse_tariffs(PLANS, &b, &rates(&[RATE])).is_ok());
}

#[test]
fn bad_prefix() {
    check(
        PLANS,
        BANDS,
        &rates(&["retail,+44,UK,,0,0.02,0,1,1,2026-01-01T00:00:00Z,"]),
        "bad_prefix",
        TariffFile::Rates,
        2,
        2,
    );
}

#[test]
fn bad_decimal() {
    check(
        PLANS,
        BANDS,
        &rates(&["retail,44,UK,,0,0.0x,0,1,1,2026-01-01T00:00:00Z,"]),
        "bad_decimal",
        TariffFile::Rates,
        2,
        6,
    );
    for bad in ["1e5", "1_000", "", ".", "1.2.3", "0x10", "NaN"] {
        let row = format!("retail,44,UK,,{bad},0.02,0,1,1,2026-01-01T00:00:00Z,");
        check(PLANS, BANDS, &rates(&[&row]), "bad_decimal", TariffFile::Rates, 2, 5);
    }
}

#[test]
fn negative_amount() {
    check(
        PLANS,
        BANDS,
        &rates(&["retail,44,UK,,-0.01,0.02,0,1,1,2026-01-01T00:00:00Z,"]),
        "negative_amount",
        TariffFile::Rates,
        2,
        5,
    );
}

#[test]
fn bad_integer() {
    check(
        PLANS,
        BANDS,
        &rates(&["retail,44,UK,,0,0.02,1.5,1,1,2026-01-01T00:00:00Z,"]),
        "bad_integer",
        TariffFile::Rates,
        2,
        7,
    );
}

#[test]
fn bad_increment() {
    check(
        PLANS,
        BANDS,
        &rates(&["retail,44,UK,,0,0.02,0,0,1,2026-01-01T00:00:00Z,"]),
        "bad_increment",
        TariffFile::Rates,
        2,
        8,
    );
    check(
        PLANS,
        BANDS,
        &rates(&["retail,44,UK,,0,0.02,0,1,-6,2026-01-01T00:00:00Z,"]),
        "bad_increment",
        TariffFile::Rates,
        2,
        9,
    );
}

#[test]
fn bad_timestamp() {
    check(
        PLANS,
        BANDS,
        &rates(&["retail,44,UK,,0,0.02,0,1,1,2026-01-01,"]),
        "bad_timestamp",
        TariffFile::Rates,
        2,
        10,
    );
}

#[test]
fn empty_period() {
    check(
        PLANS,
        BANDS,
        &rates(&["retail,44,UK,,0,0.02,0,1,1,2026-02-01T00:00:00Z,2026-01-01T00:00:00Z"]),
        "empty_period",
        TariffFile::Rates,
        2,
        11,
    );
}

#[test]
fn unknown_band() {
    check(
        PLANS,
        BANDS,
        &rates(&[RATE, "retail,44,UK,night,0,0.02,0,1,1,2026-01-01T00:00:00Z,"]),
        "unknown_band",
        TariffFile::Rates,
        3,
        4,
    );
}

#[test]
fn overlapping_rates() {
    let rows = [
        "retail,44,UK,,0,0.02,0,1,1,2026-01-01T00:00:00Z,2026-07-01T00:00:00Z",
        "retail,44,UK,,0,0.03,0,1,1,2026-06-01T00:00:00Z,",
    ];
    check(
        PLANS,
        BANDS,
        &rates(&rows),
        "overlapping_rates",
        TariffFile::Rates,
        3,
        10,
    );
    // Back to back, a banded row of the same prefix, or another prefix: fine.
    let ok = [
        "retail,44,UK,,0,0.02,0,1,1,2026-01-01T00:00:00Z,2026-07-01T00:00:00Z",
        "retail,44,UK,,0,0.03,0,1,1,2026-07-01T00:00:00Z,",
        "retail,44,UK,peak,0,0.05,0,1,1,2026-01-01T00:00:00Z,",
        "retail,447,UK Mobile,,0,0.05,0,1,1,2026-01-01T00:00:00Z,",
    ];
    assert!(parse_tariffs(PLANS, BANDS, &rates(&ok)).is_ok());
}

#[test]
fn unknown_fallback() {
    let plans = format!("{PLANS}other,USD,UTC,2,half_up,nowhere\n");
    check(
        &plans,
        BANDS,
        &rates(&[RATE]),
        "unknown_fallback",
        TariffFile::Plans,
        3,
        6,
    );
}

#[test]
fn fallback_cycle() {
    let plans = "plan,currency,timezone,decimals,rounding,fallback\nretail,USD,UTC,4,half_up,a\na,USD,UTC,2,half_up,b\nb,USD,UTC,2,half_up,a\n";
    let e = check(plans, BANDS, &rates(&[RATE]), "fallback_cycle", TariffFile::Plans, 3, 6);
    assert!(e.to_string().contains("a -> b -> a"), "{e}");
    let own = "plan,currency,timezone,decimals,rounding,fallback\nretail,USD,UTC,4,half_up,retail\n";
    check(own, BANDS, &rates(&[RATE]), "fallback_cycle", TariffFile::Plans, 2, 6);
}

#[test]
fn fallback_currency_mismatch() {
    let plans = format!("{PLANS}ke,KES,Africa/Nairobi,2,half_even,retail\n");
    check(
        &plans,
        BANDS,
        &rates(&[RATE]),
        "fallback_currency_mismatch",
        TariffFile::Plans,
        3,
        6,
    );
}

#[test]
fn every_problem_is_reported_in_one_pass() {
    let plans = "plan,currency,timezone,decimals,rounding,fallback\nretail,usd,Nowhere,12,nearest,ghost\n";
    let bands = "plan,band,days,start,end\nretail,peak,someday,8,18:00\n";
    let r = rates(&["retail,4x,UK,,-1,abc,-1,0,0,yesterday,"]);
    let errors = parse_tariffs(plans, bands, &r).unwrap_err();
    let codes: Vec<_> = errors.iter().map(|e| e.code()).collect();
    assert_eq!(
        codes,
        [
            "bad_currency",
            "bad_timezone",
            "bad_decimals",
            "bad_rounding",
            "bad_days",
            "bad_time_of_day",
            "bad_prefix",
            "negative_amount",
            "bad_decimal",
            "bad_integer",
            "bad_increment",
            "bad_increment",
            "bad_timestamp",
        ]
    );
    let first = errors.to_string().lines().next().unwrap().to_owned();
    assert_eq!(
        first,
        r#"plans.csv:2:2: bad_currency: "usd" is not an ISO 4217 currency code"#
    );
}

#[test]
fn byte_order_mark_and_column_order_are_accepted() {
    let plans = "\u{feff}currency,plan,timezone,decimals,rounding,fallback\nUSD,retail,UTC,4,half_up,\n";
    let set = parse_tariffs(plans, "", &rates(&[RATE])).unwrap();
    assert_eq!(&*set.plans()[0].name, "retail");
}
