//! nol-core's values as Python classes: read-only views that only convert types. Every rule
//! (names, SIP replies, AGI variables, the display line) stays in nol-core.

use std::time::Duration;

use nol_core::client::{Enrollment as CoreEnrollment, Precall as CorePrecall};
use nol_core::{
    Decision as CoreDecision, FailOpen, Outcome, Policy as CorePolicy, Stats as CoreStats,
    Stir as CoreStir, Verstat,
};
use pyo3::prelude::*;

use crate::arg;
use crate::error::ToPyResult;
use pyo3::types::{PyDict, PyList};

/// STIR/SHAKEN as the switch saw it: the verstat token and the attestation level.
///
/// `verstat` is `"TN-Validation-Passed"`, `"TN-Validation-Failed"`, `"No-TN-Validation"`, or
/// `None` when absent or unreadable; `attestation` is `"A"`, `"B"`, `"C"` or `None`.
#[pyclass(module = "nol", frozen, eq, from_py_object)]
#[derive(Clone, PartialEq)]
pub struct Stir {
    pub(crate) inner: CoreStir,
}

#[pymethods]
impl Stir {
    /// `TN-Validation-Passed`, `TN-Validation-Failed`, `No-TN-Validation`, or `None`.
    #[getter]
    fn verstat(&self) -> Option<&'static str> {
        self.inner.verstat.as_token()
    }

    /// `A`, `B`, `C`, or `None`.
    #[getter]
    fn attestation(&self) -> Option<&'static str> {
        self.inner.attestation.as_str()
    }

    /// `True` for `TN-Validation-Passed`.
    #[getter]
    fn passed(&self) -> bool {
        self.inner.verstat == Verstat::Passed
    }

    /// `True` for `TN-Validation-Failed`: a possibly spoofed origin.
    #[getter]
    fn failed(&self) -> bool {
        self.inner.verstat == Verstat::Failed
    }

    /// Short wording: `verified`, `failed`, `not validated` or `unknown`.
    #[getter]
    fn description(&self) -> &'static str {
        self.inner.verstat.describe()
    }

    fn __hash__(&self) -> u64 {
        let v = self.inner.verstat as u64;
        let a = self.inner.attestation as u64;
        v * 8 + a
    }

    fn __repr__(&self) -> String {
        format!(
            "Stir(verstat={}, attestation={})",
            py_str(self.inner.verstat.as_token()),
            py_str(self.inner.attestation.as_str())
        )
    }
}

fn py_str(s: Option<&str>) -> String {
    match s {
        Some(s) => format!("{s:?}").replace('"', "'"),
        None => "None".into(),
    }
}

/// What the operator decided about how answers may change a call. Everything the service says
/// is advisory: without `risk_tag` and `block` no answer changes more than the caller name.
///
/// - `risk_tag`: text prefixed to the caller name when the risk score is above
///   `risk_threshold` (opt-in; `None` for no risk wording).
/// - `block`: answer `block_candidate` with SIP 603 (opt-in).
/// - `screening_contact`: a SIP URI to send elevated-risk calls to with a 302.
/// - `max_name_len`: the longest caller name, in bytes of its SIP quoted-string form.
/// - `route_advance_code`: the reply that tells an SBC to try its next route.
///
/// Every value goes through nol-core's setters (ranges in `nol.SETTINGS`); an unset number takes
/// nol-core's default, and a value out of range raises `nol.InvalidSetting`.
#[pyclass(module = "nol", frozen, from_py_object)]
#[derive(Clone)]
pub struct Policy {
    pub(crate) inner: CorePolicy,
}

#[pymethods]
impl Policy {
    #[new]
    #[pyo3(signature = (*, risk_tag=None, risk_threshold=None, block=false, screening_contact=None, max_name_len=None, route_advance_code=None))]
    fn new(
        #[pyo3(from_py_with = arg::opt_text)] risk_tag: Option<String>,
        risk_threshold: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = arg::flag)] block: bool,
        #[pyo3(from_py_with = arg::opt_text)] screening_contact: Option<String>,
        max_name_len: Option<&Bound<'_, PyAny>>,
        route_advance_code: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Policy> {
        // nol-core's setters hold every rule (ranges, an empty Contact refused); an unset
        // argument keeps nol-core's default.
        let mut p = CorePolicy::default();
        p.set_risk_tag(risk_tag.as_deref()).to_py()?;
        if let Some(t) = arg::opt_setting_int("risk_threshold", risk_threshold)? {
            p.set_risk_threshold(t).to_py()?;
        }
        p.set_block(block);
        p.set_screening_contact(screening_contact.as_deref())
            .to_py()?;
        if let Some(n) = arg::opt_setting_int("max_name_len", max_name_len)? {
            p.set_max_name_len(n).to_py()?;
        }
        if let Some(c) = arg::opt_setting_int("route_advance_code", route_advance_code)? {
            p.set_route_advance_code(c).to_py()?;
        }
        Ok(Policy { inner: p })
    }

    /// Text put before the caller name when the risk score is above `risk_threshold`, or
    /// `None`.
    #[getter]
    fn risk_tag(&self) -> Option<&str> {
        self.inner.risk_tag.as_deref()
    }

    /// The risk score above which `risk_tag` is shown.
    #[getter]
    fn risk_threshold(&self) -> u8 {
        self.inner.risk_threshold
    }

    /// Whether `block_candidate` is answered with SIP 603 (opt-in).
    #[getter]
    fn block(&self) -> bool {
        self.inner.block
    }

    /// The SIP URI elevated-risk calls are sent to with a 302, or `None`.
    #[getter]
    fn screening_contact(&self) -> Option<&str> {
        self.inner.screening_contact.as_deref()
    }

    /// The longest caller name, in bytes of its SIP quoted-string form.
    #[getter]
    fn max_name_len(&self) -> usize {
        self.inner.max_name_len
    }

    /// The SIP reply that tells an SBC to try its next route.
    #[getter]
    fn route_advance_code(&self) -> u16 {
        self.inner.route_advance_code
    }

    fn __repr__(&self) -> String {
        let p = &self.inner;
        format!(
            "Policy(risk_tag={}, risk_threshold={}, block={}, screening_contact={}, max_name_len={}, route_advance_code={})",
            py_str(p.risk_tag.as_deref()),
            p.risk_threshold,
            if p.block { "True" } else { "False" },
            py_str(p.screening_contact.as_deref()),
            p.max_name_len,
            p.route_advance_code
        )
    }
}

/// What an inbound call should do, and everything a host needs to do it. Read-only.
///
/// A decision always exists: without a usable verified answer it is
/// `allow_with_default_policy`, and `fail_open` says why.
#[pyclass(module = "nol", frozen)]
pub struct Decision {
    pub(crate) inner: CoreDecision,
}

impl Decision {
    pub(crate) fn new(inner: CoreDecision) -> Decision {
        Decision { inner }
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[pymethods]
impl Decision {
    /// The recommended action: `allow`, `label`, `challenge_or_route`, `block_candidate` or
    /// `allow_with_default_policy` (or a newer value the service sends, kept as it came).
    #[getter]
    fn action(&self) -> &str {
        self.inner.action.as_str()
    }

    /// The caller name to show (plain, safe text), or `None` to show the raw number.
    #[getter]
    fn caller_name(&self) -> Option<&str> {
        self.inner.caller_name.as_deref()
    }

    /// 0-100, higher is worse; `None` when unknown.
    #[getter]
    fn risk_score(&self) -> Option<u8> {
        self.inner.risk_score
    }

    /// The service's risk wording (`low`, `medium`, `high`, ...), or `None`.
    #[getter]
    fn risk_level(&self) -> Option<&str> {
        self.inner.risk_level.as_deref()
    }

    /// e.g. `verified_business`, `verified_individual`.
    #[getter]
    fn identity_type(&self) -> Option<&str> {
        self.inner.identity_type.as_ref().map(|t| t.as_str())
    }

    /// The service's `result`: `found`, `no_record`, ...; `None` without an answer.
    #[getter]
    fn result(&self) -> Option<&str> {
        self.inner.result.as_ref().map(|r| r.as_str())
    }

    /// The signed receipt id (`nol_rec_...`), evidence that can be retrieved later.
    #[getter]
    fn receipt_id(&self) -> Option<&str> {
        self.inner.receipt_id.as_deref()
    }

    /// The calling number in E.164, when it was a possible number.
    #[getter]
    fn number(&self) -> Option<&str> {
        self.inner.number.as_ref().map(|n| n.as_str())
    }

    /// The STIR/SHAKEN outcome the lookup was made with.
    #[getter]
    fn stir(&self) -> Stir {
        Stir {
            inner: self.inner.stir,
        }
    }

    /// From a response signed by a trusted key (fetched now or served from the cache).
    #[getter]
    fn verified(&self) -> bool {
        self.inner.verified()
    }

    /// The caller's identity is verified (a verified business or individual) in a verified
    /// answer. `verified` alone says only that numbers.online signed the answer.
    #[getter]
    fn identity_verified(&self) -> bool {
        self.inner.identity_verified()
    }

    /// Served from the cache of verified answers.
    #[getter(from_cache)]
    fn is_from_cache(&self) -> bool {
        self.inner.from_cache()
    }

    /// How old the cached answer is, in seconds; `None` unless `from_cache`.
    #[getter]
    fn cache_age(&self) -> Option<f64> {
        match self.inner.outcome {
            Outcome::Cached { age } => Some(secs(age)),
            _ => None,
        }
    }

    /// Why the call went on without an answer (`timeout`, `connect`, `http_status`,
    /// `rate_limited`, `bad_signature`, `busy`, `anonymous`, ...), or `None`.
    #[getter]
    fn fail_open(&self) -> Option<&'static str> {
        self.inner.fail_open().map(FailOpen::as_str)
    }

    /// The HTTP status when `fail_open == "http_status"`.
    #[getter]
    fn http_status(&self) -> Option<u16> {
        match self.inner.fail_open() {
            Some(FailOpen::HttpStatus(code)) => Some(*code),
            _ => None,
        }
    }

    /// The SIP reply a redirect server sends: 603 only after the `block` opt-in, 302 to the
    /// screening contact, otherwise the route-advance code.
    #[getter]
    fn sip_code(&self) -> u16 {
        self.inner.sip.code
    }

    /// The reason phrase of `sip_code`.
    #[getter]
    fn sip_reason(&self) -> &'static str {
        self.inner.sip.reason
    }

    /// The Contact of a 302.
    #[getter]
    fn sip_contact(&self) -> Option<&str> {
        self.inner.sip.contact.as_deref()
    }

    /// The caller name escaped for a SIP quoted-string display name.
    #[getter]
    fn sip_display_name(&self) -> Option<String> {
        self.inner.sip_display_name()
    }

    /// Asterisk channel variables: `NOL_ACTION`, `NOL_RISK`, `NOL_LABEL`, `NOL_RECEIPT`.
    #[getter]
    fn agi_variables<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in self.inner.agi_variables() {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    /// `X-NumbersOnline-*` headers to add inside a trusted network (strip inbound ones first).
    #[getter]
    fn headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in self.inner.headers() {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    /// `Caller: Acme Support ✓   STIR/SHAKEN: A, verified   numbers.online: verified_business, risk=low`
    #[getter]
    fn display_line(&self) -> String {
        self.inner.display_line()
    }

    /// How long the answer may be cached, in seconds (verified answers only).
    #[getter]
    fn ttl_seconds(&self) -> Option<f64> {
        self.inner.ttl.map(secs)
    }

    /// nol-core's JSON view of the decision as compact text, byte for byte what every binding
    /// and `nol lookup --json` give: stable keys, in a stable order (new keys are only added
    /// at the end), `null` for what is unknown.
    fn to_json(&self) -> String {
        self.inner.to_json()
    }

    /// `json.loads(decision.to_json())`: the same keys and values as a dict, in the same order
    /// (for a log line or a webhook).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py.import("json")?
            .call_method1("loads", (self.inner.to_json(),))
    }

    fn __repr__(&self) -> String {
        let d = &self.inner;
        let outcome = match &d.outcome {
            Outcome::Verified => "verified".to_string(),
            Outcome::Cached { .. } => "cached".to_string(),
            Outcome::FailOpen(r) => format!("fail_open={}", py_str(Some(&r.to_string()))),
        };
        format!(
            "Decision(action={}, caller_name={}, risk_score={}, number={}, {outcome})",
            py_str(Some(d.action.as_str())),
            py_str(d.caller_name.as_deref()),
            d.risk_score.map_or("None".into(), |r| r.to_string()),
            py_str(d.number.as_ref().map(|n| n.as_str())),
        )
    }
}

/// A pre-call check on a destination before dialing. `dnc` is `SUPPRESS`, `NO_MATCH` (not a
/// consent grant) or `UNKNOWN` (always, when the check failed: `fail_open` says why).
#[pyclass(module = "nol", frozen)]
pub struct Precall {
    pub(crate) inner: CorePrecall,
}

#[pymethods]
impl Precall {
    /// `SUPPRESS`, `NO_MATCH` (not a consent grant) or `UNKNOWN`.
    #[getter]
    fn dnc(&self) -> &'static str {
        self.inner.dnc.as_str()
    }

    /// The supplementary compliance signal as the service sent it (JSON values), or `None`.
    #[getter]
    fn compliance_signal<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match &self.inner.compliance_signal {
            Some(v) => json_to_py(py, v),
            None => Ok(py.None().into_bound(py)),
        }
    }

    /// The signed receipt id, or `None`.
    #[getter]
    fn receipt_id(&self) -> Option<&str> {
        self.inner.receipt_id.as_deref()
    }

    /// Why the check failed (`timeout`, `http_status`, `invalid_number`, ...), or `None`.
    #[getter]
    fn fail_open(&self) -> Option<&'static str> {
        self.inner.fail_open.as_ref().map(FailOpen::as_str)
    }

    fn __repr__(&self) -> String {
        format!(
            "Precall(dnc='{}', receipt_id={}, fail_open={})",
            self.inner.dnc.as_str(),
            py_str(self.inner.receipt_id.as_deref()),
            py_str(self.inner.fail_open.as_ref().map(FailOpen::as_str))
        )
    }
}

/// The answer to enrolling one of the caller's own verified numbers; `enrolled` is `False`
/// with `fail_open` set when it failed.
#[pyclass(module = "nol", frozen)]
pub struct Enrollment {
    pub(crate) inner: CoreEnrollment,
}

#[pymethods]
impl Enrollment {
    /// Whether the service enrolled the number.
    #[getter]
    fn enrolled(&self) -> bool {
        self.inner.enrolled
    }

    /// The number enrolled (E.164), or `None` when it was not a possible number.
    #[getter]
    fn number(&self) -> Option<&str> {
        self.inner.number.as_deref()
    }

    /// Why the enrolment failed, or `None`.
    #[getter]
    fn fail_open(&self) -> Option<&'static str> {
        self.inner.fail_open.as_ref().map(FailOpen::as_str)
    }

    fn __repr__(&self) -> String {
        format!(
            "Enrollment(enrolled={}, number={}, fail_open={})",
            if self.inner.enrolled { "True" } else { "False" },
            py_str(self.inner.number.as_deref()),
            py_str(self.inner.fail_open.as_ref().map(FailOpen::as_str))
        )
    }
}

/// A snapshot of a client's counters since it was made. Latencies are in milliseconds,
/// counted from the host's call.
#[pyclass(module = "nol", frozen)]
pub struct Stats {
    pub(crate) inner: CoreStats,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[pymethods]
impl Stats {
    /// Lookups made.
    #[getter]
    fn lookups(&self) -> u64 {
        self.inner.lookups
    }

    /// Lookups answered from the cache.
    #[getter]
    fn cache_hits(&self) -> u64 {
        self.inner.cache_hits
    }

    /// Decisions from an answer fetched and verified for the call.
    #[getter]
    fn verified(&self) -> u64 {
        self.inner.verified
    }

    /// Lookups that joined another lookup's request for the same number.
    #[getter]
    fn shared_flights(&self) -> u64 {
        self.inner.shared_flights
    }

    /// Fail-opens by reason (only reasons that occurred).
    #[getter]
    fn fail_open<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in &self.inner.fail_open {
            d.set_item(*k, *v)?;
        }
        Ok(d)
    }

    /// HTTP responses by status code (only codes that occurred).
    #[getter]
    fn http_status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in &self.inner.http_status {
            d.set_item(*k, *v)?;
        }
        Ok(d)
    }

    /// The shared cache tier (Redis), nol-core's counters: `enabled`, `hits`, `waited`,
    /// `misses`, `refused`, `errors`, `skipped`, `breaker_opens`, `breaker_open`, `writes`,
    /// `writes_dropped`, `connections` (all zero without a tier).
    #[getter]
    fn shared_cache<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = &self.inner.shared_cache;
        let d = PyDict::new(py);
        d.set_item("enabled", c.enabled)?;
        d.set_item("breaker_open", c.breaker_open)?;
        for (name, count) in [
            ("hits", c.hits),
            ("waited", c.waited),
            ("misses", c.misses),
            ("refused", c.refused),
            ("errors", c.errors),
            ("skipped", c.skipped),
            ("breaker_opens", c.breaker_opens),
            ("writes", c.writes),
            ("writes_dropped", c.writes_dropped),
            ("connections", c.connections),
        ] {
            d.set_item(name, count)?;
        }
        Ok(d)
    }

    /// Median lookup latency.
    #[getter]
    fn latency_p50_ms(&self) -> f64 {
        ms(self.inner.latency_p50)
    }

    /// 90th percentile lookup latency.
    #[getter]
    fn latency_p90_ms(&self) -> f64 {
        ms(self.inner.latency_p90)
    }

    /// 99th percentile lookup latency.
    #[getter]
    fn latency_p99_ms(&self) -> f64 {
        ms(self.inner.latency_p99)
    }

    /// The slowest lookup.
    #[getter]
    fn latency_max_ms(&self) -> f64 {
        ms(self.inner.latency_max)
    }

    /// Requests out now.
    #[getter]
    fn workers_busy(&self) -> usize {
        self.inner.workers_busy
    }

    /// The most requests out at once (`max_in_flight`).
    #[getter]
    fn workers(&self) -> usize {
        self.inner.workers
    }

    /// Whether the circuit breaker is open (lookups fail open at once).
    #[getter]
    fn circuit_open(&self) -> bool {
        self.inner.circuit_open
    }

    fn __repr__(&self) -> String {
        let s = &self.inner;
        format!(
            "Stats(lookups={}, cache_hits={}, verified={}, fail_open={:?}, p50_ms={:.2}, p99_ms={:.2}, circuit_open={})",
            s.lookups,
            s.cache_hits,
            s.verified,
            s.fail_open,
            ms(s.latency_p50),
            ms(s.latency_p99),
            if s.circuit_open { "True" } else { "False" }
        )
    }
}

/// A JSON value as plain Python objects.
pub(crate) fn json_to_py<'py>(
    py: Python<'py>,
    v: &serde_json::Value,
) -> PyResult<Bound<'py, PyAny>> {
    use pyo3::IntoPyObjectExt;
    use serde_json::Value;
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_bound_py_any(py)?,
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_bound_py_any(py)?
            } else if let Some(u) = n.as_u64() {
                u.into_bound_py_any(py)?
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_bound_py_any(py)?
            }
        }
        Value::String(s) => s.into_bound_py_any(py)?,
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json_to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let d = PyDict::new(py);
            for (k, item) in map {
                d.set_item(k, json_to_py(py, item)?)?;
            }
            d.into_any()
        }
    })
}
