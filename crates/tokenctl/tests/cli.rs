//! The command line as a new user meets it: usage errors, `--json` errors, the
//! sensitive-claim check on `issue`, keys for JWE recipients, durations, protected keys,
//! databases that do not exist, and TOML configuration through `explain`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::too_many_lines
)]

mod common;

use common::{TempDir, keygen, p, tokenctl};
use serde_json::{Value, json};

/// The one JSON object a `--json` failure writes on stderr.
fn json_error(run: &common::Run, code: i32) -> Value {
    assert_eq!(run.code, code, "{run:#?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{run:#?}");
    serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("not JSON ({e}): {run:#?}"))
}

/// `tokenctl issue` with no arguments used to say "the following required arguments
/// were not provided:" and stop there; "did you mean" tips were dropped too.
#[test]
fn usage_errors_keep_claps_whole_message_and_point_to_the_commands_help() {
    for (args, want) in [
        (
            &["issue"][..],
            "error: the following required arguments were not provided: --key <FILE>; \
             usage: tokenctl issue --key <FILE> (see tokenctl issue --help)",
        ),
        (
            &["key", "wrap"][..],
            "error: the following required arguments were not provided: --with \
             <WRAPPING_KEY>, <FILE>; usage: tokenctl key wrap --with <WRAPPING_KEY> <FILE> \
             (see tokenctl key wrap --help)",
        ),
        (
            &["verfy"][..],
            "error: unrecognized subcommand 'verfy'; tip: a similar subcommand exists: \
             'verify'; usage: tokenctl [OPTIONS] <COMMAND> (see tokenctl --help)",
        ),
        (
            &["api-key"][..],
            "error: tokenctl api-key needs a command: one of create, verify, revoke, roll, \
             list (see tokenctl api-key --help)",
        ),
        (
            &[][..],
            "error: tokenctl needs a command: one of keygen, issue, verify, inspect, key, \
             jwks, keyset, explain, api-key, keys, demo, dpop (see tokenctl --help)",
        ),
    ] {
        assert_eq!(tokenctl(args).fails(2), want, "{args:?}");
    }
    let line = tokenctl(&["issue", "--key", "k", "--clams", "{}"])
        .fails(2)
        .to_owned();
    assert!(
        line.starts_with(
            "error: unexpected argument '--clams' found; tip: a similar argument exists: '--claims'"
        ) && line.ends_with("(see tokenctl issue --help)"),
        "{line}"
    );
    let line = tokenctl(&["verify", "--key", "k", "--leeway", "5x"])
        .fails(2)
        .to_owned();
    assert_eq!(
        line,
        "error: invalid value '5x' for '--leeway <DURATION>': malformed duration: the unit \
         must be s, m, h or d (see tokenctl verify --help)"
    );
    let line = tokenctl(&["keygen", "rsa"]).fails(2).to_owned();
    assert!(
        line.contains("[possible values: v4.local,")
            && line.ends_with("(see tokenctl keygen --help)"),
        "{line}"
    );
    // Help and version are not errors.
    assert!(tokenctl(&["issue", "--help"]).ok().contains("--key <FILE>"));
    tokenctl(&["--version"]).ok();
}

/// With `--json`, errors and rejections used to be plain text on stderr.
#[test]
fn json_errors_are_json_on_stderr_with_the_same_exit_codes() {
    let tmp = TempDir::new("cli-json");
    let (keys, _) = keygen(tmp.path(), "v4.public");
    let (other, _) = keygen(tmp.path(), "v4.local");
    let token = tokenctl(&["issue", "--key", &p(&keys, "secret.paserk"), "--aud", "api"])
        .ok()
        .to_owned();
    // A rejection: exit 1, the shared phrase as `reason`, the detail apart.
    let run = tokenctl(&[
        "verify",
        "--json",
        "--key",
        &p(&keys, "public.paserk"),
        "--aud",
        "billing",
        &token,
    ]);
    assert_eq!(
        json_error(&run, 1),
        json!({"error": "rejected", "reason": "wrong audience"})
    );
    assert!(run.stdout.is_empty());
    let run = tokenctl(&[
        "verify",
        "--key",
        &p(&keys, "public.paserk"),
        "v4.public.AAAA",
        "--json",
    ]);
    let error = json_error(&run, 1);
    assert_eq!(error["error"], "rejected");
    assert_eq!(error["reason"], "malformed token");
    assert!(error["detail"].is_string(), "{error}");
    let run = tokenctl(&[
        "verify",
        "--json",
        "--key",
        &p(&other, "local.paserk"),
        &token,
    ]);
    assert_eq!(json_error(&run, 1)["reason"], "wrong token type");
    // A usage error: exit 2, the message as `reason`; a parse error too.
    let run = tokenctl(&[
        "verify",
        "--json",
        "--key",
        &tmp.arg("missing.paserk"),
        &token,
    ]);
    let error = json_error(&run, 2);
    assert_eq!(error["error"], "usage");
    assert!(
        error["reason"]
            .as_str()
            .unwrap()
            .starts_with("cannot read key file"),
        "{error}"
    );
    let run = tokenctl(&["--json", "issue"]);
    let error = json_error(&run, 2);
    assert_eq!(error["error"], "usage");
    assert!(
        error["reason"].as_str().unwrap().contains("--key <FILE>"),
        "{error}"
    );
    // A failed check: exit 1.
    let run = tokenctl(&["inspect", "--json", "not-a-token"]);
    let error = json_error(&run, 1);
    assert_eq!(error["error"], "failed");
    assert!(run.json()["findings"].is_array());
    // Without --json, the same failures are one line of text.
    tokenctl(&[
        "verify",
        "--key",
        &p(&keys, "public.paserk"),
        "--aud",
        "billing",
        &token,
    ])
    .rejected("wrong audience");
}

/// `issue` used to print a sensitive claim (an error for `inspect`, a refusal for
/// `TokenService`) as a `warning:` and exit 0; camelCase names and hits after the
/// first are flagged too.
#[test]
fn issue_refuses_sensitive_claims_naming_every_hit_as_inspect_does() {
    let tmp = TempDir::new("cli-sensitive");
    let (keys, _) = keygen(tmp.path(), "v4.public");
    let (es, _) = keygen(tmp.path(), "es256");
    let claims = r#"{"password":"x","card_number":"4111","userEmail":"a","creditCard":"b","refreshToken":"c","apiKey":"d","HomeAddress":"e","role":"admin"}"#;
    for key in [p(&keys, "secret.paserk"), p(&es, "secret.jwk")] {
        let run = tokenctl(&["issue", "--key", &key, "--aud", "api", "--claims", claims]);
        let line = run.fails(1).to_owned();
        assert!(run.stdout.is_empty(), "no token: {run:#?}");
        assert!(
            line.starts_with("error: not issued: sensitive-claim: "),
            "{line}"
        );
        for name in [
            "password",
            "card_number",
            "userEmail",
            "creditCard",
            "refreshToken",
            "apiKey",
            "HomeAddress",
        ] {
            assert!(
                line.contains(&format!("claim `{name}` looks sensitive")),
                "{name}: {line}"
            );
        }
        assert!(!line.contains("`role`"), "{line}");
        let run = tokenctl(&[
            "issue", "--json", "--key", &key, "--aud", "api", "--claims", claims,
        ]);
        let error = json_error(&run, 1);
        assert_eq!(error["error"], "failed");
    }
    // Encrypted tokens may carry them; warnings do not stop a token.
    let (local, _) = keygen(tmp.path(), "v4.local");
    tokenctl(&[
        "issue",
        "--key",
        &p(&local, "local.paserk"),
        "--claims",
        claims,
    ])
    .ok();
    let run = tokenctl(&["issue", "--key", &p(&keys, "secret.paserk"), "--json"]);
    let out = run.json();
    assert!(out["token"].is_string());
    assert_eq!(out["warnings"][0]["code"], "missing-aud", "{out}");
    let run = tokenctl(&["issue", "--key", &p(&keys, "secret.paserk")]);
    run.ok();
    assert!(run.stderr.starts_with("warning: missing-aud: "), "{run:#?}");
}

/// `keygen` had no kind for JWE recipients, and `issue --encrypt-to` with a signing
/// JWK blamed its key type ("not a JWE recipient key (EC P-256 …)") rather than its
/// `alg: ES256`.
#[test]
fn keygen_makes_jwe_recipients_and_signing_keys_are_never_recipients() {
    let tmp = TempDir::new("cli-jwe");
    let (signer, _) = keygen(tmp.path(), "eddsa");
    for kind in ["ecdh-es-p256", "ecdh-es-x25519"] {
        let (dir, kid) = keygen(tmp.path(), kind);
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        files.sort();
        assert_eq!(files, ["public.jwk", "secret.jwk"], "{kind}");
        let public: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("public.jwk")).unwrap())
                .unwrap();
        assert_eq!(public["alg"], "ECDH-ES+A256KW");
        assert_eq!(public["use"], "enc");
        assert_eq!(public["kid"], kid.as_str());
        assert!(public.get("d").is_none());
        let token = tokenctl(&[
            "issue",
            "--key",
            &p(&signer, "secret.jwk"),
            "--encrypt-to",
            &p(&dir, "public.jwk"),
            "--aud",
            "api",
        ])
        .ok()
        .to_owned();
        assert_eq!(token.split('.').count(), 5);
        tokenctl(&[
            "verify",
            "--key",
            &p(&dir, "secret.jwk"),
            "--key",
            &p(&signer, "public.jwk"),
            "--aud",
            "api",
            &token,
        ])
        .ok();
        // Published with `use: enc`; never a signing key.
        let jwks = tokenctl(&["jwks", "--key", &p(&dir, "public.jwk")]).json();
        assert_eq!(jwks["keys"][0]["use"], "enc");
        tokenctl(&["issue", "--key", &p(&dir, "secret.jwk")]).fails(2);
    }
    let (es, _) = keygen(tmp.path(), "es256");
    let issue_to = |recipient: &str| {
        tokenctl(&[
            "issue",
            "--key",
            &p(&signer, "secret.jwk"),
            "--encrypt-to",
            recipient,
        ])
        .fails(2)
        .to_owned()
    };
    let line = issue_to(&p(&es, "public.jwk"));
    assert!(
        line.contains("a signing key (`alg: ES256`), not an encryption key")
            && line.contains("tokenctl keygen ecdh-es-p256"),
        "{line}"
    );
    // A PEM key cannot say it is for encryption: a P-256 PEM is a signing key.
    let line = issue_to(&p(&es, "public.pem"));
    assert!(line.contains("taken for a signing key (ES256)"), "{line}");
    let line = issue_to(&p(&signer, "public.jwk"));
    assert!(line.contains("`alg: EdDSA`"), "{line}");
}

/// `--ttl 1h30m` used to be refused; so did a password-protected key anywhere but
/// `key unprotect`.
#[test]
fn combined_durations_and_password_protected_keys() {
    let tmp = TempDir::new("cli-inputs");
    let (keys, _) = keygen(tmp.path(), "v4.public");
    let (local, _) = keygen(tmp.path(), "v4.local");
    let token = tokenctl(&[
        "issue",
        "--key",
        &p(&keys, "secret.paserk"),
        "--aud",
        "api",
        "--ttl",
        "1h30m",
        "--now",
        "2030-01-01T00:00:00Z",
    ])
    .ok()
    .to_owned();
    let claims = tokenctl(&[
        "verify",
        "--key",
        &p(&keys, "public.paserk"),
        "--aud",
        "api",
        "--now",
        "2030-01-01T01:00:00Z",
        "--leeway",
        "1m30s",
        &token,
    ])
    .json();
    assert_eq!(claims["iat"], "2030-01-01T00:00:00Z");
    assert_eq!(claims["exp"], "2030-01-01T01:30:00Z");
    tokenctl(&["issue", "--key", &p(&keys, "secret.paserk"), "--ttl", "30m1h"])
        .fails_with(2, "error: invalid value '30m1h' for '--ttl <DURATION>': malformed duration: units go from the largest to the smallest");

    // Protected keys, recovered with --password-file where they are read.
    let password = tmp
        .write("password", "correct horse battery staple\n")
        .display()
        .to_string();
    let wrong = tmp.write("wrong", "Tr0ub4dor&3\n").display().to_string();
    let protect = |key: &str, name: &str| {
        let protected = tokenctl(&["key", "protect", "--password-file", &password, key])
            .ok()
            .to_owned();
        tmp.write(name, &protected).display().to_string()
    };
    let local_pw = protect(&p(&local, "local.paserk"), "local.pw");
    let secret_pw = protect(&p(&keys, "secret.paserk"), "secret.pw");
    let local_token = tokenctl(&[
        "issue",
        "--key",
        &local_pw,
        "--password-file",
        &password,
        "--aud",
        "api",
    ])
    .ok()
    .to_owned();
    assert!(local_token.starts_with("v4.local."));
    tokenctl(&[
        "verify",
        "--key",
        &local_pw,
        "--password-file",
        &password,
        "--aud",
        "api",
        &local_token,
    ])
    .ok();
    tokenctl(&[
        "verify",
        "--key",
        &p(&local, "local.paserk"),
        "--aud",
        "api",
        &local_token,
    ])
    .ok();
    let public_token = tokenctl(&[
        "issue",
        "--key",
        &secret_pw,
        "--password-file",
        &password,
        "--aud",
        "api",
    ])
    .ok()
    .to_owned();
    tokenctl(&[
        "verify",
        "--key",
        &p(&keys, "public.paserk"),
        "--aud",
        "api",
        &public_token,
    ])
    .ok();
    let keyset = tokenctl(&["keyset", "--key", &secret_pw, "--password-file", &password]).json();
    assert!(
        keyset["keys"][0]["kid"]
            .as_str()
            .unwrap()
            .starts_with("k4.pid.")
    );
    let ids = tokenctl(&["key", "id", &local_pw, "--password-file", &password])
        .ok()
        .to_owned();
    assert_eq!(
        ids,
        tokenctl(&["key", "id", &p(&local, "local.paserk")]).ok()
    );
    // Without the password: said what to pass; a wrong one: exit 1, as `key unprotect`.
    let line = tokenctl(&["issue", "--key", &local_pw]).fails(2).to_owned();
    assert!(line.contains("pass --password-file"), "{line}");
    let line = tokenctl(&["verify", "--key", &local_pw, &local_token])
        .fails(2)
        .to_owned();
    assert!(line.contains("pass --password-file"), "{line}");
    tokenctl(&["issue", "--key", &local_pw, "--password-file", &wrong]).fails_with(
        1,
        &format!("error: {local_pw}: cannot recover the key: wrong password"),
    );
}

/// `--db sqlite://typo.db` used to create an empty database and answer "unknown key";
/// `api-key create` defaulted to live keys while the reference service defaults to test.
#[test]
fn a_missing_database_is_an_error_except_for_create_and_keys_are_test_keys_by_default() {
    let tmp = TempDir::new("cli-db");
    let missing = tmp.join("typo.db");
    let url = format!("sqlite://{}", missing.display());
    let key = format!("sk_test_{}", "a".repeat(49));
    for args in [
        vec!["api-key", "verify", "--db", &url, &key],
        vec!["api-key", "list", "--db", &url],
        vec!["api-key", "revoke", "k_1", "--db", &url],
        vec!["api-key", "roll", "k_1", "--overlap", "0s", "--db", &url],
    ] {
        tokenctl(&args).fails_with(2, &format!("error: no database at {}", missing.display()));
        assert!(!missing.exists(), "{args:?} created the database");
    }
    let run = tokenctl(&["api-key", "create", "--db", &url, "--name", "ci"]);
    let key = run.ok().to_owned();
    assert!(key.starts_with("sk_test_"), "{key}");
    assert!(
        run.stderr
            .contains(&format!("created the database {}", missing.display())),
        "{run:#?}"
    );
    let run = tokenctl(&[
        "api-key", "create", "--db", &url, "--name", "ci-2", "--env", "live",
    ]);
    assert!(run.ok().starts_with("sk_live_"));
    assert!(!run.stderr.contains("created the database"), "{run:#?}");
    let info = tokenctl(&["api-key", "verify", "--db", &url, &key, "--json"]).json();
    assert_eq!(info["env"], "test");
}

/// `[dangerous]` used to apply after the lifetimes were checked (so `[access] ttl =
/// "1h"` beside `[dangerous] access_ttl = "1h"` was refused), errors named the Rust
/// method `dangerous_raise_*`, and `explain` printed the default limit.
#[test]
fn explain_applies_dangerous_first_names_toml_keys_and_prints_the_limit_in_force() {
    let tmp = TempDir::new("cli-toml");
    let config = |name: &str, toml: &str| {
        tmp.write(
            name,
            &format!("issuer = \"https://id.example\"\naudience = \"shop\"\n{toml}"),
        )
        .display()
        .to_string()
    };
    let raised = config(
        "raised.toml",
        "[access]\nttl = \"1h\"\n[dangerous]\naccess_ttl = \"1h\"\n",
    );
    let rows = tokenctl(&["explain", "--json", "--config", &raised]).json();
    assert_eq!(rows[0]["lifetime"], "1 h");
    assert!(
        rows[0]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "lifetime at most 1 h"),
        "{}",
        rows[0]
    );
    let text = tokenctl(&["explain", "--config", &raised]).ok().to_owned();
    assert!(
        text.contains("WARNING: access ttl raised from 900s to 3600s"),
        "{text}"
    );
    for (toml, want) in [
        (
            "[access]\nttl = \"1h\"\n",
            "[access] ttl = \"1h\" exceeds the access limit of 900s; raising it needs [dangerous] access_ttl = \"1h\"",
        ),
        (
            "[access]\nttl = 15\n",
            "[access] ttl (line 4): invalid type: integer `15`, expected a string",
        ),
        (
            "[dangerous]\naccess = \"1h\"\n",
            "[dangerous] access (line 4): unknown field `access`",
        ),
    ] {
        let path = config("bad.toml", toml);
        let line = tokenctl(&["explain", "--config", &path])
            .fails(2)
            .to_owned();
        assert!(line.contains(want), "{toml}: {line}");
        assert!(!line.contains("dangerous_raise"), "{line}");
    }
}
