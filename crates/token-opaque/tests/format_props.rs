//! Properties of the token format: the parser never panics and accepts exactly the
//! tokens the generator makes; any mutation of a valid token is rejected by the
//! checksum or, failing that, by the lookup.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use proptest::prelude::*;
use proptest::test_runner::Config as RunnerConfig;
use secrecy::ExposeSecret;
use token_core::format::OPAQUE_BODY_LEN;
use token_core::{OpaqueKind, TokenFormat};
use token_opaque::{BASE62_ALPHABET, Error, MAX_OPAQUE_TOKEN_LEN, Prefixes};

proptest! {
    #![proptest_config(RunnerConfig::with_cases(2000))]

    #[test]
    fn parser_never_panics(s in "\\PC{0,100}") {
        let _ = Prefixes::default().parse(&s);
    }

    #[test]
    fn parser_never_panics_on_token_like_input(
        s in "(sk_live_|sk_test_|rt_|ses_|evt_|prt_|x_|_)?[0-9A-Za-z_é-]{0,70}"
    ) {
        let p = Prefixes::default();
        if let Ok(parsed) = p.parse(&s) {
            // Whatever is accepted has the documented shape.
            let prefix = p.get(parsed.kind()).unwrap();
            prop_assert!(s.starts_with(prefix));
            prop_assert_eq!(s.len(), prefix.len() + OPAQUE_BODY_LEN);
            prop_assert_eq!(TokenFormat::detect(&s), Ok(TokenFormat::Opaque(parsed.kind())));
        }
    }

    #[test]
    fn long_input_is_refused_without_scanning(extra in 1usize..10_000) {
        let s = "a".repeat(MAX_OPAQUE_TOKEN_LEN + extra);
        prop_assert_eq!(
            Prefixes::default().parse(&s).unwrap_err(),
            Error::Malformed("longer than any opaque token")
        );
    }

    #[test]
    fn generated_tokens_parse_to_their_kind(k in 0usize..6) {
        let kind = OpaqueKind::ALL[k];
        let p = Prefixes::default();
        let t = p.generate(kind).unwrap();
        prop_assert_eq!(p.parse(t.expose_secret()).unwrap().kind(), kind);
        prop_assert_eq!(TokenFormat::detect(t.expose_secret()), Ok(TokenFormat::Opaque(kind)));
    }
}

/// CRC32 detects every error burst of up to 32 bits, so every single-character change
/// anywhere in a token (prefix, random part or checksum) is rejected before lookup.
#[test]
fn every_single_character_substitution_is_rejected_by_the_parser() {
    let p = Prefixes::default();
    for kind in OpaqueKind::ALL {
        let token = p.generate(kind).unwrap();
        let token = token.expose_secret();
        for i in 0..token.len() {
            for &c in BASE62_ALPHABET.iter().chain(b"_-") {
                let mut b = token.as_bytes().to_vec();
                if b[i] == c {
                    continue;
                }
                b[i] = c;
                let mutated = String::from_utf8(b).unwrap();
                assert!(
                    p.parse(&mutated).is_err(),
                    "{kind:?}: substitution at {i} with {} accepted",
                    char::from(c)
                );
            }
        }
    }
}

/// Mutations of a stored key, looked up in a store.
#[cfg(feature = "sqlite")]
mod mutations {
    use std::sync::Arc;

    use proptest::test_runner::TestRunner;
    use token_opaque::{Environment, NewApiKey, OpaqueTokens, SqliteStore};

    use super::*;

    #[derive(Clone, Debug)]
    enum Mutation {
        Replace(usize, char),
        Insert(usize, char),
        Delete(usize),
        Swap(usize, usize),
        Many(Vec<(usize, char)>),
    }

    fn apply(token: &str, m: &Mutation) -> String {
        let mut chars: Vec<char> = token.chars().collect();
        let n = chars.len();
        match m {
            Mutation::Replace(i, c) => chars[i % n] = *c,
            Mutation::Insert(i, c) => chars.insert(i % (n + 1), *c),
            Mutation::Delete(i) => {
                chars.remove(i % n);
            }
            Mutation::Swap(i, j) => chars.swap(i % n, j % n),
            Mutation::Many(edits) => {
                for (i, c) in edits {
                    chars[i % n] = *c;
                }
            }
        }
        chars.into_iter().collect()
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        let ch = prop_oneof![
            proptest::char::range('0', '9'),
            proptest::char::range('A', 'Z'),
            proptest::char::range('a', 'z'),
            Just('_'),
            any::<char>(),
        ];
        prop_oneof![
            (any::<usize>(), ch.clone()).prop_map(|(i, c)| Mutation::Replace(i, c)),
            (any::<usize>(), ch.clone()).prop_map(|(i, c)| Mutation::Insert(i, c)),
            any::<usize>().prop_map(Mutation::Delete),
            (any::<usize>(), any::<usize>()).prop_map(|(i, j)| Mutation::Swap(i, j)),
            proptest::collection::vec((any::<usize>(), ch), 2..8).prop_map(Mutation::Many),
        ]
    }

    /// Any mutation of a real API key is refused: by the parser (checksum, shape) or, for
    /// the rare mutation that keeps a valid checksum, by the lookup.
    #[test]
    fn any_mutation_of_a_valid_key_is_rejected() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (tokens, key) = rt.block_on(async {
            let tokens = OpaqueTokens::new(Arc::new(SqliteStore::memory().await.unwrap()));
            let key = tokens
                .api_keys()
                .create(NewApiKey::new("acct", "k", Environment::Live))
                .await
                .unwrap();
            (tokens, key.key.expose_secret().to_owned())
        });
        assert!(rt.block_on(tokens.api_keys().verify(&key)).is_ok());
        let mut runner = TestRunner::new(RunnerConfig::with_cases(3000));
        let reached_lookup = std::cell::Cell::new(0u32);
        runner
            .run(&mutation(), |m| {
                let mutated = apply(&key, &m);
                if mutated == key {
                    return Ok(());
                }
                let result = rt.block_on(tokens.api_keys().verify(&mutated));
                match result {
                    Err(Error::Malformed(_) | Error::BadChecksum | Error::WrongKind { .. }) => {}
                    Err(Error::NotFound) => reached_lookup.set(reached_lookup.get() + 1),
                    other => prop_assert!(false, "{m:?} gave {other:?}"),
                }
                Ok(())
            })
            .unwrap();
        // A CRC32 collision among a few thousand mutations is very unlikely; the lookup
        // stays the second line of defence either way.
        let reached = reached_lookup.get();
        assert!(reached <= 2, "{reached} mutations passed the checksum");
    }
}
