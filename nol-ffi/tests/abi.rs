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
