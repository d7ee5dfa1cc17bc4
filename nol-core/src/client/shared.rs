//! The shared cache tier: a second cache, in a store every libnol client of a cluster shares
//! (Redis: `shared_redis.rs`, with the `redis` cargo feature), behind the small [`SharedCache`]
//! trait. It sits between a client's own cache and the service: a lookup that misses locally
//! asks the tier before it asks the service, and an answer the service gives is written for the
//! other nodes after the caller has it.
//!
//! What it promises, whatever the store does:
//!
//! - **Trust.** An entry changes a call only if it passes every check an answer from the
//!   service passes (Ed25519 signature by a trusted key, the typed model, about the number asked
//!   for) and more: it is sealed (HMAC-SHA256, keyed from the API key) together with its key
//!   and its expiry, so a store that is poisoned or compromised cannot move a genuine answer to
//!   another key (another verstat, attestation or context, whose answer the service makes
//!   differently) nor keep it past its TTL. Whatever it does, it can at most withhold an answer:
//!   a value that fails a check is `refused` and the lookup asks the service.
//! - **TTL.** An entry expires with the service's `ttl_seconds` (at most 600 s), counted from
//!   when the service answered; a reader keeps its copy only for what is left of it.
//! - **Budget.** The tier spends at most `redis_budget_ms` of a lookup (and never past the
//!   lookup's deadline), every operation bounded by it; waiting for another node's request is
//!   the one exception, and it ends at the lookup's own deadline. A lookup never waits for a
//!   connection to be made, and writes happen on the tier's own thread after the caller has its
//!   answer. Failures (timeouts, connection and protocol errors) open the tier's own breaker:
//!   lookups skip it for a cool-down, then one probe.
//! - **Single flight across nodes.** A lookup that misses takes a short lease (`SET NX PX`, for
//!   the rest of its budget) and asks the service; another node that misses the same key while
//!   the lease is held waits for the answer to appear instead of asking too, and asks itself if
//!   the lease goes without one.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ring::hmac;

use super::cache::{Answer, CacheKey};
use super::config::ClientConfig;
use super::response;
use super::stats::SharedCounters;
use crate::model::MAX_TTL_SECONDS;
use crate::settings::ConfigError;
use crate::signature::TrustedKeys;
use crate::stir::Verstat;

/// Failures in a row that open the tier's breaker.
pub(crate) const BREAKER_FAILURES: u32 = 3;
/// How long an open breaker skips the tier before one probe.
pub(crate) const BREAKER_COOL_DOWN: Duration = Duration::from_secs(1);
/// A probe that has not reported by then no longer holds the others back.
const PROBE_WAIT: Duration = Duration::from_secs(1);
/// How often a lookup waiting for another node's answer looks for it.
const POLL: Duration = Duration::from_millis(2);
/// Answers waiting to be written; more are dropped (the next lookup writes them again).
const WRITE_QUEUE: usize = 256;

/// One operation's limits.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) struct Op {
    /// It ends by then, whatever the store does.
    pub(crate) until: Instant,
    /// Whether it may wait (until `until`) for a connection when none is ready. Lookups never
    /// do; the writer does.
    pub(crate) wait: bool,
}

/// What a read found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Read {
    /// The value, if there is one.
    pub(crate) value: Option<Vec<u8>>,
    /// How long the store keeps it (`None`: no expiry is set).
    pub(crate) ttl: Option<Duration>,
    /// Whether the lease asked about is held.
    pub(crate) leased: bool,
}

/// Why an operation did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// No connection was ready (one is being made), or no time was left: not the store's fault.
    NotReady,
    /// A timeout, a connection or protocol error, or an answer that makes no sense.
    Failed,
}

/// A store shared by the nodes of a cluster. Every operation ends by its [`Op::until`].
pub(crate) trait SharedCache: Send + Sync {
    /// Whether `lease` is held (when asked), then the value under `key` and how long it has
    /// left, in that order and in one round trip: a lease seen released means its holder's
    /// value, if it wrote one, is there.
    fn read(&self, key: &str, lease: Option<&str>, op: Op) -> Result<Read, Failure>;
    /// Takes `lease` for `ttl` unless it is held (`SET NX PX`): whether this caller holds it.
    fn lease(&self, lease: &str, token: &str, ttl: Duration, op: Op) -> Result<bool, Failure>;
    /// Stores `value` under `key` for `ttl`, then releases `release` (a lease and its holder's
    /// token), in that order.
    fn put(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
        release: Option<(&str, &str)>,
        op: Op,
    ) -> Result<(), Failure>;
    /// Releases `lease` if `token` still holds it: a lease that expired and was taken by
    /// another node is that node's, and is left alone.
    fn release(&self, lease: &str, token: &str, op: Op) -> Result<(), Failure>;
    /// Waits at most `within` for a connection to be ready (the warm-up): whether one is.
    fn wait_ready(&self, within: Duration) -> bool {
        let _ = within;
        true
    }
}

#[derive(Debug)]
enum Circuit {
    Closed(u32),
    Open(Instant),
    /// One probe is out since then.
    HalfOpen(Instant),
}

/// The tier's own circuit breaker, shared with the store (whose reconnecting thread reports
/// its connects and waits while it is open).
pub(crate) struct Breaker {
    circuit: Mutex<Circuit>,
    counters: Arc<SharedCounters>,
}

#[cfg_attr(not(feature = "redis"), allow(dead_code))]
impl Breaker {
    pub(crate) fn new(counters: Arc<SharedCounters>) -> Breaker {
        Breaker {
            circuit: Mutex::new(Circuit::Closed(0)),
            counters,
        }
    }

    fn circuit(&self) -> std::sync::MutexGuard<'_, Circuit> {
        self.circuit.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// May an operation go to the store now? After the cool-down, one probe may.
    pub(crate) fn allows(&self) -> bool {
        let now = Instant::now();
        let mut c = self.circuit();
        match *c {
            Circuit::Closed(_) => true,
            Circuit::Open(until) if now < until => false,
            Circuit::HalfOpen(since) if now.duration_since(since) < PROBE_WAIT => false,
            Circuit::Open(_) | Circuit::HalfOpen(_) => {
                *c = Circuit::HalfOpen(now);
                true
            }
        }
    }

    /// Until when it is open, if it is (a probe may go out once this has passed).
    pub(crate) fn open_until(&self) -> Option<Instant> {
        match *self.circuit() {
            Circuit::Open(until) if Instant::now() < until => Some(until),
            _ => None,
        }
    }

    /// An operation succeeded: closed, the count of failures cleared.
    pub(crate) fn success(&self) {
        let mut c = self.circuit();
        if !matches!(*c, Circuit::Closed(0)) {
            *c = Circuit::Closed(0);
            self.counters.breaker_open.store(false, Ordering::Relaxed);
        }
    }

    /// A connection was made: that closes an open breaker (the probe went through), but does
    /// not clear the failures of a closed one (a store that accepts connections and then times
    /// out must still open it).
    pub(crate) fn connected(&self) {
        let mut c = self.circuit();
        if !matches!(*c, Circuit::Closed(_)) {
            *c = Circuit::Closed(0);
            self.counters.breaker_open.store(false, Ordering::Relaxed);
        }
    }

    /// An operation or a connect failed.
    pub(crate) fn failure(&self) {
        let now = Instant::now();
        let mut c = self.circuit();
        let open = match *c {
            Circuit::Closed(n) if n + 1 < BREAKER_FAILURES => {
                *c = Circuit::Closed(n + 1);
                false
            }
            Circuit::Closed(_) | Circuit::HalfOpen(_) => true,
            // Admitted before it opened: changes nothing now.
            Circuit::Open(_) => false,
        };
        if open {
            *c = Circuit::Open(now + BREAKER_COOL_DOWN);
            self.counters.breaker_open.store(true, Ordering::Relaxed);
            SharedCounters::add(&self.counters.breaker_opens);
        }
    }
}

/// The seal on every value: HMAC-SHA256 over the key it is stored under, its expiry and the
/// body, keyed from the API key, so only clients of the same API key can write an entry the
/// others accept, and only under its own key, until its own expiry.
#[derive(Clone)]
struct Seal(hmac::Key);

/// A sealed value: `MAGIC`, expiry (Unix milliseconds, big-endian), tag, body.
const MAGIC: &[u8; 4] = b"NOL1";
const TAG_LEN: usize = 32;
const HEADER_LEN: usize = MAGIC.len() + 8 + TAG_LEN;
/// The longest value the tier reads: a sealed body of at most `MAX_BODY_BYTES` (what a service
/// answer may be). A store reads at most one byte more, and a longer value is refused: a
/// poisoned Redis cannot make a node hold or hash hundreds of megabytes.
pub(crate) const MAX_VALUE_LEN: usize = HEADER_LEN + super::MAX_BODY_BYTES as usize;

/// A value derived from the API key for `label`.
fn derive(api_key: &str, label: &[u8]) -> hmac::Tag {
    hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, api_key.as_bytes()),
        label,
    )
}

impl Seal {
    fn new(api_key: &str) -> Seal {
        let key = derive(api_key, b"libnol shared cache: seal v1");
        Seal(hmac::Key::new(hmac::HMAC_SHA256, key.as_ref()))
    }

    fn message(name: &str, expires_ms: u64, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::with_capacity(name.len() + 9 + body.len());
        m.extend_from_slice(name.as_bytes());
        m.push(0);
        m.extend_from_slice(&expires_ms.to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    fn seal(&self, name: &str, expires_ms: u64, body: &[u8]) -> Vec<u8> {
        let tag = hmac::sign(&self.0, &Seal::message(name, expires_ms, body));
        let mut v = Vec::with_capacity(HEADER_LEN + body.len());
        v.extend_from_slice(MAGIC);
        v.extend_from_slice(&expires_ms.to_be_bytes());
        v.extend_from_slice(tag.as_ref());
        v.extend_from_slice(body);
        v
    }

    /// The expiry and body of a value sealed under `name`, or `None`.
    fn open<'a>(&self, name: &str, value: &'a [u8]) -> Option<(u64, &'a [u8])> {
        if value.len() < HEADER_LEN || &value[..MAGIC.len()] != MAGIC {
            return None;
        }
        let (expiry, rest) = value[MAGIC.len()..].split_at(8);
        let (tag, body) = rest.split_at(TAG_LEN);
        let expires_ms = u64::from_be_bytes(expiry.try_into().ok()?);
        hmac::verify(&self.0, &Seal::message(name, expires_ms, body), tag).ok()?;
        Some((expires_ms, body))
    }
}

/// Now, in Unix milliseconds.
fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Whole milliseconds of `d`, at least 1.
fn ms_at_least_one(d: Duration) -> Duration {
    Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1))
}

/// The keys of one answer: its value and its lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Names {
    pub(crate) value: String,
    pub(crate) lease: String,
}

fn verstat_name(v: Verstat) -> &'static str {
    match v {
        Verstat::Passed => "passed",
        Verstat::Failed => "failed",
        Verstat::NoValidation => "no_validation",
        Verstat::Unknown => "unknown",
    }
}

/// A token that names this lease's holder (for someone reading the store).
fn lease_token() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{:x}-{:x}-{:x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        wall_ms()
    )
}

/// Why a value is not used.
enum Rejected {
    /// Sealed by a client of the same API key, and past its sealed expiry: a miss.
    Expired,
    /// Not sealed, sealed for another key or by another API key's client, or not a verified
    /// answer about the number asked for.
    Refused,
}

/// What a lookup does after asking the tier.
pub(crate) enum Before {
    /// A verified answer from the tier: no request.
    Hit(Arc<Answer>),
    /// Ask the service, then hand the outcome to [`Tier::after`].
    Ask(Ask),
    /// The deadline passed while another node's request was out.
    TimedOut,
}

/// A lookup that asks the service: its keys and whether it holds the lease.
pub(crate) struct Ask {
    names: Names,
    leased: bool,
    /// This lookup's lease token (held, or perhaps held, when `leased`).
    token: String,
}

/// A write for the tier's thread.
enum Write {
    Put {
        names: Names,
        body: Vec<u8>,
        expires_at: Instant,
        release: bool,
        token: String,
    },
    /// A lease and its holder's token.
    Release(String, String),
}

/// What the writer thread needs.
struct Writer {
    store: Arc<dyn SharedCache>,
    breaker: Arc<Breaker>,
    counters: Arc<SharedCounters>,
    seal: Seal,
    timeout: Duration,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

/// The shared cache tier of one client.
pub(crate) struct Tier {
    store: Arc<dyn SharedCache>,
    breaker: Arc<Breaker>,
    counters: Arc<SharedCounters>,
    budget: Duration,
    prefix: String,
    /// Derived from the API key: clients of different keys (tiers of service, tenants) never
    /// share entries.
    namespace: String,
    seal: Seal,
    writes: Option<SyncSender<Write>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    /// The writer thread, and what tells of its end (in a mutex only to be `Sync`).
    writer: Mutex<Option<(std::thread::JoinHandle<()>, Receiver<()>)>>,
    pid: u32,
    /// What is printed: the store's address without credentials.
    shown: String,
}

impl fmt::Debug for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedCache")
            .field("store", &self.shown)
            .field("prefix", &self.prefix)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

/// How long a background operation (a write, a connect) may take: longer than a lookup's
/// share, since no call waits for it, and short enough that dropping a client stays quick.
pub(crate) fn background_timeout(budget: Duration) -> Duration {
    (budget * 5).clamp(Duration::from_millis(100), Duration::from_secs(1))
}

impl Tier {
    /// The warm-up (`warm_up_ms`): waits at most `within` for the store's first connection,
    /// so that a new client's first lookups can read what other nodes wrote (a client skips
    /// the tier until it has a connection). Whether one is ready.
    pub(crate) fn warm_up(&self, within: Duration) -> bool {
        !within.is_zero() && self.store.wait_ready(within)
    }

    /// The tier `config` asks for, if any (`redis_url`), its store connecting in the
    /// background: nothing here waits for the store.
    pub(crate) fn start(
        config: &ClientConfig,
        api_key: &str,
        counters: Arc<SharedCounters>,
    ) -> Result<Option<Tier>, ConfigError> {
        let Some(url) = &config.redis_url else {
            return Ok(None);
        };
        #[cfg(feature = "redis")]
        {
            let breaker = Arc::new(Breaker::new(counters.clone()));
            let store = super::shared_redis::Redis::start(
                url,
                config.redis_budget,
                config.max_in_flight,
                breaker.clone(),
                counters.clone(),
            )?;
            let shown = url.redacted().to_string();
            Tier::new(
                Arc::new(store),
                breaker,
                counters,
                config.redis_budget,
                &config.redis_key_prefix,
                api_key,
                shown,
            )
            .map(Some)
        }
        #[cfg(not(feature = "redis"))]
        {
            let _ = (url, api_key, counters);
            Err(ConfigError::InvalidValue {
                setting: "redis_url",
                reason: "libnol was built without Redis (the `redis` cargo feature)",
            })
        }
    }

    /// The tier over `store`, with its writer thread.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn new(
        store: Arc<dyn SharedCache>,
        breaker: Arc<Breaker>,
        counters: Arc<SharedCounters>,
        budget: Duration,
        prefix: &str,
        api_key: &str,
        shown: String,
    ) -> Result<Tier, ConfigError> {
        let seal = Seal::new(api_key);
        let namespace: String = derive(api_key, b"libnol shared cache: namespace v1").as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let (writes, jobs) = mpsc::sync_channel(WRITE_QUEUE);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (exited, exit) = mpsc::sync_channel::<()>(0);
        let writer = Writer {
            store: store.clone(),
            breaker: breaker.clone(),
            counters: counters.clone(),
            seal: seal.clone(),
            timeout: background_timeout(budget),
            stop: stop.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("nol-shared-write".into())
            .spawn(move || {
                let _exited = exited;
                writer.run(&jobs);
            })
            .map_err(|e| ConfigError::Invalid(format!("starting the shared cache writer: {e}")))?;
        counters.enabled.store(true, Ordering::Relaxed);
        Ok(Tier {
            store,
            breaker,
            counters,
            budget,
            prefix: prefix.to_string(),
            namespace,
            seal,
            writes: Some(writes),
            stop,
            writer: Mutex::new(Some((thread, exit))),
            pid: std::process::id(),
            shown,
        })
    }

    /// The keys of `key`'s answer: `{prefix}{<number>}:<namespace>:<context>:<verstat>:
    /// <attestation>`, the number a Redis Cluster hash tag so that value and lease share a slot.
    pub(crate) fn names(&self, key: &CacheKey) -> Names {
        let value = format!(
            "{}{{{}}}:{}:{}:{}:{}",
            self.prefix,
            key.number.as_str(),
            self.namespace,
            key.context.as_str(),
            verstat_name(key.verstat),
            key.attestation.as_str().unwrap_or("none"),
        );
        let lease = format!("{value}:lease");
        Names { value, lease }
    }

    fn count(&self, counter: &AtomicU64) {
        SharedCounters::add(counter);
    }

    /// An operation failed: the breaker hears of it (a connection not ready is no failure).
    fn failed(&self, f: Failure) {
        if f == Failure::Failed {
            self.count(&self.counters.errors);
            self.breaker.failure();
        }
    }

    /// The verified answer a value holds, read (sent) at `sent`; or that it expired (a sealed
    /// entry whose sealed expiry has passed: a miss), or that it is refused.
    fn accept(
        &self,
        name: &str,
        value: &[u8],
        ttl: Option<Duration>,
        keys: &TrustedKeys,
        key: &CacheKey,
        sent: Instant,
    ) -> Result<Arc<Answer>, Rejected> {
        if value.len() > MAX_VALUE_LEN {
            return Err(Rejected::Refused);
        }
        let (expires_ms, body) = self.seal.open(name, value).ok_or(Rejected::Refused)?;
        // Sealed with its expiry: past it, it is not used whatever the store says is left; and
        // nothing is kept longer than the longest TTL.
        let left_ms = expires_ms
            .checked_sub(wall_ms())
            .filter(|&ms| ms > 0)
            .ok_or(Rejected::Expired)?;
        let mut left =
            Duration::from_millis(left_ms).min(Duration::from_secs(u64::from(MAX_TTL_SECONDS)));
        if let Some(ttl) = ttl {
            left = left.min(ttl);
        }
        let response = response::inbound(body, keys, &key.number).map_err(|_| Rejected::Refused)?;
        // Counted from before the read: no copy outlives the entry.
        Ok(Arc::new(Answer::fetched(response, sent, left)))
    }

    /// Before asking the service for `key`: the tier's verified answer, or permission to ask
    /// (holding the cluster's lease when this node is the one to ask), or, after waiting for
    /// another node's request, that the deadline has passed.
    pub(crate) fn before(&self, key: &CacheKey, keys: &TrustedKeys, deadline: Instant) -> Before {
        let names = self.names(key);
        let mut ask = Ask {
            names,
            leased: false,
            token: lease_token(),
        };
        if !self.breaker.allows() {
            self.count(&self.counters.skipped);
            return Before::Ask(ask);
        }
        let start = Instant::now();
        let share = deadline.min(start.checked_add(self.budget).unwrap_or(deadline));
        let op = Op {
            until: share,
            wait: false,
        };
        match self.store.read(&ask.names.value, None, op) {
            Err(f) => {
                if f == Failure::NotReady {
                    self.count(&self.counters.skipped);
                }
                self.failed(f);
                return Before::Ask(ask);
            }
            Ok(read) => {
                self.breaker.success();
                match &read.value {
                    None => self.count(&self.counters.misses),
                    Some(v) => match self.accept(&ask.names.value, v, read.ttl, keys, key, start) {
                        Ok(a) => {
                            self.count(&self.counters.hits);
                            return Before::Hit(a);
                        }
                        Err(Rejected::Expired) => self.count(&self.counters.misses),
                        Err(Rejected::Refused) => self.count(&self.counters.refused),
                    },
                }
            }
        }
        let now = Instant::now();
        let Some(rest) = deadline.checked_duration_since(now).filter(|_| now < share) else {
            return Before::Ask(ask);
        };
        let token = ask.token.clone();
        match self
            .store
            .lease(&ask.names.lease, &token, ms_at_least_one(rest), op)
        {
            Ok(true) => {
                self.breaker.success();
                ask.leased = true;
                Before::Ask(ask)
            }
            Ok(false) => {
                self.breaker.success();
                self.follow(key, keys, ask, &token, deadline)
            }
            Err(f) => {
                // A `SET NX` that timed out may still have been applied: treat the lease as
                // held, so that `after` gives it back (a token-checked release is harmless when
                // it was not taken) and other nodes do not wait it out.
                ask.leased = f == Failure::Failed;
                self.failed(f);
                Before::Ask(ask)
            }
        }
    }

    /// Another node holds the lease: waits for its answer, until this lookup's deadline. Takes
    /// the lease if it goes without an answer (that node failed or gave up).
    fn follow(
        &self,
        key: &CacheKey,
        keys: &TrustedKeys,
        mut ask: Ask,
        token: &str,
        deadline: Instant,
    ) -> Before {
        let mut refused = false;
        loop {
            let Some(left) = deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
            else {
                return Before::TimedOut;
            };
            std::thread::sleep(POLL.min(left));
            let now = Instant::now();
            if now >= deadline {
                return Before::TimedOut;
            }
            if !self.breaker.allows() {
                return Before::Ask(ask);
            }
            let op = Op {
                until: deadline.min(now.checked_add(self.budget).unwrap_or(deadline)),
                wait: false,
            };
            let read = match self
                .store
                .read(&ask.names.value, Some(&ask.names.lease), op)
            {
                Ok(read) => read,
                Err(Failure::NotReady) => continue,
                Err(f) => {
                    self.failed(f);
                    return Before::Ask(ask);
                }
            };
            self.breaker.success();
            if let Some(v) = &read.value {
                match self.accept(&ask.names.value, v, read.ttl, keys, key, now) {
                    Ok(a) => {
                        self.count(&self.counters.waited);
                        return Before::Hit(a);
                    }
                    Err(Rejected::Expired) => {}
                    Err(Rejected::Refused) if !refused => {
                        refused = true;
                        self.count(&self.counters.refused);
                    }
                    Err(Rejected::Refused) => {}
                }
            }
            if read.leased {
                continue;
            }
            let now = Instant::now();
            let Some(rest) = deadline.checked_duration_since(now) else {
                return Before::TimedOut;
            };
            let op = Op {
                until: deadline.min(now.checked_add(self.budget).unwrap_or(deadline)),
                wait: false,
            };
            match self
                .store
                .lease(&ask.names.lease, token, ms_at_least_one(rest), op)
            {
                Ok(true) => {
                    ask.leased = true;
                    return Before::Ask(ask);
                }
                Ok(false) => continue,
                Err(f) => {
                    // As in `before`: an outcome unknown is given back, by token.
                    ask.leased = f == Failure::Failed;
                    self.failed(f);
                    return Before::Ask(ask);
                }
            }
        }
    }

    /// After asking the service: the verified answer and its exact body are written for the
    /// other nodes (and the lease released), or the lease alone is released; on the tier's
    /// thread, never on the caller's time. A full queue drops the write.
    pub(crate) fn after(&self, ask: Ask, answer: Option<(&[u8], &Answer)>) {
        let Some(writes) = &self.writes else { return };
        let job = match answer {
            Some((body, a)) if a.expires_at() > Instant::now() => Write::Put {
                names: ask.names,
                body: body.to_vec(),
                expires_at: a.expires_at(),
                release: ask.leased,
                token: ask.token,
            },
            _ if ask.leased => Write::Release(ask.names.lease, ask.token),
            _ => return,
        };
        let put = matches!(job, Write::Put { .. });
        if let Err(TrySendError::Full(_)) = writes.try_send(job) {
            if put {
                self.count(&self.counters.writes_dropped);
            }
        }
    }
}

impl Writer {
    fn run(&self, jobs: &Receiver<Write>) {
        while let Ok(job) = jobs.recv() {
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            self.write(job);
        }
    }

    fn write(&self, job: Write) {
        let put = matches!(job, Write::Put { .. });
        if self.breaker.open_until().is_some() {
            if put {
                SharedCounters::add(&self.counters.writes_dropped);
            }
            // The answer is not written, but a lease this node holds is still given back
            // (off every call's path): other nodes must not wait it out.
            let (lease, token) = match job {
                Write::Put {
                    names,
                    release: true,
                    token,
                    ..
                } => (names.lease, token),
                Write::Release(lease, token) => (lease, token),
                Write::Put { .. } => return,
            };
            let op = Op {
                until: Instant::now() + self.timeout,
                wait: true,
            };
            let _ = self.store.release(&lease, &token, op);
            return;
        }
        let now = Instant::now();
        let op = Op {
            until: now + self.timeout,
            wait: true,
        };
        let result = match job {
            Write::Put {
                names,
                body,
                expires_at,
                release,
                token,
            } => {
                let release = release.then_some((names.lease.as_str(), token.as_str()));
                // What is left of the TTL, in whole milliseconds: the entry expires with the
                // service's answer, not later.
                let left_ms = u64::try_from(expires_at.saturating_duration_since(now).as_millis())
                    .unwrap_or(u64::MAX);
                if left_ms == 0 {
                    match release {
                        Some((lease, token)) => self.store.release(lease, token, op),
                        None => return,
                    }
                } else {
                    let sealed = self.seal.seal(&names.value, wall_ms() + left_ms, &body);
                    let ttl = Duration::from_millis(left_ms);
                    let r = self.store.put(&names.value, &sealed, ttl, release, op);
                    if r.is_ok() {
                        SharedCounters::add(&self.counters.writes);
                    }
                    r
                }
            }
            Write::Release(lease, token) => self.store.release(&lease, &token, op),
        };
        // A write's success says nothing of whether the store answers within a lookup's share
        // (it may wait longer): only lookups and connects close the breaker.
        match result {
            Ok(()) => {}
            Err(f) => {
                if put {
                    SharedCounters::add(&self.counters.writes_dropped);
                }
                if f == Failure::Failed {
                    SharedCounters::add(&self.counters.errors);
                    self.breaker.failure();
                }
            }
        }
    }
}

impl Drop for Tier {
    /// Stops the writer (a write in progress ends within its timeout) and waits for it, unless
    /// this is a forked child (the thread is not here) or the writer does not end in time.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.writes.take();
        let writer = self.writer.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some((thread, exit)) = writer.take() {
            join_within(thread, &exit, self.pid, background_timeout(self.budget) * 2);
        }
        self.counters.enabled.store(false, Ordering::Relaxed);
    }
}

/// Joins a thread of the tier that signals its end through `exit` (its sender is dropped as it
/// returns): within `within`, else it is left to end on its own. Never the current thread, nor
/// a thread of the parent of a forked process.
pub(crate) fn join_within(
    thread: std::thread::JoinHandle<()>,
    exit: &Receiver<()>,
    spawned_by: u32,
    within: Duration,
) {
    if spawned_by != std::process::id() || thread.thread().id() == std::thread::current().id() {
        return;
    }
    if let Err(mpsc::RecvTimeoutError::Disconnected) = exit.recv_timeout(within) {
        let _ = thread.join();
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::client::Context;
    use crate::e164::E164;
    use crate::stir::Attestation;
    use std::collections::HashMap;

    /// A value and when it expires.
    type Entry = (Vec<u8>, Option<Instant>);

    /// A store in memory, with expiry and a switch that makes it fail or stall.
    #[derive(Default)]
    pub(crate) struct Memory {
        pub(crate) entries: Mutex<HashMap<String, Entry>>,
        pub(crate) failing: std::sync::atomic::AtomicBool,
        pub(crate) not_ready: std::sync::atomic::AtomicBool,
        pub(crate) stall: Mutex<Option<Duration>>,
        pub(crate) ops: AtomicU64,
        /// A lease is taken, but its reply is lost (the caller sees a failure).
        pub(crate) lose_lease_reply: std::sync::atomic::AtomicBool,
    }

    impl Memory {
        fn enter(&self, op: Op) -> Result<(), Failure> {
            self.ops.fetch_add(1, Ordering::SeqCst);
            if self.not_ready.load(Ordering::SeqCst) {
                return Err(Failure::NotReady);
            }
            let stall = *self.stall.lock().unwrap();
            if let Some(d) = stall {
                let left = op.until.saturating_duration_since(Instant::now());
                std::thread::sleep(d.min(left));
                return Err(Failure::Failed);
            }
            if self.failing.load(Ordering::SeqCst) {
                return Err(Failure::Failed);
            }
            Ok(())
        }

        fn live(&self, key: &str) -> Option<Entry> {
            let mut e = self.entries.lock().unwrap();
            match e.get(key) {
                Some((_, Some(at))) if *at <= Instant::now() => {
                    e.remove(key);
                    None
                }
                other => other.cloned(),
            }
        }

        pub(crate) fn plant(&self, key: &str, value: &[u8], ttl: Option<Duration>) {
            self.entries.lock().unwrap().insert(
                key.to_string(),
                (value.to_vec(), ttl.map(|t| Instant::now() + t)),
            );
        }

        /// Removes `lease` only while `token` holds it (what the Redis store's script does).
        fn release_if(&self, lease: &str, token: &str) {
            let mut entries = self.entries.lock().unwrap();
            if entries
                .get(lease)
                .is_some_and(|(v, _)| v == token.as_bytes())
            {
                entries.remove(lease);
            }
        }
    }

    impl SharedCache for Memory {
        fn read(&self, key: &str, lease: Option<&str>, op: Op) -> Result<Read, Failure> {
            self.enter(op)?;
            let leased = lease.is_some_and(|l| self.live(l).is_some());
            let found = self.live(key);
            Ok(Read {
                ttl: found
                    .as_ref()
                    .and_then(|(_, at)| at.map(|at| at.saturating_duration_since(Instant::now()))),
                value: found.map(|(v, _)| v),
                leased,
            })
        }

        fn lease(&self, lease: &str, token: &str, ttl: Duration, op: Op) -> Result<bool, Failure> {
            self.enter(op)?;
            if self.live(lease).is_some() {
                return Ok(false);
            }
            self.plant(lease, token.as_bytes(), Some(ttl));
            if self.lose_lease_reply.load(Ordering::SeqCst) {
                return Err(Failure::Failed);
            }
            Ok(true)
        }

        fn put(
            &self,
            key: &str,
            value: &[u8],
            ttl: Duration,
            release: Option<(&str, &str)>,
            op: Op,
        ) -> Result<(), Failure> {
            self.enter(op)?;
            self.plant(key, value, Some(ttl));
            if let Some((l, token)) = release {
                self.release_if(l, token);
            }
            Ok(())
        }

        fn release(&self, lease: &str, token: &str, op: Op) -> Result<(), Failure> {
            self.enter(op)?;
            self.release_if(lease, token);
            Ok(())
        }
    }

    fn signing() -> (ed25519_dalek::SigningKey, TrustedKeys) {
        let sk = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let mut keys = TrustedKeys::default();
        keys.add_key(sk.verifying_key()).unwrap();
        (sk, keys)
    }

    /// A body as the service signs it.
    fn body(sk: &ed25519_dalek::SigningKey, number: &str, label: &str, ttl: u32) -> Vec<u8> {
        use crate::canonical::JsValue;
        let s = |v: &str| JsValue::String(v.to_string());
        let mut members: Vec<(String, JsValue)> = vec![
            ("schema_version".into(), s("2026-05-31")),
            ("result".into(), s("found")),
            ("number".into(), s(number)),
            ("identity_type".into(), s("verified_business")),
            ("display_label".into(), s(label)),
            ("risk_score".into(), JsValue::Number(5.into())),
            ("recommended_action".into(), s("allow")),
            ("ttl_seconds".into(), JsValue::Number(ttl.into())),
        ];
        let sig = crate::signature::sign(&members, sk);
        members.push(("response_signature".into(), JsValue::String(sig)));
        crate::canonical::stringify(&JsValue::Object(members)).into_bytes()
    }

    fn key(number: &str, verstat: Verstat) -> CacheKey {
        CacheKey {
            number: E164::parse(number, None).unwrap().number().unwrap().clone(),
            context: Context::InboundVoice,
            verstat,
            attestation: Attestation::A,
        }
    }

    fn tier(store: Arc<Memory>, api_key: &str) -> (Tier, Arc<SharedCounters>) {
        let counters = Arc::new(SharedCounters::default());
        let breaker = Arc::new(Breaker::new(counters.clone()));
        let t = Tier::new(
            store,
            breaker,
            counters.clone(),
            Duration::from_millis(20),
            "nol:",
            api_key,
            "memory".into(),
        )
        .unwrap();
        (t, counters)
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_millis(300)
    }

    fn wait_for(what: impl Fn() -> bool) {
        let end = Instant::now() + Duration::from_secs(5);
        while !what() {
            assert!(Instant::now() < end, "timed out");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// A node that asked the service: its answer is written, then another node reads it.
    fn write_through(t: &Tier, k: &CacheKey, body: &[u8], keys: &TrustedKeys) {
        let Before::Ask(ask) = t.before(k, keys, soon()) else {
            panic!("a miss asks the service");
        };
        assert!(ask.leased);
        let answer = Answer::new(response::inbound(body, keys, &k.number).unwrap());
        t.after(ask, Some((body, &answer)));
    }

    /// A `SET NX` whose reply is lost may have taken the lease: the node gives it back (by its
    /// token) when its request ends, so the next node leads instead of waiting it out.
    #[test]
    fn a_lease_taken_without_its_reply_is_given_back() {
        let store = Arc::new(Memory::default());
        let (_, keys) = signing();
        let (a, _) = tier(store.clone(), "key-1");
        let (b, _) = tier(store.clone(), "key-1");
        let k = key("+14155551212", Verstat::Passed);
        let names = a.names(&k);
        store.lose_lease_reply.store(true, Ordering::SeqCst);
        let Before::Ask(ask) = a.before(&k, &keys, soon()) else {
            panic!("a miss asks the service");
        };
        store.lose_lease_reply.store(false, Ordering::SeqCst);
        assert!(store.live(&names.lease).is_some(), "the lease was taken");
        assert!(ask.leased, "an unknown outcome counts as held");
        a.after(ask, None);
        wait_for(|| store.live(&names.lease).is_none());
        // The tier's breaker counted one failure; b is another node and leads at once.
        let Before::Ask(ask) = b.before(&k, &keys, soon()) else {
            panic!("b asks the service");
        };
        assert!(ask.leased);
    }

    #[test]
    fn an_answer_written_by_one_node_is_read_by_another() {
        let store = Arc::new(Memory::default());
        let (sk, keys) = signing();
        let (a, _) = tier(store.clone(), "key-1");
        let (b, counters) = tier(store.clone(), "key-1");
        let k = key("+14155551212", Verstat::Passed);
        let names = a.names(&k);
        assert!(names.value.starts_with("nol:{+14155551212}:"), "{names:?}");
        assert!(
            names.value.ends_with(":inbound_voice:passed:A"),
            "{names:?}"
        );
        assert_eq!(names.lease, format!("{}:lease", names.value));
        write_through(&a, &k, &body(&sk, "+14155551212", "Acme", 300), &keys);
        wait_for(|| store.live(&names.value).is_some());
        assert!(store.live(&names.lease).is_none(), "the lease is released");
        let Before::Hit(hit) = b.before(&k, &keys, soon()) else {
            panic!("the other node reads it");
        };
        assert_eq!(hit.response.display_label.as_deref(), Some("Acme"));
        let left = hit.expires_at().saturating_duration_since(Instant::now());
        assert!(left <= Duration::from_secs(300) && left > Duration::from_secs(290));
        assert_eq!(counters.hits.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn entries_are_bound_to_their_key_their_expiry_and_the_api_key() {
        let store = Arc::new(Memory::default());
        let (sk, keys) = signing();
        let (a, _) = tier(store.clone(), "key-1");
        let (b, counters) = tier(store.clone(), "key-1");
        let (other_tenant, _) = tier(store.clone(), "key-2");
        let passed = key("+14155551212", Verstat::Passed);
        let failed = key("+14155551212", Verstat::Failed);
        write_through(&a, &passed, &body(&sk, "+14155551212", "Acme", 300), &keys);
        let from = a.names(&passed).value;
        wait_for(|| store.live(&from).is_some());
        // Another API key's clients use other keys altogether.
        assert_ne!(other_tenant.names(&passed).value, from);
        // A genuine, sealed answer for a passed verstat, moved to the failed verstat's key.
        let (value, _) = store.live(&from).unwrap();
        let to = b.names(&failed).value;
        store.plant(&to, &value, Some(Duration::from_secs(300)));
        assert!(matches!(b.before(&failed, &keys, soon()), Before::Ask(_)));
        assert_eq!(counters.refused.load(Ordering::SeqCst), 1);
        // The same entry resealed by a client of another API key.
        let (sealed_expiry, body_bytes) = a.seal.open(&from, &value).unwrap();
        let foreign = other_tenant.seal.seal(&from, sealed_expiry, body_bytes);
        store.plant(&from, &foreign, Some(Duration::from_secs(300)));
        assert!(matches!(b.before(&passed, &keys, soon()), Before::Ask(_)));
        assert_eq!(counters.refused.load(Ordering::SeqCst), 2);
        // Kept past its sealed expiry by the store (no TTL set, or an old entry put back): not
        // used, and counted as a miss (a store whose clock runs ahead does it too).
        let stale = a.seal.seal(&from, wall_ms() - 1, body_bytes);
        store.plant(&from, &stale, None);
        let lease = a.names(&passed).lease;
        store.entries.lock().unwrap().remove(&lease);
        let misses = counters.misses.load(Ordering::SeqCst);
        assert!(matches!(b.before(&passed, &keys, soon()), Before::Ask(_)));
        assert_eq!(counters.refused.load(Ordering::SeqCst), 2);
        assert_eq!(counters.misses.load(Ordering::SeqCst), misses + 1);
        // A genuine seal over a body for another number, or an unsigned one.
        store.entries.lock().unwrap().clear();
        let replay = a.seal.seal(
            &from,
            wall_ms() + 60_000,
            &body(&sk, "+14155550100", "Other", 300),
        );
        store.plant(&from, &replay, Some(Duration::from_secs(60)));
        assert!(matches!(b.before(&passed, &keys, soon()), Before::Ask(_)));
        assert_eq!(counters.refused.load(Ordering::SeqCst), 3);
        store.entries.lock().unwrap().clear();
        let unsigned = a
            .seal
            .seal(&from, wall_ms() + 60_000, b"{\"result\":\"found\"}");
        store.plant(&from, &unsigned, Some(Duration::from_secs(60)));
        assert!(matches!(b.before(&passed, &keys, soon()), Before::Ask(_)));
        assert_eq!(counters.refused.load(Ordering::SeqCst), 4);
        assert_eq!(counters.hits.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_reader_keeps_only_what_is_left_of_the_ttl() {
        let store = Arc::new(Memory::default());
        let (sk, keys) = signing();
        let (a, _) = tier(store.clone(), "key-1");
        let k = key("+14155551212", Verstat::Passed);
        let name = a.names(&k).value;
        let b = body(&sk, "+14155551212", "Acme", 600);
        // Sealed to expire in 2 s, though the body says 600.
        store.plant(
            &name,
            &a.seal.seal(&name, wall_ms() + 2_000, &b),
            Some(Duration::from_secs(600)),
        );
        let Before::Hit(hit) = a.before(&k, &keys, soon()) else {
            panic!("a hit");
        };
        assert!(hit.expires_at() <= Instant::now() + Duration::from_secs(2));
        // The store's own TTL, when shorter, wins.
        store.plant(
            &name,
            &a.seal.seal(&name, wall_ms() + 60_000, &b),
            Some(Duration::from_millis(500)),
        );
        let Before::Hit(hit) = a.before(&k, &keys, soon()) else {
            panic!("a hit");
        };
        assert!(hit.expires_at() <= Instant::now() + Duration::from_millis(500));
    }

    #[test]
    fn a_node_that_misses_while_another_asks_waits_for_its_answer() {
        let store = Arc::new(Memory::default());
        let (sk, keys) = signing();
        let (leader, _) = tier(store.clone(), "key-1");
        let (follower, counters) = tier(store.clone(), "key-1");
        let k = key("+14155551212", Verstat::Passed);
        let Before::Ask(ask) = leader.before(&k, &keys, soon()) else {
            panic!("the first asks");
        };
        assert!(ask.leased);
        let b = body(&sk, "+14155551212", "Acme", 300);
        let waiting = std::thread::scope(|s| {
            let f = s.spawn(|| follower.before(&k, &keys, Instant::now() + Duration::from_secs(2)));
            std::thread::sleep(Duration::from_millis(30));
            let answer = Answer::new(response::inbound(&b, &keys, &k.number).unwrap());
            leader.after(ask, Some((&b, &answer)));
            f.join().unwrap()
        });
        assert!(matches!(waiting, Before::Hit(_)));
        assert_eq!(counters.waited.load(Ordering::SeqCst), 1);
        // A leader that fails releases the lease: a waiting node takes it and asks itself.
        let other = key("+14155550100", Verstat::Passed);
        let Before::Ask(ask) = leader.before(&other, &keys, soon()) else {
            panic!("asks");
        };
        let took_over = std::thread::scope(|s| {
            let f =
                s.spawn(|| follower.before(&other, &keys, Instant::now() + Duration::from_secs(2)));
            std::thread::sleep(Duration::from_millis(30));
            leader.after(ask, None);
            f.join().unwrap()
        });
        assert!(matches!(took_over, Before::Ask(Ask { leased: true, .. })));
        // A node waiting past its own deadline stops there.
        let third = key("+14155550111", Verstat::Passed);
        let Before::Ask(_held) = leader.before(&third, &keys, soon()) else {
            panic!("asks");
        };
        let start = Instant::now();
        let r = follower.before(&third, &keys, start + Duration::from_millis(50));
        assert!(matches!(r, Before::TimedOut));
        assert!(start.elapsed() < Duration::from_millis(150));
    }

    #[test]
    fn failures_cost_at_most_the_budget_and_open_the_breaker() {
        let store = Arc::new(Memory::default());
        let (_, keys) = signing();
        let (t, counters) = tier(store.clone(), "key-1");
        let k = key("+14155551212", Verstat::Passed);
        *store.stall.lock().unwrap() = Some(Duration::from_secs(5));
        for _ in 0..BREAKER_FAILURES {
            let start = Instant::now();
            assert!(matches!(t.before(&k, &keys, soon()), Before::Ask(_)));
            let took = start.elapsed();
            assert!(
                took >= Duration::from_millis(19) && took < Duration::from_millis(100),
                "{took:?}"
            );
        }
        assert!(counters.breaker_open.load(Ordering::SeqCst));
        assert_eq!(counters.breaker_opens.load(Ordering::SeqCst), 1);
        // Open: skipped at once, without an operation.
        let ops = store.ops.load(Ordering::SeqCst);
        let start = Instant::now();
        assert!(matches!(t.before(&k, &keys, soon()), Before::Ask(_)));
        assert!(start.elapsed() < Duration::from_millis(5));
        assert_eq!(store.ops.load(Ordering::SeqCst), ops);
        assert!(counters.skipped.load(Ordering::SeqCst) >= 1);
        // A lookup with less time left than the budget spends no more than its time.
        let b2 = Breaker::new(counters.clone());
        let (t2, _) = tier(store.clone(), "key-1");
        drop(b2);
        let start = Instant::now();
        let _ = t2.before(&k, &keys, start + Duration::from_millis(5));
        assert!(start.elapsed() < Duration::from_millis(50));
    }

    #[test]
    fn the_breaker_lets_one_probe_through_after_the_cool_down() {
        let counters = Arc::new(SharedCounters::default());
        let b = Breaker::new(counters.clone());
        for _ in 0..BREAKER_FAILURES {
            assert!(b.allows());
            b.failure();
        }
        assert!(!b.allows());
        assert!(b.open_until().is_some());
        // Force the cool-down to have passed.
        *b.circuit() = Circuit::Open(Instant::now());
        assert!(b.allows(), "one probe");
        assert!(!b.allows(), "only one");
        b.failure();
        assert!(!b.allows());
        assert_eq!(counters.breaker_opens.load(Ordering::SeqCst), 2);
        *b.circuit() = Circuit::Open(Instant::now());
        assert!(b.allows());
        b.connected();
        assert!(b.allows() && b.allows());
        assert!(!counters.breaker_open.load(Ordering::SeqCst));
        // A connect does not clear a closed breaker's failures; an operation's success does.
        b.failure();
        b.failure();
        b.connected();
        b.failure();
        assert!(!b.allows());
    }

    #[test]
    fn writes_never_wait_and_a_full_queue_drops_them() {
        let store = Arc::new(Memory::default());
        let (sk, keys) = signing();
        let (t, counters) = tier(store.clone(), "key-1");
        *store.stall.lock().unwrap() = Some(Duration::from_millis(50));
        let k = key("+14155551212", Verstat::Passed);
        let b = body(&sk, "+14155551212", "Acme", 300);
        let answer = Answer::new(response::inbound(&b, &keys, &k.number).unwrap());
        let start = Instant::now();
        for _ in 0..(WRITE_QUEUE + 50) {
            let ask = Ask {
                names: t.names(&k),
                leased: false,
                token: lease_token(),
            };
            t.after(ask, Some((&b, &answer)));
        }
        assert!(
            start.elapsed() < Duration::from_millis(50),
            "{:?}",
            start.elapsed()
        );
        assert!(counters.writes_dropped.load(Ordering::SeqCst) >= 40);
        // Dropping the tier does not wait for the queue.
        *store.stall.lock().unwrap() = None;
        let start = Instant::now();
        drop(t);
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn the_seal_refuses_any_change() {
        let seal = Seal::new("key-1");
        let sealed = seal.seal("k", 1234, b"body");
        assert_eq!(seal.open("k", &sealed), Some((1234, &b"body"[..])));
        assert_eq!(seal.open("k2", &sealed), None);
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert_eq!(seal.open("k", &bad), None, "byte {i}");
        }
        assert_eq!(seal.open("k", &sealed[..HEADER_LEN - 1]), None);
        assert_eq!(seal.open("k", b""), None);
    }
}
