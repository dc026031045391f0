//! The [`KeyTable`] on SQLite: one read, or one write transaction per call.

use rusqlite::{Connection, Row, params};
use token_core::Timestamp;

use super::SqliteStore;
use super::rows::{all, run};
use crate::error::{Result, db};
use crate::store::keys::{KeyRecord, KeyTable, Retire, Rewrapped};
use crate::store::sql::{secs, ts, ts_opt};

const KEY_COLS: &str = "kid, namespace, job, kind, generation, kek_id, wrapped_dek, sealed, public_key, \
     created_at, activates_at, retires_at, revoked_at";

fn key_from(row: &Row<'_>) -> Result<KeyRecord> {
    Ok(KeyRecord {
        kid: row.get(0).map_err(db)?,
        namespace: row.get(1).map_err(db)?,
        job: row.get(2).map_err(db)?,
        kind: row.get(3).map_err(db)?,
        generation: row.get(4).map_err(db)?,
        kek_id: row.get(5).map_err(db)?,
        wrapped_dek: row.get(6).map_err(db)?,
        sealed: row.get(7).map_err(db)?,
        public_key: row.get(8).map_err(db)?,
        created_at: ts(row.get(9).map_err(db)?)?,
        activates_at: ts(row.get(10).map_err(db)?)?,
        retires_at: ts_opt(row.get(11).map_err(db)?)?,
        revoked_at: ts_opt(row.get(12).map_err(db)?)?,
    })
}

fn set_retirement(conn: &Connection, retire: Option<Retire<'_>>) -> Result<()> {
    if let Some(r) = retire {
        run(
            conn,
            "UPDATE tessera_keys SET retires_at = ?2 WHERE kid = ?1",
            params![r.kid, r.at.unix_seconds()],
        )?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl KeyTable for SqliteStore {
    async fn key_records(&self, namespace: &str) -> Result<Vec<KeyRecord>> {
        let sql = format!(
            "SELECT {KEY_COLS} FROM tessera_keys WHERE namespace = ?1 ORDER BY job, generation"
        );
        self.read(|conn| all(conn, &sql, [namespace], key_from))
            .await
    }

    async fn insert_key(&self, key: &KeyRecord, retire: Option<Retire<'_>>) -> Result<bool> {
        let sql = format!(
            "INSERT INTO tessera_keys ({KEY_COLS}) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
             ON CONFLICT (namespace, job, generation) DO NOTHING"
        );
        self.write(|conn| {
            let inserted = run(
                conn,
                &sql,
                params![
                    key.kid,
                    key.namespace,
                    key.job,
                    key.kind,
                    key.generation,
                    key.kek_id,
                    key.wrapped_dek,
                    key.sealed,
                    key.public_key,
                    key.created_at.unix_seconds(),
                    key.activates_at.unix_seconds(),
                    secs(key.retires_at),
                    secs(key.revoked_at),
                ],
            )? == 1;
            if inserted {
                set_retirement(conn, retire)?;
            }
            Ok(inserted)
        })
        .await
    }

    async fn activate_key(
        &self,
        kid: &str,
        at: Timestamp,
        retire: Option<Retire<'_>>,
    ) -> Result<bool> {
        self.write(|conn| {
            let moved = run(
                conn,
                "UPDATE tessera_keys SET activates_at = ?2 \
                 WHERE kid = ?1 AND activates_at > ?2 AND revoked_at IS NULL",
                params![kid, at.unix_seconds()],
            )? == 1;
            if moved {
                set_retirement(conn, retire)?;
            }
            Ok(moved)
        })
        .await
    }

    async fn revoke_key(&self, kid: &str, at: Timestamp) -> Result<bool> {
        self.write(|conn| {
            Ok(run(
                conn,
                "UPDATE tessera_keys SET revoked_at = ?2 WHERE kid = ?1 AND revoked_at IS NULL",
                params![kid, at.unix_seconds()],
            )? == 1)
        })
        .await
    }

    async fn rewrap_keys(&self, rewrapped: &[Rewrapped]) -> Result<u64> {
        self.write(|conn| {
            let mut changed = 0;
            for r in rewrapped {
                changed += run(
                    conn,
                    "UPDATE tessera_keys SET kek_id = ?3, wrapped_dek = ?4 \
                     WHERE kid = ?1 AND kek_id = ?2",
                    params![r.kid, r.old_kek_id, r.new_kek_id, r.wrapped_dek],
                )?;
            }
            Ok(changed)
        })
        .await
    }
}
