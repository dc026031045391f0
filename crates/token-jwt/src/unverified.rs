//! Reading a token without verifying it, for inspection tools only.

use serde::de::DeserializeOwned;
use token_core::{Claims, NumericDate, TokenFormat};

use crate::b64;
use crate::error::{Error, Result};
use crate::header::{Header, MAX_HEADER_LEN, split};

/// The header and claims of a JWS whose signature was **not** checked.
///
/// Anyone can write anything here. Never make an access decision on it; use a
/// [`TokenVerifier`](token_core::TokenVerifier).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UntrustedJwt<T> {
    header: Header,
    claims: Claims<T>,
}

impl<T> UntrustedJwt<T> {
    /// The unverified header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The unverified claims.
    pub fn claims(&self) -> &Claims<T> {
        &self.claims
    }

    /// The unverified claims, by value.
    pub fn into_claims(self) -> Claims<T> {
        self.claims
    }
}

/// Decodes a JWS's header and claims **without verifying its signature**, for
/// inspection tools (a token debugger, a log scrubber). No policy is applied: `alg:
/// none` tokens decode too. The length and header bounds still apply.
///
/// # Errors
/// Shape and header errors as for verification; [`Error::MalformedToken`] for a payload
/// that is not base64url; claim parsing errors in [`Error::Core`].
pub fn dangerous_decode_unverified<T: DeserializeOwned>(token: &str) -> Result<UntrustedJwt<T>> {
    let [header_b64, payload_b64, _] = split::<3>(token, TokenFormat::Jws)?;
    let header = Header::parse(header_b64, TokenFormat::Jws)?;
    let payload =
        b64::decode(payload_b64).ok_or(Error::MalformedToken("payload is not base64url"))?;
    let claims = Claims::from_json::<NumericDate>(&payload)?;
    Ok(UntrustedJwt { header, claims })
}

/// Decodes the protected header of a JWS or JWE **without verifying anything**, with
/// every header rule verification applies before choosing a key (bounds, strict
/// reading, no JWE member in a JWS header), so an inspection tool refuses exactly the
/// headers verifiers refuse.
///
/// # Errors
/// [`Error::UnexpectedFormat`] for a token that is neither; shape and header errors as
/// for verification.
pub fn dangerous_decode_header(token: &str) -> Result<Header> {
    match split::<3>(token, TokenFormat::Jws) {
        Ok([h, _, _]) => Header::parse(h, TokenFormat::Jws),
        Err(Error::UnexpectedFormat {
            found: TokenFormat::Jwe,
            ..
        }) => {
            let [h, ..] = split::<5>(token, TokenFormat::Jwe)?;
            Header::parse(h, TokenFormat::Jwe)
        }
        Err(e) => Err(e),
    }
}

/// The segments of a compact JWS or JWE, base64url-decoded **without verifying or
/// decrypting anything**, for inspection tools.
///
/// Anyone can write anything here. Never make an access decision on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UntrustedParts {
    format: TokenFormat,
    header: Vec<u8>,
    payload: Option<Vec<u8>>,
    signature: Option<Vec<u8>>,
}

impl UntrustedParts {
    /// [`TokenFormat::Jws`] or [`TokenFormat::Jwe`], by the token's shape.
    pub fn format(&self) -> TokenFormat {
        self.format
    }

    /// The protected header's JSON text, decoded from base64url but not read: what an
    /// inspection tool shows.
    pub fn header_json(&self) -> &[u8] {
        &self.header
    }

    /// The protected header read by the parser every verifier and decrypter uses
    /// (strict, bounded, no JWE member in a JWS header), so a tool refuses exactly the
    /// headers verifiers refuse.
    ///
    /// # Errors
    /// [`Error::MalformedHeader`], [`Error::HeaderTooDeep`], [`Error::JwsJweConfusion`],
    /// an invalid `kid` in [`Error::Core`].
    pub fn header(&self) -> Result<Header> {
        Header::from_json(&self.header, self.format)
    }

    /// A JWS's payload (its claims, for a JWT), decoded; `None` for a JWE, whose
    /// payload is encrypted.
    pub fn payload(&self) -> Option<&[u8]> {
        self.payload.as_deref()
    }

    /// A JWS's signature bytes (empty for an unsigned token); `None` for a JWE.
    pub fn signature(&self) -> Option<&[u8]> {
        self.signature.as_deref()
    }
}

/// Splits a compact JWS or JWE and base64url-decodes its segments **without verifying
/// or decrypting anything**, for inspection tools. The token is read as verifiers read
/// it up to the header's JSON: the length bound, the compact serialization, the shape,
/// the number of segments, the header's length bound, and base64url in every segment.
/// No policy is applied (`alg: none` decodes), and the header is not read until
/// [`UntrustedParts::header`].
///
/// # Errors
/// [`token_core::Error::TokenTooLong`] and an unrecognized shape in [`Error::Core`];
/// [`Error::JsonSerialization`]; [`Error::UnexpectedFormat`] for a token that is
/// neither a JWS nor a JWE; [`Error::HeaderTooLarge`]; [`Error::MalformedHeader`] for a
/// header that is not base64url; [`Error::MalformedToken`] for a wrong number of
/// segments or another segment that is not base64url.
pub fn dangerous_decode_parts(token: &str) -> Result<UntrustedParts> {
    let decode =
        |segment: &str, what: &'static str| b64::decode(segment).ok_or(Error::MalformedToken(what));
    match split::<3>(token, TokenFormat::Jws) {
        Ok([header, payload, signature]) => Ok(UntrustedParts {
            format: TokenFormat::Jws,
            header: decode_header(header)?,
            payload: Some(decode(payload, "payload is not base64url")?),
            signature: Some(decode(signature, "signature is not base64url")?),
        }),
        Err(Error::UnexpectedFormat {
            found: TokenFormat::Jwe,
            ..
        }) => {
            let [header, rest @ ..] = split::<5>(token, TokenFormat::Jwe)?;
            let header = decode_header(header)?;
            for segment in rest {
                decode(segment, "a JWE segment is not base64url")?;
            }
            Ok(UntrustedParts {
                format: TokenFormat::Jwe,
                header,
                payload: None,
                signature: None,
            })
        }
        Err(e) => Err(e),
    }
}

/// The protected header segment's bytes, within the length bound.
fn decode_header(segment: &str) -> Result<Vec<u8>> {
    if segment.len() > MAX_HEADER_LEN {
        return Err(Error::HeaderTooLarge {
            len: segment.len(),
            max: MAX_HEADER_LEN,
        });
    }
    b64::decode(segment).ok_or_else(|| Error::MalformedHeader("not base64url".to_owned()))
}
