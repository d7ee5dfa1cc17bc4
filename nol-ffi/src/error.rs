//! The one place where failures cross into C: the status codes, the thread-local message of
//! the last failure, the conversions from nol-core's errors, and the panic boundary that wraps
//! every exported function.

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use nol_core::{ConfigError, E164Error, KeyError, SignatureError};

/// What a libnol function reports. `NOL_STATUS_OK` is zero, so `if (status)` tests for a
/// failure. On any other value the function wrote none of its outputs (an out-pointer to a
/// string or a handle is left as it was), and `nol_last_error()` describes the failure on the
/// calling thread.
///
/// For `nol_lookup` any status but `NOL_STATUS_OK` means: carry on with the call as
/// `allow_with_default_policy` (fail open). Nothing the network or the service does produces
/// such a status: only a programming error (a NULL pointer, an unknown context) or a bug.
///
/// New values may be added in later versions: treat unknown values as failures.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum nol_status {
    /// Success.
    Ok = 0,
    /// A required pointer argument was NULL.
    NullArgument = 1,
    /// A string argument was not valid UTF-8.
    InvalidUtf8 = 2,
    /// An argument was out of range or not one of the accepted values.
    InvalidArgument = 3,
    /// An index past the end (see `nol_result_header`, `nol_result_agi_variable`).
    OutOfRange = 4,
    /// `nol_normalize`: the input is not a possible telephone number.
    InvalidNumber = 10,
    /// `nol_normalize`: the caller withheld the number (`anonymous`, `restricted`, ...).
    Anonymous = 11,
    /// An ISO 3166 country code libnol does not know.
    UnknownCountry = 12,
    /// No API key was configured and `NUMBERS_ONLINE_API_KEY` is not set.
    MissingApiKey = 20,
    /// The API key has whitespace or control characters.
    InvalidApiKey = 21,
    /// No trusted public key was configured and `NOL_PUBLIC_KEY` is not set.
    MissingPublicKey = 22,
    /// Not an Ed25519 public key in PEM form, or the file `NOL_PUBLIC_KEY` names is unreadable.
    InvalidPublicKey = 23,
    /// The base URL is not `https://host[:port]` (or `http://` to loopback).
    InvalidBaseUrl = 24,
    /// Another configuration problem (for example: worker threads could not be started).
    InvalidConfig = 25,
    /// `nol_config_set`: no setting has this name.
    UnknownSetting = 26,
    /// `nol_verify_response`: the body is not one JSON object.
    BodyUnparseable = 30,
    /// `nol_verify_response`: a key appears twice in one object.
    BodyDuplicateKey = 31,
    /// `nol_verify_response`: no `response_signature` member.
    SignatureMissing = 32,
    /// `nol_verify_response`: the signature is not a string of 64 base64-encoded bytes.
    SignatureMalformed = 33,
    /// `nol_verify_response`: the signature does not start with `ed25519:`.
    SignatureWrongPrefix = 34,
    /// `nol_verify_response`: no trusted key made this signature over this body.
    SignatureMismatch = 35,
    /// `nol_client_next`: no finished decision is waiting (not a failure: poll the client's
    /// event fd and try again when it is readable).
    WouldBlock = 40,
    /// A bug in libnol: a panic was caught at the boundary. The process is unharmed; for a
    /// lookup, carry on as `allow_with_default_policy`.
    Panic = 90,
}

/// A failure on its way to C: a status and the message `nol_last_error` gives.
#[derive(Debug)]
pub(crate) struct Fail {
    pub(crate) status: nol_status,
    pub(crate) message: String,
}

impl Fail {
    pub(crate) fn new(status: nol_status, message: impl Into<String>) -> Fail {
        Fail {
            status,
            message: message.into(),
        }
    }
}

pub(crate) type FfiResult<T = ()> = Result<T, Fail>;

impl From<ConfigError> for Fail {
    fn from(e: ConfigError) -> Fail {
        // ConfigError never carries the API key (nol-core guarantees it; a test here checks).
        let status = match &e {
            ConfigError::MissingApiKey => nol_status::MissingApiKey,
            ConfigError::InvalidApiKey => nol_status::InvalidApiKey,
            ConfigError::MissingPublicKey => nol_status::MissingPublicKey,
            ConfigError::PublicKey(_) | ConfigError::PublicKeyFile(_) => {
                nol_status::InvalidPublicKey
            }
            ConfigError::InvalidBaseUrl(_) | ConfigError::InsecureBaseUrl(_) => {
                nol_status::InvalidBaseUrl
            }
            ConfigError::InvalidDefaultCountry(_) => nol_status::UnknownCountry,
            ConfigError::OutOfRange { .. } | ConfigError::InvalidValue { .. } => {
                nol_status::InvalidArgument
            }
            ConfigError::UnknownSetting(_) => nol_status::UnknownSetting,
            // `Invalid`, and whatever later versions of nol-core add.
            _ => nol_status::InvalidConfig,
        };
        Fail::new(status, e.to_string())
    }
}

impl From<KeyError> for Fail {
    fn from(e: KeyError) -> Fail {
        Fail::new(nol_status::InvalidPublicKey, e.to_string())
    }
}

impl From<E164Error> for Fail {
    fn from(e: E164Error) -> Fail {
        let status = match e {
            E164Error::UnknownRegion(_) => nol_status::UnknownCountry,
            _ => nol_status::InvalidNumber,
        };
        Fail::new(status, e.to_string())
    }
}

impl From<SignatureError> for Fail {
    fn from(e: SignatureError) -> Fail {
        let status = match e {
            SignatureError::Unparseable => nol_status::BodyUnparseable,
            SignatureError::DuplicateKey => nol_status::BodyDuplicateKey,
            SignatureError::Missing => nol_status::SignatureMissing,
            SignatureError::Malformed => nol_status::SignatureMalformed,
            SignatureError::WrongPrefix => nol_status::SignatureWrongPrefix,
            SignatureError::Mismatch => nol_status::SignatureMismatch,
        };
        Fail::new(status, e.to_string())
    }
}

impl nol_status {
    /// The status's stable name, NUL-terminated.
    fn name(self) -> &'static CStr {
        match self {
            nol_status::Ok => c"ok",
            nol_status::NullArgument => c"null argument",
            nol_status::InvalidUtf8 => c"invalid UTF-8",
            nol_status::InvalidArgument => c"invalid argument",
            nol_status::OutOfRange => c"index out of range",
            nol_status::InvalidNumber => c"not a possible telephone number",
            nol_status::Anonymous => c"anonymous caller",
            nol_status::UnknownCountry => c"unknown country",
            nol_status::MissingApiKey => c"no API key (set NUMBERS_ONLINE_API_KEY)",
            nol_status::InvalidApiKey => c"invalid API key",
            nol_status::MissingPublicKey => c"no trusted public key (set NOL_PUBLIC_KEY)",
            nol_status::InvalidPublicKey => c"invalid public key",
            nol_status::InvalidBaseUrl => c"invalid base URL",
            nol_status::InvalidConfig => c"invalid configuration",
            nol_status::UnknownSetting => c"unknown setting",
            nol_status::BodyUnparseable => c"body is not one JSON object",
            nol_status::BodyDuplicateKey => c"body has a duplicate key",
            nol_status::SignatureMissing => c"missing signature",
            nol_status::SignatureMalformed => c"malformed signature",
            nol_status::SignatureWrongPrefix => c"wrong signature prefix",
            nol_status::SignatureMismatch => c"signature mismatch",
            nol_status::WouldBlock => c"would block (no finished decision waiting)",
            nol_status::Panic => c"internal error (panic caught)",
        }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(message: &str) {
    let text = CString::new(message.replace('\0', " ")).unwrap_or_default();
    let _ = LAST_ERROR.try_with(|slot| {
        if let Ok(mut slot) = slot.try_borrow_mut() {
            *slot = text;
        }
    });
}

/// Runs an exported function's body: a panic becomes `NOL_STATUS_PANIC`, a failure sets the
/// thread's last error and becomes its status.
pub(crate) fn boundary(body: impl FnOnce() -> FfiResult) -> nol_status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => nol_status::Ok,
        Ok(Err(fail)) => {
            set_last_error(&fail.message);
            fail.status
        }
        Err(_) => {
            set_last_error("internal error: a panic was caught at the libnol boundary");
            nol_status::Panic
        }
    }
}

/// The same for functions that return nothing (the frees): a panic is swallowed.
pub(crate) fn boundary_void(body: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(body)).is_err() {
        set_last_error("internal error: a panic was caught at the libnol boundary");
    }
}

/// A short human-readable description of a status (static: never free it). Unknown values
/// give `"unknown status"`.
///
/// Never blocks; thread-safe.
#[no_mangle]
pub extern "C" fn nol_status_str(status: u32) -> *const c_char {
    let known = [
        nol_status::Ok,
        nol_status::NullArgument,
        nol_status::InvalidUtf8,
        nol_status::InvalidArgument,
        nol_status::OutOfRange,
        nol_status::InvalidNumber,
        nol_status::Anonymous,
        nol_status::UnknownCountry,
        nol_status::MissingApiKey,
        nol_status::InvalidApiKey,
        nol_status::MissingPublicKey,
        nol_status::InvalidPublicKey,
        nol_status::InvalidBaseUrl,
        nol_status::InvalidConfig,
        nol_status::UnknownSetting,
        nol_status::BodyUnparseable,
        nol_status::BodyDuplicateKey,
        nol_status::SignatureMissing,
        nol_status::SignatureMalformed,
        nol_status::SignatureWrongPrefix,
        nol_status::SignatureMismatch,
        nol_status::WouldBlock,
        nol_status::Panic,
    ];
    known
        .iter()
        .find(|s| **s as u32 == status)
        .map_or(c"unknown status".as_ptr(), |s| s.name().as_ptr())
}

/// The message of the most recent failure on the calling thread: which argument, what was
/// wrong with it. A thread-local string owned by libnol (like `dlerror`): never free it; it
/// stays valid until the next failing libnol call on the same thread, or the thread's exit.
/// Successful calls leave it unchanged, so read it right after a call returned something other
/// than `NOL_STATUS_OK`. Empty (`""`) when nothing has failed on this thread. Never NULL.
/// Never contains the API key.
///
/// Never blocks; thread-safe (each thread has its own message).
#[no_mangle]
pub extern "C" fn nol_last_error() -> *const c_char {
    LAST_ERROR
        .try_with(|slot| match slot.try_borrow() {
            Ok(s) => s.as_ptr(),
            Err(_) => c"".as_ptr(),
        })
        .unwrap_or(c"".as_ptr())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last() -> String {
        unsafe { CStr::from_ptr(nol_last_error()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn panics_become_a_status_and_a_message() {
        let status = boundary(|| panic!("boom"));
        assert_eq!(status, nol_status::Panic);
        assert!(last().contains("panic"), "{}", last());
    }

    #[test]
    fn failures_set_the_last_error_and_success_keeps_it() {
        assert_eq!(
            boundary(|| Err(Fail::new(nol_status::InvalidArgument, "bad\0thing"))),
            nol_status::InvalidArgument
        );
        assert_eq!(last(), "bad thing");
        assert_eq!(boundary(|| Ok(())), nol_status::Ok);
        assert_eq!(last(), "bad thing");
    }

    #[test]
    fn every_status_has_a_name() {
        for code in 0..100u32 {
            let s = unsafe { CStr::from_ptr(nol_status_str(code)) };
            assert!(!s.to_bytes().is_empty());
        }
        let ok = unsafe { CStr::from_ptr(nol_status_str(0)) };
        assert_eq!(ok.to_str().unwrap(), "ok");
        let unknown = unsafe { CStr::from_ptr(nol_status_str(7777)) };
        assert_eq!(unknown.to_str().unwrap(), "unknown status");
    }

    #[test]
    fn config_errors_never_carry_the_key() {
        let fail: Fail = ConfigError::InvalidApiKey.into();
        assert_eq!(fail.status, nol_status::InvalidApiKey);
        assert!(!fail.message.is_empty());
    }

    #[test]
    fn range_and_name_errors_have_their_statuses() {
        let fail: Fail = ConfigError::UnknownSetting("nope".into()).into();
        assert_eq!(fail.status, nol_status::UnknownSetting);
        let fail: Fail = ConfigError::InvalidValue {
            setting: "block",
            reason: "no",
        }
        .into();
        assert_eq!(fail.status, nol_status::InvalidArgument);
    }
}
