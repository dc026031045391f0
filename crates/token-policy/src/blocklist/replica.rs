//! [`ReplicatedBlocklist`]: the revocation state kept in this process, fed by Redis, so
//! a verification costs no network round trip.
//!
//! - **Reads** (`lookup`, `is_revoked`, …) answer from memory: revoked `jti`s, revoked
//!   sessions and subject cut-offs, each dropped when the tokens it revokes have
//!   expired, so the state stays as small as the live revocations.
//! - **Writes** go to Redis first — the script that stores a revocation also records it
//!   in the live index and appends it to the change feed, atomically — and only then
//!   to this process's memory. A write Redis did not confirm is an error, never a
//!   silent success.
//! - **The feed**: a task reads the change feed (a Redis stream) on a connection of its
//!   own, blocking for at most [`ReplicaOptions::poll`]; it loads the whole index at
//!   start, after any error, and every [`ReplicaOptions::resync_every`]. On a Redis
//!   Cluster that connection is a cluster connection of its own: the feed, the index
//!   and every write of one prefix share a slot, so the blocking read goes to the one
//!   node that takes the writes it reports (following the slot if it moves), and the
//!   bound below holds unchanged.
//! - **The bound**: every answer of the feed confirms that this process holds every
//!   revocation Redis had stored when the request was sent. A process whose last
//!   confirmation is older than [`ReplicaOptions::max_staleness`] (default two
//!   seconds) fails closed ([`Error::RevocationStale`], `503` with `Retry-After` in
//!   token-axum) until the feed answers again: a silent Redis (stopped, paused,
//!   partitioned) is noticed by the timeout on the feed's own requests, never waited
//!   for.
//! - Single use ([`Blocklist::consume`]) stays on Redis: exactly one process may win.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::streams::StreamReadReply;
use token_core::{Clock, Timestamp};

use super::connection::{Conn, Target};
use super::{Blocklist, RedisBlocklist, Revocation, TokenRef, check_id};
use crate::error::{Error, Result};

/// How long a full load of the index may take (a million live entries read in about
/// 0.7 s on loopback).
const LOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// The default bound on how stale a replica may be before it fails closed.
pub const DEFAULT_MAX_STALENESS: Duration = Duration::from_secs(2);

/// Settings of a [`ReplicatedBlocklist`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplicaOptions {
    /// How long without a confirmed sync before verification fails closed (default two
    /// seconds).
    pub max_staleness: Duration,
    /// How long one read of the feed waits for new entries (default 250 ms; each
    /// answer, with or without entries, confirms the sync).
    pub poll: Duration,
    /// How long a request of the feed may take before the connection counts as lost
    /// (default one second beyond `poll`).
    pub timeout: Duration,
    /// How often the whole index is loaded again (default one minute).
    pub resync_every: Duration,
}

impl Default for ReplicaOptions {
    fn default() -> Self {
        Self {
            max_staleness: DEFAULT_MAX_STALENESS,
            poll: Duration::from_millis(250),
            timeout: Duration::from_millis(1250),
            resync_every: Duration::from_secs(60),
        }
    }
}

impl ReplicaOptions {
    /// Fails closed after `bound` without a confirmed sync; the feed's poll and timeout
    /// are scaled to fit well inside it.
    #[must_use]
    pub fn max_staleness(mut self, bound: Duration) -> Self {
        self.max_staleness = bound;
        self.poll = (bound / 8).clamp(Duration::from_millis(10), Duration::from_millis(250));
        self.timeout = self.poll + (bound / 2).min(Duration::from_secs(1));
        self
    }

    /// Loads the whole index every `every`.
    #[must_use]
    pub fn resync_every(mut self, every: Duration) -> Self {
        self.resync_every = every;
        self
    }
}

/// The live revocations, by kind: each with the Unix second it lapses at.
#[derive(Debug, Default)]
struct State {
    jtis: HashMap<String, i64>,
    sessions: HashMap<String, i64>,
    /// Subject → (cut-off, kept until).
    cutoffs: HashMap<String, (i64, i64)>,
    /// API key id → (changed at, kept until).
    api_keys: HashMap<String, (i64, i64)>,
    /// Owner → (every key changed at, kept until).
    owners: HashMap<String, (i64, i64)>,
}

impl State {
    /// Applies one entry of the index or the feed (`j|<jti>`, `s|<sid>`,
    /// `c|<cutoff>|<subject>`); unknown entries are ignored (a newer writer).
    fn apply(&mut self, member: &str, until: i64) {
        let Some((kind, rest)) = member.split_once('|') else {
            return;
        };
        let later = |slot: &mut i64| *slot = (*slot).max(until);
        let timed = |map: &mut HashMap<String, (i64, i64)>| {
            let Some((time, name)) = rest.split_once('|') else {
                return;
            };
            let Ok(time) = time.parse::<i64>() else {
                return;
            };
            let slot = map.entry(name.to_owned()).or_insert((time, until));
            slot.0 = slot.0.max(time);
            slot.1 = slot.1.max(until);
        };
        match kind {
            "j" => later(self.jtis.entry(rest.to_owned()).or_insert(until)),
            "s" => later(self.sessions.entry(rest.to_owned()).or_insert(until)),
            "c" => timed(&mut self.cutoffs),
            "k" => timed(&mut self.api_keys),
            "o" => timed(&mut self.owners),
            _ => {}
        }
    }

    /// The state of a full load of the index.
    fn load<'a>(entries: impl IntoIterator<Item = (&'a str, i64)>) -> Self {
        let mut state = Self::default();
        for (member, until) in entries {
            state.apply(member, until);
        }
        state
    }

    fn purge(&mut self, now: i64) {
        self.jtis.retain(|_, until| *until > now);
        self.sessions.retain(|_, until| *until > now);
        self.cutoffs.retain(|_, (_, until)| *until > now);
        self.api_keys.retain(|_, (_, until)| *until > now);
        self.owners.retain(|_, (_, until)| *until > now);
    }

    fn len(&self) -> usize {
        self.jtis.len()
            + self.sessions.len()
            + self.cutoffs.len()
            + self.api_keys.len()
            + self.owners.len()
    }
}

/// How the feed is doing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplicaStatus {
    /// Time since the last confirmed sync (`None`: never synced).
    pub lag: Option<Duration>,
    /// Live entries held.
    pub entries: usize,
    /// Full loads of the index so far.
    pub resyncs: u64,
    /// Feed entries applied so far.
    pub applied: u64,
    /// The last feed error, while the feed is failing.
    pub last_error: Option<String>,
}

struct Shared {
    state: RwLock<State>,
    /// When this replica was made: the origin of `confirmed`.
    born: Instant,
    /// The last confirmed sync, in nanoseconds after `born` plus one (zero: never).
    /// An atomic, so the check every verification makes takes no lock.
    confirmed: AtomicU64,
    resyncs: AtomicU64,
    applied: AtomicU64,
    last_error: Mutex<Option<String>>,
    clock: Arc<dyn Clock>,
}

impl Shared {
    fn confirm(&self, sent: Instant) {
        let since = sent.saturating_duration_since(self.born).as_nanos();
        let at = u64::try_from(since)
            .unwrap_or(u64::MAX - 1)
            .min(u64::MAX - 1)
            + 1;
        // Later confirmations only: a slow answer to an older request never moves it back.
        self.confirmed.fetch_max(at, Ordering::AcqRel);
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    fn lag(&self) -> Option<Duration> {
        match self.confirmed.load(Ordering::Acquire) {
            0 => None,
            at => {
                let confirmed = self.born.checked_add(Duration::from_nanos(at - 1))?;
                Some(Instant::now().saturating_duration_since(confirmed))
            }
        }
    }

    fn failed(&self, why: String) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(why);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> i64 {
        self.clock.now().unix_seconds()
    }
}

/// Aborts the feed task when the replica is dropped.
struct FeedTask(tokio::task::JoinHandle<()>);

impl Drop for FeedTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A blocklist answered from this process's memory, kept in sync with a
/// [`RedisBlocklist`] within a bound (see the module documentation).
pub struct ReplicatedBlocklist {
    source: RedisBlocklist,
    shared: Arc<Shared>,
    options: ReplicaOptions,
    _feed: FeedTask,
}

impl std::fmt::Debug for ReplicatedBlocklist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicatedBlocklist")
            .field("source", &self.source)
            .field("options", &self.options)
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

fn backend(e: &redis::RedisError) -> Error {
    Error::Backend(format!("redis ({:?})", e.kind()))
}

fn timed_out() -> Error {
    Error::Backend("redis (no answer within the feed's timeout)".into())
}

impl ReplicatedBlocklist {
    /// Loads the live revocations of `source`, then follows its feed. The replica uses
    /// `source`'s clock for expiries.
    ///
    /// # Errors
    /// [`Error::Config`] when `source` was not made by [`RedisBlocklist::connect`] or
    /// [`RedisBlocklist::connect_cluster`] (the feed needs a connection of its own);
    /// [`Error::Backend`] when the first load fails.
    pub async fn start(source: RedisBlocklist, options: ReplicaOptions) -> Result<Self> {
        let target = source.target().cloned().ok_or_else(|| {
            Error::Config(
                "a replica needs a RedisBlocklist made by RedisBlocklist::connect or \
                 RedisBlocklist::connect_cluster"
                    .into(),
            )
        })?;
        let shared = Arc::new(Shared {
            state: RwLock::new(State::default()),
            born: Instant::now(),
            confirmed: AtomicU64::new(0),
            resyncs: AtomicU64::new(0),
            applied: AtomicU64::new(0),
            last_error: Mutex::new(None),
            clock: source.clock().clone(),
        });
        let mut feed = Feed {
            target,
            source: source.clone(),
            options,
            conn: None,
            last_id: None,
            last_resync: Instant::now(),
        };
        feed.resync(&shared).await?;
        let task = tokio::spawn(feed.run(Arc::downgrade(&shared)));
        Ok(Self {
            source,
            shared,
            options,
            _feed: FeedTask(task),
        })
    }

    /// How the feed is doing: the lag, the entries held, the loads.
    pub fn status(&self) -> ReplicaStatus {
        ReplicaStatus {
            lag: self.shared.lag(),
            entries: self.shared.read().len(),
            resyncs: self.shared.resyncs.load(Ordering::Relaxed),
            applied: self.shared.applied.load(Ordering::Relaxed),
            last_error: self
                .shared
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }

    /// The bound past which verification fails closed.
    pub fn max_staleness(&self) -> Duration {
        self.options.max_staleness
    }

    /// The Redis blocklist writes go to.
    pub fn source(&self) -> &RedisBlocklist {
        &self.source
    }

    fn fresh(&self) -> Result<()> {
        match self.shared.lag() {
            Some(lag) if lag <= self.options.max_staleness => Ok(()),
            lag => Err(Error::RevocationStale {
                lag,
                bound: self.options.max_staleness,
            }),
        }
    }

    fn apply(&self, member: &str, until: Timestamp) {
        self.shared.write().apply(member, until.unix_seconds());
    }
}

#[async_trait]
impl Blocklist for ReplicatedBlocklist {
    async fn revoke(&self, jti: &str, expires_at: Timestamp) -> Result<bool> {
        let revoked = self.source.revoke(jti, expires_at).await?;
        self.apply(&format!("j|{jti}"), expires_at);
        Ok(revoked)
    }

    async fn is_revoked(&self, jti: &str) -> Result<bool> {
        check_id(jti)?;
        self.fresh()?;
        let now = self.shared.now();
        Ok(self.shared.read().jtis.get(jti).is_some_and(|u| *u > now))
    }

    async fn revoke_subject_before(
        &self,
        subject: &str,
        cutoff: Timestamp,
        keep_until: Timestamp,
    ) -> Result<()> {
        self.source
            .revoke_subject_before(subject, cutoff, keep_until)
            .await?;
        self.apply(
            &format!("c|{}|{subject}", cutoff.unix_seconds()),
            keep_until,
        );
        Ok(())
    }

    async fn subject_cutoff(&self, subject: &str) -> Result<Option<Timestamp>> {
        check_id(subject)?;
        self.fresh()?;
        let now = self.shared.now();
        let cutoff = self
            .shared
            .read()
            .cutoffs
            .get(subject)
            .filter(|(_, until)| *until > now)
            .map(|(c, _)| *c);
        Ok(cutoff.map(Timestamp::from_unix_seconds).transpose()?)
    }

    async fn revoke_session(&self, sid: &str, keep_until: Timestamp) -> Result<()> {
        self.source.revoke_session(sid, keep_until).await?;
        self.apply(&format!("s|{sid}"), keep_until);
        Ok(())
    }

    async fn is_session_revoked(&self, sid: &str) -> Result<bool> {
        check_id(sid)?;
        self.fresh()?;
        let now = self.shared.now();
        Ok(self
            .shared
            .read()
            .sessions
            .get(sid)
            .is_some_and(|u| *u > now))
    }

    async fn lookup(&self, token: TokenRef<'_>) -> Result<Revocation> {
        for id in [token.jti, token.sid, token.subject].into_iter().flatten() {
            check_id(id)?;
        }
        self.fresh()?;
        let now = self.shared.now();
        let state = self.shared.read();
        let live = |u: &i64| *u > now;
        let cutoff = token
            .subject
            .and_then(|s| state.cutoffs.get(s))
            .filter(|(_, until)| *until > now)
            .map(|(c, _)| *c);
        Ok(Revocation {
            jti: token.jti.and_then(|j| state.jtis.get(j)).is_some_and(live),
            session: token
                .sid
                .and_then(|s| state.sessions.get(s))
                .is_some_and(live),
            subject_cutoff: cutoff.map(Timestamp::from_unix_seconds).transpose()?,
        })
    }

    async fn api_key_changed(
        &self,
        owner: &str,
        id: Option<&str>,
        at: Timestamp,
        keep_until: Timestamp,
    ) -> Result<()> {
        self.source
            .api_key_changed(owner, id, at, keep_until)
            .await?;
        let member = match id {
            Some(id) => format!("k|{}|{id}", at.unix_seconds()),
            None => format!("o|{}|{owner}", at.unix_seconds()),
        };
        self.apply(&member, keep_until);
        Ok(())
    }

    async fn api_key_changed_at(&self, owner: &str, id: &str) -> Result<Option<Timestamp>> {
        check_id(owner)?;
        check_id(id)?;
        self.fresh()?;
        let now = self.shared.now();
        let state = self.shared.read();
        let live = |e: Option<&(i64, i64)>| e.filter(|(_, until)| *until > now).map(|(t, _)| *t);
        let at = live(state.api_keys.get(id)).max(live(state.owners.get(owner)));
        Ok(at.map(Timestamp::from_unix_seconds).transpose()?)
    }

    async fn consume(&self, subject: &str, jti: &str, expires_at: Timestamp) -> Result<bool> {
        self.source.consume(subject, jti, expires_at).await
    }
}

/// The task that follows the feed.
struct Feed {
    target: Target,
    source: RedisBlocklist,
    options: ReplicaOptions,
    conn: Option<Conn>,
    /// The last feed entry applied; `None` until the index is loaded.
    last_id: Option<String>,
    last_resync: Instant,
}

impl Feed {
    async fn connection(&mut self) -> Result<Conn> {
        if let Some(conn) = &self.conn {
            return Ok(conn.clone());
        }
        let conn = tokio::time::timeout(
            self.options.timeout,
            self.target.dedicated(self.options.timeout),
        )
        .await
        .map_err(|_| timed_out())?
        .map_err(|e| backend(&e))?;
        self.conn = Some(conn.clone());
        Ok(conn)
    }

    async fn query<T: redis::FromRedisValue>(&mut self, cmd: &redis::Cmd) -> Result<T> {
        let timeout = self.options.timeout;
        self.query_within(cmd, timeout).await
    }

    async fn query_within<T: redis::FromRedisValue>(
        &mut self,
        cmd: &redis::Cmd,
        timeout: Duration,
    ) -> Result<T> {
        let mut conn = self.connection().await?;
        tokio::time::timeout(timeout, cmd.query_async(&mut conn))
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| backend(&e))
    }

    /// Loads the whole index: the feed's position first, so nothing written meanwhile
    /// is missed (entries read twice apply twice, harmlessly).
    async fn resync(&mut self, shared: &Shared) -> Result<()> {
        let sent = Instant::now();
        let newest: redis::streams::StreamRangeReply = self
            .query(
                redis::cmd("XREVRANGE")
                    .arg(self.source.feed_key())
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(1),
            )
            .await?;
        let position = newest
            .ids
            .first()
            .map_or_else(|| "0-0".to_owned(), |e| e.id.clone());
        let now = shared.now();
        // The whole index is read in one reply: its time grows with the live entries
        // (about 0.7 s per million measured), so it gets a timeout of its own rather
        // than the feed's per-poll one. Verification fails closed meanwhile if the load
        // outlasts the staleness bound.
        let entries: Vec<(String, i64)> = self
            .query_within(
                redis::cmd("ZRANGE")
                    .arg(self.source.index_key())
                    .arg(format!("({now}"))
                    .arg("+inf")
                    .arg("BYSCORE")
                    .arg("WITHSCORES"),
                LOAD_TIMEOUT,
            )
            .await?;
        *shared.write() = State::load(entries.iter().map(|(m, u)| (m.as_str(), *u)));
        shared.resyncs.fetch_add(1, Ordering::Relaxed);
        self.last_id = Some(position);
        self.last_resync = Instant::now();
        shared.confirm(sent);
        Ok(())
    }

    /// Reads what the feed has after `last_id`, waiting at most `poll`.
    async fn follow(&mut self, shared: &Shared, last_id: &str) -> Result<()> {
        let sent = Instant::now();
        let block = u64::try_from(self.options.poll.as_millis()).unwrap_or(u64::MAX);
        let reply: Option<StreamReadReply> = self
            .query(
                redis::cmd("XREAD")
                    .arg("COUNT")
                    .arg(1000)
                    .arg("BLOCK")
                    .arg(block.max(1))
                    .arg("STREAMS")
                    .arg(self.source.feed_key())
                    .arg(last_id),
            )
            .await?;
        let ids = reply
            .into_iter()
            .flat_map(|r| r.keys)
            .flat_map(|k| k.ids)
            .collect::<Vec<_>>();
        if let Some(last) = ids.last() {
            let mut state = shared.write();
            for entry in &ids {
                if let (Some(member), Some(until)) =
                    (entry.get::<String>("e"), entry.get::<i64>("x"))
                {
                    state.apply(&member, until);
                }
            }
            state.purge(shared.now());
            drop(state);
            shared
                .applied
                .fetch_add(ids.len() as u64, Ordering::Relaxed);
            self.last_id = Some(last.id.clone());
        }
        shared.confirm(sent);
        Ok(())
    }

    async fn run(mut self, shared: Weak<Shared>) {
        let mut backoff = Duration::from_millis(20);
        loop {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let outcome = match self.last_id.clone() {
                Some(id) if self.last_resync.elapsed() < self.options.resync_every => {
                    self.follow(&shared, &id).await
                }
                _ => self.resync(&shared).await,
            };
            match outcome {
                Ok(()) => backoff = Duration::from_millis(20),
                Err(e) => {
                    shared.failed(e.to_string());
                    // Start again from a fresh connection and a full load.
                    self.conn = None;
                    self.last_id = None;
                    drop(shared);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(500));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// One step of a simulated fleet: the source stores a revocation, or the replica
    /// polls the feed or loads the index while `writes_between` other revocations land
    /// between its request and the server's answer, or its connection fails.
    #[derive(Clone, Debug)]
    enum Step {
        Revoke,
        Poll { writes_between: usize },
        Load { writes_between: usize },
        Fail,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            3 => Just(Step::Revoke),
            3 => (0..3usize).prop_map(|w| Step::Poll { writes_between: w }),
            1 => (0..3usize).prop_map(|w| Step::Load { writes_between: w }),
            1 => Just(Step::Fail),
        ]
    }

    /// The replica protocol against a simulated source, in logical time. The source is
    /// a log of revocations (`j|<n>`, id `n`, written at time `n`); the feed returns the
    /// entries after an id as the source holds them when it answers; a load reads the
    /// feed's position, then the index, with writes possibly landing between the two
    /// (`position_first: false` reads them the other way round, which is wrong).
    /// Returns the first violation: a revocation stored before the replica's last
    /// confirmed sync that the replica does not hold.
    fn simulate(steps: &[Step], position_first: bool) -> Option<String> {
        let mut log: Vec<u64> = Vec::new();
        let write = |log: &mut Vec<u64>| {
            let n = log.len() as u64 + 1;
            log.push(n);
        };
        let mut state = State::default();
        let mut last_id: Option<u64> = None;
        let mut confirmed: Option<u64> = None;
        let until = i64::MAX;
        for step in steps {
            // The time a request is sent: everything stored so far.
            let sent = log.len() as u64;
            match step {
                Step::Revoke => write(&mut log),
                Step::Fail => last_id = None,
                Step::Poll { writes_between } => match last_id {
                    None => continue,
                    Some(after) => {
                        for _ in 0..*writes_between {
                            write(&mut log);
                        }
                        let entries: Vec<String> = log
                            .iter()
                            .filter(|n| **n > after)
                            .map(|n| format!("j|{n}"))
                            .collect();
                        for e in &entries {
                            state.apply(e, until);
                        }
                        last_id = Some(log.len() as u64);
                        confirmed = Some(sent);
                    }
                },
                Step::Load { writes_between } => {
                    let (position, index) = if position_first {
                        let position = log.len() as u64;
                        for _ in 0..*writes_between {
                            write(&mut log);
                        }
                        (position, log.clone())
                    } else {
                        let index = log.clone();
                        for _ in 0..*writes_between {
                            write(&mut log);
                        }
                        (log.len() as u64, index)
                    };
                    let members: Vec<String> = index.iter().map(|n| format!("j|{n}")).collect();
                    state = State::load(members.iter().map(|m| (m.as_str(), until)));
                    last_id = Some(position);
                    confirmed = Some(sent);
                }
            }
            if let Some(confirmed) = confirmed {
                if let Some(missing) = log
                    .iter()
                    .filter(|n| **n <= confirmed)
                    .find(|n| !state.jtis.contains_key(&n.to_string()))
                {
                    return Some(format!(
                        "revocation {missing} stored before the confirmed sync at {confirmed} is missing"
                    ));
                }
            }
        }
        None
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn a_replica_never_misses_a_revocation_older_than_its_confirmed_sync(
            steps in proptest::collection::vec(step(), 1..60)
        ) {
            prop_assert_eq!(simulate(&steps, true), None);
        }
    }

    #[test]
    fn the_simulation_catches_a_load_that_reads_the_index_first() {
        // Reading the index before the feed's position skips what lands in between.
        let steps = [
            Step::Load { writes_between: 0 },
            Step::Load { writes_between: 1 },
            Step::Poll { writes_between: 0 },
            Step::Revoke,
            Step::Poll { writes_between: 0 },
        ];
        assert_eq!(simulate(&steps, true), None);
        assert!(simulate(&steps, false).is_some());
    }

    #[test]
    fn entries_merge_to_the_strictest() {
        let mut s = State::default();
        s.apply("j|a", 100);
        s.apply("j|a", 50);
        assert_eq!(s.jtis["a"], 100);
        s.apply("c|10|alice", 200);
        s.apply("c|5|alice", 300);
        assert_eq!(s.cutoffs["alice"], (10, 300));
        s.apply("c|20|a|b", 200);
        assert_eq!(
            s.cutoffs["a|b"],
            (20, 200),
            "a subject may hold the separator"
        );
        s.apply("s|sid", 150);
        s.apply("k|7|key_1", 150);
        s.apply("k|3|key_1", 400);
        assert_eq!(s.api_keys["key_1"], (7, 400));
        s.apply("o|9|alice", 100);
        s.apply("x|future", 1);
        s.apply("garbage", 1);
        s.apply("c|nan|bob", 1);
        assert_eq!(s.len(), 6);
        s.purge(150);
        assert_eq!(s.len(), 3, "{s:?}");
    }
}
