//! Rotation under load: two issuing services sharing a key table, and a resource
//! server verifying through a `KeySetClient`, while the keys rotate every few seconds
//! and one is revoked. A bounded run on loopback: no valid token is refused, and every
//! token naming the revoked key is refused everywhere within the refresh bound.
#![cfg(feature = "client")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::too_many_lines
)]

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use token_axum::{AuthState, KeySetClient, KeySetFormat, well_known};
use token_core::{Clock, RegisteredClaim, SystemClock, Validation};
use token_opaque::OpaqueTokens;
use token_policy::config::open_store;
use token_policy::keystore::{self, Kek, KeyPlan, KeyStore};
use token_policy::{Policy, TokenService};

const ISSUER: &str = "https://auth.example";
const AUDIENCE: &str = "api";
/// How often the issuing services re-read the key table.
const REFRESH: Duration = Duration::from_millis(200);
/// How long verifiers may cache the key set.
const MAX_AGE: Duration = Duration::from_secs(1);
/// How long the run lasts.
const RUN: Duration = Duration::from_secs(12);

fn policy() -> Policy {
    Policy::new(ISSUER, AUDIENCE)
}

struct TempDb(PathBuf);

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

struct Issuer {
    svc: Arc<TokenService>,
    keys: Arc<KeyStore>,
    addr: SocketAddr,
}

async fn issuer(url: &str, kek: &str) -> Issuer {
    let store = open_store(url).await.unwrap();
    let plan = KeyPlan::for_policy(&policy())
        .rotate_every(Duration::from_secs(4))
        .publish_ahead(Duration::from_secs(2))
        .refresh_every(REFRESH);
    plan.check(MAX_AGE).unwrap();
    let keys =
        Arc::new(KeyStore::new(store.clone(), Kek::from_paserk(kek).unwrap(), plan).unwrap());
    let snapshot = keys.open().await.unwrap();
    let svc = Arc::new(
        TokenService::builder_with_keys(policy(), snapshot)
            .unwrap()
            .opaque(OpaqueTokens::new(store))
            .build(),
    );
    tokio::spawn(keys.clone().keep_installed(Arc::downgrade(&svc)));
    let router: Router =
        well_known::routes().with_state(AuthState::new(svc.clone()).key_set_max_age(MAX_AGE));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    Issuer { svc, keys, addr }
}

fn kid(token: &str) -> String {
    token_paseto::dangerous_decode_parts(token)
        .unwrap()
        .footer_kid()
        .unwrap()
        .unwrap()
        .to_string()
}

#[derive(Default)]
struct Tally {
    /// Verifications of tokens whose key was never revoked, by verifier: (ok, refused).
    valid: BTreeMap<&'static str, (u64, u64)>,
    /// Tokens signed by the revoked key, verified after the bound: accepted count.
    revoked_accepted_after_bound: u64,
    revoked_checked_after_bound: u64,
    kids: HashSet<String>,
    /// Some tokens of each key (the first ones it signed), to check after the run.
    samples: BTreeMap<String, Vec<String>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_under_load_refuses_no_valid_token_and_drops_a_revoked_key() {
    let db =
        TempDb(std::env::temp_dir().join(format!("tessera-rotation-{}.db", std::process::id())));
    let url = format!("sqlite://{}", db.0.display());
    let kek = Kek::generate()
        .unwrap()
        .to_paserk()
        .expose_secret()
        .to_owned();
    let a = issuer(&url, &kek).await;
    let b = issuer(&url, &kek).await;
    let client = KeySetClient::builder(
        &format!("http://{}{}", a.addr, well_known::PASETO_KEYS_PATH),
        KeySetFormat::Paseto,
    )
    .unwrap()
    .use_system_proxy(false)
    .min_refresh_interval(Duration::from_millis(100))
    .build()
    .unwrap();
    let validation = Validation::new()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .require(RegisteredClaim::Sub);

    let store = open_store(&url).await.unwrap();
    let started = Instant::now();
    let mut revoked: Option<(String, Instant, String)> = None;
    let bound = REFRESH * 2 + MAX_AGE + Duration::from_millis(500);
    let mut tally = Tally::default();
    let mut round = 0u64;
    while started.elapsed() < RUN {
        round += 1;
        let (from, to) = if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let token = from
            .svc
            .issue_access("usr_load", "sid_load", &json!({"role": "user"}))
            .unwrap();
        let token = token.expose_secret();
        let key = kid(token);
        tally.kids.insert(key.clone());
        let sample = tally.samples.entry(key.clone()).or_default();
        if sample.len() < 20 {
            sample.push(token.to_owned());
        }

        // Half-way, the key that signs now is revoked.
        if revoked.is_none() && started.elapsed() >= RUN / 2 {
            assert!(
                keystore::revoke(store.as_ref(), &key, SystemClock.now())
                    .await
                    .unwrap()
            );
            revoked = Some((key.clone(), Instant::now(), token.to_owned()));
            continue;
        }
        let outcomes = [
            (
                "issuer",
                from.svc.verify_access::<Value>(token).await.is_ok(),
            ),
            ("peer", to.svc.verify_access::<Value>(token).await.is_ok()),
            (
                "resource",
                client.verify::<Value>(token, &validation).await.is_ok(),
            ),
        ];
        match &revoked {
            Some((bad, at, _)) if *bad == key => {
                if at.elapsed() > bound {
                    tally.revoked_checked_after_bound += 1;
                    for (name, ok) in outcomes {
                        if ok {
                            tally.revoked_accepted_after_bound += 1;
                            eprintln!("{name} accepted a token of the revoked key after the bound");
                        }
                    }
                }
            }
            // A replacement key that signs at once (no publish-ahead after a revocation)
            // reaches the peer within its refresh: tokens issued meanwhile are not
            // counted against the schedule.
            Some((_, at, _)) if at.elapsed() <= bound => {}
            _ => {
                for (name, ok) in outcomes {
                    let e = tally.valid.entry(name).or_default();
                    if ok {
                        e.0 += 1;
                    } else {
                        e.1 += 1;
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let (bad, at, old) = revoked.expect("the run reached its middle");
    // After the bound, every token of the revoked key is refused by every verifier,
    // and every token of the other keys still verifies everywhere.
    let wait = bound.saturating_sub(at.elapsed());
    tokio::time::sleep(wait).await;
    let mut checked = 0;
    for (key, tokens) in &tally.samples {
        for token in tokens.iter().chain((key == &bad).then_some(&old)) {
            checked += 1;
            for (name, ok) in [
                ("a", a.svc.verify_access::<Value>(token).await.is_ok()),
                ("b", b.svc.verify_access::<Value>(token).await.is_ok()),
                (
                    "resource",
                    client.verify::<Value>(token, &validation).await.is_ok(),
                ),
            ] {
                if key == &bad {
                    assert!(!ok, "{name} still accepts a token of revoked key {bad}");
                } else {
                    assert!(ok, "{name} refuses a token of live key {key}");
                }
            }
        }
    }
    assert!(checked > 40, "{checked}");
    assert_eq!(tally.revoked_accepted_after_bound, 0);

    eprintln!(
        "rotation under load: {} signing keys seen over {round} rounds, verifications {:?}, \
         {} checks of the revoked key after the bound; key refreshes a={:?} b={:?}; \
         key-set fetches {}",
        tally.kids.len(),
        tally.valid,
        tally.revoked_checked_after_bound,
        a.keys.status(),
        b.keys.status(),
        client.fetch_count()
    );
    // Keys rotated (every 4 s over 12 s, plus the revocation's replacement).
    assert!(tally.kids.len() >= 3, "{:?}", tally.kids);
    for (name, (ok, refused)) in &tally.valid {
        assert_eq!(
            *refused, 0,
            "{name} refused {refused} valid tokens ({ok} accepted)"
        );
        assert!(*ok > 100, "{name}: only {ok} verifications");
    }
    assert_eq!(a.keys.status().failures, 0, "{:?}", a.keys.status());
}
