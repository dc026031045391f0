//! The in-process blocklist: bounded, with expired entries evicted as it goes.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use token_core::{Clock, SystemClock, Timestamp};

use super::{Blocklist, check_id};
use crate::error::{Error, Result};

/// The default capacity: entries (token ids plus subjects).
pub const DEFAULT_CAPACITY: usize = 1_000_000;

#[derive(Default)]
struct Table {
    until: HashMap<Arc<str>, Timestamp>,
    by_expiry: BTreeSet<(Timestamp, Arc<str>)>,
}

impl Table {
    fn purge(&mut self, now: Timestamp) {
        while let Some(first) = self.by_expiry.first().cloned() {
            if first.0 > now {
                break;
            }
            self.by_expiry.remove(&first);
            self.until.remove(&first.1);
        }
    }

    fn get(&self, key: &str, now: Timestamp) -> Option<Timestamp> {
        self.until.get(key).copied().filter(|&t| t > now)
    }

    fn put(&mut self, key: &str, until: Timestamp) {
        let key: Arc<str> = Arc::from(key);
        if let Some(old) = self.until.insert(key.clone(), until) {
            self.by_expiry.remove(&(old, key.clone()));
        }
        self.by_expiry.insert((until, key));
    }

    fn len(&self) -> usize {
        self.until.len()
    }
}

struct Inner {
    jtis: Table,
    subjects: Table,
    /// Cut-off instants by subject (the tables above hold when each entry expires).
    cutoffs: HashMap<Arc<str>, Timestamp>,
}

/// A blocklist in this process's memory: for one server, or tests.
///
/// Bounded: when full, expired entries are evicted; if it is still full, revoking
/// fails with [`Error::BlocklistFull`] rather than silently forgetting a revocation.
pub struct MemoryBlocklist {
    inner: Mutex<Inner>,
    capacity: usize,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for MemoryBlocklist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBlocklist")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl Default for MemoryBlocklist {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryBlocklist {
    /// An empty blocklist of [`DEFAULT_CAPACITY`] on the system clock.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY, Arc::new(SystemClock))
    }

    /// An empty blocklist holding at most `capacity` live entries, reading `clock`.
    pub fn with_capacity(capacity: usize, clock: Arc<dyn Clock>) -> Self {
        Self {
            inner: Mutex::new(Inner {
                jtis: Table::default(),
                subjects: Table::default(),
                cutoffs: HashMap::new(),
            }),
            capacity,
            clock,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the tables inconsistent in a way
        // that matters (each operation is a few map updates), so keep serving.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Live entries (token ids and subjects), after evicting expired ones.
    pub fn len(&self) -> usize {
        let now = self.clock.now();
        let mut inner = self.lock();
        inner.jtis.purge(now);
        inner.subjects.purge(now);
        inner.jtis.len() + inner.subjects.len()
    }

    /// Whether no entry is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn make_room(&self, inner: &mut Inner, now: Timestamp) -> Result<()> {
        if inner.jtis.len() + inner.subjects.len() >= self.capacity {
            inner.jtis.purge(now);
            inner.subjects.purge(now);
            let subjects = &inner.subjects.until;
            inner.cutoffs.retain(|k, _| subjects.contains_key(k));
            if inner.jtis.len() + inner.subjects.len() >= self.capacity {
                return Err(Error::BlocklistFull);
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Blocklist for MemoryBlocklist {
    async fn revoke(&self, jti: &str, expires_at: Timestamp) -> Result<bool> {
        check_id(jti)?;
        let now = self.clock.now();
        if expires_at <= now {
            return Ok(false);
        }
        let mut inner = self.lock();
        if let Some(until) = inner.jtis.get(jti, now) {
            if expires_at > until {
                inner.jtis.put(jti, expires_at);
            }
            return Ok(false);
        }
        self.make_room(&mut inner, now)?;
        inner.jtis.put(jti, expires_at);
        Ok(true)
    }

    async fn is_revoked(&self, jti: &str) -> Result<bool> {
        check_id(jti)?;
        let now = self.clock.now();
        Ok(self.lock().jtis.get(jti, now).is_some())
    }

    async fn revoke_subject_before(
        &self,
        subject: &str,
        cutoff: Timestamp,
        keep_until: Timestamp,
    ) -> Result<()> {
        check_id(subject)?;
        let now = self.clock.now();
        if keep_until <= now {
            return Ok(());
        }
        let mut inner = self.lock();
        let live = inner.subjects.get(subject, now).is_some();
        if !live {
            self.make_room(&mut inner, now)?;
        }
        let current = if live {
            inner.cutoffs.get(subject).copied()
        } else {
            None
        };
        let cutoff = current.map_or(cutoff, |c| c.max(cutoff));
        let until = inner
            .subjects
            .get(subject, now)
            .map_or(keep_until, |t| t.max(keep_until));
        inner.subjects.put(subject, until);
        inner.cutoffs.insert(Arc::from(subject), cutoff);
        Ok(())
    }

    async fn subject_cutoff(&self, subject: &str) -> Result<Option<Timestamp>> {
        check_id(subject)?;
        let now = self.clock.now();
        let inner = self.lock();
        if inner.subjects.get(subject, now).is_none() {
            return Ok(None);
        }
        Ok(inner.cutoffs.get(subject).copied())
    }
}
