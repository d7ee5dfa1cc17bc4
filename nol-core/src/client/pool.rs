//! A fixed set of worker threads that do the network waiting, and the one-shot slots callers
//! wait on with their own deadline.
//!
//! Nothing here queues without bound: a job is accepted only when a worker is free to take it
//! at once, otherwise the caller fails open (`Busy`) without waiting.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

/// A job gets its worker's [`Release`]: dropping it gives the worker back, which a job does
/// before it hands out its result, so that a caller that starts its next lookup the moment it
/// has its answer finds the worker free.
pub(crate) type Job = Box<dyn FnOnce(Release) + Send + 'static>;

/// A running job's claim on its worker; dropping it (at the latest when the job ends or
/// unwinds) makes the worker free again, exactly once.
pub(crate) struct Release {
    free: Arc<AtomicUsize>,
}

impl Drop for Release {
    fn drop(&mut self) {
        self.free.fetch_add(1, Ordering::AcqRel);
    }
}

pub(crate) struct Pool {
    /// `None` only while the pool is dropped.
    sender: Option<SyncSender<Job>>,
    free: Arc<AtomicUsize>,
    size: usize,
    workers: Vec<std::thread::JoinHandle<()>>,
    /// The process that started the workers.
    pid: u32,
}

/// Joins a thread unless it is the current one (the last handle on a client can be dropped by
/// one of its own threads) or it belongs to the parent of a forked process (a child has only
/// the thread that called fork: there is nothing to join, and waiting would never end).
fn join_unless_current(handle: std::thread::JoinHandle<()>, spawned_by: u32) {
    if spawned_by == std::process::id() && handle.thread().id() != std::thread::current().id() {
        let _ = handle.join();
    }
}

impl Drop for Pool {
    /// Closes the queue and waits for the workers to end, so that no thread of a freed client
    /// outlives it: a host that frees a client and then forks must not hand its children
    /// memory owned by threads they lack. This never waits for a request: a job in flight
    /// holds the client's state, so the last pool handle is dropped by the last job to end,
    /// on its own worker, when every other worker is idle.
    fn drop(&mut self) {
        self.sender.take();
        for handle in self.workers.drain(..) {
            join_unless_current(handle, self.pid);
        }
    }
}

impl Pool {
    pub(crate) fn new(size: usize) -> std::io::Result<Pool> {
        let size = size.max(1);
        // Capacity equals the number of workers and a job is sent only after a free worker was
        // claimed, so `send` never blocks.
        let (sender, receiver) = mpsc::sync_channel::<Job>(size);
        let receiver = Arc::new(Mutex::new(receiver));
        let free = Arc::new(AtomicUsize::new(size));
        let mut workers = Vec::with_capacity(size);
        for i in 0..size {
            let receiver = receiver.clone();
            let free = free.clone();
            workers.push(
                std::thread::Builder::new()
                    .name(format!("nol-worker-{i}"))
                    .spawn(move || worker(receiver, free))?,
            );
        }
        Ok(Pool {
            sender: Some(sender),
            free,
            size,
            workers,
            pid: std::process::id(),
        })
    }

    /// Claims a free worker, or `None` at once when every worker is busy.
    pub(crate) fn try_reserve(&self) -> Option<Reservation<'_>> {
        self.free
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .ok()
            .map(|_| Reservation {
                pool: self,
                used: false,
            })
    }

    pub(crate) fn busy(&self) -> usize {
        self.size - self.free.load(Ordering::Acquire).min(self.size)
    }

    pub(crate) fn size(&self) -> usize {
        self.size
    }
}

/// A worker claimed for one job; dropping it unused gives the worker back.
pub(crate) struct Reservation<'a> {
    pool: &'a Pool,
    used: bool,
}

impl Reservation<'_> {
    pub(crate) fn run(mut self, job: Job) {
        // Capacity equals the number of workers and this worker is claimed: never full. If the
        // workers are gone (they never exit while the pool lives), the job is dropped unrun
        // and its caller's deadline still holds.
        if self
            .pool
            .sender
            .as_ref()
            .is_some_and(|s| s.try_send(job).is_ok())
        {
            self.used = true;
        }
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.used {
            self.pool.free.fetch_add(1, Ordering::AcqRel);
        }
    }
}

fn worker(receiver: Arc<Mutex<Receiver<Job>>>, free: Arc<AtomicUsize>) {
    loop {
        let job = {
            let guard = receiver.lock().unwrap_or_else(|p| p.into_inner());
            guard.recv()
        };
        let Ok(job) = job else {
            return; // the pool was dropped
        };
        // A panicking job must neither kill the worker nor leak its slot: its `Release` is
        // dropped by the unwind.
        let release = Release { free: free.clone() };
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || job(release)));
    }
}

type Waiter<T> = Box<dyn FnOnce(&T) + Send + 'static>;

struct SlotState<T> {
    value: Option<T>,
    waiters: Vec<Waiter<T>>,
}

/// A value set once, waited for by any number of threads (each until its own deadline) and
/// callbacks.
pub(crate) struct Slot<T> {
    state: Mutex<SlotState<T>>,
    ready: Condvar,
}

impl<T: Clone> Slot<T> {
    pub(crate) fn new() -> Slot<T> {
        Slot {
            state: Mutex::new(SlotState {
                value: None,
                waiters: Vec::new(),
            }),
            ready: Condvar::new(),
        }
    }

    /// Sets the value (the first one wins) and runs the callbacks, on this thread.
    pub(crate) fn set(&self, value: T) {
        let waiters = {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if s.value.is_some() {
                return;
            }
            s.value = Some(value.clone());
            std::mem::take(&mut s.waiters)
        };
        self.ready.notify_all();
        for w in waiters {
            w(&value);
        }
    }

    /// Runs `f` with the value when it is set (at once if it already is).
    pub(crate) fn on_set(&self, f: Waiter<T>) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match s.value.clone() {
            Some(value) => {
                drop(s);
                f(&value);
            }
            None => s.waiters.push(f),
        }
    }

    /// The value, or `None` if it is not set by `deadline`.
    pub(crate) fn wait_until(&self, deadline: Instant) -> Option<T> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(value) = s.value.as_ref() {
                return Some(value.clone());
            }
            let left = deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())?;
            s = self
                .ready
                .wait_timeout(s, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }
}

type Task = Box<dyn FnOnce() + Send + 'static>;

#[derive(Default)]
struct TimerState {
    due: std::collections::BinaryHeap<std::cmp::Reverse<(Instant, u64)>>,
    tasks: std::collections::HashMap<u64, Task>,
    next: u64,
    stop: bool,
}

struct TimerShared {
    state: Mutex<TimerState>,
    wake: Condvar,
}

/// One thread that runs tasks at their deadlines: how an asynchronous lookup ends on time
/// without holding a thread while its request is out.
pub(crate) struct Timer {
    shared: Arc<TimerShared>,
    thread: Option<std::thread::JoinHandle<()>>,
    pid: u32,
}

impl Timer {
    pub(crate) fn new() -> std::io::Result<Timer> {
        let shared = Arc::new(TimerShared {
            state: Mutex::new(TimerState::default()),
            wake: Condvar::new(),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("nol-timer".into())
            .spawn(move || timer_loop(&s))?;
        Ok(Timer {
            shared,
            thread: Some(thread),
            pid: std::process::id(),
        })
    }

    pub(crate) fn schedule(&self, at: Instant, task: Task) -> u64 {
        let mut s = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
        let id = s.next;
        s.next += 1;
        s.tasks.insert(id, task);
        s.due.push(std::cmp::Reverse((at, id)));
        drop(s);
        self.shared.wake.notify_one();
        id
    }

    /// Drops a task that has not run (its heap entry is skipped when it comes due).
    pub(crate) fn cancel(&self, id: u64) {
        let task = {
            let mut s = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
            s.tasks.remove(&id)
        };
        drop(task);
    }

    #[cfg(test)]
    fn pending(&self) -> usize {
        let s = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
        s.tasks.len()
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .stop = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            join_unless_current(thread, self.pid);
        }
    }
}

fn timer_loop(shared: &TimerShared) {
    let mut s = shared.state.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        if s.stop {
            return;
        }
        let now = Instant::now();
        let mut ready = Vec::new();
        while let Some(std::cmp::Reverse((at, id))) = s.due.peek().copied() {
            if at > now {
                break;
            }
            s.due.pop();
            if let Some(task) = s.tasks.remove(&id) {
                ready.push(task);
            }
        }
        // Cancelled entries whose deadline is far away are dropped from the heap lazily; keep
        // it from growing past the live tasks by much.
        if s.due.len() > 64 && s.due.len() > 4 * s.tasks.len() {
            let state = &mut *s;
            let tasks = &state.tasks;
            state
                .due
                .retain(|std::cmp::Reverse((_, id))| tasks.contains_key(id));
        }
        if !ready.is_empty() {
            drop(s);
            for task in ready {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(task));
            }
            s = shared.state.lock().unwrap_or_else(|p| p.into_inner());
            continue;
        }
        s = match s.due.peek() {
            Some(std::cmp::Reverse((at, _))) => {
                let wait = at.saturating_duration_since(Instant::now());
                shared
                    .wake
                    .wait_timeout(s, wait)
                    .map(|(g, _)| g)
                    .unwrap_or_else(|p| p.into_inner().0)
            }
            None => shared.wake.wait(s).unwrap_or_else(|p| p.into_inner()),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn refuses_work_when_every_worker_is_busy() {
        let pool = Pool::new(2).unwrap();
        let gate = Arc::new(Slot::<()>::new());
        for _ in 0..2 {
            let g = gate.clone();
            pool.try_reserve()
                .expect("a free worker")
                .run(Box::new(move |_| {
                    g.wait_until(Instant::now() + Duration::from_secs(5));
                }));
        }
        assert_eq!(pool.busy(), 2);
        assert!(pool.try_reserve().is_none());
        gate.set(());
        let deadline = Instant::now() + Duration::from_secs(5);
        while pool.busy() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(pool.busy(), 0);
        drop(pool.try_reserve());
        assert_eq!(
            pool.busy(),
            0,
            "an unused reservation gives its worker back"
        );
        let done = Arc::new(Slot::new());
        let d = done.clone();
        pool.try_reserve()
            .expect("free")
            .run(Box::new(move |_| d.set(7)));
        assert_eq!(
            done.wait_until(Instant::now() + Duration::from_secs(5)),
            Some(7)
        );
    }

    #[test]
    fn dropping_the_pool_ends_its_threads() {
        let pool = Pool::new(3).unwrap();
        let threads: Vec<_> = pool.workers.iter().map(|h| h.thread().clone()).collect();
        assert_eq!(threads.len(), 3);
        let done = Arc::new(Slot::new());
        let d = done.clone();
        pool.try_reserve().expect("free").run(Box::new(move |_| {
            std::thread::sleep(Duration::from_millis(30));
            d.set(1);
        }));
        drop(pool);
        // Joined: the job in flight had finished before drop returned.
        assert_eq!(done.wait_until(Instant::now()), Some(1));
        let timer = Timer::new().unwrap();
        drop(timer);
    }

    #[test]
    fn a_worker_released_before_the_result_is_free_for_the_next_job() {
        let pool = Pool::new(1).unwrap();
        for i in 0..200 {
            let done = Arc::new(Slot::new());
            let d = done.clone();
            pool.try_reserve()
                .unwrap_or_else(|| panic!("job {i}: the only worker is still busy"))
                .run(Box::new(move |release| {
                    drop(release);
                    d.set(i);
                }));
            assert_eq!(
                done.wait_until(Instant::now() + Duration::from_secs(5)),
                Some(i)
            );
        }
    }

    #[test]
    fn a_panicking_job_keeps_its_worker() {
        let pool = Pool::new(1).unwrap();
        pool.try_reserve()
            .expect("free")
            .run(Box::new(|_| panic!("job panics")));
        let done = Arc::new(Slot::new());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(r) = pool.try_reserve() {
                let d = done.clone();
                r.run(Box::new(move |_| d.set(1)));
                break;
            }
            assert!(Instant::now() < deadline, "worker never came back");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(
            done.wait_until(Instant::now() + Duration::from_secs(5)),
            Some(1)
        );
    }

    #[test]
    fn timer_runs_tasks_at_their_deadlines_and_cancels() {
        let timer = Timer::new().unwrap();
        let fired = Arc::new(Slot::new());
        let start = Instant::now();
        let f = fired.clone();
        timer.schedule(
            start + Duration::from_millis(40),
            Box::new(move || f.set(start.elapsed())),
        );
        let cancelled = timer.schedule(
            start + Duration::from_millis(10),
            Box::new(|| panic!("cancelled")),
        );
        timer.cancel(cancelled);
        let at = fired
            .wait_until(start + Duration::from_secs(5))
            .expect("fired");
        assert!(
            at >= Duration::from_millis(40) && at < Duration::from_millis(500),
            "{at:?}"
        );
        assert_eq!(timer.pending(), 0);
    }

    #[test]
    fn slot_callbacks_run_once_set() {
        let slot: Slot<u8> = Slot::new();
        let seen = Arc::new(AtomicUsize::new(0));
        let s = seen.clone();
        slot.on_set(Box::new(move |v| {
            s.fetch_add(usize::from(*v), Ordering::SeqCst);
        }));
        slot.set(5);
        let s = seen.clone();
        slot.on_set(Box::new(move |v| {
            s.fetch_add(usize::from(*v), Ordering::SeqCst);
        }));
        assert_eq!(seen.load(Ordering::SeqCst), 10);
    }

    #[test]
    fn slot_waits_until_deadline() {
        let slot: Slot<u8> = Slot::new();
        let start = Instant::now();
        assert_eq!(slot.wait_until(start + Duration::from_millis(30)), None);
        assert!(start.elapsed() >= Duration::from_millis(30));
        slot.set(3);
        slot.set(4);
        assert_eq!(slot.wait_until(start), Some(3));
    }
}
