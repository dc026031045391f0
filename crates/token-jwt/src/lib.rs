#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod algorithm;
mod b64;
pub mod dpop;
mod eddsa;
mod error;
pub mod hazmat;
mod header;
mod hmac;
mod jwe;
mod jwk;
mod jwks;
mod jws;
mod key;
mod unverified;

pub use algorithm::{Algorithm, HmacAlgorithm, TokenType};
pub use error::{Error, Result};
pub use header::{Header, MAX_HEADER_DEPTH, MAX_HEADER_LEN};
pub use hmac::HmacKey;
pub use jwe::{CONTENT_ENCRYPTION, DecryptingKey, DirectKey, EcdhCurve, EncryptingKey};
pub use jwk::{MAX_JWK_LEN, MAX_RSA_BITS, MIN_RSA_BITS};
pub use jwks::{Jwks, MAX_JWKS_KEYS, MAX_JWKS_LEN, SkipReason, SkippedKey};
pub use jws::{JwsSigningKey, JwtVerifier, SigningKeySet, VerificationKey};
pub use key::{GENERATED_RSA_BITS, SigningKey, VerifyingKey, pem_label};
pub use unverified::{
    UntrustedJwt, UntrustedParts, dangerous_decode_header, dangerous_decode_parts,
    dangerous_decode_unverified,
};

/// The most bytes of an attacker-chosen header value (`alg`, `enc`, `typ`, a `crit`
/// name) echoed in an [`Error`].
pub const MAX_ECHOED_LEN: usize = 64;
