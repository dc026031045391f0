//! Storage: the [`OpaqueStore`] trait and its two backends.
//!
//! The store sees only hashes, never raw tokens. Every method that must be atomic is
//! atomic *in the database*: a single conditional statement, or a transaction that
//! serialises on the rows it reads (`SELECT … FOR UPDATE` on PostgreSQL, `BEGIN
//! IMMEDIATE` on SQLite). No in-process lock is relied on, so several application
//! processes may share one database.
//!
//! Row lookups are by the digest alone (a unique column); the pepper id travels with
//! the row, and the service compares digest and pepper id in constant time.

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;
use token_core::{OpaqueKind, Timestamp};

use crate::config::GracePolicy;
use crate::error::Result;
use crate::hash::TokenHash;

// First: the backends use its column-list macros.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[macro_use]
mod sql;

pub mod keys;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) mod logic;
mod migrate;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;

pub use migrate::{MIGRATIONS_TABLE, SCHEMA_VERSION};

/// A stored API key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// Public id (for listing, revoking, rolling).
    pub id: String,
    /// The stored hash.
    pub hash: TokenHash,
    /// `ApiKeyLive` or `ApiKeyTest`.
    pub kind: OpaqueKind,
    /// The account the key belongs to.
    pub owner_id: String,
    /// A human-readable name.
    pub name: String,
    /// The scopes granted.
    pub scopes: Vec<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Expiry, if any (set by a roll to the end of the overlap).
    pub expires_at: Option<Timestamp>,
    /// Last successful verification, to the API-key policy's resolution.
    pub last_used_at: Option<Timestamp>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<Timestamp>,
    /// The key this one was rolled into, if any.
    pub replaced_by: Option<String>,
}

impl ApiKeyRecord {
    /// A record with every field given (for store implementations and tests).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: String,
        hash: TokenHash,
        kind: OpaqueKind,
        owner_id: String,
        name: String,
        scopes: Vec<String>,
        created_at: Timestamp,
        expires_at: Option<Timestamp>,
    ) -> Self {
        Self {
            id,
            hash,
            kind,
            owner_id,
            name,
            scopes,
            created_at,
            expires_at,
            last_used_at: None,
            revoked_at: None,
            replaced_by: None,
        }
    }
}

/// A refresh-token family: one login session's chain of rotations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshFamilyRecord {
    /// Family id.
    pub id: String,
    /// The user who logged in.
    pub user_id: String,
    /// Login time.
    pub created_at: Timestamp,
    /// The family ends at this instant, however active.
    pub absolute_expires_at: Timestamp,
    /// The family ends at this instant unless rotated before.
    pub idle_expires_at: Timestamp,
    /// The id of the family's one unused token.
    pub current_token_id: String,
    /// Last rotation, if any.
    pub rotated_at: Option<Timestamp>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<Timestamp>,
    /// Why it was revoked (`logout`, `reuse`, `user`).
    pub revoke_reason: Option<String>,
    /// The thumbprint (RFC 7638) of the client key the family is bound to (DPoP):
    /// every rotation must prove possession of it. `None`: a bearer family.
    pub jkt: Option<String>,
}

/// A refresh token to insert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRefreshToken {
    /// Token id.
    pub id: String,
    /// The stored hash.
    pub hash: TokenHash,
    /// Issue time.
    pub created_at: Timestamp,
}

impl NewRefreshToken {
    /// A token row to insert.
    pub fn new(id: String, hash: TokenHash, created_at: Timestamp) -> Self {
        Self {
            id,
            hash,
            created_at,
        }
    }
}

/// What [`OpaqueStore::rotate_refresh`] is asked to do.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RotateRequest {
    /// The hash of the presented token.
    pub presented: TokenHash,
    /// The current time.
    pub now: Timestamp,
    /// The successor to store if the presented token is unused.
    pub successor: NewRefreshToken,
    /// The successor's random part, sealed under a key only the presented token
    /// derives; kept on the presented token's row for the grace window.
    pub sealed_successor: Vec<u8>,
    /// The family's idle timeout.
    pub idle_timeout: Duration,
    /// The reuse grace window.
    pub grace: GracePolicy,
}

impl RotateRequest {
    /// A rotation request.
    pub fn new(
        presented: TokenHash,
        now: Timestamp,
        successor: NewRefreshToken,
        sealed_successor: Vec<u8>,
        idle_timeout: Duration,
        grace: GracePolicy,
    ) -> Self {
        Self {
            presented,
            now,
            successor,
            sealed_successor,
            idle_timeout,
            grace,
        }
    }
}

/// What a successful [`OpaqueStore::rotate_refresh`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RotateOutcome {
    /// The presented token was marked used and the requested successor stored.
    Rotated {
        /// The family, after the rotation.
        family: RefreshFamilyRecord,
        /// The successor's generation (0 is the login token).
        generation: i64,
    },
    /// The presented token was the family's previous token, presented again within
    /// the grace window: nothing was minted; here is the current token, sealed.
    Grace {
        /// The family.
        family: RefreshFamilyRecord,
        /// The current token's id.
        successor_id: String,
        /// The current token's stored hash.
        successor_hash: TokenHash,
        /// The current token's random part, sealed under the presented token.
        sealed_successor: Vec<u8>,
        /// The current token's generation.
        generation: i64,
    },
}

/// A stored email-verification or password-reset token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OneTimeRecord {
    /// Row id.
    pub id: String,
    /// The stored hash.
    pub hash: TokenHash,
    /// `EmailVerification` or `PasswordReset`.
    pub kind: OpaqueKind,
    /// The user it was issued to.
    pub user_id: String,
    /// Data bound to the token (for example the address being verified).
    pub data: Option<String>,
    /// Issue time.
    pub created_at: Timestamp,
    /// Expiry.
    pub expires_at: Timestamp,
}

impl OneTimeRecord {
    /// A record with every field given.
    pub fn new(
        id: String,
        hash: TokenHash,
        kind: OpaqueKind,
        user_id: String,
        data: Option<String>,
        created_at: Timestamp,
        expires_at: Timestamp,
    ) -> Self {
        Self {
            id,
            hash,
            kind,
            user_id,
            data,
            created_at,
            expires_at,
        }
    }
}

/// A stored server-side session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    /// Public handle (for listing and revoking; not a credential).
    pub id: String,
    /// The stored hash of the session id.
    pub hash: TokenHash,
    /// The user.
    pub user_id: String,
    /// Server-side data, as JSON text.
    pub data: String,
    /// Start time.
    pub created_at: Timestamp,
    /// Last use, to the session policy's resolution.
    pub last_seen_at: Timestamp,
    /// Sliding idle expiry.
    pub idle_expires_at: Timestamp,
    /// Absolute expiry.
    pub absolute_expires_at: Timestamp,
}

impl SessionRecord {
    /// A record with every field given.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: String,
        hash: TokenHash,
        user_id: String,
        data: String,
        created_at: Timestamp,
        idle_expires_at: Timestamp,
        absolute_expires_at: Timestamp,
    ) -> Self {
        Self {
            id,
            hash,
            user_id,
            data,
            created_at,
            last_seen_at: created_at,
            idle_expires_at,
            absolute_expires_at,
        }
    }
}

/// What [`OpaqueStore::revoke_user`] ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserRevocation {
    /// Refresh families revoked.
    pub refresh_families: u64,
    /// Sessions deleted.
    pub sessions: u64,
    /// One-time tokens deleted.
    pub one_time_tokens: u64,
}

/// What [`OpaqueStore::purge_expired`] deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Expired one-time tokens.
    pub one_time_tokens: u64,
    /// Sessions past their idle or absolute expiry.
    pub sessions: u64,
    /// Refresh families past their idle or absolute expiry (revoked or not), with
    /// their tokens.
    pub refresh_families: u64,
    /// API keys past their expiry (including rolled keys past their overlap).
    pub api_keys: u64,
    /// Issuance rate-limit entries older than the limit.
    pub rate_limits: u64,
}

/// Storage for opaque tokens, used as `Arc<dyn OpaqueStore>`. Implemented by
/// `SqliteStore` (feature `sqlite`) and `PgStore` (feature `postgres`); an application
/// with neither may bring its own.
///
/// Errors: the methods return the lookup errors of [`crate::Error`] where the method
/// says so, and [`crate::Error::Database`] for database failures.
#[async_trait]
pub trait OpaqueStore: Send + Sync + Debug {
    /// A short name of the backend (`sqlite`, `postgres`).
    fn backend(&self) -> &'static str;

    /// The key table in the same database, for a key store (`None`: this store keeps no
    /// keys; the default for stores brought by an application).
    fn key_table(&self) -> Option<&dyn keys::KeyTable> {
        None
    }

    // ---- API keys -----------------------------------------------------------------

    /// Inserts a new key.
    /// Inserts `key` unless its owner already holds `max_live` live keys at
    /// `key.created_at` ([`crate::Error::TooManyApiKeys`]): the count and the insert are
    /// one transaction, serialised per owner, so concurrent creations cannot overshoot.
    async fn insert_api_key(&self, key: &ApiKeyRecord, max_live: u32) -> Result<()>;
    /// The key of `kind` whose digest is `hash`'s.
    async fn find_api_key(
        &self,
        hash: &TokenHash,
        kind: OpaqueKind,
    ) -> Result<Option<ApiKeyRecord>>;
    /// The key `id` of `owner_id`.
    async fn get_api_key(&self, owner_id: &str, id: &str) -> Result<Option<ApiKeyRecord>>;
    /// Every key of `owner_id`, oldest first.
    async fn list_api_keys(&self, owner_id: &str) -> Result<Vec<ApiKeyRecord>>;
    /// Sets `last_used_at = now` if it is unset or not after `used_before`. Returns
    /// whether it wrote.
    async fn touch_api_key(&self, id: &str, now: Timestamp, used_before: Timestamp)
    -> Result<bool>;
    /// Replaces the stored hash `old` of key `id` with `new` (pepper rotation).
    async fn rehash_api_key(&self, id: &str, old: &TokenHash, new: &TokenHash) -> Result<bool>;
    /// Revokes key `id` of `owner_id`. Returns whether a live key was revoked.
    async fn revoke_api_key(&self, owner_id: &str, id: &str, now: Timestamp) -> Result<bool>;
    /// Revokes every live key of `owner_id` at `now`, in one statement (a key created
    /// concurrently is either revoked or created after it). Returns how many.
    async fn revoke_api_keys_of_owner(&self, owner_id: &str, now: Timestamp) -> Result<u64>;
    /// Atomically inserts `new` and makes the old key `old_id` (of `new.owner_id`)
    /// expire at `overlap_until` (or earlier if it already expires earlier), recording
    /// the replacement. Returns the old key as updated.
    ///
    /// # Errors
    /// `NotFound`, `Revoked`, `Expired` for the old key; `AlreadyRolled` if it was
    /// rolled before.
    async fn roll_api_key(
        &self,
        old_id: &str,
        new: &ApiKeyRecord,
        overlap_until: Timestamp,
        now: Timestamp,
    ) -> Result<ApiKeyRecord>;

    // ---- refresh tokens -----------------------------------------------------------

    /// Inserts a new family and its first token.
    async fn create_refresh_family(
        &self,
        family: &RefreshFamilyRecord,
        token: &NewRefreshToken,
    ) -> Result<()>;
    /// Rotates the presented token in one transaction, serialised per family.
    ///
    /// # Errors
    /// `NotFound`; `Revoked` (family revoked); `Expired` (family past its absolute or
    /// idle expiry); `ReuseDetected` (the token was used and the reuse is not within
    /// the grace policy: the family has been revoked, and that is committed).
    async fn rotate_refresh(&self, request: &RotateRequest) -> Result<RotateOutcome>;
    /// The family of the token whose digest is `hash`'s.
    async fn find_refresh_family(&self, hash: &TokenHash) -> Result<Option<RefreshFamilyRecord>>;
    /// Revokes family `family_id` of `user_id` with `reason`. Returns whether a live
    /// family was revoked.
    async fn revoke_refresh_family(
        &self,
        user_id: &str,
        family_id: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<bool>;
    /// The families of `user_id` that are neither revoked nor expired at `now`.
    async fn list_refresh_families(
        &self,
        user_id: &str,
        now: Timestamp,
    ) -> Result<Vec<RefreshFamilyRecord>>;

    // ---- one-time tokens ----------------------------------------------------------

    /// Inserts `token` unless a token of the same user and kind was issued less than
    /// `min_interval` ago; the check and the insert are one transaction.
    ///
    /// # Errors
    /// `RateLimited` with the time left.
    async fn insert_one_time(&self, token: &OneTimeRecord, min_interval: Duration) -> Result<()>;
    /// Deletes and returns the unexpired token of `kind` whose digest is `hash`'s, in
    /// one statement (single use under concurrency).
    ///
    /// # Errors
    /// `NotFound`; `Expired` (the row is deleted too).
    async fn redeem_one_time(
        &self,
        hash: &TokenHash,
        kind: OpaqueKind,
        now: Timestamp,
    ) -> Result<OneTimeRecord>;
    /// Deletes the outstanding one-time tokens of `user_id` (of `kind`, or all).
    async fn delete_one_time_for_user(
        &self,
        user_id: &str,
        kind: Option<OpaqueKind>,
    ) -> Result<u64>;

    // ---- sessions -----------------------------------------------------------------

    /// Inserts a session.
    async fn insert_session(&self, session: &SessionRecord) -> Result<()>;
    /// The session whose digest is `hash`'s.
    async fn find_session(&self, hash: &TokenHash) -> Result<Option<SessionRecord>>;
    /// Sets `last_seen_at = now` and the idle expiry if the session is still live at
    /// `now` and was last seen at or before `seen_before`. Returns whether it wrote.
    async fn touch_session(
        &self,
        id: &str,
        now: Timestamp,
        idle_expires_at: Timestamp,
        seen_before: Timestamp,
    ) -> Result<bool>;
    /// Replaces the data of session `id`. Returns whether it exists.
    async fn set_session_data(&self, id: &str, data: &str) -> Result<bool>;
    /// The sessions of `user_id` live at `now`, oldest first.
    async fn list_sessions(&self, user_id: &str, now: Timestamp) -> Result<Vec<SessionRecord>>;
    /// Deletes session `id` of `user_id`. Returns whether it existed.
    async fn delete_session(&self, user_id: &str, id: &str) -> Result<bool>;
    /// Deletes the sessions of `user_id`, except `keep`.
    async fn delete_sessions_for_user(&self, user_id: &str, keep: Option<&str>) -> Result<u64>;

    // ---- housekeeping -------------------------------------------------------------

    /// In one transaction: revokes every refresh family of `user_id`, deletes their
    /// sessions and one-time tokens.
    async fn revoke_user(&self, user_id: &str, now: Timestamp) -> Result<UserRevocation>;
    /// Deletes every row past its expiry at `now`, and rate-limit entries last written
    /// at or before `rate_limits_before`. Safe to run concurrently with itself and with
    /// every other operation.
    async fn purge_expired(
        &self,
        now: Timestamp,
        rate_limits_before: Timestamp,
    ) -> Result<PurgeReport>;
}
