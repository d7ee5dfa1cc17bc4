//! The shared cache tier's store on Redis (the `redis` cargo feature), with the redis crate's
//! blocking API: a small pool of connections, each operation bounded by its own timeouts, and
//! one thread that makes connections, so that no lookup ever waits for a connect.
//!
//! - A lookup's operation runs on one of a few threads of the store's own, and the lookup
//!   waits for it only until its share of the budget ends, whatever the server does: a server
//!   that drips its reply a byte at a time (each read within the socket timeout) holds one of
//!   those threads, never a call. With every one of them busy, the lookup skips Redis.
//! - An operation takes an idle connection, or skips Redis (and asks the connecting thread for
//!   one more).
//! - Every operation sets the connection's read and write timeouts to what is left of the
//!   operation's time; a connection that fails (a timeout, an error, a reply that makes no
//!   sense) is dropped, and with a timeout or a broken connection every idle one too, since
//!   they lead to the same server.
//! - The thread connects with a timeout of its own, backs off after a failure, and waits while
//!   the tier's breaker is open; its connect after the cool-down is the breaker's probe.
//! - Several URLs are the nodes of a Redis Cluster: the crate's cluster client, with no retries
//!   and no reconnecting inside an operation (a connection that meets a redirect or a dead node
//!   is dropped, and the thread makes a new one, which learns the slots again). A value and its
//!   lease share a hash tag, so every operation goes to one node in one round trip.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use redis::{ConnectionLike, Value};

use super::config::RedisUrl;
use super::pool::{Pool, Release, Slot};
use super::shared::{
    background_timeout, join_within, Breaker, Failure, Op, Read, SharedCache, BREAKER_COOL_DOWN,
};
use super::stats::SharedCounters;
use crate::settings::ConfigError;

/// Connections the thread makes ahead of any lookup.
const PREFILL: usize = 2;
/// The most connections asked for and not yet made.
const MAX_PENDING: usize = 4;
/// The first pause after a failed connect (then doubled, up to the breaker's cool-down).
const FIRST_BACKOFF: Duration = Duration::from_millis(25);
/// The most threads running lookups' operations.
const RUNNERS: usize = 8;

enum Target {
    Single(redis::Client),
    Cluster(redis::cluster::ClusterClient),
}

enum Conn {
    Single(redis::Connection),
    Cluster(Box<redis::cluster::ClusterConnection>),
}

/// How an operation failed: a broken or silent connection (every idle one goes too), or a
/// reply that makes no sense (only this connection goes).
enum Fail {
    Broken,
    Garbage,
}

impl From<redis::RedisError> for Fail {
    fn from(_: redis::RedisError) -> Fail {
        // Transport errors: a timeout, a closed or reset connection, bytes that are not RESP.
        Fail::Broken
    }
}

impl Conn {
    fn set_timeouts(&self, d: Duration) -> redis::RedisResult<()> {
        match self {
            Conn::Single(c) => {
                c.set_read_timeout(Some(d))?;
                c.set_write_timeout(Some(d))
            }
            Conn::Cluster(c) => {
                c.set_read_timeout(Some(d))?;
                c.set_write_timeout(Some(d))
            }
        }
    }

    /// The replies to `pipe`'s commands, sent together. On a cluster the first command's key
    /// routes them all (they share a hash tag), with no retry.
    fn pipeline(&mut self, pipe: &redis::Pipeline) -> Result<Vec<Value>, Fail> {
        let packed = pipe.get_packed_pipeline();
        let conn: &mut dyn ConnectionLike = match self {
            Conn::Single(c) => c,
            Conn::Cluster(c) => &mut **c,
        };
        let replies = conn.req_packed_commands(&packed, 0, pipe.len())?;
        if replies.len() != pipe.len() {
            return Err(Fail::Garbage);
        }
        Ok(replies)
    }
}

/// Deletes a lease only while its holder's token is in it: a lease that expired and was taken
/// by another node is left to that node.
const RELEASE_SCRIPT: &str =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

fn release_cmd(pipe: &mut redis::Pipeline, lease: &str, token: &str) {
    pipe.cmd("EVAL")
        .arg(RELEASE_SCRIPT)
        .arg(1)
        .arg(lease)
        .arg(token);
}

fn bulk(v: Value) -> Result<Option<Vec<u8>>, Fail> {
    match v {
        Value::Nil => Ok(None),
        Value::BulkString(b) => Ok(Some(b)),
        _ => Err(Fail::Garbage),
    }
}

fn int(v: &Value) -> Result<i64, Fail> {
    match v {
        Value::Int(n) => Ok(*n),
        _ => Err(Fail::Garbage),
    }
}

fn ok(v: &Value) -> Result<bool, Fail> {
    match v {
        Value::Okay => Ok(true),
        Value::SimpleString(s) if s == "OK" => Ok(true),
        Value::Nil => Ok(false),
        _ => Err(Fail::Garbage),
    }
}

/// `PX` milliseconds: at least 1.
fn px(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

struct Want {
    /// Connections asked for and not yet made.
    wanted: usize,
    stop: bool,
}

struct Shared {
    target: Target,
    idle: Mutex<Vec<Conn>>,
    /// Signalled when a connection goes back to `idle` (for the writer, which may wait).
    ready: Condvar,
    /// Connections that exist, idle or in use.
    live: AtomicUsize,
    max: usize,
    want: Mutex<Want>,
    wake: Condvar,
    breaker: Arc<Breaker>,
    counters: Arc<SharedCounters>,
    connect_timeout: Duration,
    /// Where lookups' operations run.
    runners: Pool,
}

/// The Redis store of a [`super::shared::Tier`].
pub(crate) struct Redis {
    shared: Arc<Shared>,
    /// The connecting thread, and what tells of its end (in a mutex only to be `Sync`).
    thread: Mutex<Option<(std::thread::JoinHandle<()>, Receiver<()>)>>,
    pid: u32,
    shown: String,
}

impl fmt::Debug for Redis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redis").field("url", &self.shown).finish()
    }
}

/// Why `redis_url` cannot be used: the reason only, never the URL.
fn unusable(reason: &'static str) -> ConfigError {
    ConfigError::InvalidValue {
        setting: "redis_url",
        reason,
    }
}

impl Redis {
    /// The store at `url`: checked now, connected in the background (this never waits for
    /// Redis).
    pub(crate) fn start(
        url: &RedisUrl,
        budget: Duration,
        max_in_flight: usize,
        breaker: Arc<Breaker>,
        counters: Arc<SharedCounters>,
    ) -> Result<Redis, ConfigError> {
        let connect_timeout = background_timeout(budget);
        let target = if url.is_cluster() {
            let nodes: Vec<&str> = url.urls().iter().map(String::as_str).collect();
            redis::cluster::ClusterClientBuilder::new(nodes)
                .connection_timeout(connect_timeout)
                .response_timeout(connect_timeout)
                // One try per operation: a redirect or a dead node drops the connection, and
                // the thread makes a new one (which reads the slots again).
                .retries(0)
                .build()
                .map(Target::Cluster)
                .map_err(|_| unusable("the redis crate cannot use these Redis Cluster URLs"))?
        } else {
            let Some(one) = url.urls().first() else {
                return Err(unusable("empty"));
            };
            redis::Client::open(one.as_str())
                .map(Target::Single)
                .map_err(|_| unusable("the redis crate cannot use this URL"))?
        };
        let runners = max_in_flight.clamp(1, RUNNERS);
        let shared = Arc::new(Shared {
            target,
            idle: Mutex::new(Vec::new()),
            ready: Condvar::new(),
            live: AtomicUsize::new(0),
            // One for each runner and one for the writer.
            max: (runners + 1).max(PREFILL),
            want: Mutex::new(Want {
                wanted: PREFILL,
                stop: false,
            }),
            wake: Condvar::new(),
            breaker,
            counters,
            connect_timeout,
            runners: Pool::new(runners).map_err(|e| {
                ConfigError::Invalid(format!("starting the shared cache's threads: {e}"))
            })?,
        });
        let (exited, exit) = mpsc::sync_channel::<()>(0);
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("nol-shared-connect".into())
            .spawn(move || {
                let _exited = exited;
                s.connect_loop();
            })
            .map_err(|e| {
                ConfigError::Invalid(format!(
                    "starting the shared cache's connecting thread: {e}"
                ))
            })?;
        Ok(Redis {
            shared,
            thread: Mutex::new(Some((thread, exit))),
            pid: std::process::id(),
            shown: url.redacted().to_string(),
        })
    }
}

impl Drop for Redis {
    /// Stops the connecting thread and waits for it (a connect in progress ends within its
    /// timeout; one stuck beyond that, in a resolver, is left to end on its own).
    fn drop(&mut self) {
        self.shared.lock_want().stop = true;
        self.shared.wake.notify_all();
        let thread = self.thread.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some((thread, exit)) = thread.take() {
            join_within(thread, &exit, self.pid, self.shared.connect_timeout * 2);
        }
    }
}

impl Shared {
    fn lock_want(&self) -> MutexGuard<'_, Want> {
        self.want.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_idle(&self) -> MutexGuard<'_, Vec<Conn>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish_live(&self) {
        self.counters
            .connections
            .store(self.live.load(Ordering::Acquire) as u64, Ordering::Relaxed);
    }

    /// Asks the thread for one more connection (never more than `MAX_PENDING` outstanding, nor
    /// past `max`).
    fn want_one(&self) {
        let mut w = self.lock_want();
        if w.wanted < MAX_PENDING && self.live.load(Ordering::Acquire) + w.wanted < self.max {
            w.wanted += 1;
        }
        drop(w);
        self.wake.notify_one();
    }

    /// An idle connection; without one, `NotReady` at once (or, for an operation that may wait,
    /// when `op.until` comes first).
    fn take(&self, op: Op) -> Result<Conn, Failure> {
        let mut idle = self.lock_idle();
        loop {
            if let Some(c) = idle.pop() {
                return Ok(c);
            }
            self.want_one();
            let left = op
                .until
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero());
            let (true, Some(left)) = (op.wait, left) else {
                return Err(Failure::NotReady);
            };
            idle = self
                .ready
                .wait_timeout(idle, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    fn give_back(&self, conn: Conn) {
        self.lock_idle().push(conn);
        self.ready.notify_one();
    }

    /// Drops a connection that failed; a broken one takes every idle connection with it.
    fn discard(&self, conn: Conn, broken: bool) {
        drop(conn);
        let mut gone = 1;
        if broken {
            let idle = std::mem::take(&mut *self.lock_idle());
            gone += idle.len();
            drop(idle);
        }
        self.live.fetch_sub(gone, Ordering::AcqRel);
        self.publish_live();
        self.want_one();
    }

    /// Runs `f` on a connection within `op`'s time.
    fn run<T>(&self, op: Op, f: impl FnOnce(&mut Conn) -> Result<T, Fail>) -> Result<T, Failure> {
        let mut conn = self.take(op)?;
        let Some(left) = op
            .until
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        else {
            self.give_back(conn);
            return Err(Failure::NotReady);
        };
        if conn.set_timeouts(left).is_err() {
            self.discard(conn, true);
            return Err(Failure::Failed);
        }
        match f(&mut conn) {
            Ok(v) => {
                self.give_back(conn);
                Ok(v)
            }
            Err(fail) => {
                self.discard(conn, matches!(fail, Fail::Broken));
                Err(Failure::Failed)
            }
        }
    }

    /// Runs `f`: on this thread for an operation that may wait (the writer's); otherwise on a
    /// runner, waiting for it until `op.until` and no longer (`Failed` then: it took longer than
    /// its share). No runner free: `NotReady`.
    fn submit<T: Clone + Send + 'static>(
        self: &Arc<Self>,
        op: Op,
        f: impl FnOnce(&Shared) -> Result<T, Failure> + Send + 'static,
    ) -> Result<T, Failure> {
        if op.wait {
            return f(self);
        }
        // No time left is the lookup's state, not the store's: skipped, not a failure that
        // would count toward the tier's breaker.
        if op.until <= Instant::now() {
            return Err(Failure::NotReady);
        }
        let runner = self.runners.try_reserve().ok_or(Failure::NotReady)?;
        let slot = Arc::new(Slot::new());
        let (out, shared) = (slot.clone(), self.clone());
        runner.run(Box::new(move |release: Release| {
            let result = f(&shared);
            drop(release);
            out.set(result);
        }));
        slot.wait_until(op.until).unwrap_or(Err(Failure::Failed))
    }

    fn connect(&self) -> redis::RedisResult<Conn> {
        match &self.target {
            Target::Single(c) => c
                .get_connection_with_timeout(self.connect_timeout)
                .map(Conn::Single),
            Target::Cluster(c) => {
                let conn = c.get_connection()?;
                conn.set_auto_reconnect(false);
                Ok(Conn::Cluster(Box::new(conn)))
            }
        }
    }

    /// Sleeps until `until` or until the store is dropped; whether it was dropped.
    fn sleep_until(&self, until: Instant) -> bool {
        let mut w = self.lock_want();
        loop {
            if w.stop {
                return true;
            }
            let Some(left) = until
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
            else {
                return false;
            };
            w = self
                .wake
                .wait_timeout(w, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// The connecting thread: makes the connections asked for, one at a time.
    fn connect_loop(&self) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            {
                let mut w = self.lock_want();
                while !w.stop && w.wanted == 0 {
                    w = self.wake.wait(w).unwrap_or_else(|p| p.into_inner());
                }
                if w.stop {
                    return;
                }
                if self.live.load(Ordering::Acquire) >= self.max {
                    w.wanted = 0;
                    continue;
                }
            }
            if let Some(until) = self.breaker.open_until() {
                if self.sleep_until(until) {
                    return;
                }
                continue;
            }
            let started = Instant::now();
            // A connect that succeeded only after its timeout (a server that drips its
            // replies gets past the per-read timeouts) is a failure too.
            let made = self
                .connect()
                .ok()
                .filter(|_| started.elapsed() <= self.connect_timeout);
            match made {
                Some(conn) => {
                    self.breaker.connected();
                    self.live.fetch_add(1, Ordering::AcqRel);
                    self.publish_live();
                    {
                        let mut w = self.lock_want();
                        w.wanted = w.wanted.saturating_sub(1);
                    }
                    self.give_back(conn);
                    backoff = FIRST_BACKOFF;
                }
                None => {
                    SharedCounters::add(&self.counters.errors);
                    self.breaker.failure();
                    if self.sleep_until(Instant::now() + backoff) {
                        return;
                    }
                    backoff = (backoff * 2).min(BREAKER_COOL_DOWN);
                }
            }
        }
    }
}

impl SharedCache for Redis {
    fn wait_ready(&self, within: Duration) -> bool {
        let op = Op {
            until: Instant::now() + within,
            wait: true,
        };
        // a connection taken as the writer would take one, and given straight back
        match self.shared.take(op) {
            Ok(conn) => {
                self.shared.give_back(conn);
                true
            }
            Err(_) => false,
        }
    }

    fn read(&self, key: &str, lease: Option<&str>, op: Op) -> Result<Read, Failure> {
        let (key, lease) = (key.to_string(), lease.map(str::to_string));
        self.shared
            .submit(op, move |s| s.read(&key, lease.as_deref(), op))
    }

    fn lease(&self, lease: &str, token: &str, ttl: Duration, op: Op) -> Result<bool, Failure> {
        let (lease, token) = (lease.to_string(), token.to_string());
        self.shared
            .submit(op, move |s| s.lease(&lease, &token, ttl, op))
    }

    fn put(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
        release: Option<(&str, &str)>,
        op: Op,
    ) -> Result<(), Failure> {
        let (key, value) = (key.to_string(), value.to_vec());
        let release = release.map(|(l, t)| (l.to_string(), t.to_string()));
        self.shared.submit(op, move |s| {
            let release = release.as_ref().map(|(l, t)| (l.as_str(), t.as_str()));
            s.put(&key, &value, ttl, release, op)
        })
    }

    fn release(&self, lease: &str, token: &str, op: Op) -> Result<(), Failure> {
        let (lease, token) = (lease.to_string(), token.to_string());
        self.shared
            .submit(op, move |s| s.release(&lease, &token, op))
    }
}

/// The operations, on the thread that runs them.
impl Shared {
    fn read(&self, key: &str, lease: Option<&str>, op: Op) -> Result<Read, Failure> {
        let mut pipe = redis::pipe();
        if let Some(lease) = lease {
            pipe.cmd("EXISTS").arg(lease);
        }
        // At most one byte past the longest value the tier accepts (a longer one is refused):
        // never a poisoned value's hundreds of megabytes. A missing key reads as empty.
        pipe.cmd("GETRANGE")
            .arg(key)
            .arg(0)
            .arg(super::shared::MAX_VALUE_LEN)
            .cmd("PTTL")
            .arg(key);
        self.run(op, |conn| {
            let mut replies = conn.pipeline(&pipe)?.into_iter();
            let leased = match lease {
                Some(_) => int(&replies.next().unwrap_or_default())? > 0,
                None => false,
            };
            let value = bulk(replies.next().unwrap_or_default())?.filter(|v| !v.is_empty());
            let pttl = int(&replies.next().unwrap_or_default())?;
            let ttl = match pttl {
                // No expiry set: the seal's expiry still holds.
                -1 => None,
                // Gone between the two commands (or never there).
                ms if ms < 0 => Some(Duration::ZERO),
                ms => Some(Duration::from_millis(ms.unsigned_abs())),
            };
            Ok(Read { value, ttl, leased })
        })
    }

    fn lease(&self, lease: &str, token: &str, ttl: Duration, op: Op) -> Result<bool, Failure> {
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(lease)
            .arg(token)
            .arg("NX")
            .arg("PX")
            .arg(px(ttl));
        self.run(op, |conn| {
            let replies = conn.pipeline(&pipe)?;
            ok(&replies[0])
        })
    }

    fn put(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
        release: Option<(&str, &str)>,
        op: Op,
    ) -> Result<(), Failure> {
        let mut pipe = redis::pipe();
        pipe.cmd("SET").arg(key).arg(value).arg("PX").arg(px(ttl));
        if let Some((lease, token)) = release {
            release_cmd(&mut pipe, lease, token);
        }
        self.run(op, |conn| {
            let replies = conn.pipeline(&pipe)?;
            if !ok(&replies[0])? {
                return Err(Fail::Garbage);
            }
            if release.is_some() {
                int(&replies[1])?;
            }
            Ok(())
        })
    }

    fn release(&self, lease: &str, token: &str, op: Op) -> Result<(), Failure> {
        let mut pipe = redis::pipe();
        release_cmd(&mut pipe, lease, token);
        self.run(op, |conn| {
            let replies = conn.pipeline(&pipe)?;
            int(&replies[0]).map(|_| ())
        })
    }
}
