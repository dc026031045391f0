//! `inspect`, `key`, `jwks`, `keyset`, `explain`, `api-key` and `demo` through the built
//! binary, and one-line errors with exit 2 on bad flags and files.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{TempDir, b64, jws, keygen, now, p, tokenctl};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use token_core::{Claims, TokenSigner};

/// The codes of the findings `inspect --json` reports for `token`, with the exit code.
fn findings(token: &str) -> (i32, Vec<(String, String)>) {
    let run = tokenctl(&["inspect", "--json", token]);
    let report = run.json();
    assert_eq!(report["verified"], false);
    let list = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert!(f["fix"].as_str().is_some_and(|s| !s.is_empty()), "{f}");
            assert!(f["message"].as_str().is_some_and(|s| !s.is_empty()), "{f}");
            (
                f["severity"].as_str().unwrap().to_owned(),
                f["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (run.code, list)
}

fn has(list: &[(String, String)], severity: &str, code: &str) -> bool {
    list.iter().any(|(s, c)| s == severity && c == code)
}

#[test]
fn inspect_decodes_without_verifying_and_finds_nothing_wrong_in_a_good_token() {
    let tmp = TempDir::new("inspect-good");
    let (dir, kid) = keygen(tmp.path(), "v4.public");
    let token = tokenctl(&[
        "issue",
        "--key",
        &p(&dir, "secret.paserk"),
        "--aud",
        "api",
        "--sub",
        "alice",
        "--claims",
        r#"{"role":"admin"}"#,
    ])
    .ok()
    .to_owned();
    let run = tokenctl(&["inspect", &token]);
    let text = run.ok();
    assert!(text.contains("PASETO v4.public"), "{text}");
    assert!(text.contains("UNVERIFIED"), "{text}");
    assert!(text.contains(&kid), "{text}");
    assert!(text.contains("\"role\": \"admin\""), "{text}");
    let report = tokenctl(&["inspect", "--json", &token]).json();
    assert_eq!(report["payload"]["sub"], "alice");
    assert_eq!(report["footer"]["kid"], kid.as_str());
    let (code, list) = findings(&token);
    assert_eq!(code, 0);
    assert!(list.iter().all(|(s, _)| s == "info"), "{list:?}");
    // Standard input works too.
    let run = common::run_with_stdin(&["inspect", "-"], Some(&token));
    run.ok();
}

#[test]
fn inspect_flags_alg_none_and_hmac() {
    let claims = json!({"sub": "a", "aud": "api", "jti": "j", "exp": now() + 60, "iat": now()});
    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(claims.to_string().as_bytes())
    );
    let (code, list) = findings(&none);
    assert_eq!(code, 1);
    assert!(has(&list, "error", "alg-none"), "{list:?}");
    let run = tokenctl(&["inspect", &none]);
    assert!(run.stdout.contains("alg-none"), "{run:#?}");
    assert_eq!(run.fails(1), "error: 1 finding of severity error");

    let hs = jws(
        &json!({"alg": "HS256", "typ": "JWT", "kid": "k"}),
        &claims,
        &[7; 32],
    );
    let (code, list) = findings(&hs);
    assert_eq!(code, 0, "HMAC is a warning: {list:?}");
    assert!(has(&list, "warning", "hmac"), "{list:?}");
}

#[test]
fn inspect_flags_deprecated_paseto_versions() {
    let body = b64(&[br#"{"exp":"2099-01-01T00:00:00Z"}"#.as_slice(), &[0u8; 64]].concat());
    let (code, list) = findings(&format!("v2.public.{body}"));
    assert!(has(&list, "warning", "deprecated-version"), "{list:?}");
    assert_eq!(code, 0);
    let v1 = format!("v1.local.{}", b64(&[1u8; 80]));
    let (code, list) = findings(&v1);
    assert!(has(&list, "error", "deprecated-version"), "{list:?}");
    assert_eq!(code, 1);
}

#[test]
fn inspect_flags_missing_claims_and_long_lifetimes() {
    // Signed for real, but with no exp, jti or aud.
    let key = token_jwt::SigningKey::generate(token_jwt::Algorithm::Es256).unwrap();
    let token = key.sign(&Claims::new(()).subject("alice")).unwrap();
    let (code, list) = findings(token.expose_secret());
    assert_eq!(code, 1);
    assert!(has(&list, "error", "missing-exp"), "{list:?}");
    assert!(has(&list, "warning", "missing-jti"), "{list:?}");
    assert!(has(&list, "warning", "missing-aud"), "{list:?}");

    let tmp = TempDir::new("inspect-lifetime");
    let (dir, _) = keygen(tmp.path(), "eddsa");
    let long = tokenctl(&[
        "issue",
        "--key",
        &p(&dir, "secret.jwk"),
        "--aud",
        "api",
        "--ttl",
        "1d",
    ]);
    // issue warns on stderr, and still issues.
    assert!(long.stderr.contains("lifetime-too-long"), "{long:#?}");
    let (code, list) = findings(long.ok());
    assert_eq!(code, 0);
    assert!(has(&list, "warning", "lifetime-too-long"), "{list:?}");
    // A registered claim of the wrong type.
    let bad = jws(
        &json!({"alg": "ES256", "kid": "k"}),
        &json!({"exp": "tomorrow"}),
        &[1; 64],
    );
    let (code, list) = findings(&bad);
    assert_eq!(code, 1);
    assert!(has(&list, "error", "malformed-claims"), "{list:?}");
}

#[test]
fn inspect_flags_sensitive_claims_in_readable_payloads() {
    let tmp = TempDir::new("inspect-sensitive");
    let (dir, _) = keygen(tmp.path(), "v4.public");
    // `issue` refuses what `inspect` flags as an error (and `TokenService` refuses).
    let issued = tokenctl(&[
        "issue",
        "--key",
        &p(&dir, "secret.paserk"),
        "--aud",
        "api",
        "--claims",
        r#"{"user_email":"alice@example.com"}"#,
    ]);
    let line = issued.fails(1);
    assert!(
        line.starts_with("error: not issued: sensitive-claim: claim `user_email`")
            && line.contains("sensitive-value"),
        "{line}"
    );
    assert!(issued.stdout.is_empty(), "{issued:#?}");
    let token = jws(
        &json!({"alg": "ES256", "kid": "k"}),
        &json!({"exp": now() + 60, "user_email": "alice@example.com"}),
        &[1; 64],
    );
    let (code, list) = findings(&token);
    assert_eq!(code, 1);
    assert!(has(&list, "error", "sensitive-claim"), "{list:?}");
    assert!(has(&list, "error", "sensitive-value"), "{list:?}");

    // Every spelling, and every hit: camelCase and PascalCase names, nested ones.
    let token = jws(
        &json!({"alg": "ES256", "kid": "k"}),
        &json!({
            "exp": now() + 60,
            "userEmail": "x",
            "CreditCard": "x",
            "session": {"refreshToken": "x", "keys": [{"apiKey": "x"}]},
            "emailed_at_count": 3,
        }),
        &[1; 64],
    );
    let report = tokenctl(&["inspect", "--json", &token]).json();
    let mut flagged: Vec<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "sensitive-claim")
        .map(|f| {
            let message = f["message"].as_str().unwrap();
            message.split('`').nth(1).unwrap().to_owned()
        })
        .collect();
    flagged.sort();
    assert_eq!(
        flagged,
        [
            "CreditCard",
            "session.keys[0].apiKey",
            "session.refreshToken",
            "userEmail"
        ]
    );

    for claims in [
        json!({"pm": "4111 1111 1111 1111", "exp": now() + 60}),
        json!({"note": {"contact": "bob@example.org"}, "exp": now() + 60}),
        json!({"upstream": "sk_live_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "exp": now() + 60}),
    ] {
        let token = jws(&json!({"alg": "ES256", "kid": "k"}), &claims, &[1; 64]);
        let (code, list) = findings(&token);
        assert_eq!(code, 1, "{claims}");
        assert!(has(&list, "error", "sensitive-value"), "{claims}: {list:?}");
    }
    // An encrypted payload may carry them: nothing is readable to lint.
    let (local, _) = keygen(tmp.path(), "v4.local");
    let token = tokenctl(&[
        "issue",
        "--key",
        &p(&local, "local.paserk"),
        "--claims",
        r#"{"card_number":"4111111111111111"}"#,
    ]);
    let (code, list) = findings(token.ok());
    assert_eq!(code, 0, "{list:?}");
    assert!(has(&list, "info", "encrypted"), "{list:?}");
}

#[test]
fn inspect_flags_oversized_and_unrecognized_tokens() {
    let claims = json!({"exp": now() + 60, "blob": "x".repeat(5000)});
    let big = jws(&json!({"alg": "ES256", "kid": "k"}), &claims, &[1; 64]);
    let (code, list) = findings(&big);
    assert!(has(&list, "warning", "oversized"), "{list:?}");
    assert_eq!(code, 0);
    let huge = jws(
        &json!({"alg": "ES256"}),
        &json!({"blob": "x".repeat(40_000)}),
        &[1; 64],
    );
    let (code, list) = findings(&huge);
    assert!(has(&list, "error", "oversized"), "{list:?}");
    assert_eq!(code, 1);
    let (code, list) = findings("Bearer abc");
    assert!(has(&list, "error", "unrecognized"), "{list:?}");
    assert_eq!(code, 1);
}

#[test]
fn inspect_flags_jose_shape_confusion_and_jwe_headers() {
    // A JWS whose header is a JWE header.
    let confused = jws(
        &json!({"alg": "dir", "enc": "A256GCM"}),
        &json!({"exp": now() + 60}),
        &[1; 16],
    );
    let (code, list) = findings(&confused);
    assert!(has(&list, "error", "jws-jwe-confusion"), "{list:?}");
    assert_eq!(code, 1);
    // A JWE naming a signature algorithm; one with RSA1_5; one compressed.
    let jwe = |header: Value| {
        format!(
            "{}.{}.{}.{}.{}",
            b64(header.to_string().as_bytes()),
            b64(&[2; 40]),
            b64(&[3; 12]),
            b64(&[4; 30]),
            b64(&[5; 16])
        )
    };
    let (_, list) = findings(&jwe(json!({"alg": "HS256", "enc": "A256GCM"})));
    assert!(has(&list, "error", "jws-jwe-confusion"), "{list:?}");
    let (_, list) = findings(&jwe(json!({"alg": "RSA1_5", "enc": "A128CBC-HS256"})));
    assert!(has(&list, "error", "rsa1_5"), "{list:?}");
    assert!(has(&list, "warning", "unsupported-enc"), "{list:?}");
    let (code, list) = findings(&jwe(
        json!({"alg": "ECDH-ES+A256KW", "enc": "A256GCM", "zip": "DEF", "kid": "k"}),
    ));
    assert!(has(&list, "warning", "compression"), "{list:?}");
    assert!(has(&list, "warning", "unsigned-jwe"), "{list:?}");
    assert_eq!(code, 0);
    // Keys named by the token.
    let jku = jws(
        &json!({"alg": "RS256", "jku": "https://evil.example/keys", "kid": "k"}),
        &json!({"exp": now() + 60, "aud": "a", "jti": "j"}),
        &[1; 256],
    );
    let (_, list) = findings(&jku);
    assert!(has(&list, "warning", "key-in-header"), "{list:?}");
}

#[test]
fn inspect_checks_opaque_checksums() {
    let tmp = TempDir::new("inspect-opaque");
    let db = format!("sqlite://{}", tmp.join("keys.db").display());
    let key = tokenctl(&[
        "api-key", "create", "--db", &db, "--name", "n", "--scopes", "a",
    ])
    .ok()
    .to_owned();
    let (code, list) = findings(&key);
    assert_eq!(code, 0);
    assert!(has(&list, "info", "opaque"), "{list:?}");
    let mut typo = key.clone().into_bytes();
    let i = typo.len() - 12;
    typo[i] = if typo[i] == b'a' { b'b' } else { b'a' };
    let (code, list) = findings(&String::from_utf8(typo).unwrap());
    assert_eq!(code, 1);
    assert!(has(&list, "error", "bad-checksum"), "{list:?}");
}

#[test]
fn key_ids_and_inspection() {
    let tmp = TempDir::new("key-ids");
    let (local, lid) = keygen(tmp.path(), "v4.local");
    let (public, pid) = keygen(tmp.path(), "v3.public");
    let (es, kid) = keygen(tmp.path(), "es384");
    assert_eq!(
        tokenctl(&["key", "id", &p(&local, "local.paserk")]).ok(),
        lid
    );
    assert_eq!(
        tokenctl(&["key", "id", &p(&public, "public.paserk")]).ok(),
        pid
    );
    assert!(
        tokenctl(&["key", "id", &p(&public, "secret.paserk")])
            .ok()
            .starts_with("k3.sid.")
    );
    for f in ["secret.jwk", "public.jwk", "secret.pem", "public.pem"] {
        assert_eq!(tokenctl(&["key", "id", &p(&es, f)]).ok(), kid, "{f}");
    }

    let local_key = p(&local, "local.paserk");
    let ok = tokenctl(&[
        "key",
        "inspect",
        &local_key,
        "--expect-version",
        "4",
        "--expect-type",
        "local",
        "--json",
    ]);
    let d = ok.json();
    assert_eq!(d["type"], "k4.local");
    assert_eq!(d["id"], lid.as_str());
    let line = tokenctl(&["key", "inspect", &local_key, "--expect-version", "3"])
        .fails(1)
        .to_owned();
    assert!(line.contains("version 3"), "{line}");
    tokenctl(&["key", "inspect", &local_key, "--expect-type", "public"]).fails(1);
    tokenctl(&[
        "key",
        "inspect",
        &p(&public, "secret.paserk"),
        "--expect-type",
        "secret",
        "--expect-version",
        "3",
    ])
    .ok();
    tokenctl(&[
        "key",
        "inspect",
        &p(&es, "secret.jwk"),
        "--expect-type",
        "secret",
    ])
    .ok();
    tokenctl(&[
        "key",
        "inspect",
        &p(&es, "public.pem"),
        "--expect-type",
        "public",
    ])
    .ok();
    tokenctl(&[
        "key",
        "inspect",
        &p(&es, "public.jwk"),
        "--expect-version",
        "4",
    ])
    .fails(1);
    // Malformed keys are findings here (exit 1); unreadable files are input errors.
    let bad = tmp.write("bad.paserk", "k4.local.not-a-key!");
    tokenctl(&["key", "inspect", &bad.display().to_string()]).fails(1);
    let bad_jwk = tmp.write(
        "bad.jwk",
        r#"{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}"#,
    );
    tokenctl(&["key", "inspect", &bad_jwk.display().to_string()]).fails(1);
    tokenctl(&["key", "inspect", &tmp.arg("missing")]).fails(2);
    tokenctl(&["key", "id", &bad.display().to_string()]).fails(2);
    tokenctl(&["key", "inspect", &local_key, "--expect-version", "5"]).fails(2);
}

/// Each key format gets its library's checks, at load time, on every command: a
/// small-order Ed25519 point was refused as an OKP JWK but accepted as a `k4.public`;
/// a `k3.public` with the SEC1 prefix `0x05` was accepted, with the `k3.pid` of the
/// `0x02` form; `key inspect` passed wrapped, sealed and password-protected PASERKs of
/// the wrong length; an RSA JWK with leading zero bytes in `n` or `e` was accepted; a
/// PEM file holding two keys was read up to the first; a PASETO key set listing a key
/// twice was accepted while a JWKS with a repeated `kid` is refused.
#[test]
#[allow(clippy::too_many_lines)] // one case per key format, then the good forms
fn every_key_format_gets_its_librarys_checks() {
    use common::unb64;
    let tmp = TempDir::new("key-checks");
    let (v4, _) = keygen(tmp.path(), "v4.public");
    let (v3, _) = keygen(tmp.path(), "v3.public");
    let (rsa, _) = keygen(tmp.path(), "rs256");
    let (es, _) = keygen(tmp.path(), "es256");
    let (ed, _) = keygen(tmp.path(), "eddsa");
    let read = |dir: &std::path::Path, name: &str| {
        std::fs::read_to_string(dir.join(name))
            .unwrap()
            .trim()
            .to_owned()
    };
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let k3 = read(&v3, "public.paserk");
    let mut k3_bytes = unb64(k3.strip_prefix("k3.public.").unwrap());
    k3_bytes[0] = 0x05;
    let rsa_jwk: Value = serde_json::from_str(&read(&rsa, "public.jwk")).unwrap();
    let padded = |member: &str| {
        let mut jwk = rsa_jwk.clone();
        let mut bytes = vec![0u8];
        bytes.extend(unb64(jwk[member].as_str().unwrap()));
        jwk[member] = json!(b64(&bytes));
        jwk.to_string()
    };
    let keyset = tokenctl(&["keyset", "--key", &p(&v4, "public.paserk")]).json();
    let entry = keyset["keys"][0].clone();
    let jwks = tokenctl(&["jwks", "--key", &p(&es, "public.jwk")]).json();
    let jwk = jwks["keys"][0].clone();
    let body = |n: usize| b64(&vec![0u8; n]);
    let issue = |dir: &std::path::Path, name: &str| {
        tokenctl(&["issue", "--key", &p(dir, name)]).ok().to_owned()
    };
    let paseto = issue(&v4, "secret.paserk");
    let (eddsa, rs256, es256) = (
        issue(&ed, "secret.jwk"),
        issue(&rsa, "secret.jwk"),
        issue(&es, "secret.jwk"),
    );
    let bad = [
        (
            "small-order.paserk",
            format!("k4.public.{}", b64(&identity)),
            "not of prime order",
            &paseto,
        ),
        (
            "small-order.jwk",
            json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&identity)}).to_string(),
            "small order",
            &eddsa,
        ),
        (
            "prefix-05.paserk",
            format!("k3.public.{}", b64(&k3_bytes)),
            "SEC1 prefix",
            &paseto,
        ),
        (
            "short.local-wrap.pie",
            format!("k4.local-wrap.pie.{}", body(50)),
            "wrong PASERK length",
            &paseto,
        ),
        (
            "short.seal",
            format!("k4.seal.{}", body(50)),
            "wrong PASERK length",
            &paseto,
        ),
        (
            "short.local-pw",
            format!("k4.local-pw.{}", body(50)),
            "wrong PASERK length",
            &paseto,
        ),
        ("padded-n.jwk", padded("n"), "leading zero", &rs256),
        ("padded-e.jwk", padded("e"), "leading zero", &rs256),
        (
            "two.pem",
            format!("{}\n{}\n", read(&es, "public.pem"), read(&ed, "public.pem")),
            "more than one PEM block",
            &es256,
        ),
        (
            "twice.keyset",
            json!({"keys": [entry.clone(), entry]}).to_string(),
            "more than once",
            &paseto,
        ),
        (
            "twice.jwks",
            json!({"keys": [jwk.clone(), jwk]}).to_string(),
            "already",
            &es256,
        ),
    ];
    for (name, contents, why, token) in bad {
        let file = tmp.write(name, &contents).display().to_string();
        let line = tokenctl(&["key", "inspect", &file]).fails(1).to_owned();
        assert!(line.contains(why), "{name}: {line}");
        tokenctl(&["key", "id", &file]).fails(2);
        let line = tokenctl(&["verify", "--key", &file, token])
            .fails(2)
            .to_owned();
        assert!(line.contains(why), "{name}: {line}");
    }
    // What the operations refuse, the loader refused first: same exit, same reason.
    let wrapping = p(&keygen(tmp.path(), "v4.local").0, "local.paserk");
    let line = tokenctl(&[
        "key",
        "unwrap",
        "--with",
        &wrapping,
        &tmp.arg("short.local-wrap.pie"),
    ])
    .fails(2)
    .to_owned();
    assert!(line.contains("wrong PASERK length"), "{line}");
    // The good forms pass.
    for file in [
        p(&v4, "public.paserk"),
        p(&v3, "public.paserk"),
        p(&rsa, "public.jwk"),
        p(&es, "public.pem"),
    ] {
        tokenctl(&["key", "inspect", &file]).ok();
    }
}

#[test]
fn key_wrap_and_unwrap_round_trip() {
    let tmp = TempDir::new("wrap");
    for v in ["v4", "v3"] {
        let (w, _) = keygen(tmp.path(), &format!("{v}.local"));
        let wrapping = p(&w, "local.paserk");
        let other_tmp = TempDir::new("wrap-other");
        let (wrong, _) = keygen(other_tmp.path(), &format!("{v}.local"));
        let (local, _) = keygen(&tmp.join(&format!("{v}-keys")), &format!("{v}.local"));
        let (public, _) = keygen(&tmp.join(&format!("{v}-keys")), &format!("{v}.public"));
        for (key, kind) in [
            (p(&local, "local.paserk"), "local"),
            (p(&public, "secret.paserk"), "secret"),
        ] {
            let wrapped = tokenctl(&["key", "wrap", "--with", &wrapping, &key])
                .ok()
                .to_owned();
            let k = if v == "v4" { "k4" } else { "k3" };
            assert!(
                wrapped.starts_with(&format!("{k}.{kind}-wrap.pie.")),
                "{wrapped}"
            );
            let file = tmp.write(&format!("{v}-{kind}.wrapped"), &wrapped);
            let file = file.display().to_string();
            let recovered = tokenctl(&["key", "unwrap", "--with", &wrapping, &file])
                .ok()
                .to_owned();
            assert_eq!(recovered, std::fs::read_to_string(&key).unwrap().trim());
            tokenctl(&["key", "unwrap", "--with", &p(&wrong, "local.paserk"), &file])
                .fails_with(1, "error: cannot recover the key: wrong wrapping key");
            // A wrapped key must be unwrapped before it verifies or issues anything.
            tokenctl(&["verify", "--key", &file, "v4.local.AAAA"]).fails(2);
            tokenctl(&["issue", "--key", &file]).fails(2);
        }
    }
    // Versions must agree; only local keys wrap.
    let (w4, _) = keygen(&tmp.join("mix"), "v4.local");
    let (l3, _) = keygen(&tmp.join("mix"), "v3.local");
    tokenctl(&[
        "key",
        "wrap",
        "--with",
        &p(&w4, "local.paserk"),
        &p(&l3, "local.paserk"),
    ])
    .fails(2);
    let (es, _) = keygen(&tmp.join("mix"), "es256");
    tokenctl(&[
        "key",
        "wrap",
        "--with",
        &p(&es, "secret.jwk"),
        &p(&l3, "local.paserk"),
    ])
    .fails(2);
}

#[test]
fn key_seal_and_unseal_round_trip() {
    let tmp = TempDir::new("seal");
    for v in ["v4", "v3"] {
        let (local, _) = keygen(&tmp.join(v), &format!("{v}.local"));
        let (recipient, _) = keygen(&tmp.join(v), &format!("{v}.public"));
        let (stranger, _) = keygen(&tmp.join(&format!("{v}-other")), &format!("{v}.public"));
        let key = p(&local, "local.paserk");
        let sealed = tokenctl(&["key", "seal", "--to", &p(&recipient, "public.paserk"), &key])
            .ok()
            .to_owned();
        assert!(sealed.contains(".seal."), "{sealed}");
        let file = tmp
            .write(&format!("{v}.sealed"), &sealed)
            .display()
            .to_string();
        let opened = tokenctl(&[
            "key",
            "unseal",
            "--with",
            &p(&recipient, "secret.paserk"),
            &file,
        ])
        .ok()
        .to_owned();
        assert_eq!(opened, std::fs::read_to_string(&key).unwrap().trim());
        tokenctl(&[
            "key",
            "unseal",
            "--with",
            &p(&stranger, "secret.paserk"),
            &file,
        ])
        .fails_with(1, "error: cannot recover the key: wrong recipient key");
        // Unsealing needs the secret key.
        tokenctl(&[
            "key",
            "unseal",
            "--with",
            &p(&recipient, "public.paserk"),
            &file,
        ])
        .fails(2);
    }
}

#[test]
fn key_protect_and_unprotect_round_trip() {
    let tmp = TempDir::new("protect");
    let password = tmp.write("password", "correct horse battery staple\n");
    let wrong = tmp.write("wrong", "Tr0ub4dor&3\n");
    let empty = tmp.write("empty", "\n");
    let (password, wrong, empty) = (
        password.display().to_string(),
        wrong.display().to_string(),
        empty.display().to_string(),
    );
    let (local, _) = keygen(tmp.path(), "v4.local");
    let (secret, _) = keygen(tmp.path(), "v3.public");
    for (key, prefix) in [
        (p(&local, "local.paserk"), "k4.local-pw."),
        (p(&secret, "secret.paserk"), "k3.secret-pw."),
    ] {
        let run = tokenctl(&[
            "key",
            "protect",
            "--password-file",
            &password,
            &key,
            "--json",
        ]);
        let out = run.json();
        let protected = out["key"].as_str().unwrap();
        assert!(protected.starts_with(prefix), "{protected}");
        let file = tmp
            .write(&format!("{prefix}protected"), protected)
            .display()
            .to_string();
        let recovered = tokenctl(&["key", "unprotect", "--password-file", &password, &file])
            .ok()
            .to_owned();
        assert_eq!(recovered, std::fs::read_to_string(&key).unwrap().trim());
        tokenctl(&["key", "unprotect", "--password-file", &wrong, &file])
            .fails_with(1, "error: cannot recover the key: wrong password");
    }
    tokenctl(&[
        "key",
        "protect",
        "--password-file",
        &empty,
        &p(&local, "local.paserk"),
    ])
    .fails(2);
    tokenctl(&[
        "key",
        "protect",
        "--password-file",
        &tmp.arg("nope"),
        &p(&local, "local.paserk"),
    ])
    .fails(2);
}

/// The cost stored in a `*-pw` PASERK is the writer's choice: over the default limits
/// (here 1 000 001 PBKDF2 iterations, 512 MiB of Argon2id) it is refused before any
/// hashing, with the parameter named.
#[test]
fn key_unprotect_refuses_costs_over_the_limits() {
    let tmp = TempDir::new("pw-limits");
    let password = tmp.write("password", "pw\n").display().to_string();
    let k3 = [
        &[7u8; 32][..],
        &1_000_001u32.to_be_bytes(),
        &[0u8; 16 + 32 + 48],
    ]
    .concat();
    let k4 = [
        &[7u8; 16][..],
        &(512u64 << 20).to_be_bytes(),
        &2u32.to_be_bytes(),
        &1u32.to_be_bytes(),
        &[0u8; 24 + 32 + 32],
    ]
    .concat();
    for (paserk, parameter) in [
        (
            format!("k3.local-pw.{}", b64(&k3)),
            "k3 iterations is 1000001",
        ),
        (
            format!("k4.local-pw.{}", b64(&k4)),
            "k4 memlimit is 536870912",
        ),
    ] {
        let file = tmp.write("key.paserk", &paserk).display().to_string();
        let line = tokenctl(&["key", "unprotect", "--password-file", &password, &file])
            .fails(2)
            .to_owned();
        assert!(line.contains(parameter), "{line}");
    }
}

#[test]
fn jwks_and_keyset_shapes() {
    let tmp = TempDir::new("sets");
    let (es, es_kid) = keygen(tmp.path(), "es256");
    let (ed, ed_kid) = keygen(tmp.path(), "eddsa");
    let jwks = tokenctl(&[
        "jwks",
        "--json",
        "--key",
        &p(&es, "secret.jwk"),
        &p(&ed, "public.pem"),
    ])
    .json();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    for (key, kid, alg) in [(&keys[0], &es_kid, "ES256"), (&keys[1], &ed_kid, "EdDSA")] {
        assert_eq!(key["kid"], kid.as_str());
        assert_eq!(key["alg"], alg);
        assert_eq!(key["use"], "sig");
        assert!(key.get("d").is_none(), "no private member: {key}");
    }
    // The same key twice is listed once.
    let twice = tokenctl(&[
        "jwks",
        "--key",
        &p(&es, "public.jwk"),
        &p(&es, "public.pem"),
    ])
    .json();
    assert_eq!(twice["keys"].as_array().unwrap().len(), 1);

    let (a, a_pid) = keygen(tmp.path(), "v4.public");
    let (b, b_pid) = keygen(tmp.path(), "v3.public");
    let set = tokenctl(&[
        "keyset",
        "--key",
        &p(&a, "secret.paserk"),
        &p(&b, "public.paserk"),
    ])
    .json();
    let keys = set["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0]["kid"], a_pid.as_str());
    assert!(
        keys[0]["paserk"]
            .as_str()
            .unwrap()
            .starts_with("k4.public.")
    );
    assert_eq!(keys[0]["version"], "v4");
    assert_eq!(keys[0]["purpose"], "public");
    assert_eq!(keys[1]["kid"], b_pid.as_str());
    assert!(
        keys[1]["paserk"]
            .as_str()
            .unwrap()
            .starts_with("k3.public.")
    );
    // A key set whose kid does not match its key is refused.
    let mut forged = set.clone();
    forged["keys"][0]["kid"] = json!(b_pid);
    let forged_file = tmp.write("forged.json", &forged.to_string());
    let token = tokenctl(&["issue", "--key", &p(&a, "secret.paserk")])
        .ok()
        .to_owned();
    tokenctl(&[
        "verify",
        "--key",
        &forged_file.display().to_string(),
        &token,
    ])
    .fails(2);

    // Each command refuses the other family's keys, and secrets.
    tokenctl(&["jwks", "--key", &p(&a, "public.paserk")]).fails(2);
    tokenctl(&["keyset", "--key", &p(&es, "public.jwk")]).fails(2);
    let (local, _) = keygen(tmp.path(), "v4.local");
    tokenctl(&["keyset", "--key", &p(&local, "local.paserk")]).fails(2);
    let oct = tmp.write(
        "oct.jwk",
        token_jwt::DirectKey::generate()
            .unwrap()
            .dangerous_to_secret_jwk()
            .expose_secret(),
    );
    tokenctl(&["jwks", "--key", &oct.display().to_string()]).fails(2);
}

#[test]
fn explain_prints_the_decision_matrix() {
    let text = tokenctl(&["explain"]).ok().to_owned();
    for job in [
        "access",
        "refresh",
        "payment",
        "api-key",
        "password-reset",
        "session",
        "service-to-service",
    ] {
        assert!(text.contains(job), "{job}: {text}");
    }
    let rows = tokenctl(&["explain", "--json"]).json();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 8);
    for row in rows {
        for field in ["job", "token", "lifetime", "rules"] {
            assert!(row.get(field).is_some(), "{field}: {row}");
        }
        assert!(row["rules"].is_array());
    }
    assert_eq!(rows[0]["job"], "access");
    assert_eq!(rows[0]["lifetime"], "15 min");

    let tmp = TempDir::new("explain");
    let config = tmp.write(
        "tessera.toml",
        "issuer = \"https://id.example\"\naudience = \"shop\"\n[access]\nttl = \"10m\"\n[dangerous]\npayment_ttl = \"10m\"\n",
    );
    let rows = tokenctl(&[
        "explain",
        "--json",
        "--config",
        &config.display().to_string(),
    ])
    .json();
    assert_eq!(rows[0]["lifetime"], "10 min");
    assert!(rows[0]["rules"].to_string().contains("https://id.example"));
    let text = tokenctl(&["explain", "--config", &config.display().to_string()])
        .ok()
        .to_owned();
    assert!(text.contains("WARNING"), "{text}");
    let over = tmp.write(
        "over.toml",
        "issuer = \"a\"\naudience = \"b\"\n[access]\nttl = \"1h\"\n",
    );
    tokenctl(&["explain", "--config", &over.display().to_string()]).fails(2);
    tokenctl(&["explain", "--config", &tmp.arg("missing.toml")]).fails(2);
}

#[test]
fn api_key_create_verify_revoke_and_reasons() {
    let tmp = TempDir::new("api-keys");
    let db = format!("sqlite://{}", tmp.join("keys.db").display());
    let created = tokenctl(&[
        "api-key",
        "create",
        "--db",
        &db,
        "--name",
        "ci",
        "--scopes",
        "read,deploy",
        "--env",
        "live",
        "--json",
    ])
    .json();
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with("sk_live_"));
    assert_eq!(created["prefix"], "sk_live_");
    assert_eq!(created["scopes"], json!(["read", "deploy"]));

    let info = tokenctl(&["api-key", "verify", "--db", &db, &key, "--json"]).json();
    assert_eq!(info["id"], id.as_str());
    assert_eq!(info["status"], "active");
    let text = tokenctl(&["api-key", "verify", "--db", &db, &key])
        .ok()
        .to_owned();
    assert!(text.contains("read,deploy"), "{text}");
    assert!(!text.contains(&key), "the key is never printed back");

    tokenctl(&["api-key", "revoke", &id, "--db", &db]).ok();
    tokenctl(&["api-key", "verify", "--db", &db, &key]).rejected("revoked");

    // Malformed, checksum, unknown.
    tokenctl(&["api-key", "verify", "--db", &db, "sk_live_short"]).rejected("malformed");
    let mut typo = key.clone().into_bytes();
    let i = typo.len() - 12;
    typo[i] = if typo[i] == b'a' { b'b' } else { b'a' };
    tokenctl(&[
        "api-key",
        "verify",
        "--db",
        &db,
        &String::from_utf8(typo).unwrap(),
    ])
    .rejected("checksum");
    let stranger_db = format!("sqlite://{}", tmp.join("other.db").display());
    // A SQLite database that does not exist is not created by `verify`.
    tokenctl(&["api-key", "verify", "--db", &stranger_db, &key])
        .fails_with(2, "error: no database at");
    let stranger = tokenctl(&["api-key", "create", "--db", &stranger_db, "--name", "x"])
        .ok()
        .to_owned();
    tokenctl(&["api-key", "verify", "--db", &db, &stranger]).rejected("unknown");
    // Expired.
    let test_key = tokenctl(&[
        "api-key",
        "create",
        "--db",
        &db,
        "--name",
        "t",
        "--env",
        "test",
        "--expires",
        "1s",
    ])
    .ok()
    .to_owned();
    assert!(test_key.starts_with("sk_test_"));
    std::thread::sleep(std::time::Duration::from_millis(2100));
    tokenctl(&["api-key", "verify", "--db", &db, &test_key]).rejected("expired");
}

#[test]
fn api_key_roll_list_and_owners() {
    let tmp = TempDir::new("api-keys-roll");
    let db = format!("sqlite://{}", tmp.join("keys.db").display());
    let first = tokenctl(&["api-key", "create", "--db", &db, "--name", "ci", "--json"]).json();
    let key = first["key"].as_str().unwrap().to_owned();
    let id = first["id"].as_str().unwrap().to_owned();
    tokenctl(&["api-key", "revoke", &id, "--db", &db]).ok();
    // Roll with overlap: both work until the overlap ends.
    let live = tokenctl(&["api-key", "create", "--db", &db, "--name", "svc", "--json"]).json();
    let rolled = tokenctl(&[
        "api-key",
        "roll",
        live["id"].as_str().unwrap(),
        "--overlap",
        "1h",
        "--db",
        &db,
        "--json",
    ])
    .json();
    assert_eq!(rolled["previous"]["id"], live["id"]);
    tokenctl(&[
        "api-key",
        "verify",
        "--db",
        &db,
        live["key"].as_str().unwrap(),
    ])
    .ok();
    tokenctl(&[
        "api-key",
        "verify",
        "--db",
        &db,
        rolled["key"].as_str().unwrap(),
    ])
    .ok();

    // List: metadata only.
    let list = tokenctl(&["api-key", "list", "--db", &db, "--json"]);
    assert!(
        !list.stdout.contains("sk_live_") || !list.stdout.contains(&key[8..]),
        "no secrets"
    );
    let rows = list.json();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert!(
        rows.iter()
            .any(|r| r["id"] == id.as_str() && r["status"] == "revoked")
    );
    for r in rows {
        assert!(r.get("key").is_none(), "{r}");
    }
    let table = tokenctl(&["api-key", "list", "--db", &db]).ok().to_owned();
    assert!(table.contains(&id) && !table.contains(&key), "{table}");

    // Keys of another owner are out of reach without --owner.
    let other = tokenctl(&[
        "api-key", "create", "--db", &db, "--owner", "acct_9", "--name", "o", "--json",
    ])
    .json();
    let other_id = other["id"].as_str().unwrap();
    tokenctl(&["api-key", "revoke", other_id, "--db", &db]).fails(1);
    tokenctl(&[
        "api-key", "revoke", other_id, "--db", &db, "--owner", "acct_9",
    ])
    .ok();

    // Usage errors.
    tokenctl(&["api-key", "list"]).fails(2);
    tokenctl(&["api-key", "list", "--db", "mysql://localhost/x"]).fails(2);
    tokenctl(&[
        "api-key", "create", "--db", &db, "--name", "x", "--env", "prod",
    ])
    .fails(2);
    tokenctl(&["api-key", "roll", &id, "--db", &db]).fails(2);
}

#[test]
fn demo_runs_every_job_and_exits_zero() {
    let start = std::time::Instant::now();
    let run = tokenctl(&["demo"]);
    let text = run.ok();
    assert!(
        text.contains("all ") && text.contains("behaved as expected"),
        "{text}"
    );
    assert!(!text.contains("FAIL"), "{text}");
    assert!(start.elapsed() < std::time::Duration::from_secs(30));

    let tmp = TempDir::new("demo");
    let db = format!("sqlite://{}", tmp.join("demo.db").display());
    // Twice on the same database: users are per run.
    for _ in 0..2 {
        let report = tokenctl(&["demo", "--json", "--db", &db]).json();
        assert_eq!(report["ok"], true);
        let steps = report["steps"].as_array().unwrap();
        assert!(steps.len() >= 15);
        for step in steps {
            assert_eq!(step["ok"], true, "{step}");
            for field in ["name", "expected", "actual"] {
                assert!(step[field].is_string(), "{step}");
            }
        }
        let names: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
        for needle in [
            "replay",
            "payment",
            "API key",
            "password reset",
            "revoked by jti",
            "dual verifier",
        ] {
            assert!(
                names.iter().any(|n| n.contains(needle)),
                "{needle}: {names:?}"
            );
        }
    }
    assert!(tmp.join("demo.db").exists());
}

/// Invocations that must each fail with exit 2 and one line on stderr.
fn bad_invocations(tmp: &TempDir) -> Vec<Vec<String>> {
    let garbage = tmp.write("garbage.key", "hello world\n");
    let garbage = garbage.display().to_string();
    let not_utf8 = tmp.join("binary.key");
    std::fs::write(&not_utf8, [0xff, 0xfe, 0x00, 0x01]).unwrap();
    let id_file = tmp.write("id.paserk", "k4.pid.abc");
    vec![
        vec![],
        vec!["frobnicate".into()],
        vec!["verify".into()],
        vec![
            "verify".into(),
            "--key".into(),
            tmp.arg("missing"),
            "x".into(),
        ],
        vec!["verify".into(), "--key".into(), garbage.clone(), "x".into()],
        vec![
            "verify".into(),
            "--key".into(),
            not_utf8.display().to_string(),
            "x".into(),
        ],
        vec![
            "verify".into(),
            "--key".into(),
            id_file.display().to_string(),
            "x".into(),
        ],
        vec![
            "verify".into(),
            "--key".into(),
            garbage.clone(),
            "--leeway".into(),
            "soon".into(),
            "x".into(),
        ],
        vec![
            "verify".into(),
            "--key".into(),
            garbage.clone(),
            "--now".into(),
            "yesterday".into(),
            "x".into(),
        ],
        vec![
            "verify".into(),
            "--key".into(),
            garbage.clone(),
            "--alg".into(),
            "HS256".into(),
            "x".into(),
        ],
        vec!["issue".into(), "--key".into(), garbage.clone()],
        vec![
            "issue".into(),
            "--key".into(),
            garbage.clone(),
            "--ttl".into(),
            "15".into(),
        ],
        vec!["keygen".into(), "rsa".into()],
        vec![
            "keygen".into(),
            "v4.local".into(),
            "--out".into(),
            "/proc/no/such/dir".into(),
        ],
        vec!["inspect".into(), "--bogus".into()],
        vec!["key".into(), "id".into(), garbage.clone()],
        vec!["key".into(), "wrap".into(), tmp.arg("missing")],
        vec!["jwks".into()],
        vec!["jwks".into(), "--key".into(), garbage.clone()],
        vec!["explain".into(), "--config".into(), garbage.clone()],
        vec![
            "api-key".into(),
            "create".into(),
            "--db".into(),
            "sqlite://x.db".into(),
        ],
        vec![
            "api-key".into(),
            "create".into(),
            "--db".into(),
            "sqlite://x.db".into(),
            "--name".into(),
            "n".into(),
            "--expires".into(),
            "forever".into(),
        ],
        vec!["demo".into(), "--db".into(), "ftp://nowhere".into()],
    ]
}

#[test]
fn bad_flags_and_files_are_one_line_and_exit_2() {
    let tmp = TempDir::new("errors");
    for args in bad_invocations(&tmp) {
        let run = tokenctl(&args);
        let line = run.fails(2);
        assert!(line.starts_with("error: "), "{args:?}: {line}");
        assert!(!run.stdout.contains("Usage"), "{args:?}: {run:#?}");
    }
    // No file was created by the refused api-key commands.
    assert!(!std::path::Path::new("x.db").exists());
    // Help and version are not errors.
    assert!(tokenctl(&["--help"]).ok().contains("verify"));
    assert!(tokenctl(&["--version"]).ok().starts_with("tokenctl"));
}
