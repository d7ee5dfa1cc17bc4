//! `nol._nol`, the native module of the Python package `nol`: a thin layer over nol-core that
//! only converts types (`types`), errors (`error`, the one place they cross) and threads (the
//! interpreter is released for every wait, `client`). The typed package around it is
//! `python/nol`.

mod agents;
mod arg;
mod client;
mod error;
mod pure;
mod types;

use pyo3::prelude::*;

#[pymodule]
fn _nol(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    error::register(m)?;
    m.add_function(wrap_pyfunction!(pure::normalize, m)?)?;
    m.add_function(wrap_pyfunction!(pure::parse_verstat, m)?)?;
    m.add_function(wrap_pyfunction!(pure::verify_response, m)?)?;
    m.add_function(wrap_pyfunction!(agents::tool_result, m)?)?;
    m.add_function(wrap_pyfunction!(agents::llm_message, m)?)?;
    m.add("SETTINGS", agents::settings_table(m.py())?)?;
    m.add_class::<pure::TrustedKeys>()?;
    m.add_class::<types::Stir>()?;
    m.add_class::<types::Policy>()?;
    m.add_class::<types::Decision>()?;
    m.add_class::<types::Precall>()?;
    m.add_class::<types::Enrollment>()?;
    m.add_class::<types::Stats>()?;
    m.add_class::<client::Client>()?;
    // A client made before `fork()` (gunicorn --preload, multiprocessing, a C extension's
    // fork) builds its own threads and connections in the child: nol-core only needs to be
    // told of the fork, by a `pthread_atfork` child handler.
    client::register_atfork();
    Ok(())
}
