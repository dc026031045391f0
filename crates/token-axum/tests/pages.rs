//! The reference service's pages over plain HTTP: their headers (no caching, a CSP
//! without `unsafe-inline`, no framing), the session cookie's attributes, and each of
//! the cross-site defences on its own — the origin check, the CSRF token, the JSON
//! API's cookie calls from other origins — plus the one-time key display. The same
//! flows in a real browser are in `browser.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::too_many_lines
)]

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/auth_server/main.rs"]
mod auth_server;
mod common;

use reqwest::StatusCode;
use reqwest::header::{
    CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, LOCATION, ORIGIN, X_FRAME_OPTIONS,
};
use serde_json::json;

use auth_server::Options;
use common::{TestServer, http, set_cookie};

const ALICE_PW: &str = "correct horse battery";

struct Site {
    server: TestServer,
    origin: String,
}

/// alice's sign-in form.
fn login_form() -> String {
    format!("username=alice&password={}", ALICE_PW.replace(' ', "+"))
}

impl Site {
    async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    /// alice on `options`, reached at `http://localhost:PORT` (its public origin).
    async fn start_with(options: Options) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let origin = format!("http://localhost:{port}");
        let (router, _) = auth_server::build(Options {
            users: auth_server::parse_users(&format!("alice:{ALICE_PW}")).unwrap(),
            public_origin: Some(origin.clone()),
            ..options
        })
        .await
        .unwrap();
        Self {
            server: TestServer::start_on(router, port).await,
            origin,
        }
    }

    fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// A form post, from `origin` (none: no `Origin` header).
    async fn post_form(
        &self,
        path: &str,
        origin: Option<&str>,
        cookie: Option<&str>,
        body: &str,
    ) -> reqwest::Response {
        let mut request = http()
            .post(self.url(path))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body.to_owned());
        if let Some(origin) = origin {
            request = request.header(ORIGIN, origin);
        }
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        request.send().await.unwrap()
    }

    /// Signs alice in through the form: the session cookie (`name=value`).
    async fn sign_in(&self) -> String {
        let response = self
            .post_form("/login", Some(&self.origin), None, &login_form())
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let (value, _) = set_cookie(&response, "__Host-session").unwrap();
        format!("__Host-session={value}")
    }

    async fn account(&self, cookie: &str) -> reqwest::Response {
        http()
            .get(self.url("/account"))
            .header(COOKIE, cookie)
            .send()
            .await
            .unwrap()
    }

    /// The session's CSRF token, read from the account page's form.
    async fn csrf(&self, cookie: &str) -> String {
        let page = self.account(cookie).await.text().await.unwrap();
        let at = page.find("name=\"csrf\" value=\"").unwrap() + 19;
        page[at..at + 64].to_owned()
    }
}

#[tokio::test]
async fn pages_are_not_cached_not_framed_and_run_no_inline_script() {
    let site = Site::start().await;
    let cookie = site.sign_in().await;
    for path in ["/login", "/reset", "/reset/confirm", "/account"] {
        let response = http()
            .get(site.url(path))
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        let headers = response.headers();
        let status = response.status();
        // Signed in, `/login` sends the browser on to its account.
        if path == "/login" {
            assert_eq!(status, StatusCode::SEE_OTHER);
            assert_eq!(headers[LOCATION], "/account");
        } else {
            assert_eq!(status, StatusCode::OK, "{path}");
            assert!(
                headers[CONTENT_TYPE]
                    .to_str()
                    .unwrap()
                    .starts_with("text/html")
            );
        }
        assert_eq!(headers["cache-control"], "no-store", "{path}");
        let csp = headers[CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
        for directive in [
            "default-src 'none'",
            "frame-ancestors 'none'",
            "form-action 'self'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert_eq!(headers[X_FRAME_OPTIONS], "DENY");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        // `same-origin`, not `no-referrer`, which would make the pages' own forms send
        // `Origin: null`.
        assert_eq!(headers["referrer-policy"], "same-origin");
        if status == StatusCode::OK {
            let html = response.text().await.unwrap();
            assert!(!html.contains("<script"), "{path} has a script");
            assert!(!html.contains(" style="), "{path} has an inline style");
        }
    }
}

#[tokio::test]
async fn the_session_cookie_is_host_only_secure_http_only_and_same_site() {
    let site = Site::start().await;
    let response = site
        .post_form("/login", Some(&site.origin), None, &login_form())
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/account");
    let (value, header) = set_cookie(&response, "__Host-session").unwrap();
    assert!(value.starts_with("ses_"), "{value}");
    for attribute in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(header.contains(attribute), "{header}");
    }
    assert!(!header.contains("Domain"), "{header}");
    // No token in the body, no access token at all.
    assert!(response.text().await.unwrap().is_empty());

    // A wrong password and an unknown name: the same page, the same status.
    let mut answers = Vec::new();
    for body in [
        "username=alice&password=wrong-password",
        "username=nobody&password=wrong-password",
    ] {
        let response = site
            .post_form("/login", Some(&site.origin), None, body)
            .await;
        assert!(set_cookie(&response, "__Host-session").is_none());
        let status = response.status();
        let text = response.text().await.unwrap();
        let message = text
            .split("role=\"alert\">")
            .nth(1)
            .and_then(|t| t.split('<').next())
            .unwrap()
            .to_owned();
        answers.push((status, message));
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0].0, StatusCode::OK);

    // The JSON API is as it was.
    let api = http()
        .post(site.url("/login"))
        .json(&json!({ "username": "alice", "password": ALICE_PW }))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::OK);
    assert!(set_cookie(&api, "__Host-session").is_none());
}

#[tokio::test]
async fn each_cross_site_defence_refuses_on_its_own() {
    let site = Site::start().await;
    let cookie = site.sign_in().await;
    let csrf = site.csrf(&cookie).await;
    let body = format!("csrf={csrf}&name=made-here");

    // The origin check: another origin, `null`, none at all — with the right token.
    for origin in [Some("http://localhost:1"), Some("null"), None] {
        let response = site
            .post_form("/account/api-keys", origin, Some(&cookie), &body)
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{origin:?}");
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("Nothing was changed")
        );
    }
    // `Sec-Fetch-Site: same-site` (a sibling origin) with a forged `Origin`.
    let response = http()
        .post(site.url("/account/api-keys"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(ORIGIN, &site.origin)
        .header("sec-fetch-site", "same-site")
        .header(COOKIE, &cookie)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // The CSRF token: the right origin, a missing or wrong token.
    for bad in ["name=made-here", "csrf=AAAA&name=made-here"] {
        let response = site
            .post_form("/account/api-keys", Some(&site.origin), Some(&cookie), bad)
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{bad}");
    }
    // Another session's token is not this one's.
    let other = site.sign_in().await;
    let other_csrf = site.csrf(&other).await;
    assert_ne!(other_csrf, csrf);
    let response = site
        .post_form(
            "/logout",
            Some(&site.origin),
            Some(&cookie),
            &format!("csrf={other_csrf}"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(site.account(&cookie).await.status().is_success());
    let page = site.account(&cookie).await.text().await.unwrap();
    assert!(
        page.contains("id=\"no-api-keys\""),
        "a refused form made a key"
    );

    // With all three right, it is done.
    let response = site
        .post_form(
            "/account/api-keys",
            Some(&site.origin),
            Some(&cookie),
            &body,
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let page = site.account(&cookie).await.text().await.unwrap();
    assert!(page.contains("made-here"));

    // Sign out with the form: the session ends.
    let response = site
        .post_form(
            "/logout",
            Some(&site.origin),
            Some(&cookie),
            &format!("csrf={csrf}"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/login");
    let after = site.account(&cookie).await;
    assert_eq!(after.status(), StatusCode::SEE_OTHER);
    assert_eq!(after.headers()[LOCATION], "/login");
}

#[tokio::test]
async fn the_json_logout_with_the_refresh_cookie_refuses_other_origins() {
    let site = Site::start().await;
    let login = || async {
        let api = http()
            .post(site.url("/login"))
            .json(&json!({ "username": "alice", "password": ALICE_PW }))
            .send()
            .await
            .unwrap();
        let (value, _) = set_cookie(&api, "__Host-refresh").unwrap();
        format!("__Host-refresh={value}")
    };
    let refresh_ok = |cookie: String| async {
        http()
            .post(site.url("/refresh"))
            .header(COOKIE, cookie)
            .send()
            .await
            .unwrap()
            .status()
            == StatusCode::OK
    };
    let logout =
        |cookie: String, origin: Option<&'static str>, site_header: Option<&'static str>| {
            let mut request = http()
                .post(site.url("/logout"))
                .header(CONTENT_TYPE, "text/plain")
                .header(COOKIE, cookie);
            if let Some(origin) = origin {
                request = request.header(ORIGIN, origin);
            }
            if let Some(fetch_site) = site_header {
                request = request.header("sec-fetch-site", fetch_site);
            }
            async move { request.send().await.unwrap().status() }
        };
    // A `text/plain` form of a same-site page on another port: refused, the session lives.
    let cookie = login().await;
    assert_eq!(
        logout(
            cookie.clone(),
            Some("http://localhost:1"),
            Some("same-site")
        )
        .await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        logout(cookie.clone(), None, Some("cross-site")).await,
        StatusCode::FORBIDDEN
    );
    // The refresh rotates the cookie; the old one is within the grace window.
    assert!(refresh_ok(cookie.clone()).await);
    // The service's own origin, or a client that is no browser (no Origin): done.
    let cookie = login().await;
    let own: &'static str = Box::leak(site.origin.clone().into_boxed_str());
    assert_eq!(
        logout(cookie.clone(), Some(own), Some("same-origin")).await,
        StatusCode::NO_CONTENT
    );
    assert!(!refresh_ok(cookie).await);
    let cookie = login().await;
    assert_eq!(
        logout(cookie.clone(), None, None).await,
        StatusCode::NO_CONTENT
    );
    assert!(!refresh_ok(cookie).await);
}

#[tokio::test]
async fn a_new_key_is_shown_to_its_session_once() {
    let site = Site::start().await;
    let cookie = site.sign_in().await;
    let csrf = site.csrf(&cookie).await;
    let response = site
        .post_form(
            "/account/api-keys",
            Some(&site.origin),
            Some(&cookie),
            &format!("csrf={csrf}&name=once&scope=profile&scope=payments&environment=live"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (sealed, header) = set_cookie(&response, "__Host-new-key").unwrap();
    // The cookie holds the key encrypted, never in the clear.
    assert!(sealed.starts_with("v4.local."), "{sealed}");
    for attribute in [
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=",
    ] {
        assert!(header.contains(attribute), "{header}");
    }
    let flash = format!("__Host-new-key={sealed}");
    let with_flash = format!("{cookie}; {flash}");

    // Another session (another browser of the same user) presenting it sees nothing.
    let other = site.sign_in().await;
    let page = site
        .account(&format!("{other}; {flash}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains("new-api-key"));

    // Consumed by that attempt: single use, whoever presents it. A fresh one for the
    // session that made it is shown once; a replay of that cookie shows nothing.
    let response = site
        .post_form(
            "/account/api-keys",
            Some(&site.origin),
            Some(&cookie),
            &format!("csrf={csrf}&name=twice&scope=profile"),
        )
        .await;
    let (sealed, _) = set_cookie(&response, "__Host-new-key").unwrap();
    let with_flash2 = format!("{cookie}; __Host-new-key={sealed}");
    let first = site.account(&with_flash2).await;
    // The display's cookie is deleted with the page that shows it.
    let cleared = first
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|v| v.to_str().unwrap().starts_with("__Host-new-key=;"));
    assert!(cleared);
    let page = first.text().await.unwrap();
    let at = page.find("id=\"new-api-key\">").unwrap() + 17;
    let key = &page[at..at + 57];
    assert!(key.starts_with("sk_test_"), "{key}");
    let replay = site.account(&with_flash2).await.text().await.unwrap();
    assert!(!replay.contains("new-api-key"));
    assert!(
        !site
            .account(&with_flash)
            .await
            .text()
            .await
            .unwrap()
            .contains("new-api-key")
    );

    // The key works, with the scopes the form gave.
    let me: serde_json::Value = http()
        .get(site.url("/me"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["credential"], "api_key");
    // A key made on the page never gets the `api-keys` scope.
    let response = site
        .post_form(
            "/account/api-keys",
            Some(&site.origin),
            Some(&cookie),
            &format!("csrf={csrf}&name=power&scope=api-keys"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn with_the_context_check_a_new_key_from_another_browser_asks_to_sign_in_again() {
    let site = Site::start_with(Options {
        context_check: Some(auth_server::Secret::ProcessOnly),
        ..Options::default()
    })
    .await;
    let post = |path: &str, agent: &'static str, cookie: Option<String>, body: String| {
        let mut request = http()
            .post(site.url(path))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ORIGIN, &site.origin)
            .header("user-agent", agent)
            .body(body);
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        async move { request.send().await.unwrap() }
    };
    let login = login_form();
    let signed = post("/login", "Firefox/1", None, login.clone()).await;
    let (value, _) = set_cookie(&signed, "__Host-session").unwrap();
    let cookie = format!("__Host-session={value}");
    let csrf = site.csrf(&cookie).await;

    // The session's cookie from another browser: the key is not made, sign in again.
    let body = format!("csrf={csrf}&name=stolen");
    let refused = post(
        "/account/api-keys",
        "Chrome/2",
        Some(cookie.clone()),
        body.clone(),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(&refused, "__Host-new-key").is_none());
    assert!(refused.text().await.unwrap().contains("sign in again"));
    let page = site.account(&cookie).await.text().await.unwrap();
    assert!(page.contains("id=\"no-api-keys\""));
    // The browser it signed in with: done.
    let made = post("/account/api-keys", "Firefox/1", Some(cookie.clone()), body).await;
    assert_eq!(made.status(), StatusCode::SEE_OTHER);
    assert!(set_cookie(&made, "__Host-new-key").is_some());
    // Signing in again from the new browser records its context.
    let again = http()
        .get(site.url("/login?again"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    let signed = post("/login", "Chrome/2", Some(cookie.clone()), login).await;
    let (value, _) = set_cookie(&signed, "__Host-session").unwrap();
    let cookie = format!("__Host-session={value}");
    let csrf = site.csrf(&cookie).await;
    let made = post(
        "/account/api-keys",
        "Chrome/2",
        Some(cookie),
        format!("csrf={csrf}&name=second"),
    )
    .await;
    assert_eq!(made.status(), StatusCode::SEE_OTHER);
}
