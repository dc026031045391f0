//! Strict JSON: the one reading of every JSON text a token carries.
//!
//! RFC 8259 leaves a repeated member name undefined, and parsers differ: most keep the
//! last value, some the first, some refuse. A token read by two parsers in a chain (a
//! gateway, then a service; a library, then an audit log) must mean the same thing to
//! both, so claims sets (JWT and PASETO payloads), PASETO footers and JOSE headers are
//! read here, and a member name repeated in any object, at any depth, is an error.
//! Names are compared after unescaping: `"sub"` and `"s\u0075b"` are the same name.
//!
//! The check is one extra pass over the text that allocates only the names of members
//! written with escapes; the typed parse follows it.
//!
//! Texts that carry a bound on their shape (PASETO footers, JOSE headers) are first
//! measured by [`check_shape`], one linear scan that parses nothing, so every reader
//! applies the same depth and width bounds before anything is parsed.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, Deserializer, MapAccess, SeqAccess};

use crate::error::{Error, Result};

/// The most characters of an attacker-chosen member name echoed in an error.
const MAX_ECHOED_NAME: usize = 64;

/// Checks that `json` is one JSON value (surrounding whitespace allowed) in which no
/// object repeats a member name.
///
/// # Errors
/// [`Error::DuplicateMember`] naming the repeated member; [`Error::MalformedJson`] when
/// `json` is not JSON.
pub fn check(json: &[u8]) -> Result<()> {
    check_str(utf8(json)?)
}

/// `json` as text: JSON is UTF-8, checked once here so the parses that follow read a
/// `&str` and do not check each string again.
pub(crate) fn utf8(json: &[u8]) -> Result<&str> {
    std::str::from_utf8(json)
        .map_err(|e| Error::MalformedJson(format!("not UTF-8 at byte {}", e.valid_up_to())))
}

/// [`check`] on text.
pub(crate) fn check_str(json: &str) -> Result<()> {
    let mut duplicate = None;
    let mut de = serde_json::Deserializer::from_str(json);
    let checked = Unique {
        duplicate: &mut duplicate,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    match (checked, duplicate) {
        (Ok(()), _) => Ok(()),
        (Err(_), Some(name)) => Err(Error::DuplicateMember(name)),
        (Err(e), None) => Err(Error::MalformedJson(e.to_string())),
    }
}

/// Reads `json` as a `T` after [`check`]ing it.
///
/// # Errors
/// As [`check`]; [`Error::MalformedJson`] when the JSON does not fit `T`.
pub fn from_slice<T: DeserializeOwned>(json: &[u8]) -> Result<T> {
    let text = utf8(json)?;
    check_str(text)?;
    serde_json::from_str(text).map_err(|e| Error::MalformedJson(e.to_string()))
}

/// Checks the nesting depth and the top-level width of a JSON text without parsing it:
/// one linear scan, so a hostile text costs no more than its length. An object or an
/// array of scalars is depth 1; `max_members` bounds the members of a top-level object.
/// Brackets, braces and colons inside strings are not counted. A text that is not JSON
/// is not refused here: the parse that follows refuses it.
///
/// # Errors
/// [`Error::JsonTooDeep`] or [`Error::JsonTooWide`], at the first byte over a bound.
pub fn check_shape(json: &[u8], max_depth: usize, max_members: usize) -> Result<()> {
    let (mut depth, mut members) = (0usize, 0usize);
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
                if depth > max_depth {
                    return Err(Error::JsonTooDeep { max: max_depth });
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b':' if depth == 1 => {
                members += 1;
                if members > max_members {
                    return Err(Error::JsonTooWide { max: max_members });
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Walks one JSON value, recording the first repeated member name in `duplicate`.
struct Unique<'s> {
    duplicate: &'s mut Option<String>,
}

impl<'de> DeserializeSeed<'de> for Unique<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> de::Visitor<'de> for Unique<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        while seq
            .next_element_seed(Unique {
                duplicate: &mut *self.duplicate,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        let mut seen = Seen::default();
        while let Some(name) = map.next_key_seed(Name)? {
            if seen.contains(&name) {
                *self.duplicate = Some(echo(&name));
                return Err(de::Error::custom("duplicate member name"));
            }
            map.next_value_seed(Unique {
                duplicate: &mut *self.duplicate,
            })?;
            seen.insert(name);
        }
        Ok(())
    }
}

/// The names an object has had so far: the first [`Seen::SMALL`] on the stack, compared
/// one by one (a claims set has about ten), the rest in an ordered set.
#[derive(Default)]
struct Seen<'de> {
    small: [Option<Cow<'de, str>>; Seen::SMALL],
    large: BTreeSet<Cow<'de, str>>,
}

impl<'de> Seen<'de> {
    const SMALL: usize = 12;

    fn contains(&self, name: &str) -> bool {
        self.small
            .iter()
            .map_while(Option::as_deref)
            .any(|n| n == name)
            || self.large.contains(name)
    }

    fn insert(&mut self, name: Cow<'de, str>) {
        match self.small.iter_mut().find(|slot| slot.is_none()) {
            Some(slot) => *slot = Some(name),
            None => {
                self.large.insert(name);
            }
        }
    }
}

/// A member name, borrowed from the input unless it was written with escapes.
struct Name;

impl<'de> DeserializeSeed<'de> for Name {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> de::Visitor<'de> for Name {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> std::result::Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> std::result::Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// An attacker-chosen name, cut to [`MAX_ECHOED_NAME`] characters, anything outside
/// visible ASCII shown as `?`.
fn echo(name: &str) -> String {
    name.chars()
        .take(MAX_ECHOED_NAME)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, Value};

    fn dup(json: &str) -> Option<String> {
        match check(json.as_bytes()) {
            Err(Error::DuplicateMember(name)) => Some(name),
            Ok(()) => None,
            Err(other) => panic!("{json}: {other:?}"),
        }
    }

    #[test]
    fn repeated_member_names_are_refused_at_any_depth() {
        assert_eq!(dup(r#"{"sub":"q","sub":"z"}"#).as_deref(), Some("sub"));
        assert_eq!(dup(r#"{"a":{"b":1,"b":2}}"#).as_deref(), Some("b"));
        assert_eq!(
            dup(r#"[{"x":1},{"y":[{"z":0,"z":0}]}]"#).as_deref(),
            Some("z")
        );
        // Compared after unescaping.
        assert_eq!(dup(r#"{"sub":"q","s\u0075b":"z"}"#).as_deref(), Some("sub"));
        assert_eq!(dup(r#"{"\u00e9":1,"é":2}"#).as_deref(), Some("?"));
        // The same name in sibling objects, or as a value, is fine.
        assert_eq!(dup(r#"{"a":{"k":1},"b":{"k":1},"k":"k"}"#), None);
        assert_eq!(dup(r#"[1,"a",null,true,-2,0.5,{}]"#), None);
    }

    #[test]
    fn repeats_are_found_past_the_names_kept_on_the_stack() {
        let members = |names: &[String]| {
            let body: Vec<String> = names.iter().map(|n| format!("\"{n}\":0")).collect();
            format!("{{{}}}", body.join(","))
        };
        let many: Vec<String> = (0..40).map(|i| format!("m{i}")).collect();
        assert_eq!(dup(&members(&many)), None);
        // A repeat of a name kept on the stack, of one kept in the set, and one of each
        // side of the boundary.
        for (first, again) in [(0, 39), (5, 11), (11, 12), (12, 39), (30, 31)] {
            let mut names = many.clone();
            names[again] = names[first].clone();
            assert_eq!(
                dup(&members(&names)).as_deref(),
                Some(names[first].as_str()),
                "{first} repeated at {again}"
            );
        }
    }

    #[test]
    fn text_that_is_not_utf8_is_malformed_json() {
        for bad in [&b"{\"a\":\"\xff\"}"[..], b"\xef\xbb", b"{\"\xc3\":1}"] {
            assert!(matches!(check(bad), Err(Error::MalformedJson(_))));
            assert!(matches!(
                from_slice::<serde_json::Value>(bad),
                Err(Error::MalformedJson(_))
            ));
        }
    }

    #[test]
    fn echoed_names_are_bounded_and_printable() {
        let long = "n".repeat(1000);
        let name = dup(&format!(r#"{{"{long}":1,"{long}":2}}"#)).unwrap();
        assert_eq!(name.len(), MAX_ECHOED_NAME);
        assert_eq!(dup(r#"{"a\nb":1,"a\nb":2}"#).as_deref(), Some("a?b"));
    }

    #[test]
    fn malformed_json_is_typed() {
        for bad in [
            "",
            "{",
            r#"{"a":1}x"#,
            r#"{"a":"\ud800"}"#,
            "nul",
            "{'a':1}",
        ] {
            assert!(
                matches!(check(bad.as_bytes()), Err(Error::MalformedJson(_))),
                "{bad}"
            );
        }
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(matches!(
            check(deep.as_bytes()),
            Err(Error::MalformedJson(_))
        ));
        assert!(check(b" {\"a\":[1,2]} \n").is_ok());
    }

    #[test]
    fn shape_bounds_depth_and_width_without_parsing() {
        assert_eq!(check_shape(br#"{"a":{"b":1}}"#, 2, 16), Ok(()));
        assert_eq!(
            check_shape(br#"{"a":{"b":{"c":1}}}"#, 2, 16),
            Err(Error::JsonTooDeep { max: 2 })
        );
        assert_eq!(
            check_shape(br#"[[["x"]]]"#, 2, 16),
            Err(Error::JsonTooDeep { max: 2 })
        );
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(
            check_shape(deep.as_bytes(), 4, 16),
            Err(Error::JsonTooDeep { max: 4 })
        );
        let wide: Vec<String> = (0..17).map(|i| format!("\"k{i}\":{{\"x\":1}}")).collect();
        let wide = format!("{{{}}}", wide.join(","));
        assert_eq!(
            check_shape(wide.as_bytes(), 2, 16),
            Err(Error::JsonTooWide { max: 16 })
        );
        // Only top-level members count, and nothing inside strings does.
        assert_eq!(check_shape(wide.as_bytes(), 2, 17), Ok(()));
        assert_eq!(check_shape(br#"{"a":"{[:\"{{{{","b":"]]]"}"#, 1, 2), Ok(()));
        assert_eq!(
            Error::JsonTooDeep { max: 2 }.to_string(),
            "JSON nested deeper than 2 levels"
        );
        assert_eq!(
            Error::JsonTooWide { max: 16 }.to_string(),
            "JSON object with more than 16 members"
        );
    }

    #[test]
    fn from_slice_reads_after_checking() {
        let m: Map<String, Value> = from_slice(br#"{"a":1}"#).unwrap();
        assert_eq!(m["a"], 1);
        assert_eq!(
            from_slice::<Map<String, Value>>(br#"{"a":1,"a":1}"#),
            Err(Error::DuplicateMember("a".into()))
        );
        assert!(matches!(
            from_slice::<Map<String, Value>>(b"[1]"),
            Err(Error::MalformedJson(_))
        ));
    }
}
