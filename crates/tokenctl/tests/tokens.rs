//! `keygen`, `issue` and `verify` through the built binary: round trips for every
//! kind, and every rejection reason with its exit code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{TempDir, b64, jws, keygen, now, p, run_with_stdin, shared_reason, tokenctl};
use secrecy::ExposeSecret;
use serde_json::json;
use token_core::Reason;

const KINDS: [&str; 9] = [
    "v4.local",
    "v4.public",
    "v3.local",
    "v3.public",
    "es256",
    "es384",
    "eddsa",
    "rs256",
    "ps256",
];

/// Keys generated once per test binary (RSA generation is the slow part).
struct Keys {
    main: HashMap<&'static str, (PathBuf, String)>,
    other: HashMap<&'static str, (PathBuf, String)>,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let root = TempDir::persistent("keys");
        let main_dir = root.join("main");
        let other_dir = root.join("other");
        let main = KINDS.iter().map(|&k| (k, keygen(&main_dir, k))).collect();
        let other = ["v4.local", "v4.public", "v3.public", "es256", "eddsa"]
            .iter()
            .map(|&k| (k, keygen(&other_dir, k)))
            .collect();
        Keys { main, other }
    })
}

fn dir(kind: &str) -> &'static Path {
    &keys().main[kind].0
}

fn kid(kind: &str) -> &'static str {
    &keys().main[kind].1
}

fn other(kind: &str) -> &'static Path {
    &keys().other[kind].0
}

fn is_rsa(kind: &str) -> bool {
    kind == "rs256" || kind == "ps256"
}

/// The file that issues tokens for `kind`.
fn issuing_key(kind: &str) -> String {
    match kind {
        "v4.local" | "v3.local" => p(dir(kind), "local.paserk"),
        "v4.public" | "v3.public" => p(dir(kind), "secret.paserk"),
        _ => p(dir(kind), "secret.jwk"),
    }
}

/// Issues a token with `kind`'s key and extra arguments.
fn issue(kind: &str, extra: &[&str]) -> String {
    let key = issuing_key(kind);
    let mut args = vec!["issue", "--key", key.as_str()];
    args.extend_from_slice(extra);
    tokenctl(&args).ok().to_owned()
}

/// Verifies `token` with `key` and extra arguments.
fn verify(key: &str, token: &str, extra: &[&str]) -> common::Run {
    let mut args = vec!["verify", "--key", key];
    args.extend_from_slice(extra);
    args.push(token);
    tokenctl(&args)
}

/// Replaces one character in the middle of a token segment (never the last
/// character, whose low bits may be padding).
fn tamper(token: &str, segment: usize) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let s = &mut parts[segment];
    let i = s.len() - 10;
    let c = s.as_bytes()[i];
    let replacement = if c == b'A' { "B" } else { "A" };
    s.replace_range(i..=i, replacement);
    parts.join(".")
}

#[test]
fn keygen_writes_exactly_the_files_with_secret_modes() {
    for kind in KINDS {
        let mut names: Vec<String> = std::fs::read_dir(dir(kind))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let expected: &[&str] = match kind {
            "v4.local" | "v3.local" => &["local.paserk"],
            "v4.public" | "v3.public" => &["public.paserk", "secret.paserk"],
            _ => &["public.jwk", "public.pem", "secret.jwk", "secret.pem"],
        };
        assert_eq!(names, expected, "{kind}");
        for name in &names {
            let mode = std::fs::metadata(dir(kind).join(name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            let want = if name.starts_with("public") {
                0o644
            } else {
                0o600
            };
            assert_eq!(mode, want, "{kind}/{name}");
        }
        // The printed id is the one tokens name the key by.
        let id = kid(kind);
        match kind {
            "v4.local" => assert!(id.starts_with("k4.lid."), "{id}"),
            "v3.local" => assert!(id.starts_with("k3.lid."), "{id}"),
            "v4.public" => assert!(id.starts_with("k4.pid."), "{id}"),
            "v3.public" => assert!(id.starts_with("k3.pid."), "{id}"),
            _ => {
                assert_eq!(
                    tokenctl(&["key", "id", &p(dir(kind), "public.jwk")]).ok(),
                    id
                );
                assert_eq!(
                    tokenctl(&["key", "id", &p(dir(kind), "public.pem")]).ok(),
                    id,
                    "public.pem is the same key"
                );
            }
        }
    }
}

#[test]
fn keygen_never_overwrites_without_force() {
    let tmp = TempDir::new("overwrite");
    let out = tmp.arg("k");
    tokenctl(&["keygen", "v4.local", "--out", &out]).ok();
    let first = std::fs::read_to_string(tmp.join("k/local.paserk")).unwrap();
    let line = tokenctl(&["keygen", "v4.local", "--out", &out])
        .fails(2)
        .to_owned();
    assert!(line.contains("already exists"), "{line}");
    assert_eq!(
        std::fs::read_to_string(tmp.join("k/local.paserk")).unwrap(),
        first
    );
    // A loosened mode is tightened again on --force.
    std::fs::set_permissions(
        tmp.join("k/local.paserk"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    tokenctl(&["keygen", "v4.local", "--out", &out, "--force"]).ok();
    assert_ne!(
        std::fs::read_to_string(tmp.join("k/local.paserk")).unwrap(),
        first
    );
    let mode = std::fs::metadata(tmp.join("k/local.paserk"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    tokenctl(&["keygen", "v5.local"]).fails(2);
}

#[test]
fn round_trip_every_kind() {
    for kind in KINDS {
        let token = issue(
            kind,
            &[
                "--iss",
                "https://auth.example",
                "--aud",
                "api",
                "--sub",
                "alice",
                "--claims",
                r#"{"role":"admin","n":7}"#,
            ],
        );
        let prefix = match kind {
            "v4.local" | "v4.public" | "v3.local" | "v3.public" => format!("{kind}."),
            _ => "eyJ".to_owned(),
        };
        assert!(token.starts_with(&prefix), "{kind}: {token}");
        let verifiers: Vec<&str> = match kind {
            "v4.local" | "v3.local" => vec!["local.paserk"],
            "v4.public" | "v3.public" => vec!["public.paserk", "secret.paserk"],
            _ => vec!["public.jwk", "secret.jwk", "public.pem", "secret.pem"],
        };
        for file in verifiers {
            let mut extra = vec!["--iss", "https://auth.example", "--aud", "api"];
            let alg = kind.to_ascii_uppercase();
            if is_rsa(kind) && matches!(file, "public.pem" | "secret.pem") {
                extra.extend(["--alg", alg.as_str()]);
            }
            let run = verify(&p(dir(kind), file), &token, &extra);
            let claims = run.json();
            assert_eq!(claims["sub"], "alice", "{kind} {file}");
            assert_eq!(claims["role"], "admin", "{kind} {file}");
            assert_eq!(claims["n"], 7, "{kind} {file}");
            assert!(claims["jti"].is_string(), "{kind} {file}");
            let exp = &claims["exp"];
            if prefix == "eyJ" {
                assert!(exp.is_i64(), "JWT times are NumericDate: {exp}");
            } else {
                assert!(exp.is_string(), "PASETO times are RFC 3339: {exp}");
            }
        }
        // --json names the key id that keygen printed.
        let key = issuing_key(kind);
        let issued = tokenctl(&["issue", "--key", &key, "--json"]).json();
        assert_eq!(issued["kid"], kid(kind), "{kind}");
    }
    // A PEM private key issues too (RSA keys name their algorithm).
    let pem = p(dir("ps256"), "secret.pem");
    let token = tokenctl(&["issue", "--key", &pem, "--alg", "PS256"])
        .ok()
        .to_owned();
    verify(&p(dir("ps256"), "public.jwk"), &token, &[]).ok();
    let line = tokenctl(&["issue", "--key", &pem]).fails(2).to_owned();
    assert!(line.contains("--alg"), "{line}");
}

#[test]
fn verify_reads_the_token_from_stdin() {
    let token = issue("v4.public", &[]);
    let key = p(dir("v4.public"), "public.paserk");
    for args in [
        vec!["verify", "--key", key.as_str(), "-"],
        vec!["verify", "--key", key.as_str()],
    ] {
        let run = run_with_stdin(&args, Some(&format!("{token}\n")));
        run.ok();
    }
}

#[test]
fn expired_and_not_yet_valid_via_now() {
    for kind in ["v4.public", "es256", "v3.local"] {
        let token = issue(kind, &["--ttl", "15m"]);
        let key = issuing_key(kind);
        verify(&key, &token, &["--now", "2099-01-01T00:00:00Z"]).rejected("expired");
        // Before it was issued.
        verify(&key, &token, &["--now", "2000-01-01T00:00:00Z"]).rejected("not yet valid");
    }
    // An explicit instant: exp + 30 s passes with the default 60 s leeway only.
    let token = issue("es256", &["--now", "2030-01-01T00:00:00Z", "--ttl", "15m"]);
    let key = p(dir("es256"), "public.jwk");
    verify(&key, &token, &["--now", "2030-01-01T00:15:30Z"]).ok();
    verify(
        &key,
        &token,
        &["--now", "2030-01-01T00:15:30Z", "--leeway", "0s"],
    )
    .rejected("expired");
}

/// `--leeway 18446744073709551615s` used to be accepted and disabled the expiry check;
/// overflowing durations were "must start with a whole number" or "unit must be s, m,
/// h or d". The leeway is bounded by the library's `Validation` (one day), and the one
/// duration parser says "too large".
#[test]
fn the_leeway_is_bounded_and_overflowing_durations_are_too_large() {
    let token = issue("es256", &["--now", "2030-01-01T00:00:00Z", "--ttl", "15m"]);
    let key = p(dir("es256"), "public.jwk");
    let long_after = ["--now", "2031-01-01T00:00:00Z"];
    verify(&key, &token, &long_after).rejected("expired");
    for leeway in ["18446744073709551615s", "86401s", "2d", "25h"] {
        let mut args = long_after.to_vec();
        args.extend(["--leeway", leeway]);
        let line = verify(&key, &token, &args).fails(2).to_owned();
        assert!(
            line.contains("--leeway") && line.contains("too large"),
            "{leeway}: {line}"
        );
    }
    for leeway in [
        "18446744073709551616s",
        "99999999999999999999999d",
        "213503982334602d",
        "307445734561825861m",
    ] {
        let mut args = long_after.to_vec();
        args.extend(["--leeway", leeway]);
        let line = verify(&key, &token, &args).fails(2).to_owned();
        assert!(line.contains("duration too large"), "{leeway}: {line}");
    }
    // A day is the most, and a token still expires a day late.
    verify(
        &key,
        &token,
        &["--now", "2030-01-02T00:14:59Z", "--leeway", "1d"],
    )
    .ok();
    verify(
        &key,
        &token,
        &["--now", "2030-01-02T00:15:00Z", "--leeway", "1d"],
    )
    .rejected("expired");
    // Every duration flag reads the same way.
    for (flag, cmd) in [("--ttl", "issue"), ("--max-lifetime", "verify")] {
        let run = if cmd == "issue" {
            tokenctl(&[
                "issue",
                "--key",
                &issuing_key("es256"),
                flag,
                "18446744073709551616s",
            ])
        } else {
            verify(&key, &token, &[flag, "18446744073709551616s"])
        };
        let line = run.fails(2).to_owned();
        assert!(line.contains("duration too large"), "{flag}: {line}");
    }
    let line = verify(&key, &token, &["--leeway", "15"])
        .fails(2)
        .to_owned();
    assert!(line.contains("needs a unit"), "{line}");
}

#[test]
fn wrong_audience_issuer_subject_and_lifetime() {
    for kind in ["v4.public", "v4.local", "eddsa"] {
        let token = issue(
            kind,
            &[
                "--iss",
                "https://auth.example",
                "--aud",
                "api",
                "--sub",
                "alice",
                "--ttl",
                "1h",
            ],
        );
        let key = issuing_key(kind);
        verify(&key, &token, &["--aud", "billing"]).rejected("wrong audience");
        // A token naming an audience is refused when none is expected.
        verify(&key, &token, &[]).rejected("wrong audience");
        verify(
            &key,
            &token,
            &["--aud", "api", "--iss", "https://evil.example"],
        )
        .rejected("wrong issuer");
        verify(&key, &token, &["--aud", "api", "--sub", "bob"]).rejected("wrong subject");
        verify(&key, &token, &["--aud", "api", "--max-lifetime", "15m"])
            .rejected("lifetime too long");
        verify(
            &key,
            &token,
            &[
                "--aud",
                "billing",
                "--aud",
                "api",
                "--iss",
                "https://auth.example",
            ],
        )
        .ok();
    }
}

#[test]
fn bad_signature_is_an_invalid_token() {
    for kind in ["v4.public", "v3.public", "v4.local", "v3.local"] {
        let token = issue(kind, &[]);
        verify(&issuing_key(kind), &tamper(&token, 2), &[]).rejected("invalid token");
    }
    for kind in ["es256", "es384", "eddsa", "rs256", "ps256"] {
        let token = issue(kind, &[]);
        verify(&p(dir(kind), "public.jwk"), &tamper(&token, 2), &[]).rejected("invalid token");
        // A changed payload under the original signature.
        verify(&p(dir(kind), "public.jwk"), &tamper(&token, 1), &[]).fails(1);
    }
}

#[test]
fn wrong_key_is_an_invalid_token() {
    // PASETO tokens whose footer names no key: the one key given is tried, and fails.
    for kind in ["v4.local", "v4.public"] {
        let token = issue(kind, &["--footer", r#"{"note":"no kid"}"#]);
        let other_key = match kind {
            "v4.local" => p(other(kind), "local.paserk"),
            _ => p(other(kind), "public.paserk"),
        };
        verify(&other_key, &token, &[]).rejected("invalid token");
        verify(&issuing_key(kind), &token, &[]).ok();
    }
    // A JWK that claims the signer's kid but holds another key.
    let token = issue("es256", &[]);
    let tmp = TempDir::new("wrong-key");
    let mut jwk: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(other("es256").join("public.jwk")).unwrap())
            .unwrap();
    jwk["kid"] = json!(kid("es256"));
    let impostor = tmp.write("impostor.jwk", &jwk.to_string());
    verify(&impostor.display().to_string(), &token, &[]).rejected("invalid token");
}

#[test]
fn unknown_kid_is_a_rejection() {
    // A PASERK id in the footer names exactly one key: another one is unknown.
    for (kind, file) in [("v4.public", "public.paserk"), ("v4.local", "local.paserk")] {
        let token = issue(kind, &[]);
        verify(&p(other(kind), file), &token, &[]).rejected("unknown key");
    }
    // A JOSE `kid` is the issuer's name: one key given alone is tried (and fails,
    // saying which `kid` the token named); among several keys, the `kid` must name one.
    for (kind, file) in [("es256", "public.jwk"), ("eddsa", "public.pem")] {
        let token = issue(kind, &[]);
        let line = verify(&p(other(kind), file), &token, &[])
            .fails(1)
            .to_owned();
        assert!(
            line.starts_with(&format!(
                "rejected: invalid token (the token names `kid` {}",
                kid(kind)
            )),
            "{line}"
        );
        tokenctl(&[
            "verify",
            "--key",
            &p(other(kind), file),
            "--key",
            &p(other("v4.public"), "public.paserk"),
            "--key",
            &p(dir("es384"), "public.jwk"),
            &token,
        ])
        .rejected("unknown key");
    }
}

#[test]
fn wrong_implicit_assertion_is_an_invalid_token() {
    for kind in ["v4.local", "v4.public", "v3.local", "v3.public"] {
        let token = issue(kind, &["--implicit-assertion", "user:alice"]);
        let key = issuing_key(kind);
        verify(&key, &token, &["--implicit-assertion", "user:alice"]).ok();
        verify(&key, &token, &["--implicit-assertion", "user:bob"]).rejected("invalid token");
        verify(&key, &token, &[]).rejected("invalid token");
    }
    // Implicit assertions belong to PASETO.
    let key = issuing_key("es256");
    tokenctl(&["issue", "--key", &key, "--implicit-assertion", "x"]).fails(2);
}

#[test]
fn footers_are_exact_when_required_and_shown_otherwise() {
    let footer = r#"{"kid":"KID","env":"prod"}"#;
    for kind in ["v4.public", "v4.local"] {
        let id = kid(kind);
        let footer = footer.replace("KID", id);
        let token = issue(kind, &["--footer", &footer]);
        let key = issuing_key(kind);
        verify(&key, &token, &["--footer", &footer]).ok();
        verify(&key, &token, &["--footer", &format!(r#"{{"kid":"{id}"}}"#)])
            .rejected("invalid footer (footer does not match");
        let run = verify(&key, &token, &[]);
        run.ok();
        assert!(
            run.stderr.contains(&format!("footer: {footer}")),
            "{run:#?}"
        );
        // The default footer names the key.
        let plain = issue(kind, &[]);
        verify(&key, &plain, &["--footer", &format!(r#"{{"kid":"{id}"}}"#)]).ok();
        verify(&key, &plain, &["--footer", "other"])
            .rejected("invalid footer (footer does not match");
    }
    // A footer that is not JSON is refused when issuing.
    tokenctl(&[
        "issue",
        "--key",
        &issuing_key("v4.local"),
        "--footer",
        "not json",
    ])
    .fails(2);
}

#[test]
fn algorithm_not_allowed_for_this_key() {
    // The classic confusion: an HS256 token "signed" with the public key, naming the
    // ES256 key's kid. The key decides the algorithm, so it is refused before any MAC.
    let public = std::fs::read(dir("es256").join("public.jwk")).unwrap();
    let forged = jws(
        &json!({"alg": "HS256", "typ": "JWT", "kid": kid("es256")}),
        &json!({"sub": "admin", "exp": now() + 600}),
        &public[..32],
    );
    verify(&p(dir("es256"), "public.jwk"), &forged, &[])
        .rejected("algorithm not allowed for this key");
    // An RS256 token against the same RSA key pinned to PS256.
    let token = issue("rs256", &[]);
    verify(&p(dir("rs256"), "public.pem"), &token, &["--alg", "PS256"])
        .rejected("algorithm not allowed for this key");
    verify(&p(dir("rs256"), "public.pem"), &token, &["--alg", "RS256"]).ok();
    // A JWK that names its algorithm cannot be re-pinned.
    verify(&p(dir("rs256"), "public.jwk"), &token, &["--alg", "PS256"]).fails(2);
}

#[test]
fn unsecured_tokens_are_rejected() {
    let token = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(json!({"sub": "admin", "exp": now() + 600})
            .to_string()
            .as_bytes())
    );
    verify(&p(dir("es256"), "public.jwk"), &token, &[])
        .rejected("algorithm not allowed for this key (alg: none");
    let token = token.replace(
        &b64(br#"{"alg":"none","typ":"JWT"}"#),
        &b64(br#"{"alg":"nOnE"}"#),
    );
    verify(&p(dir("es256"), "public.jwk"), &token, &[])
        .rejected("algorithm not allowed for this key (alg: none");
}

#[test]
fn malformed_tokens_are_rejected() {
    let key = p(dir("v4.public"), "public.paserk");
    for bad in [
        "garbage",
        "v4.public.",
        "v4.public.@@@",
        "v4.secret.AAAA",
        "a.b",
        "eyJhbGciOiJFUzI1NiJ9.e30.c2ln.extra",
    ] {
        verify(&key, bad, &[]).rejected("malformed token");
    }
    // Well shaped, but too short to hold a signature.
    verify(&key, "v4.public.AAAA", &[]).rejected("malformed token");
    let huge = format!("v4.public.{}", "A".repeat(40 * 1024));
    verify(&key, &huge, &[]).rejected("token too large");
}

/// Every rejection opens with one of the phrases every tessera crate shares
/// (`token_core::Reason`, the one `Error::reason()` of each library gives), whichever
/// check failed: the library's or this tool's own, a PASETO or a JOSE token.
#[test]
fn every_rejection_opens_with_a_shared_reason() {
    let paseto_key = issuing_key("v4.public");
    let paseto = issue("v4.public", &["--aud", "api", "--ttl", "15m"]);
    let jose_key = p(dir("es256"), "public.jwk");
    let jose = issue("es256", &["--aud", "api"]);
    let unsigned = format!(
        "{}.{}.",
        b64(br#"{"alg":"none"}"#),
        b64(json!({"exp": now() + 600}).to_string().as_bytes())
    );
    let deep = format!(
        "{}.{}.{}",
        b64(br#"{"alg":"ES256","x":[[[[1]]]]}"#),
        b64(b"{}"),
        b64(&[1; 64])
    );
    let cases = [
        (verify(&paseto_key, "garbage", &[]), Reason::MalformedToken),
        (
            verify(&paseto_key, "v4.public.AAAA", &[]),
            Reason::MalformedToken,
        ),
        (
            verify(
                &paseto_key,
                &format!("v4.public.{}", "A".repeat(40 * 1024)),
                &[],
            ),
            Reason::TokenTooLarge,
        ),
        (
            verify(&paseto_key, &tamper(&paseto, 2), &["--aud", "api"]),
            Reason::InvalidToken,
        ),
        (
            verify(&paseto_key, &paseto, &["--aud", "billing"]),
            Reason::WrongAudience,
        ),
        (
            verify(
                &paseto_key,
                &paseto,
                &["--aud", "api", "--now", "2099-01-01T00:00:00Z"],
            ),
            Reason::Expired,
        ),
        (
            verify(&paseto_key, &paseto, &["--aud", "api", "--footer", "x"]),
            Reason::InvalidFooter,
        ),
        (
            verify(&p(other("v4.public"), "public.paserk"), &paseto, &[]),
            Reason::UnknownKey,
        ),
        (
            verify(&paseto_key, &format!("v2.public.{}", b64(&[0; 80])), &[]),
            Reason::UnsupportedVersion,
        ),
        (verify(&paseto_key, &jose, &[]), Reason::WrongTokenType),
        (
            verify(&jose_key, &unsigned, &[]),
            Reason::AlgorithmNotAllowed,
        ),
        (verify(&jose_key, &deep, &[]), Reason::MalformedToken),
        (
            verify(&jose_key, &jose, &["--aud", "api", "--typ", "at+jwt"]),
            Reason::WrongTokenType,
        ),
        (
            verify(&jose_key, &tamper(&jose, 2), &["--aud", "api"]),
            Reason::InvalidToken,
        ),
        // One JOSE key given alone verifies whatever `kid` the token names.
        (
            verify(&p(other("es256"), "public.jwk"), &jose, &["--aud", "api"]),
            Reason::InvalidToken,
        ),
        // Among several, the `kid` names none of them.
        (
            tokenctl(&[
                "verify",
                "--key",
                &p(other("es256"), "public.jwk"),
                "--key",
                &p(other("eddsa"), "public.jwk"),
                "--aud",
                "api",
                &jose,
            ]),
            Reason::UnknownKey,
        ),
    ];
    for (run, want) in cases {
        let line = run.fails(1);
        assert_eq!(shared_reason(line), Some(want), "{line}");
    }
}

#[test]
fn deprecated_and_mismatched_kinds_are_rejected() {
    let v2 = format!("v2.public.{}", b64(&[0u8; 80]));
    verify(&p(dir("v4.public"), "public.paserk"), &v2, &[])
        .rejected("unsupported token version (PASETO v2");
    // The key decides: a v4 key for a v3 token, a local key for a public token, a JWK
    // for a PASETO.
    let v3 = issue("v3.public", &[]);
    verify(&p(dir("v4.public"), "public.paserk"), &v3, &[]).rejected("wrong token type");
    let public = issue("v4.public", &[]);
    verify(&p(dir("v4.local"), "local.paserk"), &public, &[]).rejected("wrong token type");
    verify(&p(dir("es256"), "public.jwk"), &public, &[]).rejected("wrong token type");
    let jwt = issue("es256", &[]);
    verify(&p(dir("v4.public"), "public.paserk"), &jwt, &[]).rejected("wrong token type");
}

#[test]
fn several_keys_are_picked_by_kid() {
    // PASETO: two --key, then a key set.
    let a = issue("v4.public", &[]);
    let b = tokenctl(&["issue", "--key", &p(other("v4.public"), "secret.paserk")])
        .ok()
        .to_owned();
    let ka = p(dir("v4.public"), "public.paserk");
    let kb = p(other("v4.public"), "public.paserk");
    let kv3 = p(dir("v3.public"), "public.paserk");
    for token in [&a, &b] {
        tokenctl(&["verify", "--key", &ka, "--key", &kb, "--key", &kv3, token]).ok();
    }
    let tmp = TempDir::new("several");
    let keyset = tokenctl(&["keyset", "--key", &ka, &kb, &kv3])
        .ok()
        .to_owned();
    let keyset_file = tmp.write("keyset.json", &keyset);
    for token in [&a, &b, &issue("v3.public", &[])] {
        verify(&keyset_file.display().to_string(), token, &[]).ok();
    }
    // No kid and two keys that fit: no way to choose.
    let no_kid = issue("v4.public", &["--footer", "{}"]);
    tokenctl(&["verify", "--key", &ka, "--key", &kb, &no_kid])
        .rejected("unknown key (the token names no `kid`");
    // JOSE: two --key, then a JWKS.
    let ea = issue("es256", &[]);
    let eb = tokenctl(&["issue", "--key", &p(other("es256"), "secret.jwk")])
        .ok()
        .to_owned();
    let ed = issue("eddsa", &[]);
    let ja = p(dir("es256"), "public.jwk");
    let jb = p(other("es256"), "public.pem");
    let jd = p(dir("eddsa"), "public.jwk");
    for token in [&ea, &eb, &ed] {
        tokenctl(&["verify", "--key", &ja, "--key", &jb, "--key", &jd, token]).ok();
    }
    let jwks = tokenctl(&["jwks", "--key", &ja, &jb, &jd]).ok().to_owned();
    let jwks_file = tmp.write("keys.jwks", &jwks);
    for token in [&ea, &eb, &ed] {
        verify(&jwks_file.display().to_string(), token, &[]).ok();
    }
    let stranger = issue("es384", &[]);
    verify(&jwks_file.display().to_string(), &stranger, &[]).rejected("unknown key");
}

#[test]
fn explicit_token_types() {
    let at = issue("es256", &["--typ", "at+jwt"]);
    let key = p(dir("es256"), "public.jwk");
    verify(&key, &at, &[]).rejected("wrong token type");
    verify(&key, &at, &["--typ", "at+jwt"]).ok();
    let plain = issue("es256", &[]);
    verify(&key, &plain, &["--typ", "at+jwt"]).rejected("wrong token type");
}

#[test]
fn jwe_direct() {
    let tmp = TempDir::new("jwe");
    let direct = token_jwt::DirectKey::generate().unwrap();
    let oct = tmp.write("oct.jwk", direct.dangerous_to_secret_jwk().expose_secret());
    let other_oct = tmp.write(
        "other-oct.jwk",
        token_jwt::DirectKey::generate()
            .unwrap()
            .dangerous_to_secret_jwk()
            .expose_secret(),
    );
    let oct = oct.display().to_string();
    let other_oct = other_oct.display().to_string();
    let oct2 = tmp
        .write(
            "oct2.jwk",
            token_jwt::DirectKey::generate()
                .unwrap()
                .dangerous_to_secret_jwk()
                .expose_secret(),
        )
        .display()
        .to_string();

    // dir: encrypted directly with the shared key.
    let token = tokenctl(&[
        "issue",
        "--key",
        &oct,
        "--aud",
        "api",
        "--claims",
        r#"{"iban":"DE89"}"#,
    ])
    .ok()
    .to_owned();
    assert_eq!(token.split('.').count(), 5);
    let claims = verify(&oct, &token, &["--aud", "api"]).json();
    assert_eq!(claims["iban"], "DE89");
    // The one key given is tried whatever the token's `kid`: the wrong one fails.
    verify(&other_oct, &token, &["--aud", "api"]).rejected("invalid token");
    tokenctl(&[
        "verify", "--key", &other_oct, "--key", &oct2, "--aud", "api", &token,
    ])
    .rejected("unknown key");
    verify(&oct, &tamper(&token, 3), &["--aud", "api"]).rejected("invalid token");

    // Nested under dir, signed with EdDSA.
    let token = tokenctl(&[
        "issue",
        "--key",
        &issuing_key("eddsa"),
        "--encrypt-to",
        &oct,
    ])
    .ok()
    .to_owned();
    tokenctl(&[
        "verify",
        "--key",
        &oct,
        "--key",
        &p(dir("eddsa"), "public.pem"),
        &token,
    ])
    .ok();
}

#[test]
fn jwe_nested_signed_then_encrypted() {
    let tmp = TempDir::new("jwe-nested");
    // ECDH-ES+A256KW: signed (ES256), then encrypted to the recipient.
    let recipient = token_jwt::DecryptingKey::generate(token_jwt::EcdhCurve::P256).unwrap();
    let private = tmp.write(
        "recipient.jwk",
        recipient
            .dangerous_to_private_jwk()
            .unwrap()
            .expose_secret(),
    );
    let public = tmp.write("recipient.pub.jwk", &recipient.encrypting_key().to_jwk());
    let (private, public) = (private.display().to_string(), public.display().to_string());
    let signer = issuing_key("es256");
    let token = tokenctl(&[
        "issue",
        "--key",
        &signer,
        "--encrypt-to",
        &public,
        "--aud",
        "api",
        "--sub",
        "alice",
    ])
    .ok()
    .to_owned();
    assert_eq!(token.split('.').count(), 5);
    let inner_signer = p(dir("es256"), "public.jwk");
    let claims = tokenctl(&[
        "verify",
        "--key",
        &private,
        "--key",
        &inner_signer,
        "--aud",
        "api",
        &token,
    ])
    .json();
    assert_eq!(claims["sub"], "alice");
    // Without the inner signer's key: a usage error, not a silent decrypt.
    let line = verify(&private, &token, &["--aud", "api"])
        .fails(2)
        .to_owned();
    assert!(line.contains("signer"), "{line}");
    // Signed by a key that is not trusted: the one signature key given fails; among
    // several, the inner `kid` names none of them.
    let stranger = p(other("es256"), "public.jwk");
    tokenctl(&[
        "verify", "--key", &private, "--key", &stranger, "--aud", "api", &token,
    ])
    .rejected("invalid token");
    tokenctl(&[
        "verify",
        "--key",
        &private,
        "--key",
        &stranger,
        "--key",
        &p(other("eddsa"), "public.jwk"),
        "--aud",
        "api",
        &token,
    ])
    .rejected("unknown key");
    // The public recipient key cannot decrypt.
    tokenctl(&[
        "verify",
        "--key",
        &public,
        "--key",
        &inner_signer,
        "--aud",
        "api",
        &token,
    ])
    .rejected("wrong token type");
}

#[test]
fn opaque_tokens_and_public_keys_are_usage_errors() {
    let key = p(dir("es256"), "public.jwk");
    let opaque = format!("sk_live_{}", "a".repeat(49));
    verify(&key, &opaque, &[]).fails(2);
    tokenctl(&["issue", "--key", &key]).fails(2);
    tokenctl(&["issue", "--key", &p(dir("v4.public"), "public.paserk")]).fails(2);
    // Bad claims input.
    let k = issuing_key("v4.public");
    tokenctl(&["issue", "--key", &k, "--claims", "[1,2]"]).fails(2);
    tokenctl(&["issue", "--key", &k, "--claims", "{"]).fails(2);
    tokenctl(&[
        "issue",
        "--key",
        &k,
        "--claims",
        "@/nonexistent/claims.json",
    ])
    .fails(2);
    tokenctl(&["issue", "--key", &k, "--claims", r#"{"exp":"tomorrow"}"#]).fails(2);
    tokenctl(&[
        "issue",
        "--key",
        &k,
        "--claims",
        r#"{"exp":1999999999}"#,
        "--ttl",
        "5m",
    ])
    .fails(2);
    // Registered claims in --claims are honoured.
    let token = tokenctl(&[
        "issue",
        "--key",
        &k,
        "--claims",
        r#"{"exp":"2030-01-01T00:10:00Z","iat":1893456000,"aud":["a","b"],"jti":"j-1"}"#,
    ])
    .ok()
    .to_owned();
    let claims = verify(
        &p(dir("v4.public"), "public.paserk"),
        &token,
        &["--aud", "b", "--now", "2030-01-01T00:05:00Z"],
    )
    .json();
    assert_eq!(claims["jti"], "j-1");
    assert_eq!(claims["exp"], "2030-01-01T00:10:00Z");
    assert_eq!(claims["iat"], "2030-01-01T00:00:00Z");
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Every official v3 and v4 vector through the binary: the success cases exit 0 with
/// their payload, the expect-fail cases exit non-zero. Twelve success cases carry a
/// footer `kid` that is the vector author's own string, not a PASERK id (`E-5`…`E-8`,
/// `S-2`, `S-3`); they used to be refused with "unknown key id".
#[test]
fn official_paseto_vectors_through_verify() {
    let tmp = TempDir::new("vectors");
    let mut ran = (0, 0);
    for (version, json) in [
        ("3", include_str!("vectors/paseto/v3.json")),
        ("4", include_str!("vectors/paseto/v4.json")),
    ] {
        let file: serde_json::Value = serde_json::from_str(json).unwrap();
        for case in file["tests"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let s = |field: &str| case[field].as_str().unwrap();
            // The key the case gives: a local key, or the public half of a key pair.
            let paserk = match case["key"].as_str() {
                Some(key) => format!("k{version}.local.{}", b64(&unhex(key))),
                None => format!("k{version}.public.{}", b64(&unhex(s("public-key")))),
            };
            let key = tmp.write(&format!("{name}.paserk"), &paserk);
            let run = tokenctl(&[
                "verify",
                "--json",
                "--key",
                &key.display().to_string(),
                "--footer",
                s("footer"),
                "--implicit-assertion",
                s("implicit-assertion"),
                // The payloads expire at 2022-01-01T00:00:00+00:00.
                "--now",
                "2021-06-01T00:00:00Z",
                s("token"),
            ]);
            if case["expect-fail"].as_bool().unwrap() {
                assert_ne!(run.code, 0, "{name} must fail: {run:#?}");
                run.fails(1);
                ran.1 += 1;
                continue;
            }
            assert_eq!(run.code, 0, "{name}: {run:#?}");
            let expected: serde_json::Value = serde_json::from_str(s("payload")).unwrap();
            let mut want = expected.as_object().unwrap().clone();
            // Written back in the canonical RFC 3339 form.
            assert_eq!(want["exp"], "2022-01-01T00:00:00+00:00");
            want.insert("exp".into(), json!("2022-01-01T00:00:00Z"));
            assert_eq!(run.json(), serde_json::Value::Object(want), "{name}");
            ran.0 += 1;
        }
    }
    assert_eq!(ran, (24, 10));
}

/// A kid that is a PASERK id still has to name one of the given keys, while an
/// issuer's own kid lets each given key be tried (and fail when none verifies).
#[test]
fn issuers_own_kids_try_each_given_key() {
    let footer = r#"{"kid":"signing-key-2024"}"#;
    for (kind, public) in [("v4.public", "public.paserk"), ("v4.local", "local.paserk")] {
        let token = issue(kind, &["--footer", footer]);
        let mine = p(dir(kind), public);
        let theirs = p(other(kind), public);
        let run = tokenctl(&["verify", "--key", &theirs, "--key", &mine, &token]);
        run.ok();
        assert!(
            run.stderr.contains(&format!("with key {}", kid(kind))),
            "{run:#?}"
        );
        tokenctl(&["verify", "--key", &theirs, &token]).rejected("invalid token");
    }
    // A PASERK id of another key: refused before any key is tried (and `issue` does
    // not write one, so the token is made with the library).
    let stranger = tokenctl(&["key", "id", &p(other("v4.public"), "public.paserk")])
        .ok()
        .to_owned();
    let token = sign_v4_public("{}", &format!(r#"{{"kid":"{stranger}"}}"#));
    verify(&p(dir("v4.public"), "public.paserk"), &token, &[]).rejected("unknown key");
}

/// The main `v4.public` signing key, read with the library.
fn v4_secret() -> token_paseto::SecretKey<token_paseto::V4> {
    let text = std::fs::read_to_string(dir("v4.public").join("secret.paserk")).unwrap();
    token_paseto::SecretKey::from_paserk(text.trim()).unwrap()
}

/// The main `v4.local` key, read with the library.
fn v4_local() -> token_paseto::LocalKey<token_paseto::V4> {
    let text = std::fs::read_to_string(dir("v4.local").join("local.paserk")).unwrap();
    token_paseto::LocalKey::from_paserk(text.trim()).unwrap()
}

/// An authentic `v4.public` token with any claims and footer, made with the library.
fn sign_v4_public(claims: &str, footer: &str) -> String {
    v4_secret()
        .sign_raw(claims.as_bytes(), footer.as_bytes(), b"")
        .unwrap()
        .expose_secret()
        .to_owned()
}

/// Footers are read by the library's one rule on every path: `verify` (which goes
/// through the library's verifiers), `inspect` and `issue --footer`. `issue` used to
/// write footers `verify` refuses (nested three deep, 17 members), and footers that
/// open with whitespace or `[` skipped the bounds everywhere.
#[test]
fn footer_bounds_hold_on_issue_verify_and_inspect() {
    let wide: Vec<String> = (0..17).map(|i| format!(r#""k{i}":1"#)).collect();
    let wide = format!("{{{}}}", wide.join(","));
    let lid = kid("v4.local");
    let stranger = tokenctl(&["key", "id", &p(other("v4.public"), "public.paserk")])
        .ok()
        .to_owned();
    let refused = [
        r#"{"a":{"b":{"c":1}}}"#.to_owned(),
        wide,
        r#" {"a":{"b":{"c":1}}}"#.to_owned(),
        "[[[1]]]".to_owned(),
        "[1]".to_owned(),
        r#"{"kid":"a","kid":"b"}"#.to_owned(),
        r#"{"kid":7}"#.to_owned(),
        format!(r#"{{"kid":"{lid}"}}"#),
    ];
    let public = p(dir("v4.public"), "public.paserk");
    let exp = token_core::Timestamp::from_unix_seconds(now() + 600)
        .unwrap()
        .to_rfc3339();
    let claims = format!(r#"{{"exp":"{exp}"}}"#);
    for footer in &refused {
        let line = tokenctl(&[
            "issue",
            "--key",
            &issuing_key("v4.public"),
            "--footer",
            footer,
        ])
        .fails(2)
        .to_owned();
        assert!(line.starts_with("error: --footer: "), "{footer}: {line}");
        let token = sign_v4_public(&claims, footer);
        verify(&public, &token, &[]).rejected("invalid footer");
        let run = tokenctl(&["inspect", "--json", &token]);
        assert_eq!(run.code, 1, "{footer}: {run:#?}");
        assert!(
            run.stdout.contains("invalid-footer") || run.stdout.contains("duplicate-member"),
            "{footer}: {run:#?}"
        );
    }
    // Another key's PASERK id: `issue` refuses to write it.
    let line = tokenctl(&[
        "issue",
        "--key",
        &issuing_key("v4.public"),
        "--footer",
        &format!(r#"{{"kid":"{stranger}"}}"#),
    ])
    .fails(2)
    .to_owned();
    assert!(line.contains("PASERK id of another key"), "{line}");
    // The same for a local key.
    tokenctl(&[
        "issue",
        "--key",
        &issuing_key("v4.local"),
        "--footer",
        r#"{"a":{"b":{"c":1}}}"#,
    ])
    .fails(2);

    // A footer that is not JSON is opaque data, legal in PASETO, and names no key:
    // with one key `verify` accepts it exactly as the library's verifiers do, with two
    // it refuses for want of a key id, and `inspect` finds nothing wrong with it.
    let library = token_paseto::PublicVerifier::new(v4_secret().public_key().clone());
    let validation = token_core::Validation::new();
    let local = v4_local();
    let cipher = token_paseto::LocalCipher::new(
        token_paseto::LocalKey::<token_paseto::V4>::from_bytes(local.expose_secret_bytes())
            .unwrap(),
    );
    for footer in ["not json", r#"x{"a":{"b":{"c":1}}}"#] {
        let token = sign_v4_public(&claims, footer);
        assert!(
            token_core::TokenVerifier::verify::<serde_json::Value>(&library, &token, &validation)
                .is_ok()
        );
        verify(&public, &token, &[]).ok();
        tokenctl(&[
            "verify",
            "--key",
            &public,
            "--key",
            &p(other("v4.public"), "public.paserk"),
            &token,
        ])
        .rejected("unknown key (the token names no `kid`");
        let run = tokenctl(&["inspect", "--json", &token]);
        assert_eq!(run.code, 0, "{run:#?}");
        let token = local
            .encrypt_raw(claims.as_bytes(), footer.as_bytes(), b"")
            .unwrap()
            .expose_secret()
            .to_owned();
        assert!(
            token_core::TokenDecrypter::decrypt::<serde_json::Value>(
                &cipher,
                &token,
                b"",
                &validation
            )
            .is_ok()
        );
        verify(&issuing_key("v4.local"), &token, &[]).ok();
    }
}

/// An authentic EdDSA JWS with any header, signed with the main `eddsa` key.
fn sign_eddsa_jws(header: &str, claims: &serde_json::Value) -> String {
    use ed25519_dalek::Signer as _;
    let jwk: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir("eddsa").join("secret.jwk")).unwrap())
            .unwrap();
    let seed: [u8; 32] = common::unb64(jwk["d"].as_str().unwrap())
        .try_into()
        .unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let input = format!(
        "{}.{}",
        b64(header.as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = key.sign(input.as_bytes());
    format!("{input}.{}", b64(&signature.to_bytes()))
}

/// `verify` refuses a header exactly when `inspect` reports an error about it, both
/// from the header parser in token-jwt. A JWS header nested 100 levels deep, or one
/// carrying `enc` (flagged as JWS/JWE confusion by `inspect`), used to verify.
#[test]
fn inspect_reports_exactly_the_headers_verify_refuses() {
    let claims = json!({"sub": "a", "exp": now() + 600, "jti": "j", "aud": "api"});
    let key = p(dir("eddsa"), "public.jwk");
    let kid = kid("eddsa");
    let nested = |depth: usize| format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    let refused = [
        (format!(r#""x":{}"#, nested(4)), "header-too-deep"),
        (format!(r#""x":{}"#, nested(100)), "header-too-deep"),
        (format!(r#""x":{}"#, nested(200)), "header-too-deep"),
        (r#""enc":"A256GCM""#.to_owned(), "jws-jwe-confusion"),
        (r#""zip":"DEF""#.to_owned(), "jws-jwe-confusion"),
        (r#""typ":"JWT","typ":"JWT""#.to_owned(), "duplicate-member"),
        (r#""cty":null"#.to_owned(), "null-member"),
    ];
    for (member, code) in refused {
        let header = format!(r#"{{"alg":"EdDSA","kid":"{kid}",{member}}}"#);
        let token = sign_eddsa_jws(&header, &claims);
        verify(&key, &token, &["--aud", "api"]).rejected("malformed token");
        let run = tokenctl(&["inspect", "--json", &token]);
        assert_eq!(run.code, 1, "{member}: {run:#?}");
        let findings = run.json()["findings"].clone();
        assert!(
            findings
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["code"] == code && f["severity"] == "error"),
            "{member}: {findings:#}"
        );
    }
    // Within the bound and without JWE members: verified, and no error finding.
    for member in [format!(r#""x":{}"#, nested(3)), r#""typ":"JWT""#.to_owned()] {
        let header = format!(r#"{{"alg":"EdDSA","kid":"{kid}",{member}}}"#);
        let token = sign_eddsa_jws(&header, &claims);
        verify(&key, &token, &["--aud", "api"]).ok();
        let run = tokenctl(&["inspect", "--json", &token]);
        assert_eq!(run.code, 0, "{member}: {run:#?}");
    }
}

/// A repeated claim used to be accepted with the last value winning. The one strict
/// reading refuses it everywhere: when issuing, verifying and inspecting.
#[test]
fn repeated_claims_are_refused_everywhere() {
    let key = issuing_key("v4.public");
    let line = tokenctl(&[
        "issue",
        "--key",
        &key,
        "--claims",
        r#"{"sub":"q","sub":"z"}"#,
    ])
    .fails(2)
    .to_owned();
    assert!(line.contains("`sub` is named more than once"), "{line}");
    let tmp = TempDir::new("repeated");
    let file = tmp.write("claims.json", r#"{"role":"a","x":{"n":1,"n":2}}"#);
    let claims_file = format!("@{}", file.display());
    tokenctl(&["issue", "--key", &key, "--claims", &claims_file]).fails(2);
    tokenctl(&[
        "issue",
        "--key",
        &key,
        "--footer",
        r#"{"env":"a","env":"b"}"#,
    ])
    .fails(2);

    // An authentic v4.public token whose claims repeat a name.
    let secret = std::fs::read_to_string(dir("v4.public").join("secret.paserk")).unwrap();
    let secret = token_paseto::SecretKey::<token_paseto::V4>::from_paserk(secret.trim()).unwrap();
    let exp = token_core::Timestamp::from_unix_seconds(now() + 600)
        .unwrap()
        .to_rfc3339();
    let sign = |claims: &str, footer: &str| {
        secret
            .sign_raw(claims.as_bytes(), footer.as_bytes(), b"")
            .unwrap()
            .expose_secret()
            .to_owned()
    };
    let kid_footer = format!(r#"{{"kid":"{}"}}"#, kid("v4.public"));
    let token = sign(
        &format!(r#"{{"exp":"{exp}","role":"user","role":"admin"}}"#),
        &kid_footer,
    );
    let public = p(dir("v4.public"), "public.paserk");
    let line = verify(&public, &token, &[]).fails(1).to_owned();
    assert!(line.contains("`role` appears more than once"), "{line}");
    let run = tokenctl(&["inspect", "--json", &token]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stdout.contains("duplicate-member"), "{run:#?}");
    // The footer too.
    let token = sign(
        &format!(r#"{{"exp":"{exp}"}}"#),
        &format!(r#"{{"kid":"{}","kid":"x"}}"#, kid("v4.public")),
    );
    verify(&public, &token, &[]).rejected("invalid footer");
    let run = tokenctl(&["inspect", "--json", &token]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stdout.contains("duplicate-member"), "{run:#?}");

    // JOSE headers: a repeated member, and a null one, are refused before any key is
    // used, and flagged by inspect.
    let claims = json!({"sub": "a", "exp": now() + 600});
    for header in [
        r#"{"alg":"ES256","crit":null}"#,
        r#"{"alg":"ES256","kid":"a","kid":"b"}"#,
    ] {
        let token = format!(
            "{}.{}.{}",
            b64(header.as_bytes()),
            b64(claims.to_string().as_bytes()),
            b64(&[1u8; 64])
        );
        verify(&p(dir("es256"), "public.jwk"), &token, &[]).rejected("malformed token");
        let run = tokenctl(&["inspect", "--json", &token]);
        assert_eq!(run.code, 1, "{run:#?}");
        assert!(
            run.stdout.contains("duplicate-member") || run.stdout.contains("null-member"),
            "{run:#?}"
        );
    }
}

/// Legacy HMAC JWTs verify only with --allow-shared-secret and an `oct` JWK whose
/// `alg` (or --alg) names the algorithm; without the flag the refusal names it.
#[test]
fn legacy_hmac_jwts_need_allow_shared_secret() {
    use token_jwt::{HmacAlgorithm, HmacKey, TokenType};
    let tmp = TempDir::new("hmac");
    let claims = token_core::Claims::new(serde_json::json!({"role": "legacy"}))
        .issuer("https://legacy.example")
        .audience("api")
        .valid_for(
            &token_core::SystemClock,
            std::time::Duration::from_secs(600),
        )
        .unwrap();
    for alg in HmacAlgorithm::ALL {
        let mut secret = vec![0u8; alg.output_len()];
        getrandom::fill(&mut secret).unwrap();
        let key =
            HmacKey::dangerous_shared_secret(alg, token_core::SecretBytes::new(secret)).unwrap();
        let jwk = tmp
            .write(
                &format!("{alg}.jwk"),
                key.dangerous_to_secret_jwk().expose_secret(),
            )
            .display()
            .to_string();
        let token = key.sign_as(&TokenType::Jwt, &claims).unwrap();
        let token = token.expose_secret();
        let run = verify(&jwk, token, &["--allow-shared-secret", "--aud", "api"]);
        let out = run.json();
        assert_eq!(out["role"], "legacy");
        assert_eq!(out["iss"], "https://legacy.example");
        assert!(run.stderr.contains("shared secret"), "{run:#?}");
        assert!(
            run.stderr.contains(&format!("verified: JWS {alg}")),
            "{run:#?}"
        );
        // Without the flag: refused, and the message says which flag.
        let line = verify(&jwk, token, &["--aud", "api"]).fails(2).to_owned();
        assert!(line.contains("--allow-shared-secret"), "{line}");
        // Tampered, or wrong audience: rejected as usual.
        verify(
            &jwk,
            &tamper(token, 2),
            &["--allow-shared-secret", "--aud", "api"],
        )
        .rejected("invalid token");
        verify(&jwk, token, &["--allow-shared-secret", "--aud", "billing"])
            .rejected("wrong audience");
    }

    // The algorithm comes from the key: an HS384 token under an HS256 key is refused.
    let hs256 = HmacKey::dangerous_shared_secret(
        HmacAlgorithm::Hs256,
        token_core::SecretBytes::new(vec![5; 48]),
    )
    .unwrap();
    let hs384 = HmacKey::dangerous_shared_secret(
        HmacAlgorithm::Hs384,
        token_core::SecretBytes::new(vec![5; 48]),
    )
    .unwrap()
    .with_key_id(hs256.key_id().clone());
    let jwk = tmp
        .write("hs256.jwk", hs256.dangerous_to_secret_jwk().expose_secret())
        .display()
        .to_string();
    let token = hs384.sign_as(&TokenType::Jwt, &claims).unwrap();
    verify(
        &jwk,
        token.expose_secret(),
        &["--allow-shared-secret", "--aud", "api"],
    )
    .rejected("algorithm not allowed for this key");

    // An `oct` JWK that names no algorithm needs --alg; --alg HS256 needs the flag.
    let mut bare: serde_json::Value =
        serde_json::from_str(hs256.dangerous_to_secret_jwk().expose_secret()).unwrap();
    bare.as_object_mut().unwrap().remove("alg");
    let bare = tmp
        .write("bare.jwk", &bare.to_string())
        .display()
        .to_string();
    let token = hs256.sign_as(&TokenType::Jwt, &claims).unwrap();
    let token = token.expose_secret();
    let line = verify(&bare, token, &["--allow-shared-secret", "--aud", "api"])
        .fails(2)
        .to_owned();
    assert!(line.contains("--alg HS256"), "{line}");
    verify(
        &bare,
        token,
        &["--allow-shared-secret", "--alg", "HS256", "--aud", "api"],
    )
    .ok();
    let line = verify(&bare, token, &["--alg", "HS256", "--aud", "api"])
        .fails(2)
        .to_owned();
    assert!(line.contains("--allow-shared-secret"), "{line}");
    // Beside an ES256 key, an ES256 token verifies without the flag, and an HMAC key
    // never issues.
    let es = issue("es256", &[]);
    tokenctl(&[
        "verify",
        "--key",
        &jwk,
        "--key",
        &p(dir("es256"), "public.jwk"),
        &es,
    ])
    .ok();
    tokenctl(&["issue", "--key", &jwk]).fails(2);
}
