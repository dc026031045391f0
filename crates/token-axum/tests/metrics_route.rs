//! The reference service's `GET /metrics`: after a login, a good and a tampered
//! verification, a refresh and a reuse detection, the counters by reason say so, and
//! the key table's ages and (with Redis) the revocation replica's lag are there with
//! sane values. No token, cookie or password is ever in the text.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr,
    // Counts and whole seconds: exact in an f64.
    clippy::float_cmp
)]

#[allow(dead_code, unused_imports)]
#[path = "../examples/auth_server/main.rs"]
mod auth_server;
mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE};
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use token_core::test_support::{REDIS_URL, service_url};
use token_opaque::GracePolicy;
use token_policy::keystore::Kek;

use auth_server::{KeyOptions, Options};
use common::{TestServer, http, set_cookie, unique};

const PW: &str = "correct horse battery";

/// Every sample of a scrape, by its series (`name{labels}`).
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            let value = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("{l}")),
            };
            (series.to_owned(), value)
        })
        .collect()
}

struct Scrape(HashMap<String, f64>);

impl Scrape {
    fn get(&self, series: &str) -> f64 {
        self.0.get(series).copied().unwrap_or(0.0)
    }

    fn gauge(&self, series: &str) -> f64 {
        *self
            .0
            .get(series)
            .unwrap_or_else(|| panic!("no {series} in {:?}", self.0.keys()))
    }
}

async fn scrape(server: &TestServer) -> (Scrape, String) {
    let r = http().get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[CONTENT_TYPE], "text/plain; version=0.0.4");
    let text = r.text().await.unwrap();
    (Scrape(samples(&text)), text)
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn verify(outcome: &str, reason: &str) -> String {
    format!(
        "tessera_verify_total{{credential=\"access_token\",outcome=\"{outcome}\",reason=\"{reason}\"}}"
    )
}

fn http_auth(outcome: &str, reason: &str) -> String {
    format!("tessera_http_auth_total{{outcome=\"{outcome}\",reason=\"{reason}\"}}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // one story, told in order
async fn the_reference_service_serves_its_counters_by_reason_key_ages_and_revocation_lag() {
    let redis = service_url(REDIS_URL, "the revocation lag on /metrics");
    let dir = TempDir(std::env::temp_dir().join(format!("tessera-metrics-{}", unique())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let kek = dir.0.join("kek");
    let kek_text = Kek::generate()
        .unwrap()
        .to_paserk()
        .expose_secret()
        .to_owned();
    std::fs::write(&kek, &kek_text).unwrap();
    let bound = Duration::from_secs(2);
    let (router, app) = auth_server::build(Options {
        users: auth_server::parse_users(&format!("alice:{PW}")).unwrap(),
        insecure_cookies: true,
        database_url: format!("sqlite://{}", dir.0.join("auth.db").display()),
        keys: Some(KeyOptions {
            kek: kek.clone(),
            rotate_every: None,
            publish_ahead: None,
            refresh_every: None,
        }),
        redis_url: redis.clone(),
        revocation_max_staleness: redis.as_ref().map(|_| bound),
        // Every repeat of a rotated refresh token is reuse.
        refresh_grace: GracePolicy::disabled(),
        ..Options::default()
    })
    .await
    .unwrap();
    let server = TestServer::start(router).await;
    let client = http();
    let (before, _) = scrape(&server).await;

    // A login, a good verification and a tampered one.
    let r = client
        .post(server.url("/login"))
        .json(&json!({"username": "alice", "password": PW}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = set_cookie(&r, app.cookie.name()).unwrap().0.to_owned();
    let body: Value = r.json().await.unwrap();
    let access = body["access_token"].as_str().unwrap().to_owned();
    let me = |token: String| {
        let client = client.clone();
        let url = server.url("/me");
        async move {
            client
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(me(access.clone()).await, StatusCode::OK);
    let mut parts: Vec<String> = access.split('.').map(str::to_owned).collect();
    let middle = parts[2].len() / 2;
    let c = if &parts[2][middle..=middle] == "A" {
        "B"
    } else {
        "A"
    };
    parts[2].replace_range(middle..=middle, c);
    assert_eq!(me(parts.join(".")).await, StatusCode::UNAUTHORIZED);

    // A refresh, then the old refresh token again: reuse detected.
    let refresh = |cookie: String| {
        let client = client.clone();
        let url = server.url("/refresh");
        let name = app.cookie.name().to_owned();
        async move {
            client
                .post(url)
                .header(COOKIE, format!("{name}={cookie}"))
                .json(&json!({}))
                .send()
                .await
                .unwrap()
        }
    };
    let r = refresh(cookie.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let rotated = set_cookie(&r, app.cookie.name()).unwrap().0.to_owned();
    assert_eq!(
        refresh(cookie.clone()).await.status(),
        StatusCode::UNAUTHORIZED
    );

    let (after, text) = scrape(&server).await;
    let delta = |series: &str| after.get(series) - before.get(series);
    let all = &text;
    // Verify outcomes by reason, in token-policy and at the auth layer.
    assert_eq!(delta(&verify("accepted", "none")), 1.0, "{all}");
    assert_eq!(delta(&verify("refused", "invalid token")), 1.0, "{all}");
    assert_eq!(delta(&http_auth("accepted", "none")), 1.0, "{all}");
    assert_eq!(delta(&http_auth("refused", "invalid token")), 1.0, "{all}");
    // Issued, rotated, reused, revoked.
    assert_eq!(
        delta("tessera_tokens_issued_total{kind=\"access\"}"),
        2.0,
        "{all}"
    );
    assert_eq!(
        delta("tessera_tokens_issued_total{kind=\"refresh\"}"),
        2.0,
        "{all}"
    );
    assert_eq!(
        delta("tessera_refresh_total{outcome=\"rotated\"}"),
        1.0,
        "{all}"
    );
    assert_eq!(
        delta("tessera_refresh_total{outcome=\"reuse detected: session revoked\"}"),
        1.0,
        "{all}"
    );
    assert_eq!(delta("tessera_refresh_reuse_detected_total"), 1.0, "{all}");
    assert_eq!(
        delta("tessera_revocations_total{kind=\"session\"}"),
        1.0,
        "{all}"
    );
    // The key table, read at the scrape: one active access key, created at start.
    assert_eq!(
        after.gauge("tessera_keys{job=\"access\",state=\"active\"}"),
        1.0
    );
    for gauge in ["tessera_key_age_seconds", "tessera_key_signing_age_seconds"] {
        let age = after.gauge(&format!("{gauge}{{job=\"access\",state=\"active\"}}"));
        assert!((0.0..600.0).contains(&age), "{gauge} {age}\n{all}");
    }
    assert_eq!(
        after.gauge("tessera_keys{job=\"access\",state=\"pending\"}"),
        0.0
    );
    // Described, typed.
    assert!(
        text.contains("# TYPE tessera_verify_total counter\n"),
        "{all}"
    );
    assert!(
        text.contains("# HELP tessera_verify_total Credential verifications"),
        "{all}"
    );
    assert!(
        text.contains("# TYPE tessera_key_age_seconds gauge\n"),
        "{all}"
    );
    // The revocation replica: synced within the bound.
    if redis.is_some() {
        let lag = after.gauge("tessera_revocation_lag_seconds");
        assert!(lag.is_finite() && (0.0..=2.0).contains(&lag), "lag {lag}");
        assert_eq!(after.gauge("tessera_revocation_max_staleness_seconds"), 2.0);
        assert!(
            after.gauge("tessera_revocation_resyncs_total") >= 1.0,
            "{all}"
        );
        // The session revoked by the reuse detection reaches the replica's memory.
        let start = std::time::Instant::now();
        while scrape(&server).await.0.gauge("tessera_revocation_entries") < 1.0 {
            assert!(
                start.elapsed() < bound,
                "no revocation entry within {bound:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Nothing secret in the text.
    for (what, secret) in [
        ("access token", access.as_str()),
        ("refresh token", cookie.as_str()),
        ("rotated refresh token", rotated.as_str()),
        ("password", PW),
        ("key-encryption key", kek_text.as_str()),
    ] {
        assert!(!text.contains(secret), "the {what} is in /metrics");
    }
    server.stop().await;
}
