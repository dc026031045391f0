//! Reading a token without verifying it, for inspection tools only.

use serde::de::DeserializeOwned;
use token_core::{Claims, NumericDate, TokenFormat};

use crate::b64;
use crate::error::{Error, Result};
use crate::header::{Header, split};

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
