//! The C ABI driven from Rust, as `cargo test` runs it everywhere (the full C suite is
//! tests/c, run by scripts/test-c.sh): a lookup through the exported functions against the
//! in-process sandbox, a fail-open through them, and the NULL checks.

use std::ffi::{c_char, CStr, CString};
use std::ptr;

use nol::client::{nol_client_free, nol_client_new, nol_lookup};
use nol::config::{
    nol_config_free, nol_config_new, nol_config_set_api_key, nol_config_set_base_url,
    nol_config_set_budget_ms, nol_config_set_public_key_pem,
};
use nol::pure::nol_string_free;
use nol::result::{
    nol_result_action, nol_result_caller_name, nol_result_fail_open_reason, nol_result_free,
    nol_result_outcome,
};
use nol::{nol_action, nol_call, nol_client, nol_outcome, nol_result, nol_status};
use nol_sandbox::{Sandbox, SandboxConfig};

fn client(sandbox: &Sandbox, budget_ms: u32) -> *mut nol_client {
    let url = CString::new(sandbox.url()).unwrap();
    let pem = CString::new(sandbox.public_key_pem()).unwrap();
    unsafe {
        let mut config = ptr::null_mut();
        assert_eq!(nol_config_new(&mut config), nol_status::Ok);
        assert_eq!(
            nol_config_set_api_key(config, c"nol_sandbox_standard_key".as_ptr()),
            nol_status::Ok
        );
        assert_eq!(
            nol_config_set_base_url(config, url.as_ptr()),
            nol_status::Ok
        );
        assert_eq!(
            nol_config_set_public_key_pem(config, pem.as_ptr()),
            nol_status::Ok
        );
        assert_eq!(nol_config_set_budget_ms(config, budget_ms), nol_status::Ok);
        let mut client = ptr::null_mut();
        assert_eq!(nol_client_new(config, &mut client), nol_status::Ok);
        nol_config_free(config);
        client
    }
}

fn lookup(client: *const nol_client, number: &CStr) -> *mut nol_result {
    let call = nol_call {
        number: number.as_ptr(),
        context: ptr::null(),
        to: ptr::null(),
        verstat: ptr::null(),
        attestation: ptr::null(),
        local_contact: ptr::null(),
    };
    let mut out = ptr::null_mut();
    assert_eq!(
        unsafe { nol_lookup(client, &call, &mut out) },
        nol_status::Ok
    );
    assert!(!out.is_null());
    out
}

fn take(s: *mut c_char) -> Option<String> {
    if s.is_null() {
        return None;
    }
    let text = unsafe { CStr::from_ptr(s) }.to_str().unwrap().to_string();
    unsafe { nol_string_free(s) };
    Some(text)
}

fn string(
    r: *const nol_result,
    f: unsafe extern "C" fn(*const nol_result, *mut *mut c_char) -> nol_status,
) -> Option<String> {
    let mut s = ptr::null_mut();
    assert_eq!(unsafe { f(r, &mut s) }, nol_status::Ok);
    take(s)
}

#[test]
fn a_verified_lookup_then_a_cached_one() {
    let sandbox = Sandbox::start(SandboxConfig::default()).unwrap();
    let client = client(&sandbox, 5000);
    for want in [nol_outcome::Verified, nol_outcome::Cached] {
        let r = lookup(client, c"+14155551212");
        let mut action = nol_action::Other;
        let mut outcome = nol_outcome::FailOpen;
        unsafe {
            assert_eq!(nol_result_action(r, &mut action), nol_status::Ok);
            assert_eq!(nol_result_outcome(r, &mut outcome), nol_status::Ok);
        }
        assert_eq!(action, nol_action::Allow);
        assert_eq!(outcome, want);
        assert_eq!(
            string(r, nol_result_caller_name).as_deref(),
            Some("Acme Support")
        );
        assert_eq!(string(r, nol_result_fail_open_reason), None);
        unsafe { nol_result_free(r) };
    }
    unsafe { nol_client_free(client) };
}

#[test]
fn a_bad_signature_fails_open_with_ok() {
    let sandbox = Sandbox::start(SandboxConfig::default()).unwrap();
    let client = client(&sandbox, 5000);
    let r = lookup(client, c"+14155550914");
    let mut action = nol_action::Other;
    assert_eq!(unsafe { nol_result_action(r, &mut action) }, nol_status::Ok);
    assert_eq!(action, nol_action::AllowWithDefaultPolicy);
    assert_eq!(
        string(r, nol_result_fail_open_reason).as_deref(),
        Some("bad_signature")
    );
    unsafe {
        nol_result_free(r);
        nol_client_free(client);
    }
}

#[test]
fn null_arguments_are_a_status_and_leave_outputs_alone() {
    let sandbox = Sandbox::start(SandboxConfig::default()).unwrap();
    let client = client(&sandbox, 5000);
    let sentinel = ptr::dangling_mut::<nol_result>();
    let mut out = sentinel;
    let call = nol_call {
        number: ptr::null(),
        context: ptr::null(),
        to: ptr::null(),
        verstat: ptr::null(),
        attestation: ptr::null(),
        local_contact: ptr::null(),
    };
    unsafe {
        assert_eq!(
            nol_lookup(client, &call, &mut out),
            nol_status::NullArgument
        );
        assert_eq!(
            nol_lookup(ptr::null(), &call, &mut out),
            nol_status::NullArgument
        );
        assert_eq!(
            nol_lookup(client, ptr::null(), &mut out),
            nol_status::NullArgument
        );
        let msg = CStr::from_ptr(nol::error::nol_last_error())
            .to_str()
            .unwrap();
        assert!(msg.contains("call"), "{msg}");
        assert_eq!(out, sentinel);
        nol_result_free(ptr::null_mut());
        nol_client_free(client);
    }
}

#[test]
fn every_numeric_setting_goes_through_the_core_ranges() {
    use nol::config::nol_config_set;
    use nol_core::settings::{Range, SETTINGS};
    unsafe {
        let mut config = ptr::null_mut();
        assert_eq!(nol_config_new(&mut config), nol_status::Ok);
        let set = |name: &str, value: &str| {
            let name = CString::new(name).unwrap();
            let value = CString::new(value).unwrap();
            nol_config_set(config, name.as_ptr(), value.as_ptr())
        };
        for s in SETTINGS {
            match s.range {
                Range::Int { min, max } => {
                    assert_eq!(set(s.name, &min.to_string()), nol_status::Ok, "{}", s.name);
                    assert_eq!(set(s.name, &max.to_string()), nol_status::Ok, "{}", s.name);
                    let over = (max + 1).to_string();
                    assert_eq!(
                        set(s.name, &over),
                        nol_status::InvalidArgument,
                        "{}",
                        s.name
                    );
                    if min > 0 {
                        let under = (min - 1).to_string();
                        assert_eq!(set(s.name, &under), nol_status::InvalidArgument);
                    }
                }
                Range::OneOf(values) => {
                    for v in values {
                        assert_eq!(set(s.name, &v.to_string()), nol_status::Ok);
                    }
                    assert_eq!(set(s.name, "480"), nol_status::InvalidArgument);
                }
                Range::Flag => {
                    assert_eq!(set(s.name, "on"), nol_status::Ok, "{}", s.name);
                    assert_eq!(set(s.name, "maybe"), nol_status::InvalidArgument);
                }
                Range::Text => {}
            }
        }
        assert_eq!(set("no_such_setting", "1"), nol_status::UnknownSetting);
        assert_eq!(
            nol_config_set(config, c"no_such_setting".as_ptr(), ptr::null()),
            nol_status::UnknownSetting
        );
        assert_eq!(
            nol_config_set(config, c"budget_ms".as_ptr(), ptr::null()),
            nol_status::NullArgument
        );
        assert_eq!(set("screening_contact", ""), nol_status::InvalidArgument);
        assert_eq!(
            nol_config_set(config, c"screening_contact".as_ptr(), ptr::null()),
            nol_status::Ok
        );
        assert_eq!(set("default_country", ""), nol_status::UnknownCountry);
        assert_eq!(set("default_country", "US"), nol_status::Ok);
        assert_eq!(
            nol::config::nol_config_set_default_country(config, c"".as_ptr()),
            nol_status::UnknownCountry
        );
        assert_eq!(
            nol::config::nol_config_set_default_country(config, ptr::null()),
            nol_status::Ok
        );
        assert_eq!(
            nol_config_set_api_key(config, c"cl\xc3\xa9".as_ptr()),
            nol_status::InvalidApiKey
        );
        assert_eq!(
            nol::config::nol_config_set_rate_limit_per_minute(config, 1_000_001),
            nol_status::InvalidArgument
        );
        assert_eq!(
            nol::config::nol_config_set_breaker_failures(config, 0),
            nol_status::InvalidArgument
        );
        assert_eq!(
            nol::config::nol_config_set_circuit_breaker(config, false),
            nol_status::Ok
        );
        assert_eq!(
            nol_config_set_budget_ms(config, 60_001),
            nol_status::InvalidArgument
        );
        let msg = CStr::from_ptr(nol::error::nol_last_error())
            .to_str()
            .unwrap();
        assert!(msg.contains("budget_ms"), "{msg}");
        nol_config_free(config);
    }
}

#[test]
fn the_json_view_is_borrowed_from_the_result() {
    let sandbox = Sandbox::start(SandboxConfig::default()).unwrap();
    let client = client(&sandbox, 5000);
    let r = lookup(client, c"+14155550914");
    unsafe {
        let mut json: *const c_char = ptr::null();
        assert_eq!(nol::result::nol_result_json(r, &mut json), nol_status::Ok);
        let text = CStr::from_ptr(json).to_str().unwrap().to_string();
        let mut again: *const c_char = ptr::null();
        assert_eq!(nol::result::nol_result_json(r, &mut again), nol_status::Ok);
        assert_eq!(json, again);
        assert!(text.starts_with('{') && text.contains("allow_with_default_policy"));
        nol_result_free(r);
        nol_client_free(client);
    }
}

#[test]
fn the_header_block_is_borrowed_and_lists_every_header() {
    let sandbox = Sandbox::start(SandboxConfig::default()).unwrap();
    let client = client(&sandbox, 5000);
    let r = lookup(client, c"+14155551212");
    unsafe {
        let mut block: *const c_char = ptr::null();
        assert_eq!(
            nol::result::nol_result_header_block(r, &mut block),
            nol_status::Ok
        );
        let text = CStr::from_ptr(block).to_str().unwrap().to_string();
        let mut again: *const c_char = ptr::null();
        assert_eq!(
            nol::result::nol_result_header_block(r, &mut again),
            nol_status::Ok
        );
        assert_eq!(block, again);
        assert!(
            text.starts_with("X-NumbersOnline-Action: allow\r\n"),
            "{text}"
        );
        assert!(text.contains("X-NumbersOnline-Receipt: nol_rec_"), "{text}");
        assert!(text.ends_with("\r\n"));
        let mut n = 0usize;
        assert_eq!(
            nol::result::nol_result_asterisk_variable_count(r, &mut n),
            nol_status::Ok
        );
        assert_eq!(n, 8);
        let (mut name, mut value) = (ptr::null_mut(), ptr::null_mut());
        assert_eq!(
            nol::result::nol_result_asterisk_variable(r, 4, &mut name, &mut value),
            nol_status::Ok
        );
        assert_eq!(CStr::from_ptr(name).to_str().unwrap(), "NOL_VERIFIED");
        assert_eq!(CStr::from_ptr(value).to_str().unwrap(), "1");
        nol::pure::nol_string_free(name);
        nol::pure::nol_string_free(value);
        assert_eq!(
            nol::result::nol_result_asterisk_variable(r, 8, &mut name, &mut value),
            nol_status::OutOfRange
        );
        assert_eq!(
            nol::result::nol_result_header_block(ptr::null(), &mut again),
            nol_status::NullArgument
        );
        nol_result_free(r);
        nol_client_free(client);
    }
}

#[test]
fn precall_and_enroll_through_the_abi() {
    use nol::precall::*;
    let sandbox = Sandbox::start(SandboxConfig::default()).unwrap();
    let client = client(&sandbox, 5000);
    unsafe {
        let mut p = ptr::null_mut();
        assert_eq!(
            nol_precall(
                client,
                c"+14155551212".as_ptr(),
                c"+14155550199".as_ptr(),
                &mut p
            ),
            nol_status::Ok
        );
        let mut s = ptr::null_mut();
        assert_eq!(nol_precall_result_dnc(p, &mut s), nol_status::Ok);
        assert_eq!(take(s).as_deref(), Some("SUPPRESS"));
        assert_eq!(nol_precall_result_receipt_id(p, &mut s), nol_status::Ok);
        assert!(take(s).is_some());
        assert_eq!(
            nol_precall_result_fail_open_reason(p, &mut s),
            nol_status::Ok
        );
        assert_eq!(take(s), None);
        nol_precall_result_free(p);

        let mut e = ptr::null_mut();
        assert_eq!(
            nol_enroll(client, c"+14155551212".as_ptr(), &mut e),
            nol_status::Ok
        );
        let mut enrolled = false;
        assert_eq!(nol_enroll_result_enrolled(e, &mut enrolled), nol_status::Ok);
        assert!(enrolled);
        nol_enroll_result_free(e);

        let mut e = ptr::null_mut();
        assert_eq!(nol_enroll(client, c"nope".as_ptr(), &mut e), nol_status::Ok);
        assert_eq!(
            nol_enroll_result_fail_open_reason(e, &mut s),
            nol_status::Ok
        );
        assert_eq!(take(s).as_deref(), Some("invalid_number"));
        nol_enroll_result_free(e);
        nol_client_free(client);
    }
}

// ---- the non-blocking lookup ------------------------------------------------------------------

use nol::nonblocking::{nol_client_event_fd, nol_client_next, nol_lookup_start};
use std::time::{Duration, Instant};

fn call_of(number: &CStr) -> nol_call {
    nol_call {
        number: number.as_ptr(),
        context: ptr::null(),
        to: ptr::null(),
        verstat: ptr::null(),
        attestation: ptr::null(),
        local_contact: ptr::null(),
    }
}

fn event_fd(client: *const nol_client) -> i32 {
    let mut fd = -1;
    assert_eq!(
        unsafe { nol_client_event_fd(client, &mut fd) },
        nol_status::Ok
    );
    assert!(fd >= 0);
    fd
}

fn readable(fd: i32, timeout_ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    (unsafe { libc::poll(&mut p, 1, timeout_ms) }) == 1
}

/// Waits for the next decision (up to `timeout`), as an event loop would.
fn next(client: *const nol_client, timeout: Duration) -> Option<(u64, *mut nol_result)> {
    let fd = event_fd(client);
    let until = Instant::now() + timeout;
    loop {
        let mut data = 0u64;
        let mut r = ptr::null_mut();
        match unsafe { nol_client_next(client, &mut data, &mut r) } {
            nol_status::Ok => return Some((data, r)),
            nol_status::WouldBlock => {}
            other => panic!("nol_client_next: {other:?}"),
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        readable(fd, left.as_millis().max(1) as i32);
    }
}

fn json_of(r: *const nol_result) -> String {
    let mut json: *const c_char = ptr::null();
    assert_eq!(
        unsafe { nol::result::nol_result_json(r, &mut json) },
        nol_status::Ok
    );
    unsafe { CStr::from_ptr(json) }
        .to_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_started_lookup_gives_the_same_result_as_the_blocking_one() {
    let sandbox = Sandbox::start(SandboxConfig {
        deterministic_receipts: true,
        ..SandboxConfig::default()
    })
    .unwrap();
    let blocking = client(&sandbox, 5000);
    let nonblocking = client(&sandbox, 5000);
    for number in [
        c"+14155551212",
        c"+14155550914",
        c"not a number",
        c"anonymous",
    ] {
        let want = lookup(blocking, number);
        let call = call_of(number);
        assert_eq!(
            unsafe { nol_lookup_start(nonblocking, &call, 42) },
            nol_status::Ok
        );
        let (data, got) = next(nonblocking, Duration::from_secs(10)).expect("delivered");
        assert_eq!(data, 42);
        assert_eq!(json_of(got), json_of(want), "{number:?}");
        unsafe {
            nol_result_free(got);
            nol_result_free(want);
        }
    }
    // A cache hit is delivered before nol_lookup_start returns.
    let call = call_of(c"+14155551212");
    assert_eq!(
        unsafe { nol_lookup_start(nonblocking, &call, 7) },
        nol_status::Ok
    );
    assert!(readable(event_fd(nonblocking), 0));
    let (data, r) = next(nonblocking, Duration::ZERO).unwrap();
    assert_eq!(data, 7);
    let mut outcome = nol_outcome::FailOpen;
    assert_eq!(
        unsafe { nol_result_outcome(r, &mut outcome) },
        nol_status::Ok
    );
    assert_eq!(outcome, nol_outcome::Cached);
    // Nothing more: the fd is quiet and next would block.
    assert!(!readable(event_fd(nonblocking), 50));
    let mut d = 0u64;
    let mut out = ptr::null_mut();
    assert_eq!(
        unsafe { nol_client_next(nonblocking, &mut d, &mut out) },
        nol_status::WouldBlock
    );
    assert!(out.is_null());
    unsafe {
        nol_result_free(r);
        nol_client_free(blocking);
        nol_client_free(nonblocking);
    }
}

#[test]
fn a_hanging_service_fails_open_within_the_budget_counted_from_the_start() {
    let sandbox = Sandbox::start(SandboxConfig::default()).unwrap();
    let client = client(&sandbox, 300);
    let start = Instant::now();
    let call = call_of(c"+14155550901"); // hang
    assert_eq!(
        unsafe { nol_lookup_start(client, &call, 1) },
        nol_status::Ok
    );
    assert!(start.elapsed() < Duration::from_millis(100));
    let (data, r) = next(client, Duration::from_secs(5)).unwrap();
    let took = start.elapsed();
    assert_eq!(data, 1);
    assert!(took < Duration::from_millis(300 + 400), "{took:?}");
    assert_eq!(
        string(r, nol_result_fail_open_reason).as_deref(),
        Some("timeout")
    );
    unsafe {
        nol_result_free(r);
        nol_client_free(client);
    }
}

#[test]
fn every_started_lookup_is_delivered_exactly_once_across_threads() {
    let sandbox = Sandbox::start(SandboxConfig::default()).unwrap();
    let client = client(&sandbox, 2000) as usize;
    const N: u64 = 400;
    let starters: Vec<_> = (0..4u64)
        .map(|t| {
            std::thread::spawn(move || {
                for i in (t..N).step_by(4) {
                    // Distinct numbers, some repeated callers, some hanging.
                    let number = match i % 10 {
                        0 => "+14155551212".to_string(),
                        1 => "+14155550901".to_string(),
                        _ => format!("+1415555{:04}", 2000 + i),
                    };
                    let number = CString::new(number).unwrap();
                    let call = call_of(&number);
                    let st = unsafe { nol_lookup_start(client as *const nol_client, &call, i) };
                    assert_eq!(st, nol_status::Ok);
                }
            })
        })
        .collect();
    let takers: Vec<_> = (0..3)
        .map(|_| {
            std::thread::spawn(move || {
                let mut got = Vec::new();
                while let Some((data, r)) =
                    next(client as *const nol_client, Duration::from_secs(4))
                {
                    unsafe { nol_result_free(r) };
                    got.push(data);
                }
                got
            })
        })
        .collect();
    for s in starters {
        s.join().unwrap();
    }
    let mut all: Vec<u64> = takers.into_iter().flat_map(|t| t.join().unwrap()).collect();
    all.sort_unstable();
    assert_eq!(all, (0..N).collect::<Vec<_>>());
    unsafe { nol_client_free(client as *mut nol_client) };
}

#[test]
fn freeing_a_client_with_lookups_pending_never_waits() {
    let sandbox = Sandbox::start(SandboxConfig::default()).unwrap();
    let client = client(&sandbox, 1000);
    for i in 0..20u64 {
        let call = call_of(if i % 2 == 0 {
            c"+14155550901"
        } else {
            c"+14155551212"
        });
        assert_eq!(
            unsafe { nol_lookup_start(client, &call, i) },
            nol_status::Ok
        );
    }
    let start = Instant::now();
    unsafe { nol_client_free(client) };
    assert!(
        start.elapsed() < Duration::from_millis(200),
        "{:?}",
        start.elapsed()
    );
    // The pending lookups end by their deadline on libnol's threads, into a queue nobody reads.
    std::thread::sleep(Duration::from_millis(1300));
}

#[test]
fn the_nonblocking_functions_check_their_arguments() {
    let sandbox = Sandbox::start(SandboxConfig::default()).unwrap();
    let client = client(&sandbox, 5000);
    let good = call_of(c"+14155551212");
    let mut no_number = call_of(c"x");
    no_number.number = ptr::null();
    let mut bad_context = call_of(c"+14155551212");
    bad_context.context = c"inbound_fax".as_ptr();
    let mut fd = -7;
    let mut data = 99u64;
    let sentinel = ptr::dangling_mut::<nol_result>();
    let mut r = sentinel;
    unsafe {
        assert_eq!(
            nol_lookup_start(ptr::null(), &good, 1),
            nol_status::NullArgument
        );
        assert_eq!(
            nol_lookup_start(client, ptr::null(), 1),
            nol_status::NullArgument
        );
        assert_eq!(
            nol_lookup_start(client, &no_number, 1),
            nol_status::NullArgument
        );
        assert_eq!(
            nol_lookup_start(client, &bad_context, 1),
            nol_status::InvalidArgument
        );
        assert_eq!(
            nol_client_event_fd(ptr::null(), &mut fd),
            nol_status::NullArgument
        );
        assert_eq!(
            nol_client_event_fd(client, ptr::null_mut()),
            nol_status::NullArgument
        );
        assert_eq!(fd, -7);
        assert_eq!(
            nol_client_next(ptr::null(), &mut data, &mut r),
            nol_status::NullArgument
        );
        assert_eq!(
            nol_client_next(client, ptr::null_mut(), &mut r),
            nol_status::NullArgument
        );
        assert_eq!(
            nol_client_next(client, &mut data, ptr::null_mut()),
            nol_status::NullArgument
        );
        // Before any start, and after the failed ones: nothing was started, nothing comes.
        assert_eq!(
            nol_client_next(client, &mut data, &mut r),
            nol_status::WouldBlock
        );
        assert_eq!((data, r), (99, sentinel));
        let msg = CStr::from_ptr(nol::error::nol_status_str(nol_status::WouldBlock as u32));
        assert!(msg.to_str().unwrap().contains("would block"));
        // The fd is the same on every call.
        assert_eq!(event_fd(client), event_fd(client));
        nol_client_free(client);
    }
}
