//! DPoP proofs (RFC 9449): verifying that the client holds the private key a token is
//! bound to, on every request.
//!
//! A proof is a JWS whose header carries the client's public key (`jwk`) — the one
//! place a key is taken from a token, which is what a proof is for: the key is then
//! bound to the access token (`cnf.jkt`, its RFC 7638 thumbprint), so it is pinned from
//! the second request on. [`DpopVerifier::verify`] runs the checks of RFC 9449
//! section 4.3, in order, each failing with its own [`DpopError`]:
//!
//! 1. one compact JWS, bounded in size; the header strict JSON;
//! 2. `typ` is `dpop+jwt`;
//! 3. `alg` is an asymmetric algorithm of the verifier's allow-list (ES256 and EdDSA by
//!    default; never `none`, never HMAC), and fits the `jwk`'s key type;
//! 4. `jwk` is a public key: a private member (`d`, `p`, `q`, `dp`, `dq`, `qi`, `k`) is
//!    refused;
//! 5. the signature verifies under that key;
//! 6. `jti`, `htm`, `htu` and `iat` are present; `htm` is the request method; `htu`
//!    is the request URI without query and fragment, compared after RFC 3986
//!    syntax-based normalisation (case of scheme and host, default port, empty path,
//!    percent-encoding case);
//! 7. `iat` is within the window (default: at most 60 s old, at most 5 s ahead);
//! 8. when an access token is presented, `ath` is the base64url SHA-256 of it;
//! 9. when the server requires nonces, `nonce` is the expected one.
//!
//! Replay (a `jti` seen before within the window) is checked by the caller, which
//! holds the replay cache: `token_policy` keeps it in process or in Redis.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use token_core::{Claims, NumericDate, Reason, Timestamp, json};

use crate::algorithm::{Algorithm, media_type_eq};
use crate::b64;
use crate::key::VerifyingKey;

/// The longest proof read, in bytes.
pub const MAX_PROOF_LEN: usize = 8 * 1024;

/// The header `typ` of a proof.
pub const DPOP_TYPE: &str = "dpop+jwt";

/// Private JWK members: a proof's `jwk` carrying one is refused.
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

/// Why a proof was refused. Every variant says which check failed; none quotes the
/// proof.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DpopError {
    /// Not one compact JWS within [`MAX_PROOF_LEN`], or its header or claims are not
    /// the JSON they must be.
    #[error("malformed DPoP proof: {0}")]
    Malformed(&'static str),
    /// `typ` is not `dpop+jwt`.
    #[error("the proof's typ is not dpop+jwt")]
    WrongType,
    /// `alg` is not an asymmetric algorithm the verifier allows.
    #[error("the proof's algorithm is not allowed")]
    AlgorithmNotAllowed,
    /// The header has no `jwk`.
    #[error("the proof has no jwk header")]
    MissingKey,
    /// The `jwk` holds private key material.
    #[error("the proof's jwk holds a private key")]
    PrivateKey,
    /// The `jwk` is not a key of `alg`'s type, or not a usable key.
    #[error("the proof's jwk does not fit its algorithm")]
    KeyMismatch,
    /// The signature does not verify under the `jwk`.
    #[error("the proof's signature does not verify")]
    BadSignature,
    /// A required claim is missing or of the wrong type.
    #[error("the proof lacks the {0} claim")]
    MissingClaim(&'static str),
    /// `htm` is not the request's method.
    #[error("the proof's htm is not the request method")]
    MethodMismatch,
    /// `htu` is not the request's URI.
    #[error("the proof's htu is not the request URI")]
    UriMismatch,
    /// `iat` is outside the accepted window.
    #[error("the proof's iat is outside the accepted window")]
    Stale,
    /// An access token came with the proof and `ath` is missing or not its hash.
    #[error("the proof's ath is not the hash of the access token")]
    AccessTokenHash,
    /// The server requires a nonce and the proof has none.
    #[error("a DPoP nonce is required")]
    NonceRequired,
    /// The proof's nonce is not the one expected (an old one, or another).
    #[error("the proof's nonce is not the current one")]
    NonceMismatch,
    /// The proof's `jti` was seen before within the window.
    #[error("the proof was used before")]
    Replayed,
}

impl DpopError {
    /// The shared phrase: `DPoP nonce required` for the nonce cases (the client
    /// retries with the nonce the server sends), `invalid DPoP proof` otherwise.
    pub fn reason(&self) -> Reason {
        match self {
            Self::NonceRequired | Self::NonceMismatch => Reason::UseDpopNonce,
            _ => Reason::InvalidDpopProof,
        }
    }
}

/// The request a proof must match.
#[derive(Clone, Copy, Debug)]
pub struct DpopRequest<'a> {
    /// The HTTP method, as sent (`GET`, `POST`).
    pub method: &'a str,
    /// The request's absolute URI as the client addressed it (scheme, host, path; a
    /// query and fragment are ignored). Behind a reverse proxy, build it from the
    /// configured public origin, never from request headers a client controls.
    pub uri: &'a str,
    /// The access token presented with the proof, if any (its hash must be `ath`).
    pub access_token: Option<&'a str>,
    /// The nonce the server expects, when it requires one.
    pub nonce: Option<&'a str>,
}

/// A proof that passed every check.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedProof {
    /// The RFC 7638 thumbprint of the proof's key: what a bound token's `cnf.jkt` is.
    pub jkt: String,
    /// The proof's `jti`, for the replay cache.
    pub jti: String,
    /// When the proof was made.
    pub iat: Timestamp,
}

/// Verifies DPoP proofs. The defaults follow RFC 9449's advice: ES256 and EdDSA, a
/// 60-second window for `iat` with 5 seconds of clock skew ahead.
#[derive(Clone, Debug)]
pub struct DpopVerifier {
    algorithms: Vec<Algorithm>,
    max_age: Duration,
    max_ahead: Duration,
}

impl Default for DpopVerifier {
    fn default() -> Self {
        Self {
            algorithms: vec![Algorithm::Es256, Algorithm::EdDsa],
            max_age: Duration::from_secs(60),
            max_ahead: Duration::from_secs(5),
        }
    }
}

#[derive(Deserialize)]
struct ProofHeader {
    #[serde(default)]
    typ: Option<String>,
    alg: String,
    #[serde(default)]
    jwk: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
struct ProofClaims {
    #[serde(default)]
    htm: Option<String>,
    #[serde(default)]
    htu: Option<String>,
    #[serde(default)]
    ath: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
}

impl DpopVerifier {
    /// The default verifier.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts proofs signed with `algorithms` only. Symmetric (HMAC) and
    /// verify-only algorithms are left out whatever is given: a proof's key must be
    /// one a client can hold and sign with.
    #[must_use]
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms
            .into_iter()
            .filter(|a| crate::Algorithm::SIGNING.contains(a))
            .collect();
        self
    }

    /// The algorithms accepted (for `dpop_signing_alg_values_supported`).
    pub fn allowed_algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    /// Accepts proofs made at most `max_age` ago and at most `max_ahead` in the future.
    #[must_use]
    pub fn window(mut self, max_age: Duration, max_ahead: Duration) -> Self {
        self.max_age = max_age;
        self.max_ahead = max_ahead;
        self
    }

    /// How long a proof stays acceptable: its `jti` must be remembered this long.
    pub fn replay_window(&self) -> Duration {
        self.max_age + self.max_ahead
    }

    /// Verifies `proof` for `request` at `now`.
    ///
    /// # Errors
    /// The first check that fails, as a [`DpopError`].
    pub fn verify(
        &self,
        proof: &str,
        request: &DpopRequest<'_>,
        now: Timestamp,
    ) -> Result<VerifiedProof, DpopError> {
        if proof.len() > MAX_PROOF_LEN {
            return Err(DpopError::Malformed("longer than 8 KiB"));
        }
        let mut parts = proof.split('.');
        let (Some(header), Some(_), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(DpopError::Malformed("not a compact JWS"));
        };
        let header = b64::decode(header).ok_or(DpopError::Malformed("header is not base64url"))?;
        json::check_shape(&header, 4, 32).map_err(|_| DpopError::Malformed("header too deep"))?;
        let header: ProofHeader = json::from_slice(&header)
            .map_err(|_| DpopError::Malformed("header is not a JWS header"))?;
        if !header
            .typ
            .as_deref()
            .is_some_and(|t| media_type_eq(t, DPOP_TYPE))
        {
            return Err(DpopError::WrongType);
        }
        let alg = Algorithm::from_name(&header.alg)
            .filter(|a| self.algorithms.contains(a))
            .ok_or(DpopError::AlgorithmNotAllowed)?;
        let jwk = header.jwk.ok_or(DpopError::MissingKey)?;
        if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
            return Err(DpopError::PrivateKey);
        }
        // The key's own `kid`, `alg`, `use` are not the proof's business: only its
        // public members make the key.
        let mut public = Map::new();
        for m in ["kty", "crv", "x", "y", "n", "e"] {
            if let Some(v) = jwk.get(m) {
                public.insert(m.to_owned(), v.clone());
            }
        }
        let key = VerifyingKey::from_jwk(alg, &Value::Object(public).to_string())
            .map_err(|_| DpopError::KeyMismatch)?;
        // The signature, then the claims (strictly typed).
        let (_, payload) =
            crate::hazmat::verify_jws(&key, proof).map_err(|_| DpopError::BadSignature)?;
        let claims = Claims::<ProofClaims>::from_json::<NumericDate>(&payload)
            .map_err(|_| DpopError::Malformed("claims are not the JSON they must be"))?;
        let jti = claims
            .jti
            .clone()
            .filter(|j| !j.is_empty() && j.len() <= 256)
            .ok_or(DpopError::MissingClaim("jti"))?;
        let iat = claims.iat.ok_or(DpopError::MissingClaim("iat"))?;
        let custom = &claims.custom;
        let htm = custom
            .htm
            .as_deref()
            .ok_or(DpopError::MissingClaim("htm"))?;
        let htu = custom
            .htu
            .as_deref()
            .ok_or(DpopError::MissingClaim("htu"))?;
        if htm != request.method {
            return Err(DpopError::MethodMismatch);
        }
        match (normalise_uri(htu), normalise_uri(request.uri)) {
            (Some(a), Some(b)) if a == b => {}
            _ => return Err(DpopError::UriMismatch),
        }
        let oldest = now.saturating_sub(self.max_age);
        let newest = now.checked_add(self.max_ahead).unwrap_or(Timestamp::MAX);
        if iat < oldest || iat > newest {
            return Err(DpopError::Stale);
        }
        if let Some(token) = request.access_token {
            let expected = b64::encode(Sha256::digest(token.as_bytes()));
            if custom.ath.as_deref() != Some(expected.as_str()) {
                return Err(DpopError::AccessTokenHash);
            }
        }
        if let Some(expected) = request.nonce {
            match custom.nonce.as_deref() {
                None => return Err(DpopError::NonceRequired),
                Some(n) if token_core::constant_time_eq(n.as_bytes(), expected.as_bytes()) => {}
                Some(_) => return Err(DpopError::NonceMismatch),
            }
        }
        Ok(VerifiedProof {
            jkt: key.thumbprint(),
            jti,
            iat,
        })
    }
}

/// The base64url SHA-256 of an access token: a proof's `ath`.
pub fn access_token_hash(token: &str) -> String {
    b64::encode(Sha256::digest(token.as_bytes()))
}

/// RFC 3986 section 6.2.2 syntax-based normalisation of an `http(s)` URI, without its
/// query and fragment: scheme and host in lower case, the default port dropped, an
/// empty path as `/`, percent-encodings in upper case and unreserved ones decoded.
/// `None` for anything that is not an absolute `http` or `https` URI.
pub fn normalise_uri(uri: &str) -> Option<String> {
    let uri = uri.split(['?', '#']).next()?;
    let (scheme, rest) = uri.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => "443",
        "http" => "80",
        _ => return None,
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let authority = authority.to_ascii_lowercase();
    let authority = match authority.rsplit_once(':') {
        Some((host, port)) if port == default_port => host.to_owned(),
        _ => authority,
    };
    let path = if path.is_empty() { "/" } else { path };
    let mut out = format!("{scheme}://{authority}");
    let bytes = path.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let text = std::str::from_utf8(hex).ok()?;
            let value = u8::from_str_radix(text, 16).ok()?;
            if value.is_ascii_alphanumeric() || b"-._~".contains(&value) {
                out.push(char::from(value));
            } else {
                out.push('%');
                out.push_str(&text.to_ascii_uppercase());
            }
            i += 3;
        } else {
            out.push(char::from(b));
            i += 1;
        }
    }
    Some(out)
}
