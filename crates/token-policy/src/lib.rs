#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod blocklist;
pub mod error;

pub use blocklist::{Blocklist, MemoryBlocklist, RedisBlocklist};
pub use error::{Error, Result};
