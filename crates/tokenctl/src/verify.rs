//! `tokenctl verify --key FILE [--kid ID]… [--iss ..] [--aud ..] [--implicit-assertion STR]
//! [--leeway 60s] [--max-lifetime D] [--now RFC3339] [--footer STR] [--alg ALG]
//! [--typ T] [--allow-shared-secret] [--password-file P] [TOKEN|-]`.
//!
//! The algorithm always comes from the key, never from the token. One JOSE key given
//! alone (a JWK or a PEM key) verifies whatever `kid` the token names: the caller chose
//! it (an RS256 token from Keycloak names its own `kid`). With several keys (several
//! `--key`, or a JWKS), the token's `kid` (JWS/JWE header or PASETO footer) picks the
//! key; a `kid` that names none of them is a rejection, saying which JWKS entries were
//! skipped and why. A token without a `kid` is accepted only when exactly one key fits
//! it. `--kid ID` names the `--key` given just before it, for keys that carry no `kid`
//! or another one (PEM keys are named by their thumbprint).
//!
//! PASETO tokens are verified by the library's key rings, with their rules: a footer
//! `kid` that is a PASERK id must name one of the given keys, while any other `kid` is
//! the issuer's own name for its key (the official test vectors use such strings), so
//! each given key is tried.
//!
//! Legacy HMAC JWTs (HS256/384/512) are checked only with `--allow-shared-secret` and
//! an `oct` JWK whose `alg` (or `--alg`) names the HMAC algorithm: an HMAC secret lets
//! whoever verifies also forge, so the flag says the caller knows. Without it, an `oct`
//! JWK given for a JWS is refused with a message naming the flag.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value};
use token_core::{
    Claims, FixedClock, KeyId, NumericDate, PasetoPurpose, PasetoVersion, Reason, Rfc3339,
    Timestamp, TokenFormat, TokenVerifier, Validation,
};
use token_jwt::{Algorithm, HmacAlgorithm, HmacKey, JwtVerifier, TokenType, VerifyingKey};
use token_paseto::{
    LocalCipher, LocalKey, PublicKey, PublicVerifier, V3, V4, VerifyOptions, Version,
};

use crate::error::{Failure, Result};
use crate::issue::parse_algorithm;
use crate::keyfile::{
    Decrypter, Key, KeyFile, Local, PasetoKey, Public, load_all, purpose_name, version_name,
};
use crate::util::{echo, note, out_json, parse_duration, parse_timestamp, printable, read_token};

/// Arguments of `verify`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A key file (repeatable): a PASERK, a JWK, a JWKS, a PASETO key set or a PEM key.
    #[arg(long = "key", value_name = "FILE", required = true)]
    keys: Vec<PathBuf>,
    /// JOSE: the key id of the `--key` given just before it (a JWK or PEM key), which a
    /// token's `kid` then names. With several keys, `kid` picks the key; one key alone
    /// verifies whatever `kid` the token names.
    #[arg(long = "kid", value_name = "ID")]
    kids: Vec<String>,
    /// The password of password-protected PASERKs (`local-pw`, `secret-pw`) among the
    /// keys: a file holding it (one trailing newline is ignored).
    #[arg(long, value_name = "P")]
    password_file: Option<PathBuf>,
    /// The `--kid` of each `--key`, by position (set from the parsed command line).
    #[arg(skip)]
    labels: Vec<Option<String>>,
    /// Expected issuer (repeat to accept several).
    #[arg(long, value_name = "ISSUER")]
    iss: Vec<String>,
    /// Expected audience (repeat to accept several). Without it, a token naming an
    /// audience is refused.
    #[arg(long, value_name = "AUDIENCE")]
    aud: Vec<String>,
    /// Expected subject.
    #[arg(long, value_name = "SUBJECT")]
    sub: Option<String>,
    /// PASETO: the implicit assertion the token must be bound to.
    #[arg(long, value_name = "STR")]
    implicit_assertion: Option<String>,
    /// Clock-skew allowance for `exp`, `nbf` and `iat` (at most 1d).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s")]
    leeway: Duration,
    /// Refuse tokens whose `exp - iat` is longer.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    max_lifetime: Option<Duration>,
    /// Evaluate time claims as of this instant (RFC 3339) instead of now.
    #[arg(long, value_name = "RFC3339", value_parser = parse_timestamp)]
    now: Option<Timestamp>,
    /// PASETO: the exact footer the token must carry. Without it any footer is
    /// accepted and shown on stderr.
    #[arg(long, value_name = "STR")]
    footer: Option<String>,
    /// The JWS algorithm of PEM keys and of RSA JWKs that do not name one (ES256, ES384,
    /// ES512, EdDSA, RS256, RS384, RS512, PS256, PS384, PS512); with
    /// --allow-shared-secret, HS256/HS384/HS512 for `oct` JWKs that do not name one.
    #[arg(long, value_name = "ALG", value_parser = parse_verify_algorithm)]
    alg: Option<VerifyAlgorithm>,
    /// JWS: also verify legacy HMAC JWTs (HS256, HS384, HS512) with `oct` JWKs. An HMAC
    /// secret is shared: whoever can verify these tokens can also forge them.
    #[arg(long)]
    allow_shared_secret: bool,
    /// JWS: require this `typ` header (e.g. `at+jwt`). Without it, `typ` must be
    /// absent or `JWT`.
    #[arg(long, value_name = "TYP")]
    typ: Option<String>,
    /// The token; `-` or nothing reads it from standard input.
    #[arg(value_name = "TOKEN|-")]
    token: Option<String>,
}

/// An algorithm named by `--alg`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum VerifyAlgorithm {
    /// A public-key algorithm.
    Public(Algorithm),
    /// An HMAC algorithm (needs --allow-shared-secret).
    Hmac(HmacAlgorithm),
}

/// Parses `--alg` for `verify`: the public-key algorithms, and the HMAC ones.
fn parse_verify_algorithm(s: &str) -> Result<VerifyAlgorithm, String> {
    if let Some(alg) = HmacAlgorithm::ALL
        .into_iter()
        .find(|a| a.name().eq_ignore_ascii_case(s))
    {
        return Ok(VerifyAlgorithm::Hmac(alg));
    }
    parse_algorithm(s, &Algorithm::ALL)
        .map(VerifyAlgorithm::Public)
        .map_err(|_| {
            format!(
                "unsupported algorithm {s:?} (one of {}; HS256, HS384, HS512 with \
                 --allow-shared-secret)",
                Algorithm::ALL.map(Algorithm::name).join(", ")
            )
        })
}

impl Args {
    /// Pairs each `--kid` with the `--key` given just before it, from their positions on
    /// the command line.
    pub(crate) fn label_keys(&mut self, matches: &clap::ArgMatches) -> Result<()> {
        let key_at: Vec<usize> = matches
            .indices_of("keys")
            .map(Iterator::collect)
            .unwrap_or_default();
        let kid_at: Vec<usize> = matches
            .indices_of("kids")
            .map(Iterator::collect)
            .unwrap_or_default();
        let mut labels: Vec<Option<String>> = vec![None; self.keys.len()];
        for (kid, at) in self.kids.iter().zip(kid_at) {
            let slot = key_at.iter().rposition(|k| *k < at).ok_or_else(|| {
                Failure::usage(format!(
                    "--kid {} comes before any --key: give it after the key it names",
                    echo(kid)
                ))
            })?;
            let label = labels
                .get_mut(slot)
                .ok_or_else(|| Failure::usage("--kid without its --key"))?;
            if label.is_some() {
                return Err(Failure::usage(format!(
                    "two --kid for the key {}: one key has one id",
                    self.keys
                        .get(slot)
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                )));
            }
            *label = Some(kid.clone());
        }
        self.labels = labels;
        Ok(())
    }

    /// The `--kid` of each key file, checked: a key id, given to a single JOSE key.
    fn key_ids(&self, files: &[KeyFile]) -> Result<Vec<Option<KeyId>>> {
        files
            .iter()
            .enumerate()
            .map(|(i, file)| {
                let Some(label) = self.labels.get(i).and_then(Option::as_deref) else {
                    return Ok(None);
                };
                if !matches!(file.key, Key::Jwk(_) | Key::Pem(_)) {
                    return Err(Failure::usage(format!(
                        "{}: --kid names a JWK or PEM key; a {} names its keys itself",
                        file.path.display(),
                        file.describe()
                    )));
                }
                KeyId::new(label)
                    .map(Some)
                    .map_err(|e| Failure::usage(format!("--kid {}: {e}", echo(label))))
            })
            .collect()
    }

    /// `--alg`, when it names a public-key algorithm.
    fn public_alg(&self) -> Option<Algorithm> {
        match self.alg {
            Some(VerifyAlgorithm::Public(a)) => Some(a),
            _ => None,
        }
    }

    /// `--alg`, when it names an HMAC algorithm.
    fn hmac_alg(&self) -> Option<HmacAlgorithm> {
        match self.alg {
            Some(VerifyAlgorithm::Hmac(a)) => Some(a),
            _ => None,
        }
    }
}

/// What a successful verification produced.
struct Verified {
    claims: Value,
    format: String,
    kid: String,
    footer: Option<Vec<u8>>,
}

/// The claim checks the flags ask for. The leeway's bound is the library's
/// (`token_core::MAX_LEEWAY`, one day).
fn validation(args: &Args) -> Result<Validation> {
    let mut v = Validation::new()
        .leeway(args.leeway)
        .map_err(|e| Failure::usage(format!("--leeway: {e}")))?;
    if !args.iss.is_empty() {
        v = v.issuers(args.iss.iter().cloned());
    }
    if !args.aud.is_empty() {
        v = v.audiences(args.aud.iter().cloned());
    }
    if let Some(sub) = &args.sub {
        v = v.subject(sub.clone());
    }
    if let Some(max) = args.max_lifetime {
        v = v.max_lifetime(max);
    }
    if let Some(now) = args.now {
        v = v.clock(FixedClock(now));
    }
    if let Some(typ) = &args.typ {
        v = v.token_type(typ.clone());
    }
    Ok(v)
}

/// The decoded footer of a PASETO token (`None` when it has none), read by the library's
/// one parser.
fn paseto_footer(token: &str) -> Result<Option<Vec<u8>>> {
    token_paseto::dangerous_decode_parts(token)
        .map(|parts| parts.footer().map(<[u8]>::to_vec))
        .map_err(|e| Failure::refused(&e))
}

/// Picks the key a token names among `ids`: by `kid`, or the only one.
fn select<'a, T>(
    candidates: &'a [T],
    id: impl Fn(&T) -> &str,
    kid: Option<&str>,
    what: &str,
) -> Result<&'a T> {
    if let Some(kid) = kid {
        return candidates.iter().find(|c| id(c) == kid).ok_or_else(|| {
            Failure::rejected(
                Reason::UnknownKey,
                format!("`kid` {} names none of the given keys", echo(kid)),
            )
        });
    }
    match candidates {
        [only] => Ok(only),
        [] => Err(Failure::rejected(
            Reason::WrongTokenType,
            format!("no given key fits a {what} token"),
        )),
        _ => Err(Failure::rejected(
            Reason::UnknownKey,
            format!(
                "the token names no `kid` and {} of the given keys fit a {what} token",
                candidates.len()
            ),
        )),
    }
}

/// The public keys of version `V` among `candidates`, each once.
fn public_keys<V: Version>(
    candidates: &[PasetoKey<'_>],
    pick: impl Fn(&Public) -> Option<&PublicKey<V>>,
) -> Vec<PublicKey<V>> {
    let mut keys: Vec<PublicKey<V>> = Vec::new();
    for key in candidates.iter().filter_map(|c| match c {
        PasetoKey::Public(p) => pick(p),
        PasetoKey::Local(_) => None,
    }) {
        if !keys.iter().any(|k| k.id() == key.id()) {
            keys.push(key.clone());
        }
    }
    keys
}

/// Verifies with the library's verifier over `keys`: the footer `kid` picks the key
/// (a PASERK id must name one of them; another `kid` is the issuer's own name, and
/// each key is tried).
fn verify_public<V: Version>(
    keys: Vec<PublicKey<V>>,
    token: &str,
    options: &VerifyOptions<'_>,
    validation: &Validation,
) -> Result<token_core::Verified<Map<String, Value>>, token_paseto::Error> {
    PublicVerifier::from_keys(keys)?.verify_with(token, options, validation)
}

/// As [`verify_public`], for `local` keys (copied into the library's key ring).
fn decrypt_local<V: Version>(
    keys: &[&LocalKey<V>],
    token: &str,
    options: &VerifyOptions<'_>,
    validation: &Validation,
) -> Result<token_core::Verified<Map<String, Value>>, token_paseto::Error> {
    let copy = |k: &LocalKey<V>| LocalKey::<V>::from_bytes(k.expose_secret_bytes());
    let Some((first, rest)) = keys.split_first() else {
        return Err(token_core::Error::UnknownKeyId.into());
    };
    let mut cipher = LocalCipher::new(copy(first)?);
    for key in rest {
        if cipher.keys().status(key.id().as_str()).is_none() {
            cipher.rotate_to(copy(key)?)?;
        }
    }
    cipher.decrypt_with(token, options, validation)
}

/// A PASETO verifier's refusal, with what this tool knows about the keys it was given.
fn paseto_refusal(e: token_paseto::Error, what: &str, keys: usize) -> Failure {
    match e {
        token_paseto::Error::Core(token_core::Error::UnknownKeyId) => Failure::rejected(
            Reason::UnknownKey,
            "the footer `kid` names none of the given keys",
        ),
        token_paseto::Error::MissingKeyId => Failure::rejected(
            Reason::UnknownKey,
            format!("the token names no `kid` and {keys} of the given keys fit a {what} token"),
        ),
        e => Failure::refused(&e),
    }
}

fn verify_paseto(
    args: &Args,
    validation: &Validation,
    files: &[KeyFile],
    token: &str,
    version: PasetoVersion,
    purpose: PasetoPurpose,
) -> Result<Verified> {
    let what = format!("{}.{}", version_name(version), purpose_name(purpose));
    if let Some(typ) = &args.typ {
        return Err(Failure::rejected(
            Reason::WrongTokenType,
            format!("--typ {typ} names a JOSE type, and a {what} token has none"),
        ));
    }
    if matches!(version, PasetoVersion::V1 | PasetoVersion::V2) {
        return Err(Failure::rejected(
            Reason::UnsupportedVersion,
            format!(
                "PASETO {} is deprecated; only v3 and v4 are accepted",
                version_name(version)
            ),
        ));
    }
    let candidates: Vec<PasetoKey<'_>> = files
        .iter()
        .flat_map(|f| f.paseto_keys(version, purpose))
        .collect();
    if candidates.is_empty() {
        return Err(Failure::rejected(
            Reason::WrongTokenType,
            format!("no given key is a {what} key (the key decides the algorithm)"),
        ));
    }
    let options = VerifyOptions {
        implicit_assertion: args
            .implicit_assertion
            .as_deref()
            .unwrap_or_default()
            .as_bytes(),
        footer: args.footer.as_deref().map(str::as_bytes),
    };
    // The library decides which key the footer names, with the same rules (and the
    // same strict footer reading) as every other verifier.
    let verified = match (version, purpose) {
        (PasetoVersion::V4, PasetoPurpose::Public) => {
            let keys = public_keys::<V4>(&candidates, |p| match p {
                Public::V4(k) => Some(k),
                Public::V3(_) => None,
            });
            verify_public(keys, token, &options, validation)
        }
        (PasetoVersion::V3, PasetoPurpose::Public) => {
            let keys = public_keys::<V3>(&candidates, |p| match p {
                Public::V3(k) => Some(k),
                Public::V4(_) => None,
            });
            verify_public(keys, token, &options, validation)
        }
        (PasetoVersion::V4, PasetoPurpose::Local) => {
            let keys: Vec<&LocalKey<V4>> = candidates
                .iter()
                .filter_map(|c| match c {
                    PasetoKey::Local(Local::V4(k)) => Some(k),
                    _ => None,
                })
                .collect();
            decrypt_local(&keys, token, &options, validation)
        }
        (PasetoVersion::V3, PasetoPurpose::Local) => {
            let keys: Vec<&LocalKey<V3>> = candidates
                .iter()
                .filter_map(|c| match c {
                    PasetoKey::Local(Local::V3(k)) => Some(k),
                    _ => None,
                })
                .collect();
            decrypt_local(&keys, token, &options, validation)
        }
        _ => {
            return Err(Failure::rejected(
                Reason::UnsupportedVersion,
                format!("PASETO {}", version_name(version)),
            ));
        }
    }
    .map_err(|e| paseto_refusal(e, &what, candidates.len()))?;
    let json = verified
        .claims()
        .to_json::<Rfc3339>()
        .ok()
        .and_then(|j| serde_json::from_slice(&j).ok())
        .unwrap_or(Value::Null);
    Ok(Verified {
        claims: json,
        format: what,
        kid: verified
            .key_id()
            .map(ToString::to_string)
            .unwrap_or_default(),
        footer: paseto_footer(token)?,
    })
}

/// A key given on the command line: its file, and the `--kid` that labels it.
struct Given<'a> {
    file: &'a KeyFile,
    label: Option<&'a KeyId>,
}

/// Every given key, with its label.
fn given<'a>(files: &'a [KeyFile], labels: &'a [Option<KeyId>]) -> Vec<Given<'a>> {
    files
        .iter()
        .enumerate()
        .map(|(i, file)| Given {
            file,
            label: labels.get(i).and_then(Option::as_ref),
        })
        .collect()
}

/// A signature key, and whether it came from a key set (a JWKS), where `kid` selects.
struct Candidate<K> {
    key: K,
    from_set: bool,
}

fn verifying_keys(args: &Args, keys: &[Given<'_>]) -> Result<Vec<Candidate<VerifyingKey>>> {
    let mut out: Vec<Candidate<VerifyingKey>> = Vec::new();
    for given in keys {
        let from_set = matches!(given.file.key, Key::Jwks(_));
        for key in given.file.verifying_keys(args.public_alg())? {
            let key = match given.label {
                Some(label) => key.with_key_id(label.clone()),
                None => key,
            };
            if !out.iter().any(|c| c.key.key_id() == key.key_id()) {
                out.push(Candidate { key, from_set });
            }
        }
    }
    Ok(out)
}

fn jwt_claims(claims: &Claims<Map<String, Value>>) -> Value {
    claims
        .to_json::<NumericDate>()
        .ok()
        .and_then(|j| serde_json::from_slice(&j).ok())
        .unwrap_or(Value::Null)
}

/// What the given JWKS left out, and why: `skipped in FILE: entry 2 (kid k): …`.
fn skipped_entries(keys: &[Given<'_>]) -> Vec<String> {
    keys.iter()
        .filter_map(|given| match &given.file.key {
            Key::Jwks(jwks) => {
                let skipped = jwks.skipped_verifying_keys();
                (!skipped.is_empty()).then(|| {
                    format!(
                        "skipped in {}: {}",
                        given.file.path.display(),
                        skipped
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; ")
                    )
                })
            }
            _ => None,
        })
        .collect()
}

/// `detail`, then what the given key sets skipped (if anything).
fn with_skipped(detail: String, keys: &[Given<'_>]) -> String {
    let skipped = skipped_entries(keys);
    if skipped.is_empty() {
        detail
    } else {
        format!("{detail}; {}", skipped.join("; "))
    }
}

/// Which key verifies: the one key given (whatever `kid` the token names: the caller
/// chose it), or, among several or in a key set, the one the token's `kid` names.
fn choose<'a, K>(
    candidates: &'a [Candidate<K>],
    id: impl Fn(&K) -> &KeyId,
    kid: Option<&KeyId>,
    what: &str,
    keys: &[Given<'_>],
) -> Result<&'a K> {
    if let [only] = candidates {
        if !only.from_set {
            return Ok(&only.key);
        }
    }
    let kid_str = kid.map(KeyId::as_str);
    select(candidates, |c| id(&c.key).as_str(), kid_str, what)
        .map(|c| &c.key)
        .map_err(|failure| match failure {
            Failure::Rejected {
                reason,
                detail: Some(detail),
            } => Failure::Rejected {
                reason,
                detail: Some(with_skipped(detail, keys)),
            },
            other => other,
        })
}

/// A rejection of the one given key, saying so when the token names another `kid`.
fn single_key_refusal(e: &token_jwt::Error, kid: Option<&KeyId>, key_id: &KeyId) -> Failure {
    match kid {
        Some(kid) if e.is_invalid_token() && kid != key_id => Failure::rejected(
            Reason::InvalidToken,
            format!(
                "the token names `kid` {}, and the one given key ({}) did not verify it",
                echo(kid.as_str()),
                echo(key_id.as_str())
            ),
        ),
        _ => Failure::refused(e),
    }
}

fn verify_jws(
    args: &Args,
    validation: &Validation,
    given: &[Given<'_>],
    token: &str,
) -> Result<Verified> {
    let header = token_jwt::dangerous_decode_header(token).map_err(|e| Failure::refused(&e))?;
    if header.alg().eq_ignore_ascii_case("none") {
        return Err(Failure::rejected(
            Reason::AlgorithmNotAllowed,
            "alg: none, an unsecured token",
        ));
    }
    let keys = verifying_keys(args, given)?;
    let hmac = hmac_keys(args, given, &header, keys.is_empty())?;
    if keys.is_empty() && hmac.is_empty() {
        return Err(Failure::rejected(
            Reason::WrongTokenType,
            with_skipped("no given key verifies JWS signatures".into(), given),
        ));
    }
    let candidates: Vec<Candidate<JwsKey<'_>>> = keys
        .iter()
        .map(|c| Candidate {
            key: JwsKey::Public(&c.key),
            from_set: c.from_set,
        })
        .chain(hmac.iter().map(|k| Candidate {
            key: JwsKey::Hmac(k),
            from_set: false,
        }))
        .collect();
    let key = choose(&candidates, JwsKey::key_id, header.kid(), "JWS", given)?;
    let single = candidates.len() == 1;
    let verified = match (key, single) {
        // The one given key: the token's `kid` is not consulted.
        (JwsKey::Public(k), true) => {
            TokenVerifier::verify::<Map<String, Value>>(*k, token, validation)
        }
        (JwsKey::Public(k), false) => {
            JwtVerifier::new((*k).clone()).verify::<Map<String, Value>>(token, validation)
        }
        (JwsKey::Hmac(k), _) => TokenVerifier::verify::<Map<String, Value>>(*k, token, validation),
    }
    .map_err(|e| {
        if single {
            single_key_refusal(&e, header.kid(), key.key_id())
        } else {
            Failure::refused(&e)
        }
    })?;
    if let JwsKey::Hmac(k) = key {
        note(&format!(
            "warning: {}: a shared secret; whoever holds it can also forge tokens",
            k.algorithm()
        ));
    }
    Ok(Verified {
        claims: jwt_claims(verified.claims()),
        format: format!("JWS {}", key.algorithm()),
        kid: key.key_id().to_string(),
        footer: None,
    })
}

/// A key that verifies a JWS.
enum JwsKey<'a> {
    /// A public key.
    Public(&'a VerifyingKey),
    /// A legacy HMAC secret (--allow-shared-secret).
    Hmac(&'a HmacKey),
}

impl JwsKey<'_> {
    fn key_id(&self) -> &KeyId {
        match self {
            Self::Public(k) => k.key_id(),
            Self::Hmac(k) => k.key_id(),
        }
    }

    fn algorithm(&self) -> &'static str {
        match self {
            Self::Public(k) => k.algorithm().name(),
            Self::Hmac(k) => k.algorithm().name(),
        }
    }
}

/// The HMAC keys among `keys`, with --allow-shared-secret. Without the flag, an `oct`
/// JWK given for an HMAC token (or as the only kind of key) is refused, naming the flag.
fn hmac_keys(
    args: &Args,
    keys: &[Given<'_>],
    header: &token_jwt::Header,
    no_public_key: bool,
) -> Result<Vec<HmacKey>> {
    if !args.allow_shared_secret {
        if let Some(given) = keys.iter().find(|g| g.file.is_hmac_candidate()) {
            if no_public_key || header.alg().starts_with("HS") {
                return Err(Failure::usage(format!(
                    "{}: an `oct` JWK is a shared secret (whoever verifies with it can also \
                     forge tokens): pass --allow-shared-secret to verify legacy HMAC JWTs \
                     with it",
                    given.file.path.display()
                )));
            }
        }
        return Ok(Vec::new());
    }
    let mut out: Vec<HmacKey> = Vec::new();
    for given in keys {
        if let Some(key) = given.file.hmac_key(args.hmac_alg())? {
            let key = match given.label {
                Some(label) => key.with_key_id(label.clone()),
                None => key,
            };
            if !out.iter().any(|k| k.key_id() == key.key_id()) {
                out.push(key);
            }
        }
    }
    Ok(out)
}

fn is_nested(cty: Option<&str>) -> bool {
    cty.is_some_and(|c| {
        let c = c.to_ascii_lowercase();
        c == "jwt" || c == "application/jwt"
    })
}

fn verify_jwe(
    args: &Args,
    validation: &Validation,
    given: &[Given<'_>],
    token: &str,
) -> Result<Verified> {
    let header = token_jwt::dangerous_decode_header(token).map_err(|e| Failure::refused(&e))?;
    let mut decrypters: Vec<Candidate<Decrypter>> = Vec::new();
    for g in given {
        if let Some(d) = g.file.decrypter()? {
            let d = match g.label {
                Some(label) => d.with_key_id(label.clone()),
                None => d,
            };
            if !decrypters.iter().any(|c| c.key.key_id() == d.key_id()) {
                decrypters.push(Candidate {
                    key: d,
                    from_set: false,
                });
            }
        }
    }
    if decrypters.is_empty() {
        return Err(Failure::rejected(
            Reason::WrongTokenType,
            "no given key decrypts JWE tokens (a private EC P-256/X25519 key or an `oct` JWK)",
        ));
    }
    let decrypter = choose(&decrypters, Decrypter::key_id, header.kid(), "JWE", given)?;
    let single_decrypter = decrypters.len() == 1;
    let refused = |e: token_jwt::Error| {
        if single_decrypter {
            single_key_refusal(&e, header.kid(), decrypter.key_id())
        } else {
            Failure::refused(&e)
        }
    };
    if is_nested(header.cty()) {
        return verify_nested(args, validation, given, token, &header, decrypter);
    }
    match decrypter {
        Decrypter::Direct(k) => {
            if let Some(typ) = &args.typ {
                if !header
                    .typ()
                    .is_some_and(|t| TokenType::from_name(t) == TokenType::from_name(typ))
                {
                    return Err(Failure::rejected(
                        Reason::WrongTokenType,
                        format!(
                            "header `typ` is {}, expected `{typ}`",
                            header
                                .typ()
                                .map_or_else(|| "absent".to_owned(), |t| format!("`{t}`"))
                        ),
                    ));
                }
            }
            let verified = k
                .decrypt::<Map<String, Value>>(token, validation)
                .map_err(refused)?;
            Ok(Verified {
                claims: jwt_claims(verified.claims()),
                format: "JWE dir".into(),
                kid: k.key_id().to_string(),
                footer: None,
            })
        }
        Decrypter::Ecdh(_) => Err(Failure::rejected(
            Reason::WrongTokenType,
            "an unsigned ECDH-ES JWE: anyone holding the public key can make one, so only nested (signed, then encrypted, cty: JWT) tokens are accepted",
        )),
    }
}

/// A nested JWE (`cty: JWT`): decrypted with `decrypter`, then the inner JWS verified
/// with the given signature keys (the one given alone, or the one its `kid` names).
fn verify_nested(
    args: &Args,
    validation: &Validation,
    given: &[Given<'_>],
    token: &str,
    header: &token_jwt::Header,
    decrypter: &Decrypter,
) -> Result<Verified> {
    let keys = verifying_keys(args, given)?;
    let verified = match keys.as_slice() {
        [] => {
            return Err(Failure::usage(
                "a nested JWE (cty: JWT) also needs the inner signer's public key: add it as a further --key",
            ));
        }
        // The one signer's key: the inner token's `kid` is not consulted.
        [only] if !only.from_set => decrypt_nested(decrypter, token, &only.key, validation),
        several => {
            let mut ring = token_core::KeyRing::verify_only();
            for c in several {
                // Ids are unique in `keys`.
                let _ = ring.insert_verify_only(c.key.key_id().clone(), c.key.clone());
            }
            let verifier = JwtVerifier::from_key_ring(ring).map_err(|e| Failure::refused(&e))?;
            decrypt_nested(decrypter, token, &verifier, validation)
        }
    }
    .map_err(|e| match e {
        // An inner unknown `kid` is about the signers, and says what the key sets
        // skipped. An invalid token may be either layer's: no `kid` is blamed.
        token_jwt::Error::Core(token_core::Error::UnknownKeyId) => Failure::rejected(
            Reason::UnknownKey,
            with_skipped(
                "the inner token's `kid` names none of the given signature keys".into(),
                given,
            ),
        ),
        e => Failure::refused(&e),
    })?;
    let inner = verified
        .key_id()
        .map(ToString::to_string)
        .unwrap_or_default();
    Ok(Verified {
        claims: jwt_claims(verified.claims()),
        format: format!("JWE {} (nested JWS)", header.alg()),
        kid: format!("{} (signed by {inner})", decrypter.key_id()),
        footer: None,
    })
}

/// Decrypts a nested JWE with `decrypter`, then verifies the inner JWS with `verifier`.
fn decrypt_nested<V: TokenVerifier<Error = token_jwt::Error>>(
    decrypter: &Decrypter,
    token: &str,
    verifier: &V,
    validation: &Validation,
) -> Result<token_core::Verified<Map<String, Value>>, token_jwt::Error> {
    match decrypter {
        Decrypter::Ecdh(k) => {
            k.decrypt_signed::<Map<String, Value>, _>(token, verifier, validation)
        }
        Decrypter::Direct(k) => {
            k.decrypt_signed::<Map<String, Value>, _>(token, verifier, validation)
        }
    }
}

/// Runs `verify`.
pub(crate) fn run(args: &Args, json: bool) -> Result<()> {
    if let (Some(alg), false) = (args.hmac_alg(), args.allow_shared_secret) {
        return Err(Failure::usage(format!(
            "--alg {alg} is an HMAC algorithm, a shared secret (whoever verifies can also \
             forge): pass --allow-shared-secret to verify legacy HMAC JWTs"
        )));
    }
    let validation = validation(args)?;
    let files = load_all(&args.keys, args.password_file.as_deref())?;
    if let Some(file) = files.iter().find(|f| matches!(f.key, Key::Protected(_))) {
        return Err(Failure::usage(format!(
            "{}: a {} PASERK must be recovered first ({})",
            file.path.display(),
            file.describe(),
            match &file.key {
                Key::Protected(p) if p.kind.is_password() =>
                    "pass --password-file, or tokenctl key unprotect",
                _ => "tokenctl key unwrap or unseal",
            }
        )));
    }
    let labels = args.key_ids(&files)?;
    let given = given(&files, &labels);
    let token = read_token(args.token.as_deref())?;
    let format = TokenFormat::detect(&token).map_err(|e| Failure::refused(&e))?;
    let verified = match format {
        TokenFormat::Paseto {
            version, purpose, ..
        } => verify_paseto(args, &validation, &files, &token, version, purpose)?,
        TokenFormat::Jws => verify_jws(args, &validation, &given, &token)?,
        TokenFormat::Jwe => verify_jwe(args, &validation, &given, &token)?,
        TokenFormat::Opaque(kind) => {
            return Err(Failure::usage(format!(
                "an opaque token ({}) is checked against its database, not with a key: \
                 use `tokenctl api-key verify --db URL` for API keys",
                kind.default_prefix()
            )));
        }
        _ => return Err(Failure::rejected(Reason::MalformedToken, "unknown format")),
    };
    if !json {
        note(&format!(
            "verified: {} with key {}",
            verified.format, verified.kid
        ));
    }
    if args.footer.is_none() {
        if let Some(footer) = &verified.footer {
            note(&format!("footer: {}", printable(footer)));
        }
    }
    out_json(&verified.claims, json)
}
