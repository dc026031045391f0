//! The token format: `<prefix><random><checksum>`.
//!
//! - `prefix`: names the kind; 2 to [`MAX_PREFIX_LEN`] characters of `[a-z0-9_]`,
//!   starting with a letter and ending with `_` (so the boundary with the body, which
//!   has no `_`, is unambiguous).
//! - `random`: 256 bits from the operating system's CSPRNG, as a fixed-width
//!   ([`OPAQUE_RANDOM_LEN`] = 43 characters) big-endian base62 number over the alphabet
//!   [`BASE62_ALPHABET`] (`0-9A-Za-z`).
//! - `checksum`: CRC32 (IEEE) of `prefix + random`, as a fixed-width
//!   ([`OPAQUE_CHECKSUM_LEN`] = 6 characters) base62 number.
//!
//! Parsing is strict and bounded: at most [`MAX_OPAQUE_TOKEN_LEN`] bytes are looked at,
//! and the only strings accepted are exactly those [`Prefixes::generate`] can produce.
//! Every rejection is a typed [`Error`]; nothing here panics or touches a database.

use std::fmt;

use secrecy::SecretString;
use token_core::OpaqueKind;
use token_core::format::{OPAQUE_BODY_LEN, OPAQUE_CHECKSUM_LEN, OPAQUE_RANDOM_LEN};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The base62 alphabet, in digit order.
pub const BASE62_ALPHABET: &[u8; 62] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The longest prefix accepted, in bytes.
pub const MAX_PREFIX_LEN: usize = 16;

/// The longest opaque token accepted, in bytes: the longest prefix plus the body.
pub const MAX_OPAQUE_TOKEN_LEN: usize = MAX_PREFIX_LEN + OPAQUE_BODY_LEN;

/// Bytes of randomness in a token.
pub const RANDOM_BYTES: usize = 32;

/// What a token is for. Operations accept exactly one purpose; a token of another
/// purpose is [`Error::WrongKind`] before any query.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenPurpose {
    /// An API key (live or test).
    ApiKey,
    /// A refresh token.
    Refresh,
    /// A server-side session id.
    Session,
    /// An email-verification token.
    EmailVerification,
    /// A password-reset token.
    PasswordReset,
}

impl TokenPurpose {
    /// The purpose of a token kind, or `None` for a kind this crate does not know.
    pub fn of(kind: OpaqueKind) -> Option<Self> {
        Some(match kind {
            OpaqueKind::ApiKeyLive | OpaqueKind::ApiKeyTest => Self::ApiKey,
            OpaqueKind::Refresh => Self::Refresh,
            OpaqueKind::Session => Self::Session,
            OpaqueKind::EmailVerification => Self::EmailVerification,
            OpaqueKind::PasswordReset => Self::PasswordReset,
            _ => return None,
        })
    }
}

impl fmt::Display for TokenPurpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ApiKey => "API key",
            Self::Refresh => "refresh token",
            Self::Session => "session id",
            Self::EmailVerification => "email-verification token",
            Self::PasswordReset => "password-reset token",
        })
    }
}

/// The environment of an API key, named by its prefix (`sk_live_` or `sk_test_`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Environment {
    /// Live mode.
    Live,
    /// Test mode.
    Test,
}

impl Environment {
    /// The token kind of keys in this environment.
    pub fn kind(self) -> OpaqueKind {
        match self {
            Self::Live => OpaqueKind::ApiKeyLive,
            Self::Test => OpaqueKind::ApiKeyTest,
        }
    }

    /// The environment of an API-key kind.
    pub fn of(kind: OpaqueKind) -> Option<Self> {
        match kind {
            OpaqueKind::ApiKeyLive => Some(Self::Live),
            OpaqueKind::ApiKeyTest => Some(Self::Test),
            _ => None,
        }
    }
}

/// The name a kind is stored under in the `kind` column of every table.
pub fn kind_name(kind: OpaqueKind) -> Option<&'static str> {
    Some(match kind {
        OpaqueKind::ApiKeyLive => "api_key_live",
        OpaqueKind::ApiKeyTest => "api_key_test",
        OpaqueKind::Refresh => "refresh",
        OpaqueKind::Session => "session",
        OpaqueKind::EmailVerification => "email_verification",
        OpaqueKind::PasswordReset => "password_reset",
        _ => return None,
    })
}

/// The kind stored under `name` (the inverse of [`kind_name`]).
pub fn kind_from_name(name: &str) -> Option<OpaqueKind> {
    OpaqueKind::ALL
        .into_iter()
        .find(|k| kind_name(*k) == Some(name))
}

/// A token that passed [`Prefixes::parse`]: known prefix, exact length, base62 body,
/// canonical random part, valid checksum. It has not been looked up.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ParsedToken<'a> {
    kind: OpaqueKind,
    token: &'a str,
}

impl fmt::Debug for ParsedToken<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedToken")
            .field("kind", &self.kind)
            .field("token", &"[REDACTED]")
            .finish()
    }
}

impl<'a> ParsedToken<'a> {
    /// The kind the prefix names.
    pub fn kind(&self) -> OpaqueKind {
        self.kind
    }

    /// The purpose of the kind.
    pub fn purpose(&self) -> Option<TokenPurpose> {
        TokenPurpose::of(self.kind)
    }

    /// The whole token (what is hashed).
    pub(crate) fn as_str(&self) -> &'a str {
        self.token
    }

    /// Checks that the token has `expected` purpose.
    ///
    /// # Errors
    /// [`Error::WrongKind`] otherwise.
    pub fn expect(self, expected: TokenPurpose) -> Result<Self> {
        match self.purpose() {
            Some(found) if found == expected => Ok(self),
            Some(found) => Err(Error::WrongKind { expected, found }),
            None => Err(Error::Malformed("unknown token kind")),
        }
    }
}

/// The prefix of each kind. Defaults to [`OpaqueKind::default_prefix`]; each may be
/// replaced (distinct prefixes per deployment, say `acme_rt_`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prefixes {
    entries: Vec<(OpaqueKind, String)>,
}

impl Default for Prefixes {
    fn default() -> Self {
        Self {
            entries: OpaqueKind::ALL
                .into_iter()
                .map(|k| (k, k.default_prefix().to_owned()))
                .collect(),
        }
    }
}

fn check_prefix(prefix: &str) -> Result<()> {
    let b = prefix.as_bytes();
    if b.len() < 2 || b.len() > MAX_PREFIX_LEN {
        return Err(Error::InvalidInput("a prefix is 2 to 16 bytes long"));
    }
    if !b.first().is_some_and(u8::is_ascii_lowercase) || b.last() != Some(&b'_') {
        return Err(Error::InvalidInput(
            "a prefix starts with a lowercase letter and ends with '_'",
        ));
    }
    if !b
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
    {
        return Err(Error::InvalidInput("a prefix is made of [a-z0-9_]"));
    }
    Ok(())
}

impl Prefixes {
    /// Replaces the prefix of `kind`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if the prefix is not 2–16 bytes of `[a-z0-9_]` starting
    /// with a letter and ending with `_`, or if another kind already uses it.
    pub fn with(mut self, kind: OpaqueKind, prefix: &str) -> Result<Self> {
        check_prefix(prefix)?;
        if self.entries.iter().any(|(k, p)| *k != kind && p == prefix) {
            return Err(Error::InvalidInput("two kinds cannot share a prefix"));
        }
        match self.entries.iter_mut().find(|(k, _)| *k == kind) {
            Some(entry) => prefix.clone_into(&mut entry.1),
            None => self.entries.push((kind, prefix.to_owned())),
        }
        Ok(self)
    }

    /// The prefix of `kind`.
    pub fn get(&self, kind: OpaqueKind) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, p)| p.as_str())
    }

    /// The kind whose prefix is exactly `prefix`.
    pub fn kind_of(&self, prefix: &str) -> Option<OpaqueKind> {
        self.entries
            .iter()
            .find(|(_, p)| p == prefix)
            .map(|(k, _)| *k)
    }

    /// A regular expression (RE2, PCRE and Rust `regex` syntax) matching every token
    /// these prefixes produce, for secret scanners. With the default prefixes:
    ///
    /// ```text
    /// \b(?:sk_live_|sk_test_|rt_|ses_|evt_|prt_)[0-9A-Za-z]{49}\b
    /// ```
    pub fn scanner_regex(&self) -> String {
        let alternatives: Vec<&str> = self.entries.iter().map(|(_, p)| p.as_str()).collect();
        format!(
            "\\b(?:{})[0-9A-Za-z]{{{OPAQUE_BODY_LEN}}}\\b",
            alternatives.join("|")
        )
    }

    /// Generates a new token of `kind` from 256 bits of OS randomness.
    ///
    /// # Errors
    /// [`Error::RandomnessUnavailable`] if the OS generator fails;
    /// [`Error::InvalidInput`] for a kind without a prefix.
    pub fn generate(&self, kind: OpaqueKind) -> Result<SecretString> {
        let mut random = Zeroizing::new([0u8; RANDOM_BYTES]);
        getrandom::fill(random.as_mut_slice()).map_err(|_| Error::RandomnessUnavailable)?;
        self.format(kind, &random)
    }

    /// The token of `kind` whose random part is `random`.
    pub(crate) fn format(
        &self,
        kind: OpaqueKind,
        random: &[u8; RANDOM_BYTES],
    ) -> Result<SecretString> {
        let prefix = self
            .get(kind)
            .ok_or(Error::InvalidInput("no prefix for this token kind"))?;
        let mut s = Zeroizing::new(String::with_capacity(prefix.len() + OPAQUE_BODY_LEN));
        s.push_str(prefix);
        let body = Zeroizing::new(encode_random(random));
        s.push_str(&body);
        let sum = encode_checksum(crc32fast::hash(s.as_bytes()));
        s.push_str(&sum);
        Ok(SecretString::from(s.as_str()))
    }

    /// Parses `token` strictly, checking prefix, length, alphabet, canonical random part
    /// and checksum, in time linear in at most [`MAX_OPAQUE_TOKEN_LEN`] bytes.
    ///
    /// # Errors
    /// [`Error::Malformed`] or [`Error::BadChecksum`].
    pub fn parse<'a>(&self, token: &'a str) -> Result<ParsedToken<'a>> {
        if token.len() > MAX_OPAQUE_TOKEN_LEN {
            return Err(Error::Malformed("longer than any opaque token"));
        }
        if token.len() < OPAQUE_BODY_LEN + 2 {
            return Err(Error::Malformed("shorter than any opaque token"));
        }
        let split = token
            .rfind('_')
            .ok_or(Error::Malformed("no prefix"))?
            .saturating_add(1);
        let (Some(prefix), Some(body)) = (token.get(..split), token.get(split..)) else {
            return Err(Error::Malformed("no prefix"));
        };
        if body.len() != OPAQUE_BODY_LEN {
            return Err(Error::Malformed("wrong length after the prefix"));
        }
        if !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Error::Malformed("characters outside base62"));
        }
        let kind = self
            .kind_of(prefix)
            .ok_or(Error::Malformed("unknown prefix"))?;
        let (Some(signed), Some(random), Some(sum)) = (
            token.get(..token.len() - OPAQUE_CHECKSUM_LEN),
            body.get(..OPAQUE_RANDOM_LEN),
            body.get(OPAQUE_RANDOM_LEN..),
        ) else {
            return Err(Error::Malformed("wrong length after the prefix"));
        };
        // Fixed width, and the alphabet is in ASCII order: comparing the digits as
        // bytes compares the numbers, without decoding them.
        if random.as_bytes() > MAX_RANDOM.as_bytes() {
            return Err(Error::Malformed("random part out of range"));
        }
        if encode_checksum(crc32fast::hash(signed.as_bytes())).as_bytes() != sum.as_bytes() {
            return Err(Error::BadChecksum);
        }
        Ok(ParsedToken { kind, token })
    }
}

/// Fixed-width base62 of a big-endian number held in `bytes`.
fn encode_fixed(bytes: &[u8], width: usize) -> String {
    let mut n = bytes.to_vec();
    let mut digits = vec![b'0'; width];
    for slot in digits.iter_mut().rev() {
        let mut rem = 0u32;
        for byte in &mut n {
            let acc = (rem << 8) | u32::from(*byte);
            // acc < 62 * 256, so the quotient fits in a byte.
            *byte = u8::try_from(acc / 62).unwrap_or(0);
            rem = acc % 62;
        }
        *slot = BASE62_ALPHABET
            .get(usize::try_from(rem).unwrap_or(0))
            .copied()
            .unwrap_or(b'0');
    }
    zeroize::Zeroize::zeroize(&mut n);
    digits.into_iter().map(char::from).collect()
}

/// The 43-character base62 form of 32 random bytes.
pub(crate) fn encode_random(random: &[u8; RANDOM_BYTES]) -> String {
    encode_fixed(random, OPAQUE_RANDOM_LEN)
}

/// The 6-character base62 form of a CRC32.
fn encode_checksum(crc: u32) -> String {
    encode_fixed(&crc.to_be_bytes(), OPAQUE_CHECKSUM_LEN)
}

#[cfg(test)]
fn base62_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'Z' => Some(c - b'A' + 10),
        b'a'..=b'z' => Some(c - b'a' + 36),
        _ => None,
    }
}

/// The 32 bytes a 43-character base62 string encodes, or `None` if it is not base62
/// or its value needs more than 256 bits.
/// The base62 digits of 2^256 − 1, the largest random part.
const MAX_RANDOM: &str = "yhjskwdA6OZ1AL1YmHWZWm8LLG7HjnuCA2j5rOw8Xp1";

/// Decodes a random part (the reference the parser's digit comparison is tested
/// against).
#[cfg(test)]
pub(crate) fn decode_random(s: &str) -> Option<Zeroizing<[u8; RANDOM_BYTES]>> {
    if s.len() != OPAQUE_RANDOM_LEN {
        return None;
    }
    let mut out = Zeroizing::new([0u8; RANDOM_BYTES]);
    for c in s.bytes() {
        let mut carry = u32::from(base62_digit(c)?);
        for byte in out.iter_mut().rev() {
            let acc = u32::from(*byte) * 62 + carry;
            *byte = u8::try_from(acc & 0xff).unwrap_or(0);
            carry = acc >> 8;
        }
        if carry != 0 {
            return None;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use token_core::TokenFormat;

    #[test]
    fn generated_tokens_have_the_documented_shape() {
        let p = Prefixes::default();
        for kind in OpaqueKind::ALL {
            let t = p.generate(kind).unwrap();
            let t = t.expose_secret();
            let prefix = kind.default_prefix();
            assert_eq!(t.len(), prefix.len() + OPAQUE_BODY_LEN);
            assert!(t.starts_with(prefix));
            assert_eq!(p.parse(t).unwrap().kind(), kind);
            // token-core recognises the shape by itself.
            assert_eq!(TokenFormat::detect(t), Ok(TokenFormat::Opaque(kind)));
        }
    }

    proptest::proptest! {
        /// The parser's range check (a byte comparison of the digits) agrees with
        /// decoding, on strings that share any prefix with the largest value.
        #[test]
        fn digit_comparison_is_the_numeric_range_check(
            keep in 0usize..=43,
            tail in proptest::collection::vec(0usize..62, 43),
        ) {
            let mut s: String = MAX_RANDOM.get(..keep).unwrap().to_owned();
            s.extend(tail[keep..].iter().map(|&d| char::from(BASE62_ALPHABET[d])));
            proptest::prop_assert_eq!(
                s.as_bytes() <= MAX_RANDOM.as_bytes(),
                decode_random(&s).is_some()
            );
        }
    }

    #[test]
    fn base62_round_trips_and_bounds() {
        for bytes in [[0u8; 32], [0xff; 32], [7; 32]] {
            let s = encode_random(&bytes);
            assert_eq!(s.len(), 43);
            assert_eq!(*decode_random(&s).unwrap(), bytes);
        }
        assert_eq!(encode_random(&[0; 32]), "0".repeat(43));
        // 62^43 > 2^256: the largest 43-digit string is out of range.
        assert!(decode_random(&"z".repeat(43)).is_none());
        assert!(decode_random("!").is_none());
        assert_eq!(encode_random(&[0xff; 32]), MAX_RANDOM);
        assert_eq!(encode_checksum(0), "000000");
        assert_eq!(encode_checksum(61), "00000z");
        assert_eq!(encode_checksum(u32::MAX), "4gfFC3");
    }

    #[test]
    fn known_vector() {
        let p = Prefixes::default();
        let t = p.format(OpaqueKind::ApiKeyLive, &[0; 32]).unwrap();
        let t = t.expose_secret();
        let crc = crc32fast::hash(format!("sk_live_{}", "0".repeat(43)).as_bytes());
        assert_eq!(
            t,
            &format!("sk_live_{}{}", "0".repeat(43), encode_checksum(crc))
        );
    }

    #[test]
    fn rejections_are_typed() {
        let p = Prefixes::default();
        let good = p.generate(OpaqueKind::Refresh).unwrap();
        let good = good.expose_secret();
        let m = |s: &str| p.parse(s).unwrap_err();
        assert_eq!(m(""), Error::Malformed("shorter than any opaque token"));
        assert_eq!(
            m(&"a".repeat(1000)),
            Error::Malformed("longer than any opaque token")
        );
        assert_eq!(m(&"a".repeat(60)), Error::Malformed("no prefix"));
        assert_eq!(
            m(&format!("{good}a")),
            Error::Malformed("wrong length after the prefix")
        );
        assert_eq!(
            m(&format!("xx_{}", &good[3..])),
            Error::Malformed("unknown prefix")
        );
        let mut bad = good.to_owned();
        bad.replace_range(10..11, "-");
        assert_eq!(m(&bad), Error::Malformed("characters outside base62"));
        let swapped = format!("ses_{}", &good[3..]);
        assert_eq!(m(&swapped), Error::BadChecksum);
        let out_of_range = format!("rt_{}", "z".repeat(49));
        assert_eq!(
            m(&out_of_range),
            Error::Malformed("random part out of range")
        );
        let non_ascii = format!("é_{}", "a".repeat(49));
        assert!(matches!(p.parse(&non_ascii), Err(Error::Malformed(_))));
    }

    #[test]
    fn purpose_binding_before_lookup() {
        let p = Prefixes::default();
        let t = p.generate(OpaqueKind::PasswordReset).unwrap();
        let parsed = p.parse(t.expose_secret()).unwrap();
        assert_eq!(
            parsed.expect(TokenPurpose::EmailVerification),
            Err(Error::WrongKind {
                expected: TokenPurpose::EmailVerification,
                found: TokenPurpose::PasswordReset
            })
        );
        assert!(parsed.expect(TokenPurpose::PasswordReset).is_ok());
        assert!(!format!("{parsed:?}").contains(&t.expose_secret()[4..]));
    }

    #[test]
    fn custom_prefixes_are_checked() {
        let p = Prefixes::default()
            .with(OpaqueKind::Refresh, "acme_rt_")
            .unwrap();
        let t = p.generate(OpaqueKind::Refresh).unwrap();
        assert!(t.expose_secret().starts_with("acme_rt_"));
        assert_eq!(
            p.parse(t.expose_secret()).unwrap().kind(),
            OpaqueKind::Refresh
        );
        assert!(
            Prefixes::default()
                .with(OpaqueKind::Refresh, "ses_")
                .is_err()
        );
        for bad in ["", "x", "RT_", "rt", "1rt_", "r-t_", "a_very_long_prefix_"] {
            assert!(
                Prefixes::default().with(OpaqueKind::Refresh, bad).is_err(),
                "{bad}"
            );
        }
        assert_eq!(
            Prefixes::default().scanner_regex(),
            "\\b(?:sk_live_|sk_test_|rt_|ses_|evt_|prt_)[0-9A-Za-z]{49}\\b"
        );
    }

    #[test]
    fn kind_names_round_trip() {
        for kind in OpaqueKind::ALL {
            assert_eq!(kind_from_name(kind_name(kind).unwrap()), Some(kind));
        }
        assert_eq!(kind_from_name("nope"), None);
    }
}
