//! The PostgreSQL backend: the scale-out path, on the application's own [`PgPool`].
//!
//! Transactions run at the default `READ COMMITTED` level. Read-then-write sequences
//! lock what they read (`SELECT … FOR UPDATE`: the refresh family during a rotation,
//! the old key during a roll); single-statement operations rely on the statement's
//! own atomicity (`DELETE … RETURNING` for one-time redemption, `INSERT … ON CONFLICT
//! DO UPDATE … WHERE` for the issuance rate limit, conditional `UPDATE`s).
//!
//! The tables live in the connection's current schema (`search_path`).
//!
//! The module: [`PgStore`] here; the embedded migrations in `migrate.rs`; row decoding
//! in `rows.rs`; the [`crate::OpaqueStore`] methods in `methods.rs`.

mod keys;
mod methods;
mod migrate;
mod rows;

use crate::error::db;
use sqlx::PgPool;

use crate::error::Result;

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
        store.migrate().await.map_err(db)?;
        Ok(store)
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        self.pool.begin().await.map_err(db)
    }
}
