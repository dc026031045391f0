//! What a login costs, for the capacity model (docs/SCALING.md):
//!
//! - the password check: Argon2id with the reference service's parameters (the
//!   `argon2` crate's defaults: 19 MiB, two passes, one lane, as
//!   `crates/token-axum/examples/auth_server/passwords.rs` hashes and checks them), its
//!   working memory reused between checks as the service reuses it;
//! - `TokenService::login` on PostgreSQL: an access token signed and a refresh family
//!   written (one database round trip, as `token-policy/tests/operations.rs` counts).
//!
//! Neither has a baseline: they are absolute figures. The PostgreSQL group runs only
//! when `TESSERA_TEST_DATABASE_URL` is set, and says so on stderr when skipped.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    missing_docs
)]

use std::hint::black_box;
use std::str::FromStr;
use std::sync::Arc;

use argon2::{Argon2, Block};
use criterion::{Criterion, criterion_group, criterion_main};
use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use token_opaque::{OpaqueTokens, PgStore};
use token_paseto::{PublicIssuer, SecretKey, V4};
use token_policy::{Policy, TokenService};

fn password_check(c: &mut Criterion) {
    let argon = Argon2::default();
    let mut memory = vec![Block::new(); argon.params().block_count()];
    let salt = [7u8; 16];
    let mut out = [0u8; 32];
    let mut g = c.benchmark_group("login: password check (Argon2id, 19 MiB, 2 passes, 1 lane)");
    g.sample_size(10);
    g.bench_function("tessera", |b| {
        b.iter(|| {
            argon
                .hash_password_into_with_memory(
                    black_box(b"correct horse battery staple"),
                    &salt,
                    &mut out,
                    &mut memory,
                )
                .unwrap();
        });
    });
    g.finish();
}

/// The application claims of the reference service's access tokens.
#[derive(Serialize)]
struct UserClaims {
    role: &'static str,
    scope: &'static str,
}

fn login_postgres(c: &mut Criterion) {
    const DATABASE_URL: &str = "TESSERA_TEST_DATABASE_URL";
    let Some(url) = std::env::var(DATABASE_URL).ok().filter(|u| !u.is_empty()) else {
        eprintln!(
            "!!! SKIPPED TokenService::login on PostgreSQL: {DATABASE_URL} is not set \
             (`cargo xtask services up`)"
        );
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    let schema = format!("bench_{:016x}", u64::from_le_bytes(b));
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
                .max_connections(2)
                .connect_with(options),
        )
        .unwrap();
    let store = rt.block_on(PgStore::open(pool.clone())).unwrap();
    let svc = TokenService::builder(
        Policy::new("https://auth.example", "api"),
        PublicIssuer::new(SecretKey::<V4>::generate().unwrap()),
    )
    .opaque(OpaqueTokens::new(Arc::new(store)))
    .build();
    let claims = UserClaims {
        role: "user",
        scope: "profile payments api-keys",
    };
    let mut g = c.benchmark_group("TokenService::login, PostgreSQL");
    g.sample_size(50);
    g.bench_function("tessera", |b| {
        b.iter(|| {
            rt.block_on(svc.login(black_box("user-42"), &claims))
                .unwrap()
        });
    });
    g.finish();
    drop(svc);
    rt.block_on(pool.close());
    rt.block_on(sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&admin))
        .unwrap();
    rt.block_on(admin.close());
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = password_check, login_postgres
}
criterion_main!(benches);
