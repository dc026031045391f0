//! PASERK: platform-agnostic serialized keys.
//!
//! Plain keys (`k3/k4 .local/.public/.secret`) and key ids (`lid`/`pid`/`sid`) are in
//! [`crate::keys`]. The operations that protect a key for distribution or storage live
//! here: wrapping with a symmetric key (`*-wrap.pie`, [`pie`]), protecting with a
//! password (`*-pw`, [`pw`]), and sealing to a public key (`seal`, [`seal`]).

mod common;
pub mod pie;
pub mod pw;
pub mod raw;
pub mod seal;

pub use raw::KeyKind;

/// The PASERK version of a key (`k3` or `k4`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PaserkVersion {
    /// `k3`: NIST algorithms (PASETO v3).
    K3,
    /// `k4`: modern algorithms (PASETO v4).
    K4,
}

impl PaserkVersion {
    /// `"k3"` or `"k4"`.
    pub const fn prefix(self) -> &'static str {
        match self {
            Self::K3 => "k3",
            Self::K4 => "k4",
        }
    }
}
