//! The fail-open client against the sandbox, over real sockets: verified answers, every fault
//! mode failing open with its reason within the budget, the cache, single-flight, the circuit
//! breaker, Retry-After, redirects, bounded concurrency, and the key kept secret.
//!
//! Deadlines are asserted with a generous margin (`MARGIN`): the precise overshoot is a
//! benchmark figure (bench/), not a test.

use std::io::Read;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nol_core::client::{ApiKey, BreakerConfig, Call, Client, ClientConfig, Context, Dnc};
use nol_core::{FailOpen, Outcome, Policy, RecommendedAction, TrustedKeys};
use nol_sandbox::directory::{number_for_fault, INVALID_NUMBER, SUPPRESSED_NUMBER};
use nol_sandbox::{Fault, Sandbox, SandboxConfig, SANDBOX_FREE_KEY, SANDBOX_KEY};

const BUDGET: Duration = Duration::from_millis(300);
const MARGIN: Duration = Duration::from_millis(400);

fn sandbox_with(config: SandboxConfig) -> Sandbox {
    Sandbox::start(config).expect("sandbox starts")
}

fn sandbox() -> Sandbox {
    sandbox_with(SandboxConfig {
        drip_interval: Duration::from_millis(100),
        slow_body_delay: Duration::from_secs(3),
        hang_for: Duration::from_secs(5),
        ..SandboxConfig::default()
    })
}

fn config(sb: &Sandbox) -> ClientConfig {
    ClientConfig {
        api_key: Some(ApiKey::new(SANDBOX_KEY).unwrap()),
        base_url: sb.url(),
        public_keys: TrustedKeys::from_pem(&sb.public_key_pem()).unwrap(),
        budget: BUDGET,
        breaker: None,
        ..ClientConfig::default()
    }
}

fn client(sb: &Sandbox) -> Client {
    Client::new(config(sb)).expect("client")
}

fn timed(client: &Client, call: &Call<'_>) -> (nol_core::Decision, Duration) {
    let start = Instant::now();
    let d = client.lookup(call);
    (d, start.elapsed())
}

#[test]
fn a_verified_answer_for_each_directory_entry() {
    let sb = sandbox();
    let policy = Policy {
        block: true,
        screening_contact: Some("sip:screening@ivr.example.net".into()),
        risk_tag: Some("Risk:".into()),
        risk_threshold: 60,
        ..Policy::default()
    };
    let c = Client::new(ClientConfig {
        policy,
        ..config(&sb)
    })
    .unwrap();
    let cases: &[(&str, &str, Option<&str>, u16)] = &[
        ("+14155551212", "allow", Some("Acme Support"), 503),
        ("+14155550100", "allow", Some("Verified & online"), 503),
        ("+14155550111", "label", Some("Café Zürich — Bäckerei"), 503),
        (
            "+14155550122",
            "challenge_or_route",
            Some("Risk: +14155550122"),
            302,
        ),
        (
            "+14155550133",
            "block_candidate",
            Some("Risk: +14155550133"),
            603,
        ),
        ("+14155559999", "allow_with_default_policy", None, 503),
        (INVALID_NUMBER, "allow_with_default_policy", None, 503),
    ];
    for (number, action, name, sip) in cases {
        let d = c.lookup(&Call::new(number));
        assert_eq!(d.outcome, Outcome::Verified, "{number}");
        assert_eq!(d.action.as_str(), *action, "{number}");
        assert_eq!(d.caller_name.as_deref(), *name, "{number}");
        assert_eq!(d.sip.code, *sip, "{number}");
        assert!(d
            .receipt_id
            .as_deref()
            .is_some_and(|r| r.starts_with("nol_rec_")));
    }
    let no_record = c.lookup(&Call::new("+14155559999"));
    assert_eq!(no_record.risk_score, None);
    assert_eq!(
        no_record.result.as_ref().map(|r| r.as_str()),
        Some("no_record")
    );
}

#[test]
fn the_free_tier_never_blocks() {
    let sb = sandbox();
    let c = Client::new(ClientConfig {
        api_key: Some(ApiKey::new(SANDBOX_FREE_KEY).unwrap()),
        policy: Policy {
            block: true,
            ..Policy::default()
        },
        ..config(&sb)
    })
    .unwrap();
    let d = c.lookup(&Call::new("+14155550133"));
    assert_eq!(d.action, RecommendedAction::ChallengeOrRoute);
    assert_ne!(d.sip.code, 603);
}

#[test]
fn a_failed_verstat_raises_the_risk_and_is_cached_apart() {
    let sb = sandbox();
    let c = client(&sb);
    let passed = c.lookup(&Call {
        verstat: Some("TN-Validation-Passed"),
        ..Call::new("+14155551212")
    });
    let failed = c.lookup(&Call {
        verstat: Some("<sip:+14155551212;verstat=TN-Validation-Failed@sbc>"),
        ..Call::new("+14155551212")
    });
    assert_eq!(passed.outcome, Outcome::Verified);
    assert_eq!(
        failed.outcome,
        Outcome::Verified,
        "a failed verstat must not hit the passed entry"
    );
    assert_eq!(passed.risk_score, Some(8));
    assert_eq!(failed.risk_score, Some(48));
    assert_eq!(failed.action, RecommendedAction::Label);
    assert_eq!(sb.lookups(), 2);
    let again = c.lookup(&Call {
        verstat: Some("TN-Validation-Failed"),
        ..Call::new("tel:+1-415-555-1212")
    });
    assert!(again.from_cache());
    assert_eq!(again.risk_score, Some(48));
}

/// Both designs of the fresh path: the request sent from the calling thread (the default) and
/// handed to a worker.
#[test]
fn every_fault_fails_open_with_its_reason_within_the_budget() {
    for inline_requests in [true, false] {
        every_fault_fails_open(inline_requests);
    }
}

fn every_fault_fails_open(inline_requests: bool) {
    let sb = sandbox();
    let make = || {
        Client::new(ClientConfig {
            inline_requests,
            ..config(&sb)
        })
        .unwrap()
    };
    let c = make();
    let expected = [
        (Fault::Hang, FailOpen::Timeout),
        (Fault::Drip, FailOpen::Timeout),
        (Fault::SlowBody, FailOpen::Timeout),
        (Fault::Reset, FailOpen::Connect),
        (Fault::Close, FailOpen::Connect),
        (Fault::Status500, FailOpen::HttpStatus(500)),
        (Fault::Status503, FailOpen::HttpStatus(503)),
        (Fault::Status429, FailOpen::RateLimited),
        (Fault::Status401, FailOpen::HttpStatus(401)),
        (Fault::NonJson, FailOpen::Unparseable),
        (Fault::Truncated, FailOpen::Connect),
        (Fault::Huge, FailOpen::BodyTooLarge),
        (Fault::WrongTypes, FailOpen::Unusable),
        (Fault::BadSignature, FailOpen::BadSignature),
        (Fault::NoSignature, FailOpen::Unsigned),
        (Fault::Redirect, FailOpen::HttpStatus(302)),
    ];
    assert_eq!(expected.len(), Fault::ALL.len());
    for (fault, reason) in expected {
        // A fresh client each time: a 429 holds the next requests back, by design.
        let c = if fault == Fault::Status429 {
            make()
        } else {
            c.clone()
        };
        let number = number_for_fault(fault);
        let (d, elapsed) = timed(&c, &Call::new(&number));
        assert_eq!(d.fail_open(), Some(&reason), "{fault}");
        assert_eq!(
            d.action,
            RecommendedAction::AllowWithDefaultPolicy,
            "{fault}"
        );
        assert_eq!(d.caller_name, None, "{fault}");
        assert_ne!(d.sip.code, 603, "{fault}");
        assert!(
            elapsed < BUDGET + MARGIN,
            "{fault} (inline {inline_requests}): {elapsed:?}"
        );
    }
}

#[test]
fn a_server_wide_fault_and_a_header_free_client() {
    let sb = sandbox_with(SandboxConfig {
        fault: Some(Fault::Hang),
        hang_for: Duration::from_secs(5),
        ..SandboxConfig::default()
    });
    let c = client(&sb);
    let (d, elapsed) = timed(&c, &Call::new("+14155551212"));
    assert_eq!(d.fail_open(), Some(&FailOpen::Timeout));
    assert!(
        elapsed >= BUDGET && elapsed < BUDGET + MARGIN,
        "{elapsed:?}"
    );
    sb.set_fault(None);
    assert_eq!(
        c.lookup(&Call::new("+14155551212")).outcome,
        Outcome::Verified
    );
}

#[test]
fn cache_hits_expire_with_the_ttl_and_failures_are_never_cached() {
    let sb = sandbox_with(SandboxConfig {
        ttl_override: Some(1),
        ..SandboxConfig::default()
    });
    let c = Client::new(ClientConfig {
        default_country: Some("US".into()),
        ..config(&sb)
    })
    .unwrap();
    assert_eq!(
        c.lookup(&Call::new("+14155551212")).outcome,
        Outcome::Verified
    );
    let hit = c.lookup(&Call::new("(415) 555-1212"));
    assert!(matches!(hit.outcome, Outcome::Cached { age } if age < Duration::from_secs(1)));
    assert_eq!(hit.caller_name.as_deref(), Some("Acme Support"));
    // no_record answers are cached too.
    c.lookup(&Call::new("+14155559999"));
    assert!(c.lookup(&Call::new("+14155559999")).from_cache());
    assert_eq!(sb.lookups(), 2);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        c.lookup(&Call::new("+14155551212")).outcome,
        Outcome::Verified
    );
    assert_eq!(sb.lookups(), 3);
    // Failures: every call asks again.
    let hang = number_for_fault(Fault::Status503);
    for _ in 0..3 {
        assert_eq!(
            c.lookup(&Call::new(&hang)).fail_open(),
            Some(&FailOpen::HttpStatus(503))
        );
    }
    assert_eq!(sb.lookups(), 6);
    let s = c.stats();
    assert_eq!(s.cache_hits, 2);
    assert_eq!(s.fail_open_count("http_status"), 3);
    assert_eq!(s.http_count(503), 3);
}

#[test]
fn a_known_local_contact_wins_even_from_cache() {
    let sb = sandbox();
    let c = client(&sb);
    let call = Call {
        local_contact: Some("Mum"),
        ..Call::new("+14155551212")
    };
    assert_eq!(c.lookup(&call).caller_name.as_deref(), Some("Mum"));
    assert_eq!(c.lookup(&call).caller_name.as_deref(), Some("Mum"));
    assert_eq!(
        c.lookup(&Call::new("+14155551212")).caller_name.as_deref(),
        Some("Acme Support")
    );
}

#[test]
fn sixty_four_threads_asking_for_one_number_cause_one_request() {
    let sb = sandbox_with(SandboxConfig {
        response_delay: Duration::from_millis(150),
        ..SandboxConfig::default()
    });
    let c = Client::new(ClientConfig {
        budget: Duration::from_secs(2),
        ..config(&sb)
    })
    .unwrap();
    let barrier = Arc::new(std::sync::Barrier::new(64));
    let threads: Vec<_> = (0..64)
        .map(|_| {
            let (c, b) = (c.clone(), barrier.clone());
            std::thread::spawn(move || {
                b.wait();
                c.lookup(&Call::new("+14155551212"))
            })
        })
        .collect();
    for t in threads {
        let d = t.join().unwrap();
        assert!(d.verified(), "{:?}", d.outcome);
        assert_eq!(d.caller_name.as_deref(), Some("Acme Support"));
    }
    assert_eq!(sb.lookups(), 1);
    assert!(c.stats().shared_flights >= 1);
}

#[test]
fn the_circuit_breaker_opens_then_lets_one_probe_through() {
    let sb = sandbox_with(SandboxConfig {
        fault: Some(Fault::Status503),
        ..SandboxConfig::default()
    });
    let c = Client::new(ClientConfig {
        breaker: Some(BreakerConfig {
            failures: 3,
            cool_down: Duration::from_millis(500),
        }),
        ..config(&sb)
    })
    .unwrap();
    for i in 0..3 {
        let d = c.lookup(&Call::new(&format!("+1415555900{i}")));
        assert_eq!(d.fail_open(), Some(&FailOpen::HttpStatus(503)));
    }
    let (d, elapsed) = timed(&c, &Call::new("+14155559010"));
    assert_eq!(d.fail_open(), Some(&FailOpen::CircuitOpen));
    assert!(
        elapsed < Duration::from_millis(50),
        "an open circuit answers at once: {elapsed:?}"
    );
    assert_eq!(sb.lookups(), 3, "no request while open");
    assert!(c.stats().circuit_open);
    std::thread::sleep(Duration::from_millis(600));
    sb.set_fault(None);
    assert_eq!(
        c.lookup(&Call::new("+14155551212")).outcome,
        Outcome::Verified,
        "the probe"
    );
    assert!(!c.stats().circuit_open);
    assert_eq!(
        c.lookup(&Call::new("+14155550100")).outcome,
        Outcome::Verified
    );
}

#[test]
fn retry_after_stops_requests_until_it_passes() {
    let sb = sandbox_with(SandboxConfig {
        fault: Some(Fault::Status429),
        ..SandboxConfig::default()
    });
    let c = client(&sb);
    assert_eq!(
        c.lookup(&Call::new("+14155551212")).fail_open(),
        Some(&FailOpen::RateLimited)
    );
    sb.set_fault(None);
    let (d, elapsed) = timed(&c, &Call::new("+14155550100"));
    assert_eq!(d.fail_open(), Some(&FailOpen::RateLimited));
    assert!(elapsed < Duration::from_millis(50));
    assert_eq!(sb.lookups(), 1, "held back by Retry-After: 2");
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(
        c.lookup(&Call::new("+14155550100")).outcome,
        Outcome::Verified
    );
}

#[test]
fn the_free_tiers_limit_and_the_client_side_limit() {
    let sb = sandbox_with(SandboxConfig {
        free_rate_limit: 3,
        ..SandboxConfig::default()
    });
    let c = Client::new(ClientConfig {
        api_key: Some(ApiKey::new(SANDBOX_FREE_KEY).unwrap()),
        cache_size: 0,
        ..config(&sb)
    })
    .unwrap();
    for _ in 0..3 {
        assert!(c.lookup(&Call::new("+14155551212")).verified());
    }
    assert_eq!(
        c.lookup(&Call::new("+14155551212")).fail_open(),
        Some(&FailOpen::RateLimited)
    );
    // The pre-call endpoints are free and not metered: the lookups' 429 does not stop them.
    let p = c.precall("+14155551212", "+14155550100");
    assert_eq!((p.dnc, p.fail_open), (Dnc::NoMatch, None));
    let limited = Client::new(ClientConfig {
        rate_limit_per_minute: Some(2),
        cache_size: 0,
        ..config(&sb)
    })
    .unwrap();
    let before = sb.lookups();
    let reasons: Vec<_> = (0..4)
        .map(|_| {
            limited
                .lookup(&Call::new("+14155551212"))
                .fail_open()
                .cloned()
        })
        .collect();
    assert_eq!(
        reasons,
        vec![
            None,
            None,
            Some(FailOpen::RateLimited),
            Some(FailOpen::RateLimited)
        ]
    );
    assert_eq!(sb.lookups() - before, 2);
    // Nor does the client-side limit, which keeps lookups under the tier.
    assert!(limited.enroll("+14155551212").enrolled);
}

#[test]
fn a_redirect_is_not_followed_and_the_key_goes_nowhere_else() {
    let trap = TcpListener::bind("127.0.0.1:0").unwrap();
    let trap_url = format!("http://{}/steal", trap.local_addr().unwrap());
    trap.set_nonblocking(true).unwrap();
    let sb = sandbox_with(SandboxConfig {
        fault: Some(Fault::Redirect),
        redirect_to: trap_url,
        ..SandboxConfig::default()
    });
    let c = client(&sb);
    let d = c.lookup(&Call::new("+14155551212"));
    assert_eq!(d.fail_open(), Some(&FailOpen::HttpStatus(302)));
    std::thread::sleep(Duration::from_millis(200));
    match trap.accept() {
        Ok((mut s, _)) => {
            let mut got = String::new();
            let _ = s.read_to_string(&mut got);
            panic!("the client followed the redirect: {got}");
        }
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock),
    }
}

#[test]
fn the_key_never_appears_in_debug_output_or_errors() {
    let sb = sandbox();
    let secret = "sk_live_do_not_print_me_7731";
    let c = Client::new(ClientConfig {
        api_key: Some(ApiKey::new(secret).unwrap()),
        ..config(&sb)
    })
    .unwrap();
    let d = c.lookup(&Call::new("+14155551212"));
    assert_eq!(
        d.fail_open(),
        Some(&FailOpen::HttpStatus(401)),
        "the sandbox does not know it"
    );
    let printed = format!("{c:?} {d:?} {:?} {}", c.stats(), d.display_line());
    assert!(!printed.contains(secret), "{printed}");
    let err = Client::new(ClientConfig {
        api_key: Some(ApiKey::new(secret).unwrap()),
        base_url: "http://numbers.online".into(),
        ..config(&sb)
    })
    .unwrap_err();
    assert!(!format!("{err} {err:?}").contains(secret));
}

#[test]
fn many_concurrent_lookups_against_a_hanging_service_all_return_within_budget() {
    // No circuit breaker: the budget alone, counted from each call and including any wait for
    // a worker, must bring every lookup back.
    let sb = sandbox_with(SandboxConfig {
        fault: Some(Fault::Hang),
        hang_for: Duration::from_secs(10),
        ..SandboxConfig::default()
    });
    let c = Client::new(ClientConfig {
        max_in_flight: 8,
        ..config(&sb)
    })
    .unwrap();
    let late = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..300)
        .map(|i| {
            let (c, late) = (c.clone(), late.clone());
            std::thread::spawn(move || {
                let number = format!("+1415556{:04}", i);
                let (d, elapsed) = timed(&c, &Call::new(&number));
                if elapsed >= BUDGET + MARGIN {
                    late.fetch_add(1, Ordering::SeqCst);
                }
                (d.fail_open().cloned(), elapsed)
            })
        })
        .collect();
    let mut busy = 0;
    for t in threads {
        match t.join().unwrap() {
            (Some(FailOpen::Timeout), _) => {}
            (Some(FailOpen::Busy), elapsed) => {
                busy += 1;
                // At once, not after waiting for a worker (a generous bound for a loaded box).
                assert!(elapsed < BUDGET / 3, "busy after {elapsed:?}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(late.load(Ordering::SeqCst), 0);
    assert!(busy > 0, "with 8 workers some lookups find none free");
    let s = c.stats();
    assert!(s.workers_busy <= 8);
    assert!(
        sb.connections() <= 8 + 8,
        "connections stay bounded: {}",
        sb.connections()
    );
}

#[test]
fn connections_are_kept_alive_and_reused() {
    let sb = sandbox();
    let c = Client::new(ClientConfig {
        cache_size: 0,
        ..config(&sb)
    })
    .unwrap();
    for _ in 0..50 {
        assert!(c.lookup(&Call::new("+14155551212")).verified());
    }
    assert_eq!(sb.lookups(), 50);
    assert!(
        sb.connections() <= 2,
        "{} connections for 50 sequential lookups",
        sb.connections()
    );
}

#[test]
fn anonymous_and_invalid_callers_fail_open_without_a_request() {
    let sb = sandbox();
    let c = client(&sb);
    assert_eq!(
        c.lookup(&Call::new("anonymous")).fail_open(),
        Some(&FailOpen::Anonymous)
    );
    assert_eq!(
        c.lookup(&Call::new("sip:restricted@example.net"))
            .fail_open(),
        Some(&FailOpen::Anonymous)
    );
    assert_eq!(
        c.lookup(&Call::new("12")).fail_open(),
        Some(&FailOpen::InvalidNumber)
    );
    assert_eq!(sb.lookups(), 0);
}

#[test]
fn a_connection_refused_fails_open() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let sb = sandbox();
    let c = Client::new(ClientConfig {
        base_url: format!("http://127.0.0.1:{port}"),
        ..config(&sb)
    })
    .unwrap();
    let (d, elapsed) = timed(&c, &Call::new("+14155551212"));
    assert_eq!(d.fail_open(), Some(&FailOpen::Connect));
    assert!(elapsed < BUDGET + MARGIN);
}

#[test]
fn context_to_and_attestation_reach_the_service() {
    let sb = sandbox();
    let c = client(&sb);
    let d = c.lookup(&Call {
        context: Context::InboundSms,
        to: Some("+442071838750"),
        attestation: Some("A"),
        verstat: Some("TN-Validation-Passed"),
        ..Call::new("+14155551212")
    });
    assert!(d.verified());
    assert_eq!(
        d.display_line(),
        "Caller: Acme Support ✓   STIR/SHAKEN: A, verified   numbers.online: verified_business, risk=low"
    );
}

#[test]
fn precall_and_enroll() {
    let sb = sandbox();
    let c = client(&sb);
    let p = c.precall("+14155551212", SUPPRESSED_NUMBER);
    assert_eq!((p.dnc, p.fail_open), (Dnc::Suppress, None));
    assert!(p.receipt_id.is_some());
    assert_eq!(c.precall("+14155551212", "+14155550100").dnc, Dnc::NoMatch);
    assert_eq!(
        c.precall("+14155551212", "nope").fail_open,
        Some(FailOpen::InvalidNumber)
    );
    let e = c.enroll("+14155551212");
    assert!(e.enrolled);
    assert_eq!(e.number.as_deref(), Some("+14155551212"));
    let down = sandbox_with(SandboxConfig {
        fault: Some(Fault::Status503),
        ..SandboxConfig::default()
    });
    let c = client(&down);
    let p = c.precall("+14155551212", "+14155550100");
    assert_eq!(
        (p.dnc, p.fail_open),
        (Dnc::Unknown, Some(FailOpen::HttpStatus(503)))
    );
}

#[test]
fn configuration_errors_are_typed() {
    let sb = sandbox();
    let no_key = ClientConfig {
        api_key: None,
        ..config(&sb)
    };
    // Only when the environment does not supply one.
    if std::env::var(nol_core::client::ENV_API_KEY).is_err() {
        assert_eq!(
            Client::new(no_key).unwrap_err(),
            nol_core::ConfigError::MissingApiKey
        );
    }
    let no_pem = ClientConfig {
        public_keys: TrustedKeys::default(),
        ..config(&sb)
    };
    if std::env::var(nol_core::client::ENV_PUBLIC_KEY).is_err() {
        assert_eq!(
            Client::new(no_pem).unwrap_err(),
            nol_core::ConfigError::MissingPublicKey
        );
    }
    let bad_country = ClientConfig {
        default_country: Some("XX".into()),
        ..config(&sb)
    };
    assert!(matches!(
        Client::new(bad_country).unwrap_err(),
        nol_core::ConfigError::InvalidDefaultCountry(_)
    ));
}

fn async_lookup(
    c: &Client,
    call: &Call<'_>,
) -> std::sync::mpsc::Receiver<(nol_core::Decision, Instant)> {
    let (tx, rx) = std::sync::mpsc::channel();
    c.lookup_async(call, move |d| {
        let _ = tx.send((d, Instant::now()));
    });
    rx
}

#[test]
fn asynchronous_lookups_answer_and_fail_open_on_time() {
    let sb = sandbox();
    let c = client(&sb);
    let (d, _) = async_lookup(&c, &Call::new("+14155551212")).recv().unwrap();
    assert_eq!(d.outcome, Outcome::Verified);
    assert_eq!(d.caller_name.as_deref(), Some("Acme Support"));
    // A cache hit is answered on the calling thread, before lookup_async returns.
    let rx = async_lookup(&c, &Call::new("+14155551212"));
    assert!(rx.try_recv().unwrap().0.from_cache());
    let start = Instant::now();
    let hang = number_for_fault(Fault::Hang);
    let (d, at) = async_lookup(&c, &Call::new(&hang)).recv().unwrap();
    assert_eq!(d.fail_open(), Some(&FailOpen::Timeout));
    let waited = at - start;
    assert!(waited >= BUDGET && waited < BUDGET + MARGIN, "{waited:?}");
    let (d, _) = async_lookup(&c, &Call::new(&number_for_fault(Fault::BadSignature)))
        .recv()
        .unwrap();
    assert_eq!(d.fail_open(), Some(&FailOpen::BadSignature));
    assert_eq!(c.stats().lookups, 4);
}

#[test]
fn a_thousand_asynchronous_lookups_against_a_hanging_service_hold_no_thread_and_end_in_budget() {
    let sb = sandbox_with(SandboxConfig {
        fault: Some(Fault::Hang),
        hang_for: Duration::from_secs(10),
        ..SandboxConfig::default()
    });
    let c = Client::new(ClientConfig {
        max_in_flight: 16,
        ..config(&sb)
    })
    .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let mut issued = Vec::new();
    for i in 0..1000 {
        let number = format!("+1415557{i:04}");
        let called = Instant::now();
        let tx = tx.clone();
        c.lookup_async(&Call::new(&number), move |d| {
            let _ = tx.send((d.fail_open().cloned(), called.elapsed()));
        });
        // The calling thread is never held for the request.
        issued.push(called.elapsed());
    }
    drop(tx);
    assert!(
        issued.iter().all(|d| *d < BUDGET),
        "a lookup_async call blocked"
    );
    let results: Vec<_> = rx.iter().collect();
    assert_eq!(results.len(), 1000, "every callback runs exactly once");
    for (reason, elapsed) in &results {
        assert!(
            matches!(reason, Some(FailOpen::Timeout | FailOpen::Busy)),
            "{reason:?}"
        );
        assert!(*elapsed < BUDGET + MARGIN, "{elapsed:?}");
    }
}

#[test]
fn https_to_something_that_does_not_speak_tls_fails_open_as_tls() {
    // A server that answers every connection in plain text, as a misconfigured proxy would.
    let plain = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = plain.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut s in plain.incoming().flatten() {
            use std::io::Write;
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let sb = sandbox();
    let c = Client::new(ClientConfig {
        base_url: format!("https://{addr}"),
        ..config(&sb)
    })
    .unwrap();
    let (d, elapsed) = timed(&c, &Call::new("+14155551212"));
    assert_eq!(d.fail_open(), Some(&FailOpen::Tls));
    assert!(elapsed < BUDGET + MARGIN);
}

#[test]
fn single_flight_holds_when_the_answer_lands_between_the_cache_miss_and_the_join() {
    // No response delay: answers land while other threads are between their cache miss and
    // the in-flight check, the window where a second request used to slip through.
    let sb = sandbox();
    let c = Client::new(ClientConfig {
        budget: Duration::from_secs(2),
        ..config(&sb)
    })
    .unwrap();
    let rounds = 120;
    for round in 0..rounds {
        let number = format!("+1415558{round:04}");
        let barrier = Arc::new(std::sync::Barrier::new(16));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (c, b, n) = (c.clone(), barrier.clone(), number.clone());
                std::thread::spawn(move || {
                    b.wait();
                    c.lookup(&Call::new(&n)).verified()
                })
            })
            .collect();
        assert!(threads.into_iter().all(|t| t.join().unwrap()));
    }
    assert_eq!(sb.lookups(), rounds, "one request per number");
}

#[test]
fn https_with_a_certificate_no_trusted_root_signed_fails_open_as_tls_before_sending_anything() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    // A self-signed certificate for localhost and 127.0.0.1 (a test fixture, trusted by
    // nobody): a server that speaks TLS perfectly well, but with a certificate no trusted root
    // signed, as a man in the middle would present.
    let cert = CertificateDer::from_pem_slice(include_bytes!("fixtures/self-signed-localhost.crt"))
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(include_bytes!("fixtures/self-signed-localhost.key"))
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(AtomicUsize::new(0));
    let handshakes = Arc::new(AtomicUsize::new(0));
    {
        let (received, handshakes) = (received.clone(), handshakes.clone());
        std::thread::spawn(move || {
            for tcp in listener.incoming().flatten() {
                let conn = rustls::ServerConnection::new(server.clone()).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                handshakes.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                // The client aborts the handshake: no request bytes ever arrive.
                if let Ok(n) = tls.read(&mut buf) {
                    received.fetch_add(n, Ordering::SeqCst);
                }
            }
        });
    }
    let sb = sandbox();
    for host in [
        format!("127.0.0.1:{}", addr.port()),
        format!("localhost:{}", addr.port()),
    ] {
        let c = Client::new(ClientConfig {
            base_url: format!("https://{host}"),
            ..config(&sb)
        })
        .unwrap();
        let (d, elapsed) = timed(&c, &Call::new("+14155551212"));
        assert_eq!(d.fail_open(), Some(&FailOpen::Tls), "{host}");
        assert!(elapsed < BUDGET + MARGIN);
    }
    assert!(
        handshakes.load(Ordering::SeqCst) >= 2,
        "the client did reach the server"
    );
    assert_eq!(
        received.load(Ordering::SeqCst),
        0,
        "no request (and no key) was sent"
    );
}

#[test]
fn a_huge_body_without_a_length_is_abandoned_at_the_cap() {
    // Chunked and close-delimited bodies declare no size: the cap must hold while reading.
    for framing in ["chunked", "close"] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let sent = Arc::new(AtomicUsize::new(0));
        {
            let sent = sent.clone();
            std::thread::spawn(move || {
                use std::io::Write;
                let Some(Ok(mut s)) = listener.incoming().next() else {
                    return;
                };
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let head = if framing == "chunked" {
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                } else {
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
                };
                let _ = s.write_all(head.as_bytes());
                let piece = vec![b' '; 8192];
                // Up to 16 MiB, unless the client hangs up first.
                for _ in 0..2048 {
                    let ok = if framing == "chunked" {
                        s.write_all(format!("{:x}\r\n", piece.len()).as_bytes())
                            .and_then(|_| s.write_all(&piece))
                            .and_then(|_| s.write_all(b"\r\n"))
                    } else {
                        s.write_all(&piece)
                    };
                    if ok.is_err() {
                        return;
                    }
                    sent.fetch_add(piece.len(), Ordering::SeqCst);
                }
            });
        }
        let sb = sandbox();
        let c = Client::new(ClientConfig {
            base_url: format!("http://{addr}"),
            budget: Duration::from_secs(5),
            ..config(&sb)
        })
        .unwrap();
        let start = Instant::now();
        let d = c.lookup(&Call::new("+14155551212"));
        assert_eq!(d.fail_open(), Some(&FailOpen::BodyTooLarge), "{framing}");
        assert!(start.elapsed() < Duration::from_secs(5), "{framing}");
        // The client stopped reading near the cap: the server could not push 16 MiB.
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            sent.load(Ordering::SeqCst) < 8 * 1024 * 1024,
            "{framing}: {} bytes went out",
            sent.load(Ordering::SeqCst)
        );
    }
}

#[test]
fn dropping_a_client_never_waits_for_its_requests_in_flight() {
    // A request in flight keeps what it needs alive; the last one to end frees the rest. So a
    // host freeing its client (a C module's shutdown, a Python object collected) does not wait
    // for a hanging service.
    let sb = sandbox_with(SandboxConfig {
        fault: Some(Fault::Hang),
        ..SandboxConfig::default()
    });
    let c = Client::new(ClientConfig {
        budget: Duration::from_secs(3),
        breaker: None,
        ..config(&sb)
    })
    .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    for i in 0..4 {
        let tx = tx.clone();
        c.lookup_async(&Call::new(&format!("+1415558{i:04}")), move |d| {
            let _ = tx.send(d.fail_open().cloned());
        });
    }
    std::thread::sleep(Duration::from_millis(100)); // the requests are out
    let start = Instant::now();
    drop(c);
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "drop waited {:?}",
        start.elapsed()
    );
    // The lookups still settle, by their deadline.
    for _ in 0..4 {
        let reason = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(reason, Some(FailOpen::Timeout));
    }
}

/// A long lookup (an agent's 10 s) that joins a short one's flight (a switch's 400 ms) of the
/// same number must not inherit its deadline: when that flight times out, it asks again.
#[test]
fn a_longer_lookup_outlives_a_shorter_flight_it_joined() {
    let sb = sandbox_with(SandboxConfig {
        response_delay: Duration::from_millis(700),
        ..SandboxConfig::default()
    });
    let c = Client::new(ClientConfig {
        budget: Duration::from_millis(300),
        ..config(&sb)
    })
    .unwrap();
    let short = {
        let c = c.clone();
        std::thread::spawn(move || c.lookup(&Call::new("+14155551212")))
    };
    std::thread::sleep(Duration::from_millis(50));
    let start = Instant::now();
    let long = c.lookup_within(&Call::new("+14155551212"), Duration::from_secs(5));
    assert_eq!(short.join().unwrap().fail_open(), Some(&FailOpen::Timeout));
    assert!(long.verified(), "{:?}", long.outcome);
    assert!(start.elapsed() < Duration::from_secs(4));

    // The same through the callback interface.
    let d = Arc::new(Mutex::new(None));
    let short = {
        let c = c.clone();
        std::thread::spawn(move || c.lookup(&Call::new("+12125550100")))
    };
    std::thread::sleep(Duration::from_millis(50));
    let (tx, rx) = std::sync::mpsc::channel();
    let out = d.clone();
    c.lookup_async_within(
        &Call::new("+12125550100"),
        Duration::from_secs(5),
        move |decision| {
            *out.lock().unwrap() = Some(decision);
            tx.send(()).unwrap();
        },
    );
    rx.recv_timeout(Duration::from_secs(6)).unwrap();
    assert_eq!(short.join().unwrap().fail_open(), Some(&FailOpen::Timeout));
    let got = d.lock().unwrap().take().unwrap();
    assert!(got.verified(), "{:?}", got.outcome);
}

/// A request sent from the calling thread still holds its place in `max_in_flight`: while one
/// hangs, another caller finds no room and fails open at once, and the place comes back when
/// the first lookup's budget ends.
#[test]
fn a_request_sent_by_its_caller_counts_against_max_in_flight() {
    let sb = sandbox_with(SandboxConfig {
        fault: Some(Fault::Hang),
        hang_for: Duration::from_secs(5),
        ..SandboxConfig::default()
    });
    let c = Client::new(ClientConfig {
        max_in_flight: 1,
        cache_size: 0,
        ..config(&sb)
    })
    .unwrap();
    assert!(config(&sb).inline_requests, "the default design");
    let first = {
        let c = c.clone();
        std::thread::spawn(move || timed(&c, &Call::new("+14155551212")))
    };
    let start = Instant::now();
    while c.stats().workers_busy == 0 {
        assert!(start.elapsed() < MARGIN, "the first request never went out");
        std::thread::sleep(Duration::from_millis(1));
    }
    let (second, elapsed) = timed(&c, &Call::new("+14155550100"));
    assert_eq!(second.fail_open(), Some(&FailOpen::Busy));
    assert!(elapsed < BUDGET / 3, "busy after {elapsed:?}");
    let (first, elapsed) = first.join().unwrap();
    assert_eq!(first.fail_open(), Some(&FailOpen::Timeout));
    assert!(elapsed < BUDGET + MARGIN, "{elapsed:?}");
    assert_eq!(c.stats().workers_busy, 0, "its place is free again");
}

/// A worker is free again before its caller has the answer: back-to-back lookups on one
/// thread never find it busy.
#[test]
fn back_to_back_lookups_never_find_the_worker_busy() {
    let sb = sandbox();
    let c = Client::new(ClientConfig {
        max_in_flight: 1,
        cache_size: 0,
        budget: Duration::from_secs(2),
        ..config(&sb)
    })
    .unwrap();
    let busy = (0..200)
        .filter(|_| c.lookup(&Call::new("+14155551212")).fail_open() == Some(&FailOpen::Busy))
        .count();
    assert_eq!(busy, 0, "{busy} of 200 lookups failed open as busy");
}

/// Every setting is checked when the client is made, however the configuration was built.
#[test]
fn a_client_is_never_made_from_an_out_of_range_setting() {
    let sb = sandbox();
    for bad in [
        ClientConfig {
            budget: Duration::ZERO,
            ..config(&sb)
        },
        ClientConfig {
            max_in_flight: 0,
            ..config(&sb)
        },
        ClientConfig {
            max_in_flight: 1025,
            ..config(&sb)
        },
        ClientConfig {
            base_url: "http://127.0.0.1:99999".into(),
            ..config(&sb)
        },
        ClientConfig {
            policy: Policy {
                route_advance_code: 480,
                ..Policy::default()
            },
            ..config(&sb)
        },
    ] {
        assert!(Client::new(bad).is_err());
    }
    // A huge per-call budget is cut to the longest one, not a panic.
    let d = client(&sb).lookup_within(&Call::new("+14155551212"), Duration::MAX);
    assert!(d.verified());
}

/// Reads one HTTP/1.1 message (head and Content-Length body) from `s`; `None` at the end of
/// the stream.
fn read_message(s: &mut std::net::TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    buf.extend_from_slice(&body);
    Some(buf)
}

/// A proxy in front of the sandbox that answers the first request on each connection and
/// closes the connection, without a word, when a second request arrives on it: what a
/// service or a load balancer closing an idle kept-alive connection does to the request
/// that reuses it at that moment. Returns the proxy's URL and the count of connections.
fn closing_proxy(sb: &Sandbox) -> (String, Arc<AtomicUsize>) {
    use std::io::Write;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let upstream = sb.addr();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { return };
            counted.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut server = std::net::TcpStream::connect(upstream).unwrap();
                let Some(request) = read_message(&mut client) else {
                    return;
                };
                server.write_all(&request).unwrap();
                let answer = read_message(&mut server).unwrap();
                client.write_all(&answer).unwrap();
                // the second request on this connection: closed, unanswered
                let _ = read_message(&mut client);
            });
        }
    });
    (url, connections)
}

#[test]
fn a_kept_alive_connection_closed_under_a_request_is_asked_again_once() {
    let sb = sandbox();
    let (url, connections) = closing_proxy(&sb);
    for inline_requests in [true, false] {
        let before = connections.load(Ordering::SeqCst);
        let c = Client::new(ClientConfig {
            base_url: url.clone(),
            cache_size: 0,
            inline_requests,
            ..config(&sb)
        })
        .unwrap();
        for i in 0..5 {
            let (d, elapsed) = timed(&c, &Call::new("+14155551212"));
            assert!(
                d.verified(),
                "lookup {i} (inline {inline_requests}): {:?}",
                d.fail_open()
            );
            assert!(elapsed < BUDGET + MARGIN);
        }
        // the first lookup's connection, then one more for each lookup after it: each
        // reused connection failed once and its request went out again on a new one
        assert_eq!(connections.load(Ordering::SeqCst) - before, 5);
        assert!(c.stats().fail_open.is_empty(), "{:?}", c.stats().fail_open);
    }
}
