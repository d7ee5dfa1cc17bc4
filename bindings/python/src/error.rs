//! The one place where errors cross into Python.
//!
//! Only programming and configuration errors become exceptions; nothing the network or the
//! service does is an error here (a lookup fails open inside nol-core). Every exception derives
//! from `nol.NolError`, and each also derives from the built-in a Python user would catch
//! (`ValueError`, or `TypeError` for an argument of the wrong type), as pydantic-core and
//! orjson do. A setting outside its range or values (nol-core's `ConfigError::OutOfRange`,
//! `InvalidValue`, `UnknownSetting`) is `nol.InvalidSetting`, both a `nol.ConfigError` and a
//! `nol.InvalidArgument`, with the setting's name in `.setting`; nol-core decides every range,
//! this module only picks the class. No message ever carries the API key:
//! nol-core's errors never include it, and nothing here adds it.

use std::fmt::Display;

use nol_core::{ConfigError, E164Error, KeyError};
use pyo3::exceptions::{PyException, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

pyo3::create_exception!(
    nol,
    NolError,
    PyException,
    "The root of every exception nol raises. Lookups never raise it for anything the network or \
     the service does: they fail open."
);

/// The exceptions below `NolError`, each also a `ValueError`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    /// The client could not be made from its configuration.
    Config,
    /// A trusted public key (PEM) could not be read.
    InvalidPublicKey,
    /// `normalize`: not a possible telephone number.
    InvalidNumber,
    /// `normalize`: the caller withheld the number.
    Anonymous,
    /// An argument outside its allowed values (an unknown context, say).
    InvalidArgument,
    /// An argument of the wrong type (a `TypeError`, not a `ValueError`).
    WrongType,
    /// A setting outside its range or values: a `Config` and an `InvalidArgument`.
    InvalidSetting,
}

impl Kind {
    pub(crate) const ALL: [Kind; 7] = [
        Kind::Config,
        Kind::InvalidPublicKey,
        Kind::InvalidNumber,
        Kind::Anonymous,
        Kind::InvalidArgument,
        Kind::WrongType,
        Kind::InvalidSetting,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Config => "ConfigError",
            Kind::InvalidPublicKey => "InvalidPublicKey",
            Kind::InvalidNumber => "InvalidNumber",
            Kind::Anonymous => "Anonymous",
            Kind::InvalidArgument => "InvalidArgument",
            Kind::WrongType => "ArgumentTypeError",
            Kind::InvalidSetting => "InvalidSetting",
        }
    }

    fn doc(self) -> &'static str {
        match self {
            Kind::Config => {
                "The client or policy could not be made from its configuration (no API key, \
                 no trusted public key, a bad base URL or country, a setting out of range)."
            }
            Kind::InvalidPublicKey => {
                "A trusted public key could not be read: no Ed25519 PUBLIC KEY block in the PEM."
            }
            Kind::InvalidNumber => "Not a possible telephone number (raised by normalize only).",
            Kind::Anonymous => {
                "The caller withheld the number (anonymous, restricted, ...): \
                                there is nothing to normalize. Not an InvalidNumber."
            }
            Kind::InvalidArgument => "An argument outside its allowed values.",
            Kind::WrongType => {
                "An argument of the wrong type (a str where an int belongs, say). Also a \
                 TypeError."
            }
            Kind::InvalidSetting => {
                "A setting outside its range or values (see nol.SETTINGS): both a ConfigError \
                 and an InvalidArgument. `.setting` is the setting's name."
            }
        }
    }

    fn cell(self) -> &'static PyOnceLock<Py<PyType>> {
        static CONFIG: PyOnceLock<Py<PyType>> = PyOnceLock::new();
        static PUBLIC_KEY: PyOnceLock<Py<PyType>> = PyOnceLock::new();
        static INVALID_NUMBER: PyOnceLock<Py<PyType>> = PyOnceLock::new();
        static ANONYMOUS: PyOnceLock<Py<PyType>> = PyOnceLock::new();
        static INVALID_ARGUMENT: PyOnceLock<Py<PyType>> = PyOnceLock::new();
        static WRONG_TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
        static INVALID_SETTING: PyOnceLock<Py<PyType>> = PyOnceLock::new();
        match self {
            Kind::Config => &CONFIG,
            Kind::InvalidPublicKey => &PUBLIC_KEY,
            Kind::InvalidNumber => &INVALID_NUMBER,
            Kind::Anonymous => &ANONYMOUS,
            Kind::InvalidArgument => &INVALID_ARGUMENT,
            Kind::WrongType => &WRONG_TYPE,
            Kind::InvalidSetting => &INVALID_SETTING,
        }
    }

    /// The exception class, made on first use: `class X(<parent>, ValueError)` in module `nol`
    /// (`TypeError` for `ArgumentTypeError`).
    pub(crate) fn type_object(self, py: Python<'_>) -> PyResult<Bound<'_, PyType>> {
        let ty = self
            .cell()
            .get_or_try_init(py, || -> PyResult<Py<PyType>> {
                let parent = match self {
                    Kind::InvalidPublicKey => Kind::Config.type_object(py)?.into_any(),
                    _ => py.get_type::<NolError>().into_any(),
                };
                let builtin = match self {
                    Kind::WrongType => py.get_type::<PyTypeError>().into_any(),
                    _ => py.get_type::<PyValueError>().into_any(),
                };
                let bases = match self {
                    Kind::InvalidPublicKey => PyTuple::new(py, [parent])?,
                    Kind::InvalidSetting => PyTuple::new(
                        py,
                        [
                            Kind::Config.type_object(py)?.into_any(),
                            Kind::InvalidArgument.type_object(py)?.into_any(),
                        ],
                    )?,
                    _ => PyTuple::new(py, [parent, builtin])?,
                };
                let namespace = PyDict::new(py);
                namespace.set_item("__module__", "nol")?;
                namespace.set_item("__doc__", self.doc())?;
                let ty = py
                    .get_type::<PyType>()
                    .call1((self.name(), bases, namespace))?
                    .cast_into::<PyType>()?;
                Ok(ty.unbind())
            })?;
        Ok(ty.bind(py).clone())
    }

    /// A `PyErr` of this kind with `message`.
    pub(crate) fn err(self, message: impl Display) -> PyErr {
        let message = message.to_string();
        Python::attach(|py| match self.type_object(py) {
            Ok(ty) => PyErr::from_type(ty, message),
            Err(e) => e,
        })
    }
}

/// `nol.InvalidSetting` with `message`, its `.setting` set to `setting`.
fn invalid_setting(setting: &str, message: String) -> PyErr {
    Python::attach(|py| {
        let made = Kind::InvalidSetting.type_object(py).and_then(|ty| {
            let e = ty.call1((message,))?;
            e.setattr("setting", setting)?;
            Ok(PyErr::from_value(e))
        });
        made.unwrap_or_else(|e| e)
    })
}

/// Turns nol-core's errors into Python exceptions (`?` in the binding's functions).
pub(crate) trait ToPyErr {
    fn to_py_err(self) -> PyErr;
}

impl ToPyErr for ConfigError {
    fn to_py_err(self) -> PyErr {
        match self {
            ConfigError::PublicKey(e) => e.to_py_err(),
            ConfigError::OutOfRange { setting, .. } | ConfigError::InvalidValue { setting, .. } => {
                invalid_setting(setting, self.to_string())
            }
            ConfigError::UnknownSetting(ref name) => invalid_setting(name, self.to_string()),
            other => Kind::Config.err(other),
        }
    }
}

impl ToPyErr for KeyError {
    fn to_py_err(self) -> PyErr {
        Kind::InvalidPublicKey.err(format!("public key: {self}"))
    }
}

impl ToPyErr for E164Error {
    fn to_py_err(self) -> PyErr {
        match self {
            E164Error::UnknownRegion(_) => Kind::InvalidArgument.err(self),
            other => Kind::InvalidNumber.err(other),
        }
    }
}

/// `Result<T, E>` from nol-core into `PyResult<T>`.
pub(crate) trait ToPyResult<T> {
    fn to_py(self) -> PyResult<T>;
}

impl<T, E: ToPyErr> ToPyResult<T> for Result<T, E> {
    fn to_py(self) -> PyResult<T> {
        self.map_err(ToPyErr::to_py_err)
    }
}

/// Adds `NolError` and its subclasses to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("NolError", py.get_type::<NolError>())?;
    for kind in Kind::ALL {
        m.add(kind.name(), kind.type_object(py)?)?;
    }
    Ok(())
}
