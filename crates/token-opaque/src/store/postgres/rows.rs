//! Rows: decoding them into records, by column name.

use crate::error::db;
use sqlx::Row as _;
use sqlx::postgres::PgRow;
use token_core::OpaqueKind;

use crate::error::{Error, Result};
use crate::format::kind_from_name;
use crate::hash::TokenHash;
use crate::store::logic::RefreshTokenRow;
use crate::store::sql::{ts, ts_opt};
use crate::store::{ApiKeyRecord, OneTimeRecord, RefreshFamilyRecord, SessionRecord};

pub(super) fn hash_from(row: &PgRow) -> Result<TokenHash> {
    let digest: Vec<u8> = row.try_get("token_hash").map_err(db)?;
    let pepper: Option<String> = row.try_get("pepper_id").map_err(db)?;
    TokenHash::from_stored(&digest, pepper.as_deref())
}

pub(super) fn stored_kind(row: &PgRow) -> Result<OpaqueKind> {
    let kind: String = row.try_get("kind").map_err(db)?;
    kind_from_name(&kind).ok_or(Error::Integrity("unknown kind in a row"))
}

pub(super) fn api_key_from(row: &PgRow) -> Result<ApiKeyRecord> {
    let scopes: String = row.try_get("scopes").map_err(db)?;
    Ok(ApiKeyRecord {
        id: row.try_get("id").map_err(db)?,
        hash: hash_from(row).map_err(db)?,
        kind: stored_kind(row).map_err(db)?,
        owner_id: row.try_get("owner_id").map_err(db)?,
        name: row.try_get("name").map_err(db)?,
        scopes: serde_json::from_str(&scopes)
            .map_err(|_| Error::Integrity("scopes are not a JSON list of strings"))
            .map_err(db)?,
        created_at: ts(row.try_get("created_at").map_err(db)?).map_err(db)?,
        expires_at: ts_opt(row.try_get("expires_at").map_err(db)?).map_err(db)?,
        last_used_at: ts_opt(row.try_get("last_used_at").map_err(db)?).map_err(db)?,
        revoked_at: ts_opt(row.try_get("revoked_at").map_err(db)?).map_err(db)?,
        replaced_by: row.try_get("replaced_by").map_err(db)?,
    })
}

pub(super) fn family_from(row: &PgRow) -> Result<RefreshFamilyRecord> {
    Ok(RefreshFamilyRecord {
        id: row.try_get("id").map_err(db)?,
        user_id: row.try_get("user_id").map_err(db)?,
        created_at: ts(row.try_get("created_at").map_err(db)?).map_err(db)?,
        absolute_expires_at: ts(row.try_get("absolute_expires_at").map_err(db)?).map_err(db)?,
        idle_expires_at: ts(row.try_get("idle_expires_at").map_err(db)?).map_err(db)?,
        current_token_id: row.try_get("current_token_id").map_err(db)?,
        rotated_at: ts_opt(row.try_get("rotated_at").map_err(db)?).map_err(db)?,
        revoked_at: ts_opt(row.try_get("revoked_at").map_err(db)?).map_err(db)?,
        revoke_reason: row.try_get("revoke_reason").map_err(db)?,
        jkt: row.try_get("jkt").map_err(db)?,
    })
}

pub(super) fn refresh_from(row: &PgRow) -> Result<RefreshTokenRow> {
    Ok(RefreshTokenRow {
        id: row.try_get("id").map_err(db)?,
        hash: hash_from(row).map_err(db)?,
        generation: row.try_get("generation").map_err(db)?,
        parent_id: row.try_get("parent_id").map_err(db)?,
        used_at: ts_opt(row.try_get("used_at").map_err(db)?).map_err(db)?,
        successor_id: row.try_get("successor_id").map_err(db)?,
        successor_sealed: row.try_get("successor_sealed").map_err(db)?,
        grace_reuses: row.try_get("grace_reuses").map_err(db)?,
    })
}

pub(super) fn one_time_from(row: &PgRow) -> Result<OneTimeRecord> {
    Ok(OneTimeRecord {
        id: row.try_get("id").map_err(db)?,
        hash: hash_from(row).map_err(db)?,
        kind: stored_kind(row).map_err(db)?,
        user_id: row.try_get("user_id").map_err(db)?,
        data: row.try_get("data").map_err(db)?,
        created_at: ts(row.try_get("created_at").map_err(db)?).map_err(db)?,
        expires_at: ts(row.try_get("expires_at").map_err(db)?).map_err(db)?,
    })
}

pub(super) fn session_from(row: &PgRow) -> Result<SessionRecord> {
    Ok(SessionRecord {
        id: row.try_get("id").map_err(db)?,
        hash: hash_from(row).map_err(db)?,
        user_id: row.try_get("user_id").map_err(db)?,
        data: row.try_get("data").map_err(db)?,
        created_at: ts(row.try_get("created_at").map_err(db)?).map_err(db)?,
        last_seen_at: ts(row.try_get("last_seen_at").map_err(db)?).map_err(db)?,
        idle_expires_at: ts(row.try_get("idle_expires_at").map_err(db)?).map_err(db)?,
        absolute_expires_at: ts(row.try_get("absolute_expires_at").map_err(db)?).map_err(db)?,
    })
}
