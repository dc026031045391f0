//! The public API end to end: every algorithm, every key format, key sets, rotation,
//! JWE, and interoperability with josekit's own JWT functions.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{b64, claims, claims_json, forge, raw_signer, validation};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use token_core::{
    AsymmetricSigner, Claims, Error as Core, KeyId, KeyStatus, SecretBytes, TokenFormat,
    TokenSigner, TokenVerifier, Verified,
};
use token_jwt::{
    Algorithm, DecryptingKey, DirectKey, EcdhCurve, EncryptingKey, Error, HmacAlgorithm, HmacKey,
    Jwks, JwtVerifier, MAX_JWKS_KEYS, MAX_JWKS_LEN, SigningKey, SigningKeySet, SkipReason,
    TokenType, VerifyingKey, dangerous_decode_header, dangerous_decode_parts,
    dangerous_decode_unverified, hazmat,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Scope {
    scope: String,
    tenant: u32,
}

fn app_claims() -> Claims<Scope> {
    let base = claims();
    Claims {
        iss: base.iss,
        sub: base.sub,
        aud: base.aud,
        exp: base.exp,
        nbf: base.nbf,
        iat: base.iat,
        jti: Some("jti-1".into()),
        custom: Scope {
            scope: "read write".into(),
            tenant: 7,
        },
    }
}

#[test]
fn every_algorithm_signs_and_verifies() {
    for alg in Algorithm::SIGNING {
        let key = SigningKey::generate(alg).unwrap();
        let token = key.sign(&app_claims()).unwrap();
        let token = token.expose_secret();
        assert_eq!(TokenFormat::detect(token).unwrap(), TokenFormat::Jws);

        let header = dangerous_decode_header(token).unwrap();
        assert_eq!(header.alg(), alg.name());
        assert_eq!(header.typ(), Some("JWT"));
        assert_eq!(header.kid(), Some(key.key_id()));

        let check = |v: Verified<Scope>| {
            assert_eq!(v.claims(), &app_claims());
            assert_eq!(v.key_id(), Some(key.key_id()));
            assert_eq!(v.format(), TokenFormat::Jws);
        };
        check(key.verifying_key().verify(token, &validation()).unwrap());
        check(key.verifier().verify(token, &validation()).unwrap());
        check(
            JwtVerifier::new(key.verifier())
                .verify(token, &validation())
                .unwrap(),
        );
        let mut jwks = Jwks::new();
        jwks.push_verifying_key(key.verifying_key());
        check(
            JwtVerifier::from_jwks(&jwks.to_json())
                .unwrap()
                .verify(token, &validation())
                .unwrap(),
        );

        // Another key of the same algorithm does not verify it.
        let other = SigningKey::generate(alg).unwrap();
        assert_eq!(
            other
                .verifying_key()
                .verify::<Scope>(token, &validation())
                .map(drop),
            Err(Error::Core(Core::InvalidToken)),
            "{alg}"
        );
    }
}

#[test]
fn hmac_signs_and_verifies_with_its_own_algorithm_only() {
    for alg in HmacAlgorithm::ALL {
        let secret = vec![0x5a; alg.output_len()];
        let key = HmacKey::dangerous_shared_secret(alg, SecretBytes::new(secret.clone())).unwrap();
        let token = key.sign(&claims()).unwrap();
        let verified = key
            .verify::<()>(token.expose_secret(), &validation())
            .unwrap();
        assert_eq!(verified.key_id(), Some(key.key_id()));
        let same = HmacKey::dangerous_shared_secret(alg, SecretBytes::new(secret)).unwrap();
        JwtVerifier::new(same)
            .verify::<()>(token.expose_secret(), &validation())
            .unwrap();
        let other =
            HmacKey::dangerous_shared_secret(alg, SecretBytes::new(vec![1; alg.output_len()]))
                .unwrap();
        assert_eq!(
            other
                .verify::<()>(token.expose_secret(), &validation())
                .map(drop),
            Err(Error::Core(Core::InvalidToken))
        );
        assert_eq!(
            dangerous_decode_header(token.expose_secret())
                .unwrap()
                .alg(),
            alg.name()
        );
    }
}

/// The job that needs a public-key signature takes a `SigningKey` or a `SigningKeySet`;
/// an `HmacKey` does not compile there (see the crate docs' `compile_fail` example).
#[test]
fn asymmetric_capability() {
    fn issue_and_check<S: AsymmetricSigner<Error = Error>>(signer: &S)
    where
        S::Verifier: TokenVerifier<Error = Error>,
    {
        let token = signer.sign(&claims()).unwrap();
        signer
            .verifier()
            .verify::<()>(token.expose_secret(), &validation())
            .unwrap();
    }
    issue_and_check(&SigningKey::generate(Algorithm::EdDsa).unwrap());
    issue_and_check(&SigningKeySet::new(
        SigningKey::generate(Algorithm::Es384).unwrap(),
    ));
}

#[test]
fn keys_read_pem_and_der() {
    for alg in Algorithm::SIGNING {
        let key = SigningKey::generate(alg).unwrap();
        let pem = key.dangerous_to_pkcs8_pem().unwrap();
        let pkey =
            openssl::pkey::PKey::private_key_from_pem(pem.expose_secret().as_bytes()).unwrap();
        let same = |k: &SigningKey| {
            assert_eq!(
                k.verifying_key().thumbprint(),
                key.verifying_key().thumbprint(),
                "{alg}"
            );
        };

        same(&SigningKey::from_pem(alg, pem.expose_secret()).unwrap());
        same(&SigningKey::from_der(alg, &pkey.private_key_to_pkcs8().unwrap()).unwrap());
        let spki_pem = String::from_utf8(pkey.public_key_to_pem().unwrap()).unwrap();
        let spki_der = pkey.public_key_to_der().unwrap();
        for public in [
            VerifyingKey::from_pem(alg, &spki_pem).unwrap(),
            VerifyingKey::from_der(alg, &spki_der).unwrap(),
        ] {
            assert_eq!(public.thumbprint(), key.verifying_key().thumbprint());
            let token = key.sign(&claims()).unwrap();
            public
                .verify::<()>(token.expose_secret(), &validation())
                .unwrap();
        }
        // Traditional (SEC 1 / PKCS#1) encodings too.
        if let Ok(ec) = pkey.ec_key() {
            let sec1 = String::from_utf8(ec.private_key_to_pem().unwrap()).unwrap();
            assert!(sec1.contains("EC PRIVATE KEY"));
            same(&SigningKey::from_pem(alg, &sec1).unwrap());
            same(&SigningKey::from_der(alg, &ec.private_key_to_der().unwrap()).unwrap());
        }
        if let Ok(rsa) = pkey.rsa() {
            let pkcs1 = String::from_utf8(rsa.private_key_to_pem().unwrap()).unwrap();
            assert!(pkcs1.contains("RSA PRIVATE KEY"));
            same(&SigningKey::from_pem(alg, &pkcs1).unwrap());
            let public_pkcs1 = String::from_utf8(rsa.public_key_to_pem_pkcs1().unwrap()).unwrap();
            let public = VerifyingKey::from_pem(alg, &public_pkcs1).unwrap();
            assert_eq!(public.thumbprint(), key.verifying_key().thumbprint());
            let public =
                VerifyingKey::from_der(alg, &rsa.public_key_to_der_pkcs1().unwrap()).unwrap();
            assert_eq!(public.thumbprint(), key.verifying_key().thumbprint());
        }
        // A private key is not a verifying key; a public key is not a signing key.
        assert!(matches!(
            VerifyingKey::from_pem(alg, pem.expose_secret()),
            Err(Error::InvalidKey(_))
        ));
        assert!(matches!(
            SigningKey::from_pem(alg, &spki_pem),
            Err(Error::InvalidKey(_))
        ));
        // Encrypted PEM is refused, never prompted for.
        let encrypted = pkey
            .private_key_to_pem_pkcs8_passphrase(openssl::symm::Cipher::aes_256_cbc(), b"pass")
            .unwrap();
        assert_eq!(
            SigningKey::from_pem(alg, std::str::from_utf8(&encrypted).unwrap()).map(drop),
            Err(Error::UnsupportedKey("encrypted PEM; decrypt it first"))
        );
    }
    assert!(matches!(
        SigningKey::from_der(Algorithm::Es256, b"junk"),
        Err(Error::InvalidKey(_))
    ));
    assert!(matches!(
        VerifyingKey::from_der(Algorithm::Es256, b"junk"),
        Err(Error::InvalidKey(_))
    ));
    assert!(matches!(
        VerifyingKey::from_pem(Algorithm::Es256, "junk"),
        Err(Error::InvalidKey(_))
    ));
}

#[test]
fn certificates_give_their_public_key() {
    use openssl::{asn1::Asn1Time, hash::MessageDigest, x509};
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let pem = key.dangerous_to_pkcs8_pem().unwrap();
    let pkey = openssl::pkey::PKey::private_key_from_pem(pem.expose_secret().as_bytes()).unwrap();
    let mut name = x509::X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "issuer.example").unwrap();
    let name = name.build();
    let mut cert = x509::X509Builder::new().unwrap();
    cert.set_version(2).unwrap();
    cert.set_subject_name(&name).unwrap();
    cert.set_issuer_name(&name).unwrap();
    cert.set_pubkey(&pkey).unwrap();
    cert.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    cert.set_not_after(&Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    cert.sign(&pkey, MessageDigest::sha256()).unwrap();
    let cert = String::from_utf8(cert.build().to_pem().unwrap()).unwrap();
    let public = VerifyingKey::from_pem(Algorithm::Es256, &cert).unwrap();
    assert_eq!(public.thumbprint(), key.verifying_key().thumbprint());
}

#[test]
fn keys_must_fit_their_algorithm() {
    let p384 = SigningKey::generate(Algorithm::Es384).unwrap();
    let pem = p384.dangerous_to_pkcs8_pem().unwrap();
    assert_eq!(
        SigningKey::from_pem(Algorithm::Es256, pem.expose_secret()).map(drop),
        Err(Error::KeyAlgorithmMismatch {
            expected: "ES256",
            reason: "an EC P-384 key".into()
        })
    );
    assert!(matches!(
        VerifyingKey::from_jwk(Algorithm::EdDsa, &p384.to_jwk()),
        Err(Error::KeyAlgorithmMismatch {
            expected: "EdDSA",
            ..
        })
    ));
    let ed = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let ed_pem = ed.dangerous_to_pkcs8_pem().unwrap();
    assert!(matches!(
        SigningKey::from_pem(Algorithm::Rs256, ed_pem.expose_secret()),
        Err(Error::KeyAlgorithmMismatch {
            expected: "RS256",
            ..
        })
    ));
    // RSA under 2048 bits is weak; PS256 and RS256 share the rule.
    let small = openssl::rsa::Rsa::generate(1024).unwrap();
    let small = String::from_utf8(small.private_key_to_pem().unwrap()).unwrap();
    for alg in [Algorithm::Rs256, Algorithm::Ps256] {
        assert_eq!(
            SigningKey::from_pem(alg, &small).map(drop),
            Err(Error::WeakKey("RSA modulus under 2048 bits"))
        );
    }
    // An X25519 key is not a signature key; a P-521 key is an ES512 key, verified only.
    let x25519 = openssl::pkey::PKey::generate_x25519().unwrap();
    let x25519 = String::from_utf8(x25519.private_key_to_pem_pkcs8().unwrap()).unwrap();
    assert!(matches!(
        SigningKey::from_pem(Algorithm::EdDsa, &x25519),
        Err(Error::KeyAlgorithmMismatch { .. })
    ));
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::SECP521R1).unwrap();
    let p521 = openssl::ec::EcKey::generate(&group).unwrap();
    let p521 = String::from_utf8(p521.private_key_to_pem().unwrap()).unwrap();
    assert!(matches!(
        SigningKey::from_pem(Algorithm::Es256, &p521),
        Err(Error::KeyAlgorithmMismatch {
            expected: "ES256",
            ..
        })
    ));
    assert_eq!(
        SigningKey::from_pem(Algorithm::Es512, &p521).map(drop),
        Err(Error::VerifyOnlyAlgorithm("ES512"))
    );
}

#[test]
fn jwk_import_checks_alg_use_and_consistency() {
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let mut public: serde_json::Value = serde_json::from_str(&key.to_jwk()).unwrap();
    assert_eq!(public["kid"], key.key_id().as_str());
    // Its own alg must be the requested one.
    assert!(matches!(
        VerifyingKey::from_jwk(Algorithm::Es384, &public.to_string()),
        Err(Error::KeyAlgorithmMismatch {
            expected: "ES384",
            ..
        })
    ));
    // `use: enc` and `key_ops` without verify forbid it.
    public["use"] = "enc".into();
    assert!(matches!(
        VerifyingKey::from_jwk(Algorithm::Es256, &public.to_string()),
        Err(Error::InvalidKey(_))
    ));
    public["use"] = "sig".into();
    public["key_ops"] = serde_json::json!(["sign"]);
    assert!(matches!(
        VerifyingKey::from_jwk(Algorithm::Es256, &public.to_string()),
        Err(Error::InvalidKey(_))
    ));
    public["key_ops"] = serde_json::json!(["verify"]);
    VerifyingKey::from_jwk(Algorithm::Es256, &public.to_string()).unwrap();
    // A kid that is not a valid key id.
    public["kid"] = "has space".into();
    assert!(matches!(
        VerifyingKey::from_jwk(Algorithm::Es256, &public.to_string()),
        Err(Error::Core(Core::InvalidKeyId(_)))
    ));

    // A private JWK whose public part belongs to another key.
    let other = SigningKey::generate(Algorithm::Es256).unwrap();
    let other_public: serde_json::Value = serde_json::from_str(&other.to_jwk()).unwrap();
    for alg in [Algorithm::Es256, Algorithm::EdDsa] {
        let key = SigningKey::generate(alg).unwrap();
        let other = SigningKey::generate(alg).unwrap();
        let other_public: serde_json::Value = serde_json::from_str(&other.to_jwk()).unwrap();
        let mut private: serde_json::Value =
            serde_json::from_str(key.dangerous_to_private_jwk().unwrap().expose_secret()).unwrap();
        private["x"] = other_public["x"].clone();
        if alg == Algorithm::Es256 {
            private["y"] = other_public["y"].clone();
        }
        assert!(
            matches!(
                SigningKey::from_jwk(alg, &private.to_string()),
                Err(Error::InvalidKey(_))
            ),
            "{alg}"
        );
    }
    let _ = other_public;
    // The private export carries d; the public export never does.
    let private = key.dangerous_to_private_jwk().unwrap();
    assert!(private.expose_secret().contains("\"d\""));
    assert!(!key.to_jwk().contains("\"d\""));
    // Rename with a chosen kid.
    let renamed = key.with_key_id(KeyId::new("2025-01").unwrap());
    assert_eq!(renamed.key_id().as_str(), "2025-01");
    assert_eq!(renamed.verifying_key().key_id().as_str(), "2025-01");
    let token = renamed.sign(&claims()).unwrap();
    assert_eq!(
        dangerous_decode_header(token.expose_secret())
            .unwrap()
            .kid()
            .unwrap()
            .as_str(),
        "2025-01"
    );
}

#[test]
#[allow(clippy::too_many_lines)] // one key set, entry by entry
fn jwks_reads_what_it_can_use_and_skips_the_rest() {
    let es = SigningKey::generate(Algorithm::Es256).unwrap();
    let ed = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let rsa = SigningKey::generate(Algorithm::Rs256).unwrap();
    let recipient = DecryptingKey::generate(EcdhCurve::X25519).unwrap();
    let strip = |jwk: String, members: &[&str]| {
        let mut v: serde_json::Value = serde_json::from_str(&jwk).unwrap();
        for m in members {
            v.as_object_mut().unwrap().remove(*m);
        }
        v
    };
    let p521 = common::vector("jwk/3_1.ec_public_key.json");
    let mut rs384 = strip(rsa.to_jwk(), &["kid"]);
    rs384["alg"] = "RS384".into();
    rs384["kid"] = "rs384".into();
    let mut sign_only = strip(es.to_jwk(), &["kid"]);
    sign_only["key_ops"] = serde_json::json!(["sign"]);
    sign_only["kid"] = "sign-only".into();
    let mut ed_entry = strip(ed.to_jwk(), &["alg"]);
    ed_entry["x5t"] = "abc".into();
    let set = serde_json::json!({
        "keys": [
            // No alg, no use, no kid: inferred ES256, named by thumbprint.
            strip(es.to_jwk(), &["alg", "use", "kid"]),
            // No alg: EdDSA from the curve; extra members are dropped.
            ed_entry,
            // No alg on RSA: RS256.
            strip(rsa.to_jwk(), &["alg"]),
            // Verified only, but used: ES512 (P-521, no alg) and RS384.
            p521,
            rs384,
            // Skipped: an encryption key, a sign-only key, an encryption algorithm, an
            // unsupported curve, and a key type that implies no algorithm.
            serde_json::from_str::<serde_json::Value>(&recipient.encrypting_key().to_jwk()).unwrap(),
            sign_only,
            serde_json::json!({"kty": "RSA", "kid": "oaep", "alg": "RSA-OAEP", "n": "AQAB", "e": "AQAB"}),
            serde_json::json!({"kty": "EC", "kid": "k1", "crv": "secp256k1", "x": "AA", "y": "AA"}),
            serde_json::json!({"kty": "OKP", "crv": "X25519", "x": "AA"}),
        ],
        "extra": "ignored",
    })
    .to_string();
    let jwks = Jwks::from_json(&set).unwrap();
    assert_eq!(jwks.len(), 10);
    let ring = jwks.verifying_keys().unwrap();
    let ids: Vec<_> = ring
        .iter()
        .map(|(id, k, s)| (id.clone(), k.algorithm(), s))
        .collect();
    assert_eq!(
        ids,
        vec![
            (
                KeyId::new(es.verifying_key().thumbprint()).unwrap(),
                Algorithm::Es256,
                KeyStatus::VerifyOnly
            ),
            (ed.key_id().clone(), Algorithm::EdDsa, KeyStatus::VerifyOnly),
            (
                rsa.key_id().clone(),
                Algorithm::Rs256,
                KeyStatus::VerifyOnly
            ),
            (
                KeyId::new("bilbo.baggins@hobbiton.example").unwrap(),
                Algorithm::Es512,
                KeyStatus::VerifyOnly
            ),
            (
                KeyId::new("rs384").unwrap(),
                Algorithm::Rs384,
                KeyStatus::VerifyOnly
            ),
        ]
    );
    // What was skipped, and why: said rather than left to "no usable key".
    let skipped: Vec<(usize, Option<String>, SkipReason)> = jwks
        .skipped_verifying_keys()
        .into_iter()
        .map(|k| (k.index, k.kid.clone(), k.reason.clone()))
        .collect();
    assert_eq!(
        skipped,
        vec![
            (
                5,
                Some(recipient.key_id().to_string()),
                SkipReason::NotForSignatures
            ),
            (6, Some("sign-only".into()), SkipReason::NotForSignatures),
            (
                7,
                Some("oaep".into()),
                SkipReason::UnsupportedAlgorithm("RSA-OAEP".into())
            ),
            (
                8,
                Some("k1".into()),
                SkipReason::UnsupportedKey("EC curve secp256k1")
            ),
            (9, None, SkipReason::NoAlgorithm),
        ]
    );
    assert_eq!(
        jwks.skipped_verifying_keys()[2].to_string(),
        "entry 7 (kid oaep): algorithm `RSA-OAEP` is not verified"
    );
    let verifier = JwtVerifier::from_jwks(&set).unwrap();
    for key in [&es, &ed, &rsa] {
        verifier
            .verify::<()>(key.sign(&claims()).unwrap().expose_secret(), &validation())
            .unwrap();
    }
    // The encryption key in the same set is found by kid.
    let enc = EncryptingKey::from_jwks(&jwks, recipient.key_id().as_str()).unwrap();
    assert_eq!(enc.thumbprint(), recipient.encrypting_key().thumbprint());
    assert_eq!(
        EncryptingKey::from_jwks(&jwks, "nope").map(drop),
        Err(Error::Core(Core::UnknownKeyId))
    );
    // Re-published, unknown members are gone and nothing private appears.
    let again = jwks.to_json();
    assert!(
        !again.contains("x5t") && !again.contains("\"d\""),
        "{again}"
    );
    assert_eq!(Jwks::from_json(&again).unwrap().len(), 10);
    // The verifier's own key set exports as a JWKS that verifies the same tokens.
    let exported = verifier.to_jwks().to_json();
    let round = JwtVerifier::from_jwks(&exported).unwrap();
    round
        .verify::<()>(es.sign(&claims()).unwrap().expose_secret(), &validation())
        .unwrap();
}

#[test]
fn jwks_errors() {
    let es = SigningKey::generate(Algorithm::Es256).unwrap();
    let jwk = es.to_jwk();
    assert_eq!(
        JwtVerifier::from_jwks(&format!(r#"{{"keys":[{jwk},{jwk}]}}"#)).map(drop),
        Err(Error::Core(Core::DuplicateKeyId(es.key_id().to_string())))
    );
    assert_eq!(
        JwtVerifier::from_jwks(r#"{"keys":[]}"#).map(drop),
        Err(Error::EmptyKeySet)
    );
    for bad in [
        "[]",
        r#"{"keys":{}}"#,
        r#"{"keys":[["EC"]]}"#,
        r#"{"nokeys":[]}"#,
        "junk",
    ] {
        assert!(
            matches!(Jwks::from_json(bad), Err(Error::InvalidKey(_))),
            "{bad}"
        );
    }
    let many = format!(
        r#"{{"keys":[{}]}}"#,
        vec![r#"{"kty":"EC"}"#; MAX_JWKS_KEYS + 1].join(",")
    );
    assert_eq!(
        Jwks::from_json(&many).map(drop),
        Err(Error::JwksTooLarge("over 100 keys"))
    );
    let huge = format!(r#"{{"keys":[],"pad":"{}"}}"#, "x".repeat(MAX_JWKS_LEN));
    assert_eq!(
        Jwks::from_json(&huge).map(drop),
        Err(Error::JwksTooLarge("over 256 KiB"))
    );
    // An entry that claims a supported algorithm but is broken fails the set.
    let mut broken: serde_json::Value = serde_json::from_str(&jwk).unwrap();
    broken["x"] = "AAAA".into();
    assert!(matches!(
        JwtVerifier::from_jwks(&format!(r#"{{"keys":[{broken}]}}"#)),
        Err(Error::InvalidKey(_))
    ));
    let mut weak: serde_json::Value =
        serde_json::from_str(&SigningKey::generate(Algorithm::Rs256).unwrap().to_jwk()).unwrap();
    weak["n"] = b64([0xc3u8; 128]).into();
    assert!(matches!(
        JwtVerifier::from_jwks(&format!(r#"{{"keys":[{weak}]}}"#)),
        Err(Error::WeakKey(_))
    ));
    let mut mismatched: serde_json::Value = serde_json::from_str(&jwk).unwrap();
    mismatched["alg"] = "RS256".into();
    assert!(matches!(
        JwtVerifier::from_jwks(&format!(r#"{{"keys":[{mismatched}]}}"#)),
        Err(Error::KeyAlgorithmMismatch {
            expected: "RS256",
            ..
        })
    ));
}

#[test]
fn signing_key_set_rotates_and_publishes() {
    let first = SigningKey::generate(Algorithm::Es256).unwrap();
    let first_id = first.key_id().clone();
    let mut set = SigningKeySet::new(first);
    let old = set.sign(&claims()).unwrap();
    set.rotate_to(SigningKey::generate(Algorithm::Ps256).unwrap())
        .unwrap();
    assert_eq!(set.algorithm(), Algorithm::Ps256);
    assert_eq!(TokenSigner::key_id(&set), set.key_id());
    assert_eq!(set.keys().current().unwrap().0, set.key_id());
    let statuses: Vec<_> = set
        .keys()
        .iter()
        .map(|(id, _, s)| (id.clone(), s))
        .collect();
    assert_eq!(statuses[0], (first_id.clone(), KeyStatus::VerifyOnly));
    assert_eq!(statuses[1], (set.key_id().clone(), KeyStatus::Current));
    let new = set.sign_as(&TokenType::AccessToken, &claims()).unwrap();
    let published = set.jwks().to_json();
    let verifier = JwtVerifier::from_jwks(&published).unwrap();
    verifier
        .verify::<()>(old.expose_secret(), &validation())
        .unwrap();
    let rs = JwtVerifier::from_jwks(&published)
        .unwrap()
        .expect_type(TokenType::AccessToken);
    let verified = rs.verify::<()>(new.expose_secret(), &validation()).unwrap();
    assert_eq!(verified.key_id(), Some(set.key_id()));
    // Published entries have kid, alg and use, and nothing private.
    let jwks: serde_json::Value = serde_json::from_str(&published).unwrap();
    for entry in jwks["keys"].as_array().unwrap() {
        assert!(entry["kid"].is_string() && entry["alg"].is_string());
        assert_eq!(entry["use"], "sig");
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(entry.get(private).is_none());
        }
    }
    // The current key is published first.
    assert_eq!(jwks["keys"][0]["kid"], set.key_id().as_str());
    assert!(format!("{set:?}").contains(first_id.as_str()));
    // Verifier-side rotation.
    let mut verifier = JwtVerifier::from_jwks(&published).unwrap();
    verifier.remove(first_id.as_str()).unwrap();
    assert_eq!(
        verifier
            .verify::<()>(old.expose_secret(), &validation())
            .map(drop),
        Err(Error::Core(Core::UnknownKeyId))
    );
    assert_eq!(
        verifier.remove("absent").map(drop),
        Err(Error::Core(Core::UnknownKeyId))
    );
    assert_eq!(
        JwtVerifier::<VerifyingKey>::from_key_ring(token_core::KeyRing::verify_only()).map(drop),
        Err(Error::EmptyKeySet)
    );
    // The same verifier from the keys themselves, as token-paseto's `from_keys`.
    let public: Vec<VerifyingKey> = set
        .keys()
        .iter()
        .map(|(_, key, _)| key.verifying_key().clone())
        .collect();
    let verifier = JwtVerifier::from_keys(public.clone()).unwrap();
    verifier
        .verify::<()>(old.expose_secret(), &validation())
        .unwrap();
    assert_eq!(
        JwtVerifier::from_keys(public.iter().chain(&public).cloned()).map(drop),
        Err(Error::Core(Core::DuplicateKeyId(first_id.to_string())))
    );
    assert_eq!(
        JwtVerifier::<VerifyingKey>::from_keys([]).map(drop),
        Err(Error::EmptyKeySet)
    );
}

#[test]
fn direct_jwe_round_trips() {
    let key = DirectKey::generate().unwrap();
    let token = key.encrypt(&app_claims()).unwrap();
    let token = token.expose_secret();
    assert_eq!(TokenFormat::detect(token).unwrap(), TokenFormat::Jwe);
    let header = dangerous_decode_header(token).unwrap();
    assert_eq!(
        (header.alg(), header.enc(), header.typ()),
        ("dir", Some("A256GCM"), Some("JWT"))
    );
    assert_eq!(header.kid(), Some(key.key_id()));
    assert!(!token.contains("read write"), "claims must not be readable");
    let verified = key.decrypt::<Scope>(token, &validation()).unwrap();
    assert_eq!(verified.claims(), &app_claims());
    assert_eq!(verified.format(), TokenFormat::Jwe);
    assert_eq!(verified.key_id(), Some(key.key_id()));
    // Export and re-import.
    let jwk = key.dangerous_to_secret_jwk();
    let again = DirectKey::from_jwk(jwk.expose_secret()).unwrap();
    again.decrypt::<Scope>(token, &validation()).unwrap();
    assert_eq!(again.key_id(), key.key_id());
    let other = DirectKey::generate().unwrap();
    assert_eq!(
        other.decrypt::<Scope>(token, &validation()).map(drop),
        Err(Error::Core(Core::InvalidToken))
    );
    assert!(matches!(
        DirectKey::from_secret(SecretBytes::new(vec![0; 16])),
        Err(Error::InvalidKey(_))
    ));
    // Nested with a direct key and an HMAC signer.
    let hmac =
        HmacKey::dangerous_shared_secret(HmacAlgorithm::Hs512, SecretBytes::new(vec![9; 64]))
            .unwrap();
    let nested = key.encrypt_signed(&hmac, &claims()).unwrap();
    let verified = key
        .decrypt_signed::<(), _>(nested.expose_secret(), &hmac, &validation())
        .unwrap();
    assert_eq!(verified.key_id(), Some(hmac.key_id()));
    let (h, plain) = hazmat::decrypt_jwe_direct(&key, nested.expose_secret()).unwrap();
    assert_eq!(h.cty(), Some("JWT"));
    assert_eq!(
        TokenFormat::detect(std::str::from_utf8(plain.expose_secret()).unwrap()).unwrap(),
        TokenFormat::Jws
    );
}

#[test]
fn nested_jwe_round_trips_on_both_curves() {
    for curve in [EcdhCurve::P256, EcdhCurve::X25519] {
        let recipient = DecryptingKey::generate(curve).unwrap();
        let mut issuers = SigningKeySet::new(SigningKey::generate(Algorithm::EdDsa).unwrap());
        issuers
            .rotate_to(SigningKey::generate(Algorithm::Es256).unwrap())
            .unwrap();
        let token = recipient
            .encrypting_key()
            .encrypt_signed(&issuers, &app_claims())
            .unwrap();
        let token = token.expose_secret();
        let header = dangerous_decode_header(token).unwrap();
        assert_eq!(header.alg(), "ECDH-ES+A256KW");
        assert_eq!(header.cty(), Some("JWT"));
        assert_eq!(header.kid(), Some(recipient.key_id()));
        let verified = recipient
            .decrypt_signed::<Scope, _>(token, &issuers.verifier(), &validation())
            .unwrap();
        assert_eq!(verified.claims(), &app_claims());
        assert_eq!(verified.format(), TokenFormat::Jwe);
        assert_eq!(verified.key_id(), Some(issuers.key_id()));

        // The recipient key through every format.
        let jwk = recipient.dangerous_to_private_jwk().unwrap();
        let again = DecryptingKey::from_jwk(jwk.expose_secret()).unwrap();
        assert_eq!(again.key_id(), recipient.key_id());
        again
            .decrypt_signed::<Scope, _>(token, &issuers.verifier(), &validation())
            .unwrap();
        let public = EncryptingKey::from_jwk(&recipient.encrypting_key().to_jwk()).unwrap();
        assert_eq!(public.curve(), curve);
        let mut jwks = Jwks::new();
        jwks.push_encrypting_key(&public);
        assert_eq!(
            JwtVerifier::from_jwks(&jwks.to_json()).map(drop),
            Err(Error::EmptyKeySet)
        );
        assert!(
            !format!("{recipient:?}")
                .contains(&jwk.expose_secret()[jwk.expose_secret().len() - 20..])
        );
    }
    // PEM and DER, PKCS#8 and SEC 1.
    let p256 = openssl::ec::EcKey::generate(
        &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
    )
    .unwrap();
    let sec1 = String::from_utf8(p256.private_key_to_pem().unwrap()).unwrap();
    let p256 = openssl::pkey::PKey::from_ec_key(p256).unwrap();
    let x25519 = openssl::pkey::PKey::generate_x25519().unwrap();
    for (pkey, curve) in [(&p256, EcdhCurve::P256), (&x25519, EcdhCurve::X25519)] {
        let pem = String::from_utf8(pkey.private_key_to_pem_pkcs8().unwrap()).unwrap();
        let key = DecryptingKey::from_pem(&pem).unwrap();
        assert_eq!(key.encrypting_key().curve(), curve);
        let from_der = DecryptingKey::from_der(&pkey.private_key_to_pkcs8().unwrap()).unwrap();
        assert_eq!(from_der.key_id(), key.key_id());
        let spki = String::from_utf8(pkey.public_key_to_pem().unwrap()).unwrap();
        assert_eq!(
            EncryptingKey::from_pem(&spki).unwrap().key_id(),
            key.key_id()
        );
        assert_eq!(
            EncryptingKey::from_der(&pkey.public_key_to_der().unwrap())
                .unwrap()
                .key_id(),
            key.key_id()
        );
        let signer = SigningKey::generate(Algorithm::Es256).unwrap();
        let token = EncryptingKey::from_pem(&spki)
            .unwrap()
            .encrypt_signed(&signer, &claims())
            .unwrap();
        key.decrypt_signed::<(), _>(token.expose_secret(), signer.verifying_key(), &validation())
            .unwrap();
        assert!(matches!(
            DecryptingKey::from_pem(&spki),
            Err(Error::InvalidKey(_))
        ));
        assert!(matches!(
            EncryptingKey::from_pem(&pem),
            Err(Error::InvalidKey(_))
        ));
    }
    assert_eq!(
        DecryptingKey::from_pem(&sec1).unwrap().key_id(),
        DecryptingKey::from_der(&p256.private_key_to_der().unwrap())
            .unwrap()
            .key_id()
    );
    // Keys of the wrong kind.
    let ed = SigningKey::generate(Algorithm::EdDsa).unwrap();
    assert!(matches!(
        EncryptingKey::from_jwk(&ed.to_jwk()),
        Err(Error::KeyAlgorithmMismatch { .. })
    ));
    let p384 = SigningKey::generate(Algorithm::Es384).unwrap();
    let mut jwk: serde_json::Value = serde_json::from_str(&p384.to_jwk()).unwrap();
    jwk.as_object_mut().unwrap().remove("alg");
    jwk["use"] = "enc".into();
    assert!(matches!(
        EncryptingKey::from_jwk(&jwk.to_string()),
        Err(Error::UnsupportedKey(_))
    ));
}

#[test]
fn interoperates_with_josekit_jwt() {
    use josekit::jwt::{self, JwtPayload};
    // josekit issues, this crate verifies.
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let pem = key.dangerous_to_pkcs8_pem().unwrap();
    let mut signer = josekit::jws::ES256
        .signer_from_pem(pem.expose_secret().as_bytes())
        .unwrap();
    signer.set_key_id(key.key_id().as_str());
    let mut header = josekit::jws::JwsHeader::new();
    header.set_token_type("JWT");
    let payload = JwtPayload::from_map(
        serde_json::from_str::<serde_json::Map<_, _>>(&claims_json()).unwrap(),
    )
    .unwrap();
    let token = jwt::encode_with_signer(&payload, &header, &signer).unwrap();
    let verifier = JwtVerifier::new(key.verifying_key().clone());
    verifier.verify::<()>(&token, &validation()).unwrap();

    // This crate issues, josekit verifies (EdDSA through OpenSSL, against dalek's signature).
    for alg in [Algorithm::EdDsa, Algorithm::Ps256] {
        let key = SigningKey::generate(alg).unwrap();
        let token = key.sign(&claims()).unwrap();
        let jwk = josekit::jwk::Jwk::from_bytes(key.to_jwk()).unwrap();
        let (payload, header) = match alg {
            Algorithm::EdDsa => jwt::decode_with_verifier(
                token.expose_secret(),
                &josekit::jws::EdDSA.verifier_from_jwk(&jwk).unwrap(),
            ),
            _ => jwt::decode_with_verifier(
                token.expose_secret(),
                &josekit::jws::PS256.verifier_from_jwk(&jwk).unwrap(),
            ),
        }
        .unwrap();
        assert_eq!(payload.issuer(), Some(common::ISSUER));
        assert_eq!(header.key_id(), Some(key.key_id().as_str()));
    }

    // JWE both ways: josekit's own ECDH-ES+A256KW/A256GCM decrypter opens ours, and
    // this crate opens josekit's.
    let recipient = DecryptingKey::generate(EcdhCurve::P256).unwrap();
    let signer = SigningKey::generate(Algorithm::Es256).unwrap();
    let ours = recipient
        .encrypting_key()
        .encrypt_signed(&signer, &claims())
        .unwrap();
    let private = josekit::jwk::Jwk::from_bytes(
        recipient
            .dangerous_to_private_jwk()
            .unwrap()
            .expose_secret(),
    )
    .unwrap();
    let decrypter = josekit::jwe::ECDH_ES_A256KW
        .decrypter_from_jwk(&private)
        .unwrap();
    let (inner, header) =
        josekit::jwe::deserialize_compact(ours.expose_secret(), &decrypter).unwrap();
    assert_eq!(header.content_type(), Some("JWT"));
    signer
        .verifying_key()
        .verify::<()>(std::str::from_utf8(&inner).unwrap(), &validation())
        .unwrap();

    let public = josekit::jwk::Jwk::from_bytes(recipient.encrypting_key().to_jwk()).unwrap();
    let encrypter = josekit::jwe::ECDH_ES_A256KW
        .encrypter_from_jwk(&public)
        .unwrap();
    let mut header = josekit::jwe::JweHeader::new();
    header.set_content_encryption("A256GCM");
    header.set_content_type("JWT");
    let inner = signer.sign(&claims()).unwrap();
    let theirs =
        josekit::jwe::serialize_compact(inner.expose_secret().as_bytes(), &header, &encrypter)
            .unwrap();
    recipient
        .decrypt_signed::<(), _>(&theirs, signer.verifying_key(), &validation())
        .unwrap();
}

#[test]
fn unverified_decoding_is_for_inspection_only() {
    let unsigned = format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(claims_json()));
    let untrusted = dangerous_decode_unverified::<()>(&unsigned).unwrap();
    assert_eq!(untrusted.header().alg(), "none");
    assert_eq!(untrusted.claims(), &claims());
    assert_eq!(untrusted.into_claims().sub.as_deref(), Some("user-1"));
    // The verified API refuses the same token.
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    assert_eq!(
        key.verifying_key()
            .verify::<()>(&unsigned, &validation())
            .map(drop),
        Err(Error::UnsecuredJwt)
    );
    // A JWE's claims cannot be decoded without its key; its header can.
    let direct = DirectKey::generate().unwrap();
    let jwe = direct.encrypt(&claims()).unwrap();
    assert_eq!(
        dangerous_decode_unverified::<()>(jwe.expose_secret()).map(drop),
        Err(Error::UnexpectedFormat {
            expected: TokenFormat::Jws,
            found: TokenFormat::Jwe
        })
    );
    assert_eq!(
        dangerous_decode_header(jwe.expose_secret()).unwrap().enc(),
        Some("A256GCM")
    );
    assert!(dangerous_decode_header("v4.local.AAAA").is_err());
    // Strict claims even here.
    let bad = forge(
        r#"{"alg":"ES256"}"#,
        r#"{"exp":"soon"}"#,
        &*raw_signer(&key),
    );
    assert!(matches!(
        dangerous_decode_unverified::<()>(&bad),
        Err(Error::Core(Core::MalformedClaim { .. }))
    ));
}

/// The segments decoder an inspection tool uses: the verifiers' splitting and bounds,
/// every segment's base64url, and the header read by the verifiers' parser on demand.
#[test]
fn parts_decode_every_segment_and_the_header_by_the_verifiers_parser() {
    let unsigned = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","jku":"x"}"#),
        b64(claims_json())
    );
    let parts = dangerous_decode_parts(&unsigned).unwrap();
    assert_eq!(parts.format(), TokenFormat::Jws);
    assert_eq!(parts.header_json(), br#"{"alg":"none","jku":"x"}"#);
    assert_eq!(parts.header().unwrap().alg(), "none");
    assert_eq!(parts.payload(), Some(claims_json().as_bytes()));
    assert_eq!(parts.signature(), Some(&[][..]));

    let direct = DirectKey::generate().unwrap();
    let jwe = direct.encrypt(&claims()).unwrap();
    let parts = dangerous_decode_parts(jwe.expose_secret()).unwrap();
    assert_eq!(parts.format(), TokenFormat::Jwe);
    assert_eq!(parts.header().unwrap().enc(), Some("A256GCM"));
    assert_eq!((parts.payload(), parts.signature()), (None, None));

    // The header rules are the verifiers': a repeated member, a JWE member in a JWS.
    for header in [
        r#"{"alg":"ES256","kid":"a","kid":"b"}"#,
        r#"{"alg":"ES256","enc":"A256GCM"}"#,
    ] {
        let token = format!("{}.{}.AAAA", b64(header), b64(claims_json()));
        let parts = dangerous_decode_parts(&token).unwrap();
        assert_eq!(
            parts.header().map(drop),
            dangerous_decode_header(&token).map(drop)
        );
        assert!(parts.header().is_err(), "{header}");
    }
    // Segments that are not base64url, and what is not JOSE at all.
    let h = b64(r#"{"alg":"ES256"}"#);
    assert_eq!(
        dangerous_decode_parts(&format!("{h}.A.AAAA")).map(drop),
        Err(Error::MalformedToken("payload is not base64url"))
    );
    assert_eq!(
        dangerous_decode_parts(&format!("{h}.AAAA.A")).map(drop),
        Err(Error::MalformedToken("signature is not base64url"))
    );
    assert_eq!(
        dangerous_decode_parts(&format!("{h}A.AAAA.AAAA")).map(drop),
        Err(Error::MalformedHeader("not base64url".to_owned()))
    );
    assert!(matches!(
        dangerous_decode_parts("v4.local.AAAA"),
        Err(Error::UnexpectedFormat { .. } | Error::Core(_))
    ));
}

#[test]
fn keys_and_verifiers_can_be_shared_across_threads() {
    fn shared<T: Send + Sync + 'static>() {}
    shared::<SigningKey>();
    shared::<VerifyingKey>();
    shared::<HmacKey>();
    shared::<JwtVerifier>();
    shared::<JwtVerifier<HmacKey>>();
    shared::<SigningKeySet>();
    shared::<DecryptingKey>();
    shared::<EncryptingKey>();
    shared::<DirectKey>();
    shared::<Jwks>();
    shared::<Error>();
    let verifier = std::sync::Arc::new(JwtVerifier::new(
        SigningKey::generate(Algorithm::EdDsa).unwrap().verifier(),
    ));
    let handle = {
        let verifier = verifier.clone();
        std::thread::spawn(move || verifier.verify::<()>("not.a.token", &validation()).is_err())
    };
    assert!(handle.join().unwrap());
}

#[test]
fn debug_output_never_shows_secrets() {
    let key = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let private: serde_json::Value =
        serde_json::from_str(key.dangerous_to_private_jwk().unwrap().expose_secret()).unwrap();
    let d = private["d"].as_str().unwrap();
    let dbg = format!("{key:?}");
    assert!(
        dbg.contains(key.key_id().as_str()) && !dbg.contains(d),
        "{dbg}"
    );

    let secret = vec![0x42; 32];
    let hmac =
        HmacKey::dangerous_shared_secret(HmacAlgorithm::Hs256, SecretBytes::new(secret.clone()))
            .unwrap();
    let dbg = format!("{hmac:?}");
    assert!(
        !dbg.contains(&b64(&secret)) && !dbg.contains("66, 66"),
        "{dbg}"
    );
    let direct = DirectKey::from_secret(SecretBytes::new(secret.clone())).unwrap();
    let dbg = format!("{direct:?}");
    assert!(
        !dbg.contains(&b64(&secret)) && !dbg.contains("66, 66"),
        "{dbg}"
    );
    let token = key.sign(&claims()).unwrap();
    assert!(!format!("{token:?}").contains(&token.expose_secret()[..20]));
    let verifier = JwtVerifier::new(key.verifier());
    assert!(format!("{verifier:?}").contains(key.key_id().as_str()));
    assert!(!format!("{:?}", Jwks::new()).is_empty());
}

/// A key pair made by OpenSSL, as another system would hold it, and a josekit signer for
/// `alg` over its private half: tokens this crate never signs.
fn foreign_key(alg: Algorithm) -> (String, Box<dyn josekit::jws::JwsSigner>) {
    let pkey = match alg {
        Algorithm::Es512 => {
            let group =
                openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::SECP521R1).unwrap();
            openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap()
        }
        _ => openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap(),
    };
    // What josekit reads for each: RSA keys as PKCS#8 DER (the PSS parameters come from
    // the algorithm), P-521 keys in the SEC 1 form (`EC PRIVATE KEY`).
    let der = pkey.private_key_to_pkcs8().unwrap();
    let public = String::from_utf8(pkey.public_key_to_pem().unwrap()).unwrap();
    let signer: Box<dyn josekit::jws::JwsSigner> = match alg {
        Algorithm::Rs384 => Box::new(josekit::jws::RS384.signer_from_der(&der).unwrap()),
        Algorithm::Rs512 => Box::new(josekit::jws::RS512.signer_from_der(&der).unwrap()),
        Algorithm::Ps384 => Box::new(josekit::jws::PS384.signer_from_der(&der).unwrap()),
        Algorithm::Ps512 => Box::new(josekit::jws::PS512.signer_from_der(&der).unwrap()),
        Algorithm::Es512 => Box::new(
            josekit::jws::ES512
                .signer_from_pem(pkey.ec_key().unwrap().private_key_to_pem().unwrap())
                .unwrap(),
        ),
        other => panic!("{other} signs here"),
    };
    (public, signer)
}

/// RS384, RS512, PS384, PS512 and ES512 tokens from other systems verify (they used to
/// be refused as unsupported); the algorithm is still the key's, never the token's, and
/// none of them signs here.
#[test]
fn verify_only_algorithms_verify_tokens_from_other_systems() {
    let verify_only: Vec<Algorithm> = Algorithm::ALL
        .into_iter()
        .filter(|a| !a.can_sign())
        .collect();
    assert_eq!(
        verify_only,
        [
            Algorithm::Rs384,
            Algorithm::Rs512,
            Algorithm::Ps384,
            Algorithm::Ps512,
            Algorithm::Es512
        ]
    );
    for alg in verify_only {
        let (public, signer) = foreign_key(alg);
        let key = VerifyingKey::from_pem(alg, &public).unwrap();
        // Keycloak-style: a `kid` the caller's single key does not carry, and a
        // fractional `exp`.
        let header = format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"kc-1"}}"#);
        let payload = r#"{"iss":"https://auth.example","sub":"user-1","aud":"api","iat":1700000000,"exp":1700000300.5}"#;
        let token = forge(&header, payload, &|input| signer.sign(input).unwrap());
        let verified = key.verify::<()>(&token, &validation()).unwrap();
        assert_eq!(
            verified
                .claims()
                .exp
                .map(token_core::Timestamp::unix_seconds),
            Some(1_700_000_300),
            "{alg}"
        );
        // By `kid` in a set, once the key is named so.
        let set = JwtVerifier::new(key.clone().with_key_id(KeyId::new("kc-1").unwrap()));
        set.verify::<()>(&token, &validation()).unwrap();
        // Tampered: the opaque failure.
        let (input, sig) = token.rsplit_once('.').unwrap();
        let mut sig = common::unb64(sig);
        sig[0] ^= 1;
        assert_eq!(
            key.verify::<()>(&format!("{input}.{}", b64(&sig)), &validation())
                .map(drop),
            Err(Error::Core(Core::InvalidToken)),
            "{alg}"
        );
        // The key pins the algorithm: another `alg` in the header is refused first.
        let other = if alg == Algorithm::Es512 {
            "ES256"
        } else {
            "RS256"
        };
        let swapped = forge(&format!(r#"{{"alg":"{other}"}}"#), payload, &|input| {
            signer.sign(input).unwrap()
        });
        assert_eq!(
            key.verify::<()>(&swapped, &validation()).map(drop),
            Err(Error::AlgorithmNotAllowed {
                expected: alg.name(),
                found: other.into()
            })
        );
        // Verified only.
        assert_eq!(
            SigningKey::generate(alg).map(drop),
            Err(Error::VerifyOnlyAlgorithm(alg.name()))
        );
    }
    // An RSA key for RS384 is not an RS256 key for the same token.
    let (public, signer) = foreign_key(Algorithm::Rs384);
    let token = forge(r#"{"alg":"RS384"}"#, &claims_json(), &|input| {
        signer.sign(input).unwrap()
    });
    let rs256 = VerifyingKey::from_pem(Algorithm::Rs256, &public).unwrap();
    assert_eq!(
        rs256.verify::<()>(&token, &validation()).map(drop),
        Err(Error::AlgorithmNotAllowed {
            expected: "RS256",
            found: "RS384".into()
        })
    );
}
