//! What users run instead, for both benchmarks of this crate: curl, a process per call (the
//! seed's AGI recipe, nothing verified), and Python `requests` + the seed's verify
//! (`requests_seed.py`, a kept-alive Session).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nol_sandbox::SANDBOX_KEY;

/// `n` fresh lookups at `base_url`, each a new `curl` process (`--cacert ca` over HTTPS, each
/// call with its own TLS handshake), `max_time` seconds at most each.
pub fn curl_per_call(base_url: &str, ca: Option<&str>, max_time: &str, n: usize) -> Vec<Duration> {
    let url = format!("{base_url}/api/v1/inbound/lookup");
    let auth = format!("Authorization: Bearer {SANDBOX_KEY}");
    (0..n)
        .map(|_| {
            let t = Instant::now();
            let mut curl = Command::new("curl");
            curl.args(["-s", "--max-time", max_time]);
            if let Some(ca) = ca {
                curl.args(["--cacert", ca]);
            }
            let out = curl
                .args(["-H", &auth, "-H", "Content-Type: application/json"])
                .args([
                    "-d",
                    r#"{"number":"+14155551212","context":"inbound_voice"}"#,
                    &url,
                ])
                .output()
                .expect("curl runs");
            let e = t.elapsed();
            assert!(
                out.status.success() && out.stdout.starts_with(b"{"),
                "curl: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            e
        })
        .collect()
}

/// What `requests_seed.py` printed: its timings, in seconds, by name.
pub struct Python(serde_json::Value);

impl Python {
    /// `n` lookups through `requests_seed.py` (`NOL_BENCH_PYTHON`, else `python3`), trusting
    /// `ca` when given.
    pub fn run(base_url: &str, pem: &Path, n: usize, ca: Option<&str>) -> Python {
        let mut py =
            Command::new(std::env::var("NOL_BENCH_PYTHON").unwrap_or_else(|_| "python3".into()));
        py.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/requests_seed.py"))
            .args([
                base_url,
                pem.to_str().unwrap_or(""),
                SANDBOX_KEY,
                &n.to_string(),
            ]);
        if let Some(ca) = ca {
            py.arg(ca);
        }
        let out = py.output().expect("python runs");
        Python(
            serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
                panic!("python failed: {}", String::from_utf8_lossy(&out.stderr))
            }),
        )
    }

    /// The list of timings under `name` (empty when absent).
    pub fn all(&self, name: &str) -> Vec<Duration> {
        self.0[name]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_f64())
                    .map(Duration::from_secs_f64)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The one timing under `name` (zero when absent).
    #[allow(dead_code)] // only the HTTPS benchmark reads one
    pub fn one(&self, name: &str) -> Duration {
        self.0[name]
            .as_f64()
            .map(Duration::from_secs_f64)
            .unwrap_or_default()
    }
}
