//! The one rule for whether a step line asks to be masked: [`mask_data_masks`].
//!
//! It sits apart from [`crate::pipeline::mask`] because both scanners apply it while they read
//! (so that a masked line's data is never held longer than it must be), and the masking module
//! in turn reads what the scanners produce: the rule is the leaf both depend on.

use serde_json::value::RawValue;

/// Whether one `mask_data` value asks for masking.
///
/// Workato writes `true` or `false`, but a consumer reading the event may take any "truthy" value
/// for a yes, so only the values that plainly say no leave a line unmasked: `null`, `false`, a
/// number whose digits are all zero (`0`, `-0`, `0.0`, `0e5`), and the string `"false"` in any
/// ASCII case once its escapes are decoded (`"FALSE"`, `"f\u0061lse"`). Everything else masks:
/// `true`, any other number, any other string (the empty string and `" false"` included), an
/// object or an array. Both scanners call this for every `mask_data` occurrence of a line, so the
/// rule has one definition.
pub fn mask_data_masks(value: &RawValue) -> bool {
    let text = value.get();
    match text.as_bytes().first() {
        Some(b'-' | b'0'..=b'9') => !is_zero_number(text),
        Some(b'"') => !is_false_string(text),
        // `true`, objects and arrays mask.
        _ => !(text == "false" || text == "null"),
    }
}

/// True for a JSON number whose mantissa digits are all zero, whatever its sign and exponent.
/// Decided on the text, not on an `f64`: `1e-400` rounds to zero as a float but says "not zero".
fn is_zero_number(text: &str) -> bool {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], Some(&unsigned[at + 1..])),
        None => (unsigned, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (mantissa, None),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
    });
    int == "0" && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b == b'0')) && exponent_ok
}

/// True for a JSON string literal that reads `false` in any ASCII case once decoded. An
/// undecodable string (a lone surrogate) masks.
fn is_false_string(literal: &str) -> bool {
    decode_string(literal).is_some_and(|text| text.eq_ignore_ascii_case("false"))
}

/// A JSON string literal's text, decoded; `None` when it is not a readable string.
pub(crate) fn decode_string(literal: &str) -> Option<std::borrow::Cow<'_, str>> {
    match literal.strip_prefix('"').and_then(|l| l.strip_suffix('"')) {
        Some(inner) if !inner.contains('\\') => Some(std::borrow::Cow::Borrowed(inner)),
        _ => serde_json::from_str::<String>(literal).ok().map(std::borrow::Cow::Owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_plain_no_leaves_a_line_unmasked() {
        let unmasked = [
            "null",
            "false",
            "0",
            "-0",
            "0.0",
            "-0.000",
            "0e5",
            "0E-3",
            "0.0e+10",
            r#""false""#,
            r#""FALSE""#,
            r#""False""#,
            r#""fAlSe""#,
            r#""f\u0061lse""#,
            r#""\u0046ALSE""#,
        ];
        let masks = [
            "true",
            "1",
            "-1",
            "0.5",
            "1e-400",
            "10",
            "0.01",
            r#""true""#,
            r#""TRUE""#,
            r#""1""#,
            r#""0""#,
            r#""yes""#,
            r#""no""#,
            r#""null""#,
            r#""""#,
            r#"" false""#,
            r#""false ""#,
            r#""falsey""#,
            r#""\u017False""#,
            r#""f\u0061lse\u0000""#,
            "{}",
            r#"{"a":false}"#,
            "[]",
            "[false]",
        ];
        for value in unmasked {
            let raw = RawValue::from_string(value.to_owned()).unwrap();
            assert!(!mask_data_masks(&raw), "mask_data {value} must leave the line unmasked");
        }
        for value in masks {
            let raw = RawValue::from_string(value.to_owned()).unwrap();
            assert!(mask_data_masks(&raw), "mask_data {value} must mask the line");
        }
    }
}
