//! `nol.Client`: nol-core's fail-open client. Every wait happens with the interpreter released
//! (`py.detach`), so other Python threads and event loops run while a lookup is out.

use nol_core::client::ClientConfig;
use nol_core::{Call, Context, ForkSafeClient};
use pyo3::prelude::*;

use crate::agents::{self, Pending};
use crate::arg;
use crate::error::{Kind, ToPyResult};
use crate::pure::{text_of, TrustedKeys};
use crate::types::{json_to_py, Decision, Enrollment, Policy, Precall, Stats};

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
/// - `circuit_breaker`: after `breaker_failures` failures in a row fail open at once for
///   `breaker_cool_down_ms` (`True`), or never (`False`).
/// - `rate_limit_per_minute`: a client-side limit (60 on the free tier); `None` or 0 for none.
/// - `tls_ca_file`: a PEM file of the only roots trusted for the service (a private one).
/// - `warm_up_ms`: connect (and handshake) to the service at creation, at most this long.
/// - `redis_url`, `redis_key_prefix`, `redis_budget_ms`: the cluster's shared cache (Redis);
///   every answer read from it is verified again, and Redis never costs a lookup its budget.
///
/// A number left unset takes nol-core's default; every range is nol-core's (`nol.SETTINGS`),
/// and a value outside it raises `nol.InvalidSetting` (a `ConfigError` and an
/// `InvalidArgument`).
#[pyclass(module = "nol", frozen)]
pub struct Client {
    /// Rebuilt in a forked child on first use (a `pthread_atfork` handler tells nol-core).
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
    #[pyo3(signature = (api_key=None, base_url=None, public_key_pem=None, *, budget_ms=None, cache_size=None, policy=None, default_country=None, max_in_flight=None, circuit_breaker=true, breaker_failures=None, breaker_cool_down_ms=None, rate_limit_per_minute=None, tls_ca_file=None, warm_up_ms=None, redis_url=None, redis_key_prefix=None, redis_budget_ms=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        #[pyo3(from_py_with = arg::opt_text)] api_key: Option<String>,
        #[pyo3(from_py_with = arg::opt_text)] base_url: Option<String>,
        public_key_pem: Option<&Bound<'_, PyAny>>,
        budget_ms: Option<&Bound<'_, PyAny>>,
        cache_size: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = opt_policy)] policy: Option<Policy>,
        #[pyo3(from_py_with = arg::opt_text)] default_country: Option<String>,
        max_in_flight: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = arg::flag)] circuit_breaker: bool,
        breaker_failures: Option<&Bound<'_, PyAny>>,
        breaker_cool_down_ms: Option<&Bound<'_, PyAny>>,
        rate_limit_per_minute: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = arg::opt_text)] tls_ca_file: Option<String>,
        warm_up_ms: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = arg::opt_text)] redis_url: Option<String>,
        #[pyo3(from_py_with = arg::opt_text)] redis_key_prefix: Option<String>,
        redis_budget_ms: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Client> {
        // Every value goes through nol-core's setter, which holds its range: an unset argument
        // keeps nol-core's default (nol.SETTINGS).
        let mut config = ClientConfig::default();
        // A non-str key gets a message with its type, never its value.
        if let Some(key) = api_key {
            config.set_api_key(&key).to_py()?;
        }
        if let Some(url) = base_url {
            config.set_base_url(&url).to_py()?;
        }
        if let Some(pem) = public_key_pem.filter(|p| !p.is_none()) {
            match pem.cast::<TrustedKeys>() {
                Ok(k) => config.public_keys = k.get().inner.clone(),
                Err(_) => config
                    .set_public_key_pem(&text_of(pem, "public_key_pem")?)
                    .to_py()?,
            }
        }
        if let Some(ms) = arg::opt_setting_int("budget_ms", budget_ms)? {
            config.set_budget_ms(ms).to_py()?;
        }
        if let Some(n) = arg::opt_setting_int("cache_size", cache_size)? {
            config.set_cache_size(n).to_py()?;
        }
        if let Some(p) = policy {
            config.policy = p.inner;
        }
        config
            .set_default_country(default_country.as_deref())
            .to_py()?;
        if let Some(n) = arg::opt_setting_int("max_in_flight", max_in_flight)? {
            config.set_max_in_flight(n).to_py()?;
        }
        if let Some(n) = arg::opt_setting_int("breaker_failures", breaker_failures)? {
            config.set_breaker_failures(n).to_py()?;
        }
        if let Some(ms) = arg::opt_setting_int("breaker_cool_down_ms", breaker_cool_down_ms)? {
            config.set_breaker_cool_down_ms(ms).to_py()?;
        }
        // Last: `False` turns the breaker off whatever its thresholds.
        config.set_circuit_breaker(circuit_breaker);
        if let Some(n) = arg::opt_setting_int("rate_limit_per_minute", rate_limit_per_minute)? {
            config.set_rate_limit_per_minute(n).to_py()?;
        }
        if let Some(path) = tls_ca_file {
            config.set_tls_ca_file(&path).to_py()?;
        }
        if let Some(ms) = arg::opt_setting_int("warm_up_ms", warm_up_ms)? {
            config.set_warm_up_ms(ms).to_py()?;
        }
        // A URL with a password: nol-core's error never repeats it.
        if let Some(url) = redis_url {
            config.set_redis_url(&url).to_py()?;
        }
        if let Some(prefix) = redis_key_prefix {
            config.set_redis_key_prefix(&prefix).to_py()?;
        }
        if let Some(ms) = arg::opt_setting_int("redis_budget_ms", redis_budget_ms)? {
            config.set_redis_budget_ms(ms).to_py()?;
        }
        // Loading the numbering metadata and starting threads takes a moment: let Python run.
        let (inner, base_url) = py
            .detach(move || {
                config.apply_env()?;
                let url = config.validate()?;
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
        check_callable(py, &done)?;
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

    /// Answers Retell's inbound webhook (`{"event":"call_inbound","call_inbound":{"from_number",
    /// "to_number","agent_id"}}`, as `bytes`, `str` or the parsed `dict`) with the body to send
    /// back with HTTP 200: `{"call_inbound":{"dynamic_variables":{...},"metadata":{...}}}`,
    /// rendered by nol-core. Dynamic variables (all strings): `caller_name` (empty when
    /// unknown), `caller_risk`, `caller_risk_score`, `caller_line_type`, `caller_on_dnc`,
    /// `caller_reassigned`, `caller_verified`, `caller_identity`, `caller_action`,
    /// `receipt_id`. `metadata` is merged into the answer's (libnol's keys win).
    ///
    /// Returns within `budget_ms` (else the client's budget; Retell waits 10 s at most) and
    /// never raises for a bad body: one without a caller gets the fail-open variables. Raises
    /// only for a bad keyword argument. The interpreter is released while it waits.
    #[pyo3(signature = (body, *, override_agent_id=None, override_agent_version=None, metadata=None, budget_ms=None))]
    fn retell_inbound<'py>(
        &self,
        py: Python<'py>,
        body: &Bound<'py, PyAny>,
        #[pyo3(from_py_with = arg::opt_text)] override_agent_id: Option<String>,
        override_agent_version: Option<&Bound<'py, PyAny>>,
        metadata: Option<&Bound<'py, PyAny>>,
        budget_ms: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let pending = agents::retell(
            &self.inner,
            body,
            override_agent_id,
            override_agent_version,
            metadata,
            budget_ms,
        )?;
        self.answer(py, pending)
    }

    /// `retell_inbound` without waiting: `done(answer)` is called exactly once, by the end of
    /// the budget, as `lookup_callback` calls it. What `nol.AsyncClient.retell_inbound` is
    /// built on.
    #[pyo3(signature = (body, done, *, override_agent_id=None, override_agent_version=None, metadata=None, budget_ms=None))]
    #[allow(clippy::too_many_arguments)]
    fn retell_inbound_callback<'py>(
        &self,
        py: Python<'py>,
        body: &Bound<'py, PyAny>,
        done: Py<PyAny>,
        #[pyo3(from_py_with = arg::opt_text)] override_agent_id: Option<String>,
        override_agent_version: Option<&Bound<'py, PyAny>>,
        metadata: Option<&Bound<'py, PyAny>>,
        budget_ms: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<()> {
        check_callable(py, &done)?;
        let pending = agents::retell(
            &self.inner,
            body,
            override_agent_id,
            override_agent_version,
            metadata,
            budget_ms,
        )?;
        self.answer_later(py, pending, done);
        Ok(())
    }

    /// Answers one of Vapi's tool calls (an element of `message.toolCallList`, a `dict`) for a
    /// `phone_lookup`-style tool whose arguments are `number` (or `phone_number`) and
    /// optionally `country` and `verstat`. Returns Vapi's response,
    /// `{"results":[{"toolCallId","result"}]}`, where `result` is `nol.tool_result` of the
    /// decision as JSON text; a missing or bad number answers at once with `valid: false`.
    ///
    /// Returns within `budget_ms` (else the client's budget; Vapi waits 7.5 s at most) and
    /// never raises for the tool call's content; raises `nol.ArgumentTypeError` when
    /// `tool_call` is not a dict. The interpreter is released while it waits.
    #[pyo3(signature = (tool_call, *, budget_ms=None))]
    fn vapi_tool_result<'py>(
        &self,
        py: Python<'py>,
        tool_call: &Bound<'py, PyAny>,
        budget_ms: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let pending = agents::vapi(&self.inner, tool_call, budget_ms)?;
        self.answer(py, pending)
    }

    /// `vapi_tool_result` without waiting: `done(answer)` is called exactly once, by the end of
    /// the budget. What `nol.AsyncClient.vapi_tool_result` is built on.
    #[pyo3(signature = (tool_call, done, *, budget_ms=None))]
    fn vapi_tool_result_callback<'py>(
        &self,
        py: Python<'py>,
        tool_call: &Bound<'py, PyAny>,
        done: Py<PyAny>,
        budget_ms: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<()> {
        check_callable(py, &done)?;
        let pending = agents::vapi(&self.inner, tool_call, budget_ms)?;
        self.answer_later(py, pending, done);
        Ok(())
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

/// Runs in the child of every `fork()` (`os.fork`, `multiprocessing`, or C code calling libc's
/// `fork` directly): the next call on any `Client` builds the child's own. Only an atomic add,
/// so it is async-signal-safe.
#[cfg(unix)]
extern "C" fn on_fork_in_child() {
    nol_core::client::after_fork_in_child();
}

/// Registers [`on_fork_in_child`] as a `pthread_atfork` child handler, once per process. Not
/// `os.register_at_fork`: that hears only of forks made through Python's `os.fork`, and a fork
/// from C code (an extension, `ctypes`) would leave the child on the parent's client.
pub(crate) fn register_atfork() {
    #[cfg(unix)]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: the handler only does an atomic add; glibc ties it to this shared object
            // (`__dso_handle`), and CPython never unloads an extension module.
            unsafe {
                libc::pthread_atfork(None, None, Some(on_fork_in_child));
            }
        });
    }
}

impl Client {
    /// Runs an agent helper with the interpreter released, and converts its answer.
    fn answer<'py>(&self, py: Python<'py>, pending: Pending) -> PyResult<Bound<'py, PyAny>> {
        let client = &self.inner;
        let value = py.detach(|| pending.run(client));
        json_to_py(py, &value)
    }

    /// Starts an agent helper; `done` gets its answer (as `lookup_callback`'s does).
    fn answer_later(&self, py: Python<'_>, pending: Pending, done: Py<PyAny>) {
        let client = &self.inner;
        py.detach(|| {
            pending.start(client, move |value| {
                let _ = Python::try_attach(|py| {
                    let result = json_to_py(py, &value).and_then(|v| done.call1(py, (v,)));
                    if let Err(e) = result {
                        e.write_unraisable(py, Some(done.bind(py)));
                    }
                });
            })
        });
    }
}

fn check_callable(py: Python<'_>, done: &Py<PyAny>) -> PyResult<()> {
    if done.bind(py).is_callable() {
        Ok(())
    } else {
        Err(arg::wrong_type("a callable for done", done.bind(py)))
    }
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
