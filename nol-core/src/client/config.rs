//! What a [`Client`](super::Client) is made from: the configuration, its setters (every range
//! from [`crate::settings`]), the environment, and the checks `Client::new` runs on the whole.

use std::fmt;
use std::path::PathBuf;
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
    /// The shared cache tier: a Redis (or the nodes of a Redis Cluster) that every libnol
    /// client of a cluster reads and writes verified answers in; `None` (the default) for none.
    /// Needs the `redis` cargo feature.
    pub redis_url: Option<RedisUrl>,
    /// Put before every key libnol writes in Redis.
    pub redis_key_prefix: String,
    /// The most a lookup spends on Redis, within its own budget.
    pub redis_budget: Duration,
    /// A PEM file whose certificates, when set, are the only roots trusted for the service (a
    /// private deployment, tests against the sandbox's own CA); `None` trusts the public
    /// (webpki) roots. Read when set through [`ClientConfig::set_tls_ca_file`] and again by
    /// `Client::new`: a file that cannot be read or holds no usable certificate is a
    /// [`ConfigError::TlsCaFile`].
    pub tls_ca_file: Option<PathBuf>,
    /// At `Client::new`, at most this long spent resolving, connecting and completing the TLS
    /// handshake with the service (`HEAD /`: no key, no lookup, nothing metered), leaving the
    /// connection in the pool so that the first lookup costs what the thousandth does. A
    /// warm-up that fails or runs out of time is ignored. Zero (the default) turns it off.
    pub warm_up: Duration,
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
            redis_url: None,
            redis_key_prefix: DEFAULT_REDIS_KEY_PREFIX.to_string(),
            redis_budget: Duration::from_millis(20),
            tls_ca_file: None,
            warm_up: Duration::ZERO,
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

    /// Trusts only the certificates of this PEM file for the service; read and checked at once
    /// (and again by `Client::new`).
    pub fn set_tls_ca_file(&mut self, path: &str) -> Result<(), ConfigError> {
        let path = path.trim();
        if path.is_empty() {
            return Err(ConfigError::InvalidValue {
                setting: "tls_ca_file",
                reason: "empty",
            });
        }
        let path = PathBuf::from(path);
        super::http::tls_roots(&path)?;
        self.tls_ca_file = Some(path);
        Ok(())
    }

    /// The longest warm-up at `Client::new`; 0 for none.
    pub fn set_warm_up_ms(&mut self, ms: u64) -> Result<(), ConfigError> {
        let ms = check_int("warm_up_ms", settings::WARM_UP_MS, ms)?;
        self.warm_up = Duration::from_millis(ms);
        Ok(())
    }

    /// The shared cache tier's Redis (see [`RedisUrl::new`]). Refused when libnol was built
    /// without the `redis` cargo feature.
    pub fn set_redis_url(&mut self, url: &str) -> Result<(), ConfigError> {
        self.redis_url = Some(RedisUrl::new(url)?);
        Ok(())
    }

    /// Put before every key libnol writes in Redis: visible ASCII, no `{` or `}` (they would
    /// change a Redis Cluster hash tag), 1 to 64 bytes.
    pub fn set_redis_key_prefix(&mut self, prefix: &str) -> Result<(), ConfigError> {
        self.redis_key_prefix = check_redis_key_prefix(prefix)?;
        Ok(())
    }

    /// The most a lookup spends on Redis (1..=1000 ms).
    pub fn set_redis_budget_ms(&mut self, ms: u64) -> Result<(), ConfigError> {
        let ms = check_int("redis_budget_ms", settings::REDIS_BUDGET_MS, ms)?;
        self.redis_budget = Duration::from_millis(ms);
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
            "tls_ca_file" => self.set_tls_ca_file(value),
            "warm_up_ms" => self.set_warm_up_ms(int("warm_up_ms")?),
            "redis_url" => self.set_redis_url(value),
            "redis_key_prefix" => self.set_redis_key_prefix(value),
            "redis_budget_ms" => self.set_redis_budget_ms(int("redis_budget_ms")?),
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
        if let Some(path) = &self.tls_ca_file {
            super::http::tls_roots(path)?;
        }
        check_int("warm_up_ms", settings::WARM_UP_MS, millis(self.warm_up))?;
        if let Some(url) = &self.redis_url {
            RedisUrl::new(&url.expose())?;
        }
        check_redis_key_prefix(&self.redis_key_prefix)?;
        if self.redis_budget < Duration::from_millis(1) {
            return Err(ConfigError::OutOfRange {
                setting: "redis_budget_ms",
                value: format!("{:?}", self.redis_budget),
                range: settings::REDIS_BUDGET_MS,
            });
        }
        check_int(
            "redis_budget_ms",
            settings::REDIS_BUDGET_MS,
            millis(self.redis_budget),
        )?;
        self.policy.validate()?;
        Ok(base)
    }
}

/// The default of `redis_key_prefix`.
pub const DEFAULT_REDIS_KEY_PREFIX: &str = "nol:";

/// Why a `redis_url` is refused: the reason only, never the URL (it may hold a password).
fn bad_redis_url(reason: &'static str) -> ConfigError {
    ConfigError::InvalidValue {
        setting: "redis_url",
        reason,
    }
}

/// The Redis of the shared cache tier: `redis://[user:password@]host[:port][/db]`, `rediss://`
/// for TLS, or several such URLs separated by commas, the nodes of one Redis Cluster (each
/// `rediss://` or none, database 0). The password (the whole `user:password@` part) is never
/// printed: `Debug` shows `<redacted>` in its place, and no error message repeats the URL.
/// Redis Sentinel, Unix sockets and URL options (`?…`, `#…`) are not taken.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    urls: Vec<String>,
    /// The URLs with their credentials replaced.
    shown: String,
}

impl RedisUrl {
    /// Checks a `redis_url`. Refused, with the reason and without the URL, when libnol was
    /// built without the `redis` cargo feature.
    pub fn new(text: &str) -> Result<RedisUrl, ConfigError> {
        if !cfg!(feature = "redis") {
            return Err(bad_redis_url(
                "libnol was built without Redis (the `redis` cargo feature)",
            ));
        }
        let text = text.trim();
        if text.is_empty() {
            return Err(bad_redis_url("empty"));
        }
        if text.len() > settings::MAX_REDIS_URL_LEN {
            return Err(bad_redis_url("longer than 2048 bytes"));
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad_redis_url("it has whitespace or control characters"));
        }
        let mut urls = Vec::new();
        let mut shown = Vec::new();
        let mut tls = None;
        for url in text.split(',') {
            let (scheme, redacted) = check_one_redis_url(url)?;
            if *tls.get_or_insert(scheme) != scheme {
                return Err(bad_redis_url(
                    "the nodes of a Redis Cluster are all rediss:// or all redis://",
                ));
            }
            urls.push(url.to_string());
            shown.push(redacted);
        }
        if urls.len() > 64 {
            return Err(bad_redis_url("more than 64 Redis Cluster nodes"));
        }
        if urls.len() > 1 && urls.iter().any(|u| redis_db(u).is_some_and(|db| db != "0")) {
            return Err(bad_redis_url("Redis Cluster has only database 0"));
        }
        Ok(RedisUrl {
            urls,
            shown: shown.join(","),
        })
    }

    /// The URL(s) as given, credentials included: only for connecting.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn urls(&self) -> &[String] {
        &self.urls
    }

    pub(crate) fn expose(&self) -> String {
        self.urls.join(",")
    }

    /// Several nodes: a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.urls.len() > 1
    }

    /// The URL(s) with `<redacted>` for their credentials: fit to print.
    pub fn redacted(&self) -> &str {
        &self.shown
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({:?})", self.shown)
    }
}

/// The database part of a checked URL (`/N`), if any.
fn redis_db(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (_, path) = rest.split_once('/')?;
    (!path.is_empty()).then_some(path)
}

/// One node's URL: whether it is TLS, and the URL with its credentials redacted.
fn check_one_redis_url(url: &str) -> Result<(bool, String), ConfigError> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(bad_redis_url("it is not a redis:// or rediss:// URL"));
    };
    let tls = match scheme.to_ascii_lowercase().as_str() {
        "redis" => false,
        "rediss" => true,
        s if s.contains("sentinel") => {
            return Err(bad_redis_url(
                "Redis Sentinel is not supported: give the primary's address, or a Redis Cluster's nodes",
            ))
        }
        _ => return Err(bad_redis_url("it is not a redis:// or rediss:// URL")),
    };
    if rest.contains(['?', '#']) {
        return Err(bad_redis_url(
            "it has a query or fragment (libnol sets the connection's options itself; percent-encode `?`, `#`, `/` and `@` in a password)",
        ));
    }
    let (authority, path) = match rest.split_once('/') {
        Some((a, p)) => (a, p),
        None => (rest, ""),
    };
    let database = path.len() <= 5 && path.bytes().all(|b| b.is_ascii_digit());
    if !database {
        return Err(bad_redis_url(
            "the path is not a database number (`/0`, `/1`, ...)",
        ));
    }
    let (credentials, host_port) = match authority.rsplit_once('@') {
        Some((c, h)) => (Some(c), h),
        None => (None, authority),
    };
    if credentials.is_some_and(str::is_empty) {
        return Err(bad_redis_url("it has an empty user:password@ part"));
    }
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| bad_redis_url("unclosed ["))?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad_redis_url("not an IPv6 address inside [ ]"));
        }
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| bad_redis_url("junk after ]"))?,
            ),
        };
        (host, port)
    } else {
        match host_port.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err(bad_redis_url("it has no host"));
    }
    if !host_port.starts_with('[')
        && !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    {
        return Err(bad_redis_url(
            "the host has characters a host name cannot have",
        ));
    }
    if let Some(p) = port {
        let ok = !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| (1..=65_535).contains(&n));
        if !ok {
            return Err(bad_redis_url("the port is not within 1..=65535"));
        }
    }
    let scheme = if tls { "rediss" } else { "redis" };
    let at = if credentials.is_some() {
        "<redacted>@"
    } else {
        ""
    };
    let db = if path.is_empty() {
        String::new()
    } else {
        format!("/{path}")
    };
    Ok((tls, format!("{scheme}://{at}{host_port}{db}")))
}

/// A `redis_key_prefix`: visible ASCII without `{` or `}`, 1 to 64 bytes.
fn check_redis_key_prefix(prefix: &str) -> Result<String, ConfigError> {
    let bad = |reason| ConfigError::InvalidValue {
        setting: "redis_key_prefix",
        reason,
    };
    if prefix.is_empty() {
        return Err(bad("empty"));
    }
    if prefix.len() > settings::MAX_REDIS_KEY_PREFIX_LEN {
        return Err(bad("longer than 64 bytes"));
    }
    if !prefix.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad(
            "not visible ASCII (spaces, control characters or non-ASCII)",
        ));
    }
    if prefix.contains(['{', '}']) {
        return Err(bad(
            "it has `{` or `}` (they would change the Redis Cluster hash tag)",
        ));
    }
    Ok(prefix.to_string())
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
    fn redis_settings() {
        let mut c = ClientConfig::default();
        assert_eq!(c.redis_key_prefix, "nol:");
        assert_eq!(c.redis_budget, Duration::from_millis(20));
        c.set("redis_budget_ms", "1").unwrap();
        c.set("redis_budget_ms", "1000").unwrap();
        assert!(c.set("redis_budget_ms", "0").is_err());
        assert!(c.set("redis_budget_ms", "1001").is_err());
        c.set("redis_key_prefix", "libnol:prod:").unwrap();
        c.set("redis_key_prefix", &"p".repeat(64)).unwrap();
        for bad in [
            "",
            "a b",
            "tag{x}:",
            "tag}",
            "clé:",
            "\u{1}",
            &"p".repeat(65),
        ] {
            assert!(c.set("redis_key_prefix", bad).is_err(), "{bad:?}");
        }
        c.redis_budget = Duration::ZERO;
        assert!(c.validate().is_err());
        c.redis_budget = Duration::from_millis(20);
        c.redis_key_prefix = "{bad}".into();
        assert!(c.validate().is_err());
    }

    #[cfg(feature = "redis")]
    #[test]
    fn redis_urls_are_checked_and_their_credentials_never_printed() {
        let url = RedisUrl::new("redis://:hunter2secret@cache.example:6380/2").unwrap();
        assert!(!url.is_cluster());
        assert_eq!(url.redacted(), "redis://<redacted>@cache.example:6380/2");
        assert!(!format!("{url:?}").contains("hunter2secret"));
        let cluster = RedisUrl::new(
            "rediss://u:hunter2secret@10.0.0.1:7000,rediss://u:hunter2secret@[::1]:7001",
        )
        .unwrap();
        assert!(cluster.is_cluster());
        assert_eq!(cluster.urls().len(), 2);
        assert!(!format!("{cluster:?}").contains("hunter2secret"));
        for ok in [
            "redis://localhost",
            "REDIS://h_1:1/0",
            "rediss://h",
            "redis://[::1]:6379",
        ] {
            assert!(RedisUrl::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "localhost:6379",
            "unix:///run/redis.sock",
            "redis+sentinel://:hunter2secret@h:26379/mymaster",
            "redis://:hunter2secret@h:0",
            "redis://:hunter2secret@:6379",
            "redis://@h",
            "redis://:hunter2secret@h/x",
            "redis://:hunter2secret@h?db=1",
            "redis://:hunter2secret@h,",
            "redis://h:1/1,redis://h:2/1",
            "redis://h:1,rediss://h:2",
        ] {
            let e = RedisUrl::new(bad).unwrap_err();
            assert!(!e.to_string().contains("hunter2secret"), "{e}");
            assert!(!format!("{e:?}").contains("hunter2secret"), "{e:?}");
        }
        let mut c = ClientConfig::default();
        c.set("redis_url", "redis://:hunter2secret@h:6379").unwrap();
        assert!(!format!("{c:?}").contains("hunter2secret"));
        assert!(c.validate().is_ok());
    }

    #[cfg(not(feature = "redis"))]
    #[test]
    fn without_the_feature_redis_url_is_refused() {
        let e = ClientConfig::default()
            .set("redis_url", "redis://:hunter2secret@h:6379")
            .unwrap_err();
        assert!(e.to_string().contains("built without Redis"), "{e}");
        assert!(!e.to_string().contains("hunter2secret"));
        // The other two settings are plain numbers and text: accepted, unused.
        ClientConfig::default()
            .set("redis_budget_ms", "50")
            .unwrap();
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
