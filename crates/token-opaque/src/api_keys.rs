//! API keys: `sk_live_…` / `sk_test_…`, with a name, scopes, an optional expiry,
//! `last_used_at`, revocation and roll-with-overlap.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use token_core::{OpaqueKind, Timestamp};

use crate::Inner;
use crate::error::{Error, Result};
use crate::format::{Environment, TokenPurpose};
use crate::store::ApiKeyRecord;
use crate::util::{add, check_ident, new_id};

/// The longest scope accepted, in bytes.
pub const MAX_SCOPE_LEN: usize = 128;
/// The most scopes one key may carry.
pub const MAX_SCOPES: usize = 64;

/// What to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewApiKey {
    owner_id: String,
    name: String,
    environment: Environment,
    scopes: Vec<String>,
    expires_at: Option<Timestamp>,
}

impl NewApiKey {
    /// A key named `name` for account `owner_id`, in `environment`, without scopes or
    /// expiry.
    pub fn new(
        owner_id: impl Into<String>,
        name: impl Into<String>,
        environment: Environment,
    ) -> Self {
        Self {
            owner_id: owner_id.into(),
            name: name.into(),
            environment,
            scopes: Vec::new(),
            expires_at: None,
        }
    }

    /// Grants `scopes`.
    #[must_use]
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Makes the key expire at `at`.
    #[must_use]
    pub fn expires_at(mut self, at: Timestamp) -> Self {
        self.expires_at = Some(at);
        self
    }
}

/// A key's metadata: everything but the key itself (which is not stored).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiKeyInfo {
    /// Public id (for [`ApiKeys::revoke`], [`ApiKeys::roll`]).
    pub id: String,
    /// The account the key belongs to.
    pub owner_id: String,
    /// Its name.
    pub name: String,
    /// Live or test, from the prefix.
    pub environment: Environment,
    /// The scopes granted.
    pub scopes: Vec<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Expiry, if any.
    pub expires_at: Option<Timestamp>,
    /// Last successful verification (to the configured resolution).
    pub last_used_at: Option<Timestamp>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<Timestamp>,
    /// The id of the key this one was rolled into.
    pub replaced_by: Option<String>,
}

impl ApiKeyInfo {
    /// Whether the key grants `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Whether the key verifies at `now` (not revoked, not expired).
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }

    fn from_record(r: ApiKeyRecord) -> Result<Self> {
        Ok(Self {
            environment: Environment::of(r.kind)
                .ok_or(Error::Integrity("API key row of another kind"))?,
            id: r.id,
            owner_id: r.owner_id,
            name: r.name,
            scopes: r.scopes,
            created_at: r.created_at,
            expires_at: r.expires_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
            replaced_by: r.replaced_by,
        })
    }
}

/// A new key: shown once, never stored.
#[derive(Debug)]
#[non_exhaustive]
pub struct CreatedApiKey {
    /// The key. Hand it to the user now; only its hash is kept.
    pub key: SecretString,
    /// Its metadata.
    pub info: ApiKeyInfo,
}

/// The result of [`ApiKeys::roll`].
#[derive(Debug)]
#[non_exhaustive]
pub struct RolledApiKey {
    /// The replacement key (shown once).
    pub key: SecretString,
    /// The replacement's metadata.
    pub info: ApiKeyInfo,
    /// The old key's metadata: it keeps working until its `expires_at`.
    pub previous: ApiKeyInfo,
}

/// API keys. Get one from [`crate::OpaqueTokens::api_keys`].
#[derive(Clone)]
pub struct ApiKeys {
    inner: Arc<Inner>,
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKeys")
    }
}

fn check_scopes(scopes: &[String]) -> Result<()> {
    if scopes.len() > MAX_SCOPES {
        return Err(Error::InvalidInput("at most 64 scopes"));
    }
    let ok = |s: &String| {
        !s.is_empty() && s.len() <= MAX_SCOPE_LEN && s.bytes().all(|b| b.is_ascii_graphic())
    };
    if !scopes.iter().all(ok) {
        return Err(Error::InvalidInput(
            "a scope is 1-128 bytes of visible ASCII",
        ));
    }
    Ok(())
}

impl ApiKeys {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Self { inner }
    }

    /// Creates a key.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad owner id, name or scope, or an expiry that is
    /// not in the future; [`Error::TooManyApiKeys`] when the owner holds
    /// [`crate::ApiKeyPolicy::max_live_per_owner`] live keys; [`Error::Database`].
    pub async fn create(&self, new: NewApiKey) -> Result<CreatedApiKey> {
        check_ident(
            &new.owner_id,
            "owner id must be 1-256 bytes without control characters",
        )?;
        check_ident(
            &new.name,
            "name must be 1-256 bytes without control characters",
        )?;
        check_scopes(&new.scopes)?;
        let now = self.inner.now();
        if new.expires_at.is_some_and(|e| e <= now) {
            return Err(Error::InvalidInput("expiry must be in the future"));
        }
        let kind = new.environment.kind();
        let key = self.inner.config.prefixes.generate(kind)?;
        let record = ApiKeyRecord::new(
            new_id()?,
            self.inner.hasher().hash(key.expose_secret()),
            kind,
            new.owner_id,
            new.name,
            new.scopes,
            now,
            new.expires_at,
        );
        self.inner
            .store
            .insert_api_key(&record, self.inner.config.api_keys.max_live_per_owner)
            .await?;
        Ok(CreatedApiKey {
            key,
            info: ApiKeyInfo::from_record(record)?,
        })
    }

    /// Verifies a presented key: shape and checksum first (no query for garbage), then
    /// the lookup by hash, compared in constant time. Records `last_used_at` at most
    /// once per [`crate::ApiKeyPolicy::last_used_resolution`].
    ///
    /// # Errors
    /// [`Error::Malformed`], [`Error::BadChecksum`], [`Error::WrongKind`],
    /// [`Error::NotFound`], [`Error::Revoked`], [`Error::Expired`], [`Error::Database`].
    pub async fn verify(&self, raw: &str) -> Result<ApiKeyInfo> {
        let parsed = self.inner.parse(raw, TokenPurpose::ApiKey)?;
        let kind: OpaqueKind = parsed.kind();
        let mut found = None;
        for candidate in self.inner.hasher().candidates(parsed.as_str()) {
            if let Some(record) = self.inner.store.find_api_key(&candidate, kind).await? {
                if record.hash.ct_matches(&candidate) {
                    found = Some(record);
                    break;
                }
            }
        }
        let mut record = found.ok_or(Error::NotFound)?;
        let now = self.inner.now();
        if record.revoked_at.is_some() {
            return Err(Error::Revoked);
        }
        if record.expires_at.is_some_and(|e| e <= now) {
            return Err(Error::Expired);
        }
        if !self.inner.hasher().is_current(&record.hash) {
            // Found under a retired pepper: move it to the current one.
            let current = self.inner.hasher().hash(parsed.as_str());
            self.inner
                .store
                .rehash_api_key(&record.id, &record.hash, &current)
                .await?;
            record.hash = current;
        }
        let resolution = self.inner.config.api_keys.last_used_resolution;
        let used_before = now.saturating_sub(resolution);
        if record.last_used_at.is_none_or(|t| t <= used_before)
            && self
                .inner
                .store
                .touch_api_key(&record.id, now, used_before)
                .await?
        {
            record.last_used_at = Some(now);
        }
        ApiKeyInfo::from_record(record)
    }

    /// Verifies a key and checks that it grants `scope`.
    ///
    /// # Errors
    /// As [`ApiKeys::verify`], and [`Error::MissingScope`].
    pub async fn verify_scope(&self, raw: &str, scope: &str) -> Result<ApiKeyInfo> {
        let info = self.verify(raw).await?;
        if info.has_scope(scope) {
            Ok(info)
        } else {
            Err(Error::MissingScope(scope.to_owned()))
        }
    }

    /// The metadata of key `id` of `owner_id`.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Database`].
    pub async fn get(&self, owner_id: &str, id: &str) -> Result<ApiKeyInfo> {
        let record = self
            .inner
            .store
            .get_api_key(owner_id, id)
            .await?
            .ok_or(Error::NotFound)?;
        ApiKeyInfo::from_record(record)
    }

    /// The metadata of every key of `owner_id` (revoked and expired ones included until
    /// purged), oldest first. Never the keys themselves.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn list(&self, owner_id: &str) -> Result<Vec<ApiKeyInfo>> {
        self.inner
            .store
            .list_api_keys(owner_id)
            .await?
            .into_iter()
            .map(ApiKeyInfo::from_record)
            .collect()
    }

    /// Revokes key `id` of `owner_id`; the next verification fails with
    /// [`Error::Revoked`]. Returns `false` if the key was already revoked.
    ///
    /// # Errors
    /// [`Error::NotFound`] if `owner_id` has no key `id`; [`Error::Database`].
    pub async fn revoke(&self, owner_id: &str, id: &str) -> Result<bool> {
        let now = self.inner.now();
        if self.inner.store.revoke_api_key(owner_id, id, now).await? {
            return Ok(true);
        }
        self.inner
            .store
            .get_api_key(owner_id, id)
            .await?
            .map(|_| false)
            .ok_or(Error::NotFound)
    }

    /// Revokes every key of `owner_id` (a credential change, a compromised account),
    /// rolled keys in their overlap included. Returns how many were live.
    ///
    /// # Errors
    /// [`Error::InvalidInput`], [`Error::Database`].
    pub async fn revoke_all(&self, owner_id: &str) -> Result<u64> {
        crate::util::check_ident(
            owner_id,
            "owner id must be 1-256 bytes without control characters",
        )?;
        let now = self.inner.now();
        self.inner
            .store
            .revoke_api_keys_of_owner(owner_id, now)
            .await
    }

    /// Rolls key `id` of `owner_id`: issues a replacement with the same name, scopes,
    /// environment and expiry, while the old key keeps working for `overlap` (zero
    /// ends it now). Atomic: both happen or neither.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Revoked`], [`Error::Expired`],
    /// [`Error::AlreadyRolled`], [`Error::Database`].
    pub async fn roll(&self, owner_id: &str, id: &str, overlap: Duration) -> Result<RolledApiKey> {
        let old = self
            .inner
            .store
            .get_api_key(owner_id, id)
            .await?
            .ok_or(Error::NotFound)?;
        let now = self.inner.now();
        let key = self.inner.config.prefixes.generate(old.kind)?;
        let new = ApiKeyRecord::new(
            new_id()?,
            self.inner.hasher().hash(key.expose_secret()),
            old.kind,
            old.owner_id.clone(),
            old.name.clone(),
            old.scopes.clone(),
            now,
            old.expires_at,
        );
        let overlap_until = add(now, overlap)?;
        let previous = self
            .inner
            .store
            .roll_api_key(&old.id, &new, overlap_until, now)
            .await?;
        Ok(RolledApiKey {
            key,
            info: ApiKeyInfo::from_record(new)?,
            previous: ApiKeyInfo::from_record(previous)?,
        })
    }
}
