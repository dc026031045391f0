//! The reference service under a subscriber that keeps every span and event: logins,
//! verifications (good, tampered, an API key, a revoked one), a refresh and a reuse
//! detection, revocations, a password change and a key rotation are all told, by
//! identifiers and reasons, and no field of any span or event — tessera's, the
//! request log's — ever holds a token, a refresh token, a password, an API key or key
//! material. (A test binary of its own: its subscriber is the process's.)
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

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use reqwest::StatusCode;
use reqwest::header::COOKIE;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use token_opaque::GracePolicy;
use token_policy::keystore::{Kek, KeyJob};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt as _};

use auth_server::{KeyOptions, Options};
use common::{TestServer, http, set_cookie, unique};

const PW: &str = "correct horse battery";
const NEW_PW: &str = "a brand new passphrase";

#[derive(Clone, Debug)]
struct Captured {
    /// `span` or `event`.
    what: &'static str,
    target: String,
    /// The span's name, or the event's message.
    name: String,
    fields: Vec<(String, String)>,
}

#[derive(Default)]
struct Fields {
    message: Option<String>,
    fields: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = Some(text.clone());
        }
        self.fields.push((field.name().to_owned(), text));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_owned());
        }
        self.fields
            .push((field.name().to_owned(), value.to_owned()));
    }
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Captured>>>);

impl Capture {
    fn push(&self, what: &'static str, target: &str, name: String, fields: Fields) {
        self.0.lock().unwrap().push(Captured {
            what,
            target: target.to_owned(),
            name: fields.message.unwrap_or(name),
            fields: fields.fields,
        });
    }
}

impl<S: Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
        let mut f = Fields::default();
        attrs.record(&mut f);
        let meta = attrs.metadata();
        self.push("span", meta.target(), meta.name().to_owned(), f);
    }

    fn on_record(&self, _: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut f = Fields::default();
        values.record(&mut f);
        self.push("span", "", "(recorded)".to_owned(), f);
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut f = Fields::default();
        event.record(&mut f);
        let meta = event.metadata();
        self.push("event", meta.target(), String::new(), f);
    }
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tamper(token: &str) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let middle = parts[2].len() / 2;
    let c = if &parts[2][middle..=middle] == "A" {
        "B"
    } else {
        "A"
    };
    parts[2].replace_range(middle..=middle, c);
    parts.join(".")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // one story, told in order
async fn no_token_password_api_key_or_key_material_in_any_span_or_event() {
    let capture = Capture::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(capture.clone()))
        .unwrap();

    let dir = TempDir(std::env::temp_dir().join(format!("tessera-fields-{}", unique())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let kek = dir.0.join("kek");
    let kek_text = Kek::generate()
        .unwrap()
        .to_paserk()
        .expose_secret()
        .to_owned();
    std::fs::write(&kek, &kek_text).unwrap();
    let database_url = format!("sqlite://{}", dir.0.join("auth.db").display());
    let (router, app) = auth_server::build(Options {
        users: auth_server::parse_users(&format!("alice:{PW}")).unwrap(),
        insecure_cookies: true,
        database_url: database_url.clone(),
        keys: Some(KeyOptions {
            kek: kek.clone(),
            rotate_every: None,
            publish_ahead: None,
            refresh_every: None,
        }),
        refresh_grace: GracePolicy::disabled(),
        ..Options::default()
    })
    .await
    .unwrap();
    let server = TestServer::start(router).await;
    let client = http();
    let cookie_name = app.cookie.name().to_owned();
    let post = |path: &str, body: Value, bearer: Option<&str>, cookie: Option<&str>| {
        let mut request = client.post(server.url(path)).json(&body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, format!("{cookie_name}={cookie}"));
        }
        request.send()
    };
    let me = |credential: &str, api_key: bool| {
        let request = client.get(server.url("/me"));
        if api_key {
            request.header("x-api-key", credential).send()
        } else {
            request.bearer_auth(credential).send()
        }
    };
    let tokens = |r: reqwest::Response| async {
        assert_eq!(r.status(), StatusCode::OK, "{}", r.url());
        let cookie = set_cookie(&r, app.cookie.name()).unwrap().0.to_owned();
        let body: Value = r.json().await.unwrap();
        (body["access_token"].as_str().unwrap().to_owned(), cookie)
    };

    // Login, verify (good, tampered), refresh, reuse.
    let login = json!({"username": "alice", "password": PW});
    let (access, cookie) = tokens(post("/login", login, None, None).await.unwrap()).await;
    assert_eq!(me(&access, false).await.unwrap().status(), StatusCode::OK);
    let tampered = tamper(&access);
    assert_eq!(
        me(&tampered, false).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let r = post("/refresh", json!({}), None, Some(&cookie))
        .await
        .unwrap();
    let (refreshed, rotated) = tokens(r).await;
    let r = post("/refresh", json!({}), None, Some(&cookie))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // An API key: made, used, revoked, refused.
    let login = json!({"username": "alice", "password": PW});
    let (access2, cookie2) = tokens(post("/login", login, None, None).await.unwrap()).await;
    let r = post(
        "/api-keys",
        json!({"name": "ci", "scopes": ["profile"]}),
        Some(&access2),
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    let (key_id, key) = (
        body["id"].as_str().unwrap().to_owned(),
        body["key"].as_str().unwrap().to_owned(),
    );
    assert_eq!(me(&key, true).await.unwrap().status(), StatusCode::OK);
    let r = client
        .delete(server.url(&format!("/api-keys/{key_id}")))
        .bearer_auth(&access2)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        me(&key, true).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    // A password change (log out everywhere, a new session), a logout.
    let r = post(
        "/password",
        json!({"current_password": PW, "new_password": NEW_PW}),
        Some(&access2),
        Some(&cookie2),
    )
    .await
    .unwrap();
    let (access3, cookie3) = tokens(r).await;
    let r = post("/logout", json!({}), Some(&access3), Some(&cookie3))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    // A key rotation.
    let keys = app.keys.clone().unwrap();
    let kid = keys.rotate_now(KeyJob::Access).await.unwrap();
    server.stop().await;

    let captured = capture.0.lock().unwrap().clone();
    let has = |what: &str, target: &str, name: &str| {
        captured
            .iter()
            .any(|c| c.what == what && c.target.starts_with(target) && c.name == name)
    };
    for span in [
        "login",
        "refresh",
        "logout",
        "logout_everywhere",
        "rotate_key",
    ] {
        assert!(has("span", "token_policy", span), "no span {span}");
    }
    for event in [
        "login: session started",
        "credential refused",
        "refresh token rotated",
        "refresh token reuse detected: session revoked",
        "refresh refused",
        "API key issued",
        "API key revoked",
        "session revoked",
        "every access token of the subject revoked",
        "key rotated: now signing",
    ] {
        assert!(has("event", "token_policy", event), "no event {event:?}");
    }
    assert!(has("event", "token_axum", "request refused"));
    assert!(has("event", "token_axum", "request authenticated"));
    let refused = |credential: &str, reason: &str| {
        captured.iter().any(|c| {
            c.name == "credential refused"
                && c.fields.contains(&("credential".into(), credential.into()))
                && c.fields.contains(&("reason".into(), reason.into()))
        })
    };
    assert!(refused("access_token", "invalid token"));
    assert!(refused("api_key", "revoked"));
    assert!(
        captured.iter().any(|c| c.name == "key rotated: now signing"
            && c.fields.contains(&("kid".into(), kid.clone())))
    );

    // The secrets of the story, and the key table's wrapped material.
    let store = token_policy::config::open_store(&database_url)
        .await
        .unwrap();
    let rows = store
        .key_table()
        .unwrap()
        .key_records(keys.plan().namespace_name())
        .await
        .unwrap();
    let signature = |t: &str| {
        let body = t.split('.').nth(2).unwrap().to_owned();
        body[body.len() - 40..].to_owned()
    };
    let tail = |t: &str| t[t.len() - 24..].to_owned();
    let mut secrets: Vec<(&str, String)> = vec![
        ("the password", PW.to_owned()),
        ("the new password", NEW_PW.to_owned()),
        ("the key-encryption key", kek_text.clone()),
        ("the API key", key.clone()),
        ("the API key's secret part", tail(&key)),
    ];
    for (what, token) in [
        ("an access token", &access),
        ("a tampered access token", &tampered),
        ("a refreshed access token", &refreshed),
        ("a second access token", &access2),
        ("a third access token", &access3),
    ] {
        secrets.push((what, token.clone()));
        secrets.push((what, signature(token)));
    }
    for (what, token) in [
        ("a refresh token", &cookie),
        ("a rotated refresh token", &rotated),
        ("a second refresh token", &cookie2),
        ("a third refresh token", &cookie3),
    ] {
        secrets.push((what, token.clone()));
        secrets.push((what, tail(token)));
    }
    for r in &rows {
        secrets.push(("a wrapped data key", r.wrapped_dek.clone()));
        secrets.push(("a sealed key", r.sealed.clone()));
    }
    assert!(captured.len() > 50, "{} records", captured.len());
    for c in &captured {
        for (field, value) in &c.fields {
            for (what, secret) in &secrets {
                assert!(
                    secret.len() >= 16 && !value.contains(secret.as_str()),
                    "{what} in field `{field}` of {} {:?} ({})",
                    c.what,
                    c.name,
                    c.target
                );
            }
        }
    }
}
