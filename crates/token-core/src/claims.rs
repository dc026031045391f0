//! Registered claims plus the application's own, and their JSON forms.
//!
//! [`Claims<T>`] holds the seven registered claims as typed fields and the
//! application's claims as any serde type `T` (a struct of its own, a
//! `serde_json::Map`, or [`NoCustomClaims`]). The JSON form depends on the format only
//! through the time encoding: [`NumericDate`] (JWT, seconds) or [`Rfc3339`] (PASETO,
//! RFC 3339 strings).
//!
//! Decoding is strict about registered claims: a claim that is present but not of its
//! type (`"exp": "tomorrow"` in a JWT, an array, `null`, a number before 1970) is an
//! error naming the claim, never silently treated as absent. A member name repeated
//! anywhere in the payload is an error too ([`crate::json`]), custom claims included.
//!
//! A time given to a finer precision than the whole second (a fractional NumericDate
//! such as `1796215339.5`, which RFC 7519 allows, or fractional RFC 3339 seconds) is
//! rounded the conservative way: `exp` down, `nbf` and `iat` up, so a token is never
//! valid for longer, nor earlier, than its issuer wrote.

use std::fmt::{self, Write as _};
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::{self, DeserializeOwned, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::time::{Clock, Timestamp};

/// The registered claim names of RFC 7519 section 4.1 (shared by PASETO).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum RegisteredClaim {
    /// `iss`: who issued the token.
    Iss,
    /// `sub`: whom the token is about.
    Sub,
    /// `aud`: whom the token is for.
    Aud,
    /// `exp`: when the token expires.
    Exp,
    /// `nbf`: when the token becomes valid.
    Nbf,
    /// `iat`: when the token was issued.
    Iat,
    /// `jti`: the token's unique id (for revocation and replay detection).
    Jti,
}

impl RegisteredClaim {
    /// Every registered claim.
    pub const ALL: [Self; 7] = [
        Self::Iss,
        Self::Sub,
        Self::Aud,
        Self::Exp,
        Self::Nbf,
        Self::Iat,
        Self::Jti,
    ];

    /// The claim's JSON name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Iss => "iss",
            Self::Sub => "sub",
            Self::Aud => "aud",
            Self::Exp => "exp",
            Self::Nbf => "nbf",
            Self::Iat => "iat",
            Self::Jti => "jti",
        }
    }

    /// The registered claim with this JSON name, if it is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

impl fmt::Display for RegisteredClaim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The `aud` claim: one audience (a JSON string) or several (a JSON array of strings).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Audience {
    /// A single audience, written as a string.
    One(String),
    /// Several audiences, written as an array.
    Many(Vec<String>),
}

impl Audience {
    /// Every audience named.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let (one, many) = match self {
            Self::One(a) => (Some(a.as_str()), [].iter()),
            Self::Many(v) => (None, v.iter()),
        };
        one.into_iter().chain(many.map(String::as_str))
    }

    /// Whether `audience` is among those named.
    pub fn contains(&self, audience: &str) -> bool {
        self.iter().any(|a| a == audience)
    }
}

impl From<&str> for Audience {
    fn from(a: &str) -> Self {
        Self::One(a.to_owned())
    }
}

impl From<String> for Audience {
    fn from(a: String) -> Self {
        Self::One(a)
    }
}

impl<S: Into<String>> FromIterator<S> for Audience {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        Self::Many(iter.into_iter().map(Into::into).collect())
    }
}

impl Serialize for Audience {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Self::One(a) => s.serialize_str(a),
            Self::Many(v) => {
                let mut seq = s.serialize_seq(Some(v.len()))?;
                for a in v {
                    seq.serialize_element(a)?;
                }
                seq.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Audience;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Audience, E> {
                Ok(Audience::One(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> std::result::Result<Audience, E> {
                Ok(Audience::One(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Audience, A::Error> {
                let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(16));
                while let Some(a) = seq.next_element::<String>()? {
                    v.push(a);
                }
                Ok(Audience::Many(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// No application claims: extra claims in a token are ignored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoCustomClaims {}

/// The claims of a token: the registered ones, typed, plus the application's `T`.
///
/// `T` must serialize to a JSON object whose keys are not registered claim names;
/// set registered claims through the fields here.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Claims<T = NoCustomClaims> {
    /// `iss`.
    pub iss: Option<String>,
    /// `sub`.
    pub sub: Option<String>,
    /// `aud`.
    pub aud: Option<Audience>,
    /// `exp`.
    pub exp: Option<Timestamp>,
    /// `nbf`.
    pub nbf: Option<Timestamp>,
    /// `iat`.
    pub iat: Option<Timestamp>,
    /// `jti`.
    pub jti: Option<String>,
    /// The application's own claims.
    pub custom: T,
}

impl<T> Claims<T> {
    /// Claims holding only the application's own; set the rest with the builder methods.
    pub fn new(custom: T) -> Self {
        Self {
            iss: None,
            sub: None,
            aud: None,
            exp: None,
            nbf: None,
            iat: None,
            jti: None,
            custom,
        }
    }

    /// Sets `iss`.
    #[must_use]
    pub fn issuer(mut self, iss: impl Into<String>) -> Self {
        self.iss = Some(iss.into());
        self
    }

    /// Sets `sub`.
    #[must_use]
    pub fn subject(mut self, sub: impl Into<String>) -> Self {
        self.sub = Some(sub.into());
        self
    }

    /// Sets `aud`.
    #[must_use]
    pub fn audience(mut self, aud: impl Into<Audience>) -> Self {
        self.aud = Some(aud.into());
        self
    }

    /// Sets `jti`.
    #[must_use]
    pub fn token_id(mut self, jti: impl Into<String>) -> Self {
        self.jti = Some(jti.into());
        self
    }

    /// Sets `jti` to 128 bits from the operating system's CSPRNG, as 32 hex digits.
    ///
    /// # Errors
    /// [`Error::RandomnessUnavailable`] if the OS generator fails.
    pub fn random_token_id(mut self) -> Result<Self> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|_| Error::RandomnessUnavailable)?;
        let mut jti = String::with_capacity(32);
        for b in bytes {
            // Writing to a String cannot fail.
            let _ = write!(jti, "{b:02x}");
        }
        self.jti = Some(jti);
        Ok(self)
    }

    /// Sets `iat` and `nbf` to `clock`'s now and `exp` to now + `ttl`.
    ///
    /// # Errors
    /// [`Error::TimestampOutOfRange`] if the expiry would fall after year 9999.
    pub fn valid_for(mut self, clock: &dyn Clock, ttl: Duration) -> Result<Self> {
        let now = clock.now();
        self.iat = Some(now);
        self.nbf = Some(now);
        self.exp = Some(now.checked_add(ttl)?);
        Ok(self)
    }

    /// Sets `iat` and `nbf` to the system clock's now and `exp` to now + `ttl`: the
    /// common case of [`Claims::valid_for`].
    ///
    /// # Errors
    /// [`Error::TimestampOutOfRange`] if the expiry would fall after year 9999.
    pub fn expires_in(self, ttl: Duration) -> Result<Self> {
        self.valid_for(&crate::SystemClock, ttl)
    }

    /// Whether `claim` is present.
    pub fn has(&self, claim: RegisteredClaim) -> bool {
        match claim {
            RegisteredClaim::Iss => self.iss.is_some(),
            RegisteredClaim::Sub => self.sub.is_some(),
            RegisteredClaim::Aud => self.aud.is_some(),
            RegisteredClaim::Exp => self.exp.is_some(),
            RegisteredClaim::Nbf => self.nbf.is_some(),
            RegisteredClaim::Iat => self.iat.is_some(),
            RegisteredClaim::Jti => self.jti.is_some(),
        }
    }
}

mod sealed {
    pub trait Sealed {}
}

/// How a format writes time claims. Sealed: [`NumericDate`] and [`Rfc3339`] only.
pub trait TimeEncoding: sealed::Sealed + 'static {
    #[doc(hidden)]
    fn write<S: Serializer>(t: Timestamp, s: S) -> std::result::Result<S::Ok, S::Error>;
    /// Reads a time; a fraction of a second is rounded up when `round_up`, else down.
    #[doc(hidden)]
    fn read<'de, D: Deserializer<'de>>(
        d: D,
        round_up: bool,
    ) -> std::result::Result<Timestamp, D::Error>;
}

/// JWT time claims: NumericDate, a count of seconds (RFC 7519 section 2), written as an
/// integer. Read as any JSON number from 1970 to 9999 — `1796215339`, `1796215339.5`,
/// `1.7e9` — a fraction rounded the conservative way (`exp` down, `nbf` and `iat` up).
/// Strings, arrays, `null`, negative numbers and numbers past 9999 are malformed.
#[derive(Debug)]
pub enum NumericDate {}

/// PASETO time claims: RFC 3339 date-time strings. Numbers are malformed.
#[derive(Debug)]
pub enum Rfc3339 {}

impl sealed::Sealed for NumericDate {}
impl sealed::Sealed for Rfc3339 {}

impl TimeEncoding for NumericDate {
    fn write<S: Serializer>(t: Timestamp, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_i64(t.unix_seconds())
    }

    fn read<'de, D: Deserializer<'de>>(
        d: D,
        round_up: bool,
    ) -> std::result::Result<Timestamp, D::Error> {
        struct V {
            round_up: bool,
        }
        impl Visitor<'_> for V {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a NumericDate (a number of seconds since 1970)")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Timestamp, E> {
                i64::try_from(v)
                    .ok()
                    .and_then(|v| Timestamp::from_unix_seconds(v).ok())
                    .ok_or_else(|| E::custom("NumericDate outside 1970..=9999"))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Timestamp, E> {
                Timestamp::from_unix_seconds(v)
                    .map_err(|_| E::custom("NumericDate outside 1970..=9999"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Timestamp, E> {
                numeric_date_from_f64(v, self.round_up)
                    .ok_or_else(|| E::custom("NumericDate outside 1970..=9999"))
            }
        }
        d.deserialize_any(V { round_up })
    }
}

/// The largest NumericDate, as a float: an integer below 2^53, so exactly representable.
const MAX_NUMERIC_DATE: f64 = 253_402_300_799.0;

/// A NumericDate written as a JSON number with a fraction or an exponent: within
/// 1970..=9999 before rounding, then rounded up or down to the whole second.
fn numeric_date_from_f64(v: f64, round_up: bool) -> Option<Timestamp> {
    // NaN fails both comparisons' negation, so it is refused with the infinities.
    if !(v.is_finite() && (0.0..=MAX_NUMERIC_DATE).contains(&v)) {
        return None;
    }
    let whole = if round_up { v.ceil() } else { v.floor() };
    // A whole number in 0..=MAX_NUMERIC_DATE: the conversion is exact.
    #[allow(clippy::cast_possible_truncation)]
    let seconds = whole as i64;
    Timestamp::from_unix_seconds(seconds).ok()
}

impl TimeEncoding for Rfc3339 {
    fn write<S: Serializer>(t: Timestamp, s: S) -> std::result::Result<S::Ok, S::Error> {
        let ascii = t.rfc3339_ascii();
        s.serialize_str(std::str::from_utf8(&ascii).map_err(serde::ser::Error::custom)?)
    }

    fn read<'de, D: Deserializer<'de>>(
        d: D,
        round_up: bool,
    ) -> std::result::Result<Timestamp, D::Error> {
        struct V {
            round_up: bool,
        }
        impl Visitor<'_> for V {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 date-time string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Timestamp, E> {
                let (t, fraction) =
                    crate::time::parse_rfc3339_with_fraction(v.as_bytes()).map_err(E::custom)?;
                if self.round_up && fraction {
                    t.checked_add(std::time::Duration::from_secs(1))
                        .map_err(E::custom)
                } else {
                    Ok(t)
                }
            }
        }
        d.deserialize_any(V { round_up })
    }
}

/// A time claim on the wire, in encoding `E`. When read, a fraction of a second is
/// rounded up when `UP` (`nbf`, `iat`), else down (`exp`).
struct Time<E, const UP: bool = false>(Timestamp, PhantomData<E>);

impl<E: TimeEncoding, const UP: bool> Serialize for Time<E, UP> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        E::write(self.0, s)
    }
}

impl<'de, E: TimeEncoding, const UP: bool> Deserialize<'de> for Time<E, UP> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        E::read(d, UP).map(|t| Self(t, PhantomData))
    }
}

/// A claim that is absent or present. Unlike `Option`, a JSON `null` is handed to the
/// claim's own deserializer (which rejects it) instead of meaning "absent".
enum Field<X> {
    Absent,
    Present(X),
}

// Not derived: the derive would demand `X: Default`.
#[allow(clippy::derivable_impls)]
impl<X> Default for Field<X> {
    fn default() -> Self {
        Self::Absent
    }
}

impl<X> Field<X> {
    fn into_option(self) -> Option<X> {
        match self {
            Self::Absent => None,
            Self::Present(x) => Some(x),
        }
    }
}

impl<'de, X: Deserialize<'de>> Deserialize<'de> for Field<X> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        X::deserialize(d).map(Field::Present)
    }
}

/// The claims as written: the registered ones, then `C`'s members (the application's
/// claims, or nothing).
#[derive(Serialize)]
#[serde(bound(serialize = "C: Serialize"))]
struct WireOut<'a, E: TimeEncoding, C> {
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a Audience>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<Time<E>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nbf: Option<Time<E>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<Time<E>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<&'a str>,
    #[serde(flatten)]
    custom: C,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
struct WireIn<T, E: TimeEncoding> {
    #[serde(default)]
    iss: Field<String>,
    #[serde(default)]
    sub: Field<String>,
    #[serde(default)]
    aud: Field<Audience>,
    #[serde(default)]
    exp: Field<Time<E>>,
    #[serde(default)]
    nbf: Field<Time<E, true>>,
    #[serde(default)]
    iat: Field<Time<E, true>>,
    #[serde(default)]
    jti: Field<String>,
    #[serde(flatten)]
    custom: T,
}

fn time<E>(t: Option<Timestamp>) -> Option<Time<E>> {
    t.map(|t| Time(t, PhantomData))
}

impl<T: Serialize> Claims<T> {
    /// The claims as a JSON object, time claims in encoding `E`: the registered claims
    /// in the order `iss`, `sub`, `aud`, `exp`, `nbf`, `iat`, `jti`, then the
    /// application's, in the order `T` serializes them.
    ///
    /// # Errors
    /// [`Error::CustomClaimsNotAnObject`] or [`Error::ReservedClaimName`] when `T` does not
    /// serialize to an object of non-registered names; [`Error::InvalidCustomClaims`] when
    /// `T`'s `Serialize` fails.
    pub fn to_json<E: TimeEncoding>(&self) -> Result<Vec<u8>> {
        // The registered claims, then `T`'s members written straight after them; the
        // general path below for whatever the direct one does not take (it gives up on
        // anything the general path would refuse or rewrite, see `claims_out`).
        let mut out = Vec::with_capacity(256);
        serde_json::to_writer(&mut out, &self.wire::<E, ()>(()))
            .map_err(|e| Error::InvalidCustomClaims(e.to_string()))?;
        // `{…}`: the application's members go before the closing brace.
        if out.pop() == Some(b'}') && crate::claims_out::append(&self.custom, &mut out).is_ok() {
            out.push(b'}');
            return Ok(out);
        }
        self.to_json_through_value::<E>()
    }

    /// [`Claims::to_json`] through a `serde_json::Value` of the application's claims:
    /// the general path, for every shape of `T`.
    fn to_json_through_value<E: TimeEncoding>(&self) -> Result<Vec<u8>> {
        let custom = match serde_json::to_value(&self.custom)
            .map_err(|e| Error::InvalidCustomClaims(e.to_string()))?
        {
            Value::Object(m) => m,
            Value::Null => Map::new(),
            _ => return Err(Error::CustomClaimsNotAnObject),
        };
        if let Some(k) = custom
            .keys()
            .find(|k| RegisteredClaim::from_name(k).is_some())
        {
            return Err(Error::ReservedClaimName(k.clone()));
        }
        serde_json::to_vec(&self.wire::<E, _>(&custom))
            .map_err(|e| Error::InvalidCustomClaims(e.to_string()))
    }
}

impl<T> Claims<T> {
    fn wire<E: TimeEncoding, C>(&self, custom: C) -> WireOut<'_, E, C> {
        WireOut {
            iss: self.iss.as_deref(),
            sub: self.sub.as_deref(),
            aud: self.aud.as_ref(),
            exp: time(self.exp),
            nbf: time(self.nbf),
            iat: time(self.iat),
            jti: self.jti.as_deref(),
            custom,
        }
    }
}

impl<T: DeserializeOwned> Claims<T> {
    /// Parses a JSON object of claims, time claims in encoding `E`.
    ///
    /// The JSON is read strictly ([`crate::json`]): a member name repeated anywhere in
    /// it, a custom claim's included, is an error, never "the last one wins".
    ///
    /// # Errors
    /// [`Error::MalformedClaims`] if `json` is not a JSON object;
    /// [`Error::DuplicateMember`] naming a repeated member; [`Error::MalformedClaim`]
    /// naming the registered claim that is present but not of its type;
    /// [`Error::InvalidCustomClaims`] if the rest does not fit `T`.
    pub fn from_json<E: TimeEncoding>(json: &[u8]) -> Result<Self> {
        let text = match crate::json::utf8(json).and_then(|text| {
            crate::json::check_str(text)?;
            Ok(text)
        }) {
            Ok(text) => text,
            Err(Error::MalformedJson(e)) => return Err(Error::MalformedClaims(e)),
            Err(e) => return Err(e),
        };
        match serde_json::from_str::<WireIn<T, E>>(text) {
            Ok(w) => Ok(Self {
                iss: w.iss.into_option(),
                sub: w.sub.into_option(),
                aud: w.aud.into_option(),
                exp: w.exp.into_option().map(|t| t.0),
                nbf: w.nbf.into_option().map(|t| t.0),
                iat: w.iat.into_option().map(|t| t.0),
                jti: w.jti.into_option(),
                custom: w.custom,
            }),
            Err(e) => Err(diagnose::<E>(json, &e)),
        }
    }
}

/// Turns a failed typed parse into the most precise error: which registered claim is
/// malformed, or whether the JSON or the custom claims are at fault. Runs only on the
/// failure path.
fn diagnose<E: TimeEncoding>(json: &[u8], err: &serde_json::Error) -> Error {
    let map = match serde_json::from_slice::<Value>(json) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Error::MalformedClaims("the payload is not a JSON object".into()),
        Err(e) => return Error::MalformedClaims(e.to_string()),
    };
    for claim in RegisteredClaim::ALL {
        let Some(v) = map.get(claim.name()) else {
            continue;
        };
        let checked = match claim {
            RegisteredClaim::Exp => Time::<E>::deserialize(v).map(drop),
            RegisteredClaim::Nbf | RegisteredClaim::Iat => {
                Time::<E, true>::deserialize(v).map(drop)
            }
            RegisteredClaim::Aud => Audience::deserialize(v).map(drop),
            RegisteredClaim::Iss | RegisteredClaim::Sub | RegisteredClaim::Jti => {
                String::deserialize(v).map(drop)
            }
        };
        if let Err(e) = checked {
            return Error::MalformedClaim {
                claim,
                reason: e.to_string(),
            };
        }
    }
    // Repeated names were refused before the typed parse, so what is left is `T`'s.
    Error::InvalidCustomClaims(err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::FixedClock;

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct App {
        role: String,
        sid: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    }

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_unix_seconds(s).unwrap()
    }

    fn full() -> Claims<App> {
        Claims::new(App {
            role: "admin".into(),
            sid: 7,
            note: None,
        })
        .issuer("https://auth.example")
        .subject("user-1")
        .audience(["api", "billing"].into_iter().collect::<Audience>())
        .token_id("abc")
        .valid_for(&FixedClock(ts(1_700_000_000)), Duration::from_secs(900))
        .unwrap()
    }

    #[test]
    fn jwt_form_uses_numeric_dates() {
        let json = full().to_json::<NumericDate>().unwrap();
        let v: Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["exp"], Value::from(1_700_000_900));
        assert_eq!(v["aud"], serde_json::json!(["api", "billing"]));
        assert_eq!(v["role"], "admin");
        assert_eq!(
            Claims::<App>::from_json::<NumericDate>(&json).unwrap(),
            full()
        );
    }

    #[test]
    fn paseto_form_uses_rfc3339() {
        let json = full().to_json::<Rfc3339>().unwrap();
        let v: Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["exp"], "2023-11-14T22:28:20Z");
        assert_eq!(Claims::<App>::from_json::<Rfc3339>(&json).unwrap(), full());
    }

    #[test]
    fn single_audience_is_a_string() {
        let c = Claims::new(NoCustomClaims {}).audience("api");
        let v: Value = serde_json::from_slice(&c.to_json::<NumericDate>().unwrap()).unwrap();
        assert_eq!(v, serde_json::json!({"aud": "api"}));
    }

    #[test]
    fn formats_do_not_read_each_other() {
        let jwt = full().to_json::<NumericDate>().unwrap();
        assert!(matches!(
            Claims::<App>::from_json::<Rfc3339>(&jwt),
            Err(Error::MalformedClaim {
                claim: RegisteredClaim::Exp,
                ..
            })
        ));
        let paseto = full().to_json::<Rfc3339>().unwrap();
        assert!(matches!(
            Claims::<App>::from_json::<NumericDate>(&paseto),
            Err(Error::MalformedClaim {
                claim: RegisteredClaim::Exp,
                ..
            })
        ));
    }

    /// A registered claim that is present but unparsable must be an error, never
    /// "absent" (the bug class of jsonwebtoken's CVE-2026-25537).
    #[test]
    fn present_but_malformed_registered_claims_are_errors() {
        let cases: &[(&str, RegisteredClaim)] = &[
            (r#"{"exp":"tomorrow"}"#, RegisteredClaim::Exp),
            (r#"{"exp":"1700000000"}"#, RegisteredClaim::Exp),
            (r#"{"exp":[1700000000]}"#, RegisteredClaim::Exp),
            (r#"{"exp":[1700000000.5]}"#, RegisteredClaim::Exp),
            (r#"{"exp":-0.5}"#, RegisteredClaim::Exp),
            (r#"{"exp":-1e-9}"#, RegisteredClaim::Exp),
            (r#"{"exp":253402300799.5}"#, RegisteredClaim::Exp),
            (r#"{"exp":1e300}"#, RegisteredClaim::Exp),
            (r#"{"nbf":null}"#, RegisteredClaim::Nbf),
            (r#"{"nbf":"1700000000.5"}"#, RegisteredClaim::Nbf),
            (r#"{"iat":[1.5]}"#, RegisteredClaim::Iat),
            (r#"{"exp":null}"#, RegisteredClaim::Exp),
            (r#"{"exp":-1}"#, RegisteredClaim::Exp),
            (r#"{"exp":true}"#, RegisteredClaim::Exp),
            (r#"{"exp":{"$date":1}}"#, RegisteredClaim::Exp),
            (r#"{"exp":99999999999999999999}"#, RegisteredClaim::Exp),
            (r#"{"nbf":"soon"}"#, RegisteredClaim::Nbf),
            (r#"{"iss":7}"#, RegisteredClaim::Iss),
            (r#"{"sub":null}"#, RegisteredClaim::Sub),
            (r#"{"aud":42}"#, RegisteredClaim::Aud),
            (r#"{"aud":["a",1]}"#, RegisteredClaim::Aud),
            (r#"{"aud":null}"#, RegisteredClaim::Aud),
            (r#"{"jti":{"id":1}}"#, RegisteredClaim::Jti),
        ];
        for (json, want) in cases {
            match Claims::<NoCustomClaims>::from_json::<NumericDate>(json.as_bytes()) {
                Err(Error::MalformedClaim { claim, .. }) => assert_eq!(claim, *want, "{json}"),
                other => panic!("{json}: expected MalformedClaim({want}), got {other:?}"),
            }
        }
        let e = Claims::<NoCustomClaims>::from_json::<Rfc3339>(br#"{"exp":1700000000}"#);
        assert!(matches!(
            e,
            Err(Error::MalformedClaim {
                claim: RegisteredClaim::Exp,
                ..
            })
        ));
        let e =
            Claims::<NoCustomClaims>::from_json::<Rfc3339>(br#"{"exp":"2022-02-30T00:00:00Z"}"#);
        assert!(matches!(
            e,
            Err(Error::MalformedClaim {
                claim: RegisteredClaim::Exp,
                ..
            })
        ));
    }

    /// RFC 7519 NumericDates may be fractional (`"exp": 1796215339.5` from systems
    /// with floating-point clocks); they used to be refused as malformed. A fraction is
    /// rounded the conservative way: `exp` down, `nbf` and `iat` up.
    #[test]
    fn fractional_numeric_dates_round_exp_down_and_nbf_iat_up() {
        let read = |json: &str| {
            let c = Claims::<NoCustomClaims>::from_json::<NumericDate>(json.as_bytes()).unwrap();
            (
                c.exp.map(Timestamp::unix_seconds),
                c.nbf.map(Timestamp::unix_seconds),
                c.iat.map(Timestamp::unix_seconds),
            )
        };
        assert_eq!(
            read(r#"{"exp":1796215339.5,"nbf":1796214439.5,"iat":1796214439.25}"#),
            (
                Some(1_796_215_339),
                Some(1_796_214_440),
                Some(1_796_214_440)
            )
        );
        assert_eq!(
            read(r#"{"exp":1796215339.999,"nbf":1796214439.001,"iat":0.5}"#),
            (Some(1_796_215_339), Some(1_796_214_440), Some(1))
        );
        // Whole numbers in any JSON number form are read exactly.
        assert_eq!(
            read(r#"{"exp":1.7e9,"nbf":1700000000.0,"iat":17e8}"#),
            (
                Some(1_700_000_000),
                Some(1_700_000_000),
                Some(1_700_000_000)
            )
        );
        // The range holds before rounding: the last second of 9999 and the epoch.
        assert_eq!(
            read(r#"{"exp":253402300798.5,"nbf":0.0,"iat":253402300798.5}"#),
            (Some(253_402_300_798), Some(0), Some(253_402_300_799))
        );
        // Written back, a rounded time is an integer.
        let c =
            Claims::<NoCustomClaims>::from_json::<NumericDate>(br#"{"exp":1796215339.5}"#).unwrap();
        assert_eq!(
            c.to_json::<NumericDate>().unwrap(),
            br#"{"exp":1796215339}"#.to_vec()
        );
    }

    /// Fractional RFC 3339 seconds follow the same rule as fractional NumericDates.
    #[test]
    fn fractional_rfc3339_seconds_round_exp_down_and_nbf_iat_up() {
        let c = Claims::<NoCustomClaims>::from_json::<Rfc3339>(
            br#"{"exp":"2022-01-01T00:00:00.9Z","nbf":"2022-01-01T00:00:00.1Z","iat":"2022-01-01T00:00:00.000Z"}"#,
        )
        .unwrap();
        assert_eq!(c.exp.map(Timestamp::unix_seconds), Some(1_640_995_200));
        assert_eq!(c.nbf.map(Timestamp::unix_seconds), Some(1_640_995_201));
        assert_eq!(c.iat.map(Timestamp::unix_seconds), Some(1_640_995_200));
        // Rounded up past 9999, a `nbf` is out of range; an `exp` is not.
        assert!(
            Claims::<NoCustomClaims>::from_json::<Rfc3339>(br#"{"exp":"9999-12-31T23:59:59.5Z"}"#)
                .is_ok()
        );
        assert!(matches!(
            Claims::<NoCustomClaims>::from_json::<Rfc3339>(br#"{"nbf":"9999-12-31T23:59:59.5Z"}"#),
            Err(Error::MalformedClaim {
                claim: RegisteredClaim::Nbf,
                ..
            })
        ));
    }

    #[test]
    fn malformed_payloads_are_typed() {
        for json in [&b"[]"[..], b"\"x\"", b"null", b"{", b"", b"{\"exp\":1}x"] {
            assert!(
                matches!(
                    Claims::<NoCustomClaims>::from_json::<NumericDate>(json),
                    Err(Error::MalformedClaims(_))
                ),
                "{}",
                String::from_utf8_lossy(json)
            );
        }
        assert_eq!(
            Claims::<NoCustomClaims>::from_json::<NumericDate>(br#"{"exp":1,"exp":2}"#),
            Err(Error::DuplicateMember("exp".into()))
        );
    }

    /// A repeated custom claim used to be accepted with the last value winning; a
    /// second parser in the chain may keep the first. Refused in both encodings, for
    /// every custom claims type, at any depth.
    #[test]
    fn repeated_claims_are_refused_whatever_their_type() {
        let cases = [
            (r#"{"role":"user","role":"admin","sid":1}"#, "role"),
            (r#"{"sub":"q","sub":"z"}"#, "sub"),
            (r#"{"sub":"q","s\u0075b":"z"}"#, "sub"),
            (r#"{"x":{"a":1,"a":2}}"#, "a"),
            (r#"{"role":"a","sid":1,"note":"x","note":"y"}"#, "note"),
        ];
        for (json, name) in cases {
            let want = Err(Error::DuplicateMember(name.into()));
            let j = json.as_bytes();
            assert_eq!(
                Claims::<Map<String, Value>>::from_json::<NumericDate>(j),
                want,
                "{json}"
            );
            assert_eq!(
                Claims::<Map<String, Value>>::from_json::<Rfc3339>(j),
                want,
                "{json}"
            );
            assert_eq!(
                Claims::<NoCustomClaims>::from_json::<NumericDate>(j).map(drop),
                want.clone().map(drop),
                "{json}"
            );
            assert_eq!(
                Claims::<App>::from_json::<NumericDate>(j).map(drop),
                want.map(drop),
                "{json}"
            );
        }
    }

    #[test]
    fn custom_claims_errors_are_separate() {
        let e = Claims::<App>::from_json::<NumericDate>(br#"{"role":"x"}"#);
        assert!(matches!(e, Err(Error::InvalidCustomClaims(m)) if m.contains("sid")));
        let e = Claims::<App>::from_json::<NumericDate>(br#"{"role":"x","sid":"seven"}"#);
        assert!(matches!(e, Err(Error::InvalidCustomClaims(_))));
    }

    #[test]
    fn custom_claims_may_not_shadow_registered_ones() {
        let mut m = Map::new();
        m.insert("exp".into(), Value::from(1));
        assert_eq!(
            Claims::new(m).to_json::<NumericDate>(),
            Err(Error::ReservedClaimName("exp".into()))
        );
        assert_eq!(
            Claims::new(5_u8).to_json::<NumericDate>(),
            Err(Error::CustomClaimsNotAnObject)
        );
    }

    /// The application's claims are written in the order their type serializes them
    /// (a struct's field order), straight after the registered ones; the general
    /// path through a `serde_json::Map` sorted them unless `preserve_order` was on.
    #[test]
    fn custom_claims_keep_their_order() {
        #[derive(Serialize)]
        struct Unsorted {
            zeta: u8,
            alpha: &'static str,
        }
        let c = Claims::new(Unsorted {
            zeta: 1,
            alpha: "a",
        })
        .subject("u");
        assert_eq!(
            c.to_json::<NumericDate>().unwrap(),
            br#"{"sub":"u","zeta":1,"alpha":"a"}"#.to_vec()
        );
        // Without registered claims, the first member follows the brace directly.
        assert_eq!(
            Claims::new(Unsorted {
                zeta: 2,
                alpha: "\"q\"",
            })
            .to_json::<Rfc3339>()
            .unwrap(),
            br#"{"zeta":2,"alpha":"\"q\""}"#.to_vec()
        );
    }

    /// Every shape the direct writer does not take gives, through the general path,
    /// exactly what it gave before: errors for reserved names and non-objects, one
    /// member for a name written twice, names for integer keys, numbers as a
    /// `serde_json::Value` holds them.
    #[test]
    fn direct_and_general_paths_agree_on_unusual_shapes() {
        fn same<T: Serialize>(custom: T) {
            let c = Claims::new(custom).issuer("i").token_id("j");
            for (direct, general) in [
                (
                    c.to_json::<NumericDate>(),
                    c.to_json_through_value::<NumericDate>(),
                ),
                (c.to_json::<Rfc3339>(), c.to_json_through_value::<Rfc3339>()),
            ] {
                assert_eq!(
                    direct
                        .as_ref()
                        .map(|b| String::from_utf8_lossy(b).into_owned()),
                    general
                        .as_ref()
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                );
            }
        }
        #[derive(Serialize)]
        struct Inner {
            role: &'static str,
        }
        #[derive(Serialize)]
        struct Twice {
            role: &'static str,
            #[serde(flatten)]
            inner: Inner,
        }
        #[derive(Serialize)]
        struct Shadow {
            role: &'static str,
            exp: u64,
        }
        #[derive(Serialize)]
        enum Variant {
            Tagged { role: &'static str },
            Newtype(u8),
            Unit,
        }
        #[derive(Serialize)]
        struct Numbers {
            a_f32: f32,
            b_big: u128,
            c_small: i128,
            d_nan: f64,
            e_keys: std::collections::BTreeMap<u32, f32>,
            f_bytes: &'static [u8],
        }
        #[derive(Serialize)]
        struct TooBig {
            n: u128,
        }
        #[derive(Serialize)]
        struct Named(std::collections::BTreeMap<String, u8>);

        same(Twice {
            role: "a",
            inner: Inner { role: "b" },
        });
        same(Shadow { role: "a", exp: 1 });
        same(Variant::Tagged { role: "a" });
        same(Variant::Newtype(1));
        same(Variant::Unit);
        same(Numbers {
            a_f32: 0.1,
            b_big: u128::from(u64::MAX),
            c_small: -5,
            d_nan: f64::NAN,
            e_keys: [(7, 0.5_f32)].into_iter().collect(),
            f_bytes: b"\x00\xff",
        });
        same(TooBig { n: u128::MAX });
        same(Named(
            [("b".to_owned(), 1), ("a".to_owned(), 2)]
                .into_iter()
                .collect(),
        ));
        same(
            [(3_u32, "x")]
                .into_iter()
                .collect::<std::collections::BTreeMap<_, _>>(),
        );
        same(std::collections::BTreeMap::<String, u8>::new());
        same(Some(Inner { role: "r" }));
        same(None::<Inner>);
        same(());
        same(NoCustomClaims {});
        same(5_u8);
        same("text");
        same(vec![1, 2]);
        let many: Map<String, Value> = (0..100)
            .map(|i| (format!("k{i:03}"), Value::from(i)))
            .collect();
        same(many);
    }

    #[test]
    fn unknown_claims_are_kept_in_a_map_and_ignored_otherwise() {
        let json = br#"{"sub":"u","x":1,"y":[true]}"#;
        let c = Claims::<Map<String, Value>>::from_json::<NumericDate>(json).unwrap();
        assert_eq!(c.sub.as_deref(), Some("u"));
        assert_eq!(c.custom.len(), 2);
        let c = Claims::<NoCustomClaims>::from_json::<NumericDate>(json).unwrap();
        assert_eq!(c.sub.as_deref(), Some("u"));
        let c = Claims::<()>::from_json::<NumericDate>(json).unwrap();
        assert_eq!(c.sub.as_deref(), Some("u"));
        assert_eq!(
            Claims::new(())
                .subject("u")
                .to_json::<NumericDate>()
                .unwrap(),
            br#"{"sub":"u"}"#
        );
    }

    /// Regression (found by the `claims_json` fuzz target): an integer too large for
    /// u64 in a custom claim is a float; it must read back as the same float.
    #[test]
    fn huge_numbers_in_custom_claims_round_trip() {
        let json = br#"{"iss":"a","n":17095220000000000000016578868067081243182,"f":0.1}"#;
        let c = Claims::<Map<String, Value>>::from_json::<NumericDate>(json).unwrap();
        let again = c.to_json::<NumericDate>().unwrap();
        assert_eq!(
            Claims::<Map<String, Value>>::from_json::<NumericDate>(&again).unwrap(),
            c
        );
    }

    #[test]
    fn random_token_ids_are_distinct_hex() {
        let a = Claims::new(()).random_token_id().unwrap().jti.unwrap();
        let b = Claims::new(()).random_token_id().unwrap().jti.unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn valid_for_refuses_overflow() {
        let e = Claims::new(()).valid_for(&FixedClock(Timestamp::MAX), Duration::from_secs(1));
        assert_eq!(e.err(), Some(Error::TimestampOutOfRange));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn arb_claims() -> impl Strategy<Value = Claims<App>> {
            let t = proptest::option::of((0..=Timestamp::MAX.unix_seconds()).prop_map(ts));
            let s = || proptest::option::of("\\PC{0,24}");
            let aud = proptest::option::of(prop_oneof![
                "\\PC{0,12}".prop_map(Audience::One),
                proptest::collection::vec("\\PC{0,12}", 0..4).prop_map(Audience::Many),
            ]);
            (
                s(),
                s(),
                aud,
                t.clone(),
                t.clone(),
                t,
                s(),
                "\\PC{0,16}",
                any::<u64>(),
                s(),
            )
                .prop_map(|(iss, sub, aud, exp, nbf, iat, jti, role, sid, note)| {
                    Claims {
                        iss,
                        sub,
                        aud,
                        exp,
                        nbf,
                        iat,
                        jti,
                        custom: App { role, sid, note },
                    }
                })
        }

        /// Arbitrary JSON values, nested a few levels, with names that may be
        /// registered claim names.
        fn arb_json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
                any::<f64>().prop_map(Value::from),
                "\\PC{0,12}".prop_map(Value::from),
            ];
            leaf.prop_recursive(3, 24, 4, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    proptest::collection::vec(
                        (prop_oneof![Just("exp".to_owned()), "\\PC{0,6}"], inner),
                        0..4
                    )
                    .prop_map(|v| Value::Object(v.into_iter().collect())),
                ]
            })
        }

        proptest! {
            #[test]
            fn both_encodings_round_trip(c in arb_claims()) {
                let jwt = c.to_json::<NumericDate>().unwrap();
                prop_assert_eq!(&Claims::<App>::from_json::<NumericDate>(&jwt).unwrap(), &c);
                let paseto = c.to_json::<Rfc3339>().unwrap();
                prop_assert_eq!(&Claims::<App>::from_json::<Rfc3339>(&paseto).unwrap(), &c);
            }

            /// Any whole second plus a fraction: `exp` reads as the second, `nbf` and
            /// `iat` as the next; never outside the written instant's second.
            #[test]
            fn fractional_numeric_dates_round_conservatively(
                secs in 0..253_402_300_799_i64,
                millis in 1..1000_u32,
            ) {
                let json = format!(
                    r#"{{"exp":{secs}.{millis:03},"nbf":{secs}.{millis:03},"iat":{secs}.{millis:03}}}"#
                );
                let c = Claims::<NoCustomClaims>::from_json::<NumericDate>(json.as_bytes()).unwrap();
                prop_assert_eq!(c.exp.map(Timestamp::unix_seconds), Some(secs));
                prop_assert_eq!(c.nbf.map(Timestamp::unix_seconds), Some(secs + 1));
                prop_assert_eq!(c.iat.map(Timestamp::unix_seconds), Some(secs + 1));
            }

            /// The direct writer gives the general path's bytes, or gives way to it:
            /// for a struct whose fields are in sorted order and for any map of
            /// arbitrary JSON (the map's own order in both paths).
            #[test]
            fn direct_writer_matches_the_general_path(
                c in arb_claims(),
                extra in proptest::collection::vec(
                    (prop_oneof![1 => Just("exp".to_owned()), 1 => Just("sub".to_owned()), 8 => "\\PC{0,8}"], arb_json()),
                    0..6,
                ),
            ) {
                // `App`'s fields are not in sorted order: the same JSON, and the
                // registered claims byte for byte.
                let parsed = |b: Result<Vec<u8>>| serde_json::from_slice::<Value>(&b.unwrap()).unwrap();
                prop_assert_eq!(
                    parsed(c.to_json::<NumericDate>()),
                    parsed(c.to_json_through_value::<NumericDate>())
                );
                prop_assert_eq!(
                    parsed(c.to_json::<Rfc3339>()),
                    parsed(c.to_json_through_value::<Rfc3339>())
                );
                let bare = Claims {
                    custom: NoCustomClaims {},
                    iss: c.iss.clone(), sub: c.sub.clone(), aud: c.aud.clone(), exp: c.exp,
                    nbf: c.nbf, iat: c.iat, jti: c.jti.clone(),
                };
                prop_assert_eq!(bare.to_json::<NumericDate>(), bare.to_json_through_value::<NumericDate>());
                prop_assert_eq!(bare.to_json::<Rfc3339>(), bare.to_json_through_value::<Rfc3339>());
                let m = Claims {
                    custom: extra.into_iter().collect::<Map<String, Value>>(),
                    iss: c.iss, sub: c.sub, aud: c.aud, exp: c.exp, nbf: c.nbf, iat: c.iat, jti: c.jti,
                };
                prop_assert_eq!(m.to_json::<NumericDate>(), m.to_json_through_value::<NumericDate>());
                prop_assert_eq!(m.to_json::<Rfc3339>(), m.to_json_through_value::<Rfc3339>());
            }

            #[test]
            fn decoding_arbitrary_bytes_never_panics(b in proptest::collection::vec(any::<u8>(), 0..256)) {
                let _ = Claims::<App>::from_json::<NumericDate>(&b);
                let _ = Claims::<Map<String, Value>>::from_json::<Rfc3339>(&b);
            }
        }
    }
}
