//! DPoP proofs (RFC 9449): the RFC's own example, proofs made here with ES256 and
//! EdDSA keys, and one test per rejection reason.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::many_single_char_names,
    clippy::needless_pass_by_value
)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jws::{ES256, JwsHeader};
use serde_json::{Value, json};
use token_core::Timestamp;
use token_jwt::dpop::{DpopError, DpopRequest, DpopVerifier, access_token_hash, normalise_uri};

/// RFC 9449 section 4.1, figure 3: a proof for `POST https://server.example.com/token`.
const RFC_PROOF: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg";
/// The RFC's thumbprint of that key (section 6.1).
const RFC_JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
const RFC_IAT: i64 = 1_562_262_616;

fn ts(t: i64) -> Timestamp {
    Timestamp::from_unix_seconds(t).unwrap()
}

fn request<'a>(method: &'a str, uri: &'a str) -> DpopRequest<'a> {
    DpopRequest {
        method,
        uri,
        access_token: None,
        nonce: None,
    }
}

#[test]
fn the_rfc_example_verifies_and_names_its_thumbprint() {
    let v = DpopVerifier::new();
    let proof = v
        .verify(
            RFC_PROOF,
            &request("POST", "https://server.example.com/token"),
            ts(RFC_IAT + 10),
        )
        .unwrap();
    assert_eq!(proof.jkt, RFC_JKT);
    assert_eq!(proof.jti, "-BwC3ESc6acc2lTc");
    // The same proof at another URI, method or time is refused.
    let at = ts(RFC_IAT);
    assert_eq!(
        v.verify(
            RFC_PROOF,
            &request("GET", "https://server.example.com/token"),
            at
        ),
        Err(DpopError::MethodMismatch)
    );
    assert_eq!(
        v.verify(
            RFC_PROOF,
            &request("POST", "https://server.example.com/other"),
            at
        ),
        Err(DpopError::UriMismatch)
    );
    assert_eq!(
        v.verify(
            RFC_PROOF,
            &request("POST", "https://server.example.com/token"),
            ts(RFC_IAT + 61)
        ),
        Err(DpopError::Stale)
    );
}

/// A client key and the proofs it makes.
struct Client {
    signer: josekit::jws::alg::ecdsa::EcdsaJwsSigner,
    jwk: josekit::jwk::Jwk,
}

impl Client {
    fn new() -> Self {
        let pair = ES256.generate_key_pair().unwrap();
        let jwk = pair.to_jwk_public_key();
        let signer = ES256.signer_from_jwk(&pair.to_jwk_private_key()).unwrap();
        Self { signer, jwk }
    }

    fn proof_with(&self, header: impl FnOnce(&mut JwsHeader), claims: Value) -> String {
        let mut h = JwsHeader::new();
        h.set_token_type("dpop+jwt");
        h.set_jwk(self.jwk.clone());
        header(&mut h);
        let payload = serde_json::to_vec(&claims).unwrap();
        josekit::jws::serialize_compact(&payload, &h, &self.signer).unwrap()
    }

    fn proof(&self, claims: Value) -> String {
        self.proof_with(|_| {}, claims)
    }
}

const NOW: i64 = 1_800_000_000;
const URI: &str = "https://api.example.com/me";

fn claims() -> Value {
    json!({"jti": "j-1", "htm": "GET", "htu": URI, "iat": NOW})
}

fn verify(proof: &str) -> Result<token_jwt::dpop::VerifiedProof, DpopError> {
    DpopVerifier::new().verify(proof, &request("GET", URI), ts(NOW))
}

#[test]
fn a_proof_made_here_verifies_with_its_access_token_hash_and_nonce() {
    let c = Client::new();
    let token = "v4.public.some-access-token";
    let mut with = claims();
    with["ath"] = json!(access_token_hash(token));
    with["nonce"] = json!("n-1");
    let proof = c.proof(with);
    let ok = DpopVerifier::new()
        .verify(
            &proof,
            &DpopRequest {
                method: "GET",
                uri: "HTTPS://API.example.com:443/me?x=1#f",
                access_token: Some(token),
                nonce: Some("n-1"),
            },
            ts(NOW),
        )
        .unwrap();
    assert_eq!(ok.jkt.len(), 43);
    // Another token, another nonce, no nonce.
    let bad = |access_token, nonce| {
        DpopVerifier::new().verify(
            &proof,
            &DpopRequest {
                method: "GET",
                uri: URI,
                access_token,
                nonce,
            },
            ts(NOW),
        )
    };
    assert_eq!(
        bad(Some("other"), Some("n-1")),
        Err(DpopError::AccessTokenHash)
    );
    assert_eq!(bad(Some(token), Some("n-2")), Err(DpopError::NonceMismatch));
    let unbound = c.proof(claims());
    assert_eq!(
        DpopVerifier::new().verify(
            &unbound,
            &DpopRequest {
                method: "GET",
                uri: URI,
                access_token: Some(token),
                nonce: None
            },
            ts(NOW)
        ),
        Err(DpopError::AccessTokenHash),
        "a token presented needs ath"
    );
    assert_eq!(
        DpopVerifier::new().verify(
            &unbound,
            &DpopRequest {
                method: "GET",
                uri: URI,
                access_token: None,
                nonce: Some("n-1")
            },
            ts(NOW)
        ),
        Err(DpopError::NonceRequired)
    );
    assert_eq!(
        DpopError::NonceRequired.reason().as_str(),
        "DPoP nonce required"
    );
    assert_eq!(
        DpopError::BadSignature.reason().as_str(),
        "invalid DPoP proof"
    );
}

#[test]
fn an_eddsa_proof_verifies() {
    let pair = josekit::jws::EdDSA
        .generate_key_pair(josekit::jwk::alg::ed::EdCurve::Ed25519)
        .unwrap();
    let signer = josekit::jws::EdDSA
        .signer_from_jwk(&pair.to_jwk_private_key())
        .unwrap();
    let mut h = JwsHeader::new();
    h.set_token_type("dpop+jwt");
    h.set_jwk(pair.to_jwk_public_key());
    let proof =
        josekit::jws::serialize_compact(&serde_json::to_vec(&claims()).unwrap(), &h, &signer)
            .unwrap();
    verify(&proof).unwrap();
}

#[test]
fn each_rejection_has_its_reason() {
    let c = Client::new();
    // typ
    let p = c.proof_with(|h| h.set_token_type("JWT"), claims());
    assert_eq!(verify(&p), Err(DpopError::WrongType));
    // a private key in jwk
    let pair = ES256.generate_key_pair().unwrap();
    let private = pair.to_jwk_private_key();
    let p = c.proof_with(|h| h.set_jwk(private), claims());
    assert_eq!(verify(&p), Err(DpopError::PrivateKey));
    // no jwk
    let mut h = JwsHeader::new();
    h.set_token_type("dpop+jwt");
    let p = josekit::jws::serialize_compact(&serde_json::to_vec(&claims()).unwrap(), &h, &c.signer)
        .unwrap();
    assert_eq!(verify(&p), Err(DpopError::MissingKey));
    // signed by another key than the jwk's
    let other = Client::new();
    let p = c.proof_with(|h| h.set_jwk(other.jwk.clone()), claims());
    assert_eq!(verify(&p), Err(DpopError::BadSignature));
    // a jwk that does not fit the algorithm (a P-384 key under ES256)
    let p384 = josekit::jws::ES384
        .generate_key_pair()
        .unwrap()
        .to_jwk_public_key();
    let p = c.proof_with(|h| h.set_jwk(p384), claims());
    assert_eq!(verify(&p), Err(DpopError::KeyMismatch));
    // missing claims, one at a time
    for missing in ["jti", "htm", "htu", "iat"] {
        let mut cl = claims();
        cl.as_object_mut().unwrap().remove(missing);
        let r = verify(&c.proof(cl));
        assert!(
            matches!(r, Err(DpopError::MissingClaim(m)) if m == missing),
            "{missing}: {r:?}"
        );
    }
    // htm, htu, iat
    let mut cl = claims();
    cl["htm"] = json!("get");
    assert_eq!(verify(&c.proof(cl)), Err(DpopError::MethodMismatch));
    let mut cl = claims();
    cl["htu"] = json!("https://api.example.com/me/");
    assert_eq!(verify(&c.proof(cl)), Err(DpopError::UriMismatch));
    let mut cl = claims();
    cl["iat"] = json!(NOW - 61);
    assert_eq!(verify(&c.proof(cl)), Err(DpopError::Stale));
    let mut cl = claims();
    cl["iat"] = json!(NOW + 6);
    assert_eq!(verify(&c.proof(cl)), Err(DpopError::Stale));
    // a string iat is malformed, not a missing claim
    let mut cl = claims();
    cl["iat"] = json!("soon");
    assert!(matches!(verify(&c.proof(cl)), Err(DpopError::Malformed(_))));
}

#[test]
fn none_hmac_and_unlisted_algorithms_are_refused() {
    let c = Client::new();
    let header = |alg: &str| {
        URL_SAFE_NO_PAD.encode(
            json!({"typ": "dpop+jwt", "alg": alg, "jwk": serde_json::from_str::<Value>(&c.jwk.to_string()).unwrap()})
                .to_string(),
        )
    };
    let body = URL_SAFE_NO_PAD.encode(claims().to_string());
    for alg in ["none", "NONE", "HS256", "RS256", "ES384", "PS256"] {
        let p = format!("{}.{body}.", header(alg));
        assert_eq!(verify(&p), Err(DpopError::AlgorithmNotAllowed), "{alg}");
    }
    // An allow-list cannot be widened to HMAC.
    let v = DpopVerifier::new().algorithms([token_jwt::Algorithm::Es256]);
    assert_eq!(v.allowed_algorithms(), [token_jwt::Algorithm::Es256]);
    // Not a JWS at all, and too long.
    assert!(matches!(verify("a.b"), Err(DpopError::Malformed(_))));
    assert!(matches!(
        verify(&"a".repeat(9000)),
        Err(DpopError::Malformed(_))
    ));
}

#[test]
fn uris_are_compared_after_normalisation() {
    let n = |u| normalise_uri(u).unwrap();
    assert_eq!(
        n("HTTPS://Example.COM:443/a%7eb?q#f"),
        "https://example.com/a~b"
    );
    assert_eq!(n("http://example.com:80"), "http://example.com/");
    assert_eq!(
        n("https://example.com:8443/x%2fy"),
        "https://example.com:8443/x%2Fy"
    );
    assert_ne!(n("https://example.com/a"), n("https://example.com/A"));
    for bad in [
        "ftp://example.com/",
        "/relative",
        "https://user@example.com/",
        "https:///x",
    ] {
        assert!(normalise_uri(bad).is_none(), "{bad}");
    }
}
