//! `nol serve`: libnol as a local HTTP service, for the hosts that cannot link a library but
//! can fetch a URL (FreeSWITCH `mod_cidlookup` and Lua, 3CX, FreePBX CID Superfecta, MicroSIP)
//! and for AI agents (MCP over Streamable HTTP, Retell's inbound webhook, a Vapi tool).
//!
//! Every lookup goes through nol-core's fail-open client ([`nol_core::Client::lookup_async`]
//! bridged to a oneshot, so the runtime never blocks): a verified answer or
//! `allow_with_default_policy` within the budget. Each local token maps to one tenant, and each
//! tenant has its own client and upstream API key; the key never leaves the process.

#![forbid(unsafe_code)]

pub mod config;

mod app;
mod auth;
mod mcp;
mod metrics;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use config::{Secret, ServeConfig, ServeError, TenantConfig};

/// One tenant at run time: its name, local token and libnol client.
pub(crate) struct Tenant {
    pub(crate) name: String,
    pub(crate) token: Secret,
    pub(crate) client: nol_core::Client,
}

/// What every handler shares.
pub(crate) struct State {
    pub(crate) tenants: Vec<Arc<Tenant>>,
    pub(crate) metrics: metrics::Metrics,
    pub(crate) retell_budget: std::time::Duration,
    pub(crate) vapi_budget: std::time::Duration,
}

/// Makes every tenant's client (each checks its settings).
fn build_state(config: &ServeConfig) -> Result<Arc<State>, ServeError> {
    config.check()?;
    let mut tenants = Vec::new();
    for t in &config.tenants {
        let client = nol_core::Client::new(config.client_config(t)?)
            .map_err(|e| ServeError(format!("tenant {}: {e}", t.name)))?;
        tenants.push(Arc::new(Tenant {
            name: t.name.clone(),
            token: t.token.clone(),
            client,
        }));
    }
    Ok(Arc::new(State {
        metrics: metrics::Metrics::new(tenants.len()),
        tenants,
        retell_budget: config.retell_budget,
        vapi_budget: config.vapi_budget,
    }))
}

/// A line on stderr. Callers never pass a secret (no token, key, query string or header).
pub(crate) fn log(line: &str) {
    eprintln!("nol serve: {line}");
}

/// Warnings about where the server listens: beyond loopback without TLS.
fn listen_warnings(addr: &SocketAddr) -> Option<String> {
    (!addr.ip().is_loopback()).then(|| {
        format!(
            "listening on {addr}, beyond loopback, without TLS: tokens travel in clear text; \
             put a TLS proxy in front or keep it to a trusted network"
        )
    })
}

/// Serves on `listener` until `shutdown` resolves, then finishes the requests in flight.
pub async fn serve(
    config: ServeConfig,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let state = build_state(&config)?;
    let addr = listener
        .local_addr()
        .map_err(|e| ServeError(format!("listening: {e}")))?;
    if let Some(w) = listen_warnings(&addr) {
        log(&format!("warning: {w}"));
    }
    let cancel = tokio_util_cancel();
    let router = app::router(state, addr, cancel.clone());
    log(&format!(
        "listening on http://{addr} ({} tenant(s))",
        config.tenants.len()
    ));
    let result = axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown.await;
            cancel.cancel();
        })
        .await
        .map_err(|e| ServeError(format!("serving: {e}")));
    log("stopped");
    result
}

/// The MCP service's cancellation token (ends its sessions at shutdown).
fn tokio_util_cancel() -> tokio_util::sync::CancellationToken {
    tokio_util::sync::CancellationToken::new()
}

/// Runs `nol serve` in the foreground until SIGTERM or SIGINT.
pub fn run(config: ServeConfig) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("nol-serve")
        .build()
        .map_err(|e| ServeError(format!("starting the runtime: {e}")))?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| ServeError(format!("listening on {}: {e}", config.listen)))?;
        serve(config, listener, shutdown_signal()).await
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    log("shutting down (signal)");
}

/// A server running on a thread of its own (tests, benchmarks, embedding): stopped
/// gracefully when dropped.
pub struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), ServeError>>>,
}

impl Running {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops and waits for the requests in flight.
    pub fn stop(&mut self) -> Result<(), ServeError> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(ServeError("the server thread panicked".into())),
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Starts a server on a thread of its own; returns once it listens (or why it cannot).
pub fn start(config: ServeConfig) -> Result<Running, ServeError> {
    // Clients first, so that a bad setting is an error here rather than in the thread.
    build_state(&config)?;
    let listener = std::net::TcpListener::bind(config.listen)
        .map_err(|e| ServeError(format!("listening on {}: {e}", config.listen)))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| ServeError(format!("listening: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| ServeError(format!("listening: {e}")))?;
    let (stop, stopped) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("nol-serve".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| ServeError(format!("starting the runtime: {e}")))?;
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener)
                    .map_err(|e| ServeError(format!("listening: {e}")))?;
                serve(config, listener, async move {
                    let _ = stopped.await;
                })
                .await
            })
        })
        .map_err(|e| ServeError(format!("starting the server thread: {e}")))?;
    Ok(Running {
        addr,
        stop: Some(stop),
        thread: Some(thread),
    })
}
