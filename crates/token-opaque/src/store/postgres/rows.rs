//! Rows: decoding them into records, by column name.

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
    let digest: Vec<u8> = row.try_get("token_hash")?;
    let pepper: Option<String> = row.try_get("pepper_id")?;
    TokenHash::from_stored(&digest, pepper.as_deref())
}

pub(super) fn stored_kind(row: &PgRow) -> Result<OpaqueKind> {
    let kind: String = row.try_get("kind")?;
    kind_from_name(&kind).ok_or(Error::Integrity("unknown kind in a row"))
}

pub(super) fn api_key_from(row: &PgRow) -> Result<ApiKeyRecord> {
    let scopes: String = row.try_get("scopes")?;
    Ok(ApiKeyRecord {
        id: row.try_get("id")?,
        hash: hash_from(row)?,
        kind: stored_kind(row)?,
        owner_id: row.try_get("owner_id")?,
        name: row.try_get("name")?,
        scopes: serde_json::from_str(&scopes)
            .map_err(|_| Error::Integrity("scopes are not a JSON list of strings"))?,
        created_at: ts(row.try_get("created_at")?)?,
        expires_at: ts_opt(row.try_get("expires_at")?)?,
        last_used_at: ts_opt(row.try_get("last_used_at")?)?,
        revoked_at: ts_opt(row.try_get("revoked_at")?)?,
        replaced_by: row.try_get("replaced_by")?,
    })
}

pub(super) fn family_from(row: &PgRow) -> Result<RefreshFamilyRecord> {
    Ok(RefreshFamilyRecord {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        created_at: ts(row.try_get("created_at")?)?,
        absolute_expires_at: ts(row.try_get("absolute_expires_at")?)?,
        idle_expires_at: ts(row.try_get("idle_expires_at")?)?,
        current_token_id: row.try_get("current_token_id")?,
        rotated_at: ts_opt(row.try_get("rotated_at")?)?,
        revoked_at: ts_opt(row.try_get("revoked_at")?)?,
        revoke_reason: row.try_get("revoke_reason")?,
    })
}

pub(super) fn refresh_from(row: &PgRow) -> Result<RefreshTokenRow> {
    Ok(RefreshTokenRow {
        id: row.try_get("id")?,
        hash: hash_from(row)?,
        generation: row.try_get("generation")?,
        parent_id: row.try_get("parent_id")?,
        used_at: ts_opt(row.try_get("used_at")?)?,
        successor_id: row.try_get("successor_id")?,
        successor_sealed: row.try_get("successor_sealed")?,
        grace_reuses: row.try_get("grace_reuses")?,
    })
}

pub(super) fn one_time_from(row: &PgRow) -> Result<OneTimeRecord> {
    Ok(OneTimeRecord {
        id: row.try_get("id")?,
        hash: hash_from(row)?,
        kind: stored_kind(row)?,
        user_id: row.try_get("user_id")?,
        data: row.try_get("data")?,
        created_at: ts(row.try_get("created_at")?)?,
        expires_at: ts(row.try_get("expires_at")?)?,
    })
}

pub(super) fn session_from(row: &PgRow) -> Result<SessionRecord> {
    Ok(SessionRecord {
        id: row.try_get("id")?,
        hash: hash_from(row)?,
        user_id: row.try_get("user_id")?,
        data: row.try_get("data")?,
        created_at: ts(row.try_get("created_at")?)?,
        last_seen_at: ts(row.try_get("last_seen_at")?)?,
        idle_expires_at: ts(row.try_get("idle_expires_at")?)?,
        absolute_expires_at: ts(row.try_get("absolute_expires_at")?)?,
    })
}
