//! Counts the database and Redis round trips of each flow — login, refresh, logout,
//! verify (access token, API key warm and cold), log out everywhere — through counting
//! wrappers around the store and the revocation list, on PostgreSQL + the Redis
//! replica. The figures feed docs/SCALING.md, and the exact counts are asserted, so a
//! change that adds a round trip to a flow fails here.
#![cfg(all(feature = "postgres", feature = "redis"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    clippy::too_many_lines
)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use secrecy::ExposeSecret as _;
use token_core::test_support::{DATABASE_URL, REDIS_URL, service_url};
use token_core::{OpaqueKind, Timestamp};
use token_opaque::format::Environment;
use token_opaque::store::{
    ApiKeyRecord, NewRefreshToken, OneTimeRecord, RotateOutcome, RotateRequest, SessionRecord,
};
use token_opaque::{
    KeyTable, NewApiKey, OpaqueStore, OpaqueTokens, PurgeReport, RefreshFamilyRecord, TokenHash,
    UserRevocation,
};
use token_paseto::{PublicIssuer, SecretKey, V4};
use token_policy::config::open_store;
use token_policy::{
    Blocklist, Policy, RedisBlocklist, ReplicaOptions, ReplicatedBlocklist, Revocation, TokenRef,
    TokenService,
};

type Counts = Arc<Mutex<BTreeMap<&'static str, u32>>>;

fn count(counts: &Counts, what: &'static str) {
    *counts.lock().unwrap().entry(what).or_default() += 1;
}

/// A store that counts its calls: each is one database round trip (a statement or a
/// transaction).
#[derive(Debug)]
struct CountingStore {
    inner: Arc<dyn OpaqueStore>,
    counts: Counts,
}

/// The whole impl, so `async_trait` sees every method after expansion.
macro_rules! delegate {
    ($( fn $name:ident(&self $(, $arg:ident : $ty:ty)*) -> $ret:ty; )*) => {
        #[async_trait]
        impl OpaqueStore for CountingStore {
            fn backend(&self) -> &'static str {
                self.inner.backend()
            }

            fn key_table(&self) -> Option<&dyn KeyTable> {
                self.inner.key_table()
            }

            $(
                async fn $name(&self $(, $arg: $ty)*) -> token_opaque::Result<$ret> {
                    count(&self.counts, stringify!($name));
                    self.inner.$name($($arg),*).await
                }
            )*
        }
    };
}

delegate! {
        fn insert_api_key(&self, key: &ApiKeyRecord, max_live: u32) -> ();
        fn find_api_key(&self, hash: &TokenHash, kind: OpaqueKind) -> Option<ApiKeyRecord>;
        fn get_api_key(&self, owner_id: &str, id: &str) -> Option<ApiKeyRecord>;
        fn list_api_keys(&self, owner_id: &str) -> Vec<ApiKeyRecord>;
        fn touch_api_key(&self, id: &str, now: Timestamp, used_before: Timestamp) -> bool;
        fn rehash_api_key(&self, id: &str, old: &TokenHash, new: &TokenHash) -> bool;
        fn revoke_api_key(&self, owner_id: &str, id: &str, now: Timestamp) -> bool;
        fn revoke_api_keys_of_owner(&self, owner_id: &str, now: Timestamp) -> u64;
        fn roll_api_key(&self, old_id: &str, new: &ApiKeyRecord, overlap_until: Timestamp, now: Timestamp) -> ApiKeyRecord;
        fn create_refresh_family(&self, family: &RefreshFamilyRecord, token: &NewRefreshToken) -> ();
        fn rotate_refresh(&self, request: &RotateRequest) -> RotateOutcome;
        fn find_refresh_family(&self, hash: &TokenHash) -> Option<RefreshFamilyRecord>;
        fn revoke_refresh_family(&self, user_id: &str, family_id: &str, reason: &str, now: Timestamp) -> bool;
        fn list_refresh_families(&self, user_id: &str, now: Timestamp) -> Vec<RefreshFamilyRecord>;
        fn insert_one_time(&self, token: &OneTimeRecord, min_interval: Duration) -> ();
        fn redeem_one_time(&self, hash: &TokenHash, kind: OpaqueKind, now: Timestamp) -> OneTimeRecord;
        fn delete_one_time_for_user(&self, user_id: &str, kind: Option<OpaqueKind>) -> u64;
        fn insert_session(&self, session: &SessionRecord) -> ();
        fn find_session(&self, hash: &TokenHash) -> Option<SessionRecord>;
        fn touch_session(&self, id: &str, now: Timestamp, idle_expires_at: Timestamp, seen_before: Timestamp) -> bool;
        fn set_session_data(&self, id: &str, data: &str) -> bool;
        fn list_sessions(&self, user_id: &str, now: Timestamp) -> Vec<SessionRecord>;
        fn delete_session(&self, user_id: &str, id: &str) -> bool;
        fn delete_sessions_for_user(&self, user_id: &str, keep: Option<&str>) -> u64;
        fn revoke_user(&self, user_id: &str, now: Timestamp) -> UserRevocation;
        fn purge_expired(&self, now: Timestamp, rate_limits_before: Timestamp) -> PurgeReport;
}

/// A revocation list that counts the calls that reach Redis: every write (one script),
/// single use, and reads only when they are not answered from the replica's memory.
struct CountingBlocklist {
    inner: ReplicatedBlocklist,
    counts: Counts,
}

#[async_trait]
impl Blocklist for CountingBlocklist {
    async fn revoke(&self, jti: &str, expires_at: Timestamp) -> token_policy::Result<bool> {
        count(&self.counts, "redis:revoke");
        self.inner.revoke(jti, expires_at).await
    }
    async fn is_revoked(&self, jti: &str) -> token_policy::Result<bool> {
        self.inner.is_revoked(jti).await
    }
    async fn revoke_subject_before(
        &self,
        subject: &str,
        cutoff: Timestamp,
        keep_until: Timestamp,
    ) -> token_policy::Result<()> {
        count(&self.counts, "redis:revoke_subject_before");
        self.inner
            .revoke_subject_before(subject, cutoff, keep_until)
            .await
    }
    async fn subject_cutoff(&self, subject: &str) -> token_policy::Result<Option<Timestamp>> {
        self.inner.subject_cutoff(subject).await
    }
    async fn revoke_session(&self, sid: &str, keep_until: Timestamp) -> token_policy::Result<()> {
        count(&self.counts, "redis:revoke_session");
        self.inner.revoke_session(sid, keep_until).await
    }
    async fn is_session_revoked(&self, sid: &str) -> token_policy::Result<bool> {
        self.inner.is_session_revoked(sid).await
    }
    async fn lookup(&self, token: TokenRef<'_>) -> token_policy::Result<Revocation> {
        self.inner.lookup(token).await
    }
    async fn api_key_changed(
        &self,
        owner: &str,
        id: Option<&str>,
        at: Timestamp,
        keep_until: Timestamp,
    ) -> token_policy::Result<()> {
        count(&self.counts, "redis:api_key_changed");
        self.inner.api_key_changed(owner, id, at, keep_until).await
    }
    async fn api_key_changed_at(
        &self,
        owner: &str,
        id: &str,
    ) -> token_policy::Result<Option<Timestamp>> {
        self.inner.api_key_changed_at(owner, id).await
    }
    async fn consume(
        &self,
        subject: &str,
        jti: &str,
        expires_at: Timestamp,
    ) -> token_policy::Result<bool> {
        count(&self.counts, "redis:consume");
        self.inner.consume(subject, jti, expires_at).await
    }
}

fn unique(name: &str) -> String {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    format!("{name}-{:016x}", u64::from_le_bytes(b))
}

#[derive(serde::Serialize)]
struct Role {
    role: &'static str,
}

/// (database round trips, Redis round trips) since the last call.
fn take(counts: &Counts) -> (u32, u32, String) {
    let mut c = counts.lock().unwrap();
    let redis: u32 = c
        .iter()
        .filter(|(k, _)| k.starts_with("redis:"))
        .map(|(_, v)| v)
        .sum();
    let db: u32 = c
        .iter()
        .filter(|(k, _)| !k.starts_with("redis:"))
        .map(|(_, v)| v)
        .sum();
    let detail = c
        .iter()
        .map(|(k, v)| format!("{k}×{v}"))
        .collect::<Vec<_>>()
        .join(", ");
    c.clear();
    (db, redis, detail)
}

#[tokio::test]
async fn round_trips_per_flow_on_postgres_and_the_redis_replica() {
    let (Some(db), Some(redis)) = (
        service_url(DATABASE_URL, "round trips on PostgreSQL"),
        service_url(REDIS_URL, "round trips on Redis"),
    ) else {
        return;
    };
    let counts: Counts = Arc::default();
    let store: Arc<dyn OpaqueStore> = Arc::new(CountingStore {
        inner: open_store(&db).await.unwrap(),
        counts: counts.clone(),
    });
    let source = RedisBlocklist::connect(&redis)
        .await
        .unwrap()
        .with_prefix(format!("{}:", unique("ops")));
    let replica = ReplicatedBlocklist::start(source, ReplicaOptions::default())
        .await
        .unwrap();
    let svc = TokenService::builder(
        Policy::new("https://auth.example", "api"),
        PublicIssuer::new(SecretKey::<V4>::generate().unwrap()),
    )
    .opaque(OpaqueTokens::new(store))
    .blocklist(Arc::new(CountingBlocklist {
        inner: replica,
        counts: counts.clone(),
    }))
    .cache_api_keys(Duration::from_secs(300))
    .build();
    let user = unique("usr");
    let role = Role { role: "user" };

    let mut rows = Vec::new();
    let mut measure = |flow: &'static str, expected: (u32, u32)| {
        let (db, redis, detail) = take(&counts);
        eprintln!("{flow:<28} database {db}  redis {redis}   ({detail})");
        rows.push((flow, db, redis));
        assert_eq!((db, redis), expected, "{flow}: {detail}");
    };

    let login = svc.login(&user, &role).await.unwrap();
    measure("login", (1, 0));
    svc.verify_access::<serde_json::Value>(login.access.expose_secret())
        .await
        .unwrap();
    measure("verify access token", (0, 0));
    let refreshed = svc
        .refresh(login.refresh.expose_secret(), |_| Role { role: "user" })
        .await
        .unwrap();
    // The family is read (whose user, for the new claims) and the token signed before
    // the rotation commits.
    measure("refresh", (2, 0));
    let key = svc
        .issue_api_key(NewApiKey::new(&user, "ci", Environment::Live))
        .await
        .unwrap();
    measure("create API key", (1, 0));
    svc.verify_api_key(key.key.expose_secret()).await.unwrap();
    // The first verification reads the key and records its first use.
    measure("verify API key (cold)", (2, 0));
    svc.verify_api_key(key.key.expose_secret()).await.unwrap();
    measure("verify API key (warm)", (0, 0));
    svc.logout(
        refreshed.access.expose_secret(),
        refreshed.refresh.expose_secret(),
    )
    .await
    .unwrap();
    // Revoke the session in Redis, then find and revoke the family in the database.
    measure("logout", (2, 1));
    svc.login(&user, &role).await.unwrap();
    take(&counts);
    svc.logout_everywhere(&user).await.unwrap();
    measure("logout everywhere", (2, 2));
    assert_eq!(rows.len(), 8);
}
