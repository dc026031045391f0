#![doc = include_str!("../README.md")]
//!
//! ## The examples, as documentation
//!
//! `examples/quickstart.rs`: issue and verify a `v4.public` access token.
//!
//! ```
#![doc = include_str!("../examples/quickstart.rs")]
//! ```
//!
//! `examples/refresh.rs` (features `policy`, `sqlite`): a refresh token rotated, then
//! replayed: the family is revoked.
#![cfg_attr(all(feature = "policy", feature = "sqlite"), doc = "```")]
#![cfg_attr(
    all(feature = "policy", feature = "sqlite"),
    doc = include_str!("../examples/refresh.rs")
)]
#![cfg_attr(all(feature = "policy", feature = "sqlite"), doc = "```")]
//!
//! `examples/resource_server.rs` (features `axum`, `client`, `redis`, `metrics`): an
//! API that only verifies (public keys fetched from the issuer; no signing key, no
//! store) and serves its metrics. It serves until stopped, so it is compiled here, not
//! run.
#![cfg_attr(
    all(
        feature = "axum",
        feature = "client",
        feature = "redis",
        feature = "metrics"
    ),
    doc = "```no_run"
)]
#![cfg_attr(
    all(feature = "axum", feature = "client", feature = "redis", feature = "metrics"),
    doc = include_str!("../examples/resource_server.rs")
)]
#![cfg_attr(
    all(
        feature = "axum",
        feature = "client",
        feature = "redis",
        feature = "metrics"
    ),
    doc = "```"
)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
pub mod prelude;

pub use error::{Error, Result};
pub use token_core::{self as core, Reason};

#[cfg(feature = "axum")]
pub use token_axum as axum;
#[cfg(feature = "jwt")]
pub use token_jwt as jwt;
#[cfg(feature = "opaque")]
pub use token_opaque as opaque;
#[cfg(feature = "paseto")]
pub use token_paseto as paseto;
#[cfg(feature = "policy")]
pub use token_policy as policy;
