//! The fresh-lookup path, side by side in one run against one sandbox:
//!
//! - `caller`: a blocking lookup sends its request from the calling thread (the default);
//! - `worker`: every request is handed to a pool worker and the caller waits for the hand-back
//!   (the design before; `ClientConfig::inline_requests = false`);
//! - what a user would write instead: ureq's POST and `nol_core::signature::verify` of the
//!   body, by hand (no cache, no deadline past ureq's, no fail-open), and the same without the
//!   verification;
//! - the floor under all of them: the request's bytes written on a kept-alive socket and the
//!   answer read back to its Content-Length (no HTTP client, no parsing, no verification):
//!   what the sandbox, the kernel and two thread wake-ups cost on this machine.
//!
//! Fresh lookups (cache off: a request and a verification each) are timed in rotating rounds
//! so that every row sees the same machine, then every fault mode is timed for its overshoot
//! past the budget (`NOL_BENCH_FAULT_N` lookups each, 0 to skip). `--only caller|worker` runs
//! one design's fresh loop alone, for a profiler (`perf stat -e context-switches …`, see
//! run.sh), which also runs the rows once more with the whole process on one CPU.
//!
//! Run with `bash bench/fresh/run.sh`.

use std::io::{Read, Write};
use std::net::TcpStream;
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

/// The floor: one kept-alive connection, the request's bytes written by hand and the answer
/// read to its Content-Length; nothing parsed beyond that, nothing verified.
struct Bare {
    stream: TcpStream,
    request: Vec<u8>,
    buf: Vec<u8>,
}

impl Bare {
    fn new(sb: &Sandbox) -> Bare {
        let stream = TcpStream::connect(sb.addr()).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let body = r#"{"number":"+14155551212","context":"inbound_voice"}"#;
        let request = format!(
            "POST /api/v1/inbound/lookup HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {SANDBOX_KEY}\r\n\
             Content-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            sb.addr(),
            body.len()
        )
        .into_bytes();
        Bare {
            stream,
            request,
            buf: Vec::with_capacity(8192),
        }
    }

    /// One exchange; returns the body's length.
    fn exchange(&mut self) -> usize {
        self.stream.write_all(&self.request).expect("write");
        self.buf.clear();
        let mut chunk = [0u8; 8192];
        loop {
            let n = self.stream.read(&mut chunk).expect("read");
            assert!(n > 0, "the sandbox closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
            let Some(head) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let text = String::from_utf8_lossy(&self.buf[..head]).to_ascii_lowercase();
            assert!(text.starts_with("http/1.1 200"), "{text}");
            let len: usize = text
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .expect("content-length");
            if self.buf.len() >= head + 4 + len {
                return len;
            }
        }
    }
}

/// What a user would write instead: ureq's POST, the body read, and (with `keys`) verified.
fn by_hand_round(
    agent: &ureq::Agent,
    url: &str,
    keys: Option<&TrustedKeys>,
    n: usize,
    out: &mut Vec<Duration>,
) {
    let auth = format!("Bearer {SANDBOX_KEY}");
    for _ in 0..n {
        let t = Instant::now();
        let mut response = agent
            .post(url)
            .header("Authorization", &auth)
            .header("Content-Type", "application/json")
            .send(r#"{"number":"+14155551212","context":"inbound_voice"}"#.as_bytes())
            .expect("post");
        let body = response.body_mut().read_to_vec().expect("body");
        let ok = keys.is_none_or(|k| nol_core::signature::verify(&body, k).is_ok());
        out.push(t.elapsed());
        assert!(ok, "the sandbox's answer does not verify");
    }
}

fn bare_round(b: &mut Bare, n: usize, out: &mut Vec<Duration>) {
    for _ in 0..n {
        let t = Instant::now();
        let len = b.exchange();
        out.push(t.elapsed());
        assert!(len > 0);
    }
}

/// The cost of verifying one answer of the sandbox's alone (p50 of `n`), for the breakdown.
fn verify_alone(sb: &Sandbox, n: usize) -> Duration {
    let mut b = Bare::new(sb);
    b.exchange();
    let head = b
        .buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("head")
        + 4;
    let body = b.buf[head..].to_vec();
    let keys = TrustedKeys::from_pem(&sb.public_key_pem()).expect("pem");
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            let ok = nol_core::signature::verify(&body, &keys).is_ok();
            let e = t.elapsed();
            assert!(ok, "the sandbox's answer does not verify");
            e
        })
        .collect();
    times.sort();
    at(&times, 0.5)
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
    let mut bare = Bare::new(&sb);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("{}/api/v1/inbound/lookup", sb.url());
    let keys = TrustedKeys::from_pem(&sb.public_key_pem()).expect("pem");
    let names = [
        "libnol, the calling thread sends (the default)",
        "libnol, handed to a worker (before; `inline_requests = false`)",
        "by hand: ureq POST + `signature::verify`",
        "by hand: ureq POST, nothing verified",
        "floor: the bare exchange on a socket",
    ];
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); names.len()];
    // One round of a row: 0 and 1 the designs, 2 and 3 by hand, 4 the floor.
    let mut round_of = |row: usize, n: usize, out: &mut Vec<Duration>| match row {
        0 | 1 => fresh_round(&clients[row], n, out),
        2 => by_hand_round(&agent, &url, Some(&keys), n, out),
        3 => by_hand_round(&agent, &url, None, n, out),
        _ => bare_round(&mut bare, n, out),
    };
    for (row, s) in samples.iter_mut().enumerate() {
        round_of(row, 200, s); // connections open, tables warm
        s.clear();
    }
    for round in 0..rounds {
        // Rotate which row goes first, so that none always follows another's wake-ups.
        for k in 0..names.len() {
            let row = (round + k) % names.len();
            round_of(row, per_round, &mut samples[row]);
        }
    }
    println!(
        "Fresh lookups on loopback plain HTTP, one calling thread, {} per row in {rounds} rotating rounds, one run{}:\n",
        rounds * per_round,
        std::env::var("NOL_BENCH_NOTE").unwrap_or_default()
    );
    println!("| row | p50 | p90 | p99 | calls/s |");
    println!("|---|---|---|---|---|");
    let mut p50s = Vec::new();
    for (name, s) in names.iter().zip(samples.iter_mut()) {
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
    let verify = verify_alone(&sb, 2000);
    println!(
        "\np50 caller ÷ worker: {:.2}; caller ÷ by hand with verify: {:.2}. Above the floor (p50): \
         caller +{}, worker +{}, by hand with verify +{}; verifying one answer alone: {}.\n",
        p50s[0].as_secs_f64() / p50s[1].as_secs_f64(),
        p50s[0].as_secs_f64() / p50s[2].as_secs_f64(),
        us(p50s[0].saturating_sub(p50s[4])),
        us(p50s[1].saturating_sub(p50s[4])),
        us(p50s[2].saturating_sub(p50s[4])),
        us(verify)
    );

    let budget = Duration::from_millis(100);
    let n: usize = std::env::var("NOL_BENCH_FAULT_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    if n == 0 {
        return;
    }
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
