//! The sandbox keeps the contract: auth, endpoints, tiers, and signatures that Node itself
//! verifies.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use nol_sandbox::directory::{DIRECTORY, INVALID_NUMBER};
use nol_sandbox::{Fault, Sandbox, SandboxConfig, SANDBOX_FREE_KEY, SANDBOX_KEY};

struct Reply {
    status: u16,
    headers: String,
    body: String,
}

fn request(
    sb: &Sandbox,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut s = TcpStream::connect(sb.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: sandbox\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Reply {
        status,
        headers: head.to_string(),
        body: body.to_string(),
    }
}

fn lookup(sb: &Sandbox, key: &str, body: &str) -> Reply {
    let auth = format!("Bearer {key}");
    request(
        sb,
        "POST",
        "/api/v1/inbound/lookup",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body,
    )
}

#[test]
fn node_verifies_every_answer_the_sandbox_signs() {
    let sb = Sandbox::start(SandboxConfig::default()).unwrap();
    let mut bodies = Vec::new();
    let numbers: Vec<&str> = DIRECTORY
        .iter()
        .map(|e| e.number)
        .chain([INVALID_NUMBER, "+14155559999", "+442071838750"])
        .collect();
    for number in numbers {
        for extra in [
            "",
            r#","verstat":"TN-Validation-Failed""#,
            r#","verstat":"TN-Validation-Passed","attestation":"A","context":"inbound_sms""#,
        ] {
            let r = lookup(
                &sb,
                SANDBOX_KEY,
                &format!(r#"{{"number":"{number}"{extra}}}"#),
            );
            assert_eq!(r.status, 200, "{number}: {}", r.body);
            bodies.push(r.body);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bodies.json");
    std::fs::write(
        &file,
        serde_json::json!({"pem": sb.public_key_pem(), "bodies": bodies}).to_string(),
    )
    .unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node/verify_bodies.js");
    let out = Command::new("node")
        .arg(script)
        .arg(&file)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdicts = String::from_utf8(out.stdout).unwrap();
    assert_eq!(verdicts.lines().count(), bodies.len());
    assert!(verdicts.lines().all(|l| l == "ok"), "{verdicts}");
    // And Node refuses what the sandbox signs with the wrong key.
    let forged = lookup(&sb, SANDBOX_KEY, r#"{"number":"+14155551212"}"#);
    let bad = request(
        &sb,
        "POST",
        "/api/v1/inbound/lookup",
        &[
            ("X-API-Key", SANDBOX_KEY),
            ("X-Sandbox-Fault", "bad-signature"),
        ],
        r#"{"number":"+14155551212"}"#,
    );
    std::fs::write(
        &file,
        serde_json::json!({"pem": sb.public_key_pem(), "bodies": [forged.body, bad.body]})
            .to_string(),
    )
    .unwrap();
    let out = Command::new("node")
        .arg(script)
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "ok\nbad\n");
}

#[test]
fn auth_by_bearer_header_or_query_and_401_otherwise() {
    let sb = Sandbox::start(SandboxConfig::default()).unwrap();
    assert_eq!(
        lookup(&sb, "wrong", r#"{"number":"+14155551212"}"#).status,
        401
    );
    assert_eq!(
        request(
            &sb,
            "POST",
            "/api/v1/inbound/lookup",
            &[],
            r#"{"number":"+14155551212"}"#
        )
        .status,
        401
    );
    assert_eq!(
        request(
            &sb,
            "POST",
            "/api/v1/inbound/lookup",
            &[("X-API-Key", SANDBOX_KEY)],
            r#"{"number":"+14155551212"}"#
        )
        .status,
        200
    );
    let cid = request(
        &sb,
        "GET",
        &format!("/v1/cid?number=%2B14155551212&key={SANDBOX_KEY}"),
        &[],
        "",
    );
    assert_eq!((cid.status, cid.body.as_str()), (200, "Acme Support"));
    let national = request(
        &sb,
        "GET",
        &format!("/v1/cid?number=4155551212&country=US&key={SANDBOX_KEY}"),
        &[],
        "",
    );
    assert_eq!(national.body, "Acme Support");
    let unknown = request(
        &sb,
        "GET",
        &format!("/v1/cid?number=%2B14155559999&key={SANDBOX_KEY}"),
        &[],
        "",
    );
    assert_eq!((unknown.status, unknown.body.as_str()), (200, ""));
    assert_eq!(
        request(&sb, "GET", "/v1/cid?number=%2B14155551212", &[], "").status,
        401
    );
}

#[test]
fn bad_requests_and_unknown_paths() {
    let sb = Sandbox::start(SandboxConfig::default()).unwrap();
    assert_eq!(
        lookup(&sb, SANDBOX_KEY, r#"{"number":"4155551212"}"#).status,
        400
    );
    assert_eq!(lookup(&sb, SANDBOX_KEY, "not json").status, 400);
    assert_eq!(
        request(
            &sb,
            "GET",
            "/api/v1/inbound/lookup",
            &[("X-API-Key", SANDBOX_KEY)],
            ""
        )
        .status,
        405
    );
    assert_eq!(request(&sb, "GET", "/nope", &[], "").status, 404);
}

#[test]
fn the_free_tier_is_limited_per_minute_with_retry_after() {
    let sb = Sandbox::start(SandboxConfig {
        free_rate_limit: 2,
        ..SandboxConfig::default()
    })
    .unwrap();
    for _ in 0..2 {
        assert_eq!(
            lookup(&sb, SANDBOX_FREE_KEY, r#"{"number":"+14155551212"}"#).status,
            200
        );
    }
    let limited = lookup(&sb, SANDBOX_FREE_KEY, r#"{"number":"+14155551212"}"#);
    assert_eq!(limited.status, 429);
    assert!(
        limited
            .headers
            .to_ascii_lowercase()
            .contains("retry-after: "),
        "{}",
        limited.headers
    );
    assert_eq!(
        lookup(&sb, SANDBOX_KEY, r#"{"number":"+14155551212"}"#).status,
        200,
        "per key"
    );
    // The pre-call endpoints are free and not metered: a limited key still reaches them.
    let auth = format!("Bearer {SANDBOX_FREE_KEY}");
    let headers = [("Authorization", auth.as_str())];
    for _ in 0..3 {
        let precall = request(
            &sb,
            "POST",
            "/api/v1/precall/lookup",
            &headers,
            r#"{"from":"+14155551212","to":"+14155550100"}"#,
        );
        assert_eq!(precall.status, 200);
        let enroll = request(
            &sb,
            "POST",
            "/api/v1/precall/enroll",
            &headers,
            r#"{"number":"+14155551212"}"#,
        );
        assert_eq!(enroll.status, 200);
    }
}

#[test]
fn faults_by_header_and_by_server_reach_every_endpoint() {
    let sb = Sandbox::start(SandboxConfig::default()).unwrap();
    let r = request(
        &sb,
        "POST",
        "/api/v1/inbound/lookup",
        &[("X-API-Key", SANDBOX_KEY), ("X-Sandbox-Fault", "503")],
        r#"{"number":"+14155551212"}"#,
    );
    assert_eq!(r.status, 503);
    sb.set_fault(Some(Fault::Status500));
    let r = request(
        &sb,
        "POST",
        "/api/v1/precall/enroll",
        &[("X-API-Key", SANDBOX_KEY)],
        r#"{"number":"+14155551212"}"#,
    );
    assert_eq!(r.status, 500);
    sb.set_fault(None);
    let r = request(
        &sb,
        "POST",
        "/api/v1/precall/enroll",
        &[("X-API-Key", SANDBOX_KEY)],
        r#"{"number":"+14155551212"}"#,
    );
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, r#"{"enrolled":true,"number":"+14155551212"}"#)
    );
    for f in Fault::ALL {
        assert_eq!(Fault::parse(f.as_str()), Some(*f));
    }
}
