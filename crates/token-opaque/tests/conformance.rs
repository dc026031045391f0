//! The conformance suite: every behaviour, on every backend (SQLite in memory, SQLite
//! on a WAL file, PostgreSQL), each with its feature. Time is moved by hand, never
//! slept.
#![cfg(any(feature = "sqlite", feature = "postgres"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::too_many_lines,
    clippy::many_single_char_names,
    clippy::match_same_arms,
    clippy::print_stdout
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Harness, START};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use token_core::{KeyId, KeyRing, OpaqueKind, SecretBytes, Timestamp};
use token_opaque::{
    Config, Environment, Error, GracePolicy, NewApiKey, OneTimeKind, OpaqueTokens, TokenHasher,
    TokenPurpose,
};
use tokio::sync::Barrier;

const MIN: u64 = 60;
const HOUR: u64 = 3600;

fn at(offset: u64) -> Timestamp {
    Timestamp::from_unix_seconds(START + i64::try_from(offset).unwrap()).unwrap()
}

fn s(secret: &SecretString) -> String {
    secret.expose_secret().to_owned()
}

/// A valid-looking token of `kind` that was never issued.
fn never_issued(t: &OpaqueTokens, kind: OpaqueKind) -> String {
    s(&t.config().prefixes.generate(kind).unwrap())
}

/// The same token with one base62 character changed (CRC32 catches it).
fn typo(token: &str) -> String {
    let mut b = token.as_bytes().to_vec();
    let i = b.len() - 10;
    b[i] = if b[i] == b'a' { b'b' } else { b'a' };
    String::from_utf8(b).unwrap()
}

// ---------------------------------------------------------------------------------
// The suite: each function runs on every backend.
// ---------------------------------------------------------------------------------
mod suite {
    use super::*;

    pub(crate) async fn api_key_lifecycle(h: &Harness) {
        let t = h.tokens();
        let keys = t.api_keys();
        let created = keys
            .create(
                NewApiKey::new("acct_1", "ci deploy", Environment::Live).scopes(["read", "write"]),
            )
            .await
            .unwrap();
        let raw = s(&created.key);
        assert!(raw.starts_with("sk_live_"));
        assert!(
            !format!("{created:?}").contains(&raw[8..]),
            "Debug leaks the key"
        );

        let info = keys.verify(&raw).await.unwrap();
        assert_eq!(info.id, created.info.id);
        assert_eq!(info.environment, Environment::Live);
        assert_eq!(info.scopes, ["read", "write"]);
        assert_eq!(info.last_used_at, Some(at(0)));
        assert!(keys.verify_scope(&raw, "write").await.is_ok());
        assert_eq!(
            keys.verify_scope(&raw, "admin").await.unwrap_err(),
            Error::MissingScope("admin".into())
        );

        // Garbage and misdirected tokens are typed errors.
        assert_eq!(
            keys.verify(&typo(&raw)).await.unwrap_err(),
            Error::BadChecksum
        );
        assert!(matches!(
            keys.verify("sk_live_nope").await,
            Err(Error::Malformed(_))
        ));
        assert_eq!(
            keys.verify(&never_issued(&t, OpaqueKind::ApiKeyLive))
                .await
                .unwrap_err(),
            Error::NotFound
        );
        let refresh = t.refresh().issue("user_1").await.unwrap();
        assert_eq!(
            keys.verify(&s(&refresh.token)).await.unwrap_err(),
            Error::WrongKind {
                expected: TokenPurpose::ApiKey,
                found: TokenPurpose::Refresh
            }
        );

        // Test-mode keys carry their environment.
        h.clock.advance_secs(1);
        let test_key = keys
            .create(NewApiKey::new("acct_1", "sandbox", Environment::Test))
            .await
            .unwrap();
        assert!(test_key.key.expose_secret().starts_with("sk_test_"));
        assert_eq!(
            keys.verify(&s(&test_key.key)).await.unwrap().environment,
            Environment::Test
        );

        // List: metadata only, oldest first, only this owner's.
        keys.create(NewApiKey::new("acct_2", "other", Environment::Live))
            .await
            .unwrap();
        let list = keys.list("acct_1").await.unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].name, "ci deploy");
        assert_eq!(list[1].name, "sandbox");

        // Revocation is effective on the next verify, and only the owner can revoke.
        assert_eq!(
            keys.revoke("acct_2", &created.info.id).await.unwrap_err(),
            Error::NotFound
        );
        assert!(keys.verify(&raw).await.is_ok());
        assert!(keys.revoke("acct_1", &created.info.id).await.unwrap());
        assert_eq!(keys.verify(&raw).await.unwrap_err(), Error::Revoked);
        assert!(!keys.revoke("acct_1", &created.info.id).await.unwrap());
        let revoked = keys.get("acct_1", &created.info.id).await.unwrap();
        assert_eq!(revoked.revoked_at, Some(at(1)));
        assert!(!revoked.is_active(at(1)));
    }

    pub(crate) async fn api_key_last_used_is_throttled(h: &Harness) {
        let t = h.tokens();
        let keys = t.api_keys();
        let k = keys
            .create(NewApiKey::new("acct", "k", Environment::Live))
            .await
            .unwrap();
        let raw = s(&k.key);
        assert_eq!(k.info.last_used_at, None);
        assert_eq!(keys.verify(&raw).await.unwrap().last_used_at, Some(at(0)));
        h.clock.advance_secs(30);
        assert_eq!(keys.verify(&raw).await.unwrap().last_used_at, Some(at(0)));
        assert_eq!(
            keys.get("acct", &k.info.id).await.unwrap().last_used_at,
            Some(at(0))
        );
        h.clock.advance_secs(29);
        assert_eq!(keys.verify(&raw).await.unwrap().last_used_at, Some(at(0)));
        h.clock.advance_secs(1);
        assert_eq!(keys.verify(&raw).await.unwrap().last_used_at, Some(at(60)));
        assert_eq!(
            keys.get("acct", &k.info.id).await.unwrap().last_used_at,
            Some(at(60))
        );
    }

    pub(crate) async fn api_key_expiry(h: &Harness) {
        let t = h.tokens();
        let keys = t.api_keys();
        assert!(matches!(
            keys.create(NewApiKey::new("acct", "k", Environment::Live).expires_at(at(0)))
                .await,
            Err(Error::InvalidInput(_))
        ));
        let k = keys
            .create(NewApiKey::new("acct", "k", Environment::Live).expires_at(at(100)))
            .await
            .unwrap();
        h.clock.advance_secs(99);
        assert!(keys.verify(&s(&k.key)).await.is_ok());
        h.clock.advance_secs(1);
        assert_eq!(keys.verify(&s(&k.key)).await.unwrap_err(), Error::Expired);
    }

    pub(crate) async fn api_key_roll_with_overlap(h: &Harness) {
        let t = h.tokens();
        let keys = t.api_keys();
        let old = keys
            .create(
                NewApiKey::new("acct", "server", Environment::Test)
                    .scopes(["charges:write"])
                    .expires_at(at(100 * HOUR)),
            )
            .await
            .unwrap();
        h.clock.advance_secs(10);
        let rolled = keys
            .roll("acct", &old.info.id, Duration::from_secs(HOUR))
            .await
            .unwrap();
        assert_ne!(s(&rolled.key), s(&old.key));
        assert!(rolled.key.expose_secret().starts_with("sk_test_"));
        assert_eq!(rolled.info.name, "server");
        assert_eq!(rolled.info.scopes, ["charges:write"]);
        assert_eq!(rolled.info.expires_at, Some(at(100 * HOUR)));
        assert_eq!(rolled.previous.expires_at, Some(at(10 + HOUR)));
        assert_eq!(
            rolled.previous.replaced_by.as_deref(),
            Some(rolled.info.id.as_str())
        );

        // Both work during the overlap.
        assert!(keys.verify(&s(&old.key)).await.is_ok());
        assert!(keys.verify(&s(&rolled.key)).await.is_ok());
        // A key is rolled once; other owners cannot roll it.
        assert_eq!(
            keys.roll("acct", &old.info.id, Duration::ZERO)
                .await
                .unwrap_err(),
            Error::AlreadyRolled
        );
        assert_eq!(
            keys.roll("acct_x", &rolled.info.id, Duration::ZERO)
                .await
                .unwrap_err(),
            Error::NotFound
        );
        // After the overlap only the replacement works.
        h.clock.advance_secs(HOUR);
        assert_eq!(keys.verify(&s(&old.key)).await.unwrap_err(), Error::Expired);
        assert!(keys.verify(&s(&rolled.key)).await.is_ok());
        assert_eq!(
            keys.roll("acct", &old.info.id, Duration::ZERO)
                .await
                .unwrap_err(),
            Error::Expired
        );

        // Overlap zero ends the old key at once; a revoked key cannot be rolled.
        let again = keys
            .roll("acct", &rolled.info.id, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(
            keys.verify(&s(&rolled.key)).await.unwrap_err(),
            Error::Expired
        );
        assert!(keys.verify(&s(&again.key)).await.is_ok());
        keys.revoke("acct", &again.info.id).await.unwrap();
        assert_eq!(
            keys.roll("acct", &again.info.id, Duration::ZERO)
                .await
                .unwrap_err(),
            Error::Revoked
        );
    }

    pub(crate) async fn api_key_pepper_rotation(h: &Harness) {
        let p1 = || {
            (
                KeyId::new("pepper-1").unwrap(),
                SecretBytes::new(vec![1; 32]),
            )
        };
        let p2 = || {
            (
                KeyId::new("pepper-2").unwrap(),
                SecretBytes::new(vec![2; 32]),
            )
        };
        let (id, p) = p1();
        let first = h.tokens_full(
            Config::default(),
            TokenHasher::hmac(KeyRing::new(id, p)).unwrap(),
        );
        let k = first
            .api_keys()
            .create(NewApiKey::new("acct", "k", Environment::Live))
            .await
            .unwrap();
        let raw = s(&k.key);

        // Plain SHA-256 does not find a peppered row.
        assert_eq!(
            h.tokens().api_keys().verify(&raw).await.unwrap_err(),
            Error::NotFound
        );

        // Rotate: pepper-2 current, pepper-1 verify-only. The key still verifies and is
        // re-hashed under pepper-2 on that use.
        let (id, p) = p1();
        let mut ring = KeyRing::new(id, p);
        let (id, p) = p2();
        ring.rotate_to(id, p).unwrap();
        let rotated = h.tokens_full(Config::default(), TokenHasher::hmac(ring).unwrap());
        assert!(rotated.api_keys().verify(&raw).await.is_ok());

        // pepper-1 removed: the key still verifies.
        let (id, p) = p2();
        let only_new = h.tokens_full(
            Config::default(),
            TokenHasher::hmac(KeyRing::new(id, p)).unwrap(),
        );
        assert!(only_new.api_keys().verify(&raw).await.is_ok());
        assert_eq!(
            first.api_keys().verify(&raw).await.unwrap_err(),
            Error::NotFound
        );
    }

    pub(crate) async fn refresh_rotation_and_replay(h: &Harness) {
        let t = h.tokens();
        let rt = t.refresh();
        let issued = rt.issue("user_1").await.unwrap();
        let t0 = s(&issued.token);
        assert!(t0.starts_with("rt_"));
        assert!(!format!("{issued:?}").contains(&t0[3..]));
        assert_eq!(rt.list("user_1").await.unwrap().len(), 1);

        h.clock.advance_secs(MIN);
        let r1 = rt.rotate(&t0).await.unwrap();
        assert_eq!(r1.generation, 1);
        assert_eq!(r1.user_id, "user_1");
        assert_eq!(r1.family_id, issued.family_id);
        assert!(!r1.from_grace);
        let t1 = s(&r1.token);
        let r2 = rt.rotate(&t1).await.unwrap();
        assert_eq!(r2.generation, 2);
        let t2 = s(&r2.token);

        // Replay of a used token: the whole family is revoked.
        assert_eq!(rt.rotate(&t0).await.unwrap_err(), Error::ReuseDetected);
        assert_eq!(rt.rotate(&t2).await.unwrap_err(), Error::Revoked);
        assert_eq!(rt.rotate(&t1).await.unwrap_err(), Error::Revoked);
        assert!(rt.list("user_1").await.unwrap().is_empty());

        // Garbage, unknown and misdirected tokens.
        assert_eq!(rt.rotate(&typo(&t2)).await.unwrap_err(), Error::BadChecksum);
        assert_eq!(
            rt.rotate(&never_issued(&t, OpaqueKind::Refresh))
                .await
                .unwrap_err(),
            Error::NotFound
        );
        let session = t.sessions().create("user_1", json!({})).await.unwrap();
        assert_eq!(
            rt.rotate(&s(&session.session_id)).await.unwrap_err(),
            Error::WrongKind {
                expected: TokenPurpose::Refresh,
                found: TokenPurpose::Session
            }
        );
    }

    pub(crate) async fn refresh_idle_and_absolute_expiry(h: &Harness) {
        let mut config = Config::default();
        config.refresh.idle_timeout = Duration::from_secs(HOUR);
        config.refresh.absolute_lifetime = Duration::from_secs(3 * HOUR);
        let t = h.tokens_with(config);
        let rt = t.refresh();

        // Idle timeout: rotation just before it extends the family; after it, Expired.
        let issued = rt.issue("u").await.unwrap();
        assert_eq!(issued.idle_expires_at, at(HOUR));
        assert_eq!(issued.absolute_expires_at, at(3 * HOUR));
        h.clock.advance_secs(HOUR - 1);
        let r = rt.rotate(&s(&issued.token)).await.unwrap();
        assert_eq!(r.idle_expires_at, at(2 * HOUR - 1));
        h.clock.advance_secs(HOUR);
        assert_eq!(rt.rotate(&s(&r.token)).await.unwrap_err(), Error::Expired);

        // Absolute lifetime: however active, the family ends.
        let issued = rt.issue("u").await.unwrap();
        let start = 2 * HOUR - 1;
        let mut token = s(&issued.token);
        let mut elapsed = 0;
        loop {
            h.clock.advance_secs(50 * MIN);
            elapsed += 50 * MIN;
            match rt.rotate(&token).await {
                Ok(r) => {
                    assert!(elapsed < 3 * HOUR);
                    assert!(r.idle_expires_at <= at(start + 3 * HOUR));
                    token = s(&r.token);
                }
                Err(e) => {
                    assert_eq!(e, Error::Expired);
                    assert!(elapsed >= 3 * HOUR);
                    break;
                }
            }
        }
    }

    pub(crate) async fn refresh_grace_window(h: &Harness) {
        let mut config = Config::default();
        config.refresh.grace = GracePolicy::new(Duration::from_secs(30), 2);
        let t = h.tokens_with(config);
        let rt = t.refresh();
        let t0 = s(&rt.issue("u").await.unwrap().token);
        let r1 = rt.rotate(&t0).await.unwrap();
        let t1 = s(&r1.token);

        // The previous token again, within the window: the *same* successor, twice.
        h.clock.advance_secs(10);
        let again = rt.rotate(&t0).await.unwrap();
        assert!(again.from_grace);
        assert_eq!(s(&again.token), t1);
        assert_eq!(again.generation, 1);
        let again = rt.rotate(&t0).await.unwrap();
        assert_eq!(s(&again.token), t1);
        // Reuse count spent: replay.
        assert_eq!(rt.rotate(&t0).await.unwrap_err(), Error::ReuseDetected);
        assert_eq!(rt.rotate(&t1).await.unwrap_err(), Error::Revoked);

        // Window over: replay.
        let t0 = s(&rt.issue("u").await.unwrap().token);
        let t1 = s(&rt.rotate(&t0).await.unwrap().token);
        h.clock.advance_secs(30);
        assert_eq!(rt.rotate(&t0).await.unwrap_err(), Error::ReuseDetected);
        assert_eq!(rt.rotate(&t1).await.unwrap_err(), Error::Revoked);

        // Only the previous token is forgiven: an older one is a replay; the family
        // does not fork.
        let t0 = s(&rt.issue("u").await.unwrap().token);
        let t1 = s(&rt.rotate(&t0).await.unwrap().token);
        let r2 = rt.rotate(&t1).await.unwrap();
        let t2 = s(&r2.token);
        let grace = rt.rotate(&t1).await.unwrap();
        assert_eq!(s(&grace.token), t2);
        assert_eq!(rt.rotate(&t0).await.unwrap_err(), Error::ReuseDetected);
        assert_eq!(rt.rotate(&t2).await.unwrap_err(), Error::Revoked);

        // Another user naming this family cannot revoke it, nor touch the sealed copy
        // the grace window needs.
        let t0 = s(&rt.issue("u").await.unwrap().token);
        let issued = rt.rotate(&t0).await.unwrap();
        let t1 = s(&issued.token);
        assert!(
            !rt.revoke_family("intruder", &issued.family_id)
                .await
                .unwrap()
        );
        let grace = rt.rotate(&t0).await.unwrap();
        assert!(grace.from_grace);
        assert_eq!(s(&grace.token), t1);

        // After a grace answer the client carries on normally.
        let t0 = s(&rt.issue("u").await.unwrap().token);
        let t1 = s(&rt.rotate(&t0).await.unwrap().token);
        assert_eq!(s(&rt.rotate(&t0).await.unwrap().token), t1);
        let t2 = rt.rotate(&t1).await.unwrap();
        assert_eq!(t2.generation, 2);
        assert!(!t2.from_grace);
    }

    pub(crate) async fn refresh_logout(h: &Harness) {
        let t = h.tokens();
        let rt = t.refresh();
        let a = rt.issue("u").await.unwrap();
        let b = rt.issue("u").await.unwrap();
        rt.issue("someone-else").await.unwrap();
        assert_eq!(rt.list("u").await.unwrap().len(), 2);
        let a1 = rt.rotate(&s(&a.token)).await.unwrap();
        // Logging out with a used token of the family ends the family too.
        assert!(rt.revoke(&s(&a.token)).await.unwrap());
        assert!(!rt.revoke(&s(&a1.token)).await.unwrap());
        assert_eq!(rt.rotate(&s(&a1.token)).await.unwrap_err(), Error::Revoked);
        assert!(
            !rt.revoke_family("someone-else", &b.family_id)
                .await
                .unwrap()
        );
        assert!(rt.revoke_family("u", &b.family_id).await.unwrap());
        assert_eq!(rt.rotate(&s(&b.token)).await.unwrap_err(), Error::Revoked);
        assert!(rt.list("u").await.unwrap().is_empty());
        assert_eq!(
            rt.revoke(&never_issued(&t, OpaqueKind::Refresh))
                .await
                .unwrap_err(),
            Error::NotFound
        );
    }

    pub(crate) async fn one_time_single_use_and_purpose(h: &Harness) {
        let t = h.tokens();
        let ot = t.one_time();
        let evt = ot
            .issue(OneTimeKind::EmailVerification, "u", Some("a@example.com"))
            .await
            .unwrap();
        let raw = s(&evt.token);
        assert!(raw.starts_with("evt_"));
        assert_eq!(evt.expires_at, at(24 * HOUR));
        // A verification token is never a reset token, nor an API key.
        assert_eq!(
            ot.redeem(OneTimeKind::PasswordReset, &raw)
                .await
                .unwrap_err(),
            Error::WrongKind {
                expected: TokenPurpose::PasswordReset,
                found: TokenPurpose::EmailVerification
            }
        );
        assert!(matches!(
            t.api_keys().verify(&raw).await,
            Err(Error::WrongKind {
                expected: TokenPurpose::ApiKey,
                ..
            })
        ));
        assert_eq!(
            ot.redeem(OneTimeKind::EmailVerification, &typo(&raw))
                .await
                .unwrap_err(),
            Error::BadChecksum
        );
        let redeemed = ot
            .redeem(OneTimeKind::EmailVerification, &raw)
            .await
            .unwrap();
        assert_eq!(redeemed.user_id, "u");
        assert_eq!(redeemed.data.as_deref(), Some("a@example.com"));
        assert_eq!(redeemed.issued_at, at(0));
        assert_eq!(
            ot.redeem(OneTimeKind::EmailVerification, &raw)
                .await
                .unwrap_err(),
            Error::NotFound
        );
    }

    pub(crate) async fn one_time_expiry(h: &Harness) {
        let t = h.tokens();
        let ot = t.one_time();
        let prt = ot
            .issue(OneTimeKind::PasswordReset, "u", None)
            .await
            .unwrap();
        assert_eq!(prt.expires_at, at(HOUR));
        h.clock.advance_secs(HOUR);
        let raw = s(&prt.token);
        assert_eq!(
            ot.redeem(OneTimeKind::PasswordReset, &raw)
                .await
                .unwrap_err(),
            Error::Expired
        );
        // The expired row went with that attempt.
        assert_eq!(
            ot.redeem(OneTimeKind::PasswordReset, &raw)
                .await
                .unwrap_err(),
            Error::NotFound
        );

        let prt = ot
            .issue(OneTimeKind::PasswordReset, "u", None)
            .await
            .unwrap();
        h.clock.advance_secs(HOUR - 1);
        assert!(
            ot.redeem(OneTimeKind::PasswordReset, &s(&prt.token))
                .await
                .is_ok()
        );
    }

    pub(crate) async fn one_time_rate_limit(h: &Harness) {
        let t = h.tokens();
        let ot = t.one_time();
        ot.issue(OneTimeKind::PasswordReset, "u", None)
            .await
            .unwrap();
        assert_eq!(
            ot.issue(OneTimeKind::PasswordReset, "u", None)
                .await
                .unwrap_err(),
            Error::RateLimited {
                retry_after: Duration::from_secs(300)
            }
        );
        // Other users and the other kind have their own limits.
        ot.issue(OneTimeKind::PasswordReset, "v", None)
            .await
            .unwrap();
        ot.issue(OneTimeKind::EmailVerification, "u", None)
            .await
            .unwrap();
        h.clock.advance_secs(299);
        assert_eq!(
            ot.issue(OneTimeKind::PasswordReset, "u", None)
                .await
                .unwrap_err(),
            Error::RateLimited {
                retry_after: Duration::from_secs(1)
            }
        );
        h.clock.advance_secs(1);
        ot.issue(OneTimeKind::PasswordReset, "u", None)
            .await
            .unwrap();

        // Zero disables the limit.
        let mut config = Config::default();
        config.one_time.min_issue_interval = Duration::ZERO;
        let free = h.tokens_with(config).one_time();
        for _ in 0..3 {
            free.issue(OneTimeKind::EmailVerification, "w", None)
                .await
                .unwrap();
        }
    }

    pub(crate) async fn one_time_invalidated_on_credential_change(h: &Harness) {
        let t = h.tokens();
        let ot = t.one_time();
        let evt = ot
            .issue(OneTimeKind::EmailVerification, "u", None)
            .await
            .unwrap();
        let prt = ot
            .issue(OneTimeKind::PasswordReset, "u", None)
            .await
            .unwrap();
        let other = ot
            .issue(OneTimeKind::PasswordReset, "v", None)
            .await
            .unwrap();
        assert_eq!(ot.credentials_changed("u").await.unwrap(), 2);
        assert_eq!(
            ot.redeem(OneTimeKind::EmailVerification, &s(&evt.token))
                .await
                .unwrap_err(),
            Error::NotFound
        );
        assert_eq!(
            ot.redeem(OneTimeKind::PasswordReset, &s(&prt.token))
                .await
                .unwrap_err(),
            Error::NotFound
        );
        assert!(
            ot.redeem(OneTimeKind::PasswordReset, &s(&other.token))
                .await
                .is_ok()
        );
        h.clock.advance_secs(300);
        let evt = ot
            .issue(OneTimeKind::EmailVerification, "u", None)
            .await
            .unwrap();
        ot.issue(OneTimeKind::PasswordReset, "u", None)
            .await
            .unwrap();
        assert_eq!(
            ot.invalidate(OneTimeKind::PasswordReset, "u")
                .await
                .unwrap(),
            1
        );
        assert!(
            ot.redeem(OneTimeKind::EmailVerification, &s(&evt.token))
                .await
                .is_ok()
        );
    }

    pub(crate) async fn sessions_lifecycle(h: &Harness) {
        let t = h.tokens();
        let ss = t.sessions();
        let a = ss
            .create("u", json!({"ua": "firefox", "mfa": true}))
            .await
            .unwrap();
        let raw = s(&a.session_id);
        assert!(raw.starts_with("ses_"));
        let loaded = ss.load(&raw).await.unwrap();
        assert_eq!(loaded.user_id, "u");
        assert_eq!(loaded.data, json!({"ua": "firefox", "mfa": true}));
        assert_eq!(loaded.handle, a.session.handle);
        let updated = ss
            .update(&raw, json!({"ua": "firefox", "cart": [1, 2]}))
            .await
            .unwrap();
        assert_eq!(updated.data["cart"], json!([1, 2]));
        assert_eq!(ss.load(&raw).await.unwrap().data["cart"], json!([1, 2]));
        assert!(matches!(
            ss.update(&raw, json!("x".repeat(70_000))).await,
            Err(Error::InvalidInput(_))
        ));

        let b = ss.create("u", json!(null)).await.unwrap();
        let c = ss.create("u", json!(null)).await.unwrap();
        ss.create("v", json!(null)).await.unwrap();
        let list = ss.list("u").await.unwrap();
        assert_eq!(list.len(), 3);
        // Revoke one, then all but the current one.
        assert!(!ss.revoke("v", &b.session.handle).await.unwrap());
        assert!(ss.revoke("u", &b.session.handle).await.unwrap());
        assert_eq!(
            ss.load(&s(&b.session_id)).await.unwrap_err(),
            Error::NotFound
        );
        assert_eq!(
            ss.revoke_all("u", Some(&a.session.handle)).await.unwrap(),
            1
        );
        assert_eq!(
            ss.load(&s(&c.session_id)).await.unwrap_err(),
            Error::NotFound
        );
        assert!(ss.load(&raw).await.is_ok());
        ss.end(&raw).await.unwrap();
        assert_eq!(ss.load(&raw).await.unwrap_err(), Error::NotFound);
        assert_eq!(ss.list("v").await.unwrap().len(), 1);
        assert_eq!(ss.load(&typo(&raw)).await.unwrap_err(), Error::BadChecksum);
    }

    pub(crate) async fn sessions_sliding_and_absolute_expiry(h: &Harness) {
        let mut config = Config::default();
        config.sessions.idle_timeout = Duration::from_secs(30 * MIN);
        config.sessions.absolute_lifetime = Duration::from_secs(2 * HOUR);
        let t = h.tokens_with(config);
        let ss = t.sessions();
        let created = ss.create("u", json!({})).await.unwrap();
        let raw = s(&created.session_id);
        assert_eq!(created.session.idle_expires_at, at(30 * MIN));

        // Sliding: every use within the idle timeout pushes it back.
        let mut now = 0;
        for _ in 0..5 {
            h.clock.advance_secs(20 * MIN);
            now += 20 * MIN;
            let sess = ss.load(&raw).await.unwrap();
            assert_eq!(sess.last_seen_at, at(now));
            assert_eq!(sess.idle_expires_at, at((now + 30 * MIN).min(2 * HOUR)));
        }
        // ...but never past the absolute expiry.
        h.clock.advance_secs(20 * MIN);
        assert_eq!(ss.load(&raw).await.unwrap_err(), Error::Expired);

        // Idle: unused for the timeout, it ends.
        let idle = ss.create("u", json!({})).await.unwrap();
        h.clock.advance_secs(30 * MIN - 1);
        assert!(ss.load(&s(&idle.session_id)).await.is_ok());
        h.clock.advance_secs(30 * MIN);
        assert_eq!(
            ss.load(&s(&idle.session_id)).await.unwrap_err(),
            Error::Expired
        );
        assert!(ss.list("u").await.unwrap().is_empty());
    }

    pub(crate) async fn sessions_touch_is_throttled(h: &Harness) {
        let t = h.tokens();
        let ss = t.sessions();
        let created = ss.create("u", json!({})).await.unwrap();
        let raw = s(&created.session_id);
        h.clock.advance_secs(59);
        assert_eq!(ss.load(&raw).await.unwrap().last_seen_at, at(0));
        assert_eq!(ss.list("u").await.unwrap()[0].last_seen_at, at(0));
        h.clock.advance_secs(1);
        assert_eq!(ss.load(&raw).await.unwrap().last_seen_at, at(60));
        assert_eq!(
            ss.list("u").await.unwrap()[0].idle_expires_at,
            at(60 + 30 * MIN)
        );
    }

    pub(crate) async fn revoke_user_ends_everything(h: &Harness) {
        let t = h.tokens();
        let family = t.refresh().issue("u").await.unwrap();
        let rotated = t.refresh().rotate(&s(&family.token)).await.unwrap();
        let second = t.refresh().issue("u").await.unwrap();
        let session = t.sessions().create("u", json!({})).await.unwrap();
        let evt = t
            .one_time()
            .issue(OneTimeKind::EmailVerification, "u", None)
            .await
            .unwrap();
        let prt = t
            .one_time()
            .issue(OneTimeKind::PasswordReset, "u", None)
            .await
            .unwrap();
        let key = t
            .api_keys()
            .create(NewApiKey::new("u", "k", Environment::Live))
            .await
            .unwrap();
        let bystander = t.sessions().create("v", json!({})).await.unwrap();

        let done = t.revoke_user("u").await.unwrap();
        assert_eq!(done.refresh_families, 2);
        assert_eq!(done.sessions, 1);
        assert_eq!(done.one_time_tokens, 2);
        assert_eq!(
            t.refresh().rotate(&s(&rotated.token)).await.unwrap_err(),
            Error::Revoked
        );
        assert_eq!(
            t.refresh().rotate(&s(&second.token)).await.unwrap_err(),
            Error::Revoked
        );
        assert_eq!(
            t.sessions()
                .load(&s(&session.session_id))
                .await
                .unwrap_err(),
            Error::NotFound
        );
        assert_eq!(
            t.one_time()
                .redeem(OneTimeKind::EmailVerification, &s(&evt.token))
                .await
                .unwrap_err(),
            Error::NotFound
        );
        assert_eq!(
            t.one_time()
                .redeem(OneTimeKind::PasswordReset, &s(&prt.token))
                .await
                .unwrap_err(),
            Error::NotFound
        );
        // API keys belong to accounts and are revoked on their own.
        assert!(t.api_keys().verify(&s(&key.key)).await.is_ok());
        assert!(t.sessions().load(&s(&bystander.session_id)).await.is_ok());
        assert_eq!(
            t.revoke_user("u").await.unwrap(),
            token_opaque::UserRevocation::default()
        );
    }

    pub(crate) async fn purge_expired(h: &Harness) {
        let t = h.tokens();
        // Short-lived rows.
        let ot = t.one_time();
        ot.issue(OneTimeKind::PasswordReset, "a", None)
            .await
            .unwrap();
        ot.issue(OneTimeKind::PasswordReset, "b", None)
            .await
            .unwrap();
        t.sessions().create("a", json!({})).await.unwrap();
        let key = t
            .api_keys()
            .create(NewApiKey::new("a", "short", Environment::Live).expires_at(at(HOUR)))
            .await
            .unwrap();
        let revoked_family = t.refresh().issue("a").await.unwrap();
        t.refresh().revoke(&s(&revoked_family.token)).await.unwrap();
        // Long-lived rows.
        let long_key = t
            .api_keys()
            .create(NewApiKey::new("a", "long", Environment::Live))
            .await
            .unwrap();
        let family = t.refresh().issue("a").await.unwrap();

        // Nothing has expired yet.
        let report = t.purge_expired().await.unwrap();
        assert_eq!(
            report.one_time_tokens + report.sessions + report.api_keys,
            0
        );
        assert_eq!(report.refresh_families, 0);
        // A revoked family is kept until it expires, so a replay still says Revoked.
        assert_eq!(
            t.refresh()
                .rotate(&s(&revoked_family.token))
                .await
                .unwrap_err(),
            Error::Revoked
        );

        h.clock.advance_secs(2 * HOUR);
        let fresh_session = t.sessions().create("a", json!({})).await.unwrap();
        let report = t.purge_expired().await.unwrap();
        assert_eq!(report.one_time_tokens, 2);
        assert_eq!(report.sessions, 1);
        assert_eq!(report.api_keys, 1);
        assert_eq!(report.rate_limits, 2);
        assert_eq!(report.refresh_families, 0);
        assert_eq!(
            t.api_keys().verify(&s(&key.key)).await.unwrap_err(),
            Error::NotFound
        );
        assert!(t.api_keys().verify(&s(&long_key.key)).await.is_ok());
        assert!(
            t.sessions()
                .load(&s(&fresh_session.session_id))
                .await
                .is_ok()
        );

        // Families go when their idle timeout (7 days) passes, revoked or not.
        h.clock.advance_secs(7 * 24 * HOUR);
        let report = t.purge_expired().await.unwrap();
        assert_eq!(report.refresh_families, 2);
        assert_eq!(report.sessions, 1);
        assert_eq!(
            t.refresh().rotate(&s(&family.token)).await.unwrap_err(),
            Error::NotFound
        );
        assert_eq!(
            t.refresh()
                .rotate(&s(&revoked_family.token))
                .await
                .unwrap_err(),
            Error::NotFound
        );
        assert_eq!(
            t.purge_expired().await.unwrap(),
            token_opaque::PurgeReport::default()
        );
    }

    pub(crate) async fn shape_errors_never_reach_the_database(h: &Harness) {
        let t = h.tokens();
        let good_key = never_issued(&t, OpaqueKind::ApiKeyLive);
        let refresh = never_issued(&t, OpaqueKind::Refresh);
        h.close_store().await;
        // With the store closed, any query fails with a database error: these did not
        // query.
        assert_eq!(
            t.api_keys().verify(&typo(&good_key)).await.unwrap_err(),
            Error::BadChecksum
        );
        assert!(matches!(
            t.api_keys().verify("").await,
            Err(Error::Malformed(_))
        ));
        assert!(matches!(
            t.api_keys().verify(&refresh).await,
            Err(Error::WrongKind { .. })
        ));
        assert!(matches!(
            t.refresh().rotate(&good_key).await,
            Err(Error::WrongKind { .. })
        ));
        assert!(matches!(
            t.one_time()
                .redeem(OneTimeKind::PasswordReset, &typo(&refresh))
                .await,
            Err(Error::BadChecksum)
        ));
        // A well-formed token does query, and the failure is a sanitised database error.
        let err = t.api_keys().verify(&good_key).await.unwrap_err();
        assert!(matches!(err, Error::Database(_)), "{err:?}");
        assert!(!err.to_string().contains(&good_key[8..]));
    }

    // ---- concurrency ----------------------------------------------------------------

    /// Runs `n` copies of `f` released together by a barrier.
    async fn race<F, Fut, T>(n: usize, f: F) -> Vec<T>
    where
        F: Fn(usize) -> Fut,
        Fut: std::future::Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let barrier = Arc::new(Barrier::new(n));
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            let fut = f(i);
            let barrier = barrier.clone();
            handles.push(tokio::spawn(async move {
                barrier.wait().await;
                fut.await
            }));
        }
        let mut out = Vec::with_capacity(n);
        for h in handles {
            out.push(h.await.unwrap());
        }
        out
    }

    pub(crate) async fn concurrent_rotation_has_one_winner(h: &Harness) {
        const TASKS: usize = 32;
        let t = h.tokens();
        let issued = t.refresh().issue("u").await.unwrap();
        let raw = s(&issued.token);
        h.warm_up(TASKS).await;
        let results = race(TASKS, |_| {
            let rt = t.refresh();
            let raw = raw.clone();
            async move { rt.rotate(&raw).await }
        })
        .await;
        let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(
            winners.len(),
            1,
            "exactly one rotation succeeds: {results:?}"
        );
        let mut reuse = 0;
        for r in &results {
            match r {
                Ok(_) => {}
                Err(Error::ReuseDetected) => reuse += 1,
                Err(Error::Revoked) => {}
                Err(e) => panic!("unexpected error {e:?}"),
            }
        }
        // The first loser detects the replay and revokes; later ones find it revoked.
        assert!(reuse >= 1);
        assert_eq!(
            t.refresh().rotate(&s(&winners[0].token)).await.unwrap_err(),
            Error::Revoked
        );
        println!(
            "{}: {TASKS} concurrent rotations: 1 ok, {reuse} ReuseDetected, {} Revoked",
            h.store.backend(),
            TASKS - 1 - reuse
        );
    }

    pub(crate) async fn concurrent_rotation_within_grace_does_not_fork(h: &Harness) {
        const TASKS: usize = 16;
        let mut config = Config::default();
        config.refresh.grace = GracePolicy::new(Duration::from_secs(30), 32);
        let t = h.tokens_with(config);
        let raw = s(&t.refresh().issue("u").await.unwrap().token);
        h.warm_up(TASKS).await;
        let results = race(TASKS, |_| {
            let rt = t.refresh();
            let raw = raw.clone();
            async move { rt.rotate(&raw).await }
        })
        .await;
        let tokens: Vec<String> = results
            .iter()
            .map(|r| s(&r.as_ref().unwrap().token))
            .collect();
        assert!(
            tokens.iter().all(|x| *x == tokens[0]),
            "one successor for every tab"
        );
        assert_eq!(
            results
                .iter()
                .filter(|r| !r.as_ref().unwrap().from_grace)
                .count(),
            1
        );
        assert_eq!(t.refresh().list("u").await.unwrap().len(), 1);
        assert_eq!(t.refresh().rotate(&tokens[0]).await.unwrap().generation, 2);
    }

    pub(crate) async fn concurrent_one_time_redemption_has_one_winner(h: &Harness) {
        const TASKS: usize = 32;
        let t = h.tokens();
        let issued = t
            .one_time()
            .issue(OneTimeKind::PasswordReset, "u", None)
            .await
            .unwrap();
        let raw = s(&issued.token);
        h.warm_up(TASKS).await;
        let results = race(TASKS, |_| {
            let ot = t.one_time();
            let raw = raw.clone();
            async move { ot.redeem(OneTimeKind::PasswordReset, &raw).await }
        })
        .await;
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "{results:?}"
        );
        assert!(
            results
                .iter()
                .all(|r| r.is_ok() || r.as_ref().unwrap_err() == &Error::NotFound)
        );
    }

    pub(crate) async fn concurrent_issuance_is_rate_limited(h: &Harness) {
        const TASKS: usize = 16;
        let t = h.tokens();
        h.warm_up(TASKS).await;
        let results = race(TASKS, |_| {
            let ot = t.one_time();
            async move { ot.issue(OneTimeKind::EmailVerification, "u", None).await }
        })
        .await;
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
        assert!(
            results
                .iter()
                .all(|r| r.is_ok() || matches!(r, Err(Error::RateLimited { .. })))
        );
    }

    pub(crate) async fn concurrent_roll_has_one_winner(h: &Harness) {
        const TASKS: usize = 8;
        let t = h.tokens();
        let key = t
            .api_keys()
            .create(NewApiKey::new("acct", "k", Environment::Live))
            .await
            .unwrap();
        let id = key.info.id.clone();
        h.warm_up(TASKS).await;
        let results = race(TASKS, |_| {
            let keys = t.api_keys();
            let id = id.clone();
            async move { keys.roll("acct", &id, Duration::from_secs(60)).await }
        })
        .await;
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
        assert!(
            results
                .iter()
                .all(|r| r.is_ok() || matches!(r, Err(Error::AlreadyRolled)))
        );
        assert_eq!(t.api_keys().list("acct").await.unwrap().len(), 2);
    }

    /// Each owner holds a bounded number of live keys; revoked and expired keys do
    /// not count, and racing creations cannot overshoot the bound.
    pub(crate) async fn api_keys_are_bounded_per_owner(h: &Harness) {
        const LIMIT: u32 = 5;
        const TASKS: usize = 12;
        let mut config = Config::default();
        config.api_keys.max_live_per_owner = LIMIT;
        let t = h.tokens_with(config);
        h.warm_up(TASKS).await;
        let results = race(TASKS, |i| {
            let keys = t.api_keys();
            async move {
                keys.create(NewApiKey::new(
                    "bounded",
                    format!("k{i}"),
                    Environment::Test,
                ))
                .await
            }
        })
        .await;
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), LIMIT as usize);
        for r in &results {
            match r {
                Ok(_) | Err(Error::TooManyApiKeys { limit: LIMIT }) => {}
                Err(e) => panic!("{e:?}"),
            }
        }
        let err = t
            .api_keys()
            .create(NewApiKey::new("bounded", "one more", Environment::Test))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("revoke one first"), "{err}");
        // Another owner is not affected.
        t.api_keys()
            .create(NewApiKey::new("other", "k", Environment::Test))
            .await
            .unwrap();
        // A revoked key and an expired key free their places.
        let live = t.api_keys().list("bounded").await.unwrap();
        assert_eq!(live.len(), LIMIT as usize);
        t.api_keys().revoke("bounded", &live[0].id).await.unwrap();
        t.api_keys()
            .create(NewApiKey::new("bounded", "short", Environment::Test).expires_at(at(MIN)))
            .await
            .unwrap();
        assert!(
            t.api_keys()
                .create(NewApiKey::new("bounded", "full", Environment::Test))
                .await
                .is_err()
        );
        h.clock.advance_secs(MIN);
        t.api_keys()
            .create(NewApiKey::new("bounded", "after expiry", Environment::Test))
            .await
            .unwrap();
    }

    pub(crate) async fn concurrent_purge_is_safe(h: &Harness) {
        let mut config = Config::default();
        config.one_time.min_issue_interval = Duration::ZERO;
        let t = h.tokens_with(config);
        for i in 0..20 {
            t.one_time()
                .issue(OneTimeKind::PasswordReset, &format!("user{i}"), None)
                .await
                .unwrap();
            t.sessions()
                .create(&format!("user{i}"), json!({}))
                .await
                .unwrap();
            t.refresh().issue(&format!("user{i}")).await.unwrap();
        }
        h.clock.advance_secs(8 * 24 * HOUR);
        let live = t.sessions().create("keeper", json!({})).await.unwrap();
        let reports = race(4, |_| {
            let t = t.clone();
            async move { t.purge_expired().await }
        })
        .await;
        let total = |f: fn(&token_opaque::PurgeReport) -> u64| {
            reports.iter().map(|r| f(r.as_ref().unwrap())).sum::<u64>()
        };
        assert_eq!(total(|r| r.one_time_tokens), 20);
        assert_eq!(total(|r| r.sessions), 20);
        assert_eq!(total(|r| r.refresh_families), 20);
        assert!(t.sessions().load(&s(&live.session_id)).await.is_ok());
    }
}

// ---------------------------------------------------------------------------------
// The suite, instantiated per backend.
// ---------------------------------------------------------------------------------
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        #[cfg(feature = "sqlite")]
        mod sqlite_memory {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let h = Harness::sqlite_memory().await;
                    suite::$name(&h).await;
                    h.finish().await;
                }
            )*
        }
        #[cfg(feature = "sqlite")]
        mod sqlite_file {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let h = Harness::sqlite_file().await;
                    suite::$name(&h).await;
                    h.finish().await;
                }
            )*
        }
        #[cfg(feature = "postgres")]
        mod postgres {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(h) = Harness::postgres(concat!("postgres::", stringify!($name))).await
                    else {
                        return;
                    };
                    suite::$name(&h).await;
                    h.finish().await;
                }
            )*
        }
    };
}

conformance!(
    api_key_lifecycle,
    api_key_last_used_is_throttled,
    api_key_expiry,
    api_key_roll_with_overlap,
    api_key_pepper_rotation,
    refresh_rotation_and_replay,
    refresh_idle_and_absolute_expiry,
    refresh_grace_window,
    refresh_logout,
    one_time_single_use_and_purpose,
    one_time_expiry,
    one_time_rate_limit,
    one_time_invalidated_on_credential_change,
    sessions_lifecycle,
    sessions_sliding_and_absolute_expiry,
    sessions_touch_is_throttled,
    revoke_user_ends_everything,
    purge_expired,
    shape_errors_never_reach_the_database,
    concurrent_rotation_has_one_winner,
    concurrent_rotation_within_grace_does_not_fork,
    concurrent_one_time_redemption_has_one_winner,
    concurrent_issuance_is_rate_limited,
    concurrent_roll_has_one_winner,
    concurrent_purge_is_safe,
    api_keys_are_bounded_per_owner,
);

/// Two stores on one SQLite file, as two processes would have: the database, not a
/// lock in this process, serialises them.
#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_two_stores_on_one_file_are_serialised() {
    let h = Harness::sqlite_file().await;
    let other = Arc::new(h.second_sqlite_store().await.unwrap());
    let t1 = h.tokens();
    let t2 = OpaqueTokens::builder(other.clone())
        .clock(h.clock.clone())
        .build()
        .unwrap();
    for round in 0..5 {
        let issued = t1
            .one_time()
            .issue(OneTimeKind::PasswordReset, &format!("u{round}"), None)
            .await
            .unwrap();
        let raw = s(&issued.token);
        let barrier = Arc::new(Barrier::new(16));
        let mut handles = Vec::new();
        for i in 0..16 {
            let ot = if i % 2 == 0 {
                t1.one_time()
            } else {
                t2.one_time()
            };
            let raw = raw.clone();
            let barrier = barrier.clone();
            handles.push(tokio::spawn(async move {
                barrier.wait().await;
                ot.redeem(OneTimeKind::PasswordReset, &raw).await
            }));
        }
        let mut ok = 0;
        for h in handles {
            match h.await.unwrap() {
                Ok(_) => ok += 1,
                Err(e) => assert_eq!(e, Error::NotFound),
            }
        }
        assert_eq!(ok, 1);
        // Rotations and rate-limited issuance raced from both stores: one winner, and
        // every loser gets its typed error (never a lock error).
        let raw = s(&t1.refresh().issue("u").await.unwrap().token);
        let barrier = Arc::new(Barrier::new(8));
        let mut handles = Vec::new();
        for i in 0..8 {
            let rt = if i % 2 == 0 {
                t1.refresh()
            } else {
                t2.refresh()
            };
            let ot = if i % 2 == 0 {
                t1.one_time()
            } else {
                t2.one_time()
            };
            let (raw, barrier, user) = (raw.clone(), barrier.clone(), format!("r{round}"));
            handles.push(tokio::spawn(async move {
                barrier.wait().await;
                let rotated = rt.rotate(&raw).await.map(drop);
                let issued = ot
                    .issue(OneTimeKind::EmailVerification, &user, None)
                    .await
                    .map(drop);
                (rotated, issued)
            }));
        }
        let (mut rotated, mut issued) = (0, 0);
        for h in handles {
            let (r, i) = h.await.unwrap();
            match r {
                Ok(()) => rotated += 1,
                Err(e) => assert!(matches!(e, Error::ReuseDetected | Error::Revoked), "{e:?}"),
            }
            match i {
                Ok(()) => issued += 1,
                Err(e) => assert!(matches!(e, Error::RateLimited { .. }), "{e:?}"),
            }
        }
        assert_eq!((rotated, issued), (1, 1));
    }
    other.close().await;
    h.finish().await;
}

/// Another process holding the file's write lock: reads go on (WAL), and a write waits
/// for the lock without blocking the runtime's only thread, then succeeds. Were the
/// wait done inside SQLite on the calling thread, the task that releases the lock could
/// never run and the write would fail after the busy timeout.
#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "current_thread")]
async fn sqlite_waits_for_a_foreign_write_lock_without_blocking_the_runtime() {
    let h = Harness::sqlite_file().await;
    let t = h.tokens();
    let key = t
        .api_keys()
        .create(NewApiKey::new("owner", "k", Environment::Live))
        .await
        .unwrap();
    let foreign = rusqlite::Connection::open(h.sqlite_file_path().unwrap()).unwrap();
    foreign.execute_batch("BEGIN IMMEDIATE").unwrap();

    // Reads do not wait for the writer.
    let listed = t.api_keys().list("owner").await.unwrap();
    assert_eq!(listed.len(), 1);

    let keys = t.api_keys();
    let id = key.info.id.clone();
    let revoke = tokio::spawn(async move { keys.revoke("owner", &id).await });
    // The runtime keeps running other tasks while the write waits.
    for _ in 0..20 {
        tokio::task::yield_now().await;
        tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(5)))
            .await
            .unwrap();
        assert!(!revoke.is_finished(), "the write went through a held lock");
    }
    foreign.execute_batch("COMMIT").unwrap();
    revoke.await.unwrap().unwrap();
    assert_eq!(
        t.api_keys().verify(&s(&key.key)).await.unwrap_err(),
        Error::Revoked
    );
    drop(foreign);
    h.finish().await;
}

/// Migrations are idempotent and re-running them on an existing database is a no-op.
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_reopen_keeps_data() {
    let path = Harness::sqlite_path();
    let store = token_opaque::SqliteStore::open(&path).await.unwrap();
    let t = OpaqueTokens::new(Arc::new(store.clone()));
    let key = t
        .api_keys()
        .create(NewApiKey::new("a", "k", Environment::Live))
        .await
        .unwrap();
    store.close().await;
    // Spawned: the opening and migration futures are `Send`.
    let reopen = path.clone();
    let store = tokio::spawn(async move { token_opaque::SqliteStore::open(&reopen).await })
        .await
        .unwrap()
        .unwrap();
    store.migrate().await.unwrap();
    let t = OpaqueTokens::new(Arc::new(store.clone()));
    assert!(t.api_keys().verify(&s(&key.key)).await.is_ok());
    store.close().await;
    // A database a newer version of the library migrated is refused, not used.
    let newer = rusqlite::Connection::open(&path).unwrap();
    newer
        .execute(
            &format!(
                "INSERT INTO {} (version, description, checksum, applied_at) \
                 VALUES (?1, 'from the future', x'00', 0)",
                token_opaque::store::MIGRATIONS_TABLE
            ),
            [token_opaque::store::SCHEMA_VERSION + 1],
        )
        .unwrap();
    drop(newer);
    assert!(matches!(
        token_opaque::SqliteStore::open(&path).await,
        Err(Error::Migration(_))
    ));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// Several processes starting at once on an empty schema: the migration runs once.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_migrations() {
    use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
    use std::str::FromStr;
    let Some(url) = token_core::test_support::service_url(
        token_core::test_support::DATABASE_URL,
        "postgres_concurrent_migrations",
    ) else {
        return;
    };
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    let schema = format!("m_{:016x}", u64::from_le_bytes(b));
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .unwrap();
    let options = PgConnectOptions::from_str(&url)
        .unwrap()
        .options([("search_path", schema.as_str())]);
    let mut handles = Vec::new();
    for _ in 0..6 {
        let options = options.clone();
        handles.push(tokio::spawn(async move {
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await
                .unwrap();
            let store = token_opaque::PgStore::open(pool.clone()).await;
            pool.close().await;
            store.map(drop)
        }));
    }
    for h in handles {
        h.await.unwrap().unwrap();
    }
    let applied: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {schema}.{}",
        token_opaque::store::MIGRATIONS_TABLE
    ))
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!(applied, token_opaque::store::SCHEMA_VERSION);
    // A migration whose text changed is refused, not silently re-applied.
    sqlx::query(&format!(
        "UPDATE {schema}.{} SET checksum = '\\x00'",
        token_opaque::store::MIGRATIONS_TABLE
    ))
    .execute(&admin)
    .await
    .unwrap();
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap();
    assert!(matches!(
        token_opaque::PgStore::open(pool.clone()).await,
        Err(Error::Migration(_))
    ));
    pool.close().await;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
}
