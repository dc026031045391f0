//! Opaque-token storage against the same SQL issued raw, on the same database, in the
//! same run: API-key verification on SQLite (file, WAL) holding 1 000 000 keys, and
//! one refresh rotation as a hand-written transaction.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use secrecy::ExposeSecret;
use sha2::Digest;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use token_opaque::{Environment, NewApiKey, OpaqueTokens, SqliteStore};

/// Keys in the table besides the one verified.
const FILLER: u32 = 1_000_000;

fn api_key_verify(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("tessera-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("keys.db");
    let (tokens, raw, pool) = rt.block_on(async {
        let store = SqliteStore::open(&path).await.unwrap();
        let tokens = OpaqueTokens::new(Arc::new(store));
        let created = tokens
            .api_keys()
            .create(NewApiKey::new("owner", "bench", Environment::Live).scopes(["read"]))
            .await
            .unwrap();
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(
                SqliteConnectOptions::new()
                    .filename(&path)
                    .journal_mode(SqliteJournalMode::Wal),
            )
            .await
            .unwrap();
        sqlx::query(
            "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < ?1) \
             INSERT INTO opaque_api_keys (id, token_hash, kind, owner_id, name, scopes, created_at) \
             SELECT 'fill' || x, randomblob(32), 'api_key_live', 'o' || (x % 1000), 'k', '[]', 0 FROM n",
        )
        .bind(FILLER)
        .execute(&pool)
        .await
        .unwrap();
        // The first verify writes last_used_at; later ones are pure reads.
        tokens.api_keys().verify(created.key.expose_secret()).await.unwrap();
        (tokens, created.key, pool)
    });
    let hash: [u8; 32] = sha2::Sha256::digest(raw.expose_secret().as_bytes()).into();

    let mut g = c.benchmark_group("API-key verify, SQLite WAL, 1M keys");
    g.bench_function("tessera", |b| {
        b.iter(|| {
            rt.block_on(tokens.api_keys().verify(black_box(raw.expose_secret())))
                .unwrap()
        });
    });
    g.bench_function("baseline-sqlx-prepared-point-lookup", |b| {
        b.iter(|| {
            rt.block_on(
                sqlx::query_as::<_, (String, String, String, String, i64, Option<i64>, Option<i64>, Option<i64>)>(
                    "SELECT id, owner_id, name, scopes, created_at, expires_at, last_used_at, revoked_at \
                     FROM opaque_api_keys WHERE token_hash = ?1",
                )
                .bind(black_box(&hash[..]))
                .fetch_one(&pool),
            )
            .unwrap()
        });
    });
    g.finish();
    rt.block_on(pool.close());
    drop(tokens);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50);
    targets = api_key_verify
}
criterion_main!(benches);
