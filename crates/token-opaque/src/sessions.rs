//! Server-side sessions: an opaque session id (`ses_…`) in a cookie, the data on the
//! server, a sliding idle expiry and an absolute expiry.

use std::fmt;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use token_core::{OpaqueKind, Timestamp};

use crate::Inner;
use crate::error::{Error, Result};
use crate::format::TokenPurpose;
use crate::store::SessionRecord;
use crate::util::{add, add_capped, check_ident, new_id};

/// The largest session data accepted, as JSON text, in bytes.
pub const MAX_DATA_LEN: usize = 64 * 1024;

/// A session as stored (without its id, which is not stored).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Session {
    /// Public handle, for listing and revoking; not a credential.
    pub handle: String,
    /// The user.
    pub user_id: String,
    /// Server-side data.
    pub data: serde_json::Value,
    /// Start time.
    pub created_at: Timestamp,
    /// Last use (to the touch resolution).
    pub last_seen_at: Timestamp,
    /// Ends here unless used before (sliding).
    pub idle_expires_at: Timestamp,
    /// Ends here however active.
    pub absolute_expires_at: Timestamp,
}

impl Session {
    fn from_record(r: SessionRecord) -> Result<Self> {
        Ok(Self {
            data: serde_json::from_str(&r.data)
                .map_err(|_| Error::Integrity("session data is not JSON"))?,
            handle: r.id,
            user_id: r.user_id,
            created_at: r.created_at,
            last_seen_at: r.last_seen_at,
            idle_expires_at: r.idle_expires_at,
            absolute_expires_at: r.absolute_expires_at,
        })
    }
}

/// A new session.
#[derive(Debug)]
#[non_exhaustive]
pub struct CreatedSession {
    /// The session id, for the cookie ([`crate::SessionCookie::set_cookie`]).
    pub session_id: SecretString,
    /// The session.
    pub session: Session,
}

/// Sessions. Get one from [`crate::OpaqueTokens::sessions`].
#[derive(Clone)]
pub struct Sessions {
    inner: Arc<Inner>,
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sessions")
    }
}

fn data_text(data: &serde_json::Value) -> Result<String> {
    let text =
        serde_json::to_string(data).map_err(|_| Error::InvalidInput("data does not serialize"))?;
    if text.len() > MAX_DATA_LEN {
        return Err(Error::InvalidInput("session data is over 64 KiB"));
    }
    Ok(text)
}

impl Sessions {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Self { inner }
    }

    /// Starts a session for `user_id` holding `data`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`], [`Error::Database`].
    pub async fn create(&self, user_id: &str, data: serde_json::Value) -> Result<CreatedSession> {
        check_ident(
            user_id,
            "user id must be 1-256 bytes without control characters",
        )?;
        let text = data_text(&data)?;
        let policy = self.inner.config.sessions;
        let now = self.inner.now();
        let absolute = add(now, policy.absolute_lifetime)?;
        let idle = add_capped(now, policy.idle_timeout, absolute);
        let session_id = self.inner.config.prefixes.generate(OpaqueKind::Session)?;
        let record = SessionRecord::new(
            new_id()?,
            self.inner.hasher().hash(session_id.expose_secret()),
            user_id.to_owned(),
            text,
            now,
            idle,
            absolute,
        );
        self.inner.store.insert_session(&record).await?;
        Ok(CreatedSession {
            session_id,
            session: Session::from_record(record)?,
        })
    }

    async fn find(&self, raw: &str) -> Result<SessionRecord> {
        let parsed = self.inner.parse(raw, TokenPurpose::Session)?;
        for candidate in self.inner.hasher().candidates(parsed.as_str()) {
            if let Some(record) = self.inner.store.find_session(&candidate).await? {
                if record.hash.ct_matches(&candidate) {
                    return Ok(record);
                }
            }
        }
        Err(Error::NotFound)
    }

    /// Loads the session `raw` names and slides its idle expiry (written at most once
    /// per [`crate::SessionPolicy::touch_resolution`]).
    ///
    /// # Errors
    /// The parse errors; [`Error::NotFound`] (unknown or revoked); [`Error::Expired`];
    /// [`Error::Database`].
    pub async fn load(&self, raw: &str) -> Result<Session> {
        let mut record = self.find(raw).await?;
        let now = self.inner.now();
        if now >= record.idle_expires_at || now >= record.absolute_expires_at {
            return Err(Error::Expired);
        }
        let policy = self.inner.config.sessions;
        let seen_before = now.saturating_sub(policy.touch_resolution);
        if record.last_seen_at <= seen_before {
            let idle = add_capped(now, policy.idle_timeout, record.absolute_expires_at);
            if self
                .inner
                .store
                .touch_session(&record.id, now, idle, seen_before)
                .await?
            {
                record.last_seen_at = now;
                record.idle_expires_at = idle;
            }
        }
        Session::from_record(record)
    }

    /// Replaces the data of the session `raw` names (which must be live).
    ///
    /// # Errors
    /// As [`Sessions::load`], and [`Error::InvalidInput`] for oversized data.
    pub async fn update(&self, raw: &str, data: serde_json::Value) -> Result<Session> {
        let text = data_text(&data)?;
        let mut session = self.load(raw).await?;
        if !self
            .inner
            .store
            .set_session_data(&session.handle, &text)
            .await?
        {
            return Err(Error::NotFound);
        }
        session.data = data;
        Ok(session)
    }

    /// Ends the session `raw` names (logout).
    ///
    /// # Errors
    /// The parse errors; [`Error::NotFound`]; [`Error::Database`].
    pub async fn end(&self, raw: &str) -> Result<()> {
        let record = self.find(raw).await?;
        self.inner
            .store
            .delete_session(&record.user_id, &record.id)
            .await?;
        Ok(())
    }

    /// The live sessions of `user_id`, oldest first.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn list(&self, user_id: &str) -> Result<Vec<Session>> {
        self.inner
            .store
            .list_sessions(user_id, self.inner.now())
            .await?
            .into_iter()
            .map(Session::from_record)
            .collect()
    }

    /// Ends session `handle` of `user_id`. Returns whether it existed.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn revoke(&self, user_id: &str, handle: &str) -> Result<bool> {
        self.inner.store.delete_session(user_id, handle).await
    }

    /// Ends every session of `user_id`, except `keep` (the current one, for "log out
    /// other devices"). Returns how many ended.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn revoke_all(&self, user_id: &str, keep: Option<&str>) -> Result<u64> {
        self.inner
            .store
            .delete_sessions_for_user(user_id, keep)
            .await
    }
}
