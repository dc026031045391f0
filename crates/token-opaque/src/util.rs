//! Small helpers: ids and time arithmetic.

use std::time::Duration;

use token_core::Timestamp;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// A new random row id: 128 bits in 22 base62 characters.
pub(crate) fn new_id() -> Result<String> {
    let mut bytes = Zeroizing::new([0u8; 16]);
    getrandom::fill(bytes.as_mut_slice()).map_err(|_| Error::RandomnessUnavailable)?;
    let mut wide = [0u8; 32];
    for (dst, src) in wide.iter_mut().skip(16).zip(bytes.iter()) {
        *dst = *src;
    }
    let s = crate::format::encode_random(&wide);
    // 62^22 > 2^128: the 21 leading digits of the 43 are zeros.
    Ok(s.get(21..).unwrap_or_default().to_owned())
}

/// `t + d`, or [`Error::TimeOutOfRange`].
pub(crate) fn add(t: Timestamp, d: Duration) -> Result<Timestamp> {
    t.checked_add(d).map_err(|_| Error::TimeOutOfRange)
}

/// `t + d`, capped at `cap`.
pub(crate) fn add_capped(t: Timestamp, d: Duration, cap: Timestamp) -> Timestamp {
    t.checked_add(d).map_or(cap, |v| v.min(cap))
}

/// Checks an application-supplied identifier (user id, owner id, name).
pub(crate) fn check_ident(s: &str, what: &'static str) -> Result<()> {
    if s.is_empty() || s.len() > 256 || s.chars().any(char::is_control) {
        return Err(Error::InvalidInput(what));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_22_base62_and_distinct() {
        let a = new_id().unwrap();
        let b = new_id().unwrap();
        assert_eq!(a.len(), 22);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn time_helpers() {
        let ts = |s| Timestamp::from_unix_seconds(s).unwrap();
        let t = ts(100);
        assert_eq!(add(t, Duration::from_secs(5)).unwrap(), ts(105));
        assert_eq!(add_capped(t, Duration::from_secs(50), ts(120)), ts(120));
        assert!(add(Timestamp::MAX, Duration::from_secs(1)).is_err());
        assert!(check_ident("", "x").is_err());
        assert!(check_ident("a\nb", "x").is_err());
        assert!(check_ident("user-1", "x").is_ok());
    }
}
