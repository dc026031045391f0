//! The [`crate::OpaqueStore`] methods: each one transaction on the writer, or one
//! read.

use crate::error::db;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension as _, params};
use token_core::{OpaqueKind, Timestamp};

use super::SqliteStore;
use super::rows::{
    all, api_key_from, family_from, hash_at, one, one_time_from, refresh_from, run, session_from,
};
use crate::error::{Error, Result};
use crate::hash::TokenHash;
use crate::store::logic::{self, Decision, RefreshTokenRow};
use crate::store::sql::ts;
use crate::store::sql::{kind_str, secs};
use crate::store::{
    ApiKeyRecord, NewRefreshToken, OneTimeRecord, PurgeReport, RefreshFamilyRecord, RotateOutcome,
    RotateRequest, SessionRecord, UserRevocation,
};
use crate::util::add_capped;

const INSERT_API_KEY: &str = concat!(
    "INSERT INTO opaque_api_keys (",
    api_key_cols!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
);

fn insert_api_key(conn: &Connection, key: &ApiKeyRecord) -> Result<()> {
    let scopes = serde_json::to_string(&key.scopes)
        .map_err(|_| Error::InvalidInput("scopes do not serialize"))
        .map_err(db)?;
    run(
        conn,
        INSERT_API_KEY,
        params![
            key.id,
            key.hash.digest().as_slice(),
            key.hash.pepper_str(),
            kind_str(key.kind).map_err(db)?,
            key.owner_id,
            key.name,
            scopes,
            key.created_at.unix_seconds(),
            secs(key.expires_at),
            secs(key.last_used_at),
            secs(key.revoked_at),
            key.replaced_by,
        ],
    )
    .map_err(db)?;
    Ok(())
}

/// Clears the sealed grace-window copies of a family's tokens (once it is revoked).
const CLEAR_SEALED_IN_FAMILY: &str = "UPDATE opaque_refresh_tokens SET successor_sealed = NULL \
     WHERE family_id = ?1 AND successor_sealed IS NOT NULL";

fn rotate_in_tx(conn: &Connection, request: &RotateRequest) -> Result<Result<RotateOutcome>> {
    let digest = request.presented.digest().as_slice();
    let now = request.now;
    // One read of the token row: the transaction already holds the write lock, so
    // nothing can change it before the family is read (PostgreSQL must lock the family
    // first and read the token after).
    let Some((token, family_id)) = one(
        conn,
        concat!(
            "SELECT ",
            refresh_cols!(),
            ", family_id FROM opaque_refresh_tokens WHERE token_hash = ?1 AND kind = 'refresh'"
        ),
        [digest],
        |r| {
            Ok((
                refresh_from(r).map_err(db)?,
                r.get::<_, String>(9).map_err(db)?,
            ))
        },
    )
    .map_err(db)?
    else {
        return Err(Error::NotFound);
    };
    let Some(family) = one(
        conn,
        concat!(
            "SELECT ",
            family_cols!(),
            " FROM opaque_refresh_families WHERE id = ?1"
        ),
        [&family_id],
        family_from,
    )
    .map_err(db)?
    else {
        return Err(Error::NotFound);
    };
    match logic::decide_rotation(&family, &token, request) {
        Decision::Fail(e) => Err(e),
        Decision::RevokeForReuse => {
            run(
                conn,
                "UPDATE opaque_refresh_families SET revoked_at = ?1, revoke_reason = 'reuse' \
                 WHERE id = ?2 AND revoked_at IS NULL",
                params![now.unix_seconds(), family.id],
            )
            .map_err(db)?;
            run(conn, CLEAR_SEALED_IN_FAMILY, [&family.id]).map_err(db)?;
            // Committed: the revocation stands, and the caller hears why.
            Ok(Err(Error::ReuseDetected))
        }
        Decision::Rotate => rotate_to_successor(conn, request, family, &token).map(Ok),
        Decision::Grace => {
            run(
                conn,
                "UPDATE opaque_refresh_tokens SET grace_reuses = grace_reuses + 1 WHERE id = ?1",
                [&token.id],
            )
            .map_err(db)?;
            let current = one(
                conn,
                "SELECT token_hash, pepper_id, generation FROM opaque_refresh_tokens WHERE id = ?1",
                [&family.current_token_id],
                |r| Ok((hash_at(r, 0).map_err(db)?, r.get::<_, i64>(2).map_err(db)?)),
            )
            .map_err(db)?;
            let Some((successor_hash, generation)) = current else {
                return Err(Error::Integrity("the family's current token is missing"));
            };
            Ok(Ok(RotateOutcome::Grace {
                successor_id: family.current_token_id.clone(),
                family,
                successor_hash,
                sealed_successor: token.successor_sealed.unwrap_or_default(),
                generation,
            }))
        }
    }
}

/// The rotation proper: marks `token` used and makes the requested successor the
/// family's current token.
fn rotate_to_successor(
    conn: &Connection,
    request: &RotateRequest,
    mut family: RefreshFamilyRecord,
    token: &RefreshTokenRow,
) -> Result<RotateOutcome> {
    let now = request.now;
    let successor = &request.successor;
    let marked = run(
        conn,
        "UPDATE opaque_refresh_tokens \
         SET used_at = ?1, successor_id = ?2, successor_sealed = ?3 \
         WHERE id = ?4 AND used_at IS NULL",
        params![
            now.unix_seconds(),
            successor.id,
            request.sealed_successor.as_slice(),
            token.id
        ],
    )
    .map_err(db)?;
    if marked != 1 {
        return Err(Error::Integrity("a locked token changed under the lock"));
    }
    let generation = token.generation.saturating_add(1);
    run(
        conn,
        "INSERT INTO opaque_refresh_tokens \
         (id, family_id, token_hash, pepper_id, kind, generation, parent_id, created_at) \
         VALUES (?1, ?2, ?3, ?4, 'refresh', ?5, ?6, ?7)",
        params![
            successor.id,
            family.id,
            successor.hash.digest().as_slice(),
            successor.hash.pepper_str(),
            generation,
            token.id,
            successor.created_at.unix_seconds()
        ],
    )
    .map_err(db)?;
    let idle = add_capped(now, request.idle_timeout, family.absolute_expires_at);
    run(
        conn,
        "UPDATE opaque_refresh_families \
         SET current_token_id = ?1, idle_expires_at = ?2, rotated_at = ?3 WHERE id = ?4",
        params![
            successor.id,
            idle.unix_seconds(),
            now.unix_seconds(),
            family.id
        ],
    )
    .map_err(db)?;
    // The grandparent's sealed copy of the presented token is no longer
    // needed: the presented token is now the previous one.
    if let Some(parent) = &token.parent_id {
        run(
            conn,
            "UPDATE opaque_refresh_tokens SET successor_sealed = NULL WHERE id = ?1",
            [parent],
        )
        .map_err(db)?;
    }
    family.current_token_id.clone_from(&successor.id);
    family.idle_expires_at = idle;
    family.rotated_at = Some(now);
    Ok(RotateOutcome::Rotated { family, generation })
}

#[async_trait::async_trait]
impl crate::store::OpaqueStore for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn key_table(&self) -> Option<&dyn crate::store::keys::KeyTable> {
        Some(self)
    }

    // ---- API keys ---------------------------------------------------------------

    async fn insert_api_key(&self, key: &ApiKeyRecord, max_live: u32) -> Result<()> {
        self.write(|conn| {
            let live: i64 = conn
                .prepare_cached(
                    "SELECT COUNT(*) FROM opaque_api_keys WHERE owner_id = ?1 \
                     AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?2)",
                )
                .map_err(db)?
                .query_row(params![key.owner_id, key.created_at.unix_seconds()], |r| {
                    r.get(0)
                })
                .map_err(db)?;
            if live >= i64::from(max_live) {
                return Err(Error::TooManyApiKeys { limit: max_live });
            }
            insert_api_key(conn, key)
        })
        .await
    }

    async fn find_api_key(
        &self,
        hash: &TokenHash,
        kind: OpaqueKind,
    ) -> Result<Option<ApiKeyRecord>> {
        let kind = kind_str(kind).map_err(db)?;
        self.read(|conn| {
            one(
                conn,
                concat!(
                    "SELECT ",
                    api_key_cols!(),
                    " FROM opaque_api_keys WHERE token_hash = ?1 AND kind = ?2"
                ),
                params![hash.digest().as_slice(), kind],
                api_key_from,
            )
        })
        .await
    }

    async fn get_api_key(&self, owner_id: &str, id: &str) -> Result<Option<ApiKeyRecord>> {
        self.read(|conn| {
            one(
                conn,
                concat!(
                    "SELECT ",
                    api_key_cols!(),
                    " FROM opaque_api_keys WHERE id = ?1 AND owner_id = ?2"
                ),
                [id, owner_id],
                api_key_from,
            )
        })
        .await
    }

    async fn list_api_keys(&self, owner_id: &str) -> Result<Vec<ApiKeyRecord>> {
        self.read(|conn| {
            all(
                conn,
                concat!(
                    "SELECT ",
                    api_key_cols!(),
                    " FROM opaque_api_keys WHERE owner_id = ?1 ORDER BY created_at, id"
                ),
                [owner_id],
                api_key_from,
            )
        })
        .await
    }

    async fn touch_api_key(
        &self,
        id: &str,
        now: Timestamp,
        used_before: Timestamp,
    ) -> Result<bool> {
        self.write(|conn| {
            run(
                conn,
                "UPDATE opaque_api_keys SET last_used_at = ?1 \
                 WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at <= ?3)",
                params![now.unix_seconds(), id, used_before.unix_seconds()],
            )
        })
        .await
        .map(|n| n == 1)
    }

    async fn rehash_api_key(&self, id: &str, old: &TokenHash, new: &TokenHash) -> Result<bool> {
        self.write(|conn| {
            run(
                conn,
                "UPDATE opaque_api_keys SET token_hash = ?1, pepper_id = ?2 \
                 WHERE id = ?3 AND token_hash = ?4",
                params![
                    new.digest().as_slice(),
                    new.pepper_str(),
                    id,
                    old.digest().as_slice()
                ],
            )
        })
        .await
        .map(|n| n == 1)
    }

    async fn revoke_api_key(&self, owner_id: &str, id: &str, now: Timestamp) -> Result<bool> {
        self.write(|conn| {
            run(
                conn,
                "UPDATE opaque_api_keys SET revoked_at = ?1 \
                 WHERE id = ?2 AND owner_id = ?3 AND revoked_at IS NULL",
                params![now.unix_seconds(), id, owner_id],
            )
        })
        .await
        .map(|n| n == 1)
    }

    async fn revoke_api_keys_of_owner(&self, owner_id: &str, now: Timestamp) -> Result<u64> {
        self.write(|conn| {
            run(
                conn,
                "UPDATE opaque_api_keys SET revoked_at = ?1 \
                 WHERE owner_id = ?2 AND revoked_at IS NULL",
                params![now.unix_seconds(), owner_id],
            )
        })
        .await
    }

    async fn roll_api_key(
        &self,
        old_id: &str,
        new: &ApiKeyRecord,
        overlap_until: Timestamp,
        now: Timestamp,
    ) -> Result<ApiKeyRecord> {
        self.write(|conn| {
            let Some(mut old) = one(
                conn,
                concat!(
                    "SELECT ",
                    api_key_cols!(),
                    " FROM opaque_api_keys WHERE id = ?1 AND owner_id = ?2"
                ),
                [old_id, new.owner_id.as_str()],
                api_key_from,
            )
            .map_err(db)?
            else {
                return Err(Error::NotFound);
            };
            if old.revoked_at.is_some() {
                return Err(Error::Revoked);
            }
            if old.expires_at.is_some_and(|e| e <= now) {
                return Err(Error::Expired);
            }
            if old.replaced_by.is_some() {
                return Err(Error::AlreadyRolled);
            }
            let until = old
                .expires_at
                .map_or(overlap_until, |e| e.min(overlap_until));
            run(
                conn,
                "UPDATE opaque_api_keys SET expires_at = ?1, replaced_by = ?2 WHERE id = ?3",
                params![until.unix_seconds(), new.id, old.id],
            )
            .map_err(db)?;
            let mut fresh = new.clone();
            fresh.last_used_at = None;
            fresh.revoked_at = None;
            fresh.replaced_by = None;
            insert_api_key(conn, &fresh).map_err(db)?;
            old.expires_at = Some(until);
            old.replaced_by = Some(new.id.clone());
            Ok(old)
        })
        .await
    }

    // ---- refresh tokens ---------------------------------------------------------

    async fn create_refresh_family(
        &self,
        family: &RefreshFamilyRecord,
        token: &NewRefreshToken,
    ) -> Result<()> {
        self.write(|conn| {
            run(
                conn,
                concat!(
                    "INSERT INTO opaque_refresh_families (",
                    family_cols!(),
                    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, NULL, NULL, ?7)"
                ),
                params![
                    family.id,
                    family.user_id,
                    family.created_at.unix_seconds(),
                    family.absolute_expires_at.unix_seconds(),
                    family.idle_expires_at.unix_seconds(),
                    token.id,
                    family.jkt
                ],
            )
            .map_err(db)?;
            run(
                conn,
                "INSERT INTO opaque_refresh_tokens \
                 (id, family_id, token_hash, pepper_id, kind, generation, parent_id, created_at) \
                 VALUES (?1, ?2, ?3, ?4, 'refresh', 0, NULL, ?5)",
                params![
                    token.id,
                    family.id,
                    token.hash.digest().as_slice(),
                    token.hash.pepper_str(),
                    token.created_at.unix_seconds()
                ],
            )
            .map_err(db)?;
            Ok(())
        })
        .await
    }

    async fn rotate_refresh(&self, request: &RotateRequest) -> Result<RotateOutcome> {
        self.write(|conn| rotate_in_tx(conn, request))
            .await
            .map_err(db)?
    }

    async fn find_refresh_family(&self, hash: &TokenHash) -> Result<Option<RefreshFamilyRecord>> {
        self.read(|conn| {
            one(
                conn,
                concat!(
                    "SELECT ",
                    family_cols!(),
                    " FROM opaque_refresh_families WHERE id = (SELECT family_id \
                     FROM opaque_refresh_tokens WHERE token_hash = ?1 AND kind = 'refresh')"
                ),
                [hash.digest().as_slice()],
                family_from,
            )
        })
        .await
    }

    async fn revoke_refresh_family(
        &self,
        user_id: &str,
        family_id: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<bool> {
        self.write(|conn| {
            let revoked = run(
                conn,
                "UPDATE opaque_refresh_families SET revoked_at = ?1, revoke_reason = ?2 \
                 WHERE id = ?3 AND user_id = ?4 AND revoked_at IS NULL",
                params![now.unix_seconds(), reason, family_id, user_id],
            )
            .map_err(db)?;
            // Only a family this call revoked: another user's family is left alone.
            if revoked == 1 {
                run(conn, CLEAR_SEALED_IN_FAMILY, [family_id]).map_err(db)?;
            }
            Ok(revoked == 1)
        })
        .await
    }

    async fn list_refresh_families(
        &self,
        user_id: &str,
        now: Timestamp,
    ) -> Result<Vec<RefreshFamilyRecord>> {
        self.read(|conn| {
            all(
                conn,
                concat!(
                    "SELECT ",
                    family_cols!(),
                    " FROM opaque_refresh_families WHERE user_id = ?1 AND revoked_at IS NULL \
                     AND idle_expires_at > ?2 AND absolute_expires_at > ?2 \
                     ORDER BY created_at, id"
                ),
                params![user_id, now.unix_seconds()],
                family_from,
            )
        })
        .await
    }

    // ---- one-time tokens --------------------------------------------------------

    async fn insert_one_time(&self, token: &OneTimeRecord, min_interval: Duration) -> Result<()> {
        let kind = kind_str(token.kind).map_err(db)?;
        let now = token.created_at;
        self.write(|conn| {
            if !min_interval.is_zero() {
                let threshold = now.saturating_sub(min_interval);
                // One statement: take the slot if the last issuance is old enough.
                let took = run(
                    conn,
                    "INSERT INTO opaque_issue_limits (user_id, kind, last_issued_at) \
                     VALUES (?1, ?2, ?3) \
                     ON CONFLICT (user_id, kind) DO UPDATE \
                     SET last_issued_at = excluded.last_issued_at \
                     WHERE opaque_issue_limits.last_issued_at <= ?4",
                    params![
                        token.user_id,
                        kind,
                        now.unix_seconds(),
                        threshold.unix_seconds()
                    ],
                )
                .map_err(db)?;
                if took == 0 {
                    let last: Option<i64> = conn
                        .prepare_cached(
                            "SELECT last_issued_at FROM opaque_issue_limits \
                             WHERE user_id = ?1 AND kind = ?2",
                        )
                        .map_err(db)?
                        .query_row([token.user_id.as_str(), kind], |r| r.get(0))
                        .optional()
                        .map_err(db)?;
                    let last = ts(last.unwrap_or_else(|| now.unix_seconds())).map_err(db)?;
                    let next = last.checked_add(min_interval).unwrap_or(Timestamp::MAX);
                    return Err(Error::RateLimited {
                        retry_after: next.duration_since(now).max(Duration::from_secs(1)),
                    });
                }
            }
            run(
                conn,
                concat!(
                    "INSERT INTO opaque_one_time_tokens (",
                    one_time_cols!(),
                    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                ),
                params![
                    token.id,
                    token.hash.digest().as_slice(),
                    token.hash.pepper_str(),
                    kind,
                    token.user_id,
                    token.data,
                    token.created_at.unix_seconds(),
                    token.expires_at.unix_seconds()
                ],
            )
            .map_err(db)?;
            Ok(())
        })
        .await
    }

    async fn redeem_one_time(
        &self,
        hash: &TokenHash,
        kind: OpaqueKind,
        now: Timestamp,
    ) -> Result<OneTimeRecord> {
        let kind = kind_str(kind).map_err(db)?;
        let digest = hash.digest().as_slice();
        self.write(|conn| {
            let live = one(
                conn,
                concat!(
                    "DELETE FROM opaque_one_time_tokens \
                         WHERE token_hash = ?1 AND kind = ?2 AND expires_at > ?3 RETURNING ",
                    one_time_cols!()
                ),
                params![digest, kind, now.unix_seconds()],
                one_time_from,
            )
            .map_err(db)?;
            if let Some(record) = live {
                return Ok(Ok(record));
            }
            // An expired token is deleted too, and told apart from an unknown one.
            let expired = run(
                conn,
                "DELETE FROM opaque_one_time_tokens WHERE token_hash = ?1 AND kind = ?2",
                params![digest, kind],
            )
            .map_err(db)?;
            Ok(Err(if expired > 0 {
                Error::Expired
            } else {
                Error::NotFound
            }))
        })
        .await
        .map_err(db)?
    }

    async fn delete_one_time_for_user(
        &self,
        user_id: &str,
        kind: Option<OpaqueKind>,
    ) -> Result<u64> {
        let kind = kind.map(kind_str).transpose().map_err(db)?;
        self.write(|conn| match kind {
            Some(kind) => run(
                conn,
                "DELETE FROM opaque_one_time_tokens WHERE user_id = ?1 AND kind = ?2",
                [user_id, kind],
            ),
            None => run(
                conn,
                "DELETE FROM opaque_one_time_tokens WHERE user_id = ?1",
                [user_id],
            ),
        })
        .await
    }

    // ---- sessions ---------------------------------------------------------------

    async fn insert_session(&self, session: &SessionRecord) -> Result<()> {
        self.write(|conn| {
            run(
                conn,
                concat!(
                    "INSERT INTO opaque_sessions (kind, ",
                    session_cols!(),
                    ") VALUES ('session', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                ),
                params![
                    session.id,
                    session.hash.digest().as_slice(),
                    session.hash.pepper_str(),
                    session.user_id,
                    session.data,
                    session.created_at.unix_seconds(),
                    session.last_seen_at.unix_seconds(),
                    session.idle_expires_at.unix_seconds(),
                    session.absolute_expires_at.unix_seconds()
                ],
            )
            .map_err(db)?;
            Ok(())
        })
        .await
    }

    async fn find_session(&self, hash: &TokenHash) -> Result<Option<SessionRecord>> {
        self.read(|conn| {
            one(
                conn,
                concat!(
                    "SELECT ",
                    session_cols!(),
                    " FROM opaque_sessions WHERE token_hash = ?1 AND kind = 'session'"
                ),
                [hash.digest().as_slice()],
                session_from,
            )
        })
        .await
    }

    async fn touch_session(
        &self,
        id: &str,
        now: Timestamp,
        idle_expires_at: Timestamp,
        seen_before: Timestamp,
    ) -> Result<bool> {
        self.write(|conn| {
            run(
                conn,
                "UPDATE opaque_sessions SET last_seen_at = ?1, idle_expires_at = ?2 \
                 WHERE id = ?3 AND last_seen_at <= ?4 \
                 AND idle_expires_at > ?1 AND absolute_expires_at > ?1",
                params![
                    now.unix_seconds(),
                    idle_expires_at.unix_seconds(),
                    id,
                    seen_before.unix_seconds()
                ],
            )
        })
        .await
        .map(|n| n == 1)
    }

    async fn set_session_data(&self, id: &str, data: &str) -> Result<bool> {
        self.write(|conn| {
            run(
                conn,
                "UPDATE opaque_sessions SET data = ?1 WHERE id = ?2",
                [data, id],
            )
        })
        .await
        .map(|n| n == 1)
    }

    async fn list_sessions(&self, user_id: &str, now: Timestamp) -> Result<Vec<SessionRecord>> {
        self.read(|conn| {
            all(
                conn,
                concat!(
                    "SELECT ",
                    session_cols!(),
                    " FROM opaque_sessions WHERE user_id = ?1 \
                     AND idle_expires_at > ?2 AND absolute_expires_at > ?2 \
                     ORDER BY created_at, id"
                ),
                params![user_id, now.unix_seconds()],
                session_from,
            )
        })
        .await
    }

    async fn delete_session(&self, user_id: &str, id: &str) -> Result<bool> {
        self.write(|conn| {
            run(
                conn,
                "DELETE FROM opaque_sessions WHERE id = ?1 AND user_id = ?2",
                [id, user_id],
            )
        })
        .await
        .map(|n| n == 1)
    }

    async fn delete_sessions_for_user(&self, user_id: &str, keep: Option<&str>) -> Result<u64> {
        // Session ids are never empty, so "" keeps nothing.
        self.write(|conn| {
            run(
                conn,
                "DELETE FROM opaque_sessions WHERE user_id = ?1 AND id <> ?2",
                [user_id, keep.unwrap_or("")],
            )
        })
        .await
    }

    // ---- housekeeping -----------------------------------------------------------

    async fn revoke_user(&self, user_id: &str, now: Timestamp) -> Result<UserRevocation> {
        self.write(|conn| {
            let refresh_families = run(
                conn,
                "UPDATE opaque_refresh_families SET revoked_at = ?1, revoke_reason = 'user' \
                 WHERE user_id = ?2 AND revoked_at IS NULL",
                params![now.unix_seconds(), user_id],
            )
            .map_err(db)?;
            run(
                conn,
                "UPDATE opaque_refresh_tokens SET successor_sealed = NULL \
                 WHERE successor_sealed IS NOT NULL AND family_id IN \
                 (SELECT id FROM opaque_refresh_families WHERE user_id = ?1)",
                [user_id],
            )
            .map_err(db)?;
            let sessions = run(
                conn,
                "DELETE FROM opaque_sessions WHERE user_id = ?1",
                [user_id],
            )
            .map_err(db)?;
            let one_time_tokens = run(
                conn,
                "DELETE FROM opaque_one_time_tokens WHERE user_id = ?1",
                [user_id],
            )
            .map_err(db)?;
            Ok(UserRevocation {
                refresh_families,
                sessions,
                one_time_tokens,
            })
        })
        .await
    }

    async fn purge_expired(
        &self,
        now: Timestamp,
        rate_limits_before: Timestamp,
    ) -> Result<PurgeReport> {
        let now = now.unix_seconds();
        Ok(PurgeReport {
            one_time_tokens: self
                .purge("opaque_one_time_tokens", "expires_at <= ?1", now)
                .await
                .map_err(db)?,
            sessions: self
                .purge(
                    "opaque_sessions",
                    "idle_expires_at <= ?1 OR absolute_expires_at <= ?1",
                    now,
                )
                .await
                .map_err(db)?,
            // Tokens go with their family (ON DELETE CASCADE), in the same statement.
            refresh_families: self
                .purge(
                    "opaque_refresh_families",
                    "idle_expires_at <= ?1 OR absolute_expires_at <= ?1",
                    now,
                )
                .await
                .map_err(db)?,
            api_keys: self
                .purge(
                    "opaque_api_keys",
                    "expires_at IS NOT NULL AND expires_at <= ?1",
                    now,
                )
                .await
                .map_err(db)?,
            rate_limits: self
                .purge(
                    "opaque_issue_limits",
                    "last_issued_at <= ?1",
                    rate_limits_before.unix_seconds(),
                )
                .await
                .map_err(db)?,
        })
    }
}

/// Rows deleted per purge transaction: a backlog is cleared in short transactions
/// that other writers interleave with, never in one that holds the lock throughout.
const PURGE_BATCH: u64 = 1000;

impl SqliteStore {
    /// Deletes the rows of `table` matching `condition` (with `?1` = `cutoff`), in
    /// transactions of at most [`PURGE_BATCH`] rows. `table` and `condition` are this
    /// module's constants, never input.
    async fn purge(
        &self,
        table: &'static str,
        condition: &'static str,
        cutoff: i64,
    ) -> Result<u64> {
        let sql = format!(
            "DELETE FROM {table} WHERE rowid IN \
             (SELECT rowid FROM {table} WHERE {condition} LIMIT {PURGE_BATCH})"
        );
        let mut total = 0;
        loop {
            let deleted = self
                .write(|conn| run(conn, &sql, [cutoff]))
                .await
                .map_err(db)?;
            total += deleted;
            if deleted < PURGE_BATCH {
                return Ok(total);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A backlog larger than one batch is purged whole, and counted once.
    #[tokio::test]
    async fn purge_clears_a_backlog_in_batches() {
        use crate::store::OpaqueStore as _;
        let store = SqliteStore::memory().await.unwrap();
        store
            .write(|conn| {
                conn.execute(
                    "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 2500) \
                     INSERT INTO opaque_issue_limits (user_id, kind, last_issued_at) \
                     SELECT 'u' || x, 'k', 10 FROM n",
                    [],
                ).map_err(db)?;
                Ok(())
            })
            .await
            .unwrap();
        let t = |s| Timestamp::from_unix_seconds(s).unwrap();
        let report = store.purge_expired(t(100), t(10)).await.unwrap();
        assert_eq!(report.rate_limits, 2500);
        let left: i64 = store
            .read(|conn| {
                conn.query_row("SELECT count(*) FROM opaque_issue_limits", [], |r| r.get(0))
                    .map_err(db)
            })
            .await
            .unwrap();
        assert_eq!(left, 0);
    }
}
