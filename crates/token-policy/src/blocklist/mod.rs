//! Revocation of stateless tokens: a `jti` blocklist whose entries live exactly as long
//! as the tokens they revoke, revoked login sessions (every access token minted from a
//! refresh family), and subject-wide cut-offs ("log out everywhere").
//!
//! Single use (a payment token consumed once) is kept apart from revocation: its
//! marks have their own capacity and a bound per subject, so no user can fill the
//! space that `logout` needs.
//!
//! Two backends: [`MemoryBlocklist`] (the embedded default, bounded, one process) and
//! `RedisBlocklist` (shared by a fleet, on one Redis or a Redis Cluster; feature
//! `redis`). Both pass one conformance suite, the Redis one on both topologies.

#[cfg(feature = "redis")]
mod connection;
mod memory;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
mod replica;

use async_trait::async_trait;
use token_core::Timestamp;

pub use self::memory::{DEFAULT_CAPACITY, DEFAULT_SINGLE_USE_PER_SUBJECT, MemoryBlocklist};
#[cfg(feature = "redis")]
pub use self::redis::RedisBlocklist;
#[cfg(feature = "redis")]
pub use self::replica::{
    DEFAULT_MAX_STALENESS, ReplicaOptions, ReplicaStatus, ReplicatedBlocklist,
};
use crate::error::Result;

/// The longest `jti` or subject accepted, in bytes.
pub const MAX_ID_LEN: usize = 256;

/// Revoked token ids and subject cut-offs.
///
/// Entries expire on their own: a revoked `jti` is kept until the token's own `exp`
/// (after which the token is refused anyway), so the list never holds more than the
/// live tokens.
#[async_trait]
pub trait Blocklist: Send + Sync {
    /// Revokes the token `jti`, which expires at `expires_at`. Returns `true` if this
    /// call revoked it, `false` if it was already revoked (atomically: of concurrent
    /// calls for one `jti`, exactly one sees `true`, which makes single use possible).
    /// Revoking an already expired token stores nothing and returns `false`.
    async fn revoke(&self, jti: &str, expires_at: Timestamp) -> Result<bool>;

    /// Whether `jti` is revoked.
    async fn is_revoked(&self, jti: &str) -> Result<bool>;

    /// Revokes every token of `subject` issued before `cutoff`. The cut-off is kept
    /// until `keep_until`, by which time every such token has expired (use now + the
    /// longest access-token lifetime). A later cut-off replaces an earlier one; an
    /// earlier one never replaces a later one.
    async fn revoke_subject_before(
        &self,
        subject: &str,
        cutoff: Timestamp,
        keep_until: Timestamp,
    ) -> Result<()>;

    /// The cut-off for `subject`, if any: tokens issued before it are revoked.
    async fn subject_cutoff(&self, subject: &str) -> Result<Option<Timestamp>>;

    /// Revokes every token of login session `sid` (a refresh family) until
    /// `keep_until`, by which time every such token has expired (use now + the
    /// access-token lifetime). A later `keep_until` extends an earlier one.
    async fn revoke_session(&self, sid: &str, keep_until: Timestamp) -> Result<()>;

    /// Whether login session `sid` is revoked.
    async fn is_session_revoked(&self, sid: &str) -> Result<bool>;

    /// The revocation state of one token, in one call (one round trip on a shared
    /// backend): whether its `jti` or its session is revoked, and its subject's cut-off.
    async fn lookup(&self, token: TokenRef<'_>) -> Result<Revocation> {
        let jti = match token.jti {
            Some(jti) => self.is_revoked(jti).await?,
            None => false,
        };
        let session = match token.sid {
            Some(sid) => self.is_session_revoked(sid).await?,
            None => false,
        };
        let subject_cutoff = match token.subject {
            Some(sub) => self.subject_cutoff(sub).await?,
            None => None,
        };
        Ok(Revocation {
            jti,
            session,
            subject_cutoff,
        })
    }

    /// Records that API key `id` of `owner` — or, with `id` `None`, every key of
    /// `owner` — was revoked or rolled at `at`, until `keep_until` (past the longest
    /// time a cache keeps a verified key): processes caching verified keys drop them.
    /// The default stores nothing, for a blocklist that no other process reads (the
    /// service drops its own cached keys itself).
    async fn api_key_changed(
        &self,
        owner: &str,
        id: Option<&str>,
        at: Timestamp,
        keep_until: Timestamp,
    ) -> Result<()> {
        let _ = (owner, id, at, keep_until);
        Ok(())
    }

    /// The latest change recorded by [`Blocklist::api_key_changed`] for key `id` of
    /// `owner` (the key's own, or its owner's), while kept.
    async fn api_key_changed_at(&self, owner: &str, id: &str) -> Result<Option<Timestamp>> {
        let _ = (owner, id);
        Ok(None)
    }

    /// Marks the single-use token `jti` of `subject` used until `expires_at`. Returns
    /// `true` if this call used it, `false` if it was used before (atomically: of
    /// concurrent calls for one `jti`, exactly one sees `true`). Marks do not share
    /// the revocation entries' capacity, and each subject holds a bounded number of
    /// live marks ([`crate::Error::SingleUseLimit`] past it).
    async fn consume(&self, subject: &str, jti: &str, expires_at: Timestamp) -> Result<bool>;
}

/// The identifiers of one token, for [`Blocklist::lookup`].
#[derive(Clone, Copy, Debug, Default)]
pub struct TokenRef<'a> {
    /// Its `jti`.
    pub jti: Option<&'a str>,
    /// Its login session.
    pub sid: Option<&'a str>,
    /// Its subject.
    pub subject: Option<&'a str>,
}

/// What [`Blocklist::lookup`] found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Revocation {
    /// The token's `jti` is revoked.
    pub jti: bool,
    /// The token's login session is revoked.
    pub session: bool,
    /// The subject's cut-off: tokens issued up to it are revoked.
    pub subject_cutoff: Option<Timestamp>,
}

impl Revocation {
    /// Whether a token issued at `iat` is revoked.
    pub fn revokes(&self, iat: Option<Timestamp>) -> bool {
        self.jti
            || self.session
            || matches!((self.subject_cutoff, iat), (Some(cutoff), Some(iat)) if iat <= cutoff)
    }
}

fn check_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(crate::Error::InvalidRevocationId);
    }
    Ok(())
}
