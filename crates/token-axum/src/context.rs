//! An optional check of the client context for sensitive actions (a payment, an API
//! key's creation, a password change): the context a session started in — the
//! `User-Agent` and the client's network (IPv4 `/24`, IPv6 `/56`) — is recorded,
//! keyed-hashed, in its access tokens, and compared on those routes only. A change
//! answers a step-up challenge (`401 {"error": "reauthentication_required"}`), never a
//! silent pass. Off unless configured.
//!
//! **Why these prefixes.** A `/24` is one IPv4 subnet: a home router's address, an
//! office's, a carrier's pool slice; a `/56` is what an ISP delegates to one IPv6
//! customer (RFC 6177), whose devices rotate through temporary addresses inside it.
//! A narrower prefix would refuse a user whose address changed inside their own
//! network; a wider one would accept a thief on the same carrier.
//!
//! **False positives.** Mobile networks move a phone between gateways and address
//! pools (carrier-grade NAT) within minutes; corporate and privacy proxies, VPNs and
//! Wi-Fi to mobile hand-overs change the address; browsers update and change their
//! `User-Agent`. Each asks the user to sign in again. And it catches only a thief on
//! another network with another browser string, both of which a thief can imitate:
//! DPoP-bound tokens (a key the thief cannot copy out of a non-extractable store) are
//! the stronger answer. See `docs/SECURITY.md`.
//!
//! The hash is an HMAC under a secret of the service (the same on every instance of
//! a fleet): a token's reader learns nothing of the network or browser it holds.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::ConnectInfo;
use axum::http::header;
use axum::http::request::Parts;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use token_core::SecretBytes;

use crate::error::{Error, Result};

/// The claim an access token records the context in (a hex keyed hash): put
/// [`ContextCheck::context_of`] there among the application's claims at login.
pub const CONTEXT_CLAIM: &str = "ctx";

/// The shortest context secret accepted, in bytes.
pub const MIN_CONTEXT_SECRET: usize = 32;
/// The longest `User-Agent` read; longer ones are cut (the hash covers what is read).
pub const MAX_USER_AGENT: usize = 512;

/// Records and compares the client context (see the module's documentation).
#[derive(Clone)]
pub struct ContextCheck {
    secret: Arc<SecretBytes>,
}

impl fmt::Debug for ContextCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContextCheck").finish_non_exhaustive()
    }
}

/// The network a client address belongs to, as compared: `a.b.c.0/24` for IPv4
/// (and IPv4-mapped IPv6), the first 56 bits for IPv6.
pub fn network_of(ip: IpAddr) -> String {
    let v6 = match ip {
        IpAddr::V4(v4) => {
            let [first, second, third, _] = v4.octets();
            return format!("{first}.{second}.{third}.0/24");
        }
        IpAddr::V6(v6) => v6,
    };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return network_of(IpAddr::V4(v4));
    }
    let segments = v6.segments();
    let segment = |i: usize| segments.get(i).copied().unwrap_or(0);
    format!(
        "{:x}:{:x}:{:x}:{:x}::/56",
        segment(0),
        segment(1),
        segment(2),
        segment(3) & 0xff00
    )
}

impl ContextCheck {
    /// Hashes contexts under `secret` (at least [`MIN_CONTEXT_SECRET`] bytes; the same
    /// on every instance of a fleet).
    ///
    /// # Errors
    /// [`Error::Config`] for a shorter secret.
    pub fn new(secret: SecretBytes) -> Result<Self> {
        if secret.len() < MIN_CONTEXT_SECRET {
            return Err(Error::Config(format!(
                "a context secret is at least {MIN_CONTEXT_SECRET} bytes"
            )));
        }
        Ok(Self {
            secret: Arc::new(secret),
        })
    }

    /// Under a fresh random secret: this process only (another instance sees every
    /// context as changed).
    ///
    /// # Errors
    /// [`Error::Internal`] when the system's randomness is unavailable.
    pub fn random() -> Result<Self> {
        let mut secret = vec![0u8; MIN_CONTEXT_SECRET];
        getrandom::fill(&mut secret)
            .map_err(|_| Error::Internal("randomness unavailable".into()))?;
        Self::new(SecretBytes::new(secret))
    }

    /// The context of a request from `peer`: the keyed hash (hex) of its
    /// `User-Agent` and its network.
    pub fn context(&self, parts: &Parts, peer: IpAddr) -> String {
        use std::fmt::Write as _;
        let agent = parts
            .headers
            .get(header::USER_AGENT)
            .map(axum::http::HeaderValue::as_bytes)
            .unwrap_or_default();
        let agent = agent.get(..MAX_USER_AGENT).unwrap_or(agent);
        let mut out = String::with_capacity(64);
        if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.secret.expose_secret()) {
            mac.update(b"tessera client context\0");
            mac.update(agent);
            mac.update(b"\0");
            mac.update(network_of(peer).as_bytes());
            for b in mac.finalize().into_bytes() {
                let _ = write!(out, "{b:02x}");
            }
        }
        out
    }

    /// The context of `parts`, whose peer address `token_axum::serve` gives as
    /// `ConnectInfo<SocketAddr>`.
    ///
    /// # Errors
    /// [`Error::Config`] when the request has no `ConnectInfo`.
    pub fn context_of(&self, parts: &Parts) -> Result<String> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
            .ok_or_else(|| {
                Error::Config(
                    "the context check needs the client address: serve with token_axum::serve"
                        .into(),
                )
            })?;
        Ok(self.context(parts, peer))
    }

    /// Compares the context of `parts` with the one `recorded` at login (`None`: a
    /// token that recorded none, refused as well).
    ///
    /// # Errors
    /// [`Error::ReauthenticationRequired`] when they differ; as
    /// [`ContextCheck::context_of`].
    pub fn check(&self, parts: &Parts, recorded: Option<&str>) -> Result<()> {
        let now = self.context_of(parts)?;
        match recorded {
            Some(r) if token_core::constant_time_eq(r.as_bytes(), now.as_bytes()) => Ok(()),
            _ => Err(Error::ReauthenticationRequired),
        }
    }
}

impl ContextCheck {
    /// Compares the context of `parts` with the one the request's principal recorded
    /// ([`CONTEXT_CLAIM`] of an access token): for a route behind
    /// [`crate::AuthLayer`]. Any other credential (an API key, a session), or none,
    /// recorded no context and is refused too: never a silent pass.
    ///
    /// # Errors
    /// As [`ContextCheck::check`].
    pub fn check_principal(&self, parts: &Parts) -> Result<()> {
        let recorded = match parts.extensions.get::<crate::Principal>() {
            Some(crate::Principal::AccessToken(access)) => access
                .claims()
                .get(CONTEXT_CLAIM)
                .and_then(serde_json::Value::as_str),
            _ => None,
        };
        self.check(parts, recorded)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::Request;

    fn parts(agent: &str) -> Parts {
        Request::builder()
            .header("user-agent", agent)
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    #[test]
    fn networks_are_v4_24_and_v6_56() {
        assert_eq!(network_of("192.0.2.77".parse().unwrap()), "192.0.2.0/24");
        assert_eq!(
            network_of("2001:db8:aa:bbcc:1::9".parse().unwrap()),
            "2001:db8:aa:bb00::/56"
        );
        assert_eq!(
            network_of("::ffff:198.51.100.9".parse().unwrap()),
            "198.51.100.0/24"
        );
    }

    #[test]
    fn contexts_change_with_the_network_and_the_agent_only() {
        let c = ContextCheck::new(SecretBytes::new(vec![5u8; 32])).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let base = c.context(&parts("Firefox/130"), ip("192.0.2.1"));
        assert_eq!(base, c.context(&parts("Firefox/130"), ip("192.0.2.200")));
        assert_ne!(base, c.context(&parts("Firefox/130"), ip("192.0.3.1")));
        assert_ne!(base, c.context(&parts("Firefox/131"), ip("192.0.2.1")));
        let other = ContextCheck::new(SecretBytes::new(vec![6u8; 32])).unwrap();
        assert_ne!(base, other.context(&parts("Firefox/130"), ip("192.0.2.1")));
        assert!(ContextCheck::new(SecretBytes::new(vec![1u8; 4])).is_err());
    }
}
