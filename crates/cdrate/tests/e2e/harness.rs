//! Starting, killing and inspecting a real `cdrate serve`.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cdrate_benches::http::Client;
use cdrate_store::{Store, StoreSettings};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Where an engine keeps its data and talks to.
#[derive(Debug, Clone)]
pub enum Backend {
    Embedded,
    KafkaPostgres { brokers: String, postgres: String },
}

/// The backends to run a test on: embedded, plus Kafka + PostgreSQL when
/// configured. Prints why one is skipped; fails in CI when required.
pub fn backends() -> Vec<Backend> {
    let mut out = vec![Backend::Embedded];
    match (
        std::env::var("CDRATE_TEST_KAFKA_BROKERS"),
        std::env::var("CDRATE_TEST_POSTGRES_URL"),
    ) {
        (Ok(brokers), Ok(postgres)) => out.push(Backend::KafkaPostgres { brokers, postgres }),
        _ if std::env::var("CDRATE_TEST_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!(
                "CDRATE_TEST_REQUIRE_SERVICES=1 but CDRATE_TEST_KAFKA_BROKERS / CDRATE_TEST_POSTGRES_URL are not set"
            )
        }
        _ => println!("skipped kafka+postgres: CDRATE_TEST_KAFKA_BROKERS and CDRATE_TEST_POSTGRES_URL not set"),
    }
    out
}

pub fn kafka_backend() -> Option<Backend> {
    backends()
        .into_iter()
        .find(|b| matches!(b, Backend::KafkaPostgres { .. }))
}

/// One test's world: a directory, a store URL, a bus namespace, accounts.
pub struct World {
    pub dir: PathBuf,
    pub store_url: String,
    pub env: Vec<(String, String)>,
    /// `generic` account keys the accounts file maps.
    pub keys: Vec<String>,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

impl World {
    pub async fn new(name: &str, backend: &Backend) -> World {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("{name}_{}_{n}", std::process::id());
        let dir = std::env::temp_dir().join(format!("cdrate-e2e-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let keys: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
        let mut accounts = String::from(
            "account,plan,currency,country_code,national_prefix,international_prefix,whmcs_client_id,whmcs_service_id,cycle_day,credit_limit\n",
        );
        for a in 0..10 {
            accounts.push_str(&format!("acct{a},business,USD,1,1,011,,,1,\n"));
        }
        let mut identities = String::from("source,account_key,account\n");
        for (i, k) in keys.iter().enumerate() {
            identities.push_str(&format!("generic,{k},acct{}\n", i % 10));
        }
        std::fs::write(dir.join("accounts.csv"), accounts).unwrap();
        std::fs::write(dir.join("identities.csv"), identities).unwrap();
        let mut env = vec![
            (
                "CDRATE_IMPORT__TARIFFS_DIR".into(),
                repo().join("examples/tariffs").display().to_string(),
            ),
            (
                "CDRATE_IMPORT__ACCOUNTS_FILE".into(),
                dir.join("accounts.csv").display().to_string(),
            ),
            (
                "CDRATE_IMPORT__IDENTITIES_FILE".into(),
                dir.join("identities.csv").display().to_string(),
            ),
            ("CDRATE_RATING__BATCH_WAIT_MS".into(), "50".into()),
            // CDRATE_TEST_ENGINE_LOG (a tracing filter) turns the engines'
            // logs up when a run needs investigating; each world keeps its
            // engine.log.
            (
                "CDRATE_LOG__LEVEL".into(),
                std::env::var("CDRATE_TEST_ENGINE_LOG").unwrap_or_else(|_| "warn".into()),
            ),
        ];
        let store_url = match backend {
            Backend::Embedded => {
                env.push(("CDRATE_BUS__KIND".into(), "embedded".into()));
                env.push((
                    "CDRATE_BUS__EMBEDDED_URL".into(),
                    format!("sqlite://{}/bus.db", dir.display()),
                ));
                format!("sqlite://{}/cdrate.db", dir.display())
            }
            Backend::KafkaPostgres { brokers, postgres } => {
                let db = format!("cdrate_e2e_{name}").to_ascii_lowercase();
                create_database(postgres, &db).await;
                env.push(("CDRATE_BUS__KIND".into(), "kafka".into()));
                env.push(("CDRATE_BUS__KAFKA_BROKERS".into(), brokers.clone()));
                env.push(("CDRATE_BUS__NAMESPACE".into(), format!("{name}.")));
                env.push(("CDRATE_BUS__PARTITIONS".into(), "4".into()));
                env.push(("CDRATE_INGEST__APPEND_CONCURRENCY".into(), "4".into()));
                let base = postgres.rsplit_once('/').map_or(postgres.as_str(), |(b, _)| b);
                format!("{base}/{db}")
            }
        };
        env.push(("CDRATE_STORE__URL".into(), store_url.clone()));
        seed_token(&store_url).await;
        World {
            dir,
            store_url,
            env,
            keys,
        }
    }

    /// Writes `cdrate.toml` in the world's directory (read by every command
    /// started here, under the environment overrides).
    pub fn write_config(&self, toml: &str) {
        std::fs::write(self.dir.join("cdrate.toml"), toml).unwrap();
    }

    /// Adds `source,account_key,account` lines to identities.csv (before start).
    pub fn add_identities(&self, lines: &[&str]) {
        let mut text = std::fs::read_to_string(self.dir.join("identities.csv")).unwrap();
        for l in lines {
            text.push_str(l);
            text.push('\n');
        }
        std::fs::write(self.dir.join("identities.csv"), text).unwrap();
    }

    /// Starts `cdrate serve` and waits until it is ready.
    pub fn start(&self) -> Engine {
        self.start_with(&[])
    }

    pub fn start_with(&self, extra: &[(&str, &str)]) -> Engine {
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("engine.log"))
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cdrate"));
        cmd.arg("serve")
            .current_dir(&self.dir)
            .env_remove("CDRATE_CONFIG")
            .env("CDRATE_SERVER__LISTEN", addr.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        Engine::launch(cmd, addr, self.dir.join("engine.log"))
    }

    /// Runs a `cdrate` subcommand with this world's configuration.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cdrate"));
        cmd.args(args).current_dir(&self.dir).env_remove("CDRATE_CONFIG");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    pub async fn store(&self) -> Store {
        let mut s = StoreSettings::new(self.store_url.clone());
        s.max_connections = 2;
        Store::open(&s).await.unwrap()
    }
}

/// The admin token every world's store holds and every test client sends
/// (`cdrate_benches::http::set_default_bearer`); access tests use their own.
pub const E2E_TOKEN: &str = "cdr_e2e-admin-token-for-tests-only";

async fn seed_token(store_url: &str) {
    use sha2::Digest;
    cdrate_benches::http::set_default_bearer(E2E_TOKEN);
    let store = Store::open(&StoreSettings::new(store_url.to_owned())).await.unwrap();
    let hash: String = sha2::Sha256::digest(E2E_TOKEN.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    store
        .insert_token(&cdrate_store::ApiToken {
            id: "tok_e2e".into(),
            name: "e2e".into(),
            scopes: "admin".into(),
            secret_sha256: hash,
            created_at_ms: 0,
            revoked_at_ms: None,
        })
        .await
        .unwrap();
    store.close().await;
}

async fn create_database(url: &str, db: &str) {
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(url).await.expect("postgres reachable");
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {db}"))
        .execute(&admin)
        .await
        .unwrap();
    sqlx::raw_sql(&format!("CREATE DATABASE {db}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running `cdrate serve`.
pub struct Engine {
    child: Child,
    pub addr: SocketAddr,
    log: PathBuf,
}

impl Engine {
    /// Spawns a prepared `cdrate serve` command listening on `addr` and
    /// writing to `log`, and waits until it is ready.
    pub fn launch(mut cmd: Command, addr: SocketAddr, log: PathBuf) -> Engine {
        let child = cmd.spawn().expect("cdrate starts");
        let mut engine = Engine { child, addr, log };
        engine.wait_ready();
        engine
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut client = Client::new(self.addr);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("cdrate exited with {status} before ready; log:\n{}", tail(&self.log));
            }
            if client.get("/ready").map(|r| r.status == 200).unwrap_or(false) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("cdrate not ready in time; log:\n{}", tail(&self.log));
    }

    pub fn client(&self) -> Client {
        Client::new(self.addr)
    }

    /// SIGKILL: no drain, no flush.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "cdrate did not stop cleanly: {status}; log:\n{}",
            tail(&self.log)
        );
    }

    /// A counter's value summed over label sets matching `filter`.
    pub fn metric(&self, name: &str, filter: &str) -> f64 {
        let text = self.client().get("/metrics").map(|r| r.text()).unwrap_or_default();
        text.lines()
            .filter(|l| l.starts_with(name) && l.contains(filter))
            .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
            .sum()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Waits (bounded) until `check` holds, polling; the bound is a guard,
/// never the assertion.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + limit;
    loop {
        match check().await {
            Ok(()) => return,
            Err(state) if Instant::now() > deadline => panic!("{what}: not reached in {limit:?}; last: {state}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
