//! The `cdrate` binary as an operator runs it: `tariff check`, single and
//! batch `simulate`, including the golden cases through the batch CLI.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn cdrate(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cdrate"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cdrate runs");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn rows(csv_text: &str) -> Vec<HashMap<String, String>> {
    let mut r = csv::Reader::from_reader(csv_text.as_bytes());
    let header = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            header
                .iter()
                .zip(rec.unwrap().iter())
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

#[test]
fn batch_simulate_reproduces_every_golden_case() {
    let fx = shared().join("fixtures/rating");
    let out = cdrate(
        &[
            "simulate",
            "--tariffs",
            fx.join("tariffs").to_str().unwrap(),
            "--input",
            fx.join("cases.in.csv").to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with(
        "case,plan,to,answer_at,billsec,priced_by,prefix,destination,charged_seconds,cost,currency,error\n"
    ));
    let got: HashMap<String, HashMap<String, String>> =
        rows(&stdout).into_iter().map(|r| (r["case"].clone(), r)).collect();
    let want = rows(&std::fs::read_to_string(fx.join("cases.csv")).unwrap());
    let mut failures = Vec::new();
    for w in &want {
        let Some(g) = got.get(&w["case"]) else {
            failures.push(format!("{}: missing", w["case"]));
            continue;
        };
        let ok = match w["expect_cost"].strip_prefix("ERROR:") {
            Some(code) => g["error"] == code && g["cost"].is_empty(),
            None => {
                [
                    &g["priced_by"],
                    &g["prefix"],
                    &g["charged_seconds"],
                    &g["cost"],
                    &g["currency"],
                    &g["error"],
                ] == [
                    &w["expect_plan"],
                    &w["expect_prefix"],
                    &w["expect_charged_seconds"],
                    &w["expect_cost"],
                    &w["expect_currency"],
                    "",
                ]
            }
        };
        if !ok {
            failures.push(format!("{}: want {w:?}\n  got {g:?}", w["case"]));
        }
    }
    assert_eq!(got.len(), want.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn one_bad_row_never_stops_the_batch() {
    let fx = shared().join("fixtures/rating/tariffs");
    let input = "case,plan,to,answer_at,billsec\n\
        unknown-plan,gold,+442071234567,2026-11-18T15:00:00Z,60\n\
        bad-number,retail,0800-FLOWERS,2026-11-18T15:00:00Z,60\n\
        bad-time,retail,+442071234567,yesterday,60\n\
        bad-duration,retail,+442071234567,2026-11-18T15:00:00Z,-5\n\
        short-row,retail,+442071234567\n\
        no-route,retail,+33123456789,2026-11-18T15:00:00Z,60\n\
        good,retail,+442071234567,2026-11-18T15:00:00Z,100\n";
    let out = cdrate(
        &["simulate", "--tariffs", fx.to_str().unwrap(), "--input", "-"],
        Some(input),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let got: Vec<(String, String, String)> = rows(&text(&out.stdout))
        .into_iter()
        .map(|r| (r["case"].clone(), r["error"].clone(), r["cost"].clone()))
        .collect();
    let want = [
        ("unknown-plan", "unknown_plan", ""),
        ("bad-number", "bad_number", ""),
        ("bad-time", "bad_time", ""),
        ("bad-duration", "bad_duration", ""),
        ("short-row", "bad_row", ""),
        ("no-route", "no_route", ""),
        ("good", "", "0.0367"),
    ];
    let want: Vec<(String, String, String)> = want
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn batch_without_required_columns_is_a_usage_error() {
    let fx = shared().join("fixtures/rating/tariffs");
    let out = cdrate(
        &["simulate", "--tariffs", fx.to_str().unwrap(), "--input", "-"],
        Some("case,plan,to\nx,retail,+1\n"),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no \"answer_at\" column"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn tariff_check_prints_a_summary() {
    let fx = shared().join("fixtures/rating/tariffs");
    let out = cdrate(&["tariff", "check", fx.to_str().unwrap()], None);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    assert!(stdout.contains("OK, 4 plans, 3 bands, 17 rates"), "{stdout}");
    let retail = stdout.lines().find(|l| l.starts_with("retail ")).unwrap();
    let cols: Vec<_> = retail.split_whitespace().collect();
    assert_eq!(
        cols,
        ["retail", "USD", "America/New_York", "4", "half_up", "-", "3", "11", "7"]
    );
}

#[test]
fn tariff_check_lists_every_problem_and_exits_1() {
    let dir = std::env::temp_dir().join(format!("cdrate-cli-bad-tariffs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("plans.csv"),
        "plan,currency,timezone,decimals,rounding,fallback\nretail,USD,Nowhere,4,half_up,ghost\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("rates.csv"),
        "plan,prefix,destination,band,connect_fee,rate_per_min,min_seconds,initial_increment,next_increment,effective_from,effective_to\nretail,44,UK,,0,-1,0,0,1,,\n",
    )
    .unwrap();
    let out = cdrate(&["tariff", "check", dir.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(
        lines[..3],
        [
            "plans.csv:2:3: bad_timezone: \"Nowhere\" is not an IANA time zone",
            "rates.csv:2:6: negative_amount: rate_per_min is negative (-1)",
            "rates.csv:2:8: bad_increment: initial_increment is 0, it must be at least 1 second",
        ]
    );
    assert!(lines[3].ends_with("3 problem(s), tariffs not loaded"), "{lines:?}");
}

#[test]
fn simulate_explains_one_call() {
    let fx = shared().join("fixtures/rating/tariffs");
    let args = [
        "simulate",
        "--tariffs",
        fx.to_str().unwrap(),
        "--plan",
        "ke-retail",
        "--to",
        "+254 41 1234567",
        "--at",
        "2026-11-18T15:00:00Z",
        "--seconds",
        "90",
    ];
    let out = cdrate(&args, None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for want in [
        "priced by   ke-base (fallback of ke-retail",
        "prefix      254 (Kenya Other)",
        "charged     90 s",
        "cost        6.15 KES",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in\n{stdout}");
    }

    let out = cdrate(&[&args[..], &["--json"]].concat(), None);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["priced_by"], "ke-base");
    assert_eq!(v["fallback"], true);
    assert_eq!(v["prefix"], "254");
    assert_eq!(v["cost"], "6.15");
    assert_eq!(v["currency"], "KES");
    assert_eq!(v["charged_seconds"], 90);
    assert_eq!(v["band"], serde_json::Value::Null);
}

#[test]
fn simulate_reports_a_banded_rate_and_errors() {
    let fx = shared().join("fixtures/rating/tariffs");
    let base = [
        "simulate",
        "--tariffs",
        fx.to_str().unwrap(),
        "--plan",
        "retail",
        "--at",
        "2026-11-18T15:00:00Z",
        "--seconds",
        "61",
        "--json",
    ];
    let out = cdrate(&[&base[..], &["--to", "+12125551234"]].concat(), None);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["band"].as_str(), v["cost"].as_str(), v["local_time"].as_str()),
        (Some("peak"), Some("0.0320"), Some("2026-11-18T10:00:00-05:00"))
    );

    let out = cdrate(&[&base[..], &["--to", "+33123456789"]].concat(), None);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"], "no_route");

    let out = cdrate(&[&base[..], &["--to", "not-a-number"]].concat(), None);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"], "bad_number");
}

#[test]
fn the_demo_tariffs_are_valid() {
    let out = cdrate(&["tariff", "check", examples().join("tariffs").to_str().unwrap()], None);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
}
