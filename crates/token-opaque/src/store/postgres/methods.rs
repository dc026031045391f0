//! The [`crate::OpaqueStore`] methods: single statements on the pool, or transactions
//! that lock what they read (`FOR UPDATE`).

use crate::error::db;
use sqlx::Row as _;
use token_core::{OpaqueKind, Timestamp};

use super::PgStore;
use super::rows::{
    api_key_from, family_from, hash_from, one_time_from, refresh_from, session_from,
};
use crate::error::{Error, Result};
use crate::hash::TokenHash;
use crate::store::logic::{self, Decision};
use crate::store::sql::ts;
use crate::store::sql::{kind_str, secs};
use crate::store::{
    ApiKeyRecord, NewRefreshToken, OneTimeRecord, PurgeReport, RefreshFamilyRecord, RotateOutcome,
    RotateRequest, SessionRecord, UserRevocation,
};
use crate::util::add_capped;

#[async_trait::async_trait]
impl crate::store::OpaqueStore for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn key_table(&self) -> Option<&dyn crate::store::keys::KeyTable> {
        Some(self)
    }

    // ---- API keys ---------------------------------------------------------

    async fn insert_api_key(&self, key: &ApiKeyRecord, max_live: u32) -> Result<()> {
        let scopes = serde_json::to_string(&key.scopes)
            .map_err(|_| Error::InvalidInput("scopes do not serialize"))
            .map_err(db)?;
        let mut tx = self.begin_write().await.map_err(db)?;
        // One owner's creations take turns until commit, so the count holds.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 7))")
            .bind(&key.owner_id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let live: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM opaque_api_keys WHERE owner_id = $1 \
             AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)",
        )
        .bind(&key.owner_id)
        .bind(key.created_at.unix_seconds())
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        if live >= i64::from(max_live) {
            return Err(Error::TooManyApiKeys { limit: max_live });
        }
        sqlx::query(concat!(
            "INSERT INTO opaque_api_keys (",
            api_key_cols!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(&key.id)
        .bind(key.hash.digest().as_slice())
        .bind(key.hash.pepper_str())
        .bind(kind_str(key.kind).map_err(db)?)
        .bind(&key.owner_id)
        .bind(&key.name)
        .bind(scopes)
        .bind(key.created_at.unix_seconds())
        .bind(secs(key.expires_at))
        .bind(secs(key.last_used_at))
        .bind(secs(key.revoked_at))
        .bind(&key.replaced_by)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn find_api_key(
        &self,
        hash: &TokenHash,
        kind: OpaqueKind,
    ) -> Result<Option<ApiKeyRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            api_key_cols!(),
            " FROM opaque_api_keys WHERE token_hash = $1 AND kind = $2"
        ))
        .bind(hash.digest().as_slice())
        .bind(kind_str(kind).map_err(db)?)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.as_ref().map(api_key_from).transpose()
    }

    async fn get_api_key(&self, owner_id: &str, id: &str) -> Result<Option<ApiKeyRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            api_key_cols!(),
            " FROM opaque_api_keys WHERE id = $1 AND owner_id = $2"
        ))
        .bind(id)
        .bind(owner_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.as_ref().map(api_key_from).transpose()
    }

    async fn list_api_keys(&self, owner_id: &str) -> Result<Vec<ApiKeyRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            api_key_cols!(),
            " FROM opaque_api_keys WHERE owner_id = $1 ORDER BY created_at, id"
        ))
        .bind(owner_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(api_key_from).collect()
    }

    async fn touch_api_key(
        &self,
        id: &str,
        now: Timestamp,
        used_before: Timestamp,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE opaque_api_keys SET last_used_at = $1 \
             WHERE id = $2 AND (last_used_at IS NULL OR last_used_at <= $3)",
        )
        .bind(now.unix_seconds())
        .bind(id)
        .bind(used_before.unix_seconds())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn rehash_api_key(&self, id: &str, old: &TokenHash, new: &TokenHash) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE opaque_api_keys SET token_hash = $1, pepper_id = $2 \
             WHERE id = $3 AND token_hash = $4",
        )
        .bind(new.digest().as_slice())
        .bind(new.pepper_str())
        .bind(id)
        .bind(old.digest().as_slice())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn revoke_api_key(&self, owner_id: &str, id: &str, now: Timestamp) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE opaque_api_keys SET revoked_at = $1 \
             WHERE id = $2 AND owner_id = $3 AND revoked_at IS NULL",
        )
        .bind(now.unix_seconds())
        .bind(id)
        .bind(owner_id)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn revoke_api_keys_of_owner(&self, owner_id: &str, now: Timestamp) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE opaque_api_keys SET revoked_at = $1 \
             WHERE owner_id = $2 AND revoked_at IS NULL",
        )
        .bind(now.unix_seconds())
        .bind(owner_id)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected())
    }

    async fn roll_api_key(
        &self,
        old_id: &str,
        new: &ApiKeyRecord,
        overlap_until: Timestamp,
        now: Timestamp,
    ) -> Result<ApiKeyRecord> {
        let mut tx = self.begin_write().await.map_err(db)?;
        let row = sqlx::query(concat!(
            "SELECT ",
            api_key_cols!(),
            " FROM opaque_api_keys WHERE id = $1 AND owner_id = $2 FOR UPDATE"
        ))
        .bind(old_id)
        .bind(&new.owner_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some(row) = row else {
            return Err(Error::NotFound);
        };
        let mut old = api_key_from(&row).map_err(db)?;
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
        sqlx::query("UPDATE opaque_api_keys SET expires_at = $1, replaced_by = $2 WHERE id = $3")
            .bind(until.unix_seconds())
            .bind(&new.id)
            .bind(&old.id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let scopes = serde_json::to_string(&new.scopes)
            .map_err(|_| Error::InvalidInput("scopes do not serialize"))
            .map_err(db)?;
        sqlx::query(concat!(
            "INSERT INTO opaque_api_keys (",
            api_key_cols!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, NULL, NULL)"
        ))
        .bind(&new.id)
        .bind(new.hash.digest().as_slice())
        .bind(new.hash.pepper_str())
        .bind(kind_str(new.kind).map_err(db)?)
        .bind(&new.owner_id)
        .bind(&new.name)
        .bind(scopes)
        .bind(new.created_at.unix_seconds())
        .bind(secs(new.expires_at))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        old.expires_at = Some(until);
        old.replaced_by = Some(new.id.clone());
        Ok(old)
    }

    // ---- refresh tokens ---------------------------------------------------

    async fn create_refresh_family(
        &self,
        family: &RefreshFamilyRecord,
        token: &NewRefreshToken,
    ) -> Result<()> {
        let mut tx = self.begin_write().await.map_err(db)?;
        sqlx::query(concat!(
            "INSERT INTO opaque_refresh_families (",
            family_cols!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL, NULL, $7)"
        ))
        .bind(&family.id)
        .bind(&family.user_id)
        .bind(family.created_at.unix_seconds())
        .bind(family.absolute_expires_at.unix_seconds())
        .bind(family.idle_expires_at.unix_seconds())
        .bind(&token.id)
        .bind(&family.jkt)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        sqlx::query(
            "INSERT INTO opaque_refresh_tokens \
             (id, family_id, token_hash, pepper_id, kind, generation, parent_id, created_at) \
             VALUES ($1, $2, $3, $4, 'refresh', 0, NULL, $5)",
        )
        .bind(&token.id)
        .bind(&family.id)
        .bind(token.hash.digest().as_slice())
        .bind(token.hash.pepper_str())
        .bind(token.created_at.unix_seconds())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    #[allow(clippy::too_many_lines)]
    async fn rotate_refresh(&self, request: &RotateRequest) -> Result<RotateOutcome> {
        let digest = request.presented.digest().as_slice();
        let now = request.now;
        let mut tx = self.begin_write().await.map_err(db)?;
        let family_id: Option<String> = sqlx::query_scalar(
            "SELECT family_id FROM opaque_refresh_tokens \
             WHERE token_hash = $1 AND kind = 'refresh'",
        )
        .bind(digest)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some(family_id) = family_id else {
            return Err(Error::NotFound);
        };
        // Lock the family first: every write to a family's tokens happens under
        // this lock, so the token row read next is current.
        let row = sqlx::query(concat!(
            "SELECT ",
            family_cols!(),
            " FROM opaque_refresh_families WHERE id = $1 FOR UPDATE"
        ))
        .bind(&family_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some(row) = row else {
            return Err(Error::NotFound);
        };
        let mut family = family_from(&row).map_err(db)?;
        let row = sqlx::query(concat!(
            "SELECT ",
            refresh_cols!(),
            " FROM opaque_refresh_tokens WHERE token_hash = $1 AND kind = 'refresh'"
        ))
        .bind(digest)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some(row) = row else {
            return Err(Error::NotFound);
        };
        let token = refresh_from(&row).map_err(db)?;
        match logic::decide_rotation(&family, &token, request) {
            Decision::Fail(e) => {
                tx.rollback().await.map_err(db)?;
                Err(e)
            }
            Decision::RevokeForReuse => {
                sqlx::query(
                    "UPDATE opaque_refresh_families \
                     SET revoked_at = $1, revoke_reason = 'reuse' \
                     WHERE id = $2 AND revoked_at IS NULL",
                )
                .bind(now.unix_seconds())
                .bind(&family.id)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
                sqlx::query(
                    "UPDATE opaque_refresh_tokens SET successor_sealed = NULL \
                     WHERE family_id = $1 AND successor_sealed IS NOT NULL",
                )
                .bind(&family.id)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
                tx.commit().await.map_err(db)?;
                Err(Error::ReuseDetected)
            }
            Decision::Rotate => {
                let successor = &request.successor;
                let marked = sqlx::query(
                    "UPDATE opaque_refresh_tokens \
                     SET used_at = $1, successor_id = $2, successor_sealed = $3 \
                     WHERE id = $4 AND used_at IS NULL",
                )
                .bind(now.unix_seconds())
                .bind(&successor.id)
                .bind(request.sealed_successor.as_slice())
                .bind(&token.id)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
                if marked.rows_affected() != 1 {
                    tx.rollback().await.map_err(db)?;
                    return Err(Error::Integrity("a locked token changed under the lock"));
                }
                let generation = token.generation.saturating_add(1);
                sqlx::query(
                    "INSERT INTO opaque_refresh_tokens \
                     (id, family_id, token_hash, pepper_id, kind, generation, parent_id, \
                      created_at) \
                     VALUES ($1, $2, $3, $4, 'refresh', $5, $6, $7)",
                )
                .bind(&successor.id)
                .bind(&family.id)
                .bind(successor.hash.digest().as_slice())
                .bind(successor.hash.pepper_str())
                .bind(generation)
                .bind(&token.id)
                .bind(successor.created_at.unix_seconds())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
                let idle = add_capped(now, request.idle_timeout, family.absolute_expires_at);
                sqlx::query(
                    "UPDATE opaque_refresh_families \
                     SET current_token_id = $1, idle_expires_at = $2, rotated_at = $3 \
                     WHERE id = $4",
                )
                .bind(&successor.id)
                .bind(idle.unix_seconds())
                .bind(now.unix_seconds())
                .bind(&family.id)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
                // The grandparent's sealed copy of the presented token is no
                // longer needed: the presented token is now the previous one.
                if let Some(parent) = &token.parent_id {
                    sqlx::query(
                        "UPDATE opaque_refresh_tokens SET successor_sealed = NULL \
                         WHERE id = $1",
                    )
                    .bind(parent)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                }
                tx.commit().await.map_err(db)?;
                family.current_token_id = successor.id.clone();
                family.idle_expires_at = idle;
                family.rotated_at = Some(now);
                Ok(RotateOutcome::Rotated { family, generation })
            }
            Decision::Grace => {
                sqlx::query(
                    "UPDATE opaque_refresh_tokens SET grace_reuses = grace_reuses + 1 \
                     WHERE id = $1",
                )
                .bind(&token.id)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
                let row = sqlx::query(
                    "SELECT token_hash, pepper_id, generation FROM opaque_refresh_tokens \
                     WHERE id = $1",
                )
                .bind(&family.current_token_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
                let Some(row) = row else {
                    return Err(Error::Integrity("the family's current token is missing"));
                };
                let successor_hash = hash_from(&row).map_err(db)?;
                let generation: i64 = row.try_get("generation").map_err(db)?;
                tx.commit().await.map_err(db)?;
                Ok(RotateOutcome::Grace {
                    successor_id: family.current_token_id.clone(),
                    family,
                    successor_hash,
                    sealed_successor: token.successor_sealed.unwrap_or_default(),
                    generation,
                })
            }
        }
    }

    async fn find_refresh_family(&self, hash: &TokenHash) -> Result<Option<RefreshFamilyRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            family_cols!(),
            " FROM opaque_refresh_families WHERE id = (SELECT family_id \
             FROM opaque_refresh_tokens WHERE token_hash = $1 AND kind = 'refresh')"
        ))
        .bind(hash.digest().as_slice())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.as_ref().map(family_from).transpose()
    }

    async fn revoke_refresh_family(
        &self,
        user_id: &str,
        family_id: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await.map_err(db)?;
        let done = sqlx::query(
            "UPDATE opaque_refresh_families SET revoked_at = $1, revoke_reason = $2 \
             WHERE id = $3 AND user_id = $4 AND revoked_at IS NULL",
        )
        .bind(now.unix_seconds())
        .bind(reason)
        .bind(family_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let revoked = done.rows_affected() == 1;
        // Only a family this call revoked: another user's family is left alone.
        if revoked {
            sqlx::query(
                "UPDATE opaque_refresh_tokens SET successor_sealed = NULL \
                 WHERE family_id = $1 AND successor_sealed IS NOT NULL",
            )
            .bind(family_id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(revoked)
    }

    async fn list_refresh_families(
        &self,
        user_id: &str,
        now: Timestamp,
    ) -> Result<Vec<RefreshFamilyRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            family_cols!(),
            " FROM opaque_refresh_families WHERE user_id = $1 AND revoked_at IS NULL \
             AND idle_expires_at > $2 AND absolute_expires_at > $2 \
             ORDER BY created_at, id"
        ))
        .bind(user_id)
        .bind(now.unix_seconds())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(family_from).collect()
    }

    // ---- one-time tokens --------------------------------------------------

    async fn insert_one_time(
        &self,
        token: &OneTimeRecord,
        min_interval: std::time::Duration,
    ) -> Result<()> {
        let kind = kind_str(token.kind).map_err(db)?;
        let now = token.created_at;
        let mut tx = self.begin_write().await.map_err(db)?;
        if !min_interval.is_zero() {
            let threshold = now.saturating_sub(min_interval);
            // One statement: take the slot if the last issuance is old enough.
            let took: Option<i64> = sqlx::query_scalar(
                "INSERT INTO opaque_issue_limits (user_id, kind, last_issued_at) \
                 VALUES ($1, $2, $3) \
                 ON CONFLICT (user_id, kind) DO UPDATE \
                 SET last_issued_at = excluded.last_issued_at \
                 WHERE opaque_issue_limits.last_issued_at <= $4 \
                 RETURNING last_issued_at",
            )
            .bind(&token.user_id)
            .bind(kind)
            .bind(now.unix_seconds())
            .bind(threshold.unix_seconds())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
            if took.is_none() {
                let last: Option<i64> = sqlx::query_scalar(
                    "SELECT last_issued_at FROM opaque_issue_limits \
                     WHERE user_id = $1 AND kind = $2",
                )
                .bind(&token.user_id)
                .bind(kind)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
                tx.rollback().await.map_err(db)?;
                let last = ts(last.unwrap_or_else(|| now.unix_seconds())).map_err(db)?;
                let next = last.checked_add(min_interval).unwrap_or(Timestamp::MAX);
                return Err(Error::RateLimited {
                    retry_after: next
                        .duration_since(now)
                        .max(std::time::Duration::from_secs(1)),
                });
            }
        }
        sqlx::query(concat!(
            "INSERT INTO opaque_one_time_tokens (",
            one_time_cols!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&token.id)
        .bind(token.hash.digest().as_slice())
        .bind(token.hash.pepper_str())
        .bind(kind)
        .bind(&token.user_id)
        .bind(&token.data)
        .bind(token.created_at.unix_seconds())
        .bind(token.expires_at.unix_seconds())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn redeem_one_time(
        &self,
        hash: &TokenHash,
        kind: OpaqueKind,
        now: Timestamp,
    ) -> Result<OneTimeRecord> {
        let kind = kind_str(kind).map_err(db)?;
        let row = sqlx::query(concat!(
            "DELETE FROM opaque_one_time_tokens \
             WHERE token_hash = $1 AND kind = $2 AND expires_at > $3 RETURNING ",
            one_time_cols!()
        ))
        .bind(hash.digest().as_slice())
        .bind(kind)
        .bind(now.unix_seconds())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        if let Some(row) = row {
            return one_time_from(&row);
        }
        let expired: Option<String> = sqlx::query_scalar(
            "DELETE FROM opaque_one_time_tokens WHERE token_hash = $1 AND kind = $2 \
             RETURNING id",
        )
        .bind(hash.digest().as_slice())
        .bind(kind)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        Err(if expired.is_some() {
            Error::Expired
        } else {
            Error::NotFound
        })
    }

    async fn delete_one_time_for_user(
        &self,
        user_id: &str,
        kind: Option<OpaqueKind>,
    ) -> Result<u64> {
        let done = match kind {
            Some(kind) => {
                sqlx::query("DELETE FROM opaque_one_time_tokens WHERE user_id = $1 AND kind = $2")
                    .bind(user_id)
                    .bind(kind_str(kind).map_err(db)?)
                    .execute(&self.pool)
                    .await
                    .map_err(db)?
            }
            None => sqlx::query("DELETE FROM opaque_one_time_tokens WHERE user_id = $1")
                .bind(user_id)
                .execute(&self.pool)
                .await
                .map_err(db)?,
        };
        Ok(done.rows_affected())
    }

    // ---- sessions ---------------------------------------------------------

    async fn insert_session(&self, session: &SessionRecord) -> Result<()> {
        sqlx::query(concat!(
            "INSERT INTO opaque_sessions (kind, ",
            session_cols!(),
            ") VALUES ('session', $1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&session.id)
        .bind(session.hash.digest().as_slice())
        .bind(session.hash.pepper_str())
        .bind(&session.user_id)
        .bind(&session.data)
        .bind(session.created_at.unix_seconds())
        .bind(session.last_seen_at.unix_seconds())
        .bind(session.idle_expires_at.unix_seconds())
        .bind(session.absolute_expires_at.unix_seconds())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn find_session(&self, hash: &TokenHash) -> Result<Option<SessionRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            session_cols!(),
            " FROM opaque_sessions WHERE token_hash = $1 AND kind = 'session'"
        ))
        .bind(hash.digest().as_slice())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.as_ref().map(session_from).transpose()
    }

    async fn touch_session(
        &self,
        id: &str,
        now: Timestamp,
        idle_expires_at: Timestamp,
        seen_before: Timestamp,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE opaque_sessions SET last_seen_at = $1, idle_expires_at = $2 \
             WHERE id = $3 AND last_seen_at <= $4 \
             AND idle_expires_at > $1 AND absolute_expires_at > $1",
        )
        .bind(now.unix_seconds())
        .bind(idle_expires_at.unix_seconds())
        .bind(id)
        .bind(seen_before.unix_seconds())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_session_data(&self, id: &str, data: &str) -> Result<bool> {
        let done = sqlx::query("UPDATE opaque_sessions SET data = $1 WHERE id = $2")
            .bind(data)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn list_sessions(&self, user_id: &str, now: Timestamp) -> Result<Vec<SessionRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            session_cols!(),
            " FROM opaque_sessions WHERE user_id = $1 \
             AND idle_expires_at > $2 AND absolute_expires_at > $2 \
             ORDER BY created_at, id"
        ))
        .bind(user_id)
        .bind(now.unix_seconds())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(session_from).collect()
    }

    async fn delete_session(&self, user_id: &str, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM opaque_sessions WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_sessions_for_user(&self, user_id: &str, keep: Option<&str>) -> Result<u64> {
        // Session ids are never empty, so "" keeps nothing.
        let done = sqlx::query("DELETE FROM opaque_sessions WHERE user_id = $1 AND id <> $2")
            .bind(user_id)
            .bind(keep.unwrap_or(""))
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(done.rows_affected())
    }

    // ---- housekeeping -----------------------------------------------------

    async fn revoke_user(&self, user_id: &str, now: Timestamp) -> Result<UserRevocation> {
        let mut tx = self.begin_write().await.map_err(db)?;
        let families = sqlx::query(
            "UPDATE opaque_refresh_families SET revoked_at = $1, revoke_reason = 'user' \
             WHERE user_id = $2 AND revoked_at IS NULL",
        )
        .bind(now.unix_seconds())
        .bind(user_id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        sqlx::query(
            "UPDATE opaque_refresh_tokens SET successor_sealed = NULL \
             WHERE successor_sealed IS NOT NULL AND family_id IN \
             (SELECT id FROM opaque_refresh_families WHERE user_id = $1)",
        )
        .bind(user_id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let sessions = sqlx::query("DELETE FROM opaque_sessions WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let one_time = sqlx::query("DELETE FROM opaque_one_time_tokens WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(UserRevocation {
            refresh_families: families.rows_affected(),
            sessions: sessions.rows_affected(),
            one_time_tokens: one_time.rows_affected(),
        })
    }

    async fn purge_expired(
        &self,
        now: Timestamp,
        rate_limits_before: Timestamp,
    ) -> Result<PurgeReport> {
        let now = now.unix_seconds();
        let pool = &self.pool;
        let one_time = sqlx::query("DELETE FROM opaque_one_time_tokens WHERE expires_at <= $1")
            .bind(now)
            .execute(pool)
            .await
            .map_err(db)?;
        let sessions = sqlx::query(
            "DELETE FROM opaque_sessions \
             WHERE idle_expires_at <= $1 OR absolute_expires_at <= $1",
        )
        .bind(now)
        .execute(pool)
        .await
        .map_err(db)?;
        // Tokens go with their family (ON DELETE CASCADE), in the same statement.
        let families = sqlx::query(
            "DELETE FROM opaque_refresh_families \
             WHERE idle_expires_at <= $1 OR absolute_expires_at <= $1",
        )
        .bind(now)
        .execute(pool)
        .await
        .map_err(db)?;
        let api_keys = sqlx::query(
            "DELETE FROM opaque_api_keys WHERE expires_at IS NOT NULL AND expires_at <= $1",
        )
        .bind(now)
        .execute(pool)
        .await
        .map_err(db)?;
        let limits = sqlx::query("DELETE FROM opaque_issue_limits WHERE last_issued_at <= $1")
            .bind(rate_limits_before.unix_seconds())
            .execute(pool)
            .await
            .map_err(db)?;
        Ok(PurgeReport {
            one_time_tokens: one_time.rows_affected(),
            sessions: sessions.rows_affected(),
            refresh_families: families.rows_affected(),
            api_keys: api_keys.rows_affected(),
            rate_limits: limits.rows_affected(),
        })
    }
}
