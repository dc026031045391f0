//! The shared blocklist on Redis: `SET {<prefix>}bl:<jti> 1 EX <ttl>` / `EXISTS`,
//! revoked sessions under `{<prefix>}blsid:<sid>`, subject cut-offs under
//! `{<prefix>}bls:<subject>` (kept at the later of two cut-offs by a server-side
//! script), and single-use marks under `{<prefix>}used:<jti>`, counted per subject in
//! `{<prefix>}usedn:<subject>` (a sorted set scored by expiry) by a script that enforces
//! the per-subject bound.
//!
//! Every revocation is also recorded, in the same script (atomically), in an index of
//! live entries (`{<prefix>}rev:index`, a sorted set scored by expiry) and appended to
//! a change feed (`{<prefix>}rev:feed`, a stream trimmed to the last ten minutes):
//! what a [`super::ReplicatedBlocklist`] loads and follows. Every key carries the hash
//! tag `{<prefix>}`, so on a Redis Cluster ([`RedisBlocklist::connect_cluster`]) one
//! prefix's keys share one slot: each script stays atomic, a lookup's `MGET` stays one
//! request, and the feed lives on the node that takes the writes it records.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncCommands, ConnectionInfo, IntoConnectionInfo, Script};
use token_core::{Clock, SystemClock, Timestamp};

use super::connection::{Conn, Target, cluster_client};
use super::{Blocklist, Revocation, TokenRef, check_id};
use crate::error::{Error, Result};

/// How long the change feed keeps entries. A replica that has not read the feed for
/// this long (far past any staleness bound) reloads the index instead.
pub(crate) const FEED_HORIZON: Duration = Duration::from_secs(600);

/// How long a connection of the blocklist may take to open or to answer one request
/// before it counts as lost (a revocation check must not hang).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Records a revocation in the index and the feed. Appended to every write script:
/// `KEYS[2]` the index, `KEYS[3]` the feed; `ARGV[1]` now (s), `ARGV[2]` the feed's
/// horizon (s, trimmed by the server's own clock, as its entry ids are);
/// `rec(member, expiry)`.
const RECORD: &str = r"
local function rec(member, expiry)
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
    redis.call('ZADD', KEYS[2], expiry, member)
    local t = redis.call('TIME')
    local minid = (tonumber(t[1]) - tonumber(ARGV[2])) * 1000
    redis.call('XADD', KEYS[3], 'MINID', '~', minid, '*', 'e', member, 'x', expiry)
end
";

/// `SET NX EX` of a revoked `jti`, recorded when new. ARGV[3] ttl, ARGV[4] the member,
/// ARGV[5] the expiry.
static REVOKE_JTI: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{RECORD}
        if not redis.call('SET', KEYS[1], 1, 'NX', 'EX', ARGV[3]) then
            return 0
        end
        rec(ARGV[4], ARGV[5])
        return 1
        "
    ))
});

/// Keeps the later cut-off; extends the expiry when asked to keep it longer; records
/// the cut-off in force. ARGV[3] the cut-off, ARGV[4] ttl, ARGV[5] the keep-until time,
/// ARGV[6] the subject.
static MAX_CUTOFF: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{RECORD}
        local cur = redis.call('GET', KEYS[1])
        local changed = 1
        if cur and tonumber(cur) >= tonumber(ARGV[3]) then
            if redis.call('TTL', KEYS[1]) < tonumber(ARGV[4]) then
                redis.call('EXPIRE', KEYS[1], ARGV[4])
            end
            changed = 0
        else
            redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[4])
            cur = ARGV[3]
        end
        rec('c|' .. cur .. '|' .. ARGV[6], ARGV[5])
        return changed
        "
    ))
});

/// Sets a key to expire no earlier than it already does, and records it. ARGV[3] ttl,
/// ARGV[4] the member, ARGV[5] the keep-until time.
static EXTEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{RECORD}
        if redis.call('TTL', KEYS[1]) < tonumber(ARGV[3]) then
            redis.call('SET', KEYS[1], 1, 'EX', ARGV[3])
        end
        rec(ARGV[4], ARGV[5])
        return 1
        "
    ))
});

/// Keeps the later change time of an API key or of an owner's keys, and records it.
/// ARGV[3] the change time, ARGV[4] ttl, ARGV[5] the keep-until time, ARGV[6] the member
/// kind (`k` or `o`), ARGV[7] the id.
static CHANGED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{RECORD}
        local cur = redis.call('GET', KEYS[1])
        if not cur or tonumber(cur) < tonumber(ARGV[3]) then
            cur = ARGV[3]
        end
        redis.call('SET', KEYS[1], cur, 'EX', ARGV[4])
        rec(ARGV[6] .. '|' .. cur .. '|' .. ARGV[7], ARGV[5])
        return 1
        "
    ))
});

/// Single use with a per-subject bound. KEYS: the mark, the subject's set. ARGV: now,
/// expiry, limit, ttl, jti. Returns 1 (used now), 0 (used before), -1 (bound reached).
static CONSUME: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
        if redis.call('EXISTS', KEYS[1]) == 1 then
            return 0
        end
        if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then
            return -1
        end
        redis.call('SET', KEYS[1], 1, 'EX', ARGV[4])
        redis.call('ZADD', KEYS[2], ARGV[2], ARGV[5])
        if redis.call('TTL', KEYS[2]) < tonumber(ARGV[4]) then
            redis.call('EXPIRE', KEYS[2], ARGV[4])
        end
        return 1
        ",
    )
});

fn backend(e: &redis::RedisError) -> Error {
    Error::Backend(format!("redis ({:?})", e.kind()))
}

/// A blocklist shared through Redis, for a fleet of servers: one Redis
/// ([`RedisBlocklist::connect`]) or a Redis Cluster ([`RedisBlocklist::connect_cluster`]).
#[derive(Clone)]
pub struct RedisBlocklist {
    conn: Conn,
    /// Where `conn` leads, for the dedicated connection a replica's feed reads on
    /// (`None` when built from a bare connection manager).
    target: Option<Target>,
    prefix: String,
    per_subject: usize,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for RedisBlocklist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBlocklist")
            .field("prefix", &self.prefix)
            .field("cluster", &matches!(self.conn, Conn::Cluster(_)))
            .finish_non_exhaustive()
    }
}

/// One direct connection to `client`'s server, within
/// [`crate::config::CONNECT_TIMEOUT`]: a refusal fails at once, silence after the
/// timeout, each in words that quote nothing from the URL or the server.
async fn first_connection(
    client: &redis::Client,
) -> std::result::Result<MultiplexedConnection, String> {
    match tokio::time::timeout(
        crate::config::CONNECT_TIMEOUT,
        client.get_multiplexed_async_connection(),
    )
    .await
    {
        Err(_) => Err(format!(
            "no answer within {} s (timed out)",
            crate::config::CONNECT_TIMEOUT.as_secs()
        )),
        Ok(Err(e)) if e.is_connection_refusal() => Err(crate::config::io_failure(
            std::io::ErrorKind::ConnectionRefused,
        )),
        Ok(Err(e)) => Err(format!("{:?}", e.kind())),
        Ok(Ok(conn)) => Ok(conn),
    }
}

/// Whether the server runs in cluster mode (`INFO cluster`); a server that does not
/// say within the response timeout counts as a single Redis.
async fn cluster_enabled(conn: &mut MultiplexedConnection) -> bool {
    let info: redis::RedisResult<String> = tokio::time::timeout(
        RESPONSE_TIMEOUT,
        redis::cmd("INFO").arg("cluster").query_async(conn),
    )
    .await
    .unwrap_or_else(|_| Ok(String::new()));
    info.is_ok_and(|i| i.lines().any(|l| l.trim() == "cluster_enabled:1"))
}

/// Reaches at least one of a cluster's seed nodes; else why each failed.
async fn reach_a_seed(nodes: &[ConnectionInfo]) -> std::result::Result<(), String> {
    let mut attempts = tokio::task::JoinSet::new();
    for node in nodes {
        let node = node.clone();
        attempts.spawn(async move {
            let address = node.addr.to_string();
            let outcome = match redis::Client::open(node) {
                Ok(client) => first_connection(&client).await.map(drop),
                Err(_) => Err("invalid address".to_owned()),
            };
            (address, outcome)
        });
    }
    let mut failures = Vec::new();
    while let Some(joined) = attempts.join_next().await {
        match joined {
            Ok((_, Ok(()))) => return Ok(()),
            Ok((address, Err(reason))) => failures.push((address, reason)),
            Err(_) => failures.push((String::from("?"), "connection attempt aborted".into())),
        }
    }
    failures.sort();
    // One reason when every node failed alike, else each node's own.
    let first = failures.first().map(|(_, r)| r.clone()).unwrap_or_default();
    if failures.iter().all(|(_, r)| *r == first) {
        Err(first)
    } else {
        Err(failures
            .iter()
            .map(|(a, r)| format!("{a}: {r}"))
            .collect::<Vec<_>>()
            .join("; "))
    }
}

/// Why a cluster connection failed after a seed answered, in words that quote nothing
/// from the URL or the server.
fn cluster_failure(e: &redis::RedisError) -> String {
    let text = e.to_string();
    if text.contains("cluster support disabled") {
        "not a cluster node (cluster support is disabled: connect to a single Redis \
         with RedisBlocklist::connect, or `redis` in configuration)"
            .into()
    } else if e.is_connection_refusal() {
        crate::config::io_failure(std::io::ErrorKind::ConnectionRefused)
    } else {
        format!("the cluster's slot map could not be read ({:?})", e.kind())
    }
}

impl RedisBlocklist {
    /// Connects to `url` (`redis://host:port/db`) with a reconnecting connection manager.
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid URL; [`Error::Connect`] when the server refuses
    /// the connection (at once), does not answer within
    /// [`crate::config::CONNECT_TIMEOUT`], or is a Redis Cluster node (use
    /// [`RedisBlocklist::connect_cluster`]: a single-node connection would reach only
    /// the slots that node serves).
    pub async fn connect(url: &str) -> Result<Self> {
        let client =
            redis::Client::open(url).map_err(|_| Error::Config("invalid Redis URL".into()))?;
        // One direct connection first: a refusal fails at once, silence after
        // CONNECT_TIMEOUT, each in its own words and naming the server.
        let failed = |reason: String| Error::Connect {
            backend: "Redis",
            address: client.get_connection_info().addr.to_string(),
            reason,
        };
        let mut first = first_connection(&client).await.map_err(failed)?;
        if cluster_enabled(&mut first).await {
            return Err(failed(
                "a Redis Cluster node: connect with RedisBlocklist::connect_cluster \
                 (`redis_cluster` in configuration)"
                    .into(),
            ));
        }
        // Bounded: a few quick retries, then an error (a revocation check must not hang).
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(2)
            .set_max_delay(500)
            .set_connection_timeout(RESPONSE_TIMEOUT)
            .set_response_timeout(RESPONSE_TIMEOUT);
        let conn = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(|e| backend(&e))?;
        let mut list = Self::from_manager(conn);
        list.target = Some(Target::Node(client));
        Ok(list)
    }

    /// Connects to a Redis Cluster through its seed `nodes` (`redis://host:port` each;
    /// one reachable seed is enough, the others are found through it). Each command
    /// goes to the node serving its keys' slot, following the cluster as slots move;
    /// every key of this blocklist carries the hash tag `{<prefix>}`, so one prefix
    /// lives on one node and each write stays one atomic script.
    ///
    /// # Errors
    /// [`Error::Config`] for no node, an invalid URL, a database other than 0, or seeds
    /// with different credentials or TLS modes; [`Error::Connect`] naming the seeds
    /// when none answers (refused at once, silent after
    /// [`crate::config::CONNECT_TIMEOUT`]) or when they serve no cluster (cluster mode
    /// disabled, the cluster not created).
    pub async fn connect_cluster<S: AsRef<str>>(nodes: &[S]) -> Result<Self> {
        if nodes.is_empty() {
            return Err(Error::Config(
                "a Redis Cluster needs at least one seed node URL".into(),
            ));
        }
        let nodes = nodes
            .iter()
            .map(|n| {
                n.as_ref()
                    .into_connection_info()
                    .map_err(|_| Error::Config("invalid Redis URL".into()))
            })
            .collect::<Result<Vec<_>>>()?;
        if nodes.iter().any(|n| n.redis.db != 0) {
            return Err(Error::Config(
                "a Redis Cluster has only database 0: drop the /DB from the node URLs".into(),
            ));
        }
        let client = cluster_client(&nodes, RESPONSE_TIMEOUT).map_err(|_| {
            Error::Config(
                "Redis Cluster seed nodes must share one user, password, protocol and TLS \
                 mode, and none may be a Unix socket"
                    .into(),
            )
        })?;
        let address = nodes
            .iter()
            .map(|n| n.addr.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let failed = |reason: String| Error::Connect {
            backend: "Redis Cluster",
            address: address.clone(),
            reason,
        };
        reach_a_seed(&nodes).await.map_err(failed)?;
        let conn = match tokio::time::timeout(
            crate::config::CONNECT_TIMEOUT,
            client.get_async_connection(),
        )
        .await
        {
            Err(_) => {
                return Err(failed(format!(
                    "no answer within {} s (timed out)",
                    crate::config::CONNECT_TIMEOUT.as_secs()
                )));
            }
            Ok(Err(e)) => return Err(failed(cluster_failure(&e))),
            Ok(Ok(conn)) => conn,
        };
        let mut list = Self::from_conn(Conn::Cluster(conn));
        list.target = Some(Target::Cluster(nodes));
        Ok(list)
    }

    /// Uses an existing connection manager.
    pub fn from_manager(conn: ConnectionManager) -> Self {
        Self::from_conn(Conn::Manager(conn))
    }

    fn from_conn(conn: Conn) -> Self {
        Self {
            conn,
            target: None,
            prefix: "tessera:".to_owned(),
            per_subject: super::DEFAULT_SINGLE_USE_PER_SUBJECT,
            clock: Arc::new(SystemClock),
        }
    }

    /// Bounds each subject's live single-use marks at `limit` (default
    /// [`super::DEFAULT_SINGLE_USE_PER_SUBJECT`]).
    #[must_use]
    pub fn single_use_per_subject(mut self, limit: usize) -> Self {
        self.per_subject = limit;
        self
    }

    /// Namespaces every key under `prefix` (default `tessera:`).
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Computes TTLs from `clock` instead of the system clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn key(&self, rest: &str) -> String {
        format!("{{{}}}{rest}", self.prefix)
    }

    fn jti_key(&self, jti: &str) -> String {
        self.key(&format!("bl:{jti}"))
    }

    fn subject_key(&self, subject: &str) -> String {
        self.key(&format!("bls:{subject}"))
    }

    fn session_key(&self, sid: &str) -> String {
        self.key(&format!("blsid:{sid}"))
    }

    fn api_key_key(&self, id: &str) -> String {
        self.key(&format!("akc:{id}"))
    }

    fn owner_key(&self, owner: &str) -> String {
        self.key(&format!("ako:{owner}"))
    }

    pub(crate) fn index_key(&self) -> String {
        self.key("rev:index")
    }

    pub(crate) fn feed_key(&self) -> String {
        self.key("rev:feed")
    }

    pub(crate) fn target(&self) -> Option<&Target> {
        self.target.as_ref()
    }

    /// Whether this blocklist is on a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.conn, Conn::Cluster(_))
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// A write script with the index and feed keys and the two common arguments.
    fn recording<'a>(&self, script: &'a Script, key: String) -> redis::ScriptInvocation<'a> {
        let now = self.clock.now().unix_seconds();
        let horizon = FEED_HORIZON.as_secs();
        let mut invocation = script.key(key);
        invocation
            .key(self.index_key())
            .key(self.feed_key())
            .arg(now)
            .arg(horizon);
        invocation
    }

    /// Seconds from now to `until`, at least 1; `None` if `until` has passed.
    fn ttl(&self, until: Timestamp) -> Option<u64> {
        let now = self.clock.now();
        (until > now).then(|| until.duration_since(now).as_secs().max(1))
    }

    /// The remaining time to live of a revoked `jti`, in seconds (for operators and
    /// tests): `None` when not revoked.
    ///
    /// # Errors
    /// [`Error::Backend`].
    pub async fn remaining_ttl(&self, jti: &str) -> Result<Option<u64>> {
        check_id(jti)?;
        let mut conn = self.conn.clone();
        let ttl: i64 = conn.ttl(self.jti_key(jti)).await.map_err(|e| backend(&e))?;
        Ok(u64::try_from(ttl).ok())
    }
}

#[async_trait]
impl Blocklist for RedisBlocklist {
    async fn revoke(&self, jti: &str, expires_at: Timestamp) -> Result<bool> {
        check_id(jti)?;
        let Some(ttl) = self.ttl(expires_at) else {
            return Ok(false);
        };
        let mut conn = self.conn.clone();
        // SET NX EX in a script: atomic, so exactly one concurrent caller sees 1.
        let set: i64 = self
            .recording(&REVOKE_JTI, self.jti_key(jti))
            .arg(ttl)
            .arg(format!("j|{jti}"))
            .arg(expires_at.unix_seconds())
            .invoke_async(&mut conn)
            .await
            .map_err(|e| backend(&e))?;
        Ok(set == 1)
    }

    async fn is_revoked(&self, jti: &str) -> Result<bool> {
        check_id(jti)?;
        let mut conn = self.conn.clone();
        conn.exists(self.jti_key(jti))
            .await
            .map_err(|e| backend(&e))
    }

    async fn revoke_subject_before(
        &self,
        subject: &str,
        cutoff: Timestamp,
        keep_until: Timestamp,
    ) -> Result<()> {
        check_id(subject)?;
        let Some(ttl) = self.ttl(keep_until) else {
            return Ok(());
        };
        let mut conn = self.conn.clone();
        let _: i64 = self
            .recording(&MAX_CUTOFF, self.subject_key(subject))
            .arg(cutoff.unix_seconds())
            .arg(ttl)
            .arg(keep_until.unix_seconds())
            .arg(subject)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| backend(&e))?;
        Ok(())
    }

    async fn subject_cutoff(&self, subject: &str) -> Result<Option<Timestamp>> {
        check_id(subject)?;
        let mut conn = self.conn.clone();
        let value: Option<i64> = conn
            .get(self.subject_key(subject))
            .await
            .map_err(|e| backend(&e))?;
        value
            .map(|v| Timestamp::from_unix_seconds(v).map_err(Error::from))
            .transpose()
    }

    async fn revoke_session(&self, sid: &str, keep_until: Timestamp) -> Result<()> {
        check_id(sid)?;
        let Some(ttl) = self.ttl(keep_until) else {
            return Ok(());
        };
        let mut conn = self.conn.clone();
        let _: i64 = self
            .recording(&EXTEND, self.session_key(sid))
            .arg(ttl)
            .arg(format!("s|{sid}"))
            .arg(keep_until.unix_seconds())
            .invoke_async(&mut conn)
            .await
            .map_err(|e| backend(&e))?;
        Ok(())
    }

    async fn is_session_revoked(&self, sid: &str) -> Result<bool> {
        check_id(sid)?;
        let mut conn = self.conn.clone();
        conn.exists(self.session_key(sid))
            .await
            .map_err(|e| backend(&e))
    }

    async fn lookup(&self, token: TokenRef<'_>) -> Result<Revocation> {
        for id in [token.jti, token.sid, token.subject].into_iter().flatten() {
            check_id(id)?;
        }
        // One round trip; an absent part reads a key that never exists.
        let keys = [
            token.jti.map(|j| self.jti_key(j)),
            token.sid.map(|s| self.session_key(s)),
            token.subject.map(|s| self.subject_key(s)),
        ]
        .map(|k| k.unwrap_or_else(|| self.key("none")));
        let mut conn = self.conn.clone();
        let (jti, session, cutoff): (Option<String>, Option<String>, Option<i64>) =
            redis::cmd("MGET")
                .arg(&keys)
                .query_async(&mut conn)
                .await
                .map_err(|e| backend(&e))?;
        Ok(Revocation {
            jti: token.jti.is_some() && jti.is_some(),
            session: token.sid.is_some() && session.is_some(),
            subject_cutoff: match (token.subject, cutoff) {
                (Some(_), Some(v)) => Some(Timestamp::from_unix_seconds(v)?),
                _ => None,
            },
        })
    }

    async fn api_key_changed(
        &self,
        owner: &str,
        id: Option<&str>,
        at: Timestamp,
        keep_until: Timestamp,
    ) -> Result<()> {
        check_id(owner)?;
        let Some(ttl) = self.ttl(keep_until) else {
            return Ok(());
        };
        let (key, kind, name) = match id {
            Some(id) => {
                check_id(id)?;
                (self.api_key_key(id), "k", id)
            }
            None => (self.owner_key(owner), "o", owner),
        };
        let mut conn = self.conn.clone();
        let _: i64 = self
            .recording(&CHANGED, key)
            .arg(at.unix_seconds())
            .arg(ttl)
            .arg(keep_until.unix_seconds())
            .arg(kind)
            .arg(name)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| backend(&e))?;
        Ok(())
    }

    async fn api_key_changed_at(&self, owner: &str, id: &str) -> Result<Option<Timestamp>> {
        check_id(owner)?;
        check_id(id)?;
        let mut conn = self.conn.clone();
        let (key, owner): (Option<i64>, Option<i64>) = redis::cmd("MGET")
            .arg(self.api_key_key(id))
            .arg(self.owner_key(owner))
            .query_async(&mut conn)
            .await
            .map_err(|e| backend(&e))?;
        key.max(owner)
            .map(|t| Timestamp::from_unix_seconds(t).map_err(Error::from))
            .transpose()
    }

    async fn consume(&self, subject: &str, jti: &str, expires_at: Timestamp) -> Result<bool> {
        check_id(subject)?;
        check_id(jti)?;
        let Some(ttl) = self.ttl(expires_at) else {
            return Ok(false);
        };
        let mut conn = self.conn.clone();
        let outcome: i64 = CONSUME
            .key(self.key(&format!("used:{jti}")))
            .key(self.key(&format!("usedn:{subject}")))
            .arg(self.clock.now().unix_seconds())
            .arg(expires_at.unix_seconds())
            .arg(self.per_subject)
            .arg(ttl)
            .arg(jti)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| backend(&e))?;
        match outcome {
            1 => Ok(true),
            0 => Ok(false),
            _ => Err(Error::SingleUseLimit),
        }
    }
}
