//! `nol_core::settings`: the one table of settings and ranges, as `SETTINGS`, and the Node
//! option each setting is given as. Every range check is nol-core's: numbers from JavaScript
//! go through nol-core's `check_number` and setters; nothing here compares a value to a bound.

use napi::bindgen_prelude::ToNapiValue;
use napi::sys;
use napi_derive::napi;
use nol_core::settings::{self, Range};

/// Where a setting goes in `new Client({...})`: its camelCase name, under `policy` for the
/// policy's settings and under `circuitBreaker` for the breaker's thresholds.
pub fn option_name(setting: &str) -> String {
    match setting {
        "breaker_failures" => "circuitBreaker.failures".into(),
        "breaker_cool_down_ms" => "circuitBreaker.coolDownMs".into(),
        "risk_tag" | "risk_threshold" | "block" | "screening_contact" | "max_name_len"
        | "route_advance_code" => format!("policy.{}", camel(setting)),
        other => camel(other),
    }
}

/// `max_in_flight` → `maxInFlight`.
fn camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// One row of [`SETTINGS`].
#[napi(object, use_nullable = true, object_from_js = false)]
pub struct Setting {
    /// The setting's name in every binding, config file and `nol --set` (snake_case).
    pub name: String,
    /// The same name in camelCase.
    pub camel_name: String,
    /// Where it goes in `new Client({...})`, e.g. `budgetMs`, `policy.maxNameLen`,
    /// `circuitBreaker.failures`.
    pub option: String,
    /// `int` (an integer within `min`..=`max`), `oneOf` (one of `values`), `flag` or `text`.
    #[napi(ts_type = "'int' | 'oneOf' | 'flag' | 'text'")]
    pub kind: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub values: Option<Vec<f64>>,
    /// The default, as text (`unset` when there is none; an environment variable's name where
    /// the environment supplies it).
    pub default: String,
    pub doc: String,
}

impl From<&settings::Setting> for Setting {
    fn from(s: &settings::Setting) -> Setting {
        let (kind, min, max, values) = match s.range {
            Range::Int { min, max } => ("int", Some(min as f64), Some(max as f64), None),
            Range::OneOf(values) => (
                "oneOf",
                None,
                None,
                Some(values.iter().map(|v| *v as f64).collect()),
            ),
            Range::Flag => ("flag", None, None, None),
            Range::Text => ("text", None, None, None),
        };
        Setting {
            name: s.name.to_string(),
            camel_name: camel(s.name),
            option: option_name(s.name),
            kind: kind.to_string(),
            min,
            max,
            values,
            default: s.default.to_string(),
            doc: s.doc.to_string(),
        }
    }
}

/// nol-core's settings table, made into JavaScript objects when the module loads.
pub struct SettingsTable;

impl ToNapiValue for SettingsTable {
    unsafe fn to_napi_value(env: sys::napi_env, _: Self) -> napi::Result<sys::napi_value> {
        // Made while the module loads, outside any `#[napi(catch_unwind)]` export.
        let rows = std::panic::catch_unwind(|| {
            settings::SETTINGS
                .iter()
                .map(Setting::from)
                .collect::<Vec<Setting>>()
        })
        .map_err(napi::bindgen_prelude::panic_to_error)?;
        unsafe { Vec::<Setting>::to_napi_value(env, rows) }
    }
}

/// The TypeScript type of [`SETTINGS`] (the Rust constant is [`SettingsTable`]).
mod ts {
    #![allow(dead_code)]
    use napi_derive::napi;

    #[napi]
    pub type SettingsTable = Vec<super::Setting>;
}

/// Every setting libnol takes, with its range and default: nol-core's one table (the same in C,
/// Python, Kamailio and the `nol` command). Numbers must be integers within `min`..=`max` (or
/// one of `values`); anything else throws `ERR_NOL_INVALID_ARG`.
#[napi]
pub const SETTINGS: SettingsTable = SettingsTable;
