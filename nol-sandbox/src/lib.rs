//! The sandbox: a stand-in numbers.online server, faithful to CONTRACT.md, signing exactly as
//! the Node service does, and misbehaving on demand over real sockets.
//!
//! Faults come per server ([`SandboxConfig::fault`], `nol sandbox --fault MODE`), per request
//! (header `X-Sandbox-Fault: MODE`), or per number (`+141555509NN` for the NNth (01–16) of
//! [`Fault::ALL`]), so that a test can reach any failure with any client.
//!
//! It speaks plain HTTP, or HTTPS with a CA of its own ([`SandboxConfig::tls`]), kept alive
//! either way. `GET /` and `HEAD /` answer 200 without auth and count no lookup: the request
//! libnol's optional warm-up (`warm_up_ms`) sends to open a connection before the first call.

pub mod directory;
mod http;
mod tls;

use std::fmt;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ed25519_dalek::pkcs8::EncodePublicKey;
use ed25519_dalek::SigningKey;
use nol_core::canonical::{self, JsValue};
use nol_core::signature::{self, SIGNATURE_FIELD};
use nol_core::{Caller, Stir, E164};

pub use directory::Tier;
use http::{Request, Response};
pub use tls::CERT_NAMES;
use tls::{Stream, Tls};

/// How the sandbox misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Reads the request and never answers.
    Hang,
    /// Sends a good response one byte per `drip_interval`.
    Drip,
    /// Sends the headers at once and the body after `slow_body_delay`.
    SlowBody,
    /// Resets the connection (RST) after reading the request.
    Reset,
    /// Closes the connection without a response.
    Close,
    Status500,
    Status503,
    /// 429 with `Retry-After: 2`.
    Status429,
    Status401,
    /// 200 with an HTML body.
    NonJson,
    /// Closes after half the declared body.
    Truncated,
    /// A 10 MiB body.
    Huge,
    /// A correctly signed body whose `risk_score` is a string.
    WrongTypes,
    /// A body signed by another key.
    BadSignature,
    /// A body without `response_signature`.
    NoSignature,
    /// 302 to [`SandboxConfig::redirect_to`].
    Redirect,
}

impl Fault {
    pub const ALL: &'static [Fault] = &[
        Fault::Hang,
        Fault::Drip,
        Fault::SlowBody,
        Fault::Reset,
        Fault::Close,
        Fault::Status500,
        Fault::Status503,
        Fault::Status429,
        Fault::Status401,
        Fault::NonJson,
        Fault::Truncated,
        Fault::Huge,
        Fault::WrongTypes,
        Fault::BadSignature,
        Fault::NoSignature,
        Fault::Redirect,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Hang => "hang",
            Fault::Drip => "drip",
            Fault::SlowBody => "slow-body",
            Fault::Reset => "reset",
            Fault::Close => "close",
            Fault::Status500 => "500",
            Fault::Status503 => "503",
            Fault::Status429 => "429",
            Fault::Status401 => "401",
            Fault::NonJson => "non-json",
            Fault::Truncated => "truncated",
            Fault::Huge => "huge",
            Fault::WrongTypes => "wrong-types",
            Fault::BadSignature => "bad-signature",
            Fault::NoSignature => "no-signature",
            Fault::Redirect => "redirect",
        }
    }

    pub fn parse(s: &str) -> Option<Fault> {
        Fault::ALL
            .iter()
            .copied()
            .find(|f| f.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How to run a sandbox.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    pub listen: SocketAddr,
    /// Misbehave on every inbound lookup.
    pub fault: Option<Fault>,
    /// Accepted API keys and their tiers.
    pub keys: Vec<(String, Tier)>,
    /// Seed of the signing key; random when `None`.
    pub signing_seed: Option<[u8; 32]>,
    pub drip_interval: Duration,
    pub slow_body_delay: Duration,
    /// How long a hanging request is held before the connection is closed.
    pub hang_for: Duration,
    /// Requests per minute per free-tier key.
    pub free_rate_limit: u32,
    /// Where the redirect fault points.
    pub redirect_to: String,
    /// Added before every inbound lookup answer (a slow but healthy service).
    pub response_delay: Duration,
    /// Replaces every `ttl_seconds` (to see cache expiry in tests).
    pub ttl_override: Option<u32>,
    /// Receipt ids made from the request (number and STIR/SHAKEN values) instead of a counter,
    /// so that the same lookup gets the same signed answer from any client: how the
    /// cross-language test compares decisions byte for byte.
    pub deterministic_receipts: bool,
    /// Serve HTTPS instead of plain HTTP, with a CA made at start ([`Sandbox::ca_pem`]) and a
    /// certificate for `127.0.0.1`, `::1` and `localhost` ([`CERT_NAMES`]).
    pub tls: bool,
}

/// The standard-tier key the sandbox accepts by default.
pub const SANDBOX_KEY: &str = "nol_sandbox_standard_key";
/// The free-tier key the sandbox accepts by default (60/min, no `block_candidate`).
pub const SANDBOX_FREE_KEY: &str = "nol_sandbox_free_key";

impl Default for SandboxConfig {
    fn default() -> SandboxConfig {
        SandboxConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            fault: None,
            keys: vec![
                (SANDBOX_KEY.to_string(), Tier::Standard),
                (SANDBOX_FREE_KEY.to_string(), Tier::Free),
            ],
            signing_seed: None,
            drip_interval: Duration::from_secs(1),
            slow_body_delay: Duration::from_secs(5),
            hang_for: Duration::from_secs(30),
            free_rate_limit: 60,
            redirect_to: "http://127.0.0.1:9/elsewhere".to_string(),
            response_delay: Duration::ZERO,
            ttl_override: None,
            deterministic_receipts: false,
            tls: false,
        }
    }
}

struct Shared {
    config: SandboxConfig,
    tls: Option<Arc<rustls::ServerConfig>>,
    key: SigningKey,
    other_key: SigningKey,
    fault: Mutex<Option<Fault>>,
    stop: AtomicBool,
    lookups: AtomicU64,
    connections: AtomicU64,
    receipts: AtomicU64,
    /// Free-tier request times per key, for the rate limit.
    windows: Mutex<std::collections::HashMap<String, Vec<Instant>>>,
}

/// A running sandbox. It stops when dropped.
pub struct Sandbox {
    addr: SocketAddr,
    /// The CA's certificate, when serving HTTPS.
    ca_pem: Option<String>,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

fn random_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    if getrandom::fill(&mut seed).is_err() {
        // Only a sandbox: a time-derived key is still a key.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        seed[..16].copy_from_slice(&nanos.to_le_bytes());
    }
    seed
}

impl Sandbox {
    pub fn start(config: SandboxConfig) -> io::Result<Sandbox> {
        // The shared numbering patterns and the directory's region, compiled now rather than
        // on the first request (another region costs a millisecond when first seen).
        nol_core::e164::warm_up_for(Some("US"));
        let listener = TcpListener::bind(config.listen)?;
        let addr = listener.local_addr()?;
        let key = SigningKey::from_bytes(&config.signing_seed.unwrap_or_else(random_seed));
        let tls = if config.tls {
            Some(Tls::generate()?)
        } else {
            None
        };
        let shared = Arc::new(Shared {
            tls: tls.as_ref().map(|t| t.config.clone()),
            fault: Mutex::new(config.fault),
            config,
            key,
            other_key: SigningKey::from_bytes(&random_seed()),
            stop: AtomicBool::new(false),
            lookups: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            receipts: AtomicU64::new(0),
            windows: Mutex::new(Default::default()),
        });
        let s = shared.clone();
        let acceptor = std::thread::Builder::new()
            .name("nol-sandbox-accept".into())
            .spawn(move || accept_loop(listener, s))?;
        Ok(Sandbox {
            addr,
            ca_pem: tls.map(|t| t.ca_pem),
            shared,
            acceptor: Some(acceptor),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, or `https://127.0.0.1:PORT` when serving HTTPS.
    pub fn url(&self) -> String {
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// The PEM certificate of the CA that signed this sandbox's certificate (made at start,
    /// different every start), when serving HTTPS; `None` over plain HTTP.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// Writes [`Sandbox::ca_pem`] to `path`, for other processes (`curl --cacert`, libnol's
    /// `tls_ca_file`, Python's `verify=`). An error over plain HTTP.
    pub fn write_ca_pem(&self, path: &Path) -> io::Result<()> {
        let pem = self.ca_pem.as_deref().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "the sandbox serves plain HTTP: it has no CA",
            )
        })?;
        std::fs::write(path, pem)
    }

    /// The public key that verifies this sandbox's responses, as SPKI PEM.
    pub fn public_key_pem(&self) -> String {
        self.shared
            .key
            .verifying_key()
            .to_public_key_pem(Default::default())
            .unwrap_or_default()
    }

    /// Writes the public key PEM to `dir/inbound_public.pem` and returns the path.
    pub fn write_public_key(&self, dir: &Path) -> io::Result<PathBuf> {
        let path = dir.join("inbound_public.pem");
        std::fs::write(&path, self.public_key_pem())?;
        Ok(path)
    }

    /// Changes the server-wide fault while running.
    pub fn set_fault(&self, fault: Option<Fault>) {
        *self.shared.fault.lock().unwrap_or_else(|p| p.into_inner()) = fault;
    }

    /// Inbound lookup requests received (authorized or not).
    pub fn lookups(&self) -> u64 {
        self.shared.lookups.load(Ordering::SeqCst)
    }

    /// TCP connections accepted (a TLS connection is one too, whether or not its handshake
    /// succeeds).
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        shared.connections.fetch_add(1, Ordering::SeqCst);
        let s = shared.clone();
        let _ = std::thread::Builder::new()
            .name("nol-sandbox-conn".into())
            .spawn(move || serve(stream, s));
    }
}

fn serve(tcp: TcpStream, shared: Arc<Shared>) {
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(60)));
    let Ok(mut stream) = Stream::new(tcp, shared.tls.as_ref()) else {
        return;
    };
    // A thread per connection is the sandbox's shape, not the service's (one long-running
    // process): the first parse on a fresh thread costs it a few hundred microseconds (its
    // stack and allocator arena touched for the first time), which a client would otherwise
    // see as the first request on every new connection. Paid here, while the client is still
    // connecting or handshaking.
    let _ = E164::parse("+14155551212", None);
    let mut reader = http::Reader::new();
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let request = match reader.read_request(&mut stream) {
            Ok(Some(r)) => r,
            Ok(None) => {
                stream.close();
                return;
            }
            Err(_) => {
                // Over TLS this is also where a failed handshake ends (the client refused the
                // certificate): the write fails, and the connection is dropped.
                let _ = Response::json(400, r#"{"error":"bad_request"}"#).write(&mut stream);
                return;
            }
        };
        let keep_alive = request.keep_alive();
        match handle(&request, &shared) {
            Reply::Response(r) => {
                let written = if request.method == "HEAD" {
                    r.write_head(&mut stream)
                } else {
                    r.write(&mut stream)
                };
                if written.is_err() {
                    return;
                }
            }
            Reply::Fault(fault, good) => {
                misbehave(fault, good, &mut stream, &shared);
                return;
            }
        }
        if !keep_alive {
            stream.close();
            return;
        }
    }
}

enum Reply {
    Response(Response),
    /// Misbehave; the good response is what the request would otherwise have had.
    Fault(Fault, Response),
}

/// Whether a request counts against the free tier's per-minute limit. The pre-call endpoints
/// are "free, not metered" (CONTRACT.md); lookups and `/v1/cid` are.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Metered {
    Yes,
    No,
}

fn authorize(
    request: &Request,
    shared: &Shared,
    query_key: Option<&str>,
    metered: Metered,
) -> Result<Tier, Response> {
    let presented = request
        .header("authorization")
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .or_else(|| request.header("x-api-key").map(str::trim))
        .or(query_key);
    let tier = presented.and_then(|k| {
        shared
            .config
            .keys
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, t)| *t)
    });
    let Some(tier) = tier else {
        return Err(Response::json(401, r#"{"error":"unauthorized"}"#));
    };
    if tier == Tier::Free && metered == Metered::Yes {
        let key = presented.unwrap_or_default().to_string();
        let now = Instant::now();
        let mut windows = shared.windows.lock().unwrap_or_else(|p| p.into_inner());
        let window = windows.entry(key).or_default();
        window.retain(|t| now.duration_since(*t) < Duration::from_secs(60));
        if window.len() >= shared.config.free_rate_limit as usize {
            let wait = window
                .first()
                .map_or(60, |t| 60 - now.duration_since(*t).as_secs().min(59));
            return Err(Response::json(429, r#"{"error":"rate_limited"}"#)
                .with_header("Retry-After", &wait.to_string()));
        }
        window.push(now);
    }
    Ok(tier)
}

fn handle(request: &Request, shared: &Shared) -> Reply {
    let header_fault = request.header("x-sandbox-fault").and_then(Fault::parse);
    if request.path() == "/api/v1/inbound/lookup" && request.method == "POST" {
        shared.lookups.fetch_add(1, Ordering::SeqCst);
        let tier = match authorize(request, shared, None, Metered::Yes) {
            Ok(t) => t,
            Err(r) => return Reply::Response(r),
        };
        return inbound_lookup(request, shared, tier, header_fault);
    }
    let good = other_endpoint(request, shared);
    let server_fault = *shared.fault.lock().unwrap_or_else(|p| p.into_inner());
    // The home page (libnol's warm-up) is reached only by the faults of a service that is
    // stuck or gone; the others are about answers to API calls.
    let fault = header_fault.or(server_fault).filter(|f| {
        request.path() != "/" || matches!(f, Fault::Hang | Fault::Reset | Fault::Close)
    });
    match fault {
        // Faults of a signed lookup body do not apply to the other endpoints.
        None | Some(Fault::WrongTypes | Fault::BadSignature | Fault::NoSignature) => {
            Reply::Response(good)
        }
        Some(f) => Reply::Fault(f, good),
    }
}

fn other_endpoint(request: &Request, shared: &Shared) -> Response {
    let path = request.path();
    let reply = match (request.method.as_str(), path) {
        // The service's home page: no auth, not metered, no lookup counted. libnol's warm-up
        // sends `HEAD /` (CONTRACT.md names no health endpoint; a home page is always there).
        ("GET" | "HEAD", "/") => Reply::Response(Response::text(200, "numbers.online sandbox\n")),
        ("GET", "/v1/cid") => {
            let query_key = request.query("key");
            if let Err(r) = authorize(request, shared, query_key.as_deref(), Metered::Yes) {
                return r;
            }
            let number = request.query("number").unwrap_or_default();
            let country = request.query("country");
            let name = match E164::parse(&number, country.as_deref()) {
                Ok(Caller::Number(n)) => directory::cid_name(n.as_str()),
                _ => "",
            };
            Reply::Response(Response::text(200, name))
        }
        ("POST", "/api/v1/precall/lookup") => {
            if let Err(r) = authorize(request, shared, None, Metered::No) {
                return r;
            }
            let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap_or_default();
            let (Some(from), Some(to)) = (
                body.get("from").and_then(|v| v.as_str()).and_then(e164),
                body.get("to").and_then(|v| v.as_str()).and_then(e164),
            ) else {
                return Response::json(400, r#"{"error":"invalid_number"}"#);
            };
            let dnc = if to == directory::SUPPRESSED_NUMBER {
                "SUPPRESS"
            } else if to == directory::INVALID_NUMBER {
                "UNKNOWN"
            } else {
                "NO_MATCH"
            };
            let reply = serde_json::json!({
                "dnc": dnc,
                "compliance_signal": {"from": from, "to_risk_level": directory::lookup(&to).map_or("unknown", |_| "known")},
                "receipt_id": receipt(shared),
            });
            Reply::Response(Response::json(200, &reply.to_string()))
        }
        ("POST", "/api/v1/precall/enroll") => {
            if let Err(r) = authorize(request, shared, None, Metered::No) {
                return r;
            }
            let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap_or_default();
            match body.get("number").and_then(|v| v.as_str()).and_then(e164) {
                Some(n) => Reply::Response(Response::json(
                    200,
                    &serde_json::json!({"enrolled": true, "number": n}).to_string(),
                )),
                None => Reply::Response(Response::json(400, r#"{"error":"invalid_number"}"#)),
            }
        }
        (_, "/api/v1/inbound/lookup" | "/api/v1/precall/lookup" | "/api/v1/precall/enroll") => {
            Reply::Response(Response::json(405, r#"{"error":"method_not_allowed"}"#))
        }
        _ => Reply::Response(Response::json(404, r#"{"error":"not_found"}"#)),
    };
    match reply {
        Reply::Response(r) | Reply::Fault(_, r) => r,
    }
}

fn e164(s: &str) -> Option<String> {
    match E164::parse(s, None) {
        Ok(Caller::Number(n)) if n.as_str() == s => Some(n.to_string()),
        _ => None,
    }
}

fn receipt(shared: &Shared) -> String {
    let n = shared.receipts.fetch_add(1, Ordering::SeqCst);
    format!("nol_rec_sbx{:08x}{:04x}", n, std::process::id() & 0xffff)
}

fn inbound_lookup(
    request: &Request,
    shared: &Shared,
    tier: Tier,
    header_fault: Option<Fault>,
) -> Reply {
    let body: serde_json::Value = match serde_json::from_slice(&request.body) {
        Ok(v) => v,
        Err(_) => return Reply::Response(Response::json(400, r#"{"error":"invalid_json"}"#)),
    };
    let Some(number) = body.get("number").and_then(|v| v.as_str()).and_then(e164) else {
        return Reply::Response(Response::json(400, r#"{"error":"invalid_number"}"#));
    };
    let stir = Stir::from_parts(
        body.get("verstat").and_then(|v| v.as_str()),
        body.get("attestation").and_then(|v| v.as_str()),
    );
    let receipt_id = if shared.config.deterministic_receipts {
        // FNV-1a of what was asked: stable across processes and runs.
        let asked = format!("{number}|{:?}|{:?}", stir.verstat, stir.attestation);
        let hash = asked.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        format!("nol_rec_sbx{hash:016x}")
    } else {
        receipt(shared)
    };
    let mut members = directory::response(&number, stir, tier, &receipt_id);
    if let Some(ttl) = shared.config.ttl_override {
        for (k, v) in members.iter_mut() {
            if k == "ttl_seconds" {
                *v = JsValue::Number(ttl.into());
            }
        }
    }
    if !shared.config.response_delay.is_zero() {
        sleep_unless_stopped(shared, shared.config.response_delay);
    }
    let good = Response::json(200, &signed_body(members.clone(), &shared.key));
    let server_fault = *shared.fault.lock().unwrap_or_else(|p| p.into_inner());
    let fault = header_fault
        .or_else(|| directory::fault_for_number(&number))
        .or(server_fault);
    match fault {
        None => Reply::Response(good),
        Some(Fault::WrongTypes) => {
            let mut m = members;
            for (k, v) in m.iter_mut() {
                if k == "risk_score" {
                    *v = JsValue::String("8".into());
                }
            }
            Reply::Response(Response::json(200, &signed_body(m, &shared.key)))
        }
        Some(Fault::BadSignature) => Reply::Response(Response::json(
            200,
            &signed_body(members, &shared.other_key),
        )),
        Some(Fault::NoSignature) => Reply::Response(Response::json(
            200,
            &canonical::stringify(&JsValue::Object(members)),
        )),
        Some(f) => Reply::Fault(f, good),
    }
}

/// The body as the Node service sends it: its members in build order, then the signature.
pub fn signed_body(mut members: Vec<(String, JsValue)>, key: &SigningKey) -> String {
    let sig = signature::sign(&members, key);
    members.push((SIGNATURE_FIELD.to_string(), JsValue::String(sig)));
    canonical::stringify(&JsValue::Object(members))
}

fn sleep_unless_stopped(shared: &Shared, total: Duration) {
    let end = Instant::now() + total;
    while Instant::now() < end && !shared.stop.load(Ordering::SeqCst) {
        std::thread::sleep(
            Duration::from_millis(20).min(end.saturating_duration_since(Instant::now())),
        );
    }
}

/// Holds the connection without answering until the client gives up (EOF), the sandbox stops,
/// or `hang_for` passes, so hung connections do not pile up threads.
fn hang(stream: &mut Stream, shared: &Shared) {
    use std::io::Read;
    let end = Instant::now() + shared.config.hang_for;
    let _ = stream
        .tcp()
        .set_read_timeout(Some(Duration::from_millis(50)));
    let mut buf = [0u8; 512];
    while Instant::now() < end && !shared.stop.load(Ordering::SeqCst) {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

/// The connection ends after any fault. A fault whose answer is complete says so
/// (`Connection: close`), as a well-behaved server does, so that a client never sends its next
/// request on a socket about to close: that race is not what these faults are for.
fn misbehave(fault: Fault, good: Response, stream: &mut Stream, shared: &Shared) {
    let status = |code: u16| {
        Response::json(code, &format!("{{\"error\":\"sandbox fault {code}\"}}"))
            .with_header("Connection", "close")
    };
    let good_then_close = |r: Response| r.with_header("Connection", "close");
    let _ = match fault {
        Fault::Hang => {
            hang(stream, shared);
            Ok(())
        }
        Fault::Drip => {
            let bytes = good.to_bytes();
            for b in bytes.chunks(1) {
                if stream.write_all(b).and_then(|_| stream.flush()).is_err() {
                    break;
                }
                sleep_unless_stopped(shared, shared.config.drip_interval);
                if shared.stop.load(Ordering::SeqCst) {
                    break;
                }
            }
            Ok(())
        }
        Fault::SlowBody => {
            let (head, body) = good.to_parts();
            stream
                .write_all(&head)
                .and_then(|_| stream.flush())
                .map(|_| sleep_unless_stopped(shared, shared.config.slow_body_delay))
                .and_then(|_| stream.write_all(&body))
        }
        Fault::Reset => {
            let _ = socket2::SockRef::from(stream.tcp()).set_linger(Some(Duration::ZERO));
            Ok(())
        }
        Fault::Close => Ok(()),
        Fault::Status500 => status(500).write(stream),
        Fault::Status503 => status(503).write(stream),
        Fault::Status401 => status(401).write(stream),
        Fault::Status429 => status(429).with_header("Retry-After", "2").write(stream),
        Fault::NonJson => Response::html(200, "<html><body>502 Bad Gateway</body></html>")
            .with_header("Connection", "close")
            .write(stream),
        Fault::Truncated => {
            let (head, body) = good.to_parts();
            stream
                .write_all(&head)
                .and_then(|_| stream.write_all(&body[..body.len() / 2]))
        }
        Fault::Huge => {
            let len = 10 * 1024 * 1024;
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
            );
            let chunk = vec![b' '; 64 * 1024];
            stream.write_all(head.as_bytes()).and_then(|_| {
                for _ in 0..(len / chunk.len()) {
                    stream.write_all(&chunk)?;
                }
                Ok(())
            })
        }
        Fault::Redirect => Response::json(302, r#"{"moved":true}"#)
            .with_header("Location", &shared.config.redirect_to)
            .with_header("Connection", "close")
            .write(stream),
        Fault::WrongTypes | Fault::BadSignature | Fault::NoSignature => {
            good_then_close(good).write(stream)
        }
    };
    let _ = stream.flush();
}
