//! Writing a scanned event back out as JSON: masked, with its lines kept, dropped or replaced.
//!
//! The output is assembled from slices of the input, so an event costs one scan plus a copy.
//! [`JsonOut`](crate::pipeline::json_text::JsonOut) lets the same writer produce the event either as JSON or, for the template's
//! `{{{log_message_str}}}`, directly as the contents of a JSON string, without a second buffer.

use crate::pipeline::json_text::JsonOut;
use crate::pipeline::mask::{self, LINES_PLACEHOLDER};
use crate::pipeline::scan::{FieldValue, Lines, ScannedObject};

/// What to do with the step `lines` of a job event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinesMode {
    /// Keep them (masked): the "job details" stream.
    Keep,
    /// Leave the field out: the "job status" stream sends the job summary only.
    Drop,
    /// Replace them by the size placeholder (`docs/event-format.md`, "Size").
    Placeholder,
}

/// An event ready to be written: the scan, plus the pieces masking replaces.
pub struct MaskedEvent<'a> {
    pub scanned: ScannedObject<'a>,
    /// Top-level fields written as other JSON text than their own, by index in
    /// `scanned.fields`: each `error` whose `input` is redacted, each string `lines` that could
    /// hold step data. Empty for almost every event.
    replacements: Vec<(usize, String)>,
    /// How many step lines are masked, over every `lines` field the event has.
    pub masked_lines: usize,
}

impl<'a> MaskedEvent<'a> {
    /// Applies the masking rules of [`crate::pipeline::mask`] to a scanned event. Every top-level field is
    /// looked at, so that a duplicate `error` or `lines` is masked as the first one is.
    pub fn new(scanned: ScannedObject<'a>) -> Self {
        let mut replacements = Vec::new();
        let mut masked_lines = 0;
        for (i, (key, value)) in scanned.fields.iter().enumerate() {
            let replacement = match value {
                FieldValue::Raw(raw) if key == "error" => mask::redact_error(raw),
                FieldValue::Raw(_) => None,
                FieldValue::Lines(Lines::Steps(lines)) => {
                    masked_lines += lines.iter().filter(|l| l.mask_data).count();
                    None
                }
                FieldValue::Lines(Lines::Other(raw)) => mask::redact_lines_text(raw),
            };
            if let Some(text) = replacement {
                replacements.push((i, text));
            }
        }
        MaskedEvent { scanned, replacements, masked_lines }
    }

    /// True when writing with `mode` would reproduce the event's content unchanged.
    pub fn unchanged_by(&self, mode: LinesMode) -> bool {
        self.replacements.is_empty() && (self.masked_lines == 0 && mode == LinesMode::Keep || !self.has_lines() && mode != LinesMode::Placeholder)
    }

    /// True when the event has step lines that [`LinesMode`] would act on.
    pub fn has_lines(&self) -> bool {
        self.scanned.lines().next().is_some()
    }

    /// The text field `index` is written as, when masking replaced it.
    fn replacement(&self, index: usize) -> Option<&str> {
        self.replacements.iter().find(|(i, _)| *i == index).map(|(_, text)| text.as_str())
    }

    /// Writes the masked event as one JSON object.
    pub fn write<O: JsonOut + ?Sized>(&self, out: &mut O, mode: LinesMode) {
        out.raw("{");
        let mut first = true;
        for (i, (key, value)) in self.scanned.fields.iter().enumerate() {
            if matches!(value, FieldValue::Lines(_)) && mode == LinesMode::Drop {
                continue;
            }
            if !first {
                out.raw(",");
            }
            first = false;
            out.key(key);
            match (value, self.replacement(i)) {
                (FieldValue::Lines(_), _) if mode == LinesMode::Placeholder => out.string(LINES_PLACEHOLDER),
                (_, Some(text)) => out.raw(text),
                (FieldValue::Raw(raw), None) => out.raw(raw.get()),
                (FieldValue::Lines(Lines::Other(raw)), None) => out.raw(raw.get()),
                (FieldValue::Lines(Lines::Steps(lines)), None) => {
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
    use crate::pipeline::json_text::StringContents;

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
        assert_eq!(write(r#"{"lines":[],"z":1}"#, LinesMode::Placeholder), r#"{"lines":"Log lines exceed size limit","z":1}"#);
        assert_eq!(write(r#"{"lines":[],"z":1}"#, LinesMode::Drop), r#"{"z":1}"#);
    }

    #[test]
    fn every_occurrence_of_a_key_masking_acts_on_is_acted_on() {
        let hidden_lines = r#"{"lines":[],"lines":[{"mask_data":true,"input":{"x":"hunter2"}}]}"#;
        let cases = [
            // a second `lines`, in each mode
            (hidden_lines, LinesMode::Keep, r#"{"lines":[],"lines":[{"mask_data":true,"input":{"data":"masked"},"output":{"data":"masked"}}]}"#, 1),
            (hidden_lines, LinesMode::Drop, "{}", 1),
            (hidden_lines, LinesMode::Placeholder, r#"{"lines":"Log lines exceed size limit","lines":"Log lines exceed size limit"}"#, 1),
            // masked lines are counted over every `lines`
            (
                r#"{"lines":[{"mask_data":1}],"lines":[{"mask_data":"yes"},{"mask_data":false}]}"#,
                LinesMode::Keep,
                r#"{"lines":[{"mask_data":1,"input":{"data":"masked"},"output":{"data":"masked"}}],"lines":[{"mask_data":"yes","input":{"data":"masked"},"output":{"data":"masked"}},{"mask_data":false}]}"#,
                2,
            ),
            // a second `error` after a null one, and two errors each redacted on its own
            (r#"{"error":null,"error":"{\"input\":\"hunter2\"}"}"#, LinesMode::Keep, r#"{"error":null,"error":"{\"input\":\"<redacted>\"}"}"#, 0),
            (
                r#"{"error":"{\"m\":\"a\",\"input\":1}","error":"{\"input\":\"hunter2\",\"m\":\"b\"}"}"#,
                LinesMode::Keep,
                r#"{"error":"{\"m\":\"a\",\"input\":\"<redacted>\"}","error":"{\"input\":\"<redacted>\",\"m\":\"b\"}"}"#,
                0,
            ),
            // escaped key names are the keys they spell; a second input/output in a line too
            (
                r#"{"l\u0069nes":[{"mask\u005fdata":"TRUE","inp\u0075t":"hunter2","output":"hunter2","outp\u0075t":"hunter2"}],"err\u006fr":{"input":"hunter2"}}"#,
                LinesMode::Keep,
                r#"{"lines":[{"mask_data":"TRUE","input":{"data":"masked"},"output":{"data":"masked"},"output":{"data":"masked"}}],"error":{"input":"<redacted>"}}"#,
                1,
            ),
            // a string `lines` that could hold step data
            (
                r#"{"lines":"[{\"mask_data\":true,\"input\":\"hunter2\"}]"}"#,
                LinesMode::Keep,
                r#"{"lines":"<redacted: lines text that is not the size placeholder>"}"#,
                0,
            ),
        ];
        for (input, mode, want, masked_lines) in cases {
            let event = MaskedEvent::new(ScannedObject::scan(input).unwrap());
            assert_eq!(event.masked_lines, masked_lines, "{input}");
            assert!(!event.unchanged_by(mode), "{input} would be passed through verbatim in {mode:?}");
            let mut out = Vec::new();
            event.write(&mut out, mode);
            let out = String::from_utf8(out).unwrap();
            assert_eq!(out, want, "{input} in {mode:?}");
            assert!(!out.contains("hunter2"));
        }
    }

    #[test]
    fn what_asks_for_no_masking_is_left_as_it_is() {
        for input in [
            r#"{"lines":[{"input":1},{"input":2,"mask_data":null},{"input":3,"mask_data":false,"mask_data":0}],"error":null}"#,
            r#"{"lines":[{"input":4,"mask_data":"FALSE"},{"input":5,"mask_data":"f\u0061lse"}],"lines":[],"error":"Connection timed out"}"#,
            r#"{"lines":"Log lines exceed size limit","error":"{\"message\":\"boom\",\"input\":\"<redacted>\"}","error":false}"#,
        ] {
            let event = MaskedEvent::new(ScannedObject::scan(input).unwrap());
            assert_eq!(event.masked_lines, 0, "{input}");
            assert!(event.unchanged_by(LinesMode::Keep), "{input}");
        }
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
