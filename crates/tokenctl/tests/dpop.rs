//! `tokenctl dpop proof` and `tokenctl dpop thumbprint`, run as a binary: the proof
//! verifies as RFC 9449 asks (checked by the library's verifier), carries a public
//! key only, a fresh `jti`, `iat` now, `ath` and `nonce` when given; the thumbprint is
//! the `jkt` the verifier binds.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{TempDir, keygen, now, p, tokenctl, unb64};
use serde_json::Value;
use token_core::Timestamp;
use token_jwt::dpop::{DpopRequest, DpopVerifier, access_token_hash};

fn part(proof: &str, i: usize) -> Value {
    serde_json::from_slice(&unb64(proof.split('.').nth(i).unwrap())).unwrap()
}

#[test]
fn a_proof_verifies_and_names_its_key_for_es256_and_eddsa() {
    let dir = TempDir::new("dpop-proof");
    for (kind, alg) in [("es256", "ES256"), ("eddsa", "EdDSA")] {
        let (keys, _) = keygen(dir.path(), kind);
        let key = p(&keys, "secret.jwk");
        let args = |extra: &[&str]| {
            let mut a = vec![
                "dpop",
                "proof",
                "--key",
                key.as_str(),
                "--htm",
                "GET",
                "--htu",
                "https://api.example/me?page=2",
            ];
            a.extend_from_slice(extra);
            tokenctl(&a)
        };
        let run = args(&["--access-token", "tok-123", "--nonce", "n-1"]);
        let proof = run.ok().trim().to_owned();
        let header = part(&proof, 0);
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], alg);
        let jwk = header["jwk"].as_object().unwrap();
        assert!(!jwk.contains_key("d"), "{jwk:?}");
        let claims = part(&proof, 1);
        assert_eq!(claims["htm"], "GET");
        assert_eq!(claims["htu"], "https://api.example/me");
        assert_eq!(claims["ath"], access_token_hash("tok-123"));
        assert_eq!(claims["nonce"], "n-1");
        assert!((claims["iat"].as_i64().unwrap() - now()).abs() <= 5);
        let verified = DpopVerifier::new()
            .verify(
                &proof,
                &DpopRequest {
                    method: "GET",
                    uri: "https://api.example/me",
                    access_token: Some("tok-123"),
                    nonce: Some("n-1"),
                },
                Timestamp::from_unix_seconds(now()).unwrap(),
            )
            .unwrap();
        // The thumbprint command prints that key's jkt, from either half.
        for file in ["secret.jwk", "public.jwk"] {
            let run = tokenctl(&["dpop", "thumbprint", &p(&keys, file)]);
            assert_eq!(run.ok().trim(), verified.jkt, "{kind} {file}");
        }
        // A fresh jti every time; without --access-token, no ath.
        let again = args(&[]).ok().trim().to_owned();
        let claims2 = part(&again, 1);
        assert_ne!(claims2["jti"], claims["jti"]);
        assert!(claims2.get("ath").is_none());
        assert!(claims2.get("nonce").is_none());
        // --json gives the proof and the jkt.
        let run = tokenctl(&[
            "--json",
            "dpop",
            "proof",
            "--key",
            &key,
            "--htm",
            "POST",
            "--htu",
            "https://auth.example/login",
        ]);
        let out = run.json();
        assert_eq!(out["jkt"], verified.jkt.as_str());
        assert_eq!(part(out["proof"].as_str().unwrap(), 1)["htm"], "POST");
    }
}

#[test]
fn bad_keys_and_arguments_are_usage_errors() {
    let dir = TempDir::new("dpop-bad");
    let (rsa, _) = keygen(dir.path(), "rs256");
    let (ec, _) = keygen(dir.path(), "es256");
    let ec_key = p(&ec, "secret.jwk");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "--key".into(),
                p(&rsa, "secret.jwk"),
                "--htm".into(),
                "GET".into(),
                "--htu".into(),
                "https://a.example/".into(),
            ],
            "ES256 or EdDSA",
        ),
        (
            vec![
                "--key".into(),
                p(&ec, "public.jwk"),
                "--htm".into(),
                "GET".into(),
                "--htu".into(),
                "https://a.example/".into(),
            ],
            "cannot sign",
        ),
        (
            vec![
                "--key".into(),
                ec_key.clone(),
                "--htm".into(),
                "GET".into(),
                "--htu".into(),
                "a.example/me".into(),
            ],
            "--htu",
        ),
        (
            vec![
                "--key".into(),
                ec_key.clone(),
                "--htm".into(),
                "G T".into(),
                "--htu".into(),
                "https://a.example/".into(),
            ],
            "--htm",
        ),
        (
            vec![
                "--key".into(),
                ec_key,
                "--htm".into(),
                "GET".into(),
                "--htu".into(),
                "https://a.example/".into(),
                "--nonce".into(),
                "a\"b".into(),
            ],
            "--nonce",
        ),
    ];
    for (extra, needle) in cases {
        let mut args = vec!["dpop".to_owned(), "proof".to_owned()];
        args.extend(extra);
        let run = tokenctl(&args);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(run.stderr.contains(needle), "{needle}: {}", run.stderr);
        assert!(run.stdout.is_empty());
    }
    let run = tokenctl(&["dpop", "thumbprint", &dir.arg("missing.jwk")]);
    assert_eq!(run.code, 2, "{run:?}");
}
