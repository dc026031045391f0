//! The official v2 vectors, verify/decrypt only, behind the `legacy-v2` feature.
#![cfg(feature = "legacy-v2")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::Value;
use token_paseto::Error;
use token_paseto::legacy::{V2LocalDecrypter, V2PublicVerifier};

#[test]
fn v2_vectors() {
    let v: Value = serde_json::from_str(include_str!("vectors/paseto/v2.json")).unwrap();
    let cases = v["tests"].as_array().unwrap();
    assert_eq!(cases.len(), 15);
    let mut fails = 0;
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let token = case["token"].as_str().unwrap();
        let footer = case["footer"].as_str().unwrap().as_bytes();
        let result = if let Some(key) = case["key"].as_str() {
            V2LocalDecrypter::from_bytes(&hex::decode(key).unwrap())
                .unwrap()
                .decrypt_raw(token, Some(footer))
        } else {
            V2PublicVerifier::from_bytes(
                &hex::decode(case["public-key"].as_str().unwrap()).unwrap(),
            )
            .unwrap()
            .verify_raw(token, Some(footer))
        };
        if case["expect-fail"].as_bool().unwrap() {
            fails += 1;
            let err = result.expect_err(name);
            assert!(
                matches!(
                    err,
                    Error::WrongPurpose { .. }
                        | Error::WrongVersion { .. }
                        | Error::Malformed(_)
                        | Error::Core(token_core::Error::InvalidToken)
                ),
                "{name}: {err:?}"
            );
        } else {
            assert_eq!(result.unwrap(), case["payload"].as_str().unwrap(), "{name}");
        }
    }
    assert_eq!(fails, 3);
}

/// The claim-checking v2 verifiers read the footer with the rules of every other
/// verifier (they used to check only its length); raw verification compares bytes.
#[test]
fn v2_footers_are_read_like_every_other_footer() {
    use pasetors::keys::{AsymmetricKeyPair, Generate, SymmetricKey};
    use pasetors::version2::{LocalToken, PublicToken, V2};
    let v = token_core::Validation::new().allow_non_expiring_tokens();
    let pair = AsymmetricKeyPair::<V2>::generate().unwrap();
    let verifier = V2PublicVerifier::from_bytes(pair.public.as_bytes()).unwrap();
    let local = SymmetricKey::<V2>::generate().unwrap();
    let decrypter = V2LocalDecrypter::from_bytes(local.as_bytes()).unwrap();
    for footer in [&br#"{"a":{"b":{"c":1}}}"#[..], b" [[[1]]]", br#"{"kid":1}"#] {
        let t = PublicToken::sign(&pair.secret, b"{}", Some(footer)).unwrap();
        assert!(matches!(
            verifier.verify::<Value>(&t, None, &v),
            Err(Error::InvalidFooter(_))
        ));
        verifier.verify_raw(&t, Some(footer)).unwrap();
        let t = LocalToken::encrypt(&local, b"{}", Some(footer)).unwrap();
        assert!(matches!(
            decrypter.decrypt::<Value>(&t, None, &v),
            Err(Error::InvalidFooter(_))
        ));
    }
    let t = PublicToken::sign(&pair.secret, b"{}", Some(b"opaque")).unwrap();
    verifier.verify::<Value>(&t, None, &v).unwrap();
}
