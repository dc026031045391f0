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

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, OptionalExtension as _, Row, params};
use token_core::{OpaqueKind, Timestamp};

use crate::error::{DbErrorKind, Error, Result};
use crate::format::{kind_from_name, kind_name};
use crate::hash::TokenHash;
use crate::store::logic::{self, Decision, RefreshTokenRow};
use crate::store::migrate::{MIGRATIONS_TABLE, Migration, SQLITE};
use crate::store::{
    ApiKeyRecord, NewRefreshToken, OneTimeRecord, PurgeReport, RefreshFamilyRecord, RotateOutcome,
    RotateRequest, SessionRecord, UserRevocation,
};
use crate::util::{add_capped, ts, ts_opt};

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

/// Prepared statements cached per connection (the store uses about forty).
const STATEMENT_CACHE: usize = 64;

/// An [`crate::OpaqueStore`] on SQLite.
///
/// Cheap to clone: clones share the connections.
#[derive(Clone)]
pub struct SqliteStore {
    inner: std::sync::Arc<Inner>,
}

struct Inner {
    /// `None` once closed.
    writer: Mutex<Option<Connection>>,
    /// In-process writers wait here, asynchronously, for their turn.
    write_queue: tokio::sync::Mutex<()>,
    /// Read connections of a file database; `None` for an in-memory one, whose reads
    /// use the writer.
    readers: Option<Readers>,
}

struct Readers {
    path: PathBuf,
    /// Idle connections; `None` once closed.
    idle: Mutex<Option<Vec<Connection>>>,
    max_idle: usize,
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
                Err(e) if is_busy(&e) => backoff.wait().await?,
                other => break other?,
            }
        };
        // Readers open lazily: pin the file itself, not a path relative to a working
        // directory that may change.
        let path = std::fs::canonicalize(path).map_err(|e| {
            Error::Database(crate::error::DbError::new(
                DbErrorKind::Io,
                None,
                format!("cannot resolve the database path: {}", e.kind()),
            ))
        })?;
        let store = Self::from_parts(
            writer,
            Some(Readers {
                path,
                idle: Mutex::new(Some(Vec::new())),
                max_idle: options.readers,
            }),
        );
        store.migrate().await?;
        Ok(store)
    }

    /// A private in-memory database (one connection; gone when the last clone of the
    /// store is dropped or closed), with the migrations applied. For tests, examples
    /// and single-process tools.
    ///
    /// # Errors
    /// [`crate::Error::Database`] or [`crate::Error::Migration`].
    pub async fn memory() -> Result<Self> {
        let conn = Connection::open_in_memory()?;
        configure(&conn)?;
        let store = Self::from_parts(conn, None);
        store.migrate().await?;
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
        self.write(|conn| {
            conn.execute_batch(MIGRATIONS_DDL)?;
            let mut stmt = conn.prepare(&format!(
                "SELECT version, checksum FROM {MIGRATIONS_TABLE} ORDER BY version"
            ))?;
            let applied = stmt
                .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            check_not_newer(&applied)?;
            for m in SQLITE {
                apply_migration(conn, m, &applied)?;
            }
            Ok(())
        })
        .await
    }

    /// Runs `body` in a write transaction: `BEGIN IMMEDIATE`, then `COMMIT` if `body`
    /// returns `Ok`, `ROLLBACK` if it returns `Err`.
    async fn write<T>(&self, body: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let _turn = self.inner.write_queue.lock().await;
        let mut backoff = Backoff::new();
        loop {
            {
                let guard = lock(&self.inner.writer);
                let conn = guard.as_ref().ok_or_else(closed)?;
                if !conn.is_autocommit() {
                    // Only a panic inside a transaction could leave one open.
                    conn.execute_batch("ROLLBACK")?;
                }
                match conn.prepare_cached("BEGIN IMMEDIATE")?.execute([]) {
                    Ok(_) => return finish(conn, body),
                    Err(e) => {
                        let e = Error::from(e);
                        if !is_busy(&e) {
                            return Err(e);
                        }
                    }
                }
            }
            backoff.wait().await?;
        }
    }

    /// Runs the read-only `query` on a read connection, retrying while the file is
    /// locked (reads are side-effect free).
    async fn read<T>(&self, mut query: impl FnMut(&Connection) -> Result<T>) -> Result<T> {
        let mut backoff = Backoff::new();
        loop {
            let outcome = match &self.inner.readers {
                None => {
                    let guard = lock(&self.inner.writer);
                    let conn = guard.as_ref().ok_or_else(closed)?;
                    query(conn)
                }
                Some(readers) => {
                    let conn = readers.take()?;
                    let outcome = query(&conn);
                    readers.put_back(conn);
                    outcome
                }
            };
            match outcome {
                Err(e) if is_busy(&e) => backoff.wait().await?,
                other => return other,
            }
        }
    }
}

impl Readers {
    fn take(&self) -> Result<Connection> {
        let pooled = lock(&self.idle).as_mut().ok_or_else(closed)?.pop();
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
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn closed() -> Error {
    Error::Database(crate::error::DbError::new(
        DbErrorKind::PoolClosed,
        None,
        "store closed".to_owned(),
    ))
}

fn is_busy(e: &Error) -> bool {
    matches!(e, Error::Database(d) if d.kind() == DbErrorKind::Busy)
}

/// Commits after `body` succeeds, rolls back after it fails (or if the commit fails,
/// or if `body` panics).
fn finish<T>(conn: &Connection, body: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    let guard = RollbackOnExit(conn);
    let outcome = body(conn).and_then(|v| {
        conn.prepare_cached("COMMIT")?.execute([])?;
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

/// Waits between attempts on a locked database, off the runtime's worker threads.
struct Backoff {
    deadline: Instant,
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(1);
    const MAX: Duration = Duration::from_millis(25);

    fn new() -> Self {
        Self {
            deadline: Instant::now() + BUSY_TIMEOUT,
            next: Self::FIRST,
        }
    }

    /// Sleeps before the next attempt, or fails once [`BUSY_TIMEOUT`] has passed.
    async fn wait(&mut self) -> Result<()> {
        let now = Instant::now();
        if now >= self.deadline {
            return Err(Error::Database(crate::error::DbError::new(
                DbErrorKind::Busy,
                None,
                format!(
                    "the database stayed locked by another connection for {} s",
                    BUSY_TIMEOUT.as_secs()
                ),
            )));
        }
        let pause = self.next.min(self.deadline - now);
        self.next = (self.next * 2).min(Self::MAX);
        // A blocking-pool sleep needs no timer driver in the caller's runtime.
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                if rt
                    .spawn_blocking(move || std::thread::sleep(pause))
                    .await
                    .is_err()
                {
                    // The blocking pool is gone (the runtime is shutting down): pause
                    // here rather than retry without pausing.
                    std::thread::sleep(pause);
                }
            }
            Err(_) => std::thread::sleep(pause),
        }
        Ok(())
    }
}

// ---- connections ------------------------------------------------------------------

const MIGRATIONS_DDL: &str = "CREATE TABLE IF NOT EXISTS tessera_opaque_migrations (\
    version INTEGER PRIMARY KEY, description TEXT NOT NULL, checksum BLOB NOT NULL, \
    applied_at INTEGER NOT NULL)";

/// Settings every connection gets: foreign keys, no sleeping inside SQLite, a
/// statement cache large enough for every statement of the store.
fn configure(conn: &Connection) -> Result<()> {
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(Duration::ZERO)?;
    Ok(())
}

/// Opens the writer connection and switches the file to WAL. Fails with
/// [`DbErrorKind::Busy`] at once if another process holds the lock (the caller backs
/// off and tries again).
fn open_writer(path: &Path, durability: Durability) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    configure(&conn)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
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
    conn.pragma_update(None, "synchronous", synchronous)?;
    // After a checkpoint, a write-ahead log grown by a burst is cut back to 64 MiB.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    Ok(conn)
}

fn open_reader(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    configure(&conn)?;
    conn.pragma_update(None, "query_only", "ON")?;
    Ok(conn)
}

/// Refuses a database migrated by a newer version of this library: its schema may
/// hold data this version would mishandle.
fn check_not_newer(applied: &[(i64, Vec<u8>)]) -> Result<()> {
    match applied.iter().map(|(v, _)| *v).max() {
        Some(newest) if newest > crate::store::SCHEMA_VERSION => Err(Error::Migration(format!(
            "the database is at schema version {newest}, newer than this library's {}",
            crate::store::SCHEMA_VERSION
        ))),
        _ => Ok(()),
    }
}

fn apply_migration(conn: &Connection, m: &Migration, applied: &[(i64, Vec<u8>)]) -> Result<()> {
    match applied.iter().find(|(v, _)| *v == m.version) {
        Some((_, checksum)) if *checksum == m.checksum() => Ok(()),
        Some(_) => Err(Error::Migration(format!(
            "applied migration {} ({}) differs from the one this library embeds",
            m.version, m.description
        ))),
        None => {
            conn.execute_batch(m.sql)?;
            conn.execute(
                &format!(
                    "INSERT INTO {MIGRATIONS_TABLE} (version, description, checksum, applied_at) \
                     VALUES (?1, ?2, ?3, ?4)"
                ),
                params![
                    m.version,
                    m.description,
                    m.checksum(),
                    token_core::Clock::now(&token_core::SystemClock).unix_seconds()
                ],
            )?;
            Ok(())
        }
    }
}

// ---- rows -------------------------------------------------------------------------

fn kind_str(kind: OpaqueKind) -> Result<&'static str> {
    kind_name(kind).ok_or(Error::InvalidInput("unknown token kind"))
}

fn secs(t: Option<Timestamp>) -> Option<i64> {
    t.map(Timestamp::unix_seconds)
}

/// The stored hash from the digest and pepper-id columns at `digest` and `digest + 1`.
fn hash_at(row: &Row<'_>, digest: usize) -> Result<TokenHash> {
    let bytes: Vec<u8> = row.get(digest)?;
    let pepper: Option<String> = row.get(digest + 1)?;
    TokenHash::from_stored(&bytes, pepper.as_deref())
}

fn kind_at(row: &Row<'_>, i: usize) -> Result<OpaqueKind> {
    let kind: String = row.get(i)?;
    kind_from_name(&kind).ok_or(Error::Integrity("unknown kind in a row"))
}

/// An API key from the columns of `api_key_cols!()`.
fn api_key_from(row: &Row<'_>) -> Result<ApiKeyRecord> {
    let scopes: String = row.get(6)?;
    Ok(ApiKeyRecord {
        id: row.get(0)?,
        hash: hash_at(row, 1)?,
        kind: kind_at(row, 3)?,
        owner_id: row.get(4)?,
        name: row.get(5)?,
        scopes: serde_json::from_str(&scopes)
            .map_err(|_| Error::Integrity("scopes are not a JSON list of strings"))?,
        created_at: ts(row.get(7)?)?,
        expires_at: ts_opt(row.get(8)?)?,
        last_used_at: ts_opt(row.get(9)?)?,
        revoked_at: ts_opt(row.get(10)?)?,
        replaced_by: row.get(11)?,
    })
}

/// A family from the columns of `family_cols!()`.
fn family_from(row: &Row<'_>) -> Result<RefreshFamilyRecord> {
    Ok(RefreshFamilyRecord {
        id: row.get(0)?,
        user_id: row.get(1)?,
        created_at: ts(row.get(2)?)?,
        absolute_expires_at: ts(row.get(3)?)?,
        idle_expires_at: ts(row.get(4)?)?,
        current_token_id: row.get(5)?,
        rotated_at: ts_opt(row.get(6)?)?,
        revoked_at: ts_opt(row.get(7)?)?,
        revoke_reason: row.get(8)?,
    })
}

/// A refresh token from the columns of `refresh_cols!()`.
fn refresh_from(row: &Row<'_>) -> Result<RefreshTokenRow> {
    Ok(RefreshTokenRow {
        id: row.get(0)?,
        hash: hash_at(row, 1)?,
        generation: row.get(3)?,
        parent_id: row.get(4)?,
        used_at: ts_opt(row.get(5)?)?,
        successor_id: row.get(6)?,
        successor_sealed: row.get(7)?,
        grace_reuses: row.get(8)?,
    })
}

/// A one-time token from the columns of `one_time_cols!()`.
fn one_time_from(row: &Row<'_>) -> Result<OneTimeRecord> {
    Ok(OneTimeRecord {
        id: row.get(0)?,
        hash: hash_at(row, 1)?,
        kind: kind_at(row, 3)?,
        user_id: row.get(4)?,
        data: row.get(5)?,
        created_at: ts(row.get(6)?)?,
        expires_at: ts(row.get(7)?)?,
    })
}

/// A session from the columns of `session_cols!()`.
fn session_from(row: &Row<'_>) -> Result<SessionRecord> {
    Ok(SessionRecord {
        id: row.get(0)?,
        hash: hash_at(row, 1)?,
        user_id: row.get(3)?,
        data: row.get(4)?,
        created_at: ts(row.get(5)?)?,
        last_seen_at: ts(row.get(6)?)?,
        idle_expires_at: ts(row.get(7)?)?,
        absolute_expires_at: ts(row.get(8)?)?,
    })
}

/// The first row of `sql` with `params`, decoded by `decode`.
fn one<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    decode: impl FnOnce(&Row<'_>) -> Result<T>,
) -> Result<Option<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    rows.next()?.map(decode).transpose()
}

/// Every row of `sql` with `params`, decoded by `decode`.
fn all<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    decode: impl Fn(&Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(decode(row)?);
    }
    Ok(out)
}

/// Runs a statement; the number of rows it changed.
fn run(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<u64> {
    let changed = conn.prepare_cached(sql)?.execute(params)?;
    Ok(u64::try_from(changed).unwrap_or(u64::MAX))
}

const INSERT_API_KEY: &str = concat!(
    "INSERT INTO opaque_api_keys (",
    api_key_cols!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
);

fn insert_api_key(conn: &Connection, key: &ApiKeyRecord) -> Result<()> {
    let scopes = serde_json::to_string(&key.scopes)
        .map_err(|_| Error::InvalidInput("scopes do not serialize"))?;
    run(
        conn,
        INSERT_API_KEY,
        params![
            key.id,
            key.hash.digest().as_slice(),
            key.hash.pepper_str(),
            kind_str(key.kind)?,
            key.owner_id,
            key.name,
            scopes,
            key.created_at.unix_seconds(),
            secs(key.expires_at),
            secs(key.last_used_at),
            secs(key.revoked_at),
            key.replaced_by,
        ],
    )?;
    Ok(())
}

/// Clears the sealed grace-window copies of a family's tokens (once it is revoked).
const CLEAR_SEALED_IN_FAMILY: &str = "UPDATE opaque_refresh_tokens SET successor_sealed = NULL \
     WHERE family_id = ?1 AND successor_sealed IS NOT NULL";

fn rotate_in_tx(conn: &Connection, request: &RotateRequest) -> Result<Result<RotateOutcome>> {
    let digest = request.presented.digest().as_slice();
    let now = request.now;
    // One read of the token row: the transaction already holds the write lock, so
    // nothing can change it before the family is read (PostgreSQL must lock the family
    // first and read the token after).
    let Some((token, family_id)) = one(
        conn,
        concat!(
            "SELECT ",
            refresh_cols!(),
            ", family_id FROM opaque_refresh_tokens WHERE token_hash = ?1 AND kind = 'refresh'"
        ),
        [digest],
        |r| Ok((refresh_from(r)?, r.get::<_, String>(9)?)),
    )?
    else {
        return Err(Error::NotFound);
    };
    let Some(family) = one(
        conn,
        concat!(
            "SELECT ",
            family_cols!(),
            " FROM opaque_refresh_families WHERE id = ?1"
        ),
        [&family_id],
        family_from,
    )?
    else {
        return Err(Error::NotFound);
    };
    match logic::decide_rotation(&family, &token, request) {
        Decision::Fail(e) => Err(e),
        Decision::RevokeForReuse => {
            run(
                conn,
                "UPDATE opaque_refresh_families SET revoked_at = ?1, revoke_reason = 'reuse' \
                 WHERE id = ?2 AND revoked_at IS NULL",
                params![now.unix_seconds(), family.id],
            )?;
            run(conn, CLEAR_SEALED_IN_FAMILY, [&family.id])?;
            // Committed: the revocation stands, and the caller hears why.
            Ok(Err(Error::ReuseDetected))
        }
        Decision::Rotate => rotate_to_successor(conn, request, family, &token).map(Ok),
        Decision::Grace => {
            run(
                conn,
                "UPDATE opaque_refresh_tokens SET grace_reuses = grace_reuses + 1 WHERE id = ?1",
                [&token.id],
            )?;
            let current = one(
                conn,
                "SELECT token_hash, pepper_id, generation FROM opaque_refresh_tokens WHERE id = ?1",
                [&family.current_token_id],
                |r| Ok((hash_at(r, 0)?, r.get::<_, i64>(2)?)),
            )?;
            let Some((successor_hash, generation)) = current else {
                return Err(Error::Integrity("the family's current token is missing"));
            };
            Ok(Ok(RotateOutcome::Grace {
                successor_id: family.current_token_id.clone(),
                family,
                successor_hash,
                sealed_successor: token.successor_sealed.unwrap_or_default(),
                generation,
            }))
        }
    }
}

/// The rotation proper: marks `token` used and makes the requested successor the
/// family's current token.
fn rotate_to_successor(
    conn: &Connection,
    request: &RotateRequest,
    mut family: RefreshFamilyRecord,
    token: &RefreshTokenRow,
) -> Result<RotateOutcome> {
    let now = request.now;
    let successor = &request.successor;
    let marked = run(
        conn,
        "UPDATE opaque_refresh_tokens \
         SET used_at = ?1, successor_id = ?2, successor_sealed = ?3 \
         WHERE id = ?4 AND used_at IS NULL",
        params![
            now.unix_seconds(),
            successor.id,
            request.sealed_successor.as_slice(),
            token.id
        ],
    )?;
    if marked != 1 {
        return Err(Error::Integrity("a locked token changed under the lock"));
    }
    let generation = token.generation.saturating_add(1);
    run(
        conn,
        "INSERT INTO opaque_refresh_tokens \
         (id, family_id, token_hash, pepper_id, kind, generation, parent_id, created_at) \
         VALUES (?1, ?2, ?3, ?4, 'refresh', ?5, ?6, ?7)",
        params![
            successor.id,
            family.id,
            successor.hash.digest().as_slice(),
            successor.hash.pepper_str(),
            generation,
            token.id,
            successor.created_at.unix_seconds()
        ],
    )?;
    let idle = add_capped(now, request.idle_timeout, family.absolute_expires_at);
    run(
        conn,
        "UPDATE opaque_refresh_families \
         SET current_token_id = ?1, idle_expires_at = ?2, rotated_at = ?3 WHERE id = ?4",
        params![
            successor.id,
            idle.unix_seconds(),
            now.unix_seconds(),
            family.id
        ],
    )?;
    // The grandparent's sealed copy of the presented token is no longer
    // needed: the presented token is now the previous one.
    if let Some(parent) = &token.parent_id {
        run(
            conn,
            "UPDATE opaque_refresh_tokens SET successor_sealed = NULL WHERE id = ?1",
            [parent],
        )?;
    }
    family.current_token_id.clone_from(&successor.id);
    family.idle_expires_at = idle;
    family.rotated_at = Some(now);
    Ok(RotateOutcome::Rotated { family, generation })
}

#[async_trait::async_trait]
impl crate::store::OpaqueStore for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    // ---- API keys ---------------------------------------------------------------

    async fn insert_api_key(&self, key: &ApiKeyRecord, max_live: u32) -> Result<()> {
        self.write(|conn| {
            let live: i64 = conn
                .prepare_cached(
                    "SELECT COUNT(*) FROM opaque_api_keys WHERE owner_id = ?1 \
                     AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?2)",
                )?
                .query_row(params![key.owner_id, key.created_at.unix_seconds()], |r| {
                    r.get(0)
                })?;
            if live >= i64::from(max_live) {
                return Err(Error::TooManyApiKeys { limit: max_live });
            }
            insert_api_key(conn, key)
        })
        .await
    }

    async fn find_api_key(
        &self,
        hash: &TokenHash,
        kind: OpaqueKind,
    ) -> Result<Option<ApiKeyRecord>> {
        let kind = kind_str(kind)?;
        self.read(|conn| {
            one(
                conn,
                concat!(
                    "SELECT ",
                    api_key_cols!(),
                    " FROM opaque_api_keys WHERE token_hash = ?1 AND kind = ?2"
                ),
                params![hash.digest().as_slice(), kind],
                api_key_from,
            )
        })
        .await
    }

    async fn get_api_key(&self, owner_id: &str, id: &str) -> Result<Option<ApiKeyRecord>> {
        self.read(|conn| {
            one(
                conn,
                concat!(
                    "SELECT ",
                    api_key_cols!(),
                    " FROM opaque_api_keys WHERE id = ?1 AND owner_id = ?2"
                ),
                [id, owner_id],
                api_key_from,
            )
        })
        .await
    }

    async fn list_api_keys(&self, owner_id: &str) -> Result<Vec<ApiKeyRecord>> {
        self.read(|conn| {
            all(
                conn,
                concat!(
                    "SELECT ",
                    api_key_cols!(),
                    " FROM opaque_api_keys WHERE owner_id = ?1 ORDER BY created_at, id"
                ),
                [owner_id],
                api_key_from,
            )
        })
        .await
    }

    async fn touch_api_key(
        &self,
        id: &str,
        now: Timestamp,
        used_before: Timestamp,
    ) -> Result<bool> {
        self.write(|conn| {
            run(
                conn,
                "UPDATE opaque_api_keys SET last_used_at = ?1 \
                 WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at <= ?3)",
                params![now.unix_seconds(), id, used_before.unix_seconds()],
            )
        })
        .await
        .map(|n| n == 1)
    }

    async fn rehash_api_key(&self, id: &str, old: &TokenHash, new: &TokenHash) -> Result<bool> {
        self.write(|conn| {
            run(
                conn,
                "UPDATE opaque_api_keys SET token_hash = ?1, pepper_id = ?2 \
                 WHERE id = ?3 AND token_hash = ?4",
                params![
                    new.digest().as_slice(),
                    new.pepper_str(),
                    id,
                    old.digest().as_slice()
                ],
            )
        })
        .await
        .map(|n| n == 1)
    }

    async fn revoke_api_key(&self, owner_id: &str, id: &str, now: Timestamp) -> Result<bool> {
        self.write(|conn| {
            run(
                conn,
                "UPDATE opaque_api_keys SET revoked_at = ?1 \
                 WHERE id = ?2 AND owner_id = ?3 AND revoked_at IS NULL",
                params![now.unix_seconds(), id, owner_id],
            )
        })
        .await
        .map(|n| n == 1)
    }

    async fn revoke_api_keys_of_owner(&self, owner_id: &str, now: Timestamp) -> Result<u64> {
        self.write(|conn| {
            run(
                conn,
                "UPDATE opaque_api_keys SET revoked_at = ?1 \
                 WHERE owner_id = ?2 AND revoked_at IS NULL",
                params![now.unix_seconds(), owner_id],
            )
        })
        .await
    }

    async fn roll_api_key(
        &self,
        old_id: &str,
        new: &ApiKeyRecord,
        overlap_until: Timestamp,
        now: Timestamp,
    ) -> Result<ApiKeyRecord> {
        self.write(|conn| {
            let Some(mut old) = one(
                conn,
                concat!(
                    "SELECT ",
                    api_key_cols!(),
                    " FROM opaque_api_keys WHERE id = ?1 AND owner_id = ?2"
                ),
                [old_id, new.owner_id.as_str()],
                api_key_from,
            )?
            else {
                return Err(Error::NotFound);
            };
            if old.revoked_at.is_some() {
                return Err(Error::Revoked);
            }
            if old.expires_at.is_some_and(|e| e <= now) {
                return Err(Error::Expired);
            }
            if old.replaced_by.is_some() {
                return Err(Error::AlreadyRolled);
            }
            let until = old
                .expires_at
                .map_or(overlap_until, |e| e.min(overlap_until));
            run(
                conn,
                "UPDATE opaque_api_keys SET expires_at = ?1, replaced_by = ?2 WHERE id = ?3",
                params![until.unix_seconds(), new.id, old.id],
            )?;
            let mut fresh = new.clone();
            fresh.last_used_at = None;
            fresh.revoked_at = None;
            fresh.replaced_by = None;
            insert_api_key(conn, &fresh)?;
            old.expires_at = Some(until);
            old.replaced_by = Some(new.id.clone());
            Ok(old)
        })
        .await
    }

    // ---- refresh tokens ---------------------------------------------------------

    async fn create_refresh_family(
        &self,
        family: &RefreshFamilyRecord,
        token: &NewRefreshToken,
    ) -> Result<()> {
        self.write(|conn| {
            run(
                conn,
                concat!(
                    "INSERT INTO opaque_refresh_families (",
                    family_cols!(),
                    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, NULL, NULL)"
                ),
                params![
                    family.id,
                    family.user_id,
                    family.created_at.unix_seconds(),
                    family.absolute_expires_at.unix_seconds(),
                    family.idle_expires_at.unix_seconds(),
                    token.id
                ],
            )?;
            run(
                conn,
                "INSERT INTO opaque_refresh_tokens \
                 (id, family_id, token_hash, pepper_id, kind, generation, parent_id, created_at) \
                 VALUES (?1, ?2, ?3, ?4, 'refresh', 0, NULL, ?5)",
                params![
                    token.id,
                    family.id,
                    token.hash.digest().as_slice(),
                    token.hash.pepper_str(),
                    token.created_at.unix_seconds()
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn rotate_refresh(&self, request: &RotateRequest) -> Result<RotateOutcome> {
        self.write(|conn| rotate_in_tx(conn, request)).await?
    }

    async fn find_refresh_family(&self, hash: &TokenHash) -> Result<Option<RefreshFamilyRecord>> {
        self.read(|conn| {
            one(
                conn,
                concat!(
                    "SELECT ",
                    family_cols!(),
                    " FROM opaque_refresh_families WHERE id = (SELECT family_id \
                     FROM opaque_refresh_tokens WHERE token_hash = ?1 AND kind = 'refresh')"
                ),
                [hash.digest().as_slice()],
                family_from,
            )
        })
        .await
    }

    async fn revoke_refresh_family(
        &self,
        user_id: &str,
        family_id: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<bool> {
        self.write(|conn| {
            let revoked = run(
                conn,
                "UPDATE opaque_refresh_families SET revoked_at = ?1, revoke_reason = ?2 \
                 WHERE id = ?3 AND user_id = ?4 AND revoked_at IS NULL",
                params![now.unix_seconds(), reason, family_id, user_id],
            )?;
            // Only a family this call revoked: another user's family is left alone.
            if revoked == 1 {
                run(conn, CLEAR_SEALED_IN_FAMILY, [family_id])?;
            }
            Ok(revoked == 1)
        })
        .await
    }

    async fn list_refresh_families(
        &self,
        user_id: &str,
        now: Timestamp,
    ) -> Result<Vec<RefreshFamilyRecord>> {
        self.read(|conn| {
            all(
                conn,
                concat!(
                    "SELECT ",
                    family_cols!(),
                    " FROM opaque_refresh_families WHERE user_id = ?1 AND revoked_at IS NULL \
                     AND idle_expires_at > ?2 AND absolute_expires_at > ?2 \
                     ORDER BY created_at, id"
                ),
                params![user_id, now.unix_seconds()],
                family_from,
            )
        })
        .await
    }

    // ---- one-time tokens --------------------------------------------------------

    async fn insert_one_time(&self, token: &OneTimeRecord, min_interval: Duration) -> Result<()> {
        let kind = kind_str(token.kind)?;
        let now = token.created_at;
        self.write(|conn| {
            if !min_interval.is_zero() {
                let threshold = now.saturating_sub(min_interval);
                // One statement: take the slot if the last issuance is old enough.
                let took = run(
                    conn,
                    "INSERT INTO opaque_issue_limits (user_id, kind, last_issued_at) \
                     VALUES (?1, ?2, ?3) \
                     ON CONFLICT (user_id, kind) DO UPDATE \
                     SET last_issued_at = excluded.last_issued_at \
                     WHERE opaque_issue_limits.last_issued_at <= ?4",
                    params![
                        token.user_id,
                        kind,
                        now.unix_seconds(),
                        threshold.unix_seconds()
                    ],
                )?;
                if took == 0 {
                    let last: Option<i64> = conn
                        .prepare_cached(
                            "SELECT last_issued_at FROM opaque_issue_limits \
                             WHERE user_id = ?1 AND kind = ?2",
                        )?
                        .query_row([token.user_id.as_str(), kind], |r| r.get(0))
                        .optional()?;
                    let last = ts(last.unwrap_or_else(|| now.unix_seconds()))?;
                    let next = last.checked_add(min_interval).unwrap_or(Timestamp::MAX);
                    return Err(Error::RateLimited {
                        retry_after: next.duration_since(now).max(Duration::from_secs(1)),
                    });
                }
            }
            run(
                conn,
                concat!(
                    "INSERT INTO opaque_one_time_tokens (",
                    one_time_cols!(),
                    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                ),
                params![
                    token.id,
                    token.hash.digest().as_slice(),
                    token.hash.pepper_str(),
                    kind,
                    token.user_id,
                    token.data,
                    token.created_at.unix_seconds(),
                    token.expires_at.unix_seconds()
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn redeem_one_time(
        &self,
        hash: &TokenHash,
        kind: OpaqueKind,
        now: Timestamp,
    ) -> Result<OneTimeRecord> {
        let kind = kind_str(kind)?;
        let digest = hash.digest().as_slice();
        self.write(|conn| {
            let live = one(
                conn,
                concat!(
                    "DELETE FROM opaque_one_time_tokens \
                         WHERE token_hash = ?1 AND kind = ?2 AND expires_at > ?3 RETURNING ",
                    one_time_cols!()
                ),
                params![digest, kind, now.unix_seconds()],
                one_time_from,
            )?;
            if let Some(record) = live {
                return Ok(Ok(record));
            }
            // An expired token is deleted too, and told apart from an unknown one.
            let expired = run(
                conn,
                "DELETE FROM opaque_one_time_tokens WHERE token_hash = ?1 AND kind = ?2",
                params![digest, kind],
            )?;
            Ok(Err(if expired > 0 {
                Error::Expired
            } else {
                Error::NotFound
            }))
        })
        .await?
    }

    async fn delete_one_time_for_user(
        &self,
        user_id: &str,
        kind: Option<OpaqueKind>,
    ) -> Result<u64> {
        let kind = kind.map(kind_str).transpose()?;
        self.write(|conn| match kind {
            Some(kind) => run(
                conn,
                "DELETE FROM opaque_one_time_tokens WHERE user_id = ?1 AND kind = ?2",
                [user_id, kind],
            ),
            None => run(
                conn,
                "DELETE FROM opaque_one_time_tokens WHERE user_id = ?1",
                [user_id],
            ),
        })
        .await
    }

    // ---- sessions ---------------------------------------------------------------

    async fn insert_session(&self, session: &SessionRecord) -> Result<()> {
        self.write(|conn| {
            run(
                conn,
                concat!(
                    "INSERT INTO opaque_sessions (kind, ",
                    session_cols!(),
                    ") VALUES ('session', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                ),
                params![
                    session.id,
                    session.hash.digest().as_slice(),
                    session.hash.pepper_str(),
                    session.user_id,
                    session.data,
                    session.created_at.unix_seconds(),
                    session.last_seen_at.unix_seconds(),
                    session.idle_expires_at.unix_seconds(),
                    session.absolute_expires_at.unix_seconds()
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn find_session(&self, hash: &TokenHash) -> Result<Option<SessionRecord>> {
        self.read(|conn| {
            one(
                conn,
                concat!(
                    "SELECT ",
                    session_cols!(),
                    " FROM opaque_sessions WHERE token_hash = ?1 AND kind = 'session'"
                ),
                [hash.digest().as_slice()],
                session_from,
            )
        })
        .await
    }

    async fn touch_session(
        &self,
        id: &str,
        now: Timestamp,
        idle_expires_at: Timestamp,
        seen_before: Timestamp,
    ) -> Result<bool> {
        self.write(|conn| {
            run(
                conn,
                "UPDATE opaque_sessions SET last_seen_at = ?1, idle_expires_at = ?2 \
                 WHERE id = ?3 AND last_seen_at <= ?4 \
                 AND idle_expires_at > ?1 AND absolute_expires_at > ?1",
                params![
                    now.unix_seconds(),
                    idle_expires_at.unix_seconds(),
                    id,
                    seen_before.unix_seconds()
                ],
            )
        })
        .await
        .map(|n| n == 1)
    }

    async fn set_session_data(&self, id: &str, data: &str) -> Result<bool> {
        self.write(|conn| {
            run(
                conn,
                "UPDATE opaque_sessions SET data = ?1 WHERE id = ?2",
                [data, id],
            )
        })
        .await
        .map(|n| n == 1)
    }

    async fn list_sessions(&self, user_id: &str, now: Timestamp) -> Result<Vec<SessionRecord>> {
        self.read(|conn| {
            all(
                conn,
                concat!(
                    "SELECT ",
                    session_cols!(),
                    " FROM opaque_sessions WHERE user_id = ?1 \
                     AND idle_expires_at > ?2 AND absolute_expires_at > ?2 \
                     ORDER BY created_at, id"
                ),
                params![user_id, now.unix_seconds()],
                session_from,
            )
        })
        .await
    }

    async fn delete_session(&self, user_id: &str, id: &str) -> Result<bool> {
        self.write(|conn| {
            run(
                conn,
                "DELETE FROM opaque_sessions WHERE id = ?1 AND user_id = ?2",
                [id, user_id],
            )
        })
        .await
        .map(|n| n == 1)
    }

    async fn delete_sessions_for_user(&self, user_id: &str, keep: Option<&str>) -> Result<u64> {
        // Session ids are never empty, so "" keeps nothing.
        self.write(|conn| {
            run(
                conn,
                "DELETE FROM opaque_sessions WHERE user_id = ?1 AND id <> ?2",
                [user_id, keep.unwrap_or("")],
            )
        })
        .await
    }

    // ---- housekeeping -----------------------------------------------------------

    async fn revoke_user(&self, user_id: &str, now: Timestamp) -> Result<UserRevocation> {
        self.write(|conn| {
            let refresh_families = run(
                conn,
                "UPDATE opaque_refresh_families SET revoked_at = ?1, revoke_reason = 'user' \
                 WHERE user_id = ?2 AND revoked_at IS NULL",
                params![now.unix_seconds(), user_id],
            )?;
            run(
                conn,
                "UPDATE opaque_refresh_tokens SET successor_sealed = NULL \
                 WHERE successor_sealed IS NOT NULL AND family_id IN \
                 (SELECT id FROM opaque_refresh_families WHERE user_id = ?1)",
                [user_id],
            )?;
            let sessions = run(
                conn,
                "DELETE FROM opaque_sessions WHERE user_id = ?1",
                [user_id],
            )?;
            let one_time_tokens = run(
                conn,
                "DELETE FROM opaque_one_time_tokens WHERE user_id = ?1",
                [user_id],
            )?;
            Ok(UserRevocation {
                refresh_families,
                sessions,
                one_time_tokens,
            })
        })
        .await
    }

    async fn purge_expired(
        &self,
        now: Timestamp,
        rate_limits_before: Timestamp,
    ) -> Result<PurgeReport> {
        let now = now.unix_seconds();
        Ok(PurgeReport {
            one_time_tokens: self
                .purge("opaque_one_time_tokens", "expires_at <= ?1", now)
                .await?,
            sessions: self
                .purge(
                    "opaque_sessions",
                    "idle_expires_at <= ?1 OR absolute_expires_at <= ?1",
                    now,
                )
                .await?,
            // Tokens go with their family (ON DELETE CASCADE), in the same statement.
            refresh_families: self
                .purge(
                    "opaque_refresh_families",
                    "idle_expires_at <= ?1 OR absolute_expires_at <= ?1",
                    now,
                )
                .await?,
            api_keys: self
                .purge(
                    "opaque_api_keys",
                    "expires_at IS NOT NULL AND expires_at <= ?1",
                    now,
                )
                .await?,
            rate_limits: self
                .purge(
                    "opaque_issue_limits",
                    "last_issued_at <= ?1",
                    rate_limits_before.unix_seconds(),
                )
                .await?,
        })
    }
}

/// Rows deleted per purge transaction: a backlog is cleared in short transactions
/// that other writers interleave with, never in one that holds the lock throughout.
const PURGE_BATCH: u64 = 1000;

impl SqliteStore {
    /// Deletes the rows of `table` matching `condition` (with `?1` = `cutoff`), in
    /// transactions of at most [`PURGE_BATCH`] rows. `table` and `condition` are this
    /// module's constants, never input.
    async fn purge(
        &self,
        table: &'static str,
        condition: &'static str,
        cutoff: i64,
    ) -> Result<u64> {
        let sql = format!(
            "DELETE FROM {table} WHERE rowid IN \
             (SELECT rowid FROM {table} WHERE {condition} LIMIT {PURGE_BATCH})"
        );
        let mut total = 0;
        loop {
            let deleted = self.write(|conn| run(conn, &sql, [cutoff])).await?;
            total += deleted;
            if deleted < PURGE_BATCH {
                return Ok(total);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn the_bookkeeping_table_is_the_documented_one() {
        assert!(MIGRATIONS_DDL.contains(&format!("EXISTS {MIGRATIONS_TABLE} (")));
        assert!(check_not_newer(&[(crate::store::SCHEMA_VERSION, Vec::new())]).is_ok());
        assert!(matches!(
            check_not_newer(&[(crate::store::SCHEMA_VERSION + 1, Vec::new())]),
            Err(Error::Migration(_))
        ));
    }

    /// A backlog larger than one batch is purged whole, and counted once.
    #[tokio::test]
    async fn purge_clears_a_backlog_in_batches() {
        use crate::store::OpaqueStore as _;
        let store = SqliteStore::memory().await.unwrap();
        store
            .write(|conn| {
                conn.execute(
                    "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 2500) \
                     INSERT INTO opaque_issue_limits (user_id, kind, last_issued_at) \
                     SELECT 'u' || x, 'k', 10 FROM n",
                    [],
                )?;
                Ok(())
            })
            .await
            .unwrap();
        let t = |s| Timestamp::from_unix_seconds(s).unwrap();
        let report = store.purge_expired(t(100), t(10)).await.unwrap();
        assert_eq!(report.rate_limits, 2500);
        let left: i64 = store
            .read(|conn| {
                Ok(conn.query_row("SELECT count(*) FROM opaque_issue_limits", [], |r| r.get(0))?)
            })
            .await
            .unwrap();
        assert_eq!(left, 0);
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
                )?;
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
                Ok(conn.query_row("SELECT count(*) FROM opaque_issue_limits", [], |r| r.get(0))?)
            })
            .await
            .unwrap();
        assert_eq!(rows, 0);
        store.write(|_| Ok(())).await.unwrap();
    }
}
