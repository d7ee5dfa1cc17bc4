//! `nol_client`: a nol-core `ForkSafeClient` and the lookup.
//!
//! Fork safety lives in nol-core (`nol_core::client::ForkSafeClient`: one client per fork
//! depth, the inherited ones never touched in the child). nol-core has no `unsafe`, so the C
//! ABI registers the `pthread_atfork` child handler that tells it a fork happened.

use std::ffi::c_char;
use std::sync::{Arc, Once};

use nol_core::client::after_fork_in_child;
use nol_core::{Call, Client, ClientConfig, ConfigError, Context, ForkSafeClient};

use crate::arg;
use crate::config::nol_config;
use crate::error::{boundary, boundary_void, nol_status, Fail, FfiResult};
use crate::nonblocking::Queues;
use crate::result::nol_result;

static REGISTER_ATFORK: Once = Once::new();

extern "C" fn on_fork_in_child() {
    // Async-signal-safe: two atomic adds.
    after_fork_in_child();
    crate::nonblocking::after_fork_in_child();
}

fn register_atfork() {
    REGISTER_ATFORK.call_once(|| {
        // SAFETY: registers a handler that only does an atomic add. glibc ties the handler to
        // this shared object (`__dso_handle`), so it is unregistered if libnol is unloaded.
        unsafe {
            libc::pthread_atfork(None, None, Some(on_fork_in_child));
        }
    });
}

/// A numbers.online client (a Rust `nol_core::Client` plus its configuration). Made by
/// `nol_client_new`, freed by `nol_client_free`.
///
/// Thread-safe: share one client between all threads of a process; every function that takes a
/// `const nol_client *` may be called from any number of threads at once. Only
/// `nol_client_free` needs every other call on the client to have returned.
///
/// Fork-safe: a client made before `fork()` may be used in the child. The child's first call
/// on it builds a new inner client (its own threads and connections, an empty cache, fresh
/// stats), which takes about a millisecond, and the parent's is never touched in the child.
/// Both processes may go on using the client. This relies on `pthread_atfork`, which `fork()`
/// runs; a child made by a raw `clone` system call is not supported.
///
/// Non-blocking lookups (`nol_lookup_start`, `nol_client_event_fd`, `nol_client_next`): each
/// process that uses them on a client has its own completion queue and event fd; a lookup's
/// decision is delivered in the process that started it.
pub struct nol_client {
    inner: ForkSafeClient,
    /// The non-blocking API's completion queue and event fd, one per fork depth.
    queues: Queues,
}

impl nol_client {
    pub(crate) fn new(config: ClientConfig) -> Result<nol_client, ConfigError> {
        register_atfork();
        Ok(nol_client {
            inner: ForkSafeClient::new(config)?,
            queues: Queues::new(),
        })
    }

    /// The inner client of this process, made anew after a fork.
    pub(crate) fn client(&self) -> Result<&Client, ConfigError> {
        self.inner.client()
    }

    pub(crate) fn lookup(&self, call: &Call<'_>) -> nol_core::Decision {
        self.inner.lookup(call)
    }

    /// Starts a lookup whose decision goes to this process's completion queue.
    pub(crate) fn lookup_start(&self, call: &Call<'_>, user_data: u64) -> FfiResult {
        let queue = Arc::clone(self.queues.get_or_make()?);
        self.inner
            .lookup_async(call, move |decision| queue.push(user_data, decision));
        Ok(())
    }

    pub(crate) fn queues(&self) -> &Queues {
        &self.queues
    }

    pub(crate) fn precall(&self, from: &str, to: &str) -> nol_core::client::Precall {
        self.inner.precall(from, to)
    }

    pub(crate) fn enroll(&self, number: &str) -> nol_core::client::Enrollment {
        self.inner.enroll(number)
    }
}

/// Makes a client from a configuration (copied: free the configuration whenever you like).
/// Reads what the configuration leaves unset from the environment (`NUMBERS_ONLINE_API_KEY`,
/// `NOL_BASE_URL`, `NOL_PUBLIC_KEY`), loads the numbering metadata and starts the worker
/// threads, so that no lookup pays a one-time cost. Writes the client to `*out`; free it with
/// `nol_client_free`.
///
/// `config` may be NULL: everything then comes from the environment.
///
/// Blocks for the setup (tens of milliseconds the first time in a process, for the numbering
/// metadata), never on the network. Thread-safe.
///
/// `NOL_STATUS_MISSING_API_KEY`, `NOL_STATUS_INVALID_API_KEY`, `NOL_STATUS_MISSING_PUBLIC_KEY`,
/// `NOL_STATUS_INVALID_PUBLIC_KEY`, `NOL_STATUS_INVALID_BASE_URL`,
/// `NOL_STATUS_UNKNOWN_COUNTRY` or `NOL_STATUS_INVALID_CONFIG` when it cannot be made.
#[no_mangle]
pub unsafe extern "C" fn nol_client_new(
    config: *const nol_config,
    out: *mut *mut nol_client,
) -> nol_status {
    boundary(|| {
        let out = unsafe { arg::out(out, "out") }?;
        // SAFETY: NULL or a live `nol_config` (header contract).
        let config = match unsafe { config.as_ref() } {
            Some(c) => c.inner.clone(),
            None => ClientConfig::default(),
        };
        let client = nol_client::new(config)?;
        *out = Box::into_raw(Box::new(client));
        Ok(())
    })
}

/// Frees a client: its worker threads end and its connections close. NULL is fine. Every other
/// call on the client must have returned; results it gave stay valid (free them with
/// `nol_result_free`).
///
/// Never waits on the network: a request still in flight (a lookup that timed out on a hanging
/// service) keeps what it needs and ends by its deadline on libnol's own thread, which frees
/// the rest; idle threads are joined at once. Not thread-safe with respect to this client: no
/// other call may be using it.
///
/// Non-blocking lookups still pending are not waited for and not cancelled: each ends by its
/// budget on a libnol thread, and its decision, with every decision not yet taken with
/// `nol_client_next`, is freed by libnol (nothing leaks; `user_data` is never handed back, so
/// free whatever it points to yourself). Remove the client's event fd from your poll set
/// BEFORE this call: libnol closes the fd once the last pending lookup has ended (at once when
/// none is pending), and its number may then be reused.
#[no_mangle]
pub unsafe extern "C" fn nol_client_free(client: *mut nol_client) {
    boundary_void(|| {
        if !client.is_null() {
            // SAFETY: made by `nol_client_new`, not freed before (header contract).
            drop(unsafe { Box::from_raw(client) });
        }
    })
}

/// An inbound call as the switch has it. Every member is a NUL-terminated string, or NULL when
/// unknown; zero-initialize the struct and set what you have:
///
/// ```c
/// nol_call call = {0};
/// call.number = from_user;      /* required */
/// call.verstat = verstat_param; /* optional */
/// ```
///
/// Members that come from the wire (`number`, `to`, `verstat`, `attestation`) are never an
/// error: a value that is not UTF-8 or not readable is treated as unknown (a `number` that is
/// not UTF-8 fails open as `invalid_number`).
#[repr(C)]
pub struct nol_call {
    /// The calling number: E.164, national (with a default country), a SIP or tel URI, or a
    /// whole From / P-Asserted-Identity header value. Required.
    pub number: *const c_char,
    /// `"inbound_voice"` (the default when NULL), `"inbound_sms"` or `"inbound_waba"`.
    pub context: *const c_char,
    /// The receiver's own number.
    pub to: *const c_char,
    /// A verstat token (`TN-Validation-Passed`), a `verstat=` parameter or a header value.
    pub verstat: *const c_char,
    /// `A`, `B`, `C`, or the SHAKEN `Identity` header value.
    pub attestation: *const c_char,
    /// A name the switch already knows for this number (its own contacts): it always wins.
    /// Not UTF-8: the invalid bytes are replaced with U+FFFD.
    pub local_contact: *const c_char,
}

/// Looks up an inbound call and writes the decision to `*out` (free it with
/// `nol_result_free`). Fails open: whatever the network or the service does (a timeout, a
/// refused connection, an error status, a bad signature, a full worker pool, an open circuit
/// breaker), this returns `NOL_STATUS_OK` and a result whose action is
/// `NOL_ACTION_ALLOW_WITH_DEFAULT_POLICY`, with the reason (`nol_result_fail_open_reason`).
///
/// BLOCKS the calling thread for at most the client's budget (`nol_config_set_budget_ms`),
/// counted from this call; a cache hit returns in about a microsecond. Thread-safe: any number
/// of threads may look up on one client at once. Safe to call in a forked child (see
/// `nol_client`).
///
/// `NOL_STATUS_NULL_ARGUMENT` (client, call, call->number or out is NULL) or
/// `NOL_STATUS_INVALID_ARGUMENT` / `NOL_STATUS_INVALID_UTF8` (an unknown `context`) are
/// programming errors; `NOL_STATUS_PANIC` is a bug. On any of them `*out` is left unchanged and
/// the call should go on as `allow_with_default_policy`.
#[no_mangle]
pub unsafe extern "C" fn nol_lookup(
    client: *const nol_client,
    call: *const nol_call,
    out: *mut *mut nol_result,
) -> nol_status {
    boundary(|| {
        let client = unsafe { arg::reference(client, "client") }?;
        let call = unsafe { arg::reference(call, "call") }?;
        let out = unsafe { arg::out(out, "out") }?;
        let decision = unsafe { with_call(call, |call| client.lookup(call)) }?;
        *out = Box::into_raw(Box::new(nol_result::new(decision)));
        Ok(())
    })
}

/// Reads a `nol_call` (checked as `nol_lookup` documents) and runs `f` on it.
pub(crate) unsafe fn with_call<R>(call: &nol_call, f: impl FnOnce(&Call<'_>) -> R) -> FfiResult<R> {
    let number = unsafe { arg::bytes(call.number, "call->number") }?;
    let context = match unsafe { arg::opt_string(call.context, "call->context") }? {
        None => Context::InboundVoice,
        Some(text) => Context::parse(text).ok_or_else(|| {
            Fail::new(
                nol_status::InvalidArgument,
                "call->context is not inbound_voice, inbound_sms or inbound_waba",
            )
        })?,
    };
    let local_contact = if call.local_contact.is_null() {
        None
    } else {
        // SAFETY: non-NULL and NUL-terminated (header contract).
        let bytes = unsafe { std::ffi::CStr::from_ptr(call.local_contact) }.to_bytes();
        Some(String::from_utf8_lossy(bytes))
    };
    let verstat = unsafe { arg::wire_string(call.verstat) };
    let attestation = unsafe { arg::wire_string(call.attestation) };
    // A number that is not UTF-8 is no number: it goes through the client as one that
    // cannot parse (U+FFFD), so that it fails open as `invalid_number` and is counted.
    let number = std::str::from_utf8(number).unwrap_or("\u{FFFD}");
    Ok(f(&Call {
        number,
        context,
        to: unsafe { arg::wire_string(call.to) },
        verstat,
        attestation,
        local_contact: local_contact.as_deref(),
    }))
}

/// A client's counters since it was made (in this process: a forked child starts at zero).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct nol_stats {
    pub lookups: u64,
    pub cache_hits: u64,
    /// Decisions from an answer fetched and verified for the call.
    pub verified: u64,
    /// Lookups that joined another lookup's request for the same number.
    pub shared_flights: u64,
    /// Lookups that failed open, for any reason (see `nol_client_fail_open_count`).
    pub fail_open: u64,
    /// Lookup latency percentiles and maximum, in microseconds, counted from the host's call.
    pub latency_p50_us: u64,
    pub latency_p90_us: u64,
    pub latency_p99_us: u64,
    pub latency_max_us: u64,
    pub workers_busy: u32,
    pub workers: u32,
    /// The circuit breaker is open: lookups fail open at once.
    pub circuit_open: bool,
}

/// Writes the client's counters to `*out`. Never blocks on the network; thread-safe.
#[no_mangle]
pub unsafe extern "C" fn nol_client_stats(
    client: *const nol_client,
    out: *mut nol_stats,
) -> nol_status {
    boundary(|| {
        let client = unsafe { arg::reference(client, "client") }?;
        let out = unsafe { arg::out(out, "out") }?;
        let s = client.client()?.stats();
        let us = |d: std::time::Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        *out = nol_stats {
            lookups: s.lookups,
            cache_hits: s.cache_hits,
            verified: s.verified,
            shared_flights: s.shared_flights,
            fail_open: s.fail_open.iter().map(|(_, n)| n).sum(),
            latency_p50_us: us(s.latency_p50),
            latency_p90_us: us(s.latency_p90),
            latency_p99_us: us(s.latency_p99),
            latency_max_us: us(s.latency_max),
            workers_busy: u32::try_from(s.workers_busy).unwrap_or(u32::MAX),
            workers: u32::try_from(s.workers).unwrap_or(u32::MAX),
            circuit_open: s.circuit_open,
        };
        Ok(())
    })
}

/// Writes how many lookups failed open for one reason (a name `nol_result_fail_open_reason`
/// gives, such as `"timeout"` or `"bad_signature"`) to `*out`; 0 for a reason that never
/// occurred or that libnol does not know. Never blocks on the network; thread-safe.
#[no_mangle]
pub unsafe extern "C" fn nol_client_fail_open_count(
    client: *const nol_client,
    reason: *const c_char,
    out: *mut u64,
) -> nol_status {
    boundary(|| {
        let client = unsafe { arg::reference(client, "client") }?;
        let reason = unsafe { arg::string(reason, "reason") }?;
        let out = unsafe { arg::out(out, "out") }?;
        *out = client.client()?.stats().fail_open_count(reason);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nol_core::{ApiKey, TrustedKeys};

    #[test]
    fn a_fork_rebuilds_the_inner_client() {
        let sandbox = nol_sandbox::Sandbox::start(Default::default()).unwrap();
        let client = nol_client::new(ClientConfig {
            api_key: Some(ApiKey::new("nol_sandbox_standard_key").unwrap()),
            base_url: sandbox.url(),
            public_keys: TrustedKeys::from_pem(&sandbox.public_key_pem()).unwrap(),
            ..ClientConfig::default()
        })
        .unwrap();
        let first = client.client().unwrap() as *const Client;
        assert!(client.lookup(&Call::new("+14155551212")).verified());
        // What the atfork handler does in a child.
        on_fork_in_child();
        assert_ne!(client.client().unwrap() as *const Client, first);
        // The rebuilt client starts with an empty cache and fresh counters.
        assert_eq!(client.client().unwrap().stats().lookups, 0);
        let d = client.lookup(&Call::new("+14155551212"));
        assert!(d.verified() && !d.from_cache());
    }
}
