//! A [`Decision`] in the forms voice-agent platforms take, rendered once here for every
//! binding and server: Retell's inbound webhook answer, Vapi's tool-call answer, and the tool
//! result and sentence an LLM gets (Pipecat, LiveKit, MCP).
//!
//! Everything here is advisory wording. A failed lookup says nothing about the caller, and no
//! name is ever invented.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::decision::Decision;
use crate::e164::{Caller, E164};
use crate::model::IdentityType;

/// DNC, reassigned-number and line-type status: `unknown` until a data partner is configured
/// (CONTRACT.md), and the inbound lookup carries no line type.
pub const UNKNOWN: &str = "unknown";

/// A webhook or tool-call body: the object in `bytes` (JSON text), or an empty object for
/// anything else. Never fails.
pub fn body_object(bytes: &[u8]) -> Map<String, Value> {
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

fn text_field<'a>(object: Option<&'a Value>, name: &str) -> Option<&'a str> {
    object?.as_object()?.get(name).and_then(Value::as_str)
}

/// The caller and the called number of Retell's inbound webhook
/// (`{"event":"call_inbound","call_inbound":{"from_number","to_number","agent_id"}}`). An
/// empty caller when the body has none (the lookup then fails open as `invalid_number`).
pub fn retell_call(body: &Map<String, Value>) -> (String, Option<String>) {
    let inbound = body.get("call_inbound");
    (
        text_field(inbound, "from_number").unwrap_or("").to_string(),
        text_field(inbound, "to_number").map(str::to_string),
    )
}

/// What the operator adds to Retell's answer.
#[derive(Clone, Debug, Default)]
pub struct RetellOptions {
    /// Answer with `override_agent_id` (and `override_agent_version`).
    pub override_agent_id: Option<String>,
    pub override_agent_version: Option<f64>,
    /// Extra `metadata` to return (libnol's keys win).
    pub metadata: Map<String, Value>,
}

/// Retell's dynamic variables for a decision (all strings): `caller_name` (empty when unknown),
/// `caller_risk` (`low`/`medium`/`high`/`unknown`), `caller_risk_score`, `caller_line_type`,
/// `caller_on_dnc` and `caller_reassigned` (`unknown`), `caller_verified` (`true`/`false`: a
/// verified identity), `caller_identity`, `caller_action`, `receipt_id`.
pub fn retell_dynamic_variables(d: &Decision) -> BTreeMap<&'static str, String> {
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
    vars.insert("caller_line_type", UNKNOWN.into());
    vars.insert("caller_on_dnc", UNKNOWN.into());
    vars.insert("caller_reassigned", UNKNOWN.into());
    vars.insert("caller_verified", d.identity_verified().to_string());
    vars.insert(
        "caller_identity",
        d.identity_type
            .as_ref()
            .map(|t| t.as_str().to_string())
            .unwrap_or_else(|| UNKNOWN.into()),
    );
    vars.insert("caller_action", d.action.as_str().to_string());
    vars.insert("receipt_id", d.receipt_id.clone().unwrap_or_default());
    vars
}

/// The body to answer Retell's inbound webhook with (HTTP 200):
/// `{"call_inbound":{"dynamic_variables":{...},"metadata":{...}}}`.
pub fn retell_response(d: &Decision, options: &RetellOptions) -> Value {
    let mut metadata = options.metadata.clone();
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
    inbound.insert(
        "dynamic_variables".into(),
        json!(retell_dynamic_variables(d)),
    );
    inbound.insert("metadata".into(), Value::Object(metadata));
    json!({ "call_inbound": inbound })
}

/// A sentence an LLM can speak around a decision.
pub fn llm_message(d: &Decision) -> String {
    if let Some(reason) = d.fail_open() {
        return match reason.as_str() {
            "invalid_number" | "anonymous" => {
                "That number can't be checked. Carry on with the call as usual.".into()
            }
            _ => "The caller check isn't available right now. Carry on with the call as usual; don't mention the check.".into(),
        };
    }
    let verified = d.identity_verified();
    let who = match (&d.caller_name, &d.identity_type) {
        (_, Some(IdentityType::VerifiedIndividual)) if verified => {
            "a verified individual's; no name is shared".into()
        }
        (Some(name), Some(t)) if verified && t.is_verified() => {
            format!("a verified caller, {name}")
        }
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

/// The result an LLM tool returns for a caller check (Vapi, Pipecat, LiveKit, MCP): `valid`,
/// `number`, `caller_name`, `verified` (a verified identity), `identity_type`, `line_type`,
/// `carrier`, `spam_risk`, `risk_score`, `recommended_action`, `dnc`, `reassigned`,
/// `receipt_id`, `fail_open`, and `message` (see [`llm_message`]).
pub fn tool_result(d: &Decision) -> Value {
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
        "message": llm_message(d),
    })
}

/// The tool result when the LLM gave no usable number: answered at once, nothing looked up.
pub fn invalid_number_result(detail: &str) -> Value {
    json!({
        "valid": false,
        "error": "invalid_argument",
        "detail": detail,
        "dnc": UNKNOWN,
        "reassigned": UNKNOWN,
        "message": "I couldn't check that number: it doesn't look like a phone number. Ask the caller to repeat it, or carry on without the check.",
    })
}

/// A tool call's arguments (`number` or `phone_number`, optional `country` and `verstat`),
/// normalized.
#[derive(Clone, Debug, PartialEq)]
pub enum ToolCall {
    /// Look this number up.
    Lookup {
        number: E164,
        verstat: Option<String>,
    },
    /// Nothing to look up: answer with this result at once.
    Invalid(Value),
}

/// Reads a tool call's arguments (an object, or the JSON text of one, OpenAI style) for a
/// `phone_lookup`-style tool. `default_country` reads national numbers unless the call gives
/// its own `country`.
pub fn tool_call(arguments: &Value, default_country: Option<&str>) -> ToolCall {
    let args = match arguments {
        Value::Object(m) => m.clone(),
        Value::String(text) => match serde_json::from_str(text) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        },
        _ => Map::new(),
    };
    let text = |k: &str| args.get(k).and_then(Value::as_str).map(str::trim);
    let number = text("number")
        .or_else(|| text("phone_number"))
        .or_else(|| text("phoneNumber"))
        .filter(|n| !n.is_empty());
    let country = text("country")
        .filter(|c| !c.is_empty())
        .or(default_country);
    let detail = match number.map(|n| E164::parse(n, country)) {
        Some(Ok(Caller::Number(number))) => {
            return ToolCall::Lookup {
                number,
                verstat: text("verstat").map(str::to_string),
            }
        }
        None => "no number was given".to_string(),
        Some(Err(e)) => e.to_string(),
        Some(Ok(Caller::Anonymous)) => "the number is withheld".to_string(),
    };
    ToolCall::Invalid(invalid_number_result(&detail))
}

/// The arguments of one of Vapi's tool calls (an element of `message.toolCallList`), and its
/// id.
pub fn vapi_tool_call_parts(tool_call: &Map<String, Value>) -> (String, Value) {
    let id = tool_call
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let args = tool_call
        .get("function")
        .and_then(|f| f.get("arguments").or_else(|| f.get("parameters")))
        .or_else(|| tool_call.get("arguments"))
        .cloned()
        .unwrap_or(Value::Null);
    (id, args)
}

/// Vapi's answer to a tool call: `{"results":[{"toolCallId","result"}]}` with the result as
/// JSON text.
pub fn vapi_response(id: &str, result: &Value) -> Value {
    json!({ "results": [{ "toolCallId": id, "result": result.to_string() }] })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::fail_open::FailOpen;
    use crate::policy::Policy;
    use crate::stir::Stir;

    #[test]
    fn failed_lookups_say_nothing_about_the_caller() {
        let d = Policy::default().fail_open(FailOpen::Timeout, None, Stir::default(), None);
        let vars = retell_dynamic_variables(&d);
        assert_eq!(vars["caller_name"], "");
        assert_eq!(vars["caller_verified"], "false");
        assert_eq!(vars["caller_action"], "allow_with_default_policy");
        let r = tool_result(&d);
        assert_eq!(r["fail_open"], "timeout");
        assert!(r["message"].as_str().unwrap().contains("isn't available"));
    }

    #[test]
    fn tool_calls() {
        let ToolCall::Lookup { number, .. } =
            tool_call(&json!(r#"{"number":"(415) 555-1212"}"#), Some("US"))
        else {
            panic!("national number with a default country")
        };
        assert_eq!(number.as_str(), "+14155551212");
        assert!(matches!(
            tool_call(&json!({"number": "banana"}), None),
            ToolCall::Invalid(_)
        ));
        assert!(matches!(
            tool_call(&Value::Null, None),
            ToolCall::Invalid(_)
        ));
        let (id, args) = vapi_tool_call_parts(
            json!({"id":"t1","function":{"arguments":{"number":"+14155551212"}}})
                .as_object()
                .unwrap(),
        );
        assert_eq!(id, "t1");
        assert!(matches!(tool_call(&args, None), ToolCall::Lookup { .. }));
        let (from, to) = retell_call(&body_object(
            br#"{"call_inbound":{"from_number":"+14155551212","to_number":"+12125550100"}}"#,
        ));
        assert_eq!(
            (from.as_str(), to.as_deref()),
            ("+14155551212", Some("+12125550100"))
        );
        assert_eq!(retell_call(&body_object(b"not json")).0, "");
    }
}
