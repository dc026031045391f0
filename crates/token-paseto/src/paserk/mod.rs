//! PASERK: platform-agnostic serialized keys.
//!
//! Plain keys (`k3/k4 .local/.public/.secret`) and key ids (`lid`/`pid`/`sid`) are in
//! [`crate::keys`]. The operations that protect a key for distribution or storage live
//! here: wrapping with a symmetric key (`*-wrap.pie`, [`pie`]), protecting with a
//! password (`*-pw`, [`pw`]), and sealing to a public key (`seal`, [`seal`]).

pub(crate) mod common;
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

/// The type of a wrapped, sealed or password-protected PASERK.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProtectedType {
    /// `local-wrap.pie`: a local key wrapped with a symmetric key ([`pie`]).
    LocalWrapPie,
    /// `secret-wrap.pie`: a secret key wrapped with a symmetric key ([`pie`]).
    SecretWrapPie,
    /// `seal`: a local key sealed to a public key ([`seal`]).
    Seal,
    /// `local-pw`: a local key protected with a password ([`pw`]).
    LocalPw,
    /// `secret-pw`: a secret key protected with a password ([`pw`]).
    SecretPw,
}

impl ProtectedType {
    /// The PASERK type name: `local-wrap.pie`, `secret-wrap.pie`, `seal`, `local-pw` or
    /// `secret-pw`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::LocalWrapPie => "local-wrap.pie",
            Self::SecretWrapPie => "secret-wrap.pie",
            Self::Seal => "seal",
            Self::LocalPw => "local-pw",
            Self::SecretPw => "secret-pw",
        }
    }
}

/// Checks a wrapped, sealed or password-protected PASERK as far as it can be checked
/// without its key or password, with the parse that unwrapping, unsealing and
/// unprotecting run first: the version and type, canonical base64url, the exact length
/// of the type, and for `*-pw` a stored cost within [`pw::PwLimits::MAXIMUM`] (a cost
/// over these bounds is refused by every unprotect). Returns the version and type.
///
/// # Errors
/// [`Error::InvalidPaserk`] for an unknown version or type, bad base64url or a wrong
/// length; [`Error::WeakPasswordParams`] or [`Error::PasswordCostTooHigh`] for a stored
/// cost out of bounds.
///
/// [`Error::InvalidPaserk`]: crate::Error::InvalidPaserk
/// [`Error::WeakPasswordParams`]: crate::Error::WeakPasswordParams
/// [`Error::PasswordCostTooHigh`]: crate::Error::PasswordCostTooHigh
pub fn check_protected(paserk: &str) -> crate::Result<(PaserkVersion, ProtectedType)> {
    let (version, rest) = match paserk.split_once('.') {
        Some(("k3", rest)) => (PaserkVersion::K3, rest),
        Some(("k4", rest)) => (PaserkVersion::K4, rest),
        _ => {
            return Err(crate::Error::InvalidPaserk(
                "not a PASERK of a supported version",
            ));
        }
    };
    let ty = [
        ProtectedType::LocalWrapPie,
        ProtectedType::SecretWrapPie,
        ProtectedType::Seal,
        ProtectedType::LocalPw,
        ProtectedType::SecretPw,
    ]
    .into_iter()
    .find(|ty| {
        rest.strip_prefix(ty.name())
            .is_some_and(|body| body.starts_with('.'))
    })
    .ok_or(crate::Error::InvalidPaserk(
        "not a wrapped, sealed or password-protected PASERK",
    ))?;
    let limits = pw::PwLimits::MAXIMUM;
    match ty {
        ProtectedType::LocalWrapPie => {
            pie::parse_body(version, common::ProtectedKind::Local, paserk)
        }
        ProtectedType::SecretWrapPie => {
            pie::parse_body(version, common::ProtectedKind::Secret, paserk)
        }
        ProtectedType::Seal => seal::parse_body(version, paserk),
        ProtectedType::LocalPw => {
            pw::parse_body(version, common::ProtectedKind::Local, paserk, &limits)
        }
        ProtectedType::SecretPw => {
            pw::parse_body(version, common::ProtectedKind::Secret, paserk, &limits)
        }
    }?;
    Ok((version, ty))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LocalKey, SecretKey, V3, V4};

    /// `tokenctl key inspect` used to call any string with the right prefix a protected
    /// PASERK, while unwrapping, unsealing and unprotecting refuse one of the wrong
    /// length: the check is now the parse those operations run first.
    #[test]
    fn protected_paserks_are_checked_as_far_as_they_can_be_without_a_key() {
        let local = LocalKey::<V4>::generate().unwrap();
        let local3 = LocalKey::<V3>::generate().unwrap();
        let secret = SecretKey::<V4>::generate().unwrap();
        let weak = pw::PwParams::K4(pw::Argon2Params {
            memlimit_bytes: pw::Argon2Params::MIN_MEMLIMIT_BYTES,
            opslimit: pw::Argon2Params::MIN_OPSLIMIT,
        });
        let good = [
            (
                local.wrap_with(&local).unwrap(),
                PaserkVersion::K4,
                ProtectedType::LocalWrapPie,
            ),
            (
                secret.wrap_with(&local).unwrap(),
                PaserkVersion::K4,
                ProtectedType::SecretWrapPie,
            ),
            (
                local.seal_to(secret.public_key()).unwrap(),
                PaserkVersion::K4,
                ProtectedType::Seal,
            ),
            (
                local.protect(b"pw", &weak).unwrap(),
                PaserkVersion::K4,
                ProtectedType::LocalPw,
            ),
            (
                local3
                    .protect(
                        b"pw",
                        &pw::PwParams::K3(pw::Pbkdf2Params {
                            iterations: 100_000,
                        }),
                    )
                    .unwrap(),
                PaserkVersion::K3,
                ProtectedType::LocalPw,
            ),
        ];
        for (paserk, version, ty) in good {
            let paserk = secrecy::ExposeSecret::expose_secret(&paserk).to_owned();
            assert_eq!(check_protected(&paserk).unwrap(), (version, ty), "{paserk}");
            // One character short, or one too many: refused like the operation would.
            let short = &paserk[..paserk.len() - 1];
            assert!(
                matches!(check_protected(short), Err(crate::Error::InvalidPaserk(_))),
                "{short}"
            );
            let long = format!("{paserk}AA");
            assert!(
                matches!(check_protected(&long), Err(crate::Error::InvalidPaserk(_))),
                "{long}"
            );
        }
        let body = |n: usize| crate::encoding::b64_encode(&vec![0u8; n]);
        for bad in [
            format!("k4.local-wrap.pie.{}", body(50)),
            format!("k4.seal.{}", body(50)),
            format!("k4.local-pw.{}", body(50)),
            format!("k4.secret-pw.{}", body(10)),
            "k4.local-wrap.pie".to_owned(),
            "k4.local-wrapXpie.AAAA".to_owned(),
            "k4.local.AAAA".to_owned(),
            "k5.seal.AAAA".to_owned(),
        ] {
            assert!(
                matches!(check_protected(&bad), Err(crate::Error::InvalidPaserk(_))),
                "{bad}"
            );
            assert!(matches!(
                LocalKey::<V4>::unwrap_with(&bad, &local),
                Err(crate::Error::InvalidPaserk(_))
            ));
        }
        // A stored cost no limit admits: all-zero parameters of the right length.
        let zero_cost = format!("k4.local-pw.{}", body(16 + 16 + 24 + 32 + 32));
        assert!(matches!(
            check_protected(&zero_cost),
            Err(crate::Error::WeakPasswordParams(_))
        ));
    }
}
