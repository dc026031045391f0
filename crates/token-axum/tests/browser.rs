//! The reference service's pages in a real browser: headless Chromium (Debian's
//! `chromium` and `chromium-driver`) driven over WebDriver.
//!
//! - Sign in through the form; scripts see no cookie (`document.cookie` is empty).
//! - A new API key is shown once, and a reload does not show it again; roll and
//!   revoke from the page.
//! - "Sign out everywhere else" ends a second browser profile's session.
//! - Pages of two other local origins — one cross-site (`127.0.0.1` against
//!   `localhost`), one same-site on another port — auto-submit forms to `/logout` and
//!   to the API-key form: refused, and the session survives.
//! - The password-reset pages, end to end with the mail.
//! - Every page passes axe-core's WCAG 2 A/AA rules (labels, contrast, names, …), and
//!   a screenshot of each is written under `target/screenshots/`.
//!
//! Chromium runs one test at a time (a lock), each bounded in time.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::too_many_lines,
    clippy::print_stderr
)]

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/auth_server/main.rs"]
mod auth_server;
mod common;
#[allow(dead_code)]
#[path = "browser/webdriver.rs"]
mod webdriver;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use auth_server::{Mail, Mailer, Options};
use common::{TestServer, http};
use webdriver::{Browser, Driver};

const ALICE_PW: &str = "correct horse battery";
const BOB_PW: &str = "hunter2-but-longer";

/// One Chromium at a time: two cores.
static CHROMIUM: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
/// Each test's bound.
const BOUND: Duration = Duration::from_secs(240);

/// The service on a loopback port, reached by the browser as `http://localhost:PORT`,
/// with `Secure` `__Host-` cookies (Chromium treats `localhost` as a secure context).
struct Site {
    server: TestServer,
    outbox: Arc<Mutex<Vec<Mail>>>,
}

impl Site {
    async fn start() -> Self {
        // The origin names the port, which the listener picks: bind first.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let outbox = Arc::new(Mutex::new(Vec::new()));
        let (router, _app) = auth_server::build(Options {
            users: auth_server::parse_users(&format!("alice:{ALICE_PW},bob:{BOB_PW}")).unwrap(),
            mailer: Mailer::Memory(outbox.clone()),
            public_origin: Some(format!("http://localhost:{port}")),
            ..Options::default()
        })
        .await
        .unwrap();
        let server = TestServer::start_on(router, port).await;
        Self { server, outbox }
    }

    fn url(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.server.addr.port())
    }
}

/// The directory the screenshots go to: `target/screenshots`.
fn screenshots() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("screenshots")
}

async fn sign_in(browser: &Browser, site: &Site, name: &str, password: &str) {
    browser.goto(&site.url("/login")).await;
    browser.type_into("#username", name).await;
    browser.type_into("#password", password).await;
    let submit = browser.find("form button[type=submit]").await;
    browser.click_and_wait(&submit).await;
}

async fn signed_in_as(browser: &Browser, site: &Site) -> Option<String> {
    browser.goto(&site.url("/account")).await;
    if browser.url().await.ends_with("/account") {
        Some(browser.text("#username").await)
    } else {
        None
    }
}

async fn with_browser<F, Fut>(test: &str, f: F)
where
    F: FnOnce(Driver) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let _one = CHROMIUM.lock().await;
    let Some(driver) = Driver::start(test).await else {
        return;
    };
    tokio::time::timeout(BOUND, f(driver))
        .await
        .unwrap_or_else(|_| panic!("{test} took over {BOUND:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_keeps_credentials_from_scripts_and_shows_a_new_key_once() {
    with_browser("sign-in and API keys in Chromium", |driver| async move {
        let site = Site::start().await;
        let browser = driver.browser().await;

        // A wrong password and an unknown name get the same form and message.
        sign_in(&browser, &site, "alice", "not the password").await;
        assert!(browser.url().await.ends_with("/login"));
        let wrong_password = browser.text("[role=alert]").await;
        sign_in(&browser, &site, "nobody", "not the password").await;
        assert_eq!(browser.text("[role=alert]").await, wrong_password);
        assert!(wrong_password.contains("do not match"), "{wrong_password}");

        sign_in(&browser, &site, "alice", ALICE_PW).await;
        assert!(
            browser.url().await.ends_with("/account"),
            "{}",
            browser.url().await
        );
        assert_eq!(browser.text("#username").await, "alice");
        // The session cookie is HttpOnly: scripts see no cookie at all.
        let cookies = browser.script("return document.cookie;", vec![]).await;
        assert_eq!(cookies, json!(""), "document.cookie shows {cookies}");
        // Nor any token in storage.
        let stored = browser
            .script(
                "return localStorage.length + sessionStorage.length;",
                vec![],
            )
            .await;
        assert_eq!(stored, json!(0));

        // A new key: shown once.
        browser.type_into("#key-name", "ci deploys").await;
        let create = browser.find("#create-api-key button[type=submit]").await;
        browser.click_and_wait(&create).await;
        assert!(browser.url().await.ends_with("/account"));
        let key = browser.text("#new-api-key").await;
        assert!(key.starts_with("sk_test_"), "new key element: {key:?}");
        // It is a working key, with the scope the form asked for.
        let me = http()
            .get(site.server.url("/me"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), StatusCode::OK);
        // Listed by name, never shown again: not after a reload, not in the page source.
        let listed = browser.text("#api-keys").await;
        assert!(listed.contains("ci deploys"), "{listed}");
        browser.refresh().await;
        assert!(browser.try_find("#new-api-key").await.is_none());
        let source = browser
            .script("return document.documentElement.outerHTML;", vec![])
            .await;
        assert!(!source.as_str().unwrap().contains(&key));
        assert!(browser.text("#api-keys").await.contains("ci deploys"));

        // Roll: a new key, shown once; then revoke it.
        let roll = browser.find("#api-keys button[aria-label^=Roll]").await;
        browser.click_and_wait(&roll).await;
        let rolled = browser.text("#new-api-key").await;
        assert!(rolled.starts_with("sk_test_") && rolled != key);
        browser.refresh().await;
        assert!(browser.try_find("#new-api-key").await.is_none());
        // The first key works on (the roll's overlap), marked as rolled, with no Roll
        // button of its own; revoke both.
        assert_eq!(browser.find_all("#api-keys tr.api-key").await.len(), 2);
        assert_eq!(browser.find_all("#api-keys .rolled").await.len(), 1);
        assert_eq!(
            browser
                .find_all("#api-keys button[aria-label^=Roll]")
                .await
                .len(),
            1
        );
        for _ in 0..2 {
            let revoke = browser.find("#api-keys button[aria-label^=Revoke]").await;
            browser.click_and_wait(&revoke).await;
        }
        assert!(browser.try_find("#api-keys").await.is_none());
        assert!(browser.try_find("#no-api-keys").await.is_some());
        for gone in [&key, &rolled] {
            let me = http()
                .get(site.server.url("/me"))
                .bearer_auth(gone)
                .send()
                .await
                .unwrap();
            assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
        }

        // Sign out: the session ends.
        let sign_out = browser.find("#sign-out").await;
        browser.click_and_wait(&sign_out).await;
        assert!(browser.url().await.ends_with("/login"));
        assert_eq!(signed_in_as(&browser, &site).await, None);
        browser.quit().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_everywhere_else_ends_another_profiles_session() {
    with_browser(
        "sign out everywhere else in Chromium",
        |driver| async move {
            let site = Site::start().await;
            let laptop = driver.browser().await;
            let phone = driver.browser().await;
            sign_in(&laptop, &site, "alice", ALICE_PW).await;
            sign_in(&phone, &site, "alice", ALICE_PW).await;
            assert_eq!(signed_in_as(&phone, &site).await.as_deref(), Some("alice"));
            // And a JSON API login (another device): its refresh token ends too.
            let api = http()
                .post(site.server.url("/login"))
                .json(&json!({ "username": "alice", "password": ALICE_PW }))
                .send()
                .await
                .unwrap();
            assert_eq!(api.status(), StatusCode::OK);
            let refresh_cookie = common::set_cookie(&api, "__Host-refresh")
                .map(|(value, _)| format!("__Host-refresh={value}"))
                .unwrap();
            let refresh = |cookie: String| {
                let url = site.server.url("/refresh");
                async move {
                    http()
                        .post(url)
                        .header("cookie", cookie)
                        .send()
                        .await
                        .unwrap()
                }
            };
            // The refresh token works (and rotates) before.
            let rotated = refresh(refresh_cookie.clone()).await;
            assert_eq!(rotated.status(), StatusCode::OK);
            let refresh_cookie = common::set_cookie(&rotated, "__Host-refresh")
                .map(|(value, _)| format!("__Host-refresh={value}"))
                .unwrap();

            laptop.goto(&site.url("/account")).await;
            assert_eq!(laptop.find_all("#sessions tbody tr").await.len(), 2);
            assert_eq!(
                laptop.find_all("#sessions tr.current-session").await.len(),
                1
            );
            let others = laptop.find("#sign-out-others").await;
            laptop.click_and_wait(&others).await;
            assert!(laptop.url().await.ends_with("/account"));
            assert_eq!(laptop.find_all("#sessions tbody tr").await.len(), 1);

            // The other profile is signed out; this one is not.
            assert_eq!(signed_in_as(&phone, &site).await, None);
            assert!(phone.url().await.ends_with("/login"));
            assert_eq!(signed_in_as(&laptop, &site).await.as_deref(), Some("alice"));
            assert_eq!(
                refresh(refresh_cookie).await.status(),
                StatusCode::UNAUTHORIZED
            );
            laptop.quit().await;
            phone.quit().await;
        },
    )
    .await;
}

/// Pages of other origins that post forms to the service on load.
fn attacker(target: String) -> Router {
    let page = move |action: &'static str, fields: &'static str| {
        let target = target.clone();
        move || {
            let target = target.clone();
            async move {
                Html(format!(
                    "<!doctype html><title>win a prize</title>\
                     <form id=f method=post action=\"{target}{action}\">{fields}</form>\
                     <script>document.getElementById('f').submit()</script>"
                ))
            }
        }
    };
    Router::new()
        .route("/logout", get(page("/logout", "")))
        .route(
            "/new-key",
            get(page(
                "/account/api-keys",
                "<input name=name value=stolen><input name=scope value=payments>",
            )),
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_posted_from_other_origins_are_refused_and_the_session_survives() {
    with_browser("cross-site forms in Chromium", |driver| async move {
        let site = Site::start().await;
        let evil = TestServer::start(attacker(site.url(""))).await;
        let browser = driver.browser().await;
        sign_in(&browser, &site, "alice", ALICE_PW).await;
        assert_eq!(
            signed_in_as(&browser, &site).await.as_deref(),
            Some("alice")
        );

        // Cross-site (127.0.0.1 is another site than localhost: the SameSite cookie
        // stays home) and same-site on another port (the cookie goes; the origin
        // check and the CSRF token stop it).
        let origins = [
            format!("http://127.0.0.1:{}", evil.addr.port()),
            format!("http://localhost:{}", evil.addr.port()),
        ];
        for origin in &origins {
            for path in ["/logout", "/new-key"] {
                browser.goto(&format!("{origin}{path}")).await;
                // The form went off to the service, which refused it.
                browser.wait_for_url(&site.url("")).await;
                assert!(
                    browser.text("h1").await.contains("refused"),
                    "{origin}{path}: {}",
                    browser.text("body").await
                );
                assert_eq!(
                    signed_in_as(&browser, &site).await.as_deref(),
                    Some("alice"),
                    "{origin}{path} ended the session"
                );
            }
        }
        // No key was made.
        assert!(browser.try_find("#no-api-keys").await.is_some());
        browser.quit().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_reset_pages_change_the_password() {
    with_browser("password reset in Chromium", |driver| async move {
        let site = Site::start().await;
        let browser = driver.browser().await;
        browser.goto(&site.url("/reset")).await;
        browser.type_into("#username", "bob").await;
        browser
            .click_and_wait(&browser.find("form button").await)
            .await;
        assert!(
            browser
                .text(".notice")
                .await
                .contains("If the account exists")
        );
        // The mail is sent off the request path.
        let token = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(mail) = site.outbox.lock().unwrap().first() {
                    return mail.token.expose_secret().to_owned();
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("a reset mail");

        browser.goto(&site.url("/reset/confirm")).await;
        browser.type_into("#token", "rst_not-a-token").await;
        browser
            .type_into("#new_password", "a brand new password")
            .await;
        browser
            .click_and_wait(&browser.find("form button").await)
            .await;
        assert!(browser.text("[role=alert]").await.contains("not valid"));

        browser.type_into("#token", &token).await;
        browser
            .type_into("#new_password", "a brand new password")
            .await;
        browser
            .click_and_wait(&browser.find("form button").await)
            .await;
        assert!(browser.text("h1").await.contains("Password changed"));

        sign_in(&browser, &site, "bob", BOB_PW).await;
        assert!(browser.url().await.ends_with("/login"));
        sign_in(&browser, &site, "bob", "a brand new password").await;
        assert!(browser.url().await.ends_with("/account"));
        browser.quit().await;
    })
    .await;
}

/// The axe-core script (`npm ci` in `tests/browser` installs it).
fn axe_source(test: &str) -> Option<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let script = dir.join("node_modules/axe-core/axe.min.js");
    if !script.exists() {
        let installed = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            assert!(
                std::env::var("TESSERA_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "{test}: `npm ci` in {} failed",
                dir.display()
            );
            eprintln!("!!! SKIPPED {test}: axe-core is not installed (npm ci in tests/browser)");
            return None;
        }
    }
    Some(std::fs::read_to_string(script).unwrap())
}

/// axe-core's WCAG 2 A and AA rules on the current page: the violations, as text.
async fn accessibility_violations(browser: &Browser, axe: &str) -> Vec<String> {
    browser.script(axe, vec![]).await;
    let result = browser
        .async_script(
            "const done = arguments[arguments.length - 1];\
             axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })\
               .then(r => done({ violations: r.violations.map(v => ({ id: v.id, nodes: v.nodes.map(n => n.html) })), passes: r.passes.map(p => p.id) }))\
               .catch(e => done({ error: String(e) }));",
            vec![],
        )
        .await;
    assert!(result.get("error").is_none(), "axe failed: {result}");
    let passes: Vec<&str> = result["passes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    // The checks the pages must have run, not only passed by absence.
    for rule in ["color-contrast", "document-title", "html-has-lang"] {
        assert!(
            passes.contains(&rule),
            "axe did not check {rule}: {passes:?}"
        );
    }
    result["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| format!("{}: {}", v["id"], v["nodes"]))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_passes_the_accessibility_rules_and_is_photographed() {
    let test = "accessibility of the pages in Chromium";
    let Some(axe) = axe_source(test) else {
        return;
    };
    with_browser(test, |driver| async move {
        let site = Site::start().await;
        let browser = driver.browser().await;
        let other = driver.browser().await;
        browser.resize(1100, 1000).await;
        let dir = screenshots();

        let mut checked = Vec::new();
        let mut check = async |name: &str, browser: &Browser| {
            let violations = accessibility_violations(browser, &axe).await;
            assert!(violations.is_empty(), "{name}: {violations:#?}");
            browser.screenshot(&dir.join(format!("{name}.png"))).await;
            checked.push(name.to_owned());
        };

        browser.goto(&site.url("/login")).await;
        check("login", &browser).await;
        sign_in(&browser, &site, "alice", "wrong password").await;
        check("login-failed", &browser).await;
        browser.goto(&site.url("/reset")).await;
        check("reset", &browser).await;
        browser.goto(&site.url("/reset/confirm")).await;
        check("reset-confirm", &browser).await;

        // The account page with two sessions, a key and the one-time display.
        sign_in(&other, &site, "alice", ALICE_PW).await;
        sign_in(&browser, &site, "alice", ALICE_PW).await;
        browser.goto(&site.url("/account")).await;
        check("account-empty", &browser).await;
        for name in ["deploys", "billing export"] {
            browser.type_into("#key-name", name).await;
            browser
                .click_and_wait(&browser.find("#create-api-key button[type=submit]").await)
                .await;
        }
        assert!(browser.try_find("#new-api-key").await.is_some());
        check("account-new-key", &browser).await;
        browser.refresh().await;
        browser.resize(1100, 1500).await;
        check("account", &browser).await;
        eprintln!("screenshots in {}", dir.display());
        browser.quit().await;
        other.quit().await;
    })
    .await;
}
