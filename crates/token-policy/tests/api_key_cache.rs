//! The in-process cache of verified API keys: a warm verification reads no database,
//! and a key revoked, rolled or logged out everywhere on one instance is refused on
//! every other within the revocation replica's bound.
#![cfg(all(feature = "sqlite", feature = "redis"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::ExposeSecret as _;
use token_core::test_support::{REDIS_URL, service_url};
use token_opaque::format::Environment;
use token_opaque::{NewApiKey, OpaqueTokens};
use token_paseto::{PublicIssuer, SecretKey, V4};
use token_policy::config::open_store;
use token_policy::{
    Blocklist, Policy, RedisBlocklist, ReplicaOptions, ReplicatedBlocklist, TokenService,
};

fn unique(name: &str) -> String {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    format!("{name}-{:016x}", u64::from_le_bytes(b))
}

struct TempDb(std::path::PathBuf);

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

async fn service(url: &str, blocklist: Arc<dyn Blocklist>) -> TokenService {
    TokenService::builder(
        Policy::new("https://auth.example", "api"),
        PublicIssuer::new(SecretKey::<V4>::generate().unwrap()),
    )
    .opaque(OpaqueTokens::new(open_store(url).await.unwrap()))
    .blocklist(blocklist)
    .cache_api_keys(Duration::from_secs(300))
    .build()
}

#[tokio::test]
async fn a_warm_verification_reads_no_database() {
    let db = TempDb(std::env::temp_dir().join(format!("{}.db", unique("akc"))));
    let url = format!("sqlite://{}", db.0.display());
    let svc = service(
        &url,
        Arc::new(token_policy::MemoryBlocklist::with_capacity(
            100,
            Arc::new(token_core::SystemClock),
        )),
    )
    .await;
    let created = svc
        .issue_api_key(NewApiKey::new("alice", "ci", Environment::Live))
        .await
        .unwrap();
    let raw = created.key.expose_secret();
    svc.verify_api_key(raw).await.unwrap();
    // Revoked behind the service's back, straight in the store: the cache still
    // answers, which shows the warm path reads nothing (and why revocations go
    // through the service).
    let id = svc.verify_api_key(raw).await.unwrap().id;
    assert!(
        svc.opaque()
            .unwrap()
            .api_keys()
            .revoke("alice", &id)
            .await
            .unwrap()
    );
    svc.verify_api_key(raw).await.unwrap();
    // Through the service: refused at once.
    let other = svc
        .issue_api_key(NewApiKey::new("alice", "ci-2", Environment::Live))
        .await
        .unwrap();
    let other_raw = other.key.expose_secret();
    let other_id = svc.verify_api_key(other_raw).await.unwrap().id;
    assert!(svc.revoke_api_key("alice", &other_id).await.unwrap());
    let err = svc.verify_api_key(other_raw).await.unwrap_err();
    assert_eq!(err.reason().as_str(), "revoked");
    // A wrong key (its last character changed) is never served from the cache.
    let mut wrong = raw.to_owned();
    let last = wrong.pop().unwrap();
    wrong.push(if last == 'x' { 'y' } else { 'x' });
    let err = svc.verify_api_key(&wrong).await.unwrap_err();
    assert_ne!(err.reason().as_str(), "ok");
}

/// Waits for `f` to hold, checking every 10 ms, for at most two seconds; the time taken.
async fn within_bound<F, Fut>(what: &str, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let t = Instant::now();
    while !f().await {
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "{what}: not within 2 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    t.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_changed_on_one_instance_is_refused_on_the_other_within_the_bound() {
    let Some(redis) = service_url(REDIS_URL, "API-key cache invalidation") else {
        return;
    };
    let db = TempDb(std::env::temp_dir().join(format!("{}.db", unique("akc-fleet"))));
    let url = format!("sqlite://{}", db.0.display());
    let prefix = format!("{}:", unique("akc"));
    let mut instances = Vec::new();
    for _ in 0..2 {
        let source = RedisBlocklist::connect(&redis)
            .await
            .unwrap()
            .with_prefix(prefix.clone());
        let replica = ReplicatedBlocklist::start(source, ReplicaOptions::default())
            .await
            .unwrap();
        instances.push(service(&url, Arc::new(replica)).await);
    }
    let (a, b) = (&instances[0], &instances[1]);
    let issue = |name: &'static str, owner: &'static str| async move {
        a.issue_api_key(NewApiKey::new(owner, name, Environment::Live))
            .await
            .unwrap()
            .key
    };

    // Revoked on A: refused on B, whose cache held it.
    let k1 = issue("k1", "alice").await;
    let id1 = b.verify_api_key(k1.expose_secret()).await.unwrap().id;
    b.verify_api_key(k1.expose_secret()).await.unwrap();
    assert!(a.revoke_api_key("alice", &id1).await.unwrap());
    let took = within_bound("revoked key refused on b", || async {
        b.verify_api_key(k1.expose_secret()).await.is_err()
    })
    .await;
    eprintln!("API key revoked on A, refused on B after {took:?}");

    // Rolled on A with no overlap: the old key is refused on B.
    let k2 = issue("k2", "alice").await;
    let id2 = b.verify_api_key(k2.expose_secret()).await.unwrap().id;
    let rolled = a.roll_api_key("alice", &id2, Duration::ZERO).await.unwrap();
    within_bound("rolled key refused on b", || async {
        b.verify_api_key(k2.expose_secret()).await.is_err()
    })
    .await;
    b.verify_api_key(rolled.key.expose_secret()).await.unwrap();

    // Logged out everywhere on A: every key of the owner refused on B; another
    // owner's cached key stays.
    let k3 = issue("k3", "bob").await;
    let k4 = issue("k4", "carol").await;
    b.verify_api_key(k3.expose_secret()).await.unwrap();
    b.verify_api_key(k4.expose_secret()).await.unwrap();
    a.logout_everywhere("bob").await.unwrap();
    within_bound("logged-out owner's key refused on b", || async {
        b.verify_api_key(k3.expose_secret()).await.is_err()
    })
    .await;
    b.verify_api_key(k4.expose_secret()).await.unwrap();
}
