//! The Fritz!Box CallMonitor client: one task per `[[fritzbox]]` entry that
//! connects to the box (TCP 1012), feeds each line to the box's
//! `CallMonitor` and appends every record it completes, reconnecting with
//! backoff after a drop.
//!
//! No call is lost or produced twice: a record is appended durably before
//! the monitor's open-call state is saved, so a crash between the two only
//! leaves a finished call open in the saved state (expired later, never
//! billed twice since its record is already on the bus); and call ids are
//! deterministic (`fritz:<box>:<connection id>:<start>`), so a record
//! produced again after a reconnect or restart is a duplicate the store
//! ignores. Lines that do not parse are kept as dead letters.

use std::time::Duration;

use anyhow::Context;
use cdrate_bus::Outgoing;
use cdrate_ingest::fritzbox::{CallMonitor, MonitorState};
use cdrate_ingest::Outcome;
use cdrate_store::{DeadLetter, Store};
use chrono::Utc;
use chrono_tz::Tz;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::appender::Appender;
use crate::config::FritzboxConfig;
use crate::metrics::Metrics;

/// Longest line accepted; the box's lines are well under 200 bytes.
const MAX_LINE_BYTES: u64 = 4096;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const BACKOFF_START: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Everything one box's task needs.
pub struct FritzboxClient {
    pub config: FritzboxConfig,
    pub store: Store,
    pub appender: Appender,
    pub metrics: Metrics,
}

impl FritzboxClient {
    pub async fn run(self, cancel: CancellationToken) -> anyhow::Result<()> {
        let tz: Tz = self
            .config
            .timezone
            .parse()
            .map_err(|_| anyhow::anyhow!("fritzbox timezone"))?;
        let box_id = self.config.box_id.clone();
        let state = match self.store.fritzbox_state(&box_id).await? {
            Some(json) => serde_json::from_str::<MonitorState>(&json).unwrap_or_else(|e| {
                tracing::warn!(box_id, error = %e, "saved CallMonitor state unreadable; starting empty");
                MonitorState::default()
            }),
            None => MonitorState::default(),
        };
        let mut monitor = CallMonitor::restore(box_id.clone(), tz, state);
        let address = format!("{}:{}", self.config.host, self.config.port);
        let mut backoff = BACKOFF_START;
        while !cancel.is_cancelled() {
            let connect = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&address));
            let stream = tokio::select! {
                _ = cancel.cancelled() => break,
                c = connect => c,
            };
            match stream {
                Ok(Ok(stream)) => {
                    tracing::info!(box_id, address, "CallMonitor connected");
                    self.metrics
                        .fritzbox_connections
                        .with_label_values(&["connected"])
                        .inc();
                    backoff = BACKOFF_START;
                    match self.read(stream, &mut monitor, &cancel).await {
                        Ok(()) => tracing::warn!(box_id, "CallMonitor connection closed; reconnecting"),
                        Err(e) => {
                            tracing::warn!(box_id, error = %format!("{e:#}"), "CallMonitor connection lost; reconnecting")
                        }
                    }
                }
                Ok(Err(e)) => {
                    self.metrics.fritzbox_connections.with_label_values(&["failed"]).inc();
                    tracing::warn!(box_id, address, error = %e, retry_in_ms = backoff.as_millis() as u64, "cannot reach the CallMonitor");
                }
                Err(_) => {
                    self.metrics.fritzbox_connections.with_label_values(&["failed"]).inc();
                    tracing::warn!(box_id, address, "CallMonitor connect timed out");
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
        Ok(())
    }

    /// Reads lines until the box closes the connection or `cancel`.
    async fn read(
        &self,
        stream: TcpStream,
        monitor: &mut CallMonitor,
        cancel: &CancellationToken,
    ) -> anyhow::Result<()> {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::with_capacity(256);
        loop {
            line.clear();
            let mut limited = (&mut reader).take(MAX_LINE_BYTES);
            let read = limited.read_until(b'\n', &mut line);
            let n = tokio::select! {
                _ = cancel.cancelled() => return self.drain(&mut reader, &mut line, monitor).await,
                n = read => n.context("reading from the box")?,
            };
            if n == 0 {
                return Ok(());
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\r', '\n']);
            self.handle_line(monitor, text, &line).await?;
        }
    }

    /// On shutdown, finishes the line a cancelled read had started and the
    /// lines already received (the box never sends an event twice), waiting
    /// briefly for the rest of a partial line.
    async fn drain(
        &self,
        reader: &mut BufReader<TcpStream>,
        line: &mut Vec<u8>,
        monitor: &mut CallMonitor,
    ) -> anyhow::Result<()> {
        const DRAIN_WAIT: Duration = Duration::from_millis(200);
        loop {
            let mut limited = (&mut *reader).take(MAX_LINE_BYTES);
            match tokio::time::timeout(DRAIN_WAIT, limited.read_until(b'\n', line)).await {
                Ok(Ok(n)) if n > 0 || !line.is_empty() => {
                    let raw = std::mem::take(line);
                    let text = String::from_utf8_lossy(&raw);
                    self.handle_line(monitor, text.trim_end_matches(['\r', '\n']), &raw)
                        .await?;
                    if n == 0 {
                        return Ok(());
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    async fn handle_line(&self, monitor: &mut CallMonitor, text: &str, raw: &[u8]) -> anyhow::Result<()> {
        let box_id = self.config.box_id.as_str();
        let effects = monitor.feed_detailed(text, Utc::now());
        for d in &effects.dropped {
            tracing::warn!(box_id, call_id = %d.call_id, reason = d.reason.code(), "open call dropped without a record");
            self.metrics
                .fritzbox_dropped_calls
                .with_label_values(&[d.reason.code()])
                .inc();
        }
        match effects.outcome {
            Some(Outcome::Record(call)) => {
                let payload = serde_json::to_vec(&call)?;
                let record = Outgoing {
                    key: call.account_key.clone(),
                    payload,
                };
                // The record must be durable before the state forgets the call.
                let mut wait = BACKOFF_START;
                loop {
                    match self.appender.append(vec![record.clone()]).await {
                        Ok(()) => break,
                        Err(e) => {
                            tracing::warn!(box_id, call_id = %call.id, error = ?e, "append failed; retrying");
                            tokio::time::sleep(wait).await;
                            wait = (wait * 2).min(BACKOFF_MAX);
                        }
                    }
                }
                self.metrics
                    .ingest_records
                    .with_label_values(&["fritzbox", "accepted"])
                    .inc();
                tracing::debug!(box_id, call_id = %call.id, "call recorded");
            }
            Some(Outcome::Ignored(reason)) => {
                self.metrics
                    .ingest_records
                    .with_label_values(&["fritzbox", "ignored"])
                    .inc();
                tracing::debug!(box_id, reason, line = text, "line ignored");
            }
            Some(Outcome::Rejected(e)) => {
                self.metrics
                    .ingest_records
                    .with_label_values(&["fritzbox", "rejected"])
                    .inc();
                self.metrics
                    .dead_letters
                    .with_label_values(&["fritzbox", e.code()])
                    .inc();
                tracing::warn!(box_id, code = e.code(), "CallMonitor line rejected");
                self.store
                    .insert_dead_letter(&DeadLetter {
                        id: 0,
                        source: "fritzbox".into(),
                        received_at_ms: Utc::now().timestamp_millis(),
                        reason: e.code().into(),
                        detail: e.detail.clone(),
                        remote_addr: format!("{}:{}", self.config.host, self.config.port),
                        headers: "{}".into(),
                        uri: format!("callmonitor://{box_id}"),
                        body: raw.to_vec(),
                        retried_at_ms: None,
                        retry_outcome: None,
                    })
                    .await?;
            }
            None => {}
        }
        let state = serde_json::to_string(&monitor.snapshot())?;
        self.store
            .save_fritzbox_state(box_id, &state, Utc::now().timestamp_millis())
            .await?;
        Ok(())
    }
}
