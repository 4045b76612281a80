//! Every `cdrate_…` metric, registered in one owned registry (tests make
//! their own). Labels come from small closed sets: source, outcome, error
//! code, topic, currency — never an id, account or number.

use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Records offered to ingest, by source and outcome (`accepted`,
    /// `rejected`, `unavailable`).
    pub ingest_records: IntCounterVec,
    pub ingest_request_duration: HistogramVec,
    /// Payloads kept as dead letters, by source and reason.
    pub dead_letters: IntCounterVec,
    /// Fritz!Box connection attempts by outcome (`connected`, `failed`).
    pub fritzbox_connections: IntCounterVec,
    /// Open Fritz!Box calls given up without a record, by reason.
    pub fritzbox_dropped_calls: IntCounterVec,
    /// Records per durable append, to see group commit at work.
    pub bus_append_records: HistogramVec,
    pub bus_append_duration: HistogramVec,
    pub bus_consumer_lag: IntGaugeVec,
    /// Calls handled by the rating worker by outcome (`rated`, `replaced`,
    /// `duplicate`, `quarantined`).
    pub rating_calls: IntCounterVec,
    pub rating_batch_duration: HistogramVec,
    pub rating_batch_failures: IntCounterVec,
    pub quarantine_calls: IntGaugeVec,
    /// Tariff and accounts versions in force (`what` = tariffs | accounts).
    pub config_version: IntGaugeVec,
    /// Billing cycles closed, by currency.
    pub billing_cycles_closed: IntCounterVec,
    /// Amount put on line items at cycle close, by currency, in minor
    /// units (`billing.decimals` places, e.g. cents): an integer, exact.
    pub billing_amount: IntCounterVec,
    /// Line items by delivery (`push`, `pull`, `none`) and state.
    pub billing_items: IntGaugeVec,
    /// WHMCS API calls by action and outcome (`success`, `failed`,
    /// `ambiguous`, `transport`).
    pub whmcs_requests: IntCounterVec,
    /// Usage alerts fired, by fraction of the credit limit.
    pub usage_alerts: IntCounterVec,
}

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const SIZE_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0,
];

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("metric definition is valid");
            registry.register(Box::new(c.clone())).expect("metric registered once");
            c
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("metric definition is valid");
            registry.register(Box::new(g.clone())).expect("metric registered once");
            g
        };
        let histogram = |name: &str, help: &str, labels: &[&str], buckets: &[f64]| {
            let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets.to_vec()), labels)
                .expect("metric definition is valid");
            registry.register(Box::new(h.clone())).expect("metric registered once");
            h
        };
        Metrics {
            ingest_records: counter(
                "cdrate_ingest_records_total",
                "Records offered to ingest",
                &["source", "outcome"],
            ),
            ingest_request_duration: histogram(
                "cdrate_ingest_request_duration_seconds",
                "Ingest request latency until the durable append",
                &["source"],
                LATENCY_BUCKETS,
            ),
            dead_letters: counter(
                "cdrate_ingest_dead_letters_total",
                "Payloads rejected and kept as dead letters",
                &["source", "reason"],
            ),
            fritzbox_connections: counter(
                "cdrate_fritzbox_connections_total",
                "Fritz!Box CallMonitor connection attempts",
                &["outcome"],
            ),
            fritzbox_dropped_calls: counter(
                "cdrate_fritzbox_dropped_calls_total",
                "Open Fritz!Box calls dropped without a record",
                &["reason"],
            ),
            bus_append_records: histogram(
                "cdrate_bus_append_records",
                "Records per durable append",
                &["topic"],
                SIZE_BUCKETS,
            ),
            bus_append_duration: histogram(
                "cdrate_bus_append_duration_seconds",
                "Time of one durable append",
                &["topic"],
                LATENCY_BUCKETS,
            ),
            bus_consumer_lag: gauge(
                "cdrate_bus_consumer_lag_messages",
                "Messages not yet committed by the rating group",
                &["topic"],
            ),
            rating_calls: counter(
                "cdrate_rating_calls_total",
                "Calls handled by the rating worker",
                &["outcome"],
            ),
            rating_batch_duration: histogram(
                "cdrate_rating_batch_duration_seconds",
                "Time to rate and store one batch",
                &[],
                LATENCY_BUCKETS,
            ),
            rating_batch_failures: counter(
                "cdrate_rating_batch_failures_total",
                "Rating batches that failed and were retried, and rating-group rejoins (code group_rejoined)",
                &["code"],
            ),
            quarantine_calls: gauge("cdrate_quarantine_calls", "Calls in quarantine by reason", &["reason"]),
            config_version: gauge(
                "cdrate_config_version",
                "Tariff and accounts versions in force",
                &["what"],
            ),
            billing_cycles_closed: counter(
                "cdrate_billing_cycles_closed_total",
                "Billing cycles closed",
                &["currency"],
            ),
            billing_amount: counter(
                "cdrate_billing_amount_minor_total",
                "Amount billed on line items at cycle close, in minor units of the currency (billing.decimals places)",
                &["currency"],
            ),
            billing_items: gauge(
                "cdrate_billing_line_items",
                "Line items by delivery and state",
                &["delivery", "state"],
            ),
            whmcs_requests: counter(
                "cdrate_whmcs_requests_total",
                "WHMCS API calls by action and outcome",
                &["action", "outcome"],
            ),
            usage_alerts: counter("cdrate_usage_alerts_total", "Usage alerts fired", &["fraction"]),
            registry,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metrics.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}
