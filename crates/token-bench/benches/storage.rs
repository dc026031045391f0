//! Opaque-token storage against the same SQL issued raw, on the same database, in the
//! same run:
//!
//! - API-key verification on SQLite (file, WAL) holding 1 000 000 keys, against a
//!   prepared point lookup through `rusqlite` on the same table.
//! - A warm API-key verification through `TokenService` on PostgreSQL (the in-process
//!   cache of verified keys, the revocation state replicated from Redis), against the
//!   same SQLite point lookup: the cache must cost no more than twice an in-process
//!   database read.
//! - One refresh rotation on SQLite (file, WAL) and on PostgreSQL, against the same
//!   transaction (the same statements, in the same order, with the same locks) issued
//!   by hand: `rusqlite` on SQLite, `sqlx` on PostgreSQL (the driver tessera uses there).
//! - Rotation throughput on PostgreSQL: eight families rotated at once on eight pool
//!   connections (no baseline; rotations per second = 8 ÷ the row's time).
//!
//! tessera's operations are driven with `block_on` on a current-thread runtime, the
//! cheapest way to run one future to completion; in a server they run inside a task.
//! The PostgreSQL groups run only when `TESSERA_TEST_DATABASE_URL` (and, for the
//! API-key group, `TESSERA_TEST_REDIS_URL`) is set (`cargo xtask bench` starts the
//! services); each says so on stderr when skipped.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::print_stderr,
    clippy::type_complexity,
    missing_docs
)]

use std::hint::black_box;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use secrecy::ExposeSecret;
use sha2::Digest;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use token_opaque::{Environment, NewApiKey, OpaqueStore, OpaqueTokens, PgStore, SqliteStore};
use token_paseto::{PublicIssuer, SecretKey, V4};
use token_policy::{Policy, RedisBlocklist, ReplicaOptions, ReplicatedBlocklist, TokenService};

/// Keys in the table besides the one verified.
const FILLER: u32 = 1_000_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn temp_db(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tessera-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

fn raw_sqlite(path: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    conn.pragma_update(None, "foreign_keys", "ON").unwrap();
    conn.set_prepared_statement_cache_capacity(64);
    conn
}

fn api_key_verify(c: &mut Criterion) {
    let rt = runtime();
    let path = temp_db("keys.db");
    let (tokens, raw) = rt.block_on(async {
        let store = SqliteStore::open(&path).await.unwrap();
        let tokens = OpaqueTokens::new(Arc::new(store));
        let created = tokens
            .api_keys()
            .create(NewApiKey::new("owner", "bench", Environment::Live).scopes(["read"]))
            .await
            .unwrap();
        (tokens, created.key)
    });
    let conn = raw_sqlite(&path);
    conn.execute(
        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < ?1) \
         INSERT INTO opaque_api_keys (id, token_hash, kind, owner_id, name, scopes, created_at) \
         SELECT 'fill' || x, randomblob(32), 'api_key_live', 'o' || (x % 1000), 'k', '[]', 0 FROM n",
        [FILLER],
    )
    .unwrap();
    // The first verify writes last_used_at; later ones are pure reads.
    rt.block_on(tokens.api_keys().verify(raw.expose_secret()))
        .unwrap();
    let hash: [u8; 32] = sha2::Sha256::digest(raw.expose_secret().as_bytes()).into();

    let baseline = || sqlite_point_lookup(&conn, &hash);
    let mut g = c.benchmark_group("API-key verify, SQLite WAL, 1M keys");
    g.bench_function("tessera", |b| {
        b.iter(|| {
            rt.block_on(tokens.api_keys().verify(black_box(raw.expose_secret())))
                .unwrap()
        });
    });
    g.bench_function("baseline-rusqlite-prepared-point-lookup", |b| {
        b.iter(baseline);
    });
    g.finish();
    api_key_verify_postgres_warm(c, &rt, &baseline);
    drop(conn);
    drop(tokens);
    remove_db(&path);
}

/// The SQLite group's baseline: the prepared point lookup of one key among a million,
/// every column read.
fn sqlite_point_lookup(
    conn: &rusqlite::Connection,
    hash: &[u8; 32],
) -> (
    String,
    Vec<u8>,
    Option<String>,
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<String>,
) {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, token_hash, pepper_id, kind, owner_id, name, scopes, created_at, \
             expires_at, last_used_at, revoked_at, replaced_by \
             FROM opaque_api_keys WHERE token_hash = ?1 AND kind = ?2",
        )
        .unwrap();
    stmt.query_row((black_box(&hash[..]), "api_key_live"), |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
            r.get(8)?,
            r.get(9)?,
            r.get(10)?,
            r.get(11)?,
        ))
    })
    .unwrap()
}

/// A schema of its own on the test PostgreSQL, and a pool whose connections use it.
fn postgres_schema(
    rt: &tokio::runtime::Runtime,
    url: &str,
) -> (sqlx::PgPool, sqlx::PgPool, String) {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    let schema = format!("bench_{:016x}", u64::from_le_bytes(b));
    let admin = rt
        .block_on(PgPoolOptions::new().max_connections(1).connect(url))
        .unwrap();
    rt.block_on(sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&admin))
        .unwrap();
    let options = PgConnectOptions::from_str(url)
        .unwrap()
        .options([("search_path", schema.as_str())]);
    let pool = rt
        .block_on(
            PgPoolOptions::new()
                .max_connections(2)
                .connect_with(options),
        )
        .unwrap();
    (admin, pool, schema)
}

fn drop_postgres_schema(rt: &tokio::runtime::Runtime, admin: &sqlx::PgPool, schema: &str) {
    rt.block_on(sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(admin))
        .unwrap();
    rt.block_on(admin.close());
}

/// API-key verification through `TokenService` on PostgreSQL with the in-process cache
/// of verified keys (`cache_api_keys`) and the revocation state replicated from Redis:
/// a warm verification reads no database and asks Redis nothing. Measured against the
/// SQLite group's baseline (a raw in-process point lookup), in the same run. The
/// replica's feed and the pool run on a worker thread of their own runtime; the
/// measured calls are driven with `block_on` on the current-thread runtime, as in the
/// SQLite group. Skipped, loudly, without `TESSERA_TEST_DATABASE_URL` and
/// `TESSERA_TEST_REDIS_URL`.
fn api_key_verify_postgres_warm<R>(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    baseline: &dyn Fn() -> R,
) {
    const DATABASE_URL: &str = "TESSERA_TEST_DATABASE_URL";
    const REDIS_URL: &str = "TESSERA_TEST_REDIS_URL";
    let var = |name: &str| std::env::var(name).ok().filter(|u| !u.is_empty());
    let (Some(db), Some(redis)) = (var(DATABASE_URL), var(REDIS_URL)) else {
        eprintln!(
            "!!! SKIPPED API-key verify, PostgreSQL, warm: {DATABASE_URL} and {REDIS_URL} \
             must both be set (`cargo xtask services up`)"
        );
        return;
    };
    let background = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (admin, pool, schema) = postgres_schema(&background, &db);
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    let prefix = format!("bench-{:016x}:", u64::from_le_bytes(b));
    let (svc, raw) = background.block_on(async {
        let store = PgStore::open(pool.clone()).await.unwrap();
        assert_eq!(store.backend(), "postgres");
        let source = RedisBlocklist::connect(&redis)
            .await
            .unwrap()
            .with_prefix(prefix);
        let replica = ReplicatedBlocklist::start(source, ReplicaOptions::default())
            .await
            .unwrap();
        let svc = TokenService::builder(
            Policy::new("https://auth.example", "api"),
            PublicIssuer::new(SecretKey::<V4>::generate().unwrap()),
        )
        .opaque(OpaqueTokens::new(Arc::new(store)))
        .blocklist(Arc::new(replica))
        .cache_api_keys(Duration::from_secs(300))
        .build();
        let created = svc
            .issue_api_key(NewApiKey::new("owner", "bench", Environment::Live).scopes(["read"]))
            .await
            .unwrap();
        // The first verification reads the database and fills the cache.
        svc.verify_api_key(created.key.expose_secret())
            .await
            .unwrap();
        (svc, created.key)
    });

    let mut g = c.benchmark_group("API-key verify, PostgreSQL, warm");
    g.bench_function("tessera", |b| {
        b.iter(|| {
            rt.block_on(svc.verify_api_key(black_box(raw.expose_secret())))
                .unwrap()
        });
    });
    g.bench_function("baseline-rusqlite-prepared-point-lookup", |b| {
        b.iter(baseline);
    });
    g.finish();
    drop(svc);
    background.block_on(pool.close());
    drop_postgres_schema(&background, &admin, &schema);
    background.shutdown_background();
}

/// A refresh chain driven by hand: the digest of the family's current token.
struct RawChain {
    current: [u8; 32],
    next: u64,
}

impl RawChain {
    fn new(first_token: &str) -> Self {
        Self {
            current: sha2::Sha256::digest(first_token.as_bytes()).into(),
            next: 0,
        }
    }

    /// The next successor: an id and a digest, different on every call.
    fn successor(&mut self) -> (String, [u8; 32]) {
        self.next += 1;
        let id = format!("raw{}", self.next);
        let digest = sha2::Sha256::digest(id.as_bytes()).into();
        (id, digest)
    }
}

const SELECT_FAMILY_ID: &str =
    "SELECT family_id FROM opaque_refresh_tokens WHERE token_hash = $1 AND kind = 'refresh'";
const SELECT_FAMILY: &str = "SELECT id, user_id, created_at, absolute_expires_at, \
     idle_expires_at, current_token_id, rotated_at, revoked_at, revoke_reason \
     FROM opaque_refresh_families WHERE id = $1";
const SELECT_TOKEN: &str = "SELECT id, token_hash, pepper_id, generation, parent_id, used_at, \
     successor_id, successor_sealed, grace_reuses \
     FROM opaque_refresh_tokens WHERE token_hash = $1 AND kind = 'refresh'";
const SELECT_TOKEN_AND_FAMILY_ID: &str = "SELECT id, token_hash, pepper_id, generation, \
     parent_id, used_at, successor_id, successor_sealed, grace_reuses, family_id \
     FROM opaque_refresh_tokens WHERE token_hash = $1 AND kind = 'refresh'";
const MARK_USED: &str = "UPDATE opaque_refresh_tokens \
     SET used_at = $1, successor_id = $2, successor_sealed = $3 WHERE id = $4 AND used_at IS NULL";
const INSERT_SUCCESSOR: &str = "INSERT INTO opaque_refresh_tokens \
     (id, family_id, token_hash, pepper_id, kind, generation, parent_id, created_at) \
     VALUES ($1, $2, $3, NULL, 'refresh', $4, $5, $6)";
const ADVANCE_FAMILY: &str = "UPDATE opaque_refresh_families \
     SET current_token_id = $1, idle_expires_at = $2, rotated_at = $3 WHERE id = $4";
const CLEAR_PARENT: &str = "UPDATE opaque_refresh_tokens SET successor_sealed = NULL WHERE id = $1";

/// The sealed successor tessera stores (nonce, ciphertext, tag), as raw bytes.
const SEALED: [u8; 67] = [7; 67];

fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// One rotation by hand on SQLite: tessera's transaction, statement for statement.
fn raw_rotate_sqlite(conn: &rusqlite::Connection, chain: &mut RawChain) {
    let now = now();
    let (successor, digest) = chain.successor();
    conn.prepare_cached("BEGIN IMMEDIATE")
        .unwrap()
        .execute([])
        .unwrap();
    // tessera's SQLite transaction reads the token row once (the write lock is held
    // from BEGIN IMMEDIATE), then the family.
    let (token_id, generation, parent, family_id): (String, i64, Option<String>, String) = conn
        .prepare_cached(SELECT_TOKEN_AND_FAMILY_ID)
        .unwrap()
        .query_row([&chain.current[..]], |r| {
            let _: (
                Vec<u8>,
                Option<String>,
                Option<i64>,
                Option<String>,
                Option<Vec<u8>>,
                i64,
            ) = (
                r.get(1)?,
                r.get(2)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
            );
            Ok((r.get(0)?, r.get(3)?, r.get(4)?, r.get(9)?))
        })
        .unwrap();
    let (absolute, current): (i64, String) = conn
        .prepare_cached(SELECT_FAMILY)
        .unwrap()
        .query_row([&family_id], |r| {
            let _: (String, i64, i64, Option<i64>, Option<i64>, Option<String>) = (
                r.get(1)?,
                r.get(2)?,
                r.get(4)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
            );
            Ok((r.get(3)?, r.get(5)?))
        })
        .unwrap();
    assert_eq!(token_id, current);
    let marked = conn
        .prepare_cached(MARK_USED)
        .unwrap()
        .execute(rusqlite::params![now, successor, &SEALED[..], token_id])
        .unwrap();
    assert_eq!(marked, 1);
    conn.prepare_cached(INSERT_SUCCESSOR)
        .unwrap()
        .execute(rusqlite::params![
            successor,
            family_id,
            &digest[..],
            generation + 1,
            token_id,
            now
        ])
        .unwrap();
    conn.prepare_cached(ADVANCE_FAMILY)
        .unwrap()
        .execute(rusqlite::params![
            successor,
            (now + 14 * 86_400).min(absolute),
            now,
            family_id
        ])
        .unwrap();
    if let Some(parent) = parent {
        conn.prepare_cached(CLEAR_PARENT)
            .unwrap()
            .execute([parent])
            .unwrap();
    }
    conn.prepare_cached("COMMIT").unwrap().execute([]).unwrap();
    chain.current = digest;
}

/// One rotation by hand on PostgreSQL through sqlx: tessera's transaction, statement
/// for statement, with the family locked `FOR UPDATE`.
async fn raw_rotate_postgres(pool: &sqlx::PgPool, chain: &mut RawChain) {
    use sqlx::Row as _;
    let now = now();
    let (successor, digest) = chain.successor();
    let mut tx = pool.begin().await.unwrap();
    let family_id: String = sqlx::query_scalar(SELECT_FAMILY_ID)
        .bind(&chain.current[..])
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    let family = sqlx::query(&format!("{SELECT_FAMILY} FOR UPDATE"))
        .bind(&family_id)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    let absolute: i64 = family.get(3);
    let current: String = family.get(5);
    let token = sqlx::query(SELECT_TOKEN)
        .bind(&chain.current[..])
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    let token_id: String = token.get(0);
    let generation: i64 = token.get(3);
    let parent: Option<String> = token.get(4);
    let _: (Vec<u8>, Option<Vec<u8>>, i64) = (token.get(1), token.get(7), token.get(8));
    assert_eq!(token_id, current);
    let marked = sqlx::query(MARK_USED)
        .bind(now)
        .bind(&successor)
        .bind(&SEALED[..])
        .bind(&token_id)
        .execute(&mut *tx)
        .await
        .unwrap();
    assert_eq!(marked.rows_affected(), 1);
    sqlx::query(INSERT_SUCCESSOR)
        .bind(&successor)
        .bind(&family_id)
        .bind(&digest[..])
        .bind(generation + 1)
        .bind(&token_id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(ADVANCE_FAMILY)
        .bind(&successor)
        .bind((now + 14 * 86_400).min(absolute))
        .bind(now)
        .bind(&family_id)
        .execute(&mut *tx)
        .await
        .unwrap();
    if let Some(parent) = parent {
        sqlx::query(CLEAR_PARENT)
            .bind(parent)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    chain.current = digest;
}

/// Rotates `tokens`' chain (tessera) and a second family by hand, alternately sampled.
fn rotation_group(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    group: &str,
    tokens: &OpaqueTokens,
    baseline: &str,
    mut raw_rotate: impl FnMut(&mut RawChain),
) {
    let (mut current, first_raw) = rt.block_on(async {
        let a = tokens.refresh().issue("bench-user").await.unwrap();
        let b = tokens.refresh().issue("bench-raw").await.unwrap();
        (a.token, b.token)
    });
    let mut chain = RawChain::new(first_raw.expose_secret());
    let mut g = c.benchmark_group(group);
    g.bench_function("tessera", |b| {
        b.iter(|| {
            let rotated = rt
                .block_on(tokens.refresh().rotate(current.expose_secret()))
                .unwrap();
            current = rotated.token;
        });
    });
    g.bench_function(baseline, |b| b.iter(|| raw_rotate(&mut chain)));
    g.finish();
}

fn refresh_rotation_sqlite(c: &mut Criterion) {
    let rt = runtime();
    let path = temp_db("refresh.db");
    let store = rt.block_on(SqliteStore::open(&path)).unwrap();
    let tokens = OpaqueTokens::new(Arc::new(store.clone()));
    let conn = raw_sqlite(&path);
    rotation_group(
        c,
        &rt,
        "refresh rotation, SQLite WAL",
        &tokens,
        "baseline-rusqlite-transaction",
        |chain| raw_rotate_sqlite(&conn, chain),
    );
    drop(conn);
    rt.block_on(store.close());
    remove_db(&path);
}

/// Families rotated at once in the throughput group.
const CONCURRENT: usize = 8;

/// Throughput of one PostgreSQL primary: `CONCURRENT` families rotated at once, each on
/// a pool connection of its own, one rotation per family per iteration (so a row's time
/// is that of `CONCURRENT` rotations; rotations per second = `CONCURRENT` / time). Client
/// and server share this machine's cores.
fn concurrent_rotations_postgres(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    url: &str,
    schema: &str,
) {
    let options = PgConnectOptions::from_str(url)
        .unwrap()
        .options([("search_path", schema)]);
    let pool = rt
        .block_on(
            PgPoolOptions::new()
                .max_connections(u32::try_from(CONCURRENT).unwrap())
                .connect_with(options),
        )
        .unwrap();
    let store = rt.block_on(PgStore::open(pool.clone())).unwrap();
    let tokens = OpaqueTokens::new(Arc::new(store));
    let mut current: Vec<secrecy::SecretString> = rt.block_on(async {
        let mut out = Vec::new();
        for i in 0..CONCURRENT {
            out.push(
                tokens
                    .refresh()
                    .issue(&format!("bench-concurrent-{i}"))
                    .await
                    .unwrap()
                    .token,
            );
        }
        out
    });
    let mut g = c.benchmark_group(format!(
        "refresh rotation, PostgreSQL, {CONCURRENT} families at once"
    ));
    g.bench_function("tessera", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut set = tokio::task::JoinSet::new();
                for (i, token) in current.iter().enumerate() {
                    let tokens = tokens.clone();
                    let token = token.expose_secret().to_owned();
                    set.spawn(
                        async move { (i, tokens.refresh().rotate(&token).await.unwrap().token) },
                    );
                }
                while let Some(done) = set.join_next().await {
                    let (i, token) = done.unwrap();
                    current[i] = token;
                }
            });
        });
    });
    g.finish();
    rt.block_on(pool.close());
}

fn refresh_rotation_postgres(c: &mut Criterion) {
    const DATABASE_URL: &str = "TESSERA_TEST_DATABASE_URL";
    let Some(url) = std::env::var(DATABASE_URL).ok().filter(|u| !u.is_empty()) else {
        eprintln!(
            "!!! SKIPPED refresh rotation on PostgreSQL: {DATABASE_URL} is not set \
             (`cargo xtask services up`)"
        );
        return;
    };
    let rt = runtime();
    let (admin, pool, schema) = postgres_schema(&rt, &url);
    let store = rt.block_on(PgStore::open(pool.clone())).unwrap();
    assert_eq!(store.backend(), "postgres");
    let tokens = OpaqueTokens::new(Arc::new(store));
    rotation_group(
        c,
        &rt,
        "refresh rotation, PostgreSQL",
        &tokens,
        "baseline-sqlx-transaction",
        |chain| rt.block_on(raw_rotate_postgres(&pool, chain)),
    );
    rt.block_on(pool.close());
    concurrent_rotations_postgres(c, &rt, &url, &schema);
    drop_postgres_schema(&rt, &admin, &schema);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50);
    targets = api_key_verify, refresh_rotation_sqlite, refresh_rotation_postgres
}
criterion_main!(benches);
