//! Every fuzz body on every file of its committed corpus (`fuzz/corpus/<target>/`).
//! A target without a corpus fails: seeds are part of the harness.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

fn corpus(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

#[test]
fn every_target_runs_its_corpus() {
    for (name, body) in token_fuzz::TARGETS {
        let dir = corpus(name);
        let entries: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{name}: no corpus at {}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        assert!(!entries.is_empty(), "{name}: empty corpus");
        for path in entries {
            let data = std::fs::read(&path).unwrap();
            body(&data);
        }
    }
}

#[test]
fn every_target_has_a_fuzz_target_file() {
    for (name, _) in token_fuzz::TARGETS {
        let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/fuzz_targets")
            .join(format!("{name}.rs"));
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(
            text.contains(&format!("token_fuzz::{name}(")),
            "{name}: target does not call its body"
        );
    }
}
