//! libnol core: everything between what a switch knows about an inbound call and what it does
//! with it. Data flows one way:
//!
//! host input → [`e164`] / [`stir`] → client (cache → HTTP → [`signature`] → [`model`]) →
//! [`policy`] → host outputs (caller name, SIP reply, headers, AGI variables).
#![forbid(unsafe_code)]

pub mod e164;

pub use e164::{Caller, E164Error, E164};
