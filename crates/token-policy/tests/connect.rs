//! Opening a backend whose server is not there: a refusal fails at once, silence fails
//! after `CONNECT_TIMEOUT`, and each says which backend, where, and which of the two —
//! never the URL's password.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use token_policy::Error;
#[cfg(feature = "redis")]
use token_policy::RedisBlocklist;
#[cfg(feature = "redis")]
use token_policy::config::CONNECT_TIMEOUT;
use token_policy::config::open_store;

fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A server that accepts connections and never says a word.
#[cfg(feature = "redis")]
fn silent_server() -> (std::net::TcpListener, u16) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

fn assert_connect(err: &Error, backend: &str, port: u16, reason: &str) {
    match err {
        Error::Connect {
            backend: b,
            address,
            reason: r,
        } => {
            assert_eq!(*b, backend);
            assert_eq!(address, &format!("127.0.0.1:{port}"));
            assert!(r.contains(reason), "{r}");
        }
        other => panic!("{other:?}"),
    }
    let text = err.to_string();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(
        text.starts_with(&format!("cannot connect to {backend} at 127.0.0.1:{port}")),
        "{text}"
    );
}

#[tokio::test]
async fn a_refused_postgres_connection_fails_at_once() {
    let port = closed_port();
    let started = Instant::now();
    let err = open_store(&format!("postgres://app:hunter2@127.0.0.1:{port}/x"))
        .await
        .err()
        .unwrap();
    let elapsed = started.elapsed();
    assert_connect(&err, "PostgreSQL", port, "connection refused");
    assert!(
        elapsed < Duration::from_secs(2),
        "a refusal took {elapsed:?}"
    );
    eprintln!("postgres refusal reported after {elapsed:?}");
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn silent_servers_time_out_within_the_bound() {
    let (_pg, pg_port) = silent_server();
    let (_redis, redis_port) = silent_server();
    let (_seed, seed_port) = silent_server();
    let pg_url = format!("postgres://app:hunter2@127.0.0.1:{pg_port}/x");
    let redis_url = format!("redis://:hunter2@127.0.0.1:{redis_port}/");
    let seed_url = [format!("redis://:hunter2@127.0.0.1:{seed_port}")];
    let started = Instant::now();
    let (pg, redis, cluster) = tokio::join!(
        open_store(&pg_url),
        RedisBlocklist::connect(&redis_url),
        RedisBlocklist::connect_cluster(&seed_url)
    );
    let elapsed = started.elapsed();
    assert_connect(&pg.err().unwrap(), "PostgreSQL", pg_port, "timed out");
    assert_connect(&redis.err().unwrap(), "Redis", redis_port, "timed out");
    assert_connect(
        &cluster.err().unwrap(),
        "Redis Cluster",
        seed_port,
        "timed out",
    );
    assert!(
        elapsed >= CONNECT_TIMEOUT && elapsed < CONNECT_TIMEOUT + Duration::from_secs(2),
        "timed out after {elapsed:?}"
    );
    eprintln!("silent servers reported after {elapsed:?}");
}

#[tokio::test]
async fn a_malformed_url_is_a_configuration_error() {
    let err = open_store("postgres://[::1").await.err().unwrap();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
}
