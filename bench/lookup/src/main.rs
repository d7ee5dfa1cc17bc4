//! One run, one sandbox, side by side: libnol's fresh (keep-alive) and cached lookups, a
//! `curl` process per call (the seed's AGI pattern), Python `requests` + the seed's `verify`,
//! and libnol's fail-open overshoot for every fault mode. Prints Markdown tables with ratios.
//!
//! Run with `bash bench/lookup/run.sh` (release build).

mod baselines;
mod summary;

use std::time::{Duration, Instant};

use nol_core::client::{ApiKey, Call, Client, ClientConfig};
use nol_core::TrustedKeys;
use nol_sandbox::directory::number_for_fault;
use nol_sandbox::{Fault, Sandbox, SandboxConfig, SANDBOX_KEY};
use summary::{summarize, us};

fn client(sb: &Sandbox, budget: Duration, cache: u64) -> Client {
    Client::new(ClientConfig {
        api_key: Some(ApiKey::new(SANDBOX_KEY).expect("key")),
        base_url: sb.url(),
        public_keys: TrustedKeys::from_pem(&sb.public_key_pem()).expect("pem"),
        budget,
        cache_size: cache,
        breaker: None,
        ..ClientConfig::default()
    })
    .expect("client")
}

fn main() {
    let n: usize = std::env::var("NOL_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let sb = Sandbox::start(SandboxConfig {
        hang_for: Duration::from_secs(2),
        drip_interval: Duration::from_millis(20),
        slow_body_delay: Duration::from_secs(2),
        ..SandboxConfig::default()
    })
    .expect("sandbox");
    let dir = std::env::temp_dir().join(format!("nol-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let pem = sb.write_public_key(&dir).expect("pem file");

    // libnol, fresh: the cache off, so every call is a request + verification (keep-alive).
    let fresh_client = client(&sb, Duration::from_millis(400), 0);
    for _ in 0..50 {
        fresh_client.lookup(&Call::new("+14155551212"));
    }
    let fresh: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            let d = fresh_client.lookup(&Call::new("+14155551212"));
            let e = t.elapsed();
            assert!(d.verified() && !d.from_cache(), "{:?}", d.outcome);
            e
        })
        .collect();

    // libnol, cache hits, counted from the raw number as the switch hands it over.
    let cached_client = client(&sb, Duration::from_millis(400), 10_000);
    cached_client.lookup(&Call::new("+1 (415) 555-1212"));
    let cached: Vec<Duration> = (0..n * 50)
        .map(|_| {
            let t = Instant::now();
            let d = cached_client.lookup(&Call::new("+1 (415) 555-1212"));
            let e = t.elapsed();
            debug_assert!(d.from_cache());
            e
        })
        .collect();

    // curl, one process per call (the seed's AGI recipe), no verification at all.
    let curl_n = (n / 10).max(50);
    let curl = baselines::curl_per_call(&sb.url(), None, "0.4", curl_n);

    // Python requests + the seed's verify.
    let py = baselines::Python::run(&sb.url(), &pem, n, None);
    let (py_fresh, py_cached) = (py.all("fresh"), py.all("cached"));

    let fresh_rows = [
        ("libnol, fresh (keep-alive, verified)", summarize(fresh)),
        (
            "curl process per call (seed AGI recipe, no verification)",
            summarize(curl),
        ),
        (
            "Python requests + seed verify (keep-alive)",
            summarize(py_fresh),
        ),
    ];
    let cached_rows = [
        (
            "libnol cache hit, from the raw number (`+1 (415) 555-1212`)",
            summarize(cached),
        ),
        (
            "Python dict hit on an already-normalized number",
            summarize(py_cached),
        ),
    ];
    println!("Lookups against the sandbox on loopback, one calling thread, one run ({n} fresh calls each; curl {curl_n}).\n");
    for (title, rows) in [
        ("fresh lookup", &fresh_rows[..]),
        ("cache hit", &cached_rows[..]),
    ] {
        println!("| {title} | p50 | p99 | calls/s | libnol's calls/s ÷ this |");
        println!("|---|---|---|---|---|");
        let base = rows[0].1.per_sec;
        for (name, s) in rows {
            println!(
                "| {name} | {} | {} | {:.0} | {:.1}x |",
                us(s.p50),
                us(s.p99),
                s.per_sec,
                base / s.per_sec
            );
        }
        println!();
    }

    // Fail-open overshoot: how far past its budget a lookup returns, per fault mode.
    let budget = Duration::from_millis(100);
    let rounds = 100;
    println!("Fail-open per fault mode, budget {} ms, {rounds} lookups each (overshoot = time past the budget):\n", budget.as_millis());
    println!("| fault | reason | p50 elapsed | overshoot p50 | overshoot p99 | overshoot max |");
    println!("|---|---|---|---|---|---|");
    for fault in Fault::ALL {
        let number = number_for_fault(*fault);
        let mut elapsed = Vec::new();
        let mut reason = String::new();
        // A client per mode: after a 429 a client rightly holds back until Retry-After.
        let fo = client(&sb, budget, 0);
        for _ in 0..rounds {
            let t = Instant::now();
            let d = fo.lookup(&Call::new(&number));
            elapsed.push(t.elapsed());
            reason = d
                .fail_open()
                .map(|r| r.to_string())
                .unwrap_or_else(|| "answer".into());
        }
        let over: Vec<Duration> = elapsed.iter().map(|e| e.saturating_sub(budget)).collect();
        let (e, o) = (summarize(elapsed), summarize(over));
        println!(
            "| {fault} | {reason} | {} | {} | {} | {} |",
            us(e.p50),
            us(o.p50),
            us(o.p99),
            us(o.max)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
