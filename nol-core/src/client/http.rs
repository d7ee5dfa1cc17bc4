//! HTTP to the service with ureq: every timeout set, redirects never followed, bodies capped,
//! certificates verified (against the public roots, or only the `tls_ca_file` ones when set),
//! connections kept alive, each request sent in one write, an optional bounded warm-up, and a
//! resolver that never grows threads.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use ureq::http::{HeaderValue, Uri};
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, DefaultConnector, NextTimeout, Transport,
};
use ureq::Agent;

use super::{ClientConfig, ConfigError, FailOpen};

/// What the service answered, before any interpretation.
pub(crate) enum Answer {
    Body(Vec<u8>),
    Status {
        code: u16,
        retry_after: Option<Duration>,
    },
}

pub(crate) struct Http {
    agent: Agent,
    base: String,
    /// `Bearer <key>`, marked sensitive: the HTTP stack's debug logs print `Sensitive`.
    auth: HeaderValue,
    max_body: u64,
}

impl fmt::Debug for Http {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http").field("base", &self.base).finish()
    }
}

fn bearer(api_key: &str) -> HeaderValue {
    // An `ApiKey` is printable ASCII, so this cannot fail; were it to, the service answers 401
    // and the lookup fails open.
    let mut value = HeaderValue::from_str(&format!("Bearer {api_key}"))
        .unwrap_or_else(|_| HeaderValue::from_static("Bearer"));
    value.set_sensitive(true);
    value
}

/// The largest `tls_ca_file` read (a bundle of every public root is about 250 KiB).
const MAX_CA_FILE: u64 = 4 * 1024 * 1024;

/// The certificates of a `tls_ca_file`: every `CERTIFICATE` block of the PEM file, each a
/// certificate rustls can use as a root (other blocks are skipped). Unreadable, empty, not
/// PEM, or a block that is not a certificate is a [`ConfigError::TlsCaFile`], never a panic.
pub(crate) fn tls_roots(path: &Path) -> Result<Vec<Certificate<'static>>, ConfigError> {
    let bad = |why: &dyn fmt::Display| ConfigError::TlsCaFile(format!("{}: {why}", path.display()));
    let mut pem = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_CA_FILE + 1).read_to_end(&mut pem))
        .map_err(|e| bad(&e))?;
    if pem.len() as u64 > MAX_CA_FILE {
        return Err(bad(&"larger than 4 MiB"));
    }
    let mut roots = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(cert)) => {
                // What rustls will make of it: a trust anchor, or an error now rather than a
                // root silently left out later.
                rustls::RootCertStore::empty()
                    .add(cert.der().to_vec().into())
                    .map_err(|e| bad(&format_args!("a certificate rustls cannot use ({e})")))?;
                roots.push(cert);
            }
            Ok(_) => {}
            // The error's own text lists the end marker's bytes: say it in words.
            Err(_) => return Err(bad(&"not PEM (a block cut short, or broken base64)")),
        }
    }
    if roots.is_empty() {
        return Err(bad(&"no CERTIFICATE block"));
    }
    Ok(roots)
}

impl Http {
    /// The agent for `base`: with `config.tls_ca_file` set, its certificates are the only roots
    /// trusted (else the public webpki roots).
    pub(crate) fn new(
        base: &str,
        api_key: &str,
        connections: usize,
        max_body: u64,
        config: &ClientConfig,
    ) -> Result<Http, ConfigError> {
        let https = base.starts_with("https://");
        let roots = match &config.tls_ca_file {
            Some(path) => RootCerts::new_with_certs(&tls_roots(path)?),
            None => RootCerts::WebPki,
        };
        let config = Agent::config_builder()
            .http_status_as_error(false)
            // A redirect would carry the key elsewhere: never follow one, hand back the 3xx.
            .max_redirects(0)
            .max_redirects_will_error(false)
            .https_only(https)
            .max_idle_connections(connections)
            .max_idle_connections_per_host(connections)
            .max_idle_age(Duration::from_secs(55))
            .user_agent(concat!("libnol/", env!("CARGO_PKG_VERSION")))
            .accept("application/json")
            .max_response_header_size(16 * 1024)
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .build();
        let agent = Agent::with_parts(
            config,
            OneWrite(DefaultConnector::new()),
            BoundedResolver::default(),
        );
        Ok(Http {
            agent,
            base: base.trim_end_matches('/').to_string(),
            auth: bearer(api_key),
            max_body,
        })
    }

    /// The warm-up (`warm_up_ms`): resolves the service's name, connects and completes the
    /// TLS handshake by sending `HEAD /`, and leaves that connection in the pool, so that the
    /// first lookup costs what the thousandth does. Returns by `within`, whatever the network
    /// does (the request runs on a thread of its own, itself bounded by `within`). The request
    /// carries no API key and is no lookup: nothing is metered or billed, and whatever the
    /// service answers (a status, an error, nothing) is ignored. Zero: nothing at all.
    pub(crate) fn warmed_up(self, within: Duration) -> Http {
        if within.is_zero() {
            return self;
        }
        let agent = self.agent.clone();
        let url = format!("{}/", self.base);
        let (done, finished) = mpsc::sync_channel::<()>(1);
        let spawned = std::thread::Builder::new()
            .name("nol-warm-up".into())
            .spawn(move || {
                // A HEAD answer has no body: ureq pools the connection as soon as the head is
                // read.
                let _ = agent
                    .head(&url)
                    .config()
                    .timeout_global(Some(within))
                    .build()
                    .call();
                let _ = done.send(());
            });
        if spawned.is_ok() {
            let _ = finished.recv_timeout(within);
        }
        self
    }

    /// POSTs JSON to `path`, all of it (DNS, connect, TLS, request, headers, body) within
    /// `deadline`.
    ///
    /// A kept-alive connection can be closed by the other end (the service, or a load
    /// balancer's idle timeout) just as it is reused: the request then fails before a byte of
    /// the answer arrives. Only on such a connection, and only once, the request is sent again
    /// (on another connection) within what is left of the deadline. A lookup reads and changes
    /// nothing, so the worst a resend costs is a second metered request, if the first one
    /// reached the service after all.
    pub(crate) fn post(
        &self,
        path: &str,
        body: &[u8],
        deadline: Instant,
    ) -> Result<Answer, FailOpen> {
        let url = format!("{}{}", self.base, path);
        let result = match self.send(&url, body, deadline)? {
            Err(e) if is_stale(&e) => self.send(&url, body, deadline)?,
            result => result,
        };
        let mut response = result.map_err(map_error)?;
        let status = response.status().as_u16();
        if status != 200 {
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Ok(Answer::Status {
                code: status,
                retry_after,
            });
        }
        let declared = response
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|len| len > self.max_body) {
            // Dropped unread: the connection is closed, not returned to the pool.
            return Err(FailOpen::BodyTooLarge);
        }
        let bytes = response
            .body_mut()
            .with_config()
            .limit(self.max_body)
            .read_to_vec()
            .map_err(map_error)?;
        Ok(Answer::Body(bytes))
    }

    /// One attempt: the response's head, or ureq's error; `Err(Timeout)` when `deadline` has
    /// passed.
    fn send(
        &self,
        url: &str,
        body: &[u8],
        deadline: Instant,
    ) -> Result<Result<ureq::http::Response<ureq::Body>, ureq::Error>, FailOpen> {
        let remaining = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or(FailOpen::Timeout)?;
        Ok(self
            .agent
            .post(url)
            .config()
            .timeout_global(Some(remaining))
            .build()
            .header("Authorization", self.auth.clone())
            .header("Content-Type", "application/json")
            .send(body))
    }
}

/// Marks an I/O error on a reused connection before any byte of the answer ([`Held`]).
#[derive(Debug)]
struct Stale;

impl fmt::Display for Stale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a reused connection closed before the answer")
    }
}

impl std::error::Error for Stale {}

fn stale(kind: io::ErrorKind) -> ureq::Error {
    ureq::Error::Io(io::Error::new(kind, Stale))
}

fn is_stale(e: &ureq::Error) -> bool {
    matches!(e, ureq::Error::Io(io) if io.get_ref().is_some_and(|r| r.is::<Stale>()))
}

fn map_error(e: ureq::Error) -> FailOpen {
    use ureq::Error as E;
    match e {
        E::Timeout(_) => FailOpen::Timeout,
        E::BodyExceedsLimit(_) | E::LargeResponseHeader(_, _) => FailOpen::BodyTooLarge,
        E::Tls(_) | E::Rustls(_) | E::Pem(_) | E::TlsRequired | E::RequireHttpsOnly(_) => {
            FailOpen::Tls
        }
        E::Io(io) => match io.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => FailOpen::Timeout,
            // rustls reports a failed handshake or a bad record as InvalidData; HTTP-level
            // garbage is ureq's Protocol error, not an I/O one.
            io::ErrorKind::InvalidData => FailOpen::Tls,
            _ => FailOpen::Connect,
        },
        _ => FailOpen::Connect,
    }
}

/// Sends each request in one write, and tells a reused connection's failure apart. ureq writes
/// a request's head and its body with two writes, so the service's side takes two segments
/// (over TLS, two records) and may wake up for each. This connector wraps every connection in
/// a [`Held`] transport.
#[derive(Debug)]
struct OneWrite<C>(C);

impl<C: Connector<()>> Connector<()> for OneWrite<C> {
    type Out = Held<C::Out>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<()>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        Ok(self.0.connect(details, chained)?.map(Held::new))
    }
}

/// What a request's writes leave here until the response is awaited: more than
/// [`HELD_MAX`] bytes are sent at once.
const HELD_MAX: usize = 16 * 1024;

/// A transport that holds what is written until the caller waits for input (the response),
/// then sends it all in one write, within that wait's timeout. HTTP/1.1 without
/// `Expect: 100-continue` (which libnol never sends) reads nothing before the whole request
/// is written, so holding changes no exchange, only how many segments carry it.
///
/// It also counts the exchanges its connection has carried: when a request on a connection
/// that has answered before fails (a write error, a read error or the end of the stream)
/// before a byte of its answer, the error is marked [`Stale`], for [`Http::post`] to send the
/// request again once.
#[derive(Debug)]
struct Held<T> {
    inner: T,
    held: Vec<u8>,
    /// Requests this connection has answered (at least in part) before the current one.
    answered_before: u32,
    /// The current request has had a byte of its answer.
    answered: bool,
}

impl<T: Transport> Held<T> {
    fn new(inner: T) -> Held<T> {
        Held {
            inner,
            held: Vec::new(),
            answered_before: 0,
            answered: false,
        }
    }

    /// The error, marked [`Stale`] when this connection answered before and not yet now, and
    /// unmarked otherwise: a connection wrapped twice (a proxy's tunnel is itself made through
    /// this connector) must not pass on the inner layer's mark for the tunnel's own exchange.
    fn classify(&self, e: ureq::Error) -> ureq::Error {
        match io_kind(&e) {
            Some(kind) if self.answered_before > 0 && !self.answered => stale(kind),
            Some(kind) if is_stale(&e) => ureq::Error::Io(io::Error::from(kind)),
            _ => e,
        }
    }

    /// Sends what is held, each write given only what is left of `timeout`.
    fn send_held(&mut self, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let start = Instant::now();
        while !self.held.is_empty() {
            let out = self.inner.buffers().output();
            let n = self.held.len().min(out.len());
            if n == 0 {
                return Err(ureq::Error::Io(io::Error::other("no output buffer")));
            }
            out[..n].copy_from_slice(&self.held[..n]);
            self.held.drain(..n);
            let left = less(timeout, start.elapsed());
            if let Err(e) = self.inner.transmit_output(n, left) {
                return Err(self.classify(e));
            }
        }
        Ok(())
    }
}

/// `timeout` less what has been `spent` of it: the transports count each call's timeout from
/// that call, so a wait after a write must be given only what the write left.
fn less(timeout: NextTimeout, spent: Duration) -> NextTimeout {
    use ureq::unversioned::transport::time::Duration as Left;
    NextTimeout {
        after: match timeout.after {
            Left::Exact(d) => Left::Exact(d.saturating_sub(spent)),
            other => other,
        },
        ..timeout
    }
}

/// The kind of an I/O error that can mean the other end closed the connection.
fn io_kind(e: &ureq::Error) -> Option<io::ErrorKind> {
    match e {
        ureq::Error::Io(io) => match io.kind() {
            kind @ (io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof) => Some(kind),
            _ => None,
        },
        _ => None,
    }
}

impl<T: Transport> Transport for Held<T> {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        if self.answered {
            // a new request on a connection that has answered
            self.answered_before = self.answered_before.saturating_add(1);
            self.answered = false;
        }
        let out = self.inner.buffers().output();
        let amount = amount.min(out.len());
        self.held.extend_from_slice(&out[..amount]);
        if self.held.len() > HELD_MAX {
            self.send_held(timeout)?;
        }
        Ok(())
    }

    // No maybe_await_input: ureq calls it through a Box<dyn Transport>, whose impl does not
    // forward it, so the trait's default runs and calls await_input below whenever the input
    // buffer is empty, as it always is while a request is held (ureq pools no connection with
    // input left over, and libnol sends no Expect: 100-continue).

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let start = Instant::now();
        self.send_held(timeout)?;
        match self.inner.await_input(less(timeout, start.elapsed())) {
            Ok(true) => {
                self.answered = true;
                Ok(true)
            }
            // the end of the stream before the answer's first byte
            Ok(false) if self.answered_before > 0 && !self.answered => {
                Err(stale(io::ErrorKind::UnexpectedEof))
            }
            Ok(false) => Ok(false),
            Err(e) => Err(self.classify(e)),
        }
    }

    fn is_open(&mut self) -> bool {
        self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}

/// Name resolution that never holds more than one thread per host name.
///
/// `getaddrinfo` cannot be interrupted: ureq's own resolver spawns a thread per lookup to
/// honour its timeout, so a resolver that never answers would grow threads without bound.
/// Here one thread per host resolves at a time, every caller waits for it at most its own
/// timeout, and answers are reused for [`DNS_TTL`].
struct BoundedResolver {
    hosts: Mutex<HashMap<String, Arc<HostEntry>>>,
    system: SystemResolve,
}

/// The blocking resolution itself (`getaddrinfo`), replaceable in tests.
type SystemResolve = Arc<dyn Fn(&str) -> Vec<SocketAddr> + Send + Sync>;

impl Default for BoundedResolver {
    fn default() -> BoundedResolver {
        BoundedResolver::with_system(Arc::new(|host_port: &str| {
            host_port
                .to_socket_addrs()
                .map(|it| it.collect())
                .unwrap_or_default()
        }))
    }
}

const DNS_TTL: Duration = Duration::from_secs(30);

#[derive(Default)]
struct HostEntry {
    state: Mutex<HostState>,
    ready: Condvar,
}

#[derive(Default)]
struct HostState {
    addrs: Vec<SocketAddr>,
    resolved_at: Option<Instant>,
    in_progress: bool,
    /// Bumped when a resolution ends, so waiters know theirs has.
    generation: u64,
}

impl fmt::Debug for BoundedResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BoundedResolver")
    }
}

impl Resolver for BoundedResolver {
    fn resolve(
        &self,
        uri: &Uri,
        _config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let host = uri.host().ok_or(ureq::Error::HostNotFound)?;
        let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
            Some("http") => 80,
            _ => 443,
        });
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => self.lookup(bare, port, *timeout.after)?,
        };
        let mut out = self.empty();
        for a in addrs.into_iter().take(16) {
            out.push(a);
        }
        if out.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(out)
    }
}

impl BoundedResolver {
    fn with_system(system: SystemResolve) -> BoundedResolver {
        BoundedResolver {
            hosts: Mutex::new(HashMap::new()),
            system,
        }
    }

    fn lookup(
        &self,
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<Vec<SocketAddr>, ureq::Error> {
        let deadline = Instant::now() + timeout;
        let key = format!("{host}:{port}");
        let entry = {
            let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
            hosts.entry(key.clone()).or_default().clone()
        };
        let mut state = entry.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(at) = state.resolved_at {
            if at.elapsed() < DNS_TTL && !state.addrs.is_empty() {
                return Ok(state.addrs.clone());
            }
        }
        let generation = state.generation;
        if !state.in_progress {
            state.in_progress = true;
            let worker_entry = entry.clone();
            let system = self.system.clone();
            let spawned = std::thread::Builder::new()
                .name("nol-resolve".into())
                .spawn(move || {
                    let result: Vec<SocketAddr> = system(&key);
                    let mut s = worker_entry.state.lock().unwrap_or_else(|p| p.into_inner());
                    s.in_progress = false;
                    s.generation += 1;
                    if !result.is_empty() {
                        s.addrs = result;
                        s.resolved_at = Some(Instant::now());
                    }
                    worker_entry.ready.notify_all();
                });
            if spawned.is_err() {
                state.in_progress = false;
                return Err(ureq::Error::HostNotFound);
            }
        }
        while state.generation == generation {
            let now = Instant::now();
            let Some(left) = deadline
                .checked_duration_since(now)
                .filter(|d| !d.is_zero())
            else {
                return Err(ureq::Error::Timeout(ureq::Timeout::Resolve));
            };
            state = entry
                .ready
                .wait_timeout(state, left)
                .map(|(s, _)| s)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        if state.addrs.is_empty() || state.resolved_at.is_none() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(state.addrs.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A transport that records every write it is asked to send.
    #[derive(Debug)]
    struct Recorder {
        buffers: ureq::unversioned::transport::LazyBuffers,
        sent: Vec<Vec<u8>>,
        awaited: usize,
        /// await_input finds the end of the stream
        eof: bool,
        /// how long each write takes
        write_takes: Duration,
        /// the timeout each await_input was given
        waits: Vec<NextTimeout>,
    }

    impl Recorder {
        fn new(output: usize) -> Recorder {
            Recorder {
                buffers: ureq::unversioned::transport::LazyBuffers::new(1024, output),
                sent: Vec::new(),
                awaited: 0,
                eof: false,
                write_takes: Duration::ZERO,
                waits: Vec::new(),
            }
        }
    }

    impl Transport for Recorder {
        fn buffers(&mut self) -> &mut dyn Buffers {
            &mut self.buffers
        }
        fn transmit_output(&mut self, amount: usize, _: NextTimeout) -> Result<(), ureq::Error> {
            let bytes = self.buffers.output()[..amount].to_vec();
            self.sent.push(bytes);
            std::thread::sleep(self.write_takes);
            Ok(())
        }
        fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
            self.awaited += 1;
            self.waits.push(timeout);
            Ok(!self.eof)
        }
        fn is_open(&mut self) -> bool {
            true
        }
    }

    fn write<T: Transport>(t: &mut T, bytes: &[u8]) {
        t.buffers().output()[..bytes.len()].copy_from_slice(bytes);
        t.transmit_output(bytes.len(), timeout()).unwrap();
    }

    fn timeout() -> NextTimeout {
        NextTimeout {
            after: ureq::unversioned::transport::time::Duration::Exact(Duration::from_secs(1)),
            reason: ureq::Timeout::Global,
            per_read: None,
            per_write: None,
        }
    }

    #[test]
    fn a_request_leaves_in_one_write_when_its_answer_is_awaited() {
        let mut t = Held::new(Recorder::new(4096));
        write(&mut t, b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n");
        write(&mut t, b"{}");
        assert!(t.inner.sent.is_empty(), "nothing goes out before the wait");
        assert!(t.await_input(timeout()).unwrap());
        assert_eq!(
            t.inner.sent,
            vec![b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}".to_vec()]
        );
        assert_eq!(t.inner.awaited, 1);
        // the next request starts empty
        write(&mut t, b"GET");
        t.await_input(timeout()).unwrap();
        assert_eq!(t.inner.sent.len(), 2);
        assert_eq!(t.inner.sent[1], b"GET".to_vec());
    }

    #[test]
    fn only_a_connection_that_answered_before_is_marked_stale() {
        // a new connection that ends before answering: an ordinary failure, not resent
        let mut fresh = Held::new(Recorder::new(4096));
        fresh.inner.eof = true;
        write(&mut fresh, b"POST");
        assert!(!fresh.await_input(timeout()).unwrap());

        // one that answered, then ends under the next request: stale
        let mut reused = Held::new(Recorder::new(4096));
        write(&mut reused, b"POST");
        assert!(reused.await_input(timeout()).unwrap());
        write(&mut reused, b"POST");
        reused.inner.eof = true;
        let e = reused.await_input(timeout()).unwrap_err();
        assert!(is_stale(&e), "{e:?}");
        assert_eq!(map_error(e), FailOpen::Connect, "if the resend fails too");

        // the end of the stream after the answer began is the answer's own end
        reused.inner.eof = false;
        write(&mut reused, b"POST");
        assert!(reused.await_input(timeout()).unwrap());
        reused.inner.eof = true;
        assert!(!reused.await_input(timeout()).unwrap());
    }

    #[test]
    fn a_tunnels_own_exchange_does_not_make_its_first_request_stale() {
        // a proxy's tunnel: the inner layer carried the CONNECT and its answer, the outer one
        // (the connection the request uses) carries nothing yet
        let mut t = Held::new(Held::new(Recorder::new(4096)));
        write(&mut t.inner, b"CONNECT");
        assert!(t.inner.await_input(timeout()).unwrap());
        write(&mut t, b"POST");
        t.inner.inner.eof = true;
        let e = t.await_input(timeout()).unwrap_err();
        assert!(
            !is_stale(&e),
            "a new connection's failure is not resent: {e:?}"
        );
        assert_eq!(map_error(e), FailOpen::Connect);
    }

    #[test]
    fn the_wait_is_given_only_what_the_write_left() {
        let mut t = Held::new(Recorder::new(4096));
        t.inner.write_takes = Duration::from_millis(50);
        write(&mut t, b"POST");
        t.await_input(timeout()).unwrap();
        let given = *t.inner.waits[0].after;
        assert!(
            given <= Duration::from_millis(950),
            "a 1 s timeout after a 50 ms write: {given:?} left"
        );
    }

    #[test]
    fn more_than_the_hold_goes_out_at_once_in_buffer_sized_writes() {
        let mut t = Held::new(Recorder::new(4096));
        let chunk = vec![b'x'; 4096];
        let mut written = 0;
        while written <= HELD_MAX {
            write(&mut t, &chunk);
            written += chunk.len();
        }
        let sent: Vec<u8> = t.inner.sent.concat();
        assert_eq!(sent.len(), written, "all of it, in order, before any wait");
        assert!(t.inner.sent.iter().all(|w| w.len() <= 4096));
        assert!(t.held.is_empty());
        assert_eq!(t.inner.awaited, 0);
    }

    #[test]
    fn a_resolver_that_never_answers_costs_one_thread_and_no_caller_time() {
        let calls = Arc::new(AtomicUsize::new(0));
        let release = Arc::new((Mutex::new(false), Condvar::new()));
        let (c, r) = (calls.clone(), release.clone());
        let resolver = Arc::new(BoundedResolver::with_system(Arc::new(move |_: &str| {
            c.fetch_add(1, Ordering::SeqCst);
            let (lock, cv) = &*r;
            let mut done = lock.lock().unwrap();
            while !*done {
                done = cv.wait(done).unwrap();
            }
            vec![SocketAddr::from(([127, 0, 0, 1], 80))]
        })));
        let mut threads = Vec::new();
        for _ in 0..20 {
            let resolver = resolver.clone();
            threads.push(std::thread::spawn(move || {
                let start = Instant::now();
                let result = resolver.lookup("stuck.example", 443, Duration::from_millis(100));
                (result.is_err(), start.elapsed())
            }));
        }
        for t in threads {
            let (failed, elapsed) = t.join().unwrap();
            assert!(failed);
            assert!(elapsed < Duration::from_millis(600), "{elapsed:?}");
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "one resolution at a time per host"
        );
        {
            let (lock, cv) = &*release;
            *lock.lock().unwrap() = true;
            cv.notify_all();
        }
        let addrs = resolver
            .lookup("stuck.example", 443, Duration::from_secs(5))
            .unwrap();
        assert_eq!(addrs, vec![SocketAddr::from(([127, 0, 0, 1], 80))]);
        // Cached now: no new resolution.
        resolver
            .lookup("stuck.example", 443, Duration::from_millis(1))
            .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
