//! Revocation through `TokenService` when things go wrong: sessions end with their
//! access tokens, failures are reported before anything claims success, single use
//! cannot crowd out logout, a credential change ends every credential. On the embedded
//! default and on PostgreSQL + Redis when their URLs are set (mandatory in CI).
#![cfg(feature = "sqlite")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
#[cfg(all(feature = "postgres", feature = "redis"))]
use token_core::test_support::{DATABASE_URL, REDIS_URL, service_url};
use token_core::{Clock, ManualClock, Timestamp};
use token_opaque::{Environment, NewApiKey, OpaqueTokens};
use token_paseto::{LocalCipher, LocalKey, PublicIssuer, SecretKey, V4};
#[cfg(feature = "redis")]
use token_policy::RedisBlocklist;
use token_policy::config::open_store;
use token_policy::{Blocklist, Error, MemoryBlocklist, Policy, Revocation, TokenRef, TokenService};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Session {
    role: String,
}

fn session() -> Session {
    Session {
        role: "member".into(),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Payment {
    order_id: String,
}

fn unique(name: &str) -> String {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    format!("{name}-{:016x}", u64::from_le_bytes(b))
}

/// A blocklist that can be taken down: every call fails with a backend error while
/// `down` is set, as a Redis outage does.
struct Outage {
    inner: Arc<dyn Blocklist>,
    down: AtomicBool,
}

impl Outage {
    fn check(&self) -> token_policy::Result<()> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::Backend("redis (IoError)".into()));
        }
        Ok(())
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }
}

#[async_trait]
impl Blocklist for Outage {
    async fn revoke(&self, jti: &str, expires_at: Timestamp) -> token_policy::Result<bool> {
        self.check()?;
        self.inner.revoke(jti, expires_at).await
    }
    async fn is_revoked(&self, jti: &str) -> token_policy::Result<bool> {
        self.check()?;
        self.inner.is_revoked(jti).await
    }
    async fn revoke_subject_before(
        &self,
        subject: &str,
        cutoff: Timestamp,
        keep_until: Timestamp,
    ) -> token_policy::Result<()> {
        self.check()?;
        self.inner
            .revoke_subject_before(subject, cutoff, keep_until)
            .await
    }
    async fn subject_cutoff(&self, subject: &str) -> token_policy::Result<Option<Timestamp>> {
        self.check()?;
        self.inner.subject_cutoff(subject).await
    }
    async fn revoke_session(&self, sid: &str, keep_until: Timestamp) -> token_policy::Result<()> {
        self.check()?;
        self.inner.revoke_session(sid, keep_until).await
    }
    async fn is_session_revoked(&self, sid: &str) -> token_policy::Result<bool> {
        self.check()?;
        self.inner.is_session_revoked(sid).await
    }
    async fn lookup(&self, token: TokenRef<'_>) -> token_policy::Result<Revocation> {
        self.check()?;
        self.inner.lookup(token).await
    }
    async fn consume(
        &self,
        subject: &str,
        jti: &str,
        expires_at: Timestamp,
    ) -> token_policy::Result<bool> {
        self.check()?;
        self.inner.consume(subject, jti, expires_at).await
    }
}

struct Backend {
    name: &'static str,
    database: String,
    redis: Option<String>,
}

fn backends() -> Vec<Backend> {
    #[cfg_attr(not(all(feature = "postgres", feature = "redis")), allow(unused_mut))]
    let mut out = vec![Backend {
        name: "sqlite+memory",
        database: "sqlite::memory:".into(),
        redis: None,
    }];
    #[cfg(all(feature = "postgres", feature = "redis"))]
    if let (Some(db), Some(redis)) = (
        service_url(DATABASE_URL, "token-policy revocation on PostgreSQL"),
        service_url(REDIS_URL, "token-policy revocation on Redis"),
    ) {
        out.push(Backend {
            name: "postgres+redis",
            database: db,
            redis: Some(redis),
        });
    }
    out
}

struct Fixture {
    svc: TokenService,
    outage: Arc<Outage>,
    clock: Arc<ManualClock>,
}

async fn fixture(backend: &Backend, single_use_per_subject: usize) -> Fixture {
    let clock = Arc::new(ManualClock::at_system_now());
    let store = open_store(&backend.database).await.unwrap();
    let opaque = OpaqueTokens::builder(store)
        .clock(clock.clone())
        .build()
        .unwrap();
    let inner: Arc<dyn Blocklist> = match &backend.redis {
        #[cfg(feature = "redis")]
        Some(url) => Arc::new(
            RedisBlocklist::connect(url)
                .await
                .unwrap()
                .with_prefix(unique("rev") + ":")
                .with_clock(clock.clone())
                .single_use_per_subject(single_use_per_subject),
        ),
        #[cfg(not(feature = "redis"))]
        Some(_) => unreachable!("Redis backends need the redis feature"),
        None => Arc::new(
            MemoryBlocklist::with_capacity(10_000, clock.clone())
                .single_use_per_subject(single_use_per_subject),
        ),
    };
    let outage = Arc::new(Outage {
        inner,
        down: AtomicBool::new(false),
    });
    let svc = TokenService::builder(
        Policy::new("https://auth.example", "api"),
        PublicIssuer::new(SecretKey::<V4>::generate().unwrap()),
    )
    .payment(LocalCipher::new(LocalKey::<V4>::generate().unwrap()))
    .opaque(opaque)
    .blocklist(outage.clone())
    .clock(clock.clone())
    .build();
    Fixture { svc, outage, clock }
}

async fn assert_revoked(svc: &TokenService, access: &str, what: &str) {
    let err = svc.verify_access::<Session>(access).await.unwrap_err();
    assert!(matches!(err, Error::Revoked), "{what}: {err:?}");
}

#[tokio::test]
async fn reuse_detection_ends_the_access_tokens_of_the_family() {
    for backend in backends() {
        let f = fixture(&backend, 1000).await;
        let alice = unique("alice");
        let login = f.svc.login(&alice, &session()).await.unwrap();
        // The thief rotates first and holds a fresh access token of the family.
        let thief = f
            .svc
            .refresh(login.refresh.expose_secret(), |_| session())
            .await
            .unwrap();
        f.svc
            .verify_access::<Session>(thief.access.expose_secret())
            .await
            .unwrap();
        // The owner presents the rotated token: reuse, the family is revoked…
        let err = f
            .svc
            .refresh(login.refresh.expose_secret(), |_| session())
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Opaque(token_opaque::Error::ReuseDetected)),
            "{}: {err:?}",
            backend.name
        );
        // …and every access token minted from it, the thief's included.
        assert_revoked(&f.svc, thief.access.expose_secret(), backend.name).await;
        assert_revoked(&f.svc, login.access.expose_secret(), backend.name).await;
        // Another session of the same user is untouched.
        let other = f.svc.login(&alice, &session()).await.unwrap();
        f.svc
            .verify_access::<Session>(other.access.expose_secret())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn revoking_a_session_or_logging_out_ends_its_access_tokens() {
    for backend in backends() {
        let f = fixture(&backend, 1000).await;
        let bob = unique("bob");
        // "Log out that device" by session id.
        let a = f.svc.login(&bob, &session()).await.unwrap();
        let b = f.svc.login(&bob, &session()).await.unwrap();
        assert!(f.svc.revoke_session(&bob, &a.session_id).await.unwrap());
        assert_revoked(&f.svc, a.access.expose_secret(), backend.name).await;
        assert!(
            f.svc
                .refresh(a.refresh.expose_secret(), |_| session())
                .await
                .is_err()
        );
        f.svc
            .verify_access::<Session>(b.access.expose_secret())
            .await
            .unwrap();

        // Logout with the refresh cookie alone ends the session's access tokens too.
        let first = f
            .svc
            .refresh(b.refresh.expose_secret(), |_| session())
            .await
            .unwrap();
        f.svc
            .logout("", first.refresh.expose_secret())
            .await
            .unwrap();
        assert_revoked(&f.svc, b.access.expose_secret(), backend.name).await;
        assert_revoked(&f.svc, first.access.expose_secret(), backend.name).await;

        // Logout with the access token alone ends its refresh family too.
        let c = f.svc.login(&bob, &session()).await.unwrap();
        f.svc.logout(c.access.expose_secret(), "").await.unwrap();
        assert_revoked(&f.svc, c.access.expose_secret(), backend.name).await;
        let err = f
            .svc
            .refresh(c.refresh.expose_secret(), |_| session())
            .await
            .unwrap_err();
        assert_eq!(err.reason(), "revoked", "{}: {err:?}", backend.name);

        // The session entries die with the access tokens they revoke, once past their
        // expiry and the verifier's leeway (Redis expires them on its own clock, after
        // the same TTL; the injected clock moves the in-process list).
        if backend.redis.is_none() {
            f.clock.advance(Duration::from_secs(15 * 60 + 60 + 1));
            assert!(
                !f.svc
                    .blocklist()
                    .is_session_revoked(&a.session_id)
                    .await
                    .unwrap()
            );
        }
    }
}

#[tokio::test]
async fn logout_reports_a_revocation_outage_instead_of_success() {
    for backend in backends() {
        let f = fixture(&backend, 1000).await;
        let carol = unique("carol");
        let login = f.svc.login(&carol, &session()).await.unwrap();
        f.outage.set_down(true);
        let err = f
            .svc
            .logout(login.access.expose_secret(), login.refresh.expose_secret())
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Backend(_)),
            "{}: {err:?}",
            backend.name
        );
        let err = f.svc.logout_everywhere(&carol).await.unwrap_err();
        assert!(
            matches!(err, Error::Backend(_)),
            "{}: {err:?}",
            backend.name
        );
        // Nothing was half done: the refresh family was not revoked behind a live
        // access token, so the client can retry the whole logout.
        f.outage.set_down(false);
        f.svc
            .verify_access::<Session>(login.access.expose_secret())
            .await
            .unwrap();
        let again = f
            .svc
            .refresh(login.refresh.expose_secret(), |_| session())
            .await
            .unwrap();
        f.svc
            .logout(again.access.expose_secret(), again.refresh.expose_secret())
            .await
            .unwrap();
        assert_revoked(&f.svc, again.access.expose_secret(), backend.name).await;
        assert_revoked(&f.svc, login.access.expose_secret(), backend.name).await;
    }
}

#[tokio::test]
async fn a_failed_refresh_leaves_the_token_usable_for_the_retry() {
    for backend in backends() {
        let f = fixture(&backend, 1000).await;
        let dave = unique("dave");
        let login = f.svc.login(&dave, &session()).await.unwrap();
        // The revocation backend fails during the refresh (the cut-off lookup that
        // stamps the new access token)…
        f.outage.set_down(true);
        let err = f
            .svc
            .refresh(login.refresh.expose_secret(), |_| session())
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Backend(_)),
            "{}: {err:?}",
            backend.name
        );
        // …and nothing was committed: the client's retry is a normal rotation, not a
        // replay that revokes the family.
        f.outage.set_down(false);
        let retried = f
            .svc
            .refresh(login.refresh.expose_secret(), |_| session())
            .await
            .unwrap();
        f.svc
            .verify_access::<Session>(retried.access.expose_secret())
            .await
            .unwrap();
        f.svc
            .refresh(retried.refresh.expose_secret(), |_| session())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn single_use_cannot_crowd_out_logout() {
    for backend in backends() {
        let f = fixture(&backend, 5).await;
        let erin = unique("erin");
        let login = f.svc.login(&erin, &session()).await.unwrap();
        for i in 0..5 {
            let token = f
                .svc
                .issue_payment(
                    Payment {
                        order_id: format!("o-{i}"),
                    },
                    &erin,
                )
                .unwrap();
            f.svc
                .consume_payment::<Payment>(token.expose_secret(), &erin)
                .await
                .unwrap();
        }
        let sixth = f
            .svc
            .issue_payment(
                Payment {
                    order_id: "o-6".into(),
                },
                &erin,
            )
            .unwrap();
        let err = f
            .svc
            .consume_payment::<Payment>(sixth.expose_secret(), &erin)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::SingleUseLimit),
            "{}: {err:?}",
            backend.name
        );
        assert_eq!(err.reason(), "rate limited");
        // Another user pays; erin logs out everywhere and once more: all succeed.
        let frank = unique("frank");
        let token = f
            .svc
            .issue_payment(
                Payment {
                    order_id: "f-1".into(),
                },
                &frank,
            )
            .unwrap();
        f.svc
            .consume_payment::<Payment>(token.expose_secret(), &frank)
            .await
            .unwrap();
        f.svc
            .logout(login.access.expose_secret(), login.refresh.expose_secret())
            .await
            .unwrap();
        assert_revoked(&f.svc, login.access.expose_secret(), backend.name).await;
        f.svc.logout_everywhere(&erin).await.unwrap();
        // Once the payment tokens have expired the bound frees up.
        f.clock.advance(Duration::from_secs(5 * 60 + 1));
        let later = f
            .svc
            .issue_payment(
                Payment {
                    order_id: "o-7".into(),
                },
                &erin,
            )
            .unwrap();
        f.svc
            .consume_payment::<Payment>(later.expose_secret(), &erin)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_credential_change_ends_every_credential_api_keys_included() {
    for backend in backends() {
        let f = fixture(&backend, 1000).await;
        let gina = unique("gina");
        let login = f.svc.login(&gina, &session()).await.unwrap();
        // What an attacker who briefly held the account leaves behind.
        let planted = f
            .svc
            .issue_api_key(NewApiKey::new(gina.clone(), "backdoor", Environment::Live))
            .await
            .unwrap();
        let rolled_from = f
            .svc
            .issue_api_key(NewApiKey::new(gina.clone(), "ci", Environment::Test))
            .await
            .unwrap();
        let rolled = f
            .svc
            .opaque()
            .unwrap()
            .api_keys()
            .roll(&gina, &rolled_from.info.id, Duration::from_secs(3600))
            .await
            .unwrap();
        let bystander = unique("hal");
        let theirs = f
            .svc
            .issue_api_key(NewApiKey::new(bystander.clone(), "ci", Environment::Live))
            .await
            .unwrap();

        f.svc.logout_everywhere(&gina).await.unwrap();

        assert_revoked(&f.svc, login.access.expose_secret(), backend.name).await;
        for key in [&planted.key, &rolled_from.key, &rolled.key] {
            let err = f.svc.verify_api_key(key.expose_secret()).await.unwrap_err();
            assert_eq!(err.reason(), "revoked", "{}: {err:?}", backend.name);
        }
        f.svc
            .verify_api_key(theirs.key.expose_secret())
            .await
            .unwrap();

        // The named opt-out keeps API keys and ends the rest.
        let kept = f
            .svc
            .issue_api_key(NewApiKey::new(bystander.clone(), "org", Environment::Live))
            .await
            .unwrap();
        let session_of = f.svc.login(&bystander, &session()).await.unwrap();
        f.svc
            .logout_everywhere_keeping_api_keys(&bystander)
            .await
            .unwrap();
        assert_revoked(&f.svc, session_of.access.expose_secret(), backend.name).await;
        for key in [&kept.key, &theirs.key] {
            f.svc.verify_api_key(key.expose_secret()).await.unwrap();
        }
    }
}

#[tokio::test]
async fn logout_with_the_wrong_kind_of_credential_is_an_error_that_revokes_nothing() {
    let f = fixture(&backends()[0], 1000).await;
    let ivy = unique("ivy");
    let login = f.svc.login(&ivy, &session()).await.unwrap();
    let key = f
        .svc
        .issue_api_key(NewApiKey::new(ivy.clone(), "ci", Environment::Test))
        .await
        .unwrap();
    let (access, refresh) = (login.access.expose_secret(), login.refresh.expose_secret());
    for (a, r) in [
        (refresh, ""),
        (key.key.expose_secret(), ""),
        ("", access),
        ("", key.key.expose_secret()),
    ] {
        let err = f.svc.logout(a, r).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::WrongTokenType { .. } | Error::Opaque(token_opaque::Error::WrongKind { .. })
            ),
            "{a:.12} {r:.12}: {err:?}"
        );
        assert_eq!(err.reason(), "wrong token type");
    }
    // Nothing was revoked.
    f.svc.verify_access::<Session>(access).await.unwrap();
    f.svc.verify_api_key(key.key.expose_secret()).await.unwrap();
    f.svc.refresh(refresh, |_| session()).await.unwrap();
    // Unusable credentials of the right kind are no error: nothing to revoke.
    f.svc
        .logout("v4.public.garbage", "rt_garbage")
        .await
        .unwrap();
}

/// A service on the embedded default whose clock the test moves.
async fn clocked() -> (TokenService, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::at_system_now());
    let store = open_store("sqlite::memory:").await.unwrap();
    let opaque = OpaqueTokens::builder(store)
        .clock(clock.clone())
        .build()
        .unwrap();
    let svc = TokenService::builder(
        Policy::new("https://auth.example", "api"),
        PublicIssuer::new(SecretKey::<V4>::generate().unwrap()),
    )
    .opaque(opaque)
    .clock(clock.clone())
    .build();
    (svc, clock)
}

#[tokio::test]
async fn a_logged_out_token_stays_refused_through_the_verifiers_leeway() {
    // Logged out at once: the session's revocation must outlive the token for as long
    // as verification still accepts it, its expiry plus the leeway.
    let (svc, clock) = clocked().await;
    let t = svc.login("usr_leeway", &session()).await.unwrap();
    svc.logout(t.access.expose_secret(), t.refresh.expose_secret())
        .await
        .unwrap();
    for seconds in [0, svc.policy().access_ttl().as_secs(), 30, 29] {
        clock.advance(Duration::from_secs(seconds));
        assert!(
            svc.verify_access::<Session>(t.access.expose_secret())
                .await
                .is_err(),
            "a logged-out token was accepted again"
        );
    }
}

#[tokio::test]
async fn a_token_revoked_by_id_stays_refused_through_the_verifiers_leeway() {
    let (svc, clock) = clocked().await;
    let t = svc.login("usr_jti", &session()).await.unwrap();
    let verified = svc
        .verify_access::<Session>(t.access.expose_secret())
        .await
        .unwrap();
    let claims = verified.claims();
    svc.revoke_access(claims.jti.as_deref().unwrap(), claims.exp.unwrap())
        .await
        .unwrap();
    clock.advance(svc.policy().access_ttl() + Duration::from_secs(30));
    assert!(
        svc.verify_access::<Session>(t.access.expose_secret())
            .await
            .is_err(),
        "a token revoked by id was accepted within the leeway after its expiry"
    );
}

#[tokio::test]
async fn a_clock_stepped_back_does_not_shorten_a_logout() {
    // A token issued, the clock stepped back ten minutes, the session logged out, the
    // clock back where it was and on: the token stays refused until it expires.
    let (svc, clock) = clocked().await;
    let start = clock.now();
    let t = svc.login("usr_back", &session()).await.unwrap();
    clock.set(Timestamp::from_unix_seconds(start.unix_seconds() - 600).unwrap());
    svc.logout(t.access.expose_secret(), t.refresh.expose_secret())
        .await
        .unwrap();
    clock.set(start);
    for _ in 0..16 {
        clock.advance(Duration::from_secs(60));
        assert!(
            svc.verify_access::<Session>(t.access.expose_secret())
                .await
                .is_err(),
            "a logged-out token was accepted again after a clock step"
        );
    }
}

#[tokio::test]
async fn logging_out_everywhere_after_a_clock_step_back_ends_the_tokens_already_issued() {
    let (svc, clock) = clocked().await;
    let start = clock.now();
    let t = svc.login("usr_everywhere", &session()).await.unwrap();
    clock.set(Timestamp::from_unix_seconds(start.unix_seconds() - 300).unwrap());
    svc.logout_everywhere("usr_everywhere").await.unwrap();
    clock.set(start);
    assert!(
        svc.verify_access::<Session>(t.access.expose_secret())
            .await
            .is_err(),
        "a token issued before log-out-everywhere (by a clock now behind) was accepted"
    );
}
