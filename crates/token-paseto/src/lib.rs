#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod encoding;
pub mod error;
pub mod keys;
pub mod keyset;
#[cfg(feature = "legacy-v2")]
pub mod legacy;
pub mod paserk;
mod token;
mod tokens;
mod unverified;
pub mod version;
mod version3;
mod version4;

pub use error::{Error, Result};
pub use keys::{LocalKey, PublicKey, SecretKey};
pub use keyset::PublicKeySet;
pub use token::{MAX_FOOTER_DEPTH, MAX_FOOTER_KEYS, MAX_FOOTER_LEN, VerifyOptions, footer_kid};
pub use tokens::{LocalCipher, PublicIssuer, PublicVerifier};
pub use unverified::{UntrustedParts, dangerous_decode_parts};
pub use version::{V3, V4, Version};
