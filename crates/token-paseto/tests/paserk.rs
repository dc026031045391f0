//! The official PASERK vectors for plain keys and key ids (tests/vectors/paserk,
//! unchanged), every case including the expect-fail ones.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use secrecy::ExposeSecret;
use serde_json::Value;
use token_paseto::paserk::raw;
use token_paseto::paserk::{KeyKind, PaserkVersion};
use token_paseto::{Error, LocalKey, PublicKey, SecretKey, V3, V4};

fn cases(json: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(json).unwrap();
    v["tests"].as_array().unwrap().clone()
}

fn hex_of(case: &Value, key: &str) -> Option<Vec<u8>> {
    case[key].as_str().map(|s| hex::decode(s).unwrap())
}

/// `k?.local/public/secret`: encode, decode, and the expect-fail cases.
fn plain(json: &str, version: PaserkVersion, kind: KeyKind, total: usize) {
    let cases = cases(json);
    assert_eq!(cases.len(), total);
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let key = hex_of(case, "key");
        let paserk = case["paserk"].as_str();
        if case["expect-fail"].as_bool().unwrap() {
            if let Some(p) = paserk {
                assert!(
                    matches!(raw::decode(version, kind, p), Err(Error::InvalidPaserk(_))),
                    "{name}: decoded"
                );
            }
            if let Some(k) = key {
                assert!(
                    matches!(raw::encode(version, kind, &k), Err(Error::InvalidKey(_))),
                    "{name}: encoded"
                );
            }
            assert!(
                paserk.is_some() || case["key"].is_string(),
                "{name}: nothing checked"
            );
        } else {
            let (key, paserk) = (key.unwrap(), paserk.unwrap());
            assert_eq!(raw::encode(version, kind, &key).unwrap(), paserk, "{name}");
            assert_eq!(*raw::decode(version, kind, paserk).unwrap(), key, "{name}");
        }
    }
}

#[test]
fn k4_plain_keys() {
    plain(
        include_str!("vectors/paserk/k4.local.json"),
        PaserkVersion::K4,
        KeyKind::Local,
        5,
    );
    plain(
        include_str!("vectors/paserk/k4.public.json"),
        PaserkVersion::K4,
        KeyKind::Public,
        4,
    );
    plain(
        include_str!("vectors/paserk/k4.secret.json"),
        PaserkVersion::K4,
        KeyKind::Secret,
        5,
    );
}

#[test]
fn k3_plain_keys() {
    plain(
        include_str!("vectors/paserk/k3.local.json"),
        PaserkVersion::K3,
        KeyKind::Local,
        5,
    );
    plain(
        include_str!("vectors/paserk/k3.public.json"),
        PaserkVersion::K3,
        KeyKind::Public,
        3,
    );
    plain(
        include_str!("vectors/paserk/k3.secret.json"),
        PaserkVersion::K3,
        KeyKind::Secret,
        5,
    );
}

/// `k?.lid/pid/sid`.
fn ids(json: &str, version: PaserkVersion, kind: KeyKind, total: usize) {
    let cases = cases(json);
    assert_eq!(cases.len(), total);
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let key = hex_of(case, "key").unwrap();
        let got = raw::id_of_bytes(version, kind, &key);
        if case["expect-fail"].as_bool().unwrap() {
            assert!(matches!(got, Err(Error::InvalidKey(_))), "{name}: {got:?}");
        } else {
            assert_eq!(got.unwrap(), case["paserk"].as_str().unwrap(), "{name}");
        }
    }
}

#[test]
fn k4_ids() {
    ids(
        include_str!("vectors/paserk/k4.lid.json"),
        PaserkVersion::K4,
        KeyKind::Local,
        4,
    );
    ids(
        include_str!("vectors/paserk/k4.pid.json"),
        PaserkVersion::K4,
        KeyKind::Public,
        5,
    );
    ids(
        include_str!("vectors/paserk/k4.sid.json"),
        PaserkVersion::K4,
        KeyKind::Secret,
        4,
    );
}

#[test]
fn k3_ids() {
    ids(
        include_str!("vectors/paserk/k3.lid.json"),
        PaserkVersion::K3,
        KeyKind::Local,
        4,
    );
    ids(
        include_str!("vectors/paserk/k3.pid.json"),
        PaserkVersion::K3,
        KeyKind::Public,
        4,
    );
    ids(
        include_str!("vectors/paserk/k3.sid.json"),
        PaserkVersion::K3,
        KeyKind::Secret,
        4,
    );
}

/// A public key has one encoding and prime order, whatever it arrives as. A
/// small-order Ed25519 point was accepted as a `k4.public` (while an OKP JWK refuses
/// it), and a `k3.public` with the SEC1 prefix `0x05` was accepted and given the same
/// `k3.pid` as the compressed form: two strings, one id.
#[test]
fn public_keys_have_one_encoding_and_prime_order() {
    use curve25519_dalek::constants::EIGHT_TORSION;
    use curve25519_dalek::edwards::CompressedEdwardsY;
    let v4 = |bytes: &[u8]| raw::encode(PaserkVersion::K4, KeyKind::Public, bytes).unwrap();
    let mut identity = [0u8; 32];
    identity[0] = 1;
    // y = p + 1: the identity again, not canonically encoded.
    let mut non_canonical = [0xffu8; 32];
    non_canonical[0] = 0xee;
    non_canonical[31] = 0x7f;
    let legit = SecretKey::<V4>::generate().unwrap();
    let point = CompressedEdwardsY(legit.public_key().to_bytes().try_into().unwrap())
        .decompress()
        .unwrap();
    let mixed = (point + EIGHT_TORSION[1]).compress().to_bytes();
    for (bytes, why) in [
        (identity, "Ed25519 public key not of prime order"),
        ([0u8; 32], "Ed25519 public key not of prime order"),
        (
            EIGHT_TORSION[1].compress().to_bytes(),
            "Ed25519 public key not of prime order",
        ),
        (mixed, "Ed25519 public key not of prime order"),
        (non_canonical, "non-canonical Ed25519 public key"),
    ] {
        assert!(
            matches!(PublicKey::<V4>::from_paserk(&v4(&bytes)), Err(Error::InvalidKey(w)) if w == why),
            "{bytes:?}"
        );
        assert!(matches!(
            PublicKey::<V4>::from_bytes(&bytes),
            Err(Error::InvalidKey(_))
        ));
    }
    let good = legit.public_key().to_paserk();
    assert_eq!(
        PublicKey::<V4>::from_paserk(&good).unwrap().to_paserk(),
        good
    );

    // k3: only the compressed form (0x02 / 0x03) of a point on the curve.
    let key = SecretKey::<V3>::generate().unwrap();
    let compressed = key.public_key().to_bytes();
    let v3 = |bytes: &[u8]| raw::encode(PaserkVersion::K3, KeyKind::Public, bytes).unwrap();
    for prefix in [0x00u8, 0x01, 0x04, 0x05, 0x06, 0x07, 0xff] {
        let mut other = compressed.clone();
        other[0] = prefix;
        assert!(
            matches!(
                PublicKey::<V3>::from_paserk(&v3(&other)),
                Err(Error::InvalidKey(_))
            ),
            "prefix {prefix:#04x}"
        );
    }
    let mut flipped = compressed.clone();
    flipped[0] ^= 1; // the other point with this x: another key, another id
    let other = PublicKey::<V3>::from_paserk(&v3(&flipped)).unwrap();
    assert_ne!(other.id(), key.public_key().id());
    let same = PublicKey::<V3>::from_paserk(&v3(&compressed)).unwrap();
    assert_eq!(same.id(), key.public_key().id());
}

#[test]
fn typed_keys_round_trip_through_paserk_and_carry_their_ids() {
    let local = LocalKey::<V4>::generate().unwrap();
    let again = LocalKey::<V4>::from_paserk(local.to_paserk().expose_secret()).unwrap();
    assert_eq!(again.id(), local.id());
    assert!(local.id().as_str().starts_with("k4.lid."));

    let secret = SecretKey::<V3>::generate().unwrap();
    let again = SecretKey::<V3>::from_paserk(secret.to_paserk().expose_secret()).unwrap();
    assert_eq!(again.public_key().id(), secret.public_key().id());
    assert!(secret.id().as_str().starts_with("k3.sid."));
    assert!(secret.public_key().id().as_str().starts_with("k3.pid."));
    let public = PublicKey::<V3>::from_paserk(&secret.public_key().to_paserk()).unwrap();
    assert_eq!(public.id(), secret.public_key().id());

    // Typed import checks more than the length: a v4 secret key whose second half is
    // not its seed's public key, and a v3 point off the curve, are refused.
    let mut bad = SecretKey::<V4>::generate()
        .unwrap()
        .expose_secret_bytes()
        .to_vec();
    bad[63] ^= 1;
    assert!(matches!(
        SecretKey::<V4>::from_bytes(&bad),
        Err(Error::InvalidKey(_))
    ));
    let off_curve = raw::encode(PaserkVersion::K3, KeyKind::Public, &[2u8; 49]).unwrap();
    assert!(matches!(
        PublicKey::<V3>::from_paserk(&off_curve),
        Err(Error::InvalidKey(_))
    ));
    // Version and type are part of the string.
    assert!(matches!(
        LocalKey::<V3>::from_paserk(local.to_paserk().expose_secret()),
        Err(Error::InvalidPaserk(_))
    ));
    assert!(matches!(
        PublicKey::<V4>::from_paserk(local.to_paserk().expose_secret()),
        Err(Error::InvalidPaserk(_))
    ));
}

#[test]
fn debug_never_prints_key_material() {
    let local = LocalKey::<V4>::generate().unwrap();
    let paserk = local.to_paserk();
    let body = paserk.expose_secret().trim_start_matches("k4.local.");
    let dbg = format!("{local:?} {paserk:?}");
    assert!(!dbg.contains(body), "{dbg}");
    assert!(dbg.contains("REDACTED"));
    let secret = SecretKey::<V4>::generate().unwrap();
    let dbg = format!("{secret:?}");
    let body = secret.to_paserk();
    assert!(!dbg.contains(body.expose_secret().trim_start_matches("k4.secret.")));
}

#[test]
fn keys_wrap_seal_and_protect_through_the_typed_api() {
    use token_paseto::paserk::pw::{Argon2Params, Pbkdf2Params, PwParams};

    let wrapping = LocalKey::<V4>::generate().unwrap();
    let other = LocalKey::<V4>::generate().unwrap();
    let payment_key = LocalKey::<V4>::generate().unwrap();

    let wrapped = payment_key.wrap_with(&wrapping).unwrap();
    assert!(wrapped.expose_secret().starts_with("k4.local-wrap.pie."));
    let back = LocalKey::<V4>::unwrap_with(wrapped.expose_secret(), &wrapping).unwrap();
    assert_eq!(back.id(), payment_key.id());
    assert!(matches!(
        LocalKey::<V4>::unwrap_with(wrapped.expose_secret(), &other),
        Err(Error::KeyRecoveryFailed)
    ));

    // A payment service receives its key sealed to its own public key.
    let service = SecretKey::<V4>::generate().unwrap();
    let sealed = payment_key.seal_to(service.public_key()).unwrap();
    assert!(sealed.expose_secret().starts_with("k4.seal."));
    let opened = LocalKey::<V4>::unseal(sealed.expose_secret(), &service).unwrap();
    assert_eq!(opened.id(), payment_key.id());
    let eavesdropper = SecretKey::<V4>::generate().unwrap();
    assert!(matches!(
        LocalKey::<V4>::unseal(sealed.expose_secret(), &eavesdropper),
        Err(Error::KeyRecoveryFailed)
    ));

    let signing = SecretKey::<V3>::generate().unwrap();
    let wrapping3 = LocalKey::<V3>::generate().unwrap();
    let wrapped = signing.wrap_with(&wrapping3).unwrap();
    assert!(wrapped.expose_secret().starts_with("k3.secret-wrap.pie."));
    let back = SecretKey::<V3>::unwrap_with(wrapped.expose_secret(), &wrapping3).unwrap();
    assert_eq!(back.public_key().id(), signing.public_key().id());

    // Password protection at the minimum accepted cost (fast enough for a test).
    let k4_min = PwParams::K4(Argon2Params {
        memlimit_bytes: Argon2Params::MIN_MEMLIMIT_BYTES,
        opslimit: Argon2Params::MIN_OPSLIMIT,
    });
    let protected = payment_key.protect(b"correct horse", &k4_min).unwrap();
    assert!(protected.expose_secret().starts_with("k4.local-pw."));
    let back = LocalKey::<V4>::unprotect(protected.expose_secret(), b"correct horse").unwrap();
    assert_eq!(back.id(), payment_key.id());
    assert!(matches!(
        LocalKey::<V4>::unprotect(protected.expose_secret(), b"wrong horse"),
        Err(Error::KeyRecoveryFailed)
    ));
    let k3_min = PwParams::K3(Pbkdf2Params {
        iterations: Pbkdf2Params::MIN_ITERATIONS,
    });
    let protected = signing.protect(b"pw", &k3_min).unwrap();
    let back = SecretKey::<V3>::unprotect(protected.expose_secret(), b"pw").unwrap();
    assert_eq!(back.public_key().id(), signing.public_key().id());
    // Parameters of the other version, and weak ones, are refused.
    assert!(matches!(
        payment_key.protect(b"pw", &k3_min),
        Err(Error::WeakPasswordParams(_))
    ));
    let weak = PwParams::K3(Pbkdf2Params { iterations: 1000 });
    assert!(matches!(
        signing.protect(b"pw", &weak),
        Err(Error::WeakPasswordParams(_))
    ));
}

/// Regression: an all-zero Ed25519 seed made ed25519-compact panic inside pasetors'
/// key check. It is now a typed error (found by the `paserk_parse` fuzz body).
#[test]
fn an_all_zero_v4_seed_is_an_error_not_a_panic() {
    let zero = "k4.secret.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA7aie8zrakLWKjqNAqbw1zZTIVdx3iQ6Y6wEihi1naKQ";
    assert!(matches!(
        SecretKey::<V4>::from_paserk(zero),
        Err(Error::InvalidKey(_))
    ));
    let mut bytes = vec![0u8; 64];
    bytes[40] = 1;
    assert!(matches!(
        SecretKey::<V4>::from_bytes(&bytes),
        Err(Error::InvalidKey(_))
    ));
}

/// The typed keys unprotect within limits: the defaults, or the caller's own. The
/// official `k4.local-pw-1` vector (Argon2id, 64 MiB, 2 passes) opens by default and is
/// refused, naming the parameter and before any hashing, under tighter limits.
#[test]
fn typed_keys_unprotect_within_configurable_limits() {
    use token_paseto::paserk::pw::{PwCostParameter, PwLimits};
    let vectors = cases(include_str!("vectors/paserk/k4.local-pw.json"));
    let case = &vectors[0];
    assert_eq!(case["name"], "k4.local-pw-1");
    let paserk = case["paserk"].as_str().unwrap();
    let password = case["password"].as_str().unwrap().as_bytes();
    let key = LocalKey::<V4>::unprotect(paserk, password).unwrap();
    assert_eq!(
        key.expose_secret_bytes(),
        hex::decode(case["unwrapped"].as_str().unwrap()).unwrap()
    );
    let mut limits = PwLimits::default();
    limits.max_memlimit_bytes = 16 * 1024 * 1024;
    let err = LocalKey::<V4>::unprotect_with_limits(paserk, password, &limits).unwrap_err();
    assert!(
        matches!(
            err,
            Error::PasswordCostTooHigh {
                parameter: PwCostParameter::Memlimit,
                value: 67_108_864,
                limit: 16_777_216,
            }
        ),
        "{err:?}"
    );
    let secret = SecretKey::<V4>::generate().unwrap();
    let protected = secret
        .protect(
            b"pw",
            &token_paseto::paserk::pw::PwParams::K4(token_paseto::paserk::pw::Argon2Params {
                memlimit_bytes: 64 * 1024 * 1024,
                opslimit: 3,
            }),
        )
        .unwrap();
    limits = PwLimits::default();
    limits.max_opslimit = 2;
    let err = SecretKey::<V4>::unprotect_with_limits(protected.expose_secret(), b"pw", &limits)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::PasswordCostTooHigh {
                parameter: PwCostParameter::Opslimit,
                value: 3,
                limit: 2,
            }
        ),
        "{err:?}"
    );
    let back = SecretKey::<V4>::unprotect(protected.expose_secret(), b"pw").unwrap();
    assert_eq!(back.id(), secret.id());
}
