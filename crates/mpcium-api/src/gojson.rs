//! A tiny JSON writer that reproduces Go's `encoding/json` output byte for byte.
//!
//! The original signs and compares JSON produced by Go (`json.Marshal` of a struct): fields in
//! declaration order, no whitespace, `[]byte` as standard base64 with padding, nil slices as
//! `null`, and Go's string escaping (which differs from `serde_json`: Go escapes `<`, `>`, `&`,
//! U+2028 and U+2029). Anything whose bytes matter (signed payloads, events we publish) is written
//! with this module, never with `serde_json`.
//!
//! Go string escaping (Go ≥ 1.22, the original is built with Go 1.25):
//! `"` → `\"`, `\` → `\\`, U+0008 → `\b`, U+000C → `\f`, `\n`, `\r`, `\t`, every other byte below
//! 0x20 → `\u00xx` (lowercase hex), `<` `>` `&` → `\u003c` `\u003e` `\u0026`, U+2028/U+2029 →
//! `\u2028`/`\u2029`. `/` and U+007F are not escaped. Go also turns invalid UTF-8 into `\ufffd`;
//! a Rust `&str` is valid UTF-8 by construction, so that case cannot arise here.

use base64::Engine as _;

/// Appends `s` to `out` as a Go-escaped JSON string literal (with the surrounding quotes).
pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{00}'..='\u{1f}' => {
                // Every char in this arm is ASCII, so it fits one byte.
                out.push_str("\\u00");
                out.push_str(&hex::encode([c as u32 as u8]));
            }
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            other => out.push(other),
        }
    }
    out.push('"');
}

/// Returns `s` encoded as a Go JSON string literal.
pub fn string_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    write_string(&mut out, s);
    out
}

/// Builds one JSON object field by field, in the order the caller writes them (Go's struct order).
#[derive(Debug)]
pub struct ObjectWriter {
    out: String,
    first: bool,
}

impl Default for ObjectWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl ObjectWriter {
    /// Starts an object (`{`).
    pub fn new() -> Self {
        Self { out: String::from("{"), first: true }
    }

    fn key(&mut self, name: &str) -> &mut String {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        write_string(&mut self.out, name);
        self.out.push(':');
        &mut self.out
    }

    /// A Go `string` field.
    pub fn string(&mut self, name: &str, value: &str) -> &mut Self {
        write_string(self.key(name), value);
        self
    }

    /// A Go `[]byte` field: `None` (nil) → `null`, otherwise standard base64 with padding
    /// (an empty slice → `""`).
    pub fn bytes(&mut self, name: &str, value: Option<&[u8]>) -> &mut Self {
        let out = self.key(name);
        match value {
            None => out.push_str("null"),
            Some(b) => {
                out.push('"');
                base64::engine::general_purpose::STANDARD.encode_string(b, out);
                out.push('"');
            }
        }
        self
    }

    /// A Go integer field (`int`, `uint32`, …).
    pub fn integer(&mut self, name: &str, value: i64) -> &mut Self {
        let out = self.key(name);
        out.push_str(&value.to_string());
        self
    }

    /// A Go `bool` field.
    pub fn boolean(&mut self, name: &str, value: bool) -> &mut Self {
        let out = self.key(name);
        out.push_str(if value { "true" } else { "false" });
        self
    }

    /// A Go `[]uint32` field: `None` (nil) → `null`, otherwise `[1,2,3]`.
    pub fn u32_array(&mut self, name: &str, value: Option<&[u32]>) -> &mut Self {
        self.array(name, value, |out, v| out.push_str(&v.to_string()))
    }

    /// A Go `[]string` field: `None` (nil) → `null`, otherwise `["a","b"]`.
    pub fn string_array(&mut self, name: &str, value: Option<&[String]>) -> &mut Self {
        self.array(name, value, |out, v| write_string(out, v))
    }

    /// A Go slice field: `None` (nil) → `null`, otherwise its items written by `item`, in `[…]`.
    fn array<T>(&mut self, name: &str, value: Option<&[T]>, item: impl Fn(&mut String, &T)) -> &mut Self {
        let out = self.key(name);
        match value {
            None => out.push_str("null"),
            Some(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item(out, v);
                }
                out.push(']');
            }
        }
        self
    }

    /// A field whose value is already-encoded JSON (a nested object or array written by this
    /// module).
    pub fn raw(&mut self, name: &str, json: &str) -> &mut Self {
        self.key(name).push_str(json);
        self
    }

    /// Closes the object (`}`) and returns its text.
    pub fn finish(mut self) -> String {
        self.out.push('}');
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_ascii_is_unchanged() {
        assert_eq!(string_literal("wallet-123_A/b"), "\"wallet-123_A/b\"");
    }

    #[test]
    fn html_characters_are_escaped_like_go() {
        assert_eq!(string_literal("<a&b>"), r#""\u003ca\u0026b\u003e""#);
    }

    #[test]
    fn quotes_and_backslashes() {
        assert_eq!(string_literal(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    #[test]
    fn control_characters_use_go_short_forms_or_u00xx() {
        assert_eq!(
            string_literal("\u{08}\u{0c}\n\r\t\u{00}\u{01}\u{1f}\u{0b}"),
            r#""\b\f\n\r\t\u0000\u0001\u001f\u000b""#
        );
    }

    #[test]
    fn line_and_paragraph_separators_are_escaped() {
        assert_eq!(string_literal("a\u{2028}b\u{2029}c"), r#""a\u2028b\u2029c""#);
    }

    #[test]
    fn del_slash_and_non_ascii_are_not_escaped() {
        assert_eq!(string_literal("/\u{7f}é€😀"), "\"/\u{7f}é€😀\"");
    }

    #[test]
    fn object_writer_nil_and_empty_slices_differ() {
        let mut w = ObjectWriter::new();
        w.bytes("nil", None)
            .bytes("empty", Some(&[]))
            .bytes("b", Some(b"hi"))
            .u32_array("p", None)
            .u32_array("q", Some(&[]))
            .u32_array("r", Some(&[44, 60, 4294967295]))
            .string_array("s", None)
            .string_array("t", Some(&["x<".to_string(), "y".to_string()]))
            .integer("n", -3)
            .boolean("f", false);
        assert_eq!(
            w.finish(),
            r#"{"nil":null,"empty":"","b":"aGk=","p":null,"q":[],"r":[44,60,4294967295],"s":null,"t":["x\u003c","y"],"n":-3,"f":false}"#
        );
    }

    #[test]
    fn every_ascii_char_is_valid_json_and_escaped_only_where_go_does() {
        for b in 0u8..=0x7f {
            let c = char::from(b);
            let s = format!("x{c}y");
            let lit = string_literal(&s);
            let back: String = serde_json::from_str(&lit).unwrap();
            assert_eq!(back, s, "byte {b:#04x}");
            let go_escapes = b < 0x20 || matches!(c, '"' | '\\' | '<' | '>' | '&');
            assert_eq!(lit == format!("\"{s}\""), !go_escapes, "byte {b:#04x}: {lit}");
        }
        let s = "ünï\u{2028}\u{2029}\u{ffff}\u{10ffff}😀";
        let back: String = serde_json::from_str(&string_literal(s)).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn empty_object() {
        assert_eq!(ObjectWriter::new().finish(), "{}");
    }
}
