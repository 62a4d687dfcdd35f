//! Masking, as Workato streams it (docs.workato.com, "Data masking" and "Audit log streaming"),
//! read so that it fails closed: where the event is not in the shape Workato documents, data is
//! masked or redacted rather than let through.
//!
//! - A step line asks for masking unless every `mask_data` it has is absent, `null`, `false`, a
//!   zero number or the string `"false"` in any case ([`mask_data_masks`](crate::pipeline::mask_rule::mask_data_masks)). A masked line keeps
//!   its metadata, but every `input` and `output` it has becomes the literal `{"data":"masked"}`,
//!   whatever they held — present or not, valid-looking or not.
//! - The job-level `error` is a JSON document inside a string; every `input` in it becomes
//!   `"<redacted>"` always, masked step or not. An `error` that cannot be read that way but could
//!   hold an input is replaced whole ([`redact_error`]).
//! - A masked line's own `error` is read as the job-level one is.
//! - A string `lines` other than the size placeholder that could hold step data is replaced
//!   whole ([`redact_lines_text`]).
//!
//! Every occurrence of a key counts: a duplicate `mask_data`, `input`, `output`, `error` or
//! `lines` is acted on as the first is, since readers disagree on which one they keep.
//!
//! These are pure rules over raw JSON; [`crate::pipeline::write`] applies them while writing.

use serde_json::value::RawValue;

use crate::pipeline::mask_rule::decode_string;
use crate::pipeline::scan::{scan_flat_object, Key, Line};

/// The text `lines` carries when the event would exceed the size limit (`docs/event-format.md`, "Size").
pub const LINES_PLACEHOLDER: &str = "Log lines exceed size limit";

/// What a masked step's `input` and `output` become.
pub const MASKED_DATA: &str = r#"{"data":"masked"}"#;

/// What the `input` inside the job-level `error` document becomes.
pub const REDACTED: &str = "<redacted>";

/// The fields of a masked line that are replaced.
const MASKED_FIELDS: [&str; 2] = ["input", "output"];

/// Writes one step line as a JSON object into `out`, masking it when it asks for masking.
/// Returns whether the line was masked.
pub fn write_line<O: crate::pipeline::json_text::JsonOut + ?Sized>(out: &mut O, line: &Line<'_>) -> bool {
    out.raw("{");
    let mut first = true;
    let mut seen = [false; 2];
    for (key, value) in &line.fields {
        if !first {
            out.raw(",");
        }
        first = false;
        out.key(key);
        match MASKED_FIELDS.iter().position(|f| *f == key.as_ref()) {
            Some(i) if line.mask_data => {
                seen[i] = true;
                out.raw(MASKED_DATA);
            }
            // A masked step's own error can quote the input it failed on (Workato's error
            // document carries one): it is redacted as the job-level error is.
            None if line.mask_data && key == "error" => match redact_error(value) {
                Some(text) => out.raw(&text),
                None => out.raw(value.get()),
            },
            _ => out.raw(value.get()),
        }
    }
    if line.mask_data {
        // A masked line always carries the placeholders, so a reader never has to wonder whether
        // data was there.
        for (i, field) in MASKED_FIELDS.iter().enumerate() {
            if !seen[i] {
                if !first {
                    out.raw(",");
                }
                first = false;
                out.key(field);
                out.raw(MASKED_DATA);
            }
        }
    }
    out.raw("}");
    line.mask_data
}

/// What the job-level `error` (or a masked line's) becomes, whole, when it cannot be read as a
/// JSON object but could hold an input (see [`redact_error`]).
pub const ERROR_TEXT_REDACTED: &str = "<redacted: error text not readable as a JSON object>";

/// What a string `lines` other than the size placeholder becomes, whole, when it could hold step
/// data (see [`redact_lines_text`]).
pub const LINES_TEXT_REDACTED: &str = "<redacted: lines text that is not the size placeholder>";

/// The job-level `error` with every `input` it carries redacted, as the JSON text to write in its
/// place; `None` when it is written as it is. A masked line's `error` is read the same way.
///
/// - A string holding a JSON object (Workato's form): every top-level `input` of that object
///   (duplicates and escaped spellings of the key too) becomes `"<redacted>"`; the result is
///   again a string.
/// - An object: the same, in place; the result is again an object.
/// - A string whose text is not a JSON object, read strictly (`NaN`, trailing text, an array, a
///   truncated object, a string inside the string, an undecodable escape), or an array: replaced
///   whole by [`ERROR_TEXT_REDACTED`] when it could hold an input ([`could_hold`]). A plain
///   message such as `Connection timed out` is kept.
/// - `null`, a boolean or a number: kept.
pub fn redact_error(error: &RawValue) -> Option<String> {
    let text = error.get();
    match text.as_bytes().first() {
        Some(b'"') => redact_error_text(text),
        Some(b'{') => match scan_flat_object(text) {
            Ok(fields) => redacted_object(&fields),
            Err(_) => Some(unreadable_error()),
        },
        Some(b'[') => Some(unreadable_error()),
        _ => None,
    }
}

/// [`redact_error`] for the string form.
fn redact_error_text(literal: &str) -> Option<String> {
    let Some(text) = decode_string(literal) else { return Some(unreadable_error()) };
    // Only text that opens like an object is worth parsing; a plain message is the common case.
    if text.trim_start_matches(JSON_WHITESPACE).starts_with('{') {
        if let Ok(fields) = scan_flat_object(&text) {
            return redacted_object(&fields).map(|doc| serde_json::to_string(&doc).unwrap_or_else(|_| unreadable_error()));
        }
    }
    could_hold(&text, &["input"]).then(unreadable_error)
}

/// A string `lines` as the JSON text to write in its place, or `None` to keep it.
///
/// Workato puts a string in `lines` only as the size placeholder. Any other string that could
/// hold step data ([`could_hold`] an `input` or `output`) — serialized step lines, say, with
/// their `mask_data` — is replaced whole by [`LINES_TEXT_REDACTED`]: nothing inside it can be
/// masked line by line. `null` and other plain text are kept.
pub fn redact_lines_text(lines: &RawValue) -> Option<String> {
    let literal = lines.get();
    if !literal.starts_with('"') {
        return None;
    }
    let Some(text) = decode_string(literal) else { return Some(format!("\"{LINES_TEXT_REDACTED}\"")) };
    if text == LINES_PLACEHOLDER || !could_hold(&text, &["input", "output"]) {
        return None;
    }
    Some(format!("\"{LINES_TEXT_REDACTED}\""))
}

/// Whether text that could not be read as JSON of the expected shape might still carry one of
/// `fields`, in the eyes of a lenient reader or a person: it names one of them in any ASCII case,
/// or has a `{` or `[` (a structure, perhaps broken or not JSON), or a backslash (an escape that
/// could spell a name). Deliberately broad: such text is replaced whole, and a plain message
/// passes only when none of these is in it.
fn could_hold(text: &str, fields: &[&str]) -> bool {
    text.bytes().any(|b| matches!(b, b'{' | b'[' | b'\\'))
        || fields.iter().any(|field| text.as_bytes().windows(field.len()).any(|w| w.eq_ignore_ascii_case(field.as_bytes())))
}

/// The whitespace JSON allows around a value.
const JSON_WHITESPACE: [char; 4] = [' ', '\t', '\n', '\r'];

/// The text of a JSON string literal; `None` when an escape does not decode (a lone surrogate).
fn unreadable_error() -> String {
    // The constant has nothing JSON would escape; a test holds it to that.
    format!("\"{ERROR_TEXT_REDACTED}\"")
}

/// The object `fields` with every `input` value replaced by `"<redacted>"`, as JSON; `None` when
/// there is no `input`, or every one already reads `"<redacted>"`.
fn redacted_object(fields: &[(Key<'_>, &RawValue)]) -> Option<String> {
    let is_redacted = |v: &RawValue| serde_json::from_str::<String>(v.get()).is_ok_and(|s| s == REDACTED);
    if !fields.iter().any(|(k, v)| k == "input" && !is_redacted(v)) {
        return None;
    }
    let mut doc = Vec::with_capacity(fields.iter().map(|(k, v)| k.len() + v.get().len() + 4).sum::<usize>() + 2);
    doc.push(b'{');
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            doc.push(b',');
        }
        crate::pipeline::json_text::JsonOut::key(&mut doc, key);
        if key == "input" {
            crate::pipeline::json_text::JsonOut::string(&mut doc, REDACTED);
        } else {
            doc.extend_from_slice(value.get().as_bytes());
        }
    }
    doc.push(b'}');
    // The document was built from valid JSON pieces and ASCII punctuation: it is UTF-8. Were it
    // not, the whole error would go, never the unredacted one.
    Some(String::from_utf8(doc).unwrap_or_else(|_| unreadable_error()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::scan::{Lines, ScannedObject};

    fn line_out(json: &str) -> (String, bool) {
        let wrapped = format!(r#"{{"lines":[{json}]}}"#);
        let scanned = ScannedObject::scan(&wrapped).unwrap();
        let Some(Lines::Steps(lines)) = scanned.lines().next() else { panic!() };
        let mut out = Vec::new();
        let masked = write_line(&mut out, &lines[0]);
        (String::from_utf8(out).unwrap(), masked)
    }

    #[test]
    fn masked_lines_lose_input_and_output_and_keep_the_rest() {
        let cases = [
            // input/output replaced whatever they held; metadata kept in order
            (
                r#"{"recipe_line_number":1,"adapter_name":"salesforce","input":{"ssn":"123-45-6789"},"output":[1,2],"error":null,"mask_data":true,"line_stat":{"total":0.1}}"#,
                r#"{"recipe_line_number":1,"adapter_name":"salesforce","input":{"data":"masked"},"output":{"data":"masked"},"error":null,"mask_data":true,"line_stat":{"total":0.1}}"#,
                true,
            ),
            // null and strings are data too
            (r#"{"input":null,"output":"secret","mask_data":true}"#, r#"{"input":{"data":"masked"},"output":{"data":"masked"},"mask_data":true}"#, true),
            // missing fields are added, so the placeholder is always there
            (
                r#"{"adapter_name":"http","mask_data":true}"#,
                r#"{"adapter_name":"http","mask_data":true,"input":{"data":"masked"},"output":{"data":"masked"}}"#,
                true,
            ),
            // a duplicate mask_data that says true wins: when in doubt, mask
            (
                r#"{"mask_data":false,"input":{"a":1},"mask_data":true}"#,
                r#"{"mask_data":false,"input":{"data":"masked"},"mask_data":true,"output":{"data":"masked"}}"#,
                true,
            ),
            // unmasked lines pass through untouched
            (r#"{"input":{"a":1},"output":{"b":2},"mask_data":false}"#, r#"{"input":{"a":1},"output":{"b":2},"mask_data":false}"#, false),
            (r#"{"input":{"a":1},"mask_data":"FALSE"}"#, r#"{"input":{"a":1},"mask_data":"FALSE"}"#, false),
            (r#"{"input":{"a":1},"mask_data":0,"mask_data":null}"#, r#"{"input":{"a":1},"mask_data":0,"mask_data":null}"#, false),
            // anything but a plain "no" masks: a string "true", a number, a "yes" in a second key
            (r#"{"input":{"a":1},"mask_data":"true"}"#, r#"{"input":{"data":"masked"},"mask_data":"true","output":{"data":"masked"}}"#, true),
            (r#"{"input":{"a":1},"output":2,"mask_data":1}"#, r#"{"input":{"data":"masked"},"output":{"data":"masked"},"mask_data":1}"#, true),
            (
                r#"{"mask_data":false,"input":{"a":1},"mask_data":"yes"}"#,
                r#"{"mask_data":false,"input":{"data":"masked"},"mask_data":"yes","output":{"data":"masked"}}"#,
                true,
            ),
            // a masked step's own error is redacted like the job's; an unmasked step's is its own
            (
                r#"{"mask_data":true,"error":"{\"message\":\"boom\",\"input\":{\"ssn\":\"1\"}}","error":"Invalid input 1","error":"Timeout"}"#,
                r#"{"mask_data":true,"error":"{\"message\":\"boom\",\"input\":\"<redacted>\"}","error":"<redacted: error text not readable as a JSON object>","error":"Timeout","input":{"data":"masked"},"output":{"data":"masked"}}"#,
                true,
            ),
            (r#"{"mask_data":false,"input":1,"error":"Invalid input 1"}"#, r#"{"mask_data":false,"input":1,"error":"Invalid input 1"}"#, false),
        ];
        for (input, want, want_masked) in cases {
            let (got, masked) = line_out(input);
            assert_eq!(got, want, "{input}");
            assert_eq!(masked, want_masked, "{input}");
            serde_json::from_str::<serde_json::Value>(&got).unwrap();
        }
    }

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_owned()).unwrap()
    }

    /// The job-level `error` as written: its replacement, or itself when kept.
    fn error_out(error: &str) -> String {
        let out = redact_error(&raw(error)).unwrap_or_else(|| error.to_owned());
        serde_json::from_str::<serde_json::Value>(&out).unwrap_or_else(|e| panic!("{error} gave invalid JSON {out}: {e}"));
        assert!(!out.contains("hunter2"), "{error} let the input out: {out}");
        out
    }

    /// Workato's form: the error document as the text of a JSON string.
    fn string_of(document: &str) -> String {
        serde_json::to_string(document).unwrap()
    }

    #[test]
    fn every_input_of_the_error_document_is_redacted() {
        let cases = [
            (
                r#"{"adapter":"http","message":"boom","input":{"password":"hunter2"},"error_id":"e1"}"#,
                r#"{"adapter":"http","message":"boom","input":"<redacted>","error_id":"e1"}"#,
            ),
            // a duplicate input, one already redacted, an escaped key name, spacing
            (r#"{"input":null,"message":"m","input":{"p":"hunter2"}}"#, r#"{"input":"<redacted>","message":"m","input":"<redacted>"}"#),
            (r#"{"input":"<redacted>","input":"hunter2"}"#, r#"{"input":"<redacted>","input":"<redacted>"}"#),
            (r#"{"inp\u0075t":"hunter2"}"#, r#"{"input":"<redacted>"}"#),
            (" {\n \"input\" : [\"hunter2\"] } ", r#"{"input":"<redacted>"}"#),
        ];
        for (document, want) in cases {
            // as a string, as Workato sends it: still a string
            let out: String = serde_json::from_str(&error_out(&string_of(document))).unwrap();
            assert_eq!(out, want, "{document} as a string");
            // as an object: redacted in place, still an object
            assert_eq!(error_out(document.trim()), want, "{document} as an object");
        }
    }

    #[test]
    fn an_error_that_is_not_a_json_object_but_could_hold_an_input_is_replaced_whole() {
        let placeholder = format!("\"{ERROR_TEXT_REDACTED}\"");
        let strings = [
            r#"{"input":NaN,"x":"hunter2"}"#,           // not strict JSON
            r#"{"input":"hunter2"} and more"#,          // trailing text
            r#"[{"input":"hunter2"}]"#,                 // an array
            r#"{"message":"m","input":{"p":"hunter2""#, // truncated
            r#""{\"input\":\"hunter2\"}""#,             // a JSON string inside the string
            "Invalid INPUT: hunter2",                   // plain text naming an input
            r#"{:input=>"hunter2"}"#,                   // not JSON at all
            r"\u0069nput hunter2",                      // an escape that could spell one
        ];
        for text in strings {
            assert_eq!(error_out(&string_of(text)), placeholder, "{text}");
        }
        // an undecodable string, and the array form
        for error in [r#""\ud800 hunter2""#, r#"[{"input":"hunter2"}]"#, "[]"] {
            assert_eq!(error_out(error), placeholder, "{error}");
        }
        assert_eq!(serde_json::from_str::<String>(&placeholder).unwrap(), ERROR_TEXT_REDACTED);
    }

    #[test]
    fn an_error_with_no_input_to_redact_is_kept_as_it_is() {
        for kept in [
            "null",
            "false",
            "42",
            r#""Connection timed out""#,
            r#""Timed out after 30 s (HTTP 504)""#,
            r#""a \"quoted\" word""#,
            r#""{\"message\":\"x\"}""#,
            r#""{\"input\":\"\\u003credacted\\u003e\"}""#,
            r#"{"message":"x"}"#,
            r#"{"input":"<redacted>"}"#,
        ] {
            assert_eq!(redact_error(&raw(kept)), None, "{kept}");
        }
    }

    #[test]
    fn a_lines_string_is_kept_only_when_it_cannot_hold_step_data() {
        let placeholder = format!("\"{LINES_TEXT_REDACTED}\"");
        for kept in ["null", r#""Log lines exceed size limit""#, r#""omitted by the sender""#] {
            assert_eq!(redact_lines_text(&raw(kept)), None, "{kept}");
        }
        for replaced in [
            string_of(r#"[{"mask_data":true,"input":{"ssn":"hunter2"}}]"#),
            string_of("OUTPUT: hunter2"),
            string_of("Log lines exceed size limit {hunter2}"),
            r#""\ud800 hunter2""#.to_owned(),
        ] {
            assert_eq!(redact_lines_text(&raw(&replaced)).as_deref(), Some(placeholder.as_str()), "{replaced}");
        }
        assert_eq!(serde_json::from_str::<String>(&placeholder).unwrap(), LINES_TEXT_REDACTED);
    }
}
