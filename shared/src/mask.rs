//! Masking, as Workato streams it (spec §4).
//!
//! - A step line with `mask_data: true` keeps its metadata, but its `input` and `output` become
//!   the literal `{"data":"masked"}`, whatever they held — present or not, valid-looking or not.
//! - The job-level `error` is a JSON document inside a string; its `input` becomes `"<redacted>"`
//!   always, masked step or not.
//!
//! These are pure rules over raw JSON; [`crate::output`] applies them while writing.

use serde_json::value::RawValue;

use crate::json_scan::{scan_flat_object, Line};

/// What a masked step's `input` and `output` become.
pub const MASKED_DATA: &str = r#"{"data":"masked"}"#;

/// What the `input` inside the job-level `error` document becomes.
pub const REDACTED: &str = "<redacted>";

/// The fields of a masked line that are replaced.
const MASKED_FIELDS: [&str; 2] = ["input", "output"];

/// Writes one step line as a JSON object into `out`, masking it when it asks for masking.
/// Returns whether the line was masked.
pub fn write_line<O: crate::output::JsonOut + ?Sized>(out: &mut O, line: &Line<'_>) -> bool {
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

/// The job-level `error` rewritten with its inner `input` redacted, as a JSON string literal.
///
/// Returns `None` when nothing needs to change: `error` is null, not a string, not a JSON object
/// inside, has no `input`, or `input` is already `"<redacted>"`.
pub fn redact_error_input(error: &RawValue) -> Option<String> {
    let text = error.get();
    if !text.starts_with('"') {
        return None;
    }
    let inner: String = serde_json::from_str(text).ok()?;
    let fields = scan_flat_object(&inner).ok()?;
    let needs = fields.iter().any(|(k, v)| k == "input" && serde_json::from_str::<String>(v.get()).map_or(true, |s| s != REDACTED));
    if !needs {
        return None;
    }
    let mut doc = Vec::with_capacity(inner.len());
    doc.push(b'{');
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            doc.push(b',');
        }
        crate::output::JsonOut::key(&mut doc, key);
        if key == "input" {
            doc.extend_from_slice(b"\"<redacted>\"");
        } else {
            doc.extend_from_slice(value.get().as_bytes());
        }
    }
    doc.push(b'}');
    // The document was built from valid JSON pieces and ASCII punctuation: it is UTF-8.
    let doc = String::from_utf8(doc).ok()?;
    serde_json::to_string(&doc).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json_scan::{Lines, ScannedObject};

    fn line_out(json: &str) -> (String, bool) {
        let wrapped = format!(r#"{{"lines":[{json}]}}"#);
        let scanned = ScannedObject::scan(&wrapped).unwrap();
        let Some(Lines::Steps(lines)) = scanned.lines() else { panic!() };
        let mut out = Vec::new();
        let masked = write_line(&mut out, &lines[0]);
        (String::from_utf8(out).unwrap(), masked)
    }

    #[test]
    fn masked_lines_lose_input_and_output_and_keep_the_rest() {
        let cases = [
            // input/output replaced whatever they held; metadata kept in order
            (r#"{"recipe_line_number":1,"adapter_name":"salesforce","input":{"ssn":"123-45-6789"},"output":[1,2],"error":null,"mask_data":true,"line_stat":{"total":0.1}}"#,
             r#"{"recipe_line_number":1,"adapter_name":"salesforce","input":{"data":"masked"},"output":{"data":"masked"},"error":null,"mask_data":true,"line_stat":{"total":0.1}}"#, true),
            // null and strings are data too
            (r#"{"input":null,"output":"secret","mask_data":true}"#,
             r#"{"input":{"data":"masked"},"output":{"data":"masked"},"mask_data":true}"#, true),
            // missing fields are added, so the placeholder is always there
            (r#"{"adapter_name":"http","mask_data":true}"#,
             r#"{"adapter_name":"http","mask_data":true,"input":{"data":"masked"},"output":{"data":"masked"}}"#, true),
            // a duplicate mask_data that says true wins: when in doubt, mask
            (r#"{"mask_data":false,"input":{"a":1},"mask_data":true}"#,
             r#"{"mask_data":false,"input":{"data":"masked"},"mask_data":true,"output":{"data":"masked"}}"#, true),
            // unmasked lines pass through untouched
            (r#"{"input":{"a":1},"output":{"b":2},"mask_data":false}"#, r#"{"input":{"a":1},"output":{"b":2},"mask_data":false}"#, false),
            (r#"{"input":{"a":1},"mask_data":"true"}"#, r#"{"input":{"a":1},"mask_data":"true"}"#, false),
        ];
        for (input, want, want_masked) in cases {
            let (got, masked) = line_out(input);
            assert_eq!(got, want, "{input}");
            assert_eq!(masked, want_masked, "{input}");
            serde_json::from_str::<serde_json::Value>(&got).unwrap();
        }
    }

    #[test]
    fn the_error_documents_input_is_redacted() {
        let raw = |s: &str| RawValue::from_string(s.to_owned()).unwrap();
        let error = serde_json::to_string(r#"{"adapter":"http","message":"boom","input":{"password":"hunter2"},"error_id":"e1"}"#).unwrap();
        let out = redact_error_input(&raw(&error)).unwrap();
        let inner: String = serde_json::from_str(&out).unwrap();
        assert_eq!(inner, r#"{"adapter":"http","message":"boom","input":"<redacted>","error_id":"e1"}"#);
        assert!(!out.contains("hunter2"));
        // nothing to do
        for unchanged in ["null", "42", r#""plain message""#, r#""{\"message\":\"x\"}""#, r#""{\"input\":\"\\u003credacted\\u003e\"}""#] {
            assert_eq!(redact_error_input(&raw(unchanged)), None, "{unchanged}");
        }
    }
}
