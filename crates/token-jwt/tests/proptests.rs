//! Property tests: no input panics; what is signed or encrypted comes back unchanged; no
//! changed token verifies.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::LazyLock;
use std::time::Duration;

use common::{b64, validation};
use proptest::prelude::*;
use secrecy::ExposeSecret;
use serde_json::{Map, Value};
use token_core::{Audience, Claims, SecretBytes, TokenSigner, TokenVerifier, Validation};
use token_jwt::{
    Algorithm, DecryptingKey, DirectKey, EcdhCurve, HmacAlgorithm, HmacKey, Jwks, JwtVerifier,
    SigningKey, VerifyingKey, dangerous_decode_header, dangerous_decode_unverified, hazmat,
};

struct Keys {
    signing: Vec<SigningKey>,
    hmac: HmacKey,
    set: JwtVerifier,
    recipient: DecryptingKey,
    direct: DirectKey,
}

static KEYS: LazyLock<Keys> = LazyLock::new(|| {
    let signing: Vec<SigningKey> = Algorithm::SIGNING
        .into_iter()
        .map(|a| SigningKey::generate(a).unwrap())
        .collect();
    let mut jwks = Jwks::new();
    for k in &signing {
        jwks.push_verifying_key(k.verifying_key());
    }
    Keys {
        set: JwtVerifier::from_jwks(&jwks.to_json()).unwrap(),
        signing,
        hmac: HmacKey::dangerous_shared_secret(HmacAlgorithm::Hs256, SecretBytes::new(vec![7; 32]))
            .unwrap(),
        recipient: DecryptingKey::generate(EcdhCurve::X25519).unwrap(),
        direct: DirectKey::generate().unwrap(),
    }
});

/// Feeds `s` to every entry point that reads untrusted text; only errors may come back.
fn feed(s: &str) {
    let keys = &*KEYS;
    let v = Validation::new().dangerous_skip_audience_check();
    for k in &keys.signing {
        assert!(
            k.verifying_key()
                .verify::<Map<String, Value>>(s, &v)
                .is_err()
        );
        assert!(hazmat::verify_jws(k.verifying_key(), s).is_err());
    }
    assert!(keys.set.verify::<Map<String, Value>>(s, &v).is_err());
    assert!(keys.hmac.verify::<()>(s, &v).is_err());
    assert!(
        keys.recipient
            .decrypt_signed::<(), _>(s, &keys.set, &v)
            .is_err()
    );
    assert!(keys.direct.decrypt::<()>(s, &v).is_err());
    assert!(hazmat::decrypt_jwe(&keys.recipient, s).is_err());
    let _ = dangerous_decode_unverified::<Map<String, Value>>(s);
    let _ = dangerous_decode_header(s);
    let _ = Jwks::from_json(s).map(|j| j.verifying_keys());
    let _ = VerifyingKey::from_jwk(Algorithm::Es256, s);
    let _ = VerifyingKey::from_pem(Algorithm::Rs256, s);
    let _ = SigningKey::from_jwk(Algorithm::EdDsa, s);
    let _ = SigningKey::from_pem(Algorithm::Es384, s);
    let _ = DecryptingKey::from_jwk(s);
    let _ = DirectKey::from_jwk(s);
    let _ = HmacKey::dangerous_from_jwk(HmacAlgorithm::Hs256, s);
}

fn segment(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[A-Za-z0-9_-]{{0,{max}}}")).unwrap()
}

/// JSON values. Floats are left out: `serde_json` (without `float_roundtrip`) may
/// change a float's last digit when reading it back, which is no concern of this crate.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A header object: usually a real `alg` and a few registered members, plus noise.
fn header() -> impl Strategy<Value = Value> {
    let alg = prop_oneof![
        Just("ES256".to_owned()),
        Just("EdDSA".to_owned()),
        Just("HS256".to_owned()),
        Just("none".to_owned()),
        Just("RS256".to_owned()),
        "[A-Za-z0-9+-]{0,8}",
    ];
    let member = prop_oneof![
        Just("kid"),
        Just("typ"),
        Just("cty"),
        Just("crit"),
        Just("enc"),
        Just("zip"),
        Just("jku"),
        Just("jwk"),
        Just("x5c"),
        Just("b64"),
        Just("epk"),
        Just("alg"),
    ];
    (alg, prop::collection::vec((member, json_value()), 0..4)).prop_map(|(alg, members)| {
        let mut map = Map::new();
        map.insert("alg".into(), Value::String(alg));
        for (k, v) in members {
            map.insert(k.into(), v);
        }
        Value::Object(map)
    })
}

fn claims_strategy() -> impl Strategy<Value = Claims<Map<String, Value>>> {
    (
        proptest::option::of("\\PC{0,20}"),
        proptest::option::of("\\PC{0,20}"),
        prop_oneof![
            Just(None),
            "[a-z]{1,8}".prop_map(|a| Some(Audience::One(a))),
            prop::collection::vec("[a-z]{1,8}", 0..4).prop_map(|v| Some(Audience::Many(v))),
        ],
        1u64..100_000,
        proptest::option::of("[a-zA-Z0-9]{1,16}"),
        prop::collection::btree_map("x_[a-z]{1,6}", json_value(), 0..4),
    )
        .prop_map(|(iss, sub, aud, ttl, jti, custom)| {
            let mut c = Claims::new(custom.into_iter().collect::<Map<String, Value>>())
                .valid_for(&common::now(), Duration::from_secs(ttl))
                .unwrap();
            c.iss = iss;
            c.sub = sub;
            c.aud = aud;
            c.jti = jti;
            c
        })
}

fn permissive() -> Validation {
    Validation::new()
        .dangerous_skip_audience_check()
        .clock(common::now())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn arbitrary_strings_never_panic(s in "\\PC{0,300}") {
        feed(&s);
    }

    #[test]
    fn token_shaped_strings_never_panic(
        parts in prop::collection::vec(segment(120), 1..7),
        prefix in prop_oneof![Just(""), Just("ey"), Just("eyJ"), Just("v4.public."), Just("{")],
    ) {
        feed(&format!("{prefix}{}", parts.join(".")));
    }

    #[test]
    fn arbitrary_headers_never_panic_and_never_verify(h in header(), sig in segment(400), payload in json_value()) {
        let three = format!("{}.{}.{sig}", b64(h.to_string()), b64(payload.to_string()));
        feed(&three);
        let five = format!("{}.{sig}.{sig}.{sig}.{sig}", b64(h.to_string()));
        feed(&five);
    }

    #[test]
    fn signed_claims_round_trip(claims in claims_strategy(), which in 0usize..6) {
        let keys = &*KEYS;
        let (token, verified) = if let Some(key) = keys.signing.get(which) {
            let token = key.sign(&claims).unwrap();
            let verified = keys.set.verify::<Map<String, Value>>(token.expose_secret(), &permissive()).unwrap();
            prop_assert_eq!(verified.key_id(), Some(key.key_id()));
            (token, verified)
        } else {
            let token = keys.hmac.sign(&claims).unwrap();
            let verified = keys.hmac.verify::<Map<String, Value>>(token.expose_secret(), &permissive()).unwrap();
            (token, verified)
        };
        prop_assert_eq!(verified.claims(), &claims);
        let untrusted = dangerous_decode_unverified::<Map<String, Value>>(token.expose_secret()).unwrap();
        prop_assert_eq!(untrusted.claims(), &claims);
    }

    #[test]
    fn encrypted_claims_round_trip(claims in claims_strategy(), which in 0usize..5) {
        let keys = &*KEYS;
        let signer = &keys.signing[which];
        let token = keys.recipient.encrypting_key().encrypt_signed(signer, &claims).unwrap();
        let verified = keys.recipient
            .decrypt_signed::<Map<String, Value>, _>(token.expose_secret(), &keys.set, &permissive())
            .unwrap();
        prop_assert_eq!(verified.claims(), &claims);
        let token = keys.direct.encrypt(&claims).unwrap();
        let verified = keys.direct.decrypt::<Map<String, Value>>(token.expose_secret(), &permissive()).unwrap();
        prop_assert_eq!(verified.claims(), &claims);
    }

    /// Any single-character change to a valid token makes it fail (and never panic).
    #[test]
    fn changed_tokens_never_verify(which in 0usize..8, at in any::<prop::sample::Index>(), c in "[A-Za-z0-9_.=+/ -]") {
        let keys = &*KEYS;
        let claims = common::claims();
        let token = match which {
            0..5 => keys.signing[which].sign(&claims).unwrap(),
            5 => keys.hmac.sign(&claims).unwrap(),
            6 => keys.direct.encrypt(&claims).unwrap(),
            _ => keys.recipient.encrypting_key().encrypt_signed(&keys.signing[0], &claims).unwrap(),
        };
        let token = token.expose_secret();
        let i = at.index(token.len());
        let mut changed = token.to_owned();
        changed.replace_range(i..=i, &c);
        prop_assume!(changed != token);
        let result = match which {
            0..5 => keys.set.verify::<()>(&changed, &validation()).map(drop),
            5 => keys.hmac.verify::<()>(&changed, &validation()).map(drop),
            6 => keys.direct.decrypt::<()>(&changed, &validation()).map(drop),
            _ => keys.recipient.decrypt_signed::<(), _>(&changed, &keys.set, &validation()).map(drop),
        };
        prop_assert!(result.is_err(), "{changed} verified");
    }
}
