//! Generated audit events with unique markers planted in everything masking must remove, and the
//! oracle that checks what the pipeline makes of them.
//!
//! The property tests (`shared/tests/masking_properties.rs`) and the coverage-guided fuzz targets
//! (`fuzz/`) share this crate, so both hold the pipeline to the same rules (README, "Masking"):
//! - [`event`] describes an event ([`EventSpec`], [`arbitrary::Arbitrary`]) and renders it with
//!   random key spellings, whitespace and duplicate keys ([`Planted`]);
//! - [`check`] runs it through `Pipeline::prepare` in every configuration and both scanners and
//!   reports the first property that does not hold ([`Violation`]).
//!
//! Not part of the product: nothing outside tests and fuzzing depends on it.

pub mod check;
pub mod event;

pub use check::{check_any_body, check_event, check_scanners_agree, Violation};
pub use event::{EventSpec, Planted};

/// Reads an event description from any bytes (a property test's random bytes, a fuzzer's input).
/// Every byte string gives some event; running out of bytes gives a smaller one.
pub fn event_from_bytes(bytes: &[u8]) -> EventSpec {
    let u = arbitrary::Unstructured::new(bytes);
    arbitrary::Arbitrary::arbitrary_take_rest(u).unwrap_or_else(|_| EventSpec {
        lines: event::LinesSpec::Null,
        error: event::ErrorSpec::Null,
        fields: Vec::new(),
        identity_at: 0,
        spacing: Vec::new(),
        spellings: Vec::new(),
        kind: event::Kind::Job,
    })
}
