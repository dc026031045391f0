//! Revocation across processes: two reference services (`examples/auth_server`), each its
//! own OS process, on one database, one key-encryption key and one Redis. A thousand
//! access tokens are issued first; then each is logged out on A (`POST /logout`) and
//! `GET /me` with it is asked of B until B refuses it. The time from the logout request
//! to B's refusal is measured for every token: p50, p99 and max on stderr, p99 under a
//! second. Loopback only; PostgreSQL when `TESSERA_TEST_DATABASE_URL` is set, otherwise a
//! SQLite file; skipped without `TESSERA_TEST_REDIS_URL` (unless
//! `TESSERA_REQUIRE_SERVICES=1`).
//!
//! The services are the example binary beside this test's directory
//! (`target/<profile>/examples/auth_server`). `cargo test -p token-axum` builds it; for
//! this file alone, build it first:
//!
//! ```text
//! cargo build -p token-axum --example auth_server && cargo test -p token-axum --test propagation -- --nocapture
//! ```
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr,
    clippy::too_many_lines
)]

#[allow(dead_code, unused_imports, unreachable_pub)]
#[path = "../examples/auth_server/main.rs"]
mod auth_server;
mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use secrecy::ExposeSecret as _;
use token_core::test_support::{DATABASE_URL, REDIS_URL, service_url};
use token_policy::keystore::Kek;

use auth_server::{KeyOptions, Options};
use common::{PgSchema, Spawned, http, unique};

const PASSWORD: &str = "correct horse battery";
/// Revocations measured.
const REVOCATIONS: usize = 1000;
/// The services' `--revocation-max-staleness`.
const BOUND: Duration = Duration::from_secs(2);
/// The longest one revocation may take to be refused on B before the test fails.
const EACH: Duration = Duration::from_secs(5);
/// The longest the whole measured loop may take.
const TOTAL: Duration = Duration::from_secs(180);

/// A directory of the test's own: the key-encryption key, the users file and, without
/// PostgreSQL, the SQLite database.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("tessera-propagation-{}", unique()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn kek(&self) -> PathBuf {
        let path = self.0.join("kek");
        std::fs::write(&path, Kek::generate().unwrap().to_paserk().expose_secret()).unwrap();
        path
    }

    /// A users file readable by its owner only.
    fn users(&self) -> PathBuf {
        let path = self.0.join("users.txt");
        std::fs::write(&path, format!("alice:{PASSWORD}\n")).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The `q`-th per-mille of sorted `values`.
fn per_mille(values: &[Duration], q: usize) -> Duration {
    values[(values.len() - 1) * q / 1000]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_logouts_on_one_process_are_refused_by_another_within_a_second() {
    let Some(redis) = service_url(REDIS_URL, "revocation propagation between two processes") else {
        return;
    };
    let dir = TempDir::new();
    let kek = dir.kek();
    let users = dir.users();
    let postgres = match std::env::var(DATABASE_URL) {
        Ok(url) if !url.is_empty() => Some(PgSchema::create(&url).await),
        _ => None,
    };
    let database_url = postgres.as_ref().map_or_else(
        || format!("sqlite://{}", dir.0.join("auth.db").display()),
        |schema| schema.url.clone(),
    );
    let engine = if postgres.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };

    // The issuer, in this process: it creates the key table and the user's id, then
    // logs the user in a thousand times (a session each) without a password check, so
    // the measured loop is propagation alone.
    let (_router, issuer) = auth_server::build(Options {
        database_url: database_url.clone(),
        users: auth_server::parse_users(&format!("alice:{PASSWORD}")).unwrap(),
        keys: Some(KeyOptions {
            kek: kek.clone(),
            rotate_every: None,
            publish_ahead: None,
            refresh_every: None,
        }),
        ..Options::default()
    })
    .await
    .unwrap();
    let alice = issuer.user("alice").unwrap().clone();
    let Ok(Some(claims)) = issuer.claims_for(&alice.id, None) else {
        panic!("alice has claims");
    };
    let mut tokens = Vec::with_capacity(REVOCATIONS);
    for _ in 0..REVOCATIONS {
        let login = issuer.service.login(&alice.id, &claims).await.unwrap();
        tokens.push(login.access.expose_secret().to_owned());
    }

    let bound = format!("{}ms", BOUND.as_millis());
    let args: Vec<&std::ffi::OsStr> = vec![
        "--database-url".as_ref(),
        database_url.as_ref(),
        "--kek-file".as_ref(),
        kek.as_os_str(),
        "--demo-users-file".as_ref(),
        users.as_os_str(),
        "--redis-url".as_ref(),
        redis.as_ref(),
        "--revocation-max-staleness".as_ref(),
        bound.as_ref(),
        "--insecure-cookies".as_ref(),
        "--no-request-log".as_ref(),
    ];
    let a = Spawned::start(&args).await;
    let b = Spawned::start(&args).await;
    assert_ne!(a.pid(), b.pid());
    assert_ne!(a.pid(), std::process::id());
    let (to_a, to_b) = (http(), http());
    let me = |token: &str| to_b.get(b.url("/me")).bearer_auth(token).send();

    let mut latencies = Vec::with_capacity(REVOCATIONS);
    let mut logouts = Vec::with_capacity(REVOCATIONS);
    let started = Instant::now();
    for (i, token) in tokens.iter().enumerate() {
        // Accepted on B before, so a refusal after is the revocation's doing.
        let before = me(token).await.unwrap().status();
        assert_eq!(
            before,
            StatusCode::OK,
            "token {i} refused on B before its logout\n{}",
            b.stderr()
        );
        let t = Instant::now();
        let r = to_a
            .post(a.url("/logout"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::NO_CONTENT,
            "logout {i} on A\n{}",
            a.stderr()
        );
        logouts.push(t.elapsed());
        loop {
            let status = me(token).await.unwrap().status();
            if status == StatusCode::UNAUTHORIZED {
                break;
            }
            assert_eq!(
                status,
                StatusCode::OK,
                "B answered {status} for token {i}\n{}",
                b.stderr()
            );
            assert!(
                t.elapsed() < EACH,
                "logout {i} on A not refused on B in {EACH:?}"
            );
        }
        latencies.push(t.elapsed());
        assert!(
            started.elapsed() < TOTAL,
            "{i} revocations in {TOTAL:?}: the run is bounded"
        );
    }
    let total = started.elapsed();
    // Every token is still refused on both processes at the end.
    for token in tokens.iter().step_by(97) {
        assert_eq!(me(token).await.unwrap().status(), StatusCode::UNAUTHORIZED);
        let r = to_a
            .get(a.url("/me"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }

    latencies.sort();
    logouts.sort();
    eprintln!(
        "revocation between two processes ({engine} + Redis, max staleness {BOUND:?}): \
         logout on A -> refused on B over {} revocations: p50 {:?}, p99 {:?}, max {:?} \
         (the logout call itself: p50 {:?}, p99 {:?}; {:.1} s in all)",
        latencies.len(),
        per_mille(&latencies, 500),
        per_mille(&latencies, 990),
        latencies[latencies.len() - 1],
        per_mille(&logouts, 500),
        per_mille(&logouts, 990),
        total.as_secs_f64()
    );
    assert_eq!(latencies.len(), REVOCATIONS);
    let p99 = per_mille(&latencies, 990);
    assert!(p99 < Duration::from_secs(1), "p99 {p99:?}");

    a.stop().await;
    b.stop().await;
    if let Some(schema) = postgres {
        schema.drop_now().await;
    }
}
