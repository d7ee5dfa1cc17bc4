//! `nol_core::client`: the fail-open client.
//!
//! `lookup` hands the call to [`nol_core::Client::lookup_async`] and returns a Promise that a
//! libnol thread settles (through a napi threadsafe function) by the end of the budget; cache
//! hits settle without leaving the JavaScript thread's call. No libuv thread is held while a
//! request is out, so a thousand concurrent lookups cannot queue past their budget. The rarer
//! `precall` and `enroll` are blocking calls in nol-core, bounded by the same budget, and run
//! as napi tasks on the libuv pool.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use napi::bindgen_prelude::{AsyncTask, Either, PromiseRaw, ToNapiValue};
use napi::JsDeferred;
use napi::{Env, JsValue, Task};
use napi_derive::napi;
use nol_core::client::{Call, ClientConfig, Context};
use nol_core::settings::{
    check_number, BREAKER_COOL_DOWN_MS, BREAKER_FAILURES, BUDGET_MS, CACHE_SIZE, MAX_IN_FLIGHT,
    RATE_LIMIT_PER_MINUTE, REDIS_BUDGET_MS, WARM_UP_MS,
};
use nol_core::ConfigError;

use crate::error::{self, invalid_arg, Result};
use crate::policy::{Decision, PolicyOptions};

/// Circuit breaker settings: after `failures` failures in a row, fail open at once for
/// `coolDownMs`, then let one probe through.
#[napi(object)]
pub struct CircuitBreakerOptions {
    /// Failures in a row that open the breaker (`breaker_failures` in `SETTINGS`).
    pub failures: Option<f64>,
    /// How long it stays open, in ms (`breaker_cool_down_ms` in `SETTINGS`).
    pub cool_down_ms: Option<f64>,
}

/// How to make a [`Client`]. Unset fields come from the environment (`NUMBERS_ONLINE_API_KEY`,
/// `NOL_BASE_URL`, `NOL_PUBLIC_KEY` naming a PEM file) or the defaults. Numbers must be
/// integers within the ranges of `SETTINGS` (nol-core's); anything else throws
/// `ERR_NOL_INVALID_ARG`.
#[napi(object)]
pub struct ClientOptions {
    /// The numbers.online API key. It never appears in an error, a log or `util.inspect`.
    pub api_key: Option<String>,
    /// `https://numbers.online` unless set (plain `http://` only to loopback).
    pub base_url: Option<String>,
    /// The service's Ed25519 public key(s) in PEM: responses not signed by one fail open.
    pub public_key_pem: Option<String>,
    /// The whole time a lookup may take, counted from the call (`budget_ms`:
    /// its range and default are in `SETTINGS`, like every option's).
    pub budget_ms: Option<f64>,
    /// Cached answers (0 turns the cache off).
    pub cache_size: Option<f64>,
    pub policy: Option<PolicyOptions>,
    /// Country (ISO 3166, e.g. `US`) for numbers in national form.
    pub default_country: Option<String>,
    /// The most requests in flight at once; past that a lookup fails open `busy`.
    pub max_in_flight: Option<f64>,
    /// `false` turns the circuit breaker off; `true` or an object (thresholds unset keep their
    /// defaults) turns it on. On by default.
    pub circuit_breaker: Option<Either<bool, CircuitBreakerOptions>>,
    /// Client-side limit on requests per minute (60 on the free tier); 0 (the default) for
    /// none.
    pub rate_limit_per_minute: Option<f64>,
    /// A PEM file of the only roots trusted for the service (a private deployment's CA).
    pub tls_ca_file: Option<String>,
    /// Connect (and handshake) to the service when the client is made, at most this long, so
    /// the first lookup costs what the thousandth does, and with `redisUrl` wait for the shared
    /// cache's first connection (a client skips it until then); 0 (the default) for none.
    pub warm_up_ms: Option<f64>,
    /// The cluster's shared cache, e.g. `redis://:password@10.0.0.5:6379/0` (`rediss://` for
    /// TLS; several comma-separated for Redis Cluster). Every answer read from it is verified
    /// again. The URL never appears in an error.
    pub redis_url: Option<String>,
    /// The prefix of every key libnol writes in Redis (`nol:` unless set).
    pub redis_key_prefix: Option<String>,
    /// The most a lookup spends on Redis, within its own budget.
    pub redis_budget_ms: Option<f64>,
}

/// What the host knows about an inbound call besides the calling number.
#[napi(object)]
pub struct LookupOptions {
    /// A verstat token, `verstat=` parameter, or From / P-Asserted-Identity header value.
    pub verstat: Option<String>,
    /// `A`/`B`/`C`, or an `Identity` header value.
    pub attestation: Option<String>,
    /// `inbound_voice` (default), `inbound_sms` or `inbound_waba`.
    pub context: Option<String>,
    /// The receiver's own number.
    pub to: Option<String>,
    /// A name the host already knows for this number: it always wins.
    pub local_contact: Option<String>,
    /// A budget for this lookup, shorter or longer than the client's (`budget_ms`'s
    /// range).
    pub budget_ms: Option<f64>,
}

/// A pre-call check's answer: `dnc` is `UNKNOWN` with `failOpen` set when it failed.
#[napi(object, use_nullable = true)]
pub struct Precall {
    /// `SUPPRESS`, `NO_MATCH` (not a consent grant) or `UNKNOWN`.
    pub dnc: String,
    pub compliance_signal: Option<serde_json::Value>,
    pub receipt_id: Option<String>,
    pub fail_open: Option<String>,
}

/// An enrolment's answer: `enrolled: false` with `failOpen` set when it failed.
#[napi(object, use_nullable = true)]
pub struct Enrollment {
    pub enrolled: bool,
    pub number: Option<String>,
    pub fail_open: Option<String>,
}

/// Counters since the client was made.
#[napi(object)]
pub struct Stats {
    pub lookups: f64,
    pub cache_hits: f64,
    pub verified: f64,
    pub shared_flights: f64,
    /// Fail-opens by reason (only reasons that occurred).
    pub fail_open: std::collections::BTreeMap<String, f64>,
    /// HTTP responses by status code (only codes that occurred).
    pub http_status: std::collections::BTreeMap<String, f64>,
    pub latency_p50_ms: f64,
    pub latency_p90_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_max_ms: f64,
    pub workers_busy: u32,
    pub workers: u32,
    pub circuit_open: bool,
    /// The shared cache tier (Redis); all zero without one.
    pub shared_cache: SharedCacheStats,
}

/// The shared cache tier (Redis) since the client was made: nol-core's counters.
#[napi(object)]
pub struct SharedCacheStats {
    /// A tier is configured (`redisUrl`).
    pub enabled: bool,
    /// Answers read from the shared cache and verified, instead of a request.
    pub hits: f64,
    /// Answers another process asked the service for while this lookup waited for it.
    pub waited: f64,
    /// Reads that found nothing.
    pub misses: f64,
    /// Entries refused (unsealed, expired, unsigned, forged, tampered, another number).
    pub refused: f64,
    /// Operations that failed: timeouts, connection and protocol errors.
    pub errors: f64,
    /// Lookups that did not use the tier: its breaker was open or no connection was ready.
    pub skipped: f64,
    /// Times the tier's own breaker opened.
    pub breaker_opens: f64,
    /// The tier's breaker is open now.
    pub breaker_open: bool,
    /// Verified answers written for the other processes.
    pub writes: f64,
    /// Answers not written: the queue was full, the breaker open, or no connection came.
    pub writes_dropped: f64,
    /// Connections open now.
    pub connections: f64,
}

/// A budget in milliseconds: an integer within nol-core's `budget_ms` range.
pub(crate) fn budget(ms: f64) -> Result<Duration> {
    let ms = check_number("budget_ms", BUDGET_MS, ms).map_err(error::from_config)?;
    Ok(Duration::from_millis(ms))
}

/// The options, given to nol-core's setters one by one: every check is nol-core's.
fn config(options: ClientOptions) -> std::result::Result<ClientConfig, ConfigError> {
    let mut c = ClientConfig::default();
    if let Some(key) = options.api_key {
        c.set_api_key(&key)?;
    }
    if let Some(url) = options.base_url {
        c.set_base_url(&url)?;
    }
    if let Some(pem) = options.public_key_pem {
        c.set_public_key_pem(&pem)?;
    }
    if let Some(ms) = options.budget_ms {
        c.set_budget_ms(check_number("budget_ms", BUDGET_MS, ms)?)?;
    }
    if let Some(n) = options.cache_size {
        c.set_cache_size(check_number("cache_size", CACHE_SIZE, n)?)?;
    }
    if let Some(policy) = options.policy {
        c.policy = policy.into_policy()?;
    }
    c.set_default_country(options.default_country.as_deref())?;
    if let Some(n) = options.max_in_flight {
        c.set_max_in_flight(check_number("max_in_flight", MAX_IN_FLIGHT, n)?)?;
    }
    match options.circuit_breaker {
        None => {}
        Some(Either::A(on)) => c.set_circuit_breaker(on),
        Some(Either::B(b)) => {
            c.set_circuit_breaker(true);
            if let Some(n) = b.failures {
                c.set_breaker_failures(check_number("breaker_failures", BREAKER_FAILURES, n)?)?;
            }
            if let Some(ms) = b.cool_down_ms {
                let ms = check_number("breaker_cool_down_ms", BREAKER_COOL_DOWN_MS, ms)?;
                c.set_breaker_cool_down_ms(ms)?;
            }
        }
    }
    if let Some(n) = options.rate_limit_per_minute {
        let n = check_number("rate_limit_per_minute", RATE_LIMIT_PER_MINUTE, n)?;
        c.set_rate_limit_per_minute(n)?;
    }
    if let Some(path) = options.tls_ca_file {
        c.set_tls_ca_file(&path)?;
    }
    if let Some(ms) = options.warm_up_ms {
        c.set_warm_up_ms(check_number("warm_up_ms", WARM_UP_MS, ms)?)?;
    }
    if let Some(url) = options.redis_url {
        c.set_redis_url(&url)?;
    }
    if let Some(prefix) = options.redis_key_prefix {
        c.set_redis_key_prefix(&prefix)?;
    }
    if let Some(ms) = options.redis_budget_ms {
        c.set_redis_budget_ms(check_number("redis_budget_ms", REDIS_BUDGET_MS, ms)?)?;
    }
    Ok(c)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The numbers.online client. Make one per process and share it: it holds the workers, the
/// connections and the cache. A lookup never rejects for anything the network or the service
/// does: it resolves `allow_with_default_policy` with `failOpen` set, within the budget.
#[napi]
pub struct Client {
    pub(crate) inner: nol_core::Client,
}

#[napi]
impl Client {
    /// Throws (with a `code`) when the options are bad or incomplete: no API key, no trusted
    /// public key, a bad base URL, a budget out of range.
    #[napi(constructor, catch_unwind)]
    pub fn new(options: Option<ClientOptions>) -> Result<Client> {
        let options = options.unwrap_or(ClientOptions {
            api_key: None,
            base_url: None,
            public_key_pem: None,
            budget_ms: None,
            cache_size: None,
            policy: None,
            default_country: None,
            max_in_flight: None,
            circuit_breaker: None,
            rate_limit_per_minute: None,
            tls_ca_file: None,
            warm_up_ms: None,
            redis_url: None,
            redis_key_prefix: None,
            redis_budget_ms: None,
        });
        let config = config(options).map_err(error::from_config)?;
        let inner = nol_core::Client::new(config).map_err(error::from_config)?;
        Ok(Client { inner })
    }

    /// The client's budget in milliseconds.
    #[napi(getter, catch_unwind)]
    pub fn budget_ms(&self) -> f64 {
        ms(self.inner.budget())
    }

    /// Looks up an inbound call. Resolves within the budget, counted from this call, and
    /// never rejects: a failure resolves `allow_with_default_policy` with `failOpen` set.
    /// Throws at once (nothing is queued) for a bad option, e.g. an unknown `context`.
    #[napi(ts_return_type = "Promise<Decision>", catch_unwind)]
    pub fn lookup<'env>(
        &self,
        env: &'env Env,
        number: String,
        options: Option<LookupOptions>,
    ) -> Result<PromiseRaw<'env, Decision>> {
        let options = options.unwrap_or(LookupOptions {
            verstat: None,
            attestation: None,
            context: None,
            to: None,
            local_contact: None,
            budget_ms: None,
        });
        let context = match options.context.as_deref() {
            None => Context::default(),
            Some(c) => Context::parse(c).ok_or_else(|| {
                invalid_arg(format!(
                    "context must be inbound_voice, inbound_sms or inbound_waba, not {c:?}"
                ))
            })?,
        };
        let within = match options.budget_ms {
            Some(v) => budget(v)?,
            None => self.inner.budget(),
        };
        let call = Call {
            number: &number,
            context,
            to: options.to.as_deref(),
            verstat: options.verstat.as_deref(),
            attestation: options.attestation.as_deref(),
            local_contact: options.local_contact.as_deref(),
        };
        promise_of(env, &self.inner, &call, within, |d| Decision::from(d))
    }

    /// Pre-call check on a destination before dialing (do-not-call scrub plus a compliance
    /// signal). Resolves `UNKNOWN` with `failOpen` set on any failure, within the budget.
    #[napi(ts_return_type = "Promise<Precall>", catch_unwind)]
    pub fn precall(&self, from: String, to: String) -> AsyncTask<PrecallTask> {
        AsyncTask::new(PrecallTask {
            client: self.inner.clone(),
            from,
            to,
            deadline: Instant::now() + self.inner.budget(),
        })
    }

    /// Enrols one of your own verified numbers for call-provenance edges. Resolves
    /// `enrolled: false` with `failOpen` set on any failure, within the budget.
    #[napi(ts_return_type = "Promise<Enrollment>", catch_unwind)]
    pub fn enroll(&self, number: String) -> AsyncTask<EnrollTask> {
        AsyncTask::new(EnrollTask {
            client: self.inner.clone(),
            number,
            deadline: Instant::now() + self.inner.budget(),
        })
    }

    /// Counters since the client was made. Synchronous and cheap.
    #[napi(catch_unwind)]
    pub fn stats(&self) -> Stats {
        let s = self.inner.stats();
        Stats {
            lookups: s.lookups as f64,
            cache_hits: s.cache_hits as f64,
            verified: s.verified as f64,
            shared_flights: s.shared_flights as f64,
            fail_open: s
                .fail_open
                .iter()
                .map(|(k, v)| (k.to_string(), *v as f64))
                .collect(),
            http_status: s
                .http_status
                .iter()
                .map(|(k, v)| (k.to_string(), *v as f64))
                .collect(),
            latency_p50_ms: ms(s.latency_p50),
            latency_p90_ms: ms(s.latency_p90),
            latency_p99_ms: ms(s.latency_p99),
            latency_max_ms: ms(s.latency_max),
            workers_busy: s.workers_busy as u32,
            workers: s.workers as u32,
            circuit_open: s.circuit_open,
            shared_cache: SharedCacheStats {
                enabled: s.shared_cache.enabled,
                hits: s.shared_cache.hits as f64,
                waited: s.shared_cache.waited as f64,
                misses: s.shared_cache.misses as f64,
                refused: s.shared_cache.refused as f64,
                errors: s.shared_cache.errors as f64,
                skipped: s.shared_cache.skipped as f64,
                breaker_opens: s.shared_cache.breaker_opens as f64,
                breaker_open: s.shared_cache.breaker_open,
                writes: s.shared_cache.writes as f64,
                writes_dropped: s.shared_cache.writes_dropped as f64,
                connections: s.shared_cache.connections as f64,
            },
        }
    }
}

use crate::error::Error;

type Resolver<T> = Box<dyn FnOnce(Env) -> napi::Result<T>>;

/// Where a lookup's Promise stands.
enum Phase<T: ToNapiValue + 'static> {
    /// `lookup_async` has not returned yet.
    Calling,
    /// It settled inline (a cache hit, an invalid or anonymous caller, every worker busy).
    Inline(T),
    /// A libnol thread will settle it through this deferred.
    Waiting(JsDeferred<T, Resolver<T>>),
    Gone,
}

/// Starts a lookup and returns its Promise, settled with `convert(decision)` by the end of
/// `within`. An inline answer resolves the Promise directly; otherwise a napi deferred (a
/// threadsafe function) carries the answer from the libnol thread to the JavaScript thread.
pub(crate) fn promise_of<'env, T, F>(
    env: &'env Env,
    client: &nol_core::Client,
    call: &Call<'_>,
    within: Duration,
    convert: F,
) -> Result<PromiseRaw<'env, T>>
where
    T: ToNapiValue + Send + 'static,
    F: FnOnce(&nol_core::Decision) -> T + Send + 'static,
{
    let phase = Arc::new(Mutex::new(Phase::<T>::Calling));
    let settle = phase.clone();
    client.lookup_async_within(call, within, move |d| {
        let value = convert(&d);
        let mut phase = settle.lock().unwrap_or_else(|p| p.into_inner());
        match std::mem::replace(&mut *phase, Phase::Gone) {
            Phase::Calling => *phase = Phase::Inline(value),
            Phase::Waiting(deferred) => deferred.resolve(Box::new(move |_| Ok(value))),
            Phase::Inline(_) | Phase::Gone => {}
        }
    });
    let napi_error = |e: napi::Error| Error::new(error::Code::Config, e.reason);
    // Held while the deferred is made, so that a libnol thread finishing meanwhile waits for it.
    let mut phase = phase.lock().unwrap_or_else(|p| p.into_inner());
    match std::mem::replace(&mut *phase, Phase::Gone) {
        Phase::Inline(value) => PromiseRaw::resolve(env, value).map_err(napi_error),
        Phase::Calling => {
            let (deferred, promise) = env.create_deferred().map_err(napi_error)?;
            *phase = Phase::Waiting(deferred);
            Ok(PromiseRaw::new(env.raw(), promise.raw()))
        }
        Phase::Waiting(_) | Phase::Gone => Err(Error::new(
            error::Code::Config,
            "internal: a lookup settled twice",
        )),
    }
}

/// Runs a task's work on a libuv thread, where `#[napi(catch_unwind)]` does not reach: a panic
/// rejects the task's Promise (code `GenericFailure`) instead of aborting the process.
fn guarded<T>(work: impl FnOnce() -> T) -> napi::Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
        .map_err(napi::bindgen_prelude::panic_to_error)
}

pub struct PrecallTask {
    client: nol_core::Client,
    from: String,
    to: String,
    /// Counted from the JavaScript call, not from when a libuv thread picks the task up.
    deadline: Instant,
}

impl Task for PrecallTask {
    type Output = nol_core::client::Precall;
    type JsValue = Precall;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        guarded(|| {
            self.client
                .precall_until(&self.from, &self.to, self.deadline)
        })
    }

    fn resolve(&mut self, _env: Env, p: Self::Output) -> napi::Result<Precall> {
        Ok(Precall {
            dnc: p.dnc.as_str().to_string(),
            compliance_signal: p.compliance_signal,
            receipt_id: p.receipt_id,
            fail_open: p.fail_open.map(|r| r.as_str().to_string()),
        })
    }
}

pub struct EnrollTask {
    client: nol_core::Client,
    number: String,
    deadline: Instant,
}

impl Task for EnrollTask {
    type Output = nol_core::client::Enrollment;
    type JsValue = Enrollment;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        guarded(|| self.client.enroll_until(&self.number, self.deadline))
    }

    fn resolve(&mut self, _env: Env, e: Self::Output) -> napi::Result<Enrollment> {
        Ok(Enrollment {
            enrolled: e.enrolled,
            number: e.number,
            fail_open: e.fail_open.map(|r| r.as_str().to_string()),
        })
    }
}
