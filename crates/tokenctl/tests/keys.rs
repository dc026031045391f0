//! `tokenctl keys`: the key table from a terminal. `init` creates the keys and the
//! key-encryption key, `list` shows states without secrets, `rotate` makes the next
//! key sign, `revoke` needs no key-encryption key, `rewrap` moves the table to a new one,
//! and a wrong key-encryption key or a missing database is a clear error.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::os::unix::fs::PermissionsExt as _;

use common::{TempDir, tokenctl};
use serde_json::Value;

fn rows(v: &Value) -> Vec<(String, String, i64)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["job"].as_str().unwrap().to_owned(),
                k["state"].as_str().unwrap().to_owned(),
                k["generation"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn init_list_rotate_revoke_and_rewrap() {
    let dir = TempDir::new("keys");
    let db = format!("sqlite://{}", dir.join("keys.db").display());
    let kek = dir.arg("kek");

    let init = tokenctl(&["keys", "init", "--db", &db, "--kek-file", &kek, "--json"]);
    let listed = init.json();
    assert_eq!(
        rows(&listed),
        [
            ("access".into(), "active".into(), 1),
            ("api-key-pepper".into(), "active".into(), 1),
            ("payment".into(), "active".into(), 1),
        ]
    );
    assert!(
        init.stderr.contains("created the key-encryption key"),
        "{init:?}"
    );
    let kek_text = std::fs::read_to_string(dir.join("kek")).unwrap();
    assert!(kek_text.starts_with("k4.local."));
    let mode = std::fs::metadata(dir.join("kek"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // The documented fields, and no secret material.
    for k in listed.as_array().unwrap() {
        for field in [
            "kid",
            "job",
            "state",
            "created_at",
            "activates_at",
            "retires_at",
        ] {
            assert!(k.get(field).is_some(), "{field} missing in {k}");
        }
    }
    let text = serde_json::to_string(&listed).unwrap();
    assert!(
        !text.contains("k4.local.") && !text.contains("wrap.pie") && !text.contains(&kek_text[9..])
    );

    // init again: nothing added.
    let again = tokenctl(&["keys", "init", "--db", &db, "--kek-file", &kek, "--json"]);
    assert_eq!(again.json().as_array().unwrap().len(), 3);

    // rotate: the next key signs, the old one retires after the job's lifetime.
    let rotated = tokenctl(&["keys", "rotate", "--db", &db, "--kek-file", &kek, "--json"]).json();
    let active = rotated["active"].as_str().unwrap().to_owned();
    let listed = tokenctl(&["keys", "list", "--db", &db, "--json"]).json();
    let access: Vec<&Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["job"] == "access")
        .collect();
    assert_eq!(access.len(), 2);
    assert_eq!(access[0]["state"], "retiring");
    assert!(access[0]["retires_at"].is_string());
    assert_eq!(access[1]["state"], "active");
    assert_eq!(access[1]["kid"], active.as_str());

    // revoke needs no KEK; revoking twice is an error.
    tokenctl(&["keys", "revoke", "--db", &db, &active]).ok();
    tokenctl(&["keys", "revoke", "--db", &db, &active]).fails_with(1, "error: no key");
    let listed = tokenctl(&["keys", "list", "--db", &db, "--json"]).json();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == active.as_str() && k["state"] == "revoked")
    );

    // rewrap: afterwards only the new KEK opens the table.
    let new_kek = dir.arg("kek2");
    let n = tokenctl(&[
        "keys",
        "rewrap",
        "--db",
        &db,
        "--kek-file",
        &kek,
        "--new-kek-file",
        &new_kek,
        "--json",
    ])
    .json();
    // Two access keys (the revoked one is kept as a record), the pepper, the payment key.
    assert_eq!(n["rewrapped"], 4);
    tokenctl(&["keys", "rotate", "--db", &db, "--kek-file", &kek])
        .fails_with(1, "error: wrong key-encryption key");
    tokenctl(&["keys", "rotate", "--db", &db, "--kek-file", &new_kek]).ok();
}

#[test]
fn bad_inputs_are_clear_errors() {
    let dir = TempDir::new("keys-bad");
    let missing = format!("sqlite://{}", dir.join("typo.db").display());
    for args in [
        &["keys", "list", "--db", &missing][..],
        &["keys", "revoke", "--db", &missing, "k4.pid.x"],
    ] {
        tokenctl(args).fails_with(2, "error:");
        assert!(!dir.join("typo.db").exists(), "a typo creates no database");
    }
    let db = format!("sqlite://{}", dir.join("keys.db").display());
    let kek = dir.arg("kek");
    tokenctl(&["keys", "init", "--db", &db, "--kek-file", &kek]).ok();
    // A KEK file that holds something else, and a missing one.
    let junk = dir.write("junk", "not a key\n");
    let line = tokenctl(&[
        "keys",
        "rotate",
        "--db",
        &db,
        "--kek-file",
        junk.to_str().unwrap(),
    ])
    .fails(2)
    .to_owned();
    assert!(
        line.contains("not a k4.local PASERK") && !line.contains("not a key"),
        "{line}"
    );
    tokenctl(&[
        "keys",
        "rotate",
        "--db",
        &db,
        "--kek-file",
        &dir.arg("nope"),
    ])
    .fails_with(2, "error: key-encryption key: cannot read");
    tokenctl(&[
        "keys",
        "rotate",
        "--db",
        &db,
        "--kek-file",
        &kek,
        "--job",
        "jobless",
    ])
    .fails_with(2, "error:");
    tokenctl(&["keys", "list"]).fails_with(2, "error: --db URL is required");
}

/// `tokenctl api-key create` on a database whose key table keeps the API-key pepper:
/// refused without `--kek-file` (the service would never find the key), and with it,
/// the key is hashed with the table's pepper, so a service opening the same table (as
/// the reference service does with `--kek-file`) accepts it with its scopes.
#[test]
fn api_keys_made_with_the_kek_file_verify_in_the_service_sharing_the_table() {
    let dir = TempDir::new("keys-api-key");
    let db = format!("sqlite://{}", dir.join("keys.db").display());
    let kek = dir.arg("kek");
    tokenctl(&["keys", "init", "--db", &db, "--kek-file", &kek]).ok();

    let create = |extra: &[&str]| {
        let mut args = vec![
            "api-key",
            "create",
            "--db",
            &db,
            "--name",
            "gateway",
            "--scopes",
            "introspect",
        ];
        args.extend_from_slice(extra);
        tokenctl(&args)
    };
    let line = create(&[]).fails(2).to_owned();
    assert!(line.contains("--kek-file"), "{line}");
    let key = create(&["--kek-file", &kek]).ok().to_owned();
    assert!(key.starts_with("sk_test_"), "{key}");
    // tokenctl itself finds it again with the same key table.
    let shown = tokenctl(&[
        "api-key",
        "verify",
        "--db",
        &db,
        "--kek-file",
        &kek,
        "--json",
        &key,
    ])
    .json();
    assert_eq!(shown["scopes"], serde_json::json!(["introspect"]));

    // A service built on the table, as the reference service builds itself.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use token_policy::keystore::{Kek, KeyPlan, KeyStore};
        let store = token_policy::config::open_store(&db).await.unwrap();
        let policy = token_policy::Policy::new("tessera-reference-auth", "api");
        let keys = KeyStore::new(
            store.clone(),
            Kek::from_file(dir.join("kek")).unwrap(),
            KeyPlan::for_policy(&policy),
        )
        .unwrap();
        let snapshot = keys.open().await.unwrap();
        let service = token_policy::TokenService::builder_with_keys(policy, snapshot)
            .unwrap()
            .opaque(token_opaque::OpaqueTokens::new(store.clone()))
            .build();
        let info = service.verify_api_key(&key).await.unwrap();
        assert!(info.has_scope("introspect"));
        // A key hashed without the pepper is one the service never finds.
        let plain = token_opaque::OpaqueTokens::new(store)
            .api_keys()
            .create(token_opaque::NewApiKey::new(
                "tokenctl",
                "unpeppered",
                token_opaque::Environment::Test,
            ))
            .await
            .unwrap();
        assert!(
            service
                .verify_api_key(secrecy::ExposeSecret::expose_secret(&plain.key))
                .await
                .is_err()
        );
    });

    // --kek-file on a database without a key table's pepper is a clear error.
    let bare = format!("sqlite://{}", dir.join("bare.db").display());
    let run = tokenctl(&[
        "api-key",
        "create",
        "--db",
        &bare,
        "--name",
        "x",
        "--kek-file",
        &kek,
    ]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("error: the key table has no API-key pepper"),
        "{run:?}"
    );
    assert!(run.stdout.is_empty(), "no key printed: {run:?}");
}
