//! The Rust side of bench/c: `Client::lookup` (+ dropping the decision) on a cache hit and on a
//! fresh lookup over HTTP, timed call by call exactly as bench/c/bench.c times `nol_lookup`.
//! Output: one line per case, `<case> <n> <p50_ns> <p90_ns> <p99_ns> <mean_ns>`.

use std::time::{Duration, Instant};

use nol_core::{Call, Client, ClientConfig, Outcome};

fn client(cache: u64) -> Client {
    let config = ClientConfig {
        cache_size: cache,
        budget: Duration::from_millis(2000),
        ..ClientConfig::default()
    };
    // API key, base URL and public key from the environment, as the C side.
    match Client::new(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::exit(1);
        }
    }
}

fn run(name: &str, client: &Client, n: usize, cached: bool) {
    let call = Call::new("+14155551212");
    let mut t = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let d = client.lookup(&call);
        drop(std::hint::black_box(d));
        t.push(start.elapsed().as_nanos() as u64);
    }
    let d = client.lookup(&call);
    let ok = if cached {
        matches!(d.outcome, Outcome::Cached { .. })
    } else {
        d.outcome == Outcome::Verified
    };
    if !ok {
        eprintln!("bench {name}: unexpected outcome {:?}", d.outcome);
        std::process::exit(1);
    }
    let mean = t.iter().sum::<u64>() / n as u64;
    t.sort_unstable();
    println!(
        "{name} {n} {} {} {} {mean}",
        t[n / 2],
        t[n * 9 / 10],
        t[n * 99 / 100]
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let hits: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let fresh: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2_000);
    let cached = client(10_000);
    run("cache_hit", &cached, hits / 10, true);
    run("cache_hit", &cached, hits, true);
    let uncached = client(0);
    run("fresh", &uncached, fresh / 10, false);
    run("fresh", &uncached, fresh, false);
}
