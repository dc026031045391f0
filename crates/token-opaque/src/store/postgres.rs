//! The PostgreSQL backend: the scale-out path, on the application's own [`PgPool`].
//!
//! Transactions run at the default `READ COMMITTED` level. Read-then-write sequences
//! lock what they read (`SELECT … FOR UPDATE`: the refresh family during a rotation,
//! the old key during a roll); single-statement operations rely on the statement's
//! own atomicity (`DELETE … RETURNING` for one-time redemption, `INSERT … ON CONFLICT
//! DO UPDATE … WHERE` for the issuance rate limit, conditional `UPDATE`s).
//!
//! The tables live in the connection's current schema (`search_path`).

use sqlx::PgPool;

/// An [`crate::OpaqueStore`] on PostgreSQL.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Wraps `pool` without touching the database. Run [`PgStore::migrate`] (or use
    /// [`PgStore::open`]) before use.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Wraps `pool` and applies the migrations.
    ///
    /// # Errors
    /// [`crate::Error::Database`] or [`crate::Error::Migration`].
    pub async fn open(pool: PgPool) -> Result<Self> {
        let store = Self::new(pool);
        store.migrate().await?;
        Ok(store)
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn read_pool(&self) -> &PgPool {
        &self.pool
    }

    fn write_pool(&self) -> &PgPool {
        &self.pool
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        Ok(self.pool.begin().await?)
    }
}

impl_opaque_store! {
    store: PgStore,
    db: sqlx::Postgres,
    name: "postgres",
    for_update: " FOR UPDATE",
    migrations: crate::store::migrate::POSTGRES,
    // Serialises concurrent migrations of the same schema (released at commit).
    migration_lock: "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.tessera_opaque_migrations'))",
    migrations_ddl: "CREATE TABLE IF NOT EXISTS tessera_opaque_migrations (\
        version BIGINT PRIMARY KEY, description TEXT NOT NULL, checksum BYTEA NOT NULL, \
        applied_at BIGINT NOT NULL)",
}
