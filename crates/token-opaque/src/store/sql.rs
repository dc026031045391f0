//! What both SQL backends share: the column lists their statements name (macros, so
//! `concat!` can build whole statements at compile time) and the encoding of kinds and
//! times.

use token_core::{OpaqueKind, Timestamp};

use crate::error::{Error, Result};
use crate::format::kind_name;

macro_rules! api_key_cols {
    () => {
        "id, token_hash, pepper_id, kind, owner_id, name, scopes, created_at, expires_at, \
         last_used_at, revoked_at, replaced_by"
    };
}

macro_rules! family_cols {
    () => {
        "id, user_id, created_at, absolute_expires_at, idle_expires_at, current_token_id, \
         rotated_at, revoked_at, revoke_reason, jkt"
    };
}

macro_rules! refresh_cols {
    () => {
        "id, token_hash, pepper_id, generation, parent_id, used_at, successor_id, \
         successor_sealed, grace_reuses"
    };
}

macro_rules! one_time_cols {
    () => {
        "id, token_hash, pepper_id, kind, user_id, data, created_at, expires_at"
    };
}

macro_rules! session_cols {
    () => {
        "id, token_hash, pepper_id, user_id, data, created_at, last_seen_at, idle_expires_at, \
         absolute_expires_at"
    };
}

/// The stored name of `kind`.
pub(crate) fn kind_str(kind: OpaqueKind) -> Result<&'static str> {
    kind_name(kind).ok_or(Error::InvalidInput("unknown token kind"))
}

/// Seconds since the epoch, for an optional time column.
pub(crate) fn secs(t: Option<Timestamp>) -> Option<i64> {
    t.map(Timestamp::unix_seconds)
}

/// A stored time stamp.
pub(crate) fn ts(secs: i64) -> Result<Timestamp> {
    Timestamp::from_unix_seconds(secs).map_err(|_| Error::TimeOutOfRange)
}

/// A stored optional time stamp.
pub(crate) fn ts_opt(secs: Option<i64>) -> Result<Option<Timestamp>> {
    secs.map(ts).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_times_are_in_range() {
        assert_eq!(ts(100).unwrap().unix_seconds(), 100);
        assert!(ts(-1).is_err());
        assert_eq!(ts_opt(None).unwrap(), None);
        assert_eq!(secs(Some(ts(7).unwrap())), Some(7));
    }
}
