//! JSON values as JavaScript holds them, and the bytes `JSON.stringify` writes for them.
//!
//! The service is Node: it signs `JSON.stringify` of its response with the top-level keys
//! sorted. To verify the signature, libnol rebuilds those bytes from the parsed values (never
//! from the wire text, so a pretty-printed or `\u`-escaped body carrying the same values verifies):
//!
//! - every number is an IEEE double, written as ECMAScript's `Number::toString` writes it
//!   (`1e+21`, `1e-7`, `5e-324`, `0` for `-0`), by the `ryu-js` crate;
//! - strings are escaped only where `JSON.stringify` escapes: `"`, `\`, and the C0 controls
//!   (`\b \f \n \r \t` short, the rest as lowercase `\u00xx`); U+2028/2029, DEL and all other
//!   text are written raw, in UTF-8;
//! - a JavaScript object lays out integer-like keys (array indices: `"0"`, `"10"`) first, in
//!   numeric order, then the other keys in insertion order, at every depth;
//! - the top level is sorted as `Array.prototype.sort` sorts strings (by UTF-16 code units)
//!   before being laid out as an object.
//!
//! A body with a duplicate key at any depth has no single JavaScript value (I-JSON, RFC 7493)
//! and is refused.

use std::cmp::Ordering;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A JSON value with JavaScript's number model and object key order as it arrived.
#[derive(Clone, Debug, PartialEq)]
pub enum JsValue {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<JsValue>),
    /// Members in the order they arrived on the wire.
    Object(Vec<(String, JsValue)>),
}

/// Why bytes are not one JSON object libnol can canonicalize.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CanonicalError {
    /// Not JSON (or JSON nested deeper than 128 levels, or a lone surrogate escape).
    Unparseable,
    /// JSON, but not an object at the top.
    NotAnObject,
    /// The same key twice in one object, at any depth.
    DuplicateKey,
}

impl fmt::Display for CanonicalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CanonicalError::Unparseable => "body is not JSON",
            CanonicalError::NotAnObject => "body is not a JSON object",
            CanonicalError::DuplicateKey => "body has a duplicate key",
        })
    }
}

impl std::error::Error for CanonicalError {}

impl<'de> Deserialize<'de> for JsValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<JsValue, D::Error> {
        d.deserialize_any(JsVisitor)
    }
}

struct JsVisitor;

impl<'de> Visitor<'de> for JsVisitor {
    type Value = JsValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<JsValue, E> {
        Ok(JsValue::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<JsValue, E> {
        Ok(JsValue::Bool(v))
    }
    // JavaScript reads every number as the nearest double; `as` rounds to nearest, ties to even,
    // exactly as ECMAScript's StringToNumber does for these integers.
    fn visit_u64<E>(self, v: u64) -> Result<JsValue, E> {
        Ok(JsValue::Number(v as f64))
    }
    fn visit_i64<E>(self, v: i64) -> Result<JsValue, E> {
        Ok(JsValue::Number(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<JsValue, E> {
        Ok(JsValue::Number(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<JsValue, E> {
        Ok(JsValue::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<JsValue, E> {
        Ok(JsValue::String(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<JsValue, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(JsValue::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsValue, A::Error> {
        let mut members: Vec<(String, JsValue)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value()?;
            members.push((key, value));
        }
        if has_duplicates(&members) {
            return Err(de::Error::custom(DUPLICATE));
        }
        Ok(JsValue::Object(members))
    }
}

const DUPLICATE: &str = "nol: duplicate key";

fn has_duplicates(members: &[(String, JsValue)]) -> bool {
    if members.len() <= 16 {
        members
            .iter()
            .enumerate()
            .any(|(i, (k, _))| members[..i].iter().any(|(p, _)| p == k))
    } else {
        let mut seen = std::collections::HashSet::with_capacity(members.len());
        !members.iter().all(|(k, _)| seen.insert(k.as_str()))
    }
}

/// Parses a body into its top-level members, in wire order.
pub fn parse_object(body: &[u8]) -> Result<Vec<(String, JsValue)>, CanonicalError> {
    match serde_json::from_slice::<JsValue>(body) {
        Ok(JsValue::Object(members)) => Ok(members),
        Ok(_) => Err(CanonicalError::NotAnObject),
        Err(e) if e.to_string().starts_with(DUPLICATE) => Err(CanonicalError::DuplicateKey),
        Err(_) => Err(CanonicalError::Unparseable),
    }
}

/// The array index a key names, if it is one (`"0"`, `"7"`, `"10"`, up to 2^32 - 2).
fn array_index(key: &str) -> Option<u32> {
    let b = key.as_bytes();
    if b.is_empty() || b.len() > 10 || (b[0] == b'0' && b.len() > 1) {
        return None;
    }
    if !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = key.parse().ok()?;
    (n < u64::from(u32::MAX)).then_some(n as u32)
}

/// Orders members as a JavaScript object holds them: array indices first, ascending, then the
/// other keys in the order given.
fn js_layout<'a>(
    members: impl Iterator<Item = &'a (String, JsValue)>,
) -> Vec<&'a (String, JsValue)> {
    let mut indices = Vec::new();
    let mut others = Vec::new();
    for m in members {
        match array_index(&m.0) {
            Some(i) => indices.push((i, m)),
            None => others.push(m),
        }
    }
    indices.sort_by_key(|(i, _)| *i);
    indices.into_iter().map(|(_, m)| m).chain(others).collect()
}

/// `Array.prototype.sort`'s default order for strings: UTF-16 code units.
pub fn js_string_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// The bytes the service signs: `JSON.stringify` of the top-level members sorted, without the
/// member named `exclude`.
pub fn signing_bytes(members: &[(String, JsValue)], exclude: &str) -> Vec<u8> {
    let mut sorted: Vec<&(String, JsValue)> =
        members.iter().filter(|(k, _)| k != exclude).collect();
    sorted.sort_by(|a, b| js_string_cmp(&a.0, &b.0));
    let mut out = String::with_capacity(512);
    write_members(&mut out, js_layout(sorted.into_iter()));
    out.into_bytes()
}

/// `JSON.stringify(value)` for a value JavaScript parsed from JSON.
pub fn stringify(value: &JsValue) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_members(out: &mut String, members: Vec<&(String, JsValue)>) {
    out.push('{');
    for (i, (k, v)) in members.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(out, k);
        out.push(':');
        write_value(out, v);
    }
    out.push('}');
}

fn write_value(out: &mut String, value: &JsValue) {
    match value {
        JsValue::Null => out.push_str("null"),
        JsValue::Bool(true) => out.push_str("true"),
        JsValue::Bool(false) => out.push_str("false"),
        JsValue::Number(n) => write_number(out, *n),
        JsValue::String(s) => write_string(out, s),
        JsValue::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        JsValue::Object(members) => write_members(out, js_layout(members.iter())),
    }
}

fn write_number(out: &mut String, n: f64) {
    if n.is_finite() {
        let mut buf = ryu_js::Buffer::new();
        out.push_str(buf.format_finite(n));
    } else {
        out.push_str("null");
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape: Option<&str> = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            0x08 => Some("\\b"),
            0x0c => Some("\\f"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0x00..=0x1f => None,
            _ => continue,
        };
        out.push_str(&s[start..i]);
        match escape {
            Some(e) => out.push_str(e),
            None => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 0xf) as usize] as char);
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// A value as `serde_json` holds it (integral numbers as integers), for fields libnol keeps but
/// does not interpret.
pub fn to_serde(value: &JsValue) -> serde_json::Value {
    use serde_json::Value;
    match value {
        JsValue::Null => Value::Null,
        JsValue::Bool(b) => Value::Bool(*b),
        JsValue::Number(n) => {
            if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
                Value::from(*n as i64)
            } else {
                serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number)
            }
        }
        JsValue::String(s) => Value::String(s.clone()),
        JsValue::Array(items) => Value::Array(items.iter().map(to_serde).collect()),
        JsValue::Object(members) => Value::Object(
            members
                .iter()
                .map(|(k, v)| (k.clone(), to_serde(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(body: &str) -> String {
        String::from_utf8(signing_bytes(
            &parse_object(body.as_bytes()).unwrap(),
            "sig",
        ))
        .unwrap()
    }

    #[test]
    fn numbers_as_ecmascript_writes_them() {
        assert_eq!(
            canon(
                r#"{"a":[0.1,1e21,1e-7,5e-324,9007199254740993,-0,1.0,100,1.5e300,123456789012345680000]}"#
            ),
            r#"{"a":[0.1,1e+21,1e-7,5e-324,9007199254740992,0,1,100,1.5e+300,123456789012345680000]}"#
        );
    }

    #[test]
    fn strings_as_json_stringify_escapes_them() {
        assert_eq!(
            canon("{\"s\":\"q\\\"b\\\\ \\u0001\\u001f\\b\\f\\n\\r\\t \\u2028\\u2029 \\u007f é 😀 \\u00e9\"}"),
            "{\"s\":\"q\\\"b\\\\ \\u0001\\u001f\\b\\f\\n\\r\\t \u{2028}\u{2029} \u{7f} é 😀 é\"}"
        );
    }

    #[test]
    fn top_level_sorted_by_utf16_integer_keys_first() {
        // U+FF5E sorts after U+1F600 in UTF-8 bytes but before it in UTF-16 code units.
        assert_eq!(
            canon("{\"b\":1,\"😀\":2,\"～\":3,\"10\":4,\"2\":5,\"a\":6,\"sig\":7,\"01\":8}"),
            "{\"2\":5,\"10\":4,\"01\":8,\"a\":6,\"b\":1,\"😀\":2,\"～\":3}"
        );
    }

    #[test]
    fn nested_objects_keep_arrival_order_with_indices_first() {
        assert_eq!(
            canon(r#"{"n":{"z":1,"a":{"y":1,"b":2},"7":0,"4294967295":1,"3":0}}"#),
            r#"{"n":{"3":0,"7":0,"z":1,"a":{"y":1,"b":2},"4294967295":1}}"#
        );
    }

    #[test]
    fn wire_form_does_not_matter() {
        let compact = canon(r#"{"a":"é","b":[1,2]}"#);
        assert_eq!(
            canon("{\n  \"b\" : [ 1 , 2 ],\n  \"a\" : \"\\u00e9\"\n}"),
            compact
        );
    }

    #[test]
    fn refuses_duplicates_and_non_objects() {
        assert_eq!(
            parse_object(br#"{"a":1,"a":2}"#),
            Err(CanonicalError::DuplicateKey)
        );
        assert_eq!(
            parse_object(br#"{"a":{"b":1,"b":1}}"#),
            Err(CanonicalError::DuplicateKey)
        );
        assert_eq!(
            parse_object(br#"{"a":[{"b":1,"b":1}]}"#),
            Err(CanonicalError::DuplicateKey)
        );
        assert_eq!(parse_object(b"[1]"), Err(CanonicalError::NotAnObject));
        assert_eq!(parse_object(b"{"), Err(CanonicalError::Unparseable));
        assert_eq!(
            parse_object(br#"{"a":"\ud800"}"#),
            Err(CanonicalError::Unparseable)
        );
        let deep = "[".repeat(10_000);
        assert_eq!(
            parse_object(deep.as_bytes()),
            Err(CanonicalError::Unparseable)
        );
    }

    #[test]
    fn array_indices() {
        assert_eq!(array_index("0"), Some(0));
        assert_eq!(array_index("4294967294"), Some(4_294_967_294));
        assert_eq!(array_index("4294967295"), None);
        assert_eq!(array_index("01"), None);
        assert_eq!(array_index("-1"), None);
        assert_eq!(array_index(""), None);
    }
}
