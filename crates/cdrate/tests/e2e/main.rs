//! End-to-end tests of `cdrate serve` as a real process, on the embedded
//! backend always and on Kafka + PostgreSQL when `CDRATE_TEST_KAFKA_BROKERS`
//! and `CDRATE_TEST_POSTGRES_URL` are set (CI sets them and
//! `CDRATE_TEST_REQUIRE_SERVICES=1`, so a skip there fails).
//!
//! One test binary with modules, so it links once.

mod access;
mod backup;
mod billing;
mod contract;
mod deadletters;
mod deploy;
mod fritzbox;
mod harness;
mod observability;
mod pipeline;
mod schemas;
mod sources;
mod versions;
mod whmcs_php;
