//! A `serde::Serializer` that writes canonical JSON directly, without
//! building a `serde_json::Value` first: the form of [`crate::canonical`]
//! (object keys sorted by their UTF-8 bytes, no whitespace, strings and
//! integers as `serde_json` writes them).
//!
//! Objects are written entry by entry as they come; at the object's end
//! the entries are put in key order if they are not in it already (a
//! struct whose fields are declared in order costs nothing more). Whatever
//! it does not handle exactly like the `Value` path (floats, 128-bit
//! integers, bytes, map keys that are not strings, duplicate keys, a custom
//! error from a `Serialize` impl) makes it give up, and the caller uses the
//! `Value` path: the output never depends on which path wrote it.

use std::fmt::Display;
use std::io::Write as _;

use serde::ser::{self, Serialize};

/// Why the writer gave up.
#[derive(Debug)]
pub(crate) struct GaveUp;

impl Display for GaveUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not written by the direct canonical writer")
    }
}

impl std::error::Error for GaveUp {}

impl ser::Error for GaveUp {
    fn custom<T: Display>(_msg: T) -> Self {
        GaveUp
    }
}

type Result<T> = std::result::Result<T, GaveUp>;

/// The canonical JSON text of `value`, or `GaveUp`.
pub(crate) fn to_string<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    let mut out = Vec::with_capacity(256);
    value.serialize(&mut Writer { out: &mut out })?;
    // Only valid UTF-8 was written (strings come from `&str`).
    String::from_utf8(out).map_err(|_| GaveUp)
}

struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

impl Writer<'_> {
    fn string(&mut self, s: &str) -> Result<()> {
        // serde_json's own escaping, straight into the buffer.
        serde_json::to_writer(&mut *self.out, s).map_err(|_| GaveUp)
    }

    fn integer(&mut self, v: impl Display) -> Result<()> {
        // An integer's `Display` is what serde_json writes.
        write!(self.out, "{v}").map_err(|_| GaveUp)
    }

    fn object(&mut self) -> Object<'_> {
        self.out.push(b'{');
        let start = self.out.len();
        Object {
            out: self.out,
            start,
            entries: Vec::new(),
            key: None,
        }
    }
}

impl<'a, 'w> ser::Serializer for &'a mut Writer<'w> {
    type Ok = ();
    type Error = GaveUp;
    type SerializeSeq = Array<'a>;
    type SerializeTuple = Array<'a>;
    type SerializeTupleStruct = Array<'a>;
    type SerializeTupleVariant = VariantArray<'a>;
    type SerializeMap = Object<'a>;
    type SerializeStruct = Object<'a>;
    type SerializeStructVariant = VariantObject<'a>;

    fn serialize_bool(self, v: bool) -> Result<()> {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<()> {
        self.integer(v)
    }
    fn serialize_i16(self, v: i16) -> Result<()> {
        self.integer(v)
    }
    fn serialize_i32(self, v: i32) -> Result<()> {
        self.integer(v)
    }
    fn serialize_i64(self, v: i64) -> Result<()> {
        self.integer(v)
    }
    fn serialize_u8(self, v: u8) -> Result<()> {
        self.integer(v)
    }
    fn serialize_u16(self, v: u16) -> Result<()> {
        self.integer(v)
    }
    fn serialize_u32(self, v: u32) -> Result<()> {
        self.integer(v)
    }
    fn serialize_u64(self, v: u64) -> Result<()> {
        self.integer(v)
    }
    fn serialize_i128(self, _v: i128) -> Result<()> {
        Err(GaveUp)
    }
    fn serialize_u128(self, _v: u128) -> Result<()> {
        Err(GaveUp)
    }
    fn serialize_f32(self, _v: f32) -> Result<()> {
        Err(GaveUp)
    }
    fn serialize_f64(self, _v: f64) -> Result<()> {
        Err(GaveUp)
    }
    fn serialize_char(self, v: char) -> Result<()> {
        self.string(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<()> {
        self.string(v)
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<()> {
        Err(GaveUp)
    }
    fn serialize_none(self) -> Result<()> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<()> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<()> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<()> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<()> {
        self.string(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<()> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<()> {
        // `{"variant":value}`: one key, in order by itself.
        self.out.push(b'{');
        self.string(variant)?;
        self.out.push(b':');
        value.serialize(&mut *self)?;
        self.out.push(b'}');
        Ok(())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Array<'a>> {
        self.out.push(b'[');
        Ok(Array {
            out: self.out,
            first: true,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Array<'a>> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Array<'a>> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<VariantArray<'a>> {
        self.out.push(b'{');
        self.string(variant)?;
        self.out.extend_from_slice(b":[");
        Ok(VariantArray {
            array: Array {
                out: self.out,
                first: true,
            },
        })
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Object<'a>> {
        Ok(self.object())
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Object<'a>> {
        Ok(self.object())
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<VariantObject<'a>> {
        self.out.push(b'{');
        self.string(variant)?;
        self.out.push(b':');
        Ok(VariantObject {
            object: self.object(),
        })
    }
}

/// An array being written.
struct Array<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl Array<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        value.serialize(&mut Writer { out: self.out })
    }

    fn close(self) {
        self.out.push(b']');
    }
}

impl ser::SerializeSeq for Array<'_> {
    type Ok = ();
    type Error = GaveUp;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.element(value)
    }
    fn end(self) -> Result<()> {
        self.close();
        Ok(())
    }
}

impl ser::SerializeTuple for Array<'_> {
    type Ok = ();
    type Error = GaveUp;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.element(value)
    }
    fn end(self) -> Result<()> {
        self.close();
        Ok(())
    }
}

impl ser::SerializeTupleStruct for Array<'_> {
    type Ok = ();
    type Error = GaveUp;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.element(value)
    }
    fn end(self) -> Result<()> {
        self.close();
        Ok(())
    }
}

/// `{"variant":[...]}` being written.
struct VariantArray<'a> {
    array: Array<'a>,
}

impl ser::SerializeTupleVariant for VariantArray<'_> {
    type Ok = ();
    type Error = GaveUp;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.array.element(value)
    }
    fn end(self) -> Result<()> {
        let out = self.array.out;
        out.extend_from_slice(b"]}");
        Ok(())
    }
}

/// Where an entry of an object being written is: its key (unescaped, for
/// sorting) and the bytes of `"key":value` in the buffer.
struct Entry {
    key: Key,
    start: usize,
    end: usize,
}

enum Key {
    Static(&'static str),
    Owned(String),
}

impl Key {
    fn as_bytes(&self) -> &[u8] {
        match self {
            Key::Static(s) => s.as_bytes(),
            Key::Owned(s) => s.as_bytes(),
        }
    }
}

/// An object being written.
struct Object<'a> {
    out: &'a mut Vec<u8>,
    /// Where its first entry starts (after `{`).
    start: usize,
    entries: Vec<Entry>,
    /// A map key written, waiting for its value.
    key: Option<(Key, usize)>,
}

impl<'a> Object<'a> {
    fn begin_entry(&mut self, key: Key) -> Result<()> {
        if !self.entries.is_empty() {
            self.out.push(b',');
        }
        let start = self.out.len();
        let text = match &key {
            Key::Static(s) => *s,
            Key::Owned(s) => s.as_str(),
        };
        serde_json::to_writer(&mut *self.out, text).map_err(|_| GaveUp)?;
        self.out.push(b':');
        self.key = Some((key, start));
        Ok(())
    }

    fn value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let (key, start) = self.key.take().ok_or(GaveUp)?;
        value.serialize(&mut Writer { out: self.out })?;
        self.entries.push(Entry {
            key,
            start,
            end: self.out.len(),
        });
        Ok(())
    }

    /// Puts the entries in key order (a duplicate key gives up: the
    /// `Value` path keeps the last one) and closes the object; returns the
    /// buffer.
    fn close(mut self) -> Result<&'a mut Vec<u8>> {
        if self.key.is_some() {
            return Err(GaveUp);
        }
        let sorted = self
            .entries
            .windows(2)
            .all(|w| w[0].key.as_bytes() < w[1].key.as_bytes());
        if !sorted {
            self.entries
                .sort_by(|a, b| a.key.as_bytes().cmp(b.key.as_bytes()));
            if self
                .entries
                .windows(2)
                .any(|w| w[0].key.as_bytes() == w[1].key.as_bytes())
            {
                return Err(GaveUp);
            }
            let written = self.out.split_off(self.start);
            for (i, e) in self.entries.iter().enumerate() {
                if i > 0 {
                    self.out.push(b',');
                }
                self.out
                    .extend_from_slice(&written[e.start - self.start..e.end - self.start]);
            }
        }
        self.out.push(b'}');
        Ok(self.out)
    }
}

impl ser::SerializeMap for Object<'_> {
    type Ok = ();
    type Error = GaveUp;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        let key = key.serialize(KeyWriter)?;
        self.begin_entry(Key::Owned(key))
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.value(value)
    }
    fn end(self) -> Result<()> {
        self.close().map(|_| ())
    }
}

impl ser::SerializeStruct for Object<'_> {
    type Ok = ();
    type Error = GaveUp;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        self.begin_entry(Key::Static(key))?;
        self.value(value)
    }
    fn end(self) -> Result<()> {
        self.close().map(|_| ())
    }
}

/// `{"variant":{...}}` being written.
struct VariantObject<'a> {
    object: Object<'a>,
}

impl ser::SerializeStructVariant for VariantObject<'_> {
    type Ok = ();
    type Error = GaveUp;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        self.object.begin_entry(Key::Static(key))?;
        self.object.value(value)
    }
    fn end(self) -> Result<()> {
        self.object.close()?.push(b'}');
        Ok(())
    }
}

/// Map keys: strings (and chars) only; anything else gives up.
struct KeyWriter;

impl ser::Serializer for KeyWriter {
    type Ok = String;
    type Error = GaveUp;
    type SerializeSeq = ser::Impossible<String, GaveUp>;
    type SerializeTuple = ser::Impossible<String, GaveUp>;
    type SerializeTupleStruct = ser::Impossible<String, GaveUp>;
    type SerializeTupleVariant = ser::Impossible<String, GaveUp>;
    type SerializeMap = ser::Impossible<String, GaveUp>;
    type SerializeStruct = ser::Impossible<String, GaveUp>;
    type SerializeStructVariant = ser::Impossible<String, GaveUp>;

    fn serialize_str(self, v: &str) -> Result<String> {
        Ok(v.to_owned())
    }
    fn serialize_char(self, v: char) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<String> {
        value.serialize(self)
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<String> {
        Ok(variant.to_owned())
    }
    fn serialize_bool(self, _v: bool) -> Result<String> {
        Err(GaveUp)
    }
    fn serialize_i8(self, _v: i8) -> Result<String> {
        Err(GaveUp)
    }
    fn serialize_i16(self, _v: i16) -> Result<String> {
        Err(GaveUp)
    }
    fn serialize_i32(self, _v: i32) -> Result<String> {
        Err(GaveUp)
    }
    fn serialize_i64(self, _v: i64) -> Result<String> {
        Err(GaveUp)
    }
    fn serialize_u8(self, _v: u8) -> Result<String> {
        Err(GaveUp)
    }
    fn serialize_u16(self, _v: u16) -> Result<String> {
        Err(GaveUp)
    }
    fn serialize_u32(self, _v: u32) -> Result<String> {
        Err(GaveUp)
    }
    fn serialize_u64(self, _v: u64) -> Result<String> {
        Err(GaveUp)
    }
    fn serialize_f32(self, _v: f32) -> Result<String> {
        Err(GaveUp)
    }
    fn serialize_f64(self, _v: f64) -> Result<String> {
        Err(GaveUp)
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<String> {
        Err(GaveUp)
    }
    fn serialize_none(self) -> Result<String> {
        Err(GaveUp)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<String> {
        Err(GaveUp)
    }
    fn serialize_unit(self) -> Result<String> {
        Err(GaveUp)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<String> {
        Err(GaveUp)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<String> {
        Err(GaveUp)
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq> {
        Err(GaveUp)
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple> {
        Err(GaveUp)
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct> {
        Err(GaveUp)
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        Err(GaveUp)
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap> {
        Err(GaveUp)
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self::SerializeStruct> {
        Err(GaveUp)
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant> {
        Err(GaveUp)
    }
}
