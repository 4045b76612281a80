//! Soak and fault run (issue 7): mixed traffic from the HTTP sources for a
//! bounded time while `cdrate serve` is killed with SIGKILL and restarted
//! (and, on Kafka + PostgreSQL with `--tansu-storage`, the broker too),
//! then the end check: every call a source was answered 2xx for is rated
//! exactly once, nothing else is, and the running totals equal the rated
//! calls.
//!
//! The sources, each on its own thread and connection, unthrottled:
//! - generic: `POST /ingest/calls`, JSON arrays of `--generic-batch` records
//!   (ingest token);
//! - FreeSWITCH: `POST /ingest/freeswitch`, one XML CDR per request as
//!   `mod_xml_cdr` sends it (HTTP Basic);
//! - Twilio: `POST /ingest/twilio`, a signed `completed` status callback;
//! - Zadarma: `POST /ingest/zadarma`, a signed `NOTIFY_OUT_END`.
//!
//! Each request is retried as a sender would (after a 503, a refused
//! connection or a cut-off answer) until it gets a 2xx; any other answer
//! fails the run. A retried request whose first attempt was durable after
//! all is a redelivery, which must change nothing. Fritz!Box is not driven:
//! its CallMonitor protocol has no acknowledgement, so "accepted" has no
//! meaning for it (the e2e fritzbox tests cover its reconnects).
//!
//! ```sh
//! cargo build --release -p cdrate -p cdrate-benches
//! target/release/soak --minutes 5 --kill-every-secs 30
//! cargo install tansu --locked --features libsql --root /tmp/tansu-lite
//! target/release/soak --backend kafka --postgres-url postgres://cdrate@127.0.0.1:15432/postgres \
//!     --tansu /tmp/tansu-lite/bin/tansu --tansu-storage sqlite://tansu.db --broker-restart-every-secs 90
//! ```
//!
//! The engine inherits the soak's environment under the run's own
//! settings, so `CDRATE_RATING__WORKERS=2 soak …` runs two rating workers.
//!
//! With `--backend kafka` and no `--tansu-storage`, `--kafka-brokers` names a
//! broker the run does not restart. Restarting the broker needs storage
//! that outlives it: tansu's `memory://` loses the log, so the run starts
//! its own tansu on `--tansu-storage` (a relative `sqlite://` path lands in
//! the run's broker directory). The tansu that CI installs has only
//! `memory://` and `s3://` (feature `dynostore`); `sqlite://` needs a tansu
//! built with `libsql`. Tansu 0.6's `postgres://` storage needs PostgreSQL
//! 16 or later (its queries omit subquery aliases) and its schema applied
//! beforehand. Only loopback addresses.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use cdrate_benches::calls::call_json;
use cdrate_benches::engine::{self, EngineEnv, Storage};
use cdrate_benches::freeswitch::{self, Template};
use cdrate_benches::http::Client;
use cdrate_benches::signing;
use cdrate_store::{CallFilter, Store, StoreSettings};

type Error = Box<dyn std::error::Error + Send + Sync>;
type Result<T> = std::result::Result<T, Error>;

const ACCOUNTS: usize = 10;
const PBX_USER: &str = "freeswitch";
const PBX_PASSWORD: &str = "soak-Tq8-cdr";
const TWILIO_SID: &str = "ACfa2a6398ef9d3e22da00b287346004d6";
const TWILIO_TOKEN: &str = "cc600b58a903e6ce74ac1232005d3034";
const TWILIO_URL: &str = "https://soak.example.net/ingest/twilio";
const ZADARMA_SECRET: &str = "0740b2afced14c9ffd48";
/// Zadarma extensions: the account key of its calls.
const EXTENSIONS: [&str; 5] = ["101", "102", "103", "104", "105"];

const USAGE: &str = "usage: soak [--cdrate PATH] [--backend embedded|kafka] [--kafka-brokers HOST:PORT]
            [--postgres-url URL] [--tansu PATH --tansu-storage URL] [--broker-restart-every-secs S]
            [--minutes M] [--kill-every-secs K] [--generic-batch B] [--seed S]
            [--settle-secs T] [--tariffs DIR] [--keep]";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Backend {
    Embedded,
    Kafka,
}

#[derive(Debug, Clone)]
struct Args {
    cdrate: PathBuf,
    backend: Backend,
    kafka_brokers: String,
    postgres_url: Option<String>,
    tansu: PathBuf,
    tansu_storage: Option<String>,
    broker_every: Duration,
    run_for: Duration,
    kill_every: Duration,
    generic_batch: u64,
    seed: u64,
    settle: Duration,
    tariffs: PathBuf,
    keep: bool,
}

fn parse_args(argv: &[String]) -> Result<Args> {
    let mut a = Args {
        cdrate: PathBuf::from("target/release/cdrate"),
        backend: Backend::Embedded,
        kafka_brokers: "127.0.0.1:9092".into(),
        postgres_url: None,
        tansu: PathBuf::from("tansu"),
        tansu_storage: None,
        broker_every: Duration::from_secs(90),
        run_for: Duration::from_secs(300),
        kill_every: Duration::from_secs(30),
        generic_batch: 20,
        seed: 1,
        settle: Duration::from_secs(600),
        tariffs: PathBuf::from("examples/tariffs"),
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
        let num = |name: &str| -> Result<u64> {
            value
                .parse()
                .map_err(|_| format!("{name}: {value:?} is not a number").into())
        };
        match flag.as_str() {
            "--cdrate" => a.cdrate = PathBuf::from(value),
            "--backend" => {
                a.backend = match value.as_str() {
                    "embedded" => Backend::Embedded,
                    "kafka" => Backend::Kafka,
                    other => return Err(format!("--backend {other:?}: embedded or kafka").into()),
                }
            }
            "--kafka-brokers" => a.kafka_brokers = value.clone(),
            "--postgres-url" => a.postgres_url = Some(value.clone()),
            "--tansu" => a.tansu = PathBuf::from(value),
            "--tansu-storage" => a.tansu_storage = Some(value.clone()),
            "--broker-restart-every-secs" => a.broker_every = Duration::from_secs(num(flag)?.max(1)),
            "--minutes" => {
                let m: f64 = value.parse().map_err(|_| format!("--minutes {value:?}"))?;
                if !(m > 0.0 && m <= 24.0 * 60.0) {
                    return Err("--minutes must be in (0, 1440]".into());
                }
                a.run_for = Duration::from_secs_f64(m * 60.0);
            }
            "--kill-every-secs" => a.kill_every = Duration::from_secs(num(flag)?.max(1)),
            "--generic-batch" => a.generic_batch = num(flag)?.max(1),
            "--seed" => a.seed = num(flag)?,
            "--settle-secs" => a.settle = Duration::from_secs(num(flag)?),
            "--tariffs" => a.tariffs = PathBuf::from(value),
            other => return Err(format!("unknown flag {other}\n{USAGE}").into()),
        }
    }
    if a.backend == Backend::Kafka && a.postgres_url.is_none() {
        return Err("--backend kafka needs --postgres-url".into());
    }
    Ok(a)
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match parse_args(&argv).and_then(|args| run(&args)) {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("soak: {e}");
            std::process::exit(2);
        }
    }
}

/// What the run sets up: its directory, the engine's environment, and the
/// broker it owns, if any.
struct Setup {
    dir: PathBuf,
    env: Vec<(String, String)>,
    store_url: String,
    account_codes: Vec<String>,
    keys: Vec<String>,
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn setup(args: &Args, rt: &tokio::runtime::Runtime, brokers: &str) -> Result<Setup> {
    let run = format!("soak{}", std::process::id());
    let dir = std::env::temp_dir().join(format!("cdrate-{run}"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    let keys: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
    let account_codes = freeswitch::account_codes(20);
    let mut accounts = String::from(
        "account,plan,currency,country_code,national_prefix,international_prefix,whmcs_client_id,whmcs_service_id,cycle_day,credit_limit\n",
    );
    for a in 0..ACCOUNTS {
        accounts.push_str(&format!("acct{a},business,USD,1,1,011,,,1,\n"));
    }
    let mut identities = String::from("source,account_key,account\n");
    for (i, k) in keys.iter().enumerate() {
        identities.push_str(&format!("generic,{k},acct{}\n", i % ACCOUNTS));
    }
    for (i, code) in account_codes.iter().enumerate() {
        identities.push_str(&format!("freeswitch,{code},acct{}\n", i % ACCOUNTS));
    }
    identities.push_str(&format!("twilio,{TWILIO_SID},acct1\n"));
    for (i, ext) in EXTENSIONS.iter().enumerate() {
        identities.push_str(&format!("zadarma,{ext},acct{}\n", i + 2));
    }
    std::fs::write(dir.join("accounts.csv"), accounts)?;
    std::fs::write(dir.join("identities.csv"), identities)?;
    std::fs::write(
        dir.join("cdrate.toml"),
        format!(
            "[[ingest.freeswitch.pbx]]\nname = \"soak\"\nusername = \"{PBX_USER}\"\npassword = \"{PBX_PASSWORD}\"\n\n\
             [ingest.twilio]\npublic_url = \"https://soak.example.net\"\n\n\
             [[ingest.twilio.accounts]]\naccount_sid = \"{TWILIO_SID}\"\nauth_token = \"{TWILIO_TOKEN}\"\n\n\
             [ingest.zadarma]\nsecret = \"{ZADARMA_SECRET}\"\npbx_id = \"318722\"\ntimezone = \"Europe/Madrid\"\n"
        ),
    )?;
    let storage = match args.backend {
        Backend::Embedded => Storage::Embedded,
        Backend::Kafka => Storage::Kafka {
            postgres: args.postgres_url.as_deref().unwrap_or_default(),
            brokers,
        },
    };
    let EngineEnv { env, store_url, .. } = rt.block_on(engine::prepare(&dir, &args.tariffs, &run, storage))?;
    Ok(Setup {
        dir,
        env,
        store_url,
        account_codes,
        keys,
    })
}

/// A child process started the same way each time.
struct Proc {
    command: Vec<String>,
    env: Vec<(String, String)>,
    dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Proc {
    fn start(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        let mut cmd = Command::new(&self.command[0]);
        cmd.args(&self.command[1..])
            .current_dir(&self.dir)
            .env_remove("CDRATE_CONFIG")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().map_err(|e| format!("starting {}: {e}", self.command[0]))?);
        Ok(())
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn stop(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            Command::new("kill").arg("-TERM").arg(c.id().to_string()).status()?;
            let status = c.wait()?;
            if !status.success() {
                return Err(format!("{} exited with {status} on SIGTERM", self.command[0]).into());
            }
        }
        Ok(())
    }
}

/// A run that fails part-way leaves no engine or broker behind.
impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("{what}: not within {limit:?}").into())
}

fn ready(addr: SocketAddr) -> bool {
    Client::bare(addr).get("/ready").is_ok_and(|r| r.status == 200)
}

fn port_open(addr: SocketAddr) -> bool {
    std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// One request a source makes: where, how, and the record id it carries.
struct Request {
    path: &'static str,
    content_type: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    ids: Vec<String>,
}

/// The `n`th request of `source`.
fn request(source: &str, n: u64, s: &Setup, args: &Args, template: &Template, token: &str) -> Request {
    let start = 1_795_000_000 + (n % (25 * 86_400)) as i64;
    let when = chrono::DateTime::from_timestamp(start, 0).unwrap_or_default();
    let callee = ["442079460958", "4915112345678", "12125550123", "33612345678"][(n % 4) as usize];
    match source {
        "generic" => {
            let first = n * args.generic_batch;
            let calls: Vec<String> = (first..first + args.generic_batch)
                .map(|i| call_json("soak-g-", i, 1, &s.keys, args.seed))
                .collect();
            Request {
                path: "/ingest/calls",
                content_type: "application/json",
                headers: vec![("authorization", format!("Bearer {token}"))],
                body: format!("[{}]", calls.join(",")).into_bytes(),
                ids: (first..first + args.generic_batch)
                    .map(|i| format!("soak-g-{i}"))
                    .collect(),
            }
        }
        "freeswitch" => {
            let cdr = freeswitch::seeded_cdr(n, &s.account_codes, args.seed);
            let basic = base64::engine::general_purpose::STANDARD.encode(format!("{PBX_USER}:{PBX_PASSWORD}"));
            Request {
                path: "/ingest/freeswitch",
                content_type: "text/xml",
                headers: vec![("authorization", format!("Basic {basic}"))],
                ids: vec![format!("fs:{}", cdr.uuid)],
                body: template.render(&cdr).into_bytes(),
            }
        }
        "twilio" => {
            let sid = format!("CA{:016x}{:016x}", args.seed, n);
            let to = format!("+{callee}");
            let pairs: Vec<(&str, String)> = vec![
                ("AccountSid", TWILIO_SID.into()),
                ("ApiVersion", "2010-04-01".into()),
                ("CallDuration", (30 + n % 600).to_string()),
                ("CallSid", sid.clone()),
                ("CallStatus", "completed".into()),
                ("Called", to.clone()),
                ("Caller", "+14155550123".into()),
                ("Direction", "outbound-api".into()),
                ("Duration", "3".into()),
                ("From", "+14155550123".into()),
                ("SequenceNumber", "3".into()),
                ("Timestamp", when.format("%a, %d %b %Y %H:%M:%S +0000").to_string()),
                ("To", to),
            ];
            let sig = signing::twilio(TWILIO_TOKEN, TWILIO_URL, &pairs);
            Request {
                path: "/ingest/twilio",
                content_type: "application/x-www-form-urlencoded",
                headers: vec![("x-twilio-signature", sig)],
                body: signing::form_encode(&pairs).into_bytes(),
                ids: vec![format!("twilio:{sid}")],
            }
        }
        _ => {
            let id = format!("out_{:016x}{:024x}", args.seed, n);
            let ext = EXTENSIONS[(n % EXTENSIONS.len() as u64) as usize];
            let local = when.format("%Y-%m-%d %H:%M:%S").to_string();
            let pairs: Vec<(&str, String)> = vec![
                ("event", "NOTIFY_OUT_END".into()),
                ("call_start", local.clone()),
                ("pbx_call_id", id.clone()),
                ("caller_id", "442079460123".into()),
                ("destination", callee.into()),
                ("internal", ext.into()),
                ("duration", (20 + n % 900).to_string()),
                ("disposition", "answered".into()),
                ("status_code", "16".into()),
                ("is_recorded", "0".into()),
                ("call_id_with_rec", String::new()),
            ];
            Request {
                path: "/ingest/zadarma",
                content_type: "application/x-www-form-urlencoded",
                headers: vec![("signature", signing::zadarma(ZADARMA_SECRET, &[ext, callee, &local]))],
                body: signing::form_encode(&pairs).into_bytes(),
                ids: vec![format!("zadarma:{id}")],
            }
        }
    }
}

/// What one source did.
#[derive(Default)]
struct Sent {
    accepted: Vec<String>,
    requests: u64,
    retries: u64,
}

fn drive(source: &'static str, addr: SocketAddr, stop: &AtomicBool, make: impl Fn(u64) -> Request) -> Result<Sent> {
    let mut sent = Sent::default();
    let mut client = Client::bare(addr);
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let r = make(n);
        let headers: Vec<(&str, &str)> = r.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        loop {
            sent.requests += 1;
            match client.request_with("POST", r.path, Some(r.content_type), &headers, &r.body) {
                Ok(a) if (200..300).contains(&a.status) => break,
                Ok(a) if a.status == 503 => {}
                Ok(a) => return Err(format!("{source}: {} {}: {}", r.path, a.status, a.text()).into()),
                // The engine is down or was killed mid-answer: retry, as a sender does.
                Err(_) => client = Client::bare(addr),
            }
            sent.retries += 1;
            std::thread::sleep(Duration::from_millis(50));
        }
        sent.accepted.extend(r.ids);
        n += 1;
    }
    Ok(sent)
}

fn run(args: &Args) -> Result<bool> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let cdrate = args
        .cdrate
        .canonicalize()
        .map_err(|e| format!("{}: {e}", args.cdrate.display()))?;
    // The broker the run owns (restarted on schedule), if any.
    let mut broker: Option<(Proc, SocketAddr)> = None;
    let mut brokers = args.kafka_brokers.clone();
    let base_dir = std::env::temp_dir().join(format!("cdrate-soak{}-broker", std::process::id()));
    if let (Backend::Kafka, Some(storage)) = (&args.backend, &args.tansu_storage) {
        std::fs::create_dir_all(&base_dir)?;
        let port = free_port()?;
        let url = format!("tcp://127.0.0.1:{port}");
        let mut p = Proc {
            command: vec![
                args.tansu.display().to_string(),
                "broker".into(),
                "--listener-url".into(),
                url.clone(),
                "--advertised-listener-url".into(),
                url,
                "--storage-engine".into(),
                storage.clone(),
            ],
            env: vec![],
            dir: base_dir.clone(),
            log: base_dir.join("tansu.log"),
            child: None,
        };
        p.start()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        wait_until("tansu listening", Duration::from_secs(60), || port_open(addr))?;
        brokers = addr.to_string();
        broker = Some((p, addr));
    }
    let s = setup(args, &rt, &brokers)?;
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let mut env = s.env.clone();
    env.push(("CDRATE_SERVER__LISTEN".into(), addr.to_string()));
    let config = s.dir.join("cdrate.toml").display().to_string();
    let mut engine = Proc {
        command: vec![
            cdrate.display().to_string(),
            "--config".into(),
            config.clone(),
            "serve".into(),
        ],
        env: env.clone(),
        dir: s.dir.clone(),
        log: s.dir.join("engine.log"),
        child: None,
    };
    engine.start()?;
    wait_until("cdrate ready", Duration::from_secs(120), || ready(addr))?;
    let out = Command::new(&cdrate)
        .args([
            "--config", &config, "token", "create", "--scope", "ingest", "--name", "soak",
        ])
        .current_dir(&s.dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()?;
    if !out.status.success() {
        return Err(format!("token create: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let template = Template::from_fixture(&std::fs::read_to_string(freeswitch::fixture_path())?)?;
    println!(
        "soak: {:?} backend, {:?} of traffic, engine killed every {:?}{}; directory {}",
        args.backend,
        args.run_for,
        args.kill_every,
        if broker.is_some() {
            format!(", broker restarted every {:?}", args.broker_every)
        } else {
            String::new()
        },
        s.dir.display()
    );

    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let (kills, broker_restarts) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let engine = Arc::new(Mutex::new(engine));
    let broker = Arc::new(Mutex::new(broker));
    let results: Vec<(&'static str, Sent)> = std::thread::scope(|scope| -> Result<Vec<(&'static str, Sent)>> {
        let mut drivers = Vec::new();
        for source in ["generic", "freeswitch", "twilio", "zadarma"] {
            let (stop, s, template, token) = (&stop, &s, &template, token.as_str());
            drivers.push((
                source,
                scope.spawn(move || drive(source, addr, stop, |n| request(source, n, s, args, template, token))),
            ));
        }
        // The faults: SIGKILL the engine (and restart the broker) on schedule.
        let faults = {
            let (stop, engine, broker, kills, broker_restarts) = (&stop, &engine, &broker, &kills, &broker_restarts);
            scope.spawn(move || -> Result<()> {
                let mut next_kill = Instant::now() + args.kill_every;
                let mut next_broker = Instant::now() + args.broker_every;
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                    let now = Instant::now();
                    if now >= next_kill {
                        let mut e = engine.lock().map_err(|_| "engine lock")?;
                        e.kill();
                        e.start()?;
                        kills.fetch_add(1, Ordering::Relaxed);
                        next_kill = now + args.kill_every;
                    }
                    let mut b = broker.lock().map_err(|_| "broker lock")?;
                    if let Some((p, baddr)) = b.as_mut().filter(|_| now >= next_broker) {
                        p.kill();
                        p.start()?;
                        let baddr = *baddr;
                        wait_until("tansu back", Duration::from_secs(60), || port_open(baddr))?;
                        broker_restarts.fetch_add(1, Ordering::Relaxed);
                        next_broker = Instant::now() + args.broker_every;
                    }
                }
                Ok(())
            })
        };
        std::thread::sleep(args.run_for);
        stop.store(true, Ordering::Relaxed);
        faults.join().map_err(|_| "fault thread panicked")??;
        let mut out = Vec::new();
        for (source, d) in drivers {
            out.push((source, d.join().map_err(|_| "driver panicked")??));
        }
        Ok(out)
    })?;
    let traffic = started.elapsed();

    // The end check, on an engine left running.
    let accepted: BTreeSet<String> = results.iter().flat_map(|(_, r)| r.accepted.iter().cloned()).collect();
    let total_sent: usize = results.iter().map(|(_, r)| r.accepted.len()).sum();
    wait_until("cdrate ready after the run", Duration::from_secs(120), || ready(addr))?;
    let store = rt.block_on(Store::open(&StoreSettings::new(s.store_url.clone())))?;
    let settle_started = Instant::now();
    wait_until("every accepted call rated", args.settle, || {
        rt.block_on(store.count_calls())
            .is_ok_and(|n| n >= accepted.len() as i64)
    })
    .or_else(|e| {
        eprintln!("soak: {e}");
        Ok::<(), Error>(())
    })?;
    let settle = settle_started.elapsed();
    let mut stored = BTreeSet::new();
    let mut after = String::new();
    loop {
        let page = rt.block_on(store.list_calls(&CallFilter {
            after_id: Some(after.clone()),
            limit: 1000,
            ..Default::default()
        }))?;
        let Some(last) = page.last() else { break };
        after = last.call.id.clone();
        stored.extend(page.into_iter().map(|c| c.call.id));
    }
    let count = rt.block_on(store.count_calls())?;
    let totals = rt.block_on(store.usage_totals())?;
    let recomputed = rt.block_on(store.recomputed_totals())?;
    let quarantined: i64 = rt.block_on(store.quarantine_counts())?.iter().map(|(_, n)| n).sum();
    let missing = accepted.difference(&stored).count();
    let unexpected = stored.difference(&accepted).count();
    let counted: i64 = totals.iter().map(|t| t.calls).sum();
    engine.lock().map_err(|_| "engine lock")?.stop()?;
    if let Some((p, _)) = broker.lock().map_err(|_| "broker lock")?.as_mut() {
        p.kill();
    }

    let ok = missing == 0
        && unexpected == 0
        && count == stored.len() as i64
        && totals == recomputed
        && counted == count
        && quarantined == 0;
    println!("source      accepted  requests  retries");
    for (source, r) in &results {
        println!(
            "{source:<10} {:>9} {:>9} {:>8}",
            r.accepted.len(),
            r.requests,
            r.retries
        );
    }
    println!(
        "traffic {:.0} s, {} calls accepted ({} distinct, {:.0}/s), engine SIGKILLs {}, broker restarts {}",
        traffic.as_secs_f64(),
        total_sent,
        accepted.len(),
        accepted.len() as f64 / traffic.as_secs_f64(),
        kills.load(Ordering::Relaxed),
        broker_restarts.load(Ordering::Relaxed)
    );
    println!(
        "settled in {:.1} s: rated {count}, lost {missing}, not sent but rated {unexpected}, counted twice in totals {}, quarantined {quarantined}, totals {}",
        settle.as_secs_f64(),
        counted - stored.len() as i64,
        if totals == recomputed && counted == count {
            "equal the rated calls"
        } else {
            "DIFFER from the rated calls"
        }
    );
    println!("{}", if ok { "PASS" } else { "FAIL" });
    if !args.keep {
        remove(&s.dir);
        remove(&base_dir);
    }
    Ok(ok)
}

fn remove(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}
