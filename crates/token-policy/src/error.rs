//! The one error type of `token-policy`.

use std::time::Duration;

use token_core::{Reason, TokenFormat};

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
    #[cfg(feature = "jwt")]
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
    /// A readable (signed, unencrypted) payload would carry sensitive-looking claims:
    /// every one of them, by path (`email`, `profile.userEmail`), in payload order.
    #[error(
        "{} and access tokens are readable; put {} in a payment (encrypted) token or server-side",
        sensitive_list(.0),
        if .0.len() == 1 { "it" } else { "them" }
    )]
    SensitiveClaim(Vec<String>),
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
    #[cfg(feature = "jwt")]
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
    /// This process's copy of the revocation state has not been confirmed in sync
    /// within its bound: verification fails closed until the feed answers again.
    #[error(
        "revocation state stale: no confirmed sync within {} ms; retry shortly",
        .bound.as_millis()
    )]
    RevocationStale {
        /// Time since the last confirmed sync (`None`: never synced).
        lag: Option<std::time::Duration>,
        /// The configured maximum staleness.
        bound: std::time::Duration,
    },
    /// The token (or refresh family) is bound to a client key and came without a valid
    /// proof by that key: a bound token presented as a bearer token, or a proof by
    /// another key.
    #[error("the token is bound to a key: a DPoP proof by that key is required")]
    SenderConstrained,
    /// A DPoP proof failed one of its checks (RFC 9449 section 4.3), or was replayed.
    #[cfg(feature = "jwt")]
    #[error(transparent)]
    Dpop(#[from] token_jwt::dpop::DpopError),
    /// The key-encryption key cannot be read (never quotes the key).
    #[error("key-encryption key: {0}")]
    KeyEncryptionKey(String),
    /// The key table is wrapped under another key-encryption key than the one given.
    #[error(
        "wrong key-encryption key: the key table is wrapped under {table}, the key given is {given}"
    )]
    WrongKeyEncryptionKey {
        /// The id (`k4.lid.…`) of the key the table names.
        table: String,
        /// The id of the key given.
        given: String,
    },
    /// A row of the key table is damaged or was altered: nothing of it was used.
    #[error("key table row {kid}: {problem}")]
    KeyTable {
        /// The row's key id.
        kid: String,
        /// What is wrong with it.
        problem: &'static str,
    },
}

/// `claim `a` looks sensitive` or `claims `a`, `b` look sensitive`.
fn sensitive_list(paths: &[String]) -> String {
    let quoted: Vec<String> = paths.iter().map(|p| format!("`{p}`")).collect();
    match quoted.as_slice() {
        [one] => format!("claim {one} looks sensitive"),
        many => format!("claims {} look sensitive", many.join(", ")),
    }
}

impl Error {
    /// Why, in the closed set of phrases every tessera crate shares
    /// ([`token_core::Reason`]): `expired`, `revoked`, `wrong audience`, `invalid
    /// token`, … never a message that could quote input or a database's text.
    pub fn reason(&self) -> Reason {
        match self {
            Self::Core(e) => e.reason(),
            Self::Paseto(e) => e.reason(),
            #[cfg(feature = "jwt")]
            Self::Jwt(e) => e.reason(),
            Self::Opaque(e) => e.reason(),
            Self::WrongTokenType { .. } => Reason::WrongTokenType,
            Self::Revoked => Reason::Revoked,
            Self::AlreadyUsed => Reason::AlreadyUsed,
            Self::SingleUseLimit => Reason::RateLimited,
            Self::NotAllowed(_) => Reason::NotAllowed,
            #[cfg(feature = "jwt")]
            Self::JwtRetired => Reason::JwtRetired,
            Self::LimitExceeded { .. }
            | Self::InvalidPolicy(_)
            | Self::KeyNotAllowed { .. }
            | Self::NotConfigured { .. } => Reason::PolicyViolation,
            Self::SensitiveClaim(_) => Reason::SensitiveClaim,
            Self::SenderConstrained => Reason::SenderConstrained,
            #[cfg(feature = "jwt")]
            Self::Dpop(e) => e.reason(),
            Self::Backend(_) | Self::BlocklistFull | Self::RevocationStale { .. } => {
                Reason::RevocationUnavailable
            }
            // An id this long was never issued by a sane issuer: the claims are wrong.
            Self::InvalidRevocationId => Reason::InvalidClaims,
            Self::Connect { .. } => Reason::StorageUnavailable,
            Self::KeySetUnavailable { .. } => Reason::KeySetUnavailable,
            Self::Config(_)
            | Self::KeyEncryptionKey(_)
            | Self::WrongKeyEncryptionKey { .. }
            | Self::KeyTable { .. } => Reason::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use token_core::{PasetoPurpose, PasetoVersion};

    #[test]
    fn reasons_are_short_and_typed() {
        #[cfg_attr(not(feature = "jwt"), allow(unused_mut))]
        let mut cases: Vec<(Error, &str)> = vec![
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
                token_opaque::Error::ReuseDetected.into(),
                "reuse detected: session revoked",
            ),
            (token_opaque::Error::BadChecksum.into(), "checksum mismatch"),
            (Error::Revoked, "revoked"),
        ];
        #[cfg(feature = "jwt")]
        cases.extend([
            (
                token_jwt::Error::UnsecuredJwt.into(),
                "algorithm not allowed for this key",
            ),
            (
                token_jwt::Error::UnsupportedCritical("b64".into()).into(),
                "unsupported critical header",
            ),
        ]);
        for (e, want) in cases {
            assert_eq!(e.reason(), want, "{e:?}");
        }
    }
}
