#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod blocklist;
pub mod config;
pub mod dual;
pub mod error;
pub mod keys;
pub mod policy;
pub mod resource;
pub mod service;
pub mod services;

pub use blocklist::{
    Blocklist, DEFAULT_SINGLE_USE_PER_SUBJECT, MemoryBlocklist, RedisBlocklist, Revocation,
    TokenRef,
};
pub use dual::{Counts, DualVerifier};
pub use error::{Error, Result};
pub use keys::{AccessKey, AccessVerifier, PaymentKey};
pub use policy::{AccessFormat, Explanation, Job, PaymentFormat, Policy};
pub use resource::{AccessKeySource, JsonObject, ResourceVerifier};
pub use service::{AccessClaims, LoginTokens, TokenService, TokenServiceBuilder};
pub use services::{ServiceAuth, ServicePeers};
