//! The `Set-Cookie` value for a session id, with safe attributes.
//!
//! - `__Host-` name prefix: the browser accepts the cookie only if it is `Secure`,
//!   has `Path=/` and no `Domain`, so a sibling subdomain or a plain-HTTP response
//!   cannot set or shadow it.
//! - `HttpOnly`: scripts cannot read it (an XSS cannot steal the session id).
//! - `Secure`: sent over HTTPS only.
//! - `SameSite=Lax` by default (`Strict` for sensitive apps; `None` only for
//!   cross-site embedding, and then CSRF protection is the application's job).

use std::fmt::{self, Write as _};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::error::{Error, Result};

/// The `SameSite` attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SameSite {
    /// Never sent on cross-site requests.
    Strict,
    /// Sent on top-level cross-site navigations (links), not on subresources or
    /// cross-site POSTs. The default.
    #[default]
    Lax,
    /// Always sent (requires `Secure`, which is always set here).
    None,
}

impl fmt::Display for SameSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Strict => "Strict",
            Self::Lax => "Lax",
            Self::None => "None",
        })
    }
}

/// Builds `Set-Cookie` values for a session id.
///
/// ```
/// use secrecy::{ExposeSecret, SecretString};
/// use std::time::Duration;
/// use token_opaque::{SameSite, SessionCookie};
///
/// let cookie = SessionCookie::default().same_site(SameSite::Strict);
/// let id = SecretString::from("ses_example");
/// let header = cookie.set_cookie(&id, Some(Duration::from_secs(3600)));
/// assert_eq!(
///     header.expose_secret(),
///     "__Host-session=ses_example; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=3600"
/// );
/// assert_eq!(cookie.read("a=1; __Host-session=ses_example"), Some("ses_example"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionCookie {
    name: String,
    same_site: SameSite,
    secure: bool,
}

impl Default for SessionCookie {
    fn default() -> Self {
        Self {
            name: "__Host-session".to_owned(),
            same_site: SameSite::Lax,
            secure: true,
        }
    }
}

/// RFC 6265 `token` characters.
fn is_cookie_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl SessionCookie {
    /// A cookie named `__Host-{suffix}`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `suffix` is empty or not made of cookie-name
    /// characters.
    pub fn with_name(suffix: &str) -> Result<Self> {
        if suffix.is_empty() || suffix.len() > 64 || !suffix.bytes().all(is_cookie_name_char) {
            return Err(Error::InvalidInput(
                "cookie name suffix must be 1-64 RFC 6265 token characters",
            ));
        }
        Ok(Self {
            name: format!("__Host-{suffix}"),
            same_site: SameSite::Lax,
            secure: true,
        })
    }

    /// A cookie named plainly `{name}`, without `Secure` (so without the `__Host-`
    /// prefix, which browsers refuse on a cookie that is not `Secure`): for plain-HTTP
    /// local development only. A network observer reads the cookie, and with it the
    /// credential.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `name` is empty or not made of cookie-name characters.
    pub fn dangerous_insecure(name: &str) -> Result<Self> {
        let mut cookie = Self::with_name(name)?;
        name.clone_into(&mut cookie.name);
        cookie.secure = false;
        Ok(cookie)
    }

    /// Sets `SameSite`.
    #[must_use]
    pub fn same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = same_site;
        self
    }

    /// The cookie name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn attributes(&self) -> String {
        let secure = if self.secure { "Secure; " } else { "" };
        format!("Path=/; {secure}HttpOnly; SameSite={}", self.same_site)
    }

    /// The `Set-Cookie` value carrying `session_id`. With `max_age`, the cookie
    /// persists that long (use the session's absolute lifetime); without, it is a
    /// browser-session cookie. The value holds the session id, so it is secret too.
    pub fn set_cookie(&self, session_id: &SecretString, max_age: Option<Duration>) -> SecretString {
        let mut value = format!(
            "{}={}; {}",
            self.name,
            session_id.expose_secret(),
            self.attributes()
        );
        if let Some(age) = max_age {
            let _ = write!(value, "; Max-Age={}", age.as_secs());
        }
        SecretString::from(value)
    }

    /// The `Set-Cookie` value that deletes the cookie (logout).
    pub fn clear_cookie(&self) -> String {
        format!("{}=; {}; Max-Age=0", self.name, self.attributes())
    }

    /// The session id in a `Cookie` request header, if present.
    pub fn read<'a>(&self, cookie_header: &'a str) -> Option<&'a str> {
        cookie_header.split(';').find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == self.name).then_some(value.trim_matches('"'))
        })
    }

    /// The first non-empty value of this cookie across every `Cookie` header value in
    /// `headers` (as a server receives them).
    pub fn read_all<'a>(&self, headers: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
        headers
            .into_iter()
            .find_map(|h| self.read(h).filter(|v| !v.is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_insecure_cookie_is_named_plainly_and_drops_only_secure() {
        let c = SessionCookie::dangerous_insecure("refresh")
            .unwrap()
            .same_site(SameSite::Strict);
        assert_eq!(c.name(), "refresh");
        let v = c.set_cookie(&SecretString::from("rt_x"), Some(Duration::from_secs(60)));
        assert_eq!(
            v.expose_secret(),
            "refresh=rt_x; Path=/; HttpOnly; SameSite=Strict; Max-Age=60"
        );
        assert_eq!(
            c.read_all(["a=1", "refresh=; x=2", "refresh=rt_x"]),
            Some("rt_x")
        );
        assert!(SessionCookie::dangerous_insecure("").is_err());
    }

    #[test]
    fn attributes_follow_the_guidance() {
        let c = SessionCookie::default();
        let v = c.set_cookie(&SecretString::from("ses_x"), None);
        assert_eq!(
            v.expose_secret(),
            "__Host-session=ses_x; Path=/; Secure; HttpOnly; SameSite=Lax"
        );
        assert!(!format!("{v:?}").contains("ses_x"));
        assert_eq!(
            c.clear_cookie(),
            "__Host-session=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0"
        );
        let n = SessionCookie::with_name("sid")
            .unwrap()
            .same_site(SameSite::None);
        assert_eq!(n.name(), "__Host-sid");
        assert!(n.clear_cookie().contains("SameSite=None"));
        for bad in ["", "a b", "a;b", "a=b", "é"] {
            assert!(SessionCookie::with_name(bad).is_err(), "{bad}");
        }
        assert_eq!(c.read("__Host-session=abc"), Some("abc"));
        assert_eq!(c.read("x=1;  __Host-session=\"abc\" "), Some("abc"));
        assert_eq!(c.read("session=abc"), None);
    }
}
