//! Counters and a lock-free latency histogram, cheap enough for the cache-hit path.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use super::FailOpen;

const REASONS: [&str; 15] = FailOpen::NAMES;

/// Microsecond buckets: exact below 16 µs, then 16 sub-buckets per power of two (≤ 6% error).
const SUB: u64 = 16;
const BUCKETS: usize = 16 + 16 * 40;

fn bucket(us: u64) -> usize {
    if us < SUB {
        return us as usize;
    }
    let exp = 63 - us.leading_zeros() as u64; // ≥ 4
    let mantissa = (us >> (exp - 4)) & (SUB - 1);
    ((exp - 3) * SUB + mantissa).min(BUCKETS as u64 - 1) as usize
}

fn bucket_floor(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let exp = i / SUB + 3;
    let mantissa = i % SUB;
    (SUB + mantissa) << (exp - 4)
}

pub(crate) struct Recorder {
    lookups: AtomicU64,
    cache_hits: AtomicU64,
    verified: AtomicU64,
    shared: AtomicU64,
    fail_open: [AtomicU64; REASONS.len()],
    /// Status codes 100..=599 by `code - 100`.
    http: Box<[AtomicU64]>,
    latency: Box<[AtomicU64]>,
    max_us: AtomicU64,
    shared_cache: Arc<SharedCounters>,
}

/// The shared cache tier's counters, kept by the tier (its lookups, its writer and its
/// reconnecting thread) and read with the client's.
#[derive(Default)]
pub(crate) struct SharedCounters {
    pub(crate) hits: AtomicU64,
    pub(crate) waited: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) skipped: AtomicU64,
    pub(crate) breaker_opens: AtomicU64,
    pub(crate) writes: AtomicU64,
    pub(crate) writes_dropped: AtomicU64,
    pub(crate) connections: AtomicU64,
    pub(crate) breaker_open: AtomicBool,
    /// Whether a tier exists at all.
    pub(crate) enabled: AtomicBool,
}

impl SharedCounters {
    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    fn snapshot(&self) -> SharedCacheStats {
        SharedCacheStats {
            enabled: self.enabled.load(Relaxed),
            hits: self.hits.load(Relaxed),
            waited: self.waited.load(Relaxed),
            misses: self.misses.load(Relaxed),
            refused: self.refused.load(Relaxed),
            errors: self.errors.load(Relaxed),
            skipped: self.skipped.load(Relaxed),
            breaker_opens: self.breaker_opens.load(Relaxed),
            breaker_open: self.breaker_open.load(Relaxed),
            writes: self.writes.load(Relaxed),
            writes_dropped: self.writes_dropped.load(Relaxed),
            connections: self.connections.load(Relaxed),
        }
    }
}

impl Recorder {
    pub(crate) fn new() -> Recorder {
        Recorder {
            lookups: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            verified: AtomicU64::new(0),
            shared: AtomicU64::new(0),
            fail_open: Default::default(),
            http: (0..500).map(|_| AtomicU64::new(0)).collect(),
            latency: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max_us: AtomicU64::new(0),
            shared_cache: Arc::default(),
        }
    }

    /// The shared cache tier's counters, for the tier to keep.
    pub(crate) fn shared_cache(&self) -> Arc<SharedCounters> {
        self.shared_cache.clone()
    }

    pub(crate) fn lookup(&self, elapsed: Duration, fail: Option<&FailOpen>, cached: bool) {
        self.lookups.fetch_add(1, Relaxed);
        match fail {
            Some(r) => {
                self.fail_open[r.index()].fetch_add(1, Relaxed);
            }
            None if cached => {
                self.cache_hits.fetch_add(1, Relaxed);
            }
            None => {
                self.verified.fetch_add(1, Relaxed);
            }
        }
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.latency[bucket(us)].fetch_add(1, Relaxed);
        self.max_us.fetch_max(us, Relaxed);
    }

    pub(crate) fn shared_flight(&self) {
        self.shared.fetch_add(1, Relaxed);
    }

    pub(crate) fn http_status(&self, code: u16) {
        if (100..600).contains(&code) {
            self.http[usize::from(code - 100)].fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn snapshot(&self, busy: usize, workers: usize, circuit_open: bool) -> Stats {
        let counts: Vec<u64> = self.latency.iter().map(|a| a.load(Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        let pct = |p: f64| -> Duration {
            if total == 0 {
                return Duration::ZERO;
            }
            let rank = ((total as f64) * p).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    return Duration::from_micros(bucket_floor(i));
                }
            }
            Duration::from_micros(self.max_us.load(Relaxed))
        };
        Stats {
            lookups: self.lookups.load(Relaxed),
            cache_hits: self.cache_hits.load(Relaxed),
            verified: self.verified.load(Relaxed),
            shared_flights: self.shared.load(Relaxed),
            fail_open: REASONS
                .iter()
                .zip(self.fail_open.iter())
                .map(|(n, c)| (*n, c.load(Relaxed)))
                .filter(|(_, c)| *c > 0)
                .collect(),
            http_status: self
                .http
                .iter()
                .enumerate()
                .map(|(i, c)| (i as u16 + 100, c.load(Relaxed)))
                .filter(|(_, c)| *c > 0)
                .collect(),
            latency_p50: pct(0.50),
            latency_p90: pct(0.90),
            latency_p99: pct(0.99),
            latency_max: Duration::from_micros(self.max_us.load(Relaxed)),
            workers_busy: busy,
            workers,
            circuit_open,
            shared_cache: self.shared_cache.snapshot(),
        }
    }
}

/// The shared cache tier (Redis) since the client was made; all zero without one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SharedCacheStats {
    /// A tier is configured (`redis_url`).
    pub enabled: bool,
    /// Answers read from the shared cache and verified, instead of a request.
    pub hits: u64,
    /// Answers another node (process) asked the service for while this lookup waited for it.
    pub waited: u64,
    /// Reads that found nothing.
    pub misses: u64,
    /// Entries refused: not sealed by a client of the same API key, expired, unsigned, forged,
    /// tampered, garbage, or about another number. The lookup asked the service instead.
    pub refused: u64,
    /// Operations that failed: timeouts, connection and protocol errors, failed connects.
    pub errors: u64,
    /// Lookups that did not use the tier: its breaker was open or no connection was ready.
    pub skipped: u64,
    /// Times the tier's own breaker opened.
    pub breaker_opens: u64,
    /// The tier's breaker is open now (lookups skip it).
    pub breaker_open: bool,
    /// Verified answers written for the other nodes.
    pub writes: u64,
    /// Answers not written: the queue was full, the breaker open, or no connection came.
    pub writes_dropped: u64,
    /// Connections open now.
    pub connections: u64,
}

/// A snapshot of a client's counters since it was made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stats {
    pub lookups: u64,
    pub cache_hits: u64,
    /// Decisions from an answer fetched and verified for the call.
    pub verified: u64,
    /// Lookups that joined another lookup's request for the same key.
    pub shared_flights: u64,
    /// Fail-opens by reason (only reasons that occurred).
    pub fail_open: Vec<(&'static str, u64)>,
    /// HTTP responses by status code (only codes that occurred).
    pub http_status: Vec<(u16, u64)>,
    /// Lookup latency percentiles, counted from the host's call (about 6% resolution).
    pub latency_p50: Duration,
    pub latency_p90: Duration,
    pub latency_p99: Duration,
    pub latency_max: Duration,
    pub workers_busy: usize,
    pub workers: usize,
    pub circuit_open: bool,
    /// The shared cache tier.
    pub shared_cache: SharedCacheStats,
}

impl Stats {
    /// Fail-opens for one reason (by [`FailOpen::as_str`]).
    pub fn fail_open_count(&self, reason: &str) -> u64 {
        self.fail_open
            .iter()
            .find(|(n, _)| *n == reason)
            .map_or(0, |(_, c)| *c)
    }

    pub fn http_count(&self, code: u16) -> u64 {
        self.http_status
            .iter()
            .find(|(c, _)| *c == code)
            .map_or(0, |(_, n)| *n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_close() {
        let mut last = 0;
        for us in [
            0u64, 1, 15, 16, 17, 100, 1000, 12_345, 1_000_000, 60_000_000,
        ] {
            let b = bucket(us);
            assert!(b >= last);
            last = b;
            let floor = bucket_floor(b);
            assert!(floor <= us && us - floor <= us / 15 + 1, "{us} -> {floor}");
        }
    }

    #[test]
    fn percentiles_and_reasons() {
        let r = Recorder::new();
        for i in 1..=100u64 {
            r.lookup(Duration::from_micros(i * 10), None, i % 2 == 0);
        }
        r.lookup(Duration::from_millis(5), Some(&FailOpen::Timeout), false);
        r.http_status(200);
        let s = r.snapshot(0, 4, false);
        assert_eq!(s.lookups, 101);
        assert_eq!(s.cache_hits, 50);
        assert_eq!(s.verified, 50);
        assert_eq!(s.fail_open_count("timeout"), 1);
        assert_eq!(s.http_count(200), 1);
        assert!(
            s.latency_p50 >= Duration::from_micros(470)
                && s.latency_p50 <= Duration::from_micros(510)
        );
        assert_eq!(s.latency_max, Duration::from_millis(5));
    }
}
