//! `nol agi`: libnol as an Asterisk AGI program (the AGI session on stdin/stdout, one process
//! per call) and, with `--listen`, as a FastAGI server (AGI over TCP, one thread per call, one
//! client for the process: the production form).
//!
//! A session reads the AGI environment (`agi_callerid`, `agi_arg_1`, ...), looks the caller up
//! and sets the channel variables of nol-core's [`Decision::asterisk_variables`] with
//! `SET VARIABLE`, reading each `200 result=` reply; with the operator's opt-in
//! (`--callerid-name`, or `callerid_name=yes` in a FastAGI script path) also `CALLERID(name)`
//! when libnol gives a name. Whatever fails (no client, a broken session), the call goes on:
//! the program exits 0, the server answers, and `NOL_ACTION` is `allow_with_default_policy`
//! wherever the variables could still be set.
//!
//! Where verstat, attestation and the receiver's number come from, first found wins: the
//! command line (`nol agi [VERSTAT [ATTESTATION]]`), the AGI arguments (`agi_arg_1`,
//! `agi_arg_2`: `AGI(agi://host/,VERSTAT,ATTESTATION)`), the FastAGI script path's options
//! (`agi://host/?verstat=...&attestation=...&to=...`), then the channel variables
//! `NOL_VERSTAT`, `NOL_ATTESTATION`, `NOL_TO` (`GET VARIABLE`).

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use nol_core::client::fail_open::FailOpen;
use nol_core::client::{Call, Client, ClientConfig};
use nol_core::{Decision, Policy, Stir};

#[derive(Args)]
pub struct AgiArgs {
    /// Serve FastAGI on ADDR (e.g. 127.0.0.1:4573) instead of one AGI session on stdin/stdout.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Set CALLERID(name) to libnol's caller name when there is one (the operator's opt-in).
    #[arg(long)]
    callerid_name: bool,
    /// Any setting by name (`nol settings` lists them), e.g. `--set budget_ms=300`. The API key
    /// comes from NUMBERS_ONLINE_API_KEY, the service from NOL_BASE_URL, the trusted key from
    /// the PEM file NOL_PUBLIC_KEY names.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// Most FastAGI sessions served at once; a session beyond it is answered at once, failing
    /// open as `busy`.
    #[arg(long, default_value_t = 512)]
    max_sessions: usize,
    /// The verstat (a token, a `verstat=` parameter or a header value).
    verstat: Option<String>,
    /// The attestation (A, B, C, or an Identity header value).
    attestation: Option<String>,
}

/// What a session needs besides the AGI streams.
struct Session<'a> {
    client: Option<&'a Client>,
    /// When the call reached us (the process's start for AGI, the connection's accept for
    /// FastAGI): the budget counts from here, so reading the AGI environment, `GET VARIABLE`
    /// round trips and (AGI) making the client are inside it, not on top of it.
    started: Instant,
    callerid_name: bool,
    verstat: Option<&'a str>,
    attestation: Option<&'a str>,
}

fn make_client(set: &[String]) -> Result<Client, String> {
    let mut config = ClientConfig::default();
    for item in set {
        let (name, value) = item
            .split_once('=')
            .ok_or_else(|| format!("--set {item:?}: expected NAME=VALUE"))?;
        if name.trim() == "api_key" {
            return Err("the API key comes from NUMBERS_ONLINE_API_KEY, never a flag".into());
        }
        config.set(name.trim(), value).map_err(|e| e.to_string())?;
    }
    Client::new(config).map_err(|e| e.to_string())
}

pub fn run(args: &AgiArgs) -> ExitCode {
    let started = Instant::now();
    let client = make_client(&args.set);
    if let Some(addr) = args.listen {
        return match client {
            Ok(client) => serve(addr, client, args),
            Err(e) => crate::usage_error(&e),
        };
    }
    // One session on stdin/stdout. Whatever happens, exit 0: the call goes on.
    if let Err(e) = &client {
        eprintln!("nol agi: {e} (failing open as not_configured)");
    }
    let session = Session {
        client: client.as_ref().ok(),
        started,
        callerid_name: args.callerid_name,
        verstat: args.verstat.as_deref(),
        attestation: args.attestation.as_deref(),
    };
    let stdin = io::stdin();
    let stdout = io::stdout();
    if let Err(e) = session.run(stdin.lock(), stdout.lock()) {
        eprintln!("nol agi: {e}");
    }
    ExitCode::SUCCESS
}

fn serve(addr: SocketAddr, client: Client, args: &AgiArgs) -> ExitCode {
    let listener = match TcpListener::bind(addr) {
        Ok(l) => l,
        Err(e) => return crate::usage_error(&format!("listen on {addr}: {e}")),
    };
    let local = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    println!("FastAGI listening on {local}");
    let _ = io::stdout().flush();
    let client = Arc::new(client);
    let active = Arc::new(AtomicUsize::new(0));
    let callerid_name = args.callerid_name;
    let max = args.max_sessions.max(1);
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let started = Instant::now();
        let client = Arc::clone(&client);
        let active = Arc::clone(&active);
        let busy = active.fetch_add(1, Ordering::SeqCst) >= max;
        let spawned = std::thread::Builder::new()
            .name("nol-fastagi".into())
            .spawn(move || {
                let _ = fastagi_session(stream, &client, callerid_name, busy, started);
                active.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            eprintln!("nol agi: cannot start a session thread");
        }
    }
    ExitCode::SUCCESS
}

fn fastagi_session(
    stream: TcpStream,
    client: &Client,
    callerid_name: bool,
    busy: bool,
    started: Instant,
) -> io::Result<()> {
    // A peer that stops talking never holds a thread for long.
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let _ = stream.set_nodelay(true);
    let reader = BufReader::new(stream.try_clone()?);
    let session = Session {
        client: Some(client),
        started,
        callerid_name,
        verstat: None,
        attestation: None,
    };
    if busy {
        return session.run_failed_open(reader, stream, FailOpen::Busy);
    }
    session.run(reader, stream)
}

/// The FastAGI script path's options: `name?verstat=...&attestation=...&to=...&callerid_name=yes`
/// (percent-decoded; a `+` stays a `+`, as `CURL()` and dialplans send numbers unencoded).
fn script_options(script: &str) -> HashMap<String, String> {
    let Some((_, query)) = script.split_once('?') else {
        return HashMap::new();
    };
    query
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((percent_decode(k)?, percent_decode(v)?))
        })
        .collect()
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "yes" | "on" | "true"
    )
}

/// One AGI command's reply: `200 result=N [(data)]`, or an error.
struct Reply {
    code: u16,
    result: String,
    data: Option<String>,
}

/// `value` as one AGI argument: quoted, with `"` and `\` escaped (Asterisk's parse_args).
/// libnol's values carry no control character; any that did would be dropped here too.
fn agi_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Session<'_> {
    fn run(&self, mut reader: impl BufRead, mut writer: impl Write) -> io::Result<()> {
        let env = match read_env(&mut reader) {
            Ok(env) => env,
            Err(e) => {
                // Try to leave the call with the fail-open variables all the same.
                let _ = self.set_variables(
                    &mut reader,
                    &mut writer,
                    &failed_open(FailOpen::NotConfigured),
                    None,
                );
                return Err(e);
            }
        };
        let options = env
            .get("agi_network_script")
            .map(|s| script_options(s))
            .unwrap_or_default();
        let arg = |n: &str| env.get(n).map(String::as_str).filter(|v| !v.is_empty());
        let opt = |n: &str| options.get(n).map(String::as_str).filter(|v| !v.is_empty());
        let mut verstat = self
            .verstat
            .filter(|v| !v.is_empty())
            .or_else(|| arg("agi_arg_1"))
            .or_else(|| opt("verstat"))
            .map(str::to_string);
        let mut attestation = self
            .attestation
            .filter(|v| !v.is_empty())
            .or_else(|| arg("agi_arg_2"))
            .or_else(|| opt("attestation"))
            .map(str::to_string);
        let mut to = opt("to").map(str::to_string);
        if verstat.is_none() {
            verstat = get_variable(&mut reader, &mut writer, "NOL_VERSTAT")?;
        }
        if attestation.is_none() {
            attestation = get_variable(&mut reader, &mut writer, "NOL_ATTESTATION")?;
        }
        if to.is_none() {
            to = get_variable(&mut reader, &mut writer, "NOL_TO")?;
        }
        let callerid_name = self.callerid_name || opt("callerid_name").is_some_and(truthy);
        let number = env.get("agi_callerid").map(String::as_str).unwrap_or("");
        let decision = match self.client {
            // What is left of the budget since the call reached us (at least nothing:
            // a cache hit still answers, a request fails open at once as a timeout).
            Some(client) => client.lookup_within(
                &Call {
                    verstat: verstat.as_deref(),
                    attestation: attestation.as_deref(),
                    to: to.as_deref(),
                    ..Call::new(number)
                },
                client.budget().saturating_sub(self.started.elapsed()),
            ),
            None => fail_open_decision(FailOpen::NotConfigured),
        };
        let name = if callerid_name {
            decision.caller_name.as_deref()
        } else {
            None
        };
        self.set_variables(
            &mut reader,
            &mut writer,
            &decision.asterisk_variables(),
            name,
        )
    }

    fn run_failed_open(
        &self,
        mut reader: impl BufRead,
        mut writer: impl Write,
        reason: FailOpen,
    ) -> io::Result<()> {
        read_env(&mut reader)?;
        self.set_variables(&mut reader, &mut writer, &failed_open(reason), None)
    }

    fn set_variables(
        &self,
        reader: &mut impl BufRead,
        writer: &mut impl Write,
        vars: &[(&'static str, String)],
        caller_name: Option<&str>,
    ) -> io::Result<()> {
        for (name, value) in vars {
            command(
                reader,
                writer,
                &format!("SET VARIABLE {name} {}", agi_quote(value)),
            )?;
        }
        if let Some(n) = caller_name.filter(|n| !n.is_empty()) {
            command(
                reader,
                writer,
                &format!("SET VARIABLE CALLERID(name) {}", agi_quote(n)),
            )?;
        }
        Ok(())
    }
}

fn fail_open_decision(reason: FailOpen) -> Decision {
    Policy::default().fail_open(reason, None, Stir::default(), None)
}

fn failed_open(reason: FailOpen) -> Vec<(&'static str, String)> {
    fail_open_decision(reason).asterisk_variables()
}

/// The AGI environment: `agi_name: value` lines up to an empty line.
fn read_env(reader: &mut impl BufRead) -> io::Result<HashMap<String, String>> {
    let mut env = HashMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the AGI environment ended early",
            ));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            return Ok(env);
        }
        if let Some((k, v)) = line.split_once(':') {
            env.insert(k.trim().to_string(), v.trim_start().to_string());
        }
    }
}

/// Sends one command and reads its reply (skipping a `HANGUP` notice; a `520-` usage block
/// to its end).
fn command(reader: &mut impl BufRead, writer: &mut impl Write, cmd: &str) -> io::Result<Reply> {
    writer.write_all(cmd.as_bytes())?;
    writer.write_all(b"\n")?;
    writer.flush()?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "Asterisk closed the session",
            ));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() || line.starts_with("HANGUP") {
            continue;
        }
        if line.starts_with("520-") {
            // Usage text up to "520 End of proper usage."
            loop {
                let mut more = String::new();
                if reader.read_line(&mut more)? == 0 || more.starts_with("520 ") {
                    break;
                }
            }
            return Ok(Reply {
                code: 520,
                result: String::new(),
                data: None,
            });
        }
        let code: u16 = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
        let rest = line.get(4..).unwrap_or("");
        let result = rest
            .strip_prefix("result=")
            .map(|r| r.split(' ').next().unwrap_or("").to_string())
            .unwrap_or_default();
        let data = match (rest.find('('), rest.rfind(')')) {
            (Some(a), Some(b)) if b > a => Some(rest[a + 1..b].to_string()),
            _ => None,
        };
        return Ok(Reply { code, result, data });
    }
}

/// `GET VARIABLE name`: its value when set and not empty.
fn get_variable(
    reader: &mut impl BufRead,
    writer: &mut impl Write,
    name: &str,
) -> io::Result<Option<String>> {
    let reply = command(reader, writer, &format!("GET VARIABLE {name}"))?;
    Ok(match reply {
        Reply {
            code: 200,
            result,
            data: Some(d),
        } if result == "1" && !d.is_empty() => Some(d),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_options() {
        assert_eq!(agi_quote(r#"a "b" \c"#), r#""a \"b\" \\c""#);
        assert_eq!(agi_quote("x\nSET VARIABLE Y 1"), r#""xSET VARIABLE Y 1""#);
        let o = script_options("nol?verstat=TN-Validation-Passed&attestation=A&to=+442071838750&callerid_name=yes&x=%41");
        assert_eq!(o["verstat"], "TN-Validation-Passed");
        assert_eq!(o["to"], "+442071838750");
        assert_eq!(o["x"], "A");
        assert!(truthy(&o["callerid_name"]));
        assert!(script_options("nol").is_empty());
        assert_eq!(percent_decode("%4"), Some("%4".into()));
    }

    #[test]
    fn a_session_without_a_client_fails_open() {
        let input = "agi_request: nol\nagi_callerid: +14155551212\n\n200 result=0\n200 result=0\n200 result=1 (+4420)\n"
            .to_string()
            + &"200 result=1\n".repeat(8);
        let mut out = Vec::new();
        let s = Session {
            client: None,
            started: Instant::now(),
            callerid_name: true,
            verstat: None,
            attestation: None,
        };
        s.run(io::Cursor::new(input), &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[..3],
            [
                "GET VARIABLE NOL_VERSTAT",
                "GET VARIABLE NOL_ATTESTATION",
                "GET VARIABLE NOL_TO"
            ]
        );
        assert_eq!(
            lines[3],
            r#"SET VARIABLE NOL_ACTION "allow_with_default_policy""#
        );
        assert!(out.contains(r#"SET VARIABLE NOL_FAIL_OPEN "not_configured""#));
        assert!(!out.contains("CALLERID"), "no name is ever invented");
    }
}
