//! FreeSWITCH XML CDR parse + normalize (DESIGN §11: ≥ 100,000 CDRs/s on one
//! core): every fixture payload in `shared/fixtures/ingest/freeswitch` that
//! maps to a record, parsed round robin into `CallRecord`s through the
//! adapter registry, as ingest does. The mix is the fixtures' own: raw XML
//! bodies, `cdr=` forms percent-encoded and base64, an `err-log-dir` file.
//! A second group runs the raw XML bodies alone, to separate the reader from
//! the payload decoders.

use std::hint::black_box;
use std::path::PathBuf;

use cdrate_core::Source;
use cdrate_ingest::{Outcome, ParseContext};
use chrono::DateTime;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// The fixture payloads that parse to a record, in file name order.
fn valid_payloads(ctx: &ParseContext<'_>) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures/ingest/freeswitch"
    ));
    let adapter = cdrate_ingest::adapter(Source::Freeswitch).expect("freeswitch has a payload adapter");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "xml" || ext == "form"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .filter(|payload| matches!(adapter.parse(payload, ctx), Outcome::Record(_)))
        .collect()
}

fn parse(c: &mut Criterion) {
    let ctx = ParseContext {
        received_at: DateTime::from_timestamp(1_800_000_000, 0).expect("a valid instant"),
        timezone: None,
        box_id: None,
    };
    let adapter = cdrate_ingest::adapter(Source::Freeswitch).expect("freeswitch has a payload adapter");
    let all = valid_payloads(&ctx);
    assert_eq!(all.len(), 13, "the fixtures hold 13 valid CDRs");
    let raw: Vec<_> = all.iter().filter(|p| p.starts_with(b"<")).cloned().collect();

    let mut group = c.benchmark_group("parse_freeswitch_xml");
    for (name, payloads) in [("fixtures", &all), ("raw_xml", &raw)] {
        group.throughput(Throughput::Elements(payloads.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                for payload in payloads {
                    black_box(adapter.parse(black_box(payload), &ctx));
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
