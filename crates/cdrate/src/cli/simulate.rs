//! `cdrate simulate`: price one hypothetical call and explain how, or price a
//! CSV batch (`case,plan,to,answer_at,billsec`) and write one output row per
//! input row. A bad row gets an error code in its `error` column and never
//! stops the batch.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use cdrate_rating::{load_dir, PriceError, Quote, TariffSet, E164};
use chrono::{DateTime, SecondsFormat, Utc};
use clap::Args;

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Tariff directory to price against.
    #[arg(long)]
    pub tariffs: PathBuf,
    /// Batch mode: CSV with columns case,plan,to,answer_at,billsec (`-` = stdin).
    #[arg(long, conflicts_with_all = ["plan", "to", "at", "seconds", "json"])]
    pub input: Option<PathBuf>,
    /// Plan to price on.
    #[arg(long, required_unless_present = "input")]
    pub plan: Option<String>,
    /// Dialled number in international form, e.g. +442071234567.
    #[arg(long, required_unless_present = "input")]
    pub to: Option<String>,
    /// Answer time, RFC 3339 (e.g. 2026-11-18T15:00:00Z).
    #[arg(long, required_unless_present = "input", value_parser = parse_instant)]
    pub at: Option<DateTime<Utc>>,
    /// Billable seconds.
    #[arg(long, required_unless_present = "input")]
    pub seconds: Option<u64>,
    /// Print the explanation as one JSON object.
    #[arg(long)]
    pub json: bool,
}

fn parse_instant(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{s:?} is not an RFC 3339 time: {e}"))
}

pub fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let tariffs = load_tariffs(&args.tariffs)?;
    match &args.input {
        Some(input) => {
            let mut text = String::new();
            if input == Path::new("-") {
                std::io::stdin().read_to_string(&mut text)?;
            } else {
                text = std::fs::read_to_string(input).with_context(|| format!("reading {}", input.display()))?;
            }
            simulate_batch(&tariffs, text.as_bytes(), std::io::stdout().lock())?;
            Ok(ExitCode::SUCCESS)
        }
        None => simulate_one(&tariffs, &args),
    }
}

fn load_tariffs(dir: &Path) -> anyhow::Result<TariffSet> {
    load_dir(dir).map_err(|errors| {
        anyhow::anyhow!(
            "tariffs in {} are invalid ({} problem(s)); run `cdrate tariff check {0}`:\n{errors}",
            dir.display(),
            errors.len()
        )
    })
}

/// Why one simulated call has no price. Codes are stable CLI output.
#[derive(Debug)]
enum SimulateError {
    Price(PriceError),
    BadNumber,
    BadTime,
    BadDuration,
    BadRow,
}

impl SimulateError {
    fn code(&self) -> &'static str {
        match self {
            SimulateError::Price(e) => e.code(),
            SimulateError::BadNumber => "bad_number",
            SimulateError::BadTime => "bad_time",
            SimulateError::BadDuration => "bad_duration",
            SimulateError::BadRow => "bad_row",
        }
    }
}

fn price<'t>(
    tariffs: &'t TariffSet,
    plan: &str,
    to: &str,
    at: DateTime<Utc>,
    seconds: u64,
) -> Result<Quote<'t>, SimulateError> {
    // Plan first, so an unknown plan is reported as such whatever the number.
    let plan = tariffs
        .plan_id(plan)
        .ok_or_else(|| SimulateError::Price(PriceError::UnknownPlan(plan.to_owned())))?;
    let number = E164::parse_international(to).map_err(|_| SimulateError::BadNumber)?;
    tariffs.price(plan, &number, at, seconds).map_err(SimulateError::Price)
}

fn simulate_one(tariffs: &TariffSet, args: &SimulateArgs) -> anyhow::Result<ExitCode> {
    // clap guarantees these are present without --input.
    let (Some(plan), Some(to), Some(at), Some(seconds)) = (&args.plan, &args.to, args.at, args.seconds) else {
        anyhow::bail!("--plan, --to, --at and --seconds are required without --input");
    };
    let mut out = std::io::stdout().lock();
    match price(tariffs, plan, to, at, seconds) {
        Ok(q) => {
            if args.json {
                writeln!(out, "{}", explain_json(plan, to, at, seconds, &q))?;
            } else {
                explain_text(&mut out, plan, to, at, seconds, &q)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            let message = match &e {
                SimulateError::Price(p) => p.to_string(),
                SimulateError::BadNumber => format!("{to:?} is not an international number"),
                _ => e.code().to_owned(),
            };
            if args.json {
                writeln!(out, "{}", serde_json::json!({"error": e.code(), "message": message}))?;
            } else {
                eprintln!("{}: {message}", e.code());
            }
            Ok(ExitCode::from(1))
        }
    }
}

pub(crate) fn explain_json(plan: &str, to: &str, at: DateTime<Utc>, seconds: u64, q: &Quote) -> serde_json::Value {
    let r = q.rate;
    serde_json::json!({
        "plan": plan,
        "priced_by": &*q.plan.name,
        "fallback": &*q.plan.name != plan,
        "to": to,
        "at": at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        "local_time": at.with_timezone(&q.plan.timezone).to_rfc3339_opts(SecondsFormat::AutoSi, false),
        "billable_seconds": seconds,
        "prefix": &*r.prefix,
        "destination": q.destination,
        "band": q.band().map(|b| &*b.name),
        "connect_fee": r.connect_fee.to_string(),
        "rate_per_min": r.rate_per_min.to_string(),
        "min_seconds": r.min_seconds,
        "initial_increment": r.initial_increment,
        "next_increment": r.next_increment,
        "rates_csv_line": r.line,
        "charged_seconds": q.charged_seconds,
        "cost": q.cost.to_string(),
        "currency": q.plan.currency.as_str(),
        "rounding": q.plan.rounding.as_str(),
        "decimals": q.plan.decimals,
    })
}

fn explain_text(
    out: &mut impl Write,
    plan: &str,
    to: &str,
    at: DateTime<Utc>,
    seconds: u64,
    q: &Quote,
) -> std::io::Result<()> {
    let r = q.rate;
    let priced_by = if &*q.plan.name == plan {
        plan.to_owned()
    } else {
        format!("{} (fallback of {plan}: no rate of {plan} applies)", q.plan.name)
    };
    let local = at.with_timezone(&q.plan.timezone);
    writeln!(
        out,
        "call        {to} at {} ({} {})",
        at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        local.format("%a %Y-%m-%d %H:%M:%S"),
        q.plan.timezone.name()
    )?;
    writeln!(out, "priced by   {priced_by}")?;
    writeln!(
        out,
        "prefix      {} ({}), rates.csv line {}",
        if r.prefix.is_empty() { "(any)" } else { &r.prefix },
        q.destination,
        r.line
    )?;
    writeln!(out, "band        {}", q.band().map_or("(any time)", |b| &b.name))?;
    writeln!(
        out,
        "rate        {}/min, connect fee {}, minimum {} s, increments {}/{} s",
        r.rate_per_min, r.connect_fee, r.min_seconds, r.initial_increment, r.next_increment
    )?;
    writeln!(out, "billable    {seconds} s")?;
    writeln!(out, "charged     {} s", q.charged_seconds)?;
    writeln!(
        out,
        "cost        {} {} (rounded {} to {} decimals)",
        q.cost,
        q.plan.currency,
        q.plan.rounding.as_str(),
        q.plan.decimals
    )
}

const BATCH_INPUT: [&str; 5] = ["case", "plan", "to", "answer_at", "billsec"];
const BATCH_OUTPUT: [&str; 7] = [
    "priced_by",
    "prefix",
    "destination",
    "charged_seconds",
    "cost",
    "currency",
    "error",
];

/// Prices every row of `input` and writes the input columns followed by
/// [`BATCH_OUTPUT`]. Fails only if the header is unusable or writing fails.
pub fn simulate_batch(tariffs: &TariffSet, input: impl Read, out: impl Write) -> anyhow::Result<()> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
    let header = reader.headers().context("reading the input header")?.clone();
    let mut pos = [0usize; 5];
    for (i, name) in BATCH_INPUT.iter().enumerate() {
        pos[i] = header
            .iter()
            .position(|h| h.trim() == *name)
            .with_context(|| format!("input has no {name:?} column (need {})", BATCH_INPUT.join(",")))?;
    }
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(header.iter().chain(BATCH_OUTPUT))?;
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let outcome = if record.len() != header.len() {
                    Err(SimulateError::BadRow)
                } else {
                    price_row(tariffs, &record, &pos)
                };
                let mut row: Vec<String> = (0..header.len())
                    .map(|i| record.get(i).unwrap_or("").to_owned())
                    .collect();
                row.extend(match outcome {
                    Ok(q) => [
                        q.plan.name.to_string(),
                        q.rate.prefix.to_string(),
                        q.destination.to_owned(),
                        q.charged_seconds.to_string(),
                        q.cost.to_string(),
                        q.plan.currency.to_string(),
                        String::new(),
                    ],
                    Err(e) => [
                        String::new(),
                        String::new(),
                        String::new(),
                        String::new(),
                        String::new(),
                        String::new(),
                        e.code().to_owned(),
                    ],
                });
                writer.write_record(&row)?;
            }
            Err(e) => {
                // A malformed CSV row (e.g. invalid UTF-8) is reported in place.
                let mut row = vec![String::new(); header.len()];
                row.extend(std::iter::repeat_n(String::new(), BATCH_OUTPUT.len() - 1));
                row.push("bad_row".to_owned());
                writer.write_record(&row)?;
                if !matches!(
                    e.kind(),
                    csv::ErrorKind::Utf8 { .. } | csv::ErrorKind::UnequalLengths { .. }
                ) {
                    return Err(e).context("reading the input CSV");
                }
            }
        }
    }
    writer.flush()?;
    Ok(())
}

fn price_row<'t>(
    tariffs: &'t TariffSet,
    rec: &csv::StringRecord,
    pos: &[usize; 5],
) -> Result<Quote<'t>, SimulateError> {
    let field = |i: usize| rec.get(pos[i]).unwrap_or("").trim();
    let at = parse_instant(field(3)).map_err(|_| SimulateError::BadTime)?;
    let seconds: u64 = field(4).parse().map_err(|_| SimulateError::BadDuration)?;
    price(tariffs, field(1), field(2), at, seconds)
}
