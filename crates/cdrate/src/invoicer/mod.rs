//! The invoicer worker (DESIGN §7): every `billing.interval_seconds` it
//! closes the billing cycles that ended more than `billing.grace_hours`
//! ago ([`close`]), fires usage alerts ([`alerts`]), and pushes line items
//! to WHMCS and reconciles the uncertain ones ([`push`], over the client in
//! [`whmcs`]). Pull-mode items wait for the WHMCS hook on `/v1/usage`.
//!
//! Everything it does is recorded in the store first, so it can be killed
//! at any point and simply runs again.

pub mod alerts;
pub mod close;
pub mod push;
pub mod whmcs;

use std::time::Duration;

use cdrate_bus::{Bus, Names};
use cdrate_rating::BillingMode;
use cdrate_store::Store;
use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::config::BillingConfig;
use crate::metrics::Metrics;
use crate::worker::RatingState;

pub struct Invoicer {
    pub store: Store,
    pub bus: Bus,
    pub names: Names,
    pub config: BillingConfig,
    pub metrics: Metrics,
}

impl Invoicer {
    pub async fn run(self, cancel: CancellationToken) -> anyhow::Result<()> {
        let client = whmcs::WhmcsClient::new(&self.config.whmcs, self.metrics.clone());
        let mut state = RatingState::default();
        let mut checked = alerts::Checked::default();
        let mut startup = true;
        let interval = Duration::from_secs(self.config.interval_seconds.max(1));
        loop {
            match self.pass(&mut state, &mut checked, client.as_ref(), startup).await {
                Ok(()) => startup = false,
                Err(e) => tracing::error!(error = %format!("{e:#}"), "invoicer pass failed; retrying next interval"),
            }
            if let Err(e) = self.refresh_gauges().await {
                tracing::warn!(error = %e, "reading line item states failed");
            }
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }

    async fn pass(
        &self,
        state: &mut RatingState,
        checked: &mut alerts::Checked,
        client: Option<&whmcs::WhmcsClient>,
        startup: bool,
    ) -> anyhow::Result<()> {
        state.refresh(&self.store).await?;
        if let (Some((_, tariffs)), Some((_, accounts))) = (&state.tariffs, &state.accounts) {
            let now = Utc::now();
            let grace = chrono::Duration::hours(i64::try_from(self.config.grace_hours).unwrap_or(i64::MAX / 4));
            let closed = close::close_due(
                &self.store,
                accounts,
                tariffs,
                now - grace,
                None,
                close_settings(&self.config),
                Some(&self.metrics),
            )
            .await?;
            if !closed.is_empty() {
                tracing::info!(cycles = closed.len(), "invoicer closed billing cycles");
            }
            let alerter = alerts::Alerter {
                store: &self.store,
                bus: &self.bus,
                topic: &self.names.alerts,
                config: &self.config.alerts,
                metrics: &self.metrics,
            };
            alerter.pass(accounts, tariffs, now, checked).await?;
        }
        if let Some(client) = client {
            let pusher = push::Pusher {
                store: &self.store,
                client,
                config: &self.config.whmcs,
            };
            let report = pusher.pass(startup).await?;
            if report != push::PassReport::default() {
                tracing::info!(?report, "WHMCS push pass");
            }
        }
        Ok(())
    }

    async fn refresh_gauges(&self) -> anyhow::Result<()> {
        self.metrics.billing_items.reset();
        for (delivery, state, n) in self.store.line_item_states().await? {
            self.metrics
                .billing_items
                .with_label_values(&[&delivery, &state])
                .set(n);
        }
        Ok(())
    }
}

pub fn close_settings(config: &BillingConfig) -> close::CloseSettings {
    close::CloseSettings {
        decimals: config.decimals,
        default_mode: BillingMode::parse(&config.default_mode).unwrap_or(BillingMode::None),
    }
}
