//! DPoP (RFC 9449) over HTTP: `Authorization: DPoP <token>` with a `DPoP: <proof>`
//! header, the request URI a proof must name, and server nonces shared by a fleet.
//!
//! Give an [`AuthState`](crate::AuthState) a [`DpopSettings`] with
//! [`AuthState::dpop`](crate::AuthState::dpop): the extractors and
//! [`AuthLayer`](crate::AuthLayer) then accept DPoP-bound access tokens with their
//! proofs, and refuse them under `Bearer`. Refusals answer as RFC 9449 section 7.1 says:
//! `401` with `WWW-Authenticate: DPoP error="invalid_dpop_proof", algs="ES256 EdDSA Ed25519"`,
//! or `error="use_dpop_nonce"` with a `DPoP-Nonce` header. A token endpoint answers
//! `400` instead (section 5 and 8): see [`Error::into_token_endpoint_response`].
//!
//! **The request URI.** A proof's `htu` is compared with the URI the client addressed.
//! Behind a reverse proxy the server sees another one, so it is rebuilt from a
//! configured public origin and the request's path ([`DpopSettings::public_origin`]);
//! `Host` and `X-Forwarded-*` are never read, since a client writes them.
//!
//! **Nonces.** With [`DpopSettings::require_nonces`], every proof must carry a nonce
//! the server gave. A nonce is the number of a time window and an HMAC of it under a
//! secret the fleet shares ([`DpopNonces`]): every instance given the same secret
//! accepts every instance's nonces, with no shared store. The nonces of the current,
//! the previous and the next window are accepted; a response carries the next one in
//! `DPoP-Nonce` during the last quarter of a window, so a busy client moves on before
//! its nonce ages out.

use std::fmt;
use std::time::Duration;

use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use token_core::{Clock, SecretBytes, SystemClock, Timestamp};
use token_jwt::dpop::{DpopError, DpopVerifier};

use crate::error::{Error, Result};

/// The `DPoP` request header (the proof) and the `DPoP-Nonce` response header.
pub const DPOP_HEADER: &str = "dpop";
/// The response header carrying a server nonce.
pub const DPOP_NONCE_HEADER: &str = "dpop-nonce";
/// The default length of a nonce window.
pub const DEFAULT_NONCE_WINDOW: Duration = Duration::from_secs(300);
/// The shortest nonce secret accepted, in bytes.
pub const MIN_NONCE_SECRET: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// Server nonces (RFC 9449 section 8) every instance holding the same secret issues
/// and accepts: `base64url(window || HMAC-SHA256(secret, window)[..16])`, where
/// `window` is the Unix time divided by the window length.
#[derive(Clone)]
pub struct DpopNonces {
    secret: std::sync::Arc<SecretBytes>,
    window: Duration,
}

impl fmt::Debug for DpopNonces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopNonces")
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl DpopNonces {
    /// Nonces under `secret` (at least [`MIN_NONCE_SECRET`] bytes, random; the same on
    /// every instance of a fleet), rotating every [`DEFAULT_NONCE_WINDOW`].
    ///
    /// # Errors
    /// [`Error::Config`] for a secret shorter than [`MIN_NONCE_SECRET`].
    pub fn new(secret: SecretBytes) -> Result<Self> {
        if secret.len() < MIN_NONCE_SECRET {
            return Err(Error::Config(format!(
                "a DPoP nonce secret is at least {MIN_NONCE_SECRET} bytes"
            )));
        }
        Ok(Self {
            secret: std::sync::Arc::new(secret),
            window: DEFAULT_NONCE_WINDOW,
        })
    }

    /// Nonces under a fresh random secret: this process only (a fleet's other
    /// instances refuse them).
    ///
    /// # Errors
    /// [`Error::Internal`] when the system's randomness is unavailable.
    pub fn random() -> Result<Self> {
        let mut secret = vec![0u8; MIN_NONCE_SECRET];
        getrandom::fill(&mut secret)
            .map_err(|_| Error::Internal("randomness unavailable".into()))?;
        Self::new(SecretBytes::new(secret))
    }

    /// Rotates every `window` (at least one second).
    #[must_use]
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window.max(Duration::from_secs(1));
        self
    }

    fn index(&self, now: Timestamp) -> u64 {
        let secs = u64::try_from(now.unix_seconds()).unwrap_or(0);
        secs / self.window.as_secs().max(1)
    }

    fn nonce_of(&self, index: u64) -> String {
        use base64::Engine as _;
        let mut out = Vec::with_capacity(24);
        out.extend_from_slice(&index.to_be_bytes());
        if let Ok(mut mac) = HmacSha256::new_from_slice(self.secret.expose_secret()) {
            mac.update(b"tessera dpop nonce\0");
            mac.update(&index.to_be_bytes());
            let tag = mac.finalize().into_bytes();
            out.extend(tag.iter().take(16));
        }
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out)
    }

    /// The nonce of the window `now` falls in.
    pub fn nonce_at(&self, now: Timestamp) -> String {
        self.nonce_of(self.index(now))
    }

    /// The nonce to give a client at `now`: the current window's, or the next one's
    /// during the last quarter of the window.
    pub fn to_send(&self, now: Timestamp) -> String {
        let len = self.window.as_secs().max(1);
        let secs = u64::try_from(now.unix_seconds()).unwrap_or(0);
        let index = secs / len;
        if (secs % len) * 4 >= len * 3 {
            self.nonce_of(index.saturating_add(1))
        } else {
            self.nonce_of(index)
        }
    }

    /// The nonce a proof carrying `presented` must carry: that very nonce recomputed
    /// when it names the previous, current or next window, else the current one (the
    /// proof is then refused, as a nonce mismatch or a missing nonce). The verifier
    /// compares in constant time.
    pub fn expected(&self, presented: Option<&str>, now: Timestamp) -> String {
        use base64::Engine as _;
        let current = self.index(now);
        let named = presented
            .and_then(|n| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(n)
                    .ok()
            })
            .and_then(|bytes| bytes.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()))
            .map(u64::from_be_bytes)
            .filter(|i| current.saturating_sub(1) <= *i && *i <= current.saturating_add(1));
        self.nonce_of(named.unwrap_or(current))
    }
}

/// Where the request URI a proof must name comes from.
#[derive(Clone, Debug)]
enum Origin {
    /// `https://api.example.com`: the origin clients address, prefixed to the path.
    Public(String),
}

/// How DPoP works on this service: the public origin requests are addressed to, the
/// proof rules in force, and server nonces when they are required.
#[derive(Clone)]
pub struct DpopSettings {
    origin: Origin,
    nonces: Option<DpopNonces>,
    clock: std::sync::Arc<dyn Clock>,
}

impl fmt::Debug for DpopSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopSettings")
            .field("origin", &self.origin)
            .field("nonces", &self.nonces)
            .finish_non_exhaustive()
    }
}

impl DpopSettings {
    /// Proofs name `origin` (`https://api.example.com`, scheme and authority, no path)
    /// and the request's path: the URI the client addressed, even behind a reverse
    /// proxy that rewrites the `Host`.
    ///
    /// # Errors
    /// [`Error::Config`] for anything but an `http` or `https` origin without path,
    /// query or fragment.
    pub fn public_origin(origin: &str) -> Result<Self> {
        let origin = origin.trim_end_matches('/');
        let valid = match origin.split_once("://") {
            Some((scheme, authority)) => {
                ["http", "https"].contains(&scheme.to_ascii_lowercase().as_str())
                    && !authority.is_empty()
                    && !authority.contains(['/', '?', '#', '@'])
                    && token_jwt::dpop::normalise_uri(origin).is_some()
            }
            None => false,
        };
        if !valid {
            return Err(Error::Config(
                "a DPoP public origin is http(s)://host[:port], without a path".into(),
            ));
        }
        Ok(Self {
            origin: Origin::Public(origin.to_owned()),
            nonces: None,
            clock: std::sync::Arc::new(SystemClock),
        })
    }

    /// Requires server nonces (RFC 9449 section 8): a proof without the current one
    /// is answered `use_dpop_nonce` with a `DPoP-Nonce` header.
    #[must_use]
    pub fn require_nonces(mut self, nonces: DpopNonces) -> Self {
        self.nonces = Some(nonces);
        self
    }

    /// Reads time from `clock` for nonces (default: the system clock).
    #[must_use]
    pub fn clock(mut self, clock: std::sync::Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The public origin (`https://api.example.com`).
    pub fn origin(&self) -> &str {
        let Origin::Public(origin) = &self.origin;
        origin
    }

    /// The server nonces, when required.
    pub fn nonces(&self) -> Option<&DpopNonces> {
        self.nonces.as_ref()
    }

    /// The absolute URI the request was addressed to: the public origin and the
    /// request's path — the whole path, as the client sent it, on a router nested
    /// under a prefix too (no query: a proof's `htu` has none).
    pub fn request_uri(&self, parts: &Parts) -> String {
        let Origin::Public(origin) = &self.origin;
        let path = parts
            .extensions
            .get::<axum::extract::OriginalUri>()
            .map_or(parts.uri.path(), |original| original.0.path());
        format!("{origin}{path}")
    }

    /// The nonce a proof must carry (its own, when it names a window still accepted),
    /// or `None` when nonces are not required.
    pub fn expected_nonce(&self, proof: &str) -> Option<String> {
        self.nonces.as_ref().map(|n| {
            n.expected(
                token_jwt::dpop::unverified_nonce(proof).as_deref(),
                self.clock.now(),
            )
        })
    }

    /// The nonce to send with a response to a proof carrying `presented`: a fresh one
    /// when it differs (the window turned or is about to), else none.
    pub fn fresh_nonce(&self, presented: Option<&str>) -> Option<String> {
        let nonces = self.nonces.as_ref()?;
        let send = nonces.to_send(self.clock.now());
        (presented != Some(send.as_str())).then_some(send)
    }

    /// The nonce a client should use now, when nonces are required.
    pub fn current_nonce(&self) -> Option<String> {
        self.nonces.as_ref().map(|n| n.to_send(self.clock.now()))
    }

    /// The error for a refused proof: `use_dpop_nonce` with the nonce to use, or
    /// `invalid_dpop_proof` saying which check failed.
    pub fn error(&self, e: &DpopError) -> Error {
        match e {
            DpopError::NonceRequired | DpopError::NonceMismatch => {
                Error::UseDpopNonce(self.current_nonce().unwrap_or_default())
            }
            other => Error::InvalidDpopProof(description(other)),
        }
    }

    /// The error for a refusal of `token_policy`, a proof's with its nonce.
    pub fn policy_error(&self, e: token_policy::Error) -> Error {
        match &e {
            token_policy::Error::Dpop(d) => self.error(d),
            _ => e.into(),
        }
    }
}

/// The fixed phrase of a refused proof (its `error_description`).
pub fn description(e: &DpopError) -> &'static str {
    match e {
        DpopError::Malformed(_) => "malformed proof",
        DpopError::WrongType => "typ is not dpop+jwt",
        DpopError::AlgorithmNotAllowed => "algorithm not allowed",
        DpopError::MissingKey => "no jwk header",
        DpopError::PrivateKey => "jwk holds a private key",
        DpopError::KeyMismatch => "jwk does not fit the algorithm",
        DpopError::BadSignature => "bad signature",
        DpopError::MissingClaim(_) => "a required claim is missing",
        DpopError::MethodMismatch => "htm is not the request method",
        DpopError::UriMismatch => "htu is not the request URI",
        DpopError::Stale => "iat outside the accepted window",
        DpopError::AccessTokenHash => "ath is not the access token hash",
        DpopError::NonceRequired => "nonce required",
        DpopError::NonceMismatch => "nonce not current",
        DpopError::Replayed => "proof already used",
        _ => "invalid proof",
    }
}

/// The `algs` parameter of a `DPoP` challenge for `verifier`.
pub fn algs(verifier: &DpopVerifier) -> String {
    verifier.signing_alg_values_supported().join(" ")
}

/// The proof of a request: its one `DPoP` header, `None` without one.
///
/// # Errors
/// [`Error::InvalidDpopProof`] for several `DPoP` headers or one that is not visible
/// ASCII.
pub fn proof_header(parts: &Parts) -> Result<Option<&str>> {
    let mut values = parts.headers.get_all(DPOP_HEADER).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(_), Some(_)) => Err(Error::InvalidDpopProof("more than one DPoP header")),
        (Some(v), None) => v
            .to_str()
            .map(|s| Some(s.trim()))
            .map_err(|_| Error::InvalidDpopProof("malformed proof")),
    }
}

/// Adds `DPoP-Nonce: nonce` to `headers` (and exposes it to a browser's script).
pub fn set_nonce(headers: &mut axum::http::HeaderMap, nonce: &str) {
    if let Ok(value) = HeaderValue::from_str(nonce) {
        headers.insert(DPOP_NONCE_HEADER, value);
        headers.append(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("DPoP-Nonce"),
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_unix_seconds(secs).unwrap()
    }

    #[test]
    fn nonces_are_shared_by_secret_and_rotate() {
        let secret = || SecretBytes::new(vec![7u8; 32]);
        let one = DpopNonces::new(secret()).unwrap();
        let two = DpopNonces::new(secret()).unwrap();
        let other = DpopNonces::new(SecretBytes::new(vec![8u8; 32])).unwrap();
        let now = at(3_000_000);
        assert_eq!(one.nonce_at(now), two.nonce_at(now));
        assert_ne!(one.nonce_at(now), other.nonce_at(now));
        // The previous, current and next windows are accepted; older ones are not.
        let window = i64::try_from(DEFAULT_NONCE_WINDOW.as_secs()).unwrap();
        for step in [-1, 0, 1] {
            let nonce = one.nonce_at(at(3_000_000 + step * window));
            assert_eq!(one.expected(Some(&nonce), now), nonce);
        }
        let old = one.nonce_at(at(3_000_000 - 2 * window));
        assert_ne!(one.expected(Some(&old), now), old);
        // Another secret's nonce of the current window is not this one's.
        let forged = other.nonce_at(now);
        assert_ne!(one.expected(Some(&forged), now), forged);
        // The last quarter of a window sends the next window's nonce.
        let start = (3_000_000 / window) * window;
        assert_eq!(one.to_send(at(start)), one.nonce_at(at(start)));
        assert_eq!(
            one.to_send(at(start + window - 1)),
            one.nonce_at(at(start + window))
        );
        assert!(DpopNonces::new(SecretBytes::new(vec![1u8; 8])).is_err());
    }

    #[test]
    fn the_default_challenge_algs_are_the_default_allow_list() {
        assert_eq!(crate::error::DEFAULT_DPOP_ALGS, algs(&DpopVerifier::new()),);
    }

    #[test]
    fn the_request_uri_is_the_public_origin_and_the_whole_path() {
        let settings = DpopSettings::public_origin("https://api.example.com/").unwrap();
        let mut parts = axum::http::Request::get("http://10.0.0.7:8080/me?x=1")
            .header("host", "evil.example")
            .header("x-forwarded-host", "evil.example")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        assert_eq!(settings.request_uri(&parts), "https://api.example.com/me");
        // Under `nest("/v1", …)` the handler sees `/me`; the client addressed `/v1/me`.
        parts
            .extensions
            .insert(axum::extract::OriginalUri("/v1/me?x=1".parse().unwrap()));
        assert_eq!(
            settings.request_uri(&parts),
            "https://api.example.com/v1/me"
        );
    }

    #[test]
    fn public_origins_are_checked() {
        assert!(DpopSettings::public_origin("https://api.example.com").is_ok());
        assert!(DpopSettings::public_origin("http://127.0.0.1:8080/").is_ok());
        for bad in [
            "ftp://x",
            "https://a/b",
            "https://a?x",
            "api.example.com",
            "",
        ] {
            assert!(DpopSettings::public_origin(bad).is_err(), "{bad}");
        }
    }
}
