//! `tokenctl key <op>`: key ids, inspection, and PASERK protection (wrap, seal,
//! password). Every operation that produces a key prints it on stdout.

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use token_paseto::paserk::PaserkVersion;
use token_paseto::paserk::pw::PwParams;
use token_paseto::{LocalKey, SecretKey, V3, V4};

use crate::error::{Failure, Result};
use crate::keyfile::{Key, KeyFile, Local, ProtectedKind, Public, Secret, read_password};
use crate::util::{note, out, out_json, read_text};

/// Arguments of `key`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    op: Op,
}

/// The expected key type of `key inspect`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ExpectType {
    /// A symmetric key (`k3/k4.local`, an `oct` JWK).
    Local,
    /// A public key.
    Public,
    /// A secret (private) key.
    Secret,
}

#[derive(Debug, clap::Subcommand)]
enum Op {
    /// Print the key's id: its PASERK id (`lid`/`pid`/`sid`) or RFC 7638 thumbprint.
    Id {
        /// The key file.
        file: PathBuf,
        /// The password of a password-protected PASERK: a file holding it.
        #[arg(long, value_name = "P")]
        password_file: Option<PathBuf>,
    },
    /// Describe a key; exit 1 if it is malformed or not what is expected.
    Inspect {
        /// The key file.
        file: PathBuf,
        /// Require PASERK version 3 or 4.
        #[arg(long, value_name = "3|4", value_parser = clap::value_parser!(u8).range(3..=4))]
        expect_version: Option<u8>,
        /// Require this key type.
        #[arg(long, value_name = "TYPE")]
        expect_type: Option<ExpectType>,
    },
    /// Wrap a local or secret PASERK with a local key (`local-wrap.pie`, `secret-wrap.pie`).
    Wrap {
        /// The wrapping key (`k3/k4.local`).
        #[arg(long = "with", value_name = "WRAPPING_KEY")]
        with: PathBuf,
        /// The key to wrap.
        file: PathBuf,
        /// The password of a password-protected PASERK among the keys: a file holding it.
        #[arg(long, value_name = "P")]
        password_file: Option<PathBuf>,
    },
    /// Recover a key wrapped with `key wrap`.
    Unwrap {
        /// The wrapping key (`k3/k4.local`).
        #[arg(long = "with", value_name = "WRAPPING_KEY")]
        with: PathBuf,
        /// The wrapped key.
        file: PathBuf,
    },
    /// Seal a local PASERK to a public key (`seal`).
    Seal {
        /// The recipient's public (or secret) PASERK.
        #[arg(long = "to", value_name = "PUBLIC")]
        to: PathBuf,
        /// The local key to seal.
        file: PathBuf,
        /// The password of a password-protected PASERK among the keys: a file holding it.
        #[arg(long, value_name = "P")]
        password_file: Option<PathBuf>,
    },
    /// Open a sealed key with the recipient's secret key.
    Unseal {
        /// The recipient's secret PASERK.
        #[arg(long = "with", value_name = "SECRET")]
        with: PathBuf,
        /// The sealed key.
        file: PathBuf,
    },
    /// Protect a local or secret PASERK with a password (`local-pw`, `secret-pw`).
    Protect {
        /// A file holding the password (one trailing newline is ignored).
        #[arg(long, value_name = "P")]
        password_file: PathBuf,
        /// The key to protect.
        file: PathBuf,
    },
    /// Recover a password-protected key.
    Unprotect {
        /// A file holding the password (one trailing newline is ignored).
        #[arg(long, value_name = "P")]
        password_file: PathBuf,
        /// The protected key.
        file: PathBuf,
    },
}

/// Runs `key`.
pub(crate) fn run(args: &Args, json: bool) -> Result<()> {
    match &args.op {
        Op::Id {
            file,
            password_file,
        } => id(file, password_file.as_deref(), json),
        Op::Inspect {
            file,
            expect_version,
            expect_type,
        } => inspect(file, *expect_version, *expect_type, json),
        Op::Wrap {
            with,
            file,
            password_file,
        } => wrap(with, file, password_file.as_deref(), json),
        Op::Unwrap { with, file } => unwrap(with, file, json),
        Op::Seal {
            to,
            file,
            password_file,
        } => seal(to, file, password_file.as_deref(), json),
        Op::Unseal { with, file } => unseal(with, file, json),
        Op::Protect {
            password_file,
            file,
        } => protect(password_file, file, json),
        Op::Unprotect {
            password_file,
            file,
        } => unprotect(password_file, file, json),
    }
}

fn id(path: &Path, password_file: Option<&Path>, json: bool) -> Result<()> {
    let file = KeyFile::load_with(path, password_file)?;
    let ids = file.ids()?;
    if json {
        out_json(&json!({ "ids": ids }), true)
    } else {
        out(&ids.join("\n"))
    }
}

/// A description of a key for `key inspect`.
#[allow(clippy::too_many_lines)] // one arm per kind of key file
fn describe(file: &KeyFile) -> Result<(Value, Option<u8>, Option<ExpectType>)> {
    let paserk = |ty: &str, version: u8, purpose: &str, id: Option<String>| {
        json!({
            "format": "paserk",
            "type": format!("k{version}.{ty}"),
            "version": version,
            "purpose": purpose,
            "id": id,
        })
    };
    let v = |version: PaserkVersion| match version {
        PaserkVersion::K3 => 3u8,
        PaserkVersion::K4 => 4u8,
    };
    let local_v = |k: &Local| match k {
        Local::V3(_) => 3u8,
        Local::V4(_) => 4u8,
    };
    Ok(match &file.key {
        Key::Local(k) => (
            paserk("local", local_v(k), "local", Some(k.id().to_string())),
            Some(local_v(k)),
            Some(ExpectType::Local),
        ),
        Key::Secret(k) => {
            let version = match k {
                Secret::V3(_) => 3u8,
                Secret::V4(_) => 4u8,
            };
            let mut d = paserk("secret", version, "public", Some(k.id().to_string()));
            if let Some(map) = d.as_object_mut() {
                map.insert(
                    "public_id".into(),
                    Value::String(k.public().id().to_string()),
                );
            }
            (d, Some(version), Some(ExpectType::Secret))
        }
        Key::Public(k) => {
            let version = match k {
                Public::V3(_) => 3u8,
                Public::V4(_) => 4u8,
            };
            (
                paserk("public", version, "public", Some(k.id().to_string())),
                Some(version),
                Some(ExpectType::Public),
            )
        }
        Key::Protected(p) => {
            let purpose = match p.kind {
                ProtectedKind::LocalWrap | ProtectedKind::Seal | ProtectedKind::LocalPw => "local",
                ProtectedKind::SecretWrap | ProtectedKind::SecretPw => "public",
            };
            (
                paserk(p.kind.name(), v(p.version), purpose, None),
                Some(v(p.version)),
                None,
            )
        }
        Key::Keyset(keys) => (
            json!({
                "format": "paseto-keyset",
                "keys": keys.iter().map(|k| k.id().to_string()).collect::<Vec<_>>(),
            }),
            None,
            Some(ExpectType::Public),
        ),
        Key::Jwks(_) => (
            json!({ "format": "jwks", "thumbprints": file.ids()? }),
            None,
            Some(ExpectType::Public),
        ),
        Key::Jwk(jwk) => {
            let role = file.jose_role(None).ok().flatten();
            let thumbprint = file.thumbprint()?;
            let ty = if jwk.kty == "oct" {
                ExpectType::Local
            } else if jwk.private {
                ExpectType::Secret
            } else {
                ExpectType::Public
            };
            (
                json!({
                    "format": "jwk",
                    "kty": jwk.kty,
                    "crv": jwk.crv,
                    "alg": jwk.alg,
                    "use": jwk.use_,
                    "private": jwk.private,
                    "role": role.map(|r| r.to_string()),
                    "kid": jwk.kid,
                    "thumbprint": thumbprint,
                }),
                None,
                Some(ty),
            )
        }
        Key::Pem(pem) => {
            let thumbprint = file.thumbprint()?;
            (
                json!({
                    "format": "pem",
                    "label": pem.label,
                    "private": pem.private,
                    "thumbprint": thumbprint,
                }),
                None,
                Some(if pem.private {
                    ExpectType::Secret
                } else {
                    ExpectType::Public
                }),
            )
        }
    })
}

fn type_name(t: ExpectType) -> &'static str {
    match t {
        ExpectType::Local => "local",
        ExpectType::Public => "public",
        ExpectType::Secret => "secret",
    }
}

fn inspect(
    path: &Path,
    expect_version: Option<u8>,
    expect_type: Option<ExpectType>,
    json: bool,
) -> Result<()> {
    let text = read_text(path, "key file")?;
    // A malformed key is a finding here (exit 1), not an input error.
    let file = KeyFile::parse(path, &text).map_err(Failure::failed)?;
    let (description, version, ty) = describe(&file).map_err(|f| match f {
        Failure::Usage(m) => Failure::Failed(m),
        other => other,
    })?;
    if json {
        out_json(&description, true)?;
    } else if let Value::Object(map) = &description {
        let mut lines = Vec::new();
        for (k, v) in map {
            let v = match v {
                Value::Null => continue,
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            lines.push(format!("{k:<11} {v}"));
        }
        out(&lines.join("\n"))?;
    }
    if let Some(want) = expect_version {
        if version != Some(want) {
            return Err(Failure::failed(format!(
                "expected a version {want} PASERK, found {}",
                file.describe()
            )));
        }
    }
    if let Some(want) = expect_type {
        if ty != Some(want) {
            return Err(Failure::failed(format!(
                "expected a {} key, found {}",
                type_name(want),
                file.describe()
            )));
        }
    }
    Ok(())
}

fn print_key(paserk: &SecretString, json: bool) -> Result<()> {
    let text = paserk.expose_secret();
    if json {
        let ty: Vec<&str> = text.splitn(3, '.').take(2).collect();
        out_json(&json!({ "type": ty.join("."), "key": text }), true)
    } else {
        out(text)
    }
}

/// A key that cannot be recovered is a failed check (exit 1), not a token rejection:
/// it is said as such, without a token's reason.
fn recover_err(what: &str, e: &token_paseto::Error) -> Failure {
    match e {
        token_paseto::Error::KeyRecoveryFailed => Failure::failed(format!(
            "cannot recover the key: wrong {what}, or tampered data"
        )),
        other => Failure::usage(other.to_string()),
    }
}

fn make_err(e: &token_paseto::Error) -> Failure {
    Failure::usage(e.to_string())
}

fn local_key(path: &Path, role: &str, password_file: Option<&Path>) -> Result<Local> {
    match KeyFile::load_with(path, password_file)?.key {
        Key::Local(k) => Ok(k),
        _ => Err(Failure::usage(format!(
            "{}: the {role} must be a k3.local or k4.local PASERK",
            path.display()
        ))),
    }
}

fn mismatch(a: &str, b: &str) -> Failure {
    Failure::usage(format!(
        "version mismatch: the {a} and the {b} must both be k3 or both be k4"
    ))
}

fn wrap(with: &Path, path: &Path, password_file: Option<&Path>, json: bool) -> Result<()> {
    let w = local_key(with, "wrapping key", password_file)?;
    let file = KeyFile::load_with(path, password_file)?;
    let wrapped = match (&w, &file.key) {
        (Local::V4(w), Key::Local(Local::V4(k))) => k.wrap_with(w),
        (Local::V3(w), Key::Local(Local::V3(k))) => k.wrap_with(w),
        (Local::V4(w), Key::Secret(Secret::V4(k))) => k.wrap_with(w),
        (Local::V3(w), Key::Secret(Secret::V3(k))) => k.wrap_with(w),
        (_, Key::Local(_) | Key::Secret(_)) => return Err(mismatch("wrapping key", "key")),
        _ => {
            return Err(Failure::usage(format!(
                "{}: only local and secret PASERKs are wrapped, not {}",
                path.display(),
                file.describe()
            )));
        }
    }
    .map_err(|e| make_err(&e))?;
    print_key(&wrapped, json)
}

fn protected(
    path: &Path,
    kinds: &[ProtectedKind],
) -> Result<(PaserkVersion, ProtectedKind, SecretString)> {
    let file = KeyFile::load(path)?;
    match file.key {
        Key::Protected(p) if kinds.contains(&p.kind) => Ok((p.version, p.kind, p.text)),
        _ => Err(Failure::usage(format!(
            "{}: expected a {} PASERK, found {}",
            path.display(),
            kinds
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(" or "),
            file.describe()
        ))),
    }
}

fn unwrap(with: &Path, path: &Path, json: bool) -> Result<()> {
    let w = local_key(with, "wrapping key", None)?;
    let (version, kind, text) =
        protected(path, &[ProtectedKind::LocalWrap, ProtectedKind::SecretWrap])?;
    let text = text.expose_secret();
    let e = |e: token_paseto::Error| recover_err("wrapping key", &e);
    let key = match (&w, version, kind) {
        (Local::V4(w), PaserkVersion::K4, ProtectedKind::LocalWrap) => {
            LocalKey::<V4>::unwrap_with(text, w).map(|k| k.to_paserk())
        }
        (Local::V3(w), PaserkVersion::K3, ProtectedKind::LocalWrap) => {
            LocalKey::<V3>::unwrap_with(text, w).map(|k| k.to_paserk())
        }
        (Local::V4(w), PaserkVersion::K4, _) => {
            SecretKey::<V4>::unwrap_with(text, w).map(|k| k.to_paserk())
        }
        (Local::V3(w), PaserkVersion::K3, _) => {
            SecretKey::<V3>::unwrap_with(text, w).map(|k| k.to_paserk())
        }
        _ => return Err(mismatch("wrapping key", "wrapped key")),
    }
    .map_err(e)?;
    print_key(&key, json)
}

fn seal(to: &Path, path: &Path, password_file: Option<&Path>, json: bool) -> Result<()> {
    let recipient = match KeyFile::load_with(to, password_file)?.key {
        Key::Public(p) => p,
        Key::Secret(s) => s.public(),
        _ => {
            return Err(Failure::usage(format!(
                "{}: the recipient must be a k3/k4 public (or secret) PASERK",
                to.display()
            )));
        }
    };
    let key = local_key(path, "key to seal", password_file)?;
    let sealed = match (&recipient, &key) {
        (Public::V4(r), Local::V4(k)) => k.seal_to(r),
        (Public::V3(r), Local::V3(k)) => k.seal_to(r),
        _ => return Err(mismatch("recipient", "key")),
    }
    .map_err(|e| make_err(&e))?;
    print_key(&sealed, json)
}

fn unseal(with: &Path, path: &Path, json: bool) -> Result<()> {
    let Key::Secret(secret) = KeyFile::load(with)?.key else {
        return Err(Failure::usage(format!(
            "{}: unsealing needs the recipient's k3/k4 secret PASERK",
            with.display()
        )));
    };
    let (version, _, text) = protected(path, &[ProtectedKind::Seal])?;
    let text = text.expose_secret();
    let key = match (&secret, version) {
        (Secret::V4(s), PaserkVersion::K4) => {
            LocalKey::<V4>::unseal(text, s).map(|k| k.to_paserk())
        }
        (Secret::V3(s), PaserkVersion::K3) => {
            LocalKey::<V3>::unseal(text, s).map(|k| k.to_paserk())
        }
        _ => return Err(mismatch("secret key", "sealed key")),
    }
    .map_err(|e| recover_err("recipient key", &e))?;
    print_key(&key, json)
}

fn protect(password_file: &Path, path: &Path, json: bool) -> Result<()> {
    let password = read_password(password_file)?;
    let pw = password.expose_secret().as_bytes();
    let file = KeyFile::load(path)?;
    let k3 = PwParams::strong(PaserkVersion::K3);
    let k4 = PwParams::strong(PaserkVersion::K4);
    let protected = match &file.key {
        Key::Local(Local::V4(k)) => k.protect(pw, &k4),
        Key::Local(Local::V3(k)) => k.protect(pw, &k3),
        Key::Secret(Secret::V4(k)) => k.protect(pw, &k4),
        Key::Secret(Secret::V3(k)) => k.protect(pw, &k3),
        _ => {
            return Err(Failure::usage(format!(
                "{}: only local and secret PASERKs are password-protected, not {}",
                path.display(),
                file.describe()
            )));
        }
    }
    .map_err(|e| make_err(&e))?;
    if !json {
        note(
            "protected with the strong defaults (k4: Argon2id 256 MiB, 3 passes; k3: PBKDF2-SHA384, 600 000 iterations)",
        );
    }
    print_key(&protected, json)
}

fn unprotect(password_file: &Path, path: &Path, json: bool) -> Result<()> {
    let password = read_password(password_file)?;
    let pw = password.expose_secret().as_bytes();
    let (version, kind, text) =
        protected(path, &[ProtectedKind::LocalPw, ProtectedKind::SecretPw])?;
    let text = text.expose_secret();
    let key = match (version, kind) {
        (PaserkVersion::K4, ProtectedKind::LocalPw) => {
            LocalKey::<V4>::unprotect(text, pw).map(|k| k.to_paserk())
        }
        (PaserkVersion::K3, ProtectedKind::LocalPw) => {
            LocalKey::<V3>::unprotect(text, pw).map(|k| k.to_paserk())
        }
        (PaserkVersion::K4, _) => SecretKey::<V4>::unprotect(text, pw).map(|k| k.to_paserk()),
        (PaserkVersion::K3, _) => SecretKey::<V3>::unprotect(text, pw).map(|k| k.to_paserk()),
    }
    .map_err(|e| recover_err("password", &e))?;
    print_key(&key, json)
}
