//! The fail-open client: an inbound call asks, and within its budget it gets either a verified
//! answer or `allow_with_default_policy`, whatever the network and the service do.
//!
//! The data runs one way through its modules: [`config`] → `cache` / `flight` (a hit, a
//! request to join, or one to send) → `guard` and `pool` (may it go out, and on which worker)
//! → `http` → `response` (verified and read, or a [`FailOpen`] reason) → the policy, which
//! makes the [`Decision`].
//!
//! - One deadline per lookup, counted from the host's call. A blocking lookup sends its own
//!   request (it waits anyway; two thread hand-offs fewer), every step bounded by that deadline:
//!   ureq's timeouts for connect, TLS, writes and reads (a server that drips a byte a second),
//!   and a resolver the caller waits for only until then (`getaddrinfo` runs on its own
//!   thread). An asynchronous lookup hands its request to a worker and waits for nothing.
//! - Bounded: a fixed set of workers, at most one in-flight request per cache key
//!   (single-flight), one resolver thread per host, a bounded cache. When every worker is busy a
//!   lookup fails open at once (`Busy`).
//! - A circuit breaker, the service's `Retry-After`, and an optional client-side rate limit
//!   keep a failing or strict service from costing the switch anything.

mod cache;
mod call;
pub mod config;
pub mod fail_open;
mod flight;
mod fork;
mod guard;
mod http;
mod pool;
mod response;
mod shared;
#[cfg(feature = "redis")]
mod shared_redis;
mod stats;

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quick_cache::sync::Cache;

pub use crate::settings::ConfigError;
pub use call::{Call, Context, Dnc, Enrollment, Precall};
pub use config::{
    check_base_url, ApiKey, BreakerConfig, ClientConfig, DEFAULT_BASE_URL, ENV_API_KEY,
    ENV_BASE_URL, ENV_PUBLIC_KEY,
};
pub use fail_open::FailOpen;
pub use fork::{after_fork_in_child, ForkSafeClient, MAX_FORK_DEPTH};
pub use stats::{SharedCacheStats, Stats};

use crate::decision::{Decision, Outcome};
use crate::e164::{self, Caller, E164};
use crate::policy::Policy;
use crate::signature::TrustedKeys;
use crate::stir::Stir;
use cache::{Answers, CacheKey};
use flight::{Flight, FlightResult, Flights, Joined};
use guard::Guard;
use http::Http;
use pool::{Pool, Release, Slot, Timer};

/// The callback of [`Client::lookup_async`].
pub type Done = Box<dyn FnOnce(Decision) + Send + 'static>;

/// Responses larger than this are abandoned unread.
pub const MAX_BODY_BYTES: u64 = 64 * 1024;
/// Paths of the service (CONTRACT.md).
pub const PATH_INBOUND_LOOKUP: &str = "/api/v1/inbound/lookup";
pub const PATH_PRECALL_LOOKUP: &str = "/api/v1/precall/lookup";
pub const PATH_PRECALL_ENROLL: &str = "/api/v1/precall/enroll";
/// The longest budget a single call may ask for (the top of the `budget_ms` range).
pub const MAX_BUDGET: Duration = Duration::from_secs(60);
/// How much sooner a request sent from the calling thread stops than the lookup's deadline:
/// socket timeouts are counted in kernel ticks and end on a tick (bench/fresh saw up to 8 ms
/// past the deadline at 250 Hz without it), where a waiting caller's timer is precise. With
/// it the request ends within about 5 ms either side of the deadline.
const SOCKET_TIMER_SLACK: Duration = Duration::from_millis(5);

struct Inner {
    http: Http,
    keys: TrustedKeys,
    policy: Policy,
    budget: Duration,
    default_country: Option<String>,
    answers: Answers,
    /// Raw calling-number text → its normalization, so a repeat caller does not pay the parse.
    numbers: Option<Cache<String, Result<Caller, e164::E164Error>>>,
    flights: Flights,
    pool: Pool,
    timer: Timer,
    guard: Guard,
    stats: stats::Recorder,
    /// The shared cache tier (`redis_url`), asked between `answers` and the service.
    shared: Option<shared::Tier>,
    /// [`ClientConfig::inline_requests`].
    inline_requests: bool,
}

/// The numbers.online client. Cheap to clone and to share between threads (`Send + Sync`):
/// clones share workers, connections, cache and counters.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("http", &self.inner.http)
            .field("budget", &self.inner.budget)
            .field("keys", &self.inner.keys)
            .finish_non_exhaustive()
    }
}

/// `start + budget`, the budget cut to [`MAX_BUDGET`]: never overflows.
fn deadline_after(start: Instant, budget: Duration) -> Instant {
    start.checked_add(budget.min(MAX_BUDGET)).unwrap_or(start)
}

impl Client {
    /// Makes a client, fills what the configuration leaves unset from the environment, checks
    /// every setting ([`ClientConfig::validate`]), compiles the default country's numbering
    /// patterns and starts the workers, so that no call pays a one-time cost for a number of
    /// that country (another country's patterns are compiled the first time one of its numbers
    /// is seen; [`crate::e164::warm_up`] compiles them all).
    pub fn new(mut config: ClientConfig) -> Result<Client, ConfigError> {
        config.apply_env()?;
        let key = config.api_key.clone().ok_or(ConfigError::MissingApiKey)?;
        if config.public_keys.is_empty() {
            return Err(ConfigError::MissingPublicKey);
        }
        let base = config.validate()?;
        e164::warm_up_for(config.default_country.as_deref());
        let workers = config.max_in_flight;
        let pool = Pool::new(workers)
            .map_err(|e| ConfigError::Invalid(format!("starting workers: {e}")))?;
        let numbers = (config.cache_size > 0)
            .then(|| Cache::new(usize::try_from(config.cache_size).unwrap_or(usize::MAX)));
        let stats = stats::Recorder::new();
        let warm_up_start = Instant::now();
        let shared = shared::Tier::start(&config, key.expose(), stats.shared_cache())?;
        let http = Http::new(&base, key.expose(), workers, MAX_BODY_BYTES, &config)?
            .warmed_up(config.warm_up);
        if let Some(tier) = &shared {
            // the store connects in the background, meanwhile the service's warm-up ran
            tier.warm_up(config.warm_up.saturating_sub(warm_up_start.elapsed()));
        }
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                keys: config.public_keys,
                policy: config.policy,
                budget: config.budget,
                default_country: config.default_country,
                answers: Answers::new(config.cache_size),
                numbers,
                flights: Flights::default(),
                pool,
                timer: Timer::new()
                    .map_err(|e| ConfigError::Invalid(format!("starting the timer: {e}")))?,
                guard: Guard::new(config.breaker, config.rate_limit_per_minute),
                stats,
                shared,
                inline_requests: config.inline_requests,
            }),
        })
    }

    pub fn budget(&self) -> Duration {
        self.inner.budget
    }

    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    /// The ISO 3166 country national-form numbers are read in, if configured.
    pub fn default_country(&self) -> Option<&str> {
        self.inner.default_country.as_deref()
    }

    /// Looks up an inbound call within the client's budget.
    pub fn lookup(&self, call: &Call<'_>) -> Decision {
        self.lookup_within(call, self.inner.budget)
    }

    /// Looks up an inbound call within `budget` (at most [`MAX_BUDGET`]), counted from now.
    /// Never fails and never panics for anything the network or the service does: without a
    /// usable verified answer the decision is `allow_with_default_policy`, with the reason.
    pub fn lookup_within(&self, call: &Call<'_>, budget: Duration) -> Decision {
        let start = Instant::now();
        let decision = self.inner.lookup(call, deadline_after(start, budget));
        self.inner
            .stats
            .lookup(start.elapsed(), decision.fail_open(), decision.from_cache());
        decision
    }

    /// Looks up an inbound call without blocking: `done` is called exactly once with the
    /// decision, by the end of the client's budget. It runs on the calling thread when no
    /// request is needed (cache hit, anonymous or invalid caller, open circuit, every worker
    /// busy) and otherwise on a libnol thread, so it should be quick (hand the decision to an
    /// event loop). No thread is held while the request is out.
    pub fn lookup_async(&self, call: &Call<'_>, done: impl FnOnce(Decision) + Send + 'static) {
        self.lookup_async_within(call, self.inner.budget, done)
    }

    /// [`Client::lookup_async`] within `budget` (at most [`MAX_BUDGET`]), counted from now.
    pub fn lookup_async_within(
        &self,
        call: &Call<'_>,
        budget: Duration,
        done: impl FnOnce(Decision) + Send + 'static,
    ) {
        let start = Instant::now();
        let deadline = deadline_after(start, budget);
        let inner = &self.inner;
        let pending = match inner.begin(call, deadline, Sender::Worker) {
            Begun::Done(d) => {
                inner
                    .stats
                    .lookup(start.elapsed(), d.fail_open(), d.from_cache());
                done(d);
                return;
            }
            Begun::Waiting(p) => p,
        };
        let once = Arc::new(Once {
            done: Mutex::new(Some(Box::new(done))),
            timer: Mutex::new(None),
            start,
        });
        let on_deadline = {
            let inner = inner.clone();
            let once = once.clone();
            let key = pending.key.clone();
            let local = pending.local_contact.clone();
            move || {
                let d = inner.policy.fail_open(
                    FailOpen::Timeout,
                    Some(key.number.clone()),
                    stir_of(&key),
                    local.as_deref(),
                );
                once.finish(&inner, d);
            }
        };
        let id = inner.timer.schedule(deadline, Box::new(on_deadline));
        *once.timer.lock().unwrap_or_else(|p| p.into_inner()) = Some(id);
        inner.wait_async(pending, deadline, once);
    }

    /// Pre-call check on a destination before dialing; `UNKNOWN` on any failure.
    pub fn precall(&self, from: &str, to: &str) -> Precall {
        self.precall_until(from, to, Instant::now() + self.inner.budget)
    }

    /// [`Client::precall`] by `deadline`: a host that queues the call first (Node's thread
    /// pool) passes the deadline counted from its caller's request.
    pub fn precall_until(&self, from: &str, to: &str, deadline: Instant) -> Precall {
        let (Some(from), Some(to)) = (self.inner.normalize(from), self.inner.normalize(to)) else {
            return Precall::failed(FailOpen::InvalidNumber);
        };
        let body = serde_json::json!({ "from": from.as_str(), "to": to.as_str() });
        match self.inner.request(PATH_PRECALL_LOOKUP, &body, deadline) {
            Ok(value) => Precall {
                dnc: Dnc::parse(value.get("dnc").and_then(|v| v.as_str())),
                compliance_signal: value.get("compliance_signal").cloned(),
                receipt_id: value
                    .get("receipt_id")
                    .and_then(|v| v.as_str())
                    .map(crate::sanitize::sanitize_token),
                fail_open: None,
            },
            Err(reason) => Precall::failed(reason),
        }
    }

    /// Enrols one of the caller's own verified numbers for call-provenance edges.
    pub fn enroll(&self, number: &str) -> Enrollment {
        self.enroll_until(number, Instant::now() + self.inner.budget)
    }

    /// [`Client::enroll`] by `deadline` (see [`Client::precall_until`]).
    pub fn enroll_until(&self, number: &str, deadline: Instant) -> Enrollment {
        let Some(number) = self.inner.normalize(number) else {
            return Enrollment::failed(None, FailOpen::InvalidNumber);
        };
        let body = serde_json::json!({ "number": number.as_str() });
        match self.inner.request(PATH_PRECALL_ENROLL, &body, deadline) {
            Ok(value) => Enrollment {
                enrolled: value.get("enrolled").and_then(|v| v.as_bool()) == Some(true),
                number: value
                    .get("number")
                    .and_then(|v| v.as_str())
                    .map(crate::sanitize::sanitize_token),
                fail_open: None,
            },
            Err(reason) => Enrollment::failed(Some(number.to_string()), reason),
        }
    }

    /// Counters since the client was made.
    pub fn stats(&self) -> Stats {
        let i = &self.inner;
        i.stats
            .snapshot(i.pool.busy(), i.pool.size(), i.guard.is_open())
    }
}

fn stir_of(key: &CacheKey) -> Stir {
    Stir {
        verstat: key.verstat,
        attestation: key.attestation,
    }
}

enum Begun {
    Done(Decision),
    Waiting(Pending),
}

/// Which thread sends a lookup's request: the caller's own (a blocking lookup, which waits for
/// the answer anyway) or a pool worker (an asynchronous lookup, which must not hold its caller).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sender {
    Caller,
    Worker,
}

/// A lookup waiting for a flight, with what it needs to decide or to begin again.
struct Pending {
    key: CacheKey,
    to: Option<String>,
    local_contact: Option<String>,
    flight: Flight,
}

/// A callback that runs once, whichever of the answer and the deadline comes first.
struct Once {
    done: Mutex<Option<Done>>,
    timer: Mutex<Option<u64>>,
    start: Instant,
}

impl Once {
    fn finish(&self, inner: &Inner, d: Decision) {
        let done = self.done.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(done) = done {
            if let Some(id) = self.timer.lock().unwrap_or_else(|p| p.into_inner()).take() {
                inner.timer.cancel(id);
            }
            inner
                .stats
                .lookup(self.start.elapsed(), d.fail_open(), d.from_cache());
            done(d);
        }
    }
}

impl Inner {
    fn normalize_caller(&self, raw: &str) -> Result<Caller, e164::E164Error> {
        let country = self.default_country.as_deref();
        let Some(numbers) = &self.numbers else {
            return E164::parse(raw, country);
        };
        if let Some(hit) = numbers.get(raw) {
            return hit;
        }
        let parsed = E164::parse(raw, country);
        if raw.len() <= 256 {
            numbers.insert(raw.to_string(), parsed.clone());
        }
        parsed
    }

    fn normalize(&self, raw: &str) -> Option<E164> {
        match self.normalize_caller(raw) {
            Ok(Caller::Number(n)) => Some(n),
            _ => None,
        }
    }

    /// Everything of a lookup up to the wait: a decision at once, or a flight to wait for.
    fn begin(self: &Arc<Self>, call: &Call<'_>, deadline: Instant, send: Sender) -> Begun {
        let stir = Stir::from_parts(call.verstat, call.attestation);
        let number = match self.normalize_caller(call.number) {
            Ok(Caller::Number(n)) => n,
            Ok(Caller::Anonymous) => {
                return Begun::Done(self.policy.fail_open(
                    FailOpen::Anonymous,
                    None,
                    stir,
                    call.local_contact,
                ))
            }
            Err(_) => {
                return Begun::Done(self.policy.fail_open(
                    FailOpen::InvalidNumber,
                    None,
                    stir,
                    call.local_contact,
                ))
            }
        };
        let key = CacheKey {
            number,
            context: call.context,
            verstat: stir.verstat,
            attestation: stir.attestation,
        };
        self.begin_key(key, call.to, call.local_contact, deadline, send)
    }

    /// A cache hit, or the flight for `key` joined or sent.
    fn begin_key(
        self: &Arc<Self>,
        key: CacheKey,
        to: Option<&str>,
        local_contact: Option<&str>,
        deadline: Instant,
        send: Sender,
    ) -> Begun {
        if let Some(hit) = self.answers.get(&key) {
            return Begun::Done(self.decide_cached(&key, &hit, local_contact));
        }
        let joined = match self
            .flights
            .join_or_lead(&key, deadline, || self.answers.get(&key))
        {
            Ok(joined) => joined,
            Err(hit) => return Begun::Done(self.decide_cached(&key, &hit, local_contact)),
        };
        let flight = match joined {
            Joined::Follower(flight) => {
                self.stats.shared_flight();
                flight
            }
            Joined::Leader(flight) => {
                if let Err(reason) =
                    self.start_flight(&key, to, deadline, flight.slot.clone(), send)
                {
                    self.finish_flight(&key, &flight.slot, Err(reason));
                }
                flight
            }
        };
        Begun::Waiting(Pending {
            key,
            to: to.map(str::to_string),
            local_contact: local_contact.map(str::to_string),
            flight,
        })
    }

    /// Whether a lookup that joined a flight sent with an earlier deadline than its own should
    /// begin again: that flight timed out, and this lookup still has time.
    fn should_retry(&self, p: &Pending, result: &Option<FlightResult>, deadline: Instant) -> bool {
        matches!(result, Some(Err(FailOpen::Timeout)))
            && p.flight.deadline < deadline
            && Instant::now() < deadline
    }

    fn begin_again(self: &Arc<Self>, p: &Pending, deadline: Instant, send: Sender) -> Begun {
        self.begin_key(
            p.key.clone(),
            p.to.as_deref(),
            p.local_contact.as_deref(),
            deadline,
            send,
        )
    }

    fn decide_cached(&self, key: &CacheKey, hit: &cache::Answer, local: Option<&str>) -> Decision {
        let mut d = self
            .policy
            .decide(&hit.response, key.number.clone(), stir_of(key), local);
        d.outcome = Outcome::Cached {
            age: hit.fetched_at.elapsed(),
        };
        d
    }

    /// The decision for a flight's result (`None`: the deadline came first).
    fn settle(&self, p: &Pending, result: Option<FlightResult>) -> Decision {
        let local = p.local_contact.as_deref();
        let (number, stir) = (p.key.number.clone(), stir_of(&p.key));
        match result {
            Some(Ok(answer)) => self.policy.decide(&answer.response, number, stir, local),
            Some(Err(reason)) => self.policy.fail_open(reason, Some(number), stir, local),
            None => self
                .policy
                .fail_open(FailOpen::Timeout, Some(number), stir, local),
        }
    }

    fn lookup(self: &Arc<Self>, call: &Call<'_>, deadline: Instant) -> Decision {
        // This thread waits for the answer anyway: it may send the request itself.
        let send = if self.inline_requests {
            Sender::Caller
        } else {
            Sender::Worker
        };
        let mut begun = self.begin(call, deadline, send);
        loop {
            match begun {
                Begun::Done(d) => return d,
                Begun::Waiting(p) => {
                    let result = p.flight.slot.wait_until(deadline);
                    if self.should_retry(&p, &result, deadline) {
                        begun = self.begin_again(&p, deadline, send);
                        continue;
                    }
                    return self.settle(&p, result);
                }
            }
        }
    }

    /// Finishes `once` when `pending`'s flight ends (or begins again, see `should_retry`).
    fn wait_async(self: &Arc<Self>, pending: Pending, deadline: Instant, once: Arc<Once>) {
        let inner = self.clone();
        let slot = pending.flight.slot.clone();
        slot.on_set(Box::new(move |result: &FlightResult| {
            let result = Some(result.clone());
            if inner.should_retry(&pending, &result, deadline) {
                match inner.begin_again(&pending, deadline, Sender::Worker) {
                    Begun::Done(d) => once.finish(&inner, d),
                    Begun::Waiting(next) => inner.wait_async(next, deadline, once),
                }
                return;
            }
            let d = inner.settle(&pending, result);
            once.finish(&inner, d);
        }));
    }

    fn start_flight(
        self: &Arc<Self>,
        key: &CacheKey,
        to: Option<&str>,
        deadline: Instant,
        slot: Arc<Slot<FlightResult>>,
        send: Sender,
    ) -> Result<(), FailOpen> {
        // A worker first, then the guard: a probe the breaker lets out always goes out. With a
        // shared tier the guard is asked only once the tier has no answer (in `fetch`): an
        // open breaker or a rate limit stops requests to the service, not reads of answers
        // another node already paid for.
        let worker = self.pool.try_reserve().ok_or(FailOpen::Busy)?;
        let permit = match self.shared {
            None => Some(self.guard.admit()?),
            Some(_) => None,
        };
        let mut body = serde_json::json!({
            "number": key.number.as_str(),
            "context": key.context.as_str(),
        });
        if let Some(to) = to.and_then(|t| self.normalize(t)) {
            body["to"] = to.as_str().into();
        }
        if let Some(a) = key.attestation.as_str() {
            body["attestation"] = a.into();
        }
        if let Some(v) = key.verstat.as_token() {
            body["verstat"] = v.into();
        }
        let body = serde_json::to_vec(&body).map_err(|_| FailOpen::Unparseable)?;
        // A budget too short to give up the socket timer's slack goes to a worker, whose caller
        // waits on a precise timer.
        let room = deadline.saturating_duration_since(Instant::now());
        if send == Sender::Caller && room > 4 * SOCKET_TIMER_SLACK {
            // The reservation holds this request's place in `max_in_flight` until it ends; the
            // worker thread itself stays idle. A panic below ends the flight as a failure
            // rather than leaving its followers to wait out their deadlines. A socket's own
            // timeout (SO_RCVTIMEO) ends on a kernel tick: the request on this thread stops
            // SOCKET_TIMER_SLACK sooner, so that the caller is back by its deadline.
            let stop = deadline.checked_sub(SOCKET_TIMER_SLACK).unwrap_or(deadline);
            let fetched = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.fetch(key, &body, stop, permit)
            }));
            let result = fetched.unwrap_or(Err(FailOpen::Connect));
            drop(worker);
            self.finish_flight(key, &slot, result);
            return Ok(());
        }
        let inner = self.clone();
        let job_key = key.clone();
        worker.run(Box::new(move |release: Release| {
            let result = inner.fetch(&job_key, &body, deadline, permit);
            // The worker is free before anyone has the answer.
            drop(release);
            inner.finish_flight(&job_key, &slot, result);
        }));
        Ok(())
    }

    fn finish_flight(&self, key: &CacheKey, slot: &Arc<Slot<FlightResult>>, result: FlightResult) {
        if let Ok(answer) = &result {
            self.answers.insert(key, answer);
        }
        self.flights.end(key, slot);
        slot.set(result);
    }

    /// One request: the answer, verified and read, or why not. With a shared cache tier, the
    /// tier is asked first (within `redis_budget_ms`), the guard only when the service must be
    /// asked (`permit` is the guard's admission when there is no tier), and the service's
    /// verified answer is handed to the tier afterwards (written on the tier's own thread).
    /// Only the service's own answers are recorded on the guard.
    fn fetch(
        &self,
        key: &CacheKey,
        body: &[u8],
        deadline: Instant,
        permit: Option<guard::Permit>,
    ) -> FlightResult {
        let ask = match self
            .shared
            .as_ref()
            .map(|t| t.before(key, &self.keys, deadline))
        {
            None => None,
            Some(shared::Before::Hit(answer)) => return Ok(answer),
            Some(shared::Before::TimedOut) => return Err(FailOpen::Timeout),
            Some(shared::Before::Ask(ask)) => Some(ask),
        };
        let permit = match permit.map_or_else(|| self.guard.admit(), Ok) {
            Ok(permit) => permit,
            Err(reason) => {
                if let (Some(tier), Some(ask)) = (&self.shared, ask) {
                    tier.after(ask, None);
                }
                return Err(reason);
            }
        };
        let (result, retry_after, bytes) = match self.http.post(PATH_INBOUND_LOOKUP, body, deadline)
        {
            Err(reason) => (Err(reason), None, None),
            Ok(http::Answer::Status { code, retry_after }) => {
                self.stats.http_status(code);
                (Err(response::status_reason(code)), retry_after, None)
            }
            Ok(http::Answer::Body(bytes)) => {
                self.stats.http_status(200);
                let read = response::inbound(&bytes, &self.keys, &key.number);
                (
                    read.map(|r| Arc::new(cache::Answer::new(r))),
                    None,
                    Some(bytes),
                )
            }
        };
        if let (Some(tier), Some(ask)) = (&self.shared, ask) {
            let verified = result.as_ref().ok().zip(bytes.as_deref());
            tier.after(ask, verified.map(|(answer, bytes)| (bytes, &**answer)));
        }
        self.guard
            .record(permit, result.as_ref().err(), retry_after);
        result
    }

    /// A request for the pre-call endpoints: JSON in, JSON out, on a worker, within `deadline`.
    fn request(
        self: &Arc<Self>,
        path: &'static str,
        body: &serde_json::Value,
        deadline: Instant,
    ) -> Result<serde_json::Value, FailOpen> {
        let worker = self.pool.try_reserve().ok_or(FailOpen::Busy)?;
        // Only the pre-call endpoints come this way: free and not metered.
        let permit = self.guard.admit_unmetered()?;
        let body = serde_json::to_vec(body).map_err(|_| FailOpen::Unparseable)?;
        let slot: Arc<Slot<Result<serde_json::Value, FailOpen>>> = Arc::new(Slot::new());
        let inner = self.clone();
        let out = slot.clone();
        worker.run(Box::new(move |release: Release| {
            let (result, retry_after) = match inner.http.post(path, &body, deadline) {
                Ok(answer) => {
                    let retry_after = match &answer {
                        http::Answer::Status { code, retry_after } => {
                            inner.stats.http_status(*code);
                            *retry_after
                        }
                        http::Answer::Body(_) => {
                            inner.stats.http_status(200);
                            None
                        }
                    };
                    (response::json(answer), retry_after)
                }
                Err(reason) => (Err(reason), None),
            };
            inner
                .guard
                .record(permit, result.as_ref().err(), retry_after);
            drop(release);
            out.set(result);
        }));
        slot.wait_until(deadline).unwrap_or(Err(FailOpen::Timeout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts() {
        assert_eq!(Context::parse("inbound_sms"), Some(Context::InboundSms));
        assert_eq!(Context::parse("fax"), None);
    }

    #[test]
    fn deadlines_never_overflow() {
        let now = Instant::now();
        assert_eq!(deadline_after(now, Duration::MAX), now + MAX_BUDGET);
        assert_eq!(
            deadline_after(now, Duration::from_millis(5)),
            now + Duration::from_millis(5)
        );
    }
}
