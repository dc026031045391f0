//! Public key material, read from JWK (RFC 7517/7518/8037), PEM or DER, and written as
//! JWK; RFC 7638 thumbprints.
//!
//! Every key is reduced once to its public components ([`PublicKey`]), checked (curve
//! supported, point on the curve, RSA modulus at least 2048 bits, a sane exponent), and
//! then handed to josekit or `ed25519-dalek`.

use std::fmt::Write as _;

use curve25519_dalek::edwards::CompressedEdwardsY;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::nid::Nid;
use openssl::pkey::{HasPublic, Id, PKey, PKeyRef, Public};
use openssl::rsa::Rsa;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::b64;
use crate::error::{Error, Result};

/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits (bounds the cost of one verification).
pub const MAX_RSA_BITS: usize = 8192;
/// Longest JWK text read, in bytes.
pub const MAX_JWK_LEN: usize = 16 * 1024;

/// A curve this crate supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Curve {
    P256,
    P384,
    /// ES512 signatures, verified only.
    P521,
    Ed25519,
    X25519,
}

impl Curve {
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::P256 => "P-256",
            Self::P384 => "P-384",
            Self::P521 => "P-521",
            Self::Ed25519 => "Ed25519",
            Self::X25519 => "X25519",
        }
    }

    /// Coordinate (EC) or key (OKP) length in bytes.
    pub(crate) const fn len(self) -> usize {
        match self {
            Self::P256 | Self::Ed25519 | Self::X25519 => 32,
            Self::P384 => 48,
            Self::P521 => 66,
        }
    }

    const fn nid(self) -> Option<Nid> {
        match self {
            Self::P256 => Some(Nid::X9_62_PRIME256V1),
            Self::P384 => Some(Nid::SECP384R1),
            Self::P521 => Some(Nid::SECP521R1),
            Self::Ed25519 | Self::X25519 => None,
        }
    }

    fn from_ec_name(name: &str) -> Result<Self> {
        match name {
            "P-256" => Ok(Self::P256),
            "P-384" => Ok(Self::P384),
            "P-521" => Ok(Self::P521),
            "secp256k1" => Err(Error::UnsupportedKey("EC curve secp256k1")),
            _ => Err(Error::UnsupportedKey("unknown EC curve")),
        }
    }

    fn from_okp_name(name: &str) -> Result<Self> {
        match name {
            "Ed25519" => Ok(Self::Ed25519),
            "X25519" => Ok(Self::X25519),
            "Ed448" => Err(Error::UnsupportedKey("OKP curve Ed448")),
            "X448" => Err(Error::UnsupportedKey("OKP curve X448")),
            _ => Err(Error::UnsupportedKey("unknown OKP curve")),
        }
    }
}

/// The public components of a key, canonical: EC coordinates padded to the field size,
/// RSA integers without leading zero bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PublicKey {
    Ec {
        curve: Curve,
        x: Vec<u8>,
        y: Vec<u8>,
    },
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    Okp {
        curve: Curve,
        x: Vec<u8>,
    },
}

impl PublicKey {
    /// Describes the key for error messages ("an EC P-384 key").
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Ec { curve, .. } => format!("an EC {} key", curve.name()),
            Self::Rsa { n, .. } => format!("an RSA {}-bit key", bit_len(n)),
            Self::Okp { curve, .. } => format!("an OKP {} key", curve.name()),
        }
    }

    /// Checks and canonicalizes raw components.
    pub(crate) fn ec(curve: Curve, x: &[u8], y: &[u8]) -> Result<Self> {
        if x.len() != curve.len() || y.len() != curve.len() {
            return Err(Error::InvalidKey("EC coordinate of the wrong length"));
        }
        let key = Self::Ec {
            curve,
            x: x.to_vec(),
            y: y.to_vec(),
        };
        // OpenSSL refuses a point that is not on the curve.
        key.to_openssl()?;
        Ok(key)
    }

    pub(crate) fn rsa(n: &[u8], e: &[u8]) -> Result<Self> {
        let n = strip_leading_zeros(n);
        let e = strip_leading_zeros(e);
        let bits = bit_len(n);
        if bits < MIN_RSA_BITS {
            return Err(Error::WeakKey("RSA modulus under 2048 bits"));
        }
        if bits > MAX_RSA_BITS {
            return Err(Error::UnsupportedKey("RSA modulus over 8192 bits"));
        }
        if n.last().is_none_or(|b| b & 1 == 0) {
            return Err(Error::InvalidKey("RSA modulus is even"));
        }
        // e must be odd and at least 3; e = 1 would make every message its own signature.
        let e_small = e.len() == 1 && e.first().is_some_and(|&b| b < 3);
        if e.is_empty() || e_small || e.last().is_some_and(|b| b & 1 == 0) || e.len() > 8 {
            return Err(Error::InvalidKey(
                "RSA public exponent must be odd, at least 3 and at most 64 bits",
            ));
        }
        Ok(Self::Rsa {
            n: n.to_vec(),
            e: e.to_vec(),
        })
    }

    pub(crate) fn okp(curve: Curve, x: &[u8]) -> Result<Self> {
        if x.len() != curve.len() {
            return Err(Error::InvalidKey("OKP key of the wrong length"));
        }
        if curve == Curve::Ed25519 {
            // The rule token-paseto applies to `k4.public` keys: the canonical
            // encoding of a point of prime order.
            let bytes: [u8; 32] = x
                .try_into()
                .map_err(|_| Error::InvalidKey("OKP key of the wrong length"))?;
            let point = CompressedEdwardsY(bytes)
                .decompress()
                .ok_or(Error::InvalidKey("Ed25519 public key is not a curve point"))?;
            if point.compress().to_bytes() != bytes {
                return Err(Error::InvalidKey(
                    "Ed25519 public key is not canonically encoded",
                ));
            }
            if point.is_small_order() {
                return Err(Error::WeakKey("Ed25519 public key of small order"));
            }
            if !point.is_torsion_free() {
                return Err(Error::WeakKey("Ed25519 public key not of prime order"));
            }
        }
        Ok(Self::Okp {
            curve,
            x: x.to_vec(),
        })
    }

    /// Reads the public components of a JWK (private members, if any, are ignored here).
    pub(crate) fn from_jwk(jwk: &JwkIn) -> Result<Self> {
        let member = |name: &'static str, v: &Option<String>| -> Result<Vec<u8>> {
            let s = v.as_deref().ok_or(Error::InvalidKey(missing(name)))?;
            b64::decode(s).ok_or(Error::InvalidKey("JWK member is not base64url"))
        };
        match jwk.kty.as_str() {
            "EC" => {
                let curve = Curve::from_ec_name(
                    jwk.crv
                        .as_deref()
                        .ok_or(Error::InvalidKey(missing("crv")))?,
                )?;
                Self::ec(curve, &member("x", &jwk.x)?, &member("y", &jwk.y)?)
            }
            "RSA" => {
                let (n, e) = (member("n", &jwk.n)?, member("e", &jwk.e)?);
                // RFC 7518 section 2 (Base64urlUInt): the minimum number of octets. A
                // padded `n` or `e` is another string for the same key.
                if n.first() == Some(&0) || e.first() == Some(&0) {
                    return Err(Error::InvalidKey(
                        "RSA `n` or `e` with a leading zero byte (RFC 7518 requires the minimal encoding)",
                    ));
                }
                Self::rsa(&n, &e)
            }
            "OKP" => {
                let curve = Curve::from_okp_name(
                    jwk.crv
                        .as_deref()
                        .ok_or(Error::InvalidKey(missing("crv")))?,
                )?;
                Self::okp(curve, &member("x", &jwk.x)?)
            }
            "oct" => Err(Error::UnsupportedKey(
                "a symmetric (oct) JWK is not a public key",
            )),
            _ => Err(Error::UnsupportedKey("unknown JWK key type")),
        }
    }

    /// Reads the public components of an OpenSSL key.
    pub(crate) fn from_openssl<T: HasPublic>(pkey: &PKeyRef<T>) -> Result<Self> {
        let bad = |_| Error::InvalidKey("OpenSSL could not read the key");
        match pkey.id() {
            Id::EC => {
                let ec = pkey.ec_key().map_err(bad)?;
                let curve = match ec.group().curve_name() {
                    Some(Nid::X9_62_PRIME256V1) => Curve::P256,
                    Some(Nid::SECP384R1) => Curve::P384,
                    Some(Nid::SECP521R1) => Curve::P521,
                    _ => return Err(Error::UnsupportedKey("EC curve")),
                };
                let mut ctx = BigNumContext::new().map_err(bad)?;
                let mut x = BigNum::new().map_err(bad)?;
                let mut y = BigNum::new().map_err(bad)?;
                ec.public_key()
                    .affine_coordinates(ec.group(), &mut x, &mut y, &mut ctx)
                    .map_err(bad)?;
                let len = i32::try_from(curve.len()).map_err(|_| Error::InvalidKey("curve"))?;
                Self::ec(
                    curve,
                    &x.to_vec_padded(len).map_err(bad)?,
                    &y.to_vec_padded(len).map_err(bad)?,
                )
            }
            Id::RSA | Id::RSA_PSS => {
                let rsa = pkey.rsa().map_err(bad)?;
                Self::rsa(&rsa.n().to_vec(), &rsa.e().to_vec())
            }
            Id::ED25519 => Self::okp(Curve::Ed25519, &pkey.raw_public_key().map_err(bad)?),
            Id::X25519 => Self::okp(Curve::X25519, &pkey.raw_public_key().map_err(bad)?),
            Id::ED448 => Err(Error::UnsupportedKey("OKP curve Ed448")),
            Id::X448 => Err(Error::UnsupportedKey("OKP curve X448")),
            _ => Err(Error::UnsupportedKey("key type")),
        }
    }

    /// The key as an OpenSSL public key.
    pub(crate) fn to_openssl(&self) -> Result<PKey<Public>> {
        let bad = |_| Error::InvalidKey("the public key is not valid");
        match self {
            Self::Ec { curve, x, y } => {
                let nid = curve.nid().ok_or(Error::InvalidKey("curve"))?;
                let group = EcGroup::from_curve_name(nid).map_err(bad)?;
                let mut ctx = BigNumContext::new().map_err(bad)?;
                let mut sec1 = Vec::with_capacity(1 + x.len() + y.len());
                sec1.push(0x04);
                sec1.extend_from_slice(x);
                sec1.extend_from_slice(y);
                let point = EcPoint::from_bytes(&group, &sec1, &mut ctx)
                    .map_err(|_| Error::InvalidKey("EC point is not on the curve"))?;
                let key = EcKey::from_public_key(&group, &point).map_err(bad)?;
                key.check_key()
                    .map_err(|_| Error::InvalidKey("EC point is not on the curve"))?;
                PKey::from_ec_key(key).map_err(bad)
            }
            Self::Rsa { n, e } => {
                let n = BigNum::from_slice(n).map_err(bad)?;
                let e = BigNum::from_slice(e).map_err(bad)?;
                let rsa = Rsa::from_public_components(n, e).map_err(bad)?;
                PKey::from_rsa(rsa).map_err(bad)
            }
            Self::Okp { curve, x } => {
                let id = match curve {
                    Curve::Ed25519 => Id::ED25519,
                    _ => Id::X25519,
                };
                PKey::public_key_from_raw_bytes(x, id).map_err(bad)
            }
        }
    }

    /// The length in bytes of an RSA signature under this key (the modulus length).
    pub(crate) fn rsa_len(&self) -> Option<usize> {
        match self {
            Self::Rsa { n, .. } => Some(n.len()),
            _ => None,
        }
    }

    /// The RFC 7638 thumbprint input: the required members, in lexicographic order,
    /// without whitespace.
    fn thumbprint_input(&self) -> String {
        match self {
            Self::Ec { curve, x, y } => format!(
                r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                curve.name(),
                b64::encode(x),
                b64::encode(y)
            ),
            Self::Rsa { n, e } => format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                b64::encode(e),
                b64::encode(n)
            ),
            Self::Okp { curve, x } => format!(
                r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#,
                curve.name(),
                b64::encode(x)
            ),
        }
    }

    /// The RFC 7638 JWK thumbprint (SHA-256, base64url).
    pub(crate) fn thumbprint(&self) -> String {
        b64::encode(Sha256::digest(self.thumbprint_input().as_bytes()))
    }

    /// Writes the public members (`kty`, `crv`, `x`, `y`, `n`, `e`) into `map`.
    pub(crate) fn write_members(&self, map: &mut Map<String, Value>) {
        let mut put = |k: &str, v: String| {
            map.insert(k.to_owned(), Value::String(v));
        };
        match self {
            Self::Ec { curve, x, y } => {
                put("kty", "EC".into());
                put("crv", curve.name().into());
                put("x", b64::encode(x));
                put("y", b64::encode(y));
            }
            Self::Rsa { n, e } => {
                put("kty", "RSA".into());
                put("n", b64::encode(n));
                put("e", b64::encode(e));
            }
            Self::Okp { curve, x } => {
                put("kty", "OKP".into());
                put("crv", curve.name().into());
                put("x", b64::encode(x));
            }
        }
    }

    /// A josekit JWK holding only the public members (no `kid`, `alg`, `use`), for
    /// josekit's `*_from_jwk` constructors.
    pub(crate) fn to_josekit(&self) -> Result<josekit::jwk::Jwk> {
        let mut map = Map::new();
        self.write_members(&mut map);
        josekit::jwk::Jwk::from_map(map).map_err(|_| Error::InvalidKey("JWK"))
    }
}

/// The JWK text of a key: public members, then `kid`, `alg`, `use`.
pub(crate) fn public_jwk(key: &PublicKey, kid: &str, alg: &str, use_: &str) -> Map<String, Value> {
    let mut map = Map::new();
    key.write_members(&mut map);
    map.insert("kid".into(), Value::String(kid.to_owned()));
    map.insert("alg".into(), Value::String(alg.to_owned()));
    map.insert("use".into(), Value::String(use_.to_owned()));
    map
}

fn missing(name: &'static str) -> &'static str {
    match name {
        "crv" => "JWK without `crv`",
        "x" => "JWK without `x`",
        "y" => "JWK without `y`",
        "n" => "JWK without `n`",
        "e" => "JWK without `e`",
        "d" => "private JWK without `d`",
        "k" => "symmetric JWK without `k`",
        _ => "JWK member missing",
    }
}

fn strip_leading_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    b.get(start..).unwrap_or_default()
}

fn bit_len(n: &[u8]) -> usize {
    let n = strip_leading_zeros(n);
    match n.first() {
        None => 0,
        Some(&top) => (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
    }
}

/// A JWK as read: the members this crate knows, typed; every other member skipped.
/// Private members are kept only long enough to build a key and zeroized on drop.
#[derive(Deserialize, Serialize, Default)]
pub(crate) struct JwkIn {
    pub(crate) kty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) alg: Option<String>,
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub(crate) use_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) key_ops: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) y: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) n: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) e: Option<String>,
    // Private and secret members: never written back out.
    #[serde(default, skip_serializing)]
    pub(crate) d: Option<String>,
    #[serde(default, skip_serializing)]
    pub(crate) p: Option<String>,
    #[serde(default, skip_serializing)]
    pub(crate) q: Option<String>,
    #[serde(default, skip_serializing)]
    pub(crate) dp: Option<String>,
    #[serde(default, skip_serializing)]
    pub(crate) dq: Option<String>,
    #[serde(default, skip_serializing)]
    pub(crate) qi: Option<String>,
    #[serde(default, skip_serializing)]
    pub(crate) oth: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    pub(crate) k: Option<String>,
}

impl Drop for JwkIn {
    fn drop(&mut self) {
        for secret in [
            &mut self.d,
            &mut self.p,
            &mut self.q,
            &mut self.dp,
            &mut self.dq,
            &mut self.qi,
            &mut self.k,
        ] {
            secret.zeroize();
        }
    }
}

impl JwkIn {
    /// Parses one JWK, bounded.
    pub(crate) fn parse(json: &str) -> Result<Self> {
        if json.len() > MAX_JWK_LEN {
            return Err(Error::InvalidKey("JWK over 16 KiB"));
        }
        let not_a_jwk = Error::InvalidKey("not a JWK (a JSON object with a string `kty`)");
        // A derived `Deserialize` also takes a JSON array; a JWK is an object.
        if !json.trim_start().starts_with('{') {
            return Err(not_a_jwk);
        }
        // Read strictly, as tokens are: a member named twice is refused.
        token_core::json::from_slice(json.as_bytes()).map_err(|e| match e {
            token_core::Error::DuplicateMember(_) => Error::Core(e),
            _ => not_a_jwk,
        })
    }

    /// Whether any private or secret member is present.
    pub(crate) fn has_private_parts(&self) -> bool {
        self.d.is_some()
            || self.p.is_some()
            || self.q.is_some()
            || self.dp.is_some()
            || self.dq.is_some()
            || self.qi.is_some()
            || self.oth.is_some()
            || self.k.is_some()
    }

    /// Whether the JWK allows `op` (`use` and `key_ops` both consulted when present).
    pub(crate) fn allows(&self, use_: &str, op: &str) -> bool {
        self.use_.as_deref().is_none_or(|u| u == use_)
            && self
                .key_ops
                .as_ref()
                .is_none_or(|ops| ops.iter().any(|o| o == op))
    }

    /// A private member, decoded, in a zeroizing buffer.
    pub(crate) fn secret(&self, name: &'static str) -> Result<zeroize::Zeroizing<Vec<u8>>> {
        let v = match name {
            "d" => &self.d,
            "p" => &self.p,
            "q" => &self.q,
            "dp" => &self.dp,
            "dq" => &self.dq,
            "qi" => &self.qi,
            "k" => &self.k,
            _ => &None,
        };
        let s = v.as_deref().ok_or(Error::InvalidKey(missing(name)))?;
        b64::decode(s)
            .map(zeroize::Zeroizing::new)
            .ok_or(Error::InvalidKey("JWK member is not base64url"))
    }
}

/// Writes a JSON string member `"name":"value"` into `out`, escaping in place (no
/// intermediate copies of `value`, which may be secret).
pub(crate) fn push_member(out: &mut String, name: &str, value: &str) {
    if !out.ends_with('{') {
        out.push(',');
    }
    push_json_string(out, name);
    out.push(':');
    push_json_string(out, value);
}

fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Moves JSON text holding key material into a [`SecretString`] without leaving a
/// copy behind: `buf` is zeroized, and the secret is allocated at its exact size so
/// that no reallocation copies it.
pub(crate) fn into_secret(buf: &zeroize::Zeroizing<String>) -> secrecy::SecretString {
    let mut exact = String::with_capacity(buf.len());
    exact.push_str(buf);
    secrecy::SecretString::from(exact)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_escaped() {
        let mut out = String::from("{");
        push_member(&mut out, "kid", "a\"b\\c\u{1}");
        push_member(&mut out, "k", "AQAB");
        out.push('}');
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["kid"], "a\"b\\c\u{1}");
        assert_eq!(v["k"], "AQAB");
        let secret = into_secret(&zeroize::Zeroizing::new(out.clone()));
        assert_eq!(secrecy::ExposeSecret::expose_secret(&secret), out);
    }

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 section 3.1.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let key = PublicKey::rsa(&b64::decode(n).unwrap(), &b64::decode("AQAB").unwrap()).unwrap();
        assert_eq!(
            key.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn rfc8037_example_thumbprint() {
        // RFC 8037 appendix A.3.
        let x = b64::decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo").unwrap();
        let key = PublicKey::okp(Curve::Ed25519, &x).unwrap();
        assert_eq!(
            key.thumbprint(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn rsa_checks() {
        let mut n = vec![0xc5; 256];
        n[255] = 0x01;
        assert!(PublicKey::rsa(&n, &[1, 0, 1]).is_ok());
        let mut padded = vec![0, 0];
        padded.extend_from_slice(&n);
        assert_eq!(
            PublicKey::rsa(&padded, &[1, 0, 1]),
            PublicKey::rsa(&n, &[1, 0, 1])
        );
        assert_eq!(
            PublicKey::rsa(&n[1..], &[1, 0, 1]),
            Err(Error::WeakKey("RSA modulus under 2048 bits"))
        );
        assert!(matches!(
            PublicKey::rsa(&n, &[1]),
            Err(Error::InvalidKey(_))
        ));
        assert!(matches!(
            PublicKey::rsa(&n, &[2]),
            Err(Error::InvalidKey(_))
        ));
        assert!(matches!(
            PublicKey::rsa(&n, &[1, 0, 0]),
            Err(Error::InvalidKey(_))
        ));
        assert!(matches!(PublicKey::rsa(&n, &[]), Err(Error::InvalidKey(_))));
        assert!(PublicKey::rsa(&n, &[3]).is_ok());
        let mut even = n.clone();
        even[255] = 0x02;
        assert!(matches!(
            PublicKey::rsa(&even, &[1, 0, 1]),
            Err(Error::InvalidKey(_))
        ));
        assert!(matches!(
            PublicKey::rsa(&vec![0xff; 1025], &[1, 0, 1]),
            Err(Error::UnsupportedKey(_))
        ));
        assert_eq!(bit_len(&[0, 1]), 1);
        assert_eq!(bit_len(&[0x80, 0]), 16);
    }

    #[test]
    fn ec_points_must_be_on_the_curve() {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let key = EcKey::generate(&group).unwrap();
        let pkey = PKey::from_ec_key(key).unwrap();
        let public = PublicKey::from_openssl(&pkey).unwrap();
        let PublicKey::Ec { x, mut y, .. } = public.clone() else {
            panic!("not EC")
        };
        assert!(PublicKey::ec(Curve::P256, &x, &y).is_ok());
        y[31] ^= 1;
        assert_eq!(
            PublicKey::ec(Curve::P256, &x, &y),
            Err(Error::InvalidKey("EC point is not on the curve"))
        );
        assert!(matches!(
            PublicKey::ec(Curve::P384, &x, &y),
            Err(Error::InvalidKey(_))
        ));
        assert!(public.describe().contains("P-256"));
    }

    /// A JWK whose `n` or `e` carries leading zero bytes used to be accepted (and
    /// stripped): RFC 7518 requires the minimal encoding, and a padded member is a
    /// second string for one key.
    #[test]
    fn rsa_jwk_members_must_be_minimal() {
        let mut n = vec![0xc5; 256];
        n[255] = 0x01;
        let jwk = |n: &[u8], e: &[u8]| {
            JwkIn::parse(&format!(
                r#"{{"kty":"RSA","n":"{}","e":"{}"}}"#,
                b64::encode(n),
                b64::encode(e)
            ))
            .unwrap()
        };
        assert!(PublicKey::from_jwk(&jwk(&n, &[1, 0, 1])).is_ok());
        let mut padded = vec![0];
        padded.extend_from_slice(&n);
        for (n, e) in [(&padded[..], &[1u8, 0, 1][..]), (&n, &[0, 1, 0, 1])] {
            assert!(matches!(
                PublicKey::from_jwk(&jwk(n, e)),
                Err(Error::InvalidKey(m)) if m.contains("leading zero")
            ));
        }
    }

    #[test]
    fn okp_small_order_keys_are_refused() {
        // The identity point encodes as 1 followed by zeros.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            PublicKey::okp(Curve::Ed25519, &identity),
            Err(Error::WeakKey("Ed25519 public key of small order"))
        );
        assert!(matches!(
            PublicKey::okp(Curve::Ed25519, &[0u8; 31]),
            Err(Error::InvalidKey(_))
        ));
        // y = p + 1: the identity, not canonically encoded.
        let mut non_canonical = [0xffu8; 32];
        non_canonical[0] = 0xee;
        non_canonical[31] = 0x7f;
        assert_eq!(
            PublicKey::okp(Curve::Ed25519, &non_canonical),
            Err(Error::InvalidKey(
                "Ed25519 public key is not canonically encoded"
            ))
        );
        // A valid key plus a point of order 8: mixed order.
        let good = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]).verifying_key();
        let point = CompressedEdwardsY(good.to_bytes()).decompress().unwrap();
        let mixed = (point + curve25519_dalek::constants::EIGHT_TORSION[1])
            .compress()
            .to_bytes();
        assert_eq!(
            PublicKey::okp(Curve::Ed25519, &mixed),
            Err(Error::WeakKey("Ed25519 public key not of prime order"))
        );
        assert!(PublicKey::okp(Curve::Ed25519, good.as_bytes()).is_ok());
    }

    #[test]
    fn jwk_parse_is_bounded_and_typed() {
        assert!(JwkIn::parse(r#"{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}"#).is_ok());
        assert!(JwkIn::parse(r#"{"kty":5}"#).is_err());
        assert!(JwkIn::parse(r#"["EC"]"#).is_err());
        assert!(JwkIn::parse(r#"{"crv":"P-256"}"#).is_err());
        assert!(JwkIn::parse(r#"{"kty":"EC","kty":"RSA"}"#).is_err());
        assert!(JwkIn::parse(&" ".repeat(MAX_JWK_LEN + 1)).is_err());
        assert_eq!(
            JwkIn::parse(r#"{"kty":"EC","x5t":"a","x5t":"b"}"#).map(drop),
            Err(Error::Core(token_core::Error::DuplicateMember(
                "x5t".into()
            )))
        );
        let private = JwkIn::parse(r#"{"kty":"EC","d":"AA"}"#).unwrap();
        assert!(private.has_private_parts());
        let text = serde_json::to_string(&private).unwrap();
        assert!(!text.contains("\"d\""), "{text}");
        let unsupported =
            JwkIn::parse(r#"{"kty":"EC","crv":"secp256k1","x":"AA","y":"AA"}"#).unwrap();
        assert_eq!(
            PublicKey::from_jwk(&unsupported),
            Err(Error::UnsupportedKey("EC curve secp256k1"))
        );
    }
}
