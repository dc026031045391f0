//! Reading a PASETO token without verifying it, for inspection tools only.

use serde::de::DeserializeOwned;
use token_core::{Claims, KeyId, PasetoPurpose, PasetoVersion, Rfc3339};

use crate::encoding::b64_decode;
use crate::error::{Error, Result};
use crate::token::{detect, footer_kid, split};

/// The parts of a PASETO token whose signature was **not** checked and whose payload
/// was **not** decrypted.
///
/// Anyone can write anything here. Never make an access decision on it; use a
/// verifier ([`PublicVerifier`](crate::PublicVerifier),
/// [`LocalCipher`](crate::LocalCipher)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UntrustedParts {
    version: PasetoVersion,
    purpose: PasetoPurpose,
    payload: Option<Vec<u8>>,
    footer: Option<Vec<u8>>,
}

impl UntrustedParts {
    /// The version, as the token's header says (`v1` and `v2` included).
    pub fn version(&self) -> PasetoVersion {
        self.version
    }

    /// The purpose, as the token's header says.
    pub fn purpose(&self) -> PasetoPurpose {
        self.purpose
    }

    /// The signed message of a `public` token (its claims, normally), without the
    /// signature; `None` for a `local` token, whose payload is encrypted.
    pub fn payload(&self) -> Option<&[u8]> {
        self.payload.as_deref()
    }

    /// The decoded footer, when the token has one (at most
    /// [`MAX_FOOTER_LEN`](crate::MAX_FOOTER_LEN) bytes; not read further).
    pub fn footer(&self) -> Option<&[u8]> {
        self.footer.as_deref()
    }

    /// The footer read as every verifier reads it ([`footer_kid`]): the key id it
    /// names, if any. A token without a footer names none.
    ///
    /// # Errors
    /// [`Error::InvalidFooter`], as a verifier would refuse the footer.
    pub fn footer_kid(&self) -> Result<Option<KeyId>> {
        match &self.footer {
            Some(footer) => footer_kid(footer, self.version, self.purpose),
            None => Ok(None),
        }
    }

    /// The payload of a `public` token read as claims, as a verifier reads them after
    /// the signature (strictly, time claims in RFC 3339) — but unverified.
    ///
    /// # Errors
    /// [`Error::Malformed`] for a `local` token; claim parsing errors in
    /// [`Error::Core`].
    pub fn claims<T: DeserializeOwned>(&self) -> Result<Claims<T>> {
        let payload = self
            .payload
            .as_deref()
            .ok_or(Error::Malformed("a local token's payload is encrypted"))?;
        Ok(Claims::from_json::<Rfc3339>(payload)?)
    }
}

/// The signature length of `public` tokens of `version`.
const fn signature_len(version: PasetoVersion) -> usize {
    match version {
        PasetoVersion::V1 => 256,
        PasetoVersion::V3 => 96,
        PasetoVersion::V2 | PasetoVersion::V4 => 64,
    }
}

/// Splits and decodes a PASETO token of any version and purpose **without verifying
/// or decrypting anything**, for inspection tools (a token debugger, a linter). It
/// reads the token as the verifiers do, up to the point where they need a key: the
/// length bound, the shape, the header, the footer's size bound and base64url, the
/// payload's base64url and, for `public` tokens, the signature's length. The footer's
/// JSON is not read ([`UntrustedParts::footer_kid`] reads it as verifiers do), nor are
/// the claims ([`UntrustedParts::claims`]).
///
/// # Errors
/// [`token_core::Error::TokenTooLong`] in [`Error::Core`]; [`Error::Malformed`] for a
/// string that is not a PASETO token, or whose payload or footer is not base64url, or
/// whose `public` payload is shorter than a signature; [`Error::InvalidFooter`] for a
/// footer over the length bound.
pub fn dangerous_decode_parts(token: &str) -> Result<UntrustedParts> {
    let (version, purpose) = detect(token)?;
    let (body, footer) = split(token, version, purpose)?;
    let payload = match purpose {
        PasetoPurpose::Local => None,
        PasetoPurpose::Public => {
            let mut signed = b64_decode(body, "payload is not base64url")?;
            let len = signed
                .len()
                .checked_sub(signature_len(version))
                .ok_or(Error::Malformed("payload is shorter than a signature"))?;
            signed.truncate(len);
            Some(signed)
        }
    };
    Ok(UntrustedParts {
        version,
        purpose,
        payload,
        footer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LocalKey, SecretKey, V3, V4};

    #[test]
    fn public_tokens_decode_to_their_message_and_footer() {
        let key = SecretKey::<V4>::generate().unwrap();
        let token = key
            .sign_raw(br#"{"sub":"alice"}"#, br#"{"kid":"issuer-1"}"#, b"")
            .unwrap();
        let parts = dangerous_decode_parts(secrecy::ExposeSecret::expose_secret(&token)).unwrap();
        assert_eq!(parts.version(), PasetoVersion::V4);
        assert_eq!(parts.purpose(), PasetoPurpose::Public);
        assert_eq!(parts.payload(), Some(&br#"{"sub":"alice"}"#[..]));
        assert_eq!(parts.footer(), Some(&br#"{"kid":"issuer-1"}"#[..]));
        assert_eq!(
            parts
                .footer_kid()
                .unwrap()
                .map(|k| k.to_string())
                .as_deref(),
            Some("issuer-1")
        );
        let claims = parts.claims::<serde_json::Value>().unwrap();
        assert_eq!(claims.sub.as_deref(), Some("alice"));

        let v3 = SecretKey::<V3>::generate().unwrap();
        let token = v3.sign_raw(b"{}", b"", b"").unwrap();
        let parts = dangerous_decode_parts(secrecy::ExposeSecret::expose_secret(&token)).unwrap();
        assert_eq!(parts.payload(), Some(&b"{}"[..]));
        assert_eq!(parts.footer(), None);
    }

    #[test]
    fn local_payloads_stay_encrypted_and_old_versions_decode() {
        let key = LocalKey::<V4>::generate().unwrap();
        let token = key.encrypt_raw(b"{}", b"f", b"").unwrap();
        let parts = dangerous_decode_parts(secrecy::ExposeSecret::expose_secret(&token)).unwrap();
        assert_eq!(parts.purpose(), PasetoPurpose::Local);
        assert_eq!(parts.payload(), None);
        assert_eq!(parts.footer(), Some(&b"f"[..]));
        assert!(matches!(
            parts.claims::<serde_json::Value>(),
            Err(Error::Malformed(_))
        ));
        // v2 and v1 are read (never verified here): an inspector reports them.
        let body = b64(&[b"{}".as_slice(), &[0u8; 64]].concat());
        let parts = dangerous_decode_parts(&format!("v2.public.{body}")).unwrap();
        assert_eq!(parts.version(), PasetoVersion::V2);
        assert_eq!(parts.payload(), Some(&b"{}"[..]));
    }

    #[test]
    fn malformed_tokens_are_refused_as_verifiers_refuse_them() {
        let short = b64(&[1u8; 10]);
        assert_eq!(
            dangerous_decode_parts(&format!("v4.public.{short}"))
                .unwrap_err()
                .to_string(),
            "malformed token: payload is shorter than a signature"
        );
        let body = b64(&[1u8; 70]);
        // One base64url character carries no whole byte.
        assert_eq!(
            dangerous_decode_parts(&format!("v4.public.{body}.A"))
                .unwrap_err()
                .to_string(),
            "malformed token: footer is not base64url"
        );
        assert!(matches!(
            dangerous_decode_parts(&format!("v4.public.{body}.!!")),
            Err(Error::Malformed(_))
        ));
        let long = "A".repeat(3000);
        assert!(matches!(
            dangerous_decode_parts(&format!("v4.public.{body}.{long}")),
            Err(Error::InvalidFooter(_))
        ));
        assert!(matches!(
            dangerous_decode_parts("eyJhbGciOiJFUzI1NiJ9.e30.c2ln"),
            Err(Error::Malformed(_))
        ));
    }

    fn b64(bytes: &[u8]) -> String {
        crate::encoding::b64_encode(bytes)
    }
}
