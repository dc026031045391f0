//! Telling token formats apart by shape alone.
//!
//! [`TokenFormat::detect`] looks only at the token's structure: the PASETO prefix, the
//! number of JOSE compact segments and their alphabet, a tessera opaque prefix. It
//! decodes nothing, verifies nothing and trusts nothing: its answer only routes the
//! token to the verifier for that format, which then checks everything again.

use std::fmt;

use crate::error::{Error, Result};

/// The longest token any tessera verifier accepts, in bytes.
pub const MAX_TOKEN_LEN: usize = 32 * 1024;

/// Length of the random part of a tessera opaque token: 256 bits in base62.
pub const OPAQUE_RANDOM_LEN: usize = 43;
/// Length of the checksum of a tessera opaque token: CRC32 in base62.
pub const OPAQUE_CHECKSUM_LEN: usize = 6;
/// Length of a tessera opaque token after its prefix.
pub const OPAQUE_BODY_LEN: usize = OPAQUE_RANDOM_LEN + OPAQUE_CHECKSUM_LEN;

/// A PASETO version, as named by the token's prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PasetoVersion {
    /// `v1` (deprecated; refused by tessera).
    V1,
    /// `v2` (deprecated; verify-only behind a feature).
    V2,
    /// `v3`: NIST algorithms.
    V3,
    /// `v4`: modern algorithms.
    V4,
}

/// A PASETO purpose, as named by the token's prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PasetoPurpose {
    /// `local`: symmetric authenticated encryption.
    Local,
    /// `public`: asymmetric signature.
    Public,
}

/// The kinds of tessera opaque token, each with its own prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OpaqueKind {
    /// A live-mode API key, `sk_live_`.
    ApiKeyLive,
    /// A test-mode API key, `sk_test_`.
    ApiKeyTest,
    /// A refresh token, `rt_`.
    Refresh,
    /// A server-side session id, `ses_`.
    Session,
    /// An email-verification token, `evt_`.
    EmailVerification,
    /// A password-reset token, `prt_`.
    PasswordReset,
}

impl OpaqueKind {
    /// Every kind.
    pub const ALL: [Self; 6] = [
        Self::ApiKeyLive,
        Self::ApiKeyTest,
        Self::Refresh,
        Self::Session,
        Self::EmailVerification,
        Self::PasswordReset,
    ];

    /// The default prefix of this kind.
    pub const fn default_prefix(self) -> &'static str {
        match self {
            Self::ApiKeyLive => "sk_live_",
            Self::ApiKeyTest => "sk_test_",
            Self::Refresh => "rt_",
            Self::Session => "ses_",
            Self::EmailVerification => "evt_",
            Self::PasswordReset => "prt_",
        }
    }
}

/// What a token looks like, from its shape alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenFormat {
    /// `vN.purpose.payload[.footer]`.
    Paseto {
        /// The version in the prefix.
        version: PasetoVersion,
        /// The purpose in the prefix.
        purpose: PasetoPurpose,
        /// Whether a footer segment is present.
        has_footer: bool,
    },
    /// A JWS in compact serialization: three segments (a JWT, usually).
    Jws,
    /// A JWE in compact serialization: five segments.
    Jwe,
    /// A tessera opaque token with a default prefix.
    Opaque(OpaqueKind),
}

impl fmt::Display for TokenFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Paseto {
                version,
                purpose,
                has_footer,
            } => {
                let v = match version {
                    PasetoVersion::V1 => "v1",
                    PasetoVersion::V2 => "v2",
                    PasetoVersion::V3 => "v3",
                    PasetoVersion::V4 => "v4",
                };
                let p = match purpose {
                    PasetoPurpose::Local => "local",
                    PasetoPurpose::Public => "public",
                };
                let footer = if *has_footer { " with footer" } else { "" };
                write!(f, "PASETO {v}.{p}{footer}")
            }
            Self::Jws => f.write_str("JWS compact"),
            Self::Jwe => f.write_str("JWE compact"),
            Self::Opaque(kind) => write!(f, "tessera opaque ({})", kind.default_prefix()),
        }
    }
}

/// Whether every byte of `s` is in the base64url alphabet.
///
/// Branch-free per byte and without an early exit, so the loop vectorises: a
/// several-hundred-byte payload is checked in a few dozen nanoseconds instead of a few
/// hundred. Inputs are bounded by [`MAX_TOKEN_LEN`], so never stopping early on a bad
/// byte costs nothing that matters.
fn is_base64url(s: &str) -> bool {
    s.bytes().fold(true, |ok, b| ok & is_base64url_byte(b))
}

#[expect(
    clippy::needless_bitwise_bool,
    reason = "non-short-circuiting on purpose: branch-free, so the caller's loop vectorises"
)]
fn is_base64url_byte(b: u8) -> bool {
    let digit = b.wrapping_sub(b'0') < 10;
    // Setting bit 5 maps `A`..=`Z` onto `a`..=`z` and no other byte into that range.
    let letter = (b | 0x20).wrapping_sub(b'a') < 26;
    digit | letter | (b == b'-') | (b == b'_')
}

/// A JOSE header is a JSON object, so its base64url form begins with `e` (`{` is
/// `0x7B`, whose top six bits are 30).
fn is_jose_header(s: &str) -> bool {
    s.starts_with('e') && is_base64url(s)
}

impl TokenFormat {
    /// Classifies `token` by shape. Never panics; runs in time linear in the input.
    ///
    /// # Errors
    /// [`Error::TokenTooLong`] past [`MAX_TOKEN_LEN`], or [`Error::UnrecognizedFormat`]
    /// saying what did not fit.
    pub fn detect(token: &str) -> Result<Self> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(Error::TokenTooLong {
                len: token.len(),
                max: MAX_TOKEN_LEN,
            });
        }
        if token.is_empty() {
            return Err(Error::UnrecognizedFormat("empty token"));
        }
        if let Some(format) = detect_paseto(token)? {
            return Ok(format);
        }
        if let Some(kind) = detect_opaque(token) {
            return Ok(Self::Opaque(kind));
        }
        detect_jose(token)
    }
}

fn detect_paseto(token: &str) -> Result<Option<TokenFormat>> {
    let Some((version, rest)) = token.split_once('.') else {
        return Ok(None);
    };
    let version = match version {
        "v1" => PasetoVersion::V1,
        "v2" => PasetoVersion::V2,
        "v3" => PasetoVersion::V3,
        "v4" => PasetoVersion::V4,
        _ => {
            let b = version.as_bytes();
            return if b.first() == Some(&b'v')
                && b.len() > 1
                && b.iter().skip(1).all(u8::is_ascii_digit)
            {
                Err(Error::UnrecognizedFormat("unknown PASETO version"))
            } else {
                Ok(None)
            };
        }
    };
    let (purpose, rest) = match rest.split_once('.') {
        Some(("local", rest)) => (PasetoPurpose::Local, rest),
        Some(("public", rest)) => (PasetoPurpose::Public, rest),
        _ => return Err(Error::UnrecognizedFormat("unknown PASETO purpose")),
    };
    let (payload, footer) = match rest.split_once('.') {
        Some((payload, footer)) => (payload, Some(footer)),
        None => (rest, None),
    };
    if payload.is_empty() || !is_base64url(payload) {
        return Err(Error::UnrecognizedFormat("PASETO payload is not base64url"));
    }
    if let Some(footer) = footer {
        if footer.is_empty() || !is_base64url(footer) {
            return Err(Error::UnrecognizedFormat(
                "PASETO footer is empty or not base64url",
            ));
        }
    }
    Ok(Some(TokenFormat::Paseto {
        version,
        purpose,
        has_footer: footer.is_some(),
    }))
}

fn detect_opaque(token: &str) -> Option<OpaqueKind> {
    OpaqueKind::ALL.into_iter().find(|kind| {
        token
            .strip_prefix(kind.default_prefix())
            .is_some_and(|body| {
                body.len() == OPAQUE_BODY_LEN && body.bytes().all(|b| b.is_ascii_alphanumeric())
            })
    })
}

fn detect_jose(token: &str) -> Result<TokenFormat> {
    let mut parts = [""; 5];
    let mut n = 0;
    for part in token.split('.') {
        match parts.get_mut(n) {
            Some(slot) => *slot = part,
            None => return Err(Error::UnrecognizedFormat("too many '.'-separated segments")),
        }
        n += 1;
    }
    match (n, parts) {
        // header.payload.signature; the signature may be empty (unsecured JWS, which
        // every verifier refuses, but it is still recognisably a JWS).
        (3, [header, payload, signature, _, _]) => {
            if is_jose_header(header) && is_base64url(payload) && is_base64url(signature) {
                Ok(TokenFormat::Jws)
            } else {
                Err(Error::UnrecognizedFormat("not a JWS compact serialization"))
            }
        }
        // header.encrypted_key.iv.ciphertext.tag; the key is empty for `dir`.
        (5, [header, key, iv, ciphertext, tag]) => {
            if is_jose_header(header)
                && is_base64url(key)
                && !iv.is_empty()
                && is_base64url(iv)
                && !ciphertext.is_empty()
                && is_base64url(ciphertext)
                && !tag.is_empty()
                && is_base64url(tag)
            {
                Ok(TokenFormat::Jwe)
            } else {
                Err(Error::UnrecognizedFormat("not a JWE compact serialization"))
            }
        }
        (1, _) => Err(Error::UnrecognizedFormat(
            "no known prefix and no '.'-separated segments",
        )),
        _ => Err(Error::UnrecognizedFormat(
            "wrong number of '.'-separated segments for JWS (3) or JWE (5)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_byte_class_is_exactly_the_alphabet() {
        for b in 0..=u8::MAX {
            let expected = b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
            assert_eq!(is_base64url_byte(b), expected, "byte {b:#04x}");
        }
        assert!(is_base64url("AZaz09-_"));
        assert!(!is_base64url("AZaz09-_="));
        assert!(!is_base64url("é"));
    }
    use proptest::prelude::*;

    const JWS: &str = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl";
    const JWE: &str = "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..aXY.Y3Q.dGFn";

    fn paseto(v: PasetoVersion, p: PasetoPurpose, has_footer: bool) -> TokenFormat {
        TokenFormat::Paseto {
            version: v,
            purpose: p,
            has_footer,
        }
    }

    #[test]
    fn classifies_known_shapes() {
        use PasetoPurpose::{Local, Public};
        use PasetoVersion::{V1, V2, V3, V4};
        let d = |s: &str| TokenFormat::detect(s).unwrap();
        assert_eq!(d("v4.public.eyJkYXRhIjoiYSJ9"), paseto(V4, Public, false));
        assert_eq!(d("v4.local.AAAA.eyJraWQiOiJrIn0"), paseto(V4, Local, true));
        assert_eq!(d("v3.public.AAAA"), paseto(V3, Public, false));
        assert_eq!(d("v3.local.AAAA"), paseto(V3, Local, false));
        assert_eq!(d("v2.local.AAAA"), paseto(V2, Local, false));
        assert_eq!(d("v1.public.AAAA.Zm9v"), paseto(V1, Public, true));
        assert_eq!(d(JWS), TokenFormat::Jws);
        assert_eq!(d("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0."), TokenFormat::Jws);
        assert_eq!(d(JWE), TokenFormat::Jwe);
        let body = "a".repeat(OPAQUE_BODY_LEN);
        for kind in OpaqueKind::ALL {
            let token = format!("{}{body}", kind.default_prefix());
            assert_eq!(d(&token), TokenFormat::Opaque(kind));
        }
    }

    #[test]
    fn official_vector_tokens_are_classified() {
        // From the PASETO test vectors (4-S-2, 3-E-1).
        let v4 = "v4.public.eyJkYXRhIjoidGhpcyBpcyBhIHNpZ25lZCBtZXNzYWdlIiwiZXhwIjoiMjAyMi0wMS0wMVQwMDowMDowMCswMDowMCJ9v3Jt8mx_TdM2ceTGoqwrh4yDFn0XsHvvV_D0DtwQxVrJEBMl0F2caAdgnpKlt4p7xBnx1HcO-SPo8FPp214HDw.eyJraWQiOiJ6VmhNaVBCUDlmUmYyc25FY1Q3Z0ZUaW9lQTlDT2NOeTlEZmdMMVc2MGhhTiJ9";
        assert_eq!(
            TokenFormat::detect(v4).unwrap(),
            paseto(PasetoVersion::V4, PasetoPurpose::Public, true)
        );
        let v3 = "v3.local.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAkA4ZStvvxLbr3Wc0zlQYmuW2N8MtPj_gzEaE5m6LB_OI4J9c7tOcVXcz5VWyXYE5wJ5aWUJx-oe5x3q6R0Nd9wT41";
        assert_eq!(
            TokenFormat::detect(v3).unwrap(),
            paseto(PasetoVersion::V3, PasetoPurpose::Local, false)
        );
    }

    #[test]
    fn refuses_near_misses() {
        for bad in [
            "",
            "v4",
            "v4.",
            "v4.secret.AAAA",
            "v4.public.",
            "v4.public.AA=A",
            "v4.public.AAAA.",
            "v4.public.AAAA.BB.CC",
            "v5.public.AAAA",
            "v4.local.AA AA",
            "hello",
            "a.b",
            "a.b.c.d",
            "eyJ.eyJ.c.d.e.f",
            "Zm9v.eyJzdWIiOiJhIn0.c2ln",
            "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln+bmF0dXJl",
            "eyJhbGciOiJkaXIifQ..aXY..dGFn",
            "sk_live_short",
            "sk_live_!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
        ] {
            assert!(
                matches!(TokenFormat::detect(bad), Err(Error::UnrecognizedFormat(_))),
                "{bad:?} was classified as {:?}",
                TokenFormat::detect(bad)
            );
        }
        let huge = "a".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(
            TokenFormat::detect(&huge),
            Err(Error::TokenTooLong {
                len: MAX_TOKEN_LEN + 1,
                max: MAX_TOKEN_LEN
            })
        );
    }

    #[test]
    fn display_names_the_format() {
        assert_eq!(
            paseto(PasetoVersion::V4, PasetoPurpose::Local, true).to_string(),
            "PASETO v4.local with footer"
        );
        assert_eq!(
            TokenFormat::Opaque(OpaqueKind::ApiKeyLive).to_string(),
            "tessera opaque (sk_live_)"
        );
    }

    fn b64(max: usize) -> impl Strategy<Value = String> {
        proptest::string::string_regex(&format!("[A-Za-z0-9_-]{{1,{max}}}")).unwrap()
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_strings(s in "\\PC{0,200}") {
            let _ = TokenFormat::detect(&s);
        }

        #[test]
        fn never_panics_on_token_like_strings(s in "(v[0-9]|ey|sk_live_|rt_)?[A-Za-z0-9_.=+/-]{0,120}") {
            let _ = TokenFormat::detect(&s);
        }

        #[test]
        fn generated_pasetos_are_classified(
            v in prop_oneof![Just(("v1", PasetoVersion::V1)), Just(("v2", PasetoVersion::V2)),
                             Just(("v3", PasetoVersion::V3)), Just(("v4", PasetoVersion::V4))],
            p in prop_oneof![Just(("local", PasetoPurpose::Local)), Just(("public", PasetoPurpose::Public))],
            payload in b64(200),
            footer in proptest::option::of(b64(60)),
        ) {
            let token = match &footer {
                Some(f) => format!("{}.{}.{payload}.{f}", v.0, p.0),
                None => format!("{}.{}.{payload}", v.0, p.0),
            };
            prop_assert_eq!(TokenFormat::detect(&token), Ok(paseto(v.1, p.1, footer.is_some())));
        }

        #[test]
        fn generated_jose_tokens_are_classified(h in b64(60), a in b64(200), b in b64(90), c in b64(40)) {
            let header = format!("e{h}");
            prop_assert_eq!(TokenFormat::detect(&format!("{header}.{a}.{b}")), Ok(TokenFormat::Jws));
            prop_assert_eq!(TokenFormat::detect(&format!("{header}.{a}.{b}.{c}.{a}")), Ok(TokenFormat::Jwe));
            prop_assert_eq!(TokenFormat::detect(&format!("{header}..{b}.{c}.{a}")), Ok(TokenFormat::Jwe));
        }

        #[test]
        fn generated_opaque_tokens_are_classified(
            i in 0..OpaqueKind::ALL.len(),
            body in proptest::string::string_regex(&format!("[A-Za-z0-9]{{{OPAQUE_BODY_LEN}}}")).unwrap(),
        ) {
            let kind = OpaqueKind::ALL[i];
            let token = format!("{}{body}", kind.default_prefix());
            prop_assert_eq!(TokenFormat::detect(&token), Ok(TokenFormat::Opaque(kind)));
        }
    }
}
