//! The routes. Every lookup goes through [`lookup`]: libnol's non-blocking lookup bridged to a
//! oneshot, with a safety timeout a little past the budget, so no handler can wait longer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Query, State as AxState};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;

use nol_core::agents;
use nol_core::client::Context;
use nol_core::sanitize::sanitize;
use nol_core::{Call, Caller, Decision, FailOpen, Stir, E164};

use crate::{auth, mcp, metrics, State, Tenant};

/// What one lookup asks.
#[derive(Clone, Debug, Default)]
pub(crate) struct Ask {
    pub(crate) number: String,
    pub(crate) context: Context,
    pub(crate) to: Option<String>,
    pub(crate) verstat: Option<String>,
    pub(crate) attestation: Option<String>,
}

/// Room past the budget for the safety timeout: libnol answers by its deadline itself.
const SLACK: Duration = Duration::from_millis(100);

/// Looks up within `budget` (the tenant's budget when shorter) without blocking the runtime.
pub(crate) async fn lookup(tenant: &Tenant, ask: &Ask, budget: Option<Duration>) -> Decision {
    let budget = budget.map_or(tenant.client.budget(), |b| b.min(tenant.client.budget()));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let call = Call {
        number: &ask.number,
        context: ask.context,
        to: ask.to.as_deref(),
        verstat: ask.verstat.as_deref(),
        attestation: ask.attestation.as_deref(),
        local_contact: None,
    };
    tenant.client.lookup_async_within(&call, budget, move |d| {
        let _ = tx.send(d);
    });
    match tokio::time::timeout(budget + SLACK, rx).await {
        Ok(Ok(d)) => d,
        _ => {
            let number = match E164::parse(&ask.number, tenant.client.default_country()) {
                Ok(Caller::Number(n)) => Some(n),
                _ => None,
            };
            tenant.client.policy().fail_open(
                FailOpen::Timeout,
                number,
                Stir::from_parts(ask.verstat.as_deref(), ask.attestation.as_deref()),
                None,
            )
        }
    }
}

pub(crate) fn router(state: Arc<State>, addr: SocketAddr, cancel: CancellationToken) -> Router {
    let authed = Router::new()
        .route("/v1/cid", get(cid))
        .route("/api/v1/inbound/lookup", post(inbound_lookup))
        .route("/v1/lookup", post(inbound_lookup))
        .route("/api/v1/precall/lookup", post(precall_lookup))
        .route("/api/v1/precall/enroll", post(precall_enroll))
        .route("/retell/inbound", post(retell))
        .route("/api/v1/integrations/retell/inbound", post(retell))
        .route("/vapi/tool", post(vapi))
        .route("/api/v1/integrations/vapi/tool", post(vapi))
        .nest_service("/mcp", mcp::service(state.clone(), addr, cancel.clone()))
        .nest_service("/api/v1/mcp", mcp::service(state.clone(), addr, cancel))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_tenant,
        ));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics_text))
        .merge(authed)
        .with_state(state)
}

async fn metrics_text(AxState(state): AxState<Arc<State>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics::render(&state),
    )
        .into_response()
}

/// Text for a plain-text host: sanitized once more (no CR, LF or control character can reach
/// a caller-name field, whatever changes upstream).
fn plain(text: &str) -> String {
    sanitize(text)
}

/// A number in E.164 when a `country` reads it; otherwise as given (libnol reads it with the
/// tenant's `default_country`).
fn with_country(number: &str, country: Option<&str>) -> String {
    match country.filter(|c| !c.is_empty()) {
        Some(cc) => match E164::parse(number, Some(cc)) {
            Ok(Caller::Number(n)) => n.as_str().to_string(),
            _ => number.to_string(),
        },
        None => number.to_string(),
    }
}

/// `GET /v1/cid?number=...[&country=CC][&key=TOKEN][&format=json]`: the caller name on a
/// verified hit (with the operator's risk tag, as configured), an empty body otherwise.
async fn cid(
    AxState(state): AxState<Arc<State>>,
    Extension(tenant): Extension<Arc<Tenant>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    // mod_cidlookup pastes ${caller_id_number} into the URL unencoded: a `+` arrives as a
    // space once form-decoded. A leading one is the E.164 plus.
    let raw = q.get("number").map(String::as_str).unwrap_or("");
    let raw = match raw.strip_prefix(' ') {
        Some(rest) => format!("+{}", rest.trim()),
        None => raw.trim().to_string(),
    };
    let number = with_country(&raw, q.get("country").map(String::as_str));
    let ask = Ask {
        number,
        verstat: q.get("verstat").cloned(),
        ..Ask::default()
    };
    let start = Instant::now();
    let d = lookup(&tenant, &ask, None).await;
    state.metrics.request("cid", Some(start.elapsed()));
    let name = if d.fail_open().is_none() {
        d.caller_name.as_deref().map(plain).unwrap_or_default()
    } else {
        String::new()
    };
    if q.get("format").map(String::as_str) == Some("json") {
        // `name` only on a hit: 3CX's template matches on its presence.
        let mut v = json!({
            "found": !name.is_empty(),
            "number": d.number.as_ref().map(|n| n.as_str()),
            "action": d.action.as_str(),
            "risk_score": d.risk_score,
            "fail_open": d.fail_open().map(|r| r.as_str()),
        });
        if !name.is_empty() {
            v["name"] = json!(name);
        }
        return Json(v).into_response();
    }
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], name).into_response()
}

fn text<'a>(body: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    body.get(name).and_then(Value::as_str)
}

/// The service's answer shape for a decision, from libnol's cache or a fresh verified answer,
/// and `allow_with_default_policy` with the reason when failing open. `display_label` is the
/// name libnol decided to show (with the operator's risk tag), `decision` libnol's full JSON.
fn answer(d: &Decision) -> Value {
    json!({
        "result": d.result.as_ref().map(|r| r.as_str()),
        "number": d.number.as_ref().map(|n| n.as_str()),
        "identity_type": d.identity_type.as_ref().map(|t| t.as_str()),
        "display_label": d.caller_name,
        "risk_score": d.risk_score,
        "risk_level": d.risk_level,
        "recommended_action": d.action.as_str(),
        "ttl_seconds": d.ttl.map(|t| t.as_secs()),
        "receipt_id": d.receipt_id,
        "verified": d.verified(),
        "from_cache": d.from_cache(),
        "fail_open": d.fail_open().map(|r| r.as_str()),
        "caller_name": d.caller_name,
        "decision": d.view(),
    })
}

/// `POST /api/v1/inbound/lookup` (and `/v1/lookup`): `{"number","context","to","attestation",
/// "verstat"}` as the service takes it. A body without a usable number fails open
/// (`invalid_number`), never an error: the host's call goes on.
async fn inbound_lookup(
    AxState(state): AxState<Arc<State>>,
    Extension(tenant): Extension<Arc<Tenant>>,
    body: Bytes,
) -> Response {
    let body = agents::body_object(&body);
    let ask = Ask {
        number: with_country(text(&body, "number").unwrap_or(""), text(&body, "country")),
        context: text(&body, "context")
            .and_then(Context::parse)
            .unwrap_or_default(),
        to: text(&body, "to").map(str::to_string),
        verstat: text(&body, "verstat").map(str::to_string),
        attestation: text(&body, "attestation").map(str::to_string),
    };
    let start = Instant::now();
    let d = lookup(&tenant, &ask, None).await;
    state
        .metrics
        .request("inbound_lookup", Some(start.elapsed()));
    Json(answer(&d)).into_response()
}

/// `POST /api/v1/precall/lookup`: `{"from","to"}` → `{"dnc","compliance_signal","receipt_id"}`,
/// `UNKNOWN` with the reason on any failure.
async fn precall_lookup(
    AxState(state): AxState<Arc<State>>,
    Extension(tenant): Extension<Arc<Tenant>>,
    body: Bytes,
) -> Response {
    let body = agents::body_object(&body);
    let from = text(&body, "from").unwrap_or("").to_string();
    let to = text(&body, "to").unwrap_or("").to_string();
    let deadline = Instant::now() + tenant.client.budget();
    let client = tenant.client.clone();
    let p = tokio::task::spawn_blocking(move || client.precall_until(&from, &to, deadline))
        .await
        .unwrap_or_else(|_| nol_core::client::Precall::failed(FailOpen::Timeout));
    state.metrics.request("precall_lookup", None);
    Json(json!({
        "dnc": p.dnc.as_str(),
        "compliance_signal": p.compliance_signal,
        "receipt_id": p.receipt_id,
        "fail_open": p.fail_open.as_ref().map(|r| r.as_str()),
    }))
    .into_response()
}

/// `POST /api/v1/precall/enroll`: `{"number"}` → `{"enrolled","number"}`.
async fn precall_enroll(
    AxState(state): AxState<Arc<State>>,
    Extension(tenant): Extension<Arc<Tenant>>,
    body: Bytes,
) -> Response {
    let body = agents::body_object(&body);
    let number = text(&body, "number").unwrap_or("").to_string();
    let deadline = Instant::now() + tenant.client.budget();
    let client = tenant.client.clone();
    let e = tokio::task::spawn_blocking(move || client.enroll_until(&number, deadline))
        .await
        .unwrap_or_else(|_| nol_core::client::Enrollment::failed(None, FailOpen::Timeout));
    state.metrics.request("precall_enroll", None);
    Json(json!({
        "enrolled": e.enrolled,
        "number": e.number,
        "fail_open": e.fail_open.as_ref().map(|r| r.as_str()),
    }))
    .into_response()
}

/// Retell's `call_inbound` webhook: always 200, within Retell's 10 s, rendered by nol-core.
async fn retell(
    AxState(state): AxState<Arc<State>>,
    Extension(tenant): Extension<Arc<Tenant>>,
    body: Bytes,
) -> Response {
    let body = agents::body_object(&body);
    let (from, to) = agents::retell_call(&body);
    let ask = Ask {
        number: from,
        to,
        ..Ask::default()
    };
    let start = Instant::now();
    let d = lookup(&tenant, &ask, Some(state.retell_budget)).await;
    state.metrics.request("retell", Some(start.elapsed()));
    (
        StatusCode::OK,
        Json(agents::retell_response(
            &d,
            &agents::RetellOptions::default(),
        )),
    )
        .into_response()
}

/// Vapi's tool call (`{"message":{"toolCallList":[{"id","function":{"arguments"}}]}}`): always
/// 200 within Vapi's 7.5 s, one result per tool call, rendered by nol-core.
async fn vapi(
    AxState(state): AxState<Arc<State>>,
    Extension(tenant): Extension<Arc<Tenant>>,
    body: Bytes,
) -> Response {
    let body = agents::body_object(&body);
    let calls: Vec<Map<String, Value>> = body
        .get("message")
        .and_then(|m| m.get("toolCallList").or_else(|| m.get("toolCalls")))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|c| c.as_object().cloned()).collect())
        .unwrap_or_default();
    let start = Instant::now();
    let mut results = Vec::new();
    for call in calls.iter().take(16) {
        let (id, args) = agents::vapi_tool_call_parts(call);
        let result = tool(&tenant, &args, Some(state.vapi_budget)).await;
        let mut rendered = agents::vapi_response(&id, &result);
        if let Some(Value::Array(r)) = rendered.get_mut("results") {
            results.append(r);
        }
    }
    state.metrics.request("vapi", Some(start.elapsed()));
    (StatusCode::OK, Json(json!({ "results": results }))).into_response()
}

/// A `phone_lookup`-style tool call: the LLM tool result of nol-core.
pub(crate) async fn tool(tenant: &Tenant, args: &Value, budget: Option<Duration>) -> Value {
    match agents::tool_call(args, tenant.client.default_country()) {
        agents::ToolCall::Invalid(result) => result,
        agents::ToolCall::Lookup { number, verstat } => {
            let ask = Ask {
                number: number.as_str().to_string(),
                verstat,
                ..Ask::default()
            };
            agents::tool_result(&lookup(tenant, &ask, budget).await)
        }
    }
}
