//! `nol.Client`: nol-core's fail-open client. Every wait happens with the interpreter released
//! (`py.detach`), so other Python threads and event loops run while a lookup is out.

use std::time::Duration;

use nol_core::client::{BreakerConfig, ClientConfig, DEFAULT_BASE_URL};
use nol_core::{ApiKey, Call, Context, ForkSafeClient};
use pyo3::prelude::*;

use crate::arg;
use crate::error::{Kind, ToPyResult};
use crate::pure::{text_of, TrustedKeys};
use crate::types::{Decision, Enrollment, Policy, Precall, Stats};

/// The numbers.online client: lookups that never raise and never take longer than the budget.
///
/// Thread-safe: share one client between threads (they share its connections, cache and
/// counters). Unset arguments come from the environment: `NUMBERS_ONLINE_API_KEY`,
/// `NOL_BASE_URL`, `NOL_PUBLIC_KEY` (a PEM file). Raises `nol.ConfigError` (or
/// `nol.InvalidPublicKey`) when it cannot be made; the message never contains the API key.
///
/// - `budget_ms`: the whole time a lookup may take, counted from the call, queueing included.
/// - `cache_size`: verified answers kept (each for its `ttl_seconds`); 0 turns the cache off.
/// - `policy`: a `nol.Policy` (risk wording and blocking are opt-in).
/// - `default_country`: ISO 3166 code for national-form numbers (e.g. `"US"`).
/// - `max_in_flight`: requests out at once; a lookup beyond that fails open at once (`busy`).
/// - `circuit_breaker`: after repeated failures fail open at once for a while (`True`), or
///   never (`False`).
/// - `rate_limit_per_minute`: a client-side limit (60 on the free tier), or `None`.
#[pyclass(module = "nol", frozen)]
pub struct Client {
    /// Rebuilt in a forked child on first use (`os.register_at_fork` tells nol-core).
    inner: ForkSafeClient,
    base_url: String,
}

/// What a lookup call carries, owned so that it can cross `py.detach`.
struct Args {
    number: String,
    context: Context,
    to: Option<String>,
    verstat: Option<String>,
    attestation: Option<String>,
    local_contact: Option<String>,
}

impl Args {
    fn new(
        number: String,
        context: &str,
        to: Option<String>,
        verstat: Option<String>,
        attestation: Option<String>,
        local_contact: Option<String>,
    ) -> PyResult<Args> {
        let context = Context::parse(context).ok_or_else(|| {
            Kind::InvalidArgument.err(format!(
                "unknown context {context:?} (inbound_voice, inbound_sms or inbound_waba)"
            ))
        })?;
        Ok(Args {
            number,
            context,
            to,
            verstat,
            attestation,
            local_contact,
        })
    }

    fn call(&self) -> Call<'_> {
        Call {
            number: &self.number,
            context: self.context,
            to: self.to.as_deref(),
            verstat: self.verstat.as_deref(),
            attestation: self.attestation.as_deref(),
            local_contact: self.local_contact.as_deref(),
        }
    }
}

#[pymethods]
impl Client {
    #[new]
    #[pyo3(signature = (api_key=None, base_url=None, public_key_pem=None, *, budget_ms=400, cache_size=10_000, policy=None, default_country=None, max_in_flight=32, circuit_breaker=true, rate_limit_per_minute=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        #[pyo3(from_py_with = arg::opt_text)] api_key: Option<String>,
        #[pyo3(from_py_with = arg::opt_text)] base_url: Option<String>,
        public_key_pem: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = arg::int::<i64>)] budget_ms: i64,
        #[pyo3(from_py_with = arg::int::<i64>)] cache_size: i64,
        #[pyo3(from_py_with = opt_policy)] policy: Option<Policy>,
        #[pyo3(from_py_with = arg::opt_text)] default_country: Option<String>,
        #[pyo3(from_py_with = arg::int::<i64>)] max_in_flight: i64,
        #[pyo3(from_py_with = arg::flag)] circuit_breaker: bool,
        #[pyo3(from_py_with = arg::opt_int::<u32>)] rate_limit_per_minute: Option<u32>,
    ) -> PyResult<Client> {
        // Out-of-range numbers are configuration errors (not OverflowError from the conversion).
        let positive = |value: i64, what: &str| {
            u64::try_from(value)
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| Kind::Config.err(format!("{what} must be more than zero")))
        };
        let budget_ms = positive(budget_ms, "budget_ms")?;
        let max_in_flight = positive(max_in_flight, "max_in_flight")?;
        let cache_size = u64::try_from(cache_size)
            .map_err(|_| Kind::Config.err("cache_size must be zero (off) or more"))?;
        let mut config = ClientConfig {
            budget: Duration::from_millis(budget_ms),
            cache_size,
            default_country,
            max_in_flight: usize::try_from(max_in_flight).unwrap_or(usize::MAX),
            breaker: circuit_breaker.then(BreakerConfig::default),
            rate_limit_per_minute,
            ..ClientConfig::default()
        };
        // A non-str key gets a message with its type, never its value.
        if let Some(key) = api_key {
            config.api_key = Some(ApiKey::new(key).to_py()?);
        }
        if let Some(url) = base_url {
            config.base_url = url;
        }
        if let Some(pem) = public_key_pem {
            config.public_keys = match pem.cast::<TrustedKeys>() {
                Ok(k) => k.get().inner.clone(),
                Err(_) => {
                    nol_core::TrustedKeys::from_pem(&text_of(pem, "public_key_pem")?).to_py()?
                }
            };
        }
        if let Some(p) = policy {
            config.policy = p.inner;
        }
        if rate_limit_per_minute == Some(0) {
            return Err(Kind::InvalidArgument.err("rate_limit_per_minute must be more than zero"));
        }
        // Loading the numbering metadata and starting threads takes a moment: let Python run.
        let (inner, base_url) = py
            .detach(move || {
                config.apply_env()?;
                let url = if config.base_url == DEFAULT_BASE_URL {
                    DEFAULT_BASE_URL.to_string()
                } else {
                    config.base_url.trim().trim_end_matches('/').to_string()
                };
                ForkSafeClient::new(config).map(|c| (c, url))
            })
            .to_py()?;
        Ok(Client { inner, base_url })
    }

    /// The lookup budget in milliseconds.
    #[getter]
    fn budget_ms(&self) -> u64 {
        self.inner.budget().as_millis() as u64
    }

    /// The service URL lookups go to.
    #[getter]
    fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The operator policy decisions are made with.
    #[getter]
    fn policy(&self) -> Policy {
        Policy {
            inner: self.inner.policy().clone(),
        }
    }

    /// Looks up an inbound call; returns a `nol.Decision` within the budget, always.
    ///
    /// Never raises for anything the network or the service does (timeouts, errors, bad or
    /// missing signatures, an invalid or anonymous caller): the decision is then
    /// `allow_with_default_policy` with `fail_open` set. Raises only for a programming error
    /// (an unknown `context`: `nol.InvalidArgument`; a non-str argument:
    /// `nol.ArgumentTypeError`). The interpreter is released for the whole wait.
    #[pyo3(signature = (number, *, verstat=None, attestation=None, context=String::from("inbound_voice"), to=None, local_contact=None))]
    #[allow(clippy::too_many_arguments)]
    fn lookup(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::text)] number: String,
        #[pyo3(from_py_with = arg::opt_text)] verstat: Option<String>,
        #[pyo3(from_py_with = arg::opt_text)] attestation: Option<String>,
        #[pyo3(from_py_with = arg::text)] context: String,
        #[pyo3(from_py_with = arg::opt_text)] to: Option<String>,
        #[pyo3(from_py_with = arg::opt_text)] local_contact: Option<String>,
    ) -> PyResult<Decision> {
        let args = Args::new(number, &context, to, verstat, attestation, local_contact)?;
        let client = &self.inner;
        let decision = py.detach(|| client.lookup(&args.call()));
        Ok(Decision::new(decision))
    }

    /// Starts a lookup without waiting: `done(decision)` is called exactly once, by the end of
    /// the budget — at once on this thread for a cache hit or anything that needs no request,
    /// otherwise on a libnol thread (so `done` must be quick and thread-safe: hand the decision
    /// to an event loop, e.g. with `loop.call_soon_threadsafe`). An exception `done` raises is
    /// reported as unraisable. This is what `nol.AsyncClient` is built on.
    #[pyo3(signature = (number, done, *, verstat=None, attestation=None, context=String::from("inbound_voice"), to=None, local_contact=None))]
    #[allow(clippy::too_many_arguments)]
    fn lookup_callback(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::text)] number: String,
        done: Py<PyAny>,
        #[pyo3(from_py_with = arg::opt_text)] verstat: Option<String>,
        #[pyo3(from_py_with = arg::opt_text)] attestation: Option<String>,
        #[pyo3(from_py_with = arg::text)] context: String,
        #[pyo3(from_py_with = arg::opt_text)] to: Option<String>,
        #[pyo3(from_py_with = arg::opt_text)] local_contact: Option<String>,
    ) -> PyResult<()> {
        if !done.bind(py).is_callable() {
            return Err(arg::wrong_type("a callable for done", done.bind(py)));
        }
        let args = Args::new(number, &context, to, verstat, attestation, local_contact)?;
        let client = &self.inner;
        // Released while nol-core takes its locks: the callback may run inline and attach.
        py.detach(|| {
            client.lookup_async(&args.call(), move |decision| {
                // Nothing to hand the decision to once the interpreter is shutting down.
                let _ = Python::try_attach(|py| {
                    if let Err(e) = done.call1(py, (Decision::new(decision),)) {
                        e.write_unraisable(py, Some(done.bind(py)));
                    }
                });
            })
        });
        Ok(())
    }

    /// Pre-call check on a destination before dialing (free, not metered). Never raises for
    /// the network or the service: `dnc` is then `UNKNOWN` with `fail_open` set.
    fn precall(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::text)] from_number: String,
        #[pyo3(from_py_with = arg::text)] to_number: String,
    ) -> Precall {
        let client = &self.inner;
        let inner = py.detach(|| client.precall(&from_number, &to_number));
        Precall { inner }
    }

    /// Enrols one of the caller's own verified numbers, so that each pre-call check records a
    /// short-lived hashed (from, to) edge. Never raises: `enrolled` is `False` on failure.
    fn enroll(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::text)] number: String,
    ) -> Enrollment {
        let client = &self.inner;
        let inner = py.detach(|| client.enroll(&number));
        Enrollment { inner }
    }

    /// Counters since the client was made.
    fn stats(&self) -> PyResult<Stats> {
        Ok(Stats {
            inner: self.inner.stats().to_py()?,
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "Client(base_url={:?}, budget_ms={})",
            self.base_url,
            self.inner.budget().as_millis()
        )
        .replace('"', "'")
    }
}

/// Runs in a child after `os.fork()`: the next call on any `Client` builds the child's own.
#[pyfunction]
pub(crate) fn after_fork_in_child() {
    nol_core::client::after_fork_in_child();
}

/// `policy=`: a `nol.Policy` or `None`.
fn opt_policy(ob: &Bound<'_, PyAny>) -> PyResult<Option<Policy>> {
    if ob.is_none() {
        return Ok(None);
    }
    match ob.cast::<Policy>() {
        Ok(p) => Ok(Some(Policy {
            inner: p.get().inner.clone(),
        })),
        Err(_) => Err(arg::wrong_type("nol.Policy or None", ob)),
    }
}
