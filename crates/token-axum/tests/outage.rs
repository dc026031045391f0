//! The reference service when its revocation backend goes away: a Redis server of the
//! test's own on a loopback port, killed and restarted while the service runs. Logout
//! must say it failed (`503`), never `204` with the access token still live.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr
)]

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/auth_server/main.rs"]
mod auth_server;
mod common;

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, COOKIE, SET_COOKIE};
use serde_json::{Value, json};
use token_core::test_support::REQUIRE_SERVICES;

use auth_server::{Mailer, Options};
use common::{TestServer, http};

const PASSWORD: &str = "correct horse battery";

/// A private `redis-server` on `port`, killed when dropped.
struct Redis(Child);

impl Redis {
    fn start(port: u16) -> Self {
        let mut child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Self(child);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("redis-server did not start on port {port}");
    }

    fn kill(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn redis_server_available() -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var(REQUIRE_SERVICES).as_deref() != Ok("1"),
            "redis-server is not installed but {REQUIRE_SERVICES}=1"
        );
        eprintln!("!!! SKIPPED revocation outage test: redis-server is not installed");
    }
    found
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_answers_503_while_revocation_is_down_and_works_after() {
    if !redis_server_available() {
        return;
    }
    let port = free_port();
    let redis = Redis::start(port);
    let (router, _app) = auth_server::build(Options {
        database_url: "sqlite::memory:".into(),
        redis_url: Some(format!("redis://127.0.0.1:{port}/")),
        users: auth_server::parse_users(&format!("alice:{PASSWORD}")).unwrap(),
        insecure_cookies: true,
        mailer: Mailer::Memory(Arc::new(Mutex::new(Vec::new()))),
        max_api_keys: 5,
        ..Options::default()
    })
    .await
    .unwrap();
    let server = TestServer::start(router).await;
    let client = http();
    let login = |client: reqwest::Client| {
        let url = server.url("/login");
        async move {
            let r = client
                .post(url)
                .json(&json!({ "username": "alice", "password": PASSWORD }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            let refresh = common::set_cookie(&r, "refresh").unwrap().0.to_owned();
            let body: Value = r.json().await.unwrap();
            (body["access_token"].as_str().unwrap().to_owned(), refresh)
        }
    };
    let logout = |access: String, refresh: String| {
        let request = client
            .post(server.url("/logout"))
            .header(AUTHORIZATION, format!("Bearer {access}"))
            .header(COOKIE, format!("refresh={refresh}"));
        async move { request.send().await.unwrap() }
    };
    let me = |access: String| {
        let request = client.get(server.url("/me")).bearer_auth(access);
        async move { request.send().await.unwrap().status() }
    };

    let (access, refresh) = login(client.clone()).await;
    assert_eq!(me(access.clone()).await, StatusCode::OK);

    redis.kill();
    let r = logout(access.clone(), refresh.clone()).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        r.headers().get(SET_COOKIE).is_none(),
        "a failed logout keeps the cookie, so it can be retried"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(!body.to_string().contains(&port.to_string()), "{body}");

    // Back up: the retry revokes both, and the access token is refused at once.
    let _redis = Redis::start(port);
    let mut status = StatusCode::SERVICE_UNAVAILABLE;
    for _ in 0..50 {
        status = logout(access.clone(), refresh.clone()).await.status();
        if status != StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(me(access).await, StatusCode::UNAUTHORIZED);
    let r = client
        .post(server.url("/refresh"))
        .header(COOKIE, format!("refresh={refresh}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    server.stop().await;
}
