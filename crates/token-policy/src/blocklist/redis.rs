//! The shared blocklist on Redis: `SET <prefix>bl:<jti> 1 EX <ttl>` / `EXISTS`, and
//! subject cut-offs under `<prefix>bls:<subject>`, kept at the later of two cut-offs by
//! a server-side script.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use token_core::{Clock, SystemClock, Timestamp};

use super::{Blocklist, check_id};
use crate::error::{Error, Result};

/// Keeps the later cut-off; extends the expiry when asked to keep it longer.
static MAX_CUTOFF: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local cur = redis.call('GET', KEYS[1])
        if cur and tonumber(cur) >= tonumber(ARGV[1]) then
            if redis.call('TTL', KEYS[1]) < tonumber(ARGV[2]) then
                redis.call('EXPIRE', KEYS[1], ARGV[2])
            end
            return 0
        end
        redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
        return 1
        ",
    )
});

fn backend(e: &redis::RedisError) -> Error {
    Error::Backend(format!("redis ({:?})", e.kind()))
}

/// A blocklist shared through Redis, for a fleet of servers.
#[derive(Clone)]
pub struct RedisBlocklist {
    conn: ConnectionManager,
    prefix: String,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for RedisBlocklist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBlocklist")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisBlocklist {
    /// Connects to `url` (`redis://host:port/db`) with a reconnecting connection manager.
    ///
    /// # Errors
    /// [`Error::Backend`] if the URL is invalid or the server unreachable.
    pub async fn connect(url: &str) -> Result<Self> {
        let client = redis::Client::open(url).map_err(|e| backend(&e))?;
        // Bounded: a few quick retries, then an error (a revocation check must not hang).
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(2)
            .set_max_delay(500)
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(Duration::from_secs(2));
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| backend(&e))?;
        Ok(Self::from_manager(conn))
    }

    /// Uses an existing connection manager.
    pub fn from_manager(conn: ConnectionManager) -> Self {
        Self {
            conn,
            prefix: "tessera:".to_owned(),
            clock: Arc::new(SystemClock),
        }
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

    fn jti_key(&self, jti: &str) -> String {
        format!("{}bl:{jti}", self.prefix)
    }

    fn subject_key(&self, subject: &str) -> String {
        format!("{}bls:{subject}", self.prefix)
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
        // SET NX EX: atomic, so exactly one concurrent caller sees `OK`.
        let set: Option<String> = redis::cmd("SET")
            .arg(self.jti_key(jti))
            .arg(1u8)
            .arg("NX")
            .arg("EX")
            .arg(ttl)
            .query_async(&mut conn)
            .await
            .map_err(|e| backend(&e))?;
        Ok(set.is_some())
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
        let _: i64 = MAX_CUTOFF
            .key(self.subject_key(subject))
            .arg(cutoff.unix_seconds())
            .arg(ttl)
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
}
