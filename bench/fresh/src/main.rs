//! The fresh-lookup path, two designs side by side in one run against one sandbox:
//!
//! - `caller`: a blocking lookup sends its request from the calling thread (the default);
//! - `worker`: every request is handed to a pool worker and the caller waits for the hand-back
//!   (the design before; `ClientConfig::inline_requests = false`).
//!
//! Fresh lookups (cache off: a request and a verification each) are timed in alternating
//! rounds so that both designs see the same machine, then every fault mode is timed for its
//! overshoot past the budget. `--only caller|worker` runs one design's fresh loop alone, for a
//! profiler (`perf stat -e context-switches …`, see run.sh).
//!
//! Run with `bash bench/fresh/run.sh`.

use std::time::{Duration, Instant};

use nol_core::client::{ApiKey, Call, Client, ClientConfig};
use nol_core::TrustedKeys;
use nol_sandbox::directory::number_for_fault;
use nol_sandbox::{Fault, Sandbox, SandboxConfig, SANDBOX_KEY};

const DESIGNS: [(&str, bool); 2] = [("caller", true), ("worker", false)];

fn client(sb: &Sandbox, budget: Duration, inline: bool) -> Client {
    Client::new(ClientConfig {
        api_key: Some(ApiKey::new(SANDBOX_KEY).expect("key")),
        base_url: sb.url(),
        public_keys: TrustedKeys::from_pem(&sb.public_key_pem()).expect("pem"),
        budget,
        cache_size: 0,
        breaker: None,
        inline_requests: inline,
        ..ClientConfig::default()
    })
    .expect("client")
}

fn at(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn fresh_round(c: &Client, n: usize, out: &mut Vec<Duration>) {
    for _ in 0..n {
        let t = Instant::now();
        let d = c.lookup(&Call::new("+14155551212"));
        out.push(t.elapsed());
        assert!(
            d.verified(),
            "a fresh lookup failed open: {:?}",
            d.fail_open()
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let rounds: usize = std::env::var("NOL_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let per_round = 500;
    let sb = Sandbox::start(SandboxConfig {
        hang_for: Duration::from_secs(2),
        drip_interval: Duration::from_millis(20),
        slow_body_delay: Duration::from_secs(2),
        ..SandboxConfig::default()
    })
    .expect("sandbox");

    if let Some(design) = only {
        let inline = DESIGNS
            .iter()
            .find(|(name, _)| *name == design)
            .map(|(_, inline)| *inline)
            .expect("--only caller or --only worker");
        let c = client(&sb, Duration::from_millis(400), inline);
        let mut samples = Vec::new();
        fresh_round(&c, 200, &mut samples);
        samples.clear();
        let t = Instant::now();
        fresh_round(&c, rounds * per_round, &mut samples);
        samples.sort();
        println!(
            "{design}: {} fresh lookups in {:.2} s, p50 {}",
            samples.len(),
            t.elapsed().as_secs_f64(),
            us(at(&samples, 0.5))
        );
        return;
    }

    let clients: Vec<Client> = DESIGNS
        .iter()
        .map(|(_, inline)| client(&sb, Duration::from_millis(400), *inline))
        .collect();
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(), Vec::new()];
    for (c, s) in clients.iter().zip(samples.iter_mut()) {
        fresh_round(c, 200, s); // connections open, tables warm
        s.clear();
    }
    for round in 0..rounds {
        // Alternate which design goes first, so neither always follows the other's wake-ups.
        let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            fresh_round(&clients[i], per_round, &mut samples[i]);
        }
    }
    println!(
        "Fresh lookups on loopback plain HTTP with verification, one calling thread, {} per design in {rounds} alternating rounds, one run:\n",
        rounds * per_round
    );
    println!("| design | p50 | p90 | p99 | calls/s |");
    println!("|---|---|---|---|---|");
    let mut p50s = Vec::new();
    for ((name, _), s) in DESIGNS.iter().zip(samples.iter_mut()) {
        s.sort();
        let total: Duration = s.iter().sum();
        p50s.push(at(s, 0.5));
        println!(
            "| {name} | {} | {} | {} | {:.0} |",
            us(at(s, 0.5)),
            us(at(s, 0.9)),
            us(at(s, 0.99)),
            s.len() as f64 / total.as_secs_f64()
        );
    }
    println!(
        "\np50 caller ÷ worker: {:.2}\n",
        p50s[0].as_secs_f64() / p50s[1].as_secs_f64()
    );

    let budget = Duration::from_millis(100);
    let n: usize = std::env::var("NOL_BENCH_FAULT_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    println!(
        "Overshoot past a {} ms budget per fault mode, {n} lookups each:\n",
        budget.as_millis()
    );
    println!("| fault | reason | caller p99 | caller max | worker p99 | worker max |");
    println!("|---|---|---|---|---|---|");
    let mut worst = [Duration::ZERO; 2];
    for fault in Fault::ALL {
        let number = number_for_fault(*fault);
        let mut cells = Vec::new();
        let mut reason = String::new();
        for (i, (_, inline)) in DESIGNS.iter().enumerate() {
            // A client per fault: after a 429 a client rightly holds back until Retry-After.
            let c = client(&sb, budget, *inline);
            let mut over = Vec::with_capacity(n);
            for _ in 0..n {
                let t = Instant::now();
                let d = c.lookup(&Call::new(&number));
                over.push(t.elapsed().saturating_sub(budget));
                reason = d
                    .fail_open()
                    .map(|r| r.to_string())
                    .unwrap_or_else(|| "answer".into());
            }
            over.sort();
            let p99 = at(&over, 0.99);
            worst[i] = worst[i].max(p99);
            cells.push(format!("{} | {}", us(p99), us(at(&over, 1.0))));
        }
        println!("| {fault} | {reason} | {} | {} |", cells[0], cells[1]);
    }
    println!(
        "\nWorst overshoot p99: caller {}, worker {} (the target: under 5 ms on every fault)",
        us(worst[0]),
        us(worst[1])
    );
}
