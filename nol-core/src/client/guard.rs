//! What protects the switch and the service: a circuit breaker, the service's `Retry-After`,
//! and an optional client-side rate limit.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::config::BreakerConfig;
use super::FailOpen;

/// The longest `Retry-After` honoured, so that a hostile value cannot silence lookups for days.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// What a 429 without `Retry-After` means.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug)]
enum Circuit {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One probe is out; everyone else fails open until it returns.
    HalfOpen,
}

#[derive(Debug)]
struct State {
    circuit: Circuit,
    retry_at: Option<Instant>,
    /// Token bucket: tokens left and when it was last refilled.
    tokens: f64,
    refilled: Instant,
}

#[derive(Debug)]
pub(crate) struct Guard {
    breaker: Option<BreakerConfig>,
    per_minute: Option<u32>,
    state: Arc<Mutex<State>>,
}

/// Permission to send one request; tells the guard how it went. A probe's permit that is
/// dropped without a report (its job panicked, or was dropped unrun) lets the next request
/// probe again, so the breaker can never stay half-open.
#[derive(Debug)]
pub(crate) struct Permit {
    /// The guard's state, for a probe that has not reported yet.
    probe: Option<Arc<Mutex<State>>>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(state) = self.probe.take() {
            let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
            if matches!(s.circuit, Circuit::HalfOpen) {
                s.circuit = Circuit::Open {
                    until: Instant::now(),
                };
            }
        }
    }
}

/// `now + d`, or a century from now when that overflows.
fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86_400)))
        .unwrap_or(now)
}

impl Guard {
    pub(crate) fn new(breaker: Option<BreakerConfig>, per_minute: Option<u32>) -> Guard {
        Guard {
            breaker,
            per_minute,
            state: Arc::new(Mutex::new(State {
                circuit: Circuit::Closed { failures: 0 },
                retry_at: None,
                tokens: per_minute.map_or(0.0, f64::from),
                refilled: Instant::now(),
            })),
        }
    }

    /// May a metered request (an inbound lookup) go out now? The breaker, the service's
    /// `Retry-After` and the client-side rate limit all apply.
    pub(crate) fn admit(&self) -> Result<Permit, FailOpen> {
        self.admit_as(true)
    }

    /// May a request the service does not meter (the pre-call endpoints, CONTRACT.md: "free,
    /// not metered") go out now? Only the breaker applies: a rate limit on lookups is no
    /// reason to stop them.
    pub(crate) fn admit_unmetered(&self) -> Result<Permit, FailOpen> {
        self.admit_as(false)
    }

    fn admit_as(&self, metered: bool) -> Result<Permit, FailOpen> {
        let now = Instant::now();
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if metered && s.retry_at.is_some_and(|at| now < at) {
            return Err(FailOpen::RateLimited);
        }
        let mut probe = false;
        if self.breaker.is_some() {
            match s.circuit {
                Circuit::Closed { .. } => {}
                Circuit::Open { until } if now < until => return Err(FailOpen::CircuitOpen),
                Circuit::Open { .. } => {
                    s.circuit = Circuit::HalfOpen;
                    probe = true;
                }
                Circuit::HalfOpen => return Err(FailOpen::CircuitOpen),
            }
        }
        if let Some(limit) = self.per_minute.filter(|_| metered) {
            let per_sec = f64::from(limit) / 60.0;
            let elapsed = now.duration_since(s.refilled).as_secs_f64();
            s.tokens = (s.tokens + elapsed * per_sec).min(f64::from(limit));
            s.refilled = now;
            if s.tokens < 1.0 {
                if probe {
                    s.circuit = Circuit::Open { until: now };
                }
                return Err(FailOpen::RateLimited);
            }
            s.tokens -= 1.0;
        }
        Ok(Permit {
            probe: probe.then(|| self.state.clone()),
        })
    }

    /// Records how a request went: `None` for an answer, or the reason it failed.
    pub(crate) fn record(
        &self,
        mut permit: Permit,
        failure: Option<&FailOpen>,
        retry_after: Option<Duration>,
    ) {
        // Reported: the permit's drop has nothing left to do.
        let probe = permit.probe.take().is_some();
        let now = Instant::now();
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if matches!(failure, Some(FailOpen::RateLimited)) {
            let wait = retry_after
                .unwrap_or(DEFAULT_RETRY_AFTER)
                .min(MAX_RETRY_AFTER);
            s.retry_at = Some(later(now, wait));
        }
        let Some(cfg) = self.breaker else {
            return;
        };
        let trips = failure.is_some_and(counts_against_service);
        s.circuit = match (&s.circuit, trips, probe) {
            (_, false, true) | (Circuit::Closed { .. }, false, false) => {
                Circuit::Closed { failures: 0 }
            }
            (_, true, true) => Circuit::Open {
                until: later(now, cfg.cool_down),
            },
            (Circuit::Closed { failures }, true, false) => {
                let failures = failures + 1;
                if failures >= cfg.failures.max(1) {
                    Circuit::Open {
                        until: later(now, cfg.cool_down),
                    }
                } else {
                    Circuit::Closed { failures }
                }
            }
            // A request admitted before the circuit opened changes nothing now.
            (Circuit::Open { until }, _, false) => Circuit::Open { until: *until },
            (Circuit::HalfOpen, _, false) => Circuit::HalfOpen,
        };
    }

    pub(crate) fn is_open(&self) -> bool {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match s.circuit {
            Circuit::Open { until } => Instant::now() < until,
            Circuit::HalfOpen => true,
            Circuit::Closed { .. } => false,
        }
    }
}

/// Failures that say the service (or the way to it) is unwell, as opposed to answers it gave.
fn counts_against_service(reason: &FailOpen) -> bool {
    match reason {
        FailOpen::Timeout | FailOpen::Connect | FailOpen::Tls => true,
        FailOpen::HttpStatus(code) => *code >= 500,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_failures_then_lets_one_probe_through() {
        let g = Guard::new(
            Some(BreakerConfig {
                failures: 3,
                cool_down: Duration::from_millis(40),
            }),
            None,
        );
        for _ in 0..3 {
            let p = g.admit().unwrap();
            g.record(p, Some(&FailOpen::Timeout), None);
        }
        assert_eq!(g.admit().unwrap_err(), FailOpen::CircuitOpen);
        std::thread::sleep(Duration::from_millis(50));
        let probe = g.admit().unwrap();
        assert_eq!(g.admit().unwrap_err(), FailOpen::CircuitOpen);
        g.record(probe, Some(&FailOpen::Connect), None);
        assert_eq!(g.admit().unwrap_err(), FailOpen::CircuitOpen);
        std::thread::sleep(Duration::from_millis(50));
        let probe = g.admit().unwrap();
        g.record(probe, None, None);
        assert!(!g.is_open());
        assert!(g.admit().is_ok());
    }

    #[test]
    fn a_probe_that_never_reports_lets_the_next_one_out() {
        let g = Guard::new(
            Some(BreakerConfig {
                failures: 1,
                cool_down: Duration::from_millis(10),
            }),
            None,
        );
        let p = g.admit().unwrap();
        g.record(p, Some(&FailOpen::Timeout), None);
        std::thread::sleep(Duration::from_millis(20));
        // The probe's job panics: its permit is dropped during the unwind, unreported.
        let probe = g.admit().unwrap();
        let job = std::thread::spawn(move || {
            let _held = probe;
            panic!("the probe's job panics");
        });
        assert!(job.join().is_err());
        let next = g.admit().expect("a new probe, not circuit_open for ever");
        g.record(next, None, None);
        assert!(!g.is_open());
    }

    #[test]
    fn huge_cool_downs_and_retry_afters_do_not_panic() {
        let g = Guard::new(
            Some(BreakerConfig {
                failures: 1,
                cool_down: Duration::MAX,
            }),
            None,
        );
        let p = g.admit().unwrap();
        g.record(p, Some(&FailOpen::Timeout), Some(Duration::MAX));
        assert_eq!(g.admit().unwrap_err(), FailOpen::CircuitOpen);
        let p = g.admit_unmetered();
        assert!(p.is_err());
    }

    #[test]
    fn answers_and_client_errors_do_not_trip_it() {
        let g = Guard::new(
            Some(BreakerConfig {
                failures: 1,
                cool_down: Duration::from_secs(60),
            }),
            None,
        );
        for reason in [
            FailOpen::BadSignature,
            FailOpen::HttpStatus(401),
            FailOpen::Unusable,
        ] {
            let p = g.admit().unwrap();
            g.record(p, Some(&reason), None);
        }
        assert!(g.admit().is_ok());
    }

    #[test]
    fn can_be_turned_off() {
        let g = Guard::new(None, None);
        for _ in 0..100 {
            let p = g.admit().unwrap();
            g.record(p, Some(&FailOpen::Timeout), None);
        }
        assert!(g.admit().is_ok());
    }

    #[test]
    fn retry_after_holds_requests_back() {
        let g = Guard::new(None, None);
        let p = g.admit().unwrap();
        g.record(
            p,
            Some(&FailOpen::RateLimited),
            Some(Duration::from_millis(40)),
        );
        assert_eq!(g.admit().unwrap_err(), FailOpen::RateLimited);
        // The pre-call endpoints are not metered: a lookup's 429 does not hold them back.
        assert!(g.admit_unmetered().is_ok());
        std::thread::sleep(Duration::from_millis(50));
        assert!(g.admit().is_ok());
    }

    #[test]
    fn client_side_limit() {
        let g = Guard::new(None, Some(3));
        for _ in 0..3 {
            assert!(g.admit().is_ok());
        }
        assert_eq!(g.admit().unwrap_err(), FailOpen::RateLimited);
        // Unmetered requests neither need nor spend a token.
        assert!(g.admit_unmetered().is_ok());
    }

    #[test]
    fn the_breaker_holds_back_unmetered_requests_too() {
        let g = Guard::new(
            Some(BreakerConfig {
                failures: 1,
                cool_down: Duration::from_secs(60),
            }),
            None,
        );
        let p = g.admit().unwrap();
        g.record(p, Some(&FailOpen::Timeout), None);
        assert_eq!(g.admit_unmetered().unwrap_err(), FailOpen::CircuitOpen);
    }
}
