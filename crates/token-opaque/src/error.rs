//! The one error type of `token-opaque`.
//!
//! Three grades, as in `token-core`:
//! - **Shape** errors ([`Error::Malformed`], [`Error::BadChecksum`], [`Error::WrongKind`])
//!   are found before any database query. They say what is wrong with the string; they
//!   cannot reveal anything about stored tokens, because none was looked at.
//! - **Lookup** errors: [`Error::NotFound`] for a well-formed token that matches no row.
//!   A token that matches a row that can no longer be used says why:
//!   [`Error::Expired`], [`Error::Revoked`], [`Error::ReuseDetected`]. Only the holder of
//!   a real (former) token can tell these apart, and knowing that a token they hold has
//!   expired or was revoked gives them nothing they can use; it helps honest clients
//!   (re-login instead of retry) and operators. Map them all to one `401` at the HTTP
//!   edge if the distinction should not reach the client.
//! - **Operational** errors: [`Error::RateLimited`], [`Error::Database`], … .
//!
//! No variant carries a raw token, a hash or a pepper.

use std::fmt;
use std::time::Duration;

use crate::format::TokenPurpose;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `token-opaque`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- shape, before any query ------------------------------------------------------
    /// The string is not shaped like an opaque token: too long, no known prefix, wrong
    /// length, or characters outside base62.
    #[error("malformed opaque token: {0}")]
    Malformed(&'static str),
    /// The token is well formed but its CRC32 checksum does not match (a typo, a
    /// truncated copy, or a made-up string).
    #[error("opaque token checksum mismatch")]
    BadChecksum,
    /// A valid token of another purpose (for example a password-reset token presented
    /// as an email-verification token, or a session id presented as an API key).
    #[error("wrong kind of token: expected {expected}, found {found}")]
    WrongKind {
        /// The purpose the operation accepts.
        expected: TokenPurpose,
        /// The purpose the token's prefix names.
        found: TokenPurpose,
    },

    // ---- lookup -------------------------------------------------------------------
    /// No stored token matches: never issued, already used (one-time tokens), purged,
    /// or its session was ended.
    #[error("token not found")]
    NotFound,
    /// The token matches a row whose lifetime is over (expiry, idle timeout, end of a
    /// roll overlap).
    #[error("token expired")]
    Expired,
    /// The token matches a row that was revoked (an API key, or a refresh family ended
    /// by logout, by `revoke_user` or after a replay).
    #[error("token revoked")]
    Revoked,
    /// A refresh token that was already rotated was presented again outside the grace
    /// window: its whole family has just been revoked.
    #[error("refresh token reuse detected; the token family has been revoked")]
    ReuseDetected,
    /// The API key is valid but lacks a scope the operation requires.
    #[error("API key lacks the required scope `{0}`")]
    MissingScope(String),
    /// The API key was already rolled; roll its replacement instead.
    #[error("API key was already rolled")]
    AlreadyRolled,

    // ---- operational --------------------------------------------------------------
    /// Too many one-time tokens were requested for this user; try again after
    /// `retry_after`.
    #[error("rate limited; retry after {}s", .retry_after.as_secs())]
    RateLimited {
        /// How long until the next issuance is allowed.
        retry_after: Duration,
    },
    /// The owner already holds the most live API keys the policy allows
    /// ([`crate::ApiKeyPolicy::max_live_per_owner`]); revoke one first.
    #[error("this owner already holds {limit} live API keys, the most allowed; revoke one first")]
    TooManyApiKeys {
        /// The limit in force.
        limit: u32,
    },
    /// An argument or configuration value is invalid (an empty user id, a prefix that is
    /// not allowed, a pepper that is too short, …).
    #[error("invalid input: {0}")]
    InvalidInput(&'static str),
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator is unavailable")]
    RandomnessUnavailable,
    /// A time computation left the range `token-core` represents (years 1970–9999), or
    /// a stored time stamp is out of that range.
    #[error("time stamp out of range")]
    TimeOutOfRange,
    /// Stored data is not what this library wrote (for example a sealed grace-window
    /// successor that does not match its row). Indicates tampering or corruption.
    #[error("stored token data failed an integrity check: {0}")]
    Integrity(&'static str),
    /// The database schema is not what this library expects.
    #[error("schema migration failed: {0}")]
    Migration(String),
    /// The database failed. The message holds the error class and, for errors the
    /// server reported, its SQLSTATE code and primary message (never the detail, which
    /// can quote row values).
    #[error("database error: {0}")]
    Database(DbError),
}

/// A database failure, described without row values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbError {
    kind: DbErrorKind,
    code: Option<String>,
    message: String,
}

/// The class of a [`DbError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DbErrorKind {
    /// A unique constraint was violated.
    UniqueViolation,
    /// Any other error the server reported.
    Server,
    /// No connection could be had from the pool in time.
    PoolTimedOut,
    /// The database stayed locked by another connection (SQLite: another process
    /// writing the same file) for longer than the store waits.
    Busy,
    /// The pool was closed.
    PoolClosed,
    /// I/O or TLS failure talking to the server.
    Io,
    /// A row did not decode into the expected types.
    Decode,
    /// Anything else.
    Other,
}

impl DbError {
    /// The class of the failure.
    pub fn kind(&self) -> DbErrorKind {
        self.kind
    }

    /// The SQLSTATE (PostgreSQL) or extended result code (SQLite), when the server
    /// reported one.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }
}

impl DbError {
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn new(kind: DbErrorKind, code: Option<String>, message: String) -> Self {
        Self {
            kind,
            code,
            message,
        }
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{} [{code}]", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Driver errors become this crate's through a crate-private conversion, so no driver
/// type (`sqlx::Error`, `rusqlite::Error`) is part of the public API: stores write
/// `.map_err(db)?`.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) trait FromDriver {
    fn into_error(self) -> Error;
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl FromDriver for Error {
    fn into_error(self) -> Error {
        self
    }
}

/// This crate's error for a driver's (or its own, unchanged).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn db(e: impl FromDriver) -> Error {
    e.into_error()
}

#[cfg(feature = "postgres")]
impl FromDriver for sqlx::Error {
    fn into_error(self) -> Error {
        let e = self;
        let (kind, code, message) = match &e {
            sqlx::Error::Database(db) => {
                let kind = if db.is_unique_violation() {
                    DbErrorKind::UniqueViolation
                } else {
                    DbErrorKind::Server
                };
                (
                    kind,
                    db.code().map(std::borrow::Cow::into_owned),
                    db.message().to_owned(),
                )
            }
            sqlx::Error::PoolTimedOut => (
                DbErrorKind::PoolTimedOut,
                None,
                "timed out waiting for a connection".to_owned(),
            ),
            sqlx::Error::PoolClosed => (DbErrorKind::PoolClosed, None, "pool closed".to_owned()),
            sqlx::Error::Io(io) => (DbErrorKind::Io, None, format!("I/O: {}", io.kind())),
            sqlx::Error::Tls(_) => (DbErrorKind::Io, None, "TLS failure".to_owned()),
            sqlx::Error::ColumnDecode { index, .. } => (
                DbErrorKind::Decode,
                None,
                format!("column {index} did not decode"),
            ),
            sqlx::Error::ColumnNotFound(name) => {
                (DbErrorKind::Decode, None, format!("no column {name}"))
            }
            sqlx::Error::RowNotFound => (DbErrorKind::Other, None, "row not found".to_owned()),
            sqlx::Error::Configuration(_) => (
                DbErrorKind::Other,
                None,
                "invalid connection configuration".to_owned(),
            ),
            _ => (DbErrorKind::Other, None, "database driver error".to_owned()),
        };
        Error::Database(DbError::new(kind, code, message))
    }
}

#[cfg(feature = "sqlite")]
impl FromDriver for rusqlite::Error {
    fn into_error(self) -> Error {
        use rusqlite::ErrorCode;
        /// `SQLITE_CONSTRAINT_UNIQUE` and `SQLITE_CONSTRAINT_PRIMARYKEY`.
        const UNIQUE: [std::ffi::c_int; 2] = [2067, 1555];
        let e = self;
        let (kind, code, message) = match &e {
            rusqlite::Error::SqliteFailure(failure, message) => {
                let kind = match failure.code {
                    // Another connection holds the lock: waiting can help. (Not
                    // SQLITE_LOCKED, a conflict within one connection, which it cannot.)
                    ErrorCode::DatabaseBusy => DbErrorKind::Busy,
                    ErrorCode::ConstraintViolation if UNIQUE.contains(&failure.extended_code) => {
                        DbErrorKind::UniqueViolation
                    }
                    ErrorCode::CannotOpen | ErrorCode::SystemIoFailure | ErrorCode::DiskFull => {
                        DbErrorKind::Io
                    }
                    _ => DbErrorKind::Server,
                };
                // SQLite's messages name constraints and columns, never row values.
                let message = message.clone().unwrap_or_else(|| failure.to_string());
                (kind, Some(failure.extended_code.to_string()), message)
            }
            rusqlite::Error::FromSqlConversionFailure(index, ..)
            | rusqlite::Error::InvalidColumnType(index, ..)
            | rusqlite::Error::IntegralValueOutOfRange(index, _) => (
                DbErrorKind::Decode,
                None,
                format!("column {index} did not decode"),
            ),
            rusqlite::Error::InvalidColumnIndex(index) => {
                (DbErrorKind::Decode, None, format!("no column {index}"))
            }
            rusqlite::Error::InvalidColumnName(name) => {
                (DbErrorKind::Decode, None, format!("no column {name}"))
            }
            rusqlite::Error::QueryReturnedNoRows => {
                (DbErrorKind::Other, None, "row not found".to_owned())
            }
            rusqlite::Error::InvalidPath(_) | rusqlite::Error::NulError(_) => (
                DbErrorKind::Other,
                None,
                "invalid database path or text".to_owned(),
            ),
            _ => (DbErrorKind::Other, None, "database driver error".to_owned()),
        };
        Error::Database(DbError::new(kind, code, message))
    }
}

impl From<token_core::Error> for Error {
    fn from(e: token_core::Error) -> Self {
        match e {
            token_core::Error::RandomnessUnavailable => Self::RandomnessUnavailable,
            token_core::Error::InvalidKeyId(reason) => Self::InvalidInput(reason),
            token_core::Error::TimestampOutOfRange => Self::TimeOutOfRange,
            _ => Self::InvalidInput("rejected by token-core"),
        }
    }
}

impl Error {
    /// Why, in the closed set of phrases every tessera crate shares.
    pub fn reason(&self) -> token_core::Reason {
        use token_core::Reason as R;
        match self {
            // A bad argument (an id, a name) reads, from a token's side, as malformed.
            Self::Malformed(_) | Self::InvalidInput(_) => R::MalformedToken,
            Self::BadChecksum => R::ChecksumMismatch,
            Self::WrongKind { .. } => R::WrongTokenType,
            Self::NotFound => R::UnknownToken,
            Self::Expired => R::Expired,
            Self::Revoked | Self::AlreadyRolled => R::Revoked,
            Self::ReuseDetected => R::ReuseDetected,
            Self::MissingScope(_) => R::InsufficientScope,
            Self::RateLimited { .. } => R::RateLimited,
            Self::TooManyApiKeys { .. } => R::PolicyViolation,
            Self::Database(_) | Self::Migration(_) => R::StorageUnavailable,
            Self::RandomnessUnavailable | Self::TimeOutOfRange | Self::Integrity(_) => R::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_no_values() {
        let e = Error::RateLimited {
            retry_after: Duration::from_secs(42),
        };
        assert_eq!(e.to_string(), "rate limited; retry after 42s");
        let e = Error::WrongKind {
            expected: TokenPurpose::PasswordReset,
            found: TokenPurpose::EmailVerification,
        };
        assert_eq!(
            e.to_string(),
            "wrong kind of token: expected password-reset token, found email-verification token"
        );
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn driver_errors_name_no_values() {
        let e: Error = db(sqlx::Error::PoolTimedOut);
        assert!(matches!(&e, Error::Database(d) if d.kind() == DbErrorKind::PoolTimedOut));
        let e: Error = db(sqlx::Error::Configuration(
            "postgres://u:hunter2@h/db".into(),
        ));
        assert!(!e.to_string().contains("hunter2"));
    }
}
