//! `nol_core::agents`: the agent platforms that call a Node server on the call path, built on
//! [`Client`]: Retell's `call_inbound` webhook and Vapi's custom-tool calls. What they read
//! and answer is nol-core's; this module only turns JavaScript values into its inputs and its
//! answers into Promises. Both settle within the client's budget (or the one given) and never
//! reject for anything the network, the service or the platform's request does: a bad request
//! gets a valid, fail-open answer.

use napi::bindgen_prelude::{Buffer, Either, PromiseRaw, Unknown};
use napi::Env;
use napi_derive::napi;
use nol_core::agents::{self, RetellOptions, ToolCall};
use nol_core::client::Call;
use serde_json::{Map, Value};

use crate::client::{budget, promise_of, Client};
use crate::error::{invalid_arg, Code, Error, Result};

/// Options of [`retell_inbound`].
#[napi(object)]
pub struct RetellInboundOptions {
    /// Answer with `override_agent_id` (and `override_agent_version`).
    pub override_agent_id: Option<String>,
    pub override_agent_version: Option<f64>,
    /// Extra `metadata` to return (merged with libnol's; libnol's keys win).
    pub metadata: Option<Map<String, Value>>,
    /// A budget for this lookup instead of the client's (`budget_ms` in `SETTINGS`; Retell
    /// waits 10 s at most).
    pub budget_ms: Option<f64>,
}

/// The webhook body as nol-core reads it: raw bytes or text are JSON, an object is as
/// `JSON.parse` made it, anything else is an empty body.
fn body_object(env: &Env, body: Either<Buffer, Unknown<'_>>) -> Map<String, Value> {
    match body {
        Either::A(bytes) => agents::body_object(&bytes),
        // Whatever cannot be read as JSON (a function, a symbol) is no call_inbound body.
        Either::B(value) => match env.from_js_value(value).unwrap_or(Value::Null) {
            Value::String(text) => agents::body_object(text.as_bytes()),
            Value::Object(map) => map,
            _ => Map::new(),
        },
    }
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
    ts_return_type = "Promise<{ call_inbound: { override_agent_id?: string; override_agent_version?: number; dynamic_variables: Record<string, string>; metadata: Record<string, unknown> } }>",
    catch_unwind
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
        Some(ms) => budget(ms)?,
        None => client.inner.budget(),
    };
    let retell = RetellOptions {
        override_agent_id: options.override_agent_id,
        override_agent_version: options.override_agent_version,
        metadata: options.metadata.unwrap_or_default(),
    };
    let (from, to) = agents::retell_call(&body_object(env, body));
    let call = Call {
        number: &from,
        to: to.as_deref(),
        ..Call::default()
    };
    promise_of(env, &client.inner, &call, within, move |d| {
        agents::retell_response(d, &retell)
    })
}

/// Options of [`vapi_tool_result`].
#[napi(object)]
pub struct VapiToolOptions {
    /// A budget for this lookup instead of the client's (`budget_ms` in
    /// `SETTINGS`; Vapi's assistant waits 7.5 s at most).
    pub budget_ms: Option<f64>,
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
#[napi(
    ts_return_type = "Promise<{ results: Array<{ toolCallId: string; result: string }> }>",
    catch_unwind
)]
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
        Some(ms) => budget(ms)?,
        None => client.inner.budget(),
    };
    let (id, args) = agents::vapi_tool_call_parts(&tool_call);
    let (number, verstat) = match agents::tool_call(&args, client.inner.default_country()) {
        ToolCall::Lookup { number, verstat } => (number, verstat),
        ToolCall::Invalid(result) => {
            return PromiseRaw::resolve(env, agents::vapi_response(&id, &result))
                .map_err(|e| Error::new(Code::Config, e.reason));
        }
    };
    let call = Call {
        number: number.as_str(),
        verstat: verstat.as_deref(),
        ..Call::default()
    };
    promise_of(env, &client.inner, &call, within, move |d| {
        agents::vapi_response(&id, &agents::tool_result(d))
    })
}
