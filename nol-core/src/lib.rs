//! libnol core: everything between what a switch knows about an inbound call and what it does
//! with it. Data flows one way:
//!
//! host input → [`e164`] / [`stir`] → client (cache → HTTP → [`signature`] → [`model`]) →
//! [`policy`] → host outputs (caller name, SIP reply, headers, AGI variables).
#![forbid(unsafe_code)]

pub mod canonical;
pub mod client;
pub mod e164;
pub mod model;
pub mod policy;
pub mod signature;
pub mod stir;

pub use client::{ApiKey, Call, Client, ClientConfig, ConfigError, Context, ForkSafeClient, Stats};
pub use e164::{Caller, E164Error, E164};
pub use model::{IdentityType, LookupResponse, LookupResult, ModelError, RecommendedAction};
pub use policy::{Decision, FailOpen, Outcome, Policy, RiskTag, SipReply};
pub use signature::{KeyError, SignatureError, TrustedKeys};
pub use stir::{Attestation, Stir, Verstat};
