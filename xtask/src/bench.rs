//! `cargo xtask bench`: the criterion benchmarks of every crate.

use crate::util::{Result, cargo, exec, step};

/// Options of `cargo xtask bench`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Short warm-up and measurement times, for spot checks.
    #[arg(long)]
    quick: bool,
}

pub(crate) fn run(args: &Args) -> Result {
    step("cargo bench --workspace");
    let mut cmd = cargo();
    cmd.args(["bench", "--workspace"]);
    if args.quick {
        cmd.args(["--", "--warm-up-time", "1", "--measurement-time", "2"]);
    }
    exec("cargo bench", &mut cmd)
}
