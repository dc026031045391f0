//! A real gateway in front of an application: nginx with `auth_request` (and njs)
//! asking the reference service's `POST /oauth/introspect` about each request's
//! bearer token, configured by the shipped example `examples/nginx/`.
//!
//! A valid token reaches the application (with its subject passed on); a missing,
//! invalid or revoked one gets `401` from nginx; an answer is cached for at most the
//! configured seconds, so a revoked token passes for at most that long.
//!
//! Needs `nginx` and its njs module (Debian: `nginx`, `libnginx-mod-http-js`); skipped
//! with a message without them, unless `TESSERA_REQUIRE_SERVICES=1`. nginx runs as the
//! current user in the foreground (`master_process off`), with every file it writes in
//! a temporary directory, listening on loopback only, and is killed when the test
//! ends.
#![cfg(unix)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr,
    clippy::too_many_lines
)]

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/auth_server/main.rs"]
mod auth_server;
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use token_opaque::{Environment, NewApiKey};

use common::{TestServer, http, unique};

const NJS_MODULE: &str = "/usr/lib/nginx/modules/ngx_http_js_module.so";
/// How long nginx caches an introspection answer (`proxy_cache_valid 200 2s`).
const CACHE_SECONDS: u64 = 2;
/// The longest an answer is served from nginx's cache: nginx keeps time in whole
/// seconds and ends an entry once its last valid second is over, so up to one more.
const CACHE_BOUND: Duration = Duration::from_secs(CACHE_SECONDS + 1);
/// Surely within the cache window: nginx keeps an entry at least this long.
const SURELY_CACHED: Duration = Duration::from_millis(CACHE_SECONDS * 1000 - 500);
/// Slack for the scheduler, past the bound.
const SLACK: Duration = Duration::from_millis(400);
const ALICE_PW: &str = "correct horse battery";

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/nginx")
        .join(name)
}

/// The nginx binary, or `None` after a SKIP line (a failure when services are
/// required).
fn nginx_binary() -> Option<PathBuf> {
    let found = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    let missing = match &found {
        None => Some("nginx is not installed"),
        Some(_) if !Path::new(NJS_MODULE).exists() => {
            Some("nginx's njs module is not installed (libnginx-mod-http-js)")
        }
        Some(_) => None,
    };
    if let Some(why) = missing {
        assert!(
            std::env::var(token_core::test_support::REQUIRE_SERVICES).as_deref() != Ok("1"),
            "{why}, but TESSERA_REQUIRE_SERVICES=1"
        );
        eprintln!("!!! SKIPPED gateway tests: {why}");
        return None;
    }
    found
}

/// nginx in the foreground, killed on drop.
struct Nginx {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Nginx {
    fn start(binary: &Path, auth: &TestServer, app: &TestServer, api_key: &str) -> Self {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("nginx-{}", unique()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(
            example("tessera-introspect.js"),
            dir.join("tessera-introspect.js"),
        )
        .unwrap();
        // A free loopback port for nginx.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let template = std::fs::read_to_string(example("tessera-introspect.conf")).unwrap();
        let config = template
            .replace("{{PREFIX}}", dir.to_str().unwrap())
            .replace("{{SCRIPT_DIR}}", dir.to_str().unwrap())
            .replace("{{LISTEN}}", &format!("127.0.0.1:{port}"))
            .replace("{{APP}}", &app.addr.to_string())
            .replace("{{AUTH_SERVICE}}", &auth.addr.to_string())
            .replace("{{INTROSPECTION_API_KEY}}", api_key)
            .replace("{{CACHE_SECONDS}}", &CACHE_SECONDS.to_string());
        assert!(!config.contains("{{"), "a placeholder is left: {config}");
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, config).unwrap();
        let child = Command::new(binary)
            .arg("-p")
            .arg(&dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(&conf)
            .args(["-g", "daemon off; master_process off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut nginx = Self { child, dir, port };
        nginx.wait_ready();
        nginx
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("nginx exited ({status}): {}", self.log());
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The application behind nginx: says who nginx told it the caller is.
async fn application() -> TestServer {
    let router = Router::new().route(
        "/hello",
        get(|headers: HeaderMap| async move {
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned()
            };
            format!(
                "upstream: subject={} scope={}",
                header("x-tessera-subject"),
                header("x-tessera-scope")
            )
        }),
    );
    TestServer::start(router).await
}

async fn through(nginx: &Nginx, token: Option<&str>) -> (StatusCode, String) {
    let mut request = http().get(nginx.url("/hello"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_lets_valid_tokens_through_and_caches_answers_briefly() {
    let Some(binary) = nginx_binary() else {
        return;
    };
    let (router, app) = auth_server::build(auth_server::Options {
        users: auth_server::parse_users(&format!("alice:{ALICE_PW}")).unwrap(),
        insecure_cookies: true,
        mailer: auth_server::Mailer::Memory(Arc::new(Mutex::new(Vec::new()))),
        ..auth_server::Options::default()
    })
    .await
    .unwrap();
    // Counts the questions nginx asks.
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = asked.clone();
    let router = router.layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let counter = counter.clone();
            async move {
                if request.uri().path() == "/oauth/introspect" {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                next.run(request).await
            }
        },
    ));
    let auth = TestServer::start(router).await;
    let upstream = application().await;
    // The gateway's key, as `tokenctl api-key create --scopes introspect` makes it.
    let key = app
        .service
        .issue_api_key(
            NewApiKey::new("tokenctl", "nginx", Environment::Test).scopes(["introspect"]),
        )
        .await
        .unwrap()
        .key;
    let nginx = Nginx::start(&binary, &auth, &upstream, key.expose_secret());

    // No token: refused by nginx without asking.
    let (status, _) = through(&nginx, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{}", nginx.log());
    assert_eq!(asked.load(Ordering::SeqCst), 0);
    // An invalid token: asked, inactive, 401.
    let (status, body) = through(&nginx, Some("not-a-token")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body} {}", nginx.log());
    assert!(!body.contains("upstream"));
    assert_eq!(asked.load(Ordering::SeqCst), 1);

    // A valid token reaches the application, with its subject.
    let login: Value = http()
        .post(auth.url("/login"))
        .json(&json!({ "username": "alice", "password": ALICE_PW }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap().to_owned();
    let alice = app.user("alice").unwrap().id.clone();
    let filled = Instant::now();
    let (status, body) = through(&nginx, Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body} {}", nginx.log());
    assert_eq!(
        body,
        format!("upstream: subject={alice} scope=profile payments api-keys")
    );
    assert_eq!(asked.load(Ordering::SeqCst), 2);
    // Within the cache window, nginx does not ask again; and the subject the
    // application sees is the token's, not one the client claims.
    let response = http()
        .get(nginx.url("/hello"))
        .bearer_auth(&token)
        .header("x-tessera-subject", "mallory")
        .header("x-tessera-scope", "admin")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.text().await.unwrap(),
        format!("upstream: subject={alice} scope=profile payments api-keys")
    );
    if filled.elapsed() < SURELY_CACHED {
        assert_eq!(asked.load(Ordering::SeqCst), 2, "answered from the cache");
    }
    // …and after it, it does: a positive answer lives at most CACHE_BOUND.
    tokio::time::sleep(CACHE_BOUND.saturating_sub(filled.elapsed()) + SLACK).await;
    let refilled = Instant::now();
    let (status, _) = through(&nginx, Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        asked.load(Ordering::SeqCst),
        3,
        "asked again after the window"
    );

    // Revoked: the token revokes itself.
    let r = http()
        .post(auth.url("/oauth/revoke"))
        .bearer_auth(&token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Until the cached answer ends, nginx may still let it through: the documented
    // bound. After it, 401.
    let (status, _) = through(&nginx, Some(&token)).await;
    if refilled.elapsed() < SURELY_CACHED {
        assert_eq!(status, StatusCode::OK, "the cached answer still holds");
    }
    tokio::time::sleep(CACHE_BOUND.saturating_sub(refilled.elapsed()) + SLACK).await;
    let (status, body) = through(&nginx, Some(&token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(!body.contains("upstream"));
    assert_eq!(asked.load(Ordering::SeqCst), 4);

    drop(nginx);
    auth.stop().await;
    upstream.stop().await;
}
