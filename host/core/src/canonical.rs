//! Canonical JSON: the one byte form that content version ids and audit
//! hashes are computed over.
//!
//! Object keys are sorted (by their UTF-8 bytes), there is no whitespace, and
//! strings and numbers are written the way `serde_json` writes them. The form
//! does not depend on whether `serde_json`'s `preserve_order` feature is on
//! somewhere in the build, which is why we do not rely on `to_string` alone.

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The canonical JSON text of `value`.
pub fn to_canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, &mut out);
    out
}

/// The canonical JSON text of a JSON object given as its map.
pub fn map_to_canonical_json(map: &Map<String, Value>) -> String {
    let mut out = String::new();
    write_object(map, &mut out);
    out
}

/// The canonical JSON text of any serializable value.
///
/// # Errors
///
/// Fails only if `value` cannot be represented as JSON (a map with non-string
/// keys, a float that is NaN).
pub fn canonical_json_of<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    // Written directly when it can be (no `Value` in between: a tenth of
    // the time on a gate decision); else through `Value`, same bytes.
    match crate::canonical_writer::to_string(value) {
        Ok(text) => Ok(text),
        Err(_) => Ok(to_canonical_json(&serde_json::to_value(value)?)),
    }
}

/// Lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => write_object(map, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::String(s) => write_string(s, out),
        // Scalars have exactly one serde_json form.
        other => out.push_str(&other.to_string()),
    }
}

fn write_object(map: &Map<String, Value>, out: &mut String) {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    out.push('{');
    for (i, (key, item)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(key, out);
        out.push(':');
        write_value(item, out);
    }
    out.push('}');
}

fn write_string(s: &str, out: &mut String) {
    // serde_json's escaping, without building a `Value` per string.
    match serde_json::to_string(s) {
        Ok(quoted) => out.push_str(&quoted),
        // Serializing a `str` cannot fail; keep the output valid JSON anyway.
        Err(_) => out.push_str("\"\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_sorted_at_every_depth_and_whitespace_is_dropped() {
        let v = json!({"b": 1, "a": {"z": [true, null, "x\"y"], "c": 2.5}});
        assert_eq!(
            to_canonical_json(&v),
            r#"{"a":{"c":2.5,"z":[true,null,"x\"y"]},"b":1}"#
        );
    }

    /// A small deterministic generator (xorshift) of JSON trees with the
    /// awkward parts: escapes, control characters, non-ASCII, keys that
    /// are prefixes of each other or differ in case, integer extremes,
    /// floats (which the direct writer hands to the `Value` path).
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[(self.next() % items.len() as u64) as usize]
        }

        fn string(&mut self) -> String {
            const PIECES: &[&str] = &[
                "",
                "a",
                "A",
                "ab",
                "abc",
                "b",
                "Z",
                "é",
                "治愈",
                "唯一疗法",
                "\"",
                "\\",
                "\n",
                "\u{1}",
                "\u{1f}",
                "\u{7f}",
                "\u{2028}",
                "😀",
                " ",
                "/",
                "<b>",
                "key",
                "key2",
            ];
            let n = self.next() % 4;
            (0..n).map(|_| self.pick(PIECES)).collect()
        }

        fn value(&mut self, depth: u32) -> Value {
            let kind = if depth == 0 {
                self.next() % 5
            } else {
                self.next() % 7
            };
            match kind {
                0 => Value::Null,
                1 => Value::Bool(self.next().is_multiple_of(2)),
                2 => match self.next() % 6 {
                    0 => json!(i64::MIN),
                    1 => json!(u64::MAX),
                    2 => json!(-1),
                    3 => json!(0),
                    4 => json!(0.1),
                    _ => json!(self.next() as i64),
                },
                3 | 4 => Value::String(self.string()),
                5 => {
                    let n = self.next() % 4;
                    Value::Array((0..n).map(|_| self.value(depth - 1)).collect())
                }
                _ => {
                    let n = self.next() % 5;
                    let mut m = Map::new();
                    for _ in 0..n {
                        m.insert(self.string(), self.value(depth - 1));
                    }
                    Value::Object(m)
                }
            }
        }
    }

    #[test]
    fn the_direct_writer_writes_what_the_value_path_writes() {
        let mut g = Gen(0x9e37_79b9_7f4a_7c15);
        let mut direct = 0;
        for _ in 0..20_000 {
            let v = g.value(4);
            let expected = to_canonical_json(&v);
            assert_eq!(canonical_json_of(&v).unwrap(), expected, "{v:?}");
            if crate::canonical_writer::to_string(&v).is_ok() {
                direct += 1;
            }
        }
        // Most trees have no float: the direct writer wrote them.
        assert!(direct > 10_000, "{direct}");
    }

    #[test]
    fn structs_enums_options_maps_and_flatten_match_the_value_path() {
        use serde::Serialize;
        use std::collections::{BTreeMap, HashMap};

        #[derive(Serialize)]
        #[serde(rename_all = "kebab-case")]
        enum Kind {
            Unit,
            New(u32),
            Tuple(i8, String),
            Fields { zeta: bool, alpha: Option<String> },
        }

        #[derive(Serialize)]
        struct Inner {
            z: u8,
            a: &'static str,
        }

        #[derive(Serialize)]
        struct Record {
            // Declared out of order on purpose.
            verdict: &'static str,
            at: i64,
            #[serde(skip_serializing_if = "Option::is_none")]
            skipped: Option<u8>,
            none: Option<u8>,
            kinds: Vec<Kind>,
            by_name: HashMap<String, Inner>,
            sorted: BTreeMap<String, Value>,
            #[serde(flatten)]
            extra: BTreeMap<String, u32>,
            unit: (),
            pair: (u8, &'static str),
            letter: char,
        }

        let r = Record {
            verdict: "allow",
            at: -3,
            skipped: None,
            none: None,
            kinds: vec![
                Kind::Unit,
                Kind::New(7),
                Kind::Tuple(-1, "x".into()),
                Kind::Fields {
                    zeta: true,
                    alpha: Some("\"q\"".into()),
                },
            ],
            by_name: [("b", 2), ("a", 1), ("ab", 3), ("B", 4)]
                .into_iter()
                .map(|(k, z)| (k.to_owned(), Inner { z, a: "治愈" }))
                .collect(),
            sorted: [(
                "k".to_owned(),
                json!({"y": [1, {"b": null, "a": true}], "x": "\u{2028}"}),
            )]
            .into_iter()
            .collect(),
            extra: [("flat_b".to_owned(), 2), ("flat_a".to_owned(), 1)]
                .into_iter()
                .collect(),
            unit: (),
            pair: (1, "two"),
            letter: 'é',
        };
        let expected = to_canonical_json(&serde_json::to_value(&r).unwrap());
        assert_eq!(crate::canonical_writer::to_string(&r).unwrap(), expected);
        assert_eq!(canonical_json_of(&r).unwrap(), expected);
        // A duplicate key (a flattened map repeating a field) and a
        // non-string key go through the `Value` path, with its result.
        #[derive(Serialize)]
        struct Dup {
            a: u8,
            #[serde(flatten)]
            more: BTreeMap<String, u8>,
        }
        let d = Dup {
            a: 1,
            more: [("a".to_owned(), 2)].into_iter().collect(),
        };
        assert!(crate::canonical_writer::to_string(&d).is_err());
        assert_eq!(
            canonical_json_of(&d).unwrap(),
            to_canonical_json(&serde_json::to_value(&d).unwrap())
        );
        let by_number: BTreeMap<u32, u8> = [(2, 1), (10, 2)].into_iter().collect();
        assert_eq!(
            canonical_json_of(&by_number).unwrap(),
            to_canonical_json(&serde_json::to_value(&by_number).unwrap())
        );
        // What `to_value` refuses is refused the same way.
        let by_pair: BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into_iter().collect();
        assert!(serde_json::to_value(&by_pair).is_err());
        assert!(canonical_json_of(&by_pair).is_err());
    }

    #[test]
    fn sha256_is_lowercase_hex_of_the_bytes() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
