//! The SQLite backend: the embedded default, on a file (WAL) or in memory.
//!
//! Writes go through one writer connection and every write transaction starts with
//! `BEGIN IMMEDIATE`, which takes SQLite's write lock up front: read-then-write
//! sequences (rotation, roll, issuance with its rate limit) cannot interleave, in this
//! process or any other process using the same file (they wait up to the busy
//! timeout). Reads use a separate pool of connections that WAL lets run alongside the
//! writer.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// How long a connection waits for another connection's write lock.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Default number of read connections for a file database.
pub const DEFAULT_READERS: u32 = 4;

/// An [`crate::OpaqueStore`] on SQLite.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database file at `path` in WAL mode and applies
    /// the migrations.
    ///
    /// # Errors
    /// [`crate::Error::Database`] or [`crate::Error::Migration`].
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true);
        Self::connect_with(options, DEFAULT_READERS).await
    }

    /// A private in-memory database (one connection; gone when the store is dropped),
    /// with the migrations applied. For tests, examples and single-process tools.
    ///
    /// # Errors
    /// [`crate::Error::Database`] or [`crate::Error::Migration`].
    pub async fn memory() -> Result<Self> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        // One connection that never closes: an in-memory database lives as long as
        // its last connection.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        let store = Self {
            writer: pool.clone(),
            reader: pool,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Opens a file database from `options` (WAL, `synchronous=NORMAL`, foreign keys
    /// and the busy timeout are set here) with one writer connection and `readers`
    /// read connections, and applies the migrations.
    ///
    /// # Errors
    /// [`crate::Error::Database`] or [`crate::Error::Migration`].
    pub async fn connect_with(options: SqliteConnectOptions, readers: u32) -> Result<Self> {
        let options = options
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        let store = Self {
            reader: writer.clone(),
            writer,
        };
        store.migrate().await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(readers.max(1))
            .connect_with(options.pragma("query_only", "ON"))
            .await?;
        Ok(Self {
            reader,
            writer: store.writer,
        })
    }

    /// Closes the pools.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    fn read_pool(&self) -> &SqlitePool {
        &self.reader
    }

    fn write_pool(&self) -> &SqlitePool {
        &self.writer
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }
}

impl_opaque_store! {
    store: SqliteStore,
    db: sqlx::Sqlite,
    name: "sqlite",
    for_update: "",
    migrations: crate::store::migrate::SQLITE,
    migration_lock: "",
    migrations_ddl: "CREATE TABLE IF NOT EXISTS tessera_opaque_migrations (\
        version INTEGER PRIMARY KEY, description TEXT NOT NULL, checksum BLOB NOT NULL, \
        applied_at INTEGER NOT NULL)",
}
