//! Seeded, deterministic data for cdrate's benchmarks and load generator.
//!
//! - [`Rng`]: a tiny splitmix64 generator, so runs are reproducible without
//!   pulling in `rand`.
//! - [`deck`]: a synthetic tariff directory of N prefixes with bands and
//!   effective periods, and calls to price against it.
//! - [`calls`]: CallRecord JSON for `POST /ingest/calls`.
//! - [`freeswitch`]: FreeSWITCH XML CDRs for `POST /ingest/freeswitch`,
//!   from a fixture CDR used as a template.
//! - [`engine`]: the environment of a benchmark's `cdrate serve`.
//! - [`http`]: a minimal keep-alive HTTP/1.1 client.
//! - [`pg`]: a fresh PostgreSQL database per run.
//! - [`signing`]: Twilio and Zadarma webhook signatures.

pub mod calls;
pub mod deck;
pub mod engine;
pub mod freeswitch;
pub mod http;
pub mod pg;
pub mod signing;

/// splitmix64: fast, seedable, good enough for synthetic data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0); the modulo bias is irrelevant here.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}
