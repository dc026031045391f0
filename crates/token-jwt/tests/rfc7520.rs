//! RFC 7520 (JOSE cookbook) and RFC 8037 examples from `tests/vectors/jose/` (copies of
//! the shared vectors, unchanged; provenance in `tests/vectors/README.md`).
//!
//! Examples whose algorithms this crate supports verify; the others are refused with
//! the typed error named in each test. The cookbook's payloads are prose, not JWT
//! claims, so the signature-level checks go through [`token_jwt::hazmat`]; the one JWT
//! among them (the nested example's inner JWS) goes through `TokenVerifier`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{public_part, text, vector};
use serde_json::Value;
use token_core::{
    Error as Core, FixedClock, KeyId, NumericDate, Timestamp, TokenVerifier, Validation,
};
use token_jwt::{
    Algorithm, DecryptingKey, DirectKey, EcdhCurve, Error, HmacAlgorithm, HmacKey, Jwks,
    JwtVerifier, SigningKey, VerifyingKey, hazmat,
};

fn compact(v: &Value) -> &str {
    v["output"]["compact"].as_str().unwrap()
}

fn payload(v: &Value) -> &str {
    v["input"]["payload"].as_str().unwrap()
}

// ---- JWS examples that verify --------------------------------------------------------------

#[test]
fn rfc7520_4_1_rs256_verifies() {
    let v = vector("jws/4_1.rsa_v15_signature.json");
    let jwk = text(&public_part(&v["input"]["key"]));
    let key = VerifyingKey::from_jwk(Algorithm::Rs256, &jwk).unwrap();
    assert_eq!(key.key_id().as_str(), "bilbo.baggins@hobbiton.example");

    let (header, body) = hazmat::verify_jws(&key, compact(&v)).unwrap();
    assert_eq!(body, payload(&v).as_bytes());
    assert_eq!(header.alg(), "RS256");
    assert_eq!(
        header.kid().map(KeyId::as_str),
        Some("bilbo.baggins@hobbiton.example")
    );

    // Through a JWKS (no `alg` in the entry: an RSA key is taken as RS256), by kid.
    let jwks = format!(r#"{{"keys":[{jwk}]}}"#);
    let set = JwtVerifier::from_jwks(&jwks).unwrap();
    let (_, body) = hazmat::verify_jws_with_set(&set, compact(&v)).unwrap();
    assert_eq!(body, payload(&v).as_bytes());

    // Through the JWT path the signature verifies, then the prose payload is refused
    // as claims: authenticity first, claims after.
    assert!(matches!(
        key.verify::<()>(compact(&v), &Validation::new()),
        Err(Error::Core(Core::MalformedClaims(_)))
    ));

    // The private JWK imports, and its public half is the same key.
    let private = SigningKey::from_jwk(Algorithm::Rs256, &text(&v["input"]["key"])).unwrap();
    assert_eq!(private.verifying_key().thumbprint(), key.thumbprint());
    assert_eq!(private.key_id(), key.key_id());

    // One changed byte of the payload and it no longer verifies.
    let tampered = compact(&v).replacen(".SXTigJlzIGE", ".SXTigJlzIGF", 1);
    assert_ne!(tampered, compact(&v));
    assert_eq!(
        hazmat::verify_jws(&key, &tampered).map(drop),
        Err(Error::Core(Core::InvalidToken))
    );
}

#[test]
fn rfc7520_4_4_hs256_verifies() {
    let v = vector("jws/4_4.hmac-sha2_integrity_protection.json");
    let key = HmacKey::dangerous_from_jwk(HmacAlgorithm::Hs256, &text(&v["input"]["key"])).unwrap();
    assert_eq!(
        key.key_id().as_str(),
        "018c0ae5-4d9b-471b-bfd6-eef314bc7037"
    );
    let (header, body) = hazmat::verify_jws(&key, compact(&v)).unwrap();
    assert_eq!(body, payload(&v).as_bytes());
    assert_eq!(header.alg(), "HS256");
    // The flattened and general JSON forms are the same signature, and refused.
    for form in ["json", "json_flat"] {
        assert_eq!(
            hazmat::verify_jws(&key, &text(&v["output"][form])).map(drop),
            Err(Error::JsonSerialization)
        );
    }
    // The same secret as HS384 or HS512 is refused: too short for those hashes.
    for alg in [HmacAlgorithm::Hs384, HmacAlgorithm::Hs512] {
        let mut jwk = v["input"]["key"].clone();
        jwk.as_object_mut().unwrap().remove("alg");
        assert!(matches!(
            HmacKey::dangerous_from_jwk(alg, &text(&jwk)),
            Err(Error::WeakKey(_))
        ));
    }
}

#[test]
fn rfc8037_eddsa_verifies() {
    let v = vector("curve25519/jws.json");
    let public = text(&public_part(&v["input"]["key"]));
    let key = VerifyingKey::from_jwk(Algorithm::EdDsa, &public).unwrap();
    // RFC 8037 appendix A.3: the thumbprint of this key, and so its default kid.
    assert_eq!(
        key.thumbprint(),
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    );
    assert_eq!(
        key.key_id().as_str(),
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    );
    let (header, body) = hazmat::verify_jws(&key, compact(&v)).unwrap();
    assert_eq!(body, payload(&v).as_bytes());
    assert_eq!(header.alg(), "EdDSA");

    let private = SigningKey::from_jwk(Algorithm::EdDsa, &text(&v["input"]["key"])).unwrap();
    assert_eq!(private.verifying_key().thumbprint(), key.thumbprint());
    // The public JWK export carries the same `x`.
    let exported: Value = serde_json::from_str(&private.to_jwk()).unwrap();
    assert_eq!(exported["x"], v["input"]["key"]["x"]);
    assert_eq!(exported["kty"], "OKP");
    assert_eq!(exported["alg"], "EdDSA");
    assert_eq!(exported["use"], "sig");
    assert!(exported.get("d").is_none());
    // Imported for another algorithm, the key is refused.
    assert!(matches!(
        VerifyingKey::from_jwk(Algorithm::Es256, &public),
        Err(Error::KeyAlgorithmMismatch {
            expected: "ES256",
            ..
        })
    ));
}

/// RFC 7520 section 6: the inner JWS is a JWT (PS256); it verifies through the JWT
/// path, claims and all. The outer JWE (RSA-OAEP) is refused.
#[test]
fn rfc7520_6_nested_inner_ps256_jwt_verifies_outer_rsa_oaep_is_refused() {
    let v = vector("6.nesting_signatures_and_encryption.json");
    let sign = &v["sign"];
    let jwk = text(&public_part(&sign["input"]["key"]));
    let key = VerifyingKey::from_jwk(Algorithm::Ps256, &jwk).unwrap();
    let inner = sign["output"]["compact"].as_str().unwrap();

    // exp is 1300819380 (2011-03-22T18:43:00Z): validate at a time before it.
    let then = FixedClock(Timestamp::from_unix_seconds(1_300_819_000).unwrap());
    let validation = Validation::new().issuer("hobbiton.example").clock(then);
    let verified = key
        .verify::<serde_json::Map<String, Value>>(inner, &validation)
        .unwrap();
    assert_eq!(verified.claims().iss.as_deref(), Some("hobbiton.example"));
    assert_eq!(
        verified.claims().custom["http://example.com/is_root"],
        Value::Bool(true)
    );
    // And not after.
    let later = validation.clone().clock(FixedClock(
        Timestamp::from_unix_seconds(1_400_000_000).unwrap(),
    ));
    assert!(matches!(
        key.verify::<()>(inner, &later),
        Err(Error::Core(Core::Expired { .. }))
    ));
    // The same claims re-encode as NumericDate integers.
    assert!(
        String::from_utf8(verified.claims().to_json::<NumericDate>().unwrap())
            .unwrap()
            .contains(r#""exp":1300819380"#)
    );

    // Outer: RSA-OAEP with A128GCM.
    let recipient = DecryptingKey::generate(EcdhCurve::P256).unwrap();
    let outer = v["encrypt"]["output"]["compact"].as_str().unwrap();
    assert_eq!(
        recipient
            .decrypt_signed::<(), _>(outer, &key, &validation)
            .map(drop),
        Err(Error::AlgorithmNotAllowed {
            expected: "ECDH-ES+A256KW",
            found: "RSA-OAEP".into()
        })
    );
}

/// PS384 is verified (not signed): the cookbook's token verifies with a PS384 key, and
/// is refused by a PS256 key over the same RSA key before any crypto.
#[test]
fn rfc7520_4_2_ps384_verifies_with_a_ps384_key_only() {
    let v = vector("jws/4_2.rsa-pss_signature.json");
    let jwk = text(&public_part(&v["input"]["key"]));
    let key = VerifyingKey::from_jwk(Algorithm::Ps384, &jwk).unwrap();
    let (header, body) = hazmat::verify_jws(&key, compact(&v)).unwrap();
    assert_eq!(header.alg(), "PS384");
    assert_eq!(body, payload(&v).as_bytes());
    let pss256 = VerifyingKey::from_jwk(Algorithm::Ps256, &jwk).unwrap();
    assert_eq!(
        hazmat::verify_jws(&pss256, compact(&v)).map(drop),
        Err(Error::AlgorithmNotAllowed {
            expected: "PS256",
            found: "PS384".into()
        })
    );
    // Verified only: the private key does not become a PS384 signer.
    assert_eq!(
        SigningKey::from_jwk(Algorithm::Ps384, &text(&v["input"]["key"])).map(drop),
        Err(Error::VerifyOnlyAlgorithm("PS384"))
    );
}

/// ES512 (P-521) is verified (not signed): the cookbook's token verifies with its P-521
/// key, also through a JWKS entry without `alg` (P-521 implies ES512).
#[test]
fn rfc7520_4_3_es512_verifies_with_its_p521_key() {
    let v = vector("jws/4_3.ecdsa_signature.json");
    let jwk = text(&public_part(&v["input"]["key"]));
    let key = VerifyingKey::from_jwk(Algorithm::Es512, &jwk).unwrap();
    let (header, body) = hazmat::verify_jws(&key, compact(&v)).unwrap();
    assert_eq!(header.alg(), "ES512");
    assert_eq!(body, payload(&v).as_bytes());
    let set = JwtVerifier::from_jwks(&format!(r#"{{"keys":[{jwk}]}}"#)).unwrap();
    let (_, body) = hazmat::verify_jws_with_set(&set, compact(&v)).unwrap();
    assert_eq!(body, payload(&v).as_bytes());
    // A P-521 key is no ES256 key, and ES512 is not signed here.
    assert!(matches!(
        VerifyingKey::from_jwk(Algorithm::Es256, &jwk),
        Err(Error::KeyAlgorithmMismatch {
            expected: "ES256",
            ..
        })
    ));
    assert_eq!(
        SigningKey::from_jwk(Algorithm::Es512, &text(&v["input"]["key"])).map(drop),
        Err(Error::VerifyOnlyAlgorithm("ES512"))
    );
    // Its token is refused by any ES256 key before any crypto.
    let es256 = SigningKey::generate(Algorithm::Es256).unwrap();
    assert_eq!(
        hazmat::verify_jws(es256.verifying_key(), compact(&v)).map(drop),
        Err(Error::AlgorithmNotAllowed {
            expected: "ES256",
            found: "ES512".into()
        })
    );
}

// ---- JWS examples that are refused -----------------------------------------------------------

#[test]
fn rfc7520_4_5_detached_content_is_refused() {
    let v = vector("jws/4_5.signature_with_detached_content.json");
    let key = HmacKey::dangerous_from_jwk(HmacAlgorithm::Hs256, &text(&v["input"]["key"])).unwrap();
    assert_eq!(
        hazmat::verify_jws(&key, compact(&v)).map(drop),
        Err(Error::MalformedToken(
            "empty payload (detached content is not supported)"
        ))
    );
}

#[test]
fn json_serialization_examples_are_refused() {
    let key = HmacKey::dangerous_from_jwk(
        HmacAlgorithm::Hs256,
        &text(&vector("jwk/3_5.symmetric_key_mac_computation.json")),
    )
    .unwrap();
    for file in [
        "jws/4_6.protecting_specific_header_fields.json",
        "jws/4_7.protecting_content_only.json",
        "jws/4_8.multiple_signatures.json",
        "rfc7797/4.2.hmac-sha2_b64_false.json",
    ] {
        let v = vector(file);
        assert!(v["output"].get("compact").is_none(), "{file}");
        for form in ["json", "json_flat"] {
            let Some(token) = v["output"].get(form) else {
                continue;
            };
            assert_eq!(
                hazmat::verify_jws(&key, &text(token)).map(drop),
                Err(Error::JsonSerialization),
                "{file} {form}"
            );
        }
    }
    let recipient = DecryptingKey::generate(EcdhCurve::P256).unwrap();
    for file in [
        "jwe/5_10.including_additional_authentication_data.json",
        "jwe/5_11.protecting_specific_header_fields.json",
        "jwe/5_12.protecting_content_only.json",
        "jwe/5_13.encrypting_to_multiple_recipients.json",
    ] {
        let v = vector(file);
        assert!(v["output"].get("compact").is_none(), "{file}");
        for form in ["json", "json_flat"] {
            let Some(token) = v["output"].get(form) else {
                continue;
            };
            assert_eq!(
                hazmat::decrypt_jwe(&recipient, &text(token)).map(drop),
                Err(Error::JsonSerialization),
                "{file} {form}"
            );
        }
    }
}

#[test]
fn rfc7797_unencoded_payload_is_refused() {
    let v = vector("rfc7797/hmac-sha2_b64_false.json");
    let key = HmacKey::dangerous_from_jwk(HmacAlgorithm::Hs256, &text(&v["input"]["key"])).unwrap();
    // The compact form carries the raw payload, spaces and all: not a JWS by shape.
    assert_eq!(
        hazmat::verify_jws(&key, compact(&v)).map(drop),
        Err(Error::Core(Core::UnrecognizedFormat(
            "not a JWS compact serialization"
        )))
    );
    // With the payload base64url-encoded, the header's `crit: ["b64"]` is what refuses it.
    let (header, rest) = compact(&v).split_once('.').unwrap();
    let (_, sig) = rest.rsplit_once('.').unwrap();
    let encoded = format!("{header}.{}.{sig}", common::b64(payload(&v)));
    assert_eq!(
        hazmat::verify_jws(&key, &encoded).map(drop),
        Err(Error::UnsupportedCritical("b64".into()))
    );
}

// ---- JWE examples: all refused --------------------------------------------------------------

#[test]
fn rfc7520_jwe_compact_examples_are_refused() {
    let recipient = DecryptingKey::generate(EcdhCurve::P256).unwrap();
    let refused = |found: &str| Error::AlgorithmNotAllowed {
        expected: "ECDH-ES+A256KW",
        found: found.into(),
    };
    for (file, expected) in [
        (
            "jwe/5_1.key_encryption_using_rsa_v15_and_aes-hmac-sha2.json",
            refused("RSA1_5"),
        ),
        (
            "jwe/5_2.key_encryption_using_rsa-oaep_with_aes-gcm.json",
            refused("RSA-OAEP"),
        ),
        (
            "jwe/5_3.key_wrap_using_pbes2-aes-keywrap_with-aes-cbc-hmac-sha2.json",
            refused("PBES2-HS512+A256KW"),
        ),
        (
            "jwe/5_4.key_agreement_with_key_wrapping_using_ecdh-es_and_aes-keywrap_with_aes-gcm.json",
            refused("ECDH-ES+A128KW"),
        ),
        (
            "jwe/5_5.key_agreement_using_ecdh-es_with_aes-cbc-hmac-sha2.json",
            refused("ECDH-ES"),
        ),
        (
            "jwe/5_6.direct_encryption_using_aes-gcm.json",
            refused("dir"),
        ),
        (
            "jwe/5_7.key_wrap_using_aes-gcm_keywrap_with_aes-cbc-hmac-sha2.json",
            refused("A256GCMKW"),
        ),
        (
            "jwe/5_8.key_wrap_using_aes-keywrap_with_aes-gcm.json",
            refused("A128KW"),
        ),
        // Compression is refused before the algorithm is even looked at.
        (
            "jwe/5_9.compressed_content.json",
            Error::CompressionNotAllowed,
        ),
    ] {
        let v = vector(file);
        assert_eq!(
            hazmat::decrypt_jwe(&recipient, compact(&v)).map(drop),
            Err(expected),
            "{file}"
        );
    }
}

#[test]
fn rfc7520_5_6_dir_a128gcm_is_refused() {
    let v = vector("jwe/5_6.direct_encryption_using_aes-gcm.json");
    // Its key is labelled for A128GCM, and is a 128-bit key, not an A256GCM one...
    assert_eq!(
        DirectKey::from_jwk(&text(&v["input"]["key"])).map(drop),
        Err(Error::KeyAlgorithmMismatch {
            expected: "dir",
            reason: "the JWK says `alg: A128GCM`".into()
        })
    );
    let mut unlabelled = v["input"]["key"].clone();
    unlabelled.as_object_mut().unwrap().remove("alg");
    assert_eq!(
        DirectKey::from_jwk(&text(&unlabelled)).map(drop),
        Err(Error::InvalidKey("a `dir` A256GCM key is exactly 32 bytes"))
    );
    // ...and a `dir` key refuses its content encryption.
    let key = DirectKey::generate().unwrap();
    assert_eq!(
        hazmat::decrypt_jwe_direct(&key, compact(&v)).map(drop),
        Err(Error::EncryptionNotAllowed {
            expected: "A256GCM",
            found: "A128GCM".into()
        })
    );
}

#[test]
fn rfc8037_ecdh_es_direct_is_refused() {
    let v = vector("curve25519/ecdh-es.json");
    // Bob's X25519 key imports as an ECDH-ES+A256KW key...
    let bob = DecryptingKey::from_jwk(&text(&v["input"]["key"])).unwrap();
    assert_eq!(bob.key_id().as_str(), "Bob");
    assert_eq!(bob.encrypting_key().curve(), EcdhCurve::X25519);
    // ...but the example uses ECDH-ES (direct key agreement) with A128GCM.
    assert_eq!(
        hazmat::decrypt_jwe(&bob, compact(&v)).map(drop),
        Err(Error::AlgorithmNotAllowed {
            expected: "ECDH-ES+A256KW",
            found: "ECDH-ES".into()
        })
    );
}

// ---- JWK examples ------------------------------------------------------------------------------

#[test]
fn rfc7520_3_jwks() {
    // 3.1/3.2: P-521 keys verify ES512 only, and never sign.
    let ec_public = text(&vector("jwk/3_1.ec_public_key.json"));
    assert!(matches!(
        VerifyingKey::from_jwk(Algorithm::Es256, &ec_public),
        Err(Error::KeyAlgorithmMismatch { .. })
    ));
    let es512 = VerifyingKey::from_jwk(Algorithm::Es512, &ec_public).unwrap();
    let set = JwtVerifier::from_jwks(&format!(r#"{{"keys":[{ec_public}]}}"#)).unwrap();
    let (_, key, _) = set.keys().iter().next().unwrap();
    assert_eq!(key.algorithm(), Algorithm::Es512);
    assert_eq!(key.thumbprint(), es512.thumbprint());
    let ec_private = text(&vector("jwk/3_2.ec_private_key.json"));
    assert!(matches!(
        SigningKey::from_jwk(Algorithm::Es384, &ec_private),
        Err(Error::KeyAlgorithmMismatch { .. })
    ));
    assert_eq!(
        SigningKey::from_jwk(Algorithm::Es512, &ec_private).map(drop),
        Err(Error::VerifyOnlyAlgorithm("ES512"))
    );

    // 3.3/3.4: RSA public and private keys import, and are the same key.
    let rsa_public = text(&vector("jwk/3_3.rsa_public_key.json"));
    let rsa_private = text(&vector("jwk/3_4.rsa_private_key.json"));
    let public = VerifyingKey::from_jwk(Algorithm::Rs256, &rsa_public).unwrap();
    let private = SigningKey::from_jwk(Algorithm::Rs256, &rsa_private).unwrap();
    assert_eq!(public.thumbprint(), private.verifying_key().thumbprint());
    assert_eq!(public.key_id().as_str(), "bilbo.baggins@hobbiton.example");
    // Export: the public JWK has the same n and e; the private export round-trips.
    let exported: Value = serde_json::from_str(&public.to_jwk()).unwrap();
    let original = vector("jwk/3_3.rsa_public_key.json");
    assert_eq!(exported["n"], original["n"]);
    assert_eq!(exported["e"], original["e"]);
    assert_eq!(exported["alg"], "RS256");
    let secret = private.dangerous_to_private_jwk().unwrap();
    let again: Value = serde_json::from_str(secrecy::ExposeSecret::expose_secret(&secret)).unwrap();
    let original = vector("jwk/3_4.rsa_private_key.json");
    for member in ["n", "e", "d", "p", "q", "dp", "dq", "qi", "kid"] {
        assert_eq!(again[member], original[member], "{member}");
    }
    // A private JWK is not a verifying key, and never part of a JWKS.
    assert!(matches!(
        VerifyingKey::from_jwk(Algorithm::Rs256, &rsa_private),
        Err(Error::InvalidKey(_))
    ));
    assert_eq!(
        Jwks::from_json(&format!(r#"{{"keys":[{rsa_public},{rsa_private}]}}"#)).map(drop),
        Err(Error::PrivateKeyInJwks { index: 1 })
    );

    // 3.5: an HS256 secret, only through the HMAC opt-in, never in a JWKS.
    let mac = text(&vector("jwk/3_5.symmetric_key_mac_computation.json"));
    HmacKey::dangerous_from_jwk(HmacAlgorithm::Hs256, &mac).unwrap();
    assert!(matches!(
        VerifyingKey::from_jwk(Algorithm::Rs256, &mac),
        Err(Error::InvalidKey(_))
    ));
    assert_eq!(
        Jwks::from_json(&format!(r#"{{"keys":[{mac}]}}"#)).map(drop),
        Err(Error::PrivateKeyInJwks { index: 0 })
    );

    // 3.6: a 256-bit key labelled `alg: A256GCM`, which is not `dir`.
    let enc = text(&vector("jwk/3_6.symmetric_key_encryption.json"));
    assert!(matches!(
        DirectKey::from_jwk(&enc),
        Err(Error::KeyAlgorithmMismatch {
            expected: "dir",
            ..
        })
    ));
    let mut unlabelled = vector("jwk/3_6.symmetric_key_encryption.json");
    unlabelled.as_object_mut().unwrap().remove("alg");
    let key = DirectKey::from_jwk(&text(&unlabelled)).unwrap();
    assert_eq!(key.key_id().as_str(), unlabelled["kid"].as_str().unwrap());
}
