//! `nol sandbox` and `nol demo`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use nol_core::client::{ApiKey, Call, Client, ClientConfig};
use nol_core::{Policy, TrustedKeys};
use nol_sandbox::directory::number_for_fault;
use nol_sandbox::{Fault, Sandbox, SandboxConfig, SANDBOX_FREE_KEY, SANDBOX_KEY};

use crate::lookup::outcome;

#[derive(Args)]
pub struct SandboxArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8787")]
    listen: SocketAddr,
    /// Misbehave on every lookup: hang, drip, slow-body, reset, close, 500, 503, 429, 401,
    /// non-json, truncated, huge, wrong-types, bad-signature, no-signature, redirect.
    #[arg(long, value_parser = parse_fault)]
    fault: Option<Fault>,
    /// Sign with a fixed key and make receipt ids from the request, so that the same lookup
    /// gets the same answer every time (for tests that compare clients byte for byte).
    #[arg(long)]
    deterministic: bool,
    /// Slow but healthy: answer every inbound lookup correctly (signed, valid) after this
    /// many milliseconds, as a wholesale CNAM dip across the internet does.
    #[arg(long, value_name = "N", default_value_t = 0)]
    delay_ms: u64,
    /// Serve HTTPS, with a CA made at start and a certificate for 127.0.0.1, ::1 and
    /// localhost. Nothing trusts that CA unless told (`--set tls_ca_file=FILE`, `curl
    /// --cacert FILE`).
    #[arg(long)]
    tls: bool,
    /// Where to write the CA's PEM certificate (with --tls); next to the public key unless
    /// given.
    #[arg(long, value_name = "FILE", requires = "tls")]
    ca_out: Option<std::path::PathBuf>,
}

fn parse_fault(s: &str) -> Result<Fault, String> {
    Fault::parse(s).ok_or_else(|| {
        let all: Vec<&str> = Fault::ALL.iter().map(|f| f.as_str()).collect();
        format!("unknown fault {s:?}; one of: {}", all.join(", "))
    })
}

pub fn sandbox(args: &SandboxArgs) -> ExitCode {
    let sb = match Sandbox::start(SandboxConfig {
        listen: args.listen,
        fault: args.fault,
        signing_seed: args.deterministic.then_some([42; 32]),
        deterministic_receipts: args.deterministic,
        response_delay: Duration::from_millis(args.delay_ms),
        tls: args.tls,
        ..SandboxConfig::default()
    }) {
        Ok(sb) => sb,
        Err(e) => return crate::usage_error(&format!("listening on {}: {e}", args.listen)),
    };
    let dir = std::env::temp_dir().join(format!("nol-sandbox-{}", sb.addr().port()));
    let key_path = match std::fs::create_dir_all(&dir).and_then(|_| sb.write_public_key(&dir)) {
        Ok(p) => p,
        Err(e) => return crate::usage_error(&format!("writing the public key: {e}")),
    };
    let ca_path = if args.tls {
        let path = args
            .ca_out
            .clone()
            .unwrap_or_else(|| dir.join("sandbox_ca.pem"));
        if let Err(e) = sb.write_ca_pem(&path) {
            return crate::usage_error(&format!("writing the CA to {}: {e}", path.display()));
        }
        Some(path)
    } else {
        None
    };
    println!("sandbox listening on {}", sb.url());
    println!("public key: {}", key_path.display());
    if let Some(ca) = &ca_path {
        println!("CA certificate: {}", ca.display());
    }
    println!("API keys: {SANDBOX_KEY} (standard), {SANDBOX_FREE_KEY} (free tier)");
    if let Some(f) = args.fault {
        println!("fault on every lookup: {f}");
    }
    if args.delay_ms > 0 {
        println!("every lookup answered after {} ms", args.delay_ms);
    }
    println!();
    let trust = ca_path
        .as_ref()
        .map(|ca| format!(" --set tls_ca_file={}", ca.display()))
        .unwrap_or_default();
    println!(
        "try: NUMBERS_ONLINE_API_KEY={SANDBOX_KEY} nol lookup +14155551212 --base-url {} --public-key {}{trust}",
        sb.url(),
        key_path.display()
    );
    loop {
        std::thread::park();
    }
}

struct Scripted {
    what: &'static str,
    number: String,
    verstat: Option<&'static str>,
    attestation: Option<&'static str>,
}

pub fn demo() -> ExitCode {
    let sb = match Sandbox::start(SandboxConfig {
        hang_for: Duration::from_secs(3),
        ..SandboxConfig::default()
    }) {
        Ok(sb) => sb,
        Err(e) => return crate::usage_error(&format!("starting the sandbox: {e}")),
    };
    let budget = Duration::from_millis(400);
    let started = Instant::now();
    let client = Client::new(ClientConfig {
        api_key: ApiKey::new(SANDBOX_KEY).ok(),
        base_url: sb.url(),
        public_keys: TrustedKeys::from_pem(&sb.public_key_pem()).unwrap_or_default(),
        budget,
        policy: Policy {
            risk_tag: Some("[Risk]".into()),
            risk_threshold: 70,
            screening_contact: Some("sip:screening@ivr.example.net".into()),
            ..Policy::default()
        },
        default_country: Some("US".into()),
        ..ClientConfig::default()
    });
    let client = match client {
        Ok(c) => c,
        Err(e) => return crate::usage_error(&e.to_string()),
    };
    println!(
        "libnol demo: the embedded sandbox at {} (its own Ed25519 key), a {} ms budget per call,",
        sb.url(),
        budget.as_millis()
    );
    println!("a risk tag above 70, 302 to a screening Contact on challenge, no blocking (opt-in).");
    println!(
        "Client ready in {:.0} ms (numbering metadata loaded up front, not on the first call).\n",
        started.elapsed().as_secs_f64() * 1000.0
    );

    let calls = [
        Scripted {
            what: "verified business",
            number: "+1 415 555 1212".into(),
            verstat: Some("TN-Validation-Passed"),
            attestation: Some("A"),
        },
        Scripted {
            what: "verified individual",
            number: "sip:+14155550100@carrier.example;user=phone".into(),
            verstat: Some("verstat=TN-Validation-Passed"),
            attestation: Some("A"),
        },
        Scripted {
            what: "labelled business",
            number: "(415) 555-0111".into(),
            verstat: None,
            attestation: Some("B"),
        },
        Scripted {
            what: "failed verstat, elevated risk",
            number: "+14155550122".into(),
            verstat: Some("<sip:+14155550122;verstat=TN-Validation-Failed@sbc>"),
            attestation: Some("C"),
        },
        Scripted {
            what: "unknown number",
            number: "+1 415 555 9999".into(),
            verstat: Some("No-TN-Validation"),
            attestation: None,
        },
        Scripted {
            what: "anonymous caller",
            number: "sip:anonymous@anonymous.invalid".into(),
            verstat: None,
            attestation: None,
        },
        Scripted {
            what: "malformed number",
            number: "12-ab".into(),
            verstat: None,
            attestation: None,
        },
        Scripted {
            what: "repeat (from cache)",
            number: "tel:+1-415-555-1212".into(),
            verstat: Some("TN-Validation-Passed"),
            attestation: Some("A"),
        },
        Scripted {
            what: "lookup hangs",
            number: number_for_fault(Fault::Hang),
            verstat: None,
            attestation: None,
        },
        Scripted {
            what: "forged signature",
            number: number_for_fault(Fault::BadSignature),
            verstat: None,
            attestation: None,
        },
    ];
    let header = [
        "call",
        "caller",
        "STIR/SHAKEN",
        "action",
        "caller name shown",
        "SIP reply",
        "latency",
        "outcome",
    ];
    let mut rows: Vec<[String; 8]> = Vec::new();
    let mut slowest = Duration::ZERO;
    for c in &calls {
        let start = Instant::now();
        let d = client.lookup(&Call {
            verstat: c.verstat,
            attestation: c.attestation,
            ..Call::new(&c.number)
        });
        let elapsed = start.elapsed();
        slowest = slowest.max(elapsed);
        let stir = match (d.stir.attestation.as_str(), d.stir.verstat.as_token()) {
            (None, None) => "-".to_string(),
            (a, v) => format!("{} {}", a.unwrap_or("-"), v.unwrap_or("-")),
        };
        let sip = match &d.sip.contact {
            Some(contact) => format!("{} {}", d.sip.code, contact),
            None if d.sip.code == 603 => "603 Decline".to_string(),
            None => format!("{} route-advance", d.sip.code),
        };
        rows.push([
            c.what.to_string(),
            c.number.clone(),
            stir,
            d.action.to_string(),
            d.caller_name
                .clone()
                .unwrap_or_else(|| "(raw number)".into()),
            sip,
            format!("{:.2} ms", elapsed.as_secs_f64() * 1000.0),
            outcome(&d),
        ]);
    }
    print_table(&header, &rows);
    let s = client.stats();
    println!(
        "\n{} lookups: {} verified, {} from cache, {} failed open; every call went on, the slowest after {:.1} ms of its {} ms budget.",
        s.lookups,
        s.verified,
        s.cache_hits,
        s.fail_open.iter().map(|(_, n)| n).sum::<u64>(),
        slowest.as_secs_f64() * 1000.0,
        budget.as_millis(),
    );
    ExitCode::SUCCESS
}

fn print_table(header: &[&str; 8], rows: &[[String; 8]]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(widths.iter())
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(header.to_vec());
    line(
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect(),
    );
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
