//! Revocation of stateless tokens: a `jti` blocklist whose entries live exactly as long
//! as the tokens they revoke, and subject-wide cut-offs ("log out everywhere").
//!
//! Two backends: [`MemoryBlocklist`] (the embedded default, bounded, one process) and
//! [`RedisBlocklist`] (shared by a fleet). Both pass one conformance suite.

mod memory;
mod redis;

use async_trait::async_trait;
use token_core::Timestamp;

pub use self::memory::{DEFAULT_CAPACITY, MemoryBlocklist};
pub use self::redis::RedisBlocklist;
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
}

fn check_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(crate::Error::InvalidRevocationId);
    }
    Ok(())
}
