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
    let sentinel = 0x1 as *mut nol_result;
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
