//! [`Reason`]: why a token was refused, in one closed set of fixed phrases that every
//! crate's error maps to (`reason()`), and that services send to clients and tools
//! print. A phrase never quotes input, a key or a database's text.

use std::fmt;

/// Why a token (or a request carrying one) was refused. Reached from every tessera
/// crate's error by its `reason()` method; [`Reason::as_str`] is the fixed phrase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// Authenticity failed (bad signature or tag, wrong key, wrong implicit
    /// assertion): deliberately one reason, no oracle.
    InvalidToken,
    /// The token is not well-formed.
    MalformedToken,
    /// Another kind of token than the one expected (an API key as an access token…).
    WrongTokenType,
    /// A token version this verifier does not take.
    UnsupportedVersion,
    /// A PASETO footer that is malformed or does not match.
    InvalidFooter,
    /// The key the token names is not trusted.
    UnknownKey,
    /// The token's algorithm is not the key's.
    AlgorithmNotAllowed,
    /// A critical JOSE header this verifier does not understand.
    UnsupportedCritical,
    /// The token or its header is over the size bound.
    TokenTooLarge,
    /// Past `exp`.
    Expired,
    /// Before `nbf`.
    NotYetValid,
    /// `iat` in the future.
    IssuedInFuture,
    /// `iat` older than allowed.
    IssuedTooEarly,
    /// `exp - iat` over the job's limit.
    LifetimeTooLong,
    /// Not for this audience.
    WrongAudience,
    /// Not from an accepted issuer.
    WrongIssuer,
    /// Not for this subject.
    WrongSubject,
    /// A required claim is absent.
    MissingClaim,
    /// Claims that are malformed or of the wrong shape.
    InvalidClaims,
    /// Revoked (by `jti`, session, subject cut-off, or in the store).
    Revoked,
    /// A single-use token was already used.
    AlreadyUsed,
    /// A rotated refresh token was presented again: its family is revoked.
    ReuseDetected,
    /// An opaque token whose checksum does not match (a typo).
    ChecksumMismatch,
    /// An opaque token the store does not know.
    UnknownToken,
    /// Too many attempts; retry later.
    RateLimited,
    /// The credential lacks a scope the operation needs.
    InsufficientScope,
    /// A token kind off the verifier's allow-list.
    NotAllowed,
    /// JWTs are no longer accepted (a migration's cut-off has passed).
    JwtRetired,
    /// The policy forbids it (a lifetime over the limit, a key not for the job, a job
    /// not configured).
    PolicyViolation,
    /// A readable token would carry a sensitive-looking claim.
    SensitiveClaim,
    /// The token store cannot be reached.
    StorageUnavailable,
    /// The revocation list cannot be read or written.
    RevocationUnavailable,
    /// No usable key set (fetch failed, or the cached one is too stale).
    KeySetUnavailable,
    /// No credential was presented.
    MissingCredentials,
    /// The request carrying the credential is malformed (two credentials, a header
    /// that is not one `Bearer` token).
    InvalidRequest,
    /// Too many costly operations are running; retry later.
    Busy,
    /// A failure of this side, not of the token (randomness, configuration).
    Internal,
    /// A DPoP proof (RFC 9449) failed one of its checks.
    InvalidDpopProof,
    /// The server requires a DPoP nonce and the proof carried none, or a stale one.
    UseDpopNonce,
    /// The token is bound to a key (DPoP) and came without a proof by that key.
    SenderConstrained,
}

impl Reason {
    /// Every reason, in declaration order.
    pub const ALL: [Reason; 40] = [
        Self::InvalidToken,
        Self::MalformedToken,
        Self::WrongTokenType,
        Self::UnsupportedVersion,
        Self::InvalidFooter,
        Self::UnknownKey,
        Self::AlgorithmNotAllowed,
        Self::UnsupportedCritical,
        Self::TokenTooLarge,
        Self::Expired,
        Self::NotYetValid,
        Self::IssuedInFuture,
        Self::IssuedTooEarly,
        Self::LifetimeTooLong,
        Self::WrongAudience,
        Self::WrongIssuer,
        Self::WrongSubject,
        Self::MissingClaim,
        Self::InvalidClaims,
        Self::Revoked,
        Self::AlreadyUsed,
        Self::ReuseDetected,
        Self::ChecksumMismatch,
        Self::UnknownToken,
        Self::RateLimited,
        Self::InsufficientScope,
        Self::NotAllowed,
        Self::JwtRetired,
        Self::PolicyViolation,
        Self::SensitiveClaim,
        Self::StorageUnavailable,
        Self::RevocationUnavailable,
        Self::KeySetUnavailable,
        Self::MissingCredentials,
        Self::InvalidRequest,
        Self::Busy,
        Self::Internal,
        Self::InvalidDpopProof,
        Self::UseDpopNonce,
        Self::SenderConstrained,
    ];

    /// The fixed phrase: lower case, no punctuation at the end, never input.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidToken => "invalid token",
            Self::MalformedToken => "malformed token",
            Self::WrongTokenType => "wrong token type",
            Self::UnsupportedVersion => "unsupported token version",
            Self::InvalidFooter => "invalid footer",
            Self::UnknownKey => "unknown key",
            Self::AlgorithmNotAllowed => "algorithm not allowed for this key",
            Self::UnsupportedCritical => "unsupported critical header",
            Self::TokenTooLarge => "token too large",
            Self::Expired => "expired",
            Self::NotYetValid => "not yet valid",
            Self::IssuedInFuture => "issued in the future",
            Self::IssuedTooEarly => "issued too early",
            Self::LifetimeTooLong => "lifetime too long",
            Self::WrongAudience => "wrong audience",
            Self::WrongIssuer => "wrong issuer",
            Self::WrongSubject => "wrong subject",
            Self::MissingClaim => "missing claim",
            Self::InvalidClaims => "invalid claims",
            Self::Revoked => "revoked",
            Self::AlreadyUsed => "already used",
            Self::ReuseDetected => "reuse detected: session revoked",
            Self::ChecksumMismatch => "checksum mismatch",
            Self::UnknownToken => "unknown token",
            Self::RateLimited => "rate limited",
            Self::InsufficientScope => "insufficient scope",
            Self::NotAllowed => "token kind not allowed",
            Self::JwtRetired => "JWT no longer accepted",
            Self::PolicyViolation => "not allowed by the policy",
            Self::SensitiveClaim => "sensitive claim in a readable token",
            Self::StorageUnavailable => "storage unavailable",
            Self::RevocationUnavailable => "revocation backend unavailable",
            Self::KeySetUnavailable => "key set unavailable",
            Self::MissingCredentials => "no credentials",
            Self::InvalidRequest => "invalid request",
            Self::Busy => "busy",
            Self::Internal => "internal error",
            Self::InvalidDpopProof => "invalid DPoP proof",
            Self::UseDpopNonce => "DPoP nonce required",
            Self::SenderConstrained => "bound to a key: a DPoP proof is required",
        }
    }

    /// Whether the reason is about this side (a backend down, an internal failure)
    /// rather than about the token: a server answers these with `5xx`.
    pub const fn is_unavailable(self) -> bool {
        matches!(
            self,
            Self::StorageUnavailable
                | Self::RevocationUnavailable
                | Self::KeySetUnavailable
                | Self::Busy
                | Self::Internal
        )
    }

    /// The reason whose phrase is `phrase`, if any.
    pub fn from_phrase(phrase: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == phrase)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for Reason {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Reason {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl From<Reason> for &'static str {
    fn from(r: Reason) -> Self {
        r.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_are_distinct_fixed_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            let p = r.as_str();
            assert!(seen.insert(p), "{p} twice");
            assert!(!p.is_empty() && !p.ends_with('.') && p.trim() == p, "{p:?}");
            assert_eq!(Reason::from_phrase(p), Some(r));
            assert_eq!(r.to_string(), p);
            assert_eq!(r, p);
        }
        assert_eq!(Reason::from_phrase("nope"), None);
    }
}
