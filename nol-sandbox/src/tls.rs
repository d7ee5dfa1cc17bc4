//! The sandbox's HTTPS: a CA of its own and a certificate for `127.0.0.1`, `::1` and
//! `localhost` signed by it, both made at start (ECDSA P-256, as rcgen makes them), served with
//! rustls 0.23 on ring: the TLS stack and provider libnol's HTTP client (ureq) already uses.
//!
//! Nothing trusts the CA unless told: a client gets its PEM from [`crate::Sandbox::ca_pem`] or
//! from the file [`crate::Sandbox::write_ca_pem`] writes (`nol sandbox --tls --ca-out FILE`).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// The names the sandbox's certificate is good for.
pub const CERT_NAMES: &[&str] = &["127.0.0.1", "::1", "localhost"];

/// A CA and the server configuration that presents a certificate it signed.
pub(crate) struct Tls {
    pub ca_pem: String,
    pub config: Arc<ServerConfig>,
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// DER as PEM text, 64 characters a line.
fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

impl Tls {
    /// A new CA (its key is dropped once the leaf is signed) and a leaf certificate for
    /// [`CERT_NAMES`].
    pub fn generate() -> io::Result<Tls> {
        let ca_key = KeyPair::generate().map_err(other)?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(other)?;
        ca.distinguished_name = rcgen::DistinguishedName::new();
        ca.distinguished_name
            .push(DnType::CommonName, "libnol sandbox CA (tests only)");
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).map_err(other)?;
        let issuer = Issuer::new(ca, ca_key);

        let leaf_key = KeyPair::generate().map_err(other)?;
        let names: Vec<String> = CERT_NAMES.iter().map(|s| s.to_string()).collect();
        let mut leaf = CertificateParams::new(names).map_err(other)?;
        leaf.distinguished_name = rcgen::DistinguishedName::new();
        leaf.distinguished_name
            .push(DnType::CommonName, "libnol sandbox");
        leaf.is_ca = IsCa::ExplicitNoCa;
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        // OpenSSL's strict mode (Python 3.13's default context) wants the issuer's key id.
        leaf.use_authority_key_identifier_extension = true;
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).map_err(other)?;

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain: Vec<CertificateDer<'static>> =
            vec![leaf_cert.der().clone(), ca_cert.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(other)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(other)?;
        Ok(Tls {
            ca_pem: pem("CERTIFICATE", ca_cert.der()),
            config: Arc::new(config),
        })
    }
}

/// One accepted connection, plain or TLS: what the request loop and the faults read and write.
pub(crate) enum Stream {
    Plain(TcpStream),
    /// The handshake runs on the first read, on the connection's own thread.
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Stream {
    pub fn new(tcp: TcpStream, tls: Option<&Arc<ServerConfig>>) -> io::Result<Stream> {
        Ok(match tls {
            None => Stream::Plain(tcp),
            Some(config) => {
                let conn = ServerConnection::new(config.clone()).map_err(other)?;
                Stream::Tls(Box::new(StreamOwned::new(conn, tcp)))
            }
        })
    }

    /// The socket under it (timeouts, linger).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }

    /// Ends the connection cleanly: over TLS, a `close_notify` first.
    pub fn close(&mut self) {
        if let Stream::Tls(s) = self {
            s.conn.send_close_notify();
            let _ = s.flush();
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_is_pem_and_each_start_makes_another() {
        let a = Tls::generate().unwrap();
        let b = Tls::generate().unwrap();
        assert!(a.ca_pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(a.ca_pem.ends_with("-----END CERTIFICATE-----\n"));
        assert!(a.ca_pem.lines().all(|l| l.len() <= 64));
        assert_ne!(a.ca_pem, b.ca_pem);
    }
}
