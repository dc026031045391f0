//! Refresh tokens in families, with rotation and reuse detection.
//!
//! Each login starts a *family*. [`RefreshTokens::rotate`] marks the presented token
//! used and stores its successor in one transaction, serialised per family by the
//! database. Presenting a used token again is a replay: the family is revoked and the
//! call fails with [`Error::ReuseDetected`], so whoever holds the successor (the
//! legitimate client or the thief) is logged out too.
//!
//! **Grace window** (opt-in, [`crate::GracePolicy`]): a client that lost the response
//! to a rotation (a flaky network) or that rotated from two tabs at once presents the
//! *previous* token again. Within the window, and at most `max_reuses` times, it gets
//! the family's current token back: the very successor minted by the first rotation,
//! not a new one, so the family never forks. To hand that token back without storing
//! it, the rotation stores the successor's random part sealed under a key derived from
//! the *presented* token (`HMAC-SHA256(presented token, label ‖ successor id)`), which
//! the database never holds: a copy of the database does not reveal it. The sealed
//! copy is cleared when the successor is rotated or the family revoked.

use std::fmt;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use token_core::Timestamp;
use zeroize::Zeroizing;

use crate::Inner;
use crate::error::{Error, Result};
use crate::format::{RANDOM_BYTES, TokenPurpose};
use crate::store::{NewRefreshToken, RefreshFamilyRecord, RotateOutcome, RotateRequest};
use crate::util::{add, add_capped, check_ident, new_id};

const GRACE_LABEL: &[u8] = b"tessera-opaque/refresh-grace/v1\0";

/// A new family's first token.
#[derive(Debug)]
#[non_exhaustive]
pub struct IssuedRefresh {
    /// The refresh token (shown once).
    pub token: SecretString,
    /// The family id (for listing and revoking).
    pub family_id: String,
    /// The family ends here unless rotated before.
    pub idle_expires_at: Timestamp,
    /// The family ends here however active.
    pub absolute_expires_at: Timestamp,
}

/// The result of a rotation.
#[derive(Debug)]
#[non_exhaustive]
pub struct RotatedRefresh {
    /// The token to use next time.
    pub token: SecretString,
    /// The family.
    pub family_id: String,
    /// The user who logged in.
    pub user_id: String,
    /// The token's generation in the family (the login token is 0).
    pub generation: i64,
    /// The family ends here unless rotated before.
    pub idle_expires_at: Timestamp,
    /// The family ends here however active.
    pub absolute_expires_at: Timestamp,
    /// Whether this answered a repeat of the previous token within the grace window
    /// (the token is the one the first rotation returned).
    pub from_grace: bool,
}

/// Refresh tokens. Get one from [`crate::OpaqueTokens::refresh`].
#[derive(Clone)]
pub struct RefreshTokens {
    inner: Arc<Inner>,
}

impl fmt::Debug for RefreshTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshTokens")
    }
}

/// The keystream that seals a successor under the presented token.
fn grace_keystream(presented: &str, successor_id: &str) -> Zeroizing<[u8; RANDOM_BYTES]> {
    let mut out = Zeroizing::new([0u8; RANDOM_BYTES]);
    if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(presented.as_bytes()) {
        mac.update(GRACE_LABEL);
        mac.update(successor_id.as_bytes());
        out.copy_from_slice(&mac.finalize().into_bytes());
    }
    out
}

fn xor(a: &[u8; RANDOM_BYTES], b: &[u8; RANDOM_BYTES]) -> Zeroizing<[u8; RANDOM_BYTES]> {
    let mut out = Zeroizing::new([0u8; RANDOM_BYTES]);
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        *o = x ^ y;
    }
    out
}

impl RefreshTokens {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Self { inner }
    }

    /// Starts a family for `user_id` (at login) and returns its first token.
    ///
    /// # Errors
    /// [`Error::InvalidInput`], [`Error::Database`].
    pub async fn issue(&self, user_id: &str) -> Result<IssuedRefresh> {
        self.issue_family(user_id, None).await
    }

    /// [`RefreshTokens::issue`], the family bound to the client key whose RFC 7638
    /// thumbprint is `jkt` (DPoP, RFC 9449): the family records it, and the caller must
    /// have every rotation proved by that key (see [`RefreshFamilyRecord::jkt`]).
    ///
    /// # Errors
    /// As [`RefreshTokens::issue`]; [`Error::InvalidInput`] for an empty or overlong
    /// thumbprint.
    pub async fn issue_bound(&self, user_id: &str, jkt: &str) -> Result<IssuedRefresh> {
        if jkt.is_empty() || jkt.len() > 128 {
            return Err(Error::InvalidInput("a key thumbprint is 1-128 bytes"));
        }
        self.issue_family(user_id, Some(jkt.to_owned())).await
    }

    async fn issue_family(&self, user_id: &str, jkt: Option<String>) -> Result<IssuedRefresh> {
        check_ident(
            user_id,
            "user id must be 1-256 bytes without control characters",
        )?;
        let policy = self.inner.config.refresh;
        let now = self.inner.now();
        let absolute = add(now, policy.absolute_lifetime)?;
        let idle = add_capped(now, policy.idle_timeout, absolute);
        let token = self
            .inner
            .config
            .prefixes
            .generate(token_core::OpaqueKind::Refresh)?;
        let first = NewRefreshToken::new(
            new_id()?,
            self.inner.hasher().hash(token.expose_secret()),
            now,
        );
        let family = RefreshFamilyRecord {
            id: new_id()?,
            user_id: user_id.to_owned(),
            created_at: now,
            absolute_expires_at: absolute,
            idle_expires_at: idle,
            current_token_id: first.id.clone(),
            rotated_at: None,
            revoked_at: None,
            revoke_reason: None,
            jkt,
        };
        self.inner
            .store
            .create_refresh_family(&family, &first)
            .await?;
        Ok(IssuedRefresh {
            token,
            family_id: family.id,
            idle_expires_at: idle,
            absolute_expires_at: absolute,
        })
    }

    /// Rotates `raw`: returns its successor, atomically marking `raw` used.
    ///
    /// # Errors
    /// [`Error::Malformed`], [`Error::BadChecksum`], [`Error::WrongKind`] (no query);
    /// [`Error::NotFound`]; [`Error::Revoked`] (the family was revoked);
    /// [`Error::Expired`] (absolute lifetime or idle timeout reached);
    /// [`Error::ReuseDetected`] (a replay: the family is now revoked);
    /// [`Error::Database`].
    pub async fn rotate(&self, raw: &str) -> Result<RotatedRefresh> {
        let parsed = self.inner.parse(raw, TokenPurpose::Refresh)?;
        let presented = parsed.as_str();
        let policy = self.inner.config.refresh;
        let now = self.inner.now();

        let mut random = Zeroizing::new([0u8; RANDOM_BYTES]);
        getrandom::fill(random.as_mut_slice()).map_err(|_| Error::RandomnessUnavailable)?;
        let successor = self
            .inner
            .config
            .prefixes
            .format(token_core::OpaqueKind::Refresh, &random)?;
        let successor_id = new_id()?;
        let sealed = xor(&random, &grace_keystream(presented, &successor_id));
        let new = NewRefreshToken::new(
            successor_id.clone(),
            self.inner.hasher().hash(successor.expose_secret()),
            now,
        );

        for candidate in self.inner.hasher().candidates(presented) {
            let request = RotateRequest::new(
                candidate,
                now,
                new.clone(),
                sealed.to_vec(),
                policy.idle_timeout,
                policy.grace,
            );
            match self.inner.store.rotate_refresh(&request).await {
                Err(Error::NotFound) => {}
                Err(e) => return Err(e),
                Ok(RotateOutcome::Rotated { family, generation }) => {
                    return Ok(RotatedRefresh {
                        token: successor,
                        family_id: family.id,
                        user_id: family.user_id,
                        generation,
                        idle_expires_at: family.idle_expires_at,
                        absolute_expires_at: family.absolute_expires_at,
                        from_grace: false,
                    });
                }
                Ok(RotateOutcome::Grace {
                    family,
                    successor_id,
                    successor_hash,
                    sealed_successor,
                    generation,
                }) => {
                    let sealed: [u8; RANDOM_BYTES] = sealed_successor
                        .as_slice()
                        .try_into()
                        .map_err(|_| Error::Integrity("sealed successor has the wrong length"))?;
                    let random = xor(&sealed, &grace_keystream(presented, &successor_id));
                    let token = self
                        .inner
                        .config
                        .prefixes
                        .format(token_core::OpaqueKind::Refresh, &random)?;
                    let matches = self
                        .inner
                        .hasher()
                        .candidates(token.expose_secret())
                        .iter()
                        .any(|h| h.ct_matches(&successor_hash));
                    if !matches {
                        return Err(Error::Integrity("sealed successor does not match its row"));
                    }
                    return Ok(RotatedRefresh {
                        token,
                        family_id: family.id,
                        user_id: family.user_id,
                        generation,
                        idle_expires_at: family.idle_expires_at,
                        absolute_expires_at: family.absolute_expires_at,
                        from_grace: true,
                    });
                }
            }
        }
        Err(Error::NotFound)
    }

    /// Logout: revokes the family of `raw` (used or not). Returns `false` if the family
    /// was already revoked.
    ///
    /// # Errors
    /// The parse errors, [`Error::NotFound`], [`Error::Database`].
    pub async fn revoke(&self, raw: &str) -> Result<bool> {
        let family = self.family_of(raw).await?;
        self.inner
            .store
            .revoke_refresh_family(&family.user_id, &family.id, "logout", self.inner.now())
            .await
    }

    /// The family `raw` belongs to (used or not, live or not), changing nothing: who
    /// logged in, and the family id to check or revoke before rotating.
    ///
    /// # Errors
    /// The parse errors, [`Error::NotFound`], [`Error::Database`].
    pub async fn family_of(&self, raw: &str) -> Result<RefreshFamilyRecord> {
        let parsed = self.inner.parse(raw, TokenPurpose::Refresh)?;
        for candidate in self.inner.hasher().candidates(parsed.as_str()) {
            if let Some(family) = self.inner.store.find_refresh_family(&candidate).await? {
                return Ok(family);
            }
        }
        Err(Error::NotFound)
    }

    /// Revokes family `family_id` of `user_id` ("log out that device"). Returns
    /// whether a live family was revoked.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn revoke_family(&self, user_id: &str, family_id: &str) -> Result<bool> {
        self.inner
            .store
            .revoke_refresh_family(user_id, family_id, "logout", self.inner.now())
            .await
    }

    /// The live families of `user_id` (one per logged-in device), oldest first.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn list(&self, user_id: &str) -> Result<Vec<RefreshFamilyRecord>> {
        self.inner
            .store
            .list_refresh_families(user_id, self.inner.now())
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealing_round_trips_and_binds_the_presented_token() {
        let random = [9u8; RANDOM_BYTES];
        let sealed = xor(&random, &grace_keystream("rt_presented", "succ"));
        assert_ne!(*sealed, random);
        assert_eq!(
            *xor(&sealed, &grace_keystream("rt_presented", "succ")),
            random
        );
        assert_ne!(*xor(&sealed, &grace_keystream("rt_other", "succ")), random);
        assert_ne!(
            *xor(&sealed, &grace_keystream("rt_presented", "other")),
            random
        );
    }
}
