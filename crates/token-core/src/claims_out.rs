//! The application's claims written straight into a token's claims JSON, without
//! building a `serde_json::Value` first.
//!
//! [`append`] takes the common shapes — a struct, a map with string keys, a unit or
//! `None` (no claims), through `Some` and newtype wrappers — and writes each member
//! after the registered claims, refusing nothing itself: any member whose name is a
//! registered claim, a name written twice, a key that is not a string, a number a
//! `serde_json::Value` cannot hold, a `Serialize` error or any other shape makes it
//! give up ([`Fallback`]). The caller then takes the general path through
//! `serde_json::Value`, which gives the exact result or error it always gave. So every
//! check stays where it was, and the direct path only ever writes what the general
//! path would have accepted, member for member.
//!
//! Numbers are written as a `serde_json::Value` holds them (an `f32` widened to `f64`),
//! so both paths write the same bytes. Members come in the order the type serializes
//! them (a struct's field order), which is the general path's order whenever
//! `serde_json`'s `preserve_order` feature is on, and its sorted order otherwise.

use std::fmt;
use std::io;

use serde::ser::{self, Impossible, Serialize, SerializeMap, SerializeStruct, Serializer};
use serde_json::ser::{CompactFormatter, Formatter};

use crate::claims::RegisteredClaim;

/// The most members the direct path takes (each new name is compared with those
/// before it); larger claim sets take the general path.
const MAX_MEMBERS: usize = 64;

/// The direct path gave up: take the general path.
#[derive(Debug)]
pub(crate) struct Fallback;

impl fmt::Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("custom claims that need the general path")
    }
}

impl std::error::Error for Fallback {}

impl ser::Error for Fallback {
    fn custom<M: fmt::Display>(_: M) -> Self {
        Self
    }
}

/// Appends `custom`'s members to `out`, which holds a JSON object without its closing
/// brace (`{` or `{"iss":…`). On [`Fallback`], `out` holds a partial write: discard it.
pub(crate) fn append<T: Serialize + ?Sized>(custom: &T, out: &mut Vec<u8>) -> Result<(), Fallback> {
    custom.serialize(Members {
        out,
        names: Vec::new(),
    })
}

/// Compact JSON with the numbers of a `serde_json::Value`: an `f32` widened to `f64`
/// (`0.1f32` as `0.10000000149011612`), and a 128-bit integer only within 64 bits.
/// Object keys are written as `serde_json` writes them.
#[derive(Default)]
struct AsValue {
    in_key: bool,
}

fn out_of_range() -> io::Error {
    io::Error::other("number out of range")
}

impl Formatter for AsValue {
    fn write_f32<W: ?Sized + io::Write>(&mut self, w: &mut W, value: f32) -> io::Result<()> {
        if self.in_key {
            CompactFormatter.write_f32(w, value)
        } else {
            CompactFormatter.write_f64(w, f64::from(value))
        }
    }

    fn write_i128<W: ?Sized + io::Write>(&mut self, w: &mut W, value: i128) -> io::Result<()> {
        if self.in_key {
            return CompactFormatter.write_i128(w, value);
        }
        if let Ok(v) = u64::try_from(value) {
            CompactFormatter.write_u64(w, v)
        } else if let Ok(v) = i64::try_from(value) {
            CompactFormatter.write_i64(w, v)
        } else {
            Err(out_of_range())
        }
    }

    fn write_u128<W: ?Sized + io::Write>(&mut self, w: &mut W, value: u128) -> io::Result<()> {
        if self.in_key {
            return CompactFormatter.write_u128(w, value);
        }
        match u64::try_from(value) {
            Ok(v) => CompactFormatter.write_u64(w, v),
            Err(_) => Err(out_of_range()),
        }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.in_key = true;
        CompactFormatter.begin_object_key(w, first)
    }

    fn end_object_key<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.in_key = false;
        CompactFormatter.end_object_key(w)
    }
}

/// Writes one JSON value with [`AsValue`].
fn write_value<V: Serialize + ?Sized>(out: &mut Vec<u8>, value: &V) -> Result<(), Fallback> {
    let mut ser = serde_json::Serializer::with_formatter(out, AsValue::default());
    value.serialize(&mut ser).map_err(|_| Fallback)
}

/// The top-level serializer: accepts what serializes to an object (or to nothing).
struct Members<'a> {
    out: &'a mut Vec<u8>,
    /// Where each member name written so far sits in `out` (escaped, quotes included).
    names: Vec<(usize, usize)>,
}

impl Members<'_> {
    /// Writes `"name":` after a comma when needed; gives up on a registered or repeated
    /// name.
    fn name(&mut self, name: &str) -> Result<(), Fallback> {
        if RegisteredClaim::from_name(name).is_some() || self.names.len() >= MAX_MEMBERS {
            return Err(Fallback);
        }
        if self.out.last() != Some(&b'{') {
            self.out.push(b',');
        }
        let start = self.out.len();
        write_value(self.out, name)?;
        let end = self.out.len();
        // Escaping is a function of the string: equal names have equal escaped bytes.
        let written = self.out.get(start..end);
        if self
            .names
            .iter()
            .any(|&(s, e)| self.out.get(s..e) == written)
        {
            return Err(Fallback);
        }
        self.names.push((start, end));
        self.out.push(b':');
        Ok(())
    }

    fn member<V: Serialize + ?Sized>(&mut self, name: &str, value: &V) -> Result<(), Fallback> {
        self.name(name)?;
        write_value(self.out, value)
    }
}

/// The `Serializer` methods both serializers below refuse with [`Fallback`]: scalars
/// where an object is wanted, sequences and enum variants (the generic path handles
/// them).
macro_rules! refuse_the_rest {
    () => {
        refuse_the_rest!(@scalars
            serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
            serialize_i64: i64, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
            serialize_u64: u64, serialize_f32: f32, serialize_f64: f64, serialize_char: char);
        fn serialize_bytes(self, _: &[u8]) -> Result<(), Fallback> {
            Err(Fallback)
        }
        fn serialize_unit_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
        ) -> Result<(), Fallback> {
            Err(Fallback)
        }
        fn serialize_newtype_variant<V: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &V,
        ) -> Result<(), Fallback> {
            Err(Fallback)
        }
        fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Fallback> {
            Err(Fallback)
        }
        fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Fallback> {
            Err(Fallback)
        }
        fn serialize_tuple_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleStruct, Fallback> {
            Err(Fallback)
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleVariant, Fallback> {
            Err(Fallback)
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStructVariant, Fallback> {
            Err(Fallback)
        }
    };
    (@scalars $($name:ident: $t:ty),*) => {
        $(
            fn $name(self, _: $t) -> Result<(), Fallback> {
                Err(Fallback)
            }
        )*
    };
}

impl Serializer for Members<'_> {
    type Ok = ();
    type Error = Fallback;
    type SerializeSeq = Impossible<(), Fallback>;
    type SerializeTuple = Impossible<(), Fallback>;
    type SerializeTupleStruct = Impossible<(), Fallback>;
    type SerializeTupleVariant = Impossible<(), Fallback>;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Impossible<(), Fallback>;

    fn serialize_unit(self) -> Result<(), Fallback> {
        Ok(())
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Fallback> {
        Ok(())
    }

    fn serialize_none(self) -> Result<(), Fallback> {
        Ok(())
    }

    fn serialize_some<V: Serialize + ?Sized>(self, value: &V) -> Result<(), Fallback> {
        value.serialize(self)
    }

    fn serialize_newtype_struct<V: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &V,
    ) -> Result<(), Fallback> {
        value.serialize(self)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self, Fallback> {
        Ok(self)
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, Fallback> {
        Ok(self)
    }

    fn serialize_str(self, _: &str) -> Result<(), Fallback> {
        Err(Fallback)
    }
    refuse_the_rest!();
}

impl SerializeStruct for Members<'_> {
    type Ok = ();
    type Error = Fallback;

    fn serialize_field<V: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        value: &V,
    ) -> Result<(), Fallback> {
        self.member(name, value)
    }

    fn end(self) -> Result<(), Fallback> {
        Ok(())
    }
}

impl SerializeMap for Members<'_> {
    type Ok = ();
    type Error = Fallback;

    fn serialize_key<K: Serialize + ?Sized>(&mut self, key: &K) -> Result<(), Fallback> {
        key.serialize(KeyName(self))
    }

    fn serialize_value<V: Serialize + ?Sized>(&mut self, value: &V) -> Result<(), Fallback> {
        write_value(self.out, value)
    }

    fn end(self) -> Result<(), Fallback> {
        Ok(())
    }
}

/// A map key: a string (possibly in newtype wrappers), written as a member name.
/// Anything else takes the general path, which turns numbers and the like into names.
struct KeyName<'m, 'a>(&'m mut Members<'a>);

impl Serializer for KeyName<'_, '_> {
    type Ok = ();
    type Error = Fallback;
    type SerializeSeq = Impossible<(), Fallback>;
    type SerializeTuple = Impossible<(), Fallback>;
    type SerializeTupleStruct = Impossible<(), Fallback>;
    type SerializeTupleVariant = Impossible<(), Fallback>;
    type SerializeMap = Impossible<(), Fallback>;
    type SerializeStruct = Impossible<(), Fallback>;
    type SerializeStructVariant = Impossible<(), Fallback>;

    fn serialize_str(self, name: &str) -> Result<(), Fallback> {
        self.0.name(name)
    }

    fn serialize_newtype_struct<V: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &V,
    ) -> Result<(), Fallback> {
        value.serialize(self)
    }

    fn serialize_none(self) -> Result<(), Fallback> {
        Err(Fallback)
    }
    fn serialize_some<V: Serialize + ?Sized>(self, _: &V) -> Result<(), Fallback> {
        Err(Fallback)
    }
    fn serialize_unit(self) -> Result<(), Fallback> {
        Err(Fallback)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Fallback> {
        Err(Fallback)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Fallback> {
        Err(Fallback)
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, Fallback> {
        Err(Fallback)
    }
    refuse_the_rest!();
}
