//! The embedded migrations, applied in one transaction under an advisory lock.

use crate::error::db;
use sqlx::Row as _;

use super::PgStore;
use crate::error::{Error, Result};
use crate::store::migrate::POSTGRES;

/// Serialises concurrent migrations of the same schema (released at commit).
const MIGRATION_LOCK: &str =
    "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.tessera_opaque_migrations'))";

/// Creates the bookkeeping table.
const MIGRATIONS_DDL: &str = "CREATE TABLE IF NOT EXISTS tessera_opaque_migrations (\
    version BIGINT PRIMARY KEY, description TEXT NOT NULL, checksum BYTEA NOT NULL, \
    applied_at BIGINT NOT NULL)";

impl PgStore {
    /// Applies the embedded migrations this database lacks. Idempotent; safe
    /// to run from several processes at once.
    ///
    /// # Errors
    /// [`Error::Migration`] if an applied migration differs from the embedded
    /// one; [`Error::Database`].
    pub async fn migrate(&self) -> Result<()> {
        let mut tx = self.begin_write().await.map_err(db)?;
        sqlx::query(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(MIGRATIONS_DDL))
            .await
            .map_err(db)?;
        let applied =
            sqlx::query("SELECT version, checksum FROM tessera_opaque_migrations ORDER BY version")
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
        let mut done = Vec::with_capacity(applied.len());
        for row in &applied {
            let version: i64 = row.try_get("version").map_err(db)?;
            let checksum: Vec<u8> = row.try_get("checksum").map_err(db)?;
            done.push((version, checksum));
        }
        // A database migrated by a newer version of this library may hold data
        // this version would mishandle.
        if let Some(newest) = done
            .iter()
            .map(|(v, _)| *v)
            .max()
            .filter(|v| *v > crate::store::SCHEMA_VERSION)
        {
            return Err(Error::Migration(format!(
                "the database is at schema version {newest}, newer than this \
                 library's {}",
                crate::store::SCHEMA_VERSION
            )));
        }
        for m in POSTGRES {
            let applied_checksum: Option<Vec<u8>> = done
                .iter()
                .find_map(|(v, c)| (*v == m.version).then(|| c.clone()));
            match applied_checksum {
                Some(checksum) if checksum == m.checksum() => {}
                Some(_) => {
                    return Err(Error::Migration(format!(
                        "applied migration {} ({}) differs from the one this \
                         library embeds",
                        m.version, m.description
                    )));
                }
                None => {
                    sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(m.sql))
                        .await
                        .map_err(db)?;
                    sqlx::query(
                        "INSERT INTO tessera_opaque_migrations \
                         (version, description, checksum, applied_at) \
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(m.version)
                    .bind(m.description)
                    .bind(m.checksum())
                    .bind(token_core::Clock::now(&token_core::SystemClock).unix_seconds())
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                }
            }
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    }
}
