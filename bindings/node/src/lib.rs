//! The Node.js binding of libnol: the npm package `nol`.
//!
//! A thin layer: each module mirrors a module of nol-core and only converts types, errors
//! cross into JavaScript in one place ([`error`]), and nothing that touches the network runs
//! on the JavaScript thread. Lookups settle through [`nol_core::Client::lookup_async`], which
//! holds no thread while a request is out, so a burst of lookups never queues behind libuv's
//! small thread pool and every Promise settles within the client's budget.
//!
//! Every export is `#[napi(catch_unwind)]`: a panic in Rust becomes a thrown `Error` (code
//! `GenericFailure`, the message the panic's) instead of unwinding into Node and aborting the
//! process. `__panicForTests` (test-only, undocumented in the README) proves it.

#![deny(clippy::all)]
// napi-derive registers exports only outside `cfg(test)`: under `--all-targets` they look unused.
#![cfg_attr(test, allow(dead_code))]

mod agents;
mod client;
mod e164;
mod error;
mod policy;
mod settings;
mod signature;
mod stir;

/// Test-only: panics in Rust, to show that a panic becomes a thrown `Error` (code
/// `GenericFailure`) rather than aborting the process. Not part of the API.
#[napi_derive::napi(js_name = "__panicForTests", catch_unwind)]
pub fn panic_for_tests() {
    panic!("nol: a Rust panic for the tests")
}
