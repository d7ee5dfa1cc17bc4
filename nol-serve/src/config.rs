//! `nol serve`'s configuration: a TOML file, environment variables and flags.
//!
//! ```toml
//! listen = "127.0.0.1:8088"          # loopback by default
//!
//! [settings]                          # the settings table's names (`nol settings`), for every tenant
//! budget_ms = 400
//! risk_tag = "SPAM?"
//! public_key_file = "/etc/nol/inbound_public.pem"   # or public_key_pem = "-----BEGIN ..."
//! redis_url = "redis://:password@10.0.0.5:6379/0"  # the cluster's shared cache (optional)
//!
//! [[tenant]]
//! name = "acme"                       # shown in /metrics; never a secret
//! token = "local-token-for-acme"      # or token_env = "ACME_NOL_TOKEN"
//! api_key_env = "ACME_NOL_KEY"        # or api_key = "..."
//! [tenant.settings]                   # this tenant's own settings (win over [settings])
//! risk_threshold = 80
//! ```
//!
//! Without a `[[tenant]]`, one tenant comes from the environment: the upstream key from
//! `NUMBERS_ONLINE_API_KEY` and the local token from `NOL_SERVE_TOKEN`.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use nol_core::ClientConfig;

/// The local token's environment variable (single-tenant case).
pub const ENV_TOKEN: &str = "NOL_SERVE_TOKEN";
/// The default listening address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8088";
/// Retell's inbound webhook must be answered within 10 s: libnol's answer comes well before.
pub const RETELL_BUDGET: Duration = Duration::from_millis(9_000);
/// Vapi's tool calls have 7.5 s.
pub const VAPI_BUDGET: Duration = Duration::from_millis(7_000);
/// Shortest local token accepted.
pub const MIN_TOKEN_LEN: usize = 16;

/// A secret (local token or upstream key): its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// One tenant: a local token that hosts present, and the upstream API key it spends.
#[derive(Clone)]
pub struct TenantConfig {
    /// A label for metrics and logs; never a secret.
    pub name: String,
    pub token: Secret,
    pub api_key: Secret,
    /// This tenant's settings by the settings table's names (after the shared ones).
    pub settings: Vec<(String, String)>,
}

/// Setting names without their values: a value can be a secret (`api_key`, a `redis_url` with
/// a password).
struct SettingNames<'a>(&'a [(String, String)]);

impl fmt::Debug for SettingNames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(name, _)| name))
            .finish()
    }
}

impl fmt::Debug for TenantConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantConfig")
            .field("name", &self.name)
            .field("token", &self.token)
            .field("api_key", &self.api_key)
            .field("settings", &SettingNames(&self.settings))
            .finish()
    }
}

/// Everything `nol serve` runs with.
#[derive(Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    /// Settings for every tenant, by the settings table's names (`public_key_file` too).
    pub settings: Vec<(String, String)>,
    pub tenants: Vec<TenantConfig>,
    /// The longest a Retell webhook or Vapi tool call waits for its lookup.
    pub retell_budget: Duration,
    pub vapi_budget: Duration,
}

impl fmt::Debug for ServeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServeConfig")
            .field("listen", &self.listen)
            .field("settings", &SettingNames(&self.settings))
            .field("tenants", &self.tenants)
            .field("retell_budget", &self.retell_budget)
            .field("vapi_budget", &self.vapi_budget)
            .finish()
    }
}

impl Default for ServeConfig {
    fn default() -> ServeConfig {
        ServeConfig {
            listen: DEFAULT_LISTEN.parse().expect("a valid default address"),
            settings: Vec::new(),
            tenants: Vec::new(),
            retell_budget: RETELL_BUDGET,
            vapi_budget: VAPI_BUDGET,
        }
    }
}

/// A configuration that cannot be used; the text never carries a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeError(pub String);

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ServeError {}

fn err(text: impl Into<String>) -> ServeError {
    ServeError(text.into())
}

/// A TOML value as the text `ClientConfig::set` takes.
fn setting_text(name: &str, value: &toml::Value) -> Result<String, ServeError> {
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        _ => Err(err(format!(
            "setting {name}: expected text, an integer or true/false"
        ))),
    }
}

fn settings_table(table: Option<&toml::Value>) -> Result<Vec<(String, String)>, ServeError> {
    let Some(table) = table else {
        return Ok(Vec::new());
    };
    let table = table
        .as_table()
        .ok_or_else(|| err("[settings] must be a table"))?;
    table
        .iter()
        .map(|(k, v)| Ok((k.clone(), setting_text(k, v)?)))
        .collect()
}

/// A secret from `NAME` or the environment variable `NAME_env`.
fn secret(table: &toml::Table, name: &str, what: &str) -> Result<Secret, ServeError> {
    if let Some(v) = table.get(name) {
        let v = v
            .as_str()
            .ok_or_else(|| err(format!("{what}: {name} must be text")))?;
        return Ok(Secret::new(v.trim()));
    }
    let env_name = format!("{name}_env");
    let Some(var) = table.get(&env_name).and_then(toml::Value::as_str) else {
        return Err(err(format!("{what}: {name} or {env_name} is required")));
    };
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Ok(Secret::new(v.trim())),
        _ => Err(err(format!(
            "{what}: the environment variable {var} is not set"
        ))),
    }
}

impl ServeConfig {
    /// Reads a TOML configuration text (see the module's documentation).
    pub fn from_toml(text: &str) -> Result<ServeConfig, ServeError> {
        // toml's errors quote the offending line, which may hold a secret: say only where.
        let doc: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let at = e
                .span()
                .map(|s| {
                    let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                    format!(" (line {line})")
                })
                .unwrap_or_default();
            err(format!("the configuration is not valid TOML{at}"))
        })?;
        let mut config = ServeConfig::default();
        for key in doc.keys() {
            if !["listen", "settings", "tenant"].contains(&key.as_str()) {
                return Err(err(format!("unknown key {key:?} in the configuration")));
            }
        }
        if let Some(listen) = doc.get("listen") {
            let text = listen.as_str().ok_or_else(|| err("listen must be text"))?;
            config.listen = text
                .parse()
                .map_err(|_| err(format!("listen: not an address: {text}")))?;
        }
        config.settings = settings_table(doc.get("settings"))?;
        if let Some(tenants) = doc.get("tenant") {
            let tenants = tenants
                .as_array()
                .ok_or_else(|| err("tenant must be an array of tables ([[tenant]])"))?;
            for (i, t) in tenants.iter().enumerate() {
                let t = t
                    .as_table()
                    .ok_or_else(|| err("each [[tenant]] must be a table"))?;
                let name = t
                    .get("name")
                    .and_then(toml::Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("tenant{}", i + 1));
                let what = format!("tenant {name}");
                config.tenants.push(TenantConfig {
                    token: secret(t, "token", &what)?,
                    api_key: secret(t, "api_key", &what)?,
                    settings: settings_table(t.get("settings"))?,
                    name,
                });
            }
        }
        Ok(config)
    }

    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> Result<ServeConfig, ServeError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(format!("reading {}: {e}", path.display())))?;
        ServeConfig::from_toml(&text)
    }

    /// Without a configured tenant, one from `NUMBERS_ONLINE_API_KEY` and `NOL_SERVE_TOKEN`.
    pub fn apply_env(&mut self) -> Result<(), ServeError> {
        if !self.tenants.is_empty() {
            return Ok(());
        }
        let key = std::env::var(nol_core::client::ENV_API_KEY).unwrap_or_default();
        let token = std::env::var(ENV_TOKEN).unwrap_or_default();
        if key.trim().is_empty() {
            return Err(err(format!(
                "no tenant: configure [[tenant]] in --config, or set {} and {ENV_TOKEN}",
                nol_core::client::ENV_API_KEY
            )));
        }
        if token.trim().is_empty() {
            return Err(err(format!(
                "{ENV_TOKEN} is not set: hosts need a local token (it is not the API key)"
            )));
        }
        self.tenants.push(TenantConfig {
            name: "default".into(),
            token: Secret::new(token.trim()),
            api_key: Secret::new(key.trim()),
            settings: Vec::new(),
        });
        Ok(())
    }

    /// Checks what the client settings cannot: tokens long enough and distinct, a token that
    /// is not an upstream key.
    pub fn check(&self) -> Result<(), ServeError> {
        if self.tenants.is_empty() {
            return Err(err("no tenant configured"));
        }
        for (i, t) in self.tenants.iter().enumerate() {
            if t.token.expose().len() < MIN_TOKEN_LEN {
                return Err(err(format!(
                    "tenant {}: the local token must be at least {MIN_TOKEN_LEN} characters",
                    t.name
                )));
            }
            if self
                .tenants
                .iter()
                .any(|o| o.api_key.expose() == t.token.expose())
            {
                return Err(err(format!(
                    "tenant {}: the local token must not be an upstream API key",
                    t.name
                )));
            }
            if self.tenants[..i]
                .iter()
                .any(|o| o.token.expose() == t.token.expose())
            {
                return Err(err(format!(
                    "tenant {}: two tenants share one local token",
                    t.name
                )));
            }
        }
        Ok(())
    }

    /// The libnol client configuration of one tenant: the environment (`NOL_BASE_URL`,
    /// `NOL_PUBLIC_KEY`), then the shared settings, then the tenant's, then its key.
    pub fn client_config(&self, tenant: &TenantConfig) -> Result<ClientConfig, ServeError> {
        let mut config = ClientConfig::default();
        let what = format!("tenant {}", tenant.name);
        config.set_api_key(tenant.api_key.expose()).map_err(|_| {
            err(format!(
                "{what}: the API key is not valid (visible ASCII, no spaces)"
            ))
        })?;
        config
            .apply_env()
            .map_err(|e| err(format!("{what}: {e}")))?;
        for (name, value) in self.settings.iter().chain(&tenant.settings) {
            apply_setting(&mut config, name, value).map_err(|e| err(format!("{what}: {e}")))?;
        }
        Ok(config)
    }
}

/// One setting by name; `public_key_file` reads the PEM file it names. `api_key` is refused
/// in `[settings]` (each tenant has its own).
fn apply_setting(config: &mut ClientConfig, name: &str, value: &str) -> Result<(), String> {
    match name {
        "api_key" => Err("api_key belongs in [[tenant]] (api_key or api_key_env)".into()),
        "public_key_file" => {
            let pem =
                std::fs::read_to_string(value).map_err(|e| format!("reading {value}: {e}"))?;
            config
                .set_public_key_pem(&pem)
                .map_err(|e| format!("public_key_file: {e}"))
        }
        _ => config.set(name, value).map_err(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tenants_and_settings_without_showing_secrets() {
        let c = ServeConfig::from_toml(
            r#"
listen = "127.0.0.1:9000"
[settings]
budget_ms = 250
circuit_breaker = false
redis_url = "redis://:redis-password@127.0.0.1:6379/0"
[[tenant]]
name = "a"
token = "aaaaaaaaaaaaaaaaaaaa"
api_key = "key-a"
[tenant.settings]
risk_tag = "SPAM?"
"#,
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.settings.len(), 3);
        assert!(!format!("{c:?}").contains("redis-password"));
        assert_eq!(
            c.tenants[0].settings,
            vec![("risk_tag".into(), "SPAM?".into())]
        );
        assert!(!format!("{c:?}").contains("key-a"));
        assert!(!format!("{c:?}").contains("aaaaaaaa"));
        c.check().unwrap();
    }

    #[test]
    fn refuses_short_shared_and_unknown() {
        let short =
            ServeConfig::from_toml("[[tenant]]\ntoken = \"short\"\napi_key = \"k\"\n").unwrap();
        assert!(short.check().is_err());
        let e = ServeConfig::from_toml("listen = \"x\"\nsecret = \"hunter2\"\n").unwrap_err();
        assert!(!e.0.contains("hunter2"), "{e}");
        let bad = ServeConfig::from_toml("token = \"hunter2-secret\n").unwrap_err();
        assert!(!bad.0.contains("hunter2"), "{bad}");
    }
}
