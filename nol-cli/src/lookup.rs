//! `nol lookup`: one inbound call through the fail-open client.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use nol_core::client::{Call, Client, ClientConfig, Context};
use nol_core::{Decision, TrustedKeys};

#[derive(Args)]
pub struct LookupArgs {
    /// The calling number (E.164, national with --country, a SIP or tel URI).
    number: String,
    #[arg(long)]
    verstat: Option<String>,
    /// A, B, C, or an Identity header value.
    #[arg(long)]
    attestation: Option<String>,
    /// inbound_voice, inbound_sms or inbound_waba.
    #[arg(long, default_value = "inbound_voice")]
    context: String,
    /// The receiver's own number.
    #[arg(long)]
    to: Option<String>,
    /// Default country for national numbers.
    #[arg(long)]
    country: Option<String>,
    #[arg(long, default_value_t = 400)]
    budget_ms: u64,
    /// Any setting by name (`nol settings` lists them), e.g. `--set max_name_len=32`.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// Default: NOL_BASE_URL, else https://numbers.online.
    #[arg(long)]
    base_url: Option<String>,
    /// PEM file of the trusted key. Default: the file NOL_PUBLIC_KEY names.
    #[arg(long, value_name = "FILE")]
    public_key: Option<PathBuf>,
    /// Print the decision as nol-core's JSON object (the same bytes every binding gives); the
    /// time taken goes to stderr.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &LookupArgs) -> ExitCode {
    let Some(context) = Context::parse(&args.context) else {
        return crate::usage_error(&format!("unknown context {:?}", args.context));
    };
    let mut config = ClientConfig::default();
    let budget = args.budget_ms.to_string();
    let mut settings = vec![("budget_ms", budget.as_str())];
    if let Some(c) = &args.country {
        settings.push(("default_country", c));
    }
    if let Some(url) = &args.base_url {
        settings.push(("base_url", url));
    }
    for item in &args.set {
        let Some((name, value)) = item.split_once('=') else {
            return crate::usage_error(&format!("--set {item:?}: expected NAME=VALUE"));
        };
        settings.push((name.trim(), value));
    }
    for (name, value) in settings {
        if let Err(e) = config.set(name, value) {
            return crate::usage_error(&e.to_string());
        }
    }
    if let Some(path) = &args.public_key {
        let keys = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|pem| TrustedKeys::from_pem(&pem).map_err(|e| e.to_string()));
        match keys {
            Ok(k) => config.public_keys = k,
            Err(e) => return crate::usage_error(&format!("{}: {e}", path.display())),
        }
    }
    let client = match Client::new(config) {
        Ok(c) => c,
        Err(e) => return crate::usage_error(&e.to_string()),
    };
    let call = Call {
        context,
        to: args.to.as_deref(),
        verstat: args.verstat.as_deref(),
        attestation: args.attestation.as_deref(),
        ..Call::new(&args.number)
    };
    let start = Instant::now();
    let decision = client.lookup(&call);
    let elapsed = start.elapsed();
    if args.json {
        println!("{}", decision.to_json());
        eprintln!("{:.3} ms", elapsed.as_secs_f64() * 1000.0);
    } else {
        println!("{}", decision.display_line());
        println!(
            "action: {}   SIP: {} {}   {}   {:.1} ms",
            decision.action,
            decision.sip.code,
            decision.sip.reason,
            outcome(&decision),
            elapsed.as_secs_f64() * 1000.0
        );
    }
    ExitCode::SUCCESS
}

pub fn outcome(d: &Decision) -> String {
    match d.fail_open() {
        Some(reason) => format!("fail-open: {reason}"),
        None if d.from_cache() => "cached".to_string(),
        None => "verified".to_string(),
    }
}
