//! Masking fails closed, on any event: the property tests of the masking rules (README, "Masking").
//!
//! Each case is a generated audit event (job, activity or other) (`masking-oracle`) with unique markers planted in everything
//! that must be masked — the `input` and `output` of every line whose `mask_data` masks (`true`,
//! `"true"`, `"TRUE"`, `1`, `"1"`, an object, an array…), the `input` of every job-level `error`
//! (a JSON string, an object, loose text) and every marker of an `error` that is an array — and
//! other markers in what must be kept: lines whose `mask_data` is absent, `null`, `false`, `0` or
//! `"false"` in any case, step metadata, other fields. A masked line's own `error` is read as the
//! job-level one. The event comes with duplicate keys
//! (`lines` twice, `error` null then set, `input` twice, `mask_data` false then true), key names
//! with `\u` escapes, whitespace between any two tokens and nested values.
//!
//! Properties, for every lines mode (job details, job status, size placeholder), with and without a
//! log template (`{{{log_message}}}` and `{{{log_message_str}}}`) and through both scanners:
//! - no secret marker is in any output byte, error message or log line;
//! - every value that is not masked is in the output byte-for-byte;
//! - the event is delivered, as JSON.
//!
//! The default number of cases keeps `scripts/test` fast; `PROPTEST_CASES=100000` runs more
//! (docs/testing.md).

use masking_oracle::{check_event, event_from_bytes};
use proptest::collection::vec;
use proptest::prelude::*;

/// Cases per property unless `PROPTEST_CASES` says otherwise.
const DEFAULT_CASES: u32 = 256;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_CASES);
    // A failure prints its shrunk event; seeds are not persisted, as they mean nothing once the
    // generator changes (a case worth keeping becomes a table test of the module that owns the rule).
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

/// An event description from random bytes: proptest shrinks the bytes, which shrinks the event.
fn events() -> impl Strategy<Value = masking_oracle::Planted> {
    vec(any::<u8>(), 0..2048).prop_map(|bytes| event_from_bytes(&bytes).render())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn masked_data_never_leaves_and_kept_data_is_kept_byte_for_byte(planted in events()) {
        if let Err(violation) = check_event(&planted) {
            return Err(TestCaseError::fail(violation.to_string()));
        }
    }
}

/// The generator itself: a generator that silently stopped producing a shape would let the
/// property pass without testing it, so every shape the rules name must come up.
#[test]
fn the_generated_events_cover_every_shape_the_rules_name() {
    let mut seen = std::collections::BTreeMap::<&str, usize>::new();
    let mut secrets = 0;
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..2000 {
        let bytes: Vec<u8> = (0..1024)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng as u8
            })
            .collect();
        let planted = event_from_bytes(&bytes).render();
        secrets += planted.secrets;
        for shape in planted.shapes {
            *seen.entry(shape).or_default() += 1;
        }
    }
    let want = [
        "job event",
        "activity event",
        "other event",
        "line masked",
        "line kept",
        "lines twice",
        "lines null",
        "lines text",
        "lines serialized into a string",
        "mask_data true",
        "mask_data \"true\"",
        "mask_data number",
        "mask_data other string",
        "mask_data object",
        "mask_data array",
        "mask_data not masking",
        "mask_data twice",
        "input twice",
        "escaped key",
        "error null",
        "error null then error",
        "error message",
        "error JSON string",
        "error object",
        "error array",
        "error loose string",
        "error input twice",
        "masked line's error",
    ];
    for shape in want {
        let n = seen.get(shape).copied().unwrap_or(0);
        assert!(n >= 20, "only {n} of 2000 generated events had the shape `{shape}`; tallies: {seen:?}");
    }
    assert!(secrets >= 2000, "only {secrets} secret markers in 2000 events");
}
