//! The shared cache tier against a real `redis-server` (Debian's), one started by each test on
//! a free loopback port and killed when the test ends, with the sandbox as the service: a hit
//! from another client, TTLs honoured, forged, tampered, unsigned, garbage and replayed entries
//! refused, one request for a cluster of nodes, and a Redis that is stopped, hung (SIGSTOP),
//! refusing, answering garbage or dripping its replies costing no lookup its budget; also a
//! real three-node Redis Cluster, TLS (`rediss://`) with the certificate checked, and the
//! password never printed.
//!
//! `redis-server` is found at `NOL_REDIS_SERVER`, `/usr/bin/redis-server` or on `PATH`; when it
//! is missing the suite tries `apt-get install redis-server` once, then fails saying so.
#![cfg(feature = "redis")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use nol_core::client::{ApiKey, BreakerConfig, Call, Client, ClientConfig};
use nol_core::stir::{Attestation, Stir, Verstat};
use nol_core::{Decision, FailOpen, TrustedKeys};
use nol_sandbox::{Sandbox, SandboxConfig, Tier, SANDBOX_KEY};

const BUDGET: Duration = Duration::from_millis(300);
/// What a lookup may take past its budget in these tests.
const OVER: Duration = Duration::from_millis(50);
const REDIS_BUDGET: Duration = Duration::from_millis(20);
const PASSWORD: &str = "s3cr3t-hunter2-pw";
const SEED: [u8; 32] = [42; 32];

// ---------------------------------------------------------------------------------------------
// A redis-server of the test's own.

fn redis_server_binary() -> &'static str {
    static FOUND: OnceLock<String> = OnceLock::new();
    FOUND.get_or_init(|| {
        let on_path = || {
            std::env::var_os("PATH").and_then(|p| {
                std::env::split_paths(&p)
                    .map(|d| d.join("redis-server"))
                    .find(|f| f.is_file())
            })
        };
        let find = || {
            std::env::var("NOL_REDIS_SERVER")
                .ok()
                .map(std::path::PathBuf::from)
                .filter(|p| p.is_file())
                .or_else(|| {
                    Some(std::path::PathBuf::from("/usr/bin/redis-server")).filter(|p| p.is_file())
                })
                .or_else(on_path)
        };
        if let Some(found) = find() {
            return found.display().to_string();
        }
        eprintln!("redis-server is missing: trying `apt-get install -y redis-server`");
        let apt = |args: &[&str]| {
            let _ = Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdout(Stdio::null())
                .status();
        };
        apt(&["install", "-y", "-qq", "redis-server"]);
        if find().is_none() {
            apt(&["update", "-qq"]);
            apt(&["install", "-y", "-qq", "redis-server"]);
        }
        match find() {
            Some(found) => found.display().to_string(),
            None => panic!(
                "these tests need redis-server: `apt-get install redis-server` (Debian), or set \
                 NOL_REDIS_SERVER to its path"
            ),
        }
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

struct RedisServer {
    child: Option<Child>,
    port: u16,
    extra: Vec<String>,
}

impl RedisServer {
    fn start() -> RedisServer {
        RedisServer::start_with(free_port(), Vec::new())
    }

    fn start_with(port: u16, extra: Vec<String>) -> RedisServer {
        let mut s = RedisServer {
            child: None,
            port,
            extra,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let dir = std::env::temp_dir();
        let child = Command::new(redis_server_binary())
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--requirepass", PASSWORD])
            .args(["--dir", &dir.display().to_string()])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(reply) = self.try_cmd(&[b"PING"]) {
                if reply == Reply::Simple("PONG".into()) {
                    return;
                }
            }
            assert!(Instant::now() < end, "redis-server did not come up");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn url(&self) -> String {
        format!("redis://:{PASSWORD}@127.0.0.1:{}", self.port)
    }

    fn pid(&self) -> String {
        self.child.as_ref().expect("running").id().to_string()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.pid()])
            .status()
            .expect("kill runs")
            .success();
        assert!(ok, "kill {sig}");
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    fn try_cmd(&self, args: &[&[u8]]) -> std::io::Result<Reply> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        let mut out = Vec::new();
        for a in [&[b"AUTH" as &[u8], PASSWORD.as_bytes()][..], args] {
            out.extend_from_slice(format!("*{}\r\n", a.len()).as_bytes());
            for arg in a {
                out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
                out.extend_from_slice(arg);
                out.extend_from_slice(b"\r\n");
            }
        }
        s.write_all(&out)?;
        let mut r = BufReader::new(s);
        let _auth = read_reply(&mut r)?;
        read_reply(&mut r)
    }

    fn cmd(&self, args: &[&[u8]]) -> Reply {
        self.try_cmd(args).expect("redis answers")
    }

    /// Every key under the prefix (not the leases).
    fn entries(&self) -> Vec<String> {
        match self.cmd(&[b"KEYS", b"nol:*"]) {
            Reply::Array(keys) => keys
                .into_iter()
                .filter_map(|k| match k {
                    Reply::Bulk(Some(b)) => String::from_utf8(b).ok(),
                    _ => None,
                })
                .filter(|k| !k.ends_with(":lease"))
                .collect(),
            other => panic!("KEYS: {other:?}"),
        }
    }

    fn entry_for(&self, number: &str) -> String {
        let want = format!("nol:{{{number}}}:");
        wait_for("the entry to be written", || {
            self.entries().iter().any(|k| k.starts_with(&want))
        });
        self.entries()
            .into_iter()
            .find(|k| k.starts_with(&want))
            .expect("the entry")
    }

    fn get(&self, key: &str) -> Option<Vec<u8>> {
        match self.cmd(&[b"GET", key.as_bytes()]) {
            Reply::Bulk(b) => b,
            other => panic!("GET: {other:?}"),
        }
    }

    fn pttl(&self, key: &str) -> i64 {
        match self.cmd(&[b"PTTL", key.as_bytes()]) {
            Reply::Int(n) => n,
            other => panic!("PTTL: {other:?}"),
        }
    }

    fn plant(&self, key: &str, value: &[u8]) {
        let r = self.cmd(&[b"SET", key.as_bytes(), value, b"PX", b"60000"]);
        assert_eq!(r, Reply::Simple("OK".into()));
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A stopped server must be woken to die at once.
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
        }
        self.kill();
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

fn read_reply(r: &mut impl BufRead) -> std::io::Result<Reply> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not RESP");
    let line = line.trim_end();
    let (kind, rest) = line.split_at(line.len().min(1));
    Ok(match kind {
        "+" => Reply::Simple(rest.into()),
        "-" => Reply::Error(rest.into()),
        ":" => Reply::Int(rest.parse().map_err(|_| bad())?),
        "$" => {
            let n: i64 = rest.parse().map_err(|_| bad())?;
            if n < 0 {
                Reply::Bulk(None)
            } else {
                let mut b = vec![0; n as usize + 2];
                r.read_exact(&mut b)?;
                b.truncate(n as usize);
                Reply::Bulk(Some(b))
            }
        }
        "*" => {
            let n: i64 = rest.parse().map_err(|_| bad())?;
            let mut items = Vec::new();
            for _ in 0..n.max(0) {
                items.push(read_reply(r)?);
            }
            Reply::Array(items)
        }
        _ => return Err(bad()),
    })
}

// ---------------------------------------------------------------------------------------------
// The service, the clients, the checks.

fn sandbox_with(config: SandboxConfig) -> Sandbox {
    Sandbox::start(SandboxConfig {
        signing_seed: Some(SEED),
        deterministic_receipts: true,
        ..config
    })
    .expect("sandbox starts")
}

fn sandbox() -> Sandbox {
    sandbox_with(SandboxConfig::default())
}

fn config(sb: &Sandbox, redis_url: &str) -> ClientConfig {
    let mut c = ClientConfig {
        api_key: Some(ApiKey::new(SANDBOX_KEY).unwrap()),
        base_url: sb.url(),
        public_keys: TrustedKeys::from_pem(&sb.public_key_pem()).unwrap(),
        budget: BUDGET,
        breaker: None,
        max_in_flight: 8,
        ..ClientConfig::default()
    };
    c.set("redis_url", redis_url).expect("redis_url");
    c.set("redis_budget_ms", &REDIS_BUDGET.as_millis().to_string())
        .unwrap();
    c
}

/// A client whose pool has a connection (the tier connects in the background).
fn ready(config: ClientConfig) -> Client {
    let c = Client::new(config).expect("client");
    wait_for("a connection to Redis", || {
        c.stats().shared_cache.connections >= 1
    });
    c
}

fn wait_for(what: &str, done: impl Fn() -> bool) {
    let end = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn call(number: &str) -> Call<'_> {
    Call {
        verstat: Some("TN-Validation-Passed"),
        attestation: Some("A"),
        ..Call::new(number)
    }
}

fn timed(c: &Client, number: &str) -> (Decision, Duration) {
    let start = Instant::now();
    let d = c.lookup(&call(number));
    (d, start.elapsed())
}

/// A verified decision, within the budget.
fn verified(c: &Client, number: &str) -> Decision {
    let (d, took) = timed(c, number);
    assert_eq!(d.fail_open(), None, "{number}: {d:?}");
    assert!(d.verified(), "{number}");
    assert!(took <= BUDGET + OVER, "{number}: {took:?}");
    d
}

/// What a decision says about the call (not where it came from).
fn same_answer(a: &Decision, b: &Decision) {
    assert_eq!(a.action, b.action);
    assert_eq!(a.caller_name, b.caller_name);
    assert_eq!(a.risk_score, b.risk_score);
    assert_eq!(a.identity_type, b.identity_type);
    assert_eq!(a.receipt_id, b.receipt_id);
    assert_eq!(a.sip, b.sip);
}

/// A body as the sandbox signs it (its seed is the tests'), for `number` with a passed verstat.
fn genuine_body(number: &str) -> String {
    let stir = Stir {
        verstat: Verstat::Passed,
        attestation: Attestation::A,
    };
    let members = nol_sandbox::directory::response(number, stir, Tier::Standard, "nol_rec_test");
    nol_sandbox::signed_body(members, &SigningKey::from_bytes(&SEED))
}

// ---------------------------------------------------------------------------------------------

#[test]
fn an_answer_one_node_fetched_is_a_hit_for_another() {
    let redis = RedisServer::start();
    let sb = sandbox();
    let a = ready(config(&sb, &redis.url()));
    let b = ready(config(&sb, &redis.url()));
    let first = verified(&a, "+14155551212");
    assert_eq!(sb.lookups(), 1);
    let key = redis.entry_for("+14155551212");
    assert!(
        key.ends_with(":inbound_voice:passed:A"),
        "the key names what was asked: {key}"
    );
    let second = verified(&b, "+14155551212");
    assert_eq!(sb.lookups(), 1, "the other node asked nobody");
    same_answer(&first, &second);
    assert_eq!(second.caller_name.as_deref(), Some("Acme Support"));
    let s = b.stats().shared_cache;
    assert!(s.enabled);
    assert_eq!(
        (s.hits, s.misses, s.refused, s.errors),
        (1, 0, 0, 0),
        "{s:?}"
    );
    assert_eq!(a.stats().shared_cache.writes, 1);
    // The value is the service's exact signed body, sealed.
    let value = redis.get(&key).expect("value");
    assert!(value.starts_with(b"NOL1"));
    let body = String::from_utf8_lossy(&value[44..]).to_string();
    assert!(body.contains("\"response_signature\":\"ed25519:"), "{body}");
    assert!(body.contains("Acme Support"), "{body}");
    // No lease is left behind.
    assert_eq!(redis.pttl(&format!("{key}:lease")), -2);
}

#[test]
fn an_entry_never_outlives_its_ttl() {
    let redis = RedisServer::start();
    let sb = sandbox_with(SandboxConfig {
        ttl_override: Some(2),
        ..SandboxConfig::default()
    });
    let a = ready(config(&sb, &redis.url()));
    let fetched = Instant::now();
    verified(&a, "+14155551212");
    let key = redis.entry_for("+14155551212");
    let pttl = redis.pttl(&key);
    assert!(pttl > 0 && pttl <= 2000, "PTTL {pttl} within the 2 s TTL");
    // Another node reads it late, with a second of it left...
    let b = ready(config(&sb, &redis.url()));
    std::thread::sleep(Duration::from_millis(1200).saturating_sub(fetched.elapsed()));
    let d = verified(&b, "+14155551212");
    assert_eq!(sb.lookups(), 1, "a hit");
    assert_eq!(d.ttl, Some(Duration::from_secs(2)));
    assert!(b.lookup(&call("+14155551212")).from_cache());
    // ... and keeps it no longer than the entry lived.
    std::thread::sleep(Duration::from_millis(2050).saturating_sub(fetched.elapsed()));
    assert_eq!(redis.pttl(&key), -2, "gone from Redis");
    let d = verified(&b, "+14155551212");
    assert!(!d.from_cache(), "not kept past the original expiry");
    assert_eq!(sb.lookups(), 2, "asked the service again");
}

#[test]
fn forged_tampered_unsigned_garbage_and_replayed_entries_are_refused() {
    let redis = RedisServer::start();
    let sb = sandbox();
    let writer = ready(config(&sb, &redis.url()));
    // The honest answers, and their entries.
    let honest = verified(&writer, "+14155551212");
    let key = redis.entry_for("+14155551212");
    let sealed = redis.get(&key).expect("sealed");
    verified(&writer, "+14155550111");
    let other_key = redis.entry_for("+14155550111");
    let sealed_other = redis.get(&other_key).expect("sealed");
    let genuine = genuine_body("+14155551212");
    assert!(genuine.contains("Acme Support"));
    let forged = {
        let stir = Stir {
            verstat: Verstat::Passed,
            attestation: Attestation::A,
        };
        let members =
            nol_sandbox::directory::response("+14155551212", stir, Tier::Standard, "nol_rec_x");
        nol_sandbox::signed_body(members, &SigningKey::from_bytes(&[7; 32]))
    };
    let tampered = genuine.replace("Acme Support", "Your Bank Fraud Dept");
    assert_ne!(tampered, genuine);
    let unsigned = {
        let mut v: serde_json::Value = serde_json::from_str(&genuine).unwrap();
        v.as_object_mut().unwrap().remove("response_signature");
        v.to_string()
    };
    let mut sealed_tampered = sealed.clone();
    let at = sealed_tampered.len() - 3;
    sealed_tampered[at] ^= 0x20;
    let plants: Vec<(&str, Vec<u8>)> = vec![
        (
            "the service's body signed by another key",
            forged.into_bytes(),
        ),
        (
            "a genuine body with its label changed",
            tampered.into_bytes(),
        ),
        ("an unsigned body", unsigned.into_bytes()),
        ("a genuine body, unsealed", genuine.into_bytes()),
        ("garbage", b"\x00\xffnot json at all".to_vec()),
        // Read no further than the longest answer (GETRANGE), then refused: a poisoned Redis
        // cannot make a node hold or hash a huge value. (An empty value reads as no entry.)
        ("a value longer than any answer (a megabyte)", {
            let mut v = sealed.clone();
            v.resize(1 << 20, b' ');
            v
        }),
        (
            "a sealed entry with a byte of its body changed",
            sealed_tampered,
        ),
        ("another number's sealed entry", sealed_other),
    ];
    let reader = ready(ClientConfig {
        cache_size: 0,
        ..config(&sb, &redis.url())
    });
    for (i, (what, value)) in plants.into_iter().enumerate() {
        redis.plant(&key, &value);
        let asked = sb.lookups();
        let d = verified(&reader, "+14155551212");
        same_answer(&honest, &d);
        assert_eq!(
            sb.lookups(),
            asked + 1,
            "{what}: the lookup asked the service"
        );
        let s = reader.stats().shared_cache;
        assert_eq!(s.refused, i as u64 + 1, "{what}: {s:?}");
        assert_eq!(s.hits, 0, "{what}");
        // The honest answer replaces it.
        wait_for("the honest entry", || {
            redis.get(&key).as_deref() != Some(&value[..])
        });
    }
    // And the honest entry is a hit again.
    let d = verified(&reader, "+14155551212");
    same_answer(&honest, &d);
    assert_eq!(reader.stats().shared_cache.hits, 1);
}

#[test]
fn nodes_that_miss_the_same_caller_at_once_send_one_request() {
    const NODES: usize = 8;
    let redis = RedisServer::start();
    let sb = sandbox_with(SandboxConfig {
        response_delay: Duration::from_millis(100),
        ..SandboxConfig::default()
    });
    let nodes: Vec<Client> = (0..NODES)
        .map(|_| ready(config(&sb, &redis.url())))
        .collect();
    let barrier = Arc::new(Barrier::new(NODES));
    let results: Vec<(Decision, Duration)> = std::thread::scope(|s| {
        let running: Vec<_> = nodes
            .iter()
            .map(|c| {
                let barrier = barrier.clone();
                s.spawn(move || {
                    barrier.wait();
                    timed(c, "+14155550122")
                })
            })
            .collect();
        running.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(
        sb.lookups(),
        1,
        "one node asked, the others took its answer"
    );
    for (d, took) in &results {
        assert_eq!(d.fail_open(), None, "{d:?}");
        assert!(d.verified());
        assert!(*took <= BUDGET + OVER, "{took:?}");
        same_answer(&results[0].0, d);
    }
    let waited: u64 = nodes.iter().map(|c| c.stats().shared_cache.waited).sum();
    let hits: u64 = nodes.iter().map(|c| c.stats().shared_cache.hits).sum();
    assert_eq!(
        waited + hits,
        NODES as u64 - 1,
        "waited {waited}, hits {hits}"
    );
    assert!(waited >= 1);
}

/// Lookups of `numbers` while Redis misbehaves: each verified from the service, within budget.
fn lookups_go_on(c: &Client, numbers: &[&str], rounds: usize) -> Duration {
    let mut slowest = Duration::ZERO;
    for _ in 0..rounds {
        for n in numbers {
            let (d, took) = timed(c, n);
            assert_eq!(d.fail_open(), None, "{n}: {d:?}");
            assert!(d.verified());
            assert!(took <= BUDGET + OVER, "{n}: {took:?}");
            slowest = slowest.max(took);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    slowest
}

const NUMBERS: [&str; 4] = [
    "+14155551212",
    "+14155550100",
    "+14155550111",
    "+14155550122",
];

/// Lookups until the tier serves hits again, none of them waiting for a connection.
fn recovers(c: &Client) {
    let end = Instant::now() + Duration::from_secs(10);
    let hits = c.stats().shared_cache.hits;
    while c.stats().shared_cache.hits <= hits {
        assert!(
            Instant::now() < end,
            "the tier never came back: {:?}",
            c.stats()
        );
        let (d, took) = timed(c, "+14155551212");
        assert_eq!(d.fail_open(), None);
        assert!(
            took < REDIS_BUDGET + Duration::from_millis(30),
            "a lookup waited for the reconnect: {took:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!c.stats().shared_cache.breaker_open);
}

#[test]
fn a_hung_redis_costs_no_call_its_budget() {
    let redis = RedisServer::start();
    let sb = sandbox();
    let c = ready(ClientConfig {
        cache_size: 0,
        ..config(&sb, &redis.url())
    });
    lookups_go_on(&c, &NUMBERS, 1);
    redis.signal("-STOP");
    let slowest = lookups_go_on(&c, &NUMBERS, 15);
    assert!(slowest >= REDIS_BUDGET, "some lookup met the hung Redis");
    wait_for("the breaker to open", || {
        c.stats().shared_cache.breaker_opens >= 1
    });
    let s = c.stats().shared_cache;
    assert!(s.errors >= 1 && s.skipped >= 1, "{s:?}");
    // Skipped while open: lookups cost what they cost without Redis.
    let (_, took) = timed(&c, "+14155550100");
    assert!(took < Duration::from_millis(15), "{took:?}");
    redis.signal("-CONT");
    recovers(&c);
}

#[test]
fn a_stopped_and_restarted_redis_costs_no_call_its_budget() {
    let mut redis = RedisServer::start();
    let sb = sandbox();
    let c = ready(ClientConfig {
        cache_size: 0,
        ..config(&sb, &redis.url())
    });
    lookups_go_on(&c, &NUMBERS, 1);
    redis.kill();
    lookups_go_on(&c, &NUMBERS, 20);
    wait_for("the breaker to open", || {
        c.stats().shared_cache.breaker_opens >= 1
    });
    assert!(c.stats().shared_cache.errors >= BREAKER_FAILURES);
    redis.restart();
    recovers(&c);
}

const BREAKER_FAILURES: u64 = 3;

#[test]
fn a_port_that_refuses_costs_no_call_its_budget() {
    let sb = sandbox();
    let url = format!("redis://:{PASSWORD}@127.0.0.1:{}", free_port());
    let c = Client::new(ClientConfig {
        cache_size: 0,
        ..config(&sb, &url)
    })
    .expect("a Redis that is down does not stop the client");
    lookups_go_on(&c, &NUMBERS, 10);
    wait_for("the breaker to open", || {
        c.stats().shared_cache.breaker_opens >= 1
    });
    let s = c.stats().shared_cache;
    assert!(s.errors >= BREAKER_FAILURES && s.hits == 0, "{s:?}");
    assert_eq!(s.connections, 0);
    assert_eq!(sb.lookups(), 40, "every lookup asked the service");
}

/// A TCP server that answers anything with junk.
struct Garbage {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Garbage {
    fn start() -> Garbage {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(60);
            while !s.load(Ordering::SeqCst) && Instant::now() < end {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        let _ = conn.set_nonblocking(false);
                        let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
                        let mut buf = [0u8; 1024];
                        let _ = conn.read(&mut buf);
                        let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n\x00\xff\xfe");
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Garbage {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Garbage {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn a_server_that_answers_garbage_costs_no_call_its_budget() {
    let garbage = Garbage::start();
    let sb = sandbox();
    let url = format!("redis://:{PASSWORD}@127.0.0.1:{}", garbage.port);
    let c = Client::new(ClientConfig {
        cache_size: 0,
        ..config(&sb, &url)
    })
    .unwrap();
    lookups_go_on(&c, &NUMBERS, 10);
    wait_for("the breaker to open", || {
        c.stats().shared_cache.breaker_opens >= 1
    });
    let s = c.stats().shared_cache;
    assert!(s.errors >= BREAKER_FAILURES && s.hits == 0, "{s:?}");
}

/// A proxy in front of a Redis that, once armed, hands its replies on a byte at a time, each
/// byte well within the socket timeout: a reply that never seems to end.
struct Drip {
    port: u16,
    armed: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drip {
    fn start(upstream: u16) -> Drip {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let armed = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, s) = (armed.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(60);
            let mut pipes = Vec::new();
            while !s.load(Ordering::SeqCst) && Instant::now() < end {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                };
                let _ = client.set_nonblocking(false);
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                for (mut from, mut to, drip) in [
                    (
                        client.try_clone().unwrap(),
                        server.try_clone().unwrap(),
                        false,
                    ),
                    (server, client, true),
                ] {
                    let (a, s) = (a.clone(), s.clone());
                    pipes.push(std::thread::spawn(move || {
                        let _ = from.set_read_timeout(Some(Duration::from_millis(50)));
                        let mut buf = [0u8; 4096];
                        while !s.load(Ordering::SeqCst) && Instant::now() < end {
                            let n = match from.read(&mut buf) {
                                Ok(0) => break,
                                Ok(n) => n,
                                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
                                Err(_) => break,
                            };
                            if !(drip && a.load(Ordering::SeqCst)) {
                                if to.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                                continue;
                            }
                            for byte in &buf[..n] {
                                if s.load(Ordering::SeqCst) || to.write_all(&[*byte]).is_err() {
                                    return;
                                }
                                std::thread::sleep(Duration::from_millis(8));
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    }));
                }
            }
            for p in pipes {
                let _ = p.join();
            }
        });
        Drip {
            port,
            armed,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Drip {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn a_redis_that_drips_its_replies_costs_no_call_its_budget() {
    let redis = RedisServer::start();
    let drip = Drip::start(redis.port);
    let sb = sandbox();
    let url = format!("redis://:{PASSWORD}@127.0.0.1:{}", drip.port);
    let writer = ready(config(&sb, &url));
    for n in NUMBERS {
        verified(&writer, n);
        redis.entry_for(n);
    }
    let c = ready(ClientConfig {
        cache_size: 0,
        ..config(&sb, &url)
    });
    // Hits, while the proxy is quick.
    let asked = sb.lookups();
    lookups_go_on(&c, &NUMBERS, 1);
    assert_eq!(sb.lookups(), asked);
    // Each entry's reply now takes seconds to arrive, and no read ever times out.
    drip.armed.store(true, Ordering::SeqCst);
    let slowest = lookups_go_on(&c, &NUMBERS, 10);
    assert!(slowest >= REDIS_BUDGET, "a lookup met the dripping reply");
    assert_eq!(sb.lookups(), asked + 40, "each asked the service instead");
    let end = Instant::now() + Duration::from_secs(10);
    while c.stats().shared_cache.breaker_opens == 0 {
        assert!(
            Instant::now() < end,
            "the breaker never opened: {:?}",
            c.stats()
        );
        lookups_go_on(&c, &NUMBERS, 1);
    }
    assert!(c.stats().shared_cache.errors >= BREAKER_FAILURES);
}

#[test]
fn the_password_is_never_printed() {
    let redis = RedisServer::start();
    let sb = sandbox();
    let mut cfg = config(&sb, &redis.url());
    let printed = format!("{cfg:?}");
    assert!(!printed.contains(PASSWORD), "{printed}");
    assert!(printed.contains("<redacted>"), "{printed}");
    cfg.set(
        "redis_url",
        &format!("redis://default:{PASSWORD}@127.0.0.1:{}/0", redis.port),
    )
    .unwrap();
    let c = ready(cfg.clone());
    verified(&c, "+14155551212");
    let printed = format!("{cfg:?} {c:?} {:?}", c.stats());
    assert!(!printed.contains(PASSWORD), "{printed}");
    // Refused URLs: the reason, never the URL.
    for bad in [
        format!("redis://:{PASSWORD}@127.0.0.1:99999"),
        format!("redis://:{PASSWORD}@127.0.0.1:6379?timeout=1"),
        format!("redis://:{PASSWORD}@127.0.0.1:6379#insecure"),
        format!("redis+sentinel://:{PASSWORD}@127.0.0.1:26379/mymaster"),
        format!("http://:{PASSWORD}@127.0.0.1:6379"),
        format!("redis://:{PASSWORD}@127.0.0.1:6379/notadb"),
        format!("redis://:{PASSWORD}@127.0.0.1:7000,rediss://:{PASSWORD}@127.0.0.1:7001"),
        format!("redis://:{PASSWORD}@127.0.0.1:7000/1,redis://:{PASSWORD}@127.0.0.1:7001/1"),
        format!("redis://:{PASSWORD}@host name:6379"),
        format!("redis://:{PASSWORD}@"),
    ] {
        let mut c = ClientConfig::default();
        let e = c.set("redis_url", &bad).unwrap_err();
        assert!(!e.to_string().contains(PASSWORD), "{e}");
        assert!(!format!("{e:?}").contains(PASSWORD), "{e:?}");
        assert!(e.to_string().starts_with("redis_url: "), "{e}");
    }
    // A wrong password: the tier never connects, and says nothing of the password either.
    let wrong = ready_or_not(config(
        &sb,
        &format!("redis://:wrong-{PASSWORD}@127.0.0.1:{}", redis.port),
    ));
    verified(&wrong, "+14155550100");
    assert!(!format!("{wrong:?} {:?}", wrong.stats()).contains(PASSWORD));
}

fn ready_or_not(config: ClientConfig) -> Client {
    Client::new(config).expect("client")
}

#[test]
fn the_nodes_of_a_redis_cluster_share_answers() {
    let dir = std::env::temp_dir().join(format!("nol-redis-cluster-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let nodes: Vec<RedisServer> = (0..3)
        .map(|_| {
            let port = free_port();
            RedisServer::start_with(
                port,
                vec![
                    "--cluster-enabled".into(),
                    "yes".into(),
                    "--cluster-config-file".into(),
                    dir.join(format!("nodes-{port}.conf")).display().to_string(),
                    "--masterauth".into(),
                    PASSWORD.into(),
                ],
            )
        })
        .collect();
    // Slots split across the three, as `redis-cli --cluster create` would.
    let ranges = [(0, 5460), (5461, 10922), (10923, 16383)];
    for (node, (from, to)) in nodes.iter().zip(ranges) {
        let (from, to) = (from.to_string(), to.to_string());
        let r = node.cmd(&[b"CLUSTER", b"ADDSLOTSRANGE", from.as_bytes(), to.as_bytes()]);
        assert_eq!(r, Reply::Simple("OK".into()));
    }
    for node in &nodes[1..] {
        let port = nodes[0].port.to_string();
        let r = node.cmd(&[b"CLUSTER", b"MEET", b"127.0.0.1", port.as_bytes()]);
        assert_eq!(r, Reply::Simple("OK".into()));
    }
    wait_for("the cluster to form", || {
        nodes.iter().all(|n| match n.cmd(&[b"CLUSTER", b"INFO"]) {
            Reply::Bulk(Some(info)) => String::from_utf8_lossy(&info).contains("cluster_state:ok"),
            _ => false,
        })
    });
    let urls: Vec<String> = nodes.iter().map(RedisServer::url).collect();
    let url = urls.join(",");
    let sb = sandbox();
    let a = ready(config(&sb, &url));
    let b = ready(config(&sb, &url));
    let mut asked = 0;
    for n in NUMBERS {
        let first = verified(&a, n);
        asked += 1;
        assert_eq!(sb.lookups(), asked);
        wait_for("the write", || a.stats().shared_cache.writes >= asked);
        let second = verified(&b, n);
        assert_eq!(sb.lookups(), asked, "{n}: a hit from the cluster");
        same_answer(&first, &second);
    }
    let s = b.stats().shared_cache;
    assert_eq!((s.hits, s.errors, s.refused), (4, 0, 0), "{s:?}");
    drop(nodes);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A CA and a certificate for 127.0.0.1 it signed, made with the openssl command: the CA's
/// path, and the server's certificate and key.
fn tls_files(dir: &std::path::Path) -> (String, String, String) {
    let path = |f: &str| dir.join(f).display().to_string();
    let openssl = |args: &[&str]| {
        let ok = Command::new("openssl")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("the openssl command")
            .success();
        assert!(ok, "openssl {args:?}");
    };
    std::fs::write(path("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=nol test CA",
        "-keyout",
        &path("ca.key"),
        "-out",
        &path("ca.crt"),
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        &path("server.key"),
        "-out",
        &path("server.csr"),
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        &path("server.csr"),
        "-CA",
        &path("ca.crt"),
        "-CAkey",
        &path("ca.key"),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &path("ext.cnf"),
        "-out",
        &path("server.crt"),
    ]);
    (path("ca.crt"), path("server.crt"), path("server.key"))
}

/// `rediss://`: TLS through rustls, the server's certificate checked against the system's
/// trust store (here `SSL_CERT_FILE`, set for a child process that runs
/// `over_tls_in_a_child`): a client that trusts the CA shares answers; one that does not never
/// connects, and its lookups still go to the service within their budget.
#[test]
fn over_tls_the_certificate_is_checked() {
    let dir = std::env::temp_dir().join(format!("nol-redis-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ca, cert, key) = tls_files(&dir);
    let port = free_port();
    let plain = free_port();
    let redis = RedisServer::start_with(
        plain,
        vec![
            "--tls-port".into(),
            port.to_string(),
            "--tls-cert-file".into(),
            cert,
            "--tls-key-file".into(),
            key,
            "--tls-ca-cert-file".into(),
            ca.clone(),
            "--tls-auth-clients".into(),
            "no".into(),
        ],
    );
    let url = format!("rediss://:{PASSWORD}@127.0.0.1:{port}");
    // Without the CA: refused by the certificate check.
    let sb = sandbox();
    let untrusting = Client::new(ClientConfig {
        cache_size: 0,
        ..config(&sb, &url)
    })
    .unwrap();
    lookups_go_on(&untrusting, &NUMBERS, 3);
    wait_for("a failed connect", || {
        untrusting.stats().shared_cache.errors >= 1
    });
    assert_eq!(untrusting.stats().shared_cache.connections, 0);
    assert_eq!(untrusting.stats().shared_cache.hits, 0);
    // With it, in a process whose trust store holds the CA.
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "over_tls_in_a_child", "--ignored", "--nocapture"])
        .env("SSL_CERT_FILE", &ca)
        .env("NOL_TEST_REDISS_URL", &url)
        .output()
        .expect("the child runs");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "{text}");
    drop(redis);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "run by over_tls_the_certificate_is_checked, with SSL_CERT_FILE set"]
fn over_tls_in_a_child() {
    let url = std::env::var("NOL_TEST_REDISS_URL").expect("run by the TLS test");
    let sb = sandbox();
    let a = ready(config(&sb, &url));
    let b = ready(config(&sb, &url));
    let first = verified(&a, "+14155551212");
    wait_for("the write", || a.stats().shared_cache.writes >= 1);
    let second = verified(&b, "+14155551212");
    assert_eq!(sb.lookups(), 1, "a hit over TLS");
    same_answer(&first, &second);
}

/// The cost of a lookup that is a Redis hit (no local cache): run with
/// `cargo test -p nol-core --features redis --release --test redis -- --ignored --nocapture`.
/// It prints figures and asserts nothing about them (benchmarks are not tests).
#[test]
#[ignore]
fn redis_hit_latency() {
    let redis = RedisServer::start();
    let sb = sandbox();
    let writer = ready(config(&sb, &redis.url()));
    for n in NUMBERS {
        verified(&writer, n);
        redis.entry_for(n);
    }
    let reader = ready(ClientConfig {
        cache_size: 0,
        ..config(&sb, &redis.url())
    });
    let asked = sb.lookups();
    let mut times = Vec::new();
    for i in 0..20_000 {
        let (d, took) = timed(&reader, NUMBERS[i % NUMBERS.len()]);
        assert_eq!(d.fail_open(), None);
        if i >= 1000 {
            times.push(took);
        }
    }
    assert_eq!(sb.lookups(), asked, "every lookup was a Redis hit");
    times.sort();
    let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    println!(
        "redis hit: n={} p50={:?} p90={:?} p99={:?} p99.9={:?} max={:?}",
        times.len(),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(0.999),
        times[times.len() - 1]
    );
}

/// The service's guard stops requests to the service, not reads of answers another node paid
/// for: with the service gone and this node's breaker open, a caller already in Redis is still
/// answered (verified), and a Redis hit never counts as a service success.
#[test]
fn an_open_breaker_still_reads_the_shared_tier() {
    let redis = RedisServer::start();
    let sb = sandbox();
    let a = ready(config(&sb, &redis.url()));
    verified(&a, "+14155551212");
    wait_for("the entry in Redis", || a.stats().shared_cache.writes == 1);
    // Node b points at a service that refuses connections, with a breaker of one failure.
    let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gone_url = format!("http://{}", gone.local_addr().unwrap());
    drop(gone);
    let mut cb = config(&sb, &redis.url());
    cb.base_url = gone_url;
    cb.breaker = Some(BreakerConfig {
        failures: 1,
        cool_down: Duration::from_secs(60),
    });
    let b = ready(cb);
    let (miss, _) = timed(&b, "+14155550100");
    assert_eq!(miss.fail_open(), Some(&FailOpen::Connect));
    assert!(b.stats().circuit_open, "one failure opens b's breaker");
    let hit = verified(&b, "+14155551212");
    assert_eq!(hit.caller_name.as_deref(), Some("Acme Support"));
    assert!(
        b.stats().circuit_open,
        "a Redis hit is not a service success"
    );
    let (other, _) = timed(&b, "+14155550111");
    assert_eq!(other.fail_open(), Some(&FailOpen::CircuitOpen));
    assert_eq!(sb.lookups(), 1);
}

#[test]
fn with_the_warm_up_a_new_client_reads_the_tier_from_its_first_lookup() {
    let redis = RedisServer::start();
    let sb = sandbox();
    let a = ready(config(&sb, &redis.url()));
    let first = verified(&a, "+14155551212");
    wait_for("the first node's write", || {
        a.stats().shared_cache.writes == 1
    });
    // A process per call (`nol agi`): made, one lookup, gone. Without the warm-up its lookup
    // would skip the tier until the background connect finished. Redis sits behind a proxy
    // that takes 40 ms to connect each client (well within the tier's 100 ms connect timeout),
    // longer than the service's warm-up: only a wait for the tier connects it by the end of
    // new().
    let slow = slow_connect_proxy(redis.port, Duration::from_millis(40));
    let mut warm = config(&sb, &format!("redis://:{PASSWORD}@127.0.0.1:{slow}"));
    warm.set("warm_up_ms", "2000").unwrap();
    let b = Client::new(warm).expect("client");
    assert!(
        b.stats().shared_cache.connections >= 1,
        "connected before new() returned"
    );
    let second = verified(&b, "+14155551212");
    assert_eq!(sb.lookups(), 1, "the new client asked nobody");
    same_answer(&first, &second);
    assert_eq!(b.stats().shared_cache.hits, 1);
}

#[test]
fn a_redis_that_refuses_costs_client_creation_at_most_the_warm_up() {
    let sb = sandbox();
    let port = free_port(); // nothing listens there
    let mut warm = config(&sb, &format!("redis://127.0.0.1:{port}"));
    warm.set("warm_up_ms", "300").unwrap();
    let start = Instant::now();
    let c = Client::new(warm).expect("client");
    let took = start.elapsed();
    assert!(took < Duration::from_millis(300) + OVER * 4, "{took:?}");
    assert_eq!(c.stats().shared_cache.connections, 0);
    // and the lookup goes on without the tier
    verified(&c, "+14155551212");
}

/// A TCP proxy to 127.0.0.1:`to` that waits `delay` before it connects each accepted client
/// (a far or busy Redis); returns its port.
fn slow_connect_proxy(to: u16, delay: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                let Ok(server) = TcpStream::connect(("127.0.0.1", to)) else {
                    return;
                };
                let (mut c_in, mut s_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_in, &mut s_out);
                });
                let (mut s_in, mut c_out) = (server, client);
                let _ = std::io::copy(&mut s_in, &mut c_out);
            });
        }
    });
    port
}
