//! The SQLite backend: the embedded default, on a file (WAL) or in memory.
//!
//! SQLite is a library inside this process, so statements run on the calling task's
//! thread, on connections this store owns (through `rusqlite`): no worker thread and no
//! channel hop between the caller and the database. A point lookup costs a few
//! microseconds, less than handing it to another thread would.
//!
//! - **Writes** go through one writer connection. In-process writers queue on an
//!   asynchronous lock (they never block a thread waiting for each other); each write
//!   is one transaction begun with `BEGIN IMMEDIATE`, which takes SQLite's write lock up
//!   front: read-then-write sequences (rotation, roll, issuance with its rate limit)
//!   cannot interleave, in this process or any other process using the same file.
//! - **Reads** use a small pool of read-only connections that WAL lets run alongside
//!   the writer. An in-memory database has a single connection for both.
//! - **Contention** with another process: the connections never sleep inside SQLite
//!   (their busy timeout is zero). When the file is locked, the operation backs off
//!   (1 ms, doubling to 25 ms, slept off the runtime's worker threads) and tries again,
//!   for up to [`BUSY_TIMEOUT`]; then it fails with
//!   [`DbErrorKind::Busy`]. A transaction is retried only
//!   before it began, so nothing is ever applied twice.
//!
//! Each transaction runs synchronously from `BEGIN` to `COMMIT` with no `.await`
//! inside: cancelling the calling future can never leave a transaction open.
//!
//! The module: [`SqliteStore`] and its options here; connections, the writer queue
//! and transactions in `pool.rs`; the back-off in `backoff.rs`; the embedded
//! migrations in `migrate.rs`; row decoding and statement helpers in `rows.rs`; the
//! [`crate::OpaqueStore`] methods in `methods.rs`.

mod backoff;
mod keys;
mod methods;
mod migrate;
mod pool;
mod rows;

use crate::error::db;
use std::fmt;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::Connection;

use crate::error::{DbErrorKind, Error, Result};

use self::backoff::Backoff;
use self::pool::{Inner, Readers, configure, is_busy, lock, open_writer};

/// How long an operation keeps retrying while another connection holds the lock.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The least number of idle read connections kept for a file database by default
/// (the default is this or the machine's parallelism, whichever is larger).
pub const DEFAULT_READERS: usize = 4;

/// How a file database's commits reach the disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// `synchronous=NORMAL` (SQLite's recommendation for WAL): a commit survives the
    /// application crashing, but the last commits before a power loss or operating
    /// system crash can be lost, and with them a revocation, a rotation or a one-time
    /// redemption (a used password-reset token would be usable again). Commits do not
    /// wait for the disk.
    #[default]
    Normal,
    /// `synchronous=FULL`: every commit waits for the write-ahead log to reach the
    /// disk, so a committed revocation or redemption survives a power loss. Each write
    /// costs a disk flush.
    Full,
}

/// Options for [`SqliteStore::open_with`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SqliteOptions {
    readers: usize,
    durability: Durability,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        let parallelism = std::thread::available_parallelism().map_or(1, usize::from);
        Self {
            readers: DEFAULT_READERS.max(parallelism),
            durability: Durability::Normal,
        }
    }
}

impl SqliteOptions {
    /// Idle read connections to keep (at least 1). More may be open at once when more
    /// threads read at the same time; the extra ones are closed after use.
    #[must_use]
    pub fn readers(mut self, readers: usize) -> Self {
        self.readers = readers.max(1);
        self
    }

    /// How commits reach the disk; see [`Durability`].
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }
}

/// An [`crate::OpaqueStore`] on SQLite.
///
/// Cheap to clone: clones share the connections.
#[derive(Clone)]
pub struct SqliteStore {
    inner: std::sync::Arc<Inner>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("SqliteStore");
        match &self.inner.readers {
            Some(r) => d.field("path", &r.path),
            None => d.field("path", &":memory:"),
        };
        d.finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if missing) the database file at `path` in WAL mode, with
    /// [`DEFAULT_READERS`] idle read connections, and applies the migrations.
    ///
    /// # Errors
    /// [`crate::Error::Database`] or [`crate::Error::Migration`].
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, SqliteOptions::default()).await
    }

    /// Opens (creating if missing) the database file at `path` in WAL mode with
    /// `options`, and applies the migrations. While another process holds the file's
    /// lock, opening backs off like any write.
    ///
    /// # Errors
    /// [`crate::Error::Database`] or [`crate::Error::Migration`].
    pub async fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self> {
        let path = path.as_ref();
        let mut backoff = Backoff::new();
        let writer = loop {
            match open_writer(path, options.durability) {
                Err(e) if is_busy(&e) => backoff.wait().await.map_err(db)?,
                other => break other.map_err(db)?,
            }
        };
        // Readers open lazily: pin the file itself, not a path relative to a working
        // directory that may change.
        let path = std::fs::canonicalize(path)
            .map_err(|e| {
                Error::Database(crate::error::DbError::new(
                    DbErrorKind::Io,
                    None,
                    format!("cannot resolve the database path: {}", e.kind()),
                ))
            })
            .map_err(db)?;
        let store = Self::from_parts(
            writer,
            Some(Readers {
                path,
                idle: Mutex::new(Some(Vec::new())),
                max_idle: options.readers,
            }),
        );
        store.migrate().await.map_err(db)?;
        Ok(store)
    }

    /// A private in-memory database (one connection; gone when the last clone of the
    /// store is dropped or closed), with the migrations applied. For tests, examples
    /// and single-process tools.
    ///
    /// # Errors
    /// [`crate::Error::Database`] or [`crate::Error::Migration`].
    pub async fn memory() -> Result<Self> {
        let conn = Connection::open_in_memory().map_err(db)?;
        configure(&conn).map_err(db)?;
        let store = Self::from_parts(conn, None);
        store.migrate().await.map_err(db)?;
        Ok(store)
    }

    fn from_parts(writer: Connection, readers: Option<Readers>) -> Self {
        Self {
            inner: std::sync::Arc::new(Inner {
                writer: Mutex::new(Some(writer)),
                write_queue: tokio::sync::Mutex::new(()),
                readers,
            }),
        }
    }

    /// Closes the connections of this store and of its clones. Later operations fail
    /// with [`DbErrorKind::PoolClosed`].
    pub async fn close(&self) {
        let _turn = self.inner.write_queue.lock().await;
        drop(lock(&self.inner.writer).take());
        if let Some(readers) = &self.inner.readers {
            drop(lock(&readers.idle).take());
        }
    }

    /// Applies the embedded migrations this database lacks. Idempotent; safe to run
    /// from several processes at once (the migration transaction holds the write lock).
    ///
    /// # Errors
    /// [`Error::Migration`] if an applied migration differs from the embedded one;
    /// [`Error::Database`].
    pub async fn migrate(&self) -> Result<()> {
        self.write(migrate::run).await
    }
}
