//! The [`KeyTable`] on PostgreSQL: one statement, or one transaction per call.

use sqlx::Row as _;
use sqlx::postgres::PgRow;
use token_core::Timestamp;

use super::PgStore;
use crate::error::{Result, db};
use crate::store::keys::{KeyRecord, KeyTable, Retire, Rewrapped};
use crate::store::sql::{secs, ts, ts_opt};

const KEY_COLS: &str = "kid, namespace, job, kind, generation, kek_id, wrapped_dek, sealed, public_key, \
     created_at, activates_at, retires_at, revoked_at";

fn key_from(row: &PgRow) -> Result<KeyRecord> {
    Ok(KeyRecord {
        kid: row.try_get(0).map_err(db)?,
        namespace: row.try_get(1).map_err(db)?,
        job: row.try_get(2).map_err(db)?,
        kind: row.try_get(3).map_err(db)?,
        generation: row.try_get(4).map_err(db)?,
        kek_id: row.try_get(5).map_err(db)?,
        wrapped_dek: row.try_get(6).map_err(db)?,
        sealed: row.try_get(7).map_err(db)?,
        public_key: row.try_get(8).map_err(db)?,
        created_at: ts(row.try_get(9).map_err(db)?)?,
        activates_at: ts(row.try_get(10).map_err(db)?)?,
        retires_at: ts_opt(row.try_get(11).map_err(db)?)?,
        revoked_at: ts_opt(row.try_get(12).map_err(db)?)?,
    })
}

async fn set_retirement(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    retire: Option<Retire<'_>>,
) -> Result<()> {
    if let Some(r) = retire {
        sqlx::query("UPDATE tessera_keys SET retires_at = $2 WHERE kid = $1")
            .bind(r.kid)
            .bind(r.at.unix_seconds())
            .execute(&mut **tx)
            .await
            .map_err(db)?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl KeyTable for PgStore {
    async fn key_records(&self, namespace: &str) -> Result<Vec<KeyRecord>> {
        let sql = format!(
            "SELECT {KEY_COLS} FROM tessera_keys WHERE namespace = $1 ORDER BY job, generation"
        );
        let rows = sqlx::query(&sql)
            .bind(namespace)
            .fetch_all(self.pool())
            .await
            .map_err(db)?;
        rows.iter().map(key_from).collect()
    }

    async fn insert_key(&self, key: &KeyRecord, retire: Option<Retire<'_>>) -> Result<bool> {
        let sql = format!(
            "INSERT INTO tessera_keys ({KEY_COLS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
             ON CONFLICT (namespace, job, generation) DO NOTHING"
        );
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(&sql)
            .bind(&key.kid)
            .bind(&key.namespace)
            .bind(&key.job)
            .bind(&key.kind)
            .bind(key.generation)
            .bind(&key.kek_id)
            .bind(&key.wrapped_dek)
            .bind(&key.sealed)
            .bind(&key.public_key)
            .bind(key.created_at.unix_seconds())
            .bind(key.activates_at.unix_seconds())
            .bind(secs(key.retires_at))
            .bind(secs(key.revoked_at))
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected()
            == 1;
        if inserted {
            set_retirement(&mut tx, retire).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(inserted)
    }

    async fn activate_key(
        &self,
        kid: &str,
        at: Timestamp,
        retire: Option<Retire<'_>>,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let moved = sqlx::query(
            "UPDATE tessera_keys SET activates_at = $2 \
             WHERE kid = $1 AND activates_at > $2 AND revoked_at IS NULL",
        )
        .bind(kid)
        .bind(at.unix_seconds())
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected()
            == 1;
        if moved {
            set_retirement(&mut tx, retire).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(moved)
    }

    async fn revoke_key(&self, kid: &str, at: Timestamp) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE tessera_keys SET revoked_at = $2 WHERE kid = $1 AND revoked_at IS NULL",
        )
        .bind(kid)
        .bind(at.unix_seconds())
        .execute(self.pool())
        .await
        .map_err(db)?
        .rows_affected()
            == 1)
    }

    async fn rewrap_keys(&self, rewrapped: &[Rewrapped]) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let mut changed = 0;
        for r in rewrapped {
            changed += sqlx::query(
                "UPDATE tessera_keys SET kek_id = $3, wrapped_dek = $4 \
                 WHERE kid = $1 AND kek_id = $2",
            )
            .bind(&r.kid)
            .bind(&r.old_kek_id)
            .bind(&r.new_kek_id)
            .bind(&r.wrapped_dek)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
        }
        tx.commit().await.map_err(db)?;
        Ok(changed)
    }
}
