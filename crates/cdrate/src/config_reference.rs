//! The configuration reference, generated from the config structs: every
//! key of `cdrate.toml` (walked from the serialized defaults), its default,
//! its environment override, and a one-line meaning. `cdrate
//! config-reference` prints it; a test keeps README's copy identical, so
//! the documentation cannot drift from the code.

use crate::config::Config;

/// Keys whose default is "unset" (an `Option`), which serialization omits.
const UNSET_KEYS: &[(&str, &str)] = &[
    ("billing.alerts.webhook_url", "none"),
    ("bus.kafka_properties", "{}"),
    ("billing.whmcs.accesskey", "none"),
    ("import.accounts_file", "none"),
    ("import.identities_file", "none"),
    ("import.tariffs_dir", "none"),
    ("ingest.twilio.public_url", "none"),
    ("ingest.zadarma.pbx_id", "none"),
    ("ingest.zadarma.secret", "none"),
    ("rating.publish_rated", "Kafka: true, embedded: false"),
];

/// One line of meaning per key.
const MEANINGS: &[(&str, &str)] = &[
    ("access.allow.api", "CIDR blocks that may reach `/v1/…`; empty = any"),
    (
        "access.allow.ingest",
        "CIDR blocks that may reach `/ingest/…`; empty = any",
    ),
    (
        "access.allow.ops",
        "CIDR blocks that may reach `/metrics`, `/health`, `/ready`; empty = any",
    ),
    (
        "billing.alerts.fractions",
        "fractions of `credit_limit` that fire a usage alert",
    ),
    (
        "billing.alerts.webhook_secret",
        "HMAC-SHA256 key of `X-Cdrate-Signature`",
    ),
    (
        "billing.alerts.webhook_url",
        "where usage alerts are POSTed (JSON, signed)",
    ),
    ("billing.decimals", "decimals of invoice amounts"),
    (
        "billing.default_mode",
        "`push`, `pull` or `none` for accounts whose `billing` column is empty",
    ),
    (
        "billing.enabled",
        "run the invoicer (cycle close, WHMCS push, alerts) in this process",
    ),
    ("billing.grace_hours", "wait after a cycle ends before closing it"),
    ("billing.interval_seconds", "how often the invoicer looks for work"),
    (
        "billing.whmcs.accesskey",
        "WHMCS `$api_access_key`, to bypass its API IP allowlist",
    ),
    ("billing.whmcs.identifier", "WHMCS API credential identifier"),
    ("billing.whmcs.invoice_action", "AddBillableItem `invoiceaction`"),
    (
        "billing.whmcs.push_as",
        "`billable_item` or `invoice` (CreateInvoice per account and cycle)",
    ),
    (
        "billing.whmcs.reconcile_invoices",
        "newest invoices of a client searched for an uncertain item's tag",
    ),
    (
        "billing.whmcs.retry_initial_seconds",
        "back-off after a refused push, doubling",
    ),
    ("billing.whmcs.retry_max_seconds", "longest back-off"),
    ("billing.whmcs.secret", "WHMCS API credential secret"),
    ("billing.whmcs.timeout_seconds", "timeout of one WHMCS request"),
    (
        "billing.whmcs.uncertain_recheck_seconds",
        "how often an uncertain item is looked for again",
    ),
    (
        "billing.whmcs.url",
        "WHMCS base URL (the API is `<url>/includes/api.php`); empty = no push",
    ),
    ("bus.embedded_url", "the embedded log's own SQLite file"),
    ("bus.kafka_brokers", "Kafka bootstrap servers"),
    ("bus.kafka_client_id", "Kafka `client.id`"),
    (
        "bus.kafka_properties",
        "extra librdkafka properties (`security.protocol`, `sasl.*`, `ssl.*`, `debug`); in the environment `_` stands for `.`",
    ),
    ("bus.kind", "`embedded` or `kafka`"),
    (
        "bus.namespace",
        "prefix of topic and group names, to share a Kafka cluster",
    ),
    ("bus.partitions", "partitions per topic created by `migrate`/`serve`"),
    (
        "fritzbox",
        "`[[fritzbox]]` entries: `box`, `host`, `port` (1012), `timezone`",
    ),
    (
        "import.accounts_file",
        "accounts.csv imported at start-up when it changed",
    ),
    ("import.identities_file", "identities.csv imported with it"),
    (
        "import.tariffs_dir",
        "tariff directory imported at start-up when it changed",
    ),
    ("ingest.append_batch_max_records", "most records in one durable append"),
    ("ingest.append_concurrency", "parallel appends (raise for Kafka)"),
    (
        "ingest.append_queue_requests",
        "requests waiting for the appender; beyond, 503",
    ),
    (
        "ingest.freeswitch.pbx",
        "`[[ingest.freeswitch.pbx]]` entries: `name`, `username`, `password`, `allow`",
    ),
    (
        "ingest.twilio.accounts",
        "`[[ingest.twilio.accounts]]` entries: `account_sid`, `auth_token`",
    ),
    ("ingest.twilio.public_url", "the status callback URL Twilio signs"),
    (
        "ingest.zadarma.allow",
        "CIDR blocks Zadarma webhooks may come from; empty = any",
    ),
    ("ingest.zadarma.pbx_id", "the Zadarma PBX id"),
    ("ingest.zadarma.secret", "Zadarma API secret (signatures)"),
    ("ingest.zadarma.timezone", "the PBX's IANA time zone"),
    ("log.format", "`text` or `json` (`--log-format`)"),
    ("log.level", "`error`, `warn`, `info`, `debug` or `trace`"),
    ("rating.batch_max_records", "records per rating transaction"),
    ("rating.batch_wait_ms", "wait for the first record of a batch"),
    ("rating.enabled", "run the rating worker in this process"),
    ("rating.publish_rated", "publish rated calls to `cdrate.rated.v1`"),
    ("rating.retry_backoff_ms", "pause before a failed batch is read again"),
    ("rating.workers", "rating workers (consumer-group members) in this process; more than 1 needs Kafka"),
    ("server.listen", "HTTP address"),
    ("server.request_body_limit_bytes", "larger bodies get 413"),
    (
        "server.request_timeout_seconds",
        "longest wait for a request body (408) and a durable append (503)",
    ),
    ("server.shutdown_grace_seconds", "bound on the drain after SIGTERM"),
    ("store.max_connections", "connection pool size"),
    (
        "store.sqlite_sync_full",
        "fsync every commit (survives power loss, not only crashes)",
    ),
    ("store.url", "`sqlite://PATH` or `postgres://user@host:5432/db`"),
];

/// One key of the reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub key: String,
    pub default: String,
    /// `CDRATE_…`, or `None` for tables of entries (file only).
    pub env: Option<String>,
    pub meaning: String,
}

/// Every key, sorted.
pub fn rows() -> Vec<Row> {
    let mut keys: Vec<(String, String, bool)> = Vec::new();
    if let Ok(toml::Value::Table(t)) = toml::Value::try_from(Config::default()) {
        walk("", &t, &mut keys);
    }
    for (k, d) in UNSET_KEYS {
        keys.push(((*k).to_owned(), (*d).to_owned(), true));
    }
    keys.sort();
    keys.into_iter()
        .map(|(key, default, env)| Row {
            env: env.then(|| {
                let name = format!("CDRATE_{}", key.replace('.', "__").to_ascii_uppercase());
                // A table of free-form names: one variable per entry.
                if key == "bus.kafka_properties" {
                    format!("{name}__<NAME>")
                } else {
                    name
                }
            }),
            meaning: MEANINGS
                .iter()
                .find(|(k, _)| *k == key)
                .map_or_else(String::new, |(_, m)| (*m).to_owned()),
            key,
            default,
        })
        .collect()
}

fn walk(prefix: &str, table: &toml::Table, out: &mut Vec<(String, String, bool)>) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(t) => walk(&key, t, out),
            // An empty array at a table position is a list of entries.
            toml::Value::Array(a) if a.is_empty() && !is_string_list(&key) => out.push((key, "[]".into(), false)),
            other => out.push((key, other.to_string(), true)),
        }
    }
}

/// Arrays of strings (allowlists) are plain values, settable from the file.
fn is_string_list(key: &str) -> bool {
    key.starts_with("access.allow.") || key == "ingest.zadarma.allow" || key == "billing.alerts.fractions"
}

/// The reference as a Markdown table.
pub fn markdown() -> String {
    let mut s = String::from("| key | default | environment | meaning |\n|---|---|---|---|\n");
    for r in rows() {
        let env = r.env.map_or_else(|| "(file only)".to_owned(), |e| format!("`{e}`"));
        s.push_str(&format!("| `{}` | `{}` | {env} | {} |\n", r.key, r.default, r.meaning));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_a_meaning_and_every_meaning_a_key() {
        let rows = rows();
        let missing: Vec<&str> = rows
            .iter()
            .filter(|r| r.meaning.is_empty())
            .map(|r| r.key.as_str())
            .collect();
        assert!(missing.is_empty(), "keys without a meaning: {missing:?}");
        let stale: Vec<&str> = MEANINGS
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| !rows.iter().any(|r| r.key == *k))
            .collect();
        assert!(stale.is_empty(), "meanings of keys that do not exist: {stale:?}");
    }

    #[test]
    fn the_readme_carries_the_generated_reference() {
        let readme = include_str!("../../../README.md");
        let (start, end) = ("<!-- config-reference:start -->\n", "<!-- config-reference:end -->");
        let from = readme.find(start).expect("README has the start marker") + start.len();
        let to = readme[from..].find(end).expect("README has the end marker") + from;
        assert_eq!(
            &readme[from..to],
            markdown(),
            "README's configuration table is stale: regenerate it with `cdrate config-reference`"
        );
    }

    #[test]
    fn env_names_follow_the_override_rule() {
        let r = rows();
        let url = r.iter().find(|r| r.key == "billing.whmcs.url").unwrap();
        assert_eq!(url.env.as_deref(), Some("CDRATE_BILLING__WHMCS__URL"));
        assert_eq!(r.iter().find(|r| r.key == "fritzbox").unwrap().env, None);
    }
}
