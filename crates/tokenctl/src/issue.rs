//! `tokenctl issue --key FILE [--claims JSON|@file] [--ttl 15m] [--iss ..] [--aud ..]
//! [--sub ..] [--footer JSON] [--implicit-assertion STR]`.
//!
//! The token kind follows from the key: `k4.local`/`k3.local` → `v4.local`/`v3.local`;
//! `k4.secret`/`k3.secret` → `v4.public`/`v3.public`; a private JWK or PEM → a JWS with
//! the key's algorithm; an `oct` JWK → a `dir` JWE. `--encrypt-to` wraps a JWS in a
//! JWE for a recipient (signed, then encrypted).

use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};
use token_core::{Audience, Claims, Clock, RegisteredClaim, Rfc3339, SystemClock, Timestamp};
use token_jwt::{Algorithm, TokenType};

use crate::error::{Failure, Result};
use crate::inspect;
use crate::keyfile::{Decrypter, Key, KeyFile, Local, Recipient, Secret};
use crate::util::{note, out, out_json, parse_duration, parse_timestamp, read_text};

/// The lifetime when neither `--ttl` nor the claims say otherwise.
const DEFAULT_TTL: Duration = Duration::from_secs(15 * 60);

/// Arguments of `issue`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The signing or encryption key: a PASERK (`local` or `secret`), a private JWK or
    /// PEM, or an `oct` JWK (`dir` JWE).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The claims: a JSON object, or `@FILE` to read it from a file. Registered claims
    /// (`iss`, `sub`, `aud`, `exp`, `nbf`, `iat`, `jti`) may be set here too; times as
    /// Unix seconds or RFC 3339.
    #[arg(long, value_name = "JSON|@FILE")]
    claims: Option<String>,
    /// Lifetime: `exp` is now + TTL (default 15m, unless the claims set `exp`): `90s`,
    /// `15m`, `1h30m`, `7d`.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    ttl: Option<Duration>,
    /// `iss`.
    #[arg(long, value_name = "ISSUER")]
    iss: Option<String>,
    /// `aud` (repeat for several audiences).
    #[arg(long, value_name = "AUDIENCE")]
    aud: Vec<String>,
    /// `sub`.
    #[arg(long, value_name = "SUBJECT")]
    sub: Option<String>,
    /// PASETO: the footer, written exactly as given: a JSON object that verifiers accept
    /// (at most 2048 bytes, nested 2 levels, 16 members, no repeated member, a `kid`
    /// that is a key id, and a PASERK id only the key's own). Default:
    /// `{"kid":"<key id>"}`.
    #[arg(long, value_name = "JSON")]
    footer: Option<String>,
    /// PASETO: the implicit assertion the token is bound to (authenticated, not carried).
    #[arg(long, value_name = "STR")]
    implicit_assertion: Option<String>,
    /// JWS: the `typ` header (default `JWT`; `at+jwt` for RFC 9068 access tokens).
    #[arg(long, value_name = "TYP")]
    typ: Option<String>,
    /// PEM and RSA keys: the JWS algorithm (RS256 or PS256 for RSA keys).
    #[arg(long, value_name = "ALG", value_parser = parse_signing_algorithm)]
    alg: Option<Algorithm>,
    /// JWS: encrypt the signed token to this recipient (a public EC P-256/X25519 JWK or
    /// PEM for `ECDH-ES+A256KW`, or an `oct` JWK for `dir`): a nested JWE.
    #[arg(long, value_name = "FILE")]
    encrypt_to: Option<PathBuf>,
    /// Issue as of this instant instead of now (RFC 3339).
    #[arg(long, value_name = "RFC3339", value_parser = parse_timestamp)]
    now: Option<Timestamp>,
    /// The password of a password-protected key (`local-pw`, `secret-pw` PASERK): a
    /// file holding it (one trailing newline is ignored).
    #[arg(long, value_name = "P")]
    password_file: Option<PathBuf>,
}

/// Parses a JWS algorithm name among `among` (any case).
pub(crate) fn parse_algorithm(s: &str, among: &[Algorithm]) -> Result<Algorithm, String> {
    among
        .iter()
        .copied()
        .find(|a| a.name() == s)
        .or_else(|| {
            among
                .iter()
                .copied()
                .find(|a| a.name().eq_ignore_ascii_case(s))
        })
        .ok_or_else(|| {
            let names: Vec<&str> = among.iter().map(|a| a.name()).collect();
            let verify_only = Algorithm::ALL
                .iter()
                .any(|a| !a.can_sign() && a.name().eq_ignore_ascii_case(s));
            if verify_only {
                format!(
                    "{s} is verified, never signed, here: sign with one of {}",
                    names.join(", ")
                )
            } else {
                format!("unsupported algorithm {s:?} (one of {})", names.join(", "))
            }
        })
}

/// Parses `--alg` for `issue`: the algorithms that sign.
fn parse_signing_algorithm(s: &str) -> Result<Algorithm, String> {
    parse_algorithm(s, &Algorithm::SIGNING)
}

fn time_claim(name: &str, value: &Value) -> Result<Timestamp> {
    let bad = || {
        Failure::usage(format!(
            "claim `{name}` must be Unix seconds or an RFC 3339 date-time"
        ))
    };
    match value {
        Value::Number(n) => n
            .as_i64()
            .and_then(|s| Timestamp::from_unix_seconds(s).ok())
            .ok_or_else(bad),
        Value::String(s) => Timestamp::parse_rfc3339(s).map_err(|_| bad()),
        _ => Err(bad()),
    }
}

fn string_claim(name: &str, value: Value) -> Result<String> {
    match value {
        Value::String(s) => Ok(s),
        _ => Err(Failure::usage(format!("claim `{name}` must be a string"))),
    }
}

/// Reads `--claims`: inline JSON or `@FILE`.
fn claims_object(arg: Option<&str>) -> Result<Map<String, Value>> {
    let Some(arg) = arg else {
        return Ok(Map::new());
    };
    let text = match arg.strip_prefix('@') {
        Some(path) => read_text(std::path::Path::new(path), "claims file")?,
        None => arg.to_owned(),
    };
    // The same strict reading every verifier applies: a repeated name is refused, not
    // resolved (a verifier would refuse the token).
    match token_core::json::from_slice::<Value>(text.as_bytes()) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Failure::usage("--claims must be a JSON object")),
        Err(e) => Err(Failure::usage(format!("--claims: {}", json_error(&e)))),
    }
}

/// What is wrong with a JSON argument, for a usage error.
fn json_error(e: &token_core::Error) -> String {
    match e {
        token_core::Error::DuplicateMember(name) => format!("`{name}` is named more than once"),
        token_core::Error::MalformedJson(why) => format!("not valid JSON ({why})"),
        other => other.to_string(),
    }
}

/// Builds the claims from `--claims`, the flags and the clock.
fn build_claims(args: &Args) -> Result<Claims<Map<String, Value>>> {
    let mut custom = claims_object(args.claims.as_deref())?;
    let mut claims = Claims::new(Map::new());
    for claim in RegisteredClaim::ALL {
        let Some(value) = custom.remove(claim.name()) else {
            continue;
        };
        let name = claim.name();
        match claim {
            RegisteredClaim::Iss => claims.iss = Some(string_claim(name, value)?),
            RegisteredClaim::Sub => claims.sub = Some(string_claim(name, value)?),
            RegisteredClaim::Jti => claims.jti = Some(string_claim(name, value)?),
            RegisteredClaim::Aud => {
                claims.aud = Some(match value {
                    Value::String(a) => Audience::One(a),
                    Value::Array(items) => Audience::Many(
                        items
                            .into_iter()
                            .map(|a| string_claim(name, a))
                            .collect::<Result<_>>()?,
                    ),
                    _ => {
                        return Err(Failure::usage(
                            "claim `aud` must be a string or an array of strings",
                        ));
                    }
                });
            }
            RegisteredClaim::Exp => claims.exp = Some(time_claim(name, &value)?),
            RegisteredClaim::Nbf => claims.nbf = Some(time_claim(name, &value)?),
            RegisteredClaim::Iat => claims.iat = Some(time_claim(name, &value)?),
            _ => {}
        }
    }
    claims.custom = custom;
    if let Some(iss) = &args.iss {
        claims.iss = Some(iss.clone());
    }
    if let Some(sub) = &args.sub {
        claims.sub = Some(sub.clone());
    }
    match args.aud.as_slice() {
        [] => {}
        [one] => claims.aud = Some(Audience::One(one.clone())),
        many => claims.aud = Some(Audience::Many(many.to_vec())),
    }
    let now = args.now.unwrap_or_else(|| SystemClock.now());
    if claims.exp.is_some() && args.ttl.is_some() {
        return Err(Failure::usage(
            "the claims set `exp` and --ttl is given: use one of them",
        ));
    }
    if claims.exp.is_none() {
        let ttl = args.ttl.unwrap_or(DEFAULT_TTL);
        if ttl.is_zero() {
            return Err(Failure::usage("--ttl must be positive"));
        }
        let start = claims.iat.unwrap_or(now);
        claims.iat = Some(start);
        claims.nbf = Some(claims.nbf.unwrap_or(start));
        claims.exp = Some(
            start
                .checked_add(ttl)
                .map_err(|_| Failure::usage("--ttl is too long"))?,
        );
    }
    if claims.jti.is_none() {
        claims = claims
            .random_token_id()
            .map_err(|e| Failure::usage(e.to_string()))?;
    }
    Ok(claims)
}

/// A signed or encrypted token and what it is.
struct Issued {
    token: SecretString,
    format: String,
    kid: String,
}

/// The footer to write: `{"kid":"<key id>"}`, or `--footer`, which must be JSON that
/// every verifier accepts (`check`: the key's own footer check, the library's reading).
fn paseto_footer(
    args: &Args,
    kid: &str,
    check: impl Fn(&[u8]) -> Result<(), token_paseto::Error>,
) -> Result<Vec<u8>> {
    match &args.footer {
        None => Ok(json!({ "kid": kid }).to_string().into_bytes()),
        Some(footer) => {
            token_core::json::check(footer.as_bytes())
                .map_err(|e| Failure::usage(format!("--footer: {}", json_error(&e))))?;
            check(footer.as_bytes()).map_err(|e| match e {
                token_paseto::Error::InvalidFooter(why) => {
                    Failure::usage(format!("--footer: {why} (verifiers refuse such a footer)"))
                }
                other => Failure::usage(format!("--footer: {other}")),
            })?;
            Ok(footer.as_bytes().to_vec())
        }
    }
}

fn paseto_only(args: &Args) -> Result<()> {
    if args.typ.is_some() || args.encrypt_to.is_some() {
        return Err(Failure::usage(
            "--typ and --encrypt-to apply to JWTs; this key issues PASETO tokens",
        ));
    }
    Ok(())
}

fn jose_only(args: &Args) -> Result<()> {
    if args.footer.is_some() || args.implicit_assertion.is_some() {
        return Err(Failure::usage(
            "--footer and --implicit-assertion apply to PASETO tokens; this key issues JWTs",
        ));
    }
    Ok(())
}

fn issue_paseto(
    args: &Args,
    file: &KeyFile,
    claims: &Claims<Map<String, Value>>,
) -> Result<Issued> {
    paseto_only(args)?;
    let message = claims
        .to_json::<Rfc3339>()
        .map_err(|e| Failure::usage(format!("claims: {e}")))?;
    let assertion = args
        .implicit_assertion
        .as_deref()
        .unwrap_or_default()
        .as_bytes();
    let err = |e: token_paseto::Error| Failure::usage(format!("cannot issue: {e}"));
    let (token, format, kid) = match &file.key {
        Key::Local(local) => {
            let kid = local.id().to_string();
            let footer = paseto_footer(args, &kid, |f| match local {
                Local::V4(k) => k.check_footer(f),
                Local::V3(k) => k.check_footer(f),
            })?;
            let token = match local {
                Local::V4(k) => k.encrypt_raw(&message, &footer, assertion),
                Local::V3(k) => k.encrypt_raw(&message, &footer, assertion),
            }
            .map_err(err)?;
            let format = match local {
                Local::V4(_) => "v4.local",
                Local::V3(_) => "v3.local",
            };
            (token, format, kid)
        }
        Key::Secret(secret) => {
            let kid = secret.public().id().to_string();
            let footer = paseto_footer(args, &kid, |f| match secret {
                Secret::V4(k) => k.check_footer(f),
                Secret::V3(k) => k.check_footer(f),
            })?;
            let token = match secret {
                Secret::V4(k) => k.sign_raw(&message, &footer, assertion),
                Secret::V3(k) => k.sign_raw(&message, &footer, assertion),
            }
            .map_err(err)?;
            let format = match secret {
                Secret::V4(_) => "v4.public",
                Secret::V3(_) => "v3.public",
            };
            (token, format, kid)
        }
        _ => return Err(Failure::usage("not a PASETO issuing key")),
    };
    Ok(Issued {
        token,
        format: format.to_owned(),
        kid,
    })
}

fn issue_jose(args: &Args, file: &KeyFile, claims: &Claims<Map<String, Value>>) -> Result<Issued> {
    jose_only(args)?;
    let cannot = |e: token_jwt::Error| Failure::usage(format!("cannot issue: {e}"));
    // An `oct` key issues a directly encrypted JWT.
    if let Some(Decrypter::Direct(key)) = file.decrypter()? {
        if args.typ.is_some() || args.encrypt_to.is_some() {
            return Err(Failure::usage(
                "a `dir` key encrypts directly: --typ and --encrypt-to do not apply",
            ));
        }
        let token = key.encrypt(claims).map_err(cannot)?;
        return Ok(Issued {
            token,
            format: "JWE dir A256GCM".into(),
            kid: key.key_id().to_string(),
        });
    }
    let key = file.signing_key(args.alg)?;
    let typ = args
        .typ
        .as_deref()
        .map_or(TokenType::Jwt, TokenType::from_name);
    let Some(recipient_path) = &args.encrypt_to else {
        let token = key.sign_as(&typ, claims).map_err(cannot)?;
        return Ok(Issued {
            token,
            format: format!("JWS {}", key.algorithm()),
            kid: key.key_id().to_string(),
        });
    };
    if typ != TokenType::Jwt {
        return Err(Failure::usage(
            "a nested JWE carries a plain JWT inside: --typ does not apply with --encrypt-to",
        ));
    }
    let recipient = KeyFile::load_with(recipient_path, args.password_file.as_deref())?;
    match recipient.recipient()? {
        Recipient::Ecdh(to) => Ok(Issued {
            token: to.encrypt_signed(&key, claims).map_err(cannot)?,
            format: format!(
                "JWE ECDH-ES+A256KW A256GCM (nested JWS {})",
                key.algorithm()
            ),
            kid: to.key_id().to_string(),
        }),
        Recipient::Direct(to) => Ok(Issued {
            token: to.encrypt_signed(&key, claims).map_err(cannot)?,
            format: format!("JWE dir A256GCM (nested JWS {})", key.algorithm()),
            kid: to.key_id().to_string(),
        }),
    }
}

/// Runs `issue`.
pub(crate) fn run(args: &Args, json: bool) -> Result<()> {
    let file = KeyFile::load_with(&args.key, args.password_file.as_deref())?;
    let claims = build_claims(args)?;
    let issued = match &file.key {
        Key::Local(_) | Key::Secret(_) => issue_paseto(args, &file, &claims)?,
        Key::Jwk(_) | Key::Pem(_) => issue_jose(args, &file, &claims)?,
        Key::Public(_) | Key::Keyset(_) | Key::Jwks(_) => {
            return Err(Failure::usage(format!(
                "{}: a public key cannot issue tokens; give the secret key",
                args.key.display()
            )));
        }
        Key::Protected(p) => {
            return Err(Failure::usage(format!(
                "{}: a {}.{} PASERK must be recovered first ({})",
                args.key.display(),
                p.version.prefix(),
                p.kind.name(),
                if p.kind.is_password() {
                    "pass --password-file, or tokenctl key unprotect"
                } else {
                    "tokenctl key unwrap or unseal"
                }
            )));
        }
    };
    // Lint what would be issued, with `inspect`'s severities: a finding of severity
    // error (a sensitive claim in a readable payload: what `TokenService` refuses)
    // withholds the token and exits 1; warnings are reported beside it.
    let report = inspect::analyse(issued.token.expose_secret());
    let errors: Vec<&inspect::Finding> = report
        .findings
        .iter()
        .filter(|f| f.severity == inspect::Severity::Error)
        .collect();
    let warnings: Vec<&inspect::Finding> = report
        .findings
        .iter()
        .filter(|f| f.severity == inspect::Severity::Warning)
        .collect();
    if !errors.is_empty() {
        // One line, naming every finding.
        return Err(Failure::failed(format!(
            "not issued: {} (fix: {})",
            errors
                .iter()
                .map(|f| format!("{}: {}", f.code, f.message))
                .collect::<Vec<_>>()
                .join("; "),
            errors.first().map(|f| f.fix.as_str()).unwrap_or_default()
        )));
    }
    if json {
        out_json(
            &json!({
                "token": issued.token.expose_secret(),
                "format": issued.format,
                "kid": issued.kid,
                "warnings": warnings
                    .iter()
                    .map(|f| json!({ "code": f.code, "message": f.message }))
                    .collect::<Vec<_>>(),
            }),
            true,
        )
    } else {
        for finding in &warnings {
            note(&format!("warning: {}: {}", finding.code, finding.message));
        }
        out(issued.token.expose_secret())
    }
}
