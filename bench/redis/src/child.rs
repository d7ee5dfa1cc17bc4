//! One SBC node: a child process holding ONE `nol_core::Client` configured for the mode, fed
//! calls by the parent over stdin (one caller index a line), looking them up on a pool of
//! threads so that a slow lookup never holds back the next call, and reporting every lookup's
//! latency and outcome as one JSON line on stdout when stdin closes.
//!
//! Protocol on stdout: `ready` once the client is made, then the report.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nol_core::{Call, Client, ClientConfig, Decision, Stats};
use nol_sandbox::SANDBOX_KEY;

use crate::trace;

/// What the client of a node is configured with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `cache_size = 0`: every call is a dip.
    NoCache,
    /// The default local cache in each process.
    PerProcess,
    /// The default local cache plus the shared Redis tier (`redis_url`).
    Shared,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::NoCache, Mode::PerProcess, Mode::Shared];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::NoCache => "no-cache",
            Mode::PerProcess => "per-process",
            Mode::Shared => "shared",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// Where the clients look things up, and how generously.
#[derive(Clone, Debug)]
pub struct Target {
    pub base_url: String,
    pub public_key_pem: String,
    pub budget_ms: u64,
    pub max_in_flight: u64,
}

/// A configuration made the way a host's configuration file makes it: setting by setting,
/// through `ClientConfig::set`, so the shared tier is reached by its documented names.
pub fn config(
    target: &Target,
    cache_size: Option<u64>,
    redis_url: Option<&str>,
) -> Result<ClientConfig, String> {
    let mut c = ClientConfig::default();
    let mut set = |name: &str, value: &str| {
        c.set(name, value)
            .map_err(|e| format!("setting {name}: {e}"))
    };
    set("api_key", SANDBOX_KEY)?;
    set("base_url", &target.base_url)?;
    set("public_key_pem", &target.public_key_pem)?;
    set("budget_ms", &target.budget_ms.to_string())?;
    set("max_in_flight", &target.max_in_flight.to_string())?;
    if let Some(size) = cache_size {
        set("cache_size", &size.to_string())?;
    }
    if let Some(url) = redis_url {
        set("redis_url", url)?;
    }
    Ok(c)
}

/// The client configuration of a mode's node.
pub fn mode_config(
    mode: Mode,
    target: &Target,
    redis_url: Option<&str>,
) -> Result<ClientConfig, String> {
    match mode {
        Mode::NoCache => config(target, Some(0), None),
        Mode::PerProcess => config(target, None, None),
        Mode::Shared => config(
            target,
            None,
            Some(redis_url.ok_or("the shared mode needs a redis URL")?),
        ),
    }
}

/// Whether this build of nol-core knows the shared tier's settings (the `redis` feature).
pub fn redis_supported() -> bool {
    ClientConfig::default()
        .set("redis_url", "redis://127.0.0.1:6390/")
        .is_ok()
}

/// What one decision was.
pub fn outcome(d: &Decision) -> Result<bool, String> {
    match d.fail_open() {
        Some(reason) => Err(reason.as_str().to_string()),
        None => Ok(d.from_cache()),
    }
}

/// The shared tier's counters of a client, by name (all zero without a tier).
pub fn shared_counters(stats: &Stats) -> BTreeMap<&'static str, u64> {
    let s = &stats.shared_cache;
    BTreeMap::from([
        ("hits", s.hits),
        ("waited", s.waited),
        ("misses", s.misses),
        ("refused", s.refused),
        ("errors", s.errors),
        ("skipped", s.skipped),
        ("breaker_opens", s.breaker_opens),
        ("writes", s.writes),
        ("writes_dropped", s.writes_dropped),
    ])
}

/// Waits (at most `within`) until a client's shared tier has a connection: a lookup never
/// waits for one to be made, so a node just started would skip the tier for its first calls,
/// which no long-running node does.
pub fn wait_for_shared(client: &Client, within: Duration) -> bool {
    let until = Instant::now() + within;
    loop {
        let s = client.stats().shared_cache;
        if !s.enabled || s.connections > 0 {
            return true;
        }
        if Instant::now() > until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// What a node saw: merged by the parent.
#[derive(Default)]
struct Tally {
    fresh_ns: Vec<u64>,
    cached_ns: Vec<u64>,
    fail_ns: Vec<u64>,
    fresh: u64,
    cached: u64,
    fail_open: BTreeMap<String, u64>,
    queue_max: Duration,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.fresh_ns.extend(other.fresh_ns);
        self.cached_ns.extend(other.cached_ns);
        self.fail_ns.extend(other.fail_ns);
        self.fresh += other.fresh;
        self.cached += other.cached;
        for (k, v) in other.fail_open {
            *self.fail_open.entry(k).or_default() += v;
        }
        self.queue_max = self.queue_max.max(other.queue_max);
    }
}

pub fn run(mode: Mode, target: &Target, redis_url: Option<&str>, threads: usize) -> i32 {
    let client = match mode_config(mode, target, redis_url).and_then(|c| {
        Client::new(c).map_err(|e| format!("making the {} client: {e}", mode.as_str()))
    }) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("nol-bench-redis child: {e}");
            return 2;
        }
    };
    if !wait_for_shared(&client, Duration::from_secs(5)) {
        eprintln!("nol-bench-redis child: no connection to the shared tier after 5 s");
    }
    let mut out = std::io::stdout().lock();
    if writeln!(out, "ready").and_then(|_| out.flush()).is_err() {
        return 2;
    }

    let (tx, rx) = mpsc::channel::<(u32, Instant)>();
    let rx = Arc::new(Mutex::new(rx));
    let workers: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let rx = rx.clone();
            let client = client.clone();
            std::thread::spawn(move || {
                let mut t = Tally::default();
                loop {
                    let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    let Ok((caller, received)) = job else { break };
                    let number = trace::number(caller);
                    let start = Instant::now();
                    let d = client.lookup(&Call::new(&number));
                    let elapsed = start.elapsed();
                    t.queue_max = t.queue_max.max(start - received);
                    let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
                    match outcome(&d) {
                        Ok(true) => {
                            t.cached += 1;
                            t.cached_ns.push(ns);
                        }
                        Ok(false) => {
                            t.fresh += 1;
                            t.fresh_ns.push(ns);
                        }
                        Err(reason) => {
                            *t.fail_open.entry(reason).or_default() += 1;
                            t.fail_ns.push(ns);
                        }
                    }
                }
                t
            })
        })
        .collect();

    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        match line.trim().parse::<u32>() {
            Ok(caller) => {
                if tx.send((caller, Instant::now())).is_err() {
                    break;
                }
            }
            Err(_) => eprintln!("nol-bench-redis child: bad line {line:?}"),
        }
    }
    drop(tx);
    let mut all = Tally::default();
    for w in workers {
        match w.join() {
            Ok(t) => all.merge(t),
            Err(_) => return 3,
        }
    }
    let stats = client.stats();
    let report = serde_json::json!({
        "fresh": all.fresh,
        "cached": all.cached,
        "fail_open": all.fail_open,
        "queue_max_us": all.queue_max.as_micros() as u64,
        "shared_flights": stats.shared_flights,
        "shared": shared_counters(&stats),
        "fresh_ns": all.fresh_ns,
        "cached_ns": all.cached_ns,
        "fail_ns": all.fail_ns,
    });
    if writeln!(out, "{report}").and_then(|_| out.flush()).is_err() {
        return 2;
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_round_trip() {
        for m in Mode::ALL {
            assert_eq!(Mode::parse(m.as_str()), Some(m));
        }
        assert_eq!(Mode::parse("ideal"), None);
    }
}
