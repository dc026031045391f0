//! The one error type of `token-policy`.

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `token-policy`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A `token-core` error: claims, validation, format detection, keys.
    #[error(transparent)]
    Core(#[from] token_core::Error),
    /// A token id or subject is empty or longer than 256 bytes.
    #[error("token id or subject must be 1 to 256 bytes")]
    InvalidRevocationId,
    /// The in-process blocklist is full of live entries; nothing was forgotten.
    #[error("the in-process blocklist is full of live revocations; use a larger capacity or Redis")]
    BlocklistFull,
    /// The blocklist backend failed (no secrets in the message).
    #[error("revocation backend error: {0}")]
    Backend(String),
    /// The token was revoked (its `jti`, or every token of its subject before a cut-off).
    #[error("token revoked")]
    Revoked,
}
