//! Arguments from Python, with nol's exceptions for the wrong ones.
//!
//! pyo3's own conversions raise a bare `TypeError` or `OverflowError`; these extractors
//! (`#[pyo3(from_py_with = ...)]`) raise `nol.ArgumentTypeError` (a `NolError` and a
//! `TypeError`) for a value of the wrong type and `nol.InvalidArgument` (a `NolError` and a
//! `ValueError`) for a number out of range, so that `except nol.NolError` catches every bad
//! argument and `except TypeError` still works. pyo3 notes which argument it was.

use pyo3::exceptions::PyOverflowError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyString};

use crate::error::Kind;

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

/// An `int` (not a `bool`) that fits `T`.
pub(crate) fn int<T: TryFrom<i64>>(ob: &Bound<'_, PyAny>) -> PyResult<T> {
    if ob.is_instance_of::<PyBool>() {
        return Err(wrong_type("int", ob));
    }
    let wide: i64 = ob.extract().map_err(|e: PyErr| {
        if e.is_instance_of::<PyOverflowError>(ob.py()) {
            Kind::InvalidArgument.err("out of range")
        } else {
            wrong_type("int", ob)
        }
    })?;
    T::try_from(wide).map_err(|_| Kind::InvalidArgument.err(format!("{wide} is out of range")))
}

pub(crate) fn opt_int<T: TryFrom<i64>>(ob: &Bound<'_, PyAny>) -> PyResult<Option<T>> {
    if ob.is_none() {
        return Ok(None);
    }
    int(ob).map(Some)
}
