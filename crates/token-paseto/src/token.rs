//! Parsing untrusted PASETO strings, and the bounded footer.
//!
//! Order of checks, before any key is touched: length bound, shape (via
//! [`TokenFormat::detect`]), version, purpose, footer size, footer JSON depth and width,
//! footer `kid` (all of the footer in [`footer_kid`]). Only then is a key looked up and
//! the token authenticated.

use serde_json::Value;
use token_core::{KeyId, KeyRing, MAX_TOKEN_LEN, PasetoPurpose, PasetoVersion, TokenFormat};

use crate::encoding::b64_decode;
use crate::error::{Error, Result};
use crate::version::Version;

/// The longest footer accepted, in decoded bytes.
pub const MAX_FOOTER_LEN: usize = 2048;
/// The deepest JSON nesting accepted in a footer (an object of scalars is depth 1).
pub const MAX_FOOTER_DEPTH: usize = 2;
/// The most keys accepted in a JSON footer's top-level object.
pub const MAX_FOOTER_KEYS: usize = 16;

/// A token split into its parts; nothing in it is authenticated yet. (Public only so
/// the sealed `Version` trait can name it; not reachable from outside the crate.)
#[derive(Debug)]
pub struct Parsed<'a> {
    /// The whole token.
    pub(crate) raw: &'a str,
    /// The base64url payload segment.
    pub(crate) body: &'a str,
    /// The decoded footer (empty when absent).
    pub(crate) footer: Vec<u8>,
}

/// Splits `token`, refusing any other version or purpose than `V`'s `purpose`.
pub(crate) fn parse<V: Version>(token: &str, purpose: PasetoPurpose) -> Result<Parsed<'_>> {
    let (version, found) = detect(token)?;
    if matches!(version, PasetoVersion::V1 | PasetoVersion::V2) {
        return Err(Error::UnsupportedVersion(version));
    }
    if version != V::ID {
        return Err(Error::WrongVersion {
            expected: V::ID,
            found: version,
        });
    }
    if found != purpose {
        return Err(Error::WrongPurpose {
            expected: purpose,
            found,
        });
    }
    let (body, footer) = split(token, version, purpose)?;
    Ok(Parsed {
        raw: token,
        body,
        footer: footer.unwrap_or_default(),
    })
}

/// The version and purpose of `token`, after its length bound; any version, the
/// deprecated ones included. Every reading of a PASETO starts here: the verifiers'
/// ([`parse`]) and the inspection decoder's
/// ([`dangerous_decode_parts`](crate::dangerous_decode_parts)).
pub(crate) fn detect(token: &str) -> Result<(PasetoVersion, PasetoPurpose)> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(token_core::Error::TokenTooLong {
            len: token.len(),
            max: MAX_TOKEN_LEN,
        }
        .into());
    }
    match TokenFormat::detect(token) {
        Ok(TokenFormat::Paseto {
            version, purpose, ..
        }) => Ok((version, purpose)),
        Ok(_) => Err(Error::Malformed("not a PASETO token")),
        Err(token_core::Error::UnrecognizedFormat(why)) => Err(Error::Malformed(why)),
        Err(e) => Err(e.into()),
    }
}

/// The `vN.purpose.` header of tokens of `version` and `purpose`.
fn header(version: PasetoVersion, purpose: PasetoPurpose) -> &'static str {
    match (version, purpose) {
        (PasetoVersion::V1, PasetoPurpose::Local) => "v1.local.",
        (PasetoVersion::V1, PasetoPurpose::Public) => "v1.public.",
        (PasetoVersion::V2, PasetoPurpose::Local) => "v2.local.",
        (PasetoVersion::V2, PasetoPurpose::Public) => "v2.public.",
        (PasetoVersion::V3, PasetoPurpose::Local) => "v3.local.",
        (PasetoVersion::V3, PasetoPurpose::Public) => "v3.public.",
        (PasetoVersion::V4, PasetoPurpose::Local) => "v4.local.",
        (PasetoVersion::V4, PasetoPurpose::Public) => "v4.public.",
    }
}

/// Splits a token [`detect`] found to be `version`.`purpose` into its base64url body
/// and its decoded footer (`None` without a footer segment), the footer bounded by
/// [`MAX_FOOTER_LEN`] before it is decoded.
pub(crate) fn split(
    token: &str,
    version: PasetoVersion,
    purpose: PasetoPurpose,
) -> Result<(&str, Option<Vec<u8>>)> {
    let rest = token
        .strip_prefix(header(version, purpose))
        .ok_or(Error::Malformed("header"))?;
    match rest.split_once('.') {
        Some((body, footer)) => {
            // Four base64 characters carry three bytes.
            if footer.len() > MAX_FOOTER_LEN.div_ceil(3) * 4 {
                return Err(Error::InvalidFooter("longer than 2048 bytes"));
            }
            Ok((body, Some(b64_decode(footer, "footer is not base64url")?)))
        }
        None => Ok((rest, None)),
    }
}

/// The JSON whitespace a parser skips before a value (RFC 8259 section 2).
const JSON_WHITESPACE: [u8; 4] = [b' ', b'\t', b'\n', b'\r'];

/// Whether `footer` is a JSON footer: its first byte after JSON whitespace opens an
/// object or an array, so any JSON parser down the line reads it as JSON.
fn is_json_footer(footer: &[u8]) -> bool {
    matches!(
        footer.iter().find(|b| !JSON_WHITESPACE.contains(b)),
        Some(b'{' | b'[')
    )
}

/// The PASERK id prefix of keys for tokens of `version` and `purpose`: `k4.pid.`,
/// `k3.lid.`, …
fn id_prefix(version: PasetoVersion, purpose: PasetoPurpose) -> &'static str {
    match (version, purpose) {
        (PasetoVersion::V1, PasetoPurpose::Local) => "k1.lid.",
        (PasetoVersion::V1, PasetoPurpose::Public) => "k1.pid.",
        (PasetoVersion::V2, PasetoPurpose::Local) => "k2.lid.",
        (PasetoVersion::V2, PasetoPurpose::Public) => "k2.pid.",
        (PasetoVersion::V3, PasetoPurpose::Local) => "k3.lid.",
        (PasetoVersion::V3, PasetoPurpose::Public) => "k3.pid.",
        (PasetoVersion::V4, PasetoPurpose::Local) => "k4.lid.",
        (PasetoVersion::V4, PasetoPurpose::Public) => "k4.pid.",
    }
}

/// Reads a footer of a `version`.`purpose` token the way every verifier of this crate
/// does, before any key is used, and returns the key id it names. Issuing tools run
/// it too ([`SecretKey::check_footer`](crate::SecretKey::check_footer),
/// [`LocalKey::check_footer`](crate::LocalKey::check_footer)), and so can inspection
/// tools, so that they agree with verification on every footer.
///
/// - At most [`MAX_FOOTER_LEN`] bytes.
/// - A footer whose first byte after JSON whitespace is `{` or `[` is JSON, and is read
///   as such whatever follows: it must nest at most [`MAX_FOOTER_DEPTH`] levels, have at
///   most [`MAX_FOOTER_KEYS`] members (both measured before parsing), be an object, and
///   name no member twice at any depth ([`token_core::json`]). Its `kid`, if present,
///   must be a string that is a valid [`KeyId`] (`null` is not "no `kid`"), and a `kid`
///   of the PASERK id form (`k4.pid.…`) must be of `version` and `purpose`.
/// - Any other footer is opaque data (the PASETO specification allows any footer): it
///   names no key, so a verifier holding one key uses it, and a verifier holding
///   several refuses the token for want of a key id.
///
/// # Errors
/// [`Error::InvalidFooter`] saying which rule the footer breaks.
pub fn footer_kid(
    footer: &[u8],
    version: PasetoVersion,
    purpose: PasetoPurpose,
) -> Result<Option<KeyId>> {
    if footer.len() > MAX_FOOTER_LEN {
        return Err(Error::InvalidFooter("longer than 2048 bytes"));
    }
    if let Some(id) = plain_kid(footer) {
        return checked_kid(id, version, purpose).map(Some);
    }
    if !is_json_footer(footer) {
        return Ok(None);
    }
    token_core::json::check_shape(footer, MAX_FOOTER_DEPTH, MAX_FOOTER_KEYS).map_err(|e| {
        Error::InvalidFooter(match e {
            token_core::Error::JsonTooWide { .. } => "JSON object with more than 16 keys",
            _ => "JSON nested deeper than 2 levels",
        })
    })?;
    let value: Value = token_core::json::from_slice(footer).map_err(|e| {
        Error::InvalidFooter(match e {
            token_core::Error::DuplicateMember(_) => "a JSON member name appears more than once",
            _ => "not a JSON object",
        })
    })?;
    let Value::Object(mut members) = value else {
        return Err(Error::InvalidFooter(
            "a JSON footer must be an object, not an array",
        ));
    };
    match members.remove("kid") {
        None => Ok(None),
        Some(Value::String(kid)) => checked_kid(&kid, version, purpose).map(Some),
        Some(_) => Err(Error::InvalidFooter("`kid` is not a string")),
    }
}

/// The id of the footer `{"kid":"…"}` with nothing else in it, no white space and no
/// escape: the footer this library writes, read without a JSON parse. `None` for any
/// other footer, which the JSON parse reads (to the same id when it holds one).
fn plain_kid(footer: &[u8]) -> Option<&str> {
    let id = footer
        .strip_prefix(br#"{"kid":""#)?
        .strip_suffix(br#""}"#)?;
    // Visible ASCII without `"` or `\`: the JSON string's text is the id itself.
    if id
        .iter()
        .all(|&b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
    {
        std::str::from_utf8(id).ok()
    } else {
        None
    }
}

/// The key id `kid` of a footer, refused when it is not a valid id or is a PASERK id
/// of another version or purpose.
fn checked_kid(kid: &str, version: PasetoVersion, purpose: PasetoPurpose) -> Result<KeyId> {
    let kid = KeyId::new(kid).map_err(|_| Error::InvalidFooter("`kid` is not a valid key id"))?;
    if is_paserk_id(kid.as_str()) && !kid.as_str().starts_with(id_prefix(version, purpose)) {
        return Err(Error::InvalidFooter(
            "`kid` is not a key id of this version and purpose",
        ));
    }
    Ok(kid)
}

/// [`footer_kid`], and a PASERK id in it must be `own_id`: what an issuer holding the
/// key `own_id` may write in a footer. (A PASERK id names only the key it is computed
/// from; a token naming another key's id could never verify.)
pub(crate) fn check_issued_footer(
    footer: &[u8],
    version: PasetoVersion,
    purpose: PasetoPurpose,
    own_id: &KeyId,
) -> Result<()> {
    match footer_kid(footer, version, purpose)? {
        Some(kid) if is_paserk_id(kid.as_str()) && &kid != own_id => Err(Error::InvalidFooter(
            "`kid` is the PASERK id of another key",
        )),
        _ => Ok(()),
    }
}

/// The footer an issuer writes: `{"kid":"<id>"}`.
pub(crate) fn kid_footer(kid: &KeyId) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Footer<'a> {
        kid: &'a str,
    }
    // A key id is visible ASCII without quotes or backslashes worth escaping; serde
    // escapes whatever needs it. Writing a string member cannot fail.
    serde_json::to_vec(&Footer { kid: kid.as_str() }).unwrap_or_default()
}

/// What the caller requires of a token beyond its key.
#[derive(Clone, Copy, Debug, Default)]
pub struct VerifyOptions<'a> {
    /// The implicit assertion the token was bound to (empty when none).
    pub implicit_assertion: &'a [u8],
    /// The exact footer the token must carry; `None` accepts any footer.
    pub footer: Option<&'a [u8]>,
}

impl<'a> VerifyOptions<'a> {
    /// Binds to `implicit_assertion`, any footer.
    pub fn with_implicit_assertion(implicit_assertion: &'a [u8]) -> Self {
        Self {
            implicit_assertion,
            footer: None,
        }
    }
}

/// Whether `kid` has the form of a PASERK key id: `k<version>.lid.`, `.pid.` or `.sid.`
/// followed by the id itself.
pub(crate) fn is_paserk_id(kid: &str) -> bool {
    match kid.as_bytes() {
        [b'k', version, b'.', rest @ ..] => {
            version.is_ascii_digit()
                && [&b"lid."[..], b"pid.", b"sid."]
                    .iter()
                    .any(|kind| rest.starts_with(kind))
        }
        _ => false,
    }
}

/// The keys a verifier may use for a token, as its footer names them.
pub(crate) enum Candidates<'r, K> {
    /// The one key the footer names (or the ring's only key), with its ring id.
    One(&'r K, &'r KeyId),
    /// Every key of the ring, in order: the footer names its key by an id of the
    /// issuer's own, which the ring does not hold as an alias.
    Each(&'r KeyRing<K>),
}

impl<K> Candidates<'_, K> {
    /// Runs `authenticate` with each candidate until one succeeds, and returns its
    /// result and the key's ring id. Only an authenticity failure moves on to the next
    /// key: any other error (a malformed token) is returned at once. When no key
    /// authenticates the token the failure is the one opaque invalid-token error.
    pub(crate) fn authenticate<R>(
        &self,
        authenticate: impl Fn(&K) -> Result<R>,
    ) -> Result<(R, KeyId)> {
        match self {
            Self::One(key, id) => Ok((authenticate(key)?, (*id).clone())),
            Self::Each(ring) => {
                for (id, key, _) in ring.iter() {
                    match authenticate(key) {
                        Ok(r) => return Ok((r, id.clone())),
                        Err(Error::Core(token_core::Error::InvalidToken)) => {}
                        Err(e) => return Err(e),
                    }
                }
                Err(Error::invalid())
            }
        }
    }
}

/// Picks the keys a token may be verified with, by its footer `kid` (read by
/// [`footer_kid`]):
///
/// - a PASERK id (`k4.pid.…`) must be of the token's version and purpose and name a
///   key of the ring, or the token is refused before any crypto
///   ([`token_core::Error::UnknownKeyId`]);
/// - any other `kid` is the issuer's own name for its key (other implementations, and
///   the official vectors, use their own strings): the key the ring holds under that
///   id (an alias), or else each key of the ring, is tried;
/// - without a `kid`, a ring of exactly one key uses that key.
pub(crate) fn select_key<'r, K>(
    ring: &'r KeyRing<K>,
    parsed: &Parsed<'_>,
    options: &VerifyOptions<'_>,
    version: PasetoVersion,
    purpose: PasetoPurpose,
) -> Result<Candidates<'r, K>> {
    if let Some(expected) = options.footer {
        if expected != parsed.footer.as_slice() {
            return Err(Error::FooterMismatch);
        }
    }
    if let Some(kid) = footer_kid(&parsed.footer, version, purpose)? {
        let named = ring.iter().find(|(id, _, _)| **id == kid);
        if is_paserk_id(kid.as_str()) {
            // `footer_kid` checked that the id is of this version and purpose.
            let (id, key, _) = named.ok_or(token_core::Error::UnknownKeyId)?;
            return Ok(Candidates::One(key, id));
        }
        return match named {
            Some((id, key, _)) => Ok(Candidates::One(key, id)),
            None if ring.is_empty() => Err(token_core::Error::UnknownKeyId.into()),
            None => Ok(Candidates::Each(ring)),
        };
    }
    let mut keys = ring.iter();
    match (keys.next(), keys.next()) {
        (Some((id, key, _)), None) => Ok(Candidates::One(key, id)),
        (None, _) => Err(token_core::Error::UnknownKeyId.into()),
        (Some(_), Some(_)) => Err(Error::MissingKeyId),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paserk_ids_are_told_from_issuers_own_ids() {
        for id in ["k4.pid.abc", "k3.lid.x", "k4.sid.", "k1.pid.z"] {
            assert!(is_paserk_id(id), "{id}");
        }
        for id in [
            "zVhMiPBP9fRf2snEcT7gFTioeA9COcNy9DfgL1W60haN",
            "k4.public.abc",
            "k4pid.abc",
            "kx.pid.abc",
            "key-2024",
            "K4.pid.abc",
            "",
        ] {
            assert!(!is_paserk_id(id), "{id}");
        }
    }

    fn kid(footer: &[u8]) -> Result<Option<KeyId>> {
        footer_kid(footer, PasetoVersion::V4, PasetoPurpose::Public)
    }

    /// The footer an issuer writes is the one-member object `{"kid":"…"}`, byte for
    /// byte, and reads back as that id.
    #[test]
    fn kid_footer_is_one_member_object() {
        let id = KeyId::new("k4.pid.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
        let footer = kid_footer(&id);
        assert_eq!(
            footer,
            br#"{"kid":"k4.pid.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#.to_vec()
        );
        assert_eq!(kid(&footer).unwrap(), Some(id));
    }

    #[test]
    fn footer_kid_is_read_from_json_objects_only() {
        assert_eq!(kid(b"").unwrap(), None);
        assert_eq!(kid(b"opaque footer").unwrap(), None);
        assert_eq!(
            kid(br#"{"kid":"k4.pid.abc","x":[1,2]}"#)
                .unwrap()
                .as_ref()
                .map(KeyId::as_str),
            Some("k4.pid.abc")
        );
        assert_eq!(kid(br#"{"other":1}"#).unwrap(), None);
    }

    #[test]
    fn the_plain_footer_reads_as_the_json_parse_does() {
        // `{"kid":"…"}` is read without the parse; with a space after the colon the
        // same footer goes through the parse: both must agree, errors included.
        for id in [
            "k4.pid.abc",
            "k3.pid.abc",
            "k4.lid.abc",
            "my-key",
            "",
            "a\\u0041",
            "a\\\"b",
            "with space",
            "é",
            &"x".repeat(300),
        ] {
            let plain = format!(r#"{{"kid":"{id}"}}"#);
            let parsed = format!(r#"{{"kid": "{id}"}}"#);
            assert_eq!(
                format!("{:?}", kid(plain.as_bytes())),
                format!("{:?}", kid(parsed.as_bytes())),
                "{plain}"
            );
        }
        assert!(plain_kid(br#"{"kid":"k4.pid.abc"}"#).is_some());
        assert!(plain_kid(br#"{"kid":"a\"b"}"#).is_none());
        assert!(plain_kid(br#"{"kid":"k4.pid.abc","x":1}"#).is_none());
    }

    #[test]
    fn footer_shape_is_bounded() {
        assert!(matches!(
            kid(br#"{"a":{"b":{"c":1}}}"#),
            Err(Error::InvalidFooter(_))
        ));
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(matches!(
            kid(format!("{{\"a\":{deep}}}").as_bytes()),
            Err(Error::InvalidFooter(_))
        ));
        let wide: String = (0..17)
            .map(|i| format!("\"k{i}\":1"))
            .collect::<Vec<_>>()
            .join(",");
        assert!(matches!(
            kid(format!("{{{wide}}}").as_bytes()),
            Err(Error::InvalidFooter(_))
        ));
        // Brackets and colons inside strings do not count.
        assert_eq!(
            kid(br#"{"kid":"a","note":"{[:\"{{{{"}"#)
                .unwrap()
                .as_ref()
                .map(KeyId::as_str),
            Some("a")
        );
        assert!(matches!(kid(br#"{"kid":7}"#), Err(Error::InvalidFooter(_))));
        assert!(matches!(
            kid(br#"{"kid":"a b"}"#),
            Err(Error::InvalidFooter(_))
        ));
        assert!(matches!(kid(b"{not json"), Err(Error::InvalidFooter(_))));
    }

    /// A repeated member (the `kid` or any other) used to be accepted with the last
    /// value winning, and `"kid": null` read as "no kid".
    #[test]
    fn footers_are_read_strictly() {
        for footer in [
            &br#"{"kid":"k4.pid.a","kid":"k4.pid.b"}"#[..],
            br#"{"kid":"a","env":"prod","env":"test"}"#,
            br#"{"kid":"a","kid":"b"}"#,
            br#"{"kid":"a","x":{"y":1,"y":2}}"#,
        ] {
            assert_eq!(
                kid(footer).map_err(|e| e.to_string()),
                Err("invalid footer: a JSON member name appears more than once".to_owned()),
                "{}",
                String::from_utf8_lossy(footer)
            );
        }
        assert!(matches!(
            kid(br#"{"kid":null}"#),
            Err(Error::InvalidFooter("`kid` is not a string"))
        ));
        assert!(matches!(
            kid(b"[1]"),
            Err(Error::InvalidFooter(
                "a JSON footer must be an object, not an array"
            ))
        ));
        assert!(matches!(
            kid(br#"{"kid":"a"} x"#),
            Err(Error::InvalidFooter("not a JSON object"))
        ));
    }

    /// A footer that opens with JSON whitespace, or with an array, is still JSON to
    /// every other parser: it used to be read as opaque data, skipping the bounds and
    /// hiding its `kid`.
    #[test]
    fn json_footers_are_recognised_after_whitespace_and_as_arrays() {
        for footer in [
            &b" {\"a\":{\"b\":{\"c\":1}}}"[..],
            b"\n\t{\"a\":{\"b\":{\"c\":1}}}",
            b"[[[1]]]",
            b"\r\n[[[\"deep\"]]]",
        ] {
            assert!(
                matches!(
                    kid(footer),
                    Err(Error::InvalidFooter("JSON nested deeper than 2 levels"))
                ),
                "{:?}",
                String::from_utf8_lossy(footer)
            );
        }
        assert!(matches!(
            kid(b" {\"kid\":\"a\",\"kid\":\"b\"}"),
            Err(Error::InvalidFooter(
                "a JSON member name appears more than once"
            ))
        ));
        assert!(matches!(
            kid(b"  [1,2]"),
            Err(Error::InvalidFooter(
                "a JSON footer must be an object, not an array"
            ))
        ));
        assert_eq!(
            kid(b" {\"kid\":\"own-name\"} ")
                .unwrap()
                .as_ref()
                .map(KeyId::as_str),
            Some("own-name")
        );
        // Not JSON at all: opaque, whatever it contains further on.
        assert_eq!(kid(b"x {\"kid\":\"a\"}").unwrap(), None);
        assert_eq!(kid(b"\x00{").unwrap(), None);
        let long = vec![b'a'; MAX_FOOTER_LEN + 1];
        assert!(matches!(
            kid(&long),
            Err(Error::InvalidFooter("longer than 2048 bytes"))
        ));
    }

    #[test]
    fn paserk_kids_must_fit_the_version_and_purpose() {
        for (version, purpose, good, bad) in [
            (
                PasetoVersion::V4,
                PasetoPurpose::Public,
                "k4.pid.x",
                "k4.lid.x",
            ),
            (
                PasetoVersion::V4,
                PasetoPurpose::Local,
                "k4.lid.x",
                "k3.lid.x",
            ),
            (
                PasetoVersion::V3,
                PasetoPurpose::Public,
                "k3.pid.x",
                "k4.pid.x",
            ),
            (
                PasetoVersion::V3,
                PasetoPurpose::Local,
                "k3.lid.x",
                "k3.sid.x",
            ),
        ] {
            let footer = |id: &str| format!(r#"{{"kid":"{id}"}}"#).into_bytes();
            assert!(footer_kid(&footer(good), version, purpose).is_ok());
            assert!(matches!(
                footer_kid(&footer(bad), version, purpose),
                Err(Error::InvalidFooter(
                    "`kid` is not a key id of this version and purpose"
                ))
            ));
        }
        let own = KeyId::new("k4.pid.own").unwrap();
        let issue = |footer: &str| {
            check_issued_footer(
                footer.as_bytes(),
                PasetoVersion::V4,
                PasetoPurpose::Public,
                &own,
            )
        };
        issue(r#"{"kid":"k4.pid.own"}"#).unwrap();
        issue(r#"{"kid":"my-key-2024"}"#).unwrap();
        issue("opaque").unwrap();
        assert!(matches!(
            issue(r#"{"kid":"k4.pid.other"}"#),
            Err(Error::InvalidFooter(
                "`kid` is the PASERK id of another key"
            ))
        ));
    }
}
