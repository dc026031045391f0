//! Every job end to end through `TokenService`, with its failures, on the embedded
//! default (SQLite in memory, in-process blocklist) and on PostgreSQL + Redis when
//! their URLs are set (mandatory in CI).
#![cfg(feature = "sqlite")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
#[cfg(feature = "jwt")]
use token_core::Clock;
use token_core::ManualClock;
#[cfg(all(feature = "postgres", feature = "redis"))]
use token_core::test_support::{DATABASE_URL, REDIS_URL, service_url};
#[cfg(feature = "jwt")]
use token_jwt::{Algorithm, SigningKey, SigningKeySet};
use token_opaque::{Environment, NewApiKey, OneTimeKind, OpaqueTokens};
use token_paseto::{LocalCipher, LocalKey, PublicIssuer, SecretKey, V4};
#[cfg(feature = "redis")]
use token_policy::RedisBlocklist;
use token_policy::config::open_store;
#[cfg(feature = "jwt")]
use token_policy::{AccessKey, DualVerifier, ServiceAuth, ServicePeers};
use token_policy::{Blocklist, Error, Job, MemoryBlocklist, Policy, TokenService};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Session {
    role: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Payment {
    order_id: String,
    amount: u64,
    currency: String,
}

fn session() -> Session {
    Session {
        role: "admin".into(),
    }
}

fn policy() -> Policy {
    Policy::new("https://auth.example", "api")
}

fn unique() -> String {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    format!("{:016x}", u64::from_le_bytes(b))
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
        service_url(DATABASE_URL, "token-policy service on PostgreSQL"),
        service_url(REDIS_URL, "token-policy service on Redis"),
    ) {
        out.push(Backend {
            name: "postgres+redis",
            database: db,
            redis: Some(redis),
        });
    }
    out
}

async fn service(backend: &Backend, clock: Arc<ManualClock>) -> TokenService {
    let store = open_store(&backend.database).await.unwrap();
    let opaque = OpaqueTokens::builder(store)
        .clock(clock.clone())
        .build()
        .unwrap();
    let blocklist: Arc<dyn Blocklist> = match &backend.redis {
        #[cfg(feature = "redis")]
        Some(url) => Arc::new(
            RedisBlocklist::connect(url)
                .await
                .unwrap()
                .with_prefix(format!("svc-{}:", unique()))
                .with_clock(clock.clone()),
        ),
        #[cfg(not(feature = "redis"))]
        Some(_) => unreachable!("Redis backends need the redis feature"),
        None => Arc::new(MemoryBlocklist::with_capacity(10_000, clock.clone())),
    };
    let builder = TokenService::builder(
        policy(),
        PublicIssuer::new(SecretKey::<V4>::generate().unwrap()),
    )
    .payment(LocalCipher::new(LocalKey::<V4>::generate().unwrap()))
    .opaque(opaque)
    .blocklist(blocklist)
    .clock(clock);
    #[cfg(feature = "jwt")]
    let builder = {
        let signer = SigningKeySet::new(SigningKey::generate(Algorithm::Es256).unwrap());
        let peers = ServicePeers::new()
            .trust("billing", signer.verifier())
            .unwrap();
        builder.services(ServiceAuth::new("billing", signer, peers).unwrap())
    };
    builder.build()
}

/// Users are unique per run so the shared PostgreSQL database never mixes runs.
fn user(name: &str) -> String {
    format!("{name}-{}", unique())
}

#[tokio::test]
async fn login_refresh_logout() {
    for backend in backends() {
        let clock = Arc::new(ManualClock::at_system_now());
        let svc = service(&backend, clock.clone()).await;
        let alice = user("alice");
        let login = svc.login(&alice, &session()).await.unwrap();
        assert!(
            login.access.expose_secret().starts_with("v4.public."),
            "{}",
            backend.name
        );
        assert!(login.refresh.expose_secret().starts_with("rt_"));
        assert_eq!(login.expires_in, Duration::from_secs(900));

        let v = svc
            .verify_access::<Session>(login.access.expose_secret())
            .await
            .unwrap();
        assert_eq!(v.claims().sub.as_deref(), Some(alice.as_str()));
        assert_eq!(v.claims().custom.session, session());
        assert_eq!(v.claims().custom.sid, login.session_id);

        // Rotation gives a new pair; the old refresh token replayed revokes the family.
        let next = svc
            .refresh(login.refresh.expose_secret(), |_| session())
            .await
            .unwrap();
        assert_eq!(next.session_id, login.session_id);
        assert_ne!(next.refresh.expose_secret(), login.refresh.expose_secret());
        svc.verify_access::<Session>(next.access.expose_secret())
            .await
            .unwrap();
        let replay = svc
            .refresh(login.refresh.expose_secret(), |_| session())
            .await
            .unwrap_err();
        assert!(
            matches!(replay, Error::Opaque(token_opaque::Error::ReuseDetected)),
            "{}: {replay:?}",
            backend.name
        );
        // ... and the legitimate successor is dead too.
        let dead = svc
            .refresh(next.refresh.expose_secret(), |_| session())
            .await
            .unwrap_err();
        assert!(matches!(dead, Error::Opaque(_)), "{dead:?}");

        // Logout revokes the access token by jti and the refresh family.
        let again = svc.login(&alice, &session()).await.unwrap();
        svc.logout(again.access.expose_secret(), again.refresh.expose_secret())
            .await
            .unwrap();
        let err = svc
            .verify_access::<Session>(again.access.expose_secret())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Revoked), "{}: {err:?}", backend.name);
        assert!(
            svc.refresh(again.refresh.expose_secret(), |_| session())
                .await
                .is_err()
        );
    }
}

#[tokio::test]
async fn access_tokens_expire_and_are_typed() {
    for backend in backends() {
        let clock = Arc::new(ManualClock::at_system_now());
        let svc = service(&backend, clock.clone()).await;
        let bob = user("bob");
        let login = svc.login(&bob, &session()).await.unwrap();
        clock.advance(Duration::from_secs(15 * 60 + 61));
        let err = svc
            .verify_access::<Session>(login.access.expose_secret())
            .await
            .unwrap_err();
        assert_eq!(err.reason(), "expired", "{err:?}");

        // Another kind of token presented as an access token.
        let err = svc
            .verify_access::<Session>(login.refresh.expose_secret())
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::WrongTokenType {
                    job: Job::Access,
                    ..
                }
            ),
            "{err:?}"
        );
        let payment = svc
            .issue_payment(
                Payment {
                    order_id: "o".into(),
                    amount: 1,
                    currency: "EUR".into(),
                },
                &bob,
            )
            .unwrap();
        let err = svc
            .verify_access::<Session>(payment.expose_secret())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::WrongTokenType { .. }), "{err:?}");
        let err = svc.verify_access::<Session>("garbage").await.unwrap_err();
        assert!(
            matches!(err, Error::Core(token_core::Error::UnrecognizedFormat(_))),
            "{err:?}"
        );
    }
}

#[tokio::test]
async fn logout_everywhere_cuts_every_token_of_the_user() {
    for backend in backends() {
        let clock = Arc::new(ManualClock::at_system_now());
        let svc = service(&backend, clock.clone()).await;
        let carol = user("carol");
        let a = svc.login(&carol, &session()).await.unwrap();
        let b = svc.login(&carol, &session()).await.unwrap();
        let other = svc.login(&user("dave"), &session()).await.unwrap();
        svc.logout_everywhere(&carol).await.unwrap();
        for t in [&a, &b] {
            let err = svc
                .verify_access::<Session>(t.access.expose_secret())
                .await
                .unwrap_err();
            assert!(matches!(err, Error::Revoked), "{}: {err:?}", backend.name);
            assert!(
                svc.refresh(t.refresh.expose_secret(), |_| session())
                    .await
                    .is_err()
            );
        }
        svc.verify_access::<Session>(other.access.expose_secret())
            .await
            .unwrap();
        // A login in the very second of the cut-off is not born revoked.
        let fresh = svc.login(&carol, &session()).await.unwrap();
        svc.verify_access::<Session>(fresh.access.expose_secret())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn payment_tokens_are_bound_to_the_user_and_single_use() {
    for backend in backends() {
        let clock = Arc::new(ManualClock::at_system_now());
        let svc = service(&backend, clock.clone()).await;
        let (alice, bob) = (user("alice"), user("bob"));
        let payload = Payment {
            order_id: "o-17".into(),
            amount: 4200,
            currency: "EUR".into(),
        };
        let token = svc.issue_payment(payload.clone(), &alice).unwrap();
        assert!(token.expose_secret().starts_with("v4.local."));
        assert!(!token.expose_secret().contains("o-17"));

        let err = svc
            .consume_payment::<Payment>(token.expose_secret(), &bob)
            .await
            .unwrap_err();
        assert_eq!(err.reason(), "invalid token", "{}: {err:?}", backend.name);
        assert_eq!(
            svc.consume_payment::<Payment>(token.expose_secret(), &alice)
                .await
                .unwrap(),
            payload
        );
        let err = svc
            .consume_payment::<Payment>(token.expose_secret(), &alice)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::AlreadyUsed), "{err:?}");

        let late = svc.issue_payment(payload.clone(), &alice).unwrap();
        clock.advance(Duration::from_secs(5 * 60 + 61));
        let err = svc
            .consume_payment::<Payment>(late.expose_secret(), &alice)
            .await
            .unwrap_err();
        assert_eq!(err.reason(), "expired");
        // An access token is not a payment token.
        let login = svc.login(&alice, &session()).await.unwrap();
        let err = svc
            .consume_payment::<Payment>(login.access.expose_secret(), &alice)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::WrongTokenType {
                    job: Job::Payment,
                    ..
                }
            ),
            "{err:?}"
        );
    }
}

#[tokio::test]
async fn api_keys_and_one_time_tokens() {
    for backend in backends() {
        let clock = Arc::new(ManualClock::at_system_now());
        let svc = service(&backend, clock.clone()).await;
        let owner = user("erin");
        let created = svc
            .issue_api_key(NewApiKey::new(owner.clone(), "ci", Environment::Live).scopes(["read"]))
            .await
            .unwrap();
        assert!(created.key.expose_secret().starts_with("sk_live_"));
        let info = svc
            .verify_api_key(created.key.expose_secret())
            .await
            .unwrap();
        assert_eq!(info.scopes, vec!["read".to_owned()]);
        svc.opaque()
            .unwrap()
            .api_keys()
            .revoke(&owner, &info.id)
            .await
            .unwrap();
        let err = svc
            .verify_api_key(created.key.expose_secret())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Opaque(_)), "{err:?}");

        let reset = svc
            .issue_one_time(OneTimeKind::PasswordReset, &owner)
            .await
            .unwrap();
        let err = svc
            .issue_one_time(OneTimeKind::PasswordReset, &owner)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Opaque(token_opaque::Error::RateLimited { .. })),
            "{err:?}"
        );
        let redeemed = svc
            .redeem_one_time(OneTimeKind::PasswordReset, reset.token.expose_secret())
            .await
            .unwrap();
        assert_eq!(redeemed.user_id, owner);
        assert!(
            svc.redeem_one_time(OneTimeKind::PasswordReset, reset.token.expose_secret())
                .await
                .is_err()
        );
        // A reset token is not an email-verification token.
        clock.advance(Duration::from_secs(301));
        let reset = svc
            .issue_one_time(OneTimeKind::PasswordReset, &owner)
            .await
            .unwrap();
        assert!(
            svc.redeem_one_time(OneTimeKind::EmailVerification, reset.token.expose_secret())
                .await
                .is_err()
        );
    }
}

#[tokio::test]
async fn sessions_are_server_side_and_revocable() {
    for backend in backends() {
        let clock = Arc::new(ManualClock::at_system_now());
        let svc = service(&backend, clock.clone()).await;
        let gina = user("gina");
        let created = svc
            .create_session(&gina, serde_json::json!({"cart": 3}))
            .await
            .unwrap();
        let cookie = token_opaque::SessionCookie::with_name("session").unwrap();
        let header = cookie.set_cookie(&created.session_id, None);
        for attr in [
            "__Host-session=",
            "HttpOnly",
            "Secure",
            "SameSite",
            "Path=/",
        ] {
            assert!(
                header.expose_secret().contains(attr),
                "{attr}: {}",
                header.expose_secret()
            );
        }
        let loaded = svc
            .load_session(created.session_id.expose_secret())
            .await
            .unwrap();
        assert_eq!(loaded.data, serde_json::json!({"cart": 3}));
        // Logging out everywhere ends server-side sessions too.
        svc.logout_everywhere(&gina).await.unwrap();
        assert!(
            svc.load_session(created.session_id.expose_secret())
                .await
                .is_err(),
            "{}",
            backend.name
        );
        // A session id is not an access token.
        let err = svc
            .verify_access::<Session>(created.session_id.expose_secret())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::WrongTokenType { .. }), "{err:?}");
    }
}

#[cfg(feature = "jwt")]
#[tokio::test]
async fn service_tokens_name_their_target() {
    let backend = &backends()[0];
    let clock = Arc::new(ManualClock::at_system_now());
    let svc = service(backend, clock.clone()).await;
    let to_billing = svc.service_token("billing").unwrap();
    let v = svc
        .verify_service_token(to_billing.expose_secret())
        .unwrap();
    assert_eq!(v.claims().iss.as_deref(), Some("billing"));
    let to_other = svc.service_token("ledger").unwrap();
    let err = svc
        .verify_service_token(to_other.expose_secret())
        .unwrap_err();
    assert_eq!(err.reason(), "wrong audience");
    clock.advance(Duration::from_secs(5 * 60 + 61));
    let err = svc
        .verify_service_token(to_billing.expose_secret())
        .unwrap_err();
    assert_eq!(err.reason(), "expired");
}

/// RFC 9068: a JWT access token is typed `at+jwt` and carries `iss`, `sub`, `aud`,
/// `exp`, `iat`, `jti`, `client_id` and the application's space-separated `scope`;
/// a PASETO access token has no `client_id`.
#[cfg(feature = "jwt")]
#[tokio::test]
async fn jwt_access_tokens_follow_rfc_9068() {
    #[derive(Serialize)]
    struct Scoped {
        scope: &'static str,
    }
    let store = open_store("sqlite::memory:").await.unwrap();
    let access = AccessKey::jwt(SigningKeySet::new(
        SigningKey::generate(Algorithm::Es256).unwrap(),
    ))
    .unwrap();
    let svc = TokenService::builder(policy().with_client_id("web-app"), access)
        .opaque(OpaqueTokens::new(store))
        .build();
    let login = svc
        .login(
            "hana",
            &Scoped {
                scope: "profile payments",
            },
        )
        .await
        .unwrap();
    let token = login.access.expose_secret();
    let header = token_jwt::dangerous_decode_header(token).unwrap();
    assert_eq!(header.typ(), Some("at+jwt"));
    let parts = token_jwt::dangerous_decode_parts(token).unwrap();
    let all: serde_json::Value = serde_json::from_slice(parts.payload().unwrap()).unwrap();
    assert_eq!(all["iss"], "https://auth.example");
    assert_eq!(all["sub"], "hana");
    assert_eq!(all["aud"], "api");
    assert_eq!(all["client_id"], "web-app");
    assert_eq!(all["scope"], "profile payments");
    for name in ["exp", "iat", "jti"] {
        assert!(all.get(name).is_some(), "{name} missing: {all}");
    }
    let verified = svc.verify_access::<serde_json::Value>(token).await.unwrap();
    assert_eq!(
        verified.claims().custom.client_id.as_deref(),
        Some("web-app")
    );
    // Without a client id set, the issuer's own login is the client.
    assert_eq!(policy().client_id(), "https://auth.example");

    // PASETO access tokens carry no client_id.
    let paseto = TokenService::builder(
        policy().with_client_id("web-app"),
        PublicIssuer::new(SecretKey::<V4>::generate().unwrap()),
    )
    .opaque(OpaqueTokens::new(
        open_store("sqlite::memory:").await.unwrap(),
    ))
    .build();
    let login = paseto.login("hana", &session()).await.unwrap();
    let verified = paseto
        .verify_access::<serde_json::Value>(login.access.expose_secret())
        .await
        .unwrap();
    assert_eq!(verified.claims().custom.client_id, None);
}

#[cfg(feature = "jwt")]
#[tokio::test]
async fn jwt_access_tokens_for_oidc_interop() {
    let clock = Arc::new(ManualClock::at_system_now());
    let store = open_store("sqlite::memory:").await.unwrap();
    let opaque = OpaqueTokens::builder(store)
        .clock(clock.clone())
        .build()
        .unwrap();
    let access = AccessKey::jwt(SigningKeySet::new(
        SigningKey::generate(Algorithm::Es256).unwrap(),
    ))
    .unwrap();
    let svc = TokenService::builder(policy(), access)
        .payment(LocalCipher::new(LocalKey::<V4>::generate().unwrap()))
        .opaque(opaque)
        .clock(clock.clone())
        .build();
    assert_eq!(
        svc.policy().access_format(),
        token_policy::AccessFormat::JwtEs256
    );
    let login = svc.login("hana", &session()).await.unwrap();
    let header = token_jwt::dangerous_decode_header(login.access.expose_secret()).unwrap();
    assert_eq!((header.alg(), header.typ()), ("ES256", Some("at+jwt")));
    let v = svc
        .verify_access::<Session>(login.access.expose_secret())
        .await
        .unwrap();
    assert_eq!(v.claims().sub.as_deref(), Some("hana"));
    // A PASETO is not what this service issues.
    let paseto = PublicIssuer::new(SecretKey::<V4>::generate().unwrap());
    let foreign = paseto
        .sign(
            &token_core::Claims::new(())
                .valid_for(clock.as_ref(), Duration::from_secs(60))
                .unwrap(),
        )
        .unwrap();
    let err = svc
        .verify_access::<Session>(foreign.expose_secret())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::WrongTokenType { .. }), "{err:?}");
}

#[test]
fn over_long_lifetimes_are_refused_when_the_policy_is_built() {
    assert!(matches!(
        policy().with_access_ttl(Duration::from_secs(3600)),
        Err(Error::LimitExceeded {
            job: Job::Access,
            ..
        })
    ));
    assert!(matches!(
        policy().with_payment_ttl(Duration::from_secs(600)),
        Err(Error::LimitExceeded {
            job: Job::Payment,
            ..
        })
    ));
    // HMAC and RSA keys cannot be access keys.
    #[cfg(feature = "jwt")]
    {
        let rsa = SigningKeySet::new(SigningKey::generate(Algorithm::Rs256).unwrap());
        assert!(matches!(
            AccessKey::jwt(rsa),
            Err(Error::KeyNotAllowed {
                job: Job::Access,
                ..
            })
        ));
    }
}

#[tokio::test]
async fn sensitive_claims_are_refused_in_readable_tokens() {
    #[derive(Serialize)]
    struct Pay {
        psp_card_token: String,
    }
    #[derive(Serialize)]
    struct Leaky {
        role: String,
        email: String,
    }
    let backend = &backends()[0];
    let svc = service(backend, Arc::new(ManualClock::at_system_now())).await;
    let err = svc
        .login(
            "frank",
            &Leaky {
                role: "user".into(),
                email: "f@example.com".into(),
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::SensitiveClaim(ref n) if n == &["email"]),
        "{err:?}"
    );
    // camelCase and nested names too: the rule is token_core::SensitiveClaims, the one
    // `tokenctl inspect` flags with.
    let err = svc
        .login(
            "frank",
            &serde_json::json!({"role": "user", "profile": {"userEmail": "f@example.com"}}),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::SensitiveClaim(ref n) if n == &["profile.userEmail"]),
        "{err:?}"
    );
    // Every hit is reported, not the first only (`password` used to hide
    // `card_number`), in every spelling.
    let err = svc
        .login(
            "frank",
            &serde_json::json!({
                "password": "x",
                "card_number": "4111",
                "userEmail": "f@example.com",
                "creditCard": "4111",
                "refreshToken": "rt",
                "apiKey": "sk",
                "role": "user",
            }),
        )
        .await
        .unwrap_err();
    let message = err.to_string();
    let Error::SensitiveClaim(mut hits) = err else {
        panic!("{err:?}")
    };
    hits.sort();
    assert_eq!(
        hits,
        [
            "apiKey",
            "card_number",
            "creditCard",
            "password",
            "refreshToken",
            "userEmail"
        ]
    );
    assert!(
        message.starts_with("claims `") && message.contains("look sensitive"),
        "{message}"
    );
    // Payment tokens are encrypted: a card token may travel in them.
    svc.issue_payment(
        Pay {
            psp_card_token: "tok_123".into(),
        },
        "frank",
    )
    .unwrap();
}

#[tokio::test]
async fn explain_names_the_keys_in_use() {
    let backend = &backends()[0];
    let svc = service(backend, Arc::new(ManualClock::at_system_now())).await;
    let e = svc.explain();
    let access = e.row(Job::Access).unwrap();
    assert_eq!(access.token, "PASETO v4.public (Ed25519)");
    assert!(access.key_ids[0].starts_with("k4.pid."));
    assert!(e.row(Job::Payment).unwrap().key_ids[0].starts_with("k4.lid."));
    assert!(e.to_string().contains("service-to-service"));
}

#[cfg(feature = "jwt")]
#[test]
fn dual_verifier_routes_by_allow_list_and_retires_jwt() {
    let clock = Arc::new(ManualClock::at_system_now());
    let paseto = PublicIssuer::new(SecretKey::<V4>::generate().unwrap());
    let jwt = SigningKeySet::new(SigningKey::generate(Algorithm::Es256).unwrap());
    let claims = token_core::Claims::new(())
        .issuer("https://auth.example")
        .audience("api")
        .valid_for(clock.as_ref(), Duration::from_secs(600))
        .unwrap();
    let p_token = paseto.sign(&claims).unwrap();
    let j_token = jwt.sign(&claims).unwrap();
    let validation = token_core::Validation::new()
        .issuer("https://auth.example")
        .audience("api")
        .shared_clock(clock.clone());

    // Fail closed: an empty allow-list refuses both.
    let empty = DualVerifier::new();
    assert!(matches!(
        empty.verify::<()>(p_token.expose_secret(), &validation),
        Err(Error::NotAllowed(_))
    ));
    assert!(matches!(
        empty.verify::<()>(j_token.expose_secret(), &validation),
        Err(Error::NotAllowed(_))
    ));

    let cutoff = clock.now().checked_add(Duration::from_secs(3600)).unwrap();
    let dual = DualVerifier::new()
        .allow_paseto_v4_public(paseto.verifier())
        .allow_jwt(jwt.verifier(), &[Algorithm::Es256])
        .stop_accepting_jwt_after(cutoff)
        .clock(clock.clone());
    dual.verify::<()>(p_token.expose_secret(), &validation)
        .unwrap();
    dual.verify::<()>(j_token.expose_secret(), &validation)
        .unwrap();
    // The same claims rules apply to both.
    let wrong_aud = validation.clone().audience("billing");
    assert!(
        dual.verify::<()>(p_token.expose_secret(), &wrong_aud)
            .is_err()
    );
    assert!(
        dual.verify::<()>(j_token.expose_secret(), &wrong_aud)
            .is_err()
    );
    // An algorithm off the list is refused before any crypto.
    let eddsa = SigningKeySet::new(SigningKey::generate(Algorithm::EdDsa).unwrap());
    let e_token = eddsa.sign(&claims).unwrap();
    assert!(matches!(
        dual.verify::<()>(e_token.expose_secret(), &validation),
        Err(Error::NotAllowed(_))
    ));
    // Off-list formats too.
    let local = LocalCipher::new(LocalKey::<V4>::generate().unwrap());
    let l_token = token_core::TokenEncrypter::encrypt(&local, &claims, b"").unwrap();
    assert!(matches!(
        dual.verify::<()>(l_token.expose_secret(), &validation),
        Err(Error::NotAllowed(_))
    ));
    let counts = dual.counts();
    assert_eq!((counts.paseto, counts.jwt, counts.refused), (2, 2, 2));
    // The cut-off holds whatever the builder order: set before the JWT route.
    let cut_first = DualVerifier::new()
        .stop_accepting_jwt_after(cutoff)
        .allow_jwt(jwt.verifier(), &[Algorithm::Es256])
        .clock(clock.clone());
    cut_first
        .verify::<()>(j_token.expose_secret(), &validation)
        .unwrap();
    // After the cut-off, JWTs are retired.
    clock.advance(Duration::from_secs(3600));
    for dual in [&dual, &cut_first] {
        assert!(matches!(
            dual.verify::<()>(j_token.expose_secret(), &validation),
            Err(Error::JwtRetired)
        ));
    }
}

#[tokio::test]
async fn a_service_holds_only_the_parts_its_jobs_need() {
    // Access tokens only: no payment key, no opaque store, no service keys.
    let svc = TokenService::builder(
        policy(),
        PublicIssuer::new(SecretKey::<V4>::generate().unwrap()),
    )
    .build();
    let access = svc.issue_access("alice", "sid-1", &session()).unwrap();
    let verified = svc
        .verify_access::<Session>(access.expose_secret())
        .await
        .unwrap();
    assert_eq!(verified.claims().sub.as_deref(), Some("alice"));

    let not_configured = |e: Error, job: Job| {
        assert!(
            matches!(&e, Error::NotConfigured { job: j, .. } if *j == job),
            "{e:?}"
        );
        assert!(e.to_string().contains("is not configured"), "{e}");
    };
    not_configured(
        svc.login("alice", &session()).await.unwrap_err(),
        Job::Refresh,
    );
    not_configured(
        svc.issue_payment(session(), "alice").unwrap_err(),
        Job::Payment,
    );
    not_configured(
        svc.verify_api_key("sk_test_x").await.unwrap_err(),
        Job::ApiKey,
    );
    not_configured(
        svc.issue_one_time(OneTimeKind::PasswordReset, "alice")
            .await
            .unwrap_err(),
        Job::PasswordReset,
    );
    not_configured(svc.opaque().unwrap_err(), Job::Refresh);
    // Revoking what exists still works: the access tokens of a session end.
    assert!(!svc.revoke_session("alice", "sid-1").await.unwrap());
    let err = svc
        .verify_access::<Session>(access.expose_secret())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Revoked), "{err:?}");
    #[cfg(feature = "jwt")]
    {
        let err = svc.service_token("billing").unwrap_err();
        assert!(err.to_string().contains("service-to-service"), "{err}");
    }
}

#[tokio::test]
async fn the_refresh_claims_may_come_from_an_async_lookup() {
    let backend = &backends()[0];
    let svc = service(backend, Arc::new(ManualClock::at_system_now())).await;
    let login = svc.login(&user("ivy"), &session()).await.unwrap();
    // A role looked up at refresh time (here after a yield, as a database read would).
    let next = svc
        .refresh_with(login.refresh.expose_secret(), |user_id| async move {
            tokio::task::yield_now().await;
            Session {
                role: format!("editor-of-{}", user_id.len()),
            }
        })
        .await
        .unwrap();
    let v = svc
        .verify_access::<Session>(next.access.expose_secret())
        .await
        .unwrap();
    assert!(v.claims().custom.session.role.starts_with("editor-of-"));
}
