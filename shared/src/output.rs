//! Writing a scanned event back out as JSON: masked, with its lines kept, dropped or replaced.
//!
//! The output is assembled from slices of the input, so an event costs one scan plus a copy.
//! [`JsonOut`] lets the same writer produce the event either as JSON or, for the template's
//! `{{{log_message_str}}}`, directly as the contents of a JSON string, without a second buffer.

use crate::json_scan::{FieldValue, Lines, ScannedObject};
use crate::mask;

/// What to do with the step `lines` of a job event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinesMode {
    /// Keep them (masked): the "job details" stream.
    Keep,
    /// Leave the field out: the "job status" stream sends the job summary only.
    Drop,
    /// Replace them by the size placeholder (spec §5).
    Placeholder,
}

/// The text `lines` carries when the event would exceed the size limit (spec §5).
pub const LINES_PLACEHOLDER: &str = "Log lines exceed size limit";

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
                self.0.extend_from_slice(esc.as_str().as_bytes());
                start = i + 1;
            }
        }
        self.0.extend_from_slice(&bytes[start..]);
    }
}

/// A JSON escape sequence, small enough to live on the stack.
struct Escape {
    buf: [u8; 6],
    len: usize,
}

impl Escape {
    fn as_str(&self) -> &str {
        // Only ASCII is ever written into `buf`.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

fn escape(b: u8) -> Option<Escape> {
    let short = |c: u8| Some(Escape { buf: [b'\\', c, 0, 0, 0, 0], len: 2 });
    match b {
        b'"' => short(b'"'),
        b'\\' => short(b'\\'),
        b'\n' => short(b'n'),
        b'\r' => short(b'r'),
        b'\t' => short(b't'),
        0x08 => short(b'b'),
        0x0c => short(b'f'),
        0x00..=0x1f => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            Some(Escape { buf: [b'\\', b'u', b'0', b'0', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]], len: 6 })
        }
        _ => None,
    }
}

/// An event ready to be written: the scan, plus the pieces masking replaces.
pub struct MaskedEvent<'a> {
    pub scanned: ScannedObject<'a>,
    /// The rewritten job-level `error` string, when its `input` had to be redacted.
    error_replacement: Option<String>,
    /// How many step lines are masked.
    pub masked_lines: usize,
}

impl<'a> MaskedEvent<'a> {
    /// Applies the masking rules of [`crate::mask`] to a scanned event.
    pub fn new(scanned: ScannedObject<'a>) -> Self {
        let error_replacement = scanned.raw("error").and_then(mask::redact_error_input);
        let masked_lines = match scanned.lines() {
            Some(Lines::Steps(lines)) => lines.iter().filter(|l| l.mask_data).count(),
            _ => 0,
        };
        MaskedEvent { scanned, error_replacement, masked_lines }
    }

    /// True when writing with `mode` would reproduce the event's content unchanged.
    pub fn unchanged_by(&self, mode: LinesMode) -> bool {
        self.error_replacement.is_none() && (self.masked_lines == 0 && mode == LinesMode::Keep || !self.has_lines() && mode != LinesMode::Placeholder)
    }

    /// True when the event has step lines that [`LinesMode`] would act on.
    pub fn has_lines(&self) -> bool {
        self.scanned.lines().is_some()
    }

    /// Writes the masked event as one JSON object.
    pub fn write<O: JsonOut + ?Sized>(&self, out: &mut O, mode: LinesMode) {
        out.raw("{");
        let mut first = true;
        for (key, value) in &self.scanned.fields {
            if matches!(value, FieldValue::Lines(_)) && mode == LinesMode::Drop {
                continue;
            }
            if !first {
                out.raw(",");
            }
            first = false;
            out.key(key);
            match value {
                FieldValue::Raw(raw) => match (&self.error_replacement, key.as_ref()) {
                    (Some(replacement), "error") => out.raw(replacement),
                    _ => out.raw(raw.get()),
                },
                FieldValue::Lines(_) if mode == LinesMode::Placeholder => out.string(LINES_PLACEHOLDER),
                FieldValue::Lines(Lines::Other(raw)) => out.raw(raw.get()),
                FieldValue::Lines(Lines::Steps(lines)) => {
                    out.raw("[");
                    for (i, line) in lines.iter().enumerate() {
                        if i > 0 {
                            out.raw(",");
                        }
                        mask::write_line(out, line);
                    }
                    out.raw("]");
                }
            }
        }
        out.raw("}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(input: &str, mode: LinesMode) -> String {
        let event = MaskedEvent::new(ScannedObject::scan(input).unwrap());
        let mut out = Vec::new();
        event.write(&mut out, mode);
        String::from_utf8(out).unwrap()
    }

    const JOB: &str = r#"{"id":"j-1", "status":"failed","error":"{\"message\":\"boom\",\"input\":{\"card\":\"4111\"}}","lines":[{"input":{"a":1},"mask_data":true},{"input":{"b":2},"mask_data":false}],"context":{"user_id":1}}"#;

    #[test]
    fn keep_masks_lines_and_redacts_the_error_input() {
        assert_eq!(
            write(JOB, LinesMode::Keep),
            r#"{"id":"j-1","status":"failed","error":"{\"message\":\"boom\",\"input\":\"<redacted>\"}","lines":[{"input":{"data":"masked"},"mask_data":true,"output":{"data":"masked"}},{"input":{"b":2},"mask_data":false}],"context":{"user_id":1}}"#
        );
    }

    #[test]
    fn drop_leaves_lines_out_and_placeholder_replaces_them() {
        assert_eq!(
            write(JOB, LinesMode::Drop),
            r#"{"id":"j-1","status":"failed","error":"{\"message\":\"boom\",\"input\":\"<redacted>\"}","context":{"user_id":1}}"#
        );
        assert_eq!(
            write(r#"{"lines":[],"z":1}"#, LinesMode::Placeholder),
            r#"{"lines":"Log lines exceed size limit","z":1}"#
        );
        assert_eq!(write(r#"{"lines":[],"z":1}"#, LinesMode::Drop), r#"{"z":1}"#);
    }

    #[test]
    fn string_contents_escape_what_json_strings_must() {
        let mut buf = Vec::new();
        StringContents(&mut buf).raw("{\"a\":\"x\\y\"}\n\t\u{1}é");
        assert_eq!(String::from_utf8(buf).unwrap(), r#"{\"a\":\"x\\y\"}\n\t\u0001é"#);
        // and the result parses back as the original text
        let mut buf = b"\"".to_vec();
        let event = MaskedEvent::new(ScannedObject::scan(JOB).unwrap());
        event.write(&mut StringContents(&mut buf), LinesMode::Keep);
        buf.push(b'"');
        let back: String = serde_json::from_slice(&buf).unwrap();
        assert_eq!(back, write(JOB, LinesMode::Keep));
    }
}
