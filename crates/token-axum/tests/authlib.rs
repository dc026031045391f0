//! An existing OAuth client library, Python's Authlib, revokes its refresh token at the
//! reference service's `POST /oauth/revoke` (RFC 7009), as a public client: the
//! script `tests/interop/revoke_refresh.py` gets the token from a login here, and the
//! service refuses it afterwards.
//!
//! Needs `python3` with Authlib and requests (`pip install -r
//! tests/interop/requirements.txt`); skipped with a message without them, unless
//! `TESSERA_REQUIRE_SERVICES=1`.
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

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tokio::io::AsyncWriteExt as _;

use common::{TestServer, http, set_cookie};

const ALICE_PW: &str = "correct horse battery";

/// Whether `python3` can import Authlib and requests; a SKIP line (or a failure when
/// services are required) if not.
async fn authlib_available() -> bool {
    let found = tokio::process::Command::new("python3")
        .args(["-c", "import authlib, requests"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var(token_core::test_support::REQUIRE_SERVICES).as_deref() != Ok("1"),
            "python3 with Authlib is missing, but TESSERA_REQUIRE_SERVICES=1 \
             (pip install -r crates/token-axum/tests/interop/requirements.txt)"
        );
        eprintln!(
            "!!! SKIPPED authlib tests: python3 with Authlib and requests is not installed \
             (pip install -r crates/token-axum/tests/interop/requirements.txt)"
        );
    }
    found
}

/// Runs the script with `token` on its standard input; its exit status and output.
async fn revoke_with_authlib(url: &str, token: &str) -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/revoke_refresh.py");
    let mut child = tokio::process::Command::new("python3")
        .arg(script)
        .arg(url)
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(token.as_bytes()).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the script finishes within a minute")
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn authlib_revokes_its_refresh_token() {
    if !authlib_available().await {
        return;
    }
    let (router, app) = auth_server::build(auth_server::Options {
        users: auth_server::parse_users(&format!("alice:{ALICE_PW}")).unwrap(),
        insecure_cookies: true,
        mailer: auth_server::Mailer::Memory(Arc::new(Mutex::new(Vec::new()))),
        ..auth_server::Options::default()
    })
    .await
    .unwrap();
    let server = TestServer::start(router).await;
    let cookie = app.cookie.name().to_owned();
    let login = http()
        .post(server.url("/login"))
        .json(&json!({ "username": "alice", "password": ALICE_PW }))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let refresh = set_cookie(&login, &cookie).unwrap().0.to_owned();
    let refresh_with = |token: String| {
        http()
            .post(server.url("/refresh"))
            .header("cookie", format!("{cookie}={token}"))
            .send()
    };
    // The token works, and rotates: the library gets the newest one.
    let rotated = refresh_with(refresh).await.unwrap();
    assert_eq!(rotated.status(), StatusCode::OK);
    let current = set_cookie(&rotated, &cookie).unwrap().0.to_owned();

    let (ok, output) = revoke_with_authlib(&server.url("/oauth/revoke"), &current).await;
    assert!(ok, "Authlib's revocation failed: {output}");
    assert_eq!(output.trim(), "200");

    // Refused afterwards.
    let after = refresh_with(current.clone()).await.unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    // And the library's second attempt is still a 200 (RFC 7009: nothing left to do).
    let (ok, output) = revoke_with_authlib(&server.url("/oauth/revoke"), &current).await;
    assert!(ok, "{output}");
    server.stop().await;
}
