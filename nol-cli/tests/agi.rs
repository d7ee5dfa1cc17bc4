//! `nol agi` as Asterisk drives it: an AGI session over stdin/stdout and FastAGI over TCP,
//! against the sandbox. The test plays Asterisk: it sends the AGI environment, answers each
//! command as res_agi does (`200 result=...`) and records what was set.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nol_sandbox::directory::number_for_fault;
use nol_sandbox::{Fault, Sandbox, SandboxConfig, SANDBOX_KEY};

fn sandbox() -> (Sandbox, tempfile::TempDir, String) {
    let sb = Sandbox::start(SandboxConfig {
        hang_for: Duration::from_secs(3),
        ..SandboxConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = sb.write_public_key(dir.path()).unwrap();
    let key = key.to_str().unwrap().to_string();
    (sb, dir, key)
}

fn nol(sb: &Sandbox, key: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nol"));
    c.arg("agi")
        .args(args)
        .env("NUMBERS_ONLINE_API_KEY", SANDBOX_KEY)
        .env("NOL_BASE_URL", sb.url())
        .env("NOL_PUBLIC_KEY", key);
    c
}

fn env_block(callerid: &str, extra: &[(&str, &str)]) -> String {
    let mut s = format!(
        "agi_request: nol\nagi_channel: Local/s@test-00000001;2\nagi_language: en\n\
         agi_type: Local\nagi_uniqueid: 1700000000.1\nagi_version: 22.10.1\n\
         agi_callerid: {callerid}\nagi_calleridname: unknown\nagi_context: test\n\
         agi_extension: s\nagi_priority: 2\n"
    );
    for (k, v) in extra {
        s.push_str(&format!("{k}: {v}\n"));
    }
    s.push('\n');
    s
}

/// Undoes the AGI quoting of a `SET VARIABLE NAME "value"` command.
fn parse_set(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix("SET VARIABLE ")?;
    let (name, quoted) = rest.split_once(' ')?;
    let inner = quoted.strip_prefix('"')?.strip_suffix('"')?;
    let mut value = String::new();
    let mut esc = false;
    for c in inner.chars() {
        if esc {
            value.push(c);
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else {
            assert_ne!(c, '"', "an unescaped quote in {line:?}");
            value.push(c);
        }
    }
    Some((name.to_string(), value))
}

/// Plays Asterisk on one session: answers every command, returns what was set and the
/// commands in order.
fn play(
    mut reader: impl BufRead,
    mut writer: impl Write,
    env: &str,
    channel_vars: &[(&str, &str)],
) -> (BTreeMap<String, String>, Vec<String>) {
    writer.write_all(env.as_bytes()).unwrap();
    writer.flush().unwrap();
    if env.is_empty() {
        drop(writer); // end of input: not an AGI session at all
        let mut rest = String::new();
        let _ = reader.read_to_string(&mut rest);
        // It may still try to leave the call failing open; nothing else.
        assert!(
            rest.is_empty()
                || rest.starts_with("SET VARIABLE NOL_ACTION \"allow_with_default_policy\"\n"),
            "{rest:?}"
        );
        return (BTreeMap::new(), Vec::new());
    }
    let mut set = BTreeMap::new();
    let mut commands = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        let line = line.trim_end_matches('\n').to_string();
        assert!(!line.contains('\r'), "{line:?}");
        let reply = if let Some(name) = line.strip_prefix("GET VARIABLE ") {
            match channel_vars.iter().find(|(n, _)| *n == name) {
                Some((_, v)) => format!("200 result=1 ({v})\n"),
                None => "200 result=0\n".to_string(),
            }
        } else if let Some((name, value)) = parse_set(&line) {
            set.insert(name, value);
            "200 result=1\n".to_string()
        } else {
            "510 Invalid or unknown command\n".to_string()
        };
        commands.push(line);
        if writer.write_all(reply.as_bytes()).is_err() {
            break;
        }
        let _ = writer.flush();
    }
    (set, commands)
}

fn agi_process(
    mut cmd: Command,
    env: &str,
    channel_vars: &[(&str, &str)],
) -> (i32, BTreeMap<String, String>, Vec<String>, Duration) {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (set, commands) = play(stdout, stdin, env, channel_vars);
    let code = child.wait().unwrap().code().unwrap_or(-1);
    (code, set, commands, start.elapsed())
}

const NAMES: [&str; 8] = [
    "NOL_ACTION",
    "NOL_RISK",
    "NOL_LABEL",
    "NOL_RECEIPT",
    "NOL_VERIFIED",
    "NOL_FAIL_OPEN",
    "NOL_SIP_CODE",
    "NOL_SIP_CONTACT",
];

#[test]
fn agi_over_stdin_sets_the_decision_and_fails_open() {
    let (sb, _dir, key) = sandbox();

    // A verified business, verstat and attestation from the command line.
    let (code, set, commands, _) = agi_process(
        nol(&sb, &key, &["TN-Validation-Passed", "A"]),
        &env_block("+14155551212", &[]),
        &[],
    );
    assert_eq!(code, 0);
    assert_eq!(set["NOL_ACTION"], "allow");
    assert_eq!(set["NOL_LABEL"], "Acme Support");
    assert_eq!(set["NOL_RISK"], "8");
    assert_eq!(set["NOL_VERIFIED"], "1");
    assert_eq!(set["NOL_FAIL_OPEN"], "");
    assert!(set["NOL_RECEIPT"].starts_with("nol_rec_"));
    assert_eq!(set.keys().map(String::as_str).collect::<Vec<_>>().len(), 8);
    for n in NAMES {
        assert!(set.contains_key(n), "{n}");
    }
    assert!(
        !set.contains_key("CALLERID(name)"),
        "only on the operator's opt-in"
    );
    // Only the receiver's number was asked of the channel.
    assert_eq!(commands[0], "GET VARIABLE NOL_TO");

    // The opt-in sets the caller name; verstat from the channel's variables.
    let (code, set, commands, _) = agi_process(
        nol(&sb, &key, &["--callerid-name"]),
        &env_block("+14155550100", &[]),
        &[
            ("NOL_VERSTAT", "TN-Validation-Passed"),
            ("NOL_ATTESTATION", "A"),
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(set["CALLERID(name)"], "Verified & online");
    assert_eq!(set["NOL_LABEL"], "Verified & online");
    assert_eq!(commands.len(), 3 + 9);

    // No name to set: the caller name is never invented.
    let (_, set, _, _) = agi_process(
        nol(&sb, &key, &["--callerid-name"]),
        &env_block("+14155550122", &[]),
        &[],
    );
    assert_eq!(set["NOL_ACTION"], "challenge_or_route");
    assert!(!set.contains_key("CALLERID(name)"));

    // A hanging service: fail open within the budget (process start-up included).
    let (code, set, _, took) = agi_process(
        nol(&sb, &key, &["--set", "budget_ms=300"]),
        &env_block(&number_for_fault(Fault::Hang), &[]),
        &[],
    );
    assert_eq!(code, 0);
    assert_eq!(set["NOL_ACTION"], "allow_with_default_policy");
    assert_eq!(set["NOL_FAIL_OPEN"], "timeout");
    assert_eq!(set["NOL_VERIFIED"], "0");
    assert!(took < Duration::from_millis(300 + 700), "{took:?}");

    // A forged signature.
    let (_, set, _, _) = agi_process(
        nol(&sb, &key, &[]),
        &env_block(&number_for_fault(Fault::BadSignature), &[]),
        &[],
    );
    assert_eq!(set["NOL_ACTION"], "allow_with_default_policy");
    assert_eq!(set["NOL_FAIL_OPEN"], "bad_signature");
    assert_eq!(set["NOL_LABEL"], "");

    // A setting out of range: no client, still exit 0 and fail open.
    let (code, set, _, _) = agi_process(
        nol(&sb, &key, &["--set", "budget_ms=0"]),
        &env_block("+14155551212", &[]),
        &[],
    );
    assert_eq!(code, 0);
    assert_eq!(set["NOL_ACTION"], "allow_with_default_policy");
    assert_eq!(set["NOL_FAIL_OPEN"], "not_configured");

    // Not an AGI session at all: still exit 0.
    let (code, set, _, _) = agi_process(nol(&sb, &key, &[]), "", &[]);
    assert_eq!(code, 0);
    assert!(set.is_empty() || set["NOL_ACTION"] == "allow_with_default_policy");
}

struct Server(Child, String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn fastagi(sb: &Sandbox, key: &str, args: &[&str]) -> Server {
    let mut cmd = nol(sb, key, &["--listen", "127.0.0.1:0"]);
    let mut child = cmd
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("FastAGI listening on ")
        .unwrap_or_else(|| panic!("{line:?}"))
        .to_string();
    // Keep draining stdout so the server never blocks on it.
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = out.read_to_end(&mut sink);
    });
    Server(child, addr)
}

fn fastagi_call(
    addr: &str,
    callerid: &str,
    script: &str,
    args: &[&str],
) -> (BTreeMap<String, String>, Duration) {
    let start = Instant::now();
    let stream = TcpStream::connect(addr).unwrap();
    let reader = BufReader::new(stream.try_clone().unwrap());
    let mut extra = vec![("agi_network", "yes"), ("agi_network_script", script)];
    let names = ["agi_arg_1", "agi_arg_2"];
    for (n, a) in names.iter().zip(args) {
        extra.push((n, a));
    }
    let (set, _) = play(reader, stream, &env_block(callerid, &extra), &[]);
    (set, start.elapsed())
}

#[test]
fn fastagi_over_tcp_one_client_many_calls() {
    let (sb, _dir, key) = sandbox();
    let server = fastagi(&sb, &key, &["--set", "budget_ms=300"]);
    let addr = server.1.clone();

    // Options in the script path.
    let (set, _) = fastagi_call(
        &addr,
        "+14155551212",
        "nol?verstat=TN-Validation-Passed&attestation=A&callerid_name=yes",
        &[],
    );
    assert_eq!(set["NOL_ACTION"], "allow");
    assert_eq!(set["NOL_VERIFIED"], "1");
    assert_eq!(set["CALLERID(name)"], "Acme Support");

    // Options as AGI arguments; no opt-in, no name.
    let (set, _) = fastagi_call(&addr, "+14155550111", "", &["TN-Validation-Passed", "A"]);
    assert_eq!(set["NOL_ACTION"], "label");
    assert_eq!(set["NOL_LABEL"], "Café Zürich — Bäckerei");
    assert!(!set.contains_key("CALLERID(name)"));

    // Many calls at once, one of them hanging: each answered, the hanging one within budget.
    let mut threads = Vec::new();
    for i in 0..24 {
        let addr = addr.clone();
        threads.push(std::thread::spawn(move || {
            let number = if i % 8 == 0 {
                number_for_fault(Fault::Hang)
            } else {
                "+14155551212".to_string()
            };
            let (set, took) = fastagi_call(&addr, &number, "nol", &[]);
            (i, set, took)
        }));
    }
    for t in threads {
        let (i, set, took) = t.join().unwrap();
        if i % 8 == 0 {
            assert_eq!(set["NOL_ACTION"], "allow_with_default_policy");
            assert_eq!(set["NOL_FAIL_OPEN"], "timeout");
            assert!(took < Duration::from_millis(300 + 100 + 200), "{took:?}");
        } else {
            assert_eq!(set["NOL_ACTION"], "allow", "{set:?}");
        }
    }

    // A peer that sends a broken environment does not take the server down.
    {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.write_all(b"agi_request: nol\n").unwrap();
    }
    let (set, _) = fastagi_call(&addr, &number_for_fault(Fault::BadSignature), "nol", &[]);
    assert_eq!(set["NOL_FAIL_OPEN"], "bad_signature");
    assert_eq!(set["NOL_ACTION"], "allow_with_default_policy");
}
