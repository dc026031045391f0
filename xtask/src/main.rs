//! `cargo xtask`: the project's checks and chores, in Rust so they run wherever cargo does.
//!
//! - `cargo xtask ci` — fmt, clippy, tests (with PostgreSQL and Redis on loopback when
//!   their binaries exist), docs, and cargo-deny when installed. Fails fast.
//! - `cargo xtask services up|down|status` — the integration-test services.
//! - `cargo xtask fuzz <target> [--time S]` / `--all` — cargo-fuzz on the stable toolchain.
//! - `cargo xtask bench [--quick]` — the criterion benchmarks.
//! - `cargo xtask faults [--quick]` — the fault-injection suite (`target/faults/`).
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench;
mod ci;
mod faults;
mod fuzz;
mod services;
mod tidy;
mod util;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "tessera's project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Everything CI checks, in order, failing fast.
    Ci,
    /// Start or stop PostgreSQL and Redis for the integration tests.
    Services {
        #[command(subcommand)]
        action: services::Action,
    },
    /// Run a fuzz target (cargo-fuzz, libFuzzer) for a bounded time.
    Fuzz(fuzz::Args),
    /// Run the criterion benchmarks.
    Bench(bench::Args),
    /// The fault-injection suite: backends and the service broken under load.
    Faults(faults::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Ci => ci::run(),
        Task::Services { action } => services::run(&action),
        Task::Fuzz(args) => fuzz::run(&args),
        Task::Bench(args) => bench::run(&args),
        Task::Faults(args) => faults::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}
