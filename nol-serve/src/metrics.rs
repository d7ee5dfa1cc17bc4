//! `/metrics` in the Prometheus text format: each tenant's libnol counters
//! ([`nol_core::Client::stats`]: lookups, verified, cached, failed open by reason, upstream
//! HTTP statuses, latency percentiles, workers, breaker state) and the server's own request
//! counters and lookup latency histogram. Labels carry tenant names, never tokens.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use nol_core::FailOpen;

use crate::State;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The endpoints counted in `nol_serve_requests_total`.
pub(crate) const ENDPOINTS: [&str; 8] = [
    "cid",
    "inbound_lookup",
    "precall_lookup",
    "precall_enroll",
    "retell",
    "vapi",
    "mcp_tool",
    "other",
];

pub(crate) struct Metrics {
    requests: [AtomicU64; ENDPOINTS.len()],
    unauthorized: AtomicU64,
    /// Cumulative counts are computed when rendered; these are per bucket (+Inf last).
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_us: AtomicU64,
}

impl Metrics {
    pub(crate) fn new(_tenants: usize) -> Metrics {
        Metrics {
            requests: Default::default(),
            unauthorized: AtomicU64::new(0),
            buckets: Default::default(),
            sum_us: AtomicU64::new(0),
        }
    }

    pub(crate) fn unauthorized(&self) {
        self.unauthorized.fetch_add(1, Relaxed);
    }

    /// One request answered by `endpoint`, with the time its lookup took as the host saw it.
    pub(crate) fn request(&self, endpoint: &str, lookup: Option<Duration>) {
        let i = ENDPOINTS
            .iter()
            .position(|e| *e == endpoint)
            .unwrap_or(ENDPOINTS.len() - 1);
        self.requests[i].fetch_add(1, Relaxed);
        if let Some(d) = lookup {
            let secs = d.as_secs_f64();
            let b = BUCKETS
                .iter()
                .position(|b| secs <= *b)
                .unwrap_or(BUCKETS.len());
            self.buckets[b].fetch_add(1, Relaxed);
            self.sum_us
                .fetch_add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX), Relaxed);
        }
    }
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Label values: tenant names come from the configuration; escape as the format asks.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The whole exposition.
pub(crate) fn render(state: &State) -> String {
    let mut out = String::with_capacity(8192);
    let stats: Vec<(String, nol_core::Stats)> = state
        .tenants
        .iter()
        .map(|t| (label(&t.name), t.client.stats()))
        .collect();
    let counter =
        |out: &mut String, name: &str, help: &str, f: &dyn Fn(&nol_core::Stats) -> u64| {
            head(out, name, "counter", help);
            for (t, s) in &stats {
                let _ = writeln!(out, "{name}{{tenant=\"{t}\"}} {}", f(s));
            }
        };
    counter(
        &mut out,
        "nol_lookups_total",
        "Inbound lookups answered by libnol.",
        &|s| s.lookups,
    );
    counter(
        &mut out,
        "nol_verified_total",
        "Lookups answered from a fresh, verified response.",
        &|s| s.verified,
    );
    counter(
        &mut out,
        "nol_cache_hits_total",
        "Lookups answered from libnol's cache of verified answers.",
        &|s| s.cache_hits,
    );
    counter(
        &mut out,
        "nol_shared_flights_total",
        "Lookups that joined another lookup's request.",
        &|s| s.shared_flights,
    );
    head(
        &mut out,
        "nol_fail_open_total",
        "counter",
        "Lookups that failed open (allow_with_default_policy), by reason.",
    );
    for (t, s) in &stats {
        for reason in FailOpen::NAMES {
            let _ = writeln!(
                out,
                "nol_fail_open_total{{tenant=\"{t}\",reason=\"{reason}\"}} {}",
                s.fail_open_count(reason)
            );
        }
    }
    head(
        &mut out,
        "nol_upstream_responses_total",
        "counter",
        "Responses from numbers.online by HTTP status.",
    );
    for (t, s) in &stats {
        for (code, n) in &s.http_status {
            let _ = writeln!(
                out,
                "nol_upstream_responses_total{{tenant=\"{t}\",code=\"{code}\"}} {n}"
            );
        }
    }
    head(
        &mut out,
        "nol_lookup_latency_seconds",
        "gauge",
        "libnol's lookup latency percentiles since start (about 6% resolution).",
    );
    for (t, s) in &stats {
        for (q, d) in [
            ("0.5", s.latency_p50),
            ("0.9", s.latency_p90),
            ("0.99", s.latency_p99),
            ("1", s.latency_max),
        ] {
            let _ = writeln!(
                out,
                "nol_lookup_latency_seconds{{tenant=\"{t}\",quantile=\"{q}\"}} {}",
                d.as_secs_f64()
            );
        }
    }
    head(
        &mut out,
        "nol_workers_busy",
        "gauge",
        "libnol workers with a request out.",
    );
    for (t, s) in &stats {
        let _ = writeln!(out, "nol_workers_busy{{tenant=\"{t}\"}} {}", s.workers_busy);
    }
    head(
        &mut out,
        "nol_workers",
        "gauge",
        "libnol workers (max_in_flight).",
    );
    for (t, s) in &stats {
        let _ = writeln!(out, "nol_workers{{tenant=\"{t}\"}} {}", s.workers);
    }
    head(
        &mut out,
        "nol_circuit_open",
        "gauge",
        "1 while the circuit breaker is open (lookups fail open at once).",
    );
    for (t, s) in &stats {
        let _ = writeln!(
            out,
            "nol_circuit_open{{tenant=\"{t}\"}} {}",
            u8::from(s.circuit_open)
        );
    }
    head(
        &mut out,
        "nol_serve_requests_total",
        "counter",
        "Authorized requests answered, by endpoint.",
    );
    for (e, n) in ENDPOINTS.iter().zip(&state.metrics.requests) {
        let _ = writeln!(
            out,
            "nol_serve_requests_total{{endpoint=\"{e}\"}} {}",
            n.load(Relaxed)
        );
    }
    head(
        &mut out,
        "nol_serve_unauthorized_total",
        "counter",
        "Requests refused with 401 (no lookup made).",
    );
    let _ = writeln!(
        out,
        "nol_serve_unauthorized_total {}",
        state.metrics.unauthorized.load(Relaxed)
    );
    head(
        &mut out,
        "nol_serve_lookup_duration_seconds",
        "histogram",
        "Time each lookup took, as the host saw it.",
    );
    let mut cumulative = 0;
    for (i, b) in state.metrics.buckets.iter().enumerate() {
        cumulative += b.load(Relaxed);
        let le = BUCKETS.get(i).map_or("+Inf".to_string(), |v| v.to_string());
        let _ = writeln!(
            out,
            "nol_serve_lookup_duration_seconds_bucket{{le=\"{le}\"}} {cumulative}"
        );
    }
    let _ = writeln!(
        out,
        "nol_serve_lookup_duration_seconds_sum {}\nnol_serve_lookup_duration_seconds_count {cumulative}",
        state.metrics.sum_us.load(Relaxed) as f64 / 1e6
    );
    out
}
