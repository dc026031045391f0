//! tessera against the raw primitives underneath, on the same bytes, in the same run.
//!
//! Each group is one operation: `tessera` is the full path (parse, key lookup by `kid`,
//! crypto, claims JSON, validation); `baseline-*` is the raw primitive alone on the
//! bytes that path authenticates; `peer-*` is another library's high-level call.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::hint::black_box;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use hmac::Mac as _;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use token_core::{AsymmetricSigner, Claims, SystemClock, TokenSigner, TokenVerifier, Validation};
use token_paseto::{LocalCipher, LocalKey, PublicIssuer, SecretKey, V3, V4};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Access {
    role: String,
    sid: String,
    tenant: String,
}

/// The application claims of a `TokenService` access token.
#[derive(Serialize, Deserialize)]
struct Session {
    role: String,
    tenant: String,
}

/// ~200 bytes of access-token claims.
fn claims() -> Claims<Access> {
    Claims::new(Access {
        role: "admin".into(),
        sid: "fam_8f14e45fceea167a".into(),
        tenant: "acme-eu-1".into(),
    })
    .issuer("https://auth.example")
    .subject("user-42")
    .audience("api")
    .token_id("4f3c2a1b0e9d8c7b6a5f4e3d2c1b0a99")
    .valid_for(&SystemClock, Duration::from_secs(900))
    .unwrap()
}

fn validation() -> Validation {
    Validation::new()
        .issuer("https://auth.example")
        .audience("api")
        .max_lifetime(Duration::from_secs(900))
}

/// The same claims as `Access`, typed for jsonwebtoken (which validates `exp`, `nbf`,
/// `iss` and `aud` itself).
#[derive(Serialize, Deserialize)]
#[allow(dead_code)]
struct PeerClaims {
    iss: String,
    sub: String,
    aud: String,
    exp: u64,
    iat: u64,
    jti: String,
    role: String,
    sid: String,
    tenant: String,
}

/// `claims()` as `PeerClaims`.
fn peer_claims() -> PeerClaims {
    let c = claims();
    let secs = |t: Option<token_core::Timestamp>| u64::try_from(t.unwrap().unix_seconds()).unwrap();
    PeerClaims {
        iss: c.iss.clone().unwrap(),
        sub: c.sub.clone().unwrap(),
        aud: "api".into(),
        exp: secs(c.exp),
        iat: secs(c.iat),
        jti: c.jti.clone().unwrap(),
        role: c.custom.role.clone(),
        sid: c.custom.sid.clone(),
        tenant: c.custom.tenant.clone(),
    }
}

/// jsonwebtoken's rules matching `validation()`: the algorithm pinned, issuer and
/// audience checked, `exp` required.
fn jsonwebtoken_validation(alg: jsonwebtoken::Algorithm) -> jsonwebtoken::Validation {
    let mut rules = jsonwebtoken::Validation::new(alg);
    rules.set_issuer(&["https://auth.example"]);
    rules.set_audience(&["api"]);
    rules.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    rules
}

fn b64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).unwrap()
}

fn pae(pieces: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(pieces.len() as u64).to_le_bytes());
    for p in pieces {
        out.extend_from_slice(&(p.len() as u64).to_le_bytes());
        out.extend_from_slice(p);
    }
    out
}

/// A PASETO footer (JSON bytes) as pasetors' footer type.
fn pasetors_footer(footer: &[u8]) -> pasetors::footer::Footer {
    let mut f = pasetors::footer::Footer::new();
    f.parse_bytes(footer).unwrap();
    f
}

/// (payload‖signature or nonce‖ciphertext‖tag, footer) of a PASETO.
fn parts(token: &str) -> (Vec<u8>, Vec<u8>) {
    let segments: Vec<&str> = token.split('.').collect();
    let footer = segments.get(3).map(|f| b64(f)).unwrap_or_default();
    (b64(segments[2]), footer)
}

fn v4_public(c: &mut Criterion) {
    let key = SecretKey::<V4>::generate().unwrap();
    let bytes = key.expose_secret_bytes();
    let mut issuer = PublicIssuer::new(SecretKey::<V4>::generate().unwrap());
    // The verifier holds two keys, so the footer `kid` really picks one.
    issuer
        .rotate_to(SecretKey::<V4>::from_bytes(&bytes).unwrap())
        .unwrap();
    let verifier = issuer.verifier();
    let token = issuer.sign(&claims()).unwrap();
    let token = token.expose_secret().to_owned();
    let v = validation();

    let (body, footer) = parts(&token);
    let (m, sig) = body.split_at(body.len() - 64);
    let m2 = pae(&[b"v4.public.", m, &footer, b""]);
    let sk = ed25519_compact::SecretKey::from_slice(&bytes).unwrap();
    let pk = ed25519_compact::PublicKey::from_slice(&bytes[32..]).unwrap();
    let sig = ed25519_compact::Signature::from_slice(sig).unwrap();

    let pasetors_sk =
        pasetors::keys::AsymmetricSecretKey::<pasetors::version4::V4>::from(&bytes).unwrap();
    let pasetors_pk =
        pasetors::keys::AsymmetricPublicKey::<pasetors::version4::V4>::from(&bytes[32..]).unwrap();
    let mut pclaims = pasetors::claims::Claims::new().unwrap();
    pclaims.issuer("https://auth.example").unwrap();
    pclaims.subject("user-42").unwrap();
    pclaims.audience("api").unwrap();
    pclaims
        .token_identifier("4f3c2a1b0e9d8c7b6a5f4e3d2c1b0a99")
        .unwrap();
    pclaims.add_additional("role", "admin").unwrap();
    pclaims
        .add_additional("sid", "fam_8f14e45fceea167a")
        .unwrap();
    pclaims.add_additional("tenant", "acme-eu-1").unwrap();
    // pasetors' token carries the same key-id footer as tessera's.
    let ptoken = pasetors::public::sign(
        &pasetors_sk,
        &pclaims,
        Some(&pasetors_footer(&footer)),
        None,
    )
    .unwrap();
    let mut rules = pasetors::claims::ClaimsValidationRules::new();
    rules.validate_issuer_with("https://auth.example");
    rules.validate_audience_with("api");

    let mut g = c.benchmark_group("v4.public verify+validate");
    g.bench_function("tessera", |b| {
        b.iter(|| verifier.verify::<Access>(black_box(&token), &v).unwrap());
    });
    g.bench_function("baseline-ed25519-compact", |b| {
        b.iter(|| pk.verify(black_box(&m2), &sig).unwrap());
    });
    g.bench_function("peer-pasetors", |b| {
        b.iter(|| {
            let untrusted = pasetors::token::UntrustedToken::<
                pasetors::Public,
                pasetors::version4::V4,
            >::try_from(black_box(ptoken.as_str()))
            .unwrap();
            pasetors::public::verify(&pasetors_pk, &untrusted, &rules, None, None).unwrap()
        });
    });
    g.finish();

    let c_claims = claims();
    let mut g = c.benchmark_group("v4.public sign");
    g.bench_function("tessera", |b| {
        b.iter(|| issuer.sign(black_box(&c_claims)).unwrap());
    });
    g.bench_function("baseline-ed25519-compact", |b| {
        b.iter(|| sk.sign(black_box(&m2), None));
    });
    g.finish();
}

fn v4_local(c: &mut Criterion) {
    let key = LocalKey::<V4>::generate().unwrap();
    let raw = key.expose_secret_bytes().to_vec();
    let cipher = LocalCipher::new(key);
    let assertion = b"tessera:payment:user:user-42";
    let token = cipher.encrypt(&claims(), assertion).unwrap();
    let token = token.expose_secret().to_owned();
    let v = validation();

    let pkey = pasetors::keys::SymmetricKey::<pasetors::version4::V4>::from(&raw).unwrap();
    let mut pclaims = pasetors::claims::Claims::new().unwrap();
    pclaims.issuer("https://auth.example").unwrap();
    pclaims.subject("user-42").unwrap();
    pclaims.audience("api").unwrap();
    pclaims.add_additional("role", "admin").unwrap();
    pclaims
        .add_additional("sid", "fam_8f14e45fceea167a")
        .unwrap();
    pclaims.add_additional("tenant", "acme-eu-1").unwrap();
    // pasetors' token carries the same key-id footer as tessera's.
    let (_, footer) = parts(&token);
    let pfooter = pasetors_footer(&footer);
    let ptoken =
        pasetors::local::encrypt(&pkey, &pclaims, Some(&pfooter), Some(assertion)).unwrap();
    let mut rules = pasetors::claims::ClaimsValidationRules::new();
    rules.validate_issuer_with("https://auth.example");
    rules.validate_audience_with("api");

    let mut g = c.benchmark_group("v4.local decrypt+validate (implicit assertion)");
    g.bench_function("tessera", |b| {
        b.iter(|| {
            cipher
                .decrypt::<Access>(black_box(&token), assertion, &v)
                .unwrap()
        });
    });
    g.bench_function("baseline-pasetors-local-decrypt", |b| {
        b.iter(|| {
            let untrusted = pasetors::token::UntrustedToken::<
                pasetors::Local,
                pasetors::version4::V4,
            >::try_from(black_box(ptoken.as_str()))
            .unwrap();
            pasetors::local::decrypt(&pkey, &untrusted, &rules, None, Some(assertion)).unwrap()
        });
    });
    g.finish();

    let c_claims = claims();
    let mut g = c.benchmark_group("v4.local encrypt (implicit assertion)");
    g.bench_function("tessera", |b| {
        b.iter(|| cipher.encrypt(black_box(&c_claims), assertion).unwrap());
    });
    g.bench_function("baseline-pasetors-local-encrypt", |b| {
        b.iter(|| {
            pasetors::local::encrypt(&pkey, black_box(&pclaims), Some(&pfooter), Some(assertion))
                .unwrap()
        });
    });
    g.finish();
}

fn v3_public(c: &mut Criterion) {
    use p384::ecdsa::signature::{Signer, Verifier};
    let key = SecretKey::<V3>::generate().unwrap();
    let bytes = key.expose_secret_bytes();
    let issuer = PublicIssuer::new(SecretKey::<V3>::from_bytes(&bytes).unwrap());
    let verifier = issuer.verifier();
    let token = issuer.sign(&claims()).unwrap();
    let token = token.expose_secret().to_owned();
    let v = validation();

    let sk = p384::ecdsa::SigningKey::from_slice(&bytes).unwrap();
    let vk = *sk.verifying_key();
    let compressed = vk.to_encoded_point(true);
    let (body, footer) = parts(&token);
    let (m, sig) = body.split_at(body.len() - 96);
    let m2 = pae(&[compressed.as_bytes(), b"v3.public.", m, &footer, b""]);
    let sig = p384::ecdsa::Signature::from_slice(sig).unwrap();

    let mut g = c.benchmark_group("v3.public verify+validate");
    g.bench_function("tessera", |b| {
        b.iter(|| verifier.verify::<Access>(black_box(&token), &v).unwrap());
    });
    g.bench_function("baseline-p384", |b| {
        b.iter(|| vk.verify(black_box(&m2), &sig).unwrap());
    });
    g.finish();

    let c_claims = claims();
    let mut g = c.benchmark_group("v3.public sign");
    g.bench_function("tessera", |b| {
        b.iter(|| issuer.sign(black_box(&c_claims)).unwrap());
    });
    g.bench_function("baseline-p384", |b| {
        b.iter(|| -> p384::ecdsa::Signature { sk.sign(black_box(&m2)) });
    });
    g.finish();
}

fn v3_local(c: &mut Criterion) {
    use ctr::cipher::{KeyIvInit, StreamCipher};
    let key = LocalKey::<V3>::generate().unwrap();
    let raw = key.expose_secret_bytes().to_vec();
    let cipher = LocalCipher::new(key);
    let token = cipher.encrypt(&claims(), b"user-42").unwrap();
    let token = token.expose_secret().to_owned();
    let v = validation();

    let (body, footer) = parts(&token);
    let (n, rest) = body.split_at(32);
    let (ct, tag) = rest.split_at(rest.len() - 48);
    let pre_auth = pae(&[b"v3.local.", n, ct, &footer, b"user-42"]);

    let mut g = c.benchmark_group("v3.local decrypt+validate");
    g.bench_function("tessera", |b| {
        b.iter(|| {
            cipher
                .decrypt::<Access>(black_box(&token), b"user-42", &v)
                .unwrap()
        });
    });
    g.bench_function("baseline-aes-ctr-hmac-sha384", |b| {
        b.iter(|| {
            let hk = hkdf::Hkdf::<sha2::Sha384>::new(None, &raw);
            let mut enc = [0u8; 48];
            let mut auth = [0u8; 48];
            hk.expand(&[b"paseto-encryption-key".as_slice(), n].concat(), &mut enc)
                .unwrap();
            hk.expand(
                &[b"paseto-auth-key-for-aead".as_slice(), n].concat(),
                &mut auth,
            )
            .unwrap();
            let mut mac = <hmac::Hmac<sha2::Sha384> as hmac::Mac>::new_from_slice(&auth).unwrap();
            mac.update(black_box(&pre_auth));
            mac.verify_slice(tag).unwrap();
            let mut out = ct.to_vec();
            let mut ctr =
                ctr::Ctr128BE::<aes::Aes256>::new_from_slices(&enc[..32], &enc[32..]).unwrap();
            ctr.apply_keystream(&mut out);
            out
        });
    });
    g.finish();

    let c_claims = claims();
    let plaintext = c_claims.to_json::<token_core::Rfc3339>().unwrap();
    let mut g = c.benchmark_group("v3.local encrypt");
    g.bench_function("tessera", |b| {
        b.iter(|| cipher.encrypt(black_box(&c_claims), b"user-42").unwrap());
    });
    g.bench_function("baseline-aes-ctr-hmac-sha384", |b| {
        b.iter(|| {
            let mut n = [0u8; 32];
            getrandom::fill(&mut n).unwrap();
            let hk = hkdf::Hkdf::<sha2::Sha384>::new(None, &raw);
            let mut enc = [0u8; 48];
            let mut auth = [0u8; 48];
            hk.expand(
                &[b"paseto-encryption-key".as_slice(), &n].concat(),
                &mut enc,
            )
            .unwrap();
            hk.expand(
                &[b"paseto-auth-key-for-aead".as_slice(), &n].concat(),
                &mut auth,
            )
            .unwrap();
            let mut ct = black_box(&plaintext).clone();
            let mut ctr =
                ctr::Ctr128BE::<aes::Aes256>::new_from_slices(&enc[..32], &enc[32..]).unwrap();
            ctr.apply_keystream(&mut ct);
            let mut mac = <hmac::Hmac<sha2::Sha384> as hmac::Mac>::new_from_slice(&auth).unwrap();
            mac.update(&pae(&[b"v3.local.", &n, &ct, &footer, b"user-42"]));
            (ct, mac.finalize().into_bytes())
        });
    });
    g.finish();
}

fn jwt_es256(c: &mut Criterion) {
    use josekit::jwk::KeyPair as _;
    use josekit::jws::JwsVerifier as _;
    use token_jwt::{Algorithm, SigningKey};

    // ES256: josekit's key, imported into tessera.
    let pair = josekit::jws::ES256.generate_key_pair().unwrap();
    let private_pem = String::from_utf8(pair.to_pem_private_key()).unwrap();
    let public_pem = pair.to_pem_public_key();
    let key = SigningKey::from_pem(Algorithm::Es256, &private_pem).unwrap();
    let token = key.sign(&claims()).unwrap();
    let token = token.expose_secret().to_owned();
    let verifier = key.verifier();
    let v = validation();
    let (input, sig) = token.rsplit_once('.').unwrap();
    let sig = b64(sig);
    let jose = josekit::jws::ES256.verifier_from_pem(&public_pem).unwrap();

    let jwt_es256 = jsonwebtoken::DecodingKey::from_ec_pem(&public_pem).unwrap();
    let jwt_es256_rules = jsonwebtoken_validation(jsonwebtoken::Algorithm::ES256);

    let mut g = c.benchmark_group("JWT ES256 verify+validate");
    g.bench_function("tessera", |b| {
        b.iter(|| verifier.verify::<Access>(black_box(&token), &v).unwrap());
    });
    g.bench_function("baseline-josekit-verify", |b| {
        b.iter(|| jose.verify(black_box(input.as_bytes()), &sig).unwrap());
    });
    g.bench_function("peer-jsonwebtoken-rust-crypto", |b| {
        b.iter(|| {
            jsonwebtoken::decode::<PeerClaims>(black_box(&token), &jwt_es256, &jwt_es256_rules)
                .unwrap()
        });
    });
    g.finish();

    let c_claims = claims();
    let jose_signer = josekit::jws::ES256
        .signer_from_pem(pair.to_pem_private_key())
        .unwrap();
    let jwt_es256_enc = jsonwebtoken::EncodingKey::from_ec_pem(private_pem.as_bytes()).unwrap();
    let peer = peer_claims();
    let mut g = c.benchmark_group("JWT ES256 sign");
    g.bench_function("tessera", |b| {
        b.iter(|| key.sign(black_box(&c_claims)).unwrap());
    });
    g.bench_function("baseline-josekit-sign", |b| {
        b.iter(|| {
            josekit::jws::JwsSigner::sign(&jose_signer, black_box(input.as_bytes())).unwrap()
        });
    });
    g.bench_function("peer-jsonwebtoken-rust-crypto", |b| {
        b.iter(|| {
            jsonwebtoken::encode(
                &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256),
                black_box(&peer),
                &jwt_es256_enc,
            )
            .unwrap()
        });
    });
    g.finish();
}

fn jwt_eddsa(c: &mut Criterion) {
    use josekit::jwk::KeyPair as _;
    use josekit::jws::JwsVerifier as _;
    use token_jwt::{Algorithm, SigningKey};
    let v = validation();
    let c_claims = claims();
    let peer = peer_claims();

    // EdDSA: ed25519-dalek underneath; the key pair comes from josekit so that
    // jsonwebtoken can read the same public key.
    let ed_pair = josekit::jws::EdDSA
        .generate_key_pair(josekit::jwk::alg::ed::EdCurve::Ed25519)
        .unwrap();
    let key = SigningKey::from_pem(
        Algorithm::EdDsa,
        &String::from_utf8(ed_pair.to_pem_private_key()).unwrap(),
    )
    .unwrap();
    let jwt_ed = jsonwebtoken::DecodingKey::from_ed_pem(&ed_pair.to_pem_public_key()).unwrap();
    let jwt_ed_rules = jsonwebtoken_validation(jsonwebtoken::Algorithm::EdDSA);
    let token = key.sign(&claims()).unwrap();
    let token = token.expose_secret().to_owned();
    let verifier = key.verifier();
    let (input, _) = token.rsplit_once('.').unwrap();
    let dalek = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let dalek_sig = ed25519_dalek::Signer::sign(&dalek, input.as_bytes());
    let dalek_vk = dalek.verifying_key();
    let jose_pair = josekit::jws::EdDSA
        .generate_key_pair(josekit::jwk::alg::ed::EdCurve::Ed25519)
        .unwrap();
    let jose_signer = josekit::jws::EdDSA
        .signer_from_der(jose_pair.to_der_private_key())
        .unwrap();
    let jose_sig = josekit::jws::JwsSigner::sign(&jose_signer, input.as_bytes()).unwrap();
    let jose_verifier = josekit::jws::EdDSA
        .verifier_from_der(jose_pair.to_der_public_key())
        .unwrap();

    let mut g = c.benchmark_group("JWT EdDSA verify+validate");
    g.bench_function("tessera", |b| {
        b.iter(|| verifier.verify::<Access>(black_box(&token), &v).unwrap());
    });
    g.bench_function("baseline-ed25519-dalek", |b| {
        b.iter(|| {
            dalek_vk
                .verify_strict(black_box(input.as_bytes()), &dalek_sig)
                .unwrap();
        });
    });
    g.bench_function("peer-jsonwebtoken-rust-crypto", |b| {
        b.iter(|| {
            jsonwebtoken::decode::<PeerClaims>(black_box(&token), &jwt_ed, &jwt_ed_rules).unwrap()
        });
    });
    g.bench_function("peer-josekit-openssl-eddsa", |b| {
        b.iter(|| {
            jose_verifier
                .verify(black_box(input.as_bytes()), &jose_sig)
                .unwrap();
        });
    });
    g.finish();

    let jwt_ed_enc = jsonwebtoken::EncodingKey::from_ed_pem(&ed_pair.to_pem_private_key()).unwrap();
    let mut g = c.benchmark_group("JWT EdDSA sign");
    g.bench_function("tessera", |b| {
        b.iter(|| key.sign(black_box(&c_claims)).unwrap());
    });
    g.bench_function("baseline-ed25519-dalek", |b| {
        b.iter(|| ed25519_dalek::Signer::sign(&dalek, black_box(input.as_bytes())));
    });
    g.bench_function("peer-jsonwebtoken-rust-crypto", |b| {
        b.iter(|| {
            jsonwebtoken::encode(
                &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA),
                black_box(&peer),
                &jwt_ed_enc,
            )
            .unwrap()
        });
    });
    g.finish();
}

fn verify_access(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let key = SecretKey::<V4>::generate().unwrap();
    let bytes = key.expose_secret_bytes();
    let svc = rt.block_on(async {
        let store = token_policy::config::open_store("sqlite::memory:")
            .await
            .unwrap();
        let opaque = token_opaque::OpaqueTokens::new(store);
        token_policy::TokenService::builder(
            token_policy::Policy::new("https://auth.example", "api"),
            PublicIssuer::new(key),
        )
        .payment(LocalCipher::new(LocalKey::<V4>::generate().unwrap()))
        .opaque(opaque)
        .build()
    });
    let session = Session {
        role: "admin".into(),
        tenant: "acme-eu-1".into(),
    };
    let login = rt.block_on(svc.login("user-42", &session)).unwrap();
    let token = login.access.expose_secret().to_owned();
    verify_access_group(
        c,
        "TokenService::verify_access (in-process blocklist)",
        &rt,
        &svc,
        &token,
        &bytes[32..],
    );
}

/// A `verify_access` group: `svc` verifying `token`, beside the raw Ed25519 verify of
/// the same token's pre-authentication encoding under `public_key`.
fn verify_access_group(
    c: &mut Criterion,
    name: &str,
    rt: &tokio::runtime::Runtime,
    svc: &token_policy::TokenService,
    token: &str,
    public_key: &[u8],
) {
    let (body, footer) = parts(token);
    let (m, sig) = body.split_at(body.len() - 64);
    let m2 = pae(&[b"v4.public.", m, &footer, b""]);
    let pk = ed25519_compact::PublicKey::from_slice(public_key).unwrap();
    let sig = ed25519_compact::Signature::from_slice(sig).unwrap();
    let mut g = c.benchmark_group(name);
    g.bench_function("tessera", |b| {
        b.iter(|| {
            rt.block_on(svc.verify_access::<Session>(black_box(token)))
                .unwrap()
        });
    });
    g.bench_function("baseline-ed25519-compact", |b| {
        b.iter(|| pk.verify(black_box(&m2), &sig).unwrap());
    });
    g.finish();
}

/// `verify_access` with the revocation state replicated from Redis
/// ([`token_policy::ReplicatedBlocklist`]): answered from memory, no round trip. The
/// replica's feed runs on a worker thread of its own runtime (it must keep confirming
/// the sync, or verification fails closed); the measured calls are driven with
/// `block_on` on a current-thread runtime, as in the in-process group. Skipped, loudly,
/// when `TESSERA_TEST_REDIS_URL` is unset (`cargo xtask bench` starts Redis).
fn verify_access_redis(c: &mut Criterion) {
    const REDIS_URL: &str = "TESSERA_TEST_REDIS_URL";
    let Some(url) = std::env::var(REDIS_URL).ok().filter(|u| !u.is_empty()) else {
        #[allow(clippy::print_stderr)]
        {
            eprintln!(
                "!!! SKIPPED TokenService::verify_access (Redis revocation): {REDIS_URL} is \
                 not set (`cargo xtask services up`)"
            );
        }
        return;
    };
    let feed = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let key = SecretKey::<V4>::generate().unwrap();
    let bytes = key.expose_secret_bytes();
    let mut prefix = [0u8; 8];
    getrandom::fill(&mut prefix).unwrap();
    let prefix = format!("bench-{:016x}:", u64::from_le_bytes(prefix));
    let svc = feed.block_on(async {
        let store = token_policy::config::open_store("sqlite::memory:")
            .await
            .unwrap();
        let source = token_policy::RedisBlocklist::connect(&url)
            .await
            .unwrap()
            .with_prefix(prefix);
        let replica = token_policy::ReplicatedBlocklist::start(
            source,
            token_policy::ReplicaOptions::default(),
        )
        .await
        .unwrap();
        token_policy::TokenService::builder(
            token_policy::Policy::new("https://auth.example", "api"),
            PublicIssuer::new(key),
        )
        .opaque(token_opaque::OpaqueTokens::new(store))
        .blocklist(std::sync::Arc::new(replica))
        .build()
    });
    let session = Session {
        role: "admin".into(),
        tenant: "acme-eu-1".into(),
    };
    let token = feed.block_on(async {
        // A revoked token of another login, so the replica holds state.
        let other = svc.login("user-7", &session).await.unwrap();
        svc.logout(other.access.expose_secret(), other.refresh.expose_secret())
            .await
            .unwrap();
        let login = svc.login("user-42", &session).await.unwrap();
        login.access.expose_secret().to_owned()
    });
    verify_access_group(
        c,
        "TokenService::verify_access (Redis revocation)",
        &rt,
        &svc,
        &token,
        &bytes[32..],
    );
    drop(svc);
    feed.shutdown_background();
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = v4_public, v4_local, v3_public, v3_local, jwt_es256, jwt_eddsa, verify_access,
        verify_access_redis
}
criterion_main!(benches);
