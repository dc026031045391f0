//! [`AuthState`]: the token service and the HTTP settings the extractors, the layer and
//! the key-set handlers share.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::http::request::Parts;
use axum::http::{HeaderName, header};
use token_core::{MAX_TOKEN_LEN, OpaqueKind};
use token_opaque::SessionCookie;
use token_policy::{AccessVerifier, Job, JsonObject, ResourceVerifier, TokenService};

use crate::error::{Error, Result};
use crate::layer::Credential;
use crate::principal::{Access, Principal, VerifiedApiKey, VerifiedSession, scopes_of};

/// The default `Cache-Control: max-age` of the key-set documents.
pub const DEFAULT_KEY_SET_MAX_AGE: Duration = Duration::from_secs(300);

/// Shared by the extractors, [`crate::AuthLayer`] and the key-set handlers: what
/// verifies the tokens — a whole [`TokenService`] on the issuing side, or a
/// [`ResourceVerifier`] (public keys only) on a resource server — and how credentials
/// travel over HTTP. Cheap to clone.
///
/// Put it in the router's state (directly, or in a larger state with
/// [`axum::extract::FromRef`]).
#[derive(Clone)]
pub struct AuthState {
    inner: Arc<Inner>,
}

#[derive(Clone)]
enum Tokens {
    Service(Arc<TokenService>),
    Verifier(Arc<ResourceVerifier>),
}

#[derive(Clone)]
struct Inner {
    tokens: Tokens,
    api_key_header: Option<HeaderName>,
    session_cookie: SessionCookie,
    realm: Option<String>,
    key_set_max_age: Duration,
    jwks: Arc<str>,
    paseto_keys: Arc<str>,
    #[cfg(feature = "jwt")]
    dpop: Option<Arc<crate::dpop::DpopSettings>>,
    fingerprint_cookie: Option<SessionCookie>,
}

impl fmt::Debug for AuthState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tokens: &dyn fmt::Debug = match &self.inner.tokens {
            Tokens::Service(s) => s,
            Tokens::Verifier(v) => v,
        };
        f.debug_struct("AuthState")
            .field("tokens", tokens)
            .field("api_key_header", &self.inner.api_key_header)
            .field("session_cookie", &self.inner.session_cookie.name())
            .field("realm", &self.inner.realm)
            .finish_non_exhaustive()
    }
}

/// A JWK Set without keys.
const EMPTY_JWKS: &str = r#"{"keys":[]}"#;

/// The published key sets of the access keys (current and retired): the JWKS when
/// access tokens are JWTs, the PASERK set when they are PASETO; the other is empty.
fn key_sets(keys: &AccessVerifier) -> (String, String) {
    (
        keys.jwks_json().unwrap_or_else(|| EMPTY_JWKS.to_owned()),
        keys.paseto_key_set_json()
            .unwrap_or_else(|| token_paseto::PublicKeySet::new().to_json()),
    )
}

impl AuthState {
    /// Settings for `service`: API keys in `Authorization: Bearer sk_…` only, the
    /// session cookie `__Host-session`, key sets cached for five minutes.
    /// The key-set endpoints publish the service's keys in force: keys installed from
    /// a key table appear (and revoked ones disappear) without a restart.
    pub fn new(service: Arc<TokenService>) -> Self {
        Self::with(
            Tokens::Service(service),
            EMPTY_JWKS.to_owned(),
            token_paseto::PublicKeySet::new().to_json(),
        )
    }

    /// Settings for a resource server: access tokens verified by `verifier` (public
    /// keys only, and the issuer's revocation list when it was given one). API keys and
    /// sessions need the issuer's store, so routes accepting them answer `500` (a
    /// configuration error) here. The key-set endpoints publish the keys `verifier`
    /// was given, or empty sets for a key source.
    pub fn verify_only(verifier: ResourceVerifier) -> Self {
        let (jwks, paseto_keys) = match verifier.keys() {
            Some(keys) => key_sets(&keys),
            None => (
                EMPTY_JWKS.to_owned(),
                token_paseto::PublicKeySet::new().to_json(),
            ),
        };
        Self::with(Tokens::Verifier(Arc::new(verifier)), jwks, paseto_keys)
    }

    fn with(tokens: Tokens, jwks: String, paseto_keys: String) -> Self {
        Self {
            inner: Arc::new(Inner {
                tokens,
                api_key_header: None,
                session_cookie: SessionCookie::default(),
                realm: None,
                key_set_max_age: DEFAULT_KEY_SET_MAX_AGE,
                jwks: jwks.into(),
                paseto_keys: paseto_keys.into(),
                #[cfg(feature = "jwt")]
                dpop: None,
                fingerprint_cookie: None,
            }),
        }
    }

    /// Also reads API keys from `header` (for example `x-api-key`). A request carrying
    /// both that header and `Authorization` is refused (`400`).
    #[must_use]
    pub fn api_key_header(mut self, header: HeaderName) -> Self {
        Arc::make_mut(&mut self.inner).api_key_header = Some(header);
        self
    }

    /// Reads sessions from `cookie` (default: `__Host-session`).
    #[must_use]
    pub fn session_cookie(mut self, cookie: SessionCookie) -> Self {
        Arc::make_mut(&mut self.inner).session_cookie = cookie;
        self
    }

    /// Names a `realm` in `WWW-Authenticate` challenges.
    #[must_use]
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.inner).realm = Some(realm.into());
        self
    }

    /// How long clients may cache the key-set documents (`Cache-Control: max-age`).
    /// Keep it well under the overlap during which a retired key stays published.
    #[must_use]
    pub fn key_set_max_age(mut self, max_age: Duration) -> Self {
        Arc::make_mut(&mut self.inner).key_set_max_age = max_age;
        self
    }

    /// Reads the fingerprint of bearer access tokens from `cookie` (see
    /// [`token_policy::Policy::fingerprint_cookie`]): a token carrying a fingerprint
    /// hash verifies only with the cookie whose hash it is. Without it, such tokens
    /// are refused (`fingerprint cookie missing or not the token's`).
    #[must_use]
    pub fn fingerprint_cookie(mut self, cookie: SessionCookie) -> Self {
        Arc::make_mut(&mut self.inner).fingerprint_cookie = Some(cookie);
        self
    }

    /// The fingerprint cookie in use, if any.
    pub fn fingerprint(&self) -> Option<&SessionCookie> {
        self.inner.fingerprint_cookie.as_ref()
    }

    /// Accepts DPoP-bound access tokens (`Authorization: DPoP …` with a `DPoP`
    /// proof, RFC 9449) as `settings` say: proofs name the configured public origin,
    /// and server nonces are required when they say so. Without it, the `DPoP` scheme
    /// is refused (`400`); bound tokens are refused as bearer tokens either way.
    #[cfg(feature = "jwt")]
    #[must_use]
    pub fn dpop(mut self, settings: crate::dpop::DpopSettings) -> Self {
        Arc::make_mut(&mut self.inner).dpop = Some(Arc::new(settings));
        self
    }

    /// The DPoP settings, when DPoP is accepted.
    #[cfg(feature = "jwt")]
    pub fn dpop_settings(&self) -> Option<&crate::dpop::DpopSettings> {
        self.inner.dpop.as_deref()
    }

    /// The verify side: the service's, or the verifier given.
    pub fn resource_verifier(&self) -> &ResourceVerifier {
        match &self.inner.tokens {
            Tokens::Service(s) => s.resource_verifier(),
            Tokens::Verifier(v) => v,
        }
    }

    /// The algorithms DPoP proofs may use, by name (`ES256`, `EdDSA`): the
    /// `dpop_signing_alg_values_supported` of the service's metadata.
    #[cfg(feature = "jwt")]
    pub fn dpop_signing_alg_values_supported(&self) -> Vec<&'static str> {
        self.resource_verifier()
            .dpop_verifier()
            .signing_alg_values_supported()
    }

    /// The response to a refused request: a `DPoP` challenge (with the algorithms
    /// accepted) when the request used the `DPoP` scheme or the error is about DPoP,
    /// a `Bearer` one otherwise.
    pub fn error_response(&self, error: Error, parts: &Parts) -> axum::response::Response {
        let realm = self.challenge_realm();
        #[cfg(feature = "jwt")]
        if self.inner.dpop.is_some() && (error.is_dpop() || uses_dpop_scheme(parts)) {
            let algs = self.dpop_signing_alg_values_supported().join(" ");
            return error.into_dpop_response(realm, &algs);
        }
        let _ = parts;
        error.into_response_with_realm(realm)
    }

    /// Checks the DPoP proof of a token request (login, refresh; RFC 9449 section 5)
    /// and remembers its `jti`: `None` when the request has no `DPoP` header (the
    /// tokens are then bearer tokens).
    ///
    /// # Errors
    /// [`Error::InvalidDpopProof`] (also when DPoP is not enabled),
    /// [`Error::UseDpopNonce`], [`Error::Unavailable`]; answer them with
    /// [`Error::into_token_endpoint_response`].
    #[cfg(feature = "jwt")]
    pub async fn token_request_proof(
        &self,
        parts: &Parts,
    ) -> Result<Option<token_jwt::dpop::VerifiedProof>> {
        let Some(proof) = crate::dpop::proof_header(parts)? else {
            return Ok(None);
        };
        let settings = self
            .inner
            .dpop
            .as_ref()
            .ok_or(Error::InvalidDpopProof("DPoP is not enabled here"))?;
        let uri = settings.request_uri(parts);
        let nonce = settings.expected_nonce(proof);
        self.resource_verifier()
            .accept_dpop_proof(
                proof,
                &token_jwt::dpop::DpopRequest {
                    method: parts.method.as_str(),
                    uri: &uri,
                    access_token: None,
                    nonce: nonce.as_deref(),
                },
            )
            .await
            .map(Some)
            .map_err(|e| settings.policy_error(e))
    }

    /// The nonce to send with a successful answer to `parts` (a DPoP request whose
    /// nonce is about to rotate), if any.
    #[cfg(feature = "jwt")]
    pub fn fresh_dpop_nonce(&self, parts: &Parts) -> Option<String> {
        let settings = self.inner.dpop.as_ref()?;
        let proof = crate::dpop::proof_header(parts).ok()??;
        settings.fresh_nonce(token_jwt::dpop::unverified_nonce(proof).as_deref())
    }

    /// Verifies a DPoP-bound access token with the request's proof.
    #[cfg(feature = "jwt")]
    async fn verify_access_dpop(&self, token: &str, parts: &Parts) -> Result<Access<JsonObject>> {
        let settings = self.inner.dpop.as_ref().ok_or(Error::InvalidRequest(
            "the DPoP scheme is not accepted here",
        ))?;
        let proof = crate::dpop::proof_header(parts)?
            .ok_or(Error::InvalidDpopProof("a DPoP proof header is required"))?;
        let uri = settings.request_uri(parts);
        let nonce = settings.expected_nonce(proof);
        let line = token_policy::DpopRequestLine {
            method: parts.method.as_str(),
            uri: &uri,
            nonce: nonce.as_deref(),
        };
        let verified = self
            .resource_verifier()
            .verify_access_dpop::<JsonObject>(token, proof, &line)
            .await
            .map_err(|e| settings.policy_error(e))?
            .0;
        let claims = verified.into_claims();
        let scopes = scopes_of(&claims.custom.session);
        Ok(Access::new(claims, scopes))
    }

    /// The token service, on the issuing side (`None` for [`AuthState::verify_only`]).
    pub fn service(&self) -> Option<&Arc<TokenService>> {
        match &self.inner.tokens {
            Tokens::Service(s) => Some(s),
            Tokens::Verifier(_) => None,
        }
    }

    /// The service for a job only the issuing side can do.
    fn issuing_side(&self, job: Job) -> Result<&Arc<TokenService>> {
        self.service().ok_or_else(|| {
            token_policy::Error::NotConfigured {
                job,
                missing: "opaque token store: a verify-only state takes access tokens only",
            }
            .into()
        })
    }

    /// The session cookie in use.
    pub fn cookie(&self) -> &SessionCookie {
        &self.inner.session_cookie
    }

    /// The realm in challenges, if any.
    pub fn challenge_realm(&self) -> Option<&str> {
        self.inner.realm.as_deref()
    }

    pub(crate) fn key_set_cache_control(&self) -> String {
        format!("public, max-age={}", self.inner.key_set_max_age.as_secs())
    }

    /// The JWKS to publish: the service's keys in force, or the verifier's.
    pub(crate) fn jwks_json(&self) -> Arc<str> {
        match &self.inner.tokens {
            Tokens::Service(s) => s
                .key_set_documents()
                .jwks
                .clone()
                .unwrap_or_else(|| self.inner.jwks.clone()),
            Tokens::Verifier(_) => self.inner.jwks.clone(),
        }
    }

    /// The PASERK key set to publish: the service's keys in force, or the verifier's.
    pub(crate) fn paseto_keys_json(&self) -> Arc<str> {
        match &self.inner.tokens {
            Tokens::Service(s) => s
                .key_set_documents()
                .paseto
                .clone()
                .unwrap_or_else(|| self.inner.paseto_keys.clone()),
            Tokens::Verifier(_) => self.inner.paseto_keys.clone(),
        }
    }

    fn is_api_key(&self, raw: &str) -> bool {
        let by = |prefixes: &token_opaque::Prefixes| {
            [OpaqueKind::ApiKeyLive, OpaqueKind::ApiKeyTest]
                .into_iter()
                .filter_map(|k| prefixes.get(k))
                .any(|p| raw.starts_with(p))
        };
        match self.service().map(|s| s.opaque()) {
            Some(Ok(opaque)) => by(&opaque.config().prefixes),
            // Built only when no store says otherwise (it allocates).
            _ => by(&token_opaque::Prefixes::default()),
        }
    }

    /// Verifies an access token.
    ///
    /// # Errors
    /// [`Error::InvalidToken`] with the reason; [`Error::Unavailable`] when the
    /// revocation list cannot be read.
    pub async fn verify_access(&self, token: &str) -> Result<Access<JsonObject>> {
        self.verify_access_with_fingerprint(token, None).await
    }

    /// Verifies an access token with the fingerprint cookie's value, when the request
    /// carried one.
    ///
    /// # Errors
    /// As [`AuthState::verify_access`]; `fingerprint cookie missing or not the token's`.
    pub async fn verify_access_with_fingerprint(
        &self,
        token: &str,
        fingerprint: Option<&str>,
    ) -> Result<Access<JsonObject>> {
        let verified = self
            .resource_verifier()
            .verify_access_with_fingerprint::<JsonObject>(token, fingerprint)
            .await?;
        let claims = verified.into_claims();
        let scopes = scopes_of(&claims.custom.session);
        Ok(Access::new(claims, scopes))
    }

    /// Verifies an API key.
    ///
    /// # Errors
    /// [`Error::InvalidToken`] with the reason; [`Error::Unavailable`].
    pub async fn verify_api_key(&self, key: &str) -> Result<VerifiedApiKey> {
        Ok(VerifiedApiKey(
            self.issuing_side(Job::ApiKey)?.verify_api_key(key).await?,
        ))
    }

    /// Loads the session a session id names.
    ///
    /// # Errors
    /// [`Error::InvalidToken`] with the reason; [`Error::Unavailable`].
    pub async fn load_session(&self, session_id: &str) -> Result<VerifiedSession> {
        Ok(VerifiedSession(
            self.issuing_side(Job::Session)?
                .load_session(session_id)
                .await?,
        ))
    }

    /// Authenticates a request with the first credential it carries among those
    /// `accept`ed. `Authorization: Bearer` (an access token, or an API key by its
    /// prefix) and the API-key header are looked at always, so a credential of a kind
    /// the route does not take is refused as `wrong token type` rather than ignored;
    /// the session cookie only when sessions are accepted (browsers send cookies on
    /// their own).
    ///
    /// # Errors
    /// [`Error::MissingCredentials`], [`Error::InvalidRequest`], [`Error::InvalidToken`],
    /// [`Error::Unavailable`].
    pub async fn authenticate(&self, parts: &Parts, accept: &[Credential]) -> Result<Principal> {
        if let Some(token) = dpop_token(parts)? {
            if self.api_key_in_header(parts)?.is_some() {
                return Err(Error::InvalidRequest("more than one credential"));
            }
            // API keys are bearer credentials; only access tokens are bound.
            if self.is_api_key(token) || !accept.contains(&Credential::AccessToken) {
                return Err(Error::InvalidToken(token_core::Reason::WrongTokenType));
            }
            #[cfg(feature = "jwt")]
            return self
                .verify_access_dpop(token, parts)
                .await
                .map(Principal::AccessToken);
            #[cfg(not(feature = "jwt"))]
            return Err(Error::InvalidRequest(
                "the DPoP scheme is not accepted here",
            ));
        }
        let bearer = bearer_token(parts)?;
        let header_key = self.api_key_in_header(parts)?;
        let presented = match (bearer, header_key) {
            (Some(_), Some(_)) => {
                return Err(Error::InvalidRequest("more than one credential"));
            }
            (Some(token), None) if self.is_api_key(token) => Some((Credential::ApiKey, token)),
            (Some(token), None) => Some((Credential::AccessToken, token)),
            (None, Some(key)) => Some((Credential::ApiKey, key)),
            (None, None) => None,
        };
        if let Some((kind, token)) = presented {
            if !accept.contains(&kind) {
                return Err(Error::InvalidToken(token_core::Reason::WrongTokenType));
            }
            if kind == Credential::ApiKey {
                return self.verify_api_key(token).await.map(Principal::ApiKey);
            }
            let fingerprint = self.fingerprint_in_cookie(parts)?;
            return self
                .verify_access_with_fingerprint(token, fingerprint)
                .await
                .map(Principal::AccessToken);
        }
        if accept.contains(&Credential::Session) {
            if let Some(id) = self.session_in_cookie(parts)? {
                return self.load_session(id).await.map(Principal::Session);
            }
        }
        Err(Error::MissingCredentials)
    }

    /// The session named by the session cookie (and nothing else: not
    /// `Authorization`).
    ///
    /// # Errors
    /// [`Error::MissingCredentials`] without the cookie; as
    /// [`AuthState::load_session`].
    pub async fn session_from_cookie(&self, parts: &Parts) -> Result<VerifiedSession> {
        match self.session_in_cookie(parts)? {
            Some(id) => self.load_session(id).await,
            None => Err(Error::MissingCredentials),
        }
    }

    fn api_key_in_header<'a>(&self, parts: &'a Parts) -> Result<Option<&'a str>> {
        let Some(name) = &self.inner.api_key_header else {
            return Ok(None);
        };
        let mut values = parts.headers.get_all(name).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return if parts.headers.contains_key(name) {
                Err(Error::InvalidRequest("more than one API key header"))
            } else {
                Ok(None)
            };
        };
        let key = value
            .to_str()
            .map_err(|_| Error::InvalidRequest("API key header is not visible ASCII"))?
            .trim();
        if key.is_empty() {
            return Err(Error::InvalidRequest("empty API key header"));
        }
        if !is_token68(key) {
            return Err(Error::InvalidToken(token_core::Reason::MalformedToken));
        }
        Ok(Some(key))
    }

    /// The fingerprint cookie's value, when one is configured and sent.
    fn fingerprint_in_cookie<'a>(&self, parts: &'a Parts) -> Result<Option<&'a str>> {
        let Some(cookie) = &self.inner.fingerprint_cookie else {
            return Ok(None);
        };
        Ok(
            one_cookie(cookie, parts, "more than one fingerprint cookie")?
                .filter(|v| !v.is_empty()),
        )
    }

    pub(crate) fn session_in_cookie<'a>(&self, parts: &'a Parts) -> Result<Option<&'a str>> {
        match one_cookie(
            &self.inner.session_cookie,
            parts,
            "more than one session cookie",
        )? {
            Some("") => Ok(None),
            Some(id) if !is_token68(id) => {
                Err(Error::InvalidToken(token_core::Reason::MalformedToken))
            }
            other => Ok(other),
        }
    }
}

/// The value of `cookie` in the request's `Cookie` headers; sent twice (another one
/// planted by a sibling domain, say) is [`Error::InvalidRequest`] with `duplicate`.
fn one_cookie<'a>(
    cookie: &SessionCookie,
    parts: &'a Parts,
    duplicate: &'static str,
) -> Result<Option<&'a str>> {
    let mut found = None;
    for value in parts.headers.get_all(header::COOKIE) {
        let Ok(text) = value.to_str() else {
            continue;
        };
        if let Some(v) = cookie.read(text) {
            if found.is_some() {
                return Err(Error::InvalidRequest(duplicate));
            }
            found = Some(v);
        }
    }
    Ok(found)
}

/// RFC 6750 `b64token` characters, bounded by the longest token this project accepts.
fn is_token68(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty()
        && s.len() <= MAX_TOKEN_LEN
        && body.bytes().fold(true, |ok, b| ok & is_token68_byte(b))
}

/// A `b64token` character other than `=`. Every request's credential is scanned with
/// it: branch-free (no short circuit), so the scan vectorises.
#[expect(
    clippy::needless_bitwise_bool,
    reason = "non-short-circuiting on purpose: branch-free, so the caller's loop vectorises"
)]
fn is_token68_byte(b: u8) -> bool {
    let digit = b.wrapping_sub(b'0') < 10;
    // Setting bit 5 maps `A`..=`Z` onto `a`..=`z` and no other byte into that range.
    let letter = (b | 0x20).wrapping_sub(b'a') < 26;
    digit
        | letter
        | (b == b'-')
        | (b == b'.')
        | (b == b'_')
        | (b == b'~')
        | (b == b'+')
        | (b == b'/')
}

/// The bearer token of `Authorization: Bearer <token>` (scheme case-insensitive);
/// `None` without an `Authorization` header or with another scheme.
///
/// # Errors
/// [`Error::InvalidRequest`] for several `Authorization` headers, an unreadable value
/// or an empty token; [`Error::InvalidToken`] (`malformed`) for characters outside
/// RFC 6750's `b64token`.
pub fn bearer_token(parts: &Parts) -> Result<Option<&str>> {
    scheme_token(parts, "bearer")
}

/// The token of `Authorization: DPoP <token>` (scheme case-insensitive); `None`
/// without an `Authorization` header or with another scheme.
///
/// # Errors
/// As [`bearer_token`].
pub fn dpop_token(parts: &Parts) -> Result<Option<&str>> {
    scheme_token(parts, "dpop")
}

/// Whether the request's `Authorization` header uses the `DPoP` scheme.
pub fn uses_dpop_scheme(parts: &Parts) -> bool {
    matches!(dpop_token(parts), Ok(Some(_)))
}

fn scheme_token<'a>(parts: &'a Parts, wanted: &str) -> Result<Option<&'a str>> {
    let mut values = parts.headers.get_all(header::AUTHORIZATION).iter();
    let value = match (values.next(), values.next()) {
        (None, _) => return Ok(None),
        (Some(_), Some(_)) => {
            return Err(Error::InvalidRequest("more than one Authorization header"));
        }
        (Some(v), None) => v,
    };
    let text = value
        .to_str()
        .map_err(|_| Error::InvalidRequest("Authorization header is not visible ASCII"))?;
    let (scheme, rest) = text.split_once(' ').unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case(wanted) {
        return Ok(None);
    }
    let token = rest.trim_matches(' ');
    if token.is_empty() {
        return Err(Error::InvalidRequest(if wanted == "dpop" {
            "empty DPoP token"
        } else {
            "empty bearer token"
        }));
    }
    if !is_token68(token) {
        return Err(Error::InvalidToken(token_core::Reason::MalformedToken));
    }
    Ok(Some(token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    #[cfg(feature = "jwt")]
    #[test]
    fn the_empty_jwks_is_the_one_token_jwt_writes() {
        assert_eq!(EMPTY_JWKS, token_jwt::Jwks::new().to_json());
    }

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut b = Request::builder();
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token(&parts(&[])), Ok(None));
        assert_eq!(
            bearer_token(&parts(&[("authorization", "Bearer abc.def")])),
            Ok(Some("abc.def"))
        );
        assert_eq!(
            bearer_token(&parts(&[("authorization", "bearer  abc")])),
            Ok(Some("abc"))
        );
        assert_eq!(
            bearer_token(&parts(&[("authorization", "Basic abc")])),
            Ok(None)
        );
        assert_eq!(
            bearer_token(&parts(&[("authorization", "Bearer")])),
            Err(Error::InvalidRequest("empty bearer token"))
        );
        assert_eq!(
            bearer_token(&parts(&[("authorization", "Bearer a b")])),
            Err(Error::InvalidToken(token_core::Reason::MalformedToken))
        );
        assert!(matches!(
            bearer_token(&parts(&[
                ("authorization", "Bearer a"),
                ("authorization", "Bearer b")
            ])),
            Err(Error::InvalidRequest(_))
        ));
        // Every b64token character, and each byte outside them, alone.
        let allowed = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/";
        let header = format!("Bearer {allowed}==");
        assert_eq!(
            bearer_token(&parts(&[("authorization", header.as_str())])),
            Ok(Some(&header["Bearer ".len()..]))
        );
        for b in (0x21..=0x7eu8).filter(|b| !allowed.as_bytes().contains(b) && *b != b'=') {
            let header = format!("Bearer a{}b", char::from(b));
            assert_eq!(
                bearer_token(&parts(&[("authorization", header.as_str())])),
                Err(Error::InvalidToken(token_core::Reason::MalformedToken)),
                "{header}"
            );
        }
        assert_eq!(
            bearer_token(&parts(&[("authorization", "Bearer =")])),
            Err(Error::InvalidToken(token_core::Reason::MalformedToken))
        );
        let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN + 1));
        assert_eq!(
            bearer_token(&parts(&[("authorization", long.as_str())])),
            Err(Error::InvalidToken(token_core::Reason::MalformedToken))
        );
    }
}
