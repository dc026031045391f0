//! The one error type of `token-paseto`.

use token_core::{PasetoPurpose, PasetoVersion};

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `token-paseto`.
///
/// Authenticity failures (bad signature, bad tag, wrong key, wrong implicit assertion)
/// are all [`token_core::Error::InvalidToken`] inside [`Error::Core`]: no oracle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A `token-core` error: claims, validation, key ring, or an authenticity failure.
    #[error(transparent)]
    Core(#[from] token_core::Error),
    /// The token's version is not the one this key is for.
    #[error("wrong PASETO version: expected {expected:?}, found {found:?}")]
    WrongVersion {
        /// The key's version.
        expected: PasetoVersion,
        /// The token's version.
        found: PasetoVersion,
    },
    /// The token's purpose is not the one this key is for (a `public` token given to a
    /// decrypter, a `local` token to a verifier).
    #[error("wrong PASETO purpose: expected {expected:?}, found {found:?}")]
    WrongPurpose {
        /// The key's purpose.
        expected: PasetoPurpose,
        /// The token's purpose.
        found: PasetoPurpose,
    },
    /// PASETO v1 (always) or v2 (without the `legacy-v2` feature).
    #[error("unsupported PASETO version {0:?}")]
    UnsupportedVersion(PasetoVersion),
    /// The token is not a PASETO, or its segments are malformed.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The footer is longer, deeper or wider than accepted, or not the JSON expected.
    #[error("invalid footer: {0}")]
    InvalidFooter(&'static str),
    /// The footer differs from the one the caller requires.
    #[error("footer does not match the expected footer")]
    FooterMismatch,
    /// The footer names no key id and the key ring holds several keys.
    #[error("the token names no key id (footer `kid`) and the key ring holds several keys")]
    MissingKeyId,
    /// Key bytes or a key encoding are malformed.
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    /// A PASERK string is malformed, or of another type or version than expected.
    #[error("invalid PASERK: {0}")]
    InvalidPaserk(&'static str),
    /// Unwrapping, unsealing or decrypting a password-protected key failed: wrong
    /// wrapping key, recipient key or password, or tampered data.
    #[error("cannot recover the key: wrong key or password, or tampered data")]
    KeyRecoveryFailed,
    /// Password-hashing parameters below the accepted minimum, or above the maximum.
    #[error("password-hashing parameters out of bounds: {0}")]
    WeakPasswordParams(&'static str),
    /// A password-protected PASERK asks for more work than the unprotect limits allow
    /// ([`PwLimits`](crate::paserk::pw::PwLimits)); refused before any hashing.
    #[error("password-hashing cost over the limit: {parameter} is {value}, the limit is {limit}")]
    PasswordCostTooHigh {
        /// The parameter over its limit.
        parameter: crate::paserk::pw::PwCostParameter,
        /// Its value in the PASERK.
        value: u64,
        /// The limit it exceeds.
        limit: u64,
    },
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator is unavailable")]
    RandomnessUnavailable,
}

impl Error {
    /// The opaque authenticity failure.
    pub(crate) fn invalid() -> Self {
        Self::Core(token_core::Error::InvalidToken)
    }
}

impl Error {
    /// Why, in the closed set of phrases every tessera crate shares.
    pub fn reason(&self) -> token_core::Reason {
        use token_core::Reason as R;
        match self {
            Self::Core(e) => e.reason(),
            // Another version or purpose than the verifier's: the wrong kind of token
            // for it. A version no verifier takes (v1, v2 without the feature) is
            // unsupported.
            Self::WrongVersion { .. } | Self::WrongPurpose { .. } => R::WrongTokenType,
            Self::UnsupportedVersion(_) => R::UnsupportedVersion,
            Self::Malformed(_) => R::MalformedToken,
            Self::InvalidFooter(_) | Self::FooterMismatch => R::InvalidFooter,
            Self::MissingKeyId => R::UnknownKey,
            Self::RandomnessUnavailable => R::Internal,
            // Key material and PASERK errors: the key, not a token, is at fault; from a
            // token's point of view it did not verify.
            _ => R::InvalidToken,
        }
    }
}
