//! One-time tokens: email verification (`evt_`) and password reset (`prt_`).
//!
//! The expiry is held in the row; redemption deletes the row in the same statement
//! that finds it, so a token is redeemed at most once even when presented
//! concurrently. Issuance is limited per user and kind (default one per 5 minutes),
//! atomically in the database. [`OneTimeTokens::credentials_changed`] invalidates
//! everything a user has outstanding.

use std::fmt;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use token_core::{OpaqueKind, Timestamp};

use crate::Inner;
use crate::error::{Error, Result};
use crate::format::TokenPurpose;
use crate::store::OneTimeRecord;
use crate::util::{add, check_ident, new_id};

/// The longest data a one-time token may carry, in bytes.
pub const MAX_DATA_LEN: usize = 4096;

/// The kinds of one-time token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OneTimeKind {
    /// Email verification (`evt_`).
    EmailVerification,
    /// Password reset (`prt_`).
    PasswordReset,
}

impl OneTimeKind {
    /// The token kind.
    pub fn kind(self) -> OpaqueKind {
        match self {
            Self::EmailVerification => OpaqueKind::EmailVerification,
            Self::PasswordReset => OpaqueKind::PasswordReset,
        }
    }

    /// The purpose.
    pub fn purpose(self) -> TokenPurpose {
        match self {
            Self::EmailVerification => TokenPurpose::EmailVerification,
            Self::PasswordReset => TokenPurpose::PasswordReset,
        }
    }
}

/// A new one-time token.
#[derive(Debug)]
#[non_exhaustive]
pub struct IssuedOneTime {
    /// The token (send it, then forget it).
    pub token: SecretString,
    /// Its expiry.
    pub expires_at: Timestamp,
}

/// What a redeemed token was bound to.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedeemedOneTime {
    /// The user it was issued to.
    pub user_id: String,
    /// The data bound at issuance (for example the address being verified).
    pub data: Option<String>,
    /// Issue time.
    pub issued_at: Timestamp,
}

/// One-time tokens. Get one from [`crate::OpaqueTokens::one_time`].
#[derive(Clone)]
pub struct OneTimeTokens {
    inner: Arc<Inner>,
}

impl fmt::Debug for OneTimeTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OneTimeTokens")
    }
}

impl OneTimeTokens {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Self { inner }
    }

    /// Issues a token of `kind` to `user_id`, binding `data` to it.
    ///
    /// # Errors
    /// [`Error::RateLimited`] within the minimum interval since the user's last token
    /// of this kind; [`Error::InvalidInput`]; [`Error::Database`].
    pub async fn issue(
        &self,
        kind: OneTimeKind,
        user_id: &str,
        data: Option<&str>,
    ) -> Result<IssuedOneTime> {
        check_ident(
            user_id,
            "user id must be 1-256 bytes without control characters",
        )?;
        if data.is_some_and(|d| d.len() > MAX_DATA_LEN) {
            return Err(Error::InvalidInput("data is longer than 4096 bytes"));
        }
        let policy = self.inner.config.one_time;
        let ttl = match kind {
            OneTimeKind::EmailVerification => policy.email_verification_ttl,
            OneTimeKind::PasswordReset => policy.password_reset_ttl,
        };
        let now = self.inner.now();
        let expires_at = add(now, ttl)?;
        let token = self.inner.config.prefixes.generate(kind.kind())?;
        let record = OneTimeRecord::new(
            new_id()?,
            self.inner.hasher().hash(token.expose_secret()),
            kind.kind(),
            user_id.to_owned(),
            data.map(str::to_owned),
            now,
            expires_at,
        );
        self.inner
            .store
            .insert_one_time(&record, policy.min_issue_interval)
            .await?;
        Ok(IssuedOneTime { token, expires_at })
    }

    /// Redeems `raw` as a token of `kind`: succeeds at most once.
    ///
    /// # Errors
    /// [`Error::Malformed`], [`Error::BadChecksum`], [`Error::WrongKind`] (no query);
    /// [`Error::NotFound`] (unknown or already used); [`Error::Expired`];
    /// [`Error::Database`].
    pub async fn redeem(&self, kind: OneTimeKind, raw: &str) -> Result<RedeemedOneTime> {
        let parsed = self.inner.parse(raw, kind.purpose())?;
        let now = self.inner.now();
        for candidate in self.inner.hasher().candidates(parsed.as_str()) {
            match self
                .inner
                .store
                .redeem_one_time(&candidate, kind.kind(), now)
                .await
            {
                Err(Error::NotFound) => {}
                Err(e) => return Err(e),
                Ok(record) if record.hash.ct_matches(&candidate) => {
                    return Ok(RedeemedOneTime {
                        user_id: record.user_id,
                        data: record.data,
                        issued_at: record.created_at,
                    });
                }
                Ok(_) => return Err(Error::NotFound),
            }
        }
        Err(Error::NotFound)
    }

    /// Invalidates every outstanding one-time token of `user_id`: call it whenever
    /// the user's credentials (password, email address) change. Returns how many were
    /// deleted.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn credentials_changed(&self, user_id: &str) -> Result<u64> {
        self.inner
            .store
            .delete_one_time_for_user(user_id, None)
            .await
    }

    /// Invalidates the outstanding tokens of `kind` of `user_id`.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn invalidate(&self, kind: OneTimeKind, user_id: &str) -> Result<u64> {
        self.inner
            .store
            .delete_one_time_for_user(user_id, Some(kind.kind()))
            .await
    }
}
