//! The client over HTTPS, as the service is reached: the sandbox serving TLS with a CA of its
//! own, trusted only through `tls_ca_file`; refused (and the call failing open) without it; a
//! bad CA file refused at creation; and the optional warm-up (`warm_up_ms`), which leaves one
//! connection ready for the first lookup and never holds `Client::new` past its bound.
//!
//! Deadlines are asserted with the margins the settings promise; the first lookup's latency
//! with and without the warm-up is a benchmark figure (bench/lookup, `nol-bench-https`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nol_core::client::{ApiKey, Call, Client, ClientConfig};
use nol_core::{ConfigError, FailOpen, TrustedKeys};
use nol_sandbox::{Fault, Sandbox, SandboxConfig, SANDBOX_KEY};

const BUDGET: Duration = Duration::from_millis(300);
const MARGIN: Duration = Duration::from_millis(400);
/// What the warm-up may add to its own bound (the brief: warm_up_ms + 100 ms).
const WARM_UP_SLACK: Duration = Duration::from_millis(100);

fn tls_sandbox_with(config: SandboxConfig) -> Sandbox {
    Sandbox::start(SandboxConfig {
        tls: true,
        hang_for: Duration::from_secs(5),
        ..config
    })
    .expect("sandbox starts")
}

fn tls_sandbox() -> Sandbox {
    tls_sandbox_with(SandboxConfig::default())
}

/// A directory of this test's own, removed when dropped (nol-core has no `tempfile`).
struct TempDir(PathBuf);

impl TempDir {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir() -> TempDir {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "nol-https-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

/// The sandbox's CA written where `tls_ca_file` can name it.
fn ca_file(sb: &Sandbox, dir: &Path) -> PathBuf {
    let path = dir.join("sandbox_ca.pem");
    sb.write_ca_pem(&path).expect("CA written");
    path
}

fn config(sb: &Sandbox) -> ClientConfig {
    ClientConfig {
        api_key: Some(ApiKey::new(SANDBOX_KEY).unwrap()),
        base_url: sb.url(),
        public_keys: TrustedKeys::from_pem(&sb.public_key_pem()).unwrap(),
        budget: BUDGET,
        cache_size: 0,
        breaker: None,
        ..ClientConfig::default()
    }
}

fn trusting(sb: &Sandbox, ca: &Path) -> ClientConfig {
    let mut c = config(sb);
    c.set("tls_ca_file", ca.to_str().unwrap()).unwrap();
    c
}

/// One `Client::new` first, so that what a later one is timed for is the warm-up alone, not
/// the process's one-time costs (numbering tables, the first threads).
fn process_warmed() {
    let sb = Sandbox::start(SandboxConfig::default()).unwrap();
    let _ = Client::new(config(&sb)).unwrap();
}

#[test]
fn a_lookup_over_https_is_verified_with_the_sandboxs_own_ca() {
    let sb = tls_sandbox();
    assert!(sb.url().starts_with("https://"));
    let dir = tempdir();
    let ca = ca_file(&sb, dir.path());
    for base in [sb.url(), format!("https://localhost:{}", sb.addr().port())] {
        let before = sb.connections();
        let c = Client::new(ClientConfig {
            base_url: base.clone(),
            ..trusting(&sb, &ca)
        })
        .unwrap();
        for _ in 0..5 {
            let d = c.lookup(&Call::new("+14155551212"));
            assert!(d.verified(), "{base}: {:?}", d.outcome);
            assert_eq!(d.caller_name.as_deref(), Some("Acme Support"));
        }
        assert_eq!(
            sb.connections() - before,
            1,
            "{base}: five lookups on one kept-alive TLS connection"
        );
    }
    assert_eq!(sb.lookups(), 10);
}

#[test]
fn without_tls_ca_file_the_public_roots_refuse_the_sandbox_and_the_call_fails_open() {
    let sb = tls_sandbox();
    let other = tls_sandbox();
    let dir = tempdir();
    let others_ca = ca_file(&other, dir.path());
    for c in [config(&sb), trusting(&sb, &others_ca)] {
        let c = Client::new(c).unwrap();
        let start = Instant::now();
        let d = c.lookup(&Call::new("+14155551212"));
        let elapsed = start.elapsed();
        assert_eq!(d.fail_open(), Some(&FailOpen::Tls), "{:?}", d.outcome);
        assert!(!d.verified());
        assert!(elapsed < BUDGET + MARGIN, "{elapsed:?}");
    }
    assert_eq!(
        sb.lookups(),
        0,
        "no request crossed an untrusted connection"
    );
}

#[test]
fn a_bad_tls_ca_file_is_a_config_error_at_creation() {
    let sb = tls_sandbox();
    let dir = tempdir();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let key_only = write("key.pem", &sb.public_key_pem());
    let bad: Vec<PathBuf> = vec![
        dir.path().join("missing.pem"),
        dir.path().to_path_buf(), // a directory
        write("empty.pem", ""),
        write("garbage.pem", "not a certificate at all\n\u{0}\u{1}"),
        // Base64 that is no X.509 certificate.
        write(
            "not-der.pem",
            "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
        ),
        // Broken PEM: a block never ended.
        write("unended.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n"),
        // A public key, not a certificate.
        key_only,
        // Endless: read no further than 4 MiB.
        PathBuf::from("/dev/zero"),
    ];
    for path in bad {
        let text = path.to_str().unwrap();
        let mut c = config(&sb);
        let by_name = c.set("tls_ca_file", text);
        assert!(
            matches!(by_name, Err(ConfigError::TlsCaFile(_))),
            "{text}: {by_name:?}"
        );
        // Set directly, the file is checked by Client::new.
        c.tls_ca_file = Some(path.clone());
        let made = Client::new(c);
        match made {
            Err(ConfigError::TlsCaFile(why)) => {
                assert!(why.contains(text), "{why}");
                assert!(!why.contains(SANDBOX_KEY));
            }
            other => panic!("{text}: {other:?}"),
        }
    }
    assert!(matches!(
        config(&sb).set("tls_ca_file", " "),
        Err(ConfigError::InvalidValue {
            setting: "tls_ca_file",
            ..
        })
    ));
    // A good file with other blocks around the certificate is fine.
    let ca = ca_file(&sb, dir.path());
    let mixed = write(
        "mixed.pem",
        &format!(
            "{}\n{}",
            sb.public_key_pem(),
            std::fs::read_to_string(&ca).unwrap()
        ),
    );
    let c = Client::new(trusting(&sb, &mixed)).unwrap();
    assert!(c.lookup(&Call::new("+14155551212")).verified());
}

#[test]
fn warm_up_opens_the_connection_the_first_lookup_uses() {
    let sb = tls_sandbox();
    let dir = tempdir();
    let ca = ca_file(&sb, dir.path());

    // Off by default: nothing is opened before the first lookup.
    let cold = Client::new(trusting(&sb, &ca)).unwrap();
    assert_eq!(sb.connections(), 0);
    assert!(cold.lookup(&Call::new("+14155551212")).verified());
    assert_eq!(sb.connections(), 1);
    drop(cold);

    let mut c = trusting(&sb, &ca);
    c.set("warm_up_ms", "2000").unwrap();
    assert_eq!(c.warm_up, Duration::from_secs(2));
    let warm = Client::new(c).unwrap();
    assert_eq!(
        sb.connections(),
        2,
        "one connection opened (and its TLS handshake done) by Client::new"
    );
    assert_eq!(sb.lookups(), 1, "the warm-up is not a lookup");
    for _ in 0..3 {
        assert!(warm.lookup(&Call::new("+14155551212")).verified());
    }
    assert_eq!(
        sb.connections(),
        2,
        "the first lookups open no new connection"
    );
    assert_eq!(warm.stats().lookups, 3);
}

#[test]
fn warm_up_over_plain_http_to_loopback_too() {
    let sb = Sandbox::start(SandboxConfig::default()).unwrap();
    let c = Client::new(ClientConfig {
        warm_up: Duration::from_millis(500),
        ..config(&sb)
    })
    .unwrap();
    assert_eq!((sb.connections(), sb.lookups()), (1, 0));
    assert!(c.lookup(&Call::new("+14155551212")).verified());
    assert_eq!(sb.connections(), 1);
}

#[test]
fn warm_up_sends_head_without_the_key() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(String::new()));
    {
        let seen = seen.clone();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = listener.accept() {
                let mut buf = [0u8; 4096];
                let n = s.read(&mut buf).unwrap_or(0);
                *seen.lock().unwrap() = String::from_utf8_lossy(&buf[..n]).into_owned();
                let _ = s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
                std::thread::sleep(Duration::from_millis(500));
            }
        });
    }
    let sb = Sandbox::start(SandboxConfig::default()).unwrap();
    let _c = Client::new(ClientConfig {
        base_url: format!("http://{addr}"),
        warm_up: Duration::from_millis(1000),
        ..config(&sb)
    })
    .unwrap();
    let request = seen.lock().unwrap().clone();
    assert!(request.starts_with("HEAD / HTTP/1.1\r\n"), "{request:?}");
    assert!(!request.to_ascii_lowercase().contains("authorization"));
    assert!(!request.contains(SANDBOX_KEY));
}

/// A server that accepts connections and never says a word: no TLS handshake, no answer.
fn silent_server() -> (String, Arc<Mutex<Vec<TcpStream>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let held = Arc::new(Mutex::new(Vec::new()));
    {
        let held = held.clone();
        std::thread::spawn(move || {
            for s in listener.incoming().flatten() {
                held.lock().unwrap().push(s);
            }
        });
    }
    (format!("https://127.0.0.1:{}", addr.port()), held)
}

#[test]
fn warm_up_against_a_stuck_or_unreachable_service_is_bounded_and_the_client_fails_open() {
    process_warmed();
    let sb = tls_sandbox_with(SandboxConfig {
        fault: Some(Fault::Hang),
        ..SandboxConfig::default()
    });
    let dir = tempdir();
    let ca = ca_file(&sb, dir.path());
    let (silent, _held) = silent_server();
    let refused = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        format!("https://127.0.0.1:{port}")
    };
    let warm_up = Duration::from_millis(250);
    for (what, base, reason) in [
        ("no TLS handshake", silent, FailOpen::Timeout),
        ("handshake, then no answer", sb.url(), FailOpen::Timeout),
        ("connection refused", refused, FailOpen::Connect),
    ] {
        let start = Instant::now();
        let c = Client::new(ClientConfig {
            base_url: base,
            warm_up,
            ..trusting(&sb, &ca)
        })
        .unwrap_or_else(|e| panic!("{what}: a failed warm-up never fails Client::new: {e}"));
        let made_in = start.elapsed();
        assert!(made_in < warm_up + WARM_UP_SLACK, "{what}: {made_in:?}");
        let start = Instant::now();
        let d = c.lookup(&Call::new("+14155551212"));
        let elapsed = start.elapsed();
        assert_eq!(d.fail_open(), Some(&reason), "{what}: {:?}", d.outcome);
        assert!(elapsed < BUDGET + MARGIN, "{what}: {elapsed:?}");
    }
    assert_eq!(
        sb.lookups(),
        1,
        "the hanging sandbox saw the lookup, not the warm-up"
    );
}
