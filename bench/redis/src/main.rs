//! Issue 17's cost benchmark, one run: a seeded synthetic trace with the issue's shape (Zipf
//! s = 1.0 over callers, TTL = span × 600/3600) replayed through 8 client processes round-robin
//! (the SBC nodes) against the sandbox, which counts its requests: dips and dollars at
//! $0.004 a dip for no cache, per-process caches and the shared Redis tier, beside the ideal
//! computed from the trace. Then the latency of a Redis hit on loopback.
//!
//! ```text
//! nol-bench-redis [run] [--callers N] [--calls M] [--seconds D] [--modes no-cache,per-process,shared]
//!                       [--ttl S] [--seed X] [--nodes 8] [--arrivals poisson|even] [--threads T]
//!                       [--budget-ms B] [--max-in-flight F] [--hit-callers K] [--redis-server PATH]
//! nol-bench-redis ideal [trace flags]     # the ideal rows only, no replay (any scale)
//! nol-bench-redis child ...              # one node; started by `run`
//! ```
//!
//! Run with `bash bench/redis/run.sh` (release build).

mod child;
mod redis;
mod replay;
mod trace;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nol_core::{Call, Client};
use nol_sandbox::{Sandbox, SandboxConfig};

use child::{Mode, Target};
use redis::RedisServer;
use replay::{ModeResult, Replay};
use trace::{Arrivals, TraceSpec};

const USAGE: &str = "\
nol-bench-redis [run] [--callers N] [--calls M] [--seconds D] [--modes no-cache,per-process,shared]
                      [--ttl S] [--seed X] [--nodes 8] [--arrivals poisson|even] [--threads T]
                      [--budget-ms B] [--max-in-flight F] [--hit-callers K] [--redis-server PATH]
nol-bench-redis ideal [trace flags]     # the ideal rows only, no replay (any scale)
nol-bench-redis child ...              # one node; started by `run`
";

/// What a dip costs (the issue's figure).
const DOLLARS_PER_DIP: f64 = 0.004;
/// The issue's target: the shared tier within this factor of the ideal.
const TARGET_RATIO: f64 = 1.02;
/// The issue's target for a Redis hit on loopback, p99.
const TARGET_HIT_P99: Duration = Duration::from_millis(1);

/// `--name value` / `--name=value` flags.
struct Flags(BTreeMap<String, String>);

impl Flags {
    fn parse(args: &[String]) -> Result<Flags, String> {
        let mut map = BTreeMap::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let name = a
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {a:?}"))?;
            let (name, value) = match name.split_once('=') {
                Some((n, v)) => (n.to_string(), v.to_string()),
                None => (
                    name.to_string(),
                    it.next()
                        .ok_or_else(|| format!("--{name} needs a value"))?
                        .clone(),
                ),
            };
            map.insert(name, value);
        }
        Ok(Flags(map))
    }

    fn take(&mut self, name: &str) -> Option<String> {
        self.0.remove(name)
    }

    fn num<T: std::str::FromStr>(&mut self, name: &str, default: T) -> Result<T, String> {
        match self.take(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{name}: not a number: {v:?}")),
        }
    }

    fn done(self) -> Result<(), String> {
        match self.0.keys().next() {
            Some(k) => Err(format!("unknown flag --{k}")),
            None => Ok(()),
        }
    }
}

fn trace_spec(f: &mut Flags) -> Result<(TraceSpec, u32), String> {
    let spec = TraceSpec {
        callers: f.num("callers", 20_000)?,
        calls: f.num("calls", 100_000)?,
        seconds: f.num("seconds", 120.0)?,
        zipf_s: f.num("zipf-s", 1.0)?,
        arrivals: match f.take("arrivals") {
            None => Arrivals::Poisson,
            Some(a) => {
                Arrivals::parse(&a).ok_or(format!("--arrivals: poisson or even, not {a}"))?
            }
        },
        seed: f.num("seed", 17)?,
    };
    if spec.callers == 0 || spec.calls == 0 || spec.seconds.is_nan() || spec.seconds <= 0.0 {
        return Err("--callers, --calls and --seconds must be positive".into());
    }
    if spec.callers > 5_000_000 {
        return Err("--callers: at most 5,000,000".into());
    }
    // The issue's TTL (600 s of an hour) shortened in proportion, whole seconds as the
    // service's `ttl_seconds` are.
    let ttl_default = (spec.seconds * 600.0 / 3600.0).round().max(1.0) as u32;
    let ttl = f.num("ttl", ttl_default)?.clamp(1, 600);
    Ok((spec, ttl))
}

/// A percentile as text: `—` for no samples.
fn pct(sorted: &[u64], p: f64) -> String {
    if sorted.is_empty() {
        "—".into()
    } else {
        fmt_ns(percentile(sorted, p))
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn fmt_ns(ns: u64) -> String {
    let us = ns as f64 / 1000.0;
    if us < 10.0 {
        format!("{us:.2} µs")
    } else if us < 1000.0 {
        format!("{us:.0} µs")
    } else if us < 100_000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{:.0} ms", us / 1000.0)
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn dollars(d: f64) -> String {
    if d >= 100.0 {
        format!("${}", thousands(d.round() as u64))
    } else {
        format!("${d:.2}")
    }
}

/// One row of the cost table.
struct Row {
    name: String,
    dips: u64,
    answers: String,
    fail_opens: String,
    p50: String,
    p99: String,
}

fn print_cost_table(rows: &[Row], calls: u32, ideal: u64) {
    println!(
        "| row | dips | $ at $0.004/dip | $/h at 1M calls/h | × ideal | answers: service / shared tier / local cache | fail-opens | lookup p50 | lookup p99 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let per_hour = r.dips as f64 / f64::from(calls) * 1e6 * DOLLARS_PER_DIP;
        println!(
            "| {} | {} | {} | {} | {:.3} | {} | {} | {} | {} |",
            r.name,
            thousands(r.dips),
            dollars(r.dips as f64 * DOLLARS_PER_DIP),
            dollars(per_hour),
            r.dips as f64 / ideal.max(1) as f64,
            r.answers,
            r.fail_opens,
            r.p50,
            r.p99,
        );
    }
}

fn ideal_rows(
    spec: &TraceSpec,
    trace: &[trace::TraceCall],
    ttl: u32,
    nodes: usize,
) -> (Vec<Row>, u64, u64) {
    let ideal = trace::ideal_dips(trace, spec.callers, f64::from(ttl), 1);
    let per_node = trace::ideal_dips(trace, spec.callers, f64::from(ttl), nodes);
    eprintln!(
        "trace: {} calls from {} distinct callers (of {})",
        thousands(trace.len() as u64),
        thousands(trace::distinct_callers(trace, spec.callers) as u64),
        thousands(u64::from(spec.callers)),
    );
    let row = |name: String, dips| Row {
        name,
        dips,
        answers: "—".into(),
        fail_opens: "—".into(),
        p50: "—".into(),
        p99: "—".into(),
    };
    (
        vec![
            row(
                "ideal: one cluster-wide cache, single-flight (from the trace)".into(),
                ideal,
            ),
            row(
                format!(
                    "ideal per node: {nodes} caches round-robin, single-flight (from the trace)"
                ),
                per_node,
            ),
        ],
        ideal,
        per_node,
    )
}

/// The 1-minute load average, for the record: tail latencies on a shared machine follow it.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn print_params(spec: &TraceSpec, ttl: u32, nodes: usize) {
    println!(
        "Trace: {} calls from {} callers over {} s ({} arrivals), Zipf s = {}, TTL {} s, seed {}, {} nodes round-robin.\n",
        thousands(u64::from(spec.calls)),
        thousands(u64::from(spec.callers)),
        spec.seconds,
        spec.arrivals.as_str(),
        spec.zipf_s,
        ttl,
        spec.seed,
        nodes
    );
}

fn cmd_ideal(mut f: Flags) -> Result<(), String> {
    let (spec, ttl) = trace_spec(&mut f)?;
    let nodes: usize = f.num("nodes", 8)?;
    f.done()?;
    let trace = trace::generate(&spec)?;
    let (rows, ideal, _) = ideal_rows(&spec, &trace, ttl, nodes.max(1));
    print_params(&spec, ttl, nodes);
    let mut all = vec![Row {
        name: "no cache (every call)".into(),
        dips: u64::from(spec.calls),
        answers: "—".into(),
        fail_opens: "—".into(),
        p50: "—".into(),
        p99: "—".into(),
    }];
    all.extend(rows);
    print_cost_table(&all, spec.calls, ideal);
    Ok(())
}

fn cmd_child(mut f: Flags) -> Result<i32, String> {
    let mode = f.take("mode").unwrap_or_default();
    let mode = Mode::parse(&mode).ok_or(format!("--mode: unknown {mode:?}"))?;
    let pem_file = f.take("pem-file").ok_or("--pem-file")?;
    let target = Target {
        base_url: f.take("base-url").ok_or("--base-url")?,
        public_key_pem: std::fs::read_to_string(&pem_file)
            .map_err(|e| format!("reading {pem_file}: {e}"))?,
        budget_ms: f.num("budget-ms", 1000)?,
        max_in_flight: f.num("max-in-flight", 64)?,
    };
    let threads: usize = f.num("threads", 16)?;
    let redis_url = f.take("redis-url");
    f.done()?;
    Ok(child::run(mode, &target, redis_url.as_deref(), threads))
}

fn mode_row(mode: Mode, dips: u64, r: &ModeResult) -> Row {
    let fails = r.fail_opens();
    Row {
        name: mode.as_str().into(),
        dips,
        answers: {
            let shared = r.shared_answers();
            format!(
                "{} / {} / {}",
                thousands(r.fresh.saturating_sub(shared)),
                thousands(shared),
                thousands(r.cached)
            )
        },
        fail_opens: if fails == 0 {
            "0".into()
        } else {
            let reasons: Vec<String> = r
                .fail_open
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            format!("{} ({})", thousands(fails), reasons.join(", "))
        },
        p50: pct(&r.latency_ns, 0.50),
        p99: pct(&r.latency_ns, 0.99),
    }
}

/// Latency of lookups answered by the shared tier, beside a fresh dip and a local-cache hit.
struct HitRow {
    name: &'static str,
    samples: Vec<u64>,
    /// Answered by the shared tier (its `hits` + `waited`).
    shared: u64,
    fresh: u64,
    cached: u64,
    fails: u64,
    dips: u64,
}

fn shared_answers(stats: &nol_core::Stats) -> u64 {
    stats.shared_cache.hits + stats.shared_cache.waited
}

impl HitRow {
    fn new(name: &'static str) -> HitRow {
        HitRow {
            name,
            samples: Vec::new(),
            shared: 0,
            fresh: 0,
            cached: 0,
            fails: 0,
            dips: 0,
        }
    }

    /// One lookup: its latency, and what answered it, from the sandbox's count and the
    /// client's shared-tier counters around it (exact: one thread, nothing else running).
    fn measure(&mut self, client: &Client, sb: &Sandbox, number: &str) {
        let dips = sb.lookups();
        let shared = shared_answers(&client.stats());
        let t = Instant::now();
        let d = client.lookup(&Call::new(number));
        let elapsed = t.elapsed();
        self.samples
            .push(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
        self.dips += sb.lookups() - dips;
        let from_shared = shared_answers(&client.stats()) > shared;
        match child::outcome(&d) {
            Err(_) => self.fails += 1,
            Ok(true) => self.cached += 1,
            Ok(false) if from_shared => self.shared += 1,
            Ok(false) => self.fresh += 1,
        }
    }
}

/// A client fills Redis with `k` callers; a second client with its local cache off looks each
/// up (Redis hits); a third with the default cache looks each up twice (a Redis hit, then a
/// local hit); beside them, a client with neither dips for `k` other callers. Its own sandbox with the directory's TTLs (60 s for these numbers), so a short
/// trace TTL cannot expire the entries mid-measurement.
fn redis_hit_latency(
    redis: &RedisServer,
    target: &Target,
    sb: &Sandbox,
    k: u32,
) -> Result<Vec<HitRow>, String> {
    const BASE: u32 = 3_000_000;
    let filled: Vec<u32> = (BASE..BASE + k).collect();
    let warm = BASE + k;
    let unfilled: Vec<u32> = (BASE + k + 1..BASE + 2 * k + 1).collect();
    let url = redis.url();
    let make = |cache: Option<u64>, redis: bool| -> Result<Client, String> {
        let c = child::config(target, cache, redis.then_some(url.as_str()))?;
        Client::new(c).map_err(|e| e.to_string())
    };
    redis.flush()?;
    let filler = make(None, true)?;
    child::wait_for_shared(&filler, Duration::from_secs(5));
    for c in filled.iter().chain([&warm]) {
        filler.lookup(&Call::new(&trace::number(*c)));
    }
    // Writes may be behind: wait (a little) until every key is there.
    let until = Instant::now() + Duration::from_secs(3);
    while redis.keys().unwrap_or(0) < u64::from(k) + 1 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!(
        "redis hits: {} lookups filled Redis with {} keys",
        k + 1,
        redis.keys().unwrap_or(0)
    );

    let fresh = make(Some(0), false)?;
    for c in BASE + 2 * k + 1..BASE + 2 * k + 21 {
        fresh.lookup(&Call::new(&trace::number(c)));
    }
    let shared_only = make(Some(0), true)?;
    let layered = make(None, true)?;
    for c in [&shared_only, &layered] {
        child::wait_for_shared(c, Duration::from_secs(5));
        c.lookup(&Call::new(&trace::number(warm)));
    }
    // The three first lookups of a caller one after the other, caller by caller, so that the
    // machine's load (other builds) falls on each alike; then the local hits.
    let mut rows = [
        HitRow::new("fresh lookup, a dip (cache_size = 0, no Redis)"),
        HitRow::new("Redis hit, local cache off (cache_size = 0 + redis_url)"),
        HitRow::new("Redis hit, first lookup (default cache + redis_url)"),
        HitRow::new("local-cache hit, second lookup (same client)"),
    ];
    let number = |c: u32| trace::number(c);
    for (f, u) in filled.iter().zip(&unfilled) {
        rows[0].measure(&fresh, sb, &number(*u));
        rows[1].measure(&shared_only, sb, &number(*f));
        rows[2].measure(&layered, sb, &number(*f));
    }
    for f in &filled {
        rows[3].measure(&layered, sb, &number(*f));
    }
    for r in &mut rows {
        r.samples.sort_unstable();
    }
    Ok(rows.into())
}

fn cmd_run(mut f: Flags) -> Result<(), String> {
    let (spec, ttl) = trace_spec(&mut f)?;
    let nodes: usize = f.num("nodes", 8)?;
    let nodes = nodes.max(1);
    let threads: usize = f.num("threads", 16)?;
    let modes: Vec<Mode> = f
        .take("modes")
        .unwrap_or_else(|| "no-cache,per-process,shared".into())
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| Mode::parse(s.trim()).ok_or(format!("--modes: unknown mode {s:?}")))
        .collect::<Result<_, _>>()?;
    let budget_ms: u64 = f.num("budget-ms", 1000)?;
    let max_in_flight: u64 = f.num("max-in-flight", 64)?;
    let hit_callers: u32 = f.num("hit-callers", 2000)?;
    let redis_program = f
        .take("redis-server")
        .unwrap_or_else(|| "redis-server".into());
    f.done()?;

    let load_start = load_average();
    let trace = trace::generate(&spec)?;
    let (mut rows, ideal, per_node_ideal) = ideal_rows(&spec, &trace, ttl, nodes);
    let exe = std::env::current_exe().map_err(|e| format!("finding this program: {e}"))?;
    let sb = Sandbox::start(SandboxConfig {
        ttl_override: Some(ttl),
        ..SandboxConfig::default()
    })
    .map_err(|e| format!("starting the sandbox: {e}"))?;
    let dir: PathBuf = std::env::temp_dir().join(format!("nol-bench-redis-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let pem_file = sb
        .write_public_key(&dir)
        .map_err(|e| format!("writing the public key: {e}"))?;
    let target = Target {
        base_url: sb.url(),
        public_key_pem: sb.public_key_pem(),
        budget_ms,
        max_in_flight,
    };

    let mut notes: Vec<String> = Vec::new();
    let supported = child::redis_supported();
    let wants_redis = modes.contains(&Mode::Shared) || hit_callers > 0;
    let redis = if !supported {
        if wants_redis {
            notes.push(
                "shared tier: skipped, this nol-core has no `redis_url` setting (the `redis` feature is off or not there yet)"
                    .into(),
            );
        }
        None
    } else if wants_redis {
        Some(RedisServer::start(&redis_program)?)
    } else {
        None
    };
    let redis_url = redis.as_ref().map(|r| r.url());
    let replay = Replay {
        exe: &exe,
        target: &target,
        pem_file: &pem_file,
        redis_url: redis_url.as_deref(),
        nodes,
        threads,
    };

    let mut shared_dips = None;
    let mut per_process_dips = None;
    for mode in modes {
        if mode == Mode::Shared && redis.is_none() {
            continue;
        }
        if let (Mode::Shared, Some(r)) = (mode, &redis) {
            r.flush()?;
        }
        eprintln!(
            "{}: replaying {} calls over {} s through {nodes} nodes ...",
            mode.as_str(),
            thousands(trace.len() as u64),
            spec.seconds
        );
        let before = sb.lookups();
        let result = replay.run(mode, &trace)?;
        let dips = sb.lookups() - before;
        eprintln!(
            "{}: {} dips in {:.1} s",
            mode.as_str(),
            thousands(dips),
            result.wall.as_secs_f64()
        );
        let mut note = format!(
            "{}: answers from the service or the shared tier p50 {} p99 {}, local-cache hits p50 {} p99 {}; feeder at most {} behind the trace, a call waited at most {} for a lookup thread, {} in-process single-flight joins",
            mode.as_str(),
            pct(&result.fresh_ns, 0.50),
            pct(&result.fresh_ns, 0.99),
            pct(&result.cached_ns, 0.50),
            pct(&result.cached_ns, 0.99),
            fmt_ns(result.feed_late_max.as_nanos() as u64),
            fmt_ns(result.queue_max.as_nanos() as u64),
            thousands(result.shared_flights),
        );
        let counters: Vec<String> = result
            .shared
            .iter()
            .filter(|(_, v)| **v > 0)
            .map(|(k, v)| format!("{k} {}", thousands(*v)))
            .collect();
        if !counters.is_empty() {
            note.push_str(&format!("; shared tier: {}", counters.join(", ")));
        }
        if let (Mode::Shared, Some(r)) = (mode, &redis) {
            note.push_str(&format!(
                "; {} keys in Redis at the end",
                thousands(r.keys().unwrap_or(0))
            ));
        }
        notes.push(note);
        match mode {
            Mode::Shared => shared_dips = Some(dips),
            Mode::PerProcess => per_process_dips = Some(dips),
            Mode::NoCache => {}
        }
        rows.push(mode_row(mode, dips, &result));
    }

    let hits = match (&redis, hit_callers) {
        (Some(r), k) if k > 0 => {
            eprintln!("redis hits: measuring with {k} callers ...");
            // Its own sandbox: the directory's own TTLs, and its own count of dips.
            let hsb = Sandbox::start(SandboxConfig::default())
                .map_err(|e| format!("starting the sandbox: {e}"))?;
            let htarget = Target {
                base_url: hsb.url(),
                public_key_pem: hsb.public_key_pem(),
                ..target.clone()
            };
            Some(redis_hit_latency(r, &htarget, &hsb, k)?)
        }
        _ => None,
    };
    drop(redis);
    let _ = std::fs::remove_dir_all(&dir);
    notes.push(format!(
        "load average (1 min) at the start {load_start}, at the end {} ({} CPUs)",
        load_average(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    ));

    print_params(&spec, ttl, nodes);
    print_cost_table(&rows, spec.calls, ideal);
    println!();
    if let Some(dips) = shared_dips {
        let ratio = dips as f64 / ideal.max(1) as f64;
        println!(
            "Shared tier / ideal: {} / {} = {ratio:.3}: {} (target ≤ {TARGET_RATIO}×).",
            thousands(dips),
            thousands(ideal),
            if ratio <= TARGET_RATIO {
                "PASS"
            } else {
                "FAIL"
            }
        );
    } else {
        println!("Shared tier / ideal: not measured.");
    }
    if let Some(dips) = per_process_dips {
        println!(
            "Per-process / per-node ideal: {} / {} = {:.3} (sanity: near 1).",
            thousands(dips),
            thousands(per_node_ideal),
            dips as f64 / per_node_ideal.max(1) as f64
        );
    }
    for n in &notes {
        println!("- {n}");
    }
    if let Some(hits) = hits {
        println!(
            "\nRedis hit latency on loopback, one calling thread, {hit_callers} callers each:\n"
        );
        println!(
            "| lookup | p50 | p99 | max | answers: service / shared tier / local cache / fail-open | dips |"
        );
        println!("|---|---|---|---|---|---|");
        for h in &hits {
            println!(
                "| {} | {} | {} | {} | {} / {} / {} / {} | {} |",
                h.name,
                fmt_ns(percentile(&h.samples, 0.50)),
                fmt_ns(percentile(&h.samples, 0.99)),
                fmt_ns(h.samples.last().copied().unwrap_or(0)),
                thousands(h.fresh),
                thousands(h.shared),
                thousands(h.cached),
                thousands(h.fails),
                thousands(h.dips)
            );
        }
        if let Some(h) = hits.get(1) {
            let p99 = percentile(&h.samples, 0.99);
            let all_shared = h.shared == h.samples.len() as u64;
            let pass = Duration::from_nanos(p99) < TARGET_HIT_P99 && all_shared && h.fails == 0;
            println!(
                "\nRedis hit p99 (local cache off): {}: {} (target < 1 ms, every lookup a shared-tier hit).",
                fmt_ns(p99),
                if pass { "PASS" } else { "FAIL" }
            );
        }
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.first().map(String::as_str) {
        Some(c @ ("run" | "ideal" | "child")) => (c, &args[1..]),
        Some("-h" | "--help") => {
            print!("{USAGE}");
            return;
        }
        _ => ("run", &args[..]),
    };
    let result = Flags::parse(rest).and_then(|f| match cmd {
        "child" => cmd_child(f),
        "ideal" => cmd_ideal(f).map(|_| 0),
        _ => cmd_run(f).map(|_| 0),
    });
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("nol-bench-redis: {e}");
            std::process::exit(2);
        }
    }
}
