//! `tokenctl jwks --key FILE…` and `tokenctl keyset --key FILE…`: publishing public
//! keys.
//!
//! A PASETO key set is `token_paseto::PublicKeySet`'s document (the PASETO counterpart
//! of a JWKS; `tokenctl verify` reads it as a `--key`), v4 keys first:
//!
//! ```text
//! {
//!   "keys": [
//!     { "kid": "k4.pid.…", "paserk": "k4.public.…", "version": "v4", "purpose": "public" }
//!   ]
//! }
//! ```
//!
//! `kid` is the PASERK id of `paserk` (what issuers write in the footer `kid`); a reader
//! recomputes it from `paserk` and refuses an entry where they differ.

use std::path::PathBuf;

use serde_json::Value;
use token_jwt::{Algorithm, Jwks};
use token_paseto::PublicKeySet;

use crate::error::{Failure, Result};
use crate::issue::parse_algorithm;
use crate::keyfile::{Key, Public, load_all};
use crate::util::out_json;

/// Arguments of `jwks`.
#[derive(Debug, clap::Args)]
pub(crate) struct JwksArgs {
    /// JOSE key files (JWK, JWKS or PEM; public or private: only public parts are printed).
    #[arg(long = "key", value_name = "FILE", required = true, num_args = 1..)]
    keys: Vec<PathBuf>,
    /// The JWS algorithm of PEM keys and of RSA JWKs that do not name one.
    #[arg(long, value_name = "ALG", value_parser = parse_any_algorithm)]
    alg: Option<Algorithm>,
}

/// Parses `--alg` for `jwks`: any algorithm a published key may verify.
fn parse_any_algorithm(s: &str) -> Result<Algorithm, String> {
    parse_algorithm(s, &Algorithm::ALL)
}

/// Arguments of `keyset`.
#[derive(Debug, clap::Args)]
pub(crate) struct KeysetArgs {
    /// PASETO key files (`k3/k4.public` or `.secret`; only public keys are printed).
    #[arg(long = "key", value_name = "FILE", required = true, num_args = 1..)]
    keys: Vec<PathBuf>,
    /// The password of password-protected secret keys (`secret-pw` PASERKs): a file
    /// holding it (one trailing newline is ignored).
    #[arg(long, value_name = "P")]
    password_file: Option<PathBuf>,
}

/// Runs `jwks`.
pub(crate) fn run_jwks(args: &JwksArgs, json: bool) -> Result<()> {
    let files = load_all(&args.keys, None)?;
    let mut jwks = Jwks::new();
    let mut seen: Vec<String> = Vec::new();
    for file in &files {
        if matches!(
            file.key,
            Key::Local(_) | Key::Secret(_) | Key::Public(_) | Key::Keyset(_) | Key::Protected(_)
        ) {
            return Err(Failure::usage(format!(
                "{}: a PASETO key; publish PASETO keys with `tokenctl keyset`",
                file.path.display()
            )));
        }
        let verifying = file.verifying_keys(args.alg)?;
        let encrypting = file.encrypting_keys()?;
        if verifying.is_empty() && encrypting.is_empty() {
            return Err(Failure::usage(format!(
                "{}: no public key to publish",
                file.path.display()
            )));
        }
        for key in verifying {
            let id = key.key_id().to_string();
            if !seen.contains(&id) {
                jwks.push_verifying_key(&key);
                seen.push(id);
            }
        }
        for key in encrypting {
            let id = key.key_id().to_string();
            if !seen.contains(&id) {
                jwks.push_encrypting_key(&key);
                seen.push(id);
            }
        }
    }
    let value: Value = serde_json::from_str(&jwks.to_json())
        .map_err(|e| Failure::usage(format!("cannot encode the JWKS: {e}")))?;
    out_json(&value, json)
}

/// Runs `keyset`.
pub(crate) fn run_keyset(args: &KeysetArgs, json: bool) -> Result<()> {
    let files = load_all(&args.keys, args.password_file.as_deref())?;
    let mut set = PublicKeySet::new();
    for file in &files {
        let keys = match &file.key {
            Key::Public(k) => vec![k.clone()],
            Key::Secret(k) => vec![k.public()],
            Key::Keyset(keys) => keys.clone(),
            Key::Local(_) => {
                return Err(Failure::usage(format!(
                    "{}: a local key is a shared secret and is never published",
                    file.path.display()
                )));
            }
            _ => {
                return Err(Failure::usage(format!(
                    "{}: not a PASETO public or secret key ({}); publish JOSE keys with `tokenctl jwks`",
                    file.path.display(),
                    file.describe()
                )));
            }
        };
        for key in keys {
            match key {
                Public::V4(k) => set.push_v4(k),
                Public::V3(k) => set.push_v3(k),
            }
        }
    }
    let value: Value = serde_json::from_str(&set.to_json())
        .map_err(|e| Failure::usage(format!("cannot encode the key set: {e}")))?;
    out_json(&value, json)
}
