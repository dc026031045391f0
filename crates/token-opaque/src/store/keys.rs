//! The key table: the rows behind a key store that keeps every signing, encryption and
//! hashing key of a deployment in the database it already uses.
//!
//! This crate stores and returns the rows; it never sees a key. The rows hold only
//! wrapped material (the data key as a PASERK `k4.local-wrap.pie` under a
//! key-encryption key, the key sealed under that data key) and public keys; wrapping,
//! unwrapping and the meaning of the states belong to the key store that uses the
//! table (`token_policy::keystore`).
//!
//! The database enforces what several processes sharing the table rely on: a key id
//! is unique, and each job of a namespace has at most one key per generation, so two processes that
//! rotate at the same instant still add one key (the second insert finds the
//! generation taken and changes nothing).

use async_trait::async_trait;
use token_core::Timestamp;

use crate::error::Result;

/// One row of the key table.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyRecord {
    /// The key id (the PASERK id or JWK thumbprint of the key: derived from it).
    pub kid: String,
    /// The deployment the key belongs to (several may share a database).
    pub namespace: String,
    /// The job the key serves (`access`, `service`, `payment`, `api-key-pepper`).
    pub job: String,
    /// The kind of key (`v4.public`, `jwt-es256`, `v4.local`, `pepper`, …).
    pub kind: String,
    /// The key's place in its job's sequence, from 1.
    pub generation: i64,
    /// The id of the key-encryption key that wraps `wrapped_dek`.
    pub kek_id: String,
    /// The row's data key, wrapped under the key-encryption key.
    pub wrapped_dek: String,
    /// The key material, sealed under the data key.
    pub sealed: String,
    /// The public key, for asymmetric keys (not secret).
    pub public_key: Option<String>,
    /// When the row was written.
    pub created_at: Timestamp,
    /// When the key starts signing (or encrypting, or hashing); published before.
    pub activates_at: Timestamp,
    /// When the key stops verifying (set when its successor is added).
    pub retires_at: Option<Timestamp>,
    /// When the key was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
}

impl KeyRecord {
    /// A row that is neither retired nor revoked.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kid: String,
        namespace: String,
        job: String,
        kind: String,
        generation: i64,
        kek_id: String,
        wrapped_dek: String,
        sealed: String,
        public_key: Option<String>,
        created_at: Timestamp,
        activates_at: Timestamp,
    ) -> Self {
        Self {
            kid,
            namespace,
            job,
            kind,
            generation,
            kek_id,
            wrapped_dek,
            sealed,
            public_key,
            created_at,
            activates_at,
            retires_at: None,
            revoked_at: None,
        }
    }
}

impl std::fmt::Debug for KeyRecord {
    // The wrapped columns are not secret without the key-encryption key, but they are
    // long and say nothing to a reader: left out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRecord")
            .field("kid", &self.kid)
            .field("namespace", &self.namespace)
            .field("job", &self.job)
            .field("kind", &self.kind)
            .field("generation", &self.generation)
            .field("kek_id", &self.kek_id)
            .field("created_at", &self.created_at)
            .field("activates_at", &self.activates_at)
            .field("retires_at", &self.retires_at)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

/// When a key's predecessor stops verifying: set in the same transaction that adds or
/// activates its successor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retire<'a> {
    /// The predecessor's key id.
    pub kid: &'a str,
    /// Its new retirement time.
    pub at: Timestamp,
}

/// A data key wrapped anew under another key-encryption key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rewrapped {
    /// The key id.
    pub kid: String,
    /// The key-encryption key that wrapped it until now.
    pub old_kek_id: String,
    /// The key-encryption key that wraps it from now on.
    pub new_kek_id: String,
    /// The data key wrapped under the new key-encryption key.
    pub wrapped_dek: String,
}

/// The key table, implemented by `SqliteStore` and `PgStore` next to their
/// [`crate::OpaqueStore`] tables (reached through
/// [`crate::OpaqueStore::key_table`]).
#[async_trait]
pub trait KeyTable: Send + Sync {
    /// Every row of `namespace`, by job and generation.
    async fn key_records(&self, namespace: &str) -> Result<Vec<KeyRecord>>;

    /// Adds `key` unless its namespace's job already has a key of its generation (`false` then,
    /// and nothing changes), and in the same transaction sets the retirement time of
    /// `retire`'s key.
    async fn insert_key(&self, key: &KeyRecord, retire: Option<Retire<'_>>) -> Result<bool>;

    /// Moves the activation of the still-pending, unrevoked key `kid` forward to `at`
    /// (`false` if it is not pending at `at`), and sets `retire`'s retirement time in
    /// the same transaction.
    async fn activate_key(
        &self,
        kid: &str,
        at: Timestamp,
        retire: Option<Retire<'_>>,
    ) -> Result<bool>;

    /// Marks `kid` revoked at `at`; `false` if there is no such key or it already was.
    async fn revoke_key(&self, kid: &str, at: Timestamp) -> Result<bool>;

    /// Replaces the wrapped data keys, all in one transaction; each row changes only if
    /// it is still wrapped under its `old_kek_id`. The number of rows changed.
    async fn rewrap_keys(&self, rewrapped: &[Rewrapped]) -> Result<u64>;
}
