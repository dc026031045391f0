//! The one error type of `token-core`.
//!
//! Three levels of detail, on purpose:
//! - **Parsing** errors say exactly what is malformed (a claim, a time stamp, a key id,
//!   the token's shape). They are found before any key is touched.
//! - **Authenticity** failures are one opaque [`Error::InvalidToken`]: a bad signature,
//!   a bad tag and a wrong key look the same, so the error is no oracle.
//! - **Claim** errors, found only *after* the token is authentic, are precise
//!   ([`Error::Expired`], [`Error::WrongAudience`], …).
//!
//! No variant carries key material or a raw token.

use std::time::Duration;

use crate::claims::RegisteredClaim;
use crate::time::Timestamp;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `token-core`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- parsing -------------------------------------------------------------------
    /// The claims are not a JSON object, or the JSON itself is malformed.
    #[error("malformed claims: {0}")]
    MalformedClaims(String),
    /// A registered claim is present but not of its required type; it is never treated
    /// as absent.
    #[error("malformed `{claim}` claim: {reason}")]
    MalformedClaim {
        /// The claim that failed to parse.
        claim: RegisteredClaim,
        /// What is wrong with it.
        reason: String,
    },
    /// A JSON object names the same member twice (at any depth). Parsers disagree on
    /// which value wins, so the text is refused whatever the values.
    #[error("JSON member `{0}` appears more than once")]
    DuplicateMember(String),
    /// A JSON text is not well-formed, or does not have the shape expected of it.
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// A bounded JSON text (a PASETO footer, a JOSE header) nests deeper than its bound.
    #[error("JSON nested deeper than {max} levels")]
    JsonTooDeep {
        /// The deepest nesting accepted (an object of scalars is 1).
        max: usize,
    },
    /// A bounded JSON text's top-level object has more members than its bound.
    #[error("JSON object with more than {max} members")]
    JsonTooWide {
        /// The most top-level members accepted.
        max: usize,
    },
    /// The application's own claims did not deserialize into its type.
    #[error("custom claims do not match the expected type: {0}")]
    InvalidCustomClaims(String),
    /// The application's claims use a name that belongs to a registered claim.
    #[error("custom claim `{0}` collides with a registered claim; set it through `Claims` instead")]
    ReservedClaimName(String),
    /// The custom claims did not serialize to a JSON object.
    #[error("custom claims must serialize to a JSON object (a struct or a map)")]
    CustomClaimsNotAnObject,
    /// An RFC 3339 date-time is malformed.
    #[error("invalid RFC 3339 date-time: {0}")]
    InvalidTimestamp(&'static str),
    /// A duration is not written as a whole number and one unit (`90s`, `15m`, `2h`,
    /// `7d`).
    #[error("malformed duration: {0}")]
    MalformedDuration(&'static str),
    /// A duration's number of seconds does not fit in 64 bits.
    #[error("duration too large")]
    DurationTooLarge,
    /// A validation's leeway is over [`MAX_LEEWAY`](crate::validation::MAX_LEEWAY): a
    /// leeway that large would keep expired tokens valid.
    #[error("leeway of {}s is too large: at most {}s", .leeway.as_secs(), .max.as_secs())]
    LeewayTooLarge {
        /// The leeway asked for.
        leeway: Duration,
        /// The largest accepted.
        max: Duration,
    },
    /// An instant falls outside 1970-01-01 … 9999-12-31 UTC.
    #[error("time stamp outside 1970-01-01T00:00:00Z ..= 9999-12-31T23:59:59Z")]
    TimestampOutOfRange,
    /// The string is not a token of any format this project knows.
    #[error("unrecognized token format: {0}")]
    UnrecognizedFormat(&'static str),
    /// The token is longer than any token this project accepts.
    #[error("token is {len} bytes, over the {max}-byte limit")]
    TokenTooLong {
        /// Length seen.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// A key identifier is empty, too long, or holds characters outside visible ASCII.
    #[error("invalid key id: {0}")]
    InvalidKeyId(&'static str),

    // ---- keys ----------------------------------------------------------------------
    /// The token names a key id the key ring does not hold.
    #[error("unknown key id")]
    UnknownKeyId,
    /// A key ring already holds a key with this id.
    #[error("key id `{0}` is already in the key ring")]
    DuplicateKeyId(String),
    /// The key ring has no current (issuing) key.
    #[error("the key ring has no current key to issue with")]
    NoCurrentKey,
    /// The current issuing key cannot be removed; rotate to a new key first.
    #[error("the current key cannot be removed; rotate to a new key first")]
    CannotRemoveCurrentKey,

    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator is unavailable")]
    RandomnessUnavailable,

    // ---- authenticity --------------------------------------------------------------
    /// The token is not authentic under the given key (signature, tag or key mismatch).
    #[error("invalid token")]
    InvalidToken,

    // ---- claims, after authentication ---------------------------------------------
    /// A claim the validation requires is absent.
    #[error("missing required claim `{0}`")]
    MissingClaim(RegisteredClaim),
    /// `exp` has passed (leeway included).
    #[error("token expired at {exp}")]
    Expired {
        /// The token's expiry.
        exp: Timestamp,
    },
    /// `nbf` is still in the future (leeway included).
    #[error("token not valid before {nbf}")]
    NotYetValid {
        /// The token's not-before time.
        nbf: Timestamp,
    },
    /// `iat` is in the future (leeway included).
    #[error("token issued in the future ({iat})")]
    IssuedInFuture {
        /// The token's issued-at time.
        iat: Timestamp,
    },
    /// The token was issued before the earliest instant the validation accepts.
    #[error("token issued at {iat}, before the accepted {not_before}")]
    IssuedTooEarly {
        /// The token's issued-at time.
        iat: Timestamp,
        /// The earliest accepted issue time.
        not_before: Timestamp,
    },
    /// `exp - iat` exceeds the validation's maximum lifetime.
    #[error("token lifetime {}s exceeds the maximum of {}s", .lifetime.as_secs(), .max.as_secs())]
    LifetimeTooLong {
        /// `exp - iat`.
        lifetime: Duration,
        /// The maximum accepted.
        max: Duration,
    },
    /// `iss` is not one of the expected issuers.
    #[error("wrong issuer")]
    WrongIssuer,
    /// No `aud` value is one of the expected audiences (or the token names an audience
    /// and the validation expects none).
    #[error("wrong audience")]
    WrongAudience,
    /// `sub` is not one of the expected subjects.
    #[error("wrong subject")]
    WrongSubject,
}

impl Error {
    /// Why, in the closed set of phrases every tessera crate shares.
    pub fn reason(&self) -> crate::Reason {
        use crate::Reason as R;
        match self {
            Self::Expired { .. } => R::Expired,
            Self::NotYetValid { .. } => R::NotYetValid,
            Self::IssuedInFuture { .. } => R::IssuedInFuture,
            Self::IssuedTooEarly { .. } => R::IssuedTooEarly,
            Self::LifetimeTooLong { .. } => R::LifetimeTooLong,
            Self::WrongAudience => R::WrongAudience,
            Self::WrongIssuer => R::WrongIssuer,
            Self::WrongSubject => R::WrongSubject,
            Self::UnknownKeyId => R::UnknownKey,
            Self::MissingClaim(_) => R::MissingClaim,
            Self::MalformedClaims(_)
            | Self::MalformedClaim { .. }
            | Self::DuplicateMember(_)
            | Self::MalformedJson(_)
            | Self::InvalidTimestamp(_)
            | Self::TimestampOutOfRange
            | Self::InvalidCustomClaims(_)
            | Self::ReservedClaimName(_)
            | Self::CustomClaimsNotAnObject
            | Self::JsonTooDeep { .. }
            | Self::JsonTooWide { .. } => R::InvalidClaims,
            // Settings, not tokens: a caller's mistake.
            Self::MalformedDuration(_) | Self::DurationTooLarge | Self::LeewayTooLarge { .. } => {
                R::PolicyViolation
            }
            Self::UnrecognizedFormat(_) | Self::InvalidKeyId(_) => R::MalformedToken,
            Self::TokenTooLong { .. } => R::TokenTooLarge,
            Self::RandomnessUnavailable
            | Self::NoCurrentKey
            | Self::DuplicateKeyId(_)
            | Self::CannotRemoveCurrentKey => R::Internal,
            Self::InvalidToken => R::InvalidToken,
        }
    }
}
