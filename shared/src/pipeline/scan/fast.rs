//! The fast path of [`ScannedObject::scan`]: a hand-written validating scanner that splits an
//! audit event into its top-level fields (and `lines` into per-line fields) in one pass.
//!
//! Why not serde_json: borrowing every field as a `&RawValue` makes serde_json skip the values
//! with its general-purpose `ignore_value` (8 bytes at a time through strings) and a separate pass
//! then checks the nesting depth. Audit events are mostly step data — short strings, numbers,
//! punctuation — so this scanner does the same validation in one pass, finds the end of strings
//! a 64-byte block at a time with SIMD ([`Stops`]), and counts depth as it goes.
//!
//! It accepts exactly what the serde_json-based scan accepts and returns the same fields; the
//! differential tests (`fast/differential_tests.rs`) hold it to that. The parts of the grammar
//! that are rare in audit data and subtle to get right are handed to serde_json itself, on the
//! slice this scanner has already delimited: decoding a key or string that contains escapes
//! (serde_json is strict there about surrogate pairs, but not inside skipped values), and
//! deciding whether a number in a place where the event must not have one is in range
//! (serde_json rejects `1e400` only where it parses the number, not where it skips it).
//!
//! What it is not: a JSON library. It knows the event's shape and nothing else.

use std::borrow::Cow;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::pipeline::scan::{FieldValue, Key, Line, Lines, ScanError, ScannedObject, MAX_DEPTH};

/// Scans `input` as an audit event object. Same result as the serde_json-based reference,
/// except for the wording of syntax errors.
pub fn scan(input: &str) -> Result<ScannedObject<'_>, ScanError> {
    let mut scanner = Scanner { input, bytes: input.as_bytes(), pos: 0, too_deep: false, stack: Vec::new(), stops: Stops::new(input.as_bytes()) };
    match scanner.event() {
        // The reference checks depth only once the text has proved valid JSON; so do we.
        Ok(_) if scanner.too_deep => Err(ScanError::TooDeep),
        Ok(fields) => Ok(ScannedObject { fields }),
        Err(fail) => Err(fail.into_error(input)),
    }
}

/// Why the scan stopped, before it is turned into a [`ScanError`] with a position.
#[derive(Debug)]
enum Fail {
    /// Not JSON: what was wrong, and the byte offset where it was found.
    Syntax {
        what: &'static str,
        at: usize,
    },
    NotAnObject,
    /// `lines` has the wrong shape: what was found, and where it ends.
    BadLines {
        what: String,
        at: usize,
    },
}

impl Fail {
    fn into_error(self, input: &str) -> ScanError {
        match self {
            Fail::Syntax { what, at } => ScanError::Syntax(format!("{what} {}", Position::of(input, at))),
            Fail::NotAnObject => ScanError::NotAnObject,
            Fail::BadLines { what, at } => ScanError::BadLines(format!("{what} {}", Position::of(input, at))),
        }
    }
}

/// Line and column (both from 1, the column in bytes) of a byte offset, for error messages.
struct Position {
    line: usize,
    column: usize,
}

impl Position {
    fn of(input: &str, at: usize) -> Position {
        let before = &input.as_bytes()[..at.min(input.len())];
        let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        Position { line: 1 + before.iter().filter(|&&b| b == b'\n').count(), column: 1 + before.len() - line_start }
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "at line {} column {}", self.line, self.column)
    }
}

/// A scalar read where the event's shape allows none (the top level, `lines`, a `lines` element),
/// read as strictly as serde_json reads it there, since that decides between a syntax error and
/// a shape error.
enum Scalar<'a> {
    /// The string's JSON text, quotes included.
    String(&'a str),
    Number,
    Bool,
    Null,
}

struct Scanner<'a> {
    input: &'a str,
    bytes: &'a [u8],
    /// The next byte to read.
    pos: usize,
    /// Set when an array or object opens deeper than [`MAX_DEPTH`]. The scan goes on, because a
    /// syntax error later in the text takes precedence, as it does in the reference.
    too_deep: bool,
    /// The arrays and objects open inside the value being skipped (true: object), kept between
    /// values to reuse its allocation. A stack rather than recursion: depth is attacker-chosen.
    stack: Vec<bool>,
    stops: Stops<'a>,
}

impl<'a> Scanner<'a> {
    // ---- the event's shape ----

    /// The whole input: one object, then nothing but whitespace.
    fn event(&mut self) -> Result<Vec<(Key<'a>, FieldValue<'a>)>, Fail> {
        if self.skip_ws() != b'{' {
            return Err(self.not_an_object());
        }
        self.pos += 1;
        let mut fields = Vec::with_capacity(32);
        if self.skip_ws() == b'}' {
            self.pos += 1;
        } else {
            loop {
                let key = self.key()?;
                self.colon()?;
                let value = if key == "lines" { FieldValue::Lines(self.lines()?) } else { FieldValue::Raw(self.raw_value(1)?) };
                fields.push((key, value));
                if !self.next_member(b'}')? {
                    break;
                }
            }
        }
        if self.skip_ws() != 0 || self.pos < self.bytes.len() {
            return Err(self.syntax("trailing characters after the object"));
        }
        Ok(fields)
    }

    /// Valid JSON other than an object is [`Fail::NotAnObject`]. As in the reference, an array is
    /// refused at its bracket, but a scalar only once it has been read: a broken one is a syntax
    /// error.
    fn not_an_object(&mut self) -> Fail {
        if self.peek() == b'[' {
            return Fail::NotAnObject;
        }
        match self.strict_scalar() {
            Ok(_) => Fail::NotAnObject,
            Err(fail) => fail,
        }
    }

    /// The value of a top-level `lines` field (the scanner is at its first byte, after spaces).
    fn lines(&mut self) -> Result<Lines<'a>, Fail> {
        match self.skip_ws() {
            b'[' => self.steps(),
            b'{' => Err(Fail::BadLines { what: "found an object".into(), at: self.pos }),
            _ => match self.strict_scalar()? {
                // Kept as serde_json re-emits them (the reference's behaviour), owned.
                Scalar::Null => Ok(Lines::Other(owned_raw("null".to_owned())?)),
                Scalar::String(json) => Ok(Lines::Other(owned_raw(reencode_string(json)?)?)),
                Scalar::Bool => Err(Fail::BadLines { what: "found a boolean".into(), at: self.pos }),
                Scalar::Number => Err(Fail::BadLines { what: "found a number".into(), at: self.pos }),
            },
        }
    }

    /// `lines` as an array: each element must be a step object.
    fn steps(&mut self) -> Result<Lines<'a>, Fail> {
        self.pos += 1;
        let mut lines = Vec::with_capacity(8);
        if self.skip_ws() == b']' {
            self.pos += 1;
            return Ok(Lines::Steps(lines));
        }
        loop {
            if self.skip_ws() == b'{' {
                lines.push(self.line()?);
            } else {
                return Err(self.not_a_line(lines.len()));
            }
            if !self.next_member(b']')? {
                return Ok(Lines::Steps(lines));
            }
        }
    }

    fn not_a_line(&mut self, index: usize) -> Fail {
        let what = if self.peek() == b'[' {
            "an array"
        } else {
            match self.strict_scalar() {
                Ok(Scalar::String(_)) => "a string",
                Ok(Scalar::Number) => "a number",
                Ok(Scalar::Bool) => "a boolean",
                Ok(Scalar::Null) => "null",
                Err(fail) => return fail,
            }
        };
        Fail::BadLines { what: format!("lines[{index}] is {what}, not an object"), at: self.pos }
    }

    /// One step object of `lines`; its values are kept raw.
    fn line(&mut self) -> Result<Line<'a>, Fail> {
        self.pos += 1;
        let mut fields = Vec::with_capacity(8);
        let mut mask_data = false;
        if self.skip_ws() == b'}' {
            self.pos += 1;
            return Ok(Line { fields, mask_data });
        }
        loop {
            let key = self.key()?;
            self.colon()?;
            // The event object is level 1, `lines` 2, this line 3.
            let value = self.raw_value(3)?;
            mask_data |= key == "mask_data" && crate::pipeline::mask_rule::mask_data_masks(value);
            fields.push((key, value));
            if !self.next_member(b'}')? {
                return Ok(Line { fields, mask_data });
            }
        }
    }

    /// After a member of an object or array: true after a `,`, false after the `close` byte.
    fn next_member(&mut self, close: u8) -> Result<bool, Fail> {
        match self.skip_ws() {
            b',' => {
                self.pos += 1;
                Ok(true)
            }
            b if b == close => {
                self.pos += 1;
                Ok(false)
            }
            _ if close == b'}' => Err(self.syntax("expected `,` or `}` after an object member")),
            _ => Err(self.syntax("expected `,` or `]` after an array element")),
        }
    }

    /// An object key, unescaped if it has escapes.
    fn key(&mut self) -> Result<Key<'a>, Fail> {
        if self.skip_ws() != b'"' {
            return Err(self.syntax("expected a string key"));
        }
        let start = self.pos;
        let escaped = self.skip_string()?;
        let json = self.slice(start, self.pos)?;
        if escaped {
            Ok(Cow::Owned(decode_string(json).map_err(|what| Fail::Syntax { what, at: start })?))
        } else {
            // Between the quotes; both are one byte.
            Ok(Cow::Borrowed(self.slice(start + 1, self.pos - 1)?))
        }
    }

    fn colon(&mut self) -> Result<(), Fail> {
        if self.skip_ws() != b':' {
            return Err(self.syntax("expected `:` after an object key"));
        }
        self.pos += 1;
        Ok(())
    }

    /// Skips one value, nested at `depth` (the level of the object holding it), and borrows its
    /// text.
    fn raw_value(&mut self, depth: usize) -> Result<&'a RawValue, Fail> {
        self.skip_ws();
        let start = self.pos;
        self.skip_value(depth)?;
        borrowed_raw(self.slice(start, self.pos)?).ok_or(Fail::Syntax { what: "internal error: a value could not be borrowed", at: start })
    }

    /// See [`Scalar`]. Strings are decoded and numbers parsed, as serde_json does in these places.
    fn strict_scalar(&mut self) -> Result<Scalar<'a>, Fail> {
        let start = self.pos;
        match self.peek() {
            b'"' => {
                let escaped = self.skip_string()?;
                let json = self.slice(start, self.pos)?;
                if escaped {
                    decode_string(json).map_err(|what| Fail::Syntax { what, at: start })?;
                }
                Ok(Scalar::String(json))
            }
            b'-' | b'0'..=b'9' => {
                self.skip_number()?;
                // The grammar is checked; serde_json also refuses numbers too large for an f64.
                match serde_json::from_str::<serde_json::Value>(self.slice(start, self.pos)?) {
                    Ok(_) => Ok(Scalar::Number),
                    Err(_) => Err(Fail::Syntax { what: "number out of range", at: start }),
                }
            }
            b't' => self.skip_literal(b"true").map(|_| Scalar::Bool),
            b'f' => self.skip_literal(b"false").map(|_| Scalar::Bool),
            b'n' => self.skip_literal(b"null").map(|_| Scalar::Null),
            _ => Err(self.syntax("expected a value")),
        }
    }

    // ---- JSON values, skipped ----

    /// Skips any JSON value, validating it, without recursion. `depth` is the nesting level of
    /// the container the value is in; an array or object in it is at `depth + 1`.
    fn skip_value(&mut self, depth: usize) -> Result<(), Fail> {
        // The hot loop of the scan. The position and the stack live in locals, so that they can
        // stay in registers; they go back into `self` on success (an error ends the scan).
        let bytes = self.bytes;
        let mut at = self.pos;
        let mut stack = std::mem::take(&mut self.stack);
        stack.clear();
        'value: loop {
            at = skip_ws(bytes, at);
            at = match byte(bytes, at) {
                b'"' => self.stops.string_end(at)?.0,
                b'{' => {
                    stack.push(true);
                    self.too_deep |= depth + stack.len() > MAX_DEPTH;
                    at = skip_ws(bytes, at + 1);
                    if byte(bytes, at) != b'}' {
                        at = self.member_key(at)?;
                        continue 'value;
                    }
                    stack.pop();
                    at + 1
                }
                b'[' => {
                    stack.push(false);
                    self.too_deep |= depth + stack.len() > MAX_DEPTH;
                    at = skip_ws(bytes, at + 1);
                    if byte(bytes, at) != b']' {
                        continue 'value;
                    }
                    stack.pop();
                    at + 1
                }
                b'-' | b'0'..=b'9' => number_end(bytes, at)?,
                b't' => literal_end(bytes, at, b"true")?,
                b'f' => literal_end(bytes, at, b"false")?,
                b'n' => literal_end(bytes, at, b"null")?,
                _ => return Err(unexpected(bytes, at, "expected a value")),
            };
            // A value is complete: close containers until one goes on with a comma.
            while let Some(&in_object) = stack.last() {
                at = skip_ws(bytes, at);
                match (byte(bytes, at), in_object) {
                    (b',', true) => {
                        at = self.member_key(at + 1)?;
                        continue 'value;
                    }
                    (b',', false) => {
                        at += 1;
                        continue 'value;
                    }
                    (b'}', true) | (b']', false) => {
                        at += 1;
                        stack.pop();
                    }
                    (_, true) => return Err(unexpected(bytes, at, "expected `,` or `}` after an object member")),
                    (_, false) => return Err(unexpected(bytes, at, "expected `,` or `]` after an array element")),
                }
            }
            break;
        }
        self.stack = stack;
        self.pos = at;
        Ok(())
    }

    /// A key inside a skipped object, and its colon: the index after the colon.
    #[inline(always)]
    fn member_key(&mut self, at: usize) -> Result<usize, Fail> {
        let at = skip_ws(self.bytes, at);
        if byte(self.bytes, at) != b'"' {
            return Err(unexpected(self.bytes, at, "expected a string key"));
        }
        let (at, _) = self.stops.string_end(at)?;
        let at = skip_ws(self.bytes, at);
        if byte(self.bytes, at) != b':' {
            return Err(unexpected(self.bytes, at, "expected `:` after an object key"));
        }
        Ok(at + 1)
    }

    /// Skips a string (the scanner is at its opening quote) and says whether it has escapes.
    #[inline]
    fn skip_string(&mut self) -> Result<bool, Fail> {
        let (end, escaped) = self.stops.string_end(self.pos)?;
        self.pos = end;
        Ok(escaped)
    }

    fn skip_number(&mut self) -> Result<(), Fail> {
        self.pos = number_end(self.bytes, self.pos)?;
        Ok(())
    }

    fn skip_literal(&mut self, word: &[u8]) -> Result<(), Fail> {
        self.pos = literal_end(self.bytes, self.pos, word)?;
        Ok(())
    }

    // ---- bytes ----

    #[inline(always)]
    fn peek(&self) -> u8 {
        byte(self.bytes, self.pos)
    }

    /// Skips JSON whitespace and returns the next byte (0 at the end, see [`byte`]).
    #[inline(always)]
    fn skip_ws(&mut self) -> u8 {
        self.pos = skip_ws(self.bytes, self.pos);
        self.peek()
    }

    /// The input between two offsets the scanner found (at ASCII bytes, so char boundaries).
    #[inline]
    fn slice(&self, start: usize, end: usize) -> Result<&'a str, Fail> {
        self.input.get(start..end).ok_or(Fail::Syntax { what: "internal error: not a character boundary", at: start })
    }

    #[cold]
    fn syntax(&self, what: &'static str) -> Fail {
        unexpected(self.bytes, self.pos, what)
    }
}

/// The byte at `i`, or 0 past the end. A NUL byte is invalid wherever this is used (outside
/// strings), so the end of input needs no separate case; errors tell them apart.
#[inline(always)]
fn byte(bytes: &[u8], i: usize) -> u8 {
    bytes.get(i).copied().unwrap_or(0)
}

/// The index of the first byte at or after `at` that is not JSON whitespace.
#[inline(always)]
fn skip_ws(bytes: &[u8], mut at: usize) -> usize {
    loop {
        let b = byte(bytes, at);
        if b > b' ' || !matches!(b, b' ' | b'\n' | b'\t' | b'\r') {
            return at;
        }
        at += 1;
    }
}

/// A syntax error at `at`, where `what` was expected (or the input ended).
#[cold]
fn unexpected(bytes: &[u8], at: usize, what: &'static str) -> Fail {
    let what = if at >= bytes.len() { "unexpected end of input" } else { what };
    Fail::Syntax { what, at }
}

/// The end of the number at `at`, checking the JSON grammar:
/// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
#[inline]
fn number_end(bytes: &[u8], mut i: usize) -> Result<usize, Fail> {
    if byte(bytes, i) == b'-' {
        i += 1;
    }
    match byte(bytes, i) {
        b'0' => {
            i += 1;
            if byte(bytes, i).is_ascii_digit() {
                return Err(Fail::Syntax { what: "leading zero in a number", at: i });
            }
        }
        b'1'..=b'9' => i = digits_end(bytes, i + 1),
        _ => return Err(unexpected(bytes, i, "invalid number")),
    }
    if byte(bytes, i) == b'.' {
        let digits = i + 1;
        i = digits_end(bytes, digits);
        if i == digits {
            return Err(unexpected(bytes, i, "invalid number: no digit after the decimal point"));
        }
    }
    if byte(bytes, i) | 0x20 == b'e' {
        i += 1;
        if matches!(byte(bytes, i), b'+' | b'-') {
            i += 1;
        }
        let digits = i;
        i = digits_end(bytes, digits);
        if i == digits {
            return Err(unexpected(bytes, i, "invalid number: no digit in the exponent"));
        }
    }
    Ok(i)
}

#[inline(always)]
fn digits_end(bytes: &[u8], mut i: usize) -> usize {
    while byte(bytes, i).is_ascii_digit() {
        i += 1;
    }
    i
}

/// The end of `word` (`true`, `false` or `null`) at `at`.
#[inline]
fn literal_end(bytes: &[u8], at: usize, word: &[u8]) -> Result<usize, Fail> {
    if bytes.get(at..at + word.len()) != Some(word) {
        return Err(unexpected(bytes, at, "invalid literal (expected true, false or null)"));
    }
    Ok(at + word.len())
}

/// Decodes a JSON string (quotes included) that has escapes, exactly as strictly as serde_json
/// decodes keys: a `\uD800`-style surrogate must be half of a pair.
#[cold]
fn decode_string(json: &str) -> Result<String, &'static str> {
    serde_json::from_str::<String>(json).map_err(|_| "invalid escape in a string (a lone surrogate?)")
}

/// `lines` as a string is kept in serde_json's own encoding of it, as the reference keeps it.
#[cold]
fn reencode_string(json: &str) -> Result<String, Fail> {
    let text = decode_string(json).map_err(|what| Fail::Syntax { what, at: 0 })?;
    serde_json::to_string(&text).map_err(|_| Fail::Syntax { what: "internal error: string could not be re-encoded", at: 0 })
}

#[cold]
fn owned_raw(json: String) -> Result<Box<RawValue>, Fail> {
    RawValue::from_string(json).map_err(|_| Fail::Syntax { what: "internal error: invalid raw value", at: 0 })
}

// ---- borrowing a validated slice as a `&RawValue` ----
//
// serde_json offers no public way to borrow a `&RawValue` without parsing the text again, which
// is the cost this module exists to avoid. Its `Deserialize` impl for `&RawValue` asks the
// deserializer for a map with one entry: the key `$serde_json::private::RawValue` and the value's
// text as a borrowed string (the protocol serde_json's own deserializers follow). We present
// exactly that for a slice we have validated. Should a future serde_json change the protocol,
// `borrowed_raw` returns None, the scan fails, and `ScannedObject::scan` falls back to the
// reference scan — slower, never wrong; the tests fail loudly first.

const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

fn borrowed_raw(json: &str) -> Option<&RawValue> {
    <&RawValue>::deserialize(RawText(json)).ok()
}

struct RawText<'de>(&'de str);

impl<'de> Deserializer<'de> for RawText<'de> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_map(RawTextEntry(Some(self.0)))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

struct RawTextEntry<'de>(Option<&'de str>);

impl<'de> MapAccess<'de> for RawTextEntry<'de> {
    type Error = de::value::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Self::Error> {
        if self.0.is_none() {
            return Ok(None);
        }
        seed.deserialize(de::value::BorrowedStrDeserializer::new(RAW_VALUE_TOKEN)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Self::Error> {
        let text = self.0.take().ok_or_else(|| de::Error::custom("raw value already taken"))?;
        seed.deserialize(de::value::BorrowedStrDeserializer::new(text))
    }
}

// ---- finding the end of plain string contents ----

/// Where plain string contents stop — at `"`, `\` or a control byte below 0x20 — found a 64-byte
/// block at a time. Strings are most of an audit event's bytes but short (15 bytes on average),
/// so a block holds several: its mask is computed once, with SIMD, and kept for the strings that
/// follow, each of which then costs a shift and a bit scan.
struct Stops<'a> {
    bytes: &'a [u8],
    /// The offset of the block `mask` describes (a multiple of 64), or `usize::MAX` for none yet.
    block: usize,
    /// Bit i set when byte `block + i` is a stop.
    mask: u64,
}

impl<'a> Stops<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Stops { bytes, block: usize::MAX, mask: 0 }
    }

    /// The end of the string whose opening quote is at `at` (the index after its closing
    /// quote), and whether it has escapes. Escapes are checked for form only (`\u` needs four hex
    /// digits), as serde_json does when it skips: whether `\uD800` stands alone matters only where
    /// the string is decoded.
    #[inline(always)]
    fn string_end(&mut self, at: usize) -> Result<(usize, bool), Fail> {
        let mut escaped = false;
        let mut at = at + 1;
        loop {
            at = self.next(at);
            match self.bytes.get(at) {
                Some(b'"') => return Ok((at + 1, escaped)),
                Some(b'\\') => {
                    escaped = true;
                    at = escape_end(self.bytes, at)?;
                }
                Some(_) => return Err(Fail::Syntax { what: "control character (below U+0020) in a string", at }),
                None => return Err(Fail::Syntax { what: "end of input inside a string", at }),
            }
        }
    }

    /// The index of the first stop at or after `from`, or `bytes.len()` if there is none.
    #[inline(always)]
    fn next(&mut self, mut from: usize) -> usize {
        loop {
            let block = from & !63;
            if block != self.block {
                if block >= self.bytes.len() {
                    return self.bytes.len();
                }
                self.block = block;
                self.mask = block_stops(self.bytes, block);
            }
            let ahead = self.mask >> (from & 63);
            if ahead != 0 {
                return from + ahead.trailing_zeros() as usize;
            }
            from = block + 64;
        }
    }
}

/// Checks the escape whose backslash is at `at` and returns the index after it.
#[cold]
fn escape_end(bytes: &[u8], at: usize) -> Result<usize, Fail> {
    match bytes.get(at + 1) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(at + 2),
        Some(b'u') => match bytes.get(at + 2..at + 6) {
            Some(hex) if hex.iter().all(u8::is_ascii_hexdigit) => Ok(at + 6),
            _ => Err(Fail::Syntax { what: "invalid \\u escape in a string", at }),
        },
        _ => Err(Fail::Syntax { what: "invalid escape in a string", at }),
    }
}

/// The definition of a stop, for the bytewise reference the SIMD paths are tested against.
#[cfg(any(test, not(any(target_arch = "x86_64", target_arch = "aarch64"))))]
fn is_stop(b: u8) -> bool {
    b == b'"' || b == b'\\' || b < 0x20
}

/// The stops of the block at `start`; past the end of input, the block is padded with spaces,
/// which are not stops.
#[inline]
fn block_stops(bytes: &[u8], start: usize) -> u64 {
    match bytes.get(start..start + 64).and_then(|b| <&[u8; 64]>::try_from(b).ok()) {
        Some(block) => stops64(block),
        None => {
            let rest = bytes.get(start..).unwrap_or_default();
            let mut padded = [b' '; 64];
            padded[..rest.len()].copy_from_slice(rest);
            stops64(&padded)
        }
    }
}

/// The byte-at-a-time definition of [`block_stops`].
#[cfg(any(test, not(any(target_arch = "x86_64", target_arch = "aarch64"))))]
fn block_stops_bytewise(bytes: &[u8], start: usize) -> u64 {
    let rest = bytes.get(start..).unwrap_or_default();
    rest.iter().take(64).enumerate().fold(0, |mask, (i, &b)| mask | u64::from(is_stop(b)) << i)
}

/// One bit per byte of `block` (bit i for byte i) that is `"`, `\` or below 0x20.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn stops64(block: &[u8; 64]) -> u64 {
    use std::arch::x86_64::*;
    let mut mask = 0;
    for k in 0..4 {
        // SAFETY: SSE2 is part of the x86_64 baseline; the unaligned load reads bytes
        // 16k..16k+16 of the 64 in `block`.
        let bits = unsafe {
            let v = _mm_loadu_si128(block.as_ptr().add(16 * k) as *const __m128i);
            let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
            let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
            // Unsigned v <= 0x1F exactly when min(v, 0x1F) == v (SSE2 has no unsigned compare).
            let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1F)), v);
            _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control)) as u16
        };
        mask |= u64::from(bits) << (16 * k);
    }
    mask
}

#[cfg(target_arch = "aarch64")]
#[inline(always)]
fn stops64(block: &[u8; 64]) -> u64 {
    use std::arch::aarch64::*;
    // SAFETY: NEON is part of the aarch64 baseline; the loads read the 64 bytes of `block`.
    unsafe {
        let stops = |k: usize| {
            let v = vld1q_u8(block.as_ptr().add(16 * k));
            vorrq_u8(vorrq_u8(vceqq_u8(v, vdupq_n_u8(b'"')), vceqq_u8(v, vdupq_n_u8(b'\\'))), vcleq_u8(v, vdupq_n_u8(0x1F)))
        };
        // NEON has no movemask: weight each lane by its bit and add pairwise three times (the
        // simdjson technique, as in `nesting`).
        let weights: [u8; 16] = [1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128];
        let w = vld1q_u8(weights.as_ptr());
        let (t0, t1, t2, t3) = (vandq_u8(stops(0), w), vandq_u8(stops(1), w), vandq_u8(stops(2), w), vandq_u8(stops(3), w));
        let sum = vpaddq_u8(vpaddq_u8(t0, t1), vpaddq_u8(t2, t3));
        let sum = vpaddq_u8(sum, sum);
        vgetq_lane_u64(vreinterpretq_u64_u8(sum), 0)
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
#[inline(always)]
fn stops64(block: &[u8; 64]) -> u64 {
    block_stops_bytewise(block, 0)
}

#[cfg(test)]
mod differential_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_agree_with_the_bytewise_definition() {
        let alphabet = [b'a', b'"', b'\\', 0x00, 0x1F, 0x20, 0x7F, 0x80, 0xFF, b'z'];
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..5_000 {
            let len = (next() % 200) as usize;
            // Mostly plain bytes, so that stops land anywhere in a block, or in none.
            let rarity = 2 + next() % 40;
            let text: Vec<u8> = (0..len).map(|_| if next() % rarity == 0 { alphabet[(next() % 10) as usize] } else { b'a' }).collect();
            for start in (0..len + 64).step_by(64) {
                assert_eq!(block_stops(&text, start), block_stops_bytewise(&text, start), "{text:?} block {start}");
            }
            let want = |from: usize| from + text.get(from..).unwrap_or_default().iter().position(|&b| is_stop(b)).unwrap_or(len.saturating_sub(from));
            // Asked in increasing order, as the scanner asks, and from scratch.
            let mut stops = Stops::new(&text);
            for from in 0..=len {
                assert_eq!(stops.next(from), want(from), "{text:?} from {from}");
                assert_eq!(Stops::new(&text).next(from), want(from), "{text:?} from {from}, fresh");
            }
        }
    }

    #[test]
    fn a_raw_value_is_borrowed_not_copied() {
        let text = r#"{"a":[1,2]}"#;
        let raw = borrowed_raw(text).expect("serde_json's raw value protocol");
        assert_eq!(raw.get(), text);
        assert!(std::ptr::eq(raw.get().as_ptr(), text.as_ptr()));
    }
}
