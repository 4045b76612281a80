//! `cdrate ingest parse --source S [--tz ZONE] [--box ID] FILE...`: runs the
//! source adapters over saved payloads, no server, and prints one JSON line
//! per outcome: `{"file", "record"}`, `{"file", "error", "detail"}` or
//! `{"file", "ignored"}` (the shape of the ingest fixtures'
//! `expected.jsonl`). A Fritz!Box transcript is fed line by line to one
//! CallMonitor per file and prints a line per record it completes.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use cdrate_core::Source;
use cdrate_ingest::fritzbox::CallMonitor;
use cdrate_ingest::{Outcome, ParseContext};
use chrono::Utc;
use chrono_tz::Tz;
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum IngestCommand {
    /// Parse saved payloads and print each outcome as a JSON line.
    Parse(ParseArgs),
}

#[derive(Debug, Args)]
pub struct ParseArgs {
    /// freeswitch, twilio, zadarma or fritzbox.
    #[arg(long)]
    pub source: String,
    /// Time zone of sources that send local times (Zadarma, Fritz!Box).
    #[arg(long)]
    pub tz: Option<String>,
    /// Box or PBX id (Fritz!Box box id, Zadarma PBX id).
    #[arg(long = "box")]
    pub box_id: Option<String>,
    /// Payload files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

pub fn run(cmd: IngestCommand) -> anyhow::Result<ExitCode> {
    let IngestCommand::Parse(args) = cmd;
    let source = Source::parse(&args.source).with_context(|| format!("unknown source {:?}", args.source))?;
    let tz: Option<Tz> = match &args.tz {
        Some(z) => Some(
            z.parse()
                .map_err(|_| anyhow::anyhow!("{z:?} is not an IANA time zone"))?,
        ),
        None => None,
    };
    let ctx = ParseContext {
        received_at: Utc::now(),
        timezone: tz,
        box_id: args.box_id.as_deref(),
    };
    let mut out = std::io::stdout().lock();
    for path in &args.files {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        if source == Source::Fritzbox {
            let (Some(box_id), Some(tz)) = (ctx.box_id, ctx.timezone) else {
                bail!("--source fritzbox needs --box and --tz");
            };
            let mut monitor = CallMonitor::new(box_id, tz);
            for line in String::from_utf8_lossy(&bytes).lines() {
                if let Some(outcome) = monitor.feed(line, ctx.received_at) {
                    print_outcome(&mut out, &file, &outcome)?;
                }
            }
            continue;
        }
        let adapter =
            cdrate_ingest::adapter(source).with_context(|| format!("{} has no payload adapter", source.as_str()))?;
        print_outcome(&mut out, &file, &adapter.parse(&bytes, &ctx))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_outcome(out: &mut impl std::io::Write, file: &str, outcome: &Outcome) -> anyhow::Result<()> {
    let line = match outcome {
        Outcome::Record(r) => serde_json::json!({"file": file, "record": r}),
        Outcome::Ignored(reason) => serde_json::json!({"file": file, "ignored": reason}),
        Outcome::Rejected(e) => serde_json::json!({"file": file, "error": e.code(), "detail": e.detail}),
    };
    writeln!(out, "{line}")?;
    Ok(())
}
