//! The in-process blocklist: bounded, with expired entries evicted as it goes.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use token_core::{Clock, SystemClock, Timestamp};

use super::{Blocklist, Revocation, TokenRef, check_id};
use crate::error::{Error, Result};

/// The default capacity: revocation entries (token ids, sessions and subjects), and
/// separately, single-use marks.
pub const DEFAULT_CAPACITY: usize = 1_000_000;

/// The default bound on one subject's live single-use marks (payment tokens consumed
/// and not yet expired).
pub const DEFAULT_SINGLE_USE_PER_SUBJECT: usize = 1_000;

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

/// Single-use marks, counted per subject.
#[derive(Default)]
struct Marks {
    table: Table,
    owner: HashMap<Arc<str>, Arc<str>>,
    per_subject: HashMap<Arc<str>, usize>,
}

impl Marks {
    fn purge(&mut self, now: Timestamp) {
        while let Some(first) = self.table.by_expiry.first().cloned() {
            if first.0 > now {
                break;
            }
            self.table.by_expiry.remove(&first);
            self.table.until.remove(&first.1);
            if let Some(subject) = self.owner.remove(&first.1) {
                if let Some(n) = self.per_subject.get_mut(&subject) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.per_subject.remove(&subject);
                    }
                }
            }
        }
    }

    fn count(&self, subject: &str) -> usize {
        self.per_subject.get(subject).copied().unwrap_or(0)
    }

    fn put(&mut self, subject: &str, jti: &str, until: Timestamp) {
        self.table.put(jti, until);
        let subject: Arc<str> = Arc::from(subject);
        self.owner.insert(Arc::from(jti), subject.clone());
        *self.per_subject.entry(subject).or_insert(0) += 1;
    }
}

struct Inner {
    jtis: Table,
    sessions: Table,
    subjects: Table,
    /// Cut-off instants by subject (the tables above hold when each entry expires).
    cutoffs: HashMap<Arc<str>, Timestamp>,
    used: Marks,
}

impl Inner {
    fn revocations(&self) -> usize {
        self.jtis.len() + self.sessions.len() + self.subjects.len()
    }
}

/// A blocklist in this process's memory: for one server, or tests.
///
/// Bounded: when full, expired entries are evicted; if it is still full, revoking
/// fails with [`Error::BlocklistFull`] rather than silently forgetting a revocation.
/// Single-use marks ([`Blocklist::consume`]) have a capacity of their own and a bound
/// per subject, so consuming tokens never takes the room revocations need.
pub struct MemoryBlocklist {
    inner: Mutex<Inner>,
    capacity: usize,
    per_subject: usize,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for MemoryBlocklist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBlocklist")
            .field("capacity", &self.capacity)
            .field("single_use_per_subject", &self.per_subject)
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

    /// An empty blocklist holding at most `capacity` live revocation entries (and as
    /// many single-use marks), reading `clock`.
    pub fn with_capacity(capacity: usize, clock: Arc<dyn Clock>) -> Self {
        Self {
            inner: Mutex::new(Inner {
                jtis: Table::default(),
                sessions: Table::default(),
                subjects: Table::default(),
                cutoffs: HashMap::new(),
                used: Marks::default(),
            }),
            capacity,
            per_subject: DEFAULT_SINGLE_USE_PER_SUBJECT,
            clock,
        }
    }

    /// Bounds each subject's live single-use marks at `limit` (default
    /// [`DEFAULT_SINGLE_USE_PER_SUBJECT`]).
    #[must_use]
    pub fn single_use_per_subject(mut self, limit: usize) -> Self {
        self.per_subject = limit;
        self
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the tables inconsistent in a way
        // that matters (each operation is a few map updates), so keep serving.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Live revocation entries (token ids, sessions and subjects), after evicting
    /// expired ones. Single-use marks are not counted.
    pub fn len(&self) -> usize {
        let now = self.clock.now();
        let mut inner = self.lock();
        inner.jtis.purge(now);
        inner.sessions.purge(now);
        inner.subjects.purge(now);
        inner.revocations()
    }

    /// Whether no entry is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn make_room(&self, inner: &mut Inner, now: Timestamp) -> Result<()> {
        if inner.revocations() >= self.capacity {
            inner.jtis.purge(now);
            inner.sessions.purge(now);
            inner.subjects.purge(now);
            let subjects = &inner.subjects.until;
            inner.cutoffs.retain(|k, _| subjects.contains_key(k));
            if inner.revocations() >= self.capacity {
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

    async fn lookup(&self, token: TokenRef<'_>) -> Result<Revocation> {
        for id in [token.jti, token.sid, token.subject].into_iter().flatten() {
            check_id(id)?;
        }
        let now = self.clock.now();
        // One lock for the three questions.
        let inner = self.lock();
        let subject_cutoff = token.subject.and_then(|sub| {
            inner
                .subjects
                .get(sub, now)
                .and_then(|_| inner.cutoffs.get(sub).copied())
        });
        Ok(Revocation {
            jti: token.jti.is_some_and(|j| inner.jtis.get(j, now).is_some()),
            session: token
                .sid
                .is_some_and(|s| inner.sessions.get(s, now).is_some()),
            subject_cutoff,
        })
    }

    async fn revoke_session(&self, sid: &str, keep_until: Timestamp) -> Result<()> {
        check_id(sid)?;
        let now = self.clock.now();
        if keep_until <= now {
            return Ok(());
        }
        let mut inner = self.lock();
        match inner.sessions.get(sid, now) {
            Some(until) if until >= keep_until => {}
            Some(_) => inner.sessions.put(sid, keep_until),
            None => {
                self.make_room(&mut inner, now)?;
                inner.sessions.put(sid, keep_until);
            }
        }
        Ok(())
    }

    async fn is_session_revoked(&self, sid: &str) -> Result<bool> {
        check_id(sid)?;
        let now = self.clock.now();
        Ok(self.lock().sessions.get(sid, now).is_some())
    }

    async fn consume(&self, subject: &str, jti: &str, expires_at: Timestamp) -> Result<bool> {
        check_id(subject)?;
        check_id(jti)?;
        let now = self.clock.now();
        if expires_at <= now {
            return Ok(false);
        }
        let mut inner = self.lock();
        if inner.used.table.get(jti, now).is_some() {
            return Ok(false);
        }
        if inner.used.count(subject) >= self.per_subject || inner.used.table.len() >= self.capacity
        {
            inner.used.purge(now);
        }
        if inner.used.count(subject) >= self.per_subject {
            return Err(Error::SingleUseLimit);
        }
        if inner.used.table.len() >= self.capacity {
            return Err(Error::BlocklistFull);
        }
        inner.used.put(subject, jti, expires_at);
        Ok(true)
    }
}
