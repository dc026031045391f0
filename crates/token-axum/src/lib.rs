#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "client")]
pub mod client;
pub mod error;
pub mod extract;
pub mod layer;
pub mod limit;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod principal;
pub mod serve;
pub mod state;
pub mod well_known;

#[cfg(feature = "client")]
pub use client::{KeySetClient, KeySetClientBuilder, KeySetFormat};
pub use error::{Error, Result};
pub use extract::Rejection;
pub use layer::{AuthLayer, AuthService, Credential};
pub use principal::{Access, Principal, VerifiedApiKey, VerifiedSession};
pub use state::{AuthState, bearer_token};
