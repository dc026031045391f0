//! What the day-one programs need, in one import: `use tessera::prelude::*;`.
//!
//! Raw tokens are secret types ([`SecretString`]); [`ExposeSecret::expose_secret`] is
//! the one call that prints or sends one.

pub use std::time::Duration;

pub use token_core::secrecy::{ExposeSecret, SecretString};
pub use token_core::{Claims, Reason, Timestamp, TokenFormat, Validation, Verified};

pub use crate::{Error, Result};

#[cfg(feature = "paseto")]
pub use token_paseto::{
    LocalCipher, LocalKey, PublicIssuer, PublicKey, PublicKeySet, PublicVerifier, SecretKey, V3, V4,
};

#[cfg(feature = "jwt")]
pub use token_jwt::{Algorithm, JwtVerifier, SigningKey, SigningKeySet};

#[cfg(feature = "sqlite")]
pub use token_opaque::SqliteStore;
#[cfg(feature = "opaque")]
pub use token_opaque::{Environment, NewApiKey, OneTimeKind, OpaqueTokens};

#[cfg(feature = "policy")]
pub use token_policy::{
    AccessClaims, Blocklist, LoginTokens, MemoryBlocklist, Policy, ResourceVerifier, TokenService,
};

#[cfg(feature = "client")]
pub use token_axum::KeySetClient;
#[cfg(feature = "axum")]
pub use token_axum::{Access, AuthLayer, AuthState, Principal};
