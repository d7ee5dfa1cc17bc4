//! The cache of verified answers: the service's response as read and verified, kept for its
//! TTL (at most 600 s). The policy is applied to an answer each time it is used, so that the
//! cache holds what the service said, never what a host made of it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::sync::Cache;

use super::Context;
use crate::e164::E164;
use crate::model::LookupResponse;
use crate::stir::{Attestation, Verstat};

/// What an answer is about: the number, the channel and the STIR/SHAKEN values sent (the
/// service may answer differently for a failed verstat).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    pub(crate) number: E164,
    pub(crate) context: Context,
    pub(crate) verstat: Verstat,
    pub(crate) attestation: Attestation,
}

/// A verified answer and when it was fetched.
pub(crate) struct Answer {
    pub(crate) response: LookupResponse,
    pub(crate) fetched_at: Instant,
}

impl Answer {
    pub(crate) fn new(response: LookupResponse) -> Answer {
        Answer {
            response,
            fetched_at: Instant::now(),
        }
    }

    /// How long it may be kept (the model caps `ttl_seconds` at 600).
    fn ttl(&self) -> Duration {
        self.response
            .ttl_seconds
            .map_or(Duration::ZERO, |s| Duration::from_secs(s.into()))
    }
}

/// Per-entry expiry: each answer lives exactly its TTL.
struct Expiry;

impl moka::Expiry<CacheKey, Arc<Answer>> for Expiry {
    fn expire_after_create(
        &self,
        _key: &CacheKey,
        value: &Arc<Answer>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl())
    }
}

/// Verified answers by key; `None` inside when the cache is off.
pub(crate) struct Answers(Option<Cache<CacheKey, Arc<Answer>>>);

impl Answers {
    pub(crate) fn new(entries: u64) -> Answers {
        Answers((entries > 0).then(|| {
            Cache::builder()
                .max_capacity(entries)
                .expire_after(Expiry)
                .build()
        }))
    }

    pub(crate) fn get(&self, key: &CacheKey) -> Option<Arc<Answer>> {
        self.0.as_ref().and_then(|c| c.get(key))
    }

    /// Keeps an answer that may be cached (a TTL of zero is not kept).
    pub(crate) fn insert(&self, key: &CacheKey, answer: &Arc<Answer>) {
        if let Some(cache) = &self.0 {
            if !answer.ttl().is_zero() {
                cache.insert(key.clone(), answer.clone());
            }
        }
    }
}
