//! A one-pass scanner that splits an audit event into its top-level fields without building a tree.
//!
//! Audit events are mostly step data (`lines[].input` / `lines[].output`) that we never look
//! inside. Parsing them into a `serde_json::Value` would allocate a node per value and cost several
//! times a plain validation pass. Instead we borrow every value as a [`RawValue`] slice of the
//! input: the scan validates the whole document once and the writer later copies the untouched
//! slices verbatim. Only `lines` is opened one level deeper, in the same pass, because masking
//! works per line.
//!
//! Two implementations give the same answer. [`ScannedObject::scan`] runs the hand-written
//! validating scanner of [`crate::pipeline::scan::fast`], which is faster than serde_json's own validation
//! pass. [`ScannedObject::scan_reference`] is the original, built on serde_json (its parser,
//! recursion limit included, with a separate depth check): it defines what is accepted, the
//! differential tests hold the fast scanner to it, and it words the errors.
//!
//! What this module is not: a general JSON library. It knows the two shapes it is for — an
//! object of fields, and `lines` as an array of objects — and reports anything else as a
//! [`ScanError`] that names the problem without quoting the data.

pub mod fast;
pub mod nesting;
pub mod summary;

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// Why a body could not be read as an audit event object.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ScanError {
    /// Not valid JSON at all (or nested deeper than serde_json's limit of 128 levels).
    #[error("body is not valid JSON: {0}")]
    Syntax(String),
    /// Valid JSON, but the top level is not an object.
    #[error("body is JSON but not an object (an audit event is a JSON object)")]
    NotAnObject,
    /// `lines` holds something other than an array of objects, a string or null.
    #[error("field `lines` must be an array of step objects, a string or null; {0}")]
    BadLines(String),
    /// Arrays and objects nested deeper than [`MAX_DEPTH`]: valid JSON, but many consumers
    /// (serde_json included) refuse it, so it would fail at the destination's reader instead.
    #[error("body nests arrays and objects deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

/// The deepest nesting accepted, the same as serde_json's own recursion limit.
pub const MAX_DEPTH: usize = 128;

/// An object key, borrowed from the input unless it contained escapes.
pub type Key<'a> = Cow<'a, str>;

/// One step line: its fields in input order, and whether it asks for masking.
#[derive(Debug)]
pub struct Line<'a> {
    pub fields: Vec<(Key<'a>, &'a RawValue)>,
    /// True when any `mask_data` field of the line asks for masking, as
    /// [`crate::pipeline::mask_rule::mask_data_masks`] reads it. Duplicate keys count too: when in doubt, mask.
    pub mask_data: bool,
}

/// The value of the top-level `lines` field.
#[derive(Debug)]
pub enum Lines<'a> {
    Steps(Vec<Line<'a>>),
    /// `lines` was already a string (for example an upstream size placeholder) or null: kept as is.
    /// Owned because it is re-emitted from its parsed form (see [`LinesSeed`]).
    Other(Box<RawValue>),
}

/// A top-level field value: raw, or the opened `lines` array.
#[derive(Debug)]
pub enum FieldValue<'a> {
    Raw(&'a RawValue),
    Lines(Lines<'a>),
}

/// An audit event split into its top-level fields, in input order.
#[derive(Debug)]
pub struct ScannedObject<'a> {
    pub fields: Vec<(Key<'a>, FieldValue<'a>)>,
}

impl<'a> ScannedObject<'a> {
    /// Scans `input` as an event object, opening its top-level `lines` field.
    pub fn scan(input: &'a str) -> Result<Self, ScanError> {
        match crate::pipeline::scan::fast::scan(input) {
            Ok(scanned) => Ok(scanned),
            // Rejections are rare, so the reference scans them again: its error is worded as
            // serde_json words it (what operators and dead-letter reasons have always shown).
            // If it accepts what the fast path refused, its answer wins, since a false rejection
            // would lose an event; the differential tests exist so that this never happens.
            Err(fast) => Self::scan_reference(input).inspect(|_| {
                tracing::error!(error = %fast, "the fast JSON scanner rejected an event the reference accepts; using the reference");
            }),
        }
    }

    /// The serde_json-based scan: the definition of what [`ScannedObject::scan`] accepts and
    /// returns. About half as fast.
    pub fn scan_reference(input: &'a str) -> Result<Self, ScanError> {
        let mut de = serde_json::Deserializer::from_str(input);
        let fields = de.deserialize_any(TopVisitor).map_err(|e| classify_error(e, input))?;
        de.end().map_err(|e| ScanError::Syntax(e.to_string()))?;
        // Borrowed raw values are skipped by serde_json without its recursion limit, so depth is
        // checked here, over the already validated text.
        if crate::pipeline::scan::nesting::exceeds(input.as_bytes(), MAX_DEPTH) {
            return Err(ScanError::TooDeep);
        }
        Ok(ScannedObject { fields })
    }

    /// The first top-level field with this name, as raw JSON.
    pub fn raw(&self, name: &str) -> Option<&'a RawValue> {
        self.fields.iter().find_map(|(k, v)| match v {
            FieldValue::Raw(r) if k == name => Some(*r),
            _ => None,
        })
    }

    /// True when the object has a field with this name (whatever its value).
    pub fn has(&self, name: &str) -> bool {
        self.fields.iter().any(|(k, _)| k == name)
    }

    /// Every opened `lines` field, in input order: a duplicate key is one more field, not one to
    /// skip, since readers disagree on which one they keep.
    pub fn lines(&self) -> impl Iterator<Item = &Lines<'a>> {
        self.fields.iter().filter_map(|(_, v)| match v {
            FieldValue::Lines(l) => Some(l),
            _ => None,
        })
    }
}

/// Splits a small JSON object (such as `context` or the inner `error` document) into raw fields.
pub fn scan_flat_object(input: &str) -> Result<Vec<(Key<'_>, &RawValue)>, ScanError> {
    let mut de = serde_json::Deserializer::from_str(input);
    let fields = de.deserialize_any(FlatObjectVisitor).map_err(|e| classify_error(e, input))?;
    de.end().map_err(|e| ScanError::Syntax(e.to_string()))?;
    Ok(fields)
}

/// Our visitors signal "valid JSON of the wrong shape" with these markers, so that the caller can
/// tell a shape problem from a syntax error without string-matching serde_json's own messages.
const NOT_AN_OBJECT: &str = "\u{1}not-an-object";
const BAD_LINES: &str = "\u{1}bad-lines:";

fn classify_error(e: serde_json::Error, _input: &str) -> ScanError {
    let msg = e.to_string();
    if msg.starts_with(NOT_AN_OBJECT) {
        ScanError::NotAnObject
    } else if let Some(rest) = msg.strip_prefix(BAD_LINES) {
        // serde_json appends " at line L column C"; keep it, it helps find the spot.
        ScanError::BadLines(rest.to_string())
    } else {
        ScanError::Syntax(msg)
    }
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

/// Rejects any non-object top level with the NOT_AN_OBJECT marker.
macro_rules! reject_non_object {
    ($marker:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Err(E::custom($marker))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Err(E::custom($marker))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Err(E::custom($marker))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Err(E::custom($marker))
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Err(E::custom($marker))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Err(E::custom($marker))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(de::Error::custom($marker))
        }
    };
}

struct TopVisitor;

impl<'de> Visitor<'de> for TopVisitor {
    type Value = Vec<(Key<'de>, FieldValue<'de>)>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    reject_non_object!(NOT_AN_OBJECT);
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Vec::with_capacity(32);
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let value = if key == "lines" { FieldValue::Lines(map.next_value_seed(LinesSeed)?) } else { FieldValue::Raw(map.next_value::<&'de RawValue>()?) };
            fields.push((key, value));
        }
        Ok(fields)
    }
}

struct FlatObjectVisitor;

impl<'de> Visitor<'de> for FlatObjectVisitor {
    type Value = Vec<(Key<'de>, &'de RawValue)>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    reject_non_object!(NOT_AN_OBJECT);
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Vec::with_capacity(16);
        while let Some(key) = map.next_key_seed(KeySeed)? {
            fields.push((key, map.next_value::<&'de RawValue>()?));
        }
        Ok(fields)
    }
}

/// `lines` is either an array of objects (opened), or a string/null (kept raw).
///
/// A seed cannot fall back to "capture the raw slice" once the value's type is known, so string
/// and null are re-emitted from their parsed form; both round-trip exactly through serde_json.
struct LinesSeed;

impl<'de> DeserializeSeed<'de> for LinesSeed {
    type Value = Lines<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(LinesVisitor)
    }
}

struct LinesVisitor;

impl LinesVisitor {
    fn raw<'x, E: de::Error>(json: String) -> Result<Lines<'x>, E> {
        Ok(Lines::Other(RawValue::from_string(json).map_err(E::custom)?))
    }
}

impl<'de> Visitor<'de> for LinesVisitor {
    type Value = Lines<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of step lines")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut lines = Vec::with_capacity(seq.size_hint().unwrap_or(8));
        while let Some(line) = seq.next_element_seed(LineSeed(lines.len()))? {
            lines.push(line);
        }
        Ok(Lines::Steps(lines))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Self::raw(serde_json::to_string(v).map_err(E::custom)?)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Self::raw(serde_json::to_string(v).map_err(E::custom)?)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Self::raw("null".to_owned())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Err(E::custom(format!("{BAD_LINES}found a boolean")))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Err(E::custom(format!("{BAD_LINES}found a number")))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Err(E::custom(format!("{BAD_LINES}found a number")))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Err(E::custom(format!("{BAD_LINES}found a number")))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(de::Error::custom(format!("{BAD_LINES}found an object")))
    }
}

struct LineSeed(usize);

impl<'de> DeserializeSeed<'de> for LineSeed {
    type Value = Line<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(LineVisitor(self.0))
    }
}

struct LineVisitor(usize);

impl LineVisitor {
    fn wrong<E: de::Error>(&self, what: &str) -> E {
        E::custom(format!("{BAD_LINES}lines[{}] is {what}, not an object", self.0))
    }
}

impl<'de> Visitor<'de> for LineVisitor {
    type Value = Line<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a step line object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Vec::with_capacity(8);
        let mut mask_data = false;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let value: &'de RawValue = map.next_value()?;
            mask_data |= key == "mask_data" && crate::pipeline::mask_rule::mask_data_masks(value);
            fields.push((key, value));
        }
        Ok(Line { fields, mask_data })
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Err(self.wrong("a boolean"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Err(self.wrong("a number"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Err(self.wrong("a number"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Err(self.wrong("a number"))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Err(self.wrong("a string"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Err(self.wrong("null"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(self.wrong("an array"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_top_level_fields_in_order_and_opens_lines() {
        let doc = r#"{"id":"j-1","lines":[{"input":{"a":1},"mask_data":true},{"mask_data":false}],"status":"failed"}"#;
        let s = ScannedObject::scan(doc).unwrap();
        let keys: Vec<&str> = s.fields.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(keys, ["id", "lines", "status"]);
        assert_eq!(s.raw("status").unwrap().get(), r#""failed""#);
        match s.lines().next().unwrap() {
            Lines::Steps(l) => {
                assert_eq!(l.len(), 2);
                assert!(l[0].mask_data);
                assert!(!l[1].mask_data);
                assert_eq!(l[0].fields[0].1.get(), r#"{"a":1}"#);
            }
            other => panic!("expected steps, got {other:?}"),
        };
    }

    #[test]
    fn keeps_string_and_null_lines_raw() {
        let s = ScannedObject::scan(r#"{"lines":"Log lines exceed size limit"}"#).unwrap();
        assert!(matches!(s.lines().next(), Some(Lines::Other(r)) if r.get() == r#""Log lines exceed size limit""#));
        let s = ScannedObject::scan(r#"{"lines":null}"#).unwrap();
        assert!(matches!(s.lines().next(), Some(Lines::Other(r)) if r.get() == "null"));
    }

    #[test]
    fn escaped_keys_are_unescaped() {
        let s = ScannedObject::scan(r#"{"st\u0061tus":"ok"}"#).unwrap();
        assert_eq!(s.fields[0].0, "status");
    }

    /// An input, and what its error must look like.
    type Rejection = (&'static str, fn(&ScanError) -> bool);

    #[test]
    fn rejects_what_is_not_an_event_object() {
        let cases: &[Rejection] = &[
            ("not json", |e| matches!(e, ScanError::Syntax(_))),
            ("{\"a\":1", |e| matches!(e, ScanError::Syntax(_))),
            ("{\"a\":1} trailing", |e| matches!(e, ScanError::Syntax(_))),
            ("[1,2]", |e| *e == ScanError::NotAnObject),
            ("\"str\"", |e| *e == ScanError::NotAnObject),
            ("42", |e| *e == ScanError::NotAnObject),
            ("{\"lines\":{}}", |e| matches!(e, ScanError::BadLines(m) if m.contains("found an object"))),
            ("{\"lines\":[1]}", |e| matches!(e, ScanError::BadLines(m) if m.contains("lines[0] is a number"))),
            ("{\"lines\":[{},\"x\"]}", |e| matches!(e, ScanError::BadLines(m) if m.contains("lines[1] is a string"))),
        ];
        for (input, check) in cases {
            let err = ScannedObject::scan(input).unwrap_err();
            assert!(check(&err), "{input:?} gave {err:?}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(ScannedObject::scan(&deep).unwrap_err(), ScanError::TooDeep);
        // the limit counts the event object itself
        let at_limit = format!("{{\"a\":{}{}}}", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1));
        assert!(ScannedObject::scan(&at_limit).is_ok());
        let over = format!("{{\"a\":{}{}}}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(ScannedObject::scan(&over).unwrap_err(), ScanError::TooDeep);
        // brackets inside strings do not count, escaped quotes do not end them
        let in_strings = format!("{{\"a\":\"{}\\\"{}\"}}", "[".repeat(500), "{".repeat(500));
        assert!(ScannedObject::scan(&in_strings).is_ok());
    }
}
