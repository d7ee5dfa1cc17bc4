//! The synthetic trace (seeded, so every run and every mode replays the same calls) and what
//! an ideal cache would have paid for it.
//!
//! The shape: 1M calls an hour from 200,000 callers, Zipf s = 1.0 over callers, TTL
//! 600 s. Scaled down, the shape is kept by keeping calls per TTL per caller: TTL =
//! seconds × 600 / 3600.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Zipf};

/// How calls arrive over the trace's span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrivals {
    /// A Poisson process with exactly `calls` arrivals: uniform random instants, sorted.
    Poisson,
    /// Evenly spaced.
    Even,
}

impl Arrivals {
    pub fn parse(s: &str) -> Option<Arrivals> {
        match s {
            "poisson" => Some(Arrivals::Poisson),
            "even" | "uniform" => Some(Arrivals::Even),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Arrivals::Poisson => "poisson",
            Arrivals::Even => "even",
        }
    }
}

#[derive(Clone, Debug)]
pub struct TraceSpec {
    pub callers: u32,
    pub calls: u32,
    pub seconds: f64,
    pub zipf_s: f64,
    pub arrivals: Arrivals,
    pub seed: u64,
}

/// One call: when (seconds from the start) and who (a caller index, 0 the most frequent).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TraceCall {
    pub at: f64,
    pub caller: u32,
}

/// The calls in time order.
pub fn generate(spec: &TraceSpec) -> Result<Vec<TraceCall>, String> {
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let zipf = Zipf::new(f64::from(spec.callers), spec.zipf_s).map_err(|e| {
        format!(
            "zipf over {} callers, s = {}: {e}",
            spec.callers, spec.zipf_s
        )
    })?;
    let n = spec.calls as usize;
    let mut times: Vec<f64> = match spec.arrivals {
        Arrivals::Poisson => (0..n).map(|_| rng.random::<f64>() * spec.seconds).collect(),
        Arrivals::Even => (0..n).map(|i| i as f64 * spec.seconds / n as f64).collect(),
    };
    times.sort_by(f64::total_cmp);
    Ok(times
        .into_iter()
        .map(|at| {
            // Zipf gives a rank in 1..=callers (as a float).
            let rank = zipf.sample(&mut rng) as u32;
            TraceCall {
                at,
                caller: rank.clamp(1, spec.callers) - 1,
            }
        })
        .collect())
}

/// The calling number of caller `i`: a valid US number the sandbox answers healthily
/// (`no_record`, cached like any answer). Exchanges `2NN` in New York area codes keep clear of
/// the sandbox's directory, fault (`+141555509NN`), invalid and suppressed numbers, which are
/// all `+1415555…` / `+1555…`. Room for 5,000,000 callers.
pub fn number(i: u32) -> String {
    const AREAS: [u32; 5] = [646, 212, 718, 917, 347];
    let area = AREAS[(i / 1_000_000) as usize % AREAS.len()];
    format!("+1{area}2{:06}", i % 1_000_000)
}

/// Dips an ideal cache would make: `nodes` separate caches, call `k` going to node
/// `k % nodes` (one node is a single cluster-wide cache), each with single-flight, an entry
/// living `ttl` seconds from its dip. A call dips iff its node has no unexpired entry for the
/// caller.
pub fn ideal_dips(trace: &[TraceCall], callers: u32, ttl: f64, nodes: usize) -> u64 {
    let nodes = nodes.max(1);
    let mut expires = vec![f64::NEG_INFINITY; callers as usize * nodes];
    let mut dips = 0;
    for (k, call) in trace.iter().enumerate() {
        let slot = &mut expires[call.caller as usize * nodes + k % nodes];
        if call.at >= *slot {
            dips += 1;
            *slot = call.at + ttl;
        }
    }
    dips
}

/// Distinct callers in the trace.
pub fn distinct_callers(trace: &[TraceCall], callers: u32) -> usize {
    let mut seen = vec![false; callers as usize];
    trace.iter().for_each(|c| seen[c.caller as usize] = true);
    seen.into_iter().filter(|s| *s).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> TraceSpec {
        TraceSpec {
            callers: 1000,
            calls: 5000,
            seconds: 60.0,
            zipf_s: 1.0,
            arrivals: Arrivals::Poisson,
            seed: 17,
        }
    }

    #[test]
    fn seeded_sorted_and_in_range() {
        let a = generate(&spec()).unwrap();
        assert_eq!(a, generate(&spec()).unwrap());
        assert_eq!(a.len(), 5000);
        assert!(a.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(a.iter().all(|c| c.at < 60.0 && c.caller < 1000));
        // Zipf: caller 0 is the most frequent.
        let count = |i| a.iter().filter(|c| c.caller == i).count();
        assert!(count(0) > count(10) && count(10) > 0);
    }

    #[test]
    fn numbers_are_valid_and_healthy() {
        for i in [0, 1, 999_999, 1_000_000, 4_999_999] {
            let n = number(i);
            let parsed = nol_core::E164::parse(&n, None).unwrap();
            assert!(matches!(parsed, nol_core::Caller::Number(ref e) if e.as_str() == n));
            assert!(nol_sandbox::directory::fault_for_number(&n).is_none());
            assert!(nol_sandbox::directory::lookup(&n).is_none());
            assert_ne!(n, nol_sandbox::directory::INVALID_NUMBER);
            assert_ne!(n, nol_sandbox::directory::SUPPRESSED_NUMBER);
        }
        assert_ne!(number(0), number(1_000_000));
    }

    #[test]
    fn ideal_counts_expiry_and_nodes() {
        let t = |at, caller| TraceCall { at, caller };
        let trace = [t(0.0, 0), t(1.0, 0), t(10.0, 0), t(10.5, 0), t(11.0, 1)];
        // One cache, TTL 10: dips at 0 and 10 (expired exactly then), caller 1 at 11.
        assert_eq!(ideal_dips(&trace, 2, 10.0, 1), 3);
        // Two nodes: calls 0, 2, 4 on node 0 and 1, 3 on node 1.
        assert_eq!(ideal_dips(&trace, 2, 10.0, 2), 4);
        assert_eq!(ideal_dips(&trace, 2, 0.0, 1), 5);
    }
}
