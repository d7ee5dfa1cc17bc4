//! The cache of verified answers: the service's response as read and verified, kept for its
//! TTL (at most 600 s). The policy is applied to an answer each time it is used, so that the
//! cache holds what the service said, never what a host made of it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use quick_cache::sync::Cache;

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

    /// Past its TTL: never served again.
    fn expired(&self) -> bool {
        self.fetched_at.elapsed() >= self.ttl()
    }
}

/// Verified answers by key, at most the configured number (the least useful go first); `None`
/// inside when the cache is off. An answer past its TTL is dropped when it is next read.
pub(crate) struct Answers(Option<Cache<CacheKey, Arc<Answer>>>);

impl Answers {
    pub(crate) fn new(entries: u64) -> Answers {
        Answers((entries > 0).then(|| Cache::new(usize::try_from(entries).unwrap_or(usize::MAX))))
    }

    pub(crate) fn get(&self, key: &CacheKey) -> Option<Arc<Answer>> {
        let cache = self.0.as_ref()?;
        let hit = cache.get(key)?;
        if hit.expired() {
            cache.remove_if(key, |a| Arc::ptr_eq(a, &hit));
            return None;
        }
        Some(hit)
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
