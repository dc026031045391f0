//! Benchmarks: the token format, API-key issue and verify, and one refresh rotation,
//! on SQLite (file in WAL mode, and in memory) and on PostgreSQL when
//! `TESSERA_TEST_DATABASE_URL` is set (skipped otherwise).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    missing_docs
)]
// Without a backend only the format benchmarks run; the store helpers go unused.
#![cfg_attr(
    not(any(feature = "sqlite", feature = "postgres")),
    allow(unused_imports, dead_code)
)]

use std::hint::black_box;
#[cfg(feature = "postgres")]
use std::str::FromStr;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use secrecy::{ExposeSecret, SecretString};
#[cfg(feature = "postgres")]
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use token_core::OpaqueKind;
#[cfg(feature = "postgres")]
use token_opaque::PgStore;
#[cfg(feature = "sqlite")]
use token_opaque::SqliteStore;
use token_opaque::{Environment, NewApiKey, OpaqueStore, OpaqueTokens, Prefixes};
use tokio::runtime::Runtime;

#[cfg(feature = "postgres")]
const DATABASE_URL: &str = "TESSERA_TEST_DATABASE_URL";

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn suffix() -> String {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    format!("{:016x}", u64::from_le_bytes(b))
}

fn format(c: &mut Criterion) {
    let p = Prefixes::default();
    let token = p.generate(OpaqueKind::ApiKeyLive).unwrap();
    c.bench_function("format/generate", |b| {
        b.iter(|| black_box(p.generate(OpaqueKind::ApiKeyLive).unwrap()));
    });
    c.bench_function("format/parse", |b| {
        b.iter(|| black_box(p.parse(black_box(token.expose_secret())).unwrap().kind()));
    });
}

fn store_benches(c: &mut Criterion, rt: &Runtime, name: &str, store: Arc<dyn OpaqueStore>) {
    let tokens = OpaqueTokens::new(store);
    let keys = tokens.api_keys();
    let mut group = c.benchmark_group(format!("api_key/{name}"));
    // Each issue goes to an owner of its own: one owner holds at most
    // `max_live_per_owner` keys, and the bound's count is part of what is measured.
    let owner = std::cell::Cell::new(0u64);
    let next_owner = || {
        owner.set(owner.get() + 1);
        format!("acct-{}", owner.get())
    };
    group.bench_function("issue", |b| {
        b.iter(|| {
            rt.block_on(keys.create(NewApiKey::new(next_owner(), "bench", Environment::Live)))
                .unwrap()
        });
    });
    let key = rt
        .block_on(keys.create(NewApiKey::new("acct", "bench", Environment::Live)))
        .unwrap()
        .key;
    group.bench_function("verify", |b| {
        b.iter(|| rt.block_on(keys.verify(key.expose_secret())).unwrap());
    });
    group.bench_function("issue+verify", |b| {
        b.iter(|| {
            rt.block_on(async {
                let k = keys
                    .create(NewApiKey::new(next_owner(), "bench", Environment::Live))
                    .await
                    .unwrap();
                keys.verify(k.key.expose_secret()).await.unwrap()
            })
        });
    });
    group.finish();

    let refresh = tokens.refresh();
    let mut current: SecretString = rt.block_on(refresh.issue("user")).unwrap().token;
    let mut group = c.benchmark_group(format!("refresh/{name}"));
    group.bench_function("rotate", |b| {
        b.iter(|| {
            current = rt
                .block_on(refresh.rotate(current.expose_secret()))
                .unwrap()
                .token;
        });
    });
    group.finish();
}

fn sqlite(c: &mut Criterion) {
    #[cfg(not(feature = "sqlite"))]
    {
        let _ = c;
        eprintln!("!!! SKIPPED SQLite benchmarks: built without the `sqlite` feature");
    }
    #[cfg(feature = "sqlite")]
    sqlite_benches(c);
}

#[cfg(feature = "sqlite")]
fn sqlite_benches(c: &mut Criterion) {
    let rt = runtime();
    let path = std::env::temp_dir().join(format!("tessera-opaque-bench-{}.db", suffix()));
    let file = rt.block_on(SqliteStore::open(&path)).unwrap();
    store_benches(c, &rt, "sqlite-file", Arc::new(file.clone()));
    rt.block_on(file.close());
    for s in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{s}", path.display()));
    }
    let memory = rt.block_on(SqliteStore::memory()).unwrap();
    store_benches(c, &rt, "sqlite-memory", Arc::new(memory));
}

fn postgres(c: &mut Criterion) {
    #[cfg(not(feature = "postgres"))]
    {
        let _ = c;
        eprintln!("!!! SKIPPED PostgreSQL benchmarks: built without the `postgres` feature");
    }
    #[cfg(feature = "postgres")]
    postgres_benches(c);
}

#[cfg(feature = "postgres")]
fn postgres_benches(c: &mut Criterion) {
    let Some(url) = std::env::var(DATABASE_URL).ok().filter(|u| !u.is_empty()) else {
        eprintln!(
            "!!! SKIPPED PostgreSQL benchmarks: {DATABASE_URL} is not set (`cargo xtask services up`)"
        );
        return;
    };
    let rt = runtime();
    let schema = format!("bench_{}", suffix());
    let admin = rt
        .block_on(PgPoolOptions::new().max_connections(1).connect(&url))
        .unwrap();
    rt.block_on(sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&admin))
        .unwrap();
    let options = PgConnectOptions::from_str(&url)
        .unwrap()
        .options([("search_path", schema.as_str())]);
    let pool = rt
        .block_on(
            PgPoolOptions::new()
                .max_connections(4)
                .connect_with(options),
        )
        .unwrap();
    let store = rt.block_on(PgStore::open(pool.clone())).unwrap();
    store_benches(c, &rt, "postgres", Arc::new(store));
    rt.block_on(pool.close());
    rt.block_on(sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&admin))
        .unwrap();
    rt.block_on(admin.close());
}

criterion_group!(benches, format, sqlite, postgres);
criterion_main!(benches);
