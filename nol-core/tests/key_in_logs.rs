//! The API key never reaches a log line. libnol logs nothing itself, but the HTTP stack under
//! it (ureq) logs through the `log` facade, and a host that turns logging up sees its records.
//! A capturing logger at the most verbose level records everything while the client looks up,
//! is refused (401), and meets a redirect, and no record may carry the key.

use std::sync::Mutex;

use nol_core::client::{ApiKey, Call, Client, ClientConfig};
use nol_core::TrustedKeys;
use nol_sandbox::directory::number_for_fault;
use nol_sandbox::{Fault, Sandbox, SandboxConfig, SANDBOX_KEY};

struct Capture(Mutex<Vec<(log::Level, String)>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {}", record.target(), record.args());
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((record.level(), line));
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture(Mutex::new(Vec::new()));

fn client(sb: &Sandbox, key: &str) -> Client {
    Client::new(ClientConfig {
        api_key: Some(ApiKey::new(key).unwrap()),
        base_url: sb.url(),
        public_keys: TrustedKeys::from_pem(&sb.public_key_pem()).unwrap(),
        ..ClientConfig::default()
    })
    .unwrap()
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn no_log_record_carries_the_api_key() {
    log::set_logger(&CAPTURE).unwrap();
    log::set_max_level(log::LevelFilter::Trace);
    let sb = Sandbox::start(SandboxConfig::default()).unwrap();
    // A key the sandbox refuses, so that the 401 path is logged too.
    let unknown_key = "nol_live_0123456789abcdef";
    let good = client(&sb, SANDBOX_KEY);
    assert!(good.lookup(&Call::new("+14155551212")).verified());
    assert!(good.lookup(&Call::new("+14155551212")).from_cache());
    let redirect = number_for_fault(Fault::Redirect);
    assert!(good.lookup(&Call::new(&redirect)).fail_open().is_some());
    let refused = client(&sb, unknown_key);
    assert!(refused
        .lookup(&Call::new("+14155550100"))
        .fail_open()
        .is_some());
    drop((good, refused));

    let records = CAPTURE.0.lock().unwrap().clone();
    // The HTTP stack did log the requests, headers included (else this test proves nothing).
    assert!(
        records
            .iter()
            .any(|(level, line)| *level <= log::Level::Debug
                && line.contains("lookup")
                && line.contains("content-type")),
        "no debug record of a request's headers: {records:#?}"
    );
    for key in [SANDBOX_KEY, unknown_key] {
        for (level, line) in &records {
            assert!(!line.contains(key), "the key in a {level} record: {line}");
            // ureq-proto hex-dumps raw request bytes at trace level (README: filter the
            // `ureq_proto` target at trace); up to debug, not even hex-encoded.
            if *level <= log::Level::Debug {
                assert!(
                    !line.contains(&hex(key)),
                    "the key, hex, in a {level} record"
                );
            }
        }
    }
}
