#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[macro_use]
pub mod telemetry;
mod api_key_cache;
pub mod blocklist;
pub mod config;
pub mod dual;
pub mod error;
pub mod keys;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub mod keystore;
pub mod policy;
pub mod resource;
pub mod service;
#[cfg(feature = "jwt")]
pub mod services;
mod shared;

pub use blocklist::{
    Blocklist, DEFAULT_SINGLE_USE_PER_SUBJECT, MemoryBlocklist, Revocation, TokenRef,
};
#[cfg(feature = "redis")]
pub use blocklist::{RedisBlocklist, ReplicaOptions, ReplicatedBlocklist};
pub use dual::{Counts, DualVerifier};
pub use error::{Error, Result};
pub use keys::{AccessKey, AccessVerifier, PaymentKey};
pub use policy::{AccessFormat, Explanation, Job, PaymentFormat, Policy};
pub use resource::{AccessKeySource, DpopRequestLine, JsonObject, ResourceVerifier};
pub use service::{AccessClaims, Confirmation, LoginTokens, TokenService, TokenServiceBuilder};
#[cfg(feature = "jwt")]
pub use services::{ServiceAuth, ServicePeers};
