#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod api_keys;
pub mod config;
pub mod cookie;
pub mod error;
pub mod format;
pub mod hash;
pub mod one_time;
pub mod refresh;
pub mod sessions;
pub mod store;
mod util;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use token_core::{Clock, SystemClock, Timestamp};

pub use api_keys::{ApiKeyInfo, ApiKeys, CreatedApiKey, NewApiKey, RolledApiKey};
pub use config::{ApiKeyPolicy, Config, GracePolicy, OneTimePolicy, RefreshPolicy, SessionPolicy};
pub use cookie::{SameSite, SessionCookie};
pub use error::{DbError, DbErrorKind, Error, Result};
pub use format::{
    BASE62_ALPHABET, Environment, MAX_OPAQUE_TOKEN_LEN, MAX_PREFIX_LEN, ParsedToken, Prefixes,
    TokenPurpose,
};
pub use hash::{TokenHash, TokenHasher};
pub use one_time::{IssuedOneTime, OneTimeKind, OneTimeTokens, RedeemedOneTime};
pub use refresh::{IssuedRefresh, RefreshTokens, RotatedRefresh};
pub use sessions::{CreatedSession, Session, Sessions};
pub use store::keys::{KeyRecord, KeyTable, Retire, Rewrapped};
#[cfg(feature = "postgres")]
pub use store::postgres::PgStore;
#[cfg(feature = "sqlite")]
pub use store::sqlite::{Durability, SqliteOptions, SqliteStore};
pub use store::{OpaqueStore, PurgeReport, RefreshFamilyRecord, UserRevocation};

/// What every service shares.
pub(crate) struct Inner {
    pub(crate) store: Arc<dyn OpaqueStore>,
    /// Replaced whole when the peppers change ([`OpaqueTokens::replace_hasher`]).
    hasher: std::sync::RwLock<Arc<TokenHasher>>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: Config,
}

impl Inner {
    /// The hasher in force (a cheap `Arc` clone; a read lock held for no longer).
    pub(crate) fn hasher(&self) -> Arc<TokenHasher> {
        self.hasher
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Parses `raw` and checks its purpose: no query for a malformed or misdirected
    /// token.
    pub(crate) fn parse<'a>(&self, raw: &'a str, purpose: TokenPurpose) -> Result<ParsedToken<'a>> {
        self.config.prefixes.parse(raw)?.expect(purpose)
    }
}

/// Opaque tokens on one store: the entry point.
///
/// Cheap to clone (one `Arc`). Hands out the four services, which share the store, the
/// hasher, the clock and the configuration.
#[derive(Clone)]
pub struct OpaqueTokens {
    inner: Arc<Inner>,
}

impl fmt::Debug for OpaqueTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpaqueTokens")
            .field("store", &self.inner.store.backend())
            .field("hasher", &self.inner.hasher())
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// A store [`OpaqueTokens`] can run on: any [`OpaqueStore`] (`SqliteStore`,
/// `PgStore`, your own), or one already shared as `Arc<dyn OpaqueStore>`.
pub trait IntoStore {
    /// The store, shared.
    fn into_store(self) -> Arc<dyn OpaqueStore>;
}

impl<S: OpaqueStore + 'static> IntoStore for S {
    fn into_store(self) -> Arc<dyn OpaqueStore> {
        Arc::new(self)
    }
}

impl IntoStore for Arc<dyn OpaqueStore> {
    fn into_store(self) -> Arc<dyn OpaqueStore> {
        self
    }
}

impl<S: OpaqueStore + 'static> IntoStore for Arc<S> {
    fn into_store(self) -> Arc<dyn OpaqueStore> {
        self
    }
}

impl OpaqueTokens {
    /// Tokens on `store` with the defaults: SHA-256 hashing, the system clock, the
    /// default [`Config`].
    pub fn new(store: impl IntoStore) -> Self {
        Self {
            inner: Arc::new(Inner {
                store: store.into_store(),
                hasher: std::sync::RwLock::new(Arc::new(TokenHasher::sha256())),
                clock: Arc::new(SystemClock),
                config: Config::default(),
            }),
        }
    }

    /// Replaces the hasher, for every service handed out by these tokens and their
    /// clones, from the next operation on: how a key store installs a new pepper ring
    /// (a new current pepper, with the earlier ones kept for lookups) without a
    /// restart. Rows hashed under a pepper the new hasher lacks stop matching.
    pub fn replace_hasher(&self, hasher: TokenHasher) {
        *self
            .inner
            .hasher
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(hasher);
    }

    /// A builder, to set the hasher, the clock or the configuration.
    pub fn builder(store: impl IntoStore) -> OpaqueTokensBuilder {
        OpaqueTokensBuilder {
            store: store.into_store(),
            hasher: TokenHasher::sha256(),
            clock: Arc::new(SystemClock),
            config: Config::default(),
        }
    }

    /// API keys.
    pub fn api_keys(&self) -> ApiKeys {
        ApiKeys::new(self.inner.clone())
    }

    /// Refresh tokens.
    pub fn refresh(&self) -> RefreshTokens {
        RefreshTokens::new(self.inner.clone())
    }

    /// Email-verification and password-reset tokens.
    pub fn one_time(&self) -> OneTimeTokens {
        OneTimeTokens::new(self.inner.clone())
    }

    /// Server-side sessions.
    pub fn sessions(&self) -> Sessions {
        Sessions::new(self.inner.clone())
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn OpaqueStore> {
        &self.inner.store
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Parses a token of any kind (shape and checksum only; no lookup).
    ///
    /// # Errors
    /// [`Error::Malformed`] or [`Error::BadChecksum`].
    pub fn parse<'a>(&self, raw: &'a str) -> Result<ParsedToken<'a>> {
        self.inner.config.prefixes.parse(raw)
    }

    /// Ends everything of `user_id` at once, in one transaction: revokes every refresh
    /// family, deletes every session and every outstanding one-time token. API keys
    /// belong to an owner account and are managed with [`ApiKeys::revoke`].
    ///
    /// # Errors
    /// [`Error::InvalidInput`], [`Error::Database`].
    pub async fn revoke_user(&self, user_id: &str) -> Result<UserRevocation> {
        util::check_ident(
            user_id,
            "user id must be 1-256 bytes without control characters",
        )?;
        self.inner
            .store
            .revoke_user(user_id, self.inner.now())
            .await
    }

    /// Deletes every row that can no longer be used: expired one-time tokens, sessions
    /// and refresh families past their expiry (revoked families are kept until then,
    /// so a replay is still answered `Revoked`), API keys past their expiry, and stale
    /// rate-limit entries. Safe to run concurrently, from several processes.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn purge_expired(&self) -> Result<PurgeReport> {
        let now = self.inner.now();
        let horizon = self
            .inner
            .config
            .one_time
            .min_issue_interval
            .max(Duration::from_secs(1));
        self.inner
            .store
            .purge_expired(now, now.saturating_sub(horizon))
            .await
    }
}

/// Builds [`OpaqueTokens`].
pub struct OpaqueTokensBuilder {
    store: Arc<dyn OpaqueStore>,
    hasher: TokenHasher,
    clock: Arc<dyn Clock>,
    config: Config,
}

impl fmt::Debug for OpaqueTokensBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpaqueTokensBuilder")
            .field("store", &self.store.backend())
            .field("hasher", &self.hasher)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl OpaqueTokensBuilder {
    /// The hasher (default: plain SHA-256).
    #[must_use]
    pub fn hasher(mut self, hasher: TokenHasher) -> Self {
        self.hasher = hasher;
        self
    }

    /// The clock (default: [`SystemClock`]). Tests inject their own.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The configuration (default: [`Config::default`]).
    #[must_use]
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Checks the configuration and builds.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a zero lifetime or timeout.
    pub fn build(self) -> Result<OpaqueTokens> {
        let c = &self.config;
        let lifetimes = [
            c.refresh.absolute_lifetime,
            c.refresh.idle_timeout,
            c.one_time.email_verification_ttl,
            c.one_time.password_reset_ttl,
            c.sessions.idle_timeout,
            c.sessions.absolute_lifetime,
        ];
        if lifetimes.iter().any(|d| d.as_secs() == 0) {
            return Err(Error::InvalidInput(
                "lifetimes and timeouts must be at least one second",
            ));
        }
        Ok(OpaqueTokens {
            inner: Arc::new(Inner {
                store: self.store,
                hasher: std::sync::RwLock::new(Arc::new(self.hasher)),
                clock: self.clock,
                config: self.config,
            }),
        })
    }
}
