//! `tokenctl`: the tessera command line.
//!
//! Keys (`keygen`, `key`, `jwks`, `keyset`), tokens (`issue`, `verify`, `inspect`), the
//! policy (`explain`), API keys (`api-key`), the key table a fleet shares (`keys`), DPoP
//! proofs (`dpop`) and the whole taxonomy end to end (`demo`).
//!
//! Exit codes: 0 success; 1 token rejected, finding of severity error, or wrong key or
//! password; 2 usage or input error. Every error is one line on stderr: text, or with
//! `--json` one JSON object (`{"error": …, "reason": …}`).

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod api_key;
mod demo;
mod dpop;
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

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

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
    /// DPoP (RFC 9449): make a proof for a request, print a key's thumbprint.
    Dpop(dpop::Args),
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
        Command::Dpop(args) => dpop::run(&args, json),
    }
}

/// A one-thread async runtime for the commands that talk to a database.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::usage(format!("cannot start the async runtime: {e}")))
}

/// Whether `--json` is among the arguments, before any `--` (for errors found before
/// the arguments could be parsed).
fn json_requested(args: &[std::ffi::OsString]) -> bool {
    args.iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a == "--json")
}

/// Prints `failure` on stderr: one line of text, or one JSON object with `--json`.
fn report(failure: &Failure, json: bool) {
    if json {
        eprintln!("{}", util::json_text(&failure.to_json(), true));
    } else {
        eprintln!("{failure}");
    }
}

/// The command the arguments name (`tokenctl key wrap`), as far as they name one, for
/// the pointer to its `--help`.
fn command_path(args: &[std::ffi::OsString]) -> String {
    let mut command = Cli::command();
    let mut path = vec!["tokenctl".to_owned()];
    for arg in args.iter().skip(1).filter_map(|a| a.to_str()) {
        let Some(sub) = command.find_subcommand(arg).cloned() else {
            continue;
        };
        path.push(sub.get_name().to_owned());
        command = sub;
    }
    path.join(" ")
}

/// clap's whole message on one line (missing arguments, "did you mean", the usage),
/// pointing to the command's `--help`.
fn usage_failure(e: &clap::Error, args: &[std::ffi::OsString]) -> Failure {
    use clap::error::ErrorKind;
    let rendered = e.render().to_string();
    let path = command_path(args);
    if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        // The help of a command that needs a subcommand: name them.
        let commands: Vec<&str> = rendered
            .lines()
            .skip_while(|l| !l.starts_with("Commands:"))
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .filter_map(|l| l.split_whitespace().next())
            .filter(|c| *c != "help")
            .collect();
        return Failure::usage(format!(
            "{path} needs a command: one of {} (see {path} --help)",
            commands.join(", ")
        ));
    }
    let mut line = String::new();
    let mut after_colon = false;
    let mut in_list = false;
    for raw in rendered.lines() {
        let text = raw.trim();
        if text.is_empty() || text.starts_with("For more information") {
            continue;
        }
        let text = text.strip_prefix("error: ").unwrap_or(text);
        let item = raw.starts_with(' ') && !text.starts_with("tip:");
        if line.is_empty() {
            line.push_str(text);
        } else if item && after_colon {
            line.push(' ');
            line.push_str(text);
        } else if item && in_list {
            line.push_str(", ");
            line.push_str(text);
        } else if item && text.starts_with('[') {
            line.push(' ');
            line.push_str(text);
        } else if let Some(usage) = text.strip_prefix("Usage: ") {
            line.push_str("; usage: ");
            line.push_str(usage);
        } else {
            line.push_str("; ");
            line.push_str(text);
        }
        in_list = item;
        after_colon = text.ends_with(':');
    }
    Failure::usage(format!("{line} (see {path} --help)"))
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

    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let json = json_requested(&args);
    let parsed = Cli::command()
        .try_get_matches_from(&args)
        .and_then(|matches| Cli::from_arg_matches(&matches).map(|cli| (cli, matches)));
    let mut cli = match parsed {
        Ok((cli, matches)) => {
            let mut cli = cli;
            // `--kid` labels the `--key` given before it: known from the positions.
            if let (Command::Verify(args), Some(("verify", sub))) =
                (&mut cli.command, matches.subcommand())
            {
                if let Err(failure) = args.label_keys(sub) {
                    report(&failure, json);
                    return ExitCode::from(failure.exit_code());
                }
            }
            cli
        }
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            let failure = usage_failure(&e, &args);
            report(&failure, json);
            return ExitCode::from(failure.exit_code());
        }
    };
    cli.json |= json;
    let json = cli.json;
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            report(&failure, json);
            ExitCode::from(failure.exit_code())
        }
    }
}
