//! Every setting a host can give libnol, with its one range, its default and its one error
//! type. C (`nol_config_set_*`, `nol_config_set`), Python, Node, the Kamailio module and the
//! `nol` command all reach these checks through nol-core: no binding checks a range itself.
//!
//! The README's settings table is generated from [`SETTINGS`] (a test keeps them equal).

use std::fmt;

/// What values a setting takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Range {
    /// An integer within `min..=max`.
    Int { min: u64, max: u64 },
    /// One of these integers.
    OneOf(&'static [u64]),
    /// `true` or `false` (text: `1`/`0`, `yes`/`no`, `on`/`off`, `true`/`false`).
    Flag,
    /// Text, checked as the setting says.
    Text,
}

impl Range {
    /// Whether an integer is within the range (always false for flags and text).
    pub fn admits(&self, value: u64) -> bool {
        match *self {
            Range::Int { min, max } => (min..=max).contains(&value),
            Range::OneOf(values) => values.contains(&value),
            Range::Flag | Range::Text => false,
        }
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Range::Int { min, max } => write!(f, "{min}..={max}"),
            Range::OneOf(values) => {
                let values: Vec<String> = values.iter().map(u64::to_string).collect();
                f.write_str(&values.join(" or "))
            }
            Range::Flag => f.write_str("true or false"),
            Range::Text => f.write_str("text"),
        }
    }
}

/// One setting: its name (snake_case here, in C, Python, Kamailio and the CLI's `--set`;
/// camelCase in Node), what it takes, its default and what it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setting {
    pub name: &'static str,
    pub range: Range,
    /// The default, as text (`unset` when there is none).
    pub default: &'static str,
    pub doc: &'static str,
}

pub const BUDGET_MS: Range = Range::Int {
    min: 1,
    max: 60_000,
};
pub const CACHE_SIZE: Range = Range::Int {
    min: 0,
    max: 10_000_000,
};
pub const MAX_IN_FLIGHT: Range = Range::Int { min: 1, max: 1024 };
pub const BREAKER_FAILURES: Range = Range::Int { min: 1, max: 1000 };
pub const BREAKER_COOL_DOWN_MS: Range = Range::Int {
    min: 1,
    max: 3_600_000,
};
pub const RATE_LIMIT_PER_MINUTE: Range = Range::Int {
    min: 0,
    max: 1_000_000,
};
pub const WARM_UP_MS: Range = Range::Int {
    min: 0,
    max: 10_000,
};
pub const REDIS_BUDGET_MS: Range = Range::Int { min: 1, max: 1000 };
/// The longest `redis_url` and `redis_key_prefix`, in bytes.
pub const MAX_REDIS_URL_LEN: usize = 2048;
pub const MAX_REDIS_KEY_PREFIX_LEN: usize = 64;
pub const RISK_THRESHOLD: Range = Range::Int { min: 0, max: 100 };
pub const MAX_NAME_LEN: Range = Range::Int { min: 1, max: 1024 };
pub const ROUTE_ADVANCE_CODE: Range = Range::OneOf(&[503, 404]);
/// The longest risk tag and screening Contact, in bytes.
pub const MAX_TEXT_LEN: usize = 256;

/// Every setting, in the order the README lists them.
pub const SETTINGS: &[Setting] = &[
    Setting {
        name: "api_key",
        range: Range::Text,
        default: "NUMBERS_ONLINE_API_KEY",
        doc: "the API key: visible ASCII, no spaces; never printed",
    },
    Setting {
        name: "base_url",
        range: Range::Text,
        default: "https://numbers.online",
        doc: "`https://host[:port]`, or `http://` to loopback only; no path, credentials or query (env `NOL_BASE_URL`)",
    },
    Setting {
        name: "public_key_pem",
        range: Range::Text,
        default: "NOL_PUBLIC_KEY",
        doc: "the trusted Ed25519 key(s), PEM text (env `NOL_PUBLIC_KEY` names a PEM file)",
    },
    Setting {
        name: "budget_ms",
        range: BUDGET_MS,
        default: "400",
        doc: "the whole time a lookup may take, counted from the host's call",
    },
    Setting {
        name: "cache_size",
        range: CACHE_SIZE,
        default: "10000",
        doc: "verified answers kept, each for its TTL (at most 600 s); 0 turns the cache off",
    },
    Setting {
        name: "max_in_flight",
        range: MAX_IN_FLIGHT,
        default: "32",
        doc: "requests out at once; a lookup beyond that fails open at once (`busy`)",
    },
    Setting {
        name: "default_country",
        range: Range::Text,
        default: "unset",
        doc: "ISO 3166 alpha-2 country for national-form numbers; unset accepts international forms only",
    },
    Setting {
        name: "circuit_breaker",
        range: Range::Flag,
        default: "true",
        doc: "after `breaker_failures` failures in a row, fail open at once for `breaker_cool_down_ms`",
    },
    Setting {
        name: "breaker_failures",
        range: BREAKER_FAILURES,
        default: "5",
        doc: "failures in a row that open the circuit breaker",
    },
    Setting {
        name: "breaker_cool_down_ms",
        range: BREAKER_COOL_DOWN_MS,
        default: "5000",
        doc: "how long an open breaker fails open before one probe goes out",
    },
    Setting {
        name: "rate_limit_per_minute",
        range: RATE_LIMIT_PER_MINUTE,
        default: "0",
        doc: "client-side limit on lookups per minute (60 on the free tier); 0 for none",
    },
    Setting {
        name: "tls_ca_file",
        range: Range::Text,
        default: "unset",
        doc: "a PEM file whose certificates, when set, are the only roots trusted for the service (a private deployment, tests); unset trusts the public (webpki) roots",
    },
    Setting {
        name: "warm_up_ms",
        range: WARM_UP_MS,
        default: "0",
        doc: "at client creation, at most this long spent connecting to the service (DNS, TCP, TLS; `HEAD /`, no lookup) so the first lookup finds a warm connection, and with `redis_url` waiting for the shared cache's first connection (a client skips the tier until it has one); failures ignored; 0 for none",
    },
    Setting {
        name: "redis_url",
        range: Range::Text,
        default: "unset",
        doc: "a Redis shared by every libnol client of a cluster, as a second cache tier: `redis://[user:password@]host[:port][/db]`, `rediss://` for TLS, several comma-separated for Redis Cluster; the password is never printed (needs the `redis` cargo feature)",
    },
    Setting {
        name: "redis_key_prefix",
        range: Range::Text,
        default: "nol:",
        doc: "put before every key libnol writes in Redis: visible ASCII, no `{` or `}`, at most 64 bytes",
    },
    Setting {
        name: "redis_budget_ms",
        range: REDIS_BUDGET_MS,
        default: "20",
        doc: "the most a lookup spends on Redis, within its own budget (waiting for another node's request aside); a slow, failing or lying Redis costs a lookup no more, then its own breaker skips it",
    },
    Setting {
        name: "risk_tag",
        range: Range::Text,
        default: "unset",
        doc: "opt-in wording put before the caller name above `risk_threshold` (at most 256 bytes)",
    },
    Setting {
        name: "risk_threshold",
        range: RISK_THRESHOLD,
        default: "70",
        doc: "the risk score above which `risk_tag` is shown",
    },
    Setting {
        name: "block",
        range: Range::Flag,
        default: "false",
        doc: "opt-in: answer `block_candidate` with SIP 603",
    },
    Setting {
        name: "screening_contact",
        range: Range::Text,
        default: "unset",
        doc: "a `sip:`, `sips:` or `tel:` URI that elevated-risk calls are redirected to (302)",
    },
    Setting {
        name: "max_name_len",
        range: MAX_NAME_LEN,
        default: "64",
        doc: "the longest caller name, in bytes of its SIP quoted-string form",
    },
    Setting {
        name: "route_advance_code",
        range: ROUTE_ADVANCE_CODE,
        default: "503",
        doc: "the SIP reply that tells an SBC to advance to its next route",
    },
];

/// The settings as the README's Markdown table: name, range, default, what it does.
pub fn markdown_table() -> String {
    let mut out = String::from("| setting | range | default | what it does |\n|---|---|---|---|\n");
    for s in SETTINGS {
        let default = match s.default {
            "NUMBERS_ONLINE_API_KEY" | "NOL_PUBLIC_KEY" => format!("env `{}`", s.default),
            d => format!("`{d}`"),
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            s.name, s.range, default, s.doc
        ));
    }
    out
}

/// The setting called `name`, if there is one.
pub fn setting(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name == name)
}

/// Why a configuration (or one setting of it) was refused. Never carries the API key, nor a
/// secret part of a URL.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    MissingApiKey,
    /// The key has spaces, control characters or non-ASCII text (it would not survive an HTTP
    /// header).
    InvalidApiKey,
    MissingPublicKey,
    PublicKey(crate::signature::KeyError),
    /// The file `NOL_PUBLIC_KEY` (or the configuration) names could not be read.
    PublicKeyFile(String),
    /// The `tls_ca_file` could not be read, or holds no certificate rustls can trust; the text
    /// says which file and why.
    TlsCaFile(String),
    /// Not an `http(s)://host[:port]` URL; the text says why, without the URL's credentials or
    /// query.
    InvalidBaseUrl(String),
    /// Plain HTTP is allowed only to loopback.
    InsecureBaseUrl(String),
    InvalidDefaultCountry(String),
    /// A number outside its setting's range.
    OutOfRange {
        setting: &'static str,
        value: String,
        range: Range,
    },
    /// A text or flag value the setting does not take.
    InvalidValue {
        setting: &'static str,
        reason: &'static str,
    },
    /// No setting has this name.
    UnknownSetting(String),
    /// A thread could not be started, or the process is forked too deep.
    Invalid(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::MissingApiKey => {
                f.write_str("no API key (set NUMBERS_ONLINE_API_KEY or api_key)")
            }
            ConfigError::InvalidApiKey => f.write_str(
                "the API key has whitespace, control characters or non-ASCII characters",
            ),
            ConfigError::MissingPublicKey => {
                f.write_str("no trusted public key (set NOL_PUBLIC_KEY to a PEM file)")
            }
            ConfigError::PublicKey(e) => write!(f, "public key: {e}"),
            ConfigError::PublicKeyFile(e) => write!(f, "public key file: {e}"),
            ConfigError::TlsCaFile(e) => write!(f, "tls_ca_file: {e}"),
            ConfigError::InvalidBaseUrl(why) => write!(f, "invalid base URL: {why}"),
            ConfigError::InsecureBaseUrl(host) => {
                write!(f, "plain http is only allowed to loopback, not {host:?}")
            }
            ConfigError::InvalidDefaultCountry(c) => write!(f, "unknown default country {c:?}"),
            ConfigError::OutOfRange {
                setting,
                value,
                range,
            } => write!(f, "{setting} {value} is not within {range}"),
            ConfigError::InvalidValue { setting, reason } => write!(f, "{setting}: {reason}"),
            ConfigError::UnknownSetting(name) => write!(f, "no setting is called {name:?}"),
            ConfigError::Invalid(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ConfigError {}

impl From<crate::signature::KeyError> for ConfigError {
    fn from(e: crate::signature::KeyError) -> ConfigError {
        ConfigError::PublicKey(e)
    }
}

/// Checks an integer against a setting's range.
pub fn check_int(setting: &'static str, range: Range, value: u64) -> Result<u64, ConfigError> {
    if range.admits(value) {
        Ok(value)
    } else {
        Err(ConfigError::OutOfRange {
            setting,
            value: value.to_string(),
            range,
        })
    }
}

/// Checks a signed integer (what Python and Node hand over) against a setting's range.
pub fn check_signed(setting: &'static str, range: Range, value: i128) -> Result<u64, ConfigError> {
    match u64::try_from(value) {
        Ok(v) if range.admits(v) => Ok(v),
        _ => Err(ConfigError::OutOfRange {
            setting,
            value: value.to_string(),
            range,
        }),
    }
}

/// Checks a JavaScript number (a double) against a setting's range: it must be an integer.
pub fn check_number(setting: &'static str, range: Range, value: f64) -> Result<u64, ConfigError> {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e30 {
        check_signed(setting, range, value as i128)
    } else {
        Err(ConfigError::OutOfRange {
            setting,
            value: value.to_string(),
            range,
        })
    }
}

/// Reads a setting's integer from text (a config file, a module parameter, a CLI flag).
pub fn parse_int(setting: &'static str, range: Range, text: &str) -> Result<u64, ConfigError> {
    let text = text.trim();
    match text.parse::<i128>() {
        Ok(v) => check_signed(setting, range, v),
        Err(_) => Err(ConfigError::OutOfRange {
            setting,
            value: format!("{:?}", text.chars().take(32).collect::<String>()),
            range,
        }),
    }
}

/// Reads a flag from text: `1`/`0`, `yes`/`no`, `on`/`off`, `true`/`false`.
pub fn parse_flag(setting: &'static str, text: &str) -> Result<bool, ConfigError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "yes" | "on" | "true" => Ok(true),
        "0" | "no" | "off" | "false" => Ok(false),
        _ => Err(ConfigError::InvalidValue {
            setting,
            reason: "not one of 1/0, yes/no, on/off, true/false",
        }),
    }
}

/// A text setting made fit to show: non-empty, at most [`MAX_TEXT_LEN`] bytes, no control
/// characters.
pub fn check_text(setting: &'static str, text: &str) -> Result<String, ConfigError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ConfigError::InvalidValue {
            setting,
            reason: "empty",
        });
    }
    if text.len() > MAX_TEXT_LEN {
        return Err(ConfigError::InvalidValue {
            setting,
            reason: "longer than 256 bytes",
        });
    }
    if text.chars().any(char::is_control) {
        return Err(ConfigError::InvalidValue {
            setting,
            reason: "has control characters",
        });
    }
    Ok(text.to_string())
}

/// A redirect target: a `sip:`, `sips:` or `tel:` URI without spaces, quotes or angle brackets.
pub fn check_contact(setting: &'static str, text: &str) -> Result<String, ConfigError> {
    let text = check_text(setting, text)?;
    let lower = text.to_ascii_lowercase();
    let scheme_ok = ["sip:", "sips:", "tel:"]
        .iter()
        .any(|s| lower.starts_with(s) && lower.len() > s.len());
    if !scheme_ok {
        return Err(ConfigError::InvalidValue {
            setting,
            reason: "not a sip:, sips: or tel: URI",
        });
    }
    if text
        .chars()
        .any(|c| c.is_whitespace() || matches!(c, '"' | '<' | '>'))
    {
        return Err(ConfigError::InvalidValue {
            setting,
            reason: "has spaces, quotes or angle brackets",
        });
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_range_admits_its_bounds_and_refuses_past_them() {
        for s in SETTINGS {
            if let Range::Int { min, max } = s.range {
                assert!(check_int(s.name, s.range, min).is_ok(), "{}", s.name);
                assert!(check_int(s.name, s.range, max).is_ok(), "{}", s.name);
                assert!(check_int(s.name, s.range, max + 1).is_err(), "{}", s.name);
                if min > 0 {
                    assert!(check_int(s.name, s.range, min - 1).is_err(), "{}", s.name);
                }
                assert!(check_signed(s.name, s.range, -1).is_err());
                assert!(check_number(s.name, s.range, min as f64 + 0.5).is_err());
                assert!(check_number(s.name, s.range, f64::NAN).is_err());
                assert_eq!(parse_int(s.name, s.range, &max.to_string()), Ok(max));
            }
        }
    }

    #[test]
    fn defaults_are_within_their_ranges() {
        for s in SETTINGS {
            match s.range {
                Range::Int { .. } | Range::OneOf(_) => {
                    let v: u64 = s.default.parse().unwrap();
                    assert!(s.range.admits(v), "{}", s.name);
                }
                Range::Flag => {
                    parse_flag(s.name, s.default).unwrap();
                }
                Range::Text => {}
            }
        }
    }

    #[test]
    fn the_readme_lists_every_setting_as_the_table_says() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
            .expect("README.md at the workspace root");
        assert!(
            readme.contains(&markdown_table()),
            "README.md's settings table differs from nol-core's: paste the output of `nol settings`"
        );
    }

    #[test]
    fn contacts() {
        assert!(check_contact("c", "sip:screen@ivr.example").is_ok());
        assert!(check_contact("c", "tel:+14155550100").is_ok());
        for bad in [
            "",
            " ",
            "sip:",
            "http://x",
            "sip:a b@c",
            "sip:a\r\n@c",
            "<sip:a@b>",
        ] {
            assert!(check_contact("c", bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            ConfigError::OutOfRange {
                setting: "budget_ms",
                value: "0".into(),
                range: BUDGET_MS
            }
            .to_string(),
            "budget_ms 0 is not within 1..=60000"
        );
    }
}
