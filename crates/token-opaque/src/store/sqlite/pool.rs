//! Connections: the writer and its queue, the pool of read connections, and the
//! transactions run on them.

use crate::error::db;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::backoff::Backoff;
use super::{Durability, SqliteStore};
use crate::error::{DbErrorKind, Error, Result};

/// Prepared statements cached per connection (the store uses about forty).
const STATEMENT_CACHE: usize = 64;

/// What the clones of a store share.
pub(super) struct Inner {
    /// `None` once closed.
    pub(super) writer: Mutex<Option<Connection>>,
    /// In-process writers wait here, asynchronously, for their turn.
    pub(super) write_queue: tokio::sync::Mutex<()>,
    /// Read connections of a file database; `None` for an in-memory one, whose reads
    /// use the writer.
    pub(super) readers: Option<Readers>,
}

/// The read connections of a file database.
pub(super) struct Readers {
    pub(super) path: PathBuf,
    /// Idle connections; `None` once closed.
    pub(super) idle: Mutex<Option<Vec<Connection>>>,
    pub(super) max_idle: usize,
}

impl SqliteStore {
    /// Runs `body` in a write transaction: `BEGIN IMMEDIATE`, then `COMMIT` if `body`
    /// returns `Ok`, `ROLLBACK` if it returns `Err`.
    pub(super) async fn write<T>(&self, body: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let _turn = self.inner.write_queue.lock().await;
        let mut backoff = Backoff::new();
        loop {
            {
                let guard = lock(&self.inner.writer);
                let conn = guard.as_ref().ok_or_else(closed).map_err(db)?;
                if !conn.is_autocommit() {
                    // Only a panic inside a transaction could leave one open.
                    conn.execute_batch("ROLLBACK").map_err(db)?;
                }
                match conn
                    .prepare_cached("BEGIN IMMEDIATE")
                    .map_err(db)?
                    .execute([])
                {
                    Ok(_) => return finish(conn, body),
                    Err(e) => {
                        let e = db(e);
                        if !is_busy(&e) {
                            return Err(e);
                        }
                    }
                }
            }
            backoff.wait().await.map_err(db)?;
        }
    }

    /// Runs the read-only `query` on a read connection, retrying while the file is
    /// locked (reads are side-effect free).
    pub(super) async fn read<T>(
        &self,
        mut query: impl FnMut(&Connection) -> Result<T>,
    ) -> Result<T> {
        let mut backoff = Backoff::new();
        loop {
            let outcome = match &self.inner.readers {
                None => {
                    let guard = lock(&self.inner.writer);
                    let conn = guard.as_ref().ok_or_else(closed).map_err(db)?;
                    query(conn)
                }
                Some(readers) => {
                    let conn = readers.take().map_err(db)?;
                    let outcome = query(&conn);
                    readers.put_back(conn);
                    outcome
                }
            };
            match outcome {
                Err(e) if is_busy(&e) => backoff.wait().await.map_err(db)?,
                other => return other,
            }
        }
    }
}

impl Readers {
    fn take(&self) -> Result<Connection> {
        let pooled = lock(&self.idle)
            .as_mut()
            .ok_or_else(closed)
            .map_err(db)?
            .pop();
        match pooled {
            Some(conn) => Ok(conn),
            None => open_reader(&self.path),
        }
    }

    fn put_back(&self, conn: Connection) {
        if let Some(idle) = lock(&self.idle).as_mut() {
            if idle.len() < self.max_idle {
                idle.push(conn);
            }
        }
    }
}

/// Locks a mutex, recovering from poisoning: the guarded connections hold no
/// invariant a panic could break (an open transaction is rolled back before reuse).
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(super) fn closed() -> Error {
    Error::Database(crate::error::DbError::new(
        DbErrorKind::PoolClosed,
        None,
        "store closed".to_owned(),
    ))
}

pub(super) fn is_busy(e: &Error) -> bool {
    matches!(e, Error::Database(d) if d.kind() == DbErrorKind::Busy)
}

/// Commits after `body` succeeds, rolls back after it fails (or if the commit fails,
/// or if `body` panics).
fn finish<T>(conn: &Connection, body: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    let guard = RollbackOnExit(conn);
    let outcome = body(conn).and_then(|v| {
        conn.prepare_cached("COMMIT")
            .map_err(db)?
            .execute([])
            .map_err(db)?;
        Ok(v)
    });
    drop(guard);
    outcome
}

/// Rolls back the connection's open transaction, if any, when dropped: on every exit
/// from a transaction body, unwinding included, so the writer never stays inside a
/// transaction (holding the file's write lock, or showing uncommitted rows to the
/// reads of an in-memory store).
struct RollbackOnExit<'a>(&'a Connection);

impl Drop for RollbackOnExit<'_> {
    fn drop(&mut self) {
        if !self.0.is_autocommit() {
            // Should the rollback itself fail, the next write rolls back before it
            // begins; the caller hears the error that caused this one.
            drop(self.0.execute_batch("ROLLBACK"));
        }
    }
}

/// Settings every connection gets: foreign keys, no sleeping inside SQLite, a
/// statement cache large enough for every statement of the store.
pub(super) fn configure(conn: &Connection) -> Result<()> {
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
    conn.busy_timeout(Duration::ZERO).map_err(db)?;
    Ok(())
}

/// Opens the writer connection and switches the file to WAL. Fails with
/// [`DbErrorKind::Busy`] at once if another process holds the lock (the caller backs
/// off and tries again).
pub(super) fn open_writer(path: &Path, durability: Durability) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db)?;
    configure(&conn).map_err(db)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(db)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Database(crate::error::DbError::new(
            DbErrorKind::Other,
            None,
            format!("the database refused WAL mode (journal mode {mode})"),
        )));
    }
    let synchronous = match durability {
        Durability::Normal => "NORMAL",
        Durability::Full => "FULL",
    };
    conn.pragma_update(None, "synchronous", synchronous)
        .map_err(db)?;
    // After a checkpoint, a write-ahead log grown by a burst is cut back to 64 MiB.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)
        .map_err(db)?;
    Ok(conn)
}

fn open_reader(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db)?;
    configure(&conn).map_err(db)?;
    conn.pragma_update(None, "query_only", "ON").map_err(db)?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::store::sqlite::SqliteOptions;

    fn temp_path() -> PathBuf {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b).unwrap();
        std::env::temp_dir().join(format!(
            "tessera-sqlite-unit-{:016x}.db",
            u64::from_le_bytes(b)
        ))
    }

    fn remove(path: &Path) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    fn pragma(store: &SqliteStore, name: &str) -> i64 {
        let guard = lock(&store.inner.writer);
        let conn = guard.as_ref().unwrap();
        conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
            .unwrap()
    }

    #[tokio::test]
    async fn durability_sets_the_writer_synchronous_mode() {
        let path = temp_path();
        let full =
            SqliteStore::open_with(&path, SqliteOptions::default().durability(Durability::Full))
                .await
                .unwrap();
        assert_eq!(pragma(&full, "synchronous"), 2);
        full.close().await;
        let normal = SqliteStore::open(&path).await.unwrap();
        assert_eq!(pragma(&normal, "synchronous"), 1);
        assert_eq!(pragma(&normal, "busy_timeout"), 0);
        normal.close().await;
        remove(&path);
    }

    /// A transaction body that panics leaves no transaction open: the next read of an
    /// in-memory store sees none of its writes, and the next write begins normally.
    #[tokio::test]
    async fn a_panicking_transaction_body_is_rolled_back() {
        let store = SqliteStore::memory().await.unwrap();
        let s2 = store.clone();
        let panicked = tokio::spawn(async move {
            s2.write(|conn| {
                conn.execute(
                    "INSERT INTO opaque_issue_limits (user_id, kind, last_issued_at) \
                     VALUES ('u', 'k', 1)",
                    [],
                )
                .map_err(db)?;
                #[allow(clippy::panic)]
                {
                    panic!("a bug inside a transaction");
                }
                #[allow(unreachable_code)]
                Ok(())
            })
            .await
        })
        .await;
        assert!(panicked.is_err());
        let rows: i64 = store
            .read(|conn| {
                conn.query_row("SELECT count(*) FROM opaque_issue_limits", [], |r| r.get(0))
                    .map_err(db)
            })
            .await
            .unwrap();
        assert_eq!(rows, 0);
        store.write(|_| Ok(())).await.unwrap();
    }
}
