//! The decisions both backends share, as pure functions over rows read under lock.

use token_core::Timestamp;

use crate::error::Error;
use crate::hash::TokenHash;
use crate::store::{RefreshFamilyRecord, RotateRequest};

/// A refresh-token row.
#[derive(Clone, Debug)]
pub(crate) struct RefreshTokenRow {
    pub(crate) id: String,
    pub(crate) hash: TokenHash,
    pub(crate) generation: i64,
    pub(crate) parent_id: Option<String>,
    pub(crate) used_at: Option<Timestamp>,
    pub(crate) successor_id: Option<String>,
    pub(crate) successor_sealed: Option<Vec<u8>>,
    pub(crate) grace_reuses: i64,
}

/// What to do with a presented refresh token.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Unused current token: mark used, store the successor.
    Rotate,
    /// The previous token within the grace policy: hand back the current token.
    Grace,
    /// A replay: revoke the family (commit) and answer `ReuseDetected`.
    RevokeForReuse,
    /// Refuse without writing.
    Fail(Error),
}

/// Decides a rotation from the family (locked) and the presented token (read after the
/// lock).
pub(crate) fn decide_rotation(
    family: &RefreshFamilyRecord,
    token: &RefreshTokenRow,
    request: &RotateRequest,
) -> Decision {
    let now = request.now;
    // The row was found by digest; compare digest and pepper id in constant time.
    if !token.hash.ct_matches(&request.presented) {
        return Decision::Fail(Error::NotFound);
    }
    if family.revoked_at.is_some() {
        return Decision::Fail(Error::Revoked);
    }
    if now >= family.absolute_expires_at || now >= family.idle_expires_at {
        return Decision::Fail(Error::Expired);
    }
    match token.used_at {
        None if token.id == family.current_token_id => Decision::Rotate,
        // A family has exactly one unused token, its current one.
        None => Decision::Fail(Error::Integrity("unused token is not the family's current")),
        Some(used_at) => {
            let grace = request.grace;
            let forgiven = grace.is_enabled()
                && token.successor_id.as_deref() == Some(family.current_token_id.as_str())
                && token.successor_sealed.is_some()
                && now.duration_since(used_at) < grace.window
                && token.grace_reuses < i64::from(grace.max_reuses);
            if forgiven {
                Decision::Grace
            } else {
                Decision::RevokeForReuse
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::GracePolicy;
    use crate::hash::TokenHasher;
    use crate::store::NewRefreshToken;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_unix_seconds(s).unwrap()
    }

    fn family() -> RefreshFamilyRecord {
        RefreshFamilyRecord {
            id: "f".into(),
            user_id: "u".into(),
            created_at: t(0),
            absolute_expires_at: t(1000),
            idle_expires_at: t(500),
            current_token_id: "b".into(),
            rotated_at: Some(t(100)),
            revoked_at: None,
            revoke_reason: None,
            jkt: None,
        }
    }

    fn token(
        id: &str,
        used_at: Option<i64>,
        successor: Option<&str>,
        reuses: i64,
    ) -> RefreshTokenRow {
        RefreshTokenRow {
            id: id.into(),
            hash: TokenHasher::sha256().hash(id),
            generation: 0,
            parent_id: None,
            used_at: used_at.map(t),
            successor_id: successor.map(Into::into),
            successor_sealed: successor.map(|_| vec![0; 32]),
            grace_reuses: reuses,
        }
    }

    fn decide(
        f: &RefreshFamilyRecord,
        tok: &RefreshTokenRow,
        now: i64,
        grace: GracePolicy,
    ) -> Decision {
        let h = TokenHasher::sha256().hash("successor");
        let request = RotateRequest::new(
            tok.hash.clone(),
            t(now),
            NewRefreshToken::new("c".into(), h, t(now)),
            vec![0; 32],
            Duration::from_secs(400),
            grace,
        );
        decide_rotation(f, tok, &request)
    }

    #[test]
    fn strict_reuse_revokes() {
        let f = family();
        let strict = GracePolicy::disabled();
        assert_eq!(
            decide(&f, &token("b", None, None, 0), 101, strict),
            Decision::Rotate
        );
        assert_eq!(
            decide(&f, &token("a", Some(100), Some("b"), 0), 101, strict),
            Decision::RevokeForReuse
        );
    }

    #[test]
    fn grace_is_bounded() {
        let f = family();
        let g = GracePolicy::new(Duration::from_secs(10), 2);
        let prev = |reuses| token("a", Some(100), Some("b"), reuses);
        assert_eq!(decide(&f, &prev(0), 109, g), Decision::Grace);
        assert_eq!(decide(&f, &prev(1), 105, g), Decision::Grace);
        // Window over, reuse count spent, or an older token: replay.
        assert_eq!(decide(&f, &prev(0), 110, g), Decision::RevokeForReuse);
        assert_eq!(decide(&f, &prev(2), 101, g), Decision::RevokeForReuse);
        let older = token("z", Some(100), Some("a"), 0);
        assert_eq!(decide(&f, &older, 101, g), Decision::RevokeForReuse);
    }

    #[test]
    fn revoked_and_expired_families_refuse() {
        let mut f = family();
        let b = token("b", None, None, 0);
        let strict = GracePolicy::disabled();
        assert_eq!(decide(&f, &b, 500, strict), Decision::Fail(Error::Expired));
        f.idle_expires_at = t(2000);
        assert_eq!(decide(&f, &b, 1000, strict), Decision::Fail(Error::Expired));
        f.revoked_at = Some(t(1));
        assert_eq!(decide(&f, &b, 10, strict), Decision::Fail(Error::Revoked));
        let f = family();
        assert!(matches!(
            decide(&f, &token("q", None, None, 0), 10, strict),
            Decision::Fail(Error::Integrity(_))
        ));
    }
}
