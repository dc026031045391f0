//! `tokenctl keygen <kind> [--out DIR] [--force]`.
//!
//! Writes exactly these files into DIR: `local.paserk` for local kinds;
//! `secret.paserk` and `public.paserk` for PASETO public kinds; `secret.jwk`,
//! `public.jwk`, `secret.pem` and `public.pem` for JOSE signing kinds; `secret.jwk` and
//! `public.jwk` for JWE recipient kinds (`alg: ECDH-ES+A256KW`, `use: enc`: no PEM,
//! which could not say the key is for encryption only). Secrets get mode 0600.
//! Nothing is overwritten without `--force`, and nothing is written unless every file
//! can be. Prints the key id.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use token_jwt::{Algorithm, DecryptingKey, EcdhCurve, SigningKey};
use token_paseto::{LocalKey, SecretKey, V3, V4};

use crate::error::{Failure, Result};
use crate::util::{b64url_decode, note, out, out_json, write_file};

/// What to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Kind {
    /// PASETO v4.local (XChaCha20 + BLAKE2b).
    #[value(name = "v4.local")]
    V4Local,
    /// PASETO v4.public (Ed25519).
    #[value(name = "v4.public")]
    V4Public,
    /// PASETO v3.local (AES-256-CTR + HMAC-SHA384).
    #[value(name = "v3.local")]
    V3Local,
    /// PASETO v3.public (ECDSA P-384).
    #[value(name = "v3.public")]
    V3Public,
    /// JWS ES256 (ECDSA P-256).
    #[value(name = "es256")]
    Es256,
    /// JWS ES384 (ECDSA P-384).
    #[value(name = "es384")]
    Es384,
    /// JWS EdDSA (Ed25519).
    #[value(name = "eddsa")]
    EdDsa,
    /// JWS RS256 (RSA 3072, PKCS#1 v1.5).
    #[value(name = "rs256")]
    Rs256,
    /// JWS PS256 (RSA 3072, PSS).
    #[value(name = "ps256")]
    Ps256,
    /// JWE recipient: ECDH-ES+A256KW on P-256 (JWKs only).
    #[value(name = "ecdh-es-p256")]
    EcdhEsP256,
    /// JWE recipient: ECDH-ES+A256KW on X25519 (JWKs only).
    #[value(name = "ecdh-es-x25519")]
    EcdhEsX25519,
}

impl Kind {
    /// The name on the command line.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::V4Local => "v4.local",
            Self::V4Public => "v4.public",
            Self::V3Local => "v3.local",
            Self::V3Public => "v3.public",
            Self::Es256 => "es256",
            Self::Es384 => "es384",
            Self::EdDsa => "eddsa",
            Self::Rs256 => "rs256",
            Self::Ps256 => "ps256",
            Self::EcdhEsP256 => "ecdh-es-p256",
            Self::EcdhEsX25519 => "ecdh-es-x25519",
        }
    }

    /// The files this kind writes.
    const fn files(self) -> &'static [&'static str] {
        match self {
            Self::V4Local | Self::V3Local => &["local.paserk"],
            Self::V4Public | Self::V3Public => &["secret.paserk", "public.paserk"],
            Self::EcdhEsP256 | Self::EcdhEsX25519 => &["secret.jwk", "public.jwk"],
            Self::Es256 | Self::Es384 | Self::EdDsa | Self::Rs256 | Self::Ps256 => {
                &["secret.jwk", "public.jwk", "secret.pem", "public.pem"]
            }
        }
    }

    const fn algorithm(self) -> Option<Algorithm> {
        match self {
            Self::Es256 => Some(Algorithm::Es256),
            Self::Es384 => Some(Algorithm::Es384),
            Self::EdDsa => Some(Algorithm::EdDsa),
            Self::Rs256 => Some(Algorithm::Rs256),
            Self::Ps256 => Some(Algorithm::Ps256),
            Self::V4Local
            | Self::V4Public
            | Self::V3Local
            | Self::V3Public
            | Self::EcdhEsP256
            | Self::EcdhEsX25519 => None,
        }
    }
}

/// Arguments of `keygen`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The kind of key.
    kind: Kind,
    /// The directory to write into (created if missing).
    #[arg(long, value_name = "DIR", default_value = ".")]
    out: PathBuf,
    /// Overwrite existing files.
    #[arg(long)]
    force: bool,
}

/// One file to write.
struct Output {
    name: &'static str,
    contents: secrecy::SecretString,
    secret: bool,
}

fn paserk_err(e: &token_paseto::Error) -> Failure {
    Failure::usage(format!("key generation failed: {e}"))
}

fn jwt_err(e: &token_jwt::Error) -> Failure {
    Failure::usage(format!("key generation failed: {e}"))
}

fn line(s: &str) -> secrecy::SecretString {
    secrecy::SecretString::from(format!("{s}\n"))
}

/// Generates the key and the files for `kind`; returns the files and the key id.
fn generate(kind: Kind) -> Result<(Vec<Output>, String)> {
    let local = |paserk: secrecy::SecretString, id: String| {
        (
            vec![Output {
                name: "local.paserk",
                contents: line(paserk.expose_secret()),
                secret: true,
            }],
            id,
        )
    };
    let public = |secret: secrecy::SecretString, public: String, id: String| {
        (
            vec![
                Output {
                    name: "secret.paserk",
                    contents: line(secret.expose_secret()),
                    secret: true,
                },
                Output {
                    name: "public.paserk",
                    contents: line(&public),
                    secret: false,
                },
            ],
            id,
        )
    };
    match kind {
        Kind::V4Local => {
            let k = LocalKey::<V4>::generate().map_err(|e| paserk_err(&e))?;
            Ok(local(k.to_paserk(), k.id().to_string()))
        }
        Kind::V3Local => {
            let k = LocalKey::<V3>::generate().map_err(|e| paserk_err(&e))?;
            Ok(local(k.to_paserk(), k.id().to_string()))
        }
        Kind::V4Public => {
            let k = SecretKey::<V4>::generate().map_err(|e| paserk_err(&e))?;
            let p = k.public_key();
            Ok(public(k.to_paserk(), p.to_paserk(), p.id().to_string()))
        }
        Kind::V3Public => {
            let k = SecretKey::<V3>::generate().map_err(|e| paserk_err(&e))?;
            let p = k.public_key();
            Ok(public(k.to_paserk(), p.to_paserk(), p.id().to_string()))
        }
        Kind::EcdhEsP256 => recipient(EcdhCurve::P256),
        Kind::EcdhEsX25519 => recipient(EcdhCurve::X25519),
        Kind::Es256 | Kind::Es384 | Kind::EdDsa | Kind::Rs256 | Kind::Ps256 => {
            let alg = kind
                .algorithm()
                .ok_or_else(|| Failure::usage("not a JOSE kind"))?;
            let key = SigningKey::generate(alg).map_err(|e| jwt_err(&e))?;
            let public_jwk = key.to_jwk();
            let private_jwk = key.dangerous_to_private_jwk().map_err(|e| jwt_err(&e))?;
            let private_pem = key.dangerous_to_pkcs8_pem().map_err(|e| jwt_err(&e))?;
            let public_pem = spki_pem(&public_jwk)?;
            let files = vec![
                Output {
                    name: "secret.jwk",
                    contents: line(private_jwk.expose_secret()),
                    secret: true,
                },
                Output {
                    name: "public.jwk",
                    contents: line(&public_jwk),
                    secret: false,
                },
                Output {
                    name: "secret.pem",
                    contents: secrecy::SecretString::from(private_pem.expose_secret().to_owned()),
                    secret: true,
                },
                Output {
                    name: "public.pem",
                    contents: secrecy::SecretString::from(public_pem),
                    secret: false,
                },
            ];
            Ok((files, key.key_id().to_string()))
        }
    }
}

/// A JWE recipient key: `secret.jwk` and `public.jwk` (`alg: ECDH-ES+A256KW`, `use: enc`).
fn recipient(curve: EcdhCurve) -> Result<(Vec<Output>, String)> {
    let key = DecryptingKey::generate(curve).map_err(|e| jwt_err(&e))?;
    let private_jwk = key.dangerous_to_private_jwk().map_err(|e| jwt_err(&e))?;
    let files = vec![
        Output {
            name: "secret.jwk",
            contents: line(private_jwk.expose_secret()),
            secret: true,
        },
        Output {
            name: "public.jwk",
            contents: line(&key.encrypting_key().to_jwk()),
            secret: false,
        },
    ];
    Ok((files, key.key_id().to_string()))
}

/// Runs `keygen`.
pub(crate) fn run(args: &Args, json: bool) -> Result<()> {
    let dir = &args.out;
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::usage(format!("cannot create {}: {e}", dir.display())))?;
    let names = args.kind.files();
    if !args.force {
        if let Some(existing) = names.iter().map(|n| dir.join(n)).find(|p| p.exists()) {
            return Err(Failure::usage(format!(
                "{} already exists (pass --force to overwrite it)",
                existing.display()
            )));
        }
    }
    let (files, kid) = generate(args.kind)?;
    let mut written = Vec::with_capacity(files.len());
    for file in &files {
        let path = dir.join(file.name);
        write_file(
            &path,
            file.contents.expose_secret().as_bytes(),
            file.secret,
            args.force,
        )?;
        written.push(path);
    }
    if json {
        out_json(
            &json!({
                "kind": args.kind.name(),
                "kid": kid,
                "files": written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            }),
            true,
        )
    } else {
        for path in &written {
            note(&format!("wrote {}", display(path)));
        }
        out(&kid)
    }
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

// ---- SubjectPublicKeyInfo (RFC 5280) from a public JWK, for public.pem ----------------

const OID_EC_PUBLIC_KEY: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2B, 0x81, 0x04, 0x00, 0x22];
const OID_ED25519: &[u8] = &[0x2B, 0x65, 0x70];
const OID_RSA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(u8::try_from(len).unwrap_or(0));
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | u8::try_from(bytes.len()).unwrap_or(0));
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(content);
    out
}

fn sequence(parts: &[&[u8]]) -> Vec<u8> {
    der(0x30, &parts.concat())
}

fn oid(bytes: &[u8]) -> Vec<u8> {
    der(0x06, bytes)
}

fn bit_string(bytes: &[u8]) -> Vec<u8> {
    der(0x03, &[&[0u8][..], bytes].concat())
}

fn unsigned_integer(bytes: &[u8]) -> Vec<u8> {
    let trimmed: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(&trimmed);
    der(0x02, &content)
}

/// The DER SubjectPublicKeyInfo of a public JWK (EC P-256/P-384, Ed25519, RSA).
fn spki_der(jwk: &Value) -> Result<Vec<u8>> {
    let member = |name: &str| -> Result<Vec<u8>> {
        jwk.get(name)
            .and_then(Value::as_str)
            .and_then(b64url_decode)
            .ok_or_else(|| Failure::usage(format!("public JWK without `{name}`")))
    };
    let kty = jwk.get("kty").and_then(Value::as_str).unwrap_or_default();
    let crv = jwk.get("crv").and_then(Value::as_str).unwrap_or_default();
    match (kty, crv) {
        ("EC", "P-256" | "P-384") => {
            let curve = if crv == "P-256" { OID_P256 } else { OID_P384 };
            let point = [&[0x04u8][..], &member("x")?, &member("y")?].concat();
            Ok(sequence(&[
                &sequence(&[&oid(OID_EC_PUBLIC_KEY), &oid(curve)]),
                &bit_string(&point),
            ]))
        }
        ("OKP", "Ed25519") => Ok(sequence(&[
            &sequence(&[&oid(OID_ED25519)]),
            &bit_string(&member("x")?),
        ])),
        ("RSA", _) => {
            let rsa_public_key = sequence(&[
                &unsigned_integer(&member("n")?),
                &unsigned_integer(&member("e")?),
            ]);
            Ok(sequence(&[
                &sequence(&[&oid(OID_RSA), &der(0x05, &[])]),
                &bit_string(&rsa_public_key),
            ]))
        }
        _ => Err(Failure::usage(format!(
            "cannot write a PEM public key for a {kty} {crv} JWK"
        ))),
    }
}

/// The `PUBLIC KEY` PEM of a public JWK.
pub(crate) fn spki_pem(public_jwk: &str) -> Result<String> {
    let jwk: Value = serde_json::from_str(public_jwk)
        .map_err(|_| Failure::usage("the public JWK is not JSON"))?;
    let body = STANDARD.encode(spki_der(&jwk)?);
    let mut pem = String::with_capacity(body.len() + 64);
    pem.push_str("-----BEGIN PUBLIC KEY-----\n");
    for chunk in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths_use_the_long_form_past_127_bytes() {
        assert_eq!(der(0x04, &[1, 2]), vec![0x04, 2, 1, 2]);
        let long = der(0x04, &[0; 200]);
        assert_eq!(&long[..3], &[0x04, 0x81, 200]);
        let longer = der(0x04, &[0; 400]);
        assert_eq!(&longer[..4], &[0x04, 0x82, 0x01, 0x90]);
    }

    #[test]
    fn integers_are_positive_and_minimal() {
        assert_eq!(
            unsigned_integer(&[0, 0, 0x01, 0x00, 0x01]),
            vec![0x02, 3, 1, 0, 1]
        );
        assert_eq!(unsigned_integer(&[0x80]), vec![0x02, 2, 0, 0x80]);
    }

    #[test]
    fn spki_pem_round_trips_through_the_jwt_crate() {
        for alg in [Algorithm::Es256, Algorithm::Es384, Algorithm::EdDsa] {
            let key = SigningKey::generate(alg).unwrap();
            let pem = spki_pem(&key.to_jwk()).unwrap();
            let again = token_jwt::VerifyingKey::from_pem(alg, &pem).unwrap();
            assert_eq!(again.thumbprint(), key.verifying_key().thumbprint());
        }
    }
}
