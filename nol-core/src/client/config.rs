//! What a [`Client`](super::Client) is made from: the configuration, its setters (every range
//! from [`crate::settings`]), the environment, and the checks `Client::new` runs on the whole.

use std::fmt;
use std::time::Duration;

use crate::e164::{self, E164};
use crate::policy::Policy;
use crate::settings::{self, check_int, ConfigError, Range};
use crate::signature::TrustedKeys;

/// Where the service lives unless configured otherwise.
pub const DEFAULT_BASE_URL: &str = "https://numbers.online";
/// Environment variables the configuration reads.
pub const ENV_API_KEY: &str = "NUMBERS_ONLINE_API_KEY";
pub const ENV_BASE_URL: &str = "NOL_BASE_URL";
pub const ENV_PUBLIC_KEY: &str = "NOL_PUBLIC_KEY";

/// An API key. It is never printed: `Debug` shows `ApiKey(<redacted>)` and no error message
/// carries it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Visible ASCII only (it goes into an HTTP header as it is); surrounding whitespace is
    /// dropped.
    pub fn new(key: impl Into<String>) -> Result<ApiKey, ConfigError> {
        let key = key.into().trim().to_string();
        if key.is_empty() {
            return Err(ConfigError::MissingApiKey);
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError::InvalidApiKey);
        }
        Ok(ApiKey(key))
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// Circuit breaker settings: after `failures` failures in a row, fail open at once for
/// `cool_down`, then let one probe through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerConfig {
    pub failures: u32,
    pub cool_down: Duration,
}

impl Default for BreakerConfig {
    fn default() -> BreakerConfig {
        BreakerConfig {
            failures: 5,
            cool_down: Duration::from_secs(5),
        }
    }
}

/// Everything a [`Client`](super::Client) is made from. Fields may be set directly (Rust) or
/// through the setters (every binding); either way `Client::new` checks every value against
/// [`crate::settings::SETTINGS`].
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub api_key: Option<ApiKey>,
    pub base_url: String,
    pub public_keys: TrustedKeys,
    /// The whole time a lookup may take, counted from the host's call.
    pub budget: Duration,
    /// Cached answers (entries); 0 turns the cache off.
    pub cache_size: u64,
    pub policy: Policy,
    /// Country for national-form calling numbers (ISO 3166, e.g. `US`).
    pub default_country: Option<String>,
    /// Workers, and so the most requests (and connections) in flight at once.
    pub max_in_flight: usize,
    /// `None` turns the circuit breaker off.
    pub breaker: Option<BreakerConfig>,
    /// Client-side limit on requests per minute (60 on the free tier); `None` for no limit.
    pub rate_limit_per_minute: Option<u32>,
    /// A blocking lookup that must ask the service sends the request from the calling thread
    /// (which waits anyway) instead of handing it to a worker and waiting for the hand-back:
    /// two thread wake-ups fewer per fresh lookup. Every step of a request is bounded by the
    /// deadline either way (ureq's timeouts, the bounded resolver), and the request still
    /// counts against `max_in_flight`. `false` keeps every request on a worker (the design
    /// `bench/fresh` compares it with).
    pub inline_requests: bool,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            api_key: None,
            base_url: DEFAULT_BASE_URL.to_string(),
            public_keys: TrustedKeys::default(),
            budget: Duration::from_millis(400),
            cache_size: 10_000,
            policy: Policy::default(),
            default_country: None,
            max_in_flight: 32,
            breaker: Some(BreakerConfig::default()),
            rate_limit_per_minute: None,
            inline_requests: true,
        }
    }
}

/// Milliseconds of a duration, saturating.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl ClientConfig {
    /// Defaults, with the API key from `NUMBERS_ONLINE_API_KEY`, the base URL from
    /// `NOL_BASE_URL` and the trusted key from the PEM file `NOL_PUBLIC_KEY` names, where set.
    pub fn from_env() -> Result<ClientConfig, ConfigError> {
        let mut config = ClientConfig::default();
        config.apply_env()?;
        Ok(config)
    }

    /// Fills what is unset from the environment (an explicit setting wins).
    pub fn apply_env(&mut self) -> Result<(), ConfigError> {
        if self.api_key.is_none() {
            if let Ok(key) = std::env::var(ENV_API_KEY) {
                if !key.trim().is_empty() {
                    self.api_key = Some(ApiKey::new(key)?);
                }
            }
        }
        if self.base_url == DEFAULT_BASE_URL {
            if let Ok(url) = std::env::var(ENV_BASE_URL) {
                if !url.trim().is_empty() {
                    self.base_url = url.trim().to_string();
                }
            }
        }
        if self.public_keys.is_empty() {
            if let Ok(path) = std::env::var(ENV_PUBLIC_KEY) {
                if !path.trim().is_empty() {
                    let pem = std::fs::read_to_string(path.trim())
                        .map_err(|e| ConfigError::PublicKeyFile(format!("{}: {e}", path.trim())))?;
                    self.public_keys = TrustedKeys::from_pem(&pem)?;
                }
            }
        }
        Ok(())
    }

    pub fn set_api_key(&mut self, key: &str) -> Result<(), ConfigError> {
        self.api_key = Some(ApiKey::new(key)?);
        Ok(())
    }

    /// Checked at once (see [`check_base_url`]).
    pub fn set_base_url(&mut self, url: &str) -> Result<(), ConfigError> {
        self.base_url = check_base_url(url)?;
        Ok(())
    }

    /// Every `PUBLIC KEY` block of the PEM text is trusted; replaces earlier keys.
    pub fn set_public_key_pem(&mut self, pem: &str) -> Result<(), ConfigError> {
        self.public_keys = TrustedKeys::from_pem(pem)?;
        Ok(())
    }

    pub fn set_budget_ms(&mut self, ms: u64) -> Result<(), ConfigError> {
        let ms = check_int("budget_ms", settings::BUDGET_MS, ms)?;
        self.budget = Duration::from_millis(ms);
        Ok(())
    }

    pub fn set_cache_size(&mut self, entries: u64) -> Result<(), ConfigError> {
        self.cache_size = check_int("cache_size", settings::CACHE_SIZE, entries)?;
        Ok(())
    }

    pub fn set_max_in_flight(&mut self, n: u64) -> Result<(), ConfigError> {
        self.max_in_flight = check_int("max_in_flight", settings::MAX_IN_FLIGHT, n)? as usize;
        Ok(())
    }

    /// An ISO 3166 alpha-2 code libnol knows, or `None` for international forms only. An empty
    /// code is refused (it is not a way to clear the setting).
    pub fn set_default_country(&mut self, country: Option<&str>) -> Result<(), ConfigError> {
        self.default_country = match country {
            None => None,
            Some(c) => Some(check_country(c)?),
        };
        Ok(())
    }

    /// Turns the circuit breaker on (with the current or default thresholds) or off.
    pub fn set_circuit_breaker(&mut self, on: bool) {
        self.breaker = match (on, self.breaker) {
            (false, _) => None,
            (true, Some(b)) => Some(b),
            (true, None) => Some(BreakerConfig::default()),
        };
    }

    /// Failures in a row that open the breaker (turns it on).
    pub fn set_breaker_failures(&mut self, n: u64) -> Result<(), ConfigError> {
        let n = check_int("breaker_failures", settings::BREAKER_FAILURES, n)?;
        self.breaker
            .get_or_insert_with(BreakerConfig::default)
            .failures = n as u32;
        Ok(())
    }

    /// How long an open breaker fails open before a probe (turns it on).
    pub fn set_breaker_cool_down_ms(&mut self, ms: u64) -> Result<(), ConfigError> {
        let ms = check_int("breaker_cool_down_ms", settings::BREAKER_COOL_DOWN_MS, ms)?;
        self.breaker
            .get_or_insert_with(BreakerConfig::default)
            .cool_down = Duration::from_millis(ms);
        Ok(())
    }

    /// Lookups per minute; 0 for no limit.
    pub fn set_rate_limit_per_minute(&mut self, n: u64) -> Result<(), ConfigError> {
        let n = check_int("rate_limit_per_minute", settings::RATE_LIMIT_PER_MINUTE, n)?;
        self.rate_limit_per_minute = (n > 0).then_some(n as u32);
        Ok(())
    }

    /// Sets one setting by its name from text: how hosts with configuration files (Kamailio
    /// module parameters, Asterisk `nol.conf`, `nol --set`) reach the same checks as typed
    /// setters. Policy settings (`risk_tag`, `block`, ...) go to [`Policy::set`].
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let range = settings::setting(name)
            .map(|s| s.range)
            .ok_or_else(|| ConfigError::UnknownSetting(name.chars().take(64).collect()))?;
        let int = |setting: &'static str| settings::parse_int(setting, range, value);
        match name {
            "api_key" => self.set_api_key(value),
            "base_url" => self.set_base_url(value),
            "public_key_pem" => self.set_public_key_pem(value),
            "budget_ms" => self.set_budget_ms(int("budget_ms")?),
            "cache_size" => self.set_cache_size(int("cache_size")?),
            "max_in_flight" => self.set_max_in_flight(int("max_in_flight")?),
            "default_country" => self.set_default_country(Some(value)),
            "circuit_breaker" => {
                self.set_circuit_breaker(settings::parse_flag("circuit_breaker", value)?);
                Ok(())
            }
            "breaker_failures" => self.set_breaker_failures(int("breaker_failures")?),
            "breaker_cool_down_ms" => self.set_breaker_cool_down_ms(int("breaker_cool_down_ms")?),
            "rate_limit_per_minute" => {
                self.set_rate_limit_per_minute(int("rate_limit_per_minute")?)
            }
            _ => self.policy.set(name, value),
        }
    }

    /// Checks every value against its range: what `Client::new` runs, so that a configuration
    /// built field by field meets the same rules as one built through the setters. Returns the
    /// base URL as requests will use it.
    pub fn validate(&self) -> Result<String, ConfigError> {
        let base = check_base_url(&self.base_url)?;
        if self.budget < Duration::from_millis(1) {
            return Err(ConfigError::OutOfRange {
                setting: "budget_ms",
                value: format!("{:?}", self.budget),
                range: settings::BUDGET_MS,
            });
        }
        check_int("budget_ms", settings::BUDGET_MS, millis(self.budget))?;
        check_int("cache_size", settings::CACHE_SIZE, self.cache_size)?;
        check_int(
            "max_in_flight",
            settings::MAX_IN_FLIGHT,
            self.max_in_flight as u64,
        )?;
        if let Some(c) = &self.default_country {
            check_country(c)?;
        }
        if let Some(b) = &self.breaker {
            check_int(
                "breaker_failures",
                settings::BREAKER_FAILURES,
                b.failures.into(),
            )?;
            check_int(
                "breaker_cool_down_ms",
                settings::BREAKER_COOL_DOWN_MS,
                millis(b.cool_down),
            )?;
        }
        if let Some(n) = self.rate_limit_per_minute {
            check_int(
                "rate_limit_per_minute",
                Range::Int {
                    min: 1,
                    max: 1_000_000,
                },
                n.into(),
            )?;
        }
        self.policy.validate()?;
        Ok(base)
    }
}

fn check_country(country: &str) -> Result<String, ConfigError> {
    let c = country.trim();
    let bad = || ConfigError::InvalidDefaultCountry(country.chars().take(16).collect());
    if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(bad());
    }
    match E164::parse("+14155551212", Some(c)) {
        Err(e164::E164Error::UnknownRegion(_)) => Err(bad()),
        _ => Ok(c.to_ascii_uppercase()),
    }
}

/// Checks a base URL: `https://host[:port]`, or `http://` to loopback only, with at most a
/// trailing `/`. Refused: a path, credentials (`user:pw@`), a query or fragment, whitespace, a
/// port outside 1..=65535. The error says why without repeating the URL (it may hold a secret).
pub fn check_base_url(url: &str) -> Result<String, ConfigError> {
    let bad = |why: &str| ConfigError::InvalidBaseUrl(why.to_string());
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("it has whitespace or control characters"));
    }
    let url = url.strip_suffix('/').unwrap_or(url);
    let Some((scheme, authority)) = url.split_once("://") else {
        return Err(bad("it is not an http:// or https:// URL"));
    };
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return Err(bad("it is not an http:// or https:// URL"));
    }
    if authority.contains('@') {
        return Err(bad(
            "it has credentials (user:password@); set api_key instead",
        ));
    }
    if authority.contains(['?', '#']) {
        return Err(bad("it has a query or fragment"));
    }
    if authority.contains('/') {
        return Err(bad("it has a path (give only scheme, host and port)"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad("not an IPv6 address inside [ ]"));
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ]"))?),
        };
        (host, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad("it has no host"));
    }
    if !authority.starts_with('[')
        && !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err(bad("the host has characters a host name cannot have"));
    }
    if let Some(p) = port {
        let ok = !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| (1..=65_535).contains(&n));
        if !ok {
            return Err(bad("the port is not within 1..=65535"));
        }
    }
    if scheme == "http" {
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            return Err(ConfigError::InsecureBaseUrl(host.to_string()));
        }
    }
    Ok(format!("{scheme}://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert_eq!(
            check_base_url("https://numbers.online").as_deref(),
            Ok("https://numbers.online")
        );
        assert!(check_base_url("https://numbers.online/").is_ok());
        assert!(check_base_url("http://127.0.0.1:8080").is_ok());
        assert!(check_base_url("http://localhost:1").is_ok());
        assert!(check_base_url("http://[::1]:9").is_ok());
        assert!(check_base_url("https://numbers.online:65535").is_ok());
        assert_eq!(
            check_base_url("http://numbers.online"),
            Err(ConfigError::InsecureBaseUrl("numbers.online".into()))
        );
        for bad in [
            "ftp://x",
            "numbers.online",
            "https://",
            "http://127.0.0.1:99999",
            "http://127.0.0.1:0",
            "http://127.0.0.1:",
            "http://127.0.0.1:8080/api",
            " http://127.0.0.1:8080",
            "http://127.0.0.1:8080 ",
            "https://host_name",
            "http://[::1",
        ] {
            assert!(
                matches!(check_base_url(bad), Err(ConfigError::InvalidBaseUrl(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_refused_url_never_repeats_its_secret() {
        for url in [
            "https://user:hunter2secret@numbers.online",
            "https://numbers.online?key=hunter2secret",
            "https://numbers.online/#hunter2secret",
            "https://numbers.online/hunter2secret",
            "ftp://hunter2secret",
        ] {
            let e = check_base_url(url).unwrap_err();
            assert!(!e.to_string().contains("hunter2secret"), "{e}");
            assert!(!format!("{e:?}").contains("hunter2secret"), "{e:?}");
        }
    }

    #[test]
    fn api_key_is_never_printed() {
        let key = ApiKey::new("sk_live_supersecret").unwrap();
        assert!(!format!("{key:?}").contains("supersecret"));
        let config = ClientConfig {
            api_key: Some(key),
            ..ClientConfig::default()
        };
        assert!(!format!("{config:?}").contains("supersecret"));
        assert_eq!(ApiKey::new("a b"), Err(ConfigError::InvalidApiKey));
        assert_eq!(ApiKey::new("clé"), Err(ConfigError::InvalidApiKey));
        assert_eq!(ApiKey::new(" "), Err(ConfigError::MissingApiKey));
    }

    #[test]
    fn setters_and_named_settings_share_one_set_of_ranges() {
        let mut c = ClientConfig::default();
        assert!(c.set_budget_ms(0).is_err());
        assert!(c.set("budget_ms", "60001").is_err());
        c.set("budget_ms", "60000").unwrap();
        assert_eq!(c.budget, Duration::from_secs(60));
        c.set("rate_limit_per_minute", "60").unwrap();
        assert_eq!(c.rate_limit_per_minute, Some(60));
        c.set("rate_limit_per_minute", "0").unwrap();
        assert_eq!(c.rate_limit_per_minute, None);
        c.set("circuit_breaker", "off").unwrap();
        assert_eq!(c.breaker, None);
        c.set("breaker_cool_down_ms", "250").unwrap();
        assert_eq!(c.breaker.unwrap().cool_down, Duration::from_millis(250));
        assert!(c.set("default_country", "").is_err());
        assert!(c.set("default_country", "ZZ").is_err());
        c.set("default_country", "gb").unwrap();
        assert_eq!(c.default_country.as_deref(), Some("GB"));
        c.set("route_advance_code", "404").unwrap();
        assert!(c.set("route_advance_code", "480").is_err());
        assert!(matches!(
            c.set("no_such", "1"),
            Err(ConfigError::UnknownSetting(_))
        ));
        // Every named setting in the table is reachable by name.
        for s in crate::settings::SETTINGS {
            let e = ClientConfig::default().set(s.name, "\u{1}");
            assert!(
                !matches!(e, Err(ConfigError::UnknownSetting(_))),
                "{}",
                s.name
            );
        }
    }

    #[test]
    fn validate_checks_fields_set_directly() {
        let mut c = ClientConfig {
            budget: Duration::MAX,
            ..ClientConfig::default()
        };
        assert!(matches!(
            c.validate(),
            Err(ConfigError::OutOfRange {
                setting: "budget_ms",
                ..
            })
        ));
        c.budget = Duration::from_millis(400);
        c.breaker = Some(BreakerConfig {
            failures: 1,
            cool_down: Duration::MAX,
        });
        assert!(c.validate().is_err());
        c.breaker = None;
        c.policy.screening_contact = Some(String::new());
        assert!(c.validate().is_err());
    }
}
