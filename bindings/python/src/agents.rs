//! The voice-agent platforms' forms of a decision (Retell's inbound webhook, Vapi's tool call,
//! an LLM tool's result and sentence), all rendered by `nol_core::agents`: this module only
//! converts Python values to JSON and back, and reads the arguments.

use std::time::Duration;

use nol_core::agents::{self, RetellOptions, ToolCall};
use nol_core::settings::{self, Range, Setting};
use nol_core::{Call, Decision as CoreDecision, ForkSafeClient};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Number, Value};

use crate::arg;
use crate::types::{json_to_py, Decision};

/// How deep a Python value is followed into JSON (a list that contains itself ends there).
const MAX_DEPTH: usize = 64;

/// A Python value as JSON: `None`, `bool`, `int`, `float`, `str`, `dict` (keys as `str`),
/// `list` and `tuple`; anything else (and non-finite floats, too deep a nesting) is `null`.
/// Never fails.
pub(crate) fn py_to_json(ob: &Bound<'_, PyAny>) -> Value {
    to_json_at(ob, 0)
}

fn to_json_at(ob: &Bound<'_, PyAny>, depth: usize) -> Value {
    if depth > MAX_DEPTH || ob.is_none() {
        return Value::Null;
    }
    if let Ok(b) = ob.cast::<PyBool>() {
        return Value::Bool(b.is_true());
    }
    if ob.is_instance_of::<PyInt>() {
        if let Ok(i) = ob.extract::<i64>() {
            return Value::from(i);
        }
        if let Ok(u) = ob.extract::<u64>() {
            return Value::from(u);
        }
        return ob
            .extract::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map_or(Value::Null, Value::Number);
    }
    if let Ok(f) = ob.cast::<PyFloat>() {
        return Number::from_f64(f.value()).map_or(Value::Null, Value::Number);
    }
    if let Ok(s) = ob.cast::<PyString>() {
        return s
            .to_cow()
            .map_or(Value::Null, |s| Value::String(s.into_owned()));
    }
    if let Ok(d) = ob.cast::<PyDict>() {
        let mut map = Map::new();
        for (k, v) in d.iter() {
            let key = match k.cast::<PyString>() {
                Ok(s) => s.to_cow().map(|s| s.into_owned()).ok(),
                Err(_) => k.str().ok().map(|s| s.to_string()),
            };
            if let Some(key) = key {
                map.insert(key, to_json_at(&v, depth + 1));
            }
        }
        return Value::Object(map);
    }
    if let Ok(l) = ob.cast::<PyList>() {
        return Value::Array(l.iter().map(|v| to_json_at(&v, depth + 1)).collect());
    }
    if let Ok(t) = ob.cast::<PyTuple>() {
        return Value::Array(t.iter().map(|v| to_json_at(&v, depth + 1)).collect());
    }
    Value::Null
}

/// A webhook body: JSON `bytes` or `str`, or the `dict` already parsed. Anything else, or
/// what is not a JSON object, is an empty body (never an error).
fn body_object(body: &Bound<'_, PyAny>) -> Map<String, Value> {
    if let Ok(b) = body.cast::<PyBytes>() {
        return agents::body_object(b.as_bytes());
    }
    if let Ok(s) = body.cast::<PyString>() {
        return s
            .to_cow()
            .map(|s| agents::body_object(s.as_bytes()))
            .unwrap_or_default();
    }
    match py_to_json(body) {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// What an agent helper does: answer at once, or look a call up and render the decision.
pub(crate) enum Pending {
    Now(Value),
    Lookup {
        number: String,
        to: Option<String>,
        verstat: Option<String>,
        within: Duration,
        render: Box<dyn FnOnce(&CoreDecision) -> Value + Send>,
    },
}

impl Pending {
    /// Runs it (blocking; call with the interpreter released).
    pub(crate) fn run(self, client: &ForkSafeClient) -> Value {
        match self {
            Pending::Now(v) => v,
            Pending::Lookup {
                number,
                to,
                verstat,
                within,
                render,
            } => {
                let call = Call {
                    number: &number,
                    to: to.as_deref(),
                    verstat: verstat.as_deref(),
                    ..Call::default()
                };
                let d = match client.client() {
                    Ok(c) => c.lookup_within(&call, within),
                    // This process cannot start its client: nol-core's fail-open decision.
                    Err(_) => client.lookup(&call),
                };
                render(&d)
            }
        }
    }

    /// Runs it without waiting: `done` gets the answer once, at once or on a libnol thread.
    pub(crate) fn start(self, client: &ForkSafeClient, done: impl FnOnce(Value) + Send + 'static) {
        match self {
            Pending::Now(v) => done(v),
            Pending::Lookup {
                number,
                to,
                verstat,
                within,
                render,
            } => {
                let call = Call {
                    number: &number,
                    to: to.as_deref(),
                    verstat: verstat.as_deref(),
                    ..Call::default()
                };
                let finish = move |d: CoreDecision| done(render(&d));
                match client.client() {
                    Ok(c) => c.lookup_async_within(&call, within, finish),
                    Err(_) => client.lookup_async(&call, finish),
                }
            }
        }
    }
}

/// A per-call budget (nol-core's `budget_ms` range), or the client's.
fn within(client: &ForkSafeClient, budget_ms: Option<&Bound<'_, PyAny>>) -> PyResult<Duration> {
    Ok(arg::opt_setting_int("budget_ms", budget_ms)?
        .map(Duration::from_millis)
        .unwrap_or_else(|| client.budget()))
}

/// Retell's inbound webhook: the arguments read, the lookup to make.
pub(crate) fn retell(
    client: &ForkSafeClient,
    body: &Bound<'_, PyAny>,
    override_agent_id: Option<String>,
    override_agent_version: Option<&Bound<'_, PyAny>>,
    metadata: Option<&Bound<'_, PyAny>>,
    budget_ms: Option<&Bound<'_, PyAny>>,
) -> PyResult<Pending> {
    let override_agent_version = match override_agent_version.filter(|v| !v.is_none()) {
        None => None,
        Some(v) if v.is_instance_of::<PyBool>() => {
            return Err(arg::wrong_type("int, float or None", v))
        }
        Some(v) => Some(
            v.extract::<f64>()
                .map_err(|_| arg::wrong_type("int, float or None", v))?,
        ),
    };
    let metadata = match metadata.filter(|m| !m.is_none()) {
        None => Map::new(),
        Some(m) if m.is_instance_of::<PyDict>() => match py_to_json(m) {
            Value::Object(map) => map,
            _ => Map::new(),
        },
        Some(m) => return Err(arg::wrong_type("dict or None", m)),
    };
    let within = within(client, budget_ms)?;
    let options = RetellOptions {
        override_agent_id,
        override_agent_version,
        metadata,
    };
    let (number, to) = agents::retell_call(&body_object(body));
    Ok(Pending::Lookup {
        number,
        to,
        verstat: None,
        within,
        render: Box::new(move |d| agents::retell_response(d, &options)),
    })
}

/// One of Vapi's tool calls: the arguments read, the lookup to make (or the answer at once).
pub(crate) fn vapi(
    client: &ForkSafeClient,
    tool_call: &Bound<'_, PyAny>,
    budget_ms: Option<&Bound<'_, PyAny>>,
) -> PyResult<Pending> {
    if !tool_call.is_instance_of::<PyDict>() {
        return Err(arg::wrong_type(
            "a dict (an element of message.toolCallList)",
            tool_call,
        ));
    }
    let within = within(client, budget_ms)?;
    let Value::Object(tool_call) = py_to_json(tool_call) else {
        return Err(arg::wrong_type("a dict", tool_call));
    };
    let (id, args) = agents::vapi_tool_call_parts(&tool_call);
    let country = client
        .client()
        .ok()
        .and_then(|c| c.default_country().map(str::to_string));
    Ok(match agents::tool_call(&args, country.as_deref()) {
        ToolCall::Lookup { number, verstat } => Pending::Lookup {
            number: number.as_str().to_string(),
            to: None,
            verstat,
            within,
            render: Box::new(move |d| agents::vapi_response(&id, &agents::tool_result(d))),
        },
        ToolCall::Invalid(result) => Pending::Now(agents::vapi_response(&id, &result)),
    })
}

fn decision_of<'a>(ob: &'a Bound<'_, PyAny>) -> PyResult<&'a Bound<'a, Decision>> {
    ob.cast::<Decision>()
        .map_err(|_| arg::wrong_type("nol.Decision", ob))
}

/// The result an LLM tool returns for a caller check (Pipecat, LiveKit, Vapi, MCP), rendered
/// by nol-core: `valid`, `number`, `caller_name`, `verified` (a verified identity),
/// `identity_type`, `line_type`, `carrier`, `spam_risk`, `risk_score`, `recommended_action`,
/// `dnc`, `reassigned`, `receipt_id`, `fail_open` and `message` (see `llm_message`). A failed
/// lookup says nothing about the caller.
#[pyfunction]
pub fn tool_result<'py>(
    py: Python<'py>,
    decision: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let d = decision_of(decision)?;
    json_to_py(py, &agents::tool_result(&d.get().inner))
}

/// A sentence an LLM can speak around a decision (advisory wording; never a verdict).
#[pyfunction]
pub fn llm_message(decision: &Bound<'_, PyAny>) -> PyResult<String> {
    Ok(agents::llm_message(&decision_of(decision)?.get().inner))
}

/// `nol.SETTINGS`: nol-core's table of settings, one dict each: `name`, `kind` (`int`,
/// `one_of`, `flag` or `text`), `min` and `max` (ints), `values` (a tuple, for `one_of`),
/// `default` (an int, a bool, or text; `None` when unset) and `doc`.
pub(crate) fn settings_table(py: Python<'_>) -> PyResult<Bound<'_, PyTuple>> {
    let rows = settings::SETTINGS
        .iter()
        .map(|s| setting_dict(py, s))
        .collect::<PyResult<Vec<_>>>()?;
    PyTuple::new(py, rows)
}

fn setting_dict<'py>(py: Python<'py>, s: &Setting) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("name", s.name)?;
    let unset = s.default == "unset";
    match s.range {
        Range::Int { min, max } => {
            d.set_item("kind", "int")?;
            d.set_item("min", min)?;
            d.set_item("max", max)?;
            d.set_item("default", s.default.parse::<u64>().ok())?;
        }
        Range::OneOf(values) => {
            d.set_item("kind", "one_of")?;
            d.set_item("values", PyTuple::new(py, values)?)?;
            d.set_item("default", s.default.parse::<u64>().ok())?;
        }
        Range::Flag => {
            d.set_item("kind", "flag")?;
            d.set_item("default", settings::parse_flag(s.name, s.default).ok())?;
        }
        _ => {
            d.set_item("kind", "text")?;
            d.set_item("default", (!unset).then_some(s.default))?;
        }
    }
    d.set_item("doc", s.doc)?;
    Ok(d)
}
