//! libnol's C ABI: `libnol.so` and `libnol.a` over nol-core, with no logic of its own beyond
//! converting types, checking arguments, catching panics and surviving `fork()`.
//!
//! The header `include/nol.h` is generated from this crate by cbindgen (`scripts/gen-header.sh`)
//! and committed; `tests/header.rs` fails when it drifts. Every function's contract (blocking,
//! thread safety, ownership, which pointers may be NULL) is written on the function and copied
//! into the header: that is the safety documentation of these `unsafe extern "C"` functions.
#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)]

mod arg;
pub mod client;
pub mod config;
pub mod error;
pub mod nonblocking;
pub mod precall;
pub mod pure;
pub mod result;

pub use client::{nol_call, nol_client, nol_stats};
pub use config::nol_config;
pub use error::nol_status;
pub use precall::{nol_enroll_result, nol_precall_result};
pub use pure::{nol_attestation, nol_verstat};
pub use result::{nol_action, nol_outcome, nol_result};
