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
    let (mut passed, mut failed) = tested?;
    stopped?;

    for build in LEAN_BUILDS.iter().filter(|b| b.tested_in_ci) {
        step(&format!("cargo test, lean: {}", build.describe()));
        if !build.exists() {
            println!(
                "!!! SKIPPED: {} does not exist (yet): no {} to test",
                build.manifest, build.package
            );
            continue;
        }
        // Only this package and its dependencies, without their heavy features: the
        // build proves they stay optional, the tests that the rest works without them.
        let (p, f) = run_tests(cargo().args(["test", "--locked"]).args(build.args()))?;
        passed += p;
        failed += f;
    }

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
    // PostgreSQL, Redis and the reference service of its own, broken under load:
    // under five minutes in this cut.
    step("fault-injection suite (cargo xtask faults --quick)");
    crate::faults::run(&crate::faults::Args { quick: true })?;

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

    println!("\nxtask ci: all checks passed");
    println!("summary: {passed} passed, {failed} failed");
    Ok(())
}

/// A build that must leave out the heavy dependencies (OpenSSL, josekit, sqlx, the Redis
/// client): checked by a tidy test (`cargo tree`), and, when `tested_in_ci`, built and
/// tested by `ci`.
pub(crate) struct LeanBuild {
    /// The package.
    pub(crate) package: &'static str,
    /// Its manifest, from the workspace root: a build whose crate does not exist is
    /// skipped, loudly.
    pub(crate) manifest: &'static str,
    /// The features, on top of `--no-default-features`.
    pub(crate) features: &'static str,
    /// Whether `ci` runs its tests.
    pub(crate) tested_in_ci: bool,
}

impl LeanBuild {
    pub(crate) fn exists(&self) -> bool {
        crate::util::root().join(self.manifest).is_file()
    }

    /// `-p PACKAGE --no-default-features [--features FEATURES]`.
    pub(crate) fn args(&self) -> Vec<&'static str> {
        let mut args = vec!["-p", self.package, "--no-default-features"];
        if !self.features.is_empty() {
            args.extend(["--features", self.features]);
        }
        args
    }

    pub(crate) fn describe(&self) -> String {
        self.args().join(" ")
    }
}

/// The lean builds: PASETO and SQLite without OpenSSL, josekit, sqlx or Redis.
pub(crate) const LEAN_BUILDS: &[LeanBuild] = &[
    LeanBuild {
        package: "token-policy",
        manifest: "crates/token-policy/Cargo.toml",
        features: "sqlite",
        tested_in_ci: true,
    },
    LeanBuild {
        package: "tessera",
        manifest: "crates/tessera/Cargo.toml",
        features: "paseto,sqlite",
        tested_in_ci: true,
    },
    // Its tests need an HTTP client (reqwest, OpenSSL): the tree is checked, the
    // tests run in the main `cargo test`.
    LeanBuild {
        package: "token-axum",
        manifest: "crates/token-axum/Cargo.toml",
        features: "",
        tested_in_ci: false,
    },
];

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
    use super::{LEAN_BUILDS, parse_result};

    #[test]
    fn lean_builds_name_their_package_and_features() {
        let args: Vec<Vec<&str>> = LEAN_BUILDS.iter().map(super::LeanBuild::args).collect();
        assert_eq!(
            args[0],
            [
                "-p",
                "token-policy",
                "--no-default-features",
                "--features",
                "sqlite"
            ]
        );
        assert!(
            LEAN_BUILDS
                .iter()
                .any(|b| b.package == "tessera" && b.features == "paseto,sqlite" && b.tested_in_ci)
        );
        let axum = LEAN_BUILDS.iter().find(|b| b.package == "token-axum");
        assert_eq!(
            axum.map(super::LeanBuild::args),
            Some(vec!["-p", "token-axum", "--no-default-features"])
        );
    }

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
