//! `cargo xtask ci`: every check CI makes, in order, failing fast.

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
            "--locked",
            "--",
            "-D",
            "warnings",
        ]),
    )?;

    step("cargo test");
    let env = services::up()?;
    let tested = exec(
        "cargo test",
        cargo()
            .args(["test", "--workspace", "--locked"])
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
    );
    let stopped = services::down();
    tested?;
    stopped?;

    step("cargo doc");
    exec(
        "cargo doc",
        cargo()
            .args(["doc", "--workspace", "--no-deps", "--locked"])
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
    println!("\nxtask ci: all checks passed");
    Ok(())
}
