//! Peak memory with a generated deck loaded the way `cdrate` loads one: the
//! deck is written to a temporary directory, read back with `load_dir`, and
//! the process's peak and current RSS are printed (DESIGN §11: < 200 MiB
//! with 100,000 prefixes).
//!
//! Usage: `cargo run --release -p cdrate-benches --bin deck-rss [PREFIXES]`

use cdrate_benches::deck;

fn status(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .map(|l| l[field.len()..].trim().to_owned())
        })
        .unwrap_or_else(|| "n/a".into())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let size: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100_000);
    let dir = std::env::temp_dir().join(format!("cdrate-deck-{size}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    {
        let files = deck::generate(size, 42);
        std::fs::write(dir.join("plans.csv"), &files.plans)?;
        std::fs::write(dir.join("bands.csv"), &files.bands)?;
        std::fs::write(dir.join("rates.csv"), &files.rates)?;
    }
    let before = status("VmRSS:");
    let started = std::time::Instant::now();
    let set = cdrate_rating::load_dir(&dir).map_err(|e| e.to_string())?;
    let elapsed = started.elapsed();
    println!("prefixes: {size}, rates: {}", set.rate_count());
    println!("load_dir: {:.0} ms", elapsed.as_secs_f64() * 1000.0);
    println!(
        "rss before load: {before}, after load: {}, peak: {}",
        status("VmRSS:"),
        status("VmHWM:")
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
