//! A bounded load test of the reference service on loopback: `GET /me` with valid and
//! invalid tokens mixed, then concurrent `/refresh` races on one refresh token. It
//! asserts correctness only — every valid token accepted, every invalid or revoked one
//! refused, no refresh token rotated twice (the grace window answers a few repeats with
//! the one successor), no family left alive after a replay past them — and
//! reports throughput and latency as figures, never as assertions.
//!
//! Each backend runs for `TOKEN_AXUM_LOAD_SECONDS` (default 5: half `/me`, half
//! races); SQLite always, PostgreSQL + Redis when their URLs are set. The figures in
//! `docs/PERFORMANCE.md` come from
//! `TOKEN_AXUM_LOAD_SECONDS=20 cargo test -p token-axum --release --test load -- --nocapture`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::too_many_lines
)]

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/auth_server/main.rs"]
mod auth_server;
mod common;

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, COOKIE};
use secrecy::ExposeSecret;
use serde_json::json;
use token_core::test_support::{DATABASE_URL, REDIS_URL, service_url};

use auth_server::{App, Mailer, Options};
use common::{PgSchema, TestServer, http, set_cookie, unique};

/// Concurrent clients of `/me`.
const ME_WORKERS: usize = 16;
/// Concurrent presentations of one refresh token per race.
const RACERS: usize = 8;
/// At most this many requests per phase, whatever the duration.
const MAX_REQUESTS: usize = 2_000_000;

fn seconds() -> f64 {
    std::env::var("TOKEN_AXUM_LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| (1.0..=600.0).contains(s))
        .unwrap_or(5.0)
}

struct Latencies(Vec<u32>);

impl Latencies {
    fn percentile(&mut self, p: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        self.0.sort_unstable();
        let i = ((self.0.len() as f64 - 1.0) * p).round() as usize;
        f64::from(self.0[i]) / 1000.0
    }
}

struct Phase {
    requests: usize,
    elapsed: Duration,
    latencies: Latencies,
}

impl Phase {
    fn line(&mut self, what: &str) -> String {
        let rps = self.requests as f64 / self.elapsed.as_secs_f64();
        format!(
            "| {what} | {} | {:.1} s | {rps:.0} | {:.2} ms | {:.2} ms |",
            self.requests,
            self.elapsed.as_secs_f64(),
            self.latencies.percentile(0.5),
            self.latencies.percentile(0.99),
        )
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Expect {
    Ok,
    Refused,
}

/// `GET /me` from `ME_WORKERS` clients for `duration`, cycling through `tokens`.
async fn me_phase(
    server: &TestServer,
    tokens: Arc<Vec<(String, Expect)>>,
    duration: Duration,
) -> (Phase, usize, usize) {
    let client = http();
    let url = server.url("/me");
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let workers: Vec<_> = (0..ME_WORKERS)
        .map(|w| {
            let (client, url, tokens) = (client.clone(), url.clone(), tokens.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                let (mut accepted, mut refused) = (0usize, 0usize);
                let mut i = w;
                while Instant::now() < deadline && lat.len() < MAX_REQUESTS / ME_WORKERS {
                    let (token, expect) = &tokens[i % tokens.len()];
                    i += 7;
                    let t0 = Instant::now();
                    let r = client
                        .get(&url)
                        .header(AUTHORIZATION, format!("Bearer {token}"))
                        .send()
                        .await
                        .unwrap();
                    let status = r.status();
                    let _ = r.bytes().await.unwrap();
                    lat.push(u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX));
                    match (expect, status) {
                        (Expect::Ok, StatusCode::OK) => accepted += 1,
                        (Expect::Refused, StatusCode::UNAUTHORIZED) => refused += 1,
                        (e, s) => panic!("token {} expected {e:?}, got {s}", i % tokens.len()),
                    }
                }
                (lat, accepted, refused)
            })
        })
        .collect();
    let (mut all, mut accepted, mut refused) = (Vec::new(), 0, 0);
    for w in workers {
        let (lat, a, r) = w.await.unwrap();
        all.extend(lat);
        accepted += a;
        refused += r;
    }
    let phase = Phase {
        requests: all.len(),
        elapsed: started.elapsed(),
        latencies: Latencies(all),
    };
    (phase, accepted, refused)
}

/// Races `RACERS` concurrent `/refresh` calls on fresh refresh tokens for `duration`.
async fn refresh_phase(server: &TestServer, app: &App, duration: Duration) -> (Phase, usize) {
    let client = http();
    let url = server.url("/refresh");
    let cookie_name: std::sync::Arc<str> = app.cookie.name().into();
    let user = app.user("alice").unwrap().id.clone();
    let claims = auth_server::UserClaims {
        role: "user".into(),
        scope: "profile".into(),
        ctx: None,
    };
    // More racers than the grace window answers: every race ends in a replay.
    assert!(RACERS > 1 + auth_server::REFRESH_GRACE_REUSES as usize);
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let (mut lat, mut races) = (Vec::new(), 0usize);
    while Instant::now() < deadline && lat.len() < MAX_REQUESTS {
        let login = app.service.login(&user, &claims).await.unwrap();
        let cookie = format!("{cookie_name}={}", login.refresh.expose_secret());
        let racers: Vec<_> = (0..RACERS)
            .map(|_| {
                let (client, url, cookie) = (client.clone(), url.clone(), cookie.clone());
                let cookie_name = cookie_name.clone();
                tokio::spawn(async move {
                    let t0 = Instant::now();
                    let r = client
                        .post(&url)
                        .header(COOKIE, cookie)
                        .send()
                        .await
                        .unwrap();
                    let status = r.status();
                    let next = set_cookie(&r, &cookie_name).map(|(v, _)| v.to_owned());
                    let _ = r.bytes().await.unwrap();
                    (status, next, t0.elapsed())
                })
            })
            .collect();
        let mut winners = Vec::new();
        for racer in racers {
            let (status, next, took) = racer.await.unwrap();
            lat.push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
            match status {
                StatusCode::OK => winners.push(next.unwrap()),
                StatusCode::UNAUTHORIZED => {}
                other => panic!("a refresh race answered {other}"),
            }
        }
        // No double rotation: one token, one successor. The grace window answers a few
        // repeats with that same successor; the repeats past them revoke the family.
        assert!(
            (1..=1 + auth_server::REFRESH_GRACE_REUSES as usize).contains(&winners.len()),
            "{} of {RACERS} presentations of one refresh token succeeded",
            winners.len()
        );
        assert!(
            winners.iter().all(|w| *w == winners[0]),
            "a refresh token rotated into several successors"
        );
        // The replays revoked the family: its successor is refused too.
        let r = client
            .post(&url)
            .header(COOKIE, format!("{cookie_name}={}", winners[0]))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::UNAUTHORIZED,
            "a family survived a replay"
        );
        races += 1;
    }
    let phase = Phase {
        requests: lat.len(),
        elapsed: started.elapsed(),
        latencies: Latencies(lat),
    };
    (phase, races)
}

/// The token mix for `/me`: half valid (two users' access tokens, an API key), half
/// invalid (revoked at logout, tampered, foreign, wrong type, garbage).
async fn token_mix(server: &TestServer, app: &App) -> Vec<(String, Expect)> {
    let client = http();
    let login = |user: &'static str, password: &'static str| {
        let client = client.clone();
        let url = server.url("/login");
        async move {
            let r = client
                .post(url)
                .json(&json!({ "username": user, "password": password }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            let refresh = set_cookie(&r, app.cookie.name()).unwrap().0.to_owned();
            let body: serde_json::Value = r.json().await.unwrap();
            (body["access_token"].as_str().unwrap().to_owned(), refresh)
        }
    };
    let (alice, _) = login("alice", "alice-password").await;
    let (bob, _) = login("bob", "bob-password").await;
    let key = client
        .post(server.url("/api-keys"))
        .bearer_auth(&alice)
        .json(&json!({ "name": "load", "scopes": ["profile"] }))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut mix = vec![
        (alice.clone(), Expect::Ok),
        (bob.clone(), Expect::Ok),
        (key, Expect::Ok),
    ];
    // Revoked: logged out through the service's own endpoint.
    for _ in 0..2 {
        let (access, refresh) = login("alice", "alice-password").await;
        let r = client
            .post(server.url("/logout"))
            .bearer_auth(&access)
            .header(COOKIE, format!("{}={refresh}", app.cookie.name()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        mix.push((access, Expect::Refused));
    }
    let mut tampered = bob.clone();
    let i = tampered.len() - 90;
    let c = if &tampered[i..=i] == "A" { "B" } else { "A" };
    tampered.replace_range(i..=i, c);
    mix.push((tampered, Expect::Refused));
    let foreign = token_paseto::PublicIssuer::new(
        token_paseto::SecretKey::<token_paseto::V4>::generate().unwrap(),
    );
    let claims = token_core::Claims::new(json!({ "sid": "x", "scope": "profile" }))
        .issuer(auth_server::ISSUER)
        .subject("usr_x")
        .audience(auth_server::AUDIENCE)
        .random_token_id()
        .unwrap()
        .valid_for(&token_core::SystemClock, Duration::from_secs(600))
        .unwrap();
    mix.push((
        token_core::TokenSigner::sign(&foreign, &claims)
            .unwrap()
            .expose_secret()
            .to_owned(),
        Expect::Refused,
    ));
    mix.push((
        "rt_0000000000000000000000000000000000000000000000000".into(),
        Expect::Refused,
    ));
    let payment = app
        .service
        .issue_payment(json!({ "order": 1 }), "usr_x")
        .unwrap();
    mix.push((payment.expose_secret().to_owned(), Expect::Refused));
    mix.push((alice, Expect::Ok));
    mix.push((bob, Expect::Ok));
    mix.push(("sk_live_notakey".into(), Expect::Refused));
    mix.push((mix[2].0.clone(), Expect::Ok));
    mix
}

async fn run(backend: &str, database_url: String, redis_url: Option<String>, report: &mut String) {
    let (router, app) = auth_server::build(Options {
        database_url,
        redis_url,
        users: auth_server::parse_users("alice:alice-password,bob:bob-password").unwrap(),
        insecure_cookies: true,
        mailer: Mailer::Discard,
        max_api_keys: 100,
        ..Options::default()
    })
    .await
    .unwrap();
    let server = TestServer::start(router).await;
    let half = Duration::from_secs_f64(seconds() / 2.0);

    let tokens = Arc::new(token_mix(&server, &app).await);
    let valid = tokens.iter().filter(|(_, e)| *e == Expect::Ok).count();
    let (mut me, accepted, refused) = me_phase(&server, tokens.clone(), half).await;
    assert!(accepted > 0 && refused > 0);
    let (mut refresh, races) = refresh_phase(&server, &app, half).await;
    assert!(races > 0);

    let _ = writeln!(
        report,
        "{}",
        me.line(&format!(
            "{backend}: `GET /me`, {ME_WORKERS} clients, {valid} valid / {} invalid tokens",
            tokens.len() - valid
        ))
    );
    let _ = writeln!(
        report,
        "{}",
        refresh.line(&format!(
            "{backend}: `POST /refresh`, {races} races of {RACERS} on one token"
        ))
    );
    let _ = writeln!(
        report,
        "<!-- {backend}: /me accepted {accepted}, refused {refused} (every refusal expected); {races} races, each exactly one rotation and the family revoked -->"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounded_load_on_loopback() {
    let mut report = String::from(
        "| run | requests | time | requests/s | p50 | p99 |\n|---|---:|---:|---:|---:|---:|\n",
    );
    let path = std::env::temp_dir().join(format!("token-axum-load-{}.db", unique()));
    run(
        "SQLite file + in-process list",
        format!("sqlite://{}", path.display()),
        None,
        &mut report,
    )
    .await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    if let (Some(db), Some(redis)) = (
        service_url(DATABASE_URL, "token-axum load test on PostgreSQL"),
        service_url(REDIS_URL, "token-axum load test on Redis"),
    ) {
        let schema = PgSchema::create(&db).await;
        run(
            "PostgreSQL + Redis",
            schema.url.clone(),
            Some(redis),
            &mut report,
        )
        .await;
        schema.drop_now().await;
    }
    println!("\n{report}");
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("token-axum-load.md");
    std::fs::write(&out, &report).unwrap();
    println!("(written to {})", out.display());
}
