//! The algorithms a key can be created for, and the token types a verifier can demand.
//!
//! There is no `none` variant anywhere: an unsecured JWT cannot be expressed.

use std::fmt;

/// A public-key JWS algorithm. A [`SigningKey`](crate::SigningKey) or
/// [`VerifyingKey`](crate::VerifyingKey) is created for exactly one of these.
///
/// ES256, ES384, EdDSA, PS256 and RS256 sign and verify ([`Algorithm::SIGNING`]).
/// RS384, RS512, PS384, PS512 and ES512 are verified only, for tokens from other
/// systems ([`Algorithm::can_sign`]); a `SigningKey` for one of them is
/// [`Error::VerifyOnlyAlgorithm`](crate::Error::VerifyOnlyAlgorithm).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// ECDSA on P-256 with SHA-256: the default.
    #[default]
    Es256,
    /// ECDSA on P-384 with SHA-384.
    Es384,
    /// EdDSA on Ed25519 (RFC 8037), verified with `ed25519-dalek`'s strict check.
    EdDsa,
    /// RSASSA-PSS with SHA-256 (RSA keys of 2048 bits or more).
    Ps256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RSA keys of 2048 bits or more).
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384: verification only.
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512: verification only.
    Rs512,
    /// RSASSA-PSS with SHA-384: verification only.
    Ps384,
    /// RSASSA-PSS with SHA-512: verification only.
    Ps512,
    /// ECDSA on P-521 with SHA-512: verification only.
    Es512,
}

impl Algorithm {
    /// Every supported public-key algorithm: those that sign, then those verified only.
    pub const ALL: [Self; 10] = [
        Self::Es256,
        Self::Es384,
        Self::EdDsa,
        Self::Ps256,
        Self::Rs256,
        Self::Rs384,
        Self::Rs512,
        Self::Ps384,
        Self::Ps512,
        Self::Es512,
    ];

    /// The algorithms a [`SigningKey`](crate::SigningKey) signs with.
    pub const SIGNING: [Self; 5] = [
        Self::Es256,
        Self::Es384,
        Self::EdDsa,
        Self::Ps256,
        Self::Rs256,
    ];

    /// Whether tokens are signed with this algorithm here (`false`: verified only).
    pub const fn can_sign(self) -> bool {
        matches!(
            self,
            Self::Es256 | Self::Es384 | Self::EdDsa | Self::Ps256 | Self::Rs256
        )
    }

    /// The `alg` header value.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::EdDsa => "EdDSA",
            Self::Ps256 => "PS256",
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
            Self::Ps384 => "PS384",
            Self::Ps512 => "PS512",
            Self::Es512 => "ES512",
        }
    }

    /// The algorithm with this `alg` name (exact, case-sensitive, as RFC 7515 says).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The signature length in bytes, when it does not depend on the key (RSA's does).
    pub(crate) const fn fixed_signature_len(self) -> Option<usize> {
        match self {
            Self::Es256 | Self::EdDsa => Some(64),
            Self::Es384 => Some(96),
            Self::Es512 => Some(132),
            Self::Ps256 | Self::Rs256 | Self::Rs384 | Self::Rs512 | Self::Ps384 | Self::Ps512 => {
                None
            }
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An HMAC JWS algorithm, only reachable through
/// [`HmacKey::dangerous_shared_secret`](crate::HmacKey::dangerous_shared_secret).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HmacAlgorithm {
    /// HMAC with SHA-256; secrets of at least 32 bytes.
    Hs256,
    /// HMAC with SHA-384; secrets of at least 48 bytes.
    Hs384,
    /// HMAC with SHA-512; secrets of at least 64 bytes.
    Hs512,
}

impl HmacAlgorithm {
    /// Every HMAC algorithm.
    pub const ALL: [Self; 3] = [Self::Hs256, Self::Hs384, Self::Hs512];

    /// The `alg` header value.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::Hs384 => "HS384",
            Self::Hs512 => "HS512",
        }
    }

    /// The algorithm with this `alg` name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The hash output length in bytes: both the tag length and the shortest secret
    /// accepted (RFC 7518 section 3.2).
    pub const fn output_len(self) -> usize {
        match self {
            Self::Hs256 => 32,
            Self::Hs384 => 48,
            Self::Hs512 => 64,
        }
    }

    pub(crate) const fn josekit(self) -> josekit::jws::alg::hmac::HmacJwsAlgorithm {
        match self {
            Self::Hs256 => josekit::jws::HS256,
            Self::Hs384 => josekit::jws::HS384,
            Self::Hs512 => josekit::jws::HS512,
        }
    }
}

impl fmt::Display for HmacAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The `typ` a verifier demands (RFC 8725 section 3.11, explicit typing).
///
/// Values compare as media types do: ASCII case-insensitively, with an optional
/// `application/` prefix (RFC 7515 section 4.1.9).
///
/// By default (no type demanded) a verifier accepts a token whose `typ` is absent or
/// `JWT`, and refuses every other type, so an explicitly typed token of another kind
/// (`at+jwt`, `dpop+jwt`, `logout+jwt`, …) is never taken for a plain JWT.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenType {
    /// `JWT` (RFC 7519), required to be present.
    Jwt,
    /// `at+jwt`: an OAuth 2.0 access token (RFC 9068).
    AccessToken,
    /// Another explicit type, such as `secevent+jwt`. Give it without `application/`.
    Other(String),
}

impl TokenType {
    /// The `typ` header value this crate writes.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Jwt => "JWT",
            Self::AccessToken => "at+jwt",
            Self::Other(t) => t,
        }
    }

    /// The type a [`token_core::Validation::token_type`] names: `JWT`, `at+jwt` (with
    /// or without `application/`, any case) or another.
    pub fn from_name(name: &str) -> Self {
        if media_type_eq(name, "JWT") {
            Self::Jwt
        } else if media_type_eq(name, "at+jwt") {
            Self::AccessToken
        } else {
            Self::Other(name.to_owned())
        }
    }

    /// Whether the header value `typ` names this type.
    pub(crate) fn matches(&self, typ: &str) -> bool {
        media_type_eq(typ, self.as_str())
    }
}

impl fmt::Display for TokenType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Media-type comparison for `typ` and `cty`: case-insensitive, `application/` optional.
pub(crate) fn media_type_eq(header_value: &str, expected: &str) -> bool {
    let strip = |s: &str| -> String {
        let lower = s.to_ascii_lowercase();
        match lower.strip_prefix("application/") {
            Some(rest) => rest.to_owned(),
            None => lower,
        }
    };
    strip(header_value) == strip(expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(a.name()), Some(a));
        }
        for a in HmacAlgorithm::ALL {
            assert_eq!(HmacAlgorithm::from_name(a.name()), Some(a));
        }
        for a in Algorithm::ALL {
            assert_eq!(Algorithm::SIGNING.contains(&a), a.can_sign(), "{a}");
        }
        assert_eq!(Algorithm::from_name("RS384"), Some(Algorithm::Rs384));
        assert!(!Algorithm::Es512.can_sign());
        assert_eq!(Algorithm::from_name("none"), None);
        assert_eq!(Algorithm::from_name("es256"), None);
        assert_eq!(Algorithm::from_name("HS256"), None);
        assert_eq!(Algorithm::default(), Algorithm::Es256);
    }

    #[test]
    fn token_types_compare_as_media_types() {
        assert!(TokenType::Jwt.matches("JWT"));
        assert!(TokenType::Jwt.matches("jwt"));
        assert!(TokenType::Jwt.matches("application/JWT"));
        assert!(TokenType::AccessToken.matches("at+jwt"));
        assert!(TokenType::AccessToken.matches("application/AT+JWT"));
        assert!(!TokenType::AccessToken.matches("JWT"));
        assert!(!TokenType::Jwt.matches("at+jwt"));
        assert!(!TokenType::Jwt.matches("JWTX"));
        assert!(TokenType::Other("secevent+jwt".into()).matches("application/secevent+jwt"));
    }
}
