//! The attack suite: every known JWT attack as a test asserting the exact typed error.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::Duration;

use common::{
    AUDIENCE, ISSUER, NOW, at, b64, claims, claims_json, forge, raw_signer, unb64, validation,
};
use josekit::jws::{JwsSigner as _, JwsVerifier as _};
use secrecy::ExposeSecret;
use token_core::{
    Claims, Error as Core, KeyId, MAX_TOKEN_LEN, PasetoPurpose, PasetoVersion, RegisteredClaim,
    SecretBytes, Timestamp, TokenFormat, TokenSigner, TokenVerifier, Validation,
};
use token_jwt::{
    Algorithm, DecryptingKey, DirectKey, EcdhCurve, Error, HmacAlgorithm, HmacKey, JwtVerifier,
    MAX_HEADER_LEN, SigningKey, SigningKeySet, TokenType, VerifyingKey,
};

fn es256() -> SigningKey {
    SigningKey::generate(Algorithm::Es256).unwrap()
}

fn verify(key: &VerifyingKey, token: &str) -> Result<(), Error> {
    key.verify::<()>(token, &validation()).map(drop)
}

fn verify_set(set: &JwtVerifier, token: &str) -> Result<(), Error> {
    set.verify::<()>(token, &validation()).map(drop)
}

/// Swaps the header of `token` for `header`, keeping payload and signature.
fn with_header(token: &str, header: &str) -> String {
    let (_, rest) = token.split_once('.').unwrap();
    format!("{}.{rest}", b64(header))
}

fn signed(key: &SigningKey) -> String {
    key.sign(&claims()).unwrap().expose_secret().to_owned()
}

// ---- alg: none -------------------------------------------------------------------------

#[test]
fn alg_none_is_refused_in_every_spelling() {
    let key = es256();
    let public = key.verifying_key();
    let set = JwtVerifier::new(public.clone());
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#);
        let unsigned = format!("{}.{}.", b64(&header), b64(claims_json()));
        assert_eq!(verify(public, &unsigned), Err(Error::UnsecuredJwt), "{alg}");
        assert_eq!(
            verify_set(&set, &unsigned),
            Err(Error::UnsecuredJwt),
            "{alg}"
        );
        // With the original signature kept, and with the key's own kid.
        let header = format!(r#"{{"alg":"{alg}","kid":"{}"}}"#, key.key_id());
        let resigned = with_header(&signed(&key), &header);
        assert_eq!(verify(public, &resigned), Err(Error::UnsecuredJwt), "{alg}");
        assert_eq!(
            verify_set(&set, &resigned),
            Err(Error::UnsecuredJwt),
            "{alg}"
        );
    }
    let hmac =
        HmacKey::dangerous_shared_secret(HmacAlgorithm::Hs256, SecretBytes::new(vec![3; 32]))
            .unwrap();
    let unsigned = format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(claims_json()));
    assert_eq!(
        hmac.verify::<()>(&unsigned, &validation()).map(drop),
        Err(Error::UnsecuredJwt)
    );
}

// ---- HS256 with the public key as the secret ---------------------------------------------

/// The classic confusion: the attacker HMACs a token with the verifier's *public* key
/// (PEM, DER or JWK text) as the secret and sets `alg: HS256`. A library that lets the
/// header choose the algorithm would verify it. Here the key pins RS256/ES256.
#[test]
fn hs256_signed_with_the_public_key_does_not_forge() {
    for alg in [Algorithm::Rs256, Algorithm::Es256] {
        let key = SigningKey::generate(alg).unwrap();
        let public_pem = {
            let jwk = josekit::jwk::Jwk::from_bytes(key.to_jwk()).unwrap();
            let pem = match alg {
                Algorithm::Rs256 => josekit::jws::RS256.verifier_from_jwk(&jwk).map(drop),
                _ => josekit::jws::ES256.verifier_from_jwk(&jwk).map(drop),
            };
            pem.unwrap();
            // The PEM as a verifier would hold it.
            let pkey = openssl::pkey::PKey::public_key_from_der(&public_der(&key)).unwrap();
            String::from_utf8(pkey.public_key_to_pem().unwrap()).unwrap()
        };
        let verifier = VerifyingKey::from_pem(alg, &public_pem).unwrap();
        for secret in [
            public_pem.as_bytes().to_vec(),
            public_der(&key),
            key.to_jwk().into_bytes(),
        ] {
            let hs256 = josekit::jws::HS256.signer_from_bytes(&secret).unwrap();
            let header = format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{}"}}"#, key.key_id());
            let forged = forge(&header, &claims_json(), &|m| hs256.sign(m).unwrap());

            // The forgery is well-formed: an HMAC verifier holding that "secret" accepts
            // its signature. Only the pinned algorithm stops it.
            let (input, sig) = forged.rsplit_once('.').unwrap();
            josekit::jws::HS256
                .verifier_from_bytes(&secret)
                .unwrap()
                .verify(input.as_bytes(), &unb64(sig))
                .unwrap();

            let refused = Error::AlgorithmNotAllowed {
                expected: alg.name(),
                found: "HS256".into(),
            };
            assert_eq!(verify(&verifier, &forged), Err(refused.clone()));
            let set = JwtVerifier::new(verifier.clone());
            assert_eq!(verify_set(&set, &forged), Err(refused.clone()));
            let jwks =
                JwtVerifier::from_jwks(&key.verifying_key().clone().into_jwks_json()).unwrap();
            assert_eq!(verify_set(&jwks, &forged), Err(refused));
        }
        // And the public key cannot be made into an HMAC key by mistake.
        assert!(matches!(
            HmacKey::dangerous_shared_secret(
                HmacAlgorithm::Hs256,
                SecretBytes::from_slice(public_pem.as_bytes())
            ),
            Err(Error::InvalidKey(_))
        ));
        assert!(matches!(
            HmacKey::dangerous_shared_secret(
                HmacAlgorithm::Hs256,
                SecretBytes::from_slice(key.to_jwk().as_bytes())
            ),
            Err(Error::InvalidKey(_))
        ));
    }
}

fn public_der(key: &SigningKey) -> Vec<u8> {
    let pem = key.dangerous_to_pkcs8_pem().unwrap();
    let pkey = openssl::pkey::PKey::private_key_from_pem(pem.expose_secret().as_bytes()).unwrap();
    pkey.public_key_to_der().unwrap()
}

trait IntoJwks {
    fn into_jwks_json(self) -> String;
}

impl IntoJwks for VerifyingKey {
    fn into_jwks_json(self) -> String {
        let mut jwks = token_jwt::Jwks::new();
        jwks.push_verifying_key(&self);
        jwks.to_json()
    }
}

#[test]
fn an_hmac_key_refuses_asymmetric_tokens_and_the_reverse() {
    let hmac =
        HmacKey::dangerous_shared_secret(HmacAlgorithm::Hs256, SecretBytes::new(vec![5; 32]))
            .unwrap();
    let es = es256();
    assert_eq!(
        hmac.verify::<()>(&signed(&es), &validation()).map(drop),
        Err(Error::AlgorithmNotAllowed {
            expected: "HS256",
            found: "ES256".into()
        })
    );
    let hs_token = { hmac.sign(&claims()).unwrap().expose_secret().to_owned() };
    assert_eq!(
        verify(es.verifying_key(), &hs_token),
        Err(Error::AlgorithmNotAllowed {
            expected: "ES256",
            found: "HS256".into()
        })
    );
    let hs384 =
        HmacKey::dangerous_shared_secret(HmacAlgorithm::Hs384, SecretBytes::new(vec![5; 48]))
            .unwrap();
    assert_eq!(
        hs384.verify::<()>(&hs_token, &validation()).map(drop),
        Err(Error::AlgorithmNotAllowed {
            expected: "HS384",
            found: "HS256".into()
        })
    );
}

// ---- header alg swapped -----------------------------------------------------------------

#[test]
fn swapped_alg_is_refused_before_crypto() {
    let key = es256();
    let token = signed(&key);
    for alg in [
        "ES384", "ES512", "EdDSA", "RS256", "PS256", "HS256", "es256", "ES256 ",
    ] {
        let swapped = with_header(&token, &format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
        assert_eq!(
            verify(key.verifying_key(), &swapped),
            Err(Error::AlgorithmNotAllowed {
                expected: "ES256",
                found: alg.into()
            })
        );
    }
    // RS256 <-> PS256 on the same RSA key.
    let rsa = SigningKey::generate(Algorithm::Rs256).unwrap();
    let swapped = with_header(&signed(&rsa), r#"{"alg":"PS256"}"#);
    assert_eq!(
        verify(rsa.verifying_key(), &swapped),
        Err(Error::AlgorithmNotAllowed {
            expected: "RS256",
            found: "PS256".into()
        })
    );
    // A hostile alg value is echoed cut short and sanitized.
    let hostile = format!("{}\n{}", "A".repeat(100), "B");
    let swapped = with_header(&token, &serde_json::json!({ "alg": hostile }).to_string());
    let Err(Error::AlgorithmNotAllowed { found, .. }) = verify(key.verifying_key(), &swapped)
    else {
        panic!("not refused")
    };
    assert!(
        found.len() <= token_jwt::MAX_ECHOED_LEN + 3 && !found.contains('\n'),
        "{found}"
    );
}

// ---- kid ------------------------------------------------------------------------------------

#[test]
fn kid_naming_a_missing_key_fails_fast() {
    let a = es256();
    let b = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let mut set = JwtVerifier::new(a.verifying_key().clone());
    set.insert(b.verifying_key().clone()).unwrap();
    let sign = raw_signer(&a);
    for kid in [
        "missing",
        "../../../etc/passwd",
        "'OR'1'='1",
        "https://evil.example/key",
    ] {
        let header = serde_json::json!({ "alg": "ES256", "kid": kid }).to_string();
        let token = forge(&header, &claims_json(), &*sign);
        assert_eq!(
            verify_set(&set, &token),
            Err(Error::Core(Core::UnknownKeyId)),
            "{kid}"
        );
    }
    // A kid that is no valid key id at all: bounded, visible ASCII.
    for kid in ["", "a b", "line\nbreak", "é", &"k".repeat(257)] {
        let header = serde_json::json!({ "alg": "ES256", "kid": kid }).to_string();
        let token = forge(&header, &claims_json(), &*sign);
        assert!(
            matches!(
                verify_set(&set, &token),
                Err(Error::Core(Core::InvalidKeyId(_)))
            ),
            "{kid:?}: {:?}",
            verify_set(&set, &token)
        );
    }
    // No kid, two keys: nothing to look up.
    let token = forge(r#"{"alg":"ES256"}"#, &claims_json(), &*sign);
    assert_eq!(verify_set(&set, &token), Err(Error::MissingKeyId));
    // The kid picks the key, and the key's algorithm must then match.
    let header = format!(r#"{{"alg":"ES256","kid":"{}"}}"#, b.key_id());
    let token = forge(&header, &claims_json(), &*sign);
    assert_eq!(
        verify_set(&set, &token),
        Err(Error::AlgorithmNotAllowed {
            expected: "EdDSA",
            found: "ES256".into()
        })
    );
    // With the right kid both verify.
    verify_set(&set, &signed(&a)).unwrap();
    verify_set(&set, &signed(&b)).unwrap();
}

// ---- jku / x5u / x5c / embedded jwk ------------------------------------------------------

/// The attacker signs with their own key and points the header at it in every way a
/// header can. None of it is read: the key comes from the verifier's own set.
#[test]
fn header_key_sources_are_never_used() {
    let ours = es256();
    let attacker = es256();
    let attacker_jwk: serde_json::Value = serde_json::from_str(&attacker.to_jwk()).unwrap();
    let set = JwtVerifier::new(ours.verifying_key().clone());
    let sign = raw_signer(&attacker);
    let cert = b64(b"not really a certificate");
    for kid in [ours.key_id(), attacker.key_id()] {
        for extra in [
            serde_json::json!({ "jku": "https://attacker.example/jwks.json" }),
            serde_json::json!({ "x5u": "https://attacker.example/cert.pem" }),
            serde_json::json!({ "jwk": attacker_jwk }),
            serde_json::json!({ "x5c": [cert] }),
            serde_json::json!({ "jku": "http://169.254.169.254/", "jwk": attacker_jwk, "x5c": [cert], "x5u": "file:///etc/passwd" }),
        ] {
            let mut header = extra.as_object().unwrap().clone();
            header.insert("alg".into(), "ES256".into());
            header.insert("kid".into(), kid.as_str().into());
            let token = forge(
                &serde_json::Value::Object(header).to_string(),
                &claims_json(),
                &*sign,
            );
            let expected = if kid == ours.key_id() {
                // Our key is looked up and the attacker's signature fails under it.
                Error::Core(Core::InvalidToken)
            } else {
                Error::Core(Core::UnknownKeyId)
            };
            assert_eq!(verify_set(&set, &token), Err(expected.clone()), "{extra}");
            // The single-key verifier does not consult kid: the signature decides.
            assert_eq!(
                verify(ours.verifying_key(), &token),
                Err(Error::Core(Core::InvalidToken))
            );
        }
    }
    // The same members on a token we signed change nothing: they are not read.
    let header = serde_json::json!({
        "alg": "ES256", "kid": ours.key_id().as_str(), "jku": "https://attacker.example/",
        "jwk": attacker_jwk, "x5u": "https://attacker.example/", "x5c": [cert],
    });
    let token = forge(&header.to_string(), &claims_json(), &*raw_signer(&ours));
    verify_set(&set, &token).unwrap();
}

// ---- crit ----------------------------------------------------------------------------------

#[test]
fn unknown_crit_is_refused() {
    let key = es256();
    let sign = raw_signer(&key);
    for (header, name) in [
        (r#"{"alg":"ES256","crit":["exp"],"exp":1}"#, "exp"),
        (r#"{"alg":"ES256","b64":false,"crit":["b64"]}"#, "b64"),
        (
            r#"{"alg":"ES256","crit":["http://example.com/must-understand"]}"#,
            "http://example.com/must-understand",
        ),
    ] {
        let token = forge(header, &claims_json(), &*sign);
        assert_eq!(
            verify(key.verifying_key(), &token),
            Err(Error::UnsupportedCritical(name.into()))
        );
    }
    let token = forge(r#"{"alg":"ES256","crit":[]}"#, &claims_json(), &*sign);
    assert!(matches!(
        verify(key.verifying_key(), &token),
        Err(Error::MalformedHeader(_))
    ));
}

/// A member whose value is `null` used to read as absent, so `"crit": null` verified.
/// Every null header member is refused, on single keys and key sets alike, before the
/// signature is checked.
#[test]
fn null_header_members_are_refused_not_read_as_absent() {
    let key = es256();
    let sign = raw_signer(&key);
    let set = JwtVerifier::new(key.verifying_key().clone());
    for header in [
        r#"{"alg":"ES256","crit":null}"#,
        r#"{"alg":"ES256","kid":null}"#,
        r#"{"alg":"ES256","typ":null}"#,
        r#"{"alg":"ES256","cty":null}"#,
        r#"{"alg":"ES256","b64":false,"crit":null}"#,
        r#"{"alg":"ES256","jku":null}"#,
    ] {
        let token = forge(header, &claims_json(), &*sign);
        for result in [
            verify(key.verifying_key(), &token),
            verify_set(&set, &token),
            token_jwt::dangerous_decode_header(&token).map(drop),
        ] {
            assert!(
                matches!(&result, Err(Error::MalformedHeader(m)) if m.contains("null")),
                "{header}: {result:?}"
            );
        }
    }
    // The same header without the null member verifies.
    let token = forge(r#"{"alg":"ES256"}"#, &claims_json(), &*sign);
    verify(key.verifying_key(), &token).unwrap();
}

/// A claims set that names a member twice used to verify with the last value winning
/// (a second parser in the chain may keep the first). Refused after authentication,
/// whatever the claim, on every key type and by the inspection decoder.
#[test]
fn repeated_claims_are_refused() {
    let key = es256();
    let sign = raw_signer(&key);
    let exp = NOW + 300;
    for (payload, name) in [
        (
            format!(r#"{{"iss":"{ISSUER}","aud":"api","exp":{exp},"sub":"q","sub":"z"}}"#),
            "sub",
        ),
        (
            format!(r#"{{"iss":"{ISSUER}","aud":"api","exp":{exp},"role":"user","role":"admin"}}"#),
            "role",
        ),
        (
            format!(r#"{{"iss":"{ISSUER}","aud":"api","exp":{exp},"x":{{"a":1,"a":2}}}}"#),
            "a",
        ),
    ] {
        let want = Err(Error::Core(Core::DuplicateMember(name.into())));
        let token = forge(r#"{"alg":"ES256"}"#, &payload, &*sign);
        assert_eq!(verify(key.verifying_key(), &token), want, "{payload}");
        assert_eq!(
            key.verifying_key()
                .verify::<serde_json::Map<String, serde_json::Value>>(&token, &validation())
                .map(drop),
            want,
            "{payload}"
        );
        assert_eq!(
            token_jwt::dangerous_decode_unverified::<()>(&token).map(drop),
            want,
            "{payload}"
        );
        // Under a bad signature it is only ever InvalidToken.
        let (input, _) = token.rsplit_once('.').unwrap();
        assert_eq!(
            verify(key.verifying_key(), &format!("{input}.{}", b64([1u8; 64]))),
            Err(Error::Core(Core::InvalidToken))
        );
        // HMAC, and a directly encrypted JWT.
        let hmac =
            HmacKey::dangerous_shared_secret(HmacAlgorithm::Hs256, SecretBytes::new(vec![3; 32]))
                .unwrap();
        let mac = josekit::jws::HS256.signer_from_bytes([3u8; 32]).unwrap();
        let token = forge(r#"{"alg":"HS256"}"#, &payload, &|i| mac.sign(i).unwrap());
        assert_eq!(
            hmac.verify::<()>(&token, &validation()).map(drop),
            want,
            "{payload}"
        );
    }
}

// ---- signature stripped, truncated, tampered -------------------------------------------------

#[test]
fn stripped_truncated_or_tampered_signatures_are_invalid() {
    for alg in Algorithm::SIGNING {
        let key = SigningKey::generate(alg).unwrap();
        let token = signed(&key);
        let (input, sig) = token.rsplit_once('.').unwrap();
        let invalid = Err(Error::Core(Core::InvalidToken));
        // Stripped.
        assert_eq!(
            verify(key.verifying_key(), &format!("{input}.")),
            invalid,
            "{alg}"
        );
        // Truncated.
        assert_eq!(
            verify(
                key.verifying_key(),
                &format!("{input}.{}", &sig[..sig.len() - 4])
            ),
            invalid,
            "{alg}"
        );
        assert_eq!(
            verify(
                key.verifying_key(),
                &format!("{input}.{}", &sig[..sig.len() / 2])
            ),
            invalid,
            "{alg}"
        );
        // Extended.
        assert_eq!(
            verify(key.verifying_key(), &format!("{input}.{sig}AAAA")),
            invalid,
            "{alg}"
        );
        // One bit flipped.
        let mut raw = unb64(sig);
        raw[0] ^= 1;
        assert_eq!(
            verify(key.verifying_key(), &format!("{input}.{}", b64(&raw))),
            invalid,
            "{alg}"
        );
        // Payload changed under the old signature.
        let other = claims().subject("admin");
        let body = b64(other.to_json::<token_core::NumericDate>().unwrap());
        let (header, _) = input.split_once('.').unwrap();
        assert_eq!(
            verify(key.verifying_key(), &format!("{header}.{body}.{sig}")),
            invalid,
            "{alg}"
        );
        // Another key's signature.
        let other_key = SigningKey::generate(alg).unwrap();
        let (_, other_sig) = signed(&other_key)
            .rsplit_once('.')
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .unwrap();
        assert_eq!(
            verify(key.verifying_key(), &format!("{input}.{other_sig}")),
            invalid,
            "{alg}"
        );
    }
    // ECDSA: r = s = 0 is no signature.
    let key = es256();
    let token = signed(&key);
    let (input, _) = token.rsplit_once('.').unwrap();
    assert_eq!(
        verify(key.verifying_key(), &format!("{input}.{}", b64([0u8; 64]))),
        Err(Error::Core(Core::InvalidToken))
    );
}

// ---- claims -------------------------------------------------------------------------------

#[test]
fn time_and_audience_and_issuer_claims_are_enforced() {
    let key = es256();
    let token = signed(&key);
    let public = key.verifying_key();
    let exp = Timestamp::from_unix_seconds(NOW + 300).unwrap();

    let late = validation().clock(at(NOW + 300 + 61));
    assert_eq!(
        public.verify::<()>(&token, &late).map(drop),
        Err(Error::Core(Core::Expired { exp }))
    );

    let nbf = Timestamp::from_unix_seconds(NOW + 3600).unwrap();
    let future = Claims::new(()).issuer(ISSUER).audience(AUDIENCE);
    let future = Claims {
        nbf: Some(nbf),
        exp: Some(Timestamp::from_unix_seconds(NOW + 7200).unwrap()),
        ..future
    };
    let t = sign_claims(&key, &future);
    assert_eq!(
        public.verify::<()>(&t, &validation()).map(drop),
        Err(Error::Core(Core::NotYetValid { nbf }))
    );

    let iat = Timestamp::from_unix_seconds(NOW + 3600).unwrap();
    let issued_later = Claims {
        iat: Some(iat),
        ..claims()
    };
    let t = sign_claims(&key, &issued_later);
    assert_eq!(
        public.verify::<()>(&t, &validation()).map(drop),
        Err(Error::Core(Core::IssuedInFuture { iat }))
    );

    let wrong_aud = validation().audience("another-service");
    assert_eq!(
        public.verify::<()>(&token, &wrong_aud).map(drop),
        Err(Error::Core(Core::WrongAudience))
    );
    let aud_list = Claims {
        aud: Some(["x", "y"].into_iter().collect()),
        ..claims()
    };
    let t = sign_claims(&key, &aud_list);
    assert_eq!(
        public.verify::<()>(&t, &validation()).map(drop),
        Err(Error::Core(Core::WrongAudience))
    );
    public
        .verify::<()>(&t, &validation().audience("y"))
        .unwrap();
    // The default validation expects no audience: a token minted for someone is refused.
    let default = Validation::new().issuer(ISSUER).clock(common::now());
    assert_eq!(
        public.verify::<()>(&token, &default).map(drop),
        Err(Error::Core(Core::WrongAudience))
    );

    let wrong_iss = validation().issuer("https://evil.example");
    assert_eq!(
        public.verify::<()>(&token, &wrong_iss).map(drop),
        Err(Error::Core(Core::WrongIssuer))
    );

    let no_exp = Claims {
        exp: None,
        ..claims()
    };
    let t = sign_claims(&key, &no_exp);
    assert_eq!(
        public.verify::<()>(&t, &validation()).map(drop),
        Err(Error::Core(Core::MissingClaim(RegisteredClaim::Exp)))
    );

    let too_long = validation().max_lifetime(Duration::from_secs(60));
    assert!(matches!(
        public.verify::<()>(&token, &too_long),
        Err(Error::Core(Core::LifetimeTooLong { .. }))
    ));
}

fn sign_claims(key: &SigningKey, claims: &Claims<()>) -> String {
    key.sign(claims).unwrap().expose_secret().to_owned()
}

#[test]
fn malformed_claims_are_errors_after_authentication_only() {
    let key = es256();
    let sign = raw_signer(&key);
    let header = r#"{"alg":"ES256"}"#;
    for (payload, claim) in [
        (r#"{"exp":"tomorrow","aud":"api"}"#, RegisteredClaim::Exp),
        (r#"{"exp":"1700000300"}"#, RegisteredClaim::Exp),
        (r#"{"exp":[1700000300.5]}"#, RegisteredClaim::Exp),
        (r#"{"exp":1700000300,"aud":5}"#, RegisteredClaim::Aud),
        (r#"{"exp":1700000300,"iss":null}"#, RegisteredClaim::Iss),
    ] {
        let token = forge(header, payload, &*sign);
        assert!(
            matches!(verify(key.verifying_key(), &token), Err(Error::Core(Core::MalformedClaim { claim: c, .. })) if c == claim),
            "{payload}: {:?}",
            verify(key.verifying_key(), &token)
        );
        // The same payload under a bad signature is only ever InvalidToken.
        let (input, _) = token.rsplit_once('.').unwrap();
        let bad = format!("{input}.{}", b64([1u8; 64]));
        assert_eq!(
            verify(key.verifying_key(), &bad),
            Err(Error::Core(Core::InvalidToken))
        );
    }
    let token = forge(header, "[1,2,3]", &*sign);
    assert!(matches!(
        verify(key.verifying_key(), &token),
        Err(Error::Core(Core::MalformedClaims(_)))
    ));
}

// ---- typ and cty ---------------------------------------------------------------------------

#[test]
fn the_validation_can_demand_a_token_type() {
    let key = es256();
    let access = key.sign_as(&TokenType::AccessToken, &claims()).unwrap();
    let wants_access = validation().token_type("at+jwt");
    key.verifying_key()
        .verify::<()>(access.expose_secret(), &wants_access)
        .unwrap();
    assert_eq!(
        key.verifying_key()
            .verify::<()>(&signed(&key), &wants_access)
            .map(drop),
        Err(Error::TokenTypeMismatch {
            expected: "at+jwt".into(),
            found: Some("JWT".into())
        })
    );
    // A media type with `application/` and another case names the same type.
    let spelled = validation().token_type("application/AT+JWT");
    key.verifying_key()
        .verify::<()>(access.expose_secret(), &spelled)
        .unwrap();
}

#[test]
fn explicit_types_are_not_confused() {
    let key = es256();
    let access = key.sign_as(&TokenType::AccessToken, &claims()).unwrap();
    let access = access.expose_secret();
    // An access token is not a plain JWT...
    assert_eq!(
        verify(key.verifying_key(), access),
        Err(Error::TokenTypeMismatch {
            expected: "JWT".into(),
            found: Some("at+jwt".into())
        })
    );
    // ...and a resource server demanding access tokens refuses everything else.
    let rs = JwtVerifier::new(key.verifying_key().clone()).expect_type(TokenType::AccessToken);
    verify_set(&rs, access).unwrap();
    assert_eq!(
        verify_set(&rs, &signed(&key)),
        Err(Error::TokenTypeMismatch {
            expected: "at+jwt".into(),
            found: Some("JWT".into())
        })
    );
    let sign = raw_signer(&key);
    let untyped = forge(r#"{"alg":"ES256"}"#, &claims_json(), &*sign);
    assert_eq!(
        verify_set(&rs, &untyped),
        Err(Error::TokenTypeMismatch {
            expected: "at+jwt".into(),
            found: None
        })
    );
    let dpop = forge(
        r#"{"alg":"ES256","typ":"dpop+jwt"}"#,
        &claims_json(),
        &*sign,
    );
    assert!(matches!(
        verify(key.verifying_key(), &dpop),
        Err(Error::TokenTypeMismatch { .. })
    ));
    let media = forge(
        r#"{"alg":"ES256","typ":"application/at+jwt"}"#,
        &claims_json(),
        &*sign,
    );
    verify_set(&rs, &media).unwrap();
    // A JWS whose cty says its payload is a nested JWT is not a claims set.
    let nested = forge(r#"{"alg":"ES256","cty":"JWT"}"#, &claims_json(), &*sign);
    assert_eq!(
        verify(key.verifying_key(), &nested),
        Err(Error::ContentTypeMismatch {
            expected: None,
            found: Some("JWT".into())
        })
    );
}

// ---- wrong format ----------------------------------------------------------------------------

#[test]
fn jwe_given_to_a_jws_verifier_and_the_reverse() {
    let key = es256();
    let recipient = DecryptingKey::generate(EcdhCurve::P256).unwrap();
    let jwe = recipient
        .encrypting_key()
        .encrypt_signed(&key, &claims())
        .unwrap();
    assert_eq!(
        verify(key.verifying_key(), jwe.expose_secret()),
        Err(Error::UnexpectedFormat {
            expected: TokenFormat::Jws,
            found: TokenFormat::Jwe
        })
    );
    let jws = signed(&key);
    assert_eq!(
        recipient
            .decrypt_signed::<(), _>(&jws, key.verifying_key(), &validation())
            .map(drop),
        Err(Error::UnexpectedFormat {
            expected: TokenFormat::Jwe,
            found: TokenFormat::Jws
        })
    );
    let direct = DirectKey::generate().unwrap();
    assert_eq!(
        direct.decrypt::<()>(&jws, &validation()).map(drop),
        Err(Error::UnexpectedFormat {
            expected: TokenFormat::Jwe,
            found: TokenFormat::Jws
        })
    );
    let paseto = "v4.public.eyJzdWIiOiJhIn0";
    assert_eq!(
        verify(key.verifying_key(), paseto),
        Err(Error::UnexpectedFormat {
            expected: TokenFormat::Jws,
            found: TokenFormat::Paseto {
                version: PasetoVersion::V4,
                purpose: PasetoPurpose::Public,
                has_footer: false
            }
        })
    );
    assert_eq!(
        verify(key.verifying_key(), r#"{"payload":"e30","signatures":[]}"#),
        Err(Error::JsonSerialization)
    );
}

// ---- size bounds -------------------------------------------------------------------------------

#[test]
fn oversized_tokens_and_headers_are_refused_before_parsing() {
    let key = es256();
    // Over the total bound: refused on length alone, even though it is not valid.
    let huge = format!("{}.{}.{}", "e".repeat(10), "A".repeat(MAX_TOKEN_LEN), "A");
    assert_eq!(
        verify(key.verifying_key(), &huge),
        Err(Error::Core(Core::TokenTooLong {
            len: huge.len(),
            max: MAX_TOKEN_LEN
        }))
    );
    // A payload that takes the token over the bound, correctly signed.
    let big = serde_json::json!({ "exp": NOW + 60, "pad": "x".repeat(MAX_TOKEN_LEN) }).to_string();
    let token = forge(r#"{"alg":"ES256"}"#, &big, &*raw_signer(&key));
    assert!(matches!(
        verify(key.verifying_key(), &token),
        Err(Error::Core(Core::TokenTooLong { .. }))
    ));
    // A header over its own bound, inside the total bound: refused before decoding.
    let header = format!(
        r#"{{"alg":"ES256","pad":"{}"}}"#,
        "x".repeat(MAX_HEADER_LEN)
    );
    let header_b64 = b64(&header);
    let token = format!("{header_b64}.{}.{}", b64(claims_json()), b64([0u8; 64]));
    assert_eq!(
        verify(key.verifying_key(), &token),
        Err(Error::HeaderTooLarge {
            len: header_b64.len(),
            max: MAX_HEADER_LEN
        })
    );
    // Deeply nested JSON in an ignored header member is refused at the header's depth
    // bound, measured before anything is parsed, before any crypto.
    let deep = format!(
        r#"{{"alg":"ES256","x":{}1{}}}"#,
        "[".repeat(3000),
        "]".repeat(3000)
    );
    let token = format!("{}.{}.{}", b64(&deep), b64(claims_json()), b64([0u8; 64]));
    assert_eq!(
        verify(key.verifying_key(), &token),
        Err(Error::HeaderTooDeep {
            max: token_jwt::MAX_HEADER_DEPTH
        })
    );
    // Signing refuses to mint a token no verifier would accept.
    let big_claims = Claims::new(serde_json::json!({ "pad": "x".repeat(MAX_TOKEN_LEN) }));
    assert!(matches!(
        key.sign(&big_claims),
        Err(Error::Core(Core::TokenTooLong { .. }))
    ));
}

// ---- malformed headers ---------------------------------------------------------------------------

#[test]
fn ambiguous_headers_are_refused() {
    let key = es256();
    let sign = raw_signer(&key);
    for header in [
        r#"{"alg":"ES256","alg":"none"}"#,
        r#"{"alg":"none","alg":"ES256"}"#,
        r#"{"alg":["ES256"]}"#,
        r#"{"alg":"ES256","kid":{"$ne":null}}"#,
        r#"{"alg":"ES256","typ":7}"#,
    ] {
        let token = forge(header, &claims_json(), &*sign);
        assert!(
            matches!(
                verify(key.verifying_key(), &token),
                Err(Error::MalformedHeader(_))
            ),
            "{header}: {:?}",
            verify(key.verifying_key(), &token)
        );
    }
    // A header that is not a JSON object is not even recognized as a JWS.
    let token = forge(r#"["ES256"]"#, &claims_json(), &*sign);
    assert_eq!(
        verify(key.verifying_key(), &token),
        Err(Error::Core(Core::UnrecognizedFormat(
            "not a JWS compact serialization"
        )))
    );
    // Padding or the standard alphabet in any segment is not base64url.
    let token = signed(&key);
    let (h, rest) = token.split_once('.').unwrap();
    assert!(matches!(
        verify(key.verifying_key(), &format!("{h}==.{rest}")),
        Err(Error::Core(Core::UnrecognizedFormat(_)))
    ));
    let (input, sig) = token.rsplit_once('.').unwrap();
    assert!(verify(key.verifying_key(), &format!("{input}.{sig}=")).is_err());
    // Detached content.
    let (h, _) = input.split_once('.').unwrap();
    assert_eq!(
        verify(key.verifying_key(), &format!("{h}..{sig}")),
        Err(Error::MalformedToken(
            "empty payload (detached content is not supported)"
        ))
    );
}

/// A JWS header nested deeper than `MAX_HEADER_DEPTH`, or carrying a JWE member (`enc`,
/// `zip`), used to verify when correctly signed (nesting was refused only at serde's
/// recursion limit, 128). One rule in the header parser, applied by single keys, key
/// sets, HMAC keys and the inspection decoders alike, before any crypto.
#[test]
fn deep_headers_and_jwe_members_in_a_jws_are_refused() {
    let key = es256();
    let sign = raw_signer(&key);
    let set = JwtVerifier::new(key.verifying_key().clone());
    let hmac =
        HmacKey::dangerous_shared_secret(HmacAlgorithm::Hs256, SecretBytes::new(vec![3; 32]))
            .unwrap();
    let mac = josekit::jws::HS256.signer_from_bytes([3u8; 32]).unwrap();
    let nested = |depth: usize| format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    let cases = [
        (
            format!(r#""x":{}"#, nested(token_jwt::MAX_HEADER_DEPTH)),
            Error::HeaderTooDeep {
                max: token_jwt::MAX_HEADER_DEPTH,
            },
        ),
        (
            format!(r#""x":{}"#, nested(100)),
            Error::HeaderTooDeep {
                max: token_jwt::MAX_HEADER_DEPTH,
            },
        ),
        (
            r#""enc":"A256GCM""#.to_owned(),
            Error::JwsJweConfusion("enc"),
        ),
        (r#""zip":"DEF""#.to_owned(), Error::JwsJweConfusion("zip")),
    ];
    for (member, want) in cases {
        let token = forge(
            &format!(r#"{{"alg":"ES256",{member}}}"#),
            &claims_json(),
            &*sign,
        );
        assert_eq!(
            verify(key.verifying_key(), &token),
            Err(want.clone()),
            "{member}"
        );
        assert_eq!(verify_set(&set, &token), Err(want.clone()), "{member}");
        assert_eq!(
            token_jwt::dangerous_decode_header(&token).map(drop),
            Err(want.clone())
        );
        assert_eq!(
            token_jwt::dangerous_decode_unverified::<()>(&token).map(drop),
            Err(want.clone())
        );
        let token = forge(
            &format!(r#"{{"alg":"HS256",{member}}}"#),
            &claims_json(),
            &|i| mac.sign(i).unwrap(),
        );
        assert_eq!(
            hmac.verify::<()>(&token, &validation()).map(drop),
            Err(want),
            "{member}"
        );
    }
    // Within the bound, and without JWE members, the same token verifies.
    let token = forge(
        &format!(r#"{{"alg":"ES256","x":{}}}"#, nested(3)),
        &claims_json(),
        &*sign,
    );
    verify(key.verifying_key(), &token).unwrap();
}

// ---- JWE-specific attacks ---------------------------------------------------------------------------

/// A JWE to `recipient` built with josekit directly, with any header.
fn raw_jwe(
    recipient: &DecryptingKey,
    header: &josekit::jwe::JweHeader,
    payload: &[u8],
    zip: bool,
) -> String {
    let jwk = josekit::jwk::Jwk::from_bytes(recipient.encrypting_key().to_jwk()).unwrap();
    let encrypter = josekit::jwe::ECDH_ES_A256KW
        .encrypter_from_jwk(&jwk)
        .unwrap();
    let mut header = header.clone();
    if zip {
        header.set_compression("DEF");
    }
    josekit::jwe::serialize_compact(payload, &header, &encrypter).unwrap()
}

#[test]
fn refused_jwe_algorithms_encodings_and_compression() {
    let signer = es256();
    let recipient = DecryptingKey::generate(EcdhCurve::P256).unwrap();
    let decrypt = |t: &str| {
        recipient
            .decrypt_signed::<(), _>(t, signer.verifying_key(), &validation())
            .map(drop)
    };
    let inner = signed(&signer);
    let mut header = josekit::jwe::JweHeader::new();
    header.set_content_encryption("A256GCM");
    header.set_content_type("JWT");

    // Compression: refused outright, even when everything else is right.
    let zipped = raw_jwe(&recipient, &header, inner.as_bytes(), true);
    assert_eq!(decrypt(&zipped), Err(Error::CompressionNotAllowed));

    // Another content encryption.
    for enc in ["A128GCM", "A128CBC-HS256", "A256CBC-HS512"] {
        let mut h = header.clone();
        h.set_content_encryption(enc);
        let token = raw_jwe(&recipient, &h, inner.as_bytes(), false);
        assert_eq!(
            decrypt(&token),
            Err(Error::EncryptionNotAllowed {
                expected: "A256GCM",
                found: enc.into()
            })
        );
    }

    // RSA1_5 (a decryption oracle) and other key management algorithms.
    let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
    let rsa_pem = openssl::pkey::PKey::from_rsa(rsa)
        .unwrap()
        .public_key_to_pem()
        .unwrap();
    let mut h = josekit::jwe::JweHeader::new();
    h.set_content_encryption("A256GCM");
    #[allow(deprecated)]
    let rsa1_5 = josekit::jwe::serialize_compact(
        inner.as_bytes(),
        &h,
        &josekit::jwe::RSA1_5.encrypter_from_pem(&rsa_pem).unwrap(),
    )
    .unwrap();
    assert_eq!(
        decrypt(&rsa1_5),
        Err(Error::AlgorithmNotAllowed {
            expected: "ECDH-ES+A256KW",
            found: "RSA1_5".into()
        })
    );
    let direct = DirectKey::generate().unwrap();
    let dir_token = direct.encrypt_signed(&signer, &claims()).unwrap();
    assert_eq!(
        decrypt(dir_token.expose_secret()),
        Err(Error::AlgorithmNotAllowed {
            expected: "ECDH-ES+A256KW",
            found: "dir".into()
        })
    );
    let ecdh_token = recipient
        .encrypting_key()
        .encrypt_signed(&signer, &claims())
        .unwrap();
    assert_eq!(
        direct
            .decrypt_signed::<(), _>(
                ecdh_token.expose_secret(),
                signer.verifying_key(),
                &validation()
            )
            .map(drop),
        Err(Error::AlgorithmNotAllowed {
            expected: "dir",
            found: "ECDH-ES+A256KW".into()
        })
    );
}

#[test]
fn tampered_or_misdirected_jwe_is_invalid() {
    let signer = es256();
    let recipient = DecryptingKey::generate(EcdhCurve::P256).unwrap();
    let token = recipient
        .encrypting_key()
        .encrypt_signed(&signer, &claims())
        .unwrap();
    let token = token.expose_secret();
    let decrypt = |key: &DecryptingKey, t: &str| {
        key.decrypt_signed::<(), _>(t, signer.verifying_key(), &validation())
            .map(drop)
    };
    decrypt(&recipient, token).unwrap();
    let invalid = Err(Error::Core(Core::InvalidToken));
    let parts: Vec<&str> = token.split('.').collect();
    let join = |i: usize, v: &str| {
        let mut p = parts.clone();
        p[i] = v;
        p.join(".")
    };
    // Another recipient's key.
    let other = DecryptingKey::generate(EcdhCurve::P256).unwrap();
    assert_eq!(decrypt(&other, token), invalid);
    // A flipped bit in the wrapped key, the ciphertext or the tag.
    for i in [1, 3, 4] {
        let mut raw = unb64(parts[i]);
        raw[0] ^= 1;
        assert_eq!(
            decrypt(&recipient, &join(i, &b64(&raw))),
            invalid,
            "segment {i}"
        );
    }
    // A truncated tag (GCM with short tags is forgeable).
    let tag = unb64(parts[4]);
    assert_eq!(decrypt(&recipient, &join(4, &b64(&tag[..12]))), invalid);
    // The header is authenticated data: changing it breaks the tag.
    let header: serde_json::Value = serde_json::from_slice(&unb64(parts[0])).unwrap();
    let mut changed = header.as_object().unwrap().clone();
    changed.insert("kid".into(), "someone-else".into());
    assert_eq!(
        decrypt(
            &recipient,
            &join(0, &b64(serde_json::Value::Object(changed).to_string()))
        ),
        invalid
    );
    // An ephemeral key that is not on the curve (invalid-curve attack).
    let mut off_curve = header.as_object().unwrap().clone();
    let epk = off_curve.get_mut("epk").unwrap().as_object_mut().unwrap();
    let mut y = unb64(epk["y"].as_str().unwrap());
    y[31] ^= 1;
    epk.insert("y".into(), b64(&y).into());
    assert_eq!(
        decrypt(
            &recipient,
            &join(0, &b64(serde_json::Value::Object(off_curve).to_string()))
        ),
        invalid
    );
    // Structurally wrong IV or wrapped key are format errors.
    assert_eq!(
        decrypt(&recipient, &join(2, &b64([0u8; 16]))),
        Err(Error::MalformedToken("the A256GCM IV is not 12 bytes"))
    );
    assert_eq!(
        decrypt(&recipient, &join(1, "")),
        Err(Error::MalformedToken("the wrapped key is not 40 bytes"))
    );
}

#[test]
fn nested_jwe_checks_the_inner_token_too() {
    let signer = es256();
    let stranger = es256();
    let recipient = DecryptingKey::generate(EcdhCurve::X25519).unwrap();
    let decrypt = |t: &str| {
        recipient
            .decrypt_signed::<(), _>(t, signer.verifying_key(), &validation())
            .map(drop)
    };
    // Signed by someone else: anyone can encrypt to a public key, so the inner
    // signature is what makes the token authentic.
    let token = recipient
        .encrypting_key()
        .encrypt_signed(&stranger, &claims())
        .unwrap();
    assert_eq!(
        decrypt(token.expose_secret()),
        Err(Error::Core(Core::InvalidToken))
    );
    // An unsigned inner token.
    let unsigned = format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(claims_json()));
    let mut h = josekit::jwe::JweHeader::new();
    h.set_content_encryption("A256GCM");
    h.set_content_type("JWT");
    let token = raw_jwe(&recipient, &h, unsigned.as_bytes(), false);
    assert_eq!(decrypt(&token), Err(Error::UnsecuredJwt));
    // No cty: not declared as nested.
    let mut h = josekit::jwe::JweHeader::new();
    h.set_content_encryption("A256GCM");
    let token = raw_jwe(&recipient, &h, signed(&signer).as_bytes(), false);
    assert_eq!(
        decrypt(&token),
        Err(Error::ContentTypeMismatch {
            expected: Some("JWT"),
            found: None
        })
    );
    // Plain claims encrypted to a public key never reach the verified API.
    let token = raw_jwe(&recipient, &h, claims_json().as_bytes(), false);
    assert!(matches!(
        decrypt(&token),
        Err(Error::ContentTypeMismatch { .. })
    ));
    // A JWE nested in a JWE is not a signed JWT.
    let mut h = josekit::jwe::JweHeader::new();
    h.set_content_encryption("A256GCM");
    h.set_content_type("JWT");
    let inner = recipient
        .encrypting_key()
        .encrypt_signed(&signer, &claims())
        .unwrap();
    let token = raw_jwe(&recipient, &h, inner.expose_secret().as_bytes(), false);
    assert_eq!(
        decrypt(&token),
        Err(Error::UnexpectedFormat {
            expected: TokenFormat::Jws,
            found: TokenFormat::Jwe
        })
    );
    // And the inner claims are validated.
    let late = validation().clock(at(NOW + 3600));
    let token = recipient
        .encrypting_key()
        .encrypt_signed(&signer, &claims())
        .unwrap();
    assert!(matches!(
        recipient.decrypt_signed::<(), _>(token.expose_secret(), signer.verifying_key(), &late),
        Err(Error::Core(Core::Expired { .. }))
    ));
    // A direct key refuses nested tokens on its plain path, and plain ones on its nested path.
    let direct = DirectKey::generate().unwrap();
    let nested = direct.encrypt_signed(&signer, &claims()).unwrap();
    assert_eq!(
        direct
            .decrypt::<()>(nested.expose_secret(), &validation())
            .map(drop),
        Err(Error::ContentTypeMismatch {
            expected: None,
            found: Some("JWT".into())
        })
    );
    let plain = direct.encrypt(&claims()).unwrap();
    assert_eq!(
        direct
            .decrypt_signed::<(), _>(plain.expose_secret(), signer.verifying_key(), &validation())
            .map(drop),
        Err(Error::ContentTypeMismatch {
            expected: Some("JWT"),
            found: None
        })
    );
}

#[test]
fn small_order_x25519_ephemeral_keys_are_invalid() {
    let signer = es256();
    let recipient = DecryptingKey::generate(EcdhCurve::X25519).unwrap();
    let token = recipient
        .encrypting_key()
        .encrypt_signed(&signer, &claims())
        .unwrap();
    let parts: Vec<&str> = token.expose_secret().split('.').collect();
    let header: serde_json::Value = serde_json::from_slice(&unb64(parts[0])).unwrap();
    // Low-order points give an all-zero shared secret, which OpenSSL refuses.
    let mut one = [0u8; 32];
    one[0] = 1;
    for x in [[0u8; 32], one] {
        let mut h = header.clone();
        h["epk"]["x"] = b64(x).into();
        let mut p = parts.clone();
        let encoded = b64(h.to_string());
        p[0] = &encoded;
        assert_eq!(
            recipient
                .decrypt_signed::<(), _>(&p.join("."), signer.verifying_key(), &validation())
                .map(drop),
            Err(Error::Core(Core::InvalidToken))
        );
    }
}

// ---- rotation ----------------------------------------------------------------------------------------

#[test]
fn retired_keys_stop_verifying() {
    let first = es256();
    let first_id = first.key_id().clone();
    let mut keys = SigningKeySet::new(first);
    let old = { keys.sign(&claims()).unwrap().expose_secret().to_owned() };
    keys.rotate_to(SigningKey::generate(Algorithm::EdDsa).unwrap())
        .unwrap();
    let verifier = keys.verifier();
    verify_set(&verifier, &old).unwrap();
    assert_eq!(
        keys.retire(keys.key_id().clone().as_str()).map(drop),
        Err(Error::Core(Core::CannotRemoveCurrentKey))
    );
    keys.retire(first_id.as_str()).unwrap();
    assert_eq!(
        verify_set(&keys.verifier(), &old),
        Err(Error::Core(Core::UnknownKeyId))
    );
    let again = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_key_id(KeyId::new("dup").unwrap());
    keys.rotate_to(again).unwrap();
    let dup = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_key_id(KeyId::new("dup").unwrap());
    assert_eq!(
        keys.rotate_to(dup),
        Err(Error::Core(Core::DuplicateKeyId("dup".into())))
    );
}
