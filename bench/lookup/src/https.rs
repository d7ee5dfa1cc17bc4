//! The real shape of the service, HTTPS, in one run against one TLS sandbox (its own CA):
//! libnol kept alive over TLS, a `curl --cacert` process per call (the seed's AGI recipe: each
//! process pays a full TLS handshake), Python `requests` + the seed's `verify` (a kept-alive
//! session trusting the same CA), and the first lookup of a new client with and without the
//! warm-up (`warm_up_ms`) against the steady median. Prints Markdown tables with ratios.
//!
//! Run with `bash bench/lookup/https.sh` (release build).

mod baselines;
mod summary;

use std::time::{Duration, Instant};

use nol_core::client::{ApiKey, Call, Client, ClientConfig};
use nol_core::TrustedKeys;
use nol_sandbox::{Sandbox, SandboxConfig, SANDBOX_KEY};
use summary::{summarize, us};

const NUMBER: &str = "+14155551212";

fn client(sb: &Sandbox, ca: Option<&str>, warm_up_ms: u64) -> Client {
    let mut config = ClientConfig {
        api_key: Some(ApiKey::new(SANDBOX_KEY).expect("key")),
        base_url: sb.url(),
        public_keys: TrustedKeys::from_pem(&sb.public_key_pem()).expect("pem"),
        budget: Duration::from_millis(400),
        cache_size: 0,
        breaker: None,
        ..ClientConfig::default()
    };
    if let Some(ca) = ca {
        config.set("tls_ca_file", ca).expect("tls_ca_file");
    }
    config
        .set("warm_up_ms", &warm_up_ms.to_string())
        .expect("warm_up_ms");
    Client::new(config).expect("client")
}

fn timed_lookup(c: &Client) -> Duration {
    let t = Instant::now();
    let d = c.lookup(&Call::new(NUMBER));
    let e = t.elapsed();
    assert!(d.verified() && !d.from_cache(), "{:?}", d.outcome);
    e
}

fn main() {
    let n: usize = std::env::var("NOL_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let clients: usize = std::env::var("NOL_BENCH_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let sb = Sandbox::start(SandboxConfig {
        tls: true,
        ..SandboxConfig::default()
    })
    .expect("sandbox");
    let plain = Sandbox::start(SandboxConfig::default()).expect("plain sandbox");
    let dir = std::env::temp_dir().join(format!("nol-bench-https-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let pem = sb.write_public_key(&dir).expect("pem file");
    let ca_path = dir.join("sandbox_ca.pem");
    sb.write_ca_pem(&ca_path).expect("CA file");
    let ca = ca_path.to_str().expect("utf-8 path");

    // libnol kept alive over TLS: the cache off, every call a request + verification.
    let steady_client = client(&sb, Some(ca), 0);
    for _ in 0..50 {
        timed_lookup(&steady_client);
    }
    let steady: Vec<Duration> = (0..n).map(|_| timed_lookup(&steady_client)).collect();
    let steady = summarize(steady);

    // The same over plain HTTP (another sandbox), to see what TLS costs a kept-alive client.
    let plain_client = client(&plain, None, 0);
    for _ in 0..50 {
        timed_lookup(&plain_client);
    }
    let plain_rows = summarize((0..n).map(|_| timed_lookup(&plain_client)).collect());

    // The first lookup of a new client, without and with the warm-up, and beside them a lookup
    // on the long-lived client after a pause (10 ms: a switch taking 100 calls a second), all
    // taken in turn so that they meet the same machine. Back-to-back lookups run with every
    // cache hot; a first lookup, or any lookup after a pause, finds them colder. The process is
    // warm (tables, code): what separates the first lookup from the paced one is the
    // connection, TLS set-up included.
    let mut first_cold = Vec::new();
    let mut first_warm = Vec::new();
    let mut new_cold = Vec::new();
    let mut new_warm = Vec::new();
    let mut paced = Vec::new();
    for _ in 0..clients {
        for (warm_up_ms, firsts, news) in [
            (0, &mut first_cold, &mut new_cold),
            (1000, &mut first_warm, &mut new_warm),
        ] {
            let t = Instant::now();
            let c = client(&sb, Some(ca), warm_up_ms);
            news.push(t.elapsed());
            firsts.push(timed_lookup(&c));
        }
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(10));
            paced.push(timed_lookup(&steady_client));
        }
    }

    // curl, one process per call over TLS (the seed's AGI recipe), no verification at all.
    let curl_n = (n / 10).max(50);
    let curl = baselines::curl_per_call(&sb.url(), Some(ca), "2", curl_n);

    // Python requests (a kept-alive Session trusting the CA) + the seed's verify.
    let py = baselines::Python::run(&sb.url(), &pem, n, Some(ca));
    let (py_fresh, py_first) = (py.all("fresh"), py.one("first"));

    println!(
        "HTTPS against the sandbox on loopback (its own CA; TLS 1.3, ECDSA P-256), one calling \
         thread, one run: {n} fresh calls each, curl {curl_n}, {clients} new clients each way.\n"
    );
    let curl = summarize(curl);
    let py = summarize(py_fresh);
    println!("| fresh lookup over HTTPS | p50 | p99 | calls/s | libnol's calls/s ÷ this |");
    println!("|---|---|---|---|---|");
    let base = steady.per_sec;
    for (name, s) in [
        ("libnol, kept alive over TLS, verified", &steady),
        (
            "curl process per call, `--cacert` (seed AGI recipe, no verification)",
            &curl,
        ),
        ("Python requests + seed verify (kept-alive Session)", &py),
        (
            "libnol, kept alive over plain HTTP (other sandbox)",
            &plain_rows,
        ),
    ] {
        println!(
            "| {name} | {} | {} | {:.0} | {:.1}x |",
            us(s.p50),
            us(s.p99),
            s.per_sec,
            base / s.per_sec
        );
    }
    println!();

    let median = steady.p50.as_secs_f64();
    let paced = summarize(paced);
    let paced_median = paced.p50.as_secs_f64();
    let cold = summarize(first_cold);
    let warm = summarize(first_warm);
    let (new_cold, new_warm) = (summarize(new_cold), summarize(new_warm));
    println!(
        "| lookup over TLS | p50 | max | p50 ÷ back-to-back median | p50 ÷ paced median | `Client::new` p50 |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| back-to-back, long-lived client (the median above) | {} | {} | 1.00x | {:.2}x | |",
        us(steady.p50),
        us(steady.max),
        median / paced_median
    );
    println!(
        "| paced (10 ms apart), long-lived client | {} | {} | {:.2}x | 1.00x | |",
        us(paced.p50),
        us(paced.max),
        paced_median / median
    );
    for (name, s, made) in [
        ("first of a new client, no warm-up", &cold, &new_cold),
        (
            "first of a new client, `warm_up_ms = 1000`",
            &warm,
            &new_warm,
        ),
    ] {
        println!(
            "| {name} | {} | {} | {:.2}x | {:.2}x | {} |",
            us(s.p50),
            us(s.max),
            s.p50.as_secs_f64() / median,
            s.p50.as_secs_f64() / paced_median,
            us(made.p50)
        );
    }
    println!(
        "| Python requests, first call of a new Session | {} | | {:.2}x | {:.2}x | |",
        us(py_first),
        py_first.as_secs_f64() / median,
        py_first.as_secs_f64() / paced_median
    );
    println!();
    println!(
        "Targets: libnol ≥ 50x curl per call: {:.1}x. First lookup with the warm-up within 1.5x \
         the median: {:.2}x the back-to-back median, {:.2}x the paced one (without the warm-up: \
         {:.2}x and {:.2}x).",
        base / curl.per_sec,
        warm.p50.as_secs_f64() / median,
        warm.p50.as_secs_f64() / paced_median,
        cold.p50.as_secs_f64() / median,
        cold.p50.as_secs_f64() / paced_median,
    );
    let _ = std::fs::remove_dir_all(&dir);
}
