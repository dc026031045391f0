//! Parsing untrusted PASETO strings, and the bounded footer.
//!
//! Order of checks, before any key is touched: length bound, shape (via
//! [`TokenFormat::detect`]), version, purpose, footer size, footer JSON depth and width,
//! footer `kid`. Only then is a key looked up and the token authenticated.

use serde_json::{Map, Value};
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
    if token.len() > MAX_TOKEN_LEN {
        return Err(token_core::Error::TokenTooLong {
            len: token.len(),
            max: MAX_TOKEN_LEN,
        }
        .into());
    }
    match TokenFormat::detect(token) {
        Ok(TokenFormat::Paseto {
            version,
            purpose: found,
            ..
        }) => {
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
        }
        Ok(_) => return Err(Error::Malformed("not a PASETO token")),
        Err(token_core::Error::UnrecognizedFormat(why)) => return Err(Error::Malformed(why)),
        Err(e) => return Err(e.into()),
    }
    let header = match purpose {
        PasetoPurpose::Local => V::LOCAL_HEADER,
        PasetoPurpose::Public => V::PUBLIC_HEADER,
    };
    let rest = token
        .strip_prefix(header)
        .ok_or(Error::Malformed("header"))?;
    let (body, footer) = match rest.split_once('.') {
        Some((body, footer)) => {
            // Four base64 characters carry three bytes.
            if footer.len() > MAX_FOOTER_LEN.div_ceil(3) * 4 {
                return Err(Error::InvalidFooter("longer than 2048 bytes"));
            }
            (body, b64_decode(footer, "footer is not base64url")?)
        }
        None => (rest, Vec::new()),
    };
    Ok(Parsed {
        raw: token,
        body,
        footer,
    })
}

/// Checks nesting depth and top-level width of a JSON text without parsing it, so a
/// hostile footer costs one linear scan.
fn check_json_shape(json: &[u8]) -> Result<()> {
    let (mut depth, mut keys) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in json {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_FOOTER_DEPTH {
                    return Err(Error::InvalidFooter("JSON nested deeper than 2 levels"));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b':' if depth == 1 => {
                keys += 1;
                if keys > MAX_FOOTER_KEYS {
                    return Err(Error::InvalidFooter("JSON object with more than 16 keys"));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The footer's `kid`, if the footer is a JSON object that has one. A footer that does
/// not start with `{` is opaque data and names no key.
///
/// A JSON footer is read strictly ([`token_core::json`]): a member name repeated
/// anywhere in it is refused, and so is a `kid` that is not a string (`null`
/// included: it is not read as "no `kid`").
pub(crate) fn footer_kid(footer: &[u8]) -> Result<Option<String>> {
    if footer.first() != Some(&b'{') {
        return Ok(None);
    }
    check_json_shape(footer)?;
    let mut members: Map<String, Value> = token_core::json::from_slice(footer).map_err(|e| {
        Error::InvalidFooter(match e {
            token_core::Error::DuplicateMember(_) => "a JSON member name appears more than once",
            _ => "not a JSON object",
        })
    })?;
    match members.remove("kid") {
        None => Ok(None),
        Some(Value::String(kid)) => {
            KeyId::check(&kid).map_err(|_| Error::InvalidFooter("`kid` is not a valid key id"))?;
            Ok(Some(kid))
        }
        Some(_) => Err(Error::InvalidFooter("`kid` is not a string")),
    }
}

/// The footer an issuer writes: `{"kid":"<id>"}`.
pub(crate) fn kid_footer(kid: &KeyId) -> Vec<u8> {
    // A key id is visible ASCII without quotes or backslashes worth escaping; serde
    // escapes whatever needs it.
    serde_json::to_vec(&serde_json::json!({ "kid": kid.as_str() })).unwrap_or_default()
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

/// Picks the keys a token may be verified with, by its footer `kid`:
///
/// - a PASERK id (`k4.pid.…`) must be of the expected kind (`id_prefix`) and name a
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
    id_prefix: &str,
) -> Result<Candidates<'r, K>> {
    if let Some(expected) = options.footer {
        if expected != parsed.footer.as_slice() {
            return Err(Error::FooterMismatch);
        }
    }
    if let Some(kid) = footer_kid(&parsed.footer)? {
        let named = ring.iter().find(|(id, _, _)| id.as_str() == kid);
        if is_paserk_id(&kid) {
            if !kid.starts_with(id_prefix) {
                return Err(Error::InvalidFooter(
                    "`kid` is not a key id of this version and purpose",
                ));
            }
            // The ring's own id: the footer's was already checked by `footer_kid`, so
            // no second validation or parse on the verify path.
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

    #[test]
    fn footer_kid_is_read_from_json_objects_only() {
        assert_eq!(footer_kid(b"").unwrap(), None);
        assert_eq!(footer_kid(b"opaque footer").unwrap(), None);
        assert_eq!(
            footer_kid(br#"{"kid":"k4.pid.abc","x":[1,2]}"#)
                .unwrap()
                .as_deref(),
            Some("k4.pid.abc")
        );
        assert_eq!(footer_kid(br#"{"other":1}"#).unwrap(), None);
    }

    #[test]
    fn footer_shape_is_bounded() {
        assert!(matches!(
            footer_kid(br#"{"a":{"b":{"c":1}}}"#),
            Err(Error::InvalidFooter(_))
        ));
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(matches!(
            footer_kid(format!("{{\"a\":{deep}}}").as_bytes()),
            Err(Error::InvalidFooter(_))
        ));
        let wide: String = (0..17)
            .map(|i| format!("\"k{i}\":1"))
            .collect::<Vec<_>>()
            .join(",");
        assert!(matches!(
            footer_kid(format!("{{{wide}}}").as_bytes()),
            Err(Error::InvalidFooter(_))
        ));
        // Brackets and colons inside strings do not count.
        assert_eq!(
            footer_kid(br#"{"kid":"a","note":"{[:\"{{{{"}"#)
                .unwrap()
                .as_deref(),
            Some("a")
        );
        assert!(matches!(
            footer_kid(br#"{"kid":7}"#),
            Err(Error::InvalidFooter(_))
        ));
        assert!(matches!(
            footer_kid(br#"{"kid":"a b"}"#),
            Err(Error::InvalidFooter(_))
        ));
        assert!(matches!(
            footer_kid(b"{not json"),
            Err(Error::InvalidFooter(_))
        ));
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
                footer_kid(footer).map_err(|e| e.to_string()),
                Err("invalid footer: a JSON member name appears more than once".to_owned()),
                "{}",
                String::from_utf8_lossy(footer)
            );
        }
        assert!(matches!(
            footer_kid(br#"{"kid":null}"#),
            Err(Error::InvalidFooter("`kid` is not a string"))
        ));
        assert!(matches!(
            footer_kid(b"[1]"),
            Ok(None) // not an object: opaque data
        ));
        assert!(matches!(
            footer_kid(br#"{"kid":"a"} x"#),
            Err(Error::InvalidFooter("not a JSON object"))
        ));
    }
}
