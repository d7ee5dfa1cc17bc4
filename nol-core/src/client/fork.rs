//! A client that survives `fork()`.
//!
//! Switches (Kamailio, OpenSIPS) make a module's state in the main process and then fork their
//! workers; Python servers (gunicorn with `--preload`, `multiprocessing` on Linux) do the same
//! with a module-level client. A [`Client`] owns worker threads, a timer thread, keep-alive
//! connections and locks; after `fork()` the child has the memory of all of that but none of
//! the threads, and a lock another thread held at the moment of the fork stays locked forever.
//!
//! So a [`ForkSafeClient`] keeps its configuration and one client per fork depth. The host
//! registers [`after_fork_in_child`] as a `pthread_atfork` child handler (nol-core itself has
//! no `unsafe`); it bumps the process's depth. The first call in the child sees the new depth
//! and builds a client of its own (new threads, new connections, an empty cache, fresh
//! counters). The inherited clients are never touched in the child again: not used and not
//! dropped (dropping one could wait for a thread that does not exist here or write on the
//! parent's connections). When a `ForkSafeClient` is dropped in a child, they are parked where
//! they stay reachable, so that leak checkers see memory kept on purpose, not lost.
//!
//! A parent thread that was building its own client at the moment of the fork holds that
//! depth's slot; the child uses the next slot, which no thread of the parent ever touches.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::FailOpen;
use super::{Call, Client, ClientConfig, ConfigError, Enrollment, Precall, Stats};
use crate::decision::Decision;
use crate::policy::Policy;
use crate::stir::Stir;

/// How many nested forks a client follows; a lookup deeper than that fails open (`busy`).
pub const MAX_FORK_DEPTH: usize = 16;

/// This process's fork depth: 0 in the process that loaded libnol, +1 in each child.
static DEPTH: AtomicUsize = AtomicUsize::new(0);

/// Inherited clients of freed `ForkSafeClient`s, kept reachable and never dropped.
static PARKED: Mutex<Vec<Client>> = Mutex::new(Vec::new());

/// Call in the child after `fork()`, from a `pthread_atfork` child handler (or Python's
/// `os.register_at_fork(after_in_child=...)`). Async-signal-safe: one atomic add.
pub fn after_fork_in_child() {
    DEPTH.fetch_add(1, Ordering::AcqRel);
}

fn depth() -> usize {
    DEPTH.load(Ordering::Acquire)
}

/// A [`Client`] that may be made before `fork()` and used in the parent and in every child.
pub struct ForkSafeClient {
    config: ClientConfig,
    by_depth: [OnceLock<Client>; MAX_FORK_DEPTH],
}

impl std::fmt::Debug for ForkSafeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // What this process has built so far: printing never builds a client.
        let built = self.by_depth.get(depth()).and_then(OnceLock::get);
        f.debug_struct("ForkSafeClient")
            .field("client", &built)
            .finish_non_exhaustive()
    }
}

impl ForkSafeClient {
    /// Makes the client of this process (see [`Client::new`]). The configuration is completed
    /// from the environment once, here, so that a child builds exactly the same client.
    pub fn new(mut config: ClientConfig) -> Result<ForkSafeClient, ConfigError> {
        config.apply_env()?;
        let made = ForkSafeClient {
            config,
            by_depth: std::array::from_fn(|_| OnceLock::new()),
        };
        made.build(true)?;
        Ok(made)
    }

    /// The client of this process, built on first use after a fork (about a millisecond).
    /// That first use is a call, which must not wait for a warm-up (`warm_up_ms`): a client
    /// built here skips it, and its first request opens its connection.
    pub fn client(&self) -> Result<&Client, ConfigError> {
        self.build(false)
    }

    fn build(&self, warm_up: bool) -> Result<&Client, ConfigError> {
        let slot = self.by_depth.get(depth()).ok_or_else(too_deep)?;
        if let Some(client) = slot.get() {
            return Ok(client);
        }
        let mut config = self.config.clone();
        if !warm_up {
            config.warm_up = Duration::ZERO;
        }
        let fresh = Client::new(config)?;
        // Another thread of this process may have set it first: use the one that won.
        Ok(slot.get_or_init(|| fresh))
    }

    pub fn budget(&self) -> Duration {
        self.config.budget
    }

    pub fn policy(&self) -> &Policy {
        &self.config.policy
    }

    /// [`Client::lookup`]; fails open (`busy`) when this process cannot start its client.
    pub fn lookup(&self, call: &Call<'_>) -> Decision {
        match self.client() {
            Ok(client) => client.lookup(call),
            Err(_) => self.unstarted(call),
        }
    }

    /// [`Client::lookup_async`]; `done` gets a fail-open decision (`busy`) at once when this
    /// process cannot start its client.
    pub fn lookup_async(&self, call: &Call<'_>, done: impl FnOnce(Decision) + Send + 'static) {
        match self.client() {
            Ok(client) => client.lookup_async(call, done),
            Err(_) => done(self.unstarted(call)),
        }
    }

    /// [`Client::precall`]; `UNKNOWN` (`busy`) when this process cannot start its client.
    pub fn precall(&self, from: &str, to: &str) -> Precall {
        match self.client() {
            Ok(client) => client.precall(from, to),
            Err(_) => Precall::failed(FailOpen::Busy),
        }
    }

    /// [`Client::enroll`]; not enrolled (`busy`) when this process cannot start its client.
    pub fn enroll(&self, number: &str) -> Enrollment {
        match self.client() {
            Ok(client) => client.enroll(number),
            Err(_) => Enrollment::failed(None, FailOpen::Busy),
        }
    }

    /// The counters of this process's client (a forked child starts at zero).
    pub fn stats(&self) -> Result<Stats, ConfigError> {
        self.client().map(Client::stats)
    }

    fn unstarted(&self, call: &Call<'_>) -> Decision {
        self.config.policy.fail_open(
            FailOpen::Busy,
            None,
            Stir::from_parts(call.verstat, call.attestation),
            call.local_contact,
        )
    }
}

fn too_deep() -> ConfigError {
    ConfigError::Invalid(format!(
        "more than {MAX_FORK_DEPTH} nested forks: this process cannot start a client"
    ))
}

impl Drop for ForkSafeClient {
    fn drop(&mut self) {
        let here = depth();
        for (at, slot) in self.by_depth.iter_mut().enumerate() {
            let Some(client) = slot.take() else { continue };
            if at == here {
                // Made in this process: its threads end, its connections close.
                drop(client);
            } else {
                // Inherited: park it. A lock a parent thread held at the fork is never
                // waited for; the client is then forgotten instead (memory, not a hang).
                match PARKED.try_lock() {
                    Ok(mut parked) => parked.push(client),
                    Err(_) => std::mem::forget(client),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deeper_fork_builds_its_own_client_and_parks_the_inherited_one() {
        let mut keys = crate::signature::TrustedKeys::default();
        keys.add_key(ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key())
            .unwrap();
        // A service that accepts and never answers: the warm-up waits out its bound in the
        // process that makes the client, and never in a child's first call.
        let hanging = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let config = ClientConfig {
            api_key: Some(super::super::ApiKey::new("nol_sandbox_standard_key").unwrap()),
            base_url: format!("http://{}", hanging.local_addr().unwrap()),
            public_keys: keys,
            warm_up: Duration::from_millis(300),
            ..ClientConfig::default()
        };
        let made = std::time::Instant::now();
        let client = ForkSafeClient::new(config).unwrap();
        let made = made.elapsed();
        assert!(made >= Duration::from_millis(250), "warmed up: {made:?}");
        let first = client.client().unwrap() as *const Client;
        assert_eq!(client.client().unwrap() as *const Client, first);
        let parked_before = PARKED.lock().unwrap().len();
        // What the atfork child handler does. Other tests in this binary do not use
        // ForkSafeClient, so moving this process's depth does not disturb them.
        after_fork_in_child();
        let first_call = std::time::Instant::now();
        let second = client.client().unwrap() as *const Client;
        let first_call = first_call.elapsed();
        assert!(
            first_call < Duration::from_millis(200),
            "a child's first call waited for a warm-up: {first_call:?}"
        );
        assert_ne!(second, first);
        assert_eq!(client.client().unwrap().stats().lookups, 0);
        drop(client);
        assert_eq!(PARKED.lock().unwrap().len(), parked_before + 1);
    }
}
