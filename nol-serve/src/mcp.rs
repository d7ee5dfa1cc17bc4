//! MCP over Streamable HTTP with the official Rust SDK (`rmcp`): the service's five read-only
//! tools. `phone_lookup` and `caller_risk` look the number up (with an optional `verstat`)
//! and answer nol-core's LLM tool result; `line_type`, `dnc_check` and `reassigned_check`
//! check the number and answer `unknown` without a lookup (no data partner is configured, and
//! the inbound lookup carries no line type), so they cost nothing.
//!
//! The tenant comes from the HTTP request (the auth middleware put it there); rmcp hands the
//! request's parts to the handler.

use std::net::SocketAddr;
use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, InitializeResult,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;

use nol_core::agents;

use crate::{app, State, Tenant};

/// The tools, in the service's order: name, whether it looks the number up, description.
const TOOLS: [(&str, bool, &str); 5] = [
    (
        "phone_lookup",
        true,
        "Who is calling: caller name where available (verified businesses by name, verified individuals never by name), identity type, spam risk, recommended action and a signed receipt id. A supplementary, low-confidence signal, not a verdict.",
    ),
    (
        "line_type",
        false,
        "Line type of a number (mobile, landline, VoIP): `unknown` until a data partner is configured.",
    ),
    (
        "caller_risk",
        true,
        "Spam risk of a caller (low/medium/high, 0-100) and the recommended action. Pass the call's STIR/SHAKEN verstat if known. Supplementary, not a verdict.",
    ),
    (
        "dnc_check",
        false,
        "Do-not-call status of a number (preview): `unknown` until a data partner is configured; unbilled.",
    ),
    (
        "reassigned_check",
        false,
        "Whether a number was reassigned (preview): `unknown` until a data partner is configured; unbilled.",
    ),
];

fn input_schema(verstat: bool) -> Map<String, Value> {
    let mut props = json!({
        "number": {"type": "string", "description": "The phone number, preferably E.164 (+14155551212)."},
        "country": {"type": "string", "description": "ISO 3166 alpha-2 country for a national-form number."},
    });
    if verstat {
        props["verstat"] = json!({"type": "string", "description": "The call's STIR/SHAKEN verstat (e.g. TN-Validation-Passed), if known."});
    }
    match json!({"type": "object", "properties": props, "required": ["number"]}) {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn tools() -> Vec<Tool> {
    TOOLS
        .iter()
        .map(|(name, looks_up, description)| {
            Tool::new(*name, *description, Arc::new(input_schema(*looks_up)))
                .with_annotations(ToolAnnotations::with_title(*name).read_only(true))
        })
        .collect()
}

#[derive(Clone)]
pub(crate) struct Nol {
    state: Arc<State>,
}

fn tenant_of(ctx: &RequestContext<RoleServer>) -> Option<Arc<Tenant>> {
    ctx.extensions
        .get::<axum::http::request::Parts>()
        .and_then(|p| p.extensions.get::<Arc<Tenant>>())
        .cloned()
}

/// The tool result for one of the tools that never look up: the number checked, `unknown`.
fn unknown_result(tool: &str, tenant: &Tenant, args: &Value) -> Value {
    match agents::tool_call(args, tenant.client.default_country()) {
        agents::ToolCall::Invalid(result) => result,
        agents::ToolCall::Lookup { number, .. } => {
            let field = match tool {
                "line_type" => "line_type",
                "dnc_check" => "dnc",
                _ => "reassigned",
            };
            json!({
                "valid": true,
                "number": number.as_str(),
                field: agents::UNKNOWN,
                "message": format!("The {} status of this number is unknown: no data source is configured. Carry on as usual.", field.replace('_', " ")),
            })
        }
    }
}

impl ServerHandler for Nol {
    fn get_info(&self) -> ServerConfig {
        InitializeResult::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("nol-serve", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "numbers.online caller intelligence through libnol. Answers are supplementary, \
                 low-confidence signals; the agent keeps every decision. A failed check says \
                 nothing about the caller.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tools().into_iter().find(|t| t.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let Some(&(name, looks_up, _)) = TOOLS.iter().find(|t| t.0 == request.name) else {
            return Err(ErrorData::invalid_params(
                format!(
                    "unknown tool {:?}",
                    request.name.chars().take(64).collect::<String>()
                ),
                None,
            ));
        };
        let Some(tenant) = tenant_of(&context) else {
            return Err(ErrorData::internal_error("no tenant", None));
        };
        let args = Value::Object(request.arguments.unwrap_or_default());
        let start = std::time::Instant::now();
        let result = if looks_up {
            app::tool(&tenant, &args, None).await
        } else {
            unknown_result(name, &tenant, &args)
        };
        self.state
            .metrics
            .request("mcp_tool", looks_up.then(|| start.elapsed()));
        let text = result
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let mut r = CallToolResult::structured(result);
        // The JSON first (what structured clients read), then the sentence for the model.
        r.content.push(rmcp::model::ContentBlock::text(text));
        Ok(r.into())
    }
}

/// The Streamable HTTP service at `/mcp`: sessions in memory, ended at shutdown.
pub(crate) fn service(
    state: Arc<State>,
    addr: SocketAddr,
    cancel: CancellationToken,
) -> StreamableHttpService<Nol, LocalSessionManager> {
    let mut config = StreamableHttpServerConfig::default().with_cancellation_token(cancel);
    if !addr.ip().is_loopback() {
        // Asked to listen beyond loopback: hosts reach it by other names. Every request still
        // needs a tenant's token.
        config = config.disable_allowed_hosts();
    }
    StreamableHttpService::new(
        move || {
            Ok(Nol {
                state: state.clone(),
            })
        },
        Arc::new(LocalSessionManager::default()),
        config,
    )
}
