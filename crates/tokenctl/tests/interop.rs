//! Tokens from other systems through `tokenctl verify`: a `kid` the one given key does
//! not carry (Keycloak-style), fractional NumericDates, the algorithms tessera verifies
//! but never signs (RS384, RS512, PS384, PS512, ES512), and what a JWKS leaves out.
//!
//! The tokens are signed here with josekit over OpenSSL keys, as another system would
//! sign them: the library never writes a `kid` of another's choosing, a fractional
//! time, or these algorithms.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::too_many_lines
)]

mod common;

use common::{TempDir, b64, keygen, now, tokenctl};
use josekit::jws::JwsSigner;
use openssl::pkey::{PKey, Private};
use serde_json::{Value, json};

/// A key pair of another system: its private half (OpenSSL) and a signer for `alg`.
struct Foreign {
    pkey: PKey<Private>,
    signer: Box<dyn JwsSigner>,
}

impl Foreign {
    fn new(alg: &str) -> Self {
        let pkey = if alg == "ES512" {
            let group =
                openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::SECP521R1).unwrap();
            PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap()
        } else {
            PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap()
        };
        let der = pkey.private_key_to_pkcs8().unwrap();
        let signer: Box<dyn JwsSigner> = match alg {
            "RS256" => Box::new(josekit::jws::RS256.signer_from_der(&der).unwrap()),
            "RS384" => Box::new(josekit::jws::RS384.signer_from_der(&der).unwrap()),
            "RS512" => Box::new(josekit::jws::RS512.signer_from_der(&der).unwrap()),
            "PS384" => Box::new(josekit::jws::PS384.signer_from_der(&der).unwrap()),
            "PS512" => Box::new(josekit::jws::PS512.signer_from_der(&der).unwrap()),
            "ES512" => Box::new(
                josekit::jws::ES512
                    .signer_from_pem(pkey.ec_key().unwrap().private_key_to_pem().unwrap())
                    .unwrap(),
            ),
            other => panic!("no signer for {other}"),
        };
        Self { pkey, signer }
    }

    /// The public key as SPKI PEM.
    fn public_pem(&self) -> String {
        String::from_utf8(self.pkey.public_key_to_pem().unwrap()).unwrap()
    }

    /// The public key as a JWK with only its key members (no `kid`, `alg` or `use`).
    fn public_jwk(&self) -> Value {
        if let Ok(rsa) = self.pkey.rsa() {
            return json!({"kty": "RSA", "n": b64(&rsa.n().to_vec()), "e": b64(&rsa.e().to_vec())});
        }
        let ec = self.pkey.ec_key().unwrap();
        let mut ctx = openssl::bn::BigNumContext::new().unwrap();
        let mut x = openssl::bn::BigNum::new().unwrap();
        let mut y = openssl::bn::BigNum::new().unwrap();
        ec.public_key()
            .affine_coordinates(ec.group(), &mut x, &mut y, &mut ctx)
            .unwrap();
        json!({
            "kty": "EC",
            "crv": "P-521",
            "x": b64(&x.to_vec_padded(66).unwrap()),
            "y": b64(&y.to_vec_padded(66).unwrap()),
        })
    }

    /// A compact JWS of `header` and `claims` (any JSON text, numbers as written).
    fn sign(&self, header: &Value, claims: &str) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.as_bytes())
        );
        let signature = self.signer.sign(input.as_bytes()).unwrap();
        format!("{input}.{}", b64(&signature))
    }
}

/// Claims as a Keycloak realm would write them, valid for five minutes from now.
fn keycloak_claims() -> String {
    let now = now();
    json!({
        "iss": "https://kc.example/realms/demo",
        "aud": "account",
        "sub": "f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
        "iat": now,
        "exp": now + 300,
        "scope": "openid profile",
    })
    .to_string()
}

/// The line `verify` wrote on stderr when it succeeded (`verified: … with key …`).
fn verified_line(run: &common::Run) -> String {
    assert_eq!(run.code, 0, "{run:#?}");
    run.stderr
        .lines()
        .find(|l| l.starts_with("verified: "))
        .unwrap_or_else(|| panic!("{run:#?}"))
        .to_owned()
}

/// An RS256 token whose header names `"kid": "kc-1"`, checked with `--key rsa_pub.pem
/// --alg RS256`, used to be refused as "unknown key id": the one key given was chosen
/// by the caller, so the token's `kid` is not consulted. With several keys it selects,
/// and `--kid` names the key given before it.
#[test]
fn one_given_key_verifies_whatever_kid_the_token_names() {
    let tmp = TempDir::new("interop-kid");
    let kc = Foreign::new("RS256");
    let pem = tmp
        .write("rsa_pub.pem", &kc.public_pem())
        .display()
        .to_string();
    let jwk = tmp
        .write("rsa_pub.jwk", &kc.public_jwk().to_string())
        .display()
        .to_string();
    let token = kc.sign(
        &json!({"alg": "RS256", "typ": "JWT", "kid": "kc-1"}),
        &keycloak_claims(),
    );
    let verify = |keys: &[&str]| {
        let mut args = vec!["verify"];
        args.extend_from_slice(keys);
        args.extend_from_slice(&["--alg", "RS256", "--aud", "account", &token]);
        tokenctl(&args)
    };

    // One key, as PEM or as a JWK without `kid`: verified.
    let run = verify(&["--key", &pem]);
    assert_eq!(run.json()["sub"], "f81d4fae-7dec-11d0-a765-00a0c91e6bf6");
    assert!(verified_line(&run).starts_with("verified: JWS RS256 with key "));
    verify(&["--key", &jwk]).ok();
    // Named with --kid, the report says so.
    let run = verify(&["--key", &pem, "--kid", "kc-1"]);
    assert_eq!(verified_line(&run), "verified: JWS RS256 with key kc-1");
    // A bad signature with the one key is an invalid token, naming the token's `kid`.
    let (input, signature) = token.rsplit_once('.').unwrap();
    let mut signature = common::unb64(signature);
    signature[10] ^= 1;
    let tampered = format!("{input}.{}", b64(&signature));
    let line = tokenctl(&[
        "verify", "--key", &pem, "--alg", "RS256", "--aud", "account", &tampered,
    ])
    .fails(1)
    .to_owned();
    assert!(
        line.starts_with(
            "rejected: invalid token (the token names `kid` kc-1, and the one given key ("
        ),
        "{line}"
    );

    // Two keys: the `kid` picks one, so it must name one of them.
    let other = Foreign::new("RS256");
    let other_pem = tmp
        .write("other_pub.pem", &other.public_pem())
        .display()
        .to_string();
    let line = verify(&["--key", &pem, "--key", &other_pem])
        .fails(1)
        .to_owned();
    assert!(
        line.starts_with("rejected: unknown key (`kid` kc-1 names none of the given keys"),
        "{line}"
    );
    // `--kid` names the key given just before it, wherever it stands.
    let run = verify(&["--key", &pem, "--kid", "kc-1", "--key", &other_pem]);
    assert_eq!(verified_line(&run), "verified: JWS RS256 with key kc-1");
    let run = verify(&["--key", &other_pem, "--key", &pem, "--kid", "kc-1"]);
    assert_eq!(verified_line(&run), "verified: JWS RS256 with key kc-1");
    // Naming the wrong key `kc-1` picks it, and its signature check fails.
    verify(&["--key", &other_pem, "--kid", "kc-1", "--key", &pem]).rejected("invalid token");

    // A key set is a set: its `kid`s select, even with one key in it.
    let set = |kid: &str| {
        let mut entry = kc.public_jwk();
        entry["kid"] = json!(kid);
        entry["alg"] = json!("RS256");
        tmp.write(
            &format!("{kid}.jwks"),
            &json!({"keys": [entry]}).to_string(),
        )
        .display()
        .to_string()
    };
    verify(&["--key", &set("kc-1")]).ok();
    verify(&["--key", &set("kc-2")]).rejected("unknown key");

    // --kid names one JWK or PEM key: not a key set, and not before any --key.
    tokenctl(&["verify", "--key", &set("kc-1"), "--kid", "kc-1", &token]).fails_with(2, "error: ");
    tokenctl(&["verify", "--kid", "kc-1", "--key", &pem, &token])
        .fails_with(2, "error: --kid kc-1 comes before any --key");
    tokenctl(&["verify", "--key", &pem, "--kid", "a", "--kid", "b", &token])
        .fails_with(2, "error: two --kid for the key");
    tokenctl(&["verify", "--key", &pem, "--kid", "a b", &token]).fails_with(2, "error: --kid a b");
}

/// `"exp": 1796215339.5`, as systems with floating-point clocks write it, used to be
/// a malformed claim. It verifies, rounded the conservative way: `exp` down, `nbf`
/// and `iat` up. A time that is a string, an array or `null` stays malformed.
#[test]
fn fractional_numeric_dates_verify_rounded_conservatively() {
    let tmp = TempDir::new("interop-dates");
    let kc = Foreign::new("RS256");
    let pem = tmp
        .write("rsa_pub.pem", &kc.public_pem())
        .display()
        .to_string();
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "kc-1"});
    let now = now();
    let token = kc.sign(
        &header,
        &format!(
            r#"{{"sub":"u","aud":"account","iat":{}.25,"nbf":{}.75,"exp":{}.5}}"#,
            now - 10,
            now - 10,
            now + 300
        ),
    );
    let claims = tokenctl(&[
        "verify", "--key", &pem, "--alg", "RS256", "--aud", "account", &token,
    ])
    .json();
    assert_eq!(claims["exp"], now + 300);
    assert_eq!(claims["nbf"], now - 9);
    assert_eq!(claims["iat"], now - 9);
    // An exponent form of a whole number is a number like any other.
    let token = kc.sign(&header, r#"{"sub":"u","aud":"account","exp":9.9e9}"#);
    let claims = tokenctl(&[
        "verify", "--key", &pem, "--alg", "RS256", "--aud", "account", &token,
    ])
    .json();
    assert_eq!(claims["exp"], 9_900_000_000_i64);
    // Still malformed.
    for exp in [
        format!(r#""{}""#, now + 300),
        format!("[{}.5]", now + 300),
        "null".to_owned(),
        "-1.5".to_owned(),
    ] {
        let token = kc.sign(
            &header,
            &format!(r#"{{"sub":"u","aud":"account","exp":{exp}}}"#),
        );
        let line = tokenctl(&[
            "verify", "--key", &pem, "--alg", "RS256", "--aud", "account", &token,
        ])
        .fails(1)
        .to_owned();
        assert!(
            line.starts_with("rejected: invalid claims (") && line.contains("`exp`"),
            "{exp}: {line}"
        );
    }
}

/// RS384, RS512, PS384, PS512 and ES512 tokens used to be refused whatever the key:
/// they verify with a key given for that algorithm (the algorithm still comes from
/// the key or `--alg`, never from the token), and are never issued.
#[test]
fn verify_only_algorithms_verify_with_their_keys() {
    let tmp = TempDir::new("interop-algs");
    for alg in ["RS384", "RS512", "PS384", "PS512"] {
        let kc = Foreign::new(alg);
        let pem = tmp
            .write(&format!("{alg}.pem"), &kc.public_pem())
            .display()
            .to_string();
        let token = kc.sign(
            &json!({"alg": alg, "typ": "JWT", "kid": "kc-1"}),
            &keycloak_claims(),
        );
        let run = tokenctl(&[
            "verify", "--key", &pem, "--alg", alg, "--aud", "account", &token,
        ]);
        assert!(
            verified_line(&run).starts_with(&format!("verified: JWS {alg} with key")),
            "{alg}"
        );
        // The same RSA key given for RS256 refuses the token before any crypto.
        tokenctl(&[
            "verify", "--key", &pem, "--alg", "RS256", "--aud", "account", &token,
        ])
        .rejected("algorithm not allowed");
        // A JWK naming its algorithm needs no --alg.
        let mut jwk = kc.public_jwk();
        jwk["alg"] = json!(alg);
        let jwk = tmp
            .write(&format!("{alg}.jwk"), &jwk.to_string())
            .display()
            .to_string();
        tokenctl(&["verify", "--key", &jwk, "--aud", "account", &token]).ok();
    }
    // ES512: a P-521 key says its algorithm by its curve, as PEM or JWK.
    let p521 = Foreign::new("ES512");
    let token = p521.sign(&json!({"alg": "ES512", "typ": "JWT"}), &keycloak_claims());
    let pem = tmp
        .write("p521.pem", &p521.public_pem())
        .display()
        .to_string();
    let run = tokenctl(&["verify", "--key", &pem, "--aud", "account", &token]);
    assert!(verified_line(&run).starts_with("verified: JWS ES512 with key"));
    let jwk = tmp
        .write("p521.jwk", &p521.public_jwk().to_string())
        .display()
        .to_string();
    tokenctl(&["verify", "--key", &jwk, "--aud", "account", &token]).ok();

    // Verified, never issued.
    let rsa = tmp
        .write(
            "rsa.pem",
            std::str::from_utf8(
                &Foreign::new("RS256")
                    .pkey
                    .private_key_to_pem_pkcs8()
                    .unwrap(),
            )
            .unwrap(),
        )
        .display()
        .to_string();
    let line = tokenctl(&["issue", "--key", &rsa, "--alg", "RS384"])
        .fails(2)
        .to_owned();
    assert!(
        line.contains("RS384 is verified, never signed, here"),
        "{line}"
    );
    tokenctl(&["issue", "--key", &rsa, "--alg", "RS256", "--aud", "api"]).ok();
}

/// "no given key verifies" used to be all a JWKS said: which of its entries were left
/// out, and why, is now part of the rejection.
#[test]
fn a_jwks_says_which_keys_it_skipped_and_why() {
    let tmp = TempDir::new("interop-jwks");
    let (enc, _) = keygen(tmp.path(), "ecdh-es-p256");
    let mut enc_entry: Value =
        serde_json::from_str(&std::fs::read_to_string(enc.join("public.jwk")).unwrap()).unwrap();
    enc_entry["kid"] = json!("enc-1");
    let kc = Foreign::new("RS256");
    let mut oaep = kc.public_jwk();
    oaep["kid"] = json!("oaep-1");
    oaep["alg"] = json!("RSA-OAEP");
    let mut sig = kc.public_jwk();
    sig["kid"] = json!("sig-1");
    sig["alg"] = json!("RS256");
    let claims = keycloak_claims();

    // The token names a key the set holds only for encryption.
    let jwks = tmp
        .write(
            "mixed.jwks",
            &json!({"keys": [enc_entry, oaep, sig]}).to_string(),
        )
        .display()
        .to_string();
    let token = kc.sign(&json!({"alg": "RS256", "kid": "enc-1"}), &claims);
    let line = tokenctl(&["verify", "--key", &jwks, "--aud", "account", &token])
        .fails(1)
        .to_owned();
    assert_eq!(
        line,
        format!(
            "rejected: unknown key (`kid` enc-1 names none of the given keys; skipped in {jwks}: \
             entry 0 (kid enc-1): not a signature key (its `use` or `key_ops` say otherwise); \
             entry 1 (kid oaep-1): algorithm `RSA-OAEP` is not verified)"
        )
    );
    let token = kc.sign(&json!({"alg": "RS256", "kid": "sig-1"}), &claims);
    tokenctl(&["verify", "--key", &jwks, "--aud", "account", &token]).ok();

    // Nothing usable at all.
    let jwks = tmp
        .write(
            "unusable.jwks",
            &json!({"keys": [enc_entry, oaep]}).to_string(),
        )
        .display()
        .to_string();
    let line = tokenctl(&["verify", "--key", &jwks, "--aud", "account", &token])
        .fails(1)
        .to_owned();
    assert!(
        line.starts_with(&format!(
            "rejected: wrong token type (no given key verifies JWS signatures; skipped in {jwks}: entry 0 (kid enc-1)"
        )),
        "{line}"
    );
}
