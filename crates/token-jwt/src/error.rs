//! The one error type of `token-jwt`.

use token_core::TokenFormat;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `token-jwt`.
///
/// Same three grades as `token-core`:
/// - **Parsing and policy** errors say exactly what is wrong with the token's shape or
///   header (a JWE given to a JWS verifier, `alg` not the key's algorithm, an unknown
///   `crit` entry, compression). They are found before any key material is used.
/// - **Authenticity** failures are one opaque [`token_core::Error::InvalidToken`],
///   carried in [`Error::Core`]: a bad signature, a truncated signature, a bad tag, a
///   failed key agreement and a wrong key all look the same.
/// - **Claim** errors, found only after authentication, are `token-core`'s precise
///   errors ([`token_core::Error::Expired`], [`token_core::Error::WrongAudience`], …),
///   also carried in [`Error::Core`].
///
/// No variant carries key material or a whole token. Header values an attacker chose
/// (`alg`, `enc`, `typ`, a `crit` name) are echoed only after being cut to
/// [`MAX_ECHOED_LEN`](crate::MAX_ECHOED_LEN) characters of visible ASCII.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A `token-core` error: the opaque authenticity failure
    /// ([`token_core::Error::InvalidToken`]), claim and validation errors, an invalid or
    /// unknown key id, a token over the length limit.
    #[error(transparent)]
    Core(#[from] token_core::Error),

    // ---- token shape --------------------------------------------------------------
    /// The token is not a well-formed compact serialization.
    #[error("malformed token: {0}")]
    MalformedToken(&'static str),
    /// The token is of another format than this operation takes: a JWE given to a JWS
    /// verifier, a JWS given to a JWE decrypter, a PASETO given to either.
    #[error("expected a {expected} token, got a {found} token")]
    UnexpectedFormat {
        /// The format this operation takes.
        expected: TokenFormat,
        /// The format the token has.
        found: TokenFormat,
    },
    /// The token uses the JWS/JWE JSON serialization; JWTs use the compact form only.
    #[error("the JOSE JSON serialization is not supported; JWTs use the compact serialization")]
    JsonSerialization,
    /// The protected header is longer than this crate parses.
    #[error("protected header is {len} bytes (base64url), over the {max}-byte limit")]
    HeaderTooLarge {
        /// Length seen.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// The protected header is not base64url of a JSON object with well-typed members.
    #[error("malformed protected header: {0}")]
    MalformedHeader(String),
    /// The protected header nests deeper than
    /// [`MAX_HEADER_DEPTH`](crate::MAX_HEADER_DEPTH) levels.
    #[error("protected header nested deeper than {max} levels")]
    HeaderTooDeep {
        /// The deepest nesting accepted.
        max: usize,
    },
    /// A JWS (three-part) token whose header carries a member only a JWE header has
    /// (`enc`, `zip`): a JWE header on a JWS, which a component routing by header would
    /// take for a JWE.
    #[error("a JWS header carrying the JWE member `{0}` (JWS/JWE confusion)")]
    JwsJweConfusion(&'static str),

    // ---- header policy (before any crypto) ------------------------------------------
    /// The header says `alg: none`: an unsecured JWT, never accepted.
    #[error("`alg: none` (an unsecured JWT) is never accepted")]
    UnsecuredJwt,
    /// The header `alg` is not the algorithm the key was created for.
    #[error("header `alg` is `{found}` but the key accepts only `{expected}`")]
    AlgorithmNotAllowed {
        /// The key's algorithm.
        expected: &'static str,
        /// The header's `alg`.
        found: String,
    },
    /// The JWE header `enc` is not `A256GCM`.
    #[error("header `enc` is `{found}` but only `{expected}` is accepted")]
    EncryptionNotAllowed {
        /// The accepted content encryption.
        expected: &'static str,
        /// The header's `enc`.
        found: String,
    },
    /// The header lists a `crit` extension this crate does not implement (any, since it
    /// implements none; `b64: false` included). An empty `crit` is malformed.
    #[error("critical header parameter `{0}` is not supported")]
    UnsupportedCritical(String),
    /// The JWE header asks for compression (`zip`), which is refused (compression
    /// before encryption leaks the plaintext's content through its length).
    #[error("compressed JWE (`zip`) is refused")]
    CompressionNotAllowed,
    /// The header `typ` is not the expected token type.
    #[error("header `typ` is {}, expected `{expected}`", .found.as_deref().map_or_else(|| "absent".to_owned(), |t| format!("`{t}`")))]
    TokenTypeMismatch {
        /// The expected type (`JWT`, `at+jwt`, …).
        expected: String,
        /// The header's `typ`, if any.
        found: Option<String>,
    },
    /// The header `cty` does not fit the operation: a nested (signed-then-encrypted)
    /// JWT must say `cty: JWT`; a directly encrypted JWT must not.
    #[error("header `cty` is {}, expected {}",
        .found.as_deref().map_or_else(|| "absent".to_owned(), |t| format!("`{t}`")),
        .expected.map_or_else(|| "none".to_owned(), |t| format!("`{t}`")))]
    ContentTypeMismatch {
        /// The expected content type, if any.
        expected: Option<&'static str>,
        /// The header's `cty`, if any.
        found: Option<String>,
    },
    /// The token names no key id, and the key set holds more than one key.
    #[error("the token has no `kid` and the key set holds several keys")]
    MissingKeyId,

    // ---- keys -----------------------------------------------------------------------
    /// A key could not be read: malformed PEM, DER or JWK, or private and public parts
    /// that do not belong together.
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    /// The key is of a type or curve this crate does not support (P-521, Ed448,
    /// secp256k1, an encrypted PEM, …).
    #[error("unsupported key: {0}")]
    UnsupportedKey(&'static str),
    /// The key is too weak: an RSA modulus under 2048 bits, an HMAC secret shorter than
    /// the hash output.
    #[error("weak key: {0}")]
    WeakKey(&'static str),
    /// The key does not fit the requested algorithm (an EC P-384 key for ES256, a JWK
    /// whose `alg` names another algorithm, an RSA key for EdDSA, …).
    #[error("the key is not a `{expected}` key: {reason}")]
    KeyAlgorithmMismatch {
        /// The requested algorithm.
        expected: &'static str,
        /// What does not fit.
        reason: String,
    },
    /// A [`SigningKey`](crate::SigningKey) was asked for an algorithm this crate only
    /// verifies (RS384, RS512, PS384, PS512, ES512).
    #[error("{0} is verified, never signed, here: sign with ES256, ES384, EdDSA, PS256 or RS256")]
    VerifyOnlyAlgorithm(&'static str),
    /// A JWKS entry carries private or secret members (`d`, `p`, `k`, …). A published
    /// key set holds public keys only.
    #[error(
        "JWKS entry {index} carries private key material; a key set publishes public keys only"
    )]
    PrivateKeyInJwks {
        /// The entry's position in `keys`.
        index: usize,
    },
    /// The JWKS is larger, or holds more keys, than this crate reads.
    #[error("JWKS over the limit: {0}")]
    JwksTooLarge(&'static str),
    /// No key in the JWKS is usable for this purpose.
    #[error("the key set holds no usable key")]
    EmptyKeySet,

    // ---- producing tokens -----------------------------------------------------------
    /// The signature primitive failed (an internal OpenSSL error; no detail is kept).
    #[error("signing failed")]
    SigningFailed,
    /// The encryption primitive failed (an internal OpenSSL error; no detail is kept).
    #[error("encryption failed")]
    EncryptionFailed,
}

impl Error {
    /// Whether this is the opaque authenticity failure
    /// ([`token_core::Error::InvalidToken`]).
    pub fn is_invalid_token(&self) -> bool {
        matches!(self, Self::Core(token_core::Error::InvalidToken))
    }
}

/// The opaque authenticity failure.
pub(crate) const fn invalid_token() -> Error {
    Error::Core(token_core::Error::InvalidToken)
}

/// Cuts an attacker-chosen header value to something safe to echo in an error: at most
/// [`crate::MAX_ECHOED_LEN`] bytes, non-visible-ASCII characters replaced by `?`.
pub(crate) fn echo(value: &str) -> String {
    let mut out: String = value
        .chars()
        .take(crate::MAX_ECHOED_LEN)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if value.chars().nth(crate::MAX_ECHOED_LEN).is_some() {
        out.push('…');
    }
    out
}

impl Error {
    /// Why, in the closed set of phrases every tessera crate shares.
    pub fn reason(&self) -> token_core::Reason {
        use token_core::Reason as R;
        match self {
            Self::Core(e) => e.reason(),
            // Parse errors, found before any key: precise, never the opaque failure.
            Self::MalformedToken(_)
            | Self::MalformedHeader(_)
            | Self::HeaderTooDeep { .. }
            | Self::JwsJweConfusion(_)
            | Self::JsonSerialization => R::MalformedToken,
            Self::UnexpectedFormat { .. }
            | Self::TokenTypeMismatch { .. }
            | Self::ContentTypeMismatch { .. } => R::WrongTokenType,
            Self::HeaderTooLarge { .. } => R::TokenTooLarge,
            Self::UnsecuredJwt
            | Self::AlgorithmNotAllowed { .. }
            | Self::EncryptionNotAllowed { .. }
            | Self::CompressionNotAllowed => R::AlgorithmNotAllowed,
            Self::UnsupportedCritical(_) => R::UnsupportedCritical,
            Self::MissingKeyId => R::UnknownKey,
            Self::SigningFailed | Self::EncryptionFailed => R::Internal,
            // Key and key-set errors: from a token's point of view it did not verify.
            _ => R::InvalidToken,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header refused by the parser is malformed, as every other parse error: only an
    /// authenticity failure is `invalid token`.
    #[test]
    fn parse_errors_are_malformed_not_invalid() {
        use token_core::Reason;
        for e in [
            Error::MalformedToken("wrong number of segments"),
            Error::MalformedHeader("not base64url".into()),
            Error::HeaderTooDeep { max: 4 },
            Error::JwsJweConfusion("enc"),
            Error::JsonSerialization,
        ] {
            assert_eq!(e.reason(), Reason::MalformedToken, "{e:?}");
        }
        assert_eq!(invalid_token().reason(), Reason::InvalidToken);
    }

    #[test]
    fn echo_bounds_and_sanitizes() {
        assert_eq!(echo("ES256"), "ES256");
        assert_eq!(echo("a\nb\u{7}c"), "a?b?c");
        let long = "x".repeat(500);
        let cut = echo(&long);
        assert!(cut.starts_with(&"x".repeat(crate::MAX_ECHOED_LEN)));
        assert!(cut.len() <= crate::MAX_ECHOED_LEN + '…'.len_utf8());
    }

    #[test]
    fn messages_say_why() {
        let e = Error::AlgorithmNotAllowed {
            expected: "ES256",
            found: "HS256".into(),
        };
        assert_eq!(
            e.to_string(),
            "header `alg` is `HS256` but the key accepts only `ES256`"
        );
        let e = Error::TokenTypeMismatch {
            expected: "at+jwt".into(),
            found: None,
        };
        assert_eq!(e.to_string(), "header `typ` is absent, expected `at+jwt`");
        let e = Error::UnexpectedFormat {
            expected: TokenFormat::Jws,
            found: TokenFormat::Jwe,
        };
        assert_eq!(
            e.to_string(),
            "expected a JWS compact token, got a JWE compact token"
        );
        assert!(invalid_token().is_invalid_token());
        assert_eq!(invalid_token().to_string(), "invalid token");
    }
}
