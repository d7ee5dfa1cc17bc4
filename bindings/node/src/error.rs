//! Every error that crosses into JavaScript is made here: an `Error` whose `code` says what
//! went wrong (`err.code === 'ERR_NOL_INVALID_ARG'`) and whose message never carries the API
//! key. Only bad arguments and bad configuration throw: nothing the network or the service
//! does ever rejects a lookup.

use nol_core::{ConfigError, E164Error, KeyError};

use crate::settings::option_name;

/// The `code` of a thrown `Error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// An argument of the right type with a value the function cannot use, e.g. a number
    /// outside its setting's range (nol-core's `ConfigError::OutOfRange`), a setting value it
    /// does not take (`InvalidValue`, such as an empty `policy.screeningContact`).
    InvalidArg,
    /// `normalize` was given something that is not a possible telephone number.
    InvalidNumber,
    /// A country code (ISO 3166) libnol does not know.
    InvalidCountry,
    /// No API key in the options nor in `NUMBERS_ONLINE_API_KEY`.
    MissingApiKey,
    /// The API key has whitespace or control characters.
    InvalidApiKey,
    /// No trusted public key in the options nor in `NOL_PUBLIC_KEY`.
    MissingPublicKey,
    /// The PEM text holds no Ed25519 public key, or the key file cannot be read.
    InvalidPublicKey,
    /// Not an `https://` URL (plain `http://` only to loopback).
    InvalidBaseUrl,
    /// The client could not start (its threads), or a configuration error newer than this
    /// binding.
    Config,
}

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        match self {
            Code::InvalidArg => "ERR_NOL_INVALID_ARG",
            Code::InvalidNumber => "ERR_NOL_INVALID_NUMBER",
            Code::InvalidCountry => "ERR_NOL_INVALID_COUNTRY",
            Code::MissingApiKey => "ERR_NOL_MISSING_API_KEY",
            Code::InvalidApiKey => "ERR_NOL_INVALID_API_KEY",
            Code::MissingPublicKey => "ERR_NOL_MISSING_PUBLIC_KEY",
            Code::InvalidPublicKey => "ERR_NOL_INVALID_PUBLIC_KEY",
            Code::InvalidBaseUrl => "ERR_NOL_INVALID_BASE_URL",
            Code::Config => "ERR_NOL_CONFIG",
        }
    }
}

pub type Error = napi::Error<Code>;
pub type Result<T> = std::result::Result<T, Error>;

pub fn invalid_arg(message: impl ToString) -> Error {
    Error::new(Code::InvalidArg, message)
}

/// A configuration error from nol-core, with its code. Every range is nol-core's
/// ([`nol_core::settings`]); a value out of range or not taken says so under the Node option's
/// name (`policy.maxNameLen 0 is not within ...`).
pub fn from_config(e: ConfigError) -> Error {
    let code = match &e {
        ConfigError::MissingApiKey => Code::MissingApiKey,
        ConfigError::InvalidApiKey => Code::InvalidApiKey,
        ConfigError::MissingPublicKey => Code::MissingPublicKey,
        ConfigError::PublicKey(_) | ConfigError::PublicKeyFile(_) => Code::InvalidPublicKey,
        ConfigError::InvalidBaseUrl(_) | ConfigError::InsecureBaseUrl(_) => Code::InvalidBaseUrl,
        ConfigError::InvalidDefaultCountry(_) => Code::InvalidCountry,
        ConfigError::OutOfRange { .. }
        | ConfigError::InvalidValue { .. }
        | ConfigError::UnknownSetting(_) => Code::InvalidArg,
        // `Invalid` (threads could not start), and any variant nol-core adds later.
        _ => Code::Config,
    };
    let message = match &e {
        ConfigError::OutOfRange {
            setting,
            value,
            range,
        } => format!("{} {value} is not within {range}", option_name(setting)),
        ConfigError::InvalidValue { setting, reason } => {
            format!("{}: {reason}", option_name(setting))
        }
        other => other.to_string(),
    };
    Error::new(code, message)
}

pub fn from_e164(e: E164Error) -> Error {
    match e {
        E164Error::UnknownRegion(_) => Error::new(Code::InvalidCountry, e),
        other => Error::new(
            Code::InvalidNumber,
            format!("not a possible telephone number: {other}"),
        ),
    }
}

pub fn from_key(e: KeyError) -> Error {
    Error::new(Code::InvalidPublicKey, e)
}
