//! Pricing throughput against generated decks of 1,000 to 100,000 prefixes
//! (DESIGN §11: ≥ 2,000,000 calls/s on one core, flat as the deck grows), and
//! the time to load and validate the 100,000-prefix deck.

use std::hint::black_box;

use cdrate_benches::deck;
use cdrate_rating::{parse_tariffs, E164};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const BATCH: usize = 4096;

fn price(c: &mut Criterion) {
    let mut group = c.benchmark_group("price");
    group.throughput(Throughput::Elements(BATCH as u64));
    for size in [1_000, 10_000, 100_000] {
        let files = deck::generate(size, 42);
        let set = parse_tariffs(&files.plans, &files.bands, &files.rates).expect("generated deck is valid");
        let plan = set.plan_id(deck::PLAN).expect("bench plan exists");
        let calls: Vec<_> = deck::calls(&files, BATCH, 7)
            .into_iter()
            .map(|c| {
                (
                    E164::from_digits(&c.number).expect("generated numbers are digits"),
                    c.at,
                    c.billable_seconds,
                )
            })
            .collect();
        group.bench_with_input(BenchmarkId::from_parameter(size), &calls, |b, calls| {
            b.iter(|| {
                for (number, at, secs) in calls {
                    let _ = black_box(set.price(plan, black_box(number), *at, *secs));
                }
            })
        });
    }
    group.finish();
}

fn load(c: &mut Criterion) {
    let files = deck::generate(100_000, 42);
    let rows = files.rates.lines().count() as u64 - 1;
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    group.throughput(Throughput::Elements(rows));
    group.bench_function("100000", |b| {
        b.iter(|| parse_tariffs(black_box(&files.plans), &files.bands, &files.rates).map(|s| s.rate_count()))
    });
    group.finish();
}

criterion_group!(benches, price, load);
criterion_main!(benches);
