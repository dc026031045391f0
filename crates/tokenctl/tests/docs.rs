//! What `crates/tokenctl/README.md` says, checked against the binary: the exit-code
//! table, the quoted recovery errors, the finding codes `inspect` reports, the
//! configuration file format, and the quoted usage, `--json` and configuration errors.
//! A statement that drifts from the binary fails here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::too_many_lines
)]

mod common;

use std::collections::BTreeSet;

use common::{TempDir, keygen, p, tokenctl};
use secrecy::ExposeSecret;
use serde_json::Value;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

/// The README's table row for exit `code`.
fn exit_row(readme: &str, code: u8) -> String {
    readme
        .lines()
        .find(|l| l.starts_with(&format!("| {code} |")))
        .unwrap_or_else(|| panic!("no row for exit {code}"))
        .to_owned()
}

/// The fenced block of `lang` that follows the line `after`.
fn block_after(readme: &str, after: &str, lang: &str) -> String {
    readme
        .lines()
        .skip_while(|l| !l.contains(after))
        .skip_while(|l| *l != format!("```{lang}"))
        .skip(1)
        .take_while(|l| *l != "```")
        .collect::<Vec<_>>()
        .join("\n")
}

/// The line after `$ <command>` in the README's examples.
fn example_output(readme: &str, command: &str) -> String {
    let mut lines = readme.lines();
    lines
        .find(|l| *l == format!("$ {command}"))
        .unwrap_or_else(|| panic!("no example `$ {command}`"));
    lines.next().unwrap().to_owned()
}

/// The table said a malformed key exits 2, while `key inspect` exits 1 on one.
#[test]
fn the_exit_code_table_says_what_the_binary_does() {
    let readme = readme();
    let one = exit_row(&readme, 1);
    let two = exit_row(&readme, 2);
    assert!(one.contains("a key `key inspect` finds malformed"), "{one}");
    assert!(one.contains("`issue`, which then prints no token"), "{one}");
    assert!(
        one.contains("a wrong wrapping key, recipient key or password"),
        "{one}"
    );
    assert!(
        two.contains("a malformed key given to any command but `key inspect`"),
        "{two}"
    );
    assert!(two.contains("a database that does not exist"), "{two}");

    let tmp = TempDir::new("docs-exit");
    let bad = tmp
        .write("bad.paserk", "k4.public.AAAA")
        .display()
        .to_string();
    tokenctl(&["key", "inspect", &bad]).fails(1);
    for args in [
        vec!["key", "id", &bad],
        vec!["verify", "--key", &bad, "v4.public.AAAA"],
        vec!["issue", "--key", &bad],
        vec!["keyset", "--key", &bad],
    ] {
        tokenctl(&args).fails(2);
    }
    let (keys, _) = keygen(tmp.path(), "v4.public");
    tokenctl(&[
        "issue",
        "--key",
        &p(&keys, "secret.paserk"),
        "--claims",
        r#"{"email":"a@example.com"}"#,
    ])
    .fails(1);
    let db = format!("sqlite://{}", tmp.join("none.db").display());
    tokenctl(&["api-key", "list", "--db", &db]).fails(2);
}

/// The README quoted one message for every wrap, seal and password failure; each
/// says which key was wrong.
#[test]
fn the_quoted_recovery_errors_are_the_binarys() {
    let readme = readme();
    let tmp = TempDir::new("docs-recover");
    let (a, _) = keygen(&tmp.join("a"), "v4.local");
    let (b, _) = keygen(&tmp.join("b"), "v4.local");
    let (to, _) = keygen(&tmp.join("to"), "v4.public");
    let (stranger, _) = keygen(&tmp.join("stranger"), "v4.public");
    let quoted = |line: &str| {
        assert!(
            readme.contains(&format!("- `{line}`")),
            "README does not quote {line:?}"
        );
    };
    let wrapped = tokenctl(&[
        "key",
        "wrap",
        "--with",
        &p(&a, "local.paserk"),
        &p(&b, "local.paserk"),
    ])
    .ok()
    .to_owned();
    let wrapped = tmp.write("wrapped", &wrapped).display().to_string();
    quoted(tokenctl(&["key", "unwrap", "--with", &p(&b, "local.paserk"), &wrapped]).fails(1));
    let sealed = tokenctl(&[
        "key",
        "seal",
        "--to",
        &p(&to, "public.paserk"),
        &p(&a, "local.paserk"),
    ])
    .ok()
    .to_owned();
    let sealed = tmp.write("sealed", &sealed).display().to_string();
    quoted(
        tokenctl(&[
            "key",
            "unseal",
            "--with",
            &p(&stranger, "secret.paserk"),
            &sealed,
        ])
        .fails(1),
    );
    let password = tmp.write("pw", "right\n").display().to_string();
    let wrong = tmp.write("wrong", "wrong\n").display().to_string();
    let protected = tokenctl(&[
        "key",
        "protect",
        "--password-file",
        &password,
        &p(&a, "local.paserk"),
    ])
    .ok()
    .to_owned();
    let protected = tmp.write("protected", &protected).display().to_string();
    quoted(tokenctl(&["key", "unprotect", "--password-file", &wrong, &protected]).fails(1));
}

/// A `dir` JWE got no `encrypted` finding, though the README's table listed it for
/// encrypted tokens: every code `inspect` reports is in the table, and encrypted
/// tokens of every kind report `encrypted`.
#[test]
fn every_finding_code_inspect_reports_is_in_the_readme_table() {
    let readme = readme();
    let documented = |code: &str| {
        readme.lines().filter(|l| l.starts_with("| `")).any(|l| {
            l.split('|')
                .nth(1)
                .is_some_and(|c| c.contains(&format!("`{code}`")))
        })
    };
    let tmp = TempDir::new("docs-findings");
    let direct = token_jwt::DirectKey::generate().unwrap();
    let oct = tmp
        .write("oct.jwk", direct.dangerous_to_secret_jwk().expose_secret())
        .display()
        .to_string();
    let (local, _) = keygen(tmp.path(), "v4.local");
    let (public, _) = keygen(tmp.path(), "v4.public");
    let (es, _) = keygen(tmp.path(), "es256");
    let (recipient, _) = keygen(tmp.path(), "ecdh-es-x25519");
    let issue = |args: &[&str]| {
        let mut all = vec!["issue"];
        all.extend_from_slice(args);
        tokenctl(&all).ok().to_owned()
    };
    let encrypted = [
        issue(&["--key", &oct]),
        issue(&["--key", &p(&local, "local.paserk")]),
        issue(&[
            "--key",
            &p(&es, "secret.jwk"),
            "--encrypt-to",
            &p(&recipient, "public.jwk"),
        ]),
        issue(&["--key", &p(&es, "secret.jwk"), "--encrypt-to", &oct]),
    ];
    let readable = [
        issue(&["--key", &p(&public, "secret.paserk")]),
        issue(&["--key", &p(&es, "secret.pem"), "--typ", "at+jwt"]),
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.".to_owned(),
        "sk_live_aaaa".to_owned(),
    ];
    let mut codes = BTreeSet::new();
    for (token, is_encrypted) in encrypted
        .iter()
        .map(|t| (t, true))
        .chain(readable.iter().map(|t| (t, false)))
    {
        let report: Value = tokenctl(&["inspect", "--json", token]).json();
        let found: Vec<String> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["code"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            found.iter().any(|c| c == "encrypted"),
            is_encrypted,
            "{token}: {found:?}"
        );
        codes.extend(found);
    }
    assert!(codes.len() > 5, "{codes:?}");
    for code in &codes {
        assert!(documented(code), "`{code}` is not in the README's table");
    }
}

/// The TOML format was documented only in a source comment: the README's example
/// is read by `explain` as the README says, and its quoted error is the binary's.
#[test]
fn the_readme_configuration_is_what_explain_reads() {
    let readme = readme();
    let toml = block_after(&readme, "### Configuration file", "toml");
    assert!(
        toml.contains("[access]") && toml.contains("[dangerous]"),
        "{toml}"
    );
    let tmp = TempDir::new("docs-toml");
    let path = tmp.write("tessera.toml", &toml).display().to_string();
    let rows = tokenctl(&["explain", "--json", "--config", &path]).json();
    let lifetime = |job: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["job"] == job)
            .unwrap()["lifetime"]
            .clone()
    };
    assert_eq!(lifetime("access"), "10 min");
    assert_eq!(lifetime("payment"), "5 min");
    assert_eq!(lifetime("service-to-service"), "2 min");
    // With its `[dangerous]` lines in, the example still reads: the raised limit holds.
    let raised = toml
        .replace("# [dangerous]", "[dangerous]")
        .replace("# access_ttl", "access_ttl")
        .replace("ttl = \"10m\"", "ttl = \"1h\"");
    let path = tmp.write("raised.toml", &raised).display().to_string();
    let rows = tokenctl(&["explain", "--json", "--config", &path]).json();
    assert_eq!(rows[0]["lifetime"], "1 h");

    // The quoted error.
    let quoted = example_output(&readme, "tokenctl explain --config tessera.toml");
    let path = tmp
        .write(
            "tessera.toml",
            "issuer = \"https://auth.example\"\naudience = \"api\"\n[access]\nttl = \"1h\"\n",
        )
        .display()
        .to_string();
    let line = tokenctl(&["explain", "--config", &path])
        .fails(2)
        .to_owned();
    assert_eq!(line.replace(&path, "tessera.toml"), quoted);
}

/// The quoted usage error and `--json` rejection are the binary's.
#[test]
fn the_quoted_usage_and_json_errors_are_the_binarys() {
    let readme = readme();
    assert_eq!(
        tokenctl(&["issue"]).fails(2),
        example_output(&readme, "tokenctl issue")
    );
    let tmp = TempDir::new("docs-json");
    let (keys, _) = keygen(tmp.path(), "v4.public");
    let token = tokenctl(&["issue", "--key", &p(&keys, "secret.paserk"), "--aud", "api"])
        .ok()
        .to_owned();
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
        run.fails(1),
        example_output(
            &readme,
            "tokenctl verify --json --key keys/access/public.paserk --aud billing \"$TOKEN\""
        )
    );
}
