//! Service-to-service tokens: JWT ES256, short-lived, one explicit `aud` per target.
//!
//! Each service signs with its own key and publishes the public half as a JWKS; each
//! verifies only tokens whose `aud` is its own name, from the peers whose keys it was
//! given, each peer's keys under that peer's name: a key verifies only tokens whose
//! `iss` is the service it belongs to, so a compromised peer cannot speak as another.
//! Nothing is fetched from a URL named in a token.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use token_core::{Claims, Clock, RegisteredClaim, TokenFormat, Validation, Verified};
use token_jwt::{Algorithm, Jwks, JwtVerifier, SigningKeySet, VerifyingKey};

/// The services this one accepts tokens from, each with its own keys.
///
/// A key id may belong to one peer only, so the key a token names identifies exactly
/// one service, and that service's name must be the token's `iss`.
#[derive(Debug, Default)]
pub struct ServicePeers {
    peers: BTreeMap<String, JwtVerifier<VerifyingKey>>,
}

impl ServicePeers {
    /// No peer yet: every service token is refused.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts service `name` to sign with `keys` (tokens it signs must carry
    /// `iss = name`).
    ///
    /// # Errors
    /// [`Error::InvalidPolicy`] for an empty name, a name given twice, or a key id
    /// another peer already holds.
    pub fn trust(
        mut self,
        name: impl Into<String>,
        keys: JwtVerifier<VerifyingKey>,
    ) -> Result<Self> {
        let name = name.into();
        if name.is_empty() {
            return Err(Error::InvalidPolicy("a peer service needs a name".into()));
        }
        if self.peers.contains_key(&name) {
            return Err(Error::InvalidPolicy(format!(
                "peer service {name:?} is given twice"
            )));
        }
        for (kid, _, _) in keys.keys().iter() {
            if let Some(owner) = self.owner_of(kid.as_str()) {
                return Err(Error::InvalidPolicy(format!(
                    "key {kid} is given for both {owner:?} and {name:?}; a key belongs to one service"
                )));
            }
        }
        self.peers.insert(name, keys);
        Ok(self)
    }

    /// The names of the trusted services.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.peers.keys().map(String::as_str)
    }

    fn owner_of(&self, kid: &str) -> Option<&str> {
        self.peers
            .iter()
            .find(|(_, keys)| keys.keys().status(kid).is_some())
            .map(|(name, _)| name.as_str())
    }

    /// The peer whose key `kid` names, and its verifier. Without a `kid`, the one
    /// peer holding a single key, if there is exactly one such peer and no other.
    fn route(&self, kid: Option<&str>) -> Result<(&str, &JwtVerifier<VerifyingKey>)> {
        let found = match kid {
            Some(kid) => self
                .peers
                .iter()
                .find(|(_, keys)| keys.keys().status(kid).is_some()),
            None => match self.peers.iter().next() {
                Some(only) if self.peers.len() == 1 && only.1.keys().len() == 1 => Some(only),
                _ => None,
            },
        };
        found
            .map(|(name, keys)| (name.as_str(), keys))
            .ok_or(Error::Core(token_core::Error::UnknownKeyId))
    }
}

use crate::error::{Error, Result};
use crate::policy::Job;

/// This service's signing keys and the keys of the peers it accepts tokens from.
#[derive(Debug)]
pub struct ServiceAuth {
    name: String,
    signer: SigningKeySet,
    peers: std::sync::Arc<ServicePeers>,
}

impl ServiceAuth {
    /// Service `name` signing with `signer` (ES256 keys only) and accepting tokens
    /// signed by `peers`, each peer under its own name.
    ///
    /// # Errors
    /// [`Error::KeyNotAllowed`] for a non-ES256 signing key; [`Error::InvalidPolicy`]
    /// for an empty name.
    pub fn new(
        name: impl Into<String>,
        signer: SigningKeySet,
        peers: ServicePeers,
    ) -> Result<Self> {
        let name = name.into();
        if name.is_empty() {
            return Err(Error::InvalidPolicy("a service needs a name".into()));
        }
        if signer.algorithm() != Algorithm::Es256 {
            return Err(Error::KeyNotAllowed {
                job: Job::ServiceToService,
                reason: "service tokens are ES256",
            });
        }
        Ok(Self {
            name,
            signer,
            peers: std::sync::Arc::new(peers),
        })
    }

    /// The same service and peers, signing with `signer` (keys installed from a key
    /// table).
    ///
    /// # Errors
    /// [`Error::KeyNotAllowed`] for a non-ES256 signing key.
    pub fn with_signer(&self, signer: SigningKeySet) -> Result<Self> {
        if signer.algorithm() != Algorithm::Es256 {
            return Err(Error::KeyNotAllowed {
                job: Job::ServiceToService,
                reason: "service tokens are ES256",
            });
        }
        Ok(Self {
            name: self.name.clone(),
            signer,
            peers: self.peers.clone(),
        })
    }

    /// This service's name: the `iss` of its tokens and the `aud` it accepts.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The public keys to publish (`/.well-known/jwks.json`).
    pub fn jwks(&self) -> Jwks {
        self.signer.verifier().to_jwks()
    }

    /// Ids of this service's signing keys.
    pub fn key_ids(&self) -> Vec<String> {
        self.signer
            .keys()
            .iter()
            .map(|(id, _, _)| id.to_string())
            .collect()
    }

    /// A token for calling `target`: `iss` = `sub` = this service, `aud` = `target`.
    ///
    /// # Errors
    /// [`Error::InvalidPolicy`] for an empty or own target; signing errors.
    pub fn issue(&self, target: &str, ttl: Duration, clock: &dyn Clock) -> Result<SecretString> {
        if target.is_empty() {
            return Err(Error::InvalidPolicy(
                "a service token needs a target audience".into(),
            ));
        }
        let claims = Claims::new(())
            .issuer(self.name.as_str())
            .subject(self.name.as_str())
            .audience(target)
            .random_token_id()?
            .valid_for(clock, ttl)?;
        Ok(self.signer.sign(&claims)?)
    }

    /// The services this one accepts tokens from.
    pub fn peers(&self) -> &ServicePeers {
        &self.peers
    }

    /// Verifies a token addressed to this service by a trusted peer: the key its
    /// `kid` names selects the peer, and the token's `iss` must be that peer's name.
    ///
    /// # Errors
    /// [`Error::WrongTokenType`] for a non-JWS; JWT errors (unknown `kid`, algorithm
    /// not allowed, bad signature); claim errors (an `iss` other than the signing key's
    /// service, wrong audience, expired, too long).
    pub fn verify(
        &self,
        token: &str,
        max_ttl: Duration,
        clock: Arc<dyn Clock>,
    ) -> Result<Verified<()>> {
        let format = TokenFormat::detect(token)?;
        if format != TokenFormat::Jws {
            return Err(Error::WrongTokenType {
                job: Job::ServiceToService,
                found: format,
            });
        }
        let header = token_jwt::dangerous_decode_header(token)?;
        let (peer, keys) = self
            .peers
            .route(header.kid().map(token_core::KeyId::as_str))?;
        let validation = Validation::new()
            .issuer(peer)
            .audience(self.name.as_str())
            .max_lifetime(max_ttl)
            .require(RegisteredClaim::Iss)
            .require(RegisteredClaim::Jti)
            .shared_clock(clock);
        Ok(keys.verify::<()>(token, &validation)?)
    }
}
