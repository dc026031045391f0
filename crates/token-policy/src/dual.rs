//! Migration between formats: one verifier that accepts both JWT and PASETO during a
//! rollout, by an explicit allow-list that fails closed.
//!
//! The PASETO specification advises libraries not to route between versions by
//! default; routing lives here, separate from the format crates, and admits only what
//! the allow-list names: (format, version, purpose, algorithms, key set). Everything
//! else is refused with [`Error::NotAllowed`]. Both routes apply the same
//! [`Validation`]. JWT can be cut off at a date, and [`DualVerifier::counts`] tells
//! operators when JWT traffic has drained.
//!
//! Legacy HMAC JWTs (HS256/384/512, a shared secret that lets every verifier forge
//! tokens) are admitted only through
//! [`DualVerifier::dangerous_allow_legacy_hmac_jwt`]: a JWT route like the other,
//! counted and cut off with it, whose keys pin their own algorithms.
//!
//! The JWT routes exist with the `jwt` feature; without it, the allow-list admits
//! PASETO only and refuses every JWT as off the list.

#[cfg(feature = "jwt")]
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;
#[cfg(feature = "jwt")]
use token_core::{Clock, SystemClock, Timestamp};
use token_core::{PasetoPurpose, PasetoVersion, TokenFormat, Validation, Verified};
#[cfg(feature = "jwt")]
use token_jwt::{Algorithm, HmacAlgorithm, HmacKey, JwtVerifier, VerifyingKey};
use token_paseto::{PublicVerifier, V3, V4};

use crate::error::{Error, Result};

#[cfg(feature = "jwt")]
struct JwtRoute {
    verifier: JwtVerifier<VerifyingKey>,
    algorithms: Vec<Algorithm>,
}

#[cfg(feature = "jwt")]
struct HmacRoute {
    verifier: JwtVerifier<HmacKey>,
    algorithms: Vec<HmacAlgorithm>,
}

/// Tokens seen per route since the verifier was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// PASETO tokens routed to a PASETO verifier.
    pub paseto: u64,
    /// JWTs routed to a JWT verifier (the legacy HMAC one included).
    pub jwt: u64,
    /// Of those, JWTs routed to the legacy HMAC verifier: when this stops growing, the
    /// shared secret can be retired.
    pub legacy_hmac: u64,
    /// Tokens the allow-list refused (including JWTs after the cut-off).
    pub refused: u64,
}

/// Accepts exactly the token kinds on its allow-list.
pub struct DualVerifier {
    v4: Option<PublicVerifier<V4>>,
    v3: Option<PublicVerifier<V3>>,
    #[cfg(feature = "jwt")]
    jwt: Option<JwtRoute>,
    #[cfg(feature = "jwt")]
    legacy_hmac: Option<HmacRoute>,
    /// The JWT cut-off: kept apart from the route, so it holds whatever the order in
    /// which the builder was called.
    #[cfg(feature = "jwt")]
    jwt_until: Option<Timestamp>,
    #[cfg(feature = "jwt")]
    clock: Arc<dyn Clock>,
    paseto_seen: AtomicU64,
    jwt_seen: AtomicU64,
    hmac_seen: AtomicU64,
    refused: AtomicU64,
}

impl std::fmt::Debug for DualVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("DualVerifier");
        d.field("v4_public", &self.v4.is_some())
            .field("v3_public", &self.v3.is_some());
        #[cfg(feature = "jwt")]
        d.field("jwt_algorithms", &self.jwt.as_ref().map(|j| &j.algorithms))
            .field(
                "legacy_hmac_algorithms",
                &self.legacy_hmac.as_ref().map(|j| &j.algorithms),
            )
            .field("jwt_until", &self.jwt_until);
        d.field("counts", &self.counts()).finish_non_exhaustive()
    }
}

impl Default for DualVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl DualVerifier {
    /// An empty allow-list: every token is refused until a route is added.
    pub fn new() -> Self {
        Self {
            v4: None,
            v3: None,
            #[cfg(feature = "jwt")]
            jwt: None,
            #[cfg(feature = "jwt")]
            legacy_hmac: None,
            #[cfg(feature = "jwt")]
            jwt_until: None,
            #[cfg(feature = "jwt")]
            clock: Arc::new(SystemClock),
            paseto_seen: AtomicU64::new(0),
            jwt_seen: AtomicU64::new(0),
            hmac_seen: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// Admits `v4.public` tokens verified by `verifier`'s keys.
    #[must_use]
    pub fn allow_paseto_v4_public(mut self, verifier: PublicVerifier<V4>) -> Self {
        self.v4 = Some(verifier);
        self
    }

    /// Admits `v3.public` tokens verified by `verifier`'s keys.
    #[must_use]
    pub fn allow_paseto_v3_public(mut self, verifier: PublicVerifier<V3>) -> Self {
        self.v3 = Some(verifier);
        self
    }

    /// Admits JWS tokens whose header `alg` is one of `algorithms`, verified by
    /// `verifier`'s keys (each key also pins its own algorithm).
    #[cfg(feature = "jwt")]
    #[must_use]
    pub fn allow_jwt(
        mut self,
        verifier: JwtVerifier<VerifyingKey>,
        algorithms: &[Algorithm],
    ) -> Self {
        self.jwt = Some(JwtRoute {
            verifier,
            algorithms: algorithms.to_vec(),
        });
        self
    }

    /// Admits legacy HMAC JWTs (HS256/384/512) whose header `alg` is one of
    /// `algorithms`, verified by `verifier`'s shared secrets (each key pins its own
    /// algorithm), alongside the other routes, during a migration away from them.
    ///
    /// Dangerous: an HMAC secret is shared, so every holder of it (this service
    /// included) can mint tokens this route accepts. The route is counted
    /// ([`Counts::legacy_hmac`]) and cut off with every other JWT route
    /// ([`DualVerifier::stop_accepting_jwt_after`]); set the cut-off.
    #[cfg(feature = "jwt")]
    #[must_use]
    pub fn dangerous_allow_legacy_hmac_jwt(
        mut self,
        verifier: JwtVerifier<HmacKey>,
        algorithms: &[HmacAlgorithm],
    ) -> Self {
        self.legacy_hmac = Some(HmacRoute {
            verifier,
            algorithms: algorithms.to_vec(),
        });
        self
    }

    /// Refuses JWTs from `t` on ([`Error::JwtRetired`]), whatever their expiry and
    /// whether called before or after the JWT routes are added; the legacy HMAC route
    /// included.
    #[cfg(feature = "jwt")]
    #[must_use]
    pub fn stop_accepting_jwt_after(mut self, t: Timestamp) -> Self {
        self.jwt_until = Some(t);
        self
    }

    /// Reads "now" (for the JWT cut-off) from `clock`.
    #[cfg(feature = "jwt")]
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Tokens seen per route so far.
    pub fn counts(&self) -> Counts {
        Counts {
            paseto: self.paseto_seen.load(Ordering::Relaxed),
            jwt: self.jwt_seen.load(Ordering::Relaxed),
            legacy_hmac: self.hmac_seen.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }

    fn refuse(&self, why: String) -> Error {
        self.refused.fetch_add(1, Ordering::Relaxed);
        Error::NotAllowed(why)
    }

    /// Routes `token` by its shape to the verifier the allow-list names, then applies
    /// `validation`.
    ///
    /// # Errors
    /// [`Error::NotAllowed`] for anything off the list; [`Error::JwtRetired`] after the
    /// cut-off; the format crates' errors; claim errors.
    pub fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        validation: &Validation,
    ) -> Result<Verified<T>> {
        let format = TokenFormat::detect(token).map_err(|e| {
            self.refused.fetch_add(1, Ordering::Relaxed);
            Error::from(e)
        })?;
        match format {
            TokenFormat::Paseto {
                version: PasetoVersion::V4,
                purpose: PasetoPurpose::Public,
                ..
            } if self.v4.is_some() => {
                self.paseto_seen.fetch_add(1, Ordering::Relaxed);
                match &self.v4 {
                    Some(v) => Ok(v.verify(token, validation)?),
                    None => Err(self.refuse(format.to_string())),
                }
            }
            TokenFormat::Paseto {
                version: PasetoVersion::V3,
                purpose: PasetoPurpose::Public,
                ..
            } if self.v3.is_some() => {
                self.paseto_seen.fetch_add(1, Ordering::Relaxed);
                match &self.v3 {
                    Some(v) => Ok(v.verify(token, validation)?),
                    None => Err(self.refuse(format.to_string())),
                }
            }
            #[cfg(feature = "jwt")]
            TokenFormat::Jws => {
                if self.jwt.is_none() && self.legacy_hmac.is_none() {
                    return Err(self.refuse(format.to_string()));
                }
                if self
                    .jwt_until
                    .is_some_and(|until| self.clock.now() >= until)
                {
                    self.refused.fetch_add(1, Ordering::Relaxed);
                    return Err(Error::JwtRetired);
                }
                let header = token_jwt::dangerous_decode_header(token)?;
                // The header's `alg` only picks the route; the route's keys then pin
                // their own algorithms.
                let public = self.jwt.as_ref().filter(|route| {
                    Algorithm::from_name(header.alg())
                        .is_some_and(|alg| route.algorithms.contains(&alg))
                });
                let hmac = self.legacy_hmac.as_ref().filter(|route| {
                    HmacAlgorithm::from_name(header.alg())
                        .is_some_and(|alg| route.algorithms.contains(&alg))
                });
                match (public, hmac) {
                    (Some(route), _) => {
                        self.jwt_seen.fetch_add(1, Ordering::Relaxed);
                        Ok(route.verifier.verify(token, validation)?)
                    }
                    (None, Some(route)) => {
                        self.jwt_seen.fetch_add(1, Ordering::Relaxed);
                        self.hmac_seen.fetch_add(1, Ordering::Relaxed);
                        Ok(route.verifier.verify(token, validation)?)
                    }
                    (None, None) => Err(self.refuse(format!("JWT algorithm {:?}", header.alg()))),
                }
            }
            other => Err(self.refuse(other.to_string())),
        }
    }
}

#[cfg(all(test, not(feature = "jwt")))]
mod tests {
    use super::*;

    /// Without the `jwt` feature there is no JWT route: a JWT is refused as off the
    /// list, and counted as refused.
    #[test]
    fn without_the_jwt_feature_a_jwt_is_off_the_list() {
        // {"alg":"ES256","typ":"JWT"} . {} . 64 bytes of signature
        let jws = format!(
            "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.e30.{}",
            "A".repeat(86)
        );
        assert_eq!(TokenFormat::detect(&jws).ok(), Some(TokenFormat::Jws));
        let dual = DualVerifier::new();
        assert!(matches!(
            dual.verify::<()>(&jws, &Validation::new()),
            Err(Error::NotAllowed(_))
        ));
        assert_eq!(dual.counts().refused, 1);
    }
}
