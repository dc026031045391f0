//! The one error type of `tokenctl`, and its exit codes.
//!
//! | exit | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | the token was rejected, a check found a problem of severity error, or a key or password was wrong |
//! | 2 | usage or input error: a bad flag value, an unreadable file, a malformed key |
//!
//! Every failure is reported as one line on stderr. No message carries key material or
//! a raw token.

use std::fmt;

/// Why a command failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The token was rejected, or a key could not be recovered (wrong key, password or
    /// recipient). Exit 1, printed as `rejected: <reason>`.
    Rejected(String),
    /// A check found problems (lint findings of severity error, a key that is not what
    /// was expected). Exit 1, printed as `error: <message>`.
    Failed(String),
    /// Usage or input error. Exit 2, printed as `error: <message>`.
    Usage(String),
}

impl Failure {
    /// A rejection with `reason`.
    pub(crate) fn rejected(reason: impl Into<String>) -> Self {
        Self::Rejected(reason.into())
    }

    /// A usage or input error.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::Usage(message.into())
    }

    /// A failed check.
    pub(crate) fn failed(message: impl Into<String>) -> Self {
        Self::Failed(message.into())
    }

    /// The process exit code.
    pub(crate) const fn exit_code(&self) -> u8 {
        match self {
            Self::Rejected(_) | Self::Failed(_) => 1,
            Self::Usage(_) => 2,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line, whatever the message holds.
        let one_line = |s: &str| s.replace(['\n', '\r'], " ");
        match self {
            Self::Rejected(reason) => write!(f, "rejected: {}", one_line(reason)),
            Self::Failed(message) | Self::Usage(message) => {
                write!(f, "error: {}", one_line(message))
            }
        }
    }
}

/// `Result` with [`Failure`].
pub(crate) type Result<T, E = Failure> = std::result::Result<T, E>;

/// The short reason for a `token-core` error, as `verify` prints it.
pub(crate) fn core_reason(e: &token_core::Error) -> String {
    use token_core::Error as E;
    match e {
        E::Expired { .. } => "expired".into(),
        E::NotYetValid { .. } => "not yet valid".into(),
        E::IssuedInFuture { .. } => "issued in the future".into(),
        E::IssuedTooEarly { .. } => "issued too early".into(),
        E::LifetimeTooLong { .. } => "lifetime too long".into(),
        E::WrongAudience => "wrong audience".into(),
        E::WrongIssuer => "wrong issuer".into(),
        E::WrongSubject => "wrong subject".into(),
        E::InvalidToken => "invalid token".into(),
        E::UnknownKeyId => "unknown key id".into(),
        E::MissingClaim(claim) => format!("missing claim `{claim}`"),
        E::UnrecognizedFormat(why) => format!("malformed token: {why}"),
        E::TokenTooLong { len, max } => {
            format!("malformed token: {len} bytes, over the {max}-byte limit")
        }
        E::MalformedClaims(_)
        | E::DuplicateMember(_)
        | E::MalformedClaim { .. }
        | E::InvalidCustomClaims(_)
        | E::InvalidTimestamp(_)
        | E::TimestampOutOfRange => format!("malformed claims: {e}"),
        other => other.to_string(),
    }
}

/// The short reason for a `token-paseto` error.
pub(crate) fn paseto_reason(e: &token_paseto::Error) -> String {
    use token_paseto::Error as E;
    match e {
        E::Core(core) => core_reason(core),
        E::UnsupportedVersion(v) => format!("unsupported PASETO version {v:?}"),
        E::WrongVersion { expected, found } => {
            format!("wrong key type: the key is for {expected:?}, the token is {found:?}")
        }
        E::WrongPurpose { expected, found } => {
            format!("wrong key type: the key is for {expected:?} tokens, the token is {found:?}")
        }
        E::Malformed(why) => format!("malformed token: {why}"),
        E::InvalidFooter(why) => format!("invalid footer: {why}"),
        E::FooterMismatch => "footer mismatch".into(),
        E::MissingKeyId => "no key id".into(),
        E::KeyRecoveryFailed => "wrong key or password, or tampered data".into(),
        other => other.to_string(),
    }
}

/// The short reason for a `token-jwt` error.
pub(crate) fn jwt_reason(e: &token_jwt::Error) -> String {
    use token_jwt::Error as E;
    match e {
        E::Core(core) => core_reason(core),
        E::AlgorithmNotAllowed { .. } => "algorithm not allowed for this key".into(),
        E::UnsecuredJwt => "unsecured token (alg: none)".into(),
        E::EncryptionNotAllowed { found, .. } => {
            format!("encryption not allowed (enc {found}; only A256GCM)")
        }
        E::UnsupportedCritical(name) => format!("unsupported critical header `{name}`"),
        E::CompressionNotAllowed => "compressed JWE refused".into(),
        E::TokenTypeMismatch { .. } => format!("wrong token type: {e}"),
        E::ContentTypeMismatch { .. } => format!("wrong content type: {e}"),
        E::MissingKeyId => "no key id".into(),
        E::MalformedToken(_)
        | E::MalformedHeader(_)
        | E::HeaderTooLarge { .. }
        | E::HeaderTooDeep { .. }
        | E::JwsJweConfusion(_)
        | E::JsonSerialization
        | E::UnexpectedFormat { .. } => format!("malformed token: {e}"),
        other => other.to_string(),
    }
}
