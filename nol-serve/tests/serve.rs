//! `nol serve` over real sockets, against the sandbox and against a small recording upstream
//! (it signs what it is told to, hostile labels included, and records which API key each
//! request carried): verified names, unknown numbers, failing open within the budget, hostile
//! labels sanitized on every endpoint, tenants spending only their own key, 401 without a dip.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ed25519_dalek::pkcs8::EncodePublicKey;
use ed25519_dalek::SigningKey;
use nol_core::canonical::JsValue;
use nol_sandbox::directory::{number_for_fault, Tier};
use nol_sandbox::{Fault, Sandbox, SandboxConfig, SANDBOX_FREE_KEY, SANDBOX_KEY};
use nol_serve::{Running, Secret, ServeConfig, TenantConfig};
use serde_json::{json, Value};

const TOKEN_A: &str = "tenant-a-local-token-0001";
const TOKEN_B: &str = "tenant-b-local-token-0002";
const BUDGET_MS: u64 = 300;
/// Generous: the precise overshoot is a benchmark figure, not a test.
const MARGIN: Duration = Duration::from_millis(700);

fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig {
        hang_for: Duration::from_secs(3),
        ..SandboxConfig::default()
    })
    .expect("sandbox")
}

fn tenant(name: &str, token: &str, key: &str) -> TenantConfig {
    TenantConfig {
        name: name.into(),
        token: Secret::new(token),
        api_key: Secret::new(key),
        settings: Vec::new(),
    }
}

fn serve(base_url: &str, pem: &str, tenants: Vec<TenantConfig>, extra: &[(&str, &str)]) -> Running {
    let mut settings = vec![
        ("base_url".to_string(), base_url.to_string()),
        ("public_key_pem".to_string(), pem.to_string()),
        ("budget_ms".to_string(), BUDGET_MS.to_string()),
        ("circuit_breaker".to_string(), "false".to_string()),
    ];
    settings.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    nol_serve::start(ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        settings,
        tenants,
        ..ServeConfig::default()
    })
    .expect("nol serve starts")
}

fn serve_sandbox(sb: &Sandbox, extra: &[(&str, &str)]) -> Running {
    serve(
        &sb.url(),
        &sb.public_key_pem(),
        vec![tenant("a", TOKEN_A, SANDBOX_KEY)],
        extra,
    )
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(15)))
        .build()
        .into()
}

/// GET: (status, body).
fn get(url: &str) -> (u16, String) {
    let mut r = agent().get(url).call().expect("GET");
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

/// POST JSON with a bearer token: (status, body).
fn post(url: &str, token: &str, body: &Value) -> (u16, String) {
    let mut r = agent()
        .post(url)
        .header("Authorization", &format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .expect("POST");
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

fn cid(s: &Running, number: &str, token: &str) -> (u16, String, Duration) {
    let start = Instant::now();
    let (status, body) = get(&format!(
        "{}/v1/cid?number={}&key={token}",
        s.url(),
        number.replace('+', "%2B")
    ));
    (status, body, start.elapsed())
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn verified_names_unknown_numbers_and_the_risk_tag() {
    let sb = sandbox();
    let s = serve_sandbox(&sb, &[("risk_tag", "SPAM?"), ("default_country", "US")]);
    assert_eq!(cid(&s, "+14155551212", TOKEN_A).1, "Acme Support");
    assert_eq!(cid(&s, "+14155550100", TOKEN_A).1, "Verified & online");
    // National form, as mod_cidlookup's ${caller_id_number} often is.
    assert_eq!(cid(&s, "4155551212", TOKEN_A).1, "Acme Support");
    let (status, body, _) = cid(&s, "+14155559999", TOKEN_A);
    assert_eq!(
        (status, body.as_str()),
        (200, ""),
        "unknown: empty, never invented"
    );
    assert_eq!(cid(&s, "+15555550100", TOKEN_A).1, "", "invalid number");
    assert_eq!(cid(&s, "not-a-number", TOKEN_A).1, "");
    assert_eq!(cid(&s, "+14155550122", TOKEN_A).1, "SPAM? +14155550122");
    let (_, body) = get(&format!(
        "{}/v1/cid?number=%2B14155551212&key={TOKEN_A}&format=json",
        s.url()
    ));
    assert_eq!(json(&body)["name"], "Acme Support");

    let (status, body) = post(
        &format!("{}/api/v1/inbound/lookup", s.url()),
        TOKEN_A,
        &json!({"number": "+14155551212", "verstat": "TN-Validation-Passed", "attestation": "A"}),
    );
    assert_eq!(status, 200);
    let v = json(&body);
    assert_eq!(v["display_label"], "Acme Support");
    assert_eq!(v["recommended_action"], "allow");
    assert_eq!(v["verified"], true);
    assert_eq!(v["decision"]["attestation"], "A");
    assert!(v["receipt_id"].as_str().unwrap().starts_with("nol_rec_"));
    // From libnol's cache the second time.
    let again = json(
        &post(
            &format!("{}/api/v1/inbound/lookup", s.url()),
            TOKEN_A,
            &json!({"number": "+14155551212", "verstat": "TN-Validation-Passed", "attestation": "A"}),
        )
        .1,
    );
    assert_eq!(again["from_cache"], true);

    let (_, body) = post(
        &format!("{}/api/v1/precall/lookup", s.url()),
        TOKEN_A,
        &json!({"from": "+14155551212", "to": nol_sandbox::directory::SUPPRESSED_NUMBER}),
    );
    assert_eq!(json(&body)["dnc"], "SUPPRESS");
    let (_, body) = post(
        &format!("{}/api/v1/precall/enroll", s.url()),
        TOKEN_A,
        &json!({"number": "+14155551212"}),
    );
    assert_eq!(json(&body)["enrolled"], true);

    let (status, body) = post(
        &format!("{}/retell/inbound", s.url()),
        TOKEN_A,
        &json!({"event": "call_inbound", "call_inbound": {"from_number": "+14155551212", "to_number": "+12125550100"}}),
    );
    assert_eq!(status, 200);
    assert_eq!(
        json(&body)["call_inbound"]["dynamic_variables"]["caller_name"],
        "Acme Support"
    );
    let (status, body) = post(
        &format!("{}/vapi/tool", s.url()),
        TOKEN_A,
        &json!({"message": {"toolCallList": [{"id": "t1", "function": {"name": "phone_lookup", "arguments": {"number": "+14155551212"}}}]}}),
    );
    assert_eq!(status, 200);
    let v = json(&body);
    assert_eq!(v["results"][0]["toolCallId"], "t1");
    let result = json(v["results"][0]["result"].as_str().unwrap());
    assert_eq!(result["caller_name"], "Acme Support");

    let (status, metrics) = get(&format!("{}/metrics", s.url()));
    assert_eq!(status, 200);
    assert!(
        metrics.contains("nol_verified_total{tenant=\"a\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("nol_cache_hits_total{tenant=\"a\"}"));
    assert!(metrics.contains("nol_serve_lookup_duration_seconds_bucket{le=\"+Inf\"}"));
    assert!(metrics.contains("nol_circuit_open{tenant=\"a\"} 0"));
    assert!(!metrics.contains(TOKEN_A) && !metrics.contains(SANDBOX_KEY));
    assert_eq!(
        get(&format!("{}/healthz", s.url())),
        (200, "ok\n".to_string())
    );
}

#[test]
fn fails_open_within_the_budget_on_every_endpoint() {
    let sb = sandbox();
    let s = serve_sandbox(&sb, &[]);
    let budget = Duration::from_millis(BUDGET_MS);
    for fault in [
        Fault::Hang,
        Fault::BadSignature,
        Fault::Drip,
        Fault::NonJson,
        Fault::Status500,
    ] {
        let number = number_for_fault(fault);
        let (status, body, took) = cid(&s, &number, TOKEN_A);
        assert_eq!((status, body.as_str()), (200, ""), "{fault}");
        assert!(took < budget + MARGIN, "{fault}: {took:?}");

        let start = Instant::now();
        let (status, body) = post(
            &format!("{}/api/v1/inbound/lookup", s.url()),
            TOKEN_A,
            &json!({"number": number}),
        );
        assert!(start.elapsed() < budget + MARGIN, "{fault}");
        let v = json(&body);
        assert_eq!(status, 200);
        assert_eq!(
            v["recommended_action"], "allow_with_default_policy",
            "{fault}"
        );
        assert!(v["fail_open"].is_string(), "{fault}: {v}");
        assert_eq!(v["display_label"], Value::Null);

        let start = Instant::now();
        let (status, body) = post(
            &format!("{}/retell/inbound", s.url()),
            TOKEN_A,
            &json!({"call_inbound": {"from_number": number}}),
        );
        assert!(start.elapsed() < budget + MARGIN);
        assert_eq!(status, 200);
        assert_eq!(
            json(&body)["call_inbound"]["dynamic_variables"]["caller_name"],
            ""
        );
        let (status, body) = post(
            &format!("{}/vapi/tool", s.url()),
            TOKEN_A,
            &json!({"message": {"toolCallList": [{"id": "x", "function": {"arguments": {"number": number}}}]}}),
        );
        assert_eq!(status, 200);
        let result = json(json(&body)["results"][0]["result"].as_str().unwrap());
        assert!(result["fail_open"].is_string());
    }
    let hang = json(
        &post(
            &format!("{}/api/v1/inbound/lookup", s.url()),
            TOKEN_A,
            &json!({"number": number_for_fault(Fault::Hang)}),
        )
        .1,
    );
    assert_eq!(hang["fail_open"], "timeout");
    let forged = json(
        &post(
            &format!("{}/api/v1/inbound/lookup", s.url()),
            TOKEN_A,
            &json!({"number": number_for_fault(Fault::BadSignature)}),
        )
        .1,
    );
    assert_eq!(forged["fail_open"], "bad_signature");
    // Bodies that are not JSON at all fail open too, never an error to the host.
    let (status, body) = post(
        &format!("{}/api/v1/inbound/lookup", s.url()),
        TOKEN_A,
        &json!("nonsense"),
    );
    assert_eq!(status, 200);
    // No number at all reads as a withheld caller.
    assert_eq!(json(&body)["fail_open"], "anonymous");
    let (_, metrics) = get(&format!("{}/metrics", s.url()));
    assert!(metrics.contains("reason=\"timeout\"} "), "{metrics}");
    assert!(
        !metrics.contains("reason=\"bad_signature\"} 0"),
        "{metrics}"
    );
}

/// A tiny upstream: signs a found answer whose label is `label`, for any number, and records
/// the API key of every request.
struct Upstream {
    addr: SocketAddr,
    key: SigningKey,
    keys_seen: Arc<Mutex<Vec<String>>>,
}

impl Upstream {
    fn start(label: &'static str) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let key = SigningKey::from_bytes(&[9; 32]);
        let keys_seen = Arc::new(Mutex::new(Vec::new()));
        let (k, seen) = (key.clone(), keys_seen.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (k, seen) = (k.clone(), seen.clone());
                std::thread::spawn(move || Upstream::conn(stream, &k, &seen, label));
            }
        });
        Upstream {
            addr,
            key,
            keys_seen,
        }
    }

    fn conn(stream: TcpStream, key: &SigningKey, seen: &Mutex<Vec<String>>, label: &str) {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut out = stream;
        loop {
            let mut len = 0;
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 {
                    return;
                }
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                let (name, value) = h.split_once(':').unwrap_or((h, ""));
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => len = value.trim().parse().unwrap_or(0),
                    "authorization" => seen
                        .lock()
                        .unwrap()
                        .push(value.trim().trim_start_matches("Bearer ").to_string()),
                    _ => {}
                }
            }
            let mut body = vec![0; len];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            let asked: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let number = asked["number"].as_str().unwrap_or("").to_string();
            let s = |v: &str| JsValue::String(v.to_string());
            let members = vec![
                ("schema_version".to_string(), s("2026-05-31")),
                ("result".to_string(), s("found")),
                ("number".to_string(), s(&number)),
                ("identity_type".to_string(), s("listed_business")),
                ("display_label".to_string(), s(label)),
                ("risk_score".to_string(), JsValue::Number(30.into())),
                ("risk_level".to_string(), s("medium\r\nX-Evil: 1")),
                ("recommended_action".to_string(), s("label")),
                ("ttl_seconds".to_string(), JsValue::Number(60.into())),
                ("receipt_id".to_string(), s("nol_rec_\r\n<evil>")),
            ];
            let body = nol_sandbox::signed_body(members, key);
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            if out.write_all(reply.as_bytes()).is_err() {
                return;
            }
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn pem(&self) -> String {
        self.key
            .verifying_key()
            .to_public_key_pem(Default::default())
            .unwrap()
    }

    fn keys(&self) -> Vec<String> {
        self.keys_seen.lock().unwrap().clone()
    }
}

const HOSTILE: &str =
    "Evil\r\nX-Injected: yes\u{0}\u{7}\u{1b}[31m\u{202e}kcaB\u{2028}Bank\"\\<script>\u{85}";

fn assert_clean(what: &str, text: &str) {
    assert!(
        !text
            .chars()
            .any(|c| c.is_control()
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}')),
        "{what}: {text:?}"
    );
}

#[test]
fn hostile_labels_never_reach_a_host_unsanitized() {
    let up = Upstream::start(HOSTILE);
    let s = serve(
        &up.url(),
        &up.pem(),
        vec![tenant("a", TOKEN_A, "key-a")],
        &[],
    );
    let (status, body, _) = cid(&s, "+14155551212", TOKEN_A);
    assert_eq!(status, 200);
    assert!(body.starts_with("Evil X-Injected: yes"), "{body:?}");
    assert_clean("/v1/cid", &body);

    let (_, body) = post(
        &format!("{}/api/v1/inbound/lookup", s.url()),
        TOKEN_A,
        &json!({"number": "+14155551213"}),
    );
    let v = json(&body);
    for field in ["display_label", "caller_name", "risk_level", "receipt_id"] {
        assert_clean(field, v[field].as_str().unwrap_or(""));
    }
    assert_clean(
        "display_line",
        v["decision"]["display_line"].as_str().unwrap(),
    );
    assert_clean("agi", &v["decision"]["agi_variables"].to_string());

    let (_, body) = post(
        &format!("{}/retell/inbound", s.url()),
        TOKEN_A,
        &json!({"call_inbound": {"from_number": "+14155551214"}}),
    );
    for (k, v) in json(&body)["call_inbound"]["dynamic_variables"]
        .as_object()
        .unwrap()
    {
        assert_clean(k, v.as_str().unwrap());
    }
    let (_, body) = post(
        &format!("{}/vapi/tool", s.url()),
        TOKEN_A,
        &json!({"message": {"toolCallList": [{"id": "x", "function": {"arguments": {"number": "+14155551215"}}}]}}),
    );
    let result = json(json(&body)["results"][0]["result"].as_str().unwrap());
    for field in ["caller_name", "spam_risk", "receipt_id", "message"] {
        assert_clean(field, result[field].as_str().unwrap_or(""));
    }
}

#[test]
fn each_tenant_spends_only_its_own_key_and_wrong_tokens_cost_nothing() {
    let up = Upstream::start("Acme Support");
    let s = serve(
        &up.url(),
        &up.pem(),
        vec![
            tenant("a", TOKEN_A, "upstream-key-a"),
            tenant("b", TOKEN_B, "upstream-key-b"),
        ],
        &[],
    );
    // Wrong and missing tokens: 401, nothing upstream.
    for url in [
        format!(
            "{}/v1/cid?number=%2B14155551212&key=wrong-token-0000000000",
            s.url()
        ),
        format!("{}/v1/cid?number=%2B14155551212", s.url()),
        format!(
            "{}/v1/cid?number=%2B14155551212&key=upstream-key-a",
            s.url()
        ),
        format!(
            "{}/v1/cid?number=%2B14155551212&key={}",
            s.url(),
            &TOKEN_A[..TOKEN_A.len() - 1]
        ),
    ] {
        assert_eq!(get(&url).0, 401, "{url}");
    }
    for path in [
        "/api/v1/inbound/lookup",
        "/retell/inbound",
        "/vapi/tool",
        "/mcp",
        "/api/v1/precall/lookup",
    ] {
        let (status, body) = post(
            &format!("{}{path}", s.url()),
            "wrong-token-0000000000",
            &json!({"number": "+14155551212"}),
        );
        assert_eq!(status, 401, "{path}");
        assert!(!body.contains("upstream-key"));
    }
    assert!(up.keys().is_empty(), "a refused request went upstream");

    for i in 0..3 {
        assert_eq!(
            cid(&s, &format!("+1415555100{i}"), TOKEN_A).1,
            "Acme Support"
        );
    }
    assert_eq!(up.keys(), vec!["upstream-key-a"; 3]);
    for i in 0..2 {
        // The same numbers: tenant b has its own cache, and its own key.
        assert_eq!(
            cid(&s, &format!("+1415555100{i}"), TOKEN_B).1,
            "Acme Support"
        );
    }
    post(
        &format!("{}/api/v1/inbound/lookup", s.url()),
        TOKEN_B,
        &json!({"number": "+14155552000"}),
    );
    let keys = up.keys();
    assert_eq!(&keys[3..], ["upstream-key-b"; 3]);
    let (_, metrics) = get(&format!("{}/metrics", s.url()));
    assert!(
        metrics.contains("nol_lookups_total{tenant=\"a\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("nol_lookups_total{tenant=\"b\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("nol_serve_unauthorized_total 9"),
        "{metrics}"
    );
}

#[test]
fn tenants_against_the_sandbox_get_their_own_tier() {
    let sb = sandbox();
    let s = serve(
        &sb.url(),
        &sb.public_key_pem(),
        vec![
            tenant("std", TOKEN_A, SANDBOX_KEY),
            tenant("free", TOKEN_B, SANDBOX_FREE_KEY),
        ],
        &[],
    );
    let action = |token| {
        json(
            &post(
                &format!("{}/api/v1/inbound/lookup", s.url()),
                token,
                &json!({"number": "+14155550133"}),
            )
            .1,
        )["recommended_action"]
            .clone()
    };
    // The free tier never answers block_candidate: each tenant reached the sandbox with its key.
    assert_eq!(action(TOKEN_A), "block_candidate");
    assert_eq!(action(TOKEN_B), "challenge_or_route");
    let _ = Tier::Free;
    let before = sb.lookups();
    assert_eq!(cid(&s, "+14155551212", "nope-nope-nope-nope-nope").0, 401);
    assert_eq!(sb.lookups(), before);
}

#[test]
fn refuses_bad_configurations_without_showing_secrets() {
    let e = nol_serve::start(ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        settings: vec![("budget_ms".into(), "0".into())],
        tenants: vec![tenant("a", TOKEN_A, "secret-upstream-key")],
        ..ServeConfig::default()
    })
    .err()
    .expect("budget 0 is refused");
    assert!(e.0.contains("budget_ms"), "{e}");
    let e = nol_serve::start(ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        tenants: vec![tenant("a", TOKEN_A, "bad key with spaces")],
        ..ServeConfig::default()
    })
    .err()
    .unwrap();
    assert!(!e.0.contains("bad key"), "{e}");
}
