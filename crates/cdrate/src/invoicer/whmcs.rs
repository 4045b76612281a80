//! The I/O half of the WHMCS API client: one form POST to
//! `<url>/includes/api.php` per call, with the credentials, on tokio's
//! blocking pool. Judging the answer (success, definite failure, or an
//! outcome nobody can know) is `cdrate_billing::whmcs::classify`'s job.

use std::time::Duration;

use cdrate_billing::whmcs::{classify, encode_form, Outcome};

use crate::config::WhmcsConfig;
use crate::metrics::Metrics;

/// Largest answer read from WHMCS; invoice lists are the big ones.
const MAX_RESPONSE_BYTES: u64 = 8 * 1024 * 1024;

#[derive(Clone)]
pub struct WhmcsClient {
    endpoint: String,
    identifier: String,
    secret: String,
    accesskey: Option<String>,
    agent: ureq::Agent,
    metrics: Metrics,
}

impl WhmcsClient {
    /// `None` when no WHMCS URL is configured.
    pub fn new(config: &WhmcsConfig, metrics: Metrics) -> Option<WhmcsClient> {
        let base = config.url.trim().trim_end_matches('/');
        if base.is_empty() {
            return None;
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(config.timeout_seconds.max(1))))
            // WHMCS answers errors with bodies on any status; read them all.
            .http_status_as_error(false)
            .build()
            .into();
        Some(WhmcsClient {
            endpoint: format!("{base}/includes/api.php"),
            identifier: config.identifier.expose().to_owned(),
            secret: config.secret.expose().to_owned(),
            accesskey: config.accesskey.as_ref().map(|k| k.expose().to_owned()),
            agent,
            metrics,
        })
    }

    /// Calls `action` with `params` (without credentials). Never errors:
    /// transport problems are outcomes too. A connection that was never
    /// made is a definite failure (nothing reached WHMCS); anything after
    /// the request may have left is ambiguous.
    pub async fn call(&self, action: &str, params: Vec<(String, String)>) -> Outcome {
        let mut form = vec![
            ("action".to_owned(), action.to_owned()),
            ("identifier".to_owned(), self.identifier.clone()),
            ("secret".to_owned(), self.secret.clone()),
            ("responsetype".to_owned(), "json".to_owned()),
        ];
        if let Some(key) = &self.accesskey {
            form.push(("accesskey".to_owned(), key.clone()));
        }
        form.extend(params);
        let body = encode_form(&form);
        let (agent, endpoint) = (self.agent.clone(), self.endpoint.clone());
        let outcome = tokio::task::spawn_blocking(move || post(&agent, &endpoint, body))
            .await
            .unwrap_or_else(|e| Outcome::Ambiguous {
                reason: format!("request task failed: {e}"),
            });
        let label = match &outcome {
            Outcome::Success(_) => "success",
            Outcome::Failed { .. } => "failed",
            Outcome::Ambiguous { .. } => "ambiguous",
        };
        self.metrics.whmcs_requests.with_label_values(&[action, label]).inc();
        outcome
    }
}

fn post(agent: &ureq::Agent, endpoint: &str, body: String) -> Outcome {
    let response = agent
        .post(endpoint)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send(body);
    match response {
        Ok(mut r) => {
            let status = r.status().as_u16();
            match r.body_mut().with_config().limit(MAX_RESPONSE_BYTES).read_to_vec() {
                Ok(bytes) => classify(status, &bytes),
                Err(e) => Outcome::Ambiguous {
                    reason: format!("HTTP {status}, body unreadable: {e}"),
                },
            }
        }
        Err(e @ (ureq::Error::ConnectionFailed | ureq::Error::HostNotFound)) => Outcome::Failed {
            message: format!("cannot reach WHMCS: {e}"),
        },
        Err(e) => Outcome::Ambiguous {
            reason: format!("no answer from WHMCS: {e}"),
        },
    }
}
