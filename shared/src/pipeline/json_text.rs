//! Writing JSON text: the one string escaper, the [`JsonOut`] sink the event writer uses, and
//! byte-level helpers for putting documents into request bodies without parsing them again.
//!
//! A [`Document`](crate::pipeline::Document) body is already valid JSON (masked, sized and
//! templated); the encoders only wrap it. Two things can still be needed:
//!
//! - as the *contents of a JSON string* (Datadog's `message`): [`push_string_contents`] escapes
//!   `"`, `\` and control bytes. Bytes ≥ 0x80 (UTF-8 continuation and lead bytes) never need
//!   escaping, so this works on bytes without decoding UTF-8.
//! - on *one line* (NDJSON, Sumo Logic): untouched parts of an event are carried as they arrived,
//!   so a pretty-printed input event keeps its line breaks. In valid JSON a raw CR or LF can only
//!   be whitespace between tokens (inside strings they must be escaped), so [`push_single_line`]
//!   turns each into a space: same meaning, same length, one line.

/// For each byte: 0 = copy as is, otherwise the character after the backslash (`u` = `\u00XX`).
const ESCAPES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[b'\n' as usize] = b'n';
    table[b'\r' as usize] = b'r';
    table[b'\t' as usize] = b't';
    table[0x08] = b'b';
    table[0x0c] = b'f';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// The escape sequence for one byte, or `None` when the byte is copied as it is. The one JSON
/// string escaper: [`push_string_contents`] and every [`JsonOut`] write through it.
fn escape(b: u8) -> Option<Escape> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match ESCAPES[usize::from(b)] {
        0 => None,
        b'u' => Some(Escape { buf: [b'\\', b'u', b'0', b'0', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]], len: 6 }),
        short => Some(Escape { buf: [b'\\', short, 0, 0, 0, 0], len: 2 }),
    }
}

/// A JSON escape sequence, small enough to live on the stack.
struct Escape {
    buf: [u8; 6],
    len: usize,
}

impl Escape {
    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn as_str(&self) -> &str {
        // Only ASCII is ever written into `buf`.
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}

/// Appends `text` escaped as the contents of a JSON string (no surrounding quotes).
pub fn push_string_contents(out: &mut Vec<u8>, text: &[u8]) {
    let mut start = 0;
    for (i, &b) in text.iter().enumerate() {
        if let Some(esc) = escape(b) {
            out.extend_from_slice(&text[start..i]);
            out.extend_from_slice(esc.as_bytes());
            start = i + 1;
        }
    }
    out.extend_from_slice(&text[start..]);
}

/// Appends `text` as a complete JSON string literal.
pub fn push_string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    push_string_contents(out, text.as_bytes());
    out.push(b'"');
}

/// A sink for JSON text.
pub trait JsonOut {
    /// Appends JSON text as is.
    fn raw(&mut self, text: &str);
    /// Appends `"key":`.
    fn key(&mut self, key: &str) {
        self.string(key);
        self.raw(":");
    }
    /// Appends a JSON string literal.
    fn string(&mut self, s: &str) {
        self.raw("\"");
        let mut start = 0;
        for (i, b) in s.bytes().enumerate() {
            if let Some(esc) = escape(b) {
                self.raw(&s[start..i]);
                self.raw(esc.as_str());
                start = i + 1;
            }
        }
        self.raw(&s[start..]);
        self.raw("\"");
    }
}

impl JsonOut for Vec<u8> {
    fn raw(&mut self, text: &str) {
        self.extend_from_slice(text.as_bytes());
    }
}

/// Writes everything it is given as the *contents* of a JSON string: `{"a":1}` arrives as
/// `{\"a\":1}`. The caller writes the surrounding quotes.
pub struct StringContents<'a>(pub &'a mut Vec<u8>);

impl JsonOut for StringContents<'_> {
    fn raw(&mut self, text: &str) {
        let bytes = text.as_bytes();
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if let Some(esc) = escape(b) {
                self.0.extend_from_slice(&bytes[start..i]);
                self.0.extend_from_slice(esc.as_bytes());
                start = i + 1;
            }
        }
        self.0.extend_from_slice(&bytes[start..]);
    }
}

/// An upper bound of the bytes [`push_string_contents`] writes for `len` input bytes that hold
/// compact-ish JSON: every `"` and `\` doubles, and the only raw control bytes a JSON text can
/// hold are the whitespace CR, LF and TAB, which double too.
pub const fn escaped_len_bound(len: usize) -> usize {
    len * 2
}

/// Appends the JSON text `doc` with every raw CR/LF replaced by a space (see the module docs).
pub fn push_single_line(out: &mut Vec<u8>, doc: &[u8]) {
    let start = out.len();
    out.extend_from_slice(doc);
    if memchr::memchr2(b'\n', b'\r', doc).is_some() {
        for b in &mut out[start..] {
            if *b == b'\n' || *b == b'\r' {
                *b = b' ';
            }
        }
    }
}

/// Appends the object `doc` (a JSON object, as a rendered template is) with `members` added
/// before its own: `members` is a run of `"key":value,` entries, each ended by a comma, and goes
/// right after the opening brace. Returns false, appending nothing, when `doc` does not start
/// with `{` (after whitespace).
pub fn push_object_with_members(out: &mut Vec<u8>, doc: &[u8], members: &[u8]) -> bool {
    let Some(open) = doc.iter().position(|b| !b.is_ascii_whitespace()).filter(|&i| doc[i] == b'{') else {
        return false;
    };
    let empty = doc[open + 1..].iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'}');
    out.extend_from_slice(&doc[..=open]);
    match members.strip_suffix(b",") {
        // `{}` takes the members without a trailing comma
        Some(without_comma) if empty => out.extend_from_slice(without_comma),
        _ => out.extend_from_slice(members),
    }
    out.extend_from_slice(&doc[open + 1..]);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_contents_round_trip_through_serde() {
        let cases = [r#"{"a":"b"}"#, "{\"x\":\"line\\nbreak\",\n  \"t\":\"tab\\t\"}\r\n", "{\"é\":\"ü 😀\",\"q\":\"\\\"\\\\\"}", "\u{1}\u{1f}\u{8}\u{c}"];
        for text in cases {
            let mut out = b"\"".to_vec();
            push_string_contents(&mut out, text.as_bytes());
            out.push(b'"');
            let back: String = serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{text:?} → {:?}: {e}", String::from_utf8_lossy(&out)));
            assert_eq!(back, text);
            assert!(out.len() - 2 <= escaped_len_bound(text.len()) || text.contains('\u{1}'));
        }
    }

    #[test]
    fn exact_escapes() {
        let mut out = Vec::new();
        push_string(&mut out, "a\"b\\c\nd\u{1}");
        assert_eq!(out, br#""a\"b\\c\nd\u0001""#);
    }

    #[test]
    fn members_go_first_in_the_object() {
        let mut out = Vec::new();
        assert!(push_object_with_members(&mut out, br#" {"message":{"id":1}} "#, br#""ddsource":"workato","#));
        assert_eq!(out, br#" {"ddsource":"workato","message":{"id":1}} "#);
        out.clear();
        assert!(push_object_with_members(&mut out, b"{ }", br#""a":1,"#));
        assert_eq!(out, br#"{"a":1 }"#);
        out.clear();
        assert!(push_object_with_members(&mut out, br#"{"a":1}"#, b""));
        assert_eq!(out, br#"{"a":1}"#);
        assert!(!push_object_with_members(&mut out, br#"[{"a":1}]"#, br#""b":2,"#));
        assert_eq!(out, br#"{"a":1}"#, "nothing appended");
    }

    #[test]
    fn single_line_keeps_meaning_and_length() {
        let doc = b"{\n  \"a\": 1,\r\n  \"b\": \"x\\ny\"\n}";
        let mut out = Vec::new();
        push_single_line(&mut out, doc);
        assert_eq!(out, b"{   \"a\": 1,    \"b\": \"x\\ny\" }");
        let a: serde_json::Value = serde_json::from_slice(doc).unwrap();
        let b: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(a, b);
        // untouched when already on one line
        let mut out = b"prefix".to_vec();
        push_single_line(&mut out, br#"{"a":1}"#);
        assert_eq!(out, br#"prefix{"a":1}"#);
    }
}
