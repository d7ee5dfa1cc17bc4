//! Single-flight: at most one request in flight per cache key. Callers of the same key wait for
//! the request already out instead of paying for another.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::cache::{Answer, CacheKey};
use super::pool::Slot;
use super::FailOpen;

pub(crate) type FlightResult = Result<Arc<Answer>, FailOpen>;

/// A request in flight: where its result will be, and the deadline it was sent with.
#[derive(Clone)]
pub(crate) struct Flight {
    pub(crate) slot: Arc<Slot<FlightResult>>,
    pub(crate) deadline: Instant,
}

/// What [`Flights::join_or_lead`] found.
pub(crate) enum Joined {
    /// Another caller's request: wait for it.
    Follower(Flight),
    /// No request was out: this caller sends one.
    Leader(Flight),
}

#[derive(Default)]
pub(crate) struct Flights(Mutex<HashMap<CacheKey, Flight>>);

impl Flights {
    /// Joins the request out for `key`, or registers a new one with `deadline`. A request whose
    /// deadline has passed can only end in a timeout: it is not joined. `cached` is asked
    /// under the lock before leading, because a flight stores its answer before it leaves the
    /// map: one that ended since the caller's cache miss is in the cache now.
    pub(crate) fn join_or_lead<T>(
        &self,
        key: &CacheKey,
        deadline: Instant,
        cached: impl FnOnce() -> Option<T>,
    ) -> Result<Joined, T> {
        let mut flights = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = flights.get(key).filter(|f| f.deadline > Instant::now()) {
            return Ok(Joined::Follower(f.clone()));
        }
        if let Some(hit) = cached() {
            return Err(hit);
        }
        let flight = Flight {
            slot: Arc::new(Slot::new()),
            deadline,
        };
        flights.insert(key.clone(), flight.clone());
        Ok(Joined::Leader(flight))
    }

    /// Removes `slot`'s flight from the map (not a newer one of the same key).
    pub(crate) fn end(&self, key: &CacheKey, slot: &Arc<Slot<FlightResult>>) {
        let mut flights = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if flights.get(key).is_some_and(|f| Arc::ptr_eq(&f.slot, slot)) {
            flights.remove(key);
        }
    }
}
