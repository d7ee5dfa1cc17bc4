//! libnol core: everything between what a switch knows about an inbound call and what it does
//! with it. Data flows one way:
//!
//! host input → [`e164`] / [`stir`] → [`client`] (cache → HTTP → [`signature`] → [`model`],
//! or a [`FailOpen`] reason) → [`policy`] → [`decision`] → [`render`] / [`agents`] (caller
//! name, SIP reply, headers, AGI variables, JSON, Retell, Vapi, LLM tools).
//!
//! [`settings`] holds every configuration range, [`sanitize`] every cleaning rule; both are
//! leaves that the rest uses.
#![forbid(unsafe_code)]

pub mod agents;
pub mod canonical;
pub mod client;
pub mod decision;
pub mod e164;
pub mod model;
pub mod policy;
pub mod render;
pub mod sanitize;
pub mod settings;
pub mod signature;
pub mod stir;

pub use client::{
    ApiKey, Call, Client, ClientConfig, ConfigError, Context, FailOpen, ForkSafeClient, Stats,
};
pub use decision::{Decision, Outcome, SipReply};
pub use e164::{Caller, E164Error, E164};
pub use model::{IdentityType, LookupResponse, LookupResult, ModelError, RecommendedAction};
pub use policy::Policy;
pub use render::DecisionView;
pub use signature::{KeyError, SignatureError, TrustedKeys};
pub use stir::{Attestation, Stir, Verstat};
