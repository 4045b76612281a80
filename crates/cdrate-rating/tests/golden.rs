//! The oracle's golden cases (`shared/fixtures/rating`) through the library:
//! every case is priced, all mismatches are gathered, and the test fails once
//! with the whole list.

use std::collections::HashMap;
use std::path::PathBuf;

use cdrate_rating::{load_dir, E164};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/rating")
}

fn read_csv(name: &str) -> Vec<HashMap<String, String>> {
    let path = fixtures().join(name);
    let mut reader = csv::Reader::from_path(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            header
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

/// What the engine produced for one case, in the fixture's terms.
fn check(tariffs: &cdrate_rating::TariffSet, case: &HashMap<String, String>) -> Result<(), String> {
    let at = case["answer_at"].parse().map_err(|e| format!("bad answer_at: {e}"))?;
    let seconds: u64 = case["billsec"].parse().map_err(|e| format!("bad billsec: {e}"))?;
    let got = E164::parse_international(&case["to"])
        .map_err(|e| e.code().to_owned())
        .and_then(|n| {
            tariffs
                .price_on(&case["plan"], &n, at, seconds)
                .map_err(|e| e.code().to_owned())
        });
    let want = &case["expect_cost"];
    match (want.strip_prefix("ERROR:"), got) {
        (Some(code), Err(got)) if code == got => Ok(()),
        (Some(code), Err(got)) => Err(format!("want error {code}, got error {got}")),
        (Some(code), Ok(q)) => Err(format!("want error {code}, got cost {}", q.cost)),
        (None, Err(got)) => Err(format!("want cost {want}, got error {got}")),
        (None, Ok(q)) => {
            let got = (
                q.plan.name.to_string(),
                q.rate.prefix.to_string(),
                q.charged_seconds.to_string(),
                q.cost.to_string(),
                q.plan.currency.to_string(),
            );
            let want = (
                case["expect_plan"].clone(),
                case["expect_prefix"].clone(),
                case["expect_charged_seconds"].clone(),
                want.clone(),
                case["expect_currency"].clone(),
            );
            if got == want {
                Ok(())
            } else {
                Err(format!(
                    "want (plan, prefix, charged, cost, currency) {want:?}, got {got:?}"
                ))
            }
        }
    }
}

#[test]
fn every_golden_case_matches() {
    let tariffs = load_dir(&fixtures().join("tariffs")).unwrap_or_else(|e| panic!("fixture tariffs invalid:\n{e}"));
    let cases = read_csv("cases.csv");
    assert!(cases.len() >= 30, "expected the full golden set, found {}", cases.len());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| check(&tariffs, c).err().map(|e| format!("{}: {e}", c["case"])))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} golden cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn inputs_file_matches_the_expectations_file() {
    // cases.in.csv is what the CLI is fed; it must be the same calls as cases.csv.
    let inputs = read_csv("cases.in.csv");
    let cases = read_csv("cases.csv");
    assert_eq!(inputs.len(), cases.len());
    for (i, c) in inputs.iter().zip(&cases) {
        for col in ["case", "plan", "to", "answer_at", "billsec"] {
            assert_eq!(i[col], c[col], "{} {col}", c["case"]);
        }
    }
}
