//! What a scan returned, in a form two scans can be compared by. The fast scanner must answer as the
//! reference does on every input; the differential tests of [`super::fast`] and the masking oracle's
//! fuzz target (`masking-oracle`, `fuzz/`) check it with [`ScanSummary`].

use std::borrow::Cow;

use super::{FieldValue, Lines, ScanError, ScannedObject};

/// The decision a scan made — accepted, or rejected with which [`ScanError`] — and, when accepted,
/// the fields it returned.
#[derive(Debug, PartialEq)]
pub enum ScanSummary {
    Fields(Vec<(KeySummary, ValueSummary)>),
    Syntax,
    NotAnObject,
    /// The description before serde_json's " at line L column C" (positions are worded differently).
    BadLines(String),
    TooDeep,
}

/// A key, and whether it was borrowed from the input (it held no escapes) or unescaped into a copy.
#[derive(Debug, PartialEq)]
pub struct KeySummary {
    pub text: String,
    pub borrowed: bool,
}

/// Where a raw value lies in the input: (offset, length).
pub type Span = (usize, usize);

#[derive(Debug, PartialEq)]
pub enum ValueSummary {
    Raw(Span),
    /// Each line's fields and whether it masks.
    Steps(Vec<(Vec<(KeySummary, Span)>, bool)>),
    Other(String),
}

impl ScanSummary {
    /// Summarizes `result`, a scan of `input`. Panics when a raw value is not a slice of `input`:
    /// every scanner borrows them, and the writer relies on it.
    pub fn of(input: &str, result: Result<ScannedObject<'_>, ScanError>) -> ScanSummary {
        let span = |text: &str| -> Span {
            let offset = (text.as_ptr() as usize).wrapping_sub(input.as_ptr() as usize);
            assert!(offset.checked_add(text.len()).is_some_and(|end| end <= input.len()), "a raw value is not a slice of the input");
            (offset, text.len())
        };
        let key = |k: &Cow<'_, str>| KeySummary { text: k.to_string(), borrowed: matches!(k, Cow::Borrowed(_)) };
        match result {
            Ok(scanned) => ScanSummary::Fields(
                scanned
                    .fields
                    .iter()
                    .map(|(k, v)| {
                        let value = match v {
                            FieldValue::Raw(raw) => ValueSummary::Raw(span(raw.get())),
                            FieldValue::Lines(Lines::Other(raw)) => ValueSummary::Other(raw.get().to_owned()),
                            FieldValue::Lines(Lines::Steps(lines)) => ValueSummary::Steps(
                                lines.iter().map(|l| (l.fields.iter().map(|(k, v)| (key(k), span(v.get()))).collect(), l.mask_data)).collect(),
                            ),
                        };
                        (key(k), value)
                    })
                    .collect(),
            ),
            Err(ScanError::Syntax(_)) => ScanSummary::Syntax,
            Err(ScanError::NotAnObject) => ScanSummary::NotAnObject,
            Err(ScanError::BadLines(m)) => ScanSummary::BadLines(m.split(" at line ").next().unwrap_or_default().to_owned()),
            Err(ScanError::TooDeep) => ScanSummary::TooDeep,
        }
    }
}
