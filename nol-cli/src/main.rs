//! `nol`: libnol on the command line.

use std::io::{self, BufRead, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod agi;
mod demo;
mod lookup;
use nol_core::signature;
use nol_core::{Caller, Stir, TrustedKeys, E164};

#[derive(Parser)]
#[command(
    name = "nol",
    version,
    about = "libnol: caller intelligence from numbers.online, failing open"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Normalize numbers to E.164: one per line. With no NUMBER, reads one input per line from
    /// stdin and writes one line per input (`error: <reason>` or `anonymous` where it has to).
    Normalize {
        /// Default country for national numbers (ISO 3166, e.g. US).
        #[arg(long)]
        country: Option<String>,
        numbers: Vec<String>,
    },
    /// Parse a verstat (a token, a `verstat=` parameter or a whole header value).
    Verstat {
        value: String,
        /// An attestation or an Identity header value, read alongside.
        #[arg(long)]
        attestation: Option<String>,
    },
    /// Verify a signed response body (stdin without BODY_FILE). Exit 0 `valid`, 1 `invalid`.
    Verify {
        #[arg(long, value_name = "FILE")]
        public_key: PathBuf,
        body_file: Option<PathBuf>,
    },
    /// Look up an inbound call. Always exits 0 once the lookup runs, failing open included.
    /// The API key comes from NUMBERS_ONLINE_API_KEY.
    Lookup(lookup::LookupArgs),
    /// Print every setting with its range and default (Markdown), as the README lists them.
    Settings,
    /// Run the sandbox server (a stand-in numbers.online) until interrupted.
    Sandbox(demo::SandboxArgs),
    /// Start the embedded sandbox and run a scripted set of inbound calls through libnol.
    Demo,
    /// Serve libnol over HTTP to local hosts: /v1/cid, /api/v1/inbound/lookup, pre-call,
    /// Retell, Vapi, MCP (/mcp), /metrics, /healthz (see nol-serve/README.md).
    Serve(ServeArgs),
    /// Asterisk AGI: one session on stdin/stdout (`AGI(nol,agi)`), or with --listen a FastAGI
    /// server (`AGI(agi://127.0.0.1:4573/)`). Sets NOL_ACTION, NOL_RISK, NOL_LABEL, NOL_RECEIPT,
    /// NOL_VERIFIED, NOL_FAIL_OPEN, NOL_SIP_CODE, NOL_SIP_CONTACT; always exits 0, failing open.
    Agi(agi::AgiArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on (loopback unless asked; beyond loopback warns without TLS).
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// TOML configuration: `listen`, `[settings]` and `[[tenant]]` (token, api_key or
    /// api_key_env). Without tenants: NUMBERS_ONLINE_API_KEY and NOL_SERVE_TOKEN.
    #[arg(long)]
    config: Option<std::path::PathBuf>,
    /// A setting for every tenant, by the settings table's names (after the file's).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
}

fn serve(args: &ServeArgs) -> ExitCode {
    let config = (|| {
        let mut config = match &args.config {
            Some(path) => nol_serve::ServeConfig::from_file(path)?,
            None => nol_serve::ServeConfig::default(),
        };
        if let Some(listen) = args.listen {
            config.listen = listen;
        }
        for s in &args.set {
            let (name, value) = s.split_once('=').ok_or_else(|| {
                nol_serve::ServeError(format!(
                    "--set takes NAME=VALUE, not {:?}",
                    s.split('=').next().unwrap_or("")
                ))
            })?;
            if name.trim() == "api_key" {
                return Err(nol_serve::ServeError(
                    "the API key comes from NUMBERS_ONLINE_API_KEY or the configuration file, never a flag".into(),
                ));
            }
            config
                .settings
                .push((name.trim().to_string(), value.to_string()));
        }
        config.apply_env()?;
        Ok::<_, nol_serve::ServeError>(config)
    })();
    let result = config.and_then(nol_serve::run);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nol serve: {e}");
            ExitCode::from(2)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Normalize { country, numbers } => normalize(country.as_deref(), &numbers),
        Command::Verstat { value, attestation } => verstat(&value, attestation.as_deref()),
        Command::Verify {
            public_key,
            body_file,
        } => verify(&public_key, body_file.as_deref()),
        Command::Lookup(args) => lookup::run(&args),
        Command::Settings => {
            print!("{}", nol_core::settings::markdown_table());
            ExitCode::SUCCESS
        }
        Command::Sandbox(args) => demo::sandbox(&args),
        Command::Demo => demo::demo(),
        Command::Serve(args) => serve(&args),
        Command::Agi(args) => agi::run(&args),
    }
}

pub(crate) fn usage_error(message: &str) -> ExitCode {
    eprintln!("nol: {message}");
    ExitCode::from(2)
}

fn normalize_line(input: &str, country: Option<&str>) -> Result<String, String> {
    match E164::parse(input, country) {
        Ok(Caller::Number(n)) => Ok(n.to_string()),
        Ok(Caller::Anonymous) => Ok("anonymous".to_string()),
        Err(e) => Err(e.to_string()),
    }
}

fn normalize(country: Option<&str>, numbers: &[String]) -> ExitCode {
    if let Some(c) = country {
        if let Err(e) = E164::parse("+14155551212", Some(c)) {
            return usage_error(&e.to_string());
        }
    }
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    if numbers.is_empty() {
        // One line out per line in, whatever a line holds: one that is not UTF-8 is an error
        // line of its own, not the end of the run.
        for line in io::stdin().lock().split(b'\n') {
            let Ok(line) = line else {
                eprintln!("nol: reading stdin failed");
                return ExitCode::FAILURE;
            };
            let line = line.strip_suffix(b"\r").unwrap_or(&line);
            let text = match std::str::from_utf8(line) {
                Ok(line) => normalize_line(line, country),
                Err(_) => Err("not UTF-8 text".to_string()),
            }
            .unwrap_or_else(|e| format!("error: {e}"));
            if writeln!(out, "{text}").is_err() {
                return ExitCode::FAILURE;
            }
        }
        return flush(out);
    }
    let single = numbers.len() == 1;
    let mut status = ExitCode::SUCCESS;
    for number in numbers {
        match normalize_line(number, country) {
            Ok(text) => {
                let _ = writeln!(out, "{text}");
            }
            Err(e) if single => {
                let _ = out.flush();
                return usage_error(&format!("{number:?}: {e}"));
            }
            Err(e) => {
                let _ = writeln!(out, "error: {e}");
                status = ExitCode::from(1);
            }
        }
    }
    let flushed = flush(out);
    if flushed != ExitCode::SUCCESS {
        return flushed;
    }
    status
}

fn flush(mut out: impl Write) -> ExitCode {
    match out.flush() {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

fn verstat(value: &str, attestation: Option<&str>) -> ExitCode {
    let stir = Stir::from_parts(Some(value), attestation);
    println!("verstat: {}", stir.verstat);
    println!("attestation: {}", stir.attestation);
    ExitCode::SUCCESS
}

fn verify(public_key: &std::path::Path, body_file: Option<&std::path::Path>) -> ExitCode {
    let pem = match std::fs::read_to_string(public_key) {
        Ok(p) => p,
        Err(e) => return usage_error(&format!("{}: {e}", public_key.display())),
    };
    let keys = match TrustedKeys::from_pem(&pem) {
        Ok(k) => k,
        Err(e) => return usage_error(&format!("{}: {e}", public_key.display())),
    };
    let body = match body_file {
        Some(path) => match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => return usage_error(&format!("{}: {e}", path.display())),
        },
        None => {
            let mut b = Vec::new();
            if let Err(e) = io::stdin().lock().read_to_end(&mut b) {
                return usage_error(&format!("stdin: {e}"));
            }
            b
        }
    };
    match signature::verify(&body, &keys) {
        Ok(_) => {
            println!("valid");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("invalid: {e}");
            ExitCode::from(1)
        }
    }
}
