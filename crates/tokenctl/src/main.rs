//! `tokenctl`: the tessera command line.
//!
//! Keys (`keygen`, `key`, `jwks`, `keyset`), tokens (`issue`, `verify`, `inspect`), the
//! policy (`explain`), API keys (`api-key`) and the whole taxonomy end to end (`demo`).
//!
//! Exit codes: 0 success; 1 token rejected, finding of severity error, or wrong key or
//! password; 2 usage or input error. Every error is one line on stderr.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod api_key;
mod demo;
mod error;
mod explain;
mod inspect;
mod issue;
mod jwks;
mod key;
mod keyfile;
mod keygen;
mod keystore;
mod util;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::{Failure, Result};

/// Issue, verify and inspect security tokens; manage keys and API keys.
#[derive(Debug, Parser)]
#[command(name = "tokenctl", version, about, propagate_version = true)]
struct Cli {
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a key pair or a symmetric key into a directory.
    Keygen(keygen::Args),
    /// Issue a token; its kind follows from the key.
    Issue(issue::Args),
    /// Verify a token and print its claims.
    Verify(verify::Args),
    /// Decode a token without verifying it, and lint it.
    Inspect(inspect::Args),
    /// Key management: ids, inspection, wrapping, sealing, password protection.
    Key(key::Args),
    /// Print a JWKS of the public parts of JOSE keys.
    Jwks(jwks::JwksArgs),
    /// Print a PASETO key set: the public PASERKs by id.
    Keyset(jwks::KeysetArgs),
    /// Print the policy's decision matrix.
    Explain(explain::Args),
    /// Create and manage API keys in a database.
    #[command(name = "api-key")]
    ApiKey(api_key::Args),
    /// The key table a fleet shares: init, list, rotate, revoke, rewrap.
    Keys(keystore::Args),
    /// Run every token job end to end on the embedded default.
    Demo(demo::Args),
}

fn run(cli: Cli) -> Result<()> {
    let json = cli.json;
    match cli.command {
        Command::Keygen(args) => keygen::run(&args, json),
        Command::Issue(args) => issue::run(&args, json),
        Command::Verify(args) => verify::run(&args, json),
        Command::Inspect(args) => inspect::run(&args, json),
        Command::Key(args) => key::run(&args, json),
        Command::Jwks(args) => jwks::run_jwks(&args, json),
        Command::Keyset(args) => jwks::run_keyset(&args, json),
        Command::Explain(args) => explain::run(&args, json),
        Command::ApiKey(args) => api_key::run(&args, json),
        Command::Keys(args) => keystore::run(&args, json),
        Command::Demo(args) => demo::run(&args, json),
    }
}

/// A one-thread async runtime for the commands that talk to a database.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::usage(format!("cannot start the async runtime: {e}")))
}

fn main() -> ExitCode {
    // A bug must still end in one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        eprintln!(
            "error: internal error: {}",
            message.replace(['\n', '\r'], " ")
        );
        std::process::exit(2);
    }));

    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    ExitCode::SUCCESS
                }
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    eprintln!("error: a command is required (see tokenctl --help)");
                    ExitCode::from(2)
                }
                _ => {
                    // clap's message is several lines (usage, tips): keep its first.
                    let rendered = e.render().to_string();
                    let first = rendered
                        .lines()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or("error: invalid arguments");
                    eprintln!("{first} (see tokenctl --help)");
                    ExitCode::from(2)
                }
            };
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}
