//! Service-to-service tokens: JWT ES256, short-lived, one explicit `aud` per target.
//!
//! Each service signs with its own key and publishes the public half as a JWKS; each
//! verifies only tokens whose `aud` is its own name, from the peers whose keys it was
//! given. Nothing is fetched from a URL named in a token.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use token_core::{
    Claims, Clock, RegisteredClaim, TokenFormat, TokenSigner, TokenVerifier, Validation, Verified,
};
use token_jwt::{Algorithm, Jwks, JwtVerifier, SigningKeySet, VerifyingKey};

use crate::error::{Error, Result};
use crate::policy::Job;

/// This service's signing keys and the keys of the peers it accepts tokens from.
#[derive(Debug)]
pub struct ServiceAuth {
    name: String,
    signer: SigningKeySet,
    peers: JwtVerifier<VerifyingKey>,
}

impl ServiceAuth {
    /// Service `name` signing with `signer` (ES256 keys only) and accepting tokens
    /// signed by `peers`.
    ///
    /// # Errors
    /// [`Error::KeyNotAllowed`] for a non-ES256 signing key; [`Error::InvalidPolicy`]
    /// for an empty name.
    pub fn new(
        name: impl Into<String>,
        signer: SigningKeySet,
        peers: JwtVerifier<VerifyingKey>,
    ) -> Result<Self> {
        let name = name.into();
        if name.is_empty() {
            return Err(Error::InvalidPolicy("a service needs a name".into()));
        }
        if signer.current().algorithm() != Algorithm::Es256 {
            return Err(Error::KeyNotAllowed {
                job: Job::ServiceToService,
                reason: "service tokens are ES256",
            });
        }
        Ok(Self {
            name,
            signer,
            peers,
        })
    }

    /// This service's name: the `iss` of its tokens and the `aud` it accepts.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The public keys to publish (`/.well-known/jwks.json`).
    pub fn jwks(&self) -> Jwks {
        use token_core::AsymmetricSigner;
        self.signer.verifier().to_jwks()
    }

    /// Ids of this service's signing keys.
    pub fn key_ids(&self) -> Vec<String> {
        self.signer
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

    /// Verifies a token addressed to this service by a trusted peer.
    ///
    /// # Errors
    /// [`Error::WrongTokenType`] for a non-JWS; JWT errors (unknown `kid`, algorithm
    /// not allowed, bad signature); claim errors (wrong audience, expired, too long).
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
        let validation = Validation::new()
            .audience(self.name.as_str())
            .max_lifetime(max_ttl)
            .require(RegisteredClaim::Iss)
            .require(RegisteredClaim::Jti)
            .shared_clock(clock);
        Ok(self.peers.verify::<()>(token, &validation)?)
    }
}
