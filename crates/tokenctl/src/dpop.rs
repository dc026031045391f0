//! `tokenctl dpop`: DPoP (RFC 9449) proofs and key thumbprints, for trying a service
//! that takes DPoP-bound tokens from the command line.

use std::path::PathBuf;

use clap::Subcommand;
use token_core::{Clock as _, SystemClock};
use token_jwt::dpop::{DpopVerifier, ProofRequest, make_proof};

use crate::error::{Failure, Result};
use crate::keyfile::KeyFile;
use crate::util;

/// DPoP proofs and key thumbprints.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a DPoP proof (a compact JWS, `typ: dpop+jwt`) for one request.
    Proof(ProofArgs),
    /// Print the RFC 7638 thumbprint (`jkt`) of a key: what a bound token's
    /// `cnf.jkt` holds.
    Thumbprint(ThumbprintArgs),
}

#[derive(Debug, clap::Args)]
struct ProofArgs {
    /// The client's private key: a JWK (ES256 or EdDSA) as `tokenctl keygen` writes
    /// it (`secret.jwk`), or a PEM.
    #[arg(long, value_name = "KEY")]
    key: PathBuf,
    /// The request's HTTP method (`htm`), such as GET or POST.
    #[arg(long, value_name = "METHOD")]
    htm: String,
    /// The request's URI (`htu`); a query and fragment are left out.
    #[arg(long, value_name = "URL")]
    htu: String,
    /// The access token the request carries (`ath` is its hash).
    #[arg(long, value_name = "TOKEN")]
    access_token: Option<String>,
    /// The server's nonce (from a `DPoP-Nonce` header).
    #[arg(long, value_name = "N")]
    nonce: Option<String>,
    /// The password file of a password-protected key.
    #[arg(long, value_name = "PATH")]
    password_file: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct ThumbprintArgs {
    /// The key (private or public JWK, or PEM).
    #[arg(value_name = "KEY")]
    key: PathBuf,
    /// The password file of a password-protected key.
    #[arg(long, value_name = "PATH")]
    password_file: Option<PathBuf>,
}

pub(crate) fn run(args: &Args, json: bool) -> Result<()> {
    match &args.command {
        Command::Proof(a) => proof(a, json),
        Command::Thumbprint(a) => thumbprint(a, json),
    }
}

fn proof(args: &ProofArgs, json: bool) -> Result<()> {
    let method = args.htm.trim();
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(Failure::usage(
            "--htm is an HTTP method such as GET or POST",
        ));
    }
    if token_jwt::dpop::normalise_uri(&args.htu).is_none() {
        return Err(Failure::usage(
            "--htu is an absolute http(s) URL, such as https://api.example.com/me",
        ));
    }
    if let Some(nonce) = &args.nonce {
        // RFC 9449 section 8.1: NQCHAR, at least one.
        if nonce.is_empty()
            || !nonce
                .bytes()
                .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
        {
            return Err(Failure::usage(
                "--nonce is one or more visible ASCII characters without quotes or backslashes",
            ));
        }
    }
    let file = KeyFile::load_with(&args.key, args.password_file.as_deref())?;
    let key = file.signing_key(None)?;
    let alg = key.algorithm();
    if !DpopVerifier::new().allowed_algorithms().contains(&alg) {
        return Err(Failure::usage(format!(
            "a DPoP key is ES256 or EdDSA (tokenctl keygen es256 | eddsa); this one is {}",
            alg.name()
        )));
    }
    let proof = make_proof(
        &key,
        &ProofRequest {
            method,
            uri: &args.htu,
            access_token: args.access_token.as_deref(),
            nonce: args.nonce.as_deref(),
        },
        SystemClock.now(),
    )
    .map_err(|e| Failure::usage(format!("cannot make the proof: {e}")))?;
    if json {
        util::out_json(
            &serde_json::json!({
                "proof": proof,
                "jkt": key.verifying_key().thumbprint(),
                "alg": alg.name(),
            }),
            false,
        )
    } else {
        util::out(&proof)
    }
}

fn thumbprint(args: &ThumbprintArgs, json: bool) -> Result<()> {
    let file = KeyFile::load_with(&args.key, args.password_file.as_deref())?;
    let jkt = file.thumbprint()?;
    if json {
        util::out_json(&serde_json::json!({ "jkt": jkt }), false)
    } else {
        util::out(&jkt)
    }
}
