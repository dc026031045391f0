//! `cargo xtask ci`: every check CI makes, in order, failing fast.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::services;
use crate::util::{Result, available, cargo, exec, step};

pub(crate) fn run() -> Result {
    step("cargo fmt --check");
    exec("cargo fmt", cargo().args(["fmt", "--all", "--check"]))?;

    step("cargo clippy");
    exec(
        "cargo clippy",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]),
    )?;

    step("cargo test");
    let env = services::up()?;
    let tested = run_tests(
        cargo()
            .args(["test", "--workspace", "--all-features", "--locked"])
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
    );
    let stopped = services::down();
    let tested = tested?;
    stopped?;

    step("cargo doc");
    exec(
        "cargo doc",
        cargo()
            .args([
                "doc",
                "--workspace",
                "--all-features",
                "--no-deps",
                "--locked",
            ])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )?;

    step("cargo deny check licenses bans sources");
    if available("cargo", &["deny", "--version"]) {
        exec(
            "cargo deny",
            cargo().args(["deny", "check", "licenses", "bans", "sources"]),
        )?;
    } else {
        println!(
            "!!! SKIPPED: cargo-deny is not installed (`cargo install cargo-deny`). \
             The advisory database needs network access, so `advisories` is never run here."
        );
    }
    step("fuzz smoke (every target, committed seeds)");
    if available("cargo", &["fuzz", "--version"]) {
        let seconds = std::env::var("TESSERA_FUZZ_SMOKE_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(20);
        crate::fuzz::smoke(seconds)?;
    } else {
        println!(
            "!!! SKIPPED: cargo-fuzz is not installed (`cargo install cargo-fuzz`); the fuzz \
             bodies still ran on their corpora in `cargo test` (crates/token-fuzz)."
        );
    }

    let (passed, failed) = tested;
    println!("\nxtask ci: all checks passed");
    println!("summary: {passed} passed, {failed} failed");
    Ok(())
}

/// Runs `cargo test`, echoing its output, and adds up its `test result:` lines.
fn run_tests(cmd: &mut Command) -> Result<(u64, u64)> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start cargo test: {e}"))?;
    let (mut passed, mut failed) = (0, 0);
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let line = line?;
            println!("{line}");
            if let Some((p, f)) = parse_result(&line) {
                passed += p;
                failed += f;
            }
        }
    }
    let status = child.wait()?;
    if status.success() {
        Ok((passed, failed))
    } else {
        Err(format!("cargo test failed ({status}): {passed} passed, {failed} failed").into())
    }
}

/// `test result: ok. 50 passed; 0 failed; …` → `(50, 0)`.
fn parse_result(line: &str) -> Option<(u64, u64)> {
    let rest = line.strip_prefix("test result: ")?;
    let count = |word: &str| {
        rest.split(';')
            .find_map(|part| {
                part.trim()
                    .trim_start_matches("ok. ")
                    .trim_start_matches("FAILED. ")
                    .strip_suffix(word)
            })
            .and_then(|n| n.trim().parse::<u64>().ok())
    };
    Some((count(" passed")?, count(" failed")?))
}

#[cfg(test)]
mod tests {
    use super::parse_result;

    #[test]
    fn parses_cargo_test_summaries() {
        assert_eq!(
            parse_result(
                "test result: ok. 50 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.21s"
            ),
            Some((50, 0))
        );
        assert_eq!(
            parse_result(
                "test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out"
            ),
            Some((3, 2))
        );
        assert_eq!(parse_result("running 3 tests"), None);
    }
}
