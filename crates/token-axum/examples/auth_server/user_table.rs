//! The users' ids, kept in the service's database so that they outlive a restart.
//!
//! A user's id is the subject of its tokens and the owner of its refresh families and
//! API keys: a new id at each start would leave every stored credential pointing at
//! nobody. Table `auth_server_users (name, id)` lives beside the token tables (SQLite
//! file or PostgreSQL); an in-memory database starts empty each time, and so do its ids.

use std::collections::HashMap;

use anyhow::Context as _;

use super::{PathBuf, random_hex};

/// Where the ids are kept.
pub(crate) enum UserTable {
    /// `sqlite::memory:`: nothing outlives the process, ids are new each start.
    Memory,
    /// `sqlite://PATH`.
    Sqlite(PathBuf),
    /// `postgres://…`.
    Postgres(String),
}

/// The ids of the configured users, and the users the table knows that are no longer
/// configured.
pub(crate) struct Synced {
    /// name → id, for every configured name.
    pub(crate) ids: HashMap<String, String>,
    /// (name, id) of the users removed from the configuration; their rows stay until
    /// [`UserTable::forget`].
    pub(crate) removed: Vec<(String, String)>,
}

const CREATE_SQLITE: &str = "CREATE TABLE IF NOT EXISTS auth_server_users (
    name TEXT PRIMARY KEY NOT NULL,
    id TEXT NOT NULL UNIQUE
)";
const CREATE_POSTGRES: &str = "CREATE TABLE IF NOT EXISTS auth_server_users (
    name TEXT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE
)";
/// Serialises the table's creation and updates among services starting at once on one
/// PostgreSQL database (`pg_advisory_xact_lock`).
const POSTGRES_LOCK: i64 = 0x7465_7373_6572_6175; // "tesserau"

fn new_id() -> anyhow::Result<String> {
    Ok(format!("usr_{}", random_hex(12)?))
}

impl UserTable {
    /// The table of the database at `url` (the URL forms `--database-url` takes).
    pub(crate) fn for_url(url: &str) -> Self {
        if let Some(rest) = url.strip_prefix("sqlite://") {
            let path = rest.split_once('?').map_or(rest, |(path, _)| path);
            Self::Sqlite(PathBuf::from(path))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::Postgres(url.to_owned())
        } else {
            Self::Memory
        }
    }

    /// Gives every name in `names` its id: the one the table holds, or a new one it
    /// then holds. Names the table holds that `names` lacks are reported as removed.
    pub(crate) async fn sync(&self, names: &[String]) -> anyhow::Result<Synced> {
        match self {
            Self::Memory => {
                let mut ids = HashMap::new();
                for name in names {
                    ids.insert(name.clone(), new_id()?);
                }
                Ok(Synced {
                    ids,
                    removed: Vec::new(),
                })
            }
            Self::Sqlite(path) => {
                let (path, names) = (path.clone(), names.to_vec());
                tokio::task::spawn_blocking(move || sqlite_sync(&path, &names))
                    .await
                    .context("the user table task stopped")?
            }
            Self::Postgres(url) => postgres_sync(url, names).await,
        }
    }

    /// Drops the rows of `ids` (users whose credentials have been revoked).
    pub(crate) async fn forget(&self, ids: Vec<String>) -> anyhow::Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        match self {
            Self::Memory => Ok(()),
            Self::Sqlite(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                    let mut conn = sqlite_open(&path)?;
                    let tx =
                        conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                    for id in &ids {
                        tx.execute("DELETE FROM auth_server_users WHERE id = ?1", [id])?;
                    }
                    tx.commit()?;
                    Ok(())
                })
                .await
                .context("the user table task stopped")?
                .context("cannot update the user table")
            }
            Self::Postgres(url) => {
                let pool = postgres_pool(url).await?;
                let result = sqlx::query("DELETE FROM auth_server_users WHERE id = ANY($1)")
                    .bind(&ids)
                    .execute(&pool)
                    .await;
                pool.close().await;
                result.context("cannot update the user table")?;
                Ok(())
            }
        }
    }
}

fn sqlite_open(path: &std::path::Path) -> anyhow::Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // The token store may hold the write lock a moment (another process on the file).
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(conn)
}

fn sqlite_sync(path: &std::path::Path, names: &[String]) -> anyhow::Result<Synced> {
    let mut conn = sqlite_open(path)?;
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .context("cannot lock the user table")?;
    tx.execute_batch(CREATE_SQLITE)
        .context("cannot create the user table")?;
    let known: HashMap<String, String> = {
        let mut statement = tx.prepare("SELECT name, id FROM auth_server_users")?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        rows.collect::<Result<_, _>>()
            .context("cannot read the user table")?
    };
    let synced = reconcile(&known, names)?;
    for name in names {
        if !known.contains_key(name) {
            if let Some(id) = synced.ids.get(name) {
                tx.execute(
                    "INSERT INTO auth_server_users (name, id) VALUES (?1, ?2)",
                    [name, id],
                )?;
            }
        }
    }
    tx.commit().context("cannot update the user table")?;
    Ok(synced)
}

async fn postgres_pool(url: &str) -> anyhow::Result<sqlx::PgPool> {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect(url)
        .await
        .context("cannot connect to the database for the user table")
}

async fn postgres_sync(url: &str, names: &[String]) -> anyhow::Result<Synced> {
    let pool = postgres_pool(url).await?;
    let result = async {
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(POSTGRES_LOCK)
            .execute(&mut *tx)
            .await?;
        sqlx::query(CREATE_POSTGRES).execute(&mut *tx).await?;
        let known: HashMap<String, String> =
            sqlx::query_as::<_, (String, String)>("SELECT name, id FROM auth_server_users")
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .collect();
        let synced = reconcile(&known, names)?;
        for name in names {
            if !known.contains_key(name) {
                if let Some(id) = synced.ids.get(name) {
                    sqlx::query("INSERT INTO auth_server_users (name, id) VALUES ($1, $2)")
                        .bind(name)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        tx.commit().await?;
        anyhow::Ok(synced)
    }
    .await;
    pool.close().await;
    result.context("cannot update the user table")
}

/// The ids of `names` given the table's `known` rows (new ones for new names), and the
/// known rows `names` lacks.
fn reconcile(known: &HashMap<String, String>, names: &[String]) -> anyhow::Result<Synced> {
    let mut ids = HashMap::new();
    for name in names {
        let id = match known.get(name) {
            Some(id) => id.clone(),
            None => new_id()?,
        };
        ids.insert(name.clone(), id);
    }
    let mut removed: Vec<(String, String)> = known
        .iter()
        .filter(|(name, _)| !ids.contains_key(*name))
        .map(|(name, id)| (name.clone(), id.clone()))
        .collect();
    removed.sort();
    Ok(Synced { ids, removed })
}
