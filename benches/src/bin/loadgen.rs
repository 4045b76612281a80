//! End-to-end load generator (DESIGN §11): HTTP POST → rated row committed.
//!
//! It starts `cdrate serve` itself in a temporary directory (generated
//! accounts and identities files, the demo tariffs in `examples/tariffs`),
//! on the embedded backend (SQLite log + SQLite store) or on Kafka +
//! PostgreSQL (a fresh database and a unique bus namespace per run), then
//! posts `--records` seeded CallRecords as JSON arrays of `--batch` records
//! over `--connections` keep-alive connections, retrying 503s. It measures:
//!
//! - **ingest rec/s**: records accepted (202) per second, from the first
//!   post until the last answer;
//! - **end-to-end rec/s**: records divided by the time from the first post
//!   until every record is rated *and committed*. The engine counts a call in
//!   `cdrate_rating_calls_total` only after the store transaction holding it
//!   (and the bus offset commit) succeeded, so that counter, polled on
//!   `/metrics`, marks the commit; after shutdown the store itself is opened
//!   and must hold exactly `--records` rated calls and no quarantined ones;
//! - **request latency** p50/p99 of the successful ingest requests;
//! - **peak RSS** of the cdrate process (VmHWM from `/proc/<pid>/status`,
//!   read just before shutdown).
//!
//! `--format freeswitch` posts FreeSWITCH XML CDRs instead, one per request
//! as `mod_xml_cdr` does (`encode=textxml`: a raw `text/xml` body, the leg's
//! uuid in the query, HTTP Basic credentials), to `POST /ingest/freeswitch`.
//! The engine gets a `cdrate.toml` with one `[[ingest.freeswitch.pbx]]`
//! holding those credentials and a loopback allowlist. The CDRs are the
//! shared fixture `answered-outbound-gateway.xml` (or `--cdr-template`)
//! with a unique uuid, tenant, extension, dialled number and times per
//! record ([`cdrate_benches::freeswitch`]); every tenant's accountcode has a
//! `freeswitch` identity, so the same end check holds. `--batch` does not
//! apply.
//!
//! The engine is stopped with SIGTERM and must exit with status 0. The load
//! generator shares the machine with the engine; request bodies are built
//! before the clock starts. Every step is bounded by `--timeout-secs`.
//! Only loopback addresses are used.
//!
//! ```sh
//! cargo build --release -p cdrate -p cdrate-benches
//! target/release/loadgen --backend embedded --records 200000 --batch 100 --connections 8
//! target/release/loadgen --backend embedded --format freeswitch --records 100000 --connections 8
//! target/release/loadgen --backend kafka --kafka-brokers 127.0.0.1:19092 \
//!     --postgres-url postgres://cdrate@127.0.0.1:15432/postgres
//! ```
//!
//! `--env KEY=VALUE` (repeatable) passes extra configuration to the engine,
//! e.g. `--env CDRATE_RATING__BATCH_MAX_RECORDS=5000`; `--keep` keeps the
//! temporary directory (and the PostgreSQL database). The engine's pid is
//! printed at start so a profiler can attach (`perf record -g -p PID`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cdrate_benches::calls::batch_json;
use cdrate_benches::engine::{self, EngineEnv, Storage};
use cdrate_benches::freeswitch::{self, Template};
use cdrate_benches::http::Client;
use cdrate_store::{Store, StoreSettings};

type Error = Box<dyn std::error::Error + Send + Sync>;
type Result<T> = std::result::Result<T, Error>;

/// Account keys the generated identities file maps (as in the e2e tests).
const ACCOUNT_KEYS: usize = 20;
const ACCOUNTS: usize = 10;
/// How often `/metrics` is polled while waiting for the rating worker.
const POLL: Duration = Duration::from_millis(20);

/// The HTTP Basic credentials of the PBX configured for `--format freeswitch`.
const PBX_USER: &str = "freeswitch";
const PBX_PASSWORD: &str = "loadgen-Tq8-cdr";

const USAGE: &str = "usage: loadgen [--cdrate PATH] [--backend embedded|kafka] [--kafka-brokers HOST:PORT]
               [--postgres-url URL] [--format json|freeswitch] [--cdr-template FILE]
               [--records N] [--batch B] [--connections C] [--seed S]
               [--partitions P] [--append-concurrency A] [--timeout-secs T] [--tariffs DIR]
               [--env KEY=VALUE]... [--keep]";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BackendKind {
    Embedded,
    Kafka,
}

/// What is posted: CallRecord JSON arrays, or one FreeSWITCH XML CDR per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Freeswitch,
}

#[derive(Debug, Clone)]
struct Args {
    cdrate: PathBuf,
    backend: BackendKind,
    format: Format,
    cdr_template: PathBuf,
    kafka_brokers: String,
    postgres_url: Option<String>,
    records: u64,
    batch: u64,
    connections: usize,
    seed: u64,
    partitions: u32,
    append_concurrency: u32,
    timeout: Duration,
    tariffs: PathBuf,
    env: Vec<(String, String)>,
    keep: bool,
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn parse_args(argv: &[String]) -> Result<Args> {
    let mut a = Args {
        cdrate: repo_root().join("target/release/cdrate"),
        backend: BackendKind::Embedded,
        format: Format::Json,
        cdr_template: freeswitch::fixture_path(),
        kafka_brokers: "127.0.0.1:9092".into(),
        postgres_url: None,
        records: 200_000,
        batch: 100,
        connections: 8,
        seed: 42,
        partitions: 8,
        append_concurrency: 4,
        timeout: Duration::from_secs(900),
        tariffs: repo_root().join("examples/tariffs"),
        env: Vec::new(),
        keep: false,
    };
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        if flag == "--keep" {
            a.keep = true;
            continue;
        }
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.into());
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let num = |what: &str| -> Result<u64> {
            value
                .replace('_', "")
                .parse::<u64>()
                .map_err(|e| format!("{what} {value:?}: {e}").into())
        };
        match flag.as_str() {
            "--cdrate" => a.cdrate = PathBuf::from(value),
            "--backend" => {
                a.backend = match value.as_str() {
                    "embedded" => BackendKind::Embedded,
                    "kafka" => BackendKind::Kafka,
                    other => return Err(format!("--backend {other:?}: embedded or kafka").into()),
                }
            }
            "--format" => {
                a.format = match value.as_str() {
                    "json" => Format::Json,
                    "freeswitch" => Format::Freeswitch,
                    other => return Err(format!("--format {other:?}: json or freeswitch").into()),
                }
            }
            "--cdr-template" => a.cdr_template = PathBuf::from(value),
            "--kafka-brokers" => a.kafka_brokers = value.clone(),
            "--postgres-url" => a.postgres_url = Some(value.clone()),
            "--records" => a.records = num("--records")?,
            "--batch" => a.batch = num("--batch")?,
            "--connections" => a.connections = usize::try_from(num("--connections")?)?,
            "--seed" => a.seed = num("--seed")?,
            "--partitions" => a.partitions = u32::try_from(num("--partitions")?)?,
            "--append-concurrency" => a.append_concurrency = u32::try_from(num("--append-concurrency")?)?,
            "--timeout-secs" => a.timeout = Duration::from_secs(num("--timeout-secs")?),
            "--tariffs" => a.tariffs = PathBuf::from(value),
            "--env" => {
                let (k, v) = value
                    .split_once('=')
                    .ok_or_else(|| format!("--env {value:?}: expected KEY=VALUE"))?;
                a.env.push((k.to_owned(), v.to_owned()));
            }
            other => return Err(format!("unknown flag {other}\n{USAGE}").into()),
        }
    }
    if a.records == 0 || a.batch == 0 || a.connections == 0 {
        return Err("--records, --batch and --connections must be at least 1".into());
    }
    if a.backend == BackendKind::Kafka {
        let pg = a
            .postgres_url
            .as_deref()
            .ok_or("--backend kafka needs --postgres-url")?;
        check_loopback("--postgres-url", url_host(pg))?;
        for broker in a.kafka_brokers.split(',') {
            check_loopback("--kafka-brokers", broker.rsplit_once(':').map_or(broker, |(h, _)| h))?;
        }
    }
    Ok(a)
}

/// The host of `scheme://user@host:port/db`.
fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split('/').next().unwrap_or(rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    if let Some(v6) = rest.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    rest.split(':').next().unwrap_or(rest)
}

fn check_loopback(what: &str, host: &str) -> Result<()> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ok = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if ok {
        Ok(())
    } else {
        Err(format!("{what}: {host:?} is not a loopback address; the load generator only talks to this machine").into())
    }
}

/// The shell-quoted command line, to print with the results.
fn command_line(argv0: &str, args: &[String]) -> String {
    let quote = |s: &str| {
        if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+".contains(c)) {
            s.to_owned()
        } else {
            format!("'{}'", s.replace('\'', r"'\''"))
        }
    };
    std::iter::once(argv0)
        .chain(args.iter().map(String::as_str))
        .map(quote)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The temporary world one run lives in.
struct World {
    dir: PathBuf,
    env: Vec<(String, String)>,
    store_url: String,
    /// The PostgreSQL server URL and database created for this run.
    postgres: Option<(String, String)>,
    /// `generic` account keys.
    keys: Vec<String>,
    /// FreeSWITCH accountcodes, each a `freeswitch` identity.
    account_codes: Vec<String>,
    /// The configuration file given to the engine, if any.
    config: Option<PathBuf>,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

fn setup(args: &Args, rt: &tokio::runtime::Runtime) -> Result<World> {
    let run = format!("loadgen{}", std::process::id());
    let dir = std::env::temp_dir().join(format!("cdrate-{run}"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("removing {}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let keys: Vec<String> = (0..ACCOUNT_KEYS).map(|i| format!("k{i}")).collect();
    let mut accounts = String::from(
        "account,plan,currency,country_code,national_prefix,international_prefix,whmcs_client_id,whmcs_service_id,cycle_day,credit_limit\n",
    );
    for a in 0..ACCOUNTS {
        accounts.push_str(&format!("acct{a},business,USD,1,1,011,,,1,\n"));
    }
    let account_codes = freeswitch::account_codes(ACCOUNT_KEYS);
    let mut identities = String::from("source,account_key,account\n");
    for (i, k) in keys.iter().enumerate() {
        identities.push_str(&format!("generic,{k},acct{}\n", i % ACCOUNTS));
    }
    for (i, code) in account_codes.iter().enumerate() {
        identities.push_str(&format!("freeswitch,{code},acct{}\n", i % ACCOUNTS));
    }
    write(&dir.join("accounts.csv"), &accounts)?;
    write(&dir.join("identities.csv"), &identities)?;
    // A PBX is configured in the file: `[[ingest.freeswitch.pbx]]` is an
    // array of tables, which CDRATE_ variables cannot express.
    let config = match args.format {
        Format::Json => None,
        Format::Freeswitch => {
            let path = dir.join("cdrate.toml");
            write(
                &path,
                &format!(
                    "[[ingest.freeswitch.pbx]]\nname = \"loadgen\"\nusername = \"{PBX_USER}\"\n\
                     password = \"{PBX_PASSWORD}\"\nallow = [\"127.0.0.0/8\", \"::1\"]\n"
                ),
            )?;
            Some(path)
        }
    };
    let storage = match args.backend {
        BackendKind::Embedded => Storage::Embedded,
        BackendKind::Kafka => Storage::Kafka {
            postgres: args
                .postgres_url
                .as_deref()
                .ok_or("--backend kafka needs --postgres-url")?,
            brokers: &args.kafka_brokers,
        },
    };
    let EngineEnv {
        mut env,
        store_url,
        database: postgres,
    } = rt.block_on(engine::prepare(&dir, &args.tariffs, &run, storage))?;
    if let BackendKind::Kafka = args.backend {
        env.push(("CDRATE_BUS__PARTITIONS".into(), args.partitions.to_string()));
        env.push((
            "CDRATE_INGEST__APPEND_CONCURRENCY".into(),
            args.append_concurrency.to_string(),
        ));
    }
    // Extra settings come last, so they win.
    env.extend(args.env.iter().cloned());
    Ok(World {
        dir,
        env,
        store_url,
        postgres,
        keys,
        account_codes,
        config,
    })
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()).into())
}

/// A running `cdrate serve`.
struct Engine {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Engine {
    fn start(args: &Args, world: &World) -> Result<Engine> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr: SocketAddr = SocketAddr::from(([127, 0, 0, 1], port));
        let log_path = world.dir.join("engine.log");
        let log = std::fs::File::create(&log_path).map_err(|e| format!("creating {}: {e}", log_path.display()))?;
        let mut cmd = Command::new(&args.cdrate);
        if let Some(config) = &world.config {
            cmd.arg("--config").arg(config);
        }
        cmd.arg("serve")
            .current_dir(&world.dir)
            .env_remove("CDRATE_CONFIG")
            .env("CDRATE_SERVER__LISTEN", addr.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        for (k, v) in &world.env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("starting {}: {e}", args.cdrate.display()))?;
        let mut engine = Engine {
            child,
            addr,
            log: log_path,
        };
        engine.wait_ready(Duration::from_secs(120))?;
        // POST /ingest/calls needs a token with scope `ingest`.
        let mut token = Command::new(&args.cdrate);
        if let Some(config) = &world.config {
            token.arg("--config").arg(config);
        }
        token
            .args(["token", "create", "--scope", "ingest", "--name", "loadgen"])
            .current_dir(&world.dir)
            .env_remove("CDRATE_CONFIG");
        for (k, v) in &world.env {
            token.env(k, v);
        }
        let out = token.output()?;
        if !out.status.success() {
            return Err(format!("cdrate token create: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        cdrate_benches::http::set_default_bearer(String::from_utf8_lossy(&out.stdout).trim());
        Ok(engine)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn exited(&mut self) -> Result<()> {
        match self.child.try_wait()? {
            Some(status) => Err(format!("cdrate exited early with {status}; log:\n{}", tail(&self.log)).into()),
            None => Ok(()),
        }
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        let mut client = Client::new(self.addr);
        while Instant::now() < deadline {
            self.exited()?;
            if client.get("/ready").is_ok_and(|r| r.status == 200) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("cdrate not ready within {limit:?}; log:\n{}", tail(&self.log)).into())
    }

    /// `VmHWM` (peak resident set) of the engine, in KiB.
    fn peak_rss_kib(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| "no VmHWM in /proc/PID/status".into())
    }

    /// SIGTERM, then wait (bounded) for the exit status.
    fn stop(&mut self, limit: Duration) -> Result<ExitStatus> {
        let sent = Command::new("kill").arg("-TERM").arg(self.pid().to_string()).status()?;
        if !sent.success() {
            return Err("kill -TERM failed".into());
        }
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                return Err(format!("cdrate did not exit within {limit:?} of SIGTERM").into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Only reached with the engine still running on an error path.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Rating counters from the engine's `/metrics`.
#[derive(Debug, Default, Clone, Copy)]
struct Rating {
    rated: u64,
    duplicate: u64,
    quarantined: u64,
}

fn rating_counters(client: &mut Client) -> Result<Rating> {
    let r = client.get("/metrics")?;
    if r.status != 200 {
        return Err(format!("/metrics answered {}", r.status).into());
    }
    let mut out = Rating::default();
    for line in r.text().lines() {
        let Some(rest) = line.strip_prefix("cdrate_rating_calls_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once(' ') else {
            continue;
        };
        let v = value.parse::<f64>().map_err(|e| format!("metric line {line:?}: {e}"))? as u64;
        if labels.contains("outcome=\"rated\"") {
            out.rated = v;
        } else if labels.contains("outcome=\"duplicate\"") {
            out.duplicate = v;
        } else if labels.contains("outcome=\"quarantined\"") {
            out.quarantined = v;
        }
    }
    Ok(out)
}

/// One prepared request: how many records it carries, its path and body.
struct Request {
    records: u64,
    path: String,
    body: Vec<u8>,
}

/// How every request of a run is sent and what answer accepts it.
struct Endpoint {
    content_type: &'static str,
    headers: Vec<(&'static str, String)>,
    accepted_status: u16,
    /// Text the accepting answer must hold (a FreeSWITCH CDR may also be
    /// answered 200 `ignored`, which would never be rated).
    accepted_body: Option<&'static str>,
}

/// What the posting threads share.
struct Load {
    requests: Vec<Request>,
    endpoint: Endpoint,
    next: AtomicUsize,
    accepted: AtomicU64,
    retries_503: AtomicU64,
    reconnects: AtomicU64,
    failed: AtomicBool,
    /// Nanoseconds since the start when the last answer arrived.
    last_answer_ns: AtomicU64,
    latencies: Mutex<Vec<Duration>>,
    errors: Mutex<Vec<String>>,
}

fn post_all(load: &Load, addr: SocketAddr, start: Instant, deadline: Instant) {
    let mut client = Client::new(addr);
    let mut latencies = Vec::with_capacity(load.requests.len() / 4 + 1);
    let mut backoff = Duration::from_millis(2);
    let endpoint = &load.endpoint;
    let headers: Vec<(&str, &str)> = endpoint.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let result: Result<()> = (|| loop {
        if load.failed.load(Ordering::Relaxed) {
            return Ok(());
        }
        let i = load.next.fetch_add(1, Ordering::Relaxed);
        let Some(req) = load.requests.get(i) else {
            return Ok(());
        };
        let mut io_errors = 0;
        loop {
            if Instant::now() > deadline {
                return Err("timed out while posting".into());
            }
            let sent = Instant::now();
            let answer = client.request_with("POST", &req.path, Some(endpoint.content_type), &headers, &req.body);
            match answer {
                Ok(r) if r.status == endpoint.accepted_status => {
                    latencies.push(sent.elapsed());
                    if let Some(want) = endpoint.accepted_body {
                        if !r.text().contains(want) {
                            return Err(format!("POST {} answered {}: {}", req.path, r.status, r.text()).into());
                        }
                    }
                    load.accepted.fetch_add(req.records, Ordering::Relaxed);
                    let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    load.last_answer_ns.fetch_max(ns, Ordering::Relaxed);
                    backoff = Duration::from_millis(2);
                    break;
                }
                Ok(r) if r.status == 503 => {
                    load.retries_503.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_millis(200));
                }
                Ok(r) => return Err(format!("POST {} answered {}: {}", req.path, r.status, r.text()).into()),
                Err(e) => {
                    io_errors += 1;
                    load.reconnects.fetch_add(1, Ordering::Relaxed);
                    if io_errors > 5 {
                        return Err(format!("POST {} failed {io_errors} times: {e}", req.path).into());
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    })();
    if let Err(e) = result {
        load.failed.store(true, Ordering::Relaxed);
        if let Ok(mut errors) = load.errors.lock() {
            errors.push(e.to_string());
        }
    }
    if let Ok(mut all) = load.latencies.lock() {
        all.extend(latencies);
    }
}

/// Records per request.
fn batch_size(args: &Args) -> u64 {
    match args.format {
        Format::Json => args.batch,
        Format::Freeswitch => 1,
    }
}

/// Every request of the run, and how they are sent.
fn build_requests(args: &Args, world: &World) -> Result<(Vec<Request>, Endpoint)> {
    match args.format {
        Format::Json => {
            let requests = (0..args.records)
                .step_by(usize::try_from(args.batch)?)
                .map(|from| {
                    let to = (from + args.batch).min(args.records);
                    Request {
                        records: to - from,
                        path: "/ingest/calls".into(),
                        body: batch_json("lg-", from..to, 1, &world.keys, args.seed).into_bytes(),
                    }
                })
                .collect();
            let endpoint = Endpoint {
                content_type: "application/json",
                headers: Vec::new(),
                accepted_status: 202,
                accepted_body: None,
            };
            Ok((requests, endpoint))
        }
        Format::Freeswitch => {
            let xml = std::fs::read_to_string(&args.cdr_template)
                .map_err(|e| format!("CDR template {}: {e}", args.cdr_template.display()))?;
            let template = Template::from_fixture(&xml)
                .map_err(|e| format!("CDR template {}: {e}", args.cdr_template.display()))?;
            let requests = (0..args.records)
                .map(|i| {
                    let cdr = freeswitch::seeded_cdr(i, &world.account_codes, args.seed);
                    Request {
                        records: 1,
                        // As mod_xml_cdr posts an a-leg with prefix-a-leg on.
                        path: format!("/ingest/freeswitch?uuid=a_{}", cdr.uuid),
                        body: template.render(&cdr).into_bytes(),
                    }
                })
                .collect();
            let endpoint = Endpoint {
                content_type: "text/xml",
                headers: vec![
                    ("authorization", basic_auth(PBX_USER, PBX_PASSWORD)),
                    ("user-agent", "freeswitch-xml/1.0".into()),
                ],
                accepted_status: 200,
                accepted_body: Some("\"accepted\""),
            };
            Ok((requests, endpoint))
        }
    }
}

/// `Basic <base64(user:password)>` (RFC 4648 alphabet, padded).
fn basic_auth(user: &str, password: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("{user}:{password}");
    let mut out = String::from("Basic ");
    for chunk in input.as_bytes().chunks(3) {
        let b = [0, 1, 2].map(|k| chunk.get(k).copied().unwrap_or(0));
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (k, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if k <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

struct Outcome {
    ingest_secs: f64,
    e2e_secs: f64,
    p50: Duration,
    p99: Duration,
    requests: usize,
    retries_503: u64,
    reconnects: u64,
    peak_rss_kib: u64,
    rating: Rating,
    stored: i64,
    quarantined: i64,
}

fn run(args: &Args, world: &World, rt: &tokio::runtime::Runtime) -> Result<Outcome> {
    // Bodies are built before the clock starts: the measured load generator
    // only sends bytes.
    let (requests, endpoint) = build_requests(args, world)?;
    let deadline = Instant::now() + args.timeout;
    let mut engine = Engine::start(args, world)?;
    println!(
        "cdrate pid {} listening on {}; {} requests of up to {} records, {:.1} MiB of bodies",
        engine.pid(),
        engine.addr,
        requests.len(),
        batch_size(args),
        requests.iter().map(|r| r.body.len()).sum::<usize>() as f64 / (1024.0 * 1024.0)
    );
    let load = Arc::new(Load {
        requests,
        endpoint,
        next: AtomicUsize::new(0),
        accepted: AtomicU64::new(0),
        retries_503: AtomicU64::new(0),
        reconnects: AtomicU64::new(0),
        failed: AtomicBool::new(false),
        last_answer_ns: AtomicU64::new(0),
        latencies: Mutex::new(Vec::new()),
        errors: Mutex::new(Vec::new()),
    });
    let start = Instant::now();
    let threads: Vec<_> = (0..args.connections)
        .map(|_| {
            let (load, addr) = (load.clone(), engine.addr);
            std::thread::spawn(move || post_all(&load, addr, start, deadline))
        })
        .collect();
    // Wait until every record is rated and committed (or something fails).
    let mut metrics = Client::new(engine.addr);
    let mut last_report = Instant::now();
    let (rating, e2e) = loop {
        engine.exited()?;
        if load.failed.load(Ordering::Relaxed) {
            break (Rating::default(), Duration::ZERO);
        }
        let r = rating_counters(&mut metrics)?;
        if r.rated + r.quarantined >= args.records {
            break (r, start.elapsed());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "timed out after {:?}: {} accepted, {} rated, {} quarantined of {}",
                args.timeout,
                load.accepted.load(Ordering::Relaxed),
                r.rated,
                r.quarantined,
                args.records
            )
            .into());
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            last_report = Instant::now();
            println!(
                "  {:>5.1}s: {} accepted, {} rated",
                start.elapsed().as_secs_f64(),
                load.accepted.load(Ordering::Relaxed),
                r.rated
            );
        }
        std::thread::sleep(POLL);
    };
    for t in threads {
        t.join().map_err(|_| "a posting thread panicked")?;
    }
    if let Some(e) = load.errors.lock().map_err(|_| "poisoned")?.first() {
        return Err(e.clone().into());
    }
    let accepted = load.accepted.load(Ordering::Relaxed);
    if accepted != args.records {
        return Err(format!("{accepted} records accepted, expected {}", args.records).into());
    }
    let peak_rss_kib = engine.peak_rss_kib()?;
    // Let the engine settle, then check that nothing more is rated.
    std::thread::sleep(Duration::from_millis(500));
    let settled = rating_counters(&mut metrics)?;
    let status = engine.stop(Duration::from_secs(60))?;
    if !status.success() {
        return Err(format!("cdrate did not stop cleanly: {status}; log:\n{}", tail(&engine.log)).into());
    }
    // The store's own count: exactly the records posted, none quarantined.
    let (stored, quarantined) = rt.block_on(async {
        let mut s = StoreSettings::new(world.store_url.clone());
        s.max_connections = 2;
        let store = Store::open(&s).await.map_err(|e| format!("opening the store: {e}"))?;
        let stored = store.count_calls().await.map_err(|e| format!("counting calls: {e}"))?;
        let quarantined: i64 = store
            .quarantine_counts()
            .await
            .map_err(|e| format!("counting quarantine: {e}"))?
            .iter()
            .map(|(_, n)| n)
            .sum();
        store.close().await;
        Ok::<_, Error>((stored, quarantined))
    })?;
    if settled.rated != args.records || settled.quarantined != 0 {
        return Err(format!("engine counted {settled:?}, expected {} rated", args.records).into());
    }
    if u64::try_from(stored).ok() != Some(args.records) || quarantined != 0 {
        return Err(format!(
            "the store holds {stored} rated calls and {quarantined} quarantined, expected {} and 0",
            args.records
        )
        .into());
    }
    let mut latencies = std::mem::take(&mut *load.latencies.lock().map_err(|_| "poisoned")?);
    latencies.sort_unstable();
    Ok(Outcome {
        ingest_secs: Duration::from_nanos(load.last_answer_ns.load(Ordering::Relaxed)).as_secs_f64(),
        e2e_secs: e2e.as_secs_f64(),
        p50: percentile(&latencies, 50.0),
        p99: percentile(&latencies, 99.0),
        requests: latencies.len(),
        retries_503: load.retries_503.load(Ordering::Relaxed),
        reconnects: load.reconnects.load(Ordering::Relaxed),
        peak_rss_kib,
        rating,
        stored,
        quarantined,
    })
}

fn cleanup(args: &Args, world: &World, rt: &tokio::runtime::Runtime) {
    if args.keep {
        println!("kept {}", world.dir.display());
        return;
    }
    let _ = std::fs::remove_dir_all(&world.dir);
    if let Some((server, db)) = &world.postgres {
        if let Err(e) = rt.block_on(cdrate_benches::pg::drop_database(server, db)) {
            eprintln!("warning: dropping database {db}: {e}");
        }
    }
}

fn main() -> std::process::ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let (argv0, rest) = argv
        .split_first()
        .map_or(("loadgen", &[][..]), |(a, r)| (a.as_str(), r));
    match main_inner(argv0, rest) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn main_inner(argv0: &str, rest: &[String]) -> Result<()> {
    let args = parse_args(rest)?;
    let rt = runtime()?;
    let world = setup(&args, &rt)?;
    let result = run(&args, &world, &rt);
    if result.is_err() {
        println!("engine log kept in {}", world.dir.display());
    } else {
        cleanup(&args, &world, &rt);
    }
    let o = result?;
    let n = args.records as f64;
    let backend = match args.backend {
        BackendKind::Embedded => "embedded (SQLite log + SQLite store)",
        BackendKind::Kafka => "Kafka + PostgreSQL",
    };
    println!();
    println!("command: {}", command_line(argv0, rest));
    for (k, v) in &args.env {
        println!("engine override: {k}={v}");
    }
    println!("backend: {backend}");
    println!(
        "format: {}",
        match args.format {
            Format::Json => "CallRecord JSON arrays to /ingest/calls".to_owned(),
            Format::Freeswitch => format!(
                "FreeSWITCH XML CDRs to /ingest/freeswitch, one per request (template {})",
                args.cdr_template.display()
            ),
        }
    );
    println!("| records | batch | connections | ingest rec/s | end-to-end rec/s | p50 | p99 | peak RSS |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} | {} | {} | {:.0} | {:.0} | {:.1} ms | {:.1} ms | {:.1} MiB |",
        args.records,
        batch_size(&args),
        args.connections,
        n / o.ingest_secs.max(1e-9),
        n / o.e2e_secs.max(1e-9),
        o.p50.as_secs_f64() * 1e3,
        o.p99.as_secs_f64() * 1e3,
        o.peak_rss_kib as f64 / 1024.0
    );
    println!(
        "ingest {:.2} s, end to end {:.2} s; {} requests, {} 503 retries, {} reconnects; rated {} (duplicates {}), \
         store holds {} rated calls, {} quarantined; clean exit on SIGTERM",
        o.ingest_secs,
        o.e2e_secs,
        o.requests,
        o.retries_503,
        o.reconnects,
        o.rating.rated,
        o.rating.duplicate,
        o.stored,
        o.quarantined
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_is_rfc_4648_base64() {
        // Every padding case: 23, 24 and 22 bytes.
        assert_eq!(
            basic_auth("freeswitch", "Tq8-cdr-51xV"),
            "Basic ZnJlZXN3aXRjaDpUcTgtY2RyLTUxeFY="
        );
        assert_eq!(
            basic_auth("freeswitch", "Tq8-cdr-51xVa"),
            "Basic ZnJlZXN3aXRjaDpUcTgtY2RyLTUxeFZh"
        );
        assert_eq!(
            basic_auth("freeswitch", "Tq8-cdr-51x"),
            "Basic ZnJlZXN3aXRjaDpUcTgtY2RyLTUxeA=="
        );
    }
}
