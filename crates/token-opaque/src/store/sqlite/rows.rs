//! Rows: decoding them into records, and the statement helpers every method uses.

use crate::error::db;
use rusqlite::{Connection, Row};
use token_core::OpaqueKind;

use crate::error::{Error, Result};
use crate::format::kind_from_name;
use crate::hash::TokenHash;
use crate::store::logic::RefreshTokenRow;
use crate::store::sql::{ts, ts_opt};
use crate::store::{ApiKeyRecord, OneTimeRecord, RefreshFamilyRecord, SessionRecord};

/// The stored hash from the digest and pepper-id columns at `digest` and `digest + 1`.
pub(super) fn hash_at(row: &Row<'_>, digest: usize) -> Result<TokenHash> {
    let bytes: Vec<u8> = row.get(digest).map_err(db)?;
    let pepper: Option<String> = row.get(digest + 1).map_err(db)?;
    TokenHash::from_stored(&bytes, pepper.as_deref())
}

pub(super) fn kind_at(row: &Row<'_>, i: usize) -> Result<OpaqueKind> {
    let kind: String = row.get(i).map_err(db)?;
    kind_from_name(&kind).ok_or(Error::Integrity("unknown kind in a row"))
}

/// An API key from the columns of `api_key_cols!()`.
pub(super) fn api_key_from(row: &Row<'_>) -> Result<ApiKeyRecord> {
    let scopes: String = row.get(6).map_err(db)?;
    Ok(ApiKeyRecord {
        id: row.get(0).map_err(db)?,
        hash: hash_at(row, 1).map_err(db)?,
        kind: kind_at(row, 3).map_err(db)?,
        owner_id: row.get(4).map_err(db)?,
        name: row.get(5).map_err(db)?,
        scopes: serde_json::from_str(&scopes)
            .map_err(|_| Error::Integrity("scopes are not a JSON list of strings"))
            .map_err(db)?,
        created_at: ts(row.get(7).map_err(db)?).map_err(db)?,
        expires_at: ts_opt(row.get(8).map_err(db)?).map_err(db)?,
        last_used_at: ts_opt(row.get(9).map_err(db)?).map_err(db)?,
        revoked_at: ts_opt(row.get(10).map_err(db)?).map_err(db)?,
        replaced_by: row.get(11).map_err(db)?,
    })
}

/// A family from the columns of `family_cols!()`.
pub(super) fn family_from(row: &Row<'_>) -> Result<RefreshFamilyRecord> {
    Ok(RefreshFamilyRecord {
        id: row.get(0).map_err(db)?,
        user_id: row.get(1).map_err(db)?,
        created_at: ts(row.get(2).map_err(db)?).map_err(db)?,
        absolute_expires_at: ts(row.get(3).map_err(db)?).map_err(db)?,
        idle_expires_at: ts(row.get(4).map_err(db)?).map_err(db)?,
        current_token_id: row.get(5).map_err(db)?,
        rotated_at: ts_opt(row.get(6).map_err(db)?).map_err(db)?,
        revoked_at: ts_opt(row.get(7).map_err(db)?).map_err(db)?,
        revoke_reason: row.get(8).map_err(db)?,
        jkt: row.get(9).map_err(db)?,
    })
}

/// A refresh token from the columns of `refresh_cols!()`.
pub(super) fn refresh_from(row: &Row<'_>) -> Result<RefreshTokenRow> {
    Ok(RefreshTokenRow {
        id: row.get(0).map_err(db)?,
        hash: hash_at(row, 1).map_err(db)?,
        generation: row.get(3).map_err(db)?,
        parent_id: row.get(4).map_err(db)?,
        used_at: ts_opt(row.get(5).map_err(db)?).map_err(db)?,
        successor_id: row.get(6).map_err(db)?,
        successor_sealed: row.get(7).map_err(db)?,
        grace_reuses: row.get(8).map_err(db)?,
    })
}

/// A one-time token from the columns of `one_time_cols!()`.
pub(super) fn one_time_from(row: &Row<'_>) -> Result<OneTimeRecord> {
    Ok(OneTimeRecord {
        id: row.get(0).map_err(db)?,
        hash: hash_at(row, 1).map_err(db)?,
        kind: kind_at(row, 3).map_err(db)?,
        user_id: row.get(4).map_err(db)?,
        data: row.get(5).map_err(db)?,
        created_at: ts(row.get(6).map_err(db)?).map_err(db)?,
        expires_at: ts(row.get(7).map_err(db)?).map_err(db)?,
    })
}

/// A session from the columns of `session_cols!()`.
pub(super) fn session_from(row: &Row<'_>) -> Result<SessionRecord> {
    Ok(SessionRecord {
        id: row.get(0).map_err(db)?,
        hash: hash_at(row, 1).map_err(db)?,
        user_id: row.get(3).map_err(db)?,
        data: row.get(4).map_err(db)?,
        created_at: ts(row.get(5).map_err(db)?).map_err(db)?,
        last_seen_at: ts(row.get(6).map_err(db)?).map_err(db)?,
        idle_expires_at: ts(row.get(7).map_err(db)?).map_err(db)?,
        absolute_expires_at: ts(row.get(8).map_err(db)?).map_err(db)?,
    })
}

/// The first row of `sql` with `params`, decoded by `decode`.
pub(super) fn one<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    decode: impl FnOnce(&Row<'_>) -> Result<T>,
) -> Result<Option<T>> {
    let mut stmt = conn.prepare_cached(sql).map_err(db)?;
    let mut rows = stmt.query(params).map_err(db)?;
    rows.next().map_err(db)?.map(decode).transpose()
}

/// Every row of `sql` with `params`, decoded by `decode`.
pub(super) fn all<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    decode: impl Fn(&Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql).map_err(db)?;
    let mut rows = stmt.query(params).map_err(db)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db)? {
        out.push(decode(row).map_err(db)?);
    }
    Ok(out)
}

/// Runs a statement; the number of rows it changed.
pub(super) fn run(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<u64> {
    let changed = conn
        .prepare_cached(sql)
        .map_err(db)?
        .execute(params)
        .map_err(db)?;
    Ok(u64::try_from(changed).unwrap_or(u64::MAX))
}
