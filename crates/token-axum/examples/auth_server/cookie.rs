//! The refresh-token cookie, from the library.

use super::{
    Duration, ExposeSecret, HeaderMap, HeaderValue, SameSite, SecretString, SessionCookie, header,
};

/// The refresh-token cookie, from the library: `__Host-refresh` (`Secure`, `Path=/`,
/// no `Domain`, `HttpOnly`, `SameSite=Strict`), or `refresh` without `Secure` under
/// `--insecure-cookies` (browsers refuse `__Host-` cookies that are not `Secure`),
/// kept as long as a refresh family lives.
pub(crate) struct RefreshCookie {
    pub(crate) cookie: SessionCookie,
    pub(crate) max_age: Duration,
}

impl RefreshCookie {
    pub(crate) fn new(secure: bool, max_age: Duration) -> anyhow::Result<Self> {
        Self::named("refresh", secure, max_age)
    }

    /// A cookie of the same make under another name (`__Host-fingerprint`).
    pub(crate) fn named(name: &str, secure: bool, max_age: Duration) -> anyhow::Result<Self> {
        let cookie = if secure {
            SessionCookie::with_name(name)?
        } else {
            SessionCookie::dangerous_insecure(name)?
        };
        Ok(Self {
            cookie: cookie.same_site(SameSite::Strict),
            max_age,
        })
    }

    #[allow(dead_code)] // read by the end-to-end tests
    pub(crate) fn name(&self) -> &str {
        self.cookie.name()
    }

    pub(crate) fn set(&self, token: &SecretString) -> Option<HeaderValue> {
        let value = self.cookie.set_cookie(token, Some(self.max_age));
        let mut header = HeaderValue::from_str(value.expose_secret()).ok()?;
        header.set_sensitive(true);
        Some(header)
    }

    pub(crate) fn clear(&self) -> Option<HeaderValue> {
        HeaderValue::from_str(&self.cookie.clear_cookie()).ok()
    }

    pub(crate) fn read<'a>(&self, headers: &'a HeaderMap) -> Option<&'a str> {
        value_of(&self.cookie, headers)
    }
}

/// The value of `cookie` in the request's `Cookie` headers.
pub(crate) fn value_of<'a>(cookie: &SessionCookie, headers: &'a HeaderMap) -> Option<&'a str> {
    cookie.read_all(
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    )
}
