//! `tokenctl` against database servers that are not there: the refusal is reported at
//! once, naming the backend and its address, with the usage exit code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::{Duration, Instant};

use common::tokenctl;

#[test]
fn a_refused_postgres_connection_fails_fast_with_the_right_words() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let url = format!("postgres://app:hunter2@127.0.0.1:{port}/x");
    let started = Instant::now();
    let run = tokenctl(&["api-key", "list", "--db", &url, "--owner", "alice"]);
    let elapsed = started.elapsed();
    let line = run.fails(2);
    assert!(
        line.contains(&format!(
            "cannot connect to PostgreSQL at 127.0.0.1:{port}: connection refused"
        )),
        "{line}"
    );
    assert!(
        !line.contains("hunter2") && !line.contains("revocation"),
        "{line}"
    );
    // Process start included; the refusal itself is reported in milliseconds.
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
}
