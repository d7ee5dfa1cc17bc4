//! `nol lookup` and `nol demo` against the sandbox, as a user runs them.

use std::process::Command;
use std::time::Duration;

use nol_sandbox::directory::number_for_fault;
use nol_sandbox::{Fault, Sandbox, SandboxConfig, SANDBOX_KEY};

fn nol_lookup(sb: &Sandbox, key_file: &str, args: &[&str]) -> (i32, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_nol"))
        .arg("lookup")
        .args(args)
        .args(["--base-url", &sb.url(), "--public-key", key_file, "--json"])
        .env("NUMBERS_ONLINE_API_KEY", SANDBOX_KEY)
        .env_remove("NOL_BASE_URL")
        .env_remove("NOL_PUBLIC_KEY")
        .output()
        .expect("nol runs");
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), json)
}

#[test]
fn lookup_json_for_an_answer_and_for_a_failure() {
    let sb = Sandbox::start(SandboxConfig {
        hang_for: Duration::from_secs(3),
        ..SandboxConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = sb.write_public_key(dir.path()).unwrap();
    let key = key.to_str().unwrap();

    let (code, j) = nol_lookup(
        &sb,
        key,
        &[
            "+14155551212",
            "--verstat",
            "TN-Validation-Passed",
            "--attestation",
            "A",
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(j["action"], "allow");
    assert_eq!(j["caller_name"], "Acme Support");
    assert_eq!(j["risk_score"], 8);
    assert_eq!(j["verified"], true);
    assert_eq!(j["from_cache"], false);
    assert_eq!(j["fail_open"], serde_json::Value::Null);
    assert!(j["receipt_id"].as_str().unwrap().starts_with("nol_rec_"));
    assert_eq!(j["sip_code"], 503);
    assert_eq!(j["identity_verified"], true);

    let hang = number_for_fault(Fault::Hang);
    let start = std::time::Instant::now();
    let (code, j) = nol_lookup(&sb, key, &[&hang, "--budget-ms", "150"]);
    let took = start.elapsed();
    assert_eq!(code, 0, "a failed lookup still exits 0");
    assert_eq!(j["action"], "allow_with_default_policy");
    assert_eq!(j["fail_open"], "timeout");
    assert_eq!(j["caller_name"], serde_json::Value::Null);
    // The whole process, start-up included, within the budget and a generous margin.
    assert!(took >= Duration::from_millis(150), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");

    // Every setting by name, through nol-core's checks: out of range is a usage error.
    let (code, j) = nol_lookup(&sb, key, &["+14155551212", "--set", "max_name_len=4"]);
    assert_eq!((code, j["caller_name"].as_str()), (0, Some("Acme")));
    for bad in [
        "budget_ms=0",
        "max_name_len=1025",
        "route_advance_code=480",
        "nope=1",
        "x",
    ] {
        let (code, _) = nol_lookup(&sb, key, &["+14155551212", "--set", bad]);
        assert_eq!(code, 2, "{bad}");
    }
    let (code, _) = nol_lookup(&sb, key, &["+14155551212", "--budget-ms", "60001"]);
    assert_eq!(code, 2);

    let (code, j) = nol_lookup(
        &sb,
        key,
        &["4155551212", "--country", "US", "--context", "inbound_sms"],
    );
    assert_eq!((code, j["caller_name"].as_str()), (0, Some("Acme Support")));
    let (code, _) = nol_lookup(&sb, key, &["+14155551212", "--context", "fax"]);
    assert_eq!(code, 2);
}

#[test]
fn lookup_without_a_key_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_nol"))
        .args(["lookup", "+14155551212"])
        .env_remove("NUMBERS_ONLINE_API_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("NUMBERS_ONLINE_API_KEY"));
}

#[test]
fn demo_runs_every_scripted_call_through_the_pipeline() {
    let out = Command::new(env!("CARGO_BIN_EXE_nol"))
        .arg("demo")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let row = |what: &str| {
        text.lines()
            .find(|l| l.starts_with(what))
            .unwrap_or_else(|| panic!("no row {what:?} in\n{text}"))
            .to_string()
    };
    assert!(
        row("verified business").contains("Acme Support")
            && row("verified business").ends_with("verified")
    );
    assert!(row("verified individual").contains("Verified & online"));
    assert!(row("failed verstat").contains("302 sip:screening@ivr.example.net"));
    assert!(row("unknown number").contains("allow_with_default_policy"));
    assert!(row("anonymous caller").ends_with("fail-open: anonymous"));
    assert!(row("malformed number").ends_with("fail-open: invalid_number"));
    assert!(row("repeat (from cache)").ends_with("cached"));
    assert!(row("lookup hangs").ends_with("fail-open: timeout"));
    // The hanging lookup fails open inside the demo's 400 ms budget (generous margin).
    let latency_ms = |line: &str| -> f64 {
        let at = line.find(" ms").expect("a latency column");
        let start = line[..at].rfind(' ').map_or(0, |i| i + 1);
        line[start..at].parse().expect("a latency in ms")
    };
    let hang = latency_ms(&row("lookup hangs"));
    assert!(
        (300.0..400.0 + 250.0).contains(&hang),
        "hang row took {hang} ms"
    );
    assert!(latency_ms(&row("repeat (from cache)")) < 50.0);
    let summary = text.lines().last().unwrap();
    assert!(summary.contains("of its 400 ms budget"), "{summary}");
    assert!(row("forged signature").ends_with("fail-open: bad_signature"));
    assert!(!text.contains("603"), "no 603 without the block opt-in");
}

/// `nol sandbox --delay-ms N`: slow but healthy, every lookup answered correctly after N ms.
#[test]
fn sandbox_delay_ms_answers_correctly_but_late() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Kill(
        Command::new(env!("CARGO_BIN_EXE_nol"))
            .args(["sandbox", "--listen", "127.0.0.1:0", "--delay-ms", "300"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("nol sandbox runs"),
    );
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let mut url = None;
    let mut key = None;
    let mut said_delay = false;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(u) = line.strip_prefix("sandbox listening on ") {
            url = Some(u.to_string());
        } else if let Some(k) = line.strip_prefix("public key: ") {
            key = Some(k.to_string());
        } else if line == "every lookup answered after 300 ms" {
            said_delay = true;
        } else if line.starts_with("try:") {
            break;
        }
    }
    let (url, key) = (url.expect("url"), key.expect("key"));
    assert!(said_delay);
    let lookup = |budget: &str| {
        let start = std::time::Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_nol"))
            .args(["lookup", "+14155551212", "--json", "--budget-ms", budget])
            .args(["--base-url", &url, "--public-key", &key])
            .env("NUMBERS_ONLINE_API_KEY", SANDBOX_KEY)
            .env_remove("NOL_BASE_URL")
            .env_remove("NOL_PUBLIC_KEY")
            .output()
            .expect("nol runs");
        let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (start.elapsed(), j)
    };
    let (took, j) = lookup("2000");
    assert_eq!(j["caller_name"], "Acme Support");
    assert_eq!(j["verified"], true);
    assert_eq!(j["fail_open"], serde_json::Value::Null);
    assert!(took >= Duration::from_millis(300), "{took:?}");
    let (_, j) = lookup("100");
    assert_eq!(j["fail_open"], "timeout");
}
