//! `nol sandbox --tls --ca-out FILE`, as a user runs it: HTTPS with the sandbox's own CA, which
//! `nol lookup` trusts only when told (`--set tls_ca_file=FILE`).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use nol_sandbox::SANDBOX_KEY;

struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sandbox_tls_writes_its_ca_and_lookup_trusts_it_only_when_told() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let ca_text = ca.to_str().unwrap();
    let mut child = Kill(
        Command::new(env!("CARGO_BIN_EXE_nol"))
            .args([
                "sandbox",
                "--listen",
                "127.0.0.1:0",
                "--tls",
                "--ca-out",
                ca_text,
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("nol sandbox runs"),
    );
    let mut url = None;
    let mut key = None;
    let mut said_ca = false;
    let mut tried = String::new();
    for line in BufReader::new(child.0.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(u) = line.strip_prefix("sandbox listening on ") {
            url = Some(u.to_string());
        } else if let Some(k) = line.strip_prefix("public key: ") {
            key = Some(k.to_string());
        } else if line == format!("CA certificate: {ca_text}") {
            said_ca = true;
        } else if line.starts_with("try:") {
            tried = line;
            break;
        }
    }
    let (url, key) = (url.expect("url"), key.expect("key"));
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    assert!(said_ca);
    assert!(
        tried.contains(&format!("--set tls_ca_file={ca_text}")),
        "{tried}"
    );
    let pem = std::fs::read_to_string(&ca).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));

    let lookup = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_nol"))
            .args(["lookup", "+14155551212", "--json"])
            .args(["--base-url", &url, "--public-key", &key])
            .args(extra)
            .env("NUMBERS_ONLINE_API_KEY", SANDBOX_KEY)
            .env_remove("NOL_BASE_URL")
            .env_remove("NOL_PUBLIC_KEY")
            .output()
            .expect("nol runs");
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap_or_default()
    };
    let trusted = lookup(&[
        "--set",
        &format!("tls_ca_file={ca_text}"),
        "--set",
        "warm_up_ms=500",
    ]);
    assert_eq!(trusted["verified"], true, "{trusted}");
    assert_eq!(trusted["caller_name"], "Acme Support");
    let untrusted = lookup(&[]);
    assert_eq!(
        untrusted["action"], "allow_with_default_policy",
        "{untrusted}"
    );
    assert_eq!(untrusted["fail_open"], "tls", "{untrusted}");
}

#[test]
fn ca_out_needs_tls() {
    let out = Command::new(env!("CARGO_BIN_EXE_nol"))
        .args([
            "sandbox",
            "--listen",
            "127.0.0.1:0",
            "--ca-out",
            "/tmp/x.pem",
        ])
        .output()
        .expect("nol runs");
    assert_eq!(out.status.code(), Some(2));
}
