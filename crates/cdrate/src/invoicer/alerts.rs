//! Usage alerts: when an account's usage in its current cycle reaches a
//! configured fraction of its `credit_limit`, once per account, cycle and
//! fraction: an `alert.v1` message on `cdrate.alerts.v1`, a signed webhook
//! POST, and a metric.
//!
//! "Once" is the store's: the alert row is inserted before anything is
//! sent, so two passes (or two processes) cannot both fire it. The webhook
//! is retried a few times in the pass; a receiver that stays down misses
//! that alert (the bus message and the metric still record it).

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use cdrate_billing::{alerts, cycle_containing};
use cdrate_bus::{Bus, Outgoing};
use cdrate_rating::{AccountBook, TariffSet};
use cdrate_store::Store;

use crate::config::AlertsConfig;
use crate::metrics::Metrics;

pub const ALERT_SCHEMA: &str = "alert.v1";
const WEBHOOK_ATTEMPTS: u32 = 3;

/// The `cdrate.alerts.v1` message and webhook body.
#[derive(Debug, Clone, Serialize)]
pub struct UsageAlert {
    pub schema: &'static str,
    pub kind: &'static str,
    pub account: String,
    pub cycle_start: DateTime<Utc>,
    pub cycle_end: DateTime<Utc>,
    /// Fraction of the credit limit reached, e.g. "0.8".
    pub fraction: String,
    pub usage: String,
    pub credit_limit: String,
    pub currency: String,
    pub fired_at: DateTime<Utc>,
}

pub struct Alerter<'a> {
    pub store: &'a Store,
    pub bus: &'a Bus,
    pub topic: &'a str,
    pub config: &'a AlertsConfig,
    pub metrics: &'a Metrics,
}

/// What the last check of each account saw. While an account's running
/// totals (every currency), credit limit and cycle are unchanged, so is its
/// usage in the cycle, and the scan of the cycle's calls is skipped: a pass
/// then costs one read of the totals, not one scan per credit-limited
/// account. Kept by the caller across passes.
#[derive(Debug, Default)]
pub struct Checked(HashMap<String, Seen>);

#[derive(Debug, Clone, PartialEq)]
struct Seen {
    totals: Vec<(String, i64, Decimal)>,
    limit: Decimal,
    cycle_start_ms: i64,
}

impl Checked {
    fn unchanged(&self, account: &str, seen: &Seen) -> bool {
        self.0.get(account) == Some(seen)
    }

    fn record(&mut self, account: &str, seen: Seen) {
        self.0.insert(account.to_owned(), seen);
    }
}

impl Alerter<'_> {
    /// Checks every account with a credit limit at `now` whose usage may
    /// have changed since `checked` saw it; returns the alerts fired.
    pub async fn pass(
        &self,
        accounts: &AccountBook,
        tariffs: &TariffSet,
        now: DateTime<Utc>,
        checked: &mut Checked,
    ) -> anyhow::Result<Vec<UsageAlert>> {
        let fractions: Vec<Decimal> = self.config.fractions.iter().filter_map(|f| f.parse().ok()).collect();
        // Read before the scans: a call rated in between makes the next
        // pass see changed totals and look again.
        let mut totals: HashMap<String, Vec<(String, i64, Decimal)>> = HashMap::new();
        for t in self.store.usage_totals().await? {
            totals
                .entry(t.account_id)
                .or_default()
                .push((t.currency, t.calls, t.cost));
        }
        let mut fired = Vec::new();
        for account in accounts.accounts() {
            let Some(limit) = account.credit_limit.filter(|l| *l > Decimal::ZERO) else {
                continue;
            };
            let Some(tz) = tariffs.plan_timezone(&account.plan) else {
                continue;
            };
            let cycle = cycle_containing(now, account.cycle_day, tz)?;
            let start_ms = cycle.start.timestamp_millis();
            let seen = Seen {
                totals: totals.remove(&account.id).unwrap_or_default(),
                limit,
                cycle_start_ms: start_ms,
            };
            if checked.unchanged(&account.id, &seen) {
                continue;
            }
            let (_, usage) = self
                .store
                .usage_between(&account.id, start_ms, cycle.end.timestamp_millis())
                .await?;
            let already = self.store.fired_alerts(&account.id, start_ms).await?;
            for fraction in alerts::crossed(&fractions, limit, Decimal::ZERO, usage, &already) {
                if !self
                    .store
                    .record_alert(&account.id, start_ms, fraction, usage, limit, now.timestamp_millis())
                    .await?
                {
                    continue;
                }
                let alert = UsageAlert {
                    schema: ALERT_SCHEMA,
                    kind: "usage_threshold",
                    account: account.id.clone(),
                    cycle_start: cycle.start,
                    cycle_end: cycle.end,
                    fraction: fraction.normalize().to_string(),
                    usage: usage.to_string(),
                    credit_limit: limit.to_string(),
                    currency: account.currency.to_string(),
                    fired_at: now,
                };
                self.send(&alert).await;
                fired.push(alert);
            }
            checked.record(&account.id, seen);
        }
        Ok(fired)
    }

    async fn send(&self, alert: &UsageAlert) {
        self.metrics.usage_alerts.with_label_values(&[&alert.fraction]).inc();
        tracing::warn!(account = %alert.account, fraction = %alert.fraction, usage = %alert.usage,
            credit_limit = %alert.credit_limit, "usage alert");
        let body = match serde_json::to_vec(alert) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "cannot serialize usage alert");
                return;
            }
        };
        let message = Outgoing {
            key: alert.account.clone(),
            payload: body.clone(),
        };
        if let Err(e) = self.bus.publish(self.topic, &[message]).await {
            tracing::error!(error = %e, "publishing usage alert failed");
        }
        if let Some(url) = self.config.webhook_url.clone().filter(|u| !u.is_empty()) {
            let secret = self.config.webhook_secret.expose().as_bytes().to_vec();
            let result = tokio::task::spawn_blocking(move || post_webhook(&url, &secret, &body)).await;
            match result {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "usage alert webhook failed"),
                Err(e) => tracing::error!(error = %e, "usage alert webhook task failed"),
            }
        }
    }
}

/// POSTs `body` with `X-Cdrate-Timestamp` and `X-Cdrate-Signature`
/// (`sha256=` hex HMAC of `"<timestamp>.<body>"`), retrying on failure.
fn post_webhook(url: &str, secret: &[u8], body: &[u8]) -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut last = String::new();
    for attempt in 0..WEBHOOK_ATTEMPTS {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(500 << attempt));
        }
        let timestamp = Utc::now().timestamp();
        let signature = alerts::alert_signature(secret, timestamp, body);
        match agent
            .post(url)
            .header("Content-Type", "application/json")
            .header("X-Cdrate-Timestamp", &timestamp.to_string())
            .header("X-Cdrate-Signature", &format!("sha256={signature}"))
            .send(body)
        {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => last = format!("HTTP {}", r.status()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(calls: i64, cost: &str, limit: &str, cycle_start_ms: i64) -> Seen {
        Seen {
            totals: vec![("USD".into(), calls, cost.parse().unwrap())],
            limit: limit.parse().unwrap(),
            cycle_start_ms,
        }
    }

    #[test]
    fn an_account_is_looked_at_again_only_when_its_usage_limit_or_cycle_may_have_changed() {
        let mut checked = Checked::default();
        let first = seen(3, "1.50", "10", 100);
        assert!(!checked.unchanged("acme", &first), "never checked");
        checked.record("acme", first.clone());
        assert!(checked.unchanged("acme", &first));
        assert!(!checked.unchanged("zeta", &first), "per account");
        for (what, next) in [
            ("a call rated", seen(4, "1.90", "10", 100)),
            ("a call re-rated to another cost", seen(3, "1.40", "10", 100)),
            ("a new credit limit", seen(3, "1.50", "2", 100)),
            ("the next cycle", seen(3, "1.50", "10", 200)),
        ] {
            assert!(!checked.unchanged("acme", &next), "{what}");
        }
        let mut two_currencies = first.clone();
        two_currencies.totals.push(("EUR".into(), 1, "0.10".parse().unwrap()));
        assert!(
            !checked.unchanged("acme", &two_currencies),
            "a call in another currency"
        );
    }
}
