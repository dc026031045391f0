//! DPoP interop: proofs made by an independent client implementation — panva's `dpop`
//! package for JavaScript runtimes (`tests/interop/`, run with Node) — are accepted by
//! the reference service (a bound login, `GET /me`, a refresh, a server nonce), and
//! their tampered variants are refused: a changed `htu` or `htm` under the original
//! signature, a flipped signature byte, a reused `jti`. For ES256 and Ed25519 (RFC
//! 9864's name, which that client writes for EdDSA).
//!
//! Needs `node` and `npm` (the package is installed from `package-lock.json` with
//! `npm ci`); without them the test says SKIPPED, unless `TESSERA_REQUIRE_SERVICES=1`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr
)]

#[allow(dead_code, unused_imports)]
#[path = "../examples/auth_server/main.rs"]
mod auth_server;
mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, COOKIE, WWW_AUTHENTICATE};
use serde_json::{Value, json};
use token_core::SecretBytes;
use token_core::test_support::REQUIRE_SERVICES;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

use auth_server::{App, Options};
use common::{TestServer, http, set_cookie};

const PW: &str = "correct horse battery";
const ORIGIN: &str = "https://auth.example";

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// Whether `program --version` runs.
fn runs(program: &str) -> bool {
    std::process::Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Node with the `dpop` package installed, or `false` after a SKIPPED line (a
/// failure when services are required).
fn node_ready(test: &str) -> bool {
    let required = std::env::var(REQUIRE_SERVICES).as_deref() == Ok("1");
    if !(runs("node") && runs("npm")) {
        assert!(
            !required,
            "{test}: node and npm are required ({REQUIRE_SERVICES}=1)"
        );
        eprintln!("!!! SKIPPED {test}: node or npm is not installed");
        return false;
    }
    let dir = interop_dir();
    if !dir.join("node_modules/dpop/package.json").exists() {
        // From the lock file: the cache first, the registry if need be.
        let install = |offline: bool| {
            let mut c = std::process::Command::new("npm");
            c.args(["ci", "--no-audit", "--no-fund"]).current_dir(&dir);
            if offline {
                c.arg("--offline");
            }
            c.stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !(install(true) || install(false)) {
            assert!(!required, "{test}: `npm ci` failed in {}", dir.display());
            eprintln!("!!! SKIPPED {test}: `npm ci` failed in {}", dir.display());
            return false;
        }
    }
    true
}

/// The Node client: one key pair, a proof a line.
struct NodeClient {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl NodeClient {
    fn start(alg: &str) -> Self {
        let mut child = tokio::process::Command::new("node")
            .arg("proofs.mjs")
            .arg(alg)
            .current_dir(interop_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Self {
            child,
            stdin,
            stdout,
        }
    }

    async fn proof(
        &mut self,
        htm: &str,
        path: &str,
        token: Option<&str>,
        nonce: Option<&str>,
    ) -> String {
        let mut request = json!({"htm": htm, "htu": format!("{ORIGIN}{path}")});
        if let Some(t) = token {
            request["accessToken"] = json!(t);
        }
        if let Some(n) = nonce {
            request["nonce"] = json!(n);
        }
        self.stdin
            .write_all(format!("{request}\n").as_bytes())
            .await
            .unwrap();
        self.stdin.flush().await.unwrap();
        tokio::time::timeout(Duration::from_secs(30), self.stdout.next_line())
            .await
            .expect("the node client answers")
            .unwrap()
            .expect("a proof")
    }

    async fn stop(mut self) {
        drop(self.stdin);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

fn b64d(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

fn b64e(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// `proof` with its payload changed by `edit`, the signature kept.
fn tamper_payload(proof: &str, edit: impl FnOnce(&mut Value)) -> String {
    let parts: Vec<&str> = proof.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&b64d(parts[1])).unwrap();
    edit(&mut claims);
    format!(
        "{}.{}.{}",
        parts[0],
        b64e(&serde_json::to_vec(&claims).unwrap()),
        parts[2]
    )
}

/// `proof` with one signature byte flipped.
fn flip_signature(proof: &str) -> String {
    let (input, sig) = proof.rsplit_once('.').unwrap();
    let mut sig = b64d(sig);
    sig[10] ^= 0x01;
    format!("{input}.{}", b64e(&sig))
}

struct Svc {
    server: TestServer,
    _app: Arc<App>,
    http: reqwest::Client,
}

async fn start(nonce: bool) -> Svc {
    let (router, app) = auth_server::build(Options {
        users: auth_server::parse_users(&format!("alice:{PW}")).unwrap(),
        public_origin: Some(ORIGIN.to_owned()),
        dpop_nonce: nonce.then(|| auth_server::Secret::Shared(SecretBytes::new(vec![3u8; 32]))),
        ..Options::default()
    })
    .await
    .unwrap();
    Svc {
        server: TestServer::start(router).await,
        _app: app,
        http: http(),
    }
}

impl Svc {
    async fn login(&self, proof: &str) -> reqwest::Response {
        self.http
            .post(self.server.url("/login"))
            .header("DPoP", proof)
            .json(&json!({"username": "alice", "password": PW}))
            .send()
            .await
            .unwrap()
    }

    async fn me(&self, token: &str, proof: &str) -> reqwest::Response {
        self.http
            .get(self.server.url("/me"))
            .header(AUTHORIZATION, format!("DPoP {token}"))
            .header("DPoP", proof)
            .send()
            .await
            .unwrap()
    }
}

async fn refused(r: reqwest::Response, description: &str) {
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{description}");
    let challenge = r.headers()[WWW_AUTHENTICATE].to_str().unwrap().to_owned();
    assert!(challenge.starts_with("DPoP "), "{challenge}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_dpop_proof", "{challenge}");
    assert_eq!(body["error_description"], description);
}

async fn accepted_and_tampered_refused(alg: &str) {
    let svc = start(false).await;
    let mut client = NodeClient::start(alg);

    // A bound login, GET /me, a refresh: every proof the client's.
    let r = svc
        .login(&client.proof("POST", "/login", None, None).await)
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{alg}");
    let (cookie, _) = set_cookie(&r, "__Host-refresh").unwrap();
    let cookie = format!("__Host-refresh={cookie}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    let access = body["access_token"].as_str().unwrap().to_owned();
    let proof = client.proof("GET", "/me", Some(&access), None).await;
    let r = svc.me(&access, &proof).await;
    assert_eq!(r.status(), StatusCode::OK, "{alg}");
    let r = svc
        .http
        .post(svc.server.url("/refresh"))
        .header(COOKIE, &cookie)
        .header("DPoP", client.proof("POST", "/refresh", None, None).await)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{alg}");

    // The same proof again: its jti is used.
    refused(svc.me(&access, &proof).await, "proof already used").await;
    // Another htu or htm under the original signature.
    let fresh = client.proof("GET", "/me", Some(&access), None).await;
    let other_uri = tamper_payload(&fresh, |c| c["htu"] = json!(format!("{ORIGIN}/api-keys")));
    refused(svc.me(&access, &other_uri).await, "bad signature").await;
    let other_method = tamper_payload(&fresh, |c| c["htm"] = json!("POST"));
    refused(svc.me(&access, &other_method).await, "bad signature").await;
    // A flipped signature byte.
    refused(
        svc.me(&access, &flip_signature(&fresh)).await,
        "bad signature",
    )
    .await;
    // The untampered proof is still good (nothing above spent its jti).
    assert_eq!(svc.me(&access, &fresh).await.status(), StatusCode::OK);
    // A proof the client made for another URI, correctly signed.
    let elsewhere = client.proof("GET", "/api-keys", Some(&access), None).await;
    refused(
        svc.me(&access, &elsewhere).await,
        "htu is not the request URI",
    )
    .await;

    client.stop().await;
    svc.server.stop().await;
}

#[tokio::test]
async fn proofs_of_an_independent_es256_client_are_accepted_and_tampered_ones_refused() {
    if !node_ready("proofs_of_an_independent_es256_client_are_accepted_and_tampered_ones_refused") {
        return;
    }
    accepted_and_tampered_refused("ES256").await;
}

#[tokio::test]
async fn proofs_of_an_independent_ed25519_client_are_accepted_and_tampered_ones_refused() {
    if !node_ready("proofs_of_an_independent_ed25519_client_are_accepted_and_tampered_ones_refused")
    {
        return;
    }
    accepted_and_tampered_refused("Ed25519").await;
}

#[tokio::test]
async fn an_independent_client_follows_the_server_nonce() {
    if !node_ready("an_independent_client_follows_the_server_nonce") {
        return;
    }
    let svc = start(true).await;
    let mut client = NodeClient::start("ES256");
    let r = svc
        .login(&client.proof("POST", "/login", None, None).await)
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let nonce = r.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "use_dpop_nonce");
    let r = svc
        .login(&client.proof("POST", "/login", None, Some(&nonce)).await)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    let access = body["access_token"].as_str().unwrap().to_owned();
    let r = svc
        .me(
            &access,
            &client
                .proof("GET", "/me", Some(&access), Some(&nonce))
                .await,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    client.stop().await;
    svc.server.stop().await;
}
