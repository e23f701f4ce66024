//! Whole request bodies: JSON → fields → base64 → image decode → preprocessing (no inference, so
//! libFuzzer runs thousands of inputs a second). Every input must end in the model's input or the
//! error contract; a panic, an abort or an allocation over libFuzzer's limit is a finding.
//! The model facts come from the payload named by CLASSIFIER_PAYLOAD.
#![no_main]

use classifier::{model, prepare_request, Options};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let facts = model::facts().expect("CLASSIFIER_PAYLOAD names a model payload");
    if let Ok(prepared) = prepare_request(body, Options::default()) {
        assert_eq!(prepared.input.len(), facts.input_len());
    }
});
