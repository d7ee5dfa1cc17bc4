//! Arguments from Python, with nol's exceptions for the wrong ones.
//!
//! pyo3's own conversions raise a bare `TypeError` or `OverflowError`; these extractors
//! (`#[pyo3(from_py_with = ...)]`) raise `nol.ArgumentTypeError` (a `NolError` and a
//! `TypeError`) for a value of the wrong type and `nol.InvalidSetting` (a `nol.ConfigError` and
//! a `nol.InvalidArgument`) for a setting out of nol-core's range, so that `except nol.NolError` catches every bad
//! argument and `except TypeError` still works. pyo3 notes which argument it was.

use pyo3::exceptions::PyOverflowError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyString};

use nol_core::settings::{self, ConfigError};

use crate::error::{Kind, ToPyErr, ToPyResult};

fn type_name(ob: &Bound<'_, PyAny>) -> String {
    ob.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// `nol.ArgumentTypeError`: expected `what`, got `ob`'s type.
pub(crate) fn wrong_type(what: &str, ob: &Bound<'_, PyAny>) -> PyErr {
    Kind::WrongType.err(format!("expected {what}, not {}", type_name(ob)))
}

pub(crate) fn text(ob: &Bound<'_, PyAny>) -> PyResult<String> {
    match ob.cast::<PyString>() {
        Ok(s) => Ok(s.to_cow()?.into_owned()),
        Err(_) => Err(wrong_type("str", ob)),
    }
}

pub(crate) fn opt_text(ob: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
    if ob.is_none() {
        return Ok(None);
    }
    match ob.cast::<PyString>() {
        Ok(s) => Ok(Some(s.to_cow()?.into_owned())),
        Err(_) => Err(wrong_type("str or None", ob)),
    }
}

pub(crate) fn flag(ob: &Bound<'_, PyAny>) -> PyResult<bool> {
    match ob.cast::<PyBool>() {
        Ok(b) => Ok(b.is_true()),
        Err(_) => Err(wrong_type("bool", ob)),
    }
}

/// An `int` (not a `bool`) for the setting `name`, checked against nol-core's range for it
/// (`nol.InvalidSetting` outside it, negatives and huge numbers included; never
/// `OverflowError`).
pub(crate) fn setting_int(name: &str, ob: &Bound<'_, PyAny>) -> PyResult<u64> {
    let setting = settings::setting(name)
        .ok_or_else(|| ConfigError::UnknownSetting(name.to_string()).to_py_err())?;
    if ob.is_instance_of::<PyBool>() {
        return Err(wrong_type("int", ob));
    }
    let wide: i128 = match ob.extract() {
        Ok(v) => v,
        Err(e) if e.is_instance_of::<PyOverflowError>(ob.py()) => {
            let value = ob.str().map(|s| s.to_string()).unwrap_or_default();
            let range = setting.range;
            return Err(ConfigError::OutOfRange {
                setting: setting.name,
                value: value.chars().take(32).collect(),
                range,
            }
            .to_py_err());
        }
        Err(_) => return Err(wrong_type("int", ob)),
    };
    settings::check_signed(setting.name, setting.range, wide).to_py()
}

/// [`setting_int`], or `None` for `None`.
pub(crate) fn opt_setting_int(name: &str, ob: Option<&Bound<'_, PyAny>>) -> PyResult<Option<u64>> {
    match ob {
        Some(ob) if !ob.is_none() => setting_int(name, ob).map(Some),
        _ => Ok(None),
    }
}
