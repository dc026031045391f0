//! Splitting compact serializations and reading protected headers, bounded and strict.
//!
//! Every rule about a header's shape is decided here, once, for verification,
//! decryption and the inspection decoders alike: at most [`MAX_HEADER_LEN`] base64url
//! characters; a JSON object nested at most [`MAX_HEADER_DEPTH`] levels (measured by
//! [`token_core::json::check_shape`] before anything is parsed); and a JWS header
//! carries no JWE member (`enc`, `zip`): a JWE header on a three-part token is JWS/JWE
//! confusion, refused whatever the key.
//!
//! The header is read strictly ([`token_core::json`]: a member name repeated anywhere
//! in it is an error), then into a fixed struct: `alg` (required), `kid`, `typ`, `cty`,
//! `crit`, and for JWE `enc` and `zip`. Members of the wrong type are errors, and so is
//! a member whose value is `null`: a member is absent or has a value, so `"crit": null`
//! is refused rather than read as "no `crit`". Every other member (`jku`, `x5u`, `x5c`,
//! `jwk`, `x5t`, …) is skipped unread: nothing here can fetch a URL or take a key from
//! the token.

use serde::Deserialize;
use serde_json::{Map, Value};
use token_core::{KeyId, MAX_TOKEN_LEN, TokenFormat};

use crate::algorithm::{TokenType, media_type_eq};
use crate::b64;
use crate::error::{Error, Result, echo};

/// The longest protected header read, in base64url characters.
pub const MAX_HEADER_LEN: usize = 8 * 1024;

/// The deepest nesting accepted in a protected header: the header object is depth 1, a
/// member's object or array depth 2. Four levels hold the deepest standard member, an
/// embedded RSA `jwk` with its `oth` array of objects (header, `jwk`, `oth`, entry).
pub const MAX_HEADER_DEPTH: usize = 4;

/// Members only a JWE header has (RFC 7516 section 4.1).
const JWE_ONLY_MEMBERS: [&str; 2] = ["enc", "zip"];

/// A protected header, parsed but not trusted.
///
/// Returned by [`dangerous_decode_unverified`](crate::dangerous_decode_unverified) and
/// [`dangerous_decode_header`](crate::dangerous_decode_header) for inspection, and by the
/// [`hazmat`](crate::hazmat) functions after verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    alg: String,
    kid: Option<KeyId>,
    typ: Option<String>,
    cty: Option<String>,
    crit: Option<Vec<String>>,
    enc: Option<String>,
    zip: Option<String>,
}

/// The wire form. Members not named here are skipped.
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    cty: Option<String>,
    #[serde(default)]
    crit: Option<Vec<String>>,
    #[serde(default)]
    enc: Option<String>,
    #[serde(default)]
    zip: Option<String>,
}

impl Header {
    /// `alg`, as written in the token.
    pub fn alg(&self) -> &str {
        &self.alg
    }

    /// `kid`, if present (already checked to be a valid [`KeyId`]).
    pub fn kid(&self) -> Option<&KeyId> {
        self.kid.as_ref()
    }

    /// `typ`, if present.
    pub fn typ(&self) -> Option<&str> {
        self.typ.as_deref()
    }

    /// `cty`, if present.
    pub fn cty(&self) -> Option<&str> {
        self.cty.as_deref()
    }

    /// `crit`, if present.
    pub fn crit(&self) -> Option<&[String]> {
        self.crit.as_deref()
    }

    /// `enc` (JWE), if present.
    pub fn enc(&self) -> Option<&str> {
        self.enc.as_deref()
    }

    /// `zip` (JWE), if present.
    pub fn zip(&self) -> Option<&str> {
        self.zip.as_deref()
    }

    /// Decodes and parses the protected header segment of a token of `format` (a JWS or
    /// a JWE, by shape).
    pub(crate) fn parse(segment: &str, format: TokenFormat) -> Result<Self> {
        if segment.len() > MAX_HEADER_LEN {
            return Err(Error::HeaderTooLarge {
                len: segment.len(),
                max: MAX_HEADER_LEN,
            });
        }
        let json = b64::decode(segment)
            .ok_or_else(|| Error::MalformedHeader("not base64url".to_owned()))?;
        Self::from_json(&json, format)
    }

    /// Parses a decoded protected header of a token of `format`: the rules of
    /// [`Header::parse`] after the length bound and base64url.
    pub(crate) fn from_json(json: &[u8], format: TokenFormat) -> Result<Self> {
        // A derived `Deserialize` also takes a JSON array; a header is an object.
        if json.trim_ascii_start().first() != Some(&b'{') {
            return Err(Error::MalformedHeader("not a JSON object".to_owned()));
        }
        token_core::json::check_shape(json, MAX_HEADER_DEPTH, usize::MAX).map_err(|_| {
            Error::HeaderTooDeep {
                max: MAX_HEADER_DEPTH,
            }
        })?;
        let members: Map<String, Value> =
            token_core::json::from_slice(json).map_err(|e| match e {
                token_core::Error::DuplicateMember(name) => {
                    Error::MalformedHeader(format!("member `{name}` appears more than once"))
                }
                other => Error::MalformedHeader(echo(&other.to_string())),
            })?;
        if let Some((name, _)) = members.iter().find(|(_, value)| value.is_null()) {
            return Err(Error::MalformedHeader(format!(
                "member `{}` is null; a header member is either absent or has a value",
                echo(name)
            )));
        }
        if format == TokenFormat::Jws {
            if let Some(member) = JWE_ONLY_MEMBERS
                .into_iter()
                .find(|m| members.contains_key(*m))
            {
                return Err(Error::JwsJweConfusion(member));
            }
        }
        let raw = RawHeader::deserialize(Value::Object(members))
            .map_err(|e| Error::MalformedHeader(echo(&e.to_string())))?;
        let kid = raw.kid.map(KeyId::new).transpose()?;
        Ok(Self {
            alg: raw.alg,
            kid,
            typ: raw.typ,
            cty: raw.cty,
            crit: raw.crit,
            enc: raw.enc,
            zip: raw.zip,
        })
    }

    /// The checks every verifier and decrypter applies first: no `alg: none` in any
    /// spelling, and no `crit` (this crate implements no critical extension).
    pub(crate) fn check_common(&self) -> Result<()> {
        if self.alg.eq_ignore_ascii_case("none") {
            return Err(Error::UnsecuredJwt);
        }
        match self.crit.as_deref() {
            None => Ok(()),
            Some([]) => Err(Error::MalformedHeader(
                "`crit` must not be empty (RFC 7515 section 4.1.11)".to_owned(),
            )),
            Some([first, ..]) => Err(Error::UnsupportedCritical(echo(first))),
        }
    }

    /// `alg` must be the key's algorithm.
    pub(crate) fn check_alg(&self, expected: &'static str) -> Result<()> {
        if self.alg == expected {
            Ok(())
        } else {
            Err(Error::AlgorithmNotAllowed {
                expected,
                found: echo(&self.alg),
            })
        }
    }

    /// `typ` against the verifier's policy: `None` accepts an absent `typ` or `JWT`.
    pub(crate) fn check_typ(&self, expected: Option<&TokenType>) -> Result<()> {
        let ok = match (expected, self.typ.as_deref()) {
            (None, None) => true,
            (None, Some(t)) => TokenType::Jwt.matches(t),
            (Some(want), Some(t)) => want.matches(t),
            (Some(_), None) => false,
        };
        if ok {
            Ok(())
        } else {
            Err(Error::TokenTypeMismatch {
                expected: expected.unwrap_or(&TokenType::Jwt).as_str().to_owned(),
                found: self.typ.as_deref().map(echo),
            })
        }
    }

    /// `cty`: `Some("JWT")` demands a nested JWT, `None` demands no `cty` other than a
    /// generic JSON one.
    pub(crate) fn check_cty(&self, expected: Option<&'static str>) -> Result<()> {
        let ok = match (expected, self.cty.as_deref()) {
            (Some(want), Some(c)) => media_type_eq(c, want),
            (Some(_), None) => false,
            (None, None) => true,
            (None, Some(c)) => media_type_eq(c, "json"),
        };
        if ok {
            Ok(())
        } else {
            Err(Error::ContentTypeMismatch {
                expected,
                found: self.cty.as_deref().map(echo),
            })
        }
    }
}

/// Splits `token` into its `N` compact segments after checking, in this order: the
/// length bound, the JSON serialization, and the format (by shape, with
/// [`TokenFormat::detect`]).
pub(crate) fn split<const N: usize>(token: &str, expected: TokenFormat) -> Result<[&str; N]> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(token_core::Error::TokenTooLong {
            len: token.len(),
            max: MAX_TOKEN_LEN,
        }
        .into());
    }
    if token.trim_start().starts_with('{') {
        return Err(Error::JsonSerialization);
    }
    let found = TokenFormat::detect(token)?;
    if found != expected {
        return Err(Error::UnexpectedFormat { expected, found });
    }
    let mut parts = [""; N];
    let mut n = 0;
    for part in token.split('.') {
        let slot = parts
            .get_mut(n)
            .ok_or(Error::MalformedToken("wrong number of segments"))?;
        *slot = part;
        n += 1;
    }
    if n == N {
        Ok(parts)
    } else {
        Err(Error::MalformedToken("wrong number of segments"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(json: &str) -> Result<Header> {
        Header::parse(&b64::encode(json), TokenFormat::Jws)
    }

    #[test]
    fn reads_the_known_members_and_skips_the_rest() {
        let h = header(
            r#"{"alg":"ES256","kid":"k1","typ":"JWT","jku":"https://evil.example/jwks",
                "jwk":{"kty":"EC"},"x5c":["AAAA"],"x5u":"https://evil.example/c"}"#,
        )
        .unwrap();
        assert_eq!(h.alg(), "ES256");
        assert_eq!(h.kid().map(KeyId::as_str), Some("k1"));
        assert_eq!(h.typ(), Some("JWT"));
        assert_eq!(h.cty(), None);
        h.check_common().unwrap();
    }

    #[test]
    fn refuses_malformed_headers() {
        for bad in [
            r#"{"kid":"k"}"#,
            r#"{"alg":5}"#,
            r#"{"alg":null}"#,
            r#"{"alg":"ES256","alg":"none"}"#,
            r#"{"alg":"ES256","kid":7}"#,
            r#"{"alg":"ES256","crit":"b64"}"#,
            r#"{"alg":"ES256","crit":null}"#,
            r#"{"alg":"ES256","kid":null}"#,
            r#"{"alg":"ES256","typ":null}"#,
            r#"{"alg":"ES256","cty":null}"#,
            r#"{"alg":"ES256","enc":null}"#,
            r#"{"alg":"ES256","zip":null}"#,
            r#"{"alg":"ES256","jku":null}"#,
            r#"{"alg":"ES256","jku":"a","jku":"b"}"#,
            r#"{"alg":"ES256","x5c":[{"a":1,"a":2}]}"#,
            r#"{"alg":"ES256","k\u0069d":"a","kid":"b"}"#,
            r#"["alg"]"#,
            "not json",
        ] {
            assert!(
                matches!(header(bad), Err(Error::MalformedHeader(_))),
                "{bad}: {:?}",
                header(bad)
            );
        }
        assert_eq!(
            Header::parse("eyJhbGciOiJFUzI1NiJ9==", TokenFormat::Jws),
            Err(Error::MalformedHeader("not base64url".into()))
        );
        assert!(matches!(
            header(r#"{"alg":"ES256","kid":"a b"}"#),
            Err(Error::Core(token_core::Error::InvalidKeyId(_)))
        ));
        let long = "a".repeat(MAX_HEADER_LEN + 1);
        assert_eq!(
            Header::parse(&long, TokenFormat::Jws),
            Err(Error::HeaderTooLarge {
                len: MAX_HEADER_LEN + 1,
                max: MAX_HEADER_LEN
            })
        );
    }

    #[test]
    fn none_in_any_case_and_crit_are_refused() {
        for alg in ["none", "None", "NONE", "nOnE"] {
            let h = header(&format!(r#"{{"alg":"{alg}"}}"#)).unwrap();
            assert_eq!(h.check_common(), Err(Error::UnsecuredJwt));
        }
        let h = header(r#"{"alg":"HS256","b64":false,"crit":["b64"]}"#).unwrap();
        assert_eq!(
            h.check_common(),
            Err(Error::UnsupportedCritical("b64".into()))
        );
        let h = header(r#"{"alg":"HS256","crit":[]}"#).unwrap();
        assert!(matches!(h.check_common(), Err(Error::MalformedHeader(_))));
    }

    #[test]
    fn typ_policy() {
        let none = header(r#"{"alg":"ES256"}"#).unwrap();
        let jwt = header(r#"{"alg":"ES256","typ":"JWT"}"#).unwrap();
        let at = header(r#"{"alg":"ES256","typ":"at+jwt"}"#).unwrap();
        assert!(none.check_typ(None).is_ok());
        assert!(jwt.check_typ(None).is_ok());
        assert_eq!(
            at.check_typ(None),
            Err(Error::TokenTypeMismatch {
                expected: "JWT".into(),
                found: Some("at+jwt".into())
            })
        );
        assert!(at.check_typ(Some(&TokenType::AccessToken)).is_ok());
        assert_eq!(
            none.check_typ(Some(&TokenType::AccessToken)),
            Err(Error::TokenTypeMismatch {
                expected: "at+jwt".into(),
                found: None
            })
        );
        assert!(jwt.check_typ(Some(&TokenType::AccessToken)).is_err());
        assert!(none.check_typ(Some(&TokenType::Jwt)).is_err());
    }

    #[test]
    fn split_routes_by_shape() {
        let jws = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln";
        assert_eq!(split::<3>(jws, TokenFormat::Jws).unwrap()[2], "c2ln");
        let jwe = "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..aXY.Y3Q.dGFn";
        assert_eq!(
            split::<3>(jwe, TokenFormat::Jws),
            Err(Error::UnexpectedFormat {
                expected: TokenFormat::Jws,
                found: TokenFormat::Jwe
            })
        );
        assert_eq!(
            split::<5>(jws, TokenFormat::Jwe),
            Err(Error::UnexpectedFormat {
                expected: TokenFormat::Jwe,
                found: TokenFormat::Jws
            })
        );
        assert_eq!(
            split::<3>(r#"{"payload":"x"}"#, TokenFormat::Jws),
            Err(Error::JsonSerialization)
        );
        assert!(matches!(
            split::<3>("a.b", TokenFormat::Jws),
            Err(Error::Core(token_core::Error::UnrecognizedFormat(_)))
        ));
        let huge = "a".repeat(MAX_TOKEN_LEN + 1);
        assert!(matches!(
            split::<3>(&huge, TokenFormat::Jws),
            Err(Error::Core(token_core::Error::TokenTooLong { .. }))
        ));
    }

    /// A JWS header nested deeper than the bound, or carrying a JWE member, used to be
    /// read (up to serde's recursion limit, and whatever the members): one rule, here.
    #[test]
    fn depth_and_jwe_members_are_decided_by_the_parser() {
        let nested = |depth: usize| {
            format!(
                r#"{{"alg":"ES256","x":{}1{}}}"#,
                "[".repeat(depth),
                "]".repeat(depth)
            )
        };
        assert!(header(&nested(MAX_HEADER_DEPTH - 1)).is_ok());
        for depth in [MAX_HEADER_DEPTH, 100, 127, 128, 3000] {
            assert_eq!(
                header(&nested(depth)),
                Err(Error::HeaderTooDeep {
                    max: MAX_HEADER_DEPTH
                }),
                "{depth}"
            );
        }
        // An embedded JWK with `oth` (the deepest standard member) fits.
        assert!(header(r#"{"alg":"RS256","jwk":{"kty":"RSA","oth":[{"r":"AQ"}]}}"#).is_ok());
        for (json, member) in [
            (r#"{"alg":"ES256","enc":"A256GCM"}"#, "enc"),
            (r#"{"alg":"ES256","zip":"DEF"}"#, "zip"),
        ] {
            assert_eq!(header(json), Err(Error::JwsJweConfusion(member)));
            // The same members are a JWE's own.
            assert!(Header::parse(&b64::encode(json), TokenFormat::Jwe).is_ok());
        }
        assert_eq!(
            Error::JwsJweConfusion("enc").to_string(),
            "a JWS header carrying the JWE member `enc` (JWS/JWE confusion)"
        );
    }
}
