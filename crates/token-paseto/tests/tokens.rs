//! Tokens carrying claims: issue, verify, rotate, bind, and refuse misuse with typed
//! errors.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use base64::Engine as _;
use proptest::prelude::*;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use token_core::{Claims, FixedClock, RegisteredClaim, Timestamp, Validation};
use token_paseto::{
    Error, LocalCipher, LocalKey, PublicIssuer, PublicKey, PublicVerifier, SecretKey, V3, V4,
    VerifyOptions, Version,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Access {
    role: String,
    sid: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Payment {
    order_id: String,
    amount: u64,
    currency: String,
}

const NOW: i64 = 1_800_000_000;

fn clock() -> FixedClock {
    FixedClock(Timestamp::from_unix_seconds(NOW).unwrap())
}

fn access_claims() -> Claims<Access> {
    Claims::new(Access {
        role: "admin".into(),
        sid: "s-1".into(),
    })
    .issuer("https://auth.example")
    .subject("alice")
    .audience("api")
    .token_id("jti-1")
    .valid_for(&clock(), Duration::from_secs(900))
    .unwrap()
}

fn validation() -> Validation {
    Validation::new()
        .issuer("https://auth.example")
        .audience("api")
        .max_lifetime(Duration::from_secs(900))
        .clock(clock())
}

fn core(e: &Error) -> Option<&token_core::Error> {
    match e {
        Error::Core(c) => Some(c),
        _ => None,
    }
}

fn public_round_trip<V: Version>() {
    let issuer = PublicIssuer::new(SecretKey::<V>::generate().unwrap());
    let token = issuer.sign(&access_claims()).unwrap();
    assert!(token.expose_secret().starts_with(V::PUBLIC_HEADER));
    let verifier = issuer.verifier();
    let verified = verifier
        .verify::<Access>(token.expose_secret(), &validation())
        .unwrap();
    assert_eq!(verified.claims(), &access_claims());
    assert_eq!(verified.key_id(), Some(issuer.key_id()));
    assert!(
        issuer
            .key_id()
            .as_str()
            .starts_with(&format!("{}.pid.", V::PASERK.prefix()))
    );
}

#[test]
fn v4_public_round_trip() {
    public_round_trip::<V4>();
}

#[test]
fn v3_public_round_trip() {
    public_round_trip::<V3>();
}

fn local_round_trip<V: Version>() {
    let cipher = LocalCipher::new(LocalKey::<V>::generate().unwrap());
    let claims = Claims::new(Payment {
        order_id: "o-1".into(),
        amount: 4200,
        currency: "EUR".into(),
    })
    .subject("alice")
    .valid_for(&clock(), Duration::from_secs(300))
    .unwrap();
    let token = cipher.encrypt(&claims, b"user:alice").unwrap();
    assert!(token.expose_secret().starts_with(V::LOCAL_HEADER));
    // The payload is not readable in the token.
    assert!(!token.expose_secret().contains("o-1"));
    let v = Validation::new()
        .clock(clock())
        .max_lifetime(Duration::from_secs(300));
    let got = cipher
        .decrypt::<Payment>(token.expose_secret(), b"user:alice", &v)
        .unwrap();
    assert_eq!(got.claims(), &claims);
    // Bound to Alice: Bob's session cannot decrypt it.
    let err = cipher
        .decrypt::<Payment>(token.expose_secret(), b"user:bob", &v)
        .unwrap_err();
    assert_eq!(core(&err), Some(&token_core::Error::InvalidToken));
    // Nor can anyone without the assertion.
    let err = cipher
        .decrypt::<Payment>(token.expose_secret(), b"", &v)
        .unwrap_err();
    assert_eq!(core(&err), Some(&token_core::Error::InvalidToken));
}

#[test]
fn v4_local_binds_to_the_implicit_assertion() {
    local_round_trip::<V4>();
}

#[test]
fn v3_local_binds_to_the_implicit_assertion() {
    local_round_trip::<V3>();
}

#[test]
fn rotation_keeps_old_tokens_valid_until_their_key_is_retired() {
    let key_a = SecretKey::<V4>::generate().unwrap();
    let pid_a = key_a.public_key().id().clone();
    let mut issuer = PublicIssuer::new(key_a);
    let from_a = issuer.sign(&access_claims()).unwrap();
    issuer
        .rotate_to(SecretKey::<V4>::generate().unwrap())
        .unwrap();
    assert_ne!(issuer.key_id(), &pid_a);
    let from_b = issuer.sign(&access_claims()).unwrap();

    let mut verifier = issuer.verifier();
    for token in [&from_a, &from_b] {
        verifier
            .verify::<Access>(token.expose_secret(), &validation())
            .unwrap();
    }
    // Retire A everywhere: its tokens are refused before any signature check.
    verifier.remove(pid_a.as_str()).unwrap();
    issuer.retire(pid_a.as_str()).unwrap();
    let err = verifier
        .verify::<Access>(from_a.expose_secret(), &validation())
        .unwrap_err();
    assert_eq!(core(&err), Some(&token_core::Error::UnknownKeyId));
    verifier
        .verify::<Access>(from_b.expose_secret(), &validation())
        .unwrap();
    // The current key cannot be retired.
    let current = issuer.key_id().clone();
    assert!(matches!(
        issuer.retire(current.as_str()),
        Err(Error::Core(token_core::Error::CannotRemoveCurrentKey))
    ));
}

#[test]
fn local_rotation() {
    let mut cipher = LocalCipher::new(LocalKey::<V4>::generate().unwrap());
    let old_id = cipher.key_id().clone();
    let claims = Claims::new(())
        .valid_for(&clock(), Duration::from_secs(60))
        .unwrap();
    let old = cipher.encrypt(&claims, b"u").unwrap();
    cipher
        .rotate_to(LocalKey::<V4>::generate().unwrap())
        .unwrap();
    let v = Validation::new().clock(clock());
    cipher.decrypt::<()>(old.expose_secret(), b"u", &v).unwrap();
    cipher.retire(old_id.as_str()).unwrap();
    let err = cipher
        .decrypt::<()>(old.expose_secret(), b"u", &v)
        .unwrap_err();
    assert_eq!(core(&err), Some(&token_core::Error::UnknownKeyId));
}

#[test]
fn a_key_from_another_issuer_is_unknown_not_a_bad_signature() {
    let issuer = PublicIssuer::new(SecretKey::<V4>::generate().unwrap());
    let stranger = PublicVerifier::new(SecretKey::<V4>::generate().unwrap().public_key().clone());
    let token = issuer.sign(&access_claims()).unwrap();
    let err = stranger
        .verify::<Access>(token.expose_secret(), &validation())
        .unwrap_err();
    assert_eq!(core(&err), Some(&token_core::Error::UnknownKeyId));
}

/// A footer `kid` that is not a PASERK id (an issuer's own name for its key) used to be
/// refused outright. It now selects an alias the ring holds, or else every trusted key
/// is tried; a PASERK id naming no trusted key still fails fast.
#[test]
fn issuers_own_kids_try_the_keys_and_paserk_kids_fail_fast() {
    let v = Validation::new().clock(clock()).allow_non_expiring_tokens();
    let first = SecretKey::<V4>::generate().unwrap();
    let second = SecretKey::<V4>::generate().unwrap();
    let mut verifier =
        PublicVerifier::from_keys([first.public_key().clone(), second.public_key().clone()])
            .unwrap();
    let by_b = |footer: &str| second.sign_raw(b"{}", footer.as_bytes(), b"").unwrap();
    let check = |verifier: &PublicVerifier<V4>, t: &SecretString| {
        verifier
            .verify::<()>(t.expose_secret(), &v)
            .map(|ok| ok.key_id().map(ToString::to_string))
    };

    // Each key is tried: B verifies, and is reported under its own id.
    let own = by_b(r#"{"kid":"signing-key-2024"}"#);
    assert_eq!(
        check(&verifier, &own).unwrap().as_deref(),
        Some(second.public_key().id().as_str())
    );
    // No trusted key authenticates it: the opaque failure, after trying them all.
    let stranger = SecretKey::<V4>::generate().unwrap();
    let forged = stranger
        .sign_raw(b"{}", br#"{"kid":"signing-key-2024"}"#, b"")
        .unwrap();
    let err = check(&verifier, &forged).unwrap_err();
    assert_eq!(core(&err), Some(&token_core::Error::InvalidToken));
    // An alias picks its key directly.
    verifier
        .insert_alias(
            token_core::KeyId::new("signing-key-2024").unwrap(),
            second.public_key().clone(),
        )
        .unwrap();
    assert_eq!(
        check(&verifier, &own).unwrap().as_deref(),
        Some("signing-key-2024")
    );
    let err = verifier
        .insert_alias(first.public_key().id().clone(), second.public_key().clone())
        .unwrap_err();
    assert!(matches!(
        core(&err),
        Some(token_core::Error::InvalidKeyId(_))
    ));
    // A PASERK id naming no trusted key fails fast, even though B would verify.
    let unknown = stranger.public_key().id().to_string();
    let err = check(&verifier, &by_b(&format!(r#"{{"kid":"{unknown}"}}"#))).unwrap_err();
    assert_eq!(core(&err), Some(&token_core::Error::UnknownKeyId));
    // The same rule for local keys.
    let local = LocalKey::<V4>::generate().unwrap();
    let token = local
        .encrypt_raw(b"{}", br#"{"kid":"payments"}"#, b"")
        .unwrap();
    let lid = local.id().to_string();
    let cipher = LocalCipher::new(local);
    let ok = cipher
        .decrypt::<()>(token.expose_secret(), b"", &v)
        .unwrap();
    assert_eq!(ok.key_id().map(ToString::to_string), Some(lid));
    let other = LocalCipher::new(LocalKey::<V4>::generate().unwrap());
    let err = other
        .decrypt::<()>(token.expose_secret(), b"", &v)
        .unwrap_err();
    assert_eq!(core(&err), Some(&token_core::Error::InvalidToken));
}

#[test]
fn version_and_purpose_confusion_are_typed_errors() {
    let v4_public = PublicIssuer::new(SecretKey::<V4>::generate().unwrap());
    let v3_public = PublicIssuer::new(SecretKey::<V3>::generate().unwrap());
    let v4_local = LocalCipher::new(LocalKey::<V4>::generate().unwrap());
    let claims = access_claims();

    let v3_token = v3_public.sign(&claims).unwrap();
    let err = v4_public
        .verifier()
        .verify::<Access>(v3_token.expose_secret(), &validation())
        .unwrap_err();
    assert!(matches!(err, Error::WrongVersion { .. }), "{err:?}");

    let local_token = v4_local.encrypt(&claims, b"").unwrap();
    let err = v4_public
        .verifier()
        .verify::<Access>(local_token.expose_secret(), &validation())
        .unwrap_err();
    assert!(matches!(err, Error::WrongPurpose { .. }), "{err:?}");

    let public_token = v4_public.sign(&claims).unwrap();
    let err = v4_local
        .decrypt::<Access>(public_token.expose_secret(), b"", &validation())
        .unwrap_err();
    assert!(matches!(err, Error::WrongPurpose { .. }), "{err:?}");

    for old in [
        "v1.public.AAAA",
        "v1.local.AAAA",
        "v2.public.AAAA",
        "v2.local.AAAA",
    ] {
        let err = v4_public
            .verifier()
            .verify::<Access>(old, &validation())
            .unwrap_err();
        assert!(
            matches!(err, Error::UnsupportedVersion(_)),
            "{old}: {err:?}"
        );
    }
    for junk in [
        "",
        "v4.public.",
        "v4.public.@@@",
        "eyJhbGciOiJub25lIn0.e30.",
        "v4.public.AAAA.",
        "v9.public.AAAA",
    ] {
        let err = v4_public
            .verifier()
            .verify::<Access>(junk, &validation())
            .unwrap_err();
        assert!(matches!(err, Error::Malformed(_)), "{junk:?}: {err:?}");
    }
}

#[test]
fn claims_are_validated_after_authentication() {
    let issuer = PublicIssuer::new(SecretKey::<V4>::generate().unwrap());
    let verifier = issuer.verifier();
    let token = issuer.sign(&access_claims()).unwrap();
    let later = validation().clock(FixedClock(
        Timestamp::from_unix_seconds(NOW + 2000).unwrap(),
    ));
    let err = verifier
        .verify::<Access>(token.expose_secret(), &later)
        .unwrap_err();
    assert!(
        matches!(core(&err), Some(token_core::Error::Expired { .. })),
        "{err:?}"
    );
    let err = verifier
        .verify::<Access>(token.expose_secret(), &validation().audience("billing"))
        .unwrap_err();
    assert_eq!(core(&err), Some(&token_core::Error::WrongAudience));

    // An authentic token whose `exp` is not an RFC 3339 string is malformed, not "no exp".
    let key = SecretKey::<V4>::generate().unwrap();
    let footer = format!(r#"{{"kid":"{}"}}"#, key.public_key().id());
    let bad = key
        .sign_raw(
            br#"{"exp":1800000000,"role":"a","sid":"b"}"#,
            footer.as_bytes(),
            b"",
        )
        .unwrap();
    let err = PublicVerifier::new(key.public_key().clone())
        .verify::<Access>(bad.expose_secret(), &Validation::new().clock(clock()))
        .unwrap_err();
    assert!(
        matches!(
            core(&err),
            Some(token_core::Error::MalformedClaim {
                claim: RegisteredClaim::Exp,
                ..
            })
        ),
        "{err:?}"
    );
}

#[test]
fn footers_are_checked_before_key_lookup() {
    let key = SecretKey::<V4>::generate().unwrap();
    let verifier = PublicVerifier::new(key.public_key().clone());
    let v = Validation::new().clock(clock()).allow_non_expiring_tokens();
    let sign = |footer: &str| key.sign_raw(b"{}", footer.as_bytes(), b"").unwrap();
    let check = |t: &SecretString| verifier.verify::<()>(t.expose_secret(), &v);

    // No footer, one trusted key: the key is used.
    check(&sign("")).unwrap();
    // A kid of the wrong kind.
    let lid = LocalKey::<V4>::generate().unwrap().id().to_string();
    assert!(matches!(
        check(&sign(&format!(r#"{{"kid":"{lid}"}}"#))),
        Err(Error::InvalidFooter(_))
    ));
    // Too deep.
    assert!(matches!(
        check(&sign(r#"{"kid":{"a":{"b":1}}}"#)),
        Err(Error::InvalidFooter(_))
    ));
    // Too long.
    let long = format!(r#"{{"pad":"{}"}}"#, "x".repeat(3000));
    assert!(matches!(check(&sign(&long)), Err(Error::InvalidFooter(_))));
    // The exact footer a caller demands.
    let t = sign("footer-a");
    let opts = VerifyOptions {
        implicit_assertion: b"",
        footer: Some(b"footer-b"),
    };
    assert!(matches!(
        verifier.verify_with::<()>(t.expose_secret(), &opts, &v),
        Err(Error::FooterMismatch)
    ));
    // Several keys and no kid: refuse to guess.
    let mut two = verifier.clone();
    two.insert(SecretKey::<V4>::generate().unwrap().public_key().clone())
        .unwrap();
    assert!(matches!(
        two.verify::<()>(sign("").expose_secret(), &v),
        Err(Error::MissingKeyId)
    ));
}

/// A payload or footer naming a member twice used to be accepted with the last value
/// winning; a second parser in the chain may keep the first. Refused on `public` and
/// `local` tokens: a repeated footer member before any key is used, a repeated claim
/// after authentication.
#[test]
fn repeated_claims_and_footer_members_are_refused() {
    type Map = serde_json::Map<String, serde_json::Value>;
    let v = Validation::new().clock(clock()).allow_non_expiring_tokens();
    let secret = SecretKey::<V4>::generate().unwrap();
    let verifier = PublicVerifier::new(secret.public_key().clone());
    let local = LocalKey::<V4>::generate().unwrap();
    let pid = secret.public_key().id().to_string();
    let lid = local.id().to_string();
    let cipher = LocalCipher::new(local);
    let (_, local) = cipher.keys().current().unwrap();

    let payloads: [(&[u8], &str); 3] = [
        (br#"{"sub":"q","sub":"z"}"#, "sub"),
        (br#"{"role":"user","role":"admin","sid":"s"}"#, "role"),
        (br#"{"x":{"a":1,"a":2}}"#, "a"),
    ];
    for (payload, name) in payloads {
        let want = Some(token_core::Error::DuplicateMember(name.into()));
        let footer = format!(r#"{{"kid":"{pid}"}}"#);
        let t = secret.sign_raw(payload, footer.as_bytes(), b"").unwrap();
        let err = verifier.verify::<Map>(t.expose_secret(), &v).unwrap_err();
        assert_eq!(core(&err).cloned(), want);
        let footer = format!(r#"{{"kid":"{lid}"}}"#);
        let t = local.encrypt_raw(payload, footer.as_bytes(), b"").unwrap();
        let err = cipher
            .decrypt::<Map>(t.expose_secret(), b"", &v)
            .unwrap_err();
        assert_eq!(core(&err).cloned(), want);
    }
    for footer in [
        format!(r#"{{"kid":"{pid}","kid":"{pid}"}}"#),
        format!(r#"{{"kid":"{pid}","env":"a","env":"b"}}"#),
    ] {
        let t = secret.sign_raw(b"{}", footer.as_bytes(), b"").unwrap();
        assert!(
            matches!(
                verifier.verify::<()>(t.expose_secret(), &v),
                Err(Error::InvalidFooter(
                    "a JSON member name appears more than once"
                ))
            ),
            "{footer}"
        );
    }
    let t = secret.sign_raw(b"{}", br#"{"kid":null}"#, b"").unwrap();
    assert!(matches!(
        verifier.verify::<()>(t.expose_secret(), &v),
        Err(Error::InvalidFooter(_))
    ));
}

/// One reading of a footer, `footer_kid`, on every path: the public verifier, the local
/// cipher, and the issuing check of both kinds of key. A footer that opens with JSON
/// whitespace or with `[` used to be taken for opaque data, skipping the depth and
/// width bounds (and hiding a `kid` from this verifier but not from others).
#[test]
fn every_path_reads_footers_with_the_same_rules() {
    use token_core::{PasetoPurpose, PasetoVersion};
    let secret = SecretKey::<V4>::generate().unwrap();
    let local = LocalKey::<V4>::generate().unwrap();
    let verifier = PublicVerifier::new(secret.public_key().clone());
    let cipher = LocalCipher::new(LocalKey::<V4>::from_bytes(local.expose_secret_bytes()).unwrap());
    let v = Validation::new().clock(clock()).allow_non_expiring_tokens();
    let wide: Vec<String> = (0..17).map(|i| format!(r#""k{i}":1"#)).collect();
    let wide = format!("{{{}}}", wide.join(","));
    let refused = [
        r#"{"a":{"b":{"c":1}}}"#.to_owned(),
        r#" {"a":{"b":{"c":1}}}"#.to_owned(),
        "\n[[[1]]]".to_owned(),
        "[1]".to_owned(),
        wide,
        r#"{"kid":"a","kid":"b"}"#.to_owned(),
        r#"	{"kid":null}"#.to_owned(),
    ];
    for footer in &refused {
        let f = footer.as_bytes();
        let Err(Error::InvalidFooter(why)) =
            token_paseto::footer_kid(f, PasetoVersion::V4, PasetoPurpose::Public)
        else {
            panic!("{footer:?} read as valid");
        };
        assert!(
            matches!(secret.check_footer(f), Err(Error::InvalidFooter(w)) if w == why),
            "{footer:?}"
        );
        assert!(
            matches!(local.check_footer(f), Err(Error::InvalidFooter(w)) if w == why),
            "{footer:?}"
        );
        let t = secret.sign_raw(b"{}", f, b"").unwrap();
        assert!(
            matches!(verifier.verify::<()>(t.expose_secret(), &v), Err(Error::InvalidFooter(w)) if w == why),
            "{footer:?}"
        );
        let t = local.encrypt_raw(b"{}", f, b"").unwrap();
        assert!(
            matches!(cipher.decrypt::<()>(t.expose_secret(), b"", &v), Err(Error::InvalidFooter(w)) if w == why),
            "{footer:?}"
        );
    }
    // Not JSON: opaque data naming no key. One trusted key verifies it; several refuse
    // to guess; issuing with it is allowed.
    let mut two = verifier.clone();
    two.insert(SecretKey::<V4>::generate().unwrap().public_key().clone())
        .unwrap();
    for footer in ["opaque", r#"x{"a":{"b":{"c":1}}}"#] {
        let f = footer.as_bytes();
        secret.check_footer(f).unwrap();
        local.check_footer(f).unwrap();
        let t = secret.sign_raw(b"{}", f, b"").unwrap();
        verifier.verify::<()>(t.expose_secret(), &v).unwrap();
        assert!(matches!(
            two.verify::<()>(t.expose_secret(), &v),
            Err(Error::MissingKeyId)
        ));
        let t = local.encrypt_raw(b"{}", f, b"").unwrap();
        cipher.decrypt::<()>(t.expose_secret(), b"", &v).unwrap();
    }
    // A PASERK id is the key's own or none: issuing with another key's id is refused,
    // as verifying would be.
    let other = SecretKey::<V4>::generate().unwrap();
    let foreign = format!(r#"{{"kid":"{}"}}"#, other.public_key().id());
    assert!(matches!(
        secret.check_footer(foreign.as_bytes()),
        Err(Error::InvalidFooter(
            "`kid` is the PASERK id of another key"
        ))
    ));
    let own = format!(r#"{{"kid":"{}"}}"#, secret.public_key().id());
    secret.check_footer(own.as_bytes()).unwrap();
    let own_local = format!(r#"{{"kid":"{}"}}"#, local.id());
    local.check_footer(own_local.as_bytes()).unwrap();
    assert!(matches!(
        local.check_footer(own.as_bytes()),
        Err(Error::InvalidFooter(
            "`kid` is not a key id of this version and purpose"
        ))
    ));
}

#[test]
fn a_public_key_cannot_be_inserted_twice() {
    let key = SecretKey::<V4>::generate().unwrap();
    let pk: PublicKey<V4> = key.public_key().clone();
    let err = PublicVerifier::from_keys([pk.clone(), pk]).unwrap_err();
    assert!(matches!(
        core(&err),
        Some(token_core::Error::DuplicateKeyId(_))
    ));
}

fn arb_claims() -> impl Strategy<Value = Claims<Access>> {
    ("\\PC{0,20}", "\\PC{0,20}", "[a-z]{1,10}", 0u64..100_000).prop_map(|(role, sid, sub, ttl)| {
        Claims::new(Access { role, sid })
            .subject(sub)
            .valid_for(&clock(), Duration::from_secs(ttl + 1))
            .unwrap()
    })
}

fn flip(token: &str, index: usize, bit: u8) -> String {
    // Change one base64url character into another valid one.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bytes = token.as_bytes().to_vec();
    let i = index % bytes.len();
    if let Some(pos) = ALPHABET.iter().position(|&c| c == bytes[i]) {
        bytes[i] = ALPHABET[pos ^ usize::from(1 + bit % 63)];
    } else {
        bytes[i] ^= 1 << (bit % 7);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn raw_round_trips_with_any_footer_and_assertion(
        msg in "\\PC{1,120}".prop_map(String::into_bytes),
        footer in proptest::collection::vec(any::<u8>(), 0..64),
        assertion in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let opts = VerifyOptions { implicit_assertion: &assertion, footer: Some(&footer) };
        let local = LocalKey::<V4>::generate().unwrap();
        let t = local.encrypt_raw(&msg, &footer, &assertion).unwrap();
        prop_assert_eq!(local.decrypt_raw(t.expose_secret(), &opts).unwrap(), msg.clone());
        let local3 = LocalKey::<V3>::generate().unwrap();
        let t = local3.encrypt_raw(&msg, &footer, &assertion).unwrap();
        prop_assert_eq!(local3.decrypt_raw(t.expose_secret(), &opts).unwrap(), msg.clone());
        let secret = SecretKey::<V4>::generate().unwrap();
        let t = secret.sign_raw(&msg, &footer, &assertion).unwrap();
        prop_assert_eq!(secret.public_key().verify_raw(t.expose_secret(), &opts).unwrap(), msg.clone());

        // Any single flipped bit of the footer or the implicit assertion is rejected.
        for (which, original) in [("footer", &footer), ("assertion", &assertion)] {
            for i in 0..original.len() * 8 {
                let mut changed = original.clone();
                changed[i / 8] ^= 1 << (i % 8);
                let opts = if which == "footer" {
                    VerifyOptions { implicit_assertion: &assertion, footer: Some(&changed) }
                } else {
                    VerifyOptions { implicit_assertion: &changed, footer: Some(&footer) }
                };
                prop_assert!(secret.public_key().verify_raw(t.expose_secret(), &opts).is_err());
            }
        }
        // A token re-assembled with a flipped footer byte fails authentication.
        if !footer.is_empty() {
            let mut changed = footer.clone();
            changed[0] ^= 1;
            let t = secret.sign_raw(&msg, &footer, &assertion).unwrap();
            let body = t.expose_secret().rsplit_once('.').unwrap().0.to_owned();
            let forged = format!("{body}.{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&changed));
            let any_footer = VerifyOptions { implicit_assertion: &assertion, footer: None };
            prop_assert!(matches!(
                secret.public_key().verify_raw(&forged, &any_footer),
                Err(Error::Core(token_core::Error::InvalidToken))
            ));
        }
    }

    #[test]
    fn claims_round_trip_and_any_changed_character_is_rejected(
        claims in arb_claims(),
        index in any::<usize>(),
        bit in any::<u8>(),
    ) {
        let v = Validation::new().clock(clock());
        let issuer = PublicIssuer::new(SecretKey::<V4>::generate().unwrap());
        let verifier = issuer.verifier();
        let token = issuer.sign(&claims).unwrap();
        let got = verifier.verify::<Access>(token.expose_secret(), &v).unwrap();
        prop_assert_eq!(got.claims(), &claims);
        let tampered = flip(token.expose_secret(), index, bit);
        prop_assert!(verifier.verify::<Access>(&tampered, &v).is_err());

        let cipher = LocalCipher::new(LocalKey::<V3>::generate().unwrap());
        let token = cipher.encrypt(&claims, b"alice").unwrap();
        let got = cipher.decrypt::<Access>(token.expose_secret(), b"alice", &v).unwrap();
        prop_assert_eq!(got.claims(), &claims);
        let tampered = flip(token.expose_secret(), index, bit);
        prop_assert!(cipher.decrypt::<Access>(&tampered, b"alice", &v).is_err());
    }

    #[test]
    fn truncated_or_arbitrary_input_never_panics(s in "\\PC{0,300}", cut in any::<usize>()) {
        let issuer = PublicIssuer::new(SecretKey::<V4>::generate().unwrap());
        let verifier = issuer.verifier();
        let v = Validation::new();
        let _ = verifier.verify::<Access>(&s, &v);
        let token = issuer.sign(&access_claims()).unwrap();
        let t = token.expose_secret();
        let truncated = &t[..cut % t.len()];
        prop_assert!(verifier.verify::<Access>(truncated, &v).is_err());
        let cipher = LocalCipher::new(LocalKey::<V3>::generate().unwrap());
        let _ = cipher.decrypt::<Access>(&s, b"", &v);
        let _ = cipher.decrypt::<Access>(&format!("v3.local.{s}"), b"", &v);
    }
}

/// A v4.public token is read from its one canonical encoding: the body with a
/// non-zero unused trailing bit, or too short to hold a signature, is malformed before
/// any signature check; a flipped byte of the message fails the signature.
#[test]
fn v4_public_bodies_are_canonical_and_signed() {
    let key = SecretKey::<V4>::generate().unwrap();
    let public = key.public_key().clone();
    // 2 message bytes + 64 signature bytes: 66 = 3 × 22, no trailing bits; 3 bytes
    // make 67, whose last character carries 2 bits and 4 unused ones.
    let token = key.sign_raw(b"{\"}", b"", b"").unwrap();
    let token = token.expose_secret();
    assert_eq!(
        public.verify_raw(token, &VerifyOptions::default()).unwrap(),
        b"{\"}".to_vec()
    );
    let body = token.strip_prefix("v4.public.").unwrap();
    let last = body.chars().last().unwrap();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let index = alphabet.find(last).unwrap();
    // Same two data bits, an unused bit set.
    let twin = alphabet.chars().nth(index | 1).unwrap();
    assert_ne!(twin, last);
    let non_canonical = format!("v4.public.{}{twin}", &body[..body.len() - 1]);
    assert!(matches!(
        public.verify_raw(&non_canonical, &VerifyOptions::default()),
        Err(Error::Malformed(_))
    ));
    let short = format!(
        "v4.public.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([7u8; 64])
    );
    assert!(matches!(
        public.verify_raw(&short, &VerifyOptions::default()),
        Err(Error::Malformed(_))
    ));
    let mut bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body)
        .unwrap();
    bytes[0] ^= 1;
    let tampered = format!(
        "v4.public.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes)
    );
    assert!(matches!(
        public.verify_raw(&tampered, &VerifyOptions::default()),
        Err(Error::Core(token_core::Error::InvalidToken))
    ));
}
