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

/// A verified answer, when it was fetched, and until when it may be served.
pub(crate) struct Answer {
    pub(crate) response: LookupResponse,
    pub(crate) fetched_at: Instant,
    /// `fetched_at` + its TTL, or sooner: an answer read from the shared cache keeps only what
    /// is left of its TTL there, so that no copy outlives the service's answer.
    expires_at: Instant,
}

/// How long a response may be kept (the model caps `ttl_seconds` at 600).
fn ttl(response: &LookupResponse) -> Duration {
    response
        .ttl_seconds
        .map_or(Duration::ZERO, |s| Duration::from_secs(s.into()))
}

impl Answer {
    /// An answer the service gave just now: kept for its TTL.
    pub(crate) fn new(response: LookupResponse) -> Answer {
        Answer::fetched(response, Instant::now(), Duration::MAX)
    }

    /// An answer read at `fetched_at` with at most `left` of its life remaining (what the
    /// shared cache says is left), and never more than its TTL.
    pub(crate) fn fetched(response: LookupResponse, fetched_at: Instant, left: Duration) -> Answer {
        let keep = ttl(&response).min(left);
        Answer {
            expires_at: fetched_at.checked_add(keep).unwrap_or(fetched_at),
            response,
            fetched_at,
        }
    }

    /// When it stops being served.
    pub(crate) fn expires_at(&self) -> Instant {
        self.expires_at
    }

    /// Past its TTL: never served again.
    fn expired(&self) -> bool {
        Instant::now() >= self.expires_at
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

    /// Keeps an answer that may be cached (a TTL of zero, or an answer already expired, is
    /// not kept).
    pub(crate) fn insert(&self, key: &CacheKey, answer: &Arc<Answer>) {
        if let Some(cache) = &self.0 {
            if !answer.expired() {
                cache.insert(key.clone(), answer.clone());
            }
        }
    }
}
