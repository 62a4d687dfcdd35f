//! Any bytes through the scanners and the pipeline: the fast scanner and the serde_json-based
//! reference make the same decision and return the same fields, nothing panics, and what the
//! pipeline delivers is JSON (`masking_oracle::check_any_body`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Message bodies are text; the decode step refuses anything else before the scanner.
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(violation) = masking_oracle::check_any_body(text) {
            panic!("{violation}");
        }
    }
});
