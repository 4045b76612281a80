//! `cdrate replay [--source S] FILES|DIRS`: feeds saved payloads (e.g.
//! FreeSWITCH's `err-log-dir`) through the source's adapter and onto the
//! bus, with a progress bar and a summary: accepted, duplicates (already
//! rated at that version, or seen twice in this run), ignored, rejected by
//! code. Rejected files are kept as dead letters like rejected requests.
//! Safe to run twice: the second run finds duplicates, and anything appended
//! again is rated once anyway.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use cdrate_bus::{Names, Outgoing};
use cdrate_core::{CallRecord, Source};
use cdrate_ingest::fritzbox::CallMonitor;
use cdrate_ingest::{Outcome, ParseContext};
use cdrate_store::DeadLetter;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Config;

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// freeswitch (default), twilio, zadarma or fritzbox.
    #[arg(long, default_value = "freeswitch")]
    pub source: String,
    /// Time zone for sources that send local times (default: the configured one).
    #[arg(long)]
    pub tz: Option<String>,
    /// Box or PBX id (Fritz!Box box, Zadarma PBX; default: the configured one).
    #[arg(long = "box")]
    pub box_id: Option<String>,
    /// Files, or directories searched recursively.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

/// Records appended per bus batch.
const CHUNK: usize = 500;

fn collect(path: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("reading {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for e in entries {
            collect(&e, out)?;
        }
    } else {
        out.push(path.to_owned());
    }
    Ok(())
}

#[derive(Default)]
struct Summary {
    accepted: usize,
    duplicates: usize,
    ignored: usize,
    rejected: BTreeMap<&'static str, usize>,
}

pub async fn run(args: ReplayArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let source = Source::parse(&args.source).with_context(|| format!("unknown source {:?}", args.source))?;
    let tz_name = args.tz.clone().or_else(|| match source {
        Source::Zadarma => Some(config.ingest.zadarma.timezone.clone()),
        _ => None,
    });
    let tz: Option<chrono_tz::Tz> = match tz_name {
        Some(z) => Some(
            z.parse()
                .map_err(|_| anyhow::anyhow!("{z:?} is not an IANA time zone"))?,
        ),
        None => None,
    };
    let box_id = args.box_id.clone().or_else(|| match source {
        Source::Zadarma => config.ingest.zadarma.pbx_id.clone(),
        _ => None,
    });
    let mut files = Vec::new();
    for p in &args.paths {
        collect(p, &mut files)?;
    }
    if files.is_empty() {
        bail!("no files to replay");
    }
    let store = crate::serve::open_store(config).await?;
    let bus = crate::serve::open_bus(config).await?;
    let names = Names::new(&config.bus.namespace);
    let bar = ProgressBar::new(files.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} files ({per_sec}, eta {eta}) {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let now = chrono::Utc::now();
    let ctx = ParseContext {
        received_at: now,
        timezone: tz,
        box_id: box_id.as_deref(),
    };
    let mut summary = Summary::default();
    let mut pending: Vec<CallRecord> = Vec::new();
    let mut seen: HashMap<String, u32> = HashMap::new();
    for file in &files {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let outcomes = if source == Source::Fritzbox {
            let (Some(b), Some(z)) = (ctx.box_id, ctx.timezone) else {
                bail!("--source fritzbox needs --box and --tz")
            };
            let mut monitor = CallMonitor::new(b, z);
            String::from_utf8_lossy(&bytes)
                .lines()
                .filter_map(|l| monitor.feed(l, now))
                .collect()
        } else {
            let adapter = cdrate_ingest::adapter(source).context("no adapter")?;
            vec![adapter.parse(&bytes, &ctx)]
        };
        for outcome in outcomes {
            match outcome {
                Outcome::Record(call) => {
                    // A second copy in this run, at the same or a lower version.
                    if seen.get(&call.id).is_some_and(|v| *v >= call.version) {
                        summary.duplicates += 1;
                        continue;
                    }
                    seen.insert(call.id.clone(), call.version);
                    pending.push(*call);
                }
                Outcome::Ignored(_) => summary.ignored += 1,
                Outcome::Rejected(e) => {
                    *summary.rejected.entry(e.code()).or_default() += 1;
                    store
                        .insert_dead_letter(&DeadLetter {
                            id: 0,
                            source: source.as_str().to_owned(),
                            received_at_ms: now.timestamp_millis(),
                            reason: e.code().to_owned(),
                            detail: e.detail.clone(),
                            remote_addr: "replay".into(),
                            headers: "{}".into(),
                            uri: format!("file://{}", file.display()),
                            body: bytes.clone(),
                            retried_at_ms: None,
                            retry_outcome: None,
                        })
                        .await?;
                }
            }
        }
        if pending.len() >= CHUNK {
            flush(&store, &bus, &names, &mut pending, &mut summary).await?;
        }
        bar.inc(1);
    }
    flush(&store, &bus, &names, &mut pending, &mut summary).await?;
    bar.finish_and_clear();
    let rejected: Vec<String> = summary.rejected.iter().map(|(c, n)| format!("{c}: {n}")).collect();
    println!(
        "{} file(s): {} accepted, {} duplicates, {} ignored, {} rejected{}",
        files.len(),
        summary.accepted,
        summary.duplicates,
        summary.ignored,
        summary.rejected.values().sum::<usize>(),
        if rejected.is_empty() {
            String::new()
        } else {
            format!(" ({}; kept as dead letters)", rejected.join(", "))
        }
    );
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

/// Appends the pending records that are not already rated at their version.
async fn flush(
    store: &cdrate_store::Store,
    bus: &cdrate_bus::Bus,
    names: &Names,
    pending: &mut Vec<CallRecord>,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = pending.iter().map(|c| c.id.as_str()).collect();
    let stored = store.stored_versions(&ids).await?;
    let mut out = Vec::with_capacity(pending.len());
    for call in pending.drain(..) {
        if stored.get(&call.id).is_some_and(|v| *v >= i64::from(call.version)) {
            summary.duplicates += 1;
            continue;
        }
        out.push(Outgoing {
            key: call.account_key.clone(),
            payload: serde_json::to_vec(&call)?,
        });
    }
    bus.publish(&names.calls, &out).await?;
    summary.accepted += out.len();
    Ok(())
}
