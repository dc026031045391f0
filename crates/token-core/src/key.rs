//! Key identifiers and key rings.

use std::borrow::Borrow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// The longest key id accepted, in bytes.
pub const MAX_KEY_ID_LEN: usize = 256;

/// A key identifier: 1 to 256 bytes of visible ASCII (`!` to `~`).
///
/// A key id is only ever a lookup key into the caller's own keys. It carries no other
/// meaning: never a path, a URL or a query.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(Box<str>);

impl KeyId {
    /// Checks and wraps `id`.
    ///
    /// # Errors
    /// [`Error::InvalidKeyId`] if `id` is empty, longer than [`MAX_KEY_ID_LEN`], or holds
    /// a character outside visible ASCII.
    pub fn new(id: impl Into<String>) -> Result<Self> {
        let id = id.into();
        Self::check(&id)?;
        Ok(Self(id.into_boxed_str()))
    }

    /// Checks `id` without allocating.
    ///
    /// # Errors
    /// As [`KeyId::new`].
    pub fn check(id: &str) -> Result<()> {
        if id.is_empty() {
            return Err(Error::InvalidKeyId("empty"));
        }
        if id.len() > MAX_KEY_ID_LEN {
            return Err(Error::InvalidKeyId("longer than 256 bytes"));
        }
        if !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::InvalidKeyId("characters outside visible ASCII"));
        }
        Ok(())
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({:?})", &*self.0)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Borrow<str> for KeyId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for KeyId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for KeyId {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::new(s)
    }
}

impl TryFrom<&str> for KeyId {
    type Error = Error;
    fn try_from(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

impl Serialize for KeyId {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for KeyId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new(s).map_err(serde::de::Error::custom)
    }
}

/// A key's role in a [`KeyRing`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyStatus {
    /// The key new tokens are issued with (at most one per ring).
    Current,
    /// A retired issuing key, kept so its tokens verify until they expire.
    VerifyOnly,
}

/// Several keys by id: at most one current issuing key, plus verify-only keys.
///
/// Rotation: [`KeyRing::rotate_to`] makes a new key current and keeps the old one as
/// verify-only; once every token it issued has expired, [`KeyRing::remove`] it.
/// Lookups by the id a token names fail fast with [`Error::UnknownKeyId`].
///
/// ```
/// use token_core::{KeyId, KeyRing, KeyStatus, Error};
///
/// let a = KeyId::new("key-a")?;
/// let b = KeyId::new("key-b")?;
/// let mut ring = KeyRing::new(a.clone(), "secret A");
/// ring.rotate_to(b.clone(), "secret B")?;
/// assert_eq!(ring.current()?.0, &b);
/// assert_eq!(ring.status("key-a"), Some(KeyStatus::VerifyOnly));
/// assert_eq!(ring.get("key-a")?, &"secret A");
/// ring.remove("key-a")?;
/// assert_eq!(ring.get("key-a"), Err(Error::UnknownKeyId));
/// # Ok::<(), Error>(())
/// ```
#[derive(Clone)]
pub struct KeyRing<K> {
    // Insertion order is kept (key sets are published in it); rings hold a handful of
    // keys, so a linear scan beats hashing.
    keys: Vec<(KeyId, K)>,
    current: Option<usize>,
}

impl<K> fmt::Debug for KeyRing<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(id, _, status)| (id, status)))
            .finish()
    }
}

impl<K> Default for KeyRing<K> {
    fn default() -> Self {
        Self::verify_only()
    }
}

impl<K> KeyRing<K> {
    /// A ring whose current key is `key`.
    pub fn new(id: KeyId, key: K) -> Self {
        Self {
            keys: vec![(id, key)],
            current: Some(0),
        }
    }

    /// An empty ring with no issuing key, for the verifying side.
    pub fn verify_only() -> Self {
        Self {
            keys: Vec::new(),
            current: None,
        }
    }

    fn position(&self, id: &str) -> Option<usize> {
        self.keys.iter().position(|(k, _)| k.as_str() == id)
    }

    fn insert(&mut self, id: KeyId, key: K) -> Result<usize> {
        if self.position(id.as_str()).is_some() {
            return Err(Error::DuplicateKeyId(id.to_string()));
        }
        self.keys.push((id, key));
        Ok(self.keys.len() - 1)
    }

    /// Adds `key` and makes it current; the previous current key becomes verify-only.
    ///
    /// # Errors
    /// [`Error::DuplicateKeyId`] if the ring already holds `id`.
    pub fn rotate_to(&mut self, id: KeyId, key: K) -> Result<()> {
        self.current = Some(self.insert(id, key)?);
        Ok(())
    }

    /// Adds a verify-only key.
    ///
    /// # Errors
    /// [`Error::DuplicateKeyId`] if the ring already holds `id`.
    pub fn insert_verify_only(&mut self, id: KeyId, key: K) -> Result<()> {
        self.insert(id, key).map(drop)
    }

    /// Makes the key `id`, already in the ring, current.
    ///
    /// # Errors
    /// [`Error::UnknownKeyId`] if the ring does not hold `id`.
    pub fn promote(&mut self, id: &str) -> Result<()> {
        self.current = Some(self.position(id).ok_or(Error::UnknownKeyId)?);
        Ok(())
    }

    /// Removes a verify-only key: tokens it issued stop verifying.
    ///
    /// # Errors
    /// [`Error::UnknownKeyId`] if absent; [`Error::CannotRemoveCurrentKey`] for the
    /// current key.
    pub fn remove(&mut self, id: &str) -> Result<K> {
        let pos = self.position(id).ok_or(Error::UnknownKeyId)?;
        if self.current == Some(pos) {
            return Err(Error::CannotRemoveCurrentKey);
        }
        let (_, key) = self.keys.remove(pos);
        if let Some(c) = self.current.as_mut() {
            if *c > pos {
                *c -= 1;
            }
        }
        Ok(key)
    }

    /// The current issuing key and its id.
    ///
    /// # Errors
    /// [`Error::NoCurrentKey`] for a verify-only ring.
    pub fn current(&self) -> Result<(&KeyId, &K)> {
        self.current
            .and_then(|i| self.keys.get(i))
            .map(|(id, k)| (id, k))
            .ok_or(Error::NoCurrentKey)
    }

    /// The key a token names by `id`.
    ///
    /// # Errors
    /// [`Error::UnknownKeyId`] if the ring does not hold `id`.
    pub fn get(&self, id: &str) -> Result<&K> {
        self.keys
            .iter()
            .find(|(k, _)| k.as_str() == id)
            .map(|(_, key)| key)
            .ok_or(Error::UnknownKeyId)
    }

    /// The status of key `id`, if present.
    pub fn status(&self, id: &str) -> Option<KeyStatus> {
        self.position(id).map(|i| self.status_at(i))
    }

    fn status_at(&self, i: usize) -> KeyStatus {
        if self.current == Some(i) {
            KeyStatus::Current
        } else {
            KeyStatus::VerifyOnly
        }
    }

    /// Every key with its id and status, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&KeyId, &K, KeyStatus)> {
        self.keys
            .iter()
            .enumerate()
            .map(|(i, (id, k))| (id, k, self.status_at(i)))
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the ring holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> KeyId {
        KeyId::new(s).unwrap()
    }

    #[test]
    fn key_ids_are_bounded_visible_ascii() {
        assert!(KeyId::new("k4.pid.abc-_=").is_ok());
        assert_eq!(KeyId::new(""), Err(Error::InvalidKeyId("empty")));
        assert!(KeyId::new("a b").is_err());
        assert!(KeyId::new("a\nb").is_err());
        assert!(KeyId::new("é").is_err());
        assert!(KeyId::new("a".repeat(MAX_KEY_ID_LEN)).is_ok());
        assert!(KeyId::new("a".repeat(MAX_KEY_ID_LEN + 1)).is_err());
        let parsed: std::result::Result<KeyId, _> = serde_json::from_str("\"../../etc\u{0}\"");
        assert!(parsed.is_err());
    }

    #[test]
    fn rotation_keeps_old_keys_verifying_until_removed() {
        let mut ring = KeyRing::new(id("a"), 1);
        ring.rotate_to(id("b"), 2).unwrap();
        ring.rotate_to(id("c"), 3).unwrap();
        assert_eq!(ring.current().unwrap(), (&id("c"), &3));
        assert_eq!(ring.get("a"), Ok(&1));
        assert_eq!(ring.status("b"), Some(KeyStatus::VerifyOnly));
        assert_eq!(ring.remove("c"), Err(Error::CannotRemoveCurrentKey));
        assert_eq!(ring.remove("a"), Ok(1));
        assert_eq!(ring.get("a"), Err(Error::UnknownKeyId));
        // The current index follows the removal.
        assert_eq!(ring.current().unwrap(), (&id("c"), &3));
        assert_eq!(
            ring.rotate_to(id("b"), 9),
            Err(Error::DuplicateKeyId("b".into()))
        );
        ring.promote("b").unwrap();
        assert_eq!(ring.current().unwrap().1, &2);
        assert_eq!(ring.promote("zz"), Err(Error::UnknownKeyId));
        let order: Vec<_> = ring.iter().map(|(id, _, s)| (id.as_str(), s)).collect();
        assert_eq!(
            order,
            [("b", KeyStatus::Current), ("c", KeyStatus::VerifyOnly)]
        );
    }

    #[test]
    fn verify_only_ring_has_no_current_key() {
        let mut ring: KeyRing<u8> = KeyRing::verify_only();
        assert_eq!(ring.current().err(), Some(Error::NoCurrentKey));
        ring.insert_verify_only(id("x"), 1).unwrap();
        assert_eq!(ring.current().err(), Some(Error::NoCurrentKey));
        assert_eq!(ring.remove("x"), Ok(1));
        assert!(ring.is_empty());
    }

    #[test]
    fn debug_shows_ids_not_keys() {
        let ring = KeyRing::new(id("kid-1"), "TOPSECRET");
        let dbg = format!("{ring:?}");
        assert!(dbg.contains("kid-1"));
        assert!(!dbg.contains("TOPSECRET"));
    }
}
