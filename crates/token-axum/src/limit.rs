//! Bounds for endpoints that are costly or guessable, such as a password login.
//!
//! - [`ConcurrencyBound`] caps how many costly operations (password hashing, …) run at
//!   once. A caller waits briefly for a turn, then gets [`Error::Busy`] (`503` with
//!   `Retry-After`). The memory and CPU the operation takes are therefore bounded
//!   however many requests arrive.
//! - [`FailureLimiter`] counts failures per key (an account name, a client address)
//!   in a fixed window. A key that has used its allowance gets
//!   [`Error::RateLimited`] (`429` with `Retry-After`) until its window ends. It holds at
//!   most a configured number of keys: when full, the key whose window started first
//!   (the one closest to expiry) is forgotten.
//!
//! ```
//! # async fn run(username: String, client: std::net::IpAddr) -> token_axum::Result<bool> {
//! use std::time::Duration;
//! use token_axum::limit::{ConcurrencyBound, FailureLimiter, address_key};
//!
//! let checks = ConcurrencyBound::per_core();
//! let per_account = FailureLimiter::<String>::new(10, Duration::from_secs(900));
//! let per_address = FailureLimiter::new(100, Duration::from_secs(900));
//!
//! // Each counted as a failure before the check, so concurrent guesses cannot
//! // overtake the limits.
//! let by_address = per_address.begin(address_key(client))?; // 429
//! let by_account = match per_account.begin(username) {
//!     Ok(attempt) => attempt,
//!     Err(limited) => {
//!         by_address.forgive(); // not checked: not a failure
//!         return Err(limited); // 429
//!     }
//! };
//! match checks.spawn_blocking(|| false /* the password check */).await {
//!     Ok(true) => {
//!         // A success takes back its own attempts (and erases no other failure).
//!         by_address.forgive();
//!         by_account.forgive();
//!         Ok(true)
//!     }
//!     // Dropped without `forgive`: both stay counted.
//!     Ok(false) => Ok(false), // 401
//!     Err(busy) => {
//!         by_address.forgive();
//!         by_account.forgive();
//!         Err(busy) // 503
//!     }
//! }
//! # }
//! ```

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, Result};

/// How long [`ConcurrencyBound::acquire`] waits for a turn by default.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(1);
/// How many callers may wait for a turn, per permit, by default.
pub const DEFAULT_QUEUE_PER_PERMIT: usize = 32;
/// The `Retry-After` of [`Error::Busy`] by default.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);
/// How many keys a [`FailureLimiter`] holds by default.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// Caps how many costly operations run at once. A caller waits at most
/// [`ConcurrencyBound::max_wait`] for a turn, and only while fewer than
/// [`ConcurrencyBound::max_queue`] others wait; otherwise it gets [`Error::Busy`]
/// (`503` with `Retry-After`).
///
/// Clones share the permits.
#[derive(Clone)]
pub struct ConcurrencyBound {
    semaphore: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    permits: usize,
    max_wait: Duration,
    max_queue: usize,
    retry_after: Duration,
}

impl fmt::Debug for ConcurrencyBound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyBound")
            .field("permits", &self.permits)
            .field("available", &self.available())
            .field("waiting", &self.waiting.load(Ordering::SeqCst))
            .field("max_wait", &self.max_wait)
            .field("max_queue", &self.max_queue)
            .finish_non_exhaustive()
    }
}

impl ConcurrencyBound {
    /// At most `permits` operations at once (at least one), with the default wait
    /// (one second), queue (32 per permit) and `Retry-After` (one second).
    pub fn new(permits: usize) -> Self {
        let permits = permits.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            semaphore: Arc::new(Semaphore::new(permits)),
            waiting: Arc::new(AtomicUsize::new(0)),
            permits,
            max_wait: DEFAULT_MAX_WAIT,
            max_queue: permits.saturating_mul(DEFAULT_QUEUE_PER_PERMIT),
            retry_after: DEFAULT_RETRY_AFTER,
        }
    }

    /// One operation per core ([`std::thread::available_parallelism`]; one if unknown):
    /// the right size for CPU- and memory-bound work such as password hashing.
    pub fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, NonZeroUsize::get))
    }

    /// The longest a caller waits for a turn (default one second).
    #[must_use]
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = wait;
        self
    }

    /// How many callers may wait at once; the next is refused at once (default 32 per
    /// permit).
    #[must_use]
    pub fn max_queue(mut self, callers: usize) -> Self {
        self.max_queue = callers;
        self
    }

    /// The `Retry-After` a refused caller is given (default one second).
    #[must_use]
    pub fn retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = retry_after;
        self
    }

    /// How many operations may run at once.
    pub fn permits(&self) -> usize {
        self.permits
    }

    /// How many more operations could start now.
    pub fn available(&self) -> usize {
        self.semaphore.available_permits()
    }

    /// A turn: held until the permit is dropped.
    ///
    /// # Errors
    /// [`Error::Busy`] when no turn came within the wait, or too many callers already
    /// wait.
    pub async fn acquire(&self) -> Result<ConcurrencyPermit> {
        if let Ok(permit) = self.semaphore.clone().try_acquire_owned() {
            return Ok(ConcurrencyPermit { _permit: permit });
        }
        let _queued = Queued::join(&self.waiting, self.max_queue).ok_or_else(|| self.busy())?;
        match tokio::time::timeout(self.max_wait, self.semaphore.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(ConcurrencyPermit { _permit: permit }),
            // Timed out (the semaphore is never closed).
            Ok(Err(_)) | Err(_) => Err(self.busy()),
        }
    }

    /// Runs `f` on tokio's blocking pool once a turn is had. The turn is held until
    /// `f` returns, even if the caller stops waiting for it: a client that hangs up
    /// cannot free a turn while its work still runs.
    ///
    /// # Errors
    /// [`Error::Busy`] as [`ConcurrencyBound::acquire`]; [`Error::Internal`] if `f`
    /// panicked.
    pub async fn spawn_blocking<F, T>(&self, f: F) -> Result<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit = self.acquire().await?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f()
        })
        .await
        .map_err(|_| Error::Internal("a bounded blocking task failed".into()))
    }

    fn busy(&self) -> Error {
        Error::Busy {
            retry_after: self.retry_after,
        }
    }
}

/// One caller counted as waiting, for as long as it lives.
struct Queued<'a>(&'a AtomicUsize);

impl<'a> Queued<'a> {
    fn join(waiting: &'a AtomicUsize, max: usize) -> Option<Self> {
        waiting
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(waiting))
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A turn of a [`ConcurrencyBound`], given back when dropped. Move it into the work
/// it guards (`Send + 'static`).
#[derive(Debug)]
pub struct ConcurrencyPermit {
    _permit: OwnedSemaphorePermit,
}

/// The key under which a client address is counted: IPv4 addresses as they are,
/// IPv4-mapped IPv6 addresses as their IPv4 address, and other IPv6 addresses as their
/// `/64` prefix — one host usually holds a whole `/64`, so counting single IPv6
/// addresses would give it billions of allowances.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(
                u128::from(v6) & 0xffff_ffff_ffff_ffff_0000_0000_0000_0000,
            )),
        },
    }
}

/// Counts failures per key in a fixed window: after `max_failures` failures within
/// `window` of a key's first one, the key is refused with [`Error::RateLimited`]
/// (`429`, `Retry-After` = the rest of the window) until the window ends.
///
/// An attempt is counted as a failure when it *begins* ([`FailureLimiter::begin`]),
/// so concurrent attempts cannot overtake the limit; [`Attempt::forgive`] takes it
/// back when it succeeded or was never checked. A success only takes back its own
/// attempt: it erases no earlier failure, so an attacker who owns one account cannot
/// reset the count of an address it shares with its guesses.
///
/// At most [`FailureLimiter::capacity`] keys are held; when full, the key whose
/// window started first is forgotten. Size the capacity above the number of distinct
/// keys that can fail within one window (with a [`ConcurrencyBound`] in front, that
/// is at most its throughput times the window).
///
/// Clones share the counts.
pub struct FailureLimiter<K> {
    table: Arc<Mutex<Table<K>>>,
    max_failures: u32,
    window: Duration,
    capacity: usize,
}

impl<K> Clone for FailureLimiter<K> {
    fn clone(&self) -> Self {
        Self {
            table: self.table.clone(),
            max_failures: self.max_failures,
            window: self.window,
            capacity: self.capacity,
        }
    }
}

impl<K> fmt::Debug for FailureLimiter<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailureLimiter")
            .field("max_failures", &self.max_failures)
            .field("window", &self.window)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

struct Entry {
    failures: u32,
    since: Instant,
}

struct Table<K> {
    entries: HashMap<K, Entry>,
    /// Each entry's key and window start, oldest first; items whose start no longer
    /// matches their entry's are skipped when met, and dropped when they pile up.
    order: VecDeque<(K, Instant)>,
}

impl<K: Hash + Eq + Clone> FailureLimiter<K> {
    /// At most `max_failures` failures per key within `window` of its first one, for
    /// up to [`DEFAULT_CAPACITY`] keys.
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            table: Arc::new(Mutex::new(Table {
                entries: HashMap::new(),
                order: VecDeque::new(),
            })),
            max_failures,
            window,
            capacity: DEFAULT_CAPACITY,
        }
    }

    /// How many keys are held at most (default [`DEFAULT_CAPACITY`], at least one).
    #[must_use]
    pub fn capacity(mut self, keys: usize) -> Self {
        self.capacity = keys.max(1);
        self
    }

    /// Counts an attempt for `key` as a failure, unless the key has used its
    /// allowance.
    ///
    /// # Errors
    /// [`Error::RateLimited`] with the rest of the key's window.
    pub fn begin(&self, key: K) -> Result<Attempt<K>> {
        let mut table = self.lock();
        // Read under the lock, so window starts are pushed in order.
        let now = Instant::now();
        self.begin_locked(&mut table, key, now)
    }

    /// How many failures `key` has in its current window.
    pub fn failures(&self, key: &K) -> u32 {
        self.failures_at(key, Instant::now())
    }

    /// How many keys are held.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table<K>> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn failures_at(&self, key: &K, now: Instant) -> u32 {
        self.lock()
            .entries
            .get(key)
            .filter(|e| now.saturating_duration_since(e.since) < self.window)
            .map_or(0, |e| e.failures)
    }

    fn begin_locked(&self, table: &mut Table<K>, key: K, now: Instant) -> Result<Attempt<K>> {
        table.expire(now, self.window);
        let since = match table.entries.get_mut(&key) {
            Some(entry) if now.saturating_duration_since(entry.since) < self.window => {
                if entry.failures >= self.max_failures {
                    let elapsed = now.saturating_duration_since(entry.since);
                    return Err(Error::RateLimited {
                        retry_after: self.window.saturating_sub(elapsed),
                    });
                }
                entry.failures += 1;
                entry.since
            }
            _ => {
                if self.max_failures == 0 {
                    return Err(Error::RateLimited {
                        retry_after: self.window,
                    });
                }
                table.entries.insert(
                    key.clone(),
                    Entry {
                        failures: 1,
                        since: now,
                    },
                );
                table.order.push_back((key.clone(), now));
                table.shrink_to(self.capacity);
                now
            }
        };
        Ok(Attempt {
            table: Arc::downgrade(&self.table),
            key: Some(key),
            since,
        })
    }

    #[cfg(test)]
    fn begin_at(&self, key: K, now: Instant) -> Result<Attempt<K>> {
        let mut table = self.lock();
        self.begin_locked(&mut table, key, now)
    }
}

impl<K: Hash + Eq + Clone> Table<K> {
    /// Whether the order item `(key, since)` is its entry's current one.
    fn is_current(&self, key: &K, since: Instant) -> bool {
        self.entries.get(key).is_some_and(|e| e.since == since)
    }

    fn remove_if_current(&mut self, key: &K, since: Instant) {
        if self.is_current(key, since) {
            self.entries.remove(key);
        }
    }

    /// Drops the keys whose window ended.
    fn expire(&mut self, now: Instant, window: Duration) {
        while let Some((key, since)) = self
            .order
            .front()
            .filter(|(_, since)| now.saturating_duration_since(*since) >= window)
            .cloned()
        {
            self.order.pop_front();
            self.remove_if_current(&key, since);
        }
    }

    /// Forgets the oldest windows until at most `capacity` keys are held.
    fn shrink_to(&mut self, capacity: usize) {
        while self.entries.len() > capacity {
            let Some((key, since)) = self.order.pop_front() else {
                break;
            };
            self.remove_if_current(&key, since);
        }
        if self.order.len() > capacity.saturating_mul(2) {
            let entries = &self.entries;
            self.order
                .retain(|(key, since)| entries.get(key).is_some_and(|e| e.since == *since));
        }
    }
}

/// An attempt counted by a [`FailureLimiter`]: it stays counted as a failure unless
/// [`Attempt::forgive`] takes it back.
#[must_use = "dropping an attempt counts it as a failure; forgive a success"]
pub struct Attempt<K> {
    table: std::sync::Weak<Mutex<Table<K>>>,
    key: Option<K>,
    since: Instant,
}

impl<K> fmt::Debug for Attempt<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attempt").finish_non_exhaustive()
    }
}

impl<K: Hash + Eq + Clone> Attempt<K> {
    /// Takes the attempt back: it succeeded, or it was never checked (refused by
    /// another limit, or busy). Earlier failures of the key stay counted.
    pub fn forgive(mut self) {
        let (Some(table), Some(key)) = (self.table.upgrade(), self.key.take()) else {
            return;
        };
        let mut table = table.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = table.entries.get_mut(&key) {
            // Only within the window it was counted in.
            if entry.since == self.since {
                entry.failures = entry.failures.saturating_sub(1);
                if entry.failures == 0 {
                    table.entries.remove(&key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    const WINDOW: Duration = Duration::from_secs(60);

    fn limited(r: Result<Attempt<&'static str>>) -> Duration {
        match r {
            Err(Error::RateLimited { retry_after }) => retry_after,
            other => panic!("expected a rate limit, got {other:?}"),
        }
    }

    #[test]
    fn failures_are_counted_per_key_within_a_window() {
        let limiter = FailureLimiter::new(3, WINDOW);
        let t0 = Instant::now();
        for _ in 0..3 {
            drop(limiter.begin_at("alice", t0).unwrap());
        }
        assert_eq!(limiter.failures_at(&"alice", t0), 3);
        // The fourth is refused for the rest of the window, and does not count.
        let wait = limited(limiter.begin_at("alice", t0 + Duration::from_secs(20)));
        assert_eq!(wait, Duration::from_secs(40));
        assert_eq!(limiter.failures_at(&"alice", t0), 3);
        // Other keys are not affected.
        drop(limiter.begin_at("bob", t0).unwrap());
        assert_eq!(limiter.failures_at(&"bob", t0), 1);
        // The window ends: a fresh allowance.
        let later = t0 + WINDOW;
        assert_eq!(limiter.failures_at(&"alice", later), 0);
        drop(limiter.begin_at("alice", later).unwrap());
        assert_eq!(limiter.failures_at(&"alice", later), 1);
    }

    #[test]
    fn attempts_count_when_they_begin_and_a_success_takes_back_only_its_own() {
        let limiter = FailureLimiter::new(2, WINDOW);
        let t0 = Instant::now();
        // Concurrent attempts: the third is refused before either finished.
        let a = limiter.begin_at("k", t0).unwrap();
        let b = limiter.begin_at("k", t0).unwrap();
        limited(limiter.begin_at("k", t0));
        // One succeeds: its attempt is taken back, the other failure stays.
        a.forgive();
        assert_eq!(limiter.failures_at(&"k", t0), 1);
        drop(b);
        assert_eq!(limiter.failures_at(&"k", t0), 1);
        drop(limiter.begin_at("k", t0).unwrap());
        limited(limiter.begin_at("k", t0));
        // A forgiven attempt of an ended window does not touch the next one.
        let old = limiter.begin_at("j", t0).unwrap();
        drop(limiter.begin_at("j", t0 + WINDOW).unwrap());
        old.forgive();
        assert_eq!(limiter.failures_at(&"j", t0 + WINDOW), 1);
        // Forgiving the only failure leaves nothing held for the key.
        let only = limiter.begin_at("i", t0 + WINDOW).unwrap();
        only.forgive();
        assert_eq!(limiter.failures_at(&"i", t0 + WINDOW), 0);
    }

    #[test]
    fn zero_failures_allowed_refuses_every_attempt() {
        let limiter = FailureLimiter::new(0, WINDOW);
        assert_eq!(limited(limiter.begin("x")), WINDOW);
        assert!(limiter.is_empty());
    }

    #[test]
    fn the_table_is_bounded_and_forgets_the_oldest_window_first() {
        let limiter = FailureLimiter::new(1, WINDOW).capacity(100);
        let t0 = Instant::now();
        let keys: Vec<String> = (0..1000).map(|i| format!("k{i}")).collect();
        for (i, key) in keys.iter().enumerate() {
            let at = t0 + Duration::from_millis(u64::try_from(i).unwrap());
            drop(limiter.begin_at(key.clone(), at).unwrap());
            assert!(limiter.len() <= 100);
        }
        let end = t0 + Duration::from_secs(1);
        assert_eq!(
            limiter.failures_at(&"k0".to_owned(), end),
            0,
            "oldest forgotten"
        );
        assert_eq!(
            limiter.failures_at(&"k999".to_owned(), end),
            1,
            "newest kept"
        );
        assert!(matches!(
            limiter.begin_at("k999".to_owned(), end),
            Err(Error::RateLimited { .. })
        ));
        // Restarted windows leave stale order items; they are dropped as they pile up.
        for round in 1..50u64 {
            let at = end + WINDOW * u32::try_from(round).unwrap();
            for key in keys.iter().take(100) {
                drop(limiter.begin_at(key.clone(), at).unwrap());
            }
        }
        let table = limiter.lock();
        assert!(table.entries.len() <= 100);
        assert!(table.order.len() <= 200, "{}", table.order.len());
    }

    #[test]
    fn ended_windows_are_dropped() {
        let limiter = FailureLimiter::new(5, WINDOW);
        let t0 = Instant::now();
        for i in 0..50 {
            drop(limiter.begin_at(i, t0).unwrap());
        }
        assert_eq!(limiter.len(), 50);
        drop(limiter.begin_at(1000, t0 + WINDOW).unwrap());
        assert_eq!(limiter.len(), 1);
    }

    #[test]
    fn addresses_are_keyed_by_ipv4_or_ipv6_slash_64() {
        let key = |s: &str| address_key(s.parse().unwrap()).to_string();
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::");
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::1"), "::");
    }

    #[tokio::test]
    async fn a_full_bound_answers_busy_with_retry_after() {
        let bound = ConcurrencyBound::new(2)
            .max_wait(Duration::from_millis(50))
            .retry_after(Duration::from_secs(3));
        let a = bound.acquire().await.unwrap();
        let _b = bound.acquire().await.unwrap();
        assert_eq!(bound.available(), 0);
        assert_eq!(
            bound.acquire().await.unwrap_err(),
            Error::Busy {
                retry_after: Duration::from_secs(3)
            }
        );
        // A waiter gets the turn given back within its wait.
        let waiter = tokio::spawn({
            let bound = bound.clone();
            async move { bound.max_wait(Duration::from_secs(5)).acquire().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(a);
        assert!(waiter.await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy_at_once() {
        let bound = ConcurrencyBound::new(1)
            .max_queue(1)
            .max_wait(Duration::from_secs(30));
        let held = bound.acquire().await.unwrap();
        let queued = tokio::spawn({
            let bound = bound.clone();
            async move { bound.acquire().await.map(drop) }
        });
        while bound.waiting.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let started = Instant::now();
        assert!(matches!(bound.acquire().await, Err(Error::Busy { .. })));
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "refused without waiting"
        );
        drop(held);
        queued.await.unwrap().unwrap();
        assert_eq!(bound.waiting.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn blocking_work_keeps_its_turn_after_the_caller_gives_up() {
        let bound = ConcurrencyBound::new(1).max_wait(Duration::from_millis(10));
        let (release, released) = std::sync::mpsc::channel::<()>();
        let work = {
            let bound = bound.clone();
            tokio::spawn(async move {
                bound
                    .spawn_blocking(move || {
                        let _ = released.recv_timeout(Duration::from_secs(10));
                        7
                    })
                    .await
            })
        };
        while bound.available() != 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The caller hangs up; the work still runs, and still holds the turn.
        work.abort();
        let _ = work.await;
        assert_eq!(bound.available(), 0);
        assert!(matches!(bound.acquire().await, Err(Error::Busy { .. })));
        release.send(()).unwrap();
        let again = bound.clone().max_wait(Duration::from_secs(10));
        assert_eq!(again.spawn_blocking(|| 8).await.unwrap(), 8);
        assert_eq!(bound.available(), 1);
    }

    #[tokio::test]
    async fn a_panicking_task_is_an_internal_error_and_frees_its_turn() {
        let bound = ConcurrencyBound::new(1);
        let err = bound
            .spawn_blocking(|| -> u8 { panic!("boom") })
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Internal(_)));
        assert_eq!(bound.available(), 1);
    }
}
