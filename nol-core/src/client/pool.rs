//! A fixed set of worker threads that do the network waiting, and the one-shot slots callers
//! wait on with their own deadline.
//!
//! Nothing here queues without bound: a job is accepted only when a worker is free to take it
//! at once, otherwise the caller fails open (`Busy`) without waiting.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

type Job = Box<dyn FnOnce() + Send + 'static>;

pub(crate) struct Pool {
    sender: SyncSender<Job>,
    free: Arc<AtomicUsize>,
    size: usize,
}

impl Pool {
    pub(crate) fn new(size: usize) -> std::io::Result<Pool> {
        let size = size.max(1);
        // Capacity equals the number of workers and a job is sent only after a free worker was
        // claimed, so `send` never blocks.
        let (sender, receiver) = mpsc::sync_channel::<Job>(size);
        let receiver = Arc::new(Mutex::new(receiver));
        let free = Arc::new(AtomicUsize::new(size));
        for i in 0..size {
            let receiver = receiver.clone();
            let free = free.clone();
            std::thread::Builder::new()
                .name(format!("nol-worker-{i}"))
                .spawn(move || worker(receiver, free))?;
        }
        Ok(Pool { sender, free, size })
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
        if self.pool.sender.try_send(job).is_ok() {
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
        // A panicking job must neither kill the worker nor leak its slot.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
        free.fetch_add(1, Ordering::AcqRel);
    }
}

/// A value set once, waited for by any number of threads, each until its own deadline.
pub(crate) struct Slot<T> {
    value: Mutex<Option<T>>,
    ready: Condvar,
}

impl<T: Clone> Slot<T> {
    pub(crate) fn new() -> Slot<T> {
        Slot {
            value: Mutex::new(None),
            ready: Condvar::new(),
        }
    }

    pub(crate) fn set(&self, value: T) {
        let mut v = self.value.lock().unwrap_or_else(|p| p.into_inner());
        if v.is_none() {
            *v = Some(value);
        }
        self.ready.notify_all();
    }

    /// The value, or `None` if it is not set by `deadline`.
    pub(crate) fn wait_until(&self, deadline: Instant) -> Option<T> {
        let mut v = self.value.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(value) = v.as_ref() {
                return Some(value.clone());
            }
            let left = deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())?;
            v = self
                .ready
                .wait_timeout(v, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
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
                .run(Box::new(move || {
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
            .run(Box::new(move || d.set(7)));
        assert_eq!(
            done.wait_until(Instant::now() + Duration::from_secs(5)),
            Some(7)
        );
    }

    #[test]
    fn a_panicking_job_keeps_its_worker() {
        let pool = Pool::new(1).unwrap();
        pool.try_reserve()
            .expect("free")
            .run(Box::new(|| panic!("job panics")));
        let done = Arc::new(Slot::new());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(r) = pool.try_reserve() {
                let d = done.clone();
                r.run(Box::new(move || d.set(1)));
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
