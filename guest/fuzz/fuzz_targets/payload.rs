//! Model payloads (what the toolchain attaches to a guest build): any bytes must parse into validated
//! facts or a clear error, never a panic; a payload that parses must describe a usable model.
#![no_main]

use classifier::model;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok((facts, model_at)) = model::parse(bytes) {
        assert_eq!(bytes.len() - model_at, facts.model_bytes);
        assert!(facts.input_len() > 0);
        assert!(facts.labels.len() >= facts.output.classes + facts.label_offset);
    }
});
