//! Benchmarks of tessera against the raw libraries underneath (`benches/tokens.rs`),
//! run by `cargo xtask bench`, which writes `target/bench/summary.json` and
//! `docs/PERFORMANCE.md`. Each criterion group holds `tessera` and a `baseline-*` (and
//! optional `peer-*`) measured in the same run, on the same bytes.
#![forbid(unsafe_code)]
