//! `cdrate.toml`: one serde tree, sections shaped like the crates. Layers,
//! later wins: built-in defaults (everything embedded on one machine) → the
//! file → `CDRATE_<SECTION>__<KEY>` environment variables (e.g.
//! `CDRATE_STORE__URL`, `CDRATE_BUS__KIND=kafka`, nested sections too:
//! `CDRATE_INGEST__ZADARMA__SECRET`). Loaded and validated once
//! at start-up; a bad key fails with its name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub bus: BusConfig,
    pub ingest: IngestConfig,
    pub rating: RatingConfig,
    pub billing: BillingConfig,
    pub access: AccessConfig,
    pub import: ImportConfig,
    pub log: LogConfig,
    /// Fritz!Box CallMonitors to connect to (`[[fritzbox]]`).
    pub fritzbox: Vec<FritzboxConfig>,
}

/// A secret from the configuration: never printed by `Debug`, never logged.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// `[ingest.freeswitch]`: which PBXs may post CDRs. A request is accepted
/// when it matches one PBX: its credentials (if the PBX has some) and its
/// source address (if the PBX has an allowlist). With no PBX configured,
/// every CDR is refused (401) and kept as a dead letter.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FreeswitchConfig {
    pub pbx: Vec<PbxConfig>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PbxConfig {
    /// A name for logs and metrics.
    pub name: String,
    /// HTTP Basic user and password: `cred = "user:password"` in xml_cdr.conf.xml.
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// CIDR blocks (IPv4 or IPv6) the PBX posts from.
    pub allow: Vec<String>,
}

/// `[ingest.twilio]`: status callbacks are verified with the auth token of
/// the account (or subaccount) that sent them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TwilioConfig {
    /// The callback URL exactly as configured in Twilio (it is signed).
    pub public_url: Option<String>,
    pub accounts: Vec<TwilioAccount>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TwilioAccount {
    pub account_sid: String,
    pub auth_token: Secret,
}

/// `[ingest.zadarma]`: webhooks signed with the API secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ZadarmaConfig {
    pub secret: Option<Secret>,
    /// The PBX id (account_key of calls without an internal number).
    pub pbx_id: Option<String>,
    /// Zadarma sends local times: the PBX's time zone.
    pub timezone: String,
    /// Optional CIDR allowlist (Zadarma publishes its notification addresses).
    pub allow: Vec<String>,
}

impl Default for ZadarmaConfig {
    fn default() -> Self {
        ZadarmaConfig {
            secret: None,
            pbx_id: None,
            timezone: "UTC".into(),
            allow: Vec::new(),
        }
    }
}

/// `[[fritzbox]]`: one CallMonitor connection (dial `#96*5*` on a phone of
/// the box to enable the monitor on port 1012).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FritzboxConfig {
    /// The box id used in call ids and account keys (`<box>:<line>`).
    #[serde(rename = "box")]
    pub box_id: String,
    pub host: String,
    #[serde(default = "default_fritzbox_port")]
    pub port: u16,
    /// The box's time zone (CallMonitor sends local times).
    pub timezone: String,
}

fn default_fritzbox_port() -> u16 {
    1012
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address the HTTP API listens on.
    pub listen: String,
    pub request_body_limit_bytes: usize,
    /// Upper bound on one request, including waiting for a durable append.
    pub request_timeout_seconds: u64,
    /// Upper bound on the whole drain after SIGTERM/SIGINT.
    pub shutdown_grace_seconds: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            request_body_limit_bytes: 1 << 20,
            request_timeout_seconds: 30,
            shutdown_grace_seconds: 30,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://PATH` (embedded) or `postgres://user@host:port/db`.
    pub url: String,
    pub max_connections: u32,
    /// SQLite: fsync every commit (survives power loss, not only crashes).
    pub sqlite_sync_full: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: "sqlite://cdrate-data/cdrate.db".into(),
            max_connections: 8,
            sqlite_sync_full: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BusKind {
    Embedded,
    Kafka,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BusConfig {
    pub kind: BusKind,
    /// Prefix of every topic and consumer group name, so several
    /// deployments can share one Kafka cluster.
    pub namespace: String,
    /// The embedded log's own SQLite file.
    pub embedded_url: String,
    pub kafka_brokers: String,
    pub kafka_client_id: String,
    /// Extra librdkafka properties, e.g. `"security.protocol" = "sasl_ssl"`.
    pub kafka_properties: BTreeMap<String, String>,
    /// Partitions of each topic `cdrate migrate` creates on Kafka.
    pub partitions: i32,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            kind: BusKind::Embedded,
            namespace: String::new(),
            embedded_url: "sqlite://cdrate-data/bus.db".into(),
            kafka_brokers: "127.0.0.1:9092".into(),
            kafka_client_id: "cdrate".into(),
            kafka_properties: BTreeMap::new(),
            partitions: 8,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Most records written by one durable append (group commit).
    pub append_batch_max_records: usize,
    /// Requests waiting for the appender; when full, ingest answers 503.
    pub append_queue_requests: usize,
    /// Concurrent appends (1 for the embedded log, more help Kafka).
    pub append_concurrency: usize,
    pub freeswitch: FreeswitchConfig,
    pub twilio: TwilioConfig,
    pub zadarma: ZadarmaConfig,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            append_batch_max_records: 2000,
            append_queue_requests: 4096,
            append_concurrency: 1,
            freeswitch: FreeswitchConfig::default(),
            twilio: TwilioConfig::default(),
            zadarma: ZadarmaConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RatingConfig {
    /// Run the rating worker in this process.
    pub enabled: bool,
    /// Rating workers in this process, each a member of the rating consumer
    /// group with its own share of the partitions (Kafka only: the embedded
    /// log has one reader per group). A second worker uses a second core;
    /// each keeps its own copy of the tariffs and accounts.
    pub workers: usize,
    /// Most records rated and written in one store transaction. On the
    /// embedded store each transaction is an fsync'd commit, so larger
    /// batches under load mean fewer of them (5,000 rated about 40% more per
    /// second than 2,000 in BENCHMARKS.md); a light load still makes small
    /// batches, since a worker takes only what is waiting.
    pub batch_max_records: usize,
    /// How long a worker waits for the first record of a batch.
    pub batch_wait_ms: u64,
    /// Back-off after a failed batch before it is read again.
    pub retry_backoff_ms: u64,
    /// Publish rated calls to `cdrate.rated.v1`. Unset: yes on Kafka, where
    /// other services consume the topic; no on the embedded bus, where no
    /// other process can subscribe and the copy only costs a second write.
    pub publish_rated: Option<bool>,
}

impl Default for RatingConfig {
    fn default() -> Self {
        RatingConfig {
            enabled: true,
            workers: 1,
            batch_max_records: 5000,
            batch_wait_ms: 200,
            retry_backoff_ms: 1000,
            publish_rated: None,
        }
    }
}

/// `[access]`: which addresses may reach each group of routes, checked
/// before anything else (API tokens are checked next, per route).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessConfig {
    pub allow: AllowConfig,
}

/// CIDR allowlists per route group (IPv4 and IPv6); empty = any address.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AllowConfig {
    /// `/ingest/…`: the generic endpoint and every provider endpoint.
    pub ingest: Vec<String>,
    /// `/v1/…`: calls, usage, accounts.
    pub api: Vec<String>,
    /// `/metrics`, `/health`, `/ready`.
    pub ops: Vec<String>,
}

/// `[billing]`: cycle close, WHMCS delivery and usage alerts (DESIGN §7).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BillingConfig {
    /// Run the invoicer (automatic cycle close, WHMCS push, alerts) here.
    pub enabled: bool,
    /// How line items reach WHMCS for accounts whose `billing` column is
    /// empty: `none` (reports only), `push` (cdrate calls the WHMCS API) or
    /// `pull` (the WHMCS hook fetches `/v1/usage`).
    pub default_mode: String,
    /// How long after a cycle ends the invoicer waits for late CDRs before
    /// closing it. Calls arriving later still get billed, in the next cycle.
    pub grace_hours: u64,
    /// How often the invoicer looks for cycles to close and items to push.
    pub interval_seconds: u64,
    /// Decimal places of invoice amounts (WHMCS stores 2).
    pub decimals: u32,
    pub whmcs: WhmcsConfig,
    pub alerts: AlertsConfig,
}

impl Default for BillingConfig {
    fn default() -> Self {
        BillingConfig {
            enabled: true,
            default_mode: "none".into(),
            grace_hours: 24,
            interval_seconds: 30,
            decimals: 2,
            whmcs: WhmcsConfig::default(),
            alerts: AlertsConfig::default(),
        }
    }
}

/// `[billing.whmcs]`: the WHMCS External API cdrate pushes to.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WhmcsConfig {
    /// Base URL of the WHMCS installation, e.g. `https://billing.example.net`
    /// (the API is `<url>/includes/api.php`).
    pub url: String,
    pub identifier: Secret,
    pub secret: Secret,
    /// `$api_access_key` of WHMCS's configuration.php, if the API IP
    /// allowlist is to be bypassed.
    pub accesskey: Option<Secret>,
    /// `billable_item` (AddBillableItem, one per line item) or `invoice`
    /// (CreateInvoice, one invoice per account and close).
    pub push_as: String,
    /// AddBillableItem's `invoiceaction`: nextinvoice, nextcron, duedate,
    /// noinvoice.
    pub invoice_action: String,
    pub timeout_seconds: u64,
    /// Back-off after a failed push, doubling up to `retry_max_seconds`.
    pub retry_initial_seconds: u64,
    pub retry_max_seconds: u64,
    /// How many of a client's newest invoices reconciliation searches for an
    /// item's tag.
    pub reconcile_invoices: u32,
    /// How often an item whose push outcome is unknown is looked for again
    /// on the client's invoices (a billable item shows up only once WHMCS
    /// has invoiced it).
    pub uncertain_recheck_seconds: u64,
}

impl Default for WhmcsConfig {
    fn default() -> Self {
        WhmcsConfig {
            url: String::new(),
            identifier: Secret::default(),
            secret: Secret::default(),
            accesskey: None,
            push_as: "billable_item".into(),
            invoice_action: "nextinvoice".into(),
            timeout_seconds: 30,
            retry_initial_seconds: 60,
            retry_max_seconds: 3600,
            reconcile_invoices: 100,
            uncertain_recheck_seconds: 3600,
        }
    }
}

/// `[billing.alerts]`: usage alerts at fractions of an account's credit limit.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// Fractions of `credit_limit`, as decimal strings.
    pub fractions: Vec<String>,
    /// Where alerts are POSTed (JSON, signed); none = bus and metric only.
    pub webhook_url: Option<String>,
    /// HMAC-SHA256 key of the `X-Cdrate-Signature` header.
    pub webhook_secret: Secret,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            fractions: vec!["0.8".into(), "1.0".into()],
            webhook_url: None,
            webhook_secret: Secret::default(),
        }
    }
}

/// Files imported at start-up when they differ from the stored versions.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImportConfig {
    pub tariffs_dir: Option<PathBuf>,
    pub accounts_file: Option<PathBuf>,
    pub identities_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// Prefix of configuration environment variables.
const ENV_PREFIX: &str = "CDRATE_";

impl Config {
    /// Loads `path` (if given, it must exist; if not, `cdrate.toml` is used
    /// when present) and applies environment overrides.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        let text = match path {
            Some(p) => std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
            None => std::fs::read_to_string("cdrate.toml").unwrap_or_default(),
        };
        let env: Vec<(String, String)> = std::env::vars().collect();
        Config::from_parts(&text, &env)
    }

    /// Builds a config from a file's text and environment pairs.
    pub fn from_parts(text: &str, env: &[(String, String)]) -> anyhow::Result<Config> {
        let mut tree: toml::Table = toml::from_str(text).context("cdrate.toml is not valid TOML")?;
        for (name, value) in env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            // CDRATE_TEST_* and CDRATE_CONFIG are not configuration keys:
            // keys have at least one `__` (section__key, section__sub__key).
            let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
            let Some((key, sections)) = path.split_last().filter(|(_, s)| !s.is_empty()) else {
                continue;
            };
            let mut table = &mut tree;
            for section in sections {
                table = table
                    .entry(section.clone())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                    .as_table_mut()
                    .with_context(|| format!("{name}: {section} is not a section"))?;
            }
            table.insert(key.clone(), env_value(value));
        }
        let config: Config = toml::Value::Table(tree).try_into().context("invalid configuration")?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.ingest.append_batch_max_records == 0 || self.rating.batch_max_records == 0 {
            bail!("ingest.append_batch_max_records and rating.batch_max_records must be at least 1");
        }
        if self.ingest.append_queue_requests == 0 || self.ingest.append_concurrency == 0 {
            bail!("ingest.append_queue_requests and ingest.append_concurrency must be at least 1");
        }
        if self.bus.partitions < 1 {
            bail!("bus.partitions must be at least 1");
        }
        if self.rating.workers == 0 {
            bail!("rating.workers must be at least 1");
        }
        if self.rating.workers > 1 && self.bus.kind != BusKind::Kafka {
            bail!("rating.workers > 1 needs bus.kind = \"kafka\": the embedded log has one reader per group");
        }
        for pbx in &self.ingest.freeswitch.pbx {
            if pbx.username.is_some() != pbx.password.is_some() {
                bail!(
                    "ingest.freeswitch.pbx {:?}: username and password go together",
                    pbx.name
                );
            }
            if pbx.username.is_none() && pbx.allow.is_empty() {
                bail!(
                    "ingest.freeswitch.pbx {:?}: give credentials, an allow list, or both",
                    pbx.name
                );
            }
            for c in &pbx.allow {
                crate::http::allow::Cidr::parse(c)
                    .with_context(|| format!("ingest.freeswitch.pbx {:?}: allow", pbx.name))?;
            }
        }
        for (group, list) in [
            ("ingest", &self.access.allow.ingest),
            ("api", &self.access.allow.api),
            ("ops", &self.access.allow.ops),
        ] {
            for c in list {
                crate::http::allow::Cidr::parse(c).with_context(|| format!("access.allow.{group}"))?;
            }
        }
        for c in &self.ingest.zadarma.allow {
            crate::http::allow::Cidr::parse(c).context("ingest.zadarma.allow")?;
        }
        self.ingest.zadarma.timezone.parse::<chrono_tz::Tz>().map_err(|_| {
            anyhow::anyhow!(
                "ingest.zadarma.timezone {:?} is not an IANA time zone",
                self.ingest.zadarma.timezone
            )
        })?;
        for f in &self.fritzbox {
            f.timezone.parse::<chrono_tz::Tz>().map_err(|_| {
                anyhow::anyhow!(
                    "fritzbox {:?}: timezone {:?} is not an IANA time zone",
                    f.box_id,
                    f.timezone
                )
            })?;
        }
        if cdrate_rating::BillingMode::parse(&self.billing.default_mode).is_none() {
            bail!(
                "billing.default_mode {:?} is not one of none, push, pull",
                self.billing.default_mode
            );
        }
        if !["billable_item", "invoice"].contains(&self.billing.whmcs.push_as.as_str()) {
            bail!(
                "billing.whmcs.push_as {:?} is not one of billable_item, invoice",
                self.billing.whmcs.push_as
            );
        }
        if !["nextinvoice", "nextcron", "duedate", "noinvoice"].contains(&self.billing.whmcs.invoice_action.as_str()) {
            bail!(
                "billing.whmcs.invoice_action {:?} is not one of nextinvoice, nextcron, duedate, noinvoice",
                self.billing.whmcs.invoice_action
            );
        }
        if self.billing.decimals > 4 || self.billing.interval_seconds == 0 {
            bail!("billing.decimals must be 0 to 4 and billing.interval_seconds at least 1");
        }
        for f in &self.billing.alerts.fractions {
            match f.parse::<rust_decimal::Decimal>() {
                Ok(d) if d > rust_decimal::Decimal::ZERO => {}
                _ => bail!("billing.alerts.fractions: {f:?} is not a positive decimal"),
            }
        }
        if !["error", "warn", "info", "debug", "trace"].contains(&self.log.level.as_str()) {
            bail!(
                "log.level {:?} is not one of error, warn, info, debug, trace",
                self.log.level
            );
        }
        Ok(())
    }
}

/// An environment value as the TOML value it spells (number, boolean, an
/// inline array such as `["10.0.0.0/8", "::1"]`), else as a string.
fn env_value(raw: &str) -> toml::Value {
    if raw.trim_start().starts_with('[') {
        if let Ok(mut t) = toml::from_str::<toml::Table>(&format!("v = {raw}")) {
            if let Some(v) = t.remove("v") {
                return v;
            }
        }
    }
    if let Ok(i) = raw.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    match raw {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(raw.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_keys_can_be_set_from_the_environment() {
        let env = [(
            "CDRATE_ACCESS__ALLOW__API".to_owned(),
            r#"["10.0.0.0/8", "2001:db8::/32"]"#.to_owned(),
        )];
        let c = Config::from_parts("", &env).unwrap();
        assert_eq!(c.access.allow.api, vec!["10.0.0.0/8", "2001:db8::/32"]);
        let bad = [("CDRATE_ACCESS__ALLOW__API".to_owned(), r#"["10.0.0.0/33"]"#.to_owned())];
        assert!(Config::from_parts("", &bad).is_err());
    }

    #[test]
    fn default_config_round_trips_through_toml() {
        let text = toml::to_string(&Config::default()).unwrap();
        let back = Config::from_parts(&text, &[]).unwrap();
        assert_eq!(toml::to_string(&back).unwrap(), text);
        assert_eq!(back.bus.kind, BusKind::Embedded);
    }

    #[test]
    fn environment_overrides_the_file() {
        let env = [
            ("CDRATE_STORE__URL".to_owned(), "postgres://x@h/db".to_owned()),
            ("CDRATE_BUS__KIND".to_owned(), "kafka".to_owned()),
            ("CDRATE_RATING__BATCH_MAX_RECORDS".to_owned(), "7".to_owned()),
            ("CDRATE_TEST_POSTGRES_URL".to_owned(), "ignored".to_owned()),
            ("CDRATE_INGEST__ZADARMA__SECRET".to_owned(), "s3cret".to_owned()),
        ];
        let c = Config::from_parts("[store]\nurl = \"sqlite://a.db\"\n[rating]\nenabled = false\n", &env).unwrap();
        assert_eq!(c.store.url, "postgres://x@h/db");
        assert_eq!(c.bus.kind, BusKind::Kafka);
        assert_eq!(c.rating.batch_max_records, 7);
        assert!(!c.rating.enabled);
        assert_eq!(c.ingest.zadarma.secret.as_ref().map(Secret::expose), Some("s3cret"));
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let text =
            "[[ingest.freeswitch.pbx]]\nname = \"fusion\"\nusername = \"freeswitch\"\npassword = \"Tq8-cdr-51xV\"\n";
        let c = Config::from_parts(text, &[]).unwrap();
        assert_eq!(
            c.ingest.freeswitch.pbx[0].password.as_ref().map(Secret::expose),
            Some("Tq8-cdr-51xV")
        );
        assert!(!format!("{c:?}").contains("Tq8"));
    }

    #[test]
    fn source_sections_are_validated() {
        let err = Config::from_parts("[[ingest.freeswitch.pbx]]\nname = \"x\"\n", &[]).unwrap_err();
        assert!(format!("{err:#}").contains("credentials, an allow list"), "{err:#}");
        let err = Config::from_parts(
            "[[ingest.freeswitch.pbx]]\nname = \"x\"\nallow = [\"10.0.0.0/33\"]\n",
            &[],
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("allow"), "{err:#}");
        let text = "[[fritzbox]]\nbox = \"office\"\nhost = \"127.0.0.1\"\ntimezone = \"Europe/Berlin\"\n";
        assert_eq!(Config::from_parts(text, &[]).unwrap().fritzbox[0].port, 1012);
    }

    #[test]
    fn several_rating_workers_need_kafka() {
        let workers = |kind: &str, n: &str| {
            let env = [
                ("CDRATE_BUS__KIND".to_owned(), kind.to_owned()),
                ("CDRATE_RATING__WORKERS".to_owned(), n.to_owned()),
            ];
            Config::from_parts("", &env).map(|c| c.rating.workers)
        };
        assert_eq!(workers("kafka", "2").unwrap(), 2);
        assert_eq!(workers("embedded", "1").unwrap(), 1);
        let err = workers("embedded", "2").unwrap_err();
        assert!(format!("{err:#}").contains("rating.workers"), "{err:#}");
        assert!(workers("kafka", "0").is_err());
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let err = Config::from_parts("[store]\nurll = \"x\"\n", &[]).unwrap_err();
        assert!(format!("{err:#}").contains("urll"), "{err:#}");
        let env = [("CDRATE_BUS__KIND".to_owned(), "rabbit".to_owned())];
        let err = Config::from_parts("", &env).unwrap_err();
        assert!(format!("{err:#}").contains("rabbit"), "{err:#}");
    }
}
