//! `cargo xtask fuzz`: cargo-fuzz (libFuzzer) on the stable toolchain.
//!
//! cargo-fuzz needs nightly-only flags (`-Zsanitizer`); `RUSTC_BOOTSTRAP=1` lets the
//! stable compiler accept them. Install the runner once with `cargo install cargo-fuzz`.

use std::path::PathBuf;

use crate::util::{Result, available, cargo, exec, output, root, step};

/// Options of `cargo xtask fuzz`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The fuzz target (a file in `fuzz/fuzz_targets/`, without `.rs`).
    target: Option<String>,
    /// Run every target in turn.
    #[arg(long, conflicts_with = "target")]
    all: bool,
    /// Seconds per target.
    #[arg(long, default_value_t = 60)]
    time: u64,
}

fn fuzz_dir() -> PathBuf {
    root().join("fuzz")
}

fn targets() -> Result<Vec<String>> {
    let mut cmd = cargo();
    cmd.current_dir(fuzz_dir()).args(["fuzz", "list"]);
    Ok(output(&mut cmd)?.lines().map(str::to_owned).collect())
}

/// The CI smoke: every target for `seconds` on its committed seeds.
pub(crate) fn smoke(seconds: u64) -> Result {
    run(&Args {
        target: None,
        all: true,
        time: seconds,
    })
}

pub(crate) fn run(args: &Args) -> Result {
    if !available("cargo", &["fuzz", "--version"]) {
        return Err("cargo-fuzz is not installed: run `cargo install cargo-fuzz`".into());
    }
    let all = targets()?;
    let chosen = match (&args.target, args.all) {
        (Some(t), false) if all.contains(t) => vec![t.clone()],
        (Some(t), false) => {
            return Err(format!("unknown fuzz target `{t}`; targets: {}", all.join(", ")).into());
        }
        (None, true) => all,
        _ => return Err("name a target or pass --all".into()),
    };
    for target in chosen {
        step(&format!("fuzz {target} for {} s", args.time));
        // Run on a copy of the committed seeds so the fuzzer's finds never dirty the
        // repository; crashes land in fuzz/artifacts/<target>/.
        let seeds = fuzz_dir().join("corpus").join(&target);
        let work = root().join("target").join("fuzz-corpus").join(&target);
        std::fs::create_dir_all(&work)?;
        if seeds.is_dir() {
            for entry in std::fs::read_dir(&seeds)? {
                let path = entry?.path();
                if let Some(name) = path.file_name() {
                    std::fs::copy(&path, work.join(name))?;
                }
            }
        }
        let mut cmd = cargo();
        cmd.current_dir(fuzz_dir())
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "run", "-O", &target])
            .arg(&work)
            .arg("--")
            .arg(format!("-max_total_time={}", args.time))
            .arg(format!(
                "-dict={}",
                fuzz_dir().join("dict").join("tokens.dict").display()
            ))
            .arg("-rss_limit_mb=4096")
            .arg("-print_final_stats=1");
        exec(&format!("fuzz target {target}"), &mut cmd)?;
    }
    Ok(())
}
