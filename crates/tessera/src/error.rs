//! [`Error`]: every member crate's error in one type, for `?` across them.

use token_core::Reason;

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Any tessera error; [`Error::reason`] is the shared phrase whichever crate failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Claims, validation, format detection, keys.
    #[error(transparent)]
    Core(#[from] token_core::Error),
    /// PASETO and PASERK.
    #[cfg(feature = "paseto")]
    #[error(transparent)]
    Paseto(#[from] token_paseto::Error),
    /// JWT, JWS, JWE, JWK.
    #[cfg(feature = "jwt")]
    #[error(transparent)]
    Jwt(#[from] token_jwt::Error),
    /// Refresh tokens, API keys, one-time tokens, sessions, their stores.
    #[cfg(feature = "opaque")]
    #[error(transparent)]
    Opaque(#[from] token_opaque::Error),
    /// The policy layer: TokenService, revocation, verify-only services.
    #[cfg(feature = "policy")]
    #[error(transparent)]
    Policy(#[from] token_policy::Error),
    /// The axum integration (serving, key-set client, extractors).
    #[cfg(feature = "axum")]
    #[error(transparent)]
    Axum(#[from] token_axum::Error),
}

impl Error {
    /// Why, in the closed set of phrases every tessera crate shares.
    pub fn reason(&self) -> Reason {
        match self {
            Self::Core(e) => e.reason(),
            #[cfg(feature = "paseto")]
            Self::Paseto(e) => e.reason(),
            #[cfg(feature = "jwt")]
            Self::Jwt(e) => e.reason(),
            #[cfg(feature = "opaque")]
            Self::Opaque(e) => e.reason(),
            #[cfg(feature = "policy")]
            Self::Policy(e) => e.reason(),
            #[cfg(feature = "axum")]
            Self::Axum(e) => e.reason(),
        }
    }
}
