//! The in-process cache of verified API keys ([`crate::TokenServiceBuilder::cache_api_keys`]).
//!
//! Entries are found by a salted SHA-256 of the presented key (the salt is random per
//! process: nothing in memory is the key or its stored hash), live at most the cache's
//! time to live, and are used only while the revocation list records no change of the
//! key or of its owner's keys at or after the moment they were read from the database.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use token_core::Timestamp;
use token_opaque::ApiKeyInfo;

use crate::error::Result;

/// The most entries held; past it the cache starts over (a flood of distinct valid
/// keys costs database reads, never memory).
const CAPACITY: usize = 100_000;

struct Cached {
    info: ApiKeyInfo,
    /// When the database read that produced `info` began.
    loaded_at: Timestamp,
    stored: Instant,
}

pub(crate) struct ApiKeyCache {
    salt: [u8; 32],
    ttl: Duration,
    entries: Mutex<HashMap<[u8; 32], Cached>>,
}

impl std::fmt::Debug for ApiKeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyCache")
            .field("ttl", &self.ttl)
            .field("entries", &self.lock().len())
            .finish_non_exhaustive()
    }
}

impl ApiKeyCache {
    pub(crate) fn new(ttl: Duration) -> Result<Self> {
        let mut salt = [0u8; 32];
        getrandom::fill(&mut salt).map_err(|_| token_core::Error::RandomnessUnavailable)?;
        Ok(Self {
            salt,
            ttl,
            entries: Mutex::new(HashMap::new()),
        })
    }

    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Cached>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn key(&self, raw: &str) -> [u8; 32] {
        Sha256::new()
            .chain_update(self.salt)
            .chain_update(raw.as_bytes())
            .finalize()
            .into()
    }

    /// The cached key and when it was read, if younger than the time to live.
    pub(crate) fn get(&self, key: &[u8; 32]) -> Option<(ApiKeyInfo, Timestamp)> {
        let mut entries = self.lock();
        match entries.get(key) {
            Some(c) if c.stored.elapsed() < self.ttl => Some((c.info.clone(), c.loaded_at)),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    pub(crate) fn put(&self, key: [u8; 32], info: ApiKeyInfo, loaded_at: Timestamp) {
        let mut entries = self.lock();
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(
            key,
            Cached {
                info,
                loaded_at,
                stored: Instant::now(),
            },
        );
    }

    pub(crate) fn forget(&self, key: &[u8; 32]) {
        self.lock().remove(key);
    }

    /// Drops key `id` of `owner`, or every key of `owner`.
    pub(crate) fn forget_changed(&self, owner: &str, id: Option<&str>) {
        self.lock()
            .retain(|_, c| c.info.owner_id != owner || id.is_some_and(|id| c.info.id != id));
    }
}
