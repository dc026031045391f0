//! `tokenctl explain [--config FILE]`: the policy's decision matrix.

use std::path::PathBuf;

use token_policy::Policy;
use token_policy::config::Config;

use crate::error::{Failure, Result};
use crate::util::{out, out_json};

/// The issuer and audience of the default policy.
const DEFAULT_ISSUER: &str = "https://auth.example";
const DEFAULT_AUDIENCE: &str = "api";

/// Arguments of `explain`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A tessera TOML configuration file; without it, the default policy.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// Runs `explain`.
pub(crate) fn run(args: &Args, json: bool) -> Result<()> {
    let policy = match &args.config {
        None => Policy::new(DEFAULT_ISSUER, DEFAULT_AUDIENCE),
        Some(path) => Config::load(path).and_then(|c| c.policy()).map_err(|e| {
            let message = e.to_string();
            let shown = path.display().to_string();
            if message.contains(&shown) {
                Failure::usage(message)
            } else {
                Failure::usage(format!("{shown}: {message}"))
            }
        })?,
    };
    let explanation = policy.explain();
    if json {
        out_json(&explanation.to_json(), true)
    } else {
        out(explanation.to_string().trim_end())
    }
}
