//! The sandbox over HTTPS: its own CA, kept-alive connections as over plain HTTP, `HEAD /` on
//! the same connection as lookups, and a handshake refused by a client that does not trust it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use nol_sandbox::{Sandbox, SandboxConfig, SANDBOX_KEY};

type Tls = StreamOwned<ClientConnection, TcpStream>;

fn tls_sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig {
        tls: true,
        ..SandboxConfig::default()
    })
    .unwrap()
}

fn roots(pem: &str) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    for block in pem.split("-----END CERTIFICATE-----") {
        let Some(b64) = block.split("-----BEGIN CERTIFICATE-----").nth(1) else {
            continue;
        };
        let b64: String = b64.split_whitespace().collect();
        use base64::Engine;
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        roots.add(CertificateDer::from(der)).unwrap();
    }
    roots
}

fn connect(sb: &Sandbox, roots: RootCertStore, name: &str) -> Tls {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(name.to_string()).unwrap();
    let conn = ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(sb.addr()).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    StreamOwned::new(conn, tcp)
}

/// Sends one request and reads one response (its body only when `body` is true: not after a
/// `HEAD`). Returns the status, the head and the body.
fn exchange(s: &mut Tls, head: &str, body: &str, read_body: bool) -> (u16, String, String) {
    s.write_all(format!("{head}Content-Length: {}\r\n\r\n{body}", body.len()).as_bytes())
        .unwrap();
    s.flush().unwrap();
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).unwrap();
        assert_eq!(n, 1, "connection ended inside a response head");
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut body = vec![0u8; if read_body { len } else { 0 }];
    s.read_exact(&mut body).unwrap();
    (status, head, String::from_utf8(body).unwrap())
}

fn lookup_head() -> String {
    format!(
        "POST /api/v1/inbound/lookup HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {SANDBOX_KEY}\r\nContent-Type: application/json\r\n"
    )
}

#[test]
fn https_with_its_own_ca_and_keep_alive() {
    let sb = tls_sandbox();
    assert!(sb.url().starts_with("https://127.0.0.1:"), "{}", sb.url());
    let ca = sb.ca_pem().expect("a CA when serving HTTPS").to_string();
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));

    for name in ["127.0.0.1", "localhost"] {
        let before = sb.connections();
        let mut s = connect(&sb, roots(&ca), name);
        // The warm-up's request first, then lookups, all on one connection.
        let (status, head, _) = exchange(&mut s, "HEAD / HTTP/1.1\r\nHost: x\r\n", "", false);
        assert_eq!(status, 200, "{head}");
        for _ in 0..3 {
            let (status, _, body) =
                exchange(&mut s, &lookup_head(), r#"{"number":"+14155551212"}"#, true);
            assert_eq!(status, 200);
            assert!(body.contains("Acme Support"), "{body}");
        }
        assert_eq!(
            sb.connections() - before,
            1,
            "one TLS connection, kept alive"
        );
    }
    assert_eq!(sb.lookups(), 6, "HEAD / is not a lookup");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.pem");
    sb.write_ca_pem(&path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), ca);
}

#[test]
fn a_client_that_does_not_trust_the_ca_gets_no_answer() {
    let sb = tls_sandbox();
    let other = tls_sandbox();
    let mut s = connect(&sb, roots(other.ca_pem().unwrap()), "127.0.0.1");
    let e = s
        .write_all(lookup_head().as_bytes())
        .and_then(|_| s.flush())
        .and_then(|_| s.read(&mut [0u8; 64]));
    let e = e.expect_err("another CA's roots refuse this certificate");
    assert!(e.to_string().contains("certificate"), "{e}");
    assert_eq!(sb.lookups(), 0);
}

#[test]
fn plain_http_has_no_ca() {
    let sb = Sandbox::start(SandboxConfig::default()).unwrap();
    assert!(sb.url().starts_with("http://"));
    assert!(sb.ca_pem().is_none());
    let dir = tempfile::tempdir().unwrap();
    assert!(sb.write_ca_pem(&dir.path().join("ca.pem")).is_err());
}

#[test]
fn head_answers_without_a_body_over_plain_http_too() {
    let sb = Sandbox::start(SandboxConfig::default()).unwrap();
    let mut s = TcpStream::connect(sb.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut all = String::new();
    s.read_to_string(&mut all).unwrap();
    // Two responses: the HEAD's head alone, then the GET's head and body.
    assert_eq!(all.matches("HTTP/1.1 200 OK").count(), 2, "{all}");
    assert!(all.ends_with("\r\n\r\nnumbers.online sandbox\n"), "{all:?}");
    assert_eq!(all.matches("numbers.online sandbox").count(), 1, "{all:?}");
    assert_eq!(sb.lookups(), 0);
}
