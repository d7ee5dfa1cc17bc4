//! The non-blocking lookup: `nol_lookup_start`, `nol_client_event_fd`, `nol_client_next`.
//!
//! A lookup started with `nol_lookup_start` goes through nol-core's
//! `ForkSafeClient::lookup_async`, whose callback runs exactly once, within the budget, on a
//! libnol thread (or at once, on the starting thread, when no request is needed). The callback
//! pushes the decision onto the client's completion queue and adds one to an eventfd in
//! semaphore mode; `nol_client_next` pops one decision and takes one from the eventfd. Both
//! happen under the queue's lock, so the eventfd's counter always equals the queue's length
//! whenever the lock is free: the fd is readable exactly while decisions wait.
//!
//! Every pending callback holds the queue by `Arc`, so freeing the client never waits for
//! them: they finish by their deadlines into a queue nobody reads, and the last one to go frees
//! what is left and closes the eventfd.
//!
//! Fork: one queue (and one eventfd) per fork depth, as `ForkSafeClient` keeps one client per
//! fork depth. A child never touches the queue it inherited (a parent thread may have held its
//! lock at the fork, and its eventfd is the same kernel object as the parent's).

use std::collections::VecDeque;
use std::ffi::c_int;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use nol_core::client::MAX_FORK_DEPTH;
use nol_core::Decision;

use crate::arg;
use crate::client::{nol_call, nol_client, with_call};
use crate::error::{boundary, nol_status, Fail, FfiResult};
use crate::result::nol_result;

/// This process's fork depth as the C ABI counts it: bumped by libnol's `pthread_atfork` child
/// handler together with nol-core's, so the two always agree.
static DEPTH: AtomicUsize = AtomicUsize::new(0);

/// Inherited queues of clients freed in a forked child: kept reachable, never dropped.
static PARKED: Mutex<Vec<Arc<Completions>>> = Mutex::new(Vec::new());

/// Called from the `pthread_atfork` child handler. Async-signal-safe: one atomic add.
pub(crate) fn after_fork_in_child() {
    DEPTH.fetch_add(1, Ordering::AcqRel);
}

fn depth() -> usize {
    DEPTH.load(Ordering::Acquire)
}

/// Finished decisions waiting for `nol_client_next`, and the eventfd that counts them.
pub(crate) struct Completions {
    queue: Mutex<VecDeque<(u64, Decision)>>,
    /// `EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC`; closed when the last holder drops this.
    fd: OwnedFd,
}

impl Completions {
    fn new() -> io::Result<Completions> {
        // SAFETY: eventfd has no memory arguments.
        let fd = unsafe {
            libc::eventfd(
                0,
                libc::EFD_SEMAPHORE | libc::EFD_NONBLOCK | libc::EFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Completions {
            queue: Mutex::new(VecDeque::new()),
            // SAFETY: a new descriptor that nothing else owns.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    pub(crate) fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// Queues a finished decision and makes the fd readable (one more).
    pub(crate) fn push(&self, user_data: u64, decision: Decision) {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        queue.push_back((user_data, decision));
        // Under the lock, so that the counter and the queue's length move together.
        self.add_one();
        drop(queue);
    }

    /// Takes the oldest finished decision, if any, and one from the fd's counter.
    pub(crate) fn take(&self) -> Option<(u64, Decision)> {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let item = queue.pop_front()?;
        self.take_one();
        drop(queue);
        Some(item)
    }

    fn add_one(&self) {
        let one: u64 = 1;
        loop {
            // SAFETY: writes 8 bytes from a live u64 to our own descriptor.
            let n = unsafe {
                libc::write(
                    self.fd.as_raw_fd(),
                    (&one as *const u64).cast::<libc::c_void>(),
                    8,
                )
            };
            // Only EINTR is worth another try: EAGAIN would need 2^64 - 2 decisions waiting.
            if n == 8 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                return;
            }
        }
    }

    fn take_one(&self) {
        let mut count: u64 = 0;
        loop {
            // SAFETY: reads 8 bytes into a live u64 from our own descriptor.
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    (&mut count as *mut u64).cast::<libc::c_void>(),
                    8,
                )
            };
            if n == 8 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                return;
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.queue.lock().unwrap().len()
    }
}

/// A client's completion queues, one per fork depth (made on first use in each process).
pub(crate) struct Queues {
    by_depth: [OnceLock<Arc<Completions>>; MAX_FORK_DEPTH],
}

impl Queues {
    pub(crate) fn new() -> Queues {
        Queues {
            by_depth: std::array::from_fn(|_| OnceLock::new()),
        }
    }

    /// This process's queue, made (with its eventfd) on first use.
    pub(crate) fn get_or_make(&self) -> FfiResult<&Arc<Completions>> {
        let slot = self.by_depth.get(depth()).ok_or_else(|| {
            Fail::new(
                nol_status::InvalidConfig,
                format!(
                    "more than {MAX_FORK_DEPTH} nested forks: this process cannot start a client"
                ),
            )
        })?;
        if let Some(made) = slot.get() {
            return Ok(made);
        }
        let fresh = Completions::new().map_err(|e| {
            Fail::new(
                nol_status::InvalidConfig,
                format!("cannot make the client's event fd (eventfd): {e}"),
            )
        })?;
        // Another thread may have made one first: use that one (ours closes its fd).
        Ok(slot.get_or_init(|| Arc::new(fresh)))
    }

    /// This process's queue if it has been made.
    pub(crate) fn get(&self) -> Option<&Arc<Completions>> {
        self.by_depth.get(depth()).and_then(OnceLock::get)
    }
}

impl Drop for Queues {
    fn drop(&mut self) {
        let here = depth();
        for (at, slot) in self.by_depth.iter_mut().enumerate() {
            let Some(queue) = slot.take() else { continue };
            if at == here {
                // This process's: pending lookups keep it (and the fd) until they finish.
                drop(queue);
            } else {
                // Inherited from a parent: never touched here (its lock may be held forever,
                // its fd is the parent's kernel object). Kept reachable, or forgotten.
                match PARKED.try_lock() {
                    Ok(mut parked) => parked.push(queue),
                    Err(_) => std::mem::forget(queue),
                }
            }
        }
    }
}

/// Starts a lookup of an inbound call and returns at once: it NEVER blocks on the service
/// (its only work on the calling thread is the argument checks, the cache and a hand-off to a
/// libnol thread, or, when no request is needed, the whole decision: a cache hit, an invalid
/// or anonymous number, an open circuit breaker, every worker busy). The `nol_call` and its
/// strings are copied before this returns: free or reuse them at once.
///
/// Its decision arrives exactly once, within the client's budget counted from this call, in
/// the client's completion queue: the client's event fd (`nol_client_event_fd`) becomes
/// readable and `nol_client_next` gives the decision with this `user_data` (any value: a
/// pointer, an index, a transaction id; libnol never reads it). Fails open exactly as
/// `nol_lookup` does, and the result is the same `nol_result` `nol_lookup` would give
/// (every accessor and `nol_result_json` work on it). A cache hit's decision may be waiting
/// before this returns. Decisions come out in the order they finished, not the order started.
///
/// No cancellation: a started lookup always ends by its budget. To abandon one, take its
/// decision when it comes and free it (or free the client: see `nol_client_free`).
///
/// Thread-safe: any number of threads may start lookups on one client at once, and may take
/// decisions from any thread. In a forked child, lookups started there are delivered there,
/// on the child's own queue and fd (see `nol_client_event_fd`).
///
/// On any status but `NOL_STATUS_OK` nothing was started and nothing will be delivered for
/// this call: carry on as `allow_with_default_policy`. `NOL_STATUS_NULL_ARGUMENT` (client,
/// call or call->number is NULL), `NOL_STATUS_INVALID_ARGUMENT` / `NOL_STATUS_INVALID_UTF8`
/// (an unknown `context`), `NOL_STATUS_INVALID_CONFIG` (the process is out of file
/// descriptors for the event fd, or more than 16 nested forks), `NOL_STATUS_PANIC` (a bug).
#[no_mangle]
pub unsafe extern "C" fn nol_lookup_start(
    client: *const nol_client,
    call: *const nol_call,
    user_data: u64,
) -> nol_status {
    boundary(|| {
        let client = unsafe { arg::reference(client, "client") }?;
        let call = unsafe { arg::reference(call, "call") }?;
        unsafe { with_call(call, |call| client.lookup_start(call, user_data)) }?
    })
}

/// Writes the client's event fd to `*fd`: a Linux eventfd that is readable (`POLLIN`) exactly
/// while finished decisions wait to be taken with `nol_client_next`. Put it in the host's own
/// poll / epoll / libevent loop; when it is readable, call `nol_client_next` until it returns
/// `NOL_STATUS_WOULD_BLOCK` (required with edge-triggered epoll, sensible with any loop).
///
/// The fd is the client's: NEVER read, write or close it yourself (reading it would lose
/// decisions' wake-ups). The same number for the life of the client in this process; it is
/// non-blocking and close-on-exec. Made on first use (of this function or
/// `nol_lookup_start`) in each process.
///
/// Free: REMOVE the fd from your poll set BEFORE `nol_client_free`. After it the fd stays
/// open while lookups started before the free are pending (at most the budget) and is then
/// closed by libnol, on one of its threads, at a moment you do not see: its number may be
/// reused by any later `open()`/`socket()`, so never touch it after `nol_client_free`.
///
/// Fork: the non-blocking API is per process. A child that uses a client made before
/// `fork()` gets its own queue and its own fd (another number) on its first call to this
/// function or `nol_lookup_start`; call this function again in the child. Lookups started in
/// the parent are delivered in the parent only. The parent's fd number stays open in the
/// child (it is the same kernel object as the parent's): never poll or read it there.
///
/// Never blocks; thread-safe. `NOL_STATUS_NULL_ARGUMENT` (client or fd is NULL),
/// `NOL_STATUS_INVALID_CONFIG` (no eventfd could be made: out of file descriptors).
#[no_mangle]
pub unsafe extern "C" fn nol_client_event_fd(
    client: *const nol_client,
    fd: *mut c_int,
) -> nol_status {
    boundary(|| {
        let client = unsafe { arg::reference(client, "client") }?;
        let fd = unsafe { arg::out(fd, "fd") }?;
        *fd = client.queues().get_or_make()?.raw_fd();
        Ok(())
    })
}

/// Takes one finished decision of a lookup started in this process with `nol_lookup_start`:
/// writes its `user_data` to `*user_data` and its result to `*result` (free it with
/// `nol_result_free`; it may outlive the client). Each decision is given exactly once, to one
/// caller.
///
/// NEVER blocks. When no decision is waiting it returns `NOL_STATUS_WOULD_BLOCK` and writes
/// nothing: wait for the client's event fd to be readable (`nol_client_event_fd`).
///
/// Thread-safe: any number of threads may take decisions from one client at once (each gets
/// different ones), while others start lookups.
///
/// `NOL_STATUS_NULL_ARGUMENT` (client, user_data or result is NULL; nothing is taken),
/// `NOL_STATUS_WOULD_BLOCK` (none waiting), `NOL_STATUS_PANIC` (a bug).
#[no_mangle]
pub unsafe extern "C" fn nol_client_next(
    client: *const nol_client,
    user_data: *mut u64,
    result: *mut *mut nol_result,
) -> nol_status {
    boundary(|| {
        let client = unsafe { arg::reference(client, "client") }?;
        let user_data = unsafe { arg::out(user_data, "user_data") }?;
        let result = unsafe { arg::out(result, "result") }?;
        let Some((data, decision)) = client.queues().get().and_then(|q| q.take()) else {
            return Err(Fail::new(
                nol_status::WouldBlock,
                "no finished decision is waiting",
            ));
        };
        *user_data = data;
        *result = Box::into_raw(Box::new(nol_result::new(decision)));
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nol_core::Policy;

    fn decision() -> Decision {
        Policy::default().fail_open(
            nol_core::client::FailOpen::Busy,
            None,
            Default::default(),
            None,
        )
    }

    fn readable(fd: i32) -> bool {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        (unsafe { libc::poll(&mut p, 1, 0) }) == 1
    }

    #[test]
    fn the_fd_is_readable_exactly_while_decisions_wait() {
        let c = Completions::new().unwrap();
        let fd = c.raw_fd();
        assert!(!readable(fd));
        assert!(c.take().is_none());
        c.push(1, decision());
        c.push(2, decision());
        assert!(readable(fd));
        assert_eq!(c.take().unwrap().0, 1);
        assert!(readable(fd));
        assert_eq!(c.take().unwrap().0, 2);
        assert!(!readable(fd));
        assert!(c.take().is_none());
        assert_eq!(c.len(), 0);
    }
}
