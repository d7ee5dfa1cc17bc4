//! Helpers for the agent platforms that call a Node server on the call path, built on
//! [`Client`]: Retell's `call_inbound` webhook and Vapi's custom-tool calls. Both settle within
//! the client's budget (or the one given) and never reject for anything the network, the
//! service or the platform's request does: a bad request gets a valid, fail-open answer.

use std::collections::BTreeMap;

use napi::bindgen_prelude::{Buffer, Either, PromiseRaw, Unknown};
use napi::Env;
use napi_derive::napi;
use nol_core::client::Call;
use nol_core::policy::Decision as CoreDecision;
use nol_core::{Caller, IdentityType, E164};
use serde_json::{json, Map, Value};

use crate::client::{budget, promise_of, Client};
use crate::error::{self, invalid_arg, Code, Error, Result};

/// DNC and reassigned-number status: `unknown` until a data partner is configured (CONTRACT.md).
const UNKNOWN: &str = "unknown";

/// Options of [`retell_inbound`].
#[napi(object)]
pub struct RetellInboundOptions {
    /// Answer with `override_agent_id` (and `override_agent_version`).
    pub override_agent_id: Option<String>,
    pub override_agent_version: Option<f64>,
    /// Extra `metadata` to return (merged with libnol's).
    pub metadata: Option<Map<String, Value>>,
    /// A budget for this lookup instead of the client's (Retell waits 10 s at most).
    pub budget_ms: Option<f64>,
}

/// The webhook body as raw bytes, text, or the object `JSON.parse` made.
fn body_object(body: Either<Buffer, Value>) -> Map<String, Value> {
    let body = match body {
        Either::A(bytes) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        Either::B(Value::String(text)) => serde_json::from_str(&text).unwrap_or(Value::Null),
        Either::B(other) => other,
    };
    match body {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn text_field<'a>(object: Option<&'a Value>, names: &[&str]) -> Option<&'a str> {
    let object = object?.as_object()?;
    names
        .iter()
        .find_map(|n| object.get(*n).and_then(Value::as_str))
}

fn yes_no(b: bool) -> String {
    if b { "true" } else { "false" }.to_string()
}

/// Retell's dynamic variables (all strings) and metadata for a decision.
fn retell_response(d: &CoreDecision, options: &RetellInboundOptions) -> Value {
    let mut vars = BTreeMap::new();
    vars.insert("caller_name", d.caller_name.clone().unwrap_or_default());
    vars.insert(
        "caller_risk",
        d.risk_level.clone().unwrap_or_else(|| UNKNOWN.into()),
    );
    vars.insert(
        "caller_risk_score",
        d.risk_score.map(|r| r.to_string()).unwrap_or_default(),
    );
    // The inbound lookup carries no line type; the variable is there for prompts that use it.
    vars.insert("caller_line_type", UNKNOWN.into());
    vars.insert("caller_on_dnc", UNKNOWN.into());
    vars.insert("caller_reassigned", UNKNOWN.into());
    vars.insert("caller_verified", yes_no(d.identity_verified()));
    vars.insert(
        "caller_identity",
        d.identity_type
            .as_ref()
            .map(|t| t.as_str().to_string())
            .unwrap_or_else(|| UNKNOWN.into()),
    );
    vars.insert("caller_action", d.action.as_str().to_string());
    vars.insert("receipt_id", d.receipt_id.clone().unwrap_or_default());

    let mut metadata = options.metadata.clone().unwrap_or_default();
    metadata.insert("provider".into(), json!("numbers.online"));
    metadata.insert("receipt_id".into(), json!(d.receipt_id));
    metadata.insert("action".into(), json!(d.action.as_str()));
    metadata.insert("fail_open".into(), json!(d.fail_open().map(|r| r.as_str())));
    metadata.insert(
        "caller_number".into(),
        json!(d.number.as_ref().map(|n| n.as_str())),
    );

    let mut inbound = Map::new();
    if let Some(agent) = &options.override_agent_id {
        inbound.insert("override_agent_id".into(), json!(agent));
        if let Some(v) = options.override_agent_version {
            inbound.insert("override_agent_version".into(), json!(v));
        }
    }
    inbound.insert("dynamic_variables".into(), json!(vars));
    inbound.insert("metadata".into(), Value::Object(metadata));
    json!({ "call_inbound": inbound })
}

/// Answers Retell's inbound webhook (`{"event":"call_inbound","call_inbound":{"from_number",
/// "to_number","agent_id"}}`, as the parsed object or the raw text) with the body to send
/// back with HTTP 200: `{"call_inbound":{"dynamic_variables":{...},"metadata":{...}}}`.
///
/// Dynamic variables (strings): `caller_name` (empty when unknown: nothing is invented),
/// `caller_risk` (`low`/`medium`/`high`/`unknown`), `caller_risk_score`, `caller_line_type`,
/// `caller_on_dnc` and `caller_reassigned` (`unknown` until a data partner is configured),
/// `caller_verified`, `caller_identity`, `caller_action`, `receipt_id`.
///
/// Resolves within the budget and never rejects: a body without a caller number, or one that
/// is not JSON, gets the fail-open variables. Throws only for a bad `options` value.
#[napi(
    ts_return_type = "Promise<{ call_inbound: { override_agent_id?: string; override_agent_version?: number; dynamic_variables: Record<string, string>; metadata: Record<string, unknown> } }>"
)]
pub fn retell_inbound<'env>(
    env: &'env Env,
    client: &Client,
    #[napi(ts_arg_type = "object | string | Buffer")] body: Either<Buffer, Unknown<'_>>,
    options: Option<RetellInboundOptions>,
) -> Result<PromiseRaw<'env, Value>> {
    let options = options.unwrap_or(RetellInboundOptions {
        override_agent_id: None,
        override_agent_version: None,
        metadata: None,
        budget_ms: None,
    });
    let within = match options.budget_ms {
        Some(ms) => budget("options.budgetMs", ms)?,
        None => client.inner.budget(),
    };
    let body = body_object(match body {
        Either::A(bytes) => Either::A(bytes),
        // Whatever cannot be read as JSON (a function, a symbol) is no call_inbound body.
        Either::B(value) => Either::B(env.from_js_value(value).unwrap_or(Value::Null)),
    });
    let inbound = body.get("call_inbound");
    let from = text_field(inbound, &["from_number"]).unwrap_or("");
    let to = text_field(inbound, &["to_number"]);
    let call = Call {
        number: from,
        to,
        ..Call::default()
    };
    promise_of(env, &client.inner, &call, within, move |d| {
        retell_response(d, &options)
    })
}

/// Options of [`vapi_tool_result`].
#[napi(object)]
pub struct VapiToolOptions {
    /// A budget for this lookup instead of the client's (Vapi's assistant waits 7.5 s at most).
    pub budget_ms: Option<f64>,
}

/// What the agent can say around a result.
fn vapi_message(d: &CoreDecision) -> String {
    if let Some(reason) = d.fail_open() {
        return match reason.as_str() {
            "invalid_number" | "anonymous" => "That number can't be checked. Carry on with the call as usual.".into(),
            _ => "The caller check isn't available right now. Carry on with the call as usual; don't mention the check.".into(),
        };
    }
    let who = match (&d.caller_name, &d.identity_type) {
        (_, Some(IdentityType::VerifiedIndividual)) => {
            "a verified individual's; no name is shared".into()
        }
        (Some(name), Some(t)) if t.is_verified() => format!("a verified caller, {name}"),
        (Some(name), _) => format!("listed as {name}"),
        (None, _) => "not listed".into(),
    };
    let risk = d
        .risk_level
        .as_deref()
        .map(|r| format!(" Spam risk is {r}."))
        .unwrap_or_default();
    format!("The number is {who}.{risk} This is a supplementary signal, not a verdict.")
}

fn vapi_bundle(d: &CoreDecision) -> Value {
    json!({
        "valid": d.number.is_some(),
        "number": d.number.as_ref().map(|n| n.as_str()),
        "caller_name": d.caller_name,
        "verified": d.identity_verified(),
        "identity_type": d.identity_type.as_ref().map(|t| t.as_str()),
        "line_type": UNKNOWN,
        "carrier": Value::Null,
        "spam_risk": d.risk_level.as_deref().unwrap_or(UNKNOWN),
        "risk_score": d.risk_score,
        "recommended_action": d.action.as_str(),
        "dnc": UNKNOWN,
        "reassigned": UNKNOWN,
        "receipt_id": d.receipt_id,
        "fail_open": d.fail_open().map(|r| r.as_str()),
        "message": vapi_message(d),
    })
}

fn vapi_response(id: &str, result: Value) -> Value {
    json!({ "results": [{ "toolCallId": id, "result": result.to_string() }] })
}

/// The tool call's arguments: an object, or the JSON text of one (OpenAI style).
fn arguments(tool_call: &Map<String, Value>) -> Map<String, Value> {
    let raw = tool_call
        .get("function")
        .and_then(|f| f.get("arguments").or_else(|| f.get("parameters")))
        .or_else(|| tool_call.get("arguments"));
    match raw {
        Some(Value::Object(m)) => m.clone(),
        Some(Value::String(text)) => match serde_json::from_str(text) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        },
        _ => Map::new(),
    }
}

/// Answers one of Vapi's tool calls (an element of `message.toolCallList`) for a
/// `phone_lookup`-style tool whose arguments are `number` (or `phone_number`) and optionally
/// `country` (for a national number) and `verstat`. Resolves to Vapi's response,
/// `{"results":[{"toolCallId","result"}]}`, where `result` is the bundle as a JSON string:
/// `valid`, `number`, `caller_name`, `verified`, `identity_type`, `line_type`, `carrier`,
/// `spam_risk`, `risk_score`, `recommended_action`, `dnc`, `reassigned`, `receipt_id`,
/// `fail_open`, and `message`, a sentence the agent can speak around. A missing or bad number
/// answers at once with `valid: false`, `error: "invalid_argument"` and such a message.
///
/// Resolves within the budget and never rejects. Throws only when `toolCall` is not an object
/// or for a bad `options` value.
#[napi(ts_return_type = "Promise<{ results: Array<{ toolCallId: string; result: string }> }>")]
pub fn vapi_tool_result<'env>(
    env: &'env Env,
    client: &Client,
    #[napi(ts_arg_type = "object")] tool_call: Value,
    options: Option<VapiToolOptions>,
) -> Result<PromiseRaw<'env, Value>> {
    let Value::Object(tool_call) = tool_call else {
        return Err(invalid_arg(
            "toolCall must be an element of message.toolCallList (an object)",
        ));
    };
    let within = match options.and_then(|o| o.budget_ms) {
        Some(ms) => budget("options.budgetMs", ms)?,
        None => client.inner.budget(),
    };
    let id = tool_call
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let args = arguments(&tool_call);
    let text = |k: &str| args.get(k).and_then(Value::as_str).map(str::trim);
    let number = text("number")
        .or_else(|| text("phone_number"))
        .or_else(|| text("phoneNumber"))
        .filter(|n| !n.is_empty());
    // The tool call's own `country`, else the client's default country.
    let country = text("country")
        .filter(|c| !c.is_empty())
        .or(client.inner.default_country());
    let normalized = number.map(|n| E164::parse(n, country));
    let number = match normalized {
        Some(Ok(Caller::Number(n))) => n,
        other => {
            let why = match other {
                None => "no number was given".to_string(),
                Some(Err(e)) => error::from_e164(e).reason,
                Some(Ok(Caller::Anonymous)) => "the number is withheld".to_string(),
                Some(Ok(Caller::Number(_))) => unreachable!(),
            };
            let result = json!({
                "valid": false,
                "error": "invalid_argument",
                "detail": why,
                "dnc": UNKNOWN,
                "reassigned": UNKNOWN,
                "message": "I couldn't check that number: it doesn't look like a phone number. Ask the caller to repeat it, or carry on without the check.",
            });
            return PromiseRaw::resolve(env, vapi_response(&id, result))
                .map_err(|e| Error::new(Code::Config, e.reason));
        }
    };
    let call = Call {
        number: number.as_str(),
        verstat: text("verstat"),
        ..Call::default()
    };
    promise_of(env, &client.inner, &call, within, move |d| {
        vapi_response(&id, vapi_bundle(d))
    })
}
