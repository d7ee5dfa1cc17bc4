//! The fail-open client: an inbound call asks, and within its budget it gets either a verified
//! answer or `allow_with_default_policy`, whatever the network and the service do.
//!
//! - One deadline per lookup, counted from the host's call: the caller waits for a worker's
//!   answer at most until then, whatever the worker is stuck in (a resolver that never answers,
//!   a server that drips a byte a second).
//! - Bounded: a fixed set of workers, at most one in-flight request per cache key
//!   (single-flight), one resolver thread per host, a bounded cache. When every worker is busy a
//!   lookup fails open at once (`Busy`).
//! - A circuit breaker, the service's `Retry-After`, and an optional client-side rate limit
//!   keep a failing or strict service from costing the switch anything.

mod fork;
mod guard;
mod http;
mod pool;
mod stats;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moka::sync::Cache;

pub use fork::{after_fork_in_child, ForkSafeClient, MAX_FORK_DEPTH};
pub use guard::BreakerConfig;
pub use stats::Stats;

use crate::e164::{self, Caller, E164};
use crate::model::LookupResponse;
use crate::policy::{Decision, FailOpen, Outcome, Policy};
use crate::signature::{self, SignatureError, TrustedKeys};
use crate::stir::{Attestation, Stir, Verstat};
use guard::Guard;
use http::{Answer, Http};
use pool::{Pool, Slot, Timer};

/// The callback of [`Client::lookup_async`].
pub type Done = Box<dyn FnOnce(Decision) + Send + 'static>;

/// Where the service lives unless configured otherwise.
pub const DEFAULT_BASE_URL: &str = "https://numbers.online";
/// Environment variables the configuration reads.
pub const ENV_API_KEY: &str = "NUMBERS_ONLINE_API_KEY";
pub const ENV_BASE_URL: &str = "NOL_BASE_URL";
pub const ENV_PUBLIC_KEY: &str = "NOL_PUBLIC_KEY";
/// Responses larger than this are abandoned unread.
pub const MAX_BODY_BYTES: u64 = 64 * 1024;
/// Paths of the service (CONTRACT.md).
pub const PATH_INBOUND_LOOKUP: &str = "/api/v1/inbound/lookup";
pub const PATH_PRECALL_LOOKUP: &str = "/api/v1/precall/lookup";
pub const PATH_PRECALL_ENROLL: &str = "/api/v1/precall/enroll";

/// An API key. It is never printed: `Debug` shows `ApiKey(<redacted>)` and no error message
/// carries it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Result<ApiKey, ConfigError> {
        let key = key.into().trim().to_string();
        if key.is_empty() {
            return Err(ConfigError::MissingApiKey);
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError::InvalidApiKey);
        }
        Ok(ApiKey(key))
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// Why a client could not be made. Never carries the API key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    MissingApiKey,
    /// The key has spaces or control characters (it would not survive an HTTP header).
    InvalidApiKey,
    MissingPublicKey,
    PublicKey(signature::KeyError),
    /// The file `NOL_PUBLIC_KEY` (or the configuration) names could not be read.
    PublicKeyFile(String),
    /// Not an `http(s)://host[:port]` URL.
    InvalidBaseUrl(String),
    /// Plain HTTP is allowed only to loopback.
    InsecureBaseUrl(String),
    InvalidDefaultCountry(String),
    /// A budget of zero, or a thread could not be started.
    Invalid(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::MissingApiKey => write!(f, "no API key (set {ENV_API_KEY})"),
            ConfigError::InvalidApiKey => {
                f.write_str("the API key has whitespace or control characters")
            }
            ConfigError::MissingPublicKey => write!(
                f,
                "no trusted public key (set {ENV_PUBLIC_KEY} to a PEM file)"
            ),
            ConfigError::PublicKey(e) => write!(f, "public key: {e}"),
            ConfigError::PublicKeyFile(e) => write!(f, "public key file: {e}"),
            ConfigError::InvalidBaseUrl(u) => write!(f, "invalid base URL {u:?}"),
            ConfigError::InsecureBaseUrl(u) => {
                write!(f, "plain http is only allowed to loopback, not {u:?}")
            }
            ConfigError::InvalidDefaultCountry(c) => write!(f, "unknown default country {c:?}"),
            ConfigError::Invalid(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Everything a [`Client`] is made from.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub api_key: Option<ApiKey>,
    pub base_url: String,
    pub public_keys: TrustedKeys,
    /// The whole time a lookup may take, counted from the host's call.
    pub budget: Duration,
    /// Cached answers (entries); 0 turns the cache off.
    pub cache_size: u64,
    pub policy: Policy,
    /// Country for national-form calling numbers (ISO 3166, e.g. `US`).
    pub default_country: Option<String>,
    /// Workers, and so the most requests (and connections) in flight at once.
    pub max_in_flight: usize,
    /// `None` turns the circuit breaker off.
    pub breaker: Option<BreakerConfig>,
    /// Client-side limit on requests per minute (60 on the free tier); `None` for no limit.
    pub rate_limit_per_minute: Option<u32>,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            api_key: None,
            base_url: DEFAULT_BASE_URL.to_string(),
            public_keys: TrustedKeys::default(),
            budget: Duration::from_millis(400),
            cache_size: 10_000,
            policy: Policy::default(),
            default_country: None,
            max_in_flight: 32,
            breaker: Some(BreakerConfig::default()),
            rate_limit_per_minute: None,
        }
    }
}

impl ClientConfig {
    /// Defaults, with the API key from `NUMBERS_ONLINE_API_KEY`, the base URL from
    /// `NOL_BASE_URL` and the trusted key from the PEM file `NOL_PUBLIC_KEY` names, where set.
    pub fn from_env() -> Result<ClientConfig, ConfigError> {
        let mut config = ClientConfig::default();
        config.apply_env()?;
        Ok(config)
    }

    /// Fills what is unset from the environment (an explicit setting wins).
    pub fn apply_env(&mut self) -> Result<(), ConfigError> {
        if self.api_key.is_none() {
            if let Ok(key) = std::env::var(ENV_API_KEY) {
                if !key.trim().is_empty() {
                    self.api_key = Some(ApiKey::new(key)?);
                }
            }
        }
        if self.base_url == DEFAULT_BASE_URL {
            if let Ok(url) = std::env::var(ENV_BASE_URL) {
                if !url.trim().is_empty() {
                    self.base_url = url.trim().to_string();
                }
            }
        }
        if self.public_keys.is_empty() {
            if let Ok(path) = std::env::var(ENV_PUBLIC_KEY) {
                if !path.trim().is_empty() {
                    let pem = std::fs::read_to_string(path.trim())
                        .map_err(|e| ConfigError::PublicKeyFile(format!("{}: {e}", path.trim())))?;
                    self.public_keys =
                        TrustedKeys::from_pem(&pem).map_err(ConfigError::PublicKey)?;
                }
            }
        }
        Ok(())
    }
}

/// Checks a base URL: `https://host[:port]`, or `http://` to loopback only.
fn check_base_url(url: &str) -> Result<String, ConfigError> {
    let url = url.trim().trim_end_matches('/');
    let bad = || ConfigError::InvalidBaseUrl(url.to_string());
    let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
    if rest.is_empty() || rest.contains(['?', '#', '@', ' ']) {
        return Err(bad());
    }
    let authority = rest.split('/').next().unwrap_or("");
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    if host.is_empty() {
        return Err(bad());
    }
    match scheme.to_ascii_lowercase().as_str() {
        "https" => Ok(url.to_string()),
        "http" => {
            let loopback = host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if loopback {
                Ok(url.to_string())
            } else {
                Err(ConfigError::InsecureBaseUrl(url.to_string()))
            }
        }
        _ => Err(bad()),
    }
}

/// The channel the call came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Context {
    #[default]
    InboundVoice,
    InboundSms,
    InboundWaba,
}

impl Context {
    pub fn as_str(self) -> &'static str {
        match self {
            Context::InboundVoice => "inbound_voice",
            Context::InboundSms => "inbound_sms",
            Context::InboundWaba => "inbound_waba",
        }
    }

    pub fn parse(s: &str) -> Option<Context> {
        match s.trim() {
            "inbound_voice" | "voice" => Some(Context::InboundVoice),
            "inbound_sms" | "sms" => Some(Context::InboundSms),
            "inbound_waba" | "waba" => Some(Context::InboundWaba),
            _ => None,
        }
    }
}

/// What the host knows about an inbound call.
#[derive(Clone, Debug, Default)]
pub struct Call<'a> {
    /// The calling number as the switch has it (E.164, national, a SIP or tel URI, a header).
    pub number: &'a str,
    pub context: Context,
    /// The receiver's own number.
    pub to: Option<&'a str>,
    /// A verstat token, parameter or header value.
    pub verstat: Option<&'a str>,
    /// `A`/`B`/`C` or an `Identity` header value.
    pub attestation: Option<&'a str>,
    /// A name the host already knows for this number: it always wins.
    pub local_contact: Option<&'a str>,
}

impl<'a> Call<'a> {
    pub fn new(number: &'a str) -> Call<'a> {
        Call {
            number,
            ..Call::default()
        }
    }
}

/// The do-not-call scrub of a pre-call check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dnc {
    Suppress,
    /// Not on a list: this is not a consent grant.
    NoMatch,
    Unknown,
}

impl Dnc {
    pub fn as_str(&self) -> &'static str {
        match self {
            Dnc::Suppress => "SUPPRESS",
            Dnc::NoMatch => "NO_MATCH",
            Dnc::Unknown => "UNKNOWN",
        }
    }
}

/// A pre-call check's answer; `UNKNOWN` with a reason when it failed.
#[derive(Clone, Debug, PartialEq)]
pub struct Precall {
    pub dnc: Dnc,
    pub compliance_signal: Option<serde_json::Value>,
    pub receipt_id: Option<String>,
    pub fail_open: Option<FailOpen>,
}

impl Precall {
    /// `UNKNOWN`, because of `reason`.
    pub fn failed(reason: FailOpen) -> Precall {
        Precall {
            dnc: Dnc::Unknown,
            compliance_signal: None,
            receipt_id: None,
            fail_open: Some(reason),
        }
    }
}

/// An enrolment's answer; `enrolled: false` with a reason when it failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enrollment {
    pub enrolled: bool,
    pub number: Option<String>,
    pub fail_open: Option<FailOpen>,
}

impl Enrollment {
    /// Not enrolled, because of `reason`.
    pub fn failed(number: Option<String>, reason: FailOpen) -> Enrollment {
        Enrollment {
            enrolled: false,
            number,
            fail_open: Some(reason),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct CacheKey {
    number: E164,
    context: Context,
    verstat: Verstat,
    attestation: Attestation,
}

#[derive(Clone)]
struct Cached {
    decision: Decision,
    fetched_at: Instant,
    ttl: Duration,
}

type FlightResult = Result<Arc<Cached>, FailOpen>;
/// A request in flight and the deadline it was sent with.
type Flight = (Arc<Slot<FlightResult>>, Instant);

/// Per-entry expiry: each answer lives exactly its `ttl_seconds`.
struct AnswerExpiry;

impl moka::Expiry<CacheKey, Arc<Cached>> for AnswerExpiry {
    fn expire_after_create(
        &self,
        _key: &CacheKey,
        value: &Arc<Cached>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

struct Inner {
    http: Http,
    keys: TrustedKeys,
    policy: Policy,
    budget: Duration,
    default_country: Option<String>,
    answers: Option<Cache<CacheKey, Arc<Cached>>>,
    /// Raw calling-number text (and default country) → its normalization, so a repeat caller
    /// does not pay the parse.
    numbers: Option<Cache<String, Result<Caller, e164::E164Error>>>,
    /// Requests in flight, with the deadline each was sent with.
    flights: Mutex<HashMap<CacheKey, Flight>>,
    pool: Pool,
    timer: Timer,
    guard: Guard,
    stats: stats::Recorder,
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

/// The longest an answer is cached, whatever `ttl_seconds` says (CONTRACT.md: 60–600).
const MAX_TTL: Duration = Duration::from_secs(600);

impl Client {
    /// Makes a client, fills what the configuration leaves unset from the environment, loads
    /// the numbering metadata and starts the workers, so that no call pays a one-time cost.
    pub fn new(mut config: ClientConfig) -> Result<Client, ConfigError> {
        config.apply_env()?;
        let key = config.api_key.clone().ok_or(ConfigError::MissingApiKey)?;
        if config.public_keys.is_empty() {
            return Err(ConfigError::MissingPublicKey);
        }
        let base = check_base_url(&config.base_url)?;
        if config.budget.is_zero() {
            return Err(ConfigError::Invalid(
                "the budget must be more than zero".into(),
            ));
        }
        e164::warm_up();
        if let Some(c) = &config.default_country {
            if let Err(e164::E164Error::UnknownRegion(_)) = E164::parse("+14155551212", Some(c)) {
                return Err(ConfigError::InvalidDefaultCountry(c.clone()));
            }
        }
        let workers = config.max_in_flight.clamp(1, 1024);
        let pool = Pool::new(workers)
            .map_err(|e| ConfigError::Invalid(format!("starting workers: {e}")))?;
        let (answers, numbers) = if config.cache_size == 0 {
            (None, None)
        } else {
            (
                Some(
                    Cache::builder()
                        .max_capacity(config.cache_size)
                        .expire_after(AnswerExpiry)
                        .build(),
                ),
                Some(Cache::builder().max_capacity(config.cache_size).build()),
            )
        };
        Ok(Client {
            inner: Arc::new(Inner {
                http: Http::new(&base, key.expose(), workers, MAX_BODY_BYTES),
                keys: config.public_keys,
                policy: config.policy,
                budget: config.budget,
                default_country: config.default_country,
                answers,
                numbers,
                flights: Mutex::new(HashMap::new()),
                pool,
                timer: Timer::new()
                    .map_err(|e| ConfigError::Invalid(format!("starting the timer: {e}")))?,
                guard: Guard::new(config.breaker, config.rate_limit_per_minute),
                stats: stats::Recorder::new(),
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

    /// Looks up an inbound call within `budget`, counted from now. Never fails and never
    /// panics for anything the network or the service does: without a usable verified answer
    /// the decision is `allow_with_default_policy`, with the reason.
    pub fn lookup_within(&self, call: &Call<'_>, budget: Duration) -> Decision {
        let start = Instant::now();
        let deadline = start + budget;
        let decision = self.inner.lookup(call, deadline);
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

    /// [`Client::lookup_async`] within `budget`, counted from now.
    pub fn lookup_async_within(
        &self,
        call: &Call<'_>,
        budget: Duration,
        done: impl FnOnce(Decision) + Send + 'static,
    ) {
        let start = Instant::now();
        let deadline = start + budget;
        let inner = &self.inner;
        let pending = match inner.begin(call, deadline) {
            Begun::Done(d) => {
                inner
                    .stats
                    .lookup(start.elapsed(), d.fail_open(), d.from_cache());
                done(d);
                return;
            }
            Begun::Waiting(p) => Arc::new(p),
        };
        let once = Arc::new(Once {
            done: Mutex::new(Some(Box::new(done))),
            timer: Mutex::new(None),
        });
        let finish = {
            let inner = inner.clone();
            let pending = pending.clone();
            let once = once.clone();
            move |result: Option<FlightResult>| {
                if let Some(done) = once.take() {
                    if let Some(id) = once.timer.lock().unwrap_or_else(|p| p.into_inner()).take() {
                        inner.timer.cancel(id);
                    }
                    let d = inner.settle(&pending, result);
                    inner
                        .stats
                        .lookup(start.elapsed(), d.fail_open(), d.from_cache());
                    done(d);
                }
            }
        };
        let on_deadline = finish.clone();
        let id = inner
            .timer
            .schedule(deadline, Box::new(move || on_deadline(None)));
        *once.timer.lock().unwrap_or_else(|p| p.into_inner()) = Some(id);
        pending.slot.on_set(Box::new(move |result: &FlightResult| {
            finish(Some(result.clone()))
        }));
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
            Ok(value) => {
                let dnc = match value.get("dnc").and_then(|v| v.as_str()) {
                    Some("SUPPRESS") => Dnc::Suppress,
                    Some("NO_MATCH") => Dnc::NoMatch,
                    _ => Dnc::Unknown,
                };
                Precall {
                    dnc,
                    compliance_signal: value.get("compliance_signal").cloned(),
                    receipt_id: value
                        .get("receipt_id")
                        .and_then(|v| v.as_str())
                        .map(crate::policy::sanitize),
                    fail_open: None,
                }
            }
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
                    .map(str::to_string),
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
    fn begin(self: &Arc<Self>, call: &Call<'_>, deadline: Instant) -> Begun {
        let stir = Stir::from_parts(call.verstat, call.attestation);
        let policy = &self.policy;
        let number = match self.normalize_caller(call.number) {
            Ok(Caller::Number(n)) => n,
            Ok(Caller::Anonymous) => {
                return Begun::Done(policy.fail_open(
                    FailOpen::Anonymous,
                    None,
                    stir,
                    call.local_contact,
                ))
            }
            Err(_) => {
                return Begun::Done(policy.fail_open(
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
        if let Some(hit) = self.answers.as_ref().and_then(|c| c.get(&key)) {
            return Begun::Done(from_cache(policy, &hit, call.local_contact));
        }

        // Join the request already out for this key, or send one. A request whose deadline
        // has passed can only end in a timeout: it is not worth joining.
        let (slot, leader) = {
            let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
            match flights.get(&key) {
                Some((slot, sent_until)) if *sent_until > Instant::now() => (slot.clone(), false),
                _ => {
                    // A flight stores its answer before it leaves this map (under this lock):
                    // one that ended since the cache miss above is in the cache now.
                    if let Some(hit) = self.answers.as_ref().and_then(|c| c.get(&key)) {
                        drop(flights);
                        return Begun::Done(from_cache(policy, &hit, call.local_contact));
                    }
                    let slot = Arc::new(Slot::new());
                    flights.insert(key.clone(), (slot.clone(), deadline));
                    (slot, true)
                }
            }
        };
        if leader {
            if let Err(reason) = self.start_flight(&key, call, stir, deadline, slot.clone()) {
                self.finish_flight(&key, &slot, Err(reason));
            }
        } else {
            self.stats.shared_flight();
        }
        Begun::Waiting(Pending {
            slot,
            number: key.number,
            stir,
            local_contact: call.local_contact.map(str::to_string),
        })
    }

    /// The decision for a flight's result (`None`: the deadline came first).
    fn settle(&self, pending: &Pending, result: Option<FlightResult>) -> Decision {
        let policy = &self.policy;
        let local = pending.local_contact.as_deref();
        match result {
            Some(Ok(answer)) => {
                let mut d = answer.decision.clone();
                policy.finish_name(&mut d, local);
                d
            }
            Some(Err(reason)) => {
                policy.fail_open(reason, Some(pending.number.clone()), pending.stir, local)
            }
            None => policy.fail_open(
                FailOpen::Timeout,
                Some(pending.number.clone()),
                pending.stir,
                local,
            ),
        }
    }

    fn lookup(self: &Arc<Self>, call: &Call<'_>, deadline: Instant) -> Decision {
        match self.begin(call, deadline) {
            Begun::Done(d) => d,
            Begun::Waiting(pending) => {
                let result = pending.slot.wait_until(deadline);
                self.settle(&pending, result)
            }
        }
    }

    fn start_flight(
        self: &Arc<Self>,
        key: &CacheKey,
        call: &Call<'_>,
        stir: Stir,
        deadline: Instant,
        slot: Arc<Slot<FlightResult>>,
    ) -> Result<(), FailOpen> {
        // A worker first, then the guard: a probe the breaker lets out always goes out.
        let worker = self.pool.try_reserve().ok_or(FailOpen::Busy)?;
        let permit = self.guard.admit()?;
        let mut body = serde_json::json!({
            "number": key.number.as_str(),
            "context": key.context.as_str(),
        });
        if let Some(to) = call.to.and_then(|t| self.normalize(t)) {
            body["to"] = to.as_str().into();
        }
        if let Some(a) = stir.attestation.as_str() {
            body["attestation"] = a.into();
        }
        if let Some(v) = stir.verstat.as_token() {
            body["verstat"] = v.into();
        }
        let body = serde_json::to_vec(&body).map_err(|_| FailOpen::Unparseable)?;
        let inner = self.clone();
        let job_key = key.clone();
        let job = Box::new(move || {
            let (result, retry_after) = inner.fetch(&job_key, &body, stir, deadline);
            inner
                .guard
                .record(permit, result.as_ref().err(), retry_after);
            inner.finish_flight(&job_key, &slot, result);
        });
        worker.run(job);
        Ok(())
    }

    fn finish_flight(&self, key: &CacheKey, slot: &Arc<Slot<FlightResult>>, result: FlightResult) {
        if let (Ok(answer), Some(cache)) = (&result, &self.answers) {
            if !answer.ttl.is_zero() {
                cache.insert(key.clone(), answer.clone());
            }
        }
        {
            let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
            if flights.get(key).is_some_and(|(s, _)| Arc::ptr_eq(s, slot)) {
                flights.remove(key);
            }
        }
        slot.set(result);
    }

    /// One request on a worker: the answer, verified, read and decided, or why not.
    fn fetch(
        &self,
        key: &CacheKey,
        body: &[u8],
        stir: Stir,
        deadline: Instant,
    ) -> (FlightResult, Option<Duration>) {
        let answer = match self.http.post(PATH_INBOUND_LOOKUP, body, deadline) {
            Ok(a) => a,
            Err(reason) => return (Err(reason), None),
        };
        let bytes = match answer {
            Answer::Body(bytes) => {
                self.stats.http_status(200);
                bytes
            }
            Answer::Status { code, retry_after } => {
                self.stats.http_status(code);
                return (Err(status_reason(code)), retry_after);
            }
        };
        let verified = match signature::verify(&bytes, &self.keys) {
            Ok(v) => v,
            Err(e) => {
                let reason = match e {
                    SignatureError::Unparseable | SignatureError::DuplicateKey => {
                        FailOpen::Unparseable
                    }
                    SignatureError::Missing => FailOpen::Unsigned,
                    SignatureError::Malformed
                    | SignatureError::WrongPrefix
                    | SignatureError::Mismatch => FailOpen::BadSignature,
                };
                return (Err(reason), None);
            }
        };
        let Ok(response) = LookupResponse::from_verified(&verified) else {
            return (Err(FailOpen::Unusable), None);
        };
        // A genuine answer about another number (a replay) must not label this call.
        if response
            .number
            .as_deref()
            .is_some_and(|n| n != key.number.as_str())
        {
            return (Err(FailOpen::Unusable), None);
        }
        let decision = self
            .policy
            .decide(&response, key.number.clone(), stir, None);
        let ttl = response
            .ttl_seconds
            .map_or(Duration::ZERO, |s| Duration::from_secs(s.into()))
            .min(MAX_TTL);
        (
            Ok(Arc::new(Cached {
                decision,
                fetched_at: Instant::now(),
                ttl,
            })),
            None,
        )
    }

    /// A request for the outbound endpoints: JSON in, JSON out, on a worker, within `deadline`.
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
        let job = Box::new(move || {
            let (result, retry_after) = match inner.http.post(path, &body, deadline) {
                Ok(Answer::Body(bytes)) => {
                    inner.stats.http_status(200);
                    (
                        serde_json::from_slice::<serde_json::Value>(&bytes)
                            .map_err(|_| FailOpen::Unparseable),
                        None,
                    )
                }
                Ok(Answer::Status { code, retry_after }) => {
                    inner.stats.http_status(code);
                    (Err(status_reason(code)), retry_after)
                }
                Err(reason) => (Err(reason), None),
            };
            inner
                .guard
                .record(permit, result.as_ref().err(), retry_after);
            out.set(result);
        });
        worker.run(job);
        slot.wait_until(deadline).unwrap_or(Err(FailOpen::Timeout))
    }
}

enum Begun {
    Done(Decision),
    Waiting(Pending),
}

struct Pending {
    slot: Arc<Slot<FlightResult>>,
    number: E164,
    stir: Stir,
    local_contact: Option<String>,
}

/// A callback that runs once, whichever of the answer and the deadline comes first.
struct Once {
    done: Mutex<Option<Done>>,
    timer: Mutex<Option<u64>>,
}

impl Once {
    fn take(&self) -> Option<Done> {
        self.done.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// Why a non-200 answer fails open.
fn status_reason(code: u16) -> FailOpen {
    if code == 429 {
        FailOpen::RateLimited
    } else {
        FailOpen::HttpStatus(code)
    }
}

fn from_cache(policy: &Policy, hit: &Cached, local_contact: Option<&str>) -> Decision {
    let mut d = hit.decision.clone();
    d.outcome = Outcome::Cached {
        age: hit.fetched_at.elapsed(),
    };
    if local_contact.is_some() {
        policy.finish_name(&mut d, local_contact);
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert!(check_base_url("https://numbers.online").is_ok());
        assert!(check_base_url("https://numbers.online/").is_ok());
        assert!(check_base_url("http://127.0.0.1:8080").is_ok());
        assert!(check_base_url("http://localhost:1").is_ok());
        assert!(check_base_url("http://[::1]:9").is_ok());
        assert_eq!(
            check_base_url("http://numbers.online"),
            Err(ConfigError::InsecureBaseUrl("http://numbers.online".into()))
        );
        assert!(check_base_url("ftp://x").is_err());
        assert!(check_base_url("numbers.online").is_err());
        assert!(check_base_url("https://user:pw@host").is_err());
    }

    #[test]
    fn api_key_is_never_printed() {
        let key = ApiKey::new("sk_live_supersecret").unwrap();
        assert!(!format!("{key:?}").contains("supersecret"));
        let config = ClientConfig {
            api_key: Some(key),
            ..ClientConfig::default()
        };
        assert!(!format!("{config:?}").contains("supersecret"));
        assert_eq!(ApiKey::new("a b"), Err(ConfigError::InvalidApiKey));
        assert_eq!(ApiKey::new(" "), Err(ConfigError::MissingApiKey));
    }

    #[test]
    fn contexts() {
        assert_eq!(Context::parse("inbound_sms"), Some(Context::InboundSms));
        assert_eq!(Context::parse("fax"), None);
    }
}
