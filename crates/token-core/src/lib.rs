#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod claims;
mod claims_out;
pub mod error;
pub mod format;
pub mod json;
pub mod key;
pub mod reason;
pub mod secret;
pub mod sensitive;
#[cfg(feature = "test-support")]
pub mod test_support;
pub mod time;
pub mod traits;
pub mod validation;

pub use claims::{
    Audience, Claims, NoCustomClaims, NumericDate, RegisteredClaim, Rfc3339, TimeEncoding,
};
pub use error::{Error, Result};
pub use format::{MAX_TOKEN_LEN, OpaqueKind, PasetoPurpose, PasetoVersion, TokenFormat};
pub use key::{KeyId, KeyRing, KeyStatus};
pub use reason::Reason;
pub use secret::{SecretBytes, constant_time_eq};
pub use sensitive::{DEFAULT_SENSITIVE_CLAIMS, SensitiveClaims};
pub use time::{Clock, FixedClock, ManualClock, SystemClock, Timestamp, parse_duration};
pub use traits::{
    AsymmetricSigner, TokenDecrypter, TokenEncrypter, TokenSigner, TokenVerifier, Verified,
};
pub use validation::{DEFAULT_LEEWAY, MAX_LEEWAY, Validation};

/// Re-exported so implementations and users name one `secrecy`.
pub use secrecy;
