//! The one error type of `token-policy`.

use std::time::Duration;

use token_core::TokenFormat;

use crate::policy::Job;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `token-policy`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A `token-core` error: claims, validation, format detection, keys.
    #[error(transparent)]
    Core(#[from] token_core::Error),
    /// A PASETO error.
    #[error(transparent)]
    Paseto(#[from] token_paseto::Error),
    /// A JWT error.
    #[error(transparent)]
    Jwt(#[from] token_jwt::Error),
    /// An opaque-token error (refresh, API key, one-time token, session).
    #[error(transparent)]
    Opaque(#[from] token_opaque::Error),
    /// A lifetime above the job's limit, without a `dangerous_` override.
    #[error("{job} lifetime {}s exceeds the limit of {}s; raising it needs the dangerous_raise_* override", .requested.as_secs(), .limit.as_secs())]
    LimitExceeded {
        /// The job.
        job: Job,
        /// The lifetime asked for.
        requested: Duration,
        /// The limit.
        limit: Duration,
    },
    /// A policy or configuration that makes no sense.
    #[error("invalid policy: {0}")]
    InvalidPolicy(String),
    /// A key not allowed for the job (e.g. an RSA key for access tokens).
    #[error("key not allowed for the {job} job: {reason}")]
    KeyNotAllowed {
        /// The job.
        job: Job,
        /// Why.
        reason: &'static str,
    },
    /// A readable (signed, unencrypted) payload would carry a sensitive-looking claim.
    #[error(
        "claim `{0}` looks sensitive and access tokens are readable; put it in a payment (encrypted) token or server-side"
    )]
    SensitiveClaim(String),
    /// A token of another type than the job takes (an API key given as an access
    /// token, a JWT where PASETO is configured, …).
    #[error("a {found} is not a {job} token")]
    WrongTokenType {
        /// The job.
        job: Job,
        /// What the token looks like.
        found: TokenFormat,
    },
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
    /// A single-use token (payment) was already consumed.
    #[error("token already used")]
    AlreadyUsed,
    /// The subject has consumed as many single-use tokens as the bound allows within
    /// their lifetime; retry when some have expired.
    #[error("too many single-use tokens consumed by this subject; retry later")]
    SingleUseLimit,
    /// The migration verifier's allow-list does not admit this kind of token.
    #[error("token kind not allowed: {0}")]
    NotAllowed(String),
    /// JWT access tokens are no longer accepted (the migration's cut-off has passed).
    #[error("JWT access tokens are no longer accepted")]
    JwtRetired,
    /// A configuration file or key reference is invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// A verify-only service has no usable key set: the issuer's could not be fetched,
    /// or the cached one is past its maximum staleness.
    #[error("key set unavailable: {detail}")]
    KeySetUnavailable {
        /// Why (no secret, no URL credentials).
        detail: String,
        /// When a fetch may be tried again, if known.
        retry_after: Option<Duration>,
    },
    /// The service was built without the part a job needs.
    #[error("the {job} job is not configured: this service has no {missing}")]
    NotConfigured {
        /// The job asked for.
        job: Job,
        /// What the builder was not given.
        missing: &'static str,
    },
    /// A database or revocation server could not be reached when opening it.
    #[error("cannot connect to {backend} at {address}: {reason}")]
    Connect {
        /// `PostgreSQL` or `Redis`.
        backend: &'static str,
        /// The server's `host:port` (never the URL: it may hold a password).
        address: String,
        /// Refused, timed out, login refused, …
        reason: String,
    },
}

impl Error {
    /// A short reason for logs and responses, naming no secret: `expired`, `revoked`,
    /// `wrong audience`, `invalid token`, …
    pub fn reason(&self) -> String {
        use token_jwt::Error as J;
        use token_paseto::Error as P;
        match self {
            Self::Core(e) | Self::Paseto(P::Core(e)) | Self::Jwt(J::Core(e)) => core_reason(e),
            Self::Paseto(P::WrongVersion { .. } | P::UnsupportedVersion(_)) => {
                "unsupported token version".into()
            }
            Self::Paseto(P::WrongPurpose { .. })
            | Self::Jwt(J::UnexpectedFormat { .. } | J::TokenTypeMismatch { .. })
            | Self::WrongTokenType { .. } => "wrong token type".into(),
            Self::Paseto(P::Malformed(_))
            | Self::Jwt(J::MalformedToken(_) | J::MalformedHeader(_) | J::JsonSerialization) => {
                "malformed token".into()
            }
            Self::Paseto(P::InvalidFooter(_) | P::FooterMismatch) => "invalid footer".into(),
            Self::Paseto(P::MissingKeyId) | Self::Jwt(J::MissingKeyId) => "unknown key".into(),
            Self::Jwt(J::AlgorithmNotAllowed { .. } | J::UnsecuredJwt) => {
                "algorithm not allowed for this key".into()
            }
            Self::Jwt(J::UnsupportedCritical(_)) => "unsupported critical header".into(),
            Self::Jwt(J::HeaderTooLarge { .. }) => "token too large".into(),
            Self::Opaque(e) => opaque_reason(e),
            Self::Revoked => "revoked".into(),
            Self::AlreadyUsed => "already used".into(),
            Self::SingleUseLimit => "rate limited".into(),
            Self::NotAllowed(_) => "token kind not allowed".into(),
            Self::JwtRetired => "JWT no longer accepted".into(),
            Self::LimitExceeded { .. }
            | Self::InvalidPolicy(_)
            | Self::KeyNotAllowed { .. }
            | Self::NotConfigured { .. } => "not allowed by the policy".into(),
            Self::SensitiveClaim(_) => "sensitive claim in a readable token".into(),
            Self::Backend(_) | Self::BlocklistFull => "revocation backend unavailable".into(),
            Self::Connect { .. } => "storage unavailable".into(),
            Self::KeySetUnavailable { .. } => "key set unavailable".into(),
            // A closed set of phrases: never a message that could quote input or a
            // database's text.
            _ => "invalid token".into(),
        }
    }
}

fn opaque_reason(e: &token_opaque::Error) -> String {
    use token_opaque::Error as O;
    match e {
        O::Malformed(_) => "malformed token".into(),
        O::BadChecksum => "checksum mismatch".into(),
        O::WrongKind { .. } => "wrong token type".into(),
        O::NotFound => "unknown token".into(),
        O::Expired => "expired".into(),
        O::Revoked => "revoked".into(),
        O::ReuseDetected => "reuse detected: session revoked".into(),
        O::MissingScope(_) => "insufficient scope".into(),
        O::RateLimited { .. } => "rate limited".into(),
        O::Database(_) | O::Migration(_) => "storage unavailable".into(),
        _ => "invalid token".into(),
    }
}

fn core_reason(e: &token_core::Error) -> String {
    match e {
        token_core::Error::Expired { .. } => "expired".into(),
        token_core::Error::NotYetValid { .. } => "not yet valid".into(),
        token_core::Error::IssuedInFuture { .. } => "issued in the future".into(),
        token_core::Error::WrongAudience => "wrong audience".into(),
        token_core::Error::WrongIssuer => "wrong issuer".into(),
        token_core::Error::WrongSubject => "wrong subject".into(),
        token_core::Error::UnknownKeyId => "unknown key".into(),
        token_core::Error::MissingClaim(_)
        | token_core::Error::MalformedClaim { .. }
        | token_core::Error::MalformedClaims(_)
        | token_core::Error::InvalidCustomClaims(_)
        | token_core::Error::LifetimeTooLong { .. }
        | token_core::Error::IssuedTooEarly { .. } => "invalid claims".into(),
        token_core::Error::UnrecognizedFormat(_) | token_core::Error::TokenTooLong { .. } => {
            "malformed token".into()
        }
        _ => "invalid token".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use token_core::{PasetoPurpose, PasetoVersion};

    #[test]
    fn reasons_are_short_and_typed() {
        let cases: Vec<(Error, &str)> = vec![
            (token_core::Error::InvalidToken.into(), "invalid token"),
            (
                token_paseto::Error::Core(token_core::Error::Expired {
                    exp: token_core::Timestamp::UNIX_EPOCH,
                })
                .into(),
                "expired",
            ),
            (
                token_paseto::Error::WrongPurpose {
                    expected: PasetoPurpose::Public,
                    found: PasetoPurpose::Local,
                }
                .into(),
                "wrong token type",
            ),
            (
                token_paseto::Error::UnsupportedVersion(PasetoVersion::V1).into(),
                "unsupported token version",
            ),
            (
                token_jwt::Error::UnsecuredJwt.into(),
                "algorithm not allowed for this key",
            ),
            (
                token_jwt::Error::UnsupportedCritical("b64".into()).into(),
                "unsupported critical header",
            ),
            (
                token_opaque::Error::ReuseDetected.into(),
                "reuse detected: session revoked",
            ),
            (token_opaque::Error::BadChecksum.into(), "checksum mismatch"),
            (Error::Revoked, "revoked"),
        ];
        for (e, want) in cases {
            assert_eq!(e.reason(), want, "{e:?}");
        }
    }
}
