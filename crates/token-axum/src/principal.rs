//! Who a request is from: an access token's claims, an API key, or a server-side
//! session. These are the extractors' types; [`crate::AuthLayer`] puts a
//! [`Principal`] into the request extensions.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;
use token_core::{Claims, Timestamp};
use token_opaque::ApiKeyInfo;
use token_policy::{AccessClaims, JsonObject};

use crate::error::{Error, Result};

/// A verified access token: its registered claims, its session (refresh family) id and
/// the application's claims `C`.
///
/// As an extractor, `Access<C>` reads `Authorization: Bearer …`, verifies the token
/// with the [`token_policy::TokenService`] (format, signature, claims, revocation) and
/// deserializes the application's claims into `C`. On a route behind
/// [`crate::AuthLayer`], it reuses the layer's verification.
#[derive(Debug, Clone, PartialEq)]
pub struct Access<C> {
    claims: Claims<AccessClaims<C>>,
    scopes: Arc<[String]>,
}

impl<C> Access<C> {
    pub(crate) fn new(claims: Claims<AccessClaims<C>>, scopes: Arc<[String]>) -> Self {
        Self { claims, scopes }
    }

    /// The user (`sub`; always present: the policy requires it).
    pub fn subject(&self) -> &str {
        self.claims.sub.as_deref().unwrap_or_default()
    }

    /// The login session (refresh family) the token belongs to.
    pub fn session_id(&self) -> &str {
        &self.claims.custom.sid
    }

    /// The token id (`jti`; always present: the policy requires it).
    pub fn token_id(&self) -> &str {
        self.claims.jti.as_deref().unwrap_or_default()
    }

    /// When the token expires.
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.claims.exp
    }

    /// The application's claims.
    pub fn claims(&self) -> &C {
        &self.claims.custom.session
    }

    /// Every claim, registered ones included.
    pub fn all_claims(&self) -> &Claims<AccessClaims<C>> {
        &self.claims
    }

    /// The application's claims, by value.
    pub fn into_claims(self) -> C {
        self.claims.custom.session
    }

    /// The scopes the token grants: its `scope` claim (space-separated, RFC 8693
    /// section 4.2) or a `scope`/`scp` array.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// Whether the token grants `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// `Ok` if the token grants `scope`, else [`Error::InsufficientScope`] (`403`).
    pub fn require_scope(&self, scope: &str) -> Result<()> {
        require(self.has_scope(scope), scope)
    }
}

impl Access<JsonObject> {
    /// The same token with its application claims read as `C`.
    ///
    /// # Errors
    /// [`Error::InvalidToken`] (`invalid claims`) when they do not fit `C`.
    pub fn typed<C: DeserializeOwned>(&self) -> Result<Access<C>> {
        let session = serde_json::from_value(Value::Object(self.claims.custom.session.clone()))
            .map_err(|_| Error::InvalidToken(token_core::Reason::InvalidClaims))?;
        let c = &self.claims;
        Ok(Access {
            claims: Claims {
                iss: c.iss.clone(),
                sub: c.sub.clone(),
                aud: c.aud.clone(),
                exp: c.exp,
                nbf: c.nbf,
                iat: c.iat,
                jti: c.jti.clone(),
                custom: AccessClaims {
                    sid: c.custom.sid.clone(),
                    cnf: c.custom.cnf.clone(),
                    session,
                },
            },
            scopes: self.scopes.clone(),
        })
    }
}

/// The scopes in a claims object: `scope` as a space-separated string (RFC 8693) or an
/// array of strings, or `scp` as an array.
pub(crate) fn scopes_of(claims: &JsonObject) -> Arc<[String]> {
    let mut out = Vec::new();
    for name in ["scope", "scp"] {
        match claims.get(name) {
            Some(Value::String(s)) => {
                out.extend(s.split(' ').filter(|s| !s.is_empty()).map(str::to_owned));
            }
            Some(Value::Array(items)) => out.extend(
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
            ),
            _ => {}
        }
    }
    out.into()
}

fn require(granted: bool, scope: &str) -> Result<()> {
    if granted {
        Ok(())
    } else {
        Err(Error::InsufficientScope(scope.to_owned()))
    }
}

/// A verified API key (`Authorization: Bearer sk_…`, or the header configured with
/// [`crate::AuthState::api_key_header`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedApiKey(pub ApiKeyInfo);

impl VerifiedApiKey {
    /// The account the key belongs to.
    pub fn owner(&self) -> &str {
        &self.0.owner_id
    }

    /// The key's metadata.
    pub fn info(&self) -> &ApiKeyInfo {
        &self.0
    }

    /// The scopes the key grants.
    pub fn scopes(&self) -> &[String] {
        &self.0.scopes
    }

    /// `Ok` if the key grants `scope`, else [`Error::InsufficientScope`] (`403`).
    pub fn require_scope(&self, scope: &str) -> Result<()> {
        require(self.0.has_scope(scope), scope)
    }
}

/// A server-side session, from the `__Host-` session cookie.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedSession(pub token_opaque::Session);

impl VerifiedSession {
    /// The user.
    pub fn user(&self) -> &str {
        &self.0.user_id
    }

    /// The session's data.
    pub fn data(&self) -> &Value {
        &self.0.data
    }

    /// The scopes in the session data's `scope` member (as for access tokens).
    pub fn scopes(&self) -> Arc<[String]> {
        match &self.0.data {
            Value::Object(map) => scopes_of(map),
            _ => Arc::from(Vec::new()),
        }
    }
}

/// Whichever credential authenticated the request.
///
/// As an extractor it accepts an access token or an API key (not a session cookie,
/// which browsers send on their own: opt into sessions with [`crate::AuthLayer`]).
/// Behind [`crate::AuthLayer`], it is what the layer accepted.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Principal {
    /// A verified access token.
    AccessToken(Access<JsonObject>),
    /// A verified API key.
    ApiKey(VerifiedApiKey),
    /// A live server-side session.
    Session(VerifiedSession),
}

impl Principal {
    /// The user or account: the token's `sub`, the key's owner or the session's user.
    pub fn subject(&self) -> &str {
        match self {
            Self::AccessToken(a) => a.subject(),
            Self::ApiKey(k) => k.owner(),
            Self::Session(s) => s.user(),
        }
    }

    /// Which kind of credential it was.
    pub fn credential(&self) -> crate::Credential {
        match self {
            Self::AccessToken(_) => crate::Credential::AccessToken,
            Self::ApiKey(_) => crate::Credential::ApiKey,
            Self::Session(_) => crate::Credential::Session,
        }
    }

    /// The scopes granted.
    pub fn scopes(&self) -> Arc<[String]> {
        match self {
            Self::AccessToken(a) => a.scopes.clone(),
            Self::ApiKey(k) => k.0.scopes.clone().into(),
            Self::Session(s) => s.scopes(),
        }
    }

    /// Whether `scope` is granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        match self {
            Self::AccessToken(a) => a.has_scope(scope),
            Self::ApiKey(k) => k.0.has_scope(scope),
            Self::Session(s) => s.scopes().iter().any(|s| s == scope),
        }
    }

    /// `Ok` if `scope` is granted, else [`Error::InsufficientScope`] (`403`).
    pub fn require_scope(&self, scope: &str) -> Result<()> {
        require(self.has_scope(scope), scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_from_string_or_array() {
        let claims: JsonObject =
            serde_json::from_str(r#"{"scope":"read  write","scp":["admin",""]}"#)
                .unwrap_or_default();
        assert_eq!(&*scopes_of(&claims), ["read", "write", "admin"]);
        let none: JsonObject = serde_json::from_str(r#"{"scope":7}"#).unwrap_or_default();
        assert!(scopes_of(&none).is_empty());
    }
}
