//! A generated audit event (job, activity or other) with secret markers planted in everything masking must remove, through
//! `Pipeline::prepare` in every lines mode and template and through both scanners
//! (`masking_oracle::check_event`): no marker in any output byte, error or log line; every
//! unmasked value kept byte-for-byte; the event delivered as JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use masking_oracle::EventSpec;

fuzz_target!(|spec: EventSpec| {
    let planted = spec.render();
    if let Err(violation) = masking_oracle::check_event(&planted) {
        panic!("{violation}");
    }
});
