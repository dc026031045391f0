//! Cross-site request forgery defences for cookie-authenticated pages.
//!
//! Browsers attach cookies on their own, so a form on another site can make a signed-in
//! user's browser post to this one. Three defences, each enough against today's
//! browsers, together robust when one is missing (an old browser, a cookie set without
//! `SameSite`, a sub-domain taken over):
//!
//! 1. `SameSite` cookies ([`token_opaque::SessionCookie`]): a cross-site post carries
//!    no session.
//! 2. [`SameOrigin`]: the request's `Sec-Fetch-Site` and `Origin` headers, which a page
//!    cannot set, must name this service's own origin. A request with neither is
//!    refused: every browser in use sends `Origin` on a `POST`.
//! 3. A per-session token in every form ([`CsrfToken`]), compared in constant time: a
//!    same-site page on another origin (another port, a sibling sub-domain) passes the
//!    cookie rule but cannot read the token.
//!
//! ```
//! use axum::http::{HeaderMap, HeaderValue};
//! use token_axum::csrf::{CrossSite, CsrfToken, SameOrigin};
//!
//! let origin = SameOrigin::new(["https://auth.example.com"])?;
//! let mut headers = HeaderMap::new();
//! headers.insert("origin", HeaderValue::from_static("https://evil.example"));
//! assert_eq!(origin.check(&headers), Err(CrossSite::ForeignOrigin));
//! headers.insert("origin", HeaderValue::from_static("https://auth.example.com"));
//! assert_eq!(origin.check(&headers), Ok(()));
//!
//! let token = CsrfToken::generate()?;
//! assert!(token.matches(token.as_str()));
//! assert!(!token.matches("forged"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use axum::http::HeaderMap;
use axum::http::header::ORIGIN;

/// `Sec-Fetch-Site` (Fetch Metadata).
const SEC_FETCH_SITE: &str = "sec-fetch-site";

/// Why a state-changing request was refused as cross-site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CrossSite {
    /// `Sec-Fetch-Site` says another site or origin made the request.
    #[error("the request came from another site or origin (Sec-Fetch-Site)")]
    FetchMetadata,
    /// `Origin` names an origin this service does not serve (or is `null`).
    #[error("the request's Origin is not this service's")]
    ForeignOrigin,
    /// Neither `Origin` nor `Sec-Fetch-Site`: the request's origin cannot be told.
    #[error("the request names no origin (Origin or Sec-Fetch-Site)")]
    NoOrigin,
    /// The form's CSRF token is missing or is not the session's.
    #[error("the form's CSRF token is missing or not this session's")]
    Token,
}

/// A bad origin given to [`SameOrigin::new`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin:?} is not an origin (scheme://host[:port], nothing after)")]
#[non_exhaustive]
pub struct InvalidOrigin {
    /// What was given.
    pub origin: String,
}

/// The origin rule: a state-changing request must come from one of these origins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SameOrigin {
    origins: Vec<String>,
}

impl SameOrigin {
    /// The service's own origins, as browsers write them in `Origin`
    /// (`https://auth.example.com`, `http://localhost:8080`): lower-case scheme and host,
    /// the port only when it is not the scheme's default, no path.
    ///
    /// # Errors
    /// [`InvalidOrigin`] for anything else (a trailing `/`, a path, no scheme, none given).
    pub fn new<I, S>(origins: I) -> Result<Self, InvalidOrigin>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut list = Vec::new();
        for origin in origins {
            let origin = origin.as_ref();
            let invalid = || InvalidOrigin {
                origin: origin.to_owned(),
            };
            let rest = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"))
                .ok_or_else(invalid)?;
            let host_ok = !rest.is_empty()
                && rest.bytes().all(|b| {
                    b.is_ascii_lowercase()
                        || b.is_ascii_digit()
                        || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                });
            if !host_ok {
                return Err(invalid());
            }
            list.push(origin.to_owned());
        }
        if list.is_empty() {
            return Err(InvalidOrigin {
                origin: String::new(),
            });
        }
        Ok(Self { origins: list })
    }

    /// The origins allowed.
    pub fn origins(&self) -> &[String] {
        &self.origins
    }

    /// Checks a state-changing request's headers: `Sec-Fetch-Site`, when sent, must be
    /// `same-origin` (or `none`: the user's own navigation); `Origin`, when sent, must be
    /// one of the service's; and at least one of the two must be there.
    ///
    /// # Errors
    /// The [`CrossSite`] reason.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), CrossSite> {
        let fetch_site = headers.get(SEC_FETCH_SITE);
        if let Some(site) = fetch_site {
            if !matches!(site.as_bytes(), b"same-origin" | b"none") {
                return Err(CrossSite::FetchMetadata);
            }
        }
        match headers.get(ORIGIN) {
            Some(origin) => {
                let origin = origin.as_bytes();
                if self.origins.iter().any(|o| o.as_bytes() == origin) {
                    Ok(())
                } else {
                    Err(CrossSite::ForeignOrigin)
                }
            }
            None if fetch_site.is_some() => Ok(()),
            None => Err(CrossSite::NoOrigin),
        }
    }
}

/// A per-session CSRF token: 256 random bits, in hex. Keep it with the session
/// (server side), put it in each form, and compare what a form sends back with
/// [`CsrfToken::matches`].
#[derive(Clone, PartialEq, Eq)]
pub struct CsrfToken(String);

impl fmt::Debug for CsrfToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CsrfToken(..)")
    }
}

/// No randomness from the operating system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the operating system's random number generator failed")]
#[non_exhaustive]
pub struct NoRandomness;

impl CsrfToken {
    /// A new random token.
    ///
    /// # Errors
    /// [`NoRandomness`].
    pub fn generate() -> Result<Self, NoRandomness> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|_| NoRandomness)?;
        Ok(Self(bytes.iter().fold(
            String::with_capacity(64),
            |mut hex, b| {
                use std::fmt::Write as _;
                let _ = write!(hex, "{b:02x}");
                hex
            },
        )))
    }

    /// A token kept earlier (from the session's data).
    pub fn from_stored(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token, for the form and for the session's data.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `given` (a form's field) is this token, compared in constant time. An
    /// empty token matches nothing.
    pub fn matches(&self, given: &str) -> bool {
        !self.0.is_empty() && token_core::constant_time_eq(self.0.as_bytes(), given.as_bytes())
    }

    /// [`CsrfToken::matches`] as a `Result`.
    ///
    /// # Errors
    /// [`CrossSite::Token`].
    pub fn check(&self, given: Option<&str>) -> Result<(), CrossSite> {
        if given.is_some_and(|g| self.matches(g)) {
            Ok(())
        } else {
            Err(CrossSite::Token)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn origins_are_checked_by_origin_and_fetch_metadata() {
        let rule = SameOrigin::new(["http://localhost:8080"]).unwrap();
        let ok = |pairs| rule.check(&headers(pairs));
        assert_eq!(ok(&[("origin", "http://localhost:8080")]), Ok(()));
        assert_eq!(
            ok(&[
                ("origin", "http://localhost:8080"),
                ("sec-fetch-site", "same-origin")
            ]),
            Ok(())
        );
        assert_eq!(ok(&[("sec-fetch-site", "same-origin")]), Ok(()));
        // Another port is another origin, though the same site.
        assert_eq!(
            ok(&[("origin", "http://localhost:9090")]),
            Err(CrossSite::ForeignOrigin)
        );
        assert_eq!(ok(&[("origin", "null")]), Err(CrossSite::ForeignOrigin));
        assert_eq!(
            ok(&[
                ("origin", "http://localhost:8080"),
                ("sec-fetch-site", "same-site")
            ]),
            Err(CrossSite::FetchMetadata)
        );
        assert_eq!(
            ok(&[("sec-fetch-site", "cross-site")]),
            Err(CrossSite::FetchMetadata)
        );
        assert_eq!(ok(&[]), Err(CrossSite::NoOrigin));
    }

    #[test]
    fn only_bare_origins_are_configured() {
        for bad in [
            "localhost:8080",
            "http://localhost:8080/",
            "https://A.example",
            "https://",
            "ftp://x",
        ] {
            assert!(SameOrigin::new([bad]).is_err(), "{bad}");
        }
        assert!(SameOrigin::new(Vec::<String>::new()).is_err());
        assert!(SameOrigin::new(["https://auth.example.com", "http://[::1]:8080"]).is_ok());
    }

    #[test]
    fn tokens_are_random_and_compared_whole() {
        let a = CsrfToken::generate().unwrap();
        let b = CsrfToken::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 64);
        assert!(a.as_str().bytes().all(|c| c.is_ascii_hexdigit()));
        assert!(a.matches(a.as_str()));
        assert!(!a.matches(b.as_str()));
        assert!(!a.matches(&a.as_str()[..63]));
        assert!(!CsrfToken::from_stored("").matches(""));
        assert_eq!(a.check(None), Err(CrossSite::Token));
        assert_eq!(a.check(Some(a.as_str())), Ok(()));
        assert_eq!(format!("{a:?}"), "CsrfToken(..)");
    }
}
