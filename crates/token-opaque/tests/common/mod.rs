//! Test harness: a controllable clock and one store per backend, isolated per test.
#![allow(dead_code, unreachable_pub)]

#[cfg(feature = "sqlite")]
use std::path::PathBuf;
#[cfg(feature = "postgres")]
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

#[cfg(feature = "postgres")]
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use token_core::{Clock, Timestamp};
#[cfg(feature = "postgres")]
use token_opaque::PgStore;
#[cfg(feature = "sqlite")]
use token_opaque::SqliteStore;
use token_opaque::{Config, OpaqueStore, OpaqueTokens, TokenHasher};

/// A clock the test moves by hand.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

/// Where every test's clock starts (2023-11-14).
pub const START: i64 = 1_700_000_000;

impl ManualClock {
    pub fn new() -> Arc<Self> {
        Arc::new(Self(AtomicI64::new(START)))
    }

    pub fn advance(&self, d: Duration) {
        self.0
            .fetch_add(i64::try_from(d.as_secs()).unwrap(), Ordering::SeqCst);
    }

    pub fn advance_secs(&self, s: u64) {
        self.advance(Duration::from_secs(s));
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_seconds(self.0.load(Ordering::SeqCst)).unwrap()
    }
}

enum Cleanup {
    Nothing,
    #[cfg(feature = "sqlite")]
    Files(PathBuf),
    #[cfg(feature = "postgres")]
    Schema {
        admin: sqlx::PgPool,
        schema: String,
        url: String,
    },
}

#[cfg(feature = "sqlite")]
fn remove_sqlite_files(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.to_path_buf().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

/// One backend, fresh for one test.
pub struct Harness {
    pub store: Arc<dyn OpaqueStore>,
    pub clock: Arc<ManualClock>,
    #[cfg(feature = "sqlite")]
    sqlite: Option<SqliteStore>,
    #[cfg(feature = "postgres")]
    pg: Option<PgStore>,
    cleanup: Cleanup,
}

fn random_suffix() -> String {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    format!("{:016x}", u64::from_le_bytes(b))
}

impl Harness {
    #[cfg(feature = "sqlite")]
    pub async fn sqlite_memory() -> Self {
        let store = SqliteStore::memory().await.unwrap();
        Self {
            store: Arc::new(store.clone()),
            clock: ManualClock::new(),
            sqlite: Some(store),
            #[cfg(feature = "postgres")]
            pg: None,
            cleanup: Cleanup::Nothing,
        }
    }

    #[cfg(feature = "sqlite")]
    pub fn sqlite_path() -> PathBuf {
        std::env::temp_dir().join(format!("tessera-opaque-test-{}.db", random_suffix()))
    }

    #[cfg(feature = "sqlite")]
    pub async fn sqlite_file() -> Self {
        let path = Self::sqlite_path();
        let store = SqliteStore::open(&path).await.unwrap();
        Self {
            store: Arc::new(store.clone()),
            clock: ManualClock::new(),
            sqlite: Some(store),
            #[cfg(feature = "postgres")]
            pg: None,
            cleanup: Cleanup::Files(path),
        }
    }

    /// A PostgreSQL store in a schema of its own, or `None` (after a loud SKIP line)
    /// when no server is configured.
    #[cfg(feature = "postgres")]
    pub async fn postgres(test: &str) -> Option<Self> {
        let url =
            token_core::test_support::service_url(token_core::test_support::DATABASE_URL, test)?;
        let admin = PgPoolOptions::new()
            .max_connections(2)
            .connect(&url)
            .await
            .unwrap();
        let schema = format!("t_{}", random_suffix());
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&admin)
            .await
            .unwrap();
        let options = PgConnectOptions::from_str(&url)
            .unwrap()
            .options([("search_path", schema.as_str())]);
        let pool = PgPoolOptions::new()
            .max_connections(40)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(options)
            .await
            .unwrap();
        let store = PgStore::open(pool).await.unwrap();
        Some(Self {
            store: Arc::new(store.clone()),
            clock: ManualClock::new(),
            #[cfg(feature = "sqlite")]
            sqlite: None,
            pg: Some(store),
            cleanup: Cleanup::Schema { admin, schema, url },
        })
    }

    pub fn tokens(&self) -> OpaqueTokens {
        self.tokens_with(Config::default())
    }

    pub fn tokens_with(&self, config: Config) -> OpaqueTokens {
        self.tokens_full(config, TokenHasher::sha256())
    }

    pub fn tokens_full(&self, config: Config, hasher: TokenHasher) -> OpaqueTokens {
        OpaqueTokens::builder(self.store.clone())
            .clock(self.clock.clone())
            .config(config)
            .hasher(hasher)
            .build()
            .unwrap()
    }

    /// Opens `n` connections up front (PostgreSQL), so that racing tasks start their
    /// transactions together instead of queueing behind connection set-up.
    #[cfg_attr(not(feature = "postgres"), allow(clippy::unused_async))]
    pub async fn warm_up(&self, n: usize) {
        #[cfg(feature = "postgres")]
        if let Some(p) = &self.pg {
            let mut held = Vec::with_capacity(n);
            for _ in 0..n {
                held.push(p.pool().acquire().await.unwrap());
            }
        }
        #[cfg(not(feature = "postgres"))]
        let _ = n;
    }

    /// Closes the store's connections: every later query fails.
    pub async fn close_store(&self) {
        #[cfg(feature = "sqlite")]
        if let Some(s) = &self.sqlite {
            s.close().await;
        }
        #[cfg(feature = "postgres")]
        if let Some(p) = &self.pg {
            p.pool().close().await;
        }
    }

    /// A second, independent store on the same SQLite file (another process, in
    /// effect).
    #[cfg(feature = "sqlite")]
    pub async fn second_sqlite_store(&self) -> Option<SqliteStore> {
        let Cleanup::Files(path) = &self.cleanup else {
            return None;
        };
        Some(SqliteStore::open(path).await.unwrap())
    }

    /// The database file of a file-backed SQLite harness.
    #[cfg(feature = "sqlite")]
    pub fn sqlite_file_path(&self) -> Option<&std::path::Path> {
        let Cleanup::Files(path) = &self.cleanup else {
            return None;
        };
        Some(path)
    }

    /// Cleans up after a test that passed.
    pub async fn finish(mut self) {
        self.close_store().await;
        match std::mem::replace(&mut self.cleanup, Cleanup::Nothing) {
            Cleanup::Nothing => {}
            #[cfg(feature = "sqlite")]
            Cleanup::Files(path) => remove_sqlite_files(&path),
            #[cfg(feature = "postgres")]
            Cleanup::Schema { admin, schema, .. } => {
                sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                    .execute(&admin)
                    .await
                    .unwrap();
                admin.close().await;
            }
        }
    }
}

/// Cleans up after a test that failed (panicked before `finish`).
impl Drop for Harness {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.cleanup, Cleanup::Nothing) {
            Cleanup::Nothing => {}
            #[cfg(feature = "sqlite")]
            Cleanup::Files(path) => remove_sqlite_files(&path),
            #[cfg(feature = "postgres")]
            Cleanup::Schema { schema, url, .. } => {
                // No async in Drop: a thread with a runtime of its own drops the schema.
                let _ = std::thread::spawn(move || {
                    use sqlx::Connection as _;
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async {
                        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
                        sqlx::query("SET lock_timeout = '5s'")
                            .execute(&mut conn)
                            .await
                            .unwrap();
                        let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                            .execute(&mut conn)
                            .await;
                    });
                })
                .join();
            }
        }
    }
}
